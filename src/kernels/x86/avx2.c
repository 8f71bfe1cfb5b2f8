/* src/kernels/x86/avx2.c -- AVX2+FMA variants of the 1-bit kernel (see
 * kernels.h), compiled on x86 only, each function with a target attribute;
 * table.c lists them in its table and runs them only when base/cpu.c says
 * the CPU has AVX2 and FMA. Pure functions of their arguments: any thread
 * may call any of them at any time.
 *
 * "avx2" (kern_rows_avx2; the default without AVX-512): FP32 lookup tables on the
 * kernel-private layout. vpermps on 8 dword lanes indexes 8 entries with the
 * low 3 bits, so the 32 columns of a lane are cut into 10 groups of 3 and one
 * of 2 (bit offsets 0, 3, ..., 27, 30); each group's table of signed sums
 * +-v0 +-v1 +-v2 is one ymm, read from L1 as the permute's memory operand.
 * One shift + one permute + one add do 8 rows x 3 columns; a block-word (16
 * rows x 64 columns) is 4 such vectors of 8 rows x 32 columns.
 *
 * With int8 activations (kernels.h) "avx2" uses the same tables in
 * int32 (vpermd), exact sums per 512-column block, then the block's scale.
 *
 * "avx2flip" (kern_rows_avx2flip, kept for comparison): sign flips of the FP32 activations
 * on the canonical layout.
 * For 8 columns, the inverted sign bits of a 32-bit half-word are broadcast
 * and shifted (vpsllvd) so that lane i holds "bit i is 0" in its sign bit,
 * masked to the sign bit and XORed into gx, then added: 4 ops per 8 sign-MACs.
 * Rows go one at a time with two accumulators; for N > 1 the row's words stay
 * in L1 across the tokens.
 *
 * At the end, the decode helpers (KernDec: attention over FP32/FP16 caches,
 * FP16 and BF16 conversion, FP16/BF16/Q8_0 GEMV rows), which also need F16C, and
 * the Q4_K/Q5_K/Q6_K block expansions (AVX2 only; the avx512 entries use them
 * too). */
#include "kernels/variants.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base/common.h"

#define T2 __attribute__((target("avx2,fma")))

T2 static inline __m256 flip8(__m256i nd, __m256i sh, __m256i sign, const float *x)
{
    __m256i f = _mm256_and_si256(_mm256_sllv_epi32(nd, sh), sign);
    return _mm256_xor_ps(_mm256_loadu_ps(x), _mm256_castsi256_ps(f));
}

T2 static float dot_row(const uint64_t *w, int wpr, const float *x)
{
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    const __m256i sh0 = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
    const __m256i sh1 = _mm256_sub_epi32(sh0, _mm256_set1_epi32(8));
    const __m256i sh2 = _mm256_sub_epi32(sh0, _mm256_set1_epi32(16));
    const __m256i sh3 = _mm256_sub_epi32(sh0, _mm256_set1_epi32(24));
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int k = 0; k < wpr; k++, x += 64) {
        __m256i lo = _mm256_set1_epi32((int)~(uint32_t)w[k]), hi = _mm256_set1_epi32((int)~(uint32_t)(w[k] >> 32));
        a0 = _mm256_add_ps(a0, flip8(lo, sh0, sign, x));
        a1 = _mm256_add_ps(a1, flip8(lo, sh1, sign, x + 8));
        a0 = _mm256_add_ps(a0, flip8(lo, sh2, sign, x + 16));
        a1 = _mm256_add_ps(a1, flip8(lo, sh3, sign, x + 24));
        a0 = _mm256_add_ps(a0, flip8(hi, sh0, sign, x + 32));
        a1 = _mm256_add_ps(a1, flip8(hi, sh1, sign, x + 40));
        a0 = _mm256_add_ps(a0, flip8(hi, sh2, sign, x + 48));
        a1 = _mm256_add_ps(a1, flip8(hi, sh3, sign, x + 56));
    }
    __m256 a = _mm256_add_ps(a0, a1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

T2 void kern_rows_avx2flip(const KernMat *km, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = km->words_per_row, in_pad = kern_in_pad(km);
    const size_t out_pad = (size_t)kern_nblk(km) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < km->out ? b1 * KERN_ROWBLK : km->out;
    for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
        const uint64_t *w = km->bits + (size_t)r * wpr;
        for (int n = 0; n < N; n++) acc[n * out_pad + r] = dot_row(w, wpr, gx + (size_t)n * in_pad) * km->h[r];
    }
    for (int n = 0; n < N; n++)
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) acc[n * out_pad + r] = 0.0f;
}

/* ---- lookup tables ------------------------------------------------------ */
#define A2_NT 8       /* tokens per pass */
#define A2_GROUPS 11  /* tables per 32 columns: 10 of 3 columns, 1 of 2 */

/* table of up to 3 columns v[0..nc-1]: entry i = sum_k (bit k of i ? v_k : -v_k) */
T2 static inline __m256 table3(const float *v, int nc)
{
    const __m256 s0 = _mm256_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1);
    const __m256 s1 = _mm256_setr_ps(-1, -1, 1, 1, -1, -1, 1, 1);
    const __m256 s2 = _mm256_setr_ps(-1, -1, -1, -1, 1, 1, 1, 1);
    __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(v[1]), s1, _mm256_mul_ps(_mm256_set1_ps(v[0]), s0));
    return nc == 3 ? _mm256_fmadd_ps(_mm256_set1_ps(v[2]), s2, t) : t;
}

