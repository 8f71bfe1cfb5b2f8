/* src/kernels/x86/avx512.c -- AVX-512 variants of the 1-bit kernel and its
 * helpers (see kernels.h), compiled on x86 only, each function with a target
 * attribute; table.c lists them in its table and runs them only when
 * base/cpu.c says the CPU has AVX-512F/BW/VL/DQ and FMA. Pure functions of
 * their arguments: any thread may call any of them at any time.
 *
 * "avx512" (kern_rows_avx512; the default on AVX-512 CPUs): FP32 lookup tables, T-MAC
 * style. For a group of input columns and a token, the table of all signed
 * sums  ±v0 ±v1 ...  (bit k of the entry index = sign of column k, 1 = +)
 * sits in registers; the kernel-private layout puts the same 32 columns of 16
 * rows in the 16 dword lanes of one load, and one vpermt2ps looks up 16 rows
 * at once with the low 5 bits of every lane. Groups of 6 columns with a sign
 * column, indices made by multiplies, on its own kbits layout: see "6-column
 * groups with sign columns". (Its predecessors, 4-column vpermps tables and
 * 5/4-column vpermt2ps tables with shifted indices, took 21% and 6-12% longer
 * at N = 1, `bench gemv --rows 1024 --cols 4096 --threads 1`, on this
 * Zen 5; they are in the history, commit 404ca34.)
 *
 * "avx512vnni" (kern_rows_q8_vnni, a measured alternative on AVX512_VNNI
 * CPUs): avx512 with vpdpbusd dot products for int8 activations and N > 1;
 * see "avx512vnni" below.
 *
 * "avx512mask" (kern_rows_avx512mask, a measured alternative): canonical layout,
 * masked adds. P = sum of gx where the sign bit is 1, one _mm512_mask_add_ps
 * per 16 columns; the row's value is 2P - sum(gx).
 *
 * At the end, the decode helpers (KernDec: attention over FP32/FP16 caches,
 * FP16 and BF16 conversion, FP16/BF16/Q8_0 GEMV rows), 16 lanes with masked
 * tails. BF16 is widened by a shift (the upper half of an FP32), so the
 * products are those of the reference. On CPUs with AVX512_BF16 the BF16
 * GEMV (kern_dec_gemv_bf16_avx512bf16) uses vdpbf16ps instead: x is split
 * into BF16 hi + lo parts (x - hi rounded again), two dot products of
 * pairs per 32 weights; the products are exact and x is kept to about 16
 * bits of mantissa, so rows differ from the reference by ~1e-6 relative.
 */
#include "kernels/variants.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))


/* sign vectors: lane i of S[k] is +1 if bit k of i is set, else -1 */
T512 static inline void sign_vectors(__m512 S[4])
{
    for (int k = 0; k < 4; k++) {
        __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        __mmask16 m = _mm512_test_epi32_mask(lane, _mm512_set1_epi32(1 << k));
        S[k] = _mm512_mask_blend_ps(m, _mm512_set1_ps(-1.0f), _mm512_set1_ps(1.0f));
    }
}

/* the table of columns v[0..3]: entry i = sum_k (bit k of i ? v[k] : -v[k]) */
T512 static inline __m512 make_table(const float *v, const __m512 S[4])
{
    __m512 t = _mm512_mul_ps(_mm512_set1_ps(v[0]), S[0]);
    t = _mm512_fmadd_ps(_mm512_set1_ps(v[1]), S[1], t);
    t = _mm512_fmadd_ps(_mm512_set1_ps(v[2]), S[2], t);
    return _mm512_fmadd_ps(_mm512_set1_ps(v[3]), S[3], t);
}

T512 static void scale_h(const KernMat *km, int N, int b0, int b1, float *acc)
{
    int out_pad = kern_nblk(km) * KERN_ROWBLK;
    for (int b = b0; b < b1; b++) {
        int r = b * KERN_ROWBLK, left = km->out - r;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 h = _mm512_maskz_loadu_ps(m, km->h + r);
        for (int n = 0; n < N; n++) {
            float *a = acc + (size_t)n * out_pad + r;
            _mm512_storeu_ps(a, _mm512_mul_ps(_mm512_loadu_ps(a), h));
        }
    }
}

/* ---- 6-column groups with sign columns (KERN_LAYOUT_L6) ----------------
 * Tables of 5 columns (32 entries, two registers for vpermt2ps) over the
 * plain bit order need a shift per group to bring its bits down to the low 5
 * bits that vpermt2ps reads (6 per 32 columns), and the shifts compete with
 * the permutes for the same two pipes. KERN_LAYOUT_L6 (see
 * l6_encode in table.c) orders the bits of each 32-column dword so that
 * the six indices come out of multiplies, which run on other pipes:
 *
 *   group 0: vpmaddwd(w, (1,0))  the low word, sign-extended: bits 0-4 = the
 *            index, bit 31 = bit 15 of w = its sign column
 *   group 1: vpmulhuw(w, 2^11)   bits 5-9 of w
 *   group 2: vpmulhuw(w, 2^6)    bits 10-14
 *   group 3: u = w >> 16         bits 16-20; its sign column is bit 31 of w
 *   group 4: vpmulhuw(u, 2^11)   bits 21-25
 *   group 5: vpmulhuw(u, 2^6)    bits 26-30
 *
 * Groups 0 and 3 cover six columns with a 32-entry table by symmetry: with
 * T[i] = sum_k (bit k of i ? v_k : -v_k) + v_5 over the five index columns,
 * a row whose sixth sign is -1 stores the inverted index and a set sign bit,
 * and -T[~i] is exactly its signed sum; the sign bit is XORed into the
 * looked-up value (one vpternlogd). So 32 columns of 16 rows take 6 permutes,
 * 5 multiplies or shifts, 2 XORs and 6 adds, against 7 permutes, 6 shifts and
 * 7 adds (measured in isolation on this Zen 5: 5.5 against 6.5 cycles; for
 * two tokens sharing the indices 10.2 against 14.0). */
typedef struct {
    __m512 a[6], b[6];  /* entries 0..15 (index bit 4 clear) and 16..31 */
} Tab6;

/* the tables of the 32 columns v[0..31] (the groups of l6_encode in table.c) */
T512 static inline void make_tab6(const float *v, const __m512 S[4], Tab6 *T)
{
    static const int first[6] = {0, 6, 11, 16, 22, 27};
    for (int g = 0; g < 6; g++) {
        const float *c = v + first[g];
        __m512 t = make_table(c, S), v4 = _mm512_set1_ps(c[4]);
        if (g == 0 || g == 3) t = _mm512_add_ps(t, _mm512_set1_ps(c[5]));
        T->a[g] = _mm512_sub_ps(t, v4);
        T->b[g] = _mm512_add_ps(t, v4);
    }
}

/* the six index vectors of the dword vector w (i[0] also carries group 0's
 * sign in bit 31; group 3's is bit 31 of w itself) */
typedef struct { __m512i i[6]; } Idx6;

#define L6_M5 _mm512_set1_epi16(1 << 11)
#define L6_M10 _mm512_set1_epi16(1 << 6)
#define L6_LOW _mm512_set1_epi32(1)
#define L6_SIGN _mm512_set1_epi32((int)0x80000000u)

T512 static inline void idx6(__m512i w, Idx6 *x)
{
    const __m512i u = _mm512_srli_epi32(w, 16);
    x->i[0] = _mm512_madd_epi16(w, L6_LOW);
    x->i[1] = _mm512_mulhi_epu16(w, L6_M5);
    x->i[2] = _mm512_mulhi_epu16(w, L6_M10);
    x->i[3] = u;
    x->i[4] = _mm512_mulhi_epu16(u, L6_M5);
    x->i[5] = _mm512_mulhi_epu16(u, L6_M10);
}

#define P6(x, T, g) _mm512_permutex2var_ps((T).a[g], (x).i[g], (T).b[g])
/* v with the sign bit of s XORed in: v ^ (s & 0x80000000) */
#define FLIP(v, s) _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(v), (s), L6_SIGN, 0x78))

/* the sum over the 32 columns (fixed order); w is the dword vector itself
 * (its bit 31 is group 3's sign) */
#define LUT6(x, w, T, s)                                                      \
    do {                                                                      \
        __m512 s0_ = FLIP(P6(x, T, 0), (x).i[0]), s1_ = P6(x, T, 1);          \
        s0_ = _mm512_add_ps(s0_, P6(x, T, 2));                                \
        s1_ = _mm512_add_ps(s1_, FLIP(P6(x, T, 3), (w)));                     \
        s0_ = _mm512_add_ps(s0_, P6(x, T, 4));                                \
        s1_ = _mm512_add_ps(s1_, P6(x, T, 5));                                \
        s = _mm512_add_ps(s0_, s1_);                                          \
    } while (0)

T512 static void lut6_rows1(const KernMat *km, const float *gx, int b0, int b1, float *acc)
{
    const int wpr = km->words_per_row;
    __m512 S[4];
    sign_vectors(S);
    for (int k = 0; k < wpr; k++) {
        Tab6 TL, TH;
        make_tab6(gx + 64 * k, S, &TL);
        make_tab6(gx + 64 * k + 32, S, &TH);
        const uint32_t *w = km->kbits + kern_kb_off(km, k, b0);
        float *a = acc + (size_t)b0 * KERN_ROWBLK;
        for (int b = b0; b < b1; b++, w += 32, a += KERN_ROWBLK) {
            _mm_prefetch((const char *)(w + KERN_PF_DW), _MM_HINT_T0);
            _mm_prefetch((const char *)(w + KERN_PF_DW + 16), _MM_HINT_T0);
            const __m512i lo = _mm512_load_si512((const void *)w), hi = _mm512_load_si512((const void *)(w + 16));
            Idx6 xl, xh;
            idx6(lo, &xl);
            idx6(hi, &xh);
            __m512 sl, sh;
            LUT6(xl, lo, TL, sl);
            LUT6(xh, hi, TH, sh);
            __m512 s = _mm512_add_ps(sl, sh);
            _mm512_storeu_ps(a, k ? _mm512_add_ps(_mm512_loadu_ps(a), s) : s);
        }
    }
    scale_h(km, 1, b0, b1, acc);
}

