/*
 * test_allocfail.c - allocation failures (issue 16 item 6): the library's
 * calls to the allocator go through this test's wrappers (-Wl,--wrap, see
 * tests/CMakeLists.txt), which fail the Nth call for N = 1, 2, ... across
 * open (load + plan) and one run of each model below, until a pass makes
 * no Nth call. Every such open or run must fail with an error (never a
 * crash, never a leak under ASan), a failed run must leave no output to
 * read, and an open and run that report success must give exactly the
 * outputs of an undisturbed session. Models: string ops, sequences,
 * control flow, data-dependent shapes, a recurrent net.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "kutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

static int armed;        /* counting and failing */
static long calls;       /* allocator calls since armed */
static long fail_at;     /* the call that fails */
static long failed;      /* calls failed in this pass */

static int fail_now(void)
{
    if (!armed) return 0;
    if (++calls != fail_at) return 0;
    failed++;
    return 1;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return fail_now() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    return fail_now() ? 12 /* ENOMEM */ : __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
    return fail_now() ? NULL : __real_aligned_alloc(a, n);
}

static int same_value(const onr_tensor *a, const onr_tensor *b)
{
    if (!a || !b) return a == b;
    if (a->kind != b->kind || a->dtype != b->dtype || a->numel != b->numel) return 0;
    if (a->kind) {
        for (int64_t i = 0; i < a->numel; i++)
            if (!same_value(onr_value_item(a, i), onr_value_item(b, i))) return 0;
        return 1;
    }
    if (a->rank != b->rank || memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank))
        return 0;
    if (!a->numel) return 1;
    if (!a->data || !b->data) return 0;
    if (a->dtype == ONR_STRING) {
        for (int64_t i = 0; i < a->numel; i++) {
            const char *x = ((char *const *)a->data)[i], *y = ((char *const *)b->data)[i];
            if (!x || !y || strcmp(x, y)) return 0; /* a NULL string is never valid */
        }
        return 1;
    }
    return memcmp(a->data, b->data, onr_tensor_nbytes(a)) == 0;
}

typedef struct inputs {
    int n;
    onr_tensor *t[32];
} inputs;

/* The inputs of data set 0 of the case at dir, read by the model's kinds. */
static void read_inputs(const char *dir, onr_session *s, inputs *in)
{
    in->n = onr_session_input_count(s);
    assert_true(in->n <= 32);
    for (int i = 0; i < in->n; i++) {
        char path[700], msg[256];
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, i);
        onr_value_info info;
        assert_int_equal(onr_session_input_info(s, i, &info), ONR_OK);
        in->t[i] = NULL;
        onr_status st = onr_value_read_file(path, info.kind, &in->t[i], msg, sizeof msg);
        if (st) fail_msg("%s: %s", path, msg);
    }
}

/* Fail every allocator call in turn across open + run of the case at dir
 * (stride: test every stride-th call only, for larger models). */
static void sweep(const char *dir, long stride)
{
    char model[700];
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 1);
    onr_session *ref = NULL;
    onr_status st = onr_session_open(model, o, &ref);
    if (st) fail_msg("%s: %s", model, onr_session_errmsg(ref));
    inputs in;
    read_inputs(dir, ref, &in);
    int n_out = onr_session_output_count(ref);
    assert_int_equal(onr_session_run(ref, in.n, NULL, (const onr_tensor *const *)in.t), ONR_OK);
    long tried = 0, nomem = 0, other = 0, ok = 0;
    for (fail_at = 1;; fail_at += stride) {
        onr_session *s = NULL;
        calls = failed = 0;
        armed = 1;
        st = onr_session_open(model, o, &s);
        onr_status rs = st ? st : onr_session_run(s, in.n, NULL, (const onr_tensor *const *)in.t);
        armed = 0;
        tried++;
        if (!failed) { /* no call left to fail: the sweep is complete */
            assert_int_equal(st, ONR_OK);
            assert_int_equal(rs, ONR_OK);
            onr_session_free(s);
            break;
        }
        if (st) { /* the message can be read (no session only when none could be made) */
            if (!s) assert_int_equal(st, ONR_E_NOMEM);
            assert_true(*onr_session_errmsg(s));
        }
        if (rs == ONR_E_NOMEM) {
            nomem++;
        } else if (rs) {
            other++;
            print_message("%s: call %ld failed -> %s: %s\n", dir, fail_at, onr_status_name(rs),
                          onr_session_errmsg(s));
        }
        if (st) rs = st;
        if (!st && rs) /* a failed run leaves nothing that looks like an output */
            for (int i = 0; i < n_out; i++) assert_null(onr_session_output(s, i));
        if (!rs) { /* a success despite the failure must be a true one */
            ok++;
            for (int i = 0; i < n_out; i++)
                if (!same_value(onr_session_output(s, i), onr_session_output(ref, i)))
                    fail_msg("%s: call %ld failed, the run said OK, output %d differs", dir,
                             fail_at, i);
        }
        onr_session_free(s);
    }
    print_message("%s: %ld failure points (stride %ld): %ld out of memory, %ld other errors, %ld "
                  "recovered\n",
                  strrchr(dir, '/') + 1, tried - 1, stride, nomem, other, ok);
    assert_int_equal(other, 0);
    for (int i = 0; i < in.n; i++) onr_tensor_free(in.t[i]);
    onr_session_free(ref);
    onr_options_free(o);
}

