/* qlab-screenshot.c — qlab-gui's --screenshot mode (see qlab-screenshot.h).
 *
 * Everything that can be wrong with the request (no database, no such experiment or run)
 * is checked on a connection of our own before any window exists, so each failure is one
 * plain message. The window itself then does exactly what it does for a user: its loads
 * run in worker threads and we iterate the main loop until qlab_window_is_busy() is FALSE
 * and two frames have been drawn, so every widget has its final size and render node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gtk/gtk.h>

#include "qlab-app.h"
#include "qlab-screenshot.h"
#include "qlab-window.h"

/* Loading the fashion-mlp database takes well under a second; a minute means something
 * is stuck (e.g. a writer holding the database locked). */
#define LOAD_TIMEOUT_S 60
#define FRAME_TIMEOUT_S 20
#define MIN_SIDE 200
#define MAX_SIDE 8192

static const char *const options[] = {"--screenshot", "--experiment", "--run", "--size"};

/* The option argv[*i] names (with its value after '=' or in the next argument), or -1. */
static int match_option(int argc, char **argv, int *i, const char **value)
{
    for (int k = 0; k < (int)G_N_ELEMENTS(options); k++) {
        size_t n = strlen(options[k]);
        if (strncmp(argv[*i], options[k], n) != 0)
            continue;
        if (argv[*i][n] == '=') {
            *value = argv[*i] + n + 1;
            return k;
        }
        if (argv[*i][n] == '\0') {
            *value = *i + 1 < argc ? argv[++*i] : NULL;
            return k;
        }
    }
    return -1;
}

gboolean qlab_screenshot_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--"))
            return FALSE;
        if (match_option(argc, argv, &i, &v) >= 0)
            return TRUE;
    }
    return FALSE;
}

static int parse_id(const char *opt, const char *s, gint64 *out, qlab_err *err)
{
    guint64 v;
    if (!g_ascii_string_to_unsigned(s, 10, 1, G_MAXINT64, &v, NULL))
        return qlab_err_set(err, -EINVAL, "%s wants a positive integer id, not '%s'", opt, s);
    *out = (gint64)v;
    return 0;
}

static int parse_size(const char *s, int *w, int *h, qlab_err *err)
{
    char *end;
    gint64 a = g_ascii_strtoll(s, &end, 10);
    gint64 b = -1;
    if (end != s && (*end == 'x' || *end == 'X')) {
        const char *t = end + 1;
        b = g_ascii_strtoll(t, &end, 10);
        if (end == t || *end != '\0')
            b = -1;
    }
    if (a < MIN_SIDE || a > MAX_SIDE || b < MIN_SIDE || b > MAX_SIDE)
        return qlab_err_set(err, -EINVAL,
                            "--size wants WIDTHxHEIGHT in pixels, each %d to %d (e.g. 1400x900), "
                            "not '%s'",
                            MIN_SIDE, MAX_SIDE, s);
    *w = (int)a;
    *h = (int)b;
    return 0;
}

int qlab_screenshot_parse(int argc, char **argv, qlab_screenshot_opts *o, qlab_err *err)
{
    *o = (qlab_screenshot_opts){.experiment = -1,
                                .run = -1,
                                .width = QLAB_SCREENSHOT_DEFAULT_WIDTH,
                                .height = QLAB_SCREENSHOT_DEFAULT_HEIGHT};
    gboolean only_paths = FALSE;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int k = only_paths ? -1 : match_option(argc, argv, &i, &v);
        if (k < 0 && !only_paths && !strcmp(argv[i], "--")) {
            only_paths = TRUE;
            continue;
        }
        if (k < 0 && !only_paths && argv[i][0] == '-' && argv[i][1] != '\0')
            return qlab_err_set(err, -EINVAL, "unknown option '%s' (see qlab-gui --help)",
                                argv[i]);
        if (k < 0) {
            if (o->db)
                return qlab_err_set(err, -EINVAL, "one database at a time: '%s' and '%s'",
                                    o->db, argv[i]);
            o->db = argv[i];
            continue;
        }
        if (!v || !*v)
            return qlab_err_set(err, -EINVAL, "%s needs a value (see qlab-gui --help)",
                                options[k]);
        int r = 0;
        switch (k) {
        case 0:
            o->out = v;
            break;
        case 1:
            r = parse_id(options[k], v, &o->experiment, err);
            break;
        case 2:
            r = parse_id(options[k], v, &o->run, err);
            break;
        default:
            r = parse_size(v, &o->width, &o->height, err);
            break;
        }
        if (r < 0)
            return r;
    }
    if (!o->out)
        return qlab_err_set(err, -EINVAL,
                            "--experiment, --run and --size go with --screenshot FILE.png");
    if (!o->db)
        return qlab_err_set(err, -EINVAL,
                            "--screenshot needs a database: qlab-gui --screenshot %s DB", o->out);
    return 0;
}

/* Resolves the experiment to show, on a connection of our own, so that a wrong path or
 * id fails here with the store's message rather than as a status-bar line nobody reads. */