/* N > 1: tokens in pairs, their 2 x 12 tables in registers, over the
 * thread's range one block-word half at a time (the tables of a pair are made
 * once per call and serve all its panel segments; the signs of a half, L1- or
 * L2-resident after the first pair, are streamed once per pair). The block
 * loop is LUT6 written out for both tokens, each index vector made once and
 * used by both right away (the same additions in the same order as LUT6;
 * idx6 + LUT6 twice measured 3-5% slower at 11008x4096, N = 8). GCC keeps
 * some of the 24 tables on the stack: measured as fast as the 5/4-column
 * pairs, not faster; a token at a time with indices kept in L1 was 2x
 * slower, the stores of the indices being the bottleneck. */
T512 static void lut6_rowsN(const KernMat *km, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = km->words_per_row, nblk = kern_nblk(km), in_pad = kern_in_pad(km);
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    __m512 S[4];
    sign_vectors(S);
    for (int k = 0; k < wpr; k++)
        for (int half = 0; half < 2; half++) {
            const int first = k == 0 && half == 0;
            for (int n = 0; n < N; n += 2) {
                const int two = n + 1 < N;
                Tab6 TA, TB;
                make_tab6(gx + (size_t)n * in_pad + 64 * k + 32 * half, S, &TA);
                make_tab6(gx + (size_t)(two ? n + 1 : n) * in_pad + 64 * k + 32 * half, S, &TB);
                const int pf = n == 0 && half == 0;
                for (int s0 = b0, s1; s0 < b1; s0 = s1) {
                    s1 = kern_seg_end(s0, b1);
                    const uint32_t *w = km->kbits + kern_kb_off(km, k, s0) + 16 * half;
                    float *a = acc + (size_t)n * out_pad + (size_t)s0 * KERN_ROWBLK;
                    for (int b = s0; b < s1; b++, w += 32, a += KERN_ROWBLK) {
                        if (pf) {
                            _mm_prefetch((const char *)(w + KERN_PF_DW), _MM_HINT_T0);
                            _mm_prefetch((const char *)(w + KERN_PF_DW + 16), _MM_HINT_T0);
                        }
                        const __m512i v = _mm512_load_si512((const void *)w);
                        __m512 a0, a1, b0_, b1_;
                        __m512i x = _mm512_madd_epi16(v, L6_LOW);
                        a0 = FLIP(_mm512_permutex2var_ps(TA.a[0], x, TA.b[0]), x);
                        b0_ = FLIP(_mm512_permutex2var_ps(TB.a[0], x, TB.b[0]), x);
                        x = _mm512_mulhi_epu16(v, L6_M5);
                        a1 = _mm512_permutex2var_ps(TA.a[1], x, TA.b[1]);
                        b1_ = _mm512_permutex2var_ps(TB.a[1], x, TB.b[1]);
                        x = _mm512_mulhi_epu16(v, L6_M10);
                        a0 = _mm512_add_ps(a0, _mm512_permutex2var_ps(TA.a[2], x, TA.b[2]));
                        b0_ = _mm512_add_ps(b0_, _mm512_permutex2var_ps(TB.a[2], x, TB.b[2]));
                        const __m512i u = _mm512_srli_epi32(v, 16);
                        a1 = _mm512_add_ps(a1, FLIP(_mm512_permutex2var_ps(TA.a[3], u, TA.b[3]), v));
                        b1_ = _mm512_add_ps(b1_, FLIP(_mm512_permutex2var_ps(TB.a[3], u, TB.b[3]), v));
                        x = _mm512_mulhi_epu16(u, L6_M5);
                        a0 = _mm512_add_ps(a0, _mm512_permutex2var_ps(TA.a[4], x, TA.b[4]));
                        b0_ = _mm512_add_ps(b0_, _mm512_permutex2var_ps(TB.a[4], x, TB.b[4]));
                        x = _mm512_mulhi_epu16(u, L6_M10);
                        a1 = _mm512_add_ps(a1, _mm512_permutex2var_ps(TA.a[5], x, TA.b[5]));
                        b1_ = _mm512_add_ps(b1_, _mm512_permutex2var_ps(TB.a[5], x, TB.b[5]));
                        __m512 sa = _mm512_add_ps(a0, a1);
                        _mm512_storeu_ps(a, first ? sa : _mm512_add_ps(_mm512_loadu_ps(a), sa));
                        if (two) {
                            __m512 sb = _mm512_add_ps(b0_, b1_);
                            float *a2 = a + out_pad;
                            _mm512_storeu_ps(a2, first ? sb : _mm512_add_ps(_mm512_loadu_ps(a2), sb));
                        }
                    }
                }
            }
        }
    scale_h(km, N, b0, b1, acc);
}

T512 void kern_rows_avx512(const KernMat *km, const float *gx, int N, int b0, int b1, float *acc)
{
    if (N > 1) { lut6_rowsN(km, gx, N, b0, b1, acc); return; }
    for (int s = b0, e; s < b1; s = e) {
        e = kern_seg_end(s, b1);
        lut6_rows1(km, gx, s, e, acc);
    }
}

/* kern_gemv_rows_avx512: with the decode helpers at the end (GEMV1_512) */

T512 void kern_mul_avx512(const float *x, const float *g, float *y, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(g + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, g + i)));
    }
}

/* ---- int8 activations on KERN_LAYOUT_W16 (the default with int8) ------
 * A dword lane per row (L6) leaves vpermt2w's 32 word lanes to two column
 * groups of one row, which costs index masking and a negate per group. In
 * W16 a zmm holds 16 columns of 32 rows, one word each, so all 32 lanes look
 * up the same table and the word itself is the index: a 64-entry int16 table
 * (two registers, vpermt2w, which reads the low 6 bits) over columns 0-5 and
 * two 32-entry ones (one register each, vpermw, the low 5 bits) over 6-10
 * (the word >> 6) and 11-15 (>> 11). Per 16 columns of 32 rows and token: 3
 * permutes and 3 adds, and 2 shifts shared by the tokens. (Until 6+5+5 the
 * split was 6+6+4, 5 registers per 16 columns against 4: a token pair's 20
 * table registers spilled in w16_blocks. 11008x4096, N = 128 in chunks of
 * 8, 1 thread, prep and rows alone (/tmp harness), best of 5 alternated
 * runs: 14.9 ms against 15.2; N = 1 0.120 against 0.121.) Whole
 * bitlinear_forward, 11008x4096, N = 1, 2 threads, signs in cache, medians
 * of 2000 alternated calls (6+6+4 tables): 0.067 ms
 * against 0.082 for L6's int8 path and 0.103 for the FP32 kernel (1 thread:
 * 0.122, 0.155, 0.194). Entry e of a table is
 * sum_t (bit t of e ? q_t : -q_t). Two int16 sums per row and token, one
 * per 256-column half of a 512-column block (<= 32512), widened to int32 and
 * added at the end of the block: the exact block sum of kernels.h. */
typedef struct {
    __m512i a0, b0;  /* columns 0-5 (entries 0-31, 32-63) */
    __m512i t1, t2;  /* columns 6-10 and 11-15 (entries 0-31) */
} TabX;

/* partial sums over 5 columns: lane e = sum of c[t] for the bits t of e */
T512 static inline __m512i tabx_p5(int16_t c0, int16_t c1, int16_t c2, int16_t c3, int16_t c4)
{
    __m512i p = _mm512_maskz_mov_epi16(0xAAAAAAAAu, _mm512_set1_epi16(c0));
    p = _mm512_mask_add_epi16(p, 0xCCCCCCCCu, p, _mm512_set1_epi16(c1));
    p = _mm512_mask_add_epi16(p, 0xF0F0F0F0u, p, _mm512_set1_epi16(c2));
    p = _mm512_mask_add_epi16(p, 0xFF00FF00u, p, _mm512_set1_epi16(c3));
    return _mm512_mask_add_epi16(p, 0xFFFF0000u, p, _mm512_set1_epi16(c4));
}

/* the table of the 5 columns c[0..4]: 2 p - (the sum of all 5) */
T512 static inline __m512i tabx_t5(const int16_t *c)
{
    __m512i p = tabx_p5(c[0], c[1], c[2], c[3], c[4]);
    return _mm512_sub_epi16(_mm512_add_epi16(p, p), _mm512_permutexvar_epi16(_mm512_set1_epi16(31), p));
}

/* the tables of the 16 columns q[0..15] */
T512 static inline void make_tabx(const int16_t *q, TabX *T)
{
    __m512i t = tabx_t5(q), v5 = _mm512_set1_epi16(q[5]);
    T->a0 = _mm512_sub_epi16(t, v5);
    T->b0 = _mm512_add_epi16(t, v5);
    T->t1 = tabx_t5(q + 6);
    T->t2 = tabx_t5(q + 11);
}

/* the table indices of v beyond its low 6 bits: *i1 = v >> 6 and *i2 =
 * v >> 11, the second as the high half of v * 32, a multiply that runs beside
 * the permutes where a second shift competes with them for the same pipes (as
 * in KERN_LAYOUT_L6). v is loaded into a register once: the compiler would
 * fold the load into both index operations. 11008x4096, N = 1, alternated
 * calls in one process (/tmp harness): one panel hot on 1 thread, 4.97
 * cycles per 32 rows x 32 columns against 5.75 with two shifts and folded
 * loads; cold on 2 threads, w16_seg1 alone 0.099-0.100 ms against
 * 0.103-0.106, and 1-4% through rows_q8 in a slower phase; N = 8 about 1.5% */
T512 static inline __attribute__((always_inline)) void w16_idx(__m512i *v, __m512i *i1, __m512i *i2)
{
    __asm__("" : "+v"(*v));
    *i1 = _mm512_srli_epi16(*v, 6);
    *i2 = _mm512_mulhi_epu16(*v, _mm512_set1_epi16(32));
}

/* the 16 columns of 32 rows in v (i1 = v >> 6, i2 = v >> 11) */
#define TABX_SUM(T, v, i1, i2)                                                                        \
    _mm512_add_epi16(_mm512_add_epi16(_mm512_permutex2var_epi16((T).a0, (v), (T).b0),                  \
                                      _mm512_permutexvar_epi16((i1), (T).t1)),                         \
                     _mm512_permutexvar_epi16((i2), (T).t2))

/* software prefetch distance along a panel's stream for this kernel, in
 * uint16 (5 KiB; not a multiple of 4 KiB, see the L6 notes in the history) */
