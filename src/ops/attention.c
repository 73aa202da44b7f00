/*
 * attention.c - Attention (ai.onnx, opsets 23 and 24): scaled dot-product
 * attention with grouped-query heads, an optional mask, causal masking, a
 * key/value cache (past/present) and, from opset 24, per-batch valid key
 * counts (nonpad_kv_seqlen).
 *
 * Semantics (the specification's function body and reference
 * implementation), for batch b, query head h, query row i and key j of the
 * T = P + S_kv keys (P past keys first, then the new ones):
 *
 *   s0 = scale * <Q[b,h,i,:], K[b,h/g,j,:]>        scale: attribute, else
 *                                                   1/sqrt(head_size)
 *   s1 = softcap > 0 ? softcap * tanh(s0 / softcap) : s0
 *   s2 = s1 + bias[b,h,i,j]
 *   p  = softmax_j(s2)        (a row of -inf only gives NaN, as in the spec)
 *   Y[b,h,i,:] = sum_j p_j V[b,h/g,j,:]             g = q_heads / kv_heads
 *
 * bias = mask + causal + padding, each 0 or -inf except a float mask:
 *  - attn_mask: bool (true = attend, false = -inf) or float (added),
 *    broadcast (numpy, right-aligned) to [B, q_heads, S_q, T]. From opset 24
 *    its last dim may be shorter than T: the missing keys are masked (-inf).
 *  - is_causal: key j is masked when j > i + P (the causal diagonal is
 *    aligned on the past length, as the function body's RangeRow + past).
 *  - nonpad_kv_seqlen (opset 24): keys j >= nonpad_kv_seqlen[b] are masked.
 * Softcap comes before the mask is added (the current specification text
 * and reference implementation, for both opsets: a -inf mask must stay
 * -inf; ONNX 1.18-1.20 drew softcap after the mask). qk_matmul_output
 * (output 3) is, by qk_matmul_output_mode: 0 s0, 1 s1, 2 s2, 3 p, i.e. the
 * modes follow that order (matmul, softcap, mask, softmax); without softcap
 * mode 1 equals mode 0. At opset 23 a mask's last dim must be T or 1
 * (broadcast); the causal diagonal is aligned on P even with
 * nonpad_kv_seqlen (newer reference code aligns it on nonpad - S_q there).
 * softmax_precision is accepted: float32/float16/bfloat16 inputs compute in
 * float32 (in double when it asks for double), double inputs in double.
 *
 * Layouts: Q, K, V each 4-D [B, heads, S, head_size] or 3-D [B, S, heads *
 * head_size] (then q_num_heads / kv_num_heads give the heads); Y is 3-D when
 * Q is. past_key/past_value are 4-D [B, kv_heads, P, size], and
 * present_key/present_value are the 4-D concatenation of past and new. V's
 * head size may differ from Q's and K's.
 *
 * Two paths:
 *  - the reference (att_run_ref): one full score row per (b, h, i), computed
 *    in double from any float type; double inputs (or masks), any call that
 *    asks for qk_matmul_output, and softmax_precision = DOUBLE go this way;
 *  - float32 streaming (att_run_f32): per (b, h, tile of BQ query rows),
 *    the keys in tiles of BK: scores of the tile by the SGEMM core into a
 *    per-thread block, bias, online softmax (running max and sum, earlier
 *    output rescaled), then P.V accumulated straight into Y. Key tiles
 *    past every row's causal / padding limit are never computed. The
 *    [B, H, S_q, T] score tensor is never formed. The row operations (bias
 *    + max, exp + sum) have AVX-512 and AVX2 versions picked at reshape
 *    from the CPU (attention-avx512.c, attention-avx2.c) and a portable one
 *    here. Parallel over (b, h, query tile); each row is computed the same
 *    way whatever the tiling of the queries, so results do not depend on
 *    the thread count (tested bit for bit).
 *    float16/bfloat16 take this path too, through float32 copies of their
 *    inputs in scratch (and Y rounded back at the end).
 * The reference path is correct but forms every score and is far slower.
 *
 * Packed Q, K and V (org.onnxrun Attention, opset 1: the planner's
 * fuse_qkv.c, when one product computed all three): the ai.onnx operator's
 * inputs, outputs and attributes, plus a required attribute qkv_sizes =
 * [nq, nk, nv]. Inputs 0, 1 and 2 are then 3-D [B, S, w] with w >= nq + nk +
 * nv (the same tensor, as the planner makes them, or not): Q is columns
 * [0, nq) of input 0, K columns [nq, nq + nk) of input 1, V columns
 * [nq + nk, nq + nk + nv) of input 2, each read in place with row stride w.
 * Its attribute onnx_opset (23 or 24, default 24) is the ai.onnx opset whose
 * rules it follows (nonpad_kv_seqlen and short masks from 24).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <omp.h>

#include "gemm/gemm.h"
#include "ops/attention-simd.h"
#include "ops/attention.h"
#include "ops/linalg.h"

/* ---- params ---------------------------------------------------------------- */

/* Where element (b, h, s, 0) of a Q/K/V-like tensor lives: b*sb + h*sh + s*ss,
 * the head elements contiguous after it. */
typedef struct att_lay {
    int64_t sb, sh, ss;
    int64_t o; /* elements before (0, 0, 0, 0): the column a packed input starts at */
} att_lay;

