/* test_fuse_llama.c - the RMSNormalization and RotaryEmbedding fusions on
 * hand-built graphs: the exported forms (TorchScript opsets 9/13/17,
 * dynamo-style opset 18 with axes / slice bounds as inputs, HF llama's
 * Casts) fuse exactly once per pattern, the near-misses do not fuse at all,
 * and fused and unfused plans agree within rtol 1e-4 / atol 1e-5 with 1 and
 * 2 threads. */
#include "kutil.h"
#include "pbw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { F32 = 1, I64 = 7, F16 = 10 };

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})
#define OUT(...) ((const char *const[]){__VA_ARGS__, NULL})

static void f32_scalar(pbw *g, const char *name, float v) { pbw_init_f32(g, name, 0, NULL, &v, 1); }

static void i64_vec(pbw *g, const char *name, int64_t v)
{
    int64_t d[] = {1};
    pbw_init_i64(g, name, 1, d, &v, 1);
}

static void attr_i(pbw *a, const char *name, int64_t v) { pbw_attr_int(a, name, v); }

/* Serialize graph g as a model at opset and run the fused/unfused check. */
static tk_fuse_report check(pbw *g, int64_t opset, int n_in, onr_tensor **in, const char *op,
                            int nthreads)
{
    pbw m = pbw_model(g, 8, opset);
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, n_in, in, op, 1e-4f, 1e-5f, nthreads, &r);
    free(m.b);
    return r;
}

/* ---- RMSNormalization ------------------------------------------------------ */

typedef struct rms_opt {
    int opset;      /* 17 (axes attribute) or 18 (axes input) */
    int mul_sq;     /* Mul(x, x) instead of Pow(x, 2) */
    int form;       /* 0 Reciprocal then Mul, 1 Div(1, S) then Mul, 2 Div(x, S) */
    int casts;      /* HF llama's Cast(float) ... Cast(float) */
    int gamma_left; /* Mul(gamma, N) */
    int64_t axis;   /* ReduceMean axis (-1 or 2 fuse; 1 does not) */
    int eps_in;     /* eps is a graph input: no fusion */
    int gamma_in;   /* gamma is a graph input: no fusion */
    int leak;       /* the ReduceMean result is also a graph output: no fusion */
    int keepdims0;  /* keepdims = 0: no fusion */
    float power;    /* exponent (2 fuses) */
    int gamma_rank3;/* gamma [2,1,16]: varies along the batch */
    int gamma_wide; /* gamma [3,2,5,16]: would widen Y, no fusion */
    int two_axes;   /* reduce over the last two axes: axis -2 */
    int centred;    /* X = Sub(X0, ReduceMean(X0)): a LayerNorm's chain, no fusion */
} rms_opt;

