/* test_ops_attention.c - Attention (opsets 23, 24): hand-checked values, the
 * float32 streaming kernel against the plain-C reference path at tile edges
 * (query and key lengths independently), every mask broadcast shape, bool
 * and float masks, causal with S_q != S_kv and with a past, grouped-query
 * heads, V head size != Q head size, past/present, nonpad_kv_seqlen, the
 * qk_matmul_output modes, fully masked rows, 16-bit types, thread-count
 * independence, error cases.
 *
 * With ONR_ATT_BENCH=1 in the environment, main runs a benchmark instead of
 * the tests: the fused op against MatMul -> Add -> Softmax -> MatMul run
 * through the real operators, outputs reused across runs (BERT-base and
 * causal GPT-2 shapes, plus a decode step against the reference path; 1
 * thread unless ONR_ATT_BENCH_THREADS; medians of interleaved repeats).
 * ONR_ATT_BENCH_SHAPE=0..3 picks one shape, ONR_ATT_BENCH_REPS the repeats,
 * ONR_ATT_TILES=BQ,BK the tiles. ctest never sets them. */
#include "kutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm/gemm.h"
#include "ops/attention-simd.h"
#include "ops/attention.h"

/* One Attention call. */
typedef struct att_case {
    int opset;
    int rank;                  /* 3 or 4 (Q, K, V) */
    int64_t B, Hq, Hkv, Sq, Skv, P, D, Dv;
    int causal;
    float scale;               /* 0: attribute absent */
    float softcap;
    int mask;                  /* 0 none, 1 float, 2 bool */
    int mrank;                 /* mask dims, right-aligned to [B, Hq, Sq, T] */
    int64_t mdims[4];
    int nonpad;                /* opset 24: give nonpad_kv_seqlen */
    int64_t nonpad_v[8];
    int want_present, qk_mode; /* qk_mode -1: no qk output */
    int heads_attr_4d;         /* 4-D inputs with the head attributes too */
    uint32_t seed;
} att_case;

typedef struct att_out {
    onr_tensor *y, *pk, *pv, *qk;
} att_out;

static onr_tensor *rand_mask(const att_case *c, uint32_t seed)
{
    int64_t n = 1;
    for (int d = 0; d < c->mrank; d++) n *= c->mdims[d];
    if (c->mask == 2) {
        uint8_t *v = malloc((size_t)n);
        assert_non_null(v);
        uint32_t s = seed * 2654435761u + 1;
        for (int64_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            v[i] = (s >> 24) % 5 != 0; /* 80% attend */
        }
        onr_tensor *t = tk_bool(c->mrank, c->mdims, v);
        free(v);
        return t;
    }
    onr_tensor *t = tk_rand_f32(c->mrank, c->mdims, seed);
    float *f = t->data;
    for (int64_t i = 0; i < n; i++) {
        f[i] *= 2.f;
        /* BERT-style "masked" keys; not where a whole row gets -10000 (then
         * every score of the row loses ~1e-3 to float rounding, the
         * unfused float32 graph's behaviour too, and the double reference
         * differs by that much) */
        if (i % 7 == 3 && c->mdims[c->mrank - 1] > 1) f[i] = -10000.f;
        if (i % 11 == 5) f[i] = -INFINITY;
    }
    return t;
}

/* Inputs for c; in[0..7) (NULL = omitted); returns the count. */
static int make_inputs(const att_case *c, onr_tensor **in)
{
    int64_t qd[4], kd[4], vd[4];
    if (c->rank == 3) {
        qd[0] = c->B, qd[1] = c->Sq, qd[2] = c->Hq * c->D;
        kd[0] = c->B, kd[1] = c->Skv, kd[2] = c->Hkv * c->D;
        vd[0] = c->B, vd[1] = c->Skv, vd[2] = c->Hkv * c->Dv;
    } else {
        qd[0] = c->B, qd[1] = c->Hq, qd[2] = c->Sq, qd[3] = c->D;
        kd[0] = c->B, kd[1] = c->Hkv, kd[2] = c->Skv, kd[3] = c->D;
        vd[0] = c->B, vd[1] = c->Hkv, vd[2] = c->Skv, vd[3] = c->Dv;
    }
    for (int i = 0; i < 7; i++) in[i] = NULL;
    in[0] = tk_rand_f32(c->rank, qd, c->seed * 10 + 1);
    in[1] = tk_rand_f32(c->rank, kd, c->seed * 10 + 2);
    in[2] = tk_rand_f32(c->rank, vd, c->seed * 10 + 3);
    /* larger scores so the softmax is not flat */
    float *q = in[0]->data;
    for (int64_t i = 0; i < in[0]->numel; i++) q[i] *= 3.f;
    int n = 3;
    if (c->mask) {
        in[3] = rand_mask(c, c->seed * 10 + 4);
        n = 4;
    }
    if (c->P > 0) {
        int64_t pkd[4] = {c->B, c->Hkv, c->P, c->D}, pvd[4] = {c->B, c->Hkv, c->P, c->Dv};
        in[4] = tk_rand_f32(4, pkd, c->seed * 10 + 5);
        in[5] = tk_rand_f32(4, pvd, c->seed * 10 + 6);
        n = 6;
    }
    if (c->nonpad) {
        int64_t bd[1] = {c->B};
        in[6] = tk_i64(1, bd, c->nonpad_v);
        n = 7;
    }
    return n;
}

static onr_node *make_node(const att_case *c)
{
    onr_node *n = tk_node("Attention");
    if (c->rank == 3 || c->heads_attr_4d) {
        tk_attr_int(n, "q_num_heads", c->Hq);
        tk_attr_int(n, "kv_num_heads", c->Hkv);
    }
    if (c->causal) tk_attr_int(n, "is_causal", 1);
    if (c->scale != 0.f) tk_attr_float(n, "scale", c->scale);
    if (c->softcap != 0.f) tk_attr_float(n, "softcap", c->softcap);
    if (c->qk_mode >= 0) tk_attr_int(n, "qk_matmul_output_mode", c->qk_mode);
    return n;
}

