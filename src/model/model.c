/* model.c -- LLaMA model: parameter arena (built from what a format loader
 * read), batched and incremental forward passes, the chunked FP32/FP16 KV
 * cache and the decode attention split over heads on a pool. Numerics follow
 * karpathy/llama2.c run.c. Threads: a Model is read-only once built (any
 * number of forwards at once); a ModelState or ModelActs belongs to one
 * caller at a time; model_step's attention tasks run on the model's pool. */
#include "model/model.h"

#include "config.h"

#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "base/file.h"
#include "format/loader.h"

const char *const model_lin_names[LIN_PER_LAYER] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};

void model_lin_shape(const ModelConfig *c, int k, int *out, int *in)
{
    int C = c->dim, F = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    switch (k) {
    case LIN_Q: *out = qd; *in = C; break;
    case LIN_K: case LIN_V: *out = kvd; *in = C; break;
    case LIN_O: *out = C; *in = qd; break;
    case LIN_DOWN: *out = C; *in = F; break;
    default: *out = F; *in = C; break; /* gate, up */
    }
}

/* sizes of the arena's tensors in llama2.c order */
typedef struct { size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls; } Sizes;

static void sizes_of(const ModelConfig *c, Sizes *s)
{
    /* bounded by llama_config_check: every product fits in 64 bits */
    size_t C = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    s->emb = V * C;
    s->rms_att = L * C;
    s->wq = L * qd * C;
    s->wk = L * kvd * C;
    s->wv = L * kvd * C;
    s->wo = L * C * qd;
    s->rms_ffn = L * C;
    s->w1 = L * F * C;
    s->w2 = L * C * F;
    s->w3 = L * F * C;
    s->rms_final = C;
    s->wcls = c->shared_classifier ? 0 : V * C;
}

int model_arena_size(const ModelConfig *c, int with_linears, size_t *out)
{
    Sizes s;
    sizes_of(c, &s);
    size_t n = s.emb + s.rms_att + s.rms_ffn + s.rms_final + s.wcls;
    if (with_linears) n += s.wq + s.wk + s.wv + s.wo + s.w1 + s.w2 + s.w3;
    *out = n;
    return 0;
}

size_t model_count_params(const ModelConfig *c)
{
    size_t n;
    model_arena_size(c, 1, &n);
    return n;
}

void model_bind_dense(Model *m)
{
    const ModelConfig *c = &m->cfg;
    int C = c->dim, F = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        Linear *L = m->lin + (size_t)l * LIN_PER_LAYER;
        L[LIN_Q] = (Linear){.kind = LINEAR_DENSE, .in = C, .out = qd, .w = m->wq + (size_t)l * qd * C};
        L[LIN_K] = (Linear){.kind = LINEAR_DENSE, .in = C, .out = kvd, .w = m->wk + (size_t)l * kvd * C};
        L[LIN_V] = (Linear){.kind = LINEAR_DENSE, .in = C, .out = kvd, .w = m->wv + (size_t)l * kvd * C};
        L[LIN_O] = (Linear){.kind = LINEAR_DENSE, .in = qd, .out = C, .w = m->wo + (size_t)l * C * qd};
        L[LIN_GATE] = (Linear){.kind = LINEAR_DENSE, .in = C, .out = F, .w = m->w1 + (size_t)l * F * C};
        L[LIN_DOWN] = (Linear){.kind = LINEAR_DENSE, .in = F, .out = C, .w = m->w2 + (size_t)l * C * F};
        L[LIN_UP] = (Linear){.kind = LINEAR_DENSE, .in = C, .out = F, .w = m->w3 + (size_t)l * F * C};
    }
}

/* the arena for cfg: dense linears when with_linears; the embedding /
 * the head in FP32 when emb_f32 / cls_f32 */
static int alloc_arena(Model *m, const ModelConfig *c, int with_linears, int emb_f32, int cls_f32, char *err)
{
    memset(m, 0, sizeof *m);
    if (llama_config_check(c, err)) return -1;
    m->cfg = *c;
    Sizes s;
    sizes_of(c, &s);
    /* the arena in llama2.c's order; a part whose field is NULL is left out */
    const int L = with_linears, cls = cls_f32 && !c->shared_classifier;
    struct { float **field; size_t n; } part[] = {
        {emb_f32 ? &m->tok_emb : NULL, s.emb}, {&m->rms_att, s.rms_att}, {L ? &m->wq : NULL, s.wq},
        {L ? &m->wk : NULL, s.wk}, {L ? &m->wv : NULL, s.wv}, {L ? &m->wo : NULL, s.wo}, {&m->rms_ffn, s.rms_ffn},
        {L ? &m->w1 : NULL, s.w1}, {L ? &m->w2 : NULL, s.w2}, {L ? &m->w3 : NULL, s.w3},
        {&m->rms_final, s.rms_final}, {cls ? &m->wcls : NULL, s.wcls}};
    const int nparts = (int)(sizeof part / sizeof part[0]);
    size_t n = 0;
    for (int i = 0; i < nparts; i++) n += part[i].field ? part[i].n : 0;
    m->arena = ob_aligned_alloc(64, (n ? n : 1) * sizeof(float));
    m->arena_floats = n;
    float *p = m->arena;
    for (int i = 0; i < nparts; i++)
        if (part[i].field) { *part[i].field = p; p += part[i].n; }
    if (c->shared_classifier) m->wcls = m->tok_emb;
    m->emb_w = m->tok_emb;
    m->cls_w = m->wcls;
    m->lin = ob_calloc((size_t)c->n_layers * LIN_PER_LAYER, sizeof(Linear));
    if (with_linears) model_bind_dense(m);
    return 0;
}

int model_alloc(Model *m, const ModelConfig *c, int with_linears, char *err)
{
    return alloc_arena(m, c, with_linears, 1, 1, err);
}

int model_alloc_lean(Model *m, const ModelConfig *c, int emb_type, int cls_type, char *err)
{
    if (c->shared_classifier) cls_type = emb_type;
    if (alloc_arena(m, c, 0, emb_type == LINEAR_W_F32, cls_type == LINEAR_W_F32, err)) return -1;
    m->emb_type = emb_type;
    m->cls_type = cls_type;
    return 0;
}

const float *model_lin_f32(const Model *m, int i, float **tmp)
{
    const Linear *L = &m->lin[i];
    *tmp = NULL;
    if (!model_lin_dense(m, i)) return NULL;
    if (L->w) return L->w;
    *tmp = ob_aligned_alloc(64, (size_t)L->out * L->in * sizeof(float));
    linear_rows_f32(L, 0, (size_t)L->out, *tmp);
    /* streamed one matrix at a time: the stored rows leave the RSS */
    file_map_drop(L->wd, (size_t)L->out * llama_dtype_bytes(L->wtype, (size_t)L->in));
    return *tmp;
}

int model_lin_dense(const Model *m, int i)
{
    const Linear *L = &m->lin[i];
    return L->kind == LINEAR_DENSE && (L->w || L->wd);
}

const float *model_vocab_f32(const Model *m, int head, float **tmp)
{
    int type = head ? m->cls_type : m->emb_type;
    const void *w = head ? m->cls_w : m->emb_w;
    *tmp = NULL;
    if (type == LINEAR_W_F32) return w;
    size_t V = (size_t)m->cfg.vocab_size, C = (size_t)m->cfg.dim;
    *tmp = ob_aligned_alloc(64, V * C * sizeof(float));
    linear_w_rows_f32(type, w, 0, V, C, *tmp);
    file_map_drop(w, V * llama_dtype_bytes(type, C));
    return *tmp;
}

/* the kernel's fault-around: a fault on a file mapping maps the pages of
 * the page cache in the aligned 64 KB around it */
#define EMB_FAULT_AROUND ((uintptr_t)64 << 10)

void model_embed(const Model *m, int token, float *out)
{
    const size_t C = (size_t)m->cfg.dim;
    linear_w_rows_f32(m->emb_type, m->emb_w, (size_t)token, 1, C, out);
    if (!m->emb_mapped) return;
    /* the window the lookup faulted in, within the embedding (a file
     * mapping: dropped pages are read back from the file when needed) */
    const size_t row = llama_dtype_bytes(m->emb_type, C);
    const uintptr_t e0 = (uintptr_t)m->emb_w, e1 = e0 + row * (size_t)m->cfg.vocab_size;
    uintptr_t a = (e0 + row * (size_t)token) & ~(EMB_FAULT_AROUND - 1), b = (e0 + row * ((size_t)token + 1) + EMB_FAULT_AROUND - 1) & ~(EMB_FAULT_AROUND - 1);
    if (a < e0) a = e0;
    if (b > e1) b = e1;
    file_map_drop((const void *)a, b - a);
}

