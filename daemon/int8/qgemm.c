/* qgemm.c — int8 GEMM driver: weight packing, A packing, blocking, the two cores, and
 * the scalar reference that every ISA level is tested against.
 *
 * Algebra (all in wrapping int32; the true result fits int32 for k <= QLAB_QGEMM_K_MAX,
 * so the wrapped value is the exact one): with A' = a + s the packed activation (s = 128
 * for AVX-VNNI on s8 input, 0 for AVX2), c = s + a_zp and rowsum'[m] = sum_k A'[m][k],
 *   sum_k (a - a_zp)(w - w_zp) = R - c * colsum[n] - w_zp[n] * rowsum'[m] + k c w_zp[n]
 * where R = sum_k A' w is what the micro-kernel accumulates. colcorr[n] gathers the
 * terms that depend on n only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "qgemm-private.h"
#include "qlab-int8.h"

struct qlab_qgemm {
    qlab_int8_isa isa;
    size_t n, k, kp, kr, npanels, ncols;   /* ncols = npanels * NR */
    int8_t *w;              /* original n x k (scalar level and the reference) */
    void *wpack;            /* panels (SIMD levels) */
    int32_t *colsum;        /* ncols */
    int32_t *wz;            /* ncols or NULL (symmetric weights) */
    float *mult, *bias_over;/* ncols, NULL without requantization */
    int32_t in_zp, out_zp, lo, hi;
    int has_rq;
};

static size_t round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

/* Both VNNI levels share the u8 x s8 quad packing. */
static int is_vnni(qlab_int8_isa isa)
{
    return isa == QLAB_INT8_AVXVNNI || isa == QLAB_INT8_AVX512VNNI || isa == QLAB_INT8_AMX;
}

static size_t tile_rows(qlab_int8_isa isa)
{
    return isa == QLAB_INT8_AMX ? QGEMM_MR_AMX
           : isa == QLAB_INT8_AVX512VNNI ? QGEMM_MR_512 : QGEMM_MR;
}

void qlab_qgemm_ref_s32(const int8_t *a, size_t m, size_t lda, int32_t a_zp,
                        const int8_t *w, size_t n, size_t k, const int32_t *w_zp,
                        size_t w_zp_count, int32_t *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            int32_t wz = w_zp ? w_zp[w_zp_count == 1 ? 0 : j] : 0;
            int64_t s = 0;
            for (size_t p = 0; p < k; p++)
                s += (int64_t)(a[i * lda + p] - a_zp) * (w[j * k + p] - wz);
            c[i * ldc + j] = (int32_t)s;
        }
}

int8_t qlab_requant_one(int32_t acc, size_t col, const qlab_requant *rq)
{
    float ws = rq->in_scale * rq->w_scale[rq->w_scale_count == 1 ? 0 : col];
    float bias_over = rq->bias ? rq->bias[col] / ws : 0.0f;
    int32_t lo = rq->relu && rq->out_zp > rq->qmin ? rq->out_zp : rq->qmin;
    return qgemm_requant_scalar(acc, bias_over, ws / rq->out_scale, rq->out_zp, lo, rq->qmax);
}

qlab_int8_isa qlab_qgemm_isa(const qlab_qgemm *g)
{
    return g->isa;
}

void qlab_qgemm_free(qlab_qgemm *g)
{
    if (!g)
        return;
    free(g->w);
    free(g->wpack);
    free(g->colsum);
    free(g->wz);
    free(g->mult);
    free(g->bias_over);
    free(g);
}

static void pack_w(qlab_qgemm *g)
{
    const size_t kr = g->kr, groups = g->kp / kr;
    for (size_t p = 0; p < g->npanels; p++)
        for (size_t gr = 0; gr < groups; gr++)
            for (size_t j = 0; j < QGEMM_NR; j++)
                for (size_t t = 0; t < kr; t++) {
                    size_t col = p * QGEMM_NR + j, kk = gr * kr + t;
                    int8_t v = col < g->n && kk < g->k ? g->w[col * g->k + kk] : 0;
                    size_t at = ((p * groups + gr) * QGEMM_NR + j) * kr + t;
                    if (g->isa == QLAB_INT8_AVX2)
                        ((int16_t *)g->wpack)[at] = v;
                    else
                        ((int8_t *)g->wpack)[at] = v;
                }
}