/* Run node n on in with the chosen outputs; path as onr_attention_force_path. */
static onr_status run_node(onr_node *n, int opset, onr_tensor **in, int n_in, int present, int qk,
                           int path, int nthreads, att_out *o, onr_err *err)
{
    memset(o, 0, sizeof *o);
    onr_tensor *out[4] = {NULL, NULL, NULL, NULL};
    out[0] = o->y = calloc(1, sizeof(onr_tensor));
    if (present) {
        out[1] = o->pk = calloc(1, sizeof(onr_tensor));
        out[2] = o->pv = calloc(1, sizeof(onr_tensor));
    }
    if (qk) out[3] = o->qk = calloc(1, sizeof(onr_tensor));
    int n_out = qk ? 4 : present ? 3 : 1;
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    const onr_op *op = onr_op_find(n->domain, n->op_type, opset);
    assert_non_null(op);
    uint8_t cst[8] = {0};
    int old = onr_attention_force_path(path);
    onr_status st = onr_exec_node(n, op, opset, in, n_in, cst, out, n_out, nthreads, NULL, err);
    onr_attention_force_path(old);
    return st;
}

static void free_out(att_out *o)
{
    onr_tensor_free(o->y);
    onr_tensor_free(o->pk);
    onr_tensor_free(o->pv);
    onr_tensor_free(o->qk);
    memset(o, 0, sizeof *o);
}

static att_out run_case(const att_case *c, int path, int nthreads)
{
    onr_tensor *in[7];
    int n_in = make_inputs(c, in);
    onr_node *n = make_node(c);
    att_out o;
    onr_err err = {0};
    onr_status st = run_node(n, c->opset ? c->opset : 23, in, n_in, c->want_present, c->qk_mode >= 0,
                             path, nthreads, &o, &err);
    if (st != ONR_OK) fail_msg("Attention failed: %s", err.msg);
    tk_free_all(7, in);
    tk_node_free(n);
    return o;
}

static void assert_close(const onr_tensor *got, const onr_tensor *want, float rtol, float atol)
{
    assert_int_equal(got->rank, want->rank);
    for (int d = 0; d < got->rank; d++) assert_int_equal(got->dims[d], want->dims[d]);
    tk_assert_close_f32(got, want->data, want->numel, rtol, atol);
}

/* Streaming kernel vs reference, 1 and 2 threads; 1 and 2 threads must agree
 * exactly. */
static void check_case(const att_case *c)
{
    att_out ref = run_case(c, 1, 1);
    att_out f1 = run_case(c, 0, 1);
    att_out f2 = run_case(c, 0, 2);
    assert_close(f1.y, ref.y, 1e-4f, 1e-5f);
    assert_int_equal(f2.y->numel, f1.y->numel);
    if (memcmp(f1.y->data, f2.y->data, (size_t)f1.y->numel * sizeof(float)) != 0)
        fail_msg("1 and 2 threads differ (Sq %lld Skv %lld)", (long long)c->Sq, (long long)c->Skv);
    if (c->want_present) {
        assert_close(f1.pk, ref.pk, 0, 0);
        assert_close(f1.pv, ref.pv, 0, 0);
    }
    free_out(&ref);
    free_out(&f1);
    free_out(&f2);
}

static att_case base3(int64_t sq, int64_t skv)
{
    att_case c = {0};
    c.opset = 23;
    c.rank = 3;
    c.B = 1, c.Hq = 2, c.Hkv = 2, c.Sq = sq, c.Skv = skv, c.D = 8, c.Dv = 8;
    c.qk_mode = -1;
    c.seed = (uint32_t)(sq * 1000 + skv);
    return c;
}

/* ---- hand-checked ------------------------------------------------------------ */

static void test_hand(void **state)
{
    (void)state;
    /* B=1, H=1, Sq=1, Skv=2, D=2: q=(1,0), k0=(1,0), k1=(0,1), scale 1:
     * scores (1, 0); p = (e/(e+1), 1/(e+1)); v0=(1,2), v1=(3,4) */
    int64_t qd[4] = {1, 1, 1, 2}, kd[4] = {1, 1, 2, 2};
    float qv[] = {1, 0}, kv[] = {1, 0, 0, 1}, vv[] = {1, 2, 3, 4};
    for (int path = 0; path < 2; path++) {
        onr_tensor *in[3] = {tk_f32(4, qd, qv), tk_f32(4, kd, kv), tk_f32(4, kd, vv)};
        onr_node *n = tk_node("Attention");
        tk_attr_float(n, "scale", 1.f);
        att_out o;
        onr_err err = {0};
        assert_int_equal(run_node(n, 23, in, 3, 0, 0, path, 1, &o, &err), ONR_OK);
        double e = exp(1.0), p0 = e / (e + 1), p1 = 1 / (e + 1);
        float want[2] = {(float)(p0 * 1 + p1 * 3), (float)(p0 * 2 + p1 * 4)};
        int64_t yd[4] = {1, 1, 1, 2};
        tk_assert_shape(o.y, 4, yd);
        tk_assert_close_f32(o.y, want, 2, 1e-5f, 1e-6f);
        free_out(&o);
        tk_free_all(3, in);
        tk_node_free(n);
    }
    /* default scale 1/sqrt(D): D=4, q = k = (1,1,1,1): score 4/2 = 2 vs k1 = 0 */
    int64_t qd2[4] = {1, 1, 1, 4}, kd2[4] = {1, 1, 2, 4}, vd2[4] = {1, 1, 2, 1};
    float q2[] = {1, 1, 1, 1}, k2[] = {1, 1, 1, 1, 0, 0, 0, 0}, v2[] = {1, 0};
    onr_tensor *in[3] = {tk_f32(4, qd2, q2), tk_f32(4, kd2, k2), tk_f32(4, vd2, v2)};
    onr_node *n = tk_node("Attention");
    att_out o;
    onr_err err = {0};
    assert_int_equal(run_node(n, 23, in, 3, 0, 0, 0, 1, &o, &err), ONR_OK);
    float want = (float)(exp(2.0) / (exp(2.0) + 1));
    tk_assert_close_f32(o.y, &want, 1, 1e-5f, 1e-6f);
    free_out(&o);
    tk_free_all(3, in);
    tk_node_free(n);
}

