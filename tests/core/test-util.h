/* test-util.h — helpers shared by the core tests (cmocka 1.1.5 has no float asserts). */
#pragma once

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "qlab-config.h"

/* |a - b| <= tol * max(1, |b|), with a readable failure message. */
#define assert_close(a, b, tol) do {                                                     \
        double a_ = (double)(a), b_ = (double)(b);                                        \
        if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_))))                              \
            fail_msg("%s = %.17g, expected %.17g (tol %g)", #a, a_, b_, (double)(tol));   \
    } while (0)

/* Same float bits (so -0 != +0 and NaN == the same NaN). */
static inline int same_bits(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

/* Path of a file in tests/core/fixtures (QLAB_SOURCE_ROOT from test_env, else configure). */
static inline const char *fixture(const char *name)
{
    static char buf[4096];
    const char *root = getenv("QLAB_SOURCE_ROOT");
    snprintf(buf, sizeof(buf), "%s/tests/core/fixtures/%s", root ? root : QLAB_SOURCE_ROOT,
             name);
    return buf;
}

/* Whole file in memory (caller frees), or NULL. */
static inline void *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* xorshift64*: deterministic test data. */
static inline uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Approximately N(0, 1) (sum of 4 uniforms, scaled). */
static inline float rng_normal(uint64_t *s)
{
    double u = 0;
    for (int i = 0; i < 4; i++)
        u += (double)(rng_next(s) >> 11) * 0x1.0p-53;
    return (float)((u - 2.0) * 1.7320508075688772);
}
