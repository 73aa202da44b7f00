/*
 * _onnxrun.c - the core of the Python package onnxrun: Session, the
 * exceptions, and .pb/.npy tensor files, over the public C API
 * (include/onnxrun.h) and NumPy's C API. Nothing here reaches into the
 * library's internals; it links libonnxrun.so.
 *
 * Memory: an input that is a C-contiguous, aligned, native-order array of
 * the input's element type is read in place (onr_tensor_wrap); anything
 * else of that type is first made so by NumPy (one copy). An array of
 * another element type is passed as it is, so the engine names the
 * mismatch; other objects (lists, scalars) are converted to the input's
 * type. Outputs change hands without a copy: the session gives up each
 * output tensor (onr_session_take_output) and the ndarray's base is a
 * capsule that frees it. STRING tensors are copied both ways (Python str
 * objects), and bfloat16 travels as its raw bits in uint16 arrays. Outputs
 * that are not tensors are copied: a sequence into a list, an optional into
 * None or its value, a map into a dict (ZipMap's output is a list of
 * dicts, as onnxruntime gives it). Inputs are the same, the other way, as
 * each input's declared type (onr_value_info) says: a list or tuple (of
 * arrays, or of dicts for seq(map)) for a sequence, None or the value for
 * an optional, a dict for a map (keys of the declared key type; values
 * converted to the declared type and stacked: scalars a 1-D tensor, arrays
 * its rows). Containers are built of copies (onr_sequence_new and kin copy
 * their items), so the run reads no Python memory for them; a container
 * where a tensor is declared, or the reverse, is an InputError naming both.
 *
 * Threads: the GIL is released while a model loads and runs. Each run has
 * its own onr_run context (its outputs, its message), so threads sharing a
 * Session run it at the same time, each on a plan instance of the
 * session's pool (see the header's "Threads"); weights are not copied.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structseq.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxrun.h"

static PyObject *Error, *InputError, *UnsupportedError, *ModelError;
static PyTypeObject *ValueInfoType;

/* ---- errors ------------------------------------------------------------ */

/* Raise the exception class that fits st, carrying the engine's message
 * and the status name in .status. */
