/*
 * test_loader.c - the loader and the IR: models built byte by byte with
 * pbw.h, loaded with onr_load_buffer / onr_load_file, and checked field by
 * field in the graph structs (ir.h); where the planner or the kernels are
 * involved (Constant nodes, opset resolution) through the public API.
 *
 * Covered: initializers in every storage form (raw_data and each typed field)
 * for every element type, empty tensors and scalars; Constant nodes in each
 * form; attributes of every type; graph inputs/outputs with element types,
 * static/symbolic/unknown dims; opset imports; external data (offsets,
 * lengths, shared files, and the errors, each naming the tensor); weights read
 * in place from the mapped model file or copied when misaligned, released
 * weights, and stripped raw_data that is truncated or lies; IR versions.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kutil.h"
#include "load/load.h"
#include "pbw.h"

enum {
    F32 = 1, U8 = 2, I8 = 3, U16 = 4, I16 = 5, I32 = 6, I64 = 7, STR = 8, BOOL = 9,
    F16 = 10, F64 = 11, U32 = 12, U64 = 13, C64 = 14, BF16 = 16
};

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------- */

/* Load a model from memory; fails the test with the loader's message. Frees m. */
static onr_model *load_ok(pbw *m, const char *base_dir)
{
    onr_model *model = NULL;
    onr_err err = {0};
    onr_status st = onr_load_buffer(m->b, m->n, base_dir, &model, &err);
    free(m->b);
    memset(m, 0, sizeof *m);
    if (st != ONR_OK) fail_msg("load failed (%s): %s", onr_status_name(st), err.msg);
    assert_non_null(model);
    assert_non_null(model->graph);
    return model;
}

/* Load expecting failure with `code`; the message is left in err. Frees m. */
static void load_fail(pbw *m, const char *base_dir, onr_status code, onr_err *err)
{
    onr_model *model = NULL;
    memset(err, 0, sizeof *err);
    onr_status st = onr_load_buffer(m->b, m->n, base_dir, &model, err);
    free(m->b);
    memset(m, 0, sizeof *m);
    if (st == ONR_OK) onr_model_free(model);
    if (st != code)
        fail_msg("expected %s, got %s: %s", onr_status_name(code), onr_status_name(st), err->msg);
    assert_null(model);
    assert_true(strlen(err->msg) > 0);
}

static void assert_has(const char *msg, const char *needle)
{
    if (!strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

/* The initializer's tensor, with the value's own fields checked against it. */
static const onr_tensor *konst(const onr_model *m, const char *name)
{
    int v = onr_graph_find_value(m->graph, name);
    if (v < 0) fail_msg("no value '%s'", name);
    const onr_value *val = &m->graph->values[v];
    assert_true(val->is_initializer);
    assert_false(val->is_input);
    assert_int_equal(val->producer, -1);
    const onr_tensor *t = val->konst;
    assert_non_null(t);
    assert_int_equal(val->dtype, t->dtype);
    assert_int_equal(val->rank, t->rank);
    for (int d = 0; d < t->rank; d++) assert_int_equal(val->dims[d], t->dims[d]);
    return t;
}

static void assert_tensor(const onr_tensor *t, onr_dtype dt, int rank, const int64_t *dims,
                          int64_t numel)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->rank, rank);
    for (int d = 0; d < rank; d++) assert_int_equal(t->dims[d], dims[d]);
    assert_int_equal(t->numel, numel);
}

/* A graph whose outputs are its initializers (declared untyped). */
static pbw outputs_graph(pbw *g, const char *const *outs)
{
    for (int i = 0; outs[i]; i++) {
        pbw vi = {0};
        pbw_str(&vi, 1, outs[i]);
        pbw_msg(g, 12, &vi);
    }
    return pbw_model(g, 8, 13);
}

static void raw_init(pbw *g, const char *name, int dtype, int rank, const int64_t *dims,
                     const void *data, size_t bytes)
{
    pbw t = {0};
    pbw_tensor_head(&t, name, dtype, rank, dims);
    pbw_bytes(&t, 9, data, bytes);
    pbw_msg(g, 5, &t);
}

