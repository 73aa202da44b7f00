/*
 * test_files.c - the files a model or a user names (issue 16, items 1-2).
 *
 * External-data locations stay beneath the model's directory even through
 * symbolic links: a link to a file outside, a symlinked directory outside, an
 * absolute link and '..' are refused with a reason; a link that stays inside
 * is followed. Both resolvers are checked: the kernel's (openat2
 * RESOLVE_BENEATH) and the portable one (component by component, O_NOFOLLOW).
 *
 * Nothing blocks on a FIFO: as the model, as external data (directly or
 * through a link), as an input file, as an output target, as a trace file.
 * Every case runs under an alarm, so a hang fails the test instead of
 * stalling CI.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"
#include "load/load.h"
#include "pbw.h"

enum { F32 = 1 };

static char root[256];  /* a fresh temporary directory */
static char mdir[300];  /* root/model: the model's directory */

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "test_files: hung (blocked on a FIFO?)\n";
    if (write(2, m, sizeof m - 1)) {}
    _exit(1);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/onr_files_XXXXXX");
    if (!mkdtemp(root)) return -1;
    snprintf(mdir, sizeof mdir, "%s/model", root);
    signal(SIGALRM, on_alarm);
    return mkdir(mdir, 0755);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *dir, const char *name)
{
    static char bufs[4][600];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 600, "%s/%s", dir, name);
    return b;
}

static void write_file(const char *path, const void *b, size_t n)
{
    unlink(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void make_link(const char *target, const char *path)
{
    unlink(path);
    assert_int_equal(symlink(target, path), 0);
}

static void make_fifo(const char *path)
{
    unlink(path);
    assert_int_equal(mkfifo(path, 0644), 0);
}

/* x float [1,4] + w (external, float [4] at `location`) -> y */
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

/* Opens a model whose weight lives at `location` (in both resolvers); returns
 * the status, the message in msg, and checks w when it loaded. */
static onr_status open_ext(const char *location, int portable, char *msg, size_t len)
{
    pbw m = external_model(location);
    write_file(at(mdir, "model.onnx"), m.b, m.n);
    free(m.b);
    onr_resolve_portable_only = portable;
    alarm(20);
    onr_session *s = NULL;
    onr_status st = onr_session_open(at(mdir, "model.onnx"), NULL, &s);
    alarm(0);
    onr_resolve_portable_only = 0;
    snprintf(msg, len, "%s", onr_session_errmsg(s));
    if (st == ONR_OK) {
        float xv[4] = {0, 0, 0, 0};
        int64_t d[] = {1, 4};
        onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, d, xv);
        assert_int_equal(onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x), ONR_OK);
        const float *y = onr_tensor_data(onr_session_output(s, 0));
        assert_true(y[0] == 1 && y[3] == 4); /* the weights inside, never the decoy */
        onr_tensor_free(x);
    }
    onr_session_free(s);
    return st;
}

static void expect_refused(const char *location, onr_status want, const char *why)
{
    char msg[1024];
    for (int portable = 0; portable < 2; portable++) {
        onr_status st = open_ext(location, portable, msg, sizeof msg);
        if (st != want || !strstr(msg, why))
            fail_msg("location '%s' (%s resolver): status %d, message '%s'; expected %d and "
                     "'%s'",
                     location, portable ? "portable" : "kernel", st, msg, want, why);
    }
}

static void expect_loads(const char *location)
{
    char msg[1024];
    for (int portable = 0; portable < 2; portable++)
        if (open_ext(location, portable, msg, sizeof msg) != ONR_OK)
            fail_msg("location '%s' (%s resolver) refused: %s", location,
                     portable ? "portable" : "kernel", msg);
}

