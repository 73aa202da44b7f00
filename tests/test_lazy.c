/*
 * test_lazy.c - lazy weights (ir.h: onr_tensor.lazy): a big initializer
 * whose bytes are misaligned in the mapped model file (or an external-data
 * file) is not copied at load; the planner copies it just before a create
 * reads it, into the buffer of a weight released before it when one fits,
 * and copies whatever is still lazy after the creates (weights read at run
 * time, constant graph outputs).
 *
 * Each model is written with pbw.h, its payloads steered to misaligned
 * offsets with doc_string padding, loaded with onr_load_file (the weights
 * must be lazy there), then opened from the file fused and unfused at 1 and
 * 2 threads, and every output checked against a reference computed here in
 * double: weights packed at create (MatMul, shared by two MatMuls, a chain
 * whose copies reuse each other's buffers), read at run (Add), a constant
 * graph output, a constant-folded Transpose, a Conv whose BatchNormalization
 * is folded into it (a fusion reads it), outer-scope weights of If branches,
 * external data, and a table only Gathers read (left in the mapping).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "load/load.h"
#include "pbw.h"
#include "plan/plan.h"

enum { F32 = 1, BOOL = 9 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static char tmpdir[256];

static char *tmp_path(const char *name)
{
    static char path[2][600];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void write_file(const char *name, const void *b, size_t n)
{
    FILE *f = fopen(tmp_path(name), "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Deterministic values in [-1, 1), distinct per seed (payloads are found
 * in the model bytes by content). */
static float *rand_floats(size_t n, uint32_t seed)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return v;
}

/* A float initializer with `pad` bytes of doc_string before its raw_data. */
static void pad_init(pbw *g, const char *name, int rank, const int64_t *dims, const float *d,
                     size_t pad)
{
    pbw t = {0};
    char buf[8] = "ppppppp";
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    pbw_tensor_head(&t, name, F32, rank, dims);
    pbw_bytes(&t, 12, buf, pad);
    pbw_bytes(&t, 9, d, n * sizeof(float));
    pbw_msg(g, 5, &t);
}

static size_t offset_of(const pbw *m, const void *data, size_t n)
{
    /* memcmp only where the first byte matches: under ASan every memcmp
     * checks its whole range, which made this search quadratic (a minute) */
    const unsigned char *d = data;
    for (size_t i = 0; n > 0 && n <= m->n && i <= m->n - n; i++)
        if (m->b[i] == d[0] && memcmp(m->b + i, data, n) == 0) return i;
    fail_msg("payload not found in the model bytes");
    return 0;
}

/* ---- the models ---------------------------------------------------------- */

#define MAX_W 8

typedef struct wspec {
    const char *name;
    int rank;
    int64_t dims[4];
    float *data;
    size_t n;
} wspec;

typedef pbw (*build_fn)(const wspec *w, const size_t *pads);

/* Build with paddings found so that every weight's payload lies at an
 * offset that is not a multiple of 4 in the file. */
static pbw build_misaligned(build_fn build, const wspec *w, int nw)
{
    size_t pads[MAX_W] = {0};
    for (int tries = 0; tries < 4096; tries++) {
        pbw m = build(w, pads);
        int bad = -1;
        for (int i = 0; i < nw && bad < 0; i++)
            if (offset_of(&m, w[i].data, w[i].n * sizeof(float)) % 4 == 0) bad = i;
        if (bad < 0) return m;
        free(m.b);
        pads[bad] = (pads[bad] + 1) % 4; /* later payloads move with it: try again */
    }
    fail_msg("no padding misaligns every weight");
    return (pbw){0};
}

