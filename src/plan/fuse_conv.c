/*
 * fuse_conv.c - convolution epilogues and BatchNormalization folding.
 *
 * Anchored at a Conv (or ConvTranspose, or a FusedConv made earlier), one
 * step at a time; the sweep repeats until nothing changes, so a chain
 * Conv -> BatchNormalization -> Add(Z) -> Relu ends as one FusedConv:
 *
 *   Conv|ConvTranspose + BatchNormalization (inference, constant scale,
 *       bias, mean, var; constant W, constant or absent B)
 *       -> the same op with W and B rescaled at plan time (in double, kept
 *          in W's type): w' = w * s, b' = (b - mean) * s + bias with
 *          s = scale / sqrt(var + epsilon);
 *   Conv + Add(constant broadcast over channels only: [M,1,1], [1,M,1,1],
 *       a scalar...) -> the constant folded into B (any float type);
 *   Conv + Relu | Clip (constant bounds) | Sigmoid | HardSigmoid |
 *       HardSwish | LeakyRelu, or Mul(y, Sigmoid(y)) (SiLU) and
 *       Mul(y, HardSigmoid(y)) (HardSwish)
 *       -> FusedConv(activation);
 *   Conv + Add(Z of exactly the conv output's static shape)
 *       -> FusedConv(Z), which the same activations then join:
 *          act(conv + Z), the ResNet block's end;
 *   FusedConv(activation) + Add(Z) -> act(conv) + Z
 *       (residual_after_activation = 1);
 *   Mul(A, S) -> Conv|FusedConv, S a per-channel scale of A ([N or 1, C,
 *       1, ...], squeeze-excitation's end), the product read only by the
 *       conv -> FusedConv(A, ..., S): S scales W per image (or the
 *       transposed path's gather) instead of a pass writing A * S;
 *   Conv|FusedConv (2-D, on the small-group kernel: 2-4 input channels, an
 *       image's stem, or groups of 2-16 inputs and at most 16 outputs) +
 *       MaxPool (floor rounding, explicit pads under the window, no
 *       dilation or Indices) -> FusedConv(pool): pooled a band of conv
 *       rows at a time; a pooled FusedConv takes no further epilogue.
 *
 * FusedConv (org.onnxrun, opset 1) is float32 only: other types keep
 * their unfused epilogue (BN and bias folding apply to every float type).
 * Every value inside a pattern must be read only inside it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/conv.h"
#include "plan/fuse.h"
#include "plan/passes.h"

enum { K_NONE, K_CONV, K_CONVT, K_FCONV };

/* What the anchor node is. */
static int conv_kind(const onr_edit *e, int i)
{
    if (onr_fuse_is(e, i, "Conv")) return K_CONV;
    if (onr_fuse_is(e, i, "ConvTranspose")) return K_CONVT;
    if (i < 0 || i >= e->g->n_nodes || e->dead[i]) return K_NONE;
    const onr_node *n = &e->g->nodes[i];
    if (strcmp(n->domain, ONR_FUSE_DOMAIN) == 0 && strcmp(n->op_type, "FusedConv") == 0)
        return K_FCONV;
    return K_NONE;
}

/* A conv-like node's inputs and epilogue as the pass sees them. */
typedef struct conv_view {
    int kind;
    int x, w, b, z, y; /* value indices, -1 when absent */
    int s;             /* FusedConv's input scale S, -1 when absent */
    char act[16];      /* FusedConv's activation ("" none) */
    int res_after;
} conv_view;

