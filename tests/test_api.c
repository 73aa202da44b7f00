/*
 * test_api.c - the public C API (include/onnxrun.h) and static shape
 * inference: opening from a path and from memory, model facts, running with
 * named and positional inputs, every way an input can be wrong (each with its
 * status code and a message naming the input), symbolic dims shared between
 * inputs, re-running with other shapes, output ownership, thread counts,
 * shapes known after planning and load-time folding, and NULL / out-of-range
 * arguments. Models are built byte by byte with pbw.h.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7 };

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------- */

static void assert_has(const char *msg, const char *needle)
{
    if (!msg || !strstr(msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg ? msg : "(null)", needle);
}

static char *tmp_path(const char *name)
{
    static char path[2][600];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void write_file(const char *name, const void *b, size_t n)
{
    FILE *f = fopen(tmp_path(name), "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Open from memory with `threads` (0: default); fails the test on error. */
static onr_session *open_ok(const pbw *m, int threads)
{
    onr_options *o = onr_options_new();
    assert_non_null(o);
    onr_options_set_threads(o, threads);
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, o, &s);
    onr_options_free(o);
    if (st) fail_msg("open failed (%s): %s", onr_status_name(st), onr_session_errmsg(s));
    assert_non_null(s);
    assert_string_equal(onr_session_errmsg(s), "");
    return s;
}

static void init_f32(pbw *g, const char *name, int rank, const int64_t *dims, const float *v,
                     size_t n)
{
    pbw_init_f32(g, name, rank, dims, v, n);
}

static void node(pbw *g, const char *op, const char *name, const char *const *ins,
                 const char *const *outs, pbw *attrs)
{
    pbw_node(g, op, name, ins, outs, attrs);
}

static void check_dims(const onr_tensor *t, int rank, const int64_t *dims)
{
    assert_non_null(t);
    if (onr_tensor_rank(t) != rank) fail_msg("rank %d, expected %d", onr_tensor_rank(t), rank);
    for (int i = 0; i < rank; i++)
        if (onr_tensor_dims(t)[i] != dims[i])
            fail_msg("dim %d is %lld, expected %lld", i, (long long)onr_tensor_dims(t)[i],
                     (long long)dims[i]);
}

static void check_f32(const onr_tensor *t, const float *expect, int64_t n)
{
    assert_int_equal(onr_tensor_dtype(t), ONR_FLOAT);
    assert_int_equal(onr_tensor_numel(t), n);
    const float *d = onr_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        if (d[i] != expect[i]) fail_msg("element %lld is %g, expected %g", (long long)i, d[i], expect[i]);
}

/* ---- models -------------------------------------------------------------- */

/* Dense layer over a symbolic batch:
 *   x float [N,4] -> MatMul W[4,3] -> Add b[3] -> Relu -> y float [N,3]
 *                 -> Reshape [-1]                     -> f float [4N]
 * W[k][j] = k - j, b = {0.5, -1, 2}: small integers, results exact. */
static float W43[12], B3[3] = {0.5f, -1.0f, 2.0f};

static pbw dense_model(void)
{
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++) W43[k * 3 + j] = (float)(k - j);
    pbw g = {0};
    int64_t dw[] = {4, 3}, db[] = {3}, dx[] = {-1, 4}, dy[] = {-1, 3}, dflat[] = {1};
    int64_t flat[] = {-1};
    pbw_str(&g, 2, "dense");
    init_f32(&g, "W", 2, dw, W43, 12);
    init_f32(&g, "b", 1, db, B3, 3);
    pbw_init_i64(&g, "flat_shape", 1, dflat, flat, 1);
    pbw_value_info_named(&g, 11, "x", F32, 2, dx, (const char *[]){"N", NULL});
    node(&g, "MatMul", "mm", (const char *[]){"x", "W", NULL}, (const char *[]){"h", NULL}, NULL);
    node(&g, "Add", "bias", (const char *[]){"h", "b", NULL}, (const char *[]){"hb", NULL}, NULL);
    node(&g, "Relu", "act", (const char *[]){"hb", NULL}, (const char *[]){"y", NULL}, NULL);
    node(&g, "Reshape", "flatten", (const char *[]){"x", "flat_shape", NULL},
         (const char *[]){"f", NULL}, NULL);
    pbw_value_info_named(&g, 12, "y", F32, 2, dy, (const char *[]){"N", NULL});
    pbw_value_info_named(&g, 12, "f", F32, 1, (const int64_t[]){-1}, (const char *[]){"N4", NULL});
    return pbw_model(&g, 8, 13);
}

static void dense_ref(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < 3; j++) {
            float acc = 0;
            for (int k = 0; k < 4; k++) acc += x[i * 4 + k] * W43[k * 3 + j];
            acc += B3[j];
            y[i * 3 + j] = acc > 0 ? acc : 0;
        }
}

static float *iota(int64_t n, float start, float step)
{
    float *v = calloc((size_t)n + 1, sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = start + step * (float)i;
    return v;
}

/* Run the dense model with batch n and check both outputs. */
static void run_dense(onr_session *s, int64_t n, float start)
{
    float *x = iota(n * 4, start, 0.5f);
    int64_t dx[] = {n, 4};
    onr_tensor *t = onr_tensor_wrap(ONR_FLOAT, 2, dx, x);
    assert_non_null(t);
    onr_status st = onr_session_run(s, 1, NULL, (const onr_tensor *const *)&t);
    if (st) fail_msg("run (N=%lld) failed: %s", (long long)n, onr_session_errmsg(s));
    float *ref = calloc((size_t)n * 3 + 1, sizeof *ref);
    dense_ref(x, n, ref);
    const onr_tensor *y = onr_session_output(s, 0);
    check_dims(y, 2, (const int64_t[]){n, 3});
    check_f32(y, ref, n * 3);
    const onr_tensor *f = onr_session_output(s, 1);
    check_dims(f, 1, (const int64_t[]){n * 4});
    check_f32(f, x, n * 4);
    free(ref);
    onr_tensor_free(t);
    free(x);
}

/* Two inputs: x float [2,4] and k int64 [3]; y = Relu(x + w), z = k + k. */
static pbw two_input_model(void)
{
    pbw g = {0};
    int64_t dx[] = {2, 4}, dw[] = {4}, dk[] = {3};
    float w[] = {1, -2, 3, -4};
    pbw_str(&g, 2, "two");
    init_f32(&g, "w", 1, dw, w, 4);
    pbw_value_info(&g, 11, "x", F32, 2, dx);
    pbw_value_info(&g, 11, "k", I64, 1, dk);
    node(&g, "Add", "addw", (const char *[]){"x", "w", NULL}, (const char *[]){"s", NULL}, NULL);
    node(&g, "Relu", "relu", (const char *[]){"s", NULL}, (const char *[]){"y", NULL}, NULL);
    node(&g, "Add", "addk", (const char *[]){"k", "k", NULL}, (const char *[]){"z", NULL}, NULL);
    pbw_value_info(&g, 12, "y", F32, 2, dx);
    pbw_value_info(&g, 12, "z", I64, 1, dk);
    return pbw_model(&g, 8, 13);
}

/* ---- open, facts ----------------------------------------------------------- */

static void check_dense_facts(onr_session *s)
{
    assert_int_equal(onr_session_input_count(s), 1); /* initializers are not inputs */
    assert_int_equal(onr_session_output_count(s), 2);
    onr_value_info vi;
    assert_int_equal(onr_session_input_info(s, 0, &vi), ONR_OK);
    assert_string_equal(vi.name, "x");
    assert_int_equal(vi.dtype, ONR_FLOAT);
    assert_int_equal(vi.rank, 2);
    assert_int_equal(vi.dims[0], -1);
    assert_non_null(vi.dim_names);
    assert_non_null(vi.dim_names[0]);
    assert_string_equal(vi.dim_names[0], "N");
    assert_int_equal(vi.dims[1], 4);
    assert_null(vi.dim_names[1]);
    assert_int_equal(onr_session_output_info(s, 0, &vi), ONR_OK);
    assert_string_equal(vi.name, "y");
    assert_int_equal(vi.dtype, ONR_FLOAT);
    assert_int_equal(vi.rank, 2);
    assert_int_equal(vi.dims[0], -1);
    assert_string_equal(vi.dim_names[0], "N");
    assert_int_equal(vi.dims[1], 3);
    assert_int_equal(onr_session_output_info(s, 1, &vi), ONR_OK);
    assert_string_equal(vi.name, "f");
    assert_int_equal(vi.rank, 1);
    assert_int_equal(vi.dims[0], -1);
    /* declared "N4": symbolic shape inference derives 4*N, but a graph
     * output keeps the name its declaration gives */
    assert_string_equal(vi.dim_names[0], "N4");
    assert_int_equal(onr_session_ir_version(s), 8);
    assert_string_equal(onr_session_producer(s), "onnx-run-tests");
    assert_int_equal(onr_session_node_count(s), 4);
    const char *dom = NULL;
    assert_string_equal(onr_session_node_op(s, 0, &dom), "MatMul");
    assert_string_equal(dom, "");
    assert_string_equal(onr_session_node_op(s, 3, NULL), "Reshape");
    /* nothing folds (N is unknown); MatMul + Add + Relu fuse into one step */
    assert_int_equal(onr_session_step_count(s), 2);
}

static void test_open_path_and_memory(void **state)
{
    (void)state;
    pbw m = dense_model();
    /* from memory */
    onr_session *s = open_ok(&m, 1);
    check_dense_facts(s);
    run_dense(s, 3, -2.0f);
    onr_session_free(s);
    /* from a path */
    write_file("dense.onnx", m.b, m.n);
    s = NULL;
    onr_status st = onr_session_open(tmp_path("dense.onnx"), NULL, &s);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    check_dense_facts(s);
    run_dense(s, 2, -1.0f);
    onr_session_free(s);
    /* the buffer is copied: changing it after opening changes nothing */
    pbw m2 = {0};
    pbw_raw(&m2, m.b, m.n);
    s = open_ok(&m2, 1);
    memset(m2.b, 0, m2.n);
    free(m2.b);
    run_dense(s, 2, 0.0f);
    onr_session_free(s);
    free(m.b);
    /* errors opening: a missing path, a directory, garbage bytes */
    s = NULL;
    assert_int_equal(onr_session_open(tmp_path("nothere.onnx"), NULL, &s), ONR_E_IO);
    assert_has(onr_session_errmsg(s), "nothere.onnx");
    assert_int_equal(onr_session_input_count(s), 0);
    onr_session_free(s);
    s = NULL;
    assert_int_equal(onr_session_open(tmpdir, NULL, &s), ONR_E_IO);
    assert_has(onr_session_errmsg(s), "not a regular file");
    onr_session_free(s);
    s = NULL;
    assert_int_equal(onr_session_open_memory("\xff\xff\xff", 3, NULL, &s), ONR_E_MODEL);
    assert_has(onr_session_errmsg(s), "not a valid ONNX model");
    onr_session_free(s);
}

/* x float [1,4] + w (external, float [4] at offset 8 of w.bin) -> y */
static pbw external_model(void)
{
    pbw g = {0}, t = {0}, kv = {0};
    int64_t dx[] = {1, 4}, dw[] = {4};
    pbw_tensor_head(&t, "w_ext", F32, 1, dw);
    pbw_str(&kv, 1, "location");
    pbw_str(&kv, 2, "w.bin");
    pbw_msg(&t, 13, &kv);
    pbw_str(&kv, 1, "offset");
    pbw_str(&kv, 2, "8");
    pbw_msg(&t, 13, &kv);
    pbw_str(&kv, 1, "length");
    pbw_str(&kv, 2, "16");
    pbw_msg(&t, 13, &kv);
    pbw_int(&t, 14, 1);
    pbw_msg(&g, 5, &t);
    pbw_value_info(&g, 11, "x", F32, 2, dx);
    node(&g, "Add", "a", (const char *[]){"x", "w_ext", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw_value_info(&g, 12, "y", F32, 2, dx);
    return pbw_model(&g, 8, 13);
}

static void run_external(onr_session *s)
{
    float xv[] = {1, 1, 1, 1};
    int64_t d[] = {1, 4};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, d, xv);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
    const float expect[] = {11, 21, 31, 41};
    check_f32(onr_session_output(s, 0), expect, 4);
    onr_tensor_free(x);
}

static void test_open_external_base_dir(void **state)
{
    (void)state;
    float file[6] = {-1, -1, 10, 20, 30, 40}; /* w at byte 8 */
    write_file("w.bin", file, sizeof file);
    pbw m = external_model();
    write_file("ext.onnx", m.b, m.n);
    /* from a path: the model's directory */
    onr_session *s = NULL;
    assert_int_equal(onr_session_open(tmp_path("ext.onnx"), NULL, &s), ONR_OK);
    run_external(s);
    onr_session_free(s);
    /* a relative path without a directory part: the current directory */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    s = NULL;
    onr_status rst = onr_session_open("ext.onnx", NULL, &s);
    assert_int_equal(chdir(cwd), 0);
    if (rst) fail_msg("relative path: %s", onr_session_errmsg(s));
    run_external(s);
    onr_session_free(s);
    /* from memory without a base directory: refused, naming the tensor */
    s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_E_MODEL);
    assert_has(onr_session_errmsg(s), "'w_ext'");
    assert_has(onr_session_errmsg(s), "base directory");
    onr_session_free(s);
    /* from memory with one */
    onr_options *o = onr_options_new();
    onr_options_set_base_dir(o, tmpdir);
    s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &s), ONR_OK);
    run_external(s);
    onr_session_free(s);
    /* a wrong base directory: the file is not found there */
    onr_options_set_base_dir(o, "/nonexistent-dir-onr");
    s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &s), ONR_E_IO);
    assert_has(onr_session_errmsg(s), "'w_ext'");
    assert_has(onr_session_errmsg(s), "w.bin");
    onr_session_free(s);
    /* reset to none: refused again */
    onr_options_set_base_dir(o, NULL);
    s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &s), ONR_E_MODEL);
    onr_session_free(s);
    onr_options_free(o);
    free(m.b);
}

