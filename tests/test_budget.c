/*
 * test_budget.c - the session memory budget (issue 16 item 5): a model
 * that would pass it is refused before the allocation, at open when its
 * shapes are static and at run when they are not, with a message naming
 * the value and the bytes; string payloads count; memory is held once (an
 * elementwise chain of N-byte values peaks near 2 N: one arena block
 * written in place, and the graph output handed over, not copied).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7, STR = 8 };
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Peak resident memory of this process (VmHWM), in bytes. */
static uint64_t peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

static uint64_t cur_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Reset VmHWM to the current RSS (Linux: "5" to clear_refs); 0 when done. */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static onr_session *open_limit(pbw *m, int64_t limit, onr_status *st)
{
    onr_options *o = onr_options_new();
    onr_options_set_memory_limit(o, limit);
    onr_options_set_threads(o, 1);
    onr_session *s = NULL;
    *st = onr_session_open_memory(m->b, m->n, o, &s);
    onr_options_free(o);
    return s;
}

/* x[1] = 1 -Expand(shape)-> a -Relu-> b -Neg-> c -Abs-> y: four values of
 * rows x cols floats. shape_input: the shape is a graph input (known only
 * at run) instead of an initializer. */
static pbw chain_model(int64_t rows, int64_t cols, int shape_input)
{
    pbw g = {0};
    const char *n0[] = {"x", "s", NULL}, *o0[] = {"a", NULL};
    const char *n1[] = {"a", NULL}, *o1[] = {"b", NULL};
    const char *n2[] = {"b", NULL}, *o2[] = {"c", NULL};
    const char *n3[] = {"c", NULL}, *o3[] = {"y", NULL};
    pbw_node(&g, "Expand", "e", n0, o0, NULL);
    pbw_node(&g, "Relu", "r", n1, o1, NULL);
    pbw_node(&g, "Neg", "n", n2, o2, NULL);
    pbw_node(&g, "Abs", "abs", n3, o3, NULL);
    pbw_str(&g, 2, "chain");
    int64_t d1 = 1, d2 = 2, shape[2] = {rows, cols};
    float one = 1;
    pbw_init_f32(&g, "x", 1, &d1, &one, 1);
    if (shape_input) pbw_value_info(&g, 11, "s", I64, 1, &d2);
    else pbw_init_i64(&g, "s", 1, &d2, shape, 2);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    return pbw_model(&g, 8, 17);
}

/* The case: four 1 GiB values under a 1.5 GiB budget are refused
 * at open, naming the value and the bytes, before anything is allocated. */
static void chain_refused_at_open(void **state)
{
    (void)state;
    pbw m = chain_model(16384, 16384, 0);
    assert_true(m.n < 200);
    int reset = reset_peak();
    uint64_t before = cur_rss();
    onr_status st;
    onr_session *s = open_limit(&m, (int64_t)(3 * GiB / 2), &st);
    assert_int_equal(st, ONR_E_NOMEM);
    const char *msg = onr_session_errmsg(s);
    assert_non_null(strstr(msg, "value 'y' needs 1.0 GiB"));
    assert_non_null(strstr(msg, "memory budget is 1.5 GiB"));
    assert_non_null(strstr(msg, "1.0 GiB in use or planned"));
    if (reset == 0) assert_true(peak_rss() < before + 64 * MiB); /* nothing allocated */
    onr_session_free(s);
    /* a budget the arena alone passes names the first value */
    s = open_limit(&m, (int64_t)(512 * MiB), &st);
    assert_int_equal(st, ONR_E_NOMEM);
    assert_non_null(strstr(onr_session_errmsg(s), "value 'a' needs 1.0 GiB"));
    onr_session_free(s);
    free(m.b);
}

/* The same chain, small enough to run here: it fits in ~2 values (one
 * arena block, written in place by Relu/Neg, plus the owned output, handed
 * over without a copy), and the budget's count says so. */
