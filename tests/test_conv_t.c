/*
 * test_conv_t.c - the transposed GEMM path of Conv and FusedConv for small
 * outputs (CONV_GEMMT in src/ops/conv.c): Y^T = col^T x W^T with W^T packed
 * at create, then transposed into Y with the epilogue.
 *
 * With the path forced (onr_conv_force_transposed), each geometry (1x1,
 * strided, grouped, 1-D, 3-D, dilated, auto_pad, N > 1) is checked against
 * a direct convolution in double and against the normal path, at 1, 2 and 3
 * threads (bit for bit; layers of several taps over 16 or more channels
 * a group gather col^T tap-major, the others channel-major), the threads splitting the output channels in
 * claims of whole panels (each thread its own share first, then what is
 * left of the others': which thread computes a claim changes from run to
 * run; each gathers its own col^T), or the output positions (onr_conv_t_split: each part
 * gathers its rows of col^T), and again in forced bands of output
 * positions (onr_conv_t_force_band: bit for bit across thread counts and
 * splits); 2-D layers of one kernel with dilation 1 reading their taps in
 * place from X by rows (onr_conv_t_rows: kernel rows in runs of the
 * stride, strides past the kernel, positions padded against aliasing),
 * and again with col^T gathered; FusedConv's epilogues (each activation, residual
 * before and after, with and without bias) against the normal path. Then
 * the automatic choice through a session: a 7x7 output with 64 channels
 * runs transposed, a 56x56 one and a grouped layer of 8 channels per group
 * do not; a 3x3 stride-2 layer to 28x28 whose column matrix would not fit
 * in half the L2 does, in bands, a 2x2 one and one of 8 channels do not.
 *
 * Then the GEMM paths' padded W (onr_conv_force_padded): layers whose W
 * rows are a multiple of 512 floats (1x1 with 512 or 1024 inputs, 2x2 with
 * 128, 1-D, strided, N > 1, FusedConv with a residual, float16) run with
 * W copied at create with longer rows and consumed, against the double
 * reference, bit for bit against the unpadded run, at 1, 2 and 3 threads;
 * a session with such a layer, whose W the planner drops.
 *
 * Then W released where the plan's shapes are fixed: a session of a layer
 * on Winograd or on the transposed path releases W when its input's shape
 * is static and keeps it when the batch is symbolic, a layer on the GEMM
 * paths keeps it, each output against the reference; a step created for
 * fixed shapes and reshaped to others is refused, not run without W; a
 * 1x1 layer on AMX releases it too, and an X that AMX refuses (inf, NaN)
 * runs on W summed back from its terms, bit for bit as with W kept.
 *
 * Tolerance: |got - want| <= 1e-5 * S + 1e-6, S the sum of |w * x| (and
 * |b|) over the output's terms: float dot products in another order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

#include "gemm/gemm.h"
#include "gemm/team.h"
#include "exec/exec.h"
#include "ops/conv.h"

typedef struct tcase {
    int64_t N, C, M, G, nsp;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6]; /* begins then ends */
    const char *auto_pad;
} tcase;

static const tcase tcases[] = {
    {2, 64, 48, 1, 2, {7, 7}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},             /* 1x1: X is col */
    {1, 32, 40, 1, 2, {13, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL},  /* strided 3x3 */
    {1, 32, 64, 2, 2, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL},    /* groups */
    {2, 16, 20, 1, 1, {30}, {5}, {1}, {2}, {3, 1}, NULL},                     /* 1-D, dilated */
    {1, 8, 16, 1, 3, {5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, NULL},
    {1, 64, 96, 1, 2, {14, 14}, {1, 1}, {2, 2}, {1, 1}, {0}, NULL},           /* 1x1 stride 2 */
    {1, 512, 24, 1, 2, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},            /* CK 512: padded col^T rows */
    {1, 7, 20, 1, 2, {3, 5}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},              /* CK 7, OUT 15: transpose tails */
    {1, 24, 36, 1, 2, {9, 8}, {5, 5}, {1, 2}, {1, 1}, {0}, "SAME_UPPER"},     /* auto_pad */
    {3, 17, 33, 1, 2, {3, 5}, {2, 3}, {1, 1}, {1, 1}, {0, 2, 1, 0}, NULL},    /* odd everything */
    {1, 40, 100, 1, 2, {6, 7}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL},   /* 4 panels, dilated 2-D */
    {1, 64, 48, 1, 2, {4, 9}, {2, 4}, {1, 3}, {1, 1}, {3, 0, 0, 2}, NULL},    /* taps all padding */
    {2, 48, 40, 1, 3, {3, 4, 5}, {2, 2, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 0, 1, 2}, NULL}, /* 3-D */
    {1, 16, 24, 1, 2, {11, 12}, {5, 3}, {2, 3}, {1, 1}, {2, 1, 1, 0}, NULL},  /* runs of 2, 2, 1 kernel rows */
    {1, 32, 40, 1, 2, {9, 10}, {2, 2}, {3, 3}, {1, 1}, {0}, NULL},            /* stride past the kernel */
    {1, 128, 32, 1, 2, {8, 9}, {2, 2}, {2, 2}, {1, 1}, {0, 1, 0, 0}, NULL},   /* X by rows 512 a position: padded */
};

static int64_t out_len(const tcase *c, int j, int64_t *pb)
{
    int64_t ek = (c->k[j] - 1) * c->d[j] + 1;
    if (c->auto_pad) {
        int64_t o = (c->in[j] + c->s[j] - 1) / c->s[j];
        int64_t tot = (o - 1) * c->s[j] + ek - c->in[j];
        if (tot < 0) tot = 0;
        *pb = tot / 2;
        return o;
    }
    *pb = c->pads[j];
    return (c->in[j] + c->pads[j] + c->pads[c->nsp + j] - ek) / c->s[j] + 1;
}

static int64_t prod(const int64_t *v, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= v[i];
    return p;
}

/* Direct convolution in double: y and S per output. */
static void ref_conv(const tcase *c, const float *x, const float *w, const float *b, double *y,
                     double *s, int64_t *odims)
{
    int64_t pb[3] = {0}, o[3] = {1, 1, 1}, in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, st[3] = {1, 1, 1},
            dl[3] = {1, 1, 1};
    int off = 3 - (int)c->nsp; /* right-align to 3 dims */
    for (int j = 0; j < c->nsp; j++) {
        int64_t p;
        o[off + j] = out_len(c, j, &p);
        pb[off + j] = p;
        in[off + j] = c->in[j];
        k[off + j] = c->k[j];
        st[off + j] = c->s[j];
        dl[off + j] = c->d[j];
        odims[j] = o[off + j];
    }
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, IN = in[0] * in[1] * in[2], OUT = o[0] * o[1] * o[2];
    int64_t K = k[0] * k[1] * k[2];
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++)
            for (int64_t q = 0; q < OUT; q++) {
                int64_t od = q / (o[1] * o[2]), oh = q / o[2] % o[1], ow = q % o[2];
                double acc = b ? b[m] : 0, sum = b ? fabs(b[m]) : 0;
                for (int64_t ci = 0; ci < Cg; ci++)
                    for (int64_t t = 0; t < K; t++) {
                        int64_t kd = t / (k[1] * k[2]), kh = t / k[2] % k[1], kw = t % k[2];
                        int64_t id = od * st[0] - pb[0] + kd * dl[0], ih = oh * st[1] - pb[1] + kh * dl[1],
                                iw = ow * st[2] - pb[2] + kw * dl[2];
                        if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] || iw < 0 || iw >= in[2])
                            continue;
                        int64_t cc = m / Mg * Cg + ci;
                        double v = (double)x[(n * c->C + cc) * IN + (id * in[1] + ih) * in[2] + iw] *
                                   w[(m * Cg + ci) * K + t];
                        acc += v;
                        sum += fabs(v);
                    }
                y[(n * c->M + m) * OUT + q] = acc;
                s[(n * c->M + m) * OUT + q] = sum;
            }
}