#ifndef W16_PF
#define W16_PF (2560)
#endif

/* where the sums go at the end of a 512-column block (w16_blocks with
 * end = 1): token t's block scale at scale[t * nq], its acc (row 32 w0) at
 * acc + t * out_pad; second: the block has a first half in the int16 slot
 * 32 words before; full: the last of the wblocks has both 16-row blocks in
 * acc (else only the first) */
typedef struct {
    const float *scale;
    float *acc;
    size_t out_pad;
    int nq, second, jq, full;
} W16End;

/* nb wblocks of one 16-column word of a 32-column index for nt (1 to 4)
 * tokens: the words at w (64 apart), the tables x[t] (as values, loaded
 * once), the int16 sums of token t and wblock b at a + t * stride +
 * b * wstep. Four tokens share the two index operations of a word: 26 vector
 * operations per 2048 multiply-adds, against 28 with token pairs over both
 * words of the index (16 table registers; the AB harness below, medians of
 * 60-100 alternated calls, 1 thread: 4096x4096 5.43 ms against 5.53,
 * 11008x4096 14.85 against 15.14). end (a constant): 0 keeps the sums
 * there; 1 (the end of a 512-column block, after the second word) widens
 * them, adds the first half's int16 sums (E->second) and puts them into acc
 * with the block's scale, while they are in registers. The widening is two
 * vpmaddwd (even and odd rows, on the multiply pipes beside the permutes:
 * vpmovsxwd and vextracti64x4 take the permute pipe), so acc holds a
 * wblock's rows as 0, 2, .., 30, 1, 3, .., 31 (w16_scale_h puts them back in
 * order; the last wblock with one 16-row block 0, 2, .., 14, 1, 3, .., 15).
 * Against w16_flush's pass over acc16 after each 256-column half:
 * `bench gemv --rows 11008 --cols 4096 --batch 128 --threads 1 --act int8`,
 * alternated binaries, 15.6-15.7 ms against 16.4. (AB harness: the kernel's
 * prep and rows over N = 128 in chunks of 8, two builds of this file linked
 * into one program, called alternately.) */
T512 static inline __attribute__((always_inline)) void w16_blocks(const uint16_t *w, int nb, const TabX *x, const int nt, int16_t *a,
                                                                   size_t stride, size_t wstep, int first, int pf, const int end,
                                                                   const W16End *E)
{
    TabX A[4];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        A[t].a0 = _mm512_load_si512((const void *)&x[t].a0);
        A[t].b0 = _mm512_load_si512((const void *)&x[t].b0);
        A[t].t1 = _mm512_load_si512((const void *)&x[t].t1);
        A[t].t2 = _mm512_load_si512((const void *)&x[t].t2);
    }
    for (int b = 0; b < nb; b++, w += 64, a += wstep) {
        if (pf) {
            _mm_prefetch((const char *)(w + W16_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(w + W16_PF + 32), _MM_HINT_T0);
        }
        /* the next call's tables (the 4 tokens after these, or the next
         * word's first 4: prep is word-major), a line an iteration. AB
         * harness, 4096x4096, best of 60 alternated calls, 3 runs: 5.26-5.28
         * ms against 5.44-5.47 without, 5.38-5.43 two calls ahead */
        _mm_prefetch((const char *)((uintptr_t)(x + nt) + 64 * (b & 15)), _MM_HINT_T0);
        __m512i v = _mm512_load_si512((const void *)w), i1, i2;
        w16_idx(&v, &i1, &i2);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            __m512i s = TABX_SUM(A[t], v, i1, i2);
            int16_t *ap = a + t * stride;
            if (!first) s = _mm512_add_epi16(_mm512_load_si512((const void *)ap), s);
            if (end == 0) {
                _mm512_store_si512((void *)ap, s);
                continue;
            }
            const __m512i ev = _mm512_set1_epi32(1), od = _mm512_set1_epi32(0x10000);
            __m512i r0 = _mm512_madd_epi16(s, ev), r1 = _mm512_madd_epi16(s, od);
            if (E->second) {
                const __m512i h = _mm512_load_si512((const void *)(ap - 32));
                r0 = _mm512_add_epi32(r0, _mm512_madd_epi16(h, ev));
                r1 = _mm512_add_epi32(r1, _mm512_madd_epi16(h, od));
            }
            const __m512 sc = _mm512_set1_ps(E->scale[(size_t)t * E->nq]);
            float *fp = E->acc + (size_t)t * E->out_pad + (size_t)b * 32;
            __m512 f0 = _mm512_cvtepi32_ps(r0), f1 = _mm512_cvtepi32_ps(r1);
            if (b < nb - 1 || E->full) {
                _mm512_storeu_ps(fp, E->jq ? _mm512_fmadd_ps(sc, f0, _mm512_loadu_ps(fp)) : _mm512_mul_ps(sc, f0));
                _mm512_storeu_ps(fp + 16, E->jq ? _mm512_fmadd_ps(sc, f1, _mm512_loadu_ps(fp + 16)) : _mm512_mul_ps(sc, f1));
            } else {
                __m512 f = _mm512_shuffle_f32x4(f0, f1, 0x44);
                _mm512_storeu_ps(fp, E->jq ? _mm512_fmadd_ps(sc, f, _mm512_loadu_ps(fp)) : _mm512_mul_ps(sc, f));
            }
        }
    }
}

/* the tables of every 16-column word u of every token, made once per call:
 * word u of token n at u * N + n */
static size_t w16_prep_bytes(const KernMat *km, int N) { return (size_t)kern_in_pad(km) / 16 * N * sizeof(TabX); }

T512 static void w16_prep(const KernMat *km, const int16_t *q, int N, int n0, int n1, void *prep)
{
    const int in_pad = kern_in_pad(km);
    TabX *T = prep;
    for (int u = 0; u < in_pad / 16; u++)
        for (int n = n0; n < n1; n++) make_tabx(q + (size_t)n * in_pad + 16 * u, &T[(size_t)u * N + n]);
}

/* N = 1 (w16_seg1; N > 1 does this inside w16_blocks): the end of a
 * 256-column half block at the 32-column index j, for the wblocks [w0, w1)
 * of token n: its int16 sums widened and kept as int32 (the first half), or
 * added to the first half's and into acc (the end of the 512-column
 * block) */
T512 static inline void w16_flush(const KernMat *km, const float *scale, int N, int n, int j, int w0, int w1, float *acc,
                                  int16_t *acc16)
{
    const int nj = kern_in_pad(km) / 32, nq = kern_nqblk(km), nblk = kern_nblk(km), jpq = KERN_QBLOCK / 32;
    const int last = j % jpq == jpq - 1 || j == nj - 1, jq = j / jpq, second = j % jpq >= jpq / 2;
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    const __m512 sc = _mm512_set1_ps(scale[(size_t)n * nq + jq]);
    for (int wb = w0; wb < w1; wb++) {
        int16_t *a16 = acc16 + (size_t)n * kern_acc16_per_token(km) + (size_t)wb * 96;
        int32_t *a32 = (int32_t *)(a16 + 32);
        const __m512i S = _mm512_load_si512((const void *)a16);
        __m512i r0 = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(S));
        __m512i r1 = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(S, 1));
        if (second) {
            r0 = _mm512_add_epi32(r0, _mm512_load_si512((const void *)a32));
            r1 = _mm512_add_epi32(r1, _mm512_load_si512((const void *)(a32 + 16)));
        }
        if (!last) {
            _mm512_store_si512((void *)a32, r0);
            _mm512_store_si512((void *)(a32 + 16), r1);
            continue;
        }
        for (int hh = 0; hh < 2 && 2 * wb + hh < nblk; hh++) {
            __m512 f = _mm512_cvtepi32_ps(hh ? r1 : r0);
            float *ap = acc + (size_t)n * out_pad + (size_t)(2 * wb + hh) * KERN_ROWBLK;
            _mm512_storeu_ps(ap, jq ? _mm512_fmadd_ps(sc, f, _mm512_loadu_ps(ap)) : _mm512_mul_ps(sc, f));
        }
    }
}

/* whether the 32-column index j starts a 256-column half block */
static inline int w16_half_start(int j) { return j % (KERN_QBLOCK / 64) == 0; }

/* whether the 32-column index j ends a 256-column half block (or the input) */
static inline int w16_half_end(const KernMat *km, int j)
{
    return j % (KERN_QBLOCK / 64) == KERN_QBLOCK / 64 - 1 || j == kern_in_pad(km) / 32 - 1;
}

/* N = 1: the loop of w16_blocks with as little as possible around it (a
 * segment's 32-column indices are 16 wblocks each, so the work per index
 * is short). 11008x4096, signs in cache, alternated calls: 0.066-0.075 ms on
 * 2 threads against 0.077-0.086 through w16_blocks, 0.117-0.123 against
 * 0.135-0.139 on 1; no difference cold. No software prefetch: the hardware
 * prefetchers alone stream the signs faster than with w16_blocks' W16_PF
 * into L1 (`bench gemv --cold --act int8 --threads 2`, 3 rounds alternated,
 * 11008x4096 0.189-0.200 against 0.199-0.209 ms, 4096x11008 0.160-0.201
 * against 0.190-0.229, 4096x4096 0.069-0.072 against 0.073-0.079; the 7B
 * student's int8 decode at context 64, 26.4-26.8 against 23.5-25.2 tok/s;
 * prefetching 8 KiB ahead into L2 was about as fast as none) */
T512 static void w16_seg1(const KernMat *km, const float *scale, const TabX *T, int w0, int w1, float *acc, int16_t *acc16)
{
    const int nj = kern_in_pad(km) / 32, nb = w1 - w0;
    const uint16_t *w = (const uint16_t *)km->kbits + kern_w16_off(km, 0, w0);
    const size_t step = kern_w16_off(km, 1, w0) - kern_w16_off(km, 0, w0); /* from one index to the next */
    int16_t *a0 = acc16 + (size_t)w0 * 96;
    for (int j = 0; j < nj; j++, w += step) {
        const TabX A = T[2 * j], B = T[2 * j + 1];
        const int first = w16_half_start(j);
        const uint16_t *p = w;
        int16_t *a = a0;
        for (int b = 0; b < nb; b++, p += 64, a += 96) {
            __m512i v0 = _mm512_load_si512((const void *)p), v1 = _mm512_load_si512((const void *)(p + 32)), i01, i02, i11, i12;
            w16_idx(&v0, &i01, &i02);
            w16_idx(&v1, &i11, &i12);
            __m512i s = _mm512_add_epi16(TABX_SUM(A, v0, i01, i02), TABX_SUM(B, v1, i11, i12));
            _mm512_store_si512((void *)a, first ? s : _mm512_add_epi16(_mm512_load_si512((const void *)a), s));
        }
        if (w16_half_end(km, j)) w16_flush(km, scale, 1, 0, j, w0, w1, acc, acc16);
    }
}

