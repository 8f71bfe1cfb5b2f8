/* src/onebit/bitlinear.h -- the packed OneBit linear layer:
 *
 *     y = LayerNorm( h ⊙ (sign(W) · (g ⊙ x)) )
 *
 * LayerNorm without affine parameters, eps 1e-5, over the output dimension.
 * With norm = 0 the LayerNorm is skipped: y = h ⊙ (sign(W) · (g ⊙ x)), a
 * plain approximation of W (the PTQ baselines: XNOR, SVID without training).
 * sign(w) is +1 for w >= 0 and -1 for w < 0 (a weight of exactly 0 is +1).
 * g (in) and h (out) are FP32 in memory (FP16 in .onebit files).
 *
 * Mixture of scales (BinaryMoS; bitlinear_set_mos): E scale experts and a
 * router replace g and h. Per token x (a row):
 *     r = softmax(x · Rᵀ) (E),  g(x) = r · G (in),  h(x) = r · H (out)
 *     y = LayerNorm( h(x) ⊙ (sign(W) · (g(x) ⊙ x)) )   (LayerNorm per norm)
 * with R (E,in) the router (row e: expert e's weights), G (E,in) and H
 * (E,out) the experts, all FP32 in memory. The forward computes r, g(x) and
 * h(x) per token in FP32 (the router is a small GEMV: the layer's
 * KernExec.gemv_rows, the reference's in bitlinear_forward_ref), gives the kernel g(x)
 * ⊙ x as its input (what int8 activations quantize) with row scales 1, and
 * applies h(x) to its output before the LayerNorm.
 *
 * Canonical sign packing (what files store and what bitlinear_get_bits
 * returns): row-major over output rows; row r takes words_per_row =
 * ceil(in/64) uint64 words; bit j (LSB = 0) of word k is column 64k+j;
 * 1 means +1, 0 means -1; padding bits past `in` are 0. The kernels see the
 * layer as a KernMat (bl->km, src/kernels/kernels.h); those that read a
 * layout of their own (BitKernel.needs_kbits) get a private copy of the
 * signs (`kbits`) in the layout of the layer's kernel and activation
 * precision, the others none (kbits NULL); code that writes `bits`
 * directly must call bitlinear_repack before the next bitlinear_forward.
 *
 * Where the canonical signs live. A layer made by bitlinear_new owns them
 * (malloc'd; pack, set_bits). A loaded student's layers use them where they
 * lie in the read-only mapping of the .onebit file (bitlinear_new_mapped:
 * bits_mapped = 1, not owned, not copied): kbits is built from them and
 * the mapping's pages dropped (base/file.h file_map_drop), so a loaded
 * layer holds one copy of its signs in memory, kbits or (a kernel without
 * kbits) the mapping's pages. Whatever reads `bits` later (get_bits, a
 * repack for another kernel, export, the Model screen) reads the mapping
 * again, from the file. Writing the signs (pack, set_bits) makes the layer
 * own them first.
 *
 * Execution context. Each layer holds a KernExec (bl->ex): the kernel
 * variant, the activation precision and the thread pool its forward runs
 * with, chosen when it is made (bitlinear_new takes the defaults below) and
 * changed only by bitlinear_set_exec, which repacks kbits for it. A forward
 * reads nothing process-wide, so changing a default, or another layer's
 * context, cannot change what a running forward computes. Output rows are
 * split across the pool's threads and each row is computed by one thread in
 * a fixed order, so results do not depend on the thread count.
 *
 * Defaults for layers made from then on (process-wide, set up by the
 * program's start-up code or a test): the kernel ($ONEBIT_KERNEL, else the
 * fastest for this CPU; bitlinear_set_kernel), the activation precision
 * ($ONEBIT_ACT, `--act`; bitlinear_set_act) and the global pool
 * ($ONEBIT_THREADS; bitlinear_set_threads).
 *
 * Activation precision: FP32 by default, the exact computation above
 * (within rounding of the reference). KERN_ACT_INT8 quantizes g ⊙ x per
 * token in blocks of 512 columns to int8 with one FP32 scale each (absmax /
 * 127) and sums the signs in integers: about twice the kernel speed where
 * compute bounds it (N > 1), at the cost of that rounding (each product off
 * by at most half a step, scale / 2). Every kernel variant gives the same
 * int8 results (src/kernels/kernels.h).
 *
 * Threads: bitlinear_forward may run on any number of threads at once, on
 * the same layer or others. bitlinear_new/free/pack/set_bits/repack/
 * set_scales/set_exec write the layer: only its owner, while no forward runs
 * on it (bitlinear_set_exec checks and refuses).
 */
#ifndef OB_BITLINEAR_H
#define OB_BITLINEAR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "model/linear.h"

#define BITLINEAR_EPS KERN_LN_EPS

