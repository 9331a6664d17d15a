/* cli-common.c — what several subcommands share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-cli.h"

int qlab_cli_db_path(const char *given, char *out, size_t len)
{
    const char *p = given;
    if (!p || !*p)
        p = getenv("QLAB_DB");
    if (!p || !*p)
        p = "qlab.db";
    if (strlen(p) >= len) {
        fprintf(stderr, "qlab: database path too long\n");
        return -ENAMETOOLONG;
    }
    snprintf(out, len, "%s", p);
    return 0;
}
