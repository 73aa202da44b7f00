/*
 * test_maps.c - maps as values: the C API (onr_map_new, keys, values,
 * sequences and optionals of maps), .pb round trips (MapProto, SequenceProto
 * of maps, OptionalProto of a map), hostile MapProto files (clean errors),
 * graph inputs and outputs declared map / seq(map) (the loader's type
 * checks and the session's input checks), and ZipMap, CastMap and
 * DictVectorizer (ai.onnx.ml) on models written with pbw.h: results,
 * attribute errors, and the run-time errors maps make possible.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kutil.h"
#include "pbw.h"

#define F32 1
#define I64 7
#define STR 8
#define F64 11

#define S(...) ((const char *[]){__VA_ARGS__, NULL})

static char tmpdir[256];

static int group_setup(void **state)
{
    (void)state;
    return pbw_tmpdir_make(tmpdir, sizeof tmpdir, "maps");
}

static int group_teardown(void **state)
{
    (void)state;
    return pbw_tmpdir_remove(tmpdir);
}

static onr_tensor *str_tensor(int64_t n, const char *const *v)
{
    onr_tensor *t = onr_tensor_new(ONR_STRING, 1, &n);
    assert_non_null(t);
    for (int64_t i = 0; i < n; i++) {
        char **d = onr_tensor_data(t);
        free(d[i]);
        d[i] = onr_strdup(v[i]);
    }
    return t;
}

static onr_tensor *map_i64_f32(int64_t n, const int64_t *k, const float *v)
{
    onr_tensor *kt = tk_i64(1, &n, k), *vt = tk_f32(1, &n, v);
    onr_tensor *m = onr_map_new(kt, vt);
    assert_non_null(m);
    onr_tensor_free(kt), onr_tensor_free(vt);
    return m;
}

/* ---- the C API ------------------------------------------------------------ */

static void test_map_api(void **state)
{
    (void)state;
    int64_t n = 3, two = 2;
    onr_tensor *k = tk_i64(1, &n, (const int64_t[]){5, -1, 9});
    onr_tensor *v = tk_f32(1, &n, (const float[]){0.5f, 1.5f, 2.5f});
    onr_tensor *m = onr_map_new(k, v);
    assert_non_null(m);
    assert_int_equal(onr_value_kind(m), ONR_VALUE_MAP);
    assert_int_equal(onr_value_count(m), 3);
    assert_int_equal(onr_tensor_dtype(m), ONR_FLOAT);
    assert_null(onr_value_element(m, 0)); /* a map's parts are read with onr_map_keys/values */
    assert_memory_equal(onr_tensor_data(onr_map_keys(m)), onr_tensor_data(k), 3 * sizeof(int64_t));
    assert_memory_equal(onr_tensor_data(onr_map_values(m)), onr_tensor_data(v), 3 * sizeof(float));
    assert_ptr_not_equal(onr_map_keys(m), k); /* copies */
    assert_null(onr_map_keys(k));
    assert_null(onr_map_values(NULL));

    /* refused: keys not 1-D / not a key type, counts that differ, a key twice */
    onr_tensor *k2 = tk_i64(2, (const int64_t[]){1, 3}, (const int64_t[]){1, 2, 3});
    onr_tensor *kf = tk_f32(1, &n, (const float[]){1, 2, 3});
    onr_tensor *kshort = tk_i64(1, &two, (const int64_t[]){1, 2});
    onr_tensor *kdup = tk_i64(1, &n, (const int64_t[]){4, 7, 4});
    assert_null(onr_map_new(k2, v));
    assert_null(onr_map_new(kf, v));
    assert_null(onr_map_new(kshort, v));
    assert_null(onr_map_new(kdup, v));
    assert_null(onr_map_new(NULL, v));
    onr_tensor *sk = str_tensor(3, (const char *[]){"a", "b", "a"});
    assert_null(onr_map_new(sk, v));
    onr_tensor_free(sk);
    sk = str_tensor(3, (const char *[]){"a", "b", "c"});
    onr_tensor *ms = onr_map_new(sk, v);
    assert_non_null(ms);
    assert_string_equal(((char **)onr_tensor_data(onr_map_keys(ms)))[2], "c");
    /* values of rank 2: each value is a row */
    onr_tensor *v2 = tk_f32(2, (const int64_t[]){3, 2}, (const float[]){1, 2, 3, 4, 5, 6});
    onr_tensor *mr = onr_map_new(k, v2);
    assert_non_null(mr);
    assert_int_equal(onr_value_count(mr), 3);

    /* sequences of maps: one key and value type; no tensors among them */
    const onr_tensor *items[] = {m, m}, *mixed[] = {m, v}, *keys_differ[] = {m, ms};
    onr_tensor *seq = onr_sequence_new(ONR_FLOAT, 2, items);
    assert_non_null(seq);
    assert_int_equal(onr_value_kind(onr_value_element(seq, 1)), ONR_VALUE_MAP);
    assert_null(onr_sequence_new(ONR_FLOAT, 2, mixed));
    assert_null(onr_sequence_new(ONR_FLOAT, 2, keys_differ));
    assert_null(onr_sequence_new(ONR_DOUBLE, 2, items));
    onr_tensor *opt = onr_optional_new(ONR_FLOAT, m);
    assert_non_null(opt);
    assert_int_equal(onr_value_kind(onr_value_element(opt, 0)), ONR_VALUE_MAP);

    onr_tensor_free(seq), onr_tensor_free(opt), onr_tensor_free(mr), onr_tensor_free(v2);
    onr_tensor_free(ms), onr_tensor_free(sk), onr_tensor_free(k2), onr_tensor_free(kf);
    onr_tensor_free(kshort), onr_tensor_free(kdup), onr_tensor_free(m), onr_tensor_free(k);
    onr_tensor_free(v);
}