/* ---- tile edges ---------------------------------------------------------------- */

/* The slabs' K^T transpose of 16 keys (AVX-512) against element by
 * element: head sizes around and past whole 16 x 16 blocks, rows of
 * scattered addresses (past and new keys), a row stride wider than 16. */
static void test_kt16(void **state)
{
    (void)state;
    if (!onr_cpu_supports("avx512")) skip();
    static float rows[16][100], got[100 * 40], want[100 * 40];
    for (int j = 0; j < 16; j++)
        for (int d = 0; d < 100; d++) rows[j][d] = (float)(j * 1000 + d);
    const float *src[16];
    for (int j = 0; j < 16; j++) src[j] = rows[(j * 7) % 16];
    const int64_t Ds[] = {1, 15, 16, 17, 32, 64, 80, 100};
    for (size_t i = 0; i < sizeof Ds / sizeof Ds[0]; i++) {
        const size_t ld = 40;
        for (size_t e = 0; e < sizeof got / sizeof got[0]; e++) got[e] = want[e] = -1.f;
        for (int64_t d = 0; d < Ds[i]; d++)
            for (int j = 0; j < 16; j++) want[(size_t)d * ld + 3 + (size_t)j] = src[j][d];
        onr_att_kt16_avx512(src, Ds[i], got + 3, ld);
        assert_memory_equal(got, want, sizeof got);
    }
}

static void test_tile_edges_small_tiles(void **state)
{
    (void)state;
    int obq, obk;
    onr_attention_get_tiles(&obq, &obk);
    onr_attention_set_tiles(16, 32);
    /* every row-op variant the CPU has */
    const char *isas[] = {"ref", "avx2", "avx512", NULL};
    for (int v = 0; v < 4; v++) {
        if (isas[v] && onr_attention_force_isa(isas[v]) != 0) continue;
        if (!isas[v]) onr_attention_force_isa(NULL);
    const int64_t qs[] = {1, 2, 15, 16, 17, 33};
    const int64_t ks[] = {1, 2, 31, 32, 33, 65};
    for (size_t a = 0; a < sizeof qs / sizeof qs[0]; a++)
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
            att_case c = base3(qs[a], ks[b]);
            c.mask = 1;
            c.mrank = 4;
            c.mdims[0] = 1, c.mdims[1] = 1, c.mdims[2] = 1, c.mdims[3] = ks[b];
            check_case(&c);
            att_case d = base3(qs[a], ks[b]);
            d.causal = 1;
            check_case(&d);
        }
    }
    onr_attention_set_tiles(obq, obk);
}

static void test_tile_edges_default_tiles(void **state)
{
    (void)state;
    int bq, bk;
    onr_attention_get_tiles(&bq, &bk);
    const int64_t qs[] = {1, 2, bq - 1, bq, bq + 1, 127, 128, 129};
    const int64_t ks[] = {1, 2, bk - 1, bk, bk + 1, 127, 128, 129};
    for (size_t a = 0; a < sizeof qs / sizeof qs[0]; a++)
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
            att_case c = base3(qs[a], ks[b]);
            c.mask = 1;
            c.mrank = 4;
            c.mdims[0] = 1, c.mdims[1] = 1, c.mdims[2] = qs[a], c.mdims[3] = ks[b];
            c.causal = (a + b) % 2;
            check_case(&c);
        }
    /* 1000 each way */
    const int64_t big[][2] = {{1000, 1000}, {1, 1000}, {1000, 1}, {129, 1000}, {1000, 127}};
    for (size_t a = 0; a < sizeof big / sizeof big[0]; a++) {
        att_case c = base3(big[a][0], big[a][1]);
        c.Hq = c.Hkv = 1;
        c.causal = a % 2 == 0;
        if (a >= 3) {
            c.mask = 1;
            c.mrank = 2;
            c.mdims[0] = big[a][0], c.mdims[1] = big[a][1];
        }
        check_case(&c);
    }
}

/* ---- masks ------------------------------------------------------------------- */

static void test_mask_shapes(void **state)
{
    (void)state;
    const int64_t B = 2, Hq = 4, Sq = 9, Skv = 13;
    /* every broadcast shape of [B, Hq, Sq, T], rank 1..4 */
    const int64_t shapes[][5] = {
        {1, Skv},         {2, Sq, Skv},      {2, 1, Skv},       {3, Hq, Sq, Skv}, {3, Hq, 1, Skv},
        {3, 1, Sq, Skv},  {4, B, 1, 1, Skv}, {4, B, 1, Sq, Skv}, {4, B, Hq, Sq, Skv},
        {4, 1, Hq, 1, Skv}, {4, B, Hq, 1, Skv}, {4, 1, 1, 1, Skv}, {2, Sq, 1},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int kind = 1; kind <= 2; kind++)
            for (int causal = 0; causal < 2; causal++) {
                att_case c = base3(Sq, Skv);
                c.B = B, c.Hq = Hq, c.Hkv = 2;
                c.mask = kind;
                c.causal = causal;
                c.mrank = (int)shapes[s][0];
                for (int d = 0; d < c.mrank; d++) c.mdims[d] = shapes[s][1 + d];
                c.seed = (uint32_t)(s * 4 + kind * 2 + causal);
                check_case(&c);
            }
}

/* opset 24: a mask shorter than the keys masks the rest. */
static void test_mask_short_opset24(void **state)
{
    (void)state;
    att_case c = base3(5, 12);
    c.opset = 24;
    c.mask = 1;
    c.mrank = 2;
    c.mdims[0] = 5, c.mdims[1] = 7;
    check_case(&c);
    /* the reference agrees with a full-length mask whose tail is -inf */
    att_out a = run_case(&c, 1, 1);
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    int64_t md[2] = {5, 12};
    onr_tensor *full = tk_rand_f32(2, md, 1);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 12; j++)
            ((float *)full->data)[i * 12 + j] = j < 7 ? ((float *)in[3]->data)[i * 7 + j] : -INFINITY;
    onr_tensor_free(in[3]);
    in[3] = full;
    onr_node *n = make_node(&c);
    att_out b;
    onr_err err = {0};
    assert_int_equal(run_node(n, 23, in, n_in, 0, 0, 1, 1, &b, &err), ONR_OK);
    assert_close(a.y, b.y, 1e-6f, 1e-7f);
    /* at opset 23 the short mask is an error */
    onr_tensor_free(in[3]);
    in[3] = rand_mask(&c, 3);
    att_out e;
    assert_int_equal(run_node(n, 23, in, n_in, 0, 0, 0, 1, &e, &err), ONR_E_MODEL);
    free_out(&e);
    free_out(&a);
    free_out(&b);
    tk_free_all(7, in);
    tk_node_free(n);
}