/* The weights are lazy after onr_load_file (bytes in the mapping, no data). */
static void expect_lazy(const char *file, const wspec *w, int nw)
{
    onr_model *model = NULL;
    onr_err err = {0};
    if (onr_load_file(tmp_path(file), &model, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < nw; i++) {
        int v = onr_graph_find_value(model->graph, w[i].name);
        assert_true(v >= 0);
        const onr_tensor *t = model->graph->values[v].konst;
        assert_non_null(t);
        if (t->data || !t->lazy) fail_msg("weight %s is not lazy after load", w[i].name);
        assert_int_equal((uintptr_t)t->lazy % 4 != 0, 1);
        assert_memory_equal(t->lazy, w[i].data, w[i].n * sizeof(float));
    }
    /* a lazy weight released without ever being copied */
    int v = onr_graph_find_value(model->graph, w[0].name);
    onr_tensor *t = model->graph->values[v].konst;
    onr_model_release_data(model, t);
    assert_null(t->data);
    assert_null(t->lazy);
    onr_model_free(model);
}

/* Write the model build makes, every weight misaligned in it, to `file`,
 * and check that its weights are lazy after load. */
static void write_lazy(const char *file, build_fn build, const wspec *w, int nw)
{
    pbw m = build_misaligned(build, w, nw);
    write_file(file, m.b, m.n);
    free(m.b);
    expect_lazy(file, w, nw);
}

typedef void (*ref_fn)(const wspec *w, onr_tensor *const *in, int k, double *out);

/* Open `file` fused and unfused at 1 and 2 threads, run on `in`, check
 * output k (n_out of them) against ref within 1e-4 relative + 1e-4. */
static void run_and_check(const char *file, int n_in, onr_tensor *const *in, int n_out,
                          const int64_t *out_numel, const wspec *w, ref_fn ref)
{
    for (int fuse = 0; fuse < 2; fuse++)
        for (int nt = 1; nt <= 2; nt++) {
            onr_options *o = onr_options_new();
            assert_non_null(o);
            onr_options_set_fuse(o, fuse);
            onr_options_set_threads(o, nt);
            onr_session *s = NULL;
            onr_status st = onr_session_open(tmp_path(file), o, &s);
            onr_options_free(o);
            if (st) fail_msg("open %s: %s", file, s ? onr_session_errmsg(s) : "no session");
            for (int rep = 0; rep < 2; rep++) { /* the second run reuses everything */
                if (onr_session_run(s, n_in, NULL, (const onr_tensor *const *)in))
                    fail_msg("run %s: %s", file, onr_session_errmsg(s));
                for (int k = 0; k < n_out; k++) {
                    const onr_tensor *y = onr_session_output(s, k);
                    assert_non_null(y);
                    assert_int_equal(y->numel, out_numel[k]);
                    double *want = malloc((size_t)out_numel[k] * sizeof *want);
                    assert_non_null(want);
                    ref(w, in, k, want);
                    for (int64_t i = 0; i < out_numel[k]; i++) {
                        double g = ((const float *)y->data)[i];
                        if (fabs(g - want[i]) > 1e-4 + 1e-4 * fabs(want[i]))
                            fail_msg("%s fuse=%d threads=%d output %d [%lld]: %.7g, want %.7g",
                                     file, fuse, nt, k, (long long)i, g, want[i]);
                    }
                    free(want);
                }
            }
            onr_session_free(s);
        }
}

static onr_tensor *input_f32(int rank, const int64_t *dims, uint32_t seed)
{
    onr_tensor *t = onr_tensor_new(ONR_FLOAT, rank, dims);
    assert_non_null(t);
    float *v = rand_floats((size_t)t->numel, seed);
    memcpy(t->data, v, (size_t)t->numel * sizeof(float));
    free(v);
    return t;
}

static void free_weights(wspec *w, int nw)
{
    for (int i = 0; i < nw; i++) free(w[i].data);
}

static void make_weights(wspec *w, int nw)
{
    for (int i = 0; i < nw; i++) {
        w[i].n = 1;
        for (int d = 0; d < w[i].rank; d++) w[i].n *= (size_t)w[i].dims[d];
        w[i].data = rand_floats(w[i].n, 100 + (uint32_t)i);
    }
}

/* y[m,n] = sum_k x[m,k] * b(k,n) with b(k,n) = bt ? W[n*K+k] : W[k*N+n] */
static void ref_matmul(const float *x, const float *W, int64_t M, int64_t K, int64_t N, int bt,
                       double *y)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)x[m * K + k] * (bt ? W[n * K + k] : W[k * N + n]);
            y[m * N + n] = acc;
        }
}

/* ---- weights packed, read at run, outputs, folded ------------------------- */

