/* conv.c — which FP32 convolution kernel runs, and the plans the direct kernels take.
 *
 * Levels: BLAS (im2col + OpenBLAS sgemm, everywhere), AVX2 and AVX-512, from the core's
 * CPU flags (daemon/core/cpu.c: cpuid + xgetbv, read once). QLAB_CPU caps the level with
 * the names the other kernels use: "scalar" -> BLAS, "avx2" / "avxvnni" -> AVX2. */
#include "model-private.h"

#include "cpu-private.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


static const char *const level_names[QLAB_CONV_LEVELS] = {
    [QLAB_CONV_BLAS] = "blas",
    [QLAB_CONV_AVX2] = "avx2",
    [QLAB_CONV_AVX512] = "avx512",
};

static unsigned g_hw = 1u << QLAB_CONV_BLAS;   /* bit i: level i usable */
static qlab_conv_level g_best = QLAB_CONV_BLAS;
static int g_forced = -1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Levels from the core's CPU flags: detected ones for "supported", the QLAB_CPU-capped
 * ones for the default. */
static unsigned levels(unsigned flags)
{
    unsigned set = 1u << QLAB_CONV_BLAS;
#ifdef QLAB_CONV_HAVE_AVX2
    if (flags & QLAB_CPU_FLAG_AVX2)
        set |= 1u << QLAB_CONV_AVX2;
#endif
#ifdef QLAB_CONV_HAVE_AVX512
    if ((flags & QLAB_CPU_FLAG_AVX2) && (flags & QLAB_CPU_FLAG_AVX512))
        set |= 1u << QLAB_CONV_AVX512;
#endif
    return set;
}

static void init(void)
{
    g_hw = levels(qlab_cpu_flags_detected());
    const unsigned capped = levels(qlab_cpu_flags());
    for (int i = 0; i < QLAB_CONV_LEVELS; i++)
        if (capped & (1u << i))
            g_best = (qlab_conv_level)i;
}

const char *qlab_conv_level_name(qlab_conv_level level)
{
    return (unsigned)level < QLAB_CONV_LEVELS ? level_names[level] : "?";
}

int qlab_conv_level_supported(qlab_conv_level level)
{
    pthread_once(&g_once, init);
    return (unsigned)level < QLAB_CONV_LEVELS && (g_hw & (1u << level));
}

qlab_conv_level qlab_conv_level_current(void)
{
    pthread_once(&g_once, init);
    const int f = __atomic_load_n(&g_forced, __ATOMIC_RELAXED);
    return f < 0 ? g_best : (qlab_conv_level)f;
}

int qlab_conv_set_level(qlab_conv_level level)
{
    if (!qlab_conv_level_supported(level))
        return -ENOTSUP;
    __atomic_store_n(&g_forced, (int)level, __ATOMIC_RELAXED);
    return 0;
}

const char *qlab_model_conv_kernel(void)
{
    return qlab_conv_level_name(qlab_conv_level_current());
}

qlab_conv_fn qlab_conv_kernel(qlab_conv_level level)
{
    switch (level) {
#ifdef QLAB_CONV_HAVE_AVX2
    case QLAB_CONV_AVX2:
        return qlab_conv_direct_avx2;
#endif
#ifdef QLAB_CONV_HAVE_AVX512
    case QLAB_CONV_AVX512:
        return qlab_conv_direct_avx512;
#endif
    default:
        return NULL;
    }
}

int qlab_conv_plan_init(qlab_conv_plan *p, const qlab_layer *l, const float *w,
                        const float *bias, int relu, const qlab_layer *pool)
{
    memset(p, 0, sizeof *p);
    p->c = l->in_c;
    p->h = l->in_h;
    p->w = l->in_w;
    p->pad = l->padding;
    p->stride = l->stride;
    p->kh = l->kh;
    p->kw = l->kw;
    p->o = l->rows;
    p->op = (l->rows + 15) / 16 * 16;
    p->oh = l->out_h;
    p->ow = l->out_w;
    p->relu = relu;
    if (pool) {
        p->pool_k = pool->kernel;
        p->pool_s = pool->stride;
        p->pool_oh = pool->out_h;
        p->pool_ow = pool->out_w;
    }
    const size_t k = (size_t)p->kh * p->kw * p->c, op = (size_t)p->op;
    p->weight = calloc(k * op, sizeof *p->weight);
    p->bias = calloc(op, sizeof *p->bias);
    if (!p->weight || !p->bias) {
        qlab_conv_plan_clear(p);
        return -ENOMEM;
    }
    for (int oc = 0; oc < p->o; oc++)
        for (int ci = 0; ci < p->c; ci++)
            for (int ki = 0; ki < p->kh; ki++)
                for (int kj = 0; kj < p->kw; kj++)
                    p->weight[(((size_t)ki * p->kw + kj) * p->c + ci) * op + oc] =
                        w[(((size_t)oc * p->c + ci) * p->kh + ki) * p->kw + kj];
    if (bias)
        memcpy(p->bias, bias, (size_t)p->o * sizeof *bias);
    return 0;
}

void qlab_conv_plan_clear(qlab_conv_plan *p)
{
    free(p->weight);
    free(p->bias);
    p->weight = p->bias = NULL;
}

size_t qlab_conv_plan_tmp_floats(const qlab_conv_plan *p)
{
    return (size_t)p->oh * p->ow * p->op;
}

size_t qlab_conv_plan_pad_floats(const qlab_conv_plan *p)
{
    return (size_t)(p->h + 2 * p->pad) * (p->w + 2 * p->pad) * p->c;
}
