/* tests/test_bitlinear.c -- the packed 1-bit layer: canonical packing round
 * trips, every kernel variant the CPU has (ref, avx2, avx512, ...) against
 * the scalar reference bitlinear_forward_ref on odd shapes, N = 1..9 and 16,
 * norm on and off, 1/2/3 threads (bitwise identical across thread counts),
 * the whole layer against a dense FP32 evaluation through cblas_sgemm, and
 * the execution context a layer holds (changing defaults or another layer's
 * context does not change what it computes, also while it runs), a
 * mixture of scales token by token against the layer with its g(x), h(x),
 * and avx512amx's kernel with its tile instructions emulated (x86/amx.c)
 * bit-identical to the int8 reference (and its guard's check).
 *
 * Tolerance: for output row r the pre-norm value is h_r * sum_c s_rc gx_c; we
 * allow |diff| <= 1e-5 * B_r with B_r = |h_r| * sum_c |gx_c|. Reordering an
 * FP32 sum of `in` terms moves it by about eps32 * sqrt(in) * B_r (<= 4e-6 B_r
 * for in <= 4097), while a single wrong sign moves it by 2 |h_r gx_c|, on
 * average 2 B_r / in >= 4.9e-4 B_r here: 50x the tolerance. After the
 * LayerNorm the same bound is divided by the pre-norm standard deviation.
 */
#include <cblas.h>
#include <math.h>
#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "onebit/bitlinear.h"
#include "base/common.h"
#include "base/cpu.h"
#include "base/pool.h"
#include "kernels/kernels.h"
#include "kernels/variants.h" /* the variants' own functions, to test them one by one */
#include "model/linear.h"
#include "model/model.h"
#include "test.h"

/* pools of 1, 2 and 3 threads, made once */
static Pool *pools[4];
static Pool *pool_of(int t)
{
    char err[OB_ERRLEN];
    if (!pools[t]) pools[t] = pool_new(t, err);
    if (!pools[t]) { fprintf(stderr, "pool_new(%d): %s\n", t, err); exit(1); }
    return pools[t];
}

/* run bl with kernel k at precision act on a pool of t threads */
static void use(BitLinear *bl, const BitKernel *k, int act, int t)
{
    char err[OB_ERRLEN];
    KernExec ex;
    kern_exec_init(&ex, k, act, pool_of(t));
    CHECK(bitlinear_set_exec(bl, &ex, err) == 0, "set_exec: %s", err);
    kern_exec_fini(&ex);
}

static int avail(int id) { return kern_available(kern_variant(id)); }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1e6f - 1.0f; } /* [-1, 1] */

/* the last two have several panels of KERN_PANEL blocks (the last one
 * short), so the kernels' panel segments and bitlinear_forward's per-thread
 * panel ranges with stealing are exercised at 2 and 3 threads */
static const int widths[] = {1, 3, 31, 63, 64, 65, 127, 129, 200, 1000, 4097, 200, 130, 900};
static const int outs[] = {1, 7, 16, 17, 33, 100, 129, 31, 300, 97, 161, 2100, 4500, 47};
#define NW (int)(sizeof widths / sizeof widths[0])

static BitLinear *random_layer(int out, int in, float *W)
{
    BitLinear *bl = bitlinear_new(out, in);
    for (size_t i = 0; i < (size_t)out * in; i++) W[i] = (rnd() % 7 == 0) ? 0.0f : frand(); /* exact zeros are +1 */
    bitlinear_pack(bl, W);
    float *g = ob_malloc(in * sizeof(float)), *h = ob_malloc(out * sizeof(float));
    for (int i = 0; i < in; i++) g[i] = 0.5f + frand();
    for (int i = 0; i < out; i++) h[i] = 0.1f + 0.05f * frand();
    bitlinear_set_scales(bl, g, h);
    free(g);
    free(h);
    return bl;
}

static void test_packing(void)
{
    for (int wi = 0; wi < NW; wi++) {
        int in = widths[wi], out = outs[wi];
        float *W = ob_malloc((size_t)out * in * sizeof(float));
        BitLinear *bl = random_layer(out, in, W);
        int wpr = bl->words_per_row;
        CHECK(wpr == (in + 63) / 64, "words_per_row %d for in %d", wpr, in);
        uint64_t *b = ob_malloc((size_t)out * wpr * 8), *b2 = ob_malloc((size_t)out * wpr * 8);
        bitlinear_get_bits(bl, b);
        int bad = 0, badpad = 0;
        for (int r = 0; r < out; r++)
            for (int c = 0; c < wpr * 64; c++) {
                int bit = (b[(size_t)r * wpr + c / 64] >> (c % 64)) & 1;
                if (c >= in) badpad += bit;
                else {
                    int want = W[(size_t)r * in + c] >= 0;
                    bad += bit != want;
                    bad += bitlinear_sign(bl, r, c) != (want ? 1 : -1);
                }
            }
        CHECK(bad == 0, "in %d: %d bits differ from sign(W)", in, bad);
        CHECK(badpad == 0, "in %d: %d padding bits set", in, badpad);
        /* set_bits with junk in the padding: padding cleared, the rest kept */
        memcpy(b2, b, (size_t)out * wpr * 8);
        if (in & 63)
            for (int r = 0; r < out; r++) b2[(size_t)r * wpr + wpr - 1] |= ~0ull << (in & 63);
        BitLinear *bl2 = bitlinear_new(out, in);
        bitlinear_set_bits(bl2, b2);
        bitlinear_get_bits(bl2, b2);
        CHECK(!memcmp(b, b2, (size_t)out * wpr * 8), "in %d: set_bits/get_bits round trip", in);
        /* the kernel-private copy follows set_bits: same outputs as the original */
        bitlinear_set_scales(bl2, bl->g, bl->h);
        float *x = ob_malloc(in * sizeof(float)), *y1 = ob_malloc(out * sizeof(float)), *y2 = ob_malloc(out * sizeof(float));
        for (int i = 0; i < in; i++) x[i] = frand();
        bitlinear_forward(bl, x, y1, 1);
        bitlinear_forward(bl2, x, y2, 1);
        CHECK(!memcmp(y1, y2, out * sizeof(float)), "in %d: forward after set_bits", in);
        free(x); free(y1); free(y2);
        bitlinear_free(bl2);
        bitlinear_free(bl);
        free(W); free(b); free(b2);
    }
}

/* pre-norm bound B_r and the pre-norm standard deviation of token n */
static void bounds(const BitLinear *bl, const float *x, int N, float *B, float *sd)
{
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int c = 0; c < bl->in; c++) s += fabs((double)x[(size_t)n * bl->in + c] * bl->g[c]);
        for (int r = 0; r < bl->out; r++) B[(size_t)n * bl->out + r] = (float)(s * fabs(bl->h[r]));
    }
    BitLinear tmp = *bl;
    tmp.norm = 0;
    float *y = ob_malloc((size_t)N * bl->out * sizeof(float));
    bitlinear_forward_ref(&tmp, x, y, N);
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int r = 0; r < bl->out; r++) m += y[(size_t)n * bl->out + r];
        m /= bl->out;
        for (int r = 0; r < bl->out; r++) v += (y[(size_t)n * bl->out + r] - m) * (y[(size_t)n * bl->out + r] - m);
        sd[n] = (float)sqrt(v / bl->out + BITLINEAR_EPS);
    }
    free(y);
}