/* the 11 tables of the 32 columns v[0..31] */
T2 static void tables32(const float *v, __m256 *T)
{
    for (int g = 0; g < 10; g++) T[g] = table3(v + 3 * g, 3);
    T[10] = table3(v + 30, 2);
}

/* the sum over the 32 columns of the 8 lanes of w, tables T[11] (fixed
 * order): lut32 on FP32 tables, lut32i on int32 ones (int8 activations) */
#define LUT32_DEF(name, type, perm, add)                                        \
    T2 static inline type name(__m256i w, const type *T)                        \
    {                                                                           \
        type s0 = perm(T[0], w), s1 = perm(T[1], _mm256_srli_epi32(w, 3));     \
        for (int g = 2; g < A2_GROUPS; g += 2) {                                \
            s0 = add(s0, perm(T[g], _mm256_srli_epi32(w, 3 * g)));              \
            if (g + 1 < A2_GROUPS) s1 = add(s1, perm(T[g + 1], _mm256_srli_epi32(w, 3 * g + 3))); \
        }                                                                       \
        return add(s0, s1);                                                     \
    }
LUT32_DEF(lut32, __m256, _mm256_permutevar8x32_ps, _mm256_add_ps)

/* acc times h for blocks [b0, b1); rows past `out` become 0 */
static void scale_h(const KernMat *km, int N, int b0, int b1, float *acc)
{
    const size_t out_pad = (size_t)kern_nblk(km) * KERN_ROWBLK;
    for (int n = 0; n < N; n++)
        for (int r = b0 * KERN_ROWBLK; r < b1 * KERN_ROWBLK; r++) acc[n * out_pad + r] = r < km->out ? acc[n * out_pad + r] * km->h[r] : 0.0f;
}

T2 static void lut_seg(const KernMat *km, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = km->words_per_row, nblk = kern_nblk(km), in_pad = kern_in_pad(km);
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    __m256 tab[A2_NT][2][A2_GROUPS];
    for (int n0 = 0; n0 < N; n0 += A2_NT) {
        const int nt = N - n0 < A2_NT ? N - n0 : A2_NT;
        for (int k = 0; k < wpr; k++) {
            for (int n = 0; n < nt; n++)
                for (int half = 0; half < 2; half++) tables32(gx + (size_t)(n0 + n) * in_pad + 64 * k + 32 * half, tab[n][half]);
            const uint32_t *w = km->kbits + kern_kb_off(km, k, b0);
            for (int b = b0; b < b1; b++, w += 32) {
                /* rows 0-7 and 8-15 of the lo and hi 32 columns */
                const __m256i l0 = _mm256_load_si256((const __m256i *)w), l1 = _mm256_load_si256((const __m256i *)(w + 8));
                const __m256i h0 = _mm256_load_si256((const __m256i *)(w + 16)), h1 = _mm256_load_si256((const __m256i *)(w + 24));
                float *a = acc + (size_t)n0 * out_pad + (size_t)b * KERN_ROWBLK;
                for (int n = 0; n < nt; n++, a += out_pad) {
                    __m256 r0 = _mm256_add_ps(lut32(l0, tab[n][0]), lut32(h0, tab[n][1]));
                    __m256 r1 = _mm256_add_ps(lut32(l1, tab[n][0]), lut32(h1, tab[n][1]));
                    if (k) {
                        r0 = _mm256_add_ps(_mm256_loadu_ps(a), r0);
                        r1 = _mm256_add_ps(_mm256_loadu_ps(a + 8), r1);
                    }
                    _mm256_storeu_ps(a, r0);
                    _mm256_storeu_ps(a + 8, r1);
                }
            }
        }
    }
    scale_h(km, N, b0, b1, acc);
}

/* one panel segment at a time (kernels.h) */
T2 void kern_rows_avx2(const KernMat *km, const float *gx, int N, int b0, int b1, float *acc)
{
    for (int s = b0, e; s < b1; s = e) {
        e = kern_seg_end(s, b1);
        lut_seg(km, gx, N, s, e, acc);
    }
}

/* ---- int8 activations (kernels.h): the same tables in int32 ----------- */

/* entry i = sum_k (bit k of i ? q_k : -q_k), exact */
T2 static inline __m256i table3i(const int16_t *q, int nc)
{
    const __m256i s0 = _mm256_setr_epi32(-1, 1, -1, 1, -1, 1, -1, 1);
    const __m256i s1 = _mm256_setr_epi32(-1, -1, 1, 1, -1, -1, 1, 1);
    const __m256i s2 = _mm256_setr_epi32(-1, -1, -1, -1, 1, 1, 1, 1);
    __m256i t = _mm256_add_epi32(_mm256_sign_epi32(_mm256_set1_epi32(q[0]), s0), _mm256_sign_epi32(_mm256_set1_epi32(q[1]), s1));
    return nc == 3 ? _mm256_add_epi32(t, _mm256_sign_epi32(_mm256_set1_epi32(q[2]), s2)) : t;
}

T2 static void tables32i(const int16_t *q, __m256i *T)
{
    for (int g = 0; g < 10; g++) T[g] = table3i(q + 3 * g, 3);
    T[10] = table3i(q + 30, 2);
}

LUT32_DEF(lut32i, __m256i, _mm256_permutevar8x32_epi32, _mm256_add_epi32)

