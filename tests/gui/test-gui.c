/* test-gui — qlab-gui's window on a fixture database, under a real X server (xvfb-run).
 *
 * Checks, against the database itself: selecting an experiment puts one point per done
 * run in the chart's model and its front matches the store's frontier view; a rendered
 * screenshot has ink where the markers must be; clicking a run (through the chart's hit
 * test) shows that run's details; the histogram view holds the stored counts; filters;
 * a run committed by another connection appears without a reload; export writes files.
 * With QLAB_GUI_SCREENSHOT=FILE.png it also saves a screenshot of the whole window. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gtk/gtk.h>
#include <sqlite3.h>

#include "gui-fixture.h"
#include "qlab-window.h"

static char *tmpdir, *db_path;
static QlabWindow *win;

static void wait_idle(void)
{
    gint64 until = g_get_monotonic_time() + 15 * G_TIME_SPAN_SECOND;
    /* Let pending loads start and finish, then a few more iterations for redraws. */
    while (g_get_monotonic_time() < until &&
           (qlab_window_is_busy(win) || qlab_window_get_n_experiments(win) == 0))
        g_main_context_iteration(NULL, TRUE);
    for (int i = 0; i < 20 && g_main_context_iteration(NULL, FALSE); i++)
        ;
    assert_false(qlab_window_is_busy(win));
}

static gint64 db_int(const char *sql, gint64 arg)
{
    return fixture_query_int(db_path, sql, arg);
}

static double db_double(const char *sql, gint64 arg)
{
    return fixture_query_double(db_path, sql, arg);
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qlab-gui-test-XXXXXX", NULL);
    if (!tmpdir)
        return -1;
    /* No user config, no daemon (test-live covers the daemon). */
    fixture_isolate_env(tmpdir);
    db_path = g_build_filename(tmpdir, "fixture.db", NULL);
    const char *root = g_getenv("QLAB_SOURCE_ROOT");
    char *schema = g_build_filename(root ? root : ".", "daemon", "store", "schema.sql", NULL);
    char msg[256];
    int r = fixture_create(db_path, schema, 0, msg);
    g_free(schema);
    if (r < 0) {
        fprintf(stderr, "fixture: %s\n", msg);
        return -1;
    }
    gtk_init();
    /* QLAB_GUI_DARK=1 takes the screenshot in the dark style (what QlabApp sets when the
     * desktop prefers dark). */
    if (g_strcmp0(g_getenv("QLAB_GUI_DARK"), "1") == 0)
        g_object_set(gtk_settings_get_default(), "gtk-application-prefer-dark-theme", TRUE, NULL);
    win = qlab_window_new(NULL);
    gtk_window_set_default_size(GTK_WINDOW(win), 1400, 900);
    gtk_window_present(GTK_WINDOW(win));
    qlab_window_open(win, db_path);
    wait_idle();
    return 0;
}

static int teardown(void **state)
{
    gtk_window_destroy(GTK_WINDOW(win));
    while (g_main_context_iteration(NULL, FALSE))
        ;
    char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    g_free(cmd);
    g_free(db_path);
    g_free(tmpdir);
    return 0;
}

static void test_one_point_per_run(void **state)
{
    assert_int_equal(qlab_window_get_n_experiments(win), 2);
    assert_true(qlab_window_select_experiment(win, 1));
    wait_idle();
    QlabChart *chart = qlab_window_get_chart(win);
    const qlab_plot_data *d = qlab_chart_get_data(chart);
    gint64 done =
        db_int("SELECT count(*) FROM runs WHERE experiment_id = ? AND status = 'done'", 1);
    assert_int_equal(done, fixture_exp1_done());
    assert_int_equal(d->n, done);
    assert_int_equal(qlab_chart_get_n_points(chart), done);
    /* Every point is a distinct done run of experiment 1. */
    for (size_t i = 0; i < d->n; i++) {
        assert_int_equal(db_int("SELECT count(*) FROM runs WHERE id = ? AND experiment_id = 1 "
                                "AND status = 'done'",
                                d->points[i].run_id),
                         1);
        if (i)
            assert_true(d->points[i].run_id > d->points[i - 1].run_id);
    }
    /* The chart's front is the store's frontier view. */
    assert_int_equal(d->n_front,
                     db_int("SELECT count(*) FROM frontier WHERE experiment_id = ?", 1));
    for (size_t k = 0; k < d->n_front; k++)
        assert_int_equal(
            db_int("SELECT count(*) FROM frontier WHERE id = ?", d->points[d->front[k]].run_id), 1);
    /* Experiment 2 replaces the model. */
    assert_true(qlab_window_select_experiment(win, 2));
    wait_idle();
    assert_int_equal(qlab_chart_get_n_points(chart), 8);
    assert_true(qlab_window_select_experiment(win, 1));
    wait_idle();
    assert_int_equal(qlab_chart_get_n_points(chart), done);
}

