/* int8-layers.c — the non-GEMM int8 layers on channels-last images (see qlab-int8.h). */
#include <string.h>

#include "qlab-int8.h"

void qlab_pad_hwc_s8(const int8_t *img, size_t h, size_t w, size_t c, size_t pad,
                     int8_t pad_value, int8_t *out)
{
    size_t wp = w + 2 * pad;
    memset(out, pad_value, pad * wp * c);
    memset(out + (pad + h) * wp * c, pad_value, pad * wp * c);
    for (size_t y = 0; y < h; y++) {
        int8_t *row = out + (pad + y) * wp * c;
        memset(row, pad_value, pad * c);
        memcpy(row + pad * c, img + y * w * c, w * c);
        memset(row + (pad + w) * c, pad_value, pad * c);
    }
}

void qlab_im2col_hwc_s8(const int8_t *img, size_t h, size_t w, size_t c, size_t kh,
                        size_t kw, size_t stride, int8_t *cols, size_t ld)
{
    size_t oh = (h - kh) / stride + 1, ow = (w - kw) / stride + 1;
    size_t run = kw * c;    /* the kw pixels of one kernel row are contiguous in HWC */
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++, cols += ld) {
            int8_t *d = cols;
            for (size_t ky = 0; ky < kh; ky++, d += run) {
                const int8_t *s = img + ((oy * stride + ky) * w + ox * stride) * c;
                /* 16-byte copies in increasing address order: the overshoot of one copy
                 * is overwritten by the next one, or lands in the row's tail / slack */
                for (size_t k = 0; k < run; k += 16)
                    memcpy(d + k, s + k, 16);
            }
        }
}

void qlab_maxpool_hwc_s8(const int8_t *in, size_t h, size_t w, size_t c, size_t k,
                         size_t stride, int8_t *out)
{
    size_t oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++, out += c) {
            memcpy(out, in + (oy * stride * w + ox * stride) * c, c);
            for (size_t ky = 0; ky < k; ky++)
                for (size_t kx = 0; kx < k; kx++) {
                    const int8_t *p = in + ((oy * stride + ky) * w + ox * stride + kx) * c;
                    for (size_t ch = 0; ch < c; ch++)
                        out[ch] = p[ch] > out[ch] ? p[ch] : out[ch];
                }
        }
}

void qlab_relu_s8(int8_t *x, size_t n, int8_t zp)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] < zp ? zp : x[i];
}

void qlab_maxpool_hwc_u8(const uint8_t *in, size_t h, size_t w, size_t c, size_t k,
                         size_t stride, uint8_t *out)
{
    size_t oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++, out += c) {
            /* restrict: the output never overlaps the input, so the channel loop
             * vectorises (byte max) instead of reloading out[] after every store */
            uint8_t *restrict d = out;
            memcpy(d, in + (oy * stride * w + ox * stride) * c, c);
            for (size_t ky = 0; ky < k; ky++)
                for (size_t kx = 0; kx < k; kx++) {
                    const uint8_t *restrict p =
                        in + ((oy * stride + ky) * w + ox * stride + kx) * c;
                    for (size_t ch = 0; ch < c; ch++)
                        d[ch] = p[ch] > d[ch] ? p[ch] : d[ch];
                }
        }
}

void qlab_relu_u8(uint8_t *x, size_t n, uint8_t zp)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] < zp ? zp : x[i];
}
