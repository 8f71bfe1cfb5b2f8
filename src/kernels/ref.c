/* src/kernels/ref.c -- the scalar reference of the 1-bit kernel (FP32 and
 * int8 activations) and the generic helpers (quantize, multiply, LayerNorm,
 * dense rows) and of the decode helpers (attention over FP32/FP16 caches,
 * FP16 conversion, FP16/Q8_0 GEMV rows): what every SIMD variant is tested
 * against (tests/test_bitlinear, tests/test_decode) and what non-x86 builds
 * run. Pure functions of
 * their arguments: any thread may call any of them at any time. */
#include "kernels/variants.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "base/common.h"

/* the same sum, in the same order, as bitlinear_forward_ref */
void kern_rows_ref(const KernMat *m, const float *gx, int N, int b0, int b1, float *acc)
{
    const int in = m->in, in_pad = kern_in_pad(m);
    const size_t out_pad = (size_t)kern_nblk(m) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < m->out ? b1 * KERN_ROWBLK : m->out;
    for (int n = 0; n < N; n++) {
        const float *x = gx + (size_t)n * in_pad;
        float *a = acc + n * out_pad;
        for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
            float s = 0.0f;
            for (int c = 0; c < in; c++) s += kern_sign(m, r, c) > 0 ? x[c] : -x[c];
            a[r] = s * m->h[r];
        }
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) a[r] = 0.0f;
    }
}

/* int8 activations (kernels.h): the integer sum of each block, then one
 * multiply or fused multiply-add per block */
void kern_rows_q8_ref(const KernMat *m, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                      float *acc, int16_t *acc16)
{
    (void)prep;
    (void)acc16;
    const int in_pad = kern_in_pad(m), nq = kern_nqblk(m);
    const size_t out_pad = (size_t)kern_nblk(m) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < m->out ? b1 * KERN_ROWBLK : m->out;
    for (int n = 0; n < N; n++) {
        const int16_t *qn = q + (size_t)n * in_pad;
        const float *sn = scale + (size_t)n * nq;
        float *a = acc + n * out_pad;
        for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
            float s = 0.0f;
            for (int j = 0; j < nq; j++) {
                int32_t isum = 0; /* columns past `in` have q = 0 */
                int c1 = (j + 1) * KERN_QBLOCK < m->in ? (j + 1) * KERN_QBLOCK : m->in;
                for (int c = j * KERN_QBLOCK; c < c1; c++) isum += kern_sign(m, r, c) > 0 ? qn[c] : -qn[c];
                s = j ? fmaf(sn[j], (float)isum, s) : sn[j] * (float)isum;
            }
            a[r] = s * m->h[r];
        }
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) a[r] = 0.0f;
    }
}

