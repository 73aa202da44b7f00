/*
 * qgemm.c - the integer products of the quantization family: MatMulInteger
 * (10), QLinearMatMul (10, 21; 21's float8 a/b/y in qlmm_run_f8), ConvInteger
 * (10) and QLinearConv (10).
 *
 * Each subtracts the zero points first and accumulates exact products in
 * 32 bits: run widens A - a_zero_point and B - b_zero_point (or X and W) to
 * int16 in scratch once, so the kernel's inner loop is a plain int16 x int16
 * -> int32 multiply-add the compiler vectorizes. Sums wrap modulo 2^32 (unsigned
 * arithmetic: "accumulation may overflow if and only if in 32 bits"), never
 * undefined behaviour. The QLinear ops then requantize as the reference
 * does: the multiplier a_scale * b_scale / y_scale is computed in the
 * scales' type, the int32 sum times it in double, rounded half to even,
 * plus y_zero_point, saturated.
 *
 * Zero points and scales of A are per tensor (one element) or per row (M
 * elements: shape [M] or [..., M, 1], shared by every batch, or A's batch
 * dims + [M, 1]); those of B per tensor or per column ([N], [..., 1, N], or
 * B's batch dims + [1, N]). Conv weights' are per tensor or per output
 * channel ([M]); X's and the output's per tensor.
 *
 * The products run through one integer GEMM kernel (qgemm-kernel.h; a
 * baseline copy and an AVX2 one picked per CPU). The convolutions gather
 * bands of im2col columns (int16, at most QCONV_COL_BYTES per thread) and
 * multiply W' by them. The matmuls parallelize over (batch, 4-row block),
 * the convolutions over (image, group, band): each output element is
 * computed by one thread, exactly (integer sums), so results do not depend
 * on the thread count or the kernel variant.
 */
#include <omp.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/linalg.h"
#include "ops/quant.h"

#define T_Q8 (ONR_T(ONR_UINT8) | ONR_T(ONR_INT8))
#define T_SCALE21 (ONR_T(ONR_FLOAT) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16))

/* Element i of an int8/uint8/int32 tensor. */
static inline int32_t q_at(const onr_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ONR_UINT8: return ((const uint8_t *)t->data)[i];
    case ONR_INT8: return ((const int8_t *)t->data)[i];
    case ONR_INT32: return ((const int32_t *)t->data)[i];
    default: return 0;
    }
}

/* ---- per-row / per-column parameters -------------------------------------------- */

/* How a zero point or scale of a matmul operand is laid out. */
enum { QP_NONE, QP_TENSOR, QP_VEC, QP_BATCH };

/* Classify parameter t of an operand whose batch dims are bd[0..nb), with
 * `len` rows (A: per row, vec_last = 0) or columns (B: vec_last = 1). */
static int qp_kind(onr_err *err, const char *what, const onr_tensor *t, const int64_t *bd, int nb,
                   int64_t len, int vec_last, int *kind)
{
    char s1[256];
    if (!t) {
        *kind = QP_NONE;
        return ONR_OK;
    }
    if (t->numel == 1) {
        *kind = QP_TENSOR;
        return ONR_OK;
    }
    /* [len], or [..., len, 1] (A) / [..., 1, len] (B) with the leading dims
     * all 1 or exactly the batch dims */
    if (t->rank == 1 && t->dims[0] == len) {
        *kind = QP_VEC;
        return ONR_OK;
    }
    if (t->rank >= 2 && t->dims[t->rank - 1 - vec_last] == len &&
        t->dims[t->rank - 2 + vec_last] == 1) {
        int lead = t->rank - 2, ones = 1, same = lead == nb;
        for (int d = 0; d < lead; d++) {
            ones &= t->dims[d] == 1;
            same &= d < nb && t->dims[d] == bd[d];
        }
        if (ones || same) {
            *kind = ones ? QP_VEC : QP_BATCH;
            return ONR_OK;
        }
    }
    return onr_seterr(err, ONR_E_MODEL,
                      "%s has shape %s: expected one element or one per %s (%lld)", what,
                      onr_fmt_dims(s1, sizeof s1, t->dims, t->rank), vec_last ? "column" : "row",
                      (long long)len);
}

/* Index into a parameter of kind k for batch b (the operand's own batch
 * index) and row/column j of len. */
static inline int64_t qp_index(int k, int64_t b, int64_t j, int64_t len)
{
    return k == QP_VEC ? j : k == QP_BATCH ? b * len + j : 0;
}

/* ---- the matmul core ------------------------------------------------------------- */

typedef struct qmm_geom {
    int64_t M, K, N;
    int orank;
    int64_t odims[ONR_MAX_RANK];
    int nb;                      /* output batch rank */
    int64_t bdims[ONR_MAX_RANK]; /* output batch dims */
    int64_t abs[ONR_MAX_RANK], bbs[ONR_MAX_RANK]; /* batch strides (in matrices) of A and B */
    int64_t abatch, bbatch, obatch;               /* matrices in A, B, output */
    int za, zb, sa, sb;                           /* QP_* of zero points and scales */
} qmm_geom;

