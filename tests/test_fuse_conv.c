/*
 * test_fuse_conv.c - the FusedConv kernel (org.onnxrun) and the
 * convolution fusions (src/plan/fuse_conv.c).
 *
 * Kernel: FusedConv against a plain Conv run through the executor and the
 * epilogue (residual before or after, activation) applied to its output in
 * double here, over every Conv path (1x1 GEMM, im2col with one and several
 * bands, groups, depthwise direct, strides, dilations, pads, auto_pad, 1-D,
 * 3-D), every activation and its parameters, with and without bias, 1 and
 * 2 threads, and each SGEMM microkernel the CPU runs; then its errors.
 *
 * Fusions: models written with pbw.h, opened fused and unfused by
 * tk_fuse_check (outputs within rtol 1e-4 / atol 1e-5; counts of the fused
 * op, of fused steps and of the nodes they replace, plan lengths), each
 * pattern with its near-misses, 1 and 2 threads. Last, the tiny ResNets and
 * MobileNetV2 of testdata keep no Relu, Clip, residual Add or
 * BatchNormalization step outside a conv.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

#include "gemm/gemm.h"
#include "load/load.h"
#include "ops/conv.h"
#include "ops/dwconv.h"
#include "ops/winograd.h"
#include "plan/plan.h"

enum { F32 = 1, F16 = 10, F64 = 11 };

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static const float RTOL = 1e-4f, ATOL = 1e-5f;

/* ======================================================================
 * The kernel
 * ==================================================================== */

typedef struct kcase {
    int nsp;
    int64_t N, C, M, G;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;
} kcase;

static const kcase kcases[] = {
    {2, 1, 6, 40, 1, {5, 6}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},              /* 1x1: one GEMM */
    {2, 2, 3, 5, 1, {7, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},      /* im2col */
    {2, 1, 4, 6, 2, {9, 8}, {3, 2}, {2, 1}, {2, 1}, {0, 1, 1, 0}, NULL},      /* groups, s, d */
    {2, 2, 8, 8, 8, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},      /* depthwise */
    {2, 1, 4, 8, 4, {9, 8}, {3, 3}, {2, 2}, {1, 2}, {0, 1, 2, 1}, NULL},      /* depthwise x2 */
    {2, 1, 3, 7, 1, {7, 8}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER"},       /* auto_pad */
    {1, 2, 3, 5, 1, {13}, {4}, {2}, {2}, {1, 2}, NULL},                       /* 1-D */
    {1, 1, 4, 4, 4, {13}, {3}, {1}, {1}, {1, 1}, NULL},                       /* 1-D depthwise */
    {3, 1, 2, 3, 1, {5, 6, 7}, {2, 3, 2}, {2, 1, 3}, {1, 2, 1}, {0, 1, 1, 1, 0, 1}, NULL},
    {2, 1, 64, 8, 1, {64, 64}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},   /* several bands */
    {2, 2, 6, 4, 1, {6, 7}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},               /* 1x1, few outputs */
    {2, 2, 96, 130, 1, {5, 7}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},            /* 1x1 on AMX */
    {2, 1, 512, 8, 1, {8, 8}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},             /* 1x1, W rows padded */
    {2, 2, 20, 9, 1, {7, 6}, {3, 3}, {2, 1}, {1, 1}, {1, 0, 1, 1}, NULL},     /* tap-major col^T */
};
enum { BIG_CASE = 9 };

typedef struct kact {
    const char *name; /* NULL: none */
    int np;
    float p[2];
} kact;

static const kact kacts[] = {
    {NULL, 0, {0, 0}},
    {"Relu", 0, {0, 0}},
    {"Clip", 2, {-0.3f, 0.4f}},
    {"Clip", 1, {0.1f, 0}},   /* min only */
    {"Clip", 2, {0.5f, 0.2f}}, /* min > max: max everywhere */
    {"Sigmoid", 0, {0, 0}},
    {"Silu", 0, {0, 0}},
    {"HardSigmoid", 2, {0.3f, 0.4f}},
    {"HardSigmoid", 0, {0, 0}},
    {"HardSwish", 0, {0, 0}},
    {"HardSwish", 2, {0.25f, 0.6f}},
    {"LeakyRelu", 1, {0.2f}},
    {"LeakyRelu", 0, {0, 0}},
};

static double ref_act(const kact *a, double v)
{
    if (!a->name) return v;
    double p0 = a->np > 0 ? a->p[0] : 0, p1 = a->np > 1 ? a->p[1] : 0;
    if (!strcmp(a->name, "Relu")) return v < 0 ? 0 : v;
    if (!strcmp(a->name, "Clip")) {
        double lo = a->np > 0 ? p0 : -INFINITY, hi = a->np > 1 ? p1 : INFINITY;
        v = v < lo ? lo : v;
        return v > hi ? hi : v;
    }
    if (!strcmp(a->name, "Sigmoid")) return 1 / (1 + exp(-v));
    if (!strcmp(a->name, "Silu")) return v / (1 + exp(-v));
    if (!strcmp(a->name, "HardSigmoid") || !strcmp(a->name, "HardSwish")) {
        int sw = a->name[4] == 'S' && a->name[5] == 'w';
        double al = a->np ? p0 : sw ? 1.0 / 6 : 0.2, be = a->np > 1 ? p1 : 0.5;
        double h = al * v + be;
        h = h < 0 ? 0 : h > 1 ? 1 : h;
        return sw ? v * h : h;
    }
    if (!strcmp(a->name, "LeakyRelu")) return v < 0 ? (a->np ? p0 : 0.01) * v : v;
    fail_msg("unknown activation %s", a->name);
    return 0;
}

static void set_domain(onr_node *n, const char *domain)
{
    free(n->domain);
    n->domain = onr_strdup(domain);
}

static void conv_attrs(onr_node *n, const kcase *c)
{
    tk_attr_int(n, "group", c->G);
    tk_attr_ints(n, "kernel_shape", c->nsp, c->k);
    tk_attr_ints(n, "strides", c->nsp, c->s);
    tk_attr_ints(n, "dilations", c->nsp, c->d);
    if (c->auto_pad) tk_attr_string(n, "auto_pad", c->auto_pad);
    else tk_attr_ints(n, "pads", 2 * c->nsp, c->pads);
}

/* A FusedConv node of case c with activation a and residual res. */
static onr_node *fused_node(const kcase *c, const kact *a, int res)
{
    onr_node *fn = tk_node("FusedConv");
    set_domain(fn, "org.onnxrun");
    conv_attrs(fn, c);
    if (a->name) tk_attr_string(fn, "activation", a->name);
    if (a->np) tk_attr_floats(fn, "activation_params", a->np, a->p);
    if (res) tk_attr_int(fn, "residual_after_activation", res == 2);
    return fn;
}

/* got against ref (a plain Conv's output) with the epilogue applied here
 * in double: residual z before (res 1) or after (res 2) activation a. */
static void check_epilogue(const onr_tensor *got, const onr_tensor *ref, const onr_tensor *z,
                           const kact *a, int res)
{
    tk_assert_shape(got, ref->rank, ref->dims);
    int64_t n = ref->numel;
    float *want = malloc(sizeof(float) * (size_t)(n ? n : 1));
    const float *rv = ref->data, *zz = z ? z->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = rv[i];
        if (res == 1) v += zz[i];
        v = ref_act(a, v);
        if (res == 2) v += zz[i];
        want[i] = (float)v;
    }
    tk_assert_close_f32(got, want, n, RTOL, ATOL);
    free(want);
}

/* One FusedConv case against Conv + the epilogue here. res: 0 none, 1 Z
 * before the activation, 2 after. */
static void kernel_case(const kcase *c, const kact *a, int res, int bias, int nt)
{
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->G}, bd[1] = {c->M};
    for (int i = 0; i < c->nsp; i++) xd[2 + i] = c->in[i], wd[2 + i] = c->k[i];
    onr_tensor *x = tk_rand_f32(2 + c->nsp, xd, 11), *w = tk_rand_f32(2 + c->nsp, wd, 12);
    onr_tensor *b = bias ? tk_rand_f32(1, bd, 13) : NULL;
    /* the plain Conv */
    onr_node *cn = tk_node("Conv");
    conv_attrs(cn, c);
    onr_tensor *in[4] = {x, w, b, NULL}, *ref[1], *got[1];
    onr_err err = {0};
    if (tk_run(cn, 11, 3, in, 1, ref, nt, &err)) fail_msg("Conv: %s", err.msg);
    tk_node_free(cn);
    onr_tensor *z = res ? tk_rand_f32(ref[0]->rank, ref[0]->dims, 14) : NULL;
    /* FusedConv */
    onr_node *fn = fused_node(c, a, res);
    in[3] = z;
    int n_in = z ? 4 : 3;
    if (tk_run_const(fn, 1, n_in, in, 2u | 4u, 1, got, nt, &err))
        fail_msg("FusedConv: %s", err.msg);
    tk_node_free(fn);
    check_epilogue(got[0], ref[0], z, a, res);
    tk_free_all(1, ref);
    tk_free_all(1, got);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b), onr_tensor_free(z);
}

static void kernel_all(int big)
{
    int nc = (int)(sizeof kcases / sizeof kcases[0]), na = (int)(sizeof kacts / sizeof kacts[0]);
    for (int ci = 0; ci < nc; ci++) {
        if ((ci == BIG_CASE) != big) continue;
        for (int ai = 0; ai < na; ai++)
            for (int res = 0; res < 3; res++)
                for (int nt = 1; nt <= 2; nt++) {
                    if (big && (ai % 3 || nt == 2)) continue; /* a sample of the big one */
                    kernel_case(&kcases[ci], &kacts[ai], res, (ci + ai + res) % 2, nt);
                }
    }
}