/* scale_h for acc from w16_blocks: a wblock's rows 0, 2, .., 30, 1, 3, .., 31
 * (a last wblock with one 16-row block: 0, 2, .., 14, 1, 3, .., 15) back in
 * order, times h */
T512 static void w16_scale_h(const KernMat *km, int N, int b0, int b1, float *acc)
{
    const int out_pad = kern_nblk(km) * KERN_ROWBLK;
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i one = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
    for (int b = b0; b < b1; b += 2) {
        const int r = b * KERN_ROWBLK, left = km->out - r;
        const __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
        const __m512 h0 = _mm512_maskz_loadu_ps(m0, km->h + r), h1 = _mm512_maskz_loadu_ps(m1, km->h + r + 16);
        for (int n = 0; n < N; n++) {
            float *a = acc + (size_t)n * out_pad + r;
            if (b + 1 < b1) {
                const __m512 e = _mm512_loadu_ps(a), o = _mm512_loadu_ps(a + 16);
                _mm512_storeu_ps(a, _mm512_mul_ps(_mm512_permutex2var_ps(e, lo, o), h0));
                _mm512_storeu_ps(a + 16, _mm512_mul_ps(_mm512_permutex2var_ps(e, hi, o), h1));
            } else {
                _mm512_storeu_ps(a, _mm512_mul_ps(_mm512_permutexvar_ps(one, _mm512_loadu_ps(a)), h0));
            }
        }
    }
}

/* blocks [b0, b1) (b0 even: kern_blk_align), panel segment by panel
 * segment: for each 32-column index and each of its two 16-column words,
 * tokens in fours over the segment's wblocks; at the end of a 512-column
 * block its sums into acc. N > 1 keeps acc16 as 64 int16 per token and
 * wblock (the two 256-column halves), the N tokens of a wblock side by side:
 * a token's sums kern_acc16_per_token apart (24 KiB at 4096 rows) put the
 * four tokens of a pass on the same 4 KiB offsets. AB harness, 4096x4096,
 * 1 thread: 5.4 ms against 6.5-7.3 */
/* w16_blocks for word u of the tokens n .. n + nt - 1 (inside w16_rows) */
#define W16_CALL(nt, end) w16_blocks(w + 32 * u, nb, x + n, nt, a, stride, wstep, first && !u, !u && !n, end, &E)

T512 static void w16_rows(const KernMat *km, const float *scale, const void *prep, int N, int b0, int b1, float *acc, int16_t *acc16)
{
    const int nj = kern_in_pad(km) / 32, nq = kern_nqblk(km), nblk = kern_nblk(km), jpq = KERN_QBLOCK / 32;
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    const size_t stride = 64, wstep = (size_t)N * 64;
    const uint16_t *kb = (const uint16_t *)km->kbits;
    const TabX *T = prep;
    for (int s0 = b0, s1; s0 < b1; s0 = s1) {
        s1 = kern_seg_end(s0, b1);
        const int w0 = s0 / 2, w1 = (s1 + 1) / 2;
        if (N == 1) {
            w16_seg1(km, scale, T, w0, w1, acc, acc16);
            continue;
        }
        const int nb = w1 - w0;
        for (int j = 0; j < nj; j++) {
            const uint16_t *w = kb + kern_w16_off(km, j, w0);
            const int first = w16_half_start(j);
            /* the first 256-column half of a block in the int16 slot at 0, the second at 32 */
            const int second = j % jpq >= jpq / 2, end = j % jpq == jpq - 1 || j == nj - 1;
            for (int u = 0; u < 2; u++) {
                const TabX *x = T + (size_t)(2 * j + u) * N;
                W16End E = {scale + j / jpq, acc + (size_t)w0 * 32, out_pad, nq, second, j / jpq, !(s1 & 1)};
                for (int n = 0; n < N; n += 4) {
                    int16_t *a = acc16 + ((size_t)w0 * N + n) * 64 + 32 * second;
                    const int nt = N - n < 4 ? N - n : 4;
                    if (!(end && u)) {
                        if (nt == 4) W16_CALL(4, 0);
                        else if (nt == 3) W16_CALL(3, 0);
                        else if (nt == 2) W16_CALL(2, 0);
                        else W16_CALL(1, 0);
                    } else {
                        if (nt == 4) W16_CALL(4, 1);
                        else if (nt == 3) W16_CALL(3, 1);
                        else if (nt == 2) W16_CALL(2, 1);
                        else W16_CALL(1, 1);
                    }
                    E.scale += 4 * (size_t)nq;
                    E.acc += 4 * out_pad;
                }
            }
        }
    }
    if (N == 1) scale_h(km, N, b0, b1, acc);
    else w16_scale_h(km, N, b0, b1, acc);
}

/* int8 activations: on KERN_LAYOUT_W16 (the variant's layout_q8, which
 * bitlinear packs a layer in for int8) */
size_t kern_prep_q8_bytes_avx512(const KernMat *km, int N)
{
    assert(km->layout == KERN_LAYOUT_W16);
    return w16_prep_bytes(km, N);
}

void kern_prep_q8_avx512(const KernMat *km, const int16_t *q, int N, int n0, int n1, void *prep)
{
    assert(km->layout == KERN_LAYOUT_W16);
    w16_prep(km, q, N, n0, n1, prep);
}

void kern_rows_q8_avx512(const KernMat *km, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1, float *acc,
                    int16_t *acc16)
{
    (void)q;
    assert(km->layout == KERN_LAYOUT_W16);
    w16_rows(km, scale, prep, N, b0, b1, acc, acc16);
}

/* ---- "avx512vnni": int8 activations with vpdpbusd (AVX512_VNNI) ---------
 * The avx512 variant with another rows_q8 for N > 1 (N = 1 runs avx512's
 * lookup tables, on the same KERN_LAYOUT_W16). With bits w in {0, 1} (1 =
 * +1) a row's block sum is  sum s q = 2 sum w q - sum q : vpdpbusd adds, in
 * each of 16 dword lanes (16 rows), 4 products of unsigned bytes (w, 0 or 1)
 * and signed bytes (q, 4 columns of a token broadcast to every lane) to an
 * int32, exactly. The bits of a 16-column word of 16 rows (a half of a
 * W16 load, zero-extended to one dword per row) become the w bytes of 4
 * columns at a time by a byte shuffle (each lane's byte of those columns to
 * its 4 bytes), a test against (1, 2, 4, 8) or (16, 32, 64, 128) and a
 * masked move of ones: 3 operations shared by KV_T tokens, whose int32 sums
 * stay in registers for a 512-column block; then 2 sum - sum q (per token
 * and block, made in prep) is exact, and the scaling is the reference's:
 * sc * isum for the first block, fmaf(sc, isum, s) after, times h. The
 * prep holds q as bytes, 4 columns of the N tokens per 4N bytes (so a
 * tile's broadcasts are at fixed offsets), then the sums of q (N, nq).
 * Not the default: a vpdpbusd does 64 products (16 rows x 4 columns), where
 * W16's tables do 32 rows x 16 columns in 3 permutes and 3 adds (about 85
 * products an operation against at most 64, and 52 with the expansion),
 * and on this Zen 5 (a busy 2-core VM) vpdpbusd, vpermw and vpaddd each
 * measured about the same time per operation. int8, 11008x4096, N = 128
 * (bench gemv, mins of 10): 30-36 ms on 2 threads against 19.3 for avx512;
 * 1024x4096, N = 64, 1 thread: 1.53-1.58 ms against 0.86. Kept for
 * comparison, and for CPUs where vpdpbusd is the cheaper operation. */
#define TVNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,avx512vnni")))
#define KV_T 16 /* tokens per tile: 16 int32 accumulators */

static size_t vnni_q_bytes(const KernMat *km, int N) { return ((size_t)kern_in_pad(km) * N + 63) & ~(size_t)63; }

size_t kern_prep_q8_bytes_vnni(const KernMat *km, int N)
{
    assert(km->layout == KERN_LAYOUT_W16);
    if (N == 1) return w16_prep_bytes(km, N);
    return vnni_q_bytes(km, N) + (size_t)N * kern_nqblk(km) * sizeof(int32_t);
}

TVNNI void kern_prep_q8_vnni(const KernMat *km, const int16_t *q, int N, int n0, int n1, void *prep)
{
    assert(km->layout == KERN_LAYOUT_W16);
    if (N == 1) {
        w16_prep(km, q, N, n0, n1, prep);
        return;
    }
    const int in_pad = kern_in_pad(km), nq = kern_nqblk(km);
    int8_t *Q = prep;
    int32_t *S = (int32_t *)((char *)prep + vnni_q_bytes(km, N));
    for (int n = n0; n < n1; n++) {
        const int16_t *qn = q + (size_t)n * in_pad;
        for (int j = 0; j < nq; j++) S[(size_t)n * nq + j] = 0;
        for (int c = 0; c < in_pad; c += 16) {
            __m512i v = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(qn + c)));
            S[(size_t)n * nq + c / KERN_QBLOCK] += _mm512_reduce_add_epi32(v);
            int32_t d[4];
            _mm_storeu_si128((__m128i *)d, _mm512_cvtepi32_epi8(v));
            for (int k = 0; k < 4; k++) memcpy(Q + ((size_t)(c / 4 + k) * N + n) * 4, &d[k], 4);
        }
    }
}

/* the w bytes (0 or 1) of columns 4g .. 4g+3 of each lane's 16 (e: one
 * dword per row, the row's 16 bits in its low word) */
