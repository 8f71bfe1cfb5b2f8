/* test_decode.c -- the decode path: every KernDec variant (kernels.h: the
 * attention scores and weighted values over FP32 and FP16 caches, FP16
 * and BF16 conversion, FP16, BF16 and Q8_0 GEMV rows) against the scalar reference on
 * sizes around every vector width, and the blocked prompt attention
 * (attn_f16) against a dense causal attention, a decode step's attention
 * (step_f16) against one query's in double; then model_step with its chunked KV cache
 * against the batched forward on a random model whose attention goes to the
 * pool, the same logits on 1 and 2 threads, and the cache grown in chunks. */
#include <stdint.h>

#include "base/common.h"
#include "base/pool.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "test.h"

static uint64_t rng = 12345;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0) * 2 - 1);
}

/* |got - want| relative to the sum of the magnitudes of the terms */
static double rel(double got, double want, double mag) { return fabs(got - want) / (mag > 1e-30 ? mag : 1e-30); }

static void check_variant(const KernDec *d, const KernDec *r)
{
    enum { MAXN = 150, MAXHD = 160, LD = 200 };
    float *Kf = malloc(sizeof(float) * MAXN * LD), *q = malloc(sizeof(float) * MAXHD), *a = malloc(sizeof(float) * MAXN);
    uint16_t *Kh = malloc(sizeof(uint16_t) * MAXN * LD);
    for (int i = 0; i < MAXN * LD; i++) { Kf[i] = frand(); Kh[i] = ob_fp32_to_fp16(frand() * 4); }
    for (int i = 0; i < MAXHD; i++) q[i] = frand();
    for (int i = 0; i < MAXN; i++) a[i] = (frand() + 1) / MAXN;
    static const int hds[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 96, 128, 129, 160};
    static const int ns[] = {0, 1, 3, 4, 5, 8, 63, 64, 150};
    double ws = 0, wa = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
            int hd = hds[hi], n = ns[ni];
            size_t ld = hd + (hd & 1 ? 3 : 40);
            for (int f16 = 0; f16 < 2; f16++) {
                float s1[MAXN + 1], s2[MAXN + 1], o1[MAXHD + 1], o2[MAXHD + 1];
                s1[n] = s2[n] = 42.0f;
                if (f16) { d->score_f16(q, Kh, ld, hd, n, 0.5f, s1); r->score_f16(q, Kh, ld, hd, n, 0.5f, s2); }
                else { d->score_f32(q, Kf, ld, hd, n, 0.5f, s1); r->score_f32(q, Kf, ld, hd, n, 0.5f, s2); }
                for (int t = 0; t < n; t++) {
                    double mag = 0;
                    for (int i = 0; i < hd; i++)
                        mag += fabs(q[i] * (f16 ? ob_fp16_to_fp32(Kh[t * ld + i]) : Kf[t * ld + i])) * 0.5;
                    ws = fmax(ws, rel(s1[t], s2[t], mag));
                }
                CHECK(s1[n] == 42.0f, "%s: score writes past n (hd %d n %d)", d->name, hd, n);
                for (int i = 0; i <= hd; i++) o1[i] = o2[i] = (float)i * 0.01f;
                if (f16) { d->accum_f16(a, Kh, ld, hd, n, o1); r->accum_f16(a, Kh, ld, hd, n, o2); }
                else { d->accum_f32(a, Kf, ld, hd, n, o1); r->accum_f32(a, Kf, ld, hd, n, o2); }
                for (int i = 0; i < hd; i++) {
                    double mag = fabs(i * 0.01);
                    for (int t = 0; t < n; t++) mag += fabs(a[t] * (f16 ? ob_fp16_to_fp32(Kh[t * ld + i]) : Kf[t * ld + i]));
                    wa = fmax(wa, rel(o1[i], o2[i], mag));
                }
                CHECK(o1[hd] == hd * 0.01f, "%s: accum writes past hd (hd %d n %d)", d->name, hd, n);
            }
        }
    CHECK(ws < 1e-5, "%s: scores vs ref: max relative error %g", d->name, ws);
    CHECK(wa < 1e-5, "%s: weighted values vs ref: max relative error %g", d->name, wa);

    /* conversions: every FP16 value to FP32 and back, and FP32 values
     * around every rounding case, bit-identical to the reference */
    uint16_t *h = malloc(65536 * 2), *h2 = malloc(65536 * 2), *h3 = malloc(65536 * 2);
    float *f = malloc(65536 * 4), *f2 = malloc(65536 * 4);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    d->from_f16(h, f, 65536);
    r->from_f16(h, f2, 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) bad += memcmp(&f[i], &f2[i], 4) != 0 && !(isnan(f[i]) && isnan(f2[i]));
    CHECK(bad == 0, "%s: from_f16 differs from the reference on %d values", d->name, bad);
    d->from_bf16(h, f, 65536);
    bad = 0;
    for (int i = 0; i < 65536; i++) { uint32_t u = (uint32_t)i << 16; bad += memcmp(&f[i], &u, 4) != 0; }
    for (int n = 1; n < 40; n++) { /* tails: nothing written past n */
        for (int i = 0; i < 41; i++) f2[i] = -7.0f;
        d->from_bf16(h + 1000, f2, (size_t)n);
        for (int i = 0; i < 41; i++) bad += i < n ? f2[i] != ob_bf16_to_fp32(h[1000 + i]) : f2[i] != -7.0f;
    }
    CHECK(bad == 0, "%s: from_bf16 is not the exact widening on %d values", d->name, bad);
    for (int i = 0; i < 65536; i++) {
        f[i] = (i & 1) ? frand() * 70000 : frand() * 1e-4f;
        if (i % 7 == 0) { uint32_t b = (uint32_t)(rng >> 20) & 0x47ffe000u; b |= 0x1000; memcpy(&f[i], &b, 4); } /* ties */
    }
    for (int n = 65536; n >= 65520; n--) { /* tails */
        memset(h2, 0, 65536 * 2); memset(h3, 0, 65536 * 2);
        d->to_f16(f, h2, n);
        r->to_f16(f, h3, n);
        CHECK(!memcmp(h2, h3, 65536 * 2), "%s: to_f16 differs from the reference (n %d)", d->name, n);
    }
    free(h); free(h2); free(h3); free(f); free(f2);

    /* GEMV rows over FP16 and Q8_0 weights */
    static const int colss[] = {32, 64, 96, 160, 4096 + 64};
    for (size_t ci = 0; ci < sizeof colss / sizeof *colss; ci++) {
        int cols = colss[ci], rows = 13;
        uint16_t *W = malloc((size_t)rows * cols * 2), *Wb = malloc((size_t)rows * cols * 2);
        float *Wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)cols * 4);
        KernQ8_0 *Wq = malloc((size_t)rows * cols / 32 * sizeof(KernQ8_0));
        for (int i = 0; i < rows * cols; i++) { Wf[i] = frand(); W[i] = ob_fp32_to_fp16(Wf[i]); Wb[i] = ob_fp32_to_bf16(Wf[i]); }
        for (int i = 0; i < cols; i++) x[i] = frand();
        kern_q8_0_quantize(Wf, Wq, (size_t)rows * cols);
        float y1[16], y2[16];
        double w16 = 0, wq = 0, wb = 0;
        for (int r0 = 0; r0 < 3; r0++) {
            for (int i = 0; i < 16; i++) y1[i] = y2[i] = -7.0f;
            d->gemv_f16(W, x, y1, cols, r0, rows);
            r->gemv_f16(W, x, y2, cols, r0, rows);
            for (int i = 0; i < 16; i++) if (i < r0 || i >= rows) CHECK(y1[i] == -7.0f, "%s: gemv_f16 writes row %d", d->name, i);
            for (int i = r0; i < rows; i++) w16 = fmax(w16, fabs(y1[i] - y2[i]) / sqrt((double)cols));
            for (int i = 0; i < 16; i++) y1[i] = y2[i] = -7.0f;
            d->gemv_bf16(Wb, x, y1, cols, r0, rows);
            r->gemv_bf16(Wb, x, y2, cols, r0, rows);
            for (int i = 0; i < 16; i++) if (i < r0 || i >= rows) CHECK(y1[i] == -7.0f, "%s: gemv_bf16 writes row %d", d->name, i);
            for (int i = r0; i < rows; i++) wb = fmax(wb, fabs(y1[i] - y2[i]) / sqrt((double)cols));
            for (int i = 0; i < 16; i++) y1[i] = y2[i] = -7.0f;
            d->gemv_q8_0(Wq, x, y1, cols, r0, rows);
            r->gemv_q8_0(Wq, x, y2, cols, r0, rows);
            for (int i = 0; i < 16; i++) if (i < r0 || i >= rows) CHECK(y1[i] == -7.0f, "%s: gemv_q8_0 writes row %d", d->name, i);
            for (int i = r0; i < rows; i++) wq = fmax(wq, fabs(y1[i] - y2[i]) / sqrt((double)cols));
        }
        CHECK(w16 < 1e-5, "%s: gemv_f16 vs ref (cols %d): %g", d->name, cols, w16);
        CHECK(wq < 1e-5, "%s: gemv_q8_0 vs ref (cols %d): %g", d->name, cols, wq);
        CHECK(wb < 1e-5, "%s: gemv_bf16 vs ref (cols %d): %g", d->name, cols, wb);
        free(W); free(Wb); free(Wf); free(x); free(Wq);
    }
    /* 16-bit GEMV rows on widths that are not whole vectors (masked tails) */
    static const int odd[] = {1, 7, 17, 33, 50, 4097};
    for (size_t ci = 0; ci < sizeof odd / sizeof *odd; ci++) {
        int cols = odd[ci], rows = 6;
        uint16_t *W = malloc((size_t)rows * cols * 2), *Wb = malloc((size_t)rows * cols * 2);
        float *x = malloc((size_t)cols * 4), y1[8], y2[8];
        for (int i = 0; i < rows * cols; i++) { float v = frand(); W[i] = ob_fp32_to_fp16(v); Wb[i] = ob_fp32_to_bf16(v); }
        for (int i = 0; i < cols; i++) x[i] = frand();
        double e16 = 0, eb = 0;
        d->gemv_f16(W, x, y1, cols, 0, rows);
        r->gemv_f16(W, x, y2, cols, 0, rows);
        for (int i = 0; i < rows; i++) e16 = fmax(e16, fabs(y1[i] - y2[i]) / sqrt((double)cols));
        d->gemv_bf16(Wb, x, y1, cols, 0, rows);
        r->gemv_bf16(Wb, x, y2, cols, 0, rows);
        for (int i = 0; i < rows; i++) eb = fmax(eb, fabs(y1[i] - y2[i]) / sqrt((double)cols));
        CHECK(e16 < 1e-5 && eb < 1e-5, "%s: 16-bit GEMV tails vs ref (cols %d): f16 %g bf16 %g", d->name, cols, e16, eb);
        free(W); free(Wb); free(x);
    }
    free(Kf); free(Kh); free(q); free(a);
}

