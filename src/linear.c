/* linear.c -- dispatch of a linear projection to OpenBLAS (dense) or the
 * packed 1-bit kernels (see linear.h). */
#include "linear.h"

#include <cblas.h>

#include "bitlinear.h"
#include <stdlib.h>

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
