/* qlab — the command-line client. Dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "qlab-cli.h"
#include "qlab-config.h"

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
};

static const struct cmd cmds[] = {
    { "quant", qlab_cmd_quant,
      "quant IN.npy --bits B --scheme symmetric|asymmetric\n"
      "             --granularity tensor|channel|group:G\n"
      "             --calibration minmax|percentile:P|mse|entropy [--out OUT.npy] [--json] [--local]" },
    { "submit", qlab_cmd_submit, "submit FILE.yaml [--wait] [--db PATH]" },
    { "watch", qlab_cmd_watch, "watch [ID] [--db PATH]" },
    { "cancel", qlab_cmd_cancel, "cancel ID" },
    { "ping", qlab_cmd_ping, "ping" },
    { "run", qlab_cmd_run, "run FILE.yaml [--db PATH] [--workers N] [--quiet]" },
    { "list", qlab_cmd_list, "list [--db PATH]" },
    { "status", qlab_cmd_status, "status [ID] [--db PATH]" },
    { "frontier", qlab_cmd_frontier, "frontier ID [--format table|csv|json] [--db PATH]" },
    { "export", qlab_cmd_export, "export RUN --out FILE.safetensors [--db PATH]" },
    { "plot", qlab_cmd_plot, "plot ID --out FILE.png|FILE.svg|FILE.pdf [--db PATH]" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: qlab COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  qlab %s\n", cmds[i].usage);
    fprintf(f, "\nqlab %s — quantization laboratory. `qlab COMMAND --help` for details.\n",
            QLAB_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("qlab %s\n", QLAB_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "qlab: unknown command '%s' (try 'qlab --help')\n", argv[1]);
    return 2;
}
