/* gguf.h -- GGUF (llama.cpp) v2/v3 reader: a bounds-checked parser over a
 * byte buffer (header, metadata key/values of every type, tensor infos,
 * alignment, data offset) and the llama teacher reader on top of it
 * (F32/F16/BF16/Q8_0/Q4_0/Q5_0/Q4_K/Q5_K/Q6_K tensors described in
 * place, the tokenizer from
 * tokenizer.ggml.*). GGUF keeps llama.cpp's interleaved RoPE pairs, the same
 * layout as llama2.c, so no row permutation is needed. */
#ifndef OB_GGUF_H
#define OB_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>

#include "format/llama.h"
#include "format/tokenizer.h"

/* metadata value types */
enum {
    GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
    GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_NTYPES
};
/* ggml tensor types read here */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q5_0 = 6, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q5_K = 13,
    GGML_Q6_K = 14, GGML_BF16 = 30
};

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_DEPTH 4 /* arrays of arrays */

typedef struct {
    const char *key;      /* points into the buffer, key_len bytes (not NUL-terminated) */
    size_t key_len;
    uint32_t type;
    union { uint64_t u; int64_t i; double f; } num; /* scalars (BOOL in u) */
    const uint8_t *str;   /* STRING: bytes; ARRAY: first element */
    uint64_t len;         /* STRING: byte length; ARRAY: element count */
    uint32_t arr_type;    /* ARRAY: element type */
} GGUFKV;

typedef struct {
    const char *name;     /* points into the buffer */
    size_t name_len;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] varies fastest (columns) */
    uint32_t type;
    uint64_t offset;      /* from the start of the data section */
    uint64_t n_elems, n_bytes;
} GGUFTensor;

typedef struct {
    const uint8_t *data;  /* borrowed whole-file buffer */
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    GGUFKV *kv;
    GGUFTensor *tensors;
    uint64_t alignment;
    uint64_t data_offset; /* start of the tensor data section */
} GGUF;

/* parse and validate everything but tensor contents; errors carry no path */
int gguf_parse(GGUF *g, const void *data, size_t size, char *err);
void gguf_free(GGUF *g);

const GGUFKV *gguf_find_kv(const GGUF *g, const char *key);
const GGUFTensor *gguf_find_tensor(const GGUF *g, const char *name);
/* scalar lookups: 0 found, 1 absent, -1 wrong type/range (err set) */
int gguf_get_int(const GGUF *g, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err);
int gguf_get_float(const GGUF *g, const char *key, double *out, char *err);
/* string value as a malloc'd NUL-terminated copy, or NULL */
char *gguf_get_str(const GGUF *g, const char *key);
const char *gguf_type_name(uint32_t ggml_type);
/* the LLAMA_* element type of a ggml type, -1 if not read here; and back
 * (UINT32_MAX if none) */
int gguf_llama_dtype(uint32_t ggml_type);
uint32_t gguf_ggml_type(int llama_dtype);

/* 1 when the file starts with the GGUF magic, else 0 with why */
int gguf_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why);
/* read a llama GGUF teacher from a buffer that outlives f (tensors point
 * into it); tok (optional) receives the embedded tokenizer when there is
 * one (*tok_loaded = 1); errors carry no path */
int gguf_read(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const void *data, size_t size, char *err);
/* the same from a file, mmap'd and owned by f; errors are "path: what" */
int gguf_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err);

#endif
