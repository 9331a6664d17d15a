/* qlab-plot-frontier.c — draws the accuracy-versus-memory chart with Cairo, as layers:
 * grid and axes, FP32 reference line, scatter, Pareto front line, highlights, legend.
 *
 * Speed: with 100,000 runs most markers overlap. The scatter layer keeps one marker per
 * (style, 2x2 pixel cell) — a later marker of the same colour and shape in the same cell
 * would paint nearly the same pixels — then either stamps them onto an image surface
 * (qlab-plot-raster.c) or, on vector surfaces, fills all markers of one style as one path,
 * so Cairo rasterises a handful of paths instead of 100,000 separate fills. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-plot-private.h"

#define CELL 2
#define MARKER_R 3.6
#define N_STYLES (QLAB_PLOT_N_COLOURS * QLAB_N_CALIBS)

void qlab_plot_theme_init(qlab_plot_theme *t, int dark)
{
    /* Tableau-10 hues: distinguishable for common colour-vision deficiencies and legible
     * on both light and dark backgrounds. Blue/green/teal: symmetric; orange/red/purple:
     * asymmetric; tensor, channel, group in that order. */
    static const qlab_rgb pal[QLAB_PLOT_N_COLOURS] = {
        {0.306, 0.475, 0.655}, {0.349, 0.631, 0.310}, {0.463, 0.718, 0.698},
        {0.949, 0.557, 0.169}, {0.882, 0.341, 0.349}, {0.690, 0.478, 0.631},
    };
    memset(t, 0, sizeof(*t));
    memcpy(t->palette, pal, sizeof(pal));
    t->font_size = 12;
    qlab_plot_theme_set_colours(t,
                                dark ? (qlab_rgb){0.92, 0.92, 0.92} : (qlab_rgb){0.13, 0.13, 0.13},
                                dark ? (qlab_rgb){0.14, 0.14, 0.15} : (qlab_rgb){1, 1, 1});
}

