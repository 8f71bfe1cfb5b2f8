/* synth.h -- random-weight LLaMA teachers of real shapes (TinyLlama-1.1B,
 * Llama-2-7B, Llama-3-8B or any DIM,HIDDEN,LAYERS,HEADS,KV,VOCAB), written
 * as a Hugging Face directory (config.json, sharded safetensors with
 * model.safetensors.index.json, tokenizer.json) or as one GGUF file, in
 * F32, F16 or BF16 -- GGUF also in ggml's Q8_0, Q4_0, Q5_0, Q4_K, Q5_K or
 * Q6_K, each block quantized round-to-nearest (format/quants.h). Weights are a deterministic function of the seed, the
 * tensor and the element (normal-ish, std 0.02; norms 1), so the same seed
 * gives byte-identical files and the HF and GGUF outputs hold the same
 * model. Written one tensor at a time through a bounded buffer, into a
 * temporary name that is renamed into place at the end. */
#ifndef OB_SYNTH_H
#define OB_SYNTH_H

#include <signal.h>
#include <stdint.h>

#include "format/llama.h"

enum { SYNTH_HF = 0, SYNTH_GGUF = 1 };
enum { SYNTH_F32 = LLAMA_F32, SYNTH_F16 = LLAMA_F16, SYNTH_BF16 = LLAMA_BF16 };

typedef struct {
    char name[32];       /* preset name, or "custom" */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size;
    int seq_len;         /* max_position_embeddings / llama.context_length */
    double rope_theta, norm_eps;
} SynthShape;

typedef struct {
    SynthShape shape;
    int format;          /* SYNTH_HF or SYNTH_GGUF */
    int dtype;           /* the matrices': SYNTH_F32/F16/BF16, or for GGUF a
                            LLAMA_* block type (Q8_0 ... Q6_K) */
    uint64_t seed;
    /* a llama2.c tokenizer.bin or a SentencePiece tokenizer.model (by
     * content) of exactly vocab_size entries (e.g. the Llama 2 one for
     * 32000) instead of the synthetic vocabulary; or NULL */
    const char *tokenizer_path;
    uint64_t max_shard_bytes;      /* HF shards; 0: 5 GB (5e9 bytes) */
    uint64_t free_bytes_override;  /* tests: pretend this much is free; 0: statvfs */
    /* called after every chunk with the bytes written so far (all files) */
    void (*progress)(void *ctx, const char *file, uint64_t done, uint64_t total);
    void *progress_ctx;
    volatile sig_atomic_t *cancel; /* set non-zero to stop (the output is then not made) */
} SynthOpts;

/* a preset name (tinyllama-1.1b, llama2-7b, llama3-8b) or
 * DIM,HIDDEN,LAYERS,HEADS,KV,VOCAB; checked with synth_shape_check */
int synth_shape_parse(const char *s, SynthShape *out, char *err);
/* every dimension positive and in range, HEADS divides DIM, KV divides
 * HEADS, the head size even (RoPE pairs) */
int synth_shape_check(const SynthShape *s, char *err);
int synth_format_parse(const char *s, int *out);  /* "hf" | "gguf"; -1 otherwise */
/* "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q5_0" | "q4_k" | "q5_k" | "q6_k" */
int synth_dtype_parse(const char *s, int *out);
const char *synth_dtype_name(int dtype);          /* "F32", "F16", "BF16", "Q4_K", ... */
/* the shape (synth_shape_check), and the dtype fits the format and shape:
 * a block type only in GGUF, with DIM and HIDDEN (every row length) a
 * multiple of its block */
int synth_check(const SynthOpts *o, char *err);

/* parameter count and bytes of tensor data for the options */
uint64_t synth_param_count(const SynthShape *s);
uint64_t synth_data_bytes(const SynthOpts *o);

/* write the model to `out` (a directory for HF, a file for GGUF). `out`
 * must not exist; the free space of its file system is checked first. */
int synth_write(const SynthOpts *o, const char *out, char *err);

/* the weight of element idx (row-major, interleaved RoPE rows for q/k) of
 * tensor `tensor_id` for the seed, as written before rounding to the dtype.
 * Tensor ids: 0 embedding, 1 output head, 16 + 16*layer + LIN (q k v o gate
 * down up = 0..6). */
float synth_weight(uint64_t seed, uint32_t tensor_id, uint64_t idx);

#endif