static void check_q8_0(void)
{
    float x[64], y[64];
    KernQ8_0 b[2];
    for (int i = 0; i < 64; i++) x[i] = frand() * 3;
    for (int i = 32; i < 64; i++) x[i] = 0; /* an all-zero block: d = 0 */
    kern_q8_0_quantize(x, b, 64);
    kern_q8_0_to_f32(b, y, 64);
    CHECK(sizeof(KernQ8_0) == 34, "a Q8_0 block is 34 bytes");
    double amax = 0, e = 0;
    for (int i = 0; i < 32; i++) { amax = fmax(amax, fabs(x[i])); e = fmax(e, fabs(y[i] - x[i])); }
    /* half a step, plus 127 times the FP16 rounding of the scale (GGUF
     * quantizes with the FP32 scale and stores it as FP16) */
    CHECK(e <= amax / 127 * (0.5 + 127.0 / 2048) + 1e-6, "Q8_0 round trip within half a step: %g", e);
    int zero = b[1].d == 0;
    for (int i = 32; i < 64; i++) zero &= y[i] == 0;
    CHECK(zero, "an all-zero block stays zero");
}

/* attn_f16 as model.c drives it: a tile of nq queries (rows of Q, hd each)
 * at positions qpos.., the keys 0..qpos+nq-1 in blocks of kb, into O (rows
 * of ldo) divided by the sums; lanes past nq hold zero queries */
