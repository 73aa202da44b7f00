/*
 * linalg_util.c - shared pieces of the linear-algebra family: sliding-window
 * geometry (Conv, pools) and float16/bfloat16 work-buffer conversion.
 * See linalg.h.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/linalg.h"

static const struct {
    const char *name;
    onr_autopad v;
} autopad_names[] = {
    {"", ONR_PAD_NOTSET},
    {"NOTSET", ONR_PAD_NOTSET},
    {"SAME_UPPER", ONR_PAD_SAME_UPPER},
    {"SAME_LOWER", ONR_PAD_SAME_LOWER},
    {"VALID", ONR_PAD_VALID},
};

/* The auto_pad attribute ("" counts as NOTSET); error on unknown values. */
static int autopad_attr(const onr_node *node, onr_err *err, onr_autopad *ap)
{
    const char *s = onr_attr_string(node, "auto_pad", "NOTSET");
    for (size_t i = 0; i < sizeof autopad_names / sizeof autopad_names[0]; i++)
        if (strcmp(s, autopad_names[i].name) == 0) {
            *ap = autopad_names[i].v;
            return ONR_OK;
        }
    return onr_seterr(err, ONR_E_MODEL,
                      "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", s);
}

int onr_sp_list_attr(const onr_create_ctx *c, const char *name, int maxn, int64_t minv,
                     onr_sp_list *l)
{
    const onr_attr *a = onr_node_attr(c->node, name);
    memset(l, 0, sizeof *l);
    l->name = name;
    if (!a) return ONR_OK;
    if (a->type != ONR_ATTR_INTS)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' must be a list of ints", name);
    if (maxn > ONR_SP_LIST_MAX) maxn = ONR_SP_LIST_MAX;
    if (a->n > (size_t)maxn)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED,
                          "attribute '%s' has %zu values, at most %d are handled", name, a->n,
                          maxn);
    for (size_t i = 0; i < a->n; i++) {
        if (a->ints[i] < minv || a->ints[i] > ONR_SP_ATTR_MAX)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "attribute '%s'[%zu] = %lld is out of range [%lld, %lld]", name, i,
                              (long long)a->ints[i], (long long)minv,
                              (long long)ONR_SP_ATTR_MAX);
        l->v[i] = a->ints[i];
    }
    l->present = 1;
    l->n = (int)a->n;
    return ONR_OK;
}

int onr_sp_list_get(onr_err *err, const onr_sp_list *l, int n, int64_t def, int64_t *vals)
{
    if (!l->present) {
        for (int i = 0; i < n; i++) vals[i] = def;
        return ONR_OK;
    }
    if (l->n != n)
        return onr_seterr(err, ONR_E_MODEL, "attribute '%s' has %d values, expected %d", l->name,
                          l->n, n);
    for (int i = 0; i < n; i++) vals[i] = l->v[i];
    return ONR_OK;
}

int onr_window_attrs_read(const onr_create_ctx *c, onr_window_attrs *wa)
{
    int st;
    if ((st = autopad_attr(c->node, c->err, &wa->ap)) ||
        (st = onr_sp_list_attr(c, "strides", ONR_SP_MAX, 1, &wa->strides)) ||
        (st = onr_sp_list_attr(c, "dilations", ONR_SP_MAX, 1, &wa->dilations)) ||
        (st = onr_sp_list_attr(c, "pads", 2 * ONR_SP_MAX, 0, &wa->pads)))
        return st;
    return ONR_OK;
}

void onr_sp_pad3(int nsp, const int64_t *src, int64_t fill, int64_t *dst)
{
    for (int j = 0; j < 3; j++) dst[j] = j < 3 - nsp ? fill : src[j - (3 - nsp)];
}