static tk_fuse_report rms_build(const rms_opt *o, int nthreads, int *expect_nodes)
{
    pbw g = {0}, a = {0};
    int64_t xd[] = {2, 5, 16}, xsq[] = {16, 16};
    /* keepdims 0 is only a valid graph when the reduced mean still
     * broadcasts: a square X */
    const int64_t *xs = o->keepdims0 ? xsq : xd;
    int xr = o->keepdims0 ? 2 : 3;
    const char *x = "X";
    int n = 0;
    if (o->centred) {
        int64_t m1 = -1;
        pbw_attr_ints(&a, "axes", &m1, 1);
        pbw_node(&g, "ReduceMean", "mu", IN("X0"), OUT("mu"), &a);
        pbw_node(&g, "Sub", "centre", IN("X0", "mu"), OUT("X"), NULL);
    }
    if (o->casts) {
        pbw_attr_int(&a, "to", F32);
        pbw_node(&g, "Cast", "cast_in", IN("X"), OUT("xf"), &a);
        x = "xf";
        n++;
    }
    if (o->mul_sq) {
        pbw_node(&g, "Mul", "sq", IN(x, x), OUT("p"), NULL);
    } else {
        f32_scalar(&g, "two", o->power ? o->power : 2.f);
        pbw_node(&g, "Pow", "pow", IN(x, "two"), OUT("p"), NULL);
    }
    n++;
    int64_t axes2[] = {-2, -1};
    if (o->opset >= 18) {
        if (o->two_axes) {
            int64_t d2[] = {2};
            pbw_init_i64(&g, "axes", 1, d2, axes2, 2);
        } else {
            i64_vec(&g, "axes", o->axis);
        }
        if (o->keepdims0) attr_i(&a, "keepdims", 0);
        pbw_node(&g, "ReduceMean", "mean", IN("p", "axes"), OUT("m"), o->keepdims0 ? &a : NULL);
    } else {
        if (o->two_axes) pbw_attr_ints(&a, "axes", axes2, 2);
        else pbw_attr_ints(&a, "axes", &o->axis, 1);
        if (o->keepdims0) attr_i(&a, "keepdims", 0);
        pbw_node(&g, "ReduceMean", "mean", IN("p"), OUT("m"), &a);
    }
    if (!o->eps_in) f32_scalar(&g, "eps", 1e-6f);
    pbw_node(&g, "Add", "add", IN("m", "eps"), OUT("a"), NULL);
    pbw_node(&g, "Sqrt", "sqrt", IN("a"), OUT("s"), NULL);
    n += 3;
    if (o->form == 0) {
        pbw_node(&g, "Reciprocal", "recip", IN("s"), OUT("r"), NULL);
        pbw_node(&g, "Mul", "norm", IN(x, "r"), OUT("nrm"), NULL);
        n += 2;
    } else if (o->form == 1) {
        f32_scalar(&g, "one", 1.f);
        pbw_node(&g, "Div", "recip", IN("one", "s"), OUT("r"), NULL);
        pbw_node(&g, "Mul", "norm", IN("r", x), OUT("nrm"), NULL);
        n += 2;
    } else {
        pbw_node(&g, "Div", "norm", IN(x, "s"), OUT("nrm"), NULL);
        n++;
    }
    const char *nv = "nrm";
    if (o->casts) {
        pbw_attr_int(&a, "to", F32);
        pbw_node(&g, "Cast", "cast_out", IN("nrm"), OUT("nc"), &a);
        nv = "nc";
        n++;
    }
    int64_t gd1[] = {16}, gd3[] = {2, 1, 16}, gd4[] = {3, 2, 5, 16};
    const int64_t *gd = o->gamma_wide ? gd4 : o->gamma_rank3 ? gd3 : gd1;
    int gr = o->gamma_wide ? 4 : o->gamma_rank3 ? 3 : 1;
    int64_t gn = 1;
    for (int i = 0; i < gr; i++) gn *= gd[i];
    onr_tensor *gt = tk_rand_f32(gr, gd, 77);
    if (!o->gamma_in) pbw_init_f32(&g, "gamma", gr, gd, gt->data, (size_t)gn);
    if (o->gamma_left) pbw_node(&g, "Mul", "scale", IN("gamma", nv), OUT("Y"), NULL);
    else pbw_node(&g, "Mul", "scale", IN(nv, "gamma"), OUT("Y"), NULL);
    n++;
    pbw_value_info(&g, 11, o->centred ? "X0" : "X", F32, xr, xs);
    onr_tensor *in[3] = {tk_rand_f32(xr, xs, 5)};
    int nin = 1;
    if (o->eps_in) {
        pbw_value_info(&g, 11, "eps", F32, 0, NULL);
        float e = 1e-6f;
        in[nin++] = tk_f32(0, NULL, &e);
    }
    if (o->gamma_in) {
        pbw_value_info(&g, 11, "gamma", F32, gr, gd);
        in[nin++] = onr_tensor_clone(gt);
    }
    pbw_value_info(&g, 12, "Y", F32, -1, NULL);
    if (o->leak) pbw_value_info(&g, 12, "m", F32, -1, NULL);
    onr_tensor_free(gt);
    tk_fuse_report r = check(&g, o->opset, nin, in, "RMSNormalization", nthreads);
    tk_free_all(nin, in);
    *expect_nodes = n;
    return r;
}

