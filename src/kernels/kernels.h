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
 * zero) and the blocks into panels of KERN_PANEL (the last may be shorter,
 * pb blocks). For each canonical word index k and block b there are 32
 * uint32 at kern_kb_off(bl, k, b):
 *
 *     [i]      = low  32 bits of word k of row 16b+i     (i = 0..15)
 *     [16 + i] = high 32 bits of word k of row 16b+i
 *
 * so one 64-byte load gives the same 32 columns of 16 rows as 16 dword lanes,
 * and a right shift puts the sign bits of the next columns of each row in the
 * low bits that vpermps / vpermt2ps use as a table index (see kern_avx512.c).
 * Panel p starts at p * KERN_PANEL * words_per_row * 32 and holds its blocks
 * word-major: (k, b) at ((k * pb) + (b - p * KERN_PANEL)) * 32 within it. A
 * thread working on one panel therefore reads one contiguous stream of
 * words_per_row * pb * 128 bytes (what DRAM and the prefetchers do best),
 * while the tables of word k serve pb blocks in a row. kbits is allocated
 * with ob_huge_alloc (transparent huge pages).
 *
 * Within each of those dwords, KERN_LAYOUT_BW keeps bit i = column i;
 * KERN_LAYOUT_L6 (the avx512 kernel) reorders and partly inverts the 32 bits
 * (l6_encode in kern.c). kern_repack builds the layout of the active kernel and
 * records it in bl->klayout; bitlinear_forward runs a kernel on the canonical
 * bits instead when they differ (kern_select after packing, without a
 * bitlinear_repack), so results stay right.
 */
#ifndef OB_KERNELS_H
#define OB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "onebit/bitlinear.h"

#define KERN_ROWBLK 16
#define KERN_PANEL 32   /* blocks per panel (512 rows) */

/* the kbits layouts. BW and L6: the blocks, panels and offsets above; they
 * differ in the order of the bits inside each dword (see l6_encode in
 * kern.c). W16 (int8 activations on AVX-512, kern_avx512.c): 16-bit words,
 * one per row and 16 columns, in blocks of 32 rows ("wblocks": 16-row blocks
 * 2w and 2w+1); panels of KERN_PANEL / 2 wblocks (the same 512 rows and the
 * same panel starts as above). For each 32-column index j (columns 32j ..
 * 32j+31; 2 per canonical word) and wblock w there are 64 uint16 at
 * kern_w16_off(bl, j, w):
 *
 *     [i]      = columns 32j    .. 32j+15 of row 32w+i  (bit t = column +t)
 *     [32 + i] = columns 32j+16 .. 32j+31 of row 32w+i   (i = 0..31)
 *
 * word-major within a panel, as above, so a panel is one contiguous stream.
 * Rows past `out` are zero; kbits holds an even number of 16-row blocks. */
#define KERN_LAYOUT_BW 0   /* bit i = column i of the 32 (the canonical order) */
#define KERN_LAYOUT_L6 1   /* six groups with two sign columns (kern_avx512.c) */
#define KERN_LAYOUT_W16 2  /* 32 rows x 16 columns per 64 bytes (kern_avx512.c) */

typedef struct {
    const char *name;
    const char *desc;
    int (*available)(void);
    int needs_kbits;     /* reads BitLinear.kbits (else only the canonical bits) */
    int layout;          /* which kbits layout it reads (KERN_LAYOUT_*; BW if none) */
    /* blocks [b0, b1) of all N tokens; gx (N, in_pad), acc (N, out_pad) */
    void (*rows)(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc);
    /* the same with int8 activations (BITLINEAR_ACT_INT8, see below), or
     * NULL (bitlinear_forward then runs kern_ref's): q (N, in_pad) and
     * scale (N, kern_nqblk) from kern_quantize; acc16 (N, kern_acc16_per_token) int16
     * scratch, 64-byte aligned, for the kernels that want it */
    void (*rows_q8)(const BitLinear *bl, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                    float *acc, int16_t *acc16);
    /* optional (NULL: none): what rows_q8 wants made once per call and shared
     * by the threads (the avx512 kernel's lookup tables), prep_q8_bytes(bl, N)
     * bytes at 64-byte alignment, filled by prep_q8 for tokens [n0, n1) of
     * the N (so threads can split it) */
    size_t (*prep_q8_bytes)(const BitLinear *bl, int N);
    void (*prep_q8)(const BitLinear *bl, const int16_t *q, int N, int n0, int n1, void *prep);
    /* the kbits layout kern_repack builds while int8 activations are active
     * (rows_q8 reads it and `layout`; rows reads only `layout`) */
    int layout_q8;
} BitKernel;

static inline int kern_in_pad(const BitLinear *bl) { return bl->words_per_row * 64; }

/* ---- int8 activations ---------------------------------------------------
 * With BITLINEAR_ACT_INT8 the kernels see gx quantized, per token, in blocks
 * of KERN_QBLOCK columns (the last may be shorter): with m = max |gx| over
 * the block, scale = m / 127 and q = lrintf(gx * (127 / m)) in [-127, 127]
 * (stored as int16); m = 0 gives scale 0 and q = 0; a NaN or infinite value
 * gives scale NaN and q = 0, so the row's result is NaN. Every variant then
 * computes, in this order,
 *
 *     s = 0;  for each block j:  isum = sum_{c in j} sign(r, c) * q[c]  (exact)
 *                               s = (j == 0) ? scale_j * (float)isum
 *                                            : fmaf(scale_j, (float)isum, s)
 *     acc[n][r] = s * h[r]
 *
 * so all variants give bit-identical results (tests/test_bitlinear). With
 * |q| <= 127 and 512 columns a block's sum fits in 16 bits per half row
 * (kern_avx512.c), and is exact as a float. */
