/*
 * test_op_arity.c - every registered operator, given outputs it does not
 * expect: the first output omitted ("") while a later one is used, a
 * middle one omitted, more outputs than it defines; and inputs omitted
 * or of the other usual type. Whatever the op makes of it, opening and
 * running the model ends in a status and a message, never a crash (issue
 * 16: the fuzzer found a Size node with outputs ["", "z"] writing through
 * its missing output 0 while the planner folded it). Each op runs in a
 * child process, so one crash names its op and the rest still run; every
 * op and pattern that crashed is listed.
 *
 * Models: y... = op(a, b, c) with a..c of shape [2, 3], either graph
 * inputs (the kernels run) or initializers (the planner folds them), all
 * float, or a float then int64 ones holding 1 (Reshape's shape, Gather's
 * indices, ...).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7 };

static const char *const out_patterns[][5] = {
    {"y", NULL},                /* as most ops define */
    {"y", "z", NULL},           /* one more */
    {"", "z", NULL},            /* output 0 omitted, output 1 used */
    {"", "", "z", NULL},        /* the first two omitted */
    {"y", "", "z", NULL},       /* a middle one omitted */
    {"y", "z", "w", "v", NULL}, /* more than most ops define */
    {"", NULL},                 /* the only output omitted: a dead node */
};
enum { N_OUT_PATTERNS = sizeof out_patterns / sizeof out_patterns[0] };

static const char *const in_patterns[][4] = {
    {NULL}, /* none */
    {"a", NULL},
    {"a", "b", NULL},
    {"a", "b", "c", NULL},
    {"", "b", NULL},      /* input 0 omitted */
    {"a", "", "c", NULL}, /* a middle one omitted */
};
enum { N_IN_PATTERNS = sizeof in_patterns / sizeof in_patterns[0] };

/* The float inputs' shapes: [2, 3] with every output pattern, the others
 * (a scalar, an empty tensor, rank 4) with the first two. */
static const struct {
    int rank;
    int64_t dims[4];
    const char *name;
} shapes[] = {
    {2, {2, 3}, "[2, 3]"},
    {0, {0}, "scalars"},
    {2, {0, 3}, "[0, 3]"},
    {4, {1, 2, 3, 4}, "[1, 2, 3, 4]"},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

typedef struct arity_case {
    int ip, op_i, konst, ints, sh;
} arity_case;

/* Case number i of the sweep, 0 <= i < n_cases(); 0 past the end. */
static int case_at(int i, arity_case *c)
{
    for (c->sh = 0; c->sh < N_SHAPES; c->sh++) {
        int outs = c->sh ? 2 : N_OUT_PATTERNS, per = N_IN_PATTERNS * outs * 4;
        if (i >= per) {
            i -= per;
            continue;
        }
        c->ip = i / (outs * 4);
        c->op_i = i / 4 % outs;
        c->konst = i / 2 % 2;
        c->ints = i % 2;
        return 1;
    }
    return 0;
}

/* Open (and when that succeeds, run) one model; the status does not matter. */
static void try_one(const char *op, const char *domain, int since, const arity_case *c)
{
    static const int64_t d1[] = {1};
    static const float f[24] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
    static const int64_t one[1] = {1};
    const int rank = shapes[c->sh].rank;
    const int64_t *dims = shapes[c->sh].dims;
    int64_t numel = 1;
    for (int d = 0; d < rank; d++)
        numel *= dims[d];
    pbw g = {0};
    pbw_node_in(&g, 1, op, *domain ? domain : NULL, "the_node", in_patterns[c->ip],
                out_patterns[c->op_i], NULL);
    int n_bind = 0;
    const char *names[4];
    onr_tensor *bind[4];
    for (int k = 0; in_patterns[c->ip][k]; k++) {
        const char *nm = in_patterns[c->ip][k];
        if (!*nm)
            continue;
        int i64 = c->ints && k > 0;
        if (c->konst) {
            if (i64)
                pbw_init_i64(&g, nm, 1, d1, one, 1);
            else
                pbw_init_f32(&g, nm, rank, dims, f, (size_t)numel);
        } else {
            pbw_value_info(&g, 11, nm, i64 ? I64 : F32, i64 ? 1 : rank, i64 ? d1 : dims);
            names[n_bind] = nm;
            bind[n_bind] = i64 ? onr_tensor_wrap(ONR_INT64, 1, d1, (void *)one)
                               : onr_tensor_wrap(ONR_FLOAT, rank, dims, (void *)f);
            n_bind++;
        }
    }
    int n_graph_out = 0;
    for (int o = 0; out_patterns[c->op_i][o]; o++) {
        if (!*out_patterns[c->op_i][o])
            continue;
        pbw_value_info(&g, 12, out_patterns[c->op_i][o], F32, -1, NULL);
        n_graph_out++;
    }
    if (!n_graph_out) { /* the node is dead; the graph still needs an output */
        pbw_node(&g, "Identity", NULL, (const char *[]){"a", NULL}, (const char *[]){"q", NULL},
                 NULL);
        pbw_value_info(&g, 12, "q", F32, -1, NULL);
    }
    int64_t opset = *domain ? 17 : since;
    if (opset < 7)
        opset = 7;
    const char *doms[2] = {"", domain};
    int64_t vers[2] = {opset, since > 0 ? since : 1};
    pbw m = pbw_model_opsets(&g, 8, *domain ? 2 : 1, doms, vers);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 1);
    onr_session *s = NULL;
    if (onr_session_open_memory(m.b, m.n, o, &s) == ONR_OK)
        (void)onr_session_run(s, n_bind, names, (const onr_tensor *const *)bind);
    onr_session_free(s);
    onr_options_free(o);
    for (int i = 0; i < n_bind; i++)
        onr_tensor_free(bind[i]);
    free(m.b);
}