static void attn_tile(const KernDec *d, const float *Q, int nq, int qpos, const uint16_t *K, const uint16_t *V, size_t ld, int hd,
                      int kb, float *O, size_t ldo)
{
    enum { QB = KERN_ATTN_QB };
    float *Qt = calloc((size_t)QB * hd, sizeof(float)), *ws = malloc(KERN_ATTN_WS(hd) * sizeof(float)), m[QB], l[QB];
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < hd; j++) Qt[j * QB + i] = Q[(size_t)i * hd + j];
    for (int i = 0; i < QB; i++) { m[i] = -INFINITY; l[i] = 0.0f; }
    for (int i = 0; i < nq; i++) memset(O + (size_t)i * ldo, 0, (size_t)hd * sizeof(float));
    const int end = qpos + nq;
    for (int kp = 0; kp < end; kp += kb) {
        int n = end - kp < kb ? end - kp : kb;
        d->attn_f16(Qt, nq, K + (size_t)kp * ld, V + (size_t)kp * ld, ld, hd, n, qpos - kp, 0.3f, m, l, O, ldo, ws);
    }
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < hd; j++) O[(size_t)i * ldo + j] /= l[i];
    free(Qt);
    free(ws);
}

/* attn_f16 of every variant against a dense causal attention in double:
 * query i at position qpos + i weighs exactly the keys 0..qpos + i (a mask
 * off by one either way changes the outputs by ~1/positions, far past the
 * tolerance), over tiles of 1..16 queries, positions that start and end
 * inside key blocks, blocks of 1..64 keys, head sizes around the vector
 * widths; rows past nq and columns past hd are not written */