static gboolean count_frame(GtkWidget *w, GdkFrameClock *clock, gpointer data)
{
    (*(int *)data)++;
    return G_SOURCE_CONTINUE;
}

/* Waits until the window has drawn two frames since now, so every widget has its size
 * and its current render node. */
static void wait_frames(void)
{
    int frames = 0;
    guint id = gtk_widget_add_tick_callback(GTK_WIDGET(win), count_frame, &frames, NULL);
    gtk_widget_queue_draw(GTK_WIDGET(win));
    gint64 until = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    while (frames < 2 && g_get_monotonic_time() < until)
        g_main_context_iteration(NULL, TRUE);
    gtk_widget_remove_tick_callback(GTK_WIDGET(win), id);
    assert_true(frames >= 2);
}

/* Renders a widget the way the window shows it and returns its pixels (BGRA, premultiplied
 * as GdkTexture downloads them). */
static guchar *render_widget(GtkWidget *w, int *width, int *height, GdkTexture **out_tex)
{
    wait_frames();
    *width = gtk_widget_get_width(w);
    *height = gtk_widget_get_height(w);
    GdkPaintable *p = gtk_widget_paintable_new(w);
    GtkSnapshot *s = gtk_snapshot_new();
    gdk_paintable_snapshot(p, s, *width, *height);
    GskRenderNode *node = gtk_snapshot_free_to_node(s);
    assert_non_null(node);
    GskRenderer *r = gtk_native_get_renderer(gtk_widget_get_native(w));
    GdkTexture *tex = gsk_renderer_render_texture(
        r, node, &GRAPHENE_RECT_INIT(0, 0, (float)*width, (float)*height));
    guchar *px = g_malloc((size_t)*width * (size_t)*height * 4);
    gdk_texture_download(tex, px, (size_t)*width * 4);
    gsk_render_node_unref(node);
    g_object_unref(p);
    if (out_tex)
        *out_tex = tex;
    else
        g_object_unref(tex);
    return px;
}

static void test_screenshot_has_points(void **state)
{
    QlabChart *chart = qlab_window_get_chart(win);
    const qlab_plot_data *d = qlab_chart_get_data(chart);
    int w, h;
    guchar *px = render_widget(GTK_WIDGET(chart), &w, &h, NULL);
    assert_true(w > 400 && h > 250);
    /* The chart's background is the pixel at the plot area's inner top-left corner
     * region; markers must differ from it. */
    qlab_plot_view v;
    qlab_plot_view_init(&v);
    qlab_plot_rect a = qlab_plot_area(&v, w, h);
    const guchar *bg = px + ((size_t)(a.y + 3) * (size_t)w + (size_t)(a.x + a.w - 3)) * 4;
    size_t checked = 0, inked = 0;
    for (size_t i = 0; i < d->n; i += 7) {
        double x, y;
        if (!qlab_chart_get_run_position(chart, d->points[i].run_id, &x, &y))
            continue;
        const guchar *p = px + ((size_t)y * (size_t)w + (size_t)x) * 4;
        int diff = abs(p[0] - bg[0]) + abs(p[1] - bg[1]) + abs(p[2] - bg[2]);
        checked++;
        inked += diff > 60;
    }
    assert_true(checked > 30);
    assert_int_equal(inked, checked);
    g_free(px);
}