/* ---- running: named, positional, and wrong inputs ---------------------------- */

static void check_two_outputs(onr_session *s, const float *xv, const int64_t *kv)
{
    const float w[] = {1, -2, 3, -4};
    float ey[8];
    for (int i = 0; i < 8; i++) {
        float v = xv[i] + w[i % 4];
        ey[i] = v > 0 ? v : 0;
    }
    const onr_tensor *y = onr_session_output(s, 0), *z = onr_session_output(s, 1);
    check_dims(y, 2, (const int64_t[]){2, 4});
    check_f32(y, ey, 8);
    check_dims(z, 1, (const int64_t[]){3});
    assert_int_equal(onr_tensor_dtype(z), ONR_INT64);
    const int64_t *zd = onr_tensor_data(z);
    for (int i = 0; i < 3; i++) assert_int_equal(zd[i], 2 * kv[i]);
}

static void test_run_named_and_positional(void **state)
{
    (void)state;
    pbw m = two_input_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    assert_int_equal(onr_session_input_count(s), 2);
    float xv[] = {0, 1, 2, 3, -4, 5, -6, 7};
    int64_t kv[] = {5, -6, 1ll << 40};
    int64_t dx[] = {2, 4}, dk[] = {3};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, dx, xv), *k = onr_tensor_wrap(ONR_INT64, 1, dk, kv);
    /* positional, in the model's order */
    const onr_tensor *pos[] = {x, k};
    assert_int_equal(onr_session_run(s, 2, NULL, pos), ONR_OK);
    assert_string_equal(onr_session_errmsg(s), "");
    check_two_outputs(s, xv, kv);
    /* named, in the other order */
    const char *names[] = {"k", "x"};
    const onr_tensor *byname[] = {k, x};
    float xv2[] = {9, 9, 9, 9, -9, -9, -9, -9};
    memcpy(xv, xv2, sizeof xv);
    assert_int_equal(onr_session_run(s, 2, names, byname), ONR_OK);
    check_two_outputs(s, xv2, kv);
    /* an owned tensor from onr_tensor_new works as well */
    onr_tensor *xn = onr_tensor_new(ONR_FLOAT, 2, dx);
    assert_non_null(xn);
    memcpy(onr_tensor_data(xn), xv2, sizeof xv2);
    const onr_tensor *pos2[] = {xn, k};
    assert_int_equal(onr_session_run(s, 2, NULL, pos2), ONR_OK);
    check_two_outputs(s, xv2, kv);
    onr_tensor_free(xn);
    onr_tensor_free(x);
    onr_tensor_free(k);
    onr_session_free(s);
}

