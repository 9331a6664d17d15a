/* cpu.c — run-time CPU detection (as dav1d's src/x86/cpu.c): cpuid says what the core
 * implements, xgetbv says whether the OS saves the YMM registers; AVX2 is usable only when
 * both agree. Read once; QLAB_CPU=scalar|avx2 lowers the level for comparisons. */
#include "cpu-private.h"
#include "qlab-quant.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    /* Encoded as an instruction so no -mxsave is needed in this file. */
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static unsigned detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12;
    if ((c & (osxsave | avx | fma)) != (osxsave | avx | fma))
        return 0;
    /* XCR0 bits 1 (SSE) and 2 (AVX upper halves) must both be enabled by the OS. */
    if ((xgetbv0() & 6) != 6)
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 5)))
        return 0;
    /* AVX512F (CPUID.7.EBX[16]) with XCR0 bits 5-7 (opmask, ZMM upper halves, ZMM16-31) */
    return QLAB_CPU_FLAG_AVX2 |
           ((b & (1u << 16)) && (xgetbv0() & 0xE6) == 0xE6 ? QLAB_CPU_FLAG_AVX512 : 0);
}
#else
static unsigned detect(void)
{
    return 0;
}
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static unsigned g_detected, g_flags;

static void init_flags(void)
{
    g_detected = detect();
    g_flags = g_detected;
    const char *s = getenv("QLAB_CPU");
    if (s && !strcmp(s, "scalar"))
        g_flags = 0;
    else if (s && (!strcmp(s, "avx2") || !strcmp(s, "avxvnni")))
        g_flags &= QLAB_CPU_FLAG_AVX2;
}

unsigned qlab_cpu_flags(void)
{
    pthread_once(&g_once, init_flags);
    return g_flags;
}

unsigned qlab_cpu_flags_detected(void)
{
    pthread_once(&g_once, init_flags);
    return g_detected;
}

const char *qlab_cpu_flags_name(unsigned flags)
{
    return (flags & QLAB_CPU_FLAG_AVX2) ? "avx2" : "scalar";
}

const char *qlab_cpu_level_name(void)
{
    return qlab_cpu_flags_name(qlab_cpu_flags());
}
