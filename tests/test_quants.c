/* test_quants.c -- ggml's block types from their layouts: one hand-built
 * block of each of Q4_0, Q5_0, Q4_K, Q5_K, Q6_K (every field set on purpose:
 * the fp16 scales, Q5's high bits, the K types' packed 6-bit scales and
 * mins with their top bits in use, Q6_K's int8 scales of both signs) against
 * values computed here from the description; block sizes and row offsets;
 * the quantizers: exact round trips where the values sit on the levels,
 * finite output for zero blocks, and the round-trip error of normal weights
 * in the order the bit widths imply; every KernDec variant's Q4_K/Q5_K/Q6_K
 * block expansion against the reference's, bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "format/llama.h"
#include "kernels/kernels.h"
#include "test.h"

static void put16(uint8_t *p, uint16_t h) { p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }

/* dequantize n weights of dtype from blk and compare with want */
static void expect_block(int dtype, const uint8_t *blk, const float *want, int n)
{
    float got[256];
    llama_dequant(dtype, blk, got, (size_t)n);
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) { bad++; if (first < 0) first = i; }
    CHECK(bad == 0, "%s: %d of %d weights differ, first %d: %g vs %g", llama_dtype_name(dtype), bad, n, first,
          first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
}

/* Q4_0: d = 0.25 (fp16 0x3400); weight i < 16 in the low nibble of byte 2 + i,
 * weight 16 + i in its high nibble; w = d (q - 8).
 * Q5_0: d = -0.5 (0xb800), qh (bytes 2..5, little-endian) bit i = the fifth
 * bit of weight i, nibbles at byte 6 as Q4_0's; w = d (q - 16). */
static void test_q4_0_q5_0(void)
{
    uint8_t b4[18] = {0}, b5[22] = {0};
    float w4[32], w5[32];
    put16(b4, 0x3400);
    put16(b5, 0xb800);
    for (int i = 0; i < 32; i++) {
        int q4 = (i * 7 + 3) % 16, q5 = (i * 13 + 5) % 32;
        b4[2 + i % 16] |= (uint8_t)(q4 << (i < 16 ? 0 : 4));
        b5[6 + i % 16] |= (uint8_t)((q5 & 15) << (i < 16 ? 0 : 4));
        b5[2 + i / 8] |= (uint8_t)((q5 >> 4) << (i % 8));
        w4[i] = 0.25f * (float)(q4 - 8);
        w5[i] = -0.5f * (float)(q5 - 16);
    }
    expect_block(LLAMA_Q4_0, b4, w4, 32);
    expect_block(LLAMA_Q5_0, b5, w5, 32);
    CHECK(w5[0] == -0.5f * (5 - 16) && b5[2] != 0 && b5[5] != 0, "Q5_0 uses its high bits");
}

/* the K types' scales and mins: sc = {1, 2, 3, 4, 17, 34, 51, 63}, mn = {5, 6,
 * 7, 8, 20, 40, 60, 33}. Bytes 0-3: sc[j] | (sc[j+4] >> 4) << 6; bytes 4-7:
 * mn[j] | (mn[j+4] >> 4) << 6; bytes 8-11: (sc[j+4] & 15) | (mn[j+4] & 15) << 4,
 * worked out by hand: */
static const uint8_t kscales[12] = {0x41, 0x82, 0xc3, 0xc4, 0x45, 0x86, 0xc7, 0x88, 0x41, 0x82, 0xc3, 0x1f};
static const int ksc[8] = {1, 2, 3, 4, 17, 34, 51, 63}, kmn[8] = {5, 6, 7, 8, 20, 40, 60, 33};

/* Q4_K: fp16 d = 0.5 (0x3800), dmin = 0.25 (0x3400), the scales, 128 bytes:
 * weight l of sub-block j in qs[32 (j / 2) + l], low nibble for even j.
 * Q5_K: the same and 32 bytes qh before qs: bit j of qh[l] = the fifth bit.
 * w = d sc_j q - dmin mn_j */
