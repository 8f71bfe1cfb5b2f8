/* src/kernels/x86/amx.c -- "avx512amx": the avx512 variant with int8
 * activations for N > 1 tokens by AMX-INT8 tile dot products (TDPBSSD),
 * compiled on x86 only; table.c lists it first and runs it only when
 * base/cpu.c reports AVX-512 and CPU_AMX_INT8 (the CPU has AMX-TILE and
 * AMX-INT8, the OS enables the tile state and Linux granted this process
 * XTILEDATA) and the self-test below has passed.
 *
 * What it computes is the int8 contract of kernels.h, bit for bit: FP32
 * rows are avx512's (kern_rows_avx512), N = 1 with int8 runs avx512's W16
 * lookup tables (the fastest there), on the same KERN_LAYOUT_W16. For N > 1:
 *
 *   prep: the N tokens' q as int8, row-major (N_pad, in_pad), N_pad = N
 *   rounded up to 16 (rows past N zero), so an A tile is 16 tokens x 64
 *   columns (64 bytes a row, stride in_pad);
 *   per 16-row block and 512-column block: the signs as 8 B tiles in VNNI
 *   order (B row kk holds, for each of the 16 rows n, the ±1 bytes of
 *   columns 4kk .. 4kk+3 at 4n .. 4n+3), expanded from the W16 bits
 *   (amx_expand_b) once and used by every 16-token A tile of the call;
 *   C tiles (int32, 16 tokens x 16 rows) zeroed per 512-column block, 8
 *   TDPBSSD (exact: |sum| <= 512 * 127), then combined with the scales as
 *   the contract says (the first block a multiply, later ones fmaf) into
 *   float row sums kept on the stack, 16 rows of a token per vector, and
 *   after the last block times h into acc: the reference's bits.
 *
 * Blocking (amx-body.h): groups of up to AMX_NG tokens; per pair of row
 * blocks and 512-column block the B tiles are expanded, then 2 token tiles
 * x 2 row blocks = 4 C tiles, 2 A and 2 B tiles, 4 TDPBSSD per 4 tile
 * loads. The row sums stay in L1 (acc rows of 4096 floats are 16 KB apart,
 * one L1 set: read-modify-writes of acc per 512-column block took 3 times
 * as long as the rest of the non-tile work, measured without the tiles).
 * Tokens per call: KERN_AMX_CHUNK (table.c).
 *
 * The tile code is written once (amx-body.h) against six macros and
 * compiled twice: with the real instructions (amx_rows_hw, the variant) and
 * with a C emulation of exactly those instructions (amx_rows_emul,
 * kern_rows_q8_amx_emul, for tests on CPUs without AMX): the tile
 * configuration (palette 1, rows and bytes per row per tile, #GP and #UD
 * conditions checked, as an abort), TILELOADD/TILESTORED of the configured
 * rows and bytes, TILEZERO, TDPBSSD (C[m][n] += sum_k sum_i<4 A[m][4k+i] *
 * B[k][4n+i], int8 x int8 -> int32, as in the Intel SDM), TILERELEASE.
 * The real instructions are inline asm with "memory" operands: GCC 12's
 * _tile_loadd declares no memory read and _tile_loadconfig only 8 bytes of
 * the 64, so the stores of the B tiles or the configuration could be
 * moved past them.
 *
 * Written and tested against the emulation on a machine without AMX; not
 * yet run on AMX hardware. Hence the guard: at first use (kern_amx_usable,
 * pthread_once) the real kernel runs a small deterministic product (odd
 * sizes: a partial row block, a partial 512-column block, a partial token
 * tile) and must give the reference's bits (kern_amx_check); otherwise the
 * variant is unavailable (kern_available false, table.c, which says so on
 * stderr once when it was asked for by name). A fault in a tile
 * instruction cannot be caught that way: base/cpu.c's probe (CPUID, XCR0,
 * the permission) is what keeps the instructions from running where they
 * would fault.
 *
 * Threads: the tile state is per thread; every call loads its
 * configuration and releases the tiles before returning. The emulation's
 * tile state is thread-local too. Pure functions of their arguments (the
 * guard's result is computed once under pthread_once): any thread may call
 * any of them at any time, kern_rows_q8_amx (tile instructions) only in a
 * process where kern_amx_usable() is 1.
 */
