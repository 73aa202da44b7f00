/*
 * test_dwconv.c - the depthwise convolution kernel (src/ops/dwconv.c) and
 * Conv's use of it.
 *
 * Every kernel this CPU runs (ref, avx2, avx512, each forced in turn), with
 * and without the workspace (stride 2: rows split into even and odd columns,
 * or the reference), against a double-precision loop written here from the
 * definition: kernel
 * sizes 1, 3, 5, 7 (and 2x4), strides 1, 2, 3 (and unequal ones), dilation,
 * asymmetric pads, output widths 1..70 (every tail and border split of both
 * vector widths), channel multiplier 2, N > 1, every activation of the
 * epilogue with the residual before and after it, with and without bias.
 * Results are bit-identical for 1, 2 and 3 threads. Buffers that end at, or
 * start right after, an unmapped page show that the masked border loads and
 * tail stores touch nothing outside the tensors. Small planes run 16
 * channels at a time (AVX-512) where C >= 16: cases with such blocks and a
 * rest, every epilogue. Small groups (cg > 1, up
 * to 16 channels per group, output channel blocks of 8, 4, 2, 1) likewise.
 * Last, Conv and FusedConv nodes through the executor (2-D, 1-D, auto_pad,
 * float16, small groups).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kutil.h"

#include "ir/ir.h"
#include "ops/dwconv.h"

static const char *const kernels[] = {"ref", "avx2", "avx512"};
enum { NKERNELS = 3 };

typedef struct dcase {
    int64_t N, C, mult, IH, IW, KH, KW, SH, SW, DH, DW, PT, PB, PL, PR;
    int64_t cg; /* input channels per group; 0: depthwise */
} dcase;

static int64_t cg_of(const onr_dwconv *g) { return g->cg > 1 ? g->cg : 1; }
static int64_t outs_of(const onr_dwconv *g) { return g->C / cg_of(g) * g->mult; }

static void geom(const dcase *c, onr_dwconv *g)
{
    memset(g, 0, sizeof *g);
    g->N = c->N, g->C = c->C, g->mult = c->mult, g->cg = c->cg;
    g->IH = c->IH, g->IW = c->IW, g->KH = c->KH, g->KW = c->KW;
    g->SH = c->SH, g->SW = c->SW, g->DH = c->DH, g->DW = c->DW;
    g->PT = c->PT, g->PL = c->PL;
    g->OH = (c->IH + c->PT + c->PB - ((c->KH - 1) * c->DH + 1)) / c->SH + 1;
    g->OW = (c->IW + c->PL + c->PR - ((c->KW - 1) * c->DW + 1)) / c->SW + 1;
}

static double act_ref(const onr_dwconv *g, double v)
{
    switch (g->act) {
    case ONR_DW_ACT_RELU: return v < 0 ? 0 : v;
    case ONR_DW_ACT_CLIP: v = v < g->a ? g->a : v; return v > g->b ? g->b : v;
    case ONR_DW_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case ONR_DW_ACT_SILU: return v / (1 + exp(-v));
    case ONR_DW_ACT_HARDSIGMOID:
    case ONR_DW_ACT_HARDSWISH: {
        double h = g->a * v + g->b;
        h = h < 0 ? 0 : h > 1 ? 1 : h;
        return g->act == ONR_DW_ACT_HARDSWISH ? v * h : h;
    }
    case ONR_DW_ACT_LEAKYRELU: return v < 0 ? g->a * v : v;
    default: return v;
    }
}

/* The definition, in double; tol[i] the allowed error of output i. */
static void dw_ref(const onr_dwconv *g, const float *x, const float *w, const float *b,
                   const float *z, double *y, double *tol)
{
    int64_t M = outs_of(g), cg = cg_of(g);
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    double acc = 0, mag = 0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t kh = 0; kh < g->KH; kh++)
                            for (int64_t kw = 0; kw < g->KW; kw++) {
                                int64_t ih = oh * g->SH - g->PT + kh * g->DH;
                                int64_t iw = ow * g->SW - g->PL + kw * g->DW;
                                if (ih < 0 || ih >= g->IH || iw < 0 || iw >= g->IW) continue;
                                int64_t ci = m / g->mult * cg + c;
                                double t = (double)w[((m * cg + c) * g->KH + kh) * g->KW + kw] *
                                           x[((n * g->C + ci) * g->IH + ih) * g->IW + iw];
                                acc += t;
                                mag += fabs(t);
                            }
                    int64_t i = ((n * M + m) * g->OH + oh) * g->OW + ow;
                    if (b) acc += b[m], mag += fabs(b[m]);
                    if (z && !g->res_after) acc += z[i], mag += fabs(z[i]);
                    acc = act_ref(g, acc);
                    if (z && g->res_after) acc += z[i], mag += fabs(z[i]);
                    y[i] = acc;
                    tol[i] = 4e-7 * (double)(cg * g->KH * g->KW + 3) * (mag + 1) + 1e-7;
                }
}

