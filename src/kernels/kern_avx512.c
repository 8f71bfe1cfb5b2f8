/* kernels/kern_avx512.c -- AVX-512 variants of the 1-bit kernel (see
 * kernels.h), compiled with target attributes and used only when cpuid says
 * the CPU has AVX-512F.
 *
 * kern_avx512lut4: FP32 lookup tables, T-MAC style.
 * For each group of 4 input columns and each token, the 16 possible signed
 * sums  ±v0 ±v1 ±v2 ±v3  (bit k of the entry index = sign of column k, 1 = +)
 * make one zmm register. The kernel-private layout puts the same 32 columns
 * of 16 rows in the 16 dword lanes of one load; `vpermps` indexes a table with
 * the low 4 bits of every lane, so one shift + one permute + one add do 16
 * rows x 4 columns = 64 sign-MACs. For N = 1 the 16 tables of a 64-column word
 * stay in registers while the thread streams its row blocks for that word
 * (accumulating into acc); for N > 1 the tables of up to 8 tokens sit in L1
 * and every weight load and every shifted index is reused for all tokens.
 *
 * kern_avx512lut5: the same with groups of 5 columns where it can
 * (vpermt2ps, 32 entries in two registers); see "5- and 4-column tables".
 *
 * kern_avx512 (the default on AVX-512 CPUs): groups of 6 columns with a sign
 * column and indices made by multiplies, on its own kbits layout; see
 * "6-column groups with sign columns".
 *
 * kern_avx512mask (a measured alternative, selectable): canonical layout,
 * masked adds. P = sum of gx where the sign bit is 1, one _mm512_mask_add_ps
 * per 16 columns; the row's value is 2P - sum(gx).
 */
#include "kernels.h"

#include <string.h>

#if defined(OB_X86) || defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

static int have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

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

#define PERM(idx, t) _mm512_permutexvar_ps((idx), (t))

/* s += x, on the FP add pipes (ADDP) or on the FMA pipes as x*1 + s (ADDF):
 * alternating the two keeps the additions off the critical pipes (measured
 * on this Zen 5: 20 -> 15 cycles per 16 rows x 64 columns, L2-resident) */
#define ADDP(s, x) ((s) = _mm512_add_ps((s), (x)))
#define ADDF(s, x) ((s) = _mm512_fmadd_ps((x), one, (s)))
#define SR(w, n) _mm512_srli_epi32((w), (n))

/* s0..s3 = the sums over the 64 columns of one block-word: the 16 index
 * vectors are lo, hi shifted by 0, 4, ..., 28 (passed as I(v, n)), t[16]
 * the tables. The order of the additions is fixed, so results do not depend
 * on the thread count. */
#define LUT64(I, lo, hi, t, s0, s1, s2, s3)                                  \
    do {                                                                     \
        s0 = PERM(I(lo, 0), (t)[0]);                                         \
        s1 = PERM(I(lo, 4), (t)[1]);                                         \
        s2 = PERM(I(hi, 0), (t)[8]);                                         \
        s3 = PERM(I(hi, 4), (t)[9]);                                         \
        ADDP(s0, PERM(I(lo, 8), (t)[2]));                                    \
        ADDF(s1, PERM(I(lo, 12), (t)[3]));                                   \
        ADDP(s2, PERM(I(hi, 8), (t)[10]));                                   \
        ADDF(s3, PERM(I(hi, 12), (t)[11]));                                  \
        ADDP(s0, PERM(I(lo, 16), (t)[4]));                                   \
        ADDF(s1, PERM(I(lo, 20), (t)[5]));                                   \
        ADDP(s2, PERM(I(hi, 16), (t)[12]));                                  \
        ADDF(s3, PERM(I(hi, 20), (t)[13]));                                  \
        ADDP(s0, PERM(I(lo, 24), (t)[6]));                                   \
        ADDF(s1, PERM(I(lo, 28), (t)[7]));                                   \
        ADDP(s2, PERM(I(hi, 24), (t)[14]));                                  \
        ADDF(s3, PERM(I(hi, 28), (t)[15]));                                  \
    } while (0)

