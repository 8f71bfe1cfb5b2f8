/* src/kernels/kernels.h -- the 1-bit GEMV/GEMM kernels behind
 * bitlinear_forward: a scalar reference (ref.c) and SIMD variants (x86/avx2.c,
 * x86/avx512.c) compiled with per-function target attributes in the same
 * build, listed in one table (table.c) and chosen by the caller: the
 * default is $ONEBIT_KERNEL if available, else the fastest variant the CPU
 * has (base/cpu.c). Non-x86 builds compile no x86/ file; arch-fallback.h
 * maps those names to the generic functions.
 *
 * Threads: everything here is a pure function of its arguments or reads
 * tables that are constant after start-up (the CPU probe, $ONEBIT_KERNEL,
 * both read once under pthread_once), so any thread may call anything.
 * There is no "current kernel": the kernel, the activation precision and the
 * pool a layer runs with are a KernExec, chosen when the layer is packed and
 * held by it (onebit/bitlinear.h).
 *
 * The kernels know a packed matrix only through KernMat (below): its
 * dimensions, the canonical sign words, the row scales h and the
 * kernel-private copy kbits with its layout. (x86/amx.c, "avx512amx", adds
 * AMX-INT8 tiles; it is available only once its self-test passed.)
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
 * Kernel-private layout (KernMat.kbits, built by kern_repack from the
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
 * low bits that vpermps / vpermt2ps use as a table index (see x86/avx512.c).
 * Panel p starts at p * KERN_PANEL * words_per_row * 32 and holds its blocks
 * word-major: (k, b) at ((k * pb) + (b - p * KERN_PANEL)) * 32 within it. A
 * thread working on one panel therefore reads one contiguous stream of
 * words_per_row * pb * 128 bytes (what DRAM and the prefetchers do best),
 * while the tables of word k serve pb blocks in a row. kbits is allocated
 * with ob_huge_alloc (transparent huge pages).
 *
 * Within each of those dwords, KERN_LAYOUT_BW keeps bit i = column i;
 * KERN_LAYOUT_L6 (the avx512 kernel) reorders and partly inverts the 32 bits
 * (l6_encode in table.c). kern_repack builds the layout it is given
 * (kern_layout_for: the one a kernel reads at a precision) and records it in
 * KernMat.layout.
 */
#ifndef OB_KERNELS_H
#define OB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"

#define KERN_ROWBLK 16
#define KERN_PANEL 32   /* blocks per panel (512 rows) */

/* the kbits layouts. BW and L6: the blocks, panels and offsets above; they
 * differ in the order of the bits inside each dword (see l6_encode in
 * table.c). W16 (int8 activations on AVX-512, x86/avx512.c): 16-bit words,
 * one per row and 16 columns, in blocks of 32 rows ("wblocks": 16-row blocks
 * 2w and 2w+1); panels of KERN_PANEL / 2 wblocks (the same 512 rows and the
 * same panel starts as above). For each 32-column index j (columns 32j ..
 * 32j+31; 2 per canonical word) and wblock w there are 64 uint16 at
 * kern_w16_off(m, j, w):
 *
 *     [i]      = columns 32j    .. 32j+15 of row 32w+i  (bit t = column +t)
 *     [32 + i] = columns 32j+16 .. 32j+31 of row 32w+i   (i = 0..31)
 *
 * word-major within a panel, as above, so a panel is one contiguous stream.
 * Rows past `out` are zero; kbits holds an even number of 16-row blocks. */
#define KERN_LAYOUT_BW 0   /* bit i = column i of the 32 (the canonical order) */
#define KERN_LAYOUT_L6 1   /* six groups with two sign columns (x86/avx512.c) */
#define KERN_LAYOUT_W16 2  /* 32 rows x 16 columns per 64 bytes (x86/avx512.c) */