static void conv_attrs(onr_node *n, const tcase *c)
{
    tk_attr_int(n, "group", c->G);
    tk_attr_ints(n, "kernel_shape", (int)c->nsp, c->k);
    tk_attr_ints(n, "strides", (int)c->nsp, c->s);
    tk_attr_ints(n, "dilations", (int)c->nsp, c->d);
    if (c->auto_pad) tk_attr_string(n, "auto_pad", c->auto_pad);
    else tk_attr_ints(n, "pads", 2 * (int)c->nsp, c->pads);
}

typedef struct kact {
    const char *name; /* NULL: none */
    int np;
    float p[2];
} kact;

/* Conv (act == NULL) or FusedConv with W and B constant, the transposed
 * path forced on (t = 1) or off (t = 0); checks it was (not) taken. */
static onr_tensor *run(const tcase *c, const kact *act, int res, onr_tensor **in, int n_in, int t,
                       int nt)
{
    onr_conv_force_transposed(t);
    onr_node *n = tk_node(act ? "FusedConv" : "Conv");
    if (act) {
        free(n->domain);
        n->domain = onr_strdup("org.onnxrun");
        if (act->name) tk_attr_string(n, "activation", act->name);
        if (act->np) tk_attr_floats(n, "activation_params", act->np, act->p);
        if (res) tk_attr_int(n, "residual_after_activation", res == 2);
    }
    conv_attrs(n, c);
    onr_tensor *out[1];
    onr_err err = {0};
    size_t before = onr_conv_transposed_count();
    if (tk_run_const(n, act ? 1 : 11, n_in, in, 2u | 4u, 1, out, nt, &err))
        fail_msg("%s: %s", act ? "FusedConv" : "Conv", err.msg);
    assert_int_equal(onr_conv_transposed_count() > before, t);
    tk_node_free(n);
    onr_conv_force_transposed(-1);
    return out[0];
}

/* Conv with the path chosen as for a model (the planner's output shape). */
static onr_tensor *run_auto(const tcase *c, onr_tensor **in, int n_in, int nt)
{
    onr_node *n = tk_node("Conv");
    conv_attrs(n, c);
    onr_tensor *out[1];
    onr_err err = {0};
    if (tk_run_const(n, 11, n_in, in, 2u | 4u, 1, out, nt, &err)) fail_msg("Conv: %s", err.msg);
    tk_node_free(n);
    return out[0];
}

static void check_close(const onr_tensor *got, const double *want, const double *s, const char *what)
{
    const float *g = got->data;
    for (int64_t i = 0; i < got->numel; i++) {
        double e = fabs(g[i] - want[i]), tol = 1e-5 * s[i] + 1e-6;
        if (!(e <= tol))
            fail_msg("%s element %lld: got %.8g, want %.8g (S %.4g)", what, (long long)i, g[i],
                     want[i], s[i]);
    }
}

/* The transposed path at 2 and 3 threads, the parts splitting the output
 * channels, then the positions: bit for bit the 1-thread result one. */
