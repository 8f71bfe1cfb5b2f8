/* test_qat_grad.c -- finite-difference checks of every backward of the QAT
 * student (RMSNorm, RoPE, GQA attention, SwiGLU, the OneBit linear with its
 * LayerNorm, the STE) and of the whole distillation loss w.r.t. g, h and the
 * student's input, on tiny random models with odd sizes, also with the
 * linears' LayerNorms off (--layernorm off); the mixture of scales (--mos:
 * router, g and h experts; identical experts with a uniform router =
 * OneBit; a random router breaks their symmetry); the student
 * forward against model_forward with packed BitLinear layers; --recompute
 * giving the same gradients bit for bit; and the
 * one-thread-at-a-time contract of a QatModel asserted (two threads in
 * qat_eval_nll_sum at once abort). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>

#include "onebit/bitlinear.h"
#include "base/common.h"
#include "model/model.h"
#include "train/qat.h"
#include "test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) /* [-1, 1) */
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *p, size_t n, double scale, double offset)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(offset + scale * urand());
}

/* relative error with a floor relative to the largest gradient */
static double rel_err(double a, double n, double floor)
{
    double d = fabs(a - n), s = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    if (s < floor) s = floor;
    return d / s;
}

/* Σ R ⊙ y in double */
static double dotR(const float *y, const float *R, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * R[i];
    return s;
}

static void report(const char *name, double e, double tol)
{
    printf("  %-34s max rel err %.3g\n", name, e);
    CHECK(e < tol, "%s: max rel err %g >= %g", name, e, tol);
}

/* central differences of f with one Richardson step (error O(eps⁴), so a
 * large eps keeps float32 rounding noise small) over the n entries of p,
 * against the analytic grad g; returns the max relative error */
typedef double (*LossFn)(void *ctx);
static double fd_one(LossFn f, void *ctx, float *p, double eps)
{
    float p0 = *p;
    *p = (float)(p0 + eps);
    double lp = f(ctx);
    *p = (float)(p0 - eps);
    double lm = f(ctx);
    *p = p0;
    return (lp - lm) / ((double)(float)(p0 + eps) - (double)(float)(p0 - eps));
}
static double fd_num(LossFn f, void *ctx, float *p, double eps)
{
    return (4 * fd_one(f, ctx, p, eps / 2) - fd_one(f, ctx, p, eps)) / 3;
}
static double fd_check(LossFn f, void *ctx, float *p, const float *g, size_t n, double eps)
{
    double gmax = 0, worst_e = 0;
    for (size_t i = 0; i < n; i++) if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    for (size_t i = 0; i < n; i++) {
        double num = fd_num(f, ctx, p + i, eps);
        double e = rel_err(g[i], num, 1e-2 * gmax + 1e-6);
        if (e > worst_e) worst_e = e;
    }
    f(ctx); /* leave the context's forward state at the unperturbed point */
    return worst_e;
}

/* ---- RMSNorm ------------------------------------------------------------- */
typedef struct { int N, C; float *x, *w, *out, *rstd, *R; } RmsCtx;
static double rms_loss(void *v)
{
    RmsCtx *c = v;
    qat_rmsnorm_fwd(c->out, c->rstd, c->x, c->w, c->N, c->C, 1e-5f);
    return dotR(c->out, c->R, (size_t)c->N * c->C);
}
static void check_rmsnorm(void)
{
    RmsCtx c = {.N = 5, .C = 13};
    size_t n = (size_t)c.N * c.C;
    c.x = malloc(n * 4); c.w = malloc(c.C * 4); c.out = malloc(n * 4); c.rstd = malloc(c.N * 4); c.R = malloc(n * 4);
    fill(c.x, n, 1, 0); fill(c.w, c.C, 0.5, 1); fill(c.R, n, 1, 0);
    float *dx = calloc(n, 4);
    rms_loss(&c);
    qat_rmsnorm_bwd(dx, c.R, c.x, c.w, c.rstd, c.N, c.C);
    report("rmsnorm dx", fd_check(rms_loss, &c, c.x, dx, n, 2e-2), 5e-3);
    /* model_rmsnorm numerics exactly */
    float *ref = malloc(c.C * 4);
    int same = 1;
    rms_loss(&c);
    for (int i = 0; i < c.N; i++) {
        model_rmsnorm(ref, c.x + (size_t)i * c.C, c.w, c.C, 1e-5f);
        same &= !memcmp(ref, c.out + (size_t)i * c.C, c.C * 4);
    }
    CHECK(same, "qat_rmsnorm_fwd == model_rmsnorm bit for bit");
    free(ref); free(dx); free(c.x); free(c.w); free(c.out); free(c.rstd); free(c.R);
}

/* ---- RoPE ------------------------------------------------------------------ */
typedef struct { int N, T, nd, hd; float *x, *tmp, *R, *cs, *sn; } RopeCtx;
static double rope_loss(void *v)
{
    RopeCtx *c = v;
    memcpy(c->tmp, c->x, (size_t)c->N * c->nd * 4);
    qat_rope_fwd(c->tmp, c->N, c->T, c->nd, c->hd, c->cs, c->sn);
    return dotR(c->tmp, c->R, (size_t)c->N * c->nd);
}
static void check_rope(void)
{
    ModelConfig cfg = {.dim = 12, .n_heads = 3, .head_dim = 4, .seq_len = 16, .rope_theta = 10000.0f};
    RopeCtx c = {.N = 14, .T = 7, .nd = 12, .hd = 4};
    size_t n = (size_t)c.N * c.nd;
    c.x = malloc(n * 4); c.tmp = malloc(n * 4); c.R = malloc(n * 4);
    c.cs = malloc(16 * 2 * 4); c.sn = malloc(16 * 2 * 4);
    model_rope_table(&cfg, c.cs, c.sn);
    fill(c.x, n, 1, 0); fill(c.R, n, 1, 0);
    float *d = malloc(n * 4);
    memcpy(d, c.R, n * 4);
    qat_rope_bwd(d, c.N, c.T, c.nd, c.hd, c.cs, c.sn);
    report("rope dx", fd_check(rope_loss, &c, c.x, d, n, 1e-2), 2e-3);
    free(d); free(c.x); free(c.tmp); free(c.R); free(c.cs); free(c.sn);
}

