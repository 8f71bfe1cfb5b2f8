/* src/onebit/svid.c -- rank-1 nonnegative factorisations of |W| (NMF by
 * alternating nonnegative least squares, SVD by power iteration, XNOR row
 * means) and the per-layer statistics of `inspect` (see svid.h). All sums in
 * double. Every function is reentrant; svid_model_stats fans out to helper
 * jobs (base/job.h) and returns when they are joined. */
#include "onebit/svid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/job.h"

int svid_method_parse(const char *s, SvidMethod *m)
{
    if (!s) return -1;
    if (!strcmp(s, "nmf")) *m = SVID_NMF;
    else if (!strcmp(s, "svd")) *m = SVID_SVD;
    else if (!strcmp(s, "xnor")) *m = SVID_XNOR;
    else if (!strcmp(s, "sign")) *m = SVID_SIGN;
    else if (!strcmp(s, "arb")) *m = SVID_ARB;
    else return -1;
    return 0;
}

const char *svid_method_name(SvidMethod m)
{
    switch (m) {
    case SVID_NMF: return "nmf";
    case SVID_SVD: return "svd";
    case SVID_XNOR: return "xnor";
    case SVID_SIGN: return "sign";
    case SVID_ARB: return "arb";
    }
    return "?";
}

/* y (rows) = |W| x (cols) */
static void absmv(const float *W, int rows, int cols, const double *x, double *y)
{
    for (int i = 0; i < rows; i++) {
        const float *w = W + (size_t)i * cols;
        double s = 0;
        for (int j = 0; j < cols; j++) s += fabsf(w[j]) * x[j];
        y[i] = s;
    }
}

/* y (cols) = |W|ᵀ x (rows) */
static void abstmv(const float *W, int rows, int cols, const double *x, double *y)
{
    memset(y, 0, (size_t)cols * sizeof(double));
    for (int i = 0; i < rows; i++) {
        const float *w = W + (size_t)i * cols;
        double xi = x[i];
        if (xi == 0) continue;
        for (int j = 0; j < cols; j++) y[j] += fabsf(w[j]) * xi;
    }
}