/* Wm [256,128]: MatMul(X, Wm) (packed at create)
 * Ws [256,128]: read by two MatMuls (released after the second)
 * Wa [128,128]: Add(Z, Wa) (read at run: copied, kept)
 * Wo [128,128]: a graph output itself
 * Wt [128,256]: MatMul(X, Transpose(Wt)) (the Transpose is constant-folded) */
static pbw build_mixed(const wspec *w, const size_t *pads)
{
    pbw g = {0};
    for (int i = 0; i < 5; i++) pad_init(&g, w[i].name, w[i].rank, w[i].dims, w[i].data, pads[i]);
    pbw_node(&g, "MatMul", "mm", NAMES("X", "Wm"), NAMES("Y0"), NULL);
    pbw_node(&g, "MatMul", "ms1", NAMES("X", "Ws"), NAMES("Y1"), NULL);
    pbw_node(&g, "MatMul", "ms2", NAMES("X", "Ws"), NAMES("Y1b"), NULL);
    pbw_node(&g, "Add", "s", NAMES("Y1", "Y1b"), NAMES("Y2"), NULL);
    pbw_node(&g, "Add", "a", NAMES("Z", "Wa"), NAMES("Y3"), NULL);
    pbw_node(&g, "Transpose", "t", NAMES("Wt"), NAMES("WtT"), NULL);
    pbw_node(&g, "MatMul", "mt", NAMES("X", "WtT"), NAMES("Y5"), NULL);
    pbw_value_info(&g, 11, "X", F32, 2, (int64_t[]){3, 256});
    pbw_value_info(&g, 11, "Z", F32, 2, (int64_t[]){128, 128});
    pbw_value_info(&g, 12, "Y0", F32, 2, (int64_t[]){3, 128});
    pbw_value_info(&g, 12, "Y2", F32, 2, (int64_t[]){3, 128});
    pbw_value_info(&g, 12, "Y3", F32, 2, (int64_t[]){128, 128});
    pbw_value_info(&g, 12, "Wo", F32, 2, (int64_t[]){128, 128});
    pbw_value_info(&g, 12, "Y5", F32, 2, (int64_t[]){3, 128});
    return pbw_model(&g, 8, 13);
}

static void ref_mixed(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    const float *x = in[0]->data, *z = in[1]->data;
    switch (k) {
    case 0: ref_matmul(x, w[0].data, 3, 256, 128, 0, out); break;
    case 1:
        ref_matmul(x, w[1].data, 3, 256, 128, 0, out);
        for (int i = 0; i < 3 * 128; i++) out[i] *= 2;
        break;
    case 2:
        for (int i = 0; i < 128 * 128; i++) out[i] = (double)z[i] + w[2].data[i];
        break;
    case 3:
        for (int i = 0; i < 128 * 128; i++) out[i] = w[3].data[i];
        break;
    default: ref_matmul(x, w[4].data, 3, 256, 128, 1, out); break;
    }
}

static void test_lazy_mixed(void **state)
{
    (void)state;
    wspec w[5] = {{"Wm", 2, {256, 128}, NULL, 0}, {"Ws", 2, {256, 128}, NULL, 0},
                  {"Wa", 2, {128, 128}, NULL, 0}, {"Wo", 2, {128, 128}, NULL, 0},
                  {"Wt", 2, {128, 256}, NULL, 0}};
    make_weights(w, 5);
    write_lazy("mixed.onnx", build_mixed, w, 5);
    onr_tensor *in[2] = {input_f32(2, (int64_t[]){3, 256}, 1), input_f32(2, (int64_t[]){128, 128}, 2)};
    const int64_t numel[5] = {3 * 128, 3 * 128, 128 * 128, 128 * 128, 3 * 128};
    run_and_check("mixed.onnx", 2, in, 5, numel, w, ref_mixed);
    tk_free_all(2, in);
    free_weights(w, 5);
}

/* ---- chains: MatMul packs from the mapping, Conv's copies reuse buffers ----- */

enum { CH_N = 4, CH_D = 512 }; /* 1 MiB weights: released buffers are kept */

/* CH_N MatMuls (X [2, CH_D] times W [CH_D, CH_D]) or 1x1 Convs (X
 * [2, CH_D, 1, 1], W [CH_D, CH_D, 1, 1]: X times W transposed) in a row */