/* ---- causal, GQA, layouts, past --------------------------------------------- */

static void test_causal_gqa_past(void **state)
{
    (void)state;
    const int64_t hk[] = {1, 2, 3, 6};
    for (int rank = 3; rank <= 4; rank++)
        for (size_t g = 0; g < sizeof hk / sizeof hk[0]; g++)
            for (int64_t P = 0; P <= 37; P += 37)
                for (int s = 0; s < 3; s++) {
                    const int64_t sq[] = {1, 20, 70}, skv[] = {1, 45, 70};
                    att_case c = base3(sq[s], skv[s]);
                    c.rank = rank;
                    c.B = 2, c.Hq = 6, c.Hkv = hk[g], c.D = 16, c.Dv = 24;
                    c.P = P;
                    c.causal = 1;
                    c.want_present = 1;
                    c.seed = (uint32_t)(rank * 100 + g * 10 + (size_t)s + (uint32_t)P);
                    check_case(&c);
                    c.causal = 0;
                    c.mask = 2;
                    c.mrank = 4;
                    c.mdims[0] = 2, c.mdims[1] = 1, c.mdims[2] = c.Sq, c.mdims[3] = P + c.Skv;
                    check_case(&c);
                }
}

/* Causal alignment: query i sees keys j <= i + P; checked against a bool mask
 * built that way. */
static void test_causal_alignment(void **state)
{
    (void)state;
    const int64_t cases[][3] = {{3, 7, 0}, {7, 3, 0}, {4, 4, 5}, {1, 1, 9}, {6, 2, 3}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        att_case c = base3(cases[k][0], cases[k][1]);
        c.P = cases[k][2];
        c.causal = 1;
        c.seed = (uint32_t)k + 77;
        onr_tensor *in[7];
        int n_in = make_inputs(&c, in);
        onr_node *n = make_node(&c);
        att_out a, b;
        onr_err err = {0};
        for (int path = 0; path < 2; path++) {
            assert_int_equal(run_node(n, 23, in, n_in, 0, 0, path, 1, &a, &err), ONR_OK);
            /* same inputs, no causal attribute, explicit lower-triangular mask */
            att_case d = c;
            d.causal = 0;
            onr_node *n2 = make_node(&d);
            int64_t T = c.P + c.Skv, md[2] = {c.Sq, T};
            uint8_t *mv = malloc((size_t)(c.Sq * T));
            for (int64_t i = 0; i < c.Sq; i++)
                for (int64_t j = 0; j < T; j++) mv[i * T + j] = j <= i + c.P;
            onr_tensor *in2[7];
            memcpy(in2, in, sizeof in2);
            in2[3] = tk_bool(2, md, mv);
            assert_int_equal(run_node(n2, 23, in2, 6 > n_in ? 6 : n_in, 0, 0, path, 1, &b, &err), ONR_OK);
            /* rows with no visible key are NaN in both */
            assert_close(a.y, b.y, 1e-5f, 1e-6f);
            onr_tensor_free(in2[3]);
            free(mv);
            free_out(&a);
            free_out(&b);
            tk_node_free(n2);
        }
        tk_free_all(7, in);
        tk_node_free(n);
    }
}

/* Q 3-D with K/V 4-D (ranks may differ): same result as all 4-D, Y 3-D. */
static void test_mixed_ranks(void **state)
{
    (void)state;
    att_case c = base3(5, 7);
    c.rank = 4;
    c.Hq = 4, c.Hkv = 2, c.Dv = 6;
    c.causal = 1;
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    int64_t q3d[3] = {1, 5, 4 * 8};
    onr_tensor *q3 = tk_rand_f32(3, q3d, 1);
    const float *q4 = in[0]->data;
    for (int h = 0; h < 4; h++)
        for (int sq = 0; sq < 5; sq++)
            for (int d = 0; d < 8; d++) ((float *)q3->data)[sq * 32 + h * 8 + d] = q4[(h * 5 + sq) * 8 + d];
    for (int path = 0; path < 2; path++) {
        onr_node *n4 = make_node(&c);
        att_out a, b;
        onr_err err = {0};
        assert_int_equal(run_node(n4, 23, in, n_in, 0, 0, path, 1, &a, &err), ONR_OK);
        onr_node *n3 = make_node(&c);
        tk_attr_int(n3, "q_num_heads", 4);
        tk_attr_int(n3, "kv_num_heads", 2);
        onr_tensor *in3[7];
        memcpy(in3, in, sizeof in3);
        in3[0] = q3;
        assert_int_equal(run_node(n3, 23, in3, n_in, 0, 0, path, 1, &b, &err), ONR_OK);
        int64_t yd[3] = {1, 5, 4 * 6};
        tk_assert_shape(b.y, 3, yd);
        const float *y4 = a.y->data, *y3 = b.y->data;
        for (int h = 0; h < 4; h++)
            for (int sq = 0; sq < 5; sq++)
                for (int e = 0; e < 6; e++)
                    assert_float_equal(y3[sq * 24 + h * 6 + e], y4[(h * 5 + sq) * 6 + e], 1e-6);
        free_out(&a);
        free_out(&b);
        tk_node_free(n4);
        tk_node_free(n3);
    }
    onr_tensor_free(q3);
    tk_free_all(7, in);
}