static double dot(const double *x, const double *y, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

/* ‖x/‖x‖ − y/‖y‖‖_∞: the change of a direction between iterations */
static double dir_change(const double *x, const double *y, int n)
{
    double nx = sqrt(dot(x, x, n)), ny = sqrt(dot(y, y, n)), d = 0;
    if (nx == 0 || ny == 0) return nx == ny ? 0 : 1;
    for (int i = 0; i < n; i++) {
        double e = fabs(x[i] / nx - y[i] / ny);
        if (e > d) d = e;
    }
    return d;
}

/* ‖|W| − a bᵀ‖_F² exactly, one pass */
static double fit_err2(const float *W, int rows, int cols, const double *a, const double *b)
{
    double s = 0;
    for (int i = 0; i < rows; i++) {
        const float *w = W + (size_t)i * cols;
        for (int j = 0; j < cols; j++) {
            double d = fabsf(w[j]) - a[i] * b[j];
            s += d * d;
        }
    }
    return s;
}

/* leading singular pair of |W| by power iteration from the column means;
 * the iterates stay nonnegative (Perron-Frobenius). a = √σ u, b = √σ v. */
static int power_svd(const float *W, int rows, int cols, double *a, double *b)
{
    double *v = ob_malloc((size_t)cols * sizeof(double)), *vold = ob_malloc((size_t)cols * sizeof(double));
    double *u = ob_malloc((size_t)rows * sizeof(double));
    for (int i = 0; i < rows; i++) u[i] = 1.0;
    abstmv(W, rows, cols, u, vold); /* column sums of |W|: a nonnegative start */
    double nv = sqrt(dot(vold, vold, cols));
    if (nv == 0) nv = 1, vold[0] = 1;
    for (int j = 0; j < cols; j++) v[j] = vold[j] / nv;
    int it = 0;
    double sigma = 0;
    while (it < SVID_MAX_ITERS) {
        it++;
        memcpy(vold, v, (size_t)cols * sizeof(double));
        absmv(W, rows, cols, v, u);
        double nu = sqrt(dot(u, u, rows));
        if (nu == 0) { sigma = 0; break; }
        for (int i = 0; i < rows; i++) u[i] /= nu;
        abstmv(W, rows, cols, u, v);
        sigma = sqrt(dot(v, v, cols));
        for (int j = 0; j < cols; j++) v[j] /= sigma;
        if (dir_change(v, vold, cols) <= SVID_TOL) break;
    }
    double s = sqrt(sigma);
    for (int i = 0; i < rows; i++) a[i] = sigma > 0 ? s * u[i] : 0;
    for (int j = 0; j < cols; j++) b[j] = sigma > 0 ? s * v[j] : 1;
    free(u); free(v); free(vold);
    return it;
}

/* the scale balanced between the factors, ‖a‖ = ‖b‖ (the product unchanged) */
static void balance(double *a, int rows, double *b, int cols)
{
    double na = sqrt(dot(a, a, rows)), nb = sqrt(dot(b, b, cols));
    if (na > 0 && nb > 0) {
        double s = sqrt(nb / na);
        for (int i = 0; i < rows; i++) a[i] *= s;
        for (int j = 0; j < cols; j++) b[j] /= s;
    }
}

/* rank-1 ANLS: a = max(0, |W| b / bᵀb), b = max(0, |W|ᵀ a / aᵀa), from the
 * row/column means (a_i = mean_j |w_ij|, b = column means / overall mean) */
static int anls_nmf(const float *W, int rows, int cols, double *a, double *b)
{
    double *bold = ob_malloc((size_t)cols * sizeof(double));
    double *ones = ob_malloc((size_t)(rows > cols ? rows : cols) * sizeof(double));
    for (int k = 0; k < (rows > cols ? rows : cols); k++) ones[k] = 1.0;
    absmv(W, rows, cols, ones, a);
    abstmv(W, rows, cols, ones, b);
    double tot = 0;
    for (int i = 0; i < rows; i++) tot += a[i];
    free(ones);
    int it = 0;
    if (tot == 0) {
        for (int i = 0; i < rows; i++) a[i] = 0;
        for (int j = 0; j < cols; j++) b[j] = 1;
        free(bold);
        return 0;
    }
    double mean = tot / ((double)rows * cols);
    for (int i = 0; i < rows; i++) a[i] /= cols;
    for (int j = 0; j < cols; j++) b[j] /= rows * mean;
    while (it < SVID_MAX_ITERS) {
        it++;
        memcpy(bold, b, (size_t)cols * sizeof(double));
        double bb = dot(b, b, cols);
        absmv(W, rows, cols, b, a);
        for (int i = 0; i < rows; i++) a[i] = a[i] > 0 ? a[i] / bb : 0;
        double aa = dot(a, a, rows);
        if (aa == 0) break; /* unreachable for a nonzero |W| from a positive b */
        abstmv(W, rows, cols, a, b);
        for (int j = 0; j < cols; j++) b[j] = b[j] > 0 ? b[j] / aa : 0;
        if (dir_change(b, bold, cols) <= SVID_TOL) break;
    }
    balance(a, rows, b, cols);
    free(bold);
    return it;
}

/* XNOR's factors: a = row means of |W|, b = 1 */
static void xnor_rows(const float *W, int rows, int cols, double *a, double *b)
{
    for (int i = 0; i < rows; i++) {
        const float *w = W + (size_t)i * cols;
        double s = 0;
        for (int j = 0; j < cols; j++) s += fabsf(w[j]);
        a[i] = s / cols;
    }
    for (int j = 0; j < cols; j++) b[j] = 1;
}

/* ARB's candidates: ca, cb rounded to float (what svid_rank1 returns) into
 * ra, rb; when their error ‖|W| − abᵀ‖_F² is below *best, they become the
 * best (a, b). Returns the error. */
typedef struct { const float *W; int rows, cols; double *a, *b, *ra, *rb, best; } ArbBest;
static double arb_offer(ArbBest *k, const double *ca, const double *cb)
{
    for (int i = 0; i < k->rows; i++) k->ra[i] = (float)ca[i];
    for (int j = 0; j < k->cols; j++) k->rb[j] = (float)cb[j];
    double e = fit_err2(k->W, k->rows, k->cols, k->ra, k->rb);
    if (e < k->best) {
        k->best = e;
        memcpy(k->a, k->ra, (size_t)k->rows * sizeof(double));
        memcpy(k->b, k->rb, (size_t)k->cols * sizeof(double));
    }
    return e;
}

/* ARB-style alternating refinement of the row and column scales (ARB-LLM's
 * row-column variant) with S = sign(W) fixed: ‖W − diag(a)·S·diag(b)‖_F² =
 * ‖|W| − abᵀ‖_F², minimised over one factor at a time in closed form,
 *     a_i = Σ_j W_ij S_ij b_j / Σ_j b_j²,   b_j = Σ_i W_ij S_ij a_i / Σ_i a_i²,
 * each round an exact minimisation, so the error never rises. Started from
 * the best (in the float factors' error) of NMF, SVD and XNOR; rounds until
 * the float factors' error stops falling or SVID_ARB_ROUNDS; a, b receive the
 * best factors seen (balanced, ‖a‖ = ‖b‖), so the result is never worse
 * than any of the three starts. Returns the rounds. */
static int arb_refine(const float *W, int rows, int cols, double *a, double *b)
{
    size_t nr = (size_t)rows * sizeof(double), nc = (size_t)cols * sizeof(double);
    double *ca = ob_malloc(nr), *cb = ob_malloc(nc);
    ArbBest k = {W, rows, cols, a, b, ob_malloc(nr), ob_malloc(nc), INFINITY};
    for (int s = 0; s < 3; s++) { /* the starts: a, b keep the best one's rounded factors */
        if (s == 0) anls_nmf(W, rows, cols, ca, cb);
        else if (s == 1) power_svd(W, rows, cols, ca, cb);
        else xnor_rows(W, rows, cols, ca, cb);
        arb_offer(&k, ca, cb);
    }
    memcpy(ca, a, nr);
    memcpy(cb, b, nc);
    int r = 0;
    double prev = k.best;
    while (r < SVID_ARB_ROUNDS && k.best > 0) {
        r++;
        double bb = dot(cb, cb, cols);
        if (bb == 0) break;
        absmv(W, rows, cols, cb, ca); /* Σ_j W_ij S_ij b_j = Σ_j |W_ij| b_j */
        for (int i = 0; i < rows; i++) ca[i] /= bb;
        double aa = dot(ca, ca, rows);
        if (aa == 0) break;
        abstmv(W, rows, cols, ca, cb);
        for (int j = 0; j < cols; j++) cb[j] /= aa;
        balance(ca, rows, cb, cols);
        double e = arb_offer(&k, ca, cb);
        if (!(e < prev * (1 - SVID_ARB_TOL))) break; /* stopped falling */
        prev = e;
    }
    free(ca); free(cb); free(k.ra); free(k.rb);
    return r;
}

int svid_method_ok(SvidMethod m) { return (int)m >= SVID_NMF && (int)m <= SVID_ARB; }

int svid_rank1(const float *W, int rows, int cols, SvidMethod m, float *a, float *b, SvidInfo *info, char *err)
{
    if (rows <= 0 || cols <= 0) { ob_seterr(err, "svid: bad shape (%d, %d)", rows, cols); return -1; }
    if (!svid_method_ok(m)) {
        ob_seterr(err, "svid: unknown method %d", (int)m);
        return -1;
    }
    double norm2 = 0;
    size_t n = (size_t)rows * cols;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(W[k])) { ob_seterr(err, "svid: weight (%zu, %zu) is not finite", k / cols, k % cols); return -1; }
        norm2 += (double)W[k] * W[k];
    }
    double *da = ob_malloc((size_t)rows * sizeof(double)), *db = ob_malloc((size_t)cols * sizeof(double));
    int iters = 0;
    if (m == SVID_SIGN) {
        for (int i = 0; i < rows; i++) da[i] = 1;
        for (int j = 0; j < cols; j++) db[j] = 1;
    } else if (m == SVID_XNOR) {
        xnor_rows(W, rows, cols, da, db);
    } else if (m == SVID_ARB) {
        iters = arb_refine(W, rows, cols, da, db);
    } else if (m == SVID_SVD) {
        iters = power_svd(W, rows, cols, da, db);
    } else {
        iters = anls_nmf(W, rows, cols, da, db);
    }
    for (int i = 0; i < rows; i++) a[i] = (float)da[i];
    for (int j = 0; j < cols; j++) b[j] = (float)db[j];
    if (info) {
        info->iters = iters;
        /* the error of the float factors actually returned */
        for (int i = 0; i < rows; i++) da[i] = a[i];
        for (int j = 0; j < cols; j++) db[j] = b[j];
        info->rel_err = norm2 > 0 ? sqrt(fit_err2(W, rows, cols, da, db) / norm2) : 0;
    }
    free(da); free(db);
    return 0;
}