static void chain_held_once(void **state)
{
    (void)state;
    const int64_t rows = 4096, cols = 4096; /* 64 MiB per value */
    const uint64_t vb = (uint64_t)rows * cols * 4;
    pbw m = chain_model(rows, cols, 0);
    onr_status st;
    int reset = reset_peak();
    uint64_t before = cur_rss();
    onr_session *s = open_limit(&m, (int64_t)(2 * vb + 16 * MiB), &st);
    assert_int_equal(st, ONR_OK);
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_OK);
    const onr_tensor *y = onr_session_output(s, 0);
    assert_non_null(y);
    assert_true(((const float *)onr_tensor_data(y))[12345] == 1.0f);
    uint64_t limit, used;
    assert_int_equal(onr_session_memory(s, &limit, &used), ONR_OK);
    assert_true(used >= 2 * vb && used < 2 * vb + MiB);
    uint64_t peak = peak_rss();
    if (reset == 0) {
        print_message("chain of four %llu MiB values: peak RSS +%llu MiB\n",
                      (unsigned long long)(vb / MiB), (unsigned long long)((peak - before) / MiB));
        assert_true(peak - before < 2 * vb + 32 * MiB);
    }
    /* a second run allocates nothing more */
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_OK);
    uint64_t used2;
    assert_int_equal(onr_session_memory(s, &limit, &used2), ONR_OK);
    assert_true(used2 == used);
    /* the output taken by the caller no longer counts */
    onr_tensor *t = onr_session_take_output(s, 0);
    assert_non_null(t);
    assert_int_equal(onr_session_memory(s, &limit, &used2), ONR_OK);
    assert_true(used2 + vb <= used + 64);
    onr_tensor_free(t);
    onr_session_free(s);
    free(m.b);
}

/* With the shape a graph input the sizes are only known at run: the run is
 * refused before the arena grows, and no output is left to read. */
static void chain_refused_at_run(void **state)
{
    (void)state;
    pbw m = chain_model(-1, -1, 1);
    onr_status st;
    onr_session *s = open_limit(&m, (int64_t)(96 * MiB), &st);
    assert_int_equal(st, ONR_OK);
    int64_t d2 = 2, small[2] = {16, 16}, big[2] = {4096, 4096};
    onr_tensor *ts = onr_tensor_wrap(ONR_INT64, 1, &d2, small);
    const onr_tensor *in[1] = {ts};
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_OK);
    onr_tensor_free(ts);
    ts = onr_tensor_wrap(ONR_INT64, 1, &d2, big);
    in[0] = ts;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_NOMEM);
    const char *msg = onr_session_errmsg(s);
    assert_non_null(strstr(msg, "needs 64.0 MiB"));
    assert_non_null(strstr(msg, "memory budget is 96.0 MiB"));
    assert_null(onr_session_output(s, 0));
    /* the session still runs shapes that fit */
    onr_tensor_free(ts);
    ts = onr_tensor_wrap(ONR_INT64, 1, &d2, small);
    in[0] = ts;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_OK);
    assert_non_null(onr_session_output(s, 0));
    onr_tensor_free(ts);
    onr_session_free(s);
    free(m.b);
}

/* Tile of 4 floats by `reps`: a 16 * reps byte output. */
static pbw tile_model(int64_t reps, int reps_input)
{
    pbw g = {0};
    const char *ni[] = {"x", "r", NULL}, *no[] = {"y", NULL};
    pbw_node(&g, "Tile", "t", ni, no, NULL);
    pbw_str(&g, 2, "tile");
    int64_t d4 = 4, d1 = 1;
    float x[4] = {1, 2, 3, 4};
    pbw_init_f32(&g, "x", 1, &d4, x, 4);
    if (reps_input) pbw_value_info(&g, 11, "r", I64, 1, &d1);
    else pbw_init_i64(&g, "r", 1, &d1, &reps, 1);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    return pbw_model(&g, 8, 17);
}

