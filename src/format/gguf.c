/* gguf.c -- GGUF v2/v3 parser and llama teacher loader (see gguf.h). Every
 * read is bounds-checked against the buffer; counts are checked against the
 * bytes left before anything is allocated. */
#include "format/gguf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 256

static const size_t scalar_size[GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const kv_type_names[GGUF_NTYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                       "bool", "string", "array", "u64", "i64", "f64"};

const char *gguf_type_name(uint32_t t)
{
    static const char *const names[] = {
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};
    if (t < sizeof names / sizeof names[0]) return names[t];
    return "unknown";
}

typedef struct { const uint8_t *p; size_t size, off; } Rd;

static int rd(Rd *r, void *dst, size_t n)
{
    if (n > r->size - r->off) return -1;
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}

static size_t left(const Rd *r) { return r->size - r->off; }

/* a string: u64 length + bytes, kept as a pointer into the buffer */
static int rd_str(Rd *r, const uint8_t **s, uint64_t *len, const char *what, char *err)
{
    uint64_t n;
    if (rd(r, &n, 8)) { ob_seterr(err, "truncated at offset %zu (reading %s length)", r->off, what); return -1; }
    if (n > left(r)) {
        ob_seterr(err, "%s length %llu at offset %zu runs past the end of the file", what, (unsigned long long)n, r->off - 8);
        return -1;
    }
    *s = r->p + r->off;
    *len = n;
    r->off += n;
    return 0;
}

/* rd_str into a key's or a tensor's name */
static int rd_name(Rd *r, const char **s, size_t *len, const char *what, char *err)
{
    const uint8_t *p;
    uint64_t n;
    if (rd_str(r, &p, &n, what, err)) return -1;
    *s = (const char *)p;
    *len = n;
    return 0;
}

/* validate (and step over) one value of type t */
static int skip_value(Rd *r, uint32_t t, int depth, GGUFKV *kv, char *err)
{
    if (t >= GGUF_NTYPES) { ob_seterr(err, "unknown metadata value type %u at offset %zu", t, r->off); return -1; }
    if (t == GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        if (rd_str(r, &s, &n, "string", err)) return -1;
        if (kv) { kv->str = s; kv->len = n; }
        return 0;
    }
    if (t == GGUF_ARRAY) {
        uint32_t et;
        uint64_t cnt;
        if (depth >= GGUF_MAX_DEPTH) { ob_seterr(err, "arrays nested deeper than %d", GGUF_MAX_DEPTH); return -1; }
        if (rd(r, &et, 4) || rd(r, &cnt, 8)) { ob_seterr(err, "truncated array header at offset %zu", r->off); return -1; }
        if (et >= GGUF_NTYPES) { ob_seterr(err, "unknown array element type %u at offset %zu", et, r->off - 12); return -1; }
        /* every element takes at least min bytes: reject absurd counts now */
        size_t min = et == GGUF_STRING ? 8 : et == GGUF_ARRAY ? 12 : scalar_size[et];
        if (cnt > left(r) / min) {
            ob_seterr(err, "array of %llu %s elements at offset %zu runs past the end of the file", (unsigned long long)cnt,
                      kv_type_names[et], r->off - 12);
            return -1;
        }
        if (kv) { kv->arr_type = et; kv->len = cnt; kv->str = r->p + r->off; }
        if (et != GGUF_STRING && et != GGUF_ARRAY) { r->off += cnt * min; return 0; }
        for (uint64_t i = 0; i < cnt; i++)
            if (skip_value(r, et, depth + 1, NULL, err)) return -1;
        return 0;
    }
    uint8_t buf[8] = {0};
    if (rd(r, buf, scalar_size[t])) { ob_seterr(err, "truncated %s value at offset %zu", kv_type_names[t], r->off); return -1; }
    if (kv) {
        switch (t) {
        case GGUF_U8: case GGUF_BOOL: kv->num.u = buf[0]; kv->num.i = (int64_t)kv->num.u; break;
        case GGUF_I8: kv->num.i = (int8_t)buf[0]; break;
        case GGUF_U16: { uint16_t v; memcpy(&v, buf, 2); kv->num.i = v; break; }
        case GGUF_I16: { int16_t v; memcpy(&v, buf, 2); kv->num.i = v; break; }
        case GGUF_U32: { uint32_t v; memcpy(&v, buf, 4); kv->num.i = v; break; }
        case GGUF_I32: { int32_t v; memcpy(&v, buf, 4); kv->num.i = v; break; }
        case GGUF_U64: memcpy(&kv->num.u, buf, 8); break;
        case GGUF_I64: memcpy(&kv->num.i, buf, 8); break;
        case GGUF_F32: { float v; memcpy(&v, buf, 4); kv->num.f = v; break; }
        case GGUF_F64: memcpy(&kv->num.f, buf, 8); break;
        }
    }
    return 0;
}

static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* sort the n items of size sz at ix with cmp; the index of the first one
 * equal to its predecessor, or 0 when all differ */
static uint64_t sort_first_dup(void *ix, uint64_t n, size_t sz, int (*cmp)(const void *, const void *))
{
    qsort(ix, n, sz, cmp);
    for (uint64_t i = 1; i < n; i++)
        if (!cmp((const char *)ix + (i - 1) * sz, (const char *)ix + i * sz)) return i;
    return 0;
}

static int cmp_tensor_name(const void *x, const void *y)
{
    const GGUFTensor *a = *(const GGUFTensor *const *)x, *b = *(const GGUFTensor *const *)y;
    return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

static int cmp_tensor_off(const void *x, const void *y)
{
    const GGUFTensor *a = *(const GGUFTensor *const *)x, *b = *(const GGUFTensor *const *)y;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static int cmp_kv_key(const void *x, const void *y)
{
    const GGUFKV *a = *(const GGUFKV *const *)x, *b = *(const GGUFKV *const *)y;
    return name_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* printable (truncated) copy of a buffer name for messages */
static const char *shown(const char *s, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) buf[k++] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    if (n && k < n && k + 4 >= cap) { buf[k++] = '.'; buf[k++] = '.'; buf[k++] = '.'; }
    buf[k] = 0;
    return buf;
}

static int tensor_bytes(GGUFTensor *t, char *err)
{
    char nb[80];
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || n > (UINT64_C(1) << 46) / t->ne[d]) {
            ob_seterr(err, "tensor %s: dimension %u is %llu (zero or too large for the product of dimensions)",
                      shown(t->name, t->name_len, nb, sizeof nb), d, (unsigned long long)t->ne[d]);
            return -1;
        }
        n *= t->ne[d];
    }
    t->n_elems = n;
    int dt = gguf_llama_dtype(t->type);
    if (dt < 0) {
        ob_seterr(err, "tensor %s has type %s (%u); supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K",
                  shown(t->name, t->name_len, nb, sizeof nb), gguf_type_name(t->type), t->type);
        return -1;
    }
    int blk = llama_dtype_block(dt);
    if (t->ne[0] % (uint64_t)blk) {
        ob_seterr(err, "tensor %s: %s row length %llu is not a multiple of %d (the type's block)",
                  shown(t->name, t->name_len, nb, sizeof nb), gguf_type_name(t->type), (unsigned long long)t->ne[0], blk);
        return -1;
    }
    t->n_bytes = llama_dtype_bytes(dt, n);
    return 0;
}

int gguf_parse(GGUF *g, const void *data, size_t size, char *err)
{
    memset(g, 0, sizeof *g);
    g->data = data;
    g->size = size;
    Rd r = {data, size, 0};
    char magic[4];
    if (rd(&r, magic, 4) || memcmp(magic, "GGUF", 4)) { ob_seterr(err, "not a GGUF file (bad magic)"); return -1; }
    if (rd(&r, &g->version, 4) || rd(&r, &g->n_tensors, 8) || rd(&r, &g->n_kv, 8)) {
        ob_seterr(err, "truncated GGUF header (%zu bytes)", size);
        return -1;
    }
    if (g->version == 1) { ob_seterr(err, "GGUF version 1 is not supported (convert it to v3)"); return -1; }
    if (g->version != 2 && g->version != 3) {
        ob_seterr(err, "unsupported GGUF version %u%s", g->version,
                  (g->version & 0xffff) == 0 ? " (big-endian file?)" : "");
        return -1;
    }
    /* a key/value takes >= 13 bytes, a tensor info >= 25 */
    if (g->n_kv > left(&r) / 13) { ob_seterr(err, "metadata count %llu is larger than the file allows", (unsigned long long)g->n_kv); return -1; }
    if (g->n_tensors > left(&r) / 25) { ob_seterr(err, "tensor count %llu is larger than the file allows", (unsigned long long)g->n_tensors); return -1; }
    g->kv = ob_calloc(g->n_kv ? g->n_kv : 1, sizeof(GGUFKV));
    g->tensors = ob_calloc(g->n_tensors ? g->n_tensors : 1, sizeof(GGUFTensor));
    char nb[80];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        GGUFKV *kv = &g->kv[i];
        if (rd_name(&r, &kv->key, &kv->key_len, "metadata key", err)) goto fail;
        if (rd(&r, &kv->type, 4)) { ob_seterr(err, "truncated at metadata %llu", (unsigned long long)i); goto fail; }
        if (skip_value(&r, kv->type, 0, kv, err)) goto fail;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        GGUFTensor *t = &g->tensors[i];
        if (rd_name(&r, &t->name, &t->name_len, "tensor name", err)) goto fail;
        uint64_t nl = t->name_len;
        if (nl == 0 || nl > GGUF_MAX_NAME) { ob_seterr(err, "tensor %llu: name length %llu", (unsigned long long)i, (unsigned long long)nl); goto fail; }
        if (rd(&r, &t->n_dims, 4)) { ob_seterr(err, "truncated tensor info for %s", shown(t->name, nl, nb, sizeof nb)); goto fail; }
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
            ob_seterr(err, "tensor %s has %u dimensions (1..%d allowed)", shown(t->name, nl, nb, sizeof nb), t->n_dims, GGUF_MAX_DIMS);
            goto fail;
        }
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        if (rd(&r, t->ne, 8 * (size_t)t->n_dims) || rd(&r, &t->type, 4) || rd(&r, &t->offset, 8)) {
            ob_seterr(err, "truncated tensor info for %s", shown(t->name, nl, nb, sizeof nb));
            goto fail;
        }
        if (tensor_bytes(t, err)) goto fail;
    }
    /* alignment */
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GGUFKV *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32 || al->num.i == 0 || (al->num.i & (al->num.i - 1)) || al->num.i > (1 << 20)) {
            ob_seterr(err, "general.alignment must be a u32 power of two up to 2^20");
            goto fail;
        }
        g->alignment = (uint64_t)al->num.i;
    }
    g->data_offset = (r.off + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && g->data_offset > size) {
        ob_seterr(err, "tensor data section (offset %llu) starts past the end of the file (%zu bytes)", (unsigned long long)g->data_offset, size);
        goto fail;
    }
    uint64_t avail = g->data_offset <= size ? size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GGUFTensor *t = &g->tensors[i];
        if (t->offset % g->alignment) {
            ob_seterr(err, "tensor %s: offset %llu is not a multiple of the alignment %llu", shown(t->name, t->name_len, nb, sizeof nb),
                      (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (t->offset > avail || t->n_bytes > avail - t->offset) {
            ob_seterr(err, "tensor %s (%llu bytes at data offset %llu) runs past the end of the file", shown(t->name, t->name_len, nb, sizeof nb),
                      (unsigned long long)t->n_bytes, (unsigned long long)t->offset);
            goto fail;
        }
    }
    /* duplicates and overlaps */
    if (g->n_tensors > 1) {
        const GGUFTensor **ix = ob_malloc(g->n_tensors * sizeof *ix);
        for (uint64_t i = 0; i < g->n_tensors; i++) ix[i] = &g->tensors[i];
        uint64_t d = sort_first_dup(ix, g->n_tensors, sizeof *ix, cmp_tensor_name);
        int bad = d != 0;
        if (bad) ob_seterr(err, "duplicate tensor name %s", shown(ix[d]->name, ix[d]->name_len, nb, sizeof nb));
        if (!bad) {
            qsort(ix, g->n_tensors, sizeof *ix, cmp_tensor_off);
            for (uint64_t i = 1; i < g->n_tensors && !bad; i++)
                if (ix[i]->offset < ix[i - 1]->offset + ix[i - 1]->n_bytes) {
                    char nb2[80];
                    ob_seterr(err, "tensors %s and %s overlap", shown(ix[i - 1]->name, ix[i - 1]->name_len, nb, sizeof nb),
                              shown(ix[i]->name, ix[i]->name_len, nb2, sizeof nb2));
                    bad = 1;
                }
        }
        free(ix);
        if (bad) goto fail;
    }
    if (g->n_kv > 1) {
        const GGUFKV **ix = ob_malloc(g->n_kv * sizeof *ix);
        for (uint64_t i = 0; i < g->n_kv; i++) ix[i] = &g->kv[i];
        uint64_t d = sort_first_dup(ix, g->n_kv, sizeof *ix, cmp_kv_key);
        if (d) ob_seterr(err, "duplicate metadata key %s", shown(ix[d]->key, ix[d]->key_len, nb, sizeof nb));
        free(ix);
        if (d) goto fail;
    }
    return 0;
fail:
    gguf_free(g);
    return -1;
}

void gguf_free(GGUF *g)
{
    if (!g) return;
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

const GGUFKV *gguf_find_kv(const GGUF *g, const char *key)
{
    size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && !memcmp(g->kv[i].key, key, n)) return &g->kv[i];
    return NULL;
}

const GGUFTensor *gguf_find_tensor(const GGUF *g, const char *name)
{
    size_t n = strlen(name);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name_len == n && !memcmp(g->tensors[i].name, name, n)) return &g->tensors[i];
    return NULL;
}