/* deliberately a separate copy of lut_seg's loop nest: the int8 variant
 * walks the same panels with integer tables and per-block scales; merging
 * the two would put a branch or an indirection into the hot loop */
/* one panel segment: per 512-column block the exact int32 sums (in the
 * acc16 scratch, which has 4 bytes per row and token), then into acc with
 * the block's scale, in the order of kernels.h */
T2 static void lut_seg_q8(const KernMat *km, const int16_t *q, const float *scale, int N, int b0, int b1, float *acc,
                          int16_t *acc16)
{
    const int wpr = km->words_per_row, nblk = kern_nblk(km), in_pad = kern_in_pad(km), nq = kern_nqblk(km);
    const int kpb = KERN_QBLOCK / 64;
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK;
    __m256i tab[A2_NT][2][A2_GROUPS];
    for (int n0 = 0; n0 < N; n0 += A2_NT) {
        const int nt = N - n0 < A2_NT ? N - n0 : A2_NT;
        for (int j = 0; j < nq; j++) {
            const int k1 = (j + 1) * kpb < wpr ? (j + 1) * kpb : wpr;
            for (int k = j * kpb; k < k1; k++) {
                for (int n = 0; n < nt; n++)
                    for (int half = 0; half < 2; half++) tables32i(q + (size_t)(n0 + n) * in_pad + 64 * k + 32 * half, tab[n][half]);
                const uint32_t *w = km->kbits + kern_kb_off(km, k, b0);
                for (int b = b0; b < b1; b++, w += 32) {
                    const __m256i l0 = _mm256_load_si256((const __m256i *)w), l1 = _mm256_load_si256((const __m256i *)(w + 8));
                    const __m256i h0 = _mm256_load_si256((const __m256i *)(w + 16)), h1 = _mm256_load_si256((const __m256i *)(w + 24));
                    __m256i *a = (__m256i *)(acc16 + 2 * ((size_t)n0 * out_pad + (size_t)b * KERN_ROWBLK));
                    for (int n = 0; n < nt; n++, a += out_pad / 8) {
                        __m256i r0 = _mm256_add_epi32(lut32i(l0, tab[n][0]), lut32i(h0, tab[n][1]));
                        __m256i r1 = _mm256_add_epi32(lut32i(l1, tab[n][0]), lut32i(h1, tab[n][1]));
                        if (k > j * kpb) {
                            r0 = _mm256_add_epi32(_mm256_load_si256(a), r0);
                            r1 = _mm256_add_epi32(_mm256_load_si256(a + 1), r1);
                        }
                        _mm256_store_si256(a, r0);
                        _mm256_store_si256(a + 1, r1);
                    }
                }
            }
            for (int n = n0; n < n0 + nt; n++) {
                const __m256 sc = _mm256_set1_ps(scale[(size_t)n * nq + j]);
                const __m256i *a16 = (const __m256i *)(acc16 + 2 * ((size_t)n * out_pad + (size_t)b0 * KERN_ROWBLK));
                float *a = acc + (size_t)n * out_pad + (size_t)b0 * KERN_ROWBLK;
                for (int r = 0; r < (b1 - b0) * KERN_ROWBLK; r += 8, a16++) {
                    __m256 f = _mm256_cvtepi32_ps(_mm256_load_si256(a16));
                    _mm256_storeu_ps(a + r, j ? _mm256_fmadd_ps(sc, f, _mm256_loadu_ps(a + r)) : _mm256_mul_ps(sc, f));
                }
            }
        }
    }
    scale_h(km, N, b0, b1, acc);
}

T2 void kern_rows_q8_avx2(const KernMat *km, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                           float *acc, int16_t *acc16)
{
    (void)prep;
    for (int s = b0, e; s < b1; s = e) {
        e = kern_seg_end(s, b1);
        lut_seg_q8(km, q, scale, N, s, e, acc, acc16);
    }
}

/* dense FP32 rows (kernels.h): a row at a time, two accumulators of 8 columns */
T2 void kern_gemv_rows_avx2(const float *W, const float *x, float *y, int cols, int r0, int r1)
{
    const int c8 = cols & ~7;
    for (int r = r0; r < r1; r++) {
        const float *w = W + (size_t)r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 16 <= c8; c += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);
        }
        for (; c < c8; c += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
        __m256 a = _mm256_add_ps(a0, a1);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        float t = _mm_cvtss_f32(s);
        for (; c < cols; c++) t += w[c] * x[c];
        y[r] = t;
    }
}


/* ---- the decode helpers (kernels.h KernDec) --------------------------------
 * 8 lanes; what is left of a row past a multiple of 8 in scalar code (the
 * same products, added last). FP16 through F16C (vcvtph2ps / vcvtps2ph). */
#define T2H __attribute__((target("avx2,fma,f16c")))

T2H static inline __m256 dec2_ld_f32(const float *p) { return _mm256_loadu_ps(p); }
T2H static inline __m256 dec2_ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline float dec2_sc_f32(float v) { return v; }
static inline float dec2_sc_f16(uint16_t v) { return ob_fp16_to_fp32(v); }
/* BF16: the upper half of an FP32, widened by a shift */
T2H static inline __m256 dec2_ld_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
static inline float dec2_sc_bf16(uint16_t v) { return ob_bf16_to_fp32(v); }

