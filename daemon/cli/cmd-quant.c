/* cmd-quant.c — `qlab quant`: quantize one .npy tensor and print its parameters and error
 * metrics (PRODUCT.md §5). The tensor is viewed as [shape[0], product of the rest]. Exit
 * status 0, 1 for a bad input file, 2 for bad usage; errors are one "qlab: ..." line. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-cli.h"
#include "qlab-shm.h"
#include "qlab-npy.h"
#include "qlab-quant.h"

#define HIST_BINS 21

static void usage(FILE *f)
{
    fprintf(f,
        "usage: qlab quant IN.npy [--bits B] [--scheme symmetric|asymmetric]\n"
        "                  [--granularity tensor|channel|group:G]\n"
        "                  [--calibration minmax|percentile:P|mse|entropy]\n"
        "                  [--out OUT.npy] [--json] [--local]\n"
        "\n"
        "Quantizes one float32/float64 .npy tensor (C order, 1-4 dims) to B-bit signed\n"
        "integers (B in 2..8, 16; default 8), symmetric by default, per tensor by default\n"
        "(channel = axis 0, group = G consecutive values along the other axes), calibrated\n"
        "by min/max by default, and prints the scale(s), zero point(s) and the error of the\n"
        "quantize-dequantize round trip: mse, sqnr_db, max_abs_error, cosine, clip_fraction,\n"
        "and the honest memory (packed codes + scales + zero points).\n"
        "  --out OUT.npy  write the dequantized tensor (float32)\n"
        "  --json         print one JSON object instead of the summary\n"
        "  --local        quantize in this process even when qlabd runs (by default a\n"
        "                 running qlabd does it, zero-copy through shared memory)\n"
        "QLAB_CPU=scalar|avx2 forces a kernel level, QLAB_THREADS=N the thread count.\n");
}

/* "--flag=value" or "--flag value"; returns the value or NULL (and sets *bad). */
static const char *flag_value(int argc, char **argv, int *i, const char *name, int *bad)
{
    size_t l = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, l))
        return NULL;
    if (a[l] == '=')
        return a + l + 1;
    if (a[l] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "qlab: quant: %s needs a value\n", name);
        *bad = 1;
        return NULL;
    }
    return argv[++*i];
}

static void print_json_floats(const char *key, const float *v, size_t n, int array)
{
    printf("  \"%s\": ", key);
    if (!array) {
        printf("%.9g,\n", (double)v[0]);
        return;
    }
    printf("[");
    for (size_t i = 0; i < n; i++)
        printf("%s%.9g", i ? ", " : "", (double)v[i]);
    printf("],\n");
}

static void print_json_ints(const char *key, const int32_t *v, size_t n, int array)
{
    printf("  \"%s\": ", key);
    if (!array) {
        printf("%d,\n", (int)v[0]);
        return;
    }
    printf("[");
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? ", " : "", (int)v[i]);
    printf("],\n");
}

static void json_double(const char *key, double v, const char *tail)
{
    if (isfinite(v))
        printf("  \"%s\": %.17g%s\n", key, v, tail);
    else
        printf("  \"%s\": null%s\n", key, tail);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const char *in, const qlab_npy *t, const qlab_qconfig *cfg,
                       const qlab_qparams *p, const qlab_metrics *m, size_t bytes)
{
    int array = cfg->granularity != QLAB_GRAN_TENSOR;
    printf("{\n  \"file\": ");
    json_string(in);
    printf(",\n  \"shape\": [");
    for (int i = 0; i < t->ndim; i++)
        printf("%s%zu", i ? ", " : "", t->shape[i]);
    printf("],\n  \"bits\": %d,\n  \"scheme\": \"%s\",\n  \"granularity\": \"%s\",\n",
           cfg->bits, qlab_scheme_name(cfg->scheme), qlab_granularity_name(cfg->granularity));
    if (cfg->granularity == QLAB_GRAN_GROUP)
        printf("  \"group_size\": %d,\n", cfg->group_size);
    printf("  \"calibration\": \"%s\",\n", qlab_calibration_name(cfg->calibration));
    if (cfg->calibration == QLAB_CALIB_PERCENTILE)
        printf("  \"percentile\": %.17g,\n", cfg->percentile);
    printf("  \"kernel\": \"%s\",\n", qlab_cpu_level_name());
    print_json_floats("scale", p->scale, p->nblocks, array);
    print_json_ints("zero_point", p->zero_point, p->nblocks, array);
    printf("  \"n\": %llu,\n", (unsigned long long)m->n);
    json_double("mse", m->mse, ",");
    json_double("sqnr_db", m->sqnr_db, ",");
    json_double("max_abs_error", m->max_abs_error, ",");
    json_double("cosine", m->cosine, ",");
    json_double("clip_fraction", m->clip_fraction, ",");
    printf("  \"bytes\": %zu,\n  \"fp32_bytes\": %zu,\n", bytes, t->n * 4);
    json_double("compression", bytes ? (double)(t->n * 4) / (double)bytes : 0.0, ",");
    printf("  \"error_histogram\": {\"lo\": %.9g, \"hi\": %.9g, \"counts\": [",
           (double)m->hist_lo, (double)m->hist_hi);
    for (int k = 0; k < m->nbins; k++)
        printf("%s%llu", k ? ", " : "", (unsigned long long)m->hist[k]);
    printf("]}\n}\n");
}

