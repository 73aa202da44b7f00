/*
 * matmul.c - MatMul (numpy semantics) and Gemm.
 *
 * float32 goes through the SGEMM core (gemm/gemm.h): MatMul folds a batch
 * into M when B is shared ([B,S,K] x [K,N] is one (B*S) x K GEMM), uses the
 * strided batch call when each operand is either whole or broadcast, and one
 * GEMM per matrix otherwise. float16/bfloat16 are widened into float32 work
 * buffers in scratch and rounded back. double and the integer types take a
 * plain loop; integers wrap (two's complement), as in numpy.
 *
 * A constant 2-D B (weights; float32, float16 or bfloat16) is converted to
 * float32 and packed once, in create, keyed on B alone (Gemm applies transB
 * there), and its original is consumed: whatever shapes the activations take
 * later, nothing is packed again. A constant 16-bit B of another rank is
 * widened to float32 once instead. Gemm's constant C is kept as float32
 * times beta, ready for the GEMM epilogue's bias. reshape computes the
 * geometry and the scratch layout once per input shapes; run only computes.
 *
 * FusedMatMul (domain org.onnxrun, opset 1; made by the planner's
 * fuse_gemm pass, never by exporters) is MatMul with a GEMM epilogue:
 *
 *     Y = act(A x op(B) + bias)
 *
 *   inputs   A     [..., M, K]  float, float16 or bfloat16
 *            B     [..., K, N] (trans_b = 0) or [..., N, K] (trans_b = 1),
 *                  batch dims broadcast with A's as in MatMul (numpy); a
 *                  1-D B is a column (trans_b must be 0), as in MatMul
 *            bias  optional, N elements, shape [N] or [1, ..., 1, N]: added
 *                  to every row (a per-column bias)
 *            R     optional residual of exactly Y's shape, added after the
 *                  activation: Y = act(A x op(B) + bias) + R
 *   output   Y     MatMul's shape and A's type
 *   attributes
 *            trans_b     int, default 0: B's last two dims are [N, K]
 *            activation  string, default "" (none): "Relu", "Gelu",
 *                        "Sigmoid", "Silu" (v * sigmoid(v)) or "Clip"
 *            approximate string, Gelu only: "none" (erf, default) or "tanh"
 *            clip_min, clip_max  floats, Clip only (default: the float
 *                        range)
 *
 * It is MatMul's code with an epilogue: the same create (B packed with
 * trans_b applied), geometry, scratch layout and GEMM calls; MatMul runs
 * it with no epilogue. 16-bit types add the bias and the activation in
 * float32 before rounding once (the unfused graph rounds after each op).
 */
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/linalg.h"

/* Types of MatMul and Gemm by opset: integers from 9, bfloat16 from 13. */
static uint32_t mm_types(int64_t opset)
{
    uint32_t t = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16);
    if (opset >= 9)
        t |= ONR_T(ONR_INT32) | ONR_T(ONR_INT64) | ONR_T(ONR_UINT32) | ONR_T(ONR_UINT64);
    if (opset >= 13) t |= ONR_T(ONR_BFLOAT16);
    return t;
}

static int check_same_type(onr_kctx *ctx, int i)
{
    if (ctx->in[i]->dtype != ctx->in[0]->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s but input 0 is %s", i,
                          onr_dtype_name(ctx->in[i]->dtype), onr_dtype_name(ctx->in[0]->dtype));
    return ONR_OK;
}

/* The types the SGEMM path serves (16-bit floats through float32). */
static int f32_path(onr_dtype dt) { return dt == ONR_FLOAT || onr_is_half(dt); }

/* A constant 2-D B packed for onr_sgemm_packed, for the K x N op(B) it was
 * packed at. */
typedef struct packed_b {
    int64_t k, n;
    void *data; /* NULL: B is not packed */
} packed_b;

/* The workspace flags of products on pb (gemm.h) */
static int pb_ws_flags(const packed_b *pb)
{
    return pb->data && onr_sgemm_packed_is_amx(pb->data) ? ONR_PACK_AMX : 0;
}

/* create: pack constant 2-D B (float32, float16 or bfloat16) as a k x n
 * op(B); *packed says whether it did. */
static int pack_const_b(onr_create_ctx *c, int trans_b, packed_b *pb, int *packed)
{
    const onr_tensor *b = onr_create_const(c, 1);
    *packed = 0;
    if (!b || b->rank != 2 || !f32_path(b->dtype)) return ONR_OK;
    /* float32 weights packed straight from the mapping when still lazy
     * (ONR_OP_LAZY_B: the packing reads them with memcpy and unaligned
     * loads) */
    const float *src = b->data ? b->data : b->dtype == ONR_FLOAT ? b->lazy : NULL;
    if (b->numel && !src) return ONR_OK;
    int64_t k = b->dims[trans_b ? 1 : 0], n = b->dims[trans_b ? 0 : 1];
    float *wide = NULL;
    if (b->dtype != ONR_FLOAT) {
        if (!(wide = onr_la_const_f32(c, b, 1.f))) return ONR_E_NOMEM;
        src = wide;
    }
    /* products of enough rows on these weights run on AMX where the CPU
     * has it (gemm.h) */
    size_t bytes = onr_sgemm_pack_b_size_ex((size_t)k, (size_t)n, ONR_PACK_AMX);
    int st = onr_create_hold(c, "packed weights", bytes);
    if (st) {
        free(wide);
        return st;
    }
    if (!(pb->data = onr_alloc_aligned(bytes))) {
        free(wide);
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory packing %lld x %lld weights",
                          (long long)k, (long long)n);
    }
    pb->k = k;
    pb->n = n;
    onr_sgemm_pack_b_ex(trans_b, (size_t)k, (size_t)n, src, (size_t)b->dims[1], pb->data,
                        ONR_PACK_AMX);
    free(wide);
    *packed = 1;
    return ONR_OK;
}

