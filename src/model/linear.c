/* src/model/linear.c -- a linear projection: OpenBLAS for the dense kind in
 * FP32, tiles of converted rows (N > 1) or GEMV rows on the global pool
 * (N = 1) for the dense kind in another precision, the ops table for the
 * others (see linear.h). Any thread. */
#include "model/linear.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/pool.h"

size_t linear_stored_row(const Linear *l, size_t r)
{
    if (l->rope_heads <= 0) return r;
    size_t hd = (size_t)l->out / (size_t)l->rope_heads, h = r / hd, i = r % hd;
    /* interleaved row h*hd + 2i' + j <- rotate-half row h*hd + j*(hd/2) + i' */
    return h * hd + (i & 1) * (hd / 2) + i / 2;
}

void linear_w_rows_f32(int type, const void *w, size_t r0, size_t n, size_t cols, float *out)
{
    const KernDec *d = kern_dec_default();
    size_t rb = llama_dtype_bytes(type, cols);
    const void *src = (const char *)w + r0 * rb;
    switch (type) {
    case LINEAR_W_F32: memcpy(out, src, n * cols * sizeof(float)); break;
    case LINEAR_W_F16: d->from_f16(src, out, n * cols); break;
    case LINEAR_W_BF16: d->from_bf16(src, out, n * cols); break;
    case LINEAR_W_Q8_0: kern_q8_0_to_f32(src, out, n * cols); break;
    default: llama_dequant(type, src, out, n * cols); break;
    }
}

void linear_rows_f32(const Linear *l, size_t r0, size_t n, float *out)
{
    size_t in = (size_t)l->in;
    if (l->w) { memcpy(out, l->w + r0 * in, n * in * sizeof(float)); return; }
    if (l->rope_heads <= 0) { linear_w_rows_f32(l->wtype, l->wd, r0, n, in, out); return; }
    for (size_t i = 0; i < n; i++) linear_w_rows_f32(l->wtype, l->wd, linear_stored_row(l, r0 + i), 1, in, out + i * in);
}

void linear_gemv_rows(const KernDec *d, int type, const void *W, const float *x, float *y, int cols, int r0, int r1)
{
    switch (type) {
    case LINEAR_W_F16: d->gemv_f16(W, x, y, cols, r0, r1); return;
    case LINEAR_W_BF16: d->gemv_bf16(W, x, y, cols, r0, r1); return;
    case LINEAR_W_Q8_0: d->gemv_q8_0(W, x, y, cols, r0, r1); return;
    case LINEAR_W_F32: kern_gemv_rows_ref(W, x, y, cols, r0, r1); return;
    }
    /* the other dtypes: a row converted at a time (FP32 scratch of cols) */
    float *row = ob_malloc((size_t)cols * sizeof(float));
    for (int r = r0; r < r1; r++) {
        linear_w_rows_f32(type, W, (size_t)r, 1, (size_t)cols, row);
        float s = 0.0f;
        for (int c = 0; c < cols; c++) s += row[c] * x[c];
        y[r] = s;
    }
    free(row);
}

/* GEMV rows over the stored weights, split over a pool */
typedef struct {
    const KernDec *d;
    LinearRowsF32 f32_rows;
    const void *W;
    const float *x;
    float *y;
    int type, rows, cols, ntasks;
} GemvCtx;

static void gemv_task(void *vc, int t)
{
    const GemvCtx *c = vc;
    int r0 = (int)((long)c->rows * t / c->ntasks), r1 = (int)((long)c->rows * (t + 1) / c->ntasks);
    if (c->f32_rows && c->type == LINEAR_W_F32) c->f32_rows(c->W, c->x, c->y, c->cols, r0, r1);
    else linear_gemv_rows(c->d, c->type, c->W, c->x, c->y, c->cols, r0, r1);
}

void linear_gemv_pool(Pool *p, const KernDec *d, LinearRowsF32 f32_rows, int type, const void *W, const float *x,
                      float *y, int rows, int cols)
{
    GemvCtx c = {d, f32_rows, W, x, y, type, rows, cols, 1};
    if ((double)rows * cols < (1 << 18)) { gemv_task(&c, 0); return; }
    Pool *own = p ? NULL : pool_global_ref();
    int T = pool_threads(p ? p : own);
    c.ntasks = T > 1 ? 4 * T : 1; /* a few contiguous chunks per thread, claimed dynamically */
    if (c.ntasks > rows) c.ntasks = rows;
    pool_run(p ? p : own, gemv_task, &c, c.ntasks);
    pool_free(own);
}

/* y (rows) = W x, W of type stored, on the global pool with the default helpers */
static void gemv_pooled(int type, const void *W, const float *x, float *y, int rows, int cols)
{
    linear_gemv_pool(NULL, kern_dec_default(), NULL, type, W, x, y, rows, cols);
}

/* a few tokens at once: each task converts blocks of SMALL_ROWS rows to
 * FP32 (a scratch that stays in cache) and takes the dot products of every
 * token with them (KernDec score_f32), so the stored rows are read once for
 * all N tokens, on the pool's threads */
#define SMALL_ROWS 16
typedef struct {
    const Linear *l;
    const KernDec *d;
    const float *x;
    float *y;
    int N, ntasks;
} SmallCtx;