static char *tmp_path(const char *name)
{
    static char path[2][600];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void write_file(const char *name, const void *b, size_t n)
{
    FILE *f = fopen(tmp_path(name), "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- initializers: raw_data ----------------------------------------------- */

static void test_init_raw_every_type(void **state)
{
    (void)state;
    static const float f32[] = {1.5f, -2.0f, 1e-3f};
    static const uint8_t u8[] = {0, 127, 255};
    static const int8_t i8[] = {-128, 0, 127};
    static const uint16_t u16[] = {0, 1, 65535};
    static const int16_t i16[] = {-32768, -1, 32767};
    static const int32_t i32[] = {INT32_MIN, 0, INT32_MAX};
    static const int64_t i64[] = {INT64_MIN, -1, INT64_MAX};
    static const uint8_t bl[] = {0, 1, 1};
    static const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF};
    static const double f64[] = {1e300, -0.5, 0.0};
    static const uint32_t u32[] = {0, 1, UINT32_MAX};
    static const uint64_t u64[] = {0, 1ull << 63, UINT64_MAX};
    static const uint16_t bf16[] = {0x3F80, 0xC040, 0x0000};
    static const struct {
        const char *name;
        int dt;
        const void *data;
        size_t esz;
    } cases[] = {
        {"t_f32", F32, f32, 4}, {"t_u8", U8, u8, 1},    {"t_i8", I8, i8, 1},
        {"t_u16", U16, u16, 2}, {"t_i16", I16, i16, 2}, {"t_i32", I32, i32, 4},
        {"t_i64", I64, i64, 8}, {"t_bool", BOOL, bl, 1}, {"t_f16", F16, f16, 2},
        {"t_f64", F64, f64, 8}, {"t_u32", U32, u32, 4}, {"t_u64", U64, u64, 8},
        {"t_bf16", BF16, bf16, 2},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    pbw g = {0};
    int64_t d3[] = {3};
    const char *outs[NC + 2];
    for (int i = 0; i < NC; i++) {
        raw_init(&g, cases[i].name, cases[i].dt, 1, d3, cases[i].data, 3 * cases[i].esz);
        outs[i] = cases[i].name;
    }
    /* a 2-D one, to check row-major order is kept */
    float m23[6] = {1, 2, 3, 4, 5, 6};
    int64_t d23[] = {2, 3};
    raw_init(&g, "t_2d", F32, 2, d23, m23, sizeof m23);
    outs[NC] = "t_2d";
    outs[NC + 1] = NULL;
    pbw m = outputs_graph(&g, outs);
    onr_model *model = load_ok(&m, NULL);
    assert_int_equal(model->graph->n_inputs, 0);
    assert_int_equal(model->graph->n_outputs, NC + 1);
    for (int i = 0; i < NC; i++) {
        const onr_tensor *t = konst(model, cases[i].name);
        assert_tensor(t, (onr_dtype)cases[i].dt, 1, d3, 3);
        assert_int_equal(onr_tensor_nbytes(t), 3 * cases[i].esz);
        if (memcmp(t->data, cases[i].data, 3 * cases[i].esz) != 0)
            fail_msg("raw_data of %s not read back exactly", cases[i].name);
    }
    const onr_tensor *t = konst(model, "t_2d");
    assert_tensor(t, ONR_FLOAT, 2, d23, 6);
    assert_memory_equal(t->data, m23, sizeof m23);
    /* fp16 / bf16 bit patterns mean what they should */
    const uint16_t *h = konst(model, "t_f16")->data;
    assert_true(onr_half_to_float(h[0]) == 1.0f);
    assert_true(onr_half_to_float(h[1]) == -2.0f);
    assert_true(onr_half_to_float(h[2]) == 65504.0f);
    const uint16_t *b = konst(model, "t_bf16")->data;
    assert_true(onr_bf16_to_float(b[0]) == 1.0f);
    assert_true(onr_bf16_to_float(b[1]) == -3.0f);
    onr_model_free(model);
}

/* ---- initializers: typed fields ------------------------------------------- */

static void typed_i32(pbw *g, const char *name, int dt, const int32_t *v, size_t n)
{
    pbw t = {0};
    int64_t d[] = {(int64_t)n};
    pbw_tensor_head(&t, name, dt, 1, d);
    pbw_packed_i32(&t, 5, v, n);
    pbw_msg(g, 5, &t);
}

static void test_init_typed_fields(void **state)
{
    (void)state;
    pbw g = {0}, t = {0};
    int64_t d4[] = {4};
    /* float_data */
    const float fv[] = {1.5f, -2.25f, 3.0e38f, -0.0f};
    pbw_tensor_head(&t, "f32", F32, 1, d4);
    pbw_packed_f32(&t, 4, fv, 4);
    pbw_msg(&g, 5, &t);
    /* int32_data for every narrow type */
    const int32_t i32v[] = {INT32_MIN, -1, 0, INT32_MAX};
    const int32_t i8v[] = {-128, -1, 0, 127};
    const int32_t i16v[] = {-32768, -2, 0, 32767};
    const int32_t u8v[] = {0, 1, 200, 255};
    const int32_t u16v[] = {0, 1, 40000, 65535};
    const int32_t boolv[] = {0, 1, 2, 0};
    const int32_t f16v[] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
    const int32_t bf16v[] = {0x3F80, 0xC040, 0x7F80, 0x0000};
    typed_i32(&g, "i32", I32, i32v, 4);
    typed_i32(&g, "i8", I8, i8v, 4);
    typed_i32(&g, "i16", I16, i16v, 4);
    typed_i32(&g, "u8", U8, u8v, 4);
    typed_i32(&g, "u16", U16, u16v, 4);
    typed_i32(&g, "bool", BOOL, boolv, 4);
    typed_i32(&g, "f16", F16, f16v, 4);
    typed_i32(&g, "bf16", BF16, bf16v, 4);
    /* int64_data */
    const int64_t i64v[] = {INT64_MIN, -1, 0, INT64_MAX};
    pbw_tensor_head(&t, "i64", I64, 1, d4);
    pbw_packed_i64(&t, 7, i64v, 4);
    pbw_msg(&g, 5, &t);
    /* double_data */
    const double f64v[] = {1e300, -0.5, 0.1, -0.0};
    pbw_tensor_head(&t, "f64", F64, 1, d4);
    pbw_packed_f64(&t, 10, f64v, 4);
    pbw_msg(&g, 5, &t);
    /* uint64_data for uint32 and uint64 */
    const uint64_t u32w[] = {0, 1, 4294967295u, 123456789};
    pbw_tensor_head(&t, "u32", U32, 1, d4);
    pbw_packed_varint(&t, 11, u32w, 4);
    pbw_msg(&g, 5, &t);
    const uint64_t u64v[] = {0, 1ull << 63, UINT64_MAX, 42};
    pbw_tensor_head(&t, "u64", U64, 1, d4);
    pbw_packed_varint(&t, 11, u64v, 4);
    pbw_msg(&g, 5, &t);
    /* string_data (bytes, one field per element) */
    const char *sv[] = {"", "hello", "two words", "\xc3\xbc"};
    pbw_tensor_head(&t, "str", STR, 1, d4);
    for (int i = 0; i < 4; i++) pbw_str(&t, 6, sv[i]);
    pbw_msg(&g, 5, &t);
    const char *outs[] = {"f32", "i32", "i8", "i16", "u8", "u16", "bool", "f16", "bf16",
                          "i64", "f64", "u32", "u64", "str", NULL};
    pbw m = outputs_graph(&g, outs);
    onr_model *model = load_ok(&m, NULL);

    const onr_tensor *k = konst(model, "f32");
    assert_tensor(k, ONR_FLOAT, 1, d4, 4);
    assert_memory_equal(k->data, fv, sizeof fv); /* bit-exact, -0.0 included */
    assert_true(signbit(((const float *)k->data)[3]));

    k = konst(model, "i32");
    assert_tensor(k, ONR_INT32, 1, d4, 4);
    assert_memory_equal(k->data, i32v, sizeof i32v);

    k = konst(model, "i8");
    assert_tensor(k, ONR_INT8, 1, d4, 4);
    const int8_t e8[] = {-128, -1, 0, 127};
    assert_memory_equal(k->data, e8, sizeof e8);

    k = konst(model, "i16");
    assert_tensor(k, ONR_INT16, 1, d4, 4);
    const int16_t e16[] = {-32768, -2, 0, 32767};
    assert_memory_equal(k->data, e16, sizeof e16);

    k = konst(model, "u8");
    assert_tensor(k, ONR_UINT8, 1, d4, 4);
    const uint8_t eu8[] = {0, 1, 200, 255};
    assert_memory_equal(k->data, eu8, sizeof eu8);

    k = konst(model, "u16");
    assert_tensor(k, ONR_UINT16, 1, d4, 4);
    const uint16_t eu16[] = {0, 1, 40000, 65535};
    assert_memory_equal(k->data, eu16, sizeof eu16);

    k = konst(model, "bool");
    assert_tensor(k, ONR_BOOL, 1, d4, 4);
    const uint8_t eb[] = {0, 1, 1, 0}; /* any nonzero int32 is true */
    assert_memory_equal(k->data, eb, sizeof eb);

    k = konst(model, "f16");
    assert_tensor(k, ONR_FLOAT16, 1, d4, 4);
    const uint16_t ef16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
    assert_memory_equal(k->data, ef16, sizeof ef16);
    assert_true(onr_half_to_float(((const uint16_t *)k->data)[2]) == 65504.0f);

    k = konst(model, "bf16");
    assert_tensor(k, ONR_BFLOAT16, 1, d4, 4);
    const uint16_t ebf[] = {0x3F80, 0xC040, 0x7F80, 0x0000};
    assert_memory_equal(k->data, ebf, sizeof ebf);
    assert_true(onr_bf16_to_float(ebf[1]) == -3.0f);
    assert_true(isinf(onr_bf16_to_float(((const uint16_t *)k->data)[2])));

    k = konst(model, "i64");
    assert_tensor(k, ONR_INT64, 1, d4, 4);
    assert_memory_equal(k->data, i64v, sizeof i64v);

    k = konst(model, "f64");
    assert_tensor(k, ONR_DOUBLE, 1, d4, 4);
    assert_memory_equal(k->data, f64v, sizeof f64v);

    k = konst(model, "u32");
    assert_tensor(k, ONR_UINT32, 1, d4, 4);
    const uint32_t eu32[] = {0, 1, 4294967295u, 123456789};
    assert_memory_equal(k->data, eu32, sizeof eu32);

    k = konst(model, "u64");
    assert_tensor(k, ONR_UINT64, 1, d4, 4);
    assert_memory_equal(k->data, u64v, sizeof u64v);

    k = konst(model, "str");
    assert_tensor(k, ONR_STRING, 1, d4, 4);
    char *const *s = k->data;
    for (int i = 0; i < 4; i++) assert_string_equal(s[i], sv[i]);
    onr_model_free(model);
}

static void test_init_typed_count_mismatch(void **state)
{
    (void)state;
    onr_err err;
    /* 3 floats for a [4] */
    pbw g = {0}, t = {0};
    int64_t d4[] = {4};
    const float fv[] = {1, 2, 3};
    pbw_tensor_head(&t, "short_f", F32, 1, d4);
    pbw_packed_f32(&t, 4, fv, 3);
    pbw_msg(&g, 5, &t);
    pbw m = outputs_graph(&g, (const char *[]){"short_f", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'short_f'");
    assert_has(err.msg, "3 values stored but its shape needs 4");
    /* int64 values in the wrong field (int32_data) for an int64 tensor */
    pbw g2 = {0};
    const int32_t iv[] = {1, 2, 3, 4};
    typed_i32(&g2, "wrong_field", I64, iv, 4);
    m = outputs_graph(&g2, (const char *[]){"wrong_field", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'wrong_field'");
    assert_has(err.msg, "0 values stored but its shape needs 4");
    /* a scalar with no data at all */
    pbw g3 = {0};
    pbw_tensor_head(&t, "nodata", F32, 0, NULL);
    pbw_msg(&g3, 5, &t);
    m = outputs_graph(&g3, (const char *[]){"nodata", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'nodata'");
    assert_has(err.msg, "needs 1");
    /* raw_data of a 2-D shape one element short */
    pbw g4 = {0};
    int64_t d23[] = {2, 3};
    float five[5] = {0};
    raw_init(&g4, "short_raw", F32, 2, d23, five, sizeof five);
    m = outputs_graph(&g4, (const char *[]){"short_raw", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'short_raw'");
    assert_has(err.msg, "raw_data holds 20 bytes");
    assert_has(err.msg, "[2,3]");
    assert_has(err.msg, "needs 24");
}

/* ---- empty tensors and scalars ------------------------------------------- */

static void test_init_empty_and_scalar(void **state)
{
    (void)state;
    pbw g = {0}, t = {0};
    int64_t d0[] = {0}, d20[] = {2, 0}, d03[] = {0, 3};
    /* empty: typed with no values, raw_data of 0 bytes, int64 and string */
    pbw_tensor_head(&t, "e_f32", F32, 1, d0);
    pbw_msg(&g, 5, &t);
    raw_init(&g, "e_raw", F32, 2, d20, "", 0);
    pbw_tensor_head(&t, "e_i64", I64, 2, d03);
    pbw_msg(&g, 5, &t);
    pbw_tensor_head(&t, "e_str", STR, 1, d0);
    pbw_msg(&g, 5, &t);
    /* scalars (rank 0): raw, int64_data, double_data, int32_data bool, string */
    float sf = 3.25f;
    raw_init(&g, "s_f32", F32, 0, NULL, &sf, sizeof sf);
    const int64_t sv = -9;
    pbw_tensor_head(&t, "s_i64", I64, 0, NULL);
    pbw_packed_i64(&t, 7, &sv, 1);
    pbw_msg(&g, 5, &t);
    const double sd = 2.5;
    pbw_tensor_head(&t, "s_f64", F64, 0, NULL);
    pbw_packed_f64(&t, 10, &sd, 1);
    pbw_msg(&g, 5, &t);
    const int32_t sb = 1;
    pbw_tensor_head(&t, "s_bool", BOOL, 0, NULL);
    pbw_packed_i32(&t, 5, &sb, 1);
    pbw_msg(&g, 5, &t);
    pbw_tensor_head(&t, "s_str", STR, 0, NULL);
    pbw_str(&t, 6, "scalar");
    pbw_msg(&g, 5, &t);
    const char *outs[] = {"e_f32", "e_raw", "e_i64", "e_str", "s_f32",
                          "s_i64", "s_f64", "s_bool", "s_str", NULL};
    pbw m = outputs_graph(&g, outs);
    onr_model *model = load_ok(&m, NULL);
    assert_tensor(konst(model, "e_f32"), ONR_FLOAT, 1, d0, 0);
    assert_tensor(konst(model, "e_raw"), ONR_FLOAT, 2, d20, 0);
    assert_tensor(konst(model, "e_i64"), ONR_INT64, 2, d03, 0);
    assert_tensor(konst(model, "e_str"), ONR_STRING, 1, d0, 0);
    assert_int_equal(onr_tensor_nbytes(konst(model, "e_raw")), 0);
    const onr_tensor *k = konst(model, "s_f32");
    assert_tensor(k, ONR_FLOAT, 0, NULL, 1);
    assert_true(*(const float *)k->data == 3.25f);
    k = konst(model, "s_i64");
    assert_tensor(k, ONR_INT64, 0, NULL, 1);
    assert_int_equal(*(const int64_t *)k->data, -9);
    k = konst(model, "s_f64");
    assert_tensor(k, ONR_DOUBLE, 0, NULL, 1);
    assert_true(*(const double *)k->data == 2.5);
    k = konst(model, "s_bool");
    assert_tensor(k, ONR_BOOL, 0, NULL, 1);
    assert_int_equal(*(const uint8_t *)k->data, 1);
    k = konst(model, "s_str");
    assert_tensor(k, ONR_STRING, 0, NULL, 1);
    assert_string_equal(((char *const *)k->data)[0], "scalar");
    onr_model_free(model);

    /* and through the public API: the empty and scalar initializers come out as
     * the graph's outputs with their shapes */
    pbw g2 = {0};
    raw_init(&g2, "e", F32, 2, d20, "", 0);
    raw_init(&g2, "s", F32, 0, NULL, &sf, sizeof sf);
    m = outputs_graph(&g2, (const char *[]){"e", "s", NULL});
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_OK);
    const onr_tensor *e = onr_session_output(s, 0), *sc = onr_session_output(s, 1);
    assert_non_null(e);
    assert_non_null(sc);
    assert_int_equal(onr_tensor_rank(e), 2);
    assert_int_equal(onr_tensor_dims(e)[0], 2);
    assert_int_equal(onr_tensor_dims(e)[1], 0);
    assert_int_equal(onr_tensor_numel(e), 0);
    assert_int_equal(onr_tensor_rank(sc), 0);
    assert_int_equal(onr_tensor_numel(sc), 1);
    assert_true(*(const float *)onr_tensor_data(sc) == 3.25f);
    onr_session_free(s);
    free(m.b);
}

/* ---- tensors the loader refuses -------------------------------------------- */

static void test_init_refused(void **state)
{
    (void)state;
    onr_err err;
    int64_t d1[] = {1};
    float one = 1;
    static const struct {
        int dt;
        onr_status code;
        const char *text;
    } types[] = {
        {0, ONR_E_MODEL, "element type 0 is invalid"},
        {C64, ONR_E_UNSUPPORTED, "element type 14 is not supported"},
        {15, ONR_E_UNSUPPORTED, "element type 15 is not supported"},
        {27, ONR_E_MODEL, "element type 27 is invalid"}, /* past int2 (26) */
        {-3, ONR_E_MODEL, "is invalid"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        pbw g = {0}, t = {0};
        pbw_int(&t, 1, 1);
        if (types[i].dt) pbw_int(&t, 2, types[i].dt);
        pbw_str(&t, 8, "odd_type");
        pbw_bytes(&t, 9, &one, 4);
        pbw_msg(&g, 5, &t);
        pbw m = outputs_graph(&g, (const char *[]){"odd_type", NULL});
        load_fail(&m, NULL, types[i].code, &err);
        assert_has(err.msg, "'odd_type'");
        assert_has(err.msg, types[i].text);
    }
    /* rank 13 */
    pbw g = {0}, t = {0};
    int64_t d13[13];
    for (int i = 0; i < 13; i++) d13[i] = 1;
    raw_init(&g, "deep", F32, 13, d13, &one, 4);
    pbw m = outputs_graph(&g, (const char *[]){"deep", NULL});
    load_fail(&m, NULL, ONR_E_UNSUPPORTED, &err);
    assert_has(err.msg, "'deep'");
    assert_has(err.msg, "rank 13");
    /* segmented */
    pbw g2 = {0}, seg = {0};
    pbw_tensor_head(&t, "seg", F32, 1, d1);
    pbw_int(&seg, 1, 0);
    pbw_int(&seg, 2, 1);
    pbw_msg(&t, 3, &seg);
    pbw_bytes(&t, 9, &one, 4);
    pbw_msg(&g2, 5, &t);
    m = outputs_graph(&g2, (const char *[]){"seg", NULL});
    load_fail(&m, NULL, ONR_E_UNSUPPORTED, &err);
    assert_has(err.msg, "'seg'");
    assert_has(err.msg, "segment");
    /* a sparse initializer */
    pbw g3 = {0}, sp = {0}, vals = {0}, idx = {0};
    pbw_tensor_head(&vals, "sp", F32, 1, d1);
    pbw_bytes(&vals, 9, &one, 4);
    int64_t zero = 0;
    pbw_tensor_head(&idx, "sp_idx", I64, 1, d1);
    pbw_packed_i64(&idx, 7, &zero, 1);
    pbw_msg(&sp, 1, &vals);
    pbw_msg(&sp, 2, &idx);
    pbw_int(&sp, 3, 4);
    pbw_msg(&g3, 15, &sp);
    raw_init(&g3, "dense", F32, 1, d1, &one, 4);
    m = outputs_graph(&g3, (const char *[]){"dense", NULL});
    load_fail(&m, NULL, ONR_E_UNSUPPORTED, &err);
    assert_has(err.msg, "sparse initializer");
    /* an unnamed initializer, and one defined twice */
    pbw g4 = {0};
    raw_init(&g4, "ok", F32, 1, d1, &one, 4);
    raw_init(&g4, NULL, F32, 1, d1, &one, 4);
    m = outputs_graph(&g4, (const char *[]){"ok", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "initializer 1 has no name");
    pbw g5 = {0};
    raw_init(&g5, "twice", F32, 1, d1, &one, 4);
    raw_init(&g5, "twice", F32, 1, d1, &one, 4);
    m = outputs_graph(&g5, (const char *[]){"twice", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'twice' is defined twice");
    /* a negative dim */
    pbw g6 = {0};
    int64_t dneg[] = {2, -1};
    raw_init(&g6, "neg", F32, 2, dneg, &one, 4);
    m = outputs_graph(&g6, (const char *[]){"neg", NULL});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'neg'");
    assert_has(err.msg, "negative dim");
}

/* ---- Constant nodes ---------------------------------------------------------- */

static void constant(pbw *g, const char *name, const char *out, pbw *attrs)
{
    pbw_node(g, "Constant", name, NULL, (const char *[]){out, NULL}, attrs);
}

static void declare_out(pbw *g, const char *name, int dt)
{
    pbw_value_info_named(g, 12, name, dt, -1, NULL, NULL);
}

static void test_constant_forms(void **state)
{
    (void)state;
    pbw g = {0}, a = {0}, t = {0};
    int64_t d22[] = {2, 2}, d2[] = {2};
    /* value: an int32 tensor in int32_data */
    const int32_t iv[] = {1, -2, 3, -4};
    pbw_tensor_head(&t, "cv", I32, 2, d22);
    pbw_packed_i32(&t, 5, iv, 4);
    pbw_attr_tensor(&a, "value", &t);
    constant(&g, "c_value", "o_value", &a);
    /* value: a float16 tensor in raw_data */
    const uint16_t hv[] = {0x3C00, 0xBC00};
    pbw_tensor_head(&t, "ch", F16, 1, d2);
    pbw_bytes(&t, 9, hv, sizeof hv);
    pbw_attr_tensor(&a, "value", &t);
    constant(&g, "c_half", "o_half", &a);
    pbw_attr_float(&a, "value_float", 2.5f);
    constant(&g, "c_vf", "o_vf", &a);
    const float fs[] = {1.5f, -0.5f, 8.0f};
    pbw_attr_floats(&a, "value_floats", fs, 3);
    constant(&g, "c_vfs", "o_vfs", &a);
    pbw_attr_int(&a, "value_int", -42);
    constant(&g, "c_vi", "o_vi", &a);
    const int64_t is[] = {7, -8, 1ll << 40};
    pbw_attr_ints(&a, "value_ints", is, 3);
    constant(&g, "c_vis", "o_vis", &a);
    pbw_attr_string(&a, "value_string", "hi there");
    constant(&g, "c_vs", "o_vs", &a);
    const char *ss[] = {"a", "", "xyz"};
    pbw_attr_strings(&a, "value_strings", ss, 3);
    constant(&g, "c_vss", "o_vss", &a);
    declare_out(&g, "o_value", I32);
    declare_out(&g, "o_half", F16);
    declare_out(&g, "o_vf", F32);
    declare_out(&g, "o_vfs", F32);
    declare_out(&g, "o_vi", I64);
    declare_out(&g, "o_vis", I64);
    declare_out(&g, "o_vs", STR);
    declare_out(&g, "o_vss", STR);
    pbw m = pbw_model(&g, 8, 13);

    /* the loader keeps each value attribute with its type */
    onr_model *model = NULL;
    onr_err err = {0};
    assert_int_equal(onr_load_buffer(m.b, m.n, NULL, &model, &err), ONR_OK);
    assert_int_equal(model->graph->n_nodes, 8);
    static const onr_attr_type types[] = {ONR_ATTR_TENSOR, ONR_ATTR_TENSOR, ONR_ATTR_FLOAT,
                                          ONR_ATTR_FLOATS, ONR_ATTR_INT,    ONR_ATTR_INTS,
                                          ONR_ATTR_STRING, ONR_ATTR_STRINGS};
    for (int i = 0; i < 8; i++) {
        const onr_node *n = &model->graph->nodes[i];
        assert_string_equal(n->op_type, "Constant");
        assert_int_equal(n->n_attr, 1);
        assert_int_equal(n->attrs[0].type, types[i]);
        assert_int_equal(n->opset, 13);
    }
    onr_model_free(model);

    /* and the session folds them all and hands out their values */
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m.b, m.n, NULL, &s);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    assert_int_equal(onr_session_node_count(s), 8);
    assert_int_equal(onr_session_step_count(s), 0); /* everything folded at load */
    assert_int_equal(onr_session_input_count(s), 0);
    assert_int_equal(onr_session_output_count(s), 8);
    assert_int_equal(onr_session_run(s, 0, NULL, NULL), ONR_OK);

    const onr_tensor *o = onr_session_output(s, 0);
    assert_tensor(o, ONR_INT32, 2, d22, 4);
    assert_memory_equal(o->data, iv, sizeof iv);
    o = onr_session_output(s, 1);
    assert_tensor(o, ONR_FLOAT16, 1, d2, 2);
    assert_memory_equal(o->data, hv, sizeof hv);
    o = onr_session_output(s, 2);
    assert_tensor(o, ONR_FLOAT, 0, NULL, 1);
    assert_true(*(const float *)o->data == 2.5f);
    o = onr_session_output(s, 3);
    int64_t d3[] = {3};
    assert_tensor(o, ONR_FLOAT, 1, d3, 3);
    assert_memory_equal(o->data, fs, sizeof fs);
    o = onr_session_output(s, 4);
    assert_tensor(o, ONR_INT64, 0, NULL, 1);
    assert_int_equal(*(const int64_t *)o->data, -42);
    o = onr_session_output(s, 5);
    assert_tensor(o, ONR_INT64, 1, d3, 3);
    assert_memory_equal(o->data, is, sizeof is);
    o = onr_session_output(s, 6);
    assert_tensor(o, ONR_STRING, 0, NULL, 1);
    assert_string_equal(((char *const *)o->data)[0], "hi there");
    o = onr_session_output(s, 7);
    assert_tensor(o, ONR_STRING, 1, d3, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(((char *const *)o->data)[i], ss[i]);
    /* the output info reports the folded shapes */
    onr_value_info vi;
    assert_int_equal(onr_session_output_info(s, 5, &vi), ONR_OK);
    assert_string_equal(vi.name, "o_vis");
    assert_int_equal(vi.dtype, ONR_INT64);
    assert_int_equal(vi.rank, 1);
    assert_int_equal(vi.dims[0], 3);
    onr_session_free(s);
    free(m.b);
}

static onr_status open_msg(pbw *m, char *msg, size_t len)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    snprintf(msg, len, "%s", onr_session_errmsg(s));
    onr_session_free(s);
    free(m->b);
    memset(m, 0, sizeof *m);
    return st;
}

static void test_constant_refused(void **state)
{
    (void)state;
    char msg[1024];
    /* sparse_value: a clear "not supported" naming the attribute and the node */
    pbw g = {0}, a = {0}, at = {0}, sp = {0}, vals = {0}, idx = {0};
    int64_t d1[] = {1};
    float five = 5;
    int64_t zero = 0;
    pbw_tensor_head(&vals, "v", F32, 1, d1);
    pbw_bytes(&vals, 9, &five, 4);
    pbw_tensor_head(&idx, "i", I64, 1, d1);
    pbw_packed_i64(&idx, 7, &zero, 1);
    pbw_msg(&sp, 1, &vals);
    pbw_msg(&sp, 2, &idx);
    pbw_int(&sp, 3, 3);
    pbw_str(&at, 1, "sparse_value");
    pbw_int(&at, 20, 11);
    pbw_msg(&at, 22, &sp);
    pbw_msg(&a, 5, &at);
    constant(&g, "c_sparse", "y", &a);
    declare_out(&g, "y", F32);
    pbw m = pbw_model(&g, 8, 13);
    /* the loader keeps it (as a bare sparse-tensor attribute) ... */
    onr_model *model = NULL;
    onr_err err = {0};
    assert_int_equal(onr_load_buffer(m.b, m.n, NULL, &model, &err), ONR_OK);
    assert_int_equal(model->graph->nodes[0].attrs[0].type, ONR_ATTR_SPARSE_TENSOR);
    onr_model_free(model);
    /* ... and opening says it is unsupported */
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_UNSUPPORTED);
    assert_has(msg, "sparse_value");
    assert_has(msg, "not supported");
    assert_has(msg, "c_sparse");

    /* two value attributes */
    pbw g2 = {0};
    pbw_attr_int(&a, "value_int", 1);
    pbw_attr_float(&a, "value_float", 1.0f);
    constant(&g2, "c_two", "y", &a);
    declare_out(&g2, "y", F32);
    m = pbw_model(&g2, 8, 13);
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_MODEL);
    assert_has(msg, "c_two");
    assert_has(msg, "exactly one");
    /* none */
    pbw g3 = {0};
    constant(&g3, "c_none", "y", NULL);
    declare_out(&g3, "y", F32);
    m = pbw_model(&g3, 8, 13);
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_MODEL);
    assert_has(msg, "c_none");
    assert_has(msg, "has 0");
    /* value_float stored as an INT attribute */
    pbw g4 = {0};
    pbw_attr_int(&a, "value_float", 3);
    constant(&g4, "c_wrong", "y", &a);
    declare_out(&g4, "y", F32);
    m = pbw_model(&g4, 8, 13);
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_MODEL);
    assert_has(msg, "c_wrong");
    assert_has(msg, "'value_float' has the wrong type");
}

/* ---- attributes ------------------------------------------------------------ */

static void test_attributes_every_type(void **state)
{
    (void)state;
    pbw g = {0}, a = {0}, t = {0}, sub = {0}, raw = {0};
    int64_t d1[] = {1}, d2[] = {2};
    pbw_value_info(&g, 11, "x", F32, 1, d1);
    pbw_attr_float(&a, "f", 0.25f);
    pbw_attr_int(&a, "i", -7);
    /* a string with an embedded NUL: slen keeps the byte length */
    pbw_str(&raw, 1, "s");
    pbw_int(&raw, 20, 3);
    pbw_bytes(&raw, 4, "a\0b", 3);
    pbw_msg(&a, 5, &raw);
    const int64_t tv[] = {5, 6};
    pbw_tensor_head(&t, "tval", I64, 1, d2);
    pbw_packed_i64(&t, 7, tv, 2);
    pbw_attr_tensor(&a, "t", &t);
    /* a subgraph reading the outer "x" */
    pbw_str(&sub, 2, "body");
    pbw_node(&sub, "Identity", "inner", (const char *[]){"x", NULL}, (const char *[]){"gy", NULL},
             NULL);
    pbw_value_info(&sub, 12, "gy", F32, 1, d1);
    pbw_attr_graph(&a, "g", &sub);
    const float fl[] = {1.5f, -2.0f};
    pbw_attr_floats(&a, "floats", fl, 2);
    const int64_t il[] = {1, -2, 3000000000ll};
    pbw_attr_ints(&a, "ints", il, 3);
    const char *sl[] = {"a", "bc", ""};
    pbw_attr_strings(&a, "strings", sl, 3);
    /* tensors */
    pbw tl = {0}, t1 = {0}, t2 = {0};
    const float f1 = 2.5f;
    pbw_tensor_head(&t1, "ta", F32, 1, d1);
    pbw_packed_f32(&t1, 4, &f1, 1);
    const int32_t i2[] = {-1, 1};
    pbw_tensor_head(&t2, "tb", I32, 1, d2);
    pbw_packed_i32(&t2, 5, i2, 2);
    pbw_str(&tl, 1, "tensors");
    pbw_int(&tl, 20, 9);
    pbw_msg(&tl, 10, &t1);
    pbw_msg(&tl, 10, &t2);
    pbw_msg(&a, 5, &tl);
    /* graphs */
    pbw gl = {0}, g1 = {0}, g2 = {0}, ca = {0};
    pbw_str(&g1, 2, "then_g");
    pbw_attr_int(&ca, "value_int", 1);
    pbw_node(&g1, "Constant", "k1", NULL, (const char *[]){"t_out", NULL}, &ca);
    pbw_value_info(&g1, 12, "t_out", I64, 0, NULL);
    pbw_str(&g2, 2, "else_g");
    pbw_attr_int(&ca, "value_int", 2);
    pbw_node(&g2, "Constant", "k2", NULL, (const char *[]){"e_out", NULL}, &ca);
    pbw_value_info(&g2, 12, "e_out", I64, 0, NULL);
    pbw_str(&gl, 1, "graphs");
    pbw_int(&gl, 20, 10);
    pbw_msg(&gl, 11, &g1);
    pbw_msg(&gl, 11, &g2);
    pbw_msg(&a, 5, &gl);
    /* attributes written without a type (before IR v2): inferred from the field */
    pbw u = {0};
    pbw_str(&u, 1, "u_i");
    pbw_int(&u, 3, 11);
    pbw_msg(&a, 5, &u);
    pbw_str(&u, 1, "u_fs");
    pbw_float(&u, 7, 0.5f);
    pbw_float(&u, 7, 0.75f);
    pbw_msg(&a, 5, &u);
    pbw_str(&u, 1, "u_s");
    pbw_str(&u, 4, "txt");
    pbw_msg(&a, 5, &u);

    pbw n = {0};
    pbw_str(&n, 1, "x");
    pbw_str(&n, 2, "y");
    pbw_str(&n, 3, "n0");
    pbw_str(&n, 4, "Custom");
    pbw_str(&n, 7, "test.dom");
    pbw_raw(&n, a.b, a.n);
    free(a.b);
    pbw_msg(&g, 1, &n);
    declare_out(&g, "y", F32);
    pbw m = pbw_model_opsets(&g, 8, 2, (const char *[]){"", "test.dom"}, (const int64_t[]){13, 3});
    onr_model *model = load_ok(&m, NULL);
    const onr_graph *gr = model->graph;
    assert_int_equal(gr->n_nodes, 1);
    const onr_node *nd = &gr->nodes[0];
    assert_string_equal(nd->name, "n0");
    assert_string_equal(nd->op_type, "Custom");
    assert_string_equal(nd->domain, "test.dom");
    assert_int_equal(nd->opset, 3);
    assert_int_equal(nd->n_attr, 13);

    const onr_attr *at = onr_node_attr(nd, "f");
    assert_non_null(at);
    assert_int_equal(at->type, ONR_ATTR_FLOAT);
    assert_true(at->f == 0.25f);
    assert_true(onr_attr_float(nd, "f", 9) == 0.25f);

    at = onr_node_attr(nd, "i");
    assert_int_equal(at->type, ONR_ATTR_INT);
    assert_int_equal(at->i, -7);
    assert_int_equal(onr_attr_int(nd, "i", 9), -7);

    at = onr_node_attr(nd, "s");
    assert_int_equal(at->type, ONR_ATTR_STRING);
    assert_int_equal(at->slen, 3);
    assert_memory_equal(at->s, "a\0b", 4);
    assert_string_equal(onr_attr_string(nd, "s", "def"), "a");

    at = onr_node_attr(nd, "t");
    assert_int_equal(at->type, ONR_ATTR_TENSOR);
    assert_non_null(at->t);
    assert_tensor(at->t, ONR_INT64, 1, d2, 2);
    assert_memory_equal(at->t->data, tv, sizeof tv);

    at = onr_node_attr(nd, "g");
    assert_int_equal(at->type, ONR_ATTR_GRAPH);
    const onr_graph *sg = at->g;
    assert_non_null(sg);
    assert_string_equal(sg->name, "body");
    assert_ptr_equal(sg->parent, gr);
    assert_int_equal(sg->n_nodes, 1);
    assert_string_equal(sg->nodes[0].op_type, "Identity");
    assert_int_equal(sg->nodes[0].n_in, 1);
    const onr_value *xin = &sg->values[sg->nodes[0].inputs[0]];
    assert_string_equal(xin->name, "x");
    assert_true(xin->is_outer); /* a reference to the enclosing graph's x */
    assert_int_equal(sg->n_outputs, 1);
    assert_string_equal(sg->values[sg->outputs[0]].name, "gy");

    size_t cnt = 0;
    at = onr_node_attr(nd, "floats");
    assert_int_equal(at->type, ONR_ATTR_FLOATS);
    const float *fp = onr_attr_floats(nd, "floats", &cnt);
    assert_int_equal(cnt, 2);
    assert_memory_equal(fp, fl, sizeof fl);

    at = onr_node_attr(nd, "ints");
    assert_int_equal(at->type, ONR_ATTR_INTS);
    const int64_t *ip = onr_attr_ints(nd, "ints", &cnt);
    assert_int_equal(cnt, 3);
    assert_memory_equal(ip, il, sizeof il);

    at = onr_node_attr(nd, "strings");
    assert_int_equal(at->type, ONR_ATTR_STRINGS);
    assert_int_equal(at->n, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(at->strings[i], sl[i]);

    at = onr_node_attr(nd, "tensors");
    assert_int_equal(at->type, ONR_ATTR_TENSORS);
    assert_int_equal(at->n, 2);
    assert_tensor(at->tensors[0], ONR_FLOAT, 1, d1, 1);
    assert_true(*(const float *)at->tensors[0]->data == 2.5f);
    assert_tensor(at->tensors[1], ONR_INT32, 1, d2, 2);
    assert_memory_equal(at->tensors[1]->data, i2, sizeof i2);

    at = onr_node_attr(nd, "graphs");
    assert_int_equal(at->type, ONR_ATTR_GRAPHS);
    assert_int_equal(at->n, 2);
    assert_string_equal(at->graphs[0]->name, "then_g");
    assert_string_equal(at->graphs[1]->name, "else_g");
    assert_ptr_equal(at->graphs[0]->parent, gr);
    assert_int_equal(at->graphs[1]->n_nodes, 1);
    assert_int_equal(onr_attr_int(&at->graphs[1]->nodes[0], "value_int", 0), 2);
    assert_string_equal(at->graphs[1]->values[at->graphs[1]->outputs[0]].name, "e_out");

    at = onr_node_attr(nd, "u_i");
    assert_int_equal(at->type, ONR_ATTR_INT);
    assert_int_equal(at->i, 11);
    at = onr_node_attr(nd, "u_fs");
    assert_int_equal(at->type, ONR_ATTR_FLOATS);
    assert_int_equal(at->n, 2);
    assert_true(at->floats[0] == 0.5f && at->floats[1] == 0.75f);
    at = onr_node_attr(nd, "u_s");
    assert_int_equal(at->type, ONR_ATTR_STRING);
    assert_string_equal(at->s, "txt");

    /* absent attributes give the defaults */
    assert_null(onr_node_attr(nd, "nope"));
    assert_int_equal(onr_attr_int(nd, "nope", 99), 99);
    assert_true(onr_attr_float(nd, "nope", 1.25f) == 1.25f);
    assert_string_equal(onr_attr_string(nd, "nope", "dflt"), "dflt");
    cnt = 5;
    assert_null(onr_attr_ints(nd, "nope", &cnt));
    assert_int_equal(cnt, 0);
    onr_model_free(model);
}

static void test_attribute_errors(void **state)
{
    (void)state;
    onr_err err;
    int64_t d1[] = {1};
    /* a TENSOR attribute whose tensor is broken: names attribute, tensor and node */
    pbw g = {0}, a = {0}, t = {0};
    pbw_value_info(&g, 11, "x", F32, 1, d1);
    float two[2] = {1, 2};
    pbw_tensor_head(&t, "bad_t", F32, 1, d1);
    pbw_bytes(&t, 9, two, sizeof two);
    pbw_attr_tensor(&a, "value", &t);
    pbw_node(&g, "Custom", "holder", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, &a);
    declare_out(&g, "y", F32);
    pbw m = pbw_model(&g, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "holder");
    assert_has(err.msg, "attribute 'value'");
    assert_has(err.msg, "'bad_t'");
    /* a TENSOR-typed attribute without a tensor */
    pbw g2 = {0}, at = {0};
    pbw_value_info(&g2, 11, "x", F32, 1, d1);
    pbw_str(&at, 1, "empty_t");
    pbw_int(&at, 20, 4);
    pbw_msg(&a, 5, &at);
    pbw_node(&g2, "Custom", "holder2", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, &a);
    declare_out(&g2, "y", F32);
    m = pbw_model(&g2, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "holder2");
    assert_has(err.msg, "'empty_t' has no tensor");
    /* a subgraph reading a name nobody defines: names the subgraph */
    pbw g3 = {0}, sub = {0};
    pbw_value_info(&g3, 11, "x", F32, 1, d1);
    pbw_str(&sub, 2, "branch");
    pbw_node(&sub, "Identity", "inner", (const char *[]){"nowhere", NULL},
             (const char *[]){"gy", NULL}, NULL);
    pbw_value_info(&sub, 12, "gy", F32, 1, d1);
    pbw_attr_graph(&a, "body", &sub);
    pbw_node(&g3, "Custom", "outer", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, &a);
    declare_out(&g3, "y", F32);
    m = pbw_model(&g3, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'nowhere'");
    assert_has(err.msg, "subgraph 'branch'");
    assert_has(err.msg, "outer");
}

/* A subgraph two levels down reading a value of the main graph (ONNX scoping:
 * every enclosing graph's names are visible), with the middle graph not
 * mentioning it. */
static void test_nested_subgraph_outer_scope(void **state)
{
    (void)state;
    int64_t d1[] = {1};
    pbw g = {0}, inner = {0}, middle = {0}, a_in = {0}, a_mid = {0};
    pbw_str(&inner, 2, "inner_body");
    pbw_node(&inner, "Identity", "deep_id", (const char *[]){"x", NULL},
             (const char *[]){"iy", NULL}, NULL);
    pbw_value_info(&inner, 12, "iy", F32, 1, d1);
    pbw_str(&middle, 2, "middle_body");
    /* If needs both branches: each else_branch also reads x */
    pbw inner_else = {0}, middle_else = {0};
    pbw_str(&inner_else, 2, "inner_else");
    pbw_node(&inner_else, "Identity", "deep_else", (const char *[]){"x", NULL},
             (const char *[]){"ie", NULL}, NULL);
    pbw_value_info(&inner_else, 12, "ie", F32, 1, d1);
    pbw_str(&middle_else, 2, "middle_else");
    pbw_node(&middle_else, "Identity", "mid_else", (const char *[]){"x", NULL},
             (const char *[]){"me", NULL}, NULL);
    pbw_value_info(&middle_else, 12, "me", F32, 1, d1);
    pbw_attr_graph(&a_in, "then_branch", &inner);
    pbw_attr_graph(&a_in, "else_branch", &inner_else);
    pbw_node(&middle, "If", "inner_if", (const char *[]){"c", NULL}, (const char *[]){"my", NULL},
             &a_in);
    pbw_value_info(&middle, 12, "my", F32, 1, d1);
    pbw_value_info(&g, 11, "x", F32, 1, d1);
    pbw_value_info(&g, 11, "c", BOOL, 0, NULL);
    pbw_attr_graph(&a_mid, "then_branch", &middle);
    pbw_attr_graph(&a_mid, "else_branch", &middle_else);
    pbw_node(&g, "If", "outer_if", (const char *[]){"c", NULL}, (const char *[]){"y", NULL},
             &a_mid);
    declare_out(&g, "y", F32);
    pbw m = pbw_model(&g, 8, 13);
    pbw copy = {0};
    pbw_raw(&copy, m.b, m.n);
    onr_model *model = NULL;
    onr_err err = {0};
    onr_status st = onr_load_buffer(m.b, m.n, NULL, &model, &err);
    free(m.b);
    if (st != ONR_OK) {
        free(copy.b);
        fail_msg("load failed (%s): %s", onr_status_name(st), err.msg);
    }
    const onr_graph *mid = onr_node_attr(&model->graph->nodes[0], "then_branch")->g;
    assert_non_null(mid);
    assert_string_equal(mid->name, "middle_body");
    /* the middle graph's reference to c (one level up) */
    const onr_value *cv = &mid->values[mid->nodes[0].inputs[0]];
    assert_string_equal(cv->name, "c");
    assert_true(cv->is_outer);
    const onr_graph *in = onr_node_attr(&mid->nodes[0], "then_branch")->g;
    assert_non_null(in);
    assert_ptr_equal(in->parent, mid);
    const onr_value *xv = &in->values[in->nodes[0].inputs[0]];
    assert_string_equal(xv->name, "x");
    assert_true(xv->is_outer);
    onr_model_free(model);
    /* opening it is then a question of op support, not a malformed model */
    char msg[1024];
    st = open_msg(&copy, msg, sizeof msg);
    if (st != ONR_OK && st != ONR_E_UNSUPPORTED)
        fail_msg("expected OK or UNSUPPORTED, got %s: %s", onr_status_name(st), msg);
}

/* Omitted optional inputs/outputs, unnamed nodes, and nodes in any order. */
static void test_node_wiring(void **state)
{
    (void)state;
    pbw g = {0};
    int64_t d1[] = {1};
    float one = 1;
    raw_init(&g, "w", F32, 1, d1, &one, 4);
    pbw_value_info(&g, 11, "x", F32, 1, d1);
    /* the consumer comes first in the file */
    pbw_node(&g, "Custom", "second", (const char *[]){"t", "", "w", NULL},
             (const char *[]){"", "y", NULL}, NULL);
    pbw_node(&g, "Relu", NULL, (const char *[]){"x", NULL}, (const char *[]){"t", NULL}, NULL);
    declare_out(&g, "y", F32);
    pbw m = pbw_model(&g, 8, 13);
    onr_model *model = load_ok(&m, NULL);
    const onr_graph *gr = model->graph;
    assert_int_equal(gr->n_nodes, 2);
    const onr_node *a = &gr->nodes[0], *b = &gr->nodes[1];
    assert_string_equal(a->name, "second");
    assert_string_equal(b->name, "#1"); /* unnamed: its index */
    assert_int_equal(a->n_in, 3);
    assert_int_equal(a->inputs[0], b->outputs[0]);
    assert_int_equal(a->inputs[1], -1);
    assert_int_equal(a->inputs[2], onr_graph_find_value(gr, "w"));
    assert_int_equal(a->n_out, 2);
    assert_int_equal(a->outputs[0], -1);
    assert_int_equal(a->outputs[1], gr->outputs[0]);
    assert_int_equal(gr->values[b->outputs[0]].producer, 1);
    assert_int_equal(gr->values[gr->outputs[0]].producer, 0);
    assert_int_equal(b->inputs[0], gr->inputs[0]);
    assert_string_equal(b->domain, "");
    assert_int_equal(b->n_attr, 0);
    onr_model_free(model);
    /* a node without op_type */
    pbw g2 = {0}, n = {0};
    pbw_value_info(&g2, 11, "x", F32, 1, d1);
    pbw_str(&n, 1, "x");
    pbw_str(&n, 2, "y");
    pbw_str(&n, 3, "typeless");
    pbw_msg(&g2, 1, &n);
    declare_out(&g2, "y", F32);
    m = pbw_model(&g2, 8, 13);
    onr_err err;
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'typeless' has no op_type");
}

/* ---- graph inputs and outputs ------------------------------------------------ */

static void test_graph_inputs_outputs(void **state)
{
    (void)state;
    pbw g = {0};
    int64_t da[] = {2, 3}, db[] = {-1, 5}, dc[] = {4, -1}, de[] = {0};
    const char *nb[] = {"batch", NULL};
    float w[] = {1, 2};
    int64_t dw[] = {2};
    pbw_str(&g, 2, "io_graph");
    raw_init(&g, "w", F32, 1, dw, w, sizeof w);
    pbw_value_info_named(&g, 11, "a", F32, 2, da, NULL);
    pbw_value_info_named(&g, 11, "b", I64, 2, db, nb);
    pbw_value_info_named(&g, 11, "c", U8, 2, dc, NULL); /* an empty Dimension: unknown */
    pbw_value_info_named(&g, 11, "d", F64, -1, NULL, NULL); /* no shape */
    pbw_value_info_named(&g, 11, "e", BOOL, 0, de, NULL); /* a scalar */
    pbw_value_info_named(&g, 11, "w", F32, 1, dw, NULL); /* initializer listed as input: a default */
    pbw_node(&g, "Identity", "ia", (const char *[]){"a", NULL}, (const char *[]){"ya", NULL}, NULL);
    pbw_node(&g, "Identity", "ib", (const char *[]){"b", NULL}, (const char *[]){"yb", NULL}, NULL);
    int64_t dya[] = {-1, -1};
    const char *nya[] = {"rows", "cols"};
    pbw_value_info_named(&g, 12, "ya", F32, 2, dya, nya);
    pbw_value_info_named(&g, 12, "yb", I64, -1, NULL, NULL);
    pbw_value_info_named(&g, 12, "w", F32, 1, dw, NULL);
    pbw m = pbw_model(&g, 8, 13);
    onr_model *model = load_ok(&m, NULL);
    const onr_graph *gr = model->graph;
    assert_string_equal(gr->name, "io_graph");
    assert_null(gr->parent);
    assert_int_equal(gr->n_inputs, 5); /* w is not an input */
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        const onr_value *v = &gr->values[gr->inputs[i]];
        assert_string_equal(v->name, names[i]);
        assert_true(v->is_input);
        assert_false(v->is_initializer);
        assert_null(v->konst);
    }
    const onr_value *v = &gr->values[gr->inputs[0]];
    assert_int_equal(v->dtype, ONR_FLOAT);
    assert_int_equal(v->rank, 2);
    assert_int_equal(v->dims[0], 2);
    assert_int_equal(v->dims[1], 3);
    assert_null(v->dim_names[0]);
    assert_null(v->dim_names[1]);
    v = &gr->values[gr->inputs[1]];
    assert_int_equal(v->dtype, ONR_INT64);
    assert_int_equal(v->rank, 2);
    assert_int_equal(v->dims[0], -1);
    assert_non_null(v->dim_names[0]);
    assert_string_equal(v->dim_names[0], "batch");
    assert_int_equal(v->dims[1], 5);
    assert_null(v->dim_names[1]);
    v = &gr->values[gr->inputs[2]];
    assert_int_equal(v->dtype, ONR_UINT8);
    assert_int_equal(v->rank, 2);
    assert_int_equal(v->dims[0], 4);
    assert_int_equal(v->dims[1], -1);
    assert_null(v->dim_names[1]);
    v = &gr->values[gr->inputs[3]];
    assert_int_equal(v->dtype, ONR_DOUBLE);
    assert_int_equal(v->rank, -1);
    v = &gr->values[gr->inputs[4]];
    assert_int_equal(v->dtype, ONR_BOOL);
    assert_int_equal(v->rank, 0);
    /* w: an initializer with its tensor, flagged as such */
    int iw = onr_graph_find_value(gr, "w");
    assert_true(gr->values[iw].is_initializer);
    assert_false(gr->values[iw].is_input);
    /* outputs, in order, with the declared type of computed ones */
    assert_int_equal(gr->n_outputs, 3);
    v = &gr->values[gr->outputs[0]];
    assert_string_equal(v->name, "ya");
    assert_true(v->is_output);
    assert_int_equal(v->producer, 0);
    assert_int_equal(v->dtype, ONR_FLOAT);
    assert_int_equal(v->rank, 2);
    assert_string_equal(v->dim_names[0], "rows");
    assert_string_equal(v->dim_names[1], "cols");
    v = &gr->values[gr->outputs[1]];
    assert_string_equal(v->name, "yb");
    assert_int_equal(v->producer, 1);
    assert_int_equal(v->dtype, ONR_INT64);
    assert_int_equal(v->rank, -1);
    assert_int_equal(gr->outputs[2], iw);
    assert_true(gr->values[iw].is_output);
    /* node wiring by value index */
    assert_int_equal(gr->nodes[0].n_in, 1);
    assert_int_equal(gr->nodes[0].inputs[0], gr->inputs[0]);
    assert_int_equal(gr->nodes[0].outputs[0], gr->outputs[0]);
    onr_model_free(model);
}

static void test_graph_io_errors(void **state)
{
    (void)state;
    onr_err err;
    int64_t d[] = {2, -7};
    /* a negative dim_value */
    pbw g = {0}, shape = {0}, dim = {0}, tt = {0}, tp = {0}, vi = {0};
    pbw_int(&dim, 1, 2);
    pbw_msg(&shape, 1, &dim);
    pbw_int(&dim, 1, d[1]);
    pbw_msg(&shape, 1, &dim);
    pbw_int(&tt, 1, F32);
    pbw_msg(&tt, 2, &shape);
    pbw_msg(&tp, 1, &tt);
    pbw_str(&vi, 1, "neg_in");
    pbw_msg(&vi, 2, &tp);
    pbw_msg(&g, 11, &vi);
    pbw_node(&g, "Relu", "r", (const char *[]){"neg_in", NULL}, (const char *[]){"y", NULL}, NULL);
    declare_out(&g, "y", F32);
    pbw m = pbw_model(&g, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'neg_in'");
    assert_has(err.msg, "negative dim -7");
    /* a sparse-tensor input (sequences, optionals and maps are values
     * onnx-run has: maps are tested in test_maps.c) */
    pbw g2 = {0}, tens = {0};
    pbw_int(&tens, 1, F32);
    pbw_msg(&tp, 8, &tens);
    pbw_str(&vi, 1, "seq_in");
    pbw_msg(&vi, 2, &tp);
    pbw_msg(&g2, 11, &vi);
    pbw_node(&g2, "Relu", "r", (const char *[]){"seq_in", NULL}, (const char *[]){"y", NULL}, NULL);
    declare_out(&g2, "y", F32);
    m = pbw_model(&g2, 8, 13);
    load_fail(&m, NULL, ONR_E_UNSUPPORTED, &err);
    assert_has(err.msg, "'seq_in'");
    assert_has(err.msg, "not a tensor");
    /* an input declared twice, an unnamed input */
    int64_t d1[] = {1};
    pbw g3 = {0};
    pbw_value_info(&g3, 11, "dup", F32, 1, d1);
    pbw_value_info(&g3, 11, "dup", F32, 1, d1);
    pbw_node(&g3, "Relu", "r", (const char *[]){"dup", NULL}, (const char *[]){"y", NULL}, NULL);
    declare_out(&g3, "y", F32);
    m = pbw_model(&g3, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "'dup' is declared twice");
    pbw g4 = {0};
    pbw_value_info(&g4, 11, "", F32, 1, d1);
    declare_out(&g4, "y", F32);
    m = pbw_model(&g4, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "unnamed");
    /* no outputs at all */
    pbw g5 = {0};
    pbw_value_info(&g5, 11, "x", F32, 1, d1);
    m = pbw_model(&g5, 8, 13);
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "no outputs");
    /* a rank over the maximum */
    int64_t d13[13];
    for (int i = 0; i < 13; i++) d13[i] = 1;
    pbw g6 = {0};
    pbw_value_info(&g6, 11, "big_rank", F32, 13, d13);
    pbw_node(&g6, "Relu", "r", (const char *[]){"big_rank", NULL}, (const char *[]){"y", NULL}, NULL);
    declare_out(&g6, "y", F32);
    m = pbw_model(&g6, 8, 13);
    load_fail(&m, NULL, ONR_E_UNSUPPORTED, &err);
    assert_has(err.msg, "'big_rank'");
    assert_has(err.msg, "rank 13");
}

/* ---- opset imports --------------------------------------------------------- */

static pbw add_graph(const char *domain)
{
    pbw g = {0}, n = {0};
    int64_t d[] = {2};
    pbw_value_info(&g, 11, "x", F32, 1, d);
    pbw_value_info(&g, 11, "z", F32, 1, d);
    pbw_str(&n, 1, "x");
    pbw_str(&n, 1, "z");
    pbw_str(&n, 2, "y");
    pbw_str(&n, 3, "the_add");
    pbw_str(&n, 4, "Add");
    if (domain) pbw_str(&n, 7, domain);
    pbw_msg(&g, 1, &n);
    pbw_value_info(&g, 12, "y", F32, 1, d);
    return g;
}

static void run_add(pbw *m)
{
    onr_session *s = NULL;
    onr_status st = onr_session_open_memory(m->b, m->n, NULL, &s);
    if (st) fail_msg("%s", onr_session_errmsg(s));
    float xv[] = {1, 2}, zv[] = {10, 20};
    int64_t d[] = {2};
    onr_tensor *in[2] = {onr_tensor_wrap(ONR_FLOAT, 1, d, xv), onr_tensor_wrap(ONR_FLOAT, 1, d, zv)};
    assert_int_equal(onr_session_run(s, 2, NULL, (const onr_tensor *const *)in), ONR_OK);
    const float *y = onr_tensor_data(onr_session_output(s, 0));
    assert_true(y[0] == 11 && y[1] == 22);
    onr_tensor_free(in[0]);
    onr_tensor_free(in[1]);
    onr_session_free(s);
}

static void test_opsets(void **state)
{
    (void)state;
    onr_err err;
    char msg[1024];
    /* 'ai.onnx' is the default domain: stored as "", found under both names */
    pbw g = add_graph("ai.onnx");
    pbw m = pbw_model_opsets(&g, 8, 2, (const char *[]){"ai.onnx", "com.example"},
                             (const int64_t[]){14, 2});
    pbw copy = {0};
    pbw_raw(&copy, m.b, m.n);
    onr_model *model = load_ok(&m, NULL);
    assert_int_equal(model->n_opsets, 2);
    assert_string_equal(model->opsets[0].domain, "");
    assert_int_equal(model->opsets[0].version, 14);
    assert_string_equal(model->opsets[1].domain, "com.example");
    assert_int_equal(model->opsets[1].version, 2);
    assert_int_equal(onr_model_opset(model, ""), 14);
    assert_int_equal(onr_model_opset(model, "ai.onnx"), 14);
    assert_int_equal(onr_model_opset(model, NULL), 14);
    assert_int_equal(onr_model_opset(model, "com.example"), 2);
    assert_int_equal(onr_model_opset(model, "com.other"), 0);
    assert_string_equal(model->graph->nodes[0].domain, ""); /* node domain normalized */
    assert_int_equal(model->graph->nodes[0].opset, 14);
    onr_model_free(model);
    /* the same facts through the API, and it runs */
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(copy.b, copy.n, NULL, &s), ONR_OK);
    assert_int_equal(onr_session_opset_count(s), 2);
    int64_t ver = 0;
    assert_string_equal(onr_session_opset(s, 0, &ver), "");
    assert_int_equal(ver, 14);
    assert_string_equal(onr_session_opset(s, 1, &ver), "com.example");
    assert_int_equal(ver, 2);
    assert_null(onr_session_opset(s, 2, &ver));
    const char *dom = "unset";
    assert_string_equal(onr_session_node_op(s, 0, &dom), "Add");
    assert_string_equal(dom, "");
    onr_session_free(s);
    run_add(&copy);
    free(copy.b);
    /* a node in domain "" with the import spelled "ai.onnx" runs too */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 1, (const char *[]){"ai.onnx"}, (const int64_t[]){13});
    run_add(&m);
    free(m.b);

    /* both spellings imported: the same domain twice */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 2, (const char *[]){"", "ai.onnx"}, (const int64_t[]){13, 13});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "imported twice");
    /* a version of 0 */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 1, (const char *[]){""}, (const int64_t[]){0});
    load_fail(&m, NULL, ONR_E_MODEL, &err);
    assert_has(err.msg, "no valid version");

    /* no default-domain import: loads, but the op cannot be resolved; the
     * message names the op, the node and says the domain is not imported */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 1, (const char *[]){"com.example"}, (const int64_t[]){1});
    pbw copy2 = {0};
    pbw_raw(&copy2, m.b, m.n);
    model = load_ok(&m, NULL);
    assert_int_equal(onr_model_opset(model, ""), 0);
    onr_model_free(model);
    assert_int_equal(open_msg(&copy2, msg, sizeof msg), ONR_E_UNSUPPORTED);
    assert_has(msg, "Add");
    assert_has(msg, "the_add");
    assert_has(msg, "not imported");
    /* no imports at all */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 0, NULL, NULL);
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_UNSUPPORTED);
    assert_has(msg, "the_add");
    /* an opset past what the op registry knows: named with its version */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 1, (const char *[]){""}, (const int64_t[]){9999});
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_UNSUPPORTED);
    assert_has(msg, "Add");
    assert_has(msg, "opset 9999");
    /* the newest opset the specification defines runs; the next is refused
     * (its semantics are not written yet), and the message says why */
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 1, (const char *[]){""}, (const int64_t[]){ONR_OPSET_ONNX_NEWEST});
    run_add(&m);
    free(m.b);
    g = add_graph(NULL);
    m = pbw_model_opsets(&g, 8, 1, (const char *[]){""},
                         (const int64_t[]){ONR_OPSET_ONNX_NEWEST + 1});
    assert_int_equal(open_msg(&m, msg, sizeof msg), ONR_E_UNSUPPORTED);
    assert_has(msg, "Add");
    assert_has(msg, "newest opset the ONNX specification defines for the domain is 26");
    assert_null(onr_op_find("", "Add", ONR_OPSET_ONNX_NEWEST + 1));
    assert_null(onr_op_find("ai.onnx", "Add", ONR_OPSET_ONNX_NEWEST + 1));
    assert_non_null(onr_op_find("", "Add", ONR_OPSET_ONNX_NEWEST));
    assert_non_null(onr_op_find("ai.onnx.ml", "Binarizer", ONR_OPSET_ML_NEWEST));
    assert_null(onr_op_find("ai.onnx.ml", "Binarizer", ONR_OPSET_ML_NEWEST + 1));
    assert_non_null(onr_op_find("ai.onnx.preview.training", "Adam", ONR_OPSET_TRAINING_NEWEST));
    assert_null(onr_op_find("ai.onnx.preview.training", "Adam", ONR_OPSET_TRAINING_NEWEST + 1));
    /* opset 26 changed no control-flow, sequence or optional op: their rows
     * reach it (and stop where every row stops) */
    static const char *const ctl[] = {"If", "Loop", "Scan", "SequenceEmpty", "SequenceConstruct",
                                      "SequenceInsert", "SequenceErase", "SequenceAt",
                                      "SequenceLength", "SplitToSequence", "ConcatFromSequence",
                                      "Optional", "OptionalHasElement", "OptionalGetElement",
                                      "SequenceMap"};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        if (!onr_op_find("", ctl[i], 26)) fail_msg("%s has no row at opset 26", ctl[i]);
        if (onr_op_find("", ctl[i], 27)) fail_msg("%s has a row at opset 27", ctl[i]);
    }
    /* onnx-run's own domain has no specification cap */
    assert_int_equal(onr_opset_newest("org.onnxrun"), 0);
}

