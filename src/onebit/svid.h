/* src/onebit/svid.h -- (reentrant; any thread) Sign-Value-Independent Decomposition (OneBit's SVID) and the
 * per-layer statistics behind `onebit-tui inspect`:
 *
 *     W ≈ sign(W) ⊙ (a·bᵀ),   |W| ≈ a·bᵀ rank-1 nonnegative,
 *
 * which initialises a student linear with h = a (output dim) and g = b
 * (input dim). Three ways to get a, b:
 *   SVID_NMF   rank-1 nonnegative factorisation by alternating nonnegative
 *              least squares (closed forms for rank 1), started from the
 *              leading singular pair; the paper's default.
 *   SVID_SVD   leading singular pair of |W| by power iteration, taken
 *              nonnegative (Perron-Frobenius), scaled by σ: a = √σ·u, b = √σ·v.
 *   SVID_XNOR  a = per-row mean|W|, b = 1 (sign × row scale, XNOR-style).
 *   SVID_SIGN  a = 1, b = 1: sign(W) alone, no value information (the
 *              sign-only baseline of OneBit's initialisation ablation).
 *   SVID_ARB   ARB-style (ARB-LLM's row-column refinement): with S = sign(W)
 *              fixed, alternating closed-form least squares for the row
 *              and the column scale, minimising ‖W − diag(a)·S·diag(b)‖_F
 *              directly, from the best of NMF, SVD and XNOR, until the
 *              error stops falling; never worse than any of them. (The
 *              objective is ‖|W| − abᵀ‖_F, SVID's own: it ends at the
 *              same optimum, checked rather than assumed.)
 * For a nonnegative rank-1 fit ‖W − sign(W)⊙(abᵀ)‖_F = ‖|W| − abᵀ‖_F, so the
 * errors below are also the PTQ errors of the student weight. */
#ifndef OB_SVID_H
#define OB_SVID_H

#include "model/model.h"

typedef enum { SVID_NMF = 0, SVID_SVD = 1, SVID_XNOR = 2, SVID_SIGN = 3, SVID_ARB = 4 } SvidMethod;

/* "nmf" | "svd" | "xnor" | "sign" | "arb" -> 0, else -1 */
int svid_method_parse(const char *s, SvidMethod *m);
const char *svid_method_name(SvidMethod m);
/* 1 for one of the SvidMethod values, else 0 (a number read from a file or
 * given by a caller) */
int svid_method_ok(SvidMethod m);

/* stopping rules (relative change of the fit / of the singular vector) */
#define SVID_TOL 1e-7
#define SVID_MAX_ITERS 500
/* SVID_ARB: at most this many rounds; a round that lowers the error by
 * less than this fraction ends them */
#define SVID_ARB_ROUNDS 100
#define SVID_ARB_TOL 1e-12

typedef struct {
    int iters;       /* iterations used (0 for XNOR; ARB: its rounds) */
    double rel_err;  /* ‖|W| − a bᵀ‖_F / ‖W‖_F (0 when W = 0) */
} SvidInfo;

/* rank-1 nonnegative factorisation |W| ≈ a·bᵀ; W (rows, cols) row-major;
 * a (rows) -> h, b (cols) -> g. Deterministic. Fails (-1, err) on bad sizes
 * or non-finite weights. info may be NULL. */
int svid_rank1(const float *W, int rows, int cols, SvidMethod m, float *a, float *b, SvidInfo *info, char *err);

#define SVID_BINS 64

typedef struct {
    char name[32];               /* "layers.3.wq" */
    int layer, kind;             /* kind: LIN_Q .. LIN_UP */
    int rows, cols;              /* out, in */
    double nmf_err, svd_err, xnor_err; /* relative Frobenius errors */
    double pos_frac;             /* fraction of w >= 0, whole matrix */
    double row_pos_min, row_pos_max, row_pos_std; /* of the per-row fractions */
    double col_pos_min, col_pos_max, col_pos_std; /* of the per-column fractions */
    double g_min, g_max, h_min, h_max;            /* of the `init` factorisation */
    double bpw;                  /* 1 + 16(m+n)/(mn) */
    int bins;                    /* SVID_BINS */
    float abs_lo, abs_hi, w_lo, w_hi; /* histogram ranges */
    long abs_hist[SVID_BINS], w_hist[SVID_BINS];
} LayerStats;

/* statistics of one (rows, cols) matrix; g/h ranges from method `init` */
int svid_layer_stats(const float *W, int rows, int cols, SvidMethod init, LayerStats *st, char *err);

/* all L*7 linears of a dense model (out has L*7 entries in LIN_ order),
 * layers in parallel on `threads` threads (the caller and threads-1 helper
 * jobs, base/job.h); progress(user, done, total) may be NULL and is called
 * from any of them (serialised by a mutex); when it returns nonzero the
 * remaining layers are skipped and the call fails ("cancelled") */
int svid_model_stats(const Model *m, int threads, SvidMethod init, LayerStats *out,
                     int (*progress)(void *user, int done, int total), void *user, char *err);
/* the rank-1 factors of every linear of a dense model, linear i (layer-major,
 * model.h order) into h[i] (out) and g[i] (in), on up to `threads` threads
 * as svid_model_stats. 0, or -1 with err naming the linear */
int svid_model_rank1(const Model *m, SvidMethod init, int threads, float *const *h, float *const *g, char *err);

/* the dense (out, in) weight of linear k of layer l of a dense model (in
 * the FP32 arena, or converted from a mapped teacher into *tmp, which the
 * caller frees: model_lin_f32), NULL if not dense; and its name
 * ("layers.l.wq") */
const float *svid_model_weight(const Model *m, int l, int k, int *rows, int *cols, float **tmp);
void svid_layer_name(char *buf, size_t n, int l, int k);

#endif