#include "kernels/variants.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "base/cpu.h"

#define T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define TAMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512vl,avx512bw,avx512dq,fma")))

#define AMX_KQ (KERN_QBLOCK / 64) /* 64-column steps per 512-column block */

/* the 64-byte tile configuration (palette 1) */
typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16]; /* bytes per row of tile i */
    uint8_t rows[16];
} AmxCfg;
_Static_assert(sizeof(AmxCfg) == 64, "AMX tile configuration is 64 bytes");

/* tiles 0-7: 16 rows of 64 bytes */
static void amx_cfg(AmxCfg *c)
{
    memset(c, 0, sizeof *c);
    c->palette = 1;
    for (int t = 0; t < 8; t++) c->colsb[t] = 64, c->rows[t] = 16;
}

/* ---- the parts without tile instructions -------------------------------- */

static size_t amx_q_bytes(const KernMat *km, int N) { return (size_t)(N + 15) / 16 * 16 * kern_in_pad(km); }

size_t kern_prep_q8_bytes_amx(const KernMat *km, int N)
{
    assert(km->layout == KERN_LAYOUT_W16);
    return N == 1 ? kern_prep_q8_bytes_avx512(km, N) : amx_q_bytes(km, N);
}

/* tokens [n0, n1): q (int16 in [-127, 127]) as int8 rows; the one whose
 * range ends at N zeroes the padding rows */
T512 void kern_prep_q8_amx(const KernMat *km, const int16_t *q, int N, int n0, int n1, void *prep)
{
    assert(km->layout == KERN_LAYOUT_W16);
    if (N == 1) {
        kern_prep_q8_avx512(km, q, N, n0, n1, prep);
        return;
    }
    const int in_pad = kern_in_pad(km); /* a multiple of 64 */
    int8_t *Q = prep;
    for (int n = n0; n < n1; n++)
        for (int c = 0; c < in_pad; c += 32) {
            __m512i v = _mm512_loadu_si512((const void *)(q + (size_t)n * in_pad + c));
            _mm256_storeu_si256((__m256i *)(Q + (size_t)n * in_pad + c), _mm512_cvtepi16_epi8(v));
        }
    if (n1 == N) memset(Q + (size_t)N * in_pad, 0, amx_q_bytes(km, N) - (size_t)N * in_pad);
}

/* the B tiles of 16-row block b for the 64-column steps k0 .. k0+kc-1, 1 KB
 * each at B: byte 4n+i of row kk = sign of (row 16b+n, column 64k+4kk+i),
 * +1 or -1. From KERN_LAYOUT_W16: the 32-column index j of wblock b/2 holds
 * the 16 rows of block b at [16 (b & 1)] (columns 0-15) and [32 + 16 (b &
 * 1)] (16-31), and the next index is `step` uint16 further (the same panel).
 * Each row's 16 bits go to a dword lane; a byte shuffle copies the lane's
 * byte of columns 0-7 (8-15) to its 4 bytes, a test against the bits of 4
 * of those columns and a blend make the ±1 bytes of a B row: per 4 B rows 2
 * shuffles, 4 tests, 4 blends and 4 stores */
#define AMX_EXPAND4(e, dst)                                                                                      \
    do {                                                                                                         \
        const __m512i x0_ = _mm512_shuffle_epi8((e), sh0), x1_ = _mm512_shuffle_epi8((e), sh1);                \
        _mm512_store_si512((void *)(dst), _mm512_mask_blend_epi8(_mm512_test_epi8_mask(x0_, bit0), minus, plus)); \
        _mm512_store_si512((void *)((dst) + 64), _mm512_mask_blend_epi8(_mm512_test_epi8_mask(x0_, bit1), minus, plus)); \
        _mm512_store_si512((void *)((dst) + 128), _mm512_mask_blend_epi8(_mm512_test_epi8_mask(x1_, bit0), minus, plus)); \
        _mm512_store_si512((void *)((dst) + 192), _mm512_mask_blend_epi8(_mm512_test_epi8_mask(x1_, bit1), minus, plus)); \
    } while (0)

