/*
 * test_limits.c - resources a model controls are bounded (issue 16, item 3).
 *
 * No stack allocation may scale with anything the model controls: a node
 * with tens of thousands of inputs (Sum, Concat, Max, Mean, Min) and a graph
 * with hundreds of thousands of inputs once overflowed variable-length
 * arrays in shape inference, the prepare key and the CLI. They now load and
 * run (heap), or are refused beyond the limits of ir.h with a message that
 * names the limit. The models are built here, in memory (a few hundred KB),
 * never committed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/ir.h"
#include "kutil.h"
#include "pbw.h"

enum { F32 = 1 };

/* y = op(x, x, ..., x) with n inputs, x float [1,2] (Concat: along axis 1). */
static pbw wide_node_model(const char *op, int n)
{
    pbw g = {0}, node = {0};
    int64_t d[] = {1, 2}, dy[] = {1, strcmp(op, "Concat") == 0 ? 2 * (int64_t)n : 2};
    for (int i = 0; i < n; i++) pbw_str(&node, 1, "x");
    pbw_str(&node, 2, "y");
    pbw_str(&node, 3, "wide");
    pbw_str(&node, 4, op);
    if (strcmp(op, "Concat") == 0) {
        pbw a = {0};
        pbw_str(&a, 1, "axis");
        pbw_int(&a, 3, 1);
        pbw_int(&a, 20, 2); /* AttributeProto.type = INT */
        pbw_msg(&node, 5, &a);
    }
    pbw_msg(&g, 1, &node);
    pbw_str(&g, 2, "g");
    pbw_value_info(&g, 11, "x", F32, 2, d);
    pbw_value_info(&g, 12, "y", F32, 2, dy);
    return pbw_model(&g, 8, 13);
}

/* Output of `onnx-run ARGS` with stderr; NULL when the CLI is unknown. */
static char *cli_out(const char *args, int *rc)
{
    const char *cli = getenv("ONR_CLI");
    if (!cli) return NULL;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s 2>&1", cli, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) n += got;
    buf[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

static char *write_tmp(const char *name, const pbw *m)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/onr_limits_%d_%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(m->b, 1, m->n, f), m->n);
    fclose(f);
    return path;
}

static void test_wide_nodes(void **state)
{
    (void)state;
    const char *ops[] = {"Sum", "Max", "Min", "Mean", "Concat"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        /* within the limit: loads and runs, with the right answer */
        pbw m = wide_node_model(ops[k], 60000);
        onr_session *s = NULL;
        onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
        if (st) fail_msg("%s with 60000 inputs: %s", ops[k], onr_session_errmsg(s));
        float xv[2] = {0.5f, -1.f};
        int64_t d[] = {1, 2};
        onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, d, xv);
        st = onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x);
        if (st) fail_msg("%s with 60000 inputs: %s", ops[k], onr_session_errmsg(s));
        const onr_tensor *y = onr_session_output(s, 0);
        const float *yv = onr_tensor_data(y);
        if (strcmp(ops[k], "Sum") == 0) assert_true(yv[0] == 30000.f && yv[1] == -60000.f);
        else if (strcmp(ops[k], "Concat") == 0)
            assert_true(onr_tensor_dims(y)[1] == 120000 && yv[119998] == 0.5f);
        else assert_true(yv[0] == 0.5f && yv[1] == -1.f);
        onr_tensor_free(x);
        onr_session_free(s);
        /* the CLI too (generated input; once is enough) */
        if (k > 0) {
            free(m.b);
            continue;
        }
        char *p = write_tmp("wide.onnx", &m), args[512];
        snprintf(args, sizeof args, "run '%s'", p);
        int rc;
        char *out = cli_out(args, &rc);
        if (out && rc != 0) fail_msg("onnx-run %s (%s): exit %d: %.500s", args, ops[k], rc, out);
        free(out);
        unlink(p);
        free(m.b);
    }
    /* beyond the limit: refused with the limit named, no crash */
    pbw m = wide_node_model("Sum", ONR_MAX_NODE_IO + 1);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_E_MODEL);
    if (!strstr(onr_session_errmsg(s), "inputs") || !strstr(onr_session_errmsg(s), "limit"))
        fail_msg("message: %s", onr_session_errmsg(s));
    onr_session_free(s);
    free(m.b);
}

/* n graph inputs x0..x{n-1}, float [1], y = x0 (Identity). */
static pbw many_inputs_model(int n)
{
    pbw g = {0};
    int64_t d[] = {1};
    char name[32];
    pbw_node(&g, "Identity", "id", (const char *[]){"x0", NULL}, (const char *[]){"y", NULL},
             NULL);
    pbw_str(&g, 2, "g");
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "x%d", i);
        pbw_value_info(&g, 11, name, F32, 1, d);
    }
    pbw_value_info(&g, 12, "y", F32, 1, d);
    return pbw_model(&g, 8, 13);
}

static void test_many_graph_inputs(void **state)
{
    (void)state;
    /* 600000 graph inputs: over the limit, refused at load with the limit named */
    pbw m = many_inputs_model(600000);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_E_MODEL);
    if (!strstr(onr_session_errmsg(s), "graph inputs") || !strstr(onr_session_errmsg(s), "limit"))
        fail_msg("message: %s", onr_session_errmsg(s));
    onr_session_free(s);
    char *p = write_tmp("many.onnx", &m), args[512];
    snprintf(args, sizeof args, "run '%s'", p);
    int rc;
    char *out = cli_out(args, &rc);
    if (out && (rc != 1 || !strstr(out, "limit")))
        fail_msg("onnx-run %s: exit %d: %.500s", args, rc, out);
    free(out);
    unlink(p);
    free(m.b);
    /* at the limit's scale: the CLI binds and generates them all (heap, not stack) */
    m = many_inputs_model(50000);
    p = write_tmp("many.onnx", &m);
    out = cli_out(args, &rc);
    if (out && rc != 0) fail_msg("onnx-run %s: exit %d: %.500s", args, rc, out);
    free(out);
    unlink(p);
    free(m.b);
}

/* An absurd thread count through the API is capped, not passed to OpenMP
 * (which fails to create 10^9 threads); the CLI refuses it (test_cli_strict). */
static void test_absurd_threads(void **state)
{
    (void)state;
    pbw m = many_inputs_model(1);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 1000000000);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &s), ONR_OK);
    assert_int_equal(onr_session_threads(s), ONR_MAX_THREADS);
    float v = 2;
    int64_t d[] = {1};
    onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 1, d, &v);
    assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
    onr_tensor_free(x);
    onr_session_free(s);
    onr_options_free(o);
    free(m.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absurd_threads),
        cmocka_unit_test(test_wide_nodes),
        cmocka_unit_test(test_many_graph_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