/* Run expecting `code` with a message containing every needle; then a good
 * run on the same session still works. */
static void expect_run(onr_session *s, int n, const char *const *names,
                       const onr_tensor *const *in, onr_status code, const char *n1,
                       const char *n2)
{
    onr_status st = onr_session_run(s, n, names, in);
    const char *msg = onr_session_errmsg(s);
    if (st != code)
        fail_msg("expected %s, got %s: %s", onr_status_name(code), onr_status_name(st), msg);
    assert_true(strlen(msg) > 0);
    if (n1) assert_has(msg, n1);
    if (n2) assert_has(msg, n2);
    assert_null(onr_session_output(s, 0)); /* no outputs from a failed run */
}

static void test_run_input_errors(void **state)
{
    (void)state;
    pbw m = two_input_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    float xv[8] = {0}, x5[10] = {0}, x8[8] = {0};
    int64_t kv[3] = {1, 2, 3}, xi[8] = {0};
    int64_t dx[] = {2, 4}, dk[] = {3}, d25[] = {2, 5}, d8[] = {8}, d124[] = {1, 2, 4};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, dx, xv), *k = onr_tensor_wrap(ONR_INT64, 1, dk, kv);
    onr_tensor *x_int = onr_tensor_wrap(ONR_INT64, 2, dx, xi);
    onr_tensor *x_dim = onr_tensor_wrap(ONR_FLOAT, 2, d25, x5);
    onr_tensor *x_r1 = onr_tensor_wrap(ONR_FLOAT, 1, d8, x8);
    onr_tensor *x_r3 = onr_tensor_wrap(ONR_FLOAT, 3, d124, x8);
    const char *both[] = {"x", "k"};

    /* wrong dtype */
    expect_run(s, 2, both, (const onr_tensor *const[]){x_int, k}, ONR_E_INPUT, "input 'x'",
               "expected float32, got int64");
    /* wrong dtype on the second, positionally */
    expect_run(s, 2, NULL, (const onr_tensor *const[]){x, x}, ONR_E_INPUT, "input 'k'",
               "expected int64, got float32");
    /* wrong rank, lower and higher */
    expect_run(s, 2, both, (const onr_tensor *const[]){x_r1, k}, ONR_E_INPUT, "input 'x'",
               "expected rank 2");
    expect_run(s, 2, both, (const onr_tensor *const[]){x_r3, k}, ONR_E_INPUT, "input 'x'",
               "got rank 3");
    /* wrong dim */
    expect_run(s, 2, both, (const onr_tensor *const[]){x_dim, k}, ONR_E_INPUT, "input 'x'",
               "dim 1 must be 4");
    /* an unknown name */
    expect_run(s, 2, (const char *[]){"x", "kk"}, (const onr_tensor *const[]){x, k}, ONR_E_INPUT,
               "'kk'", "no input named");
    /* the same name twice (and so k missing) */
    expect_run(s, 2, (const char *[]){"x", "x"}, (const onr_tensor *const[]){x, x}, ONR_E_INPUT,
               "input 'x'", "twice");
    /* too many */
    expect_run(s, 3, NULL, (const onr_tensor *const[]){x, k, k}, ONR_E_INPUT, "2 inputs", "3 given");
    /* a NULL tensor, a NULL name */
    expect_run(s, 2, NULL, (const onr_tensor *const[]){x, NULL}, ONR_E_ARG, "input 1", NULL);
    expect_run(s, 2, (const char *[]){"x", NULL}, (const onr_tensor *const[]){x, k}, ONR_E_ARG,
               "input 1", NULL);
    /* after all that, a good run */
    assert_int_equal(onr_session_run(s, 2, both, (const onr_tensor *const[]){x, k}), ONR_OK);
    assert_string_equal(onr_session_errmsg(s), "");
    assert_non_null(onr_session_output(s, 0));

    onr_tensor_free(x);
    onr_tensor_free(k);
    onr_tensor_free(x_int);
    onr_tensor_free(x_dim);
    onr_tensor_free(x_r1);
    onr_tensor_free(x_r3);
    onr_session_free(s);
}

/* A missing input: the message must say which one is missing. */
static void test_run_missing_input(void **state)
{
    (void)state;
    pbw m = two_input_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    float xv[8] = {0};
    int64_t kv[3] = {1, 2, 3};
    int64_t dx[] = {2, 4}, dk[] = {3};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, dx, xv), *k = onr_tensor_wrap(ONR_INT64, 1, dk, kv);
    static const char *const what[] = {"by name, k missing", "by name, x missing",
                                       "positionally, k missing", "none given"};
    static const char *const want[] = {"'k'", "'x'", "'k'", "'x'"};
    onr_status st[4];
    char msg[4][1024];
    st[0] = onr_session_run(s, 1, (const char *[]){"x"}, (const onr_tensor *const[]){x});
    snprintf(msg[0], sizeof msg[0], "%s", onr_session_errmsg(s));
    st[1] = onr_session_run(s, 1, (const char *[]){"k"}, (const onr_tensor *const[]){k});
    snprintf(msg[1], sizeof msg[1], "%s", onr_session_errmsg(s));
    st[2] = onr_session_run(s, 1, NULL, (const onr_tensor *const[]){x});
    snprintf(msg[2], sizeof msg[2], "%s", onr_session_errmsg(s));
    st[3] = onr_session_run(s, 0, NULL, NULL);
    snprintf(msg[3], sizeof msg[3], "%s", onr_session_errmsg(s));
    onr_tensor_free(x);
    onr_tensor_free(k);
    onr_session_free(s);
    for (int i = 0; i < 4; i++) {
        if (st[i] != ONR_E_INPUT)
            fail_msg("%s: expected %s, got %s", what[i], onr_status_name(ONR_E_INPUT),
                     onr_status_name(st[i]));
        if (!strstr(msg[i], want[i]))
            fail_msg("%s: message \"%s\" does not name the missing input %s", what[i], msg[i],
                     want[i]);
    }
}

/* Graph outputs that are a graph input or an initializer, next to a computed one;
 * each run gives that run's values, not a stale copy. */
static void test_outputs_passthrough(void **state)
{
    (void)state;
    pbw g = {0};
    int64_t d[] = {3};
    float w[] = {7, 8, 9};
    init_f32(&g, "w", 1, d, w, 3);
    pbw_value_info(&g, 11, "x", F32, 1, d);
    node(&g, "Add", "add", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw_value_info(&g, 12, "x", F32, 1, d);
    pbw_value_info(&g, 12, "w", F32, 1, d);
    pbw_value_info(&g, 12, "y", F32, 1, d);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    assert_int_equal(onr_session_output_count(s), 3);
    for (int round = 0; round < 3; round++) {
        float xv[3] = {(float)round, 10.0f * (float)round, -1.0f};
        onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 1, d, xv);
        assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
        onr_tensor_free(x);
        xv[0] = 1234; /* the caller's buffer changes after the run */
        const float ex[3] = {(float)round, 10.0f * (float)round, -1.0f};
        const float ey[3] = {ex[0] + 7, ex[1] + 8, ex[2] + 9};
        check_f32(onr_session_output(s, 0), ex, 3);
        check_f32(onr_session_output(s, 1), w, 3);
        check_f32(onr_session_output(s, 2), ey, 3);
        assert_ptr_not_equal(onr_tensor_data(onr_session_output(s, 0)), xv);
    }
    onr_session_free(s);
}

/* ---- symbolic dims -------------------------------------------------------------- */