static float *rand_floats(size_t n, uint32_t seed)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((int32_t)(s >> 8) - (1 << 23)) / (float)(1 << 23);
    }
    return p;
}

static size_t in_count(const onr_dwconv *g) { return (size_t)(g->N * g->C * g->IH * g->IW); }
static size_t out_count(const onr_dwconv *g)
{
    return (size_t)(g->N * outs_of(g) * g->OH * g->OW);
}

static void fail_geom(const onr_dwconv *g, const char *what, size_t i, double got, double want)
{
    fail_msg("%s: y[%zu] = %.9g, want %.9g (N%lld C%lld cg%lld x%lld in %lldx%lld k %lldx%lld "
             "s %lld,%lld d %lld,%lld pads %lld,%lld out %lldx%lld act %d res_after %d)",
             what, i, got, want, (long long)g->N, (long long)g->C, (long long)g->cg,
             (long long)g->mult,
             (long long)g->IH, (long long)g->IW, (long long)g->KH, (long long)g->KW,
             (long long)g->SH, (long long)g->SW, (long long)g->DH, (long long)g->DW,
             (long long)g->PT, (long long)g->PL, (long long)g->OH, (long long)g->OW, g->act,
             g->res_after);
}

/* Run g on every kernel, with and without the workspace, and 1..3 threads
 * against the reference; res: 0 no Z, 1 Z before the activation, 2 after. */
static void check_geom(const onr_dwconv *g, int bias, int res, uint32_t seed)
{
    size_t nx = in_count(g), ny = out_count(g);
    size_t nw = (size_t)(outs_of(g) * cg_of(g) * g->KH * g->KW), n1 = ny ? ny : 1;
    float *x = rand_floats(nx, seed), *w = rand_floats(nw, seed + 1);
    float *b = bias ? rand_floats((size_t)outs_of(g), seed + 2) : NULL;
    float *z = res ? rand_floats(ny, seed + 3) : NULL;
    double *want = malloc(sizeof(double) * n1), *tol = malloc(sizeof(double) * n1);
    float *y = malloc(sizeof(float) * n1), *y1 = malloc(sizeof(float) * n1);
    onr_dwconv gg = *g;
    gg.res_after = res == 2;
    dw_ref(&gg, x, w, b, z, want, tol);
    size_t wsb = onr_dwconv_workspace_size(&gg, 3);
    void *wsp = wsb ? aligned_alloc(64, (wsb + 63) / 64 * 64) : NULL;
    /* W laid out beforehand, as Conv's create does for a constant W */
    size_t nwl = onr_dwconv_weights_floats(&gg);
    float *wl = nwl ? malloc(sizeof(float) * nwl) : NULL;
    if (wl) onr_dwconv_prepare_weights(&gg, w, wl);
    /* per kernel: no workspace; a workspace (W laid out in it); and W laid out */
    for (int run = 0; run < 3 * NKERNELS; run++) {
        const char *kern = kernels[run / 3];
        int mode = run % 3;
        void *ws = mode ? wsp : NULL;
        if ((mode && !wsp) || (mode == 2 && !wl) || onr_dwconv_force_kernel(kern) != 0) continue;
        for (int nt = 1; nt <= 3; nt++) {
            char what[64];
            snprintf(what, sizeof what, "%s, mode %d, %d threads", kern, mode, nt);
            memset(y, 0xff, sizeof(float) * ny); /* NaN: every output must be written */
            onr_dwconv_f32(&gg, x, w, mode == 2 ? wl : NULL, b, z, y, ws, nt);
            for (size_t i = 0; i < ny; i++)
                if (!(fabs(y[i] - want[i]) <= tol[i])) fail_geom(&gg, what, i, y[i], want[i]);
            if (nt == 1)
                memcpy(y1, y, sizeof(float) * ny);
            else if (ny && memcmp(y, y1, sizeof(float) * ny) != 0)
                fail_msg("%s: results differ from 1 thread's", what);
        }
    }
    onr_dwconv_force_kernel(NULL);
    free(x), free(w), free(b), free(z), free(want), free(tol), free(y), free(y1), free(wsp), free(wl);
}