static void check_attn(const KernDec *d)
{
    enum { MAXS = 150, MAXHD = 136, LD = 2 * MAXHD + 8 };
    uint16_t *K = malloc(sizeof(uint16_t) * MAXS * LD), *V = malloc(sizeof(uint16_t) * MAXS * LD);
    float *Q = malloc(sizeof(float) * KERN_ATTN_QB * MAXHD), *O = malloc(sizeof(float) * (KERN_ATTN_QB + 1) * (MAXHD + 8));
    double *w = malloc(sizeof(double) * MAXS);
    for (int i = 0; i < MAXS * LD; i++) { K[i] = ob_fp32_to_fp16(frand() * 3); V[i] = ob_fp32_to_fp16(frand()); }
    static const int hds[] = {64, 128, 1, 7, 16, 40, 72, 136};
    static const struct { int nq, qpos, kb; } cs[] = {
        {16, 0, 32}, {16, 16, 32}, {16, 48, 32}, {13, 0, 32}, {5, 70, 32}, {16, 33, 64}, {1, 0, 32}, {1, 63, 64},
        {1, 64, 32}, {7, 121, 64}, {16, 100, 17}, {3, 31, 1}, {16, 134, 64}, {9, 90, 8},
    };
    double worst = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
            const int hd = hds[hi], nq = cs[ci].nq, qpos = cs[ci].qpos, kb = cs[ci].kb;
            const size_t ld = (size_t)hd + (hd & 1 ? 5 : 24), ldo = (size_t)hd + 3;
            for (int i = 0; i < nq * hd; i++) Q[i] = frand();
            for (size_t i = 0; i < (KERN_ATTN_QB + 1) * ldo; i++) O[i] = 42.0f;
            attn_tile(d, Q, nq, qpos, K, V, ld, hd, kb, O, ldo);
            int untouched = 1;
            for (size_t i = 0; i < (size_t)nq * ldo; i++) untouched &= i % ldo < (size_t)hd || O[i] == 42.0f;
            for (size_t i = (size_t)nq * ldo; i < (KERN_ATTN_QB + 1) * ldo; i++) untouched &= O[i] == 42.0f;
            CHECK(untouched, "%s: attn_f16 writes past its rows (hd %d nq %d qpos %d)", d->name, hd, nq, qpos);
            for (int i = 0; i < nq; i++) {
                const int S = qpos + i + 1;
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t < S; t++) {
                    double dot = 0;
                    for (int j = 0; j < hd; j++) dot += (double)Q[i * hd + j] * ob_fp16_to_fp32(K[(size_t)t * ld + j]);
                    w[t] = 0.3 * dot;
                    mx = fmax(mx, w[t]);
                }
                for (int t = 0; t < S; t++) sum += w[t] = exp(w[t] - mx);
                for (int j = 0; j < hd; j++) {
                    double o = 0, mag = 0;
                    for (int t = 0; t < S; t++) {
                        double v = ob_fp16_to_fp32(V[(size_t)t * ld + j]);
                        o += w[t] / sum * v;
                        mag += fabs(w[t] / sum * v);
                    }
                    double e = rel(O[(size_t)i * ldo + j], o, fmax(mag, 1e-3));
                    if (e > worst) worst = e;
                    if (e >= 1e-4) {
                        CHECK(e < 1e-4, "%s: attn_f16 hd %d nq %d qpos %d kb %d: query %d column %d: %g, want %g", d->name, hd, nq,
                              qpos, kb, i, j, O[(size_t)i * ldo + j], o);
                        i = nq;
                        break;
                    }
                }
            }
        }
    CHECK(worst < 1e-4, "%s: attn_f16 vs a dense causal attention: max relative error %g", d->name, worst);
    printf("%s: attn_f16 vs dense causal attention: max relative error %.3g\n", d->name, worst);
    free(K); free(V); free(Q); free(O); free(w);
}