static void same_at_2_and_3(const tcase *c, onr_tensor **in, int n_in, const onr_tensor *one)
{
    for (int split = 0; split < 2; split++) {
        onr_conv_t_split(split);
        onr_tensor *t2 = run(c, NULL, 0, in, n_in, 1, 2);
        onr_tensor *t3 = run(c, NULL, 0, in, n_in, 1, 3);
        onr_conv_t_split(-1);
        assert_memory_equal(one->data, t2->data, onr_tensor_nbytes(one));
        assert_memory_equal(one->data, t3->data, onr_tensor_nbytes(one));
        tk_free_all(1, &t2), tk_free_all(1, &t3);
    }
}

static void test_geometries(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof tcases / sizeof tcases[0]; ci++) {
        const tcase *c = &tcases[ci];
        int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->G}, bd[1] = {c->M}, od[3];
        for (int j = 0; j < c->nsp; j++) xd[2 + j] = c->in[j], wd[2 + j] = c->k[j];
        int rank = 2 + (int)c->nsp;
        onr_tensor *x = tk_rand_f32(rank, xd, 11 + (uint32_t)ci), *w = tk_rand_f32(rank, wd, 23 + (uint32_t)ci);
        onr_tensor *b = tk_rand_f32(1, bd, 37 + (uint32_t)ci);
        for (int j = 0; j < c->nsp; j++) {
            int64_t pb;
            od[j] = out_len(c, j, &pb);
        }
        int64_t OUT = prod(od, (int)c->nsp), ny = c->N * c->M * OUT;
        double *want = malloc(sizeof(double) * (size_t)ny), *s = malloc(sizeof(double) * (size_t)ny);
        assert_non_null(want);
        assert_non_null(s);
        for (int bias = 0; bias < 2; bias++) {
            ref_conv(c, x->data, w->data, bias ? b->data : NULL, want, s, od);
            onr_tensor *in[3] = {x, w, bias ? b : NULL};
            onr_tensor *normal = run(c, NULL, 0, in, bias ? 3 : 2, 0, 1);
            check_close(normal, want, s, "normal path");
            /* several taps over 16 or more channels a group: tap-major;
             * of those, one 2-D kernel with dilation 1 reads its taps in
             * place from X by rows, unless that is turned off */
            const int tapmajor = prod(c->k, (int)c->nsp) > 1 && c->C / c->G >= 16;
            const int rows_ok = tapmajor && c->nsp == 2 && c->d[0] == 1 && c->d[1] == 1;
            for (int rows = 1; rows >= 0; rows--) {
                onr_conv_t_rows(rows ? -1 : 0);
                size_t tm = onr_conv_t_tapmajor_count(), rc = onr_conv_t_rows_count();
                onr_tensor *t1 = run(c, NULL, 0, in, bias ? 3 : 2, 1, 1);
                assert_int_equal(onr_conv_t_tapmajor_count() > tm, tapmajor);
                assert_int_equal(onr_conv_t_rows_count() > rc, rows && rows_ok);
                assert_int_equal(t1->numel, ny);
                check_close(t1, want, s, rows ? "transposed path" : "transposed path, col^T gathered");
                same_at_2_and_3(c, in, bias ? 3 : 2, t1);
                /* in bands of one and two row tiles (13 rounds up to 24;
                 * reading X by rows, whole output rows) */
                for (int bi = 0; bi < 2; bi++) {
                    onr_conv_t_force_band(bi ? 13 : 12);
                    onr_tensor *b1 = run(c, NULL, 0, in, bias ? 3 : 2, 1, 1);
                    check_close(b1, want, s, "transposed path in bands");
                    same_at_2_and_3(c, in, bias ? 3 : 2, b1);
                    onr_conv_t_force_band(0);
                    tk_free_all(1, &b1);
                }
                tk_free_all(1, &t1);
            }
            onr_conv_t_rows(-1);
            tk_free_all(1, &normal);
        }
        free(want);
        free(s);
        onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b);
    }
}

static const kact kacts[] = {
    {NULL, 0, {0, 0}},        {"Relu", 0, {0, 0}},        {"Clip", 2, {-0.3f, 0.4f}},
    {"Sigmoid", 0, {0, 0}},   {"Silu", 0, {0, 0}},        {"HardSigmoid", 2, {0.3f, 0.4f}},
    {"HardSwish", 0, {0, 0}}, {"LeakyRelu", 1, {0.2f, 0}},
};

static void test_fused_epilogue(void **state)
{
    (void)state;
    const tcase *c = &tcases[1]; /* strided 3x3: OUT 7x6 */
    int64_t od[2], pb;
    od[0] = out_len(c, 0, &pb), od[1] = out_len(c, 1, &pb);
    int64_t xd[4] = {c->N, c->C, c->in[0], c->in[1]}, wd[4] = {c->M, c->C, 3, 3}, bd[1] = {c->M};
    int64_t zd[4] = {c->N, c->M, od[0], od[1]};
    onr_tensor *x = tk_rand_f32(4, xd, 41), *w = tk_rand_f32(4, wd, 42);
    onr_tensor *b = tk_rand_f32(1, bd, 43), *z = tk_rand_f32(4, zd, 44);
    for (size_t ai = 0; ai < sizeof kacts / sizeof kacts[0]; ai++)
        for (int res = 0; res < 3; res++) {
            onr_tensor *in[4] = {x, w, (ai + (size_t)res) % 2 ? b : NULL, res ? z : NULL};
            int n_in = res ? 4 : 3;
            onr_tensor *want = run(c, &kacts[ai], res, in, n_in, 0, 1);
            onr_tensor *got = run(c, &kacts[ai], res, in, n_in, 1, 1);
            const float *g = got->data, *e = want->data;
            for (int64_t i = 0; i < got->numel; i++)
                if (!(fabsf(g[i] - e[i]) <= 1e-4f * (1.f + fabsf(e[i]))))
                    fail_msg("%s, residual %d, element %lld: transposed %.8g, normal %.8g",
                             kacts[ai].name ? kacts[ai].name : "no activation", res, (long long)i,
                             g[i], e[i]);
            for (int split = 0; split < 2; split++) {
                onr_conv_t_split(split);
                onr_tensor *got2 = run(c, &kacts[ai], res, in, n_in, 1, 2);
                onr_conv_t_split(-1);
                assert_memory_equal(got->data, got2->data, onr_tensor_nbytes(got));
                tk_free_all(1, &got2);
            }
            tk_free_all(1, &want), tk_free_all(1, &got);
        }
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b), onr_tensor_free(z);
}