static int resolve_experiment(const qlab_screenshot_opts *o, gint64 *experiment, qlab_err *err)
{
    sqlite3 *db;
    int r = qlab_results_open(o->db, &db, err);
    if (r < 0)
        return r;
    gint64 id = o->experiment;
    if (o->run >= 0) {
        int64_t e = -1;
        r = qlab_results_run_experiment(db, o->run, &e, err);
        if (r == 0 && id >= 0 && e != id)
            r = qlab_err_set(err, -ENOENT,
                             "run %" G_GINT64_FORMAT " belongs to experiment %" G_GINT64_FORMAT
                             ", not %" G_GINT64_FORMAT,
                             o->run, (gint64)e, id);
        id = e;
    } else if (id >= 0) {
        qlab_results_exp row;
        r = qlab_results_experiment(db, id, &row, err);
        if (r == 0) {
            free(row.name);
            free(row.status);
        }
    } else {
        qlab_results_exp *rows;
        size_t n;
        r = qlab_results_experiments(db, &rows, &n, err);
        /* Newest first, as the window lists them and picks one. */
        if (r == 0 && n == 0)
            r = qlab_err_set(err, -ENOENT, "%s: no experiments yet", o->db);
        if (r == 0)
            id = rows[0].id;
        if (r == 0)
            qlab_results_exps_free(rows, n);
    }
    sqlite3_close(db);
    if (r == 0)
        *experiment = id;
    return r;
}

static gboolean wake(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

/* Iterates the main loop until done(win) or the timeout; the short timer makes sure the
 * clock is looked at even when nothing else happens. */
static gboolean iterate_until(QlabWindow *win, gboolean (*done)(QlabWindow *), int timeout_s)
{
    guint tick = g_timeout_add(50, wake, NULL);
    gint64 until = g_get_monotonic_time() + timeout_s * G_TIME_SPAN_SECOND;
    gboolean ok;
    while (!(ok = done(win)) && g_get_monotonic_time() < until)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(tick);
    return ok;
}

static gboolean listed(QlabWindow *win)
{
    return qlab_window_get_n_experiments(win) > 0 && !qlab_window_is_busy(win);
}

static gboolean idle(QlabWindow *win)
{
    return !qlab_window_is_busy(win);
}

static gboolean count_frame(GtkWidget *w, GdkFrameClock *clock, gpointer data)
{
    (*(int *)data)++;
    return G_SOURCE_CONTINUE;
}

static int frames_drawn;

static gboolean two_frames(QlabWindow *win)
{
    return frames_drawn >= 2;
}

/* The run a user would look at first: the most accurate one on the Pareto front (among
 * equally accurate ones, the smallest, which comes first in the front's x order). */
static gint64 best_front_run(QlabWindow *win)
{
    const qlab_plot_data *d = qlab_chart_get_data(qlab_window_get_chart(win));
    if (!d || !d->n_front)
        return -1;
    size_t best = d->front[0];
    for (size_t k = 1; k < d->n_front; k++)
        if (d->points[d->front[k]].accuracy > d->points[best].accuracy)
            best = d->front[k];
    return d->points[best].run_id;
}

static gboolean draw_two_frames(QlabWindow *win)
{
    frames_drawn = 0;
    guint id = gtk_widget_add_tick_callback(GTK_WIDGET(win), count_frame, &frames_drawn, NULL);
    gtk_widget_queue_draw(GTK_WIDGET(win));
    gboolean drawn = iterate_until(win, two_frames, FRAME_TIMEOUT_S);
    gtk_widget_remove_tick_callback(GTK_WIDGET(win), id);
    return drawn;
}

/* Gives the window widget exactly width x height. A size request, unlike the default
 * size, is not cut down to the monitor's work area, so a 1400x900 picture can be taken on
 * xvfb-run's default 1280x1024 screen (X draws the part beyond it all the same). The
 * surface also holds the client-side decorations' margins, so the widget comes out
 * smaller than asked by their width: measure the difference and ask again. */
static gboolean fit_size(QlabWindow *win, int width, int height)
{
    GtkWidget *w = GTK_WIDGET(win);
    int extra_w = 0, extra_h = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        gtk_window_set_default_size(GTK_WINDOW(win), width + extra_w, height + extra_h);
        gtk_widget_set_size_request(w, width + extra_w, height + extra_h);
        if (!draw_two_frames(win))
            return FALSE;
        int got_w = gtk_widget_get_width(w), got_h = gtk_widget_get_height(w);
        if (got_w == width && got_h == height)
            return TRUE;
        /* Larger than asked: that is the window's minimum size, no use asking again. */
        if (got_w > width + extra_w || got_h > height + extra_h)
            return FALSE;
        extra_w += width - got_w;
        extra_h += height - got_h;
    }
    return FALSE;
}

/* The window's current picture, drawn by its own renderer into a texture (what the test
 * suite's render_widget does), encoded as PNG and written to path. */