/* N = 1: shift as we go (I = SR); N > 1: the 16 shifted vectors are made
 * once per block-word and reused for every token (I = IDX picks them) */
#define IDX(v, n) v[(n) / 4]

T512 static void scale_h(const BitLinear *bl, int N, int b0, int b1, float *acc)
{
    int out_pad = kern_nblk(bl) * KERN_ROWBLK;
    for (int b = b0; b < b1; b++) {
        int r = b * KERN_ROWBLK, left = bl->out - r;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 h = _mm512_maskz_loadu_ps(m, bl->h + r);
        for (int n = 0; n < N; n++) {
            float *a = acc + (size_t)n * out_pad + r;
            _mm512_storeu_ps(a, _mm512_mul_ps(_mm512_loadu_ps(a), h));
        }
    }
}

T512 static void lut_rows1(const BitLinear *bl, const float *gx, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row;
    __m512 S[4];
    sign_vectors(S);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int k = 0; k < wpr; k++) {
        __m512 t[16];
        for (int j = 0; j < 16; j++) t[j] = make_table(gx + 64 * k + 4 * j, S);
        const uint32_t *w = bl->kbits + kern_kb_off(bl, k, b0);
        float *a = acc + (size_t)b0 * KERN_ROWBLK;
        for (int b = b0; b < b1; b++, w += 32, a += KERN_ROWBLK) {
            _mm_prefetch((const char *)(w + KERN_PF_DW), _MM_HINT_T0);
            _mm_prefetch((const char *)(w + KERN_PF_DW + 16), _MM_HINT_T0);
            __m512i lo = _mm512_load_si512((const void *)w), hi = _mm512_load_si512((const void *)(w + 16));
            __m512 s0, s1, s2, s3;
            LUT64(SR, lo, hi, t, s0, s1, s2, s3);
            __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
            _mm512_storeu_ps(a, k ? _mm512_add_ps(_mm512_loadu_ps(a), s) : s);
        }
    }
    scale_h(bl, 1, b0, b1, acc);
}

#define LUT_NT 8    /* tokens per pass: tables of 8 tokens x 64 columns = 8 KiB */

T512 static void lut_rowsN(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row, nblk = kern_nblk(bl), in_pad = kern_in_pad(bl);
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    __m512 S[4];
    sign_vectors(S);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 tab[LUT_NT][16];
    for (int n0 = 0; n0 < N; n0 += LUT_NT) {
        int nt = N - n0 < LUT_NT ? N - n0 : LUT_NT;
        for (int k = 0; k < wpr; k++) {
            for (int n = 0; n < nt; n++)
                for (int j = 0; j < 16; j++) tab[n][j] = make_table(gx + (size_t)(n0 + n) * in_pad + 64 * k + 4 * j, S);
            const uint32_t *w = bl->kbits + kern_kb_off(bl, k, b0);
            for (int b = b0; b < b1; b++, w += 32) {
                _mm_prefetch((const char *)(w + KERN_PF_DW), _MM_HINT_T0);
                _mm_prefetch((const char *)(w + KERN_PF_DW + 16), _MM_HINT_T0);
                __m512i lo = _mm512_load_si512((const void *)w), hi = _mm512_load_si512((const void *)(w + 16));
                /* the 16 shifted index vectors, reused for every token */
                const __m512i il[8] = {lo, SR(lo, 4), SR(lo, 8), SR(lo, 12), SR(lo, 16), SR(lo, 20), SR(lo, 24), SR(lo, 28)};
                const __m512i ih[8] = {hi, SR(hi, 4), SR(hi, 8), SR(hi, 12), SR(hi, 16), SR(hi, 20), SR(hi, 24), SR(hi, 28)};
                float *a = acc + (size_t)n0 * out_pad + (size_t)b * KERN_ROWBLK;
                for (int n = 0; n < nt; n++, a += out_pad) {
                    const __m512 *t = tab[n];
                    __m512 s0, s1, s2, s3;
                    LUT64(IDX, il, ih, t, s0, s1, s2, s3);
                    __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
                    _mm512_storeu_ps(a, k ? _mm512_add_ps(_mm512_loadu_ps(a), s) : s);
                }
            }
        }
    }
    scale_h(bl, N, b0, b1, acc);
}

