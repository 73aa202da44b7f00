/*
 * ir.h - onnx-run's internal representation: tensors, values, nodes, graphs.
 *
 * The loader builds it from protobuf; shape inference, the planner and the
 * executor read and rewrite it. Nothing here knows about protobuf-c.
 */
#ifndef ONR_IR_H
#define ONR_IR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxrun.h"

/* ---- errors ----------------------------------------------------------- */

/* An error with its message. Functions that can fail take an onr_err * and
 * return an onr_status; onr_seterr() records the first detail and returns
 * the code so callers can write `return onr_seterr(err, ...)`. */
typedef struct onr_err {
    onr_status code;
    char msg[1024];
} onr_err;

onr_status onr_seterr(onr_err *e, onr_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with context ("node 'x' (Add): ..."). */
void onr_err_prefix(onr_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- size limits -------------------------------------------------------- */

/* Largest tensor in bytes onnx-run will allocate: half the physical memory,
 * read at run time. Shape functions check every new shape against it so a
 * hostile dim fails with a message instead of an enormous allocation. */
uint64_t onr_max_tensor_bytes(void);
/* numel of dims[0..rank) with overflow and limit checks; ONR_OK or ONR_E_NOMEM/MODEL. */
onr_status onr_dims_numel(const int64_t *dims, int rank, onr_dtype dt, int64_t *numel,
                          onr_err *err);

/* Counts a model declares, bounded so that nothing sized by them (tables,
 * index arrays, messages) can grow without limit; beyond them a model is
 * refused at load with the limit named. Far above any real model: the
 * widest Concat/Sum in exported models has a few hundred inputs. */
#define ONR_MAX_NODE_IO 65536  /* inputs, and outputs, of one node */
#define ONR_MAX_GRAPH_IO 65536 /* inputs, and outputs, of one graph */
#define ONR_MAX_OPSET_IMPORTS 256  /* opset imports of the model, or of one function */

/* ---- names (names.c) ------------------------------------------------------
 * Hashes keyed at process start (SipHash-1-3), so names a model chooses
 * cannot be crafted to collide. */
uint64_t onr_hash_bytes(const void *p, size_t len);
uint64_t onr_hash_str(const char *s);
/* The fuzz harness only, before it opens any session: a fixed key, so the
 * hash tables probe the same way in every process and a fixed-seed fuzz
 * run takes the same path for longer (with a random key, CI's smoke run
 * took a path no local run had). Never for a process that opens models it
 * did not make: a known key lets names be crafted to collide. */
void onr_hash_fix_key(uint64_t k0, uint64_t k1);

/* A name -> id table (open addressing); key(ctx, id) gives id's name, which
 * must stay valid while the table is used. Zero-initialise with key and ctx. */
typedef struct onr_names {
    int *slots; /* id + 1; 0 = empty */
    size_t cap, used;
    const char *(*key)(const void *ctx, int id);
    const void *ctx;
} onr_names;
/* The id put under name, or -1. */
int onr_names_find(const onr_names *m, const char *name);
/* Adds id; callers find first to keep names unique. 0, or -1 out of memory. */
int onr_names_put(onr_names *m, int id);
void onr_names_free(onr_names *m);

/* ---- tensors ---------------------------------------------------------- */

/* A runtime value is a tensor or a container (onr_kind, onnxrun.h):
 *   sequence: rank 1, dims[0] = numel = its length, data = onr_tensor *[n]
 *             (heap values, freed with the container when it owns them),
 *             dtype = the elements' type (ONR_UNDEFINED when not known);
 *             the elements are tensors, or maps (ZipMap's seq(map));
 *   optional: the same with 0 (absent) or 1 element, itself a tensor, a
 *             sequence or a map; dtype = the element's type;
 *   map:      the same with exactly 2 slots: [0] the keys (a 1-D tensor of
 *             an integer type or STRING, no key twice), [1] the values (a
 *             tensor whose dim 0 is the key count); dtype = the values'
 *             type. onr_map_check states the rules, onr_map_alloc makes one.
 * Containers never live in the arena: the ops making them are
 * ONR_OP_DYNAMIC_OUT, and a view of one (Identity) shares its data.
 *
 * Values in containers are immutable and shared, so a sequence op never
 * copies more than the elements it makes (a Loop appending to a carried
 * sequence is O(element) per iteration, not O(sequence)):
 *  - a container's slots live in one reference-counted block (onr_slots);
 *    data points at its slot[] array, so onr_value_item reads it directly.
 *    A container value is (block, numel): any number of values may read
 *    prefixes of one block. Copying a container (onr_value_copy) takes a
 *    reference on its block: O(1).
 *  - appending to a value whose length is the block's `used` count claims
 *    the next free slot in place (an atomic compare-and-swap, so values
 *    shared between threads stay safe); every other value of the block
 *    still reads only its own prefix. A full block or a value that is not
 *    the longest gets a new block twice the size (amortized O(1)).
 *  - an element (a heap value in a slot) carries a count of its extra
 *    owners (refs): blocks share elements when an op builds a new block
 *    from an old one (SequenceErase, an insertion in the middle).
 * Nothing may write into a slot or an element after the value is made;
 * only onr_value_share / onr_value_unref touch refs (a struct copy of a
 * tensor carries a stale count that nothing reads). */
struct onr_tensor {
    uint8_t kind; /* onr_kind: ONR_VALUE_TENSOR (0), _SEQUENCE, _OPTIONAL */
    onr_dtype dtype;
    int rank;
    int64_t dims[ONR_MAX_RANK];
    int64_t numel;
    void *data;   /* contiguous row-major; STRING: char *[numel] */
    size_t cap;   /* bytes allocated when owned */
    uint8_t owns; /* data freed with the tensor */
    char *name;   /* optional, for tensors read from or written to files */
    uint32_t refs; /* a container's element: owners beyond the first (atomic
                      builtins; onr_value_share / onr_value_unref only) */
    /* A weight not copied yet (data NULL): its bytes, misaligned for its
     * element type, in one of the model's mappings. The loader leaves big
     * misaligned weights so (onr_tensor_materialize); the planner copies
     * each one just before something reads it, so that a weight an
     * operator packs at create is copied, packed and freed in turn, and
     * one that nothing reads any more is never copied. */
    const void *lazy;
};

/* The slot block of a container (see above). refs and used are accessed
 * with atomic builtins; cap never changes. */
typedef struct onr_slots {
    uint32_t refs;       /* owners beyond the first */
    int64_t used;        /* slots [0, used) hold values the block owns */
    int64_t cap;         /* slots allocated (those past used are NULL) */
    onr_tensor *slot[];  /* a container's data points here */
} onr_slots;

/* Fill shape fields; validates dims and limits. Does not touch data. */
onr_status onr_tensor_set_shape(onr_tensor *t, onr_dtype dt, int rank, const int64_t *dims,
                                onr_err *err);
/* Make sure t owns at least numel*size bytes (reuses capacity). */
onr_status onr_tensor_alloc(onr_tensor *t, onr_err *err);
/* Release data (if owned) and name; leaves a zeroed tensor. */
void onr_tensor_clear(onr_tensor *t);
/* Deep copy into a new heap tensor. */
onr_tensor *onr_tensor_clone(const onr_tensor *src);
/* Bytes of data (0 for strings and containers). */
size_t onr_tensor_nbytes(const onr_tensor *t);
/* Make t an empty owned container of `kind` with n NULL slots (whatever it
 * held is released first); fill the slots with heap values. */
onr_status onr_value_container(onr_tensor *t, int kind, onr_dtype elem, int64_t n, onr_err *err);
/* Slot i of a container. */
static inline onr_tensor *onr_value_item(const onr_tensor *t, int64_t i)
{
    return ((onr_tensor **)t->data)[i];
}
/* t (tensor or container) becomes an owned copy of src: a tensor's data
 * is copied; a container shares src's slot block (O(1), see above). */
onr_status onr_value_copy(onr_tensor *t, const onr_tensor *src, onr_err *err);
/* One more owner of heap element e (returned; NULL stays NULL). */
onr_tensor *onr_value_share(onr_tensor *e);
/* Drop one owner of heap element e: freed with its last owner. */
void onr_value_unref(onr_tensor *e);
/* y (a container output, whatever it held is released) becomes sequence
 * s with heap element e (y takes e's ownership, also on failure) inserted
 * at pos in [0, numel]: in place in s's block when appending to its
 * longest value, else a new block sharing s's elements. */
onr_status onr_seq_insert(onr_tensor *y, const onr_tensor *s, int64_t pos, onr_tensor *e,
                          onr_err *err);
/* y becomes sequence s without element pos (a prefix of s's block when pos
 * is the last; else a new block sharing the others). */
onr_status onr_seq_erase(onr_tensor *y, const onr_tensor *s, int64_t pos, onr_err *err);
/* Slots copied into new blocks and tensors copied into new elements by
 * the functions above and the sequence ops, since the process started
 * (tests: what an appending Loop costs per iteration). */
uint64_t onr_seq_copy_count(void);
/* Count n more of those copies. */
void onr_seq_count_copies(uint64_t n);

/* ---- maps (ir.c) ---- */
/* 1 for a type a map key may have: an integer type or STRING. */
int onr_map_key_type_ok(onr_dtype dt);
/* keys and values form a valid map: keys 1-D of a key type, values of rank
 * >= 1 with dim 0 = the key count, no key twice (checked by sorting a copy:
 * O(n log n), allocates). The message names the offending key. */
onr_status onr_map_check(const onr_tensor *keys, const onr_tensor *values, onr_err *err);
/* Make t an owned map of n entries: keys [n] of `key`, values [n] of `val`,
 * both allocated (zeros / empty strings) for the caller to fill. */
onr_status onr_map_alloc(onr_tensor *t, onr_dtype key, onr_dtype val, int64_t n, onr_err *err);
/* Key i of an integer key tensor as int64 (uint64 keeps its bits). */
int64_t onr_map_key_i64(const onr_tensor *keys, int64_t i);
/* Element i of an integer array of type dt as int64, exactly (uint64 above
 * INT64_MAX wraps); 0 for a type that is not an integer. */
int64_t onr_load_i64(onr_dtype dt, const void *p, int64_t i);
static inline onr_tensor *onr_map_keys_of(const onr_tensor *m) { return onr_value_item(m, 0); }
static inline onr_tensor *onr_map_values_of(const onr_tensor *m) { return onr_value_item(m, 1); }

/* fp16/bf16 conversion. */
float onr_half_to_float(uint16_t h);
uint16_t onr_float_to_half(float f);
float onr_bf16_to_float(uint16_t h);
uint16_t onr_float_to_bf16(float f);

/* 8-, 4- and 2-bit element types (lowp.c; one byte per element in memory,
 * packed in files). */
int onr_dtype_is_lowp(onr_dtype dt); /* float8*, (u)int4, float4e2m1, (u)int2 */
int onr_dtype_bits(onr_dtype dt);    /* bits per element in files */
/* The value of one element's byte. */
double onr_lowp_to_f64(onr_dtype dt, uint8_t v);
/* v as an element of dt: floats round to nearest even and overflow to the
 * largest value (saturate, and always for float4e2m1) or to inf/NaN;
 * integers round to nearest even and clamp (NaN gives 0). */
uint8_t onr_f64_to_lowp(onr_dtype dt, double v, int saturate);
/* v as float8e8m0 (Cast-24's rules: through float32, sign ignored, the
 * power of two below (down), above (up: the default) or nearest (ties up);
 * see lowp.c for zero, infinity and the range ends). onr_f64_to_lowp uses
 * ONR_E8M0_UP. */
enum { ONR_E8M0_UP, ONR_E8M0_DOWN, ONR_E8M0_NEAREST };
uint8_t onr_f64_to_e8m0(double v, int saturate, int round_mode);
/* Bytes n elements of dt take packed; pack / unpack them. */
size_t onr_lowp_packed_bytes(onr_dtype dt, int64_t n);
void onr_lowp_pack(onr_dtype dt, const uint8_t *src, int64_t n, uint8_t *dst);
void onr_lowp_unpack(onr_dtype dt, const uint8_t *src, int64_t n, uint8_t *dst);

/* ---- attributes --------------------------------------------------------- */

typedef enum onr_attr_type {
    ONR_ATTR_UNDEFINED = 0,
    ONR_ATTR_FLOAT = 1,
    ONR_ATTR_INT = 2,
    ONR_ATTR_STRING = 3,
    ONR_ATTR_TENSOR = 4,
    ONR_ATTR_GRAPH = 5,
    ONR_ATTR_FLOATS = 6,
    ONR_ATTR_INTS = 7,
    ONR_ATTR_STRINGS = 8,
    ONR_ATTR_TENSORS = 9,
    ONR_ATTR_GRAPHS = 10,
    ONR_ATTR_SPARSE_TENSOR = 11,
    ONR_ATTR_SPARSE_TENSORS = 12,
    ONR_ATTR_TYPE_PROTO = 13,
    ONR_ATTR_TYPE_PROTOS = 14
} onr_attr_type;

struct onr_graph;

typedef struct onr_attr {
    char *name;
    onr_attr_type type;
    float f;
    int64_t i;
    char *s; /* NUL-terminated copy; slen gives the byte length */
    size_t slen;
    onr_tensor *t;
    struct onr_graph *g;
    size_t n; /* element count of the list forms below */
    float *floats;
    int64_t *ints;
    char **strings;
    onr_tensor **tensors;
    struct onr_graph **graphs;
} onr_attr;

/* ---- values, nodes, graphs ---------------------------------------------- */

typedef struct onr_value {
    char *name;
    onr_dtype dtype;            /* ONR_UNDEFINED when unknown */
    int rank;                   /* -1 when unknown */
    int64_t dims[ONR_MAX_RANK]; /* -1 when symbolic or unknown */
    char *dim_names[ONR_MAX_RANK]; /* symbolic name or NULL */
    onr_tensor *konst;          /* initializer or folded constant, else NULL */
    int producer;               /* node index, -1 for inputs/initializers */
    uint8_t is_input;           /* graph input not backed by an initializer */
    uint8_t is_output;
    uint8_t is_initializer;
    uint8_t is_outer;           /* subgraph reference to an outer-scope value */
    /* declared kind (onr_kind): a tensor, or a sequence / optional whose
     * element type is dtype; elem_kind: an optional's element (tensor or
     * sequence) */
    uint8_t kind, elem_kind;
    onr_dtype key_dtype;        /* a declared map's key type (or of the maps a
                                   sequence / optional holds), else UNDEFINED */
} onr_value;

struct onr_op;

typedef struct onr_node {
    char *name;
    char *op_type;
    char *domain; /* "" for ai.onnx */
    int n_in, n_out;
    int *inputs;  /* value indices; -1 for an omitted optional input */
    int *outputs; /* value indices; -1 for an omitted optional output */
    int n_attr;
    onr_attr *attrs;
    int64_t opset;          /* opset version of the node's domain */
    const struct onr_op *op; /* registry entry, NULL until resolved */
    /* set by the planner on a node a fusion made: how many of the loaded
     * graph's nodes it replaces and their names ("op_type 'name'", joined
     * by ", "); 0 / NULL for every node of a loaded graph */
    int n_fused;
    char *fused_from;
} onr_node;

typedef struct onr_graph {
    char *name;
    int n_values, cap_values;
    onr_value *values;
    int n_nodes;
    onr_node *nodes;
    int n_inputs, n_outputs;
    int *inputs;  /* values of graph inputs without an initializer, in order */
    int *outputs;
    struct onr_graph *parent; /* enclosing graph for subgraphs */
} onr_graph;

typedef struct onr_opset {
    char *domain;
    int64_t version;
} onr_opset;

typedef struct onr_model {
    int64_t ir_version;
    char *producer;
    int n_opsets;
    onr_opset *opsets;
    onr_graph *graph;
    /* memory maps of external-data files, released with the model */
    int n_maps;
    struct onr_map {
        void *addr;
        size_t len;
        uint64_t dev, ino;
    } *maps;
} onr_model;

void onr_model_free(onr_model *m);
void onr_graph_free(onr_graph *g);

/* Let go of a weight's data once nothing reads it any more (the planner
 * calls it for an initializer an operator has packed into its own layout):
 * owned data is freed; data read in place from one of the model's mappings
 * (the model file or an external-data file) gives back the whole pages
 * strictly inside it (madvise MADV_DONTNEED; the mapping stays valid). Either
 * way t->data becomes NULL and t->owns 0, while dtype, dims and numel stay,
 * so the shape is still known. A released tensor (data NULL, numel > 0) may
 * be cleared, freed, cloned (the clone is released too) or released again. */
void onr_model_release_data(onr_model *m, onr_tensor *t);
/* A lazy weight (t->lazy set, data NULL): copy its bytes into owned,
 * aligned memory now and give the mapping's pages back; t->lazy becomes
 * NULL. Nothing to do for any other tensor. ONR_E_NOMEM when the copy
 * cannot be allocated (t stays lazy). */
onr_status onr_tensor_materialize(onr_tensor *t, onr_err *err);
/* Lazy weights copied so far, in this process (tests). */
size_t onr_lazy_copy_count(void);
/* onr_tensor_new without zeroing the buffer (every element is written by
 * the caller: a fresh buffer's pages cost at load when touched twice). */
onr_tensor *onr_tensor_new_uninit(onr_dtype dt, int rank, const int64_t *dims);
/* Copy n bytes out of one of the model's read-only mappings in chunks,
 * giving the source's pages back as it goes (onr_pages_drop), so that a big
 * weight is never resident twice. */
void onr_copy_from_mapping(void *dst, const void *src, size_t n);
/* madvise(MADV_DONTNEED) the whole pages strictly inside [p, p+n) of a
 * read-only file mapping: they leave the resident set, and read again from
 * the file if touched. */
void onr_pages_drop(const void *p, size_t n);
/* Map the pages of [p, p+n) of a read-only file mapping into the process
 * now (madvise MADV_POPULATE_READ, or a read per page where the kernel
 * lacks it), so the first run does not fault them in one by one. */
void onr_pages_populate(const void *p, size_t n);

/* Value lookup by name, -1 when absent. Linear; loaders use a hash. */
int onr_graph_find_value(const onr_graph *g, const char *name);
/* Append a value (name copied); returns its index or -1 on no memory. */
int onr_graph_add_value(onr_graph *g, const char *name);
/* Opset version for a domain ("" and "ai.onnx" are the same), 0 if not imported. */
int64_t onr_model_opset(const onr_model *m, const char *domain);

/* Attribute access with defaults. A getter that finds the attribute with
 * another type returns the default and records the mismatch; between
 * onr_attr_check_begin and onr_attr_check_end (around every op's create,
 * in onr_step_create) the first one becomes an error naming the node, the
 * attribute, the type expected and the type given. Checks nest (an If or
 * Loop builds its body's steps inside its own create): begin returns the
 * enclosing check's state and end restores it. */
typedef struct {
    const onr_node *node;
    const onr_attr *attr;
    onr_attr_type want;
} onr_attr_check_state;
onr_attr_check_state onr_attr_check_begin(void);
/* Attribute `name` of n when it has type `want`; NULL when absent, and NULL
 * with the mismatch recorded when present with another type. */
const onr_attr *onr_attr_get(const onr_node *n, const char *name, onr_attr_type want);
onr_status onr_attr_check_end(onr_err *err, onr_attr_check_state outer);
const onr_attr *onr_node_attr(const onr_node *n, const char *name);
int64_t onr_attr_int(const onr_node *n, const char *name, int64_t def);
float onr_attr_float(const onr_node *n, const char *name, float def);
const char *onr_attr_string(const onr_node *n, const char *name, const char *def);
/* Pointer to the ints list (NULL and *count = 0 when absent). */
const int64_t *onr_attr_ints(const onr_node *n, const char *name, size_t *count);
const float *onr_attr_floats(const onr_node *n, const char *name, size_t *count);

/* Small helpers shared by everything. */
char *onr_strdup(const char *s);
/* 64-byte aligned memory for a buffer (free with free()); from 2 MiB up it
 * is aligned to 2 MiB and the kernel is asked for transparent huge pages,
 * so packing weights or filling an arena faults 512 times less. NULL when
 * out of memory. */
void *onr_alloc_aligned(size_t bytes);
/* memset(p, 0, n); from 4 MiB up in nt contiguous parts on nt threads (at
 * most one per 2 MiB), so that a fresh buffer's pages fault in, and are
 * cleared by the kernel, on every thread's CPU at once: at open, that
 * clearing is most of the time on the project's VMs (UNet: the arena's 42
 * MB and Winograd's 115 MB of transformed weights). */
void onr_zero_parallel(void *p, size_t n, int nt);
#define ONR_ZERO_PARALLEL_MIN ((size_t)4 << 20) /* the size it splits from */
char *onr_strndup(const char *s, size_t n);
/* Replace the string owned by *slot with a copy of s (NULL: ""); 0, or -1
 * when out of memory (then *slot is unchanged). */
int onr_str_assign(char **slot, const char *s);
/* Format dims as "[1,3,224,224]" into buf. */
const char *onr_fmt_dims(char *buf, size_t len, const int64_t *dims, int rank);

#endif
