/*
 * tensor_io.c - reading and writing tensor files for the CLI and embedders:
 * serialized TensorProto (.pb, the ONNX test-case format) and NumPy .npy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load/load.h"

static onr_status to_msg(onr_err *e, onr_status st, char *msg, size_t msglen)
{
    if (msg && msglen) snprintf(msg, msglen, "%s", st ? e->msg : "");
    return st;
}

/* Largest tensor file read into memory (a .pb has to be read whole). */
static int read_whole(const char *path, uint8_t **buf, size_t *len, onr_err *e)
{
    struct stat st;
    int fd = onr_open_regular(path, "tensor file", &st, e); /* never blocks on a FIFO */
    if (fd < 0) return e->code;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return onr_seterr(e, ONR_E_NOMEM, "out of memory reading '%s'", path);
    }
    if ((uint64_t)st.st_size > onr_max_tensor_bytes() + 4096) {
        fclose(f);
        return onr_seterr(e, ONR_E_NOMEM, "'%s' is too large (%lld bytes)", path,
                          (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return onr_seterr(e, ONR_E_NOMEM, "out of memory reading '%s'", path);
    }
    if (n && fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return onr_seterr(e, ONR_E_IO, "cannot read '%s'", path);
    }
    fclose(f);
    *buf = b;
    *len = n;
    return ONR_OK;
}

/* ---- .npy ------------------------------------------------------------------ */

/* NumPy has no 8-, 4- or 2-bit float or 4-/2-bit int types. Arrays of the
 * ml_dtypes ones (float8_e4m3fn, int4, ...) are saved one byte per element
 * with the descriptor 'V1' (raw bytes), which says nothing of the type:
 * such a file reads as uint8, the bytes unchanged, and the CLI gives the
 * bytes the type the model declares for the input (tools/onnx-run.c,
 * lowp_from_bytes), as it does for a plain uint8 or int8 array of the same
 * bit patterns. */
static const struct {
    const char *descr;
    onr_dtype dt;
} npy_types[] = {
    {"f4", ONR_FLOAT}, {"f8", ONR_DOUBLE}, {"f2", ONR_FLOAT16}, {"i1", ONR_INT8},
    {"i2", ONR_INT16}, {"i4", ONR_INT32},  {"i8", ONR_INT64},   {"u1", ONR_UINT8},
    {"u2", ONR_UINT16}, {"u4", ONR_UINT32}, {"u8", ONR_UINT64}, {"b1", ONR_BOOL},
    {"V1", ONR_UINT8},
};

onr_status onr_parse_npy(const uint8_t *b, size_t len, onr_tensor **out, onr_err *e)
{
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return onr_seterr(e, ONR_E_MODEL, "not a .npy file");
    size_t hlen, hoff;
    if (b[6] == 1) {
        hlen = (size_t)b[8] | ((size_t)b[9] << 8);
        hoff = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12) return onr_seterr(e, ONR_E_MODEL, ".npy header truncated");
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        hoff = 12;
    } else {
        return onr_seterr(e, ONR_E_UNSUPPORTED, ".npy version %d is not supported", b[6]);
    }
    if (hlen > len - hoff || hlen > 65536) return onr_seterr(e, ONR_E_MODEL, ".npy header truncated");
    char h[65537];
    memcpy(h, b + hoff, hlen);
    h[hlen] = 0;
    const char *d = strstr(h, "'descr'"), *fo = strstr(h, "'fortran_order'"), *sh = strstr(h, "'shape'");
    if (!d || !fo || !sh) return onr_seterr(e, ONR_E_MODEL, ".npy header lacks descr/fortran_order/shape");
    d = strchr(d + 7, '\'');
    if (!d) return onr_seterr(e, ONR_E_MODEL, ".npy descr malformed");
    d++;
    if (*d == '>' && d[1] != 'i' && d[2] != '1')
        return onr_seterr(e, ONR_E_UNSUPPORTED, ".npy big-endian data is not supported");
    if (*d == '<' || *d == '|' || *d == '=') d++;
    onr_dtype dt = ONR_UNDEFINED;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (strncmp(d, npy_types[i].descr, 2) == 0 && d[2] == '\'') dt = npy_types[i].dt;
    if (dt == ONR_UNDEFINED) return onr_seterr(e, ONR_E_UNSUPPORTED, ".npy dtype '%.8s' is not supported", d);
    const char *colon = strchr(fo, ':');
    while (colon && (*++colon == ' ')) {}
    if (colon && strncmp(colon, "True", 4) == 0)
        return onr_seterr(e, ONR_E_UNSUPPORTED, ".npy fortran_order arrays are not supported");
    const char *p = strchr(sh, '(');
    if (!p) return onr_seterr(e, ONR_E_MODEL, ".npy shape malformed");
    p++;
    int64_t dims[ONR_MAX_RANK];
    int rank = 0;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0) return onr_seterr(e, ONR_E_MODEL, ".npy shape malformed");
        if (rank == ONR_MAX_RANK) return onr_seterr(e, ONR_E_UNSUPPORTED, ".npy rank exceeds %d", ONR_MAX_RANK);
        dims[rank++] = v;
        p = end;
    }
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return onr_seterr(e, ONR_E_NOMEM, "out of memory");
    int st = onr_tensor_set_shape(t, dt, rank, dims, e);
    if (!st && onr_tensor_nbytes(t) != len - hoff - hlen)
        st = onr_seterr(e, ONR_E_MODEL, ".npy data is %zu bytes, its shape needs %zu",
                        len - hoff - hlen, onr_tensor_nbytes(t));
    if (!st) st = onr_tensor_alloc(t, e);
    if (st) {
        onr_tensor_free(t);
        return st;
    }
    if (onr_tensor_nbytes(t)) memcpy(t->data, b + hoff + hlen, onr_tensor_nbytes(t));
    t->name = onr_strdup("");
    *out = t;
    return ONR_OK;
}