static void print_summary(const char *in, const qlab_npy *t, const qlab_qconfig *cfg,
                          const qlab_qparams *p, const qlab_metrics *m, size_t bytes,
                          const char *kernel)
{
    printf("%s [", in);
    for (int i = 0; i < t->ndim; i++)
        printf("%s%zu", i ? ", " : "", t->shape[i]);
    printf("] -> int%d %s, per %s", cfg->bits, qlab_scheme_name(cfg->scheme),
           qlab_granularity_name(cfg->granularity));
    if (cfg->granularity == QLAB_GRAN_GROUP)
        printf(" of %d", cfg->group_size);
    printf(", %s", qlab_calibration_name(cfg->calibration));
    if (cfg->calibration == QLAB_CALIB_PERCENTILE)
        printf(" %g", cfg->percentile);
    printf(" (kernel %s)\n", kernel);
    if (p->nblocks == 1) {
        printf("  scale          %.9g\n  zero_point     %d\n", (double)p->scale[0],
               (int)p->zero_point[0]);
    } else {
        float smin = INFINITY, smax = -INFINITY;
        int32_t zmin = INT32_MAX, zmax = INT32_MIN;
        for (size_t b = 0; b < p->nblocks; b++) {
            smin = fminf(smin, p->scale[b]);
            smax = fmaxf(smax, p->scale[b]);
            zmin = p->zero_point[b] < zmin ? p->zero_point[b] : zmin;
            zmax = p->zero_point[b] > zmax ? p->zero_point[b] : zmax;
        }
        printf("  scale          %zu values in [%.6g, %.6g]\n", p->nblocks, (double)smin,
               (double)smax);
        printf("  zero_point     %zu values in [%d, %d]\n", p->nblocks, (int)zmin, (int)zmax);
    }
    printf("  mse            %.6g\n", m->mse);
    printf("  sqnr           %.2f dB\n", m->sqnr_db);
    printf("  max |error|    %.6g\n", m->max_abs_error);
    printf("  cosine         %.9f\n", m->cosine);
    printf("  clipped        %.4f%%\n", 100.0 * m->clip_fraction);
    printf("  memory         %zu bytes (fp32 %zu, %.2fx smaller)\n", bytes, t->n * 4,
           bytes ? (double)(t->n * 4) / (double)bytes : 0.0);
    uint64_t hmax = 1;
    for (int k = 0; k < m->nbins; k++)
        hmax = m->hist[k] > hmax ? m->hist[k] : hmax;
    printf("  error histogram (x' - x):\n");
    double w = ((double)m->hist_hi - (double)m->hist_lo) / m->nbins;
    for (int k = 0; k < m->nbins; k++) {
        int bar = (int)(40.0 * (double)m->hist[k] / (double)hmax + 0.5);
        printf("    %+11.4g %10llu |", (double)m->hist_lo + (k + 0.5) * w,
               (unsigned long long)m->hist[k]);
        for (int j = 0; j < bar; j++)
            putchar('#');
        putchar('\n');
    }
}

/* The zero-copy path through a running qlabd (PRODUCT §7): the tensor goes into this
 * client's shared data area once, the daemon writes the dequantized tensor, the codes and
 * the scales and zero points back there, and the metrics come in the reply. Only the
 * error histogram is binned here, from the two tensors side by side.
 * Returns the exit status, or -1 when no daemon runs (the caller quantizes in process). */