TVNNI static inline __attribute__((always_inline)) __m512i vnni_w(__m512i e, int g)
{
    /* byte 0 (columns 0-7) or 1 (8-15) of each dword of a 128-bit lane */
    const __m512i sh = _mm512_add_epi8(_mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0),
                                       _mm512_set1_epi8(g < 2 ? 0 : 1));
    const __m512i bit = _mm512_set1_epi32(g & 1 ? (int)0x80402010 : 0x08040201);
    __mmask64 m = _mm512_test_epi8_mask(_mm512_shuffle_epi8(e, sh), bit);
    return _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(1));
}

/* *a += the dot products of w's unsigned bytes and the 4 signed bytes at q
 * in every lane: vpdpbusd with an embedded broadcast (GCC would load the
 * broadcast into a register first, an operation per vpdpbusd) */
TVNNI static inline __attribute__((always_inline)) void vnni_dp(__m512i *a, __m512i w, const int32_t *q)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(*a) : "v"(w), "m"(*q));
}

/* 16-row block b (half b & 1 of wblock b / 2), tokens [n0, n0 + nt) */
TVNNI static inline __attribute__((always_inline)) void vnni_tile(const KernMat *km, const int8_t *Q, const int32_t *S,
                                                                  const float *scale, int N, int b, int n0, const int nt,
                                                                  float *acc)
{
    const int nj = kern_in_pad(km) / 32, nq = kern_nqblk(km), jpq = KERN_QBLOCK / 32;
    const size_t out_pad = (size_t)kern_nblk(km) * KERN_ROWBLK;
    const uint16_t *kb = (const uint16_t *)km->kbits + (b & 1) * 16;
    const int w = b / 2;
    const size_t off0 = kern_w16_off(km, 0, w), step = kern_w16_off(km, 1, w) - off0;
    for (int jq = 0; jq < nq; jq++) {
        __m512i A[KV_T];
#pragma GCC unroll 16
        for (int t = 0; t < nt; t++) A[t] = _mm512_setzero_si512();
        const int j1 = (jq + 1) * jpq < nj ? (jq + 1) * jpq : nj;
        for (int j = jq * jpq; j < j1; j++) {
            const uint16_t *p = kb + off0 + (size_t)j * step;
            const __m512i e0 = _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)p));
            const __m512i e1 = _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)(p + 32)));
            const int32_t *qj = (const int32_t *)Q + ((size_t)j * 8) * N + n0;
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                const __m512i wv = vnni_w(g < 4 ? e0 : e1, g & 3);
                const int32_t *qg = qj + (size_t)g * N;
#pragma GCC unroll 16
                for (int t = 0; t < nt; t++) vnni_dp(&A[t], wv, qg + t);
            }
        }
#pragma GCC unroll 16
        for (int t = 0; t < nt; t++) {
            const int n = n0 + t;
            __m512i is = _mm512_sub_epi32(_mm512_add_epi32(A[t], A[t]), _mm512_set1_epi32(S[(size_t)n * nq + jq]));
            __m512 f = _mm512_cvtepi32_ps(is), sc = _mm512_set1_ps(scale[(size_t)n * nq + jq]);
            float *ap = acc + (size_t)n * out_pad + (size_t)b * KERN_ROWBLK;
            _mm512_storeu_ps(ap, jq ? _mm512_fmadd_ps(sc, f, _mm512_loadu_ps(ap)) : _mm512_mul_ps(sc, f));
        }
    }
}

TVNNI static void vnni_rows(const KernMat *km, const float *scale, const void *prep, int N, int b0, int b1, float *acc)
{
    const int8_t *Q = prep;
    const int32_t *S = (const int32_t *)((const char *)prep + vnni_q_bytes(km, N));
    for (int b = b0; b < b1; b++) {
        int n0 = 0;
        for (; N - n0 >= 16; n0 += 16) vnni_tile(km, Q, S, scale, N, b, n0, 16, acc);
        if (N - n0 >= 8) vnni_tile(km, Q, S, scale, N, b, n0, 8, acc), n0 += 8;
        if (N - n0 >= 4) vnni_tile(km, Q, S, scale, N, b, n0, 4, acc), n0 += 4;
        if (N - n0 >= 2) vnni_tile(km, Q, S, scale, N, b, n0, 2, acc), n0 += 2;
        if (N - n0 >= 1) vnni_tile(km, Q, S, scale, N, b, n0, 1, acc);
    }
    scale_h(km, N, b0, b1, acc);
}

void kern_rows_q8_vnni(const KernMat *km, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1, float *acc,
                       int16_t *acc16)
{
    (void)q;
    assert(km->layout == KERN_LAYOUT_W16);
    if (N == 1) w16_rows(km, scale, prep, N, b0, b1, acc, acc16);
    else vnni_rows(km, scale, prep, N, b0, b1, acc);
}

/* kern_quantize_ref with 16 floats at a time (the same operations, so the
 * same q and scales) */
T512 void kern_quantize_avx512(const float *gx, int in_pad, int16_t *q, float *scale)
{
    const __m512 fmax = _mm512_set1_ps(FLT_MAX);
    for (int j = 0; j * KERN_QBLOCK < in_pad; j++) {
        int c0 = j * KERN_QBLOCK, c1 = c0 + KERN_QBLOCK < in_pad ? c0 + KERN_QBLOCK : in_pad;
        __m512 m = _mm512_setzero_ps();
        __mmask16 bad = 0;
        for (int c = c0; c < c1; c += 16) { /* in_pad is a multiple of 64 */
            __m512 a = _mm512_abs_ps(_mm512_loadu_ps(gx + c));
            bad |= _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ);
            m = _mm512_max_ps(m, a);
        }
        float mx = _mm512_reduce_max_ps(m);
        if (bad || mx == 0.0f) {
            scale[j] = bad ? NAN : 0.0f;
            memset(q + c0, 0, (size_t)(c1 - c0) * sizeof *q);
            continue;
        }
        float inv = 127.0f / mx;
        scale[j] = mx / 127.0f;
        const __m512 iv = _mm512_set1_ps(inv);
        const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
        for (int c = c0; c < c1; c += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(gx + c), iv));
            v = _mm512_max_epi32(_mm512_min_epi32(v, hi), lo);
            _mm256_storeu_si256((__m256i *)(q + c), _mm512_cvtepi32_epi16(v));
        }
    }
}

/* ---- masked-add alternative on the canonical layout -------------------- */
T512 void kern_rows_avx512mask(const KernMat *km, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = km->words_per_row, in_pad = kern_in_pad(km);
    const size_t out_pad = (size_t)kern_nblk(km) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < km->out ? b1 * KERN_ROWBLK : km->out;
    for (int n = 0; n < N; n++) {
        const float *x = gx + (size_t)n * in_pad;
        /* total = sum of gx (padding is zero) */
        __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
        for (int c = 0; c < in_pad; c += 32) {
            t0 = _mm512_add_ps(t0, _mm512_loadu_ps(x + c));
            t1 = _mm512_add_ps(t1, _mm512_loadu_ps(x + c + 16));
        }
        float total = _mm512_reduce_add_ps(_mm512_add_ps(t0, t1));
        float *a = acc + (size_t)n * out_pad;
        for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
            const uint64_t *w = km->bits + (size_t)r * wpr;
            __m512 p0 = _mm512_setzero_ps(), p1 = _mm512_setzero_ps(), p2 = _mm512_setzero_ps(), p3 = _mm512_setzero_ps();
            for (int k = 0; k < wpr; k++) {
                uint64_t m = w[k];
                const float *xk = x + 64 * k;
                p0 = _mm512_mask_add_ps(p0, (__mmask16)m, p0, _mm512_loadu_ps(xk));
                p1 = _mm512_mask_add_ps(p1, (__mmask16)(m >> 16), p1, _mm512_loadu_ps(xk + 16));
                p2 = _mm512_mask_add_ps(p2, (__mmask16)(m >> 32), p2, _mm512_loadu_ps(xk + 32));
                p3 = _mm512_mask_add_ps(p3, (__mmask16)(m >> 48), p3, _mm512_loadu_ps(xk + 48));
            }
            float p = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(p0, p1), _mm512_add_ps(p2, p3)));
            a[r] = (2.0f * p - total) * km->h[r];
        }
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) a[r] = 0.0f;
    }
}

/* LayerNorm with double statistics of x into y (x may be y), 32 floats at a
 * time in four double accumulators. Reading x and writing y in the last pass
 * saves bitlinear_forward a copy: 11008 floats, hot, 1.79 us against 2.44
 * for a copy and the in-place version with two accumulators */
T512 void kern_layernorm_avx512(const float *x, float *y, int n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
#define LN_LO(v) _mm512_cvtps_pd(_mm512_castps512_ps256(v))
#define LN_HI(v) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 v = _mm512_loadu_ps(x + i), u = _mm512_loadu_ps(x + i + 16);
        s0 = _mm512_add_pd(s0, LN_LO(v));
        s1 = _mm512_add_pd(s1, LN_HI(v));
        s2 = _mm512_add_pd(s2, LN_LO(u));
        s3 = _mm512_add_pd(s3, LN_HI(u));
    }
    double mean = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    for (; i < n; i++) mean += x[i];
    mean /= n;
    const __m512d mv = _mm512_set1_pd(mean);
    s0 = s1 = s2 = s3 = _mm512_setzero_pd();
    for (i = 0; i + 32 <= n; i += 32) {
        const __m512 v = _mm512_loadu_ps(x + i), u = _mm512_loadu_ps(x + i + 16);
        const __m512d d0 = _mm512_sub_pd(LN_LO(v), mv), d1 = _mm512_sub_pd(LN_HI(v), mv);
        const __m512d d2 = _mm512_sub_pd(LN_LO(u), mv), d3 = _mm512_sub_pd(LN_HI(u), mv);
        s0 = _mm512_fmadd_pd(d0, d0, s0);
        s1 = _mm512_fmadd_pd(d1, d1, s1);
        s2 = _mm512_fmadd_pd(d2, d2, s2);
        s3 = _mm512_fmadd_pd(d3, d3, s3);
    }
#undef LN_LO
#undef LN_HI
    double var = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    for (; i < n; i++) { double d = x[i] - mean; var += d * d; }
    var /= n;
    float inv = (float)(1.0 / __builtin_sqrt(var + KERN_LN_EPS)), m = (float)mean;
    __m512 mf = _mm512_set1_ps(m), invf = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), mf), invf));
    for (; i < n; i++) y[i] = (x[i] - m) * inv;
}


