/* experiment-expand.c — the sweep's grid: every combination of the axes, de-duplicated by
 * configuration string, exclusions applied, each with its configuration hash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment-private.h"

/* A grid this many times larger than the run limit is refused before it is walked. */
#define MAX_COMBINATIONS ((size_t)QLAB_EXPERIMENT_MAX_RUNS * 64)

typedef struct seen {
    uint64_t *hash;             /* open addressing, 0 = empty slot */
    size_t cap;
} seen;

/* Returns 1 if h was new (and records it). Distinct strings with equal FNV-1a 64 hashes
 * would also collide in the database's UNIQUE(experiment_id, config_hash), so treating
 * them as one run here keeps the two consistent. */
static int seen_add(seen *s, uint64_t h)
{
    if (h == 0)
        h = 1;
    size_t i = (size_t)(h ^ (h >> 29)) & (s->cap - 1);
    while (s->hash[i]) {
        if (s->hash[i] == h)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->hash[i] = h;
    return 1;
}

static int excluded(const qlab_exp_exclude *x, const qlab_qconfig *w, int act_bits,
                    const qlab_qconfig *act)
{
    if ((x->set & QLAB_EXCL_BITS) && x->w.bits != w->bits)
        return 0;
    if ((x->set & QLAB_EXCL_SCHEME) && x->w.scheme != w->scheme)
        return 0;
    if ((x->set & QLAB_EXCL_GRANULARITY) &&
        (x->w.granularity != w->granularity ||
         (w->granularity == QLAB_GRAN_GROUP && x->w.group_size != w->group_size)))
        return 0;
    if ((x->set & QLAB_EXCL_CALIBRATION) &&
        (x->w.calibration != w->calibration ||
         (w->calibration == QLAB_CALIB_PERCENTILE && x->w.percentile != w->percentile)))
        return 0;
    if ((x->set & QLAB_EXCL_ACTIVATIONS) && x->act_bits != act_bits)
        return 0;
    if ((x->set & QLAB_EXCL_ACT_CALIBRATION) &&
        (act_bits == 0 || x->act.calibration != act->calibration ||
         (act->calibration == QLAB_CALIB_PERCENTILE && x->act.percentile != act->percentile)))
        return 0;
    return 1;
}

/* " overrides=fc1:fp32,fc3:bits=8/scheme=asymmetric" and the same as JSON. */
static int format_overrides(const qlab_experiment *e, char **text, char **json)
{
    size_t cap = 64 + e->n_overrides * 192;
    char *t = malloc(cap), *j = malloc(cap);
    size_t tl = 0, jl = 0;
    if (!t || !j) {
        free(t);
        free(j);
        return -ENOMEM;
    }
    t[0] = j[0] = '\0';
    if (e->n_overrides) {
        tl += (size_t)snprintf(t + tl, cap - tl, " overrides=");
        jl += (size_t)snprintf(j + jl, cap - jl, "{");
    }
    for (size_t i = 0; i < e->n_overrides; i++) {
        const qlab_exp_override *o = &e->overrides[i];
        char g[32], c[48];
        tl += (size_t)snprintf(t + tl, cap - tl, "%s%s:", i ? "," : "", o->layer);
        jl += (size_t)snprintf(j + jl, cap - jl, "%s\"%s\":", i ? "," : "", o->layer);
        if (o->fp32) {
            tl += (size_t)snprintf(t + tl, cap - tl, "fp32");
            jl += (size_t)snprintf(j + jl, cap - jl, "\"fp32\"");
            continue;
        }
        const char *sep = "";
        jl += (size_t)snprintf(j + jl, cap - jl, "{");
        if (o->bits) {
            tl += (size_t)snprintf(t + tl, cap - tl, "bits=%d", o->bits);
            jl += (size_t)snprintf(j + jl, cap - jl, "\"bits\":%d", o->bits);
            sep = "/";
        }
        if (o->has_scheme) {
            const char *s = o->cfg.scheme == QLAB_SCHEME_ASYMMETRIC ? "asymmetric"
                                                                    : "symmetric";
            tl += (size_t)snprintf(t + tl, cap - tl, "%sscheme=%s", sep, s);
            jl += (size_t)snprintf(j + jl, cap - jl, "%s\"scheme\":\"%s\"", *sep ? "," : "",
                                   s);
            sep = "/";
        }
        if (o->has_granularity) {
            qlab_exp_format_granularity(&o->cfg, g, sizeof g);
            tl += (size_t)snprintf(t + tl, cap - tl, "%sgranularity=%s", sep, g);
            jl += (size_t)snprintf(j + jl, cap - jl, "%s\"granularity\":\"%s\"",
                                   *sep ? "," : "", g);
            sep = "/";
        }
        if (o->has_calibration) {
            qlab_exp_format_calibration(&o->cfg, c, sizeof c);
            tl += (size_t)snprintf(t + tl, cap - tl, "%scalibration=%s", sep, c);
            jl += (size_t)snprintf(j + jl, cap - jl, "%s\"calibration\":\"%s\"",
                                   *sep ? "," : "", c);
        }
        jl += (size_t)snprintf(j + jl, cap - jl, "}");
    }
    if (e->n_overrides)
        snprintf(j + jl, cap - jl, "}");
    *text = t;
    *json = j;
    return 0;
}

void qlab_run_configs_free(qlab_run_config *runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++)
        qlab_run_config_clear(&runs[i]);
    free(runs);
}

