/* llama.h -- what a teacher loader returns, independent of the model code:
 * the LLaMA config and each tensor by role and layer with its dtype, shape
 * and a pointer to its data in the file's own precision (into an mmap'd
 * file, or a buffer the LlamaFile owns). src/model builds its FP32 arena
 * from it (llama_tensor_to_f32); a consumer that keeps a teacher in its
 * file precision can use the data pointers as they are. */
#ifndef OB_LLAMA_H
#define OB_LLAMA_H

#include <stddef.h>
#include <stdint.h>

typedef struct LlamaConfig {
    int dim;          /* C: model width */
    int hidden_dim;   /* FFN width */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;     /* dim / n_heads unless a format says otherwise */
    int vocab_size;
    int seq_len;      /* maximum context */
    float rope_theta; /* 10000 for llama2.c */
    float norm_eps;   /* 1e-5 for llama2.c */
    int shared_classifier; /* output head tied to the token embedding */
} LlamaConfig;

/* validate a config: positive dims, divisibility, limits that keep every
 * size computation far from overflow */
int llama_config_check(const LlamaConfig *c, char *err);

/* tensor roles; the LLAMA_*_L roles exist once per layer */
enum {
    LLAMA_TOK_EMB,   /* (V, C) */
    LLAMA_RMS_FINAL, /* (1, C) */
    LLAMA_WCLS,      /* (V, C); absent when shared_classifier */
    LLAMA_RMS_ATT_L, /* (1, C) */
    LLAMA_WQ_L,      /* (H*hd, C) */
    LLAMA_WK_L,      /* (KV*hd, C) */
    LLAMA_WV_L,      /* (KV*hd, C) */
    LLAMA_WO_L,      /* (C, H*hd) */
    LLAMA_RMS_FFN_L, /* (1, C) */
    LLAMA_W1_L,      /* gate (F, C) */
    LLAMA_W2_L,      /* down (C, F) */
    LLAMA_W3_L,      /* up (F, C) */
    LLAMA_NROLES
};
#define LLAMA_FIRST_LAYER_ROLE LLAMA_RMS_ATT_L

/* element types of tensor data: floats, and ggml's blocks (format/quants.h,
 * in its QUANT_* order: Q8_0, Q4_0, Q5_0 of 32 weights, Q4_K, Q5_K, Q6_K of
 * 256) */
enum {
    LLAMA_F32, LLAMA_F16, LLAMA_BF16, LLAMA_Q8_0, LLAMA_Q4_0, LLAMA_Q5_0, LLAMA_Q4_K, LLAMA_Q5_K, LLAMA_Q6_K,
    LLAMA_NDTYPES
};

typedef struct {
    int role;
    int layer;            /* -1 for the whole-model roles */
    int dtype;            /* LLAMA_* element type */
    uint64_t rows, cols;  /* row-major; a vector is (1, cols) */
    const void *data;     /* bytes in dtype (unaligned allowed) */
    size_t bytes;
    /* > 0: rows are in Hugging Face's rotate-half order within each of
     * rope_heads heads; the engine wants interleaved RoPE pairs */
    int rope_heads;
} LlamaTensor;

typedef struct {
    void *p;
    size_t n;
    int mapped;           /* 1: munmap, 0: free */
} LlamaRegion;

typedef struct {
    const char *format;   /* the registry's name of the format read */
    LlamaConfig cfg;
    LlamaTensor *t;
    int n, cap;
    LlamaRegion *regions; /* what the data pointers point into */
    int n_regions;
} LlamaFile;

void llama_file_init(LlamaFile *f);
void llama_file_free(LlamaFile *f);
/* f takes ownership of p (an mmap when mapped, else malloc'd) */
void llama_file_own(LlamaFile *f, void *p, size_t n, int mapped);
/* add a tensor (layer -1 for whole-model roles) */
void llama_file_add(LlamaFile *f, int role, int layer, int dtype, uint64_t rows, uint64_t cols,
                    const void *data, int rope_heads);
const LlamaTensor *llama_file_find(const LlamaFile *f, int role, int layer);
/* the expected shape of a role for cfg: 0, or -1 for WCLS of a tied model */
int llama_role_shape(const LlamaConfig *c, int role, uint64_t *rows, uint64_t *cols);
/* every role present once with the shape the config implies; err names
 * the first missing or mismatching tensor by role and layer */
int llama_file_check(const LlamaFile *f, char *err);

const char *llama_role_name(int role);
const char *llama_dtype_name(int dtype);
/* elements per block of dtype: 1 for F32/F16/BF16, 32 or 256 for the
 * block types, 0 if unknown */
int llama_dtype_block(int dtype);
/* bytes of n elements of dtype; 0 if unknown or n is not a multiple of the
 * block. Row r of a (rows, cols) tensor starts at llama_dtype_bytes(dtype,
 * r * cols) when cols is a multiple of the block. */
size_t llama_dtype_bytes(int dtype, uint64_t n);
/* n elements of dtype at src into FP32 (n a multiple of the block) */
void llama_dequant(int dtype, const void *src, float *dst, size_t n);
/* n FP32 values into dtype at dst (llama_dtype_bytes(dtype, n) bytes; n a
 * multiple of the block): F16/BF16 round to nearest even, the block types
 * by quants.h's round-to-nearest quantizers */
void llama_quantize(int dtype, const float *src, void *dst, size_t n);
/* the tensor as FP32 (rows*cols floats), RoPE rows made interleaved */
void llama_tensor_to_f32(const LlamaTensor *t, float *dst);
/* interleaved row h*hd + 2i + j <- rotate-half row h*hd + j*(hd/2) + i, for
 * every head of a (heads*hd, cols) matrix */
void llama_unpermute_rows(const float *src, float *dst, int heads, int hd, size_t cols);

#endif
