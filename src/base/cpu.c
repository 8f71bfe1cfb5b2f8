/* src/base/cpu.c -- the CPU feature probe and the $ONEBIT_KERNEL override
 * (see cpu.h). Both are read once under pthread_once; any thread. */
#include "config.h"
#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(OB_X86) && defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define OB_AMX_PROBE 1
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned features;
static char override[64];

#if defined(OB_AMX_PROBE)
static void cpuid2(unsigned leaf, unsigned sub, unsigned r[4])
{
    __asm__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* AMX-INT8 usable by this process: the CPU has AMX-TILE and AMX-INT8
 * (cpuid 7.0 edx bits 24, 25), the OS has turned on the tile state in XCR0
 * (bits 17 XTILECFG and 18 XTILEDATA; xgetbv only when cpuid 1 ecx bit 27,
 * OSXSAVE, says it may run), and Linux grants the process the tile data
 * (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA: without it the first
 * tile instruction kills the process with SIGILL). Asked once, here. */
static int amx_usable(void)
{
    unsigned r[4];
    cpuid2(0, 0, r);
    if (r[0] < 7) return 0;
    cpuid2(1, 0, r);
    if (!(r[2] >> 27 & 1)) return 0;
    cpuid2(7, 0, r);
    if ((r[3] >> 24 & 3) != 3) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo >> 17 & 3) != 3) return 0;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
}
#endif

static void probe(void)
{
#if defined(OB_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) features |= CPU_AVX2;
    if (__builtin_cpu_supports("fma")) features |= CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) features |= CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) features |= CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) features |= CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512dq")) features |= CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512vnni")) features |= CPU_AVX512VNNI;
    /* F16C has no __builtin_cpu_supports name in older compilers: cpuid 1, ecx bit 29 */
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (c >> 29 & 1) features |= CPU_F16C;
    /* AVX512_BF16: cpuid 7.1, eax bit 5 (when leaf 7 exists) */
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
    if (a >= 7) {
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
        if (a >> 5 & 1) features |= CPU_AVX512BF16;
    }
#if defined(OB_AMX_PROBE)
    if (amx_usable()) features |= CPU_AMX_INT8;
#endif
#endif
    const char *env = getenv("ONEBIT_KERNEL");
    if (env && *env && strlen(env) < sizeof override) strcpy(override, env);
    else if (env && *env) strcpy(override, "(too long)");
}

unsigned cpu_features(void)
{
    pthread_once(&once, probe);
    return features;
}

int cpu_has(unsigned needs) { return (cpu_features() & needs) == needs; }

const char *cpu_kernel_override(void)
{
    pthread_once(&once, probe);
    return override[0] ? override : NULL;
}
