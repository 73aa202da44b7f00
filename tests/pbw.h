/*
 * pbw.h - a tiny protobuf wire-format writer for tests: builds ONNX models
 * byte by byte, including the malformed and hostile ones no exporter makes.
 * Header-only; every message is a growable byte buffer.
 */
#ifndef ONR_PBW_H
#define ONR_PBW_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pbw {
    uint8_t *b;
    size_t n, cap;
} pbw;

static inline void pbw_raw(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
    }
    if (n) memcpy(w->b + w->n, p, n);
    w->n += n;
}

static inline void pbw_varint(pbw *w, uint64_t v)
{
    uint8_t t[10];
    int k = 0;
    do {
        t[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v && k < 10); /* 10 groups of 7 bits hold any uint64; the bound
                              also tells GCC's -Warray-bounds so */
    pbw_raw(w, t, (size_t)k);
}

static inline void pbw_int(pbw *w, int field, int64_t v)
{
    pbw_varint(w, (uint64_t)field << 3);
    pbw_varint(w, (uint64_t)v);
}

static inline void pbw_bytes(pbw *w, int field, const void *p, size_t n)
{
    pbw_varint(w, ((uint64_t)field << 3) | 2);
    pbw_varint(w, n);
    pbw_raw(w, p, n);
}

static inline void pbw_str(pbw *w, int field, const char *s) { pbw_bytes(w, field, s, strlen(s)); }

static inline void pbw_float(pbw *w, int field, float f)
{
    pbw_varint(w, ((uint64_t)field << 3) | 5);
    pbw_raw(w, &f, 4);
}

/* Append sub as a length-delimited field and free it. */
static inline void pbw_msg(pbw *w, int field, pbw *sub)
{
    pbw_bytes(w, field, sub->b, sub->n);
    free(sub->b);
    memset(sub, 0, sizeof *sub);
}

/* ---- ONNX messages (field numbers of onnx.proto) ----------------------- */

/* ValueInfoProto for a tensor; dims < 0 become dim_param "N". */
static inline void pbw_value_info(pbw *graph, int field, const char *name, int dtype, int rank,
                                  const int64_t *dims)
{
    pbw shape = {0}, tt = {0}, tp = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        pbw d = {0};
        if (dims[i] >= 0) pbw_int(&d, 1, dims[i]);
        else pbw_str(&d, 2, "N");
        pbw_msg(&shape, 1, &d);
    }
    pbw_int(&tt, 1, dtype);
    if (rank >= 0) pbw_msg(&tt, 2, &shape);
    else free(shape.b);
    pbw_msg(&tp, 1, &tt);
    pbw_str(&vi, 1, name);
    pbw_msg(&vi, 2, &tp);
    pbw_msg(graph, field, &vi);
}

/* ValueInfoProto for a sequence of tensors of dtype (no shape). */
static inline void pbw_seq_value_info(pbw *graph, int field, const char *name, int dtype)
{
    pbw tt = {0}, et = {0}, sq = {0}, tp = {0}, vi = {0};
    pbw_int(&tt, 1, dtype);
    pbw_msg(&et, 1, &tt);
    pbw_msg(&sq, 1, &et);
    pbw_msg(&tp, 4, &sq);
    pbw_str(&vi, 1, name);
    pbw_msg(&vi, 2, &tp);
    pbw_msg(graph, field, &vi);
}

/* NodeProto in a domain (NULL: the default) appended as `field` of its
 * container (1 in a GraphProto, 7 in a FunctionProto); ins/outs are
 * NULL-terminated arrays. */
static inline void pbw_node_in(pbw *container, int field, const char *op, const char *domain,
                               const char *name, const char *const *ins, const char *const *outs,
                               pbw *attrs /* may be NULL */)
{
    pbw n = {0};
    for (int i = 0; ins && ins[i]; i++) pbw_str(&n, 1, ins[i]);
    for (int i = 0; outs && outs[i]; i++) pbw_str(&n, 2, outs[i]);
    if (name) pbw_str(&n, 3, name);
    pbw_str(&n, 4, op);
    if (attrs) {
        pbw_raw(&n, attrs->b, attrs->n);
        free(attrs->b);
        memset(attrs, 0, sizeof *attrs);
    }
    if (domain) pbw_str(&n, 7, domain);
    pbw_msg(container, field, &n);
}