static void test_kernel_vs_conv(void **state)
{
    (void)state;
    static const char *const kernels[] = {"ref", "avx2", "avx512", "amx"};
    /* FusedConv's constant W would take Winograd on the 3x3 cases, whose
     * rounding differs from Conv's im2col by more than RTOL allows; its
     * epilogue there is test_winograd's */
    onr_wino_force(ONR_WINO_OFF);
    for (int k = 0; k < 4; k++) {
        if (onr_sgemm_force_kernel(kernels[k]) != 0) continue; /* not on this CPU */
        kernel_all(0);
    }
    onr_sgemm_force_kernel(NULL);
    kernel_all(1);
    onr_wino_force(-1);
}

/* FusedConv's fifth input S, a scale per input channel ([N or 1, C, 1...]),
 * against Conv on X * S computed here, with the epilogue here (act a,
 * residual res as kernel_case's); S per image or one for all. */
static void kernel_scale_case(const kcase *c, const kact *a, int res, int per_image, int nt)
{
    const int r = 2 + c->nsp;
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->G}, bd[1] = {c->M};
    int64_t sd[5] = {per_image ? c->N : 1, c->C, 1, 1, 1};
    for (int i = 0; i < c->nsp; i++) xd[2 + i] = c->in[i], wd[2 + i] = c->k[i];
    onr_tensor *x = tk_rand_f32(r, xd, 21), *w = tk_rand_f32(r, wd, 22), *b = tk_rand_f32(1, bd, 23);
    onr_tensor *s = tk_rand_f32(r, sd, 24), *xs = tk_rand_f32(r, xd, 21);
    const int64_t plane = x->numel / (c->N * c->C);
    const float *xv = x->data, *sv = s->data;
    float *xsv = xs->data;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t n = i / (c->C * plane), ch = i / plane % c->C;
        xsv[i] = xv[i] * sv[(per_image ? n : 0) * c->C + ch];
    }
    onr_node *cn = tk_node("Conv");
    conv_attrs(cn, c);
    onr_tensor *in[5] = {xs, w, b, NULL, NULL}, *ref[1], *got[1];
    onr_err err = {0};
    if (tk_run(cn, 11, 3, in, 1, ref, nt, &err)) fail_msg("Conv: %s", err.msg);
    tk_node_free(cn);
    onr_tensor *z = res ? tk_rand_f32(ref[0]->rank, ref[0]->dims, 25) : NULL;
    onr_node *fn = fused_node(c, a, res);
    in[0] = x, in[3] = z, in[4] = s;
    if (tk_run_const(fn, 1, 5, in, 2u | 4u, 1, got, nt, &err)) fail_msg("FusedConv: %s", err.msg);
    tk_node_free(fn);
    check_epilogue(got[0], ref[0], z, a, res);
    tk_free_all(1, ref), tk_free_all(1, got);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b), onr_tensor_free(z);
    onr_tensor_free(s), onr_tensor_free(xs);
}

static void test_kernel_scale(void **state)
{
    (void)state;
    onr_wino_force(ONR_WINO_OFF); /* as test_kernel_vs_conv */
    size_t before[4], nc = sizeof kcases / sizeof kcases[0];
    for (int m = 1; m <= 3; m++) before[m] = onr_conv_scale_count(m);
    static const int acts[3] = {0, 1, 6}; /* none, Relu, Silu */
    for (int force_t = 0; force_t < 2; force_t++) {
        /* the transposed path takes every 1x1 and im2col geometry it can */
        onr_conv_force_transposed(force_t ? 1 : -1);
        for (size_t ci = 0; ci < nc; ci++)
            for (int ai = 0; ai < 3; ai++)
                for (int res = 0; res < 3; res++)
                    for (int per_image = 0; per_image < 2; per_image++)
                        for (int nt = 1; nt <= 2; nt++) {
                            if (ci == BIG_CASE && (res || nt == 2)) continue;
                            kernel_scale_case(&kcases[ci], &kacts[acts[ai]], res, per_image, nt);
                        }
    }
    onr_conv_force_transposed(-1);
    onr_wino_force(-1);
    /* each place S goes was taken: W (1x1 and im2col of one group with few
     * outputs), the transposed gather, a copy of X (groups, depthwise) */
    for (int m = 1; m <= 3; m++)
        if (onr_conv_scale_count(m) == before[m]) fail_msg("scale mode %d never ran", m);
}

static void expect_error(onr_node *n, int n_in, onr_tensor **in, onr_status code,
                         const char *needle)
{
    onr_tensor *out[1];
    onr_err err = {0};
    onr_status st = tk_run(n, 1, n_in, in, 1, out, 1, &err);
    tk_free_all(1, out);
    if (st == ONR_OK) fail_msg("expected an error containing '%s'", needle ? needle : "");
    if (code && st != code) fail_msg("status %d, expected %d: %s", (int)st, (int)code, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_node_free(n);
}

static onr_node *fnode(void)
{
    onr_node *n = tk_node("FusedConv");
    set_domain(n, "org.onnxrun");
    return n;
}

static void test_kernel_errors(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3}, zd[4] = {1, 3, 3, 3}, zb[4] = {1, 3, 1, 3};
    onr_tensor *x = tk_rand_f32(4, xd, 1), *w = tk_rand_f32(4, wd, 2);
    onr_tensor *z = tk_rand_f32(4, zd, 3), *zbad = tk_rand_f32(4, zb, 4);
    onr_tensor *in[5] = {x, w, NULL, z, z};
    onr_node *n = fnode();
    tk_attr_string(n, "activation", "Tanh");
    expect_error(n, 2, in, ONR_E_UNSUPPORTED, "unknown activation 'Tanh'");
    n = fnode();
    tk_attr_string(n, "activation", "Relu");
    tk_attr_floats(n, "activation_params", 1, (const float[]){1.f});
    expect_error(n, 2, in, ONR_E_MODEL, "at most 0 activation_params");
    n = fnode();
    tk_attr_floats(n, "activation_params", 1, (const float[]){1.f});
    expect_error(n, 2, in, ONR_E_MODEL, "without an activation");
    n = fnode();
    tk_attr_string(n, "activation", "Clip");
    tk_attr_floats(n, "activation_params", 3, (const float[]){1.f, 2.f, 3.f});
    expect_error(n, 2, in, ONR_E_MODEL, "at most 2");
    in[3] = zbad;
    expect_error(fnode(), 4, in, ONR_E_MODEL, "residual Z");
    in[3] = z;
    /* S: [N or 1, C, 1, 1] float32 only */
    expect_error(fnode(), 5, in, ONR_E_MODEL, "scale S");
    int64_t sd[4][4] = {{1, 2, 1, 1}, {1, 2, 5, 1}, {2, 2, 1, 1}, {1, 3, 1, 1}};
    onr_tensor *sgood = tk_rand_f32(4, sd[0], 5), *sbad[3];
    for (int k = 0; k < 3; k++) {
        sbad[k] = tk_rand_f32(4, sd[k + 1], 6);
        in[4] = sbad[k];
        expect_error(fnode(), 5, in, ONR_E_MODEL, "must be float32 [N or 1, C, 1, ...]");
        onr_tensor_free(sbad[k]);
    }
    onr_tensor *s3 = tk_rand_f32(3, sd[0], 7), *s64 = tk_typed(ONR_DOUBLE, 4, sd[0], NULL);
    memset(s64->data, 0, onr_tensor_nbytes(s64));
    in[4] = s3;
    expect_error(fnode(), 5, in, ONR_E_MODEL, "scale S");
    in[4] = s64;
    expect_error(fnode(), 5, in, ONR_E_MODEL, "scale S float64");
    onr_tensor_free(s3), onr_tensor_free(s64);
    onr_tensor *in6[6] = {x, w, NULL, z, sgood, sgood};
    expect_error(fnode(), 6, in6, ONR_E_MODEL, "2 to 5 inputs");
    onr_tensor_free(sgood);
    /* float64 is not FusedConv's */
    onr_tensor *xd64 = tk_typed(ONR_DOUBLE, 4, xd, NULL), *wd64 = tk_typed(ONR_DOUBLE, 4, wd, NULL);
    memset(xd64->data, 0, onr_tensor_nbytes(xd64));
    memset(wd64->data, 0, onr_tensor_nbytes(wd64));
    onr_tensor *in64[2] = {xd64, wd64};
    expect_error(fnode(), 2, in64, 0, NULL);
    /* no residual and no activation: exactly Conv */
    onr_tensor *out[1], *ref[1];
    onr_err err = {0};
    n = fnode();
    assert_int_equal(tk_run(n, 1, 3, in, 1, out, 1, &err), ONR_OK);
    tk_node_free(n);
    n = tk_node("Conv");
    assert_int_equal(tk_run(n, 11, 3, in, 1, ref, 1, &err), ONR_OK);
    tk_node_free(n);
    tk_assert_close_f32(out[0], ref[0]->data, ref[0]->numel, 0, 0);
    tk_free_all(1, out), tk_free_all(1, ref);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(z), onr_tensor_free(zbad);
    onr_tensor_free(xd64), onr_tensor_free(wd64);
}

/* ======================================================================
 * The kernel's pool (pool = MaxPool)
 * ==================================================================== */

/* A conv case (2-D) and the max pool after it: kernel, strides, pads
 * (top, left, bottom, right). */
typedef struct pcase {
    kcase c;
    int64_t pk[2], ps[2], pp[4];
    int banded; /* the small-group kernel pools it band by band */
} pcase;

