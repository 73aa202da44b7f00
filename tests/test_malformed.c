/*
 * test_malformed.c - bad input of every kind must give its status code and
 * a message naming what and where, through the API and the CLI's exit
 * status, and never a crash, hang or huge allocation. Runs under ASan/UBSan
 * in the sanitizer build.
 */
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

/* A valid model: y = Relu(x + w), x float [1,4], w an initializer. */
static pbw good_graph(void)
{
    pbw g = {0};
    int64_t d[] = {1, 4}, wd[] = {4};
    float w[] = {1, -2, 3, -4};
    pbw_str(&g, 2, "good");
    pbw_init_f32(&g, "w", 1, wd, w, 4);
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node(&g, "Add", "add0", (const char *[]){"x", "w", NULL}, (const char *[]){"s", NULL}, NULL);
    pbw_node(&g, "Relu", "relu0", (const char *[]){"s", NULL}, (const char *[]){"y", NULL}, NULL);
    return g;
}

static pbw good_model(void)
{
    pbw g = good_graph();
    return pbw_model(&g, 8, 13);
}

/* Open from memory; returns the status and leaves the message in msg. */
static onr_status open_bytes(const void *b, size_t n, char *msg, size_t len)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(b, n, NULL, &s);
    snprintf(msg, len, "%s", onr_session_errmsg(s));
    onr_session_free(s);
    return st;
}

static char *write_tmp(const char *name, const void *b, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    return path;
}

/* Exit status of `onnx-run ARGS` (skipped when the CLI path is unknown). */
static int cli_status(const char *args)
{
    const char *cli = getenv("ONR_CLI");
    if (!cli) return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", cli, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void expect_cli(const char *args, int code)
{
    int rc = cli_status(args);
    if (rc >= 0 && rc != code) fail_msg("onnx-run %s: exit %d, expected %d", args, rc, code);
}

static void test_good_model_runs(void **state)
{
    (void)state;
    pbw m = good_model();
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_OK);
    float xv[] = {0.5f, 0.5f, -4.f, 5.f};
    int64_t d[] = {1, 4};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, d, xv);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
    const float *y = onr_tensor_data(onr_session_output(s, 0));
    assert_true(y[0] == 1.5f && y[1] == 0.f && y[2] == 0.f && y[3] == 1.f);
    /* wrong shape, wrong type, wrong count, wrong name */
    int64_t bad[] = {1, 5};
    float bv[5] = {0};
    onr_tensor *xb = onr_tensor_wrap(ONR_FLOAT, 2, bad, bv);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&xb), ONR_E_INPUT);
    assert_non_null(strstr(onr_session_errmsg(s), "'x'"));
    assert_non_null(strstr(onr_session_errmsg(s), "dim 1 must be 4"));
    int64_t iv[4] = {0};
    onr_tensor *xi = onr_tensor_wrap(ONR_INT64, 2, d, iv);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&xi), ONR_E_INPUT);
    assert_non_null(strstr(onr_session_errmsg(s), "expected float32, got int64"));
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_E_INPUT);
    const char *nm[] = {"nope"};
    assert_int_equal(onr_session_run(s, 1, nm, (const onr_tensor *const *)&x), ONR_E_INPUT);
    assert_non_null(strstr(onr_session_errmsg(s), "'nope'"));
    onr_tensor_free(x);
    onr_tensor_free(xb);
    onr_tensor_free(xi);
    onr_session_free(s);
    char *p = write_tmp("good.onnx", m.b, m.n);
    char args[600];
    snprintf(args, sizeof args, "run '%s'", p);
    expect_cli(args, 0);
    free(m.b);
}

