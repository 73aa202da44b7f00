/* test_ops_rnn.c - RNN, GRU, LSTM: the float32 SGEMM path (weights packed
 * at create or read in place) against the double reference path, over
 * tile-edge sizes, directions, layouts and sequence lengths; sequence_lens
 * edge cases checked against running each sequence alone; thread-count
 * independence; errors for bad shapes, types, attributes and lengths. */
#include "kutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/rnn.h"

static const char *ops[] = {"RNN", "GRU", "LSTM"};
static const int gates[] = {1, 3, 4};

/* One problem: sizes, options and its inputs. */
typedef struct prob {
    int op; /* index into ops */
    int64_t S, B, I, H;
    int ndir, reverse, layout, lbr, peep, input_forget, clip;
    const char *acts; /* NULL: defaults; else a comma-free single name for every slot */
    onr_tensor *in[8];
    int n_in;
} prob;

/* An activations (strings) attribute; kutil has no strings helper. */
static void attr_strings(onr_node *n, const char *name, int count, const char *const *v)
{
    n->attrs = realloc(n->attrs, sizeof(onr_attr) * (size_t)(n->n_attr + 1));
    assert_non_null(n->attrs);
    onr_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = onr_strdup(name);
    a->type = ONR_ATTR_STRINGS;
    a->n = (size_t)count;
    a->strings = calloc((size_t)count, sizeof(char *));
    for (int i = 0; i < count; i++) a->strings[i] = onr_strdup(v[i]);
}

static onr_node *make_node(const prob *p)
{
    onr_node *n = tk_node(ops[p->op]);
    tk_attr_int(n, "hidden_size", p->H);
    if (p->ndir == 2) tk_attr_string(n, "direction", "bidirectional");
    else if (p->reverse) tk_attr_string(n, "direction", "reverse");
    if (p->layout) tk_attr_int(n, "layout", 1);
    if (p->op == 1) tk_attr_int(n, "linear_before_reset", p->lbr);
    if (p->op == 2 && p->input_forget) tk_attr_int(n, "input_forget", 1);
    if (p->clip) tk_attr_float(n, "clip", 0.6f);
    return n;
}

/* Random inputs; seq: NULL or B lengths. */
static void make_inputs(prob *p, const int32_t *seq, int with_init, uint32_t seed)
{
    int64_t G = gates[p->op], D = p->ndir, H = p->H;
    int64_t xd[3] = {p->S, p->B, p->I}, xl[3] = {p->B, p->S, p->I};
    int64_t wd[3] = {D, G * H, p->I}, rd[3] = {D, G * H, H}, bd[2] = {D, 2 * G * H};
    int64_t hd[3] = {D, p->B, H}, hl[3] = {p->B, D, H}, pd[2] = {D, 3 * H};
    memset(p->in, 0, sizeof p->in);
    p->in[0] = tk_rand_f32(3, p->layout ? xl : xd, seed);
    p->in[1] = tk_rand_f32(3, wd, seed + 1);
    p->in[2] = tk_rand_f32(3, rd, seed + 2);
    p->in[3] = tk_rand_f32(2, bd, seed + 3);
    p->n_in = 4;
    if (seq) p->in[4] = tk_i32(1, &p->B, seq);
    if (with_init) {
        p->in[5] = tk_rand_f32(3, p->layout ? hl : hd, seed + 5);
        if (p->op == 2) p->in[6] = tk_rand_f32(3, p->layout ? hl : hd, seed + 6);
    }
    if (p->op == 2 && p->peep) p->in[7] = tk_rand_f32(2, pd, seed + 7);
    p->n_in = p->op == 2 ? (p->peep ? 8 : with_init ? 7 : seq ? 5 : 4)
                         : (with_init ? 6 : seq ? 5 : 4);
}

static int n_outs(const prob *p) { return p->op == 2 ? 3 : 2; }

/* Run p; mode 0: float32 unpacked, 1: float32 with W, R constant (packed),
 * 2: forced reference. */