/* ---- statistics ---------------------------------------------------------- */

static void min_max_std(const double *v, int n, double *mn, double *mx, double *sd)
{
    double lo = v[0], hi = v[0], s = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
        s += v[i];
    }
    double mean = s / n;
    for (int i = 0; i < n; i++) ss += (v[i] - mean) * (v[i] - mean);
    *mn = lo; *mx = hi; *sd = sqrt(ss / n);
}

static void vec_range(const float *v, int n, double *mn, double *mx)
{
    float lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    *mn = lo; *mx = hi;
}

static int bin_of(float x, float lo, float hi, int bins)
{
    if (!(hi > lo)) return 0;
    int k = (int)((double)(x - lo) / ((double)hi - lo) * bins);
    return k < 0 ? 0 : k >= bins ? bins - 1 : k;
}

int svid_layer_stats(const float *W, int rows, int cols, SvidMethod init, LayerStats *st, char *err)
{
    char name[sizeof st->name];
    int layer = st->layer, kind = st->kind;
    memcpy(name, st->name, sizeof name);
    memset(st, 0, sizeof *st);
    memcpy(st->name, name, sizeof name);
    st->name[sizeof st->name - 1] = 0;
    st->layer = layer;
    st->kind = kind;
    st->rows = rows;
    st->cols = cols;
    float *a = ob_malloc((size_t)rows * sizeof(float)), *b = ob_malloc((size_t)cols * sizeof(float));
    const SvidMethod ms[3] = {SVID_NMF, SVID_SVD, SVID_XNOR};
    double *errs[3] = {&st->nmf_err, &st->svd_err, &st->xnor_err};
    /* the init method last, so a and b hold its factors (one more call when
     * it is none of the three) */
    int order[3], k = 0;
    for (int i = 0; i < 3; i++) if (ms[i] != init) order[k++] = i;
    if (k < 3) order[k] = (int)init;
    for (int i = 0; i < 3; i++) {
        SvidInfo info;
        if (svid_rank1(W, rows, cols, ms[order[i]], a, b, &info, err)) goto fail;
        *errs[order[i]] = info.rel_err;
    }
    if (k == 3 && svid_rank1(W, rows, cols, init, a, b, NULL, err)) goto fail;
    vec_range(b, cols, &st->g_min, &st->g_max);
    vec_range(a, rows, &st->h_min, &st->h_max);
    /* sign balance */
    double *rowf = ob_malloc((size_t)rows * sizeof(double)), *colf = ob_calloc((size_t)cols, sizeof(double));
    size_t pos = 0;
    float wlo = W[0], whi = W[0], ahi = 0;
    for (int i = 0; i < rows; i++) {
        const float *w = W + (size_t)i * cols;
        long rp = 0;
        for (int j = 0; j < cols; j++) {
            if (w[j] >= 0) { rp++; colf[j] += 1; }
            if (w[j] < wlo) wlo = w[j];
            if (w[j] > whi) whi = w[j];
            if (fabsf(w[j]) > ahi) ahi = fabsf(w[j]);
        }
        pos += rp;
        rowf[i] = (double)rp / cols;
    }
    for (int j = 0; j < cols; j++) colf[j] /= rows;
    st->pos_frac = (double)pos / ((double)rows * cols);
    min_max_std(rowf, rows, &st->row_pos_min, &st->row_pos_max, &st->row_pos_std);
    min_max_std(colf, cols, &st->col_pos_min, &st->col_pos_max, &st->col_pos_std);
    free(rowf);
    free(colf);
    /* histograms */
    st->bins = SVID_BINS;
    st->abs_lo = 0; st->abs_hi = ahi;
    st->w_lo = wlo; st->w_hi = whi;
    for (size_t q = 0; q < (size_t)rows * cols; q++) {
        st->abs_hist[bin_of(fabsf(W[q]), 0, ahi, SVID_BINS)]++;
        st->w_hist[bin_of(W[q], wlo, whi, SVID_BINS)]++;
    }
    st->bpw = 1.0 + 16.0 * ((double)rows + cols) / ((double)rows * cols);
    free(a); free(b);
    return 0;
fail:
    free(a); free(b);
    return -1;
}