static const pcase pcases[] = {
    /* a stem: 3 inputs, 7x7 / 2, then 3x3 / 2 */
    {{2, 2, 3, 8, 1, {20, 22}, {7, 7}, {2, 2}, {1, 1}, {3, 3, 3, 3}, NULL}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 1},
    /* 19 outputs (blocks of 8, 8, 2, 1), stride 1, a 2x2 / 2 pool */
    {{2, 1, 3, 19, 1, {17, 15}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL}, {2, 2}, {2, 2}, {0, 0, 0, 0}, 1},
    /* two groups of 3 inputs, uneven pads and pool */
    {{2, 2, 6, 4, 2, {12, 13}, {3, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0}, NULL}, {3, 2}, {1, 2}, {1, 0, 0, 1}, 1},
    /* 4 inputs, 5x5, a 3x3 / 1 pool on wide rows */
    {{2, 1, 4, 6, 1, {9, 40}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, NULL}, {3, 3}, {1, 1}, {1, 1, 1, 1}, 1},
    /* a stem large enough for several bands and chunks */
    {{2, 1, 3, 64, 1, {96, 96}, {7, 7}, {2, 2}, {1, 1}, {3, 3, 3, 3}, NULL}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 1},
    /* groups of 3 inputs at stride 3 (the portable rows: the SIMD small-group
     * kernels take strides 1 and 2) */
    {{2, 2, 6, 8, 2, {16, 17}, {3, 3}, {3, 3}, {1, 1}, {1, 1, 1, 1}, NULL}, {2, 2}, {2, 2}, {0, 0, 1, 1}, 1},
    /* windows taller than the conv output over wide pads (a hand-written
     * FusedConv: the fusion takes pads under the window only) */
    {{2, 1, 3, 8, 1, {10, 10}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL}, {9, 9}, {1, 1}, {4, 4, 4, 4}, 1},
    /* other paths: the conv output whole, then pooled (1x1, im2col) */
    {{2, 2, 8, 8, 1, {10, 10}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 0},
    {{2, 1, 16, 8, 1, {13, 13}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL}, {2, 2}, {2, 2}, {0, 0, 1, 1}, 0},
};

/* MaxPool of want (planes of oh x ow) here: -inf where no tap is inside. */
static onr_tensor *ref_pool(const onr_tensor *c, const pcase *pc)
{
    const int64_t H = c->dims[2], W = c->dims[3];
    const int64_t OH = (H + pc->pp[0] + pc->pp[2] - pc->pk[0]) / pc->ps[0] + 1;
    const int64_t OW = (W + pc->pp[1] + pc->pp[3] - pc->pk[1]) / pc->ps[1] + 1;
    int64_t d[4] = {c->dims[0], c->dims[1], OH, OW};
    onr_tensor *y = tk_typed(ONR_FLOAT, 4, d, NULL);
    const float *cv = c->data;
    float *yv = y->data;
    for (int64_t pl = 0; pl < d[0] * d[1]; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                float m = -INFINITY;
                for (int64_t i = 0; i < pc->pk[0]; i++)
                    for (int64_t j = 0; j < pc->pk[1]; j++) {
                        int64_t h = oh * pc->ps[0] - pc->pp[0] + i, w = ow * pc->ps[1] - pc->pp[1] + j;
                        if (h >= 0 && h < H && w >= 0 && w < W && cv[(pl * H + h) * W + w] > m)
                            m = cv[(pl * H + h) * W + w];
                    }
                yv[(pl * OH + oh) * OW + ow] = m;
            }
    return y;
}

static onr_node *pool_node(const pcase *pc, const kact *a)
{
    onr_node *fn = fused_node(&pc->c, a, 0);
    tk_attr_string(fn, "pool", "MaxPool");
    tk_attr_ints(fn, "pool_kernel_shape", 2, pc->pk);
    tk_attr_ints(fn, "pool_strides", 2, pc->ps);
    tk_attr_ints(fn, "pool_pads", 4, pc->pp);
    return fn;
}

/* FusedConv(pool) of case pc with activation a on nt threads. */
static onr_tensor *pool_run(const pcase *pc, const kact *a, onr_tensor **in, int nt)
{
    onr_node *fn = pool_node(pc, a);
    onr_tensor *got[1];
    onr_err err = {0};
    if (tk_run_const(fn, 1, 3, in, 2u | 4u, 1, got, nt, &err))
        fail_msg("FusedConv pool: %s", err.msg);
    tk_node_free(fn);
    return got[0];
}

/* Case pc against Conv, the activation (in double) and the pool here; the
 * same bits on 1, 2 and 3 threads; the banded path taken where expected. */
static void pool_case(const pcase *pc, const kact *a)
{
    const kcase *c = &pc->c;
    int64_t xd[4] = {c->N, c->C, c->in[0], c->in[1]}, wd[4] = {c->M, c->C / c->G, c->k[0], c->k[1]};
    onr_tensor *x = tk_rand_f32(4, xd, 31), *w = tk_rand_f32(4, wd, 32), *b = tk_rand_f32(1, &c->M, 33);
    onr_tensor *in[3] = {x, w, b}, *ref[1];
    onr_node *cn = tk_node("Conv");
    conv_attrs(cn, c);
    onr_err err = {0};
    if (tk_run(cn, 11, 3, in, 1, ref, 1, &err)) fail_msg("Conv: %s", err.msg);
    tk_node_free(cn);
    float *rv = ref[0]->data;
    for (int64_t i = 0; i < ref[0]->numel; i++) rv[i] = (float)ref_act(a, rv[i]);
    onr_tensor *want = ref_pool(ref[0], pc);
    size_t before = onr_conv_pool_banded_count();
    onr_tensor *got1 = pool_run(pc, a, in, 1);
    tk_assert_close_f32(got1, want->data, want->numel, RTOL, ATOL);
    tk_assert_shape(got1, 4, want->dims);
    for (int nt = 2; nt <= 3; nt++) {
        onr_tensor *g = pool_run(pc, a, in, nt);
        tk_assert_close_f32(g, got1->data, got1->numel, 0, 0); /* bit for bit */
        onr_tensor_free(g);
    }
    if ((onr_conv_pool_banded_count() > before) != pc->banded)
        fail_msg("case %dx%d conv: banded pool %s", (int)c->k[0], (int)c->k[1],
                 pc->banded ? "never ran" : "ran");
    tk_free_all(1, ref);
    onr_tensor_free(want), onr_tensor_free(got1);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b);
}

static void test_kernel_pool(void **state)
{
    (void)state;
    static const char *const dw[] = {"ref", "avx2", "avx512", NULL};
    const int acts[] = {0, 1, 2, 5}; /* none, Relu, Clip, Sigmoid */
    onr_wino_force(ONR_WINO_OFF); /* as test_kernel_vs_conv */
    for (int k = 0; k < 4; k++) {
        if (dw[k] && onr_dwconv_force_kernel(dw[k]) != 0) continue; /* not on this CPU */
        for (size_t ci = 0; ci < sizeof pcases / sizeof pcases[0]; ci++)
            for (int ai = 0; ai < 4; ai++) {
                if (dw[k] && ai % 2) continue; /* forced kernels: a sample */
                pool_case(&pcases[ci], &kacts[acts[ai]]);
            }
    }
    onr_dwconv_force_kernel(NULL);
    onr_wino_force(-1);
}

static void test_kernel_pool_errors(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 3, 9, 9}, wd[4] = {4, 3, 3, 3}, xd3[5] = {1, 3, 5, 5, 5}, wd3[5] = {4, 3, 1, 3, 3};
    onr_tensor *x = tk_rand_f32(4, xd, 1), *w = tk_rand_f32(4, wd, 2);
    onr_tensor *in[4] = {x, w, NULL, NULL};
    onr_node *n = fnode();
    tk_attr_string(n, "pool", "AveragePool");
    tk_attr_ints(n, "pool_kernel_shape", 2, (const int64_t[]){2, 2});
    expect_error(n, 2, in, ONR_E_UNSUPPORTED, "only MaxPool");
    n = fnode();
    tk_attr_string(n, "pool", "MaxPool");
    expect_error(n, 2, in, ONR_E_MODEL, "needs pool_kernel_shape");
    /* a residual with the pool */
    int64_t zd[4] = {1, 4, 9, 9};
    onr_tensor *z = tk_rand_f32(4, zd, 3);
    in[3] = z;
    n = fnode();
    tk_attr_string(n, "pool", "MaxPool");
    tk_attr_ints(n, "pool_kernel_shape", 2, (const int64_t[]){2, 2});
    tk_attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
    expect_error(n, 4, in, ONR_E_UNSUPPORTED, "no residual");
    /* a window larger than the padded conv output */
    n = fnode();
    tk_attr_string(n, "pool", "MaxPool");
    tk_attr_ints(n, "pool_kernel_shape", 2, (const int64_t[]){9, 9});
    expect_error(n, 2, in, ONR_E_MODEL, NULL);
    /* pool lists of another length than the conv's spatial dims */
    n = fnode();
    tk_attr_string(n, "pool", "MaxPool");
    tk_attr_ints(n, "pool_kernel_shape", 3, (const int64_t[]){2, 2, 2});
    expect_error(n, 2, in, ONR_E_MODEL, "pool_kernel_shape");
    /* 3-D */
    onr_tensor *x3 = tk_rand_f32(5, xd3, 4), *w3 = tk_rand_f32(5, wd3, 5), *in3[2] = {x3, w3};
    n = fnode();
    tk_attr_string(n, "pool", "MaxPool");
    tk_attr_ints(n, "pool_kernel_shape", 3, (const int64_t[]){1, 2, 2});
    expect_error(n, 2, in3, ONR_E_UNSUPPORTED, "2-D");
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(z), onr_tensor_free(x3), onr_tensor_free(w3);
}

/* ======================================================================
 * Models for the fusions
 * ==================================================================== */

typedef struct mdl {
    pbw g;
    uint32_t seed;
    int dtype; /* of every float tensor: F32, F16 or F64 */
} mdl;

static float m_rand(mdl *m, float lo, float hi)
{
    m->seed = m->seed * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)((m->seed >> 8) * (1.0 / 16777216.0));
}