/* Cases from..to-1 of op in a child; its wait status. */
static int run_child(const char *op, const char *domain, int since, int from, int to)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tk_child_setup(120); /* a hang ends as SIGALRM (14) */
        arity_case c;
        for (int i = from; i < to && case_at(i, &c); i++)
            try_one(op, domain, since, &c);
        _exit(0);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
        return -1;
    return ws;
}

static int failed(int ws) { return ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0; }

/* The first case of op that fails alone, described in buf. */
static void name_case(const char *op, const char *domain, int since, char *buf, size_t len)
{
    snprintf(buf, len, "no single case (an earlier one's state?)");
    arity_case c;
    for (int i = 0; case_at(i, &c); i++) {
        if (!failed(run_child(op, domain, since, i, i + 1)))
            continue;
        size_t n = (size_t)snprintf(buf, len, "inputs (");
        for (int k = 0; in_patterns[c.ip][k] && n < len; k++)
            n += (size_t)snprintf(buf + n, len - n, "%s'%s'", k ? ", " : "", in_patterns[c.ip][k]);
        if (n < len)
            n += (size_t)snprintf(buf + n, len - n, ") outputs (");
        for (int k = 0; out_patterns[c.op_i][k] && n < len; k++)
            n += (size_t)snprintf(buf + n, len - n, "%s'%s'", k ? ", " : "",
                                  out_patterns[c.op_i][k]);
        if (n < len)
            snprintf(buf + n, len - n, "), %s, %s, floats %s", c.konst ? "initializers" : "inputs",
                     c.ints ? "int64 after the first" : "all float", shapes[c.sh].name);
        return;
    }
}

static void test_every_op_any_arity(void **state)
{
    (void)state;
    int n = onr_op_count(), bad = 0, tried = 0;
    char report[8192];
    size_t used = 0;
    report[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *domain = NULL;
        int since = 0, until = 0;
        const char *op = onr_op_info(i, &domain, &since, &until);
        if (!op)
            continue;
        if (!domain)
            domain = "";
        tried++;
        int ws = run_child(op, domain, since, 0, 1 << 30);
        if (!failed(ws))
            continue;
        char pat[512];
        name_case(op, domain, since, pat, sizeof pat);
        bad += tk_child_report(report, sizeof report, &used, domain, op, since, ws, pat);
    }
    arity_case c;
    int n_cases = 0;
    while (case_at(n_cases, &c))
        n_cases++;
    char what[64];
    snprintf(what, sizeof what, "%d cases each", n_cases);
    tk_child_finish(tried, what, bad, report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_any_arity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