void svid_layer_name(char *buf, size_t n, int l, int k)
{
    snprintf(buf, n, "layers.%d.%s", l, model_lin_names[k]);
}

const float *svid_model_weight(const Model *m, int l, int k, int *rows, int *cols, float **tmp)
{
    const Linear *L = &m->lin[(size_t)l * LIN_PER_LAYER + k];
    *rows = L->out;
    *cols = L->in;
    return model_lin_f32(m, l * LIN_PER_LAYER + k, tmp);
}

/* the per-linear work over a whole model: the statistics (stats) or the
 * rank-1 factors (h[i], g[i]) of every linear */
typedef struct {
    const Model *m;
    SvidMethod init;
    LayerStats *stats;
    float *const *h, *const *g;
} ModelWork;

/* one linear (an item of job_for_items) */
static int model_item(void *ctx, int i, char *err)
{
    const ModelWork *j = ctx;
    int l = i / LIN_PER_LAYER, k = i % LIN_PER_LAYER, rows = 0, cols = 0;
    float *tmp;
    const float *W = svid_model_weight(j->m, l, k, &rows, &cols, &tmp);
    char name[64], why[OB_ERRLEN];
    svid_layer_name(name, sizeof name, l, k);
    int rc;
    if (j->stats) {
        LayerStats *st = &j->stats[i];
        svid_layer_name(st->name, sizeof st->name, l, k);
        st->layer = l;
        st->kind = k;
        rc = svid_layer_stats(W, rows, cols, j->init, st, why);
    } else {
        rc = svid_rank1(W, rows, cols, j->init, j->h[i], j->g[i], NULL, why);
    }
    free(tmp);
    if (!rc) return 0;
    ob_seterr(err, "%s: %s", name, why);
    return -1;
}