static char *case_path(const char *base, const char *name)
{
    static char buf[600];
    if (base[0] == '$') { /* under the source tree */
        const char *src = getenv("ONR_SOURCE_DIR");
        snprintf(buf, sizeof buf, "%s/%s/%s", src ? src : ".", base + 1, name);
    } else {
        snprintf(buf, sizeof buf, "%s/%s", base, name);
    }
    DIR *d = opendir(buf);
    if (!d) return NULL;
    closedir(d);
    return buf;
}

#define NODE "/usr/share/libonnx-testdata/data/node"
#define SPEC "$testdata/spec"

static void run_cases(const char *const *list, long stride)
{
    int any = 0;
    for (int i = 0; list[i]; i += 2) {
        char *dir = case_path(list[i], list[i + 1]);
        if (!dir) continue;
        any = 1;
        char copy[600];
        snprintf(copy, sizeof copy, "%s", dir);
        sweep(copy, stride);
    }
    if (!any) skip();
}

static void strings(void **state)
{
    (void)state;
    static const char *const list[] = {
        NODE, "test_cast_FLOAT_to_STRING", NODE, "test_cast_STRING_to_FLOAT",
        NODE, "test_strnormalizer_export_monday_casesensintive_upper",
        NODE, "test_strnormalizer_export_monday_empty_output",
        SPEC, "string_concat_broadcast", SPEC, "string_split_basic",
        SPEC, "regex_full_match_basic", SPEC, "tfidf_strings_uni_bigrams",
        NODE, "test_tfidfvectorizer_tf_uniandbigrams_skip5", NULL};
    run_cases(list, 1);
}

static void sequences(void **state)
{
    (void)state;
    static const char *const list[] = {
        NODE, "test_sequence_insert_at_back", NODE, "test_sequence_map_add_2_sequences",
        NODE, "test_sequence_map_extract_shapes", NODE, "test_optional_get_element_sequence",
        NODE, "test_identity_sequence", SPEC, "sequence18_split_squeeze_stack_int32",
        SPEC, "sequence21_split_list_int64", NULL};
    run_cases(list, 1);
}

static void control_and_dynamic(void **state)
{
    (void)state;
    static const char *const list[] = {
        NODE, "test_loop13_seq", NODE, "test_if_seq", NODE, "test_loop11",
        NODE, "test_scan9_sum", NODE, "test_nonzero_example",
        NODE, "test_unique_sorted_with_axis", NODE, "test_reversesequence_batch", NULL};
    run_cases(list, 1);
}

static void models(void **state)
{
    (void)state;
    static const char *const list[] = {"$testdata", "tiny_data_dependent_if",
                                       "$testdata", "tiny_greedy_decoder_loop",
                                       "$testdata", "tiny_gru", NULL};
    run_cases(list, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings),
        cmocka_unit_test(sequences),
        cmocka_unit_test(control_and_dynamic),
        cmocka_unit_test(models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
