/* store.c — opening the results database and the helpers the store's files share. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

/* Readers wait this long for the writer's checkpoint; the writer for a reader's lock. */
#define QLAB_STORE_BUSY_MS 5000

static const char *const status_names[] = {
    [QLAB_STATUS_PENDING] = "pending",   [QLAB_STATUS_RUNNING] = "running",
    [QLAB_STATUS_DONE] = "done",         [QLAB_STATUS_FAILED] = "failed",
    [QLAB_STATUS_CANCELLED] = "cancelled",
};

const char *qlab_status_name(qlab_status s)
{
    if ((unsigned)s >= sizeof status_names / sizeof status_names[0])
        return "unknown";
    return status_names[s];
}

int qlab_status_parse(const char *s, qlab_status *out)
{
    for (size_t i = 0; s && i < sizeof status_names / sizeof status_names[0]; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (qlab_status)i;
            return 0;
        }
    }
    return -EINVAL;
}

void qlab_run_config_clear(qlab_run_config *c)
{
    if (!c)
        return;
    free(c->overrides);
    free(c->config);
    c->overrides = NULL;
    c->config = NULL;
}

int qlab_store_sqlerr(sqlite3 *db, int rc, qlab_err *err, const char *what)
{
    int code;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:   code = -EBUSY; break;
    case SQLITE_NOMEM:    code = -ENOMEM; break;
    case SQLITE_READONLY: code = -EROFS; break;
    case SQLITE_CANTOPEN: code = -ENOENT; break;
    case SQLITE_PERM:
    case SQLITE_AUTH:     code = -EACCES; break;
    case SQLITE_FULL:     code = -ENOSPC; break;
    case SQLITE_CONSTRAINT: code = -EEXIST; break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:  code = -EILSEQ; break;
    default:              code = -EIO; break;
    }
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    /* The connection's message can be stale when rc came from elsewhere (a wrapped step). */
    if (db && sqlite3_errcode(db) != rc)
        msg = sqlite3_errstr(rc);
    return qlab_err_set(err, code, "%s: %s", what, msg);
}

int qlab_store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, qlab_err *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return qlab_store_sqlerr(db, rc, err, "preparing a statement");
    return 0;
}

int qlab_store_exec(sqlite3 *db, const char *sql, qlab_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int r = qlab_store_sqlerr(db, rc, NULL, "");
        qlab_err_set(err, r, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

int qlab_store_step_done(sqlite3 *db, sqlite3_stmt *st, qlab_err *err, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return qlab_store_sqlerr(db, rc, err, what);
    return 0;
}

int qlab_store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

int qlab_store_bind_real(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

static int setup_writer(sqlite3 *db, qlab_err *err)
{
    /* WAL: readers keep a snapshot while the writer commits; synchronous=NORMAL in WAL
     * mode loses no committed transaction when the process is killed (only on power
     * loss), which is the crash qlabd must survive. */
    int r = qlab_store_exec(db, "PRAGMA journal_mode = WAL", err);
    if (r < 0)
        return r;
    r = qlab_store_exec(db, "PRAGMA synchronous = NORMAL", err);
    if (r < 0)
        return r;
    r = qlab_store_migrate(db, err);
    return r < 0 ? r : 0;
}

static int check_reader(sqlite3 *db, qlab_err *err)
{
    int version;
    int r = qlab_store_user_version(db, &version, err);
    if (r < 0)
        return r;
    if (version == 0)
        return qlab_err_set(err, -ENOENT, "not a qlab results database (no schema)");
    if (version > QLAB_STORE_SCHEMA_VERSION)
        return qlab_err_set(err, -EPROTONOSUPPORT,
                            "database schema version %d is newer than this qlab's (%d)",
                            version, QLAB_STORE_SCHEMA_VERSION);
    if (version < QLAB_STORE_SCHEMA_VERSION)
        return qlab_err_set(err, -EPROTONOSUPPORT,
                            "database schema version %d is older than this qlab's (%d): "
                            "start qlabd once to upgrade it", version,
                            QLAB_STORE_SCHEMA_VERSION);
    return 0;
}

int qlab_store_open(qlab_store **out, const char *path, unsigned flags, qlab_err *err)
{
    qlab_store *s = calloc(1, sizeof *s);
    if (!s)
        return qlab_err_set(err, -ENOMEM, "%s: out of memory", path);
    s->flags = flags;
    int oflags = (flags & QLAB_STORE_READONLY) ? SQLITE_OPEN_READONLY
                                               : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    /* FULLMUTEX is belt and braces: the store's own lock already serialises calls. */
    int rc = sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_FULLMUTEX, NULL);
    int r;
    if (rc != SQLITE_OK) {
        r = qlab_store_sqlerr(s->db, rc, err, "opening the database");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 0);
    sqlite3_busy_timeout(s->db, QLAB_STORE_BUSY_MS);
    r = qlab_store_exec(s->db, "PRAGMA foreign_keys = ON", err);
    if (r < 0)
        goto fail;
    r = (flags & QLAB_STORE_READONLY) ? check_reader(s->db, err) : setup_writer(s->db, err);
    if (r < 0)
        goto fail;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
fail:
    qlab_err_prefix(err, "%s", path);
    sqlite3_close(s->db);
    free(s);
    return r;
}

void qlab_store_close(qlab_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

sqlite3 *qlab_store_db(qlab_store *s)
{
    return s->db;
}

const char *qlab_store_scheme_str(qlab_scheme s)
{
    return s == QLAB_SCHEME_ASYMMETRIC ? "asymmetric" : "symmetric";
}

const char *qlab_store_granularity_str(qlab_granularity g)
{
    return g == QLAB_GRAN_CHANNEL ? "channel" : g == QLAB_GRAN_GROUP ? "group" : "tensor";
}

static const char *const calib_names[] = {
    [QLAB_CALIB_MINMAX] = "minmax", [QLAB_CALIB_PERCENTILE] = "percentile",
    [QLAB_CALIB_MSE] = "mse",       [QLAB_CALIB_ENTROPY] = "entropy",
};

const char *qlab_store_calibration_str(qlab_calibration c)
{
    return (unsigned)c < 4 ? calib_names[c] : "minmax";
}

qlab_calibration qlab_store_calibration_parse(const char *s)
{
    for (unsigned i = 0; s && i < 4; i++)
        if (strcmp(s, calib_names[i]) == 0)
            return (qlab_calibration)i;
    return QLAB_CALIB_MINMAX;
}
