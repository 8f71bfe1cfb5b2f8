/* test_svid.c -- SVID: exact recovery of a rank-1 |W|, NMF vs SVD vs XNOR
 * errors, nonnegativity, determinism, the statistics of a small known
 * matrix, and the threaded whole-model statistics against the serial ones;
 * ARB's refinement: never worse than NMF, SVD and XNOR on random matrices
 * and on every linear of stories260K (when $ONEBIT_SHARED has it), and
 * hand cases whose optimum is known. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/model.h"
#include "onebit/svid.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}
static double nrand(void)
{
    double u = urand() + 1e-300, v = urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void exact_rank1(void)
{
    int R = 37, C = 53;
    float *W = malloc(R * C * 4), *a = malloc(R * 4), *b = malloc(C * 4);
    double ta[37], tb[53];
    for (int i = 0; i < R; i++) ta[i] = 0.1 + urand();
    for (int j = 0; j < C; j++) tb[j] = 0.05 + 2 * urand();
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) W[i * C + j] = (float)((urand() < 0.5 ? -1 : 1) * ta[i] * tb[j]);
    char err[OB_ERRLEN];
    SvidInfo info;
    for (int m = 0; m < 2; m++) {
        CHECK(svid_rank1(W, R, C, (SvidMethod)m, a, b, &info, err) == 0, "%s", err);
        CHECK(info.rel_err < 1e-6, "%s exact rank-1 error %g", svid_method_name((SvidMethod)m), info.rel_err);
        CHECK(info.iters >= 1 && info.iters < SVID_MAX_ITERS, "%s iters %d", svid_method_name((SvidMethod)m), info.iters);
        double maxd = 0;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) {
                double d = fabs((double)a[i] * b[j] - fabs(W[i * C + j])) / fabs(W[i * C + j]);
                if (d > maxd) maxd = d;
            }
        CHECK(maxd < 1e-5, "%s elementwise relative error %g", svid_method_name((SvidMethod)m), maxd);
    }
    CHECK(svid_rank1(W, R, C, SVID_XNOR, a, b, &info, err) == 0, "%s", err);
    CHECK(info.rel_err > 0.1, "xnor cannot fit a varying column scale: %g", info.rel_err);
    CHECK(info.iters == 0, "xnor iterations %d", info.iters);
    for (int j = 0; j < C; j++) CHECK(b[j] == 1.0f, "xnor b[%d] = %g", j, b[j]);
    double xnor_err = info.rel_err;
    /* sign-only: no values at all, g = h = 1 */
    CHECK(svid_rank1(W, R, C, SVID_SIGN, a, b, &info, err) == 0, "%s", err);
    for (int i = 0; i < R; i++) CHECK(a[i] == 1.0f, "sign a[%d] = %g", i, a[i]);
    for (int j = 0; j < C; j++) CHECK(b[j] == 1.0f, "sign b[%d] = %g", j, b[j]);
    CHECK(info.iters == 0 && info.rel_err > xnor_err, "sign fits worse than xnor: %g vs %g", info.rel_err, xnor_err);
    free(W); free(a); free(b);
}

static void random_matrices(void)
{
    const int shapes[][2] = {{64, 64}, {172, 64}, {64, 172}, {1, 9}, {9, 1}, {100, 300}};
    char err[OB_ERRLEN];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        float *W = malloc((size_t)R * C * 4), *a = malloc(R * 4), *b = malloc(C * 4), *a2 = malloc(R * 4), *b2 = malloc(C * 4);
        for (int k = 0; k < R * C; k++) W[k] = (float)(nrand() * (1 + (k % C) * 0.01));
        SvidInfo in, is, ix, in2;
        CHECK(svid_rank1(W, R, C, SVID_NMF, a, b, &in, err) == 0, "%s", err);
        for (int i = 0; i < R; i++) CHECK(a[i] >= 0, "nmf a[%d] = %g < 0", i, a[i]);
        for (int j = 0; j < C; j++) CHECK(b[j] >= 0, "nmf b[%d] = %g < 0", j, b[j]);
        CHECK(svid_rank1(W, R, C, SVID_NMF, a2, b2, &in2, err) == 0, "%s", err);
        CHECK(!memcmp(a, a2, R * 4) && !memcmp(b, b2, C * 4) && in.rel_err == in2.rel_err, "nmf deterministic (%dx%d)", R, C);
        CHECK(svid_rank1(W, R, C, SVID_SVD, a2, b2, &is, err) == 0, "%s", err);
        for (int i = 0; i < R; i++) CHECK(a2[i] >= 0, "svd a[%d] = %g < 0", i, a2[i]);
        for (int j = 0; j < C; j++) CHECK(b2[j] >= 0, "svd b[%d] = %g < 0", j, b2[j]);
        CHECK(svid_rank1(W, R, C, SVID_XNOR, a2, b2, &ix, err) == 0, "%s", err);
        CHECK(in.rel_err <= is.rel_err + 1e-5, "nmf %g <= svd %g (%dx%d)", in.rel_err, is.rel_err, R, C);
        /* the leading singular pair is the best rank-1 fit: no worse than xnor */
        CHECK(is.rel_err <= ix.rel_err + 1e-6, "svd %g <= xnor %g (%dx%d)", is.rel_err, ix.rel_err, R, C);
        CHECK(in.rel_err > 0 && in.rel_err < 1, "nmf error in (0,1): %g", in.rel_err);
        free(W); free(a); free(b); free(a2); free(b2);
    }
}