/* present_key/present_value are exact concatenations in 4-D. */
static void test_present(void **state)
{
    (void)state;
    att_case c = base3(3, 4);
    c.Hkv = 1;
    c.P = 2;
    c.Dv = 5;
    c.want_present = 1;
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    onr_node *n = make_node(&c);
    att_out o;
    onr_err err = {0};
    assert_int_equal(run_node(n, 23, in, n_in, 1, 0, 0, 1, &o, &err), ONR_OK);
    int64_t pkd[4] = {1, 1, 6, 8}, pvd[4] = {1, 1, 6, 5};
    tk_assert_shape(o.pk, 4, pkd);
    tk_assert_shape(o.pv, 4, pvd);
    const float *pk = o.pk->data, *past = in[4]->data, *k = in[1]->data;
    for (int j = 0; j < 6; j++)
        for (int d = 0; d < 8; d++) {
            float want = j < 2 ? past[j * 8 + d] : k[(j - 2) * 8 + d];
            assert_true(pk[j * 8 + d] == want);
        }
    free_out(&o);
    tk_free_all(7, in);
    tk_node_free(n);
    /* no past: present is K/V in 4-D (transposed from 3-D) */
    att_case d = base3(2, 3);
    d.Hq = d.Hkv = 2;
    d.want_present = 1;
    n_in = make_inputs(&d, in);
    n = make_node(&d);
    assert_int_equal(run_node(n, 23, in, n_in, 1, 0, 0, 1, &o, &err), ONR_OK);
    const float *kk = in[1]->data, *p4 = o.pk->data;
    for (int h = 0; h < 2; h++)
        for (int s = 0; s < 3; s++)
            for (int e = 0; e < 8; e++) assert_true(p4[(h * 3 + s) * 8 + e] == kk[s * 16 + h * 8 + e]);
    free_out(&o);
    tk_free_all(7, in);
    tk_node_free(n);
}

/* ---- opset 24 nonpad_kv_seqlen, fully masked rows ------------------------------ */

static void test_nonpad(void **state)
{
    (void)state;
    att_case c = base3(6, 40);
    c.opset = 24;
    c.B = 3;
    c.nonpad = 1;
    c.nonpad_v[0] = 40, c.nonpad_v[1] = 17, c.nonpad_v[2] = 0;
    check_case(&c);
    att_out o = run_case(&c, 0, 1);
    /* batch 2 has no valid key: NaN rows (softmax of all -inf) */
    const float *y = o.y->data;
    int64_t per_b = 6 * 2 * 8;
    for (int64_t i = 0; i < per_b; i++) {
        assert_true(isnan(y[2 * per_b + i]));
        assert_false(isnan(y[i]));
    }
    free_out(&o);
    c.causal = 1;
    c.mask = 1;
    c.mrank = 4;
    c.mdims[0] = 3, c.mdims[1] = 1, c.mdims[2] = 1, c.mdims[3] = 40;
    check_case(&c);
    /* nonpad at opset 23 is refused */
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    onr_node *n = make_node(&c);
    att_out e;
    onr_err err = {0};
    assert_int_not_equal(run_node(n, 23, in, n_in, 0, 0, 0, 1, &e, &err), ONR_OK);
    free_out(&e);
    tk_free_all(7, in);
    tk_node_free(n);
}

static void test_fully_masked_rows(void **state)
{
    (void)state;
    /* bool mask with row 1 all false: NaN in both paths; other rows fine */
    att_case c = base3(3, 5);
    c.Hq = c.Hkv = 1;
    c.mask = 2;
    c.mrank = 2;
    c.mdims[0] = 3, c.mdims[1] = 5;
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    uint8_t *m = in[3]->data;
    for (int j = 0; j < 5; j++) m[j] = 1, m[5 + j] = 0, m[10 + j] = j == 2;
    onr_node *n = make_node(&c);
    for (int path = 0; path < 2; path++) {
        att_out o;
        onr_err err = {0};
        assert_int_equal(run_node(n, 23, in, n_in, 0, 0, path, 1, &o, &err), ONR_OK);
        const float *y = o.y->data, *v = in[2]->data;
        for (int e = 0; e < 8; e++) {
            assert_false(isnan(y[e]));
            assert_true(isnan(y[8 + e]));
            assert_float_equal(y[16 + e], v[2 * 8 + e], 1e-6); /* only key 2 */
        }
        free_out(&o);
    }
    tk_free_all(7, in);
    tk_node_free(n);
}

/* ---- softcap and qk_matmul_output --------------------------------------------- */

static void test_softcap_and_qk_modes(void **state)
{
    (void)state;
    att_case c = base3(4, 6);
    c.Hq = 2, c.Hkv = 1;
    c.softcap = 2.f;
    c.scale = 0.5f;
    c.mask = 1;
    c.mrank = 2;
    c.mdims[0] = 4, c.mdims[1] = 6;
    check_case(&c); /* streaming kernel applies softcap too */
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    const float *q = in[0]->data, *k = in[1]->data, *mk = in[3]->data;
    att_out o[4];
    for (int mode = 0; mode < 4; mode++) {
        c.qk_mode = mode;
        onr_node *n = make_node(&c);
        onr_err err = {0};
        assert_int_equal(run_node(n, 23, in, n_in, 0, 1, 0, 1, &o[mode], &err), ONR_OK);
        int64_t qkd[4] = {1, 2, 4, 6};
        tk_assert_shape(o[mode].qk, 4, qkd);
        tk_node_free(n);
    }
    /* all modes give the same Y */
    for (int mode = 1; mode < 4; mode++) assert_close(o[mode].y, o[0].y, 0, 0);
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            double rowsum = 0;
            for (int j = 0; j < 6; j++) {
                double s = 0;
                for (int d = 0; d < 8; d++) s += (double)q[i * 16 + h * 8 + d] * k[j * 8 + d];
                s *= 0.5;
                double s1 = 2.0 * tanh(s / 2.0), s2 = s1 + mk[i * 6 + j];
                int64_t at = (h * 4 + i) * 6 + j;
                assert_float_equal(((float *)o[0].qk->data)[at], s, 1e-5);
                assert_float_equal(((float *)o[1].qk->data)[at], s1, 1e-5);
                float g2 = ((float *)o[2].qk->data)[at];
                if (isinf(s2))
                    assert_true(isinf(g2) && g2 < 0);
                else
                    assert_float_equal(g2, s2, 1e-3 + 1e-6 * fabs(s2));
                rowsum += ((float *)o[3].qk->data)[at];
            }
            assert_float_equal(rowsum, 1.0, 1e-5);
        }
    for (int mode = 0; mode < 4; mode++) free_out(&o[mode]);
    tk_free_all(7, in);
}