/* ---- external data ----------------------------------------------------------- */

/* An initializer stored externally; offset/length < 0 are left out. */
static void ext_init(pbw *g, const char *name, int dt, int rank, const int64_t *dims,
                     const char *location, long long offset, long long length)
{
    pbw t = {0}, kv = {0};
    char num[32];
    pbw_tensor_head(&t, name, dt, rank, dims);
    if (location) {
        pbw_str(&kv, 1, "location");
        pbw_str(&kv, 2, location);
        pbw_msg(&t, 13, &kv);
    }
    if (offset >= 0) {
        snprintf(num, sizeof num, "%lld", offset);
        pbw_str(&kv, 1, "offset");
        pbw_str(&kv, 2, num);
        pbw_msg(&t, 13, &kv);
    }
    if (length >= 0) {
        snprintf(num, sizeof num, "%lld", length);
        pbw_str(&kv, 1, "length");
        pbw_str(&kv, 2, num);
        pbw_msg(&t, 13, &kv);
    }
    pbw_int(&t, 14, 1);
    pbw_msg(g, 5, &t);
}

/* weights.bin: 8 floats then 2 int64 (48 bytes); sub/more.bin: 3 floats. */
static const float W8[8] = {1, 2, 3, 4, -5, -6, -7, -8};
static const int64_t W2[2] = {1ll << 40, -3};
static const float MORE[3] = {0.5f, 0.25f, 0.125f};
static uint8_t WFILE[48];