/* A packed sign matrix as the kernels see it. The owner (a BitLinear) keeps
 * the memory; bits, h and kbits are written only by the owner's packing
 * (never while a kernel reads them). Canonical packing: row-major over the
 * out rows; row r takes words_per_row = ceil(in/64) uint64 words; bit j of
 * word k is column 64k+j; 1 means +1, 0 means -1; padding bits are 0. */
typedef struct {
    int in, out;
    int words_per_row;       /* ceil(in / 64) */
    const uint64_t *bits;    /* (out, words_per_row), canonical */
    const float *h;          /* (out) row scales */
    uint32_t *kbits;         /* kernel-private copy, kern_kbits_bytes() bytes */
    int layout;              /* the KERN_LAYOUT_* kbits holds */
} KernMat;

/* sign of (row, col): +1 or -1, from the canonical bits */
static inline int kern_sign(const KernMat *m, int row, int col)
{
    return (m->bits[(size_t)row * m->words_per_row + (col >> 6)] >> (col & 63)) & 1 ? 1 : -1;
}

/* activation precision (see "int8 activations" below) */
enum { KERN_ACT_FP32 = 0, KERN_ACT_INT8 = 1 };

typedef struct BitKernel {
    const char *name;
    const char *desc;
    unsigned needs;      /* CPU_* features (base/cpu.h) it needs */
    int needs_kbits;     /* reads KernMat.kbits (else only the canonical bits) */
    int layout;          /* which kbits layout it reads (KERN_LAYOUT_*; BW if none) */
    /* blocks [b0, b1) of all N tokens; gx (N, in_pad), acc (N, out_pad) */
    void (*rows)(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc);
    /* the same with int8 activations (KERN_ACT_INT8, see below), or NULL
     * (kern_exec_init then takes the reference's): q (N, in_pad) and scale
     * (N, kern_nqblk) from kern_quantize; acc16 (N, kern_acc16_per_token)
     * int16 scratch, 64-byte aligned, for the kernels that want it */
    void (*rows_q8)(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                    float *acc, int16_t *acc16);
    /* optional (NULL: none): what rows_q8 wants made once per call and shared
     * by the threads (the avx512 kernel's lookup tables), prep_q8_bytes(m, N)
     * bytes at 64-byte alignment, filled by prep_q8 for tokens [n0, n1) of
     * the N (so threads can split it) */
    size_t (*prep_q8_bytes)(const KernMat *m, int N);
    void (*prep_q8)(const KernMat *m, const int16_t *q, int N, int n0, int n1, void *prep);
    /* the kbits layout rows_q8 reads (rows reads `layout`) */
    int layout_q8;
    /* with prep_q8: the most tokens bitlinear_forward gives rows_q8 at once
     * (more are cut into calls of this many); 0: its default (8, for the
     * lookup tables of avx512, 80 KB per token at 4096 columns) */
    int q8_chunk;
} BitKernel;

static inline int kern_in_pad(const KernMat *m) { return m->words_per_row * 64; }

/* ---- int8 activations ---------------------------------------------------
 * With KERN_ACT_INT8 the kernels see gx quantized, per token, in blocks of
 * KERN_QBLOCK columns (the last may be shorter): with m = max |gx| over the
 * block, scale = m / 127 and q = lrintf(gx * (127 / m)) in [-127, 127]
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
 * (x86/avx512.c), and is exact as a float. */
#define KERN_QBLOCK 512
static inline int kern_nqblk(const KernMat *m) { return (kern_in_pad(m) + KERN_QBLOCK - 1) / KERN_QBLOCK; }

static inline int kern_nblk(const KernMat *m) { return (m->out + KERN_ROWBLK - 1) / KERN_ROWBLK; }
/* 16-row blocks in kbits: even, so that KERN_LAYOUT_W16's last wblock fits */
static inline int kern_nblk_alloc(const KernMat *m) { return (kern_nblk(m) + 1) & ~1; }
/* bytes of kbits for a matrix of these dimensions (every layout fits) */
static inline size_t kern_kbits_bytes(const KernMat *m)
{
    return (size_t)m->words_per_row * kern_nblk_alloc(m) * KERN_ROWBLK * 2 * sizeof(uint32_t);
}
/* where a kernel's range of 16-row blocks may start: W16 works in pairs */
static inline int kern_blk_align(const KernMat *m) { return m->layout == KERN_LAYOUT_W16 ? 2 : 1; }
/* int16 scratch per token for rows_q8 (acc16): 3 per row of kbits (the
 * W16 kernel's int16 sums and an int32 each; the others use 2) */