/* number of elements of y outside the tolerance against want */
static int compare(const BitLinear *bl, const float *y, const float *want, const float *B, const float *sd, int N, double *worst)
{
    int bad = 0;
    for (int n = 0; n < N; n++) {
        double maxB = 0;
        for (int r = 0; r < bl->out; r++) maxB = fmax(maxB, B[(size_t)n * bl->out + r]);
        for (int r = 0; r < bl->out; r++) {
            size_t i = (size_t)n * bl->out + r;
            double tol = bl->norm ? 3e-5 * maxB / sd[n] : 1e-5 * B[i];
            double d = fabs((double)y[i] - want[i]);
            if (tol > 0 && d / tol > *worst) *worst = d / tol;
            if (!(d <= tol + 1e-30)) bad++;
        }
    }
    return bad;
}

static void test_variants(void)
{
    char err[OB_ERRLEN];
    const BitKernel *const *all = kern_all();
    for (int i = 0; all[i]; i++)
        if (!kern_available(all[i])) printf("SKIP variant %s: not available on this CPU\n", all[i]->name);
        else printf("testing variant %s (%s)\n", all[i]->name, all[i]->desc);
    static const int Ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16};
    static const int threads[] = {1, 2, 3};
    double worst = 0;
    for (int wi = 0; wi < NW; wi++) {
        int in = widths[wi], out = outs[wi];
        float *W = ob_malloc((size_t)out * in * sizeof(float));
        BitLinear *bl = random_layer(out, in, W);
        for (int ni = 0; ni < (int)(sizeof Ns / sizeof Ns[0]); ni++) {
            int N = Ns[ni];
            size_t ny = (size_t)N * out;
            float *x = ob_malloc((size_t)N * in * sizeof(float));
            float *x2 = ob_malloc((size_t)N * in * sizeof(float));
            for (size_t i = 0; i < (size_t)N * in; i++) x[i] = frand();
            for (size_t i = 0; i < (size_t)N * in; i++) x2[i] = frand();
            float *want = ob_malloc(ny * 4), *y = ob_malloc(ny * 4), *y1 = ob_malloc(ny * 4);
            float *B = ob_malloc(ny * 4), *sd = ob_malloc(N * 4);
            bounds(bl, x, N, B, sd);
            for (int norm = 0; norm <= 1; norm++) {
                bl->norm = norm;
                bitlinear_forward_ref(bl, x, want, N);
                for (int k = 0; all[k]; k++) {
                    if (!kern_available(all[k])) continue;
                    for (int ti = 0; ti < 3; ti++) {
                        /* another input first, on one thread (every row),
                         * so that rows a call skipped would not keep this
                         * input's values in the kernels' scratch */
                        use(bl, all[k], KERN_ACT_FP32, 1);
                        CHECK(bl->km.layout == all[k]->layout, "%s: packed in layout %d", all[k]->name, bl->km.layout);
                        bitlinear_forward(bl, x2, y, N);
                        use(bl, all[k], KERN_ACT_FP32, threads[ti]);
                        for (size_t i = 0; i < ny; i++) y[i] = NAN;
                        bitlinear_forward(bl, x, y, N);
                        int bad = compare(bl, y, want, B, sd, N, &worst);
                        CHECK(bad == 0, "%s: out %d in %d N %d norm %d threads %d: %d of %zu outside tolerance", all[k]->name, out,
                              in, N, norm, threads[ti], bad, ny);
                        if (ti == 0) memcpy(y1, y, ny * 4);
                        else CHECK(!memcmp(y, y1, ny * 4), "%s: out %d in %d N %d: %d threads differ from 1 thread", all[k]->name,
                                   out, in, N, threads[ti]);
                        if (!strcmp(all[k]->name, "ref"))
                            CHECK(!memcmp(y, want, ny * 4), "ref variant: out %d in %d N %d not identical to bitlinear_forward_ref", out, in, N);
                    }
                }
            }
            free(x); free(x2); free(want); free(y); free(y1); free(B); free(sd);
        }
        bitlinear_free(bl);
        free(W);
    }
    printf("variants vs reference: worst error %.3f of the tolerance\n", worst);
    CHECK(bitlinear_set_kernel("no-such-kernel", err) == -1, "unknown kernel accepted");
    CHECK(strstr(err, "unknown") != NULL, "message: %s", err);
    CHECK(kern_lookup("no-such-kernel", err) == NULL && strstr(err, "unknown"), "kern_lookup: %s", err);
}

/* the layer against a dense FP32 evaluation: S (out, in) = ±1, through sgemm */
static void test_dense(void)
{
    double worst = 0;
    const BitKernel *const *all = kern_all();
    for (int wi = 0; wi < NW; wi++) {
        int in = widths[wi], out = outs[wi], N = 1 + wi % 9;
        float *W = ob_malloc((size_t)out * in * sizeof(float));
        BitLinear *bl = random_layer(out, in, W);
        float *S = ob_malloc((size_t)out * in * 4), *x = ob_malloc((size_t)N * in * 4), *gx = ob_malloc((size_t)N * in * 4);
        for (size_t i = 0; i < (size_t)out * in; i++) S[i] = W[i] >= 0 ? 1.0f : -1.0f;
        for (int i = 0; i < N * in; i++) { x[i] = frand(); gx[i] = x[i] * bl->g[i % in]; }
        float *dense = ob_malloc((size_t)N * out * 4), *y = ob_malloc((size_t)N * out * 4);
        float *B = ob_malloc((size_t)N * out * 4), *sd = ob_malloc(N * 4);
        bounds(bl, x, N, B, sd);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, gx, in, S, in, 0.0f, dense, out);
        for (int n = 0; n < N; n++) {
            for (int r = 0; r < out; r++) dense[(size_t)n * out + r] *= bl->h[r];
            bitlinear_layernorm(dense + (size_t)n * out, out);
        }
        for (int k = 0; all[k]; k++) {
            if (!kern_available(all[k])) continue;
            use(bl, all[k], KERN_ACT_FP32, 2);
            bitlinear_forward(bl, x, y, N);
            int bad = compare(bl, y, dense, B, sd, N, &worst);
            CHECK(bad == 0, "%s vs dense sgemm: out %d in %d N %d: %d outside tolerance", all[k]->name, out, in, N, bad);
        }
        free(W); free(S); free(x); free(gx); free(dense); free(y); free(B); free(sd);
        bitlinear_free(bl);
    }
    printf("vs dense sgemm: worst error %.3f of the tolerance\n", worst);
}