static void test_truncated(void **state)
{
    (void)state;
    pbw m = good_model();
    char msg[1024];
    int failures = 0;
    /* every prefix must fail cleanly (or, rarely, parse as a smaller valid model) */
    for (size_t n = 0; n < m.n; n++) {
        onr_status st = open_bytes(m.b, n, msg, sizeof msg);
        if (st != ONR_OK) {
            failures++;
            assert_true(strlen(msg) > 0);
        }
    }
    assert_true(failures > (int)m.n / 2);
    assert_int_equal(open_bytes(m.b, m.n / 2, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "truncated or corrupt"));
    char *p = write_tmp("trunc.onnx", m.b, m.n / 2);
    char args[600];
    snprintf(args, sizeof args, "run '%s'", p);
    expect_cli(args, 1);
    p = write_tmp("empty.onnx", m.b, 0);
    snprintf(args, sizeof args, "run '%s'", p);
    expect_cli(args, 1);
    free(m.b);
}

static void test_random_bytes(void **state)
{
    (void)state;
    char msg[1024];
    uint32_t s = 1;
    uint8_t buf[4096];
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + (size_t)(round * 13 % (int)sizeof buf);
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            buf[i] = (uint8_t)(s >> 24);
        }
        assert_int_not_equal(open_bytes(buf, n, msg, sizeof msg), ONR_OK);
    }
    /* byte flips in a valid model: anything but a crash is acceptable */
    pbw m = good_model();
    for (size_t i = 0; i < m.n; i++) {
        uint8_t *c = malloc(m.n);
        memcpy(c, m.b, m.n);
        c[i] ^= 0xff;
        open_bytes(c, m.n, msg, sizeof msg);
        free(c);
    }
    free(m.b);
}

static void test_missing_input(void **state)
{
    (void)state;
    pbw g = {0};
    int64_t d[] = {1, 4};
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node(&g, "Add", "adder", (const char *[]){"x", "ghost", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw m = pbw_model(&g, 8, 13);
    char msg[1024];
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "'ghost'"));
    assert_non_null(strstr(msg, "adder"));
    char *p = write_tmp("missing.onnx", m.b, m.n);
    char args[600];
    snprintf(args, sizeof args, "run '%s'", p);
    expect_cli(args, 1);
    free(m.b);
}