/* reshape: the packed B must match the geometry (it always does: a
 * constant's shape never changes). */
static int check_packed(onr_kctx *ctx, const packed_b *pb, int64_t k, int64_t n, const char *op)
{
    if (pb->data && (pb->k != k || pb->n != n))
        return onr_seterr(ctx->err, ONR_E_RUNTIME,
                          "%s: B was packed as %lld x %lld but the product needs %lld x %lld", op,
                          (long long)pb->k, (long long)pb->n, (long long)k, (long long)n);
    return ONR_OK;
}

/* The thread count run may use: at most the one scratch was sized for. */
static int run_threads(const onr_kctx *ctx, int sized_for)
{
    int nt = ctx->nthreads < sized_for ? ctx->nthreads : sized_for;
    return nt > 0 ? nt : 1;
}

/* ======================================================================
 * MatMul
 * ==================================================================== */

typedef struct mm_geom {
    int64_t M, N, K;
    int tb;                          /* B's matrices are [N, K] (FusedMatMul) */
    int64_t batch, a_batch, b_batch; /* matrices in Y, A, B */
    int brank;                       /* rank of the broadcast batch dims */
    int64_t bdims[ONR_MAX_RANK];
    int64_t sa[ONR_MAX_RANK], sb[ONR_MAX_RANK]; /* batch strides, in matrices */
    int orank;
    int64_t odims[ONR_MAX_RANK];
    int mode; /* MM_FOLD, MM_BATCH or MM_LOOP: how the float path runs it */
} mm_geom;

/* How the float path runs a geometry: the three GEMM shapes of mm_f32. */
enum { MM_FOLD, MM_BATCH, MM_LOOP };

static int64_t prod(const int64_t *d, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= d[i];
    return p;
}

static int mm_mode(const mm_geom *g)
{
    if (g->b_batch == 1) return MM_FOLD; /* then A's batch is Y's batch */
    int ua = g->a_batch == g->batch || g->a_batch == 1;
    int ub = g->b_batch == g->batch || g->b_batch == 1;
    return ua && ub ? MM_BATCH : MM_LOOP;
}

static int mm_geom_init(onr_kctx *ctx, mm_geom *g, int tb)
{
    const onr_tensor *a = ctx->in[0], *b = ctx->in[1];
    char s1[256], s2[256];
    if (a->rank < 1 || b->rank < 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "MatMul needs operands of rank >= 1, got %s and %s",
                          onr_fmt_dims(s1, sizeof s1, a->dims, a->rank),
                          onr_fmt_dims(s2, sizeof s2, b->dims, b->rank));
    /* numpy: a 1-D A is a row [1,K], a 1-D B a column [K,1]; the added
     * dim is dropped from the result */
    int64_t ad[ONR_MAX_RANK], bd[ONR_MAX_RANK];
    int ar = a->rank, br = b->rank;
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ar);
    memcpy(bd, b->dims, sizeof(int64_t) * (size_t)br);
    if (ar == 1) {
        ad[1] = ad[0];
        ad[0] = 1;
        ar = 2;
    }
    if (br == 1) {
        if (tb)
            return onr_seterr(ctx->err, ONR_E_MODEL, "FusedMatMul: trans_b needs B of rank >= 2");
        bd[1] = 1;
        br = 2;
    }
    g->tb = tb;
    if (tb) { /* op(B) = B^T: geometry in terms of [K, N] */
        int64_t t = bd[br - 1];
        bd[br - 1] = bd[br - 2];
        bd[br - 2] = t;
    }
    g->M = ad[ar - 2];
    g->K = ad[ar - 1];
    g->N = bd[br - 1];
    if (bd[br - 2] != g->K)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "MatMul inner dims differ: A %s has K = %lld, B %s has K = %lld",
                          onr_fmt_dims(s1, sizeof s1, a->dims, a->rank), (long long)g->K,
                          onr_fmt_dims(s2, sizeof s2, b->dims, b->rank), (long long)bd[br - 2]);
    int abr = ar - 2, bbr = br - 2;
    g->brank = abr > bbr ? abr : bbr;
    for (int d = 0; d < g->brank; d++) {
        int ia = d - (g->brank - abr), ib = d - (g->brank - bbr);
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "MatMul batch dims of %s and %s cannot be broadcast (%lld vs %lld)",
                              onr_fmt_dims(s1, sizeof s1, a->dims, a->rank),
                              onr_fmt_dims(s2, sizeof s2, b->dims, b->rank), (long long)da,
                              (long long)db);
        g->bdims[d] = da == 1 ? db : da;
    }
    onr_bcast_strides(ad, abr, g->bdims, g->brank, g->sa);
    onr_bcast_strides(bd, bbr, g->bdims, g->brank, g->sb);
    g->batch = prod(g->bdims, g->brank);
    g->a_batch = prod(ad, abr);
    g->b_batch = prod(bd, bbr);
    g->orank = 0;
    for (int d = 0; d < g->brank; d++) g->odims[g->orank++] = g->bdims[d];
    if (a->rank > 1) g->odims[g->orank++] = g->M;
    if (b->rank > 1) g->odims[g->orank++] = g->N;
    g->mode = mm_mode(g);
    return ONR_OK;
}