static inline size_t kern_acc16_per_token(const KernMat *m) { return (size_t)kern_nblk_alloc(m) * KERN_ROWBLK * 3; }

/* uint16 offset of the 32-column index j of wblock w in a KERN_LAYOUT_W16
 * kbits (see above) */
static inline size_t kern_w16_off(const KernMat *m, int j, int w)
{
    int nw = kern_nblk_alloc(m) / 2, pw = KERN_PANEL / 2, p0 = w / pw * pw;
    int pb = nw - p0 < pw ? nw - p0 : pw;
    return ((size_t)p0 * (m->words_per_row * 2) + (size_t)j * pb + (size_t)(w - p0)) * 64;
}

/* dword offset of word k of block b in kbits (see above) */
static inline size_t kern_kb_off(const KernMat *m, int k, int b)
{
    int nblk = kern_nblk(m), p0 = b / KERN_PANEL * KERN_PANEL;
    int pb = nblk - p0 < KERN_PANEL ? nblk - p0 : KERN_PANEL;
    return ((size_t)p0 * m->words_per_row + (size_t)k * pb + (size_t)(b - p0)) * 32;
}

/* the end of the panel segment that starts at block s, at most b1 */
static inline int kern_seg_end(int s, int b1)
{
    int e = (s / KERN_PANEL + 1) * KERN_PANEL;
    return e < b1 ? e : b1;
}

/* software prefetch distance along a panel's stream, in dwords (3 KiB) */
#define KERN_PF_DW (24 * 32)

/* ---- the table of variants (table.c) ---------------------------------- */
enum { KERN_REF, KERN_AVX2, KERN_AVX2FLIP, KERN_AVX512, KERN_AVX512MASK, KERN_AVX512VNNI, KERN_AVX512AMX, KERN_NVARIANTS };
/* entry id of the table (KERN_*) */
const BitKernel *kern_variant(int id);
/* all variants compiled in (available or not on this CPU), fastest first,
 * NULL-terminated */
const BitKernel *const *kern_all(void);
/* whether this CPU can run k */
int kern_available(const BitKernel *k);
/* by name; NULL if unknown or not available on this CPU */
const BitKernel *kern_find(const char *name);
/* by name, with a message in err (unknown, or not on this CPU); NULL then */
const BitKernel *kern_lookup(const char *name, char *err);
/* the default: $ONEBIT_KERNEL (base/cpu.h) if set and available, else the
 * fastest available one; constant for the process */
const BitKernel *kern_default(void);
/* the kbits layout k reads at activation precision act */
static inline int kern_layout_for(const BitKernel *k, int act) { return act == KERN_ACT_INT8 ? k->layout_q8 : k->layout; }

/* (re)build m->kbits from m->bits in `layout` (KERN_LAYOUT_*) and record it
 * in m->layout. Only the matrix's owner, while no kernel reads m. */
void kern_repack(KernMat *m, int layout);

/* ---- an execution context ----------------------------------------------
 * What a layer runs with, chosen when it is packed and held by it: the
 * kernel, its helpers (the SIMD ones the CPU allows, the scalar ones with
 * the reference kernel: results depend on this choice only), the activation
 * precision and the pool (a reference: pool_ref). A forward reads only its
 * layer's context, so changing another layer's (or a default) cannot change
 * what a running forward computes. */