static void write_weights(void)
{
    memcpy(WFILE, W8, sizeof W8);
    memcpy(WFILE + 32, W2, sizeof W2);
    write_file("weights.bin", WFILE, sizeof WFILE);
    mkdir(tmp_path("sub"), 0755);
    write_file("sub/more.bin", MORE, sizeof MORE);
    write_file("empty.bin", "", 0);
}

static pbw ext_good_model(void)
{
    pbw g = {0};
    int64_t d4[] = {4}, d22[] = {2, 2}, d2[] = {2}, d3[] = {3}, d0[] = {0};
    ext_init(&g, "A", F32, 1, d4, "weights.bin", 0, 16);      /* offset 0 + length */
    ext_init(&g, "B", F32, 2, d22, "weights.bin", 16, 16);    /* same file */
    ext_init(&g, "C", I64, 1, d2, "weights.bin", 32, -1);     /* no length */
    ext_init(&g, "D", F32, 1, d2, "./weights.bin", 2, 8);     /* unaligned: copied */
    ext_init(&g, "E", F32, 1, d3, "sub/more.bin", -1, -1);    /* subdirectory, no offset */
    ext_init(&g, "Z", F32, 1, d0, "empty.bin", -1, 0);        /* an empty file */
    return outputs_graph(&g, (const char *[]){"A", "B", "C", "D", "E", "Z", NULL});
}