/* An initializer of m's dtype with values in [lo, hi). */
static void m_init(mdl *m, const char *name, int rank, const int64_t *dims, float lo, float hi)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    size_t es = m->dtype == F64 ? 8 : m->dtype == F16 ? 2 : 4;
    unsigned char *buf = malloc((size_t)n * es + 1);
    for (int64_t i = 0; i < n; i++) {
        float v = m_rand(m, lo, hi);
        if (m->dtype == F64) ((double *)buf)[i] = v;
        else if (m->dtype == F16) ((uint16_t *)buf)[i] = onr_float_to_half(v);
        else ((float *)buf)[i] = v;
    }
    pbw t = {0};
    pbw_tensor_head(&t, name, m->dtype, rank, dims);
    pbw_bytes(&t, 9, buf, (size_t)n * es);
    pbw_msg(&m->g, 5, &t);
    free(buf);
}

static void m_input(mdl *m, const char *name, int rank, const int64_t *dims)
{
    pbw_value_info(&m->g, 11, name, m->dtype, rank, dims);
}

static void m_output(mdl *m, const char *name)
{
    pbw_value_info(&m->g, 12, name, m->dtype, -1, NULL);
}

/* A conv: nsp spatial dims, kernel k, stride s, dilation d, pads p on each
 * side; weights "<name>_W" and (bias) "<name>_B". */
typedef struct cspec {
    int nsp;
    int64_t C, M, G, k, s, d, p;
    int bias;
} cspec;

static const cspec C2 = {2, 4, 6, 1, 3, 1, 1, 1, 1};   /* 3x3, pad 1 */
static const cspec C2G = {2, 4, 6, 2, 3, 2, 1, 1, 1};  /* grouped, strided */
static const cspec C2D = {2, 4, 6, 1, 3, 1, 2, 2, 0};  /* dilated, no bias */
static const cspec C2DW = {2, 4, 4, 4, 3, 1, 1, 1, 1}; /* depthwise */
static const cspec C1 = {1, 4, 6, 1, 3, 2, 1, 1, 1};   /* 1-D, strided */
static const cspec C11 = {2, 4, 6, 1, 1, 1, 1, 0, 1};  /* 1x1 */

/* w_override / b_override: W / B read from that value instead */
static void m_conv_ex(mdl *m, const char *op, const char *name, const char *x, const char *y,
                      const cspec *c, const char *w_override, const char *b_override)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s_W", name);
    snprintf(bn, sizeof bn, "%s_B", name);
    int transpose = strcmp(op, "ConvTranspose") == 0;
    int64_t wd[5] = {transpose ? c->C : c->M, transpose ? c->M / c->G : c->C / c->G};
    for (int i = 0; i < c->nsp; i++) wd[2 + i] = c->k;
    if (!w_override) m_init(m, wn, 2 + c->nsp, wd, -0.5f, 0.5f);
    if (c->bias && !b_override) m_init(m, bn, 1, &c->M, -0.5f, 0.5f);
    if (b_override) snprintf(bn, sizeof bn, "%s", b_override);
    pbw a = {0};
    int64_t ks[3] = {c->k, c->k, c->k}, ss[3] = {c->s, c->s, c->s}, ds[3] = {c->d, c->d, c->d};
    int64_t ps[6] = {c->p, c->p, c->p, c->p, c->p, c->p};
    pbw_attr_int(&a, "group", c->G);
    pbw_attr_ints(&a, "kernel_shape", ks, (size_t)c->nsp);
    pbw_attr_ints(&a, "strides", ss, (size_t)c->nsp);
    pbw_attr_ints(&a, "dilations", ds, (size_t)c->nsp);
    pbw_attr_ints(&a, "pads", ps, 2 * (size_t)c->nsp);
    const char *wv = w_override ? w_override : wn;
    if (c->bias || b_override) pbw_node(&m->g, op, name, NAMES(x, wv, bn), NAMES(y), &a);
    else pbw_node(&m->g, op, name, NAMES(x, wv), NAMES(y), &a);
}

static void m_conv(mdl *m, const char *name, const char *x, const char *y, const cspec *c)
{
    m_conv_ex(m, "Conv", name, x, y, c, NULL, NULL);
}

/* Output dims of conv c over an input [N, C, H(, W)] of spatial size `in`. */
static int conv_out_dims(const cspec *c, int64_t N, int64_t in, int64_t *dims)
{
    int64_t o = (in + 2 * c->p - c->d * (c->k - 1) - 1) / c->s + 1;
    dims[0] = N, dims[1] = c->M;
    for (int i = 0; i < c->nsp; i++) dims[2 + i] = o;
    return 2 + c->nsp;
}

/* BatchNormalization over M channels with constant statistics (those named
 * in `act_stats`, e.g. "mean", become graph inputs instead). */
static void m_bn(mdl *m, const char *name, const char *x, const char *y, int64_t M, float eps,
                 int training, const char *act_stats)
{
    static const char *const stat[4] = {"scale", "bias", "mean", "var"};
    char nm[4][64];
    for (int i = 0; i < 4; i++) {
        snprintf(nm[i], sizeof nm[i], "%s_%s", name, stat[i]);
        if (act_stats && strstr(act_stats, stat[i])) m_input(m, nm[i], 1, &M);
        else if (i == 3) m_init(m, nm[i], 1, &M, 0.5f, 1.5f);
        else m_init(m, nm[i], 1, &M, -1.f, 1.f);
    }
    pbw a = {0};
    if (eps >= 0) pbw_attr_float(&a, "epsilon", eps);
    if (training >= 0) pbw_attr_int(&a, "training_mode", training);
    pbw_node(&m->g, "BatchNormalization", name, NAMES(x, nm[0], nm[1], nm[2], nm[3]), NAMES(y),
             a.n ? &a : NULL);
}

static void m_unary(mdl *m, const char *op, const char *x, const char *y)
{
    pbw_node(&m->g, op, y, NAMES(x), NAMES(y), NULL);
}

static void m_binary(mdl *m, const char *op, const char *a, const char *b, const char *y)
{
    pbw_node(&m->g, op, y, NAMES(a, b), NAMES(y), NULL);
}

/* Input tensors of the model's dtype. */
static onr_tensor *t_rand(int dtype, int rank, const int64_t *dims, uint32_t seed, float lo,
                          float hi)
{
    onr_tensor *f = tk_rand_f32(rank, dims, seed);
    float *p = f->data;
    for (int64_t i = 0; i < f->numel; i++) p[i] = lo + (p[i] + 1.f) * 0.5f * (hi - lo);
    if (dtype == F32) return f;
    onr_tensor *t = tk_typed(dtype == F64 ? ONR_DOUBLE : ONR_FLOAT16, rank, dims, NULL);
    for (int64_t i = 0; i < f->numel; i++) onr_set_f64(t, i, p[i]);
    onr_tensor_free(f);
    return t;
}

/* What a check expects: steps of `op` in the fused plan, how many of them
 * a fusion made and the nodes those replace, and both plan lengths. */
typedef struct want {
    const char *op;
    int n_op, n_fused, replaced, steps_fused, steps_unfused;
} want;

static void check(mdl *m, int64_t opset, int n_in, onr_tensor **in, want w, float rtol,
                  float atol)
{
    pbw model = pbw_model(&m->g, 8, opset);
    for (int nt = 1; nt <= 2; nt++) {
        tk_fuse_report r;
        tk_fuse_check(model.b, model.n, n_in, in, w.op, rtol, atol, nt, &r);
        if (r.n_op != w.n_op || r.n_fused != w.n_fused || r.replaced != w.replaced ||
            r.steps_fused != w.steps_fused || r.steps_unfused != w.steps_unfused)
            fail_msg("%s: n_op %d n_fused %d replaced %d steps %d/%d, expected %d %d %d %d/%d",
                     w.op, r.n_op, r.n_fused, r.replaced, r.steps_fused, r.steps_unfused, w.n_op,
                     w.n_fused, w.replaced, w.steps_fused, w.steps_unfused);
    }
    free(model.b);
    for (int i = 0; i < n_in; i++) onr_tensor_free(in[i]);
}

static mdl m_new(int dtype, uint32_t seed)
{
    mdl m = {{0}, seed, dtype};
    return m;
}

enum { N = 2, S = 8 }; /* batch and spatial size of the inputs */

/* x [N, C, S(, S)] as graph input "x", the model's first input. */
static onr_tensor *m_x(mdl *m, const cspec *c)
{
    int64_t d[5] = {N, c->C, S, S, S};
    m_input(m, "x", 2 + c->nsp, d);
    return t_rand(m->dtype, 2 + c->nsp, d, 101, -1.f, 1.f);
}

/* ======================================================================
 * BatchNormalization folding
 * ==================================================================== */

static void test_bn_fold(void **state)
{
    (void)state;
    const cspec *cs[] = {&C2, &C2G, &C2D, &C1, &C2DW, &C11};
    const int64_t opsets[] = {9, 13, 15};
    for (int i = 0; i < 6; i++)
        for (int o = 0; o < 3; o++) {
            mdl m = m_new(F32, 1u + (uint32_t)i);
            onr_tensor *x = m_x(&m, cs[i]);
            m_conv(&m, "conv", "x", "c", cs[i]);
            m_bn(&m, "bn", "c", "y", cs[i]->M, o == 1 ? 1e-3f : -1.f, o == 2 ? 0 : -1, NULL);
            m_output(&m, "y");
            check(&m, opsets[o], 1, &x, (want){"Conv", 1, 1, 2, 1, 2}, RTOL, ATOL);
        }
    /* + Relu: one FusedConv for all three */
    mdl m = m_new(F32, 7);
    onr_tensor *x = m_x(&m, &C2G);
    m_conv(&m, "conv", "x", "c", &C2G);
    m_bn(&m, "bn", "c", "b", 6, 1e-5f, -1, NULL);
    m_unary(&m, "Relu", "b", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 3, 1, 3}, RTOL, ATOL);
    /* + Add(Z) + Relu: the ResNet block's end */
    int64_t zd[4];
    m = m_new(F32, 8);
    x = m_x(&m, &C2);
    conv_out_dims(&C2, N, S, zd);
    m_input(&m, "z", 4, zd);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "b", 6, 1e-5f, -1, NULL);
    m_binary(&m, "Add", "z", "b", "s");
    m_unary(&m, "Relu", "s", "y");
    m_output(&m, "y");
    onr_tensor *in[2] = {x, t_rand(F32, 4, zd, 5, -1, 1)};
    check(&m, 13, 2, in, (want){"FusedConv", 1, 1, 4, 1, 4}, RTOL, ATOL);
}