static int is_int_type(uint32_t t)
{
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 || t == GGUF_I32 ||
           t == GGUF_U64 || t == GGUF_I64;
}

int gguf_get_int(const GGUF *g, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err)
{
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    if (!is_int_type(kv->type)) {
        ob_seterr(err, "metadata %s has type %s, expected an integer", key, kv->type < GGUF_NTYPES ? kv_type_names[kv->type] : "?");
        return -1;
    }
    if ((kv->type == GGUF_U64 && kv->num.u > (uint64_t)INT64_MAX) || kv->num.i < lo || kv->num.i > hi) {
        ob_seterr(err, "metadata %s = %lld is out of range", key, (long long)kv->num.i);
        return -1;
    }
    *out = kv->num.i;
    return 0;
}

int gguf_get_float(const GGUF *g, const char *key, double *out, char *err)
{
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64) {
        ob_seterr(err, "metadata %s has type %s, expected a float", key, kv->type < GGUF_NTYPES ? kv_type_names[kv->type] : "?");
        return -1;
    }
    if (!isfinite(kv->num.f)) { ob_seterr(err, "metadata %s is not finite", key); return -1; }
    *out = kv->num.f;
    return 0;
}

char *gguf_get_str(const GGUF *g, const char *key)
{
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_STRING) return NULL;
    char *s = ob_malloc(kv->len + 1);
    memcpy(s, kv->str, kv->len);
    s[kv->len] = 0;
    return s;
}

