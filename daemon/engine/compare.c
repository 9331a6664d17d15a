/* compare.c — how far one float array is from another: the per-layer output metrics.
 *
 * The engine runs a fixed batch of test images through the FP32 model and through the
 * quantized one, and compares each layer's output here: MSE, SQNR, cosine, max error and
 * an error histogram (quantized minus reference) over [-max_abs_error, +max_abs_error].
 * Sums are accumulated in double in index order, so the numbers do not depend on threads.
 */
#include "engine-private.h"

#include <math.h>
#include <string.h>

int qlab_compare_f32(const float *ref, const float *got, size_t n, int nbins, uint64_t *hist,
                     qlab_compare *out)
{
    if (!ref || !got || !out || (nbins > 0 && !hist))
        return -EINVAL;
    double se = 0, sx = 0, sy = 0, sxy = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double x = ref[i], y = got[i], d = y - x;
        if (!isfinite(y))
            return -EDOM;
        se += d * d;
        sx += x * x;
        sy += y * y;
        sxy += x * y;
        if (fabs(d) > mx)
            mx = fabs(d);
    }
    qlab_compare c = { 0 };
    c.n = n;
    c.mse = n ? se / (double)n : 0.0;
    c.sqnr_db = se > 0 ? 10.0 * log10(sx / se) : INFINITY;
    if (sx == 0 && sy == 0)
        c.cosine = 1.0;
    else if (sx == 0 || sy == 0)
        c.cosine = 0.0;
    else
        c.cosine = sxy / (sqrt(sx) * sqrt(sy));
    c.max_abs_error = mx;
    c.lo = -mx;
    c.hi = mx;
    if (nbins > 0) {
        memset(hist, 0, (size_t)nbins * sizeof(*hist));
        double width = (c.hi - c.lo) / nbins;
        for (size_t i = 0; i < n; i++) {
            double d = (double)got[i] - (double)ref[i];
            long b = width > 0 ? (long)floor((d - c.lo) / width) : nbins / 2;
            if (b < 0)
                b = 0;
            if (b >= nbins)
                b = nbins - 1;
            hist[b]++;
        }
    }
    *out = c;
    return 0;
}
