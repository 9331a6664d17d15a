/* bench-plot — frontier redraw time with 100,000 runs (PRODUCT §8: the window stays
 * responsive; target: a redraw in at most 200 ms).
 *
 * bench-plot SCHEMA.sql [RUNS]: builds a fixture database with RUNS (default 100000) runs
 * in one experiment, then measures, each as the median of several repetitions:
 *   load      the worker's query (qlab_results_load_runs)
 *   normalise filters + log transform + Pareto front (once per data or filter change)
 *   redraw    qlab_plot_render_frontier at 1200x700 (what QlabChart caches per view)
 *   naive     the same markers, one cairo_fill each and no decimation: the peer the
 *             decimated scatter layer is measured against
 *   hover     one hit test over all points (runs on every pointer motion)
 *   widget    with a display: QlabChart's full snapshot rendered by GSK to a texture
 *   stall     with a display: the longest main-loop iteration while the window loads
 *             the 100,000-run experiment and draws it (responsiveness) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gtk/gtk.h>

#include "gui-fixture.h"
#include "qlab-chart.h"
#include "qlab-window.h"
#include "qlab-results.h"

#define W 1200
#define H 700
#define REPS 7

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return v[n / 2];
}

static void naive_render(cairo_t *cr, const qlab_plot_data *d, const qlab_plot_view *v,
                         const qlab_plot_theme *t)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    for (size_t i = 0; i < d->n; i++) {
        double x, y;
        if (qlab_plot_point_position(d, v, W, H, i, &x, &y) != 0)
            continue;
        const qlab_rgb c = t->palette[qlab_plot_point_colour(&d->points[i])];
        cairo_set_source_rgba(cr, c.r, c.g, c.b, 0.85);
        cairo_new_sub_path(cr);
        cairo_arc(cr, x, y, 3.6, 0, 2 * M_PI);
        cairo_fill(cr);
    }
}

static gboolean count_frame(GtkWidget *w, GdkFrameClock *clock, gpointer data)
{
    (*(int *)data)++;
    return G_SOURCE_CONTINUE;
}

/* With a display: the chart in a window, its snapshot rendered by the window's renderer. */
/* The longest gap between main-loop iterations while the window opens the database,
 * loads experiment 3 and draws it: what a user would feel as a freeze. */
static void bench_window(const char *path)
{
    QlabWindow *win = qlab_window_new(NULL);
    gtk_window_set_default_size(GTK_WINDOW(win), 1400, 900);
    gtk_window_present(GTK_WINDOW(win));
    int selected = 0, frames = 0;
    gtk_widget_add_tick_callback(GTK_WIDGET(win), count_frame, &frames, NULL);
    /* Window creation (GL context, fonts, CSS) is start-up, not loading: wait it out. */
    while (frames < 3)
        g_main_context_iteration(NULL, TRUE);
    double t0 = now_ms(), last = t0, worst = 0;
    qlab_window_open(win, path);
    while (now_ms() - t0 < 20000) {
        g_main_context_iteration(NULL, TRUE);
        double t = now_ms();
        worst = fmax(worst, t - last);
        last = t;
        if (qlab_window_is_busy(win) || qlab_window_get_n_experiments(win) == 0)
            continue;
        if (!selected) {
            selected = qlab_window_select_experiment(win, 3);
            frames = 0;
        } else if (qlab_chart_get_n_points(qlab_window_get_chart(win)) > 0 && frames >= 2) {
            break;
        }
    }
    printf("window     %8.1f ms  open + load + draw of %u runs; longest main-loop stall "
           "%.1f ms\n",
           now_ms() - t0, qlab_chart_get_n_points(qlab_window_get_chart(win)), worst);
    gtk_window_destroy(GTK_WINDOW(win));
}

