/* bitlinear.h -- the packed OneBit linear layer:
 *
 *     y = LayerNorm( h ⊙ (sign(W) · (g ⊙ x)) )
 *
 * LayerNorm without affine parameters, eps 1e-5, over the output dimension.
 * With norm = 0 the LayerNorm is skipped: y = h ⊙ (sign(W) · (g ⊙ x)), a
 * plain approximation of W (the PTQ baselines: XNOR, SVID without training).
 * sign(w) is +1 for w >= 0 and -1 for w < 0 (a weight of exactly 0 is +1).
 * g (in) and h (out) are FP32 in memory (FP16 in .onebit files).
 *
 * Canonical sign packing (what files store and what bitlinear_get_bits
 * returns): row-major over output rows; row r takes words_per_row =
 * ceil(in/64) uint64 words; bit j (LSB = 0) of word k is column 64k+j;
 * 1 means +1, 0 means -1; padding bits past `in` are 0. Kernels may keep a
 * different layout internally: `kbits` (see src/kernels/kernels.h), rebuilt
 * by bitlinear_pack and bitlinear_set_bits in the layout of the active
 * kernel and activation precision; code that writes `bits` directly, or
 * selects another kernel (kern_select) or precision (bitlinear_set_act), must
 * call bitlinear_repack before the next bitlinear_forward (without it a
 * changed kernel falls back to a slower one, with the same results).
 *
 * bitlinear_forward runs the fastest kernel variant for this CPU ($ONEBIT_KERNEL
 * = ref|avx2|avx512 overrides it) on the process-wide thread pool (src/base/pool.h;
 * $ONEBIT_THREADS or bitlinear_set_threads, default: online CPUs). Output rows
 * are split across threads and each row is computed by one thread in a fixed
 * order, so results do not depend on the thread count.
 *
 * Activation precision (process-wide, like the thread count): FP32 by
 * default, the exact computation above (within rounding of the reference).
 * BITLINEAR_ACT_INT8 ($ONEBIT_ACT=int8, bitlinear_set_act, `--act int8`)
 * quantizes g ⊙ x per token in blocks of 512 columns to int8 with one FP32
 * scale each (absmax / 127) and sums the signs in integers: about twice the
 * kernel speed where compute bounds it (N > 1), at the cost of that rounding
 * (each product off by at most half a step, scale / 2). Every kernel variant
 * gives the same int8 results (src/kernels/kernels.h).
 */
#ifndef OB_BITLINEAR_H
#define OB_BITLINEAR_H

#include <stddef.h>
#include <stdint.h>

#define BITLINEAR_EPS 1e-5f

struct BitLinear {
    int in, out;
    int words_per_row;   /* ceil(in/64) */
    uint64_t *bits;      /* (out, words_per_row), canonical layout */
    float *g;            /* (in) */
    float *h;            /* (out) */
    int norm;            /* 1: LayerNorm after (OneBit, the default); 0: none */
    uint32_t *kbits;     /* kernel-private copy of the signs (kernels/kernels.h) */
    int klayout;         /* the layout kbits holds (KERN_LAYOUT_*) */
};
typedef struct BitLinear BitLinear;

BitLinear *bitlinear_new(int out, int in);
void bitlinear_free(BitLinear *bl);
/* signs from a dense (out, in) matrix */
void bitlinear_pack(BitLinear *bl, const float *W);
/* signs from canonical packed words (out * words_per_row) */
void bitlinear_set_bits(BitLinear *bl, const uint64_t *bits);
/* rebuild the kernel-private layout after writing bl->bits directly */
void bitlinear_repack(BitLinear *bl);
/* canonical packed words (out * words_per_row) */
void bitlinear_get_bits(const BitLinear *bl, uint64_t *bits);
void bitlinear_set_scales(BitLinear *bl, const float *g, const float *h);
/* +1 or -1 */
int bitlinear_sign(const BitLinear *bl, int row, int col);

/* y (N,out) = layer(x (N,in)); uses the fastest kernel for this CPU */
void bitlinear_forward(const BitLinear *bl, const float *x, float *y, int N);
/* the plain scalar reference of the same computation */
void bitlinear_forward_ref(const BitLinear *bl, const float *x, float *y, int N);

/* threads used by bitlinear_forward (n < 1: the default, $ONEBIT_THREADS or
 * the online CPUs); 0, or -1 with err set. Not while a forward runs. */
int bitlinear_set_threads(int n, char *err);
int bitlinear_threads(void);

/* activation precision of bitlinear_forward */
enum { BITLINEAR_ACT_FP32 = 0, BITLINEAR_ACT_INT8 = 1 };
/* "fp32" or "int8"; 0, or -1 with err set. Not while a forward runs. */
int bitlinear_set_act(const char *name, char *err);
/* the current one: $ONEBIT_ACT until bitlinear_set_act is called */
int bitlinear_act(void);
const char *bitlinear_act_name(int act);

/* parameter-free LayerNorm over n values in place (eps BITLINEAR_EPS) */
void bitlinear_layernorm(float *y, int n);

#endif