/* A session over x [1, C, H, H] -> Conv KxK, stride S, pads K/2 (C -> M,
 * group G) -> y: whether the run took the transposed path, and y against
 * the reference. */
static int session_takes_t_k(int64_t C, int64_t M, int64_t G, int64_t H, int64_t K, int64_t S)
{
    pbw g = {0}, a = {0};
    int64_t O = (H + 2 * (K / 2) - K) / S + 1;
    int64_t xd[4] = {1, C, H, H}, wd[4] = {M, C / G, K, K}, yd[4] = {1, M, O, O};
    onr_tensor *w = tk_rand_f32(4, wd, 5), *x = tk_rand_f32(4, xd, 6);
    pbw_init_f32(&g, "W", 4, wd, w->data, (size_t)w->numel);
    pbw_value_info(&g, 11, "x", 1, 4, xd);
    pbw_attr_int(&a, "group", G);
    pbw_attr_ints(&a, "strides", (int64_t[]){S, S}, 2);
    pbw_attr_ints(&a, "pads", (int64_t[]){K / 2, K / 2, K / 2, K / 2}, 4);
    pbw_node(&g, "Conv", "conv", (const char *[]){"x", "W", NULL}, (const char *[]){"y", NULL}, &a);
    pbw_value_info(&g, 12, "y", 1, 4, yd);
    pbw m = pbw_model(&g, 8, 13);
    onr_session *s = NULL;
    if (onr_session_open_memory(m.b, m.n, NULL, &s)) fail_msg("%s", onr_session_errmsg(s));
    free(m.b);
    size_t before = onr_conv_transposed_count();
    const onr_tensor *in = x;
    if (onr_session_run(s, 1, NULL, &in)) fail_msg("%s", onr_session_errmsg(s));
    int took = onr_conv_transposed_count() > before;
    tcase c = {1, C, M, G, 2, {H, H}, {K, K}, {S, S}, {1, 1}, {K / 2, K / 2, K / 2, K / 2}, NULL};
    int64_t ny = M * O * O, od[3];
    double *want = malloc(sizeof(double) * (size_t)ny), *sum = malloc(sizeof(double) * (size_t)ny);
    assert_non_null(want);
    assert_non_null(sum);
    ref_conv(&c, x->data, w->data, NULL, want, sum, od);
    check_close(onr_session_output(s, 0), want, sum, "session");
    free(want), free(sum);
    onr_session_free(s);
    onr_tensor_free(w), onr_tensor_free(x);
    return took;
}

static int session_takes_t(int64_t C, int64_t M, int64_t G, int64_t H)
{
    return session_takes_t_k(C, M, G, H, 1, 1);
}

static void test_automatic_choice(void **state)
{
    (void)state;
    /* 196 columns would fill 224: transposed when gathered from a 3x3
     * window, not for a 1x1 kernel (X or its strided gather transposed) */
    assert_true(session_takes_t_k(32, 64, 1, 28, 3, 2));
    assert_false(session_takes_t_k(32, 64, 1, 28, 1, 2));
    assert_false(session_takes_t(32, 64, 1, 14));
    assert_true(session_takes_t(64, 64, 1, 7));   /* 49 columns would fill 64 */
    assert_false(session_takes_t(64, 64, 1, 56)); /* 3136 columns fill their tiles */
    assert_false(session_takes_t(64, 64, 8, 7));  /* 8 channels per group would not */
    /* a 3x3 stride-2 layer to 28x28 whose column matrix (784 x 576
     * floats) would not fit in half the L2 while W^T (576 x 128) fits it
     * all: transposed, in bands; 2x2 windows (4 taps) and 8 channels
     * (channel-major gather) stay on im2col */
    onr_sgemm_blocking bl;
    onr_sgemm_get_blocking(&bl);
    const int banded = 784 * 576 * 4 > (int64_t)bl.l2_bytes / 2 && 576 * 128 * 4 <= (int64_t)bl.l2_bytes;
    assert_int_equal(session_takes_t_k(64, 128, 1, 56, 3, 2), banded);
    assert_false(session_takes_t_k(96, 192, 1, 56, 2, 2));
    assert_false(session_takes_t_k(8, 128, 1, 56, 3, 2));
}

/* ---- a strided 1x1 layer on AMX --------------------------------------------- */

/* The 1x1 layer c (with a bias) where AMX is in use and on the float32
 * kernels (AMX off): each close to the double reference and bit for bit
 * the same at 1 and 2 threads, on AMX exactly when it is in use. session
 * (the layer is C -> M on H x H, stride 1): a session of it takes the
 * transposed path exactly when AMX is off, and the layer alone runs with
 * its path chosen as for a model; else it runs never transposed. */
