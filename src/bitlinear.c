/* bitlinear.c -- packing and the scalar reference of the OneBit layer (see
 * bitlinear.h). */
#include "bitlinear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

BitLinear *bitlinear_new(int out, int in)
{
    BitLinear *bl = ob_calloc(1, sizeof *bl);
    bl->in = in;
    bl->out = out;
    bl->words_per_row = (in + 63) / 64;
    bl->bits = ob_aligned_alloc(64, (size_t)out * bl->words_per_row * sizeof(uint64_t));
    bl->g = ob_aligned_alloc(64, (size_t)in * sizeof(float));
    bl->h = ob_aligned_alloc(64, (size_t)out * sizeof(float));
    for (int i = 0; i < in; i++) bl->g[i] = 1.0f;
    for (int i = 0; i < out; i++) bl->h[i] = 1.0f;
    bl->norm = 1;
    return bl;
}

void bitlinear_free(BitLinear *bl)
{
    if (!bl) return;
    free(bl->bits);
    free(bl->g);
    free(bl->h);
    free(bl);
}

void bitlinear_pack(BitLinear *bl, const float *W)
{
    int wpr = bl->words_per_row;
    for (int r = 0; r < bl->out; r++) {
        uint64_t *row = bl->bits + (size_t)r * wpr;
        memset(row, 0, wpr * sizeof(uint64_t));
        const float *w = W + (size_t)r * bl->in;
        for (int c = 0; c < bl->in; c++)
            if (!(w[c] < 0)) row[c >> 6] |= 1ull << (c & 63);
    }
}

void bitlinear_set_bits(BitLinear *bl, const uint64_t *bits)
{
    size_t n = (size_t)bl->out * bl->words_per_row;
    memcpy(bl->bits, bits, n * sizeof(uint64_t));
    int tail = bl->in & 63;
    if (tail) /* keep the padding zero whatever the file said */
        for (int r = 0; r < bl->out; r++) bl->bits[(size_t)r * bl->words_per_row + bl->words_per_row - 1] &= (1ull << tail) - 1;
}

void bitlinear_get_bits(const BitLinear *bl, uint64_t *bits)
{
    memcpy(bits, bl->bits, (size_t)bl->out * bl->words_per_row * sizeof(uint64_t));
}

void bitlinear_set_scales(BitLinear *bl, const float *g, const float *h)
{
    memcpy(bl->g, g, (size_t)bl->in * sizeof(float));
    memcpy(bl->h, h, (size_t)bl->out * sizeof(float));
}

int bitlinear_sign(const BitLinear *bl, int row, int col)
{
    return (bl->bits[(size_t)row * bl->words_per_row + (col >> 6)] >> (col & 63)) & 1 ? 1 : -1;
}

void bitlinear_layernorm(float *y, int n)
{
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += y[i];
    mean /= n;
    for (int i = 0; i < n; i++) { double d = y[i] - mean; var += d * d; }
    var /= n;
    float inv = (float)(1.0 / sqrt(var + BITLINEAR_EPS)), m = (float)mean;
    for (int i = 0; i < n; i++) y[i] = (y[i] - m) * inv;
}

void bitlinear_forward_ref(const BitLinear *bl, const float *x, float *y, int N)
{
    float *gx = ob_malloc((size_t)bl->in * sizeof(float));
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * bl->in;
        float *yn = y + (size_t)n * bl->out;
        for (int c = 0; c < bl->in; c++) gx[c] = xn[c] * bl->g[c];
        for (int r = 0; r < bl->out; r++) {
            float acc = 0.0f;
            for (int c = 0; c < bl->in; c++) acc += bitlinear_sign(bl, r, c) > 0 ? gx[c] : -gx[c];
            yn[r] = acc * bl->h[r];
        }
        if (bl->norm) bitlinear_layernorm(yn, bl->out);
    }
    free(gx);
}

void bitlinear_forward(const BitLinear *bl, const float *x, float *y, int N)
{
    bitlinear_forward_ref(bl, x, y, N);
}
