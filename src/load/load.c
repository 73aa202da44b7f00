/*
 * load.c - .onnx bytes -> IR.
 *
 * The file is memory-mapped. Before protobuf-c unpacks it, the large
 * raw_data payloads of the main graph's initializers are cut out of a small
 * stripped copy of the bytes (strip_model), so protobuf-c never copies the
 * weights; each such initializer is then read in place from the mapping when
 * aligned; misaligned, a big one (64 KiB or more) stays lazy in the mapping
 * (ir.h: the planner copies it when something reads it, and most are packed
 * and dropped right after), a small one is copied now with the mapping's
 * pages dropped right after. The mapping is kept by the model while a
 * tensor points into it. External-data weights are read in place from
 * their own mapped files, or the same way when misaligned.
 * Everything a hostile file controls is checked here: nesting depth before
 * unpacking, every dim and byte count of every tensor, every name a node
 * refers to, and every external-data path (which must stay inside the
 * model's directory).
 */
#include "load/load.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"

/* IR versions whose layout onnx-run reads (3 = opset imports, 13 = ONNX
 * 1.20). What 9 to 13 add: the float8 types (9), uint4/int4, function
 * overloads and metadata_props (10), float4e2m1 and the multi-device
 * configurations (11), float8e8m0 (12), uint2/int2 (13). The types are read
 * (packed ones unpacked); the multi-device configurations are sharding and
 * pipeline annotations that leave a model's meaning unchanged, so one
 * device runs the model without them (protobuf-c skips the fields). */
#define ONR_IR_MIN 3
#define ONR_IR_MAX 13

typedef struct loader {
    onr_model *model;
    const char *base_dir; /* for external data; NULL refuses it */
    onr_err *err;
    const Onnx__ModelProto *mp; /* for its model-local functions */
    int no_takeover;            /* tensors may be shared: copy raw_data, never take it */
    int n_calls;                /* function calls inlined so far (unique value prefixes) */
    void **allocs;              /* what the inlined node copies own, freed after loading */
    int *fn_slots;              /* model-local functions by (domain, name): index + 1 */
    size_t fn_cap;
    onr_names *fn_formals;      /* per function: its formal parameters' names */
    size_t n_allocs, cap_allocs;
    /* the serialized model, for initializers whose raw_data was stripped */
    const uint8_t *src;
    size_t src_len;
    int src_is_map;             /* src is our own mapping: point into it, drop its pages */
    struct strip_rec *recs;     /* stripped raw_data payloads, by marker index */
    size_t n_recs;
    size_t main_refs;           /* tensors left pointing into the mapping src */
} loader;

/* ---- nesting depth check --------------------------------------------------
 * protobuf-c unpacks nested messages recursively without a depth limit, so a
 * small hostile file (graph attribute -> node -> attribute -> graph ...) could
 * exhaust the stack. Walk the wire format first with the generated
 * descriptors and refuse anything nested deeper than ONR_MAX_PROTO_DEPTH.
 * Malformed wire data is left for protobuf-c to reject. */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

/* Repeated fields counted on the wire, before protobuf-c unpacks them, so a
 * file that declares more than a limit of ir.h is refused at once. */
#define ONR_MAX_ATTRS 4096 /* attributes of a node, or of a function */
static const struct wire_limit {
    const ProtobufCMessageDescriptor *d;
    unsigned tag;
    int max;
    const char *what;
} wire_limits[] = {
    {&onnx__graph_proto__descriptor, 11, ONR_MAX_GRAPH_IO, "a graph declares more than %d graph inputs"},
    {&onnx__graph_proto__descriptor, 12, ONR_MAX_GRAPH_IO, "a graph declares more than %d graph outputs"},
    {&onnx__node_proto__descriptor, 1, ONR_MAX_NODE_IO, "a node has more than %d inputs"},
    {&onnx__node_proto__descriptor, 2, ONR_MAX_NODE_IO, "a node has more than %d outputs"},
    {&onnx__node_proto__descriptor, 5, ONR_MAX_ATTRS, "a node has more than %d attributes"},
    {&onnx__function_proto__descriptor, 4, ONR_MAX_NODE_IO, "a function declares more than %d inputs"},
    {&onnx__function_proto__descriptor, 5, ONR_MAX_NODE_IO, "a function declares more than %d outputs"},
    {&onnx__function_proto__descriptor, 6, ONR_MAX_ATTRS, "a function declares more than %d attributes"},
    {&onnx__function_proto__descriptor, 11, ONR_MAX_ATTRS, "a function declares more than %d attribute defaults"},
    {&onnx__function_proto__descriptor, 9, ONR_MAX_OPSET_IMPORTS, "a function has more than %d opset imports"},
    {&onnx__model_proto__descriptor, 8, ONR_MAX_OPSET_IMPORTS, "the model has more than %d opset imports"},
};
#define N_WIRE_LIMITS (sizeof wire_limits / sizeof wire_limits[0])

/* Returns 0 when fine (or malformed: protobuf-c reports that), -1 when too
 * deep, -2 - k when the count wire_limits[k] is exceeded. */
static int check_depth(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d,
                       int depth)
{
    if (depth > ONR_MAX_PROTO_DEPTH) return -1;
    const uint8_t *end = p + len;
    int counts[N_WIRE_LIMITS] = {0};
    while (p < end) {
        uint64_t key, n;
        if (!read_varint(&p, end, &key)) return 0;
        unsigned wire = (unsigned)(key & 7);
        uint64_t tag = key >> 3;
        switch (wire) {
        case 0:
            if (!read_varint(&p, end, &n)) return 0;
            break;
        case 1:
            if (end - p < 8) return 0;
            p += 8;
            break;
        case 5:
            if (end - p < 4) return 0;
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p)) return 0;
            for (size_t k = 0; k < N_WIRE_LIMITS; k++)
                if (wire_limits[k].d == d && wire_limits[k].tag == tag &&
                    ++counts[k] > wire_limits[k].max)
                    return -2 - (int)k;
            const ProtobufCFieldDescriptor *f =
                tag <= INT_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)tag) : NULL;
            int r;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                (r = check_depth(p, (size_t)n, f->descriptor, depth + 1)) < 0)
                return r;
            p += n;
            break;
        }
        default: return 0; /* groups and junk: protobuf-c decides */
        }
    }
    return 0;
}

/* ---- stripping the weights out before unpacking ----------------------------
 * protobuf-c copies every bytes field it unpacks, so unpacking the mapped
 * file would hold each weight twice (the touched file pages and the heap
 * copy). Instead the wire data is walked first along ModelProto.graph (7) ->
 * GraphProto.initializer (5) -> TensorProto.raw_data (9), and a stripped
 * copy of the model is built in which every such raw_data payload larger than
 * ONR_STRIP_MIN bytes is left out (each enclosing length prefix re-encoded).
 * In its place the tensor gets an unknown field ONR_STRIP_TAG (fixed64) with
 * the index of a strip_rec holding the payload's offset and length in the
 * original bytes, which protobuf-c keeps among the tensor's unknown fields:
 * the loader finds the payload by that marker, not by counting (repeated
 * graph fields are merged by protobuf-c, a tensor may repeat raw_data, ...).
 * Markers already present in the input's initializers are dropped.
 *
 * The stripped copy unpacks to exactly what the original would, less the cut
 * payloads: only well-framed fields are cut or re-framed and everything else
 * is copied verbatim. When the walk meets anything protobuf-c might refuse or
 * read differently (a truncated or lying length, a long key, a group...) no
 * copy is made and protobuf-c unpacks the original bytes as before, so
 * malformed files fail with the same messages. Limits follow protobuf-c 1.4:
 * keys of at most 5 bytes, length prefixes of at most 5 bytes and INT_MAX. */

#define ONR_STRIP_MIN 64
#define ONR_STRIP_TAG 536870000u /* field number of the marker (< 2^29) */

typedef struct strip_rec {
    size_t off, len; /* payload in the original bytes */
    int used;
} strip_rec;

typedef struct wfield {
    const uint8_t *start, *keyend, *val, *end; /* key, after key, value (wire 2: payload), next */
    uint32_t tag;
    unsigned wire;
    size_t plen; /* wire 2: payload length */
} wfield;

/* Parse one field at p; 0 when malformed or anything unusual. */
static int next_field(const uint8_t *p, const uint8_t *end, wfield *f)
{
    uint64_t key, n;
    f->start = p;
    if (!read_varint(&p, end, &key) || p - f->start > 5 || key >> 32 || (key >> 3) == 0)
        return 0;
    f->keyend = p;
    f->tag = (uint32_t)(key >> 3);
    f->wire = (unsigned)(key & 7);
    f->plen = 0;
    switch (f->wire) {
    case 0:
        if (!read_varint(&p, end, &n)) return 0;
        break;
    case 1:
        if (end - p < 8) return 0;
        p += 8;
        break;
    case 5:
        if (end - p < 4) return 0;
        p += 4;
        break;
    case 2: {
        const uint8_t *q = p;
        if (!read_varint(&p, end, &n) || p - q > 5 || n > INT_MAX || n > (uint64_t)(end - p))
            return 0;
        f->plen = (size_t)n;
        break;
    }
    default: return 0;
    }
    f->val = p;
    f->end = p + f->plen;
    return 1;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) n++;
    return n;
}

static size_t put_varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) o[n++] = (uint8_t)(v | 0x80);
    o[n++] = (uint8_t)v;
    return n;
}

#define ONR_STRIP_KEY (((uint64_t)ONR_STRIP_TAG << 3) | 1)

typedef struct stripper {
    const uint8_t *buf; /* the original bytes */
    uint8_t *out;       /* the stripped copy (write pass) */
    size_t o;
    strip_rec *recs;
    size_t n_recs, cap_recs;
    size_t n_strip; /* payloads cut (counted while sizing) */
    int fail;
} stripper;

enum { LV_MODEL, LV_GRAPH, LV_TENSOR };

/* Size of the stripped form of the message [p, p+len) at `level`, written
 * to S->out when `write`; SIZE_MAX when the walk gives up. */
static size_t strip_msg(stripper *S, const uint8_t *p, size_t len, int level, int write)
{
    const uint8_t *end = p + len;
    wfield f;
    const uint8_t *raw = NULL; /* tensor: the payload to cut (the last raw_data counts) */
    size_t raw_len = 0;
    if (level == LV_TENSOR) {
        for (const uint8_t *q = p; q < end; q = f.end) {
            if (!next_field(q, end, &f)) return SIZE_MAX;
            if (f.tag == 9 && f.wire == 2) {
                raw = f.val;
                raw_len = f.plen;
            }
        }
        if (raw_len <= ONR_STRIP_MIN) raw = NULL;
    }
    size_t total = 0;
    for (; p < end; p = f.end) {
        if (!next_field(p, end, &f)) return SIZE_MAX;
        if (level == LV_TENSOR && (f.tag == ONR_STRIP_TAG || (raw && f.tag == 9 && f.wire == 2)))
            continue; /* left out */
        int child = level == LV_MODEL && f.tag == 7 && f.wire == 2   ? LV_GRAPH
                    : level == LV_GRAPH && f.tag == 5 && f.wire == 2 ? LV_TENSOR
                                                                     : -1;
        if (child < 0) {
            size_t n = (size_t)(f.end - f.start);
            if (write) memcpy(S->out + S->o, f.start, n);
            if (write) S->o += n;
            total += n;
            continue;
        }
        size_t n = strip_msg(S, f.val, f.plen, child, 0);
        if (n == SIZE_MAX) return SIZE_MAX;
        size_t klen = (size_t)(f.keyend - f.start);
        if (write) {
            memcpy(S->out + S->o, f.start, klen);
            S->o += klen;
            S->o += put_varint(S->out + S->o, n);
            if (strip_msg(S, f.val, f.plen, child, 1) != n) S->fail = 1;
        }
        total += klen + varint_len(n) + n;
    }
    if (raw) {
        if (write) {
            if (S->n_recs >= S->cap_recs) {
                S->fail = 1;
                return SIZE_MAX;
            }
            uint64_t k = S->n_recs;
            S->recs[S->n_recs++] = (strip_rec){(size_t)(raw - S->buf), raw_len, 0};
            S->o += put_varint(S->out + S->o, ONR_STRIP_KEY);
            for (int i = 0; i < 8; i++) S->out[S->o++] = (uint8_t)(k >> (8 * i));
        } else {
            S->n_strip++;
        }
        total += varint_len(ONR_STRIP_KEY) + 8;
    }
    return total;
}

