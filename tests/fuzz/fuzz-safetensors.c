/* fuzz-safetensors.c — libFuzzer target for the safetensors reader (header, offsets,
 * dtypes, conversion, finiteness) and the qlab metadata (layer list) parser. The first
 * byte picks the flags; the rest is the file. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz-memfile.h"
#include "qlab-model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_memfile f;
    if (size < 1)
        return 0;
    unsigned flags = (data[0] & 1) ? QLAB_ST_ALLOW_INT : 0;
    const char *path = fuzz_memfile_set(&f, "fuzz.safetensors", data + 1, size - 1);
    qlab_safetensors *st = NULL;
    qlab_err err = {0};
    if (qlab_st_open(&st, path, flags, &err) == 0) {
        volatile float sink = 0.0f;
        for (size_t i = 0; i < st->ntensors; i++) {
            const qlab_tensor *t = &st->tensors[i];
            if (qlab_st_find(st, t->name) == NULL)
                __builtin_trap();
            /* touch the first and last element: the reader promised they are mapped */
            if (t->f32 && t->numel)
                sink += t->f32[0] + t->f32[t->numel - 1];
            if (t->nbytes)
                sink += ((const uint8_t *)t->raw)[t->nbytes - 1];
        }
        (void)sink;
        qlab_model_spec spec = {0};
        if (qlab_model_spec_from_metadata(&spec, st, &err) == 0)
            qlab_model_spec_clear(&spec);
        qlab_st_close(st);
    } else if (err.msg[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
