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
    {"", "z", NULL},          /* output 0 omitted, output 1 used */
    {"", "", "z", NULL},      /* the first two omitted */
    {"y", "", "z", NULL},     /* a middle one omitted */
    {"y", "z", "w", "v", NULL}, /* more than most ops define */
    {"", NULL},               /* the only output omitted: a dead node */
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

/* Open (and when that succeeds, run) one model; the status does not matter. */
static void try_one(const char *op, const char *domain, int since, int ip, int op_i, int konst,
                    int ints)
{
    static const int64_t d2[] = {2, 3}, d1[] = {1};
    static const float f[6] = {1, 2, 3, 4, 5, 6};
    static const int64_t one[1] = {1};
    pbw g = {0};
    pbw_node_in(&g, 1, op, *domain ? domain : NULL, "the_node", in_patterns[ip],
                out_patterns[op_i], NULL);
    int n_bind = 0;
    const char *names[4];
    onr_tensor *bind[4];
    for (int k = 0; in_patterns[ip][k]; k++) {
        const char *nm = in_patterns[ip][k];
        if (!*nm) continue;
        int i64 = ints && k > 0;
        if (konst) {
            if (i64) pbw_init_i64(&g, nm, 1, d1, one, 1);
            else pbw_init_f32(&g, nm, 2, d2, f, 6);
        } else {
            pbw_value_info(&g, 11, nm, i64 ? I64 : F32, i64 ? 1 : 2, i64 ? d1 : d2);
            names[n_bind] = nm;
            bind[n_bind] = i64 ? onr_tensor_wrap(ONR_INT64, 1, d1, (void *)one)
                               : onr_tensor_wrap(ONR_FLOAT, 2, d2, (void *)f);
            n_bind++;
        }
    }
    int n_graph_out = 0;
    for (int o = 0; out_patterns[op_i][o]; o++) {
        if (!*out_patterns[op_i][o]) continue;
        pbw_value_info(&g, 12, out_patterns[op_i][o], F32, -1, NULL);
        n_graph_out++;
    }
    if (!n_graph_out) { /* the node is dead; the graph still needs an output */
        pbw_node(&g, "Identity", NULL, (const char *[]){"a", NULL}, (const char *[]){"q", NULL},
                 NULL);
        pbw_value_info(&g, 12, "q", F32, -1, NULL);
    }
    int64_t opset = *domain ? 17 : since;
    if (opset < 7) opset = 7;
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
    for (int i = 0; i < n_bind; i++) onr_tensor_free(bind[i]);
    free(m.b);
}

/* A child runs with the default signal actions (cmocka's handlers would
 * turn a crash into a test report of its own) and writes nothing: the
 * parent reports. */
static void child_setup(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    if (!freopen("/dev/null", "w", stdout)) _exit(3);
}

/* Every pattern for one op, in this process. */
static void try_op(const char *op, const char *domain, int since)
{
    for (int ip = 0; ip < N_IN_PATTERNS; ip++)
        for (int op_i = 0; op_i < N_OUT_PATTERNS; op_i++)
            for (int konst = 0; konst < 2; konst++)
                for (int ints = 0; ints < 2; ints++)
                    try_one(op, domain, since, ip, op_i, konst, ints);
}

/* The first crashing pattern of op, found again pattern by pattern in
 * children (for the message). */
static void name_pattern(const char *op, const char *domain, int since, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    for (int ip = 0; ip < N_IN_PATTERNS; ip++)
        for (int op_i = 0; op_i < N_OUT_PATTERNS; op_i++)
            for (int konst = 0; konst < 2; konst++)
                for (int ints = 0; ints < 2; ints++) {
                    fflush(NULL);
                    pid_t pid = fork();
                    if (pid == 0) {
                        child_setup();
                        try_one(op, domain, since, ip, op_i, konst, ints);
                        _exit(0);
                    }
                    int ws = 0;
                    if (pid < 0 || waitpid(pid, &ws, 0) < 0) continue;
                    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) continue;
                    size_t n = 0;
                    n += (size_t)snprintf(buf + n, len - n, "inputs (");
                    for (int k = 0; in_patterns[ip][k] && n < len; k++)
                        n += (size_t)snprintf(buf + n, len - n, "%s'%s'", k ? ", " : "",
                                              in_patterns[ip][k]);
                    if (n < len) n += (size_t)snprintf(buf + n, len - n, ") outputs (");
                    for (int k = 0; out_patterns[op_i][k] && n < len; k++)
                        n += (size_t)snprintf(buf + n, len - n, "%s'%s'", k ? ", " : "",
                                              out_patterns[op_i][k]);
                    if (n < len)
                        snprintf(buf + n, len - n, ") %s, %s", konst ? "initializers" : "inputs",
                                 ints ? "int64 after the first" : "all float");
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
        if (!op) continue;
        if (!domain) domain = "";
        tried++;
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_setup();
            try_op(op, domain, since);
            _exit(0);
        }
        int ws = 0;
        assert_true(waitpid(pid, &ws, 0) == pid);
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) continue;
        char pat[512];
        name_pattern(op, domain, since, pat, sizeof pat);
        bad++;
        if (used < sizeof report)
            used += (size_t)snprintf(report + used, sizeof report - used,
                                     "  %s%s%s (since %d): %s %d; %s\n", domain,
                                     *domain ? "." : "", op, since,
                                     WIFSIGNALED(ws) ? "signal" : "exit status",
                                     WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws), pat);
    }
    print_message("%d op rows tried, %d patterns each\n", tried,
                  N_IN_PATTERNS * N_OUT_PATTERNS * 4);
    if (bad) {
        fprintf(stderr, "%d ops crashed:\n%s", bad, report);
        fail_msg("%d ops crashed (listed above)", bad);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_any_arity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
