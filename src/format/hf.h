/* hf.h -- Hugging Face model directories: config.json (llama/mistral),
 * model.safetensors or a sharded model.safetensors.index.json, F32/F16/BF16
 * weights, tied embeddings; q/k rows converted from HF's rotate-half layout
 * to the interleaved RoPE pairs the engine uses; tokenizer.json
 * (SentencePiece-style BPE/Unigram or byte-level BPE). */
#ifndef OB_HF_H
#define OB_HF_H

#include "model/model.h"
#include "format/tokenizer.h"

/* 1 if path is a directory holding config.json */
int hf_is_dir(const char *path);
/* load dir; tok (optional) gets tokenizer.json when present (*tok_loaded) */
int hf_load_dir(Model *m, Tokenizer *tok, int *tok_loaded, const char *dir, char *err);
/* tokenizer.json (its text) into t; vocab_size > 0 pads/limits the
 * vocabulary to the model's size; bos/eos from config.json or -1 */
int hf_tokenizer_parse(Tokenizer *t, const char *json, size_t len, int vocab_size, int bos_id, int eos_id, char *err);
int hf_tokenizer_load(Tokenizer *t, const char *path, int vocab_size, char *err);

/* interleaved row h*hd + 2i + j <- HF row h*hd + j*(hd/2) + i, for every
 * head of a (heads*hd, cols) matrix */
void hf_unpermute_rows(const float *src, float *dst, int heads, int hd, size_t cols);

#endif
