/* cpu-private.h — CPU feature flags, read once (cpuid and xgetbv), masked by QLAB_CPU. */
#pragma once

enum {
    QLAB_CPU_FLAG_AVX2 = 1u << 0,   /* AVX2 + FMA + OS-enabled YMM state */
};

/* Flags the kernels may use: detected features, limited by QLAB_CPU=scalar|avx2. */
unsigned qlab_cpu_flags(void);

/* Detected features, ignoring QLAB_CPU (the checkasm test runs every level it can). */
unsigned qlab_cpu_flags_detected(void);

/* Name of the best level in flags: "avx2" or "scalar". */
const char *qlab_cpu_flags_name(unsigned flags);