static int save_png(GtkWidget *w, const char *path, qlab_err *err)
{
    int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
    GdkPaintable *p = gtk_widget_paintable_new(w);
    GtkSnapshot *s = gtk_snapshot_new();
    gdk_paintable_snapshot(p, s, width, height);
    GskRenderNode *node = gtk_snapshot_free_to_node(s);
    g_object_unref(p);
    if (!node)
        return qlab_err_set(err, -EIO, "the window drew nothing");
    GskRenderer *renderer = gtk_native_get_renderer(gtk_widget_get_native(w));
    GdkTexture *tex = gsk_renderer_render_texture(
        renderer, node, &GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height));
    gsk_render_node_unref(node);
    GBytes *png = gdk_texture_save_to_png_bytes(tex);
    g_object_unref(tex);
    gsize len;
    const char *data = g_bytes_get_data(png, &len);
    /* Plain stdio rather than g_file_set_contents, whose message would name its temporary
     * file instead of the one asked for. */
    FILE *f = fopen(path, "wb");
    int r = f ? 0 : -errno;
    if (f && fwrite(data, 1, len, f) != len)
        r = -errno;
    if (f && fclose(f) != 0 && r == 0)
        r = -errno;
    g_bytes_unref(png);
    if (r < 0) {
        if (f)
            remove(path);
        return qlab_err_set(err, r, "cannot write %s: %s", path, g_strerror(-r));
    }
    return 0;
}

static int take(QlabWindow *win, const qlab_screenshot_opts *o, gint64 experiment,
                gint64 *shown_run, qlab_err *err)
{
    GtkWidget *w = GTK_WIDGET(win);
    if (!iterate_until(win, listed, LOAD_TIMEOUT_S))
        return qlab_err_set(err, -ETIMEDOUT, "%s: still loading after %d s", o->db,
                            LOAD_TIMEOUT_S);
    if (!qlab_window_select_experiment(win, experiment))
        return qlab_err_set(err, -ENOENT, "%s: experiment %" G_GINT64_FORMAT " is not listed",
                            o->db, experiment);
    if (!iterate_until(win, idle, LOAD_TIMEOUT_S))
        return qlab_err_set(err, -ETIMEDOUT, "%s: experiment %" G_GINT64_FORMAT
                            " still loading after %d s", o->db, experiment, LOAD_TIMEOUT_S);
    gint64 run = o->run >= 0 ? o->run : best_front_run(win);
    *shown_run = run;
    if (run >= 0) {
        qlab_window_select_run(win, run);
        if (!iterate_until(win, idle, LOAD_TIMEOUT_S))
            return qlab_err_set(err, -ETIMEDOUT, "%s: run %" G_GINT64_FORMAT
                                " still loading after %d s", o->db, run, LOAD_TIMEOUT_S);
        const qlab_results_run *d = qlab_layer_view_get_detail(qlab_window_get_layer_view(win));
        if (!d || d->id != run)
            return qlab_err_set(err, -EIO, "%s: could not load run %" G_GINT64_FORMAT, o->db,
                                run);
    }
    if (!fit_size(win, o->width, o->height)) {
        int got_w = gtk_widget_get_width(w), got_h = gtk_widget_get_height(w);
        if (got_w >= o->width && got_h >= o->height)
            return qlab_err_set(err, -ERANGE, "--size %dx%d is below the window's minimum, %dx%d",
                                o->width, o->height, got_w, got_h);
        return qlab_err_set(err, -ERANGE, "the window came out %dx%d, not the %dx%d asked for",
                            got_w, got_h, o->width, o->height);
    }
    return save_png(w, o->out, err);
}

int qlab_screenshot_run(const qlab_screenshot_opts *o, gint64 *experiment, gint64 *run,
                        qlab_err *err)
{
    gint64 exp_id = -1, run_id = -1;
    int r = resolve_experiment(o, &exp_id, err);
    if (r < 0)
        return r;
    /* Software rendering gives the same pixels with or without GL (Xvfb has none worth
     * using), and a screenshot has no user for the accessibility bus to serve; both stay
     * overridable from the environment. */
    g_setenv("GSK_RENDERER", "cairo", FALSE);
    g_setenv("GTK_A11Y", "none", FALSE);
    if (!gtk_init_check())
        return qlab_err_set(err, -ENXIO,
                            "cannot open a display (on a headless machine: xvfb-run -a "
                            "qlab-gui --screenshot ...)");
    qlab_app_follow_dark_style();
    QlabWindow *win = qlab_window_new(NULL);
    g_object_ref_sink(win);
    gtk_window_set_default_size(GTK_WINDOW(win), o->width, o->height);
    gtk_window_present(GTK_WINDOW(win));
    qlab_window_open(win, o->db);
    r = take(win, o, exp_id, &run_id, err);
    gtk_window_destroy(GTK_WINDOW(win));
    g_object_unref(win);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    if (r == 0) {
        *experiment = exp_id;
        *run = run_id;
    }
    return r;
}