static void tile_output_refused(void **state)
{
    (void)state;
    pbw m = tile_model(3 << 26, 0); /* 3 GiB */
    onr_status st;
    onr_session *s = open_limit(&m, (int64_t)GiB, &st);
    assert_int_equal(st, ONR_E_NOMEM);
    assert_non_null(strstr(onr_session_errmsg(s), "value 'y' needs 3.0 GiB; the session's memory "
                                                   "budget is 1.0 GiB"));
    onr_session_free(s);
    free(m.b);
    /* repeats known only at run */
    m = tile_model(0, 1);
    s = open_limit(&m, (int64_t)GiB, &st);
    assert_int_equal(st, ONR_OK);
    int64_t d1 = 1, r = 3 << 26;
    onr_tensor *tr = onr_tensor_wrap(ONR_INT64, 1, &d1, &r);
    const onr_tensor *in[1] = {tr};
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_NOMEM);
    assert_non_null(strstr(onr_session_errmsg(s), "value 'y' needs 3.0 GiB"));
    assert_null(onr_session_output(s, 0));
    r = 2;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_OK);
    assert_int_equal(onr_tensor_numel(onr_session_output(s, 0)), 8);
    onr_tensor_free(tr);
    onr_session_free(s);
    free(m.b);
}

/* Expand of one long string to n copies: string payloads count. */
static pbw strings_model(size_t len, int64_t n, int shape_input)
{
    pbw g = {0};
    const char *ni[] = {"x", "s", NULL}, *no[] = {"y", NULL};
    pbw_node(&g, "Expand", "e", ni, no, NULL);
    pbw_str(&g, 2, "strings");
    int64_t d1 = 1;
    char *big = malloc(len);
    memset(big, 'a', len);
    pbw t = {0};
    pbw_tensor_head(&t, "x", STR, 1, &d1);
    pbw_bytes(&t, 6, big, len);
    pbw_msg(&g, 5, &t);
    free(big);
    if (shape_input) pbw_value_info(&g, 11, "s", I64, 1, &d1);
    else pbw_init_i64(&g, "s", 1, &d1, &n, 1);
    pbw_value_info(&g, 12, "y", STR, -1, NULL);
    return pbw_model(&g, 8, 17);
}

static void strings_refused(void **state)
{
    (void)state;
    /* 64 KiB x 4096 = 256 MiB of strings from a 64 KiB model, under 32 MiB:
     * not folded at open (its payload passes the folding limit), refused at
     * run once the strings made reach the budget */
    pbw m = strings_model(64 << 10, 4096, 0);
    assert_true(m.n < 70000);
    onr_status st;
    int reset = reset_peak();
    uint64_t before = cur_rss();
    onr_session *s = open_limit(&m, (int64_t)(32 * MiB), &st);
    assert_int_equal(st, ONR_OK);
    uint64_t limit, used0, used;
    assert_int_equal(onr_session_memory(s, &limit, &used0), ONR_OK);
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_E_NOMEM);
    const char *msg = onr_session_errmsg(s);
    assert_non_null(strstr(msg, "value 'y' needs at least"));
    assert_non_null(strstr(msg, "memory budget is 32.0 MiB"));
    assert_null(onr_session_output(s, 0));
    if (reset == 0) assert_true(peak_rss() < before + 64 * MiB);
    /* the run's strings were given back */
    assert_int_equal(onr_session_memory(s, &limit, &used), ONR_OK);
    assert_true(used <= used0 + 4096 * sizeof(char *) + 64);
    onr_session_free(s);
    free(m.b);
    /* the count from a graph input; a small one runs */
    m = strings_model(64 << 10, 0, 1);
    s = open_limit(&m, (int64_t)(32 * MiB), &st);
    assert_int_equal(st, ONR_OK);
    int64_t d1 = 1, n = 100000;
    onr_tensor *tn = onr_tensor_wrap(ONR_INT64, 1, &d1, &n);
    const onr_tensor *in[1] = {tn};
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_NOMEM);
    assert_non_null(strstr(onr_session_errmsg(s), "value 'y' needs at least"));
    n = 100;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_OK);
    const onr_tensor *y = onr_session_output(s, 0);
    assert_int_equal(onr_tensor_numel(y), 100);
    assert_int_equal(strlen(((char *const *)onr_tensor_data(y))[99]), 64 << 10);
    onr_tensor_free(tn);
    onr_session_free(s);
    free(m.b);
}