T2H static inline float dec2_hsum(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define DEC_SCORE_2(sfx, T)                                                                                     \
    T2H void kern_dec_score_##sfx##_avx2(const float *q, const T *K, size_t ld, int hd, int n, float scale,       \
                                         float *s)                                                              \
    {                                                                                                           \
        const int h8 = hd & ~7;                                                                                 \
        int t = 0;                                                                                              \
        for (; t + 4 <= n; t += 4) {                                                                            \
            const T *k0 = K + (size_t)t * ld, *k1 = k0 + ld, *k2 = k1 + ld, *k3 = k2 + ld;                       \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                         \
            for (int i = 0; i < h8; i += 8) {                                                                   \
                __m256 qv = _mm256_loadu_ps(q + i);                                                             \
                a0 = _mm256_fmadd_ps(qv, dec2_ld_##sfx(k0 + i), a0);                                            \
                a1 = _mm256_fmadd_ps(qv, dec2_ld_##sfx(k1 + i), a1);                                            \
                a2 = _mm256_fmadd_ps(qv, dec2_ld_##sfx(k2 + i), a2);                                            \
                a3 = _mm256_fmadd_ps(qv, dec2_ld_##sfx(k3 + i), a3);                                            \
            }                                                                                                   \
            float d0 = dec2_hsum(a0), d1 = dec2_hsum(a1), d2 = dec2_hsum(a2), d3 = dec2_hsum(a3);               \
            for (int i = h8; i < hd; i++) {                                                                     \
                d0 += q[i] * dec2_sc_##sfx(k0[i]);                                                              \
                d1 += q[i] * dec2_sc_##sfx(k1[i]);                                                              \
                d2 += q[i] * dec2_sc_##sfx(k2[i]);                                                              \
                d3 += q[i] * dec2_sc_##sfx(k3[i]);                                                              \
            }                                                                                                   \
            s[t] = d0 * scale, s[t + 1] = d1 * scale, s[t + 2] = d2 * scale, s[t + 3] = d3 * scale;             \
        }                                                                                                       \
        for (; t < n; t++) {                                                                                    \
            const T *k = K + (size_t)t * ld;                                                                    \
            __m256 a = _mm256_setzero_ps();                                                                     \
            for (int i = 0; i < h8; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), dec2_ld_##sfx(k + i), a); \
            float d = dec2_hsum(a);                                                                             \
            for (int i = h8; i < hd; i++) d += q[i] * dec2_sc_##sfx(k[i]);                                      \
            s[t] = d * scale;                                                                                   \
        }                                                                                                       \
    }
DEC_SCORE_2(f32, float)
DEC_SCORE_2(f16, uint16_t)

#define DEC_ACCUM_2(sfx, T)                                                                                     \
    T2H void kern_dec_accum_##sfx##_avx2(const float *a, const T *V, size_t ld, int hd, int n, float *out)        \
    {                                                                                                           \
        const int h32 = hd & ~31, h8 = hd & ~7;                                                                 \
        for (int i = 0; i < h32; i += 32) {                                                                     \
            __m256 o0 = _mm256_loadu_ps(out + i), o1 = _mm256_loadu_ps(out + i + 8);                            \
            __m256 o2 = _mm256_loadu_ps(out + i + 16), o3 = _mm256_loadu_ps(out + i + 24);                      \
            const T *v = V + i;                                                                                 \
            for (int t = 0; t < n; t++, v += ld) {                                                              \
                __m256 w = _mm256_set1_ps(a[t]);                                                                \
                o0 = _mm256_fmadd_ps(w, dec2_ld_##sfx(v), o0);                                                  \
                o1 = _mm256_fmadd_ps(w, dec2_ld_##sfx(v + 8), o1);                                              \
                o2 = _mm256_fmadd_ps(w, dec2_ld_##sfx(v + 16), o2);                                             \
                o3 = _mm256_fmadd_ps(w, dec2_ld_##sfx(v + 24), o3);                                             \
            }                                                                                                   \
            _mm256_storeu_ps(out + i, o0), _mm256_storeu_ps(out + i + 8, o1);                                   \
            _mm256_storeu_ps(out + i + 16, o2), _mm256_storeu_ps(out + i + 24, o3);                             \
        }                                                                                                       \
        for (int i = h32; i < h8; i += 8) {                                                                     \
            __m256 o = _mm256_loadu_ps(out + i);                                                                \
            const T *v = V + i;                                                                                 \
            for (int t = 0; t < n; t++, v += ld) o = _mm256_fmadd_ps(_mm256_set1_ps(a[t]), dec2_ld_##sfx(v), o); \
            _mm256_storeu_ps(out + i, o);                                                                       \
        }                                                                                                       \
        for (int i = h8; i < hd; i++)                                                                           \
            for (int t = 0; t < n; t++) out[i] += a[t] * dec2_sc_##sfx(V[(size_t)t * ld + i]);                  \
    }
DEC_ACCUM_2(f32, float)
DEC_ACCUM_2(f16, uint16_t)

/* FP16 <-> FP32 in vectors of 8; the last partial vector through a
 * zero-padded copy, so every value goes through the same instruction */
T2H void kern_dec_to_f16_avx2(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        float pad[8] = {0};
        const float *src = k == 8 ? x + i : memcpy(pad, x + i, k * sizeof(float));
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (k == 8) _mm_storeu_si128((__m128i *)(y + i), h);
        else {
            uint16_t out[8];
            _mm_storeu_si128((__m128i *)out, h);
            memcpy(y + i, out, k * sizeof(uint16_t));
        }
    }
}

/* FP16 / BF16 -> FP32 in vectors of 8 (the last partial one through a
 * zero-padded copy) and GEMV rows over them: the same code, two loaders */
#define DEC_WIDE_2(sfx)                                                                                         \
    T2H void kern_dec_from_##sfx##_avx2(const uint16_t *x, float *y, size_t n)                                  \
    {                                                                                                           \
        for (size_t i = 0; i < n; i += 8) {                                                                     \
            size_t k = n - i < 8 ? n - i : 8;                                                                   \
            uint16_t pad[8] = {0};                                                                              \
            __m256 f = dec2_ld_##sfx(k == 8 ? x + i : memcpy(pad, x + i, k * sizeof(uint16_t)));                \
            if (k == 8) _mm256_storeu_ps(y + i, f);                                                             \
            else {                                                                                              \
                float out[8];                                                                                   \
                _mm256_storeu_ps(out, f);                                                                       \
                memcpy(y + i, out, k * sizeof(float));                                                          \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
    T2H void kern_dec_gemv_##sfx##_avx2(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1)  \
    {                                                                                                           \
        const int c8 = cols & ~7;                                                                               \
        for (int r = r0; r < r1; r++) {                                                                         \
            const uint16_t *w = W + (size_t)r * cols;                                                           \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;                                                           \
            int c = 0;                                                                                          \
            for (; c + 16 <= c8; c += 16) {                                                                     \
                a0 = _mm256_fmadd_ps(dec2_ld_##sfx(w + c), _mm256_loadu_ps(x + c), a0);                         \
                a1 = _mm256_fmadd_ps(dec2_ld_##sfx(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);                 \
            }                                                                                                   \
            for (; c < c8; c += 8) a0 = _mm256_fmadd_ps(dec2_ld_##sfx(w + c), _mm256_loadu_ps(x + c), a0);      \
            float s = dec2_hsum(_mm256_add_ps(a0, a1));                                                         \
            for (; c < cols; c++) s += dec2_sc_##sfx(w[c]) * x[c];                                              \
            y[r] = s;                                                                                           \
        }                                                                                                       \
    }
DEC_WIDE_2(f16)
DEC_WIDE_2(bf16)

/* one Q8_0 block of 32 against x: its 4 groups of 8 widened to floats, in
 * two independent chains */
T2H static inline __m256 q8_0_block2(const KernQ8_0 *b, const float *x)
{
#define Q8G(k) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b->q + 8 * (k)))))
    __m256 p0 = _mm256_mul_ps(Q8G(0), _mm256_loadu_ps(x)), p1 = _mm256_mul_ps(Q8G(2), _mm256_loadu_ps(x + 16));
    p0 = _mm256_fmadd_ps(Q8G(1), _mm256_loadu_ps(x + 8), p0);
    p1 = _mm256_fmadd_ps(Q8G(3), _mm256_loadu_ps(x + 24), p1);
#undef Q8G
    return _mm256_add_ps(p0, p1);
}

/* rows one at a time (one stream a task), two blocks in flight (a block's
 * sum of four dependent FMAs then the scale's made a chain of 5 FMAs a
 * block: 15 GB/s on one Zen 5 core where the AVX-512 variant reads 19),
 * the stream KERN_GEMV_PF bytes ahead prefetched into L2 */
T2H void kern_dec_gemv_q8_0_avx2(const KernQ8_0 *W, const float *x, float *y, int cols, int r0, int r1)
{
    const int nb = cols / KERN_Q8_0_BLOCK;
    for (int r = r0; r < r1; r++) {
        const KernQ8_0 *b = W + (size_t)r * nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int j = 0;
        for (; j + 2 <= nb; j += 2) {
            const char *pf = (const char *)(b + j) + KERN_GEMV_PF;
            kern_prefetch_l2(pf, pf + 2 * sizeof *b);
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[j].d)), q8_0_block2(b + j, x + j * KERN_Q8_0_BLOCK), a0);
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[j + 1].d)), q8_0_block2(b + j + 1, x + (j + 1) * KERN_Q8_0_BLOCK), a1);
        }
        if (j < nb) a0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[j].d)), q8_0_block2(b + j, x + j * KERN_Q8_0_BLOCK), a0);
        y[r] = dec2_hsum(_mm256_add_ps(a0, a1));
    }
}

/* ---- the K-quant block expansions (kernels.h KernDec dq_q4_k/q5_k/q6_k) ----
 * 32 levels at a time: bytes to int32 to float, then a multiply and a
 * subtraction as in the reference (no FMA, so the same bits). */
#define T2Q __attribute__((target("avx2")))

/* y[i] = a_i * v[i] - m for the 32 signed bytes of v, a_i = lo for i < 16,
 * hi after */
T2Q static inline void dq2_run(__m256i v, __m256 lo, __m256 hi, __m256 m, float *y)
{
    __m128i h[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
    for (int k = 0; k < 4; k++) {
        __m128i b = k & 1 ? _mm_srli_si128(h[k >> 1], 8) : h[k >> 1];
        __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(k < 2 ? lo : hi, q), m));
    }
}

/* Q4_K (qh NULL) and Q5_K: sub-blocks 2c (low nibbles, fifth bit 2c of qh)
 * and 2c + 1 (high nibbles, bit 2c + 1) */
T2Q static inline void dq2_k45(const uint8_t *qs, const uint8_t *qh, const float *a, const float *m, float *y)
{
    const __m256i low = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    __m256i hb = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        __m256i q0 = _mm256_and_si256(v, low), q1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        if (qh) {
            q0 = _mm256_or_si256(q0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * c)), one), 4));
            q1 = _mm256_or_si256(q1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * c + 1)), one), 4));
        }
        __m256 a0 = _mm256_set1_ps(a[2 * c]), a1 = _mm256_set1_ps(a[2 * c + 1]);
        dq2_run(q0, a0, a0, _mm256_set1_ps(m[2 * c]), y + 64 * c);
        dq2_run(q1, a1, a1, _mm256_set1_ps(m[2 * c + 1]), y + 64 * c + 32);
    }
}

