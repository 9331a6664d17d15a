/* fuzz-npy.c — libFuzzer target for the .npy reader, both the copying and the mapping
 * entry points. Run with ASAN_OPTIONS=allocator_may_return_null=1 to explore past the
 * allocation-size finding in crashes/npy (the reader allocates what the header's shape
 * asks before checking that the file holds that much). */
#include <stddef.h>
#include <errno.h>
#include <stdint.h>

#include "fuzz-memfile.h"
#include "qlab-npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const qlab_npy *n)
{
    size_t prod = 1;
    for (int d = 0; d < n->ndim; d++)
        prod *= n->shape[d];
    if (n->ndim < 1 || n->ndim > QLAB_NPY_MAX_DIMS || prod != n->n)
        __builtin_trap();
    volatile float sink = 0.0f;
    if (n->n)
        sink += n->data[0] + n->data[n->n - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_memfile f;
    const char *path = fuzz_memfile_set(&f, "fuzz.npy", data, size);
    qlab_npy a = {0}, b = {0};
    qlab_err err = {0};
    int ra = qlab_npy_read(path, &a, &err);
    if (ra == 0)
        check(&a);
    else if (err.msg[0] == '\0' && ra != -ENOMEM)
        __builtin_trap(); /* every failure but ENOMEM must say what is wrong */
    qlab_err_clear(&err);
    int rb = qlab_npy_map(path, &b, &err);
    if (rb == 0)
        check(&b);
    /* both entry points must agree on what is a valid file */
    if ((ra == 0) != (rb == 0))
        __builtin_trap();
    qlab_npy_free(&a);
    qlab_npy_free(&b);
    return 0;
}
