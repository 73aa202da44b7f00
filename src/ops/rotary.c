/*
 * rotary.c - RotaryEmbedding (ai.onnx opset 23): rotary positional
 * embeddings (RoPE) applied to a [batch, heads, seq, head_size] tensor or a
 * [batch, seq, heads * head_size] one (num_heads attribute).
 *
 * For each (batch, seq, head) row of head_size values, the first
 * rotary_embedding_dim (rd, default head_size) are rotated as rd/2 pairs
 * (x1, x2) -- the two halves (x[i], x[i + rd/2]) or, interleaved, the
 * neighbours (x[2i], x[2i + 1]) -- by the angle whose cos and sin are
 * element i of the row's cache entry:
 *     x1' = cos * x1 - sin * x2,   x2' = sin * x1 + cos * x2
 * and the rest of the row is copied. The cache entry of (b, s) is row
 * position_ids[b, s] of the 2-D caches [max_pos, >= rd/2], or, without
 * position_ids, [b, s] of the 3-D caches [batch, seq, >= rd/2]. As in the
 * operator's function body (Gather, then Mul with broadcasting, then a
 * Slice of the first rd/2 cache columns), a batch or seq dim of 1 in the
 * caches / position_ids is broadcast and wider caches are read up to rd/2;
 * a position id may be negative (counted from the end, like Gather) and
 * one out of range is an error.
 *
 * float32 has a direct loop; float16 / bfloat16 compute in float and round
 * on store. Rows are split over threads above a work threshold.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

typedef struct rot_params {
    int interleaved;
    int64_t rd_attr, num_heads;
    /* reshape */
    int x4;                 /* X is [B, H, S, D] (else [B, S, H * D]) */
    int64_t B, H, S, D, rd, half;
    int has_pos;
    int64_t P, C;           /* cache rows (2-D form) and columns */
    int64_t cb, cs;         /* 3-D caches: element strides of b and s (0: broadcast) */
    int64_t pb, ps;         /* position_ids strides of b and s (0: broadcast) */
} rot_params;

static int rot_create(onr_create_ctx *c, void *params)
{
    rot_params *p = params;
    int64_t il = onr_attr_int(c->node, "interleaved", 0);
    if (il != 0 && il != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "interleaved must be 0 or 1, not %lld", (long long)il);
    p->interleaved = (int)il;
    p->rd_attr = onr_attr_int(c->node, "rotary_embedding_dim", 0);
    if (p->rd_attr < 0)
        return onr_seterr(c->err, ONR_E_MODEL, "rotary_embedding_dim %lld must be >= 0",
                          (long long)p->rd_attr);
    p->num_heads = onr_attr_int(c->node, "num_heads", 0);
    if (p->num_heads < 0)
        return onr_seterr(c->err, ONR_E_MODEL, "num_heads %lld must be >= 0", (long long)p->num_heads);
    if (c->n_in < 3 || c->n_in > 4)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "has %d inputs, RotaryEmbedding takes X, cos_cache, sin_cache and optional position_ids",
                          c->n_in);
    if (c->n_out != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "has %d outputs, RotaryEmbedding has one", c->n_out);
    return ONR_OK;
}

/* dim d of a cache / position_ids tensor against the wanted size: equal,
 * or 1 (broadcast). Returns the stride to use (0 when broadcast). */
static int rot_dim(onr_kctx *ctx, const char *what, const onr_tensor *t, int d, int64_t want,
                   int64_t stride, int64_t *out)
{
    if (t->dims[d] == want) {
        *out = want == 1 ? 0 : stride;
        return ONR_OK;
    }
    if (t->dims[d] == 1) {
        *out = 0;
        return ONR_OK;
    }
    char s1[256];
    return onr_seterr(ctx->err, ONR_E_MODEL, "%s %s: dim %d is %lld, X needs %lld (or 1)", what,
                      onr_fmt_dims(s1, sizeof s1, t->dims, t->rank), d, (long long)t->dims[d],
                      (long long)want);
}