static PyObject *raise_status(onr_status st, const char *msg)
{
    PyObject *cls = Error;
    if (st == ONR_E_INPUT || st == ONR_E_ARG) cls = InputError;
    else if (st == ONR_E_UNSUPPORTED) cls = UnsupportedError;
    else if (st == ONR_E_MODEL) cls = ModelError;
    PyObject *exc = PyObject_CallFunction(cls, "s", msg && *msg ? msg : onr_status_name(st));
    if (!exc) return NULL;
    PyObject *name = PyUnicode_FromString(onr_status_name(st));
    if (name) PyObject_SetAttrString(exc, "status", name);
    Py_XDECREF(name);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- element types ----------------------------------------------------- */

static int npy_of(onr_dtype t)
{
    switch (t) {
    case ONR_FLOAT: return NPY_FLOAT32;
    case ONR_DOUBLE: return NPY_FLOAT64;
    case ONR_FLOAT16: return NPY_FLOAT16;
    case ONR_BFLOAT16: return NPY_UINT16; /* raw bits */
    case ONR_INT8: return NPY_INT8;
    case ONR_INT16: return NPY_INT16;
    case ONR_INT32: return NPY_INT32;
    case ONR_INT64: return NPY_INT64;
    case ONR_UINT8: return NPY_UINT8;
    case ONR_UINT16: return NPY_UINT16;
    case ONR_UINT32: return NPY_UINT32;
    case ONR_UINT64: return NPY_UINT64;
    case ONR_BOOL: return NPY_BOOL;
    case ONR_COMPLEX64: return NPY_COMPLEX64;
    case ONR_COMPLEX128: return NPY_COMPLEX128;
    case ONR_STRING: return NPY_OBJECT;
    default: return -1;
    }
}

/* The engine's type of a NumPy dtype (by kind and size, so 'l' and 'q'
 * both map to int64); ONR_UNDEFINED when there is none. */
static onr_dtype onr_of(PyArray_Descr *d)
{
    int sz = (int)d->elsize;
    switch (d->kind) {
    case 'f': return sz == 4 ? ONR_FLOAT : sz == 8 ? ONR_DOUBLE : sz == 2 ? ONR_FLOAT16 : ONR_UNDEFINED;
    case 'i': return sz == 1 ? ONR_INT8 : sz == 2 ? ONR_INT16 : sz == 4 ? ONR_INT32 : sz == 8 ? ONR_INT64 : ONR_UNDEFINED;
    case 'u': return sz == 1 ? ONR_UINT8 : sz == 2 ? ONR_UINT16 : sz == 4 ? ONR_UINT32 : sz == 8 ? ONR_UINT64 : ONR_UNDEFINED;
    case 'b': return ONR_BOOL;
    case 'c': return sz == 8 ? ONR_COMPLEX64 : sz == 16 ? ONR_COMPLEX128 : ONR_UNDEFINED;
    case 'O': case 'U': case 'S': return ONR_STRING;
    default: return ONR_UNDEFINED;
    }
}

/* dtype for ValueInfo: a numpy dtype, or the string "bfloat16" (NumPy has
 * none; such tensors travel as uint16 bits), or None when undeclared. */
static PyObject *dtype_object(onr_dtype t)
{
    if (t == ONR_BFLOAT16) return PyUnicode_FromString("bfloat16");
    int n = npy_of(t);
    if (n < 0) Py_RETURN_NONE;
    return (PyObject *)PyArray_DescrFromType(n);
}

/* ---- tensors <-> arrays ------------------------------------------------- */

static void capsule_free(PyObject *cap)
{
    onr_tensor_free(PyCapsule_GetPointer(cap, "onnxrun.tensor"));
}

/* An ndarray over t's memory, taking t (freed with the array, or now on
 * failure). STRING tensors are copied into an object array. */
static PyObject *array_from_tensor(onr_tensor *t)
{
    int rank = onr_tensor_rank(t);
    npy_intp dims[ONR_MAX_RANK > 0 ? ONR_MAX_RANK : 1];
    for (int d = 0; d < rank; d++) dims[d] = (npy_intp)onr_tensor_dims(t)[d];
    onr_dtype dt = onr_tensor_dtype(t);
    int typenum = npy_of(dt);
    if (typenum < 0) {
        onr_tensor_free(t);
        return raise_status(ONR_E_UNSUPPORTED, "output element type has no NumPy equivalent");
    }
    if (dt == ONR_STRING || onr_tensor_numel(t) == 0) {
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(rank, dims, typenum);
        if (a && dt == ONR_STRING) {
            char **src = onr_tensor_data(t);
            PyObject **dst = PyArray_DATA(a);
            for (int64_t k = 0; k < onr_tensor_numel(t); k++) {
                PyObject *u = PyUnicode_DecodeUTF8(src[k], (Py_ssize_t)strlen(src[k]), "replace");
                if (!u) {
                    Py_DECREF(a);
                    onr_tensor_free(t);
                    return NULL;
                }
                Py_XSETREF(dst[k], u);
            }
        }
        onr_tensor_free(t);
        return (PyObject *)a;
    }
    PyObject *a = PyArray_SimpleNewFromData(rank, dims, typenum, onr_tensor_data(t));
    if (!a) {
        onr_tensor_free(t);
        return NULL;
    }
    PyObject *cap = PyCapsule_New(t, "onnxrun.tensor", capsule_free);
    if (!cap) {
        Py_DECREF(a);
        onr_tensor_free(t);
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)a, cap) < 0) { /* steals cap */
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* A copy of a value held by a container (never taken): a tensor as an
 * ndarray, a sequence as a list, an optional as None or its value, a map as
 * a dict (int or str keys; a value is a NumPy scalar, or a row of the
 * values when they are not scalars). */
static PyObject *value_copy(const onr_tensor *v)
{
    if (!v) Py_RETURN_NONE;
    onr_kind k = onr_value_kind(v);
    if (k == ONR_VALUE_TENSOR) {
        onr_tensor *c = NULL;
        int64_t n = onr_tensor_numel(v);
        if (onr_tensor_dtype(v) == ONR_STRING) { /* array_from_tensor copies strings */
            c = onr_tensor_new(ONR_STRING, onr_tensor_rank(v), onr_tensor_dims(v));
            if (c) {
                char **d = onr_tensor_data(c), *const *src = onr_tensor_data(v);
                for (int64_t i = 0; i < n; i++) {
                    char *x = strdup(src[i] ? src[i] : "");
                    if (!x) break;
                    free(d[i]);
                    d[i] = x;
                }
            }
        } else {
            c = onr_tensor_new(onr_tensor_dtype(v), onr_tensor_rank(v), onr_tensor_dims(v));
            if (c && n) memcpy(onr_tensor_data(c), onr_tensor_data(v),
                               (size_t)n * onr_dtype_size(onr_tensor_dtype(v)));
        }
        if (!c) return PyErr_NoMemory();
        return array_from_tensor(c);
    }
    if (k == ONR_VALUE_OPTIONAL)
        return onr_value_count(v) > 0 ? value_copy(onr_value_element(v, 0)) : (Py_INCREF(Py_None), Py_None);
    if (k == ONR_VALUE_SEQUENCE) {
        int64_t n = onr_value_count(v);
        PyObject *l = PyList_New((Py_ssize_t)n);
        for (int64_t i = 0; l && i < n; i++) {
            PyObject *x = value_copy(onr_value_element(v, i));
            if (!x) Py_CLEAR(l);
            else PyList_SET_ITEM(l, (Py_ssize_t)i, x);
        }
        return l;
    }
    /* a map */
    const onr_tensor *keys = onr_map_keys(v);
    PyObject *vals = value_copy(onr_map_values(v)), *d = vals ? PyDict_New() : NULL;
    int64_t n = onr_value_count(v);
    for (int64_t i = 0; d && i < n; i++) {
        const void *kp = onr_tensor_data(keys);
        PyObject *key = NULL;
        switch (onr_tensor_dtype(keys)) {
        case ONR_STRING: {
            const char *s = ((char *const *)kp)[i];
            key = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
            break;
        }
        case ONR_INT8: key = PyLong_FromLong(((const int8_t *)kp)[i]); break;
        case ONR_INT16: key = PyLong_FromLong(((const int16_t *)kp)[i]); break;
        case ONR_INT32: key = PyLong_FromLong(((const int32_t *)kp)[i]); break;
        case ONR_UINT8: key = PyLong_FromLong(((const uint8_t *)kp)[i]); break;
        case ONR_UINT16: key = PyLong_FromLong(((const uint16_t *)kp)[i]); break;
        case ONR_UINT32: key = PyLong_FromUnsignedLong(((const uint32_t *)kp)[i]); break;
        case ONR_UINT64: key = PyLong_FromUnsignedLongLong(((const uint64_t *)kp)[i]); break;
        default: key = PyLong_FromLongLong(((const int64_t *)kp)[i]); break;
        }
        PyObject *val = key ? PySequence_GetItem(vals, (Py_ssize_t)i) : NULL;
        if (!val || PyDict_SetItem(d, key, val) < 0) Py_CLEAR(d);
        Py_XDECREF(key);
        Py_XDECREF(val);
    }
    Py_XDECREF(vals);
    return d;
}

/* An output taken from the session: a tensor becomes an ndarray over its
 * memory; a sequence, optional or map is copied (value_copy), then freed. */
static PyObject *value_from_output(onr_tensor *t)
{
    if (onr_value_kind(t) == ONR_VALUE_TENSOR) return array_from_tensor(t);
    PyObject *r = value_copy(t);
    onr_tensor_free(t);
    return r;
}

/* A STRING tensor holding a copy of the array's strings (str or bytes). */
static onr_tensor *string_tensor(PyArrayObject *a, int rank, const int64_t *dims)
{
    PyArrayObject *o = (PyArrayObject *)PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(NPY_OBJECT),
                                                        0, 0, NPY_ARRAY_CARRAY_RO, NULL);
    if (!o) return NULL;
    onr_tensor *t = onr_tensor_new(ONR_STRING, rank, dims);
    if (!t) {
        Py_DECREF(o);
        PyErr_NoMemory();
        return NULL;
    }
    char **dst = onr_tensor_data(t);
    PyObject **src = PyArray_DATA(o);
    for (int64_t k = 0; k < onr_tensor_numel(t); k++) {
        const char *s = NULL;
        Py_ssize_t len = 0;
        if (PyUnicode_Check(src[k])) {
            s = PyUnicode_AsUTF8AndSize(src[k], &len);
        } else if (PyBytes_Check(src[k])) {
            s = PyBytes_AS_STRING(src[k]);
            len = PyBytes_GET_SIZE(src[k]);
        } else {
            PyErr_SetString(PyExc_TypeError, "a string input holds something not str or bytes");
        }
        char *c = s ? malloc((size_t)len + 1) : NULL;
        if (!c) {
            if (s) PyErr_NoMemory();
            onr_tensor_free(t);
            Py_DECREF(o);
            return NULL;
        }
        memcpy(c, s, (size_t)len);
        c[len] = 0;
        free(dst[k]);
        dst[k] = c;
    }
    Py_DECREF(o);
    return t;
}

