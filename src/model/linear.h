/* src/model/linear.h -- one linear projection y = x·Wᵀ: dense FP32 (the
 * teacher, OpenBLAS) or one whose code lives above the model (a packed
 * OneBit layer: src/onebit fills in its ops table). The model's forward pass
 * only ever calls linear_forward, so teacher and student share one forward,
 * and model/ knows no 1-bit code.
 *
 * Threads: linear_forward may be called from any thread, concurrently, for
 * the dense kind (OpenBLAS, whose thread count is set once by the program's
 * start-up code) and for ops whose forward says so (the OneBit one does). */
#ifndef OB_LINEAR_H
#define OB_LINEAR_H

#include "kernels/kernels.h"

typedef enum { LINEAR_DENSE = 0, LINEAR_ONEBIT = 1 } LinearKind;

/* what a non-dense linear does; impl is its Linear.impl */
typedef struct {
    const char *name;
    /* y (N, out) = linear(x (N, in)) */
    void (*forward)(const void *impl, const float *x, float *y, int N);
    /* a model whose linears these are computes its FP32 output head
     * y (rows) = W (rows, cols) · x with this, or NULL: OpenBLAS */
    void (*head)(const void *impl, const float *W, const float *x, float *y, int rows, int cols);
    /* the execution context it runs with (its pool and helpers), or NULL:
     * a model whose linears these are runs its decode attention with it */
    const KernExec *(*exec)(const void *impl);
} LinearOps;

typedef struct {
    LinearKind kind;        /* LINEAR_DENSE, or one run by ops */
    int in, out;
    const float *w;         /* LINEAR_DENSE: (out, in) row-major */
    const LinearOps *ops;   /* the others' */
    const void *impl;       /* what ops work on (a BitLinear) */
} Linear;

/* y (N,out) = linear(x (N,in)). x and y must not alias. */
void linear_forward(const Linear *l, const float *x, float *y, int N);

/* the output head of a model with these linears: y (rows) = W (rows, cols) · x,
 * through l->ops->head when there is one (a 1-bit student's, on its layers'
 * pool: OpenBLAS's threads busy-wait for a while after every call and would
 * share the cores with the 1-bit layers of the next token), else OpenBLAS */
void linear_head(const Linear *l, const float *W, const float *x, float *y, int rows, int cols);

/* l's execution context (LinearOps.exec), or NULL (dense: OpenBLAS) */
const KernExec *linear_exec(const Linear *l);

#endif
