/* qlab-gui — browse qlab's results database: qlab-gui [DB]; or save a screenshot of the
 * window: qlab-gui --screenshot FILE.png [--experiment ID] [--run ID] [--size WxH] DB. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qlab-app.h"
#include "qlab-config.h"
#include "qlab-screenshot.h"

static void usage(void)
{
    printf("usage: qlab-gui [DB]\n"
           "       qlab-gui --screenshot FILE.png [--experiment ID] [--run ID] [--size WxH] DB\n"
           "\n"
           "Browse a qlab results database (default: the one opened last, else ./qlab.db).\n"
           "The window updates while qlabd writes.\n"
           "\n"
           "  --screenshot FILE.png  open DB, show it as a user would and save the whole\n"
           "                         window as a PNG, then exit: 0 and a line on stdout naming\n"
           "                         the experiment and run shown, or 1 (2: bad command line)\n"
           "                         and one line on stderr. Needs a display: on a headless\n"
           "                         machine run it under xvfb-run -a.\n"
           "  --experiment ID        the experiment to show (default: the run's, else the\n"
           "                         newest)\n"
           "  --run ID               the run to select, so its details, per-layer SQNR bars\n"
           "                         and error histograms are filled (default: the most\n"
           "                         accurate run on the experiment's Pareto front)\n"
           "  --size WxH             window size in pixels (default: %dx%d)\n"
           "  --version              print the version\n"
           "\n"
           "Environment: QLAB_GUI_DARK=1 (0) forces the dark (light) style.\n",
           QLAB_SCREENSHOT_DEFAULT_WIDTH, QLAB_SCREENSHOT_DEFAULT_HEIGHT);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("qlab-gui %s\n", QLAB_VERSION);
        return 0;
    }
    if (qlab_screenshot_wanted(argc, argv)) {
        qlab_screenshot_opts o;
        qlab_err err = {0};
        gint64 experiment, run;
        int r = qlab_screenshot_parse(argc, argv, &o, &err);
        if (r == 0)
            r = qlab_screenshot_run(&o, &experiment, &run, &err);
        if (r < 0) {
            fprintf(stderr, "qlab-gui: %s\n", err.msg[0] ? err.msg : strerror(-r));
            return r == -EINVAL ? 2 : 1;
        }
        /* Which run the default picked is worth knowing (and lets tests check it). */
        if (run >= 0)
            printf("%s: %dx%d, experiment %" G_GINT64_FORMAT ", run %" G_GINT64_FORMAT "\n",
                   o.out, o.width, o.height, experiment, run);
        else
            printf("%s: %dx%d, experiment %" G_GINT64_FORMAT ", no finished run to select\n",
                   o.out, o.width, o.height, experiment);
        return 0;
    }
    QlabApp *app = qlab_app_new();
    int status = g_application_run(G_APPLICATION(app), argc, argv);
    g_object_unref(app);
    return status;
}