static qlab_rgb mix(qlab_rgb a, qlab_rgb b, double f)
{
    return (qlab_rgb){a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

void qlab_plot_theme_set_colours(qlab_plot_theme *t, qlab_rgb fg, qlab_rgb bg)
{
    t->fg = fg;
    t->bg = bg;
    t->dark = 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b < 0.5;
    t->grid = mix(bg, fg, 0.12);
    t->muted = mix(bg, fg, 0.62);
    t->front = t->dark ? (qlab_rgb){0.98, 0.85, 0.35} : (qlab_rgb){0.10, 0.10, 0.10};
    t->ref = t->dark ? (qlab_rgb){0.55, 0.80, 1.0} : (qlab_rgb){0.15, 0.35, 0.75};
}

void qlab_plot_set_rgb(cairo_t *cr, qlab_rgb c, double alpha)
{
    cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

void qlab_plot_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_text_extents_t e;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &e);
    cairo_font_extents(cr, &fe);
    /* ax, ay: 0 = left/top, 0.5 = centre, 1 = right/bottom, relative to the ink box
     * horizontally and to the font's ascent vertically (stable across strings). */
    cairo_move_to(cr, x - e.x_advance * ax, y + fe.ascent * (1 - ay) - fe.descent * ay * 0.2);
    cairo_show_text(cr, s);
}

void qlab_plot_marker(cairo_t *cr, int shape, double x, double y, double r)
{
    switch (shape) {
    case QLAB_CALIB_PERCENTILE: /* square */
        cairo_rectangle(cr, x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7);
        break;
    case QLAB_CALIB_MSE: /* triangle */
        cairo_move_to(cr, x, y - r * 1.15);
        cairo_line_to(cr, x + r * 1.05, y + r * 0.75);
        cairo_line_to(cr, x - r * 1.05, y + r * 0.75);
        cairo_close_path(cr);
        break;
    case QLAB_CALIB_ENTROPY: /* diamond */
        cairo_move_to(cr, x, y - r * 1.2);
        cairo_line_to(cr, x + r * 1.2, y);
        cairo_line_to(cr, x, y + r * 1.2);
        cairo_line_to(cr, x - r * 1.2, y);
        cairo_close_path(cr);
        break;
    default: /* minmax: circle */
        cairo_new_sub_path(cr);
        cairo_arc(cr, x, y, r, 0, 2 * M_PI);
        break;
    }
}

static void format_x(const qlab_plot_data *d, double x, double step, char *buf, size_t len)
{
    if (d->x_mode == QLAB_PLOT_X_BYTES)
        qlab_plot_format_bytes(x, buf, len);
    else if (step >= 1 || x == floor(x))
        snprintf(buf, len, "%.0f", x);
    else
        snprintf(buf, len, "%.*f", step >= 0.1 ? 1 : 2, x);
}

static void draw_axes(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_view *v,
                      const qlab_plot_theme *t, qlab_plot_rect a)
{
    double ticks[32];
    char buf[48];
    int bytes = d->x_mode == QLAB_PLOT_X_BYTES;
    double t0 = d->log_x ? log10(v->x_lo) : v->x_lo, t1 = d->log_x ? log10(v->x_hi) : v->x_hi;
    size_t nx = qlab_plot_ticks(v->x_lo, v->x_hi, d->log_x, bytes, ticks,
                                (size_t)fmax(2, fmin(12, a.w / 75)));
    cairo_set_line_width(cr, 1);
    cairo_set_font_size(cr, t->font_size * 0.92);
    for (size_t i = 0; i < nx; i++) {
        double tx = d->log_x ? log10(ticks[i]) : ticks[i];
        double x = round(a.x + (tx - t0) / (t1 - t0) * a.w) + 0.5;
        qlab_plot_set_rgb(cr, t->grid, 1);
        cairo_move_to(cr, x, a.y);
        cairo_line_to(cr, x, a.y + a.h);
        cairo_stroke(cr);
        qlab_plot_set_rgb(cr, t->muted, 1);
        cairo_move_to(cr, x, a.y + a.h);
        cairo_line_to(cr, x, a.y + a.h + 5);
        cairo_stroke(cr);
        format_x(d, ticks[i], nx > 1 ? fabs(ticks[1] - ticks[0]) : 1, buf, sizeof(buf));
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, x, a.y + a.h + 8, buf, 0.5, 0);
    }
    size_t ny = qlab_plot_ticks(v->y_lo, v->y_hi, 0, 0, ticks, (size_t)fmax(2, fmin(12, a.h / 40)));
    double ystep = ny > 1 ? ticks[1] - ticks[0] : 0.1;
    int dec = ystep >= 0.01 - 1e-12 ? 0 : ystep >= 0.001 - 1e-12 ? 1 : 2;
    for (size_t i = 0; i < ny; i++) {
        double y = round(a.y + a.h - (ticks[i] - v->y_lo) / (v->y_hi - v->y_lo) * a.h) + 0.5;
        qlab_plot_set_rgb(cr, t->grid, 1);
        cairo_move_to(cr, a.x, y);
        cairo_line_to(cr, a.x + a.w, y);
        cairo_stroke(cr);
        qlab_plot_set_rgb(cr, t->muted, 1);
        cairo_move_to(cr, a.x - 5, y);
        cairo_line_to(cr, a.x, y);
        cairo_stroke(cr);
        snprintf(buf, sizeof(buf), "%.*f%%", dec, 100 * ticks[i]);
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, a.x - 8, y, buf, 1, 0.5);
    }
    qlab_plot_set_rgb(cr, t->muted, 1);
    cairo_rectangle(cr, a.x + 0.5, a.y + 0.5, a.w - 1, a.h - 1);
    cairo_stroke(cr);

    cairo_set_font_size(cr, t->font_size);
    qlab_plot_set_rgb(cr, t->fg, 1);
    const char *xl =
        bytes ? (d->log_x ? "model size (total bytes, log scale)" : "model size (total bytes)")
              : (d->log_x ? "bits per weight (log scale)" : "bits per weight");
    qlab_plot_text(cr, a.x + a.w / 2, a.y + a.h + 28, xl, 0.5, 0);
    cairo_save(cr);
    cairo_translate(cr, a.x - 58, a.y + a.h / 2);
    cairo_rotate(cr, -M_PI / 2);
    qlab_plot_text(cr, 0, 0, "top-1 accuracy", 0.5, 0.5);
    cairo_restore(cr);
}