/* Q4_0 / Q5_0: the 16 bytes' low nibbles are weights 0-15, the high ones
 * 16-31; bit i of qh spread to byte i (a shuffle of qh's bytes, then each
 * byte's own bit) is the fifth bit */
T2Q void kern_dec_dq_sym_avx2(const uint8_t *qs, uint32_t qh, int mid, float d, float *y)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs), low = _mm_set1_epi8(15);
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_and_si128(v, low));
    const __m256i sel = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel);
    hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit), _mm256_set1_epi8(16));
    q = _mm256_sub_epi8(_mm256_or_si256(q, hb), _mm256_set1_epi8((char)mid));
    __m256 dv = _mm256_set1_ps(d);
    dq2_run(q, dv, dv, _mm256_setzero_ps(), y);
}

T2Q void kern_dec_dq_q4_k_avx2(const uint8_t *qs, const float *a, const float *m, float *y) { dq2_k45(qs, NULL, a, m, y); }

T2Q void kern_dec_dq_q5_k_avx2(const uint8_t *qs, const uint8_t *qh, const float *a, const float *m, float *y)
{
    dq2_k45(qs, qh, a, m, y);
}

T2Q void kern_dec_dq_q6_k_avx2(const uint8_t *ql, const uint8_t *qh, const float *a, float *y)
{
    const __m256i low = _mm256_set1_epi8(15), two = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    const __m256 zero = _mm256_setzero_ps();
    for (int h = 0; h < 2; h++) {
        __m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
        for (int g = 0; g < 4; g++) { /* the 32 weights 128 h + 32 g + l */
            __m256i lb = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32 * (g & 1)));
            if (g >> 1) lb = _mm256_srli_epi16(lb, 4);
            __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(2 * g)), two);
            __m256i q = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(lb, low), _mm256_slli_epi16(hi, 4)), off);
            const float *sa = a + 8 * h + 2 * g;
            dq2_run(q, _mm256_set1_ps(sa[0]), _mm256_set1_ps(sa[1]), zero, y + 128 * h + 32 * g);
        }
    }
}