/* ---- llama teacher ------------------------------------------------------ */

static const struct { uint32_t ggml; int dtype; } ggml_dtypes[] = {
    {GGML_F32, LLAMA_F32},   {GGML_F16, LLAMA_F16},   {GGML_BF16, LLAMA_BF16}, {GGML_Q8_0, LLAMA_Q8_0}, {GGML_Q4_0, LLAMA_Q4_0},
    {GGML_Q5_0, LLAMA_Q5_0}, {GGML_Q4_K, LLAMA_Q4_K}, {GGML_Q5_K, LLAMA_Q5_K}, {GGML_Q6_K, LLAMA_Q6_K},
};

int gguf_llama_dtype(uint32_t ggml_type)
{
    for (size_t i = 0; i < sizeof ggml_dtypes / sizeof ggml_dtypes[0]; i++)
        if (ggml_dtypes[i].ggml == ggml_type) return ggml_dtypes[i].dtype;
    return -1;
}

uint32_t gguf_ggml_type(int llama_dtype)
{
    for (size_t i = 0; i < sizeof ggml_dtypes / sizeof ggml_dtypes[0]; i++)
        if (ggml_dtypes[i].dtype == llama_dtype) return ggml_dtypes[i].ggml;
    return UINT32_MAX;
}

/* add tensor `name` to f as (role, layer) after checking it is (rows, cols)
 * -- or 1-D (cols) when rows == 0; its data stays in the buffer */