static void check_ext_model(const onr_model *model)
{
    int64_t d4[] = {4}, d22[] = {2, 2}, d2[] = {2}, d3[] = {3}, d0[] = {0};
    const onr_tensor *t = konst(model, "A");
    assert_tensor(t, ONR_FLOAT, 1, d4, 4);
    assert_memory_equal(t->data, W8, 16);
    t = konst(model, "B");
    assert_tensor(t, ONR_FLOAT, 2, d22, 4);
    assert_memory_equal(t->data, W8 + 4, 16);
    t = konst(model, "C");
    assert_tensor(t, ONR_INT64, 1, d2, 2);
    assert_memory_equal(t->data, W2, 16);
    t = konst(model, "D");
    assert_tensor(t, ONR_FLOAT, 1, d2, 2);
    assert_memory_equal(t->data, WFILE + 2, 8);
    t = konst(model, "E");
    assert_tensor(t, ONR_FLOAT, 1, d3, 3);
    assert_memory_equal(t->data, MORE, sizeof MORE);
    t = konst(model, "Z");
    assert_tensor(t, ONR_FLOAT, 1, d0, 0);
    /* weights.bin is mapped once for the four tensors that use it */
    int weights_maps = 0;
    for (int i = 0; i < model->n_maps; i++) weights_maps += model->maps[i].len == sizeof WFILE;
    assert_int_equal(weights_maps, 1);
    /* aligned tensors are read in place from that mapping */
    const onr_tensor *a = konst(model, "A"), *b = konst(model, "B");
    int in_place = 0;
    for (int i = 0; i < model->n_maps; i++) {
        const uint8_t *base = model->maps[i].addr;
        if (base && (const uint8_t *)a->data == base && (const uint8_t *)b->data == base + 16)
            in_place = 1;
    }
    assert_true(in_place);
}

