/* quant-core.c — QUANT requests served by the quantization core, in place in the client's
 * data area. */
#include "qlab-shm-quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-quant.h"

static int grow(void **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    void *p = realloc(*buf, need);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

void qlab_shm_quant_scratch_free(qlab_shm_quant_scratch *s)
{
    if (!s)
        return;
    free(s->copy);
    memset(s, 0, sizeof(*s));
}

/* The wire's enumerations (1-based, 0 invalid) onto the core's configuration. */
static int to_qconfig(const qlab_msg_quant *q, qlab_qconfig *cfg)
{
    qlab_qconfig_init(cfg);
    cfg->bits = (int)q->bits;
    cfg->scheme = q->scheme == QLAB_PROTO_SYMMETRIC ? QLAB_SCHEME_SYMMETRIC
                                                     : QLAB_SCHEME_ASYMMETRIC;
    switch (q->granularity) {
    case QLAB_PROTO_GRAN_TENSOR:  cfg->granularity = QLAB_GRAN_TENSOR; break;
    case QLAB_PROTO_GRAN_CHANNEL: cfg->granularity = QLAB_GRAN_CHANNEL; break;
    default:
        cfg->granularity = QLAB_GRAN_GROUP;
        cfg->group_size = (int)q->group_size;
        break;
    }
    switch (q->calibration) {
    case QLAB_PROTO_CALIB_MINMAX:     cfg->calibration = QLAB_CALIB_MINMAX; break;
    case QLAB_PROTO_CALIB_PERCENTILE: cfg->calibration = QLAB_CALIB_PERCENTILE; break;
    case QLAB_PROTO_CALIB_MSE:        cfg->calibration = QLAB_CALIB_MSE; break;
    default:                          cfg->calibration = QLAB_CALIB_ENTROPY; break;
    }
    cfg->percentile = q->percentile;
    return qlab_qconfig_validate(cfg);
}

int qlab_shm_quant_core(qlab_shm_quant_scratch *s, const qlab_shm_request *rq,
                        qlab_msg_reply *rep)
{
    const qlab_msg_quant *q = &rq->msg->u.quant;
    const size_t rows = (size_t)q->rows, cols = (size_t)q->cols, n = rows * cols;
    const float *x = (const float *)(rq->data + q->in_off);
    float *deq = (float *)(rq->data + q->deq_off);
    qlab_qconfig cfg;
    qlab_qparams p = { 0 };
    qlab_metrics m = { 0 };
    int r;

    if ((r = to_qconfig(q, &cfg)) < 0) {
        snprintf(rep->text, sizeof(rep->text), "invalid quantization parameters");
        return r;
    }
    size_t nblocks = qlab_qparams_nblocks(rows, cols, &cfg);
    if (q->scales_len && q->scales_len / 8 < nblocks) {
        snprintf(rep->text, sizeof(rep->text), "scales area holds %llu of %zu blocks",
                 (unsigned long long)(q->scales_len / 8), nblocks);
        return -ENOBUFS;
    }
    if (cfg.calibration != QLAB_CALIB_MINMAX) {
        if ((r = grow(&s->copy, &s->copy_cap, n * sizeof(float))) < 0)
            return r;
        memcpy(s->copy, x, n * sizeof(float));
        x = s->copy;
    }
    /* One fused pass writes the codes (int8 for bits <= 8, else int16) and the dequantized
     * tensor straight into the data area, with the metrics. */
    void *codes = rq->data + q->codes_off;
    r = qlab_fake_quant_codes(x, rows, cols, &cfg, deq, q->bits <= 8 ? NULL : (int16_t *)codes,
                              q->bits <= 8 ? (int8_t *)codes : NULL, &p, &m);
    if (r < 0) {
        snprintf(rep->text, sizeof(rep->text), "%s",
                 r == -EDOM ? "tensor holds NaN or Inf" : "quantization failed");
        qlab_qparams_free(&p);
        return r;
    }
    if (q->scales_len) {
        float *scales = (float *)(rq->data + q->scales_off);
        memcpy(scales, p.scale, nblocks * sizeof(float));
        memcpy(scales + nblocks, p.zero_point, nblocks * sizeof(int32_t));
    }
    rep->u.metrics = (qlab_quant_metrics){
        .mse = m.mse, .sqnr_db = m.sqnr_db, .max_abs_error = m.max_abs_error,
        .scale = p.scale[0], .zero_point = p.zero_point[0], .nscales = nblocks,
        .bytes = qlab_quant_bytes(rows, cols, &cfg),
        .cosine = m.cosine, .clip_fraction = m.clip_fraction,
    };
    qlab_qparams_free(&p);
    return 0;
}