void kern_quantize_ref(const float *gx, int in_pad, int16_t *q, float *scale)
{
    for (int j = 0; j * KERN_QBLOCK < in_pad; j++) {
        int c0 = j * KERN_QBLOCK, c1 = c0 + KERN_QBLOCK < in_pad ? c0 + KERN_QBLOCK : in_pad;
        float m = 0.0f;
        int bad = 0;
        for (int c = c0; c < c1; c++) {
            float a = fabsf(gx[c]);
            if (!(a <= FLT_MAX)) bad = 1;
            else if (a > m) m = a;
        }
        if (bad || m == 0.0f) {
            scale[j] = bad ? NAN : 0.0f;
            for (int c = c0; c < c1; c++) q[c] = 0;
            continue;
        }
        float inv = 127.0f / m;
        scale[j] = m / 127.0f;
        for (int c = c0; c < c1; c++) {
            long v = lrintf(gx[c] * inv);
            q[c] = (int16_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

void kern_mul_ref(const float *x, const float *g, float *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = x[i] * g[i];
}

/* the model's SwiGLU expression (a teacher's: model.c calls this for a model
 * without a KernExec) */
void kern_silu_mul_ref(float *h, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = h[i];
        v *= 1.0f / (1.0f + expf(-v));
        h[i] = v * u[i];
    }
}

/* the model's RMSNorm expression (model_rmsnorm, a teacher's) */
void kern_rmsnorm_ref(float *out, const float *x, const float *w, int n, float eps)
{
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += x[j] * x[j];
    ss /= n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < n; j++) out[j] = w[j] * (ss * x[j]);
}

float kern_layernorm_inplace(float *y, int n, double eps)
{
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += y[i];
    mean /= n;
    for (int i = 0; i < n; i++) { double d = y[i] - mean; var += d * d; }
    var /= n;
    float inv = (float)(1.0 / sqrt(var + eps)), mf = (float)mean;
    for (int i = 0; i < n; i++) y[i] = (y[i] - mf) * inv;
    return inv;
}

void kern_layernorm_ref(const float *x, float *y, int n)
{
    if (x != y) memcpy(y, x, (size_t)n * sizeof(float));
    kern_layernorm_inplace(y, n, KERN_LN_EPS);
}

void kern_gemv_rows_ref(const float *W, const float *x, float *y, int cols, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        const float *w = W + (size_t)r * cols;
        float s = 0.0f;
        for (int c = 0; c < cols; c++) s += w[c] * x[c];
        y[r] = s;
    }
}

/* ---- the decode helpers' reference (kernels.h KernDec) -------------------- */

void kern_dec_score_f32_ref(const float *q, const float *K, size_t ld, int hd, int n, float scale, float *s)
{
    for (int t = 0; t < n; t++) {
        const float *k = K + (size_t)t * ld;
        float d = 0.0f;
        for (int i = 0; i < hd; i++) d += q[i] * k[i];
        s[t] = d * scale;
    }
}

void kern_dec_score_f16_ref(const float *q, const uint16_t *K, size_t ld, int hd, int n, float scale, float *s)
{
    for (int t = 0; t < n; t++) {
        const uint16_t *k = K + (size_t)t * ld;
        float d = 0.0f;
        for (int i = 0; i < hd; i++) d += q[i] * ob_fp16_to_fp32(k[i]);
        s[t] = d * scale;
    }
}

void kern_dec_accum_f32_ref(const float *a, const float *V, size_t ld, int hd, int n, float *out)
{
    for (int t = 0; t < n; t++) {
        const float *v = V + (size_t)t * ld;
        for (int i = 0; i < hd; i++) out[i] += a[t] * v[i];
    }
}

void kern_dec_accum_f16_ref(const float *a, const uint16_t *V, size_t ld, int hd, int n, float *out)
{
    for (int t = 0; t < n; t++) {
        const uint16_t *v = V + (size_t)t * ld;
        for (int i = 0; i < hd; i++) out[i] += a[t] * ob_fp16_to_fp32(v[i]);
    }
}

/* one decode step's attention over n cached positions (kernels.h
 * step_f16), as the variants order it: every row's scores, then per head
 * the new maximum, the rescale and the weights, then the rows' values, the
 * first row's with the rescale */
void kern_dec_step_f16_ref(const float *q, const uint16_t *K, const uint16_t *V, size_t ld, int nh, int group, int hd, int n,
                           float scale, float *m, float *l, float *o, float *sc)
{
    float *al = sc + (size_t)nh * n;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nh; h++) {
            const uint16_t *k = K + (size_t)t * ld + (size_t)(h / group) * hd;
            const float *qh = q + (size_t)h * hd;
            float d = 0.0f;
            for (int i = 0; i < hd; i++) d += qh[i] * ob_fp16_to_fp32(k[i]);
            sc[(size_t)h * n + t] = d * scale;
        }
    for (int h = 0; h < nh; h++) {
        float *p = sc + (size_t)h * n, M = m[h], sum = 0.0f;
        for (int t = 0; t < n; t++) M = p[t] > M ? p[t] : M;
        for (int t = 0; t < n; t++) { p[t] = expf(p[t] - M); sum += p[t]; }
        al[h] = expf(m[h] - M);
        l[h] = l[h] * al[h] + sum;
        m[h] = M;
    }
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nh; h++) {
            const uint16_t *v = V + (size_t)t * ld + (size_t)(h / group) * hd;
            float *oh = o + (size_t)h * hd, w = sc[(size_t)h * n + t], a = t == 0 ? al[h] : 1.0f;
            for (int i = 0; i < hd; i++) oh[i] = oh[i] * a + w * ob_fp16_to_fp32(v[i]);
        }
}

/* one key block of the blocked causal attention (kernels.h attn_f16), lane
 * by lane: the scores of the keys each query sees (the rest -inf) into ws,
 * the new maxima, the rescale a = exp(m - M) (0 from m = -inf), the sums,
 * then each output row rescaled and the block's values added key by key */
void kern_dec_attn_f16_ref(const float *Qt, int nq, const uint16_t *K, const uint16_t *V, size_t ld, int hd, int n, int diag,
                           float scale, float *m, float *l, float *O, size_t ldo, float *ws)
{
    enum { QB = KERN_ATTN_QB };
    float *P = ws, M[QB];
    for (int i = 0; i < QB; i++) M[i] = m[i];
    for (int t = 0; t < n; t++) {
        const uint16_t *k = K + (size_t)t * ld;
        for (int i = 0; i < QB; i++) {
            if (t > diag + i) { P[t * QB + i] = -INFINITY; continue; }
            float d = 0.0f;
            for (int j = 0; j < hd; j++) d += Qt[j * QB + i] * ob_fp16_to_fp32(k[j]);
            P[t * QB + i] = d * scale;
            if (P[t * QB + i] > M[i]) M[i] = P[t * QB + i];
        }
    }
    for (int i = 0; i < QB; i++) {
        float a = expf(m[i] - M[i]);
        l[i] *= a;
        for (int t = 0; t < n; t++) {
            float p = t > diag + i ? 0.0f : expf(P[t * QB + i] - M[i]);
            P[t * QB + i] = p;
            l[i] += p;
        }
        if (i < nq)
            for (int j = 0; j < hd; j++) O[(size_t)i * ldo + j] *= a;
        m[i] = M[i];
    }
    for (int i = 0; i < nq; i++)
        for (int t = 0; t < n; t++) {
            const uint16_t *v = V + (size_t)t * ld;
            for (int j = 0; j < hd; j++) O[(size_t)i * ldo + j] += P[t * QB + i] * ob_fp16_to_fp32(v[j]);
        }
}