/* The stripped copy of a serialized ModelProto in *out (NULL when nothing is
 * cut or the walk gave up: unpack buf itself) and its records in L. */
static int strip_model(loader *L, const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    stripper S = {.buf = buf};
    size_t n = strip_msg(&S, buf, len, LV_MODEL, 0);
    if (n == SIZE_MAX || !S.n_strip) return ONR_OK;
    S.cap_recs = S.n_strip;
    S.out = malloc(n ? n : 1);
    S.recs = calloc(S.cap_recs, sizeof *S.recs);
    if (!S.out || !S.recs) {
        free(S.out);
        free(S.recs);
        return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    }
    if (strip_msg(&S, buf, len, LV_MODEL, 1) != n || S.fail || S.o != n ||
        S.n_recs != S.cap_recs) { /* cannot happen: fall back to the original bytes */
        free(S.out);
        free(S.recs);
        return ONR_OK;
    }
    *out = S.out;
    *out_len = n;
    L->recs = S.recs;
    L->n_recs = S.n_recs;
    return ONR_OK;
}

/* The stripped payload of a main-graph initializer, NULL when it has none. */
static strip_rec *stripped_raw(loader *L, const Onnx__TensorProto *tp)
{
    if (!L->recs) return NULL;
    for (unsigned i = 0; i < tp->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &tp->base.unknown_fields[i];
        if (u->tag != ONR_STRIP_TAG || u->wire_type != PROTOBUF_C_WIRE_TYPE_64BIT || u->len != 8)
            continue;
        uint64_t k = 0;
        for (int b = 0; b < 8; b++) k |= (uint64_t)u->data[b] << (8 * b);
        if (k < L->n_recs && !L->recs[k].used) return &L->recs[k];
    }
    return NULL;
}

/* ---- name -> value index hash ------------------------------------------- */

typedef struct vmap {
    int *slots; /* value index + 1, 0 = empty */
    size_t cap;
    size_t used;
    onr_graph *g;
    const struct vmap *outer; /* the enclosing graph's map (NULL for the main graph) */
} vmap;

/* onr_hash_str is keyed at process start: names cannot be chosen to collide */
#define hash_str onr_hash_str

static int vmap_find(const vmap *m, const char *name)
{
    if (!m->cap) return -1;
    for (size_t i = hash_str(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int s = m->slots[i];
        if (!s) return -1;
        if (strcmp(m->g->values[s - 1].name, name) == 0) return s - 1;
    }
}

static int vmap_put(vmap *m, int idx)
{
    if ((m->used + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 256;
        int *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            int s = m->slots[i];
            if (!s) continue;
            size_t j = hash_str(m->g->values[s - 1].name) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = s;
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t j = hash_str(m->g->values[idx].name) & (m->cap - 1);
    while (m->slots[j]) j = (j + 1) & (m->cap - 1);
    m->slots[j] = idx + 1;
    m->used++;
    return 0;
}

/* ---- tensors ------------------------------------------------------------ */

static const char *tname(const Onnx__TensorProto *tp)
{
    return tp->name ? tp->name : "";
}

/* Copy n bytes of a weight out of one of our own read-only mappings
 * [map, map+maplen) and give the file pages back: in chunks as it goes
 * (onr_copy_from_mapping), then with ONR_DROP_SLACK around it,
 * because the kernel maps page-cache folios of up to a PMD (2 MiB) on one
 * fault and so leaves pages of the neighbours mapped too. Dropping is always
 * safe here: nothing else is read from the mapping while loading but the
 * weights themselves, and a dropped page reads back from the file. */
#define ONR_DROP_SLACK ((size_t)2 << 20)

static void copy_from_map(void *dst, const uint8_t *src, size_t n, const uint8_t *map,
                          size_t maplen)
{
    onr_copy_from_mapping(dst, src, n);
    size_t lo = (size_t)(src - map), hi = lo + n;
    lo = lo > ONR_DROP_SLACK ? lo - ONR_DROP_SLACK : 0;
    hi = maplen - hi > ONR_DROP_SLACK ? hi + ONR_DROP_SLACK : maplen;
    onr_pages_drop(map + lo, hi - lo);
}

/* A misaligned weight this big stays in the mapping, lazy (ir.h), rather
 * than being copied at load: most are packed into an operator's own layout
 * at create and then dropped, so copying them all first only doubled the
 * memory load touches. Smaller ones, and the 4- and 2-bit types (unpacked
 * at load), are copied now. */
#define ONR_LAZY_MIN_BYTES ((size_t)64 << 10)

static int lazy_ok(const onr_tensor *t, size_t need, int is_packed)
{
    return need >= ONR_LAZY_MIN_BYTES && !is_packed && !t->kind && t->dtype != ONR_STRING;
}

/* Map a whole external-data file once per model; returns its mapping. loc is
 * resolved beneath the model's directory (fileopen.c). */
static int map_external(loader *L, const char *loc, const uint8_t **addr, size_t *len)
{
    onr_model *m = L->model;
    const char *path = loc;
    struct stat st;
    int fd = onr_open_beneath(L->base_dir, loc, &st, L->err);
    if (fd < 0) return L->err->code;
    /* one mapping per file: look for it by device/inode in the maps we hold */
    for (int i = 0; i < m->n_maps; i++) {
        if (m->maps[i].dev == (uint64_t)st.st_dev && m->maps[i].ino == (uint64_t)st.st_ino) {
            close(fd);
            *addr = m->maps[i].addr;
            *len = m->maps[i].len;
            return ONR_OK;
        }
    }
    void *p = NULL;
    if (st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return onr_seterr(L->err, ONR_E_IO, "external data file '%s' cannot be mapped: %s",
                              path, strerror(errno));
        }
    }
    close(fd);
    struct onr_map *nm = realloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *nm);
    if (!nm) {
        if (p) munmap(p, (size_t)st.st_size);
        return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    }
    m->maps = nm;
    m->maps[m->n_maps++] = (struct onr_map){p, (size_t)st.st_size, (uint64_t)st.st_dev,
                                            (uint64_t)st.st_ino};
    *addr = p;
    *len = (size_t)st.st_size;
    return ONR_OK;
}

/* A location is accepted only as a relative path with no ".." component. */
static int location_is_safe(const char *loc)
{
    if (!*loc || loc[0] == '/') return 0;
    const char *p = loc;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return 1;
}

static int load_external(loader *L, const Onnx__TensorProto *tp, onr_tensor *t, size_t need)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        if (!kv->key || !kv->value) continue;
        char *end = NULL;
        if (strcmp(kv->key, "location") == 0) {
            loc = kv->value;
        } else if (strcmp(kv->key, "offset") == 0 || strcmp(kv->key, "length") == 0) {
            errno = 0;
            long long v = strtoll(kv->value, &end, 10);
            if (errno || !end || end == kv->value || *end || v < 0)
                return onr_seterr(L->err, ONR_E_MODEL,
                                  "tensor '%s': external data %s '%s' is not a valid number",
                                  tname(tp), kv->key, kv->value);
            if (kv->key[0] == 'o') offset = v;
            else length = v;
        }
    }
    if (!loc)
        return onr_seterr(L->err, ONR_E_MODEL, "tensor '%s': external data has no location",
                          tname(tp));
    if (!location_is_safe(loc))
        return onr_seterr(L->err, ONR_E_MODEL,
                          "tensor '%s': external data location '%s' escapes the model's "
                          "directory (absolute paths and '..' are refused)",
                          tname(tp), loc);
    if (!L->base_dir)
        return onr_seterr(L->err, ONR_E_MODEL,
                          "tensor '%s': external data '%s' needs a base directory (open the "
                          "model from a path or set one in the options)",
                          tname(tp), loc);
    if (strlen(loc) >= PATH_MAX)
        return onr_seterr(L->err, ONR_E_MODEL, "tensor '%s': external data path too long",
                          tname(tp));
    const uint8_t *base = NULL;
    size_t flen = 0;
    int st = map_external(L, loc, &base, &flen);
    if (st) {
        onr_err_prefix(L->err, "tensor '%s': ", tname(tp));
        return st;
    }
    if (length >= 0 && (uint64_t)length != need)
        return onr_seterr(L->err, ONR_E_MODEL,
                          "tensor '%s': external data length %lld does not match its shape "
                          "(%zu bytes)",
                          tname(tp), (long long)length, need);
    if ((uint64_t)offset > flen || need > flen - (size_t)offset)
        return onr_seterr(L->err, ONR_E_MODEL,
                          "tensor '%s': external data [%lld, +%zu) lies beyond the end of '%s' "
                          "(%zu bytes)",
                          tname(tp), (long long)offset, need, loc, flen);
    if (!base) /* an empty file maps nothing: only an empty tensor gets here */
        return onr_tensor_alloc(t, L->err);
    const uint8_t *src = base + offset;
    size_t esz = onr_dtype_size(t->dtype);
    if (esz && ((uintptr_t)src % esz) == 0) {
        t->data = (void *)src; /* read in place from the mapping */
        t->owns = 0;
        return ONR_OK;
    }
    if (lazy_ok(t, need, 0)) { /* (a packed 4-/2-bit one is copied before unpacking) */
        t->lazy = src; /* the model keeps the mapping */
        return ONR_OK;
    }
    if ((st = onr_tensor_alloc(t, L->err))) return st;
    if (need) copy_from_map(t->data, src, need, base, flen);
    return ONR_OK;
}

/* Copy a typed repeated field into t, converting element width. */
#define COPY_TYPED(T, src)                                                   \
    do {                                                                     \
        T *d = t->data;                                                      \
        for (int64_t i = 0; i < t->numel; i++) d[i] = (T)(src)[i];           \
    } while (0)

