/* fuzz-memfile.h — the readers under test take a path, not bytes: each fuzz input is
 * written to a memfd and opened as /proc/self/fd/N, so no file system is touched and the
 * reader's own open/mmap code runs as it does on a real file. */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct fuzz_memfile {
    int fd;
    char path[64];
} fuzz_memfile;

/* Replaces the file's contents with size bytes; aborts on failure (a harness bug, not a
 * finding). */
static inline const char *fuzz_memfile_set(fuzz_memfile *f, const char *name,
                                           const uint8_t *data, size_t size)
{
    if (f->fd <= 0) {
        f->fd = memfd_create(name, MFD_CLOEXEC);
        if (f->fd < 0)
            abort();
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0)
        abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (w <= 0)
            abort();
        done += (size_t)w;
    }
    return f->path;
}