/* ---- .pb round trips ----------------------------------------------------------- */

static void assert_same_map(const onr_tensor *a, const onr_tensor *b)
{
    assert_int_equal(onr_value_kind(a), ONR_VALUE_MAP);
    assert_int_equal(onr_value_kind(b), ONR_VALUE_MAP);
    const onr_tensor *ka = onr_map_keys(a), *kb = onr_map_keys(b);
    const onr_tensor *va = onr_map_values(a), *vb = onr_map_values(b);
    assert_int_equal(onr_tensor_dtype(ka), onr_tensor_dtype(kb));
    assert_int_equal(onr_tensor_dtype(va), onr_tensor_dtype(vb));
    assert_int_equal(onr_tensor_numel(ka), onr_tensor_numel(kb));
    assert_int_equal(onr_tensor_rank(va), onr_tensor_rank(vb));
    for (int d = 0; d < onr_tensor_rank(va); d++)
        assert_int_equal(onr_tensor_dims(va)[d], onr_tensor_dims(vb)[d]);
    const onr_tensor *pk[2] = {ka, va}, *qk[2] = {kb, vb};
    for (int j = 0; j < 2; j++) {
        if (onr_tensor_dtype(pk[j]) == ONR_STRING) {
            for (int64_t i = 0; i < onr_tensor_numel(pk[j]); i++)
                assert_string_equal(((char **)onr_tensor_data(pk[j]))[i],
                                    ((char **)onr_tensor_data(qk[j]))[i]);
        } else if (onr_tensor_numel(pk[j])) {
            assert_memory_equal(onr_tensor_data(pk[j]), onr_tensor_data(qk[j]),
                                (size_t)onr_tensor_numel(pk[j]) * onr_dtype_size(onr_tensor_dtype(pk[j])));
        }
    }
}

static onr_tensor *round_trip(const onr_tensor *v, onr_kind kind, const char *tag)
{
    char path[512], msg[256];
    snprintf(path, sizeof path, "%s/%s.pb", tmpdir, tag);
    if (onr_tensor_write_pb(v, "v", path, msg, sizeof msg)) fail_msg("write %s: %s", tag, msg);
    onr_tensor *back = NULL;
    if (onr_value_read_file(path, kind, &back, msg, sizeof msg)) fail_msg("read %s: %s", tag, msg);
    assert_string_equal(onr_tensor_name(back), "v");
    return back;
}

