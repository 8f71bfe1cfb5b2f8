/* kernels/kernels.h -- the 1-bit GEMV/GEMM kernels behind bitlinear_forward:
 * a scalar reference and SIMD variants (AVX2+FMA, AVX-512) compiled with
 * target attributes in the same build and chosen at run time (cpuid), or by
 * $ONEBIT_KERNEL / kern_select.
 *
 * Every variant computes, for a range of 16-row blocks and N tokens,
 *
 *     acc[n][r] = h[r] * sum_c sign(r, c) * gx[n][c]        (FP32 throughout)
 *
 * where gx = g ⊙ x is zero-padded to in_pad = 64 * words_per_row columns and
 * acc is (N, out_pad), out_pad = 16 * ceil(out/16). The caller (bitlinear.c)
 * makes gx, splits the row blocks across the thread pool, copies acc into y
 * and applies the LayerNorm. A row is always computed by one call in one
 * fixed order, so results do not depend on the thread count.
 *
 * Kernel-private layout (BitLinear.kbits, built by kern_repack from the
 * canonical bits): the rows are cut into blocks of 16 (rows past `out` are
 * zero), and for each canonical word index k and block b there are 32 uint32:
 *
 *     kbits[(k * nblk + b) * 32 + i]      = low  32 bits of word k of row 16b+i
 *     kbits[(k * nblk + b) * 32 + 16 + i] = high 32 bits of word k of row 16b+i
 *
 * so one 64-byte load gives the same 32 columns of 16 rows as 16 dword lanes,
 * and a right shift by 4j puts the sign nibble of columns 4j..4j+3 of each row
 * in the low 4 bits that vpermps uses as a table index (see kern_avx512.c).
 * Blocks of one word k are contiguous, so a thread that owns blocks
 * [b0, b1) streams (b1-b0)*128 bytes per word.
 */
#ifndef OB_KERNELS_H
#define OB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bitlinear.h"

#define KERN_ROWBLK 16

typedef struct {
    const char *name;
    const char *desc;
    int (*available)(void);
    int needs_kbits;     /* reads BitLinear.kbits (else only the canonical bits) */
    /* blocks [b0, b1) of all N tokens; gx (N, in_pad), acc (N, out_pad) */
    void (*rows)(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc);
} BitKernel;

static inline int kern_in_pad(const BitLinear *bl) { return bl->words_per_row * 64; }
static inline int kern_nblk(const BitLinear *bl) { return (bl->out + KERN_ROWBLK - 1) / KERN_ROWBLK; }

/* all variants compiled in (available or not on this CPU), NULL-terminated */
const BitKernel *const *kern_all(void);
/* the active kernel: $ONEBIT_KERNEL if set and available, else the fastest
 * available one */
const BitKernel *kern_current(void);
/* by name; NULL if unknown or not available on this CPU */
const BitKernel *kern_find(const char *name);
/* make `name` the active kernel; 0, or -1 with err set */
int kern_select(const char *name, char *err);

/* (re)build bl->kbits from bl->bits */
void kern_repack(BitLinear *bl);

/* the variants (kern_*.c) */
extern const BitKernel kern_ref, kern_avx2, kern_avx2flip, kern_avx512, kern_avx512lut4, kern_avx512mask;

/* the parameter-free LayerNorm (bitlinear_layernorm) vectorized when the CPU
 * allows; same double-precision statistics */
void kern_layernorm(float *y, int n);

#endif