/* the execution context travels with the layer: after a layer is made,
 * changing the defaults (the kernel, the activation precision, the global
 * pool) and another layer's context leave what it computes unchanged, also
 * while a forward on it runs on another thread. (Before each layer held its
 * context, bitlinear_set_act switched every layer of the process, running
 * or not.) */
typedef struct {
    const BitLinear *bl;
    const float *x, *want;
    int N, n_out;
    atomic_int rounds;
    atomic_int stop, bad, done;
} IsoJob;

static void *iso_thread(void *arg)
{
    IsoJob *j = arg;
    float *y = ob_malloc((size_t)j->N * j->n_out * 4);
    while (!atomic_load(&j->stop) || j->rounds < 20) {
        bitlinear_forward(j->bl, j->x, y, j->N);
        if (memcmp(y, j->want, (size_t)j->N * j->n_out * 4)) atomic_fetch_add(&j->bad, 1);
        j->rounds++;
    }
    free(y);
    atomic_store(&j->done, 1);
    return NULL;
}

static void test_exec_isolated(void)
{
    char err[OB_ERRLEN];
    const int out = 1100, in = 700, N = 3;
    float *W = ob_malloc((size_t)out * in * sizeof(float)), *x = ob_malloc((size_t)N * in * 4);
    float *want = ob_malloc((size_t)N * out * 4), *y = ob_malloc((size_t)N * out * 4);
    for (int i = 0; i < N * in; i++) x[i] = frand();
    CHECK(bitlinear_set_act("fp32", err) == 0, "%s", err);
    BitLinear *a = random_layer(out, in, W), *b = random_layer(out, in, W);
    CHECK(a->ex.act == KERN_ACT_FP32 && a->ex.kernel == kern_default(), "a new layer takes the defaults");
    bitlinear_forward(a, x, want, N);
    /* the defaults change: a keeps its context */
    CHECK(bitlinear_set_act("int8", err) == 0 && bitlinear_default_act() == BITLINEAR_ACT_INT8, "%s", err);
    CHECK(bitlinear_set_kernel("ref", err) == 0, "%s", err);
    CHECK(bitlinear_set_threads(3, err) == 0, "%s", err);
    bitlinear_forward(a, x, y, N);
    CHECK(!memcmp(y, want, (size_t)N * out * 4), "changing the defaults changed a layer made before");
    BitLinear *c = random_layer(out, in, W);
    CHECK(c->ex.act == KERN_ACT_INT8 && c->ex.kernel == kern_variant(KERN_REF) && pool_threads(c->ex.pool) == 3,
          "a layer made after takes the new defaults (act %d kernel %s threads %d)", c->ex.act, c->ex.kernel->name,
          pool_threads(c->ex.pool));
    bitlinear_free(c);
    /* while a forward on a runs on another thread: switch b's precision and
     * kernel back and forth, and the defaults, and replace the global pool */
    IsoJob j = {a, x, want, N, out, 0, 0, 0, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, iso_thread, &j) == 0, "thread");
    const BitKernel *const *all = kern_all();
    const BitKernel *usable[KERN_NVARIANTS];
    int nu = 0;
    for (int i = 0; all[i]; i++)
        if (kern_available(all[i])) usable[nu++] = all[i];
    for (int r = 0; r < 40; r++) {
        const BitKernel *k = usable[r % nu]; /* every variant this CPU has, in turn */
        use(b, k, r & 1 ? KERN_ACT_INT8 : KERN_ACT_FP32, 1 + r % 3);
        bitlinear_forward(b, x, y, N);
        CHECK(bitlinear_set_act(r & 1 ? "fp32" : "int8", err) == 0, "%s", err);
        CHECK(bitlinear_set_threads(1 + r % 3, err) == 0, "%s", err);
    }
    atomic_store(&j.stop, 1);
    pthread_join(th, NULL);
    CHECK(j.bad == 0, "%d of %d forwards of a layer changed while others' contexts and the defaults changed", j.bad, j.rounds);
    /* the owner's check: set_exec refuses while a forward runs */
    atomic_store(&a->running, 1);
    KernExec ex;
    kern_exec_init(&ex, NULL, KERN_ACT_INT8, NULL);
    CHECK(bitlinear_set_exec(a, &ex, err) == -1 && strstr(err, "running"), "set_exec during a forward: %s", err);
    atomic_store(&a->running, 0);
    /* all or none: a forward on the second layer leaves the first one as
     * it was and released */
    atomic_store(&b->running, 1);
    int b_act = b->ex.act;
    BitLinear *ab[2] = {a, b};
    CHECK(bitlinear_set_exec_all(ab, 2, &ex, err) == -1 && strstr(err, "running"), "set_exec_all during a forward: %s", err);
    CHECK(atomic_load(&a->running) == 0 && a->ex.act != KERN_ACT_INT8 && b->ex.act == b_act,
          "a refused set_exec_all changed nothing (running %d)", atomic_load(&a->running));
    atomic_store(&b->running, 0);
    /* a forward started during a switch waits for it, then runs the new
     * context: a thread forwards a while this one holds a */
    atomic_store(&a->running, -1);
    IsoJob w = {a, x, want, N, out, 0, 0, 0, 0};
    CHECK(pthread_create(&th, NULL, iso_thread, &w) == 0, "thread");
    ob_sleep(0.05);
    CHECK(atomic_load(&w.rounds) == 0, "a forward ran on a layer being switched (%d)", atomic_load(&w.rounds));
    atomic_store(&a->running, 0);
    while (atomic_load(&w.rounds) == 0) ob_sleep(0.001);
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    CHECK(w.bad == 0, "forwards after the switch: %d bad", w.bad);
    CHECK(bitlinear_set_exec_all(ab, 2, &ex, err) == 0 && a->ex.act == KERN_ACT_INT8 && b->ex.act == KERN_ACT_INT8, "%s", err);
    CHECK(bitlinear_set_exec(a, &ex, err) == 0 && a->ex.act == KERN_ACT_INT8, "%s", err);
    kern_exec_fini(&ex);
    CHECK(bitlinear_set_act("fp32", err) == 0, "%s", err);
    CHECK(bitlinear_set_kernel(kern_default()->name, err) == 0, "%s", err);
    CHECK(bitlinear_set_threads(0, err) == 0, "%s", err);
    bitlinear_free(a);
    bitlinear_free(b);
    free(W); free(x); free(want); free(y);
}

/* ---- int8 activations (BITLINEAR_ACT_INT8, kernels.h) ---------------- */

/* kern_quantize's rules, checked directly, and the SIMD quantizer identical
 * to the scalar one */
