/*
 * example_embed.c - the smallest useful program that embeds onnx-run:
 * open a model, describe its inputs, feed deterministic data, read outputs.
 * Built and run by the tests against a bundled model:
 *
 *     example_embed MODEL.onnx [THREADS]
 */
#include <stdio.h>
#include <stdlib.h>

#include "onnxrun.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.onnx [THREADS]\n", argv[0]);
        return 2;
    }
    onr_options *opt = onr_options_new();
    onr_options_set_threads(opt, argc > 2 ? atoi(argv[2]) : 1);
    onr_session *s = NULL;
    onr_status st = onr_session_open(argv[1], opt, &s);
    onr_options_free(opt);
    if (st != ONR_OK) {
        fprintf(stderr, "open failed (%s): %s\n", onr_status_name(st), onr_session_errmsg(s));
        onr_session_free(s);
        return 1;
    }
    int n = onr_session_input_count(s);
    onr_tensor **in = calloc((size_t)n + 1, sizeof *in);
    for (int i = 0; i < n; i++) {
        onr_value_info vi;
        onr_session_input_info(s, i, &vi);
        int64_t dims[ONR_MAX_RANK];
        for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 1;
        in[i] = onr_tensor_new(vi.dtype, vi.rank, dims); /* zero-filled */
        if (!in[i]) {
            fprintf(stderr, "cannot make input '%s'\n", vi.name);
            return 1;
        }
        if (vi.dtype == ONR_FLOAT) {
            float *p = onr_tensor_data(in[i]);
            for (int64_t k = 0; k < onr_tensor_numel(in[i]); k++) p[k] = (float)(k % 7) * 0.1f;
        }
        printf("input %s: %s rank %d\n", vi.name, onr_dtype_name(vi.dtype), vi.rank);
    }
    st = onr_session_run(s, n, NULL, (const onr_tensor *const *)in);
    if (st != ONR_OK) {
        fprintf(stderr, "run failed (%s): %s\n", onr_status_name(st), onr_session_errmsg(s));
        return 1;
    }
    for (int i = 0; i < onr_session_output_count(s); i++) {
        onr_value_info vi;
        onr_session_output_info(s, i, &vi);
        /* take ownership of the first output; the rest stay with the session */
        onr_tensor *t = i == 0 ? onr_session_take_output(s, i) : NULL;
        const onr_tensor *o = t ? t : onr_session_output(s, i);
        printf("output %s: %s, %lld elements\n", vi.name, onr_dtype_name(onr_tensor_dtype(o)),
               (long long)onr_tensor_numel(o));
        onr_tensor_free(t);
    }
    for (int i = 0; i < n; i++) onr_tensor_free(in[i]);
    free(in);
    onr_session_free(s);
    return 0;
}