static int take(const GGUF *g, LlamaFile *f, const char *name, int role, int layer, size_t rows, size_t cols, char *err)
{
    const GGUFTensor *t = gguf_find_tensor(g, name);
    if (!t) { ob_seterr(err, "missing tensor %s", name); return -1; }
    int ok = rows == 0 ? (t->n_dims == 1 && t->ne[0] == cols)
                       : (t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows);
    if (!ok) {
        char shape[128] = "";
        size_t k = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            k += snprintf(shape + k, sizeof shape - k, "%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
        if (rows) ob_seterr(err, "tensor %s has shape [%s], the metadata implies [%zu, %zu]", name, shape, cols, rows);
        else ob_seterr(err, "tensor %s has shape [%s], the metadata implies [%zu]", name, shape, cols);
        return -1;
    }
    llama_file_add(f, role, layer, gguf_llama_dtype(t->type), rows ? rows : 1, cols, g->data + g->data_offset + t->offset, 0);
    return 0;
}

static int config_from_meta(const GGUF *g, LlamaConfig *c, char *err)
{
    char *arch = gguf_get_str(g, "general.architecture");
    if (!arch) { ob_seterr(err, "no general.architecture string"); return -1; }
    if (strcmp(arch, "llama")) {
        char a[64];
        ob_seterr(err, "architecture '%s' is not supported (only llama)", shown(arch, strlen(arch), a, sizeof a));
        free(arch);
        return -1;
    }
    free(arch);
    struct { const char *key; int *dst; int required; int64_t lo, hi; } ints[] = {
        {"llama.embedding_length", &c->dim, 1, 1, 1 << 20},
        {"llama.feed_forward_length", &c->hidden_dim, 1, 1, 1 << 22},
        {"llama.block_count", &c->n_layers, 1, 1, 1 << 16},
        {"llama.attention.head_count", &c->n_heads, 1, 1, 1 << 16},
        {"llama.attention.head_count_kv", &c->n_kv_heads, 0, 1, 1 << 16},
        {"llama.context_length", &c->seq_len, 0, 1, 1 << 24},
        {"llama.attention.key_length", &c->head_dim, 0, 1, 1 << 16},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v;
        int rc = gguf_get_int(g, ints[i].key, ints[i].lo, ints[i].hi, &v, err);
        if (rc < 0) return -1;
        if (rc == 1) {
            if (ints[i].required) { ob_seterr(err, "missing metadata %s", ints[i].key); return -1; }
            continue;
        }
        *ints[i].dst = (int)v;
    }
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (!c->seq_len) c->seq_len = 2048;
    if (!c->head_dim) {
        if (c->dim % c->n_heads) { ob_seterr(err, "embedding_length %d is not a multiple of head_count %d", c->dim, c->n_heads); return -1; }
        c->head_dim = c->dim / c->n_heads;
    }
    int64_t v;
    int rc = gguf_get_int(g, "llama.attention.value_length", 1, 1 << 16, &v, err);
    if (rc < 0) return -1;
    if (rc == 0 && v != c->head_dim) { ob_seterr(err, "value_length %lld differs from key_length %d", (long long)v, c->head_dim); return -1; }
    rc = gguf_get_int(g, "llama.rope.dimension_count", 1, 1 << 16, &v, err);
    if (rc < 0) return -1;
    if (rc == 0 && v != c->head_dim) {
        ob_seterr(err, "rope.dimension_count %lld differs from the head size %d (partial rotary is not supported)", (long long)v, c->head_dim);
        return -1;
    }
    if (gguf_find_kv(g, "llama.rope.scaling.type")) {
        char *s = gguf_get_str(g, "llama.rope.scaling.type");
        int none = s && !strcmp(s, "none");
        free(s);
        if (!none) { ob_seterr(err, "RoPE scaling (llama.rope.scaling.type) is not supported"); return -1; }
    }
    double f = 1e-5;
    if (gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &f, err) < 0) return -1;
    c->norm_eps = (float)f;
    f = 10000.0;
    if (gguf_get_float(g, "llama.rope.freq_base", &f, err) < 0) return -1;
    c->rope_theta = (float)f;
    const GGUFTensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb) { ob_seterr(err, "missing tensor token_embd.weight"); return -1; }
    if (emb->n_dims != 2 || emb->ne[0] != (uint64_t)c->dim || emb->ne[1] > (1 << 22)) {
        ob_seterr(err, "tensor token_embd.weight has a shape that does not match embedding_length %d", c->dim);
        return -1;
    }
    c->vocab_size = (int)emb->ne[1];
    rc = gguf_get_int(g, "llama.vocab_size", 1, 1 << 22, &v, err);
    if (rc < 0) return -1;
    if (rc == 0 && v != c->vocab_size) {
        ob_seterr(err, "llama.vocab_size %lld differs from token_embd.weight's %d rows", (long long)v, c->vocab_size);
        return -1;
    }
    c->shared_classifier = gguf_find_tensor(g, "output.weight") == NULL;
    return llama_config_check(c, err);
}

