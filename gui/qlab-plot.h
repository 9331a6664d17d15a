/* qlab-plot.h — Cairo-only drawing of qlab's charts, shared by qlab-gui (QlabChart draws
 * through gtk_snapshot_append_cairo) and `qlab plot` (image, SVG and PDF surfaces), so the
 * window and the exported file show the same picture.
 *
 * The frontier chart is drawn as layers, like sysprof's chart: grid and axes, the FP32
 * reference line, the scatter layer (one marker per run, colour by scheme/granularity,
 * shape by calibration), the Pareto front as a line layer, highlights and the legend.
 * Data is normalised once (qlab_plot_data_normalise: log10 applied, front computed) so a
 * redraw is an affine transform per point plus decimation to one marker per pixel cell.
 */
#pragma once

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

enum qlab_scheme { QLAB_SCHEME_SYMMETRIC, QLAB_SCHEME_ASYMMETRIC, QLAB_N_SCHEMES };
enum qlab_granularity { QLAB_GRAN_TENSOR, QLAB_GRAN_CHANNEL, QLAB_GRAN_GROUP, QLAB_N_GRANS };
enum qlab_calibration {
    QLAB_CALIB_MINMAX,
    QLAB_CALIB_PERCENTILE,
    QLAB_CALIB_MSE,
    QLAB_CALIB_ENTROPY,
    QLAB_N_CALIBS
};
enum qlab_plot_x { QLAB_PLOT_X_BYTES, QLAB_PLOT_X_BPW };

/* Colour index of a run: one colour per (scheme, granularity) pair. */
#define QLAB_PLOT_N_COLOURS (QLAB_N_SCHEMES * QLAB_N_GRANS)

enum qlab_point_flags {
    QLAB_POINT_VISIBLE = 1 << 0, /* passes the filters */
    QLAB_POINT_FRONT = 1 << 1, /* on the Pareto front of the visible points */
};

typedef struct qlab_plot_point {
    int64_t run_id;
    double bytes; /* runs.total_bytes */
    double bpw; /* runs.bits_per_weight */
    double accuracy; /* fraction 0..1 (runs.accuracy is percent: qlab-results converts) */
    uint16_t group_size; /* 0 unless granularity is group */
    uint8_t bits;
    uint8_t act_bits; /* 0: FP32 activations */
    uint8_t scheme, granularity, calibration;
    uint8_t flags;
} qlab_plot_point;

/* Filters: a point is visible when it passes all of them. -1 means "any". */
typedef struct qlab_plot_filter {
    int bits_min, bits_max;
    int scheme, granularity, calibration;
    int act_bits; /* -1 any, 0 FP32 activations, N: intN activations */
} qlab_plot_filter;

typedef struct qlab_plot_data {
    qlab_plot_point *points;
    size_t n;
    double fp32_accuracy; /* fraction 0..1, like the points; NaN when unknown */
    double fp32_bytes; /* 0 when unknown */
    char title[160];
    qlab_plot_filter filter; /* the last one applied */
    /* Filled by qlab_plot_data_normalise (tx is NULL until then): */
    enum qlab_plot_x x_mode;
    int log_x;
    double *tx; /* per point: x, log10(x) when log_x */
    size_t *front; /* indices of front points, sorted by x */
    size_t n_front;
    size_t n_visible;
} qlab_plot_data;

/* The visible window in data units (x in bytes or bits per weight, y accuracy 0..1),
 * plus interaction state. hovered / selected are point indices or -1. */
typedef struct qlab_plot_view {
    double x_lo, x_hi, y_lo, y_hi;
    long hovered, selected;
    int show_legend;
} qlab_plot_view;

typedef struct qlab_rgb {
    double r, g, b;
} qlab_rgb;

typedef struct qlab_plot_theme {
    qlab_rgb bg, fg, grid, muted, front, ref;
    qlab_rgb palette[QLAB_PLOT_N_COLOURS];
    double font_size;
    int dark;
} qlab_plot_theme;

typedef struct qlab_plot_rect {
    double x, y, w, h;
} qlab_plot_rect;

/* --- data --- */
void qlab_plot_data_init(qlab_plot_data *d);
void qlab_plot_data_clear(qlab_plot_data *d);
/* Takes ownership of points (malloc'ed). */
void qlab_plot_data_set_points(qlab_plot_data *d, qlab_plot_point *points, size_t n);
/* Recomputes the transformed x of every point and the Pareto front of the VISIBLE points
 * (same rule as the database's frontier view: a run is dropped when another has accuracy
 * >= and x <= with one strictly better; exact ties are both kept). Returns 0 or -ENOMEM. */
