/* qlab-proto.h — the messages qlabd and its clients exchange through the shared-memory rings.
 *
 * A message is a 16-byte header (type, total length, request id) followed by the payload
 * struct of its type, byte for byte (both ends run on the same machine and ABI, so the
 * structs below are the wire format; static assertions in proto.c pin their sizes). A
 * message never holds a pointer: bulk data (YAML text, tensors, listings) lives in the
 * client's data area and is referenced by byte offset and length from the start of it.
 *
 * Everything read from shared memory goes through qlab_proto_decode(), which copies each
 * byte once out of the slot and then validates the copy, so a peer that rewrites the slot
 * meanwhile cannot make the checks and the use see different values.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define QLAB_PROTO_VERSION 1u

/* Largest encoded message: one ring slot. */
#define QLAB_MSG_MAX        4096u
#define QLAB_MSG_HDR_SIZE   16u
#define QLAB_PING_MAX       (QLAB_MSG_MAX - QLAB_MSG_HDR_SIZE)
#define QLAB_PROTO_PATH_MAX       1024u
#define QLAB_PROTO_TEXT_MAX       256u
#define QLAB_PROTO_NAME_MAX       64u

typedef enum qlab_msg_type {
    QLAB_MSG_NONE = 0,
    /* client -> daemon */
    QLAB_MSG_SUBMIT = 1,
    QLAB_MSG_CANCEL,
    QLAB_MSG_STATUS,
    QLAB_MSG_LIST,
    QLAB_MSG_SUBSCRIBE,
    QLAB_MSG_QUANT,
    QLAB_MSG_PING,       /* echoed back verbatim as QLAB_MSG_PONG (latency probe) */
    /* daemon -> client */
    QLAB_MSG_REPLY = 64, /* completion of any request but PING; id = the request's id */
    QLAB_MSG_PONG,
    QLAB_MSG_EVENT,      /* progress event, id = 0 */
} qlab_msg_type;

/* SUBMIT: an experiment file the daemon reads, or YAML text in the client's data area. */
typedef enum qlab_submit_kind {
    QLAB_SUBMIT_PATH = 1,
    QLAB_SUBMIT_YAML = 2,
} qlab_submit_kind;

typedef struct qlab_msg_submit {
    uint32_t kind;                /* qlab_submit_kind */
    uint32_t flags;               /* reserved, 0 */
    uint64_t yaml_off, yaml_len;  /* QLAB_SUBMIT_YAML: text in the data area (no NUL needed) */
    char     path[QLAB_PROTO_PATH_MAX]; /* QLAB_SUBMIT_PATH: absolute path, NUL-terminated */
} qlab_msg_submit;

typedef struct qlab_msg_id {      /* CANCEL, STATUS */
    uint64_t experiment_id;
} qlab_msg_id;

/* LIST: the daemon writes up to out_len / sizeof(qlab_exp_info) records at out_off in the
 * data area; the reply's value is the number of experiments (which may exceed what fit). */
typedef struct qlab_msg_list {
    uint64_t out_off, out_len;
} qlab_msg_list;

typedef struct qlab_msg_subscribe {
    uint64_t experiment_id;       /* 0: every experiment */
    uint32_t on;                  /* 1 subscribe, 0 unsubscribe */
    uint32_t pad;
} qlab_msg_subscribe;

/* Wire values of PRODUCT.md §3's choices: 1-based so that a zeroed field is invalid, and
 * prefixed so that they never clash with the core's qlab_scheme / qlab_granularity /
 * qlab_calibration (quant-core.c maps them onto a qlab_qconfig). */
enum { QLAB_PROTO_SYMMETRIC = 1, QLAB_PROTO_ASYMMETRIC = 2 };
enum { QLAB_PROTO_GRAN_TENSOR = 1, QLAB_PROTO_GRAN_CHANNEL = 2, QLAB_PROTO_GRAN_GROUP = 3 };
enum {
    QLAB_PROTO_CALIB_MINMAX = 1, QLAB_PROTO_CALIB_PERCENTILE, QLAB_PROTO_CALIB_MSE,
    QLAB_PROTO_CALIB_ENTROPY,
};

/* QUANT, zero-copy: a row-major float32 [rows x cols] tensor at in_off; the daemon writes
 * the integer codes (int8 for bits <= 8, int16 for 16) at codes_off, the dequantized float32
 * tensor at deq_off, and when scales_len != 0 the float32 scales followed by the int32 zero
 * points (one per tensor / row / group) at scales_off. Output ranges must not overlap the
 * input. Offsets of float/int arrays are 4-byte aligned. Groups run along a row; a row's
 * last group may be partial (rows * ceil(cols / group_size) scales). */
typedef struct qlab_msg_quant {
    uint32_t bits, scheme, granularity, group_size, calibration;
    float    percentile;          /* QLAB_PROTO_CALIB_PERCENTILE: (0, 100] */
    uint64_t rows, cols;
    uint64_t in_off, codes_off, deq_off;
    uint64_t scales_off, scales_len; /* scales_len 0: not wanted */
} qlab_msg_quant;