static void test_huge_dims(void **state)
{
    (void)state;
    char msg[1024];
    /* an initializer claiming 2^40 elements */
    pbw g = {0};
    int64_t d[] = {1, 4}, huge[] = {1ll << 20, 1ll << 20};
    pbw_init_f32(&g, "w", 2, huge, NULL, 0);
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node(&g, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw m = pbw_model(&g, 8, 13);
    assert_int_not_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_OK);
    assert_non_null(strstr(msg, "'w'"));
    assert_non_null(strstr(msg, "too large"));
    free(m.b);
    /* a graph input declaring 2^40 elements: refused at load, no allocation */
    pbw g2 = {0};
    int64_t hd[] = {1ll << 40};
    pbw_value_info(&g2, 11, "x", F32, 1, hd);
    pbw_value_info(&g2, 12, "y", F32, 1, hd);
    pbw_node(&g2, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw m2 = pbw_model(&g2, 8, 13);
    assert_int_equal(open_bytes(m2.b, m2.n, msg, sizeof msg), ONR_E_NOMEM);
    assert_non_null(strstr(msg, "'x'"));
    char *p = write_tmp("huge.onnx", m2.b, m2.n);
    char args[600];
    snprintf(args, sizeof args, "run '%s'", p);
    expect_cli(args, 1);
    free(m2.b);
    /* a negative dim in an initializer */
    pbw g3 = {0};
    int64_t neg[] = {-5};
    pbw_init_f32(&g3, "w", 1, neg, NULL, 0);
    pbw_value_info(&g3, 11, "x", F32, 2, d);
    pbw_value_info(&g3, 12, "y", F32, 2, d);
    pbw_node(&g3, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw m3 = pbw_model(&g3, 8, 13);
    assert_int_equal(open_bytes(m3.b, m3.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "negative dim"));
    free(m3.b);
}

/* Initializer "w" stored externally at `location`. */
static pbw external_model(const char *location)
{
    pbw g = {0}, t = {0}, kv = {0};
    int64_t d[] = {1, 4};
    pbw_int(&t, 1, 4);
    pbw_int(&t, 2, F32);
    pbw_str(&t, 8, "w");
    pbw_str(&kv, 1, "location");
    pbw_str(&kv, 2, location);
    pbw_msg(&t, 13, &kv);
    pbw_int(&t, 14, 1);
    pbw_msg(&g, 5, &t);
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node(&g, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL}, NULL);
    return pbw_model(&g, 8, 13);
}

static void test_external_data(void **state)
{
    (void)state;
    onr_session *s = NULL;
    char path[600];
    /* escaping paths are refused before any file is touched */
    const char *bad[] = {"../secret.bin", "a/../../x.bin", "/etc/passwd"};
    for (int i = 0; i < 3; i++) {
        pbw m = external_model(bad[i]);
        char *p = write_tmp("ext_bad.onnx", m.b, m.n);
        assert_int_equal(onr_session_open(p, NULL, &s), ONR_E_MODEL);
        assert_non_null(strstr(onr_session_errmsg(s), "escapes"));
        assert_non_null(strstr(onr_session_errmsg(s), bad[i]));
        onr_session_free(s);
        snprintf(path, sizeof path, "run '%s'", p);
        expect_cli(path, 1);
        free(m.b);
    }
    /* missing file */
    pbw m = external_model("weights_missing.bin");
    char *p = write_tmp("ext_missing.onnx", m.b, m.n);
    assert_int_equal(onr_session_open(p, NULL, &s), ONR_E_IO);
    assert_non_null(strstr(onr_session_errmsg(s), "weights_missing.bin"));
    onr_session_free(s);
    free(m.b);
    /* too short a file */
    float w[2] = {1, 2};
    write_tmp("short.bin", w, sizeof w);
    m = external_model("short.bin");
    p = write_tmp("ext_short.onnx", m.b, m.n);
    assert_int_equal(onr_session_open(p, NULL, &s), ONR_E_MODEL);
    assert_non_null(strstr(onr_session_errmsg(s), "beyond the end"));
    onr_session_free(s);
    free(m.b);
    /* and a good one, read in place */
    float w4[4] = {1, 2, 3, 4};
    write_tmp("w.bin", w4, sizeof w4);
    m = external_model("w.bin");
    p = write_tmp("ext_ok.onnx", m.b, m.n);
    assert_int_equal(onr_session_open(p, NULL, &s), ONR_OK);
    float xv[4] = {1, 1, 1, 1};
    int64_t d[] = {1, 4};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, d, xv);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
    assert_true(((const float *)onr_tensor_data(onr_session_output(s, 0)))[3] == 5.f);
    onr_tensor_free(x);
    onr_session_free(s);
    /* from memory without a base directory: refused with a reason */
    char msg[1024];
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "base directory"));
    free(m.b);
}

