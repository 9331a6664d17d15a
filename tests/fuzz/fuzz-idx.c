/* fuzz-idx.c — libFuzzer target for the IDX dataset reader (gzip or plain: zlib's gzread
 * passes plain files through). Input: a 2-byte little-endian split point, then the images
 * file and the labels file. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz-memfile.h"
#include "qlab-model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_memfile fi, fl;
    if (size < 2)
        return 0;
    size_t split = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (split > size)
        split = size;
    const char *ip = fuzz_memfile_set(&fi, "images", data, split);
    const char *lp = fuzz_memfile_set(&fl, "labels", data + split, size - split);
    qlab_dataset *ds = NULL;
    qlab_err err = {0};
    if (qlab_dataset_load(&ds, ip, lp, &err) == 0) {
        /* The images hold n * h * w bytes: dimensions whose product overflows must have
         * been refused (crashes/idx/dims-overflow: 2^22 x 2^21 x 2^21 wraps to 0). An empty
         * set (n == 0) is accepted today; the bad-input corpus reports that one. */
        size_t bytes = 0;
        if (ds->h < 0 || ds->w < 0 ||
            __builtin_mul_overflow(ds->n, (size_t)ds->h * (size_t)ds->w, &bytes) ||
            (ds->h && ds->w && (size_t)ds->h * (size_t)ds->w / (size_t)ds->w != (size_t)ds->h))
            __builtin_trap();
        volatile unsigned sink = 0;
        if (ds->n)
            sink += ds->labels[ds->n - 1];
        if (bytes)
            sink += ds->images[bytes - 1];
        (void)sink;
        qlab_dataset_free(ds);
    } else if (err.msg[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
