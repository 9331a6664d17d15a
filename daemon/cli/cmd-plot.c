#include <stdio.h>

#include "qlab-cli.h"

int qlab_cmd_plot(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qlab: plot: not built yet\n");
    return 1;
}
