#include <stdio.h>

#include "qlab-cli.h"

int qlab_cmd_quant(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qlab: quant: not built yet\n");
    return 1;
}
