/* hf.h -- Hugging Face model directories: config.json (llama/mistral),
 * model.safetensors or a sharded model.safetensors.index.json, F32/F16/BF16
 * weights, tied embeddings; q/k rows marked as HF's rotate-half layout
 * (llama_tensor_to_f32 makes them the interleaved RoPE pairs the engine
 * uses); a tokenizer.json beside them is read by tok_json_parse
 * (format/tokenizer.h), else a SentencePiece tokenizer.model (format/spm.h). */
#ifndef OB_HF_H
#define OB_HF_H

#include <stddef.h>
#include <sys/stat.h>

#include "format/llama.h"
#include "format/tokenizer.h"

/* 1 for a directory or a safetensors file (by content), else 0 with why */
int hf_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why);
/* read a model directory -- or the directory of a safetensors file named
 * directly, when config.json is beside it -- into f (tensors in the mmap'd
 * shards, q/k marked rotate-half); tok (optional) gets tokenizer.json, or
 * without one tokenizer.model, when present (*tok_loaded) */
int hf_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err);
/* SHA-256 over the files hf_load reads (config.json, the index and its
 * shards, or model.safetensors), in name order, each as name, NUL, u64
 * little-endian size and contents */
int hf_fingerprint(const char *path, char hex[65], char *err);

#endif
