/*
 * ir.c - tensors, attributes, graphs and errors of the internal representation.
 */
#include "ir/ir.h"
#include "ir/budget.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------- */

onr_status onr_seterr(onr_err *e, onr_status code, const char *fmt, ...)
{
    if (e && e->code == ONR_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

void onr_err_prefix(onr_err *e, const char *fmt, ...)
{
    if (!e) return;
    char old[sizeof e->msg];
    memcpy(old, e->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    size_t used = (size_t)n < sizeof e->msg ? (size_t)n : sizeof e->msg - 1;
    size_t room = sizeof e->msg - 1 - used, olen = strlen(old);
    if (olen > room) olen = room;
    memcpy(e->msg + used, old, olen);
    e->msg[used + olen] = 0;
}

/* ---- dtypes ------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} dtype_info[ONR_DTYPE_COUNT] = {
    [ONR_UNDEFINED] = {"undefined", 0}, [ONR_FLOAT] = {"float32", 4},
    [ONR_UINT8] = {"uint8", 1},         [ONR_INT8] = {"int8", 1},
    [ONR_UINT16] = {"uint16", 2},       [ONR_INT16] = {"int16", 2},
    [ONR_INT32] = {"int32", 4},         [ONR_INT64] = {"int64", 8},
    [ONR_STRING] = {"string", 0},       [ONR_BOOL] = {"bool", 1},
    [ONR_FLOAT16] = {"float16", 2},     [ONR_DOUBLE] = {"float64", 8},
    [ONR_UINT32] = {"uint32", 4},       [ONR_UINT64] = {"uint64", 8},
    [ONR_COMPLEX64] = {"complex64", 8}, [ONR_COMPLEX128] = {"complex128", 16},
    [ONR_BFLOAT16] = {"bfloat16", 2},
    /* one byte per element in memory (see onnxrun.h) */
    [ONR_FLOAT8E4M3FN] = {"float8e4m3fn", 1},     [ONR_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 1},
    [ONR_FLOAT8E5M2] = {"float8e5m2", 1},         [ONR_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 1},
    [ONR_UINT4] = {"uint4", 1},                   [ONR_INT4] = {"int4", 1},
    [ONR_FLOAT4E2M1] = {"float4e2m1", 1},         [ONR_FLOAT8E8M0] = {"float8e8m0", 1},
    [ONR_UINT2] = {"uint2", 1},                   [ONR_INT2] = {"int2", 1},
};

const char *onr_dtype_name(onr_dtype t)
{
    return ((unsigned)t < ONR_DTYPE_COUNT) ? dtype_info[t].name : "undefined";
}

size_t onr_dtype_size(onr_dtype t)
{
    return ((unsigned)t < ONR_DTYPE_COUNT) ? dtype_info[t].size : 0;
}

const char *onr_status_name(onr_status s)
{
    static const char *names[] = {"ok", "bad argument", "i/o error", "invalid model",
                                  "unsupported", "bad input", "out of memory", "runtime error"};
    return ((unsigned)s < sizeof names / sizeof names[0]) ? names[s] : "unknown status";
}

/* ---- limits ------------------------------------------------------------- */

uint64_t onr_max_tensor_bytes(void)
{
    /* runs of one session in several threads read it at once: an atomic
     * (computing it twice is harmless, the value is the same) */
    static _Atomic uint64_t cached;
    uint64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!v) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        uint64_t phys = (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz : (1ull << 32);
        v = phys / 2;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

onr_status onr_dims_numel(const int64_t *dims, int rank, onr_dtype dt, int64_t *numel,
                          onr_err *err)
{
    char buf[256];
    if (rank < 0 || rank > ONR_MAX_RANK)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "rank %d exceeds the maximum of %d", rank,
                          ONR_MAX_RANK);
    uint64_t n = 1;
    int zero = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return onr_seterr(err, ONR_E_MODEL, "negative dim %lld in shape %s",
                              (long long)dims[i], onr_fmt_dims(buf, sizeof buf, dims, rank));
        if (dims[i] == 0) zero = 1;
    }
    uint64_t esz = onr_dtype_size(dt) ? onr_dtype_size(dt) : sizeof(char *);
    uint64_t limit = onr_max_tensor_bytes() / esz;
    for (int i = 0; i < rank && !zero; i++) {
        uint64_t d = (uint64_t)dims[i];
        if (d != 0 && n > limit / d)
            return onr_seterr(err, ONR_E_NOMEM,
                              "shape %s of %s is too large (limit %llu bytes per tensor)",
                              onr_fmt_dims(buf, sizeof buf, dims, rank), onr_dtype_name(dt),
                              (unsigned long long)onr_max_tensor_bytes());
        n *= d;
    }
    *numel = zero ? 0 : (int64_t)n;
    return ONR_OK;
}

/* ---- tensors ------------------------------------------------------------ */

onr_status onr_tensor_set_shape(onr_tensor *t, onr_dtype dt, int rank, const int64_t *dims,
                                onr_err *err)
{
    int64_t numel = 0;
    onr_status st = onr_dims_numel(dims, rank, dt, &numel, err);
    if (st) return st;
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    for (int i = rank; i < ONR_MAX_RANK; i++) t->dims[i] = 0;
    t->numel = numel;
    return ONR_OK;
}

size_t onr_tensor_nbytes(const onr_tensor *t)
{
    return t->kind ? 0 : (size_t)t->numel * onr_dtype_size(t->dtype);
}

/* ---- containers: shared slot blocks (ir.h) -------------------------------- */

static _Atomic uint64_t g_seq_copies;

uint64_t onr_seq_copy_count(void) { return atomic_load_explicit(&g_seq_copies, memory_order_relaxed); }

void onr_seq_count_copies(uint64_t n)
{
    atomic_fetch_add_explicit(&g_seq_copies, n, memory_order_relaxed);
}

static onr_slots *slots_of(const onr_tensor *t)
{
    return t->kind && t->data ? (onr_slots *)((char *)t->data - offsetof(onr_slots, slot)) : NULL;
}

onr_tensor *onr_value_share(onr_tensor *e)
{
    if (e) __atomic_fetch_add(&e->refs, 1, __ATOMIC_RELAXED);
    return e;
}

void onr_value_unref(onr_tensor *e)
{
    /* refs counts the owners beyond the first: 0 before the decrement
     * means this was the last one */
    if (e && __atomic_fetch_sub(&e->refs, 1, __ATOMIC_ACQ_REL) == 0) onr_tensor_free(e);
}

static void slots_release(onr_slots *b)
{
    if (!b || __atomic_fetch_sub(&b->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    int64_t used = __atomic_load_n(&b->used, __ATOMIC_ACQUIRE);
    for (int64_t i = 0; i < used; i++) onr_value_unref(b->slot[i]);
    free(b);
}

/* A new block of cap slots (NULL), `used` of them counted as filled. */
static onr_slots *slots_new(int64_t cap, int64_t used, onr_err *err)
{
    if (cap < 0 || (uint64_t)cap > onr_max_tensor_bytes() / sizeof(onr_tensor *)) {
        onr_seterr(err, ONR_E_NOMEM, "a sequence of %lld values is too long", (long long)cap);
        return NULL;
    }
    size_t bytes = sizeof(onr_slots) + ((size_t)cap + 1) * sizeof(onr_tensor *);
    if (onr_budget_run_take(bytes, err)) return NULL;
    onr_slots *b = calloc(1, bytes);
    if (!b) {
        onr_seterr(err, ONR_E_NOMEM, "out of memory");
        return NULL;
    }
    b->cap = cap;
    b->used = used;
    return b;
}

/* A container's reference on its block, and the slot array. */
static void free_items(onr_tensor *t)
{
    if (!t->kind || !t->owns || !t->data) return;
    slots_release(slots_of(t));
    t->data = NULL;
    t->owns = 0;
    t->cap = 0;
}

/* t (whatever it owned released, its name kept) becomes a container of
 * kind over block b's first n slots; t takes the caller's reference. */
static void container_set(onr_tensor *t, int kind, onr_dtype elem, onr_slots *b, int64_t n)
{
    char *name = t->name;
    t->name = NULL;
    if (t->owns) onr_tensor_clear(t);
    t->name = name;
    t->kind = (uint8_t)kind;
    t->dtype = elem;
    t->rank = 1;
    memset(t->dims, 0, sizeof t->dims);
    t->dims[0] = n;
    t->numel = n;
    t->data = b->slot;
    t->owns = 1;
    t->cap = ((size_t)b->cap + 1) * sizeof(onr_tensor *);
}

onr_status onr_value_container(onr_tensor *t, int kind, onr_dtype elem, int64_t n, onr_err *err)
{
    if (t->owns) {
        char *name = t->name;
        t->name = NULL;
        onr_tensor_clear(t);
        t->name = name;
    }
    if (n < 0) return onr_seterr(err, ONR_E_NOMEM, "a sequence of %lld values is too long", (long long)n);
    onr_slots *b = slots_new(n, n, err);
    if (!b) return err && err->code ? err->code : ONR_E_NOMEM;
    container_set(t, kind, elem, b, n);
    return ONR_OK;
}

onr_status onr_value_copy(onr_tensor *t, const onr_tensor *src, onr_err *err)
{
    if (t == src) return ONR_OK;
    if (src->kind) {
        onr_slots *b = slots_of(src);
        if (!b) return onr_value_container(t, src->kind, src->dtype, 0, err);
        __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED); /* before t lets go of what it held */
        container_set(t, src->kind, src->dtype, b, src->numel);
        return ONR_OK;
    }
    if (!t->owns) t->data = NULL, t->cap = 0;
    if (t->kind || t->dtype == ONR_STRING || src->dtype == ONR_STRING) {
        char *name = t->name;
        t->name = NULL;
        onr_tensor_clear(t);
        t->name = name;
    }
    onr_status st = onr_tensor_set_shape(t, src->dtype, src->rank, src->dims, err);
    if (!st) st = onr_tensor_alloc(t, err);
    if (st || !src->numel) return st;
    if (src->dtype == ONR_STRING) {
        char **d = t->data, *const *s = src->data;
        for (int64_t i = 0; i < t->numel; i++) {
            char *c = onr_strdup(s[i] ? s[i] : "");
            if (!c) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
            free(d[i]);
            d[i] = c;
        }
    } else if (onr_tensor_nbytes(t)) {
        if (!src->data) /* e.g. a Loop body output that no step computed */
            return onr_seterr(err, ONR_E_RUNTIME, "a value of %lld elements has no data to copy",
                              (long long)src->numel);
        memcpy(t->data, src->data, onr_tensor_nbytes(t));
    }
    return ONR_OK;
}

onr_status onr_seq_insert(onr_tensor *y, const onr_tensor *s, int64_t pos, onr_tensor *e,
                          onr_err *err)
{
    int64_t n = s->numel;
    onr_slots *old = slots_of(s);
    if (pos == n && old && n < old->cap) {
        int64_t expect = n; /* only the block's longest value appends in place */
        if (__atomic_compare_exchange_n(&old->used, &expect, n + 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            old->slot[n] = e;
            /* a release: whoever frees the block (acquiring on refs) sees
             * the slot written */
            __atomic_fetch_add(&old->refs, 1, __ATOMIC_RELEASE);
            container_set(y, ONR_VALUE_SEQUENCE, e->dtype, old, n + 1);
            return ONR_OK;
        }
    }
    /* a new block: room to append in place after an append */
    int64_t cap = pos == n ? (n < 4 ? 8 : 2 * (n + 1)) : n + 1;
    if ((uint64_t)cap > onr_max_tensor_bytes() / sizeof(onr_tensor *)) cap = n + 1; /* no headroom */
    onr_slots *b = slots_new(cap, n + 1, err);
    if (!b) {
        onr_tensor_free(e);
        return err && err->code ? err->code : ONR_E_NOMEM;
    }
    for (int64_t i = 0, j = 0; i <= n; i++)
        b->slot[i] = i == pos ? e : onr_value_share(onr_value_item(s, j++));
    onr_seq_count_copies((uint64_t)n);
    container_set(y, ONR_VALUE_SEQUENCE, e->dtype, b, n + 1);
    return ONR_OK;
}

onr_status onr_seq_erase(onr_tensor *y, const onr_tensor *s, int64_t pos, onr_err *err)
{
    int64_t n = s->numel;
    onr_slots *old = slots_of(s);
    if (pos == n - 1 && old) { /* a prefix of s */
        __atomic_fetch_add(&old->refs, 1, __ATOMIC_RELAXED);
        container_set(y, ONR_VALUE_SEQUENCE, s->dtype, old, n - 1);
        return ONR_OK;
    }
    onr_slots *b = slots_new(n - 1, n - 1, err);
    if (!b) return err && err->code ? err->code : ONR_E_NOMEM;
    for (int64_t i = 0, j = 0; i < n; i++)
        if (i != pos) b->slot[j++] = onr_value_share(onr_value_item(s, i));
    onr_seq_count_copies((uint64_t)(n - 1));
    container_set(y, ONR_VALUE_SEQUENCE, s->dtype, b, n - 1);
    return ONR_OK;
}

/* ---- maps ---------------------------------------------------------------- */

int onr_map_key_type_ok(onr_dtype dt)
{
    switch (dt) {
    case ONR_INT8: case ONR_INT16: case ONR_INT32: case ONR_INT64: case ONR_UINT8:
    case ONR_UINT16: case ONR_UINT32: case ONR_UINT64: case ONR_STRING: return 1;
    default: return 0;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

onr_status onr_map_check(const onr_tensor *keys, const onr_tensor *values, onr_err *err)
{
    if (!keys || !values || keys->kind || values->kind)
        return onr_seterr(err, ONR_E_MODEL, "a map's keys and values must be tensors");
    if (!onr_map_key_type_ok(keys->dtype))
        return onr_seterr(err, ONR_E_MODEL, "map keys are %s; a key must be an integer or a string",
                          onr_dtype_name(keys->dtype));
    if (keys->rank != 1)
        return onr_seterr(err, ONR_E_MODEL, "map keys must be 1-D, got rank %d", keys->rank);
    int64_t n = keys->dims[0];
    if (values->rank < 1 || values->dims[0] != n)
        return onr_seterr(err, ONR_E_MODEL, "a map has %lld keys but %lld values", (long long)n,
                          (long long)(values->rank < 1 ? 1 : values->dims[0]));
    if (values->dtype <= ONR_UNDEFINED || values->dtype >= ONR_DTYPE_COUNT)
        return onr_seterr(err, ONR_E_MODEL, "map values have no element type");
    if ((n > 0 && !keys->data) || (values->numel > 0 && !values->data))
        return onr_seterr(err, ONR_E_MODEL, "a map's keys or values have no data");
    if (n < 2) return ONR_OK;
    /* no key twice: sort a copy */
    int str = keys->dtype == ONR_STRING;
    void *tmp = malloc((size_t)n * (str ? sizeof(char *) : sizeof(int64_t)));
    if (!tmp) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    if (str) {
        char **d = tmp, *const *k = keys->data;
        for (int64_t i = 0; i < n; i++) d[i] = k[i] ? k[i] : "";
        qsort(d, (size_t)n, sizeof *d, cmp_str);
    } else {
        int64_t *d = tmp;
        for (int64_t i = 0; i < n; i++)
            d[i] = onr_map_key_i64(keys, i);
        qsort(d, (size_t)n, sizeof *d, cmp_i64);
    }
    onr_status st = ONR_OK;
    for (int64_t i = 1; i < n && !st; i++) {
        if (str && strcmp(((char **)tmp)[i - 1], ((char **)tmp)[i]) == 0)
            st = onr_seterr(err, ONR_E_MODEL, "map key '%.200s' appears twice", ((char **)tmp)[i]);
        else if (!str && ((int64_t *)tmp)[i - 1] == ((int64_t *)tmp)[i])
            st = keys->dtype == ONR_UINT64
                     ? onr_seterr(err, ONR_E_MODEL, "map key %llu appears twice",
                                  (unsigned long long)((int64_t *)tmp)[i])
                     : onr_seterr(err, ONR_E_MODEL, "map key %lld appears twice",
                                  (long long)((int64_t *)tmp)[i]);
    }
    free(tmp);
    return st;
}

int64_t onr_load_i64(onr_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case ONR_INT8: return ((const int8_t *)p)[i];
    case ONR_INT16: return ((const int16_t *)p)[i];
    case ONR_INT32: return ((const int32_t *)p)[i];
    case ONR_INT64: return ((const int64_t *)p)[i];
    case ONR_UINT8: return ((const uint8_t *)p)[i];
    case ONR_UINT16: return ((const uint16_t *)p)[i];
    case ONR_UINT32: return ((const uint32_t *)p)[i];
    case ONR_UINT64: return (int64_t)((const uint64_t *)p)[i];
    default: return 0;
    }
}

int64_t onr_map_key_i64(const onr_tensor *keys, int64_t i)
{
    return onr_load_i64(keys->dtype, keys->data, i);
}

onr_status onr_map_alloc(onr_tensor *t, onr_dtype key, onr_dtype val, int64_t n, onr_err *err)
{
    onr_status st = onr_value_container(t, ONR_VALUE_MAP, val, 2, err);
    if (st) return st;
    for (int i = 0; i < 2 && !st; i++) {
        onr_tensor *e = calloc(1, sizeof *e);
        if (!e) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        ((onr_tensor **)t->data)[i] = e;
        st = onr_tensor_set_shape(e, i ? val : key, 1, &n, err);
        if (!st) st = onr_tensor_alloc(e, err);
        if (!st && e->dtype != ONR_STRING && e->numel) memset(e->data, 0, onr_tensor_nbytes(e));
    }
    return st;
}

/* A string tensor's owned strings. Counted by its slot array's capacity
 * when known (cap: the bytes of the slots onr_tensor_alloc/onr_out_grow
 * made, unused ones NULL), not by numel: a reshape may have changed numel
 * before the strings made under the old shape are freed. */
static void free_strings(onr_tensor *t)
{
    if (t->dtype == ONR_STRING && t->owns && t->data) {
        char **s = t->data;
        int64_t n = t->cap >= sizeof(char *) ? (int64_t)(t->cap / sizeof(char *)) : t->numel;
        for (int64_t i = 0; i < n; i++) free(s[i]);
    }
}

onr_status onr_tensor_alloc(onr_tensor *t, onr_err *err)
{
    if (t->kind) { /* a container becomes a plain tensor */
        free_items(t);
        t->kind = ONR_VALUE_TENSOR;
        t->data = NULL;
        t->owns = 0;
        t->cap = 0;
    }
    size_t esz = t->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(t->dtype);
    size_t need = (size_t)t->numel * esz;
    if (t->dtype == ONR_STRING) {
        /* strings are owned per element: start from a clean array */
        if (t->owns && t->data) {
            free_strings(t);
            free(t->data);
        }
        if (onr_budget_run_take(need, err)) {
            t->data = NULL, t->owns = 0, t->cap = 0;
            return ONR_E_NOMEM;
        }
        t->data = calloc(t->numel ? (size_t)t->numel : 1, sizeof(char *));
        t->cap = need;
        t->owns = 1;
        if (!t->data) return onr_seterr(err, ONR_E_NOMEM, "out of memory for %zu bytes", need);
        for (int64_t i = 0; i < t->numel; i++) {
            ((char **)t->data)[i] = onr_strdup("");
            if (!((char **)t->data)[i]) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        }
        return ONR_OK;
    }
    if (t->owns && t->data && t->cap >= need) return ONR_OK;
    if (t->owns) free(t->data);
    t->data = NULL;
    t->owns = 0;
    t->cap = 0;
    /* 64-byte aligned, padded to a multiple of 64 so SIMD tails may be safe */
    size_t alloc = (need + 63) & ~(size_t)63;
    if (alloc == 0) alloc = 64;
    if (onr_budget_run_take(alloc, err)) return ONR_E_NOMEM; /* sized by a kernel's run */
    void *p = onr_alloc_aligned(alloc);
    if (!p) return onr_seterr(err, ONR_E_NOMEM, "out of memory allocating %zu bytes", need);
    t->data = p;
    t->cap = alloc;
    t->owns = 1;
    return ONR_OK;
}

void *onr_alloc_aligned(size_t bytes)
{
    enum { HUGE = 2u << 20 };
    void *p = NULL;
    if (bytes >= HUGE) {
        if (posix_memalign(&p, HUGE, bytes) != 0) return NULL;
        (void)madvise(p, bytes & ~(size_t)(HUGE - 1), MADV_HUGEPAGE); /* a hint only */
        return p;
    }
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}

void onr_zero_parallel(void *p, size_t n, int nt)
{
    const size_t PART_MIN = ONR_ZERO_PARALLEL_MIN / 2; /* a huge page */
    if (nt < 2 || n < ONR_ZERO_PARALLEL_MIN) {
        memset(p, 0, n);
        return;
    }
    if ((size_t)nt > n / PART_MIN) nt = (int)(n / PART_MIN);
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < nt; i++) {
        size_t a = n / (size_t)nt * (size_t)i, b = i + 1 == nt ? n : n / (size_t)nt * (size_t)(i + 1);
        memset((char *)p + a, 0, b - a);
    }
}

void onr_tensor_clear(onr_tensor *t)
{
    if (!t) return;
    if (t->kind) free_items(t);
    else if (t->owns) {
        free_strings(t);
        free(t->data);
    }
    free(t->name);
    memset(t, 0, sizeof *t);
}

onr_tensor *onr_tensor_clone(const onr_tensor *src)
{
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    onr_err err = {0};
    if (src->kind) {
        if (onr_value_copy(t, src, &err) || (src->name && !(t->name = onr_strdup(src->name)))) {
            onr_tensor_free(t);
            return NULL;
        }
        return t;
    }
    if (onr_tensor_set_shape(t, src->dtype, src->rank, src->dims, &err)) {
        free(t);
        return NULL;
    }
    if (!src->data && src->numel > 0) { /* released weight: the clone has the shape only */
        if (src->name && !(t->name = onr_strdup(src->name))) {
            free(t);
            return NULL;
        }
        return t;
    }
    if (onr_tensor_alloc(t, &err)) {
        onr_tensor_clear(t);
        free(t);
        return NULL;
    }
    if (src->dtype == ONR_STRING) {
        char **d = t->data, *const *s = src->data;
        for (int64_t i = 0; i < t->numel; i++) {
            free(d[i]);
            d[i] = onr_strdup(s[i] ? s[i] : "");
        }
    } else if (onr_tensor_nbytes(t)) {
        memcpy(t->data, src->data, onr_tensor_nbytes(t));
    }
    if (src->name) t->name = onr_strdup(src->name);
    return t;
}

void onr_pages_drop(const void *p, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (!p || ps <= 0 || n == 0) return;
    uintptr_t mask = (uintptr_t)ps - 1, a = (uintptr_t)p, b = a + n;
    if (b < a) return;
    a = (a + mask) & ~mask;
    b &= ~mask;
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

void onr_pages_populate(const void *p, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (!p || ps <= 0 || n == 0) return;
    uintptr_t mask = (uintptr_t)ps - 1, a = (uintptr_t)p & ~mask, b = (uintptr_t)p + n;
    if (b < a) return;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif
    if (madvise((void *)a, b - a, MADV_POPULATE_READ) == 0) return;
    volatile const unsigned char *q = (const unsigned char *)p;
    unsigned char sink = 0;
    for (uintptr_t o = 0; o < n; o += (uintptr_t)ps) sink ^= q[o];
    sink ^= q[n - 1];
    (void)sink;
}

#define ONR_COPY_CHUNK ((size_t)8 << 20)
#define ONR_COPY_OVERLAP ((size_t)64 << 10) /* more than a page: the one across a chunk's start */

void onr_copy_from_mapping(void *dst, const void *src, size_t n)
{
    const uint8_t *s = src;
    for (size_t o = 0; o < n; o += ONR_COPY_CHUNK) {
        size_t k = n - o < ONR_COPY_CHUNK ? n - o : ONR_COPY_CHUNK;
        size_t back = o < ONR_COPY_OVERLAP ? o : ONR_COPY_OVERLAP;
        memcpy((uint8_t *)dst + o, s + o, k);
        onr_pages_drop(s + o - back, k + back);
    }
}

static atomic_size_t g_lazy_copies;

size_t onr_lazy_copy_count(void) { return atomic_load_explicit(&g_lazy_copies, memory_order_relaxed); }

onr_status onr_tensor_materialize(onr_tensor *t, onr_err *err)
{
    if (!t || !t->lazy || t->kind || t->dtype == ONR_STRING) return ONR_OK;
    const void *src = t->lazy;
    onr_status st = onr_tensor_alloc(t, err); /* keeps an owned buffer big enough */
    if (st) return st;
    atomic_fetch_add_explicit(&g_lazy_copies, 1, memory_order_relaxed);
    onr_copy_from_mapping(t->data, src, onr_tensor_nbytes(t));
    t->lazy = NULL;
    return ONR_OK;
}

void onr_model_release_data(onr_model *m, onr_tensor *t)
{
    if (t && !t->data && t->lazy) { /* never copied: only the mapping's pages go */
        onr_pages_drop(t->lazy, onr_tensor_nbytes(t));
        t->lazy = NULL;
        return;
    }
    if (!t || !t->data) return;
    if (t->owns) {
        free_strings(t);
        free(t->data);
    } else if (m && t->dtype != ONR_STRING) {
        uintptr_t d = (uintptr_t)t->data;
        size_t n = onr_tensor_nbytes(t);
        for (int i = 0; i < m->n_maps; i++) {
            uintptr_t a = (uintptr_t)m->maps[i].addr;
            size_t len = m->maps[i].len;
            if (a && d >= a && d - a <= len && n <= len - (d - a)) {
                onr_pages_drop(t->data, n);
                break;
            }
        }
    }
    t->data = NULL;
    t->owns = 0;
    t->cap = 0;
}

/* ---- public tensor API -------------------------------------------------- */

/* A tensor of shape dims with its own buffer, zeroed when zero is set
 * (strings always start as empty strings). */
static onr_tensor *tensor_make(onr_dtype dt, int rank, const int64_t *dims, int zero)
{
    onr_err err = {0};
    if (dt <= ONR_UNDEFINED || dt >= ONR_DTYPE_COUNT || dt == ONR_COMPLEX64 ||
        dt == ONR_COMPLEX128 || (rank > 0 && !dims))
        return NULL;
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (onr_tensor_set_shape(t, dt, rank, dims, &err) || onr_tensor_alloc(t, &err)) {
        onr_tensor_clear(t);
        free(t);
        return NULL;
    }
    if (zero && dt != ONR_STRING) memset(t->data, 0, onr_tensor_nbytes(t));
    return t;
}

onr_tensor *onr_tensor_new(onr_dtype dt, int rank, const int64_t *dims)
{
    return tensor_make(dt, rank, dims, 1);
}

onr_tensor *onr_tensor_new_uninit(onr_dtype dt, int rank, const int64_t *dims)
{
    return tensor_make(dt, rank, dims, 0);
}

onr_tensor *onr_tensor_wrap(onr_dtype dt, int rank, const int64_t *dims, void *data)
{
    onr_err err = {0};
    if (dt <= ONR_UNDEFINED || dt >= ONR_DTYPE_COUNT || dt == ONR_STRING || (rank > 0 && !dims))
        return NULL;
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (onr_tensor_set_shape(t, dt, rank, dims, &err) || (t->numel > 0 && !data)) {
        free(t);
        return NULL;
    }
    /* an empty tensor may come without data; kernels still do pointer
     * arithmetic and memcpy of 0 bytes on it, undefined on NULL */
    static _Alignas(64) unsigned char no_data[64];
    t->data = data ? data : no_data;
    return t;
}

void onr_tensor_free(onr_tensor *t)
{
    if (!t) return;
    onr_tensor_clear(t);
    free(t);
}

onr_dtype onr_tensor_dtype(const onr_tensor *t) { return t ? t->dtype : ONR_UNDEFINED; }
int onr_tensor_rank(const onr_tensor *t) { return t ? t->rank : -1; }
const int64_t *onr_tensor_dims(const onr_tensor *t) { return t ? t->dims : NULL; }
int64_t onr_tensor_numel(const onr_tensor *t) { return t ? t->numel : 0; }
void *onr_tensor_data(const onr_tensor *t) { return t ? t->data : NULL; }
const char *onr_tensor_name(const onr_tensor *t) { return t && t->name ? t->name : ""; }

/* ---- half precision ----------------------------------------------------- */

float onr_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t onr_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                                   /* subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;          /* < 2^-25 rounds to 0 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* value / 2^-24 = m * 2^(e - 126) */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t lsb = (r >> 13) & 1;
    r += 0xfff + lsb; /* round to nearest even */
    return (uint16_t)(sign | (r >> 13));
}

float onr_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t onr_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- strings and formatting -------------------------------------------- */

char *onr_strdup(const char *s)
{
    return onr_strndup(s ? s : "", s ? strlen(s) : 0);
}

int onr_str_assign(char **slot, const char *s)
{
    char *d = onr_strdup(s);
    if (!d) return -1;
    free(*slot);
    *slot = d;
    return 0;
}

char *onr_strndup(const char *s, size_t n)
{
    if (onr_budget_run_take((uint64_t)n + 1, NULL)) return NULL; /* a kernel's string */
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

const char *onr_fmt_dims(char *buf, size_t len, const int64_t *dims, int rank)
{
    size_t o = 0;
    if (len == 0) return buf;
    buf[0] = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < rank && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

/* ---- attributes --------------------------------------------------------- */

const onr_attr *onr_node_attr(const onr_node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

/* The first attribute a getter found with the wrong type since
 * onr_attr_check_begin, per thread (create runs wherever a plan is built). */
static _Thread_local onr_attr_check_state attr_bad;

static const char *attr_type_name(onr_attr_type t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT",  "INT",     "STRING",        "TENSOR",         "GRAPH",
        "FLOATS",    "INTS",   "STRINGS", "TENSORS",       "GRAPHS",         "SPARSE_TENSOR",
        "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "an unknown type";
}

const onr_attr *onr_attr_get(const onr_node *n, const char *name, onr_attr_type want)
{
    const onr_attr *a = onr_node_attr(n, name);
    if (!a || a->type == want) return a;
    if (!attr_bad.node) {
        attr_bad.node = n;
        attr_bad.attr = a;
        attr_bad.want = want;
    }
    return NULL;
}

onr_attr_check_state onr_attr_check_begin(void)
{
    onr_attr_check_state outer = attr_bad;
    memset(&attr_bad, 0, sizeof attr_bad);
    return outer;
}

onr_status onr_attr_check_end(onr_err *err, onr_attr_check_state outer)
{
    const onr_node *n = attr_bad.node;
    const onr_attr *a = attr_bad.attr;
    onr_attr_type want = attr_bad.want;
    attr_bad = outer;
    if (!n) return ONR_OK;
    (void)n; /* the caller's prefix names the node */
    return onr_seterr(err, ONR_E_MODEL, "attribute '%s' must be of type %s, but the model gives %s",
                      a->name, attr_type_name(want), attr_type_name(a->type));
}

int64_t onr_attr_int(const onr_node *n, const char *name, int64_t def)
{
    const onr_attr *a = onr_attr_get(n, name, ONR_ATTR_INT);
    return a ? a->i : def;
}

float onr_attr_float(const onr_node *n, const char *name, float def)
{
    const onr_attr *a = onr_attr_get(n, name, ONR_ATTR_FLOAT);
    return a ? a->f : def;
}

const char *onr_attr_string(const onr_node *n, const char *name, const char *def)
{
    const onr_attr *a = onr_attr_get(n, name, ONR_ATTR_STRING);
    return a ? a->s : def;
}

const int64_t *onr_attr_ints(const onr_node *n, const char *name, size_t *count)
{
    const onr_attr *a = onr_attr_get(n, name, ONR_ATTR_INTS);
    *count = a ? a->n : 0;
    return a ? a->ints : NULL;
}

const float *onr_attr_floats(const onr_node *n, const char *name, size_t *count)
{
    const onr_attr *a = onr_attr_get(n, name, ONR_ATTR_FLOATS);
    *count = a ? a->n : 0;
    return a ? a->floats : NULL;
}

/* ---- graphs -------------------------------------------------------------- */

static void attr_clear(onr_attr *a)
{
    free(a->name);
    free(a->s);
    onr_tensor_free(a->t);
    onr_graph_free(a->g);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (size_t i = 0; i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    if (a->tensors)
        for (size_t i = 0; i < a->n; i++) onr_tensor_free(a->tensors[i]);
    free(a->tensors);
    if (a->graphs)
        for (size_t i = 0; i < a->n; i++) onr_graph_free(a->graphs[i]);
    free(a->graphs);
}

void onr_graph_free(onr_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) {
        onr_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < ONR_MAX_RANK; d++) free(v->dim_names[d]);
        onr_tensor_free(v->konst);
    }
    free(g->values);
    for (int i = 0; i < g->n_nodes; i++) {
        onr_node *n = &g->nodes[i];
        free(n->name);
        free(n->op_type);
        free(n->domain);
        free(n->inputs);
        free(n->outputs);
        for (int a = 0; a < n->n_attr; a++) attr_clear(&n->attrs[a]);
        free(n->attrs);
    }
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    free(g);
}

int onr_graph_find_value(const onr_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int onr_graph_add_value(onr_graph *g, const char *name)
{
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        onr_value *nv = realloc(g->values, (size_t)cap * sizeof *nv);
        if (!nv) return -1;
        g->values = nv;
        g->cap_values = cap;
    }
    onr_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = onr_strdup(name);
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    return g->n_values++;
}

int64_t onr_model_opset(const onr_model *m, const char *domain)
{
    int is_onnx = !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
    for (int i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        int d_onnx = !d || !*d || strcmp(d, "ai.onnx") == 0;
        if (is_onnx ? d_onnx : (d && strcmp(d, domain) == 0)) return m->opsets[i].version;
    }
    return 0;
}
