/* test_bitlinear.c -- the packed 1-bit layer: canonical packing round trips,
 * every kernel variant the CPU has (ref, avx2, avx512, ...) against the
 * scalar reference bitlinear_forward_ref on odd shapes, N = 1..9 and 16, norm
 * on and off, 1/2/3 threads (bitwise identical across thread counts), and the
 * whole layer against a dense FP32 evaluation through cblas_sgemm.
 *
 * Tolerance: for output row r the pre-norm value is h_r * sum_c s_rc gx_c; we
 * allow |diff| <= 1e-5 * B_r with B_r = |h_r| * sum_c |gx_c|. Reordering an
 * FP32 sum of `in` terms moves it by about eps32 * sqrt(in) * B_r (<= 4e-6 B_r
 * for in <= 4097), while a single wrong sign moves it by 2 |h_r gx_c|, on
 * average 2 B_r / in >= 4.9e-4 B_r here: 50x the tolerance. After the
 * LayerNorm the same bound is divided by the pre-norm standard deviation.
 */
#include <cblas.h>
#include <stdint.h>

#include "onebit/bitlinear.h"
#include "base/common.h"
#include "kernels/kernels.h"
#include "model/linear.h"
#include "test.h"

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
static const int widths[] = {1, 3, 31, 63, 64, 65, 127, 129, 200, 1000, 4097, 200, 130};
static const int outs[] = {1, 7, 16, 17, 33, 100, 129, 31, 300, 97, 161, 2100, 4500};
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
        if (!all[i]->available()) printf("SKIP variant %s: not available on this CPU\n", all[i]->name);
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
                    if (!all[k]->available()) continue;
                    CHECK(kern_select(all[k]->name, err) == 0, "select %s: %s", all[k]->name, err);
                    bitlinear_repack(bl); /* the kbits layout of this kernel */
                    for (int ti = 0; ti < 3; ti++) {
                        /* another input first, on one thread (every row),
                         * so that rows a call skipped would not keep this
                         * input's values in the kernels' scratch */
                        CHECK(bitlinear_set_threads(1, err) == 0, "threads: %s", err);
                        bitlinear_forward(bl, x2, y, N);
                        CHECK(bitlinear_set_threads(threads[ti], err) == 0, "threads: %s", err);
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
    CHECK(kern_select("no-such-kernel", err) == -1, "unknown kernel accepted");
    CHECK(strstr(err, "unknown") != NULL, "message: %s", err);
    CHECK(kern_select(kern_all()[0]->available() ? kern_all()[0]->name : "ref", err) == 0, "%s", err);
    CHECK(bitlinear_set_threads(0, err) == 0, "%s", err);
}

/* the layer against a dense FP32 evaluation: S (out, in) = ±1, through sgemm */
static void test_dense(void)
{
    double worst = 0;
    const BitKernel *const *all = kern_all();
    char err[OB_ERRLEN];
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
            if (!all[k]->available()) continue;
            kern_select(all[k]->name, err);
            bitlinear_repack(bl);
            bitlinear_forward(bl, x, y, N);
            int bad = compare(bl, y, dense, B, sd, N, &worst);
            CHECK(bad == 0, "%s vs dense sgemm: out %d in %d N %d: %d outside tolerance", all[k]->name, out, in, N, bad);
        }
        free(W); free(S); free(x); free(gx); free(dense); free(y); free(B); free(sd);
        bitlinear_free(bl);
    }
    printf("vs dense sgemm: worst error %.3f of the tolerance\n", worst);
    kern_select(kern_all()[0]->available() ? kern_all()[0]->name : "ref", err);
}

/* a layer packed for one kernel's kbits layout, then another kernel
 * selected without bitlinear_repack: still the right results (a kernel on the
 * canonical bits runs instead), and the real kernel again after the repack */
