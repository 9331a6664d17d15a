/* qlab-plot-view.c — the frontier chart's geometry: visible range, plot area, data to
 * pixel transform, zoom, pan and hit testing. Zoom and pan work in the transformed x
 * (log10 on a log axis) so zooming about the cursor keeps the point under it fixed. */
#include <math.h>

#include "qlab-plot.h"

/* Room for tick labels (left, bottom), the title (top) and the legend (right). */
#define MARGIN_LEFT 72.0
#define MARGIN_TOP 34.0
#define MARGIN_BOTTOM 52.0
#define MARGIN_RIGHT 16.0
#define LEGEND_WIDTH 178.0

void qlab_plot_view_init(qlab_plot_view *v)
{
    v->x_lo = 1;
    v->x_hi = 10;
    v->y_lo = 0;
    v->y_hi = 1;
    v->hovered = v->selected = -1;
    v->show_legend = 1;
}

static double tr(const qlab_plot_data *d, double x)
{
    return d->log_x ? log10(x) : x;
}

static double untr(const qlab_plot_data *d, double t)
{
    return d->log_x ? pow(10, t) : t;
}

void qlab_plot_view_fit(qlab_plot_view *v, const qlab_plot_data *d)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < d->n; i++) {
        const qlab_plot_point *p = &d->points[i];
        if (!(p->flags & QLAB_POINT_VISIBLE) || !d->tx || !isfinite(d->tx[i]))
            continue;
        x0 = fmin(x0, d->tx[i]);
        x1 = fmax(x1, d->tx[i]);
        y0 = fmin(y0, p->accuracy);
        y1 = fmax(y1, p->accuracy);
    }
    if (!isfinite(x0)) {
        v->x_lo = d->log_x ? 1 : 0;
        v->x_hi = d->log_x ? 1e6 : 1;
        v->y_lo = 0;
        v->y_hi = 1;
        return;
    }
    if (isfinite(d->fp32_accuracy)) {
        y0 = fmin(y0, d->fp32_accuracy);
        y1 = fmax(y1, d->fp32_accuracy);
    }
    /* A single point or a flat set still gets a readable span. */
    double xs = x1 - x0, ys = y1 - y0;
    if (xs <= 0)
        xs = d->log_x ? 0.5 : fmax(fabs(x0) * 0.2, 1);
    if (ys <= 0)
        ys = 0.05;
    x0 -= xs * 0.05;
    x1 += xs * 0.05;
    y0 -= ys * 0.06;
    y1 += ys * 0.06;
    v->x_lo = untr(d, x0);
    v->x_hi = untr(d, x1);
    v->y_lo = y0;
    v->y_hi = y1;
}

qlab_plot_rect qlab_plot_area(const qlab_plot_view *v, double w, double h)
{
    double right = MARGIN_RIGHT + (v->show_legend && w > 2.2 * LEGEND_WIDTH ? LEGEND_WIDTH : 0);
    qlab_plot_rect r = {MARGIN_LEFT, MARGIN_TOP, w - MARGIN_LEFT - right,
                        h - MARGIN_TOP - MARGIN_BOTTOM};
    if (r.w < 10)
        r.w = 10;
    if (r.h < 10)
        r.h = 10;
    return r;
}

int qlab_plot_point_position(const qlab_plot_data *d, const qlab_plot_view *v, double w, double h,
                             size_t i, double *px, double *py)
{
    if (i >= d->n || !d->tx || !isfinite(d->tx[i]))
        return -1;
    qlab_plot_rect a = qlab_plot_area(v, w, h);
    double t0 = tr(d, v->x_lo), t1 = tr(d, v->x_hi);
    double x = a.x + (d->tx[i] - t0) / (t1 - t0) * a.w;
    double y = a.y + a.h - (d->points[i].accuracy - v->y_lo) / (v->y_hi - v->y_lo) * a.h;
    *px = x;
    *py = y;
    return x >= a.x - 0.5 && x <= a.x + a.w + 0.5 && y >= a.y - 0.5 && y <= a.y + a.h + 0.5 ? 0
                                                                                            : -1;
}

long qlab_plot_hit_test(const qlab_plot_data *d, const qlab_plot_view *v, double w, double h,
                        double px, double py, double radius)
{
    if (!d->tx)
        return -1;
    qlab_plot_rect a = qlab_plot_area(v, w, h);
    double t0 = tr(d, v->x_lo), t1 = tr(d, v->x_hi);
    double sx = a.w / (t1 - t0), sy = a.h / (v->y_hi - v->y_lo);
    double best = radius * radius;
    long hit = -1;
    /* Linear scan: 100k points cost well under a millisecond, less than a spatial index
     * would cost to rebuild on every zoom. */
    for (size_t i = 0; i < d->n; i++) {
        if (!(d->points[i].flags & QLAB_POINT_VISIBLE) || !isfinite(d->tx[i]))
            continue;
        double dx = a.x + (d->tx[i] - t0) * sx - px;
        double dy = a.y + a.h - (d->points[i].accuracy - v->y_lo) * sy - py;
        double dd = dx * dx + dy * dy;
        /* Ties go to the point on the front, then to the later (drawn on top) one. */
        if (dd < best || (dd == best && hit >= 0 && (d->points[i].flags & QLAB_POINT_FRONT))) {
            best = dd;
            hit = (long)i;
        }
    }
    return hit;
}

void qlab_plot_view_zoom(qlab_plot_view *v, const qlab_plot_data *d, double w, double h, double px,
                         double py, double factor)
{
    qlab_plot_rect a = qlab_plot_area(v, w, h);
    double t0 = tr(d, v->x_lo), t1 = tr(d, v->x_hi);
    double fx = (px - a.x) / a.w, fy = (a.y + a.h - py) / a.h;
    fx = fmin(fmax(fx, 0), 1);
    fy = fmin(fmax(fy, 0), 1);
    double tc = t0 + fx * (t1 - t0), yc = v->y_lo + fy * (v->y_hi - v->y_lo);
    double nt = (t1 - t0) * factor, ny = (v->y_hi - v->y_lo) * factor;
    /* Keep spans within what doubles and tick code handle well. */
    if (nt < 1e-9 || ny < 1e-6 || nt > 1e9 || ny > 10)
        return;
    v->x_lo = untr(d, tc - fx * nt);
    v->x_hi = untr(d, tc + (1 - fx) * nt);
    v->y_lo = yc - fy * ny;
    v->y_hi = yc + (1 - fy) * ny;
}

void qlab_plot_view_pan(qlab_plot_view *v, const qlab_plot_data *d, double w, double h,
                        double dx_px, double dy_px)
{
    qlab_plot_rect a = qlab_plot_area(v, w, h);
    double t0 = tr(d, v->x_lo), t1 = tr(d, v->x_hi);
    double dt = -dx_px / a.w * (t1 - t0);
    double dy = dy_px / a.h * (v->y_hi - v->y_lo);
    v->x_lo = untr(d, t0 + dt);
    v->x_hi = untr(d, t1 + dt);
    v->y_lo += dy;
    v->y_hi += dy;
}
