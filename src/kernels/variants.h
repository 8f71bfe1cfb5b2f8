/* src/kernels/variants.h -- private to src/kernels: the functions of each
 * variant file (ref.c, x86/avx2.c, x86/avx512.c, x86/amx.c) that the table in table.c
 * lists. Non-x86 builds compile no x86/ file and get their names mapped to
 * the generic functions by arch-fallback.h. Pure functions: any thread. */
#ifndef OB_KERNELS_VARIANTS_H
#define OB_KERNELS_VARIANTS_H

#include "config.h"
#include "kernels/kernels.h"

/* ref.c: the scalar reference (the generic functions) */
void kern_rows_ref(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc);
void kern_rows_q8_ref(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                      float *acc, int16_t *acc16);

/* the decode helpers (kernels.h KernDec), one set per variant file */
#define KERN_DEC_DECLARE(sfx)                                                                                  \
    void kern_dec_score_f32_##sfx(const float *q, const float *K, size_t ld, int hd, int n, float scale, float *s); \
    void kern_dec_score_f16_##sfx(const float *q, const uint16_t *K, size_t ld, int hd, int n, float scale,        \
                                  float *s);                                                                   \
    void kern_dec_accum_f32_##sfx(const float *a, const float *V, size_t ld, int hd, int n, float *out);         \
    void kern_dec_accum_f16_##sfx(const float *a, const uint16_t *V, size_t ld, int hd, int n, float *out);      \
    void kern_dec_to_f16_##sfx(const float *x, uint16_t *y, size_t n);                                         \
    void kern_dec_from_f16_##sfx(const uint16_t *x, float *y, size_t n);                                       \
    void kern_dec_gemv_f16_##sfx(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1);         \
    void kern_dec_from_bf16_##sfx(const uint16_t *x, float *y, size_t n);                                      \
    void kern_dec_gemv_bf16_##sfx(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1);        \
    void kern_dec_gemv_q8_0_##sfx(const KernQ8_0 *W, const float *x, float *y, int cols, int r0, int r1);        \
    void kern_dec_attn_f16_##sfx(const float *Qt, int nq, const uint16_t *K, const uint16_t *V, size_t ld, int hd,  \
                                 int n, int diag, float scale, float *m, float *l, float *O, size_t ldo, float *ws); \
    void kern_dec_step_f16_##sfx(const float *q, const uint16_t *K, const uint16_t *V, size_t ld, int nh, int group,  \
                                 int hd, int n, float scale, float *m, float *l, float *o, float *sc);
/* the Q4_0/Q5_0 and K-quant block expansions: ref.c and x86/avx2.c (the avx512 entry
 * takes avx2's) */
#define KERN_DQ_DECLARE(sfx)                                                                                   \
    void kern_dec_dq_q4_k_##sfx(const uint8_t *qs, const float *a, const float *m, float *y);                   \
    void kern_dec_dq_sym_##sfx(const uint8_t *qs, uint32_t qh, int mid, float d, float *y);                    \
    void kern_dec_dq_q5_k_##sfx(const uint8_t *qs, const uint8_t *qh, const float *a, const float *m, float *y); \
    void kern_dec_dq_q6_k_##sfx(const uint8_t *ql, const uint8_t *qh, const float *a, float *y);
KERN_DEC_DECLARE(ref)
KERN_DQ_DECLARE(ref)

/* Cephes' expf polynomial, shared by the x86 variants' vector exps: with
 * x = n ln2 + r (n rounded, ln2 in two parts, Cody-Waite), p = e^r by its
 * degree-7 polynomial on |r| <= ln2 / 2; the width's intrinsics as
 * FNMADD, FMADD, MUL, ADD and SET1 (x, n given; r, p assigned) */
#define KERN_EXPF_POLY(x, n, r, p, FNMADD, FMADD, MUL, ADD, SET1)        \
    do {                                                                 \
        r = FNMADD(n, SET1(0.693359375f), x);                            \
        r = FNMADD(n, SET1(-2.12194440e-4f), r);                         \
        p = SET1(1.9875691500e-4f);                                      \
        p = FMADD(p, r, SET1(1.3981999507e-3f));                         \
        p = FMADD(p, r, SET1(8.3334519073e-3f));                         \
        p = FMADD(p, r, SET1(4.1665795894e-2f));                         \
        p = FMADD(p, r, SET1(1.6666665459e-1f));                         \
        p = FMADD(p, r, SET1(5.0000001201e-1f));                         \
        p = FMADD(p, MUL(r, r), ADD(r, SET1(1.0f)));                     \
    } while (0)

/* step_f16's x86 variants (KERN_STEP_F16_BODY): the parts of cached row r
 * for heads h..h+3 (heads of hd, group query heads to a cached one) */
static inline void kern_step_parts(const uint16_t *r, int h, int group, int hd, const uint16_t *p[4])
{
    for (int i = 0; i < 4; i++) p[i] = r + (size_t)((h + i) / group) * hd;
}
/* how far ahead the x86 GEMV rows (FP16, BF16, Q8_0, FP32) prefetch their
 * stream into L2 (measurements at x86/avx512.c's GEMV1_512) */
#define KERN_GEMV_PF 8192
/* the cache lines of [from, to) prefetched into L2 (prefetcht1) */
static inline void kern_prefetch_l2(const void *from, const void *to)
{
    for (const char *c = (const char *)from; c < (const char *)to; c += 64) __builtin_prefetch(c, 0, 2);
}