static void draw_reference(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_view *v,
                           const qlab_plot_theme *t, qlab_plot_rect a)
{
    double f = d->fp32_accuracy;
    if (!isfinite(f) || f < v->y_lo || f > v->y_hi)
        return;
    double y = round(a.y + a.h - (f - v->y_lo) / (v->y_hi - v->y_lo) * a.h) + 0.5;
    static const double dash[] = {6, 4};
    cairo_save(cr);
    qlab_plot_set_rgb(cr, t->ref, 0.9);
    cairo_set_line_width(cr, 1.5);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, a.x, y);
    cairo_line_to(cr, a.x + a.w, y);
    cairo_stroke(cr);
    cairo_restore(cr);
    char buf[48];
    snprintf(buf, sizeof(buf), "FP32 %.2f%%", 100 * f);
    cairo_set_font_size(cr, t->font_size * 0.9);
    qlab_plot_set_rgb(cr, t->ref, 1);
    qlab_plot_text(cr, a.x + 6, y - 3, buf, 0, 1);
}

static void draw_scatter(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_view *v,
                         const qlab_plot_theme *t, qlab_plot_rect a)
{
    size_t cw = (size_t)(a.w / CELL) + 2, ch = (size_t)(a.h / CELL) + 2;
    uint32_t *cells = calloc(cw * ch, sizeof(*cells));
    float *xy = malloc(d->n * 2 * sizeof(*xy));
    uint8_t *style = malloc(d->n);
    size_t counts[N_STYLES + 1] = {0};
    if (!cells || !xy || !style)
        goto out;
    double t0 = d->log_x ? log10(v->x_lo) : v->x_lo, t1 = d->log_x ? log10(v->x_hi) : v->x_hi;
    double sx = a.w / (t1 - t0), sy = a.h / (v->y_hi - v->y_lo);
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++) {
        const qlab_plot_point *p = &d->points[i];
        if (!(p->flags & QLAB_POINT_VISIBLE))
            continue;
        double x = (d->tx[i] - t0) * sx, y = a.h - (p->accuracy - v->y_lo) * sy;
        /* NaN fails both comparisons and is skipped too. */
        if (!(x >= -MARKER_R && x <= a.w + MARKER_R && y >= -MARKER_R && y <= a.h + MARKER_R))
            continue;
        int s = qlab_plot_point_colour(p) * QLAB_N_CALIBS + p->calibration;
        size_t c = (size_t)((y + MARKER_R) / CELL) * cw + (size_t)((x + MARKER_R) / CELL);
        if (c >= cw * ch || (cells[c] & (1u << s)))
            continue;
        cells[c] |= 1u << s;
        xy[2 * m] = (float)(a.x + x);
        xy[2 * m + 1] = (float)(a.y + y);
        style[m++] = (uint8_t)s;
        counts[s + 1]++;
    }
    /* Counting sort by style, then one fill per style. */
    for (int s = 0; s < N_STYLES; s++)
        counts[s + 1] += counts[s];
    float *sorted = malloc((m ? m : 1) * 2 * sizeof(*sorted));
    if (!sorted)
        goto out;
    size_t pos[N_STYLES];
    memcpy(pos, counts, sizeof(pos));
    for (size_t k = 0; k < m; k++) {
        size_t o = pos[style[k]]++;
        sorted[2 * o] = xy[2 * k];
        sorted[2 * o + 1] = xy[2 * k + 1];
    }
    if (qlab_plot_raster_markers(cr, sorted, counts, N_STYLES, t, a, MARKER_R, 0.85)) {
        free(sorted);
        goto out;
    }
    for (int s = 0; s < N_STYLES; s++) {
        if (counts[s + 1] == counts[s])
            continue;
        for (size_t k = counts[s]; k < counts[s + 1]; k++)
            qlab_plot_marker(cr, s % QLAB_N_CALIBS, sorted[2 * k], sorted[2 * k + 1], MARKER_R);
        qlab_plot_set_rgb(cr, t->palette[s / QLAB_N_CALIBS], 0.85);
        cairo_fill(cr);
    }
    free(sorted);