T512 static void amx_expand_b(const KernMat *km, int b, int k0, int kc, int8_t *B)
{
    const int w = b / 2;
    const size_t off0 = kern_w16_off(km, 0, w), step = kern_w16_off(km, 1, w) - off0;
    const uint16_t *p = (const uint16_t *)km->kbits + off0 + (size_t)(2 * k0) * step + (b & 1) * 16;
    const __m512i plus = _mm512_set1_epi8(1), minus = _mm512_set1_epi8(-1);
    const __m512i sh0 = _mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0);
    const __m512i sh1 = _mm512_add_epi8(sh0, plus);
    const __m512i bit0 = _mm512_set1_epi32(0x08040201), bit1 = _mm512_set1_epi32((int)0x80402010);
    for (int k = 0; k < kc; k++, B += 1024)
        for (int hf = 0; hf < 2; hf++, p += step) { /* columns 32hf .. 32hf+31 of the step */
            const __m512i e0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
            const __m512i e1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 32)));
            AMX_EXPAND4(e0, B + 512 * hf);       /* B rows 8hf .. 8hf+3: columns 32hf .. 32hf+15 */
            AMX_EXPAND4(e1, B + 512 * hf + 256); /* 8hf+4 .. 8hf+7: 32hf+16 .. 32hf+31 */
        }
}
#undef AMX_EXPAND4

/* tokens per group (amx-body.h): their row sums stay in a buffer on the
 * stack (F, 2 blocks x AMX_NG tokens x 16 floats) for all 512-column blocks */
#define AMX_NG 128

/* the C tile (int32, 16 tokens x 16 rows) of tokens [n0, n0 + nt) into
 * their row sums F (16 floats a token) with the scales of 512-column block
 * jq, as the contract says: the first block a multiply, later ones fmaf */
T512 static void amx_combine(const int32_t *C, const float *scale, int nq, int n0, int nt, int jq, float *F)
{
    for (int t = 0; t < nt; t++) {
        const __m512 f = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(C + 16 * t)));
        const __m512 sc = _mm512_set1_ps(scale[(size_t)(n0 + t) * nq + jq]);
        float *fp = F + 16 * t;
        _mm512_store_ps(fp, jq ? _mm512_fmadd_ps(sc, f, _mm512_load_ps(fp)) : _mm512_mul_ps(sc, f));
    }
}

/* the row sums F of tokens [n0, n0 + nt) and block b times h into acc
 * (rows past out: h = 0) */
T512 static void amx_store(const KernMat *km, const float *F, int n0, int nt, int b, float *acc)
{
    const int r = b * KERN_ROWBLK, left = km->out - r;
    const size_t out_pad = (size_t)kern_nblk(km) * KERN_ROWBLK;
    const __m512 h = _mm512_maskz_loadu_ps(left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1), km->h + r);
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(acc + (size_t)(n0 + t) * out_pad + r, _mm512_mul_ps(_mm512_load_ps(F + 16 * t), h));
}

/* ---- the real instructions ------------------------------------------------
 * AT&T and Intel syntax as GCC's own intrinsics; every memory access
 * declared ("memory"), see the top */
#if defined(__x86_64__)
#define HW_LOADCONFIG(c) __asm__ volatile("{ldtilecfg\t(%0)|ldtilecfg\t[%0]}" ::"r"((const AmxCfg *)(c)) : "memory")
#define HW_ZERO(t) __asm__ volatile("tilezero\t%%tmm" #t ::)
#define HW_LOADD(t, base, stride)                                                                    \
    __asm__ volatile("{tileloadd\t(%0,%1,1), %%tmm" #t "|tileloadd\t%%tmm" #t ", [%0+%1*1]}" ::"r"( \
                         (const void *)(base)),                                                      \
                     "r"((long)(stride))                                                             \
                     : "memory")
#define HW_STORED(t, base, stride)                                                                     \
    __asm__ volatile("{tilestored\t%%tmm" #t ", (%0,%1,1)|tilestored\t[%0+%1*1], %%tmm" #t "}" ::"r"( \
                         (void *)(base)),                                                              \
                     "r"((long)(stride))                                                               \
                     : "memory")