/* ---- blocked prompt attention (KernDec.attn_f16) ------------------------
 * As the AVX-512 variant (x86/avx512.c) with the 16 queries of a tile in two
 * 8-lane halves: the block's keys widened once into ws, 4 keys' scores at a
 * time (8 accumulators), the softmax lane-wise with exp2v, the values
 * widened into the same rows, then 2 output rows at a time over 32 columns
 * (8 accumulators). exp2v: e^x as
 * the AVX-512 one (Cephes' polynomial) with 2^n built in the exponent bits,
 * x clamped to [-87, 88] (so exp(-inf) gives 1.6e-38, not 0: the masked
 * weights are zeroed by a blend, and a tiny rescale of a zero state is 0).
 * The 7B shape's prompt attention at 128 tokens (as in avx512.c): 4.4 ms a
 * layer against 5.8 ms with the AVX2 per-query helpers. */
T2H static inline __m256 exp2v(__m256 x)
{
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r, p;
    KERN_EXPF_POLY(x, n, r, p, _mm256_fnmadd_ps, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_set1_ps);
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* a decode step's attention (KernDec.step_f16) as the AVX-512 one, in 8
 * lanes (the prefetch into L2 measured on Zen 5 with the AVX-512 variant
 * only) */

/* step_f16's helpers (KERN_STEP_F16_BODY): 4 heads' dot products, the last
 * hd % 8 columns scalar */
T2H static inline void step2_score4(const uint16_t *const kp[4], const float *q, int hd, float scale, float *s, int n)
{
    const int h8 = hd & ~7;
    const uint16_t *k0 = kp[0], *k1 = kp[1], *k2 = kp[2], *k3 = kp[3];
    const float *q0 = q, *q1 = q0 + hd, *q2 = q1 + hd, *q3 = q2 + hd;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < h8; c += 8) {
        a0 = _mm256_fmadd_ps(dec2_ld_f16(k0 + c), _mm256_loadu_ps(q0 + c), a0);
        a1 = _mm256_fmadd_ps(dec2_ld_f16(k1 + c), _mm256_loadu_ps(q1 + c), a1);
        a2 = _mm256_fmadd_ps(dec2_ld_f16(k2 + c), _mm256_loadu_ps(q2 + c), a2);
        a3 = _mm256_fmadd_ps(dec2_ld_f16(k3 + c), _mm256_loadu_ps(q3 + c), a3);
    }
    float d0 = dec2_hsum(a0), d1 = dec2_hsum(a1), d2 = dec2_hsum(a2), d3 = dec2_hsum(a3);
    for (int c = h8; c < hd; c++) {
        d0 += q0[c] * ob_fp16_to_fp32(k0[c]);
        d1 += q1[c] * ob_fp16_to_fp32(k1[c]);
        d2 += q2[c] * ob_fp16_to_fp32(k2[c]);
        d3 += q3[c] * ob_fp16_to_fp32(k3[c]);
    }
    s[0] = d0 * scale, s[n] = d1 * scale, s[2 * n] = d2 * scale, s[3 * n] = d3 * scale;
}