/* ---- attention --------------------------------------------------------------- */
typedef struct { ModelConfig cfg; int B, T; float *q, *k, *v, *att, *out, *R; } AttCtx;
static double att_loss(void *p)
{
    AttCtx *c = p;
    qat_attention_fwd(NULL, &c->cfg, c->q, c->k, c->v, c->att, c->out, c->B, c->T);
    return dotR(c->out, c->R, (size_t)c->B * c->T * c->cfg.n_heads * c->cfg.head_dim);
}
static void check_attention(int H, int KV, const char *nq, const char *nk, const char *nv)
{
    AttCtx c = {.cfg = {.dim = H * 4, .n_heads = H, .n_kv_heads = KV, .head_dim = 4}, .B = 2, .T = 7};
    int N = c.B * c.T, qd = H * 4, kvd = KV * 4;
    c.q = malloc(N * qd * 4); c.k = malloc(N * kvd * 4); c.v = malloc(N * kvd * 4);
    c.att = malloc((size_t)c.B * H * c.T * c.T * 4); c.out = malloc(N * qd * 4); c.R = malloc(N * qd * 4);
    fill(c.q, N * qd, 1, 0); fill(c.k, N * kvd, 1, 0); fill(c.v, N * kvd, 1, 0); fill(c.R, N * qd, 1, 0);
    float *dq = malloc(N * qd * 4), *dk = malloc(N * kvd * 4), *dv = malloc(N * kvd * 4), *dP = malloc(c.T * c.T * 4);
    att_loss(&c);
    qat_attention_bwd(NULL, &c.cfg, c.q, c.k, c.v, c.att, c.R, dq, dk, dv, dP, c.B, c.T);
    report(nq, fd_check(att_loss, &c, c.q, dq, N * qd, 2e-2), 5e-3);
    report(nk, fd_check(att_loss, &c, c.k, dk, N * kvd, 2e-2), 5e-3);
    report(nv, fd_check(att_loss, &c, c.v, dv, N * kvd, 2e-2), 5e-3);
    free(dq); free(dk); free(dv); free(dP);
    free(c.q); free(c.k); free(c.v); free(c.att); free(c.out); free(c.R);
}

/* ---- SwiGLU --------------------------------------------------------------------- */
typedef struct { size_t n; float *gate, *up, *hp, *R; } SwiCtx;
static double swi_loss(void *p)
{
    SwiCtx *c = p;
    qat_swiglu_fwd(c->hp, c->gate, c->up, c->n);
    return dotR(c->hp, c->R, c->n);
}
static void check_swiglu(void)
{
    SwiCtx c = {.n = 41};
    c.gate = malloc(c.n * 4); c.up = malloc(c.n * 4); c.hp = malloc(c.n * 4); c.R = malloc(c.n * 4);
    fill(c.gate, c.n, 3, 0); fill(c.up, c.n, 1, 0); fill(c.R, c.n, 1, 0);
    float *dg = malloc(c.n * 4), *du = malloc(c.n * 4);
    qat_swiglu_bwd(dg, du, c.R, c.gate, c.up, c.n);
    report("swiglu dgate", fd_check(swi_loss, &c, c.gate, dg, c.n, 2e-2), 2e-3);
    report("swiglu dup", fd_check(swi_loss, &c, c.up, du, c.n, 2e-2), 2e-3);
    free(dg); free(du); free(c.gate); free(c.up); free(c.hp); free(c.R);
}

/* ---- the OneBit linear, S a free FP matrix ------------------------------------ */
typedef struct { int in, out, N; float *S, *g, *h, *x, *gx, *a, *y, *rstd, *R; } LinCtx;
static double lin_loss(void *p)
{
    LinCtx *c = p;
    qat_onebit_fwd(NULL, c->in, c->out, c->S, c->g, c->h, c->x, c->N, c->gx, c->a, c->y, c->rstd);
    return dotR(c->y, c->R, (size_t)c->N * c->out);
}
/* c's buffers for its in, out, N; S (when fill_S, first), g, h, x, R random */
static void lin_ctx_alloc(LinCtx *c, int fill_S)
{
    size_t nx = (size_t)c->N * c->in, ny = (size_t)c->N * c->out, nw = (size_t)c->in * c->out;
    c->S = malloc(nw * 4); c->g = malloc(c->in * 4); c->h = malloc(c->out * 4); c->x = malloc(nx * 4);
    c->gx = malloc(nx * 4); c->a = malloc(ny * 4); c->y = malloc(ny * 4); c->rstd = malloc(c->N * 4); c->R = malloc(ny * 4);
    if (fill_S) fill(c->S, nw, 1, 0);
    fill(c->g, c->in, 0.5, 1); fill(c->h, c->out, 0.5, 1); fill(c->x, nx, 1, 0); fill(c->R, ny, 1, 0);
}
static void lin_ctx_free(LinCtx *c)
{
    free(c->S); free(c->g); free(c->h); free(c->x); free(c->gx); free(c->a); free(c->y); free(c->rstd); free(c->R);
}
/* norm = 0: the linear without its LayerNorm (rstd NULL), y = h⊙(S·(g⊙x)) */
static void check_onebit(int norm)
{
    LinCtx c = {.in = 11, .out = 9, .N = 6};
    size_t nx = (size_t)c.N * c.in, ny = (size_t)c.N * c.out, nw = (size_t)c.in * c.out;
    lin_ctx_alloc(&c, 1);
    if (!norm) { free(c.rstd); c.rstd = NULL; }
    const char *tag = norm ? "onebit" : "onebit no-LN";
    char nm[4][64];
    float *W = malloc(nw * 4), *dW = calloc(nw, 4), *dS = malloc(nw * 4), *dg = calloc(c.in, 4), *dh = calloc(c.out, 4);
    float *dx = malloc(nx * 4), *dy = malloc(ny * 4), *dgx = malloc(nx * 4);
    fill(W, nw, 1.5, 0);
    lin_loss(&c);
    memcpy(dy, c.R, ny * 4);
    QatOnebitGrad p = {c.in, c.out, c.S, W, c.g, c.h, dW, dg, dh, dS, c.gx, dgx, {QAT_STE_ONEBIT, 0}};
    qat_onebit_bwd(NULL, &p, c.x, c.N, c.a, c.y, c.rstd, dy, dx, 0);
    snprintf(nm[0], 64, "%s dS (surrogate%s)", tag, norm ? ", LN incl." : "");
    report(nm[0], fd_check(lin_loss, &c, c.S, dS, nw, 2e-2), 5e-3);
    float *const ps[3] = {c.g, c.h, c.x}, *const gs[3] = {dg, dh, dx};
    const size_t ns[3] = {(size_t)c.in, (size_t)c.out, nx};
    for (int k = 0; k < 3; k++) {
        snprintf(nm[1 + k], 64, "%s d%s", tag, k == 0 ? "g" : k == 1 ? "h" : "x");
        report(nm[1 + k], fd_check(lin_loss, &c, ps[k], gs[k], ns[k], 2e-2), 5e-3);
    }
    /* STE: dW = dS ⊙ (1.001 − tanh²(W)) */
    double e = 0;
    for (size_t k = 0; k < nw; k++) {
        double t = tanh((double)W[k]), want = dS[k] * (1.001 - t * t);
        double r = rel_err(dW[k], want, 1e-6);
        if (r > e) e = r;
    }
    report("onebit STE dW = dS*(1.001-tanh^2)", e, 1e-5);
    /* the factor the student computes from W in its backward pass */
    double es = 0;
    for (int i = -2000; i <= 2000; i++) {
        double w = i * 0.005, t = tanh(w);
        double r = fabs(qat_ste((float)w) - (1.001 - t * t)) / (1.001 - t * t);
        if (r > es) es = r;
    }
    report("qat_ste(w) vs 1.001-tanh^2(w), |w|<=10", es, 1e-5);
    /* the factor is computed from W in the backward pass: exactly qat_ste */
    int same = 1;
    for (size_t k = 0; k < nw; k++) same &= dW[k] == dS[k] * qat_ste(W[k]);
    CHECK(same, "onebit dW = dS * qat_ste(W), computed in the backward pass");
    /* accumulate = 1 adds to dx */
    float *dx2 = malloc(nx * 4);
    for (size_t i = 0; i < nx; i++) dx2[i] = 1.0f;
    memcpy(dy, c.R, ny * 4);
    qat_onebit_bwd(NULL, &p, c.x, c.N, c.a, c.y, c.rstd, dy, dx2, 1);
    double ea = 0;
    for (size_t i = 0; i < nx; i++) if (fabs(dx2[i] - 1.0f - dx[i]) > ea) ea = fabs(dx2[i] - 1.0f - dx[i]);
    CHECK(ea < 1e-5, "accumulate adds dx: %g", ea);
    /* the sign version equals bitlinear_forward_ref */
    for (size_t k = 0; k < nw; k++) c.S[k] = W[k] >= 0 ? 1.0f : -1.0f;
    lin_loss(&c);
    BitLinear *bl = bitlinear_new(c.out, c.in);
    bitlinear_pack(bl, W);
    bitlinear_set_scales(bl, c.g, c.h);
    bl->norm = norm;
    float *yr = malloc(ny * 4);
    bitlinear_forward_ref(bl, c.x, yr, c.N);
    double md = 0;
    for (size_t i = 0; i < ny; i++) if (fabs(yr[i] - c.y[i]) > md) md = fabs(yr[i] - c.y[i]);
    CHECK(md < 1e-4, "%s: qat_onebit_fwd vs bitlinear_forward_ref: %g", tag, md);
    bitlinear_free(bl);
    free(yr); free(dx2);
    free(W); free(dW); free(dS); free(dg); free(dh); free(dx); free(dy); free(dgx);
    lin_ctx_free(&c);
}