/* ---- public ---------------------------------------------------------------- */

onr_status onr_tensor_read_pb(const void *buf, size_t len, onr_tensor **out, char *msg,
                              size_t msglen)
{
    onr_err e = {0};
    if (!out) return ONR_E_ARG;
    *out = NULL;
    if (!buf && len) {
        onr_seterr(&e, ONR_E_ARG, "no tensor buffer given");
        return to_msg(&e, ONR_E_ARG, msg, msglen);
    }
    return to_msg(&e, onr_load_tensor_pb(buf, len, out, &e), msg, msglen);
}

onr_status onr_tensor_read_file(const char *path, onr_tensor **out, char *msg, size_t msglen)
{
    onr_err e = {0};
    if (!path || !out) return ONR_E_ARG;
    *out = NULL;
    uint8_t *b = NULL;
    size_t len = 0;
    onr_status st = read_whole(path, &b, &len, &e);
    if (st) return to_msg(&e, st, msg, msglen);
    if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) st = onr_parse_npy(b, len, out, &e);
    else st = onr_load_tensor_pb(b, len, out, &e);
    free(b);
    if (st) onr_err_prefix(&e, "%s: ", path);
    return to_msg(&e, st, msg, msglen);
}

onr_status onr_tensor_write_pb(const onr_tensor *t, const char *name, const char *path,
                               char *msg, size_t msglen)
{
    onr_err e = {0};
    if (!t || !path) return ONR_E_ARG;
    if (!t->data && t->numel > 0 && !t->kind) { /* nothing to write: no file */
        onr_seterr(&e, ONR_E_ARG, "tensor '%s' has no data", name ? name : "");
        return to_msg(&e, ONR_E_ARG, msg, msglen);
    }
    int fd = onr_create_regular(path, &e); /* no FIFO, device or symbolic link */
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        if (!e.code) onr_seterr(&e, ONR_E_IO, "cannot create '%s': %s", path, strerror(errno));
        return to_msg(&e, ONR_E_IO, msg, msglen);
    }
    /* streamed: a large output is not serialized into a second buffer */
    onr_status st = onr_write_value_pb(t, name, f, &e);
    int ok = fclose(f) == 0;
    if (st || !ok) {
        unlink(path); /* no truncated file that parses as a shorter tensor */
        if (st == ONR_E_NOMEM || st == ONR_E_ARG) return to_msg(&e, st, msg, msglen);
        memset(&e, 0, sizeof e);
        onr_seterr(&e, ONR_E_IO, "cannot write '%s'", path);
        return to_msg(&e, ONR_E_IO, msg, msglen);
    }
    return ONR_OK;
}

/* ---- sequences, optionals and maps ------------------------------------------ */

onr_kind onr_value_kind(const onr_tensor *v) { return v ? (onr_kind)v->kind : ONR_VALUE_TENSOR; }

int64_t onr_value_count(const onr_tensor *v)
{
    if (v && v->kind == ONR_VALUE_MAP) return v->data ? onr_map_keys_of(v)->numel : 0;
    return v && v->kind ? v->numel : -1;
}