static void expect_rms(const rms_opt *o, int fuses)
{
    for (int th = 1; th <= 2; th++) {
        int n = 0;
        tk_fuse_report r = rms_build(o, th, &n);
        if (fuses) {
            assert_int_equal(r.n_op, 1);
            assert_int_equal(r.n_fused, 1);
            assert_int_equal(r.replaced, n);
            assert_int_equal(r.steps_fused, r.steps_unfused - n + 1);
        } else {
            assert_int_equal(r.n_op, 0);
            /* a LayerNorm's centred chain is fuse_norm.c's: it may fuse there */
            if (!o->centred) assert_int_equal(r.steps_fused, r.steps_unfused);
        }
    }
}

static void test_rms_fuses(void **state)
{
    (void)state;
    for (int opset = 17; opset <= 18; opset++)
        for (int form = 0; form < 3; form++)
            for (int casts = 0; casts < 2; casts++) {
                rms_opt o = {.opset = opset, .form = form, .casts = casts, .axis = -1,
                             .gamma_left = casts, .mul_sq = form == 2};
                expect_rms(&o, 1);
            }
    rms_opt pos_axis = {.opset = 17, .axis = 2};
    expect_rms(&pos_axis, 1);
    rms_opt g3 = {.opset = 18, .axis = -1, .gamma_rank3 = 1};
    expect_rms(&g3, 1);
    rms_opt two = {.opset = 18, .two_axes = 1};
    expect_rms(&two, 1);
    rms_opt two17 = {.opset = 17, .two_axes = 1, .casts = 1};
    expect_rms(&two17, 1);
}

static void test_rms_near_misses(void **state)
{
    (void)state;
    const rms_opt miss[] = {
        {.opset = 17, .axis = 1},                    /* not the trailing axis */
        {.opset = 18, .axis = 0},
        {.opset = 17, .axis = -1, .eps_in = 1},      /* eps not constant */
        {.opset = 18, .axis = -1, .gamma_in = 1},    /* gamma not constant */
        {.opset = 17, .axis = -1, .leak = 1},        /* intermediate read outside */
        {.opset = 18, .axis = -1, .keepdims0 = 1},   /* keepdims 0 */
        {.opset = 17, .axis = -1, .power = 3.f},     /* not a square */
        {.opset = 17, .axis = -1, .gamma_wide = 1},  /* gamma widens Y */
        {.opset = 17, .axis = -1, .centred = 1},     /* a LayerNorm's tail: fuse_norm.c's */
    };
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) expect_rms(&miss[i], 0);
}

/* float16 X with HF llama's Cast(float) ... Cast(float16): RMSNormalization
 * with stash_type 1 on float16 (checked at float16 precision). */