struct BitLinear {
    int in, out;
    int words_per_row;   /* ceil(in/64) */
    uint64_t *bits;      /* (out, words_per_row), canonical layout; read-only
                          * when bits_mapped */
    int bits_mapped;     /* 1: bits lie in a file mapping (bitlinear_new_mapped),
                          * which the layer does not own */
    float *g;            /* (in) */
    float *h;            /* (out) */
    int norm;            /* 1: LayerNorm after (OneBit, the default); 0: none */
    int mos;             /* mixture of scales: experts E (0: none, g and h are used) */
    float *router;       /* (E, in) with mos */
    float *g_experts;    /* (E, in) */
    float *h_experts;    /* (E, out) */
    float *ones;         /* (out) 1s: the kernels' row scales with mos */
    uint32_t *kbits;     /* kernel-private copy of the signs (kernels/kernels.h),
                          * NULL when the kernel reads only bits */
    KernMat km;          /* the kernels' view: bits, h, kbits and kbits' layout */
    KernExec ex;         /* what bitlinear_forward runs with (bitlinear_set_exec) */
    atomic_int running;  /* forwards in progress on this layer; -1 while
                          * bitlinear_set_exec switches it (forwards wait) */
};
typedef struct BitLinear BitLinear;

BitLinear *bitlinear_new(int out, int in);
/* a layer on the canonical signs `bits` (out * words_per_row words, padding
 * bits zero) where they lie in a read-only file mapping (base/file.h
 * file_map), which must outlive it (or its next set_bits / pack): not
 * copied, not owned; kbits is built from them (when the kernel has it) and
 * their pages dropped. g and h 1, norm 1, as bitlinear_new. */
BitLinear *bitlinear_new_mapped(int out, int in, const uint64_t *bits);
void bitlinear_free(BitLinear *bl);
/* signs from a dense (out, in) matrix */
void bitlinear_pack(BitLinear *bl, const float *W);
/* the canonical sign bits (kernels.h KernMat) of the (out, in) FP32 W:
 * out * ceil(in / 64) words, bit 1 where w >= 0 (what bitlinear_pack packs) */
void bitlinear_signs(const float *W, int out, int in, uint64_t *bits);
/* signs from canonical packed words (out * words_per_row) */
void bitlinear_set_bits(BitLinear *bl, const uint64_t *bits);
/* rebuild the kernel-private layout after writing bl->bits directly */
void bitlinear_repack(BitLinear *bl);
/* run with ex from now on (a copy, with its own pool reference) and repack
 * for it; 0, or -1 with err set when a forward is running on bl */
int bitlinear_set_exec(BitLinear *bl, const KernExec *ex, char *err);
/* the same for n layers at once: all switch, or none (-1 with err when a
 * forward is running on any of them). A forward that starts during the
 * switch waits for it, so no forward sees a half-switched layer. */
int bitlinear_set_exec_all(BitLinear *const *bl, int n, const KernExec *ex, char *err);
/* the Linear (model/linear.h) that runs bl: the model's forward calls it
 * through its ops table, and a model whose linears these are computes its
 * FP32 output head on bl's pool */
Linear bitlinear_linear(const BitLinear *bl);
/* canonical packed words (out * words_per_row) */
void bitlinear_get_bits(const BitLinear *bl, uint64_t *bits);
void bitlinear_set_scales(BitLinear *bl, const float *g, const float *h);
/* a mixture of E scale experts (2..BITLINEAR_MOS_MAX; copies of router,
 * g_experts (E,in) and h_experts (E,out)), or none (E = 0: g and h again).
 * The owner, while no forward runs. 0, or -1 on a bad E */
#define BITLINEAR_MOS_MAX 64
int bitlinear_set_mos(BitLinear *bl, int E, const float *router, const float *g_experts, const float *h_experts);
/* +1 or -1 */
int bitlinear_sign(const BitLinear *bl, int row, int col);

/* y (N,out) = layer(x (N,in)) with bl->ex; any thread, concurrently */
void bitlinear_forward(const BitLinear *bl, const float *x, float *y, int N);
/* y[i] = bitlinear_forward(bl[i], x) for the n layers of one input x (the
 * same in; a model's q, k and v, or its gate and up): the same results,
 * with the rows of all n in one pool run where separate calls make one each
 * (for up to 8 tokens on more than one thread; else one call each) */
void bitlinear_forward_many(const BitLinear *const *bl, int n, const float *x, float *const *y, int N);
/* the plain scalar reference of the same computation */
void bitlinear_forward_ref(const BitLinear *bl, const float *x, float *y, int N);

/* ---- defaults for layers made from now on (start-up code) ---- */
/* the global pool's threads (n < 1: $ONEBIT_THREADS or the online CPUs);
 * layers made before keep theirs; 0, or -1 with err set */
int bitlinear_set_threads(int n, char *err);
int bitlinear_threads(void);
/* the kernel by name (kern_lookup); 0, or -1 with err set */
int bitlinear_set_kernel(const char *name, char *err);

/* activation precision */
enum { BITLINEAR_ACT_FP32 = KERN_ACT_FP32, BITLINEAR_ACT_INT8 = KERN_ACT_INT8 };
/* "fp32" or "int8"; 0, or -1 with err set */
int bitlinear_set_act(const char *name, char *err);
/* the default: $ONEBIT_ACT until bitlinear_set_act is called */
int bitlinear_default_act(void);
const char *bitlinear_act_name(int act);
/* "fp32" / "int8" -> BITLINEAR_ACT_*, or -1 */
int bitlinear_act_parse(const char *name);
/* ex = the defaults (the caller owns it: kern_exec_fini) */
void bitlinear_default_exec(KernExec *ex);

/* parameter-free LayerNorm over n values in place (eps BITLINEAR_EPS) */
void bitlinear_layernorm(float *y, int n);

#endif
