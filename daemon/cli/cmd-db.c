/* cmd-db.c — commands that read the results database: list, status, frontier.
 *
 * They open the database read-only (WAL gives a consistent snapshot while qlabd writes).
 * Which database: --db PATH, else the one the running daemon uses, else ./qlab.db. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "qlab-cli.h"
#include "qlab-store.h"

static void print_cfg_cols(const qlab_run_row *r, char *gran, size_t gl, char *cal, size_t cl,
                           char *act, size_t al)
{
    const qlab_qconfig *w = &r->cfg.weights;
    if (w->granularity == QLAB_GRAN_GROUP)
        snprintf(gran, gl, "group:%d", w->group_size);
    else
        snprintf(gran, gl, "%s", qlab_granularity_name(w->granularity));
    if (w->calibration == QLAB_CALIB_PERCENTILE)
        snprintf(cal, cl, "percentile:%g", w->percentile);
    else
        snprintf(cal, cl, "%s", qlab_calibration_name(w->calibration));
    if (r->cfg.act_bits > 0)
        snprintf(act, al, "int%d", r->cfg.act_bits);
    else
        snprintf(act, al, "fp32");
}

static int open_db(const char *db, qlab_store **s)
{
    qlab_err err = { 0 };
    char path[4096];
    if (qlab_cli_db_path(db, path, sizeof(path)) < 0)
        return 1;
    int r = qlab_store_open(s, path, QLAB_STORE_READONLY, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s: %s\n", path, err.msg[0] ? err.msg : strerror(-r));
        return 1;
    }
    return 0;
}

static int parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "qlab: '%s' is not an experiment id\n", s);
        return -1;
    }
    *id = v;
    return 0;
}

static const struct option db_opts[] = {
    { "db", required_argument, NULL, 'd' },
    { "format", required_argument, NULL, 'f' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* The options these commands share. Returns -1 to go on, else the exit status (after
 * printing the help text, or on a bad option, which getopt has reported). */
static int parse_db_opts(int argc, char **argv, const char **db, const char **format,
                         const char *help)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", db_opts, NULL)) != -1) {
        if (c == 'd')
            *db = optarg;
        else if (c == 'f' && format)
            *format = optarg;
        else if (c == 'h') {
            fputs(help, stdout);
            return 0;
        } else
            return 2;
    }
    return -1;
}

int qlab_cmd_list(int argc, char **argv)
{
    const char *db = NULL;
    int rc = parse_db_opts(argc, argv, &db, NULL,
                           "usage: qlab list [--db PATH]\n\nLists the experiments, newest first.\n");
    if (rc >= 0)
        return rc;
    qlab_store *s;
    if (open_db(db, &s))
        return 1;
    qlab_experiment_row *rows = NULL;
    size_t n = 0;
    qlab_err err = { 0 };
    int r = qlab_store_list_experiments(s, &rows, &n, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg);
        qlab_store_close(s);
        return 1;
    }
    printf("%4s  %-24s %-10s %9s %9s  %s\n", "ID", "NAME", "STATUS", "RUNS", "FP32 ACC",
           "CREATED");
    for (size_t i = 0; i < n; i++) {
        char runs[32], acc[16];
        snprintf(runs, sizeof(runs), "%d/%d", rows[i].runs_done + rows[i].runs_failed,
                 rows[i].runs_total - rows[i].runs_cancelled);
        if (isnan(rows[i].fp32_accuracy))
            snprintf(acc, sizeof(acc), "-");
        else
            snprintf(acc, sizeof(acc), "%.2f%%", rows[i].fp32_accuracy);
        printf("%4lld  %-24.24s %-10s %9s %9s  %s\n", (long long)rows[i].id, rows[i].name,
               qlab_status_name(rows[i].status), runs, acc, rows[i].created_at);
    }
    qlab_experiment_rows_free(rows, n);
    qlab_store_close(s);
    return 0;
}

int qlab_cmd_status(int argc, char **argv)
{
    const char *db = NULL;
    int rc = parse_db_opts(argc, argv, &db, NULL,
                           "usage: qlab status [ID] [--db PATH]\n\n"
                           "Shows one experiment (default: the newest) and its progress.\n");
    if (rc >= 0)
        return rc;
    qlab_store *s;
    if (open_db(db, &s))
        return 1;
    int64_t id = 0;
    qlab_err err = { 0 };
    if (optind < argc) {
        if (parse_id(argv[optind], &id) < 0) {
            qlab_store_close(s);
            return 2;
        }
    } else {
        qlab_experiment_row *rows = NULL;
        size_t n = 0;
        if (qlab_store_list_experiments(s, &rows, &n, &err) < 0 || n == 0) {
            fprintf(stderr, "qlab: no experiment in the database yet\n");
            qlab_experiment_rows_free(rows, n);
            qlab_store_close(s);
            return 1;
        }
        id = rows[0].id;
        qlab_experiment_rows_free(rows, n);
    }
    qlab_experiment_row e = { 0 };
    int r = qlab_store_get_experiment(s, id, &e, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: experiment %lld: %s\n", (long long)id,
                r == -ENOENT ? "no such experiment" : err.msg);
        qlab_store_close(s);
        return 1;
    }
    char fb[32];
    qlab_format_bytes(e.fp32_bytes, fb, sizeof(fb));
    printf("experiment %lld: %s\n", (long long)e.id, e.name);
    printf("  status      %s%s%s\n", qlab_status_name(e.status), e.error ? ": " : "",
           e.error ? e.error : "");
    printf("  runs        %d done, %d failed, %d running, %d pending, %d cancelled (of %d)\n",
           e.runs_done, e.runs_failed, e.runs_running, e.runs_pending, e.runs_cancelled,
           e.runs_total);
    printf("  model       %s\n", e.model_path);
    if (e.model_sha256)
        printf("  sha256      %s\n", e.model_sha256);
    if (!isnan(e.fp32_accuracy))
        printf("  fp32        %.2f%% top-1, %s\n", e.fp32_accuracy, fb);
    printf("  created     %s\n", e.created_at);
    if (e.finished_at[0])
        printf("  finished    %s\n", e.finished_at);
    qlab_experiment_row_clear(&e);
    qlab_store_close(s);
    return 0;
}