static void test_rms_fp16_casts(void **state)
{
    (void)state;
    pbw g = {0}, a = {0};
    int64_t xd[] = {3, 24}, gd[] = {24};
    pbw_attr_int(&a, "to", F32);
    pbw_node(&g, "Cast", "c1", IN("X"), OUT("xf"), &a);
    f32_scalar(&g, "two", 2.f);
    pbw_node(&g, "Pow", "pow", IN("xf", "two"), OUT("p"), NULL);
    int64_t ax = -1;
    pbw_attr_ints(&a, "axes", &ax, 1);
    pbw_node(&g, "ReduceMean", "mean", IN("p"), OUT("m"), &a);
    f32_scalar(&g, "eps", 1e-5f);
    pbw_node(&g, "Add", "add", IN("m", "eps"), OUT("ae"), NULL);
    pbw_node(&g, "Sqrt", "sqrt", IN("ae"), OUT("s"), NULL);
    pbw_node(&g, "Reciprocal", "recip", IN("s"), OUT("r"), NULL);
    pbw_node(&g, "Mul", "norm", IN("xf", "r"), OUT("n"), NULL);
    pbw_attr_int(&a, "to", F16);
    pbw_node(&g, "Cast", "c2", IN("n"), OUT("nh"), &a);
    uint16_t gh[24];
    for (int i = 0; i < 24; i++) gh[i] = onr_float_to_half(0.5f + 0.05f * (float)i);
    pbw t = {0};
    pbw_tensor_head(&t, "gamma", F16, 1, gd);
    pbw_bytes(&t, 9, gh, sizeof gh);
    pbw_msg(&g, 5, &t);
    pbw_node(&g, "Mul", "scale", IN("gamma", "nh"), OUT("Y"), NULL);
    pbw_value_info(&g, 11, "X", F16, 2, xd);
    pbw_value_info(&g, 12, "Y", F16, -1, NULL);
    onr_tensor *xf = tk_rand_f32(2, xd, 9);
    uint16_t xh[72];
    for (int i = 0; i < 72; i++) xh[i] = onr_float_to_half(((float *)xf->data)[i] * 3.f);
    onr_tensor *in[] = {tk_typed(ONR_FLOAT16, 2, xd, xh)};
    pbw m = pbw_model(&g, 8, 13);
    tk_fuse_report r;
    tk_fuse_check(m.b, m.n, 1, in, "RMSNormalization", 1e-3f, 1e-3f, 1, &r);
    assert_int_equal(r.n_fused, 1);
    assert_int_equal(r.replaced, 9);
    free(m.b);
    tk_free_all(1, in);
    onr_tensor_free(xf);
}

/* ---- RotaryEmbedding ------------------------------------------------------- */

enum { B = 2, H = 3, S = 5, D = 8, P = 11 };

typedef struct rot_opt {
    int opset;       /* 9 (attributes), 13 (TorchScript, inputs with steps), 18 (dynamo) */
    int cos_form;    /* 0 Gather(cache, pos) + Unsqueeze; 1 const [S,D]; 2 const [B,1,S,D]; 3 graph input [S,D];
                      * 4 computed in the graph: Unsqueeze(Cast(Mul(Cos(Concat(f, f)), 1))) (newer HF) */
    int split;       /* where the slices split (D/2 fuses) */
    int neg_wrong;   /* Concat(lo, Neg(hi))... swapped: Concat(Neg(lo), hi) */
    int64_t cat_axis;/* -1 or 3 fuse */
    int unequal;     /* cache halves differ */
    int swap;        /* operand orders swapped everywhere */
    int qk;          /* q and k both rotated with the same cos/sin */
    int leak;        /* the Concat is also a graph output */
    int big_end;     /* upper slice ends at INT64_MAX (TorchScript's x[..., h:]) */
} rot_opt;

static void cache_vals(float *c, float *s, int64_t rows, int unequal)
{
    for (int64_t p = 0; p < rows; p++)
        for (int i = 0; i < D / 2; i++) {
            double f = pow(10000.0, -2.0 * i / D), ang = (double)p * f + 0.1 * i;
            c[p * D + i] = c[p * D + i + D / 2] = (float)cos(ang);
            s[p * D + i] = s[p * D + i + D / 2] = (float)sin(ang);
        }
    if (unequal) c[D + D / 2 + 1] += 0.25f;
}

static void slice(pbw *g, const rot_opt *o, const char *name, const char *x, int64_t st, int64_t en,
                  const char *out)
{
    int64_t ax = o->cat_axis == 2 ? 2 : o->opset >= 18 ? -1 : 3;
    if (o->opset < 10) {
        pbw a = {0};
        pbw_attr_ints(&a, "starts", &st, 1);
        pbw_attr_ints(&a, "ends", &en, 1);
        pbw_attr_ints(&a, "axes", &ax, 1);
        pbw_node(g, "Slice", name, IN(x), OUT(out), &a);
        return;
    }
    char sn[64], en_[64], an[64], pn[64];
    snprintf(sn, sizeof sn, "%s_st", name);
    snprintf(en_, sizeof en_, "%s_en", name);
    snprintf(an, sizeof an, "%s_ax", name);
    snprintf(pn, sizeof pn, "%s_sp", name);
    i64_vec(g, sn, st);
    i64_vec(g, en_, en);
    i64_vec(g, an, ax);
    if (o->opset >= 18) {
        pbw_node(g, "Slice", name, IN(x, sn, en_, an), OUT(out), NULL);
    } else {
        i64_vec(g, pn, 1);
        pbw_node(g, "Slice", name, IN(x, sn, en_, an, pn), OUT(out), NULL);
    }
}