static void run_prob(const prob *p, int mode, int nthreads, onr_tensor **out)
{
    onr_node *n = make_node(p);
    onr_err err = {0};
    int old = onr_rnn_force_reference(mode == 2);
    onr_status st = tk_run_const(n, 22, p->n_in, (onr_tensor **)p->in, mode == 1 ? 0x6u : 0,
                                 n_outs(p), out, nthreads, &err);
    onr_rnn_force_reference(old);
    if (st != ONR_OK) fail_msg("%s: %s", ops[p->op], err.msg);
    if (mode == 1) assert_int_equal(tk_last_consumed & 0x6u, p->I > 0 ? 0x6u : 0x4u);
    if (mode != 1) assert_int_equal(tk_last_consumed, 0);
    tk_node_free(n);
}

static void assert_close(const onr_tensor *a, const onr_tensor *b, float rtol, float atol,
                         const char *what)
{
    assert_int_equal(a->numel, b->numel);
    assert_int_equal(a->rank, b->rank);
    const float *x = a->data, *y = b->data;
    for (int64_t i = 0; i < a->numel; i++)
        if (!(fabsf(x[i] - y[i]) <= atol + rtol * fabsf(y[i])))
            fail_msg("%s: element %lld: %.9g vs %.9g", what, (long long)i, x[i], y[i]);
}

static void free_prob(prob *p) { tk_free_all(8, p->in); }

/* ---- SGEMM path vs reference ---------------------------------------------- */

static void test_sgemm_vs_reference(void **state)
{
    (void)state;
    /* sizes around the microkernel tiles (6x16, 12x32) and a packed-B
     * panel edge; I = 0 (biases only) too */
    static const int64_t sizes[][4] = {{3, 1, 2, 3}, {5, 7, 17, 13}, {4, 13, 33, 31},
                                       {2, 2, 0, 5}, {6, 3, 9, 16}};
    static const int32_t lens7[7] = {5, 0, 3, 5, 1, 4, 2};
    uint32_t seed = 100;
    for (int op = 0; op < 3; op++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
            for (int variant = 0; variant < 4; variant++) {
                prob p = {.op = op, .S = sizes[z][0], .B = sizes[z][1], .I = sizes[z][2],
                          .H = sizes[z][3]};
                p.ndir = variant >= 2 ? 2 : 1;
                p.reverse = variant == 1;
                p.layout = variant & 1;
                p.lbr = variant & 1;
                p.peep = variant >= 2;
                p.clip = variant == 3;
                p.input_forget = variant == 1;
                int32_t seq[16];
                for (int64_t b = 0; b < p.B; b++)
                    seq[b] = (int32_t)(p.B == 7 ? lens7[b] : (p.S - b % (p.S + 1) + p.S) % (p.S + 1));
                make_inputs(&p, variant >= 1 ? seq : NULL, variant != 0, seed += 10);
                onr_tensor *o0[3], *o1[3], *o2[3];
                run_prob(&p, 0, 1, o0);
                run_prob(&p, 1, 1, o1);
                run_prob(&p, 2, 1, o2);
                for (int k = 0; k < n_outs(&p); k++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s sizes %zu variant %d output %d", ops[op], z,
                             variant, k);
                    assert_close(o0[k], o2[k], 1e-4f, 1e-5f, what);
                    assert_close(o1[k], o2[k], 1e-4f, 1e-5f, what);
                }
                tk_free_all(n_outs(&p), o0);
                tk_free_all(n_outs(&p), o1);
                tk_free_all(n_outs(&p), o2);
                free_prob(&p);
            }
}

/* Packing happens at create, once: running the same node on new inputs of
 * another batch size and sequence length does not pack again. */
static void test_pack_once(void **state)
{
    (void)state;
    prob p = {.op = 2, .S = 4, .B = 3, .I = 5, .H = 6, .ndir = 2};
    make_inputs(&p, NULL, 0, 7);
    size_t before = onr_sgemm_pack_count();
    onr_tensor *o[3];
    run_prob(&p, 1, 1, o);
    size_t packs = onr_sgemm_pack_count() - before;
    assert_int_equal(packs, 3); /* W once for both directions, R per direction */
    tk_free_all(3, o);
    free_prob(&p);
}

