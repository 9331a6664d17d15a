/* test-plot — the Cairo-only plot library and `qlab plot`, no display needed.
 * argv[1]: the qlab executable, argv[2]: daemon/store/schema.sql. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "gui-fixture.h"
#include "qlab-plot.h"
#include "qlab-results.h"

static const char *qlab_exe, *schema_path;
static char tmpdir[] = "/tmp/qlab-plot-test-XXXXXX";
static char db_path[256];

static void assert_close(double a, double b, double tol)
{
    if (!(fabs(a - b) <= tol)) {
        fprintf(stderr, "%.17g != %.17g (tol %g)\n", a, b, tol);
        fail();
    }
}

static void test_format_bytes(void **state)
{
    char b[32];
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {0, "0 B"},
        {812, "812 B"},
        {1023, "1023 B"},
        {1024, "1 KiB"},
        {1536, "1.50 KiB"},
        {27.5 * 1024, "27.5 KiB"},
        {300 * 1024, "300 KiB"},
        {1048576 * 1.25, "1.25 MiB"},
        {3.0 * (1 << 30), "3 GiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        qlab_plot_format_bytes(cases[i].v, b, sizeof(b));
        assert_string_equal(b, cases[i].s);
    }
}

static void test_ticks(void **state)
{
    double t[32];
    /* Linear: 1-2-5 steps covering the range, never more than asked. */
    size_t n = qlab_plot_ticks(0.1, 0.9, 0, 0, t, 10);
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++)
        assert_close(t[i], 0.1 * (double)(i + 1), 1e-12);
    n = qlab_plot_ticks(0.853, 0.889, 0, 0, t, 6);
    assert_true(n >= 3 && n <= 6);
    assert_close(t[1] - t[0], 0.01, 1e-12);
    assert_close(t[0], 0.86, 1e-12);
    /* Log bytes over many octaves: powers of two. */
    n = qlab_plot_ticks(1000, 4e6, 1, 1, t, 8);
    assert_true(n >= 4 && n <= 8);
    for (size_t i = 0; i < n; i++) {
        double e = log2(t[i]);
        assert_close(e, round(e), 1e-9);
        assert_true(t[i] >= 1000 && t[i] <= 4e6);
    }
    /* Under four octaves: 1 and 1.5 times powers of two. */
    n = qlab_plot_ticks(56 * 1024, 260 * 1024, 1, 1, t, 10);
    static const double want[] = {64, 96, 128, 192, 256};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_close(t[i], want[i] * 1024, 1e-6);
    /* Log decimal (bits per weight 1..30): 1, 2, 3, 4, 6, 8 per decade when they fit,
     * else 1, 2, 5. */
    n = qlab_plot_ticks(1, 30, 1, 0, t, 10);
    static const double fine[] = {1, 2, 3, 4, 6, 8, 10, 20, 30};
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++)
        assert_close(t[i], fine[i], 1e-9);
    n = qlab_plot_ticks(1, 30, 1, 0, t, 6);
    static const double coarse[] = {1, 2, 5, 10, 20};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_close(t[i], coarse[i], 1e-9);
    /* Degenerate ranges give nothing rather than garbage. */
    assert_int_equal(qlab_plot_ticks(1, 1, 0, 0, t, 10), 0);
    assert_int_equal(qlab_plot_ticks(NAN, 1, 0, 0, t, 10), 0);
}

static qlab_plot_point *random_points(size_t n, unsigned seed)
{
    qlab_plot_point *p = calloc(n, sizeof(*p));
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        p[i].run_id = (int64_t)i + 1;
        /* Few distinct values so ties in both x and accuracy occur. */
        p[i].bytes = 1000 + 100 * (rand() % 20);
        p[i].bpw = p[i].bytes / 1000;
        p[i].accuracy = (rand() % 15) / 16.0;
        p[i].bits = (uint8_t)(2 + rand() % 7);
        p[i].scheme = (uint8_t)(rand() % 2);
        p[i].granularity = (uint8_t)(rand() % 3);
        p[i].calibration = (uint8_t)(rand() % 4);
        p[i].act_bits = rand() % 2 ? 8 : 0;
        p[i].flags = QLAB_POINT_VISIBLE;
    }
    return p;
}

/* The definition, straight: dominated when another point has acc >= and x <= with one
 * strictly better. */