static void unsqueeze1(pbw *g, const rot_opt *o, const char *name, const char *x, const char *out)
{
    int64_t one = 1;
    if (o->opset < 13) {
        pbw a = {0};
        pbw_attr_ints(&a, "axes", &one, 1);
        pbw_node(g, "Unsqueeze", name, IN(x), OUT(out), &a);
    } else {
        char an[64];
        snprintf(an, sizeof an, "%s_ax", name);
        i64_vec(g, an, one);
        pbw_node(g, "Unsqueeze", name, IN(x, an), OUT(out), NULL);
    }
}

/* out = q * cos + rotate_half(q) * sin, names prefixed by q's name. */
static void rotate(pbw *g, const rot_opt *o, const char *q, const char *cosv, const char *sinv,
                   const char *out)
{
    char n[8][64];
    const char *sfx[] = {"lo", "hi", "neg", "cat", "m1", "m2", "sl1", "sl2"};
    for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s_%s", q, sfx[i]);
    int64_t h = o->split ? o->split : D / 2;
    slice(g, o, n[6], q, 0, h, n[0]);
    slice(g, o, n[7], q, h, o->big_end ? INT64_MAX : D, n[1]);
    pbw a = {0};
    pbw_attr_int(&a, "axis", o->cat_axis);
    if (o->neg_wrong) {
        pbw_node(g, "Neg", n[2], IN(n[0]), OUT(n[2]), NULL);
        pbw_node(g, "Concat", n[3], IN(n[2], n[1]), OUT(n[3]), &a);
    } else {
        pbw_node(g, "Neg", n[2], IN(n[1]), OUT(n[2]), NULL);
        pbw_node(g, "Concat", n[3], IN(n[2], n[0]), OUT(n[3]), &a);
    }
    if (o->swap) {
        pbw_node(g, "Mul", n[4], IN(cosv, q), OUT(n[4]), NULL);
        pbw_node(g, "Mul", n[5], IN(sinv, n[3]), OUT(n[5]), NULL);
        pbw_node(g, "Add", out, IN(n[5], n[4]), OUT(out), NULL);
    } else {
        pbw_node(g, "Mul", n[4], IN(q, cosv), OUT(n[4]), NULL);
        pbw_node(g, "Mul", n[5], IN(n[3], sinv), OUT(n[5]), NULL);
        pbw_node(g, "Add", out, IN(n[4], n[5]), OUT(out), NULL);
    }
}