/* ARB's error against the others' on one matrix; returns ARB's (and
 * NMF's into *nmf when not NULL) */
static double arb_vs_others(const float *W, int R, int C, const char *what, double *nmf)
{
    char err[OB_ERRLEN];
    float *a = malloc((size_t)R * 4), *b = malloc((size_t)C * 4);
    SvidInfo ia, io;
    CHECK(svid_rank1(W, R, C, SVID_ARB, a, b, &ia, err) == 0, "%s", err);
    CHECK(ia.iters >= 0 && ia.iters <= SVID_ARB_ROUNDS, "%s: arb rounds %d", what, ia.iters);
    const SvidMethod others[3] = {SVID_NMF, SVID_SVD, SVID_XNOR};
    for (int k = 0; k < 3; k++) {
        CHECK(svid_rank1(W, R, C, others[k], a, b, &io, err) == 0, "%s", err);
        CHECK(ia.rel_err <= io.rel_err, "%s (%dx%d): arb %.9g <= %s %.9g", what, R, C, ia.rel_err,
              svid_method_name(others[k]), io.rel_err);
        if (k == 0 && nmf) *nmf = io.rel_err;
    }
    free(a); free(b);
    return ia.rel_err;
}

static void arb_known(void)
{
    char err[OB_ERRLEN];
    SvidInfo info;
    /* W = diag(h)·S·diag(g) exactly (signs arbitrary): the optimum is 0 and
     * h gᵀ is recovered */
    const float h[2] = {1, 2}, g[3] = {3, 1, 2};
    const int S[6] = {1, -1, -1, 1, 1, -1};
    float W[6], a[3], b[3];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) W[i * 3 + j] = (float)S[i * 3 + j] * h[i] * g[j];
    CHECK(svid_rank1(W, 2, 3, SVID_ARB, a, b, &info, err) == 0, "%s", err);
    CHECK(info.rel_err < 1e-7, "exact: arb error %g", info.rel_err);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) CHECK_NEAR((double)a[i] * b[j], h[i] * g[j], 1e-5, "exact: h_i g_j");
    /* |W| = diag(2, 1) (with signs): the best rank-1 fit keeps the 2 alone,
     * error 1/√5 of ‖W‖; its factors have a_1 b_1 = 2 and nothing else */
    float D[4] = {-2, 0, 0, 1};
    CHECK(svid_rank1(D, 2, 2, SVID_ARB, a, b, &info, err) == 0, "%s", err);
    CHECK_NEAR(info.rel_err, 1 / sqrt(5.0), 1e-6, "diag(2,1): arb error");
    CHECK_NEAR((double)a[0] * b[0], 2, 1e-5, "diag(2,1): a1 b1");
    CHECK(fabs((double)a[1] * b[1]) < 1e-5 && fabs((double)a[0] * b[1]) < 1e-5 && fabs((double)a[1] * b[0]) < 1e-5,
          "diag(2,1): the rest is 0");
    /* random matrices (columns of different scales, like test random_matrices) */
    const int shapes[][2] = {{64, 64}, {172, 64}, {64, 172}, {1, 9}, {9, 1}, {100, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        float *M = malloc((size_t)R * C * 4);
        for (int k = 0; k < R * C; k++) M[k] = (float)(nrand() * (1 + (k % C) * 0.01) * (1 + (k / C) % 7));
        double e = arb_vs_others(M, R, C, "random", NULL);
        CHECK(e >= 0 && e < 1, "arb error in [0,1): %g", e);
        free(M);
    }
}