static void test_external_data_ok(void **state)
{
    (void)state;
    write_weights();
    pbw m = ext_good_model();
    /* from a path: resolved against the model's directory */
    write_file("ext_ok.onnx", m.b, m.n);
    onr_model *model = NULL;
    onr_err err = {0};
    onr_status st = onr_load_file(tmp_path("ext_ok.onnx"), &model, &err);
    if (st) fail_msg("%s", err.msg);
    check_ext_model(model);
    onr_model_free(model);
    /* from memory with a base directory */
    model = load_ok(&m, tmpdir);
    check_ext_model(model);
    onr_model_free(model);
    /* a base directory with a trailing slash works the same */
    char base[300];
    snprintf(base, sizeof base, "%s/", tmpdir);
    m = ext_good_model();
    model = load_ok(&m, base);
    check_ext_model(model);
    onr_model_free(model);
}

static void ext_expect_error(const char *location, long long offset, long long length,
                             const char *base, onr_status code, const char *text)
{
    pbw g = {0};
    int64_t d4[] = {4};
    ext_init(&g, "ext_w", F32, 1, d4, location, offset, length);
    pbw m = outputs_graph(&g, (const char *[]){"ext_w", NULL});
    onr_err err;
    load_fail(&m, base, code, &err);
    assert_has(err.msg, "tensor 'ext_w'");
    if (text) assert_has(err.msg, text);
}