/* a float [N,3] and b float [N,3] (both 'N'), c float ['M'] -> y = a + b, z = Relu(c) */
static pbw sym_model(void)
{
    pbw g = {0};
    int64_t d[] = {-1, 3}, dc[] = {-1};
    const char *nn[] = {"N", NULL}, *nm[] = {"M"};
    pbw_value_info_named(&g, 11, "a", F32, 2, d, nn);
    pbw_value_info_named(&g, 11, "b", F32, 2, d, nn);
    pbw_value_info_named(&g, 11, "c", F32, 1, dc, nm);
    node(&g, "Add", "add", (const char *[]){"a", "b", NULL}, (const char *[]){"y", NULL}, NULL);
    node(&g, "Relu", "relu", (const char *[]){"c", NULL}, (const char *[]){"z", NULL}, NULL);
    pbw_value_info_named(&g, 12, "y", F32, 2, d, nn);
    pbw_value_info_named(&g, 12, "z", F32, 1, dc, nm);
    return pbw_model(&g, 8, 13);
}

static void test_symbolic_dim_shared(void **state)
{
    (void)state;
    pbw m = sym_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    onr_value_info vi;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(onr_session_input_info(s, i, &vi), ONR_OK);
        assert_int_equal(vi.dims[0], -1);
        assert_string_equal(vi.dim_names[0], "N");
    }
    float av[9], bv[9], cv[5] = {-1, 2, -3, 4, -5};
    for (int i = 0; i < 9; i++) av[i] = (float)i, bv[i] = (float)(10 * i);
    int64_t d2[] = {2, 3}, d3[] = {3, 3}, d1[] = {1, 3}, dc5[] = {5}, dc2[] = {2};
    onr_tensor *a2 = onr_tensor_wrap(ONR_FLOAT, 2, d2, av), *b2 = onr_tensor_wrap(ONR_FLOAT, 2, d2, bv);
    onr_tensor *a3 = onr_tensor_wrap(ONR_FLOAT, 2, d3, av), *b3 = onr_tensor_wrap(ONR_FLOAT, 2, d3, bv);
    onr_tensor *b1 = onr_tensor_wrap(ONR_FLOAT, 2, d1, bv);
    onr_tensor *c5 = onr_tensor_wrap(ONR_FLOAT, 1, dc5, cv), *c2 = onr_tensor_wrap(ONR_FLOAT, 1, dc2, cv);
    /* consistent: N = 2 (M independent: 5) */
    assert_int_equal(onr_session_run(s, 3, NULL, (const onr_tensor *const[]){a2, b2, c5}), ONR_OK);
    float ey[9];
    for (int i = 0; i < 9; i++) ey[i] = av[i] + bv[i];
    check_dims(onr_session_output(s, 0), 2, d2);
    check_f32(onr_session_output(s, 0), ey, 6);
    const float ez[] = {0, 2, 0, 4, 0};
    check_dims(onr_session_output(s, 1), 1, dc5);
    check_f32(onr_session_output(s, 1), ez, 5);
    /* consistent: N = 3, M = 2 */
    assert_int_equal(onr_session_run(s, 3, NULL, (const onr_tensor *const[]){a3, b3, c2}), ONR_OK);
    check_dims(onr_session_output(s, 0), 2, d3);
    check_f32(onr_session_output(s, 0), ey, 9);
    check_dims(onr_session_output(s, 1), 1, dc2);
    /* inconsistent: a binds N = 2, b says 3 */
    expect_run(s, 3, NULL, (const onr_tensor *const[]){a2, b3, c5}, ONR_E_INPUT, "'N'", "input 'b'");
    /* the other way round, by name */
    expect_run(s, 3, (const char *[]){"b", "a", "c"}, (const onr_tensor *const[]){b3, a2, c5},
               ONR_E_INPUT, "'N'", "input 'a'");
    /* N = 1 against N = 2 would broadcast, but the names must still agree */
    expect_run(s, 3, NULL, (const onr_tensor *const[]){a2, b1, c5}, ONR_E_INPUT, "'N'", NULL);
    /* and consistent again */
    assert_int_equal(onr_session_run(s, 3, NULL, (const onr_tensor *const[]){a2, b2, c5}), ONR_OK);
    check_dims(onr_session_output(s, 0), 2, d2);
    check_f32(onr_session_output(s, 0), ey, 6);
    onr_tensor *all[] = {a2, b2, a3, b3, b1, c5, c2};
    for (int i = 0; i < 7; i++) onr_tensor_free(all[i]);
    onr_session_free(s);
}

/* ---- re-running with other shapes ------------------------------------------------ */

