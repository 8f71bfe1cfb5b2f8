/* llama.c -- the format-independent description of a LLaMA teacher: config
 * checks, the tensor table, dequantization to FP32 (see llama.h). */
#include "format/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"
#include "format/quants.h"

/* limits that keep every size computation far from overflow and reject
 * absurd headers before any allocation */
#define MAX_DIM (1 << 16)
#define MAX_HIDDEN (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_VOCAB (1 << 22)
#define MAX_SEQ (1 << 20)

int llama_config_check(const LlamaConfig *c, char *err)
{
    if (c->dim <= 0 || c->dim > MAX_DIM) { ob_seterr(err, "bad dim %d", c->dim); return -1; }
    if (c->hidden_dim <= 0 || c->hidden_dim > MAX_HIDDEN) { ob_seterr(err, "bad hidden_dim %d", c->hidden_dim); return -1; }
    if (c->n_layers <= 0 || c->n_layers > MAX_LAYERS) { ob_seterr(err, "bad n_layers %d", c->n_layers); return -1; }
    if (c->n_heads <= 0 || c->n_heads > MAX_HEADS) { ob_seterr(err, "bad n_heads %d", c->n_heads); return -1; }
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads) { ob_seterr(err, "bad n_kv_heads %d", c->n_kv_heads); return -1; }
    if (c->n_heads % c->n_kv_heads) { ob_seterr(err, "n_heads %d is not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads); return -1; }
    if (c->head_dim <= 0 || c->head_dim % 2 || (long)c->head_dim * c->n_heads > MAX_DIM) {
        ob_seterr(err, "bad head_dim %d", c->head_dim); return -1;
    }
    if (c->vocab_size <= 0 || c->vocab_size > MAX_VOCAB) { ob_seterr(err, "bad vocab_size %d", c->vocab_size); return -1; }
    if (c->seq_len <= 0 || c->seq_len > MAX_SEQ) { ob_seterr(err, "bad seq_len %d", c->seq_len); return -1; }
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta)) { ob_seterr(err, "bad rope_theta"); return -1; }
    if (!(c->norm_eps > 0) || !(c->norm_eps < 1)) { ob_seterr(err, "bad norm_eps"); return -1; }
    return 0;
}

/* ---- the tensor table ---------------------------------------------------- */

void llama_file_init(LlamaFile *f) { memset(f, 0, sizeof *f); }

void llama_file_free(LlamaFile *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_regions; i++) {
        LlamaRegion *r = &f->regions[i];
        if (r->mapped) file_unmap(r->p, r->n);
        else free(r->p);
    }
    free(f->regions);
    free(f->t);
    memset(f, 0, sizeof *f);
}

void llama_file_own(LlamaFile *f, void *p, size_t n, int mapped)
{
    f->regions = realloc(f->regions, (size_t)(f->n_regions + 1) * sizeof *f->regions);
    if (!f->regions) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    f->regions[f->n_regions++] = (LlamaRegion){p, n, mapped};
}

void llama_file_add(LlamaFile *f, int role, int layer, int dtype, uint64_t rows, uint64_t cols,
                    const void *data, int rope_heads)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->t = realloc(f->t, (size_t)f->cap * sizeof *f->t);
        if (!f->t) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    }
    f->t[f->n++] = (LlamaTensor){role, layer, dtype, rows, cols, data, llama_dtype_bytes(dtype, rows * cols), rope_heads};
}

const LlamaTensor *llama_file_find(const LlamaFile *f, int role, int layer)
{
    for (int i = 0; i < f->n; i++)
        if (f->t[i].role == role && f->t[i].layer == layer) return &f->t[i];
    return NULL;
}

int llama_role_shape(const LlamaConfig *c, int role, uint64_t *rows, uint64_t *cols)
{
    uint64_t C = (uint64_t)c->dim, F = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size;
    uint64_t qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t r = 1, k = C;
    switch (role) {
    case LLAMA_TOK_EMB: r = V; break;
    case LLAMA_WCLS: if (c->shared_classifier) return -1; r = V; break;
    case LLAMA_RMS_FINAL: case LLAMA_RMS_ATT_L: case LLAMA_RMS_FFN_L: break;
    case LLAMA_WQ_L: r = qd; break;
    case LLAMA_WK_L: case LLAMA_WV_L: r = kvd; break;
    case LLAMA_WO_L: r = C; k = qd; break;
    case LLAMA_W1_L: case LLAMA_W3_L: r = F; break;
    case LLAMA_W2_L: r = C; k = F; break;
    default: return -1;
    }
    *rows = r;
    *cols = k;
    return 0;
}

static const char *const role_names[LLAMA_NROLES] = {
    "token embedding", "final norm", "output head", "attention norm", "wq", "wk", "wv", "wo",
    "ffn norm", "w1 (gate)", "w2 (down)", "w3 (up)"};

const char *llama_role_name(int role) { return role >= 0 && role < LLAMA_NROLES ? role_names[role] : "?"; }

