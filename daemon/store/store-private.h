/* store-private.h — what the store's files share, and the seams its tests use. */
#pragma once

#include <pthread.h>
#include <sqlite3.h>

#include "qlab-store.h"

struct qlab_store {
    sqlite3 *db;
    unsigned flags;
    pthread_mutex_t lock;    /* one API call = one transaction on this connection */
};

/* Maps an SQLite result code to a negative errno and records the connection's message. */
int qlab_store_sqlerr(sqlite3 *db, int rc, qlab_err *err, const char *what);

/* Prepares sql (the store keeps no statement cache: calls are infrequent next to a run's
 * seconds of work, and short-lived statements cannot outlive a schema change). */
int qlab_store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, qlab_err *err);

/* Executes sql without results (BEGIN, COMMIT, PRAGMA ...). */
int qlab_store_exec(sqlite3 *db, const char *sql, qlab_err *err);

/* Steps a statement that returns no rows. */
int qlab_store_step_done(sqlite3 *db, sqlite3_stmt *st, qlab_err *err, const char *what);

/* Binds text, or NULL when s is NULL. */
int qlab_store_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Binds a double, or NULL when it is NaN. */
int qlab_store_bind_real(sqlite3_stmt *st, int i, double v);

/* A schema migration: applying sql brings a database at version - 1 to version. */
typedef struct qlab_store_migration {
    int version;
    const char *sql;
} qlab_store_migration;

/* Applies, in one transaction, every step whose version exceeds the database's
 * user_version, then sets user_version to the last step's version. A database newer than
 * the last step is refused with -EPROTONOSUPPORT. Returns the version reached. */
int qlab_store_migrate_steps(sqlite3 *db, const qlab_store_migration *steps, size_t n,
                             qlab_err *err);
int qlab_store_migrate(sqlite3 *db, qlab_err *err);
int qlab_store_user_version(sqlite3 *db, int *version, qlab_err *err);

/* The database's words for the core's enums (the core's own *_name functions say the
 * same; the store keeps its copy so it does not depend on the kernels' library). */
const char *qlab_store_scheme_str(qlab_scheme s);
const char *qlab_store_granularity_str(qlab_granularity g);
const char *qlab_store_calibration_str(qlab_calibration c);
qlab_calibration qlab_store_calibration_parse(const char *s);

/* Fills c from the columns bits, scheme, granularity, group_size, calibration, percentile,
 * act_bits, act_calibration, act_percentile, overrides, config, config_hash starting at
 * column `first` (the order the writer binds them in). Returns the next column. */
int qlab_store_read_run_config(sqlite3_stmt *st, int first, qlab_run_config *c);

#define QLAB_RUN_CONFIG_COLUMNS \
    "bits, scheme, granularity, group_size, calibration, percentile, act_bits, " \
    "act_calibration, act_percentile, overrides, config, config_hash"

/* Steps st to the end, collecting rows of `size` bytes read by fn (0 or -ENOMEM) into a
 * malloc'd array; on failure every row read so far is cleared with clear(). */
typedef int (*qlab_store_read_fn)(sqlite3_stmt *st, void *row);
int qlab_store_collect(qlab_store *s, sqlite3_stmt *st, size_t size, qlab_store_read_fn fn,
                       void (*clear)(void *), void **rows, size_t *n, qlab_err *err);
