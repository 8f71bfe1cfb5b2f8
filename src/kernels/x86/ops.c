/* src/kernels/x86/ops.c -- `bench ops`: how many of the vector operations
 * the int8 kernels are made of this CPU retires per nanosecond (kernels.h,
 * kern_op_rates). Each measurement runs ten independent chains of one
 * operation (or of two, alternated) on registers, so it is the throughput,
 * not the latency; a chain of dependent scalar adds gives the clock (one a
 * cycle), so the rates can be read per cycle. The permutes (vpermw,
 * vpermt2w) are what x86/avx512.c's W16 lookup tables are made of, vpdpbusd
 * the avx512vnni kernel's dot product, vpaddw their sums: the mixed rows
 * show whether two kinds share a pipe. Compiled on x86 only, each function
 * with a target attribute; pure: any thread. */
#include "kernels/variants.h"

#include "base/common.h"
#include "base/cpu.h"

#include <immintrin.h>

#define TOPS __attribute__((target("avx512f,avx512bw"), noinline))
#define TOPS_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni"), noinline))

/* ten chains a0..a9 of zmm registers, and their sum (so nothing is dead) */
#define CHAINS_DECL                                                                                          \
    __m512i a0 = _mm512_set1_epi32(1), a1 = _mm512_set1_epi32(2), a2 = _mm512_set1_epi32(3),               \
            a3 = _mm512_set1_epi32(4), a4 = _mm512_set1_epi32(5), a5 = _mm512_set1_epi32(6),               \
            a6 = _mm512_set1_epi32(7), a7 = _mm512_set1_epi32(8), a8 = _mm512_set1_epi32(9),               \
            a9 = _mm512_set1_epi32(10), b0 = a0, b1 = a1, b2 = a2, b3 = a3, b4 = a4, b5 = a5, b6 = a6,      \
            b7 = a7, b8 = a8, b9 = a9;                                                                     \
    const __m512i t = _mm512_set1_epi32(0x01010101), t2 = _mm512_set1_epi32(0x00030001);                   \
    (void)t2
#define CHAINS_SUM(x)                                                                                          \
    _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(x##0, x##1), _mm512_add_epi32(x##2, x##3)),             \
                     _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(x##4, x##5), _mm512_add_epi32(x##6, x##7)), \
                                      _mm512_add_epi32(x##8, x##9)))
#define X10(M, x) M(x##0) M(x##1) M(x##2) M(x##3) M(x##4) M(x##5) M(x##6) M(x##7) M(x##8) M(x##9)
#define OP_ADD(r) __asm__ volatile("vpaddw %1, %0, %0" : "+v"(r) : "v"(t));
#define OP_PERMW(r) __asm__ volatile("vpermw %1, %0, %0" : "+v"(r) : "v"(t));
#define OP_PERMT2W(r) __asm__ volatile("vpermt2w %1, %2, %0" : "+v"(r) : "v"(t), "v"(t2));
#define OP_DPBUSD(r) __asm__ volatile("vpdpbusd %1, %2, %0" : "+v"(r) : "v"(t), "v"(t2));

/* one loop of n iterations of the ops in `body`; returns a value of the
 * chains so that they are kept (an OR: vector adds wrap, a scalar sum could
 * overflow) */
#define OPS_LOOP(attr, fname, body)                                              \
    attr static int fname(long n)                                                \
    {                                                                            \
        CHAINS_DECL;                                                             \
        for (long i = 0; i < n; i++) { body }                                    \
        return _mm512_reduce_or_epi32(_mm512_add_epi32(CHAINS_SUM(a), CHAINS_SUM(b))); \
    }
OPS_LOOP(TOPS, loop_add, X10(OP_ADD, a))
OPS_LOOP(TOPS, loop_permw, X10(OP_PERMW, a))
OPS_LOOP(TOPS, loop_permt2w, X10(OP_PERMT2W, a))
OPS_LOOP(TOPS_VNNI, loop_dpbusd, X10(OP_DPBUSD, a))
OPS_LOOP(TOPS, loop_permt2w_add, X10(OP_PERMT2W, a) X10(OP_ADD, b))
OPS_LOOP(TOPS_VNNI, loop_permt2w_dpbusd, X10(OP_PERMT2W, a) X10(OP_DPBUSD, b))

/* dependent scalar adds: one a cycle */
__attribute__((noinline)) static long loop_scalar(long n)
{
    long x = 0;
    for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    return x;
}

static volatile long ops_sink;

int kern_op_rates(KernOpRate *r, int max, long iters)
{
    int k = 0;
    if (max < 1 || iters < 1) return 0;
    double t0 = ob_now();
    ops_sink = loop_scalar(iters * 10);
    r[k++] = (KernOpRate){"scalar add (dependent)", "the clock: one a cycle", 4.0 * iters * 10 / ((ob_now() - t0) * 1e9)};
    if (!cpu_has(CPU_NEEDS_AVX512)) return k;
    const int vnni = cpu_has(CPU_AVX512VNNI);
    struct {
        const char *name, *what;
        int (*fn)(long);
        int ops, needs_vnni;
    } m[] = {
        {"vpaddw zmm", "the lookup kernels' sums", loop_add, 10, 0},
        {"vpermw zmm", "a 32-entry lookup of 32 rows", loop_permw, 10, 0},
        {"vpermt2w zmm", "a 64-entry lookup of 32 rows (6 columns)", loop_permt2w, 10, 0},
        {"vpdpbusd zmm", "64 int8 products (avx512vnni)", loop_dpbusd, 10, 1},
        {"vpermt2w + vpaddw", "1:1, both kinds counted", loop_permt2w_add, 20, 0},
        {"vpermt2w + vpdpbusd", "1:1, both kinds counted", loop_permt2w_dpbusd, 20, 1},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0] && k < max; i++) {
        if (m[i].needs_vnni && !vnni) continue;
        t0 = ob_now();
        ops_sink = m[i].fn(iters);
        r[k++] = (KernOpRate){m[i].name, m[i].what, (double)m[i].ops * iters / ((ob_now() - t0) * 1e9)};
    }
    return k;
}