/* a head's n scores at p: the weights 8 to a vector (exp2v), the last n % 8
 * with expf */
T2H static inline void step2_softmax(float *p, int n, float *m, float *l, float *a)
{
    const int n8 = n & ~7;
    float M = *m, sum;
    for (int t = 0; t < n; t++) M = p[t] > M ? p[t] : M;
    const __m256 Mv = _mm256_set1_ps(M);
    __m256 sv = _mm256_setzero_ps();
    for (int t = 0; t < n8; t += 8) {
        __m256 e = exp2v(_mm256_sub_ps(_mm256_loadu_ps(p + t), Mv));
        _mm256_storeu_ps(p + t, e);
        sv = _mm256_add_ps(sv, e);
    }
    sum = dec2_hsum(sv);
    for (int t = n8; t < n; t++) { p[t] = expf(p[t] - M); sum += p[t]; }
    *a = expf(*m - M);
    *l = *l * *a + sum;
    *m = M;
}

T2H static inline void step2_axpy(const uint16_t *v, float *o, int hd, float w, float a)
{
    const int h8 = hd & ~7;
    const __m256 wv = _mm256_set1_ps(w), av = _mm256_set1_ps(a);
    for (int c = 0; c < h8; c += 8) _mm256_storeu_ps(o + c, _mm256_fmadd_ps(wv, dec2_ld_f16(v + c), _mm256_mul_ps(_mm256_loadu_ps(o + c), av)));
    for (int c = h8; c < hd; c++) o[c] = o[c] * a + w * ob_fp16_to_fp32(v[c]);
}

T2H void kern_dec_step_f16_avx2(const float *q, const uint16_t *K, const uint16_t *V, size_t ld, int nh, int group, int hd,
                                int n, float scale, float *m, float *l, float *o, float *sc)
{
    KERN_STEP_F16_BODY(step2_score4, kern_dec_score_f16_avx2, step2_softmax, step2_axpy);
}

/* the lanes (of 8 from lane0) that see key t: i >= t - diag, as all-ones */
T2H static inline __m256 attn2_vis(int t, int diag, int lane0)
{
    const __m256i iota = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_add_epi32(iota, _mm256_set1_epi32(lane0)), _mm256_set1_epi32(t - diag)));
}

/* n rows of X (a stride of ld) widened to FP32 rows of hd in B */
T2H static void attn2_widen(const uint16_t *X, size_t ld, int hd, int n, float *B)
{
    for (int t = 0; t < n; t++) kern_dec_from_f16_avx2(X + (size_t)t * ld, B + (size_t)t * hd, (size_t)hd);
}