/* Output size and pads along one axis, per the ONNX pooling/conv formulas. */
static int window_axis(onr_err *err, onr_spatial *g, int j, int axis, onr_autopad ap,
                       int ceil_mode)
{
    int64_t in = g->in[j], s = g->s[j], dk = (g->k[j] - 1) * g->d[j] + 1;
    if (ap == ONR_PAD_SAME_UPPER || ap == ONR_PAD_SAME_LOWER) {
        /* output = ceil(in / stride); the padding that takes is split evenly,
         * the odd one going to the end (UPPER) or the beginning (LOWER) */
        int64_t out = (in + s - 1) / s;
        int64_t total = (out - 1) * s + dk - in;
        if (total < 0) total = 0;
        g->pb[j] = ap == ONR_PAD_SAME_UPPER ? total / 2 : total - total / 2;
        g->pe[j] = total - g->pb[j];
        g->out[j] = out;
        return ONR_OK;
    }
    if (ap == ONR_PAD_VALID) g->pb[j] = g->pe[j] = 0;
    int64_t num = in + g->pb[j] + g->pe[j] - dk;
    if (num < 0)
        return onr_seterr(err, ONR_E_MODEL,
                          "kernel extent %lld (kernel %lld, dilation %lld) is larger than the "
                          "padded input %lld on spatial axis %d",
                          (long long)dk, (long long)g->k[j], (long long)g->d[j],
                          (long long)(in + g->pb[j] + g->pe[j]), axis);
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    /* ceil mode: a last window that would start inside the end padding is
     * dropped (ONNX reference and PyTorch) */
    if (ceil_mode && (out - 1) * s >= in + g->pb[j]) out--;
    g->out[j] = out;
    return ONR_OK;
}

int onr_spatial_window(onr_err *err, const onr_window_attrs *wa, int nsp, const int64_t *in_sp,
                       const int64_t *kernel, int ceil_mode, onr_spatial *g)
{
    int64_t s[ONR_SP_MAX], d[ONR_SP_MAX], pads[2 * ONR_SP_MAX];
    int st;
    if ((st = onr_sp_list_get(err, &wa->strides, nsp, 1, s)) ||
        (st = onr_sp_list_get(err, &wa->pads, 2 * nsp, 0, pads)) ||
        (st = onr_sp_list_get(err, &wa->dilations, nsp, 1, d)))
        return st;
    memset(g, 0, sizeof *g);
    g->nsp = nsp;
    onr_sp_pad3(nsp, in_sp, 1, g->in);
    onr_sp_pad3(nsp, kernel, 1, g->k);
    onr_sp_pad3(nsp, s, 1, g->s);
    onr_sp_pad3(nsp, d, 1, g->d);
    onr_sp_pad3(nsp, pads, 0, g->pb);
    onr_sp_pad3(nsp, pads + nsp, 0, g->pe);
    g->out[0] = g->out[1] = 1;
    for (int i = 0; i < nsp; i++) {
        int j = 3 - nsp + i;
        if ((st = window_axis(err, g, j, i, wa->ap, ceil_mode))) return st;
    }
    return ONR_OK;
}

/* ---- float16 / bfloat16 ------------------------------------------------ */

void onr_la_to_f32(const onr_tensor *t, float *dst, int nthreads)
{
    int64_t n = t->numel;
    const uint16_t *h = t->data;
    if (t->dtype == ONR_FLOAT) {
        if (n) memcpy(dst, t->data, (size_t)n * sizeof(float));
    } else if (t->dtype == ONR_FLOAT16) {
        #pragma omp parallel for num_threads(onr_team(nthreads)) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) dst[i] = onr_half_to_float(h[i]);
    } else {
        #pragma omp parallel for num_threads(onr_team(nthreads)) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) dst[i] = onr_bf16_to_float(h[i]);
    }
}

float *onr_la_const_f32(const onr_create_ctx *c, const onr_tensor *t, float scale)
{
    size_t n = (size_t)t->numel;
    float *p = malloc(n ? n * sizeof(float) : 1);
    if (!p) {
        onr_seterr(c->err, ONR_E_NOMEM, "out of memory for a float32 copy of %zu weights", n);
        return NULL;
    }
    onr_la_to_f32(t, p, c->nthreads > 0 ? c->nthreads : 1);
    if (scale != 1.f)
        for (size_t i = 0; i < n; i++) p[i] *= scale;
    return p;
}

void onr_la_from_f32(onr_tensor *t, const float *src, int nthreads)
{
    int64_t n = t->numel;
    uint16_t *h = t->data;
    if (t->dtype == ONR_FLOAT) {
        if (n) memcpy(t->data, src, (size_t)n * sizeof(float));
    } else if (t->dtype == ONR_FLOAT16) {
        #pragma omp parallel for num_threads(onr_team(nthreads)) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) h[i] = onr_float_to_half(src[i]);
    } else {
        #pragma omp parallel for num_threads(onr_team(nthreads)) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) h[i] = onr_float_to_bf16(src[i]);
    }
}
