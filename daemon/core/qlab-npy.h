/* qlab-npy.h — NumPy .npy files (format 1.0/2.0/3.0): read float32/float64 little-endian,
 * C order, 1 to 4 dimensions (converted to float32); write float32.
 *
 * Errors (negative errno, message in err naming the file):
 *   -ENOENT etc.  open/read failures (errno of the system call)
 *   -EINVAL       bad magic or header, Fortran order, 0 or > 4 dimensions
 *   -ENOTSUP      dtype other than <f4 / <f8 (e.g. '>f4', '<i8', '<f2')
 *   -EIO          truncated data (fewer bytes than the shape needs)
 *   -ENOMEM
 */
#pragma once

#include <stddef.h>

#include "qlab-err.h"

#define QLAB_NPY_MAX_DIMS 4

typedef struct qlab_npy {
    int ndim;
    size_t shape[QLAB_NPY_MAX_DIMS];
    size_t n;            /* product of shape */
    float *data;         /* n floats, C order */
    void *map;           /* private: the mapping behind data (qlab_npy_map), or NULL */
    size_t map_len;
} qlab_npy;

int qlab_npy_read(const char *path, qlab_npy *out, qlab_err *err);

/* Like qlab_npy_read, but float32 data is mapped read-only from the page cache instead of
 * copied (a 64 MiB tensor loads in a few ms): data must then not be written. float64 files,
 * or files that cannot be mapped, are read as by qlab_npy_read (map stays NULL). */
int qlab_npy_map(const char *path, qlab_npy *out, qlab_err *err);

void qlab_npy_free(qlab_npy *npy);   /* accepts NULL / zeroed; unmaps or frees */

/* n floats for tensor data (free with free()): 2 MiB-aligned and advised for transparent
 * huge pages when large, so first-touch faults are few. NULL on failure. */
float *qlab_npy_alloc_f32(size_t n);

int qlab_npy_write_f32(const char *path, const float *data, int ndim, const size_t *shape,
                       qlab_err *err);
