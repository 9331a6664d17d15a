/* test-screenshot — `qlab-gui --screenshot` on the fixture database, as a user runs it:
 * test-screenshot QLAB_GUI, under xvfb-run with its default 1280x1024 screen (so a
 * 1400x900 picture must not be cut down to the screen).
 *
 * Checks against the database: the default run is the most accurate run of the store's
 * frontier view, the default experiment the newest; the PNG has the requested size, is not
 * blank, and shows the per-layer SQNR bars and histograms exactly when the database holds
 * per-layer rows for that run. Every bad request exits non-zero with one "qlab-gui: ..."
 * line on stderr and writes no file. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <gtk/gtk.h>
#include <sqlite3.h>

#include "gui-fixture.h"
#include "qlab-plot.h"

static const char *qlab_gui;
static char *tmpdir, *db_path;

typedef struct {
    int status; /* exit status, -1 when killed */
    char *out, *err;
} result;

#define MAX_ARGS 16

/* Runs qlab-gui with args (NULL-terminated) and collects its exit status and output. */
static result run_gui_argv(const char *const *args)
{
    const char *argv[MAX_ARGS + 2] = {qlab_gui};
    for (int i = 0; args[i]; i++) {
        assert_true(i < MAX_ARGS);
        argv[i + 1] = args[i];
    }
    result r = {-1, NULL, NULL};
    int wait_status;
    GError *error = NULL;
    gboolean ok = g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &r.out,
                               &r.err, &wait_status, &error);
    if (!ok)
        fprintf(stderr, "spawn %s: %s\n", qlab_gui, error->message);
    assert_true(ok);
    if (WIFEXITED(wait_status))
        r.status = WEXITSTATUS(wait_status);
    return r;
}

/* Collects a NULL-terminated argument list after `head` values into args. */
static void collect(const char **args, int head, const char *first, va_list ap)
{
    int n = head;
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        assert_true(n < MAX_ARGS);
        args[n++] = a;
    }
    args[n] = NULL;
}

static result run_gui(const char *first, ...)
{
    const char *args[MAX_ARGS + 1];
    va_list ap;
    va_start(ap, first);
    collect(args, 0, first, ap);
    va_end(ap);
    return run_gui_argv(args);
}

static void result_clear(result *r)
{
    g_free(r->out);
    g_free(r->err);
}

static gint64 db_int(const char *sql, gint64 arg)
{
    return fixture_query_int(db_path, sql, arg);
}