/* Saturating product of the axis lengths. */
static size_t combinations(const qlab_experiment *e)
{
    size_t axes[] = { e->n_bits, e->n_schemes, e->n_granularities, e->n_calibrations,
                      e->n_act_bits, e->n_act_calibrations };
    size_t p = 1;
    for (size_t i = 0; i < sizeof axes / sizeof axes[0]; i++) {
        if (axes[i] && p > SIZE_MAX / axes[i])
            return SIZE_MAX;
        p *= axes[i];
    }
    return p;
}

int qlab_experiment_expand(const qlab_experiment *e, qlab_run_config **out, size_t *nout,
                           qlab_err *err)
{
    size_t total = combinations(e);
    if (total > MAX_COMBINATIONS)
        return qlab_experiment_error(e, err, -E2BIG, "sweep", "the sweep has %zu "
                                     "combinations, far more than the limit of %d runs",
                                     total, QLAB_EXPERIMENT_MAX_RUNS);
    char *otext, *ojson;
    if (format_overrides(e, &otext, &ojson) < 0)
        return qlab_err_set(err, -ENOMEM, "%s: out of memory", e->path);
    seen s = { .cap = 64 };
    while (s.cap < 2 * total)
        s.cap *= 2;
    s.hash = calloc(s.cap, sizeof *s.hash);
    size_t cap = total < QLAB_EXPERIMENT_MAX_RUNS ? total : QLAB_EXPERIMENT_MAX_RUNS;
    qlab_run_config *runs = calloc(cap ? cap : 1, sizeof *runs);
    unsigned char *used = calloc(e->n_excludes + 1, 1);
    size_t n = 0;
    int r = 0;
    if (!s.hash || !runs || !used) {
        r = qlab_err_set(err, -ENOMEM, "%s: out of memory", e->path);
        goto out;
    }
    for (size_t ib = 0; ib < e->n_bits; ib++)
    for (size_t is = 0; is < e->n_schemes; is++)
    for (size_t ig = 0; ig < e->n_granularities; ig++)
    for (size_t ic = 0; ic < e->n_calibrations; ic++)
    for (size_t ia = 0; ia < e->n_act_bits; ia++)
    for (size_t iac = 0; iac < e->n_act_calibrations; iac++) {
        qlab_qconfig w = { 0 }, act = { 0 };
        w.bits = e->bits[ib];
        w.scheme = e->schemes[is];
        w.granularity = e->granularities[ig].granularity;
        w.group_size = e->granularities[ig].group_size;
        w.calibration = e->calibrations[ic].calibration;
        w.percentile = e->calibrations[ic].percentile;
        int ab = e->act_bits[ia];
        act.bits = ab;
        act.scheme = QLAB_SCHEME_ASYMMETRIC;
        act.granularity = QLAB_GRAN_TENSOR;
        if (ab) {
            act.calibration = e->act_calibrations[iac].calibration;
            act.percentile = e->act_calibrations[iac].percentile;
        }
        int skip = 0;
        for (size_t x = 0; x < e->n_excludes; x++) {
            if (excluded(&e->excludes[x], &w, ab, &act)) {
                used[x] = 1;
                skip = 1;
            }
        }
        if (skip)
            continue;
        char g[32], c[48], ac[96] = "", buf[320], *config;
        qlab_exp_format_granularity(&w, g, sizeof g);
        qlab_exp_format_calibration(&w, c, sizeof c);
        if (ab) {
            char acal[48];
            qlab_exp_format_calibration(&act, acal, sizeof acal);
            snprintf(ac, sizeof ac, "int%d act_calibration=%s", ab, acal);
        }
        snprintf(buf, sizeof buf, "bits=%d scheme=%s granularity=%s calibration=%s "
                 "activations=%s", w.bits,
                 w.scheme == QLAB_SCHEME_ASYMMETRIC ? "asymmetric" : "symmetric", g, c,
                 ab ? ac : "fp32");
        if (asprintf(&config, "%s%s", buf, otext) < 0) {
            r = qlab_err_set(err, -ENOMEM, "%s: out of memory", e->path);
            goto out;
        }
        uint64_t h = qlab_fnv1a64(config, strlen(config));
        if (!seen_add(&s, h)) {
            free(config);
            continue;
        }
        if (n == QLAB_EXPERIMENT_MAX_RUNS) {
            free(config);
            r = qlab_experiment_error(e, err, -E2BIG, "sweep", "the sweep expands to more "
                                      "than the limit of %d runs", QLAB_EXPERIMENT_MAX_RUNS);
            goto out;
        }
        qlab_run_config *rc = &runs[n++];
        rc->weights = w;
        rc->act_bits = ab;
        rc->act = act;
        rc->config = config;
        snprintf(rc->config_hash, sizeof rc->config_hash, "%016llx", (unsigned long long)h);
        if (e->n_overrides && !(rc->overrides = strdup(ojson))) {
            r = qlab_err_set(err, -ENOMEM, "%s: out of memory", e->path);
            goto out;
        }
    }
    for (size_t x = 0; x < e->n_excludes; x++) {
        if (!used[x]) {
            r = qlab_experiment_error(e, err, -EINVAL, e->excludes[x].key_path,
                                      "this exclusion matches no run of the sweep");
            goto out;
        }
    }
    if (n == 0)
        r = qlab_experiment_error(e, err, -EINVAL, "exclude", "the exclusions leave no run");
out:
    free(s.hash);
    free(used);
    free(otext);
    free(ojson);
    if (r < 0) {
        qlab_run_configs_free(runs, n);
        return r;
    }
    *out = runs;
    *nout = n;
    return 0;
}