typedef struct {
    const BitKernel *kernel;  /* what runs */
    const BitKernel *asked;   /* what was asked for (kernel is the reference
                               * when it has no int8 variant) */
    int act;                  /* KERN_ACT_* */
    Pool *pool;             /* held: kern_exec_init takes a reference */
    /* y[i] = x[i] * g[i], i < n */
    void (*mul)(const float *x, const float *g, float *y, int n);
    /* one token: gx (in_pad) -> q (in_pad), scale (ceil(in_pad / KERN_QBLOCK)) */
    void (*quantize)(const float *gx, int in_pad, int16_t *q, float *scale);
    /* parameter-free LayerNorm (eps KERN_LN_EPS, double statistics) of x
     * into y (x may be y) */
    void (*layernorm)(const float *x, float *y, int n);
    /* dense FP32 rows: y[r] = sum_c W[r * cols + c] * x[c] for r in [r0, r1) */
    void (*gemv_rows)(const float *W, const float *x, float *y, int cols, int r0, int r1);
    /* the SwiGLU between a student's FFN products: h[i] = silu(h[i]) * u[i],
     * silu(v) = v * (1 / (1 + exp(-v))), i < n. The reference with expf;
     * the AVX-512 one with its own exp (Cephes' expf polynomial, about 1
     * ulp), so within a few ulp of it (tests/test_bitlinear) */
    void (*silu_mul)(float *h, const float *u, size_t n);
    /* a student's RMSNorm: out[i] = w[i] * (s * x[i]), s = 1 / sqrt(mean of
     * x^2 + eps), out may be x. The reference sums the squares in order in
     * FP32 (as model_rmsnorm, a teacher's); the AVX-512 one in 64 lanes, so
     * s within a few ulp of it (tests/test_bitlinear) */
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    /* the decode helpers (FP16 / Q8_0 head rows): the reference's with the
     * reference kernel, else kern_dec_default() */
    const struct KernDec *dec;
} KernExec;

/* k (NULL: kern_default()) at act on pool (a reference is taken; NULL: the
 * global pool); with act = KERN_ACT_INT8 and a kernel without rows_q8, the
 * reference's rows_q8 runs (the same results) */
void kern_exec_init(KernExec *ex, const BitKernel *k, int act, Pool *pool);
/* drop the pool reference */
void kern_exec_fini(KernExec *ex);
/* dst = src, with its own pool reference (dst initialised or zeroed) */
void kern_exec_copy(KernExec *dst, const KernExec *src);

/* ---- the decode path's vector helpers ----------------------------------
 * What model_step and a lean student's output head run besides the 1-bit
 * kernels: one query head's attention over cached keys and values in FP32
 * or FP16, FP16 <-> FP32 and BF16 -> FP32 conversion, and GEMV rows over
 * FP16, BF16 or Q8_0 weights (a lean student's head, a mapped teacher). As for the 1-bit kernels: a scalar reference (ref.c) and AVX2
 * (+FMA, F16C) / AVX-512 variants (x86/), one table (table.c), the default
 * the fastest the CPU has ($ONEBIT_KERNEL=ref: the reference). The variants
 * differ from the reference only in the order of the float sums
 * (tests/test_decode); the conversions are exact and identical (FP16 is
 * IEEE binary16, rounded to nearest even as ob_fp32_to_fp16), and so are
 * the K-quant block expansions (tests/test_quants).
 *
 * Q8_0 is GGUF's: blocks of 32 weights, an FP16 scale d and 32 int8 q,
 * weight = d * q; a row of cols weights (cols a multiple of 32) is cols / 32
 * blocks. Pure functions: any thread. */
#define KERN_Q8_0_BLOCK 32
typedef struct {
    uint16_t d;       /* FP16 scale */
    int8_t q[KERN_Q8_0_BLOCK];
} KernQ8_0;           /* 34 bytes, as in a GGUF file */

