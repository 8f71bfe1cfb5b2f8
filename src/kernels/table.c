/* src/kernels/table.c -- the table of kernel variants (one
 * designated-initializer entry each), the default choice ($ONEBIT_KERNEL,
 * the CPU probe of base/cpu.c), the decode helpers' table (KernDec) and
 * its default, execution contexts, and the repacking into
 * the kernel-private layouts (see kernels.h). The table and the default are
 * constant: any thread. kern_repack writes its matrix: its owner only. */
#include "kernels/variants.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "base/cpu.h"

/* tokens per rows_q8 call of avx512vnni (its prep is the int8 input, 1
 * byte per column and token, not tables; 4 tiles of 16 tokens) */
#ifndef KERN_VNNI_CHUNK
#define KERN_VNNI_CHUNK 64
#endif

/* tokens per rows_q8 call of avx512amx: the B tiles it expands from the
 * signs (x86/amx.c) serve every token tile of a call, and the expansion,
 * measured here without the tile instructions (11008x4096, 1 thread, 64
 * tokens: 1.0-1.6 ms of non-tile work, two thirds of it the expansion,
 * where the TDPBSSDs would take about 1.1 ms at 1024 products a cycle and
 * 2.5 GHz), is then paid once per 8 token tiles: a 128-token prompt is one
 * call. Its prep (tokens x in_pad int8: 512 KB at 4096 columns, 1.4 MB at
 * 11008) stays in the 2 MB L2 of an AMX Xeon. Not measured on AMX
 * hardware. */
#ifndef KERN_AMX_CHUNK
#define KERN_AMX_CHUNK 128
#endif

static const BitKernel table[KERN_NVARIANTS] = {
    [KERN_REF] = {
        .name = "ref", .desc = "scalar reference",
        .needs = 0, .needs_kbits = 0, .layout = KERN_LAYOUT_BW, .layout_q8 = KERN_LAYOUT_BW,
        .rows = kern_rows_ref, .rows_q8 = kern_rows_q8_ref,
    },
    [KERN_AVX2] = {
        .name = "avx2", .desc = "AVX2+FMA FP32 lookup tables of 3 columns (vpermps, 8 rows per op)",
        .needs = CPU_NEEDS_AVX2, .needs_kbits = 1, .layout = KERN_LAYOUT_BW, .layout_q8 = KERN_LAYOUT_BW,
        .rows = kern_rows_avx2, .rows_q8 = kern_rows_q8_avx2,
    },
    [KERN_AVX2FLIP] = {
        .name = "avx2flip", .desc = "AVX2+FMA sign flips (vpsllvd + XOR) on the canonical layout",
        .needs = CPU_NEEDS_AVX2, .needs_kbits = 0, .layout = KERN_LAYOUT_BW, .layout_q8 = KERN_LAYOUT_BW,
        .rows = kern_rows_avx2flip,
    },
    [KERN_AVX512] = {
        .name = "avx512", .desc = "AVX-512 FP32 lookup tables of 6 columns with sign columns (vpermt2ps, multiply-extracted indices)",
        .needs = CPU_NEEDS_AVX512, .needs_kbits = 1, .layout = KERN_LAYOUT_L6, .layout_q8 = KERN_LAYOUT_W16,
        .rows = kern_rows_avx512, .rows_q8 = kern_rows_q8_avx512,
        .prep_q8_bytes = kern_prep_q8_bytes_avx512, .prep_q8 = kern_prep_q8_avx512,
    },
    [KERN_AVX512MASK] = {
        .name = "avx512mask", .desc = "AVX-512 masked adds on the canonical layout (2P - sum)",
        .needs = CPU_NEEDS_AVX512, .needs_kbits = 0, .layout = KERN_LAYOUT_BW, .layout_q8 = KERN_LAYOUT_BW,
        .rows = kern_rows_avx512mask,
    },
    [KERN_AVX512VNNI] = {
        .name = "avx512vnni", .desc = "avx512, with int8 activations for N > 1 by vpdpbusd dot products (AVX512_VNNI; slower than avx512 on Zen 5)",
        .needs = CPU_NEEDS_AVX512 | CPU_AVX512VNNI, .needs_kbits = 1, .layout = KERN_LAYOUT_L6, .layout_q8 = KERN_LAYOUT_W16,
        .rows = kern_rows_avx512, .rows_q8 = kern_rows_q8_vnni,
        .prep_q8_bytes = kern_prep_q8_bytes_vnni, .prep_q8 = kern_prep_q8_vnni, .q8_chunk = KERN_VNNI_CHUNK,
    },
    [KERN_AVX512AMX] = {
        .name = "avx512amx", .desc = "avx512, with int8 activations for N > 1 by AMX-INT8 tiles (TDPBSSD, 16 tokens x 16 rows x 64 columns; self-tested at first use)",
        .needs = CPU_NEEDS_AVX512 | CPU_AMX_INT8, .needs_kbits = 1, .layout = KERN_LAYOUT_L6, .layout_q8 = KERN_LAYOUT_W16,
        .rows = kern_rows_avx512, .rows_q8 = kern_rows_q8_amx,
        .prep_q8_bytes = kern_prep_q8_bytes_amx, .prep_q8 = kern_prep_q8_amx, .q8_chunk = KERN_AMX_CHUNK,
    },
};

