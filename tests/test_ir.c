/* test_ir.c - tensors, dtype tables, half conversion, size limits. */
#include "kutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_dtype_table(void **state)
{
    (void)state;
    assert_int_equal(onr_dtype_size(ONR_FLOAT), 4);
    assert_int_equal(onr_dtype_size(ONR_INT64), 8);
    assert_int_equal(onr_dtype_size(ONR_BOOL), 1);
    assert_int_equal(onr_dtype_size(ONR_BFLOAT16), 2);
    assert_string_equal(onr_dtype_name(ONR_DOUBLE), "float64");
    assert_string_equal(onr_dtype_name((onr_dtype)99), "undefined");
}

static void test_half_roundtrip(void **state)
{
    (void)state;
    const float vals[] = {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.103515625e-05f, 5.9604645e-08f, 0.333333f};
    const uint16_t bits[] = {0x0000, 0x8000, 0x3c00, 0xc100, 0x7bff, 0x0400, 0x0001, 0x3555};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        assert_int_equal(onr_float_to_half(vals[i]), bits[i]);
        if (i != 7) assert_true(onr_half_to_float(bits[i]) == vals[i]);
    }
    assert_int_equal(onr_float_to_half(1e6f), 0x7c00);
    assert_true(isnan(onr_half_to_float(onr_float_to_half(NAN))));
    /* round to nearest even at the halfway point between 1 and 1+2^-10 */
    assert_int_equal(onr_float_to_half(1.f + 1.f / 2048.f), 0x3c00);
    assert_int_equal(onr_float_to_half(1.f + 3.f / 2048.f), 0x3c02);
    assert_int_equal(onr_float_to_bf16(1.f), 0x3f80);
    assert_true(onr_bf16_to_float(0xc040) == -3.f);
}

static void test_numel_limits(void **state)
{
    (void)state;
    onr_err err = {0};
    int64_t n = 0;
    int64_t ok[] = {2, 3, 4};
    assert_int_equal(onr_dims_numel(ok, 3, ONR_FLOAT, &n, &err), ONR_OK);
    assert_int_equal(n, 24);
    int64_t huge[] = {1ll << 40, 1ll << 40};
    assert_int_equal(onr_dims_numel(huge, 2, ONR_FLOAT, &n, &err), ONR_E_NOMEM);
    assert_non_null(strstr(err.msg, "too large"));
    onr_err e2 = {0};
    int64_t neg[] = {2, -1};
    assert_int_equal(onr_dims_numel(neg, 2, ONR_FLOAT, &n, &e2), ONR_E_MODEL);
    int64_t zero[] = {0, 1ll << 62};
    onr_err e3 = {0};
    assert_int_equal(onr_dims_numel(zero, 2, ONR_FLOAT, &n, &e3), ONR_OK);
    assert_int_equal(n, 0);
}

static void test_tensor_api(void **state)
{
    (void)state;
    int64_t dims[] = {2, 3};
    onr_tensor *t = onr_tensor_new(ONR_FLOAT, 2, dims);
    assert_non_null(t);
    assert_int_equal(onr_tensor_numel(t), 6);
    assert_int_equal(((uintptr_t)onr_tensor_data(t)) % 64, 0);
    onr_tensor *c = onr_tensor_clone(t);
    assert_int_equal(c->numel, 6);
    onr_tensor_free(c);
    onr_tensor_free(t);
    float buf[6] = {0};
    onr_tensor *w = onr_tensor_wrap(ONR_FLOAT, 2, dims, buf);
    assert_ptr_equal(onr_tensor_data(w), buf);
    onr_tensor_free(w);
    assert_null(onr_tensor_new(ONR_UNDEFINED, 2, dims));
    int64_t bad[] = {-3};
    assert_null(onr_tensor_new(ONR_FLOAT, 1, bad));
}

/* onr_zero_parallel is memset: every byte zero and none outside, for
 * sizes below, at and above where it splits (ONR_ZERO_PARALLEL_MIN), on
 * 1-3 threads, and with more threads than parts (3 on 4 MiB). At most 3
 * threads: clang's OpenMP runtime, under LeakSanitizer, reported the
 * descriptors of a 10-thread team (64 asked, on 21 MB) as leaked at exit. */
static void test_zero_parallel(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 4095, ONR_ZERO_PARALLEL_MIN, ONR_ZERO_PARALLEL_MIN - 1, ((size_t)21 << 20) + 77};
    const int nts[] = {1, 2, 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t k = 0; k < sizeof nts / sizeof nts[0]; k++) {
            size_t n = sizes[i];
            unsigned char *b = malloc(n + 128);
            assert_non_null(b);
            memset(b, 0xAB, n + 128);
            onr_zero_parallel(b + 64, n, nts[k]);
            for (size_t j = 0; j < 64; j++) assert_int_equal(b[j], 0xAB);
            for (size_t j = 0; j < 64; j++) assert_int_equal(b[64 + n + j], 0xAB);
            for (size_t j = 0; j < n; j++)
                if (b[64 + j]) fail_msg("byte %zu of %zu not zero (%d threads)", j, n, nts[k]);
            free(b);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_half_roundtrip),
        cmocka_unit_test(test_numel_limits),
        cmocka_unit_test(test_tensor_api),
        cmocka_unit_test(test_zero_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