out:
    free(cells);
    free(xy);
    free(style);
}

static void draw_front(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_view *v,
                       const qlab_plot_theme *t, qlab_plot_rect a, double w, double h)
{
    if (d->n_front == 0)
        return;
    double t0 = d->log_x ? log10(v->x_lo) : v->x_lo, t1 = d->log_x ? log10(v->x_hi) : v->x_hi;
    double sx = a.w / (t1 - t0), sy = a.h / (v->y_hi - v->y_lo);
    cairo_new_path(cr);
    for (size_t k = 0; k < d->n_front; k++) {
        size_t i = d->front[k];
        double x = a.x + (d->tx[i] - t0) * sx;
        double y = a.y + a.h - (d->points[i].accuracy - v->y_lo) * sy;
        cairo_line_to(cr, x, y);
    }
    qlab_plot_set_rgb(cr, t->front, 0.9);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_stroke(cr);
    cairo_set_line_width(cr, 1.3);
    for (size_t k = 0; k < d->n_front; k++) {
        double x, y;
        if (qlab_plot_point_position(d, v, w, h, d->front[k], &x, &y) == 0) {
            cairo_new_sub_path(cr);
            cairo_arc(cr, x, y, MARKER_R + 2, 0, 2 * M_PI);
        }
    }
    cairo_stroke(cr);
}

static void draw_highlight(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_view *v,
                           const qlab_plot_theme *t, double w, double h, long i, int selected)
{
    double x, y;
    if (i < 0 || qlab_plot_point_position(d, v, w, h, (size_t)i, &x, &y) != 0)
        return;
    const qlab_plot_point *p = &d->points[i];
    qlab_plot_marker(cr, p->calibration, x, y, MARKER_R * 1.6);
    qlab_plot_set_rgb(cr, t->palette[qlab_plot_point_colour(p)], 1);
    cairo_fill(cr);
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, MARKER_R * 1.6 + 4, 0, 2 * M_PI);
    qlab_plot_set_rgb(cr, t->fg, 1);
    cairo_set_line_width(cr, selected ? 2.5 : 1.2);
    cairo_stroke(cr);
}

static void draw_legend(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_theme *t, double x,
                        double y)
{
    int colours[QLAB_PLOT_N_COLOURS] = {0}, shapes[QLAB_N_CALIBS] = {0};
    for (size_t i = 0; i < d->n; i++)
        if (d->points[i].flags & QLAB_POINT_VISIBLE) {
            colours[qlab_plot_point_colour(&d->points[i])] = 1;
            if (d->points[i].calibration < QLAB_N_CALIBS)
                shapes[d->points[i].calibration] = 1;
        }
    double lh = t->font_size * 1.45;
    cairo_set_font_size(cr, t->font_size * 0.95);
    qlab_plot_set_rgb(cr, t->muted, 1);
    qlab_plot_text(cr, x, y, "scheme / granularity", 0, 0);
    y += lh;
    for (int c = 0; c < QLAB_PLOT_N_COLOURS; c++) {
        if (!colours[c])
            continue;
        char buf[48];
        snprintf(buf, sizeof(buf), "%s / %s", c / QLAB_N_GRANS ? "asym" : "sym",
                 qlab_plot_granularity_name(c % QLAB_N_GRANS));
        cairo_rectangle(cr, x, y + 2, 12, 10);
        qlab_plot_set_rgb(cr, t->palette[c], 1);
        cairo_fill(cr);
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, x + 18, y, buf, 0, 0);
        y += lh;
    }
    y += lh * 0.4;
    qlab_plot_set_rgb(cr, t->muted, 1);
    qlab_plot_text(cr, x, y, "calibration", 0, 0);
    y += lh;
    for (int s = 0; s < QLAB_N_CALIBS; s++) {
        if (!shapes[s])
            continue;
        qlab_plot_marker(cr, s, x + 6, y + 7, MARKER_R * 1.2);
        qlab_plot_set_rgb(cr, t->fg, 1);
        cairo_fill(cr);
        qlab_plot_text(cr, x + 18, y, qlab_plot_calibration_name(s), 0, 0);
        y += lh;
    }
    y += lh * 0.4;
    if (d->n_front) {
        cairo_move_to(cr, x, y + 7);
        cairo_line_to(cr, x + 14, y + 7);
        qlab_plot_set_rgb(cr, t->front, 1);
        cairo_set_line_width(cr, 2);
        cairo_stroke(cr);
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, x + 18, y, "Pareto front", 0, 0);
        y += lh;
    }
    if (isfinite(d->fp32_accuracy)) {
        static const double dash[] = {4, 3};
        cairo_save(cr);
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, x, y + 7);
        cairo_line_to(cr, x + 14, y + 7);
        qlab_plot_set_rgb(cr, t->ref, 1);
        cairo_set_line_width(cr, 1.5);
        cairo_stroke(cr);
        cairo_restore(cr);
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, x + 18, y, "FP32 accuracy", 0, 0);
    }
}