/* Make the tensor for one input value. want: the model's declared type
 * (ONR_UNDEFINED: take the value's own). *keep receives the array the
 * tensor reads (a new reference), kept alive until the run ends. */
static onr_tensor *input_tensor(PyObject *value, onr_dtype want, PyObject **keep)
{
    *keep = NULL;
    PyArrayObject *a = NULL;
    if (PyArray_Check(value)) {
        onr_dtype have = onr_of(PyArray_DESCR((PyArrayObject *)value));
        if (want == ONR_BFLOAT16 && have == ONR_UINT16) have = ONR_BFLOAT16;
        if (have == ONR_UNDEFINED) {
            PyErr_Format(InputError, "an input array of dtype %R has no ONNX element type",
                         (PyObject *)PyArray_DESCR((PyArrayObject *)value));
            return NULL;
        }
        /* wrong type: passed on as it is, so the engine names the input */
        onr_dtype as = want == ONR_UNDEFINED || have != want ? have : want;
        int typenum = as == ONR_STRING ? NPY_OBJECT : npy_of(as);
        if (as == ONR_STRING ||
            (PyArray_ISCARRAY_RO((PyArrayObject *)value) && PyArray_ISNOTSWAPPED((PyArrayObject *)value))) {
            Py_INCREF(value);
            a = (PyArrayObject *)value;
        } else {
            a = (PyArrayObject *)PyArray_FromAny(value, PyArray_DescrFromType(typenum), 0, 0,
                                                 NPY_ARRAY_CARRAY_RO, NULL);
        }
        want = as;
    } else {
        PyArray_Descr *d = NULL;
        if (want != ONR_UNDEFINED && want != ONR_STRING) d = PyArray_DescrFromType(npy_of(want));
        a = (PyArrayObject *)PyArray_FromAny(value, d, 0, 0, NPY_ARRAY_CARRAY_RO, NULL);
        if (a && want == ONR_UNDEFINED) want = onr_of(PyArray_DESCR(a));
        if (a && want == ONR_STRING && onr_of(PyArray_DESCR(a)) != ONR_STRING)
            want = onr_of(PyArray_DESCR(a)); /* let the engine name the mismatch */
    }
    if (!a) return NULL;
    int rank = PyArray_NDIM(a);
    if (rank > ONR_MAX_RANK) {
        Py_DECREF(a);
        PyErr_Format(InputError, "an input has rank %d; onnx-run handles up to %d", rank, ONR_MAX_RANK);
        return NULL;
    }
    int64_t dims[ONR_MAX_RANK > 0 ? ONR_MAX_RANK : 1];
    for (int d = 0; d < rank; d++) dims[d] = (int64_t)PyArray_DIM(a, d);
    onr_tensor *t;
    if (want == ONR_STRING) {
        t = string_tensor(a, rank, dims);
        Py_DECREF(a);
        return t;
    }
    if (want == ONR_UNDEFINED) {
        Py_DECREF(a);
        PyErr_SetString(InputError, "an input has no ONNX element type");
        return NULL;
    }
    t = onr_tensor_wrap(want, rank, dims, PyArray_DATA(a));
    if (!t) {
        Py_DECREF(a);
        PyErr_SetString(InputError, "cannot make a tensor of an input (bad dims?)");
        return NULL;
    }
    *keep = (PyObject *)a;
    return t;
}

/* ---- sequences, optionals and maps as inputs ---------------------------- */

/* What a graph input is declared to be (onr_value_info): its kind, the
 * element kind of a sequence or optional, its (elements', a map's values')
 * element type and a map's key type. */
typedef struct {
    onr_kind kind, elem_kind;
    onr_dtype dtype, key_dtype;
} input_type;

/* The declared type of a container's element. A sequence's elements are
 * tensors or maps; an optional's are tensors, maps or sequences, the last
 * of maps when the optional declares a key type (optional(seq(map))). */
static input_type element_type(const input_type *ty)
{
    input_type e = *ty;
    e.kind = ty->elem_kind;
    e.elem_kind = ty->kind == ONR_VALUE_OPTIONAL && ty->elem_kind == ONR_VALUE_SEQUENCE &&
                          ty->key_dtype != ONR_UNDEFINED
                      ? ONR_VALUE_MAP
                      : ONR_VALUE_TENSOR;
    return e;
}

/* The Python form of a value of type ty, for messages. */
static const char *kind_text(const input_type *ty)
{
    switch (ty->kind) {
    case ONR_VALUE_SEQUENCE:
        return ty->elem_kind == ONR_VALUE_MAP ? "a sequence of maps (a list of dicts)"
                                              : "a sequence (a list or tuple of arrays)";
    case ONR_VALUE_MAP: return "a map (a dict)";
    case ONR_VALUE_OPTIONAL:
        return ty->elem_kind == ONR_VALUE_SEQUENCE ? "an optional sequence (a list, or None)"
               : ty->elem_kind == ONR_VALUE_MAP    ? "an optional map (a dict, or None)"
                                                   : "an optional tensor (an array, or None)";
    default: return "a tensor (an array)";
    }
}