/* ---- the mixture-of-scales linear (BinaryMoS), S free ------------------------ */
typedef struct { LinCtx c; QatMos m; float *r; } MosCtx;
static double mos_loss(void *p)
{
    MosCtx *k = p;
    LinCtx *c = &k->c;
    qat_mos_fwd(NULL, c->in, c->out, c->S, &k->m, c->x, c->N, c->gx, k->r, c->a, c->y, c->rstd);
    return dotR(c->y, c->R, (size_t)c->N * c->out);
}
/* k's experts (E, random around 1), router (random, scale rs) and scratch */
static void mos_ctx_alloc(MosCtx *k, int E, double rs)
{
    LinCtx *c = &k->c;
    size_t nx = (size_t)c->N * c->in, ny = (size_t)c->N * c->out, ei = (size_t)E * c->in, eo = (size_t)E * c->out;
    float *G = malloc(ei * 4), *Gin = malloc(ei * 4), *Hout = malloc(eo * 4);
    fill(G, ei, rs, 0); fill(Gin, ei, 0.5, 1); fill(Hout, eo, 0.5, 1);
    k->m = (QatMos){E, G, Gin, Hout, calloc(ei, 4), calloc(ei, 4), calloc(eo, 4), malloc(nx * 4), malloc(ny * 4),
                    malloc(ny * 4), malloc((size_t)c->N * E * 4)};
    k->r = malloc((size_t)c->N * E * 4);
}
static void mos_ctx_free(MosCtx *k)
{
    free((void *)k->m.G); free((void *)k->m.Gin); free((void *)k->m.Hout); free(k->m.dG); free(k->m.dGin); free(k->m.dHout);
    free(k->m.gv); free(k->m.hv); free(k->m.dhv); free(k->m.dr); free(k->r);
}
/* the backward of k at its inputs: dS, dW (W latent), dx, and the experts'
 * gradients in k->m (zeroed first) */