typedef struct KernDec {
    const char *name;
    unsigned needs;   /* CPU_* features */
    /* scores: s[t] = scale * sum_{i<hd} q[i] * K[t * ld + i], t < n */
    void (*score_f32)(const float *q, const float *K, size_t ld, int hd, int n, float scale, float *s);
    void (*score_f16)(const float *q, const uint16_t *K, size_t ld, int hd, int n, float scale, float *s);
    /* weighted values: out[i] += sum_{t<n} a[t] * V[t * ld + i], i < hd */
    void (*accum_f32)(const float *a, const float *V, size_t ld, int hd, int n, float *out);
    void (*accum_f16)(const float *a, const uint16_t *V, size_t ld, int hd, int n, float *out);
    void (*to_f16)(const float *x, uint16_t *y, size_t n);
    void (*from_f16)(const uint16_t *x, float *y, size_t n);
    /* y[r] = sum_c W[r][c] * x[c] for r in [r0, r1), rows of cols weights */
    void (*gemv_f16)(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1);
    void (*gemv_q8_0)(const KernQ8_0 *W, const float *x, float *y, int cols, int r0, int r1);
    /* BF16 (the upper 16 bits of an FP32; a mapped teacher's weights):
     * to FP32 (exact), and GEMV rows as gemv_f16 */
    void (*from_bf16)(const uint16_t *x, float *y, size_t n);
    void (*gemv_bf16)(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1);
    /* the 256 weights of a ggml K-quant block once format/quants.c has
     * decoded its scales: Q4_K, y[32 j + l] = a[j] * q - m[j] with q the low
     * (j even) or high (j odd) nibble of qs[32 (j / 2) + l]; Q5_K, the same
     * with bit j of qh[l] as q's fifth bit; Q6_K, y[i] = a[i / 16] * (q - 32)
     * with q's low 4 bits in ql[64 h + 32 (g % 2) + l] (the high nibble for
     * g >= 2) and bits 4-5 in bits 2g, 2g+1 of qh[32 h + l], i = 128 h + 32 g
     * + l. Exact: every variant gives the reference's bits (a multiply, then
     * a subtraction; no FMA). */
    void (*dq_q4_k)(const uint8_t *qs, const float *a, const float *m, float *y);
    /* the 32 weights of a Q4_0 (qh 0, mid 8) or Q5_0 (mid 16) block:
     * y[i] = d * (q - mid), q the low (i < 16) or high nibble of
     * qs[i % 16] with bit i of qh as its fifth bit. Exact, as the others. */
    void (*dq_sym)(const uint8_t *qs, uint32_t qh, int mid, float d, float *y);
    void (*dq_q5_k)(const uint8_t *qs, const uint8_t *qh, const float *a, const float *m, float *y);
    void (*dq_q6_k)(const uint8_t *ql, const uint8_t *qh, const float *a, float *y);
    /* one key block of a blocked (flash-attention style) causal attention
     * over FP16 keys and values, for a tile of nq <= KERN_ATTN_QB queries
     * held transposed (lanes = queries): Qt[d * KERN_ATTN_QB + i] is query
     * i's element d (d < hd; lanes i >= nq zero); K[t * ld + d] and
     * V[t * ld + d] the block's n <= KERN_ATTN_KB keys and values. Query i
     * sees key t iff t <= diag + i (diag: the first query's position minus
     * the first key's). With s_it = scale * (query i . key t) over the keys
     * it sees and M_i the larger of m[i] and their maximum: a_i = exp(m[i] -
     * M_i), l[i] = l[i] a_i + sum_t exp(s_it - M_i), O[i * ldo + d] =
     * O[i * ldo + d] a_i + sum_t exp(s_it - M_i) V[t][d] (i < nq), m[i] =
     * M_i (sums over t ascending). Start with m = -inf, l = 0, O = 0 and a
     * first block whose key 0 every lane sees (diag >= 0); the output is
     * O[i] / l[i] after the last block. m and l have KERN_ATTN_QB lanes, ws
     * KERN_ATTN_WS(hd) floats of scratch. */
    void (*attn_f16)(const float *Qt, int nq, const uint16_t *K, const uint16_t *V, size_t ld, int hd, int n, int diag,
                     float scale, float *m, float *l, float *O, size_t ldo, float *ws);
    /* one decode step's attention over n (1..KERN_STEP_N) cached positions
     * for all nh query heads at once (flash-decoding), with FP16 keys and
     * values K[t * ld + j], V[t * ld + j] (nh / group heads of hd each) and
     * the queries q (nh, hd): with s_ht = scale * (q_h . K_t[h / group]) and
     * M_h the larger of m[h] and the s_ht, a_h = exp(m[h] - M_h), l[h] =
     * l[h] a_h + sum_t exp(s_ht - M_h), o_h = o_h a_h + sum_t exp(s_ht - M_h)
     * V_t[h / group] (o (nh, hd)), m[h] = M_h. Start with m = -inf, l = 0,
     * o = 0; the output is o_h / l[h] after the last call. sc: scratch of
     * KERN_STEP_SC(nh) floats. The variants read the cached rows one after
     * another, each once (one stream through the cache). */
    void (*step_f16)(const float *q, const uint16_t *K, const uint16_t *V, size_t ld, int nh, int group, int hd, int n,
                     float scale, float *m, float *l, float *o, float *sc);
} KernDec;
#define KERN_STEP_N 64
#define KERN_STEP_SC(nh) ((size_t)(nh) * (KERN_STEP_N + 1))
/* attn_f16's queries per tile, largest key block, and scratch floats (the
 * block's keys or values in FP32, its weights, a spare output row) */
