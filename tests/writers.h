/* writers.h -- small GGUF and safetensors writers for the loader tests: they
 * turn a Model (e.g. stories260K.bin) into F32/F16/BF16/Q8_0 GGUF files (the
 * other ggml block types through the library's llama_quantize) or
 * Hugging Face directories, and give knobs to break them on purpose. */
#ifndef OB_TEST_WRITERS_H
#define OB_TEST_WRITERS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "format/gguf.h"
#include "model/model.h"
#include "format/tokenizer.h"

typedef struct { uint8_t *p; size_t n, cap; } Buf;

static inline void buf_put(Buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
/* stories260K's shape as a loader must report it (the context and whether
 * the classifier is shared differ between its files) */
static inline int stories_config_ok(const ModelConfig *c, int seq_len, int shared)
{
    return c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4 &&
           c->head_dim == 8 && c->vocab_size == 512 && c->seq_len == seq_len && c->shared_classifier == shared &&
           c->rope_theta == 10000.0f && c->norm_eps == 1e-5f;
}

static inline void buf_u32(Buf *b, uint32_t v) { buf_put(b, &v, 4); }
static inline void buf_u64(Buf *b, uint64_t v) { buf_put(b, &v, 8); }
static inline void buf_gstr(Buf *b, const char *s) { buf_u64(b, strlen(s)); buf_put(b, s, strlen(s)); }

static inline int write_buf(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    if (n) fwrite(d, 1, n, f);
    return fclose(f);
}

/* ---- GGUF ----------------------------------------------------------------*/
typedef struct {
    char name[96];
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    const float *src;        /* n_elems floats */
    int64_t off_override;    /* >= 0: write this offset instead */
} WTensor;

typedef struct {
    Buf kv;                  /* serialized key/values */
    uint64_t n_kv;
    WTensor t[256];
    int n_t;
    uint32_t version;
    uint32_t alignment;
} GGUFW;

static inline void gw_key(GGUFW *w, const char *k, uint32_t type) { buf_gstr(&w->kv, k); buf_u32(&w->kv, type); w->n_kv++; }
static inline void gw_str(GGUFW *w, const char *k, const char *v) { gw_key(w, k, GGUF_STRING); buf_gstr(&w->kv, v); }
static inline void gw_u32(GGUFW *w, const char *k, uint32_t v) { gw_key(w, k, GGUF_U32); buf_u32(&w->kv, v); }
static inline void gw_f32(GGUFW *w, const char *k, float v) { gw_key(w, k, GGUF_F32); buf_put(&w->kv, &v, 4); }

static inline void gw_tensor(GGUFW *w, const char *name, uint32_t type, const float *src, uint64_t rows, uint64_t cols)
{
    WTensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = rows ? 2 : 1;
    t->ne[0] = cols;
    t->ne[1] = rows ? rows : 1;
    t->type = type;
    t->src = src;
    t->off_override = -1;
}

/* reference Q8_0 quantizer (as ggml's quantize_row_q8_0_ref) */
static inline void q8_0_block(const float *x, uint8_t *out)
{
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    uint16_t h = ob_fp32_to_fp16(d);
    memcpy(out, &h, 2);
    for (int i = 0; i < 32; i++) out[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
}

static inline uint64_t wt_elems(const WTensor *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims && d < 5; d++) n *= t->ne[d];
    return n;
}

static inline size_t wt_bytes(const WTensor *t)
{
    uint64_t n = wt_elems(t);
    int dt = gguf_llama_dtype(t->type);
    size_t b = dt >= 0 ? llama_dtype_bytes(dt, n) : 0;
    return b ? b : 64; /* unknown types and partial blocks: 64 bytes of zeros */
}

static inline void gw_build(GGUFW *w, Buf *out)
{
    uint32_t al = w->alignment ? w->alignment : 32;
    buf_put(out, "GGUF", 4);
    buf_u32(out, w->version ? w->version : 3);
    buf_u64(out, (uint64_t)w->n_t);
    buf_u64(out, w->n_kv);
    buf_put(out, w->kv.p, w->kv.n);
    uint64_t off = 0, *offs = calloc(w->n_t + 1, 8);
    for (int i = 0; i < w->n_t; i++) {
        WTensor *t = &w->t[i];
        buf_gstr(out, t->name);
        buf_u32(out, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(out, t->ne[d]);
        buf_u32(out, t->type);
        offs[i] = off;
        buf_u64(out, t->off_override >= 0 ? (uint64_t)t->off_override : off);
        off += (wt_bytes(t) + al - 1) / al * al;
    }
    while (out->n % al) buf_put(out, "", 1);
    size_t base = out->n;
    uint8_t *data = calloc(1, off + 1);
    for (int i = 0; i < w->n_t; i++) {
        WTensor *t = &w->t[i];
        uint8_t *d = data + offs[i];
        uint64_t n = wt_elems(t);
        if (!t->src) continue;
        for (uint64_t k = 0; k < n; k++) {
            if (t->type == GGML_F32) memcpy(d + 4 * k, &t->src[k], 4);
            else if (t->type == GGML_F16) { uint16_t h = ob_fp32_to_fp16(t->src[k]); memcpy(d + 2 * k, &h, 2); }
            else if (t->type == GGML_BF16) { uint16_t h = ob_fp32_to_bf16(t->src[k]); memcpy(d + 2 * k, &h, 2); }
        }
        if (t->type == GGML_Q8_0)
            for (uint64_t b = 0; b < n / 32; b++) q8_0_block(t->src + b * 32, d + b * 34);
        else if (gguf_llama_dtype(t->type) > LLAMA_Q8_0 && llama_dtype_bytes(gguf_llama_dtype(t->type), n))
            llama_quantize(gguf_llama_dtype(t->type), t->src, d, n);
    }
    buf_put(out, data, off);
    (void)base;
    free(data);
    free(offs);
}

/* build w into the file path, then free w's key/value buffer */
static inline int gw_save(GGUFW *w, const char *path)
{
    Buf b = {0};
    gw_build(w, &b);
    int rc = write_buf(path, b.p, b.n);
    free(b.p);
    free(w->kv.p);
    return rc;
}

/* metadata + tensors of a llama model; mat_type for the 2-D weights */
static inline void gw_model(GGUFW *w, const Model *m, uint32_t mat_type, int tied)
{
    const ModelConfig *c = &m->cfg;
    size_t C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    gw_str(w, "general.architecture", "llama");
    gw_u32(w, "llama.embedding_length", c->dim);
    gw_u32(w, "llama.feed_forward_length", c->hidden_dim);
    gw_u32(w, "llama.block_count", c->n_layers);
    gw_u32(w, "llama.attention.head_count", c->n_heads);
    gw_u32(w, "llama.attention.head_count_kv", c->n_kv_heads);
    gw_u32(w, "llama.context_length", c->seq_len);
    gw_u32(w, "llama.rope.dimension_count", c->head_dim);
    gw_u32(w, "llama.attention.key_length", c->head_dim);
    gw_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    gw_f32(w, "llama.rope.freq_base", c->rope_theta);
    gw_tensor(w, "token_embd.weight", mat_type, m->tok_emb, V, C);
    gw_tensor(w, "output_norm.weight", GGML_F32, m->rms_final, 0, C);
    if (!tied) gw_tensor(w, "output.weight", mat_type, m->wcls, V, C);
    char nm[96];
    for (int l = 0; l < c->n_layers; l++) {
#define T(s, ty, p, r, cc) snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, s), gw_tensor(w, nm, ty, p, r, cc)
        T("attn_norm", GGML_F32, m->rms_att + l * C, 0, C);
        T("attn_q", mat_type, m->wq + l * qd * C, qd, C);
        T("attn_k", mat_type, m->wk + l * kvd * C, kvd, C);
        T("attn_v", mat_type, m->wv + l * kvd * C, kvd, C);
        T("attn_output", mat_type, m->wo + l * C * qd, C, qd);
        T("ffn_norm", GGML_F32, m->rms_ffn + l * C, 0, C);
        T("ffn_gate", mat_type, m->w1 + l * F * C, F, C);
        T("ffn_down", mat_type, m->w2 + l * C * F, C, F);
        T("ffn_up", mat_type, m->w3 + l * F * C, F, C);
#undef T
    }
}

/* a llama SentencePiece tokenizer in tokenizer.ggml.* from a Tokenizer */
static inline void gw_tokenizer(GGUFW *w, const Tokenizer *t)
{
    gw_str(w, "tokenizer.ggml.model", "llama");
    gw_key(w, "tokenizer.ggml.tokens", GGUF_ARRAY);
    buf_u32(&w->kv, GGUF_STRING);
    buf_u64(&w->kv, t->vocab_size);
    for (int i = 0; i < t->vocab_size; i++) buf_gstr(&w->kv, t->vocab[i]);
    gw_key(w, "tokenizer.ggml.scores", GGUF_ARRAY);
    buf_u32(&w->kv, GGUF_F32);
    buf_u64(&w->kv, t->vocab_size);
    buf_put(&w->kv, t->scores, 4 * (size_t)t->vocab_size);
    gw_u32(w, "tokenizer.ggml.bos_token_id", t->bos_id);
    gw_u32(w, "tokenizer.ggml.eos_token_id", t->eos_id);
}

/* a small random llama model for hostile-file tests */
static inline void tiny_model_hd(Model *m, int dim, int hidden, int layers, int heads, int kv, int hd, int vocab, int tied)
{
    ModelConfig c = {dim, hidden, layers, heads, kv, hd, vocab, 16, 10000.0f, 1e-5f, tied};
    char err[OB_ERRLEN];
    if (model_alloc(m, &c, 1, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    uint32_t s = 12345;
    for (size_t i = 0; i < m->arena_floats; i++) {
        s = s * 1664525u + 1013904223u;
        m->arena[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
}

static inline void tiny_model(Model *m, int dim, int hidden, int layers, int heads, int kv, int vocab, int tied)
{
    tiny_model_hd(m, dim, hidden, layers, heads, kv, dim / heads, vocab, tied);
}

/* ---- safetensors ----------------------------------------------------------*/
typedef struct { char name[128]; const char *dtype; int n_dims; uint64_t shape[4]; const float *src; int permute_heads; int hd; } STens;

/* HF rotate-half row order from interleaved: dest row h*hd + j*(hd/2) + i
 * <- source row h*hd + 2i + j */
static inline void st_permute(const float *src, float *dst, int heads, int hd, size_t cols)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + j * (hd / 2) + i) * cols, src + ((size_t)h * hd + 2 * i + j) * cols, cols * 4);
}

/* append t's elements in its dtype (F32, F16 or BF16), q/k rows permuted
 * to rotate-half when asked */
static inline void st_tensor_bytes(const STens *t, Buf *data)
{
    uint64_t ne = 1;
    for (int d = 0; d < t->n_dims; d++) ne *= t->shape[d];
    size_t es = !strcmp(t->dtype, "F32") ? 4 : 2;
    float *tmp = NULL;
    const float *src = t->src;
    if (t->permute_heads) {
        tmp = malloc(ne * 4);
        st_permute(src, tmp, t->permute_heads, t->hd, t->shape[1]);
        src = tmp;
    }
    for (uint64_t k = 0; k < ne; k++) {
        if (es == 4) buf_put(data, &src[k], 4);
        else {
            uint16_t h = !strcmp(t->dtype, "F16") ? ob_fp32_to_fp16(src[k]) : ob_fp32_to_bf16(src[k]);
            buf_put(data, &h, 2);
        }
    }
    free(tmp);
}

/* serialize tensors [first, last) to a safetensors file; pad header to 8 */
static inline int st_write(const char *path, STens *ts, int n)
{
    Buf hdr = {0}, data = {0};
    const char *meta = "{\"__metadata__\":{\"format\":\"pt\"}";
    buf_put(&hdr, meta, strlen(meta));
    for (int i = 0; i < n; i++) {
        STens *t = &ts[i];
        size_t begin = data.n;
        st_tensor_bytes(t, &data);
        char s[512];
        int k = snprintf(s, sizeof s, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->n_dims; d++) k += snprintf(s + k, sizeof s - k, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        snprintf(s + k, sizeof s - k, "],\"data_offsets\":[%zu,%zu]}", begin, data.n);
        buf_put(&hdr, s, strlen(s));
    }
    buf_put(&hdr, "}", 1);
    while (hdr.n % 8) buf_put(&hdr, " ", 1);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t hl = hdr.n;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr.p, 1, hdr.n, f);
    fwrite(data.p, 1, data.n, f);
    fclose(f);
    free(hdr.p);
    free(data.p);
    return 0;
}

/* the tensors of a model in HF naming; returns the count */
static inline int st_model(const Model *m, STens *ts, const char *dtype, int tied)
{
    const ModelConfig *c = &m->cfg;
    size_t C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    int n = 0;
#define S(nm, dt, p, r, cc, ph)                                                                    \
    do {                                                                                           \
        STens *t = &ts[n++];                                                                       \
        memset(t, 0, sizeof *t);                                                                   \
        snprintf(t->name, sizeof t->name, "%s", nm);                                               \
        t->dtype = dt; t->src = p; t->n_dims = (r) ? 2 : 1;                                        \
        t->shape[0] = (r) ? (r) : (cc); t->shape[1] = cc; t->permute_heads = ph; t->hd = c->head_dim; \
    } while (0)
    S("model.embed_tokens.weight", dtype, m->tok_emb, V, C, 0);
    char nm[128];
    for (int l = 0; l < c->n_layers; l++) {
#define L(s, dt, p, r, cc, ph) snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, s); S(nm, dt, p, r, cc, ph)
        L("input_layernorm", "F32", m->rms_att + l * C, 0, C, 0);
        L("self_attn.q_proj", dtype, m->wq + l * qd * C, qd, C, c->n_heads);
        L("self_attn.k_proj", dtype, m->wk + l * kvd * C, kvd, C, c->n_kv_heads);
        L("self_attn.v_proj", dtype, m->wv + l * kvd * C, kvd, C, 0);
        L("self_attn.o_proj", dtype, m->wo + l * C * qd, C, qd, 0);
        L("post_attention_layernorm", "F32", m->rms_ffn + l * C, 0, C, 0);
        L("mlp.gate_proj", dtype, m->w1 + l * F * C, F, C, 0);
        L("mlp.down_proj", dtype, m->w2 + l * C * F, C, F, 0);
        L("mlp.up_proj", dtype, m->w3 + l * F * C, F, C, 0);
#undef L
    }
    S("model.norm.weight", "F32", m->rms_final, 0, C, 0);
    if (!tied) S("lm_head.weight", dtype, m->wcls, V, C, 0);
#undef S
    return n;
}

static inline int st_config(const char *path, const ModelConfig *c, int tied)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":%d,"
            "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
            "\"num_key_value_heads\":%d,\"vocab_size\":%d,\"max_position_embeddings\":%d,"
            "\"rms_norm_eps\":%g,\"rope_theta\":%g,\"hidden_act\":\"silu\",\"tie_word_embeddings\":%s,\"head_dim\":%d}\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len,
            (double)c->norm_eps, (double)c->rope_theta, tied ? "true" : "false", c->head_dim);
    return fclose(f);
}

/* max |logit difference| of two models over the first T greedy tokens */
static inline double max_logit_diff(const Model *a, const Model *b, const int *tokens, int T)
{
    ModelActs aa, ab;
    model_acts_init(&aa, &a->cfg, T);
    model_acts_init(&ab, &b->cfg, T);
    size_t V = a->cfg.vocab_size;
    float *la = malloc(T * V * 4), *lb = malloc(T * V * 4);
    model_forward(a, &aa, tokens, T, la, NULL);
    model_forward(b, &ab, tokens, T, lb, NULL);
    double d = 0;
    for (size_t i = 0; i < T * V; i++) d = fmax(d, fabs((double)la[i] - lb[i]));
    free(la); free(lb);
    model_acts_free(&aa);
    model_acts_free(&ab);
    return d;
}

#endif
