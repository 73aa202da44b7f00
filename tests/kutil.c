/* kutil.c - see kutil.h. */
#include "kutil.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

uint32_t tk_last_consumed;

/* The tests compare runs on 1, 2 and 3 threads, bit for bit or within a
 * tolerance. The team (gemm/team.h) backed those off to one thread when
 * another test was busy beside them (ctest -j2) or when they asked for
 * more threads than the CPUs (3 on a 2-CPU machine): the multi-thread runs
 * silently tested the serial split (test_dwconv: 215 of 10876 parallel
 * loops on a quiet 2-CPU machine ran on their threads). A test that links
 * this file keeps its threads (test_team, which tests the back-off, does
 * not link it). */
__attribute__((constructor)) static void tk_team_keeps_threads(void) { onr_team_keep_threads(1); }

onr_node *tk_node(const char *op_type)
{
    onr_node *n = calloc(1, sizeof *n);
    assert_non_null(n);
    n->name = onr_strdup("test_node");
    n->op_type = onr_strdup(op_type);
    n->domain = onr_strdup("");
    return n;
}

void tk_node_free(onr_node *n)
{
    /* reuse the graph destructor: wrap the node in a one-node graph */
    onr_graph *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->nodes = n;
    g->n_nodes = 1;
    onr_graph_free(g);
}

static onr_attr *add_attr(onr_node *n, const char *name, onr_attr_type type)
{
    n->attrs = realloc(n->attrs, (size_t)(n->n_attr + 1) * sizeof *n->attrs);
    assert_non_null(n->attrs);
    onr_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = onr_strdup(name);
    a->type = type;
    return a;
}

void tk_attr_int(onr_node *n, const char *name, int64_t v) { add_attr(n, name, ONR_ATTR_INT)->i = v; }
void tk_attr_float(onr_node *n, const char *name, float v) { add_attr(n, name, ONR_ATTR_FLOAT)->f = v; }

void tk_attr_string(onr_node *n, const char *name, const char *v)
{
    onr_attr *a = add_attr(n, name, ONR_ATTR_STRING);
    a->s = onr_strdup(v);
    a->slen = strlen(v);
}

void tk_attr_ints(onr_node *n, const char *name, int count, const int64_t *v)
{
    onr_attr *a = add_attr(n, name, ONR_ATTR_INTS);
    a->n = (size_t)count;
    a->ints = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    if (count) memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

void tk_attr_floats(onr_node *n, const char *name, int count, const float *v)
{
    onr_attr *a = add_attr(n, name, ONR_ATTR_FLOATS);
    a->n = (size_t)count;
    a->floats = malloc(sizeof(float) * (size_t)(count ? count : 1));
    if (count) memcpy(a->floats, v, sizeof(float) * (size_t)count);
}

void tk_attr_tensor(onr_node *n, const char *name, onr_tensor *t)
{
    add_attr(n, name, ONR_ATTR_TENSOR)->t = t;
}

onr_tensor *tk_typed(onr_dtype dt, int rank, const int64_t *dims, const void *vals)
{
    onr_tensor *t = onr_tensor_new(dt, rank, dims);
    assert_non_null(t);
    if (vals && onr_tensor_nbytes(t)) memcpy(t->data, vals, onr_tensor_nbytes(t));
    return t;
}

onr_tensor *tk_f32(int rank, const int64_t *dims, const float *vals) { return tk_typed(ONR_FLOAT, rank, dims, vals); }
onr_tensor *tk_i64(int rank, const int64_t *dims, const int64_t *vals) { return tk_typed(ONR_INT64, rank, dims, vals); }
onr_tensor *tk_i32(int rank, const int64_t *dims, const int32_t *vals) { return tk_typed(ONR_INT32, rank, dims, vals); }
onr_tensor *tk_bool(int rank, const int64_t *dims, const uint8_t *vals) { return tk_typed(ONR_BOOL, rank, dims, vals); }

onr_tensor *tk_rand_f32(int rank, const int64_t *dims, uint32_t seed)
{
    onr_tensor *t = tk_typed(ONR_FLOAT, rank, dims, NULL);
    uint32_t s = seed * 2654435761u + 1;
    float *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) * (1.0 / 16777216.0)) * 2.f - 1.f;
    }
    return t;
}

