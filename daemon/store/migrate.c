/* migrate.c — PRAGMA user_version migrations.
 *
 * Version 1 is schema.sql. A later version appends a step {N, "ALTER TABLE ... ADD ..."}
 * to `steps`; steps only add (PRODUCT.md §6 names are fixed), and all pending steps run in
 * one IMMEDIATE transaction together with the user_version update, so a crash mid-way
 * leaves the database at its old version, never between two. */
#include <errno.h>
#include <stdio.h>

#include "store-private.h"

static const qlab_store_migration steps[] = {
    { 1, qlab_store_schema_sql },
};

int qlab_store_user_version(sqlite3 *db, int *version, qlab_err *err)
{
    sqlite3_stmt *st;
    int r = qlab_store_prepare(db, "PRAGMA user_version", &st, err);
    if (r < 0)
        return r;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = qlab_store_sqlerr(db, rc, err, "reading user_version");
        sqlite3_finalize(st);
        return r;
    }
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int qlab_store_migrate_steps(sqlite3 *db, const qlab_store_migration *mig, size_t n,
                             qlab_err *err)
{
    int latest = n ? mig[n - 1].version : 0;
    int r = qlab_store_exec(db, "BEGIN IMMEDIATE", err);
    if (r < 0)
        return r;
    int version = 0;
    r = qlab_store_user_version(db, &version, err);
    if (r < 0)
        goto fail;
    if (version > latest) {
        r = qlab_err_set(err, -EPROTONOSUPPORT,
                         "database schema version %d is newer than this qlab's (%d)",
                         version, latest);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (mig[i].version <= version)
            continue;
        r = qlab_store_exec(db, mig[i].sql, err);
        if (r < 0) {
            qlab_err_prefix(err, "migration to schema version %d", mig[i].version);
            goto fail;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", mig[i].version);
        r = qlab_store_exec(db, sql, err);
        if (r < 0)
            goto fail;
        version = mig[i].version;
    }
    r = qlab_store_exec(db, "COMMIT", err);
    if (r < 0)
        goto fail;
    return version;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int qlab_store_migrate(sqlite3 *db, qlab_err *err)
{
    return qlab_store_migrate_steps(db, steps, sizeof steps / sizeof steps[0], err);
}