/* The weights BN folding replaced are read by no step: the plan releases
 * them at build, so a folded model does not hold its weights twice. */
static void test_bn_fold_releases_originals(void **state)
{
    (void)state;
    mdl m = m_new(F32, 3);
    onr_tensor *x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "y", 6, 1e-5f, -1, NULL);
    m_output(&m, "y");
    pbw bytes = pbw_model(&m.g, 8, 13);
    onr_model *model = NULL;
    onr_err err = {0};
    if (onr_load_buffer(bytes.b, bytes.n, NULL, &model, &err)) fail_msg("load: %s", err.msg);
    free(bytes.b);
    onr_plan *p = NULL;
    onr_plan_opts o = {.nthreads = 1, .fuse = 1};
    if (onr_plan_build(model, &o, &p, &err)) fail_msg("plan: %s", err.msg);
    const onr_graph *g = onr_plan_graph(p);
    const char *gone[] = {"conv_W", "conv_B", "bn_scale", "bn_bias", "bn_mean", "bn_var"};
    for (int i = 0; i < 6; i++) {
        int v = onr_graph_find_value(g, gone[i]);
        assert_true(v >= 0);
        assert_non_null(g->values[v].konst);
        if (g->values[v].konst->data) fail_msg("'%s' is still held after folding", gone[i]);
    }
    assert_int_equal(onr_plan_step_count(p), 1);
    onr_plan_free(p);
    onr_model_free(model);
    onr_tensor_free(x);
}

/* float64 and float16 convs fold BN too (in their own type); float16 with
 * float16's tolerance, since the folded weights round differently. */
static void test_bn_fold_types(void **state)
{
    (void)state;
    mdl m = m_new(F64, 3);
    onr_tensor *x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "b", 6, 1e-5f, -1, NULL);
    m_unary(&m, "Relu", "b", "y"); /* stays: FusedConv is float32 only */
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"Conv", 1, 1, 2, 2, 3}, RTOL, ATOL);
    m = m_new(F16, 4);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "b", 6, 1e-5f, -1, NULL);
    m_unary(&m, "Relu", "b", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"Relu", 1, 0, 0, 2, 3}, 2e-2f, 2e-2f);
}

static void test_bn_convtranspose(void **state)
{
    (void)state;
    static const cspec CT = {2, 4, 6, 2, 3, 2, 1, 1, 1}, CT1 = {1, 4, 3, 1, 4, 1, 2, 0, 0};
    const cspec *cs[] = {&CT, &CT1};
    for (int i = 0; i < 2; i++) {
        mdl m = m_new(F32, 9);
        onr_tensor *x = m_x(&m, cs[i]);
        m_conv_ex(&m, "ConvTranspose", "convt", "x", "c", cs[i], NULL, NULL);
        m_bn(&m, "bn", "c", "y", cs[i]->M, 1e-5f, -1, NULL);
        m_output(&m, "y");
        check(&m, 13, 1, &x, (want){"ConvTranspose", 1, 1, 2, 1, 2}, RTOL, ATOL);
    }
}

static void test_bn_near_misses(void **state)
{
    (void)state;
    /* training mode: the batch's statistics */
    mdl m = m_new(F32, 10);
    onr_tensor *x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "y", 6, 1e-5f, 1, NULL);
    m_output(&m, "y");
    check(&m, 15, 1, &x, (want){"Conv", 1, 0, 0, 2, 2}, RTOL, ATOL);
    /* statistics that are not constant */
    const char *stats[] = {"mean", "var", "scale", "bias"};
    for (int i = 0; i < 4; i++) {
        m = m_new(F32, 11);
        x = m_x(&m, &C2);
        m_conv(&m, "conv", "x", "c", &C2);
        m_bn(&m, "bn", "c", "y", 6, 1e-5f, -1, stats[i]);
        m_output(&m, "y");
        int64_t six = 6;
        onr_tensor *in[2] = {x, t_rand(F32, 1, &six, 3, 0.5f, 1.5f)};
        check(&m, 13, 2, in, (want){"BatchNormalization", 1, 0, 0, 2, 2}, RTOL, ATOL);
    }
    /* W not constant */
    m = m_new(F32, 12);
    x = m_x(&m, &C2);
    int64_t wd[4] = {6, 4, 3, 3};
    m_input(&m, "w", 4, wd);
    m_conv_ex(&m, "Conv", "conv", "x", "c", &C2, "w", NULL);
    m_bn(&m, "bn", "c", "y", 6, 1e-5f, -1, NULL);
    m_output(&m, "y");
    onr_tensor *in[2] = {x, t_rand(F32, 4, wd, 4, -0.5f, 0.5f)};
    check(&m, 13, 2, in, (want){"BatchNormalization", 1, 0, 0, 2, 2}, RTOL, ATOL);
    /* B not constant */
    m = m_new(F32, 13);
    x = m_x(&m, &C2);
    int64_t six = 6;
    m_input(&m, "bvar", 1, &six);
    m_conv_ex(&m, "Conv", "conv", "x", "c", &C2, NULL, "bvar");
    m_bn(&m, "bn", "c", "y", 6, 1e-5f, -1, NULL);
    m_output(&m, "y");
    in[0] = x;
    in[1] = t_rand(F32, 1, &six, 4, -0.5f, 0.5f);
    check(&m, 13, 2, in, (want){"BatchNormalization", 1, 0, 0, 2, 2}, RTOL, ATOL);
    /* opset 7, spatial = 0: statistics per element of a [C, H, W] plane */
    m = m_new(F32, 16);
    x = m_x(&m, &C2);
    int64_t pd[3] = {6, S, S};
    const char *st[4] = {"s_scale", "s_bias", "s_mean", "s_var"};
    for (int i = 0; i < 4; i++) m_init(&m, st[i], 3, pd, i == 3 ? 0.5f : -1.f, 1.5f);
    m_conv(&m, "conv", "x", "c", &C2);
    pbw a = {0};
    pbw_attr_int(&a, "spatial", 0);
    pbw_node(&m.g, "BatchNormalization", "bn", NAMES("c", st[0], st[1], st[2], st[3]), NAMES("y"),
             &a);
    m_output(&m, "y");
    check(&m, 7, 1, &x, (want){"BatchNormalization", 1, 0, 0, 2, 2}, RTOL, ATOL);
    /* the conv output is also a graph output */
    m = m_new(F32, 14);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "y", 6, 1e-5f, -1, NULL);
    m_output(&m, "y");
    m_output(&m, "c");
    check(&m, 13, 1, &x, (want){"BatchNormalization", 1, 0, 0, 2, 2}, RTOL, ATOL);
    /* ... or read by another node */
    m = m_new(F32, 15);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_bn(&m, "bn", "c", "y", 6, 1e-5f, -1, NULL);
    m_unary(&m, "Sigmoid", "c", "y2");
    m_output(&m, "y");
    m_output(&m, "y2");
    check(&m, 13, 1, &x, (want){"BatchNormalization", 1, 0, 0, 3, 3}, RTOL, ATOL);
}

/* ======================================================================
 * Activations
 * ==================================================================== */

/* Conv c, then the activation `act` (a name below) on its output into y. */
static void m_act(mdl *m, const char *act, const char *c, const char *y)
{
    if (!strcmp(act, "Relu") || !strcmp(act, "Sigmoid") || !strcmp(act, "HardSwish")) {
        m_unary(m, act, c, y);
    } else if (!strcmp(act, "HardSigmoid")) {
        pbw a = {0};
        pbw_attr_float(&a, "alpha", 0.3f);
        pbw_attr_float(&a, "beta", 0.45f);
        pbw_node(&m->g, "HardSigmoid", y, NAMES(c), NAMES(y), &a);
    } else if (!strcmp(act, "LeakyRelu")) {
        pbw a = {0};
        pbw_attr_float(&a, "alpha", 0.15f);
        pbw_node(&m->g, "LeakyRelu", y, NAMES(c), NAMES(y), &a);
    } else if (!strcmp(act, "Clip6")) { /* bounds as attributes (opset < 11) */
        pbw a = {0};
        pbw_attr_float(&a, "min", 0.f);
        pbw_attr_float(&a, "max", 0.6f);
        pbw_node(&m->g, "Clip", y, NAMES(c), NAMES(y), &a);
    } else if (!strcmp(act, "Clip6d")) { /* opset < 11, default bounds */
        m_unary(m, "Clip", c, y);
    } else if (!strcmp(act, "Clip")) { /* constant inputs */
        float lo = -0.2f, hi = 0.5f;
        pbw_init_f32(&m->g, "clip_lo", 0, NULL, &lo, 1);
        pbw_init_f32(&m->g, "clip_hi", 0, NULL, &hi, 1);
        pbw_node(&m->g, "Clip", y, NAMES(c, "clip_lo", "clip_hi"), NAMES(y), NULL);
    } else if (!strcmp(act, "ClipMin")) {
        float lo = 0.1f;
        pbw_init_f32(&m->g, "clip_lo", 0, NULL, &lo, 1);
        pbw_node(&m->g, "Clip", y, NAMES(c, "clip_lo"), NAMES(y), NULL);
    } else if (!strcmp(act, "ClipMax")) {
        float hi = 0.3f;
        pbw_init_f32(&m->g, "clip_hi", 0, NULL, &hi, 1);
        pbw_node(&m->g, "Clip", y, NAMES(c, "", "clip_hi"), NAMES(y), NULL);
    } else if (!strcmp(act, "SiLU") || !strcmp(act, "SiLU2")) {
        m_unary(m, "Sigmoid", c, "sig");
        if (act[4]) m_binary(m, "Mul", "sig", c, y);
        else m_binary(m, "Mul", c, "sig", y);
    } else if (!strcmp(act, "HSwishMul")) {
        pbw a = {0};
        pbw_attr_float(&a, "alpha", 1.f / 6.f);
        pbw_node(&m->g, "HardSigmoid", "hs", NAMES(c), NAMES("hs"), &a);
        m_binary(m, "Mul", c, "hs", y);
    } else {
        fail_msg("unknown activation %s", act);
    }
}