static void test_k45(void)
{
    uint8_t b4[144] = {0}, b5[176] = {0};
    float w4[256], w5[256];
    put16(b4, 0x3800); put16(b4 + 2, 0x3400);
    put16(b5, 0x3800); put16(b5 + 2, 0x3400);
    memcpy(b4 + 4, kscales, 12);
    memcpy(b5 + 4, kscales, 12);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) {
            int q4 = (j * 5 + l * 3) % 16, q5 = (j * 7 + l * 5) % 32;
            b4[16 + 32 * (j / 2) + l] |= (uint8_t)(q4 << (j % 2 ? 4 : 0));
            b5[48 + 32 * (j / 2) + l] |= (uint8_t)((q5 & 15) << (j % 2 ? 4 : 0));
            b5[16 + l] |= (uint8_t)((q5 >> 4) << j);
            w4[32 * j + l] = 0.5f * (float)ksc[j] * (float)q4 - 0.25f * (float)kmn[j];
            w5[32 * j + l] = 0.5f * (float)ksc[j] * (float)q5 - 0.25f * (float)kmn[j];
        }
    expect_block(LLAMA_Q4_K, b4, w4, 256);
    expect_block(LLAMA_Q5_K, b5, w5, 256);
    /* two blocks in a row: the second one starts at byte 144 */
    uint8_t two[288];
    memcpy(two, b4, 144);
    memcpy(two + 144, b4, 144);
    put16(two + 144, 0xb800); /* d = -0.5 */
    float w2[512];
    for (int i = 0; i < 256; i++) {
        w2[i] = w4[i];
        int j = i / 32, q = (j * 5 + (i % 32) * 3) % 16;
        w2[256 + i] = -0.5f * (float)ksc[j] * (float)q - 0.25f * (float)kmn[j];
    }
    float got[512];
    llama_dequant(LLAMA_Q4_K, two, got, 512);
    CHECK(!memcmp(got, w2, sizeof got), "Q4_K: two blocks");
}

/* Q6_K: 128 bytes ql, 64 bytes qh, 16 int8 scales, fp16 d = 0.125 (0x3000)
 * last. Weight i = 128 h + 32 g + l: low 4 bits in ql[64 h + 32 (g % 2) + l]
 * (low nibble for g < 2), bits 4-5 in bits 2g, 2g+1 of qh[32 h + l];
 * w = d scale[i / 16] (q - 32) */
static void test_q6_k(void)
{
    static const int8_t sc[16] = {-128, -1, 0, 1, 127, 5, -7, 9, 11, -13, 15, -17, 19, -21, 23, 64};
    uint8_t b[210] = {0};
    float w[256];
    memcpy(b + 192, sc, 16);
    put16(b + 208, 0x3000);
    for (int i = 0; i < 256; i++) {
        int q = (i * 11 + 7) % 64, h = i / 128, g = (i % 128) / 32, l = i % 32;
        b[64 * h + 32 * (g % 2) + l] |= (uint8_t)((q & 15) << (g < 2 ? 0 : 4));
        b[128 + 32 * h + l] |= (uint8_t)((q >> 4) << (2 * g));
        w[i] = 0.125f * (float)sc[i / 16] * (float)(q - 32);
    }
    expect_block(LLAMA_Q6_K, b, w, 256);
}

