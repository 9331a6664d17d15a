/* qlab-plot-data.c — the frontier chart's data: names, normalisation (transformed x and
 * the Pareto front), formatting of bytes and runs, and nice tick positions. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-plot.h"

static const char *const scheme_names[QLAB_N_SCHEMES] = {"symmetric", "asymmetric"};
static const char *const gran_names[QLAB_N_GRANS] = {"tensor", "channel", "group"};
static const char *const calib_names[QLAB_N_CALIBS] = {"minmax", "percentile", "mse", "entropy"};

static int name_index(const char *const *names, int n, const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

const char *qlab_plot_scheme_name(int s)
{
    return s >= 0 && s < QLAB_N_SCHEMES ? scheme_names[s] : "?";
}
const char *qlab_plot_granularity_name(int g)
{
    return g >= 0 && g < QLAB_N_GRANS ? gran_names[g] : "?";
}
const char *qlab_plot_calibration_name(int c)
{
    return c >= 0 && c < QLAB_N_CALIBS ? calib_names[c] : "?";
}
int qlab_plot_scheme_from_name(const char *s)
{
    return name_index(scheme_names, QLAB_N_SCHEMES, s);
}
int qlab_plot_granularity_from_name(const char *s)
{
    return name_index(gran_names, QLAB_N_GRANS, s);
}
int qlab_plot_calibration_from_name(const char *s)
{
    return name_index(calib_names, QLAB_N_CALIBS, s);
}

void qlab_plot_data_init(qlab_plot_data *d)
{
    memset(d, 0, sizeof(*d));
    d->fp32_accuracy = NAN;
    qlab_plot_filter_init(&d->filter);
}

void qlab_plot_data_clear(qlab_plot_data *d)
{
    if (!d)
        return;
    free(d->points);
    free(d->tx);
    free(d->front);
    qlab_plot_data_init(d);
}

void qlab_plot_data_set_points(qlab_plot_data *d, qlab_plot_point *points, size_t n)
{
    free(d->points);
    free(d->tx);
    free(d->front);
    d->points = points;
    d->n = n;
    d->tx = NULL;
    d->front = NULL;
    d->n_front = d->n_visible = 0;
}

void qlab_plot_filter_init(qlab_plot_filter *f)
{
    *f = (qlab_plot_filter){0, 64, -1, -1, -1, -1};
}

void qlab_plot_data_apply_filter(qlab_plot_data *d, const qlab_plot_filter *f)
{
    d->filter = *f;
    for (size_t i = 0; i < d->n; i++) {
        qlab_plot_point *p = &d->points[i];
        int ok = p->bits >= f->bits_min && p->bits <= f->bits_max &&
                 (f->scheme < 0 || p->scheme == f->scheme) &&
                 (f->granularity < 0 || p->granularity == f->granularity) &&
                 (f->calibration < 0 || p->calibration == f->calibration) &&
                 (f->act_bits < 0 || p->act_bits == f->act_bits);
        p->flags = (uint8_t)(ok ? p->flags | QLAB_POINT_VISIBLE : p->flags & ~QLAB_POINT_VISIBLE);
    }
}

/* Sorting context for the front: qsort has no user pointer, so sort (x, accuracy, index)
 * records instead of indices. */
struct front_rec {
    double x, acc;
    size_t i;
};