static void mos_backward(MosCtx *k, const float *W, float *dW, float *dS, float *dx)
{
    LinCtx *c = &k->c;
    size_t nx = (size_t)c->N * c->in, ny = (size_t)c->N * c->out, E = (size_t)k->m.E;
    memset(k->m.dG, 0, E * c->in * 4); memset(k->m.dGin, 0, E * c->in * 4); memset(k->m.dHout, 0, E * c->out * 4);
    float *dy = malloc(ny * 4), *dgx = malloc(nx * 4);
    mos_loss(k);
    memcpy(dy, c->R, ny * 4);
    QatOnebitGrad p = {c->in, c->out, c->S, W, c->g, c->h, dW, NULL, NULL, dS, c->gx, dgx, {QAT_STE_ONEBIT, 0}};
    qat_mos_bwd(NULL, &p, &k->m, c->x, c->N, k->r, c->a, c->y, c->rstd, dy, dx, 0);
    free(dy); free(dgx);
}
static void check_mos(void)
{
    int E = 3;
    MosCtx k = {.c = {.in = 11, .out = 9, .N = 6}};
    LinCtx *c = &k.c;
    size_t nx = (size_t)c->N * c->in, ny = (size_t)c->N * c->out, nw = (size_t)c->in * c->out;
    lin_ctx_alloc(c, 1);
    mos_ctx_alloc(&k, E, 0.7);
    float *W = malloc(nw * 4), *dW = calloc(nw, 4), *dS = malloc(nw * 4), *dx = malloc(nx * 4);
    fill(W, nw, 1.5, 0);
    mos_backward(&k, W, dW, dS, dx);
    report("mos dS (LN incl.)", fd_check(mos_loss, &k, c->S, dS, nw, 2e-2), 5e-3);
    report("mos dG (router)", fd_check(mos_loss, &k, (float *)k.m.G, k.m.dG, (size_t)E * c->in, 2e-2), 5e-3);
    report("mos dG_in (g experts)", fd_check(mos_loss, &k, (float *)k.m.Gin, k.m.dGin, (size_t)E * c->in, 2e-2), 5e-3);
    report("mos dH_out (h experts)", fd_check(mos_loss, &k, (float *)k.m.Hout, k.m.dHout, (size_t)E * c->out, 2e-2), 5e-3);
    report("mos dx (router and scales incl.)", fd_check(mos_loss, &k, c->x, dx, nx, 2e-2), 5e-3);
    int same = 1;
    for (size_t i = 0; i < nw; i++) same &= dW[i] == dS[i] * qat_ste(W[i]);
    CHECK(same, "mos dW = dS * qat_ste(W)");
    /* identical experts (g, h) and a zero router: the OneBit linear */
    float *y1 = malloc(ny * 4);
    qat_onebit_fwd(NULL, c->in, c->out, c->S, c->g, c->h, c->x, c->N, c->gx, c->a, y1, c->rstd);
    for (int e = 0; e < E; e++) {
        memcpy((float *)k.m.Gin + (size_t)e * c->in, c->g, c->in * 4);
        memcpy((float *)k.m.Hout + (size_t)e * c->out, c->h, c->out * 4);
    }
    memset((float *)k.m.G, 0, (size_t)E * c->in * 4);
    mos_loss(&k);
    double md = 0;
    for (size_t i = 0; i < ny; i++) md = fmax(md, fabs(y1[i] - c->y[i]));
    CHECK(md < 1e-5, "mos with identical experts and a uniform router == the OneBit linear: %g", md);
    /* ... whose experts get identical gradients for ever; a small random
     * router (qat_new's init) makes them differ from the first step */
    double sym = 0, asym = 0, gm = 0;
    mos_backward(&k, W, dW, dS, dx);
    for (int i = 0; i < c->in; i++) sym = fmax(sym, fabs(k.m.dGin[i] - k.m.dGin[c->in + i]));
    fill((float *)k.m.G, (size_t)E * c->in, 0.03, 0);
    mos_backward(&k, W, dW, dS, dx);
    for (int i = 0; i < c->in; i++) {
        asym = fmax(asym, fabs(k.m.dGin[i] - k.m.dGin[c->in + i]));
        gm = fmax(gm, fabs(k.m.dGin[i]));
    }
    printf("  mos identical experts: |dG_in[0] - dG_in[1]| %.3g with G = 0, %.3g with a random G (|dG_in| %.3g)\n", sym, asym, gm);
    CHECK(sym == 0, "identical experts, G = 0: identical gradients (%g)", sym);
    CHECK(asym > 1e-3 * gm, "identical experts, random G: the gradients differ (%g of %g)", asym, gm);
    /* the sign version equals bitlinear_forward_ref with the same experts */
    for (size_t i = 0; i < nw; i++) c->S[i] = W[i] >= 0 ? 1.0f : -1.0f;
    mos_loss(&k);
    BitLinear *bl = bitlinear_new(c->out, c->in);
    bitlinear_pack(bl, W);
    CHECK(bitlinear_set_mos(bl, E, k.m.G, k.m.Gin, k.m.Hout) == 0, "bitlinear_set_mos");
    bitlinear_forward_ref(bl, c->x, y1, c->N);
    md = 0;
    for (size_t i = 0; i < ny; i++) md = fmax(md, fabs(y1[i] - c->y[i]));
    CHECK(md < 1e-4, "qat_mos_fwd vs bitlinear_forward_ref: %g", md);
    CHECK(bitlinear_set_mos(bl, 1, k.m.G, k.m.Gin, k.m.Hout) == -1 && bitlinear_set_mos(bl, 65, NULL, NULL, NULL) == -1,
          "bitlinear_set_mos: 1 or 65 experts refused");
    bitlinear_free(bl);
    free(y1); free(W); free(dW); free(dS); free(dx);
    mos_ctx_free(&k);
    lin_ctx_free(c);
}

/* ---- the STE variants: each dW = dS ⊙ f(W) is the exact gradient of the
 * linear with S = s(W), s the estimator's surrogate of sign ------------------ */
typedef struct { LinCtx c; float *W; const QatSte *ste; } SteLossCtx;
static double ste_surrogate(const QatSte *e, double w)
{
    switch (e->kind) {
    case QAT_STE_SMOOTH: return tanh(e->a * w);
    case QAT_STE_CLIP: return w < -1 ? -1 : w > 1 ? 1 : w;
    default: return tanh(w) + 0.001 * w;
    }
}
static double ste_loss(void *p)
{
    SteLossCtx *s = p;
    for (size_t k = 0; k < (size_t)s->c.in * s->c.out; k++) s->c.S[k] = (float)ste_surrogate(s->ste, s->W[k]);
    return lin_loss(&s->c);
}
static void check_ste_variant(const char *spec, const char *name)
{
    QatSte e;
    char err[256];
    CHECK(qat_ste_parse(spec, &e, err) == 0, "qat_ste_parse(%s): %s", spec, err);
    char back[64];
    qat_ste_format(&e, back, sizeof back);
    CHECK(!strcmp(back, spec), "qat_ste_format gives '%s' for '%s'", back, spec);
    SteLossCtx s = {.c = {.in = 7, .out = 5, .N = 4}, .ste = &e};
    LinCtx *c = &s.c;
    size_t nx = (size_t)c->N * c->in, ny = (size_t)c->N * c->out, nw = (size_t)c->in * c->out;
    lin_ctx_alloc(c, 0);
    float *dW = calloc(nw, 4), *dS = malloc(nw * 4), *dg = calloc(c->in, 4), *dh = calloc(c->out, 4);
    float *dx = malloc(nx * 4), *dy = malloc(ny * 4), *dgx = malloc(nx * 4);
    s.W = malloc(nw * 4);
    fill(s.W, nw, 1.5, 0);
    for (size_t k = 0; k < nw; k++) /* keep the finite differences off clip's kinks at |w| = 1 */
        if (fabs(fabs(s.W[k]) - 1.0) < 0.05) s.W[k] *= 0.9f;
    ste_loss(&s);
    memcpy(dy, c->R, ny * 4);
    QatOnebitGrad p = {c->in, c->out, c->S, s.W, c->g, c->h, dW, dg, dh, dS, c->gx, dgx, e};
    qat_onebit_bwd(NULL, &p, c->x, c->N, c->a, c->y, c->rstd, dy, dx, 0);
    report(name, fd_check(ste_loss, &s, s.W, dW, nw, 2e-2), 5e-3);
    int same = 1;
    for (size_t k = 0; k < nw; k++) same &= dW[k] == dS[k] * qat_ste_factor(&e, s.W[k]);
    CHECK(same, "%s: dW = dS * qat_ste_factor(W) in the backward pass", spec);
    free(s.W); free(dW); free(dS); free(dg); free(dh); free(dx); free(dy); free(dgx);
    lin_ctx_free(c);
}
static void check_ste(void)
{
    check_ste_variant("onebit", "ste onebit dW vs d/dW (tanh W+.001W)");
    check_ste_variant("smooth:3", "ste smooth:3 dW vs d/dW tanh(3W)");
    check_ste_variant("smooth:0.5", "ste smooth:0.5 dW vs d/dW tanh(W/2)");
    check_ste_variant("tanh", "ste tanh dW vs d/dW tanh(W)");
    check_ste_variant("clip", "ste clip dW vs d/dW clamp(W,-1,1)");
    QatSte e, zero = {0, 0};
    CHECK(qat_ste_factor(&zero, 0.3f) == qat_ste(0.3f), "a zeroed QatSte is the paper's estimator");
    char err[256];
    /* tanh is LittleBit's surrogate at sharpness 1: smooth:1, read back as tanh */
    QatSte t1, s1;
    CHECK(qat_ste_parse("tanh", &t1, err) == 0 && qat_ste_parse("smooth:1", &s1, err) == 0, "tanh, smooth:1: %s", err);
    CHECK(t1.kind == QAT_STE_SMOOTH && t1.a == 1.0f && s1.kind == t1.kind && s1.a == t1.a, "tanh = smooth:1");
    CHECK_NEAR(qat_ste_factor(&t1, 0.7f), 1 - tanh(0.7) * tanh(0.7), 1e-6, "tanh's f(0.7) = 1 - tanh^2(0.7)");
    const char *bad[] = {"smooth:0", "smooth:", "smooth:-1", "smooth:x", "smooth:2x", "sigmoid", "", "smooth:inf", "tanh:2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        CHECK(qat_ste_parse(bad[i], &e, err) == -1 && err[0], "qat_ste_parse('%s') must fail with a message", bad[i]);
    }
    printf("  qat_ste_parse('sigmoid'): %s\n", (qat_ste_parse("sigmoid", &e, err), err));
}

