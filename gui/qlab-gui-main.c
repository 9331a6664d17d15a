/* qlab-gui — browse qlab's results database: qlab-gui [DB] */
#include <stdio.h>
#include <string.h>

#include "qlab-app.h"
#include "qlab-config.h"

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: qlab-gui [DB]\n\nBrowse a qlab results database (default: the one "
               "opened last, else ./qlab.db).\nThe window updates while qlabd writes.\n");
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("qlab-gui %s\n", QLAB_VERSION);
        return 0;
    }
    QlabApp *app = qlab_app_new();
    int status = g_application_run(G_APPLICATION(app), argc, argv);
    g_object_unref(app);
    return status;
}