/* fastest first (avx512amx: on AMX CPUs only, see kern_available) */
static const BitKernel *const all[] = {&table[KERN_AVX512AMX], &table[KERN_AVX512], &table[KERN_AVX2], &table[KERN_REF], &table[KERN_AVX512MASK],
                                       &table[KERN_AVX2FLIP], &table[KERN_AVX512VNNI], NULL};

const BitKernel *kern_variant(int id) { return id >= 0 && id < KERN_NVARIANTS ? &table[id] : NULL; }

const BitKernel *const *kern_all(void) { return all; }

/* avx512amx also needs its self-test (x86/amx.c: never run on AMX
 * hardware here, so it must give the reference's bits on this CPU before
 * it is used) */
int kern_available(const BitKernel *k)
{
    if (!cpu_has(k->needs)) return 0;
    return k == &table[KERN_AVX512AMX] ? kern_amx_usable() : 1;
}

/* whether k is there but failed its self-test */
static int failed_selftest(const BitKernel *k) { return cpu_has(k->needs) && !kern_available(k); }

static atomic_flag warned_amx = ATOMIC_FLAG_INIT;

const BitKernel *kern_find(const char *name)
{
    for (int i = 0; all[i]; i++)
        if (!strcmp(all[i]->name, name)) {
            if (kern_available(all[i])) return all[i];
            /* asked for by name ($ONEBIT_KERNEL, --kernel): say why, once */
            if (failed_selftest(all[i]) && !atomic_flag_test_and_set(&warned_amx))
                fprintf(stderr, "onebit-tui: warning: kernel %s failed its self-test on this CPU (its results differed from the reference); it is disabled\n", name);
            return NULL;
        }
    return NULL;
}

const BitKernel *kern_lookup(const char *name, char *err)
{
    const BitKernel *k = kern_find(name);
    if (!k) {
        const BitKernel *known = NULL;
        for (int i = 0; all[i]; i++)
            if (!strcmp(all[i]->name, name)) known = all[i];
        if (known && failed_selftest(known)) ob_seterr(err, "kernel '%s' failed its self-test on this CPU", name);
        else ob_seterr(err, known ? "kernel '%s' is not available on this CPU" : "unknown kernel '%s' (try ref, avx2, avx2flip, avx512, avx512mask, avx512vnni, avx512amx)", name);
    }
    return k;
}

static pthread_once_t def_once = PTHREAD_ONCE_INIT;
static const BitKernel *def;

static void def_init(void)
{
    const char *env = cpu_kernel_override();
    if (env) {
        def = kern_find(env);
        if (!def) fprintf(stderr, "onebit-tui: warning: ONEBIT_KERNEL=%s is unknown or not available on this CPU; using the default\n", env);
    }
    for (int i = 0; !def && all[i]; i++)
        if (kern_available(all[i])) def = all[i];
}