/* 1 and 2 threads give bit-identical results. */
static void test_threads(void **state)
{
    (void)state;
    for (int op = 0; op < 3; op++) {
        prob p = {.op = op, .S = 9, .B = 64, .I = 48, .H = 40, .ndir = 2};
        make_inputs(&p, NULL, 1, 300 + (uint32_t)op);
        for (int mode = 0; mode < 3; mode++) {
            onr_tensor *a[3], *b[3];
            run_prob(&p, mode, 1, a);
            run_prob(&p, mode, 2, b);
            for (int k = 0; k < n_outs(&p); k++)
                assert_memory_equal(a[k]->data, b[k]->data, (size_t)a[k]->numel * sizeof(float));
            tk_free_all(n_outs(&p), a);
            tk_free_all(n_outs(&p), b);
        }
        free_prob(&p);
    }
}

/* ---- sequence_lens --------------------------------------------------------- */

/* Each batch entry b of length L must give what the same op gives on its
 * own sequence X[0:L, b] without sequence_lens; Y past L is zero; L = 0
 * gives zero Y_h / Y_c. Layout 0, both directions. */
static void test_seq_lens_vs_alone(void **state)
{
    (void)state;
    static const int32_t lens[4] = {4, 0, 2, 1};
    for (int op = 0; op < 3; op++) {
        prob p = {.op = op, .S = 4, .B = 4, .I = 3, .H = 5, .ndir = 2, .peep = 1};
        make_inputs(&p, lens, 1, 500 + (uint32_t)op);
        onr_tensor *o[3];
        run_prob(&p, 0, 1, o);
        int64_t D = 2, H = p.H, B = p.B, I = p.I;
        for (int64_t b = 0; b < B; b++) {
            int64_t L = lens[b];
            const float *y = o[0]->data;
            for (int64_t t = L; t < p.S; t++)
                for (int64_t d = 0; d < D; d++)
                    for (int64_t j = 0; j < H; j++)
                        assert_true(y[((t * D + d) * B + b) * H + j] == 0.f);
            if (L == 0) {
                for (int k = 1; k < n_outs(&p); k++)
                    for (int64_t d = 0; d < D; d++)
                        for (int64_t j = 0; j < H; j++)
                            assert_true(((float *)o[k]->data)[(d * B + b) * H + j] == 0.f);
                continue;
            }
            /* the entry alone: X[0:L, b], initial states row b */
            prob q = p;
            q.S = L;
            q.B = 1;
            memset(q.in, 0, sizeof q.in);
            int64_t xd[3] = {L, 1, I}, hd[3] = {D, 1, H};
            float *xs = malloc(sizeof(float) * (size_t)(L * I));
            for (int64_t t = 0; t < L; t++)
                memcpy(xs + t * I, (float *)p.in[0]->data + (t * B + b) * I, sizeof(float) * (size_t)I);
            q.in[0] = tk_f32(3, xd, xs);
            free(xs);
            for (int i = 1; i < 4; i++) q.in[i] = onr_tensor_clone(p.in[i]);
            for (int i = 5; i <= 6; i++) {
                if (!p.in[i]) continue;
                float hs[2 * 5];
                for (int64_t d = 0; d < D; d++)
                    memcpy(hs + d * H, (float *)p.in[i]->data + (d * B + b) * H, sizeof(float) * (size_t)H);
                q.in[i] = tk_f32(3, hd, hs);
            }
            if (p.in[7]) q.in[7] = onr_tensor_clone(p.in[7]);
            onr_tensor *r[3];
            run_prob(&q, 0, 1, r);
            for (int64_t t = 0; t < L; t++)
                for (int64_t d = 0; d < D; d++)
                    for (int64_t j = 0; j < H; j++) {
                        float got = ((float *)o[0]->data)[((t * D + d) * B + b) * H + j];
                        float want = ((float *)r[0]->data)[(t * D + d) * H + j];
                        if (fabsf(got - want) > 1e-5f + 1e-5f * fabsf(want))
                            fail_msg("%s b=%lld t=%lld d=%lld: %g vs %g", ops[op], (long long)b,
                                     (long long)t, (long long)d, got, want);
                    }
            for (int k = 1; k < n_outs(&p); k++)
                for (int64_t d = 0; d < D; d++)
                    for (int64_t j = 0; j < H; j++) {
                        float got = ((float *)o[k]->data)[(d * B + b) * H + j];
                        float want = ((float *)r[k]->data)[d * H + j];
                        assert_true(fabsf(got - want) <= 1e-5f + 1e-5f * fabsf(want));
                    }
            tk_free_all(n_outs(&q), r);
            free_prob(&q);
        }
        tk_free_all(n_outs(&p), o);
        free_prob(&p);
    }
}