/* one panel segment at a time (kernels.h) */
T512 static void lut_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    for (int s = b0, e; s < b1; s = e) {
        e = kern_seg_end(s, b1);
        if (N == 1) lut_rows1(bl, gx, s, e, acc);
        else lut_rowsN(bl, gx, N, s, e, acc);
    }
}

/* ---- 5- and 4-column tables (the default) -------------------------------
 * vpermt2ps looks up 32 entries held in two registers with the low 5 bits of
 * each lane, so one permute can cover 5 columns. The 32 bits of a lane (32
 * columns of one row, bit i = column i) are cut into groups of 5,5,5,5,4,4,4
 * columns at bit offsets 0,5,10,15,20,24,28: 7 permutes, 6 shifts and 6 adds
 * per 32 columns of 16 rows instead of 8, 7 and 7 with 4-column tables. The
 * kernel-private layout is the same; a block-word is done as two passes of
 * 32 columns (lo, hi): for N = 1 in one pass with all 22 tables in registers,
 * for N > 1 as two passes, two tokens at a time with their 2 x 11 tables in
 * registers. */
typedef struct {
    __m512 a[4], b[4];  /* 5-column groups: entries 0..15 (column 4 at -) and 16..31 (+) */
    __m512 t[3];        /* 4-column groups */
} Tab32;

/* the tables of the 32 columns v[0..31] */
T512 static inline void make_tab32(const float *v, const __m512 S[4], Tab32 *T)
{
    for (int g = 0; g < 4; g++) {
        __m512 t = make_table(v + 5 * g, S), v4 = _mm512_set1_ps(v[5 * g + 4]);
        T->a[g] = _mm512_sub_ps(t, v4);
        T->b[g] = _mm512_add_ps(t, v4);
    }
    for (int g = 0; g < 3; g++) T->t[g] = make_table(v + 20 + 4 * g, S);
}

#define P5(idx, T, g) _mm512_permutex2var_ps((T).a[g], (idx), (T).b[g])

/* s = the sum over the 32 columns of the dword vector w (fixed order) */
#define LUT32T(I, w, T, s)                                                    \
    do {                                                                      \
        __m512 s0_ = P5(I(w, 0), T, 0), s1_ = P5(I(w, 5), T, 1);              \
        ADDP(s0_, P5(I(w, 10), T, 2));                                        \
        ADDF(s1_, P5(I(w, 15), T, 3));                                        \
        ADDP(s0_, PERM(I(w, 20), (T).t[0]));                                  \
        ADDF(s1_, PERM(I(w, 24), (T).t[1]));                                  \
        ADDP(s0_, PERM(I(w, 28), (T).t[2]));                                  \
        s = _mm512_add_ps(s0_, s1_);                                          \
    } while (0)

#define SRI(w, n) ((n) ? _mm512_srli_epi32((w), (n)) : (w))

/* N = 1: both halves of a block-word in one pass, their 22 tables in
 * registers (measured faster than two passes of 11: one stream, one acc
 * update) */
T512 static void lut5_rows1b(const BitLinear *bl, const float *gx, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row;
    __m512 S[4];
    sign_vectors(S);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int k = 0; k < wpr; k++) {
        Tab32 TL, TH;
        make_tab32(gx + 64 * k, S, &TL);
        make_tab32(gx + 64 * k + 32, S, &TH);
        const uint32_t *w = bl->kbits + kern_kb_off(bl, k, b0);
        float *a = acc + (size_t)b0 * KERN_ROWBLK;
        for (int b = b0; b < b1; b++, w += 32, a += KERN_ROWBLK) {
            _mm_prefetch((const char *)(w + KERN_PF_DW), _MM_HINT_T0);
            _mm_prefetch((const char *)(w + KERN_PF_DW + 16), _MM_HINT_T0);
            const __m512i lo = _mm512_load_si512((const void *)w), hi = _mm512_load_si512((const void *)(w + 16));
            __m512 sl, sh;
            LUT32T(SRI, lo, TL, sl);
            LUT32T(SRI, hi, TH, sh);
            __m512 s = _mm512_add_ps(sl, sh);
            _mm512_storeu_ps(a, k ? _mm512_add_ps(_mm512_loadu_ps(a), s) : s);
        }
    }
    scale_h(bl, 1, b0, b1, acc);
}