static void test_external_data_errors(void **state)
{
    (void)state;
    write_weights();
    /* past the end of the file: 40 + 16 > 48 */
    ext_expect_error("weights.bin", 40, 16, tmpdir, ONR_E_MODEL, "beyond the end");
    ext_expect_error("weights.bin", 40, -1, tmpdir, ONR_E_MODEL, "beyond the end");
    ext_expect_error("weights.bin", 1000, -1, tmpdir, ONR_E_MODEL, "beyond the end");
    ext_expect_error("weights.bin", 9223372036854775807ll, -1, tmpdir, ONR_E_MODEL,
                     "beyond the end");
    ext_expect_error("sub/more.bin", 0, -1, tmpdir, ONR_E_MODEL, "beyond the end"); /* 12 < 16 */
    /* escaping the model's directory */
    ext_expect_error("../weights.bin", 0, 16, tmpdir, ONR_E_MODEL, "'../weights.bin'");
    ext_expect_error("sub/../../x.bin", 0, 16, tmpdir, ONR_E_MODEL, "escapes");
    ext_expect_error("sub/..", 0, 16, tmpdir, ONR_E_MODEL, "escapes");
    ext_expect_error("/etc/hostname", 0, 16, tmpdir, ONR_E_MODEL, "'/etc/hostname'");
    ext_expect_error("", 0, 16, tmpdir, ONR_E_MODEL, NULL);
    /* a missing file, a directory */
    ext_expect_error("nothere.bin", 0, 16, tmpdir, ONR_E_IO, "nothere.bin");
    ext_expect_error("sub", 0, 16, tmpdir, ONR_E_IO, "not a regular file");
    /* a length that is not the tensor's size */
    ext_expect_error("weights.bin", 0, 12, tmpdir, ONR_E_MODEL, "length 12");
    /* no location, no base directory */
    ext_expect_error(NULL, 0, 16, tmpdir, ONR_E_MODEL, "no location");
    ext_expect_error("weights.bin", 0, 16, NULL, ONR_E_MODEL, "base directory");

    /* malformed numbers */
    static const char *const bad_offsets[] = {"12abc", "-4", "99999999999999999999", "0x10", "1e3"};
    for (size_t i = 0; i < sizeof bad_offsets / sizeof bad_offsets[0]; i++) {
        pbw g = {0}, t = {0}, kv = {0};
        int64_t d4[] = {4};
        pbw_tensor_head(&t, "ext_w", F32, 1, d4);
        pbw_str(&kv, 1, "location");
        pbw_str(&kv, 2, "weights.bin");
        pbw_msg(&t, 13, &kv);
        pbw_str(&kv, 1, "offset");
        pbw_str(&kv, 2, bad_offsets[i]);
        pbw_msg(&t, 13, &kv);
        pbw_int(&t, 14, 1);
        pbw_msg(&g, 5, &t);
        pbw m = outputs_graph(&g, (const char *[]){"ext_w", NULL});
        onr_err err;
        load_fail(&m, tmpdir, ONR_E_MODEL, &err);
        assert_has(err.msg, "tensor 'ext_w'");
        assert_has(err.msg, "offset");
    }
    /* from a file: the message also names the model file */
    pbw g = {0};
    int64_t d4[] = {4};
    ext_init(&g, "ext_w", F32, 1, d4, "weights.bin", 40, 16);
    pbw m = outputs_graph(&g, (const char *[]){"ext_w", NULL});
    write_file("ext_bad.onnx", m.b, m.n);
    free(m.b);
    onr_model *model = NULL;
    onr_err err = {0};
    assert_int_equal(onr_load_file(tmp_path("ext_bad.onnx"), &model, &err), ONR_E_MODEL);
    assert_null(model);
    assert_has(err.msg, "ext_bad.onnx");
    assert_has(err.msg, "tensor 'ext_w'");
    assert_has(err.msg, "beyond the end");
    /* string tensors cannot be external */
    pbw g2 = {0};
    ext_init(&g2, "ext_s", STR, 1, d4, "weights.bin", 0, -1);
    m = outputs_graph(&g2, (const char *[]){"ext_s", NULL});
    load_fail(&m, tmpdir, ONR_E_UNSUPPORTED, &err);
    assert_has(err.msg, "'ext_s'");
}

/* ---- weights read in place from the mapped model file ------------------------
 * onr_load_file cuts the large raw_data payloads of the main graph's
 * initializers out before protobuf-c unpacks the rest, and reads them from
 * the file's mapping: in place when aligned (to the element size, at least 4
 * bytes), else copied once. The offsets of the payloads in the file are
 * steered with padding fields so each case is hit on purpose. */

#define IP_NA 4096 /* floats of A: 16 KiB, several whole pages */
#define IP_NB 300  /* floats of B */
#define IP_NC 100  /* bytes of C (uint8: needs 4-byte alignment too) */

static float ip_a[IP_NA], ip_b[IP_NB];
static uint8_t ip_c[IP_NC];
static const float ip_s[4] = {1.5f, -2.5f, 3.5f, -4.5f}; /* small: stays in the unpacked copy */

static void ip_fill(void)
{
    for (int i = 0; i < IP_NA; i++) ip_a[i] = (float)i * 0.25f + 1.0f;
    for (int i = 0; i < IP_NB; i++) ip_b[i] = -(float)i - 0.5f;
    for (int i = 0; i < IP_NC; i++) ip_c[i] = (uint8_t)(i * 7 + 3);
}

static void pad_field(pbw *w, int field, size_t n)
{
    char pad[64];
    memset(pad, 'p', sizeof pad);
    pbw_bytes(w, field, pad, n);
}

/* A model with A (float [64,64]), B (float [300]), C (uint8 [100]) and S
 * (float [4]); pads: producer_version before the graph, doc_strings before
 * B's and C's raw_data. */
static pbw ip_model(size_t pad_m, size_t pad_b, size_t pad_c)
{
    pbw g = {0}, t = {0}, m = {0}, os = {0};
    int64_t da[] = {64, 64}, db[] = {IP_NB}, dc[] = {IP_NC}, ds[] = {4};
    raw_init(&g, "A", F32, 2, da, ip_a, sizeof ip_a);
    pbw_tensor_head(&t, "B", F32, 1, db);
    pad_field(&t, 12, pad_b);
    pbw_bytes(&t, 9, ip_b, sizeof ip_b);
    pbw_msg(&g, 5, &t);
    pbw_tensor_head(&t, "C", U8, 1, dc);
    pad_field(&t, 12, pad_c);
    pbw_bytes(&t, 9, ip_c, sizeof ip_c);
    pbw_msg(&g, 5, &t);
    raw_init(&g, "S", F32, 1, ds, ip_s, sizeof ip_s);
    static const char *const outs[] = {"A", "B", "C", "S"};
    for (int i = 0; i < 4; i++) {
        pbw vi = {0};
        pbw_str(&vi, 1, outs[i]);
        pbw_msg(&g, 12, &vi);
    }
    pbw_int(&m, 1, 8);
    pbw_str(&m, 2, "onnx-run-tests");
    pad_field(&m, 3, pad_m);
    pbw_str(&os, 1, "");
    pbw_int(&os, 2, 13);
    pbw_msg(&m, 8, &os);
    pbw_msg(&m, 7, &g);
    return m;
}

static size_t offset_of(const pbw *m, const void *data, size_t n)
{
    for (size_t i = 0; n <= m->n && i <= m->n - n; i++)
        if (memcmp(m->b + i, data, n) == 0) return i;
    fail_msg("payload not found in the model bytes");
    return 0;
}

/* The model with A's payload at a multiple of 16 in the file, B's at 2 mod 4
 * and C's at 1 mod 4 (both misaligned). */
static pbw ip_model_steered(void)
{
    ip_fill();
    for (size_t pm = 0; pm < 16; pm++)
        for (size_t pb = 0; pb < 16; pb++)
            for (size_t pc = 0; pc < 16; pc++) {
                pbw m = ip_model(pm, pb, pc);
                if (offset_of(&m, ip_a, sizeof ip_a) % 16 == 0 &&
                    offset_of(&m, ip_b, sizeof ip_b) % 4 == 2 &&
                    offset_of(&m, ip_c, sizeof ip_c) % 4 == 1)
                    return m;
                free(m.b);
            }
    fail_msg("no padding gives the wanted offsets");
    return (pbw){0};
}

static onr_tensor *konst_rw(onr_model *m, const char *name)
{
    konst(m, name);
    return m->graph->values[onr_graph_find_value(m->graph, name)].konst;
}

/* Index of the model's mapping holding [p, p+n), -1 when none does. */
static int map_holding(const onr_model *m, const void *p, size_t n)
{
    for (int i = 0; i < m->n_maps; i++) {
        uintptr_t a = (uintptr_t)m->maps[i].addr, d = (uintptr_t)p;
        if (a && d >= a && d - a <= m->maps[i].len && n <= m->maps[i].len - (d - a)) return i;
    }
    return -1;
}

/* Resident kB of the mapping starting at addr (from /proc/self/smaps), -1 if unknown. */
static long mapping_rss_kb(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    long rss = -1;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = lo == (unsigned long)(uintptr_t)addr;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &rss) == 1) break;
    }
    fclose(f);
    return rss;
}

static void ip_check_values(onr_model *model)
{
    int64_t da[] = {64, 64}, db[] = {IP_NB}, dc[] = {IP_NC}, ds[] = {4};
    const onr_tensor *a = konst(model, "A"), *b = konst(model, "B"), *c = konst(model, "C"),
                     *sm = konst(model, "S");
    assert_tensor(a, ONR_FLOAT, 2, da, IP_NA);
    assert_tensor(b, ONR_FLOAT, 1, db, IP_NB);
    assert_tensor(c, ONR_UINT8, 1, dc, IP_NC);
    assert_tensor(sm, ONR_FLOAT, 1, ds, 4);
    assert_memory_equal(a->data, ip_a, sizeof ip_a);
    assert_memory_equal(b->data, ip_b, sizeof ip_b);
    assert_memory_equal(c->data, ip_c, sizeof ip_c);
    assert_memory_equal(sm->data, ip_s, sizeof ip_s);
}