/* rows of the head converted to FP32 per sgemm in the batched forwards */
#define HEAD_TILE_ROWS 256

/* logits (T, V) = x (T, C) · headᵀ: one sgemm over an FP32 head, else over
 * tiles of its rows converted to FP32 (a bounded scratch), or for one token
 * the head itself (linear_head) */
static void head_batched(const Model *m, const float *x, int T, float *logits)
{
    const ModelConfig *c = &m->cfg;
    int C = c->dim, V = c->vocab_size;
    if (m->cls_type == LINEAR_W_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, V, C, 1.0f, x, C, m->cls_w, C, 0.0f, logits, V);
        return;
    }
    if (T == 1) { linear_head(&m->lin[0], m->cls_w, m->cls_type, x, logits, V, C); return; }
    float *tile = ob_aligned_alloc(64, (size_t)HEAD_TILE_ROWS * C * sizeof(float));
    for (int r0 = 0; r0 < V; r0 += HEAD_TILE_ROWS) {
        int n = V - r0 < HEAD_TILE_ROWS ? V - r0 : HEAD_TILE_ROWS;
        linear_w_rows_f32(m->cls_type, m->cls_w, (size_t)r0, (size_t)n, (size_t)C, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, C, 1.0f, x, C, tile, C, 0.0f, logits + r0, V);
    }
    free(tile);
}

void model_free(Model *m)
{
    if (!m) return;
    free(m->arena);
    free(m->lin);
    if (m->free_extra) m->free_extra(m->extra);
    memset(m, 0, sizeof *m);
}

/* ---- building blocks --------------------------------------------------- */

void model_rmsnorm(float *out, const float *x, const float *w, int n, float eps) { kern_rmsnorm_ref(out, x, w, n, eps); }

/* exp(x) for x <= 0 (softmax arguments after the max is subtracted), within
 * ~1 ulp: x = n·ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial for e^r,
 * scaled by 2^n through the exponent bits. Branch-free so that the compiler
 * vectorises the loops below; the clones are chosen at run time. */
static inline float exp_nonpos(float x)
{
    x = __builtin_fmaxf(x, -87.0f);
    /* round to nearest with the 1.5·2^23 trick (no libm call, vectorises) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, 4);
    return p * scale;
}

/* softmax in place: the scalar reference, and AVX2 / AVX-512 variants of the
 * same arithmetic chosen at run time (see model_softmax). */
static void softmax_scalar(float *x, int n)
{
    float max = x[0];
    for (int k = 1; k < n; k++) if (x[k] > max) max = x[k];
    float sum = 0.0f;
    for (int k = 0; k < n; k++) { x[k] = exp_nonpos(x[k] - max); sum += x[k]; }
    float inv = 1.0f / sum;
    for (int k = 0; k < n; k++) x[k] *= inv;
}

#ifdef OB_X86
#include <immintrin.h>

#define EXP_POLY(V, FMA, MUL, SET1, ADD, SUB, MAX, ROUND, CVT, SLLI, ADDI, CAST, SET1I)       \
    do {                                                                                     \
        V = MAX(V, SET1(-87.0f));                                                            \
        __typeof__(V) nn = ROUND(MUL(V, SET1(1.44269504088896341f)));                        \
        __typeof__(V) r = FMA(nn, SET1(-0.693145751953125f), V);                             \
        r = FMA(nn, SET1(-1.428606765330187045e-06f), r);                                    \
        __typeof__(V) p = SET1(1.0f / 5040);                                                 \
        p = FMA(p, r, SET1(1.0f / 720));                                                     \
        p = FMA(p, r, SET1(1.0f / 120));                                                     \
        p = FMA(p, r, SET1(1.0f / 24));                                                      \
        p = FMA(p, r, SET1(1.0f / 6));                                                       \
        p = FMA(p, r, SET1(0.5f));                                                           \
        p = FMA(p, r, SET1(1.0f));                                                           \
        p = FMA(p, r, SET1(1.0f));                                                           \
        V = MUL(p, CAST(SLLI(ADDI(CVT(nn), SET1I(127)), 23)));                               \
    } while (0)

/* one softmax per ISA from one template: the scalar reference's three
 * passes (max, exp and sum, scale) W lanes at a time with the same
 * arithmetic; HMAX/HSUM reduce a vector (AVX2 has no reduce intrinsics) */
#define SOFTMAX_SIMD(NAME, TARGET, W, VT, P, HMAX, HSUM, ROUND, CAST)                                     \
    __attribute__((target(TARGET))) static void NAME(float *x, int n)                                        \
    {                                                                                                        \
        VT vmax = P##_set1_ps(-INFINITY);                                                                    \
        int k = 0;                                                                                           \
        for (; k + W <= n; k += W) vmax = P##_max_ps(vmax, P##_loadu_ps(x + k));                             \
        float max = HMAX(vmax);                                                                              \
        for (; k < n; k++) if (x[k] > max) max = x[k];                                                       \
        VT vm = P##_set1_ps(max), vsum = P##_setzero_ps();                                                   \
        for (k = 0; k + W <= n; k += W) {                                                                    \
            VT v = P##_sub_ps(P##_loadu_ps(x + k), vm);                                                      \
            EXP_POLY(v, P##_fmadd_ps, P##_mul_ps, P##_set1_ps, P##_add_ps, P##_sub_ps, P##_max_ps, ROUND,    \
                     P##_cvtps_epi32, P##_slli_epi32, P##_add_epi32, CAST, P##_set1_epi32);                \
            P##_storeu_ps(x + k, v);                                                                         \
            vsum = P##_add_ps(vsum, v);                                                                      \
        }                                                                                                    \
        float sum = HSUM(vsum);                                                                              \
        for (; k < n; k++) { x[k] = exp_nonpos(x[k] - max); sum += x[k]; }                                   \
        VT vinv = P##_set1_ps(1.0f / sum);                                                                   \
        for (k = 0; k + W <= n; k += W) P##_storeu_ps(x + k, P##_mul_ps(P##_loadu_ps(x + k), vinv));         \
        for (; k < n; k++) x[k] *= 1.0f / sum;                                                               \
    }

__attribute__((target("avx2"))) static inline float hmax256(__m256 v)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    float m = t[0];
    for (int j = 1; j < 8; j++) if (t[j] > m) m = t[j];
    return m;
}

__attribute__((target("avx2"))) static inline float hsum256(__m256 v)
{
    float t[8], s = 0.0f;
    _mm256_storeu_ps(t, v);
    for (int j = 0; j < 8; j++) s += t[j];
    return s;
}

#define R512(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define R256(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
SOFTMAX_SIMD(softmax_avx512, "avx512f", 16, __m512, _mm512, _mm512_reduce_max_ps, _mm512_reduce_add_ps, R512, _mm512_castsi512_ps)
SOFTMAX_SIMD(softmax_avx2, "avx2,fma", 8, __m256, _mm256, hmax256, hsum256, R256, _mm256_castsi256_ps)
#undef R512
#undef R256
#endif

int model_softmax_variants(const char **names, void (**fns)(float *, int), int max)
{
    int n = 0;
    if (n < max) { names[n] = "ref"; fns[n++] = softmax_scalar; }
#ifdef OB_X86
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { names[n] = "avx2"; fns[n++] = softmax_avx2; }
    if (n < max && __builtin_cpu_supports("avx512f")) { names[n] = "avx512"; fns[n++] = softmax_avx512; }
#endif
    return n;
}

static void (*softmax_impl)(float *, int);

/* the variant for this CPU; ONEBIT_KERNEL=ref forces the scalar reference */
static void softmax_pick(void)
{
    void (*f)(float *, int) = softmax_scalar;
#ifdef OB_X86
    const char *k = getenv("ONEBIT_KERNEL");
    int ref = k && strcmp(k, "ref") == 0;
    __builtin_cpu_init();
    if (!ref && __builtin_cpu_supports("avx512f") && !(k && strcmp(k, "avx2") == 0)) f = softmax_avx512;
    else if (!ref && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f = softmax_avx2;
#endif
    __atomic_store_n(&softmax_impl, f, __ATOMIC_RELEASE);
}

void model_softmax(float *x, int n)
{
    void (*f)(float *, int) = __atomic_load_n(&softmax_impl, __ATOMIC_ACQUIRE);
    if (!f) { softmax_pick(); f = __atomic_load_n(&softmax_impl, __ATOMIC_ACQUIRE); }
    f(x, n);
}

void model_rope_table(const ModelConfig *c, float *cosv, float *sinv)
{
    int hd = c->head_dim, half = hd / 2;
    for (int pos = 0; pos < c->seq_len; pos++) {
        for (int p = 0; p < half; p++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * p) / (float)hd);
            float val = pos * freq;
            cosv[(size_t)pos * half + p] = cosf(val);
            sinv[(size_t)pos * half + p] = sinf(val);
        }
    }
}