static void small_task(void *vc, int t)
{
    const SmallCtx *c = vc;
    const Linear *l = c->l;
    int r0 = (int)((long)l->out * t / c->ntasks), r1 = (int)((long)l->out * (t + 1) / c->ntasks);
    float *tile = ob_aligned_alloc(64, (size_t)SMALL_ROWS * l->in * sizeof(float)), dot[SMALL_ROWS];
    for (int b = r0; b < r1; b += SMALL_ROWS) {
        int n = r1 - b < SMALL_ROWS ? r1 - b : SMALL_ROWS;
        linear_rows_f32(l, (size_t)b, (size_t)n, tile);
        for (int k = 0; k < c->N; k++) {
            c->d->score_f32(c->x + (size_t)k * l->in, tile, (size_t)l->in, l->in, n, 1.0f, dot);
            memcpy(c->y + (size_t)k * l->out + b, dot, (size_t)n * sizeof(float));
        }
    }
    free(tile);
}

static void small_forward(const Linear *l, const float *x, float *y, int N)
{
    Pool *p = pool_global_ref();
    int T = pool_threads(p);
    SmallCtx c = {l, kern_dec_default(), x, y, N, T > 1 ? 4 * T : 1};
    if (c.ntasks > (l->out + SMALL_ROWS - 1) / SMALL_ROWS) c.ntasks = (l->out + SMALL_ROWS - 1) / SMALL_ROWS;
    pool_run(p, small_task, &c, c.ntasks);
    pool_free(p);
}

void linear_forward_tiles(const Linear *l, LinearGemmFn gemm, void *ctx, const float *x, float *y, int N)
{
    size_t rows = LINEAR_TILE_BYTES / ((size_t)l->in * sizeof(float));
    if (rows < 1) rows = 1;
    if (rows > (size_t)l->out) rows = (size_t)l->out;
    float *tile = ob_aligned_alloc(64, rows * l->in * sizeof(float));
    for (size_t r0 = 0; r0 < (size_t)l->out; r0 += rows) {
        size_t n = (size_t)l->out - r0 < rows ? (size_t)l->out - r0 : rows;
        linear_rows_f32(l, r0, n, tile); // (n, in)
        gemm(ctx, N, (int)n, l->in, x, tile, y + r0, l->out);
    }
    free(tile);
}

/* LinearGemmFn with OpenBLAS */
static void sgemm_nt(void *ctx, int N, int n, int in, const float *x, const float *tile, float *y, int ldc)
{
    (void)ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, n, in, 1.0f, x, in, tile, in, 0.0f, y, ldc);
}

/* a dense linear in another precision than FP32 */
static void dense_stored_forward(const Linear *l, const float *x, float *y, int N)
{
    if (N == 1) {
        if (l->rope_heads <= 0) { gemv_pooled(l->wtype, l->wd, x, y, l->out, l->in); return; }
        /* the stored rows' results, then each row's from its stored row */
        float *ys = ob_malloc((size_t)l->out * sizeof(float));
        gemv_pooled(l->wtype, l->wd, x, ys, l->out, l->in);
        for (int r = 0; r < l->out; r++) y[r] = ys[linear_stored_row(l, (size_t)r)];
        free(ys);
        return;
    }
    if (N <= LINEAR_SMALL_N) { small_forward(l, x, y, N); return; }
    linear_forward_tiles(l, sgemm_nt, NULL, x, y, N);
}

void linear_forward(const Linear *l, const float *x, float *y, int N)
{
    if (l->kind != LINEAR_DENSE) {
        l->ops->forward(l->impl, x, y, N);
        return;
    }
    if (!l->w) dense_stored_forward(l, x, y, N);
    else if (N == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, l->out, l->in, 1.0f, l->w, l->in, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y, l->out);
}

#define LINEAR_MANY_MAX 8

void linear_forward_many(const Linear *const *ls, int n, const float *x, float *const *ys, int N)
{
    int same = n >= 2 && n <= LINEAR_MANY_MAX && ls[0]->kind != LINEAR_DENSE && ls[0]->ops->forward_many;
    for (int i = 1; same && i < n; i++) same = ls[i]->kind == ls[0]->kind && ls[i]->ops == ls[0]->ops;
    if (!same) {
        for (int i = 0; i < n; i++) linear_forward(ls[i], x, ys[i], N);
        return;
    }
    const void *impls[LINEAR_MANY_MAX];
    for (int i = 0; i < n; i++) impls[i] = ls[i]->impl;
    ls[0]->ops->forward_many(impls, n, x, ys, N);
}

void linear_head(const Linear *l, const void *W, int wtype, const float *x, float *y, int rows, int cols)
{
    if (l->kind != LINEAR_DENSE && l->ops->head) l->ops->head(l->impl, W, wtype, x, y, rows, cols);
    else if (wtype == LINEAR_W_F32) cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, W, cols, x, 1, 0.0f, y, 1);
    else if (l->kind == LINEAR_DENSE && !l->w) gemv_pooled(wtype, W, x, y, rows, cols); /* a mapped teacher's */
    else linear_gemv_rows(kern_dec_default(), wtype, W, x, y, cols, 0, rows);
}

const KernExec *linear_exec(const Linear *l)
{
    return l->kind != LINEAR_DENSE && l->ops->exec ? l->ops->exec(l->impl) : NULL;
}
