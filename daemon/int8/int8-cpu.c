/* int8-cpu.c — which int8 kernel level runs: cpuid + xgetbv read once, QLAB_CPU lowers it.
 *
 * AVX2 needs CPUID.7.EBX[5] and the OS saving YMM state (XCR0 bits 1 and 2, checked with
 * xgetbv after CPUID.1.ECX.OSXSAVE); AVX-VNNI is CPUID.(7,1).EAX[4] on top of that;
 * AVX512-VNNI needs AVX512F/BW/VL (CPUID.7.EBX[16,30,31]), VNNI (CPUID.7.ECX[11]) and
 * the opmask/ZMM state (XCR0 bits 5-7); AMX is described at amx_permission. The levels
 * are a set, not a ladder: a CPU can have AVX512-VNNI without AVX-VNNI (Cascade Lake, Ice
 * Lake). */
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-int8.h"

#ifdef QLAB_INT8_HAVE_AMX
#include <sys/syscall.h>
#include <unistd.h>
#endif

static const char *const isa_names[QLAB_INT8_ISA_COUNT] = {
    [QLAB_INT8_SCALAR] = "scalar",
    [QLAB_INT8_AVX2] = "avx2",
    [QLAB_INT8_AVXVNNI] = "avxvnni",
    [QLAB_INT8_AVX512VNNI] = "avx512vnni",
    [QLAB_INT8_AMX] = "amx",
};

static unsigned g_hw;               /* bit i: level i usable */
static qlab_int8_isa g_best;        /* after QLAB_CPU */
static int g_current = -1;          /* set by qlab_int8_set_isa, else g_best */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

const char *qlab_int8_isa_name(qlab_int8_isa isa)
{
    return (unsigned)isa < QLAB_INT8_ISA_COUNT ? isa_names[isa] : "?";
}

static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

#ifdef QLAB_INT8_HAVE_AMX
/* Linux keeps AMX's 8 KiB of tile data off until a process asks (arch/x86/include/uapi/
 * asm/prctl.h: ARCH_REQ_XCOMP_PERM 0x1023, XFEATURE_XTILEDATA 18); it applies to every
 * thread of the process, present and future. */
static int amx_permission(void)
{
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}
#endif

static unsigned detect(void)
{
    unsigned set = 1u << QLAB_INT8_SCALAR;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return set;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
        return set;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX2))
        return set;
    unsigned ebx7 = b, ecx7 = c, edx7 = d;
#ifdef QLAB_INT8_HAVE_AVX2
    set |= 1u << QLAB_INT8_AVX2;
#endif
#ifdef QLAB_INT8_HAVE_AVXVNNI
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)))
        set |= 1u << QLAB_INT8_AVXVNNI;
#endif
#ifdef QLAB_INT8_HAVE_AVX512VNNI
    unsigned need = (1u << 16) | (1u << 30) | (1u << 31);
    if ((xcr0 & 0xE6) == 0xE6 && (ebx7 & need) == need && (ecx7 & (1u << 11)))
        set |= 1u << QLAB_INT8_AVX512VNNI;
#endif
#ifdef QLAB_INT8_HAVE_AMX
    /* AMX-TILE and AMX-INT8 (CPUID.7.EDX[24, 25]), TILECFG and TILEDATA state enabled
     * (XCR0 bits 17, 18), and the kernel's leave to use the tile data; the epilogue is
     * the AVX512-VNNI level's, so that level must be there too. */
    if ((set & (1u << QLAB_INT8_AVX512VNNI)) && (edx7 & (3u << 24)) == (3u << 24) &&
        (xcr0 & 0x60000) == 0x60000 && amx_permission())
        set |= 1u << QLAB_INT8_AMX;
#endif
    (void)ebx7;
    (void)ecx7;
    (void)edx7;
    return set;
}

static void init(void)
{
    g_hw = detect();
    int cap = QLAB_INT8_ISA_COUNT - 1;
    const char *env = getenv("QLAB_CPU");
    if (env && *env)
        for (int i = 0; i < QLAB_INT8_ISA_COUNT; i++)
            if (strcmp(env, isa_names[i]) == 0)
                cap = i;
    g_best = QLAB_INT8_SCALAR;
    for (int i = 0; i <= cap; i++)
        if (g_hw & (1u << i))
            g_best = (qlab_int8_isa)i;
}

qlab_int8_isa qlab_int8_isa_best(void)
{
    pthread_once(&g_once, init);
    return g_best;
}

int qlab_int8_isa_supported(qlab_int8_isa isa)
{
    pthread_once(&g_once, init);
    return (unsigned)isa < QLAB_INT8_ISA_COUNT && (g_hw & (1u << isa));
}

int qlab_int8_set_isa(qlab_int8_isa isa)
{
    if (!qlab_int8_isa_supported(isa))
        return -ENOTSUP;
    __atomic_store_n(&g_current, (int)isa, __ATOMIC_RELAXED);
    return 0;
}

qlab_int8_isa qlab_int8_isa_current(void)
{
    pthread_once(&g_once, init);
    int cur = __atomic_load_n(&g_current, __ATOMIC_RELAXED);
    return cur < 0 ? g_best : (qlab_int8_isa)cur;
}
