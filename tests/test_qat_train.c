/* test_qat_train.c -- the QAT optimiser pieces and training behaviour:
 * AdamW and the LR schedule against hand-computed values, gradient clipping,
 * the STE sign re-sync, gradient accumulation, bit-identical reruns, SVID
 * init, AdamW with BF16 moments, qat_memory_bytes against what qat_new
 * allocates (sharded moments too), ZeRO-1's sharded clip and AdamW giving
 * the unsharded step's bits, and a few dozen AdamW steps on stories260K
 * lowering the loss, also with a mixture of scales (--mos), whose written
 * .onebit then gives the QAT model's logits. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h> /* mallinfo2, mallopt */
#endif

#include "base/blas.h"
#include "base/common.h"
#include "blaswatch.h"
#include "model/model.h"
#include "onebit/student.h"
#include "train/qat.h"
#include <unistd.h>
#include "onebit/svid.h"
#include "test.h"
#include "format/tokenizer.h"

static uint64_t rng = 12345;
static double urand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void random_model(Model *m)
{
    ModelConfig cfg = {12, 20, 2, 3, 1, 4, 37, 16, 10000.0f, 1e-5f, 0};
    char err[OB_ERRLEN];
    if (model_alloc(m, &cfg, 1, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    for (size_t i = 0; i < m->arena_floats; i++) m->arena[i] = (float)(0.5 * urand());
    for (int i = 0; i < 2 * 12; i++) { m->rms_att[i] = 1.0f; m->rms_ffn[i] = 1.0f; }
    for (int i = 0; i < 12; i++) m->rms_final[i] = 1.0f;
}

static void check_schedule(void)
{
    CHECK_NEAR(qat_lr(0, 100, 10, 1e-3f, 1e-4f), 1e-4, 1e-9, "lr warmup step 0");
    CHECK_NEAR(qat_lr(4, 100, 10, 1e-3f, 1e-4f), 5e-4, 1e-9, "lr warmup step 4");
    CHECK_NEAR(qat_lr(10, 100, 10, 1e-3f, 1e-4f), 1e-3, 1e-9, "lr peak");
    CHECK_NEAR(qat_lr(55, 100, 10, 1e-3f, 1e-4f), 5.5e-4, 1e-9, "lr cosine midpoint");
    /* step 32: ratio 22/90, 0.5(1+cos(pi·0.2444)) = 0.8596699 */
    CHECK_NEAR(qat_lr(32, 100, 10, 1e-3f, 1e-4f), 1e-4 + 0.8596699 * 9e-4, 1e-8, "lr cosine step 32");
    CHECK_NEAR(qat_lr(100, 100, 10, 1e-3f, 1e-4f), 1e-4, 1e-9, "lr end");
    CHECK_NEAR(qat_lr(500, 100, 10, 1e-3f, 1e-4f), 1e-4, 1e-9, "lr after end");
    CHECK_NEAR(qat_lr(0, 100, 0, 1e-3f, 0), 1e-3, 1e-9, "no warmup");
    CHECK_NEAR(qat_lr(5, 5, 5, 1e-3f, 0), 0, 1e-9, "total = warmup");
}

/* BF16 moments: the same two steps as check_adamw_clip; FP32 arithmetic,
 * the moments rounded to nearest even on store; the step uses the
 * unrounded moments */
static void check_adamw_bf16(const Model *m)
{
    char err[OB_ERRLEN];
    QatModel *q = qat_new(m, SVID_SVD, &(QatSize){2, 7, QAT_OPTIM_BF16, 0, 0, 0, 0, 0, 0}, err);
    CHECK(q != NULL, "qat_new bf16: %s", err);
    if (!q) return;
    size_t eb;
    const uint16_t *mb = qat_moments(q, 0, &eb), *vb = qat_moments(q, 1, NULL);
    CHECK(qat_optim(q) == QAT_OPTIM_BF16 && eb == 2, "bf16 moments: %zu bytes each", eb);
    float *P = qat_params(q), *G = qat_grads(q);
    qat_zero_grads(q);
    P[0] = 0.5f;
    G[0] = 0.2f;
    AdamWCfg c = {0.1f, 0.9f, 0.98f, 1e-8f, 0.01f};
    qat_adamw_step(q, 1, &c);
    CHECK_NEAR(P[0], 0.399500005, 1e-6, "bf16 adamw step 1 (as fp32: the step uses the unrounded moments)");
    float m1 = (1.0f - 0.9f) * 0.2f, v1 = (1.0f - 0.98f) * 0.2f * 0.2f;
    CHECK(mb[0] == ob_fp32_to_bf16(m1) && vb[0] == ob_fp32_to_bf16(v1), "m, v stored as bf16 of %g, %g: %#x %#x", m1, v1,
          mb[0], vb[0]);
    CHECK(qat_moment(q, 0, 0) == ob_bf16_to_fp32(mb[0]), "qat_moment reads bf16");
    CHECK_NEAR(qat_moment(q, 0, 0), 0.02, 0.02 / 128, "m after step 1 within bf16 rounding");
    G[0] = -0.1f;
    float p1 = P[0];
    qat_adamw_step(q, 2, &c);
    /* step 2 by hand from the rounded moments */
    float m2 = 0.9f * ob_bf16_to_fp32(ob_fp32_to_bf16(m1)) + (1.0f - 0.9f) * -0.1f;
    float v2 = 0.98f * ob_bf16_to_fp32(ob_fp32_to_bf16(v1)) + (1.0f - 0.98f) * -0.1f * -0.1f;
    float mh = m2 * (float)(1.0 / (1.0 - 0.81)), vh = v2 * (float)(1.0 / (1.0 - 0.98 * 0.98));
    float want = p1 - 0.1f * (mh / (sqrtf(vh) + 1e-8f) + 0.01f * p1);
    CHECK_NEAR(P[0], want, 1e-6, "bf16 adamw step 2 from the rounded moments");
    CHECK_NEAR(P[0], 0.372389735, 2e-3, "bf16 adamw step 2 near the fp32 one");
    CHECK(mb[0] == ob_fp32_to_bf16(m2) && vb[0] == ob_fp32_to_bf16(v2), "step 2 moments rounded on store");
    /* half the moment bytes of an fp32 model of the same shape */
    QatModel *q32 = qat_new(m, SVID_SVD, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    size_t n = qat_num_params(q);
    CHECK(qat_allocated_bytes(q32) - qat_allocated_bytes(q) >= 4.0 * n && qat_allocated_bytes(q32) - qat_allocated_bytes(q) <= 4.0 * n + 128,
          "bf16 saves 4 bytes per parameter: %.0f vs %.0f (%zu params)", qat_allocated_bytes(q), qat_allocated_bytes(q32), n);
    qat_free(q32);
    qat_free(q);
}

static void check_adamw_clip(void)
{
    Model m;
    random_model(&m);
    char err[OB_ERRLEN];
    QatModel *q = qat_new(&m, SVID_SVD, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    CHECK(q != NULL, "qat_new: %s", err);
    size_t n = qat_num_params(q);
    float *P = qat_params(q), *G = qat_grads(q);
    /* parameter 0: p = 0.5, grads 0.2 then -0.1; parameter 1: p = -0.004
     * with grad -1: the step flips its sign (and S) */
    qat_zero_grads(q);
    P[0] = 0.5f; P[1] = -0.004f;
    G[0] = 0.2f; G[1] = -1.0f;
    AdamWCfg c = {0.1f, 0.9f, 0.98f, 1e-8f, 0.01f};
    qat_adamw_step(q, 1, &c);
    CHECK_NEAR(P[0], 0.399500005, 1e-6, "adamw step 1");
    CHECK_NEAR(qat_moment(q, 0, 0), 0.02, 1e-8, "m after step 1");
    CHECK_NEAR(qat_moment(q, 1, 0), 0.0008, 1e-9, "v after step 1");
    CHECK_NEAR(P[1], -0.004 - 0.1 * (-1.0 + 0.01 * -0.004), 1e-6, "adamw step 1, param 1");
    G[0] = -0.1f;
    qat_adamw_step(q, 2, &c);
    CHECK_NEAR(P[0], 0.372389735, 1e-6, "adamw step 2");
    CHECK_NEAR(qat_moment(q, 0, 0), 0.008, 1e-8, "m after step 2");
    CHECK_NEAR(qat_moment(q, 1, 0), 0.000984, 1e-9, "v after step 2");
    /* the student's forward must see the new sign of parameter 1: compare
     * with a student whose W[1] was set to the same value and synced */
    QatModel *q2 = qat_new(&m, SVID_SVD, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    memcpy(qat_params(q2), P, n * 4);
    int tok[14];
    for (int i = 0; i < 14; i++) tok[i] = (i * 7 + 3) % 37;
    long np;
    double a = qat_eval_nll_sum(q, tok, 2, 7, &np), b = qat_eval_nll_sum(q2, tok, 2, 7, &np);
    CHECK(a == b, "adamw re-syncs the signs: %.9g vs %.9g", a, b);
    /* clip */
    qat_zero_grads(q);
    G[3] = 3.0f; G[n - 1] = 4.0f;
    CHECK_NEAR(qat_clip_grads(q, 0), 5.0, 1e-6, "norm, no clip");
    CHECK(G[3] == 3.0f && G[n - 1] == 4.0f, "max_norm 0 leaves grads");
    CHECK_NEAR(qat_clip_grads(q, 10), 5.0, 1e-6, "norm under max");
    CHECK(G[3] == 3.0f, "under max leaves grads");
    CHECK_NEAR(qat_clip_grads(q, 1), 5.0, 1e-6, "pre-clip norm");
    CHECK_NEAR(G[3], 0.6, 1e-6, "clipped 3");
    CHECK_NEAR(G[n - 1], 0.8, 1e-6, "clipped 4");
    CHECK_NEAR(qat_clip_grads(q, 0), 1.0, 1e-6, "norm after clip");
    qat_free(q);
    qat_free(q2);
    check_adamw_bf16(&m);
    model_free(&m);
}

/* two micro-batches of B=1 with grad_scale 1/2 == one batch of B=2 */
static void check_accumulation(void)
{
    Model m;
    random_model(&m);
    char err[OB_ERRLEN];
    QatModel *q = qat_new(&m, SVID_NMF, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    size_t n = qat_num_params(q);
    int tok[14];
    for (int i = 0; i < 14; i++) tok[i] = (int)((urand() + 1) * 18.5) % 37;
    QatLossCfg lc = {1.0f, 0.01f};
    QatLoss L, L1, L2;
    qat_zero_grads(q);
    CHECK(qat_forward_backward(q, tok, 2, 7, &lc, 1.0f, &L) == 0, "fb");
    float *G = malloc(n * 4);
    memcpy(G, qat_grads(q), n * 4);
    qat_zero_grads(q);
    qat_forward_backward(q, tok, 1, 7, &lc, 0.5f, &L1);
    qat_forward_backward(q, tok + 7, 1, 7, &lc, 0.5f, &L2);
    double gmax = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(G[i]) > gmax) gmax = fabs(G[i]);
        if (fabs(G[i] - qat_grads(q)[i]) > d) d = fabs(G[i] - qat_grads(q)[i]);
    }
    CHECK(d <= 1e-4 * gmax, "accumulated grads differ by %g (max %g)", d, gmax);
    CHECK_NEAR(0.5 * (L1.loss + L2.loss), L.loss, 1e-5 * L.loss, "loss of the halves");
    CHECK_NEAR(0.5 * (L1.kl + L2.kl), L.kl, 1e-5 * L.kl, "kl of the halves");
    CHECK(L.tokens == 14 && L1.tokens == 7, "token counts");
    CHECK_NEAR(L.loss, lc.kl_scale * L.kl + lc.alpha * L.mse, 1e-9, "loss = kl_scale·kl + alpha·mse");
    /* SVID init: h ⊙ g ≈ |W| on average; latent W = ±0.01 with W's sign */
    float *W, *g, *h;
    int in, out;
    qat_linear_params(q, 1, LIN_GATE, &W, &g, &h, &in, &out);
    const float *Wt = m.lin[1 * LIN_PER_LAYER + LIN_GATE].w;
    double err_svid = 0, err_mean = 0, mean = 0;
    int signs = 1;
    for (int i = 0; i < in * out; i++) mean += fabs(Wt[i]) / (in * out);
    for (int r = 0; r < out; r++) for (int c = 0; c < in; c++) {
        double t = fabs(Wt[r * in + c]);
        err_svid += (t - h[r] * g[c]) * (t - h[r] * g[c]);
        err_mean += (t - mean) * (t - mean);
        signs &= W[r * in + c] == (Wt[r * in + c] >= 0 ? 0.01f : -0.01f);
    }
    CHECK(signs, "latent W = 0.01·sign(W)");
    float *a = malloc(out * 4), *bb = malloc(in * 4);
    CHECK(svid_rank1(Wt, out, in, SVID_NMF, a, bb, NULL, err) == 0, "svid");
    CHECK(!memcmp(a, h, out * 4) && !memcmp(bb, g, in * 4), "h = a, g = b of svid_rank1(NMF)");
    free(a); free(bb);
    CHECK(err_svid < err_mean, "rank-1 |W| fit %g beats the mean %g", err_svid, err_mean);
    free(G);
    qat_free(q);
    model_free(&m);
}

/* steps of training of q on the batch tok (B,T); the losses into loss */
static void train_steps(QatModel *q, const int *tok, int B, int T, int steps, double *loss)
{
    QatLossCfg lc = {1.0f, 0.01f};
    for (int s = 0; s < steps; s++) {
        QatLoss L;
        qat_zero_grads(q);
        qat_forward_backward(q, tok, B, T, &lc, 1.0f, &L);
        loss[s] = L.loss;
        qat_clip_grads(q, 1.0f);
        AdamWCfg c = {qat_lr(s, steps, 4, 4e-3f, 4e-4f), 0.9f, 0.98f, 1e-8f, 0.01f};
        qat_adamw_step(q, s + 1, &c);
    }
}

/* run steps of training; returns the losses */
static void train_nt(const Model *m, const int *tok, int B, int T, int steps, double *loss, float *final_params,
                     size_t *np_out, int nt)
{
    char err[OB_ERRLEN];
    QatModel *q = qat_new(m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    if (!q) { fprintf(stderr, "%s\n", err); exit(1); }
    if (qat_set_threads(q, nt, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    CHECK(qat_threads(q) == nt, "qat_threads %d", qat_threads(q));
    size_t n = qat_num_params(q);
    train_steps(q, tok, B, T, steps, loss);
    if (final_params) memcpy(final_params, qat_params(q), n * 4);
    if (np_out) *np_out = n;
    qat_free(q);
}

static void train(const Model *m, const int *tok, int B, int T, int steps, double *loss, float *final_params,
                  size_t *np_out)
{
    train_nt(m, tok, B, T, steps, loss, final_params, np_out, 1);
}

static void check_determinism(void)
{
    Model m;
    random_model(&m);
    int tok[14];
    for (int i = 0; i < 14; i++) tok[i] = (i * 5 + 1) % 37;
    double l1[4], l2[4];
    float *p1 = malloc(4 << 20), *p2 = malloc(4 << 20);
    size_t n;
    train(&m, tok, 2, 7, 4, l1, p1, &n);
    train(&m, tok, 2, 7, 4, l2, p2, &n);
    CHECK(!memcmp(l1, l2, sizeof l1), "losses bit-identical");
    CHECK(!memcmp(p1, p2, n * 4), "params bit-identical");
    free(p1); free(p2);
    model_free(&m);
}

/* a model big enough for the parallel loops: the same result on 1 and 2
 * threads (every loop is split so that no sum depends on the split),
 * bit-identical reruns on 2 threads */
static void check_threads(void)
{
    Model m;
    ModelConfig cfg = {128, 256, 2, 4, 2, 32, 300, 64, 10000.0f, 1e-5f, 0};
    char err[OB_ERRLEN];
    if (model_alloc(&m, &cfg, 1, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    for (size_t i = 0; i < m.arena_floats; i++) m.arena[i] = (float)(0.2 * urand());
    for (int i = 0; i < 2 * 128; i++) { m.rms_att[i] = 1.0f; m.rms_ffn[i] = 1.0f; }
    for (int i = 0; i < 128; i++) m.rms_final[i] = 1.0f;
    int tok[4 * 32];
    for (int i = 0; i < 4 * 32; i++) tok[i] = (int)((urand() + 1) * 150) % 300;
    double l1[3], l2[3], l3[3];
    size_t n;
    float *p1 = malloc(16 << 20), *p2 = malloc(16 << 20), *p3 = malloc(16 << 20);
    /* qat's own threads; OpenBLAS at 1 as `train` sets it, and training
     * never changes OpenBLAS's count (base/blas.h: others may be in cblas) */
    int nt0 = blas_threads();
    CHECK(blas_set_threads(1, err) == 0, "%s", err);
    train_nt(&m, tok, 4, 32, 3, l1, p1, &n, 1);
    BlasWatch bw;
    CHECK(blaswatch_start(&bw) == 0, "watch thread");
    train_nt(&m, tok, 4, 32, 3, l2, p2, &n, 2);
    int changed = blaswatch_stop(&bw);
    CHECK(changed == 0, "training changed OpenBLAS's thread count (seen %d times in %d polls)", changed, atomic_load(&bw.polls));
    train_nt(&m, tok, 4, 32, 3, l3, p3, &n, 2);
    /* the workbench's case: OpenBLAS keeps 2 threads, qat splits too */
    double l4[3];
    float *p4 = malloc(16 << 20);
    CHECK(blas_set_threads(2, err) == 0, "%s", err);
    train_nt(&m, tok, 4, 32, 3, l4, p4, &n, 2);
    CHECK(blas_set_threads(nt0, err) == 0, "%s", err);
    double d4 = 0;
    for (size_t i = 0; i < n; i++) d4 = fmax(d4, fabs(p1[i] - p4[i]));
    CHECK_NEAR(l1[2], l4[2], 1e-5 * fabs(l1[2]), "1 thread vs 2 + OpenBLAS 2: loss");
    CHECK(d4 < 1e-4, "1 thread vs 2 + OpenBLAS 2: max |dparam| %g", d4);
    free(p4);
    CHECK(!memcmp(l2, l3, sizeof l2) && !memcmp(p2, p3, n * 4), "2 threads: bit-identical reruns");
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(p1[i] - p2[i]));
    printf("1 vs 2 threads: losses %.9g %.9g, max |dparam| %g\n", l1[2], l2[2], d);
    CHECK_NEAR(l1[2], l2[2], 1e-5 * fabs(l1[2]), "1 vs 2 threads: loss");
    CHECK(d < 1e-4, "1 vs 2 threads: params %g", d);
    free(p1); free(p2); free(p3);
    model_free(&m);
}

/* qat_memory_bytes is what qat_new allocates: equal to the model's own
 * count for several shapes, both moment precisions, with and without
 * recomputation, and (glibc) to the
 * heap's growth over qat_new within the allocator's per-block overhead;
 * the parameter state is 16 or 12 bytes per trainable parameter */
static void check_memory(void)
{
    static const int shapes[][7] = {{12, 20, 2, 3, 1, 37, 16}, {64, 176, 2, 4, 2, 96, 32}, {48, 64, 3, 6, 6, 50, 24}};
    static const int bt[][2] = {{2, 7}, {1, 16}, {3, 5}};
    char err[OB_ERRLEN];
    int exact = 1, checked = 0;
    for (int si = 0; si < 3; si++) {
        const int *v = shapes[si];
        ModelConfig cfg = {v[0], v[1], v[2], v[3], v[4], v[0] / v[3], v[5], v[6], 10000.0f, 1e-5f, 0};
        Model m;
        if (model_alloc(&m, &cfg, 1, err)) { CHECK(0, "model_alloc: %s", err); return; }
        for (size_t i = 0; i < m.arena_floats; i++) m.arena[i] = (float)(0.5 * urand());
        for (int mos = 0; mos <= 3; mos += 3) /* and a mixture of 3 scale experts */
        for (int o = 0; o < 6; o++) /* bit 0: bf16; bit 1: recompute; 4, 5: shard 1 of 2 */
            for (int k = 0; k < 3; k++) {
                QatSize sz = {bt[k][0], bt[k][1], o & 1 ? QAT_OPTIM_BF16 : QAT_OPTIM_FP32, (o >> 1) & 1, o & 4 ? 2 : 0, o >> 2, 0, mos, 7};
                double want = qat_memory_bytes(&cfg, &sz);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
                struct mallinfo2 a0 = mallinfo2();
#endif
                QatModel *q = qat_new(&m, SVID_SVD, &sz, err);
                if (!q) { CHECK(0, "qat_new: %s", err); continue; }
                if (qat_allocated_bytes(q) != want) {
                    exact = 0;
                    printf("shape %d, %dx%d, variant %d: allocated %.0f, qat_memory_bytes %.0f\n", si, sz.max_B, sz.max_T, o,
                           qat_allocated_bytes(q), want);
                }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
                struct mallinfo2 a1 = mallinfo2();
                double grown = (double)(a1.uordblks + a1.hblkhd) - (double)(a0.uordblks + a0.hblkhd);
                if (grown > 0) { /* 0 under a sanitizer's allocator */
                    checked++;
                    /* at most ~200 buffers, each with a header and up to 64 bytes of alignment */
                    CHECK(grown >= want && grown <= want + 200 * 128,
                          "shape %d %dx%d variant %d: the heap grew by %.0f bytes for %.0f counted", si, sz.max_B, sz.max_T, o,
                          grown, want);
                }
#endif
                size_t np = qat_num_params(q);
                CHECK(np == qat_config_params_mos(&cfg, mos), "qat_config_params %zu vs %zu", qat_config_params_mos(&cfg, mos), np);
                size_t want_np = 0; /* per linear W, g, h; with MoS E·in g experts, E·out h experts, E·in router */
                for (int j = 0; j < LIN_PER_LAYER; j++) {
                    int out, in;
                    model_lin_shape(&cfg, j, &out, &in);
                    want_np += (size_t)cfg.n_layers * ((size_t)out * in + (size_t)(mos ? mos : 1) * (in + out) + (size_t)mos * in);
                }
                CHECK(np == want_np, "--mos %d: %zu parameters, expected %zu", mos, np, want_np);
                size_t lo, hi;
                qat_shard(q, &lo, &hi);
                CHECK(o & 4 ? lo <= hi && hi == np : lo == 0 && hi == np, "variant %d: slice %zu..%zu of %zu", o, lo, hi, np);
                if (!(o & 4))
                    CHECK(qat_param_state_bytes_mos(&cfg, sz.optim, 0, mos) == (o & 1 ? 12.0 : 16.0) * np, "%d bytes per parameter",
                          o & 1 ? 12 : 16);
                qat_free(q);
            }
        model_free(&m);
    }
    CHECK(exact, "qat_memory_bytes == qat_allocated_bytes for 3 shapes x 3 batches x 2 precisions x recompute or not x sharded or not x --mos 0 or 3");
    printf("memory: heap growth checked for %d models\n", checked);
}

/* ZeRO-1 without MPI: S sharded models (one slice each, one of them
 * empty) doing what trainer_zero_step does on S ranks (their blocks' parts
 * of the norm into one array, the clip, AdamW on the slice, the slices
 * copied to every model) give the unsharded model's parameters and
 * moments bit for bit, FP32 and BF16; sharded moments need less memory */
static void check_zero(void)
{
    enum { S = 3 };
    ModelConfig cfg = {64, 176, 2, 4, 2, 16, 96, 32, 10000.0f, 1e-5f, 0};
    Model m;
    char err[OB_ERRLEN];
    if (model_alloc(&m, &cfg, 1, err)) { CHECK(0, "model_alloc: %s", err); return; }
    for (size_t i = 0; i < m.arena_floats; i++) m.arena[i] = (float)(0.5 * urand());
    for (int o = 0; o < 2; o++) {
        QatOptim opt = o ? QAT_OPTIM_BF16 : QAT_OPTIM_FP32;
        QatModel *q0 = qat_new(&m, SVID_SVD, &(QatSize){1, 4, opt, 0, 0, 0, 0, 0, 0}, err), *q[S];
        CHECK(q0 != NULL, "qat_new: %s", err);
        if (!q0) break;
        size_t n = qat_num_params(q0), off[S + 1], nb = qat_grad_blocks(q0);
        CHECK(nb >= 2, "a model of %zu parameters has %zu clip blocks", n, nb);
        qat_shard_offsets(n, S, off);
        CHECK(off[0] == 0 && off[S] == n && off[S - 1] == n && off[1] % QAT_CLIP_BLOCK == 0 && off[1] > 0,
              "slices %zu %zu %zu %zu", off[0], off[1], off[2], off[3]);
        for (int r = 0; r < S; r++) {
            q[r] = qat_new(&m, SVID_SVD, &(QatSize){1, 4, opt, 0, S, r, 0, 0, 0}, err);
            size_t lo, hi;
            qat_shard(q[r], &lo, &hi);
            CHECK(lo == off[r] && hi == off[r + 1], "shard %d: %zu..%zu", r, lo, hi);
        }
        AdamWCfg c = {1e-2f, 0.9f, 0.98f, 1e-8f, 0.01f};
        float *g = ob_malloc(n * sizeof(float));
        for (long t = 1; t <= 3; t++) {
            for (size_t i = 0; i < n; i++) g[i] = (float)(0.01 * urand());
            memcpy(qat_grads(q0), g, n * sizeof(float));
            float n0 = qat_clip_grads(q0, 0.5f);
            qat_adamw_step(q0, t, &c);
            double *part = ob_calloc(nb, sizeof(double));
            for (int r = 0; r < S; r++) {
                memcpy(qat_grads(q[r]), g, n * sizeof(float));
                qat_grad_sq_blocks(q[r], part);
            }
            for (int r = 0; r < S; r++) {
                float nr = qat_clip_parts(q[r], part, 0.5f);
                CHECK(nr == n0 && n0 > 0.5f, "step %ld shard %d: norm %.9g, unsharded %.9g", t, r, nr, n0);
                qat_adamw_step(q[r], t, &c);
            }
            free(part);
            for (int r = 0; r < S; r++) /* the all-gather */
                for (int k = 0; k < S; k++)
                    if (k != r) memcpy(qat_params(q[k]) + off[r], qat_params(q[r]) + off[r], (off[r + 1] - off[r]) * sizeof(float));
        }
        size_t eb;
        qat_moments(q0, 0, &eb);
        for (int r = 0; r < S; r++) {
            CHECK(memcmp(qat_params(q[r]), qat_params(q0), n * sizeof(float)) == 0, "%s: shard %d's parameters are the unsharded ones",
                  o ? "bf16" : "fp32", r);
            for (int w = 0; w < 2; w++)
                CHECK(memcmp(qat_moments(q[r], w, NULL), (char *)qat_moments(q0, w, NULL) + off[r] * eb, (off[r + 1] - off[r]) * eb) == 0,
                      "%s: shard %d's moment %d is its slice of the unsharded one", o ? "bf16" : "fp32", r, w);
            qat_free(q[r]);
        }
        CHECK(qat_param_state_bytes(&cfg, opt, S) < qat_param_state_bytes(&cfg, opt, 1),
              "sharded moments need less: %.0f vs %.0f", qat_param_state_bytes(&cfg, opt, S), qat_param_state_bytes(&cfg, opt, 1));
        free(g);
        qat_free(q0);
    }
    CHECK(qat_new(&m, SVID_SVD, &(QatSize){1, 4, QAT_OPTIM_FP32, 0, 2, 2, 0, 0, 0}, err) == NULL && strstr(err, "shard"), "shard 2 of 2: %s", err);
    model_free(&m);
}

/* max |a − b| over n, relative to max |b| */
static double max_rel(const float *a, const float *b, size_t n)
{
    double md = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs(b[i]));
    }
    return md / (mx > 0 ? mx : 1);
}

/* --mos 4 on stories260K: the loss falls; the student written to a
 * .onebit (FP32 head), loaded and run through model_forward gives the QAT
 * model's logits (qat_eval_nll_sum) within FP16 storage of the router and
 * experts, and within 1e-4 once the QAT model's router and experts are
 * themselves rounded to FP16 */
static void check_mos_export(const Model *m, const int *tok, int B, int T)
{
    enum { STEPS = 20, E = 4 };
    char err[OB_ERRLEN], path[] = "/tmp/onebit-mos-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { CHECK(0, "mkstemp"); return; }
    close(fd);
    QatModel *q = qat_new(m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, E, 3}, err);
    if (!q) { CHECK(0, "qat_new --mos: %s", err); return; }
    double loss[STEPS];
    train_steps(q, tok, B, T, STEPS, loss);
    printf("stories260K --mos %d: loss %.4f -> %.4f over %d AdamW steps\n", E, loss[0], loss[STEPS - 1], STEPS);
    CHECK(loss[STEPS - 1] < 0.8 * loss[0], "--mos: the loss falls by >20%%: %g -> %g", loss[0], loss[STEPS - 1]);
    int V = m->cfg.vocab_size, nl = m->cfg.n_layers * LIN_PER_LAYER;
    float *lg = malloc((size_t)T * V * 4);
    for (int round = 0; round < 2; round++) {
        if (round) /* the router and the experts as the file stores them */
            for (int i = 0; i < nl; i++) {
                float *Gin, *Hout, *G;
                int in, out;
                qat_linear_params(q, i / LIN_PER_LAYER, i % LIN_PER_LAYER, NULL, NULL, NULL, &in, &out);
                qat_linear_mos(q, i / LIN_PER_LAYER, i % LIN_PER_LAYER, &Gin, &Hout, &G);
                for (size_t k = 0; k < (size_t)E * in; k++) {
                    Gin[k] = ob_fp16_to_fp32(ob_fp32_to_fp16(Gin[k]));
                    G[k] = ob_fp16_to_fp32(ob_fp32_to_fp16(G[k]));
                }
                for (size_t k = 0; k < (size_t)E * out; k++) Hout[k] = ob_fp16_to_fp32(ob_fp32_to_fp16(Hout[k]));
            }
        QatLinearSrc *qs = calloc((size_t)nl, sizeof *qs);
        StudentLinearSrc *ss = calloc((size_t)nl, sizeof *ss);
        qat_linear_srcs(q, qs);
        for (int i = 0; i < nl; i++)
            ss[i] = (StudentLinearSrc){.w = qs[i].w, .g = qs[i].g, .h = qs[i].h, .norm = qs[i].norm, .mos = qs[i].mos,
                                       .router = qs[i].router, .g_experts = qs[i].g_experts, .h_experts = qs[i].h_experts};
        CHECK(student_write_ex(path, m, NULL, ss, NULL, STUDENT_HEAD_F32, err) == 0, "write the MoS student: %s", err);
        free(qs);
        free(ss);
        Model s;
        if (student_load(&s, NULL, path, err)) { CHECK(0, "load the MoS student: %s", err); break; }
        qat_eval_nll_sum(q, tok, B, T, NULL);
        const float *lq = qat_logits(q);
        ModelActs a;
        model_acts_init(&a, &s.cfg, T);
        double worst = 0;
        for (int b = 0; b < B; b++) {
            model_forward(&s, &a, tok + b * T, T, lg, NULL);
            worst = fmax(worst, max_rel(lg, lq + (size_t)b * T * V, (size_t)T * V));
        }
        model_acts_free(&a);
        model_free(&s);
        printf("stories260K --mos %d student (.onebit) vs the QAT forward: max |dlogit| / max |logit| %.3g (%s)\n", E, worst,
               round ? "router and experts rounded to FP16 in both" : "FP32 in training, FP16 in the file");
        /* FP16 storage: 4.4e-5 measured here; a bound with margin */
        CHECK(worst < (round ? 1e-4 : 1e-3), "--mos student vs QAT logits (%s): %g", round ? "FP16 both" : "as trained", worst);
    }
    free(lg);
    unlink(path);
    qat_free(q);
}

int main(void)
{
    /* every buffer on the heap proper, so that mallinfo2 sees it whole */
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
#endif
    check_memory();
    check_zero();
    check_schedule();
    check_adamw_clip();
    check_accumulation();
    check_determinism();
    check_threads();

    REQUIRE_SHARED(bin, "models/stories260K.bin");
    REQUIRE_SHARED(tokp, "models/tok512.bin");
    REQUIRE_SHARED(text, "data/tinystories_train_head_sample.txt");
    char err[OB_ERRLEN];
    Model m;
    Tokenizer tk;
    if (model_load(&m, bin, err) || tok_load(&tk, tokp, 512, err)) { fprintf(stderr, "%s\n", err); return 1; }
    char *data;
    size_t len;
    if (ob_read_file(text, &data, &len, err)) { fprintf(stderr, "%s\n", err); return 1; }
    if (len > 20000) data[20000] = 0;
    int *ids;
    size_t nid;
    tok_encode(&tk, data, 1, 0, &ids, &nid);
    enum { B = 4, T = 64, STEPS = 40 };
    CHECK(nid >= B * T, "enough tokens: %zu", nid);
    int tok[B * T];
    for (int b = 0; b < B; b++) memcpy(tok + b * T, ids + b * 3 * T, T * sizeof(int)); /* fixed windows */
    double loss[STEPS];
    train(&m, tok, B, T, STEPS, loss, NULL, NULL);
    double first = loss[0], last = 0.25 * (loss[STEPS - 1] + loss[STEPS - 2] + loss[STEPS - 3] + loss[STEPS - 4]);
    printf("stories260K: loss %.4f -> %.4f over %d AdamW steps (B=%d T=%d)\n", first, last, STEPS, B, T);
    CHECK(last < 0.8 * first, "loss fell by >20%%: %g -> %g", first, last);
    for (int s = 0; s < STEPS; s++) CHECK(isfinite(loss[s]), "finite loss at step %d", s);
    check_mos_export(&m, tok, B, T);
    free(ids);
    free(data);
    tok_free(&tk);
    model_free(&m);
    return test_done("test_qat_train");
}