/* every tensor of the config, there with its shape, into f */
static int add_tensors(const GGUF *g, LlamaFile *f, char *err)
{
    const LlamaConfig *c = &f->cfg;
    size_t C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    if (take(g, f, "token_embd.weight", LLAMA_TOK_EMB, -1, V, C, err)) return -1;
    if (take(g, f, "output_norm.weight", LLAMA_RMS_FINAL, -1, 0, C, err)) return -1;
    if (!c->shared_classifier && take(g, f, "output.weight", LLAMA_WCLS, -1, V, C, err)) return -1;
    char nm[96];
#define TAKE(suffix, role, rows, cols)                                     \
    do {                                                                   \
        snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, suffix);            \
        if (take(g, f, nm, role, l, rows, cols, err)) return -1;           \
    } while (0)
    for (int l = 0; l < c->n_layers; l++) {
        TAKE("attn_norm", LLAMA_RMS_ATT_L, 0, C);
        TAKE("attn_q", LLAMA_WQ_L, qd, C);
        TAKE("attn_k", LLAMA_WK_L, kvd, C);
        TAKE("attn_v", LLAMA_WV_L, kvd, C);
        TAKE("attn_output", LLAMA_WO_L, C, qd);
        TAKE("ffn_norm", LLAMA_RMS_FFN_L, 0, C);
        TAKE("ffn_gate", LLAMA_W1_L, F, C);
        TAKE("ffn_down", LLAMA_W2_L, C, F);
        TAKE("ffn_up", LLAMA_W3_L, F, C);
    }
