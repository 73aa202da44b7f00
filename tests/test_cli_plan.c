/*
 * test_cli_plan.c - what `onnx-run info --plan` shows of the planner's
 * work: before/after step counts, each fused step with the nodes it
 * replaced, `--no-fuse`, the Graphviz drawing (`--dot`) and its rendering
 * (`--svg FILE`, when Graphviz is installed; a clear error when it is not).
 * Runs the CLI (ONR_CLI) on the bundled models (ONR_SOURCE_DIR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"

/* Output of `onnx-run ARGS` (stdout, or stderr too when `both`) in a
 * malloc'd string; *rc gets the exit status. */
static char *cli_out(const char *args, int both, int *rc)
{
    const char *cli = getenv("ONR_CLI");
    if (!cli) skip();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s %s", cli, args, both ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

static const char *model_path(const char *name, char *buf, size_t len)
{
    const char *src = getenv("ONR_SOURCE_DIR");
    if (!src) skip();
    snprintf(buf, len, "%s/testdata/%s/model.onnx", src, name);
    return buf;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* "fusion: B steps before, A after; F fused steps replace R nodes" */
static void read_fusion_line(const char *out, int *before, int *after, int *fused, int *replaced)
{
    const char *l = strstr(out, "fusion: ");
    if (!l) fail_msg("no fusion line in:\n%.2000s", out);
    if (sscanf(l, "fusion: %d steps before, %d after; %d fused steps replace %d nodes", before,
               after, fused, replaced) != 4)
        fail_msg("unreadable fusion line: %.200s", l);
}

static void test_plan_lists_fused_steps(void **state)
{
    (void)state;
    char path[4096], args[4200];
    int rc;
    snprintf(args, sizeof args, "info '%s' --plan", model_path("tiny_bert_op13", path, sizeof path));
    char *out = cli_out(args, 0, &rc);
    assert_int_equal(rc, 0);
    int before, after, fused, replaced;
    read_fusion_line(out, &before, &after, &fused, &replaced);
    int steps = 0;
    const char *pl = strstr(out, "plan (");
    assert_non_null(pl);
    assert_int_equal(sscanf(pl, "plan (%d steps)", &steps), 1);
    assert_int_equal(steps, after);
    /* every fused step is listed with what it replaced, and the counts add up:
     * each fused step stands for its nodes, every other step for itself */
    assert_int_equal(count_of(out, "fused from "), fused);
    assert_true(after <= before);
    assert_int_equal(before - after, replaced - fused);
    free(out);

    snprintf(args, sizeof args, "info '%s' --plan --no-fuse", path);
    out = cli_out(args, 0, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "fusion: off"));
    assert_int_equal(count_of(out, "fused from "), 0);
    pl = strstr(out, "plan (");
    assert_non_null(pl);
    assert_int_equal(sscanf(pl, "plan (%d steps)", &steps), 1);
    assert_int_equal(steps, before);
    free(out);
}

static void test_dot_drawing(void **state)
{
    (void)state;
    char path[4096], args[4200];
    int rc;
    snprintf(args, sizeof args, "info '%s' --plan", model_path("tiny_gpt", path, sizeof path));
    char *plan = cli_out(args, 0, &rc);
    assert_int_equal(rc, 0);
    int before, after, fused, replaced;
    read_fusion_line(plan, &before, &after, &fused, &replaced);
    free(plan);

    snprintf(args, sizeof args, "info '%s' --plan --dot", path);
    char *out = cli_out(args, 0, &rc);
    assert_int_equal(rc, 0);
    /* the drawing alone on stdout: one box per step, fused ones marked */
    assert_int_equal(strncmp(out, "digraph plan {", 14), 0);
    size_t n = strlen(out);
    assert_true(n > 2 && strcmp(out + n - 2, "}\n") == 0);
    int boxes = 0;
    for (int i = 0; i < after; i++) {
        char id[32];
        snprintf(id, sizeof id, "\n  s%d [label=", i);
        boxes += strstr(out, id) != NULL;
    }
    assert_int_equal(boxes, after);
    char id[32];
    snprintf(id, sizeof id, "\n  s%d [label=", after);
    assert_null(strstr(out, id));
    assert_int_equal(count_of(out, "nodes fused)"), fused);
    assert_true(count_of(out, " -> ") >= after); /* every step is reached */
    assert_non_null(strstr(out, "out0 ["));
    free(out);
}

static void test_svg(void **state)
{
    (void)state;
    char path[4096], args[4300], svg[64];
    int rc;
    model_path("tiny_bert_op17", path, sizeof path);
    snprintf(svg, sizeof svg, "/tmp/onr_plan_%d.svg", (int)getpid());
    unlink(svg);
    int have_dot = system("command -v dot >/dev/null 2>&1") == 0;
    snprintf(args, sizeof args, "info '%s' --plan --svg '%s'", path, svg);
    char *out = cli_out(args, 1, &rc);
    if (have_dot) {
        if (rc != 0) fail_msg("--svg failed: %s", out);
        FILE *f = fopen(svg, "r");
        assert_non_null(f);
        char head[512] = "";
        size_t got = fread(head, 1, sizeof head - 1, f);
        head[got] = 0;
        fclose(f);
        assert_non_null(strstr(head, "<svg"));
    } else {
        assert_int_equal(rc, 1);
        assert_non_null(strstr(out, "Graphviz"));
    }
    free(out);
    unlink(svg);
    /* without Graphviz on PATH: a clear error, never a silent success */
    snprintf(args, sizeof args, "info '%s' --svg '%s'", path, svg);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "env PATH=/nonexistent '%s' %s >/dev/null 2>&1", getenv("ONR_CLI"), args);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    struct stat sb;
    assert_int_not_equal(stat(svg, &sb), 0);
}

/* The plan views are info's: another command refuses them (exit 2) rather
 * than ignoring them. */
static void test_plan_options_belong_to_info(void **state)
{
    (void)state;
    char path[4096], args[4300];
    int rc;
    model_path("tiny_resnet18", path, sizeof path);
    const char *opts[] = {"--plan", "--dot", "--svg /tmp/x.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "run '%s' %s", path, opts[i]);
        char *out = cli_out(args, 1, &rc);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, "is an option of 'onnx-run info'"));
        free(out);
    }
    snprintf(args, sizeof args, "info '%s' --svg", path);
    char *out = cli_out(args, 1, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "option '--svg' needs a value"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_lists_fused_steps),
        cmocka_unit_test(test_dot_drawing),
        cmocka_unit_test(test_svg),
        cmocka_unit_test(test_plan_options_belong_to_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