static void test_symlinks_confined(void **state)
{
    (void)state;
    const float inside[4] = {1, 2, 3, 4}, decoy[4] = {-7, -7, -7, -7};
    mkdir(at(root, "outside"), 0755);
    write_file(at(root, "outside/secret.bin"), decoy, sizeof decoy);
    write_file(at(mdir, "w.bin"), inside, sizeof inside);
    mkdir(at(mdir, "sub"), 0755);
    write_file(at(mdir, "sub/w.bin"), inside, sizeof inside);

    /* a link to a file outside the directory */
    make_link(at(root, "outside/secret.bin"), at(mdir, "abs_out.bin"));
    expect_refused("abs_out.bin", ONR_E_MODEL, "outside the model's directory");
    make_link("../outside/secret.bin", at(mdir, "rel_out.bin"));
    expect_refused("rel_out.bin", ONR_E_MODEL, "outside the model's directory");
    /* /etc/passwd, the reported attack */
    make_link("/etc/passwd", at(mdir, "passwd.bin"));
    expect_refused("passwd.bin", ONR_E_MODEL, "outside the model's directory");
    /* a symlinked directory leading outside, relative or absolute */
    make_link("../outside", at(mdir, "linkdir"));
    expect_refused("linkdir/secret.bin", ONR_E_MODEL, "outside the model's directory");
    make_link(at(root, "outside"), at(mdir, "linkdir_abs"));
    expect_refused("linkdir_abs/secret.bin", ONR_E_MODEL, "outside the model's directory");
    /* a link that climbs out and back in is refused too, as RESOLVE_BENEATH does */
    make_link("../model/w.bin", at(mdir, "outin.bin"));
    expect_refused("outin.bin", ONR_E_MODEL, "outside the model's directory");
    /* an absolute link, even to a file inside: refused (cannot be checked
     * without trusting the path above the directory) */
    make_link(at(mdir, "w.bin"), at(mdir, "abs_in.bin"));
    expect_refused("abs_in.bin", ONR_E_MODEL, "outside the model's directory");

    /* links that stay inside are followed */
    make_link("w.bin", at(mdir, "same_dir.bin"));
    expect_loads("same_dir.bin");
    make_link("../w.bin", at(mdir, "sub/up.bin"));
    expect_loads("sub/up.bin");
    make_link("sub", at(mdir, "subdir_link"));
    expect_loads("subdir_link/w.bin");
    make_link("subdir_link/up.bin", at(mdir, "chain.bin"));
    expect_loads("chain.bin");
    expect_loads("./sub//w.bin");

    /* a link loop ends with an error */
    make_link("loop_b", at(mdir, "loop_a"));
    make_link("loop_a", at(mdir, "loop_b"));
    expect_refused("loop_a", ONR_E_IO, "symbolic links");

    /* the location itself: absolute paths and '..' are refused before any lookup */
    expect_refused("../outside/secret.bin", ONR_E_MODEL, "escapes");
    expect_refused("sub/../../outside/secret.bin", ONR_E_MODEL, "escapes");
    expect_refused(at(root, "outside/secret.bin"), ONR_E_MODEL, "escapes");
    /* a directory is not data */
    expect_refused("sub", ONR_E_IO, "not a regular file");
}

