/* qlab-shm-quant.h — the daemon's QUANT request served by the quantization core
 * (daemon/core/qlab-quant.h), zero-copy through the client's data area.
 *
 * Kept out of qlab-shm.h so that the IPC library does not depend on the core: link
 * qlab_shm_quant_dep to use it. */
#pragma once

#include <stddef.h>

#include "qlab-shm.h"

/* Reusable buffer of the server thread: a private copy of the input (calibrations other
 * than min/max). Codes, dequantized tensor and metrics come from one fused pass of the core
 * (qlab_fake_quant_codes) straight into the data area: no scratch for them. */
typedef struct qlab_shm_quant_scratch {
    void  *copy;
    size_t copy_cap;
} qlab_shm_quant_scratch;

/* Serves rq (a validated QUANT): calibrates, writes the codes (int8 for bits <= 8, int16
 * for 16) and the dequantized tensor (one pass for both) and, when asked, the scales and
 * zero points into the data area, and fills reply->u.metrics (mse, sqnr_db, max_abs_error,
 * first scale and zero point, nscales, honest bytes from qlab_quant_bytes). Returns 0 or
 * -errno with a line in reply->text (-EDOM: NaN or Inf in the tensor).
 *
 * Min/max calibration reads the tensor in place: each value is read by its block's min/max
 * and by the quantization pass (a block cut by a thread boundary is measured by both
 * threads) and every code is clamped, so a client rewriting the tensor meanwhile only gets
 * garbage back. The other calibrations (percentile, mse, entropy) make data-dependent
 * passes, so the tensor is copied to private memory first. */
int qlab_shm_quant_core(qlab_shm_quant_scratch *scratch, const qlab_shm_request *rq,
                        qlab_msg_reply *reply);

void qlab_shm_quant_scratch_free(qlab_shm_quant_scratch *scratch);
