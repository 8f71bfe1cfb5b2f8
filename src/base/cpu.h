/* src/base/cpu.h -- what the CPU can run, probed once (cpuid through the
 * compiler's builtins; for AMX also xgetbv and Linux's permission request), and the $ONEBIT_KERNEL override, read once. Both are
 * constant for the process after the first call (pthread_once): any thread
 * may call anything here at any time. */
#ifndef OB_CPU_H
#define OB_CPU_H

enum {
    CPU_AVX2 = 1u << 0,
    CPU_FMA = 1u << 1,
    CPU_AVX512F = 1u << 2,
    CPU_AVX512BW = 1u << 3,
    CPU_AVX512VL = 1u << 4,
    CPU_AVX512DQ = 1u << 5,
    CPU_F16C = 1u << 6,
    CPU_AVX512BF16 = 1u << 7, /* vdpbf16ps (x86/avx512.c's BF16 GEMV) */
    CPU_AVX512VNNI = 1u << 8, /* vpdpbusd (x86/avx512.c's avx512vnni int8 kernel) */
    /* AMX-TILE and AMX-INT8 (x86/amx.c's avx512amx kernel), usable: cpuid
     * 7.0 edx bits 24-25, the OS enables the tile state in XCR0 (bits 17-18)
     * and Linux granted this process XTILEDATA (arch_prctl
     * ARCH_REQ_XCOMP_PERM, asked once by the probe); never set elsewhere */
    CPU_AMX_INT8 = 1u << 9,
};
/* what the x86 kernels need (x86/avx2.c, x86/avx512.c) */
#define CPU_NEEDS_AVX2 (CPU_AVX2 | CPU_FMA)
#define CPU_NEEDS_AVX512 (CPU_AVX512F | CPU_AVX512BW | CPU_AVX512VL | CPU_AVX512DQ | CPU_FMA)

/* the CPU_* features of this CPU (0 on hosts without x86 kernels) */
unsigned cpu_features(void);
/* 1 if every feature in `needs` is there */
int cpu_has(unsigned needs);
/* $ONEBIT_KERNEL as it was at the first call, or NULL if unset or empty */
const char *cpu_kernel_override(void);

#endif