static tk_fuse_report rot_build(const rot_opt *o, int nthreads)
{
    pbw g = {0};
    int64_t qd[] = {B, H, S, D}, cd2[] = {P, D}, sd2[] = {S, D}, cd4[] = {B, 1, S, D}, pd[] = {B, S};
    float cc[P * D], sc[P * D];
    const char *cosv = "cos", *sinv = "sin";
    onr_tensor *in[4] = {0};
    int nin = 0;
    pbw_value_info(&g, 11, "q", F32, 4, qd);
    in[nin++] = tk_rand_f32(4, qd, 3);
    if (o->qk) {
        pbw_value_info(&g, 11, "k", F32, 4, qd);
        in[nin++] = tk_rand_f32(4, qd, 4);
    }
    if (o->cos_form == 0) {
        cache_vals(cc, sc, P, o->unequal);
        pbw_init_f32(&g, "cos_cache", 2, cd2, cc, P * D);
        pbw_init_f32(&g, "sin_cache", 2, cd2, sc, P * D);
        pbw_value_info(&g, 11, "pos", I64, 2, pd);
        int64_t pv[B * S];
        for (int i = 0; i < B * S; i++) pv[i] = (i * 3 + 1) % P;
        in[nin++] = tk_i64(2, pd, pv);
        pbw_node(&g, "Gather", "gc", IN("cos_cache", "pos"), OUT("cg"), NULL);
        pbw_node(&g, "Gather", "gs", IN("sin_cache", "pos"), OUT("sg"), NULL);
        unsqueeze1(&g, o, "uc", "cg", "cos");
        unsqueeze1(&g, o, "us", "sg", "sin");
    } else if (o->cos_form == 1 || o->cos_form == 2) {
        cache_vals(cc, sc, B * S, o->unequal);
        int r = o->cos_form == 1 ? 2 : 4;
        pbw_init_f32(&g, "cos", r, r == 2 ? sd2 : cd4, cc, (size_t)(r == 2 ? S * D : B * S * D));
        pbw_init_f32(&g, "sin", r, r == 2 ? sd2 : cd4, sc, (size_t)(r == 2 ? S * D : B * S * D));
    } else if (o->cos_form == 4) {
        int64_t fd[] = {B, S, D / 2};
        pbw_value_info(&g, 11, "freqs", F32, 3, fd);
        in[nin++] = tk_rand_f32(3, fd, 8);
        if (o->unequal) {
            pbw_value_info(&g, 11, "freqs2", F32, 3, fd);
            in[nin++] = tk_rand_f32(3, fd, 9);
        }
        pbw a = {0};
        pbw_attr_int(&a, "axis", -1);
        pbw_node(&g, "Concat", "emb", IN("freqs", o->unequal ? "freqs2" : "freqs"), OUT("emb"), &a);
        pbw_node(&g, "Cos", "cosf", IN("emb"), OUT("cos0"), NULL);
        pbw_node(&g, "Sin", "sinf", IN("emb"), OUT("sin0"), NULL);
        f32_scalar(&g, "scaling", 1.f);
        pbw_node(&g, "Mul", "cos_sc", IN("cos0", "scaling"), OUT("cos1"), NULL);
        pbw_node(&g, "Mul", "sin_sc", IN("scaling", "sin0"), OUT("sin1"), NULL);
        pbw_attr_int(&a, "to", F32);
        pbw_node(&g, "Cast", "cos_cast", IN("cos1"), OUT("cos2"), &a);
        unsqueeze1(&g, o, "uc", "cos2", "cos");
        unsqueeze1(&g, o, "us", "sin1", "sin");
    } else {
        pbw_value_info(&g, 11, "cos", F32, 2, sd2);
        pbw_value_info(&g, 11, "sin", F32, 2, sd2);
        cache_vals(cc, sc, S, 0);
        in[nin++] = tk_f32(2, sd2, cc);
        in[nin++] = tk_f32(2, sd2, sc);
    }
    rotate(&g, o, "q", cosv, sinv, "qr");
    pbw_value_info(&g, 12, "qr", F32, -1, NULL);
    if (o->qk) {
        rotate(&g, o, "k", cosv, sinv, "kr");
        pbw_value_info(&g, 12, "kr", F32, -1, NULL);
    }
    if (o->leak) pbw_value_info(&g, 12, "q_cat", F32, -1, NULL);
    tk_fuse_report r = check(&g, o->opset, nin, in, "RotaryEmbedding", nthreads);
    tk_free_all(nin, in);
    return r;
}

static void expect_rot(const rot_opt *o, int fusions)
{
    for (int th = 1; th <= 2; th++) {
        tk_fuse_report r = rot_build(o, th);
        assert_int_equal(r.n_op, fusions);
        assert_int_equal(r.n_fused, fusions);
        assert_int_equal(r.replaced, 7 * fusions);
        /* each fusion replaces 7 steps by one; the Gather / Unsqueeze
         * steps of cos and sin die (2 each), and cos/sin computed in the
         * graph get one Slice each instead of their Unsqueeze */
        int other = !fusions ? 0 : o->cos_form == 0 ? -4 : 0;
        assert_int_equal(r.steps_fused, r.steps_unfused - 6 * fusions + other);
    }
}