void qlab_plot_render_frontier(cairo_t *cr, double w, double h, const qlab_plot_data *d,
                               const qlab_plot_view *v, const qlab_plot_theme *t)
{
    cairo_save(cr);
    qlab_plot_set_rgb(cr, t->bg, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    qlab_plot_rect a = qlab_plot_area(v, w, h);

    char title[256];
    snprintf(title, sizeof(title), "%s%s%zu of %zu runs, %zu on the Pareto front", d->title,
             d->title[0] ? " — " : "", d->n_visible, d->n, d->n_front);
    cairo_set_font_size(cr, t->font_size * 1.1);
    qlab_plot_set_rgb(cr, t->fg, 1);
    qlab_plot_text(cr, a.x, 9, title, 0, 0);

    if (!(v->x_hi > v->x_lo) || !(v->y_hi > v->y_lo) || (d->log_x && v->x_lo <= 0)) {
        cairo_restore(cr);
        return;
    }
    draw_axes(cr, d, v, t, a);
    if (d->n > 0 && d->tx) {
        cairo_save(cr);
        cairo_rectangle(cr, a.x, a.y, a.w, a.h);
        cairo_clip(cr);
        draw_reference(cr, d, v, t, a);
        draw_scatter(cr, d, v, t, a);
        draw_front(cr, d, v, t, a, w, h);
        cairo_restore(cr);
        qlab_plot_render_highlights(cr, w, h, d, v, t);
    } else {
        cairo_set_font_size(cr, t->font_size);
        qlab_plot_set_rgb(cr, t->muted, 1);
        qlab_plot_text(cr, a.x + a.w / 2, a.y + a.h / 2, "no finished runs yet", 0.5, 0.5);
    }
    if (v->show_legend && a.x + a.w + 20 < w - 100)
        draw_legend(cr, d, t, a.x + a.w + 20, a.y + 4);
    cairo_restore(cr);
}

void qlab_plot_render_highlights(cairo_t *cr, double w, double h, const qlab_plot_data *d,
                                 const qlab_plot_view *v, const qlab_plot_theme *t)
{
    if (d->n == 0 || !d->tx || !(v->x_hi > v->x_lo) || !(v->y_hi > v->y_lo))
        return;
    qlab_plot_rect a = qlab_plot_area(v, w, h);
    cairo_save(cr);
    cairo_rectangle(cr, a.x, a.y, a.w, a.h);
    cairo_clip(cr);
    draw_highlight(cr, d, v, t, w, h, v->hovered, 0);
    draw_highlight(cr, d, v, t, w, h, v->selected, 1);
    cairo_restore(cr);
}
