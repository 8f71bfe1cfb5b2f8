/* kernels/kern_avx2.c -- AVX2+FMA variant of the 1-bit kernel (see
 * kernels.h): sign flips of the FP32 activations on the canonical layout.
 * For 8 columns, the inverted sign bits of a 32-bit half-word are broadcast
 * and shifted (vpsllvd) so that lane i holds "bit i is 0" in its sign bit,
 * masked to the sign bit and XORed into gx, then added: 4 ops per 8 sign-MACs.
 * Rows go one at a time with two accumulators; for N > 1 the row's words stay
 * in L1 across the tokens. */
#include "kernels.h"

#if defined(OB_X86) || defined(__x86_64__)
#include <immintrin.h>

#define T2 __attribute__((target("avx2,fma")))

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

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

T2 static void avx2_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    const int wpr = bl->words_per_row, in_pad = kern_in_pad(bl);
    const size_t out_pad = (size_t)kern_nblk(bl) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < bl->out ? b1 * KERN_ROWBLK : bl->out;
    for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
        const uint64_t *w = bl->bits + (size_t)r * wpr;
        for (int n = 0; n < N; n++) acc[n * out_pad + r] = dot_row(w, wpr, gx + (size_t)n * in_pad) * bl->h[r];
    }
    for (int n = 0; n < N; n++)
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) acc[n * out_pad + r] = 0.0f;
}

#else
static int have_avx2(void) { return 0; }
static void avx2_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc) { kern_ref.rows(bl, gx, N, b0, b1, acc); }
#endif

const BitKernel kern_avx2 = {"avx2", "AVX2+FMA sign flips (vpsllvd + XOR) on the canonical layout", have_avx2, 0, avx2_rows};
