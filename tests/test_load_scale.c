/*
 * test_load_scale.c - loading stays linear in the model's size (issue 16,
 * item 7). Models of a few MB shaped to hit every lookup the loader and
 * planner make: 100000 distinct unknown op types, unknown ops behind many
 * known ones, 20000 model-local functions, a function with 30000 formal
 * inputs, 100000 value names, many opset imports, a graph of 50000 inputs
 * bound by name. Before, such files took 23-46 s (each a quadratic scan or a
 * hash of unseeded, attacker-chosen collisions).
 *
 * The check is a bound of ONR_SCALE_LIMIT_S (10 s) of the process's CPU time
 * per model (CPU time, not wall time, so a machine shared with other jobs
 * does not trip it): not a benchmark (each loads in well under a second
 * here, a few seconds at most under ASan), only a tripwire with a wide margin
 * that a quadratic path cannot pass at these sizes (10^9-10^10 string
 * compares; the unknown-op case took 150 s before). An operation counter
 * would be exact but would have to be threaded through every lookup in the
 * library for a test's sake.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/ir.h"
#include "kutil.h"
#include "pbw.h"

#define ONR_SCALE_LIMIT_S 10.0

enum { F32 = 1 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Opens m from memory and checks the status, a word of the message and the
 * time it took; frees m. */
static void expect_open(pbw *m, const char *what, onr_status want, const char *word)
{
    onr_session *s = NULL;
    double t0 = now_s();
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    double dt = now_s() - t0;
    print_message("%s: %zu bytes, status %d, %.3f s\n", what, m->n, st, dt);
    if (st != want) fail_msg("%s: status %d, expected %d: %s", what, st, want, onr_session_errmsg(s));
    if (word && !strstr(onr_session_errmsg(s), word))
        fail_msg("%s: message lacks '%s': %.300s", what, word, onr_session_errmsg(s));
    if (dt > ONR_SCALE_LIMIT_S)
        fail_msg("%s took %.1f s to open (limit %.0f s): a quadratic path?", what, dt,
                 ONR_SCALE_LIMIT_S);
    onr_session_free(s);
    free(m->b);
}

static void node1(pbw *g, int field, const char *op, const char *domain, const char *in,
                  const char *out)
{
    pbw_node_in(g, field, op, domain, NULL, (const char *[]){in, NULL},
                (const char *[]){out, NULL}, NULL);
}

static void io(pbw *g, const char *in, const char *out)
{
    int64_t d[] = {1, 4};
    pbw_value_info(g, 11, in, F32, 2, d);
    pbw_value_info(g, 12, out, F32, 2, d);
}

/* 100000 nodes, each a distinct unknown op type (and the same, repeated, after
 * 50000 known nodes): every missing op is reported once, in linear time. */
static void test_unknown_ops(void **state)
{
    (void)state;
    enum { N = 100000 };
    char a[32], b[32], op[32];
    pbw g = {0};
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, i ? "v%d" : "x", i);
        snprintf(b, sizeof b, i == N - 1 ? "y" : "v%d", i + 1);
        snprintf(op, sizeof op, "NoSuchOp%d", i);
        node1(&g, 1, op, NULL, a, b);
    }
    io(&g, "x", "y");
    pbw m = pbw_model(&g, 8, 13);
    expect_open(&m, "100000 distinct unknown ops", ONR_E_UNSUPPORTED, "NoSuchOp0 ");

    g = (pbw){0};
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, i ? "v%d" : "x", i);
        snprintf(b, sizeof b, i == N - 1 ? "y" : "v%d", i + 1);
        node1(&g, 1, i < N / 2 ? "Relu" : "Frobnicate", NULL, a, b);
    }
    io(&g, "x", "y");
    m = pbw_model(&g, 8, 13);
    expect_open(&m, "50000 Relu then 50000 unknown", ONR_E_UNSUPPORTED, "Frobnicate");
}

/* ModelProto with functions appended (field 25) and a "local" opset import. */
static pbw model_with(pbw *g, pbw *funcs)
{
    pbw m = pbw_model(g, 8, 13), os = {0};
    pbw_str(&os, 1, "local");
    pbw_int(&os, 2, 1);
    pbw_msg(&m, 8, &os);
    pbw_raw(&m, funcs->b, funcs->n);
    free(funcs->b);
    return m;
}

/* FunctionProto `name` in domain "local": out = Relu(in). */
static void relu_function(pbw *funcs, const char *name)
{
    pbw f = {0}, os = {0};
    pbw_str(&f, 1, name);
    pbw_str(&f, 4, "in");
    pbw_str(&f, 5, "out");
    node1(&f, 7, "Relu", NULL, "in", "out");
    pbw_str(&os, 1, "");
    pbw_int(&os, 2, 13);
    pbw_msg(&f, 9, &os);
    pbw_str(&f, 10, "local");
    pbw_msg(funcs, 25, &f);
}

static void test_many_functions(void **state)
{
    (void)state;
    enum { N = 20000 };
    char a[32], b[32], fn[32];
    pbw g = {0}, funcs = {0};
    for (int i = 0; i < N; i++) {
        snprintf(fn, sizeof fn, "F%d", i);
        relu_function(&funcs, fn);
        snprintf(a, sizeof a, i ? "v%d" : "x", i);
        snprintf(b, sizeof b, i == N - 1 ? "y" : "v%d", i + 1);
        node1(&g, 1, fn, "local", a, b);
    }
    io(&g, "x", "y");
    pbw m = model_with(&g, &funcs);
    expect_open(&m, "20000 model-local functions, each called", ONR_OK, NULL);

    /* the same function defined twice is refused (found by the same index) */
    g = (pbw){0};
    funcs = (pbw){0};
    relu_function(&funcs, "Twice");
    relu_function(&funcs, "Twice");
    node1(&g, 1, "Twice", "local", "x", "y");
    io(&g, "x", "y");
    m = model_with(&g, &funcs);
    expect_open(&m, "a function defined twice", ONR_E_MODEL, "Twice");
}

