/* test-proto.c — the decoder against well-formed and malformed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qlab-proto.h"

#define AREA (1u << 20)

static qlab_msg m, out;
static unsigned char buf[QLAB_MSG_MAX];

static int roundtrip(void)
{
    int n = qlab_proto_encode(&m, buf, sizeof(buf));
    if (n < 0)
        return n;
    return qlab_proto_decode(buf, sizeof(buf), &out, AREA);
}

static void good_quant(void)
{
    qlab_msg_init(&m, QLAB_MSG_QUANT);
    m.id = 7;
    m.u.quant = (qlab_msg_quant){ .bits = 4, .scheme = QLAB_PROTO_SYMMETRIC,
        .granularity = QLAB_PROTO_GRAN_GROUP, .group_size = 32,
        .calibration = QLAB_PROTO_CALIB_PERCENTILE,
        .percentile = 99.9f, .rows = 16, .cols = 64, .in_off = 0, .deq_off = 4096,
        .codes_off = 8192, .scales_off = 12288, .scales_len = 16 * 2 * 8 };
}

static void test_roundtrip_all(void **state)
{
    good_quant();
    assert_int_equal(roundtrip(), 0);
    assert_int_equal(out.type, QLAB_MSG_QUANT);
    assert_int_equal(out.id, 7);
    assert_memory_equal(&out.u.quant, &m.u.quant, sizeof(m.u.quant));
    assert_int_equal(qlab_proto_quant_nscales(&out.u.quant), 32);

    qlab_msg_init(&m, QLAB_MSG_SUBMIT);
    m.u.submit.kind = QLAB_SUBMIT_PATH;
    strcpy(m.u.submit.path, "/tmp/x.yaml");
    assert_int_equal(roundtrip(), 0);
    assert_string_equal(out.u.submit.path, "/tmp/x.yaml");

    qlab_msg_init(&m, QLAB_MSG_PING);
    m.u.ping.len = 48;
    memset(m.u.ping.bytes, 0xab, 48);
    assert_int_equal(qlab_proto_encode(&m, buf, sizeof(buf)), 64);
    assert_int_equal(roundtrip(), 0);
    assert_int_equal(out.u.ping.len, 48);
    assert_int_equal(out.u.ping.bytes[47], 0xab);

    qlab_msg_init(&m, QLAB_MSG_EVENT);
    m.u.event.kind = QLAB_EVENT_RUN_FINISHED;
    m.u.event.accuracy = 0.875f;
    strcpy(m.u.event.label, "int4");
    assert_int_equal(roundtrip(), 0);
    assert_true(out.u.event.accuracy == 0.875f);
}

static void test_bad_header(void **state)
{
    good_quant();
    int n = qlab_proto_encode(&m, buf, sizeof(buf));
    uint32_t len;

    assert_int_equal(qlab_proto_decode(buf, 8, &out, AREA), -EMSGSIZE);       /* short slot */
    assert_int_equal(qlab_proto_decode(buf, (size_t)n - 1, &out, AREA), -EMSGSIZE);
    len = 8;                                        /* shorter than the header */
    memcpy(buf + 4, &len, 4);
    assert_int_equal(qlab_proto_decode(buf, sizeof(buf), &out, AREA), -EMSGSIZE);
    len = 0xffffffffu;                              /* longer than a slot */
    memcpy(buf + 4, &len, 4);
    assert_int_equal(qlab_proto_decode(buf, sizeof(buf), &out, AREA), -EMSGSIZE);
    len = (uint32_t)n + 4;                          /* wrong payload size for the type */
    memcpy(buf + 4, &len, 4);
    assert_int_equal(qlab_proto_decode(buf, sizeof(buf), &out, AREA), -EMSGSIZE);
    uint32_t type = 999;
    len = (uint32_t)n;
    memcpy(buf, &type, 4);
    memcpy(buf + 4, &len, 4);
    assert_int_equal(qlab_proto_decode(buf, sizeof(buf), &out, AREA), -EPROTO);
}