static void test_rerun_other_shapes(void **state)
{
    (void)state;
    pbw m = dense_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    run_dense(s, 2, -3.0f);
    run_dense(s, 7, -5.0f); /* bigger: re-prepared, outputs re-allocated */
    run_dense(s, 2, 1.0f);  /* back to the first shape */
    run_dense(s, 1, -0.5f);
    run_dense(s, 0, 0.0f);  /* an empty batch */
    run_dense(s, 7, 2.0f);
    onr_session_free(s);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape over x [N?,3,4] -> y [N,12]. */
static pbw shape_chain_model(int64_t n0)
{
    pbw g = {0}, a = {0};
    int64_t dx[] = {n0, 3, 4}, d1[] = {1};
    int64_t zero = 0, minus1 = -1;
    pbw_init_i64(&g, "idx0", 0, NULL, &zero, 1);
    pbw_init_i64(&g, "axes0", 1, d1, &zero, 1);
    pbw_init_i64(&g, "rest", 1, d1, &minus1, 1);
    pbw_value_info_named(&g, 11, "x", F32, 3, dx, (const char *[]){"N", NULL, NULL});
    node(&g, "Shape", "shape", (const char *[]){"x", NULL}, (const char *[]){"sh", NULL}, NULL);
    node(&g, "Gather", "gather", (const char *[]){"sh", "idx0", NULL}, (const char *[]){"n", NULL},
         NULL);
    node(&g, "Unsqueeze", "unsq", (const char *[]){"n", "axes0", NULL}, (const char *[]){"n1", NULL},
         NULL);
    pbw_attr_int(&a, "axis", 0);
    node(&g, "Concat", "concat", (const char *[]){"n1", "rest", NULL},
         (const char *[]){"newshape", NULL}, &a);
    node(&g, "Reshape", "reshape", (const char *[]){"x", "newshape", NULL},
         (const char *[]){"y", NULL}, NULL);
    pbw_value_info_named(&g, 12, "y", F32, -1, NULL, NULL);
    return pbw_model(&g, 8, 13);
}

static void run_chain(onr_session *s, int64_t n)
{
    float *x = iota(n * 12, 1.0f, 1.0f);
    int64_t dx[] = {n, 3, 4};
    onr_tensor *t = onr_tensor_wrap(ONR_FLOAT, 3, dx, x);
    onr_status st = onr_session_run(s, 1, NULL, (const onr_tensor *const *)&t);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    const onr_tensor *y = onr_session_output(s, 0);
    check_dims(y, 2, (const int64_t[]){n, 12});
    check_f32(y, x, n * 12);
    onr_tensor_free(t);
    free(x);
}

static void test_shape_chain_folded(void **state)
{
    (void)state;
    /* static x [2,3,4]: the whole shape computation folds at load */
    pbw m = shape_chain_model(2);
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    assert_int_equal(onr_session_node_count(s), 5);
    assert_int_equal(onr_session_step_count(s), 1);
    const char *nn = NULL;
    assert_string_equal(onr_session_step_op(s, 0, &nn), "Reshape");
    assert_string_equal(nn, "reshape");
    onr_value_info vi;
    assert_int_equal(onr_session_output_info(s, 0, &vi), ONR_OK);
    assert_int_equal(vi.dtype, ONR_FLOAT);
    assert_int_equal(vi.rank, 2);
    assert_int_equal(vi.dims[0], 2);
    assert_int_equal(vi.dims[1], 12);
    char buf[512];
    assert_int_equal(onr_session_step_describe(s, 0, buf, sizeof buf), ONR_OK);
    assert_has(buf, "Reshape");
    assert_has(buf, "'reshape'");
    assert_has(buf, "[2,12]");
    run_chain(s, 2);
    run_chain(s, 2);
    onr_session_free(s);

    /* symbolic N: nothing folds, every node is a step, and re-runs re-derive shapes */
    m = shape_chain_model(-1);
    s = open_ok(&m, 1);
    free(m.b);
    assert_int_equal(onr_session_step_count(s), 5);
    assert_int_equal(onr_session_output_info(s, 0, &vi), ONR_OK);
    if (vi.rank != -1) { /* at most partly known before a run */
        assert_int_equal(vi.rank, 2);
        assert_int_equal(vi.dims[0], -1);
        assert_int_equal(vi.dims[1], 12);
    }
    run_chain(s, 2);
    run_chain(s, 5);
    run_chain(s, 1);
    run_chain(s, 2);
    onr_session_free(s);
}

/* MatMul -> Add -> Reshape(0, -1, 2) -> Transpose(1, 2, 0): every shape static. */
static void test_static_shape_inference(void **state)
{
    (void)state;
    pbw g = {0}, a = {0};
    int64_t dx[] = {5, 3}, dw[] = {3, 8}, db[] = {8}, ds[] = {3};
    float w[24], b[8];
    for (int i = 0; i < 24; i++) w[i] = (float)((i % 5) - 2);
    for (int i = 0; i < 8; i++) b[i] = (float)i;
    int64_t shp[] = {0, -1, 2};
    init_f32(&g, "W", 2, dw, w, 24);
    init_f32(&g, "B", 1, db, b, 8);
    pbw_init_i64(&g, "shp", 1, ds, shp, 3);
    pbw_value_info(&g, 11, "x", F32, 2, dx);
    node(&g, "MatMul", "mm", (const char *[]){"x", "W", NULL}, (const char *[]){"h", NULL}, NULL);
    node(&g, "Add", "add", (const char *[]){"h", "B", NULL}, (const char *[]){"hb", NULL}, NULL);
    node(&g, "Reshape", "rs", (const char *[]){"hb", "shp", NULL}, (const char *[]){"r", NULL},
         NULL);
    pbw_attr_ints(&a, "perm", (const int64_t[]){1, 2, 0}, 3);
    node(&g, "Transpose", "tr", (const char *[]){"r", NULL}, (const char *[]){"y", NULL}, &a);
    pbw_value_info_named(&g, 12, "y", F32, -1, NULL, NULL); /* shape left to inference */
    pbw m = pbw_model(&g, 8, 13);
    /* unfused: the GEMM epilogue fusion would make MatMul + Add one step */
    onr_options *o = onr_options_new();
    onr_options_set_fuse(o, 0);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &s), ONR_OK);
    onr_options_free(o);
    free(m.b);
    /* the output's shape is known after open */
    onr_value_info vi;
    assert_int_equal(onr_session_output_info(s, 0, &vi), ONR_OK);
    assert_string_equal(vi.name, "y");
    assert_int_equal(vi.dtype, ONR_FLOAT);
    assert_int_equal(vi.rank, 3);
    assert_int_equal(vi.dims[0], 4);
    assert_int_equal(vi.dims[1], 2);
    assert_int_equal(vi.dims[2], 5);
    /* and every intermediate one, as the steps describe them */
    assert_int_equal(onr_session_step_count(s), 4);
    static const struct {
        const char *op, *shape;
    } want[] = {{"MatMul", "h float32[5,8]"}, {"Add", "hb float32[5,8]"},
                {"Reshape", "r float32[5,4,2]"}, {"Transpose", "y float32[4,2,5]"}};
    for (int i = 0; i < 4; i++) {
        char buf[512];
        assert_int_equal(onr_session_step_describe(s, i, buf, sizeof buf), ONR_OK);
        assert_string_equal(onr_session_step_op(s, i, NULL), want[i].op);
        assert_has(buf, want[i].shape);
    }
    /* and the values */
    float xv[15];
    for (int i = 0; i < 15; i++) xv[i] = (float)(i - 7);
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, dx, xv);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
    float hb[5][8], ey[4][2][5];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 8; j++) {
            float acc = 0;
            for (int k = 0; k < 3; k++) acc += xv[i * 3 + k] * w[k * 8 + j];
            hb[i][j] = acc + b[j];
        }
    for (int p = 0; p < 4; p++)
        for (int q = 0; q < 2; q++)
            for (int i = 0; i < 5; i++) ey[p][q][i] = hb[i][p * 2 + q]; /* r[i][p][q] */
    const onr_tensor *y = onr_session_output(s, 0);
    check_dims(y, 3, (const int64_t[]){4, 2, 5});
    check_f32(y, &ey[0][0][0], 40);
    onr_tensor_free(x);
    onr_session_free(s);
}

/* ---- output ownership ---------------------------------------------------------- */

static void test_output_ownership(void **state)
{
    (void)state;
    pbw m = dense_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    run_dense(s, 2, -1.0f);
    /* session-owned output: the same object until the next run */
    const onr_tensor *own = onr_session_output(s, 1);
    assert_ptr_equal(own, onr_session_output(s, 1));
    /* take output 0: the caller owns it now */
    onr_tensor *taken = onr_session_take_output(s, 0);
    assert_non_null(taken);
    assert_null(onr_session_take_output(s, 0)); /* only once per run */
    assert_null(onr_session_output(s, 0));
    assert_non_null(onr_session_output(s, 1)); /* the other output is still there */
    int64_t dy[] = {2, 3};
    check_dims(taken, 2, dy);
    float x2[8], ref2[6];
    for (int i = 0; i < 8; i++) x2[i] = -1.0f + 0.5f * (float)i;
    dense_ref(x2, 2, ref2);
    check_f32(taken, ref2, 6);
    /* the next runs do not touch it, even with another shape */
    run_dense(s, 5, 3.0f);
    run_dense(s, 2, 7.0f);
    check_dims(taken, 2, dy);
    check_f32(taken, ref2, 6);
    /* a second take after a new run is a new tensor */
    onr_tensor *taken2 = onr_session_take_output(s, 0);
    assert_non_null(taken2);
    assert_ptr_not_equal(taken2, taken);
    onr_tensor_free(taken);
    /* a taken output outlives its session */
    onr_session_free(s);
    float x3[8], ref3[6];
    for (int i = 0; i < 8; i++) x3[i] = 7.0f + 0.5f * (float)i;
    dense_ref(x3, 2, ref3);
    check_f32(taken2, ref3, 6);
    onr_tensor_free(taken2);
}

/* ---- outputs into caller memory ------------------------------------------------ */