typedef struct att_params {
    /* attributes (create) */
    int64_t q_heads_attr, kv_heads_attr; /* 0: absent */
    int is_causal, has_scale, qk_mode;
    float scale_attr, softcap;
    int64_t softmax_precision; /* 0: absent */
    int packed;                /* org.onnxrun: Q, K, V packed (qkv) */
    int64_t opset;             /* the ai.onnx opset whose rules apply */
    int64_t qkv[3];
    /* geometry (reshape) */
    int64_t B, Hq, Hkv, G, Sq, Skv, P, T, D, Dv;
    att_lay q, k, v, pk, pv, y;
    float scale;
    /* mask: offset of row (b, h, i) is b*msb + h*msh + i*msq; column j
     * (j < mvalid) at j*mcs; columns from mvalid on are masked */
    int has_mask, mask_bool;
    int64_t msb, msh, msq, mcs, mvalid;
    int has_nonpad;
    /* path and scratch */
    int fast, bq, bk, nt;
    onr_att_bias_max_fn bias_max;
    onr_att_exp_sum_fn exp_sum;
    /* 16 keys of K^T at a time (att_build_slab), or NULL: element by element */
    void (*kt16)(const float *const *, int64_t, float *, size_t);
    size_t thread_bytes, ws_off, s_off, m_off, l_off, r_off;
    /* slabs (streaming path): per (b, kv head), K^T as D x tpad floats and V
     * as T x Dv, past and new keys together, built once per run and shared
     * by every query tile (and every query head of a group) */
    int slab;
    int64_t tpad;
    size_t slab_off, slab_k, slab_v;
    /* 16-bit inputs on the streaming path: float32 copies in scratch of Q,
     * K, V, past_key, past_value, the mask and Y (conv[i] != 0: slot i used,
     * at conv_off[i]) */
    int conv[7];
    size_t conv_off[7];
} att_params;

static int g_force_path;                /* see attention.h */
static int g_bq = 128, g_bk = 256; /* streaming tile sizes (tuned: BERT-base, GPT-2 shapes) */

int onr_attention_force_path(int path)
{
    int old = g_force_path;
    g_force_path = path;
    return old;
}

void onr_attention_set_tiles(int bq, int bk)
{
    if (bq > 0) g_bq = bq;
    if (bk > 0) g_bk = bk;
}

void onr_attention_get_tiles(int *bq, int *bk)
{
    *bq = g_bq;
    *bk = g_bk;
}

enum { IN_Q, IN_K, IN_V, IN_MASK, IN_PK, IN_PV, IN_NONPAD };
enum { OUT_Y, OUT_PK, OUT_PV, OUT_QK };

static int is_float_type(int64_t t)
{
    return t == ONR_FLOAT || t == ONR_DOUBLE || t == ONR_FLOAT16 || t == ONR_BFLOAT16;
}

static int att_create(onr_create_ctx *c, void *params)
{
    att_params *p = params;
    const onr_node *n = c->node;
    p->q_heads_attr = onr_attr_int(n, "q_num_heads", 0);
    p->kv_heads_attr = onr_attr_int(n, "kv_num_heads", 0);
    if (p->q_heads_attr < 0 || p->kv_heads_attr < 0)
        return onr_seterr(c->err, ONR_E_MODEL, "q_num_heads (%lld) and kv_num_heads (%lld) must be >= 1",
                          (long long)p->q_heads_attr, (long long)p->kv_heads_attr);
    int64_t causal = onr_attr_int(n, "is_causal", 0);
    if (causal != 0 && causal != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "is_causal must be 0 or 1, it is %lld", (long long)causal);
    p->is_causal = (int)causal;
    int64_t mode = onr_attr_int(n, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return onr_seterr(c->err, ONR_E_MODEL, "qk_matmul_output_mode must be 0..3, it is %lld",
                          (long long)mode);
    p->qk_mode = (int)mode;
    p->has_scale = onr_node_attr(n, "scale") != NULL;
    p->scale_attr = onr_attr_float(n, "scale", 1.f);
    if (p->has_scale && !isfinite(p->scale_attr))
        return onr_seterr(c->err, ONR_E_MODEL, "scale must be finite, it is %g", (double)p->scale_attr);
    p->softcap = onr_attr_float(n, "softcap", 0.f);
    if (!(p->softcap >= 0.f) || isinf(p->softcap))
        return onr_seterr(c->err, ONR_E_MODEL, "softcap must be a finite value >= 0, it is %g",
                          (double)p->softcap);
    p->softmax_precision = onr_attr_int(n, "softmax_precision", 0);
    if (p->softmax_precision != 0 && !is_float_type(p->softmax_precision))
        return onr_seterr(c->err, ONR_E_MODEL,
                          "softmax_precision must be a float type (1, 10, 11 or 16), it is %lld",
                          (long long)p->softmax_precision);
    p->packed = n->domain && strcmp(n->domain, "org.onnxrun") == 0;
    p->opset = p->packed ? onr_attr_int(n, "onnx_opset", 24) : c->opset;
    if (p->opset != 23 && p->opset != 24)
        return onr_seterr(c->err, ONR_E_MODEL, "onnx_opset must be 23 or 24, it is %lld", (long long)p->opset);
    if (p->packed) {
        size_t cnt = 0;
        const int64_t *q = onr_attr_ints(n, "qkv_sizes", &cnt);
        if (!q || cnt != 3 || q[0] < 1 || q[1] < 1 || q[2] < 1)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "org.onnxrun Attention needs qkv_sizes: 3 sizes >= 1 (Q, K, V columns of the "
                              "packed inputs)");
        if (q[0] > (INT64_MAX >> 2) || q[1] > (INT64_MAX >> 2) || q[2] > (INT64_MAX >> 2))
            return onr_seterr(c->err, ONR_E_MODEL, "qkv_sizes are too large");
        for (int i = 0; i < 3; i++) p->qkv[i] = q[i];
    }
    if (c->n_in > 6 && p->opset < 24)
        return onr_seterr(c->err, ONR_E_MODEL, "input 6 (nonpad_kv_seqlen) needs opset 24, the model has %lld",
                          (long long)p->opset);
    return ONR_OK;
}

/* Split a 3-D [B, S, heads*size] or 4-D [B, heads, S, size] tensor; packed:
 * columns [o, o + width) of a 3-D [B, S, w]. */