int qlab_qgemm_pack(const int8_t *w, size_t n, size_t k, const qlab_requant *rq,
                    qlab_qgemm **out)
{
    if (!w || !out || n == 0 || k == 0 || k > QLAB_QGEMM_K_MAX)
        return -EINVAL;
    if (rq && (!rq->w_scale || (rq->w_scale_count != 1 && rq->w_scale_count != n) ||
               rq->qmin > rq->qmax || rq->qmin < -128 || rq->qmax > 127 ||
               (rq->w_zp && k > QLAB_QGEMM_K_MAX_ASYM)))
        return -EINVAL;
    qlab_qgemm *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->isa = qlab_int8_isa_current();
    g->n = n;
    g->k = k;
    g->kr = g->isa == QLAB_INT8_AVX2 ? 2 : 4;
    g->kp = round_up(k, g->kr);
    g->npanels = (n + QGEMM_NR - 1) / QGEMM_NR;
    g->ncols = g->npanels * QGEMM_NR;
    size_t esz = g->isa == QLAB_INT8_AVX2 ? 2 : 1;
    g->w = malloc(n * k);
    g->colsum = calloc(g->ncols, sizeof(int32_t));
    if (g->isa != QLAB_INT8_SCALAR)
        g->wpack = aligned_alloc(64, round_up(g->npanels * g->kp * QGEMM_NR * esz, 64));
    if (!g->w || !g->colsum || (g->isa != QLAB_INT8_SCALAR && !g->wpack))
        goto nomem;
    memcpy(g->w, w, n * k);
    for (size_t j = 0; j < n; j++) {
        int32_t s = 0;
        for (size_t p = 0; p < k; p++)
            s += w[j * k + p];
        g->colsum[j] = s;
    }
    if (g->wpack)
        pack_w(g);
    g->lo = -128;
    g->hi = 127;
    if (rq) {
        g->has_rq = 1;
        g->in_zp = rq->in_zp;
        g->out_zp = rq->out_zp;
        g->lo = rq->relu && rq->out_zp > rq->qmin ? rq->out_zp : rq->qmin;
        g->hi = rq->qmax;
        g->mult = calloc(g->ncols, sizeof(float));
        g->bias_over = calloc(g->ncols, sizeof(float));
        if (!g->mult || !g->bias_over)
            goto nomem;
        for (size_t j = 0; j < n; j++) {
            /* fbgemm's order: act_times_w_scale, then bias / it, then / out_scale. */
            float ws = rq->in_scale * rq->w_scale[rq->w_scale_count == 1 ? 0 : j];
            g->bias_over[j] = rq->bias ? rq->bias[j] / ws : 0.0f;
            g->mult[j] = ws / rq->out_scale;
        }
        if (rq->w_zp) {
            g->wz = calloc(g->ncols, sizeof(int32_t));
            if (!g->wz)
                goto nomem;
            for (size_t j = 0; j < n; j++)
                g->wz[j] = rq->w_zp[rq->w_scale_count == 1 ? 0 : j];
        }
    }
    *out = g;
    return 0;
nomem:
    qlab_qgemm_free(g);
    return -ENOMEM;
}

typedef struct run_ctx {
    const qlab_qgemm *g;
    const uint8_t *a;       /* bytes of A, read as s8 or u8 */
    int a_unsigned;
    size_t m, lda, ldc;
    int32_t *c32;
    int8_t *c8;
    uint8_t out_xor;        /* 0x80: store u8 codes (code + 128) */
    const int32_t *colcorr; /* ncols */
    int32_t c;              /* s + a_zp */
    int split_m;
    int direct;             /* AVX-VNNI reads A in place (see qgemm-private.h) */
    int err;
} run_ctx;

/* Rows per packed A block: keeps MC x kp bytes of A' around L2-resident size. */
static size_t block_rows(const qlab_qgemm *g)
{
    size_t esz = g->isa == QLAB_INT8_AVX2 ? 2 : 1;
    size_t mr = tile_rows(g->isa);
    size_t mc = (256u << 10) / (g->kp * esz) / mr * mr;
    return mc < mr ? mr : mc > 240 ? 240 : mc;
}

static void pack_a(const run_ctx *x, size_t m0, size_t rows, void *dst, int32_t *rowsum)
{
    const qlab_qgemm *g = x->g;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *src = x->a + (m0 + r) * x->lda;
        int32_t s = 0;
        if (g->isa == QLAB_INT8_AVX2) {
            int16_t *d = (int16_t *)dst + r * g->kp;
            for (size_t p = 0; p < g->k; p++) {
                d[p] = x->a_unsigned ? (int16_t)src[p] : (int16_t)(int8_t)src[p];
                s += d[p];
            }
            for (size_t p = g->k; p < g->kp; p++)
                d[p] = 0;
        } else {
            uint8_t *d = (uint8_t *)dst + r * g->kp;
            for (size_t p = 0; p < g->k; p++) {
                d[p] = x->a_unsigned ? src[p] : (uint8_t)(src[p] ^ 0x80);
                s += d[p];
            }
            for (size_t p = g->k; p < g->kp; p++)
                d[p] = 0;
        }
        rowsum[r] = s;
    }
}