static int dominated(const qlab_plot_data *d, size_t i)
{
    const qlab_plot_point *a = &d->points[i];
    for (size_t j = 0; j < d->n; j++) {
        const qlab_plot_point *b = &d->points[j];
        if (j == i || !(b->flags & QLAB_POINT_VISIBLE))
            continue;
        if (b->accuracy >= a->accuracy && b->bytes <= a->bytes &&
            (b->accuracy > a->accuracy || b->bytes < a->bytes))
            return 1;
    }
    return 0;
}

static void test_pareto_matches_definition(void **state)
{
    for (unsigned seed = 1; seed <= 20; seed++) {
        qlab_plot_data d;
        qlab_plot_data_init(&d);
        size_t n = 5 + seed * 13;
        qlab_plot_data_set_points(&d, random_points(n, seed), n);
        if (seed % 2) { /* with a filter: the front is over the visible points only */
            qlab_plot_filter f;
            qlab_plot_filter_init(&f);
            f.scheme = QLAB_SCHEME_ASYMMETRIC;
            qlab_plot_data_apply_filter(&d, &f);
        }
        assert_int_equal(qlab_plot_data_normalise(&d, QLAB_PLOT_X_BYTES, 1), 0);
        size_t front = 0;
        for (size_t i = 0; i < n; i++) {
            int vis = d.points[i].flags & QLAB_POINT_VISIBLE;
            int on = (d.points[i].flags & QLAB_POINT_FRONT) != 0;
            assert_int_equal(on, vis && !dominated(&d, i));
            front += on;
            if (vis)
                assert_close(d.tx[i], log10(d.points[i].bytes), 1e-12);
        }
        assert_int_equal(front, d.n_front);
        /* The front is sorted by x, accuracy rising with it (strictly, between sizes). */
        for (size_t k = 1; k < d.n_front; k++) {
            const qlab_plot_point *a = &d.points[d.front[k - 1]], *b = &d.points[d.front[k]];
            assert_true(b->bytes >= a->bytes && b->accuracy >= a->accuracy);
            if (b->bytes > a->bytes)
                assert_true(b->accuracy > a->accuracy);
        }
        qlab_plot_data_clear(&d);
    }
}

static void test_filter(void **state)
{
    qlab_plot_data d;
    qlab_plot_data_init(&d);
    size_t n = 500;
    qlab_plot_data_set_points(&d, random_points(n, 7), n);
    qlab_plot_filter f;
    qlab_plot_filter_init(&f);
    f.bits_min = 3;
    f.bits_max = 5;
    f.granularity = QLAB_GRAN_CHANNEL;
    f.act_bits = 0;
    qlab_plot_data_apply_filter(&d, &f);
    assert_int_equal(qlab_plot_data_normalise(&d, QLAB_PLOT_X_BYTES, 0), 0);
    size_t want = 0;
    for (size_t i = 0; i < n; i++) {
        const qlab_plot_point *p = &d.points[i];
        int ok =
            p->bits >= 3 && p->bits <= 5 && p->granularity == QLAB_GRAN_CHANNEL && p->act_bits == 0;
        want += ok;
        assert_int_equal((p->flags & QLAB_POINT_VISIBLE) != 0, ok);
    }
    assert_int_equal(d.n_visible, want);
    qlab_plot_data_clear(&d);
}

/* Three points at known places, a view around them, and the geometry round trip. */
static void three_points(qlab_plot_data *d, qlab_plot_view *v)
{
    qlab_plot_point *p = calloc(3, sizeof(*p));
    double bytes[3] = {1000, 10000, 100000}, acc[3] = {0.2, 0.6, 0.9};
    for (int i = 0; i < 3; i++)
        p[i] = (qlab_plot_point){.run_id = 10 + i,
                                 .bytes = bytes[i],
                                 .bpw = 2.0 * (i + 1),
                                 .accuracy = acc[i],
                                 .bits = 4,
                                 .scheme = (uint8_t)(i % 2),
                                 .granularity = (uint8_t)i,
                                 .calibration = (uint8_t)i,
                                 .flags = QLAB_POINT_VISIBLE};
    qlab_plot_data_init(d);
    d->fp32_accuracy = 0.92;
    qlab_plot_data_set_points(d, p, 3);
    assert_int_equal(qlab_plot_data_normalise(d, QLAB_PLOT_X_BYTES, 1), 0);
    qlab_plot_view_init(v);
    qlab_plot_view_fit(v, d);
}

