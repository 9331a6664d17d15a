/* qlab-plot-raster.c — fast scatter markers on image surfaces.
 *
 * Filling 100,000 arcs through Cairo's path rasteriser costs ~200 ms, the whole budget
 * of a redraw. On an image surface (the window's cached chart layer and PNG export) each
 * style's marker is instead rasterised once, by Cairo, into a small premultiplied stamp,
 * and the stamp is composited at each point with the OVER operator:
 *     dst = src + dst * (255 - src_alpha) / 255        (per premultiplied channel)
 * Points snap to the nearest device pixel (at most half a pixel off, invisible at marker
 * size). Vector surfaces (SVG, PDF) keep real paths: the caller falls back. */
#include <math.h>
#include <stdlib.h>

#include "qlab-plot-private.h"

/* x * y / 255 rounded, exact for x, y in 0..255 (Jim Blinn's trick). */
static inline uint32_t mul_div255(uint32_t x, uint32_t y)
{
    uint32_t t = x * y + 128;
    return (t + (t >> 8)) >> 8;
}

struct stamp {
    cairo_surface_t *s;
    const uint32_t *px;
    int size, stride; /* stride in pixels */
};

static int make_stamp(struct stamp *st, int shape, qlab_rgb c, double alpha, double r, double scale)
{
    st->size = 2 * (int)ceil(r * scale * 1.25) + 3;
    st->s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, st->size, st->size);
    if (cairo_surface_status(st->s) != CAIRO_STATUS_SUCCESS)
        return -1;
    cairo_t *cr = cairo_create(st->s);
    cairo_scale(cr, scale, scale);
    double mid = (st->size / 2 + 0.5) / scale;
    qlab_plot_marker(cr, shape, mid, mid, r);
    qlab_plot_set_rgb(cr, c, alpha);
    cairo_fill(cr);
    cairo_destroy(cr);
    cairo_surface_flush(st->s);
    st->px = (const uint32_t *)cairo_image_surface_get_data(st->s);
    st->stride = cairo_image_surface_get_stride(st->s) / 4;
    return 0;
}

static void blit(uint32_t *dst, int dstride, int x0, int y0, int x1, int y1, const struct stamp *st,
                 int tx, int ty)
{
    int sx0 = tx < x0 ? x0 - tx : 0, sy0 = ty < y0 ? y0 - ty : 0;
    int sx1 = tx + st->size > x1 ? x1 - tx : st->size;
    int sy1 = ty + st->size > y1 ? y1 - ty : st->size;
    for (int y = sy0; y < sy1; y++) {
        const uint32_t *s = st->px + (size_t)y * (size_t)st->stride;
        uint32_t *d = dst + (size_t)(ty + y) * (size_t)dstride + tx;
        for (int x = sx0; x < sx1; x++) {
            uint32_t sp = s[x], a = sp >> 24;
            if (a == 0)
                continue;
            uint32_t dp = d[x], ia = 255 - a;
            d[x] = (((sp >> 24) & 255) + mul_div255((dp >> 24) & 255, ia)) << 24 |
                   (((sp >> 16) & 255) + mul_div255((dp >> 16) & 255, ia)) << 16 |
                   (((sp >> 8) & 255) + mul_div255((dp >> 8) & 255, ia)) << 8 |
                   ((sp & 255) + mul_div255(dp & 255, ia));
        }
    }
}

int qlab_plot_raster_markers(cairo_t *cr, const float *xy, const size_t *start, int n_styles,
                             const qlab_plot_theme *t, qlab_plot_rect clip, double r, double alpha)
{
    cairo_surface_t *target = cairo_get_target(cr);
    if (cairo_surface_get_type(target) != CAIRO_SURFACE_TYPE_IMAGE ||
        cairo_image_surface_get_format(target) != CAIRO_FORMAT_ARGB32)
        return 0;
    /* The user-to-pixel transform must be a uniform scale plus a translation. Cairo's
     * "device space" is before the surface's device scale and offset: pixel =
     * ctm(user) * device_scale + device_offset. */
    double ox = 0, oy = 0, ux = 1, uy = 0, vx = 0, vy = 1, dsx, dsy, dox, doy;
    cairo_user_to_device(cr, &ox, &oy);
    cairo_user_to_device(cr, &ux, &uy);
    cairo_user_to_device(cr, &vx, &vy);
    cairo_surface_get_device_scale(target, &dsx, &dsy);
    cairo_surface_get_device_offset(target, &dox, &doy);
    double scale = (ux - ox) * dsx;
    if (fabs(uy - oy) > 1e-9 || fabs(vx - ox) > 1e-9 || fabs((vy - oy) * dsy - scale) > 1e-9 ||
        scale <= 0 || scale > 8)
        return 0;
    ox = ox * dsx + dox;
    oy = oy * dsy + doy;
    cairo_surface_flush(target);
    uint32_t *dst = (uint32_t *)cairo_image_surface_get_data(target);
    int dstride = cairo_image_surface_get_stride(target) / 4;
    int sw = cairo_image_surface_get_width(target), sh = cairo_image_surface_get_height(target);
    int x0 = (int)fmax(0, ceil(ox + clip.x * scale)), y0 = (int)fmax(0, ceil(oy + clip.y * scale));
    int x1 = (int)fmin(sw, floor(ox + (clip.x + clip.w) * scale));
    int y1 = (int)fmin(sh, floor(oy + (clip.y + clip.h) * scale));
    if (!dst || x1 <= x0 || y1 <= y0)
        return 1;
    for (int s = 0; s < n_styles; s++) {
        if (start[s + 1] == start[s])
            continue;
        struct stamp st;
        if (make_stamp(&st, s % QLAB_N_CALIBS, t->palette[s / QLAB_N_CALIBS], alpha, r, scale) <
            0) {
            cairo_surface_destroy(st.s);
            continue;
        }
        int half = st.size / 2;
        for (size_t k = start[s]; k < start[s + 1]; k++) {
            int tx = (int)floor(ox + xy[2 * k] * scale) - half;
            int ty = (int)floor(oy + xy[2 * k + 1] * scale) - half;
            if (tx >= x1 || ty >= y1 || tx + st.size <= x0 || ty + st.size <= y0)
                continue;
            blit(dst, dstride, x0, y0, x1, y1, &st, tx, ty);
        }
        cairo_surface_destroy(st.s);
    }
    cairo_surface_mark_dirty(target);
    return 1;
}
