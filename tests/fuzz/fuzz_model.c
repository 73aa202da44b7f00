/*
 * fuzz_model.c - libFuzzer harness for the whole path a model takes: the
 * input bytes are a serialized ModelProto, opened from memory
 * (onr_session_open_memory: parse, checks, shape inference, planning,
 * constant folding) and, when it opens, run once with generated inputs.
 *
 * Inputs are small so each execution is fast: a symbolic dim is bound to
 * 1, 2 or 3 (the same name always to the same value, so dims that must
 * agree do), an unnamed one to 1, a tensor of undeclared shape is a
 * 2-element vector, and the run is skipped when an input would exceed
 * MAX_NUMEL elements or all of them MAX_TOTAL. Sequences are empty and
 * optionals absent (as `onnx-run run` makes them). External data is
 * resolved against a directory that does not exist, so no file is read.
 *
 * A valid model may run for as long as it says (a Loop whose trip count M
 * is 2^34 runs 2^34 iterations, as the specification wants); the user's
 * way out is onr_session_cancel, and the harness takes it: a watchdog
 * thread cancels a run still going after RUN_LIMIT_MS, so such a model is
 * a cancelled run (an error with a message), not a libFuzzer timeout.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/ir.h"
#include "onnxrun.h"
#include "ops/ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NUMEL 4096
#define MAX_TOTAL 16384
#define RUN_LIMIT_MS 3000

/* The run in progress (NULL: none) and when it started, under wd_lock so
 * the session is never cancelled after it is freed. */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static onr_session *wd_session;
static struct timespec wd_start;

/* Not instrumented for coverage: its loop runs once per 50 ms, so the
 * counts it adds would depend on how long an input ran, and a fixed-seed
 * run would not take the same path twice. */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

NO_COVERAGE static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec nap = {0, 50 * 1000 * 1000}, now;
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        pthread_mutex_lock(&wd_lock);
        if (wd_session && (now.tv_sec - wd_start.tv_sec) * 1000 +
                                  (now.tv_nsec - wd_start.tv_nsec) / 1000000 > RUN_LIMIT_MS)
            onr_session_cancel(wd_session);
        pthread_mutex_unlock(&wd_lock);
    }
    return NULL;
}

static void watch(onr_session *s)
{
    pthread_mutex_lock(&wd_lock);
    wd_session = s;
    clock_gettime(CLOCK_MONOTONIC, &wd_start);
    pthread_mutex_unlock(&wd_lock);
}

static int64_t bind_dim(const char *name)
{
    if (!name || !*name) return 1;
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    return 1 + (int64_t)(h % 3);
}

