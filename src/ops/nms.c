/*
 * nms.c - NonMaxSuppression (opsets 10 and 11; the text and semantics are
 * the same in both).
 *
 * For every batch b and class c, independently: the boxes whose score is
 * above score_threshold (all boxes when that input is absent) are ranked by
 * score, highest first, ties by the lower box index; a box is selected
 * unless its IOU with an already selected box of the same class exceeds
 * iou_threshold, until max_output_boxes_per_class are selected (absent or
 * <= 0: none). The output lists [b, c, box] rows, batch-major, then class,
 * then selection order.
 *
 * Boxes are [y1, x1, y2, x2] with either diagonal's corners
 * (center_point_box = 0) or [x_center, y_center, width, height] (1). The
 * IOU of two boxes is 0 when they do not overlap or either area or the union
 * is not positive, so degenerate boxes never suppress.
 *
 * The number of rows depends on the data, so reshape reads every input (they
 * are shape inputs) and runs the selection once to count; run selects again
 * into the output. Scores are ranked by exact keys (sortkey.h); a NaN score
 * ranks highest when no score_threshold filters it out.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/sortkey.h"

typedef struct nms_params {
    int center_point_box;
    /* reshape */
    int64_t B, N, C;
    int64_t max_out;
    float iou_thr, score_thr;
    int has_score_thr;
    int64_t nsel;
} nms_params;

typedef struct nms_box {
    float ymin, xmin, ymax, xmax;
} nms_box;

static int nms_create(onr_create_ctx *c, void *params)
{
    nms_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "center_point_box");
    if (a && (a->type != ONR_ATTR_INT || (a->i != 0 && a->i != 1)))
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'center_point_box' must be an int 0 or 1");
    p->center_point_box = a ? (int)a->i : 0;
    return ONR_OK;
}

/* Optional scalar input i as double; *has = 0 when absent or empty. */
static int opt_scalar(onr_kctx *ctx, int i, uint32_t types, double *v, int *has)
{
    *has = 0;
    if (i >= ctx->n_in || !ctx->in[i]) return ONR_OK;
    int st = onr_check_input(ctx, i, types);
    if (st) return st;
    if (ctx->in[i]->numel == 0) return ONR_OK;
    if (ctx->in[i]->numel != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d must hold one value, it holds %lld", i,
                          (long long)ctx->in[i]->numel);
    if ((st = onr_read_scalar(ctx, i, v))) return st;
    *has = 1;
    return ONR_OK;
}

static nms_box box_at(const nms_params *p, const float *b)
{
    nms_box r;
    if (p->center_point_box) {
        r.xmin = b[0] - b[2] / 2, r.xmax = b[0] + b[2] / 2;
        r.ymin = b[1] - b[3] / 2, r.ymax = b[1] + b[3] / 2;
    } else {
        r.ymin = b[0] < b[2] ? b[0] : b[2], r.ymax = b[0] < b[2] ? b[2] : b[0];
        r.xmin = b[1] < b[3] ? b[1] : b[3], r.xmax = b[1] < b[3] ? b[3] : b[1];
    }
    return r;
}

/* Does box a suppress box b (IOU above the threshold)? */
static int suppresses(const nms_params *p, const float *a4, const float *b4)
{
    nms_box a = box_at(p, a4), b = box_at(p, b4);
    float ix0 = a.xmin > b.xmin ? a.xmin : b.xmin, ix1 = a.xmax < b.xmax ? a.xmax : b.xmax;
    float iy0 = a.ymin > b.ymin ? a.ymin : b.ymin, iy1 = a.ymax < b.ymax ? a.ymax : b.ymax;
    if (!(ix1 > ix0) || !(iy1 > iy0)) return 0;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float aa = (a.xmax - a.xmin) * (a.ymax - a.ymin), ab = (b.xmax - b.xmin) * (b.ymax - b.ymin);
    float uni = aa + ab - inter;
    if (!(inter > 0) || !(aa > 0) || !(ab > 0) || !(uni > 0)) return 0;
    return inter / uni > p->iou_thr;
}

/* Rank: a before b (higher score, then lower index). */
static inline int ranks_before(const float *s, int64_t a, int64_t b)
{
    uint64_t ka = onr_key_f64(s[a]), kb = onr_key_f64(s[b]);
    return ka != kb ? ka > kb : a < b;
}

/* Selection for every (b, c), in order; writes at most cap rows to out
 * when non-NULL. work: 3N int64. Returns the row count. */