static void amx_layer_check(const tcase *c, uint32_t seed, int session)
{
    int64_t xd[4] = {c->N, c->C, c->in[0], c->in[1]}, wd[4] = {c->M, c->C, 1, 1}, bd[1] = {c->M};
    onr_tensor *x = tk_rand_f32(4, xd, seed), *w = tk_rand_f32(4, wd, seed + 1);
    onr_tensor *b = tk_rand_f32(1, bd, seed + 2);
    int64_t pb, od[2] = {out_len(c, 0, &pb), out_len(c, 1, &pb)};
    const int64_t ny = c->N * c->M * od[0] * od[1];
    double *want = malloc(sizeof(double) * (size_t)ny), *s = malloc(sizeof(double) * (size_t)ny);
    assert_non_null(want);
    assert_non_null(s);
    ref_conv(c, x->data, w->data, b->data, want, s, od);
    onr_tensor *in[3] = {x, w, b};
    for (int amx = 1; amx >= 0; amx--) {
        if (amx && onr_sgemm_force_kernel("amx") != 0) continue; /* no AMX here */
        if (!amx) onr_sgemm_force_kernel("avx512");
        size_t before = onr_sgemm_amx_count();
        if (session) { /* the planner's choice */
            assert_int_equal(session_takes_t(c->C, c->M, 1, c->in[0]), !amx);
            assert_int_equal(onr_sgemm_amx_count() > before, amx);
            before = onr_sgemm_amx_count();
        }
        onr_tensor *y1 = session ? run_auto(c, in, 3, 1) : run(c, NULL, 0, in, 3, 0, 1);
        onr_tensor *y2 = session ? run_auto(c, in, 3, 2) : run(c, NULL, 0, in, 3, 0, 2);
        assert_int_equal(onr_sgemm_amx_count() > before, amx);
        check_close(y1, want, s, amx ? "AMX" : "float32 kernels");
        assert_memory_equal(y1->data, y2->data, onr_tensor_nbytes(y1));
        tk_free_all(1, &y1), tk_free_all(1, &y2);
    }
    onr_sgemm_force_kernel(NULL);
    free(want), free(s);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b);
}

/* A 1x1 stride-2 layer (ResNet's downsampling: 256 -> 128 channels, 56x56
 * -> 28x28) gathers its columns (im2col) and, where AMX is in use, runs
 * its product on the weights packed for AMX at create. */
static void test_amx_strided(void **state)
{
    (void)state;
    const tcase c = {1, 256, 128, 1, 2, {56, 56}, {1, 1}, {2, 2}, {1, 1}, {0}, NULL};
    amx_layer_check(&c, 71, 0);
}

/* A wide 1x1 layer on 7 x 7 (MobileNetV2's 160 -> 960) runs on AMX where
 * the CPU has it, not transposed (conv_t_create leaves it to AMX). */
static void test_amx_wide_small(void **state)
{
    (void)state;
    const tcase c = {1, 160, 960, 1, 2, {7, 7}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL};
    amx_layer_check(&c, 81, 1);
}

/* A 3x3 stride-2 layer to 28 x 28 (64 -> 128 channels: W_g^T 0.3 MB)
 * runs transposed with W_g^T packed for AMX where the CPU has it (its
 * bands' products on AMX), close to the reference, bit for bit the same in
 * sessions of 1 and 2 threads; on the float32 kernels transposed too. */