/* The part of v that does not fit kind (a tensor, a sequence or a map):
 * v itself, or for a tensor a dict that a list or tuple holds (a list of
 * maps); NULL when v fits. Lists are tensors too (numpy.asarray takes
 * them); only their first level is looked at, numpy refuses the rest. */
static PyObject *misfit(PyObject *v, onr_kind kind)
{
    switch (kind) {
    case ONR_VALUE_SEQUENCE: return PyList_Check(v) || PyTuple_Check(v) ? NULL : v;
    case ONR_VALUE_MAP: return PyDict_Check(v) ? NULL : v;
    case ONR_VALUE_OPTIONAL: return NULL; /* None or a value: optional_input looks */
    default: break;
    }
    if (v == Py_None || PyDict_Check(v)) return v;
    if (PyList_Check(v) || PyTuple_Check(v))
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(v); i++)
            if (PyDict_Check(PySequence_Fast_GET_ITEM(v, i))) return PySequence_Fast_GET_ITEM(v, i);
    return NULL;
}

/* Raise InputError with .status as the engine's (raise_status). */
static onr_tensor *input_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *m = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    const char *u = m ? PyUnicode_AsUTF8(m) : NULL;
    if (u) raise_status(ONR_E_INPUT, u);
    Py_XDECREF(m);
    return NULL;
}

/* Raise InputError: v (or bad, a map inside the list v) is not of type ty. */
static onr_tensor *kind_error(const input_type *ty, PyObject *v, PyObject *bad)
{
    char got[160];
    if (bad != v)
        snprintf(got, sizeof got, "a %s of maps (dicts)", Py_TYPE(v)->tp_name);
    else if (v == Py_None)
        snprintf(got, sizeof got, "None");
    else
        snprintf(got, sizeof got, "%s (%s)",
                 PyDict_Check(v)                       ? "a map"
                 : PyList_Check(v) || PyTuple_Check(v) ? "a sequence"
                                                       : "a tensor",
                 Py_TYPE(v)->tp_name);
    return input_error("expected %s, got %s", kind_text(ty), got);
}

/* Put "where: " (fmt as PyUnicode_FromFormat's) before the message of a
 * pending onnxrun.Error, keeping its class and .status (other exceptions,
 * NumPy's, are left as they are). */
static void error_context(const char *fmt, ...)
{
    if (!PyErr_ExceptionMatches(Error)) return;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    va_list ap;
    va_start(ap, fmt);
    PyObject *where = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    PyObject *msg = where ? PyUnicode_FromFormat("%U: %S", where, v) : NULL;
    PyObject *exc = msg ? PyObject_CallOneArg(t, msg) : NULL;
    if (exc && PyObject_HasAttrString(v, "status")) { /* HasAttr: no error left */
        PyObject *status = PyObject_GetAttrString(v, "status");
        if (!status || PyObject_SetAttrString(exc, "status", status) < 0) Py_CLEAR(exc);
        Py_XDECREF(status);
    }
    if (exc) PyErr_SetObject(t, exc);
    Py_XDECREF(exc), Py_XDECREF(msg), Py_XDECREF(where);
    Py_XDECREF(t), Py_XDECREF(v), Py_XDECREF(tb);
}

/* t (made for a value declared of element type want) has that type;
 * else InputError, and t is freed. */
static onr_tensor *check_dtype(onr_tensor *t, onr_dtype want)
{
    if (!t || want == ONR_UNDEFINED || onr_tensor_dtype(t) == want) return t;
    input_error("expected %s, got %s", onr_dtype_name(want), onr_dtype_name(onr_tensor_dtype(t)));
    onr_tensor_free(t);
    return NULL;
}

static onr_tensor *input_value(PyObject *v, const input_type *ty, PyObject **keep);

/* A sequence from a list or tuple: each element made as the declared
 * element type says, then copied by onr_sequence_new. */
static onr_tensor *sequence_input(PyObject *v, const input_type *ty)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
    onr_tensor **items = calloc((size_t)n + 1, sizeof *items);
    PyObject **keep = calloc((size_t)n + 1, sizeof *keep);
    onr_tensor *seq = NULL;
    input_type et = element_type(ty);
    onr_dtype elem = ty->dtype;
    if (!items || !keep) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        items[i] = input_value(PySequence_Fast_GET_ITEM(v, i), &et, &keep[i]);
        if (items[i] && elem == ONR_UNDEFINED) elem = onr_tensor_dtype(items[i]); /* undeclared */
        if (!(items[i] = check_dtype(items[i], elem))) {
            error_context("element %zd", i);
            goto done;
        }
    }
    seq = onr_sequence_new(elem, (int64_t)n, (const onr_tensor *const *)items);
    if (!seq) input_error("cannot make a sequence of the elements given");
done:
    for (Py_ssize_t j = 0; j < n && items && keep; j++) {
        onr_tensor_free(items[j]);
        Py_XDECREF(keep[j]);
    }
    free(items), free(keep);
    return seq;
}

/* An optional: None is absent; anything else is its value, made as the
 * declared element type says and copied by onr_optional_new. */
static onr_tensor *optional_input(PyObject *v, const input_type *ty)
{
    onr_tensor *opt;
    if (v == Py_None) {
        if (!(opt = onr_optional_new(ty->dtype, NULL))) PyErr_NoMemory();
        return opt;
    }
    input_type et = element_type(ty);
    PyObject *bad = misfit(v, et.kind), *keep = NULL;
    if (bad) return kind_error(ty, v, bad);
    onr_tensor *x = input_value(v, &et, &keep);
    if (x && et.kind == ONR_VALUE_TENSOR) x = check_dtype(x, ty->dtype);
    if (!x) {
        Py_XDECREF(keep);
        return NULL;
    }
    opt = onr_optional_new(onr_tensor_dtype(x), x);
    onr_tensor_free(x);
    Py_XDECREF(keep);
    if (!opt) input_error("cannot make an optional of the value given");
    return opt;
}

