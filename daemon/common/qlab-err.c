#include "qlab-err.h"

#include <stdio.h>
#include <string.h>

static int vset(qlab_err *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static int vset(qlab_err *err, int code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

int qlab_err_set(qlab_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    if (err->code != 0 && err->msg[0] != '\0')
        return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int qlab_err_reset(qlab_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void qlab_err_prefix(qlab_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char pre[QLAB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    char old[QLAB_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    /* Truncation is acceptable here: the message is for people, and the start (the file
     * or tensor the prefix names) matters most. */
    size_t n = strnlen(pre, sizeof(err->msg) - 1);
    memcpy(err->msg, pre, n);
    size_t left = sizeof(err->msg) - 1 - n;
    const char sep[] = ": ";
    size_t k = left < 2 ? left : 2;
    memcpy(err->msg + n, sep, k);
    n += k;
    left -= k;
    size_t o = strnlen(old, left);
    memcpy(err->msg + n, old, o);
    err->msg[n + o] = '\0';
}