static int load_typed(loader *L, Onnx__TensorProto *tp, onr_tensor *t)
{
    size_t have;
    switch (t->dtype) {
    case ONR_FLOAT: have = tp->n_float_data; break;
    case ONR_DOUBLE: have = tp->n_double_data; break;
    case ONR_INT64: have = tp->n_int64_data; break;
    case ONR_UINT32:
    case ONR_UINT64: have = tp->n_uint64_data; break;
    case ONR_STRING: have = tp->n_string_data; break;
    default: have = tp->n_int32_data; break;
    }
    if (have != (size_t)t->numel)
        return onr_seterr(L->err, ONR_E_MODEL,
                          "tensor '%s': %zu values stored but its shape needs %lld", tname(tp),
                          have, (long long)t->numel);
    int st = onr_tensor_alloc(t, L->err);
    if (st) return st;
    switch (t->dtype) {
    case ONR_FLOAT: COPY_TYPED(float, tp->float_data); break;
    case ONR_DOUBLE: COPY_TYPED(double, tp->double_data); break;
    case ONR_INT64: COPY_TYPED(int64_t, tp->int64_data); break;
    case ONR_UINT32: COPY_TYPED(uint32_t, tp->uint64_data); break;
    case ONR_UINT64: COPY_TYPED(uint64_t, tp->uint64_data); break;
    case ONR_INT32: COPY_TYPED(int32_t, tp->int32_data); break;
    case ONR_INT16: COPY_TYPED(int16_t, tp->int32_data); break;
    case ONR_INT8: COPY_TYPED(int8_t, tp->int32_data); break;
    case ONR_UINT16:
    case ONR_FLOAT16:
    case ONR_BFLOAT16: COPY_TYPED(uint16_t, tp->int32_data); break;
    case ONR_UINT8:
    case ONR_FLOAT8E4M3FN:
    case ONR_FLOAT8E4M3FNUZ:
    case ONR_FLOAT8E5M2:
    case ONR_FLOAT8E5M2FNUZ:
    case ONR_FLOAT8E8M0: COPY_TYPED(uint8_t, tp->int32_data); break; /* one bit pattern each */
    case ONR_BOOL: {
        uint8_t *d = t->data;
        for (int64_t i = 0; i < t->numel; i++) d[i] = tp->int32_data[i] != 0;
        break;
    }
    case ONR_STRING: {
        char **d = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            free(d[i]);
            d[i] = onr_strndup((const char *)tp->string_data[i].data, tp->string_data[i].len);
            if (!d[i]) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        }
        break;
    }
    default: break;
    }
    return ONR_OK;
}

/* t holds the packed bytes of a 4- or 2-bit tensor as uint8: give it its
 * real type and shape, one byte per element in a buffer of its own. */
static int unpack_lowp(loader *L, onr_tensor *t, onr_dtype dt, int rank, const int64_t *dims)
{
    onr_tensor packed = *t;
    int st;
    t->data = NULL;
    t->cap = 0;
    t->owns = 0;
    if ((st = onr_tensor_set_shape(t, dt, rank, dims, L->err)) ||
        (st = onr_tensor_alloc(t, L->err))) {
        if (packed.owns) free(packed.data);
        return st;
    }
    onr_lowp_unpack(dt, packed.data, t->numel, t->data);
    if (packed.owns) free(packed.data);
    /* data read in place from the mapping stays mapped; its pages are the
     * model's, released with it */
    return ONR_OK;
}

/* TensorProto -> new onr_tensor. May take over tp->raw_data's buffer. rec:
 * its raw_data was stripped (see strip_model) and lies at L->src + rec->off. */
static int load_tensor(loader *L, Onnx__TensorProto *tp, strip_rec *rec, onr_tensor **out)
{
    *out = NULL;
    int dt = tp->has_data_type ? tp->data_type : 0;
    if (dt <= 0 || dt >= ONR_DTYPE_COUNT || dt == ONR_COMPLEX64 || dt == ONR_COMPLEX128)
        return onr_seterr(L->err, dt <= 0 || dt >= ONR_DTYPE_COUNT ? ONR_E_MODEL : ONR_E_UNSUPPORTED,
                          "tensor '%s': element type %d is %s", tname(tp), dt,
                          dt <= 0 || dt >= ONR_DTYPE_COUNT ? "invalid" : "not supported");
    if (tp->n_dims > ONR_MAX_RANK)
        return onr_seterr(L->err, ONR_E_UNSUPPORTED, "tensor '%s': rank %zu exceeds %d",
                          tname(tp), tp->n_dims, ONR_MAX_RANK);
    if (tp->segment)
        return onr_seterr(L->err, ONR_E_UNSUPPORTED, "tensor '%s': segmented tensors are not supported",
                          tname(tp));
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    int st = onr_tensor_set_shape(t, (onr_dtype)dt, (int)tp->n_dims, tp->dims, L->err);
    if (st) {
        free(t);
        onr_err_prefix(L->err, "tensor '%s': ", tname(tp));
        return st;
    }
    if (!(t->name = onr_strdup(tname(tp)))) {
        free(t);
        return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    }
    /* 4- and 2-bit types are stored packed (raw_data, external data, and
     * int32_data with one packed byte per value): read those bytes as a
     * uint8 vector, then unpack to one byte per element */
    int64_t real_dims[ONR_MAX_RANK];
    int real_rank = t->rank;
    int64_t packed = 0;
    int is_packed = onr_dtype_is_lowp(t->dtype) && onr_dtype_bits(t->dtype) < 8;
    if (is_packed) { /* an empty one too: it gets its type and dims back below */
        memcpy(real_dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
        packed = (int64_t)onr_lowp_packed_bytes(t->dtype, t->numel);
        if ((st = onr_tensor_set_shape(t, ONR_UINT8, 1, &packed, L->err))) {
            onr_tensor_free(t);
            return st;
        }
    }
    size_t need = onr_tensor_nbytes(t);
    int external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (external) {
        if (t->dtype == ONR_STRING)
            st = onr_seterr(L->err, ONR_E_UNSUPPORTED, "tensor '%s': external string data",
                            tname(tp));
        else
            st = load_external(L, tp, t, need);
    } else if (rec && t->dtype != ONR_STRING) {
        const uint8_t *src = L->src + rec->off;
        size_t esz = onr_dtype_size(t->dtype), align = esz < 4 ? 4 : esz;
        rec->used = 1;
        if (rec->len != need) {
            st = onr_seterr(L->err, ONR_E_MODEL,
                            "tensor '%s': raw_data holds %zu bytes but shape %s of %s needs %zu",
                            tname(tp), rec->len,
                            onr_fmt_dims((char[256]){0}, 256, t->dims, t->rank),
                            onr_dtype_name(t->dtype), need);
        } else if (L->src_is_map && ((uintptr_t)src % align) == 0) {
            /* read in place from the model's (read-only) mapping. Aligned to the
             * element size, and to 4 at least, is all typed C access needs (the
             * kernels use unaligned vector loads, and external data has always
             * been read in place on the same terms); the old 16 came from
             * protobuf-c's malloc'd buffers and would copy 3 of 4 float weights
             * of an exported file for nothing. */
            t->data = (void *)src;
            t->owns = 0;
            L->main_refs++;
        } else if (L->src_is_map && lazy_ok(t, need, is_packed)) {
            t->lazy = src; /* copied when the planner needs it, if ever */
            t->owns = 0;
            L->main_refs++;
        } else if ((st = onr_tensor_alloc(t, L->err)) == ONR_OK) {
            if (L->src_is_map) copy_from_map(t->data, src, need, L->src, L->src_len);
            else memcpy(t->data, src, need); /* the caller's buffer: not ours to drop */
        }
    } else if (tp->has_raw_data && t->dtype != ONR_STRING) {
        if (tp->raw_data.len != need) {
            st = onr_seterr(L->err, ONR_E_MODEL,
                            "tensor '%s': raw_data holds %zu bytes but shape %s of %s needs %zu",
                            tname(tp), tp->raw_data.len,
                            onr_fmt_dims((char[256]){0}, 256, t->dims, t->rank),
                            onr_dtype_name(t->dtype), need);
        } else if (need && !L->no_takeover && ((uintptr_t)tp->raw_data.data % 16) == 0) {
            /* take over protobuf-c's buffer instead of copying it */
            t->data = tp->raw_data.data;
            t->cap = need;
            t->owns = 1;
            tp->raw_data.data = NULL;
            tp->raw_data.len = 0;
        } else if ((st = onr_tensor_alloc(t, L->err)) == ONR_OK && need) {
            memcpy(t->data, tp->raw_data.data, need);
        }
    } else {
        st = load_typed(L, tp, t);
    }
    if (st) {
        onr_tensor_free(t);
        return st;
    }
    if (!t->data && !t->lazy && t->dtype != ONR_STRING && (st = onr_tensor_alloc(t, L->err))) {
        onr_tensor_free(t);
        return st;
    }
    if (is_packed && ((st = onr_tensor_materialize(t, L->err)) ||
                      (st = unpack_lowp(L, t, (onr_dtype)dt, real_rank, real_dims)))) {
        onr_tensor_free(t);
        return st;
    }
    *out = t;
    return ONR_OK;
}

/* ---- attributes --------------------------------------------------------- */

static int load_graph(loader *L, Onnx__GraphProto *gp, onr_graph *parent, const vmap *outer,
                      int depth, onr_graph **out);

/* Attributes written before IR v2 have no type: infer it from the field set. */
static int attr_type(const Onnx__AttributeProto *ap)
{
    if (ap->has_type && ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
        return ap->type;
    if (ap->has_f) return ONR_ATTR_FLOAT;
    if (ap->has_i) return ONR_ATTR_INT;
    if (ap->has_s) return ONR_ATTR_STRING;
    if (ap->t) return ONR_ATTR_TENSOR;
    if (ap->g) return ONR_ATTR_GRAPH;
    if (ap->n_floats) return ONR_ATTR_FLOATS;
    if (ap->n_ints) return ONR_ATTR_INTS;
    if (ap->n_strings) return ONR_ATTR_STRINGS;
    if (ap->n_tensors) return ONR_ATTR_TENSORS;
    if (ap->n_graphs) return ONR_ATTR_GRAPHS;
    return ONR_ATTR_UNDEFINED;
}

static int load_attr(loader *L, Onnx__AttributeProto *ap, onr_graph *g, const vmap *scope,
                     int depth, onr_attr *a)
{
    int st = ONR_OK;
    a->name = onr_strdup(ap->name ? ap->name : "");
    a->type = (onr_attr_type)attr_type(ap);
    if (!a->name) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    if (ap->ref_attr_name && *ap->ref_attr_name)
        return onr_seterr(L->err, ONR_E_MODEL,
                          "attribute '%s' refers to a function attribute ('%s') outside a "
                          "function body",
                          a->name, ap->ref_attr_name);
    switch (a->type) {
    case ONR_ATTR_FLOAT: a->f = ap->f; break;
    case ONR_ATTR_INT: a->i = ap->i; break;
    case ONR_ATTR_STRING:
        a->s = onr_strndup((const char *)ap->s.data, ap->s.len);
        a->slen = ap->s.len;
        if (!a->s) st = onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        break;
    case ONR_ATTR_TENSOR:
        if (!ap->t) return onr_seterr(L->err, ONR_E_MODEL, "attribute '%s' has no tensor", a->name);
        st = load_tensor(L, ap->t, NULL, &a->t);
        break;
    case ONR_ATTR_GRAPH:
        if (!ap->g) return onr_seterr(L->err, ONR_E_MODEL, "attribute '%s' has no graph", a->name);
        st = load_graph(L, ap->g, g, scope, depth + 1, &a->g);
        break;
    case ONR_ATTR_FLOATS:
        a->n = ap->n_floats;
        a->floats = malloc((a->n ? a->n : 1) * sizeof(float));
        if (!a->floats) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        if (a->n) memcpy(a->floats, ap->floats, a->n * sizeof(float));
        break;
    case ONR_ATTR_INTS:
        a->n = ap->n_ints;
        a->ints = malloc((a->n ? a->n : 1) * sizeof(int64_t));
        if (!a->ints) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        if (a->n) memcpy(a->ints, ap->ints, a->n * sizeof(int64_t));
        break;
    case ONR_ATTR_STRINGS:
        a->strings = calloc(ap->n_strings ? ap->n_strings : 1, sizeof(char *));
        if (!a->strings) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        a->n = ap->n_strings;
        for (size_t i = 0; i < a->n; i++)
            if (!(a->strings[i] = onr_strndup((const char *)ap->strings[i].data, ap->strings[i].len)))
                return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        break;
    case ONR_ATTR_TENSORS:
        a->tensors = calloc(ap->n_tensors ? ap->n_tensors : 1, sizeof(onr_tensor *));
        if (!a->tensors) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        a->n = ap->n_tensors;
        for (size_t i = 0; i < a->n && !st; i++)
            st = load_tensor(L, ap->tensors[i], NULL, &a->tensors[i]);
        break;
    case ONR_ATTR_GRAPHS:
        a->graphs = calloc(ap->n_graphs ? ap->n_graphs : 1, sizeof(onr_graph *));
        if (!a->graphs) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        a->n = ap->n_graphs;
        for (size_t i = 0; i < a->n && !st; i++)
            st = load_graph(L, ap->graphs[i], g, scope, depth + 1, &a->graphs[i]);
        break;
    default: break; /* sparse tensors and type protos: kept as a bare type */
    }
    if (st) onr_err_prefix(L->err, "attribute '%s': ", a->name);
    return st;
}

/* ---- graphs -------------------------------------------------------------- */

/* The key and value types of a map type (map(K, tensor(V)) only). */
static int load_map_type(loader *L, const Onnx__TypeProto *tp, onr_value *v)
{
    const Onnx__TypeProto__Map *mt = tp->map_type;
    if (!mt || !mt->has_key_type)
        return onr_seterr(L->err, ONR_E_MODEL, "value '%s': map type without a key type", v->name);
    if (mt->key_type <= 0 || mt->key_type >= ONR_DTYPE_COUNT ||
        !onr_map_key_type_ok((onr_dtype)mt->key_type))
        return onr_seterr(L->err, ONR_E_MODEL,
                          "value '%s': map key type %d is not an integer or string type", v->name,
                          (int)mt->key_type);
    v->key_dtype = (onr_dtype)mt->key_type;
    const Onnx__TypeProto *vt = mt->value_type;
    if (vt && vt->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return onr_seterr(L->err, ONR_E_UNSUPPORTED,
                          "value '%s': only maps to tensors are supported (not to sequences or "
                          "maps)", v->name);
    const Onnx__TypeProto__Tensor *et = vt ? vt->tensor_type : NULL;
    v->dtype = et && et->has_elem_type && et->elem_type > 0 && et->elem_type < ONR_DTYPE_COUNT
                   ? (onr_dtype)et->elem_type
                   : ONR_UNDEFINED;
    return ONR_OK; /* the values' shapes are not kept */
}

/* Fill a value's declared type and shape from a ValueInfoProto. */
static int load_value_type(loader *L, const Onnx__ValueInfoProto *vi, onr_value *v)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp) return ONR_OK; /* untyped: leave unknown */
    /* optional(T), sequence(tensor), map(K, V), sequence(map): the kind,
     * the element kind and type, a map's key type */
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE && tp->optional_type &&
        tp->optional_type->elem_type) {
        v->kind = ONR_VALUE_OPTIONAL;
        tp = tp->optional_type->elem_type;
        v->elem_kind = tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? ONR_VALUE_SEQUENCE
                       : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE  ? ONR_VALUE_MAP
                                                                             : ONR_VALUE_TENSOR;
    }
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE) {
        if (!v->kind) v->kind = ONR_VALUE_MAP;
        return load_map_type(L, tp, v);
    }
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE && tp->sequence_type &&
        tp->sequence_type->elem_type) {
        if (!v->kind) v->kind = ONR_VALUE_SEQUENCE;
        tp = tp->sequence_type->elem_type;
        if (tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE) {
            if (v->kind == ONR_VALUE_SEQUENCE) v->elem_kind = ONR_VALUE_MAP;
            return load_map_type(L, tp, v);
        }
        if (tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
            const Onnx__TypeProto__Tensor *et = tp->tensor_type;
            v->dtype = et && et->has_elem_type && et->elem_type > 0 &&
                               et->elem_type < ONR_DTYPE_COUNT
                           ? (onr_dtype)et->elem_type
                           : ONR_UNDEFINED;
            return ONR_OK; /* elements' shapes are not kept */
        }
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return onr_seterr(L->err, ONR_E_UNSUPPORTED,
                          "value '%s' is not a tensor, a sequence (of tensors or maps), a map or an "
                          "optional of one (sparse values and nested sequences are not supported)",
                          v->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (!tt) return ONR_OK;
    v->dtype = tt->has_elem_type && tt->elem_type > 0 && tt->elem_type < ONR_DTYPE_COUNT
                   ? (onr_dtype)tt->elem_type
                   : ONR_UNDEFINED;
    if (!tt->shape) return ONR_OK;
    if (tt->shape->n_dim > ONR_MAX_RANK)
        return onr_seterr(L->err, ONR_E_UNSUPPORTED, "value '%s' has rank %zu, more than %d",
                          v->name, tt->shape->n_dim, ONR_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int d = 0; d < v->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        v->dims[d] = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dim->dim_value < 0)
                return onr_seterr(L->err, ONR_E_MODEL, "value '%s' has negative dim %lld",
                                  v->name, (long long)dim->dim_value);
            v->dims[d] = dim->dim_value;
        } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   dim->dim_param) {
            if (!(v->dim_names[d] = onr_strdup(dim->dim_param)))
                return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        }
    }
    if (v->dtype != ONR_UNDEFINED) {
        int known = 1;
        for (int d = 0; d < v->rank; d++) known &= v->dims[d] >= 0;
        int64_t numel;
        onr_err tmp = {0};
        if (known && onr_dims_numel(v->dims, v->rank, v->dtype, &numel, &tmp))
            return onr_seterr(L->err, tmp.code, "value '%s': %s", v->name, tmp.msg);
    }
    return ONR_OK;
}