/* Element offsets of A's and B's matrices for output matrix p. */
static void mm_offsets(const mm_geom *g, int64_t p, int64_t *oa, int64_t *ob)
{
    int64_t ia = 0, ib = 0;
    for (int d = g->brank - 1; d >= 0; d--) {
        int64_t i = p % g->bdims[d];
        p /= g->bdims[d];
        ia += i * g->sa[d];
        ib += i * g->sb[d];
    }
    *oa = ia * g->M * g->K;
    *ob = ib * g->K * g->N;
}

static size_t mm_ws_bytes(const mm_geom *g, int nt, int flags)
{
    size_t m = (size_t)g->M, n = (size_t)g->N, k = (size_t)g->K;
    switch (g->mode) {
    case MM_FOLD: return onr_sgemm_workspace_size_ex((size_t)g->batch * m, n, k, nt, flags);
    case MM_BATCH: return onr_sgemm_batch_workspace_size(m, n, k, (size_t)g->batch, nt);
    default: return onr_sgemm_workspace_size(m, n, k, nt);
    }
}

/* Y = A op(B) [+ epilogue ep, which may be NULL]; op(B) = B^T when g->tb. */
static void mm_f32(const mm_geom *g, const float *a, const float *b, const void *packed,
                   float *y, const onr_gemm_epilogue *ep, void *ws, int nt)
{
    size_t M = (size_t)g->M, N = (size_t)g->N, K = (size_t)g->K, batch = (size_t)g->batch;
    size_t ldb = g->tb ? K : N;
    int tb = g->tb;
    if (batch == 0 || M == 0 || N == 0) return;
    switch (g->mode) {
    case MM_FOLD:
        if (packed)
            onr_sgemm_packed(0, batch * M, N, K, 1.f, a, K, packed, 0.f, y, N, ep, ws, nt);
        else
            onr_sgemm(0, tb, batch * M, N, K, 1.f, a, K, b, ldb, 0.f, y, N, ep, ws, nt);
        break;
    case MM_BATCH: {
        onr_gemm_epilogue e2;
        if (ep && ep->residual) { /* one M x N residual per product */
            e2 = *ep;
            e2.residual_batch_stride = M * N;
            ep = &e2;
        }
        onr_sgemm_batch(0, tb, M, N, K, 1.f, a, K, g->a_batch == 1 ? 0 : M * K, b, ldb,
                        g->b_batch == 1 ? 0 : K * N, 0.f, y, N, M * N, batch, ep, ws, nt);
        break;
    }
    default:
        for (size_t p = 0; p < batch; p++) {
            int64_t oa, ob;
            onr_gemm_epilogue e2;
            const onr_gemm_epilogue *ep_p = ep;
            if (ep && ep->residual) {
                e2 = *ep;
                e2.residual = ep->residual + p * M * N;
                ep_p = &e2;
            }
            mm_offsets(g, (int64_t)p, &oa, &ob);
            onr_sgemm(0, tb, M, N, K, 1.f, a + oa, K, b + ob, ldb, 0.f, y + p * M * N, N, ep_p,
                      ws, nt);
        }
    }
}

/* Plain loops for double and integers. ACC is the accumulator: double, or
 * uint64_t for integers so sums wrap without undefined behaviour. */
