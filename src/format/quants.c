/* quants.c -- ggml's Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K blocks: scalar
 * dequantization and round-to-nearest quantization (see quants.h). Every
 * multi-byte field is little-endian, as GGUF stores it. The weights, once
 * the scales (and Q5_0's high bits) are read here, are expanded by the fastest
 * KernDec variant (kernels.h; exact, the same bits as its reference). */
#include "format/quants.h"

#include <math.h>
#include <string.h>

#include "base/common.h"
#include "kernels/kernels.h"

static float get_h(const uint8_t *p) { return ob_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8)); }

/* store f as fp16 and return what was stored */
static float put_h(uint8_t *p, float f)
{
    uint16_t h = ob_fp32_to_fp16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
    return ob_fp16_to_fp32(h);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static int near(float x) { return (int)lrintf(x); }
static float inv(float a) { return a != 0 ? 1.0f / a : 0.0f; }

/* the weight of largest magnitude among n, with its sign */
static float signed_absmax(const float *x, int n)
{
    float m = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(m)) m = x[i];
    return m;
}

/* ---- Q8_0: fp16 d, 32 int8 q; w = d * q -------------------------------- */

static void dq_q8_0(const KernDec *k, const uint8_t *b, float *y)
{
    float d = get_h(b);
    for (int i = 0; i < 32; i++) y[i] = d * (float)(int8_t)b[2 + i];
}

static void qz_q8_0(const float *x, uint8_t *b)
{
    float id = inv(put_h(b, fabsf(signed_absmax(x, 32)) / 127.0f));
    for (int i = 0; i < 32; i++) b[2 + i] = (uint8_t)(int8_t)clampi(near(x[i] * id), -127, 127);
}

/* ---- Q4_0 and Q5_0 --------------------------------------------------------
 * Q4_0: fp16 d, 16 bytes qs. Q5_0: fp16 d, 4 bytes qh (a little-endian u32),
 * 16 bytes qs. Weight i < 16 has its low 4 bits in the low nibble of qs[i],
 * weight 16 + i in the high nibble; Q5_0's fifth bit of weight i is bit i
 * of qh. w = d * (q - 8) for Q4_0, d * (q - 16) for Q5_0. */