#define KERN_QBLOCK 512
static inline int kern_nqblk(const BitLinear *bl) { return (kern_in_pad(bl) + KERN_QBLOCK - 1) / KERN_QBLOCK; }
/* one token: gx (in_pad) -> q (in_pad), scale (ceil(in_pad / KERN_QBLOCK));
 * the SIMD variant when the CPU has it (identical results) */
void kern_quantize(const float *gx, int in_pad, int16_t *q, float *scale);
void kern_quantize_ref(const float *gx, int in_pad, int16_t *q, float *scale);
void kern_quantize_avx512(const float *gx, int in_pad, int16_t *q, float *scale);

/* dense FP32 rows: y[r] = sum_c W[r * cols + c] * x[c] for r in [r0, r1)
 * (linear_gemv_pool: a 1-bit student's output head); SIMD when the CPU
 * allows, its own summation order */
void kern_gemv_rows(const float *W, const float *x, float *y, int cols, int r0, int r1);
void kern_gemv_rows_avx512(const float *W, const float *x, float *y, int cols, int r0, int r1);
void kern_gemv_rows_avx2(const float *W, const float *x, float *y, int cols, int r0, int r1);

/* y[i] = x[i] * g[i], i < n (vectorized when the CPU allows; the same products) */
void kern_mul(const float *x, const float *g, float *y, int n);
void kern_mul_avx512(const float *x, const float *g, float *y, int n);
static inline int kern_nblk(const BitLinear *bl) { return (bl->out + KERN_ROWBLK - 1) / KERN_ROWBLK; }

/* 16-row blocks in kbits: even, so that KERN_LAYOUT_W16's last wblock fits */
static inline int kern_nblk_alloc(const BitLinear *bl) { return (kern_nblk(bl) + 1) & ~1; }
/* where a kernel's range of 16-row blocks may start: W16 works in pairs */
static inline int kern_blk_align(const BitLinear *bl) { return bl->klayout == KERN_LAYOUT_W16 ? 2 : 1; }
/* int16 scratch per token for rows_q8 (acc16): 3 per row of kbits (the
 * W16 kernel's int16 sums and an int32 each; the others use 2) */
static inline size_t kern_acc16_per_token(const BitLinear *bl) { return (size_t)kern_nblk_alloc(bl) * KERN_ROWBLK * 3; }

/* uint16 offset of the 32-column index j of wblock w in a KERN_LAYOUT_W16
 * kbits (see above) */
static inline size_t kern_w16_off(const BitLinear *bl, int j, int w)
{
    int nw = kern_nblk_alloc(bl) / 2, pw = KERN_PANEL / 2, p0 = w / pw * pw;
    int pb = nw - p0 < pw ? nw - p0 : pw;
    return ((size_t)p0 * (bl->words_per_row * 2) + (size_t)j * pb + (size_t)(w - p0)) * 64;
}

/* dword offset of word k of block b in kbits (see above) */
static inline size_t kern_kb_off(const BitLinear *bl, int k, int b)
{
    int nblk = kern_nblk(bl), p0 = b / KERN_PANEL * KERN_PANEL;
    int pb = nblk - p0 < KERN_PANEL ? nblk - p0 : KERN_PANEL;
    return ((size_t)p0 * bl->words_per_row + (size_t)k * pb + (size_t)(b - p0)) * 32;
}

/* the end of the panel segment that starts at block s, at most b1 */
static inline int kern_seg_end(int s, int b1)
{
    int e = (s / KERN_PANEL + 1) * KERN_PANEL;
    return e < b1 ? e : b1;
}

/* software prefetch distance along a panel's stream, in dwords (3 KiB) */
#define KERN_PF_DW (24 * 32)

/* all variants compiled in (available or not on this CPU), NULL-terminated */
const BitKernel *const *kern_all(void);
/* the active kernel: $ONEBIT_KERNEL if set and available, else the fastest
 * available one */
const BitKernel *kern_current(void);
/* by name; NULL if unknown or not available on this CPU */
const BitKernel *kern_find(const char *name);
/* make `name` the active kernel; 0, or -1 with err set */
int kern_select(const char *name, char *err);

/* (re)build bl->kbits from bl->bits in the layout of the active kernel for
 * the active activation precision (layout, or layout_q8 with int8; BW when it
 * reads no kbits); sets bl->klayout */
void kern_repack(BitLinear *bl);

/* the variants (kern_*.c) */
extern const BitKernel kern_ref, kern_avx2, kern_avx2flip, kern_avx512, kern_avx512mask;

/* the parameter-free LayerNorm (bitlinear_layernorm) of x into y (x may be
 * y), vectorized when the CPU allows; the same double-precision statistics,
 * summed in another order */
void kern_layernorm(const float *x, float *y, int n);
void kern_layernorm_avx512(const float *x, float *y, int n);

#endif
