/* src/model/linear.h -- one linear projection y = x·Wᵀ: dense (a teacher:
 * FP32 rows through OpenBLAS, or rows in a mapped file's own precision,
 * FP16 / BF16 / Q8_0 / any format/llama.h dtype) or one whose code lives
 * above the model (a packed
 * OneBit layer: src/onebit fills in its ops table). The model's forward pass
 * only ever calls linear_forward, so teacher and student share one forward,
 * and model/ knows no 1-bit code.
 *
 * A dense linear of another dtype than FP32 runs, for N > LINEAR_SMALL_N
 * tokens, sgemm over tiles of its rows converted to FP32 in a bounded
 * scratch (LINEAR_TILE_BYTES), for 1 < N <= LINEAR_SMALL_N blocks of rows
 * converted and dotted with every token on the global pool, and for one token (decode) GEMV rows on the stored
 * weights (kernels.h KernDec: FP16, BF16, Q8_0; other dtypes through
 * llama_dequant a row at a time) split over the global pool (base/pool.h).
 *
 * Threads: linear_forward may be called from any thread, concurrently, for
 * the dense kind (OpenBLAS, whose thread count is set once by the program's
 * start-up code; the global pool serialises its callers) and for ops whose
 * forward says so (the OneBit one does). */
#ifndef OB_LINEAR_H
#define OB_LINEAR_H

#include "base/pool.h"
#include "format/llama.h"
#include "kernels/kernels.h"

typedef enum { LINEAR_DENSE = 0, LINEAR_ONEBIT = 1 } LinearKind;

/* how a dense linear's, an output head's or an embedding's weights are
 * stored: the element types of format/llama.h (LLAMA_*), so that whatever a
 * loader maps can be run as it is: FP32, FP16, BF16, Q8_0 blocks (kernels.h
 * KernQ8_0; rows of cols / 32 blocks), and any further LLAMA_* dtype (rows
 * of llama_dtype_bytes(type, cols) bytes, converted by llama_dequant) */
enum { LINEAR_W_F32 = LLAMA_F32, LINEAR_W_F16 = LLAMA_F16, LINEAR_W_BF16 = LLAMA_BF16, LINEAR_W_Q8_0 = LLAMA_Q8_0 };

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
    /* ys[i] = forward(impls[i], x) for n linears of these ops and one input
     * (linear_forward_many), or NULL: a forward each */
    void (*forward_many)(const void *const *impls, int n, const float *x, float *const *ys, int N);
} LinearOps;

typedef struct {
    LinearKind kind;        /* LINEAR_DENSE, or one run by ops */
    int in, out;
    const float *w;         /* LINEAR_DENSE in FP32: (out, in) row-major; else NULL */
    const LinearOps *ops;   /* the others' */
    const void *impl;       /* what ops work on (a BitLinear) */
    /* LINEAR_DENSE in another precision (wtype not LINEAR_W_F32; w NULL):
     * the (out, in) rows of type wtype at wd (into a mapped file). With
     * rope_heads > 0 the stored rows are in Hugging Face's rotate-half
     * order within each of rope_heads heads and row r of the linear is
     * stored row linear_stored_row(l, r) (format/llama.h) */
    int wtype;
    const void *wd;
    int rope_heads;
} Linear;

/* y (N,out) = linear(x (N,in)). x and y must not alias. */
void linear_forward(const Linear *l, const float *x, float *y, int N);
/* ys[i] (N, ls[i]->out) = linear(ls[i], x (N, in)) for n linears of one input
 * (a layer's q, k, v): through their ops' forward_many when they all have the
 * same ops (a 1-bit model's: one pool run for all their rows), else one
 * linear_forward each; the same results either way. */
void linear_forward_many(const Linear *const *ls, int n, const float *x, float *const *ys, int N);

/* bytes of a tile of FP32 rows a dense non-FP32 linear converts per sgemm */
#define LINEAR_TILE_BYTES (16u << 20)
/* up to this many tokens such a linear converts blocks of 16 rows on the
 * global pool and takes every token's dot products with them instead (the
 * stored rows read once, both ways; sgemm wins for more tokens) */
#define LINEAR_SMALL_N 16

/* the stored row of a dense linear's row r (r itself unless rope_heads) */
size_t linear_stored_row(const Linear *l, size_t r);
/* rows [r0, r0 + n) of a dense linear as FP32 into out (n * in floats) */
void linear_rows_f32(const Linear *l, size_t r0, size_t n, float *out);
/* y (N,out) = x (N,in) · Wᵀ for a dense linear in another precision than
 * FP32 and many tokens: its rows as FP32 tiles of at most
 * LINEAR_TILE_BYTES (one scratch), each converted (the conversion is a few
 * percent of the product's time: on one thread) and multiplied by
 * gemm(ctx, N, n, in, x, tile, y + r0, out): y (N,n) with row stride ldc =
 * x (N,in) · tile (n,in)ᵀ */
typedef void (*LinearGemmFn)(void *ctx, int N, int n, int in, const float *x, const float *tile, float *y, int ldc);
void linear_forward_tiles(const Linear *l, LinearGemmFn gemm, void *ctx, const float *x, float *y, int N);
/* rows [r0, r0 + n) of a (rows, cols) matrix of type (LINEAR_W_*) at w, as
 * FP32 into out (n * cols floats): the SIMD conversions of kernels.h for
 * FP16 / BF16 / Q8_0, llama_dequant for the rest */
void linear_w_rows_f32(int type, const void *w, size_t r0, size_t n, size_t cols, float *out);
/* y[r] = W[r] · x for r in [r0, r1), W rows of cols weights of type
 * (LINEAR_W_*) through the helpers d (a row at a time through llama_dequant
 * for the types d has no GEMV for) */
void linear_gemv_rows(const KernDec *d, int type, const void *W, const float *x, float *y, int cols, int r0, int r1);
/* FP32 GEMV rows y[r] = W[r] · x, r in [r0, r1) (a BitKernel's gemv_rows) */
typedef void (*LinearRowsF32)(const float *W, const float *x, float *y, int cols, int r0, int r1);
/* y (rows) = W x, W of type (LINEAR_W_*), split over pool p (NULL: the
 * global pool) in a few chunks per thread; small products on the calling
 * thread. FP32 rows through f32_rows when given, the rest through
 * linear_gemv_rows with the helpers d */
void linear_gemv_pool(Pool *p, const KernDec *d, LinearRowsF32 f32_rows, int type, const void *W,
                      const float *x, float *y, int rows, int cols);

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