#define MM_NAIVE(sfx, T, ACC)                                                                  \
    static void mm_naive_##sfx(const mm_geom *g, const void *av, const void *bv, void *yv,     \
                               int nt)                                                         \
    {                                                                                          \
        const T *a = av, *b = bv;                                                              \
        T *y = yv;                                                                             \
        int64_t M = g->M, N = g->N, K = g->K, rows = g->batch * g->M;                          \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (rows * N * K > ONR_PAR_MIN && nt > 1)") \
        for (int64_t r = 0; r < rows; r++) {                                                   \
            int64_t oa, ob;                                                                    \
            mm_offsets(g, r / M, &oa, &ob);                                                    \
            const T *ar = a + oa + (r % M) * K, *bm = b + ob;                                  \
            for (int64_t j = 0; j < N; j++) {                                                  \
                ACC acc = 0;                                                                   \
                for (int64_t k = 0; k < K; k++) acc += (ACC)ar[k] * (ACC)bm[k * N + j];        \
                y[r * N + j] = (T)acc;                                                         \
            }                                                                                  \
        }                                                                                      \
    }

MM_NAIVE(f64, double, double)
MM_NAIVE(i32, int32_t, uint64_t)
MM_NAIVE(i64, int64_t, uint64_t)
MM_NAIVE(u32, uint32_t, uint64_t)
MM_NAIVE(u64, uint64_t, uint64_t)

typedef void (*mm_naive_fn)(const mm_geom *, const void *, const void *, void *, int);

static const struct {
    onr_dtype dt;
    mm_naive_fn fn;
} mm_naive_table[] = {
    {ONR_DOUBLE, mm_naive_f64}, {ONR_INT32, mm_naive_i32},   {ONR_INT64, mm_naive_i64},
    {ONR_UINT32, mm_naive_u32}, {ONR_UINT64, mm_naive_u64},
};

static mm_naive_fn mm_naive_for(onr_dtype dt)
{
    for (size_t i = 0; i < sizeof mm_naive_table / sizeof mm_naive_table[0]; i++)
        if (mm_naive_table[i].dt == dt) return mm_naive_table[i].fn;
    return NULL;
}

/* MatMul's and FusedMatMul's params: constant B (and bias) prepared in
 * create, geometry and scratch layout from reshape. */
typedef struct mm_params {
    packed_b pb; /* constant 2-D B, packed */
    float *b32;  /* constant 16-bit B of another rank, widened once */
    mm_geom g;
    int nthreads; /* run threads the workspace was sized for */
    size_t scratch;
    /* scratch offsets: float32 A, B, Y (16-bit types), GEMM workspace,
     * float32 bias (FusedMatMul, 16-bit bias input) */
    size_t off_a, off_b, off_y, off_ws, off_bias, off_res;
    /* FusedMatMul only (zero for MatMul) */
    int fused, tb;
    onr_gemm_act act;
    float clip_min, clip_max;
    float *bias32; /* constant bias as float32 */
    int has_bias;  /* reshape: input 2 present */
    int has_res;   /* reshape: input 3 (residual) present */
} mm_params;

static void matmul_destroy(void *params)
{
    mm_params *p = params;
    free(p->pb.data);
    free(p->b32);
    free(p->bias32);
}

/* create of both ops: B (packed with p->tb applied, or widened) */
static int mm_create_b(onr_create_ctx *c, mm_params *p)
{
    int packed, st = pack_const_b(c, p->tb, &p->pb, &packed);
    if (st) return st;
    const onr_tensor *b = onr_create_const(c, 1);
    if (!packed && b && onr_is_half(b->dtype) && (b->data || !b->numel)) {
        /* only a 2-D B folds into one GEMM that packing serves; a 16-bit B
         * of another rank is still widened once here, never per run */
        if (!(p->b32 = onr_la_const_f32(c, b, 1.f))) return ONR_E_NOMEM;
        packed = 1;
    }
    if (packed) onr_create_consume(c, 1);
    return ONR_OK;
}

static int matmul_create(onr_create_ctx *c, void *params) { return mm_create_b(c, params); }

static int matmul_reshape(onr_kctx *ctx, size_t *scratch)
{
    mm_params *p = ctx->params;
    const char *op = p->fused ? "FusedMatMul" : "MatMul";
    int st, max_in = p->fused ? 4 : 2;
    if (ctx->n_in < 2 || ctx->n_in > max_in || !ctx->in[0] || !ctx->in[1])
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s takes %s inputs, got %d", op,
                          p->fused ? "2 to 4" : "2", ctx->n_in);
    uint32_t types = p->fused ? ONR_T(ONR_FLOAT) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16)
                              : mm_types(ctx->opset);
    if ((st = onr_check_input(ctx, 0, types)) || (st = onr_check_input(ctx, 1, types)) ||
        (st = check_same_type(ctx, 1)) || (st = mm_geom_init(ctx, &p->g, p->tb)) ||
        (st = check_packed(ctx, &p->pb, p->g.K, p->g.N, op)) ||
        (st = onr_set_out(ctx, 0, ctx->in[0]->dtype, p->g.orank, p->g.odims)))
        return st;
    const onr_tensor *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    p->has_bias = bias != NULL;
    if (bias) {
        char s1[256];
        int ok = bias->rank >= 1 && bias->numel == p->g.N && bias->dims[bias->rank - 1] == p->g.N;
        if ((st = check_same_type(ctx, 2))) return st;
        if (!ok)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "FusedMatMul bias %s is not a vector of N = %lld elements",
                              onr_fmt_dims(s1, sizeof s1, bias->dims, bias->rank),
                              (long long)p->g.N);
    }
    const onr_tensor *res = ctx->n_in > 3 ? ctx->in[3] : NULL;
    p->has_res = res != NULL;
    if (res) {
        char s1[256], s2[256];
        int ok = res->rank == p->g.orank;
        for (int d = 0; ok && d < res->rank; d++) ok = res->dims[d] == p->g.odims[d];
        if ((st = check_same_type(ctx, 3))) return st;
        if (!ok)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "FusedMatMul residual %s differs from the product's shape %s",
                              onr_fmt_dims(s1, sizeof s1, res->dims, res->rank),
                              onr_fmt_dims(s2, sizeof s2, p->g.odims, p->g.orank));
    }
    const mm_geom *g = &p->g;
    onr_dtype dt = ctx->in[0]->dtype;
    size_t used = 0;
    p->nthreads = ctx->nthreads > 0 ? ctx->nthreads : 1;
    p->off_a = p->off_b = p->off_y = p->off_ws = p->off_bias = p->off_res = ONR_NO_SCRATCH;
    if (onr_is_half(dt)) {
        p->off_a = onr_carve_at(&used, sizeof(float) * (size_t)ctx->in[0]->numel);
        if (!p->pb.data && !p->b32)
            p->off_b = onr_carve_at(&used, sizeof(float) * (size_t)ctx->in[1]->numel);
        p->off_y = onr_carve_at(&used, sizeof(float) * (size_t)(g->batch * g->M * g->N));
        if (bias && !p->bias32) p->off_bias = onr_carve_at(&used, sizeof(float) * (size_t)g->N);
        if (res) p->off_res = onr_carve_at(&used, sizeof(float) * (size_t)res->numel);
    }
    if (f32_path(dt))
        p->off_ws = onr_carve_at(&used, mm_ws_bytes(g, p->nthreads, pb_ws_flags(&p->pb)));
    *scratch = p->scratch = used;
    return ONR_OK;
}

