/* test-safetensors.c — the safetensors reader and writer, and model loading errors.
 * Every corrupt input is generated here into a temporary directory; each must fail with
 * one message naming the file and the tensor at fault. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "model-test.h"
#include "qlab-model.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* Writes u64 LE header length, the header, then `data`; hlen_override != 0 replaces the
 * header length field. */
static const char *write_st(const char *name, const char *header, const void *data, size_t n,
                            uint64_t hlen_override)
{
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    uint64_t hl = hlen_override ? hlen_override : strlen(header);
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(hl >> (8 * i));
    assert_int_equal(fwrite(b, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, strlen(header), f), strlen(header));
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

static const float vals8[8] = {1.0f, -2.0f, 0.5f, 3.25f, -0.125f, 7.0f, 0.0f, -1.5f};

/* Opening must fail with -EINVAL and a message naming the file and (if given) the tensor
 * and a phrase. */
static void expect_error(const char *path, unsigned flags, const char *tensor, const char *phrase)
{
    qlab_safetensors *st = NULL;
    qlab_err err = {0};
    int r = qlab_st_open(&st, path, flags, &err);
    assert_int_equal(r, -EINVAL);
    assert_null(st);
    fprintf(stderr, "  -> %s\n", err.msg);
    assert_int_equal(err.code, -EINVAL);
    assert_non_null(strstr(err.msg, path));
    if (tensor)
        assert_non_null(strstr(err.msg, tensor));
    if (phrase)
        assert_non_null(strstr(err.msg, phrase));
}

static const char *good_header =
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]},"
    "\"__metadata__\":{\"k\":\"v\"}}";

static void test_valid(void **state)
{
    (void)state;
    const char *p = write_st("good.safetensors", good_header, vals8, sizeof vals8, 0);
    qlab_safetensors *st;
    qlab_err err = {0};
    assert_int_equal(qlab_st_open(&st, p, 0, &err), 0);
    assert_int_equal(st->ntensors, 2);
    const qlab_tensor *a = qlab_st_find(st, "a"), *b = qlab_st_find(st, "b");
    assert_non_null(a);
    assert_non_null(b);
    assert_null(qlab_st_find(st, "c"));
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->numel, 4);
    assert_true(floats_close(a->f32, vals8, 4, 0, 0));
    assert_true(floats_close(b->f32, vals8 + 4, 4, 0, 0));
    assert_string_equal(qlab_st_meta(st, "k"), "v");
    assert_null(qlab_st_meta(st, "nope"));
    qlab_st_close(st);
}

static void test_truncated(void **state)
{
    (void)state;
    /* the data section lacks the last 4 bytes of tensor b */
    expect_error(write_st("trunc.safetensors", good_header, vals8, sizeof vals8 - 4, 0), 0, "'b'",
                 "truncated");
    /* shorter than the length field itself */
    const char *p = tmp_path("tiny.safetensors");
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_error(p, 0, NULL, "truncated");
}

static void test_header_beyond_file(void **state)
{
    (void)state;
    expect_error(write_st("hlen.safetensors", good_header, vals8, sizeof vals8, 1000000), 0, NULL,
                 "beyond the file");
}

static void test_overlap(void **state)
{
    (void)state;
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}";
    expect_error(write_st("overlap.safetensors", h, vals8, sizeof vals8, 0), 0, "'b'", "overlaps");
}

static void test_out_of_range(void **state)
{
    (void)state;
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[16,48]}}";
    expect_error(write_st("range.safetensors", h, vals8, sizeof vals8, 0), 0, "'w'", "outside");
}

static void test_span_mismatch(void **state)
{
    (void)state;
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}";
    expect_error(write_st("span.safetensors", h, vals8, 16, 0), 0, "'a'", "span");
    /* same span, dtype F16 doubles the element count needed */
    const char *h2 = "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    expect_error(write_st("span16.safetensors", h2, vals8, 16, 0), 0, "'a'", "span");
}

static void test_unknown_dtype(void **state)
{
    (void)state;
    const char *h = "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
    expect_error(write_st("dtype.safetensors", h, vals8, 16, 0), 0, "'a'", "unsupported dtype 'F64'");
    /* integer tensors are not weights unless the caller asks for them */
    const char *h2 = "{\"q\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]}}";
    const char *p = write_st("u8.safetensors", h2, vals8, 16, 0);
    expect_error(p, 0, "'q'", "not a float type");
    qlab_safetensors *st;
    assert_int_equal(qlab_st_open(&st, p, QLAB_ST_ALLOW_INT, NULL), 0);
    assert_null(qlab_st_find(st, "q")->f32);
    assert_int_equal(((const uint8_t *)qlab_st_find(st, "q")->raw)[0], ((const uint8_t *)vals8)[0]);
    qlab_st_close(st);
}

static void test_nan_weights(void **state)
{
    (void)state;
    float v[8];
    memcpy(v, vals8, sizeof v);
    v[5] = NAN;
    expect_error(write_st("nan.safetensors", good_header, v, sizeof v, 0), 0, "'b'", "NaN");
    v[5] = INFINITY;
    expect_error(write_st("inf.safetensors", good_header, v, sizeof v, 0), 0, "'b'", "infinite");
}