/* NodeProto of the default domain in a graph. */
static inline void pbw_node(pbw *graph, const char *op, const char *name, const char *const *ins,
                            const char *const *outs, pbw *attrs /* may be NULL */)
{
    pbw_node_in(graph, 1, op, NULL, name, ins, outs, attrs);
}

/* TensorProto initializer with float raw data (data may be NULL: none). */
static inline void pbw_init_f32(pbw *graph, const char *name, int rank, const int64_t *dims,
                                const float *data, size_t n)
{
    pbw t = {0};
    for (int i = 0; i < rank; i++) pbw_int(&t, 1, dims[i]);
    pbw_int(&t, 2, 1);
    pbw_str(&t, 8, name);
    if (data) pbw_bytes(&t, 9, data, n * sizeof(float));
    pbw_msg(graph, 5, &t);
}

/* ModelProto around a graph with one opset import for ai.onnx. */
static inline pbw pbw_model(pbw *graph, int64_t ir_version, int64_t opset)
{
    pbw m = {0}, os = {0};
    pbw_int(&m, 1, ir_version);
    pbw_str(&m, 2, "onnx-run-tests");
    pbw_str(&os, 1, "");
    pbw_int(&os, 2, opset);
    pbw_msg(&m, 8, &os);
    pbw_msg(&m, 7, graph);
    return m;
}

/* ---- more builders (loader and API tests) ------------------------------- */

/* Packed repeated varints (int32/int64/uint64 fields, enums). */
static inline void pbw_packed_varint(pbw *w, int field, const uint64_t *v, size_t n)
{
    pbw p = {0};
    for (size_t i = 0; i < n; i++) pbw_varint(&p, v[i]);
    pbw_msg(w, field, &p);
}

static inline void pbw_packed_i64(pbw *w, int field, const int64_t *v, size_t n)
{
    pbw p = {0};
    for (size_t i = 0; i < n; i++) pbw_varint(&p, (uint64_t)v[i]);
    pbw_msg(w, field, &p);
}

/* int32 fields: negative values are sign-extended to 10 bytes on the wire. */
static inline void pbw_packed_i32(pbw *w, int field, const int32_t *v, size_t n)
{
    pbw p = {0};
    for (size_t i = 0; i < n; i++) pbw_varint(&p, (uint64_t)(int64_t)v[i]);
    pbw_msg(w, field, &p);
}

static inline void pbw_packed_f32(pbw *w, int field, const float *v, size_t n)
{
    pbw_bytes(w, field, v, n * sizeof(float));
}

static inline void pbw_packed_f64(pbw *w, int field, const double *v, size_t n)
{
    pbw_bytes(w, field, v, n * sizeof(double));
}

/* ValueInfoProto for a tensor with named symbolic dims: dims[i] >= 0 is a
 * dim_value, else names[i] (when names and names[i] are non-NULL) is a
 * dim_param, else the Dimension is left empty (unknown). rank < 0: no shape. */
static inline void pbw_value_info_named(pbw *graph, int field, const char *name, int dtype,
                                        int rank, const int64_t *dims,
                                        const char *const *names)
{
    pbw shape = {0}, tt = {0}, tp = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        pbw d = {0};
        if (dims[i] >= 0) pbw_int(&d, 1, dims[i]);
        else if (names && names[i]) pbw_str(&d, 2, names[i]);
        pbw_msg(&shape, 1, &d);
    }
    pbw_int(&tt, 1, dtype);
    if (rank >= 0) pbw_msg(&tt, 2, &shape);
    else free(shape.b);
    pbw_msg(&tp, 1, &tt);
    pbw_str(&vi, 1, name);
    pbw_msg(&vi, 2, &tp);
    pbw_msg(graph, field, &vi);
}