static int check_one(const LlamaFile *f, int role, int layer, char *err)
{
    uint64_t r, k;
    if (llama_role_shape(&f->cfg, role, &r, &k)) return 0;
    const LlamaTensor *t = llama_file_find(f, role, layer);
    char where[32] = "";
    if (layer >= 0) snprintf(where, sizeof where, " of layer %d", layer);
    if (!t) { ob_seterr(err, "no %s tensor%s", llama_role_name(role), where); return -1; }
    if (t->rows != r || t->cols != k) {
        ob_seterr(err, "the %s tensor%s is (%llu, %llu), the config implies (%llu, %llu)", llama_role_name(role), where,
                  (unsigned long long)t->rows, (unsigned long long)t->cols, (unsigned long long)r, (unsigned long long)k);
        return -1;
    }
    if (!t->bytes || !t->data) { ob_seterr(err, "the %s tensor%s has no data of type %s", llama_role_name(role), where, llama_dtype_name(t->dtype)); return -1; }
    if (t->rope_heads && (t->rows % (uint64_t)t->rope_heads || (t->rows / (uint64_t)t->rope_heads) % 2)) {
        ob_seterr(err, "the %s tensor%s has %llu rows, not %d heads of an even size", llama_role_name(role), where,
                  (unsigned long long)t->rows, t->rope_heads);
        return -1;
    }
    return 0;
}

int llama_file_check(const LlamaFile *f, char *err)
{
    if (llama_config_check(&f->cfg, err)) return -1;
    for (int role = 0; role < LLAMA_FIRST_LAYER_ROLE; role++)
        if (check_one(f, role, -1, err)) return -1;
    for (int l = 0; l < f->cfg.n_layers; l++)
        for (int role = LLAMA_FIRST_LAYER_ROLE; role < LLAMA_NROLES; role++)
            if (check_one(f, role, l, err)) return -1;
    return 0;
}

/* ---- element types ------------------------------------------------------- */

const char *llama_dtype_name(int dtype)
{
    static const char *const names[LLAMA_NDTYPES] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q4_K", "Q5_K", "Q6_K"};
    return dtype >= 0 && dtype < LLAMA_NDTYPES ? names[dtype] : "unknown";
}

/* the block types: quants.h's QUANT_* in the same order from LLAMA_Q8_0 */
static int qtype(int dtype) { return dtype >= LLAMA_Q8_0 && dtype < LLAMA_NDTYPES ? dtype - LLAMA_Q8_0 : -1; }

int llama_dtype_block(int dtype)
{
    return dtype == LLAMA_F32 || dtype == LLAMA_F16 || dtype == LLAMA_BF16 ? 1 : quant_block_elems(qtype(dtype));
}

size_t llama_dtype_bytes(int dtype, uint64_t n)
{
    switch (dtype) {
    case LLAMA_F32: return (size_t)n * 4;
    case LLAMA_F16: case LLAMA_BF16: return (size_t)n * 2;
    }
    uint64_t e = (uint64_t)quant_block_elems(qtype(dtype));
    return e && n % e == 0 ? (size_t)(n / e * (uint64_t)quant_block_bytes(qtype(dtype))) : 0;
}

void llama_dequant(int dtype, const void *src_, float *dst, size_t n)
{
    const uint8_t *src = src_;
    switch (dtype) {
    case LLAMA_F32: memcpy(dst, src, n * 4); break;
    case LLAMA_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = ob_fp16_to_fp32(h); }
        break;
    case LLAMA_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = ob_bf16_to_fp32(h); }
        break;
    default:
        if (qtype(dtype) >= 0) quant_dequant(qtype(dtype), src, dst, n / (size_t)quant_block_elems(qtype(dtype)));
    }
}

void llama_quantize(int dtype, const float *src, void *dst_, size_t n)
{
    uint8_t *dst = dst_;
    switch (dtype) {
    case LLAMA_F32: file_f32_to_le(dst, src, n); break;
    case LLAMA_F16: case LLAMA_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = dtype == LLAMA_F16 ? ob_fp32_to_fp16(src[i]) : ob_fp32_to_bf16(src[i]);
            dst[2 * i] = (uint8_t)h;
            dst[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    default:
        if (qtype(dtype) >= 0) quant_quantize(qtype(dtype), src, dst, n / (size_t)quant_block_elems(qtype(dtype)));
    }
}

void llama_unpermute_rows(const float *src, float *dst, int heads, int hd, size_t cols)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + 2 * i + j) * cols, src + ((size_t)h * hd + j * (hd / 2) + i) * cols,
                       cols * sizeof(float));
}

void llama_tensor_to_f32(const LlamaTensor *t, float *dst)
{
    size_t n = (size_t)(t->rows * t->cols);
    if (!t->rope_heads) { llama_dequant(t->dtype, t->data, dst, n); return; }
    float *tmp = ob_malloc(n * sizeof(float));
    llama_dequant(t->dtype, t->data, tmp, n);
    llama_unpermute_rows(tmp, dst, t->rope_heads, (int)(t->rows / (uint64_t)t->rope_heads), (size_t)t->cols);
    free(tmp);
}