/* ---- whole model ---------------------------------------------------------------- */
static void random_model(Model *m, int dim, int hidden, int layers, int heads, int kv, int vocab, int shared)
{
    ModelConfig cfg = {dim, hidden, layers, heads, kv, dim / heads, vocab, 16, 10000.0f, 1e-5f, shared};
    char err[OB_ERRLEN];
    if (model_alloc(m, &cfg, 1, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    fill(m->arena, m->arena_floats, 0.5, 0);
    for (int l = 0; l < layers; l++) {
        fill(m->rms_att + (size_t)l * dim, dim, 0.2, 1);
        fill(m->rms_ffn + (size_t)l * dim, dim, 0.2, 1);
    }
    fill(m->rms_final, dim, 0.2, 1);
}

typedef struct { QatModel *q; const int *tok; int B, T; QatLossCfg lc; } WholeCtx;
static double whole_loss(void *p)
{
    WholeCtx *c = p;
    QatLoss L;
    qat_zero_grads(c->q);
    qat_forward_backward(c->q, c->tok, c->B, c->T, &c->lc, 1.0f, &L);
    return L.loss;
}

/* the derivative of the whole loss along D (np entries) against the
 * analytic G·D: relative error */
static double directional(WholeCtx *c, float *P, const float *G, const float *D, size_t np)
{
    double an = 0;
    for (size_t i = 0; i < np; i++) an += (double)G[i] * D[i];
    float *P0 = malloc(np * 4);
    memcpy(P0, P, np * 4);
    double fd[2];
    for (int r = 0; r < 2; r++) {
        double e = r ? 1.25e-3 : 2.5e-3, lp, lm;
        for (size_t i = 0; i < np; i++) P[i] = P0[i] + (float)(e * D[i]);
        lp = whole_loss(c);
        for (size_t i = 0; i < np; i++) P[i] = P0[i] - (float)(e * D[i]);
        lm = whole_loss(c);
        fd[r] = (lp - lm) / (2 * e);
    }
    memcpy(P, P0, np * 4);
    free(P0);
    double num = (4 * fd[1] - fd[0]) / 3;
    printf("    directional: analytic %.9g numeric %.9g (eps 2.5e-3: %.9g)\n", an, num, fd[0]);
    return fabs(an - num) / fabs(num);
}

/* q's student forward (qat_eval_nll_sum) == model_forward of a Model with
 * m's FP tensors and packed BitLinear layers made from qat_linear_srcs (a
 * mixture of scales included): logits within 1e-4 */
static void check_student_fwd(QatModel *q, const Model *m, const int *tok, int B, int T, const char *tag)
{
    char err[OB_ERRLEN];
    int C = m->cfg.dim, V = m->cfg.vocab_size, nl = m->cfg.n_layers * LIN_PER_LAYER, shared = m->cfg.shared_classifier;
    Model s;
    CHECK(model_alloc(&s, &m->cfg, 0, err) == 0, "alloc");
    memcpy(s.tok_emb, m->tok_emb, (size_t)V * C * 4);
    memcpy(s.rms_att, m->rms_att, (size_t)m->cfg.n_layers * C * 4);
    memcpy(s.rms_ffn, m->rms_ffn, (size_t)m->cfg.n_layers * C * 4);
    memcpy(s.rms_final, m->rms_final, C * 4);
    if (!shared) memcpy(s.wcls, m->wcls, (size_t)V * C * 4);
    QatLinearSrc *src = calloc((size_t)nl, sizeof *src);
    CHECK(qat_linear_srcs(q, src) == nl, "srcs");
    BitLinear **bls = calloc((size_t)nl, sizeof *bls);
    for (int i = 0; i < nl; i++) {
        bls[i] = bitlinear_new(src[i].out, src[i].in);
        bitlinear_pack(bls[i], src[i].w);
        bitlinear_set_scales(bls[i], src[i].g, src[i].h);
        bls[i]->norm = src[i].norm;
        if (src[i].mos) bitlinear_set_mos(bls[i], src[i].mos, src[i].router, src[i].g_experts, src[i].h_experts);
        s.lin[i] = bitlinear_linear(bls[i]);
    }
    long np_ = 0;
    double nll = qat_eval_nll_sum(q, tok, B, T, &np_);
    CHECK(np_ == B * (T - 1), "n_pred %ld", np_);
    const float *lq = qat_logits(q);
    ModelActs a;
    model_acts_init(&a, &s.cfg, T);
    float *lg = malloc((size_t)T * V * 4);
    double md = 0, nll2 = 0;
    for (int b = 0; b < B; b++) {
        model_forward(&s, &a, tok + b * T, T, lg, NULL);
        for (int i = 0; i < T * V; i++) {
            double d = fabs(lg[i] - lq[(size_t)b * T * V + i]);
            if (d > md) md = d;
        }
        for (int t = 0; t + 1 < T; t++) {
            float *z = lg + (size_t)t * V;
            double mx = z[0], sum = 0;
            for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
            for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
            nll2 += mx + log(sum) - z[tok[b * T + t + 1]];
        }
    }
    printf("  %s student fwd vs model_forward(BitLinear): max |dlogit| %.3g, nll %.6f vs %.6f\n", tag, md, nll, nll2);
    CHECK(md < 1e-4, "%s student logits vs model_forward: %g", tag, md);
    CHECK(fabs(nll - nll2) < 1e-4 * fabs(nll2), "%s nll %g vs %g", tag, nll, nll2);
    free(lg);
    model_acts_free(&a);
    for (int i = 0; i < nl; i++) bitlinear_free(bls[i]);
    free(bls);
    free(src);
    model_free(&s);
}

/* norm = 0: the student's linears without their LayerNorm (qat_set_layernorm) */
static void check_whole(int heads, int kv, int shared, int norm, const char *tag)
{
    Model m;
    int B = 2, T = 7, C = 12, V = 37, N = B * T;
    random_model(&m, C, 20, 2, heads, kv, V, shared);
    char err[OB_ERRLEN];
    QatModel *q = qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    CHECK(q != NULL, "qat_new: %s", err);
    if (!q) return;
    CHECK(qat_layernorm(q) == 1, "qat_new: LayerNorm on");
    qat_set_layernorm(q, norm);
    /* random latent weights and scales: the student differs from SVID
     * (without LayerNorms smaller scales, so that the activations stay
     * O(1) and the loss smooth at the finite differences' steps) */
    float *P = qat_params(q);
    fill(P, qat_num_params(q), 1, 0);
    double sc = norm ? 1 : 0.3;
    for (int l = 0; l < 2; l++) for (int j = 0; j < LIN_PER_LAYER; j++) {
        float *g, *h;
        int in, out;
        qat_linear_params(q, l, j, NULL, &g, &h, &in, &out);
        fill(g, in, 0.3 * sc, sc);
        fill(h, out, 0.3 * sc, sc);
    }
    int tok[14];
    for (int i = 0; i < N; i++) tok[i] = (int)((urand() + 1) * 0.5 * V) % V;
    tok[3] = tok[9]; /* a repeated token: its input grads add up */
    static const QatLossCfg cfgs[3] = {{1.0f, 0.0f}, {0.0f, 1.0f}, {1.0f, 0.01f}};
    static const char *names[3] = {"mse", "kl", "mse+0.01kl"};
    size_t np = qat_num_params(q);
    float *G = malloc(np * 4);
    for (int k = 0; k < 3; k++) {
        WholeCtx c = {q, tok, B, T, cfgs[k]};
        whole_loss(&c);
        memcpy(G, qat_grads(q), np * 4);
        /* every g and h of every linear, one FD each */
        double eg = 0, eh = 0;
        for (int l = 0; l < 2; l++) for (int j = 0; j < LIN_PER_LAYER; j++) {
            float *g, *h, *W;
            int in, out;
            qat_linear_params(q, l, j, &W, &g, &h, &in, &out);
            double e1 = fd_check(whole_loss, &c, g, G + (g - P), in, norm ? 2e-2 : 5e-2);
            double e2 = fd_check(whole_loss, &c, h, G + (h - P), out, norm ? 2e-2 : 5e-2);
            if (e1 > eg) eg = e1;
            if (e2 > eh) eh = e2;
        }
        static char nm[6][64];
        snprintf(nm[2 * k], 64, "%s %s dg", tag, names[k]);
        snprintf(nm[2 * k + 1], 64, "%s %s dh", tag, names[k]);
        report(nm[2 * k], eg, 5e-2);
        report(nm[2 * k + 1], eh, 5e-2);
        /* directional derivative along a random ±1 direction over every g
         * and h at once: far above the rounding noise, so a tight bound */
        float *D = calloc(np, 4);
        for (int l = 0; l < 2; l++) for (int j = 0; j < LIN_PER_LAYER; j++) {
            float *g, *h;
            int in, out;
            qat_linear_params(q, l, j, NULL, &g, &h, &in, &out);
            for (int i = 0; i < in; i++) D[g - P + i] = urand() < 0 ? -1.0f : 1.0f;
            for (int i = 0; i < out; i++) D[h - P + i] = urand() < 0 ? -1.0f : 1.0f;
        }
        static char nd[3][64];
        snprintf(nd[k], 64, "%s %s directional (g,h)", tag, names[k]);
        report(nd[k], directional(&c, P, G, D, np), 2e-3);
        free(D);
    }
    /* the input: teacher outputs held fixed, perturb embedding rows (with
     * an untied head only: a tied one would move the head too) */
    if (!shared) {
        WholeCtx c = {q, tok, B, T, cfgs[2]};
        whole_loss(&c);
        float *dx = malloc((size_t)N * C * 4);
        memcpy(dx, qat_input_grad(q), (size_t)N * C * 4);
        qat_reuse_teacher(q, 1);
        double e = 0, gmax = 0;
        for (int i = 0; i < N * C; i++) if (fabs(dx[i]) > gmax) gmax = fabs(dx[i]);
        for (int n = 0; n < N; n++) {
            int seen = 0;
            for (int k = 0; k < n; k++) seen |= tok[k] == tok[n];
            if (seen) continue;
            for (int i = 0; i < C; i++) {
                double an = 0;
                for (int k = 0; k < N; k++) if (tok[k] == tok[n]) an += dx[(size_t)k * C + i];
                double num = fd_num(whole_loss, &c, m.tok_emb + (size_t)tok[n] * C + i, 2e-2);
                double r = rel_err(an, num, 1e-2 * gmax + 1e-6);
                if (r > e) e = r;
            }
        }
        qat_reuse_teacher(q, 0);
        static char nm[64];
        snprintf(nm, 64, "%s whole loss d(input)", tag);
        report(nm, e, 2e-2);
        free(dx);
    }
    /* student forward == model_forward through packed BitLinear layers
     * (with the LayerNorm flag qat_linear_srcs gives them) */
    {
        QatLinearSrc src[2 * LIN_PER_LAYER];
        CHECK(qat_linear_srcs(q, src) == 2 * LIN_PER_LAYER && src[0].norm == norm && src[2 * LIN_PER_LAYER - 1].norm == norm,
              "%s qat_linear_srcs: norm %d", tag, norm);
    }
    check_student_fwd(q, &m, tok, B, T, tag);
    /* the batched teacher forward == model_forward; the KL value from the
     * two sets of logits in double */
    {
        QatLoss L;
        QatLossCfg lc = {1.0f, 0.01f};
        qat_forward_backward(q, tok, B, T, &lc, 1.0f, &L);
        const float *tl = qat_teacher_logits(q), *th = qat_teacher_hidden(q), *sl = qat_logits(q);
        ModelActs a;
        model_acts_init(&a, &m.cfg, T);
        float *lg = malloc((size_t)T * V * 4), *hid = malloc((size_t)2 * T * C * 4);
        double dl = 0, dh = 0, kl = 0;
        for (int b = 0; b < B; b++) {
            model_forward(&m, &a, tok + b * T, T, lg, hid);
            for (int i = 0; i < T * V; i++) dl = fmax(dl, fabs(lg[i] - tl[(size_t)b * T * V + i]));
            for (int l = 0; l < 2; l++)
                for (int i = 0; i < T * C; i++)
                    dh = fmax(dh, fabs(hid[(size_t)l * T * C + i] - th[((size_t)l * N + b * T) * C + i]));
            for (int t = 0; t < T; t++) {
                const float *zt = lg + (size_t)t * V, *zs = sl + ((size_t)b * T + t) * V;
                double mt = zt[0], ms = zs[0], st = 0, ss = 0;
                for (int v = 1; v < V; v++) { mt = fmax(mt, zt[v]); ms = fmax(ms, zs[v]); }
                for (int v = 0; v < V; v++) { st += exp(zt[v] - mt); ss += exp(zs[v] - ms); }
                for (int v = 0; v < V; v++) {
                    double lpt = zt[v] - mt - log(st), lps = zs[v] - ms - log(ss);
                    kl += exp(lpt) * (lpt - lps);
                }
            }
        }
        kl /= B;
        printf("  %s teacher vs model_forward: max |dlogit| %.3g, max |dhidden| %.3g; kl %.9g vs %.9g\n", tag, dl, dh,
               L.kl, kl);
        CHECK(dl < 1e-4 && dh < 1e-4, "%s batched teacher: %g %g", tag, dl, dh);
        CHECK(fabs(L.kl - kl) < 1e-5 * kl, "%s kl %.9g vs %.9g", tag, L.kl, kl);
        CHECK_NEAR(L.loss, (double)0.01f * L.kl + L.mse, 1e-9, "loss total");
        free(lg); free(hid);
        model_acts_free(&a);
    }
    /* bad input */
    int badtok[14];
    memcpy(badtok, tok, sizeof tok);
    badtok[5] = V;
    QatLoss L;
    QatLossCfg lc = {1, 0.01f};
    CHECK(qat_forward_backward(q, badtok, B, T, &lc, 1, &L) == -1, "token out of range rejected");
    CHECK(qat_forward_backward(q, tok, B + 1, T, &lc, 1, &L) == -1, "B too big rejected");
    CHECK(qat_forward_backward(q, tok, B, T + 1, &lc, 1, &L) == -1, "T too big rejected");
    CHECK(qat_eval_nll_sum(q, badtok, B, T, NULL) < 0, "eval: bad token rejected");
    free(G);
    qat_free(q);
    model_free(&m);
}

/* a mixture of E = 3 scales in the whole student: qat_new's initialisation
 * (every expert the SVID g, h; a seeded N(0, 0.02²) router), then at
 * random parameters finite differences of the whole loss for every router,
 * g expert and h expert entry and along a random direction over all of
 * them, and the student forward against model_forward with MoS BitLinears */
static void check_whole_mos(int heads, int kv, int shared, const char *tag)
{
    Model m;
    int B = 2, T = 7, C = 12, V = 37, N = B * T, E = 3, nl = 2 * LIN_PER_LAYER;
    random_model(&m, C, 20, 2, heads, kv, V, shared);
    char err[OB_ERRLEN];
    QatModel *q = qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, E, 5}, err);
    QatModel *q0 = qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
    QatModel *q5 = qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, E, 5}, err);
    QatModel *q6 = qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, E, 6}, err);
    CHECK(q && q0 && q5 && q6, "qat_new --mos 3: %s", err);
    if (!q || !q0 || !q5 || !q6) return;
    CHECK(qat_mos(q) == E && qat_mos(q0) == 0, "qat_mos");
    int init_ok = 1;
    double s2 = 0;
    size_t nr = 0;
    for (int l = 0; l < 2; l++) for (int j = 0; j < LIN_PER_LAYER; j++) {
        float *g0, *h0, *Gin, *Hout, *G, *G5, *G6;
        int in, out;
        qat_linear_params(q0, l, j, NULL, &g0, &h0, &in, &out);
        init_ok &= qat_linear_mos(q, l, j, &Gin, &Hout, &G) == E && qat_linear_mos(q0, l, j, NULL, NULL, NULL) == 0;
        qat_linear_mos(q5, l, j, NULL, NULL, &G5);
        qat_linear_mos(q6, l, j, NULL, NULL, &G6);
        for (int e = 0; e < E; e++)
            init_ok &= !memcmp(Gin + (size_t)e * in, g0, in * 4) && !memcmp(Hout + (size_t)e * out, h0, out * 4);
        init_ok &= !memcmp(G, G5, (size_t)E * in * 4) && memcmp(G, G6, (size_t)E * in * 4);
        for (int i = 0; i < E * in; i++) s2 += (double)G[i] * G[i];
        nr += (size_t)E * in;
    }
    double sd = sqrt(s2 / nr);
    printf("  %s --mos 3 init: router std %.4f over %zu weights\n", tag, sd, nr);
    CHECK(init_ok, "%s --mos init: every expert = the SVID g, h; the router from the seed", tag);
    CHECK(sd > 0.015 && sd < 0.025, "%s router init std %g (0.02)", tag, sd);
    qat_free(q0); qat_free(q5); qat_free(q6);
    /* random parameters */
    float *P = qat_params(q);
    size_t np = qat_num_params(q);
    fill(P, np, 1, 0);
    for (int l = 0; l < 2; l++) for (int j = 0; j < LIN_PER_LAYER; j++) {
        float *Gin, *Hout, *G;
        int in, out;
        qat_linear_params(q, l, j, NULL, NULL, NULL, &in, &out);
        qat_linear_mos(q, l, j, &Gin, &Hout, &G);
        fill(Gin, (size_t)E * in, 0.3, 1);
        fill(Hout, (size_t)E * out, 0.3, 1);
        fill(G, (size_t)E * in, 0.5, 0);
    }
    int tok[14];
    for (int i = 0; i < N; i++) tok[i] = (int)((urand() + 1) * 0.5 * V) % V;
    WholeCtx c = {q, tok, B, T, {1.0f, 0.01f}};
    whole_loss(&c);
    float *Gr = malloc(np * 4), *D = calloc(np, 4);
    memcpy(Gr, qat_grads(q), np * 4);
    double eG = 0, eGin = 0, eHout = 0;
    for (int i = 0; i < nl; i++) {
        float *Gin, *Hout, *G;
        int in, out;
        qat_linear_params(q, i / LIN_PER_LAYER, i % LIN_PER_LAYER, NULL, NULL, NULL, &in, &out);
        qat_linear_mos(q, i / LIN_PER_LAYER, i % LIN_PER_LAYER, &Gin, &Hout, &G);
        /* the router's effect on the loss is small against the float32
         * rounding of the whole forward: a larger step (the error falls
         * with it, so it is rounding, not truncation: 5e-3 gives 0.1-0.3) */
        eG = fmax(eG, fd_check(whole_loss, &c, G, Gr + (G - P), (size_t)E * in, 8e-2));
        eGin = fmax(eGin, fd_check(whole_loss, &c, Gin, Gr + (Gin - P), (size_t)E * in, 2e-2));
        eHout = fmax(eHout, fd_check(whole_loss, &c, Hout, Gr + (Hout - P), (size_t)E * out, 2e-2));
        for (int k = 0; k < E * in; k++) {
            D[G - P + k] = urand() < 0 ? -1.0f : 1.0f;
            D[Gin - P + k] = urand() < 0 ? -1.0f : 1.0f;
        }
        for (int k = 0; k < E * out; k++) D[Hout - P + k] = urand() < 0 ? -1.0f : 1.0f;
    }
    static char nm[4][64];
    snprintf(nm[0], 64, "%s mos dG (router)", tag);
    snprintf(nm[1], 64, "%s mos dG_in", tag);
    snprintf(nm[2], 64, "%s mos dH_out", tag);
    snprintf(nm[3], 64, "%s mos directional (G,G_in,H_out)", tag);
    report(nm[0], eG, 5e-2);
    report(nm[1], eGin, 5e-2);
    report(nm[2], eHout, 5e-2);
    report(nm[3], directional(&c, P, Gr, D, np), 2e-3);
    check_student_fwd(q, &m, tok, B, T, tag);
    free(Gr); free(D);
    qat_free(q);
    CHECK(qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, 1, 0}, err) == NULL && strstr(err, "experts"),
          "--mos 1 refused: %s", err);
    CHECK(qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, 0, 0, 0, 0, QAT_MOS_MAX + 1, 0}, err) == NULL,
          "--mos %d refused", QAT_MOS_MAX + 1);
    model_free(&m);
}