int qlab_plot_data_normalise(qlab_plot_data *d, enum qlab_plot_x x_mode, int log_x);
void qlab_plot_filter_init(qlab_plot_filter *f);
/* Sets QLAB_POINT_VISIBLE on the points that pass; normalise afterwards. */
void qlab_plot_data_apply_filter(qlab_plot_data *d, const qlab_plot_filter *f);
static inline double qlab_plot_point_x(const qlab_plot_point *p, enum qlab_plot_x m)
{
    return m == QLAB_PLOT_X_BPW ? p->bpw : p->bytes;
}
static inline int qlab_plot_point_colour(const qlab_plot_point *p)
{
    return p->scheme * QLAB_N_GRANS + p->granularity;
}

/* --- names and formatting --- */
const char *qlab_plot_scheme_name(int scheme);
const char *qlab_plot_granularity_name(int gran);
const char *qlab_plot_calibration_name(int calib);
int qlab_plot_scheme_from_name(const char *s); /* -1 when unknown */
int qlab_plot_granularity_from_name(const char *s);
int qlab_plot_calibration_from_name(const char *s);
/* "812 B", "1.5 KiB", "23 KiB", "1.2 MiB". */
void qlab_plot_format_bytes(double bytes, char *buf, size_t len);
/* One line naming a run: "#12 4-bit symmetric channel mse, act int8: 87.31% 27.5 KiB". */
void qlab_plot_point_describe(const qlab_plot_point *p, char *buf, size_t len);

/* Ticks at "nice" positions (1, 2, 5 x 10^k, or 1-2-5 per decade on a log axis; byte
 * axes use powers of two). Writes at most max values to out and returns the count. */
size_t qlab_plot_ticks(double lo, double hi, int log_scale, int bytes, double *out, size_t max);

/* --- view and geometry --- */
void qlab_plot_view_init(qlab_plot_view *v);
/* Range covering the visible points and the FP32 line, with a margin. */
void qlab_plot_view_fit(qlab_plot_view *v, const qlab_plot_data *d);
/* Zoom by factor (< 1 zooms in) about the widget point (px, py); pan by pixels. */
void qlab_plot_view_zoom(qlab_plot_view *v, const qlab_plot_data *d, double w, double h, double px,
                         double py, double factor);
void qlab_plot_view_pan(qlab_plot_view *v, const qlab_plot_data *d, double w, double h,
                        double dx_px, double dy_px);
qlab_plot_rect qlab_plot_area(const qlab_plot_view *v, double w, double h);
/* Widget coordinates of point i (returns 0), or -1 when it is outside the plot area. */
int qlab_plot_point_position(const qlab_plot_data *d, const qlab_plot_view *v, double w, double h,
                             size_t i, double *px, double *py);
/* Nearest visible point within radius pixels of (px, py), or -1. */
long qlab_plot_hit_test(const qlab_plot_data *d, const qlab_plot_view *v, double w, double h,
                        double px, double py, double radius);

/* --- drawing --- */
void qlab_plot_theme_init(qlab_plot_theme *t, int dark);
/* Sets the theme's foreground and background from the toolkit's colours. */
void qlab_plot_theme_set_colours(qlab_plot_theme *t, qlab_rgb fg, qlab_rgb bg);
/* Everything, highlights included (hovered and selected points of v). */
void qlab_plot_render_frontier(cairo_t *cr, double w, double h, const qlab_plot_data *d,
                               const qlab_plot_view *v, const qlab_plot_theme *t);
/* Only the hovered and selected highlights, on a transparent background: the chart widget
 * caches the rest and redraws just this layer as the pointer moves. */
void qlab_plot_render_highlights(cairo_t *cr, double w, double h, const qlab_plot_data *d,
                                 const qlab_plot_view *v, const qlab_plot_theme *t);

/* Per-layer bars: two values per layer (weight SQNR and output SQNR, NaN = missing). */
typedef struct qlab_plot_bars {
    size_t n;
    const char *const *names;
    const double *a, *b;
    const char *a_label, *b_label, *title, *unit;
} qlab_plot_bars;
void qlab_plot_render_bars(cairo_t *cr, double w, double h, const qlab_plot_bars *bars,
                           const qlab_plot_theme *t);

/* Error histogram: nbins counts over [lo, hi]. */
typedef struct qlab_plot_hist {
    double lo, hi;
    size_t nbins;
    const uint32_t *counts;
    const char *title;
} qlab_plot_hist;
void qlab_plot_render_histogram(cairo_t *cr, double w, double h, const qlab_plot_hist *hist,
                                const qlab_plot_theme *t);

/* --- files --- */
typedef void (*qlab_plot_draw_fn)(cairo_t *cr, double w, double h, void *ctx);
/* Renders draw into path; the format follows the extension (.png, .svg, .pdf).
 * Returns 0, -EINVAL for an unknown extension, -EIO when cairo fails to write. */
int qlab_plot_export(const char *path, double w, double h, qlab_plot_draw_fn draw, void *ctx);
/* Releases Cairo's and fontconfig's process-wide font caches (for command-line tools at
 * exit, so leak checkers see a clean heap). No Cairo call may follow. */
void qlab_plot_shutdown(void);