/* rotate consecutive pairs of every head of v (n = heads*hd) at one position:
 * the reference */
static void rope_scalar(float *v, int n, int hd, const float *cosv, const float *sinv)
{
    for (int i = 0; i < n; i += 2) {
        int p = (i % hd) / 2;
        float fcr = cosv[p], fci = sinv[p];
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

#ifdef OB_X86
/* the same with AVX-512, 8 pairs at a time: v * cos + swap(v) * (-sin,
 * sin), two products and a sum per value as the reference rounds them (a
 * product of -sin is the negated product), so the same bits (test_softmax).
 * The scalar loop took 0.6% of a 7B student's decode samples, on the
 * thread the others wait for */
__attribute__((target("avx512f,avx512vl"))) static void rope_avx512(float *v, int n, int hd, const float *cosv, const float *sinv)
{
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i neg_even = _mm512_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
                                              INT32_MIN, 0, INT32_MIN);
    for (int h0 = 0; h0 + hd <= n; h0 += hd)
        for (int j = 0; j < hd; j += 16) {
            const int left = hd - j;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            const __mmask8 m8 = left >= 16 ? (__mmask8)0xff : (__mmask8)((1u << (left / 2)) - 1);
            const __m512 c = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m8, cosv + j / 2)));
            __m512 sn = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m8, sinv + j / 2)));
            sn = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sn), neg_even));
            const __m512 x = _mm512_maskz_loadu_ps(m, v + h0 + j), xs = _mm512_permute_ps(x, 0xB1);
            _mm512_mask_storeu_ps(v + h0 + j, m, _mm512_add_ps(_mm512_mul_ps(x, c), _mm512_mul_ps(xs, sn)));
        }
}
#endif

int model_rope_variants(const char **names, void (**fns)(float *, int, int, const float *, const float *), int max)
{
    int n = 0;
    if (n < max) { names[n] = "ref"; fns[n++] = rope_scalar; }
#ifdef OB_X86
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) { names[n] = "avx512"; fns[n++] = rope_avx512; }
#endif
    return n;
}

static void (*rope_impl)(float *, int, int, const float *, const float *);

/* the last of model_rope_variants (the same bits as the reference either
 * way); ONEBIT_KERNEL=ref forces the reference */
static void rope_pick(void)
{
    const char *names[2], *k = getenv("ONEBIT_KERNEL");
    void (*fns[2])(float *, int, int, const float *, const float *);
    int n = model_rope_variants(names, fns, 2);
    __atomic_store_n(&rope_impl, k && strcmp(k, "ref") == 0 ? fns[0] : fns[n - 1], __ATOMIC_RELEASE);
}

void model_rope(float *v, int n, int hd, const float *cosv, const float *sinv)
{
    void (*f)(float *, int, int, const float *, const float *) = __atomic_load_n(&rope_impl, __ATOMIC_ACQUIRE);
    if (!f) { rope_pick(); f = __atomic_load_n(&rope_impl, __ATOMIC_ACQUIRE); } /* (threads may pick at once: the same f) */
    f(v, n, hd, cosv, sinv);
}

/* ---- batched forward --------------------------------------------------- */

int model_acts_init(ModelActs *a, const ModelConfig *c, int T)
{
    memset(a, 0, sizeof *a);
    size_t C = c->dim, F = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim, t = T;
    a->T = T;
    a->x = ob_aligned_alloc(64, t * C * 4);
    a->xb = ob_aligned_alloc(64, t * C * 4);
    a->xb2 = ob_aligned_alloc(64, t * C * 4);
    a->q = ob_aligned_alloc(64, t * qd * 4);
    a->k = ob_aligned_alloc(64, t * kvd * 4);
    a->v = ob_aligned_alloc(64, t * kvd * 4);
    a->att = ob_aligned_alloc(64, t * t * 4);
    a->attout = ob_aligned_alloc(64, t * qd * 4);
    a->hb = ob_aligned_alloc(64, t * F * 4);
    a->hb2 = ob_aligned_alloc(64, t * F * 4);
    a->rope_cos = ob_aligned_alloc(64, (size_t)c->seq_len * c->head_dim / 2 * 4);
    a->rope_sin = ob_aligned_alloc(64, (size_t)c->seq_len * c->head_dim / 2 * 4);
    model_rope_table(c, a->rope_cos, a->rope_sin);
    return 0;
}

void model_acts_free(ModelActs *a)
{
    free(a->x); free(a->xb); free(a->xb2); free(a->q); free(a->k); free(a->v);
    free(a->att); free(a->attout); free(a->hb); free(a->hb2);
    free(a->rope_cos); free(a->rope_sin);
    memset(a, 0, sizeof *a);
}

/* the batched forwards' per-token steps between the matmuls, split by
 * tokens over the pool of the model's linears (a student's; a model
 * without one runs them on the caller): each token's values are computed as
 * on one thread, so results do not depend on the thread count */
enum { ROWS_RMSNORM, ROWS_RESIDUAL, ROWS_SWIGLU, ROWS_ROPE };
typedef struct {
    const Model *m;
    ModelActs *a;
    const float *w;
    const KernExec *ex; /* the linears' (a student's SwiGLU and RMSNorm: its silu_mul, rmsnorm), or NULL */
    int op, t0, T, ntasks;
    int pos0; /* ROWS_ROPE: token t's position is pos0 + t */
} RowsTask;

static void rows_task(void *vc, int k)
{
    const RowsTask *r = vc;
    const ModelConfig *c = &r->m->cfg;
    ModelActs *a = r->a;
    const size_t C = c->dim, F = c->hidden_dim;
    const int t0 = r->t0 + (int)((long)(r->T - r->t0) * k / r->ntasks), t1 = r->t0 + (int)((long)(r->T - r->t0) * (k + 1) / r->ntasks);
    for (int t = t0; t < t1; t++) {
        if (r->op == ROWS_RMSNORM) (r->ex ? r->ex->rmsnorm : model_rmsnorm)(a->xb + t * C, a->x + t * C, r->w, (int)C, c->norm_eps);
        else if (r->op == ROWS_RESIDUAL) for (size_t i = t * C; i < (t + 1) * C; i++) a->x[i] += a->xb2[i];
        else if (r->op == ROWS_ROPE) { /* q and k of token t at position pos0 + t */
            const int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
            const size_t p = (size_t)(r->pos0 + t) * (hd / 2);
            model_rope(a->q + (size_t)t * qd, qd, hd, a->rope_cos + p, a->rope_sin + p);
            model_rope(a->k + (size_t)t * kvd, kvd, hd, a->rope_cos + p, a->rope_sin + p);
        }
        else (r->ex ? r->ex->silu_mul : kern_silu_mul_ref)(a->hb + t * F, a->hb2 + t * F, F);
    }
}

/* op over the tokens t0..T-1: RMSNORM xb[t] = rmsnorm(x[t]) * w, RESIDUAL
 * x[t] += xb2[t], SWIGLU hb[t] = silu(hb[t]) * hb2[t] (a student's with its
 * KernExec's silu_mul, a teacher's with expf as the reference) */
static void rows_run_at(const Model *m, ModelActs *a, int op, const float *w, int t0, int T, int pos0)
{
    const KernExec *ex = linear_exec(&m->lin[0]);
    Pool *pool = ex ? ex->pool : NULL;
    int n = pool ? pool_threads(pool) : 1;
    if (n > T - t0) n = T - t0;
    if (n < 1) return;
    RowsTask r = {m, a, w, ex, op, t0, T, n, pos0};
    if (n > 1) pool_run(pool, rows_task, &r, n);
    else rows_task(&r, 0);
}

static void rows_run(const Model *m, ModelActs *a, int op, const float *w, int t0, int T) { rows_run_at(m, a, op, w, t0, T, 0); }