/* A key that fits a map's key type: str or bytes for STRING, an integer
 * (int, a NumPy integer) for the integer types. */
static int key_fits(PyObject *key, onr_dtype kt)
{
    if (kt == ONR_STRING) return PyUnicode_Check(key) || PyBytes_Check(key);
    return PyLong_Check(key) || PyArray_IsScalar(key, Integer);
}

/* A map from a dict: its keys as a 1-D tensor of the declared key type,
 * its values stacked by NumPy into one tensor of the declared value type
 * (scalars: 1-D; equal-shaped arrays: rows), copied by onr_map_new. */
static onr_tensor *map_input(PyObject *v, const input_type *ty)
{
    Py_ssize_t n = PyDict_Size(v), pos = 0, i = 0;
    PyObject *ks = PyList_New(n), *vs = PyList_New(n), *key, *val;
    PyObject *karr = NULL, *vkeep = NULL;
    onr_tensor *keys = NULL, *values = NULL, *m = NULL;
    onr_dtype kt = ty->key_dtype, vt = ty->dtype != ONR_UNDEFINED ? ty->dtype : ONR_FLOAT;
    int64_t dim = (int64_t)n;
    if (!ks || !vs) goto done;
    if (kt == ONR_UNDEFINED) { /* undeclared: as the first key is */
        kt = ONR_INT64;
        if (PyDict_Next(v, &pos, &key, &val) && (PyUnicode_Check(key) || PyBytes_Check(key)))
            kt = ONR_STRING;
        pos = 0;
    }
    while (PyDict_Next(v, &pos, &key, &val)) {
        if (!key_fits(key, kt)) {
            input_error("key %R has type %s; the map's keys are %s", key, Py_TYPE(key)->tp_name,
                        onr_dtype_name(kt));
            goto done;
        }
        PyObject *bad = misfit(val, ONR_VALUE_TENSOR);
        if (bad) {
            static const input_type tensor = {ONR_VALUE_TENSOR, ONR_VALUE_TENSOR, ONR_UNDEFINED,
                                              ONR_UNDEFINED};
            kind_error(&tensor, val, bad);
            error_context("the value of key %R", key);
            goto done;
        }
        Py_INCREF(key), Py_INCREF(val);
        PyList_SET_ITEM(ks, i, key);
        PyList_SET_ITEM(vs, i, val);
        i++;
    }
    if (n == 0) { /* NumPy would make float64 of []: the declared types */
        keys = onr_tensor_new(kt, 1, &dim);
        values = onr_tensor_new(vt, 1, &dim);
        if (!keys || !values) PyErr_NoMemory();
    } else if (kt == ONR_STRING) {
        karr = PyArray_FromAny(ks, PyArray_DescrFromType(NPY_OBJECT), 1, 1, NPY_ARRAY_CARRAY_RO, NULL);
        keys = karr ? string_tensor((PyArrayObject *)karr, 1, &dim) : NULL;
    } else {
        karr = PyArray_FromAny(ks, PyArray_DescrFromType(npy_of(kt)), 1, 1, NPY_ARRAY_CARRAY_RO, NULL);
        keys = karr ? onr_tensor_wrap(kt, 1, &dim, PyArray_DATA((PyArrayObject *)karr)) : NULL;
        if (karr && !keys) PyErr_NoMemory();
    }
    if (keys && !values) {
        values = check_dtype(input_tensor(vs, ty->dtype, &vkeep), ty->dtype);
        if (!values) error_context("values");
    }
    if (keys && values) {
        m = onr_map_new(keys, values);
        if (!m) input_error("cannot make a map of it (a key given twice?)");
    }
done:
    onr_tensor_free(keys), onr_tensor_free(values);
    Py_XDECREF(karr), Py_XDECREF(vkeep), Py_XDECREF(ks), Py_XDECREF(vs);
    return m;
}

/* The value for one graph input of declared type ty. A tensor is
 * input_tensor's (it may read the array put in *keep); a sequence,
 * optional or map holds copies, so it reads no Python memory (*keep stays
 * NULL) and the run touches no Python object. */
static onr_tensor *input_value(PyObject *v, const input_type *ty, PyObject **keep)
{
    *keep = NULL;
    PyObject *bad = misfit(v, ty->kind);
    if (bad) return kind_error(ty, v, bad);
    switch (ty->kind) {
    case ONR_VALUE_SEQUENCE: return sequence_input(v, ty);
    case ONR_VALUE_OPTIONAL: return optional_input(v, ty);
    case ONR_VALUE_MAP: return map_input(v, ty);
    default: return input_tensor(v, ty->dtype, keep);
    }
}

/* ---- Session ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    onr_session *s;
    PyObject *inputs, *outputs; /* lists of ValueInfo, made once */
    int n_in, n_out;
    input_type *in_types; /* each input's declared type */
} Session;

static PyObject *value_info(const onr_value_info *vi)
{
    PyObject *shape = Py_None;
    Py_INCREF(shape);
    if (vi->rank >= 0) {
        Py_DECREF(shape);
        shape = PyList_New(vi->rank);
        if (!shape) return NULL;
        for (int d = 0; d < vi->rank; d++) {
            PyObject *x;
            if (vi->dims[d] >= 0) x = PyLong_FromLongLong((long long)vi->dims[d]);
            else if (vi->dim_names && vi->dim_names[d]) x = PyUnicode_FromString(vi->dim_names[d]);
            else {
                x = Py_None;
                Py_INCREF(x);
            }
            if (!x) {
                Py_DECREF(shape);
                return NULL;
            }
            PyList_SET_ITEM(shape, d, x);
        }
    }
    PyObject *r = PyStructSequence_New(ValueInfoType);
    PyObject *name = PyUnicode_FromString(vi->name), *dt = dtype_object(vi->dtype);
    if (!r || !name || !dt) {
        Py_XDECREF(r), Py_XDECREF(name), Py_XDECREF(dt), Py_DECREF(shape);
        return NULL;
    }
    PyStructSequence_SET_ITEM(r, 0, name);
    PyStructSequence_SET_ITEM(r, 1, dt);
    PyStructSequence_SET_ITEM(r, 2, shape);
    return r;
}