static void test_amx_transposed(void **state)
{
    (void)state;
    const int64_t C = 64, M = 128, H = 56, O = 28;
    pbw g = {0}, a = {0};
    int64_t xd[4] = {1, C, H, H}, wd[4] = {M, C, 3, 3}, yd[4] = {1, M, O, O};
    onr_tensor *w = tk_rand_f32(4, wd, 91), *x = tk_rand_f32(4, xd, 92);
    pbw_init_f32(&g, "W", 4, wd, w->data, (size_t)w->numel);
    pbw_value_info(&g, 11, "x", 1, 4, xd);
    pbw_attr_ints(&a, "strides", (int64_t[]){2, 2}, 2);
    pbw_attr_ints(&a, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pbw_node(&g, "Conv", "conv", (const char *[]){"x", "W", NULL}, (const char *[]){"y", NULL}, &a);
    pbw_value_info(&g, 12, "y", 1, 4, yd);
    pbw m = pbw_model(&g, 8, 13);
    tcase c = {1, C, M, 1, 2, {H, H}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL};
    int64_t ny = M * O * O, od[3];
    double *want = malloc(sizeof(double) * (size_t)ny), *sum = malloc(sizeof(double) * (size_t)ny);
    assert_non_null(want);
    assert_non_null(sum);
    ref_conv(&c, x->data, w->data, NULL, want, sum, od);
    for (int amx = 1; amx >= 0; amx--) {
        if (amx && onr_sgemm_force_kernel("amx") != 0) continue; /* no AMX here */
        if (!amx) onr_sgemm_force_kernel("avx512");
        onr_tensor *y[2] = {NULL, NULL};
        for (int nt = 1; nt <= 2; nt++) {
            onr_options *o = onr_options_new();
            assert_non_null(o);
            onr_options_set_threads(o, nt);
            onr_session *s = NULL;
            if (onr_session_open_memory(m.b, m.n, o, &s)) fail_msg("%s", onr_session_errmsg(s));
            onr_options_free(o);
            size_t before = onr_sgemm_amx_count(), tb = onr_conv_transposed_count();
            const onr_tensor *in = x;
            if (onr_session_run(s, 1, NULL, &in)) fail_msg("%s", onr_session_errmsg(s));
            assert_true(onr_conv_transposed_count() > tb);
            assert_int_equal(onr_sgemm_amx_count() > before, amx);
            check_close(onr_session_output(s, 0), want, sum, amx ? "AMX" : "float32 kernels");
            y[nt - 1] = onr_tensor_clone(onr_session_output(s, 0));
            assert_non_null(y[nt - 1]);
            onr_session_free(s);
        }
        assert_memory_equal(y[0]->data, y[1]->data, onr_tensor_nbytes(y[0]));
        onr_tensor_free(y[0]), onr_tensor_free(y[1]);
    }
    onr_sgemm_force_kernel(NULL);
    free(m.b), free(want), free(sum);
    onr_tensor_free(w), onr_tensor_free(x);
}

/* ---- W with padded rows ---------------------------------------------------- */

static const tcase pcases[] = {
    {1, 512, 40, 1, 2, {9, 9}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL},              /* 1x1: GEMM */
    {2, 512, 20, 1, 2, {7, 6}, {1, 1}, {2, 2}, {1, 1}, {0}, NULL},              /* 1x1 strided, N 2 */
    {1, 128, 30, 1, 2, {9, 8}, {2, 2}, {1, 1}, {1, 1}, {1, 0, 0, 1}, NULL},     /* 2x2: im2col */
    {1, 1024, 13, 1, 1, {17}, {1}, {1}, {1}, {0, 0}, NULL},                     /* 1-D */
};

/* Conv (act NULL) or FusedConv, padding on or off: whether create padded. */
static onr_tensor *run_pad(const tcase *c, const kact *act, int res, onr_tensor **in, int n_in,
                           int pad, int nt)
{
    onr_conv_force_padded(pad);
    size_t before = onr_conv_padded_count();
    onr_tensor *y = run(c, act, res, in, n_in, 0, nt);
    assert_int_equal(onr_conv_padded_count() > before, pad);
    onr_conv_force_padded(1);
    return y;
}

static void test_padded_weights(void **state)
{
    (void)state;
    static const kact relu = {"Relu", 0, {0, 0}};
    for (size_t ci = 0; ci < sizeof pcases / sizeof pcases[0]; ci++) {
        const tcase *c = &pcases[ci];
        int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C}, bd[1] = {c->M}, od[3], zd[5] = {c->N, c->M};
        for (int j = 0; j < c->nsp; j++) xd[2 + j] = c->in[j], wd[2 + j] = c->k[j];
        int rank = 2 + (int)c->nsp;
        for (int j = 0; j < c->nsp; j++) {
            int64_t pb;
            zd[2 + j] = od[j] = out_len(c, j, &pb);
        }
        onr_tensor *x = tk_rand_f32(rank, xd, 61 + (uint32_t)ci), *w = tk_rand_f32(rank, wd, 62);
        onr_tensor *b = tk_rand_f32(1, bd, 63), *z = tk_rand_f32(rank, zd, 64);
        int64_t ny = c->N * c->M * prod(od, (int)c->nsp);
        double *want = malloc(sizeof(double) * (size_t)ny), *s = malloc(sizeof(double) * (size_t)ny);
        assert_non_null(want);
        assert_non_null(s);
        ref_conv(c, x->data, w->data, b->data, want, s, od);
        onr_tensor *in[4] = {x, w, b, z};
        onr_tensor *off = run_pad(c, NULL, 0, in, 3, 0, 1);
        check_close(off, want, s, "unpadded");
        for (int nt = 1; nt <= 3; nt++) {
            onr_tensor *on = run_pad(c, NULL, 0, in, 3, 1, nt);
            assert_memory_equal(on->data, off->data, sizeof(float) * (size_t)ny);
            tk_free_all(1, &on);
        }
        /* FusedConv: bias, residual, Relu */
        onr_tensor *foff = run_pad(c, &relu, 1, in, 4, 0, 2), *fon = run_pad(c, &relu, 1, in, 4, 1, 2);
        assert_memory_equal(fon->data, foff->data, sizeof(float) * (size_t)ny);
        const float *fy = fon->data, *zz = z->data;
        for (int64_t i = 0; i < ny; i++) {
            double v = want[i] + zz[i], e = v > 0 ? v : 0;
            if (!(fabs(fy[i] - e) <= 1e-5 * (s[i] + fabs(zz[i])) + 1e-6))
                fail_msg("FusedConv element %lld: got %.8g, want %.8g", (long long)i, fy[i], e);
        }
        tk_free_all(1, &off), tk_free_all(1, &foff), tk_free_all(1, &fon);
        free(want), free(s);
        onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(b), onr_tensor_free(z);
    }
}

/* float16: the widened W is the one padded (and replaced) */
static void test_padded_float16(void **state)
{
    (void)state;
    const tcase *c = &pcases[0];
    int64_t xd[4] = {c->N, c->C, c->in[0], c->in[1]}, wd[4] = {c->M, c->C, 1, 1};
    onr_tensor *x = tk_rand_f32(4, xd, 71), *w = tk_rand_f32(4, wd, 72);
    onr_tensor *xh = tk_typed(ONR_FLOAT16, 4, xd, NULL), *wh = tk_typed(ONR_FLOAT16, 4, wd, NULL);
    uint16_t *px = xh->data, *pw = wh->data;
    for (int64_t i = 0; i < x->numel; i++) px[i] = onr_float_to_half(((float *)x->data)[i]);
    for (int64_t i = 0; i < w->numel; i++) pw[i] = onr_float_to_half(((float *)w->data)[i]);
    onr_tensor *in[2] = {xh, wh};
    onr_tensor *off = run_pad(c, NULL, 0, in, 2, 0, 1), *on = run_pad(c, NULL, 0, in, 2, 1, 2);
    assert_int_equal(on->dtype, ONR_FLOAT16);
    assert_memory_equal(on->data, off->data, onr_tensor_nbytes(on));
    tk_free_all(1, &off), tk_free_all(1, &on);
    onr_tensor_free(x), onr_tensor_free(w), onr_tensor_free(xh), onr_tensor_free(wh);
}