onr_status tk_run(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                  onr_tensor **out, int nthreads, onr_err *err)
{
    return tk_run_const(n, opset, n_in, in, 0, n_out, out, nthreads, err);
}

onr_status tk_run_const(onr_node *n, int64_t opset, int n_in, onr_tensor **in,
                        uint32_t const_mask, int n_out, onr_tensor **out, int nthreads,
                        onr_err *err)
{
    onr_err local = {0};
    if (!err) err = &local;
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    const onr_op *op = onr_op_find(n->domain, n->op_type, opset);
    for (int i = 0; i < n_out; i++) {
        out[i] = calloc(1, sizeof(onr_tensor));
        assert_non_null(out[i]);
    }
    if (!op) return onr_seterr(err, ONR_E_UNSUPPORTED, "no kernel for %s at opset %lld", n->op_type, (long long)opset);
    uint8_t *in_const = calloc((size_t)n_in + 1, 1);
    assert_non_null(in_const);
    for (int k = 0; k < n_in && k < 32; k++) in_const[k] = in[k] && (const_mask >> k & 1u);
    onr_status st = onr_exec_node(n, op, opset, in, n_in, in_const, out, n_out, nthreads,
                                  &tk_last_consumed, err);
    free(in_const);
    if (st && err == &local) fprintf(stderr, "tk_run(%s): %s\n", n->op_type, local.msg);
    return st;
}

void tk_free_all(int n, onr_tensor **ts)
{
    for (int i = 0; i < n; i++) {
        onr_tensor_free(ts[i]);
        ts[i] = NULL;
    }
}

onr_tensor *tk_run1(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int nthreads)
{
    onr_tensor *out[1] = {0};
    onr_err err = {0};
    onr_status st = tk_run(n, opset, n_in, in, 1, out, nthreads, &err);
    if (st != ONR_OK) fail_msg("%s failed: %s", n->op_type, err.msg);
    return out[0];
}

void tk_expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                    onr_status code, const char *needle)
{
    onr_tensor *out[8] = {0};
    onr_err err = {0};
    if (n_out < 0 || n_out > 8) fail_msg("tk_expect_fail: %d outputs, at most 8", n_out);
    onr_status st = tk_run(n, opset, n_in, in, n_out, out, 1, &err);
    if (st != code) fail_msg("%s: expected status %d, got %d (%s)", n->op_type, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(n_out, out); /* tk_run fills the outputs even when the op fails */
}

void tk_assert_shape(const onr_tensor *t, int rank, const int64_t *dims)
{
    assert_non_null(t);
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++) assert_int_equal(t->dims[i], dims[i]);
}

void tk_assert_close_f32(const onr_tensor *t, const float *expected, int64_t n, float rtol,
                         float atol)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, ONR_FLOAT);
    assert_int_equal(t->numel, n);
    const float *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        float e = expected[i], g = p[i];
        int ok = (isnan(e) && isnan(g)) || (e == g) || fabsf(g - e) <= atol + rtol * fabsf(e);
        if (!ok) fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, g, e);
    }
}

void tk_assert_eq_i64(const onr_tensor *t, const int64_t *expected, int64_t n)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, ONR_INT64);
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++) assert_int_equal(((const int64_t *)t->data)[i], expected[i]);
}

/* ---- fusions: fused vs unfused -------------------------------------------- */

int tk_count_steps(const onr_session *s, const char *op)
{
    int n = 0, steps = onr_session_step_count(s);
    for (int i = 0; i < steps; i++) {
        const char *t = onr_session_step_op(s, i, NULL);
        if (op && t && strcmp(t, op) == 0) n++;
    }
    return n;
}

