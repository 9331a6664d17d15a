/* fuzz-npy.c — libFuzzer target for the .npy reader, both the copying and the mapping
 * entry points.
 *
 * The reader allocates what a header's shape asks before checking that the file holds that
 * much (crashes/npy/huge-shape-f8-alloc), so almost any mutation of a shape stops the
 * fuzzer there. With FUZZ_ALLOC_CAP_MB set, the reader's malloc and posix_memalign calls
 * (linked with -Wl,--wrap=) fail above that size, as on a machine out of memory, and the
 * fuzzer explores past that one finding; without it they behave as usual, so the known
 * crash still reproduces. */
#include <stddef.h>
#include <errno.h>
#include <stdint.h>

#include "fuzz-memfile.h"
#include "qlab-npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

static size_t alloc_cap(void)
{
    static size_t cap = 1;   /* 1: not read yet; 0: no cap */
    if (cap == 1) {
        const char *s = getenv("FUZZ_ALLOC_CAP_MB");
        cap = s ? strtoull(s, NULL, 10) << 20 : 0;
    }
    return cap;
}

void *__wrap_malloc(size_t n)
{
    if (alloc_cap() && n > alloc_cap())
        return NULL;
    return __real_malloc(n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    if (alloc_cap() && n > alloc_cap())
        return ENOMEM;
    return __real_posix_memalign(p, align, n);
}

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
