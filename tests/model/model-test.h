/* model-test.h — small helpers shared by the tests of the model library. */
#pragma once

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-config.h"

/* Path of a file under tests/model/fixtures (QLAB_SOURCE_ROOT from the test environment,
 * else the configured source root). */
static inline const char *fixture(const char *name)
{
    static _Thread_local char buf[4][4096];
    static _Thread_local int k;
    const char *root = getenv("QLAB_SOURCE_ROOT");
    if (!root || !*root)
        root = QLAB_SOURCE_ROOT;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/tests/model/fixtures/%s", root, name);
    return b;
}

static inline const char *data_file(const char *name)
{
    static _Thread_local char buf[2][4096];
    static _Thread_local int k;
    const char *root = getenv("QLAB_SOURCE_ROOT");
    if (!root || !*root)
        root = QLAB_SOURCE_ROOT;
    char *b = buf[k++ & 1];
    snprintf(b, sizeof buf[0], "%s/data/%s", root, name);
    return b;
}

/* |a - b| <= atol + rtol * |b| for every element; prints the first mismatch. */
static inline int floats_close(const float *a, const float *b, size_t n, double atol, double rtol)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            fprintf(stderr, "element %zu: %.9g vs %.9g\n", i, (double)a[i], (double)b[i]);
            return 0;
        }
    }
    return 1;
}

/* Value of `key` in tests/model/fixtures/reference.txt ("key value" lines); NAN if absent. */
static inline double reference_value(const char *key)
{
    FILE *f = fopen(fixture("reference.txt"), "r");
    if (!f)
        return NAN;
    char line[512], k[400];
    double v, out = NAN;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        if (sscanf(line, "%399s %lf", k, &v) == 2 && strcmp(k, key) == 0) {
            out = v;
            break;
        }
    }
    fclose(f);
    return out;
}
