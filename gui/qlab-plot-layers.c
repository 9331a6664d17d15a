/* qlab-plot-layers.c — per-layer charts (SQNR bars, error histograms) and file export. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>
#include <cairo-svg.h>

#include "qlab-plot-private.h"

static void background(cairo_t *cr, const qlab_plot_theme *t)
{
    qlab_plot_set_rgb(cr, t->bg, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

/* Horizontal grid lines with labels at nice values between lo and hi. */
static void y_grid(cairo_t *cr, const qlab_plot_theme *t, qlab_plot_rect a, double lo, double hi,
                   const char *unit)
{
    double ticks[16];
    size_t n = qlab_plot_ticks(lo, hi, 0, 0, ticks, (size_t)fmax(3, fmin(8, a.h / 22)));
    char buf[32];
    cairo_set_line_width(cr, 1);
    cairo_set_font_size(cr, t->font_size * 0.85);
    for (size_t i = 0; i < n; i++) {
        double y = round(a.y + a.h - (ticks[i] - lo) / (hi - lo) * a.h) + 0.5;
        qlab_plot_set_rgb(cr, t->grid, 1);
        cairo_move_to(cr, a.x, y);
        cairo_line_to(cr, a.x + a.w, y);
        cairo_stroke(cr);
        snprintf(buf, sizeof(buf), "%.*f%s%s", hi - lo < 5 ? 1 : 0, ticks[i], unit ? " " : "",
                 unit ? unit : "");
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, a.x - 6, y, buf, 1, 0.5);
    }
}

void qlab_plot_render_bars(cairo_t *cr, double w, double h, const qlab_plot_bars *b,
                           const qlab_plot_theme *t)
{
    cairo_save(cr);
    background(cr, t);
    cairo_set_font_size(cr, t->font_size);
    qlab_plot_set_rgb(cr, t->fg, 1);
    qlab_plot_text(cr, 10, 6, b->title ? b->title : "", 0, 0);
    double lo = 0, hi = -INFINITY;
    for (size_t i = 0; i < b->n; i++) {
        if (isfinite(b->a[i]))
            lo = fmin(lo, b->a[i]), hi = fmax(hi, b->a[i]);
        if (b->b && isfinite(b->b[i]))
            lo = fmin(lo, b->b[i]), hi = fmax(hi, b->b[i]);
    }
    if (b->n == 0 || !isfinite(hi)) {
        qlab_plot_set_rgb(cr, t->muted, 1);
        qlab_plot_text(cr, w / 2, h / 2, "no per-layer metrics", 0.5, 0.5);
        cairo_restore(cr);
        return;
    }
    hi = hi <= lo ? lo + 1 : hi * 1.08;
    qlab_plot_rect a = {52, 30, w - 62, h - 30 - 40};
    if (a.w < 20 || a.h < 20) {
        cairo_restore(cr);
        return;
    }
    y_grid(cr, t, a, lo, hi, b->unit);
    double slot = a.w / (double)b->n, bw = fmin(slot * 0.36, 40);
    double y0 = a.y + a.h - (0 - lo) / (hi - lo) * a.h;
    for (size_t i = 0; i < b->n; i++) {
        double cx = a.x + slot * ((double)i + 0.5);
        const double *vals[2] = {b->a, b->b};
        for (int k = 0; k < 2; k++) {
            if (!vals[k] || !isfinite(vals[k][i]))
                continue;
            double y = a.y + a.h - (vals[k][i] - lo) / (hi - lo) * a.h;
            double x = cx + (k == 0 ? -bw - 1 : 1);
            cairo_rectangle(cr, x, fmin(y, y0), bw, fabs(y0 - y));
            qlab_plot_set_rgb(cr, t->palette[k == 0 ? 0 : 3], 0.9);
            cairo_fill(cr);
        }
        cairo_set_font_size(cr, t->font_size * 0.85);
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, cx, a.y + a.h + 6, b->names[i], 0.5, 0);
    }
    /* Legend in the top right corner: series a then b. */
    const char *labels[2] = {b->a_label, b->b ? b->b_label : NULL};
    double lx = w - 10;
    cairo_set_font_size(cr, t->font_size * 0.85);
    for (int k = 1; k >= 0; k--) {
        if (!labels[k])
            continue;
        cairo_text_extents_t e;
        cairo_text_extents(cr, labels[k], &e);
        lx -= e.x_advance;
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, lx, 8, labels[k], 0, 0);
        lx -= 16;
        cairo_rectangle(cr, lx, 10, 11, 9);
        qlab_plot_set_rgb(cr, t->palette[k == 0 ? 0 : 3], 0.9);
        cairo_fill(cr);
        lx -= 14;
    }
    cairo_restore(cr);
}