/* MatMul's shape rules (1-D operands promoted and their dim dropped). */
static int qmm_shapes(onr_kctx *ctx, const onr_tensor *a, const onr_tensor *b, qmm_geom *g)
{
    char s1[256], s2[256];
    if (a->rank < 1 || b->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "matmul operands must have rank >= 1");
    int64_t ad[ONR_MAX_RANK + 1], bd[ONR_MAX_RANK + 1];
    int ar = a->rank, br = b->rank;
    memcpy(ad, a->dims, sizeof(int64_t) * ar);
    memcpy(bd, b->dims, sizeof(int64_t) * br);
    if (ar == 1) ad[1] = ad[0], ad[0] = 1, ar = 2;
    if (br == 1) bd[1] = 1, br = 2;
    g->M = ad[ar - 2];
    g->K = ad[ar - 1];
    g->N = bd[br - 1];
    if (bd[br - 2] != g->K)
        return onr_seterr(ctx->err, ONR_E_MODEL, "inner dims differ: A %s, B %s",
                          onr_fmt_dims(s1, sizeof s1, a->dims, a->rank),
                          onr_fmt_dims(s2, sizeof s2, b->dims, b->rank));
    int na = ar - 2, nbb = br - 2, nb = na > nbb ? na : nbb;
    int64_t as[ONR_MAX_RANK], bs[ONR_MAX_RANK];
    onr_strides(ad, na, as);
    onr_strides(bd, nbb, bs);
    g->abatch = g->bbatch = g->obatch = 1;
    for (int d = 0; d < na; d++) g->abatch *= ad[d];
    for (int d = 0; d < nbb; d++) g->bbatch *= bd[d];
    for (int d = 0; d < nb; d++) {
        int ia = d - (nb - na), ib = d - (nb - nbb);
        int64_t x = ia >= 0 ? ad[ia] : 1, y = ib >= 0 ? bd[ib] : 1;
        if (x != y && x != 1 && y != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL, "batch dims of A %s and B %s do not broadcast",
                              onr_fmt_dims(s1, sizeof s1, a->dims, a->rank),
                              onr_fmt_dims(s2, sizeof s2, b->dims, b->rank));
        g->bdims[d] = x > y ? x : y;
        if (x == 0 || y == 0) g->bdims[d] = 0;
        g->abs[d] = ia >= 0 && x != 1 ? as[ia] : 0;
        g->bbs[d] = ib >= 0 && y != 1 ? bs[ib] : 0;
        g->obatch *= g->bdims[d];
    }
    g->nb = nb;
    int r = 0;
    for (int d = 0; d < nb; d++) g->odims[r++] = g->bdims[d];
    if (a->rank > 1) g->odims[r++] = g->M;
    if (b->rank > 1) g->odims[r++] = g->N;
    if (r > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "output rank %d exceeds %d", r,
                          ONR_MAX_RANK);
    g->orank = r;
    return ONR_OK;
}

/* Matrix indices of A and B for output batch ob. */
static void qmm_batch(const qmm_geom *g, int64_t ob, int64_t *ia, int64_t *ib)
{
    int64_t a = 0, b = 0;
    for (int d = g->nb - 1; d >= 0; d--) {
        int64_t i = ob % g->bdims[d];
        ob /= g->bdims[d];
        a += i * g->abs[d];
        b += i * g->bbs[d];
    }
    *ia = a;
    *ib = b;
}

/* A' = A - za (int16, A's layout) and B' = B - zb. */
static void qmm_widen(const qmm_geom *g, const onr_tensor *a, const onr_tensor *za,
                      const onr_tensor *b, const onr_tensor *zb, int16_t *aw, int16_t *bw)
{
    int64_t MK = g->M * g->K, KN = g->K * g->N;
    for (int64_t bt = 0; bt < g->abatch; bt++)
        for (int64_t m = 0; m < g->M; m++) {
            int32_t z = za ? q_at(za, qp_index(g->za, bt, m, g->M)) : 0;
            int64_t o = bt * MK + m * g->K;
            for (int64_t k = 0; k < g->K; k++) aw[o + k] = (int16_t)(q_at(a, o + k) - z);
        }
    for (int64_t bt = 0; bt < g->bbatch; bt++)
        for (int64_t k = 0; k < g->K; k++) {
            int64_t o = bt * KN + k * g->N;
            for (int64_t n = 0; n < g->N; n++) {
                int32_t z = zb ? q_at(zb, qp_index(g->zb, bt, n, g->N)) : 0;
                bw[o + n] = (int16_t)(q_at(b, o + n) - z);
            }
        }
}

/* The integer GEMM kernel (qgemm-kernel.h): the baseline copy here, the
 * AVX2 one in qgemm-avx2.c, picked per CPU. */
#define QMM_KERNEL_NAME qmm_rows_c
#define QMM_KERNEL_STATIC
#include "ops/qgemm-kernel.h"