/* ---- other types ------------------------------------------------------------- */

static onr_tensor *to_half(const onr_tensor *t, onr_dtype dt)
{
    uint16_t *h = malloc((size_t)t->numel * 2);
    const float *f = t->data;
    for (int64_t i = 0; i < t->numel; i++)
        h[i] = dt == ONR_FLOAT16 ? onr_float_to_half(f[i]) : onr_float_to_bf16(f[i]);
    onr_tensor *r = tk_typed(dt, t->rank, t->dims, h);
    free(h);
    return r;
}

static float half_at(const onr_tensor *t, int64_t e)
{
    uint16_t hv = ((const uint16_t *)t->data)[e];
    return t->dtype == ONR_FLOAT16 ? onr_half_to_float(hv) : onr_bf16_to_float(hv);
}

/* float16 / bfloat16: the streaming path (through float32 copies) against
 * float32 on the same rounded values, and against the reference path; with
 * a past, GQA, a mask of the half type or bool, 3-D and 4-D. */
static void test_half_types(void **state)
{
    (void)state;
    const onr_dtype dts[2] = {ONR_FLOAT16, ONR_BFLOAT16};
    for (int k = 0; k < 2; k++)
        for (int variant = 0; variant < 3; variant++) {
            att_case c = base3(variant == 2 ? 150 : 5, 9);
            c.causal = 1;
            c.mask = variant == 1 ? 2 : 1;
            c.mrank = 2;
            c.mdims[0] = c.Sq, c.mdims[1] = 9;
            if (variant >= 1) {
                c.rank = 4, c.Hq = 4, c.Hkv = 2, c.P = 3, c.Dv = 5;
                c.mdims[1] = 12;
                c.want_present = 1;
            }
            onr_tensor *in[7];
            int n_in = make_inputs(&c, in);
            /* round the float inputs to the half type first, so every run sees the same values */
            onr_tensor *hin[7] = {NULL};
            for (int i = 0; i < 6; i++) {
                if (!in[i]) continue;
                if (in[i]->dtype == ONR_BOOL) {
                    hin[i] = onr_tensor_clone(in[i]);
                    continue;
                }
                hin[i] = to_half(in[i], dts[k]);
                float *f = in[i]->data;
                for (int64_t e = 0; e < in[i]->numel; e++) f[e] = half_at(hin[i], e);
            }
            onr_node *n = make_node(&c);
            att_out of, oh, orf;
            onr_err err = {0};
            assert_int_equal(run_node(n, 23, in, n_in, c.want_present, 0, 0, 1, &of, &err), ONR_OK);
            assert_int_equal(run_node(n, 23, hin, n_in, c.want_present, 0, 0, 2, &oh, &err), ONR_OK);
            assert_int_equal(run_node(n, 23, hin, n_in, c.want_present, 0, 1, 1, &orf, &err), ONR_OK);
            assert_int_equal(oh.y->dtype, dts[k]);
            const float *yf = of.y->data;
            float tol = dts[k] == ONR_FLOAT16 ? 2e-3f : 1.6e-2f;
            for (int64_t e = 0; e < of.y->numel; e++) {
                float g = half_at(oh.y, e), r = half_at(orf.y, e);
                if (fabsf(g - yf[e]) > tol * (1 + fabsf(yf[e])) || fabsf(g - r) > tol * (1 + fabsf(r)))
                    fail_msg("element %lld: %g vs float32 %g, reference path %g", (long long)e, g, yf[e], r);
            }
            if (c.want_present) {
                assert_int_equal(oh.pk->dtype, dts[k]);
                assert_memory_equal(oh.pk->data, orf.pk->data, (size_t)oh.pk->numel * 2);
                assert_memory_equal(oh.pv->data, orf.pv->data, (size_t)oh.pv->numel * 2);
            }
            free_out(&of);
            free_out(&oh);
            free_out(&orf);
            tk_free_all(7, in);
            tk_free_all(7, hin);
            tk_node_free(n);
        }
}

/* ---- threads and larger shapes -------------------------------------------------- */

static void test_threads_bert_gpt(void **state)
{
    (void)state;
    /* BERT-like: 3-D, B=2, 12 heads, 64 dims, [B,1,1,S] mask */
    att_case c = base3(128, 128);
    c.B = 2, c.Hq = c.Hkv = 12, c.D = c.Dv = 64;
    c.mask = 1;
    c.mrank = 4;
    c.mdims[0] = 2, c.mdims[1] = 1, c.mdims[2] = 1, c.mdims[3] = 128;
    check_case(&c);
    /* GPT-2-like causal, S=256 */
    att_case d = base3(256, 256);
    d.Hq = d.Hkv = 12, d.D = d.Dv = 64;
    d.causal = 1;
    check_case(&d);
    /* 1, 3 and 4 threads give the same bits (slab path, causal) */
    {
        att_out t1 = run_case(&d, 0, 1), t3 = run_case(&d, 0, 3), t4 = run_case(&d, 0, 4);
        assert_memory_equal(t1.y->data, t3.y->data, (size_t)t1.y->numel * sizeof(float));
        assert_memory_equal(t1.y->data, t4.y->data, (size_t)t1.y->numel * sizeof(float));
        free_out(&t1);
        free_out(&t3);
        free_out(&t4);
    }
    /* decode step: 1 query over a past of 300 */
    att_case e = base3(1, 1);
    e.Hq = e.Hkv = 12, e.D = e.Dv = 64;
    e.P = 300;
    e.causal = 1;
    e.want_present = 1;
    check_case(&e);
}

/* The query tiling (which reshape shrinks when threads outnumber tasks)
 * changes no bit of the result. */
