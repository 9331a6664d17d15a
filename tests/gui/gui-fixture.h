/* gui-fixture.h — builds results databases for the GUI tests, the benchmark and the
 * screenshots, from daemon/store/schema.sql itself so the fixture always matches the
 * schema the daemon writes. */
#pragma once

#include <stdint.h>

#define FIXTURE_LAYERS 3
#define FIXTURE_NBINS 48

/* Experiment 1 "mlp-sweep": a full grid (bits 2..8 x scheme x granularity x calibration x
 * activations) of done runs plus one pending and one failed run, with layer metrics and
 * weight/output histograms. Experiment 2 "cnn-small": 8 done runs. When big_runs > 0,
 * experiment 3 "synthetic-100k" gets that many done runs (no per-layer rows). Accuracies
 * are written in percent (FP32: 88.53 and 90.12), deltas in percentage points, as the
 * engine writes them.
 * Returns 0 or a negative errno; msg (256 bytes) says why. */
int fixture_create(const char *db_path, const char *schema_path, long big_runs, char *msg);
/* Number of done runs of experiment 1 (its plot must show this many points). */
int fixture_exp1_done(void);
/* The stored count of bin b of the histogram of run_seq (0-based position among the runs
 * of experiment 1), layer l, tensor t (0 weight, 1 output). */
uint32_t fixture_hist_count(long run_seq, int l, int t, int b);
extern const char *const fixture_layer_names[FIXTURE_LAYERS];

/* One number from a read-only query of db_path; sql may bind ?1 to arg. A query that
 * fails or returns no row aborts the test program with the SQL and SQLite's message. */
int64_t fixture_query_int(const char *db_path, const char *sql, int64_t arg);
double fixture_query_double(const char *db_path, const char *sql, int64_t arg);

/* Keeps a GUI test (and the programs it starts) away from the user's state: the config
 * (last database) goes under dir, and $QLAB_SOCKET names a socket in dir that no daemon
 * serves, so a qlabd someone runs at the usual place cannot take part. */
void fixture_isolate_env(const char *dir);