static int att_split(onr_kctx *ctx, int i, const char *what, int64_t heads_attr, const char *attr,
                     int64_t *B, int64_t *H, int64_t *S, int64_t *E, att_lay *lay)
{
    const att_params *p = ctx->params;
    const onr_tensor *t = ctx->in[i];
    lay->o = 0;
    int64_t w = t->rank == 3 ? t->dims[2] : 0; /* the columns of a 3-D tensor this input reads (its hidden size) */
    if (p->packed) {
        if (t->rank != 3)
            return onr_seterr(ctx->err, ONR_E_MODEL, "packed %s must be 3-D, it has rank %d", what, t->rank);
        if (t->dims[2] < p->qkv[0] + p->qkv[1] + p->qkv[2])
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "packed input %d has %lld columns, fewer than qkv_sizes' %lld + %lld + %lld", i,
                              (long long)t->dims[2], (long long)p->qkv[0], (long long)p->qkv[1],
                              (long long)p->qkv[2]);
        lay->o = i == IN_Q ? 0 : i == IN_K ? p->qkv[0] : p->qkv[0] + p->qkv[1];
        w = p->qkv[i];
    }
    if (t->rank == 4) {
        *B = t->dims[0];
        *H = t->dims[1];
        *S = t->dims[2];
        *E = t->dims[3];
        if (heads_attr > 0 && heads_attr != *H)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%s has %lld heads (dim 1) but %s is %lld", what,
                              (long long)*H, attr, (long long)heads_attr);
        lay->ss = *E;
        lay->sh = *S * *E;
        lay->sb = *H * lay->sh;
        return ONR_OK;
    }
    if (t->rank == 3) {
        if (heads_attr <= 0)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%s is 3-D, so attribute %s (>= 1) is required",
                              what, attr);
        if (w % heads_attr)
            return onr_seterr(ctx->err, ONR_E_MODEL, "%s's hidden size %lld is not a multiple of %s = %lld",
                              what, (long long)w, attr, (long long)heads_attr);
        *B = t->dims[0];
        *S = t->dims[1];
        *H = heads_attr;
        *E = w / heads_attr;
        lay->sh = *E;
        lay->ss = t->dims[2];
        lay->sb = *S * lay->ss;
        return ONR_OK;
    }
    return onr_seterr(ctx->err, ONR_E_MODEL, "%s must be 3-D or 4-D, it has rank %d", what, t->rank);
}

/* Portable row operations (attention-simd.h), 8 lanes in a fixed order. */
static float bias_max_c(float *s, const float *m, int64_t n, float init)
{
    float mx[8];
    for (int k = 0; k < 8; k++) mx[k] = init;
    int64_t c = 0;
    if (m)
        for (int64_t i = 0; i < n; i++) s[i] += m[i];
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; k++) mx[k] = s[c + k] > mx[k] ? s[c + k] : mx[k];
    for (; c < n; c++) mx[0] = s[c] > mx[0] ? s[c] : mx[0];
    for (int k = 1; k < 8; k++) mx[0] = mx[k] > mx[0] ? mx[k] : mx[0];
    return mx[0];
}

static float exp_sum_c(float *s, int64_t n, float mx)
{
    float acc[8] = {0}, t = 0;
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; k++) {
            float e = onr_att_exp(s[c + k] - mx);
            s[c + k] = e;
            acc[k] += e;
        }
    for (; c < n; c++) {
        s[c] = onr_att_exp(s[c] - mx);
        t += s[c];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + t;
}

static const char *g_isa; /* forced row-op variant, NULL: best available */

int onr_attention_force_isa(const char *name)
{
    if (name && strcmp(name, "ref") != 0 && strcmp(name, "avx2") != 0 && strcmp(name, "avx512") != 0)
        return -1;
    if (name && !onr_cpu_supports(name)) return -1;
    g_isa = name;
    return 0;
}

static void att_pick_rowops(att_params *p)
{
    int avx2 = onr_cpu_supports("avx2"), avx512 = onr_cpu_supports("avx512");
    if (g_isa) {
        avx512 = avx512 && strcmp(g_isa, "avx512") == 0;
        avx2 = avx2 && (avx512 || strcmp(g_isa, "avx2") == 0);
    }
    if (avx512) {
        p->bias_max = onr_att_bias_max_avx512;
        p->exp_sum = onr_att_exp_sum_avx512;
        p->kt16 = onr_att_kt16_avx512;
    } else if (avx2) {
        p->bias_max = onr_att_bias_max_avx2;
        p->exp_sum = onr_att_exp_sum_avx2;
        p->kt16 = NULL;
    } else {
        p->bias_max = bias_max_c;
        p->exp_sum = exp_sum_c;
        p->kt16 = NULL;
    }
}

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }

static int att_reshape(onr_kctx *ctx, size_t *scratch_bytes)
{
    att_params *p = ctx->params;
    *scratch_bytes = 0;
    int st;
    for (int i = IN_Q; i <= IN_V; i++)
        if ((st = onr_check_input(ctx, i, ONR_TYPES_FLOAT))) return st;
    const onr_tensor *Q = ctx->in[IN_Q], *K = ctx->in[IN_K], *V = ctx->in[IN_V];
    const onr_tensor *M = ctx->n_in > IN_MASK ? ctx->in[IN_MASK] : NULL;
    const onr_tensor *PK = ctx->n_in > IN_PK ? ctx->in[IN_PK] : NULL;
    const onr_tensor *PV = ctx->n_in > IN_PV ? ctx->in[IN_PV] : NULL;
    const onr_tensor *NP = ctx->n_in > IN_NONPAD ? ctx->in[IN_NONPAD] : NULL;
    if (K->dtype != Q->dtype)
        return onr_seterr(ctx->err, ONR_E_MODEL, "K is %s but Q is %s (both are type T1)",
                          onr_dtype_name(K->dtype), onr_dtype_name(Q->dtype));
    int64_t Bq, Bk, Bv, Hk, Hv, Sk, Sv, Dk;
    if ((st = att_split(ctx, IN_Q, "Q", p->q_heads_attr, "q_num_heads", &Bq, &p->Hq, &p->Sq, &p->D, &p->q)))
        return st;
    if ((st = att_split(ctx, IN_K, "K", p->kv_heads_attr, "kv_num_heads", &Bk, &Hk, &Sk, &Dk, &p->k)))
        return st;
    if ((st = att_split(ctx, IN_V, "V", p->kv_heads_attr, "kv_num_heads", &Bv, &Hv, &Sv, &p->Dv, &p->v)))
        return st;
    if (Bk != Bq || Bv != Bq)
        return onr_seterr(ctx->err, ONR_E_MODEL, "batch sizes differ: Q %lld, K %lld, V %lld", (long long)Bq,
                          (long long)Bk, (long long)Bv);
    if (Hk != Hv || Sk != Sv)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "K has %lld heads x %lld keys but V has %lld heads x %lld keys", (long long)Hk,
                          (long long)Sk, (long long)Hv, (long long)Sv);
    if (Dk != p->D)
        return onr_seterr(ctx->err, ONR_E_MODEL, "Q's head size %lld differs from K's %lld", (long long)p->D,
                          (long long)Dk);
    if (Hk < 1 || p->Hq % Hk)
        return onr_seterr(ctx->err, ONR_E_MODEL, "q heads (%lld) must be a multiple of kv heads (%lld)",
                          (long long)p->Hq, (long long)Hk);
    p->B = Bq;
    p->Hkv = Hk;
    p->G = p->Hq / Hk;
    p->Skv = Sk;
    p->P = 0;
    if ((PK != NULL) != (PV != NULL))
        return onr_seterr(ctx->err, ONR_E_MODEL, "past_key and past_value must be given together");
    if (PK) {
        if (PK->dtype != Q->dtype || PV->dtype != V->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "past_key must have K's type and past_value V's");
        if (PK->rank != 4 || PV->rank != 4 || PK->dims[0] != p->B || PV->dims[0] != p->B ||
            PK->dims[1] != Hk || PV->dims[1] != Hk || PK->dims[2] != PV->dims[2] || PK->dims[3] != p->D ||
            PV->dims[3] != p->Dv)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "past_key must be [%lld, %lld, P, %lld] and past_value [%lld, %lld, P, %lld]",
                              (long long)p->B, (long long)Hk, (long long)p->D, (long long)p->B, (long long)Hk,
                              (long long)p->Dv);
        p->P = PK->dims[2];
        p->pk = (att_lay){Hk * p->P * p->D, p->P * p->D, p->D, 0};
        p->pv = (att_lay){Hk * p->P * p->Dv, p->P * p->Dv, p->Dv, 0};
    }
    p->T = p->P + p->Skv;
    p->scale = p->has_scale ? p->scale_attr : (p->D > 0 ? (float)(1.0 / sqrt((double)p->D)) : 1.f);

    /* mask */
    p->has_mask = M != NULL;
    p->mask_bool = 0;
    p->msb = p->msh = p->msq = 0;
    p->mcs = 1;
    p->mvalid = p->T;
    if (M) {
        if (M->dtype != ONR_BOOL && !(ONR_TYPES_FLOAT & ONR_T(M->dtype)))
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "attn_mask has unsupported type %s",
                              onr_dtype_name(M->dtype));
        if (M->rank < 1 || M->rank > 4)
            return onr_seterr(ctx->err, ONR_E_MODEL, "attn_mask must have rank 1..4, it has %d", M->rank);
        p->mask_bool = M->dtype == ONR_BOOL;
        int64_t want[4] = {p->B, p->Hq, p->Sq, p->T}, md[4] = {1, 1, 1, 1};
        for (int d = 0; d < M->rank; d++) md[4 - M->rank + d] = M->dims[d];
        int64_t tm = md[3];
        if (tm == p->T) {
            p->mcs = 1;
        } else if (p->opset >= 24 && tm < p->T) {
            p->mvalid = tm; /* padded with masked keys */
        } else if (tm == 1) {
            p->mcs = 0; /* broadcast along keys */
        } else {
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "attn_mask's last dim %lld does not fit the %lld keys (past %lld + new %lld)",
                              (long long)tm, (long long)p->T, (long long)p->P, (long long)p->Skv);
        }
        const char *nm[3] = {"batch", "q heads", "q sequence"};
        for (int d = 0; d < 3; d++)
            if (md[d] != 1 && md[d] != want[d])
                return onr_seterr(ctx->err, ONR_E_MODEL,
                                  "attn_mask dim %d (%lld) does not broadcast to %s = %lld", d - (4 - M->rank),
                                  (long long)md[d], nm[d], (long long)want[d]);
        int64_t s3 = tm, s2 = md[2] * s3, s1 = md[1] * s2;
        p->msq = md[2] == 1 ? 0 : s3;
        p->msh = md[1] == 1 ? 0 : s2;
        p->msb = md[0] == 1 ? 0 : s1;
    }
    p->has_nonpad = NP != NULL;
    if (NP) {
        if (NP->dtype != ONR_INT64)
            return onr_seterr(ctx->err, ONR_E_MODEL, "nonpad_kv_seqlen must be int64, it is %s",
                              onr_dtype_name(NP->dtype));
        if (NP->numel != p->B)
            return onr_seterr(ctx->err, ONR_E_MODEL, "nonpad_kv_seqlen must have %lld values (batch), it has %lld",
                              (long long)p->B, (long long)NP->numel);
    }

    /* outputs */
    int64_t yd[4];
    int yrank = Q->rank;
    if (Q->rank == 3) {
        yd[0] = p->B, yd[1] = p->Sq, yd[2] = p->Hq * p->Dv;
        p->y = (att_lay){p->Sq * p->Hq * p->Dv, p->Dv, p->Hq * p->Dv, 0};
    } else {
        yd[0] = p->B, yd[1] = p->Hq, yd[2] = p->Sq, yd[3] = p->Dv;
        p->y = (att_lay){p->Hq * p->Sq * p->Dv, p->Sq * p->Dv, p->Dv, 0};
    }
    if ((st = onr_set_out(ctx, OUT_Y, Q->dtype, yrank, yd))) return st;
    int64_t pkd[4] = {p->B, p->Hkv, p->T, p->D}, pvd[4] = {p->B, p->Hkv, p->T, p->Dv};
    if ((st = onr_set_out(ctx, OUT_PK, K->dtype, 4, pkd))) return st;
    if ((st = onr_set_out(ctx, OUT_PV, V->dtype, 4, pvd))) return st;
    int64_t qkd[4] = {p->B, p->Hq, p->Sq, p->T};
    if ((st = onr_set_out(ctx, OUT_QK, Q->dtype, 4, qkd))) return st;
    int want_qk = ctx->n_out > OUT_QK && ctx->out[OUT_QK];

    /* path and scratch */
    p->nt = ctx->nthreads > 1 ? ctx->nthreads : 1;