/* Value for a name referred to by a node: local, or from an enclosing graph. */
/* ---- model-local functions ---------------------------------------------------
 * A node whose (domain, op_type) names one of ModelProto.functions is
 * replaced by a copy of the function's body before the graph is loaded:
 * formal inputs and outputs become the call's actual names, every other value
 * gets a prefix unique to the call, attributes that refer to a function
 * attribute (ref_attr_name) take the call's value or the function's default,
 * and the copied nodes keep the opset versions the function imports. Calls
 * inside functions are expanded the same way, up to ONR_FN_MAX_DEPTH levels.
 * The copies are shallow where nothing changes (tensors, strings of
 * attributes): their owner is the unpacked model, hence L->no_takeover. */

#define ONR_FN_MAX_DEPTH 16
#define ONR_FN_MAX_NODES (1 << 20)

static void *fn_keep(loader *L, void *p)
{
    if (!p) return NULL;
    if (L->n_allocs == L->cap_allocs) {
        size_t cap = L->cap_allocs ? 2 * L->cap_allocs : 64;
        void **a = realloc(L->allocs, cap * sizeof *a);
        if (!a) {
            free(p);
            return NULL;
        }
        L->allocs = a;
        L->cap_allocs = cap;
    }
    return L->allocs[L->n_allocs++] = p;
}

static void fn_free_all(loader *L)
{
    for (size_t i = 0; i < L->n_allocs; i++) free(L->allocs[i]);
    free(L->allocs);
    L->allocs = NULL;
    L->n_allocs = L->cap_allocs = 0;
}

static const char *domain_norm(const char *d)
{
    return !d || strcmp(d, "ai.onnx") == 0 ? "" : d;
}

/* Model-local functions are found through a hash table keyed on (domain,
 * name), built once per model (fn_index_build), which also refuses a
 * function defined twice; each function's formal parameters get a name
 * table at its first call. Both keep inlining linear in the model's size. */
static uint64_t fn_hash(const char *domain, const char *name)
{
    return onr_hash_str(name) ^ onr_hash_str(domain_norm(domain)) * 0x9E3779B97F4A7C15ull;
}

/* Index in L->mp->functions of the function (domain, name), or -1. */
static int fn_lookup(const loader *L, const char *domain, const char *name)
{
    if (!L->fn_cap || !name) return -1;
    for (size_t i = fn_hash(domain, name) & (L->fn_cap - 1);; i = (i + 1) & (L->fn_cap - 1)) {
        int k = L->fn_slots[i] - 1;
        if (k < 0) return -1;
        const Onnx__FunctionProto *f = L->mp->functions[k];
        if (strcmp(f->name, name) == 0 &&
            strcmp(domain_norm(f->domain), domain_norm(domain)) == 0)
            return k;
    }
}

static int fn_index_build(loader *L)
{
    size_t n = L->mp->n_functions, cap = 16;
    if (!n) return ONR_OK;
    while (cap < 2 * n) cap *= 2;
    L->fn_slots = calloc(cap, sizeof *L->fn_slots);
    L->fn_formals = calloc(n, sizeof *L->fn_formals);
    if (!L->fn_slots || !L->fn_formals) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        const Onnx__FunctionProto *f = L->mp->functions[k];
        if (!f->name || !*f->name)
            return onr_seterr(L->err, ONR_E_MODEL, "model-local function %zu has no name", k);
        if (fn_lookup(L, f->domain, f->name) >= 0)
            return onr_seterr(L->err, ONR_E_MODEL,
                              "model-local function '%s' (domain '%s') is defined twice",
                              f->name, domain_norm(f->domain));
        L->fn_cap = cap; /* searchable from here on */
        size_t i = fn_hash(f->domain, f->name) & (cap - 1);
        while (L->fn_slots[i]) i = (i + 1) & (cap - 1);
        L->fn_slots[i] = (int)k + 1;
    }
    return ONR_OK;
}

static void fn_index_free(loader *L)
{
    for (size_t k = 0; L->fn_formals && k < L->mp->n_functions; k++)
        onr_names_free(&L->fn_formals[k]);
    free(L->fn_formals);
    free(L->fn_slots);
    L->fn_formals = NULL;
    L->fn_slots = NULL;
    L->fn_cap = 0;
}

static const Onnx__FunctionProto *fn_find(const loader *L, const Onnx__NodeProto *np)
{
    int k = L->mp ? fn_lookup(L, np->domain, np->op_type) : -1;
    return k >= 0 ? L->mp->functions[k] : NULL;
}

/* Formal parameter `pos` of function ctx: its inputs, then its outputs. */
static const char *fn_formal_name(const void *ctx, int pos)
{
    const Onnx__FunctionProto *f = ctx;
    const char *n = (size_t)pos < f->n_input ? f->input[pos] : f->output[(size_t)pos - f->n_input];
    return n ? n : "";
}

/* The formals' name table of function k, built at its first call. */
static onr_names *fn_formals(loader *L, int k)
{
    onr_names *fm = &L->fn_formals[k];
    if (fm->key) return fm;
    const Onnx__FunctionProto *f = L->mp->functions[k];
    fm->key = fn_formal_name;
    fm->ctx = f;
    for (size_t i = 0; i < f->n_input + f->n_output; i++) {
        const char *n = fn_formal_name(f, (int)i);
        if (*n && onr_names_find(fm, n) < 0 && onr_names_put(fm, (int)i)) return NULL;
    }
    return fm;
}

static char *fn_strcat(loader *L, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return fn_keep(L, s);
}

/* The name a value of the function body gets at this call: a formal input
 * or output becomes the call's actual one, anything else gets the prefix. */
static char *fn_rename(loader *L, const Onnx__FunctionProto *f, const onr_names *formals,
                       const Onnx__NodeProto *call, const char *prefix, const char *name)
{
    if (!name || !*name) return (char *)"";
    int pos = onr_names_find(formals, name);
    if (pos >= 0 && (size_t)pos < f->n_input)
        return (size_t)pos < call->n_input && call->input[pos] ? call->input[pos] : (char *)"";
    if (pos >= 0) {
        size_t i = (size_t)pos - f->n_input;
        if (i < call->n_output && call->output[i] && *call->output[i]) return call->output[i];
    }
    return fn_strcat(L, prefix, name);
}

