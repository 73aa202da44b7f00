/*
 * fuzz_pb.c - libFuzzer harness for the .pb value reader: the input is read
 * as a serialized TensorProto, SequenceProto and OptionalProto in turn
 * (onr_load_value_pb, what onr_tensor_read_pb / onr_value_read_file use).
 * A value that parses is written back (onr_save_value_pb) and read again,
 * which must give the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const onr_tensor *a, const onr_tensor *b)
{
    if (a->kind != b->kind || a->dtype != b->dtype || a->numel != b->numel) return 0;
    if (a->kind != ONR_VALUE_TENSOR) {
        for (int64_t i = 0; i < a->numel; i++)
            if (!same(onr_value_item(a, i), onr_value_item(b, i))) return 0;
        return 1;
    }
    if (a->rank != b->rank || memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims) != 0)
        return 0;
    if (a->dtype == ONR_STRING) {
        for (int64_t i = 0; i < a->numel; i++)
            if (strcmp(((char *const *)a->data)[i], ((char *const *)b->data)[i]) != 0) return 0;
        return 1;
    }
    size_t n = onr_tensor_nbytes(a);
    return n == 0 || memcmp(a->data, b->data, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int kind = ONR_VALUE_TENSOR; kind <= ONR_VALUE_OPTIONAL; kind++) {
        onr_err e = {0};
        onr_tensor *t = NULL;
        if (onr_load_value_pb(data, size, kind, &t, &e) != ONR_OK) {
            if (t || !e.msg[0]) abort(); /* a failure leaves nothing and says why */
            continue;
        }
        uint8_t *pb = NULL;
        size_t n = 0;
        if (onr_save_value_pb(t, "x", &pb, &n, &e) == ONR_OK) {
            onr_tensor *u = NULL;
            onr_err e2 = {0};
            if (onr_load_value_pb(pb, n, kind, &u, &e2) != ONR_OK) abort(); /* cannot reread */
            if (!same(t, u)) abort();                                       /* changed */
            onr_tensor_free(u);
        }
        free(pb);
        onr_tensor_free(t);
    }
    return 0;
}