/* a random LLaMA-shaped teacher whose decode attention goes to the pool */
static void random_teacher(Model *m, int seq_len)
{
    char err[OB_ERRLEN];
    ModelConfig c = {256, 512, 2, 4, 2, 64, 300, seq_len, 10000.0f, 1e-5f, 1};
    CHECK(model_alloc(m, &c, 1, err) == 0, "%s", err);
    for (size_t i = 0; i < m->arena_floats; i++) m->arena[i] = frand() * 0.15f;
    for (int i = 0; i < c.n_layers * c.dim; i++) m->rms_att[i] = m->rms_ffn[i] = 1.0f;
    for (int i = 0; i < c.dim; i++) m->rms_final[i] = 1.0f;
}

static void check_model(void)
{
    enum { T = 150 };
    Model m;
    random_teacher(&m, 160);
    const ModelConfig *c = &m.cfg;
    int V = c->vocab_size, tok[T];
    for (int i = 0; i < T; i++) tok[i] = (int)((frand() + 1) * 149.9);
    ModelActs a;
    model_acts_init(&a, c, T);
    float *ref = malloc((size_t)T * V * 4), *got1 = malloc((size_t)T * V * 4), *got2 = malloc((size_t)T * V * 4);
    model_forward(&m, &a, tok, T, ref, NULL);
    char err[OB_ERRLEN];
    for (int kv = MODEL_KV_F32; kv <= MODEL_KV_F16; kv++) {
        for (int th = 1; th <= 2; th++) {
            CHECK(pool_set_global_threads(th, err) == 0, "%s", err);
            ModelState s;
            model_state_init(&s, c);
            model_state_set_kv(&s, kv);
            CHECK(s.chunks == 0 && model_state_kv_bytes(&s) == 0, "nothing cached up front");
            for (int p = 0; p < T; p++) {
                memcpy((th == 1 ? got1 : got2) + (size_t)p * V, model_step(&m, &s, tok[p], p), (size_t)V * 4);
                if (p == MODEL_KV_CHUNK - 1) CHECK(s.chunks == 1, "one chunk for %d positions", MODEL_KV_CHUNK);
                if (p == MODEL_KV_CHUNK) CHECK(s.chunks == 2, "a second chunk at position %d", MODEL_KV_CHUNK);
            }
            size_t esz = kv == MODEL_KV_F16 ? 2 : 4;
            CHECK(model_state_kv_bytes(&s) == (size_t)2 * c->n_layers * 3 * MODEL_KV_CHUNK * c->n_kv_heads * c->head_dim * esz,
                  "cache bytes for %d positions: %zu", T, model_state_kv_bytes(&s));
            model_state_free(&s);
        }
        CHECK(!memcmp(got1, got2, (size_t)T * V * 4), "%s cache: 1 and 2 threads give the same logits", kv == MODEL_KV_F16 ? "FP16" : "FP32");
        {   /* the bytes a step reads: the FP32 weights, norms and head, and the cache up to pos */
            ModelState s;
            model_state_init(&s, c);
            model_state_set_kv(&s, kv);
            double w = 0;
            for (int k = 0; k < LIN_PER_LAYER; k++) {
                int out, in;
                model_lin_shape(c, k, &out, &in);
                w += (double)out * in * 4 * c->n_layers;
            }
            w += (double)(2 * c->n_layers + 1) * c->dim * 4 + (double)V * c->dim * 4;
            double kvb = 2.0 * c->n_layers * c->n_kv_heads * c->head_dim * (kv == MODEL_KV_F16 ? 2 : 4);
            CHECK(model_step_bytes(&m, &s, 0) == w + kvb && model_step_bytes(&m, &s, 99) == w + 100 * kvb,
                  "%s cache: model_step_bytes %.0f / %.0f, want %.0f / %.0f", kv == MODEL_KV_F16 ? "FP16" : "FP32",
                  model_step_bytes(&m, &s, 0), model_step_bytes(&m, &s, 99), w + kvb, w + 100 * kvb);
            model_state_free(&s);
        }
        if (kv == MODEL_KV_F16) {
            /* the position split (the FP16 default) against the head split: float order only */
            ModelState s;
            model_state_init(&s, c);
            model_state_set_kv(&s, kv);
            model_state_set_attn(&s, MODEL_ATTN_HEADS);
            double hdiff = 0, hmag = 0;
            for (int p = 0; p < T; p++) {
                const float *lg = model_step(&m, &s, tok[p], p);
                for (int i = 0; i < V; i++) {
                    hdiff = fmax(hdiff, fabs(lg[i] - got1[(size_t)p * V + i]));
                    hmag = fmax(hmag, fabs(lg[i]));
                }
            }
            CHECK(hdiff <= 1e-4 * fmax(1, hmag), "FP16 cache: attention over positions vs over heads: %g (logits up to %g)", hdiff, hmag);
            model_state_free(&s);
        }
        double md = 0, mag = 0;
        for (size_t i = 0; i < (size_t)T * V; i++) { md = fmax(md, fabs(got1[i] - ref[i])); mag = fmax(mag, fabs(ref[i])); }
        CHECK(md <= (kv == MODEL_KV_F32 ? 1e-4 : 3e-3) * fmax(1, mag), "%s cache: model_step vs model_forward: %g (logits up to %g)",
              kv == MODEL_KV_F16 ? "FP16" : "FP32", md, mag);
        /* model_forward_kv in two parts over the same cache precision, on
         * 1 and 2 threads (the FP16 cache's prompt attention runs on the
         * pool): the same bits */
        for (int th = 1; th <= 2; th++) {
            CHECK(pool_set_global_threads(th, err) == 0, "%s", err);
            ModelState s;
            model_state_init(&s, c);
            model_state_set_kv(&s, kv);
            float *got = th == 1 ? got1 : got2;
            model_forward_kv(&m, &a, &s, tok, 70, 0, got, 70);
            model_forward_kv(&m, &a, &s, tok + 70, T - 70, 70, got + (size_t)70 * V, T - 70);
            model_state_free(&s);
        }
        CHECK(!memcmp(got1, got2, (size_t)T * V * 4), "%s cache: model_forward_kv on 1 and 2 threads gives the same logits",
              kv == MODEL_KV_F16 ? "FP16" : "FP32");
        md = 0;
        for (size_t i = 0; i < (size_t)T * V; i++) md = fmax(md, fabs(got2[i] - ref[i]));
        CHECK(md <= (kv == MODEL_KV_F32 ? 1e-4 : 3e-3) * fmax(1, mag), "%s cache: model_forward_kv vs model_forward: %g",
              kv == MODEL_KV_F16 ? "FP16" : "FP32", md);
    }
    pool_set_global_threads(0, err);
    free(ref); free(got1); free(got2);
    model_acts_free(&a);
    model_free(&m);
}