static void test_quantize(void)
{
    static const int pads[] = {64, 512, 576, 1024, 4160};
    int bad = 0;
    for (int pi = 0; pi < 5; pi++) {
        int n = pads[pi], nq = (n + KERN_QBLOCK - 1) / KERN_QBLOCK;
        float *x = ob_malloc(n * 4), *sc = ob_malloc(nq * 4), *sc2 = ob_malloc(nq * 4);
        int16_t *q = ob_malloc(n * 2), *q2 = ob_malloc(n * 2);
        for (int trial = 0; trial < 4; trial++) {
            float mag = trial == 0 ? 1.0f : trial == 1 ? 1e-30f : trial == 2 ? 3e30f : 7.0f;
            for (int i = 0; i < n; i++) x[i] = frand() * mag;
            if (trial == 3) {
                for (int i = 0; i < n && i < KERN_QBLOCK; i++) x[i] = 0.0f;   /* an all-zero block */
                if (nq > 1) x[KERN_QBLOCK + 5] = NAN;                          /* a NaN block */
                if (nq > 2) x[2 * KERN_QBLOCK + 1] = -INFINITY;                /* an infinite one */
            }
            kern_quantize_ref(x, n, q, sc);
            for (int j = 0; j < nq; j++) {
                int c0 = j * KERN_QBLOCK, c1 = c0 + KERN_QBLOCK < n ? c0 + KERN_QBLOCK : n;
                double m = 0;
                int nonfinite = 0;
                for (int c = c0; c < c1; c++) {
                    if (!isfinite(x[c])) nonfinite = 1;
                    else m = fmax(m, fabs(x[c]));
                }
                if (nonfinite) { CHECK(isnan(sc[j]), "n %d block %d with NaN/Inf: scale %g", n, j, sc[j]); }
                else CHECK(sc[j] == (float)m / 127.0f, "n %d block %d: scale %g, max %g", n, j, sc[j], m);
                for (int c = c0; c < c1; c++) {
                    if (q[c] < -127 || q[c] > 127) bad++;
                    if (nonfinite || m == 0) { if (q[c] != 0) bad++; continue; }
                    if (!(fabs((double)q[c] * sc[j] - x[c]) <= 0.5001 * sc[j])) bad++;
                }
            }
            if (avail(KERN_AVX512)) {
                kern_quantize_avx512(x, n, q2, sc2);
                CHECK(!memcmp(q, q2, n * 2), "n %d trial %d: avx512 quantizer's q differ", n, trial);
                for (int j = 0; j < nq; j++)
                    CHECK(sc[j] == sc2[j] || (isnan(sc[j]) && isnan(sc2[j])), "n %d block %d: scales %g vs %g", n, j, sc[j], sc2[j]);
            }
        }
        free(x); free(sc); free(sc2); free(q); free(q2);
    }
    CHECK(bad == 0, "%d quantized values outside [-127, 127] or off by more than half a step", bad);
}

/* every variant with int8 activations: bit-identical to the reference
 * variant at 1/2/3 threads; the reference against an independent double
 * evaluation of the same quantized sum; and within the quantization bound of
 * the FP32 layer */
static void test_int8(void)
{
    char err[OB_ERRLEN];
    const BitKernel *const *all = kern_all();
    static const int Ns[] = {1, 2, 3, 4, 5, 8, 9, 17, 19};
    static const int threads[] = {1, 2, 3};
    CHECK(bitlinear_set_act("int9", err) == -1 && strstr(err, "int9"), "bad act name accepted: %s", err);
    for (int wi = 0; wi <= NW; wi++) {
        /* the last layer is the worst case for the int16 sums: every row has
         * the same signs and the input matches them, so every product is +127 */
        int worst_case = wi == NW;
        int in = worst_case ? 4097 : widths[wi], out = worst_case ? 40 : outs[wi];
        float *W = ob_malloc((size_t)out * in * sizeof(float));
        BitLinear *bl = random_layer(out, in, W);
        if (worst_case) {
            for (int r = 1; r < out; r++) memcpy(W + (size_t)r * in, W, in * sizeof(float));
            bitlinear_pack(bl, W);
        }
        const int in_pad = kern_in_pad(&bl->km), nq = kern_nqblk(&bl->km);
        for (int ni = 0; ni < (int)(sizeof Ns / sizeof Ns[0]); ni++) {
            int N = Ns[ni];
            size_t ny = (size_t)N * out;
            float *x = ob_malloc((size_t)N * in * 4), *x2 = ob_malloc((size_t)N * in * 4);
            for (size_t i = 0; i < (size_t)N * in; i++) x[i] = frand(), x2[i] = frand();
            if (worst_case)
                for (int n = 0; n < N; n++)
                    for (int c = 0; c < in; c++) x[(size_t)n * in + c] = (W[c] >= 0 ? 1.0f : -1.0f) / bl->g[c];
            float *want = ob_malloc(ny * 4), *yfp = ob_malloc(ny * 4), *y = ob_malloc(ny * 4), *yr = ob_malloc(ny * 4);
            float *B = ob_malloc(ny * 4), *sd = ob_malloc(N * 4);
            bounds(bl, x, N, B, sd);
            /* the quantized input as the kernels see it, and the bounds */
            float *gx = ob_calloc((size_t)in_pad, 4), *sc = ob_malloc((size_t)N * nq * 4);
            int16_t *q = ob_malloc((size_t)N * in_pad * 2);
            for (int n = 0; n < N; n++) {
                for (int c = 0; c < in_pad; c++) gx[c] = c < in ? x[(size_t)n * in + c] * bl->g[c] : 0.0f;
                kern_quantize_ref(gx, in_pad, q + (size_t)n * in_pad, sc + (size_t)n * nq);
            }
            for (int norm = 0; norm <= 1; norm++) {
                bl->norm = norm;
                bitlinear_forward_ref(bl, x, yfp, N);
                use(bl, kern_variant(KERN_REF), KERN_ACT_INT8, 1);
                bitlinear_forward(bl, x, yr, N);
                if (!norm) {
                    int badd = 0, badq = 0;
                    for (int n = 0; n < N; n++)
                        for (int r = 0; r < out; r++) {
                            double d = 0, mag = 0, qb = 0;
                            for (int j = 0; j < nq; j++) {
                                long isum = 0, asum = 0;
                                for (int c = j * KERN_QBLOCK; c < in_pad && c < (j + 1) * KERN_QBLOCK; c++) {
                                    int v = q[(size_t)n * in_pad + c];
                                    isum += c < in && bitlinear_sign(bl, r, c) < 0 ? -v : v;
                                    asum += abs(v);
                                }
                                d += (double)sc[(size_t)n * nq + j] * isum;
                                mag += (double)sc[(size_t)n * nq + j] * asum;
                                int cols = (j + 1) * KERN_QBLOCK < in_pad ? KERN_QBLOCK : in_pad - j * KERN_QBLOCK;
                                qb += 0.5 * sc[(size_t)n * nq + j] * cols;
                            }
                            size_t i = (size_t)n * out + r;
                            double hr = fabs(bl->h[r]);
                            if (!(fabs(yr[i] - d * bl->h[r]) <= 1e-6 * mag * hr + 1e-30)) badd++;
                            if (!(fabs(yr[i] - yfp[i]) <= qb * hr + 1e-5 * B[i])) badq++;
                            if (worst_case && r == 0 && n == 0)
                                CHECK(d == 127.0 * sc[0] * 2 * (KERN_QBLOCK * (nq - 1) + (in - KERN_QBLOCK * (nq - 1))) / 2,
                                      "worst case: the sum %g is not 127 per column", d);
                        }
                    CHECK(badd == 0, "int8 ref: out %d in %d N %d: %d values off the double evaluation", out, in, N, badd);
                    CHECK(badq == 0, "int8: out %d in %d N %d: %d values off FP32 by more than the quantization bound", out, in, N, badq);
                }
                for (int k = 0; all[k]; k++) {
                    if (!kern_available(all[k])) continue;
                    /* on the kernel's int8 layout (layout_q8), the one
                     * bitlinear packs an int8 layer in */
                    for (int ti = 0; ti < 3; ti++) {
                        use(bl, all[k], KERN_ACT_INT8, 1);
                        const int want_layout = kern_layout_for(bl->ex.kernel, KERN_ACT_INT8);
                        CHECK(bl->km.layout == want_layout, "int8 %s: packed in layout %d, not %d", all[k]->name, bl->km.layout, want_layout);
                        bitlinear_forward(bl, x2, y, N); /* stale scratch must not survive */
                        use(bl, all[k], KERN_ACT_INT8, threads[ti]);
                        for (size_t i = 0; i < ny; i++) y[i] = NAN;
                        bitlinear_forward(bl, x, y, N);
                        CHECK(!memcmp(y, yr, ny * 4), "int8 %s layout %d: out %d in %d N %d norm %d threads %d: not identical to the reference",
                              all[k]->name, bl->km.layout, out, in, N, norm, threads[ti]);
                    }
                }
            }
            /* a NaN in one token's input: that token's outputs are NaN, the others' are not */
            if (N >= 2) {
                bl->norm = 1;
                x[in / 2] = NAN;
                bitlinear_forward(bl, x, y, N);
                int nan0 = 0, nan1 = 0;
                for (int r = 0; r < out; r++) nan0 += isnan(y[r]), nan1 += isnan(y[out + r]);
                CHECK(nan0 == out && nan1 == 0, "int8 NaN input: %d of %d NaN in token 0, %d in token 1", nan0, out, nan1);
            }
            free(x); free(x2); free(want); free(yfp); free(y); free(yr); free(B); free(sd); free(gx); free(sc); free(q);
        }
        bitlinear_free(bl);
        free(W);
    }
}