static const Onnx__AttributeProto *attr_named(Onnx__AttributeProto *const *a, size_t n,
                                              const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (a[i]->name && strcmp(a[i]->name, name) == 0) return a[i];
    return NULL;
}

static int has_subgraph(const Onnx__AttributeProto *a) { return a->g || a->n_graphs; }

/* Appends the body of f, as called by `call`, to out[] / owner[]. */
static int fn_inline(loader *L, const Onnx__FunctionProto *f, const Onnx__NodeProto *call,
                     Onnx__NodeProto **out, const Onnx__FunctionProto **owner, size_t *n)
{
    const char *cname = call->name && *call->name ? call->name : call->op_type;
    if (call->n_input > f->n_input || call->n_output > f->n_output)
        return onr_seterr(L->err, ONR_E_MODEL,
                          "node '%s' calls function '%s' with %zu inputs and %zu outputs; it "
                          "declares %zu and %zu",
                          cname, f->name, call->n_input, call->n_output, f->n_input, f->n_output);
    const onr_names *formals = fn_formals(L, fn_lookup(L, call->domain, call->op_type));
    if (!formals) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    char pre[320];
    snprintf(pre, sizeof pre, "%s/%s#%d/", cname, f->name, ++L->n_calls);
    char *prefix = fn_strcat(L, pre, "");
    if (!prefix) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    for (size_t k = 0; k < f->n_node; k++) {
        const Onnx__NodeProto *b = f->node[k];
        Onnx__NodeProto *c = fn_keep(L, malloc(sizeof *c));
        char **in = fn_keep(L, malloc((b->n_input + 1) * sizeof(char *)));
        char **ou = fn_keep(L, malloc((b->n_output + 1) * sizeof(char *)));
        Onnx__AttributeProto **at = fn_keep(L, malloc((b->n_attribute + 1) * sizeof *at));
        char idx[32];
        snprintf(idx, sizeof idx, "#%zu", k);
        if (!c || !in || !ou || !at) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        *c = *b;
        c->name = fn_strcat(L, prefix, b->name && *b->name ? b->name : idx);
        if (!c->name) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        for (size_t i = 0; i < b->n_input; i++)
            if (!(in[i] = fn_rename(L, f, formals, call, prefix, b->input[i])))
                return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        for (size_t i = 0; i < b->n_output; i++)
            if (!(ou[i] = fn_rename(L, f, formals, call, prefix, b->output[i])))
                return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        size_t na = 0;
        for (size_t i = 0; i < b->n_attribute; i++) {
            const Onnx__AttributeProto *a = b->attribute[i];
            if (has_subgraph(a))
                return onr_seterr(L->err, ONR_E_UNSUPPORTED,
                                  "function '%s': node '%s' (%s) has a subgraph attribute; "
                                  "subgraphs inside model-local functions are not supported",
                                  f->name, c->name, b->op_type);
            if (!a->ref_attr_name || !*a->ref_attr_name) {
                at[na++] = (Onnx__AttributeProto *)a;
                continue;
            }
            const Onnx__AttributeProto *v =
                attr_named(call->attribute, call->n_attribute, a->ref_attr_name);
            if (!v) v = attr_named(f->attribute_proto, f->n_attribute_proto, a->ref_attr_name);
            if (!v) continue; /* not given, no default: the attribute is absent */
            Onnx__AttributeProto *r = fn_keep(L, malloc(sizeof *r));
            if (!r) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
            *r = *v;
            r->name = a->name;
            r->ref_attr_name = NULL;
            at[na++] = r;
        }
        c->input = in;
        c->output = ou;
        c->attribute = at;
        c->n_attribute = na;
        out[*n] = c;
        owner[*n] = f;
        (*n)++;
    }
    return ONR_OK;
}

/* The graph's nodes with every call of a model-local function expanded.
 * *nodes stays gp->node when there is nothing to expand. */
static int fn_expand(loader *L, Onnx__GraphProto *gp, Onnx__NodeProto ***nodes,
                     const Onnx__FunctionProto ***owners, size_t *n_nodes)
{
    *nodes = gp->node;
    *owners = NULL;
    *n_nodes = gp->n_node;
    if (!L->mp || !L->mp->n_functions) return ONR_OK;
    Onnx__NodeProto **cur = gp->node;
    const Onnx__FunctionProto **cur_own = NULL;
    size_t n = gp->n_node;
    for (int depth = 0;; depth++) {
        size_t total = 0, calls = 0;
        for (size_t i = 0; i < n; i++) {
            const Onnx__FunctionProto *f = fn_find(L, cur[i]);
            total += f ? f->n_node : 1;
            calls += f != NULL;
        }
        if (!calls) break;
        if (depth >= ONR_FN_MAX_DEPTH)
            return onr_seterr(L->err, ONR_E_MODEL,
                              "model-local functions call each other more than %d levels deep "
                              "(recursion?)",
                              ONR_FN_MAX_DEPTH);
        if (total > ONR_FN_MAX_NODES)
            return onr_seterr(L->err, ONR_E_MODEL,
                              "inlining model-local functions gives more than %d nodes",
                              ONR_FN_MAX_NODES);
        Onnx__NodeProto **nx = fn_keep(L, malloc((total + 1) * sizeof *nx));
        const Onnx__FunctionProto **no = fn_keep(L, malloc((total + 1) * sizeof *no));
        if (!nx || !no) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const Onnx__FunctionProto *f = fn_find(L, cur[i]);
            if (!f) {
                no[m] = cur_own ? cur_own[i] : NULL;
                nx[m++] = cur[i];
                continue;
            }
            int st = fn_inline(L, f, cur[i], nx, no, &m);
            if (st) return st;
        }
        cur = nx;
        cur_own = no;
        n = m;
    }
    *nodes = cur;
    *owners = cur_own;
    *n_nodes = n;
    return ONR_OK;
}

/* The opset version a node's domain has where the node stands: in the
 * function it was inlined from, else in the model. */
static int64_t node_opset(const loader *L, const Onnx__FunctionProto *f, const char *domain)
{
    if (f)
        for (size_t i = 0; i < f->n_opset_import; i++)
            if (strcmp(domain_norm(f->opset_import[i]->domain), domain) == 0)
                return f->opset_import[i]->version;
    return onr_model_opset(L->model, domain);
}

static int resolve_input(loader *L, onr_graph *g, vmap *map, const vmap *outer, const char *name,
                         int *idx)
{
    int v = vmap_find(map, name);
    if (v >= 0) {
        *idx = v;
        return ONR_OK;
    }
    for (const vmap *o = outer; o; o = o->outer) /* every enclosing scope, innermost first */
        if (vmap_find(o, name) >= 0) {
            v = onr_graph_add_value(g, name);
            if (v < 0 || vmap_put(map, v)) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
            g->values[v].is_outer = 1;
            *idx = v;
            return ONR_OK;
        }
    return onr_seterr(L->err, ONR_E_MODEL,
                      "input '%s' is not produced by any node, initializer or graph input", name);
}

static int load_graph(loader *L, Onnx__GraphProto *gp, onr_graph *parent, const vmap *outer,
                      int depth, onr_graph **out)
{
    *out = NULL;
    if (depth > ONR_MAX_PROTO_DEPTH)
        return onr_seterr(L->err, ONR_E_MODEL, "subgraphs nested more than %d deep",
                          ONR_MAX_PROTO_DEPTH);
    onr_graph *g = calloc(1, sizeof *g);
    if (!g) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    g->parent = parent;
    g->name = onr_strdup(gp->name ? gp->name : "");
    vmap map = {.g = g, .outer = outer};
    int st = ONR_OK;
    char *gname = g->name;
    if (!gname) {
        st = onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        goto fail;
    }

    if (gp->n_sparse_initializer) {
        st = onr_seterr(L->err, ONR_E_UNSUPPORTED, "sparse initializers are not supported");
        goto fail;
    }
    /* initializers */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = tname(tp);
        if (!*name) {
            st = onr_seterr(L->err, ONR_E_MODEL, "initializer %zu has no name", i);
            goto fail;
        }
        if (vmap_find(&map, name) >= 0) {
            st = onr_seterr(L->err, ONR_E_MODEL, "initializer '%s' is defined twice", name);
            goto fail;
        }
        int v = onr_graph_add_value(g, name);
        if (v < 0 || vmap_put(&map, v)) goto nomem;
        onr_tensor *t;
        /* the main graph's initializers may have had their raw_data stripped */
        if ((st = load_tensor(L, tp, parent ? NULL : stripped_raw(L, tp), &t))) goto fail;
        onr_value *val = &g->values[v];
        val->konst = t;
        val->is_initializer = 1;
        val->dtype = t->dtype;
        val->rank = t->rank;
        for (int d = 0; d < t->rank; d++) val->dims[d] = t->dims[d];
    }
    /* graph inputs (those with an initializer are defaults, not inputs) */
    g->inputs = malloc((gp->n_input ? gp->n_input : 1) * sizeof(int));
    if (!g->inputs) goto nomem;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi->name ? vi->name : "";
        int v = vmap_find(&map, name);
        if (v >= 0 && g->values[v].is_initializer) continue;
        if (v >= 0 || !*name) {
            st = onr_seterr(L->err, ONR_E_MODEL, "graph input '%s' is %s", name,
                            *name ? "declared twice" : "unnamed");
            goto fail;
        }
        v = onr_graph_add_value(g, name);
        if (v < 0 || vmap_put(&map, v)) goto nomem;
        g->values[v].is_input = 1;
        if ((st = load_value_type(L, vi, &g->values[v]))) goto fail;
        g->inputs[g->n_inputs++] = v;
    }
    /* nodes, with calls of model-local functions expanded */
    Onnx__NodeProto **nodes;
    const Onnx__FunctionProto **owners;
    size_t n_node;
    if ((st = fn_expand(L, gp, &nodes, &owners, &n_node))) goto fail;
    /* first every output (so node order in the file does not matter) */
    g->nodes = calloc(n_node ? n_node : 1, sizeof *g->nodes);
    if (!g->nodes) goto nomem;
    g->n_nodes = (int)n_node;
    for (size_t i = 0; i < n_node; i++) {
        Onnx__NodeProto *np = nodes[i];
        onr_node *n = &g->nodes[i];
        char auto_name[32];
        snprintf(auto_name, sizeof auto_name, "#%zu", i);
        n->name = onr_strdup(np->name && *np->name ? np->name : auto_name);
        n->op_type = onr_strdup(np->op_type ? np->op_type : "");
        n->domain = onr_strdup(np->domain ? np->domain : "");
        if (!n->name || !n->op_type || !n->domain) goto nomem;
        if (strcmp(n->domain, "ai.onnx") == 0) n->domain[0] = 0;
        if (!*n->op_type) {
            st = onr_seterr(L->err, ONR_E_MODEL, "node '%s' has no op_type", n->name);
            goto fail;
        }
        n->n_out = (int)np->n_output;
        n->outputs = malloc((np->n_output ? np->n_output : 1) * sizeof(int));
        if (!n->outputs) goto nomem;
        for (size_t o = 0; o < np->n_output; o++) {
            const char *name = np->output[o] ? np->output[o] : "";
            if (!*name) {
                n->outputs[o] = -1;
                continue;
            }
            int v = vmap_find(&map, name);
            if (v >= 0) {
                const onr_value *pv = &g->values[v];
                st = onr_seterr(L->err, ONR_E_MODEL,
                                "node '%s' (%s) output '%s' is already %s", n->name, n->op_type,
                                name,
                                pv->producer >= 0 ? "produced by another node"
                                : pv->is_initializer ? "an initializer"
                                                     : "a graph input");
                if (pv->producer >= 0)
                    onr_err_prefix(L->err, "value produced twice (nodes '%s' and '%s'): ",
                                   g->nodes[pv->producer].name, n->name);
                goto fail;
            }
            v = onr_graph_add_value(g, name);
            if (v < 0 || vmap_put(&map, v)) goto nomem;
            g->values[v].producer = (int)i;
            n->outputs[o] = v;
        }
    }
    /* then inputs and attributes */
    for (size_t i = 0; i < n_node; i++) {
        Onnx__NodeProto *np = nodes[i];
        const Onnx__FunctionProto *fn = owners ? owners[i] : NULL;
        onr_node *n = &g->nodes[i];
        n->n_in = (int)np->n_input;
        n->inputs = malloc((np->n_input ? np->n_input : 1) * sizeof(int));
        if (!n->inputs) goto nomem;
        for (size_t k = 0; k < np->n_input; k++) {
            const char *name = np->input[k] ? np->input[k] : "";
            n->inputs[k] = -1;
            if (!*name) continue;
            if ((st = resolve_input(L, g, &map, outer, name, &n->inputs[k]))) {
                onr_err_prefix(L->err, "node '%s' (%s): ", n->name, n->op_type);
                goto fail;
            }
        }
        n->attrs = calloc(np->n_attribute ? np->n_attribute : 1, sizeof *n->attrs);
        if (!n->attrs) goto nomem;
        int keep_takeover = L->no_takeover;
        if (fn) L->no_takeover = 1; /* inlined bodies share their tensors */
        for (size_t a = 0; a < np->n_attribute; a++) {
            n->n_attr++;
            if ((st = load_attr(L, np->attribute[a], g, &map, depth, &n->attrs[a]))) {
                L->no_takeover = keep_takeover;
                onr_err_prefix(L->err, "node '%s' (%s): ", n->name, n->op_type);
                goto fail;
            }
        }
        L->no_takeover = keep_takeover;
        n->opset = node_opset(L, fn, n->domain);
    }
    /* graph outputs */
    g->outputs = malloc((gp->n_output ? gp->n_output : 1) * sizeof(int));
    if (!g->outputs) goto nomem;
    if (gp->n_output == 0 && !parent) {
        st = onr_seterr(L->err, ONR_E_MODEL, "the graph declares no outputs");
        goto fail;
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = vi->name ? vi->name : "";
        int v;
        if ((st = resolve_input(L, g, &map, outer, name, &v))) {
            onr_err_prefix(L->err, "graph output: ");
            goto fail;
        }
        g->outputs[g->n_outputs++] = v;
        onr_value *val = &g->values[v];
        val->is_output = 1;
        if (val->producer >= 0 && val->dtype == ONR_UNDEFINED) {
            /* declared type of a computed output: kept for `info` until inference */
            if ((st = load_value_type(L, vi, val))) goto fail;
        }
    }
    free(map.slots);
    *out = g;
    return ONR_OK;