static void test_map_pb_round_trip(void **state)
{
    (void)state;
    int64_t n = 3, zero = 0;
    onr_tensor *m1 = map_i64_f32(3, (const int64_t[]){7, -3, 1LL << 40}, (const float[]){1, 2, 3});
    onr_tensor *sk = str_tensor(3, (const char *[]){"x", "", "yz"});
    onr_tensor *sv = str_tensor(3, (const char *[]){"one", "two", "three"});
    onr_tensor *m2 = onr_map_new(sk, sv);
    onr_tensor *v2 = tk_typed(ONR_DOUBLE, 2, (const int64_t[]){3, 2}, (const double[]){1, 2, 3, 4, 5, 6});
    onr_tensor *m3 = onr_map_new(sk, v2);
    onr_tensor *k8 = tk_typed(ONR_INT8, 1, &n, (const int8_t[]){-128, 0, 127});
    onr_tensor *m4 = onr_map_new(k8, sv);
    onr_tensor *ke = tk_i64(1, &zero, NULL), *ve = tk_f32(1, &zero, NULL);
    onr_tensor *m5 = onr_map_new(ke, ve); /* empty */
    assert_non_null(m2), assert_non_null(m3), assert_non_null(m4), assert_non_null(m5);
    const onr_tensor *maps[] = {m1, m2, m3, m4, m5};
    for (int i = 0; i < 5; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "map%d", i);
        onr_tensor *back = round_trip(maps[i], ONR_VALUE_MAP, tag);
        assert_same_map(back, maps[i]);
        onr_tensor_free(back);
    }
    /* a sequence of maps and an optional map */
    const onr_tensor *items[] = {m1, m1};
    onr_tensor *seq = onr_sequence_new(ONR_FLOAT, 2, items), *opt = onr_optional_new(ONR_STRING, m2);
    onr_tensor *back = round_trip(seq, ONR_VALUE_SEQUENCE, "seq");
    assert_int_equal(onr_value_count(back), 2);
    assert_same_map(onr_value_element(back, 1), m1);
    onr_tensor_free(back);
    back = round_trip(opt, ONR_VALUE_OPTIONAL, "opt");
    assert_int_equal(onr_value_count(back), 1);
    assert_same_map(onr_value_element(back, 0), m2);
    onr_tensor_free(back);
    onr_tensor_free(seq), onr_tensor_free(opt);
    for (int i = 0; i < 5; i++) onr_tensor_free((onr_tensor *)maps[i]);
    onr_tensor_free(sk), onr_tensor_free(sv), onr_tensor_free(v2), onr_tensor_free(k8);
    onr_tensor_free(ke), onr_tensor_free(ve);
}

/* ---- hostile MapProto files -------------------------------------------------------- */

/* A scalar TensorProto of float v (raw data). */
static void tensor_f32(pbw *seq, float v)
{
    pbw t = {0};
    pbw_tensor_head(&t, NULL, F32, 0, NULL);
    pbw_bytes(&t, 9, &v, 4);
    pbw_msg(seq, 3, &t);
}

static onr_status read_bytes(pbw *w, onr_kind kind, char *msg, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hostile.pb", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (w->n) assert_int_equal(fwrite(w->b, 1, w->n, f), w->n);
    fclose(f);
    free(w->b);
    memset(w, 0, sizeof *w);
    onr_tensor *t = NULL;
    onr_status st = onr_value_read_file(path, kind, &t, msg, len);
    if (!st) onr_tensor_free(t);
    return st;
}

static void expect_refused(pbw *w, onr_kind kind, onr_status want, const char *needle)
{
    char msg[512] = "";
    onr_status st = read_bytes(w, kind, msg, sizeof msg);
    if (st != want || !strstr(msg, needle))
        fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, msg, needle);
}