/* --recompute: the same loss, parameter gradients and input gradient, bit
 * for bit, as keeping every block's activations (3 layers: two blocks
 * recomputed), with 1 and 3 threads; and less memory */
static void check_recompute(int heads, int kv, int nt, int mos)
{
    Model m;
    int B = 2, T = 7, V = 37, N = B * T, C = 12, L = 3;
    random_model(&m, C, 20, L, heads, kv, V, 0);
    char err[OB_ERRLEN];
    QatModel *q[2];
    for (int r = 0; r < 2; r++) {
        q[r] = qat_new(&m, SVID_NMF, &(QatSize){B, T, QAT_OPTIM_FP32, r, 0, 0, 0, mos, 1}, err);
        CHECK(q[r] != NULL, "qat_new recompute %d: %s", r, err);
        if (!q[r]) return;
        CHECK(qat_set_threads(q[r], nt, err) == 0, "threads: %s", err);
    }
    size_t np = qat_num_params(q[0]);
    fill(qat_params(q[0]), np, 1, 0);
    memcpy(qat_params(q[1]), qat_params(q[0]), np * 4);
    int tok[14];
    for (int i = 0; i < N; i++) tok[i] = (int)((urand() + 1) * 0.5 * V) % V;
    QatLossCfg lc = {1.0f, 0.01f};
    QatLoss lo[2];
    for (int r = 0; r < 2; r++) {
        qat_zero_grads(q[r]);
        qat_forward_backward(q[r], tok, B, T, &lc, 1.0f, &lo[r]);
    }
    CHECK(lo[0].loss == lo[1].loss && lo[0].kl == lo[1].kl && lo[0].mse == lo[1].mse, "recompute (%d/%d, %d threads): same loss %.9g %.9g",
          heads, kv, nt, lo[0].loss, lo[1].loss);
    CHECK(!memcmp(qat_grads(q[0]), qat_grads(q[1]), np * 4), "recompute (%d/%d, %d threads): bit-identical parameter gradients",
          heads, kv, nt);
    CHECK(!memcmp(qat_input_grad(q[0]), qat_input_grad(q[1]), (size_t)N * C * 4),
          "recompute (%d/%d, %d threads): bit-identical input gradient", heads, kv, nt);
    long n0, n1;
    CHECK(qat_eval_nll_sum(q[0], tok, B, T, &n0) == qat_eval_nll_sum(q[1], tok, B, T, &n1), "recompute: same eval NLL");
    CHECK(qat_allocated_bytes(q[1]) < qat_allocated_bytes(q[0]), "recompute keeps less: %.0f vs %.0f bytes",
          qat_allocated_bytes(q[1]), qat_allocated_bytes(q[0]));
    qat_free(q[0]);
    qat_free(q[1]);
    model_free(&m);
}