void onr_qmm_rows_avx2(const int16_t *a, int64_t lda, int nr, const int16_t *b, int64_t ldb,
                       int64_t K, int64_t N, int32_t *c, int64_t ldc);

typedef void (*qmm_fn)(const int16_t *, int64_t, int, const int16_t *, int64_t, int64_t,
                       int64_t, int32_t *, int64_t);

/* The kernel variant: 0 = by CPU, 1 = the baseline C one (tests). */
int onr_qmm_force_c = 0;

static qmm_fn qmm_pick(void)
{
    if (!onr_qmm_force_c && onr_cpu_supports("avx2")) return onr_qmm_rows_avx2;
    return qmm_rows_c;
}

/* ---- MatMulInteger ---------------------------------------------------------------- */

typedef struct qmm_params {
    qmm_geom g;
    size_t off_b, off_c; /* scratch: A' at 0, B' at off_b, (QLinear) an int32 row at off_c */
    size_t c_stride;     /* bytes from one thread's int32 rows to the next's */
    onr_dtype sdt;       /* QLinearMatMul: the scales' type */
    int f8;              /* QLinearMatMul-21: a float8 a, b or y (qlmm_run_f8) */
} qmm_params;

/* f8: QLinearMatMul-21 with a float8 operand or output: A' and B' are
 * doubles (qlmm_run_f8), else int16 for the integer kernel. */
static int qmm_prepare(onr_kctx *ctx, qmm_params *p, int ia, int iza, int ib, int izb,
                       size_t *scratch, int qlinear, int f8)
{
    qmm_geom *g = &p->g;
    int st;
    uint32_t types = f8 ? T_Q8 | ONR_TYPES_F8 : T_Q8;
    size_t es = f8 ? sizeof(double) : sizeof(int16_t);
    if ((st = onr_check_input(ctx, ia, types)) || (st = onr_check_input(ctx, ib, types))) return st;
    const onr_tensor *a = ctx->in[ia], *b = ctx->in[ib];
    const onr_tensor *za = iza < ctx->n_in ? ctx->in[iza] : NULL;
    const onr_tensor *zb = izb < ctx->n_in ? ctx->in[izb] : NULL;
    if (za && za->dtype != a->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "A's zero point (%s) must have A's type (%s)",
                          onr_dtype_name(za->dtype), onr_dtype_name(a->dtype));
    if (zb && zb->dtype != b->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "B's zero point (%s) must have B's type (%s)",
                          onr_dtype_name(zb->dtype), onr_dtype_name(b->dtype));
    if ((st = qmm_shapes(ctx, a, b, g))) return st;
    int nba = a->rank > 2 ? a->rank - 2 : 0, nbb = b->rank > 2 ? b->rank - 2 : 0;
    if ((st = qp_kind(ctx->err, "A's zero point", za, a->dims, nba, g->M, 0, &g->za)) ||
        (st = qp_kind(ctx->err, "B's zero point", zb, b->dims, nbb, g->N, 1, &g->zb)))
        return st;
    size_t used = 0;
    onr_carve_at(&used, (size_t)a->numel * es);
    p->off_b = onr_carve_at(&used, (size_t)b->numel * es);
    p->c_stride = onr_thread_stride(QMM_ROWS * (size_t)g->N * sizeof(int32_t));
    p->off_c = qlinear && !f8 ? onr_carve_at(&used, (size_t)(ctx->nthreads > 0 ? ctx->nthreads : 1) *
                                                 p->c_stride)
                       : ONR_NO_SCRATCH;
    *scratch = used;
    return ONR_OK;
}