static int64_t nms_select(const nms_params *p, const float *boxes, const float *scores,
                          int64_t *work, int64_t *out, int64_t cap)
{
    int64_t N = p->N, rows = 0;
    int64_t *cand = work, *tmp = work + N, *sel = work + 2 * N;
    if (p->max_out <= 0) return 0;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t c = 0; c < p->C; c++) {
            const float *s = scores + (b * p->C + c) * N;
            const float *bx = boxes + b * N * 4;
            int64_t m = 0;
            for (int64_t i = 0; i < N; i++)
                if (!p->has_score_thr || s[i] > p->score_thr) cand[m++] = i;
            /* stable bottom-up merge sort by rank */
            for (int64_t w = 1; w < m; w *= 2) {
                for (int64_t lo = 0; lo < m; lo += 2 * w) {
                    int64_t mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
                    int64_t i = lo, j = mid, o = lo;
                    while (i < mid && j < hi)
                        tmp[o++] = ranks_before(s, cand[j], cand[i]) ? cand[j++] : cand[i++];
                    while (i < mid) tmp[o++] = cand[i++];
                    while (j < hi) tmp[o++] = cand[j++];
                }
                memcpy(cand, tmp, sizeof(int64_t) * (size_t)m);
            }
            int64_t ns = 0;
            for (int64_t k = 0; k < m && ns < p->max_out; k++) {
                int64_t i = cand[k], keep = 1;
                for (int64_t q = 0; q < ns && keep; q++)
                    if (suppresses(p, bx + sel[q] * 4, bx + i * 4)) keep = 0;
                if (!keep) continue;
                sel[ns++] = i;
                if (out && rows < cap) {
                    out[rows * 3] = b;
                    out[rows * 3 + 1] = c;
                    out[rows * 3 + 2] = i;
                }
                rows++;
            }
        }
    return rows;
}

static int nms_reshape(onr_kctx *ctx, size_t *scratch)
{
    nms_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, ONR_T(ONR_FLOAT));
    if (!st) st = onr_check_input(ctx, 1, ONR_T(ONR_FLOAT));
    if (st) return st;
    const onr_tensor *bx = ctx->in[0], *sc = ctx->in[1];
    char s1[256], s2[256];
    if (bx->rank != 3 || bx->dims[2] != 4)
        return onr_seterr(ctx->err, ONR_E_MODEL, "boxes %s must be [batches, boxes, 4]",
                          onr_fmt_dims(s1, sizeof s1, bx->dims, bx->rank));
    if (sc->rank != 3 || sc->dims[0] != bx->dims[0] || sc->dims[2] != bx->dims[1])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "scores %s must be [batches, classes, boxes] for boxes %s",
                          onr_fmt_dims(s1, sizeof s1, sc->dims, sc->rank),
                          onr_fmt_dims(s2, sizeof s2, bx->dims, bx->rank));
    for (int i = 0; i < ctx->n_in && i < 5; i++)
        if (ctx->in[i] && !ctx->in[i]->data && ctx->in[i]->numel > 0) return ONR_SHAPE_DEFER;
    double v;
    int has;
    if ((st = opt_scalar(ctx, 2, ONR_T(ONR_INT64), &v, &has))) return st;
    p->max_out = 0;
    if (has) {
        int64_t mo = ((const int64_t *)ctx->in[2]->data)[0];
        p->max_out = mo > 0 ? mo : 0;
    }
    if ((st = opt_scalar(ctx, 3, ONR_T(ONR_FLOAT), &v, &has))) return st;
    p->iou_thr = has ? (float)v : 0.f;
    if (has && !(v >= 0 && v <= 1))
        return onr_seterr(ctx->err, ONR_E_MODEL, "iou_threshold %g is outside [0, 1]", v);
    if ((st = opt_scalar(ctx, 4, ONR_T(ONR_FLOAT), &v, &has))) return st;
    p->has_score_thr = has;
    p->score_thr = has ? (float)v : 0.f;
    p->B = bx->dims[0];
    p->N = bx->dims[1];
    p->C = sc->dims[1];
    size_t bytes = (size_t)p->N * 3 * sizeof(int64_t);
    p->nsel = 0;
    if (p->N > 0 && p->max_out > 0) {
        int64_t *work = malloc(bytes);
        if (!work)
            return onr_seterr(ctx->err, ONR_E_NOMEM, "no memory to rank %lld boxes",
                              (long long)p->N);
        p->nsel = nms_select(p, bx->data, sc->data, work, NULL, 0);
        free(work);
    }
    *scratch = bytes;
    int64_t dims[2] = {p->nsel, 3};
    return onr_set_out(ctx, 0, ONR_INT64, 2, dims);
}

static int nms_run(const onr_kctx *ctx)
{
    const nms_params *p = ctx->params;
    if (p->nsel == 0) return ONR_OK;
    int64_t rows = nms_select(p, ctx->in[0]->data, ctx->in[1]->data, ctx->scratch,
                              ctx->out[0]->data, p->nsel);
    if (rows != p->nsel)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "the inputs changed after reshape");
    return ONR_OK;
}

const onr_op_impl onr_impl_nms = {.create = nms_create, .reshape = nms_reshape, .run = nms_run,
    .params_size = sizeof(nms_params), .types = ONR_T(ONR_FLOAT),
    .shape_inputs = 0x1f};