/* ---- the decode helpers (kernels.h KernDec) --------------------------------
 * 16 lanes, masked tails. Scores: 4 cached rows at a time against the query
 * held in registers; weighted values: 64 output lanes in 4 accumulators per
 * pass over the rows. FP16 through vcvtph2ps / vcvtps2ph (AVX-512F). */

T512 static inline __m512 dec_ld_f32(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
T512 static inline __m512 dec_ld_f16(const uint16_t *p, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
T512 static inline __m512 dec_ld_bf16(const uint16_t *p, __mmask16 m)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
static inline __mmask16 dec_mask(int left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

/* y[r] = scale * (W[r] . x) for rows [r0, r1) of cols T weights at a stride
 * of ld (LD: 16 of them as floats, masked): 4 rows at a time sharing the
 * loads of x. The attention scores (rows = cached keys, x = the query), a
 * student's FP32 head (kern_gemv_rows_avx512) and an FP16 head. */
#define DOT4_512(NAME, T, LD)                                                                          \
    T512 static void NAME(const T *W, size_t ld, int cols, const float *x, float scale, float *y, int r0, int r1) \
    {                                                                                                  \
        int r = r0;                                                                                    \
        for (; r + 4 <= r1; r += 4) {                                                                  \
            const T *w0 = W + (size_t)r * ld, *w1 = w0 + ld, *w2 = w1 + ld, *w3 = w2 + ld;             \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                \
            for (int c = 0; c < cols; c += 16) {                                                       \
                __mmask16 m = dec_mask(cols - c);                                                      \
                __m512 xv = _mm512_maskz_loadu_ps(m, x + c);                                           \
                a0 = _mm512_fmadd_ps(LD(w0 + c, m), xv, a0);                                           \
                a1 = _mm512_fmadd_ps(LD(w1 + c, m), xv, a1);                                           \
                a2 = _mm512_fmadd_ps(LD(w2 + c, m), xv, a2);                                           \
                a3 = _mm512_fmadd_ps(LD(w3 + c, m), xv, a3);                                           \
            }                                                                                          \
            y[r] = _mm512_reduce_add_ps(a0) * scale;                                                   \
            y[r + 1] = _mm512_reduce_add_ps(a1) * scale;                                               \
            y[r + 2] = _mm512_reduce_add_ps(a2) * scale;                                               \
            y[r + 3] = _mm512_reduce_add_ps(a3) * scale;                                               \
        }                                                                                              \
        for (; r < r1; r++) {                                                                          \
            const T *w = W + (size_t)r * ld;                                                           \
            __m512 a = _mm512_setzero_ps();                                                            \
            for (int c = 0; c < cols; c += 16) {                                                       \
                __mmask16 m = dec_mask(cols - c);                                                      \
                a = _mm512_fmadd_ps(LD(w + c, m), _mm512_maskz_loadu_ps(m, x + c), a);                 \
            }                                                                                          \
            y[r] = _mm512_reduce_add_ps(a) * scale;                                                    \
        }                                                                                              \
    }
DOT4_512(dot4_f32, float, dec_ld_f32)
DOT4_512(dot4_f16, uint16_t, dec_ld_f16)


/* GEMV rows one at a time: each task then reads one contiguous stream of
 * weights (8 KB rows back to back), which DRAM and the hardware prefetchers
 * serve faster than dot4's 4 rows at once (4 interleaved streams): an FP16
 * 7B head measured 11.3 vs 16.1 ms on 2 threads. 64 columns per pass in 4
 * accumulators, then 16 at a time, masked. FP32 (a student's FP32 head, the
 * KernExec's gemv_rows) and FP16 rows share the order of the sums, so an
 * FP16 head and its exact FP32 copy give the same bits (test_bitllama).
 * The stream KERN_GEMV_PF bytes ahead is prefetched into L2: the 7B FP16 head
 * alone, 2 threads, one process alternating (medians of 31-41), 9.33 ->
 * 8.92 ms with `bench membw` at 33.5 GB/s and 7.51 -> 6.56 ms at 48 GB/s
 * (4 and 16 KiB ahead were about the same, none slower) */
#define GEMV1_512(NAME, T, LD)                                                                                  \
    T512 void NAME(const T *W, const float *x, float *y, int cols, int r0, int r1)                               \
    {                                                                                                           \
        const __mmask16 all = (__mmask16)0xffff;                                                                \
        for (int r = r0; r < r1; r++) {                                                                         \
            const T *w = W + (size_t)r * cols;                                                                  \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                         \
            int c = 0;                                                                                          \
            for (; c + 64 <= cols; c += 64) {                                                                   \
                kern_prefetch_l2((const char *)(w + c) + KERN_GEMV_PF, (const char *)(w + c + 64) + KERN_GEMV_PF); \
                a0 = _mm512_fmadd_ps(LD(w + c, all), _mm512_loadu_ps(x + c), a0);                               \
                a1 = _mm512_fmadd_ps(LD(w + c + 16, all), _mm512_loadu_ps(x + c + 16), a1);                     \
                a2 = _mm512_fmadd_ps(LD(w + c + 32, all), _mm512_loadu_ps(x + c + 32), a2);                     \
                a3 = _mm512_fmadd_ps(LD(w + c + 48, all), _mm512_loadu_ps(x + c + 48), a3);                     \
            }                                                                                                   \
            for (; c < cols; c += 16) {                                                                         \
                __mmask16 m = dec_mask(cols - c);                                                               \
                a0 = _mm512_fmadd_ps(LD(w + c, m), _mm512_maskz_loadu_ps(m, x + c), a0);                        \
            }                                                                                                   \
            y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));          \
        }                                                                                                       \
    }
GEMV1_512(kern_gemv_rows_avx512, float, dec_ld_f32)
GEMV1_512(kern_dec_gemv_f16_avx512, uint16_t, dec_ld_f16)
/* BF16 rows likewise (they were dot4's 4 rows at once): 32000 x 4096 from
 * DRAM, one thread, 15.9-16.2 -> 22.1-22.4 GB/s (vdpbf16ps below: 15.6-17.6
 * -> 20.1-22.2); the 7B BF16 teacher's decode on one thread 1.30 -> 1.47
 * tok/s, on two about the same (2.28-2.66, near `bench membw`) */
GEMV1_512(kern_dec_gemv_bf16_avx512, uint16_t, dec_ld_bf16)

T512 void kern_dec_score_f32_avx512(const float *q, const float *K, size_t ld, int hd, int n, float scale, float *s)
{
    dot4_f32(K, ld, hd, q, scale, s, 0, n);
}

T512 void kern_dec_score_f16_avx512(const float *q, const uint16_t *K, size_t ld, int hd, int n, float scale, float *s)
{
    dot4_f16(K, ld, hd, q, scale, s, 0, n);
}

#define DEC_ACCUM_512(sfx, T)                                                                                   \
    T512 void kern_dec_accum_##sfx##_avx512(const float *a, const T *V, size_t ld, int hd, int n, float *out)     \
    {                                                                                                           \
        for (int i = 0; i < hd; i += 64) {                                                                      \
            __mmask16 m0 = dec_mask(hd - i), m1 = hd - i > 16 ? dec_mask(hd - i - 16) : 0,                      \
                      m2 = hd - i > 32 ? dec_mask(hd - i - 32) : 0, m3 = hd - i > 48 ? dec_mask(hd - i - 48) : 0; \
            __m512 o0 = _mm512_maskz_loadu_ps(m0, out + i), o1 = _mm512_maskz_loadu_ps(m1, out + i + 16);        \
            __m512 o2 = _mm512_maskz_loadu_ps(m2, out + i + 32), o3 = _mm512_maskz_loadu_ps(m3, out + i + 48);   \
            const T *v = V + i;                                                                                 \
            for (int t = 0; t < n; t++, v += ld) {                                                              \
                __m512 w = _mm512_set1_ps(a[t]);                                                                \
                o0 = _mm512_fmadd_ps(w, dec_ld_##sfx(v, m0), o0);                                               \
                if (m1) o1 = _mm512_fmadd_ps(w, dec_ld_##sfx(v + 16, m1), o1);                                  \
                if (m2) o2 = _mm512_fmadd_ps(w, dec_ld_##sfx(v + 32, m2), o2);                                  \
                if (m3) o3 = _mm512_fmadd_ps(w, dec_ld_##sfx(v + 48, m3), o3);                                  \
            }                                                                                                   \
            _mm512_mask_storeu_ps(out + i, m0, o0);                                                             \
            _mm512_mask_storeu_ps(out + i + 16, m1, o1);                                                        \
            _mm512_mask_storeu_ps(out + i + 32, m2, o2);                                                        \
            _mm512_mask_storeu_ps(out + i + 48, m3, o3);                                                        \
        }                                                                                                       \
    }
DEC_ACCUM_512(f32, float)
DEC_ACCUM_512(f16, uint16_t)

T512 void kern_dec_to_f16_avx512(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        __mmask16 m = dec_mask((int)(n - i));
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

#define DEC_FROM_512(sfx)                                                                                 \
    T512 void kern_dec_from_##sfx##_avx512(const uint16_t *x, float *y, size_t n)                         \
    {                                                                                                     \
        size_t i = 0;                                                                                     \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, dec_ld_##sfx(x + i, (__mmask16)0xffff));     \
        if (i < n) {                                                                                      \
            __mmask16 m = dec_mask((int)(n - i));                                                         \
            _mm512_mask_storeu_ps(y + i, m, dec_ld_##sfx(x + i, m));                                      \
        }                                                                                                 \
    }
DEC_FROM_512(f16)
DEC_FROM_512(bf16)

#define T512BF __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma")))

/* x (cols) as BF16 hi and lo = bf16(x - hi), zero-padded to a multiple of 32 */
T512BF static void bf16_split(const float *x, int cols, uint16_t *hi, uint16_t *lo)
{
    int c = 0;
    for (; c < cols; c += 16) {
        __mmask16 m = dec_mask(cols - c);
        __m512 v = _mm512_maskz_loadu_ps(m, x + c);
        __m256bh h = _mm512_cvtneps_pbh(v);
        __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
        _mm256_storeu_si256((__m256i *)(hi + c), (__m256i)h);
        _mm256_storeu_si256((__m256i *)(lo + c), (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(v, hf)));
    }
    for (; c % 32; c++) hi[c] = lo[c] = 0;
}

/* one row's 32 weights at w (masked) against hi and lo */
#define BF16_DOT(acc, w, m, c) \
    do { \
        __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, (w) + (c)); \
        acc = _mm512_dpbf16_ps(acc, wv, (__m512bh)_mm512_loadu_si512(hi + (c))); \
        acc = _mm512_dpbf16_ps(acc, wv, (__m512bh)_mm512_loadu_si512(lo + (c))); \
    } while (0)

/* rows one at a time (one stream a task, as GEMV1_512), 128 columns a pass
 * in four accumulators, the stream KERN_GEMV_PF bytes ahead prefetched into L2 */
T512BF void kern_dec_gemv_bf16_avx512bf16(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1)
{
    int pad = (cols + 31) & ~31;
    uint16_t *hi = aligned_alloc(64, (size_t)pad * 4), *lo = hi + pad;
    if (!hi) { kern_dec_gemv_bf16_avx512(W, x, y, cols, r0, r1); return; }
    bf16_split(x, cols, hi, lo);
    const __mmask32 all = 0xffffffffu;
    for (int r = r0; r < r1; r++) {
        const uint16_t *w = W + (size_t)r * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + 128 <= cols; c += 128) {
            kern_prefetch_l2((const char *)(w + c) + KERN_GEMV_PF, (const char *)(w + c + 128) + KERN_GEMV_PF);
            BF16_DOT(a0, w, all, c);
            BF16_DOT(a1, w, all, c + 32);
            BF16_DOT(a2, w, all, c + 64);
            BF16_DOT(a3, w, all, c + 96);
        }
        for (; c < cols; c += 32) {
            __mmask32 m = cols - c >= 32 ? all : (1u << (cols - c)) - 1;
            BF16_DOT(a0, w, m, c);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
    free(hi);
}
#undef BF16_DOT

/* an FP16 scale broadcast to 16 lanes */
T512 static inline __m512 dec_d16(uint16_t d) { return _mm512_cvtph_ps(_mm256_set1_epi16((short)d)); }

/* one Q8_0 block of 32 against x: the int8 widened to floats, two FMAs */
T512 static inline __m512 q8_0_block(const KernQ8_0 *b, const float *x)
{
    __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->q)));
    __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->q + 16))));
    return _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(x)));
}

