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
