/* gui-fixture.c — deterministic fixture databases (see gui-fixture.h). Accuracies follow a
 * plausible shape (loss grows as bits shrink, per-tensor and minmax lose most) so the
 * plot has a real Pareto front; sizes follow PRODUCT §3's honest byte count. Accuracy is
 * computed as a fraction here and written in percent, as the engine writes it (schema.sql:
 * runs.accuracy 0..100, accuracy_delta in percentage points, experiments.fp32_accuracy). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gui-fixture.h"

const char *const fixture_layer_names[FIXTURE_LAYERS] = {"fc1", "fc2", "fc3"};
static const long layer_out[FIXTURE_LAYERS] = {256, 128, 10};
static const long layer_in[FIXTURE_LAYERS] = {784, 256, 128};
static const int bits_grid[] = {2, 3, 4, 5, 6, 8};
static const char *const schemes[] = {"symmetric", "asymmetric"};
static const char *const grans[] = {"tensor", "channel", "group"};
static const char *const calibs[] = {"minmax", "percentile", "mse", "entropy"};
#define N_GRID (6 * 2 * 3 * 4 * 2)
#define FP32_ACC 0.8853

int fixture_exp1_done(void)
{
    return N_GRID;
}

uint32_t fixture_hist_count(long seq, int l, int t, int b)
{
    /* A discrete bell, wider for fewer bits, so histograms look like quantization error. */
    double width = 4.0 + (double)(seq % 7) + 2.0 * l + 3.0 * t;
    double x = (b - (FIXTURE_NBINS - 1) / 2.0) / width;
    return (uint32_t)(1000.0 * exp(-0.5 * x * x) * (1 + 0.3 * l) + (double)((seq + b) % 5));
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static double noise(long k)
{
    /* Hash to [0, 1): deterministic, platform independent. */
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (double)(x >> 11) / 9007199254740992.0;
}

struct cfg {
    int bits, scheme, gran, calib, act;
};