/* xb[t] = rmsnorm(x[t]) * w for rows t0..T-1 (shared by both batched forwards) */
static void rmsnorm_rows(const Model *m, ModelActs *a, const float *w, int t0, int T)
{
    rows_run(m, a, ROWS_RMSNORM, w, t0, T);
}

/* the rest of a layer once attout holds the attention output: output
 * projection + residual, FFN norm, SwiGLU FFN + residual */
static void block_tail_batched(const Model *m, ModelActs *a, const Linear *L, int l, int T)
{
    const ModelConfig *c = &m->cfg;
    int C = c->dim;
    linear_forward(&L[LIN_O], a->attout, a->xb2, T); // (T, C)
    rows_run(m, a, ROWS_RESIDUAL, NULL, 0, T);
    rmsnorm_rows(m, a, m->rms_ffn + (size_t)l * C, 0, T);
    linear_forward(&L[LIN_GATE], a->xb, a->hb, T); // (T, F)
    linear_forward(&L[LIN_UP], a->xb, a->hb2, T);  // (T, F)
    rows_run(m, a, ROWS_SWIGLU, NULL, 0, T);
    linear_forward(&L[LIN_DOWN], a->hb, a->xb2, T); // (T, C)
    rows_run(m, a, ROWS_RESIDUAL, NULL, 0, T);
}

/* causal grouped-query attention over the whole sequence, one head at a time
 * with two sgemms: att = softmax(Q_h K_hᵀ / sqrt(hd)), out_h = att V_h */
static void attention_batched(const ModelConfig *c, ModelActs *a, int T)
{
    int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int kv_mul = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < c->n_heads; h++) {
        const float *Q = a->q + h * hd;
        const float *K = a->k + (h / kv_mul) * hd;
        const float *V = a->v + (h / kv_mul) * hd;
        // att (T,T) = Q (T,hd) · Kᵀ (hd,T)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, qd, K, kvd, 0.0f, a->att, T);
        for (int t = 0; t < T; t++) {
            float *row = a->att + (size_t)t * T;
            model_softmax(row, t + 1);
            memset(row + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
        }
        // out (T,hd) = att (T,T) · V (T,hd)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, a->att, T, V, kvd, 0.0f,
                    a->attout + h * hd, qd);
    }
}

/* the head of block l for T tokens at positions pos0..: RMSNorm of a->x
 * into a->xb, then q (T, qd), k, v (T, kvd), q and k rotated (RoPE) */
static void block_qkv_batched(const Model *m, ModelActs *a, const Linear *L, int l, int T, int pos0)
{
    const ModelConfig *c = &m->cfg;
    rmsnorm_rows(m, a, m->rms_att + (size_t)l * c->dim, 0, T);
    linear_forward(&L[LIN_Q], a->xb, a->q, T); // (T, qd)
    linear_forward(&L[LIN_K], a->xb, a->k, T); // (T, kvd)
    linear_forward(&L[LIN_V], a->xb, a->v, T); // (T, kvd)
    rows_run_at(m, a, ROWS_ROPE, NULL, 0, T, pos0); /* split by tokens: a student's on its pool */
}

void model_forward(const Model *m, ModelActs *a, const int *tokens, int T, float *logits, float *hidden)
{
    const ModelConfig *c = &m->cfg;
    int C = c->dim;
    for (int t = 0; t < T; t++) model_embed(m, tokens[t], a->x + (size_t)t * C);
    for (int l = 0; l < c->n_layers; l++) {
        const Linear *L = m->lin + (size_t)l * LIN_PER_LAYER;
        block_qkv_batched(m, a, L, l, T, 0);
        attention_batched(c, a, T);
        block_tail_batched(m, a, L, l, T);
        if (hidden) memcpy(hidden + (size_t)l * T * C, a->x, (size_t)T * C * sizeof(float));
    }
    rmsnorm_rows(m, a, m->rms_final, 0, T);
    head_batched(m, a->xb, T, logits); // (T,V)
}

/* ---- the chunked KV cache ------------------------------------------------- */

static size_t kv_esize(const ModelState *s) { return s->kv == MODEL_KV_F16 ? 2 : 4; }

/* the precision s's cache has or will have with m (MODEL_KV_AUTO: by the
 * model's linears) */
static int kv_kind(const Model *m, const ModelState *s)
{
    return s->kv != MODEL_KV_AUTO ? s->kv : m->lin[0].kind == LINEAR_DENSE ? MODEL_KV_F32 : MODEL_KV_F16;
}

/* settle the precision */
static void kv_settle(const Model *m, ModelState *s)
{
    s->kv = kv_kind(m, s);
}

/* chunks for positions [0, end) in every layer: chunk j of all layers'
 * keys and values in one allocation (a 7B's 32 MiB), in huge pages where
 * the kernel gives them (ob_huge_alloc). A step's attention reads it all:
 * 7B shape, 2 threads, 512 positions, a token's attention took 11.4-12.3 ms
 * with a chunk per layer in 4 KiB pages against 11.0-11.1 ms */
static void kv_reserve(ModelState *s, int end)
{
    int need = (end + MODEL_KV_CHUNK - 1) / MODEL_KV_CHUNK;
    size_t bytes = (size_t)MODEL_KV_CHUNK * s->kvd * kv_esize(s);
    for (; s->chunks < need; s->chunks++) {
        char *slab = ob_huge_alloc(2 * bytes * s->n_layers);
        for (int l = 0; l < s->n_layers; l++) {
            s->kc[(size_t)l * s->n_chunks + s->chunks] = slab + 2 * bytes * l;
            s->vc[(size_t)l * s->n_chunks + s->chunks] = slab + 2 * bytes * l + bytes;
        }
    }
}

/* the row of position pos of layer l in chunks `c` (kc or vc) */
static void *kv_row(const ModelState *s, void *const *c, int l, int pos)
{
    return (char *)c[(size_t)l * s->n_chunks + pos / MODEL_KV_CHUNK] + (size_t)(pos % MODEL_KV_CHUNK) * s->kvd * kv_esize(s);
}

/* store n rows of keys and values (FP32, kvd each) at positions pos.. of layer l */
static void kv_store(ModelState *s, const KernDec *d, int l, int pos, const float *k, const float *v, int n)
{
    for (int t = 0; t < n; t++) {
        const float *kt = k + (size_t)t * s->kvd, *vt = v + (size_t)t * s->kvd;
        void *kr = kv_row(s, s->kc, l, pos + t), *vr = kv_row(s, s->vc, l, pos + t);
        if (s->kv == MODEL_KV_F16) { d->to_f16(kt, kr, s->kvd); d->to_f16(vt, vr, s->kvd); }
        else { memcpy(kr, kt, s->kvd * sizeof(float)); memcpy(vr, vt, s->kvd * sizeof(float)); }
    }
}

/* the keys (gk) and values (gv) of KV head g at positions 0..S-1 of layer l, FP32 (S, hd) */
static void kv_gather(const ModelState *s, const KernDec *d, int l, int g, int hd, int S, float *gk, float *gv)
{
    for (int p = 0; p < S; p++) {
        const char *kr = kv_row(s, s->kc, l, p), *vr = kv_row(s, s->vc, l, p);
        size_t off = (size_t)g * hd * kv_esize(s);
        if (s->kv == MODEL_KV_F16) {
            d->from_f16((const uint16_t *)(kr + off), gk + (size_t)p * hd, hd);
            d->from_f16((const uint16_t *)(vr + off), gv + (size_t)p * hd, hd);
        } else {
            memcpy(gk + (size_t)p * hd, kr + off, hd * sizeof(float));
            memcpy(gv + (size_t)p * hd, vr + off, hd * sizeof(float));
        }
    }
}

/* the decode helpers and the pool of m: its linears' execution context, else
 * the default helpers and the global pool (a reference s keeps) */
static const KernDec *model_dec(const Model *m, ModelState *s, Pool **pool)
{
    const KernExec *ex = linear_exec(&m->lin[0]);
    if (ex) { *pool = ex->pool; return ex->dec; }
    if (!s->pool) s->pool = pool_global_ref();
    *pool = s->pool;
    return kern_dec_default();
}

/* ---- batched forward from a KV cache ------------------------------------ */

/* query head h of layer l over the cached positions 0..S-1: scores into
 * att (S), softmax, the weighted values into out (hd) */