static gint64 best_run(const qlab_plot_data *d)
{
    size_t best = 0;
    for (size_t i = 1; i < d->n; i++)
        if (d->points[i].accuracy > d->points[best].accuracy)
            best = i;
    return d->points[best].run_id;
}

static void test_click_shows_details(void **state)
{
    QlabChart *chart = qlab_window_get_chart(win);
    const qlab_plot_data *d = qlab_chart_get_data(chart);
    gint64 id = best_run(d);
    double x, y;
    assert_true(qlab_chart_get_run_position(chart, id, &x, &y));
    /* A click lands a pixel or two off; the hit test must still find the run. */
    assert_true(qlab_chart_select_at(chart, x + 1, y - 1));
    assert_int_equal(qlab_chart_get_selected_run(chart), id);
    wait_idle();
    const char *text = qlab_window_get_details(win);
    char want[64];
    g_snprintf(want, sizeof(want), "id: %" G_GINT64_FORMAT "\n", id);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "experiment_id: 1\n"));
    assert_non_null(strstr(text, "kernel: avx2"));
    /* Accuracy as stored (percent), the delta in percentage points. */
    double acc = db_double("SELECT accuracy FROM runs WHERE id = ?", id);
    double delta = db_double("SELECT accuracy_delta FROM runs WHERE id = ?", id);
    assert_true(acc > 80 && acc < 90 && delta < 0 && delta > -5);
    g_snprintf(want, sizeof(want), "\naccuracy: %.2f%%\n", acc);
    assert_non_null(strstr(text, want));
    g_snprintf(want, sizeof(want), "\naccuracy_delta: %+.2f pp\n", delta);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "\nfp32_accuracy: 88.53%\n"));
    /* The chart plots the same run at the stored percent. */
    for (size_t i = 0; i < d->n; i++)
        if (d->points[i].run_id == id)
            assert_true(fabs(100 * d->points[i].accuracy - acc) < 1e-9);
    assert_non_null(strstr(text, "compression: "));
    assert_non_null(strstr(text, "manifest:\n{\"qlab\""));
    /* Far from every point: nothing is selected and the selection stays. */
    assert_false(qlab_chart_select_at(chart, 2, 2));
    assert_int_equal(qlab_chart_get_selected_run(chart), id);
}

static void test_histograms_show_stored_counts(void **state)
{
    QlabLayerView *lv = qlab_window_get_layer_view(win);
    const qlab_results_run *det = qlab_layer_view_get_detail(lv);
    QlabChart *chart = qlab_window_get_chart(win);
    assert_non_null(det);
    assert_int_equal(det->id, qlab_chart_get_selected_run(chart));
    assert_int_equal(det->n_layers, FIXTURE_LAYERS);
    gint64 seq = db_int("SELECT seq FROM runs WHERE id = ?", det->id);
    for (guint l = 0; l < FIXTURE_LAYERS; l++) {
        qlab_layer_view_set_layer(lv, l);
        assert_int_equal(qlab_layer_view_get_layer(lv), l);
        assert_string_equal(det->layers[l].layer, fixture_layer_names[l]);
        for (int t = 0; t < 2; t++) {
            const qlab_results_hist *h = qlab_layer_view_get_histogram(lv, t ? "output" : "weight");
            assert_non_null(h);
            assert_string_equal(h->layer, fixture_layer_names[l]);
            assert_int_equal(h->nbins, FIXTURE_NBINS);
            for (int b = 0; b < FIXTURE_NBINS; b++)
                assert_int_equal(h->counts[b], fixture_hist_count(seq, (int)l, t, b));
        }
    }
    /* The stored blob round-trips: its sum equals SQLite's view of the same bytes. */
    gint64 bytes = db_int("SELECT sum(length(counts)) FROM histograms WHERE run_id = ?", det->id);
    assert_int_equal(bytes, 4 * FIXTURE_NBINS * 2 * FIXTURE_LAYERS);
    qlab_layer_view_set_layer(lv, 0);
}