static int mmi_reshape(onr_kctx *ctx, size_t *scratch)
{
    qmm_params *p = ctx->params;
    int st;
    if (ctx->n_in < 2 || ctx->n_in > 4 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 2 to 4 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    if ((st = qmm_prepare(ctx, p, 0, 2, 1, 3, scratch, 0, 0))) return st;
    return onr_set_out(ctx, 0, ONR_INT32, p->g.orank, p->g.odims);
}

static int mmi_run(const onr_kctx *ctx)
{
    const qmm_params *p = ctx->params;
    const qmm_geom *g = &p->g;
    int16_t *aw = ctx->scratch, *bw = onr_scratch_at(ctx, p->off_b);
    qmm_widen(g, ctx->in[0], ctx->n_in > 2 ? ctx->in[2] : NULL, ctx->in[1],
              ctx->n_in > 3 ? ctx->in[3] : NULL, aw, bw);
    int32_t *y = ctx->out[0]->data;
    qmm_fn kern = qmm_pick();
    int64_t mb = (g->M + QMM_ROWS - 1) / QMM_ROWS, blocks = g->obatch * mb;
    int64_t work = g->obatch * g->M * g->K * g->N;
    int nt = work > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t bl = 0; bl < blocks; bl++) {
        int64_t ob = bl / mb, m = (bl % mb) * QMM_ROWS, ia, ib;
        int nr = (int)(g->M - m < QMM_ROWS ? g->M - m : QMM_ROWS);
        qmm_batch(g, ob, &ia, &ib);
        kern(aw + (ia * g->M + m) * g->K, g->K, nr, bw + ib * g->K * g->N, g->N, g->K, g->N,
                 y + (ob * g->M + m) * g->N, g->N);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_MatMulInteger = {.reshape = mmi_reshape, .run = mmi_run,
                                            .params_size = sizeof(qmm_params), .types = T_Q8};

/* ---- QLinearMatMul ------------------------------------------------------------------ */

/* inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point */
static int qlmm_reshape(onr_kctx *ctx, size_t *scratch)
{
    qmm_params *p = ctx->params;
    qmm_geom *g = &p->g;
    int st;
    if (ctx->n_in != 8 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 8 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    uint32_t stypes = ctx->opset >= 21 ? T_SCALE21 : ONR_T(ONR_FLOAT);
    static const int scales[3] = {1, 4, 6};
    for (int i = 0; i < 3; i++)
        if ((st = onr_check_input(ctx, scales[i], stypes))) return st;
    /* 21 adds the float8 types to a, b and y (each with its zero point) */
    uint32_t qtypes = ctx->opset >= 21 ? T_Q8 | ONR_TYPES_F8 : T_Q8;
    if ((st = onr_check_input(ctx, 7, qtypes)) || (st = onr_check_input(ctx, 2, qtypes)) ||
        (st = onr_check_input(ctx, 5, qtypes)) || (st = onr_check_input(ctx, 0, qtypes)) ||
        (st = onr_check_input(ctx, 3, qtypes)))
        return st;
    p->f8 = ((ONR_T(ctx->in[0]->dtype) | ONR_T(ctx->in[3]->dtype) | ONR_T(ctx->in[7]->dtype)) &
             ONR_TYPES_F8) != 0;
    p->sdt = ctx->in[1]->dtype;
    if (ctx->in[4]->dtype != p->sdt || ctx->in[6]->dtype != p->sdt)
        return onr_seterr(ctx->err, ONR_E_MODEL, "a_scale, b_scale and y_scale differ in type");
    if ((st = qmm_prepare(ctx, p, 0, 2, 3, 5, scratch, 1, p->f8))) return st;
    const onr_tensor *a = ctx->in[0], *b = ctx->in[3];
    int nba = a->rank > 2 ? a->rank - 2 : 0, nbb = b->rank > 2 ? b->rank - 2 : 0;
    if ((st = qp_kind(ctx->err, "a_scale", ctx->in[1], a->dims, nba, g->M, 0, &g->sa)) ||
        (st = qp_kind(ctx->err, "b_scale", ctx->in[4], b->dims, nbb, g->N, 1, &g->sb)))
        return st;
    if (ctx->in[6]->numel != 1 || ctx->in[7]->numel != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "y_scale and y_zero_point must be scalars");
    return onr_set_out(ctx, 0, ctx->in[7]->dtype, g->orank, g->odims);
}

/* Element i of a quantized tensor (int8/uint8/float8) as its value. */
static inline double qv_at(const onr_tensor *t, int64_t i)
{
    if (ONR_T(t->dtype) & ONR_TYPES_F8) return onr_lowp_to_f64(t->dtype, ((const uint8_t *)t->data)[i]);
    return q_at(t, i);
}

/* QLinearMatMul-21 with a float8 a, b or y: the same formula in doubles.
 * A' = a - a_zero_point and B' likewise as values (exact: float8 values and
 * their differences fit a double), C = sum_k A'B' in k order per output
 * element (one thread each: the result does not depend on the thread
 * count), then y = C * (a_scale * b_scale / y_scale) (the multiplier in the
 * scales' type, as the integer path) + y_zero_point: an integer y rounds
 * half to even and saturates as the integer path does; a float8 y takes
 * the nearest value, ties to even, saturating at the type's largest finite
 * value (QuantizeLinear's default for float8). */
static int qlmm_run_f8(const onr_kctx *ctx)
{
    const qmm_params *p = ctx->params;
    const qmm_geom *g = &p->g;
    const onr_tensor *a = ctx->in[0], *za = ctx->in[2], *b = ctx->in[3], *zb = ctx->in[5];
    const onr_tensor *as = ctx->in[1], *bs = ctx->in[4];
    double *aw = ctx->scratch, *bw = onr_scratch_at(ctx, p->off_b);
    int64_t MK = g->M * g->K, KN = g->K * g->N;
    for (int64_t bt = 0; bt < g->abatch; bt++)
        for (int64_t m = 0; m < g->M; m++) {
            double z = za ? qv_at(za, qp_index(g->za, bt, m, g->M)) : 0;
            for (int64_t k = 0; k < g->K; k++) aw[bt * MK + m * g->K + k] = qv_at(a, bt * MK + m * g->K + k) - z;
        }
    for (int64_t bt = 0; bt < g->bbatch; bt++)
        for (int64_t k = 0; k < g->K; k++)
            for (int64_t n = 0; n < g->N; n++) {
                double z = zb ? qv_at(zb, qp_index(g->zb, bt, n, g->N)) : 0;
                bw[bt * KN + k * g->N + n] = qv_at(b, bt * KN + k * g->N + n) - z;
            }
    onr_dtype S = p->sdt;
    onr_tensor *y = ctx->out[0];
    int yf8 = (ONR_T(y->dtype) & ONR_TYPES_F8) != 0;
    double ys = onr_get_f64(ctx->in[6], 0), yz = qv_at(ctx->in[7], 0), lo = 0, hi = 0;
    if (!yf8) onr_q_range(y->dtype, &lo, &hi);
    int64_t rows = g->obatch * g->M;
    int64_t work = rows * g->K * g->N;
    int nt = work > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        int64_t ob = row / g->M, m = row % g->M, ia, ib;
        qmm_batch(g, ob, &ia, &ib);
        const double *ar = aw + ia * MK + m * g->K, *bm = bw + ib * KN;
        double sa = onr_get_f64(as, qp_index(g->sa, ia, m, g->M));
        for (int64_t n = 0; n < g->N; n++) {
            double c = 0;
            for (int64_t k = 0; k < g->K; k++) c += ar[k] * bm[k * g->N + n];
            double sb = onr_get_f64(bs, qp_index(g->sb, ib, n, g->N));
            double mult = onr_round_to(S, onr_round_to(S, sa * sb) / ys);
            uint8_t *o = (uint8_t *)y->data + row * g->N + n;
            if (yf8) *o = onr_f64_to_lowp(y->dtype, c * mult + yz, 1);
            else if (y->dtype == ONR_UINT8) *o = (uint8_t)onr_q_int(c * mult, yz, lo, hi);
            else *(int8_t *)o = (int8_t)onr_q_int(c * mult, yz, lo, hi);
        }
    }
    return ONR_OK;
}

static int qlmm_run(const onr_kctx *ctx)
{
    const qmm_params *p = ctx->params;
    if (p->f8) return qlmm_run_f8(ctx);
    const qmm_geom *g = &p->g;
    const onr_tensor *as = ctx->in[1], *bs = ctx->in[4];
    int16_t *aw = ctx->scratch, *bw = onr_scratch_at(ctx, p->off_b);
    int32_t *cbuf = onr_scratch_at(ctx, p->off_c);
    qmm_widen(g, ctx->in[0], ctx->in[2], ctx->in[3], ctx->in[5], aw, bw);
    onr_dtype S = p->sdt;
    double ys = onr_get_f64(ctx->in[6], 0), yz = q_at(ctx->in[7], 0), lo, hi;
    onr_q_range(ctx->out[0]->dtype, &lo, &hi);
    onr_tensor *y = ctx->out[0];
    qmm_fn kern = qmm_pick();
    int64_t mb = (g->M + QMM_ROWS - 1) / QMM_ROWS, blocks = g->obatch * mb;
    int64_t work = g->obatch * g->M * g->K * g->N;
    int nt = work > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t bl = 0; bl < blocks; bl++) {
        int32_t *c = (int32_t *)((char *)cbuf + (size_t)omp_get_thread_num() * p->c_stride);
        int64_t ob = bl / mb, m0 = (bl % mb) * QMM_ROWS, ia, ib;
        int nr = (int)(g->M - m0 < QMM_ROWS ? g->M - m0 : QMM_ROWS);
        qmm_batch(g, ob, &ia, &ib);
        kern(aw + (ia * g->M + m0) * g->K, g->K, nr, bw + ib * g->K * g->N, g->N, g->K, g->N,
                 c, g->N);
        for (int r = 0; r < nr; r++) {
            int64_t m = m0 + r;
            double sa = onr_get_f64(as, qp_index(g->sa, ia, m, g->M));
            for (int64_t n = 0; n < g->N; n++) {
                double sb = onr_get_f64(bs, qp_index(g->sb, ib, n, g->N));
                double mult = onr_round_to(S, onr_round_to(S, sa * sb) / ys);
                double v = onr_q_int((double)c[r * g->N + n] * mult, yz, lo, hi);
                int64_t o = (ob * g->M + m) * g->N + n;
                if (y->dtype == ONR_UINT8) ((uint8_t *)y->data)[o] = (uint8_t)v;
                else ((int8_t *)y->data)[o] = (int8_t)v;
            }
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_QLinearMatMul = {.reshape = qlmm_reshape, .run = qlmm_run,
                                            .params_size = sizeof(qmm_params),
                                            .types = T_Q8 | ONR_TYPES_F8};

/* ---- ConvInteger and QLinearConv -------------------------------------------------- */

typedef struct qconv_params {
    int64_t group;
    onr_sp_list kernel_shape;
    onr_window_attrs wa;
    /* reshape */
    int64_t N, C, M, Cg, Mg, K, IN, OUT;
    onr_spatial sp;
    int wz_per_channel, ws_per_channel;
    int64_t band;     /* output rows (of out[2] positions) per im2col band */
    int64_t nthreads; /* run threads the column buffers were sized for */
    size_t off_w, off_col;
    size_t col_stride; /* bytes from one thread's band to the next's */
} qconv_params;

/* Upper bound of one thread's im2col band in scratch. */
#define QCONV_COL_BYTES ((int64_t)2 << 20)

static int qconv_create(onr_create_ctx *c, void *params)
{
    qconv_params *p = params;
    int st;
    const onr_attr *a = onr_node_attr(c->node, "group");
    if (a && a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'group' must be an int");
    p->group = a ? a->i : 1;
    if (p->group < 1 || p->group > ONR_SP_ATTR_MAX)
        return onr_seterr(c->err, ONR_E_MODEL, "group %lld must be >= 1", (long long)p->group);
    if ((st = onr_sp_list_attr(c, "kernel_shape", ONR_SP_MAX, 1, &p->kernel_shape)) ||
        (st = onr_window_attrs_read(c, &p->wa)))
        return st;
    return ONR_OK;
}

/* Geometry from X (input ix) and W (input iw); zero point of W at izw. */
static int qconv_geom(onr_kctx *ctx, qconv_params *p, int ix, int iw, int izw, size_t *scratch)
{
    int st;
    char s1[256], s2[256];
    if ((st = onr_check_input(ctx, ix, T_Q8)) || (st = onr_check_input(ctx, iw, T_Q8))) return st;
    const onr_tensor *x = ctx->in[ix], *w = ctx->in[iw];
    if (x->rank < 3 || x->rank > 2 + ONR_SP_MAX || w->rank != x->rank)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "X %s and W %s must have the same rank, 3 to %d",
                          onr_fmt_dims(s1, sizeof s1, x->dims, x->rank),
                          onr_fmt_dims(s2, sizeof s2, w->dims, w->rank), 2 + ONR_SP_MAX);
    int nsp = x->rank - 2;
    int64_t kernel[ONR_SP_MAX], kattr[ONR_SP_MAX];
    if ((st = onr_sp_list_get(ctx->err, &p->kernel_shape, nsp, 1, kattr))) return st;
    for (int i = 0; i < nsp; i++) {
        kernel[i] = w->dims[2 + i];
        if (kernel[i] < 1 || (p->kernel_shape.present && kattr[i] != kernel[i]))
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "kernel dim %d of W %s is invalid or disagrees with kernel_shape", i,
                              onr_fmt_dims(s1, sizeof s1, w->dims, w->rank));
    }
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->M = w->dims[0];
    if (p->C % p->group || p->C / p->group != w->dims[1] || p->M % p->group)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "X %s and W %s do not fit group %lld (W dim 1 must be C/group, dim 0 "
                          "a multiple of group)",
                          onr_fmt_dims(s1, sizeof s1, x->dims, x->rank),
                          onr_fmt_dims(s2, sizeof s2, w->dims, w->rank), (long long)p->group);
    p->Cg = p->C / p->group;
    p->Mg = p->M / p->group;
    if ((st = onr_spatial_window(ctx->err, &p->wa, nsp, x->dims + 2, kernel, 0, &p->sp)))
        return st;
    p->K = onr_sp_numel(p->sp.k);
    p->IN = onr_sp_numel(p->sp.in);
    p->OUT = onr_sp_numel(p->sp.out);
    const onr_tensor *wz = izw < ctx->n_in ? ctx->in[izw] : NULL;
    if (wz && wz->dtype != w->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "W's zero point (%s) must have W's type (%s)",
                          onr_dtype_name(wz->dtype), onr_dtype_name(w->dtype));
    p->wz_per_channel = wz && wz->numel != 1;
    if (p->wz_per_channel && (wz->rank != 1 || wz->dims[0] != p->M))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "W's zero point %s must have one element or one per output channel (%lld)",
                          onr_fmt_dims(s1, sizeof s1, wz->dims, wz->rank), (long long)p->M);
    /* im2col bands: rows of Cg*K taps x (band output rows x out[2]) columns */
    int64_t rows = p->sp.out[0] * p->sp.out[1], row_bytes = p->Cg * p->K * p->sp.out[2] * 2;
    p->band = row_bytes > 0 ? QCONV_COL_BYTES / row_bytes : rows;
    if (p->band < 1) p->band = 1;
    if (p->band > rows) p->band = rows;
    p->nthreads = ctx->nthreads > 0 ? ctx->nthreads : 1;
    size_t used = 0;
    onr_carve_at(&used, (size_t)x->numel * sizeof(int16_t));
    p->off_w = onr_carve_at(&used, (size_t)w->numel * sizeof(int16_t));
    p->col_stride = onr_thread_stride((size_t)(p->band * row_bytes));
    p->off_col = onr_carve_at(&used, (size_t)p->nthreads * p->col_stride);
    *scratch = used;
    return ONR_OK;
}

static int qconv_set_out(onr_kctx *ctx, const qconv_params *p, onr_dtype dt)
{
    int nsp = p->sp.nsp;
    int64_t dims[2 + ONR_SP_MAX] = {p->N, p->M};
    for (int i = 0; i < nsp; i++) dims[2 + i] = p->sp.out[3 - nsp + i];
    return onr_set_out(ctx, 0, dt, 2 + nsp, dims);
}

/* X' = X - xz, W' = W - wz (per output channel or per tensor), as int16. */
static void qconv_widen(const qconv_params *p, const onr_tensor *x, const onr_tensor *xz,
                        const onr_tensor *w, const onr_tensor *wz, int16_t *xw, int16_t *ww)
{
    int32_t z = xz ? q_at(xz, 0) : 0;
    for (int64_t i = 0; i < x->numel; i++) xw[i] = (int16_t)(q_at(x, i) - z);
    int64_t per = p->Cg * p->K;
    for (int64_t m = 0; m < p->M; m++) {
        int32_t zm = wz ? q_at(wz, p->wz_per_channel ? m : 0) : 0;
        for (int64_t j = 0; j < per; j++) ww[m * per + j] = (int16_t)(q_at(w, m * per + j) - zm);
    }
}

/* The im2col columns of output rows [r0, r1) (row = (od, oh)) of one image
 * and group: col[j, (r - r0) * out[2] + ow] for tap j = (c, kd, kh, kw), 0
 * where the window reads padding (x - x_zero_point there is 0). */
static void qconv_im2col(const qconv_params *p, const int16_t *xg, int64_t r0, int64_t r1,
                         int16_t *col)
{
    const onr_spatial *g = &p->sp;
    int64_t ncols = (r1 - r0) * g->out[2];
    int16_t *dst = col;
    for (int64_t c = 0; c < p->Cg; c++)
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++, dst += ncols) {
                    const int16_t *xc = xg + c * p->IN;
                    int16_t *o = dst;
                    for (int64_t r = r0; r < r1; r++) {
                        int64_t od = r / g->out[1], oh = r % g->out[1];
                        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                        int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                        int inside = id >= 0 && id < g->in[0] && ih >= 0 && ih < g->in[1];
                        const int16_t *xr = xc + (id * g->in[1] + ih) * g->in[2];
                        for (int64_t ow = 0; ow < g->out[2]; ow++) {
                            int64_t iw = ow * g->s[2] - g->pb[2] + kw * g->d[2];
                            *o++ = inside && iw >= 0 && iw < g->in[2] ? xr[iw] : 0;
                        }
                    }
                }
}

