/* cpu-private.h — CPU feature flags, read once (cpuid and xgetbv), masked by QLAB_CPU. */
#pragma once

enum {
    QLAB_CPU_FLAG_AVX2 = 1u << 0,   /* AVX2 + FMA + OS-enabled YMM state */
    QLAB_CPU_FLAG_AVX512 = 1u << 1, /* AVX512F + OS-enabled opmask/ZMM state (FP32 conv) */
};

/* Flags the kernels may use: detected features, limited by QLAB_CPU=scalar|avx2 (avxvnni
 * also stops at AVX2; other values leave everything detected). */
unsigned qlab_cpu_flags(void);

/* Detected features, ignoring QLAB_CPU (the checkasm test runs every level it can). */
unsigned qlab_cpu_flags_detected(void);

/* Name of the quantization kernels' level in flags: "avx2" or "scalar" (they have no
 * AVX-512 code; the flag serves the model library's convolution). */
const char *qlab_cpu_flags_name(unsigned flags);