typedef struct { QatModel *q; const int *tok; } Shared;
static void *eval_forever(void *arg)
{
    Shared *s = arg;
    long n;
    for (;;) qat_eval_nll_sum(s->q, s->tok, 2, 16, &n);
    return NULL;
}

/* two threads evaluating one QatModel: the assert ends the child with
 * SIGABRT as soon as their calls overlap (a 30 s alarm if they never do) */
static void check_one_thread(void)
{
#ifndef NDEBUG
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        char err[OB_ERRLEN];
        Model m;
        random_model(&m, 32, 48, 2, 4, 2, 64, 0);
        QatModel *q = qat_new(&m, SVID_NMF, &(QatSize){2, 16, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err);
        if (!q) _exit(3);
        int tok[32];
        for (int i = 0; i < 32; i++) tok[i] = i % 64;
        Shared s = {q, tok};
        pthread_t th;
        if (pthread_create(&th, NULL, eval_forever, &s)) _exit(3);
        eval_forever(&s);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "a QatModel used by two threads at once aborts (status %#x)", st);
#endif
}

int main(void)
{
    printf("finite-difference gradient checks (float32 forward, central differences):\n");
    check_rmsnorm();
    check_rope();
    check_attention(3, 1, "attention dq (GQA 3/1)", "attention dk (GQA 3/1)", "attention dv (GQA 3/1)");
    check_attention(3, 3, "attention dq (MHA 3/3)", "attention dk (MHA 3/3)", "attention dv (MHA 3/3)");
    check_swiglu();
    check_onebit(1);
    check_mos();
    check_whole(3, 1, 0, 1, "GQA untied:");
    check_whole(2, 2, 1, 1, "MHA tied:");
    check_whole_mos(3, 1, 0, "GQA untied:");
    check_whole_mos(2, 2, 1, "MHA tied:");
    check_recompute(3, 1, 1, 0);
    check_recompute(2, 2, 3, 0);
    check_recompute(3, 1, 2, 3); /* a mixture of scales: its router probabilities recomputed too */
    check_ste(); /* after the checks above: it draws from the shared rng */
    check_onebit(0); /* --layernorm off */
    check_whole(3, 1, 0, 0, "GQA untied, no LN:");
    check_whole(2, 2, 1, 0, "MHA tied, no LN:");
    char err[OB_ERRLEN];
    Model m;
    random_model(&m, 12, 20, 2, 3, 1, 37, 0);
    CHECK(qat_new(&m, 7, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err) == NULL, "bad init rejected");
    CHECK(qat_new(&m, SVID_SVD, &(QatSize){2, 17, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err) == NULL, "max_T > seq_len rejected");
    CHECK(qat_new(&m, SVID_SVD, &(QatSize){1 << 20, 16, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err) == NULL && strstr(err, "GiB"), "too big a batch: %s", err);
    m.lin[3].out = 11;
    CHECK(qat_new(&m, SVID_SVD, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err) == NULL && strstr(err, "wo"), "linear shape mismatch: %s", err);
    m.lin[3].out = 12;
    m.wk[5] = NAN;
    CHECK(qat_new(&m, SVID_NMF, &(QatSize){2, 7, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0}, err) == NULL && strstr(err, "wk"), "non-finite teacher weight: %s", err);
    model_free(&m);
    check_one_thread();
    return test_done("test_qat_grad");
}
