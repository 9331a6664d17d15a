/* qlab-shm-quant.h — the daemon's QUANT request served by the quantization core
 * (daemon/core/qlab-quant.h), zero-copy through the client's data area.
 *
 * Kept out of qlab-shm.h so that the IPC library does not depend on the core: link
 * qlab_shm_quant_dep to use it. */
#pragma once

#include <stddef.h>

#include "qlab-shm.h"

/* Reusable buffers of the server thread (int16 codes, a private copy of the input). */
typedef struct qlab_shm_quant_scratch {
    void  *codes;
    size_t codes_cap;
    void  *copy;
    size_t copy_cap;
} qlab_shm_quant_scratch;

/* Serves rq (a validated QUANT): calibrates, writes the codes (int8 for bits <= 8, int16
 * for 16), the dequantized tensor and, when asked, the scales and zero points into the data
 * area, and fills reply->u.metrics (mse, sqnr_db, max_abs_error, first scale and zero
 * point, nscales, honest bytes from qlab_quant_bytes). Returns 0 or -errno with a line in
 * reply->text (-EDOM: NaN or Inf in the tensor).
 *
 * Min/max calibration reads the tensor in place: each pass reads every value once and the
 * results are clamped, so a client rewriting it meanwhile only gets garbage back. The other
 * calibrations (percentile, mse, entropy) make data-dependent passes, so the tensor is
 * copied to private memory first. */
int qlab_shm_quant_core(qlab_shm_quant_scratch *scratch, const qlab_shm_request *rq,
                        qlab_msg_reply *reply);

void qlab_shm_quant_scratch_free(qlab_shm_quant_scratch *scratch);