static void test_hostile_map_files(void **state)
{
    (void)state;
    pbw m = {0}, vs = {0};
    /* 3 keys, 2 values */
    pbw_int(&m, 2, I64);
    for (int i = 0; i < 3; i++) pbw_int(&m, 3, i);
    pbw_int(&vs, 2, 1);
    tensor_f32(&vs, 1), tensor_f32(&vs, 2);
    pbw_msg(&m, 5, &vs);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "3 keys but 2 values");
    /* a float key type; no key type; an unknown one */
    pbw_int(&m, 2, F32);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "key_type 1 is not");
    pbw_int(&m, 3, 1);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "key_type 0 is not");
    pbw_int(&m, 2, 999);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "key_type 999");
    /* string keys under an int64 key type, and the reverse */
    pbw_int(&m, 2, I64);
    pbw_str(&m, 4, "a");
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "holds 1 string keys");
    pbw_int(&m, 2, STR);
    pbw_int(&m, 3, 4);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "holds 1 integer keys");
    /* a key that does not fit int8 */
    pbw_int(&m, 2, 3);
    pbw_int(&m, 3, 300);
    tensor_f32(&vs, 1);
    pbw_msg(&m, 5, &vs);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "does not fit int8");
    /* a key twice */
    pbw_int(&m, 2, STR);
    pbw_str(&m, 4, "k"), pbw_str(&m, 4, "k");
    tensor_f32(&vs, 1), tensor_f32(&vs, 2);
    pbw_msg(&m, 5, &vs);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "'k' appears twice");
    /* values of two types */
    pbw_int(&m, 2, I64);
    pbw_int(&m, 3, 1), pbw_int(&m, 3, 2);
    tensor_f32(&vs, 1);
    {
        pbw t = {0};
        double d = 2;
        pbw_tensor_head(&t, NULL, F64, 0, NULL);
        pbw_bytes(&t, 9, &d, 8);
        pbw_msg(&vs, 3, &t);
    }
    pbw_msg(&m, 5, &vs);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "map value 1 is float64");
    /* a value that claims 2^40 floats and has 4 bytes */
    pbw_int(&m, 2, I64);
    pbw_int(&m, 3, 1);
    {
        pbw t = {0};
        float f = 1;
        pbw_tensor_head(&t, NULL, F32, 1, (const int64_t[]){1LL << 40});
        pbw_bytes(&t, 9, &f, 4);
        pbw_msg(&vs, 3, &t);
    }
    pbw_msg(&m, 5, &vs);
    char msg[512];
    onr_status st = read_bytes(&m, ONR_VALUE_MAP, msg, sizeof msg);
    assert_true(st == ONR_E_MODEL || st == ONR_E_NOMEM);
    /* values that are maps */
    pbw_int(&m, 2, I64);
    pbw_int(&m, 3, 1);
    {
        pbw inner = {0};
        pbw_int(&inner, 2, I64);
        pbw_msg(&vs, 6, &inner);
    }
    pbw_msg(&m, 5, &vs);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_UNSUPPORTED, "only maps to tensors");
    /* not a MapProto at all: a truncated varint */
    pbw_raw(&m, "\x10\xff\xff", 3);
    expect_refused(&m, ONR_VALUE_MAP, ONR_E_MODEL, "not a valid MapProto");
    /* a sequence whose second map is bad names the element */
    {
        pbw seq = {0}, a = {0}, b = {0};
        pbw_int(&seq, 2, 4);
        pbw_int(&a, 2, I64);
        pbw_int(&b, 2, F32);
        pbw_msg(&seq, 6, &a);
        pbw_msg(&seq, 6, &b);
        expect_refused(&seq, ONR_VALUE_SEQUENCE, ONR_E_MODEL, "sequence element 1");
        /* maps of two key types in one sequence */
        pbw_int(&seq, 2, 4);
        pbw_int(&a, 2, I64);
        pbw_int(&b, 2, STR);
        pbw_msg(&seq, 6, &a);
        pbw_msg(&seq, 6, &b);
        expect_refused(&seq, ONR_VALUE_SEQUENCE, ONR_E_MODEL, "has string keys, element 0 int64");
    }
}

/* ---- models ------------------------------------------------------------------ */

/* TypeProto map(key, tensor(val)) into tp. */
static void map_type(pbw *tp, int key, int val)
{
    pbw mt = {0}, vt = {0}, tt = {0};
    pbw_int(&tt, 1, val);
    pbw_msg(&vt, 1, &tt);
    pbw_int(&mt, 1, key);
    pbw_msg(&mt, 2, &vt);
    pbw_msg(tp, 5, &mt);
}

/* A graph input (field 11) or output (12) of type map(key, val), wrapped in
 * a sequence when seq is set. */
static void map_value_info(pbw *g, int field, const char *name, int key, int val, int seq)
{
    pbw tp = {0}, vi = {0};
    if (seq) {
        pbw inner = {0}, sq = {0};
        map_type(&inner, key, val);
        pbw_msg(&sq, 1, &inner);
        pbw_msg(&tp, 4, &sq);
    } else {
        map_type(&tp, key, val);
    }
    pbw_str(&vi, 1, name);
    pbw_msg(&vi, 2, &tp);
    pbw_msg(g, field, &vi);
}

static pbw ml_model(pbw *g)
{
    return pbw_model_opsets(g, 8, 2, (const char *[]){"", "ai.onnx.ml"}, (const int64_t[]){17, 1});
}

static onr_status open_model(pbw *m, onr_session **s)
{
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, s);
    free(m->b);
    memset(m, 0, sizeof *m);
    return st;
}

static void expect_open_error(pbw *g, onr_status want, const char *needle)
{
    pbw m = ml_model(g);
    onr_session *s = NULL;
    onr_status st = open_model(&m, &s);
    const char *msg = onr_session_errmsg(s);
    if (st != want || !strstr(msg, needle))
        fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, msg, needle);
    onr_session_free(s);
}