/* All planes into the int32 y (N x M x OUT): for each (image, group, band
 * of output rows), one thread gathers the band's columns into its own
 * buffer and multiplies the group's W' rows with them (the integer GEMM
 * kernel), writing each output element once. */
static void qconv_all(const onr_kctx *ctx, const qconv_params *p, const int16_t *xw,
                      const int16_t *ww, int32_t *y)
{
    const onr_spatial *g = &p->sp;
    int64_t rows = g->out[0] * g->out[1], nb = (rows + p->band - 1) / p->band;
    int64_t tasks = p->N * p->group * nb, CK = p->Cg * p->K;
    int64_t work = p->N * p->M * p->OUT * CK;
    int nt = work > ONR_PAR_MIN && ctx->nthreads > 1 ? ctx->nthreads : 1;
    if (nt > p->nthreads) nt = (int)p->nthreads;
    int16_t *cols = onr_scratch_at(ctx, p->off_col);
    qmm_fn kern = qmm_pick();
#pragma omp parallel for num_threads(onr_team(nt)) if (nt > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t n = t / (p->group * nb), gi = (t / nb) % p->group, b = t % nb;
        int64_t r0 = b * p->band, r1 = r0 + p->band < rows ? r0 + p->band : rows;
        int64_t ncols = (r1 - r0) * g->out[2];
        int16_t *col = (int16_t *)((char *)cols + (size_t)omp_get_thread_num() * p->col_stride);
        qconv_im2col(p, xw + (n * p->C + gi * p->Cg) * p->IN, r0, r1, col);
        for (int64_t m = gi * p->Mg; m < (gi + 1) * p->Mg; m += QMM_ROWS) {
            int nr = (int)((gi + 1) * p->Mg - m < QMM_ROWS ? (gi + 1) * p->Mg - m : QMM_ROWS);
            kern(ww + m * CK, CK, nr, col, ncols, CK, ncols,
                 y + (n * p->M + m) * p->OUT + r0 * g->out[2], p->OUT);
        }
    }
}