static void test_geometry_and_hit_test(void **state)
{
    qlab_plot_data d;
    qlab_plot_view v;
    three_points(&d, &v);
    /* Fit keeps every point and the FP32 line inside, with a margin. */
    assert_true(v.x_lo < 1000 && v.x_hi > 100000 && v.y_lo < 0.2 && v.y_hi > 0.92);
    double w = 800, h = 500, x[3], y[3];
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(qlab_plot_point_position(&d, &v, w, h, i, &x[i], &y[i]), 0);
    /* Log x: equal ratios are equal distances. */
    assert_close(x[1] - x[0], x[2] - x[1], 1e-9);
    assert_true(y[0] > y[1] && y[1] > y[2]);
    for (long i = 0; i < 3; i++) {
        assert_int_equal(qlab_plot_hit_test(&d, &v, w, h, x[i] + 3, y[i] - 2, 8), i);
    }
    assert_int_equal(qlab_plot_hit_test(&d, &v, w, h, x[0] + 30, y[0], 8), -1);
    /* Zoom in about point 1 keeps it under the pointer; zooming back out restores it. */
    qlab_plot_view v0 = v;
    qlab_plot_view_zoom(&v, &d, w, h, x[1], y[1], 0.5);
    double nx, ny;
    assert_int_equal(qlab_plot_point_position(&d, &v, w, h, 1, &nx, &ny), 0);
    assert_close(nx, x[1], 1e-6);
    assert_close(ny, y[1], 1e-6);
    assert_int_equal(qlab_plot_point_position(&d, &v, w, h, 0, &nx, &ny), -1);
    qlab_plot_view_zoom(&v, &d, w, h, x[1], y[1], 2);
    assert_close(log10(v.x_lo), log10(v0.x_lo), 1e-9);
    assert_close(v.y_hi, v0.y_hi, 1e-9);
    /* Pan by pixels moves every point by those pixels. */
    qlab_plot_view_pan(&v, &d, w, h, 25, -10);
    assert_int_equal(qlab_plot_point_position(&d, &v, w, h, 1, &nx, &ny), 0);
    assert_close(nx, x[1] + 25, 1e-6);
    assert_close(ny, y[1] - 10, 1e-6);
    qlab_plot_data_clear(&d);
}

static const unsigned char *pixel(cairo_surface_t *s, int x, int y)
{
    return cairo_image_surface_get_data(s) + (size_t)y * (size_t)cairo_image_surface_get_stride(s) +
           (size_t)x * 4;
}

static int near_colour(const unsigned char *p, qlab_rgb c, int tol)
{
    /* ARGB32 little-endian: B, G, R, A; markers are drawn at alpha 0.85 over white. */
    double a = 0.85;
    int r = (int)lround(255 * (c.r * a + (1 - a))), g = (int)lround(255 * (c.g * a + (1 - a))),
        b = (int)lround(255 * (c.b * a + (1 - a)));
    return abs(p[2] - r) <= tol && abs(p[1] - g) <= tol && abs(p[0] - b) <= tol;
}

static void test_render_frontier_pixels(void **state)
{
    qlab_plot_data d;
    qlab_plot_view v;
    three_points(&d, &v);
    qlab_plot_theme t;
    qlab_plot_theme_init(&t, 0);
    int w = 800, h = 500;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(s);
    qlab_plot_render_frontier(cr, w, h, &d, &v, &t);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    /* Each marker shows its scheme/granularity colour near its centre (the front's line
     * crosses the centre, so look within the marker's radius). */
    for (size_t i = 0; i < 3; i++) {
        double x, y;
        assert_int_equal(qlab_plot_point_position(&d, &v, w, h, i, &x, &y), 0);
        int found = 0;
        for (int dy = -3; dy <= 3 && !found; dy++)
            for (int dx = -3; dx <= 3 && !found; dx++)
                found = near_colour(pixel(s, (int)x + dx, (int)y + dy),
                                    t.palette[qlab_plot_point_colour(&d.points[i])], 6);
        assert_true(found);
    }
    /* The background is white away from the data, e.g. the plot's bottom-right corner. */
    qlab_plot_rect a = qlab_plot_area(&v, w, h);
    const unsigned char *bg = pixel(s, (int)(a.x + a.w - 4), (int)(a.y + a.h - 4));
    assert_int_equal(bg[0] + bg[1] + bg[2], 3 * 255);
    cairo_surface_destroy(s);
    /* At device scale 2 (PNG export, HiDPI) every marker lands at twice its position. */
    s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 2 * w, 2 * h);
    cairo_surface_set_device_scale(s, 2, 2);
    cr = cairo_create(s);
    qlab_plot_render_frontier(cr, w, h, &d, &v, &t);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    for (size_t i = 0; i < 3; i++) {
        double x, y;
        assert_int_equal(qlab_plot_point_position(&d, &v, w, h, i, &x, &y), 0);
        int found = 0;
        for (int dy = -5; dy <= 5 && !found; dy++)
            for (int dx = -5; dx <= 5 && !found; dx++)
                found = near_colour(pixel(s, (int)(2 * x) + dx, (int)(2 * y) + dy),
                                    t.palette[qlab_plot_point_colour(&d.points[i])], 6);
        assert_true(found);
    }
    cairo_surface_destroy(s);
    qlab_plot_data_clear(&d);
}