static void test_filters(void **state)
{
    QlabChart *chart = qlab_window_get_chart(win);
    qlab_plot_filter f;
    qlab_plot_filter_init(&f);
    f.scheme = QLAB_SCHEME_ASYMMETRIC;
    qlab_chart_set_filter(chart, &f);
    assert_int_equal(qlab_chart_get_n_points(chart),
                     db_int("SELECT count(*) FROM runs WHERE experiment_id = ? AND status = 'done' "
                            "AND scheme = 'asymmetric'",
                            1));
    qlab_plot_filter_init(&f);
    f.bits_min = f.bits_max = 4;
    f.act_bits = 8;
    f.calibration = QLAB_CALIB_MSE;
    qlab_chart_set_filter(chart, &f);
    assert_int_equal(qlab_chart_get_n_points(chart),
                     db_int("SELECT count(*) FROM runs WHERE experiment_id = ? AND status = 'done' "
                            "AND bits = 4 AND act_bits = 8 AND calibration = 'mse'",
                            1));
    qlab_plot_filter_init(&f);
    qlab_chart_set_filter(chart, &f);
    assert_int_equal(qlab_chart_get_n_points(chart), fixture_exp1_done());
}

static void test_live_update(void **state)
{
    QlabChart *chart = qlab_window_get_chart(win);
    size_t before = qlab_chart_get_data(chart)->n;
    assert_false(qlab_window_is_live(win));
    assert_string_equal(qlab_window_get_live_status(win), "live: polling");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO runs(experiment_id, seq, bits, scheme, granularity,"
                                  " calibration, config, config_hash, status, accuracy,"
                                  " total_bytes, weight_bytes, bits_per_weight) VALUES (1, 999,"
                                  " 7, 'symmetric', 'channel', 'mse', 'live', 'feedfeedfeedfeed',"
                                  " 'done', 88.0, 210000, 208000, 7.1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    /* No reload call and no daemon: the poller must see the commit within a second. */
    gint64 until = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    while (g_get_monotonic_time() < until && qlab_chart_get_data(chart)->n == before)
        g_main_context_iteration(NULL, TRUE);
    assert_int_equal(qlab_chart_get_data(chart)->n, before + 1);
    wait_idle();
}

static void test_export(void **state)
{
    static const char *const exts[] = {"png", "svg", "pdf"};
    static const char *const magic[] = {"\x89PNG", "<?xml", "%PDF"};
    for (int i = 0; i < 3; i++) {
        char *path = g_strdup_printf("%s/plot.%s", tmpdir, exts[i]);
        GError *error = NULL;
        assert_true(qlab_window_export(win, path, &error));
        char *buf = NULL;
        gsize len = 0;
        assert_true(g_file_get_contents(path, &buf, &len, NULL));
        assert_true(len > 1000);
        assert_memory_equal(buf, magic[i], strlen(magic[i]));
        g_free(buf);
        g_free(path);
    }
    GError *error = NULL;
    assert_false(qlab_window_export(win, "/nonexistent-dir/x.png", &error));
    assert_non_null(error);
    g_clear_error(&error);
    assert_false(qlab_window_export(win, "x.bmp", &error));
    g_clear_error(&error);
}

static void test_screenshot_file(void **state)
{
    const char *out = g_getenv("QLAB_GUI_SCREENSHOT");
    if (!out)
        skip();
    int w, h;
    GdkTexture *tex;
    g_free(render_widget(GTK_WIDGET(win), &w, &h, &tex));
    assert_true(gdk_texture_save_to_png(tex, out));
    g_object_unref(tex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_point_per_run),
        cmocka_unit_test(test_screenshot_has_points),
        cmocka_unit_test(test_click_shows_details),
        cmocka_unit_test(test_histograms_show_stored_counts),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_export),
        cmocka_unit_test(test_screenshot_file),
        cmocka_unit_test(test_live_update),
    };
    return cmocka_run_group_tests_name("gui", tests, setup, teardown);
}
