/* safetensors.h -- Hugging Face safetensors reader: an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, ...},
 * then the data. The parser works on a byte buffer (mmap'd file or fuzzer
 * input) and checks every offset, shape and size before anything is read. */
#ifndef OB_SAFETENSORS_H
#define OB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_F8_E4M3, ST_F8_E5M2, ST_NDTYPES };

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* as the reference implementation */

typedef struct {
    char *name;
    int dtype;
    int n_dims;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets into the data section */
    uint64_t n_elems;
} STTensor;

typedef struct {
    const uint8_t *base;  /* data section (borrowed) */
    uint64_t data_size;
    size_t n;
    STTensor *t;
} STFile;

/* parse and validate; errors carry no path */
int st_parse(STFile *f, const void *data, size_t size, char *err);
void st_free(STFile *f);
const STTensor *st_find(const STFile *f, const char *name);
/* sort f's tensors by name (as st_find wants them); -1 on a duplicate name
 * (st_parse does it; other readers that fill an STFile call it) */
int st_index(STFile *f, char *err);
/* the n bytes at s for a message: non-printable bytes as '?', cut with "..."
 * to fit cap (> 4) bytes with the NUL */
void st_show(char *dst, size_t cap, const char *s, size_t n);
const char *st_dtype_name(int dtype);
/* convert an F32/F16/BF16 tensor to FP32 (n_elems floats); -1 otherwise */
int st_to_f32(const STFile *f, const STTensor *t, float *dst);
/* "4096, 512" (the shape, for messages) into buf */
void st_shape_str(const STTensor *t, char *buf, size_t n);

/* a tensor to write: data is n_elems little-endian elements of dtype */
typedef struct {
    const char *name;
    int dtype;
    int n_dims;
    uint64_t shape[ST_MAX_DIMS];
    const void *data;
} STWrite;
/* write a safetensors file at path (atomically, base/file.h): the header
 * with "__metadata__": {"format": "pt"} (what transformers' torch loader
 * expects), the tensors in the order given, 8-byte aligned header */
int st_write_file(const char *path, const STWrite *t, size_t n, char *err);

#endif