/* every linear of m dense; else -1 with err = msg */
static int model_dense(const Model *m, const char *msg, char *err)
{
    for (int i = 0; i < m->cfg.n_layers * LIN_PER_LAYER; i++) {
        if (!model_lin_dense(m, i)) {
            ob_seterr(err, "%s", msg);
            return -1;
        }
    }
    return 0;
}

int svid_model_rank1(const Model *m, SvidMethod init, int threads, float *const *h, float *const *g, char *err)
{
    if (model_dense(m, "quantize needs a dense teacher", err)) return -1;
    ModelWork j = {m, init, NULL, h, g};
    return job_for_items("quantize", threads, m->cfg.n_layers * LIN_PER_LAYER, model_item, &j, NULL, NULL, err) ? -1 : 0;
}

int svid_model_stats(const Model *m, int threads, SvidMethod init, LayerStats *out,
                     int (*progress)(void *user, int done, int total), void *user, char *err)
{
    if (model_dense(m, "layer statistics need a dense (teacher) model", err)) return -1;
    ModelWork j = {m, init, out, NULL, NULL};
    int rc = job_for_items("layer statistics", threads, m->cfg.n_layers * LIN_PER_LAYER, model_item, &j, progress, user, err);
    if (rc > 0) ob_seterr(err, "layer statistics cancelled");
    return rc ? -1 : 0;
}