T2H void kern_dec_attn_f16_avx2(const float *Qt, int nq, const uint16_t *K, const uint16_t *V, size_t ld, int hd, int n,
                                int diag, float scale, float *m, float *l, float *O, size_t ldo, float *ws)
{
    enum { QB = KERN_ATTN_QB };
    float *B = ws, *P = ws + (size_t)KERN_ATTN_KB * hd;
    const __m256 vs = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    attn2_widen(K, ld, hd, n, B);
    __m256 M0 = _mm256_loadu_ps(m), M1 = _mm256_loadu_ps(m + 8);
    int t = 0;
    for (; t < n; t += 4) {
        const int nk = n - t < 4 ? n - t : 4;
        const float *b = B + (size_t)t * hd;
        __m256 a[8];
        for (int u = 0; u < 8; u++) a[u] = _mm256_setzero_ps();
        if (nk == 4)
            for (int j = 0; j < hd; j++) {
                __m256 q0 = _mm256_loadu_ps(Qt + (size_t)j * QB), q1 = _mm256_loadu_ps(Qt + (size_t)j * QB + 8);
                __m256 k0 = _mm256_broadcast_ss(b + j), k1 = _mm256_broadcast_ss(b + hd + j);
                __m256 k2 = _mm256_broadcast_ss(b + 2 * hd + j), k3 = _mm256_broadcast_ss(b + 3 * hd + j);
                a[0] = _mm256_fmadd_ps(k0, q0, a[0]); a[1] = _mm256_fmadd_ps(k0, q1, a[1]);
                a[2] = _mm256_fmadd_ps(k1, q0, a[2]); a[3] = _mm256_fmadd_ps(k1, q1, a[3]);
                a[4] = _mm256_fmadd_ps(k2, q0, a[4]); a[5] = _mm256_fmadd_ps(k2, q1, a[5]);
                a[6] = _mm256_fmadd_ps(k3, q0, a[6]); a[7] = _mm256_fmadd_ps(k3, q1, a[7]);
            }
        else
            for (int u = 0; u < nk; u++)
                for (int j = 0; j < hd; j++) {
                    __m256 k = _mm256_broadcast_ss(b + (size_t)u * hd + j);
                    a[2 * u] = _mm256_fmadd_ps(k, _mm256_loadu_ps(Qt + (size_t)j * QB), a[2 * u]);
                    a[2 * u + 1] = _mm256_fmadd_ps(k, _mm256_loadu_ps(Qt + (size_t)j * QB + 8), a[2 * u + 1]);
                }
        for (int u = 0; u < nk; u++) {
            __m256 s0 = _mm256_blendv_ps(ninf, _mm256_mul_ps(a[2 * u], vs), attn2_vis(t + u, diag, 0));
            __m256 s1 = _mm256_blendv_ps(ninf, _mm256_mul_ps(a[2 * u + 1], vs), attn2_vis(t + u, diag, 8));
            M0 = _mm256_max_ps(M0, s0);
            M1 = _mm256_max_ps(M1, s1);
            _mm256_storeu_ps(P + (size_t)(t + u) * QB, s0);
            _mm256_storeu_ps(P + (size_t)(t + u) * QB + 8, s1);
        }
    }
    const __m256 al0 = exp2v(_mm256_sub_ps(_mm256_loadu_ps(m), M0)), al1 = exp2v(_mm256_sub_ps(_mm256_loadu_ps(m + 8), M1));
    __m256 L0 = _mm256_mul_ps(_mm256_loadu_ps(l), al0), L1 = _mm256_mul_ps(_mm256_loadu_ps(l + 8), al1);
    const __m256 zero = _mm256_setzero_ps();
    for (t = 0; t < n; t++) {
        float *pt = P + (size_t)t * QB;
        __m256 p0 = _mm256_blendv_ps(zero, exp2v(_mm256_sub_ps(_mm256_loadu_ps(pt), M0)), attn2_vis(t, diag, 0));
        __m256 p1 = _mm256_blendv_ps(zero, exp2v(_mm256_sub_ps(_mm256_loadu_ps(pt + 8), M1)), attn2_vis(t, diag, 8));
        _mm256_storeu_ps(pt, p0);
        _mm256_storeu_ps(pt + 8, p1);
        L0 = _mm256_add_ps(L0, p0);
        L1 = _mm256_add_ps(L1, p1);
    }
    _mm256_storeu_ps(l, L0); _mm256_storeu_ps(l + 8, L1);
    _mm256_storeu_ps(m, M0); _mm256_storeu_ps(m + 8, M1);
    float alv[QB];
    _mm256_storeu_ps(alv, al0);
    _mm256_storeu_ps(alv + 8, al1);
    attn2_widen(V, ld, hd, n, B);
    const int h8 = hd & ~7;
    for (int i = 0; i < nq; i += 2) {
        const int nu = nq - i < 2 ? 1 : 2;
        for (int j = 0; j < h8; j += 32) {
            const int nv = (h8 - j) / 8 < 4 ? (h8 - j) / 8 : 4;
            __m256 a[2][4];
            for (int u = 0; u < nu; u++)
                for (int k = 0; k < nv; k++)
                    a[u][k] = _mm256_mul_ps(_mm256_loadu_ps(O + (size_t)(i + u) * ldo + j + 8 * k), _mm256_set1_ps(alv[i + u]));
            if (nu == 2 && nv == 4)
                for (t = 0; t < n; t++) {
                    const float *b = B + (size_t)t * hd + j;
                    __m256 p0 = _mm256_broadcast_ss(P + (size_t)t * QB + i), p1 = _mm256_broadcast_ss(P + (size_t)t * QB + i + 1);
                    __m256 v0 = _mm256_loadu_ps(b), v1 = _mm256_loadu_ps(b + 8), v2 = _mm256_loadu_ps(b + 16), v3 = _mm256_loadu_ps(b + 24);
                    a[0][0] = _mm256_fmadd_ps(p0, v0, a[0][0]); a[0][1] = _mm256_fmadd_ps(p0, v1, a[0][1]);
                    a[0][2] = _mm256_fmadd_ps(p0, v2, a[0][2]); a[0][3] = _mm256_fmadd_ps(p0, v3, a[0][3]);
                    a[1][0] = _mm256_fmadd_ps(p1, v0, a[1][0]); a[1][1] = _mm256_fmadd_ps(p1, v1, a[1][1]);
                    a[1][2] = _mm256_fmadd_ps(p1, v2, a[1][2]); a[1][3] = _mm256_fmadd_ps(p1, v3, a[1][3]);
                }
            else
                for (int u = 0; u < nu; u++)
                    for (int k = 0; k < nv; k++)
                        for (t = 0; t < n; t++)
                            a[u][k] = _mm256_fmadd_ps(_mm256_broadcast_ss(P + (size_t)t * QB + i + u),
                                                      _mm256_loadu_ps(B + (size_t)t * hd + j + 8 * k), a[u][k]);
            for (int u = 0; u < nu; u++)
                for (int k = 0; k < nv; k++) _mm256_storeu_ps(O + (size_t)(i + u) * ldo + j + 8 * k, a[u][k]);
        }
        for (int j = h8; j < hd; j++)
            for (int u = 0; u < nu; u++) {
                float o = O[(size_t)(i + u) * ldo + j] * alv[i + u];
                for (t = 0; t < n; t++) o = fmaf(P[(size_t)t * QB + i + u], B[(size_t)t * hd + j], o);
                O[(size_t)(i + u) * ldo + j] = o;
            }
    }
}