/* Q8_0 rows one at a time, as GEMV1_512 and for its reason (one contiguous
 * stream a task), with four accumulators over the blocks j % 4 and the
 * stream KERN_GEMV_PF bytes ahead prefetched into L2 (a 4-block step is 136
 * bytes: three lines). The 7B Q8_0 head (32000 x 4096, 139 MB) alone, 2
 * threads, a 256 MB sweep between calls, medians of 41, 3 alternated
 * rounds, `bench membw` 35.8-36.5 GB/s: 7.40-7.48 ms with two rows at a
 * time (two streams), 4.28-4.38 one row without the prefetch, 3.93-4.07
 * with it; one thread 9.2 -> 18.8 GB/s */
T512 void kern_dec_gemv_q8_0_avx512(const KernQ8_0 *W, const float *x, float *y, int cols, int r0, int r1)
{
    const int nb = cols / KERN_Q8_0_BLOCK;
    for (int r = r0; r < r1; r++) {
        const KernQ8_0 *b = W + (size_t)r * nb;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int j = 0;
        for (; j + 4 <= nb; j += 4) {
            const char *pf = (const char *)(b + j) + KERN_GEMV_PF;
            kern_prefetch_l2(pf, pf + 4 * sizeof *b);
            const float *xj = x + j * KERN_Q8_0_BLOCK;
            a0 = _mm512_fmadd_ps(dec_d16(b[j].d), q8_0_block(b + j, xj), a0);
            a1 = _mm512_fmadd_ps(dec_d16(b[j + 1].d), q8_0_block(b + j + 1, xj + KERN_Q8_0_BLOCK), a1);
            a2 = _mm512_fmadd_ps(dec_d16(b[j + 2].d), q8_0_block(b + j + 2, xj + 2 * KERN_Q8_0_BLOCK), a2);
            a3 = _mm512_fmadd_ps(dec_d16(b[j + 3].d), q8_0_block(b + j + 3, xj + 3 * KERN_Q8_0_BLOCK), a3);
        }
        for (; j < nb; j++) a0 = _mm512_fmadd_ps(dec_d16(b[j].d), q8_0_block(b + j, x + j * KERN_Q8_0_BLOCK), a0);
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

/* ---- RMSNorm (KernExec.rmsnorm) -----------------------------------------
 * The sum of squares in four 16-lane FMA chains (the reference's is one
 * chain of dependent FP32 adds: 4 cycles each, about 4.5 us for 4096 values
 * on the thread the others wait for in a decode step), then the reference's
 * scaling. Tails masked. */
T512 void kern_rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
        s2 = _mm512_fmadd_ps(c, c, s2);
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 16) {
        const __m512 a = _mm512_maskz_loadu_ps(dec_mask(n - i), x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    float ss = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    ss /= n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const __m512 sv = _mm512_set1_ps(ss);
    for (i = 0; i < n; i += 16) {
        const __mmask16 m = dec_mask(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, x + i))));
    }
}

/* ---- SwiGLU (KernExec.silu_mul) ------------------------------------------
 * exp as Cephes' expf: x = n ln2 + r with n = round(x / ln2) and ln2 in two
 * parts (Cody-Waite), e^r by its degree-7 polynomial on |r| <= ln2 / 2,
 * times 2^n by vscalefps (which gives inf past the range, 0 below it, as
 * expf). About 1 ulp from expf; NaN stays NaN (the clamps take x as their
 * second operand, which vmaxps/vminps return for a NaN). */
T512 static inline __m512 exp512(__m512 x)
{
    x = _mm512_min_ps(_mm512_set1_ps(100.0f), _mm512_max_ps(_mm512_set1_ps(-110.0f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r, p;
    KERN_EXPF_POLY(x, n, r, p, _mm512_fnmadd_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_add_ps, _mm512_set1_ps);
    return _mm512_scalef_ps(p, n);
}

/* h = silu(h) * u as kern_silu_mul_ref, the same operations but exp */
T512 void kern_silu_mul_avx512(float *h, const float *u, size_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = dec_mask(n - i >= 16 ? 16 : (int)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(m, h + i);
        __m512 t = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(v, t), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

/* ---- a decode step's attention (KernDec.step_f16) -----------------------
 * The cached rows one after another (a single stream through the cache):
 * each key row's scores for 4 heads at a time (8 accumulators, then their
 * sums), the maxima, rescales and weights 16 positions to a vector (exp512),
 * then each value row added into every head's output, the first row's with
 * the rescale (KERN_STEP_F16_BODY). Each 4 heads' part of a row is read
 * with the same part of the next row prefetched into L2. 7B shape, 2
 * threads, context 512, one process alternating, attention per token:
 * 10.0-10.2 ms against 11.0-11.1 ms for score_f16 + softmax + accum_f16
 * over 4 rows at a time (both with the cache in huge pages, no prefetch);
 * with the prefetch 9.0 ms against 12.5-12.8 without (another phase of the
 * machine); the next row into L1 instead, or 2 rows ahead, or the value
 * rows during the keys' pass, were slower. */

/* step_f16's helpers (KERN_STEP_F16_BODY): 4 heads' dot products in 8
 * accumulators, then their sums */
T512 static inline void step_score4(const uint16_t *const kp[4], const float *q, int hd, float scale, float *s, int n)
{
    const uint16_t *k0 = kp[0], *k1 = kp[1], *k2 = kp[2], *k3 = kp[3];
    const float *q0 = q, *q1 = q0 + hd, *q2 = q1 + hd, *q3 = q2 + hd;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int c = 0; c < hd; c += 32) {
        const __mmask16 ma = dec_mask(hd - c), mb = hd - c > 16 ? dec_mask(hd - c - 16) : 0;
        a0 = _mm512_fmadd_ps(dec_ld_f16(k0 + c, ma), _mm512_maskz_loadu_ps(ma, q0 + c), a0);
        a1 = _mm512_fmadd_ps(dec_ld_f16(k1 + c, ma), _mm512_maskz_loadu_ps(ma, q1 + c), a1);
        a2 = _mm512_fmadd_ps(dec_ld_f16(k2 + c, ma), _mm512_maskz_loadu_ps(ma, q2 + c), a2);
        a3 = _mm512_fmadd_ps(dec_ld_f16(k3 + c, ma), _mm512_maskz_loadu_ps(ma, q3 + c), a3);
        b0 = _mm512_fmadd_ps(dec_ld_f16(k0 + c + 16, mb), _mm512_maskz_loadu_ps(mb, q0 + c + 16), b0);
        b1 = _mm512_fmadd_ps(dec_ld_f16(k1 + c + 16, mb), _mm512_maskz_loadu_ps(mb, q1 + c + 16), b1);
        b2 = _mm512_fmadd_ps(dec_ld_f16(k2 + c + 16, mb), _mm512_maskz_loadu_ps(mb, q2 + c + 16), b2);
        b3 = _mm512_fmadd_ps(dec_ld_f16(k3 + c + 16, mb), _mm512_maskz_loadu_ps(mb, q3 + c + 16), b3);
    }
    s[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)) * scale;
    s[n] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)) * scale;
    s[2 * n] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)) * scale;
    s[3 * n] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3)) * scale;
}

/* a head's n scores at p: the maximum with *m, the weights 16 to a vector */
T512 static inline void step_softmax(float *p, int n, float *m, float *l, float *a)
{
    __m512 mx = _mm512_set1_ps(*m);
    for (int t = 0; t < n; t += 16) {
        const __mmask16 mk = dec_mask(n - t);
        mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_maskz_loadu_ps(mk, p + t));
    }
    const float M = _mm512_reduce_max_ps(mx);
    const __m512 Mv = _mm512_set1_ps(M);
    __m512 sum = _mm512_setzero_ps();
    for (int t = 0; t < n; t += 16) {
        const __mmask16 mk = dec_mask(n - t);
        __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, p + t), Mv)));
        _mm512_mask_storeu_ps(p + t, mk, e);
        sum = _mm512_add_ps(sum, e);
    }
    *a = _mm512_cvtss_f32(exp512(_mm512_set1_ps(*m - M)));
    *l = *l * *a + _mm512_reduce_add_ps(sum);
    *m = M;
}