typedef struct qlab_quant_metrics {
    double   mse, sqnr_db, max_abs_error;
    float    scale;               /* first (or only) scale and zero point */
    int32_t  zero_point;
    uint64_t nscales;             /* 1, rows, or rows * ceil(cols / group_size) */
    uint64_t bytes;               /* honest storage: packed codes + scales (+ zero points) */
    double   cosine;              /* <x, x'> / (|x| |x'|) */
    double   clip_fraction;       /* fraction of values clipped by the calibrated range */
} qlab_quant_metrics;

enum {
    QLAB_EXP_PENDING = 1, QLAB_EXP_RUNNING, QLAB_EXP_DONE, QLAB_EXP_FAILED, QLAB_EXP_CANCELLED,
};

typedef struct qlab_exp_info {
    uint64_t id;
    uint32_t status;              /* QLAB_EXP_* */
    uint32_t runs_total, runs_done, runs_failed;
    float    best_accuracy;       /* NaN when no run finished */
    uint32_t pad;
    uint64_t best_total_bytes;
    char     name[QLAB_PROTO_NAME_MAX]; /* NUL-terminated */
} qlab_exp_info;

/* REPLY: status is 0 or -errno; value is the request's result (the new experiment id for
 * SUBMIT, the count for LIST); info for STATUS; metrics for QUANT; text a one-line error. */
typedef struct qlab_msg_reply {
    int32_t  status;
    uint32_t pad;
    uint64_t value;
    union {
        qlab_exp_info      info;
        qlab_quant_metrics metrics;
    } u;
    char     text[QLAB_PROTO_TEXT_MAX]; /* NUL-terminated, "" when status == 0 */
} qlab_msg_reply;

typedef enum qlab_event_kind {
    QLAB_EVENT_EXPERIMENT_STARTED = 1,
    QLAB_EVENT_RUN_STARTED,
    QLAB_EVENT_RUN_FINISHED,
    QLAB_EVENT_EXPERIMENT_FINISHED,
} qlab_event_kind;

typedef struct qlab_event {
    uint32_t kind;                /* qlab_event_kind */
    uint32_t dropped;             /* events this client lost before this one (ring was full) */
    uint64_t experiment_id, run_id;
    uint32_t runs_done, runs_total;
    uint32_t bits, act_bits;
    uint32_t scheme, granularity, calibration, group_size;
    int32_t  status;              /* run / experiment outcome: 0 or -errno */
    float    accuracy;            /* RUN_FINISHED; best accuracy for EXPERIMENT_FINISHED */
    uint64_t weight_bytes, total_bytes;
    uint64_t timestamp_ns;        /* CLOCK_REALTIME */
    char     label[QLAB_PROTO_NAME_MAX];/* e.g. "int4 sym channel minmax", NUL-terminated */
} qlab_event;

typedef struct qlab_msg_ping {
    uint32_t len;                 /* payload bytes (decoded from the header length) */
    uint8_t  bytes[QLAB_PING_MAX];
} qlab_msg_ping;

/* A decoded message: plain private memory, safe to use after validation. */
typedef struct qlab_msg {
    uint32_t type;                /* qlab_msg_type */
    uint32_t len;                 /* encoded length in bytes, header included */
    uint64_t id;                  /* request id chosen by the client, echoed in the reply */
    union {
        qlab_msg_submit    submit;
        qlab_msg_id        cancel, status;
        qlab_msg_list      list;
        qlab_msg_subscribe subscribe;
        qlab_msg_quant     quant;
        qlab_msg_reply     reply;
        qlab_event         event;
        qlab_msg_ping      ping;
    } u;
} qlab_msg;

/* Encodes m into buf (at least the returned length; QLAB_MSG_MAX always suffices). Returns
 * the encoded length, or -EINVAL for an unknown type or a PING longer than QLAB_PING_MAX. */
int qlab_proto_encode(const qlab_msg *m, void *buf, size_t size);

/* Copies the message at slot (len readable bytes, typically a whole ring slot) into out,
 * reading each byte once, then validates the copy: known type, exact payload length,
 * NUL-terminated strings, enumerations in range, and every (offset, length) inside a data
 * area of data_area_size bytes with overflow-safe arithmetic. Returns 0, -EBADMSG for a
 * malformed message, -EMSGSIZE for a bad length, -EPROTO for an unknown type. out is
 * undefined on failure. */
int qlab_proto_decode(const void *slot, size_t len, qlab_msg *out, size_t data_area_size);

/* Elements in one quant request's scale array: 1, rows, or rows * ceil(cols / group_size).
 * Valid only for a decoded (validated) request. */
uint64_t qlab_proto_quant_nscales(const qlab_msg_quant *q);

/* Convenience for building messages. */
void qlab_msg_init(qlab_msg *m, qlab_msg_type type);