static void test_bad_json(void **state)
{
    (void)state;
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],";
    expect_error(write_st("json.safetensors", h, vals8, 16, 0), 0, NULL, "JSON");
}

static void test_half_conversion(void **state)
{
    (void)state;
    /* F16: 1.5, -2, 65504 (max), 2^-24 (smallest subnormal); BF16: 1.5, -2, 2^100, 0 */
    const uint16_t raw[8] = {0x3e00, 0xc000, 0x7bff, 0x0001, 0x3fc0, 0xc000, 0x7180, 0x0000};
    const float want[8] = {1.5f, -2.0f, 65504.0f, 5.9604644775390625e-8f,
                           1.5f, -2.0f, 1.2676506002282294e30f, 0.0f};
    const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[8,16]}}";
    qlab_safetensors *st;
    assert_int_equal(qlab_st_open(&st, write_st("half.safetensors", h, raw, 16, 0), 0, NULL), 0);
    assert_true(floats_close(qlab_st_find(st, "h")->f32, want, 4, 0, 0));
    assert_true(floats_close(qlab_st_find(st, "b")->f32, want + 4, 4, 0, 0));
    qlab_st_close(st);
}

static void test_writer_roundtrip(void **state)
{
    (void)state;
    qlab_st_writer *w;
    const uint8_t codes[5] = {1, 2, 3, 250, 255};
    const int8_t zps[2] = {-3, 7};
    int64_t s5 = 5, s2 = 2, s22[2] = {2, 2};
    assert_int_equal(qlab_st_writer_new(&w), 0);
    assert_int_equal(qlab_st_writer_add(w, "codes", QLAB_DTYPE_U8, 1, &s5, codes, 5), 0);
    assert_int_equal(qlab_st_writer_add(w, "m", QLAB_DTYPE_F32, 2, s22, vals8, 16), 0);
    assert_int_equal(qlab_st_writer_add(w, "zp", QLAB_DTYPE_I8, 1, &s2, zps, 2), 0);
    assert_int_equal(qlab_st_writer_add(w, "m", QLAB_DTYPE_F32, 2, s22, vals8, 16), -EEXIST);
    assert_int_equal(qlab_st_writer_add(w, "bad", QLAB_DTYPE_F32, 2, s22, vals8, 12), -EINVAL);
    assert_int_equal(qlab_st_writer_meta(w, "qlab.note", "hello \"world\""), 0);
    size_t bytes = 0;
    const char *p = tmp_path("written.safetensors");
    assert_int_equal(qlab_st_writer_save(w, p, &bytes, NULL), 0);
    qlab_st_writer_free(w);
    assert_int_equal(bytes, 5 + 16 + 2);

    qlab_safetensors *st;
    assert_int_equal(qlab_st_open(&st, p, QLAB_ST_ALLOW_INT, NULL), 0);
    assert_int_equal(st->ntensors, 3);
    assert_memory_equal(qlab_st_find(st, "codes")->raw, codes, 5);
    assert_memory_equal(qlab_st_find(st, "zp")->raw, zps, 2);
    assert_int_equal(qlab_st_find(st, "zp")->dtype, QLAB_DTYPE_I8);
    /* "m" starts at byte 5 of the data section: unaligned F32 is converted, same values */
    assert_true(floats_close(qlab_st_find(st, "m")->f32, vals8, 4, 0, 0));
    assert_string_equal(qlab_st_meta(st, "qlab.note"), "hello \"world\"");
    /* header is padded to 8 bytes and the file is exactly 8 + header + data */
    uint64_t hl = 0;
    memcpy(&hl, st->map, 8);
    assert_int_equal(hl % 8, 0);
    assert_int_equal(st->map_len, 8 + hl + bytes);
    qlab_st_close(st);
}

/* A one-layer model file: fc.weight [3, 4], fc.bias [3]. */
static const char *write_linear_model(void)
{
    const char *h = "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
                    "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    float v[15];
    for (int i = 0; i < 15; i++)
        v[i] = (float)i * 0.25f - 1.0f;
    return write_st("linear.safetensors", h, v, sizeof v, 0);
}