static onr_tensor *make_input(const onr_value_info *vi, int64_t *total)
{
    if (vi->kind == ONR_VALUE_SEQUENCE) return onr_sequence_new(vi->dtype, 0, NULL);
    if (vi->kind == ONR_VALUE_OPTIONAL) return onr_optional_new(vi->dtype, NULL);
    int64_t dims[ONR_MAX_RANK];
    int rank = vi->rank;
    if (rank < 0) {
        rank = 1;
        dims[0] = 2;
    }
    if (rank > ONR_MAX_RANK) return NULL;
    int64_t numel = 1;
    for (int d = 0; d < vi->rank; d++) {
        dims[d] = vi->dims[d] >= 0 ? vi->dims[d] : bind_dim(vi->dim_names ? vi->dim_names[d] : NULL);
        if (dims[d] > MAX_NUMEL) return NULL;
        numel *= dims[d];
        if (numel > MAX_NUMEL) return NULL;
    }
    if ((*total += numel) > MAX_TOTAL) return NULL;
    onr_dtype dt = vi->dtype == ONR_UNDEFINED ? ONR_FLOAT : vi->dtype;
    onr_tensor *t = onr_tensor_new(dt, rank, dims);
    if (!t) return NULL;
    uint8_t *p = onr_tensor_data(t);
    uint32_t s = 12345;
    for (int64_t i = 0; i < onr_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        int k = (int)((s >> 8) % 3); /* 0, 1, 2: valid indices for most tables */
        double f = (s >> 8) * (1.0 / 16777216.0) * 4.0 - 2.0;
        switch (dt) {
        case ONR_FLOAT: ((float *)p)[i] = (float)f; break;
        case ONR_DOUBLE: ((double *)p)[i] = f; break;
        case ONR_FLOAT16: ((uint16_t *)p)[i] = k ? 0x3c00 : 0xbc00; break; /* +-1 */
        case ONR_BFLOAT16: ((uint16_t *)p)[i] = k ? 0x3f80 : 0xbf80; break;
        case ONR_INT64: case ONR_UINT64: ((int64_t *)p)[i] = k; break;
        case ONR_INT32: case ONR_UINT32: ((int32_t *)p)[i] = k; break;
        case ONR_INT16: case ONR_UINT16: ((int16_t *)p)[i] = (int16_t)k; break;
        case ONR_BOOL: p[i] = (uint8_t)(i & 1); break;
        case ONR_STRING: {
            char *v = malloc(2);
            if (v) {
                v[0] = (char)('a' + k);
                v[1] = 0;
                free(((char **)p)[i]);
                ((char **)p)[i] = v;
            }
            break;
        }
        default:
            if (onr_dtype_size(dt) == 1) p[i] = (uint8_t)k; /* int8, uint8, 8/4/2-bit */
            break;
        }
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static onr_options *opt;
    if (!opt) {
        /* the same hash key, and the same draws of unseeded random ops, in
         * every run: a fixed-seed run then takes the same path for longer
         * on every machine (tests/fuzz/smoke) */
        onr_hash_fix_key(0x6f6e6e782d72756eull, 0x66757a7a2d6b6579ull);
        onr_random_fix_unseeded(0x72616e646f6d6b31ull); /* unseeded random ops too */
        opt = onr_options_new();
        if (!opt) abort();
        onr_options_set_threads(opt, 1);
        onr_options_set_base_dir(opt, "/nonexistent/onnx-run-fuzz");
        /* a small memory budget: a valid model whose outputs are large (a
         * Resize to 1 GB) is refused before allocating, not a timeout. At
         * 256 MB a nearest Resize to 53 M floats took 5 s per run in this
         * instrumented build (twice per input with leak detection), past
         * libFuzzer's timeout when the machine was busy; 64 MB bounds a
         * kernel doing a few operations an element to about a second */
        onr_options_set_memory_limit(opt, 64 << 20);
        pthread_t t;
        if (pthread_create(&t, NULL, watchdog, NULL) != 0) abort();
        pthread_detach(t);
    }
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(data, size, opt, &s);
    if (st != ONR_OK) {
        if (s && !onr_session_errmsg(s)[0]) abort(); /* a failure says why */
        onr_session_free(s);
        return 0;
    }
    int n = onr_session_input_count(s);
    onr_tensor **in = calloc((size_t)n + 1, sizeof *in);
    int ok = in != NULL;
    int64_t total = 0;
    for (int i = 0; ok && i < n; i++) {
        onr_value_info vi;
        ok = onr_session_input_info(s, i, &vi) == ONR_OK && (in[i] = make_input(&vi, &total));
    }
    watch(s);
    onr_status rst = ok ? onr_session_run(s, n, NULL, (const onr_tensor *const *)in) : ONR_E_MODEL;
    watch(NULL);
    if (ok && rst == ONR_OK) {
        for (int i = 0; i < onr_session_output_count(s); i++) {
            const onr_tensor *y = onr_session_output(s, i);
            if (!y) abort(); /* a successful run gives every output */
        }
    } else if (ok && !onr_session_errmsg(s)[0]) {
        abort();
    }
    for (int i = 0; in && i < n; i++) onr_tensor_free(in[i]);
    free(in);
    onr_session_free(s);
    return 0;
}