void kern_dec_to_f16_ref(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = ob_fp32_to_fp16(x[i]);
}

void kern_dec_from_f16_ref(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = ob_fp16_to_fp32(x[i]);
}

void kern_dec_from_bf16_ref(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = ob_bf16_to_fp32(x[i]);
}

/* GEMV rows over 16-bit weights widened by CONV (FP16, BF16) */
#define REF_GEMV16(sfx, CONV)                                                                             \
    void kern_dec_gemv_##sfx##_ref(const uint16_t *W, const float *x, float *y, int cols, int r0, int r1) \
    {                                                                                                     \
        for (int r = r0; r < r1; r++) {                                                                   \
            const uint16_t *w = W + (size_t)r * cols;                                                     \
            float s = 0.0f;                                                                               \
            for (int c = 0; c < cols; c++) s += CONV(w[c]) * x[c];                                        \
            y[r] = s;                                                                                     \
        }                                                                                                 \
    }
REF_GEMV16(f16, ob_fp16_to_fp32)
REF_GEMV16(bf16, ob_bf16_to_fp32)

/* Q4_K (qh NULL) and Q5_K */
static void dq_k45_ref(const uint8_t *qs, const uint8_t *qh, const float *a, const float *m, float *y)
{
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) {
            int q = ((qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 15) | (qh ? ((qh[l] >> j) & 1) << 4 : 0);
            y[32 * j + l] = a[j] * (float)q - m[j];
        }
}

void kern_dec_dq_sym_ref(const uint8_t *qs, uint32_t qh, int mid, float d, float *y)
{
    for (int i = 0; i < 32; i++) {
        int q = ((qs[i % 16] >> (4 * (i / 16))) & 15) | (int)((qh >> i) & 1) << 4;
        y[i] = d * (float)(q - mid);
    }
}

void kern_dec_dq_q4_k_ref(const uint8_t *qs, const float *a, const float *m, float *y) { dq_k45_ref(qs, NULL, a, m, y); }

void kern_dec_dq_q5_k_ref(const uint8_t *qs, const uint8_t *qh, const float *a, const float *m, float *y)
{
    dq_k45_ref(qs, qh, a, m, y);
}

void kern_dec_dq_q6_k_ref(const uint8_t *ql, const uint8_t *qh, const float *a, float *y)
{
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) {
                int q = ((ql[64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15) | ((qh[32 * h + l] >> (2 * g)) & 3) << 4;
                y[128 * h + 32 * g + l] = a[8 * h + 2 * g + l / 16] * (float)(q - 32);
            }
}

void kern_dec_gemv_q8_0_ref(const KernQ8_0 *W, const float *x, float *y, int cols, int r0, int r1)
{
    const int nb = cols / KERN_Q8_0_BLOCK;
    for (int r = r0; r < r1; r++) {
        const KernQ8_0 *b = W + (size_t)r * nb;
        float s = 0.0f;
        for (int j = 0; j < nb; j++) {
            float p = 0.0f;
            for (int i = 0; i < KERN_Q8_0_BLOCK; i++) p += (float)b[j].q[i] * x[j * KERN_Q8_0_BLOCK + i];
            s += ob_fp16_to_fp32(b[j].d) * p;
        }
        y[r] = s;
    }
}

void kern_q8_0_quantize(const float *x, KernQ8_0 *y, size_t n)
{
    for (size_t j = 0; j < n / KERN_Q8_0_BLOCK; j++) {
        const float *v = x + j * KERN_Q8_0_BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < KERN_Q8_0_BLOCK; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[j].d = ob_fp32_to_fp16(d);
        for (int i = 0; i < KERN_Q8_0_BLOCK; i++) y[j].q[i] = (int8_t)roundf(v[i] * id);
    }
}

void kern_q8_0_to_f32(const KernQ8_0 *x, float *y, size_t n)
{
    for (size_t j = 0; j < n / KERN_Q8_0_BLOCK; j++) {
        float d = ob_fp16_to_fp32(x[j].d);
        for (int i = 0; i < KERN_Q8_0_BLOCK; i++) y[j * KERN_Q8_0_BLOCK + i] = d * (float)x[j].q[i];
    }
}