static void test_zipmap(void **state)
{
    (void)state;
    pbw g = {0}, a = {0};
    pbw_value_info(&g, 11, "x", F32, -1, NULL); /* any shape: 1-D and 2-D X */
    pbw_attr_strings(&a, "classlabels_strings", (const char *[]){"a", "b", "c"}, 3);
    pbw_node_in(&g, 1, "ZipMap", "ai.onnx.ml", "zm", S("x"), S("z"), &a);
    map_value_info(&g, 12, "z", STR, F32, 1);
    pbw m = ml_model(&g);
    onr_session *s = NULL;
    if (open_model(&m, &s)) fail_msg("%s", onr_session_errmsg(s));
    onr_value_info vi;
    assert_int_equal(onr_session_output_info(s, 0, &vi), ONR_OK);
    assert_int_equal(vi.kind, ONR_VALUE_SEQUENCE);
    assert_int_equal(vi.elem_kind, ONR_VALUE_MAP);
    assert_int_equal(vi.key_dtype, ONR_STRING);
    assert_int_equal(vi.dtype, ONR_FLOAT);
    for (int64_t rows = 0; rows <= 2; rows++) { /* 0 rows: an empty sequence */
        onr_tensor *x = tk_f32(2, (const int64_t[]){rows, 3}, (const float[]){1, 2, 3, 4, 5, 6});
        const onr_tensor *in[] = {x};
        if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        const onr_tensor *z = onr_session_output(s, 0);
        assert_int_equal(onr_value_kind(z), ONR_VALUE_SEQUENCE);
        assert_int_equal(onr_value_count(z), rows);
        for (int64_t r = 0; r < rows; r++) {
            const onr_tensor *mp = onr_value_element(z, r);
            assert_int_equal(onr_value_count(mp), 3);
            assert_string_equal(((char **)onr_tensor_data(onr_map_keys(mp)))[1], "b");
            assert_true(((float *)onr_tensor_data(onr_map_values(mp)))[2] == (float)(3 * r + 3));
        }
        onr_tensor_free(x);
    }
    /* a column count that is not the label count */
    onr_tensor *x = tk_f32(2, (const int64_t[]){1, 2}, (const float[]){1, 2});
    const onr_tensor *in[] = {x};
    assert_int_not_equal(onr_session_run(s, 1, NULL, in), ONR_OK);
    if (!strstr(onr_session_errmsg(s), "2 columns but there are 3 class labels"))
        fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(x);
    /* the output taken by the caller, and the session run again */
    x = tk_f32(1, (const int64_t[]){3}, (const float[]){1, 2, 3});
    in[0] = x;
    if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor *taken = onr_session_take_output(s, 0);
    assert_int_equal(onr_value_count(taken), 1);
    if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(taken);
    onr_tensor_free(x);
    onr_session_free(s);

    /* attribute errors */
    const char *msgs[] = {"neither is", "both are", "'b' appears twice"};
    for (int k = 0; k < 3; k++) {
        pbw g2 = {0}, a2 = {0};
        pbw_value_info(&g2, 11, "x", F32, 2, (const int64_t[]){-1, 3});
        if (k == 1) pbw_attr_ints(&a2, "classlabels_int64s", (const int64_t[]){1, 2, 3}, 3);
        if (k >= 1) pbw_attr_strings(&a2, "classlabels_strings", (const char *[]){"a", "b", "b"}, 3);
        pbw_node_in(&g2, 1, "ZipMap", "ai.onnx.ml", "zm", S("x"), S("z"), k ? &a2 : NULL);
        map_value_info(&g2, 12, "z", STR, F32, 1);
        expect_open_error(&g2, ONR_E_MODEL, msgs[k]);
    }
}

/* ZipMap's seq(map) through control flow: an If choosing between two
 * ZipMaps (the else branch's made inside it), a Loop carrying the result
 * (a body that passes it on shares it: no map is copied), and an
 * Optional / OptionalGetElement around it. */