static void attn_query(const ModelConfig *c, const ModelState *s, const KernDec *d, int l, int h, int S, const float *q, float *att,
                       float *out)
{
    const int hd = c->head_dim, f16 = s->kv == MODEL_KV_F16;
    const size_t kvo = (size_t)(h / (c->n_heads / c->n_kv_heads)) * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    void *const *kc = s->kc + (size_t)l * s->n_chunks, *const *vc2 = s->vc + (size_t)l * s->n_chunks;
    for (int t0 = 0, j = 0; t0 < S; t0 += MODEL_KV_CHUNK, j++) {
        int n = S - t0 < MODEL_KV_CHUNK ? S - t0 : MODEL_KV_CHUNK;
        if (f16) d->score_f16(q, (const uint16_t *)kc[j] + kvo, s->kvd, hd, n, scale, att + t0);
        else d->score_f32(q, (const float *)kc[j] + kvo, s->kvd, hd, n, scale, att + t0);
    }
    model_softmax(att, S);
    memset(out, 0, hd * sizeof(float));
    for (int t0 = 0, j = 0; t0 < S; t0 += MODEL_KV_CHUNK, j++) {
        int n = S - t0 < MODEL_KV_CHUNK ? S - t0 : MODEL_KV_CHUNK;
        if (f16) d->accum_f16(att + t0, (const uint16_t *)vc2[j] + kvo, s->kvd, hd, n, out);
        else d->accum_f32(att + t0, (const float *)vc2[j] + kvo, s->kvd, hd, n, out);
    }
}

/* the prompt's attention of layer l over an FP16 cache, on the model's pool
 * and without OpenBLAS, whose threads would spin beside the pool's
 * (prompt_attn_tile) */
typedef struct {
    const ModelConfig *c;
    const ModelState *s;
    const KernDec *d;
    ModelActs *a;
    int l, T, pos0;
    atomic_int *busy; /* prompt_attn_tile: which of s->tile's nslots slots a task holds */
    int nslots;
} PromptAttn;

/* the prompt's attention of layer l over an FP16 cache, blocked (flash
 * attention): a task per query head h and tile of KERN_ATTN_QB consecutive
 * queries, the largest tiles (the most keys) first so the pool's dynamic
 * claiming balances the threads. The tile's queries transposed into a free
 * slot of s->tile, then the keys 0..its last query's position in blocks of
 * PROMPT_ATTN_KB (within one cache chunk), each read and widened once for
 * the tile's queries by the KernDec's attn_f16 (online softmax, the causal
 * mask on the blocks that reach the tile), the outputs accumulated in
 * attout's rows, then divided by their sums. Each tile's arithmetic is
 * fixed, so results do not depend on the thread count. The per-query path
 * re-read and re-converted every earlier key and value for each query: at
 * the 7B shape its attention took 4.1 ms a layer at 128 tokens on one
 * thread, this one 2.1 ms (65 and 31 ms at 512; see x86/avx512.c). The
 * whole prompt (model_forward_kv of a random-weight 7B-shape student, int8
 * activations, ONEBIT_THREADS=2, the two paths alternating in one process
 * on the same tokens, on a shared and loaded machine): median 3401 -> 3346
 * ms at 128 tokens (7 rounds), 15738 -> 14921 ms at 512 (3 rounds). */
#define PROMPT_ATTN_KB 32
_Static_assert(MODEL_KV_CHUNK % PROMPT_ATTN_KB == 0 && PROMPT_ATTN_KB <= KERN_ATTN_KB, "a key block lies in one chunk");

/* floats of one thread's slot: Qt, m, l and attn_f16's scratch */
static size_t prompt_tile_floats(int hd)
{
    return ((size_t)KERN_ATTN_QB * hd + 2 * KERN_ATTN_QB + KERN_ATTN_WS(hd) + 15) & ~(size_t)15;
}

static void prompt_attn_tile(void *vc, int k)
{
    const PromptAttn *p = vc;
    const ModelConfig *c = p->c;
    const ModelState *s = p->s;
    enum { QB = KERN_ATTN_QB };
    const int hd = c->head_dim, qd = c->n_heads * hd, nt = (p->T + QB - 1) / QB;
    const int h = k % c->n_heads, t0 = (nt - 1 - k / c->n_heads) * QB, nq = p->T - t0 < QB ? p->T - t0 : QB;
    const int qpos = p->pos0 + t0, end = qpos + nq;
    const size_t kvo = (size_t)(h / (c->n_heads / c->n_kv_heads)) * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    /* a free slot (as many as the pool's threads, so one is), first the
     * thread's own; a caller that is another pool's worker may share its index */
    int slot = pool_thread_index() % p->nslots;
    while (atomic_exchange_explicit(&p->busy[slot], 1, memory_order_acquire)) slot = (slot + 1) % p->nslots;
    float *Qt = s->tile + (size_t)slot * prompt_tile_floats(hd), *m = Qt + (size_t)QB * hd, *l = m + QB, *ws = l + QB;
    const float *q = p->a->q + (size_t)t0 * qd + (size_t)h * hd;
    if (nq < QB) memset(Qt, 0, (size_t)QB * hd * sizeof(float));
    for (int i = 0; i < nq; i++)
        for (int d = 0; d < hd; d++) Qt[d * QB + i] = q[(size_t)i * qd + d];
    float *out = p->a->attout + (size_t)t0 * qd + (size_t)h * hd;
    for (int i = 0; i < nq; i++) memset(out + (size_t)i * qd, 0, (size_t)hd * sizeof(float));
    for (int i = 0; i < QB; i++) { m[i] = -INFINITY; l[i] = 0.0f; }
    void *const *kc = s->kc + (size_t)p->l * s->n_chunks, *const *vc2 = s->vc + (size_t)p->l * s->n_chunks;
    for (int kp = 0; kp < end; kp += PROMPT_ATTN_KB) {
        int n = end - kp < PROMPT_ATTN_KB ? end - kp : PROMPT_ATTN_KB;
        size_t r = (size_t)(kp % MODEL_KV_CHUNK) * s->kvd + kvo;
        p->d->attn_f16(Qt, nq, (const uint16_t *)kc[kp / MODEL_KV_CHUNK] + r, (const uint16_t *)vc2[kp / MODEL_KV_CHUNK] + r,
                       s->kvd, hd, n, qpos - kp, scale, m, l, out, qd, ws);
    }
    for (int i = 0; i < nq; i++) {
        const float inv = 1.0f / l[i];
        for (int d = 0; d < hd; d++) out[(size_t)i * qd + d] *= inv;
    }
    atomic_store_explicit(&p->busy[slot], 0, memory_order_release);
}

/* causal attention of T queries at positions pos0.. over the cache's
 * positions 0..pos0+T-1: per KV head its keys and values in FP32, then one
 * query head at a time with two sgemms (an FP32 cache: a teacher, whose
 * outputs stay those of the reference) */
static void attention_cached(const ModelConfig *c, ModelActs *a, ModelState *s, const KernDec *d, int l, int T, int pos0)
{
    int hd = c->head_dim, qd = c->n_heads * hd;
    int kv_mul = c->n_heads / c->n_kv_heads, S = pos0 + T;
    float scale = 1.0f / sqrtf((float)hd);
    size_t need = (size_t)2 * S * hd;
    if (s->gather_cap < need) {
        free(s->gather);
        s->gather = ob_aligned_alloc(64, need * sizeof(float));
        s->gather_cap = need;
    }
    float *K = s->gather, *V = s->gather + (size_t)S * hd;
    for (int g = 0; g < c->n_kv_heads; g++) {
        kv_gather(s, d, l, g, hd, S, K, V);
        for (int h = g * kv_mul; h < (g + 1) * kv_mul; h++) {
            const float *Q = a->q + h * hd;
            // att (T,S) = Q (T,hd) · Kᵀ (hd,S)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, hd, scale, Q, qd, K, hd, 0.0f, a->att, S);
            for (int t = 0; t < T; t++) {
                float *row = a->att + (size_t)t * S;
                int n = pos0 + t + 1;
                model_softmax(row, n);
                memset(row + n, 0, (size_t)(S - n) * sizeof(float));
            }
            // out (T,hd) = att (T,S) · V (S,hd)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, S, 1.0f, a->att, S, V, hd, 0.0f,
                        a->attout + h * hd, qd);
        }
    }
}