/* N > 1: tokens in pairs with their 2 x 11 tables in registers; the
 * thread's run of block halves (L1/L2-resident after the first pair) is
 * streamed once per pair. Measured 25-30% faster at N = 8 than keeping the
 * tables of 8 tokens in L1 and sharing the index vectors (permutes with a
 * table operand from memory cost two loads each). */
T512 static void lut5_rowsN(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row, nblk = kern_nblk(bl), in_pad = kern_in_pad(bl);
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    __m512 S[4];
    sign_vectors(S);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int k = 0; k < wpr; k++)
        for (int half = 0; half < 2; half++) {
            const int first = k == 0 && half == 0;
            for (int n = 0; n < N; n += 2) {
                const int two = n + 1 < N;
                Tab32 TA, TB;
                make_tab32(gx + (size_t)n * in_pad + 64 * k + 32 * half, S, &TA);
                make_tab32(gx + (size_t)(two ? n + 1 : n) * in_pad + 64 * k + 32 * half, S, &TB);
                const int pf = n == 0 && half == 0;
                /* the tables serve the whole range: its panel segments in turn */
                for (int s0 = b0, s1; s0 < b1; s0 = s1) {
                    s1 = kern_seg_end(s0, b1);
                    const uint32_t *w = bl->kbits + kern_kb_off(bl, k, s0) + 16 * half;
                    float *a = acc + (size_t)n * out_pad + (size_t)s0 * KERN_ROWBLK;
                    for (int b = s0; b < s1; b++, w += 32, a += KERN_ROWBLK) {
                        if (pf) {
                            _mm_prefetch((const char *)(w + KERN_PF_DW), _MM_HINT_T0);
                            _mm_prefetch((const char *)(w + KERN_PF_DW + 16), _MM_HINT_T0);
                        }
                        const __m512i v = _mm512_load_si512((const void *)w);
                        __m512 sa, sb;
                        LUT32T(SRI, v, TA, sa);
                        _mm512_storeu_ps(a, first ? sa : _mm512_add_ps(_mm512_loadu_ps(a), sa));
                        if (two) {
                            LUT32T(SRI, v, TB, sb);
                            float *a2 = a + out_pad;
                            _mm512_storeu_ps(a2, first ? sb : _mm512_add_ps(_mm512_loadu_ps(a2), sb));
                        }
                    }
                }
            }
        }
    scale_h(bl, N, b0, b1, acc);
}

/* N = 1 one panel segment at a time (one stream, kernels.h); N > 1 builds
 * each token's tables once for the whole range */
T512 static void lut5_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    if (N > 1) { lut5_rowsN(bl, gx, N, b0, b1, acc); return; }
    for (int s = b0, e; s < b1; s = e) {
        e = kern_seg_end(s, b1);
        lut5_rows1b(bl, gx, s, e, acc);
    }
}

/* ---- 6-column groups with sign columns (the default, KERN_LAYOUT_L6) ----
 * The 5/4-column kernel above spends 6 shifts per 32 columns to bring each
 * group's bits down to the low 5 bits that vpermt2ps reads, and the shifts
 * compete with the permutes for the same two pipes. KERN_LAYOUT_L6 (see
 * kern_l6_encode in kern.c) orders the bits of each 32-column dword so that
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

/* the tables of the 32 columns v[0..31] (the groups of kern_l6_encode) */
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

/* the six index vectors of the dword vector w, and the two sign carriers */
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