static void test_query_tiling_invariant(void **state)
{
    (void)state;
    int obq, obk;
    onr_attention_get_tiles(&obq, &obk);
    att_case c = base3(200, 300);
    c.Hq = 4, c.Hkv = 2, c.D = c.Dv = 64;
    c.mask = 1;
    c.mrank = 4;
    c.mdims[0] = 1, c.mdims[1] = 1, c.mdims[2] = 1, c.mdims[3] = 300;
    c.causal = 1;
    onr_attention_set_tiles(128, 64);
    att_out a = run_case(&c, 0, 1);
    const int bqs[] = {16, 24, 36, 64, 200};
    for (int k = 0; k < 5; k++) {
        onr_attention_set_tiles(bqs[k], 64);
        att_out b = run_case(&c, 0, 1);
        if (memcmp(a.y->data, b.y->data, (size_t)a.y->numel * sizeof(float)) != 0)
            fail_msg("query tile %d changes the result", bqs[k]);
        free_out(&b);
    }
    free_out(&a);
    onr_attention_set_tiles(obq, obk);
}

/* ---- errors ------------------------------------------------------------------- */

static void expect_err(const att_case *c, onr_tensor **in, int n_in, const char *needle)
{
    onr_node *n = make_node(c);
    att_out o;
    onr_err err = {0};
    onr_status st = run_node(n, c->opset ? c->opset : 23, in, n_in, 0, 0, 0, 1, &o, &err);
    if (st == ONR_OK) fail_msg("expected an error containing '%s'", needle);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    free_out(&o);
    tk_node_free(n);
}

static void test_errors(void **state)
{
    (void)state;
    att_case c = base3(3, 4);
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    /* 3-D without the head attributes */
    att_case d = c;
    d.rank = 4; /* make_node then adds no attributes */
    expect_err(&d, in, n_in, "q_num_heads");
    /* heads not dividing */
    d = c;
    d.Hq = 3;
    expect_err(&d, in, n_in, "multiple");
    /* q heads not a multiple of kv heads */
    d = c;
    d.Hq = 2, d.Hkv = 4;
    expect_err(&d, in, n_in, NULL);
    /* mask of the wrong shape */
    int64_t md[2] = {2, 4};
    in[3] = tk_rand_f32(2, md, 1);
    expect_err(&c, in, 4, "attn_mask");
    onr_tensor_free(in[3]);
    in[3] = NULL;
    /* past_key without past_value */
    int64_t pd[4] = {1, 2, 2, 8};
    in[4] = tk_rand_f32(4, pd, 2);
    expect_err(&c, in, 5, "together");
    onr_tensor_free(in[4]);
    in[4] = NULL;
    /* rank 2 Q */
    onr_tensor *q0 = in[0];
    int64_t q2[2] = {3, 16};
    in[0] = tk_rand_f32(2, q2, 3);
    expect_err(&c, in, 3, "3-D or 4-D");
    onr_tensor_free(in[0]);
    in[0] = q0;
    /* bad attributes */
    onr_node *n = make_node(&c);
    tk_attr_int(n, "qk_matmul_output_mode", 5);
    att_out o;
    onr_err err = {0};
    assert_int_not_equal(run_node(n, 23, in, n_in, 0, 0, 0, 1, &o, &err), ONR_OK);
    free_out(&o);
    tk_node_free(n);
    /* 4-D with contradicting head attributes */
    att_case e = c;
    e.rank = 4;
    e.heads_attr_4d = 1;
    onr_tensor *in4[7];
    int n4 = make_inputs(&e, in4);
    e.Hq = 1, e.Hkv = 1;
    expect_err(&e, in4, n4, "heads");
    tk_free_all(7, in4);
    tk_free_all(7, in);
    /* not registered before opset 23 */
    assert_null(onr_op_find("", "Attention", 22));
    assert_non_null(onr_op_find("", "Attention", 24));
}

/* ---- benchmark (ONR_ATT_BENCH=1) -------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One operator through the executor into outputs kept across calls (their
 * buffers are reused, as a plan's arena is: no page faults in the timing). */
static int g_bench_threads = 1; /* ONR_ATT_BENCH_THREADS */

static double exec_ms(onr_node *n, int64_t opset, onr_tensor **in, int n_in, onr_tensor **out, int n_out)
{
    n->opset = opset;
    n->n_in = n_in;
    n->n_out = n_out;
    const onr_op *op = onr_op_find(n->domain, n->op_type, opset);
    uint8_t cst[8] = {0};
    onr_err err = {0};
    double t0 = now_ms();
    if (onr_exec_node(n, op, opset, in, n_in, cst, out, n_out, g_bench_threads, NULL, &err) != ONR_OK)
        fail_msg("%s: %s", n->op_type, err.msg);
    return now_ms() - t0;
}

/* MatMul(Q4, Kt4) -> Add(mask or causal bias) -> Softmax -> MatMul(V4); the
 * scale is taken as folded into Q, as an exporter may do. */
static double run_ms_unfused(onr_node *mm, onr_node *add, onr_node *sm, onr_tensor *q4, onr_tensor *kt4,
                             onr_tensor *v4, onr_tensor *bias, onr_tensor **tmp)
{
    onr_tensor *a1[2] = {q4, kt4}, *a3[2] = {tmp[0], bias}, *a4[1] = {tmp[1]}, *a5[2] = {tmp[2], v4};
    double t = exec_ms(mm, 13, a1, 2, &tmp[0], 1);
    t += exec_ms(add, 14, a3, 2, &tmp[1], 1);
    t += exec_ms(sm, 13, a4, 1, &tmp[2], 1);
    t += exec_ms(mm, 13, a5, 2, &tmp[3], 1);
    return t;
}

