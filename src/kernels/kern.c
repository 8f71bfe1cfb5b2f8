/* kernels/kern.c -- the scalar reference variant, the variant table, the
 * run-time choice ($ONEBIT_KERNEL, cpuid) and the repacking into the
 * kernel-private layout (see kernels.h). */
#include "kernels/kernels.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

/* the scalar reference on the canonical layout: the same sum, in the same
 * order, as bitlinear_forward_ref */
static void ref_rows(const BitLinear *bl, const float *gx, int N, int b0, int b1, float *acc)
{
    const int in = bl->in, in_pad = kern_in_pad(bl);
    const size_t out_pad = (size_t)kern_nblk(bl) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < bl->out ? b1 * KERN_ROWBLK : bl->out;
    for (int n = 0; n < N; n++) {
        const float *x = gx + (size_t)n * in_pad;
        float *a = acc + n * out_pad;
        for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
            float s = 0.0f;
            for (int c = 0; c < in; c++) s += bitlinear_sign(bl, r, c) > 0 ? x[c] : -x[c];
            a[r] = s * bl->h[r];
        }
        for (int r = r1; r < b1 * KERN_ROWBLK; r++) a[r] = 0.0f;
    }
}

/* int8 activations (kernels.h): the integer sum of each block, then one
 * multiply or fused multiply-add per block */