/* Every length equal to seq_length is the same as no sequence_lens. */
static void test_seq_lens_all_equal(void **state)
{
    (void)state;
    static const int32_t full[3] = {5, 5, 5};
    for (int op = 0; op < 3; op++) {
        prob p = {.op = op, .S = 5, .B = 3, .I = 4, .H = 3, .ndir = 2, .layout = 1};
        make_inputs(&p, full, 0, 700 + (uint32_t)op);
        onr_tensor *a[3], *b[3];
        run_prob(&p, 0, 1, a);
        onr_tensor_free(p.in[4]);
        p.in[4] = NULL;
        p.n_in = 4;
        run_prob(&p, 0, 1, b);
        for (int k = 0; k < n_outs(&p); k++)
            assert_memory_equal(a[k]->data, b[k]->data, (size_t)a[k]->numel * sizeof(float));
        tk_free_all(n_outs(&p), a);
        tk_free_all(n_outs(&p), b);
        free_prob(&p);
    }
}

/* ---- errors ------------------------------------------------------------------ */

static void expect_err(prob *p, onr_node *n, int64_t opset, onr_status code, const char *needle)
{
    onr_tensor *out[3];
    onr_err err = {0};
    onr_status st = tk_run(n, opset, p->n_in, p->in, n_outs(p), out, 1, &err);
    if (st != code) fail_msg("%s: expected status %d, got %d (%s)", ops[p->op], code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(n_outs(p), out);
    tk_node_free(n);
}

static void replace(prob *p, int i, onr_tensor *t)
{
    onr_tensor_free(p->in[i]);
    p->in[i] = t;
}

static void test_bad_shapes(void **state)
{
    (void)state;
    for (int op = 0; op < 3; op++) {
        int64_t G = gates[op];
        prob p = {.op = op, .S = 3, .B = 2, .I = 4, .H = 5, .ndir = 1};
        int64_t bad_w[3] = {1, G * 5, 3}, bad_r[3] = {1, G * 5, 4}, bad_b[2] = {1, G * 5},
                two_dir[3] = {2, G * 5, 4}, r2[2] = {3, 4}, bad_p[2] = {1, 5};
        make_inputs(&p, NULL, 0, 900);
        replace(&p, 1, tk_rand_f32(3, bad_w, 1));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "W (input 1)");
        replace(&p, 1, tk_rand_f32(3, two_dir, 1));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "W (input 1)");
        free_prob(&p);
        make_inputs(&p, NULL, 0, 900);
        replace(&p, 2, tk_rand_f32(3, bad_r, 1));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "R (input 2)");
        replace(&p, 2, tk_rand_f32(2, r2, 1));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "R (input 2)");
        free_prob(&p);
        make_inputs(&p, NULL, 0, 900);
        replace(&p, 3, tk_rand_f32(2, bad_b, 1));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "B (input 3)");
        free_prob(&p);
        /* initial_h of the wrong layout */
        make_inputs(&p, NULL, 1, 900);
        p.layout = 1;
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "initial_h (input 5)");
        p.layout = 0;
        free_prob(&p);
        /* W of another type than X */
        make_inputs(&p, NULL, 0, 900);
        {
            onr_tensor *w = p.in[1];
            double *dv = malloc(sizeof(double) * (size_t)w->numel);
            for (int64_t i = 0; i < w->numel; i++) dv[i] = ((float *)w->data)[i];
            replace(&p, 1, tk_typed(ONR_DOUBLE, 3, w->dims, dv));
            free(dv);
        }
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "W (input 1) is float64");
        free_prob(&p);
        /* X of rank 2 */
        make_inputs(&p, NULL, 0, 900);
        replace(&p, 0, tk_rand_f32(2, r2, 1));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "X (input 0)");
        free_prob(&p);
        if (op == 2) { /* peepholes of the wrong size */
            p.peep = 1;
            make_inputs(&p, NULL, 1, 900);
            replace(&p, 7, tk_rand_f32(2, bad_p, 1));
            expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "P (input 7)");
            p.peep = 0;
            free_prob(&p);
        }
        /* sequence_lens: wrong type, wrong length, values out of range */
        int32_t seq[2] = {3, 4}, neg[2] = {-1, 2};
        int64_t one = 1, sd = 2, s64[2] = {1, 1};
        make_inputs(&p, seq, 0, 900);
        expect_err(&p, make_node(&p), 22, ONR_E_INPUT, "sequence_lens[1] = 4");
        replace(&p, 4, tk_i32(1, &sd, neg));
        expect_err(&p, make_node(&p), 22, ONR_E_INPUT, "sequence_lens[0] = -1");
        replace(&p, 4, tk_i32(1, &one, seq));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "sequence_lens (input 4)");
        replace(&p, 4, tk_i64(1, &sd, s64));
        expect_err(&p, make_node(&p), 22, ONR_E_MODEL, "sequence_lens (input 4) must be int32");
        free_prob(&p);
    }
}