#define ATT_F32ISH(dt) ((dt) == ONR_FLOAT || (dt) == ONR_FLOAT16 || (dt) == ONR_BFLOAT16)
    p->fast = g_force_path != 1 && !want_qk && ATT_F32ISH(Q->dtype) && ATT_F32ISH(V->dtype) &&
              (!M || M->dtype == ONR_BOOL || ATT_F32ISH(M->dtype)) && p->softmax_precision != ONR_DOUBLE;
#undef ATT_F32ISH
    if (p->fast) {
        att_pick_rowops(p);
        p->bq = g_bq;
        p->bk = g_bk;
        /* enough query tiles for the threads: halve the tile (not below 16)
         * while there are fewer than two tasks per thread. Row results do
         * not depend on the query tiling (each is the same dot products and
         * the same key tiles), so neither do they on the thread count. */
        while (p->bq > 16 && p->B * p->Hq * ((p->Sq + p->bq - 1) / p->bq) < 2 * (int64_t)p->nt) p->bq /= 2;
        /* the same number of tiles, of even sizes: ViT-B/16's 197 queries
         * as 99 + 98, not 128 + 69 (the attention 3 % faster at 2 threads) */
        if (p->Sq > 0) {
            const int64_t ntile = (p->Sq + p->bq - 1) / p->bq;
            p->bq = (p->Sq + ntile - 1) / ntile;
        }
        size_t bq = (size_t)g_bq, bk = (size_t)p->bk; /* scratch for the largest tile */
        size_t n = bk > (size_t)p->Dv ? bk : (size_t)p->Dv, k = bk > (size_t)p->D ? bk : (size_t)p->D;
        size_t off = 0;
        p->ws_off = off;
        off += al64(onr_sgemm_workspace_size(bq, n, k, 1));
        p->s_off = off;
        off += al64(bq * bk * sizeof(float));
        p->m_off = off;
        off += al64(bq * sizeof(float));
        p->l_off = off;
        off += al64(bq * sizeof(float));
        p->r_off = off;
        off += al64(bq * sizeof(int64_t));
        p->thread_bytes = onr_thread_stride(off);
        *scratch_bytes = p->thread_bytes * (size_t)p->nt;
        /* K^T / V slabs, unless they would be huge or read by one query
         * tile only (then the tiles read K and V in place). The K^T row length avoids multiples of 256
         * floats (cache-set aliasing; the SGEMM core then reads B in place) */
        p->tpad = (p->T + 15) / 16 * 16;
        if (p->tpad % 256 == 0) p->tpad += 16;
        p->slab_k = al64((size_t)(p->D * p->tpad) * sizeof(float));
        p->slab_v = al64((size_t)(p->T * p->Dv) * sizeof(float));
        double slab_total = (double)p->B * (double)p->Hkv * (double)(p->slab_k + p->slab_v);
        /* worth it only when several query tiles read the same keys */
        /* (counted with the untuned tile, so that the choice, and the
         * summation order with a past, does not depend on the threads) */
        int64_t readers = p->G * ((p->Sq + g_bq - 1) / g_bq);
        p->slab = p->T > 0 && readers >= 2 && slab_total <= (double)(256u << 20);
        if (p->slab) {
            p->slab_off = *scratch_bytes;
            *scratch_bytes += (size_t)(p->B * p->Hkv) * (p->slab_k + p->slab_v);
        }
        const onr_tensor *src[6] = {Q, K, V, PK, PV, M}; /* slot order, as att_bufs */
        for (int i = 0; i < 7; i++) {
            const onr_tensor *t = i < 6 ? src[i] : Q;
            int64_t numel = i < 6 ? (t ? t->numel : 0) : p->B * p->Hq * p->Sq * p->Dv;
            p->conv[i] = t && t->dtype != ONR_FLOAT && t->dtype != ONR_BOOL;
            p->conv_off[i] = *scratch_bytes;
            if (p->conv[i]) *scratch_bytes += al64((size_t)numel * sizeof(float));
        }
    } else {
        p->thread_bytes = onr_thread_stride((size_t)(p->T > 0 ? p->T : 1) * sizeof(double));
        *scratch_bytes = p->thread_bytes * (size_t)p->nt;
    }
    return ONR_OK;
}

/* ---- present_key / present_value ------------------------------------------- */

/* dst [B, H, P+S, E] = concat(past [B, H, P, E], cur in layout cl). */
static void att_concat(const att_params *p, onr_tensor *dst, const onr_tensor *past, const onr_tensor *cur,
                       att_lay cl, int64_t E)
{
    size_t es = onr_dtype_size(dst->dtype);
    char *d = dst->data;
    const char *ps = past ? past->data : NULL, *cs = cur->data;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t h = 0; h < p->Hkv; h++) {
            char *row = d + (size_t)((b * p->Hkv + h) * p->T * E) * es;
            if (p->P > 0) {
                memcpy(row, ps + (size_t)((b * p->Hkv + h) * p->P * E) * es, (size_t)(p->P * E) * es);
                row += (size_t)(p->P * E) * es;
            }
            for (int64_t s = 0; s < p->Skv; s++, row += (size_t)E * es)
                memcpy(row, cs + (size_t)(cl.o + b * cl.sb + h * cl.sh + s * cl.ss) * es, (size_t)E * es);
        }
}

/* ---- bias ------------------------------------------------------------------ */

/* Keys [0, limit) of row (b, i) are not masked by causality or padding. */
static int64_t att_row_limit(const att_params *p, const int64_t *nonpad, int64_t b, int64_t i)
{
    int64_t lim = p->T;
    if (p->is_causal && i + p->P + 1 < lim) lim = i + p->P + 1;
    if (nonpad && nonpad[b] < lim) lim = nonpad[b] < 0 ? 0 : nonpad[b];
    return lim;
}

/* ---- reference path: full score rows in double ------------------------------ */

