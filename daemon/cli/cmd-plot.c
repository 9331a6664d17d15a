/* cmd-plot.c — `qlab plot ID --out FILE.png|FILE.svg|FILE.pdf [--db PATH]`: renders an
 * experiment's accuracy-versus-memory frontier with the same Cairo code as qlab-gui's
 * chart, without a display. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-cli.h"
#include "qlab-plot.h"
#include "qlab-results.h"

struct plot_job {
    const qlab_plot_data *data;
    const qlab_plot_view *view;
    const qlab_plot_theme *theme;
};

static void draw(cairo_t *cr, double w, double h, void *ctx)
{
    const struct plot_job *j = ctx;
    qlab_plot_render_frontier(cr, w, h, j->data, j->view, j->theme);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qlab plot ID --out FILE.png|FILE.svg|FILE.pdf [--db PATH]\n"
               "                    [--x bytes|bpw] [--linear] [--size WxH] [--dark]\n\n"
               "Draws experiment ID's accuracy-versus-memory frontier (every finished run, the\n"
               "Pareto front and the FP32 accuracy) as qlab-gui shows it. The format follows\n"
               "the extension. Default database: ./qlab.db; x axis: total bytes, log scale.\n");
}

static int parse_id(const char *s, long long *id)
{
    char *end;
    errno = 0;
    *id = strtoll(s, &end, 10);
    return errno || end == s || *end || *id < 0 ? -EINVAL : 0;
}

int qlab_cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *dbpath = "qlab.db", *ids = NULL;
    enum qlab_plot_x xm = QLAB_PLOT_X_BYTES;
    int log_x = 1, dark = 0;
    double w = 960, h = 600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o") || !strcmp(a, "--db") ||
                   !strcmp(a, "--x") || !strcmp(a, "--size")) {
            if (!val) {
                fprintf(stderr, "qlab: plot: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (!strcmp(a, "--db"))
                dbpath = val;
            else if (!strcmp(a, "--x")) {
                if (!strcmp(val, "bytes"))
                    xm = QLAB_PLOT_X_BYTES;
                else if (!strcmp(val, "bpw"))
                    xm = QLAB_PLOT_X_BPW;
                else {
                    fprintf(stderr, "qlab: plot: --x must be 'bytes' or 'bpw', not '%s'\n", val);
                    return 2;
                }
            } else if (!strcmp(a, "--size")) {
                if (sscanf(val, "%lfx%lf", &w, &h) != 2 || w < 200 || h < 150 || w > 10000 ||
                    h > 10000) {
                    fprintf(stderr,
                            "qlab: plot: --size must be WxH in 200x150..10000x10000, "
                            "not '%s'\n",
                            val);
                    return 2;
                }
            } else
                out = val;
        } else if (!strcmp(a, "--linear")) {
            log_x = 0;
        } else if (!strcmp(a, "--dark")) {
            dark = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qlab: plot: unknown option '%s' (try 'qlab plot --help')\n", a);
            return 2;
        } else if (!ids) {
            ids = a;
        } else {
            fprintf(stderr, "qlab: plot: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    long long id;
    if (!ids || !out) {
        fprintf(stderr,
                "qlab: plot: %s (usage: qlab plot ID --out FILE.png|FILE.svg|FILE.pdf "
                "[--db PATH])\n",
                !ids ? "missing experiment ID" : "missing --out FILE");
        return 2;
    }
    if (parse_id(ids, &id) < 0) {
        fprintf(stderr, "qlab: plot: '%s' is not an experiment id\n", ids);
        return 2;
    }
    const char *ext = strrchr(out, '.');
    if (!ext || (strcmp(ext, ".png") && strcmp(ext, ".svg") && strcmp(ext, ".pdf"))) {
        fprintf(stderr, "qlab: plot: %s: the file name must end in .png, .svg or .pdf\n", out);
        return 2;
    }

    qlab_err err;
    qlab_err_clear(&err);
    sqlite3 *db = NULL;
    qlab_plot_data data;
    qlab_plot_data_init(&data);
    int r = qlab_results_open(dbpath, &db, &err);
    if (r == 0)
        r = qlab_results_load_runs(db, id, &data, &err);
    sqlite3_close(db);
    if (r == 0 && qlab_plot_data_normalise(&data, xm, log_x) < 0)
        r = qlab_err_set(&err, -ENOMEM, "out of memory");
    if (r < 0) {
        fprintf(stderr, "qlab: plot: %s\n", err.msg[0] ? err.msg : strerror(-r));
        qlab_plot_data_clear(&data);
        return 1;
    }
    qlab_plot_view view;
    qlab_plot_theme theme;
    qlab_plot_view_init(&view);
    qlab_plot_view_fit(&view, &data);
    qlab_plot_theme_init(&theme, dark);
    struct plot_job job = {&data, &view, &theme};
    r = qlab_plot_export(out, w, h, draw, &job);
    if (r < 0) {
        fprintf(stderr, "qlab: plot: %s: cannot write the file\n", out);
        qlab_plot_data_clear(&data);
        qlab_plot_shutdown();
        return 1;
    }
    if (data.n == 0)
        fprintf(stderr, "qlab: plot: warning: experiment %lld has no finished runs yet\n", id);
    qlab_plot_data_clear(&data);
    qlab_plot_shutdown();
    return 0;
}