void model_forward_kv(const Model *m, ModelActs *a, ModelState *s, const int *tokens, int T, int pos0,
                      float *logits, int n_logits)
{
    const ModelConfig *c = &m->cfg;
    int C = c->dim;
    Pool *pool;
    const KernDec *d = model_dec(m, s, &pool);
    kv_settle(m, s);
    kv_reserve(s, pos0 + T);
    const int tiles = s->kv == MODEL_KV_F16, nslots = pool_threads(pool);
    atomic_int *busy = tiles ? ob_calloc((size_t)nslots, sizeof(atomic_int)) : NULL;
    for (int i = 0; busy && i < nslots; i++) atomic_init(&busy[i], 0);
    if (tiles) {
        size_t need = (size_t)nslots * prompt_tile_floats(c->head_dim);
        if (s->tile_cap < need) {
            free(s->tile);
            s->tile = ob_aligned_alloc(64, need * sizeof(float));
            s->tile_cap = need;
        }
    }
    for (int t = 0; t < T; t++) model_embed(m, tokens[t], a->x + (size_t)t * C);
    for (int l = 0; l < c->n_layers; l++) {
        const Linear *L = m->lin + (size_t)l * LIN_PER_LAYER;
        block_qkv_batched(m, a, L, l, T, pos0);
        kv_store(s, d, l, pos0, a->k, a->v, T);
        if (tiles) {
            PromptAttn pa = {c, s, d, a, l, T, pos0, busy, nslots};
            pool_run(pool, prompt_attn_tile, &pa, c->n_heads * ((T + KERN_ATTN_QB - 1) / KERN_ATTN_QB));
        } else attention_cached(c, a, s, d, l, T, pos0);
        block_tail_batched(m, a, L, l, T);
    }
    free(busy);
    if (n_logits <= 0) return;
    int t0 = T - n_logits;
    rmsnorm_rows(m, a, m->rms_final, t0, T);
    head_batched(m, a->xb + (size_t)t0 * C, n_logits, logits); // (n,V)
}

/* ---- incremental forward ----------------------------------------------- */

int model_kv_parse(const char *name)
{
    if (!strcmp(name, "f32")) return MODEL_KV_F32;
    if (!strcmp(name, "f16")) return MODEL_KV_F16;
    if (!strcmp(name, "auto")) return MODEL_KV_AUTO;
    return -1;
}

int model_state_init(ModelState *s, const ModelConfig *c)
{
    memset(s, 0, sizeof *s);
    size_t C = c->dim, F = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t big = C > qd ? C : qd;
    s->x = ob_aligned_alloc(64, C * 4);
    s->xb = ob_aligned_alloc(64, big * 4);
    s->xb2 = ob_aligned_alloc(64, C * 4);
    s->q = ob_aligned_alloc(64, qd * 4);
    s->k = ob_aligned_alloc(64, kvd * 4);
    s->v = ob_aligned_alloc(64, kvd * 4);
    s->att = ob_aligned_alloc(64, (size_t)c->n_heads * c->seq_len * 4);
    s->hb = ob_aligned_alloc(64, F * 4);
    s->hb2 = ob_aligned_alloc(64, F * 4);
    s->logits = ob_aligned_alloc(64, (size_t)c->vocab_size * 4);
    s->n_layers = c->n_layers;
    s->kvd = (int)kvd;
    s->n_chunks = (c->seq_len + MODEL_KV_CHUNK - 1) / MODEL_KV_CHUNK;
    s->kc = ob_calloc((size_t)c->n_layers * s->n_chunks, sizeof(void *));
    s->vc = ob_calloc((size_t)c->n_layers * s->n_chunks, sizeof(void *));
    const char *env = getenv("ONEBIT_KV");
    int kv = env && *env ? model_kv_parse(env) : MODEL_KV_AUTO;
    if (kv < 0) {
        fprintf(stderr, "onebit-tui: warning: ONEBIT_KV=%s is not f32, f16 or auto; using auto\n", env);
        kv = MODEL_KV_AUTO;
    }
    s->kv = kv;
    s->rope_cos = ob_aligned_alloc(64, (size_t)c->seq_len * c->head_dim / 2 * 4);
    s->rope_sin = ob_aligned_alloc(64, (size_t)c->seq_len * c->head_dim / 2 * 4);
    model_rope_table(c, s->rope_cos, s->rope_sin);
    return 0;
}

int model_state_set_kv(ModelState *s, int kv)
{
    if (s->chunks) return -1;
    s->kv = kv;
    return 0;
}

void model_state_set_attn(ModelState *s, int attn) { s->attn = attn; }

size_t model_state_kv_bytes(const ModelState *s)
{
    return (size_t)2 * s->n_layers * s->chunks * MODEL_KV_CHUNK * s->kvd * kv_esize(s);
}

void model_state_free(ModelState *s)
{
    for (int j = 0; s->kc && j < s->chunks; j++) free(s->kc[j]);
    free(s->kc); free(s->vc); free(s->gather); free(s->part); free(s->tile);
    if (s->pool) pool_free(s->pool);
    free(s->x); free(s->xb); free(s->xb2); free(s->q); free(s->k); free(s->v); free(s->att); free(s->hb); free(s->hb2);
    free(s->logits); free(s->rope_cos); free(s->rope_sin);
    memset(s, 0, sizeof *s);
}

/* one decode step's attention of layer l: a task per query head */
typedef struct {
    const ModelConfig *c;
    ModelState *s;
    const KernDec *d;
    int l, pos;
} StepAttn;

static void step_attn_head(void *vc, int h)
{
    const StepAttn *a = vc;
    const int hd = a->c->head_dim;
    attn_query(a->c, a->s, a->d, a->l, h, a->pos + 1, a->s->q + (size_t)h * hd, a->s->att + (size_t)h * a->c->seq_len,
               a->s->xb + (size_t)h * hd);
}

/* a slot of s->part: a position range's partial output (qd), maxima and
 * exp-sums (n_heads each), and step_f16's scratch */
_Static_assert(MODEL_KV_CHUNK <= KERN_STEP_N, "step_f16 takes a chunk's positions");
static size_t step_part_floats(const ModelConfig *c)
{
    return (size_t)c->n_heads * c->head_dim + 2 * (size_t)c->n_heads + KERN_STEP_SC(c->n_heads);
}

/* the position ranges (tasks) of a step over S positions: one per
 * MODEL_ATTN_MIN positions, at most MODEL_ATTN_TASKS; a function of S only,
 * so the merge's order, and the bits, do not depend on the thread count */
static int step_attn_tasks(int S)
{
    int n = (S + MODEL_ATTN_MIN - 1) / MODEL_ATTN_MIN;
    return n < MODEL_ATTN_TASKS ? n : MODEL_ATTN_TASKS;
}

/* one decode step's attention of layer l over the positions [S i / n, S (i
 * + 1) / n) of an FP16 cache, for all heads (flash-decoding): KernDec's
 * step_f16 over the range's piece in each chunk of the cache, carrying the
 * maxima, sums and partial output from piece to piece, into slot i */
static void step_attn_range(void *vc, int i)
{
    const StepAttn *a = vc;
    const ModelConfig *c = a->c;
    ModelState *s = a->s;
    const int hd = c->head_dim, nh = c->n_heads, kvd = s->kvd, S = a->pos + 1, n = step_attn_tasks(S);
    const int p1 = (int)((long)S * (i + 1) / n);
    float *o = s->part + (size_t)i * step_part_floats(c), *m = o + (size_t)nh * hd, *l = m + nh, *sc = l + nh;
    for (int h = 0; h < nh; h++) m[h] = -INFINITY, l[h] = 0.0f;
    memset(o, 0, (size_t)nh * hd * sizeof(float));
    for (int p = (int)((long)S * i / n); p < p1;) {
        const int r = p % MODEL_KV_CHUNK, len = p1 - p < MODEL_KV_CHUNK - r ? p1 - p : MODEL_KV_CHUNK - r;
        const size_t ci = (size_t)a->l * s->n_chunks + p / MODEL_KV_CHUNK;
        a->d->step_f16(s->q, (const uint16_t *)s->kc[ci] + (size_t)r * kvd, (const uint16_t *)s->vc[ci] + (size_t)r * kvd, kvd, nh,
                       c->n_heads / c->n_kv_heads, hd, len, 1.0f / sqrtf((float)hd), m, l, o, sc);
        p += len;
    }
}

/* the merge of a step's nb position ranges into s->xb, head by head in
 * range order: M the ranges' largest maximum, w_b = exp(m_b - M) / sum_b'
 * l_b' exp(m_b' - M), out = sum_b w_b o_b */