/* every linear of the real stories260K teacher */
static int arb_stories(void)
{
    const char *bin = shared_path("models/stories260K.bin");
    if (!bin) { printf("SKIP: arb on stories260K (set ONEBIT_SHARED)\n"); return 0; }
    Model m;
    char err[OB_ERRLEN];
    if (model_load(&m, bin, err)) { CHECK(0, "%s", err); return 1; }
    int n = m.cfg.n_layers * LIN_PER_LAYER;
    double worst = 0, sa = 0, sn = 0;
    for (int i = 0; i < n; i++) {
        int r, c;
        float *tmp;
        const float *W = svid_model_weight(&m, i / LIN_PER_LAYER, i % LIN_PER_LAYER, &r, &c, &tmp);
        char name[64];
        svid_layer_name(name, sizeof name, i / LIN_PER_LAYER, i % LIN_PER_LAYER);
        double en = 0, e = arb_vs_others(W, r, c, name, &en);
        if (e > worst) worst = e;
        sa += e;
        sn += en;
        free(tmp);
    }
    printf("stories260K: arb <= nmf, svd, xnor on all %d linears (worst relative error %.4f; mean arb %.9f, nmf %.9f)\n",
           n, worst, sa / n, sn / n);
    model_free(&m);
    return 0;
}

static void bad_input(void)
{
    char err[OB_ERRLEN];
    float W[6] = {1, 2, 3, 4, 5, 6}, a[3], b[3];
    SvidMethod m;
    CHECK(svid_method_parse("nmf", &m) == 0 && m == SVID_NMF, "parse nmf");
    CHECK(svid_method_parse("svd", &m) == 0 && m == SVID_SVD, "parse svd");
    CHECK(svid_method_parse("xnor", &m) == 0 && m == SVID_XNOR, "parse xnor");
    CHECK(svid_method_parse("sign", &m) == 0 && m == SVID_SIGN && !strcmp(svid_method_name(m), "sign"), "parse sign");
    CHECK(svid_method_parse("arb", &m) == 0 && m == SVID_ARB && !strcmp(svid_method_name(m), "arb"), "parse arb");
    CHECK(svid_method_parse("NMF", &m) == -1 && svid_method_parse("", &m) == -1, "parse junk");
    CHECK(!strcmp(svid_method_name(SVID_SVD), "svd"), "name");
    CHECK(svid_rank1(W, 0, 3, SVID_NMF, a, b, NULL, err) == -1 && strstr(err, "shape"), "zero rows: %s", err);
    CHECK(svid_method_ok(SVID_NMF) && svid_method_ok(SVID_ARB) && !svid_method_ok((SvidMethod)5) && !svid_method_ok((SvidMethod)-1),
          "svid_method_ok: the five methods and nothing else");
    CHECK(svid_rank1(W, 2, 3, (SvidMethod)5, a, b, NULL, err) == -1 && strstr(err, "unknown method 5"), "method 5: %s", err);
    W[4] = NAN;
    CHECK(svid_rank1(W, 2, 3, SVID_SVD, a, b, NULL, err) == -1 && strstr(err, "(1, 1)"), "NaN: %s", err);
    memset(W, 0, sizeof W);
    SvidInfo info;
    const SvidMethod zm[4] = {SVID_NMF, SVID_SVD, SVID_XNOR, SVID_ARB};
    for (int z = 0; z < 4; z++) {
        SvidMethod k = zm[z];
        CHECK(svid_rank1(W, 2, 3, k, a, b, &info, err) == 0, "zero matrix %d", k);
        CHECK(a[0] == 0 && a[1] == 0 && info.rel_err == 0, "zero matrix factors %d", k);
    }
}

