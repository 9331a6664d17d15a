/* pack.c — sub-byte code packing: the bytes qlab counts are the bytes it stores.
 * Layout: code i occupies bits [i*b, i*b + b) of the little-endian bit stream (LSB first),
 * as a b-bit two's-complement field; b = 8 is plain int8, b = 16 little-endian int16. */
#include "qlab-quant.h"

#include <errno.h>
#include <string.h>

int qlab_pack_codes(const int16_t *codes, size_t n, int bits, uint8_t *out)
{
    int32_t qmin, qmax;
    if (qlab_qrange(bits, &qmin, &qmax) < 0 || (n && (!codes || !out)))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (codes[i] < qmin || codes[i] > qmax)
            return -EINVAL;
    if (bits == 16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t u = (uint16_t)codes[i];
            out[2 * i] = (uint8_t)u;
            out[2 * i + 1] = (uint8_t)(u >> 8);
        }
        return 0;
    }
    const uint32_t mask = (1u << bits) - 1;
    uint64_t acc = 0;
    int nacc = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= (uint64_t)((uint32_t)(int32_t)codes[i] & mask) << nacc;
        nacc += bits;
        while (nacc >= 8) {
            out[o++] = (uint8_t)acc;
            acc >>= 8;
            nacc -= 8;
        }
    }
    if (nacc > 0)
        out[o++] = (uint8_t)acc;
    return 0;
}

int qlab_unpack_codes(const uint8_t *in, size_t n, int bits, int16_t *codes)
{
    int32_t qmin, qmax;
    if (qlab_qrange(bits, &qmin, &qmax) < 0 || (n && (!codes || !in)))
        return -EINVAL;
    if (bits == 16) {
        for (size_t i = 0; i < n; i++)
            codes[i] = (int16_t)(uint16_t)(in[2 * i] | (in[2 * i + 1] << 8));
        return 0;
    }
    const uint32_t mask = (1u << bits) - 1, sign = 1u << (bits - 1);
    uint64_t acc = 0;
    int nacc = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        while (nacc < bits) {
            acc |= (uint64_t)in[o++] << nacc;
            nacc += 8;
        }
        uint32_t u = (uint32_t)acc & mask;
        acc >>= bits;
        nacc -= bits;
        /* Sign-extend the b-bit field: (u ^ sign) - sign. */
        codes[i] = (int16_t)((int32_t)(u ^ sign) - (int32_t)sign);
    }
    return 0;
}