/* the dense FP32 rows of a student's head (linear_head through the 1-bit
 * ops): every SIMD variant against a double evaluation on odd shapes, and
 * the result on the layer's pool the same at 1/2/3 threads */
static void test_gemv(void)
{
    static const int rows_[] = {1, 5, 37, 1000, 4099}, cols_[] = {1, 7, 64, 129, 1003};
    for (int si = 0; si < 5; si++) {
        int R = rows_[si], C = cols_[si];
        float *W = ob_malloc((size_t)R * C * 4), *x = ob_malloc(C * 4), *y = ob_malloc(R * 4), *y1 = ob_malloc(R * 4);
        for (size_t i = 0; i < (size_t)R * C; i++) W[i] = frand();
        for (int i = 0; i < C; i++) x[i] = frand();
        for (int v = 0; v < 3; v++) {
            if (v == 1 && !avail(KERN_AVX2)) continue;
            if (v == 2 && !avail(KERN_AVX512)) continue;
            for (int r = 0; r < R; r++) y[r] = NAN;
            if (v == 0) kern_gemv_rows_ref(W, x, y, C, 0, R);
            else if (v == 1) kern_gemv_rows_avx2(W, x, y, C, 0, R);
            else kern_gemv_rows_avx512(W, x, y, C, 0, R);
            int bad = 0;
            for (int r = 0; r < R; r++) {
                double d = 0, m = 0;
                for (int c = 0; c < C; c++) d += (double)W[(size_t)r * C + c] * x[c], m += fabs((double)W[(size_t)r * C + c] * x[c]);
                if (!(fabs(y[r] - d) <= 1e-6 * m + 1e-30)) bad++;
            }
            CHECK(bad == 0, "gemv variant %d %dx%d: %d rows off", v, R, C, bad);
        }
        BitLinear *bl = bitlinear_new(1, 1);
        for (int t = 1; t <= 3; t++) {
            use(bl, NULL, KERN_ACT_FP32, t);
            Linear l = bitlinear_linear(bl);
            CHECK(l.kind != LINEAR_DENSE && l.ops && l.ops->head && l.impl == bl, "the 1-bit Linear's ops");
            linear_head(&l, W, LINEAR_W_F32, x, t == 1 ? y1 : y, R, C);
            if (t > 1) CHECK(!memcmp(y, y1, R * 4), "gemv %dx%d: %d threads differ from 1", R, C, t);
        }
        /* FP16 and Q8_0 heads on the layer's pool: the layer's decode
         * helpers row by row, whatever the thread count */
        if (C % KERN_Q8_0_BLOCK == 0) {
            uint16_t *W16 = ob_malloc((size_t)R * C * 2);
            KernQ8_0 *Wq = ob_malloc((size_t)R * C / KERN_Q8_0_BLOCK * sizeof(KernQ8_0));
            float *yr = ob_malloc(R * 4);
            kern_dec_variant(KERN_DEC_REF)->to_f16(W, W16, (size_t)R * C);
            kern_q8_0_quantize(W, Wq, (size_t)R * C);
            static const int wts[] = {LINEAR_W_F16, LINEAR_W_Q8_0};
            for (int wi = 0; wi < 2; wi++) {
                int wt = wts[wi];
                const void *Wt = wt == LINEAR_W_F16 ? (const void *)W16 : (const void *)Wq;
                for (int t = 1; t <= 3; t++) {
                    use(bl, NULL, KERN_ACT_FP32, t);
                    Linear l = bitlinear_linear(bl);
                    linear_head(&l, Wt, wt, x, y, R, C);
                    if (wt == LINEAR_W_F16) bl->ex.dec->gemv_f16(W16, x, yr, C, 0, R);
                    else bl->ex.dec->gemv_q8_0(Wq, x, yr, C, 0, R);
                    CHECK(!memcmp(y, yr, R * 4), "%s head %dx%d on %d threads: not the helpers' rows",
                          wt == LINEAR_W_F16 ? "FP16" : "Q8_0", R, C, t);
                }
            }
            free(W16); free(Wq); free(yr);
        }
        bitlinear_free(bl);
        free(W); free(x); free(y); free(y1);
    }
}

/* kern_layernorm (the AVX-512 one on this CPU) against bitlinear_layernorm:
 * out of place equals in place bit for bit, x is left alone, and the values
 * agree with the scalar double statistics to float rounding, also with a
 * large common offset */
