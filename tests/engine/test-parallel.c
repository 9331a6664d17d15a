/* test-parallel.c — the fork-join pool every kernel uses (daemon/common/parallel.c):
 * each index is visited exactly once whatever n, grain, alignment and thread count;
 * chunk boundaries respect the alignment; nested calls run inline; several threads may
 * call at once. Also run under ThreadSanitizer (tests/tsan-suites.txt). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parallel.h"

struct visit {
    unsigned char *seen;
    size_t align, n;
    int bad_align;
    int nested_calls;
};

static void visit_fn(void *ctx, size_t b, size_t e, unsigned chunk)
{
    (void)chunk;
    struct visit *v = ctx;
    if (b % v->align != 0)
        __atomic_store_n(&v->bad_align, 1, __ATOMIC_RELAXED);
    for (size_t i = b; i < e; i++)
        v->seen[i]++;      /* chunks are disjoint: no two threads touch one byte */
}

static void check_cover(size_t n, size_t grain, size_t align, unsigned threads)
{
    qlab_set_threads(threads);
    struct visit v = { .seen = calloc(n + 1, 1), .align = align, .n = n };
    assert_non_null(v.seen);
    unsigned chunks = qlab_parallel_for(n, grain, align, visit_fn, &v);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v.seen[i], 1);
    assert_int_equal(v.bad_align, 0);
    if (n == 0)
        assert_int_equal(chunks, 0);
    else
        assert_true(chunks >= 1 && chunks <= threads);
    free(v.seen);
}

static void test_cover(void **state)
{
    (void)state;
    const size_t ns[] = { 0, 1, 2, 7, 8, 9, 63, 64, 65, 1023, 100000 };
    const size_t aligns[] = { 1, 8, 64 };
    for (unsigned t = 1; t <= 4; t++)
        for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
            for (size_t a = 0; a < 3; a++) {
                check_cover(ns[i], 1, aligns[a], t);
                check_cover(ns[i], 1000, aligns[a], t);
            }
}

static void nested_fn(void *ctx, size_t b, size_t e, unsigned chunk)
{
    (void)chunk;
    struct visit *v = ctx;
    /* A kernel called from inside a parallel region runs inline (one chunk). */
    struct visit inner = { .seen = calloc(100, 1), .align = 1, .n = 100 };
    unsigned c = qlab_parallel_for(100, 1, 1, visit_fn, &inner);
    if (c == 1)
        __atomic_add_fetch(&v->nested_calls, 1, __ATOMIC_RELAXED);
    free(inner.seen);
    visit_fn(ctx, b, e, chunk);
}

static void test_nested(void **state)
{
    (void)state;
    qlab_set_threads(2);
    struct visit v = { .seen = calloc(1000, 1), .align = 1, .n = 1000 };
    unsigned chunks = qlab_parallel_for(1000, 1, 1, nested_fn, &v);
    assert_int_equal(v.nested_calls, (int)chunks);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(v.seen[i], 1);
    free(v.seen);
}

static void *caller(void *arg)
{
    (void)arg;
    for (int k = 0; k < 50; k++) {
        struct visit v = { .seen = calloc(4096, 1), .align = 8, .n = 4096 };
        qlab_parallel_for(4096, 16, 8, visit_fn, &v);
        for (size_t i = 0; i < 4096; i++)
            if (v.seen[i] != 1)
                abort();
        free(v.seen);
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    (void)state;
    qlab_set_threads(2);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, caller, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
}

static void test_serial_flag(void **state)
{
    (void)state;
    qlab_set_threads(4);
    qlab_parallel_set_serial(1);
    struct visit v = { .seen = calloc(10000, 1), .align = 1, .n = 10000 };
    assert_int_equal(qlab_parallel_for(10000, 1, 1, visit_fn, &v), 1);
    qlab_parallel_set_serial(0);
    free(v.seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cover),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_serial_flag),
    };
    return cmocka_run_group_tests_name("parallel", tests, NULL, NULL);
}