static void known_stats(void)
{
    /* 3x2: rows (1,-2) (3,-4) (0,0.5) */
    float W[6] = {1, -2, 3, -4, 0, 0.5f};
    LayerStats st;
    memset(&st, 0, sizeof st);
    char err[OB_ERRLEN];
    CHECK(svid_layer_stats(W, 3, 2, SVID_XNOR, &st, err) == 0, "%s", err);
    CHECK(st.rows == 3 && st.cols == 2 && st.bins == SVID_BINS, "shape");
    CHECK_NEAR(st.pos_frac, 4.0 / 6, 1e-12, "pos_frac");
    CHECK_NEAR(st.row_pos_min, 0.5, 1e-12, "row min");
    CHECK_NEAR(st.row_pos_max, 1.0, 1e-12, "row max");
    CHECK_NEAR(st.row_pos_std, sqrt(1.0 / 18), 1e-12, "row std");
    CHECK_NEAR(st.col_pos_min, 1.0 / 3, 1e-12, "col min");
    CHECK_NEAR(st.col_pos_max, 1.0, 1e-12, "col max");
    CHECK_NEAR(st.col_pos_std, 1.0 / 3, 1e-12, "col std");
    CHECK_NEAR(st.bpw, 1 + 16.0 * 5 / 6, 1e-12, "bpw");
    CHECK_NEAR(st.xnor_err, sqrt(1.125 / 30.25), 1e-7, "xnor err");
    CHECK(st.nmf_err <= st.xnor_err && st.svd_err <= st.xnor_err, "nmf %g svd %g <= xnor", st.nmf_err, st.svd_err);
    CHECK_NEAR(st.nmf_err, st.svd_err, 1e-6, "nmf = svd at the optimum");
    /* xnor init: h = row means of |W| (0.25 .. 3.5), g = 1 */
    CHECK_NEAR(st.h_min, 0.25, 1e-7, "h min");
    CHECK_NEAR(st.h_max, 3.5, 1e-7, "h max");
    CHECK(st.g_min == 1 && st.g_max == 1, "g range");
    CHECK(st.abs_lo == 0 && st.abs_hi == 4 && st.w_lo == -4 && st.w_hi == 3, "ranges");
    long want_abs[SVID_BINS] = {0}, want_w[SVID_BINS] = {0};
    want_abs[16] = want_abs[32] = want_abs[48] = want_abs[63] = want_abs[0] = want_abs[8] = 1;
    want_w[45] = want_w[18] = want_w[63] = want_w[0] = want_w[36] = want_w[41] = 1;
    CHECK(!memcmp(st.abs_hist, want_abs, sizeof want_abs), "|W| histogram");
    CHECK(!memcmp(st.w_hist, want_w, sizeof want_w), "W histogram");
}

typedef struct { int at, calls; } CancelAt;
static int cancel_at(void *user, int done, int total)
{
    CancelAt *c = user;
    (void)total;
    c->calls++;
    return done >= c->at;
}

static void model_stats(void)
{
    ModelConfig c = {.dim = 32, .hidden_dim = 48, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                     .vocab_size = 40, .seq_len = 16, .rope_theta = 10000, .norm_eps = 1e-5f, .shared_classifier = 1};
    Model m;
    char err[OB_ERRLEN];
    CHECK(model_alloc(&m, &c, 1, err) == 0, "%s", err);
    for (size_t i = 0; i < m.arena_floats; i++) m.arena[i] = (float)(nrand() * 0.1);
    int n = c.n_layers * LIN_PER_LAYER;
    LayerStats *par = calloc(n, sizeof *par), *ser = calloc(n, sizeof *ser);
    CHECK(svid_model_stats(&m, 3, SVID_NMF, par, NULL, NULL, err) == 0, "%s", err);
    for (int i = 0; i < n; i++) {
        int r, cc;
        float *tmp;
        const float *W = svid_model_weight(&m, i / LIN_PER_LAYER, i % LIN_PER_LAYER, &r, &cc, &tmp);
        CHECK(W && !tmp, "an arena teacher's weight is in place");
        svid_layer_name(ser[i].name, sizeof ser[i].name, i / LIN_PER_LAYER, i % LIN_PER_LAYER);
        ser[i].layer = i / LIN_PER_LAYER;
        ser[i].kind = i % LIN_PER_LAYER;
        CHECK(svid_layer_stats(W, r, cc, SVID_NMF, &ser[i], err) == 0, "%s", err);
        CHECK(!memcmp(&ser[i], &par[i], sizeof ser[i]), "threaded == serial for %s", ser[i].name);
    }
    CHECK(!strcmp(par[8].name, "layers.1.wk") && par[8].rows == 16 && par[8].cols == 32, "name/shape %s %dx%d", par[8].name, par[8].rows, par[8].cols);
    CHECK(par[LIN_DOWN].rows == 32 && par[LIN_DOWN].cols == 48, "down shape");
    /* progress returning nonzero cancels: the rest is skipped, the call fails */
    CancelAt ca = {.at = 2};
    CHECK(svid_model_stats(&m, 3, SVID_NMF, par, cancel_at, &ca, err) == -1 && strstr(err, "cancelled"), "cancelled: %s", err);
    CHECK(ca.calls >= 2 && ca.calls < n, "cancelled early: %d progress calls of %d layers", ca.calls, n);
    /* a student (no dense weights) is refused */
    Linear saved = m.lin[3];
    m.lin[3].kind = LINEAR_ONEBIT;
    m.lin[3].w = NULL;
    CHECK(svid_model_stats(&m, 2, SVID_NMF, par, NULL, NULL, err) == -1 && strstr(err, "dense"), "non-dense: %s", err);
    m.lin[3] = saved;
    free(par); free(ser);
    model_free(&m);
}

int main(void)
{
    exact_rank1();
    random_matrices();
    bad_input();
    known_stats();
    model_stats();
    arb_known();
    arb_stories();
    return test_done("test_svid");
}