static int matmul_run(const onr_kctx *ctx)
{
    const mm_params *p = ctx->params;
    const mm_geom *g = &p->g;
    const onr_tensor *a = ctx->in[0], *b = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    onr_dtype dt = a->dtype;
    int nt = run_threads(ctx, p->nthreads);
    if (!f32_path(dt)) {
        mm_naive_fn fn = mm_naive_for(dt);
        if (!fn)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "MatMul of %s", onr_dtype_name(dt));
        fn(g, a->data, b->data, y->data, nt);
        return ONR_OK;
    }
    if (ctx->scratch_size < p->scratch)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "MatMul scratch too small");
    void *ws = onr_scratch_at(ctx, p->off_ws);
    /* FusedMatMul's epilogue: the bias (constant, float32 input, or a
     * 16-bit input widened into scratch) and the activation */
    onr_gemm_epilogue ep = {.act = p->act, .clip_min = p->clip_min, .clip_max = p->clip_max};
    const onr_gemm_epilogue *epp =
        p->fused && (p->has_bias || p->act || p->has_res) ? &ep : NULL;
    if (p->has_res) { /* act(v) + R, R of Y's shape: rows of N */
        const onr_tensor *r = ctx->in[3];
        if (r->dtype == ONR_FLOAT) {
            ep.residual = r->data;
        } else {
            float *wide = onr_scratch_at(ctx, p->off_res);
            onr_la_to_f32(r, wide, nt);
            ep.residual = wide;
        }
        ep.ldr = (size_t)g->N;
    }
    if (p->has_bias) {
        const onr_tensor *bias = ctx->in[2];
        if (p->bias32) {
            ep.bias_col = p->bias32;
        } else if (bias->dtype == ONR_FLOAT) {
            ep.bias_col = bias->data;
        } else {
            float *wide = onr_scratch_at(ctx, p->off_bias);
            onr_la_to_f32(bias, wide, 1);
            ep.bias_col = wide;
        }
    }
    if (dt == ONR_FLOAT) {
        mm_f32(g, a->data, p->pb.data ? NULL : b->data, p->pb.data, y->data, epp, ws, nt);
        return ONR_OK;
    }
    float *a32 = onr_scratch_at(ctx, p->off_a), *y32 = onr_scratch_at(ctx, p->off_y);
    const float *b32 = p->b32;
    onr_la_to_f32(a, a32, nt);
    if (!p->pb.data && !b32) {
        float *wide = onr_scratch_at(ctx, p->off_b);
        onr_la_to_f32(b, wide, nt);
        b32 = wide;
    }
    mm_f32(g, a32, b32, p->pb.data, y32, epp, ws, nt);
    onr_la_from_f32(y, y32, nt);
    return ONR_OK;
}

const onr_op_impl onr_impl_MatMul = {
    .create = matmul_create,
    .reshape = matmul_reshape,
    .run = matmul_run,
    .destroy = matmul_destroy,
    .params_size = sizeof(mm_params),
    .types = ONR_TYPES_FLOAT | ONR_T(ONR_INT32) | ONR_T(ONR_INT64) | ONR_T(ONR_UINT32) |
             ONR_T(ONR_UINT64),
    .flags = ONR_OP_LAZY_B,
};

/* FusedMatMul: the attributes, then MatMul's create; a constant bias is
 * widened to float32 once. */
