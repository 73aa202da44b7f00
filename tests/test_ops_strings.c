/* test_ops_strings.c - StringNormalizer, TfIdfVectorizer, StringConcat,
 * StringSplit and RegexFullMatch: behaviour the spec cases do not reach
 * (RE2-to-POSIX translation, int32 and int64 inputs agreeing, thread
 * counts, empty inputs) and bad attributes and inputs (clean errors). */
#include "kutil.h"

#include <string.h>

static onr_tensor *strs(int rank, const int64_t *dims, const char *const *v)
{
    onr_tensor *t = tk_typed(ONR_STRING, rank, dims, NULL);
    for (int64_t i = 0; i < t->numel; i++) assert_int_equal(onr_str_assign(&((char **)t->data)[i], v[i]), 0);
    return t;
}

static void run_ok(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out, onr_tensor **out)
{
    onr_err err = {0};
    if (tk_run(n, opset, n_in, in, n_out, out, 2, &err) != ONR_OK)
        fail_msg("%s failed: %s", n->op_type, err.msg);
}

static void expect_fail(onr_node *n, int64_t opset, int n_in, onr_tensor **in, int n_out,
                        const char *needle)
{
    onr_tensor *out[2] = {0};
    onr_err err = {0};
    if (tk_run(n, opset, n_in, in, n_out, out, 1, &err) == ONR_OK)
        fail_msg("%s: expected an error mentioning '%s'", n->op_type, needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    tk_free_all(n_out, out);
}

static const char *sat(const onr_tensor *t, int64_t i) { return ((char *const *)t->data)[i]; }

static void test_regex(void **state)
{
    (void)state;
    const char *v[6] = {"a1b", "A1B", "a-b", "a]b", "x\ty", "ab12"};
    int64_t d[1] = {6};
    onr_tensor *x = strs(1, d, v);
    struct { const char *pat; uint8_t want[6]; } cases[] = {
        {"a\\db", {1, 0, 0, 0, 0, 0}},
        {"(?i)a\\dB", {1, 1, 0, 0, 0, 0}},
        {"a[\\-\\]]b", {0, 0, 1, 1, 0, 0}},
        {"x\\sy", {0, 0, 0, 0, 1, 0}},
        {"\\w+", {1, 1, 0, 0, 0, 1}},
        {"(?P<word>[a-z]+)\\d*?", {0, 0, 0, 0, 0, 1}},
        {"\\Aab\\d{2}\\z", {0, 0, 0, 0, 0, 1}},
        {"[^\\d]\\D[[:alpha:]]", {0, 0, 1, 1, 1, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        onr_node *n = tk_node("RegexFullMatch");
        tk_attr_string(n, "pattern", cases[c].pat);
        onr_tensor *in[1] = {x}, *out[1];
        run_ok(n, 20, 1, in, 1, out);
        assert_int_equal(out[0]->dtype, ONR_BOOL);
        for (int i = 0; i < 6; i++)
            if (((uint8_t *)out[0]->data)[i] != cases[c].want[i])
                fail_msg("pattern %s on '%s': got %d", cases[c].pat, v[i], ((uint8_t *)out[0]->data)[i]);
        tk_free_all(1, out);
        tk_node_free(n);
    }
    const char *bad[][2] = {{"\\p{L}+", "POSIX lacks"}, {"a(?=b)", "lookaround"},
                            {"(a)\\1", "backreferences"}, {"(ab", "does not compile"},
                            {"[\\W]", "negated class"}, {"ab\\", "lone backslash"}};
    onr_tensor *in[1] = {x};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        onr_node *n = tk_node("RegexFullMatch");
        tk_attr_string(n, "pattern", bad[c][0]);
        expect_fail(n, 20, 1, in, 1, bad[c][1]);
        tk_node_free(n);
    }
    onr_node *n = tk_node("RegexFullMatch");
    expect_fail(n, 20, 1, in, 1, "pattern (string) is required");
    tk_node_free(n);
    onr_tensor *f = tk_f32(1, d, NULL);
    onr_tensor *inf[1] = {f};
    n = tk_node("RegexFullMatch");
    tk_attr_string(n, "pattern", "a");
    expect_fail(n, 20, 1, inf, 1, "unsupported type");
    tk_node_free(n);
    tk_free_all(1, inf);
    tk_free_all(1, in);
}

static void test_normalizer_errors(void **state)
{
    (void)state;
    const char *v[4] = {"a", "b", "c", "d"};
    int64_t d2[2] = {2, 2}, d3[3] = {1, 2, 2}, d0[1] = {0};
    onr_tensor *x2 = strs(2, d2, v), *x3 = strs(3, d3, v), *x0 = strs(1, d0, v);
    onr_tensor *i2[1] = {x2}, *i3[1] = {x3}, *i0[1] = {x0}, *out[1];
    onr_node *n = tk_node("StringNormalizer");
    expect_fail(n, 10, 1, i2, 1, "[1, C]");
    expect_fail(n, 10, 1, i3, 1, "rank 3");
    /* an empty [0] input gives the one empty string */
    run_ok(n, 10, 1, i0, 1, out);
    assert_int_equal(out[0]->numel, 1);
    assert_string_equal(sat(out[0], 0), "");
    tk_free_all(1, out);
    tk_node_free(n);
    n = tk_node("StringNormalizer");
    tk_attr_string(n, "case_change_action", "lower");
    expect_fail(n, 10, 1, i0, 1, "not NONE, LOWER or UPPER");
    tk_node_free(n);
    n = tk_node("StringNormalizer");
    tk_attr_int(n, "is_case_sensitive", 2);
    expect_fail(n, 10, 1, i0, 1, "is_case_sensitive must be 0 or 1");
    tk_node_free(n);
    tk_free_all(1, i2), tk_free_all(1, i3), tk_free_all(1, i0);
}

static void test_split_concat(void **state)
{
    (void)state;
    const char *v[3] = {"a  b", "", " c "};
    int64_t d[1] = {3};
    onr_tensor *x = strs(1, d, v), *in[1] = {x}, *out[2];
    onr_node *n = tk_node("StringSplit");
    tk_attr_string(n, "delimiter", " ");
    run_ok(n, 20, 1, in, 2, out);
    int64_t yd[2] = {3, 3};
    tk_assert_shape(out[0], 2, yd);
    const int64_t cnt[3] = {3, 1, 3};
    tk_assert_eq_i64(out[1], cnt, 3);
    assert_string_equal(sat(out[0], 1), "");
    assert_string_equal(sat(out[0], 2), "b");
    tk_free_all(2, out);
    tk_node_free(n);
    n = tk_node("StringSplit");
    tk_attr_int(n, "maxsplit", -1);
    expect_fail(n, 20, 1, in, 2, "maxsplit must be >= 0");
    tk_node_free(n);
    /* only Z wanted */
    n = tk_node("StringSplit");
    onr_tensor *o2[2] = {0};
    onr_err err = {0};
    assert_int_equal(tk_run(n, 20, 1, in, 2, o2, 1, &err), ONR_OK);
    const int64_t wcnt[3] = {2, 0, 1};
    tk_assert_eq_i64(o2[1], wcnt, 3);
    tk_free_all(2, o2);
    tk_node_free(n);
    /* StringConcat: shapes that do not broadcast; a non-string input */
    int64_t d2[1] = {2};
    const char *w[2] = {"p", "q"};
    onr_tensor *y = strs(1, d2, w), *f = tk_f32(1, d, NULL);
    onr_tensor *bad[2] = {x, y}, *badt[2] = {x, f};
    n = tk_node("StringConcat");
    expect_fail(n, 20, 2, bad, 1, "cannot be broadcast");
    expect_fail(n, 20, 2, badt, 1, "unsupported type");
    tk_node_free(n);
    tk_free_all(1, &y), tk_free_all(1, &f), tk_free_all(1, in);
}

static void test_tfidf(void **state)
{
    (void)state;
    const int64_t pool[6] = {2, 3, 5, 4, 4, 5}, counts[2] = {0, 4}, idx[5] = {0, 1, 2, 3, 4};
    const int32_t x32[6] = {2, 3, 5, 4, 4, 5};
    const int64_t x64[6] = {2, 3, 5, 4, 4, 5};
    int64_t d[2] = {1, 6};
    onr_tensor *a = tk_i32(2, d, x32), *b = tk_i64(2, d, x64);
    onr_node *n = tk_node("TfIdfVectorizer");
    tk_attr_string(n, "mode", "TF");
    tk_attr_int(n, "min_gram_length", 1);
    tk_attr_int(n, "max_gram_length", 2);
    tk_attr_int(n, "max_skip_count", 1);
    tk_attr_ints(n, "ngram_counts", 2, counts);
    tk_attr_ints(n, "ngram_indexes", 5, idx);
    tk_attr_ints(n, "pool_int64s", 6, pool);
    onr_tensor *ia[1] = {a}, *ib[1] = {b}, *oa[1], *ob[1];
    run_ok(n, 9, 1, ia, 1, oa);
    run_ok(n, 9, 1, ib, 1, ob);
    /* unigrams 2 3 5 4: 1 1 2 2; bigram (4,5): once at distance 1, once at 2 */
    const float want[5] = {1, 1, 2, 2, 2};
    tk_assert_close_f32(oa[0], want, 5, 0, 0);
    tk_assert_close_f32(ob[0], want, 5, 0, 0);
    tk_free_all(1, oa), tk_free_all(1, ob);
    /* a huge max_skip_count gives the same counts, at once */
    tk_node_free(n);
    n = tk_node("TfIdfVectorizer");
    tk_attr_string(n, "mode", "TF");
    tk_attr_int(n, "min_gram_length", 1);
    tk_attr_int(n, "max_gram_length", 2);
    tk_attr_int(n, "max_skip_count", INT64_MAX);
    tk_attr_ints(n, "ngram_counts", 2, counts);
    tk_attr_ints(n, "ngram_indexes", 5, idx);
    tk_attr_ints(n, "pool_int64s", 6, pool);
    run_ok(n, 9, 1, ib, 1, ob);
    const float want_all[5] = {1, 1, 2, 2, 2}; /* (4,5) at distances 1 and 2 only */
    tk_assert_close_f32(ob[0], want_all, 5, 0, 0);
    tk_free_all(1, ob);
    onr_tensor *xs = tk_typed(ONR_STRING, 2, d, NULL);
    onr_tensor *is[1] = {xs};
    expect_fail(n, 9, 1, is, 1, "unsupported type");
    tk_free_all(1, is);
    tk_node_free(n);
    /* bad attributes */
    struct { const char *what; int64_t minn, maxn, skip; const char *mode; int64_t c1; int nw; } bad[] = {
        {"mode is 'X'", 1, 2, 0, "X", 4, 0},
        {"min_gram_length (0)", 0, 2, 0, "TF", 4, 0},
        {"max_skip_count (-1)", 1, 2, -1, "TF", 4, 0},
        {"not a whole number", 1, 2, 0, "TF", 3, 0},
        {"weights has 2 entries", 1, 2, 0, "TFIDF", 4, 2},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        n = tk_node("TfIdfVectorizer");
        tk_attr_string(n, "mode", bad[k].mode);
        tk_attr_int(n, "min_gram_length", bad[k].minn);
        tk_attr_int(n, "max_gram_length", bad[k].maxn);
        tk_attr_int(n, "max_skip_count", bad[k].skip);
        const int64_t cc[2] = {0, bad[k].c1};
        tk_attr_ints(n, "ngram_counts", 2, cc);
        tk_attr_ints(n, "ngram_indexes", 5, idx);
        tk_attr_ints(n, "pool_int64s", 6, pool);
        const float wts[2] = {1, 2};
        if (bad[k].nw) tk_attr_floats(n, "weights", bad[k].nw, wts);
        expect_fail(n, 9, 1, ib, 1, bad[k].what);
        tk_node_free(n);
    }
    n = tk_node("TfIdfVectorizer");
    tk_attr_string(n, "mode", "TF");
    tk_attr_int(n, "min_gram_length", 1);
    tk_attr_int(n, "max_gram_length", 1);
    tk_attr_int(n, "max_skip_count", 0);
    tk_attr_ints(n, "ngram_counts", 2, counts);
    tk_attr_ints(n, "ngram_indexes", 5, idx);
    expect_fail(n, 9, 1, ib, 1, "exactly one of pool_strings and pool_int64s");
    tk_node_free(n);
    /* an empty [0, C] batch gives [0, out] */
    int64_t d0[2] = {0, 6};
    onr_tensor *e = tk_i64(2, d0, NULL), *ie[1] = {e}, *oe[1];
    n = tk_node("TfIdfVectorizer");
    tk_attr_string(n, "mode", "IDF");
    tk_attr_int(n, "min_gram_length", 1);
    tk_attr_int(n, "max_gram_length", 2);
    tk_attr_int(n, "max_skip_count", 0);
    tk_attr_ints(n, "ngram_counts", 2, counts);
    tk_attr_ints(n, "ngram_indexes", 5, idx);
    tk_attr_ints(n, "pool_int64s", 6, pool);
    run_ok(n, 9, 1, ie, 1, oe);
    int64_t od[2] = {0, 5};
    tk_assert_shape(oe[0], 2, od);
    tk_free_all(1, oe);
    tk_node_free(n);
    tk_free_all(1, ie), tk_free_all(1, ia), tk_free_all(1, ib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_normalizer_errors),
        cmocka_unit_test(test_split_concat),
        cmocka_unit_test(test_tfidf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