static void test_bad_attrs(void **state)
{
    (void)state;
    prob p = {.op = 2, .S = 3, .B = 2, .I = 4, .H = 5, .ndir = 1};
    make_inputs(&p, NULL, 0, 1000);
    onr_node *n = make_node(&p);
    tk_attr_string(n, "direction", "sideways");
    expect_err(&p, n, 22, ONR_E_MODEL, "'direction'");
    n = make_node(&p);
    tk_attr_int(n, "clip", 1);
    expect_err(&p, n, 22, ONR_E_MODEL, "'clip'");
    n = tk_node("LSTM");
    tk_attr_int(n, "hidden_size", 5);
    tk_attr_float(n, "clip", -1.f);
    expect_err(&p, n, 22, ONR_E_MODEL, "'clip'");
    n = tk_node("LSTM");
    tk_attr_int(n, "hidden_size", 6); /* W says 5 */
    expect_err(&p, n, 22, ONR_E_MODEL, "W (input 1)");
    n = tk_node("LSTM");
    tk_attr_int(n, "hidden_size", 0);
    expect_err(&p, n, 22, ONR_E_MODEL, "'hidden_size'");
    n = tk_node("LSTM");
    tk_attr_int(n, "layout", 2);
    expect_err(&p, n, 22, ONR_E_MODEL, "'layout'");
    n = tk_node("LSTM");
    tk_attr_int(n, "layout", 1);
    expect_err(&p, n, 7, ONR_E_MODEL, "opset 14");
    /* the activation list: unknown name, wrong count */
    static const char *const bad_name[] = {"Sigmoid", "Tanhh", "Tanh"}, *const short2[] = {"Sigmoid", "Tanh"};
    n = tk_node("LSTM");
    attr_strings(n, "activations", 3, bad_name);
    expect_err(&p, n, 22, ONR_E_MODEL, "unknown activation 'Tanhh'");
    n = tk_node("LSTM");
    attr_strings(n, "activations", 2, short2);
    expect_err(&p, n, 22, ONR_E_MODEL, "needs 3");
    free_prob(&p);
    /* bfloat16 needs opset 22 */
    p = (prob){.op = 0, .S = 2, .B = 1, .I = 2, .H = 2, .ndir = 1};
    {
        uint16_t z[8] = {0};
        int64_t xd[3] = {2, 1, 2}, wd[3] = {1, 2, 2};
        p.in[0] = tk_typed(ONR_BFLOAT16, 3, xd, z);
        p.in[1] = tk_typed(ONR_BFLOAT16, 3, wd, z);
        p.in[2] = tk_typed(ONR_BFLOAT16, 3, wd, z);
        p.n_in = 3;
        expect_err(&p, make_node(&p), 14, ONR_E_UNSUPPORTED, "bfloat16");
        onr_tensor *o[2];
        onr_node *nn = make_node(&p);
        onr_err err = {0};
        assert_int_equal(tk_run(nn, 22, 3, p.in, 2, o, 1, &err), ONR_OK);
        tk_free_all(2, o);
        tk_node_free(nn);
    }
    free_prob(&p);
}