static void test_layernorm(void)
{
    static const int ns[] = {1, 2, 15, 16, 31, 32, 33, 47, 100, 4096, 11008};
    for (int i = 0; i < (int)(sizeof ns / sizeof ns[0]); i++)
        for (int off = 0; off < 2; off++) {
            int n = ns[i];
            float *x = ob_malloc(n * 4), *x0 = ob_malloc(n * 4), *y = ob_malloc(n * 4), *yi = ob_malloc(n * 4), *want = ob_malloc(n * 4);
            for (int k = 0; k < n; k++) x[k] = (off ? 1000.0f : 0.0f) + frand();
            memcpy(x0, x, n * 4);
            memcpy(yi, x, n * 4);
            memcpy(want, x, n * 4);
            void (*ln)(const float *, float *, int) = avail(KERN_AVX512) ? kern_layernorm_avx512 : kern_layernorm_ref;
            ln(x, y, n);
            ln(yi, yi, n);
            bitlinear_layernorm(want, n);
            CHECK(!memcmp(x, x0, n * 4), "layernorm n %d: the input changed", n);
            CHECK(!memcmp(y, yi, n * 4), "layernorm n %d offset %d: out of place differs from in place", n, off);
            int bad = 0;
            for (int k = 0; k < n; k++)
                if (!(fabsf(y[k] - want[k]) <= 1e-5f * (fabsf(want[k]) + 1.0f))) bad++;
            CHECK(bad == 0, "layernorm n %d offset %d: %d values off bitlinear_layernorm", n, off, bad);
            free(x); free(x0); free(y); free(yi); free(want);
        }
}

/* the SwiGLU helper: the AVX-512 one (its own exp) against the reference's
 * expf within a few ulp, over the whole range of exp's argument, at the
 * tails of a vector (masked), with NaN kept NaN and the infinities as the
 * reference gives them; the KernExec of the reference kernel holds the
 * reference */
static void test_silu(void)
{
    KernExec ex;
    kern_exec_init(&ex, kern_variant(KERN_REF), KERN_ACT_FP32, NULL);
    CHECK(ex.silu_mul == kern_silu_mul_ref, "the reference kernel's context has the reference SwiGLU");
    kern_exec_fini(&ex);
    if (!avail(KERN_AVX512)) return;
    enum { N = 4099 };
    float *h = ob_malloc(N * 4), *u = ob_malloc(N * 4), *h1 = ob_malloc(N * 4), *h2 = ob_malloc(N * 4);
    for (int k = 0; k < N; k++) {
        h[k] = k < 4000 ? -120.0f + 240.0f * k / 4000 : 8.0f * frand(); /* exp's whole range, then the usual */
        u[k] = frand() + 0.5f;
    }
    h[7] = NAN, h[8] = INFINITY, h[9] = -INFINITY, h[10] = 0.0f, h[11] = -0.0f, h[12] = 88.5f, h[13] = -88.5f;
    for (int n = 1; n <= N; n += n < 40 ? 1 : 1021) {
        memcpy(h1, h, N * 4);
        memcpy(h2, h, N * 4);
        kern_silu_mul_ref(h1, u, (size_t)n);
        kern_silu_mul_avx512(h2, u, (size_t)n);
        int bad = 0;
        for (int k = 0; k < N; k++) {
            if (k >= n) { bad += memcmp(&h2[k], &h[k], 4) != 0; continue; } /* past n: untouched */
            if (isnan(h1[k]) || isnan(h2[k])) { bad += !(isnan(h1[k]) && isnan(h2[k])); continue; }
            if (isinf(h1[k]) || isinf(h2[k])) { bad += h1[k] != h2[k]; continue; }
            bad += !(fabsf(h2[k] - h1[k]) <= 4.0f * FLT_EPSILON * fabsf(h1[k]) + 1e-37f);
        }
        CHECK(bad == 0, "silu_mul n %d: %d values off the reference", n, bad);
    }
    free(h); free(u); free(h1); free(h2);
}

/* KernExec.rmsnorm: the reference is model_rmsnorm's expression (in-order
 * FP32 sum), the AVX-512 one within a few ulp of it on lengths around the
 * vector widths, in place too, nothing written past n */
static void test_rmsnorm(void)
{
    KernExec ex;
    kern_exec_init(&ex, kern_variant(KERN_REF), KERN_ACT_FP32, NULL);
    CHECK(ex.rmsnorm == kern_rmsnorm_ref, "the reference kernel's context has the reference RMSNorm");
    kern_exec_fini(&ex);
    enum { N = 4100 };
    float *x = ob_malloc(N * 4), *w = ob_malloc(N * 4), *y1 = ob_malloc(N * 4), *y2 = ob_malloc(N * 4);
    for (int k = 0; k < N; k++) { x[k] = 4.0f * frand(); w[k] = 0.5f + frand(); }
    /* the reference, by its definition */
    double ss = 0;
    float s32 = 0.0f;
    for (int k = 0; k < 77; k++) { s32 += x[k] * x[k]; ss += (double)x[k] * x[k]; }
    kern_rmsnorm_ref(y1, x, w, 77, 1e-5f);
    const float sc = 1.0f / sqrtf(s32 / 77 + 1e-5f);
    int exact = 1;
    for (int k = 0; k < 77; k++) exact &= y1[k] == w[k] * (sc * x[k]);
    CHECK(exact && fabs(sc - 1.0 / sqrt(ss / 77 + 1e-5)) < 1e-5 * sc, "rmsnorm ref: not model_rmsnorm's expression");
    if (!avail(KERN_AVX512)) { free(x); free(w); free(y1); free(y2); return; }
    for (int n = 1; n <= N - 4; n += n < 80 ? 1 : 1009) {
        for (int k = 0; k < N; k++) y1[k] = y2[k] = -7.0f;
        kern_rmsnorm_ref(y1, x, w, n, 1e-5f);
        kern_rmsnorm_avx512(y2, x, w, n, 1e-5f);
        int bad = 0;
        for (int k = 0; k < N; k++)
            bad += k >= n ? y2[k] != -7.0f : !(fabsf(y2[k] - y1[k]) <= 8.0f * FLT_EPSILON * fabsf(y1[k]) + 1e-30f);
        memcpy(y2, x, (size_t)n * 4);
        kern_rmsnorm_avx512(y2, y2, w, n, 1e-5f); /* in place */
        for (int k = 0; k < n; k++) bad += !(fabsf(y2[k] - y1[k]) <= 8.0f * FLT_EPSILON * fabsf(y1[k]) + 1e-30f);
        CHECK(bad == 0, "rmsnorm avx512 n %d: %d values off the reference", n, bad);
    }
    free(x); free(w); free(y1); free(y2);
}

/* a mixture of scales (bitlinear_set_mos): for each token, exactly the
 * plain layer with g = g(x) and h = h(x) (r = softmax(R·x), R·x by the
 * kernel's FP32 GEMV rows, softmax by model_softmax, g(x) = Σ_e r_e G_e and
 * h(x) = Σ_e r_e H_e summed in expert order, as the layer does), bit for
 * bit for every kernel, fp32
 * and int8 (int8 quantizes x ⊙ g(x)), 1 and 3 threads, norm on and off;
 * N tokens at once as close as test_variants allows */