static void test_render_histogram_pixels(void **state)
{
    uint32_t counts[10] = {0, 1, 4, 10, 40, 100, 40, 10, 4, 1};
    qlab_plot_hist hist = {-1, 1, 10, counts, "fc1 weight error"};
    qlab_plot_theme t;
    qlab_plot_theme_init(&t, 0);
    int w = 400, h = 240;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(s);
    qlab_plot_render_histogram(cr, w, h, &hist, &t);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    /* Plot area as drawn by qlab-plot-layers.c: x 62..w-12, y 30..h-40. The peak bar
     * (bin 5) fills its column nearly to the top; bin 0 (count 0) leaves its column
     * blank just above the axis. */
    double ax = 62, aw = w - 74, ay = 30, ah = h - 70, top = 100 * 1.08;
    int peak_x = (int)(ax + aw * 5.5 / 10), empty_x = (int)(ax + aw * 0.5 / 10);
    int peak_y = (int)(ay + ah - 0.9 * 100 / top * ah);
    const unsigned char *p = pixel(s, peak_x, peak_y);
    assert_true(p[0] + p[1] + p[2] < 3 * 230);
    const unsigned char *e = pixel(s, empty_x, (int)(ay + ah - 5));
    assert_int_equal(e[0] + e[1] + e[2], 3 * 255);
    /* Bar heights are proportional to the counts: bin 4 (40) is 40 % of bin 5. */
    int x4 = (int)(ax + aw * 4.5 / 10);
    int h4 = 0;
    for (int y = (int)(ay + ah) - 1; y > ay; y--, h4++) {
        const unsigned char *q = pixel(s, x4, y);
        if (q[0] + q[1] + q[2] == 3 * 255)
            break;
    }
    assert_close(h4, 40 / top * ah, 2);
    cairo_surface_destroy(s);
}

/* A tail bin with 1 value beside a peak of 100,000 (what percentile clipping leaves)
 * still shows: 2 px of ink just above the axis, where its true height is 0.002 px. */
static void test_histogram_tail_visible(void **state)
{
    uint32_t counts[10] = {1, 0, 0, 0, 100000, 100000, 0, 0, 0, 0};
    qlab_plot_hist hist = {-1, 1, 10, counts, "fc1 weight error"};
    qlab_plot_theme t;
    qlab_plot_theme_init(&t, 0);
    int w = 400, h = 240;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(s);
    qlab_plot_render_histogram(cr, w, h, &hist, &t);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    double ax = 62, aw = w - 74, ay = 30, ah = h - 70;
    int x0 = (int)(ax + aw * 0.5 / 10), x1 = (int)(ax + aw * 1.5 / 10);
    int base = (int)(ay + ah) - 1;
    const unsigned char *tail = pixel(s, x0, base), *empty = pixel(s, x1, base);
    assert_true(tail[0] + tail[1] + tail[2] < 3 * 230);
    assert_int_equal(empty[0] + empty[1] + empty[2], 3 * 255);
    /* ... and no more than that: 3 px above the axis is background again. */
    const unsigned char *above = pixel(s, x0, base - 3);
    assert_int_equal(above[0] + above[1] + above[2], 3 * 255);
    cairo_surface_destroy(s);
}

static void draw_three(cairo_t *cr, double w, double h, void *ctx)
{
    qlab_plot_data *d = ctx;
    qlab_plot_view v;
    qlab_plot_theme t;
    qlab_plot_view_init(&v);
    qlab_plot_view_fit(&v, d);
    qlab_plot_theme_init(&t, 1);
    qlab_plot_render_frontier(cr, w, h, d, &v, &t);
}

