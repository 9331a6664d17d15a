/* qlab-screenshot.h — `qlab-gui --screenshot FILE.png [--experiment ID] [--run ID]
 * [--size WxH] DB`: the window as a user would see it after opening DB, choosing the
 * experiment and clicking a run, saved as a PNG without anyone at the keyboard (under
 * xvfb-run -a on a headless machine), for documentation and bug reports. */
#pragma once

#include <glib.h>

#include "qlab-err.h"

G_BEGIN_DECLS

#define QLAB_SCREENSHOT_DEFAULT_WIDTH 1400
#define QLAB_SCREENSHOT_DEFAULT_HEIGHT 900

typedef struct qlab_screenshot_opts {
    const char *out; /* the .png to write */
    const char *db;
    gint64 experiment; /* -1: the run's experiment, else the newest */
    gint64 run; /* -1: the most accurate run on the experiment's Pareto front */
    int width, height; /* of the whole window, in pixels */
} qlab_screenshot_opts;

/* TRUE when argv asks for screenshot mode (or uses one of its options). */
gboolean qlab_screenshot_wanted(int argc, char **argv);
/* Reads --screenshot FILE, --experiment ID, --run ID, --size WxH (also as --opt=VALUE)
 * and the database path from argv; -EINVAL with a one-line message on a bad command line.
 * The strings in o point into argv. */
int qlab_screenshot_parse(int argc, char **argv, qlab_screenshot_opts *o, qlab_err *err);
/* Checks the database, experiment and run, opens a display (gtk_init_check), shows the
 * window at the requested size, waits until every load has finished and the window has
 * drawn, and writes the PNG. Returns 0 with the experiment and run shown (-1: none, when
 * the experiment has no finished run yet), or a negative errno with err saying what
 * failed. */
int qlab_screenshot_run(const qlab_screenshot_opts *o, gint64 *experiment, gint64 *run,
                        qlab_err *err);

G_END_DECLS