static void test_run_into(void **state)
{
    (void)state;
    pbw m = dense_model();
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    float x[8], ref[6], yb[6], fb[8];
    for (int i = 0; i < 8; i++) x[i] = -1.0f + 0.5f * (float)i;
    dense_ref(x, 2, ref);
    int64_t dx[] = {2, 4}, dy[] = {2, 3}, df[] = {8};
    onr_tensor *tx = onr_tensor_wrap(ONR_FLOAT, 2, dx, x);
    onr_tensor *ty = onr_tensor_wrap(ONR_FLOAT, 2, dy, yb);
    onr_tensor *tf = onr_tensor_wrap(ONR_FLOAT, 1, df, fb);
    const onr_tensor *const *in = (const onr_tensor *const *)&tx;
    for (int round = 0; round < 3; round++) { /* both outputs, positionally: MatMul and a view */
        memset(yb, 0xff, sizeof yb), memset(fb, 0xff, sizeof fb);
        onr_tensor *outs[2] = {ty, tf};
        onr_status st = onr_session_run_into(s, 1, NULL, in, 2, NULL, outs);
        if (st) fail_msg("run_into: %s", onr_session_errmsg(s));
        check_f32(ty, ref, 6);
        check_f32(tf, x, 8);
        assert_ptr_equal(onr_tensor_data(onr_session_output(s, 0)), yb);
        assert_ptr_equal(onr_tensor_data(onr_session_output(s, 1)), fb);
    }
    /* by name, one output; the other stays the session's */
    memset(fb, 0, sizeof fb);
    onr_tensor *only[1] = {tf};
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 1, (const char *[]){"f"}, only), ONR_OK);
    check_f32(tf, x, 8);
    check_f32(onr_session_output(s, 0), ref, 6);
    assert_ptr_not_equal(onr_tensor_data(onr_session_output(s, 0)), yb);
    /* a taken bound output is a copy: the caller's memory stays the caller's */
    onr_tensor *taken = onr_session_take_output(s, 1);
    assert_non_null(taken);
    assert_ptr_not_equal(onr_tensor_data(taken), fb);
    check_f32(taken, x, 8);
    onr_tensor_free(taken);
    /* a later plain run does not write into the caller's memory */
    memset(yb, 0, sizeof yb), memset(fb, 0, sizeof fb);
    run_dense(s, 2, 5.0f);
    run_dense(s, 3, 1.0f);
    for (int i = 0; i < 6; i++) assert_true(yb[i] == 0.0f);
    for (int i = 0; i < 8; i++) assert_true(fb[i] == 0.0f);
    /* wrong shape, wrong type, unknown name, bound twice: errors naming the output */
    int64_t dbad[] = {3, 3};
    float bad[9];
    onr_tensor *tb = onr_tensor_wrap(ONR_FLOAT, 2, dbad, bad);
    onr_tensor *one[1] = {tb};
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 1, NULL, one), ONR_E_INPUT);
    assert_has(onr_session_errmsg(s), "output 'y'");
    assert_has(onr_session_errmsg(s), "[3,3]");
    assert_has(onr_session_errmsg(s), "[2,3]");
    assert_null(onr_session_output(s, 0));
    int64_t yi[6];
    onr_tensor *ti = onr_tensor_wrap(ONR_INT64, 2, dy, yi);
    one[0] = ti;
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 1, NULL, one), ONR_E_INPUT);
    assert_has(onr_session_errmsg(s), "int64");
    one[0] = ty;
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 1, (const char *[]){"nope"}, one), ONR_E_ARG);
    assert_has(onr_session_errmsg(s), "'nope'");
    onr_tensor *twice[2] = {ty, ty};
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 2, (const char *[]){"y", "y"}, twice),
                     ONR_E_ARG);
    assert_has(onr_session_errmsg(s), "bound twice");
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 3, NULL, twice), ONR_E_ARG);
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 1, NULL, NULL), ONR_E_ARG);
    /* after the errors, a bound run works again */
    onr_tensor *outs[2] = {ty, NULL};
    assert_int_equal(onr_session_run_into(s, 1, NULL, in, 2, NULL, outs), ONR_OK);
    check_f32(ty, ref, 6);
    onr_tensor_free(tb), onr_tensor_free(ti);
    onr_tensor_free(tx), onr_tensor_free(ty), onr_tensor_free(tf);
    onr_session_free(s);
}

/* Outputs that no step computes (a graph input, a constant) are copied in. */
static void test_run_into_passthrough(void **state)
{
    (void)state;
    pbw g = {0};
    int64_t d[] = {3};
    float w[] = {7, 8, 9};
    init_f32(&g, "w", 1, d, w, 3);
    pbw_value_info(&g, 11, "x", F32, 1, d);
    node(&g, "Add", "add", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw_value_info(&g, 12, "x", F32, 1, d);
    pbw_value_info(&g, 12, "w", F32, 1, d);
    pbw_value_info(&g, 12, "y", F32, 1, d);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = open_ok(&m, 1);
    free(m.b);
    float xv[3] = {1, 2, 3}, b[3][3];
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 1, d, xv);
    onr_tensor *o[3];
    for (int i = 0; i < 3; i++) o[i] = onr_tensor_wrap(ONR_FLOAT, 1, d, b[i]);
    assert_int_equal(onr_session_run_into(s, 1, NULL, (const onr_tensor *const *)&x, 3, NULL, o),
                     ONR_OK);
    const float ey[3] = {8, 10, 12};
    check_f32(o[0], xv, 3);
    check_f32(o[1], w, 3);
    check_f32(o[2], ey, 3);
    for (int i = 0; i < 3; i++) onr_tensor_free(o[i]);
    onr_tensor_free(x);
    onr_session_free(s);
}

/* The bundled models, every output bound to a malloc'd buffer of exactly
 * its size (no padding, so the sanitizer build catches a kernel writing
 * past an output's end): the same bits as the session's own buffers. */
static void test_run_into_models(void **state)
{
    (void)state;
    const char *src = getenv("ONR_SOURCE_DIR");
    if (!src) skip();
    const char *models[] = {"tiny_resnet18", "tiny_bert_op17", "tiny_gpt", "tiny_vit", "tiny_llama",
                            "tiny_mobilenet_v2"};
    for (size_t m = 0; m < sizeof models / sizeof *models; m++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/testdata/%s/model.onnx", src, models[m]);
        onr_options *o = onr_options_new();
        onr_options_set_threads(o, 2);
        onr_session *s = NULL;
        onr_status st = onr_session_open(path, o, &s);
        onr_options_free(o);
        if (st) fail_msg("%s: %s", path, onr_session_errmsg(s));
        int n = onr_session_input_count(s), n_out = onr_session_output_count(s);
        onr_tensor *in[8] = {0}, *bound[8] = {0};
        void *bufs[8] = {0};
        assert_true(n <= 8 && n_out <= 8);
        for (int i = 0; i < n; i++) {
            onr_value_info vi;
            assert_int_equal(onr_session_input_info(s, i, &vi), ONR_OK);
            int64_t dims[ONR_MAX_RANK];
            for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 1;
            in[i] = onr_tensor_new(vi.dtype, vi.rank, dims);
            assert_non_null(in[i]);
            if (vi.dtype == ONR_FLOAT)
                for (int64_t k = 0; k < onr_tensor_numel(in[i]); k++)
                    ((float *)onr_tensor_data(in[i]))[k] = (float)(k % 13) * 0.1f - 0.6f;
        }
        st = onr_session_run(s, n, NULL, (const onr_tensor *const *)in);
        if (st) fail_msg("%s: %s", models[m], onr_session_errmsg(s));
        for (int i = 0; i < n_out; i++) {
            const onr_tensor *y = onr_session_output(s, i);
            size_t bytes = (size_t)onr_tensor_numel(y) * onr_dtype_size(onr_tensor_dtype(y));
            bufs[i] = malloc(bytes ? bytes : 1);
            bound[i] = onr_tensor_wrap(onr_tensor_dtype(y), onr_tensor_rank(y), onr_tensor_dims(y), bufs[i]);
            assert_non_null(bound[i]);
        }
        onr_tensor *ref[8] = {0};
        for (int i = 0; i < n_out; i++) ref[i] = onr_session_take_output(s, i);
        st = onr_session_run_into(s, n, NULL, (const onr_tensor *const *)in, n_out, NULL, bound);
        if (st) fail_msg("%s: run_into: %s", models[m], onr_session_errmsg(s));
        for (int i = 0; i < n_out; i++) {
            size_t bytes = (size_t)onr_tensor_numel(ref[i]) * onr_dtype_size(onr_tensor_dtype(ref[i]));
            if (memcmp(bufs[i], onr_tensor_data(ref[i]), bytes) != 0)
                fail_msg("%s: output %d differs when written into the caller's buffer", models[m], i);
            assert_ptr_equal(onr_tensor_data(onr_session_output(s, i)), bufs[i]);
            onr_tensor_free(ref[i]);
            onr_tensor_free(bound[i]);
            free(bufs[i]);
        }
        for (int i = 0; i < n; i++) onr_tensor_free(in[i]);
        onr_session_free(s);
    }
}

/* ---- threads ------------------------------------------------------------------- */