static void run_scalar(const run_ctx *x, size_t m0, size_t m1, size_t n0, size_t n1)
{
    const qlab_qgemm *g = x->g;
    int32_t a_zp = x->c;    /* s = 0 at the scalar level; u8 input already shifted */
    for (size_t i = m0; i < m1; i++)
        for (size_t j = n0; j < n1; j++) {
            int32_t wz = g->wz ? g->wz[j] : 0;
            uint32_t s = 0;
            for (size_t p = 0; p < g->k; p++) {
                int32_t av = x->a_unsigned ? x->a[i * x->lda + p] - 128
                                           : (int8_t)x->a[i * x->lda + p];
                s += (uint32_t)((av - a_zp) * (g->w[j * g->k + p] - wz));
            }
            int32_t acc = (int32_t)s;
            if (x->c32)
                x->c32[i * x->ldc + j] = acc;
            else
                x->c8[i * x->ldc + j] = (int8_t)(qgemm_requant_scalar(
                    acc, g->bias_over[j], g->mult[j], g->out_zp, g->lo, g->hi) ^ x->out_xor);
        }
}

static void run_range(run_ctx *x, size_t m0, size_t m1, size_t p0, size_t p1)
{
    const qlab_qgemm *g = x->g;
    if (g->isa == QLAB_INT8_SCALAR) {
        size_t n1 = p1 * QGEMM_NR < g->n ? p1 * QGEMM_NR : g->n;
        run_scalar(x, m0, m1, p0 * QGEMM_NR, n1);
        return;
    }
    qgemm_tile_fn tile = NULL;
#ifdef QLAB_INT8_HAVE_AVX2
    tile = qlab_qgemm_tile_avx2;
#endif
#ifdef QLAB_INT8_HAVE_AVXVNNI
    if (g->isa == QLAB_INT8_AVXVNNI)
        tile = qlab_qgemm_tile_avxvnni;
#endif
#ifdef QLAB_INT8_HAVE_AVX512VNNI
    if (g->isa == QLAB_INT8_AVX512VNNI)
        tile = qlab_qgemm_tile_avx512vnni;
#endif
#ifdef QLAB_INT8_HAVE_AMX
    if (g->isa == QLAB_INT8_AMX)
        tile = qlab_qgemm_tile_amx;
#endif
    const size_t mr = tile_rows(g->isa);
    size_t esz = g->isa == QLAB_INT8_AVX2 ? 2 : 1;
    size_t mc = block_rows(g);
    if (mc > m1 - m0)
        mc = m1 - m0;
    void *abuf = x->direct ? NULL : aligned_alloc(64, round_up(mc * g->kp * esz, 64));
    int32_t *rowsum = malloc(mc * sizeof(int32_t));
    if ((!x->direct && !abuf) || !rowsum) {
        free(abuf);
        free(rowsum);
        __atomic_store_n(&x->err, -ENOMEM, __ATOMIC_RELAXED);
        return;
    }
    size_t pstride = g->kp * QGEMM_NR * esz;
    qgemm_tile t = {
        .a_stride = g->kp * esz, .kgroups = g->kp / g->kr,
        .wz = NULL, .out_zp = g->out_zp, .lo = g->lo, .hi = g->hi, .ldc = x->ldc,
    };
    t.out_xor = x->out_xor;
    if (x->direct) {
        t.a_stride = x->lda;
        t.a_xor = x->a_unsigned ? 0 : 0x80808080u;
    }
    for (size_t mb = m0; mb < m1; mb += mc) {
        size_t rows = m1 - mb < mc ? m1 - mb : mc;
        const unsigned char *ablock = x->a + mb * x->lda;
        if (!x->direct) {
            pack_a(x, mb, rows, abuf, rowsum);
            ablock = abuf;
        }
        for (size_t p = p0; p < p1; p++) {
            size_t n0 = p * QGEMM_NR;
            t.w = (const char *)g->wpack + p * pstride;
            t.nr = g->n - n0 < QGEMM_NR ? g->n - n0 : QGEMM_NR;
            t.colcorr = x->colcorr + n0;
            t.wz = g->wz ? g->wz + n0 : NULL;
            if (g->has_rq) {
                t.mult = g->mult + n0;
                t.bias_over = g->bias_over + n0;
            }
            for (size_t r = 0; r < rows; r += mr) {
                t.a = ablock + r * t.a_stride;
                t.mr = rows - r < mr ? rows - r : mr;
                t.rowsum = rowsum + r;
                t.c32 = x->c32 ? x->c32 + (mb + r) * x->ldc + n0 : NULL;
                t.c8 = x->c8 ? x->c8 + (mb + r) * x->ldc + n0 : NULL;
                tile(&t);
            }
        }
    }
#ifdef QLAB_INT8_HAVE_AMX
    if (g->isa == QLAB_INT8_AMX)
        qlab_qgemm_amx_release();
#endif
    free(abuf);
    free(rowsum);
}