const onr_tensor *onr_value_element(const onr_tensor *v, int64_t i)
{
    if (!v || !v->kind || v->kind == ONR_VALUE_MAP || i < 0 || i >= v->numel || !v->data)
        return NULL;
    return onr_value_item(v, i);
}

/* Item i may go into a container of `kind` whose elements are `elem`
 * (and, for sequences, of the kind and key type of item 0). */
static int item_fits(int kind, onr_dtype elem, const onr_tensor *it, const onr_tensor *first)
{
    if (kind != ONR_VALUE_SEQUENCE) return 1;
    if (it->dtype != elem) return 0;
    if (it->kind != ONR_VALUE_TENSOR && it->kind != ONR_VALUE_MAP) return 0; /* no nesting */
    if (it->kind != first->kind) return 0;
    return it->kind != ONR_VALUE_MAP ||
           onr_map_keys_of(it)->dtype == onr_map_keys_of(first)->dtype;
}

static onr_tensor *container_new(int kind, onr_dtype elem, int64_t n,
                                 const onr_tensor *const *items)
{
    onr_err e = {0};
    if (n < 0 || (n && !items)) return NULL;
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    int st = onr_value_container(t, kind, elem, n, &e);
    for (int64_t i = 0; i < n && !st; i++) {
        onr_tensor *c = calloc(1, sizeof *c);
        if (!c || !items[i] || !item_fits(kind, elem, items[i], items[0])) {
            free(c);
            st = ONR_E_ARG;
            break;
        }
        ((onr_tensor **)t->data)[i] = c;
        st = onr_value_copy(c, items[i], &e);
    }
    if (st) {
        onr_tensor_free(t);
        return NULL;
    }
    return t;
}

onr_tensor *onr_sequence_new(onr_dtype elem, int64_t n, const onr_tensor *const *items)
{
    return container_new(ONR_VALUE_SEQUENCE, elem, n, items);
}

onr_tensor *onr_optional_new(onr_dtype elem, const onr_tensor *value)
{
    if (value && value->kind == ONR_VALUE_OPTIONAL) return NULL;
    return container_new(ONR_VALUE_OPTIONAL, value ? value->dtype : elem, value ? 1 : 0, &value);
}

onr_tensor *onr_map_new(const onr_tensor *keys, const onr_tensor *values)
{
    onr_err e = {0};
    if (onr_map_check(keys, values, &e)) return NULL;
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    int st = onr_value_container(t, ONR_VALUE_MAP, values->dtype, 2, &e);
    for (int i = 0; i < 2 && !st; i++) {
        onr_tensor *c = calloc(1, sizeof *c);
        if (!c) {
            st = ONR_E_NOMEM;
            break;
        }
        ((onr_tensor **)t->data)[i] = c;
        st = onr_value_copy(c, i ? values : keys, &e);
    }
    if (st) {
        onr_tensor_free(t);
        return NULL;
    }
    return t;
}

const onr_tensor *onr_map_keys(const onr_tensor *m)
{
    return m && m->kind == ONR_VALUE_MAP && m->data ? onr_map_keys_of(m) : NULL;
}

const onr_tensor *onr_map_values(const onr_tensor *m)
{
    return m && m->kind == ONR_VALUE_MAP && m->data ? onr_map_values_of(m) : NULL;
}

onr_status onr_value_read_file(const char *path, onr_kind kind, onr_tensor **out, char *msg,
                               size_t msglen)
{
    if (kind == ONR_VALUE_TENSOR) return onr_tensor_read_file(path, out, msg, msglen);
    onr_err e = {0};
    if (!path || !out) return ONR_E_ARG;
    *out = NULL;
    if (kind != ONR_VALUE_SEQUENCE && kind != ONR_VALUE_OPTIONAL && kind != ONR_VALUE_MAP) {
        onr_seterr(&e, ONR_E_ARG, "unknown value kind %d", (int)kind);
        return to_msg(&e, ONR_E_ARG, msg, msglen);
    }
    uint8_t *b = NULL;
    size_t len = 0;
    onr_status st = read_whole(path, &b, &len, &e);
    if (st) return to_msg(&e, st, msg, msglen);
    st = onr_load_value_pb(b, len, kind, out, &e);
    free(b);
    if (st) onr_err_prefix(&e, "%s: ", path);
    return to_msg(&e, st, msg, msglen);
}