/* TensorProto header (dims, data_type, name) into t; add the data after. */
static inline void pbw_tensor_head(pbw *t, const char *name, int dtype, int rank,
                                   const int64_t *dims)
{
    for (int i = 0; i < rank; i++) pbw_int(t, 1, dims[i]);
    pbw_int(t, 2, dtype);
    if (name) pbw_str(t, 8, name);
}

/* TensorProto initializer with int64 raw data. */
static inline void pbw_init_i64(pbw *graph, const char *name, int rank, const int64_t *dims,
                                const int64_t *data, size_t n)
{
    pbw t = {0};
    pbw_tensor_head(&t, name, 7, rank, dims);
    pbw_bytes(&t, 9, data, n * sizeof(int64_t));
    pbw_msg(graph, 5, &t);
}

/* AttributeProtos, appended to an attribute list for pbw_node (field 5 of
 * NodeProto). Types: 1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 5 GRAPH, 6 FLOATS,
 * 7 INTS, 8 STRINGS, 9 TENSORS, 10 GRAPHS. */
static inline void pbw_attr_int(pbw *attrs, const char *name, int64_t v)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 2);
    pbw_int(&a, 3, v);
    pbw_msg(attrs, 5, &a);
}

static inline void pbw_attr_float(pbw *attrs, const char *name, float v)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 1);
    pbw_float(&a, 2, v);
    pbw_msg(attrs, 5, &a);
}

static inline void pbw_attr_string(pbw *attrs, const char *name, const char *v)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 3);
    pbw_str(&a, 4, v);
    pbw_msg(attrs, 5, &a);
}

static inline void pbw_attr_ints(pbw *attrs, const char *name, const int64_t *v, size_t n)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 7);
    for (size_t i = 0; i < n; i++) pbw_int(&a, 8, v[i]); /* unpacked, as onnx writes it */
    pbw_msg(attrs, 5, &a);
}

static inline void pbw_attr_floats(pbw *attrs, const char *name, const float *v, size_t n)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 6);
    for (size_t i = 0; i < n; i++) pbw_float(&a, 7, v[i]);
    pbw_msg(attrs, 5, &a);
}

static inline void pbw_attr_strings(pbw *attrs, const char *name, const char *const *v, size_t n)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 8);
    for (size_t i = 0; i < n; i++) pbw_str(&a, 9, v[i]);
    pbw_msg(attrs, 5, &a);
}

/* Takes (and frees) the TensorProto bytes in t. */
static inline void pbw_attr_tensor(pbw *attrs, const char *name, pbw *t)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 4);
    pbw_msg(&a, 5, t);
    pbw_msg(attrs, 5, &a);
}

/* Takes (and frees) the GraphProto bytes in g. */
static inline void pbw_attr_graph(pbw *attrs, const char *name, pbw *g)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_int(&a, 20, 5);
    pbw_msg(&a, 6, g);
    pbw_msg(attrs, 5, &a);
}

/* ModelProto around a graph with the given opset imports (domain, version). */
static inline pbw pbw_model_opsets(pbw *graph, int64_t ir_version, int n,
                                   const char *const *domains, const int64_t *versions)
{
    pbw m = {0};
    pbw_int(&m, 1, ir_version);
    pbw_str(&m, 2, "onnx-run-tests");
    for (int i = 0; i < n; i++) {
        pbw os = {0};
        pbw_str(&os, 1, domains[i]);
        pbw_int(&os, 2, versions[i]);
        pbw_msg(&m, 8, &os);
    }
    pbw_msg(&m, 7, graph);
    return m;
}

/* A fresh temporary directory for one test program (cmocka group setup)
 * and its removal (group teardown). */
static inline int pbw_tmpdir_make(char *dir, size_t len, const char *tag)
{
    snprintf(dir, len, "/tmp/onr_%s_XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

static inline int pbw_tmpdir_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
