/* hf.h -- Hugging Face model directories: config.json (llama/mistral),
 * model.safetensors or a sharded model.safetensors.index.json, else
 * torch.save's pytorch_model.bin or pytorch_model.bin.index.json (read by
 * format/torch.h), F32/F16/BF16 weights, tied embeddings; q/k rows marked as HF's rotate-half layout
 * (llama_tensor_to_f32 makes them the interleaved RoPE pairs the engine
 * uses); a tokenizer.json beside them is read by tok_json_parse
 * (format/tokenizer.h), else a SentencePiece tokenizer.model (format/spm.h). */
#ifndef OB_HF_H
#define OB_HF_H

#include <stddef.h>
#include <sys/stat.h>

#include "format/llama.h"
#include "format/safetensors.h"
#include "format/tokenizer.h"

/* 1 for a directory or a safetensors or torch.save zip file (by content),
 * else 0 with why */
int hf_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why);
/* read a model directory -- or the directory of a safetensors or torch.save
 * file named directly, when config.json is beside it -- into f (tensors in
 * the mmap'd shards, q/k marked rotate-half); tok (optional) gets
 * tokenizer.json, or without one tokenizer.model, when present (*tok_loaded) */
int hf_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err);
/* SHA-256 over the files hf_load reads (config.json, the index and its
 * shards, or model.safetensors or pytorch_model.bin), in name order, each
 * as name, NUL, u64 little-endian size and contents */
int hf_fingerprint(const char *path, char hex[65], char *err);

/* An open model directory, for readers of other tensor layouts (the
 * OneBit authors' bitllama checkpoints, onebit/bitllama.h): config.json
 * (model_type llama, mistral or bitllama) and the mapped shards. */
typedef struct {
    char *dir;
    LlamaConfig cfg;
    int bos, eos;           /* config.json's ids, or -1 */
    char model_type[32];    /* config.json's, "" when absent */
    char arch[64];          /* architectures[0], "" when absent */
    char torch_dtype[16];   /* "" when absent */
    void *priv;             /* the shards */
} HFModel;
/* open path (a directory, or a safetensors or torch.save file beside its
 * config.json) */
int hf_model_open(HFModel *m, const char *path, char *err);
void hf_model_close(HFModel *m);
/* the tensor called name and its bytes (in the shard the index names);
 * -1 with err when it is missing */
int hf_model_tensor(const HFModel *m, const char *name, const STTensor **t, const uint8_t **data, char *err);
/* an F32/F16/BF16 tensor of shape (rows, cols), or (cols) when rows is 0,
 * as FP32 into dst (as stored: no RoPE reordering); -1 with err naming the
 * file, the tensor and its shape or dtype otherwise */
int hf_model_f32(const HFModel *m, const char *name, uint64_t rows, uint64_t cols, float *dst, char *err);
/* tokenizer_config.json's chat_template in dir: a string, or a list of
 * {name, template} (the "default" one, else the first); malloc'd, NULL when
 * absent or unreadable (a template is optional) */
char *hf_chat_template(const char *dir);
/* config.json's model_type in dir into buf (n bytes); 0, or -1 when the
 * file or the key is missing or unreadable */
int hf_model_type(const char *dir, char *buf, size_t n);
/* the directory's tokenizer.json, else tokenizer.model, into tok
 * (*loaded = 1); *loaded = 0 when it has neither */
int hf_model_tokenizer(const HFModel *m, Tokenizer *tok, int *loaded, char *err);

#endif