static int cmp_front(const void *a, const void *b)
{
    const struct front_rec *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    if (p->acc != q->acc)
        return p->acc > q->acc ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

int qlab_plot_data_normalise(qlab_plot_data *d, enum qlab_plot_x x_mode, int log_x)
{
    d->x_mode = x_mode;
    d->log_x = log_x;
    free(d->tx);
    free(d->front);
    d->tx = NULL;
    d->front = NULL;
    d->n_front = d->n_visible = 0;
    if (d->n == 0)
        return 0;
    d->tx = malloc(d->n * sizeof(*d->tx));
    d->front = malloc(d->n * sizeof(*d->front));
    struct front_rec *rec = malloc(d->n * sizeof(*rec));
    if (!d->tx || !d->front || !rec) {
        free(rec);
        free(d->tx);
        free(d->front);
        d->tx = NULL;
        d->front = NULL;
        return -ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++) {
        qlab_plot_point *p = &d->points[i];
        double x = qlab_plot_point_x(p, x_mode);
        p->flags &= (uint8_t)~QLAB_POINT_FRONT;
        /* A point with no usable x (missing, or <= 0 on a log axis) is not drawn. */
        if (!isfinite(x) || (log_x && x <= 0) || !isfinite(p->accuracy)) {
            d->tx[i] = NAN;
            continue;
        }
        d->tx[i] = log_x ? log10(x) : x;
        if (!(p->flags & QLAB_POINT_VISIBLE))
            continue;
        rec[m++] = (struct front_rec){x, p->accuracy, i};
    }
    d->n_visible = m;
    qsort(rec, m, sizeof(*rec), cmp_front);
    /* Sweep by x: best_lt is the best accuracy among strictly smaller x; within a group of
     * equal x the best is the group's first record (sorted by accuracy, descending). A
     * point is on the front when acc > best_lt and acc equals its group's best. */
    double best_lt = -INFINITY;
    for (size_t k = 0; k < m;) {
        size_t e = k;
        while (e < m && rec[e].x == rec[k].x)
            e++;
        double group_best = rec[k].acc;
        if (group_best > best_lt) {
            for (size_t j = k; j < e && rec[j].acc == group_best; j++) {
                d->points[rec[j].i].flags |= QLAB_POINT_FRONT;
                d->front[d->n_front++] = rec[j].i;
            }
            best_lt = group_best;
        }
        k = e;
    }
    free(rec);
    return 0;
}

void qlab_plot_format_bytes(double b, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double a = fabs(b);
    while (a >= 1024 && u < 4) {
        a /= 1024;
        b /= 1024;
        u++;
    }
    if (u == 0 || a >= 100 || a == floor(a))
        snprintf(buf, len, "%.0f %s", b, units[u]);
    else if (a >= 10)
        snprintf(buf, len, "%.1f %s", b, units[u]);
    else
        snprintf(buf, len, "%.2f %s", b, units[u]);
}

void qlab_plot_point_describe(const qlab_plot_point *p, char *buf, size_t len)
{
    char gran[24], act[16], size[32];
    if (p->granularity == QLAB_GRAN_GROUP && p->group_size)
        snprintf(gran, sizeof(gran), "group:%u", p->group_size);
    else
        snprintf(gran, sizeof(gran), "%s", qlab_plot_granularity_name(p->granularity));
    if (p->act_bits)
        snprintf(act, sizeof(act), "int%u", p->act_bits);
    else
        snprintf(act, sizeof(act), "fp32");
    qlab_plot_format_bytes(p->bytes, size, sizeof(size));
    snprintf(buf, len, "run #%lld: %u-bit %s %s %s, act %s — %.2f%%, %s, %.2f bits/weight",
             (long long)p->run_id, p->bits, qlab_plot_scheme_name(p->scheme), gran,
             qlab_plot_calibration_name(p->calibration), act, 100.0 * p->accuracy, size, p->bpw);
}

/* 1, 2 or 5 times a power of ten, the smallest such step giving at most max ticks. */
static double nice_step(double span, size_t max)
{
    double raw = span / (double)(max > 1 ? max - 1 : 1);
    double p = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5, 10};
    for (size_t i = 0; i < 4; i++)
        if (mult[i] * p >= raw)
            return mult[i] * p;
    return 10 * p;
}

static size_t linear_ticks(double lo, double hi, double unit, double *out, size_t max)
{
    double step = nice_step((hi - lo) / unit, max) * unit;
    size_t n = 0;
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi * (1 + 1e-12) && n < max; t += step)
        out[n++] = fabs(t) < step * 1e-9 ? 0 : t;
    return n;
}

size_t qlab_plot_ticks(double lo, double hi, int log_scale, int bytes, double *out, size_t max)
{
    if (!(hi > lo) || max == 0 || !isfinite(lo) || !isfinite(hi))
        return 0;
    if (log_scale && lo > 0) {
        double base = bytes ? 2 : 10;
        double l0 = log(lo) / log(base), l1 = log(hi) / log(base);
        if (l1 - l0 >= (bytes ? 2 : 1)) {
            /* Powers of the base, every k-th one so at most max fit. */
            double k = ceil((floor(l1) - ceil(l0) + 1) / (double)max);
            if (k < 1)
                k = 1;
            size_t n = 0;
            for (double e = ceil(l0 / k) * k; e <= l1 + 1e-9 && n < max; e += k)
                out[n++] = pow(base, e);
            /* Under four octaves: add 1.5 times each power of two (48, 64, 96 KiB). */
            if (bytes && l1 - l0 < 4) {
                size_t m = 0;
                double tmp[64];
                for (double e = floor(l0); e <= l1 && m < 60; e++)
                    for (int j = 0; j < 2; j++) {
                        double v = pow(2, e) * (j ? 1.5 : 1);
                        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
                            tmp[m++] = v;
                    }
                if (m <= max) {
                    memcpy(out, tmp, m * sizeof(*out));
                    n = m;
                }
            }
            /* Under three decades: 1, 2 and 5 times each power of ten; under one and a
             * half (bits per weight 1.5..12) 1, 2, 3, 4, 6, 8 times if they fit. */
            static const double fine[] = {1, 2, 3, 4, 6, 8}, coarse[] = {1, 2, 5};
            for (int pass = l1 - l0 < 1.5 ? 0 : 1; !bytes && l1 - l0 < 3 && pass < 2; pass++) {
                const double *mult = pass ? coarse : fine;
                int nm = pass ? 3 : 6;
                size_t m = 0;
                double tmp[64];
                for (double e = floor(l0); e <= l1 && m < 56; e++)
                    for (int j = 0; j < nm; j++) {
                        double v = pow(10, e) * mult[j];
                        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
                            tmp[m++] = v;
                    }
                if (m <= max) {
                    memcpy(out, tmp, m * sizeof(*out));
                    n = m;
                    break;
                }
            }
            return n;
        }
        /* Less than a decade (or two octaves): linear ticks read better. */
    }
    double unit = 1;
    if (bytes) {
        double a = fmax(fabs(lo), fabs(hi));
        while (a / unit >= 1024 * 4 && unit < 1099511627776.0)
            unit *= 1024;
    }
    return linear_ticks(lo, hi, unit, out, max);
}
