/* src/base/cpu.c -- the CPU feature probe and the $ONEBIT_KERNEL override
 * (see cpu.h). Both are read once under pthread_once; any thread. */
#include "config.h"
#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned features;
static char override[64];

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