static int rot_reshape(onr_kctx *ctx, size_t *scratch)
{
    rot_params *p = ctx->params;
    *scratch = 0;
    const uint32_t T = ONR_T(ONR_FLOAT) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16);
    int st = onr_check_input(ctx, 0, T);
    if (st || (st = onr_check_input(ctx, 1, T)) || (st = onr_check_input(ctx, 2, T))) return st;
    const onr_tensor *x = ctx->in[0], *cc = ctx->in[1], *sc = ctx->in[2];
    const onr_tensor *pos = ctx->n_in > 3 ? ctx->in[3] : NULL;
    if (cc->dtype != x->dtype || sc->dtype != x->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "cos_cache and sin_cache must have X's type");
    if (x->rank == 4) {
        p->x4 = 1;
        p->B = x->dims[0];
        p->H = x->dims[1];
        p->S = x->dims[2];
        p->D = x->dims[3];
    } else if (x->rank == 3) {
        p->x4 = 0;
        if (p->num_heads <= 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "X is 3-D: the num_heads attribute is required");
        if (x->dims[2] % p->num_heads)
            return onr_seterr(ctx->err, ONR_E_MODEL, "hidden size %lld is not a multiple of num_heads %lld",
                              (long long)x->dims[2], (long long)p->num_heads);
        p->B = x->dims[0];
        p->S = x->dims[1];
        p->H = p->num_heads;
        p->D = x->dims[2] / p->num_heads;
    } else {
        return onr_seterr(ctx->err, ONR_E_MODEL, "X must be 3-D or 4-D, it has rank %d", x->rank);
    }
    p->rd = p->rd_attr ? p->rd_attr : p->D;
    if (p->rd > p->D || p->rd % 2)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "rotary_embedding_dim %lld must be even and at most head_size %lld",
                          (long long)p->rd, (long long)p->D);
    p->half = p->rd / 2;
    if (cc->rank != sc->rank || memcmp(cc->dims, sc->dims, sizeof(int64_t) * (size_t)cc->rank)) {
        char s1[256], s2[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "cos_cache %s and sin_cache %s differ in shape",
                          onr_fmt_dims(s1, sizeof s1, cc->dims, cc->rank),
                          onr_fmt_dims(s2, sizeof s2, sc->dims, sc->rank));
    }
    p->has_pos = pos != NULL;
    if (pos) {
        if (pos->dtype != ONR_INT64)
            return onr_seterr(ctx->err, ONR_E_MODEL, "position_ids must be int64");
        if (pos->rank != 2)
            return onr_seterr(ctx->err, ONR_E_MODEL, "position_ids must be 2-D [batch, seq], it has rank %d",
                              pos->rank);
        if ((st = rot_dim(ctx, "position_ids", pos, 0, p->B, pos->dims[1], &p->pb)) ||
            (st = rot_dim(ctx, "position_ids", pos, 1, p->S, 1, &p->ps)))
            return st;
        if (cc->rank != 2)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "with position_ids the caches must be 2-D [max_pos, rd/2], they have rank %d",
                              cc->rank);
        p->P = cc->dims[0];
        p->C = cc->dims[1];
    } else {
        if (cc->rank != 3)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "without position_ids the caches must be 3-D [batch, seq, rd/2], they have rank %d",
                              cc->rank);
        p->C = cc->dims[2];
        if ((st = rot_dim(ctx, "cos_cache", cc, 0, p->B, cc->dims[1] * p->C, &p->cb)) ||
            (st = rot_dim(ctx, "cos_cache", cc, 1, p->S, p->C, &p->cs)))
            return st;
    }
    if (p->C < p->half) {
        char s1[256];
        return onr_seterr(ctx->err, ONR_E_MODEL, "caches %s have fewer than rd/2 = %lld columns",
                          onr_fmt_dims(s1, sizeof s1, cc->dims, cc->rank), (long long)p->half);
    }
    return onr_set_out_like(ctx, 0, 0);
}