static void test_mos(void)
{
    enum { E = 3, N = 6 };
    const int in = 200, out = 161;
    float *W = ob_malloc((size_t)in * out * sizeof(float)), *R = ob_malloc((size_t)E * in * sizeof(float));
    float *G = ob_malloc((size_t)E * in * sizeof(float)), *H = ob_malloc((size_t)E * out * sizeof(float));
    float *x = ob_malloc((size_t)N * in * sizeof(float)), *y = ob_malloc((size_t)N * out * sizeof(float));
    float *y1 = ob_malloc((size_t)out * sizeof(float)), *yp = ob_malloc((size_t)out * sizeof(float));
    float *gx = ob_malloc((size_t)in * sizeof(float)), *hx = ob_malloc((size_t)out * sizeof(float));
    BitLinear *bl = random_layer(out, in, W), *plain = bitlinear_new(out, in);
    bitlinear_pack(plain, W);
    for (int i = 0; i < E * in; i++) { R[i] = 0.2f * frand(); G[i] = 0.5f + frand(); }
    for (int i = 0; i < E * out; i++) H[i] = 0.1f + 0.05f * frand();
    for (int i = 0; i < N * in; i++) x[i] = frand();
    CHECK(bitlinear_set_mos(bl, E, R, G, H) == 0, "bitlinear_set_mos");
    int same = 1, cases = 0;
    double worst = 0;
    for (int id = 0; id < KERN_NVARIANTS; id++) {
        if (!avail(id)) continue;
        for (int act = KERN_ACT_FP32; act <= KERN_ACT_INT8; act++)
            for (int t = 1; t <= 3; t += 2)
                for (int norm = 0; norm <= 1; norm++) {
                    use(bl, kern_variant(id), act, t);
                    use(plain, kern_variant(id), act, t);
                    bl->norm = plain->norm = norm;
                    bitlinear_forward(bl, x, y, N);
                    for (int n = 0; n < N; n++) {
                        const float *xn = x + (size_t)n * in;
                        float r[E];
                        bl->ex.gemv_rows(R, xn, r, in, 0, E);
                        model_softmax(r, E);
                        for (int c = 0; c < in; c++) {
                            gx[c] = r[0] * G[c];
                            for (int e = 1; e < E; e++) gx[c] += r[e] * G[(size_t)e * in + c];
                        }
                        for (int o = 0; o < out; o++) {
                            hx[o] = r[0] * H[o];
                            for (int e = 1; e < E; e++) hx[o] += r[e] * H[(size_t)e * out + o];
                        }
                        bitlinear_set_scales(plain, gx, hx);
                        bitlinear_forward(plain, xn, yp, 1);
                        bitlinear_forward(bl, xn, y1, 1);
                        same &= !memcmp(y1, yp, (size_t)out * sizeof(float));
                        for (int o = 0; o < out; o++) worst = fmax(worst, fabs(y[(size_t)n * out + o] - yp[o]));
                    }
                    cases++;
                }
    }
    printf("mos: %d kernel/precision/thread/norm cases, one token bit-identical to g(x), h(x) given: %s; %d tokens at once: max |diff| %.3g\n",
           cases, same ? "yes" : "NO", N, worst);
    CHECK(same && cases >= 8, "a mixture of scales = the layer with g(x), h(x), token by token, bit for bit (%d cases)", cases);
    /* tokens are independent (int8: the same quantization per token): N at
     * once differs from one by one at most by the kernels' summation order
     * (3.6e-7 measured) */
    CHECK(worst < 1e-3, "N tokens at once vs one by one: %g", worst);
    CHECK(bitlinear_set_mos(bl, 0, NULL, NULL, NULL) == 0 && bl->mos == 0 && bl->km.h == bl->h, "experts removed: g and h again");
    bitlinear_free(bl);
    bitlinear_free(plain);
    free(W); free(R); free(G); free(H); free(x); free(y); free(y1); free(yp); free(gx); free(hx);
}

#if defined(OB_X86)
/* the guard's comparison must see one wrong bit: the emulated kernel with
 * the last token's sixth row one ulp off */
static void amx_emul_off(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1, float *acc,
                         int16_t *acc16)
{
    kern_rows_q8_amx_emul(m, q, scale, prep, N, b0, b1, acc, acc16);
    float *a = acc + (size_t)(N - 1) * kern_nblk(m) * KERN_ROWBLK + 5;
    if (b0 == 0) *a = nextafterf(*a, INFINITY);
}

/* avx512amx's kernel with its tile instructions emulated (x86/amx.c, the
 * same code as the variant's but for the six tile macros) bit-identical to
 * the reference on odd shapes: rows not a multiple of 16 (a row block alone
 * in its pair), columns not a multiple of 512 (short 512-column blocks),
 * partial token tiles (N = 2, 15, 17, 33) and many (64, 128; 161: more than
 * a group of 128, a partial group of 33, the smaller shapes); the rows in
 * one call and in calls of 2 blocks, the prep in three token ranges over
 * stale bytes; a token of zeros (scale 0) and the extremes ±127. The real
 * variant the same way when this CPU has AMX (and the loops over the
 * available variants above run it through bitlinear_forward). Also the
 * guard's check: it passes the emulation and refuses a one-ulp error. */