static void test_rot_fuses(void **state)
{
    (void)state;
    const int opsets[] = {9, 13, 18};
    for (int i = 0; i < 3; i++)
        for (int form = 0; form < 3; form++) {
            rot_opt o = {.opset = opsets[i], .cos_form = form, .cat_axis = form == 1 ? 3 : -1,
                         .swap = form == 2, .big_end = i == 1};
            expect_rot(&o, 1);
        }
    rot_opt qk = {.opset = 13, .cos_form = 0, .cat_axis = -1, .qk = 1};
    expect_rot(&qk, 2);
    rot_opt qk18 = {.opset = 18, .cos_form = 1, .cat_axis = -1, .qk = 1, .swap = 1};
    expect_rot(&qk18, 2);
    for (int i = 0; i < 3; i++) { /* cos / sin computed in the graph from cat(freqs, freqs) */
        rot_opt a = {.opset = opsets[i], .cos_form = 4, .cat_axis = -1, .qk = 1};
        expect_rot(&a, 2);
    }
}

static void test_rot_near_misses(void **state)
{
    (void)state;
    const rot_opt miss[] = {
        {.opset = 13, .cat_axis = -1, .split = 3},                  /* not split at D/2 */
        {.opset = 18, .cat_axis = -1, .neg_wrong = 1},              /* Neg on the wrong half */
        {.opset = 13, .cat_axis = 2, .split = 2},                   /* rotate_half on the seq axis */
        {.opset = 13, .cat_axis = -1, .unequal = 1},                /* cache halves differ */
        {.opset = 18, .cos_form = 1, .cat_axis = -1, .unequal = 1}, /* const halves differ */
        {.opset = 13, .cat_axis = -1, .leak = 1},                   /* rotate_half read outside */
        {.opset = 18, .cos_form = 3, .cat_axis = -1},               /* cos/sin graph inputs */
        {.opset = 13, .cos_form = 4, .cat_axis = -1, .unequal = 1}, /* Concat(f, f2): halves differ */
    };
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) expect_rot(&miss[i], 0);
}

/* ---- the exported tiny llama (testdata/tiny_llama) ------------------------- */

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)n);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void test_tiny_llama(void **state)
{
    (void)state;
    const char *src = getenv("ONR_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/tiny_llama/model.onnx", src ? src : ".");
    size_t len = 0;
    void *model = read_file(path, &len);
    if (!model) fail_msg("cannot read %s", path);
    int64_t d[] = {1, 8}, ids[8], pos[8];
    for (int i = 0; i < 8; i++) {
        ids[i] = (i * 13 + 5) % 64;
        pos[i] = i;
    }
    onr_tensor *in[] = {tk_i64(2, d, ids), tk_i64(2, d, pos)};
    for (int th = 1; th <= 2; th++) {
        tk_fuse_report r;
        /* 2 layers x 2 + the final norm; each: Pow, ReduceMean, Add, Sqrt,
         * Div(1, .), Mul, Cast, Mul (the leading Cast also feeds the
         * residual, except before the final norm) */
        tk_fuse_check(model, len, 2, in, "RMSNormalization", 1e-4f, 1e-5f, th, &r);
        assert_int_equal(r.n_fused, 5);
        assert_int_equal(r.replaced, 5 * 8 + 1);
        /* q and k of 2 layers, 7 nodes each */
        tk_fuse_check(model, len, 2, in, "RotaryEmbedding", 1e-4f, 1e-5f, th, &r);
        assert_int_equal(r.n_fused, 4);
        assert_int_equal(r.replaced, 4 * 7);
    }
    tk_free_all(2, in);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rms_fuses),
        cmocka_unit_test(test_rms_near_misses),
        cmocka_unit_test(test_rms_fp16_casts),
        cmocka_unit_test(test_rot_fuses),
        cmocka_unit_test(test_rot_near_misses),
        cmocka_unit_test(test_tiny_llama),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