static void test_weights_in_place(void **state)
{
    (void)state;
    pbw m = ip_model_steered();
    write_file("inplace.onnx", m.b, m.n);
    onr_model *model = NULL;
    onr_err err = {0};
    if (onr_load_file(tmp_path("inplace.onnx"), &model, &err)) fail_msg("%s", err.msg);
    onr_tensor *a = konst_rw(model, "A"), *b = konst_rw(model, "B"), *c = konst_rw(model, "C");
    /* the file's pages were given back after loading (nothing has read A yet) */
    int mi = map_holding(model, a->data, sizeof ip_a);
    assert_true(mi >= 0);
    const void *base = model->maps[mi].addr;
    long r0 = mapping_rss_kb(base);
    ip_check_values(model);
    /* A: aligned, read in place from the model file's mapping, which the model keeps */
    assert_int_equal(model->maps[mi].len, m.n);
    assert_int_equal((uintptr_t)a->data % 16, 0);
    assert_int_equal((size_t)((const uint8_t *)a->data - (const uint8_t *)model->maps[mi].addr),
                     offset_of(&m, ip_a, sizeof ip_a));
    assert_false(a->owns);
    /* B, C: misaligned, copied (aligned) out of it */
    assert_true(b->owns && c->owns);
    assert_int_equal(map_holding(model, b->data, sizeof ip_b), -1);
    assert_int_equal(map_holding(model, c->data, sizeof ip_c), -1);
    assert_int_equal((uintptr_t)b->data % 16, 0);

    /* reading A brought its pages back */
    volatile float sum = 0;
    for (int i = 0; i < IP_NA; i++) sum += ((const float *)a->data)[i];
    (void)sum; /* read for its page faults only (clang warns of a set-only variable) */
    long r1 = mapping_rss_kb(base);
    print_message("model mapping RSS: %ld kB after load, %ld kB after reading A\n", r0, r1);
    if (r0 >= 0 && r1 >= 0) assert_true(r1 >= r0 + 12 && r0 <= 8);

    /* release: the mapped one gives its whole pages back, the copy is freed */
    onr_model_release_data(model, a);
    long r2 = mapping_rss_kb(base);
    print_message("model mapping RSS after releasing A: %ld kB\n", r2);
    if (r1 >= 0 && r2 >= 0) assert_true(r2 <= r1 - 12);
    onr_model_release_data(model, b);
    for (int k = 0; k < 2; k++) {
        onr_tensor *t = k ? b : a;
        assert_null(t->data);
        assert_false(t->owns);
        assert_int_equal(t->numel, k ? IP_NB : IP_NA);
        assert_int_equal(t->dims[0], k ? IP_NB : 64);
        onr_model_release_data(model, t); /* again: nothing to do */
        assert_null(t->data);
        onr_tensor *cl = onr_tensor_clone(t); /* a released tensor clones to a released one */
        assert_non_null(cl);
        assert_null(cl->data);
        assert_int_equal(cl->numel, t->numel);
        assert_string_equal(cl->name, t->name);
        onr_tensor_free(cl);
    }
    /* saving a released tensor is refused, not a crash */
    uint8_t *pb = NULL;
    size_t pblen = 0;
    onr_err e2 = {0};
    assert_int_equal(onr_save_tensor_pb(a, "A", &pb, &pblen, &e2), ONR_E_ARG);
    assert_null(pb);
    /* C untouched */
    assert_memory_equal(c->data, ip_c, sizeof ip_c);
    onr_model_free(model);

    /* from memory: the caller's buffer is never pointed into, nothing is mapped */
    pbw copy = {0};
    pbw_raw(&copy, m.b, m.n);
    onr_model *mm = NULL;
    memset(&err, 0, sizeof err);
    if (onr_load_buffer(copy.b, copy.n, NULL, &mm, &err)) fail_msg("%s", err.msg);
    assert_int_equal(mm->n_maps, 0);
    static const char *const names[] = {"A", "B", "C", "S"};
    for (int i = 0; i < 4; i++) {
        const onr_tensor *t = konst(mm, names[i]);
        uintptr_t d = (uintptr_t)t->data, lo = (uintptr_t)copy.b;
        assert_true(d < lo || d >= lo + copy.n);
        assert_true(t->owns);
    }
    memset(copy.b, 0, copy.n); /* the model does not depend on the buffer */
    free(copy.b);
    ip_check_values(mm);
    onr_tensor *ma = konst_rw(mm, "A");
    onr_model_release_data(mm, ma);
    assert_null(ma->data);
    onr_model_free(mm);
    free(m.b);
}

/* A model with one large float initializer W of `n` floats whose TensorProto
 * bytes are `t` (taken), plus A so stripping is on. */
static pbw strip_model_with(pbw *t)
{
    pbw g = {0};
    int64_t da[] = {64, 64};
    ip_fill();
    raw_init(&g, "A", F32, 2, da, ip_a, sizeof ip_a);
    pbw_msg(&g, 5, t);
    return outputs_graph(&g, (const char *[]){"A", "W", NULL});
}

/* Load from a file and from memory; both must fail with code and text. */
static void fail_both(pbw *m, onr_status code, const char *text)
{
    write_file("strip_bad.onnx", m->b, m->n);
    onr_model *model = NULL;
    onr_err err = {0};
    onr_status st = onr_load_file(tmp_path("strip_bad.onnx"), &model, &err);
    if (st == ONR_OK) onr_model_free(model);
    if (st != code) fail_msg("file: expected %s, got %s: %s", onr_status_name(code),
                             onr_status_name(st), err.msg);
    assert_null(model);
    assert_has(err.msg, text);
    assert_has(err.msg, "strip_bad.onnx");
    load_fail(m, NULL, code, &err);
    assert_has(err.msg, text);
}

/* Load from a file, expecting success; the caller frees. */
static onr_model *load_file_ok(pbw *m)
{
    write_file("strip_ok.onnx", m->b, m->n);
    free(m->b);
    memset(m, 0, sizeof *m);
    onr_model *model = NULL;
    onr_err err = {0};
    if (onr_load_file(tmp_path("strip_ok.onnx"), &model, &err)) fail_msg("%s", err.msg);
    return model;
}

static void test_weights_stripped_hostile(void **state)
{
    (void)state;
    float w[100];
    for (int i = 0; i < 100; i++) w[i] = (float)i;
    int64_t d100[] = {100};

    /* the file cut in the middle of A's payload */
    pbw m = ip_model(0, 0, 0);
    m.n = offset_of(&m, ip_a, sizeof ip_a) + 1000;
    fail_both(&m, ONR_E_MODEL, "truncated or corrupt");

    /* raw_data's length prefix claims more than its tensor holds */
    pbw t = {0};
    pbw_tensor_head(&t, "W", F32, 1, d100);
    pbw_varint(&t, (9 << 3) | 2);
    pbw_varint(&t, sizeof w + 40);
    pbw_raw(&t, w, sizeof w);
    m = strip_model_with(&t);
    fail_both(&m, ONR_E_MODEL, "truncated or corrupt");

    /* ... or more than the whole file */
    pbw_tensor_head(&t, "W", F32, 1, d100);
    pbw_varint(&t, (9 << 3) | 2);
    pbw_varint(&t, 1u << 30);
    pbw_raw(&t, w, sizeof w);
    m = strip_model_with(&t);
    fail_both(&m, ONR_E_MODEL, "truncated or corrupt");

    /* the graph's length prefix claims more than the file holds */
    pbw g = {0};
    raw_init(&g, "W", F32, 1, d100, w, sizeof w);
    m = (pbw){0};
    pbw_int(&m, 1, 8);
    pbw_varint(&m, (7 << 3) | 2);
    pbw_varint(&m, g.n + 1);
    pbw_raw(&m, g.b, g.n);
    free(g.b);
    fail_both(&m, ONR_E_MODEL, "truncated or corrupt");

    /* a well-framed payload of the wrong size: today's message, naming the tensor */
    pbw_tensor_head(&t, "W", F32, 1, d100);
    pbw_bytes(&t, 9, w, sizeof w - 4);
    m = strip_model_with(&t);
    fail_both(&m, ONR_E_MODEL, "tensor 'W': raw_data holds 396 bytes but shape [100] of float32 "
                               "needs 400");

    /* the loader's own marker field, smuggled in: dropped, so W has no data */
    pbw_tensor_head(&t, "W", F32, 1, d100);
    pbw_varint(&t, ((uint64_t)536870000u << 3) | 1);
    pbw_raw(&t, (uint64_t[]){0}, 8);
    m = strip_model_with(&t);
    fail_both(&m, ONR_E_MODEL, "'W': 0 values stored but its shape needs 100");

    /* raw_data given twice: the last one counts, large or small */
    float w2[100];
    for (int i = 0; i < 100; i++) w2[i] = -(float)i;
    pbw_tensor_head(&t, "W", F32, 1, d100);
    pbw_bytes(&t, 9, w2, sizeof w2);
    pbw_bytes(&t, 9, w, sizeof w);
    m = strip_model_with(&t);
    onr_model *model = load_file_ok(&m);
    assert_memory_equal(konst(model, "W")->data, w, sizeof w);
    assert_memory_equal(konst(model, "A")->data, ip_a, sizeof ip_a);
    onr_model_free(model);
    int64_t d4[] = {4};
    pbw_tensor_head(&t, "W", F32, 1, d4);
    pbw_bytes(&t, 9, w2, sizeof w2);
    pbw_bytes(&t, 9, w, 16);
    m = strip_model_with(&t);
    model = load_file_ok(&m);
    assert_memory_equal(konst(model, "W")->data, w, 16);
    onr_model_free(model);

    /* the graph field given twice: protobuf-c merges the initializers */
    pbw g1 = {0}, g2 = {0};
    ip_fill();
    raw_init(&g1, "A", F32, 2, (int64_t[]){64, 64}, ip_a, sizeof ip_a);
    raw_init(&g2, "W", F32, 1, d100, w, sizeof w);
    pbw vi = {0};
    pbw_str(&vi, 1, "W");
    pbw_msg(&g2, 12, &vi);
    m = (pbw){0};
    pbw_int(&m, 1, 8);
    pbw os = {0};
    pbw_str(&os, 1, "");
    pbw_int(&os, 2, 13);
    pbw_msg(&m, 8, &os);
    pbw_msg(&m, 7, &g1);
    pbw_msg(&m, 7, &g2);
    model = load_file_ok(&m);
    assert_memory_equal(konst(model, "A")->data, ip_a, sizeof ip_a);
    assert_memory_equal(konst(model, "W")->data, w, sizeof w);
    onr_model_free(model);

    /* a string tensor with raw_data: ignored as before, string_data counts */
    pbw_tensor_head(&t, "W", STR, 1, (int64_t[]){1});
    pbw_bytes(&t, 9, w, sizeof w);
    pbw_str(&t, 6, "hello");
    m = strip_model_with(&t);
    model = load_file_ok(&m);
    assert_string_equal(((char *const *)konst(model, "W")->data)[0], "hello");
    onr_model_free(model);
}

/* ---- IR versions ---------------------------------------------------------------- */

static pbw ir_model(int64_t ir, int with_ir)
{
    pbw g = add_graph(NULL);
    pbw m = {0}, os = {0};
    if (with_ir) pbw_int(&m, 1, ir);
    pbw_str(&m, 2, "onnx-run-tests");
    pbw_str(&m, 3, "1.2");
    pbw_str(&os, 1, "");
    pbw_int(&os, 2, 13);
    pbw_msg(&m, 8, &os);
    pbw_msg(&m, 7, &g);
    return m;
}

static void test_ir_versions(void **state)
{
    (void)state;
    onr_err err;
    for (int64_t ir = 3; ir <= 13; ir++) {
        pbw m = ir_model(ir, 1);
        onr_model *model = load_ok(&m, NULL);
        assert_int_equal(model->ir_version, ir);
        onr_model_free(model);
    }
    static const struct {
        int64_t ir;
        int with;
        onr_status code;
        const char *text;
    } bad[] = {
        {1, 1, ONR_E_MODEL, "IR version 1 "},   {2, 1, ONR_E_MODEL, "IR version 2 "},
        {14, 1, ONR_E_UNSUPPORTED, "IR version 14 "}, {-1, 1, ONR_E_MODEL, "IR version -1 "},
        {0, 0, ONR_E_MODEL, "IR version"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pbw m = ir_model(bad[i].ir, bad[i].with);
        load_fail(&m, NULL, bad[i].code, &err);
        assert_has(err.msg, bad[i].text);
        assert_has(err.msg, "3 to 13");
    }
    /* the API reports it */
    pbw m = ir_model(7, 1);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, NULL, &s), ONR_OK);
    assert_int_equal(onr_session_ir_version(s), 7);
    assert_string_equal(onr_session_producer(s), "onnx-run-tests 1.2");
    onr_session_free(s);
    free(m.b);
}

/* ---- setup ---------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    return pbw_tmpdir_make(tmpdir, sizeof tmpdir, "loader");
}

static int teardown(void **state)
{
    (void)state;
    return pbw_tmpdir_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_raw_every_type),
        cmocka_unit_test(test_init_typed_fields),
        cmocka_unit_test(test_init_typed_count_mismatch),
        cmocka_unit_test(test_init_empty_and_scalar),
        cmocka_unit_test(test_init_refused),
        cmocka_unit_test(test_constant_forms),
        cmocka_unit_test(test_constant_refused),
        cmocka_unit_test(test_attributes_every_type),
        cmocka_unit_test(test_attribute_errors),
        cmocka_unit_test(test_nested_subgraph_outer_scope),
        cmocka_unit_test(test_node_wiring),
        cmocka_unit_test(test_graph_inputs_outputs),
        cmocka_unit_test(test_graph_io_errors),
        cmocka_unit_test(test_opsets),
        cmocka_unit_test(test_external_data_ok),
        cmocka_unit_test(test_external_data_errors),
        cmocka_unit_test(test_weights_in_place),
        cmocka_unit_test(test_weights_stripped_hostile),
        cmocka_unit_test(test_ir_versions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