static void test_export_formats(void **state)
{
    qlab_plot_data d;
    qlab_plot_view v;
    three_points(&d, &v);
    static const char *const ext[] = {"png", "svg", "pdf"};
    static const char *const magic[] = {"\x89PNG", "<?xml", "%PDF"};
    char path[512], head[8];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/three.%s", tmpdir, ext[i]);
        assert_int_equal(qlab_plot_export(path, 640, 400, draw_three, &d), 0);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(head, 1, 5, f), 5);
        fclose(f);
        assert_memory_equal(head, magic[i], strlen(magic[i]));
    }
    snprintf(path, sizeof(path), "%s/three.bmp", tmpdir);
    assert_int_equal(qlab_plot_export(path, 640, 400, draw_three, &d), -EINVAL);
    assert_int_equal(qlab_plot_export("/nonexistent-dir/x.png", 640, 400, draw_three, &d), -EIO);
    qlab_plot_data_clear(&d);
}

static void test_results_reader(void **state)
{
    sqlite3 *db;
    qlab_err err;
    qlab_err_clear(&err);
    assert_int_equal(qlab_results_open(db_path, &db, &err), 0);
    qlab_results_exp *rows;
    size_t n;
    assert_int_equal(qlab_results_experiments(db, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[1].id, 1);
    assert_string_equal(rows[1].name, "mlp-sweep");
    assert_int_equal(rows[1].runs_done, fixture_exp1_done());
    assert_int_equal(rows[1].runs_total, fixture_exp1_done() + 2);
    assert_close(rows[1].fp32_accuracy, 0.8853, 1e-12);
    qlab_results_exps_free(rows, n);
    qlab_plot_data d;
    qlab_plot_data_init(&d);
    assert_int_equal(qlab_results_load_runs(db, 1, &d, &err), 0);
    assert_int_equal(d.n, fixture_exp1_done());
    assert_int_equal(qlab_results_load_runs(db, 42, &d, &err), -ENOENT);
    assert_string_equal(err.msg, "no experiment with id 42");
    qlab_plot_data_clear(&d);
    sqlite3_close(db);
    /* The database is in percent, always: a model below 1.5 % (here 1.2 %) is not taken
     * for a fraction. The plot's fractions are the stored percent / 100, whatever the
     * magnitude, and the run is described (tooltip) at 1.20 %. */
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO runs(id, experiment_id, seq, bits, scheme,"
                                  " granularity, calibration, config, config_hash, status,"
                                  " accuracy, accuracy_delta, weight_bytes, total_bytes,"
                                  " bits_per_weight) VALUES (5000, 2, 99, 2, 'symmetric',"
                                  " 'tensor', 'minmax', 'low', '00000000000low12', 'done', 1.2,"
                                  " -88.92, 60000, 62000, 2.03)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    qlab_plot_data_init(&d);
    assert_int_equal(qlab_results_open(db_path, &db, &err), 0);
    assert_int_equal(qlab_results_load_runs(db, 2, &d, &err), 0);
    assert_int_equal(d.n, 9);
    assert_close(d.fp32_accuracy, 0.9012, 1e-12);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT accuracy FROM runs WHERE id = ?", -1, &st,
                                        NULL),
                     SQLITE_OK);
    const qlab_plot_point *low = NULL;
    for (size_t i = 0; i < d.n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, d.points[i].run_id);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_close(d.points[i].accuracy, sqlite3_column_double(st, 0) / 100, 1e-12);
        if (d.points[i].run_id == 5000)
            low = &d.points[i];
    }
    sqlite3_finalize(st);
    assert_non_null(low);
    assert_close(low->accuracy, 0.012, 1e-12);
    char text[200];
    qlab_plot_point_describe(low, text, sizeof(text));
    assert_non_null(strstr(text, "— 1.20%,"));
    /* Drawn at 1.2 % on the y axis: the fitted view reaches down to it, and its marker
     * sits where the axis maps 0.012. */
    assert_int_equal(qlab_plot_data_normalise(&d, QLAB_PLOT_X_BYTES, 1), 0);
    qlab_plot_view v;
    qlab_plot_view_init(&v);
    qlab_plot_view_fit(&v, &d);
    assert_true(v.y_lo < 0.012 && v.y_hi > 0.9012);
    double px, py;
    assert_int_equal(qlab_plot_point_position(&d, &v, 800, 500, (size_t)(low - d.points), &px,
                                              &py),
                     0);
    qlab_plot_rect a = qlab_plot_area(&v, 800, 500);
    assert_close(py, a.y + a.h - (0.012 - v.y_lo) / (v.y_hi - v.y_lo) * a.h, 1e-9);
    /* The details pane prints the stored percent and percentage points. */
    qlab_results_run det;
    assert_int_equal(qlab_results_run_detail(db, 5000, &det, &err), 0);
    assert_non_null(strstr(det.summary, "\naccuracy: 1.20%\n"));
    assert_non_null(strstr(det.summary, "\naccuracy_delta: -88.92 pp\n"));
    assert_non_null(strstr(det.summary, "\nfp32_accuracy: 90.12%\n"));
    qlab_results_run_clear(&det);
    qlab_plot_data_clear(&d);
    sqlite3_close(db);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM runs WHERE id = 5000", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    qlab_err_clear(&err);
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/missing.db", tmpdir);
    assert_true(qlab_results_open(bad, &db, &err) < 0);
    assert_non_null(strstr(err.msg, "missing.db"));
    /* A file that is SQLite but not qlab's. */
    snprintf(bad, sizeof(bad), "%s/other.db", tmpdir);
    assert_int_equal(sqlite3_open(bad, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    qlab_err_clear(&err);
    assert_int_equal(qlab_results_open(bad, &db, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "not a qlab results database"));
}

/* Runs qlab with args; returns its exit status and the first stderr line in line. */
static int run_qlab(char *line, size_t len, const char *const *args)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        const char *argv[16] = {qlab_exe};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(qlab_exe, (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    line[0] = '\0';
    if (!fgets(line, (int)len, f))
        line[0] = '\0';
    while (fgetc(f) != EOF)
        ;
    fclose(f);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_plot(void **state)
{
    char out[300], line[512];
    snprintf(out, sizeof(out), "%s/cli.png", tmpdir);
    const char *ok[] = {"plot", "1", "--db", db_path, "--out", out, NULL};
    assert_int_equal(run_qlab(line, sizeof(line), ok), 0);
    /* The PNG is the frontier at twice the default 960x600. */
    cairo_surface_t *s = cairo_image_surface_create_from_png(out);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(s), 1920);
    assert_int_equal(cairo_image_surface_get_height(s), 1200);
    cairo_surface_destroy(s);
    snprintf(out, sizeof(out), "%s/cli.svg", tmpdir);
    const char *svg[] = {"plot", "2", "--db", db_path, "--out", out, "--x", "bpw", NULL};
    assert_int_equal(run_qlab(line, sizeof(line), svg), 0);
    assert_int_equal(access(out, R_OK), 0);

    const char *help[] = {"plot", "--help", NULL};
    assert_int_equal(run_qlab(line, sizeof(line), help), 0);
    const char *missing[] = {"plot", "9", "--db", db_path, "--out", out, NULL};
    assert_int_equal(run_qlab(line, sizeof(line), missing), 1);
    assert_string_equal(line, "qlab: plot: no experiment with id 9\n");
    const char *noout[] = {"plot", "1", "--db", db_path, NULL};
    assert_int_equal(run_qlab(line, sizeof(line), noout), 2);
    assert_non_null(strstr(line, "qlab: plot: missing --out FILE"));
    const char *badext[] = {"plot", "1", "--db", db_path, "--out", "x.jpg", NULL};
    assert_int_equal(run_qlab(line, sizeof(line), badext), 2);
    assert_non_null(strstr(line, "must end in .png, .svg or .pdf"));
    const char *nodb[] = {"plot", "1", "--db", "/nonexistent/q.db", "--out", out, NULL};
    assert_int_equal(run_qlab(line, sizeof(line), nodb), 1);
    assert_non_null(strstr(line, "qlab: plot: /nonexistent/q.db: "));
}

static int setup(void **state)
{
    char msg[256];
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/fixture.db", tmpdir);
    if (fixture_create(db_path, schema_path, 0, msg) < 0) {
        fprintf(stderr, "fixture: %s\n", msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    qlab_plot_shutdown();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test-plot QLAB_EXE SCHEMA.sql\n");
        return 2;
    }
    qlab_exe = argv[1];
    schema_path = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_bytes),
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_pareto_matches_definition),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_geometry_and_hit_test),
        cmocka_unit_test(test_render_frontier_pixels),
        cmocka_unit_test(test_render_histogram_pixels),
        cmocka_unit_test(test_histogram_tail_visible),
        cmocka_unit_test(test_export_formats),
        cmocka_unit_test(test_results_reader),
        cmocka_unit_test(test_cli_plot),
    };
    return cmocka_run_group_tests_name("plot", tests, setup, teardown);
}
