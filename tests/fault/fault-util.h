/* fault-util.h — small helpers shared by the fault-injection and limit tests: temporary
 * folders, file listings (to prove nothing was written), SQLite counts. */
#pragma once

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "qlab-config.h"

static inline const char *fault_source_root(void)
{
    const char *r = getenv("QLAB_SOURCE_ROOT");
    return r ? r : QLAB_SOURCE_ROOT;
}

/* Number of entries of dir (recursively), "." and ".." excluded. */
static inline int fault_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        n++;
        char sub[4096];
        struct stat st;
        if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= (int)sizeof sub)
            continue;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            n += fault_count_files(sub);
    }
    closedir(d);
    return n;
}

/* Removes dir and what it holds (one level of subfolders is all the tests make). */
static inline void fault_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[4096];
        struct stat st;
        if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= (int)sizeof sub)
            continue;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            fault_rmtree(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(dir);
}

/* The integer a one-value query returns, or -1. */
static inline int64_t fault_query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static inline int fault_integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int ok = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ok = !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    return ok;
}