const BitKernel *kern_default(void)
{
    pthread_once(&def_once, def_init);
    return def;
}

/* ---- the decode helpers (KernDec) ---------------------------------------- */

/* sfx: the variant's own functions; dq: whose K-quant expansions it takes */
#define DEC_ENTRY(sfx, dq)                                                                               \
    .score_f32 = kern_dec_score_f32_##sfx, .score_f16 = kern_dec_score_f16_##sfx,                        \
    .accum_f32 = kern_dec_accum_f32_##sfx, .accum_f16 = kern_dec_accum_f16_##sfx,                        \
    .to_f16 = kern_dec_to_f16_##sfx, .from_f16 = kern_dec_from_f16_##sfx, .gemv_f16 = kern_dec_gemv_f16_##sfx, \
    .gemv_q8_0 = kern_dec_gemv_q8_0_##sfx, .attn_f16 = kern_dec_attn_f16_##sfx, .step_f16 = kern_dec_step_f16_##sfx, .from_bf16 = kern_dec_from_bf16_##sfx, .dq_q4_k = kern_dec_dq_q4_k_##dq, \
    .dq_sym = kern_dec_dq_sym_##dq, .dq_q5_k = kern_dec_dq_q5_k_##dq, .dq_q6_k = kern_dec_dq_q6_k_##dq
static const KernDec dec_table[KERN_DEC_NVARIANTS] = {
    [KERN_DEC_REF] = {.name = "ref", .needs = 0, DEC_ENTRY(ref, ref), .gemv_bf16 = kern_dec_gemv_bf16_ref},
    [KERN_DEC_AVX2] = {.name = "avx2", .needs = CPU_NEEDS_AVX2 | CPU_F16C, DEC_ENTRY(avx2, avx2), .gemv_bf16 = kern_dec_gemv_bf16_avx2},
    [KERN_DEC_AVX512] = {.name = "avx512", .needs = CPU_NEEDS_AVX512, DEC_ENTRY(avx512, avx2),
                         .gemv_bf16 = kern_dec_gemv_bf16_avx512},
    /* the AVX-512 helpers with vdpbf16ps for BF16 rows */
    [KERN_DEC_AVX512BF16] = {.name = "avx512bf16", .needs = CPU_NEEDS_AVX512 | CPU_AVX512BF16, DEC_ENTRY(avx512, avx2),
                             .gemv_bf16 = kern_dec_gemv_bf16_avx512bf16},
};
#undef DEC_ENTRY

const KernDec *kern_dec_variant(int id) { return id >= 0 && id < KERN_DEC_NVARIANTS ? &dec_table[id] : NULL; }

int kern_dec_available(const KernDec *d) { return cpu_has(d->needs); }

static pthread_once_t dec_once = PTHREAD_ONCE_INIT;
static const KernDec *dec_def;

static void dec_init(void)
{
    const char *env = cpu_kernel_override();
    dec_def = &dec_table[KERN_DEC_REF];
    if (env && !strcmp(env, "ref")) return;
    for (int i = KERN_DEC_NVARIANTS - 1; i > KERN_DEC_REF; i--)
        if (kern_dec_available(&dec_table[i])) { dec_def = &dec_table[i]; break; }
}

const KernDec *kern_dec_default(void)
{
    pthread_once(&dec_once, dec_init);
    return dec_def;
}

/* ---- execution contexts -------------------------------------------------- */

static atomic_flag warned_q8 = ATOMIC_FLAG_INIT;