static int fused_matmul_create(onr_create_ctx *c, void *params)
{
    mm_params *p = params;
    static const struct {
        const char *name;
        onr_gemm_act act;
    } acts[] = {{"", ONR_ACT_NONE},         {"Relu", ONR_ACT_RELU}, {"Gelu", ONR_ACT_GELU_ERF},
                {"Sigmoid", ONR_ACT_SIGMOID}, {"Silu", ONR_ACT_SILU}, {"Clip", ONR_ACT_CLIP}};
    p->fused = 1;
    p->tb = onr_attr_int(c->node, "trans_b", 0) != 0;
    const char *a = onr_attr_string(c->node, "activation", "");
    size_t i = 0, n = sizeof acts / sizeof acts[0];
    while (i < n && strcmp(acts[i].name, a) != 0) i++;
    if (i == n)
        return onr_seterr(c->err, ONR_E_MODEL,
                          "FusedMatMul: unknown activation \"%s\" (Relu, Gelu, Sigmoid, Silu, "
                          "Clip or none)", a);
    p->act = acts[i].act;
    if (p->act == ONR_ACT_GELU_ERF) {
        const char *ap = onr_attr_string(c->node, "approximate", "none");
        if (strcmp(ap, "tanh") == 0) p->act = ONR_ACT_GELU_TANH;
        else if (strcmp(ap, "none") != 0)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "FusedMatMul: approximate must be \"none\" or \"tanh\", got \"%s\"",
                              ap);
    }
    p->clip_min = onr_attr_float(c->node, "clip_min", -3.402823466e+38f);
    p->clip_max = onr_attr_float(c->node, "clip_max", 3.402823466e+38f);
    int st = mm_create_b(c, p);
    if (st) return st;
    const onr_tensor *bias = onr_create_const(c, 2);
    if (bias && f32_path(bias->dtype) && (bias->data || !bias->numel)) {
        if (!(p->bias32 = onr_la_const_f32(c, bias, 1.f))) return ONR_E_NOMEM;
        onr_create_consume(c, 2);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_FusedMatMul = {
    .create = fused_matmul_create,
    .reshape = matmul_reshape,
    .run = matmul_run,
    .destroy = matmul_destroy,
    .params_size = sizeof(mm_params),
    .types = ONR_T(ONR_FLOAT) | ONR_T(ONR_FLOAT16) | ONR_T(ONR_BFLOAT16),
    .flags = ONR_OP_LAZY_B,
};

/* ======================================================================
 * Gemm: Y = alpha * op(A) * op(B) + beta * C, C broadcast to [M, N]
 * ==================================================================== */

/* How C broadcasts to [M, N]. */
enum { GC_NONE, GC_SCALAR, GC_COL /* one value per column j */, GC_ROW /* per row i */, GC_FULL };

/* The attributes (create) and the geometry (reshape) the kernels read. */
typedef struct gemm_geom {
    int ta, tb;
    float alpha, beta;
    int int_ab;              /* alpha and beta are integral: */
    int64_t alpha_i, beta_i; /* integer types use them as integers */
    int64_t M, N, K;
    int ckind;
} gemm_geom;

/* Whether v is an integer small enough to be exact in integer Gemm. */
static int integral(float v, int64_t *out)
{
    if (!(v >= -2147483648.f && v <= 2147483647.f) || (float)(int64_t)v != v) return 0;
    *out = (int64_t)v;
    return 1;
}

/* Gemm's params: attributes and constant B and C prepared in create,
 * geometry and scratch layout from reshape. */
typedef struct gemm_params {
    gemm_geom g;
    int bcast;   /* opsets 1-6: the broadcast attribute */
    packed_b pb; /* constant B, packed with transB applied */
    /* constant C (16-bit or float32) as float32 times beta, for the bias
     * epilogue (or copied into Y when it is a full [M, N]); c_const with
     * c32 == NULL: C is constant and beta == 0, so never read */
    float *c32;
    int c_const;
    int nthreads;
    size_t scratch;
    /* scratch offsets: float32 A, B, C, Y (16-bit types), the bias vector
     * and the GEMM workspace */
    size_t off_a, off_b, off_c, off_y, off_bias, off_ws;
} gemm_params;

static void gemm_destroy(void *params)
{
    gemm_params *p = params;
    free(p->pb.data);
    free(p->c32);
}

static int gemm_create(onr_create_ctx *c, void *params)
{
    gemm_params *p = params;
    gemm_geom *g = &p->g;
    g->ta = onr_attr_int(c->node, "transA", 0) != 0;
    g->tb = onr_attr_int(c->node, "transB", 0) != 0;
    g->alpha = onr_attr_float(c->node, "alpha", 1.f);
    g->beta = onr_attr_float(c->node, "beta", 1.f);
    g->int_ab = integral(g->alpha, &g->alpha_i) && integral(g->beta, &g->beta_i);
    p->bcast = c->opset < 7 && onr_attr_int(c->node, "broadcast", 0) != 0;
    int packed, st = pack_const_b(c, g->tb, &p->pb, &packed);
    if (st) return st;
    if (packed) onr_create_consume(c, 1);
    const onr_tensor *ct = onr_create_const(c, 2);
    if (ct && f32_path(ct->dtype) && (ct->data || !ct->numel)) {
        /* beta == 0 ignores C, as the reference runtimes do */
        if (g->beta != 0.f && !(p->c32 = onr_la_const_f32(c, ct, g->beta))) return ONR_E_NOMEM;
        p->c_const = 1;
        onr_create_consume(c, 2);
    }
    return ONR_OK;
}

static int gemm_geom_init(onr_kctx *ctx, const gemm_params *p, gemm_geom *g)
{
    const onr_tensor *a = ctx->in[0], *b = ctx->in[1];
    const onr_tensor *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    char s1[256], s2[256];
    if (a->rank != 2 || b->rank != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "Gemm needs 2-D A and B, got %s and %s",
                          onr_fmt_dims(s1, sizeof s1, a->dims, a->rank),
                          onr_fmt_dims(s2, sizeof s2, b->dims, b->rank));
    g->M = a->dims[g->ta ? 1 : 0];
    g->K = a->dims[g->ta ? 0 : 1];
    g->N = b->dims[g->tb ? 0 : 1];
    int64_t kb = b->dims[g->tb ? 1 : 0];
    if (kb != g->K)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "Gemm inner dims differ: op(A) is %lldx%lld, op(B) is %lldx%lld",
                          (long long)g->M, (long long)g->K, (long long)kb, (long long)g->N);
    g->ckind = GC_NONE;
    if (!c) return ONR_OK;
    int64_t c0 = c->rank == 2 ? c->dims[0] : 1, c1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    int fits = c->rank <= 2 && (c0 == 1 || c0 == g->M) && (c1 == 1 || c1 == g->N);
    /* opsets 1-6 broadcast C only when asked to */
    if (ctx->opset < 7 && !p->bcast) fits = c->rank == 2 && c0 == g->M && c1 == g->N;
    if (!fits)
        return onr_seterr(ctx->err, ONR_E_MODEL, "Gemm C %s does not broadcast to [%lld,%lld]",
                          onr_fmt_dims(s1, sizeof s1, c->dims, c->rank), (long long)g->M,
                          (long long)g->N);
    g->ckind = c0 == 1 && c1 == 1 ? GC_SCALAR : c0 == 1 ? GC_COL : c1 == 1 ? GC_ROW : GC_FULL;
    return ONR_OK;
}

