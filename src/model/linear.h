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

/* how an output head's (or embedding's) weights are stored: FP32, FP16, or
 * Q8_0 blocks (kernels.h KernQ8_0; rows of cols / 32 blocks) */
enum { LINEAR_W_F32 = 0, LINEAR_W_F16 = 1, LINEAR_W_Q8_0 = 2 };

/* what a non-dense linear does; impl is its Linear.impl */
typedef struct {
    const char *name;
    /* y (N, out) = linear(x (N, in)) */
    void (*forward)(const void *impl, const float *x, float *y, int N);
    /* a model whose linears these are computes its output head
     * y (rows) = W (rows, cols) · x with this (W of LINEAR_W_* wtype), or
     * NULL: OpenBLAS (FP32), the default decode helpers (the others) */
    void (*head)(const void *impl, const void *W, int wtype, const float *x, float *y, int rows, int cols);
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
 * W of LINEAR_W_* wtype, through l->ops->head when there is one (a 1-bit
 * student's, on its layers' pool: OpenBLAS's threads busy-wait for a while
 * after every call and would share the cores with the 1-bit layers of the
 * next token), else OpenBLAS (FP32) or the default decode helpers on the
 * calling thread */
void linear_head(const Linear *l, const void *W, int wtype, const float *x, float *y, int rows, int cols);

/* l's execution context (LinearOps.exec), or NULL (dense: OpenBLAS) */
const KernExec *linear_exec(const Linear *l);

#endif