/* step_f16 of a variant against one decode query's attention in double:
 * nh query heads over nh / group cached heads, the positions in calls of
 * `piece` (the state carried from call to call), the result o / l; one key
 * made to dominate (at the first position or the last) so that both the
 * rescale of earlier calls' sums and a maximum that does not move are
 * exercised; o's rows past each head and the scratch past KERN_STEP_SC are
 * not written */
static void check_step(const KernDec *d)
{
    static const int shapes[][3] = {{1, 1, 1}, {3, 1, 7}, {4, 1, 16}, {5, 5, 17}, {8, 2, 33}, {8, 4, 64}, {12, 3, 65}, {32, 1, 128}, {6, 2, 129}};
    static const int ns[] = {1, 3, 16, 17, 40, 64, 150};
    double worst = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (int dom = 0; dom < 2; dom++) {
                const int nh = shapes[si][0], group = shapes[si][1], hd = shapes[si][2], n = ns[ni], nkv = nh / group;
                const size_t ld = (size_t)nkv * hd + (hd & 1 ? 5 : 0);
                const int piece = n > 64 ? 64 : n > 20 ? 17 : n;
                float *q = malloc(sizeof(float) * nh * hd), *o = malloc(sizeof(float) * (nh * hd + 1)), m[32], l[32];
                float *sc = malloc(sizeof(float) * (KERN_STEP_SC(nh) + 1));
                uint16_t *K = malloc(2 * ld * n), *V = malloc(2 * ld * n);
                for (int i = 0; i < nh * hd; i++) q[i] = frand();
                for (size_t i = 0; i < ld * n; i++) { K[i] = ob_fp32_to_fp16(frand()); V[i] = ob_fp32_to_fp16(frand() * 3); }
                /* key dom ? n - 1 : 0 of head 0's group points along query 0: a large score */
                const int tk = dom ? n - 1 : 0;
                for (int i = 0; i < hd; i++) K[(size_t)tk * ld + i] = ob_fp32_to_fp16(q[i] * 6);
                for (int h = 0; h < nh; h++) m[h] = -INFINITY, l[h] = 0.0f;
                memset(o, 0, sizeof(float) * nh * hd);
                o[nh * hd] = 42.0f;
                sc[KERN_STEP_SC(nh)] = 42.0f;
                const float scale = 1.0f / sqrtf((float)hd);
                for (int p = 0; p < n; p += piece) {
                    int len = n - p < piece ? n - p : piece;
                    d->step_f16(q, K + (size_t)p * ld, V + (size_t)p * ld, ld, nh, group, hd, len, scale, m, l, o, sc);
                }
                CHECK(o[nh * hd] == 42.0f && sc[KERN_STEP_SC(nh)] == 42.0f, "%s: step_f16 writes past o or its scratch (nh %d hd %d n %d)",
                      d->name, nh, hd, n);
                for (int h = 0; h < nh; h++) {
                    const float *qh = q + (size_t)h * hd;
                    double mx = -1e300, sum = 0, *w = malloc(sizeof(double) * n);
                    for (int t = 0; t < n; t++) {
                        double s = 0;
                        for (int i = 0; i < hd; i++) s += (double)qh[i] * ob_fp16_to_fp32(K[(size_t)t * ld + (size_t)(h / group) * hd + i]);
                        w[t] = s * scale;
                        mx = fmax(mx, w[t]);
                    }
                    for (int t = 0; t < n; t++) sum += w[t] = exp(w[t] - mx);
                    CHECK(fabs(m[h] - mx) <= 1e-4 * fmax(1, fabs(mx)), "%s: step_f16 maximum of head %d: %g, want %g", d->name, h, m[h], mx);
                    for (int i = 0; i < hd; i++) {
                        double want = 0, mag = 0;
                        for (int t = 0; t < n; t++) {
                            double v = ob_fp16_to_fp32(V[(size_t)t * ld + (size_t)(h / group) * hd + i]);
                            want += w[t] * v;
                            mag += w[t] * fabs(v);
                        }
                        double e = rel(o[(size_t)h * hd + i] / l[h], want / sum, mag / sum);
                        worst = fmax(worst, e);
                        if (e >= 1e-4)
                            CHECK(0, "%s: step_f16 nh %d group %d hd %d n %d (pieces of %d, dominant key %d): head %d column %d: %g, want %g",
                                  d->name, nh, group, hd, n, piece, tk, h, i, o[(size_t)h * hd + i] / l[h], want / sum);
                    }
                    free(w);
                }
                free(q); free(o); free(sc); free(K); free(V);
            }
    CHECK(worst < 1e-4, "%s: step_f16 vs one query's attention: max relative error %g", d->name, worst);
    printf("%s: step_f16 vs one query's attention in double: max relative error %.3g\n", d->name, worst);
}

int main(void)
{
    const KernDec *r = kern_dec_variant(KERN_DEC_REF);
    CHECK(r && !strcmp(r->name, "ref") && kern_dec_available(r), "the reference");
    CHECK(kern_dec_default() != NULL, "a default");
    printf("decode helpers:");
    for (int i = 0; kern_dec_variant(i); i++) printf(" %s%s", kern_dec_variant(i)->name, kern_dec_available(kern_dec_variant(i)) ? "" : "(n/a)");
    printf("; default %s\n", kern_dec_default()->name);
    for (int i = 0; kern_dec_variant(i); i++)
        if (kern_dec_available(kern_dec_variant(i))) {
            check_variant(kern_dec_variant(i), r);
            check_attn(kern_dec_variant(i));
            check_step(kern_dec_variant(i));
        }
    check_q8_0();
    check_model();
    return test_done("test_decode");
}