#undef TAKE
    return 0;
}

/* int array of exactly n entries (i32/u32), or NULL */
static const GGUFKV *arr_of(const GGUF *g, const char *key, uint32_t t1, uint32_t t2, uint64_t n, char *err, int *bad)
{
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv) return NULL;
    if (kv->type != GGUF_ARRAY || (kv->arr_type != t1 && kv->arr_type != t2) || kv->len != n) {
        ob_seterr(err, "metadata %s is not an array of %llu %s", key, (unsigned long long)n, kv_type_names[t1]);
        *bad = 1;
        return NULL;
    }
    return kv;
}

/* a copy (NUL-terminated) of the length-prefixed string at *p, already
 * checked by the parser; *p moves past it */
static char *take_str(const uint8_t **p)
{
    uint64_t n;
    memcpy(&n, *p, 8);
    char *s = ob_malloc(n + 1);
    memcpy(s, *p + 8, n);
    s[n] = 0;
    *p += 8 + n;
    return s;
}

/* tokenizer.ggml.*: "llama" (SentencePiece) and "gpt2" (byte-level BPE) */
static int load_tokenizer(const GGUF *g, int vocab, Tokenizer *tok, int *loaded, char *err)
{
    *loaded = 0;
    char *model = gguf_get_str(g, "tokenizer.ggml.model");
    if (!model) return 0;
    int spm = !strcmp(model, "llama"), bpe = !strcmp(model, "gpt2");
    free(model);
    if (!spm && !bpe) return 0; /* another tokenizer kind: the CLI needs --tokenizer */
    const GGUFKV *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_ARRAY || toks->arr_type != GGUF_STRING) {
        ob_seterr(err, "tokenizer.ggml.tokens is missing or not a string array");
        return -1;
    }
    if (toks->len > (uint64_t)vocab || toks->len == 0) {
        ob_seterr(err, "tokenizer.ggml.tokens has %llu entries, the model's vocabulary has %d", (unsigned long long)toks->len, vocab);
        return -1;
    }
    int bad = 0;
    const GGUFKV *sc = arr_of(g, "tokenizer.ggml.scores", GGUF_F32, GGUF_F32, toks->len, err, &bad);
    const GGUFKV *ty = arr_of(g, "tokenizer.ggml.token_type", GGUF_I32, GGUF_U32, toks->len, err, &bad);
    if (bad) return -1;
    int64_t bos = spm ? 1 : -1, eos = spm ? 2 : -1, unk = spm ? 0 : -1;
    if (gguf_get_int(g, "tokenizer.ggml.bos_token_id", 0, vocab - 1, &bos, err) < 0) return -1;
    if (gguf_get_int(g, "tokenizer.ggml.eos_token_id", 0, vocab - 1, &eos, err) < 0) return -1;
    if (gguf_get_int(g, "tokenizer.ggml.unknown_token_id", 0, vocab - 1, &unk, err) < 0) return -1;
    /* a vocabulary padded past the tokenizer gets empty, unused pieces */
    char **pieces = ob_calloc((size_t)vocab, sizeof(char *));
    float *scores = ob_calloc((size_t)vocab, sizeof(float));
    int *types = ob_calloc((size_t)vocab, sizeof(int));
    for (int i = (int)toks->len; i < vocab; i++) { pieces[i] = ob_strdup(""); types[i] = 5; }
    const uint8_t *p = toks->str;
    const uint8_t *ts = ty ? ty->str : NULL, *ss = sc ? sc->str : NULL;
    for (uint64_t i = 0; i < toks->len; i++) {
        pieces[i] = take_str(&p);
        if (ss) memcpy(&scores[i], ss + 4 * i, 4);
        if (ts) { int32_t v; memcpy(&v, ts + 4 * i, 4); types[i] = v; }
    }
    int rc;
    if (spm) {
        rc = tok_init_spm(tok, vocab, (const char *const *)pieces, scores, types, (int)bos, (int)eos, (int)unk, err);
    } else {
        const GGUFKV *mg = gguf_find_kv(g, "tokenizer.ggml.merges");
        if (!mg || mg->type != GGUF_ARRAY || mg->arr_type != GGUF_STRING || mg->len > (1u << 24)) {
            ob_seterr(err, "tokenizer.ggml.merges is missing or not a string array");
            rc = -1;
        } else {
            char **merges = ob_calloc(mg->len ? mg->len : 1, sizeof(char *));
            const uint8_t *q = mg->str;
            for (uint64_t i = 0; i < mg->len; i++) {
                merges[i] = take_str(&q);
            }
            char *pre = gguf_get_str(g, "tokenizer.ggml.pre");
            int pretok = pre && (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3")) ? TOK_PRE_LLAMA3 : TOK_PRE_GPT2;
            free(pre);
            rc = tok_init_bytelevel(tok, vocab, (const char *const *)pieces, types, (int)mg->len,
                                    (const char *const *)merges, (int)bos, (int)eos, pretok, err);
            for (uint64_t i = 0; i < mg->len; i++) free(merges[i]);
            free(merges);
        }
    }
    for (int i = 0; i < vocab; i++) free(pieces[i]);
    free(pieces); free(scores); free(types);
    if (rc) return -1;
    tok->chat_template = gguf_get_str(g, "tokenizer.chat_template");
    *loaded = 1;
    return 0;
}

