/* test-npy.c — .npy reading and writing: round trip, float64 conversion, and the errors a
 * user must see (dtype, Fortran order, truncation, bad header). */
#include "test-util.h"

#include <errno.h>
#include <unistd.h>

#include "qlab-npy.h"

static void roundtrip(void **state)
{
    char path[] = "/tmp/qlab-npy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (int nd = 1; nd <= 4; nd++) {
        size_t shape[4] = { 3, 1, 5, 2 }, n = 1;
        for (int i = 0; i < nd; i++)
            n *= shape[i];
        float data[30];
        for (size_t i = 0; i < n; i++)
            data[i] = (float)i * 0.25f - 1.0f;
        qlab_err err = {0};
        assert_int_equal(qlab_npy_write_f32(path, data, nd, shape, &err), 0);
        qlab_npy t = {0};
        assert_int_equal(qlab_npy_read(path, &t, &err), 0);
        assert_int_equal(t.ndim, nd);
        assert_int_equal(t.n, n);
        for (int i = 0; i < nd; i++)
            assert_int_equal(t.shape[i], shape[i]);
        assert_memory_equal(t.data, data, n * 4);
        /* Header padded to 64 bytes, as numpy writes it. */
        size_t len;
        uint8_t *raw = slurp(path, &len);
        assert_int_equal((len - n * 4) % 64, 0);
        free(raw);
        qlab_npy_free(&t);
    }
    unlink(path);
    qlab_npy_free(NULL);
}

static void float64_and_numpy_files(void **state)
{
    qlab_err err = {0};
    qlab_npy a = {0}, b = {0};
    assert_int_equal(qlab_npy_read(fixture("demo.npy"), &a, &err), 0);
    assert_int_equal(qlab_npy_read(fixture("demo-f64.npy"), &b, &err), 0);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 64);
    assert_int_equal(a.shape[1], 128);
    assert_memory_equal(a.data, b.data, a.n * 4);   /* f32 -> f64 -> f32 is exact */
    qlab_npy_free(&a);
    qlab_npy_free(&b);
}

/* qlab_npy_map: float32 mapped (same values), float64 read and converted. */
static void mapped(void **state)
{
    qlab_err err = {0};
    qlab_npy a = {0}, b = {0}, c = {0};
    assert_int_equal(qlab_npy_read(fixture("demo.npy"), &a, &err), 0);
    assert_int_equal(qlab_npy_map(fixture("demo.npy"), &b, &err), 0);
    assert_int_equal(qlab_npy_map(fixture("demo-f64.npy"), &c, &err), 0);
    assert_non_null(b.map);
    assert_null(c.map);
    assert_int_equal(b.ndim, 2);
    assert_int_equal(b.n, a.n);
    assert_memory_equal(a.data, b.data, a.n * 4);
    assert_memory_equal(a.data, c.data, a.n * 4);
    qlab_npy_free(&a);
    qlab_npy_free(&b);
    qlab_npy_free(&c);
    assert_null(b.map);
}

static void expect_error(const char *file, int code, const char *words)
{
    for (int map = 0; map < 2; map++) {
        qlab_err err = {0};
        qlab_npy t = {0};
        assert_int_equal((map ? qlab_npy_map : qlab_npy_read)(fixture(file), &t, &err), code);
        assert_non_null(strstr(err.msg, file));
        if (!strstr(err.msg, words))
            fail_msg("%s: message '%s' lacks '%s'", file, err.msg, words);
        assert_null(t.data);
    }
}

static void errors(void **state)
{
    expect_error("bad-f16.npy", -ENOTSUP, "unsupported dtype '<f2'");
    expect_error("bad-fortran.npy", -EINVAL, "Fortran");
    expect_error("bad-truncated.npy", -EIO, "truncated");
    expect_error("does-not-exist.npy", -ENOENT, "No such file");
    expect_error("torch_fq.bin", -EINVAL, "not a .npy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(float64_and_numpy_files),
        cmocka_unit_test(mapped),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests_name("core-npy", tests, NULL, NULL);
}