static onr_session *tk_open_fuse(const void *model, size_t len, int fuse, int nthreads)
{
    onr_options *o = onr_options_new();
    assert_non_null(o);
    onr_options_set_fuse(o, fuse);
    onr_options_set_threads(o, nthreads);
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(model, len, o, &s);
    onr_options_free(o);
    if (st) fail_msg("open (fuse=%d) failed: %s", fuse, s ? onr_session_errmsg(s) : "no session");
    return s;
}

static void tk_compare_outputs(const onr_tensor *got, const onr_tensor *want, int k, float rtol,
                               float atol)
{
    assert_int_equal(got->dtype, want->dtype);
    assert_int_equal(got->rank, want->rank);
    for (int d = 0; d < want->rank; d++) assert_int_equal(got->dims[d], want->dims[d]);
    if (want->dtype == ONR_STRING) return;
    int is_float = want->dtype == ONR_FLOAT || want->dtype == ONR_DOUBLE ||
                   want->dtype == ONR_FLOAT16 || want->dtype == ONR_BFLOAT16;
    for (int64_t i = 0; i < want->numel; i++) {
        double g = onr_get_f64(got, i), e = onr_get_f64(want, i);
        int ok = is_float ? ((isnan(e) && isnan(g)) || g == e || fabs(g - e) <= atol + rtol * fabs(e))
                          : g == e;
        if (!ok)
            fail_msg("output %d element %lld: fused %.9g, unfused %.9g (rtol %g, atol %g)", k,
                     (long long)i, g, e, (double)rtol, (double)atol);
    }
}

void tk_fuse_check(const void *model, size_t len, int n_in, onr_tensor *const *in,
                   const char *op, float rtol, float atol, int nthreads, tk_fuse_report *r)
{
    onr_session *f = tk_open_fuse(model, len, 1, nthreads);
    onr_session *u = tk_open_fuse(model, len, 0, nthreads);
    if (onr_session_run(f, n_in, NULL, (const onr_tensor *const *)in))
        fail_msg("fused run failed: %s", onr_session_errmsg(f));
    if (onr_session_run(u, n_in, NULL, (const onr_tensor *const *)in))
        fail_msg("unfused run failed: %s", onr_session_errmsg(u));
    assert_int_equal(onr_session_output_count(f), onr_session_output_count(u));
    for (int k = 0; k < onr_session_output_count(u); k++)
        tk_compare_outputs(onr_session_output(f, k), onr_session_output(u, k), k, rtol, atol);
    memset(r, 0, sizeof *r);
    r->steps_fused = onr_session_step_count(f);
    r->steps_unfused = onr_session_step_count(u);
    for (int i = 0; i < r->steps_fused; i++) {
        const char *t = onr_session_step_op(f, i, NULL);
        if (!op || !t || strcmp(t, op) != 0) continue;
        r->n_op++;
        int nodes = 0;
        if (onr_session_step_fused(f, i, &nodes)) {
            r->n_fused++;
            r->replaced += nodes;
        }
    }
    /* an unfused plan has no fused step */
    for (int i = 0; i < r->steps_unfused; i++) assert_null(onr_session_step_fused(u, i, NULL));
    onr_session_free(f);
    onr_session_free(u);
}

void tk_child_setup(unsigned alarm_s)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    if (!freopen("/dev/null", "w", stdout)) _exit(3);
    alarm(alarm_s);
}

int tk_child_report(char *report, size_t cap, size_t *used, const char *domain, const char *op,
                    int since, int ws, const char *where)
{
    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return 0;
    if (*used < cap)
        *used += (size_t)snprintf(report + *used, cap - *used, "  %s%s%s (since %d): %s %d; %s\n",
                                  domain, *domain ? "." : "", op, since,
                                  ws == -1             ? "fork failed"
                                  : WIFSIGNALED(ws)    ? "signal"
                                                       : "exit status",
                                  ws == -1 ? 0 : WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws),
                                  where);
    return 1;
}

void tk_child_finish(int tried, const char *what, int bad, const char *report)
{
    print_message("%d op rows tried, %s\n", tried, what);
    if (bad) {
        fprintf(stderr, "%d ops crashed:\n%s", bad, report);
        fail_msg("%d ops crashed (listed above)", bad);
    }
}
