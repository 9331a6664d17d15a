/* qlab-err.h — the one error-detail carrier shared by every qlab library.
 *
 * Convention (systemd style): functions return 0 (or a count) on success and a negative
 * errno on failure. Libraries never print. Where the caller needs to tell the user *which*
 * file, line, tensor or layer is at fault, a function takes an optional `qlab_err *` and
 * fills it with one line of text; the program prints that line once, at the edge.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#define QLAB_ERR_MSG_MAX 512

typedef struct qlab_err {
    int  code;                  /* negative errno, 0 when unset */
    char msg[QLAB_ERR_MSG_MAX]; /* one line, no trailing newline */
} qlab_err;

/* Records code and a printf-style message in err (when err is not NULL) and returns code,
 * so that `return qlab_err_set(err, -EINVAL, "%s: ...", path);` reads naturally.
 * A message already set is kept: the innermost, most specific cause wins. */
int qlab_err_set(qlab_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like qlab_err_set but replaces any earlier message (for adding context at a higher level
 * is done with qlab_err_prefix instead). */
int qlab_err_reset(qlab_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (e.g. the file name at an outer level). */
void qlab_err_prefix(qlab_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void qlab_err_clear(qlab_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