static void step_attn_merge(const ModelConfig *c, ModelState *s, const KernDec *d, int nb)
{
    const int hd = c->head_dim, nh = c->n_heads;
    const size_t pf = step_part_floats(c), qd = (size_t)nh * hd;
    float *w = s->att;
    for (int h = 0; h < nh; h++) {
        float M = s->part[qd + h], L = 0;
        for (int b = 1; b < nb; b++) M = fmaxf(M, s->part[(size_t)b * pf + qd + h]);
        for (int b = 0; b < nb; b++) {
            const float *mb = s->part + (size_t)b * pf + qd;
            w[b] = expf(mb[h] - M);
            L += mb[nh + h] * w[b];
        }
        for (int b = 0; b < nb; b++) w[b] /= L;
        float *out = s->xb + (size_t)h * hd;
        memset(out, 0, hd * sizeof(float));
        d->accum_f32(w, s->part + (size_t)h * hd, pf, hd, nb, out);
    }
}

/* a step's SwiGLU, hb = silu(hb) * hb2 over F values (a student's with its
 * KernExec's silu_mul, a teacher's with the reference's expf), in a fixed
 * split: task t of ntasks takes [F t / ntasks, F (t + 1) / ntasks) */
typedef struct {
    float *hb;
    const float *hb2;
    const KernExec *ex;
    int F, ntasks;
} StepSwiglu;

#define STEP_SWIGLU_TASKS 4
/* from this many values the SwiGLU goes to the pool (its expf is serial
 * work the other threads would wait for: 2.8% of a 7B token on 2 threads) */
#define STEP_SWIGLU_POOL_MIN 4096

static void step_swiglu(void *vc, int t)
{
    const StepSwiglu *w = vc;
    int i0 = (int)((long)w->F * t / w->ntasks), i1 = (int)((long)w->F * (t + 1) / w->ntasks);
    (w->ex ? w->ex->silu_mul : kern_silu_mul_ref)(w->hb + i0, w->hb2 + i0, (size_t)(i1 - i0));
}

/* below this many multiply-adds a step's attention stays on the caller (a
 * pool run costs a few microseconds) */
#define STEP_ATTN_POOL_MIN (1 << 15)

float *model_step(const Model *m, ModelState *s, int token, int pos)
{
    const ModelConfig *c = &m->cfg;
    int C = c->dim, F = c->hidden_dim, hd = c->head_dim, half = hd / 2;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    Pool *pool;
    const KernDec *d = model_dec(m, s, &pool);
    const KernExec *ex = linear_exec(&m->lin[0]);
    /* a student's RMSNorms with its KernExec's (vectorised), a teacher's
     * with the reference */
    void (*rms)(float *, const float *, const float *, int, float) = ex ? ex->rmsnorm : model_rmsnorm;
    kv_settle(m, s);
    kv_reserve(s, pos + 1);
    const int on_pool = (double)c->n_heads * (pos + 1) * hd >= STEP_ATTN_POOL_MIN && pool_threads(pool) > 1;
    const int by_pos = s->kv == MODEL_KV_F16 && s->attn != MODEL_ATTN_HEADS;
    if (by_pos && !s->part) s->part = ob_aligned_alloc(64, (size_t)MODEL_ATTN_TASKS * step_part_floats(c) * sizeof(float));
    model_embed(m, token, s->x);
    for (int l = 0; l < c->n_layers; l++) {
        const Linear *L = m->lin + (size_t)l * LIN_PER_LAYER;
        rms(s->xb, s->x, m->rms_att + (size_t)l * C, C, c->norm_eps);
        const Linear *qkv[3] = {&L[LIN_Q], &L[LIN_K], &L[LIN_V]};
        float *const qkv_y[3] = {s->q, s->k, s->v};
        linear_forward_many(qkv, 3, s->xb, qkv_y, 1);
        model_rope(s->q, qd, hd, s->rope_cos + (size_t)pos * half, s->rope_sin + (size_t)pos * half);
        model_rope(s->k, kvd, hd, s->rope_cos + (size_t)pos * half, s->rope_sin + (size_t)pos * half);
        kv_store(s, d, l, pos, s->k, s->v, 1);
        StepAttn sa = {c, s, d, l, pos};
        if (by_pos) {
            int nb = step_attn_tasks(pos + 1);
            if (on_pool) pool_run(pool, step_attn_range, &sa, nb);
            else for (int b = 0; b < nb; b++) step_attn_range(&sa, b);
            step_attn_merge(c, s, d, nb);
        } else if (on_pool) pool_run(pool, step_attn_head, &sa, c->n_heads);
        else for (int h = 0; h < c->n_heads; h++) step_attn_head(&sa, h);
        linear_forward(&L[LIN_O], s->xb, s->xb2, 1);
        for (int i = 0; i < C; i++) s->x[i] += s->xb2[i];
        rms(s->xb, s->x, m->rms_ffn + (size_t)l * C, C, c->norm_eps);
        const Linear *gu[2] = {&L[LIN_GATE], &L[LIN_UP]};
        float *const gu_y[2] = {s->hb, s->hb2};
        linear_forward_many(gu, 2, s->xb, gu_y, 1);
        StepSwiglu sw = {s->hb, s->hb2, ex, F, STEP_SWIGLU_TASKS};
        if (F >= STEP_SWIGLU_POOL_MIN && pool_threads(pool) > 1) pool_run(pool, step_swiglu, &sw, sw.ntasks);
        else for (int t = 0; t < sw.ntasks; t++) step_swiglu(&sw, t);
        linear_forward(&L[LIN_DOWN], s->hb, s->xb2, 1);
        for (int i = 0; i < C; i++) s->x[i] += s->xb2[i];
    }
    rms(s->x, s->x, m->rms_final, C, c->norm_eps);
    /* a student's head on its layers' pool (linear_head); a teacher's
     * through OpenBLAS, as every other matmul of it (and as llama2.c) */
    linear_head(&m->lin[0], m->cls_w, m->cls_type, s->x, s->logits, c->vocab_size, C);
    return s->logits;
}

double model_step_bytes(const Model *m, const ModelState *s, int pos)
{
    const ModelConfig *c = &m->cfg;
    double b = 0;
    for (int i = 0; i < c->n_layers * LIN_PER_LAYER; i++) {
        const Linear *L = &m->lin[i];
        if (L->kind != LINEAR_DENSE) b += (double)L->out * ((L->in + 63) / 64) * 8 + (double)(L->in + L->out) * 4;
        else b += (double)L->out * llama_dtype_bytes(L->w ? LINEAR_W_F32 : L->wtype, (uint64_t)L->in);
    }
    b += (double)(2 * c->n_layers + 1) * c->dim * 4;
    b += (double)c->vocab_size * llama_dtype_bytes(m->cls_type, (uint64_t)c->dim);
    b += 2.0 * c->n_layers * s->kvd * (kv_kind(m, s) == MODEL_KV_F16 ? 2 : 4) * (pos + 1.0);
    return b;
}

/* ---- from a loader's description --------------------------------------- */

int model_from_llama(Model *m, const LlamaFile *f, const char *path, char *err)
{
    memset(m, 0, sizeof *m);
    char why[OB_ERRLEN];
    if (llama_file_check(f, why)) { ob_seterr(err, "%s: %s", path, why); return -1; }
    if (model_alloc(m, &f->cfg, 1, err)) return -1;
    const ModelConfig *c = &m->cfg;
    size_t C = c->dim, F = c->hidden_dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    /* where each role goes in the arena: base, and the stride per layer */
    float *base[LLAMA_NROLES] = {
        [LLAMA_TOK_EMB] = m->tok_emb, [LLAMA_RMS_FINAL] = m->rms_final, [LLAMA_WCLS] = m->wcls,
        [LLAMA_RMS_ATT_L] = m->rms_att, [LLAMA_WQ_L] = m->wq, [LLAMA_WK_L] = m->wk, [LLAMA_WV_L] = m->wv,
        [LLAMA_WO_L] = m->wo, [LLAMA_RMS_FFN_L] = m->rms_ffn, [LLAMA_W1_L] = m->w1, [LLAMA_W2_L] = m->w2,
        [LLAMA_W3_L] = m->w3};
    size_t stride[LLAMA_NROLES] = {
        [LLAMA_RMS_ATT_L] = C, [LLAMA_WQ_L] = qd * C, [LLAMA_WK_L] = kvd * C, [LLAMA_WV_L] = kvd * C,
        [LLAMA_WO_L] = C * qd, [LLAMA_RMS_FFN_L] = C, [LLAMA_W1_L] = F * C, [LLAMA_W2_L] = C * F, [LLAMA_W3_L] = F * C};
    for (int role = 0; role < LLAMA_NROLES; role++) {
        if (role == LLAMA_WCLS && c->shared_classifier) continue;
        int layers = role < LLAMA_FIRST_LAYER_ROLE ? 1 : c->n_layers;
        for (int l = 0; l < layers; l++) {
            const LlamaTensor *t = llama_file_find(f, role, role < LLAMA_FIRST_LAYER_ROLE ? -1 : l);
            llama_tensor_to_f32(t, base[role] + (size_t)l * stride[role]);
        }
    }
    for (size_t i = 0; i < m->arena_floats; i++) {
        if (!isfinite(m->arena[i])) {
            ob_seterr(err, "%s: weight %zu is not finite", path, i);
            model_free(m);
            return -1;
        }
    }
    return 0;
}