static void test_threads_identical(void **state)
{
    (void)state;
    enum { M = 96, K = 256, N = 160 };
    pbw g = {0};
    int64_t dx[] = {M, K}, dw[] = {K, N}, db[] = {N}, dy[] = {M, N};
    float *w = malloc(sizeof(float) * K * N), *b = malloc(sizeof(float) * N);
    float *x = malloc(sizeof(float) * M * K);
    uint32_t r = 12345;
    for (int i = 0; i < K * N; i++) {
        r = r * 1664525u + 1013904223u;
        w[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
    }
    for (int i = 0; i < N; i++) b[i] = 0.01f * (float)i;
    for (int i = 0; i < M * K; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
    }
    init_f32(&g, "W", 2, dw, w, (size_t)K * N);
    init_f32(&g, "B", 1, db, b, N);
    pbw_value_info(&g, 11, "x", F32, 2, dx);
    node(&g, "MatMul", "mm", (const char *[]){"x", "W", NULL}, (const char *[]){"h", NULL}, NULL);
    node(&g, "Add", "add", (const char *[]){"h", "B", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw_value_info(&g, 12, "y", F32, 2, dy);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s1 = open_ok(&m, 1), *s2 = open_ok(&m, 2), *s0 = open_ok(&m, 0);
    assert_int_equal(onr_session_threads(s1), 1);
    assert_int_equal(onr_session_threads(s2), 2);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(onr_session_threads(s0), ncpu > 0 ? ncpu : 1);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 2);
    onr_options_set_fuse(o, 0);
    onr_session *snf = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &snf), ONR_OK);
    onr_options_free(o);
    free(m.b);
    onr_tensor *xt = onr_tensor_wrap(ONR_FLOAT, 2, dx, x);
    assert_int_equal(onr_session_run(snf, 1, NULL, (const onr_tensor *const *)&xt), ONR_OK);
    assert_int_equal(onr_session_run(s1, 1, NULL, (const onr_tensor *const *)&xt), ONR_OK);
    assert_int_equal(onr_session_run(s2, 1, NULL, (const onr_tensor *const *)&xt), ONR_OK);
    const onr_tensor *y1 = onr_session_output(s1, 0), *y2 = onr_session_output(s2, 0);
    check_dims(y1, 2, dy);
    check_dims(y2, 2, dy);
    if (memcmp(onr_tensor_data(y1), onr_tensor_data(y2), sizeof(float) * M * N) != 0)
        fail_msg("1 and 2 threads give different results");
    /* an input that is only float-aligned (not 16/32/64-byte aligned): same result */
    float *mis = malloc(sizeof(float) * (M * K + 1));
    memcpy(mis + 1, x, sizeof(float) * M * K);
    onr_tensor *xm = onr_tensor_wrap(ONR_FLOAT, 2, dx, mis + 1);
    assert_int_equal(onr_session_run(s0, 1, NULL, (const onr_tensor *const *)&xm), ONR_OK);
    if (memcmp(onr_tensor_data(y1), onr_tensor_data(onr_session_output(s0, 0)),
               sizeof(float) * M * N) != 0)
        fail_msg("a misaligned input gives different results");
    onr_tensor_free(xm);
    free(mis);
    /* fusions off: the same again */
    const onr_tensor *ynf = onr_session_output(snf, 0);
    check_dims(ynf, 2, dy);
    if (memcmp(onr_tensor_data(y1), onr_tensor_data(ynf), sizeof(float) * M * N) != 0)
        fail_msg("fusions on and off give different results");
    /* and both are right (double-precision reference, loose tolerance) */
    const float *yd = onr_tensor_data(y1);
    for (int i = 0; i < M; i += 7)
        for (int j = 0; j < N; j += 5) {
            double acc = b[j];
            for (int k = 0; k < K; k++) acc += (double)x[i * K + k] * w[k * N + j];
            if (fabs(acc - yd[i * N + j]) > 1e-4) fail_msg("y[%d][%d] = %g, expected %g", i, j, yd[i * N + j], acc);
        }
    onr_tensor_free(xt);
    onr_session_free(s0);
    onr_session_free(snf);
    onr_session_free(s1);
    onr_session_free(s2);
    free(w);
    free(b);
    free(x);
}

/* ---- NULL and invalid arguments ------------------------------------------------ */

/* Runs fn in a child: a crash fails the test instead of ending the program. */
static int in_child(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* plain default crashes in the child (not cmocka's or a sanitizer's recovery) */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        fn();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void child_read_pb_null(void)
{
    onr_tensor *t = NULL;
    char msg[256];
    onr_status st = onr_tensor_read_pb(NULL, 16, &t, msg, sizeof msg);
    onr_tensor_free(t);
    _exit(st == ONR_E_ARG ? 0 : 10 + (int)st);
}

static void test_null_arguments(void **state)
{
    (void)state;
    onr_session *s = NULL;
    /* opening */
    assert_int_equal(onr_session_open(NULL, NULL, &s), ONR_E_ARG);
    assert_non_null(s);
    assert_has(onr_session_errmsg(s), "path");
    onr_session_free(s);
    assert_int_equal(onr_session_open("x.onnx", NULL, NULL), ONR_E_ARG);
    s = NULL;
    assert_int_equal(onr_session_open_memory(NULL, 10, NULL, &s), ONR_E_ARG);
    assert_true(strlen(onr_session_errmsg(s)) > 0);
    onr_session_free(s);
    pbw m = two_input_model();
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, NULL), ONR_E_ARG);
    s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, 0, NULL, &s), ONR_E_MODEL);
    assert_has(onr_session_errmsg(s), "empty");
    /* a session whose open failed: facts are empty, running is refused */
    assert_int_equal(onr_session_input_count(s), 0);
    assert_int_equal(onr_session_step_count(s), 0);
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_E_ARG);
    assert_has(onr_session_errmsg(s), "no loaded model");
    assert_null(onr_session_output(s, 0));
    onr_session_free(s);

    /* NULL session everywhere */
    assert_int_equal(onr_session_run(NULL, 0, NULL, NULL), ONR_E_ARG);
    assert_true(strlen(onr_session_errmsg(NULL)) > 0);
    assert_int_equal(onr_session_threads(NULL), 0);
    assert_int_equal(onr_session_input_count(NULL), 0);
    assert_int_equal(onr_session_output_count(NULL), 0);
    onr_value_info vi;
    assert_int_equal(onr_session_input_info(NULL, 0, &vi), ONR_E_ARG);
    assert_int_equal(onr_session_output_info(NULL, 0, &vi), ONR_E_ARG);
    assert_null(onr_session_output(NULL, 0));
    assert_null(onr_session_take_output(NULL, 0));
    assert_int_equal(onr_session_ir_version(NULL), 0);
    assert_string_equal(onr_session_producer(NULL), "");
    assert_int_equal(onr_session_opset_count(NULL), 0);
    assert_null(onr_session_opset(NULL, 0, NULL));
    assert_int_equal(onr_session_node_count(NULL), 0);
    assert_null(onr_session_node_op(NULL, 0, NULL));
    assert_int_equal(onr_session_step_count(NULL), 0);
    char buf[64];
    assert_int_equal(onr_session_step_describe(NULL, 0, buf, sizeof buf), ONR_E_ARG);
    assert_null(onr_session_step_op(NULL, 0, NULL));
    onr_session_set_profiling(NULL, 1);
    double start = 5;
    assert_true(onr_session_step_ms(NULL, 0, &start) == 0 && start == 0);
    onr_session_free(NULL);
    onr_options_free(NULL);
    onr_options_set_threads(NULL, 2);
    onr_options_set_fuse(NULL, 0);
    onr_options_set_base_dir(NULL, "/tmp");

    /* a good session, bad indices and arguments */
    s = open_ok(&m, 1);
    free(m.b);
    assert_int_equal(onr_session_input_info(s, -1, &vi), ONR_E_ARG);
    assert_int_equal(onr_session_input_info(s, 2, &vi), ONR_E_ARG);
    assert_int_equal(onr_session_input_info(s, 0, NULL), ONR_E_ARG);
    assert_int_equal(onr_session_output_info(s, 2, &vi), ONR_E_ARG);
    assert_int_equal(onr_session_output_info(s, 0, NULL), ONR_E_ARG);
    assert_null(onr_session_output(s, 0)); /* nothing run yet */
    assert_null(onr_session_take_output(s, 0));
    assert_null(onr_session_opset(s, -1, NULL));
    assert_null(onr_session_node_op(s, 3, NULL));
    assert_null(onr_session_node_op(s, -1, NULL));
    int steps = onr_session_step_count(s);
    assert_int_equal(steps, 3);
    assert_int_equal(onr_session_step_describe(s, steps, buf, sizeof buf), ONR_E_ARG);
    assert_int_equal(onr_session_step_describe(s, -1, buf, sizeof buf), ONR_E_ARG);
    assert_int_equal(onr_session_step_describe(s, 0, NULL, sizeof buf), ONR_E_ARG);
    assert_int_equal(onr_session_step_describe(s, 0, buf, 0), ONR_E_ARG);
    /* a short buffer is filled and terminated */
    char full[512], small[8];
    assert_int_equal(onr_session_step_describe(s, 0, full, sizeof full), ONR_OK);
    memset(small, 'X', sizeof small);
    assert_int_equal(onr_session_step_describe(s, 0, small, sizeof small), ONR_OK);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, full, sizeof small - 1);
    assert_null(onr_session_step_op(s, steps, NULL));
    assert_true(onr_session_step_ms(s, 0, NULL) == 0); /* profiling off */
    /* run arguments */
    assert_int_equal(onr_session_run(s, -1, NULL, NULL), ONR_E_ARG);
    assert_true(strlen(onr_session_errmsg(s)) > 0);
    assert_int_equal(onr_session_run(s, 2, NULL, NULL), ONR_E_ARG);
    assert_has(onr_session_errmsg(s), "input");
    /* a tensor with no data */
    onr_tensor *empty = calloc(1, sizeof(onr_tensor) + 64); /* dtype UNDEFINED */
    assert_non_null(empty);
    int64_t dk[] = {3};
    int64_t kv[3] = {0};
    onr_tensor *k = onr_tensor_wrap(ONR_INT64, 1, dk, kv);
    assert_int_equal(onr_session_run(s, 2, NULL, (const onr_tensor *const[]){empty, k}), ONR_E_ARG);
    assert_has(onr_session_errmsg(s), "input 'x'");
    free(empty);
    onr_tensor_free(k);
    onr_session_free(s);

    /* tensors */
    int64_t d2[] = {2, 3}, dneg[] = {2, -3}, d13[13];
    for (int i = 0; i < 13; i++) d13[i] = 1;
    float data[6] = {0};
    assert_null(onr_tensor_new(ONR_UNDEFINED, 2, d2));
    assert_null(onr_tensor_new((onr_dtype)99, 2, d2));
    assert_null(onr_tensor_new(ONR_COMPLEX64, 2, d2));
    assert_null(onr_tensor_new(ONR_FLOAT, 2, NULL));
    assert_null(onr_tensor_new(ONR_FLOAT, 2, dneg));
    assert_null(onr_tensor_new(ONR_FLOAT, 13, d13));
    assert_null(onr_tensor_new(ONR_FLOAT, -1, d2));
    assert_null(onr_tensor_wrap(ONR_STRING, 2, d2, data));
    assert_null(onr_tensor_wrap(ONR_FLOAT, 2, d2, NULL));
    assert_null(onr_tensor_wrap(ONR_FLOAT, 2, dneg, data));
    onr_tensor *scalar = onr_tensor_new(ONR_FLOAT, 0, NULL);
    assert_non_null(scalar);
    assert_int_equal(onr_tensor_numel(scalar), 1);
    assert_true(*(float *)onr_tensor_data(scalar) == 0.0f);
    onr_tensor_free(scalar);
    onr_tensor_free(NULL);
    assert_int_equal(onr_tensor_dtype(NULL), ONR_UNDEFINED);
    assert_int_equal(onr_tensor_rank(NULL), -1);
    assert_null(onr_tensor_dims(NULL));
    assert_int_equal(onr_tensor_numel(NULL), 0);
    assert_null(onr_tensor_data(NULL));
    assert_string_equal(onr_tensor_name(NULL), "");
    assert_string_equal(onr_dtype_name((onr_dtype)99), "undefined");
    assert_string_equal(onr_dtype_name(ONR_BFLOAT16), "bfloat16");
    assert_int_equal(onr_dtype_size(ONR_STRING), 0);
    assert_int_equal(onr_dtype_size(ONR_DOUBLE), 8);
    assert_string_equal(onr_status_name((onr_status)99), "unknown status");
    assert_string_equal(onr_status_name(ONR_E_INPUT), "bad input");

    /* tensor files */
    onr_tensor *t = NULL;
    char msg[256];
    assert_int_equal(onr_tensor_read_file(NULL, &t, msg, sizeof msg), ONR_E_ARG);
    assert_int_equal(onr_tensor_read_file("x.pb", NULL, msg, sizeof msg), ONR_E_ARG);
    assert_int_equal(onr_tensor_read_pb("", 0, NULL, msg, sizeof msg), ONR_E_ARG);
    assert_int_equal(onr_tensor_write_pb(NULL, "n", tmp_path("t.pb"), msg, sizeof msg), ONR_E_ARG);
    onr_tensor *w = onr_tensor_wrap(ONR_FLOAT, 2, d2, data);
    assert_int_equal(onr_tensor_write_pb(w, "n", NULL, msg, sizeof msg), ONR_E_ARG);
    onr_tensor_free(w);
    assert_int_equal(onr_tensor_read_file(tmp_path("missing.pb"), &t, msg, sizeof msg), ONR_E_IO);
    assert_has(msg, "missing.pb");
    assert_null(t);
    /* NULL data with a length: ONR_E_ARG, not a crash */
    int rc = in_child(child_read_pb_null);
    if (rc != 0)
        fail_msg("onr_tensor_read_pb(NULL, 16, ...) %s (code %d), expected ONR_E_ARG",
                 rc >= 128 ? "crashed" : "returned another status", rc >= 128 ? rc - 128 : rc - 10);
}

