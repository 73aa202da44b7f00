/* test_ops_einsum.c - Einsum: the float32 batched-SGEMM path against the
 * reference loop (run on the same values in double), equal results at 1 and
 * 2 threads, and bad equations / shapes that must fail with a message naming
 * the equation and the position. numpy-checked values for every type are in
 * testdata/spec/einsum_* (tools/spec_cases/einsum.py). */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static onr_status run_eq(const char *eq, int n_in, onr_tensor **in, onr_tensor **out, int nt,
                         onr_err *err)
{
    onr_node *n = tk_node("Einsum");
    tk_attr_string(n, "equation", eq);
    onr_status st = tk_run(n, 12, n_in, in, 1, out, nt, err);
    tk_node_free(n);
    return st;
}

static onr_tensor *to_f64(const onr_tensor *t)
{
    onr_tensor *d = tk_typed(ONR_DOUBLE, t->rank, t->dims, NULL);
    for (int64_t i = 0; i < t->numel; i++) ((double *)d->data)[i] = ((const float *)t->data)[i];
    return d;
}

/* Each equation two-operand float32, most taking the GEMM path (plain,
 * transposed, permuted operands and output, batch), some not (diagonal,
 * broadcast, summed in one operand): compared with the double reference. */
static void test_einsum_gemm_vs_reference(void **state)
{
    (void)state;
    static const struct {
        const char *eq;
        int ra, rb;
        int64_t da[4], db[4];
    } cases[] = {
        {"ij,jk->ik", 2, 2, {37, 29}, {29, 41}},
        {"ji,jk->ik", 2, 2, {29, 37}, {29, 41}},
        {"ij,kj->ik", 2, 2, {37, 29}, {41, 29}},
        {"bij,bjk->bik", 3, 3, {3, 17, 9}, {3, 9, 13}},
        {"bij,bjk->kib", 3, 3, {3, 17, 9}, {3, 9, 13}},
        {"ijk,jil->kl", 3, 3, {5, 6, 7}, {6, 5, 8}},
        {"abcd,cdbe->ae", 4, 4, {2, 3, 4, 5}, {4, 5, 3, 6}},
        {"i,i", 1, 1, {100}, {100}},
        {"i,j->ij", 1, 1, {10}, {12}},
        {"ij,ij->ij", 2, 2, {7, 8}, {7, 8}},
        {"ii,i->i", 2, 1, {9, 9}, {9}},
        {"ij,jk->i", 2, 2, {6, 7}, {7, 8}},
        {"...ij,...jk->...ik", 4, 3, {2, 1, 5, 6}, {3, 6, 4}},
        {"ab,ab->ab", 2, 2, {1, 5}, {4, 5}},
        {"ij,jk->ik", 2, 2, {4, 0}, {0, 3}},
        {"ij,jk->ik", 2, 2, {0, 5}, {5, 3}},
        {"bij,bjk->bik", 3, 3, {0, 20, 20}, {0, 20, 20}},
        {"...ij,jk->...ik", 3, 2, {3, 40, 30}, {30, 20}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        onr_tensor *in[] = {tk_rand_f32(cases[c].ra, cases[c].da, 11 + (uint32_t)c),
                            tk_rand_f32(cases[c].rb, cases[c].db, 97 + (uint32_t)c)};
        onr_tensor *ind[] = {to_f64(in[0]), to_f64(in[1])};
        onr_tensor *y1, *y2, *yd;
        onr_err err = {0};
        if (run_eq(cases[c].eq, 2, in, &y1, 1, &err)) fail_msg("%s: %s", cases[c].eq, err.msg);
        if (run_eq(cases[c].eq, 2, in, &y2, 2, &err)) fail_msg("%s: %s", cases[c].eq, err.msg);
        if (run_eq(cases[c].eq, 2, ind, &yd, 1, &err)) fail_msg("%s: %s", cases[c].eq, err.msg);
        tk_assert_shape(y1, yd->rank, yd->dims);
        float *e = malloc(sizeof(float) * (size_t)(yd->numel + 1));
        for (int64_t i = 0; i < yd->numel; i++) e[i] = (float)((double *)yd->data)[i];
        tk_assert_close_f32(y1, e, yd->numel, 1e-5f, 1e-5f);
        if (y1->numel) assert_memory_equal(y1->data, y2->data, (size_t)y1->numel * sizeof(float));
        free(e);
        onr_tensor_free(y1);
        onr_tensor_free(y2);
        onr_tensor_free(yd);
        tk_free_all(2, in);
        tk_free_all(2, ind);
    }
}

/* NaN in the arena must not leak: the GEMM path overwrites its output. */
static void test_einsum_values(void **state)
{
    (void)state;
    int64_t da[] = {2, 3}, db[] = {3, 2};
    const float a[] = {1, 2, 3, 4, 5, 6}, b[] = {1, 0, 0, 1, 1, 1};
    onr_tensor *in[] = {tk_f32(2, da, a), tk_f32(2, db, b)}, *y;
    onr_err err = {0};
    assert_int_equal(run_eq("ij,jk->ik", 2, in, &y, 1, &err), ONR_OK);
    const float e[] = {4, 5, 10, 11};
    tk_assert_close_f32(y, e, 4, 0, 0);
    onr_tensor_free(y);
    /* implicit output of "ji": labels sorted, so a transpose */
    assert_int_equal(run_eq("ji", 1, in, &y, 1, &err), ONR_OK);
    int64_t dt[] = {3, 2};
    const float et[] = {1, 4, 2, 5, 3, 6};
    tk_assert_shape(y, 2, dt);
    tk_assert_close_f32(y, et, 6, 0, 0);
    onr_tensor_free(y);
    tk_free_all(2, in);
    /* int64 wraps modulo 2^64 as C unsigned arithmetic does */
    int64_t d1[] = {2};
    const int64_t big[] = {INT64_MAX, 2};
    onr_tensor *ii[] = {tk_i64(1, d1, big), tk_i64(1, d1, big)};
    assert_int_equal(run_eq("i,i->", 2, ii, &y, 1, &err), ONR_OK);
    int64_t ew = (int64_t)((uint64_t)INT64_MAX * (uint64_t)INT64_MAX + 4u);
    tk_assert_eq_i64(y, &ew, 1);
    onr_tensor_free(y);
    tk_free_all(2, ii);
}

static void expect_eq_fail(const char *eq, int n_in, onr_tensor **in, onr_status code,
                           const char *needle)
{
    onr_tensor *y = NULL;
    onr_err err = {0};
    onr_status st = run_eq(eq, n_in, in, &y, 1, &err);
    if (st != code) fail_msg("'%s': expected status %d, got %d (%s)", eq, code, st, err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    if (y) onr_tensor_free(y); /* tk_run fills the output on failure too */
}

static void test_einsum_errors(void **state)
{
    (void)state;
    int64_t da[] = {2, 3}, db[] = {3, 4}, dc[] = {2, 2};
    onr_tensor *in[] = {tk_rand_f32(2, da, 1), tk_rand_f32(2, db, 2)};
    expect_eq_fail("ij,j#->ik", 2, in, ONR_E_MODEL, "unexpected character '#' at position 4");
    expect_eq_fail("ij,jk->i.k", 2, in, ONR_E_MODEL, "'.' at position 8 is not part of '...'");
    expect_eq_fail("i...j...,jk", 2, in, ONR_E_MODEL, "a second '...' in one term at position 5");
    expect_eq_fail("ij,jk,kl->il", 2, in, ONR_E_MODEL, "more terms than the 2 inputs");
    expect_eq_fail("ij->ij", 2, in, ONR_E_MODEL, "has 1 terms for 2 inputs");
    expect_eq_fail("ij,jk->iz", 2, in, ONR_E_MODEL, "output label 'z' is in no input term");
    expect_eq_fail("ij,jk->ii", 2, in, ONR_E_MODEL, "output label 'i' appears twice");
    expect_eq_fail("ij,jk->ik-", 2, in, ONR_E_MODEL, "unexpected character '-' at position 9");
    expect_eq_fail("ij,jk->i>k", 2, in, ONR_E_MODEL, "unexpected character '>' at position 8");
    expect_eq_fail("ijk,jk->ik", 2, in, ONR_E_MODEL, "term 0 has 3 labels but input 0 has rank 2");
    expect_eq_fail("ij,ik->jk", 2, in, ONR_E_MODEL, "label 'i' has size 3 in input 1 but 2");
    expect_eq_fail("...j,jk->jk", 2, in, ONR_E_MODEL, "no '...' but the inputs' '...' covers 1");
    tk_free_all(2, in);
    onr_tensor *sq[] = {tk_rand_f32(2, da, 3)};
    expect_eq_fail("ii->i", 1, sq, ONR_E_MODEL, "repeats label 'i' over dims of sizes 2 and 3");
    tk_free_all(1, sq);
    /* mixed types, missing attribute */
    onr_tensor *mix[] = {tk_rand_f32(2, dc, 4), tk_typed(ONR_DOUBLE, 2, dc, NULL)};
    expect_eq_fail("ij,jk", 2, mix, ONR_E_MODEL, "input 1 is float64, input 0 is float32");
    tk_free_all(2, mix);
    onr_node *n = tk_node("Einsum");
    onr_tensor *one[] = {tk_rand_f32(2, dc, 5)}, *out[1];
    onr_err err = {0};
    assert_int_equal(tk_run(n, 12, 1, one, 1, out, 1, &err), ONR_E_MODEL);
    assert_non_null(strstr(err.msg, "'equation' is missing"));
    tk_free_all(1, out);
    tk_node_free(n);
    tk_free_all(1, one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_einsum_gemm_vs_reference),
        cmocka_unit_test(test_einsum_values),
        cmocka_unit_test(test_einsum_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