static int att_run_ref(const onr_kctx *ctx)
{
    const att_params *p = ctx->params;
    const onr_tensor *Q = ctx->in[IN_Q], *K = ctx->in[IN_K], *V = ctx->in[IN_V];
    const onr_tensor *M = ctx->n_in > IN_MASK ? ctx->in[IN_MASK] : NULL;
    const onr_tensor *PK = ctx->n_in > IN_PK ? ctx->in[IN_PK] : NULL;
    const onr_tensor *PV = ctx->n_in > IN_PV ? ctx->in[IN_PV] : NULL;
    const onr_tensor *NP = ctx->n_in > IN_NONPAD ? ctx->in[IN_NONPAD] : NULL;
    onr_tensor *Y = ctx->out[OUT_Y];
    onr_tensor *QK = ctx->n_out > OUT_QK ? ctx->out[OUT_QK] : NULL;
    const int64_t *nonpad = NP ? NP->data : NULL;
    int64_t rows = p->B * p->Hq * p->Sq;
    double work = (double)rows * (double)p->T * (double)(p->D + p->Dv);
    int nt = p->nt;
    const double sc = p->scale, cap = p->softcap;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int tid = omp_get_thread_num();
        double *s = (double *)((char *)ctx->scratch + (size_t)tid * p->thread_bytes);
        int64_t i = r % p->Sq, h = (r / p->Sq) % p->Hq, b = r / (p->Sq * p->Hq), hk = h / p->G;
        int64_t lim = att_row_limit(p, nonpad, b, i);
        int64_t qo = p->q.o + b * p->q.sb + h * p->q.sh + i * p->q.ss;
        int64_t mo = b * p->msb + h * p->msh + i * p->msq;
        int64_t qko = ((b * p->Hq + h) * p->Sq + i) * p->T;
        double mx = -INFINITY;
        for (int64_t j = 0; j < p->T; j++) {
            double acc = 0;
            for (int64_t d = 0; d < p->D; d++) {
                double kv = j < p->P ? onr_load_f64(PK->dtype, PK->data,
                                                    b * p->pk.sb + hk * p->pk.sh + j * p->pk.ss + d)
                                     : onr_load_f64(K->dtype, K->data,
                                                    p->k.o + b * p->k.sb + hk * p->k.sh + (j - p->P) * p->k.ss + d);
                acc += onr_load_f64(Q->dtype, Q->data, qo + d) * kv;
            }
            double v = sc * acc;
            if (QK && p->qk_mode == 0) onr_set_f64(QK, qko + j, v);
            if (cap > 0) v = cap * tanh(v / cap);
            if (QK && p->qk_mode == 1) onr_set_f64(QK, qko + j, v);
            if (M) {
                if (j >= p->mvalid)
                    v = -INFINITY;
                else if (p->mask_bool)
                    v += ((const uint8_t *)M->data)[mo + j * p->mcs] ? 0.0 : -INFINITY;
                else
                    v += onr_load_f64(M->dtype, M->data, mo + j * p->mcs);
            }
            if (j >= lim) v = -INFINITY;
            if (QK && p->qk_mode == 2) onr_set_f64(QK, qko + j, v);
            s[j] = v;
            if (v > mx) mx = v;
        }
        /* softmax exactly as written: a row of -inf gives NaN (-inf - -inf) */
        double sum = 0;
        for (int64_t j = 0; j < p->T; j++) {
            if (s[j] != s[j]) mx = s[j]; /* NaN anywhere makes the row NaN */
        }
        for (int64_t j = 0; j < p->T; j++) sum += s[j] = exp(s[j] - mx);
        for (int64_t j = 0; j < p->T; j++) {
            s[j] /= sum;
            if (QK && p->qk_mode == 3) onr_set_f64(QK, qko + j, s[j]);
        }
        int64_t yo = b * p->y.sb + h * p->y.sh + i * p->y.ss;
        for (int64_t e = 0; e < p->Dv; e++) {
            double acc = p->T > 0 ? 0 : NAN;
            for (int64_t j = 0; j < p->T; j++) {
                double vv = j < p->P ? onr_load_f64(PV->dtype, PV->data,
                                                    b * p->pv.sb + hk * p->pv.sh + j * p->pv.ss + e)
                                     : onr_load_f64(V->dtype, V->data,
                                                    p->v.o + b * p->v.sb + hk * p->v.sh + (j - p->P) * p->v.ss + e);
                acc += s[j] * vv;
            }
            onr_set_f64(Y, yo + e, acc);
        }
    }
    return ONR_OK;
}

/* ---- float32 streaming path ------------------------------------------------- */

/* The float32 data the streaming kernel reads and writes: the tensors
 * themselves, or float32 copies of 16-bit ones in scratch. */
typedef struct att_bufs {
    const float *q, *k, *v, *pk, *pv;
    const void *mask; /* float32 or bool, NULL: none */
    float *y;
    const int64_t *nonpad;
} att_bufs;

/* Keys (or values) of (b, kv head hk) are the past tensor's P rows, then
 * the new tensor's: the row of position j, and (with c1/ld) the run of rows
 * from j that lie in the same tensor, up to `end`, and its row stride. */
static const float *kv_rows(const att_params *p, const float *past, const att_lay *pl,
                            const float *cur, const att_lay *cl, int64_t b, int64_t hk, int64_t j,
                            int64_t end, int64_t *c1, size_t *ld)
{
    int in_past = j < p->P;
    if (c1) *c1 = in_past && p->P < end ? p->P : end;
    if (ld) *ld = (size_t)(in_past ? pl->ss : cl->ss);
    return in_past ? past + b * pl->sb + hk * pl->sh + j * pl->ss
                   : cur + b * cl->sb + hk * cl->sh + (j - p->P) * cl->ss;
}