/* The default budget comes from the machine; < 0 means none. */
static void default_and_unlimited(void **state)
{
    (void)state;
    pbw m = tile_model(2, 0);
    onr_status st;
    onr_session *s = open_limit(&m, 0, &st);
    assert_int_equal(st, ONR_OK);
    uint64_t limit, used;
    assert_int_equal(onr_session_memory(s, &limit, &used), ONR_OK);
    assert_true(limit > 16 * MiB);
    onr_session_free(s);
    s = open_limit(&m, -1, &st);
    assert_int_equal(st, ONR_OK);
    assert_int_equal(onr_session_memory(s, &limit, &used), ONR_OK);
    assert_int_equal(limit, 0);
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_OK);
    onr_session_free(s);
    free(m.b);
}

/* stdout + stderr of `onnx-run ARGS`; *rc its exit status. */
static char *cli(const char *args, int *rc)
{
    const char *exe = getenv("ONR_CLI");
    if (!exe) return NULL;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' %s 2>&1 </dev/null", exe, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

static void cli_memory_limit(void **state)
{
    (void)state;
    if (!getenv("ONR_CLI")) skip();
    char dir[256], path[300], args[700];
    assert_int_equal(pbw_tmpdir_make(dir, sizeof dir, "budget"), 0);
    snprintf(path, sizeof path, "%s/tile.onnx", dir);
    pbw m = tile_model(3 << 26, 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(m.b, 1, m.n, f);
    fclose(f);
    free(m.b);
    int rc;
    snprintf(args, sizeof args, "run '%s' --memory-limit 1G", path);
    char *out = cli(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "value 'y' needs 3.0 GiB; the session's memory budget is 1.0 GiB"));
    free(out);
    snprintf(args, sizeof args, "bench '%s' --memory-limit 512MiB --iters 1", path);
    out = cli(args, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "budget is 512.0 MiB"));
    free(out);
    snprintf(args, sizeof args, "run '%s' --memory-limit lots", path);
    out = cli(args, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--memory-limit needs a byte count"));
    free(out);
    out = cli("run --help", &rc);
    assert_non_null(strstr(out, "--memory-limit BYTES"));
    free(out);
    pbw_tmpdir_remove(dir);
}

/* Weights an operator packs at create (a MatMul's constant B) count: the
 * packed copy is held for the session's life, the original is released.
 * x[64, 1024] * w[1024, 1024] (4 MiB of weights) is refused under a 3 MiB
 * budget naming the packed weights and the node, runs under 16 MiB, and
 * the count includes them. */
static void packed_weights_counted(void **state)
{
    (void)state;
    enum { K = 1024, N = 1024 };
    pbw g = {0};
    const char *in[] = {"x", "w", NULL}, *out[] = {"y", NULL};
    pbw_node(&g, "MatMul", "mm", in, out, NULL);
    pbw_str(&g, 2, "packed");
    float *w = calloc((size_t)K * N, sizeof *w);
    assert_non_null(w);
    for (int i = 0; i < K; i++) w[(size_t)i * N + i] = 2.f;
    int64_t wd[2] = {K, N}, xd[2] = {64, K};
    pbw_init_f32(&g, "w", 2, wd, w, (int64_t)K * N);
    pbw_value_info(&g, 11, "x", F32, 2, xd);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, 17);
    free(w);
    onr_status st;
    onr_session *s = open_limit(&m, (int64_t)(3 * MiB), &st);
    assert_int_equal(st, ONR_E_NOMEM);
    const char *msg = onr_session_errmsg(s);
    print_message("%s\n", msg);
    assert_non_null(strstr(msg, "node 'mm' (MatMul, opset 17): its packed weights need 4.0 MiB"));
    assert_non_null(strstr(msg, "memory budget is 3.0 MiB"));
    onr_session_free(s);
    s = open_limit(&m, (int64_t)(16 * MiB), &st);
    assert_int_equal(st, ONR_OK);
    uint64_t limit, used;
    assert_int_equal(onr_session_memory(s, &limit, &used), ONR_OK);
    assert_true(used >= (uint64_t)K * N * 4);
    assert_true(used < 8 * MiB); /* the original was released, not counted twice */
    onr_session_free(s);
    free(m.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_refused_at_open), cmocka_unit_test(chain_held_once),
        cmocka_unit_test(chain_refused_at_run),  cmocka_unit_test(tile_output_refused),
        cmocka_unit_test(strings_refused),       cmocka_unit_test(default_and_unlimited),
        cmocka_unit_test(cli_memory_limit),       cmocka_unit_test(packed_weights_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