#define KERN_ATTN_QB 16
#define KERN_ATTN_KB 64
#define KERN_ATTN_WS(hd) ((size_t)KERN_ATTN_KB * ((size_t)(hd) + KERN_ATTN_QB) + (size_t)(hd))

enum { KERN_DEC_REF, KERN_DEC_AVX2, KERN_DEC_AVX512, KERN_DEC_AVX512BF16, KERN_DEC_NVARIANTS };
/* entry id (KERN_DEC_*), available on this CPU or not; NULL past the end */
const KernDec *kern_dec_variant(int id);
int kern_dec_available(const KernDec *d);
/* the fastest available, or the reference when $ONEBIT_KERNEL is "ref";
 * constant for the process */
const KernDec *kern_dec_default(void);
/* Q8_0 of n values (n a multiple of 32) as GGUF quantizes: d = max|x| / 127,
 * q = roundf(x / d) (d = 0: q = 0); and back */
void kern_q8_0_quantize(const float *x, KernQ8_0 *y, size_t n);
void kern_q8_0_to_f32(const KernQ8_0 *x, float *y, size_t n);

/* ---- operation throughput (bench ops, x86/ops.c) -------------------------
 * ops per nanosecond of the vector operations the int8 kernels are made of,
 * measured on registers in independent chains (throughput), with the clock
 * from a chain of dependent scalar adds first (r[0], one a cycle). Fills at
 * most max entries (iters loop iterations each; only those the CPU has) and
 * returns how many; 0 on hosts without the x86 kernels. Any thread. */
typedef struct {
    const char *name, *what;
    double per_ns;
} KernOpRate;
int kern_op_rates(KernOpRate *r, int max, long iters);

#define KERN_LN_EPS 1e-5f

/* the generic (scalar) helpers, also what KernExec holds with the reference */
void kern_quantize_ref(const float *gx, int in_pad, int16_t *q, float *scale);
void kern_mul_ref(const float *x, const float *g, float *y, int n);
void kern_silu_mul_ref(float *h, const float *u, size_t n);
void kern_rmsnorm_ref(float *out, const float *x, const float *w, int n, float eps);
void kern_layernorm_ref(const float *x, float *y, int n);
/* y = (y - mean) / sqrt(var + eps) in place (double sums); returns the
 * 1/sqrt(var + eps) it used (the backward pass keeps it) */
float kern_layernorm_inplace(float *y, int n, double eps);
void kern_gemv_rows_ref(const float *W, const float *x, float *y, int cols, int r0, int r1);

#endif