static void test_bad_quant(void **state)
{
    struct { const char *what; void (*edit)(qlab_msg_quant *q); } cases[] = {
        { "bits 1", NULL }, { "bits 9", NULL }, { "bits 33", NULL }, { "scheme", NULL },
        { "gran", NULL }, { "calib", NULL }, { "pct 0", NULL }, { "pct nan", NULL },
        { "pct 101", NULL }, { "group 0", NULL }, { "pct -1", NULL }, { "rows 0", NULL },
        { "rows*cols overflow", NULL }, { "bytes overflow", NULL }, { "in past end", NULL },
        { "off+len wraps", NULL }, { "deq unaligned", NULL }, { "overlap", NULL },
        { "scales short", NULL }, { "scales out", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        good_quant();
        qlab_msg_quant *q = &m.u.quant;
        switch (i) {
        case 0: q->bits = 1; break;
        case 1: q->bits = 9; break;
        case 2: q->bits = 33; break;
        case 3: q->scheme = 3; break;
        case 4: q->granularity = 0; break;
        case 5: q->calibration = 9; break;
        case 6: q->percentile = 0.0f; break;
        case 7: q->percentile = NAN; break;
        case 8: q->percentile = 101.0f; break;
        case 9: q->group_size = 0; break;
        case 10: q->percentile = -1.0f; break;
        case 11: q->rows = 0; break;
        case 12:
            q->granularity = QLAB_PROTO_GRAN_TENSOR;
            q->rows = 1ull << 40;
            q->cols = 1ull << 30;
            break;
        case 13:
            q->granularity = QLAB_PROTO_GRAN_TENSOR;
            q->rows = 1ull << 31;
            q->cols = 1ull << 31;
            break;
        case 14: q->in_off = AREA - 1024; break;
        case 15: q->in_off = UINT64_MAX - 3; break;
        case 16: q->deq_off = 4098; break;
        case 17: q->deq_off = 2048; break;
        case 18: q->scales_len = 8; break;
        case 19: q->scales_off = AREA - 8; break;
        }
        int r = roundtrip();
        if (r != -EBADMSG)
            fail_msg("case '%s': decode returned %d, want -EBADMSG", cases[i].what, r);
    }
}

static void test_bad_strings(void **state)
{
    qlab_msg_init(&m, QLAB_MSG_SUBMIT);
    m.u.submit.kind = QLAB_SUBMIT_PATH;
    memset(m.u.submit.path, 'a', sizeof(m.u.submit.path));          /* no NUL */
    assert_int_equal(roundtrip(), -EBADMSG);
    m.u.submit.path[0] = '\0';                                         /* empty */
    assert_int_equal(roundtrip(), -EBADMSG);
    m.u.submit.kind = QLAB_SUBMIT_YAML;
    m.u.submit.yaml_off = AREA;
    m.u.submit.yaml_len = 1;
    assert_int_equal(roundtrip(), -EBADMSG);
    m.u.submit.yaml_off = 8;
    m.u.submit.yaml_len = UINT64_MAX;
    assert_int_equal(roundtrip(), -EBADMSG);
    m.u.submit.yaml_len = 100;
    assert_int_equal(roundtrip(), 0);
    m.u.submit.kind = 7;
    assert_int_equal(roundtrip(), -EBADMSG);

    qlab_msg_init(&m, QLAB_MSG_REPLY);
    memset(m.u.reply.text, 'x', sizeof(m.u.reply.text));
    assert_int_equal(roundtrip(), -EBADMSG);
    qlab_msg_init(&m, QLAB_MSG_REPLY);
    m.u.reply.status = 5;
    assert_int_equal(roundtrip(), -EBADMSG);

    qlab_msg_init(&m, QLAB_MSG_EVENT);
    m.u.event.kind = QLAB_EVENT_RUN_STARTED;
    memset(m.u.event.label, 'x', sizeof(m.u.event.label));
    assert_int_equal(roundtrip(), -EBADMSG);

    qlab_msg_init(&m, QLAB_MSG_LIST);
    m.u.list.out_off = AREA - 100;
    m.u.list.out_len = 200;
    assert_int_equal(roundtrip(), -EBADMSG);

    qlab_msg_init(&m, QLAB_MSG_SUBSCRIBE);
    m.u.subscribe.on = 2;
    assert_int_equal(roundtrip(), -EBADMSG);
}

/* Random bytes never crash the decoder and are almost always rejected. */
static void test_random_bytes(void **state)
{
    unsigned seed = 12345;
    for (int it = 0; it < 20000; it++) {
        for (size_t i = 0; i < 256; i++)
            buf[i] = (unsigned char)rand_r(&seed);
        size_t len = (size_t)rand_r(&seed) % 300;
        (void)qlab_proto_decode(buf, len < 256 ? len : 256, &out, AREA);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_quant),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests_name("shm-proto", tests, NULL, NULL);
}