static PyObject *value_infos(onr_session *s, int outputs, int n)
{
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) {
        onr_value_info vi;
        onr_status st = outputs ? onr_session_output_info(s, i, &vi) : onr_session_input_info(s, i, &vi);
        PyObject *x = st ? raise_status(st, "cannot describe a graph value") : value_info(&vi);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, x);
    }
    return l;
}

static void Session_dealloc(Session *self)
{
    onr_session_free(self->s);
    Py_XDECREF(self->inputs);
    Py_XDECREF(self->outputs);
    free(self->in_types);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Session_init(Session *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"model", "threads", "fuse", "base_dir", NULL};
    PyObject *model;
    int threads = 0, fuse = 1;
    PyObject *base_dir = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$ipO&", kwlist, &model, &threads, &fuse,
                                     PyUnicode_FSConverter, &base_dir))
        return -1;
    if (self->s) {
        Py_XDECREF(base_dir);
        PyErr_SetString(PyExc_RuntimeError, "Session is already open");
        return -1;
    }
    if (threads < 0) {
        Py_XDECREF(base_dir);
        PyErr_SetString(PyExc_ValueError, "threads must be >= 0 (0: every CPU)");
        return -1;
    }
    onr_options *o = onr_options_new();
    if (!o) {
        Py_XDECREF(base_dir);
        PyErr_NoMemory();
        return -1;
    }
    onr_options_set_threads(o, threads);
    onr_options_set_fuse(o, fuse);
    if (base_dir) onr_options_set_base_dir(o, PyBytes_AS_STRING(base_dir));
    Py_XDECREF(base_dir);
    onr_session *s = NULL;
    onr_status st;
    if (PyUnicode_Check(model) || PyObject_HasAttrString(model, "__fspath__")) {
        PyObject *path = NULL;
        if (!PyUnicode_FSConverter(model, &path)) {
            onr_options_free(o);
            return -1;
        }
        Py_BEGIN_ALLOW_THREADS
        st = onr_session_open(PyBytes_AS_STRING(path), o, &s);
        Py_END_ALLOW_THREADS
        Py_DECREF(path);
    } else if (PyObject_CheckBuffer(model)) {
        Py_buffer view;
        if (PyObject_GetBuffer(model, &view, PyBUF_SIMPLE) < 0) {
            onr_options_free(o);
            return -1;
        }
        Py_BEGIN_ALLOW_THREADS
        st = onr_session_open_memory(view.buf, (size_t)view.len, o, &s);
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&view);
    } else {
        onr_options_free(o);
        PyErr_SetString(PyExc_TypeError, "model must be a path (str, os.PathLike) or bytes");
        return -1;
    }
    onr_options_free(o);
    if (st != ONR_OK) {
        raise_status(st, onr_session_errmsg(s));
        onr_session_free(s);
        return -1;
    }
    self->s = s;
    self->n_in = onr_session_input_count(s);
    self->n_out = onr_session_output_count(s);
    self->in_types = calloc((size_t)self->n_in + 1, sizeof *self->in_types);
    if (!self->in_types) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < self->n_in; i++) {
        onr_value_info vi;
        if (onr_session_input_info(s, i, &vi) == ONR_OK)
            self->in_types[i] = (input_type){vi.kind, vi.elem_kind, vi.dtype, vi.key_dtype};
    }
    self->inputs = value_infos(s, 0, self->n_in);
    self->outputs = self->inputs ? value_infos(s, 1, self->n_out) : NULL;
    return self->outputs ? 0 : -1;
}

static int check_open(Session *self)
{
    if (self->s) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Session is not open");
    return 0;
}

/* Index of the graph value named `name` among inputs or outputs; -1. */
static int find_name(PyObject *infos, const char *name)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(infos); i++) {
        const char *n = PyUnicode_AsUTF8(PyStructSequence_GET_ITEM(PyList_GET_ITEM(infos, i), 0));
        if (n && strcmp(n, name) == 0) return (int)i;
    }
    return -1;
}

PyDoc_STRVAR(run_doc,
"run(output_names, input_feed, run_options=None) -> list of numpy arrays\n\n"
"Run the model. input_feed maps every graph input's name to an array (or\n"
"anything numpy.asarray takes); output_names lists the outputs wanted, in\n"
"order, or is None for all of them (as onnxruntime.InferenceSession.run).\n"
"C-contiguous arrays of the input's dtype are read in place; the returned\n"
"arrays own the engine's buffers (no copy).\n\n"
"Inputs declared as sequences, optionals or maps take (and outputs of\n"
"those kinds come back as) a list of arrays (of dicts for seq(map)), None\n"
"or the value, and a dict {key: scalar or array} with keys of the map's\n"
"key type (int or str); their elements are converted to the declared\n"
"dtype, as are lists given for a tensor input.\n\n"
"Raises onnxrun.InputError for a missing, unknown, mistyped or misshapen\n"
"input (a container for a tensor, or the reverse, included),\n"
"onnxrun.Error otherwise.");