/* Empty dims run and give the right shapes (Y_h of a sequence that never
 * ran is zero); a huge seq_length x batch over an empty input is refused
 * cleanly instead of looping or allocating. */
static void test_empty_and_huge(void **state)
{
    (void)state;
    for (int op = 0; op < 3; op++) {
        static const int64_t shapes[][2] = {{0, 3}, {4, 0}};
        for (int k = 0; k < 2; k++) {
            prob p = {.op = op, .S = shapes[k][0], .B = shapes[k][1], .I = 2, .H = 3, .ndir = 2};
            make_inputs(&p, NULL, 1, 1200);
            onr_tensor *o[3];
            run_prob(&p, 0, 2, o);
            int64_t yd[4] = {p.S, 2, p.B, 3}, hd[3] = {2, p.B, 3};
            tk_assert_shape(o[0], 4, yd);
            for (int i = 1; i < n_outs(&p); i++) {
                tk_assert_shape(o[i], 3, hd);
                for (int64_t j = 0; j < o[i]->numel; j++) assert_true(((float *)o[i]->data)[j] == 0.f);
            }
            tk_free_all(n_outs(&p), o);
            free_prob(&p);
        }
        /* X [2^40, 1, 0]: nothing to read, but 2^40 steps of 4*G*H values */
        prob p = {.op = op, .S = 3, .B = 1, .I = 0, .H = 4, .ndir = 1};
        make_inputs(&p, NULL, 0, 1300);
        int64_t xd[3] = {INT64_C(1) << 40, 1, 0};
        onr_tensor_free(p.in[0]);
        p.in[0] = tk_f32(3, xd, NULL);
        onr_node *n = make_node(&p);
        onr_tensor *o[3];
        onr_err err = {0};
        onr_status st = tk_run(n, 22, p.n_in, p.in, n_outs(&p), o, 1, &err);
        assert_int_equal(st, ONR_E_NOMEM);
        if (!strstr(err.msg, "X*W") && !strstr(err.msg, "too large")) fail_msg("unexpected message: %s", err.msg);
        tk_free_all(n_outs(&p), o);
        tk_node_free(n);
        free_prob(&p);
    }
}

/* Hand-checked: RNN with Relu, H = I = 1, W = 2, R = 0.5, no bias:
 * h1 = relu(2*1) = 2, h2 = relu(2*-3 + 0.5*2) = 0, h3 = relu(2*2 + 0) = 4. */
static void test_rnn_hand(void **state)
{
    (void)state;
    int64_t xd[3] = {3, 1, 1}, wd[3] = {1, 1, 1};
    float x[3] = {1, -3, 2}, w[1] = {2}, r[1] = {0.5f};
    onr_tensor *in[3] = {tk_f32(3, xd, x), tk_f32(3, wd, w), tk_f32(3, wd, r)};
    for (int mode = 0; mode < 3; mode++) {
        onr_node *n = tk_node("RNN");
        tk_attr_int(n, "hidden_size", 1);
        static const char *const relu[] = {"relu"}; /* names match case-insensitively */
        attr_strings(n, "activations", 1, relu);
        onr_tensor *o[2];
        onr_err err = {0};
        int old = onr_rnn_force_reference(mode == 2);
        onr_status st = tk_run_const(n, 7, 3, in, mode == 1 ? 0x6u : 0, 2, o, 1, &err);
        onr_rnn_force_reference(old);
        if (st) fail_msg("%s", err.msg);
        const float y[3] = {2, 0, 4}, yh[1] = {4};
        tk_assert_close_f32(o[0], y, 3, 0, 0);
        tk_assert_close_f32(o[1], yh, 1, 0, 0);
        tk_free_all(2, o);
        tk_node_free(n);
    }
    tk_free_all(3, in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rnn_hand),
        cmocka_unit_test(test_sgemm_vs_reference),
        cmocka_unit_test(test_pack_once),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_seq_lens_vs_alone),
        cmocka_unit_test(test_seq_lens_all_equal),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_bad_attrs),
        cmocka_unit_test(test_empty_and_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