static int gemm_reshape(onr_kctx *ctx, size_t *scratch)
{
    gemm_params *p = ctx->params;
    gemm_geom *g = &p->g;
    int st, need_c = ctx->opset < 11;
    if (ctx->n_in < 2 + need_c || ctx->n_in > 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "Gemm takes %s inputs, got %d",
                          need_c ? "3" : "2 or 3", ctx->n_in);
    uint32_t types = mm_types(ctx->opset);
    if ((st = onr_check_input(ctx, 0, types)) || (st = onr_check_input(ctx, 1, types)) ||
        (st = check_same_type(ctx, 1)))
        return st;
    const onr_tensor *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (c) {
        if ((st = check_same_type(ctx, 2))) return st;
    } else if (need_c) {
        return onr_seterr(ctx->err, ONR_E_MODEL, "Gemm before opset 11 needs input C");
    }
    if ((st = gemm_geom_init(ctx, p, g)) || (st = check_packed(ctx, &p->pb, g->K, g->N, "Gemm")))
        return st;
    onr_dtype dt = ctx->in[0]->dtype;
    if (!(ONR_TYPES_FLOAT & ONR_T(dt)) && !g->int_ab)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "Gemm of %s needs integral alpha and beta, got %g and %g",
                          onr_dtype_name(dt), g->alpha, g->beta);
    int64_t dims[2] = {g->M, g->N};
    if ((st = onr_set_out(ctx, 0, dt, 2, dims))) return st;
    size_t used = 0;
    p->nthreads = ctx->nthreads > 0 ? ctx->nthreads : 1;
    p->off_a = p->off_b = p->off_c = p->off_y = p->off_bias = p->off_ws = ONR_NO_SCRATCH;
    if (onr_is_half(dt)) {
        p->off_a = onr_carve_at(&used, sizeof(float) * (size_t)ctx->in[0]->numel);
        if (!p->pb.data) p->off_b = onr_carve_at(&used, sizeof(float) * (size_t)ctx->in[1]->numel);
        if (c && !p->c_const) p->off_c = onr_carve_at(&used, sizeof(float) * (size_t)c->numel);
        p->off_y = onr_carve_at(&used, sizeof(float) * (size_t)(g->M * g->N));
    }
    if (f32_path(dt)) {
        p->off_bias = onr_carve_at(&used, sizeof(float) * (size_t)(g->M > g->N ? g->M : g->N));
        p->off_ws = onr_carve_at(&used, onr_sgemm_workspace_size_ex((size_t)g->M, (size_t)g->N,
                                                                   (size_t)g->K, p->nthreads,
                                                                   pb_ws_flags(&p->pb)));
    }
    *scratch = p->scratch = used;
    return ONR_OK;
}

/* Y = alpha op(A) op(B) + cbeta C: C is the input (cbeta = beta) or the
 * constant already scaled by beta (cbeta = 1); row and column vectors go
 * to the bias epilogue, a full C is copied into Y first. */
static void gemm_f32(const gemm_geom *g, const float *a, const float *b, const void *packed,
                     const float *c, float cbeta, float *y, float *bias, void *ws, int nt)
{
    size_t M = (size_t)g->M, N = (size_t)g->N, K = (size_t)g->K;
    if (M == 0 || N == 0) return;
    onr_gemm_epilogue ep = {0};
    const onr_gemm_epilogue *epp = NULL;
    float beta = 0.f;
    /* beta == 0 ignores C, as the reference runtimes do */
    if (c && g->ckind != GC_NONE && g->beta != 0.f) {
        size_t len = g->ckind == GC_ROW ? M : N;
        const float *vec = c;
        if (g->ckind == GC_FULL) {
            if (y != c) memcpy(y, c, sizeof(float) * M * N);
            beta = cbeta;
        } else if (g->ckind == GC_SCALAR || cbeta != 1.f) {
            for (size_t i = 0; i < len; i++) bias[i] = cbeta * c[g->ckind == GC_SCALAR ? 0 : i];
            vec = bias;
        }
        if (g->ckind == GC_COL || g->ckind == GC_SCALAR) ep.bias_col = vec, epp = &ep;
        if (g->ckind == GC_ROW) ep.bias_row = vec, epp = &ep;
    }
    size_t lda = g->ta ? M : K, ldb = g->tb ? K : N;
    if (packed)
        onr_sgemm_packed(g->ta, M, N, K, g->alpha, a, lda, packed, beta, y, N, epp, ws, nt);
    else
        onr_sgemm(g->ta, g->tb, M, N, K, g->alpha, a, lda, b, ldb, beta, y, N, epp, ws, nt);
}

/* Plain loops for double and integers; FLT picks the float or the integer
 * form of alpha/beta (integers wrap through a uint64_t accumulator). */