static void test_activations(void **state)
{
    (void)state;
    static const struct {
        const char *act;
        int64_t opset;
        int nodes; /* the activation's node count */
    } acts[] = {
        {"Relu", 13, 1},       {"Sigmoid", 13, 1},   {"HardSwish", 14, 1}, {"HardSigmoid", 13, 1},
        {"LeakyRelu", 13, 1},  {"Clip6", 6, 1},      {"Clip", 13, 1},      {"ClipMin", 13, 1},
        {"ClipMax", 13, 1},    {"SiLU", 13, 2},      {"SiLU2", 13, 2},     {"HSwishMul", 13, 2},
        {"Clip6d", 6, 1},
    };
    const cspec *cs[] = {&C2, &C2G, &C2D, &C1, &C2DW, &C11};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (int i = 0; i < 6; i++) {
            if (acts[a].opset < 11 && i == 3) continue;
            mdl m = m_new(F32, 20 + (uint32_t)a);
            onr_tensor *x = m_x(&m, cs[i]);
            m_conv(&m, "conv", "x", "c", cs[i]);
            m_act(&m, acts[a].act, "c", "y");
            m_output(&m, "y");
            int n = 1 + acts[a].nodes;
            check(&m, acts[a].opset, 1, &x, (want){"FusedConv", 1, 1, n, 1, n}, RTOL, ATOL);
        }
}

static void test_activation_near_misses(void **state)
{
    (void)state;
    /* Clip bounds that are graph inputs */
    mdl m = m_new(F32, 30);
    onr_tensor *x = m_x(&m, &C2);
    m_input(&m, "lo", 0, NULL);
    m_conv(&m, "conv", "x", "c", &C2);
    pbw_node(&m.g, "Clip", "clip", NAMES("c", "lo"), NAMES("y"), NULL);
    m_output(&m, "y");
    onr_tensor *in[2] = {x, t_rand(F32, 0, NULL, 3, 0.f, 0.2f)};
    check(&m, 13, 2, in, (want){"FusedConv", 0, 0, 0, 2, 2}, RTOL, ATOL);
    /* Clip with min > max: left alone */
    m = m_new(F32, 31);
    x = m_x(&m, &C2);
    float lo = 0.5f, hi = 0.1f;
    pbw_init_f32(&m.g, "lo", 0, NULL, &lo, 1);
    pbw_init_f32(&m.g, "hi", 0, NULL, &hi, 1);
    m_conv(&m, "conv", "x", "c", &C2);
    pbw_node(&m.g, "Clip", "clip", NAMES("c", "lo", "hi"), NAMES("y"), NULL);
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 2, 2}, RTOL, ATOL);
    /* conv output also a graph output */
    m = m_new(F32, 32);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_unary(&m, "Relu", "c", "y");
    m_output(&m, "y");
    m_output(&m, "c");
    check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 2, 2}, RTOL, ATOL);
    /* SiLU whose Sigmoid is read elsewhere too */
    m = m_new(F32, 33);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_act(&m, "SiLU", "c", "y");
    m_output(&m, "y");
    m_output(&m, "sig");
    check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 3, 3}, RTOL, ATOL);
    /* Mul(c, Sigmoid(other)): not SiLU */
    m = m_new(F32, 34);
    x = m_x(&m, &C2);
    int64_t od[4];
    conv_out_dims(&C2, N, S, od);
    m_input(&m, "o", 4, od);
    m_conv(&m, "conv", "x", "c", &C2);
    m_unary(&m, "Sigmoid", "o", "sig");
    m_binary(&m, "Mul", "c", "sig", "y");
    m_output(&m, "y");
    in[0] = x;
    in[1] = t_rand(F32, 4, od, 5, -1, 1);
    check(&m, 13, 2, in, (want){"FusedConv", 0, 0, 0, 3, 3}, RTOL, ATOL);
    /* Relu after Relu: the second stays a Relu */
    m = m_new(F32, 35);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_unary(&m, "Relu", "c", "r");
    m_unary(&m, "Sigmoid", "r", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 2, 2, 3}, RTOL, ATOL);
    /* float64: no FusedConv */
    m = m_new(F64, 36);
    x = m_x(&m, &C2);
    m_conv(&m, "conv", "x", "c", &C2);
    m_unary(&m, "Relu", "c", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 2, 2}, RTOL, ATOL);
}

/* ======================================================================
 * Add: residuals and biases
 * ==================================================================== */

static void test_residual(void **state)
{
    (void)state;
    const cspec *cs[] = {&C2, &C2G, &C2D, &C1, &C2DW, &C11};
    for (int i = 0; i < 6; i++)
        for (int form = 0; form < 4; form++) {
            /* 0: Add(c, z); 1: Add(z, c) + Relu; 2: Relu + Add(z): after;
             * 3: Clip + Add(c, z) */
            mdl m = m_new(F32, 40 + (uint32_t)(i * 4 + form));
            onr_tensor *x = m_x(&m, cs[i]);
            int64_t zd[5];
            int rz = conv_out_dims(cs[i], N, S, zd);
            m_input(&m, "z", rz, zd);
            m_conv(&m, "conv", "x", "c", cs[i]);
            int n = 2;
            if (form == 0) m_binary(&m, "Add", "c", "z", "y");
            if (form == 1) {
                m_binary(&m, "Add", "z", "c", "s");
                m_unary(&m, "Relu", "s", "y");
                n = 3;
            }
            if (form >= 2) {
                m_act(&m, form == 2 ? "Relu" : "Clip", "c", "r");
                m_binary(&m, "Add", "r", "z", "y");
                n = 3;
            }
            m_output(&m, "y");
            onr_tensor *in[2] = {x, t_rand(F32, rz, zd, 6, -1, 1)};
            check(&m, 13, 2, in, (want){"FusedConv", 1, 1, n, 1, n}, RTOL, ATOL);
        }
    /* both Add inputs convs (ResNet's downsampling block): one absorbs it */
    mdl m = m_new(F32, 50);
    onr_tensor *x = m_x(&m, &C2G);
    cspec down = C11;
    down.s = 2;
    m_conv(&m, "conv", "x", "c", &C2G);
    m_conv(&m, "down", "x", "d", &down);
    m_binary(&m, "Add", "c", "d", "s");
    m_unary(&m, "Relu", "s", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 3, 2, 4}, RTOL, ATOL);
    /* the Add's output also a graph output: Conv + Add fuse, Relu stays */
    m = m_new(F32, 51);
    x = m_x(&m, &C2);
    int64_t zd[4];
    conv_out_dims(&C2, N, S, zd);
    m_input(&m, "z", 4, zd);
    m_conv(&m, "conv", "x", "c", &C2);
    m_binary(&m, "Add", "c", "z", "s");
    m_unary(&m, "Relu", "s", "y");
    m_output(&m, "y");
    m_output(&m, "s");
    onr_tensor *in[2] = {x, t_rand(F32, 4, zd, 7, -1, 1)};
    check(&m, 13, 2, in, (want){"FusedConv", 1, 1, 2, 2, 3}, RTOL, ATOL);
}

/* Steps of the fused plan whose memory reads "in place" (their output
 * written over a dying input's block). */
static int count_in_place(const pbw *model)
{
    onr_session *s = NULL;
    if (onr_session_open_memory(model->b, model->n, NULL, &s))
        fail_msg("open: %s", s ? onr_session_errmsg(s) : "no session");
    int n = 0;
    char buf[4096];
    for (int i = 0; i < onr_session_step_count(s); i++) {
        assert_int_equal(onr_session_step_describe(s, i, buf, sizeof buf), ONR_OK);
        if (strstr(buf, "FusedConv") && strstr(buf, "[in place")) n++;
    }
    onr_session_free(s);
    return n;
}

/* A residual computed inside the model and read by nothing after the
 * conv: FusedConv writes its output over it on the GEMM paths (1x1 and
 * im2col: K-blocked products start from C = Z), not on the transposed,
 * depthwise or Winograd ones, nor for act(conv) + Z; outputs as unfused. */