nomem:
    st = onr_seterr(L->err, ONR_E_NOMEM, "out of memory while loading the graph");
fail:
    if (parent && gname && *gname) onr_err_prefix(L->err, "subgraph '%s': ", gname);
    free(map.slots);
    onr_graph_free(g);
    return st;
}

/* ---- model --------------------------------------------------------------- */

static int load_model(loader *L, Onnx__ModelProto *mp)
{
    onr_model *m = L->model;
    if (!mp->has_ir_version || mp->ir_version < ONR_IR_MIN || mp->ir_version > ONR_IR_MAX)
        return onr_seterr(L->err, mp->has_ir_version && mp->ir_version > ONR_IR_MAX
                                      ? ONR_E_UNSUPPORTED
                                      : ONR_E_MODEL,
                          "IR version %lld is not supported (onnx-run reads IR versions %d to %d)",
                          (long long)mp->ir_version, ONR_IR_MIN, ONR_IR_MAX);
    m->ir_version = mp->ir_version;
    char prod[512];
    snprintf(prod, sizeof prod, "%s%s%s", mp->producer_name ? mp->producer_name : "",
             mp->producer_version && *mp->producer_version ? " " : "",
             mp->producer_version ? mp->producer_version : "");
    m->producer = onr_strdup(prod);
    m->opsets = calloc(mp->n_opset_import ? mp->n_opset_import : 1, sizeof *m->opsets);
    if (!m->producer || !m->opsets) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *op = mp->opset_import[i];
        const char *d = op->domain ? op->domain : "";
        if (strcmp(d, "ai.onnx") == 0) d = "";
        if (!op->has_version || op->version < 1)
            return onr_seterr(L->err, ONR_E_MODEL, "opset import for domain '%s' has no valid version", d);
        for (int k = 0; k < m->n_opsets; k++)
            if (strcmp(m->opsets[k].domain, d) == 0)
                return onr_seterr(L->err, ONR_E_MODEL, "domain '%s' is imported twice", d);
        if (!(m->opsets[m->n_opsets].domain = onr_strdup(d)))
            return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
        m->opsets[m->n_opsets++].version = op->version;
    }
    if (!mp->graph) return onr_seterr(L->err, ONR_E_MODEL, "the model has no graph");
    L->mp = mp; /* calls of its functions are inlined as the graphs load */
    int st = fn_index_build(L);
    if (!st) st = load_graph(L, mp->graph, NULL, NULL, 0, &m->graph);
    fn_free_all(L);
    fn_index_free(L);
    return st;
}

/* Parse the serialized model [buf, buf+len). map: buf is our own mapping of
 * that file (tensors may point into it; its pages may be dropped); when a
 * tensor does, the mapping is added to the model's maps and *kept is set,
 * else the caller still owns it. */
/* protobuf-c's allocator, through malloc/free as onnx-run calls them:
 * a failed allocation is recorded, so "out of memory" is not reported as
 * a corrupt file (and the allocation-failure test reaches these calls). */
typedef struct pb_alloc_state {
    int failed;
} pb_alloc_state;

static void *pb_alloc(void *data, size_t size)
{
    void *p = malloc(size);
    if (!p) ((pb_alloc_state *)data)->failed = 1;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static onr_status load_bytes(const uint8_t *buf, size_t len, const char *base_dir,
                             const struct onr_map *map, int *kept, onr_model **out, onr_err *err)
{
    *out = NULL;
    *kept = 0;
    if (len == 0) return onr_seterr(err, ONR_E_MODEL, "the model is empty (0 bytes)");
    int shape = check_depth(buf, len, &onnx__model_proto__descriptor, 0);
    if (shape == -1)
        return onr_seterr(err, ONR_E_MODEL, "the model nests messages more than %d deep",
                          ONR_MAX_PROTO_DEPTH);
    if (shape < -1) {
        const struct wire_limit *w = &wire_limits[-2 - shape];
        char what[160];
        snprintf(what, sizeof what, w->what, w->max);
        return onr_seterr(err, ONR_E_MODEL, "%s (the limit)", what);
    }
    loader L = {.base_dir = base_dir, .err = err, .src = buf, .src_len = len,
                .src_is_map = map != NULL};
    uint8_t *stripped = NULL;
    size_t slen = 0;
    int st = strip_model(&L, buf, len, &stripped, &slen);
    if (st) return st;
    /* protobuf-c allocates through onnx-run's allocator calls, so that an
     * allocation failure is told apart from bad bytes */
    pb_alloc_state pa = {0};
    ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &pa};
    Onnx__ModelProto *mp = stripped ? onnx__model_proto__unpack(&alloc, slen, stripped)
                                    : onnx__model_proto__unpack(&alloc, len, buf);
    free(stripped);
    if (!mp && pa.failed) {
        free(L.recs);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory unpacking the model (%zu bytes)", len);
    }
    if (!mp) {
        free(L.recs);
        return onr_seterr(err, ONR_E_MODEL,
                          "not a valid ONNX model: the protobuf data (%zu bytes) is truncated or "
                          "corrupt",
                          len);
    }
    onr_model *m = calloc(1, sizeof *m);
    L.model = m;
    st = m ? load_model(&L, mp) : (int)onr_seterr(err, ONR_E_NOMEM, "out of memory");
    onnx__model_proto__free_unpacked(mp, &alloc);
    free(L.recs);
    if (!st && map && L.main_refs) { /* weights point into the mapping: the model keeps it */
        struct onr_map *nm = realloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *nm);
        if (nm) {
            m->maps = nm;
            m->maps[m->n_maps++] = *map;
            *kept = 1;
        } else {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        }
    }
    if (st) {
        onr_model_free(m);
        return st;
    }
    *out = m;
    return ONR_OK;
}

onr_status onr_load_buffer(const void *buf, size_t len, const char *base_dir, onr_model **out,
                           onr_err *err)
{
    /* the caller's buffer may not outlive the model: weights are copied out of it
     * (once: the stripped copy keeps protobuf-c from copying them too) */
    int kept;
    return load_bytes(buf, len, base_dir, NULL, &kept, out, err);
}

