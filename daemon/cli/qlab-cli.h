/* qlab-cli.h — the subcommands of the `qlab` client. Each returns the process exit status
 * and prints its own one-line error to stderr ("qlab: ..."). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int qlab_cmd_quant(int argc, char **argv);     /* cmd-quant.c */
int qlab_cmd_plot(int argc, char **argv);      /* cmd-plot.c */
int qlab_cmd_run(int argc, char **argv);       /* cmd-run.c */
int qlab_cmd_list(int argc, char **argv);      /* cmd-db.c */
int qlab_cmd_status(int argc, char **argv);    /* cmd-db.c */
int qlab_cmd_frontier(int argc, char **argv);  /* cmd-db.c */
int qlab_cmd_submit(int argc, char **argv);    /* cmd-ipc.c */
int qlab_cmd_watch(int argc, char **argv);     /* cmd-ipc.c */
int qlab_cmd_cancel(int argc, char **argv);    /* cmd-ipc.c */
int qlab_cmd_ping(int argc, char **argv);      /* cmd-ipc.c */
int qlab_cmd_export(int argc, char **argv);    /* cmd-export.c */

/* Connects to the running qlabd (socket beside --db / $QLAB_DB / ./qlab.db when there is
 * no $XDG_RUNTIME_DIR). Prints the one-line error. */
struct qlab_shm_client;
int qlab_cli_connect(const char *db, struct qlab_shm_client **out);

/* Opens the database read-only and prints the experiment's frontier (exit status). */
int qlab_cli_print_frontier_db(const char *db, int64_t id, const char *format);

/* The database to use: `given` (--db), else $QLAB_DB, else ./qlab.db. Prints on error. */
int qlab_cli_db_path(const char *given, char *out, size_t len);

/* Prints the frontier of an experiment as table, csv or json; returns an exit status. */
struct qlab_store;
int qlab_print_frontier(struct qlab_store *s, int64_t id, const char *format, FILE *out);