static int view_conv(const onr_edit *e, int i, conv_view *v)
{
    const onr_node *n = &e->g->nodes[i];
    memset(v, 0, sizeof *v);
    v->kind = conv_kind(e, i);
    if (v->kind == K_NONE || n->n_in < 2 || n->n_in > (v->kind == K_FCONV ? 5 : 3) ||
        n->n_out != 1 || n->outputs[0] < 0 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return 0;
    v->x = n->inputs[0];
    v->w = n->inputs[1];
    v->b = n->n_in > 2 ? n->inputs[2] : -1;
    v->z = n->n_in > 3 ? n->inputs[3] : -1;
    v->s = n->n_in > 4 ? n->inputs[4] : -1;
    v->y = n->outputs[0];
    if (v->kind == K_FCONV) {
        const char *a = onr_attr_string(n, "activation", "");
        if (strlen(a) >= sizeof v->act) return 0;
        snprintf(v->act, sizeof v->act, "%s", strcmp(a, "None") == 0 ? "" : a);
        v->res_after = onr_attr_int(n, "residual_after_activation", 0) != 0;
        /* a pooled output takes no more epilogue: it is the pool's */
        if (onr_attr_string(n, "pool", "")[0]) return 0;
    }
    return 1;
}

/* ---- emitting ------------------------------------------------------------ */

static int wanted(const char *name, const char *const *names)
{
    for (int k = 0; names[k]; k++)
        if (strcmp(name, names[k]) == 0) return 1;
    return 0;
}

/* Copy src's attributes named in `names` onto dst (a node the pass added). */
static onr_status copy_attrs(onr_edit *e, int dst, int src, const char *const *names,
                             onr_err *err)
{
    for (int k = 0; k < e->g->nodes[src].n_attr; k++) {
        const onr_attr *a = &e->g->nodes[src].attrs[k];
        onr_status st = ONR_OK;
        if (!a->name || !wanted(a->name, names)) continue;
        switch (a->type) {
        case ONR_ATTR_INT: st = onr_edit_set_attr_int(e, dst, a->name, a->i, err); break;
        case ONR_ATTR_FLOAT: st = onr_edit_set_attr_float(e, dst, a->name, a->f, err); break;
        case ONR_ATTR_STRING:
            st = onr_edit_set_attr_string(e, dst, a->name, a->s ? a->s : "", err);
            break;
        case ONR_ATTR_INTS: st = onr_edit_set_attr_ints(e, dst, a->name, a->ints, a->n, err); break;
        case ONR_ATTR_FLOATS:
            st = onr_edit_set_attr_floats(e, dst, a->name, a->floats, a->n, err);
            break;
        default: break;
        }
        if (st) return st;
    }
    return ONR_OK;
}

static const char *const CONV_ATTRS[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                         "pads", "strides", NULL};
static const char *const CONVT_ATTRS[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads",
                                          "strides", "output_padding", "output_shape", NULL};
static const char *const FCONV_ATTRS[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                          "pads", "strides", "activation", "activation_params",
                                          "residual_after_activation", NULL};

/* An activation, as FusedConv's attributes name it. */
typedef struct act_desc {
    const char *name; /* NULL: none */
    int n_params;
    float params[2];
} act_desc;

/* Emit the replacement of the conv-like node `src`: the same op (`fused`
 * 0, at its opset) or a FusedConv with inputs x, w, b, z (-1 absent),
 * output y, replacing nodes[0..n); a FusedConv gets the activation `act`
 * (NULL: src's own, when src is a FusedConv) and res_after. Returns 1, or
 * -1 with err set. */
static int emit_conv_at(onr_edit *e, int src, int fused, const conv_view *v, int b, int z, int y,
                        const act_desc *act, int res_after, const int *nodes, int n, int *at,
                        onr_err *err)
{
    char op[32];
    const onr_node *s = &e->g->nodes[src];
    snprintf(op, sizeof op, "%s", fused ? "FusedConv" : s->op_type);
    int64_t opset = fused ? 1 : s->opset;
    int ins[5] = {v->x, v->w, b, z, fused ? v->s : -1};
    int n_in = ins[4] >= 0 ? 5 : z >= 0 ? 4 : b >= 0 ? 3 : 2;
    int node = onr_fuse_emit(e, op, fused ? ONR_FUSE_DOMAIN : "", opset, n_in, ins, 1, &y, nodes,
                             n, err);
    if (node < 0) return -1;
    if (at) *at = node;
    const char *const *names = v->kind == K_FCONV ? FCONV_ATTRS
                               : v->kind == K_CONVT ? CONVT_ATTRS
                                                    : CONV_ATTRS;
    if (copy_attrs(e, node, src, names, err)) return -1;
    if (!fused) return 1;
    if (act && act->name) {
        if (onr_edit_set_attr_string(e, node, "activation", act->name, err) ||
            (act->n_params &&
             onr_edit_set_attr_floats(e, node, "activation_params", act->params,
                                      (size_t)act->n_params, err)))
            return -1;
    }
    if (z >= 0 && onr_edit_set_attr_int(e, node, "residual_after_activation", res_after, err))
        return -1;
    return 1;
}

static int emit_conv(onr_edit *e, int src, int fused, const conv_view *v, int b, int z, int y,
                     const act_desc *act, int res_after, const int *nodes, int n, onr_err *err)
{
    return emit_conv_at(e, src, fused, v, b, z, y, act, res_after, nodes, n, NULL, err);
}

/* ---- BatchNormalization folding ------------------------------------------ */

static int is_float(onr_dtype dt)
{
    return dt == ONR_FLOAT || dt == ONR_DOUBLE || dt == ONR_FLOAT16 || dt == ONR_BFLOAT16;
}

/* A per-channel constant: rank 1, M float elements. */
static const onr_tensor *channel_const(const onr_edit *e, int v, int64_t M)
{
    const onr_tensor *t = onr_fuse_const(e, v);
    return t && is_float(t->dtype) && t->rank == 1 && t->dims[0] == M ? t : NULL;
}

static int try_bn(onr_edit *e, int i, const conv_view *v, int bn, onr_err *err)
{
    const onr_node *n = &e->g->nodes[bn];
    if (n->n_in != 5 || n->inputs[0] != v->y || n->n_out < 1 || n->outputs[0] < 0) return 0;
    if (n->opset >= 14 && onr_attr_int(n, "training_mode", 0) != 0) return 0;
    if (n->opset < 9 && onr_attr_int(n, "spatial", 1) == 0) return 0;
    double eps = onr_attr_float(n, "epsilon", 1e-5f);
    if (!isfinite(eps) || eps < 0) return 0;
    /* W constant, B constant or absent, all of one float type */
    const onr_tensor *w = onr_fuse_const(e, v->w);
    if (!w || !is_float(w->dtype) || w->rank < 3 || w->numel < 1) return 0;
    if (onr_fuse_dtype(e, v->x) != w->dtype) return 0;
    int64_t G = onr_attr_int(&e->g->nodes[i], "group", 1), M, C = w->dims[0];
    if (G < 1) return 0;
    if (v->kind == K_CONVT) {
        if (C % G || w->dims[1] > INT64_MAX / G) return 0;
        M = w->dims[1] * G;
    } else {
        M = w->dims[0];
    }
    const onr_tensor *b = NULL;
    if (v->b >= 0 && !(b = channel_const(e, v->b, M))) return 0;
    if (b && b->dtype != w->dtype) return 0;
    const onr_tensor *k[4];
    for (int j = 0; j < 4; j++)
        if (!(k[j] = channel_const(e, n->inputs[1 + j], M))) return 0;
    int nodes[2] = {i, bn}, keep = n->outputs[0];
    if (!onr_fuse_closed(e, nodes, 2, &keep, 1)) return 0;

    /* s[m] = scale / sqrt(var + eps), as the BatchNormalization kernel */
    onr_tensor *nw = onr_tensor_new(w->dtype, w->rank, w->dims);
    onr_tensor *nb = onr_tensor_new(w->dtype, 1, &M);
    double *sc = malloc(sizeof(double) * (size_t)M);
    if (!nw || !nb || !sc) {
        onr_tensor_free(nw), onr_tensor_free(nb), free(sc);
        onr_seterr(err, ONR_E_NOMEM, "out of memory folding BatchNormalization");
        return -1;
    }
    for (int64_t m = 0; m < M; m++) {
        sc[m] = onr_get_f64(k[0], m) / sqrt(onr_get_f64(k[3], m) + eps);
        double bm = b ? onr_get_f64(b, m) : 0.;
        onr_set_f64(nb, m, (bm - onr_get_f64(k[2], m)) * sc[m] + onr_get_f64(k[1], m));
    }
    /* W in runs of `taps` weights of one output channel: Conv W is
     * [M, C/G, k...] (channel = run / (C/G)); ConvTranspose W is
     * [C, M/G, k...] (channel = (c / (C/G)) * M/G + dim 1) */
    int64_t taps = 1;
    for (int d = 2; d < w->rank; d++) taps *= w->dims[d];
    int64_t runs = w->numel / taps, Mg = M / G, Cg = C / G, per = runs / M;
    for (int64_t r = 0; r < runs; r++) {
        int64_t m = v->kind == K_CONVT ? r / Mg / Cg * Mg + r % Mg : r / per;
        double s = sc[m];
        if (w->dtype == ONR_FLOAT) {
            const float *src = (const float *)w->data + r * taps;
            float *dst = (float *)nw->data + r * taps;
            for (int64_t t = 0; t < taps; t++) dst[t] = (float)(src[t] * s);
        } else {
            for (int64_t t = r * taps; t < (r + 1) * taps; t++)
                onr_set_f64(nw, t, onr_get_f64(w, t) * s);
        }
    }
    free(sc);
    char hint[200];
    snprintf(hint, sizeof hint, "%s", e->g->values[v->w].name ? e->g->values[v->w].name : "W");
    int wv = onr_fuse_add_const(e, hint, nw, err);
    if (wv < 0) {
        onr_tensor_free(nb);
        return -1;
    }
    int bv = onr_fuse_add_const(e, hint, nb, err);
    if (bv < 0) return -1;
    conv_view nv = *v;
    nv.w = wv;
    return emit_conv(e, i, 0, &nv, bv, -1, keep, NULL, 0, nodes, 2, err);
}

/* ---- activations ----------------------------------------------------------- */

/* The activation node c computes on the conv output y, into *a; 0 when c
 * is none we fuse (or its parameters are not constant). */
static int activation_of(const onr_edit *e, int c, int y, act_desc *a)
{
    const onr_node *n = &e->g->nodes[c];
    memset(a, 0, sizeof *a);
    if (n->n_in < 1 || n->inputs[0] != y || n->n_out != 1 || n->outputs[0] < 0) return 0;
    if (onr_fuse_is(e, c, "Relu") && n->n_in == 1) {
        a->name = "Relu";
    } else if (onr_fuse_is(e, c, "Sigmoid") && n->n_in == 1) {
        a->name = "Sigmoid";
    } else if (onr_fuse_is(e, c, "HardSwish") && n->n_in == 1) {
        a->name = "HardSwish";
    } else if (onr_fuse_is(e, c, "HardSigmoid") && n->n_in == 1) {
        a->name = "HardSigmoid";
        a->n_params = 2;
        a->params[0] = onr_attr_float(n, "alpha", 0.2f);
        a->params[1] = onr_attr_float(n, "beta", 0.5f);
    } else if (onr_fuse_is(e, c, "LeakyRelu") && n->n_in == 1) {
        a->name = "LeakyRelu";
        a->n_params = 1;
        a->params[0] = onr_attr_float(n, "alpha", 0.01f);
    } else if (onr_fuse_is(e, c, "Clip")) {
        double lo = -INFINITY, hi = INFINITY;
        if (n->opset < 11) {
            if (n->n_in != 1) return 0;
            lo = onr_attr_float(n, "min", -3.402823466e+38f);
            hi = onr_attr_float(n, "max", 3.402823466e+38f);
        } else {
            if (n->n_in > 3) return 0;
            if (n->n_in > 1 && n->inputs[1] >= 0 && !onr_fuse_const_scalar(e, n->inputs[1], &lo))
                return 0;
            if (n->n_in > 2 && n->inputs[2] >= 0 && !onr_fuse_const_scalar(e, n->inputs[2], &hi))
                return 0;
        }
        if (isnan(lo) || isnan(hi) || lo > hi) return 0;
        a->name = "Clip";
        a->n_params = 2;
        a->params[0] = (float)lo;
        a->params[1] = (float)hi;
    } else {
        return 0;
    }
    /* Clip's bounds may be infinite (absent); the others' parameters not */
    for (int k = 0; k < a->n_params; k++)
        if (!isfinite(a->params[k]) && strcmp(a->name, "Clip") != 0) return 0;
    return 1;
}

/* A FusedConv can take an activation when it has none yet. */
static int fusable_f32(const onr_edit *e, const conv_view *v)
{
    return v->kind != K_CONVT && onr_fuse_dtype(e, v->y) == ONR_FLOAT &&
           onr_fuse_dtype(e, v->x) == ONR_FLOAT && !(v->kind == K_FCONV && v->act[0]);
}

static int try_act(onr_edit *e, int i, const conv_view *v, int c, const act_desc *a,
                   onr_err *err)
{
    if (!fusable_f32(e, v)) return 0;
    int nodes[2] = {i, c}, keep = e->g->nodes[c].outputs[0];
    if (!onr_fuse_closed(e, nodes, 2, &keep, 1)) return 0;
    /* a residual already there was added before: act(conv + Z) */
    return emit_conv(e, i, 1, v, v->b, v->z, keep, a, 0, nodes, 2, err);
}

/* y read by exactly a Sigmoid (or HardSigmoid) s and a Mul(y, s). */
static int try_gated(onr_edit *e, int i, const conv_view *v, onr_err *err)
{
    if (!fusable_f32(e, v) || onr_fuse_n_uses(e, v->y) != 2) return 0;
    const int *cons = onr_edit_consumers(e, v->y);
    int s = -1, m = -1;
    for (int k = 0; k < 2; k++) {
        int c = cons[k];
        if (onr_fuse_is(e, c, "Sigmoid") || onr_fuse_is(e, c, "HardSigmoid")) s = c;
        else if (onr_fuse_is(e, c, "Mul")) m = c;
    }
    if (s < 0 || m < 0) return 0;
    const onr_node *sn = &e->g->nodes[s], *mn = &e->g->nodes[m];
    if (sn->n_in != 1 || sn->inputs[0] != v->y || sn->n_out != 1 || sn->outputs[0] < 0) return 0;
    if (mn->n_in != 2 || mn->n_out != 1 || mn->outputs[0] < 0 ||
        onr_fuse_other_slot(mn, v->y) < 0 ||
        mn->inputs[onr_fuse_other_slot(mn, v->y)] != sn->outputs[0])
        return 0;
    act_desc a = {"Silu", 0, {0, 0}};
    if (onr_fuse_is(e, s, "HardSigmoid")) {
        a.name = "HardSwish";
        a.n_params = 2;
        a.params[0] = onr_attr_float(sn, "alpha", 0.2f);
        a.params[1] = onr_attr_float(sn, "beta", 0.5f);
        if (!isfinite(a.params[0]) || !isfinite(a.params[1])) return 0;
    }
    int nodes[3] = {i, s, m}, keep = mn->outputs[0];
    if (!onr_fuse_closed(e, nodes, 3, &keep, 1)) return 0;
    return emit_conv(e, i, 1, v, v->b, v->z, keep, &a, 0, nodes, 3, err);
}

/* ---- Add: bias or residual ------------------------------------------------ */

/* t broadcast against y (rank ry, channels M on axis 1) varies along the
 * channel axis only and leaves y's shape as it is. */
static int bias_like(const onr_tensor *t, int ry, int64_t M)
{
    if (t->rank > ry || t->numel < 1) return 0;
    for (int d = 0; d < t->rank; d++) {
        int axis = ry - t->rank + d;
        int64_t n = t->dims[d];
        if (n != 1 && !(axis == 1 && n == M)) return 0;
    }
    return 1;
}

static int try_add(onr_edit *e, int i, const conv_view *v, int c, onr_err *err)
{
    const onr_node *n = &e->g->nodes[c];
    int slot = onr_fuse_other_slot(n, v->y);
    if (slot < 0 || n->n_out != 1 || n->outputs[0] < 0) return 0;
    int o = n->inputs[slot], keep = n->outputs[0], nodes[2] = {i, c};
    int64_t dy[ONR_MAX_RANK], dz[ONR_MAX_RANK];
    int ry = onr_fuse_shape(e, v->y, dy);
    if (ry < 3) return 0;
    onr_dtype dt = onr_fuse_dtype(e, v->y);
    const onr_tensor *k = onr_fuse_const(e, o);
    if (k && k->dtype == dt && is_float(dt) && dy[1] >= 1 && bias_like(k, ry, dy[1]) &&
        !(v->kind == K_FCONV && v->act[0])) {
        /* (conv + B [+ Z]) + k: k joins the bias */
        int64_t M = dy[1];
        const onr_tensor *b = NULL;
        if (v->b >= 0 && !(b = channel_const(e, v->b, M))) return 0;
        if (b && b->dtype != dt) return 0;
        if (!onr_fuse_closed(e, nodes, 2, &keep, 1)) return 0;
        onr_tensor *nb = onr_tensor_new(dt, 1, &M);
        if (!nb) {
            onr_seterr(err, ONR_E_NOMEM, "out of memory folding a bias");
            return -1;
        }
        for (int64_t m = 0; m < M; m++) {
            double add = onr_get_f64(k, k->numel == M ? m : 0);
            onr_set_f64(nb, m, (b ? onr_get_f64(b, m) : 0.) + add);
        }
        char hint[200];
        snprintf(hint, sizeof hint, "%s", e->g->values[o].name ? e->g->values[o].name : "B");
        int bv = onr_fuse_add_const(e, hint, nb, err);
        if (bv < 0) return -1;
        return emit_conv(e, i, v->kind == K_FCONV, v, bv, v->z, keep, NULL, v->res_after, nodes,
                         2, err);
    }
    /* a residual of exactly y's static shape (no broadcasting), float32,
     * one per FusedConv */
    if (v->kind == K_CONVT || v->z >= 0 || onr_fuse_dtype(e, o) != ONR_FLOAT ||
        onr_fuse_dtype(e, v->y) != ONR_FLOAT || onr_fuse_dtype(e, v->x) != ONR_FLOAT)
        return 0;
    if (onr_fuse_shape(e, o, dz) != ry) return 0;
    for (int d = 0; d < ry; d++)
        if (!onr_fuse_dim_eq(e, v->y, d, o, d)) return 0; /* static or same symbol */
    if (!onr_fuse_closed(e, nodes, 2, &keep, 1)) return 0;
    /* after an activation already fused: act(conv) + Z */
    int after = v->kind == K_FCONV && v->act[0];
    return emit_conv(e, i, 1, v, v->b, o, keep, NULL, after, nodes, 2, err);
}

/* ---- input scale: Mul(A, S) -> conv -------------------------------------- */

/* S scales A channel by channel: A's rank (3 or more), dims [N or 1, C,
 * 1, ...] against A's [N, C, ...] (the squeeze-excitation product). */
static int channel_scale_of(const onr_edit *e, int sv, int av)
{
    int64_t ds[ONR_MAX_RANK], da[ONR_MAX_RANK];
    int rs = onr_fuse_shape(e, sv, ds), ra = onr_fuse_shape(e, av, da);
    if (ra < 3 || rs != ra || da[1] < 1 || ds[1] != da[1]) return 0;
    if (ds[0] != 1 && !onr_fuse_dim_eq(e, sv, 0, av, 0)) return 0;
    for (int d = 2; d < rs; d++)
        if (ds[d] != 1) return 0;
    return 1;
}

/* The conv's X is Mul(A, S), read by nothing else, S a per-channel scale
 * of A (of X's shape): FusedConv(A, ..., S), which scales W or its
 * gather of X instead of writing X (conv.c). */
static int try_scale(onr_edit *e, int i, const conv_view *v, onr_err *err)
{
    int m = onr_fuse_src(e, v->x, "Mul");
    if (m < 0) return 0;
    const onr_node *mn = &e->g->nodes[m];
    if (mn->n_in != 2 || mn->n_out != 1 || mn->outputs[0] != v->x || mn->inputs[0] < 0 ||
        mn->inputs[1] < 0 || mn->inputs[0] == mn->inputs[1])
        return 0;
    if (onr_fuse_dtype(e, v->x) != ONR_FLOAT || onr_fuse_dtype(e, v->y) != ONR_FLOAT) return 0;
    int64_t dx[ONR_MAX_RANK], da[ONR_MAX_RANK];
    int rx = onr_fuse_shape(e, v->x, dx);
    if (rx < 3) return 0;
    for (int slot = 0; slot < 2; slot++) {
        int a = mn->inputs[slot], sv = mn->inputs[1 - slot];
        if (onr_fuse_dtype(e, a) != ONR_FLOAT || onr_fuse_dtype(e, sv) != ONR_FLOAT ||
            onr_fuse_shape(e, a, da) != rx)
            continue;
        int same = 1;
        for (int d = 0; same && d < rx; d++) same = onr_fuse_dim_eq(e, a, d, v->x, d);
        if (!same || !channel_scale_of(e, sv, a)) continue;
        int nodes[2] = {m, i}, keep = v->y;
        if (!onr_fuse_closed(e, nodes, 2, &keep, 1)) return 0;
        conv_view nv = *v;
        nv.x = a;
        nv.s = sv;
        return emit_conv(e, i, 1, &nv, v->b, v->z, v->y, NULL, v->res_after, nodes, 2, err);
    }
    return 0;
}

/* ---- max pool --------------------------------------------------------------- */

/* An ints attribute of n absent or of `count` values, each `want` (or each
 * >= 0 when want < 0); its values into out (def when absent). */
static int pool_ints(const onr_node *n, const char *name, size_t count, int64_t want, int64_t def,
                     int64_t *out)
{
    size_t k = 0;
    const int64_t *v = onr_attr_ints(n, name, &k);
    if (!v) {
        for (size_t j = 0; j < count; j++) out[j] = def;
        return 1;
    }
    if (k != count) return 0;
    for (size_t j = 0; j < count; j++) {
        if (want >= 0 ? v[j] != want : v[j] < 0) return 0;
        out[j] = v[j];
    }
    return 1;
}

/* auto_pad absent, "" or NOTSET. */
static int pads_explicit(const onr_node *n)
{
    const char *a = onr_attr_string(n, "auto_pad", "");
    return !a[0] || strcmp(a, "NOTSET") == 0;
}

/* A 2-D float32 conv on the small-group kernel (a ResNet stem: 3 inputs,
 * 7x7 / 2) whose output only a MaxPool reads (floor rounding, explicit
 * pads, dilation 1, no Indices) -> FusedConv(pool): conv.c computes a band
 * of conv rows at a time into a buffer near the cache and pools it there,
 * so the conv output (3.2 MB for ResNet's stem) never goes to memory and
 * back. Pads smaller than the window, so no window is all padding. */
static int try_pool(onr_edit *e, int i, const conv_view *v, int c, onr_err *err)
{
    if (v->kind == K_CONVT || v->z >= 0 || v->s >= 0 || onr_fuse_dtype(e, v->y) != ONR_FLOAT ||
        onr_fuse_dtype(e, v->x) != ONR_FLOAT)
        return 0;
    const onr_node *pn = &e->g->nodes[c], *cn = &e->g->nodes[i];
    if (pn->n_in != 1 || pn->n_out != 1 || pn->outputs[0] < 0 ||
        onr_attr_int(pn, "ceil_mode", 0) != 0 || !pads_explicit(pn))
        return 0;
    int64_t k[2], st[2], pads[4], dil[2];
    if (!pool_ints(pn, "kernel_shape", 2, -1, 0, k) || k[0] < 1 || k[1] < 1 ||
        !pool_ints(pn, "strides", 2, -1, 1, st) || st[0] < 1 || st[1] < 1 ||
        !pool_ints(pn, "pads", 4, -1, 0, pads) || !pool_ints(pn, "dilations", 2, 1, 1, dil))
        return 0;
    for (int j = 0; j < 4; j++)
        if (pads[j] >= k[j % 2]) return 0;
    /* the conv: a constant 4-D W its kernel takes, 2-D (no auto_pad) */
    const onr_tensor *w = onr_fuse_const_desc(e, v->w);
    if (!w || w->rank != 4 || !pads_explicit(cn)) return 0;
    int64_t cst[2], cdil[2];
    if (!pool_ints(cn, "strides", 2, -1, 1, cst) || !pool_ints(cn, "dilations", 2, 1, 1, cdil))
        return 0;
    if (!onr_conv_pool_banded(onr_attr_int(cn, "group", 1), w->dims, cst[0] > cst[1] ? cst[0] : cst[1]))
        return 0;
    int nodes[2] = {i, c}, keep = pn->outputs[0], node = -1;
    if (!onr_fuse_closed(e, nodes, 2, &keep, 1)) return 0;
    if (emit_conv_at(e, i, 1, v, v->b, -1, keep, NULL, 0, nodes, 2, &node, err) < 0) return -1;
    if (onr_edit_set_attr_string(e, node, "pool", "MaxPool", err) ||
        onr_edit_set_attr_ints(e, node, "pool_kernel_shape", k, 2, err) ||
        onr_edit_set_attr_ints(e, node, "pool_strides", st, 2, err) ||
        onr_edit_set_attr_ints(e, node, "pool_pads", pads, 4, err))
        return -1;
    return 1;
}

/* ---- the pass -------------------------------------------------------------- */

static int match(onr_edit *e, int i, void *ctx, onr_err *err)
{
    (void)ctx;
    conv_view v;
    if (!view_conv(e, i, &v)) return 0;
    int c = onr_fuse_sole_consumer(e, v.y);
    /* a BatchNormalization folds first: a FusedConv takes none */
    if (c >= 0 && onr_fuse_is(e, c, "BatchNormalization") && v.kind != K_FCONV) {
        int r = try_bn(e, i, &v, c, err);
        if (r) return r;
    }
    if (v.kind != K_CONVT && v.s < 0) {
        int r = try_scale(e, i, &v, err);
        if (r) return r;
    }
    if (c < 0) return v.kind != K_CONVT ? try_gated(e, i, &v, err) : 0;
    if (onr_fuse_is(e, c, "BatchNormalization")) return 0;
    if (v.kind == K_CONVT) return 0;
    if (onr_fuse_is(e, c, "Add")) return try_add(e, i, &v, c, err);
    act_desc a;
    if (activation_of(e, c, v.y, &a)) return try_act(e, i, &v, c, &a, err);
    if (onr_fuse_is(e, c, "MaxPool")) return try_pool(e, i, &v, c, err);
    return 0;
}

onr_status onr_pass_fuse_conv(onr_edit *e, onr_err *err)
{
    return onr_fuse_sweep(e, match, NULL, err);
}