static void test_seq_of_maps_through_control_flow(void **state)
{
    (void)state;
    pbw g = {0}, a = {0}, ia = {0}, la = {0}, then_g = {0}, else_g = {0}, body = {0}, ea = {0};
    pbw_str(&then_g, 2, "then");
    pbw_node(&then_g, "Identity", "tid", S("z"), S("t_out"), NULL);
    pbw_value_info(&then_g, 12, "t_out", F32, -1, NULL);
    pbw_str(&else_g, 2, "else");
    pbw_node(&else_g, "Neg", "neg", S("x"), S("nx"), NULL);
    pbw_attr_ints(&ea, "classlabels_int64s", (const int64_t[]){10, 20}, 2);
    pbw_node_in(&else_g, 1, "ZipMap", "ai.onnx.ml", "zm2", S("nx"), S("e_out"), &ea);
    pbw_value_info(&else_g, 12, "e_out", F32, -1, NULL);
    pbw_str(&body, 2, "body");
    pbw_value_info(&body, 11, "i", I64, 0, NULL);
    pbw_value_info(&body, 11, "c_in", 9, 0, NULL);
    pbw_value_info(&body, 11, "s_in", F32, -1, NULL);
    pbw_node(&body, "Identity", "cid", S("c_in"), S("c_out"), NULL);
    pbw_node(&body, "Identity", "sid", S("s_in"), S("s_out"), NULL);
    pbw_value_info(&body, 12, "c_out", 9, 0, NULL);
    pbw_value_info(&body, 12, "s_out", F32, -1, NULL);

    pbw_value_info(&g, 11, "x", F32, 2, (const int64_t[]){-1, 2});
    pbw_value_info(&g, 11, "cond", 9, 0, NULL);
    pbw_value_info(&g, 11, "M", I64, 0, NULL);
    pbw_attr_ints(&a, "classlabels_int64s", (const int64_t[]){10, 20}, 2);
    pbw_node_in(&g, 1, "ZipMap", "ai.onnx.ml", "zm", S("x"), S("z"), &a);
    pbw_attr_graph(&ia, "then_branch", &then_g);
    pbw_attr_graph(&ia, "else_branch", &else_g);
    pbw_node(&g, "If", "if", S("cond"), S("sel"), &ia);
    pbw_attr_graph(&la, "body", &body);
    pbw_node(&g, "Loop", "loop", S("M", "", "sel"), S("looped"), &la);
    pbw_node(&g, "Optional", "opt", S("looped"), S("o"), NULL);
    pbw_node(&g, "OptionalGetElement", "get", S("o"), S("got"), NULL);
    map_value_info(&g, 12, "looped", I64, F32, 1);
    map_value_info(&g, 12, "got", I64, F32, 1);
    pbw m = ml_model(&g);
    onr_session *s = NULL;
    if (open_model(&m, &s)) fail_msg("%s", onr_session_errmsg(s));
    for (int k = 0; k < 4; k++) {
        uint8_t cond = k & 1;
        int64_t iters = k < 2 ? 0 : 3, rows = 2;
        onr_tensor *x = tk_f32(2, (const int64_t[]){rows, 2}, (const float[]){1, 2, 3, 4});
        onr_tensor *c = tk_bool(0, NULL, &cond), *tm = tk_i64(0, NULL, &iters);
        const onr_tensor *in[] = {x, c, tm};
        if (onr_session_run(s, 3, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
        for (int o = 0; o < 2; o++) {
            const onr_tensor *z = onr_session_output(s, o);
            assert_int_equal(onr_value_kind(z), ONR_VALUE_SEQUENCE);
            assert_int_equal(onr_value_count(z), rows);
            for (int64_t r = 0; r < rows; r++) {
                const onr_tensor *mp = onr_value_element(z, r);
                assert_int_equal(onr_value_kind(mp), ONR_VALUE_MAP);
                assert_int_equal(((int64_t *)onr_tensor_data(onr_map_keys(mp)))[1], 20);
                float want = (float)(2 * r + 2) * (cond ? 1.f : -1.f);
                assert_true(((float *)onr_tensor_data(onr_map_values(mp)))[1] == want);
            }
        }
        onr_tensor_free(x), onr_tensor_free(c), onr_tensor_free(tm);
    }
    onr_session_free(s);
}

/* A one-node model: map input "x" (key, val) -> op -> tensor output "y". */
static onr_session *map_op_model(const char *op, int key, int val, pbw *attrs, onr_status *st)
{
    pbw g = {0};
    map_value_info(&g, 11, "x", key, val, 0);
    pbw_node_in(&g, 1, op, "ai.onnx.ml", "n", S("x"), S("y"), attrs);
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw m = ml_model(&g);
    onr_session *s = NULL;
    *st = open_model(&m, &s);
    return s;
}

static void test_castmap(void **state)
{
    (void)state;
    onr_status st;
    pbw a = {0};
    pbw_attr_string(&a, "map_form", "SPARSE");
    pbw_attr_int(&a, "max_map", 5);
    onr_session *s = map_op_model("CastMap", I64, F32, &a, &st);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor *mp = map_i64_f32(2, (const int64_t[]){4, 1}, (const float[]){2.5f, -1});
    const onr_tensor *in[] = {mp};
    if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    const onr_tensor *y = onr_session_output(s, 0);
    tk_assert_shape(y, 2, (const int64_t[]){1, 5});
    tk_assert_close_f32(y, (const float[]){0, -1, 0, 0, 2.5f}, 5, 0, 0);
    onr_tensor_free(mp);
    /* a key outside [0, max_map): a run-time error, not a write out of bounds */
    mp = map_i64_f32(2, (const int64_t[]){5, 1}, (const float[]){2.5f, -1});
    in[0] = mp;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_RUNTIME);
    if (!strstr(onr_session_errmsg(s), "map key 5 is outside")) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(mp);
    /* the wrong kind and the wrong key type: refused at the input */
    onr_tensor *t = tk_f32(1, (const int64_t[]){1}, (const float[]){1});
    in[0] = t;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_INPUT);
    if (!strstr(onr_session_errmsg(s), "expected a map, got a tensor")) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor *k = str_tensor(1, (const char *[]){"a"});
    onr_tensor *m2 = onr_map_new(k, t);
    in[0] = m2;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_INPUT);
    if (!strstr(onr_session_errmsg(s), "expected map keys of int64, got string"))
        fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(m2), onr_tensor_free(k), onr_tensor_free(t);
    onr_session_free(s);

    /* dense, string values to int64, keys out of order; then a string that is no number */
    pbw_attr_string(&a, "cast_to", "TO_INT64");
    s = map_op_model("CastMap", I64, STR, &a, &st);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor *kk = tk_i64(1, (const int64_t[]){3}, (const int64_t[]){9, -2, 4});
    onr_tensor *vv = str_tensor(3, (const char *[]){"90", "-20", "40"});
    mp = onr_map_new(kk, vv);
    in[0] = mp;
    if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    y = onr_session_output(s, 0);
    tk_assert_shape(y, 2, (const int64_t[]){1, 3});
    tk_assert_eq_i64(y, (const int64_t[]){-20, 40, 90}, 3);
    onr_tensor_free(mp), onr_tensor_free(vv);
    vv = str_tensor(3, (const char *[]){"90", "x", "40"});
    mp = onr_map_new(kk, vv);
    in[0] = mp;
    assert_int_equal(onr_session_run(s, 1, NULL, in), ONR_E_RUNTIME);
    if (!strstr(onr_session_errmsg(s), "('x') is not an int64")) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor_free(mp), onr_tensor_free(vv), onr_tensor_free(kk);
    onr_session_free(s);

    /* attribute errors */
    const char *name[] = {"cast_to", "map_form", "max_map"};
    const char *msgs[] = {"'cast_to' is 'TO_BOOL'", "'map_form' is 'COO'", "'max_map' is 0"};
    for (int i = 0; i < 3; i++) {
        pbw b = {0};
        if (i == 0) pbw_attr_string(&b, name[i], "TO_BOOL");
        if (i == 1) pbw_attr_string(&b, name[i], "COO");
        if (i == 2) pbw_attr_string(&b, "map_form", "SPARSE"), pbw_attr_int(&b, name[i], 0);
        s = map_op_model("CastMap", I64, F32, &b, &st);
        if (st != ONR_E_MODEL || !strstr(onr_session_errmsg(s), msgs[i]))
            fail_msg("%d: %s", st, onr_session_errmsg(s));
        onr_session_free(s);
    }
}