T512 static void lut6_rows1(const BitLinear *bl, const float *gx, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row;
    __m512 S[4];
    sign_vectors(S);
    for (int k = 0; k < wpr; k++) {
        Tab6 TL, TH;
        make_tab6(gx + 64 * k, S, &TL);
        make_tab6(gx + 64 * k + 32, S, &TH);
        const uint32_t *w = bl->kbits + kern_kb_off(bl, k, b0);
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
    scale_h(bl, 1, b0, b1, acc);
}

/* N > 1: tokens in pairs, their 2 x 12 tables in registers, over the
 * thread's range one block-word half at a time (as lut5_rowsN); each index
 * vector is made once and used by both tokens right away. */
T512 static void lut6_rowsN(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row, nblk = kern_nblk(bl), in_pad = kern_in_pad(bl);
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
                    const uint32_t *w = bl->kbits + kern_kb_off(bl, k, s0) + 16 * half;
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
    scale_h(bl, N, b0, b1, acc);
}

T512 static void lut6_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    if (N > 1) { lut6_rowsN(bl, gx, N, b0, b1, acc); return; }
    for (int s = b0, e; s < b1; s = e) {
        e = kern_seg_end(s, b1);
        lut6_rows1(bl, gx, s, e, acc);
    }
}

/* ---- masked-add alternative on the canonical layout -------------------- */
T512 static void mask_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row, in_pad = kern_in_pad(bl);
    const size_t out_pad = (size_t)kern_nblk(bl) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < bl->out ? b1 * KERN_ROWBLK : bl->out;
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
            const uint64_t *w = bl->bits + (size_t)r * wpr;
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
            a[r] = (2.0f * p - total) * bl->h[r];
        }
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) a[r] = 0.0f;
    }
}

/* LayerNorm with double statistics, 16 floats at a time */
T512 void kern_layernorm_avx512(float *y, int n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    double mean = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++) mean += y[i];
    mean /= n;
    __m512d mv = _mm512_set1_pd(mean);
    s0 = _mm512_setzero_pd();
    s1 = _mm512_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), mv);
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), mv);
        s0 = _mm512_fmadd_pd(d0, d0, s0);
        s1 = _mm512_fmadd_pd(d1, d1, s1);
    }
    double var = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++) { double d = y[i] - mean; var += d * d; }
    var /= n;
    float inv = (float)(1.0 / __builtin_sqrt(var + BITLINEAR_EPS)), m = (float)mean;
    __m512 mf = _mm512_set1_ps(m), invf = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(y + i), mf), invf));
    for (; i < n; i++) y[i] = (y[i] - m) * inv;
}

#else /* not x86 */
static int have_avx512(void) { return 0; }
static void lut_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc) { kern_ref.rows(bl, gx, N, b0, b1, acc); }
static void lut5_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc) { kern_ref.rows(bl, gx, N, b0, b1, acc); }
static void lut6_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc) { kern_ref.rows(bl, gx, N, b0, b1, acc); }
static void mask_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc) { kern_ref.rows(bl, gx, N, b0, b1, acc); }
void kern_layernorm_avx512(float *y, int n) { bitlinear_layernorm(y, n); }
#endif

const BitKernel kern_avx512 = {"avx512", "AVX-512 FP32 lookup tables of 6 columns with sign columns (vpermt2ps, multiply-extracted indices)", have_avx512, 1, KERN_LAYOUT_L6, lut6_rows};
const BitKernel kern_avx512lut5 = {"avx512lut5", "AVX-512 FP32 lookup tables of 5 and 4 columns (vpermt2ps/vpermps, 16 rows per op)", have_avx512, 1, KERN_LAYOUT_BW, lut5_rows};
const BitKernel kern_avx512lut4 = {"avx512lut4", "AVX-512 FP32 lookup tables of 4 columns (vpermps, 16 rows per op)", have_avx512, 1, KERN_LAYOUT_BW, lut_rows};
const BitKernel kern_avx512mask = {"avx512mask", "AVX-512 masked adds on the canonical layout (2P - sum)", have_avx512, 0, KERN_LAYOUT_BW, mask_rows};