/* the linear of each per-layer role (-1: a norm) */
static int role_lin(int role)
{
    switch (role) {
    case LLAMA_WQ_L: return LIN_Q;
    case LLAMA_WK_L: return LIN_K;
    case LLAMA_WV_L: return LIN_V;
    case LLAMA_WO_L: return LIN_O;
    case LLAMA_W1_L: return LIN_GATE;
    case LLAMA_W2_L: return LIN_DOWN;
    case LLAMA_W3_L: return LIN_UP;
    }
    return -1;
}

/* -1 if every element of t is finite, else the index of the first one that
 * is not; converted a tile of rows at a time */
static long long tensor_nonfinite(const LlamaTensor *t)
{
    size_t cols = (size_t)t->cols, rows = (size_t)t->rows, tr = 65536 / cols ? 65536 / cols : 1;
    float *buf = ob_malloc(tr * cols * sizeof(float));
    long long at = -1;
    for (size_t r0 = 0; r0 < rows && at < 0; r0 += tr) {
        size_t n = rows - r0 < tr ? rows - r0 : tr;
        linear_w_rows_f32(t->dtype, t->data, r0, n, cols, buf);
        int bad = 0;
        for (size_t i = 0; i < n * cols; i++) bad |= !(fabsf(buf[i]) <= FLT_MAX);
        for (size_t i = 0; bad && i < n * cols; i++)
            if (!isfinite(buf[i])) { at = (long long)(r0 * cols + i); break; }
    }
    free(buf);
    /* read once to check it: its pages leave the RSS until a matmul wants them */
    file_map_drop(t->data, t->rows * llama_dtype_bytes(t->dtype, cols));
    return at;
}

static void free_llama_extra(void *p)
{
    llama_file_free(p);
    free(p);
}

/* every tensor's rows are whole blocks of its type (a row can be converted alone) */
static int rows_whole(const LlamaFile *f)
{
    for (int i = 0; i < f->n; i++)
        if (!llama_dtype_bytes(f->t[i].dtype, f->t[i].cols)) return 0;
    return 1;
}

int model_from_llama_mapped(Model *m, LlamaFile *f, const char *path, char *err)
{
    memset(m, 0, sizeof *m);
    LlamaFile *own = ob_malloc(sizeof *own);
    *own = *f;
    memset(f, 0, sizeof *f);
    char why[OB_ERRLEN];
    if (llama_file_check(own, why)) { ob_seterr(err, "%s: %s", path, why); free_llama_extra(own); return -1; }
    if (!rows_whole(own)) {
        ob_seterr(err, "%s: a tensor's rows are not whole blocks of its type; it cannot be mapped (ONEBIT_TEACHER_LOAD=arena)", path);
        free_llama_extra(own);
        return -1;
    }
    const LlamaConfig *c = &own->cfg;
    const LlamaTensor *emb = llama_file_find(own, LLAMA_TOK_EMB, -1);
    const LlamaTensor *cls = c->shared_classifier ? emb : llama_file_find(own, LLAMA_WCLS, -1);
    if (model_alloc_lean(m, c, emb->dtype, cls->dtype, err)) { free_llama_extra(own); return -1; }
    m->extra = own;
    m->free_extra = free_llama_extra;
    size_t C = (size_t)c->dim;
    for (int i = 0; i < own->n; i++) {
        const LlamaTensor *t = &own->t[i];
        long long bad = tensor_nonfinite(t);
        if (bad >= 0) {
            char where[32] = "";
            if (t->layer >= 0) snprintf(where, sizeof where, " of layer %d", t->layer);
            ob_seterr(err, "%s: weight %lld of the %s tensor%s is not finite", path, bad, llama_role_name(t->role), where);
            model_free(m);
            return -1;
        }
        int k = t->role >= LLAMA_FIRST_LAYER_ROLE ? role_lin(t->role) : -1;
        if (k >= 0) {
            Linear *L = &m->lin[(size_t)t->layer * LIN_PER_LAYER + k];
            model_lin_shape(c, k, &L->out, &L->in);
            L->kind = LINEAR_DENSE;
            L->wtype = t->dtype;
            L->wd = t->data;
            L->rope_heads = t->rope_heads;
            /* FP32 rows in their order, aligned: OpenBLAS reads them in place */
            if (t->dtype == LLAMA_F32 && !t->rope_heads && (uintptr_t)t->data % sizeof(float) == 0) L->w = t->data;
            continue;
        }
        float *dst = NULL;
        switch (t->role) {
        case LLAMA_RMS_ATT_L: dst = m->rms_att + (size_t)t->layer * C; break;
        case LLAMA_RMS_FFN_L: dst = m->rms_ffn + (size_t)t->layer * C; break;
        case LLAMA_RMS_FINAL: dst = m->rms_final; break;
        case LLAMA_TOK_EMB: dst = m->tok_emb; m->emb_w = m->tok_emb ? (const void *)m->tok_emb : t->data; break;
        case LLAMA_WCLS: dst = m->wcls; m->cls_w = m->wcls ? (const void *)m->wcls : t->data; break;
        }
        if (dst) llama_tensor_to_f32(t, dst);
    }
    if (c->shared_classifier) m->cls_w = m->emb_w;
    return 0;
}

int model_is_mapped(const Model *m)
{
    return m->lin && m->lin[0].kind == LINEAR_DENSE && m->lin[0].wd != NULL;
}

/* MODEL_TEACHER_* from $ONEBIT_TEACHER_LOAD (a warning and auto if unknown) */
static int teacher_mode(void)
{
    const char *env = getenv("ONEBIT_TEACHER_LOAD");
    if (!env || !*env || !strcmp(env, "auto")) return MODEL_TEACHER_AUTO;
    if (!strcmp(env, "arena")) return MODEL_TEACHER_ARENA;
    if (!strcmp(env, "mapped")) return MODEL_TEACHER_MAPPED;
    fprintf(stderr, "onebit-tui: warning: ONEBIT_TEACHER_LOAD=%s is not auto, arena or mapped; using auto\n", env);
    return MODEL_TEACHER_AUTO;
}

/* auto: map when a linear is not FP32 and every row can be converted alone */
static int want_mapped(const LlamaFile *f)
{
    int mode = teacher_mode();
    if (mode != MODEL_TEACHER_AUTO) return mode == MODEL_TEACHER_MAPPED;
    if (!rows_whole(f)) return 0;
    for (int i = 0; i < f->n; i++)
        if (role_lin(f->t[i].role) >= 0 && f->t[i].dtype != LLAMA_F32) return 1;
    return 0;
}

int model_load_ex(Model *m, Tokenizer *tok, int *tok_loaded, const char *path, char *err)
{
    int dummy;
    if (!tok_loaded) tok_loaded = &dummy;
    *tok_loaded = 0;
    memset(m, 0, sizeof *m);
    LlamaFile f;
    if (loader_load(&f, tok, tok_loaded, path, err)) return -1;
    int rc;
    if (want_mapped(&f)) rc = model_from_llama_mapped(m, &f, path, err);
    else {
        rc = model_from_llama(m, &f, path, err);
        llama_file_free(&f);
    }
    if (rc && *tok_loaded) {
        tok_free(tok);
        *tok_loaded = 0;
    }
    return rc;
}

int model_load(Model *m, const char *path, char *err)
{
    return model_load_ex(m, NULL, NULL, path, err);
}