static void test_residual_in_place(void **state)
{
    (void)state;
    static const struct {
        cspec c;
        int64_t in, C;
        int act_first; /* Relu before the Add: act(conv) + Z */
        int in_place;
    } cases[] = {
        {{2, 1100, 40, 1, 1, 1, 1, 0, 1}, 12, 1100, 0, 1}, /* 1x1, K 1100: K blocks */
        {{2, 24, 20, 1, 3, 2, 1, 1, 1}, 11, 24, 0, 1},   /* 3x3 stride 2: im2col */
        {{2, 24, 20, 1, 1, 1, 1, 0, 1}, 12, 24, 1, 0},   /* act(conv) + Z */
        {{2, 16, 16, 16, 3, 1, 1, 1, 1}, 12, 16, 0, 0},  /* depthwise */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const cspec *c = &cases[ci].c;
        mdl m = m_new(F32, 130 + (uint32_t)ci);
        int64_t xd[4] = {N, cases[ci].C, cases[ci].in, cases[ci].in}, od[4];
        m_input(&m, "x", 4, xd);
        conv_out_dims(c, N, cases[ci].in, od);
        /* Z: Neg of a second input, an arena value read only by the Add */
        m_input(&m, "x2", 4, od);
        m_unary(&m, "Neg", "x2", "z");
        m_conv(&m, "conv", "x", "c", c);
        if (cases[ci].act_first) {
            m_unary(&m, "Relu", "c", "r");
            m_binary(&m, "Add", "r", "z", "s");
        } else {
            m_binary(&m, "Add", "c", "z", "s");
        }
        m_unary(&m, "Neg", "s", "y"); /* s in the arena: a graph output is owned */
        m_output(&m, "y");
        pbw model = pbw_model(&m.g, 8, 13);
        assert_int_equal(count_in_place(&model), cases[ci].in_place);
        onr_tensor *in[2] = {t_rand(F32, 4, xd, 17, -1, 1), t_rand(F32, 4, od, 18, -1, 1)};
        const int n = cases[ci].act_first ? 3 : 2; /* nodes the FusedConv replaces */
        for (int nt = 1; nt <= 2; nt++) {
            tk_fuse_report r;
            tk_fuse_check(model.b, model.n, 2, in, "FusedConv", RTOL, ATOL, nt, &r);
            assert_int_equal(r.n_fused, 1);
            assert_int_equal(r.replaced, n);
            assert_int_equal(r.steps_fused, 3);
        }
        free(model.b);
        onr_tensor_free(in[0]), onr_tensor_free(in[1]);
    }
}

static void test_residual_near_misses(void **state)
{
    (void)state;
    int64_t od[4];
    conv_out_dims(&C2, N, S, od);
    /* Z that broadcasts: [1, M, 1, 1], [1, M, H, W] (N = 2), [W] */
    int64_t zs[3][4] = {{1, 6, 1, 1}, {1, 6, od[2], od[3]}, {od[3], 0, 0, 0}};
    int zr[3] = {4, 4, 1};
    for (int k = 0; k < 3; k++) {
        mdl m = m_new(F32, 60);
        onr_tensor *x = m_x(&m, &C2);
        m_input(&m, "z", zr[k], zs[k]);
        m_conv(&m, "conv", "x", "c", &C2);
        m_binary(&m, "Add", "c", "z", "s");
        m_unary(&m, "Relu", "s", "y");
        m_output(&m, "y");
        onr_tensor *in[2] = {x, t_rand(F32, zr[k], zs[k], 8, -1, 1)};
        /* the Relu cannot reach the Conv past the Add */
        check(&m, 13, 2, in, (want){"FusedConv", 0, 0, 0, 3, 3}, RTOL, ATOL);
    }
    /* a constant that broadcasts over more than the channels */
    mdl m = m_new(F32, 61);
    onr_tensor *x = m_x(&m, &C2);
    int64_t kd[4] = {1, 6, od[2], od[3]};
    m_init(&m, "k", 4, kd, -1, 1);
    m_conv(&m, "conv", "x", "c", &C2);
    m_binary(&m, "Add", "c", "k", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"Conv", 1, 0, 0, 2, 2}, RTOL, ATOL);
    /* symbolic batch: Z's shape is shown equal when its batch has x's name
     * (symbolic shape inference, pass_shapes.c), not when named otherwise */
    for (int same = 0; same < 2; same++) {
        m = m_new(F32, 62);
        int64_t xd[4] = {-1, 4, S, S}, zd[4] = {-1, 6, od[2], od[3]};
        const char *xn[4] = {"N"}, *zn[4] = {same ? "N" : "M"};
        pbw_value_info_named(&m.g, 11, "x", m.dtype, 4, xd, xn);
        pbw_value_info_named(&m.g, 11, "z", m.dtype, 4, zd, zn);
        m_conv(&m, "conv", "x", "c", &C2);
        m_binary(&m, "Add", "c", "z", "y");
        m_output(&m, "y");
        onr_tensor *in[2] = {t_rand(F32, 4, (int64_t[]){N, 4, S, S}, 9, -1, 1),
                             t_rand(F32, 4, od, 10, -1, 1)};
        check(&m, 13, 2, in,
              same ? (want){"FusedConv", 1, 1, 2, 1, 2} : (want){"FusedConv", 0, 0, 0, 2, 2},
              RTOL, ATOL);
    }
    /* a second residual: the first Add fuses, the second stays */
    m = m_new(F32, 63);
    x = m_x(&m, &C2);
    m_input(&m, "z", 4, od);
    m_input(&m, "z2", 4, od);
    m_conv(&m, "conv", "x", "c", &C2);
    m_binary(&m, "Add", "c", "z", "s");
    m_binary(&m, "Add", "s", "z2", "y");
    m_output(&m, "y");
    onr_tensor *in3[3] = {x, t_rand(F32, 4, od, 11, -1, 1), t_rand(F32, 4, od, 12, -1, 1)};
    check(&m, 13, 3, in3, (want){"FusedConv", 1, 1, 2, 2, 3}, RTOL, ATOL);
}

static void test_bias_fold(void **state)
{
    (void)state;
    int64_t od[4];
    conv_out_dims(&C2, N, S, od);
    /* [M,1,1], [1,M,1,1], [M,1] (1-D), a scalar, [1]: into B */
    const int64_t shapes[5][4] = {{6, 1, 1}, {1, 6, 1, 1}, {6, 1}, {0}, {1}};
    const int ranks[5] = {3, 4, 2, 0, 1};
    for (int k = 0; k < 5; k++)
        for (int bias = 0; bias < 2; bias++) {
            cspec c = k == 2 ? C1 : C2;
            c.bias = bias;
            mdl m = m_new(F32, 70);
            onr_tensor *x = m_x(&m, &c);
            m_init(&m, "k", ranks[k], shapes[k], -1, 1);
            m_conv(&m, "conv", "x", "c", &c);
            m_binary(&m, "Add", k % 2 ? "k" : "c", k % 2 ? "c" : "k", "y");
            m_output(&m, "y");
            check(&m, 13, 1, &x, (want){"Conv", 1, 1, 2, 1, 2}, RTOL, ATOL);
        }
    /* + Relu: FusedConv; after a residual too */
    mdl m = m_new(F32, 71);
    onr_tensor *x = m_x(&m, &C2);
    m_input(&m, "z", 4, od);
    m_init(&m, "k", 3, (int64_t[]){6, 1, 1}, -1, 1);
    m_conv(&m, "conv", "x", "c", &C2);
    m_binary(&m, "Add", "c", "z", "s");
    m_binary(&m, "Add", "s", "k", "t");
    m_unary(&m, "Relu", "t", "y");
    m_output(&m, "y");
    onr_tensor *in[2] = {x, t_rand(F32, 4, od, 13, -1, 1)};
    check(&m, 13, 2, in, (want){"FusedConv", 1, 1, 4, 1, 4}, RTOL, ATOL);
    /* in float64 too (plain Conv) */
    m = m_new(F64, 72);
    x = m_x(&m, &C2);
    m_init(&m, "k", 3, (int64_t[]){6, 1, 1}, -1, 1);
    m_conv(&m, "conv", "x", "c", &C2);
    m_binary(&m, "Add", "c", "k", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"Conv", 1, 1, 2, 1, 2}, RTOL, ATOL);
}

/* ======================================================================
 * Mul(X, S) -> conv: the input scale
 * ==================================================================== */

/* The squeeze-excitation end: g = GlobalAveragePool(x), s = Sigmoid(g),
 * t = Mul(x, s) (operands in order `swap`), conv(t) -> c; more after it
 * by the caller. */
static onr_tensor *m_se(mdl *m, const cspec *c, int swap)
{
    onr_tensor *x = m_x(m, c);
    m_unary(m, "GlobalAveragePool", "x", "g");
    m_unary(m, "Sigmoid", "g", "s");
    m_binary(m, "Mul", swap ? "s" : "x", swap ? "x" : "s", "t");
    return x;
}

static void test_scale(void **state)
{
    (void)state;
    const cspec *cs[] = {&C2, &C2G, &C2D, &C1, &C2DW, &C11};
    for (int i = 0; i < 6; i++)
        for (int swap = 0; swap < 2; swap++) {
            mdl m = m_new(F32, 80 + (uint32_t)(i * 2 + swap));
            onr_tensor *x = m_se(&m, cs[i], swap);
            m_conv(&m, "conv", "t", "y", cs[i]);
            m_output(&m, "y");
            check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 2, 3, 4}, RTOL, ATOL);
        }
    /* with an activation and a residual after the conv: one FusedConv */
    int64_t od[4];
    conv_out_dims(&C11, N, S, od);
    mdl m = m_new(F32, 90);
    onr_tensor *x = m_se(&m, &C11, 0);
    m_input(&m, "z", 4, od);
    m_conv(&m, "conv", "t", "c", &C11);
    m_binary(&m, "Add", "c", "z", "a");
    m_unary(&m, "Relu", "a", "y");
    m_output(&m, "y");
    onr_tensor *in[2] = {x, t_rand(F32, 4, od, 14, -1, 1)};
    check(&m, 13, 2, in, (want){"FusedConv", 1, 1, 4, 3, 6}, RTOL, ATOL);
    /* a BatchNormalization after the conv folds into it first */
    m = m_new(F32, 92);
    x = m_se(&m, &C2, 0);
    m_conv(&m, "conv", "t", "c", &C2);
    m_bn(&m, "bn", "c", "y", C2.M, 1e-5f, -1, NULL);
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 3, 3, 5}, RTOL, ATOL);
    /* S a graph input of one image's scales ([1, C, 1, 1]) for a batch of 2 */
    m = m_new(F32, 91);
    x = m_x(&m, &C2);
    m_input(&m, "s", 4, (int64_t[]){1, 4, 1, 1});
    m_binary(&m, "Mul", "x", "s", "t");
    m_conv(&m, "conv", "t", "y", &C2);
    m_output(&m, "y");
    onr_tensor *in2[2] = {x, t_rand(F32, 4, (int64_t[]){1, 4, 1, 1}, 15, -1, 1)};
    check(&m, 13, 2, in2, (want){"FusedConv", 1, 1, 2, 1, 2}, RTOL, ATOL);
}