static PyObject *Session_run(Session *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"output_names", "input_feed", "run_options", NULL};
    PyObject *want = Py_None, *feed = NULL, *run_options = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:run", kwlist, &want, &feed, &run_options))
        return NULL;
    if (!check_open(self)) return NULL;
    if (run_options != Py_None) { /* onnxruntime's third argument: none here */
        PyErr_SetString(PyExc_TypeError, "run_options: onnxrun takes none (pass None)");
        return NULL;
    }
    if (!PyDict_Check(feed)) {
        PyErr_SetString(PyExc_TypeError, "input_feed must be a dict {input name: array}");
        return NULL;
    }
    /* a private copy: the names stay alive while the GIL is released */
    feed = PyDict_Copy(feed);
    if (!feed) return NULL;
    PyObject *result = NULL, *wanted = NULL;
    Py_ssize_t n = PyDict_Size(feed);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    onr_tensor **ins = calloc((size_t)n + 1, sizeof *ins);
    PyObject **keep = calloc((size_t)n + 1, sizeof *keep);
    int *outs_idx = NULL;
    onr_tensor **outs = NULL;
    char *msg = NULL;
    Py_ssize_t n_want = 0;
    if (!names || !ins || !keep) {
        PyErr_NoMemory();
        goto done;
    }
    /* inputs */
    Py_ssize_t pos = 0, k = 0;
    PyObject *key, *value;
    while (PyDict_Next(feed, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "input_feed keys must be input names (str), not %R", key);
            goto done;
        }
        names[k] = PyUnicode_AsUTF8(key); /* lives as long as the dict's key */
        if (!names[k]) goto done;
        int idx = find_name(self->inputs, names[k]);
        if (idx < 0) { /* the engine's words, before converting what it would not take */
            input_error("the model has no input named '%s'", names[k]);
            goto done;
        }
        ins[k] = input_value(value, &self->in_types[idx], &keep[k]);
        if (!ins[k]) {
            error_context("input '%s'", names[k]);
            goto done;
        }
        k++;
    }
    /* outputs wanted */
    if (want == Py_None) {
        n_want = self->n_out;
    } else {
        if (PyUnicode_Check(want)) { /* a str is a sequence too: of letters */
            PyErr_SetString(PyExc_TypeError, "output_names must be a list of output names or None");
            goto done;
        }
        wanted = PySequence_Fast(want, "output_names must be a list of output names or None");
        if (!wanted) goto done;
        n_want = PySequence_Fast_GET_SIZE(wanted);
    }
    outs_idx = calloc((size_t)n_want + 1, sizeof *outs_idx);
    outs = calloc((size_t)n_want + 1, sizeof *outs);
    if (!outs_idx || !outs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < n_want; j++) {
        if (!wanted) {
            outs_idx[j] = (int)j;
            continue;
        }
        PyObject *o = PySequence_Fast_GET_ITEM(wanted, j);
        const char *on = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
        if (!on) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "output names must be str, not %R", o);
            goto done;
        }
        if ((outs_idx[j] = find_name(self->outputs, on)) < 0) {
            PyErr_Format(InputError, "the model has no output named '%s'", on);
            goto done;
        }
    }
    /* run: no Python object is touched until the GIL is back */
    onr_status st;
    Py_BEGIN_ALLOW_THREADS
    onr_run *r = onr_run_new(self->s); /* this call's own outputs and message */
    st = r ? onr_run_exec(r, (int)n, names, (const onr_tensor *const *)ins, 0, NULL, NULL)
           : ONR_E_NOMEM;
    for (Py_ssize_t j = 0; j < n_want && st == ONR_OK; j++) {
        outs[j] = onr_run_take_output(r, outs_idx[j]);
        for (Py_ssize_t i = 0; !outs[j] && i < j; i++) /* asked twice: a copy */
            if (outs_idx[i] == outs_idx[j] && outs[i]) {
                onr_tensor *c = onr_tensor_new(onr_tensor_dtype(outs[i]), onr_tensor_rank(outs[i]),
                                               onr_tensor_dims(outs[i]));
                if (c && onr_tensor_dtype(c) != ONR_STRING)
                    memcpy(onr_tensor_data(c), onr_tensor_data(outs[i]),
                           (size_t)onr_tensor_numel(c) * onr_dtype_size(onr_tensor_dtype(c)));
                else if (c) { /* strings: element by element */
                    char **d = onr_tensor_data(c), **s = onr_tensor_data(outs[i]);
                    for (int64_t e = 0; e < onr_tensor_numel(c); e++) {
                        char *x = strdup(s[e]);
                        if (x) free(d[e]), d[e] = x;
                    }
                }
                outs[j] = c;
            }
        if (!outs[j]) st = ONR_E_NOMEM;
    }
    if (st != ONR_OK) {
        const char *m = r ? onr_run_errmsg(r) : "";
        msg = strdup(*m ? m : "out of memory taking the outputs");
    }
    onr_run_free(r);
    Py_END_ALLOW_THREADS
    if (st != ONR_OK) {
        raise_status(st, msg);
        goto done;
    }
    result = PyList_New(n_want);
    for (Py_ssize_t j = 0; result && j < n_want; j++) {
        PyObject *a = value_from_output(outs[j]);
        outs[j] = NULL; /* taken by the array (or freed) */
        if (!a) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, j, a);
    }
done:
    for (Py_ssize_t j = 0; outs && j < n_want; j++) onr_tensor_free(outs[j]);
    for (Py_ssize_t i = 0; ins && i < n; i++) {
        onr_tensor_free(ins[i]);
        Py_XDECREF(keep[i]);
    }
    free(names), free(ins), free(keep), free(outs_idx), free(outs), free(msg);
    Py_XDECREF(wanted);
    Py_DECREF(feed);
    return result;
}

static PyObject *Session_get_inputs(Session *self, void *closure)
{
    (void)closure;
    if (!check_open(self)) return NULL;
    return PyList_GetSlice(self->inputs, 0, PY_SSIZE_T_MAX);
}

static PyObject *Session_get_outputs(Session *self, void *closure)
{
    (void)closure;
    if (!check_open(self)) return NULL;
    return PyList_GetSlice(self->outputs, 0, PY_SSIZE_T_MAX);
}

static PyObject *Session_get_threads(Session *self, void *closure)
{
    (void)closure;
    if (!check_open(self)) return NULL;
    return PyLong_FromLong(onr_session_threads(self->s));
}

static PyObject *Session_inputs_m(Session *self, PyObject *unused)
{
    (void)unused;
    return Session_get_inputs(self, NULL);
}

static PyObject *Session_outputs_m(Session *self, PyObject *unused)
{
    (void)unused;
    return Session_get_outputs(self, NULL);
}