static pbw build_chain_op(const wspec *w, const size_t *pads, int conv)
{
    pbw g = {0};
    char in[8], out[8];
    for (int i = 0; i < CH_N; i++) {
        pad_init(&g, w[i].name, w[i].rank, w[i].dims, w[i].data, pads[i]);
        snprintf(in, sizeof in, i ? "H%d" : "X", i);
        snprintf(out, sizeof out, i == CH_N - 1 ? "Y" : "H%d", i + 1);
        const char *ins[] = {in, w[i].name, NULL}, *outs[] = {out, NULL};
        pbw_node(&g, conv ? "Conv" : "MatMul", NULL, ins, outs, NULL);
    }
    const int64_t d4[4] = {2, CH_D, 1, 1};
    pbw_value_info(&g, 11, "X", F32, conv ? 4 : 2, d4);
    pbw_value_info(&g, 12, "Y", F32, conv ? 4 : 2, d4);
    return pbw_model(&g, 8, 13);
}

static pbw build_chain(const wspec *w, const size_t *pads) { return build_chain_op(w, pads, 0); }
static pbw build_conv_chain(const wspec *w, const size_t *pads) { return build_chain_op(w, pads, 1); }

static void ref_chain_op(const wspec *w, onr_tensor *const *in, double *out, int bt)
{
    float h[2 * CH_D];
    memcpy(h, in[0]->data, sizeof h);
    for (int i = 0; i < CH_N; i++) {
        ref_matmul(h, w[i].data, 2, CH_D, CH_D, bt, out);
        for (int j = 0; j < 2 * CH_D; j++) h[j] = (float)out[j];
    }
}

static void ref_chain(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    (void)k;
    ref_chain_op(w, in, out, 0);
}

static void ref_conv_chain(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    (void)k;
    ref_chain_op(w, in, out, 1);
}

static void chain_weights(wspec *w, int rank)
{
    static const char *const names[CH_N] = {"W0", "W1", "W2", "W3"};
    memset(w, 0, CH_N * sizeof *w);
    for (int i = 0; i < CH_N; i++) {
        w[i].name = names[i];
        w[i].rank = rank;
        w[i].dims[0] = w[i].dims[1] = CH_D;
        w[i].dims[2] = w[i].dims[3] = 1;
    }
    make_weights(w, CH_N);
    for (int i = 0; i < CH_N; i++) /* keep the products near 1 */
        for (size_t j = 0; j < w[i].n; j++) w[i].data[j] *= 0.08f;
}

/* Writes the chain of MatMuls (conv 0) or 1x1 Convs with misaligned
 * weights, checks they load lazy, runs it (4 opens: fused or not, 1 or 2
 * threads) against the reference; the weights copied meanwhile and the
 * copies that reused a released buffer. */
static void run_chain(int conv, size_t *copies, size_t *reused)
{
    const char *file = conv ? "convchain.onnx" : "chain.onnx";
    wspec w[CH_N];
    chain_weights(w, conv ? 4 : 2);
    write_lazy(file, conv ? build_conv_chain : build_chain, w, CH_N);
    size_t c0 = onr_lazy_copy_count(), r0 = onr_plan_spares_reused();
    const int64_t dims[4] = {2, CH_D, 1, 1}, numel[1] = {2 * CH_D};
    onr_tensor *in[1] = {input_f32(conv ? 4 : 2, dims, 3)};
    run_and_check(file, 1, in, 1, numel, w, conv ? ref_conv_chain : ref_chain);
    *copies = onr_lazy_copy_count() - c0;
    *reused = onr_plan_spares_reused() - r0;
    tk_free_all(1, in);
    free_weights(w, CH_N);
}

/* MatMul packs a misaligned weight straight from the mapping
 * (ONR_OP_LAZY_B): no weight of the chain is ever copied */
static void test_lazy_matmul_packs_from_mapping(void **state)
{
    (void)state;
    size_t copies, reused;
    run_chain(0, &copies, &reused);
    assert_int_equal(copies, 0);
}

/* Conv copies each weight before create (it packs from aligned memory):
 * each open (4 of them) copies W0..W3, W1..W3 into the buffer the
 * previous one left */