static void run_chunk(void *ctx, size_t b, size_t e, unsigned chunk)
{
    run_ctx *x = ctx;
    if (x->split_m)
        run_range(x, b, e, 0, x->g->npanels);
    else
        run_range(x, 0, x->m, b, e);
}

static int run(const qlab_qgemm *g, const uint8_t *a, int a_unsigned, size_t m, size_t lda,
               int32_t *c32, int8_t *c8, size_t ldc, uint8_t out_xor, int serial)
{
    if (!g || !a || (!c32 && !c8) || lda < g->k || ldc < g->n)
        return -EINVAL;
    if (c8 && !g->has_rq)
        return -EINVAL;
    if (m == 0)
        return 0;
    /* A' = a ^ 0x80 (VNNI, s8 input) or a itself; a u8 input carries zero point
     * in_zp + 128, i.e. the same real mapping as the s8 codes. */
    int32_t s = is_vnni(g->isa) && !a_unsigned ? 128 : 0;
    int32_t cz = s + g->in_zp + (a_unsigned && g->isa != QLAB_INT8_SCALAR ? 128 : 0);
    run_ctx x = {
        .g = g, .a = a, .a_unsigned = a_unsigned, .m = m, .lda = lda, .ldc = ldc,
        .c32 = c32, .c8 = c8, .c = g->isa == QLAB_INT8_SCALAR ? g->in_zp : cz,
        .out_xor = out_xor,
    };
    int32_t *colcorr = malloc(g->ncols * sizeof(int32_t));
    if (!colcorr)
        return -ENOMEM;
    for (size_t j = 0; j < g->ncols; j++) {
        uint32_t v = (uint32_t)-(int64_t)cz * (uint32_t)g->colsum[j];
        if (g->wz)
            v += (uint32_t)g->k * (uint32_t)cz * (uint32_t)g->wz[j];
        colcorr[j] = (int32_t)v;
    }
    x.colcorr = colcorr;
    x.direct = is_vnni(g->isa) && !g->wz && lda >= g->kp &&
               (g->isa != QLAB_INT8_AMX || a_unsigned);
    /* Split rows when there are enough for every thread to get whole tiles, else split
     * output panels (GEMV-like shapes: each thread streams half of W). */
    /* Below ~50 us of work on one core waking the pool costs more than the second core
     * saves: ~16 M multiply-adds with VNNI (measured: 256x256x128 ran slower on two
     * threads), ~128 M with AMX once there are full tiles of rows (256x784x256, 51 M:
     * 1,700 GOP/s on one thread, 960 on two; GEMV shapes stay memory-bound). */
    unsigned th = qlab_threads();
    size_t work = m * g->n * g->k;
    size_t solo = (size_t)1 << (g->isa == QLAB_INT8_AMX && m >= QGEMM_MR_AMX ? 27 : 24);
    size_t grain = serial || work < solo ? SIZE_MAX : 1;
    const size_t mr = tile_rows(g->isa);
    x.split_m = m >= mr * 4 * th;
    if (x.split_m)
        qlab_parallel_for(m, grain == 1 ? mr : grain, mr, run_chunk, &x);
    else
        qlab_parallel_for(g->npanels, grain, 1, run_chunk, &x);
    free(colcorr);
    return x.err;
}

int qlab_qgemm_s32(const qlab_qgemm *g, const int8_t *a, size_t m, size_t lda,
                   int32_t *c, size_t ldc)
{
    return run(g, (const uint8_t *)a, 0, m, lda, c, NULL, ldc, 0, 0);
}

int qlab_qgemm_s8(const qlab_qgemm *g, const int8_t *a, size_t m, size_t lda,
                  int8_t *c, size_t ldc)
{
    return run(g, (const uint8_t *)a, 0, m, lda, NULL, c, ldc, 0, 0);
}

int qlab_qgemm_u8_s32(const qlab_qgemm *g, const uint8_t *a, size_t m, size_t lda,
                      int32_t *c, size_t ldc)
{
    return run(g, a, 1, m, lda, c, NULL, ldc, 0, 0);
}

int qlab_qgemm_u8(const qlab_qgemm *g, const uint8_t *a, size_t m, size_t lda, uint8_t *c,
                  size_t ldc)
{
    return run(g, a, 1, m, lda, NULL, (int8_t *)c, ldc, 0x80, 0);
}

int qgemm_u8_serial(const qlab_qgemm *g, const uint8_t *a, size_t m, size_t lda, uint8_t *c,
                    size_t ldc)
{
    return run(g, a, 1, m, lda, NULL, (int8_t *)c, ldc, 0x80, 1);
}