static void dq_sym(const KernDec *k, const uint8_t *b, float *y, int bits)
{
    uint32_t qh = bits == 5 ? (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24 : 0;
    k->dq_sym(b + (bits == 5 ? 6 : 2), qh, 1 << (bits - 1), get_h(b), y);
}

/* d = -(the weight of largest magnitude) / mid, so that weight is level 0;
 * q = round(x / d) + mid, clamped to the 2^bits levels */
static void qz_sym(const float *x, uint8_t *b, int bits)
{
    int mid = 1 << (bits - 1);
    float id = inv(put_h(b, signed_absmax(x, 32) / (float)-mid));
    uint8_t *qs = b + (bits == 5 ? 6 : 2);
    uint32_t qh = 0;
    memset(qs, 0, 16);
    for (int i = 0; i < 32; i++) {
        int q = clampi(near(x[i] * id) + mid, 0, 2 * mid - 1);
        qs[i % 16] |= (uint8_t)((q & 15) << (4 * (i / 16)));
        qh |= (uint32_t)(q >> 4) << i;
    }
    if (bits == 5)
        for (int k = 0; k < 4; k++) b[2 + k] = (uint8_t)(qh >> (8 * k));
}

static void dq_q4_0(const KernDec *k, const uint8_t *b, float *y) { dq_sym(k, b, y, 4); }
static void dq_q5_0(const KernDec *k, const uint8_t *b, float *y) { dq_sym(k, b, y, 5); }
static void qz_q4_0(const float *x, uint8_t *b) { qz_sym(x, b, 4); }
static void qz_q5_0(const float *x, uint8_t *b) { qz_sym(x, b, 5); }

/* ---- Q4_K and Q5_K ----------------------------------------------------------
 * Q4_K: fp16 d, fp16 dmin, 12 bytes of scales, 128 bytes qs. Q5_K: the same
 * with 32 bytes qh between the scales and qs. Eight sub-blocks of 32; sub-
 * block j has a 6-bit scale sc_j and min mn_j: for j < 4 the low 6 bits of
 * byte j and byte j + 4; for j >= 4 the low and the high nibble of byte
 * j + 4, with the top two bits of byte j - 4 and byte j as their bits 4-5.
 * Weight l of sub-block j has its low 4 bits in qs[32 * (j / 2) + l] (low
 * nibble for even j, high for odd), Q5_K's fifth bit in bit j of qh[l].
 * w = d * sc_j * q - dmin * mn_j. */

static void k_scale_min(const uint8_t *s, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

static void k_pack(uint8_t *s, const int *sc, const int *mn)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

/* the eight sub-blocks' a = d * sc and m = dmin * mn */
static void k_scales(const uint8_t *b, float *a, float *m)
{
    float d = get_h(b), dmin = get_h(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k_scale_min(b + 4, j, &sc, &mn);
        a[j] = d * (float)sc;
        m[j] = dmin * (float)mn;
    }
}

static void dq_q4_k(const KernDec *k, const uint8_t *b, float *y)
{
    float a[8], m[8];
    k_scales(b, a, m);
    k->dq_q4_k(b + 16, a, m, y);
}

static void dq_q5_k(const KernDec *k, const uint8_t *b, float *y)
{
    float a[8], m[8];
    k_scales(b, a, m);
    k->dq_q5_k(b + 48, b + 16, a, m, y);
}

/* per sub-block: the offset -min(0, min x) and the scale (max x + offset) /
 * qmax; the eight of each as 6-bit multiples of d = max scale / 63 and
 * dmin = max offset / 63; q = round((x + dmin * mn) / (d * sc)) clamped to
 * [0, qmax] with the scales as stored */
static void qz_k45(const float *x, uint8_t *b, uint8_t *qh, uint8_t *qs, int qmax)
{
    float scale[8], off[8], smax = 0, omax = 0;
    for (int j = 0; j < 8; j++) {
        float lo = 0, hi = x[32 * j];
        for (int l = 0; l < 32; l++) {
            lo = fminf(lo, x[32 * j + l]);
            hi = fmaxf(hi, x[32 * j + l]);
        }
        off[j] = -lo;
        scale[j] = (hi - lo) / (float)qmax;
        smax = fmaxf(smax, scale[j]);
        omax = fmaxf(omax, off[j]);
    }
    float d = put_h(b, smax / 63.0f), dmin = put_h(b + 2, omax / 63.0f);
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = clampi(near(scale[j] * inv(d)), 0, 63);
        mn[j] = clampi(near(off[j] * inv(dmin)), 0, 63);
    }
    k_pack(b + 4, sc, mn);
    memset(qs, 0, 128);
    if (qh) memset(qh, 0, 32);
    for (int j = 0; j < 8; j++) {
        float ia = inv(d * (float)sc[j]), m = dmin * (float)mn[j];
        for (int l = 0; l < 32; l++) {
            int q = clampi(near((x[32 * j + l] + m) * ia), 0, qmax);
            qs[32 * (j / 2) + l] |= (uint8_t)((q & 15) << (4 * (j & 1)));
            if (qh) qh[l] |= (uint8_t)((q >> 4) << j);
        }
    }
}

static void qz_q4_k(const float *x, uint8_t *b) { qz_k45(x, b, NULL, b + 16, 15); }
static void qz_q5_k(const float *x, uint8_t *b) { qz_k45(x, b, b + 16, b + 48, 31); }

/* ---- Q6_K -------------------------------------------------------------------
 * 128 bytes ql, 64 bytes qh, 16 int8 scales, fp16 d. Weight i = 128 h +
 * 32 g + l (h < 2, g < 4, l < 32) has its low 4 bits in ql[64 h + 32 (g & 1)
 * + l] (low nibble for g < 2, high for g >= 2) and bits 4-5 in bits 2g and
 * 2g + 1 of qh[32 h + l]; w = d * scales[i / 16] * (q - 32). */

/* where weight i's bits are: byte offsets in the block and shifts */
static void q6_pos(int i, int *lo, int *lo_shift, int *hi, int *hi_shift)
{
    int h = i / 128, g = (i / 32) % 4, l = i % 32;
    *lo = 64 * h + 32 * (g & 1) + l;
    *lo_shift = 4 * (g >> 1);
    *hi = 128 + 32 * h + l;
    *hi_shift = 2 * g;
}

static void dq_q6_k(const KernDec *k, const uint8_t *b, float *y)
{
    float d = get_h(b + 208), a[16];
    for (int j = 0; j < 16; j++) a[j] = d * (float)(int8_t)b[192 + j];
    k->dq_q6_k(b, b + 128, a, y);
}

/* per sub-block of 16: the scale -(the weight of largest magnitude) / 32;
 * the sixteen as int8 multiples of d = largest |scale| / 127; q = round(x /
 * (d * scale)) clamped to [-32, 31], stored + 32 */
static void qz_q6_k(const float *x, uint8_t *b)
{
    float s[16], smax = 0;
    for (int j = 0; j < 16; j++) {
        s[j] = signed_absmax(x + 16 * j, 16) / -32.0f;
        smax = fmaxf(smax, fabsf(s[j]));
    }
    memset(b, 0, 208);
    float d = put_h(b + 208, smax / 127.0f);
    for (int j = 0; j < 16; j++) {
        int sc = clampi(near(s[j] * inv(d)), -128, 127);
        b[192 + j] = (uint8_t)(int8_t)sc;
        float ia = inv(d * (float)sc);
        for (int i = 16 * j; i < 16 * j + 16; i++) {
            int q = clampi(near(x[i] * ia), -32, 31) + 32, lo, ls, hi, hs;
            q6_pos(i, &lo, &ls, &hi, &hs);
            b[lo] |= (uint8_t)((q & 15) << ls);
            b[hi] |= (uint8_t)((q >> 4) << hs);
        }
    }
}

/* ---- the table ------------------------------------------------------------- */

typedef struct {
    int elems, bytes;
    void (*dq)(const KernDec *k, const uint8_t *b, float *y);
    void (*qz)(const float *x, uint8_t *b);
} QType;

static const QType qtypes[QUANT_NTYPES] = { /* in QUANT_* order */
    {32, 34, dq_q8_0, qz_q8_0},
    {32, 18, dq_q4_0, qz_q4_0},
    {32, 22, dq_q5_0, qz_q5_0},
    {256, 144, dq_q4_k, qz_q4_k},
    {256, 176, dq_q5_k, qz_q5_k},
    {256, 210, dq_q6_k, qz_q6_k},
};

static const QType *qtype(int q) { return q >= 0 && q < QUANT_NTYPES ? &qtypes[q] : NULL; }

int quant_block_elems(int q) { const QType *t = qtype(q); return t ? t->elems : 0; }
int quant_block_bytes(int q) { const QType *t = qtype(q); return t ? t->bytes : 0; }

void quant_dequant(int qt, const uint8_t *src, float *dst, size_t nb)
{
    const QType *q = qtype(qt);
    if (!q) return;
    const KernDec *k = kern_dec_default();
    for (size_t b = 0; b < nb; b++) q->dq(k, src + b * (size_t)q->bytes, dst + b * (size_t)q->elems);
}

void quant_quantize(int qt, const float *src, uint8_t *dst, size_t nb)
{
    const QType *q = qtype(qt);
    if (!q) return;
    for (size_t b = 0; b < nb; b++) q->qz(src + b * (size_t)q->elems, dst + b * (size_t)q->bytes);
}