static void test_spec_missing_tensor(void **state)
{
    (void)state;
    const char *p = write_linear_model();
    qlab_layer_spec l[2] = {{.kind = QLAB_LAYER_FLATTEN},
                            {.kind = QLAB_LAYER_LINEAR, .weight = "fc9.weight", .bias = "fc.bias"}};
    qlab_model_spec spec = {.nlayers = 2, .layers = l, .in_c = 1, .in_h = 2, .in_w = 2, .std = 1};
    qlab_model *m = NULL;
    qlab_err err = {0};
    assert_int_equal(qlab_model_load(&m, p, &spec, &err), -ENOENT);
    assert_null(m);
    fprintf(stderr, "  -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "fc9.weight"));
    assert_non_null(strstr(err.msg, "not in the file"));

    /* no spec and no layer list in the metadata */
    qlab_err_clear(&err);
    assert_int_equal(qlab_model_load(&m, p, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "qlab.layers"));
}

static void test_spec_shape_mismatch(void **state)
{
    (void)state;
    const char *p = write_linear_model();
    qlab_layer_spec l[2] = {{.kind = QLAB_LAYER_FLATTEN},
                            {.kind = QLAB_LAYER_LINEAR, .weight = "fc.weight", .bias = "fc.bias"}};
    /* 3 x 3 input = 9 features; fc.weight takes 4 */
    qlab_model_spec spec = {.nlayers = 2, .layers = l, .in_c = 1, .in_h = 3, .in_w = 3, .std = 1};
    qlab_model *m = NULL;
    qlab_err err = {0};
    assert_int_equal(qlab_model_load(&m, p, &spec, &err), -EINVAL);
    fprintf(stderr, "  -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "layer 'fc'"));
    assert_non_null(strstr(err.msg, "'fc.weight'"));
    assert_non_null(strstr(err.msg, "[3, 4]"));

    /* a linear weight used as a conv2d weight */
    qlab_layer_spec c[1] = {{.kind = QLAB_LAYER_CONV2D, .name = "conv", .weight = "fc.weight"}};
    spec.layers = c;
    spec.nlayers = 1;
    qlab_err_clear(&err);
    assert_int_equal(qlab_model_load(&m, p, &spec, &err), -EINVAL);
    fprintf(stderr, "  -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, "layer 'conv'"));
    assert_non_null(strstr(err.msg, "'fc.weight'"));

    /* the bias does not match the weight's rows */
    qlab_layer_spec b[2] = {{.kind = QLAB_LAYER_FLATTEN},
                            {.kind = QLAB_LAYER_LINEAR, .weight = "fc.weight", .bias = "fc.weight"}};
    spec.layers = b;
    spec.nlayers = 2;
    spec.in_h = 2;
    spec.in_w = 2;
    qlab_err_clear(&err);
    assert_int_equal(qlab_model_load(&m, p, &spec, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "bias 'fc.weight'"));

    /* the good spec loads and evaluates: y = W x + b on one sample */
    snprintf(b[1].bias, sizeof b[1].bias, "fc.bias");
    assert_int_equal(qlab_model_load(&m, p, &spec, &err), 0);
    assert_int_equal(m->nclasses, 3);
    assert_int_equal(qlab_model_weighted_layers(m), 1);
    assert_int_equal(qlab_layer_params(&m->layers[1]), 15);
    const float x[4] = {1.0f, 2.0f, -1.0f, 0.5f};
    float y[3], want[3];
    for (int o = 0; o < 3; o++) {
        double s = (double)(12 + o) * 0.25 - 1.0; /* fc.bias[o] */
        for (int i = 0; i < 4; i++)
            s += ((double)(o * 4 + i) * 0.25 - 1.0) * x[i];
        want[o] = (float)s;
    }
    assert_int_equal(qlab_model_forward(m, x, 1, NULL, y, NULL), 0);
    assert_true(floats_close(y, want, 3, 1e-6, 1e-6));
    qlab_model_free(m);
}

static void test_metadata_layers(void **state)
{
    (void)state;
    float v[15] = {0};
    const char *h =
        "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
        "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[48,60]},"
        "\"__metadata__\":{\"qlab.layers\":\"[{\\\"kind\\\":\\\"flatten\\\"},"
        "{\\\"kind\\\":\\\"linear\\\",\\\"weight\\\":\\\"fc.weight\\\","
        "\\\"bias\\\":\\\"fc.bias\\\"}]\",\"qlab.input\":\"[1,2,2]\","
        "\"qlab.mean\":\"0.5\",\"qlab.std\":\"2\"}}";
    const char *p = write_st("meta.safetensors", h, v, sizeof v, 0);
    qlab_model *m;
    qlab_err err = {0};
    if (qlab_model_load(&m, p, NULL, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(m->nlayers, 2);
    assert_int_equal(m->layers[1].kind, QLAB_LAYER_LINEAR);
    assert_string_equal(m->layers[1].name, "fc");
    assert_int_equal(m->in_size, 4);
    assert_true(m->mean == 0.5f && m->std == 2.0f);
    qlab_model_free(m);

    const char *h2 =
        "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
        "\"__metadata__\":{\"qlab.layers\":\"[{\\\"kind\\\":\\\"softmax\\\"}]\"}}";
    p = write_st("meta2.safetensors", h2, v, 48, 0);
    assert_int_equal(qlab_model_load(&m, p, NULL, &err), -EINVAL);
    fprintf(stderr, "  -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, "unknown kind 'softmax'"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qlab-test-st-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header_beyond_file),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_span_mismatch),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_nan_weights),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_half_conversion),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_spec_missing_tensor),
        cmocka_unit_test(test_spec_shape_mismatch),
        cmocka_unit_test(test_metadata_layers),
    };
    return cmocka_run_group_tests_name("model-safetensors", tests, setup, teardown);
}