static void run_numbers(const struct cfg *c, long k, double *acc, long *wbytes, long *tbytes,
                        double *bpw, long *params_out)
{
    long params = 0, wb = 0, bias = 0;
    for (int l = 0; l < FIXTURE_LAYERS; l++) {
        long n = layer_out[l] * layer_in[l];
        long scales = c->gran == 0 ? 1 : c->gran == 1 ? layer_out[l] : n / 64;
        params += n;
        bias += layer_out[l];
        wb += (n * c->bits + 7) / 8 + 4 * scales + (c->scheme ? scales : 0);
    }
    double loss = 0.6 * exp(-1.15 * (c->bits - 2)) * (1.0 + 0.8 * (c->gran == 0)) *
                      (1.0 - 0.35 * (c->gran == 2)) * (1.0 + 0.5 * (c->calib == 0)) *
                      (1.0 - 0.15 * c->scheme) +
                  0.004 * c->act + 0.006 * noise(k);
    *acc = FP32_ACC - loss < 0.1 ? 0.1 + 0.02 * noise(k + 1) : FP32_ACC - loss;
    *wbytes = wb;
    *tbytes = wb + 4 * bias;
    *bpw = 8.0 * (double)wb / (double)params;
    *params_out = params;
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if ((x) != SQLITE_OK && (x) != SQLITE_DONE) {                                              \
            snprintf(msg, 256, "%s:%d: %s", __FILE__, __LINE__, sqlite3_errmsg(db));               \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static const char *run_sql =
    "INSERT INTO runs(experiment_id, seq, bits, scheme, granularity, group_size, calibration,"
    " percentile, act_bits, act_calibration, config, config_hash, status, accuracy,"
    " accuracy_delta, weight_bytes, total_bytes, compression, bits_per_weight, sqnr_db, mse,"
    " eval_ms, kernel, simulated, manifest, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
    "?,?,?,?,?,?,?,?)";

static int insert_run(sqlite3 *db, sqlite3_stmt *st, long exp, long seq, const struct cfg *c,
                      const char *status, double fp32_bytes, char *msg)
{
    double acc, bpw;
    long wb, tb, params;
    char config[160], hash[24], manifest[200];
    run_numbers(c, seq + exp * 1000003L, &acc, &wb, &tb, &bpw, &params);
    if (exp == 3) {
        /* The synthetic experiment spreads its runs out, as a large sweep over many
         * models and group sizes would, instead of stacking them on the grid's points. */
        double f = 0.6 + 0.8 * noise(seq + 23);
        wb = (long)((double)wb * f);
        tb = (long)((double)tb * f);
        bpw *= f;
        acc = fmin(acc + 0.04 * (f - 1) + 0.03 * (noise(seq + 29) - 0.5), FP32_ACC + 0.002);
    }
    snprintf(config, sizeof(config),
             "bits=%d scheme=%s granularity=%s%s calibration=%s%s act=%s#%ld", c->bits,
             schemes[c->scheme], grans[c->gran], c->gran == 2 ? ":64" : "", calibs[c->calib],
             c->calib == 1 ? ":99.9" : "", c->act ? "int8" : "fp32", seq);
    snprintf(hash, sizeof(hash), "%016lx", (unsigned long)(seq * 2654435761UL + exp));
    snprintf(manifest, sizeof(manifest),
             "{\"qlab\":\"0.1.0\",\"model_sha256\":\"ab12\",\"seed\":%ld,\"kernel\":\"avx2\"}",
             seq);
    int done = !strcmp(status, "done");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_int64(st, 1, exp);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int(st, 3, c->bits);
    sqlite3_bind_text(st, 4, schemes[c->scheme], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, grans[c->gran], -1, SQLITE_STATIC);
    if (c->gran == 2)
        sqlite3_bind_int(st, 6, 64);
    sqlite3_bind_text(st, 7, calibs[c->calib], -1, SQLITE_STATIC);
    if (c->calib == 1)
        sqlite3_bind_double(st, 8, 99.9);
    if (c->act) {
        sqlite3_bind_int(st, 9, 8);
        sqlite3_bind_text(st, 10, "minmax", -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 11, config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 12, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 13, status, -1, SQLITE_STATIC);
    if (done) {
        sqlite3_bind_double(st, 14, 100 * acc);
        sqlite3_bind_double(st, 15, 100 * (acc - FP32_ACC));
        sqlite3_bind_int64(st, 16, wb);
        sqlite3_bind_int64(st, 17, tb);
        sqlite3_bind_double(st, 18, fp32_bytes / (double)tb);
        sqlite3_bind_double(st, 19, bpw);
        sqlite3_bind_double(st, 20, 6.02 * c->bits + 1.76 - 4.0 * (c->gran == 0));
        sqlite3_bind_double(st, 21, 1e-4 * pow(2, -2 * c->bits));
        sqlite3_bind_double(st, 22, 180 + 20 * noise(seq));
        sqlite3_bind_text(st, 23, "avx2", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 24, !(c->bits == 8 && c->act));
        sqlite3_bind_text(st, 25, manifest, -1, SQLITE_TRANSIENT);
    } else if (!strcmp(status, "failed")) {
        sqlite3_bind_text(st, 26, "model.safetensors: tensor fc9.weight not found", -1,
                          SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        snprintf(msg, 256, "insert run: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int insert_layers(sqlite3 *db, sqlite3_stmt *lm, sqlite3_stmt *hs, long run_id, long seq,
                         const struct cfg *c, char *msg)
{
    for (int l = 0; l < FIXTURE_LAYERS; l++) {
        long n = layer_out[l] * layer_in[l];
        double wsqnr = 6.02 * c->bits + 1.76 - 3.0 * (c->gran == 0) - 1.5 * l;
        sqlite3_reset(lm);
        sqlite3_bind_int64(lm, 1, run_id);
        sqlite3_bind_int(lm, 2, l);
        sqlite3_bind_text(lm, 3, fixture_layer_names[l], -1, SQLITE_STATIC);
        sqlite3_bind_text(lm, 4, "linear", -1, SQLITE_STATIC);
        sqlite3_bind_int64(lm, 5, n);
        sqlite3_bind_int64(lm, 6, (n * c->bits + 7) / 8 + 4 * layer_out[l]);
        sqlite3_bind_int(lm, 7, c->bits);
        sqlite3_bind_double(lm, 8, wsqnr);
        sqlite3_bind_double(lm, 9, wsqnr - 4.0 - 2.0 * l);
        if (sqlite3_step(lm) != SQLITE_DONE) {
            snprintf(msg, 256, "insert layer: %s", sqlite3_errmsg(db));
            return -1;
        }
        for (int t = 0; t < 2; t++) {
            unsigned char blob[4 * FIXTURE_NBINS];
            for (int b = 0; b < FIXTURE_NBINS; b++) {
                uint32_t v = fixture_hist_count(seq, l, t, b);
                blob[4 * b] = (unsigned char)v;
                blob[4 * b + 1] = (unsigned char)(v >> 8);
                blob[4 * b + 2] = (unsigned char)(v >> 16);
                blob[4 * b + 3] = (unsigned char)(v >> 24);
            }
            double range = 0.02 * pow(2, 8 - c->bits) * (1 + t);
            sqlite3_reset(hs);
            sqlite3_bind_int64(hs, 1, run_id);
            sqlite3_bind_text(hs, 2, fixture_layer_names[l], -1, SQLITE_STATIC);
            sqlite3_bind_text(hs, 3, t ? "output" : "weight", -1, SQLITE_STATIC);
            sqlite3_bind_double(hs, 4, -range);
            sqlite3_bind_double(hs, 5, range);
            sqlite3_bind_int(hs, 6, FIXTURE_NBINS);
            sqlite3_bind_blob(hs, 7, blob, sizeof(blob), SQLITE_TRANSIENT);
            if (sqlite3_step(hs) != SQLITE_DONE) {
                snprintf(msg, 256, "insert histogram: %s", sqlite3_errmsg(db));
                return -1;
            }
        }
    }
    return 0;
}

int fixture_create(const char *db_path, const char *schema_path, long big_runs, char *msg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL, *lm = NULL, *hs = NULL;
    char *schema = read_file(schema_path);
    if (!schema) {
        snprintf(msg, 256, "%s: cannot read the schema", schema_path);
        return -1;
    }
    unlink(db_path);
    char side[4096];
    snprintf(side, sizeof(side), "%s-wal", db_path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db_path);
    unlink(side);
    int rc = sqlite3_open(db_path, &db);
    CHECK(rc);
    CHECK(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL));
    CHECK(sqlite3_exec(db, schema, NULL, NULL, NULL));
    CHECK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL));
    double fp32_bytes = 4.0 * (784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO experiments(id, name, yaml, config_hash, model_path, status,"
             " fp32_accuracy, fp32_bytes, kernel) VALUES"
             " (1, 'mlp-sweep', 'name: mlp-sweep', '0123456789abcdef', '/data/mlp.safetensors',"
             "  'running', %.2f, %.0f, 'avx2'),"
             " (2, 'cnn-small', 'name: cnn-small', 'fedcba9876543210', '/data/cnn.safetensors',"
             "  'done', 90.12, %.0f, 'avx2')",
             100 * FP32_ACC, fp32_bytes, fp32_bytes);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL));
    CHECK(sqlite3_prepare_v2(db, run_sql, -1, &st, NULL));
    CHECK(sqlite3_prepare_v2(db,
                             "INSERT INTO layer_metrics(run_id, position, layer, kind, params,"
                             " bytes, bits, weight_sqnr_db, output_sqnr_db)"
                             " VALUES (?,?,?,?,?,?,?,?,?)",
                             -1, &lm, NULL));
    CHECK(sqlite3_prepare_v2(db,
                             "INSERT INTO histograms(run_id, layer, tensor, lo, hi, nbins, counts)"
                             " VALUES (?,?,?,?,?,?,?)",
                             -1, &hs, NULL));
    long seq = 0;
    for (int b = 0; b < 6; b++)
        for (int s = 0; s < 2; s++)
            for (int g = 0; g < 3; g++)
                for (int c = 0; c < 4; c++)
                    for (int a = 0; a < 2; a++, seq++) {
                        struct cfg cf = {bits_grid[b], s, g, c, a};
                        if (insert_run(db, st, 1, seq, &cf, "done", fp32_bytes, msg) < 0 ||
                            insert_layers(db, lm, hs, (long)sqlite3_last_insert_rowid(db), seq, &cf,
                                          msg) < 0)
                            goto fail;
                    }
    struct cfg extra = {7, 0, 1, 2, 0};
    if (insert_run(db, st, 1, seq++, &extra, "pending", fp32_bytes, msg) < 0)
        goto fail;
    extra.bits = 16;
    if (insert_run(db, st, 1, seq++, &extra, "failed", fp32_bytes, msg) < 0)
        goto fail;
    for (long k = 0; k < 8; k++) {
        struct cfg cf = {(int)(2 + k % 7), (int)(k % 2), (int)(k % 3), (int)(k % 4), 0};
        if (insert_run(db, st, 2, k, &cf, "done", fp32_bytes, msg) < 0)
            goto fail;
    }
    if (big_runs > 0) {
        CHECK(sqlite3_exec(db,
                           "INSERT INTO experiments(id, name, yaml, config_hash, model_path,"
                           " status, fp32_accuracy, fp32_bytes) VALUES (3, 'synthetic-100k',"
                           " 'name: synthetic', 'aaaaaaaaaaaaaaaa', '/data/mlp.safetensors',"
                           " 'done', 88.53, 941576)",
                           NULL, NULL, NULL));
        for (long k = 0; k < big_runs; k++) {
            struct cfg cf = {2 + (int)(noise(k) * 15) % 7, (int)(noise(k + 7) * 2),
                             (int)(noise(k + 11) * 3), (int)(noise(k + 13) * 4),
                             (int)(noise(k + 17) * 2)};
            if (insert_run(db, st, 3, k, &cf, "done", fp32_bytes, msg) < 0)
                goto fail;
        }
    }
    CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
    sqlite3_finalize(st);
    sqlite3_finalize(lm);
    sqlite3_finalize(hs);
    sqlite3_close(db);
    free(schema);
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_finalize(lm);
    sqlite3_finalize(hs);
    sqlite3_close(db);
    free(schema);
    return -1;
}

static sqlite3_stmt *query_row(const char *db_path, const char *sql, int64_t arg, sqlite3 **db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(db_path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(*db, sql, -1, &st, NULL) != SQLITE_OK ||
        (sqlite3_bind_parameter_count(st) > 0 && sqlite3_bind_int64(st, 1, arg) != SQLITE_OK) ||
        sqlite3_step(st) != SQLITE_ROW) {
        fprintf(stderr, "fixture query failed: %s: %s\n", sql, sqlite3_errmsg(*db));
        abort();
    }
    return st;
}

int64_t fixture_query_int(const char *db_path, const char *sql, int64_t arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = query_row(db_path, sql, arg, &db);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

double fixture_query_double(const char *db_path, const char *sql, int64_t arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = query_row(db_path, sql, arg, &db);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void fixture_isolate_env(const char *dir)
{
    char sock[4096];
    setenv("XDG_CONFIG_HOME", dir, 1);
    snprintf(sock, sizeof sock, "%s/no-qlabd.sock", dir);
    setenv("QLAB_SOCKET", sock, 1);
}
