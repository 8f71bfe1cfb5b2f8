/* linear.c -- dispatch of a linear projection to OpenBLAS (dense) or the
 * packed 1-bit kernels (see linear.h). */
#include "model/linear.h"

#include <cblas.h>

#include "onebit/bitlinear.h"
#include "kernels/kernels.h"
#include "base/pool.h"
#include <stdlib.h>

typedef struct {
    const float *W, *x;
    float *y;
    int rows, cols, ntasks;
} GemvCtx;

static void gemv_task(void *vc, int t)
{
    const GemvCtx *c = vc;
    int r0 = (int)((long)c->rows * t / c->ntasks), r1 = (int)((long)c->rows * (t + 1) / c->ntasks);
    kern_gemv_rows(c->W, c->x, c->y, c->cols, r0, r1);
}

void linear_gemv_pool(const float *W, const float *x, float *y, int rows, int cols)
{
    Pool *p = pool_global();
    int T = pool_threads(p);
    /* a few contiguous chunks per thread, claimed dynamically */
    GemvCtx c = {W, x, y, rows, cols, T > 1 && (double)rows * cols >= 1 << 18 ? 4 * T : 1};
    if (c.ntasks > rows) c.ntasks = rows;
    pool_run(p, gemv_task, &c, c.ntasks);
}

void linear_forward(const Linear *l, const float *x, float *y, int N)
{
    switch (l->kind) {
    case LINEAR_DENSE:
        if (N == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, l->out, l->in, 1.0f, l->w, l->in, x, 1, 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, l->out, l->in, 1.0f, x, l->in,
                        l->w, l->in, 0.0f, y, l->out);
        return;
    case LINEAR_ONEBIT:
        bitlinear_forward(l->bl, x, y, N);
        return;
    }
    abort(); /* unreachable: every kind is handled above */
}