/* One (b, h, query tile [i0, i0+nq)) task. */
static void att_tile_f32(const onr_kctx *ctx, const att_params *p, const att_bufs *bf, char *ws, int64_t b,
                         int64_t h, int64_t i0, int64_t nq)
{
    const float *Q = bf->q, *K = bf->k, *V = bf->v, *PK = bf->pk, *PV = bf->pv;
    const void *Mt = bf->mask;
    const int64_t *nonpad = bf->nonpad;
    float *Y = bf->y;
    void *gws = ws + p->ws_off;
    float *S = (float *)(ws + p->s_off), *mrow = (float *)(ws + p->m_off), *lrow = (float *)(ws + p->l_off);
    int64_t *lim = (int64_t *)(ws + p->r_off);
    const int64_t hk = h / p->G, bk = p->bk;
    const size_t D = (size_t)p->D, Dv = (size_t)p->Dv;
    const float cap = p->softcap;
    const float *q = Q + b * p->q.sb + h * p->q.sh + i0 * p->q.ss;
    float *y = Y + b * p->y.sb + h * p->y.sh + i0 * p->y.ss;
    const size_t ldq = (size_t)p->q.ss, ldy = (size_t)p->y.ss;
    const float *kslab = NULL, *vslab = NULL;
    if (p->slab) {
        const char *sl = (const char *)ctx->scratch + p->slab_off + (size_t)(b * p->Hkv + hk) * (p->slab_k + p->slab_v);
        kslab = (const float *)sl;
        vslab = (const float *)(sl + p->slab_k);
    }
    int64_t kmax = 0;
    for (int64_t r = 0; r < nq; r++) {
        lim[r] = att_row_limit(p, nonpad, b, i0 + r);
        if (Mt && p->mvalid < lim[r]) lim[r] = p->mvalid;
        if (lim[r] > kmax) kmax = lim[r];
        mrow[r] = -INFINITY;
        lrow[r] = 0.f;
    }
    if (kmax == 0) { /* no key reachable (every score -inf): NaN rows, as the spec's softmax */
        for (int64_t r = 0; r < nq; r++)
            for (size_t e = 0; e < Dv; e++) y[r * ldy + e] = NAN;
        return;
    }
    for (int64_t j0 = 0; j0 < kmax; j0 += bk) {
        int64_t nk = kmax - j0 < bk ? kmax - j0 : bk;
        /* S = scale * Q_tile . K_tile^T, keys from past then new */
        if (kslab) {
            if (D > 0)
                onr_sgemm(0, 0, (size_t)nq, (size_t)nk, D, p->scale, q, ldq, kslab + j0, (size_t)p->tpad,
                          0.f, S, (size_t)bk, NULL, gws, 1);
            else
                for (int64_t r = 0; r < nq; r++)
                    for (int64_t c = 0; c < nk; c++) S[r * bk + c] = 0.f;
        }
        for (int64_t c0 = kslab ? j0 + nk : j0; c0 < j0 + nk;) {
            int64_t c1;
            size_t ldk;
            const float *kp = kv_rows(p, PK, &p->pk, K, &p->k, b, hk, c0, j0 + nk, &c1, &ldk);
            if (D > 0)
                onr_sgemm(0, 1, (size_t)nq, (size_t)(c1 - c0), D, p->scale, q, ldq, kp, ldk, 0.f,
                          S + (c0 - j0), (size_t)bk, NULL, gws, 1);
            else
                for (int64_t r = 0; r < nq; r++)
                    for (int64_t c = c0; c < c1; c++) S[r * bk + (c - j0)] = 0.f;
            c0 = c1;
        }
        /* softcap, bias, online softmax */
        for (int64_t r = 0; r < nq; r++) {
            float *s = S + r * bk;
            float *yr = y + r * ldy;
            int64_t nv = lim[r] - j0 < nk ? lim[r] - j0 : nk; /* keys of the row in this tile */
            float mx = -INFINITY;
            if (nv > 0) {
                if (cap > 0)
                    for (int64_t c = 0; c < nv; c++) s[c] = cap * tanhf(s[c] / cap);
                const float *madd = NULL;
                if (Mt) {
                    int64_t mo = b * p->msb + h * p->msh + (i0 + r) * p->msq;
                    if (p->mask_bool) {
                        const uint8_t *mk = (const uint8_t *)Mt + mo;
                        for (int64_t c = 0; c < nv; c++)
                            if (!mk[(j0 + c) * p->mcs]) s[c] = -INFINITY;
                    } else if (p->mcs == 1) {
                        madd = (const float *)Mt + mo + j0;
                    } else {
                        float mv = ((const float *)Mt)[mo];
                        for (int64_t c = 0; c < nv; c++) s[c] += mv;
                    }
                }
                mx = p->bias_max(s, madd, nv, mrow[r]);
            }
            if (mx == -INFINITY) { /* nothing reachable yet: P row of 0 */
                memset(s, 0, (size_t)nk * sizeof(float));
                continue;
            }
            float alpha = mrow[r] == -INFINITY ? 0.f : onr_att_exp(mrow[r] - mx);
            float sum = p->exp_sum(s, nv, mx);
            if (nv < nk) memset(s + nv, 0, (size_t)(nk - nv) * sizeof(float));
            lrow[r] = lrow[r] * alpha + sum;
            mrow[r] = mx;
            if (j0 > 0 && alpha != 1.f)
                for (size_t e = 0; e < Dv; e++) yr[e] *= alpha;
        }
        /* Y_tile += P . V_tile */
        if (vslab && Dv > 0) /* the first product overwrites Y (rows with P = 0 get 0) */
            onr_sgemm(0, 0, (size_t)nq, Dv, (size_t)nk, 1.f, S, (size_t)bk, vslab + j0 * (int64_t)Dv, Dv,
                      j0 == 0 ? 0.f : 1.f, y, ldy, NULL, gws, 1);
        for (int64_t c0 = vslab ? j0 + nk : j0; c0 < j0 + nk;) {
            int64_t c1;
            size_t ldv;
            const float *vp = kv_rows(p, PV, &p->pv, V, &p->v, b, hk, c0, j0 + nk, &c1, &ldv);
            if (Dv > 0) /* the first product overwrites Y (rows with P = 0 get 0) */
                onr_sgemm(0, 0, (size_t)nq, Dv, (size_t)(c1 - c0), 1.f, S + (c0 - j0), (size_t)bk, vp, ldv,
                          j0 == 0 && c0 == 0 ? 0.f : 1.f, y, ldy, NULL, gws, 1);
            c0 = c1;
        }
    }
    for (int64_t r = 0; r < nq; r++) {
        float *yr = y + r * ldy;
        float inv = lrow[r] > 0.f ? 1.f / lrow[r] : NAN; /* 0: every score -inf */
        for (size_t e = 0; e < Dv; e++) yr[e] *= inv;
    }
}