#define HW_DPBSSD(d, a, b) \
    __asm__ volatile("{tdpbssd\t%%tmm" #b ", %%tmm" #a ", %%tmm" #d "|tdpbssd\t%%tmm" #d ", %%tmm" #a ", %%tmm" #b "}" ::)
#define HW_RELEASE() __asm__ volatile("tilerelease" ::: "memory")
#else
/* AMX exists in 64-bit mode only; base/cpu.c never reports it elsewhere,
 * so this variant never runs there */
#define HW_LOADCONFIG(c) __builtin_trap()
#define HW_ZERO(t) __builtin_trap()
#define HW_LOADD(t, base, stride) __builtin_trap()
#define HW_STORED(t, base, stride) __builtin_trap()
#define HW_DPBSSD(d, a, b) __builtin_trap()
#define HW_RELEASE() __builtin_trap()
#endif

#define AMX_NAME amx_rows_hw
#define AMX_TARGET TAMX
#define TILE_LOADCONFIG HW_LOADCONFIG
#define TILE_ZERO HW_ZERO
#define TILE_LOADD HW_LOADD
#define TILE_STORED HW_STORED
#define TILE_DPBSSD HW_DPBSSD
#define TILE_RELEASE HW_RELEASE
#include "kernels/x86/amx-body.h"

/* ---- the emulation (Intel SDM, "Intel AMX instructions") ----------------- */

static _Thread_local struct {
    AmxCfg cfg;  /* palette 0: the init state (no tile usable) */
    uint8_t t[8][16][64];
} emu;

static void emu_fault(const char *insn, const char *why)
{
    fprintf(stderr, "AMX emulation: %s would fault: %s\n", insn, why);
    abort();
}

/* LDTILECFG: palette 0 is the init state; palette 1 has 8 tiles of at most
 * 16 rows and 64 bytes a row, rows and bytes both zero or both not; the
 * reserved bytes and tiles 8-15 zero (else #GP). Zeroes every tile. */
static void emu_loadconfig(const void *p)
{
    AmxCfg c;
    memcpy(&c, p, sizeof c);
    memset(&emu, 0, sizeof emu);
    if (c.palette == 0) return;
    if (c.palette != 1) emu_fault("ldtilecfg", "palette not 0 or 1 (#GP)");
    for (int i = 0; i < 14; i++)
        if (c.reserved[i]) emu_fault("ldtilecfg", "reserved byte set (#GP)");
    for (int i = 0; i < 16; i++) {
        if (i >= 8 && (c.rows[i] || c.colsb[i])) emu_fault("ldtilecfg", "tile 8-15 configured (#GP)");
        if (c.rows[i] > 16 || c.colsb[i] > 64 || !c.rows[i] != !c.colsb[i]) emu_fault("ldtilecfg", "bad tile shape (#GP)");
    }
    if (c.start_row) emu_fault("ldtilecfg", "start_row not 0 (not used by this kernel)");
    emu.cfg = c;
}

static void emu_tile(const char *insn, int t)
{
    if (emu.cfg.palette != 1 || t < 0 || t > 7 || !emu.cfg.rows[t]) emu_fault(insn, "tile not configured (#UD)");
}

static void emu_zero(int t)
{
    emu_tile("tilezero", t);
    memset(emu.t[t], 0, sizeof emu.t[t]);
}

/* rows [0, rows) of colsb bytes from base + row * stride; the rest zero */
static void emu_loadd(int t, const void *base, long stride)
{
    emu_tile("tileloadd", t);
    memset(emu.t[t], 0, sizeof emu.t[t]);
    for (int r = 0; r < emu.cfg.rows[t]; r++) memcpy(emu.t[t][r], (const char *)base + r * stride, emu.cfg.colsb[t]);
}

static void emu_stored(int t, void *base, long stride)
{
    emu_tile("tilestored", t);
    for (int r = 0; r < emu.cfg.rows[t]; r++) memcpy((char *)base + r * stride, emu.t[t][r], emu.cfg.colsb[t]);
}

/* TDPBSSD d, a, b: for m < rows(d), n < colsb(d) / 4:
 * d.dword[m][n] += sum_{k < colsb(a) / 4} sum_{i < 4} a.byte[m][4k+i] * b.byte[k][4n+i]
 * (signed bytes, int32 wrapping); #UD unless d, a, b differ, colsb(a) = 4
 * rows(b), colsb(d) = colsb(b), rows(d) = rows(a). The rest of d is zeroed. */
static void emu_dpbssd(int d, int a, int b)
{
    emu_tile("tdpbssd", d);
    emu_tile("tdpbssd", a);
    emu_tile("tdpbssd", b);
    const AmxCfg *c = &emu.cfg;
    if (d == a || d == b || a == b) emu_fault("tdpbssd", "tiles not distinct (#UD)");
    if (c->colsb[a] != 4 * c->rows[b] || c->colsb[d] != c->colsb[b] || c->rows[d] != c->rows[a])
        emu_fault("tdpbssd", "shapes do not match (#UD)");
    uint8_t res[16][64] = {{0}};
    for (int m = 0; m < c->rows[d]; m++)
        for (int n = 0; n < c->colsb[d] / 4; n++) {
            uint32_t acc;
            memcpy(&acc, &emu.t[d][m][4 * n], 4);
            for (int k = 0; k < c->colsb[a] / 4; k++)
                for (int i = 0; i < 4; i++) {
                    int32_t p = (int32_t)(int8_t)emu.t[a][m][4 * k + i] * (int8_t)emu.t[b][k][4 * n + i];
                    acc += (uint32_t)p;
                }
            memcpy(&res[m][4 * n], &acc, 4);
        }
    memcpy(emu.t[d], res, sizeof res);
}

static void emu_release(void) { memset(&emu, 0, sizeof emu); }

#define AMX_NAME amx_rows_emul
#define AMX_TARGET T512
#define TILE_LOADCONFIG(c) emu_loadconfig(c)
#define TILE_ZERO(t) emu_zero(t)
#define TILE_LOADD(t, base, stride) emu_loadd(t, base, stride)
#define TILE_STORED(t, base, stride) emu_stored(t, base, stride)
#define TILE_DPBSSD(d, a, b) emu_dpbssd(d, a, b)
#define TILE_RELEASE() emu_release()
#include "kernels/x86/amx-body.h"

/* ---- the entry points ------------------------------------------------------ */

void kern_rows_q8_amx(const KernMat *km, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1, float *acc,
                      int16_t *acc16)
{
    assert(km->layout == KERN_LAYOUT_W16);
    if (N == 1) kern_rows_q8_avx512(km, q, scale, prep, N, b0, b1, acc, acc16);
    else amx_rows_hw(km, prep, scale, N, b0, b1, acc);
}

void kern_rows_q8_amx_emul(const KernMat *km, const int16_t *q, const float *scale, const void *prep, int N, int b0, int b1,
                           float *acc, int16_t *acc16)
{
    assert(km->layout == KERN_LAYOUT_W16);
    if (N == 1) kern_rows_q8_avx512(km, q, scale, prep, N, b0, b1, acc, acc16);
    else amx_rows_emul(km, prep, scale, N, b0, b1, acc);
}

/* ---- the guard ---------------------------------------------------------- */

static uint32_t chk_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

/* a deterministic product: out 37 (3 row blocks, the last partial and
 * alone in its pair), in 1100 (in_pad 1152: 3 blocks of 512 columns, the
 * last 2 steps long), N 35 (3 token tiles: a pair and a partial one) and 2,
 * rows in two calls [0, 2) and [2, 3); the extreme values ±127 included.
 * rows_q8 with kern_prep_q8_amx against kern_rows_q8_ref on the rows < out:
 * 1 if bit-identical, 0 if not or out of memory */
int kern_amx_check(KernRowsQ8 rows_q8)
{
    enum { OUT = 37, IN = 1100, NMAX = 35 };
    KernMat m = {.in = IN, .out = OUT, .words_per_row = (IN + 63) / 64, .layout = KERN_LAYOUT_BW};
    const int in_pad = kern_in_pad(&m), nq = kern_nqblk(&m), nblk = kern_nblk(&m);
    const size_t out_pad = (size_t)nblk * KERN_ROWBLK, nacc = (size_t)NMAX * out_pad;
    uint64_t *bits = calloc((size_t)OUT * m.words_per_row, sizeof *bits);
    float *h = malloc(OUT * sizeof *h), *sc = malloc((size_t)NMAX * nq * sizeof *sc);
    int16_t *q = calloc((size_t)NMAX * in_pad, sizeof *q);
    int16_t *acc16 = aligned_alloc(64, ((size_t)NMAX * kern_acc16_per_token(&m) * sizeof(int16_t) + 63) & ~(size_t)63);
    float *want = malloc(nacc * sizeof *want), *got = malloc(nacc * sizeof *got);
    void *prep = NULL;
    m.kbits = aligned_alloc(64, (kern_kbits_bytes(&m) + 63) & ~(size_t)63);
    int ok = bits && h && sc && q && acc16 && want && got && m.kbits;
    if (ok) {
        uint64_t s = 0x2545f4914f6cdd1dull;
        for (size_t i = 0; i < (size_t)OUT * m.words_per_row; i++) bits[i] = (uint64_t)chk_rnd(&s) << 32 | chk_rnd(&s);
        for (int r = 0; r < OUT; r++) bits[(size_t)r * m.words_per_row + m.words_per_row - 1] &= (1ull << (IN % 64)) - 1;
        for (int r = 0; r < OUT; r++) h[r] = 0.05f + (float)(chk_rnd(&s) % 1000) * 1e-4f;
        for (int n = 0; n < NMAX; n++) {
            for (int c = 0; c < IN; c++) {
                uint32_t v = chk_rnd(&s) % 259; /* 0, 1: -127, +127; else uniform in [-127, 127] */
                q[(size_t)n * in_pad + c] = (int16_t)(v < 2 ? (v ? 127 : -127) : (int)(v % 255) - 127);
            }
            for (int j = 0; j < nq; j++) sc[(size_t)n * nq + j] = 1e-3f + (float)(chk_rnd(&s) % 10000) * 1e-6f;
        }
        m.bits = bits;
        m.h = h;
        kern_repack(&m, KERN_LAYOUT_W16);
        size_t pb = kern_prep_q8_bytes_amx(&m, NMAX), pb1 = kern_prep_q8_bytes_amx(&m, 1);
        pb = ((pb > pb1 ? pb : pb1) + 63) & ~(size_t)63;
        prep = aligned_alloc(64, pb);
        ok = prep != NULL;
        static const int Ns[] = {NMAX, 2, 1};
        for (int i = 0; ok && i < 3; i++) {
            const int N = Ns[i];
            kern_rows_q8_ref(&m, q, sc, NULL, N, 0, nblk, want, NULL);
            memset(prep, 0xa5, pb); /* no stale byte may matter */
            kern_prep_q8_amx(&m, q, N, 0, N / 2, prep);
            kern_prep_q8_amx(&m, q, N, N / 2, N, prep);
            for (size_t k = 0; k < nacc; k++) got[k] = -1.0f;
            rows_q8(&m, q, sc, prep, N, 0, 2, got, acc16);
            rows_q8(&m, q, sc, prep, N, 2, nblk, got, acc16);
            for (int n = 0; ok && n < N; n++) ok = !memcmp(got + (size_t)n * out_pad, want + (size_t)n * out_pad, OUT * sizeof(float));
        }
    }
    free(bits);
    free(h);
    free(sc);
    free(q);
    free(acc16);
    free(want);
    free(got);
    free(m.kbits);
    free(prep);
    return ok;
}

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_ok;

static void guard_run(void)
{
    /* never a tile instruction unless the probe allowed it */
    guard_ok = cpu_has(CPU_NEEDS_AVX512 | CPU_AMX_INT8) && kern_amx_check(kern_rows_q8_amx);
}

int kern_amx_usable(void)
{
    pthread_once(&guard_once, guard_run);
    return guard_ok;
}
