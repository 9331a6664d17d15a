/* db-lock.h — the writer lock of a database (DB.lock): qlabd holds it exclusively and
 * writes its pid into it, each `qlab run` holds it shared (cmd-run.c, qlabd.c). */
#pragma once

#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* The pid qlabd wrote into the lock file fd, as text ("" when there is none). */
static inline void qlab_db_lock_pid(int fd, char *buf, size_t len)
{
    ssize_t k = pread(fd, buf, len - 1, 0);
    buf[k > 0 ? k : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}