static int via_daemon(const char *in, const qlab_npy *t, size_t rows, size_t cols,
                      const qlab_qconfig *cfg, const char *outp, int json)
{
    char dbpath[4096], dir[4096], sock[4096];
    if (qlab_cli_db_path(NULL, dbpath, sizeof(dbpath)) < 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s", dbpath);
    if (qlab_shm_socket_path(dirname(dir), false, sock, sizeof(sock)) < 0)
        return -1;
    size_t n = t->n, nblocks = qlab_qparams_nblocks(rows, cols, cfg);
    size_t code_size = cfg->bits <= 8 ? 1 : 2;
    size_t deq_off = n * 4, codes_off = 2 * n * 4;
    size_t scales_off = (codes_off + n * code_size + 7) & ~(size_t)7;
    size_t need = scales_off + nblocks * 8;
    qlab_shm_client_opts o = QLAB_SHM_CLIENT_OPTS_DEFAULT;
    o.data_size = (need + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
    qlab_shm_client *c = NULL;
    int r = qlab_shm_connect(sock, &o, &c);
    if (r < 0)
        return -1;
    size_t size;
    unsigned char *data = qlab_shm_client_data(c, &size);
    memcpy(data, t->data, n * sizeof(float));
    qlab_msg_quant q = {
        .bits = (uint32_t)cfg->bits,
        .scheme = cfg->scheme == QLAB_SCHEME_SYMMETRIC ? QLAB_PROTO_SYMMETRIC
                                                       : QLAB_PROTO_ASYMMETRIC,
        .granularity = cfg->granularity == QLAB_GRAN_TENSOR    ? QLAB_PROTO_GRAN_TENSOR
                       : cfg->granularity == QLAB_GRAN_CHANNEL ? QLAB_PROTO_GRAN_CHANNEL
                                                               : QLAB_PROTO_GRAN_GROUP,
        .group_size = cfg->granularity == QLAB_GRAN_GROUP ? (uint32_t)cfg->group_size : 0,
        .calibration = cfg->calibration == QLAB_CALIB_MINMAX       ? QLAB_PROTO_CALIB_MINMAX
                       : cfg->calibration == QLAB_CALIB_PERCENTILE ? QLAB_PROTO_CALIB_PERCENTILE
                       : cfg->calibration == QLAB_CALIB_MSE        ? QLAB_PROTO_CALIB_MSE
                                                                   : QLAB_PROTO_CALIB_ENTROPY,
        .percentile = (float)cfg->percentile,
        .rows = rows, .cols = cols,
        .in_off = 0, .deq_off = deq_off, .codes_off = codes_off,
        .scales_off = scales_off, .scales_len = nblocks * 8,
    };
    qlab_quant_metrics qm;
    qlab_err err = { 0 };
    r = qlab_shm_quant(c, &q, &qm, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s: %s (via qlabd)\n", in, err.msg);
        qlab_shm_client_free(c);
        return 1;
    }
    const float *deq = (const float *)(data + deq_off);
    qlab_qparams p = { .nblocks = nblocks, .scale = (float *)(data + scales_off),
                       .zero_point = (int32_t *)(data + scales_off + nblocks * 4) };
    uint64_t hist[HIST_BINS] = { 0 };
    qlab_metrics m = { .n = n, .mse = qm.mse, .sqnr_db = qm.sqnr_db,
                       .max_abs_error = qm.max_abs_error, .cosine = qm.cosine,
                       .clip_fraction = qm.clip_fraction, .nbins = HIST_BINS,
                       .hist_lo = (float)-qm.max_abs_error, .hist_hi = (float)qm.max_abs_error,
                       .hist = hist };
    if (cfg->calibration == QLAB_CALIB_MINMAX) {
        /* The same range as the in-process path: half the largest step. */
        float smax = 0.0f;
        for (size_t b = 0; b < nblocks; b++)
            smax = fmaxf(smax, p.scale[b]);
        m.hist_hi = smax * 0.5f * (1.0f + 0x1.0p-20f);
        m.hist_lo = -m.hist_hi;
    }
    double w = ((double)m.hist_hi - (double)m.hist_lo) / HIST_BINS;
    for (size_t i = 0; i < n; i++) {
        double e = (double)deq[i] - (double)t->data[i];
        long b = w > 0 ? (long)((e - m.hist_lo) / w) : HIST_BINS / 2;
        hist[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
    }
    int status = 0;
    if (outp) {
        qlab_err werr = { 0 };
        if (qlab_npy_write_f32(outp, deq, t->ndim, t->shape, &werr) < 0) {
            fprintf(stderr, "qlab: %s\n", werr.msg);
            status = 1;
        }
    }
    if (status == 0) {
        if (json)
            print_json(in, t, cfg, &p, &m, (size_t)qm.bytes);
        else
            print_summary(in, t, cfg, &p, &m, (size_t)qm.bytes, "qlabd");
        status = fflush(stdout) == 0 ? 0 : 1;
    }
    qlab_shm_client_free(c);
    return status;
}

int qlab_cmd_quant(int argc, char **argv)
{
    qlab_qconfig cfg;
    qlab_qconfig_init(&cfg);
    const char *in = NULL, *outp = NULL;
    int json = 0, bad = 0, local = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--local")) {
            local = 1;
        } else if ((v = flag_value(argc, argv, &i, "--bits", &bad))) {
            char *end;
            errno = 0;
            long b = strtol(v, &end, 10);
            int32_t lo, hi;
            if (*v == '\0' || *end || errno || b > 64 || qlab_qrange((int)b, &lo, &hi) < 0) {
                fprintf(stderr, "qlab: quant: bad --bits '%s' (2..8 or 16)\n", v);
                return 2;
            }
            cfg.bits = (int)b;
        } else if ((v = flag_value(argc, argv, &i, "--scheme", &bad))) {
            if (qlab_config_parse_scheme(v, &cfg) < 0) {
                fprintf(stderr, "qlab: quant: bad --scheme '%s' (symmetric|asymmetric)\n", v);
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--granularity", &bad))) {
            if (qlab_config_parse_granularity(v, &cfg) < 0) {
                fprintf(stderr, "qlab: quant: bad --granularity '%s' (tensor|channel|group:G)\n",
                        v);
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--calibration", &bad))) {
            if (qlab_config_parse_calibration(v, &cfg) < 0) {
                fprintf(stderr, "qlab: quant: bad --calibration '%s' "
                        "(minmax|percentile:P with 0 < P <= 100|mse|entropy)\n", v);
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--out", &bad))) {
            outp = v;
        } else if (bad) {
            break;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "qlab: quant: unknown option '%s' (try 'qlab quant --help')\n", a);
            return 2;
        } else if (in) {
            fprintf(stderr, "qlab: quant: more than one input file ('%s', '%s')\n", in, a);
            return 2;
        } else {
            in = a;
        }
    }
    if (bad)
        return 2;
    if (!in) {
        fprintf(stderr, "qlab: quant: missing IN.npy (try 'qlab quant --help')\n");
        return 2;
    }

    qlab_err err = {0};
    qlab_npy t = {0};
    int r = qlab_npy_map(in, &t, &err);
    if (r < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg[0] ? err.msg : strerror(-r));
        return 1;
    }
    /* [shape[0], product of the rest]: channels along axis 0, groups of G consecutive
     * values inside each output row. A vector's only axis is both: per channel it is one
     * value per channel, per group its groups run along it. */
    size_t rows = t.shape[0], cols = t.shape[0] ? t.n / t.shape[0] : 0;
    if (t.ndim == 1 && cfg.granularity == QLAB_GRAN_GROUP) {
        rows = 1;
        cols = t.n;
    }
    uint64_t hist[HIST_BINS] = {0};
    qlab_metrics m = { .nbins = HIST_BINS, .hist = hist };
    qlab_qparams p = {0};
    float *out = NULL;
    int status = 1;
    if (t.n == 0) {
        fprintf(stderr, "qlab: %s: empty tensor\n", in);
        goto done;
    }
    if (!local) {
        int d = via_daemon(in, &t, rows, cols, &cfg, outp, json);
        if (d >= 0) {
            status = d;
            goto done;
        }
        /* No daemon: quantize here. */
    }
    r = qlab_calibrate(t.data, rows, cols, &cfg, &p);
    if (r == 0 && cfg.calibration == QLAB_CALIB_MINMAX) {
        /* Nothing is clipped: every error is within half a step of its block, so the
         * histogram range is known before the one fused pass. (Clipping calibrations let
         * the library span the largest error, in a second pass.) */
        float smax = 0.0f;
        for (size_t b = 0; b < p.nblocks; b++)
            smax = fmaxf(smax, p.scale[b]);
        m.hist_hi = smax * 0.5f * (1.0f + 0x1.0p-20f);
        m.hist_lo = -m.hist_hi;
    }
    /* A mapped input is read-only: the result needs its own buffer; a copied input (float64)
     * is simply overwritten. */
    if (r == 0 && outp) {
        out = t.map ? qlab_npy_alloc_f32(t.n) : t.data;
        if (!out) {
            fprintf(stderr, "qlab: %s: out of memory\n", in);
            goto done;
        }
    }
    if (r == 0)
        r = qlab_fake_quant_params(t.data, rows, cols, &cfg, &p, out, &m);
    if (r == -EDOM) {
        fprintf(stderr, "qlab: %s: tensor contains NaN or Inf\n", in);
        goto done;
    } else if (r < 0) {
        fprintf(stderr, "qlab: %s: quantization failed: %s\n", in, strerror(-r));
        goto done;
    }
    if (outp && qlab_npy_write_f32(outp, out, t.ndim, t.shape, &err) < 0) {
        fprintf(stderr, "qlab: %s\n", err.msg);
        goto done;
    }
    size_t bytes = qlab_quant_bytes(rows, cols, &cfg);
    if (json)
        print_json(in, &t, &cfg, &p, &m, bytes);
    else
        print_summary(in, &t, &cfg, &p, &m, bytes, qlab_cpu_level_name());
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    qlab_qparams_free(&p);
    if (out != t.data)
        free(out);
    qlab_npy_free(&t);
    return status;
}