#define GEMM_NAIVE(sfx, T, ACC, FLT)                                                           \
    static void gemm_naive_##sfx(const gemm_geom *g, const void *av, const void *bv,           \
                                 const void *cv, void *yv, int nt)                             \
    {                                                                                          \
        const T *a = av, *b = bv, *c = cv;                                                     \
        T *y = yv;                                                                             \
        int64_t M = g->M, N = g->N, K = g->K;                                                  \
        int64_t a_i = g->ta ? 1 : K, a_k = g->ta ? M : 1, b_k = g->tb ? 1 : N,                 \
                b_j = g->tb ? K : 1;                                                           \
        int64_t c_i = g->ckind == GC_ROW ? 1 : g->ckind == GC_FULL ? N : 0;                    \
        int64_t c_j = g->ckind == GC_COL || g->ckind == GC_FULL ? 1 : 0;                       \
        int use_c = c && g->ckind != GC_NONE && g->beta != 0.f;                                \
        ACC al = FLT ? (ACC)g->alpha : (ACC)g->alpha_i;                                        \
        ACC be = FLT ? (ACC)g->beta : (ACC)g->beta_i;                                          \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (M * N * K > ONR_PAR_MIN && nt > 1)") \
        for (int64_t i = 0; i < M; i++)                                                        \
            for (int64_t j = 0; j < N; j++) {                                                  \
                ACC acc = 0;                                                                   \
                for (int64_t k = 0; k < K; k++)                                                \
                    acc += (ACC)a[i * a_i + k * a_k] * (ACC)b[k * b_k + j * b_j];              \
                acc *= al;                                                                     \
                if (use_c) acc += be * (ACC)c[i * c_i + j * c_j];                              \
                y[i * N + j] = (T)acc;                                                         \
            }                                                                                  \
    }

GEMM_NAIVE(f64, double, double, 1)
GEMM_NAIVE(i32, int32_t, uint64_t, 0)
GEMM_NAIVE(i64, int64_t, uint64_t, 0)
GEMM_NAIVE(u32, uint32_t, uint64_t, 0)
GEMM_NAIVE(u64, uint64_t, uint64_t, 0)

typedef void (*gemm_naive_fn)(const gemm_geom *, const void *, const void *, const void *, void *,
                              int);

static const struct {
    onr_dtype dt;
    gemm_naive_fn fn;
} gemm_naive_table[] = {
    {ONR_DOUBLE, gemm_naive_f64}, {ONR_INT32, gemm_naive_i32},   {ONR_INT64, gemm_naive_i64},
    {ONR_UINT32, gemm_naive_u32}, {ONR_UINT64, gemm_naive_u64},
};

static gemm_naive_fn gemm_naive_for(onr_dtype dt)
{
    for (size_t i = 0; i < sizeof gemm_naive_table / sizeof gemm_naive_table[0]; i++)
        if (gemm_naive_table[i].dt == dt) return gemm_naive_table[i].fn;
    return NULL;
}

static int gemm_run(const onr_kctx *ctx)
{
    const gemm_params *p = ctx->params;
    const gemm_geom *g = &p->g;
    const onr_tensor *a = ctx->in[0], *b = ctx->in[1];
    const onr_tensor *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    onr_tensor *y = ctx->out[0];
    onr_dtype dt = a->dtype;
    int nt = run_threads(ctx, p->nthreads);
    if (!f32_path(dt)) {
        gemm_naive_fn fn = gemm_naive_for(dt);
        if (!fn) return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "Gemm of %s", onr_dtype_name(dt));
        fn(g, a->data, b->data, c ? c->data : NULL, y->data, nt);
        return ONR_OK;
    }
    if (ctx->scratch_size < p->scratch)
        return onr_seterr(ctx->err, ONR_E_RUNTIME, "Gemm scratch too small");
    float *bias = onr_scratch_at(ctx, p->off_bias);
    void *ws = onr_scratch_at(ctx, p->off_ws);
    /* C: the constant prepared in create (already times beta) or the input */
    const float *c32 = p->c_const ? p->c32 : NULL;
    float cbeta = p->c_const ? 1.f : g->beta;
    if (dt == ONR_FLOAT) {
        if (!p->c_const && c) c32 = c->data;
        gemm_f32(g, a->data, p->pb.data ? NULL : b->data, p->pb.data, c32, cbeta, y->data, bias,
                 ws, nt);
        return ONR_OK;
    }
    float *a32 = onr_scratch_at(ctx, p->off_a), *b32 = NULL, *y32 = onr_scratch_at(ctx, p->off_y);
    onr_la_to_f32(a, a32, nt);
    if (!p->pb.data) {
        b32 = onr_scratch_at(ctx, p->off_b);
        onr_la_to_f32(b, b32, nt);
    }
    if (!p->c_const && c) {
        float *wide = onr_scratch_at(ctx, p->off_c);
        onr_la_to_f32(c, wide, nt);
        c32 = wide;
    }
    gemm_f32(g, a32, b32, p->pb.data, c32, cbeta, y32, bias, ws, nt);
    onr_la_from_f32(y, y32, nt);
    return ONR_OK;
}

const onr_op_impl onr_impl_Gemm = {
    .create = gemm_create,
    .reshape = gemm_reshape,
    .run = gemm_run,
    .destroy = gemm_destroy,
    .params_size = sizeof(gemm_params),
    .types = ONR_TYPES_FLOAT | ONR_T(ONR_INT32) | ONR_T(ONR_INT64) | ONR_T(ONR_UINT32) |
             ONR_T(ONR_UINT64),
    .flags = ONR_OP_LAZY_B,
};