static void bench_widget(qlab_plot_data *data, const char *path)
{
    if (!gtk_init_check()) {
        printf("widget     skipped (no display)\n");
        qlab_plot_data_clear(data);
        g_free(data);
        return;
    }
    GtkWidget *win = gtk_window_new();
    GtkWidget *chart = qlab_chart_new();
    gtk_window_set_child(GTK_WINDOW(win), chart);
    gtk_window_set_default_size(GTK_WINDOW(win), W, H);
    gtk_window_present(GTK_WINDOW(win));
    double t0 = now_ms();
    qlab_chart_set_data(QLAB_CHART(chart), data);
    double set_ms = now_ms() - t0;
    int frames = 0;
    gtk_widget_add_tick_callback(win, count_frame, &frames, NULL);
    while (frames < 3)
        g_main_context_iteration(NULL, TRUE);
    GskRenderer *r = gtk_native_get_renderer(GTK_NATIVE(win));
    int w = gtk_widget_get_width(chart), h = gtk_widget_get_height(chart);
    double full[REPS], hover[REPS];
    for (int k = 0; k < REPS; k++) {
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: the view changed (zoom), everything is redrawn; pass 1: only the
             * hover highlight changed, the cached layers are reused. */
            if (pass == 0)
                qlab_chart_reset_view(QLAB_CHART(chart));
            else
                qlab_chart_set_selected_run(
                    QLAB_CHART(chart), qlab_chart_get_data(QLAB_CHART(chart))->points[k].run_id);
            t0 = now_ms();
            GtkSnapshot *s = gtk_snapshot_new();
            GTK_WIDGET_GET_CLASS(chart)->snapshot(chart, s);
            GskRenderNode *node = gtk_snapshot_free_to_node(s);
            GdkTexture *tex =
                gsk_renderer_render_texture(r, node, &GRAPHENE_RECT_INIT(0, 0, (float)w, (float)h));
            (pass ? hover : full)[k] = now_ms() - t0;
            g_object_unref(tex);
            gsk_render_node_unref(node);
        }
    }
    printf("set-data   %8.1f ms  (filter + front + fit, main thread)\n", set_ms);
    printf("widget     %8.1f ms  full redraw, %dx%d, renderer %s\n", median(full, REPS), w, h,
           G_OBJECT_TYPE_NAME(r));
    printf("widget-sel %8.1f ms  highlight-only redraw (cached layers)\n", median(hover, REPS));
    gtk_window_destroy(GTK_WINDOW(win));
    bench_window(path);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-plot SCHEMA.sql [RUNS]\n");
        return 2;
    }
    long runs = argc > 2 ? atol(argv[2]) : 100000;
    char dir[] = "/tmp/qlab-bench-XXXXXX", path[64], msg[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    double t0 = now_ms();
    if (fixture_create(path, argv[1], runs, msg) < 0) {
        fprintf(stderr, "bench-plot: %s\n", msg);
        return 1;
    }
    printf("fixture    %8.1f ms  (%ld runs written)\n", now_ms() - t0, runs);

    sqlite3 *db;
    qlab_err err;
    qlab_err_clear(&err);
    if (qlab_results_open(path, &db, &err) < 0) {
        fprintf(stderr, "bench-plot: %s\n", err.msg);
        return 1;
    }
    qlab_plot_data d;
    qlab_plot_data_init(&d);
    double load[REPS], norm[REPS], draw[REPS], naive[3], hit[REPS];
    for (int k = 0; k < REPS; k++) {
        t0 = now_ms();
        if (qlab_results_load_runs(db, 3, &d, &err) < 0) {
            fprintf(stderr, "bench-plot: %s\n", err.msg);
            return 1;
        }
        load[k] = now_ms() - t0;
        t0 = now_ms();
        qlab_plot_filter f;
        qlab_plot_filter_init(&f);
        qlab_plot_data_apply_filter(&d, &f);
        qlab_plot_data_normalise(&d, QLAB_PLOT_X_BYTES, 1);
        norm[k] = now_ms() - t0;
    }
    sqlite3_close(db);
    qlab_plot_view v;
    qlab_plot_theme t;
    qlab_plot_view_init(&v);
    qlab_plot_view_fit(&v, &d);
    qlab_plot_theme_init(&t, 0);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
    cairo_t *cr = cairo_create(s);
    for (int k = 0; k < REPS; k++) {
        t0 = now_ms();
        qlab_plot_render_frontier(cr, W, H, &d, &v, &t);
        cairo_surface_flush(s);
        draw[k] = now_ms() - t0;
    }
    for (int k = 0; k < 3; k++) {
        t0 = now_ms();
        naive_render(cr, &d, &v, &t);
        cairo_surface_flush(s);
        naive[k] = now_ms() - t0;
    }
    long hits = 0;
    for (int k = 0; k < REPS; k++) {
        t0 = now_ms();
        hits += qlab_plot_hit_test(&d, &v, W, H, 300 + k, 300, 8) >= 0;
        hit[k] = now_ms() - t0;
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    double md = median(draw, REPS), mn = median(naive, 3);
    printf("load       %8.1f ms  (%zu runs, worker thread)\n", median(load, REPS), d.n);
    printf("normalise  %8.1f ms  (%zu on the front)\n", median(norm, REPS), d.n_front);
    printf("redraw     %8.1f ms  %dx%d, decimated scatter + front + axes + legend\n", md, W, H);
    printf("naive      %8.1f ms  one fill per marker; redraw is %.1fx faster\n", mn, mn / md);
    printf("hover      %8.3f ms  hit test over all points (%ld of %d probes hit)\n",
           median(hit, REPS), hits, REPS);
    printf("target     redraw <= 200 ms: %s\n", md <= 200 ? "met" : "NOT met");

    qlab_plot_data *copy = g_new(qlab_plot_data, 1);
    *copy = d; /* the chart takes ownership */
    bench_widget(copy, path);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
