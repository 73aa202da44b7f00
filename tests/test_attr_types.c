/*
 * test_attr_types.c - an attribute of the wrong type is an error naming the
 * node, the attribute, the type expected and the type given (issue 16, item
 * 9), never silently replaced by the default. One check for every op: the
 * typed getters (onr_attr_int, ...) record a mismatch and onr_step_create
 * turns it into the error; these cases cover a spread of ops and types.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1 };
enum { A_FLOAT = 1, A_INT = 2, A_STRING = 3, A_FLOATS = 6, A_INTS = 7 };

/* AttributeProto `name` of the given type with a plausible value. */
static void attr(pbw *attrs, const char *name, int type)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    switch (type) {
    case A_FLOAT: pbw_float(&a, 2, 0.5f); break;
    case A_INT: pbw_int(&a, 3, 1); break;
    case A_STRING: pbw_str(&a, 4, "1"); break;
    case A_FLOATS: pbw_float(&a, 7, 1.f); break;
    case A_INTS:
        pbw_int(&a, 8, 1);
        pbw_int(&a, 8, 0);
        break;
    }
    pbw_int(&a, 20, type);
    pbw_msg(attrs, 5, &a);
}

/* y = op(inputs...) with one attribute, inputs float of shape dims. */
static onr_status open_one(const char *op, int n_in, int rank, const int64_t *dims,
                           const char *aname, int atype, int opset, char *msg, size_t len)
{
    pbw g = {0}, attrs = {0};
    const char *ins[4] = {"a", "b", "c", NULL};
    ins[n_in] = NULL;
    attr(&attrs, aname, atype);
    pbw_node(&g, op, "the_node", ins, (const char *[]){"y", NULL}, &attrs);
    for (int i = 0; i < n_in; i++) pbw_value_info(&g, 11, ins[i], F32, rank, dims);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw m = pbw_model(&g, 8, opset);
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
    snprintf(msg, len, "%s", onr_session_errmsg(s));
    onr_session_free(s);
    free(m.b);
    return st;
}

static void test_wrong_types_refused(void **state)
{
    (void)state;
    static const int64_t d4[] = {1, 2, 4, 4}, d2[] = {4, 4};
    static const struct {
        const char *op;
        int n_in, rank;
        const int64_t *dims;
        const char *attr;
        int given;
        const char *want, *got;
        int opset; /* 0: 13 */
    } cases[] = {
        {"Conv", 2, 4, d4, "group", A_INTS, "INT", "INTS", 0},
        {"Conv", 2, 4, d4, "strides", A_INT, "INTS", "INT", 0},
        {"Gemm", 2, 2, d2, "alpha", A_STRING, "FLOAT", "STRING", 0},
        {"Gemm", 2, 2, d2, "transB", A_FLOAT, "INT", "FLOAT", 0},
        {"LeakyRelu", 1, 2, d2, "alpha", A_INT, "FLOAT", "INT", 0},
        {"Transpose", 1, 2, d2, "perm", A_INT, "INTS", "INT", 0},
        {"Softmax", 1, 2, d2, "axis", A_STRING, "INT", "STRING", 0},
        {"Concat", 2, 2, d2, "axis", A_FLOAT, "INT", "FLOAT", 0},
        {"MaxPool", 1, 4, d4, "kernel_shape", A_FLOATS, "INTS", "FLOATS", 0},
        {"ReduceSum", 1, 2, d2, "keepdims", A_INTS, "INT", "INTS", 0},
        {"Flatten", 1, 2, d2, "axis", A_FLOAT, "INT", "FLOAT", 0},
        {"Gather", 2, 2, d2, "axis", A_STRING, "INT", "STRING", 0},
        {"Split", 1, 2, d2, "split", A_FLOATS, "INTS", "FLOATS", 11},
        {"EyeLike", 1, 2, d2, "dtype", A_FLOAT, "INT", "FLOAT", 0},
        {"LpPool", 1, 4, d4, "p", A_STRING, "INT", "STRING", 0},
        {"Cast", 1, 2, d2, "to", A_FLOATS, "INT", "FLOATS", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[1024];
        onr_status st = open_one(cases[i].op, cases[i].n_in, cases[i].rank, cases[i].dims,
                                 cases[i].attr, cases[i].given,
                                 cases[i].opset ? cases[i].opset : 13, msg, sizeof msg);
        char want[200];
        snprintf(want, sizeof want, "attribute '%s' must be of type %s, but the model gives %s",
                 cases[i].attr, cases[i].want, cases[i].got);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "'%s'", cases[i].attr);
        /* the central message, or an op's own (e.g. Conv: "must be a list of ints") */
        if (st != ONR_E_MODEL || !strstr(msg, "the_node") || !strstr(msg, cases[i].op) ||
            !strstr(msg, quoted) || !(strstr(msg, want) || strstr(msg, "must be")))
            fail_msg("%s with %s of the wrong type: status %d, message '%s'", cases[i].op,
                     cases[i].attr, st, msg);
        print_message("%s\n", msg);
    }
}

/* The right types still load (the check has no false alarms). */
static void test_right_types_load(void **state)
{
    (void)state;
    static const int64_t d2[] = {4, 4};
    char msg[1024];
    assert_int_equal(open_one("Gemm", 2, 2, d2, "alpha", A_FLOAT, 13, msg, sizeof msg), ONR_OK);
    assert_int_equal(open_one("LeakyRelu", 1, 2, d2, "alpha", A_FLOAT, 13, msg, sizeof msg),
                     ONR_OK);
    assert_int_equal(open_one("Softmax", 1, 2, d2, "axis", A_INT, 13, msg, sizeof msg), ONR_OK);
    assert_int_equal(open_one("Transpose", 1, 2, d2, "perm", A_INTS, 13, msg, sizeof msg),
                     ONR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_types_refused),
        cmocka_unit_test(test_right_types_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