/* One function with 30000 formal inputs, its body one Sum over all of them
 * and 30000 Identity nodes: binding formals to actuals is a lookup, not a scan. */
static void test_wide_function(void **state)
{
    (void)state;
    enum { N = 30000 };
    char name[32];
    pbw g = {0}, funcs = {0}, f = {0}, os = {0}, sum = {0}, call = {0};
    pbw_str(&f, 1, "Wide");
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "in%d", i);
        pbw_str(&f, 4, name);
        pbw_str(&sum, 1, name);
        pbw_str(&call, 1, "x");
    }
    pbw_str(&f, 5, "out");
    pbw_str(&sum, 2, "s");
    pbw_str(&sum, 4, "Sum");
    pbw_msg(&f, 7, &sum);
    node1(&f, 7, "Relu", NULL, "s", "out");
    pbw_str(&os, 1, "");
    pbw_int(&os, 2, 13);
    pbw_msg(&f, 9, &os);
    pbw_str(&f, 10, "local");
    pbw_msg(&funcs, 25, &f);
    pbw_str(&call, 2, "y");
    pbw_str(&call, 4, "Wide");
    pbw_str(&call, 7, "local");
    pbw_msg(&g, 1, &call);
    io(&g, "x", "y");
    pbw m = model_with(&g, &funcs);
    expect_open(&m, "a function with 30000 inputs", ONR_OK, NULL);
}

/* 100000 values in a chain, names chosen to share long prefixes. */
static void test_many_names(void **state)
{
    (void)state;
    enum { N = 100000 };
    char a[64], b[64];
    pbw g = {0};
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, i ? "common/prefix/%d" : "x", i);
        snprintf(b, sizeof b, i == N - 1 ? "y" : "common/prefix/%d", i + 1);
        node1(&g, 1, "Relu", NULL, a, b);
    }
    io(&g, "x", "y");
    pbw m = pbw_model(&g, 8, 13);
    expect_open(&m, "100000 values", ONR_OK, NULL);
}

/* Thousands of opset imports of distinct domains, each checked once. */
static void test_many_opset_imports(void **state)
{
    (void)state;
    pbw g = {0};
    node1(&g, 1, "Relu", NULL, "x", "y");
    io(&g, "x", "y");
    pbw m = pbw_model(&g, 8, 13);
    char d[32];
    for (int i = 0; i < ONR_MAX_OPSET_IMPORTS - 1; i++) {
        pbw os = {0};
        snprintf(d, sizeof d, "com.example.d%d", i);
        pbw_str(&os, 1, d);
        pbw_int(&os, 2, 1);
        pbw_msg(&m, 8, &os);
    }
    expect_open(&m, "many opset imports", ONR_OK, NULL);
    /* one more than the limit: refused before unpacking, the limit named */
    g = (pbw){0};
    node1(&g, 1, "Relu", NULL, "x", "y");
    io(&g, "x", "y");
    m = pbw_model(&g, 8, 13);
    for (int i = 0; i < ONR_MAX_OPSET_IMPORTS; i++) {
        pbw os = {0};
        snprintf(d, sizeof d, "com.example.d%d", i);
        pbw_str(&os, 1, d);
        pbw_int(&os, 2, 1);
        pbw_msg(&m, 8, &os);
    }
    expect_open(&m, "too many opset imports", ONR_E_MODEL, "opset imports (the limit)");
}

/* 50000 graph inputs bound by name in reverse order. */
static void test_bind_by_name(void **state)
{
    (void)state;
    enum { N = 50000 };
    pbw g = {0};
    int64_t d[] = {1};
    char name[32];
    node1(&g, 1, "Identity", NULL, "x0", "y");
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "x%d", i);
        pbw_value_info(&g, 11, name, F32, 1, d);
    }
    pbw_value_info(&g, 12, "y", F32, 1, d);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_OK);
    free(m.b);
    char **names = calloc(N, sizeof *names);
    onr_tensor **ins = calloc(N, sizeof *ins);
    float v = 3;
    for (int i = 0; i < N; i++) {
        names[i] = malloc(16);
        snprintf(names[i], 16, "x%d", N - 1 - i);
        ins[i] = onr_tensor_wrap(ONR_FLOAT, 1, d, &v);
    }
    double t0 = now_s();
    assert_int_equal(onr_session_run(s, N, (const char *const *)names,
                                     (const onr_tensor *const *)ins),
                     ONR_OK);
    double dt = now_s() - t0;
    print_message("binding 50000 inputs by name: %.3f s\n", dt);
    if (dt > ONR_SCALE_LIMIT_S) fail_msg("binding 50000 inputs by name took %.1f s", dt);
    assert_true(*(const float *)onr_tensor_data(onr_session_output(s, 0)) == 3.f);
    /* an unknown name is still named */
    snprintf(names[7], 16, "nope");
    assert_int_equal(onr_session_run(s, N, (const char *const *)names,
                                     (const onr_tensor *const *)ins),
                     ONR_E_INPUT);
    assert_non_null(strstr(onr_session_errmsg(s), "'nope'"));
    for (int i = 0; i < N; i++) {
        free(names[i]);
        onr_tensor_free(ins[i]);
    }
    free(names);
    free(ins);
    onr_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_ops),       cmocka_unit_test(test_many_functions),
        cmocka_unit_test(test_wide_function),     cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_many_opset_imports), cmocka_unit_test(test_bind_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