onr_status onr_load_file(const char *path, onr_model **out, onr_err *err)
{
    *out = NULL;
    struct stat st;
    int fd = onr_open_regular(path, "model", &st, err);
    if (fd < 0) return err->code;
    if (st.st_size == 0) {
        close(fd);
        return onr_seterr(err, ONR_E_MODEL, "'%s' is empty (0 bytes)", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return onr_seterr(err, ONR_E_IO, "cannot map '%s': %s", path, strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (slash == dir) snprintf(dir, sizeof dir, "/");
    struct onr_map map = {p, (size_t)st.st_size, (uint64_t)st.st_dev, (uint64_t)st.st_ino};
    int kept = 0;
    onr_status rc = load_bytes(p, (size_t)st.st_size, dir, &map, &kept, out, err);
    if (kept) /* only the weights read in place stay; they fault back in when used */
        madvise(p, (size_t)st.st_size, MADV_DONTNEED);
    else
        munmap(p, (size_t)st.st_size);
    if (rc) onr_err_prefix(err, "%s: ", path);
    return rc;
}

void onr_model_free(onr_model *m)
{
    if (!m) return;
    onr_graph_free(m->graph);
    for (int i = 0; i < m->n_opsets; i++) free(m->opsets[i].domain);
    free(m->opsets);
    free(m->producer);
    for (int i = 0; i < m->n_maps; i++)
        if (m->maps[i].addr) munmap(m->maps[i].addr, m->maps[i].len);
    free(m->maps);
    free(m);
}

/* ---- test-data tensors ----------------------------------------------------- */

onr_status onr_load_tensor_pb(const void *buf, size_t len, onr_tensor **out, onr_err *err)
{
    *out = NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) return onr_seterr(err, ONR_E_MODEL, "not a valid TensorProto (%zu bytes)", len);
    loader L = {.model = NULL, .base_dir = NULL, .err = err};
    int st;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        st = onr_seterr(err, ONR_E_UNSUPPORTED, "tensor files with external data are not supported");
    else
        st = load_tensor(&L, tp, NULL, out);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}

/* The TensorProto of t (strs and packed: buffers it points into, for the
 * caller to free after packing). */
static onr_status tensor_proto_of(const onr_tensor *t, const char *name, Onnx__TensorProto *out,
                                  ProtobufCBinaryData **strs_out, uint8_t **packed_out,
                                  onr_err *err)
{
    if (!t->data && t->numel > 0)
        return onr_seterr(err, ONR_E_ARG, "tensor '%s' has no data (released)",
                          name ? name : "");
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = (size_t)t->rank;
    tp.dims = (int64_t *)t->dims;
    tp.has_data_type = 1;
    tp.data_type = t->dtype;
    tp.name = (char *)(name ? name : "");
    ProtobufCBinaryData *strs = NULL;
    uint8_t *packed = NULL;
    if (t->dtype == ONR_STRING) {
        strs = calloc(t->numel ? (size_t)t->numel : 1, sizeof *strs);
        if (!strs) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        char *const *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            strs[i].data = (uint8_t *)(s[i] ? s[i] : "");
            strs[i].len = strlen((const char *)strs[i].data);
        }
        tp.n_string_data = (size_t)t->numel;
        tp.string_data = strs;
    } else if (onr_dtype_is_lowp(t->dtype) && onr_dtype_bits(t->dtype) < 8) {
        /* 4- and 2-bit types: packed, first element in the low bits */
        size_t pn = onr_lowp_packed_bytes(t->dtype, t->numel);
        if (!(packed = malloc(pn ? pn : 1))) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        onr_lowp_pack(t->dtype, t->data, t->numel, packed);
        tp.has_raw_data = 1;
        tp.raw_data.len = pn;
        tp.raw_data.data = packed;
    } else {
        tp.has_raw_data = 1;
        tp.raw_data.len = onr_tensor_nbytes(t);
        tp.raw_data.data = t->data;
    }
    *out = tp;
    *strs_out = strs;
    *packed_out = packed;
    return ONR_OK;
}

onr_status onr_save_tensor_pb(const onr_tensor *t, const char *name, uint8_t **out, size_t *len,
                              onr_err *err)
{
    Onnx__TensorProto tp;
    ProtobufCBinaryData *strs = NULL;
    uint8_t *packed = NULL;
    onr_status st = tensor_proto_of(t, name, &tp, &strs, &packed, err);
    if (st) return st;
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        free(strs);
        free(packed);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    onnx__tensor_proto__pack(&tp, b);
    free(strs);
    free(packed);
    *out = b;
    *len = n;
    return ONR_OK;
}

/* ---- SequenceProto / OptionalProto (test-case files) ------------------------ */

/* SequenceProto.DataType / OptionalProto.DataType */
enum { PB_ELEM_TENSOR = 1, PB_ELEM_SEQUENCE = 3, PB_ELEM_MAP = 4, PB_ELEM_OPTIONAL = 5 };

static int seq_from_proto(loader *L, Onnx__SequenceProto *sp, onr_tensor *t, int depth);

static int value_slot(loader *L, onr_tensor *c, size_t i, onr_tensor **slot_out)
{
    onr_tensor *e = calloc(1, sizeof *e);
    if (!e) return onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
    ((onr_tensor **)c->data)[i] = e;
    *slot_out = e;
    return ONR_OK;
}

/* Move a loaded heap tensor into slot e (a calloc'd value). */
static void value_take(onr_tensor *e, onr_tensor *t)
{
    *e = *t;
    free(t);
}

/* Key i of a MapProto of integer keys stored as key type kt. */
static int map_key_put(loader *L, onr_tensor *keys, size_t i, int64_t k)
{
    void *p = keys->data;
    int64_t lo = 0, hi = 0;
    switch (keys->dtype) {
    case ONR_INT8: lo = INT8_MIN, hi = INT8_MAX, ((int8_t *)p)[i] = (int8_t)k; break;
    case ONR_INT16: lo = INT16_MIN, hi = INT16_MAX, ((int16_t *)p)[i] = (int16_t)k; break;
    case ONR_INT32: lo = INT32_MIN, hi = INT32_MAX, ((int32_t *)p)[i] = (int32_t)k; break;
    case ONR_UINT8: hi = UINT8_MAX, ((uint8_t *)p)[i] = (uint8_t)k; break;
    case ONR_UINT16: hi = UINT16_MAX, ((uint16_t *)p)[i] = (uint16_t)k; break;
    case ONR_UINT32: hi = UINT32_MAX, ((uint32_t *)p)[i] = (uint32_t)k; break;
    case ONR_UINT64: ((uint64_t *)p)[i] = (uint64_t)k; return ONR_OK; /* the same 64 bits */
    default: ((int64_t *)p)[i] = k; return ONR_OK;
    }
    if (k < lo || k > hi)
        return onr_seterr(L->err, ONR_E_MODEL, "map key %zu (%lld) does not fit %s", i,
                          (long long)k, onr_dtype_name(keys->dtype));
    return ONR_OK;
}

/* A MapProto: keys (int64 keys or string_keys, as key_type says) and a
 * SequenceProto of one tensor per key, all of one type and shape; t
 * becomes a map whose values tensor stacks them along a new dim 0. */
static int map_from_proto(loader *L, const Onnx__MapProto *mp, onr_tensor *t)
{
    int kt = mp->has_key_type ? mp->key_type : 0;
    if (kt <= 0 || kt >= ONR_DTYPE_COUNT || !onr_map_key_type_ok((onr_dtype)kt))
        return onr_seterr(L->err, ONR_E_MODEL,
                          "MapProto key_type %d is not an integer or string type", kt);
    int str = kt == ONR_STRING;
    size_t n = str ? mp->n_string_keys : mp->n_keys;
    if (str ? mp->n_keys : mp->n_string_keys)
        return onr_seterr(L->err, ONR_E_MODEL, "MapProto of %s keys holds %zu %s keys",
                          onr_dtype_name((onr_dtype)kt), str ? mp->n_keys : mp->n_string_keys,
                          str ? "integer" : "string");
    const Onnx__SequenceProto *vs = mp->values;
    if (vs && (vs->n_sequence_values || vs->n_map_values || vs->n_optional_values ||
               vs->n_sparse_tensor_values))
        return onr_seterr(L->err, ONR_E_UNSUPPORTED,
                          "only maps to tensors are supported (MapProto values elem_type %d)",
                          vs->elem_type);
    size_t nv = vs ? vs->n_tensor_values : 0;
    if (nv != n)
        return onr_seterr(L->err, ONR_E_MODEL, "MapProto has %zu keys but %zu values", n, nv);
    /* the values, one heap tensor each, checked alike, then stacked */
    onr_tensor *v0 = NULL, *vi = NULL;
    int st = ONR_OK;
    if (n > 0 && (st = load_tensor(L, vs->tensor_values[0], NULL, &v0))) return st;
    onr_dtype vt = v0 ? v0->dtype : ONR_FLOAT; /* an empty map has no value type: float */
    int vr = v0 ? v0->rank : 0;
    if (vr + 1 > ONR_MAX_RANK)
        st = onr_seterr(L->err, ONR_E_UNSUPPORTED, "map values of rank %d (more than %d)", vr,
                        ONR_MAX_RANK - 1);
    int64_t dims[ONR_MAX_RANK] = {(int64_t)n};
    for (int d = 0; d < vr && !st; d++) dims[d + 1] = v0->dims[d];
    if (!st) st = onr_map_alloc(t, (onr_dtype)kt, vt, (int64_t)n, L->err);
    onr_tensor *keys = NULL, *vals = NULL;
    if (!st) {
        keys = onr_map_keys_of(t), vals = onr_map_values_of(t);
        if (vr > 0) { /* values [n, value dims...]: allocated afresh at that shape */
            onr_tensor_clear(vals);
            st = onr_tensor_set_shape(vals, vt, vr + 1, dims, L->err);
            if (!st) st = onr_tensor_alloc(vals, L->err);
        }
    }
    int64_t row = v0 ? v0->numel : 0;
    size_t esz = vt == ONR_STRING ? sizeof(char *) : onr_dtype_size(vt);
    for (size_t i = 0; i < n && !st; i++) {
        if (str) {
            const ProtobufCBinaryData *b = &mp->string_keys[i];
            char *k = onr_strndup(b->data ? (const char *)b->data : "", b->len);
            if (!k) st = onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
            else free(((char **)keys->data)[i]), ((char **)keys->data)[i] = k;
        } else {
            st = map_key_put(L, keys, i, mp->keys[i]);
        }
        const onr_tensor *x = v0;
        if (!st && i > 0 && !(st = load_tensor(L, vs->tensor_values[i], NULL, &vi))) x = vi;
        if (st) break;
        int same = x->dtype == vt && x->rank == vr;
        for (int d = 0; same && d < vr; d++) same = x->dims[d] == v0->dims[d];
        if (!same) {
            char b1[256], b2[256];
            st = onr_seterr(L->err, ONR_E_MODEL, "map value %zu is %s%s, value 0 %s%s", i,
                            onr_dtype_name(x->dtype), onr_fmt_dims(b1, sizeof b1, x->dims, x->rank),
                            onr_dtype_name(vt), onr_fmt_dims(b2, sizeof b2, v0->dims, vr));
        } else if (vt == ONR_STRING) {
            char **d = (char **)vals->data + (size_t)i * (size_t)row;
            for (int64_t j = 0; j < row && !st; j++) {
                char *c = onr_strdup(((char **)x->data)[j] ? ((char **)x->data)[j] : "");
                if (!c) st = onr_seterr(L->err, ONR_E_NOMEM, "out of memory");
                else free(d[j]), d[j] = c;
            }
        } else if (row) {
            memcpy((char *)vals->data + i * (size_t)row * esz, x->data, (size_t)row * esz);
        }
        onr_tensor_free(vi);
        vi = NULL;
    }
    onr_tensor_free(v0);
    if (!st) st = onr_map_check(keys, vals, L->err);
    return st;
}

static int seq_from_proto(loader *L, Onnx__SequenceProto *sp, onr_tensor *t, int depth)
{
    if (depth > 16) return onr_seterr(L->err, ONR_E_MODEL, "sequences nested too deep");
    if (sp->n_map_values && !sp->n_tensor_values && !sp->n_sequence_values &&
        !sp->n_optional_values && !sp->n_sparse_tensor_values) { /* a sequence of maps */
        onr_status st = onr_value_container(t, ONR_VALUE_SEQUENCE, ONR_UNDEFINED,
                                            (int64_t)sp->n_map_values, L->err);
        const onr_tensor *first = NULL; /* the first map with entries sets the types */
        for (size_t i = 0; i < sp->n_map_values && !st; i++) {
            onr_tensor *e = NULL;
            if ((st = value_slot(L, t, i, &e)) || (st = map_from_proto(L, sp->map_values[i], e))) {
                if (st) onr_err_prefix(L->err, "sequence element %zu: ", i);
                break;
            }
            onr_dtype kt = onr_map_keys_of(e)->dtype;
            if (i > 0 && kt != onr_map_keys_of(onr_value_item(t, 0))->dtype)
                st = onr_seterr(L->err, ONR_E_MODEL, "sequence element %zu has %s keys, element 0 %s",
                                i, onr_dtype_name(kt),
                                onr_dtype_name(onr_map_keys_of(onr_value_item(t, 0))->dtype));
            else if (onr_map_keys_of(e)->numel == 0) continue;
            else if (!first) first = e, t->dtype = e->dtype;
            else if (e->dtype != first->dtype)
                st = onr_seterr(L->err, ONR_E_MODEL, "sequence element %zu maps to %s, an earlier one to %s",
                                i, onr_dtype_name(e->dtype), onr_dtype_name(first->dtype));
        }
        if (!st && !first && sp->n_map_values) t->dtype = onr_value_item(t, 0)->dtype;
        return st;
    }
    if (sp->n_sequence_values || sp->n_map_values || sp->n_optional_values ||
        sp->n_sparse_tensor_values)
        return onr_seterr(L->err, ONR_E_UNSUPPORTED,
                          "only sequences of tensors or of maps are supported (elem_type %d)",
                          sp->elem_type);
    onr_status st = onr_value_container(t, ONR_VALUE_SEQUENCE, ONR_UNDEFINED,
                                        (int64_t)sp->n_tensor_values, L->err);
    for (size_t i = 0; i < sp->n_tensor_values && !st; i++) {
        onr_tensor *e = NULL, *x = NULL;
        if ((st = value_slot(L, t, i, &e))) break;
        if ((st = load_tensor(L, sp->tensor_values[i], NULL, &x))) break;
        value_take(e, x);
        if (i == 0) t->dtype = e->dtype;
        else if (e->dtype != t->dtype)
            st = onr_seterr(L->err, ONR_E_MODEL, "sequence element %zu is %s, element 0 %s", i,
                            onr_dtype_name(e->dtype), onr_dtype_name(t->dtype));
    }
    return st;
}

onr_status onr_load_value_pb(const void *buf, size_t len, int kind, onr_tensor **out,
                             onr_err *err)
{
    *out = NULL;
    if (kind == ONR_VALUE_TENSOR) return onr_load_tensor_pb(buf, len, out, err);
    loader L = {.model = NULL, .base_dir = NULL, .err = err, .no_takeover = 1};
    onr_tensor *t = calloc(1, sizeof *t);
    if (!t) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    int st = ONR_OK;
    const char *name = NULL;
    if (kind == ONR_VALUE_SEQUENCE) {
        Onnx__SequenceProto *sp = onnx__sequence_proto__unpack(NULL, len, buf);
        if (!sp) {
            free(t);
            return onr_seterr(err, ONR_E_MODEL, "not a valid SequenceProto (%zu bytes)", len);
        }
        st = seq_from_proto(&L, sp, t, 0);
        if (!st && sp->name && !(t->name = onr_strdup(sp->name)))
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        onnx__sequence_proto__free_unpacked(sp, NULL);
    } else if (kind == ONR_VALUE_MAP) {
        Onnx__MapProto *mp = onnx__map_proto__unpack(NULL, len, buf);
        if (!mp) {
            free(t);
            return onr_seterr(err, ONR_E_MODEL, "not a valid MapProto (%zu bytes)", len);
        }
        st = map_from_proto(&L, mp, t);
        if (!st && mp->name && !(t->name = onr_strdup(mp->name)))
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        onnx__map_proto__free_unpacked(mp, NULL);
    } else {
        Onnx__OptionalProto *op = onnx__optional_proto__unpack(NULL, len, buf);
        if (!op) {
            free(t);
            return onr_seterr(err, ONR_E_MODEL, "not a valid OptionalProto (%zu bytes)", len);
        }
        int present = op->tensor_value || op->sequence_value || op->map_value;
        if (op->optional_value || op->sparse_tensor_value)
            st = onr_seterr(err, ONR_E_UNSUPPORTED,
                            "only optionals of tensors, sequences or maps are supported");
        if (!st) st = onr_value_container(t, ONR_VALUE_OPTIONAL, ONR_UNDEFINED, present, err);
        onr_tensor *e = NULL;
        if (!st && present) st = value_slot(&L, t, 0, &e);
        if (!st && op->tensor_value) {
            onr_tensor *x = NULL;
            if (!(st = load_tensor(&L, op->tensor_value, NULL, &x))) value_take(e, x);
        } else if (!st && op->sequence_value) {
            st = seq_from_proto(&L, op->sequence_value, e, 1);
        } else if (!st && op->map_value) {
            st = map_from_proto(&L, op->map_value, e);
        }
        if (!st && e) t->dtype = e->dtype;
        name = op->name;
        if (!st && name && !(t->name = onr_strdup(name)))
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        onnx__optional_proto__free_unpacked(op, NULL);
    }
    if (!st && !t->name && !(t->name = onr_strdup(""))) st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
    if (st) {
        onr_tensor_free(t);
        return st;
    }
    *out = t;
    return ONR_OK;
}

/* Wire format by hand: a container is a name, an elem_type and its
 * elements, each a length-delimited TensorProto / SequenceProto. */
typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
    int oom;
} wbuf;