static void test_layout_change(void)
{
    char err[OB_ERRLEN];
    if (!kern_avx512.available() || !kern_avx2.available()) { printf("SKIP layout change: no AVX-512\n"); return; }
    const int out = 300, in = 200, N = 3;
    float *W = ob_malloc((size_t)out * in * sizeof(float)), *x = ob_malloc((size_t)N * in * 4);
    float *want = ob_malloc((size_t)N * out * 4), *y = ob_malloc((size_t)N * out * 4);
    float *B = ob_malloc((size_t)N * out * 4), *sd = ob_malloc(N * 4);
    for (int i = 0; i < N * in; i++) x[i] = frand();
    static const char *const order[][2] = {{"avx512", "avx2"}, {"avx2", "avx512"}};
    double worst = 0;
    for (int o = 0; o < 2; o++) {
        CHECK(kern_select(order[o][0], err) == 0, "%s", err);
        BitLinear *bl = random_layer(out, in, W);
        CHECK(bl->klayout == kern_current()->layout, "%s: packed in layout %d", order[o][0], bl->klayout);
        bounds(bl, x, N, B, sd);
        bitlinear_forward_ref(bl, x, want, N);
        CHECK(kern_select(order[o][1], err) == 0, "%s", err);
        bitlinear_forward(bl, x, y, N);
        CHECK(compare(bl, y, want, B, sd, N, &worst) == 0, "packed for %s, run with %s: wrong", order[o][0], order[o][1]);
        bitlinear_repack(bl);
        CHECK(bl->klayout == kern_current()->layout, "%s: repacked in layout %d", order[o][1], bl->klayout);
        bitlinear_forward(bl, x, y, N);
        CHECK(compare(bl, y, want, B, sd, N, &worst) == 0, "repacked for %s: wrong", order[o][1]);
        bitlinear_free(bl);
    }
    CHECK(kern_avx512.layout != kern_avx2.layout && kern_avx2.needs_kbits, "the two kernels share a layout: this test tests nothing");
    /* packed while int8 activations were active (KERN_LAYOUT_W16), run in
     * FP32 without a repack: the same FP32 results */
    CHECK(kern_select("avx512", err) == 0, "%s", err);
    CHECK(bitlinear_set_act("int8", err) == 0, "%s", err);
    BitLinear *bl = random_layer(out, in, W);
    CHECK(bl->klayout == KERN_LAYOUT_W16, "avx512 int8: packed in layout %d", bl->klayout);
    CHECK(bitlinear_set_act("fp32", err) == 0, "%s", err);
    bounds(bl, x, N, B, sd);
    bitlinear_forward_ref(bl, x, want, N);
    bitlinear_forward(bl, x, y, N);
    CHECK(compare(bl, y, want, B, sd, N, &worst) == 0, "packed for int8, run in fp32: wrong");
    bitlinear_repack(bl);
    CHECK(bl->klayout == KERN_LAYOUT_L6, "avx512 fp32: repacked in layout %d", bl->klayout);
    bitlinear_free(bl);
    free(W); free(x); free(want); free(y); free(B); free(sd);
    kern_select(kern_all()[0]->available() ? kern_all()[0]->name : "ref", err);
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
            if (kern_avx512.available()) {
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
    static const int Ns[] = {1, 2, 3, 4, 5, 8, 9, 19};
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
        const int in_pad = kern_in_pad(bl), nq = kern_nqblk(bl);
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
                CHECK(bitlinear_set_act("fp32", err) == 0, "%s", err);
                bitlinear_forward_ref(bl, x, yfp, N);
                CHECK(bitlinear_set_act("int8", err) == 0 && bitlinear_act() == BITLINEAR_ACT_INT8, "%s", err);
                CHECK(kern_select("ref", err) == 0, "%s", err);
                bitlinear_repack(bl);
                CHECK(bitlinear_set_threads(1, err) == 0, "%s", err);
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
                    if (!all[k]->available()) continue;
                    CHECK(kern_select(all[k]->name, err) == 0, "%s", err);
                    /* the kernel's int8 layout (layout_q8), then, where it
                     * differs, its FP32 layout, which rows_q8 also reads (the
                     * precision switched without a repack) */
                    for (int lay = 0; lay < 2; lay++) {
                        if (lay && all[k]->layout_q8 == all[k]->layout) break;
                        if (lay) CHECK(bitlinear_set_act("fp32", err) == 0, "%s", err);
                        bitlinear_repack(bl);
                        if (lay) CHECK(bitlinear_set_act("int8", err) == 0, "%s", err);
                        const int want_layout = lay ? all[k]->layout : all[k]->layout_q8;
                        CHECK(bl->klayout == want_layout, "int8 %s: packed in layout %d, not %d", all[k]->name, bl->klayout, want_layout);
                        for (int ti = 0; ti < 3; ti++) {
                            CHECK(bitlinear_set_threads(1, err) == 0, "%s", err);
                            bitlinear_forward(bl, x2, y, N); /* stale scratch must not survive */
                            CHECK(bitlinear_set_threads(threads[ti], err) == 0, "%s", err);
                            for (size_t i = 0; i < ny; i++) y[i] = NAN;
                            bitlinear_forward(bl, x, y, N);
                            CHECK(!memcmp(y, yr, ny * 4), "int8 %s layout %d: out %d in %d N %d norm %d threads %d: not identical to the reference",
                                  all[k]->name, bl->klayout, out, in, N, norm, threads[ti]);
                        }
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
            CHECK(bitlinear_set_act("fp32", err) == 0, "%s", err);
            free(x); free(x2); free(want); free(yfp); free(y); free(yr); free(B); free(sd); free(gx); free(sc); free(q);
        }
        bitlinear_free(bl);
        free(W);
    }
    kern_select(kern_all()[0]->available() ? kern_all()[0]->name : "ref", err);
    CHECK(bitlinear_set_threads(0, err) == 0, "%s", err);
}