/* The K^T and V slabs of (b, kv head hk). */
static void att_build_slab(const onr_kctx *ctx, const att_params *p, const att_bufs *bf, int64_t b, int64_t hk)
{
    const float *K = bf->k, *V = bf->v;
    char *sl = (char *)ctx->scratch + p->slab_off + (size_t)(b * p->Hkv + hk) * (p->slab_k + p->slab_v);
    float *kt = (float *)sl, *vs = (float *)(sl + p->slab_k);
    const int64_t D = p->D, Dv = p->Dv, tp = p->tpad;
    /* K^T in blocks of 16 keys: 16 source rows read, D rows of 16 written */
    for (int64_t j0 = 0; j0 < p->T; j0 += 16) {
        int64_t nj = p->T - j0 < 16 ? p->T - j0 : 16;
        const float *src[16];
        for (int64_t j = 0; j < nj; j++)
            src[j] = kv_rows(p, bf->pk, &p->pk, K, &p->k, b, hk, j0 + j, 0, NULL, NULL);
        if (nj == 16 && p->kt16) { /* ViT-B/16's 197 keys of 64: Attention alone 0.87 -> 0.78 ms */
            p->kt16(src, D, kt + j0, (size_t)tp);
            continue;
        }
        for (int64_t d = 0; d < D; d++)
            for (int64_t j = 0; j < nj; j++) kt[d * tp + j0 + j] = src[j][d];
    }
    for (int64_t j = 0; j < p->T; j++) {
        const float *src = kv_rows(p, bf->pv, &p->pv, V, &p->v, b, hk, j, 0, NULL, NULL);
        memcpy(vs + j * Dv, src, (size_t)Dv * sizeof(float));
    }
}

static int att_run_f32(const onr_kctx *ctx)
{
    const att_params *p = ctx->params;
    const int order[6] = {IN_Q, IN_K, IN_V, IN_PK, IN_PV, IN_MASK}; /* the conv slots */
    const onr_tensor *src[6];
    for (int i = 0; i < 6; i++) src[i] = order[i] < ctx->n_in ? ctx->in[order[i]] : NULL;
    const void *buf[7];
    for (int i = 0; i < 7; i++) {
        const onr_tensor *t = i < 6 ? src[i] : NULL;
        if (p->conv[i]) {
            float *dst = (float *)((char *)ctx->scratch + p->conv_off[i]);
            if (t) onr_la_to_f32(t, dst, p->nt);
            buf[i] = dst;
        } else {
            buf[i] = i < 6 ? (t ? t->data : NULL) : ctx->out[OUT_Y]->data;
        }
    }
    /* a packed Q, K or V starts at its column (the layouts' o) */
    buf[0] = (const float *)buf[0] + p->q.o;
    buf[1] = (const float *)buf[1] + p->k.o;
    buf[2] = (const float *)buf[2] + p->v.o;
    const onr_tensor *NP = ctx->n_in > IN_NONPAD ? ctx->in[IN_NONPAD] : NULL;
    att_bufs bfs = {buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], (float *)buf[6], NP ? NP->data : NULL};
    const att_bufs *bf = &bfs;
    if (p->slab) {
        int64_t n = p->B * p->Hkv;
        double sw = (double)n * (double)p->T * (double)(p->D + p->Dv);
        int snt = p->nt;
#pragma omp parallel for num_threads(onr_team(snt)) if (sw > ONR_PAR_MIN && snt > 1 && n > 1) schedule(static)
        for (int64_t t = 0; t < n; t++) att_build_slab(ctx, p, bf, t / p->Hkv, t % p->Hkv);
    }
    int64_t ntile = (p->Sq + p->bq - 1) / p->bq;
    int64_t tasks = p->B * p->Hq * ntile;
    double work = (double)p->B * p->Hq * p->Sq * (double)p->T * (double)(p->D + p->Dv);
    int nt = p->nt;
#pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1 && tasks > 1) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        int tid = omp_get_thread_num();
        char *ws = (char *)ctx->scratch + (size_t)tid * p->thread_bytes;
        int64_t qt = t % ntile, h = (t / ntile) % p->Hq, b = t / (ntile * p->Hq);
        int64_t i0 = qt * p->bq, nq = p->Sq - i0 < p->bq ? p->Sq - i0 : p->bq;
        att_tile_f32(ctx, p, bf, ws, b, h, i0, nq);
    }
    if (p->conv[6]) onr_la_from_f32(ctx->out[OUT_Y], bfs.y, p->nt);
    return ONR_OK;
}

static int att_run(const onr_kctx *ctx)
{
    const att_params *p = ctx->params;
    const onr_tensor *K = ctx->in[IN_K], *V = ctx->in[IN_V];
    const onr_tensor *PK = ctx->n_in > IN_PK ? ctx->in[IN_PK] : NULL;
    const onr_tensor *PV = ctx->n_in > IN_PV ? ctx->in[IN_PV] : NULL;
    if (ctx->n_out > OUT_PK && ctx->out[OUT_PK]) att_concat(p, ctx->out[OUT_PK], PK, K, p->k, p->D);
    if (ctx->n_out > OUT_PV && ctx->out[OUT_PV]) att_concat(p, ctx->out[OUT_PV], PV, V, p->v, p->Dv);
    if (p->B * p->Hq * p->Sq == 0) return ONR_OK;
    return p->fast ? att_run_f32(ctx) : att_run_ref(ctx);
}

const onr_op_impl onr_impl_attention = {
    .create = att_create,
    .reshape = att_reshape,
    .run = att_run,
    .params_size = sizeof(att_params),
    .types = ONR_TYPES_FLOAT,
};