void qlab_plot_render_histogram(cairo_t *cr, double w, double h, const qlab_plot_hist *hs,
                                const qlab_plot_theme *t)
{
    cairo_save(cr);
    background(cr, t);
    cairo_set_font_size(cr, t->font_size);
    qlab_plot_set_rgb(cr, t->fg, 1);
    qlab_plot_text(cr, 10, 6, hs->title ? hs->title : "", 0, 0);
    uint64_t total = 0;
    uint32_t peak = 0;
    for (size_t i = 0; i < hs->nbins; i++) {
        total += hs->counts[i];
        if (hs->counts[i] > peak)
            peak = hs->counts[i];
    }
    if (hs->nbins == 0 || total == 0 || !(hs->hi > hs->lo)) {
        qlab_plot_set_rgb(cr, t->muted, 1);
        qlab_plot_text(cr, w / 2, h / 2, "no histogram stored", 0.5, 0.5);
        cairo_restore(cr);
        return;
    }
    qlab_plot_rect a = {62, 30, w - 74, h - 30 - 40};
    if (a.w < 20 || a.h < 20) {
        cairo_restore(cr);
        return;
    }
    double top = peak * 1.08;
    y_grid(cr, t, a, 0, top, NULL);
    double bw = a.w / (double)hs->nbins;
    for (size_t i = 0; i < hs->nbins; i++) {
        /* A bin that holds anything gets at least 2 px: the few hundred weights that
         * percentile calibration clips land far out in the tails, with counts 1000x
         * below the peak, and must not vanish (they cause most of the error). */
        double bh = hs->counts[i] ? fmax(hs->counts[i] / top * a.h, 2) : 0;
        cairo_rectangle(cr, a.x + bw * (double)i, a.y + a.h - bh, fmax(bw - (bw > 3), 0.5), bh);
    }
    qlab_plot_set_rgb(cr, t->palette[0], 0.9);
    cairo_fill(cr);
    /* x ticks in error units; the zero line marks unbiased quantization. */
    double ticks[16];
    size_t n = qlab_plot_ticks(hs->lo, hs->hi, 0, 0, ticks, (size_t)fmax(5, fmin(9, a.w / 55)));
    double step = n > 1 ? ticks[1] - ticks[0] : 1;
    char buf[32];
    cairo_set_font_size(cr, t->font_size * 0.85);
    cairo_set_line_width(cr, 1);
    for (size_t i = 0; i < n; i++) {
        double x = round(a.x + (ticks[i] - hs->lo) / (hs->hi - hs->lo) * a.w) + 0.5;
        qlab_plot_set_rgb(cr, ticks[i] == 0 ? t->fg : t->muted, 1);
        cairo_move_to(cr, x, ticks[i] == 0 ? a.y : a.y + a.h);
        cairo_line_to(cr, x, a.y + a.h + 4);
        cairo_stroke(cr);
        if (fabs(step) >= 1)
            snprintf(buf, sizeof(buf), "%.0f", ticks[i]);
        else
            snprintf(buf, sizeof(buf), "%.3g", ticks[i]);
        qlab_plot_set_rgb(cr, t->fg, 1);
        qlab_plot_text(cr, x, a.y + a.h + 6, buf, 0.5, 0);
    }
    qlab_plot_set_rgb(cr, t->muted, 1);
    snprintf(buf, sizeof(buf), "%llu values", (unsigned long long)total);
    qlab_plot_text(cr, a.x + a.w, a.y + a.h + 22, buf, 1, 0);
    qlab_plot_text(cr, a.x, a.y + a.h + 22, "error (quantized - original)", 0, 0);
    cairo_restore(cr);
}

int qlab_plot_export(const char *path, double w, double h, qlab_plot_draw_fn draw, void *ctx)
{
    const char *dot = strrchr(path, '.');
    cairo_surface_t *s;
    int png = 0;
    if (!dot)
        return -EINVAL;
    if (!strcasecmp(dot, ".png")) {
        /* Twice the pixel density so the exported image stays sharp in documents. */
        s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)(w * 2), (int)(h * 2));
        cairo_surface_set_device_scale(s, 2, 2);
        png = 1;
    } else if (!strcasecmp(dot, ".svg")) {
        s = cairo_svg_surface_create(path, w, h);
    } else if (!strcasecmp(dot, ".pdf")) {
        s = cairo_pdf_surface_create(path, w, h);
    } else {
        return -EINVAL;
    }
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return -EIO;
    }
    cairo_t *cr = cairo_create(s);
    draw(cr, w, h, ctx);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && png)
        st = cairo_surface_write_to_png(s, path);
    cairo_surface_finish(s); /* writes the SVG or PDF file */
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    return st == CAIRO_STATUS_SUCCESS ? 0 : -EIO;
}

void qlab_plot_shutdown(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}