int qlab_print_frontier(qlab_store *s, int64_t id, const char *format, FILE *out)
{
    qlab_run_row *rows = NULL;
    size_t n = 0;
    qlab_err err = { 0 };
    qlab_experiment_row e = { 0 };
    int r = qlab_store_get_experiment(s, id, &e, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: experiment %lld: %s\n", (long long)id,
                r == -ENOENT ? "no such experiment" : err.msg);
        return 1;
    }
    r = qlab_store_frontier(s, id, &rows, &n, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg);
        qlab_experiment_row_clear(&e);
        return 1;
    }
    int json = !strcmp(format, "json"), csv = !strcmp(format, "csv");
    if (json)
        fprintf(out, "{\"experiment\": %lld, \"name\": \"%s\", \"fp32_accuracy\": %.4f, "
                     "\"fp32_bytes\": %lld, \"frontier\": [",
                (long long)id, e.name, e.fp32_accuracy, (long long)e.fp32_bytes);
    else if (csv)
        fprintf(out, "run_id,bits,scheme,granularity,calibration,activations,accuracy,"
                     "accuracy_delta,total_bytes,compression,bits_per_weight\n");
    else {
        char fb[32];
        qlab_format_bytes(e.fp32_bytes, fb, sizeof(fb));
        fprintf(out, "frontier of experiment %lld (%s): %zu Pareto-optimal runs; "
                     "FP32 %.2f%% at %s\n",
                (long long)id, e.name, n, e.fp32_accuracy, fb);
        fprintf(out, "%6s %4s %-10s %-9s %-16s %-5s %8s %7s %10s %6s %5s\n", "RUN", "BITS",
                "SCHEME", "GRAN", "CALIBRATION", "ACT", "ACC%", "DELTA", "BYTES", "RATIO",
                "BPW");
    }
    for (size_t i = 0; i < n; i++) {
        const qlab_run_row *q = &rows[i];
        char gran[32], cal[40], act[16], by[32];
        print_cfg_cols(q, gran, sizeof(gran), cal, sizeof(cal), act, sizeof(act));
        const char *sch = qlab_scheme_name(q->cfg.weights.scheme);
        if (json)
            fprintf(out, "%s\n  {\"run_id\": %lld, \"bits\": %d, \"scheme\": \"%s\", "
                         "\"granularity\": \"%s\", \"calibration\": \"%s\", "
                         "\"activations\": \"%s\", \"accuracy\": %.4f, "
                         "\"accuracy_delta\": %.4f, \"total_bytes\": %lld, "
                         "\"compression\": %.4f, \"bits_per_weight\": %.4f}",
                    i ? "," : "", (long long)q->id, q->cfg.weights.bits, sch, gran, cal, act,
                    q->accuracy, q->accuracy_delta, (long long)q->total_bytes, q->compression,
                    q->bits_per_weight);
        else if (csv)
            fprintf(out, "%lld,%d,%s,%s,%s,%s,%.4f,%.4f,%lld,%.4f,%.4f\n", (long long)q->id,
                    q->cfg.weights.bits, sch, gran, cal, act, q->accuracy, q->accuracy_delta,
                    (long long)q->total_bytes, q->compression, q->bits_per_weight);
        else {
            qlab_format_bytes(q->total_bytes, by, sizeof(by));
            fprintf(out, "%6lld %4d %-10s %-9s %-16s %-5s %8.2f %+7.2f %10s %5.1fx %5.2f\n",
                    (long long)q->id, q->cfg.weights.bits, sch, gran, cal, act, q->accuracy,
                    q->accuracy_delta, by, q->compression, q->bits_per_weight);
        }
    }
    if (json)
        fprintf(out, "\n]}\n");
    qlab_run_rows_free(rows, n);
    qlab_experiment_row_clear(&e);
    return 0;
}

int qlab_cmd_frontier(int argc, char **argv)
{
    const char *db = NULL, *format = "table";
    int rc = parse_db_opts(argc, argv, &db, &format,
                           "usage: qlab frontier ID [--format table|csv|json] [--db PATH]\n\n"
                           "Prints the Pareto-optimal runs of an experiment: no other run is both\n"
                           "at least as accurate and at most as large, and strictly better in one.\n");
    if (rc >= 0)
        return rc;
    if (strcmp(format, "table") && strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(stderr, "qlab: frontier: unknown format '%s' (table, csv or json)\n", format);
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "qlab: frontier: which experiment? (qlab frontier ID; qlab list shows ids)\n");
        return 2;
    }
    int64_t id;
    if (parse_id(argv[optind], &id) < 0)
        return 2;
    qlab_store *s;
    if (open_db(db, &s))
        return 1;
    int r = qlab_print_frontier(s, id, format, stdout);
    qlab_store_close(s);
    return r;
}

int qlab_cli_print_frontier_db(const char *db, int64_t id, const char *format)
{
    qlab_store *s;
    if (open_db(db, &s))
        return 1;
    int r = qlab_print_frontier(s, id, format, stdout);
    qlab_store_close(s);
    return r;
}