static void bench_shape(const char *label, int64_t S, int causal, int reps)
{
    const int64_t H = 12, D = 64;
    att_case c = base3(S, S);
    c.Hq = c.Hkv = H, c.D = c.Dv = D;
    c.causal = causal;
    c.scale = 0.125f;
    if (!causal) {
        c.mask = 1;
        c.mrank = 4;
        c.mdims[0] = 1, c.mdims[1] = 1, c.mdims[2] = 1, c.mdims[3] = S;
    }
    onr_tensor *in[7];
    int n_in = make_inputs(&c, in);
    if (!causal) { /* BERT-style mask: 0 or -10000 */
        float *m = in[3]->data;
        for (int64_t j = 0; j < S; j++) m[j] = j < S - 5 ? 0.f : -10000.f;
    }
    onr_node *n = make_node(&c);
    /* unfused operands in 4-D */
    int64_t qd[4] = {1, H, S, D}, ktd[4] = {1, H, D, S};
    onr_tensor *q4 = tk_rand_f32(4, qd, 1), *kt4 = tk_rand_f32(4, ktd, 2), *v4 = tk_rand_f32(4, qd, 3);
    onr_tensor *bias;
    if (causal) {
        int64_t bd[2] = {S, S};
        bias = tk_rand_f32(2, bd, 4);
        float *b = bias->data;
        for (int64_t i = 0; i < S; i++)
            for (int64_t j = 0; j < S; j++) b[i * S + j] = j <= i ? 0.f : -INFINITY;
    } else {
        int64_t bd[4] = {1, 1, 1, S};
        bias = tk_f32(4, bd, in[3]->data);
    }
    onr_node *mm = tk_node("MatMul"), *add = tk_node("Add"), *sm = tk_node("Softmax");
    onr_tensor *tmp[4], *yf[1];
    for (int i = 0; i < 4; i++) tmp[i] = calloc(1, sizeof(onr_tensor));
    yf[0] = calloc(1, sizeof(onr_tensor));
    double *tf = calloc((size_t)reps, sizeof(double)), *tu = calloc((size_t)reps, sizeof(double));
    exec_ms(n, 23, in, n_in, yf, 1);
    run_ms_unfused(mm, add, sm, q4, kt4, v4, bias, tmp);
    for (int r = 0; r < reps; r++) {
        tf[r] = exec_ms(n, 23, in, n_in, yf, 1);
        tu[r] = getenv("ONR_ATT_BENCH_FUSED_ONLY") ? 1 : run_ms_unfused(mm, add, sm, q4, kt4, v4, bias, tmp);
    }
    tk_free_all(4, tmp);
    tk_free_all(1, yf);
    qsort(tf, (size_t)reps, sizeof(double), cmp_d);
    qsort(tu, (size_t)reps, sizeof(double), cmp_d);
    printf("%-28s fused %8.3f ms   unfused %8.3f ms   speedup %.2fx\n", label, tf[reps / 2], tu[reps / 2],
           tu[reps / 2] / tf[reps / 2]);
    free(tf);
    free(tu);
    tk_free_all(7, in);
    onr_tensor_free(q4);
    onr_tensor_free(kt4);
    onr_tensor_free(v4);
    onr_tensor_free(bias);
    tk_node_free(n);
    tk_node_free(mm);
    tk_node_free(add);
    tk_node_free(sm);
}

static int bench(void)
{
    const char *t = getenv("ONR_ATT_TILES");
    if (t) {
        int bq = 0, bk = 0;
        if (sscanf(t, "%d,%d", &bq, &bk) == 2) onr_attention_set_tiles(bq, bk);
    }
    if (getenv("ONR_ATT_BENCH_THREADS")) g_bench_threads = atoi(getenv("ONR_ATT_BENCH_THREADS"));
    if (g_bench_threads < 1) g_bench_threads = 1;
    int bq, bk;
    onr_attention_get_tiles(&bq, &bk);
    printf("Attention benchmark, %d thread(s), tiles %d x %d, medians of interleaved repeats\n", g_bench_threads,
           bq, bk);
    const char *only = getenv("ONR_ATT_BENCH_SHAPE"); /* 0, 1 or 2: one shape */
    int reps = getenv("ONR_ATT_BENCH_REPS") ? atoi(getenv("ONR_ATT_BENCH_REPS")) : 0;
    if (!only || only[0] == '0') bench_shape("BERT-base B=1 H=12 S=128", 128, 0, reps > 0 ? reps : 31);
    if (!only || only[0] == '1') bench_shape("GPT-2 causal H=12 S=256", 256, 1, reps > 0 ? reps : 21);
    if (!only || only[0] == '3') { /* decode: 1 query over 1023 past keys, fused only */
        att_case c = base3(1, 1);
        c.Hq = c.Hkv = 12, c.D = c.Dv = 64, c.P = 1023, c.causal = 1;
        onr_tensor *in[7];
        int n_in = make_inputs(&c, in);
        onr_node *n = make_node(&c);
        onr_tensor *y[1] = {calloc(1, sizeof(onr_tensor))};
        double t[3][21];
        for (int r = 0; r < 21; r++)
            for (int path = 0; path < 2; path++) {
                int old = onr_attention_force_path(path);
                t[path][r] = exec_ms(n, 23, in, n_in, y, 1);
                onr_attention_force_path(old);
            }
        qsort(t[0], 21, sizeof(double), cmp_d);
        qsort(t[1], 21, sizeof(double), cmp_d);
        printf("%-28s fused %8.3f ms   reference path %8.3f ms\n", "decode H=12 past 1023", t[0][10], t[1][10]);
        tk_free_all(1, y);
        tk_free_all(7, in);
        tk_node_free(n);
    }
    if (!only || only[0] == '2') bench_shape("GPT-2 causal H=12 S=1024", 1024, 1, reps > 0 ? reps : 7);
    return 0;
}

int main(void)
{
    if (getenv("ONR_ATT_BENCH")) return bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand),
        cmocka_unit_test(test_kt16),
        cmocka_unit_test(test_tile_edges_small_tiles),
        cmocka_unit_test(test_tile_edges_default_tiles),
        cmocka_unit_test(test_mask_shapes),
        cmocka_unit_test(test_mask_short_opset24),
        cmocka_unit_test(test_causal_gqa_past),
        cmocka_unit_test(test_causal_alignment),
        cmocka_unit_test(test_mixed_ranks),
        cmocka_unit_test(test_present),
        cmocka_unit_test(test_nonpad),
        cmocka_unit_test(test_fully_masked_rows),
        cmocka_unit_test(test_softcap_and_qk_modes),
        cmocka_unit_test(test_half_types),
        cmocka_unit_test(test_threads_bert_gpt),
        cmocka_unit_test(test_query_tiling_invariant),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