static void test_dictvectorizer(void **state)
{
    (void)state;
    onr_status st;
    pbw a = {0};
    pbw_attr_strings(&a, "string_vocabulary", (const char *[]){"a", "c", "b", "z", "c"}, 5);
    onr_session *s = map_op_model("DictVectorizer", STR, F64, &a, &st);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    onr_tensor *k = str_tensor(3, (const char *[]){"c", "q", "a"});
    onr_tensor *v = tk_typed(ONR_DOUBLE, 1, (const int64_t[]){3}, (const double[]){8, 100, 4});
    onr_tensor *mp = onr_map_new(k, v);
    const onr_tensor *in[] = {mp};
    if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    const onr_tensor *y = onr_session_output(s, 0);
    tk_assert_shape(y, 2, (const int64_t[]){1, 5});
    assert_int_equal(onr_tensor_dtype(y), ONR_DOUBLE);
    /* "c" listed twice: its first place; "q" is not in the vocabulary */
    const double want[] = {4, 8, 0, 0, 0};
    assert_memory_equal(onr_tensor_data(y), want, sizeof want);
    /* an empty map: all zeros */
    onr_tensor *ke = str_tensor(0, NULL), *ve = tk_typed(ONR_DOUBLE, 1, (const int64_t[]){0}, NULL);
    onr_tensor *me = onr_map_new(ke, ve);
    in[0] = me;
    if (onr_session_run(s, 1, NULL, in)) fail_msg("%s", onr_session_errmsg(s));
    const double zeros[5] = {0};
    assert_memory_equal(onr_tensor_data(onr_session_output(s, 0)), zeros, sizeof zeros);
    onr_tensor_free(me), onr_tensor_free(ke), onr_tensor_free(ve);
    onr_tensor_free(mp), onr_tensor_free(k), onr_tensor_free(v);
    onr_session_free(s);

    /* neither vocabulary, and both */
    for (int i = 0; i < 2; i++) {
        pbw b = {0};
        if (i) {
            pbw_attr_strings(&b, "string_vocabulary", (const char *[]){"a"}, 1);
            pbw_attr_ints(&b, "int64_vocabulary", (const int64_t[]){1}, 1);
        }
        s = map_op_model("DictVectorizer", STR, F32, i ? &b : NULL, &st);
        if (st != ONR_E_MODEL || !strstr(onr_session_errmsg(s), i ? "both are" : "neither is"))
            fail_msg("%d: %s", st, onr_session_errmsg(s));
        onr_session_free(s);
    }
}