static void test_lazy_chain_reuses_buffers(void **state)
{
    (void)state;
    size_t copies, reused;
    run_chain(1, &copies, &reused);
    assert_true(copies >= 4 * CH_N);
    assert_true(reused >= 4 * (CH_N - 1));
}

/* ---- Gemm packs a transposed weight from the mapping ------------------------ */

enum { GT_M = 3, GT_K = 257, GT_N = 130 }; /* W [N, K]: 134 KB, odd sizes for the
                                               packing's scalar tails */

static pbw build_gemm_t(const wspec *w, const size_t *pads)
{
    pbw g = {0}, at = {0};
    pad_init(&g, w[0].name, 2, w[0].dims, w[0].data, pads[0]);
    pbw_attr_int(&at, "transB", 1);
    pbw_node(&g, "Gemm", "g", NAMES("X", "W"), NAMES("Y"), &at);
    pbw_value_info(&g, 11, "X", F32, 2, (int64_t[]){GT_M, GT_K});
    pbw_value_info(&g, 12, "Y", F32, 2, (int64_t[]){GT_M, GT_N});
    return pbw_model(&g, 8, 13);
}

static void ref_gemm_t(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    (void)k;
    ref_matmul(in[0]->data, w[0].data, GT_M, GT_K, GT_N, 1, out);
}

/* read with unaligned loads and memcpy (the sanitizers check it), never
 * copied */
static void test_lazy_gemm_transposed(void **state)
{
    (void)state;
    wspec w[1] = {{"W", 2, {GT_N, GT_K}, NULL, 0}};
    make_weights(w, 1);
    write_lazy("gemmt.onnx", build_gemm_t, w, 1);
    size_t copies = onr_lazy_copy_count();
    onr_tensor *in[1] = {input_f32(2, (int64_t[]){GT_M, GT_K}, 5)};
    const int64_t numel[1] = {GT_M * GT_N};
    run_and_check("gemmt.onnx", 1, in, 1, numel, w, ref_gemm_t);
    assert_int_equal(onr_lazy_copy_count() - copies, 0);
    tk_free_all(1, in);
    free_weights(w, 1);
}

/* ---- a fusion reads the weight: Conv + BatchNormalization ------------------- */