static char *out_file(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* The experiment and run named by a successful run's stdout line. */
static void parse_shown(const result *r, const char *png, int w, int h, gint64 *exp,
                        gint64 *run)
{
    char *head = g_strdup_printf("%s: %dx%d, experiment ", png, w, h);
    assert_non_null(r->out);
    assert_true(g_str_has_prefix(r->out, head));
    long long e, k;
    assert_int_equal(sscanf(r->out + strlen(head), "%lld, run %lld", &e, &k), 2);
    *exp = e;
    *run = k;
    g_free(head);
}

typedef struct {
    int width, height;
    size_t inked; /* pixels unlike the most common colour */
    size_t bar_blue, bar_orange; /* pixels of the per-layer bars' two colours */
} png_stats;

/* The per-layer views fill their bars with palette colours 0 (weights, and the histogram
 * bars) and 3 (outputs) at alpha 0.9 on the white light-theme background; the chart's
 * markers and legend use other alphas, so these exact shades count bar pixels only. */
static int is_bar(const guchar *p, qlab_rgb c)
{
    const double a = 0.9;
    int r = (int)lround(255 * (c.r * a + 1 - a)), g = (int)lround(255 * (c.g * a + 1 - a)),
        b = (int)lround(255 * (c.b * a + 1 - a));
    return abs(p[2] - r) <= 2 && abs(p[1] - g) <= 2 && abs(p[0] - b) <= 2;
}

static png_stats load_png(const char *path)
{
    GError *error = NULL;
    GdkTexture *tex = gdk_texture_new_from_filename(path, &error);
    if (!tex)
        fprintf(stderr, "%s: %s\n", path, error->message);
    assert_non_null(tex);
    png_stats s = {gdk_texture_get_width(tex), gdk_texture_get_height(tex), 0, 0, 0};
    size_t n = (size_t)s.width * (size_t)s.height;
    guchar *px = g_malloc(n * 4);
    gdk_texture_download(tex, px, (size_t)s.width * 4);
    g_object_unref(tex);
    /* The background: the most common of a coarse colour histogram (4 bits a channel). */
    guint *hist = g_new0(guint, 4096);
    for (size_t i = 0; i < n; i++)
        hist[(px[4 * i] >> 4) << 8 | (px[4 * i + 1] >> 4) << 4 | px[4 * i + 2] >> 4]++;
    int bg = 0;
    for (int c = 1; c < 4096; c++)
        if (hist[c] > hist[bg])
            bg = c;
    g_free(hist);
    qlab_plot_theme t;
    qlab_plot_theme_init(&t, 0);
    for (size_t i = 0; i < n; i++) {
        const guchar *p = px + 4 * i;
        int c = (p[0] >> 4) << 8 | (p[1] >> 4) << 4 | p[2] >> 4;
        s.inked += c != bg;
        s.bar_blue += is_bar(p, t.palette[0]);
        s.bar_orange += is_bar(p, t.palette[3]);
    }
    g_free(px);
    return s;
}

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("qlab-shot-test-XXXXXX", NULL);
    if (!tmpdir)
        return -1;
    /* The children inherit these: no user config touched, no qlabd at the usual socket,
     * the light style whatever the desktop says (the bar colours below are light-theme). */
    fixture_isolate_env(tmpdir);
    g_setenv("QLAB_GUI_DARK", "0", TRUE);
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
    return 0;
}

static int teardown(void **state)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    g_free(cmd);
    g_free(db_path);
    g_free(tmpdir);
    return 0;
}

/* Experiment 1 at 1400x900 (wider than the 1280x1024 screen): the default run is the
 * most accurate one on the store's frontier, and its per-layer views are drawn. */
static void test_default_run(void **state)
{
    char *png = out_file("exp1.png");
    result r = run_gui("--screenshot", png, "--experiment", "1", "--size", "1400x900", db_path,
                       NULL);
    if (r.status != 0)
        fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    gint64 exp, run;
    parse_shown(&r, png, 1400, 900, &exp, &run);
    assert_int_equal(exp, 1);
    assert_int_equal(db_int("SELECT count(*) FROM frontier WHERE id = ?", run), 1);
    assert_int_equal(
        db_int("SELECT count(*) FROM frontier WHERE experiment_id = 1 AND accuracy > "
               "(SELECT accuracy FROM runs WHERE id = ?)",
               run),
        0);
    png_stats s = load_png(png);
    assert_int_equal(s.width, 1400);
    assert_int_equal(s.height, 900);
    /* Chart, text and panels: a blank or half-drawn window has far less ink. */
    assert_true(s.inked > (size_t)s.width * (size_t)s.height / 20);
    /* Three layers' SQNR bars (tens of pixels wide, tall) and two histograms. */
    assert_true(db_int("SELECT count(*) FROM layer_metrics WHERE run_id = ?", run) ==
                FIXTURE_LAYERS);
    assert_true(s.bar_orange > 1500);
    assert_true(s.bar_blue > 3000);
    result_clear(&r);
    g_free(png);
}

