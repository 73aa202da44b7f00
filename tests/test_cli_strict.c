/*
 * test_cli_strict.c - the command line never lets a mistake pass (issue 14
 * item 5, issue 16 item 11): a missing input once -i is used, a test path
 * that holds no case, an option of another command, an option without its
 * value, absurd --threads, each gets a clear message and a non-zero exit;
 * `test` reads every data set and shows the differences and the tolerance
 * on a failure; `profile` sorts op types by time; every command has its own
 * --help; `info --ops` lists the operators. Runs the CLI (ONR_CLI).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1 };

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/onr_cli_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* stdout + stderr of `onnx-run ARGS` (malloc'd); *rc its exit status. */
static char *cli(const char *args, int *rc)
{
    const char *exe = getenv("ONR_CLI");
    if (!exe) skip();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' %s 2>&1 </dev/null", exe, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

/* Runs the CLI and checks the exit status and that the output holds each of
 * the NULL-terminated words. */
static void expect(const char *args, int code, const char *const *words)
{
    int rc;
    char *out = cli(args, &rc);
    if (rc != code) fail_msg("onnx-run %s: exit %d, expected %d:\n%.2000s", args, rc, code, out);
    for (int i = 0; words && words[i]; i++)
        if (!strstr(out, words[i]))
            fail_msg("onnx-run %s: output lacks \"%s\":\n%.2000s", args, words[i], out);
    free(out);
}

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *path(const char *name)
{
    static char b[4][512];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* y = a + b + c (Sum), each float [2]; dims < 0 are symbolic. */
static const char *sum3_model(const char *name, int64_t dim)
{
    pbw g = {0};
    int64_t d[] = {dim};
    pbw_node(&g, "Sum", "sum", (const char *[]){"a", "b", "c", NULL},
             (const char *[]){"y", NULL}, NULL);
    pbw_value_info(&g, 11, "a", F32, 1, d);
    pbw_value_info(&g, 11, "b", F32, 1, d);
    pbw_value_info(&g, 11, "c", F32, 1, d);
    pbw_value_info(&g, 12, "y", F32, 1, d);
    pbw m = pbw_model(&g, 8, 13);
    const char *p = path(name);
    write_bytes(p, m.b, m.n);
    free(m.b);
    return p;
}

static const char *tensor_file(const char *name, const float *v, int64_t n)
{
    onr_tensor *t = onr_tensor_wrap(ONR_FLOAT, 1, &n, (void *)v);
    char msg[256];
    const char *p = path(name);
    assert_int_equal(onr_tensor_write_pb(t, "", p, msg, sizeof msg), ONR_OK);
    onr_tensor_free(t);
    return p;
}

static void test_every_input_once_i_is_used(void **state)
{
    (void)state;
    char args[2048];
    const float v[2] = {1, 2};
    const char *x = tensor_file("x.pb", v, 2);
    /* static model: 1 of 3 inputs given -> exit 2 naming the first missing one */
    const char *m = sum3_model("sum3.onnx", 2);
    snprintf(args, sizeof args, "run '%s' -i '%s'", m, x);
    expect(args, 2, W("input 'b' is not given", "3 inputs"));
    /* dynamic model: the missing input is named, not a dim */
    const char *md = sum3_model("sum3_dyn.onnx", -1);
    snprintf(args, sizeof args, "run '%s' -i a='%s' -i c='%s'", md, x, x);
    expect(args, 2, W("input 'b' is not given"));
    /* all given: runs; none given: generated, and said so on stderr */
    snprintf(args, sizeof args, "run '%s' -i '%s' -i '%s' -i '%s'", m, x, x, x);
    expect(args, 0, W("y: float32 [2] = 3 6"));
    snprintf(args, sizeof args, "run '%s'", m);
    expect(args, 0, W("no -i given: generating all 3 inputs"));
    /* bench and profile follow the same rule */
    snprintf(args, sizeof args, "bench '%s' -i '%s' --iters 1", m, x);
    expect(args, 2, W("input 'b' is not given"));
    snprintf(args, sizeof args, "profile '%s' -i '%s' --iters 1", m, x);
    expect(args, 2, W("input 'b' is not given"));
}

static void test_options_belong_to_their_command(void **state)
{
    (void)state;
    char args[2048];
    const char *m = sum3_model("sum3.onnx", 2);
    snprintf(args, sizeof args, "run '%s' --trace t.json", m);
    expect(args, 2, W("--trace is an option of 'onnx-run profile', not of 'run'"));
    snprintf(args, sizeof args, "run '%s' --iters 5", m);
    expect(args, 2, W("--iters is an option of 'onnx-run bench' or 'onnx-run profile'"));
    snprintf(args, sizeof args, "test '%s' --no-fuse", dir);
    expect(args, 2, W("--no-fuse is an option of"));
    snprintf(args, sizeof args, "info '%s' -o out", m);
    expect(args, 2, W("-o is an option of 'onnx-run run', not of 'info'"));
    snprintf(args, sizeof args, "bench '%s' --rtol 1", m);
    expect(args, 2, W("--rtol is an option of 'onnx-run test'"));
    snprintf(args, sizeof args, "run '%s' --bogus", m);
    expect(args, 2, W("unknown option '--bogus'"));
    /* an option missing its value is named as such */
    snprintf(args, sizeof args, "run '%s' -i", m);
    expect(args, 2, W("option '-i' needs a value"));
    snprintf(args, sizeof args, "bench '%s' --iters", m);
    expect(args, 2, W("option '--iters' needs a value"));
    snprintf(args, sizeof args, "profile '%s' --trace", m);
    expect(args, 2, W("option '--trace' needs a value"));
    /* bad values */
    snprintf(args, sizeof args, "bench '%s' --iters 0", m);
    expect(args, 2, W("--iters needs a positive integer"));
    snprintf(args, sizeof args, "test '%s' --rtol abc", dir);
    expect(args, 2, W("--rtol needs a number"));
}

static void test_threads_capped(void **state)
{
    (void)state;
    char args[2048];
    const char *m = sum3_model("sum3.onnx", 2);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    /* more than the CPUs: a warning, capped, still runs */
    snprintf(args, sizeof args, "bench '%s' --iters 1 --warmup 0 --threads %ld --json", m,
             cpus + 7);
    char want[64];
    snprintf(want, sizeof want, "--threads %ld is more than the", cpus + 7);
    expect(args, 0, W(want, "\"threads\":"));
    /* absurd counts are refused */
    snprintf(args, sizeof args, "run '%s' --threads 1000000000", m);
    expect(args, 2, W("--threads needs an integer from 1 to"));
    snprintf(args, sizeof args, "run '%s' --threads 0", m);
    expect(args, 2, W("--threads needs an integer"));
}

static void test_help_per_command(void **state)
{
    (void)state;
    expect("run --help", 0, W("usage: onnx-run run MODEL", "-i [NAME=]FILE", "-o OUTDIR",
                              "--threads N", "default"));
    expect("bench -h", 0, W("--iters N", "(default: 10)", "--warmup N", "(default: 2)", "--json"));
    expect("test --help", 0, W("--rtol X", "1e-3", "--atol Y", "1e-7"));
    expect("info --help", 0, W("--plan", "--dot", "--svg FILE", "--ops"));
    expect("profile --help", 0, W("--trace FILE"));
    /* a command's help lists only its own options */
    int rc;
    char *out = cli("run --help", &rc);
    assert_null(strstr(out, "--trace"));
    assert_null(strstr(out, "--iters"));
    free(out);
}

/* A case directory `name` with n data sets of y = Identity(x); set `bad`
 * (if >= 0) expects a wrong output. */
static void make_case(const char *name, int n, int bad)
{
    char d[600], f[700];
    snprintf(d, sizeof d, "%s/%s", dir, name);
    mkdir(d, 0755);
    pbw g = {0};
    int64_t dims[] = {3};
    pbw_node(&g, "Identity", "id", (const char *[]){"x", NULL}, (const char *[]){"y", NULL},
             NULL);
    pbw_value_info(&g, 11, "x", F32, 1, dims);
    pbw_value_info(&g, 12, "y", F32, 1, dims);
    pbw m = pbw_model(&g, 8, 13);
    snprintf(f, sizeof f, "%s/model.onnx", d);
    write_bytes(f, m.b, m.n);
    free(m.b);
    for (int k = 0; k < n; k++) {
        float x[3] = {(float)k, 1.f, -2.f}, y[3] = {(float)k, 1.f, k == bad ? -2.5f : -2.f};
        int64_t three = 3;
        char msg[256];
        snprintf(f, sizeof f, "%s/test_data_set_%d", d, k);
        mkdir(f, 0755);
        onr_tensor *t = onr_tensor_wrap(ONR_FLOAT, 1, &three, x);
        snprintf(f, sizeof f, "%s/test_data_set_%d/input_0.pb", d, k);
        assert_int_equal(onr_tensor_write_pb(t, "x", f, msg, sizeof msg), ONR_OK);
        onr_tensor_free(t);
        t = onr_tensor_wrap(ONR_FLOAT, 1, &three, y);
        snprintf(f, sizeof f, "%s/test_data_set_%d/output_0.pb", d, k);
        assert_int_equal(onr_tensor_write_pb(t, "y", f, msg, sizeof msg), ONR_OK);
        onr_tensor_free(t);
    }
}

static void test_test_command(void **state)
{
    (void)state;
    char args[2048];
    /* a path holding no case fails (exit 1), never a silent skip */
    snprintf(args, sizeof args, "test '%s/nosuchdir'", dir);
    expect(args, 1, W("FAIL nosuchdir: no such directory", "0 passed, 1 failed"));
    snprintf(args, sizeof args, "test '%s'", dir);
    expect(args, 1, W("no model.onnx here", "0 passed, 1 failed"));
    /* every data set is read: 70, not the first 64 */
    make_case("case70", 70, -1);
    snprintf(args, sizeof args, "test '%s'", path("case70"));
    expect(args, 0, W("PASS case70/test_data_set_69", "70 passed, 0 failed"));
    /* a failure shows the differences and the tolerance */
    make_case("case_bad", 3, 1);
    snprintf(args, sizeof args, "test '%s'", path("case_bad"));
    expect(args, 1,
           W("FAIL case_bad/test_data_set_1", "1 of 3 elements differ", "max abs diff 0.5",
             "max rel diff 0.2", "atol 1e-07 + rtol 0.001", "2 passed, 1 failed"));
}

static void test_profile_sorts_op_types(void **state)
{
    (void)state;
    char args[2048];
    snprintf(args, sizeof args, "%s/testdata/tiny_resnet18/model.onnx",
             getenv("ONR_SOURCE_DIR") ? getenv("ONR_SOURCE_DIR") : ".");
    struct stat st;
    if (stat(args, &st) != 0) skip();
    char model[2048];
    snprintf(model, sizeof model, "%s", args);
    snprintf(args, sizeof args, "profile '%.1900s' --iters 2 --warmup 0", model);
    int rc;
    char *out = cli(args, &rc);
    assert_int_equal(rc, 0);
    /* the per-op-type table: ms/run never increases down the list */
    char *t = strstr(out, "\nop ");
    assert_non_null(t);
    double prev = 1e300;
    int rows = 0;
    for (char *l = strchr(t + 1, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        char op[64];
        int steps;
        double ms;
        if (sscanf(l + 1, "%63s %d %lf", op, &steps, &ms) != 3) break;
        if (ms > prev) fail_msg("op types not sorted by time:\n%s", t);
        prev = ms;
        rows++;
    }
    assert_true(rows >= 3);
    free(out);
    /* --top N lists the N slowest steps, 0 every step */
    int listed[2];
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "profile '%.1900s' --iters 1 --warmup 0 --top %d", model,
                 k ? 0 : 3);
        out = cli(args, &rc);
        assert_int_equal(rc, 0);
        int nsteps = 0;
        const char *m = strstr(out, ".onnx, ");
        assert_non_null(m);
        assert_int_equal(sscanf(m, ".onnx, %d steps", &nsteps), 1);
        char *h = strstr(out, "\n step ");
        assert_non_null(h);
        listed[k] = 0;
        for (char *l = strchr(h + 1, '\n'); l && l[1] != '\n'; l = strchr(l + 1, '\n'))
            listed[k]++;
        assert_int_equal(listed[k], k ? nsteps : 3);
        free(out);
    }
    expect("profile x.onnx --top -1", 2, W("--top needs an integer >= 0, not '-1'"));
}

static void test_info_ops(void **state)
{
    (void)state;
    expect("info --ops", 0, W("ai.onnx Conv ", "ai.onnx Add ", "org.onnxrun"));
    expect("info --ops model.onnx", 2, W("--ops lists the operators"));
}

/* An opset newer than the specification defines: exit 3 (unsupported),
 * the message names the op, the opset and the newest one; the newest runs. */
static void test_opset_past_the_spec(void **state)
{
    (void)state;
    char args[1024];
    for (int k = 0; k < 2; k++) {
        pbw g = {0};
        int64_t d[] = {2};
        pbw_node(&g, "Relu", "act", (const char *[]){"x", NULL}, (const char *[]){"y", NULL},
                 NULL);
        pbw_value_info(&g, 11, "x", F32, 1, d);
        pbw_value_info(&g, 12, "y", F32, 1, d);
        pbw m = pbw_model(&g, 8, ONR_OPSET_ONNX_NEWEST + k);
        const char *p = path(k ? "relu_next.onnx" : "relu_newest.onnx");
        write_bytes(p, m.b, m.n);
        free(m.b);
        snprintf(args, sizeof args, "run '%s'", p);
        if (k)
            expect(args, 3, W("Relu", "opset 27", "node 'act'", "newest opset", "is 26"));
        else
            expect(args, 0, W("y: float32 [2]"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_input_once_i_is_used),
        cmocka_unit_test(test_options_belong_to_their_command),
        cmocka_unit_test(test_threads_capped),
        cmocka_unit_test(test_help_per_command),
        cmocka_unit_test(test_test_command),
        cmocka_unit_test(test_profile_sorts_op_types),
        cmocka_unit_test(test_info_ops),
        cmocka_unit_test(test_opset_past_the_spec),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
