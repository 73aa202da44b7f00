/*
 * fuzz_npy.c - libFuzzer harness for the NumPy .npy reader (onr_parse_npy,
 * what onr_tensor_read_file uses for a file starting "\x93NUMPY"). A tensor
 * that parses is written back as a TensorProto and read again, which must
 * give the same type, shape and bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    onr_err e = {0};
    onr_tensor *t = NULL;
    if (onr_parse_npy(data, size, &t, &e) != ONR_OK) {
        if (t || !e.msg[0]) abort(); /* a failure leaves nothing and says why */
        return 0;
    }
    uint8_t *pb = NULL;
    size_t n = 0;
    onr_err e2 = {0};
    if (onr_save_tensor_pb(t, "x", &pb, &n, &e2) == ONR_OK) {
        onr_tensor *u = NULL;
        if (onr_load_tensor_pb(pb, n, &u, &e2) != ONR_OK) abort();
        if (u->dtype != t->dtype || u->rank != t->rank || u->numel != t->numel ||
            memcmp(u->dims, t->dims, (size_t)t->rank * sizeof *t->dims) != 0 ||
            (onr_tensor_nbytes(t) && memcmp(u->data, t->data, onr_tensor_nbytes(t)) != 0))
            abort(); /* the round trip changed the tensor */
        onr_tensor_free(u);
    }
    free(pb);
    onr_tensor_free(t);
    return 0;
}