/* the body of a step_f16 variant (kernels.h), with the function's
 * parameters in scope, over the variant's vector helpers: the cached rows
 * one after another, each row's scores of 4 heads at a time through
 * SCORE4(kp, q4, hd, scale, s, n) (kp the heads' parts of the row, q4 their
 * queries; head i's score into s[i * n]) and of the rest through the
 * variant's score_f16 over one row, SCORE1(q, k, ld, hd, 1, scale, s), the
 * same part of the next row prefetched into L2 (one
 * stream through the cache); then SOFTMAX(p, n, &m, &l, &a) for each head
 * (its n scores into weights, its maximum, sum and rescale a); then each
 * value row into every head's output through AXPY(v, o, hd, w, a), o = o a
 * + w v (a = 1 after a head's first row), the next row's part prefetched
 * once every 4 heads */
#define KERN_STEP_F16_BODY(SCORE4, SCORE1, SOFTMAX, AXPY)                                                          \
    do {                                                                                                        \
        float *al_ = sc + (size_t)nh * n;                                                                       \
        for (int t = 0; t < n; t++) {                                                                           \
            const uint16_t *k = K + (size_t)t * ld;                                                             \
            int h = 0;                                                                                          \
            for (; h + 4 <= nh; h += 4) {                                                                       \
                const uint16_t *kp[4];                                                                          \
                kern_step_parts(k, h, group, hd, kp);                                                           \
                kern_prefetch_l2(kp[0] + ld, kp[3] + ld + hd);                                                  \
                SCORE4(kp, q + (size_t)h * hd, hd, scale, sc + (size_t)h * n + t, n);                           \
            }                                                                                                   \
            for (; h < nh; h++) {                                                                               \
                const uint16_t *k0 = k + (size_t)(h / group) * hd;                                             \
                kern_prefetch_l2(k0 + ld, k0 + ld + hd);                                                        \
                SCORE1(q + (size_t)h * hd, k0, ld, hd, 1, scale, sc + (size_t)h * n + t);                       \
            }                                                                                                   \
        }                                                                                                       \
        for (int h = 0; h < nh; h++) SOFTMAX(sc + (size_t)h * n, n, &m[h], &l[h], &al_[h]);                     \
        for (int t = 0; t < n; t++) {                                                                           \
            const uint16_t *v = V + (size_t)t * ld;                                                             \
            for (int h = 0; h < nh; h++) {                                                                      \
                const uint16_t *vh = v + (size_t)(h / group) * hd;                                             \
                if (h % 4 == 0) kern_prefetch_l2(vh + ld, v + ld + (size_t)((h + 4 < nh ? h + 3 : nh - 1) / group) * hd + hd); \
                AXPY(vh, o + (size_t)h * hd, hd, sc[(size_t)h * n + t], t == 0 ? al_[h] : 1.0f);                \
            }                                                                                                   \
        }                                                                                                       \
    } while (0)

#if defined(OB_X86)
KERN_DEC_DECLARE(avx2)
KERN_DEC_DECLARE(avx512)
KERN_DQ_DECLARE(avx2)
/* x86/avx2.c */
void kern_rows_avx2(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc);
void kern_rows_q8_avx2(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                       float *acc, int16_t *acc16);
void kern_rows_avx2flip(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc);
void kern_gemv_rows_avx2(const float *W, const float *x, float *y, int cols, int r0, int r1);
/* x86/avx512.c */
void kern_rows_avx512(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc);
void kern_rows_q8_avx512(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                         float *acc, int16_t *acc16);
size_t kern_prep_q8_bytes_avx512(const KernMat *m, int N);
void kern_prep_q8_avx512(const KernMat *m, const int16_t *q, int N, int n0, int n1, void *prep);
size_t kern_prep_q8_bytes_vnni(const KernMat *m, int N);
void kern_prep_q8_vnni(const KernMat *m, const int16_t *q, int N, int n0, int n1, void *prep);
void kern_rows_q8_vnni(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                       float *acc, int16_t *acc16);
void kern_rows_avx512mask(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc);
void kern_gemv_rows_avx512(const float *W, const float *x, float *y, int cols, int r0, int r1);
void kern_mul_avx512(const float *x, const float *g, float *y, int n);
void kern_quantize_avx512(const float *gx, int in_pad, int16_t *q, float *scale);
void kern_layernorm_avx512(const float *x, float *y, int n);
void kern_silu_mul_avx512(float *h, const float *u, size_t n);
void kern_rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps);
void kern_dec_gemv_bf16_avx512bf16(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1);
/* x86/amx.c: "avx512amx" (int8, N > 1 by AMX-INT8 tiles; N = 1 avx512's).
 * kern_rows_q8_amx executes tile instructions: only where kern_amx_usable()
 * (the probe's CPU_AMX_INT8 and the self-test) */
typedef void (*KernRowsQ8)(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                           float *acc, int16_t *acc16);
size_t kern_prep_q8_bytes_amx(const KernMat *m, int N);
void kern_prep_q8_amx(const KernMat *m, const int16_t *q, int N, int n0, int n1, void *prep);
void kern_rows_q8_amx(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                      float *acc, int16_t *acc16);
/* the same code with the tile instructions emulated in C (tests; AVX-512) */
void kern_rows_q8_amx_emul(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                           float *acc, int16_t *acc16);
/* 1 if rows_q8 (with kern_prep_q8_amx) gives the reference's bits on the
 * guard's fixed product (odd shapes), else 0 (also when out of memory) */
int kern_amx_check(KernRowsQ8 rows_q8);
/* the guard: CPU_AMX_INT8 and kern_amx_check(kern_rows_q8_amx), run once */
int kern_amx_usable(void);
#else
#include "kernels/arch-fallback.h"
#endif

#endif