static void test_unknown_op(void **state)
{
    (void)state;
    pbw g = {0};
    int64_t d[] = {1, 4};
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node(&g, "FrobnicateAll", "frob", (const char *[]){"x", NULL}, (const char *[]){"t", NULL}, NULL);
    pbw_node(&g, "Zap", "zap", (const char *[]){"t", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw m = pbw_model(&g, 8, 13);
    char msg[1024];
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_UNSUPPORTED);
    /* every missing op listed at once, with domain, opset and node */
    assert_non_null(strstr(msg, "FrobnicateAll"));
    assert_non_null(strstr(msg, "Zap"));
    assert_non_null(strstr(msg, "opset 13"));
    assert_non_null(strstr(msg, "'frob'"));
    char *p = write_tmp("unknown.onnx", m.b, m.n);
    char args[600];
    snprintf(args, sizeof args, "run '%s'", p);
    expect_cli(args, 3);
    snprintf(args, sizeof args, "run '%s' --bogus-flag", p);
    expect_cli(args, 2);
    expect_cli("run", 2);
    expect_cli("frobnicate", 2);
    free(m.b);
}

static void test_graph_structure_errors(void **state)
{
    (void)state;
    char msg[1024];
    int64_t d[] = {1, 4};
    /* a cycle */
    pbw g = {0};
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, d);
    pbw_node(&g, "Add", "a", (const char *[]){"x", "b_out", NULL}, (const char *[]){"a_out", NULL}, NULL);
    pbw_node(&g, "Relu", "b", (const char *[]){"a_out", NULL}, (const char *[]){"b_out", NULL}, NULL);
    pbw_node(&g, "Relu", "c", (const char *[]){"a_out", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw m = pbw_model(&g, 8, 13);
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "cycle"));
    free(m.b);
    /* a value produced twice */
    pbw g2 = {0};
    pbw_value_info(&g2, 11, "x", F32, 2, d);
    pbw_value_info(&g2, 12, "y", F32, 2, d);
    pbw_node(&g2, "Relu", "first", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, NULL);
    pbw_node(&g2, "Relu", "second", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, NULL);
    m = pbw_model(&g2, 8, 13);
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "'y'"));
    assert_non_null(strstr(msg, "second"));
    free(m.b);
    /* unreadable IR version */
    pbw g3 = good_graph();
    m = pbw_model(&g3, 99, 13);
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "IR version 99"));
    free(m.b);
    /* an output nobody produces */
    pbw g4 = {0};
    pbw_value_info(&g4, 11, "x", F32, 2, d);
    pbw_value_info(&g4, 12, "nowhere", F32, 2, d);
    m = pbw_model(&g4, 8, 13);
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "'nowhere'"));
    free(m.b);
    /* raw_data of the wrong length */
    pbw g5 = {0};
    int64_t wd[] = {4};
    float w[3] = {1, 2, 3};
    pbw_init_f32(&g5, "w", 1, wd, w, 3);
    pbw_value_info(&g5, 11, "x", F32, 2, d);
    pbw_value_info(&g5, 12, "y", F32, 2, d);
    pbw_node(&g5, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL}, NULL);
    m = pbw_model(&g5, 8, 13);
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "raw_data holds 12 bytes"));
    free(m.b);
    /* shapes that cannot broadcast are caught at load by shape inference */
    pbw g6 = {0};
    int64_t d3[] = {1, 3};
    pbw_value_info(&g6, 11, "x", F32, 2, d);
    pbw_value_info(&g6, 11, "z", F32, 2, d3);
    pbw_value_info(&g6, 12, "y", F32, 2, d);
    pbw_node(&g6, "Add", "bad_add", (const char *[]){"x", "z", NULL}, (const char *[]){"y", NULL}, NULL);
    m = pbw_model(&g6, 8, 13);
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "bad_add"));
    assert_non_null(strstr(msg, "broadcast"));
    free(m.b);
}

/* Graph attributes nested 2000 deep: refused without exhausting the stack. */
static void test_deep_nesting(void **state)
{
    (void)state;
    pbw inner = {0};
    pbw_str(&inner, 2, "leaf");
    for (int depth = 0; depth < 2000; depth++) {
        pbw attr = {0}, node = {0}, graph = {0};
        pbw_str(&attr, 1, "body");
        pbw_int(&attr, 20, 5);
        pbw_msg(&attr, 6, &inner);
        pbw_str(&node, 4, "If");
        pbw_msg(&node, 5, &attr);
        pbw_msg(&graph, 1, &node);
        inner = graph;
    }
    pbw m = pbw_model(&inner, 8, 13);
    char msg[1024];
    assert_int_equal(open_bytes(m.b, m.n, msg, sizeof msg), ONR_E_MODEL);
    assert_non_null(strstr(msg, "deep"));
    free(m.b);
}

static int setup(void **state)
{
    (void)state;
    return pbw_tmpdir_make(tmpdir, sizeof tmpdir, "malformed");
}

static int teardown(void **state)
{
    (void)state;
    return pbw_tmpdir_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_model_runs),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_missing_input),
        cmocka_unit_test(test_huge_dims),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_graph_structure_errors),
        cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