static void test_sizes(void)
{
    static const struct { int dtype, block; size_t bytes; } t[] = {
        {LLAMA_F32, 1, 4}, {LLAMA_F16, 1, 2}, {LLAMA_BF16, 1, 2}, {LLAMA_Q8_0, 32, 34}, {LLAMA_Q4_0, 32, 18},
        {LLAMA_Q5_0, 32, 22}, {LLAMA_Q4_K, 256, 144}, {LLAMA_Q5_K, 256, 176}, {LLAMA_Q6_K, 256, 210},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int d = t[i].dtype;
        CHECK(llama_dtype_block(d) == t[i].block && llama_dtype_bytes(d, (uint64_t)t[i].block) == t[i].bytes,
              "%s: block %d of %zu bytes", llama_dtype_name(d), llama_dtype_block(d), llama_dtype_bytes(d, (uint64_t)t[i].block));
        /* row 3 of a (rows, 512) tensor */
        CHECK(llama_dtype_bytes(d, 3 * 512) == 3 * 512 / (size_t)t[i].block * t[i].bytes, "%s: row offset", llama_dtype_name(d));
        if (t[i].block > 1) CHECK(llama_dtype_bytes(d, (uint64_t)t[i].block + 1) == 0, "%s: partial block", llama_dtype_name(d));
    }
    CHECK(llama_dtype_block(LLAMA_NDTYPES) == 0 && llama_dtype_bytes(99, 256) == 0, "unknown dtype");
    CHECK(!strcmp(llama_dtype_name(LLAMA_Q4_K), "Q4_K") && !strcmp(llama_dtype_name(LLAMA_Q6_K), "Q6_K"), "names");
}

/* values on the levels come back exactly: Q8_0 and Q4_0/Q5_0 with the
 * largest magnitude first; zero blocks give zeros in every type */
static void test_exact(void)
{
    float x[32], y[256];
    uint8_t b[256];
    for (int i = 0; i < 32; i++) x[i] = i == 0 ? -4.0f : 0.5f * (float)((i * 5) % 16 - 8);
    llama_quantize(LLAMA_Q4_0, x, b, 32);
    llama_dequant(LLAMA_Q4_0, b, y, 32);
    CHECK(!memcmp(x, y, sizeof x), "Q4_0 levels round-trip exactly");
    for (int i = 0; i < 32; i++) x[i] = i == 0 ? -8.0f : 0.5f * (float)((i * 11) % 32 - 16);
    llama_quantize(LLAMA_Q5_0, x, b, 32);
    llama_dequant(LLAMA_Q5_0, b, y, 32);
    CHECK(!memcmp(x, y, sizeof x), "Q5_0 levels round-trip exactly");
    for (int i = 0; i < 32; i++) x[i] = i == 0 ? 127.0f / 64 : (float)((i * 37) % 255 - 127) / 64;
    llama_quantize(LLAMA_Q8_0, x, b, 32);
    llama_dequant(LLAMA_Q8_0, b, y, 32);
    CHECK(!memcmp(x, y, sizeof x), "Q8_0 levels round-trip exactly");
    float z[256] = {0};
    for (int d = LLAMA_Q8_0; d < LLAMA_NDTYPES; d++) {
        int n = llama_dtype_block(d), bad = 0;
        llama_quantize(d, z, b, (size_t)n);
        for (int i = 0; i < n; i++) y[i] = 1;
        llama_dequant(d, b, y, (size_t)n);
        for (int i = 0; i < n; i++) bad += y[i] != 0;
        CHECK(bad == 0, "%s: a zero block gives %d non-zero weights", llama_dtype_name(d), bad);
    }
}

/* normal weights (std 1, 64 blocks of 256): the relative RMS error of a
 * round trip is below each type's bound and falls with the bits */