/* One row: x, y of D values; c, s the cache entry. */
static void rot_row_f32(const float *x, float *y, const float *c, const float *s, int64_t half,
                        int64_t rd, int64_t D, int interleaved)
{
    if (interleaved) {
        for (int64_t i = 0; i < half; i++) {
            float x1 = x[2 * i], x2 = x[2 * i + 1];
            y[2 * i] = c[i] * x1 - s[i] * x2;
            y[2 * i + 1] = s[i] * x1 + c[i] * x2;
        }
    } else {
        for (int64_t i = 0; i < half; i++) {
            float x1 = x[i], x2 = x[i + half];
            y[i] = c[i] * x1 - s[i] * x2;
            y[i + half] = s[i] * x1 + c[i] * x2;
        }
    }
    if (D > rd) memcpy(y + rd, x + rd, sizeof(float) * (size_t)(D - rd));
}

static void rot_row_any(const onr_tensor *x, onr_tensor *y, int64_t xo, const onr_tensor *cc,
                        const onr_tensor *sc, int64_t co, const rot_params *p)
{
    int64_t half = p->half;
    for (int64_t i = 0; i < half; i++) {
        int64_t i1 = p->interleaved ? xo + 2 * i : xo + i;
        int64_t i2 = p->interleaved ? i1 + 1 : i1 + half;
        float c = (float)onr_get_f64(cc, co + i), s = (float)onr_get_f64(sc, co + i);
        float x1 = (float)onr_get_f64(x, i1), x2 = (float)onr_get_f64(x, i2);
        onr_set_f64(y, i1, c * x1 - s * x2);
        onr_set_f64(y, i2, s * x1 + c * x2);
    }
    for (int64_t i = p->rd; i < p->D; i++) onr_set_f64(y, xo + i, onr_get_f64(x, xo + i));
}

static int rot_run(const onr_kctx *ctx)
{
    const rot_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *cc = ctx->in[1], *sc = ctx->in[2];
    const onr_tensor *pos = p->has_pos ? ctx->in[3] : NULL;
    onr_tensor *y = ctx->out[0];
    if (x->numel == 0) return ONR_OK;
    const int64_t *pid = pos ? pos->data : NULL;
    if (pos) /* every position id used must address a cache row */
        for (int64_t i = 0; i < pos->numel; i++)
            if (pid[i] < -p->P || pid[i] >= p->P)
                return onr_seterr(ctx->err, ONR_E_MODEL,
                                  "position_ids[%lld] = %lld is outside the caches' %lld rows",
                                  (long long)i, (long long)pid[i], (long long)p->P);
    const int64_t B = p->B, H = p->H, S = p->S, D = p->D, rows = B * H * S;
    int f32 = x->dtype == ONR_FLOAT;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (x->numel * 2 > ONR_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t b, s;
        if (p->x4) { /* rows in [b][h][s] order */
            b = r / (H * S);
            s = r % S;
        } else { /* rows in [b][s][h] order */
            b = r / (S * H);
            s = (r / H) % S;
        }
        int64_t co;
        if (pos) {
            int64_t q = pid[b * p->pb + s * p->ps];
            if (q < 0) q += p->P;
            co = q * p->C;
        } else {
            co = b * p->cb + s * p->cs;
        }
        if (f32)
            rot_row_f32((const float *)x->data + r * D, (float *)y->data + r * D,
                        (const float *)cc->data + co, (const float *)sc->data + co, p->half, p->rd,
                        D, p->interleaved);
        else
            rot_row_any(x, y, r * D, cc, sc, co, p);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_rotary_embedding = {.create = rot_create, .reshape = rot_reshape,
    .run = rot_run, .params_size = sizeof(rot_params),
    .types = ONR_T(ONR_FLOAT) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16)};
