/* dsp-init.c — the x86 rung of the dispatch ladder. Compiled without -mavx2: it only
 * stores pointers to kernels built in the AVX2 library. */
#include "../cpu-private.h"
#include "../dsp-private.h"
#include "dsp-avx2.h"

void qlab_quant_dsp_init_x86(qlab_quant_dsp *c, unsigned flags)
{
    if (!(flags & QLAB_CPU_FLAG_AVX2))
        return;
    c->quantize = qlab_quantize_f32_s16_avx2;
    c->dequantize = qlab_dequantize_s16_f32_avx2;
    c->fake_quant = qlab_fake_quant_f32_avx2;
    c->minmax = qlab_minmax_f32_avx2;
    c->absmax = qlab_absmax_f32_avx2;
    c->abs_hist = qlab_abs_hist_f32_avx2;
    c->key_scan = qlab_key_scan_f32_avx2;
}