/* Through a session (the planner drops the consumed W): a 1x1 layer of
 * 512 inputs on 14x14, twice, against the reference. */
static void test_padded_session(void **state)
{
    (void)state;
    size_t before = onr_conv_padded_count();
    assert_false(session_takes_t(512, 64, 1, 14));
    assert_true(onr_conv_padded_count() > before);
}

/* ---- W released where the shapes are fixed --------------------------------- */

/* A session of one C -> M layer (K x K, stride S, pads K / 2) on H x H, its
 * batch dim static (sym 0) or symbolic (1), or static beside another
 * graph input of a symbolic dim that the layer does not read (2), run
 * twice, each output against the reference. Returns whether create
 * released W. */
static int session_releases_w(int64_t C, int64_t M, int64_t H, int64_t K, int64_t S, int sym)
{
    pbw g = {0}, a = {0};
    int64_t O = (H + 2 * (K / 2) - K) / S + 1;
    int64_t xd[4] = {1, C, H, H}, wd[4] = {M, C, K, K};
    int64_t xdecl[4] = {sym == 1 ? -1 : 1, C, H, H}, ydecl[4] = {sym == 1 ? -1 : 1, M, O, O};
    onr_tensor *w = tk_rand_f32(4, wd, 7), *x = tk_rand_f32(4, xd, 8);
    pbw_init_f32(&g, "W", 4, wd, w->data, (size_t)w->numel);
    pbw_value_info(&g, 11, "x", 1, 4, xdecl);
    pbw_attr_ints(&a, "strides", (int64_t[]){S, S}, 2);
    pbw_attr_ints(&a, "pads", (int64_t[]){K / 2, K / 2, K / 2, K / 2}, 4);
    pbw_node(&g, "Conv", "conv", (const char *[]){"x", "W", NULL}, (const char *[]){"y", NULL}, &a);
    pbw_value_info(&g, 12, "y", 1, 4, ydecl);
    if (sym == 2) { /* u -> Identity -> v, u of a symbolic length */
        pbw_value_info(&g, 11, "u", 1, 1, (int64_t[]){-1});
        pbw_node(&g, "Identity", "id", (const char *[]){"u", NULL}, (const char *[]){"v", NULL},
                 NULL);
        pbw_value_info(&g, 12, "v", 1, 1, (int64_t[]){-1});
    }
    pbw m = pbw_model(&g, 8, 13);
    size_t before = onr_conv_w_released_count();
    onr_session *s = NULL;
    if (onr_session_open_memory(m.b, m.n, NULL, &s)) fail_msg("%s", onr_session_errmsg(s));
    free(m.b);
    int released = onr_conv_w_released_count() > before;
    tcase c = {1, C, M, 1, 2, {H, H}, {K, K}, {S, S}, {1, 1}, {K / 2, K / 2, K / 2, K / 2}, NULL};
    int64_t ny = M * O * O, od[3];
    double *want = malloc(sizeof(double) * (size_t)ny), *sum = malloc(sizeof(double) * (size_t)ny);
    assert_non_null(want);
    assert_non_null(sum);
    ref_conv(&c, x->data, w->data, NULL, want, sum, od);
    onr_tensor *u = tk_rand_f32(1, (int64_t[]){3}, 11);
    const onr_tensor *in[2] = {x, u};
    for (int r = 0; r < 2; r++) {
        if (onr_session_run(s, sym == 2 ? 2 : 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        check_close(onr_session_output(s, 0), want, sum, released ? "W released" : "W kept");
    }
    free(want), free(sum);
    onr_session_free(s);
    onr_tensor_free(w), onr_tensor_free(x), onr_tensor_free(u);
    return released;
}

static void test_fixed_shapes_release(void **state)
{
    (void)state;
    /* Winograd (3x3 stride 1 on 16 x 16), the transposed path (1x1 on 7 x 7) */
    assert_true(session_releases_w(32, 32, 16, 3, 1, 0));
    assert_false(session_releases_w(32, 32, 16, 3, 1, 1));
    assert_false(session_releases_w(32, 32, 16, 3, 1, 2));
    assert_true(session_releases_w(64, 64, 7, 1, 1, 0));
    assert_false(session_releases_w(64, 64, 7, 1, 1, 1));
    /* the GEMM paths read W: a 1x1 layer on 56 x 56 */
    assert_false(session_releases_w(64, 64, 56, 1, 1, 0));
}

/* A session of one 1x1 layer C -> M on H x H with W given, its batch
 * static or symbolic (sym); *released: whether create released W. */
static onr_session *session_1x1(int64_t C, int64_t M, int64_t H, const onr_tensor *w, int sym,
                                int *released)
{
    pbw g = {0};
    int64_t wd[4] = {M, C, 1, 1}, xdecl[4] = {sym ? -1 : 1, C, H, H};
    int64_t ydecl[4] = {sym ? -1 : 1, M, H, H};
    pbw_init_f32(&g, "W", 4, wd, w->data, (size_t)w->numel);
    pbw_value_info(&g, 11, "x", 1, 4, xdecl);
    pbw_node(&g, "Conv", "conv", (const char *[]){"x", "W", NULL}, (const char *[]){"y", NULL},
             NULL);
    pbw_value_info(&g, 12, "y", 1, 4, ydecl);
    pbw m = pbw_model(&g, 8, 13);
    size_t before = onr_conv_w_released_count();
    onr_session *s = NULL;
    if (onr_session_open_memory(m.b, m.n, NULL, &s)) fail_msg("%s", onr_session_errmsg(s));
    free(m.b);
    *released = onr_conv_w_released_count() > before;
    return s;
}

/* A 1x1 layer on AMX (where it is in use: 256 -> 256 on 16 x 16) with
 * static shapes releases W; its output against the reference, and an X
 * holding an inf or a NaN (AMX refuses it: W summed back from its terms)
 * bit for bit what a session that kept W (symbolic batch) gives. */
static void test_fixed_shapes_amx(void **state)
{
    (void)state;
    const int64_t C = 256, M = 256, H = 16;
    int64_t wd[4] = {M, C, 1, 1}, xd[4] = {1, C, H, H};
    onr_tensor *w = tk_rand_f32(4, wd, 12), *x = tk_rand_f32(4, xd, 13);
    int rel_fixed = 0, rel_sym = 0;
    onr_session *sf = session_1x1(C, M, H, w, 0, &rel_fixed);
    onr_session *ss = session_1x1(C, M, H, w, 1, &rel_sym);
    assert_int_equal(rel_fixed, onr_sgemm_amx());
    assert_false(rel_sym);
    tcase c = {1, C, M, 1, 2, {H, H}, {1, 1}, {1, 1}, {1, 1}, {0}, NULL};
    int64_t ny = M * H * H, od[3];
    double *want = malloc(sizeof(double) * (size_t)ny), *sum = malloc(sizeof(double) * (size_t)ny);
    assert_non_null(want);
    assert_non_null(sum);
    ref_conv(&c, x->data, w->data, NULL, want, sum, od);
    for (int r = 0; r < 3; r++) {
        if (r == 1) ((float *)x->data)[5 * H * H + 17] = INFINITY;
        if (r == 2) ((float *)x->data)[200 * H * H + 3] = NAN;
        const onr_tensor *in = x;
        if (onr_session_run(sf, 1, NULL, &in)) fail_msg("%s", onr_session_errmsg(sf));
        if (onr_session_run(ss, 1, NULL, &in)) fail_msg("%s", onr_session_errmsg(ss));
        const onr_tensor *yf = onr_session_output(sf, 0), *ys = onr_session_output(ss, 0);
        if (r == 0) check_close(yf, want, sum, "W released, on AMX");
        assert_memory_equal(yf->data, ys->data, sizeof(float) * (size_t)ny);
    }
    free(want), free(sum);
    onr_session_free(sf), onr_session_free(ss);
    onr_tensor_free(w), onr_tensor_free(x);
}

/* A Conv step created for fixed shapes [1, 32, 16, 16] (Winograd: W
 * consumed) and reshaped to 8 x 8 (im2col, which reads W): refused. */
static void test_fixed_shapes_guard(void **state)
{
    (void)state;
    onr_node *n = tk_node("Conv");
    tk_attr_ints(n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    n->opset = 13;
    n->n_in = 2;
    n->n_out = 1;
    const onr_op *op = onr_op_find(n->domain, n->op_type, 13);
    assert_non_null(op);
    int64_t wd[4] = {32, 32, 3, 3}, hint[4] = {1, 32, 16, 16}, xd[4] = {1, 32, 8, 8};
    onr_tensor *w = tk_rand_f32(4, wd, 9), *x = tk_rand_f32(4, xd, 10), out = {0};
    onr_step s;
    onr_err err = {0};
    assert_int_equal(onr_step_init(&s, n, op, 2, 1, &err), ONR_OK);
    s.opset = 13;
    s.in[0] = x;
    s.in[1] = w;
    s.in_const[1] = 1;
    s.out[0] = &out;
    s.fixed_shapes = 1;
    s.in0_rank = s.out0_rank = 4;
    s.in0_dtype = ONR_FLOAT;
    memcpy(s.in0_dims, hint, sizeof hint);
    memcpy(s.out0_dims, hint, sizeof hint);
    size_t before = onr_conv_w_released_count();
    if (onr_step_create(&s, 1, &err)) fail_msg("create: %s", err.msg);
    assert_true(s.consumed & 2u);
    assert_true(onr_conv_w_released_count() > before);
    assert_int_equal(onr_step_reshape(&s, 1, NULL, &err), ONR_E_RUNTIME);
    assert_non_null(strstr(err.msg, "W was released"));
    onr_step_destroy(&s);
    onr_tensor_free(w), onr_tensor_free(x);
    free(out.data);
    tk_node_free(n);
}

/* (kutil.c keeps the team from backing off to one thread, so the 2- and
 * 3-thread runs split the work however busy the machine is.) */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometries),
        cmocka_unit_test(test_fused_epilogue),
        cmocka_unit_test(test_automatic_choice),
        cmocka_unit_test(test_amx_strided),
        cmocka_unit_test(test_amx_wide_small),
        cmocka_unit_test(test_amx_transposed),
        cmocka_unit_test(test_padded_weights),
        cmocka_unit_test(test_padded_float16),
        cmocka_unit_test(test_padded_session),
        cmocka_unit_test(test_fixed_shapes_release),
        cmocka_unit_test(test_fixed_shapes_guard),
        cmocka_unit_test(test_fixed_shapes_amx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