/* Tensors written and read back through the file API keep type, shape, data
 * and name. */
static void test_tensor_files(void **state)
{
    (void)state;
    int64_t d[] = {2, 3};
    int64_t v[6] = {1, -2, 3, -4, 5, 1ll << 50};
    onr_tensor *t = onr_tensor_wrap(ONR_INT64, 2, d, v);
    char msg[256];
    assert_int_equal(onr_tensor_write_pb(t, "kays", tmp_path("k.pb"), msg, sizeof msg), ONR_OK);
    onr_tensor *r = NULL;
    assert_int_equal(onr_tensor_read_file(tmp_path("k.pb"), &r, msg, sizeof msg), ONR_OK);
    assert_int_equal(onr_tensor_dtype(r), ONR_INT64);
    check_dims(r, 2, d);
    assert_memory_equal(onr_tensor_data(r), v, sizeof v);
    assert_string_equal(onr_tensor_name(r), "kays");
    onr_tensor_free(r);
    onr_tensor_free(t);
    /* a .npy file */
    static const char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    uint8_t npy[128];
    size_t hl = 118; /* header padded so data starts at 128 */
    memset(npy, ' ', sizeof npy);
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    npy[8] = (uint8_t)(hl & 0xff);
    npy[9] = (uint8_t)(hl >> 8);
    memcpy(npy + 10, hdr, strlen(hdr));
    npy[10 + hl - 1] = '\n';
    float fv[4] = {1.5f, -2, 3, 4};
    FILE *f = fopen(tmp_path("a.npy"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(npy, 1, 10 + hl, f), 10 + hl);
    assert_int_equal(fwrite(fv, 1, sizeof fv, f), sizeof fv);
    fclose(f);
    assert_int_equal(onr_tensor_read_file(tmp_path("a.npy"), &r, msg, sizeof msg), ONR_OK);
    check_dims(r, 2, (const int64_t[]){2, 2});
    check_f32(r, fv, 4);
    onr_tensor_free(r);
    /* a corrupt one names the file */
    write_file("bad.pb", "\xff\xff\xff\xff", 4);
    r = NULL;
    assert_int_not_equal(onr_tensor_read_file(tmp_path("bad.pb"), &r, msg, sizeof msg), ONR_OK);
    assert_null(r);
    assert_has(msg, "bad.pb");
}

/* ---- setup ------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    return pbw_tmpdir_make(tmpdir, sizeof tmpdir, "api");
}

static int teardown(void **state)
{
    (void)state;
    return pbw_tmpdir_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_path_and_memory),
        cmocka_unit_test(test_open_external_base_dir),
        cmocka_unit_test(test_run_named_and_positional),
        cmocka_unit_test(test_run_input_errors),
        cmocka_unit_test(test_run_missing_input),
        cmocka_unit_test(test_outputs_passthrough),
        cmocka_unit_test(test_symbolic_dim_shared),
        cmocka_unit_test(test_rerun_other_shapes),
        cmocka_unit_test(test_shape_chain_folded),
        cmocka_unit_test(test_static_shape_inference),
        cmocka_unit_test(test_output_ownership),
        cmocka_unit_test(test_run_into),
        cmocka_unit_test(test_run_into_passthrough),
        cmocka_unit_test(test_run_into_models),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_tensor_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
