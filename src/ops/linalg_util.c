/*
 * linalg_util.c - shared pieces of the linear-algebra family: sliding-window
 * geometry (Conv, pools) and float16/bfloat16 work-buffer conversion.
 * See linalg.h.
 */
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

int onr_autopad_attr(onr_kctx *ctx, onr_autopad *ap)
{
    const char *s = onr_attr_string(ctx->node, "auto_pad", "NOTSET");
    for (size_t i = 0; i < sizeof autopad_names / sizeof autopad_names[0]; i++)
        if (strcmp(s, autopad_names[i].name) == 0) {
            *ap = autopad_names[i].v;
            return ONR_OK;
        }
    return onr_seterr(ctx->err, ONR_E_MODEL,
                      "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", s);
}

int onr_sp_ints(onr_kctx *ctx, const char *name, int n, int64_t def, int64_t minv,
                int64_t *vals, int *present)
{
    const onr_attr *a = onr_node_attr(ctx->node, name);
    if (present) *present = a != NULL;
    if (!a) {
        for (int i = 0; i < n; i++) vals[i] = def;
        return ONR_OK;
    }
    if (a->type != ONR_ATTR_INTS)
        return onr_seterr(ctx->err, ONR_E_MODEL, "attribute '%s' must be a list of ints", name);
    if (a->n != (size_t)n)
        return onr_seterr(ctx->err, ONR_E_MODEL, "attribute '%s' has %zu values, expected %d",
                          name, a->n, n);
    for (int i = 0; i < n; i++) {
        if (a->ints[i] < minv || a->ints[i] > ONR_SP_ATTR_MAX)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "attribute '%s'[%d] = %lld is out of range [%lld, %lld]", name, i,
                              (long long)a->ints[i], (long long)minv,
                              (long long)ONR_SP_ATTR_MAX);
        vals[i] = a->ints[i];
    }
    return ONR_OK;
}

void onr_sp_pad3(int nsp, const int64_t *src, int64_t fill, int64_t *dst)
{
    for (int j = 0; j < 3; j++) dst[j] = j < 3 - nsp ? fill : src[j - (3 - nsp)];
}

/* Output size and pads along one axis, per the ONNX pooling/conv formulas. */
static int window_axis(onr_kctx *ctx, onr_spatial *g, int j, int axis, onr_autopad ap,
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
        return onr_seterr(ctx->err, ONR_E_MODEL,
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

int onr_spatial_window(onr_kctx *ctx, int nsp, const int64_t *in_sp, const int64_t *kernel,
                       int ceil_mode, int use_dil, onr_spatial *g)
{
    onr_autopad ap = ONR_PAD_NOTSET;
    int64_t s[ONR_SP_MAX], d[ONR_SP_MAX], pads[2 * ONR_SP_MAX];
    int st;
    if ((st = onr_autopad_attr(ctx, &ap)) ||
        (st = onr_sp_ints(ctx, "strides", nsp, 1, 1, s, NULL)) ||
        (st = onr_sp_ints(ctx, "pads", 2 * nsp, 0, 0, pads, NULL)))
        return st;
    if (use_dil) {
        if ((st = onr_sp_ints(ctx, "dilations", nsp, 1, 1, d, NULL))) return st;
    } else {
        for (int i = 0; i < nsp; i++) d[i] = 1;
    }
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
        if ((st = window_axis(ctx, g, j, i, ap, ceil_mode))) return st;
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
        #pragma omp parallel for num_threads(nthreads) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) dst[i] = onr_half_to_float(h[i]);
    } else {
        #pragma omp parallel for num_threads(nthreads) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) dst[i] = onr_bf16_to_float(h[i]);
    }
}

void onr_la_from_f32(onr_tensor *t, const float *src, int nthreads)
{
    int64_t n = t->numel;
    uint16_t *h = t->data;
    if (t->dtype == ONR_FLOAT) {
        if (n) memcpy(t->data, src, (size_t)n * sizeof(float));
    } else if (t->dtype == ONR_FLOAT16) {
        #pragma omp parallel for num_threads(nthreads) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) h[i] = onr_float_to_half(src[i]);
    } else {
        #pragma omp parallel for num_threads(nthreads) if (n > ONR_PAR_MIN && nthreads > 1)
        for (int64_t i = 0; i < n; i++) h[i] = onr_float_to_bf16(src[i]);
    }
}
