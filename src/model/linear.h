/* linear.h -- one linear projection y = x·Wᵀ, either dense FP32 (the teacher)
 * or a packed OneBit layer (the student). The model's forward pass only ever
 * calls linear_forward, so teacher and student share one forward. */
#ifndef OB_LINEAR_H
#define OB_LINEAR_H

typedef struct BitLinear BitLinear; /* bitlinear.h */

typedef enum { LINEAR_DENSE = 0, LINEAR_ONEBIT = 1 } LinearKind;

typedef struct {
    LinearKind kind;
    int in, out;
    const float *w;       /* LINEAR_DENSE: (out, in) row-major */
    const BitLinear *bl;  /* LINEAR_ONEBIT */
} Linear;

/* y (N,out) = linear(x (N,in)). x and y must not alias. */
void linear_forward(const Linear *l, const float *x, float *y, int N);

/* y (rows) = W (rows, cols) · x on the 1-bit layers' thread pool (src/base/pool.h)
 * rather than OpenBLAS: a 1-bit student's FP32 output head in decoding,
 * since OpenBLAS's threads busy-wait for a while after every call and would
 * share the cores with the 1-bit layers of the next token */
void linear_gemv_pool(const float *W, const float *x, float *y, int rows, int cols);

#endif