/* No options: the newest experiment (2, whose runs have no per-layer rows), its best run. */
static void test_defaults(void **state)
{
    char *png = out_file("newest.png");
    result r = run_gui("--screenshot", png, "--size", "900x640", db_path, NULL);
    if (r.status != 0)
        fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    gint64 exp, run;
    parse_shown(&r, png, 900, 640, &exp, &run);
    assert_int_equal(exp, db_int("SELECT max(id) FROM experiments", 0));
    assert_int_equal(exp, 2);
    assert_int_equal(run, db_int("SELECT id FROM frontier WHERE experiment_id = ? "
                                 "ORDER BY accuracy DESC, total_bytes LIMIT 1",
                                 exp));
    png_stats s = load_png(png);
    assert_int_equal(s.width, 900);
    assert_int_equal(s.height, 640);
    assert_true(s.inked > (size_t)s.width * (size_t)s.height / 20);
    /* Nothing per layer stored, nothing per layer drawn. */
    assert_int_equal(db_int("SELECT count(*) FROM layer_metrics WHERE run_id = ?", run), 0);
    assert_true(s.bar_orange < 50 && s.bar_blue < 50);
    result_clear(&r);
    g_free(png);
}

/* --run alone picks the run's experiment, even a run far from the front. */
static void test_explicit_run(void **state)
{
    gint64 worst = db_int("SELECT id FROM runs WHERE experiment_id = ? AND status = 'done' "
                          "ORDER BY accuracy, id LIMIT 1",
                          1);
    char *png = out_file("worst.png"), *id = g_strdup_printf("%" G_GINT64_FORMAT, worst);
    result r = run_gui("--screenshot", png, "--run", id, "--size", "1000x700", db_path, NULL);
    assert_int_equal(r.status, 0);
    gint64 exp, run;
    parse_shown(&r, png, 1000, 700, &exp, &run);
    assert_int_equal(exp, 1);
    assert_int_equal(run, worst);
    png_stats s = load_png(png);
    assert_int_equal(s.width, 1000);
    assert_int_equal(s.height, 700);
    assert_true(s.bar_orange > 500);
    result_clear(&r);
    g_free(id);
    g_free(png);
}

/* qlab-gui --screenshot png ARGS... (NULL-terminated) must fail: non-zero exit, exactly
 * one stderr line "qlab-gui: ...want...", nothing on stdout, no file. */
static void expect_failure(const char *png, const char *want, const char *first, ...)
{
    const char *args[MAX_ARGS + 1] = {"--screenshot", png};
    va_list ap;
    va_start(ap, first);
    collect(args, 2, first, ap);
    va_end(ap);
    result r = run_gui_argv(args);
    assert_true(r.status > 0);
    assert_non_null(r.err);
    if (!g_str_has_prefix(r.err, "qlab-gui: ") || !strstr(r.err, want))
        fprintf(stderr, "stderr was: %s", r.err);
    assert_true(g_str_has_prefix(r.err, "qlab-gui: "));
    assert_non_null(strstr(r.err, want));
    const char *nl = strchr(r.err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    assert_string_equal(r.out, "");
    assert_false(g_file_test(png, G_FILE_TEST_EXISTS));
    result_clear(&r);
}

static void test_bad_requests(void **state)
{
    char *png = out_file("bad.png");
    expect_failure(png, "no run with id 999999", "--run", "999999", db_path, NULL);
    expect_failure(png, "no experiment with id 77", "--experiment", "77", db_path, NULL);
    char *run = g_strdup_printf("%" G_GINT64_FORMAT,
                                db_int("SELECT min(id) FROM runs WHERE experiment_id = ?", 1));
    expect_failure(png, "belongs to experiment 1, not 2", "--experiment", "2", "--run", run,
                   db_path, NULL);
    g_free(run);
    char *missing = out_file("missing.db");
    expect_failure(png, "missing.db", missing, NULL);
    assert_false(g_file_test(missing, G_FILE_TEST_EXISTS)); /* read-only: never created */
    g_free(missing);
    expect_failure(png, "--size", "--size", "12x", db_path, NULL);
    g_free(png);
    /* The window comes up, but the file cannot be written. */
    char *nodir = out_file("no-such-dir/shot.png");
    expect_failure(nodir, "cannot write", db_path, NULL);
    g_free(nodir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test-screenshot QLAB_GUI\n");
        return 2;
    }
    qlab_gui = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_run),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_explicit_run),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests_name("gui-screenshot", tests, setup, teardown);
}