static void check_case(const dcase *c, int act, float a, float b, int bias, int res)
{
    onr_dwconv g;
    geom(c, &g);
    assert_true(g.OH >= 1 && g.OW >= 1);
    g.act = act, g.a = a, g.b = b;
    check_geom(&g, bias, res, (uint32_t)(c->IW * 131 + c->KW * 7 + c->SW));
}

/* Kernel sizes, strides, dilations and pads, each over every output width
 * from 1 to 70. */
static void test_geometry_sweep(void **state)
{
    (void)state;
    static const int64_t cfg[][8] = {
        /* K, S, D, PT, PB, PL, PR, mult */
        {3, 1, 1, 1, 1, 1, 1, 1}, {3, 2, 1, 1, 1, 1, 1, 1}, {5, 1, 1, 2, 2, 2, 2, 1},
        {5, 2, 1, 2, 2, 2, 2, 2}, {1, 1, 1, 0, 0, 0, 0, 2}, {7, 3, 1, 3, 3, 3, 3, 1},
        {3, 1, 2, 2, 2, 2, 2, 1}, {3, 2, 1, 0, 1, 0, 1, 1}, {5, 1, 1, 0, 4, 4, 0, 1},
        {3, 3, 1, 1, 1, 1, 1, 2}, {1, 2, 1, 0, 0, 0, 0, 1}, {3, 1, 1, 0, 0, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        const int64_t *f = cfg[i];
        int64_t dk = (f[0] - 1) * f[2] + 1;
        for (int64_t ow = 1; ow <= 70; ow++) {
            /* the input width giving this output width */
            int64_t iw = (ow - 1) * f[1] + dk - f[5] - f[6];
            if (iw < 1) continue;
            dcase c = {1, 2, f[7], 5, iw, f[0], f[0], f[1], f[1], f[2], f[2], f[3], f[4], f[5], f[6], 1};
            if (c.IH + c.PT + c.PB < dk) c.IH = dk;
            check_case(&c, ONR_DW_ACT_NONE, 0, 0, (int)(ow & 1), 0);
        }
    }
}

/* Plane heights and the rows of the 4-row tiles, unequal kernels, strides
 * and dilations in H and W, N > 1, big pads. */
static void test_shapes(void **state)
{
    (void)state;
    static const dcase cases[] = {
        {2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},       /* 1x1 plane */
        {2, 3, 2, 1, 20, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1},      /* 1-D */
        {1, 4, 1, 17, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     /* 4-row tiles and remainder */
        {1, 2, 1, 23, 40, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 1},
        {3, 2, 2, 9, 37, 2, 4, 1, 2, 1, 1, 1, 0, 2, 1, 1},      /* 2x4, unequal strides */
        {1, 2, 1, 12, 50, 3, 3, 2, 1, 3, 2, 3, 3, 2, 2, 1},     /* unequal dilations */
        {1, 1, 1, 6, 18, 3, 3, 1, 1, 1, 1, 5, 5, 20, 20, 1},    /* pads beyond the input */
        {1, 2, 1, 30, 7, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 1},      /* tall narrow */
        {1, 2, 3, 14, 14, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 1},     /* TF-style SAME, mult 3 */
        {1, 1, 1, 5, 200, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     /* long row */
        {1, 1, 1, 5, 200, 5, 5, 1, 2, 1, 1, 2, 2, 2, 2, 1},
        {1, 1, 1, 9, 9, 9, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1},       /* kernel = input */
        {2, 16, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},      /* many small planes */
        {1, 2, 1, 30, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},     /* stride 2: 4-row tiles inside */
        {1, 2, 1, 40, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},     /* stride 2: 8-row tiles inside */
        {1, 2, 1, 29, 37, 3, 3, 2, 1, 1, 1, 0, 2, 1, 1, 1},     /* strides 2, 1 */
        {1, 2, 1, 26, 35, 3, 3, 1, 2, 1, 1, 1, 1, 1, 0, 1},     /* strides 1, 2 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], ONR_DW_ACT_NONE, 0, 0, (int)(i & 1), (int)(i % 3));
}

/* Every activation, the residual before and after it, with and without
 * bias, on geometries with border, interior and tail blocks. */
static void test_epilogue(void **state)
{
    (void)state;
    static const struct {
        int act;
        float a, b;
    } acts[] = {
        {ONR_DW_ACT_NONE, 0, 0},        {ONR_DW_ACT_RELU, 0, 0},
        {ONR_DW_ACT_CLIP, 0.f, 0.5f},   {ONR_DW_ACT_CLIP, -0.2f, 0.1f},
        {ONR_DW_ACT_SIGMOID, 0, 0},     {ONR_DW_ACT_SILU, 0, 0},
        {ONR_DW_ACT_HARDSIGMOID, 0.2f, 0.5f}, {ONR_DW_ACT_HARDSWISH, 1.f / 6, 0.5f},
        {ONR_DW_ACT_LEAKYRELU, 0.1f, 0},
    };
    static const dcase cases[] = {
        {1, 3, 1, 9, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 2, 2, 11, 41, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 1},
        {1, 2, 1, 6, 5, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1}, /* stride 3: the reference */
        {1, 35, 1, 9, 13, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1}, /* 16-channel blocks and the rest */
        {2, 16, 1, 8, 9, 3, 3, 2, 2, 1, 1, 1, 0, 1, 0, 1},  /* blocks, stride 2, N = 2 */
        {1, 20, 1, 12, 27, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* blocks, rows of 27 */
        {1, 16, 1, 40, 50, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 1}, /* blocks, 5x5 on a 43x53 plane */
        {1, 16, 1, 10, 40, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 1}, /* blocks, 7x7, rows of 40 */
        {1, 16, 1, 70, 120, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* blocks in bands of 32 rows */
        {1, 17, 1, 99, 126, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, 1}, /* stride 2, bands of 25 */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
            for (int res = 0; res < 3; res++)
                for (int bias = 0; bias < 2; bias++)
                    check_case(&cases[ci], acts[ai].act, acts[ai].a, acts[ai].b, bias, res);
}

/* The blocked kernel (16 channels a vector) over every output width from
 * 1 to 40: rows narrower than 8 through the transposed copy, wider ones
 * written straight to the planes 8 positions at a time, a row's last block
 * overlapping the one before; a cheap activation (Clip) in the block, an
 * expensive one (SiLU) in a pass over the row. */
static void test_blocked_widths(void **state)
{
    (void)state;
    static const int64_t cfg[][2] = {{3, 1}, {3, 2}, {5, 1}, {5, 2}, {7, 1}}; /* K, S */
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
        for (int64_t ow = 1; ow <= 40; ow++) {
            const int64_t k = cfg[i][0], st = cfg[i][1], p = k / 2;
            const int64_t iw = (ow - 1) * st + k - 2 * p;
            if (iw < 1) continue;
            dcase c = {1, 16 + (ow % 3 == 0 ? 16 : 0), 1, 6 + ow % 5, iw, k, k, st, st, 1, 1,
                       p, p, p, p, 1};
            check_case(&c, ow & 1 ? ONR_DW_ACT_CLIP : ONR_DW_ACT_SILU, -0.5f, 0.5f, 1, 0);
            if (ow % 7 == 0) check_case(&c, ONR_DW_ACT_NONE, 0, 0, 0, 0);
        }
}

/* Small groups (cg > 1): group sizes, output channels per group that
 * split into blocks of 8, 4, 2 and 1, strides 1, 2 and 3, dilation and
 * pads, over output widths 1..40, with every epilogue on a few; one group
 * of a few inputs over widths up to 112. */
static void test_groups(void **state)
{
    (void)state;
    static const int64_t cfg[][9] = {
        /* K, S, D, PT, PB, PL, PR, mult, cg */
        {3, 1, 1, 1, 1, 1, 1, 8, 8},  {3, 2, 1, 1, 1, 1, 1, 8, 8},  {3, 1, 1, 1, 1, 1, 1, 15, 2},
        {3, 2, 1, 0, 1, 0, 1, 3, 16}, {1, 1, 1, 0, 0, 0, 0, 11, 4}, {5, 1, 2, 4, 4, 4, 4, 1, 3},
        {3, 3, 1, 1, 1, 1, 1, 2, 2},  {2, 1, 1, 0, 1, 1, 0, 16, 5},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        const int64_t *f = cfg[i];
        int64_t dk = (f[0] - 1) * f[2] + 1;
        for (int64_t ow = 1; ow <= 40; ow += ow < 18 ? 1 : 7) {
            int64_t iw = (ow - 1) * f[1] + dk - f[5] - f[6];
            if (iw < 1) continue;
            dcase c = {1 + (ow % 3 == 0), 2 * f[8], f[7], 4, iw, f[0], f[0], f[1], f[1], f[2], f[2],
                       f[3], f[4], f[5], f[6], f[8]};
            if (c.IH + c.PT + c.PB < dk) c.IH = dk;
            check_case(&c, ONR_DW_ACT_NONE, 0, 0, (int)(ow & 1), (int)(ow % 3));
        }
    }
    /* one group of 2-4 inputs (an image's stem): many outputs, rows wide
     * enough for tiles of 3, 2 and 1 vectors and a tail; rows of whole
     * vectors (16-128 wide) put the masked ones at the ends of tiles of 2
     * or 3 (a pad on the left only, on both sides, or none) */
    static const int64_t stem[][9] = {
        /* K, S, D, PT, PB, PL, PR, mult, cg */
        {7, 2, 1, 3, 3, 3, 3, 21, 3}, {3, 2, 1, 1, 1, 1, 1, 32, 3},
        {3, 1, 1, 1, 1, 1, 1, 13, 4}, {5, 2, 1, 2, 2, 2, 2, 9, 2},
        {3, 2, 1, 1, 0, 1, 0, 16, 3}, {3, 1, 1, 0, 0, 0, 0, 8, 3},
        /* ResNet's stem (its rows split between the threads), and 50
         * outputs: the last block of 8 holds 2 */
        {7, 2, 1, 3, 3, 3, 3, 64, 3}, {7, 2, 1, 3, 3, 3, 3, 50, 3},
    };
    static const int64_t widths[] = {1,  15, 16, 17, 32, 33, 47,  48, 49,
                                     50, 64, 80, 81, 96, 97, 112, 128};
    for (size_t i = 0; i < sizeof stem / sizeof stem[0]; i++)
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            const int64_t *f = stem[i], ow = widths[wi];
            int64_t iw = (ow - 1) * f[1] + f[0] - f[5] - f[6];
            if (iw < 1) continue;
            dcase c = {1, f[8], f[7], 5, iw, f[0], f[0], f[1], f[1], f[2], f[2],
                       f[3], f[4], f[5], f[6], f[8]};
            if (c.IH + c.PT + c.PB < f[0]) c.IH = f[0];
            check_case(&c, wi % 2 ? ONR_DW_ACT_RELU : ONR_DW_ACT_NONE, 0, 0, (int)(wi & 1),
                       (int)(wi % 3));
        }
    static const dcase ecase[] = {
        {1, 16, 8, 6, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8},
        {2, 6, 5, 9, 23, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3},
    };
    static const int acts[] = {ONR_DW_ACT_RELU, ONR_DW_ACT_CLIP, ONR_DW_ACT_SILU,
                               ONR_DW_ACT_HARDSWISH, ONR_DW_ACT_LEAKYRELU};
    for (size_t ci = 0; ci < sizeof ecase / sizeof ecase[0]; ci++)
        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
            for (int res = 0; res < 3; res++)
                check_case(&ecase[ci], acts[ai], acts[ai] == ONR_DW_ACT_CLIP ? -0.3f : 0.1f,
                           acts[ai] == ONR_DW_ACT_HARDSWISH ? 0.5f : 0.4f, 1, res);
}

/* Large values through the sigmoids (exp clamps) and NaN staying NaN. */
static void test_special_values(void **state)
{
    (void)state;
    dcase c = {1, 1, 1, 3, 21, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    onr_dwconv g;
    geom(&c, &g);
    size_t nx = in_count(&g), ny = out_count(&g);
    float x[63], w[9], y[63];
    for (size_t i = 0; i < nx; i++) x[i] = (float)((int)i - 30) * 10.f;
    for (int i = 0; i < 9; i++) w[i] = i == 4 ? 1.f : 0.f;
    x[10] = NAN;
    for (int k = 0; k < NKERNELS; k++) {
        if (onr_dwconv_force_kernel(kernels[k]) != 0) continue;
        g.act = ONR_DW_ACT_SIGMOID;
        onr_dwconv_f32(&g, x, w, NULL, NULL, NULL, y, NULL, 1);
        for (size_t i = 0; i < ny; i++) {
            /* NaN reaches every output whose window reads x[0][10] (0 * NaN) */
            if (i / 21 <= 1 && i % 21 >= 9 && i % 21 <= 11) continue;
            double want = 1 / (1 + exp(-(double)x[i]));
            if (fabs(y[i] - want) > 1e-6) fail_msg("%s: sigmoid(%g) = %g", kernels[k], x[i], y[i]);
        }
        assert_true(isnan(y[10]));
    }
    onr_dwconv_force_kernel(NULL);
    /* 16 channels of a small plane (the blocked kernel where the CPU has
     * it, with a workspace): Relu and Clip keep NaN as the row kernels do
     * (v < 0 ? 0 : v, not max(v, 0)) */
    dcase cb = {1, 16, 1, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    geom(&cb, &g);
    size_t nb = in_count(&g);
    float *xb = calloc(nb, sizeof(float)), *yb = malloc(sizeof(float) * nb), wb[16 * 9] = {0};
    void *ws = aligned_alloc(64, (onr_dwconv_workspace_size(&g, 1) + 63) / 64 * 64);
    assert_non_null(xb), assert_non_null(yb), assert_non_null(ws);
    for (int c = 0; c < 16; c++) wb[c * 9 + 4] = 1.f;
    xb[5 * 36 + 0] = NAN; /* channel 5, corner */
    const int acts[2] = {ONR_DW_ACT_RELU, ONR_DW_ACT_CLIP};
    for (int ai = 0; ai < 2; ai++) {
        g.act = acts[ai], g.a = -1.f, g.b = 1.f;
        onr_dwconv_f32(&g, xb, wb, NULL, NULL, NULL, yb, ws, 1);
        assert_true(isnan(yb[5 * 36 + 0]));
    }
    free(xb), free(yb), free(ws);
}

/* ---- guard pages ---------------------------------------------------------- */

typedef struct guarded {
    void *map;
    size_t len;
    float *p;
} guarded;

/* n floats between two unmapped pages: flush with the end of a page (at_end)
 * or with the start of one. */
static guarded guard_alloc(size_t n, int at_end)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), bytes = (n * sizeof(float) + pg - 1) / pg * pg;
    guarded g;
    g.len = bytes + 2 * pg;
    g.map = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g.map != MAP_FAILED);
    char *base = (char *)g.map + pg;
    assert_int_equal(mprotect(g.map, pg, PROT_NONE), 0);
    assert_int_equal(mprotect(base + bytes, pg, PROT_NONE), 0);
    g.p = at_end ? (float *)(base + bytes) - n : (float *)base;
    return g;
}

static void test_guard_pages(void **state)
{
    (void)state;
    static const dcase cases[] = {
        {1, 1, 1, 5, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 1, 1, 5, 37, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
        {1, 1, 1, 6, 45, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 1},
        {1, 1, 1, 6, 45, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4, 1},
        {1, 1, 2, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 4, 3, 5, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},  /* groups of 2 */
        {1, 6, 9, 5, 37, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3},  /* groups of 3, stride 2 */
        {1, 8, 8, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8},
        {1, 17, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},  /* a 16-channel block */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int at_end = 0; at_end < 2; at_end++) {
            onr_dwconv g;
            geom(&cases[ci], &g);
            g.act = ONR_DW_ACT_SILU;
            size_t nx = in_count(&g), ny = out_count(&g);
            size_t nw = (size_t)(outs_of(&g) * cg_of(&g) * g.KH * g.KW);
            guarded X = guard_alloc(nx, at_end), Y = guard_alloc(ny, at_end);
            guarded Z = guard_alloc(ny, at_end);
            size_t nws = onr_dwconv_workspace_size(&g, 1) / sizeof(float);
            guarded WS = guard_alloc(nws ? nws : 1, at_end);
            float *x = rand_floats(nx, 5), *w = rand_floats(nw, 6), *z = rand_floats(ny, 7);
            memcpy(X.p, x, sizeof(float) * nx);
            memcpy(Z.p, z, sizeof(float) * ny);
            mprotect((char *)X.map + sysconf(_SC_PAGESIZE),
                     X.len - 2 * (size_t)sysconf(_SC_PAGESIZE), PROT_READ);
            double *want = malloc(sizeof(double) * ny), *tol = malloc(sizeof(double) * ny);
            dw_ref(&g, x, w, NULL, z, want, tol);
            for (int k = 0; k < NKERNELS; k++) {
                if (onr_dwconv_force_kernel(kernels[k]) != 0) continue;
                onr_dwconv_f32(&g, X.p, w, NULL, NULL, Z.p, Y.p, WS.p, 1);
                for (size_t i = 0; i < ny; i++)
                    if (!(fabs(Y.p[i] - want[i]) <= tol[i]))
                        fail_msg("%s case %zu: y[%zu] = %g, want %g", kernels[k], ci, i, Y.p[i],
                                 want[i]);
            }
            onr_dwconv_force_kernel(NULL);
            munmap(X.map, X.len), munmap(Y.map, Y.len), munmap(Z.map, Z.len), munmap(WS.map, WS.len);
            free(x), free(w), free(z), free(want), free(tol);
        }
}

static void test_force_kernel(void **state)
{
    (void)state;
    assert_int_equal(onr_dwconv_force_kernel("no-such"), -1);
    assert_int_equal(onr_dwconv_force_kernel("ref"), 0);
    assert_string_equal(onr_dwconv_kernel_name(), "ref");
    assert_int_equal(onr_dwconv_force_kernel(NULL), 0);
    assert_non_null(onr_dwconv_kernel_name());
}

/* ---- through the executor ------------------------------------------------- */

/* A depthwise Conv node (group = C) against the reference; pads or auto_pad. */
static void conv_node_case(int nsp, const int64_t *xd, int64_t cg, int64_t mult,
                           const int64_t *k, const int64_t *s, const int64_t *d,
                           const int64_t *pads, const char *auto_pad, int nt)
{
    int64_t C = xd[1], M = C / cg * mult;
    int64_t wd[4] = {M, cg, k[0], nsp > 1 ? k[1] : 0}, bd[1] = {M};
    onr_tensor *x = tk_rand_f32(2 + nsp, xd, 21), *w = tk_rand_f32(2 + nsp, wd, 22);
    onr_tensor *b = tk_rand_f32(1, bd, 23);
    onr_node *n = tk_node("Conv");
    tk_attr_int(n, "group", C / cg);
    tk_attr_ints(n, "strides", nsp, s);
    tk_attr_ints(n, "dilations", nsp, d);
    if (auto_pad) tk_attr_string(n, "auto_pad", auto_pad);
    else tk_attr_ints(n, "pads", 2 * nsp, pads);
    onr_tensor *in[3] = {x, w, b};
    onr_tensor *y = tk_run1(n, 11, 3, in, nt);
    tk_node_free(n);
    /* the same geometry for the reference: pads from the output size */
    onr_dwconv g = {0};
    g.N = xd[0], g.C = C, g.mult = mult, g.cg = cg;
    g.IH = nsp > 1 ? xd[2] : 1, g.IW = xd[1 + nsp];
    g.KH = nsp > 1 ? k[0] : 1, g.KW = k[nsp - 1];
    g.SH = nsp > 1 ? s[0] : 1, g.SW = s[nsp - 1];
    g.DH = nsp > 1 ? d[0] : 1, g.DW = d[nsp - 1];
    g.OH = nsp > 1 ? y->dims[2] : 1, g.OW = y->dims[1 + nsp];
    if (auto_pad) { /* SAME_UPPER: the smaller half before */
        int64_t th = (g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1 - g.IH;
        int64_t tw = (g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1 - g.IW;
        g.PT = th > 0 ? th / 2 : 0, g.PL = tw > 0 ? tw / 2 : 0;
    } else {
        g.PT = nsp > 1 ? pads[0] : 0, g.PL = pads[nsp - 1];
    }
    size_t ny = out_count(&g);
    assert_int_equal((int64_t)ny, y->numel);
    double *want = malloc(sizeof(double) * ny), *tol = malloc(sizeof(double) * ny);
    dw_ref(&g, x->data, w->data, b->data, NULL, want, tol);
    const float *got = y->data;
    for (size_t i = 0; i < ny; i++)
        if (!(fabs(got[i] - want[i]) <= tol[i])) fail_msg("y[%zu] = %g, want %g", i, got[i], want[i]);
    free(want), free(tol);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b), onr_tensor_free(y);
}

static void test_conv_node(void **state)
{
    (void)state;
    const int64_t x2[4] = {2, 6, 13, 29}, k3[2] = {3, 3}, s1[2] = {1, 1}, s2[2] = {2, 2};
    const int64_t d1[2] = {1, 1}, p1[4] = {1, 1, 1, 1}, pa[4] = {0, 2, 1, 0};
    const int64_t x1[3] = {1, 4, 50}, k5[1] = {5}, s21[1] = {2}, d21[1] = {1}, p21[2] = {2, 1};
    for (int nt = 1; nt <= 2; nt++) {
        conv_node_case(2, x2, 1, 1, k3, s1, d1, p1, NULL, nt);
        conv_node_case(2, x2, 1, 2, k3, s2, d1, pa, NULL, nt);
        conv_node_case(2, x2, 1, 1, k3, s2, d1, NULL, "SAME_UPPER", nt);
        conv_node_case(1, x1, 1, 3, k5, s21, d21, p21, NULL, nt);
        /* small groups: 3 groups of 2, 2 of 3 (8 outputs each), 1-D groups of 2 */
        conv_node_case(2, x2, 2, 3, k3, s1, d1, p1, NULL, nt);
        conv_node_case(2, x2, 3, 8, k3, s2, d1, pa, NULL, nt);
        conv_node_case(1, x1, 2, 5, k5, s21, d21, p21, NULL, nt);
        /* one group of 3 inputs, 7x7 stride 2 (a stem), W laid out at create */
        const int64_t xs[4] = {1, 3, 29, 53}, k7[2] = {7, 7}, p3[4] = {3, 3, 3, 3};
        conv_node_case(2, xs, 3, 19, k7, s2, d1, p3, NULL, nt);
    }
}

/* float16 through the float32 buffers: against float32 within half's
 * precision. */
static void test_conv_node_f16(void **state)
{
    (void)state;
    int64_t xd[4] = {1, 4, 9, 21}, wd[4] = {4, 1, 3, 3};
    onr_tensor *x = tk_rand_f32(4, xd, 31), *w = tk_rand_f32(4, wd, 32);
    uint16_t xh[756], wh[36];
    float xr[756], wr[36];
    for (int i = 0; i < 756; i++) {
        xh[i] = onr_float_to_half(((float *)x->data)[i]);
        xr[i] = onr_half_to_float(xh[i]);
    }
    for (int i = 0; i < 36; i++) {
        wh[i] = onr_float_to_half(((float *)w->data)[i]);
        wr[i] = onr_half_to_float(wh[i]);
    }
    onr_tensor *in[2] = {tk_typed(ONR_FLOAT16, 4, xd, xh), tk_typed(ONR_FLOAT16, 4, wd, wh)};
    onr_node *n = tk_node("Conv");
    tk_attr_int(n, "group", 4);
    tk_attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
    onr_tensor *y = tk_run1(n, 11, 2, in, 1);
    tk_node_free(n);
    onr_dwconv g = {.N = 1, .C = 4, .mult = 1, .IH = 9, .IW = 21, .OH = 9, .OW = 21, .KH = 3,
                    .KW = 3, .SH = 1, .SW = 1, .DH = 1, .DW = 1, .PT = 1, .PL = 1};
    double want[756], tol[756];
    dw_ref(&g, xr, wr, NULL, NULL, want, tol);
    assert_int_equal(y->dtype, ONR_FLOAT16);
    for (int i = 0; i < 756; i++) {
        double h = onr_half_to_float(((const uint16_t *)y->data)[i]);
        if (fabs(h - want[i]) > 2e-3 * (1 + fabs(want[i])))
            fail_msg("y[%d] = %g, want %g", i, h, want[i]);
    }
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(in[0]), onr_tensor_free(in[1]);
    onr_tensor_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_sweep), cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_epilogue),       cmocka_unit_test(test_groups),
        cmocka_unit_test(test_blocked_widths),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_guard_pages),    cmocka_unit_test(test_force_kernel),
        cmocka_unit_test(test_conv_node),      cmocka_unit_test(test_conv_node_f16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