/* ConvInteger: x, w, x_zero_point, w_zero_point -> int32 */
static int convi_reshape(onr_kctx *ctx, size_t *scratch)
{
    qconv_params *p = ctx->params;
    int st;
    if (ctx->n_in < 2 || ctx->n_in > 4 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 2 to 4 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    if ((st = qconv_geom(ctx, p, 0, 1, 3, scratch))) return st;
    const onr_tensor *xz = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (xz && (xz->dtype != ctx->in[0]->dtype || xz->numel != 1))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "x_zero_point must be one element of X's type (%s), it is %s of %lld",
                          onr_dtype_name(ctx->in[0]->dtype), onr_dtype_name(xz->dtype),
                          (long long)xz->numel);
    return qconv_set_out(ctx, p, ONR_INT32);
}

static int convi_run(const onr_kctx *ctx)
{
    const qconv_params *p = ctx->params;
    int16_t *xw = ctx->scratch, *ww = onr_scratch_at(ctx, p->off_w);
    qconv_widen(p, ctx->in[0], ctx->n_in > 2 ? ctx->in[2] : NULL, ctx->in[1],
                ctx->n_in > 3 ? ctx->in[3] : NULL, xw, ww);
    qconv_all(ctx, p, xw, ww, ctx->out[0]->data);
    return ONR_OK;
}