static void test_roundtrip(void)
{
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *b = malloc(N * 4);
    uint64_t s = 42;
    for (int i = 0; i < N; i++) {
        double u = 0;
        for (int k = 0; k < 12; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            u += (double)(s >> 11) / 9007199254740992.0;
        }
        x[i] = (float)(u - 6);
    }
    static const struct { int dtype; double bound; } t[] = {
        {LLAMA_Q8_0, 0.006}, {LLAMA_Q6_K, 0.025}, {LLAMA_Q5_K, 0.05}, {LLAMA_Q5_0, 0.06}, {LLAMA_Q4_K, 0.1}, {LLAMA_Q4_0, 0.12},
    };
    double err[6];
    for (int k = 0; k < 6; k++) {
        int d = t[k].dtype;
        llama_quantize(d, x, b, N);
        llama_dequant(d, b, y, N);
        double se = 0, sx = 0;
        for (int i = 0; i < N; i++) { se += (double)(y[i] - x[i]) * (y[i] - x[i]); sx += (double)x[i] * x[i]; }
        err[k] = sqrt(se / sx);
        printf("%s: relative RMS round-trip error %.4f\n", llama_dtype_name(d), err[k]);
        CHECK(err[k] > 0 && err[k] < t[k].bound, "%s: relative RMS error %g (bound %g)", llama_dtype_name(d), err[k], t[k].bound);
    }
    CHECK(err[0] < err[1] && err[1] < err[2] && err[2] < err[4] && err[3] < err[5], "error falls with the bits");
    free(x); free(y); free(b);
}

/* random nibbles and high bits, scales and mins of both signs, zero and
 * large: each available variant gives exactly the reference's floats */
static void test_variants(void)
{
    const KernDec *r = kern_dec_variant(KERN_DEC_REF);
    uint8_t ql[128], qh[64];
    float a[16], m[8], want[256], got[256];
    uint32_t s = 99;
    int tested = 0;
    for (int i = 0; kern_dec_variant(i); i++) {
        const KernDec *v = kern_dec_variant(i);
        if (!kern_dec_available(v)) { printf("%s: not on this CPU\n", v->name); continue; }
        int bad4 = 0, bad5 = 0, bad6 = 0, bad0 = 0;
        for (int t = 0; t < 200; t++) {
            for (int k = 0; k < 128; k++) { s = s * 1664525u + 1013904223u; ql[k] = (uint8_t)(s >> 24); }
            for (int k = 0; k < 64; k++) { s = s * 1664525u + 1013904223u; qh[k] = (uint8_t)(s >> 24); }
            for (int k = 0; k < 16; k++) {
                s = s * 1664525u + 1013904223u;
                a[k] = k == t % 16 ? 0.0f : ((float)(s >> 8) / 8388608.0f - 1.0f) * (t % 3 ? 0.01f : 3e5f);
                if (k < 8) m[k] = a[k] * 0.37f - (float)t * 1e-3f;
            }
            r->dq_q4_k(ql, a, m, want);
            v->dq_q4_k(ql, a, m, got);
            bad4 += memcmp(want, got, sizeof want) != 0;
            r->dq_q5_k(ql, qh, a, m, want);
            v->dq_q5_k(ql, qh, a, m, got);
            bad5 += memcmp(want, got, sizeof want) != 0;
            r->dq_q6_k(ql, qh, a, want);
            v->dq_q6_k(ql, qh, a, got);
            bad6 += memcmp(want, got, sizeof want) != 0;
            uint32_t h32 = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
            for (int mid = 8; mid <= 16; mid += 8) { /* Q4_0 (no fifth bit), Q5_0 */
                r->dq_sym(ql, mid == 8 ? 0 : h32, mid, a[t % 16 ? 1 : 0], want);
                v->dq_sym(ql, mid == 8 ? 0 : h32, mid, a[t % 16 ? 1 : 0], got);
                bad0 += memcmp(want, got, 32 * sizeof(float)) != 0;
            }
        }
        CHECK(bad4 == 0 && bad5 == 0 && bad6 == 0 && bad0 == 0,
              "%s: %d Q4_K, %d Q5_K, %d Q6_K and %d Q4_0/Q5_0 of 200 blocks differ from the reference", v->name, bad4, bad5, bad6,
              bad0);
        printf("%s: Q4_0/Q5_0/Q4_K/Q5_K/Q6_K expansions equal the reference's\n", v->name);
        tested++;
    }
    CHECK(tested >= 1, "no variant tested");
}

int main(void)
{
    test_q4_0_q5_0();
    test_k45();
    test_q6_k();
    test_sizes();
    test_exact();
    test_roundtrip();
    test_variants();
    return test_done("test_quants");
}