T512 static inline void step_axpy(const uint16_t *v, float *o, int hd, float w, float a)
{
    const __m512 wv = _mm512_set1_ps(w), av = _mm512_set1_ps(a);
    for (int c = 0; c < hd; c += 16) {
        const __mmask16 mk = dec_mask(hd - c);
        __m512 ov = _mm512_maskz_loadu_ps(mk, o + c);
        if (a != 1.0f) ov = _mm512_mul_ps(ov, av);
        _mm512_mask_storeu_ps(o + c, mk, _mm512_fmadd_ps(wv, dec_ld_f16(v + c, mk), ov));
    }
}

T512 void kern_dec_step_f16_avx512(const float *q, const uint16_t *K, const uint16_t *V, size_t ld, int nh, int group, int hd,
                                   int n, float scale, float *m, float *l, float *o, float *sc)
{
    KERN_STEP_F16_BODY(step_score4, kern_dec_score_f16_avx512, step_softmax, step_axpy);
}

/* ---- blocked prompt attention (KernDec.attn_f16) ------------------------
 * The 16 queries of a tile in the 16 lanes: the block's keys widened to
 * FP32 once into ws (n rows of hd), then each key's 16 scores by hd FMAs of
 * a broadcast key element with a row of Qt, 8 keys at a time; the maxima,
 * rescales and sums lane-wise (exp512, masked lanes exact zeros); the values
 * widened into the same rows, then 4 output rows at a time over 64 columns
 * (16 accumulators), each key's 4 weights broadcast against its 4 value
 * vectors. A query's dot product and its sums run in the reference's order.
 * The 7B shape's prompt attention (32 heads of 128, one layer, its tiles one
 * after another on one thread, the same FP16 cache and queries, min of 15):
 * 2.1 ms at 128 tokens against 4.1 ms for score_f16 + softmax + accum_f16
 * per query, 31 against 65 ms at 512. Near this Zen 5's FMA rate (measured
 * 2.2-3.6 G zmm FMA/s on the shared machine); blocks of 16 or 64 keys took
 * 5-8% longer than model.c's 32. */
static inline __mmask16 attn_vis(int t, int diag)
{
    int k = t - diag; /* lanes i >= k see key t */
    return k <= 0 ? (__mmask16)0xffff : k >= 16 ? (__mmask16)0 : (__mmask16)(0xffffu << k);
}

/* n rows of X (a stride of ld) widened to FP32 rows of hd in B */
T512 static void attn_widen(const uint16_t *X, size_t ld, int hd, int n, float *B)
{
    for (int t = 0; t < n; t++) kern_dec_from_f16_avx512(X + (size_t)t * ld, B + (size_t)t * hd, (size_t)hd);
}

T512 void kern_dec_attn_f16_avx512(const float *Qt, int nq, const uint16_t *K, const uint16_t *V, size_t ld, int hd, int n,
                                   int diag, float scale, float *m, float *l, float *O, size_t ldo, float *ws)
{
    enum { QB = KERN_ATTN_QB };
    float *B = ws, *P = ws + (size_t)KERN_ATTN_KB * hd, *spare = P + (size_t)KERN_ATTN_KB * QB;
    const __m512 vs = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    attn_widen(K, ld, hd, n, B);
    __m512 M = _mm512_loadu_ps(m);
    int t = 0;
    for (; t + 8 <= n; t += 8) {
        const float *b = B + (size_t)t * hd;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int j = 0; j < hd; j++) {
            __m512 q = _mm512_loadu_ps(Qt + (size_t)j * QB);
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(b[j]), q, a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(b[hd + j]), q, a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(b[2 * hd + j]), q, a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(b[3 * hd + j]), q, a3);
            a4 = _mm512_fmadd_ps(_mm512_set1_ps(b[4 * hd + j]), q, a4);
            a5 = _mm512_fmadd_ps(_mm512_set1_ps(b[5 * hd + j]), q, a5);
            a6 = _mm512_fmadd_ps(_mm512_set1_ps(b[6 * hd + j]), q, a6);
            a7 = _mm512_fmadd_ps(_mm512_set1_ps(b[7 * hd + j]), q, a7);
        }
        __m512 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (int u = 0; u < 8; u++) {
            __m512 s = _mm512_mask_mul_ps(ninf, attn_vis(t + u, diag), acc[u], vs);
            M = _mm512_max_ps(M, s);
            _mm512_storeu_ps(P + (size_t)(t + u) * QB, s);
        }
    }
    for (; t < n; t++) {
        const float *b = B + (size_t)t * hd;
        __m512 a = _mm512_setzero_ps();
        for (int j = 0; j < hd; j++) a = _mm512_fmadd_ps(_mm512_set1_ps(b[j]), _mm512_loadu_ps(Qt + (size_t)j * QB), a);
        __m512 s = _mm512_mask_mul_ps(ninf, attn_vis(t, diag), a, vs);
        M = _mm512_max_ps(M, s);
        _mm512_storeu_ps(P + (size_t)t * QB, s);
    }
    const __m512 al = exp512(_mm512_sub_ps(_mm512_loadu_ps(m), M));
    __m512 L = _mm512_mul_ps(_mm512_loadu_ps(l), al);
    for (t = 0; t < n; t++) {
        __m512 p = _mm512_maskz_mov_ps(attn_vis(t, diag), exp512(_mm512_sub_ps(_mm512_loadu_ps(P + (size_t)t * QB), M)));
        _mm512_storeu_ps(P + (size_t)t * QB, p);
        L = _mm512_add_ps(L, p);
    }
    _mm512_storeu_ps(l, L);
    _mm512_storeu_ps(m, M);
    float alv[QB];
    _mm512_storeu_ps(alv, al);
    for (int i = 0; i < nq; i++) { /* the outputs rescaled */
        float *o = O + (size_t)i * ldo;
        const __m512 w = _mm512_set1_ps(alv[i]);
        for (int j = 0; j < hd; j += 16) {
            __mmask16 k = dec_mask(hd - j);
            _mm512_mask_storeu_ps(o + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, o + j), w));
        }
    }
    attn_widen(V, ld, hd, n, B);
    if (nq % 4) memset(spare, 0, (size_t)hd * sizeof(float));
    for (int i = 0; i < nq; i += 4) {
        /* rows past nq: the spare row (their results are dropped) */
        float *o[4];
        for (int u = 0; u < 4; u++) o[u] = i + u < nq ? O + (size_t)(i + u) * ldo : spare;
        float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
        int j = 0;
        for (; j + 64 <= hd; j += 64) {
#define ATTN_ROW_LOAD(u)                                                                                  \
    __m512 a##u##0 = _mm512_loadu_ps(o##u + j), a##u##1 = _mm512_loadu_ps(o##u + j + 16);                 \
    __m512 a##u##2 = _mm512_loadu_ps(o##u + j + 32), a##u##3 = _mm512_loadu_ps(o##u + j + 48);
#define ATTN_ROW_FMA(u)                                                                                   \
    do {                                                                                                  \
        const __m512 p = _mm512_set1_ps(pt[u]);                                                           \
        a##u##0 = _mm512_fmadd_ps(p, v0, a##u##0);                                                        \
        a##u##1 = _mm512_fmadd_ps(p, v1, a##u##1);                                                        \
        a##u##2 = _mm512_fmadd_ps(p, v2, a##u##2);                                                        \
        a##u##3 = _mm512_fmadd_ps(p, v3, a##u##3);                                                        \
    } while (0)
#define ATTN_ROW_STORE(u)                                                                                 \
    do {                                                                                                  \
        _mm512_storeu_ps(o[u] + j, a##u##0);                                                              \
        _mm512_storeu_ps(o[u] + j + 16, a##u##1);                                                         \
        _mm512_storeu_ps(o[u] + j + 32, a##u##2);                                                         \
        _mm512_storeu_ps(o[u] + j + 48, a##u##3);                                                         \
    } while (0)
            ATTN_ROW_LOAD(0) ATTN_ROW_LOAD(1) ATTN_ROW_LOAD(2) ATTN_ROW_LOAD(3)
            const float *b = B + j, *pt = P + i;
            for (t = 0; t < n; t++, b += hd, pt += QB) {
                const __m512 v0 = _mm512_loadu_ps(b), v1 = _mm512_loadu_ps(b + 16), v2 = _mm512_loadu_ps(b + 32),
                             v3 = _mm512_loadu_ps(b + 48);
                ATTN_ROW_FMA(0);
                ATTN_ROW_FMA(1);
                ATTN_ROW_FMA(2);
                ATTN_ROW_FMA(3);
            }
            ATTN_ROW_STORE(0);
            ATTN_ROW_STORE(1);
            ATTN_ROW_STORE(2);
            ATTN_ROW_STORE(3);
#undef ATTN_ROW_LOAD
#undef ATTN_ROW_FMA
#undef ATTN_ROW_STORE
        }
        for (; j < hd; j += 16) { /* the columns past a multiple of 64, 16 at a time */
            const __mmask16 k = dec_mask(hd - j);
            __m512 a0 = _mm512_maskz_loadu_ps(k, o0 + j), a1 = _mm512_maskz_loadu_ps(k, o1 + j);
            __m512 a2 = _mm512_maskz_loadu_ps(k, o2 + j), a3 = _mm512_maskz_loadu_ps(k, o3 + j);
            for (t = 0; t < n; t++) {
                const __m512 v = _mm512_maskz_loadu_ps(k, B + (size_t)t * hd + j);
                const float *pt = P + (size_t)t * QB + i;
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(pt[0]), v, a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(pt[1]), v, a1);
                a2 = _mm512_fmadd_ps(_mm512_set1_ps(pt[2]), v, a2);
                a3 = _mm512_fmadd_ps(_mm512_set1_ps(pt[3]), v, a3);
            }
            _mm512_mask_storeu_ps(o[0] + j, k, a0);
            _mm512_mask_storeu_ps(o[1] + j, k, a1);
            _mm512_mask_storeu_ps(o[2] + j, k, a2);
            _mm512_mask_storeu_ps(o[3] + j, k, a3);
        }
    }
}
