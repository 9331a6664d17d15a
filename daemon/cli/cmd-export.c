/* cmd-export.c — `qlab export RUN --out FILE.safetensors`: a finished run's quantized
 * weights as a model file, whose data section is exactly the bytes the run reports. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-cli.h"
#include "qlab-engine.h"

int qlab_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *db = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: qlab export RUN --out FILE.safetensors [--db PATH]\n\n"
                   "Writes the weights of a finished run (see qlab frontier for run ids) as a\n"
                   "quantized safetensors model: packed integer codes, scales, zero points and\n"
                   "FP32 biases, with the layer list and each layer's configuration in its\n"
                   "__metadata__. Its data section is exactly the run's total_bytes.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind >= argc || !out) {
        fprintf(stderr, "qlab: export: usage: qlab export RUN --out FILE.safetensors\n");
        return 2;
    }
    char *end;
    long long run = strtoll(argv[optind], &end, 10);
    if (*end || run <= 0) {
        fprintf(stderr, "qlab: '%s' is not a run id\n", argv[optind]);
        return 2;
    }
    char path[4096];
    if (qlab_cli_db_path(db, path, sizeof(path)) < 0)
        return 1;
    qlab_err err = { 0 };
    qlab_store *s = NULL;
    int r = qlab_store_open(&s, path, QLAB_STORE_READONLY, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s: %s\n", path, err.msg[0] ? err.msg : strerror(-r));
        return 1;
    }
    size_t data = 0;
    int64_t total = 0;
    r = qlab_engine_export_run(s, run, out, &data, &total, &err);
    qlab_store_close(s);
    if (r < 0) {
        fprintf(stderr, "qlab: export: %s\n", err.msg[0] ? err.msg : strerror(-r));
        return 1;
    }
    printf("run %lld written to %s: %zu bytes of tensor data (the run reports %lld)\n", run,
           out, data, (long long)total);
    return (int64_t)data == total ? 0 : 1;
}
