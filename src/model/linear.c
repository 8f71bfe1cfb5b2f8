/* src/model/linear.c -- a linear projection: OpenBLAS for the dense kind,
 * the ops table for the others (see linear.h). Any thread. */
#include "model/linear.h"

#include <cblas.h>
#include <stdlib.h>

void linear_forward(const Linear *l, const float *x, float *y, int N)
{
    if (l->kind != LINEAR_DENSE) {
        l->ops->forward(l->impl, x, y, N);
        return;
    }
    if (N == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, l->out, l->in, 1.0f, l->w, l->in, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y, l->out);
}

void linear_head(const Linear *l, const void *W, int wtype, const float *x, float *y, int rows, int cols)
{
    if (l->kind != LINEAR_DENSE && l->ops->head) l->ops->head(l->impl, W, wtype, x, y, rows, cols);
    else if (wtype == LINEAR_W_F16) kern_dec_default()->gemv_f16(W, x, y, cols, 0, rows);
    else if (wtype == LINEAR_W_Q8_0) kern_dec_default()->gemv_q8_0(W, x, y, cols, 0, rows);
    else cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, W, cols, x, 1, 0.0f, y, 1);
}

const KernExec *linear_exec(const Linear *l)
{
    return l->kind != LINEAR_DENSE && l->ops->exec ? l->ops->exec(l->impl) : NULL;
}