void kern_exec_init(KernExec *ex, const BitKernel *k, int act, Pool *pool)
{
    if (!k) k = kern_default();
    ex->act = act == KERN_ACT_INT8 ? KERN_ACT_INT8 : KERN_ACT_FP32;
    /* int8 activations with a kernel that has no int8 variant: the
     * reference's (the same results) */
    const BitKernel *run = ex->act == KERN_ACT_INT8 && !k->rows_q8 ? &table[KERN_REF] : k;
    if (run != k && k != &table[KERN_REF] && !atomic_flag_test_and_set(&warned_q8))
        fprintf(stderr, "onebit-tui: warning: kernel %s has no int8-activation variant; the scalar reference computes them (slow)\n", k->name);
    ex->kernel = run;
    ex->asked = k;
    ex->pool = pool ? pool_ref(pool) : pool_global_ref();
    /* the helpers: the SIMD ones the CPU has, unless the reference is the
     * chosen kernel (then all scalar: the plain reference of the layer); the
     * LayerNorm follows the kernel that runs */
    const int simd = k != &table[KERN_REF], h512 = simd && cpu_has(CPU_NEEDS_AVX512), h2 = simd && cpu_has(CPU_NEEDS_AVX2);
    ex->mul = h512 ? kern_mul_avx512 : kern_mul_ref;
    ex->quantize = h512 ? kern_quantize_avx512 : kern_quantize_ref;
    ex->layernorm = h512 && run != &table[KERN_REF] ? kern_layernorm_avx512 : kern_layernorm_ref;
    ex->gemv_rows = h512 ? kern_gemv_rows_avx512 : h2 ? kern_gemv_rows_avx2 : kern_gemv_rows_ref;
    ex->silu_mul = h512 ? kern_silu_mul_avx512 : kern_silu_mul_ref;
    ex->rmsnorm = h512 ? kern_rmsnorm_avx512 : kern_rmsnorm_ref;
    ex->dec = simd ? kern_dec_default() : &dec_table[KERN_DEC_REF];
}

void kern_exec_fini(KernExec *ex)
{
    if (ex->pool) pool_free(ex->pool);
    ex->pool = NULL;
}

void kern_exec_copy(KernExec *dst, const KernExec *src)
{
    Pool *old = dst->pool;
    *dst = *src;
    if (dst->pool) pool_ref(dst->pool);
    if (old) pool_free(old);
}

/* ---- repacking ------------------------------------------------------------ */

/* KERN_LAYOUT_L6 (x86/avx512.c): columns 0-5, 6-10, 11-15, 16-21, 22-26,
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
static void w16_repack(KernMat *m)
{
    const int wpr = m->words_per_row, nw = kern_nblk_alloc(m) / 2;
    uint16_t *kb = (uint16_t *)m->kbits;
    for (int j = 0; j < 2 * wpr; j++)
        for (int w = 0; w < nw; w++) {
            uint16_t *d = kb + kern_w16_off(m, j, w);
            for (int i = 0; i < 32; i++) {
                int r = w * 32 + i;
                uint32_t v = r < m->out ? (uint32_t)(m->bits[(size_t)r * wpr + j / 2] >> (32 * (j & 1))) : 0;
                d[i] = (uint16_t)v;
                d[32 + i] = (uint16_t)(v >> 16);
            }
        }
}

void kern_repack(KernMat *m, int layout)
{
    if (layout == KERN_LAYOUT_W16) {
        w16_repack(m);
        m->layout = layout;
        return;
    }
    const int wpr = m->words_per_row, nblk = kern_nblk(m), l6 = layout == KERN_LAYOUT_L6;
    for (int k = 0; k < wpr; k++)
        for (int b = 0; b < nblk; b++) {
            uint32_t *d = m->kbits + kern_kb_off(m, k, b);
            for (int i = 0; i < KERN_ROWBLK; i++) {
                int r = b * KERN_ROWBLK + i;
                uint64_t w = r < m->out ? m->bits[(size_t)r * wpr + k] : 0;
                uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
                d[i] = l6 ? l6_encode(lo) : lo;
                d[16 + i] = l6 ? l6_encode(hi) : hi;
            }
        }
    m->layout = l6 ? KERN_LAYOUT_L6 : KERN_LAYOUT_BW;
}

#if !defined(OB_X86)
/* no x86/ops.c: nothing to measure */
int kern_op_rates(KernOpRate *r, int max, long iters)
{
    (void)r; (void)max; (void)iters;
    return 0;
}
#endif