const onr_op_impl onr_impl_ConvInteger = {.create = qconv_create, .reshape = convi_reshape,
                                          .run = convi_run, .params_size = sizeof(qconv_params),
                                          .types = T_Q8};

/* QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
 * y_zero_point, B (int32, optional). The int32 sums go to scratch, then are
 * requantized into y. */
typedef struct qlconv_params {
    qconv_params c;
    size_t off_acc;
} qlconv_params;

static int qlconv_reshape(onr_kctx *ctx, size_t *scratch)
{
    qlconv_params *q = ctx->params;
    qconv_params *p = &q->c;
    int st;
    char s1[256];
    if (ctx->n_in < 8 || ctx->n_in > 9 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "expects 8 or 9 inputs and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    static const int scales[3] = {1, 4, 6};
    for (int i = 0; i < 3; i++)
        if ((st = onr_check_input(ctx, scales[i], ONR_T(ONR_FLOAT)))) return st;
    if ((st = onr_check_input(ctx, 2, T_Q8)) || (st = onr_check_input(ctx, 5, T_Q8)) ||
        (st = onr_check_input(ctx, 7, T_Q8)))
        return st;
    if ((st = qconv_geom(ctx, p, 0, 3, 5, scratch))) return st;
    if (ctx->in[2]->dtype != ctx->in[0]->dtype || ctx->in[2]->numel != 1 ||
        ctx->in[1]->numel != 1 || ctx->in[6]->numel != 1 || ctx->in[7]->numel != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "x_scale, x_zero_point (of X's type), y_scale and y_zero_point must be "
                          "single elements");
    const onr_tensor *ws = ctx->in[4];
    p->ws_per_channel = ws->numel != 1;
    if (p->ws_per_channel && (ws->rank != 1 || ws->dims[0] != p->M))
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "w_scale %s must have one element or one per output channel (%lld)",
                          onr_fmt_dims(s1, sizeof s1, ws->dims, ws->rank), (long long)p->M);
    const onr_tensor *b = ctx->n_in > 8 ? ctx->in[8] : NULL;
    if (b && (b->dtype != ONR_INT32 || b->rank != 1 || b->dims[0] != p->M))
        return onr_seterr(ctx->err, ONR_E_MODEL, "B must be int32 of shape [%lld], it is %s %s",
                          (long long)p->M, onr_dtype_name(b->dtype),
                          onr_fmt_dims(s1, sizeof s1, b->dims, b->rank));
    q->off_acc = onr_carve_at(scratch, (size_t)(p->N * p->M * p->OUT) * sizeof(int32_t));
    return qconv_set_out(ctx, p, ctx->in[7]->dtype);
}