static void test_scale_near_misses(void **state)
{
    (void)state;
    /* S that scales more than channels: [N, C, S, 1], [1, 1, S, S], X's
     * whole shape; and X * X */
    const int64_t sds[3][4] = {{N, 4, S, 1}, {1, 1, S, S}, {N, 4, S, S}};
    for (int k = 0; k < 4; k++) {
        mdl m = m_new(F32, 100 + (uint32_t)k);
        onr_tensor *x = m_x(&m, &C11);
        int n_in = 1;
        onr_tensor *in[2] = {x, NULL};
        if (k < 3) {
            m_input(&m, "s", 4, sds[k]);
            in[1] = t_rand(F32, 4, sds[k], 16, -1, 1);
            n_in = 2;
        }
        m_binary(&m, "Mul", "x", k < 3 ? "s" : "x", "t");
        m_conv(&m, "conv", "t", "y", &C11);
        m_output(&m, "y");
        check(&m, 13, n_in, in, (want){"FusedConv", 0, 0, 0, 2, 2}, RTOL, ATOL);
    }
    /* the product read elsewhere too: a graph output, or a second consumer */
    for (int k = 0; k < 2; k++) {
        mdl m = m_new(F32, 110 + (uint32_t)k);
        onr_tensor *x = m_se(&m, &C2, 0);
        m_conv(&m, "conv", "t", "y", &C2);
        m_output(&m, "y");
        if (k == 0) m_output(&m, "t");
        else {
            m_unary(&m, "Relu", "t", "r");
            m_output(&m, "r");
        }
        check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 4 + k, 4 + k}, RTOL, ATOL);
    }
    /* a ConvTranspose, and float64 (FusedConv is float32 only) */
    mdl m = m_new(F32, 120);
    onr_tensor *x = m_se(&m, &C2, 0);
    m_conv_ex(&m, "ConvTranspose", "convt", "t", "y", &C2, NULL, NULL);
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 4, 4}, RTOL, ATOL);
    m = m_new(F64, 121);
    x = m_se(&m, &C2, 0);
    m_conv(&m, "conv", "t", "y", &C2);
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 0, 0, 0, 4, 4}, RTOL, ATOL);
}

/* ======================================================================
 * The tiny exported models
 * ==================================================================== */

/* ======================================================================
 * Max pool after a small-group conv
 * ==================================================================== */

static const cspec CSTEM = {2, 3, 8, 1, 7, 2, 1, 3, 1}; /* 3 inputs, 7x7 / 2, pad 3 */

/* MaxPool of c into y; kernel k, stride s, pads p; extra attributes
 * (ceil_mode, auto_pad, dilations) as asked; two outputs with Indices. */
static void m_pool(mdl *m, const char *c, const char *y, int64_t k, int64_t s, int64_t p,
                   int ceil_mode, const char *auto_pad, int64_t dil, int indices)
{
    pbw a = {0};
    int64_t ks[2] = {k, k}, ss[2] = {s, s}, ps[4] = {p, p, p, p}, ds[2] = {dil, dil};
    pbw_attr_ints(&a, "kernel_shape", ks, 2);
    pbw_attr_ints(&a, "strides", ss, 2);
    if (auto_pad) pbw_attr_string(&a, "auto_pad", auto_pad);
    else pbw_attr_ints(&a, "pads", ps, 4);
    if (ceil_mode) pbw_attr_int(&a, "ceil_mode", 1);
    if (dil > 1) pbw_attr_ints(&a, "dilations", ds, 2);
    if (indices) pbw_node(&m->g, "MaxPool", y, NAMES(c), NAMES(y, "idx"), &a);
    else pbw_node(&m->g, "MaxPool", y, NAMES(c), NAMES(y), &a);
}

/* x [2, C, 21, 21] as graph input "x" */
static onr_tensor *m_x21(mdl *m, const cspec *c)
{
    int64_t d[4] = {N, c->C, 21, 21};
    m_input(m, "x", 4, d);
    return t_rand(m->dtype, 4, d, 103, -1.f, 1.f);
}

static void test_pool(void **state)
{
    (void)state;
    /* Conv -> Relu -> MaxPool (a stem) and Conv -> BN -> Relu -> MaxPool */
    for (int bn = 0; bn < 2; bn++) {
        mdl m = m_new(F32, 60 + (uint32_t)bn);
        onr_tensor *x = m_x21(&m, &CSTEM);
        m_conv(&m, "conv", "x", "c", &CSTEM);
        if (bn) m_bn(&m, "bn", "c", "cb", CSTEM.M, 1e-5f, -1, NULL);
        m_unary(&m, "Relu", bn ? "cb" : "c", "r");
        m_pool(&m, "r", "y", 3, 2, 1, 0, NULL, 1, 0);
        m_output(&m, "y");
        check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 3 + bn, 1, 3 + bn}, RTOL, ATOL);
    }
    /* Conv -> MaxPool -> Relu: the pool joins the conv, the Relu after
     * it stays (a pooled output takes no epilogue) */
    mdl m = m_new(F32, 62);
    onr_tensor *x = m_x21(&m, &CSTEM);
    m_conv(&m, "conv", "x", "c", &CSTEM);
    m_pool(&m, "c", "p", 2, 2, 0, 0, NULL, 1, 0);
    m_unary(&m, "Relu", "p", "y");
    m_output(&m, "y");
    check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 2, 2, 3}, RTOL, ATOL);
    /* 3 inputs, 3x3 / 1 with Winograd forced on: the conv runs as
     * Winograd, whole, before its pool (the fused op's other path) */
    static const cspec C3 = {2, 3, 8, 1, 3, 1, 1, 1, 1};
    for (int force = 0; force < 2; force++) {
        onr_wino_force(force ? ONR_WINO_FORCE : -1);
        size_t banded = onr_conv_pool_banded_count(), wino = onr_wino_run_count();
        m = m_new(F32, 63);
        x = m_x21(&m, &C3);
        m_conv(&m, "conv", "x", "c", &C3);
        m_unary(&m, "Relu", "c", "r");
        m_pool(&m, "r", "y", 3, 2, 1, 0, NULL, 1, 0);
        m_output(&m, "y");
        check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 3, 1, 3}, RTOL, force ? 1e-4f : ATOL);
        assert_int_equal(onr_conv_pool_banded_count() > banded, !force);
        assert_int_equal(onr_wino_run_count() > wino, force);
    }
    onr_wino_force(-1);
}

static void test_pool_near_misses(void **state)
{
    (void)state;
    /* the pool's variants it leaves alone: Indices, ceil_mode, auto_pad,
     * dilations; then a conv of 8 inputs (GEMMs), and a Relu output that
     * is also a graph output. The Relu still joins the conv. */
    for (int v = 0; v < 6; v++) {
        static const cspec C8 = {2, 8, 8, 1, 3, 1, 1, 1, 1};
        const cspec *cs = v == 4 ? &C8 : &CSTEM;
        mdl m = m_new(F32, 70 + (uint32_t)v);
        onr_tensor *x = m_x21(&m, cs);
        m_conv(&m, "conv", "x", "c", cs);
        m_unary(&m, "Relu", "c", "r");
        m_pool(&m, "r", "y", 3, 2, 1, v == 1, v == 2 ? "SAME_UPPER" : NULL, v == 3 ? 2 : 1, v == 0);
        m_output(&m, "y");
        if (v == 5) m_output(&m, "r");
        check(&m, 13, 1, &x, (want){"FusedConv", 1, 1, 2, 2, 3}, RTOL, ATOL);
    }
}

static void test_models(void **state)
{
    (void)state;
    const char *src = getenv("ONR_SOURCE_DIR");
    if (!src) skip();
    static const struct {
        const char *dir;
        int convs;
    } models[] = {{"tiny_resnet18", 20}, {"tiny_resnet50", 53}, {"tiny_mobilenet_v2", 31}};
    for (int i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/testdata/%s/model.onnx", src, models[i].dir);
        onr_session *s = NULL;
        if (onr_session_open(path, NULL, &s)) fail_msg("%s: %s", path, onr_session_errmsg(s));
        const char *gone[] = {"Relu", "Clip", "Add", "BatchNormalization", "Sigmoid"};
        for (int k = 0; k < 5; k++)
            if (tk_count_steps(s, gone[k]))
                fail_msg("%s keeps %d %s steps", models[i].dir, tk_count_steps(s, gone[k]),
                         gone[k]);
        assert_int_equal(tk_count_steps(s, "FusedConv") + tk_count_steps(s, "Conv"),
                         models[i].convs);
        onr_session_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_vs_conv),
        cmocka_unit_test(test_kernel_errors),
        cmocka_unit_test(test_kernel_scale),
        cmocka_unit_test(test_kernel_pool),
        cmocka_unit_test(test_kernel_pool_errors),
        cmocka_unit_test(test_bn_fold),
        cmocka_unit_test(test_bn_fold_releases_originals),
        cmocka_unit_test(test_bn_fold_types),
        cmocka_unit_test(test_bn_convtranspose),
        cmocka_unit_test(test_bn_near_misses),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_activation_near_misses),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_residual_near_misses),
        cmocka_unit_test(test_residual_in_place),
        cmocka_unit_test(test_bias_fold),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_scale_near_misses),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_near_misses),
        cmocka_unit_test(test_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