static void ref_rows_q8(const BitLinear *bl, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                        float *acc, int16_t *acc16)
{
    (void)prep;
    (void)acc16;
    const int in_pad = kern_in_pad(bl), nq = kern_nqblk(bl);
    const size_t out_pad = (size_t)kern_nblk(bl) * KERN_ROWBLK;
    int r1 = b1 * KERN_ROWBLK < bl->out ? b1 * KERN_ROWBLK : bl->out;
    for (int n = 0; n < N; n++) {
        const int16_t *qn = q + (size_t)n * in_pad;
        const float *sn = scale + (size_t)n * nq;
        float *a = acc + n * out_pad;
        for (int r = b0 * KERN_ROWBLK; r < r1; r++) {
            float s = 0.0f;
            for (int j = 0; j < nq; j++) {
                int32_t isum = 0; /* columns past `in` have q = 0 */
                int c1 = (j + 1) * KERN_QBLOCK < bl->in ? (j + 1) * KERN_QBLOCK : bl->in;
                for (int c = j * KERN_QBLOCK; c < c1; c++) isum += bitlinear_sign(bl, r, c) > 0 ? qn[c] : -qn[c];
                s = j ? fmaf(sn[j], (float)isum, s) : sn[j] * (float)isum;
            }
            a[r] = s * bl->h[r];
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

static int always(void) { return 1; }

const BitKernel kern_ref = {"ref", "scalar reference", always, 0, KERN_LAYOUT_BW, ref_rows, ref_rows_q8, NULL, NULL, KERN_LAYOUT_BW};

/* fastest first */
static const BitKernel *const all[] = {&kern_avx512, &kern_avx2, &kern_ref, &kern_avx512mask, &kern_avx2flip, NULL};

const BitKernel *const *kern_all(void) { return all; }

const BitKernel *kern_find(const char *name)
{
    for (int i = 0; all[i]; i++)
        if (!strcmp(all[i]->name, name)) return all[i]->available() ? all[i] : NULL;
    return NULL;
}

static _Atomic(const BitKernel *) current;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int have512, have2;

static void init_current(void)
{
    const BitKernel *k = NULL;
    const char *env = getenv("ONEBIT_KERNEL");
    if (env && *env) {
        k = kern_find(env);
        if (!k) fprintf(stderr, "onebit-tui: warning: ONEBIT_KERNEL=%s is unknown or not available on this CPU; using the default\n", env);
    }
    for (int i = 0; !k && all[i]; i++)
        if (all[i]->available()) k = all[i];
    have512 = kern_avx512.available();
    have2 = kern_avx2.available();
    atomic_store(&current, k);
}

const BitKernel *kern_current(void)
{
    pthread_once(&once, init_current);
    return atomic_load(&current);
}

int kern_select(const char *name, char *err)
{
    pthread_once(&once, init_current);
    const BitKernel *k = kern_find(name);
    if (!k) {
        int known = 0;
        for (int i = 0; all[i]; i++) known |= !strcmp(all[i]->name, name);
        ob_seterr(err, known ? "kernel '%s' is not available on this CPU" : "unknown kernel '%s' (try ref, avx2, avx2flip, avx512, avx512mask)", name);
        return -1;
    }
    atomic_store(&current, k);
    return 0;
}

/* KERN_LAYOUT_L6 (kern_avx512.c): columns 0-5, 6-10, 11-15, 16-21, 22-26,
 * 27-31 of the 32 make six groups; a group's first five columns go to bits
 * 0-4, 5-9, 10-14, 16-20, 21-25, 26-30, and the sixth column of groups 0 and
 * 3 (columns 5 and 21) is a sign column: bit 15 (group 0) and bit 31 (group
 * 3) hold 1 when that column's sign is -1, and then the group's five bits
 * are stored inverted. The input: bit i = column i, 1 = +. */
static uint32_t l6_encode(uint32_t r)
{
    uint32_t n0 = ~r >> 5 & 1, n3 = ~r >> 21 & 1;
    uint32_t g0 = (r & 31) ^ (n0 ? 31 : 0), g3 = (r >> 16 & 31) ^ (n3 ? 31 : 0);
    return g0 | (r >> 6 & 31) << 5 | (r >> 11 & 31) << 10 | n0 << 15 | g3 << 16 | (r >> 22 & 31) << 21 | (r >> 27 & 31) << 26 | n3 << 31;
}

/* KERN_LAYOUT_W16 (kernels.h): the canonical bits as they are, 16 columns
 * of a row per uint16, 32 rows per 64 bytes */
static void w16_repack(BitLinear *bl)
{
    const int wpr = bl->words_per_row, nw = kern_nblk_alloc(bl) / 2;
    uint16_t *kb = (uint16_t *)bl->kbits;
    for (int j = 0; j < 2 * wpr; j++)
        for (int w = 0; w < nw; w++) {
            uint16_t *d = kb + kern_w16_off(bl, j, w);
            for (int i = 0; i < 32; i++) {
                int r = w * 32 + i;
                uint32_t v = r < bl->out ? (uint32_t)(bl->bits[(size_t)r * wpr + j / 2] >> (32 * (j & 1))) : 0;
                d[i] = (uint16_t)v;
                d[32 + i] = (uint16_t)(v >> 16);
            }
        }
}

void kern_repack(BitLinear *bl)
{
    const BitKernel *K = kern_current();
    const int layout = bitlinear_act() == BITLINEAR_ACT_INT8 ? K->layout_q8 : K->layout;
    if (layout == KERN_LAYOUT_W16) {
        w16_repack(bl);
        bl->klayout = layout;
        return;
    }
    const int wpr = bl->words_per_row, nblk = kern_nblk(bl), l6 = layout == KERN_LAYOUT_L6;
    for (int k = 0; k < wpr; k++)
        for (int b = 0; b < nblk; b++) {
            uint32_t *d = bl->kbits + kern_kb_off(bl, k, b);
            for (int i = 0; i < KERN_ROWBLK; i++) {
                int r = b * KERN_ROWBLK + i;
                uint64_t w = r < bl->out ? bl->bits[(size_t)r * wpr + k] : 0;
                uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
                d[i] = l6 ? l6_encode(lo) : lo;
                d[16 + i] = l6 ? l6_encode(hi) : hi;
            }
        }
    bl->klayout = l6 ? KERN_LAYOUT_L6 : KERN_LAYOUT_BW;
}

/* the helpers below use their AVX-512 (or AVX2) versions unless the CPU lacks
 * them or the scalar reference is the active kernel */
static int simd512(void)
{
    pthread_once(&once, init_current);
    return have512 && atomic_load(&current) != &kern_ref;
}

static int simd2(void)
{
    pthread_once(&once, init_current);
    return have2 && atomic_load(&current) != &kern_ref;
}

void kern_quantize(const float *gx, int in_pad, int16_t *q, float *scale)
{
    if (simd512()) kern_quantize_avx512(gx, in_pad, q, scale);
    else kern_quantize_ref(gx, in_pad, q, scale);
}

void kern_gemv_rows(const float *W, const float *x, float *y, int cols, int r0, int r1)
{
    if (simd512()) kern_gemv_rows_avx512(W, x, y, cols, r0, r1);
    else if (simd2()) kern_gemv_rows_avx2(W, x, y, cols, r0, r1);
    else
        for (int r = r0; r < r1; r++) {
            const float *w = W + (size_t)r * cols;
            float s = 0.0f;
            for (int c = 0; c < cols; c++) s += w[c] * x[c];
            y[r] = s;
        }
}

void kern_mul(const float *x, const float *g, float *y, int n)
{
    if (simd512()) {
        kern_mul_avx512(x, g, y, n);
        return;
    }
    for (int i = 0; i < n; i++) y[i] = x[i] * g[i];
}

void kern_layernorm(const float *x, float *y, int n)
{
    if (simd512()) {
        kern_layernorm_avx512(x, y, n);
        return;
    }
    if (x != y) memcpy(y, x, (size_t)n * sizeof(float));
    bitlinear_layernorm(y, n);
}
