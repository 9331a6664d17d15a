/* test-dataset.c — the IDX reader: gzip and plain files made here, malformed headers, and
 * the Fashion-MNIST files Debian ships. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "model-test.h"
#include "qlab-model.h"

static char dir[] = "/tmp/qlab-test-idx-XXXXXX";

static const char *path(const char *name)
{
    static char buf[16][512];
    static int k;
    char *b = buf[k++ & 15];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

/* IDX u8 file: magic 00 00 08 ndim, big-endian dims, data; gzip when gz. */
static const char *write_idx(const char *name, int ndim, const uint32_t *dims, const uint8_t *data,
                             size_t n, int gz, uint8_t type)
{
    uint8_t hdr[4 + 4 * 4] = {0, 0, type, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++) {
        hdr[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        hdr[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        hdr[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        hdr[7 + 4 * i] = (uint8_t)dims[i];
    }
    const char *p = path(name);
    if (gz) {
        gzFile g = gzopen(p, "wb");
        assert_non_null(g);
        gzwrite(g, hdr, (unsigned)(4 + 4 * ndim));
        if (n)
            gzwrite(g, data, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        fwrite(hdr, 1, (size_t)(4 + 4 * ndim), f);
        if (n)
            fwrite(data, 1, n, f);
        fclose(f);
    }
    return p;
}

static void test_small(void **state)
{
    (void)state;
    uint8_t img[3 * 2 * 4], lab[3] = {7, 0, 9};
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 11);
    uint32_t di[3] = {3, 2, 4}, dl[1] = {3};
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = write_idx(gz ? "i.gz" : "i", 3, di, img, sizeof img, gz, 8);
        const char *lp = write_idx(gz ? "l.gz" : "l", 1, dl, lab, 3, gz, 8);
        qlab_dataset *ds;
        qlab_err err = {0};
        assert_int_equal(qlab_dataset_load(&ds, ip, lp, &err), 0);
        assert_int_equal(ds->n, 3);
        assert_int_equal(ds->h, 2);
        assert_int_equal(ds->w, 4);
        assert_memory_equal(ds->images, img, sizeof img);
        assert_memory_equal(ds->labels, lab, 3);
        qlab_dataset_free(ds);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t img[24] = {0}, lab[3] = {0};
    uint32_t di[3] = {3, 2, 4}, dl[1] = {3}, dl2[1] = {2};
    const char *ip = write_idx("ok.gz", 3, di, img, sizeof img, 1, 8);
    const char *lp = write_idx("okl.gz", 1, dl, lab, 3, 1, 8);
    qlab_dataset *ds = NULL;
    qlab_err err = {0};
    /* int32 data type (0x0C) is not unsigned bytes */
    const char *bad = write_idx("type.gz", 3, di, img, sizeof img, 1, 0x0C);
    assert_int_equal(qlab_dataset_load(&ds, bad, lp, &err), -EINVAL);
    assert_non_null(strstr(err.msg, bad));
    assert_non_null(strstr(err.msg, "magic"));
    /* dimensions promise more bytes than the file holds */
    qlab_err_clear(&err);
    const char *shortf = write_idx("short.gz", 3, di, img, sizeof img - 5, 1, 8);
    assert_int_equal(qlab_dataset_load(&ds, shortf, lp, &err), -EINVAL);
    assert_non_null(strstr(err.msg, shortf));
    /* label count differs from the image count */
    qlab_err_clear(&err);
    const char *l2 = write_idx("l2.gz", 1, dl2, lab, 2, 1, 8);
    assert_int_equal(qlab_dataset_load(&ds, ip, l2, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "2 labels for 3 images"));
    /* missing file */
    qlab_err_clear(&err);
    assert_true(qlab_dataset_load(&ds, path("nope.gz"), lp, &err) < 0);
    assert_non_null(strstr(err.msg, "nope.gz"));
    assert_null(ds);
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    qlab_dataset *ds;
    qlab_err err = {0};
    if (qlab_dataset_load_fmnist(&ds, NULL, 0, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(ds->n, 10000);
    assert_int_equal(ds->h, 28);
    assert_int_equal(ds->w, 28);
    /* the first test image is an ankle boot (class 9); classes are balanced, 1000 each */
    assert_int_equal(ds->labels[0], 9);
    size_t count[10] = {0};
    for (size_t i = 0; i < ds->n; i++) {
        assert_true(ds->labels[i] < 10);
        count[ds->labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(count[c], 1000);
    qlab_dataset_free(ds);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests_name("model-dataset", tests, setup, teardown);
}