static PyMethodDef Session_methods[] = {
    {"run", (PyCFunction)(void (*)(void))Session_run, METH_VARARGS | METH_KEYWORDS, run_doc},
    {"get_inputs", (PyCFunction)Session_inputs_m, METH_NOARGS, "The inputs (as onnxruntime's)."},
    {"get_outputs", (PyCFunction)Session_outputs_m, METH_NOARGS, "The outputs (as onnxruntime's)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Session_getset[] = {
    {"inputs", (getter)Session_get_inputs, NULL,
     "Graph inputs not backed by an initializer: list of ValueInfo(name, dtype, shape).", NULL},
    {"outputs", (getter)Session_get_outputs, NULL, "Graph outputs: list of ValueInfo.", NULL},
    {"threads", (getter)Session_get_threads, NULL, "Threads the kernels use.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyDoc_STRVAR(Session_doc,
"Session(model, *, threads=0, fuse=True, base_dir=None)\n\n"
"Load an ONNX model and plan it. model is a path (str or os.PathLike) or\n"
"the model's bytes (anything with the buffer protocol; copied). threads: 0\n"
"uses every CPU. fuse: the planner's fusions. base_dir: where external\n"
"data of a model given as bytes lies. Raises onnxrun.Error (or a subclass)\n"
"with the engine's message when the model cannot be opened.\n\n"
"Threads sharing one Session run it at the same time (the GIL is released\n"
"during a run; each concurrent run gets its own plan instance, the weights\n"
"are shared).");

static PyTypeObject SessionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "onnxrun.Session",
    .tp_basicsize = sizeof(Session),
    .tp_dealloc = (destructor)Session_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = Session_doc,
    .tp_methods = Session_methods,
    .tp_getset = Session_getset,
    .tp_init = (initproc)Session_init,
    .tp_new = PyType_GenericNew,
};

/* ---- tensor files -------------------------------------------------------- */

static PyObject *load_tensor(PyObject *mod, PyObject *arg)
{
    (void)mod;
    PyObject *path = NULL;
    if (!PyUnicode_FSConverter(arg, &path)) return NULL;
    onr_tensor *t = NULL;
    char msg[1024] = "";
    onr_status st;
    Py_BEGIN_ALLOW_THREADS
    st = onr_tensor_read_file(PyBytes_AS_STRING(path), &t, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (st) {
        onr_tensor_free(t);
        return raise_status(st, msg);
    }
    return array_from_tensor(t);
}

static PyObject *save_tensor(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"path", "array", "name", NULL};
    PyObject *path = NULL, *value, *keep = NULL;
    const char *name = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O|s:save_tensor", kwlist, PyUnicode_FSConverter,
                                     &path, &value, &name))
        return NULL;
    onr_tensor *t = input_tensor(value, ONR_UNDEFINED, &keep);
    if (!t) {
        Py_DECREF(path);
        return NULL;
    }
    char msg[1024] = "";
    onr_status st;
    Py_BEGIN_ALLOW_THREADS
    st = onr_tensor_write_pb(t, name, PyBytes_AS_STRING(path), msg, sizeof msg);
    Py_END_ALLOW_THREADS
    onr_tensor_free(t);
    Py_XDECREF(keep);
    Py_DECREF(path);
    if (st) return raise_status(st, msg);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"load_tensor", load_tensor, METH_O,
     "load_tensor(path) -> numpy array: a serialized TensorProto (.pb) or a .npy file."},
    {"save_tensor", (PyCFunction)(void (*)(void))save_tensor, METH_VARARGS | METH_KEYWORDS,
     "save_tensor(path, array, name='') writes the array as a serialized TensorProto (.pb)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "onnxrun._onnxrun",
    "The C core of onnxrun (see the package's documentation).", -1, module_methods,
    NULL, NULL, NULL, NULL};

static PyStructSequence_Field value_info_fields[] = {
    {"name", "the graph value's name"},
    {"dtype", "numpy dtype (the string 'bfloat16' for bfloat16; None when undeclared)"},
    {"shape", "list of ints, str for a symbolic dim, None for an unnamed unknown dim; "
              "None when the model declares no shape"},
    {NULL, NULL}};

static PyStructSequence_Desc value_info_desc = {
    "onnxrun.ValueInfo", "A graph input or output: name, dtype, shape.", value_info_fields, 3};

static int add(PyObject *m, const char *name, PyObject *o)
{
    if (!o) return -1;
    Py_INCREF(o);
    if (PyModule_AddObject(m, name, o) < 0) {
        Py_DECREF(o);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__onnxrun(void)
{
    import_array();
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    if (PyType_Ready(&SessionType) < 0) goto fail;
    ValueInfoType = PyStructSequence_NewType(&value_info_desc);
    Error = PyErr_NewExceptionWithDoc("onnxrun.Error",
        "An error from onnx-run; the message is the engine's, .status names its code.", NULL, NULL);
    if (!ValueInfoType || !Error) goto fail;
    PyObject *b;
    b = PyTuple_Pack(2, Error, PyExc_ValueError);
    InputError = b ? PyErr_NewExceptionWithDoc("onnxrun.InputError",
        "An input (or output name) the model does not take: missing, unknown, wrong type or shape.",
        b, NULL) : NULL;
    Py_XDECREF(b);
    b = PyTuple_Pack(2, Error, PyExc_NotImplementedError);
    UnsupportedError = b ? PyErr_NewExceptionWithDoc("onnxrun.UnsupportedError",
        "The model is valid but needs an operator, opset or type onnx-run lacks.", b, NULL) : NULL;
    Py_XDECREF(b);
    ModelError = PyErr_NewExceptionWithDoc("onnxrun.ModelError",
        "The model or tensor file is malformed or invalid.", Error, NULL);
    if (!InputError || !UnsupportedError || !ModelError) goto fail;
    if (add(m, "Session", (PyObject *)&SessionType) || add(m, "ValueInfo", (PyObject *)ValueInfoType) ||
        add(m, "Error", Error) || add(m, "InputError", InputError) ||
        add(m, "UnsupportedError", UnsupportedError) || add(m, "ModelError", ModelError) ||
        PyModule_AddStringConstant(m, "version", ONR_VERSION_STRING) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