static void wb_raw(wbuf *w, const void *p, size_t n)
{
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t cap = (w->cap + n) * 2;
        uint8_t *b = realloc(w->b, cap);
        if (!b) {
            w->oom = 1;
            return;
        }
        w->b = b;
        w->cap = cap;
    }
    if (n) memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void wb_varint(wbuf *w, uint64_t v)
{
    uint8_t b[10];
    int k = 0;
    do {
        b[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    wb_raw(w, b, (size_t)k);
}

static void wb_bytes(wbuf *w, int field, const void *p, size_t n)
{
    wb_varint(w, (uint64_t)field << 3 | 2);
    wb_varint(w, n);
    wb_raw(w, p, n);
}

static int seq_to_wire(const onr_tensor *t, const char *name, wbuf *w, onr_err *err);

/* A map as a MapProto: key_type, the keys (int64 field 3 or string_keys
 * 4) and a SequenceProto of one TensorProto per key (row i of values). */
static int map_to_wire(const onr_tensor *m, const char *name, wbuf *w, onr_err *err)
{
    const onr_tensor *keys = onr_map_keys_of(m), *vals = onr_map_values_of(m);
    if (name && *name) wb_bytes(w, 1, name, strlen(name));
    wb_varint(w, 2 << 3);
    wb_varint(w, (uint64_t)keys->dtype);
    for (int64_t i = 0; i < keys->numel; i++) {
        if (keys->dtype == ONR_STRING) {
            const char *k = ((char *const *)keys->data)[i] ? ((char *const *)keys->data)[i] : "";
            wb_bytes(w, 4, k, strlen(k));
        } else {
            wb_varint(w, 3 << 3);
            wb_varint(w, (uint64_t)onr_map_key_i64(keys, i));
        }
    }
    wbuf seq = {0};
    wb_varint(&seq, 2 << 3);
    wb_varint(&seq, PB_ELEM_TENSOR);
    onr_tensor row = {0}; /* a view of value i: dims[1..] of values, not owned */
    row.dtype = vals->dtype;
    row.rank = vals->rank - 1;
    row.numel = 1;
    for (int d = 1; d < vals->rank; d++) row.dims[d - 1] = vals->dims[d], row.numel *= vals->dims[d];
    size_t esz = vals->dtype == ONR_STRING ? sizeof(char *) : onr_dtype_size(vals->dtype);
    int st = ONR_OK;
    for (int64_t i = 0; i < keys->numel && !st; i++) {
        uint8_t *b = NULL;
        size_t n = 0;
        row.data = (char *)vals->data + (size_t)i * (size_t)row.numel * esz;
        if (!(st = onr_save_tensor_pb(&row, "", &b, &n, err))) wb_bytes(&seq, 3, b, n);
        free(b);
    }
    if (!st) wb_bytes(w, 5, seq.b, seq.n);
    if (!st && (seq.oom || w->oom)) st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
    free(seq.b);
    return st;
}

static int elem_to_wire(const onr_tensor *e, int field, wbuf *w, onr_err *err)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int st;
    if (e->kind == ONR_VALUE_SEQUENCE || e->kind == ONR_VALUE_MAP) {
        wbuf sub = {0};
        st = e->kind == ONR_VALUE_MAP ? map_to_wire(e, "", &sub, err) : seq_to_wire(e, "", &sub, err);
        if (!st && sub.oom) st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        b = sub.b, n = sub.n;
    } else {
        st = onr_save_tensor_pb(e, "", &b, &n, err);
    }
    if (!st) wb_bytes(w, field, b, n);
    free(b);
    return st;
}

static int seq_to_wire(const onr_tensor *t, const char *name, wbuf *w, onr_err *err)
{
    /* a sequence of tensors, or of maps (elem_type MAP, map_values) */
    int maps = t->numel > 0 && onr_value_item(t, 0)->kind == ONR_VALUE_MAP;
    if (name && *name) wb_bytes(w, 1, name, strlen(name));
    wb_varint(w, 2 << 3);
    wb_varint(w, maps ? PB_ELEM_MAP : PB_ELEM_TENSOR);
    for (int64_t i = 0; i < t->numel; i++) {
        const onr_tensor *e = onr_value_item(t, i);
        if (e->kind != (maps ? ONR_VALUE_MAP : ONR_VALUE_TENSOR))
            return onr_seterr(err, ONR_E_UNSUPPORTED,
                              "sequence element %lld: only sequences of tensors or of maps are written",
                              (long long)i);
        int st = elem_to_wire(e, maps ? 6 : 3, w, err);
        if (st) return st;
    }
    return w->oom ? onr_seterr(err, ONR_E_NOMEM, "out of memory") : ONR_OK;
}

onr_status onr_save_value_pb(const onr_tensor *t, const char *name, uint8_t **out, size_t *len,
                             onr_err *err)
{
    if (!t->kind) return onr_save_tensor_pb(t, name, out, len, err);
    wbuf w = {0};
    int st;
    if (t->kind == ONR_VALUE_SEQUENCE) {
        st = seq_to_wire(t, name, &w, err);
    } else if (t->kind == ONR_VALUE_MAP) {
        st = map_to_wire(t, name, &w, err);
    } else {
        const onr_tensor *e = t->numel > 0 ? onr_value_item(t, 0) : NULL;
        int ek = e ? e->kind : ONR_VALUE_TENSOR;
        if (name && *name) wb_bytes(&w, 1, name, strlen(name));
        wb_varint(&w, 2 << 3);
        wb_varint(&w, ek == ONR_VALUE_SEQUENCE ? PB_ELEM_SEQUENCE
                      : ek == ONR_VALUE_MAP    ? PB_ELEM_MAP
                                               : PB_ELEM_TENSOR);
        st = e ? elem_to_wire(e, ek == ONR_VALUE_SEQUENCE ? 5 : ek == ONR_VALUE_MAP ? 6 : 3, &w, err)
               : ONR_OK;
        if (!st && w.oom) st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    if (st) {
        free(w.b);
        return st;
    }
    *out = w.b ? w.b : malloc(1);
    *len = w.n;
    return *out ? ONR_OK : onr_seterr(err, ONR_E_NOMEM, "out of memory");
}

/* A ProtobufCBuffer that appends to a FILE (raw data goes straight from
 * the tensor to the file: no serialized copy of a large output). */
typedef struct file_buf {
    ProtobufCBuffer base;
    FILE *f;
    int bad;
} file_buf;

static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buf *fb = (file_buf *)b;
    if (!fb->bad && len && fwrite(data, 1, len, fb->f) != len) fb->bad = 1;
}

onr_status onr_write_value_pb(const onr_tensor *t, const char *name, FILE *f, onr_err *err)
{
    if (t->kind) { /* containers: serialized in memory first */
        uint8_t *b;
        size_t len;
        onr_status st = onr_save_value_pb(t, name, &b, &len, err);
        if (st) return st;
        int ok = fwrite(b, 1, len, f) == len;
        free(b);
        return ok ? ONR_OK : onr_seterr(err, ONR_E_IO, "write failed");
    }
    Onnx__TensorProto tp;
    ProtobufCBinaryData *strs = NULL;
    uint8_t *packed = NULL;
    onr_status st = tensor_proto_of(t, name, &tp, &strs, &packed, err);
    if (st) return st;
    file_buf fb = {.base = {.append = file_append}, .f = f};
    onnx__tensor_proto__pack_to_buffer(&tp, &fb.base);
    free(strs);
    free(packed);
    return fb.bad ? onr_seterr(err, ONR_E_IO, "write failed") : ONR_OK;
}