/* Declared types the loader refuses: a float key type, a map to maps. */
static void test_loader_map_types(void **state)
{
    (void)state;
    pbw g = {0};
    map_value_info(&g, 11, "x", F32, F32, 0);
    pbw_node(&g, "Identity", "id", S("x"), S("y"), NULL);
    expect_open_error(&g, ONR_E_MODEL, "map key type 1 is not an integer or string type");
    pbw tp = {0}, mt = {0}, inner = {0}, vi = {0};
    map_type(&inner, I64, F32);
    pbw_int(&mt, 1, I64);
    pbw_msg(&mt, 2, &inner);
    pbw_msg(&tp, 5, &mt);
    pbw_str(&vi, 1, "x");
    pbw_msg(&vi, 2, &tp);
    pbw_msg(&g, 11, &vi);
    pbw_node(&g, "Identity", "id", S("x"), S("y"), NULL);
    expect_open_error(&g, ONR_E_UNSUPPORTED, "only maps to tensors");
}

/* The CLI: -i reads a MapProto, -o writes a SequenceProto of maps, the
 * summary shows a map, and without -i a map input is generated empty. */
static void test_cli_maps(void **state)
{
    (void)state;
    const char *exe = getenv("ONR_CLI"), *src = getenv("ONR_SOURCE_DIR");
    if (!exe || !src) skip();
    char cmd[2048], path[600], msg[256];
    /* ZipMap: the output file read back equals the case's expected one */
    snprintf(cmd, sizeof cmd, "'%s' run '%s/testdata/spec/zipmap_int64/model.onnx' -i "
             "'%s/testdata/spec/zipmap_int64/test_data_set_0/input_0.pb' -o '%s/out' >/dev/null 2>&1",
             exe, src, src, tmpdir);
    assert_int_equal(system(cmd), 0);
    onr_tensor *got = NULL, *want = NULL;
    snprintf(path, sizeof path, "%s/out/output_0.pb", tmpdir);
    if (onr_value_read_file(path, ONR_VALUE_SEQUENCE, &got, msg, sizeof msg)) fail_msg("%s", msg);
    snprintf(path, sizeof path, "%s/testdata/spec/zipmap_int64/test_data_set_0/output_0.pb", src);
    if (onr_value_read_file(path, ONR_VALUE_SEQUENCE, &want, msg, sizeof msg)) fail_msg("%s", msg);
    assert_string_equal(onr_tensor_name(got), "z");
    assert_int_equal(onr_value_count(got), onr_value_count(want));
    for (int64_t i = 0; i < onr_value_count(got); i++)
        assert_same_map(onr_value_element(got, i), onr_value_element(want, i));
    onr_tensor_free(got), onr_tensor_free(want);
    /* a map input read with -i, summarized; then generated (empty) */
    const char *gen[] = {" -i '%s/testdata/spec/castmap_dense_float/test_data_set_0/input_0.pb'", ""};
    const char *words[] = {"y: float32 [1,4] = -1.25 2.75 0.5 3", "y: float32 [1,0]"};
    for (int k = 0; k < 2; k++) {
        char in[700];
        snprintf(in, sizeof in, gen[k], src);
        snprintf(cmd, sizeof cmd, "'%s' run '%s/testdata/spec/castmap_dense_float/model.onnx'%s 2>&1",
                 exe, src, in);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char out[4096] = "";
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        assert_int_equal(pclose(p), 0);
        if (!strstr(out, words[k])) fail_msg("output lacks '%s':\n%s", words[k], out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_api),
        cmocka_unit_test(test_map_pb_round_trip),
        cmocka_unit_test(test_hostile_map_files),
        cmocka_unit_test(test_zipmap),
        cmocka_unit_test(test_castmap),
        cmocka_unit_test(test_dictvectorizer),
        cmocka_unit_test(test_loader_map_types),
        cmocka_unit_test(test_cli_maps),
        cmocka_unit_test(test_seq_of_maps_through_control_flow),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