/* the dense FP32 rows of linear_gemv_pool (a student's head): every SIMD
 * variant against a double evaluation on odd shapes, and the pool's result
 * the same at 1/2/3 threads */
static void test_gemv(void)
{
    char err[OB_ERRLEN];
    static const int rows_[] = {1, 5, 37, 1000, 4099}, cols_[] = {1, 7, 64, 129, 1003};
    for (int si = 0; si < 5; si++) {
        int R = rows_[si], C = cols_[si];
        float *W = ob_malloc((size_t)R * C * 4), *x = ob_malloc(C * 4), *y = ob_malloc(R * 4), *y1 = ob_malloc(R * 4);
        for (size_t i = 0; i < (size_t)R * C; i++) W[i] = frand();
        for (int i = 0; i < C; i++) x[i] = frand();
        for (int v = 0; v < 3; v++) {
            if (v == 1 && !kern_avx2.available()) continue;
            if (v == 2 && !kern_avx512.available()) continue;
            for (int r = 0; r < R; r++) y[r] = NAN;
            if (v == 0) { kern_select("ref", err); kern_gemv_rows(W, x, y, C, 0, R); }
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
        kern_select(kern_all()[0]->available() ? kern_all()[0]->name : "ref", err);
        for (int t = 1; t <= 3; t++) {
            CHECK(bitlinear_set_threads(t, err) == 0, "%s", err);
            linear_gemv_pool(W, x, t == 1 ? y1 : y, R, C);
            if (t > 1) CHECK(!memcmp(y, y1, R * 4), "gemv %dx%d: %d threads differ from 1", R, C, t);
        }
        free(W); free(x); free(y); free(y1);
    }
    CHECK(bitlinear_set_threads(0, err) == 0, "%s", err);
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
            kern_layernorm(x, y, n);
            kern_layernorm(yi, yi, n);
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

int main(void)
{
    test_packing();
    test_variants();
    test_dense();
    test_layout_change();
    test_quantize();
    test_int8();
    test_gemv();
    test_layernorm();
    return test_done("test_bitlinear");
}