static pbw build_conv_bn(const wspec *w, const size_t *pads)
{
    pbw g = {0}, at = {0};
    pad_init(&g, w[0].name, 4, w[0].dims, w[0].data, pads[0]);
    float sc[64], bi[64], mean[64], var[64];
    for (int i = 0; i < 64; i++) {
        sc[i] = 0.5f + (float)i / 64, bi[i] = 0.1f * (float)(i % 7) - 0.3f;
        mean[i] = 0.05f * (float)(i % 5), var[i] = 0.5f + 0.01f * (float)i;
    }
    int64_t d64[] = {64};
    pbw_init_f32(&g, "sc", 1, d64, sc, 64);
    pbw_init_f32(&g, "bi", 1, d64, bi, 64);
    pbw_init_f32(&g, "mean", 1, d64, mean, 64);
    pbw_init_f32(&g, "var", 1, d64, var, 64);
    pbw_attr_ints(&at, "kernel_shape", (int64_t[]){3, 3}, 2);
    pbw_attr_ints(&at, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pbw_node(&g, "Conv", "c", NAMES("X", "W"), NAMES("C"), &at);
    pbw_node(&g, "BatchNormalization", "bn", NAMES("C", "sc", "bi", "mean", "var"), NAMES("Y"),
             NULL);
    pbw_value_info(&g, 11, "X", F32, 4, (int64_t[]){1, 32, 6, 6});
    pbw_value_info(&g, 12, "Y", F32, 4, (int64_t[]){1, 64, 6, 6});
    return pbw_model(&g, 8, 13);
}

static void ref_conv_bn(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    (void)k;
    const float *x = in[0]->data, *W = w[0].data;
    for (int m = 0; m < 64; m++) {
        double s = (0.5 + m / 64.0) / sqrt(0.5 + 0.01 * m + 1e-5);
        double b = 0.1 * (m % 7) - 0.3, mu = 0.05 * (m % 5);
        for (int oy = 0; oy < 6; oy++)
            for (int ox = 0; ox < 6; ox++) {
                double acc = 0;
                for (int c = 0; c < 32; c++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = oy + ky - 1, ix = ox + kx - 1;
                            if (iy < 0 || iy >= 6 || ix < 0 || ix >= 6) continue;
                            acc += (double)x[(c * 6 + iy) * 6 + ix] * W[((m * 32 + c) * 3 + ky) * 3 + kx];
                        }
                out[(m * 6 + oy) * 6 + ox] = (acc - mu) * s + b;
            }
    }
}

static void test_lazy_conv_bn_fold(void **state)
{
    (void)state;
    wspec w[1] = {{"W", 4, {64, 32, 3, 3}, NULL, 0}}; /* 72 KiB */
    make_weights(w, 1);
    write_lazy("convbn.onnx", build_conv_bn, w, 1);
    onr_tensor *in[1] = {input_f32(4, (int64_t[]){1, 32, 6, 6}, 4)};
    const int64_t numel[1] = {64 * 36};
    run_and_check("convbn.onnx", 1, in, 1, numel, w, ref_conv_bn);
    tk_free_all(1, in);
    free_weights(w, 1);
}

/* ---- outer-scope weights of If branches ------------------------------------ */

static pbw build_if(const wspec *w, const size_t *pads)
{
    pbw g = {0}, tg = {0}, eg = {0}, at = {0};
    pad_init(&g, w[0].name, 2, w[0].dims, w[0].data, pads[0]);
    pbw_node(&tg, "Add", "ta", NAMES("Z", "Wb"), NAMES("T"), NULL);
    pbw_value_info(&tg, 12, "T", F32, 2, (int64_t[]){128, 128});
    pbw_node(&eg, "Sub", "es", NAMES("Z", "Wb"), NAMES("E"), NULL);
    pbw_value_info(&eg, 12, "E", F32, 2, (int64_t[]){128, 128});
    pbw_attr_graph(&at, "then_branch", &tg);
    pbw_attr_graph(&at, "else_branch", &eg);
    pbw_node(&g, "If", "if", NAMES("cond"), NAMES("Y"), &at);
    pbw_value_info(&g, 11, "cond", BOOL, 0, NULL);
    pbw_value_info(&g, 11, "Z", F32, 2, (int64_t[]){128, 128});
    pbw_value_info(&g, 12, "Y", F32, 2, (int64_t[]){128, 128});
    return pbw_model(&g, 8, 13);
}

static void ref_if(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    (void)k;
    int c = *(const uint8_t *)in[0]->data;
    const float *z = in[1]->data;
    for (int i = 0; i < 128 * 128; i++) out[i] = c ? (double)z[i] + w[0].data[i] : (double)z[i] - w[0].data[i];
}

static void test_lazy_if_outer_scope(void **state)
{
    (void)state;
    wspec w[1] = {{"Wb", 2, {128, 128}, NULL, 0}};
    make_weights(w, 1);
    write_lazy("if.onnx", build_if, w, 1);
    for (int c = 0; c < 2; c++) {
        onr_tensor *in[2] = {onr_tensor_new(ONR_BOOL, 0, NULL), input_f32(2, (int64_t[]){128, 128}, 5)};
        assert_non_null(in[0]);
        *(uint8_t *)in[0]->data = (uint8_t)c;
        const int64_t numel[1] = {128 * 128};
        run_and_check("if.onnx", 2, in, 1, numel, w, ref_if);
        tk_free_all(2, in);
    }
    free_weights(w, 1);
}

/* ---- external data at a misaligned offset ---------------------------------- */

static void ext_init_at(pbw *g, const char *name, int rank, const int64_t *dims,
                        const char *location, long long offset)
{
    pbw t = {0}, kv = {0};
    char num[32];
    pbw_tensor_head(&t, name, F32, rank, dims);
    pbw_str(&kv, 1, "location");
    pbw_str(&kv, 2, location);
    pbw_msg(&t, 13, &kv);
    snprintf(num, sizeof num, "%lld", offset);
    pbw_str(&kv, 1, "offset");
    pbw_str(&kv, 2, num);
    pbw_msg(&t, 13, &kv);
    pbw_int(&t, 14, 1); /* data_location EXTERNAL */
    pbw_msg(g, 5, &t);
}

static void ref_ext(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    if (k == 0) {
        ref_matmul(in[0]->data, w[0].data, 3, 256, 128, 0, out);
        return;
    }
    const float *z = in[1]->data;
    for (int i = 0; i < 128 * 128; i++) out[i] = (double)z[i] * w[1].data[i];
}

static void test_lazy_external(void **state)
{
    (void)state;
    wspec w[2] = {{"We", 2, {256, 128}, NULL, 0}, {"Wf", 2, {128, 128}, NULL, 0}};
    make_weights(w, 2);
    size_t b0 = w[0].n * sizeof(float), b1 = w[1].n * sizeof(float);
    uint8_t *file = calloc(1, 2 + b0 + 1 + b1);
    assert_non_null(file);
    memcpy(file + 2, w[0].data, b0);      /* offset 2 */
    memcpy(file + 3 + b0, w[1].data, b1); /* offset 3 + b0: odd */
    write_file("lazy_w.bin", file, 2 + b0 + 1 + b1);
    free(file);
    pbw g = {0};
    ext_init_at(&g, "We", 2, w[0].dims, "lazy_w.bin", 2);
    ext_init_at(&g, "Wf", 2, w[1].dims, "lazy_w.bin", 3 + (long long)b0);
    pbw_node(&g, "MatMul", "mm", NAMES("X", "We"), NAMES("Y0"), NULL);
    pbw_node(&g, "Mul", "mu", NAMES("Z", "Wf"), NAMES("Y1"), NULL);
    pbw_value_info(&g, 11, "X", F32, 2, (int64_t[]){3, 256});
    pbw_value_info(&g, 11, "Z", F32, 2, (int64_t[]){128, 128});
    pbw_value_info(&g, 12, "Y0", F32, 2, (int64_t[]){3, 128});
    pbw_value_info(&g, 12, "Y1", F32, 2, (int64_t[]){128, 128});
    pbw m = pbw_model(&g, 8, 13);
    write_file("ext.onnx", m.b, m.n);
    free(m.b);
    expect_lazy("ext.onnx", w, 2);
    onr_tensor *in[2] = {input_f32(2, (int64_t[]){3, 256}, 6), input_f32(2, (int64_t[]){128, 128}, 7)};
    const int64_t numel[2] = {3 * 128, 128 * 128};
    run_and_check("ext.onnx", 2, in, 2, numel, w, ref_ext);
    tk_free_all(2, in);
    free_weights(w, 2);
}

/* ---- small or aligned weights are not lazy ---------------------------------- */

/* ---- a Gather table stays in the mapping ------------------------------------ */

enum { GA_D = 300, GA_E = 64, GA_N = 4 }; /* T [D, E]: 75 KiB */

/* Gather(T, I) along axis 0 (rows) and along axis 1 (single elements:
 * Y1 [D, N]); `also`: T is an Identity's input as well */
static int ga_also;
static pbw build_gather(const wspec *w, const size_t *pads)
{
    pbw g = {0}, a0 = {0}, a1 = {0};
    pad_init(&g, w[0].name, 2, w[0].dims, w[0].data, pads[0]);
    pbw_attr_int(&a0, "axis", 0);
    pbw_attr_int(&a1, "axis", 1);
    pbw_node(&g, "Gather", "g0", NAMES("T", "I"), NAMES("Y0"), &a0);
    pbw_node(&g, "Gather", "g1", NAMES("T", "I"), NAMES("Y1"), &a1);
    if (ga_also) pbw_node(&g, "Identity", "id", NAMES("T"), NAMES("Y2"), NULL);
    pbw_value_info(&g, 11, "I", 7, 1, (int64_t[]){GA_N});
    pbw_value_info(&g, 12, "Y0", F32, 2, (int64_t[]){GA_N, GA_E});
    pbw_value_info(&g, 12, "Y1", F32, 2, (int64_t[]){GA_D, GA_N});
    if (ga_also) pbw_value_info(&g, 12, "Y2", F32, 2, (int64_t[]){GA_D, GA_E});
    return pbw_model(&g, 8, 13);
}

static const int64_t ga_idx[GA_N] = {7, -1, 0, 42};

static void ref_gather(const wspec *w, onr_tensor *const *in, int k, double *out)
{
    (void)in;
    const float *t = w[0].data;
    for (int j = 0; j < GA_N; j++) {
        int64_t v = ga_idx[j] < 0 ? ga_idx[j] + (k == 0 ? GA_D : GA_E) : ga_idx[j];
        if (k == 0)
            for (int e = 0; e < GA_E; e++) out[j * GA_E + e] = t[v * GA_E + e];
        else if (k == 1)
            for (int d = 0; d < GA_D; d++) out[d * GA_N + j] = t[d * GA_E + v];
    }
    if (k == 2)
        for (int i = 0; i < GA_D * GA_E; i++) out[i] = t[i];
}

/* Read only by Gathers (rows, and single elements along axis 1): left in
 * the mapping and read there, misaligned (memcpy: the sanitizers check
 * it), never copied; with an Identity reading it too, copied as before. */
static void test_lazy_gather_table(void **state)
{
    (void)state;
    for (ga_also = 0; ga_also < 2; ga_also++) {
        wspec w[1] = {{"T", 2, {GA_D, GA_E}, NULL, 0}};
        make_weights(w, 1);
        write_lazy("gather.onnx", build_gather, w, 1);
        size_t copies = onr_lazy_copy_count(), kept = onr_plan_kept_in_mapping();
        onr_tensor *in[1] = {tk_i64(1, (int64_t[]){GA_N}, ga_idx)};
        const int64_t numel[3] = {GA_N * GA_E, GA_D * GA_N, GA_D * GA_E};
        run_and_check("gather.onnx", 1, in, 2 + ga_also, numel, w, ref_gather);
        /* 4 opens (fused and not, 1 and 2 threads) */
        assert_int_equal(onr_plan_kept_in_mapping() - kept, ga_also ? 0 : 4);
        if (ga_also) assert_true(onr_lazy_copy_count() - copies >= 4);
        else assert_int_equal(onr_lazy_copy_count() - copies, 0);
        tk_free_all(1, in);
        free_weights(w, 1);
    }
}

static void test_small_weights_copied(void **state)
{
    (void)state;
    /* 63 KiB: under the threshold, copied at load as before */
    wspec w[1] = {{"Wm", 2, {63, 256}, NULL, 0}};
    make_weights(w, 1);
    pbw g = {0};
    size_t pad = 0;
    pbw m = {0};
    for (;; pad++) {
        g = (pbw){0};
        pad_init(&g, "Wm", 2, w[0].dims, w[0].data, pad);
        pbw_node(&g, "MatMul", "mm", NAMES("X", "Wm"), NAMES("Y"), NULL);
        pbw_value_info(&g, 11, "X", F32, 2, (int64_t[]){2, 63});
        pbw_value_info(&g, 12, "Y", F32, 2, (int64_t[]){2, 256});
        m = pbw_model(&g, 8, 13);
        if (offset_of(&m, w[0].data, w[0].n * sizeof(float)) % 4) break;
        free(m.b);
        assert_true(pad < 8);
    }
    write_file("small.onnx", m.b, m.n);
    free(m.b);
    onr_model *model = NULL;
    onr_err err = {0};
    if (onr_load_file(tmp_path("small.onnx"), &model, &err)) fail_msg("%s", err.msg);
    const onr_tensor *t = model->graph->values[onr_graph_find_value(model->graph, "Wm")].konst;
    assert_non_null(t->data);
    assert_null(t->lazy);
    assert_true(t->owns);
    assert_memory_equal(t->data, w[0].data, w[0].n * sizeof(float));
    onr_model_free(model);
    free_weights(w, 1);
}

static int setup(void **state)
{
    (void)state;
    return pbw_tmpdir_make(tmpdir, sizeof tmpdir, "lazy");
}

static int teardown(void **state)
{
    (void)state;
    return pbw_tmpdir_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_mixed),
        cmocka_unit_test(test_lazy_matmul_packs_from_mapping),
        cmocka_unit_test(test_lazy_gemm_transposed),
        cmocka_unit_test(test_lazy_chain_reuses_buffers),
        cmocka_unit_test(test_lazy_conv_bn_fold),
        cmocka_unit_test(test_lazy_if_outer_scope),
        cmocka_unit_test(test_lazy_external),
        cmocka_unit_test(test_small_weights_copied),
        cmocka_unit_test(test_lazy_gather_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
