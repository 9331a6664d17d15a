/* store-test-util.h — helpers shared by the store tests (temporary databases, runs). */
#pragma once

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qlab-store.h"

/* A fresh folder under $TMPDIR holding test.db; removed by tmpdb_remove. */
static inline void tmpdb_path(char *path, size_t size, char *dir, size_t dsize)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, dsize, "%s/qlab-store-XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, size, "%s/test.db", dir);
}

static inline void tmpdb_remove(const char *dir)
{
    const char *ext[] = { "", "-wal", "-shm", "-journal" };
    char p[512];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/test.db%s", dir, ext[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Run i of a made-up grid: bits 2 + i % 7, distinct configuration strings. */
static inline void make_run(qlab_run_config *c, int i)
{
    memset(c, 0, sizeof *c);
    c->weights.bits = 2 + i % 7;
    c->weights.scheme = (i / 7) % 2 ? QLAB_SCHEME_ASYMMETRIC : QLAB_SCHEME_SYMMETRIC;
    c->weights.granularity = QLAB_GRAN_GROUP;
    c->weights.group_size = 32;
    c->weights.calibration = QLAB_CALIB_PERCENTILE;
    c->weights.percentile = 99.9;
    char buf[64];
    snprintf(buf, sizeof buf, "run-%d", i);
    c->config = strdup(buf);
    snprintf(c->config_hash, sizeof c->config_hash, "%016x", 0x1000 + i);
}

static inline int close_to(double a, double b, double tol)
{
    return fabs(a - b) <= tol;
}
