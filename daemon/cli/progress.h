/* progress.h — the live progress display shared by `qlab run`, `qlab submit --wait` and
 * `qlab watch`: runs done / total, rate, ETA and the best accuracy so far at each weight
 * bit-width. On a terminal it redraws one line; otherwise it prints a line every 10%. */
#pragma once

#include <stdint.h>
#include <stdio.h>

typedef struct qlab_progress {
    FILE *out;
    int tty;
    int64_t experiment_id;
    int done, total;
    double t_start, t_last_draw;
    int last_decile;
    int last_done;
    double best[17];             /* best accuracy per weight bits (index bits), < 0: none */
    int64_t best_bytes[17];
    double fp32;
    int failed;
} qlab_progress;

void qlab_progress_init(qlab_progress *p, FILE *out, int64_t experiment_id);
/* A run finished (accuracy < 0: failed). */
void qlab_progress_run(qlab_progress *p, int done, int total, int bits, double accuracy,
                       int64_t bytes);
/* Counts only (e.g. after a reconnect). */
void qlab_progress_set(qlab_progress *p, int done, int total);
void qlab_progress_fp32(qlab_progress *p, double acc);
/* Final line: leaves the terminal on a fresh line. */
void qlab_progress_end(qlab_progress *p, const char *status);

/* "1.2 KiB", "340 B", "3.4 MiB" */
void qlab_format_bytes(int64_t bytes, char *buf, size_t len);