int gguf_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why)
{
    (void)path;
    if (!S_ISREG(st->st_mode)) { ob_seterr(why, "not a file"); return 0; }
    if (n < 4 || memcmp(head, "GGUF", 4)) { ob_seterr(why, "no GGUF magic"); return 0; }
    return 1;
}

int gguf_read(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const void *data, size_t size, char *err)
{
    GGUF g;
    int dummy;
    if (!tok_loaded) tok_loaded = &dummy;
    *tok_loaded = 0;
    llama_file_init(f);
    f->format = "gguf";
    if (gguf_parse(&g, data, size, err)) return -1;
    int rc = config_from_meta(&g, &f->cfg, err) || add_tensors(&g, f, err) ||
                     (tok && load_tokenizer(&g, f->cfg.vocab_size, tok, tok_loaded, err))
                 ? -1
                 : 0;
    gguf_free(&g);
    if (rc) llama_file_free(f);
    return rc;
}

int gguf_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err)
{
    llama_file_init(f);
    if (tok_loaded) *tok_loaded = 0;
    void *map;
    size_t size;
    if (file_map(path, &map, &size, err)) return -1;
    if (size < 24) { ob_seterr(err, "%s: truncated GGUF header (%zu bytes)", path, size); file_unmap(map, size); return -1; }
    char why[OB_ERRLEN];
    if (gguf_read(f, tok, tok_loaded, map, size, why)) {
        file_unmap(map, size);
        ob_seterr(err, "%s: %s", path, why);
        return -1;
    }
    llama_file_own(f, map, size, 1); /* the tensors point into it */
    return 0;
}
