/* fuzz-decode.c — libFuzzer target for the daemon's message decoder.
 * Built with the other targets (suite fuzz); see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qlab-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static qlab_msg out;
    /* The data area size comes from the input too, so range checks see every edge. */
    uint64_t area = 1u << 20;
    if (size >= 8) {
        memcpy(&area, data, 8);
        data += 8;
        size -= 8;
    }
    if (qlab_proto_decode(data, size, &out, area) == 0) {
        /* a message that passed must re-encode to the same bytes */
        static unsigned char buf[QLAB_MSG_MAX];
        int n = qlab_proto_encode(&out, buf, sizeof(buf));
        if (n < 0 || (uint32_t)n != out.len || memcmp(buf, data, (size_t)n) != 0)
            __builtin_trap();
    }
    return 0;
}