/* Exit status of `timeout 30 onnx-run ARGS` (124 = it hung); -1 without a CLI. */
static int cli_status(const char *args)
{
    const char *cli = getenv("ONR_CLI");
    if (!cli) return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' %s >/dev/null 2>&1 </dev/null", cli, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void expect_cli(const char *args, int code)
{
    int rc = cli_status(args);
    if (rc >= 0 && rc != code) fail_msg("onnx-run %s: exit %d, expected %d", args, rc, code);
}

static void test_fifos_never_block(void **state)
{
    (void)state;
    char msg[1024];
    const float inside[4] = {1, 2, 3, 4};
    write_file(at(mdir, "w.bin"), inside, sizeof inside);
    /* external data that is a FIFO, directly or through a link inside */
    make_fifo(at(mdir, "pipe.bin"));
    expect_refused("pipe.bin", ONR_E_IO, "FIFO");
    make_link("pipe.bin", at(mdir, "to_pipe.bin"));
    expect_refused("to_pipe.bin", ONR_E_IO, "FIFO");

    /* the model itself */
    make_fifo(at(mdir, "fifo.onnx"));
    onr_session *s = NULL;
    alarm(20);
    assert_int_equal(onr_session_open(at(mdir, "fifo.onnx"), NULL, &s), ONR_E_IO);
    alarm(0);
    assert_non_null(strstr(onr_session_errmsg(s), "FIFO"));
    onr_session_free(s);

    /* a tensor file */
    onr_tensor *t = NULL;
    alarm(20);
    assert_int_equal(onr_tensor_read_file(at(mdir, "pipe.bin"), &t, msg, sizeof msg), ONR_E_IO);
    alarm(0);
    assert_null(t);
    assert_non_null(strstr(msg, "FIFO"));

    /* an output target: a FIFO without a reader, with a reader, a symlink */
    int64_t d[] = {2};
    float v[2] = {1, 2};
    t = onr_tensor_wrap(ONR_FLOAT, 1, d, v);
    alarm(20);
    assert_int_equal(onr_tensor_write_pb(t, "y", at(mdir, "pipe.bin"), msg, sizeof msg), ONR_E_IO);
    assert_non_null(strstr(msg, "refused"));
    int rd = open(at(mdir, "pipe.bin"), O_RDONLY | O_NONBLOCK);
    assert_true(rd >= 0);
    assert_int_equal(onr_tensor_write_pb(t, "y", at(mdir, "pipe.bin"), msg, sizeof msg), ONR_E_IO);
    assert_non_null(strstr(msg, "not a regular file"));
    close(rd);
    alarm(0);
    make_link("w.bin", at(mdir, "out_link.pb"));
    assert_int_equal(onr_tensor_write_pb(t, "y", at(mdir, "out_link.pb"), msg, sizeof msg),
                     ONR_E_IO);
    assert_non_null(strstr(msg, "symbolic link"));
    /* the link's target is untouched */
    struct stat st;
    assert_int_equal(stat(at(mdir, "w.bin"), &st), 0);
    assert_int_equal(st.st_size, 16);
    /* a regular file is replaced (truncated, then written) */
    write_file(at(mdir, "out.pb"), "0123456789012345678901234567890123456789", 40);
    assert_int_equal(onr_tensor_write_pb(t, "y", at(mdir, "out.pb"), msg, sizeof msg), ONR_OK);
    onr_tensor *back = NULL;
    assert_int_equal(onr_tensor_read_file(at(mdir, "out.pb"), &back, msg, sizeof msg), ONR_OK);
    assert_true(((float *)onr_tensor_data(back))[1] == 2.f);
    onr_tensor_free(back);
    onr_tensor_free(t);

    /* the CLI: model, -i, -o and --trace as FIFOs end with exit 1, never hang */
    write_file(at(mdir, "w.bin"), inside, sizeof inside);
    pbw m = external_model("w.bin");
    write_file(at(mdir, "good.onnx"), m.b, m.n);
    free(m.b);
    char args[2048];
    snprintf(args, sizeof args, "run '%s'", at(mdir, "fifo.onnx"));
    expect_cli(args, 1);
    snprintf(args, sizeof args, "run '%s' -i '%s'", at(mdir, "good.onnx"), at(mdir, "pipe.bin"));
    expect_cli(args, 1);
    mkdir(at(root, "out"), 0755);
    make_fifo(at(root, "out/output_0.pb"));
    snprintf(args, sizeof args, "run '%s' -o '%s'", at(mdir, "good.onnx"), at(root, "out"));
    expect_cli(args, 1);
    snprintf(args, sizeof args, "profile '%s' --iters 1 --warmup 0 --trace '%s'",
             at(mdir, "good.onnx"), at(mdir, "pipe.bin"));
    expect_cli(args, 1);
    snprintf(args, sizeof args, "test '%s'", at(mdir, "pipe.bin"));
    expect_cli(args, 1);
    snprintf(args, sizeof args, "run '%s'", at(mdir, "good.onnx"));
    expect_cli(args, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symlinks_confined),
        cmocka_unit_test(test_fifos_never_block),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