static int qlconv_run(const onr_kctx *ctx)
{
    const qlconv_params *q = ctx->params;
    const qconv_params *p = &q->c;
    int16_t *xw = ctx->scratch, *ww = onr_scratch_at(ctx, p->off_w);
    int32_t *acc = onr_scratch_at(ctx, q->off_acc);
    qconv_widen(p, ctx->in[0], ctx->in[2], ctx->in[3], ctx->in[5], xw, ww);
    qconv_all(ctx, p, xw, ww, acc);
    const onr_tensor *b = ctx->n_in > 8 ? ctx->in[8] : NULL;
    onr_tensor *y = ctx->out[0];
    float xs = *(const float *)ctx->in[1]->data, ys = *(const float *)ctx->in[6]->data;
    const float *ws = ctx->in[4]->data;
    double yz = q_at(ctx->in[7], 0), lo, hi;
    onr_q_range(y->dtype, &lo, &hi);
    int64_t planes = p->N * p->M;
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t m = pl % p->M;
        float mult = xs * ws[p->ws_per_channel ? m : 0] / ys;
        uint32_t bias = b ? (uint32_t)((const int32_t *)b->data)[m] : 0;
        for (int64_t o = pl * p->OUT; o < (pl + 1) * p->OUT; o++) {
            double v = onr_q_int((double)(int32_t)((uint32_t)acc[o] + bias) * mult, yz, lo, hi);
            if (y->dtype == ONR_UINT8) ((uint8_t *)y->data)[o] = (uint8_t)v;
            else ((int8_t *)y->data)[o] = (int8_t)v;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_QLinearConv = {.create = qconv_create, .reshape = qlconv_reshape,
                                          .run = qlconv_run, .params_size = sizeof(qlconv_params),
                                          .types = T_Q8};