static void test_amx_emul(void)
{
    if (!cpu_has(CPU_NEEDS_AVX512)) {
        printf("SKIP AMX emulation: no AVX-512 here\n");
        return;
    }
    const BitKernel *amx = kern_variant(KERN_AVX512AMX);
    const int real = kern_available(amx);
    printf("AMX emulation vs reference%s\n", real ? ", and the real AMX kernel" : " (no usable AMX here: the real kernel is not run)");
    static const int shapes[][2] = {{37, 1100}, {16, 64}, {17, 65}, {1, 3}, {100, 1000}, {33, 512}, {129, 1536}, {300, 4097}};
    static const int Ns[] = {1, 2, 15, 16, 17, 33, 64, 128, 161};
    long compared = 0;
    for (int si = 0; si < (int)(sizeof shapes / sizeof shapes[0]); si++) {
        const int out = shapes[si][0], in = shapes[si][1];
        float *W = ob_malloc((size_t)out * in * sizeof(float));
        BitLinear *bl = random_layer(out, in, W);
        use(bl, kern_variant(KERN_AVX512), KERN_ACT_INT8, 1); /* packs KERN_LAYOUT_W16 */
        const KernMat *km = &bl->km;
        CHECK(km->layout == KERN_LAYOUT_W16, "amx: layout %d", km->layout);
        const int in_pad = kern_in_pad(km), nq = kern_nqblk(km), nblk = kern_nblk(km);
        const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
        for (int ni = 0; ni < (int)(sizeof Ns / sizeof Ns[0]); ni++) {
            const int N = Ns[ni];
            if ((double)N * out * in > 2e8 || (N > 128 && out * in > 200000)) continue;
            float *gx = ob_calloc((size_t)in_pad, sizeof(float)), *sc = ob_malloc((size_t)N * nq * sizeof(float));
            int16_t *q = ob_malloc((size_t)N * in_pad * sizeof(int16_t));
            for (int n = 0; n < N; n++) {
                for (int c = 0; c < in; c++) gx[c] = n == 1 ? 0.0f : frand();
                if (n == 2) gx[in / 2] = 50.0f; /* the others round to small values */
                kern_quantize_ref(gx, in_pad, q + (size_t)n * in_pad, sc + (size_t)n * nq);
            }
            const size_t pbytes = (kern_prep_q8_bytes_amx(km, N) + 63) & ~(size_t)63;
            void *prep = ob_aligned_alloc(64, pbytes);
            int16_t *acc16 = ob_aligned_alloc(64, (size_t)N * kern_acc16_per_token(km) * sizeof(int16_t));
            float *want = ob_malloc((size_t)N * out_pad * sizeof(float)), *got = ob_malloc((size_t)N * out_pad * sizeof(float));
            kern_rows_q8_ref(km, q, sc, NULL, N, 0, nblk, want, NULL);
            memset(prep, 0x5a, pbytes);
            kern_prep_q8_amx(km, q, N, 0, N / 3, prep);
            kern_prep_q8_amx(km, q, N, N / 3, 2 * N / 3, prep);
            kern_prep_q8_amx(km, q, N, 2 * N / 3, N, prep);
            for (int r = 0; r < 2 + real * 2; r++) {
                KernRowsQ8 f = r < 2 ? kern_rows_q8_amx_emul : kern_rows_q8_amx;
                for (size_t i = 0; i < (size_t)N * out_pad; i++) got[i] = NAN;
                if (r % 2 == 0) f(km, q, sc, prep, N, 0, nblk, got, acc16);
                else
                    for (int b = 0; b < nblk; b += 2) f(km, q, sc, prep, N, b, b + 2 < nblk ? b + 2 : nblk, got, acc16);
                int bad = 0;
                for (int n = 0; n < N; n++) bad += memcmp(got + n * out_pad, want + n * out_pad, (size_t)out * sizeof(float)) != 0;
                CHECK(bad == 0, "amx %s: out %d in %d N %d, %s: %d of %d tokens differ from the reference", r < 2 ? "emulation" : "real", out,
                      in, N, r % 2 ? "calls of 2 blocks" : "one call", bad, N);
                compared += N;
            }
            free(gx); free(sc); free(q); free(prep); free(acc16); free(want); free(got);
        }
        bitlinear_free(bl);
        free(W);
    }
    printf("AMX: %ld token results compared\n", compared);
    CHECK(kern_amx_check(kern_rows_q8_amx_emul) == 1, "amx guard: the emulation fails the check");
    CHECK(kern_amx_check(amx_emul_off) == 0, "amx guard: a one-ulp error passes the check");
    if (!cpu_has(CPU_AMX_INT8)) {
        char err[OB_ERRLEN];
        CHECK(!real && kern_lookup("avx512amx", err) == NULL && strstr(err, "not available"), "avx512amx without AMX: %s", err);
    }
}
#endif

/* bitlinear_forward_many: the same bits as a bitlinear_forward each, on
 * every variant, both precisions, 1-3 threads and 1-8 tokens; with 2 threads
 * the three layers (4 to 6 panels each) take the one-run path, with 3 the
 * 2100-row one has too few panels and all fall back, as do layers of
 * another width */
static void test_many(void)
{
    enum { NL = 3, IN = 1000 };
    static const int outs_m[NL] = {2100, 1600, 3000}, Ns[] = {1, 2, 5, 8};
    BitLinear *bl[NL + 1];
    float *y[NL + 1], *y1[NL + 1];
    float *x = ob_malloc((size_t)8 * IN * sizeof(float));
    for (int i = 0; i < 8 * IN; i++) x[i] = frand();
    for (int i = 0; i <= NL; i++) {
        int out = i < NL ? outs_m[i] : 700, in = i < NL ? IN : 300;
        float *W = ob_malloc((size_t)out * in * sizeof(float));
        bl[i] = random_layer(out, in, W);
        free(W);
        y[i] = ob_malloc((size_t)8 * out * sizeof(float));
        y1[i] = ob_malloc((size_t)8 * out * sizeof(float));
    }
    bl[1]->norm = 0;
    int cases = 0;
    for (int id = 0; id < KERN_NVARIANTS; id++) {
        if (!avail(id)) continue;
        for (int act = KERN_ACT_FP32; act <= KERN_ACT_INT8; act++)
            for (int t = 1; t <= 3; t++) {
                for (int i = 0; i <= NL; i++) use(bl[i], kern_variant(id), act, t);
                for (int ni = 0; ni < (int)(sizeof Ns / sizeof Ns[0]); ni++) {
                    const int N = Ns[ni];
                    for (int i = 0; i < NL; i++) bitlinear_forward(bl[i], x, y1[i], N);
                    for (int i = 0; i < NL; i++) memset(y[i], 0xff, (size_t)N * bl[i]->out * sizeof(float));
                    bitlinear_forward_many((const BitLinear *const *)bl, NL, x, y, N);
                    for (int i = 0; i < NL; i++)
                        CHECK(!memcmp(y[i], y1[i], (size_t)N * bl[i]->out * sizeof(float)), "many %s %s threads %d N %d: layer %d differs",
                              kern_variant(id)->name, act ? "int8" : "fp32", t, N, i);
                    /* a layer of another width in the set: one call each */
                    bitlinear_forward(bl[NL], x, y1[NL], N);
                    BitLinear *mixed[2] = {bl[0], bl[NL]};
                    float *ym[2] = {y[0], y[NL]};
                    bitlinear_forward_many((const BitLinear *const *)mixed, 2, x, ym, N);
                    CHECK(!memcmp(y[0], y1[0], (size_t)N * bl[0]->out * 4) && !memcmp(y[NL], y1[NL], (size_t)N * bl[NL]->out * 4),
                          "many with another width: %s threads %d N %d", kern_variant(id)->name, t, N);
                    cases++;
                }
            }
    }
    CHECK(cases > 0, "no case ran");
    for (int i = 0; i <= NL; i++) { bitlinear_free(bl[i]); free(y[i]); free(y1[i]); }
    free(x);
}

int main(void)
{
    test_packing();
    test_variants();
    test_dense();
    test_exec_isolated();
    test_quantize();
    test_int8();
#if defined(OB_X86)
    test_amx_emul();
#endif
    test_gemv();
    test_layernorm();
    test_silu();
    test_rmsnorm();
    test_mos();
    test_many();
    for (int t = 1; t <= 3; t++) pool_free(pools[t]);
    return test_done("test_bitlinear");
}
