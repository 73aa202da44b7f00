/*
 * onnxrun.h - the public C API of onnx-run, an ONNX model executor for CPUs.
 *
 * Everything here is prefixed onr_. Handles are opaque. Every call that can
 * fail returns an onr_status; the message that goes with a failure is read
 * with onr_session_errmsg() (or written to the caller's buffer for calls that
 * have no session). The library never prints and never exits on its own.
 *
 * Threads. One session may be run from several threads at once, as may
 * different sessions. The loaded model, its weights (in the mapped file or
 * packed once for the kernels) and the plan are shared read-only; what a
 * run changes (activations and their arena, scratch, the kernels' shape
 * state, bound inputs, outputs, cancel flag, profile) lives in a plan
 * instance. A session keeps a pool of them: the first is made at open,
 * another when a run starts while all are busy (at most one per caller
 * running at the same time, up to 256; more callers wait), and each is
 * reused afterwards. Extra instances copy no weights: each costs its own
 * activation arena and the kernels' small state (see README, "Threads").
 *
 * Safe at any time, from any thread, on one session: onr_session_run,
 * onr_session_run_into, onr_run_new/exec/free and the onr_run calls on
 * one's own context, onr_session_cancel (every run in progress on the
 * session), onr_session_set_profiling (from the next run on),
 * onr_session_errmsg, and the calls that read model facts (counts,
 * *_info, the step descriptions, plan memory, step times).
 *
 * What is not per call: onr_session_output and onr_session_take_output
 * show the outputs of the last onr_session_run/_run_into to finish, and
 * stay valid only until the next run on the session starts; likewise
 * onr_session_errmsg gives the message of the last run to finish. They
 * are for a session run from one thread at a time (or runs the caller
 * orders). Concurrent callers get their results per call instead: with
 * onr_session_run_into into their own output tensors (the status is the
 * call's own), or with an onr_run context, which has its own outputs,
 * message, cancel and profile. onr_session_free must not overlap any
 * other call on the session; an onr_run must be freed before its session.
 * A tensor given as an input is only read, so the same input tensors may
 * feed several runs at once. Options are not kept by onr_session_open*:
 * one onr_options may open sessions in several threads while none
 * changes it. Kernels use OpenMP inside each run, with the session's
 * thread count: N concurrent runs use up to N times that many threads.
 *
 * Waiting threads. Between parallel regions OpenMP's workers wait, and how
 * is decided once, when the OpenMP runtime starts (libgomp: at load, from
 * OMP_WAIT_POLICY and GOMP_SPINCOUNT); a library cannot change it later.
 * libgomp's default spins for milliseconds: on a CPU shared with other
 * processes a spinning worker is preempted while "running" and every region
 * then waits a scheduler time slice for it (runs 2-20x slower than on one
 * thread). Sleeping workers (OMP_WAIT_POLICY=passive) never do that but pay
 * a wake-up per region (ResNet-50 at 2 threads about 20% slower than with
 * spinning workers on a quiet machine). The onnx-run CLI and the Python
 * package start libgomp with GOMP_SPINCOUNT=onr_gomp_spincount() (a
 * bounded spin, ONR_SPIN_US = 250 us on any CPU, then sleep; no CPU used
 * while a session sits idle between runs) unless the user set
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT. A program embedding the library
 * should do the same: set GOMP_SPINCOUNT to that count (the CLI prints it:
 * onnx-run info --spincount), or OMP_WAIT_POLICY=passive on a host that
 * is always busy, in its environment before it starts, or before it first
 * loads libgomp. The SGEMM core also claims its work in small tasks and, after a
 * product that had to wait for a descheduled thread, runs products on one
 * thread for a while, so results never depend on it (they are identical for
 * every thread count).
 *
 * Typical use:
 *
 *     onr_session *s = NULL;
 *     if (onr_session_open("model.onnx", NULL, &s) != ONR_OK) {
 *         fprintf(stderr, "%s\n", onr_session_errmsg(s));
 *         onr_session_free(s);
 *         return 1;
 *     }
 *     int64_t dims[2] = {1, 3};
 *     onr_tensor *x = onr_tensor_wrap(ONR_FLOAT, 2, dims, my_floats);
 *     if (onr_session_run(s, 1, NULL, (const onr_tensor *const *)&x) == ONR_OK) {
 *         const onr_tensor *y = onr_session_output(s, 0);
 *         ... onr_tensor_data(y) ...
 *     }
 *     onr_tensor_free(x);
 *     onr_session_free(s);
 */
#ifndef ONNXRUN_H
#define ONNXRUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden symbols; what this header declares is
 * what libonnxrun.so exports. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define ONR_VERSION_STRING "0.1.0"

/* Status codes. ONR_E_UNSUPPORTED means the model is valid ONNX but needs an
 * operator, opset or type this build does not implement. */
typedef enum onr_status {
    ONR_OK = 0,
    ONR_E_ARG = 1,         /* bad argument to an API call */
    ONR_E_IO = 2,          /* file cannot be opened, read or mapped */
    ONR_E_MODEL = 3,       /* malformed or invalid model / tensor file */
    ONR_E_UNSUPPORTED = 4, /* op, opset, type or feature not supported */
    ONR_E_INPUT = 5,       /* an input's name, type or shape disagrees with the model */
    ONR_E_NOMEM = 6,       /* allocation failed or a size limit was exceeded */
    ONR_E_RUNTIME = 7      /* a kernel failed while running */
} onr_status;

/* Element types; the values are those of ONNX TensorProto.DataType. */
typedef enum onr_dtype {
    ONR_UNDEFINED = 0,
    ONR_FLOAT = 1,
    ONR_UINT8 = 2,
    ONR_INT8 = 3,
    ONR_UINT16 = 4,
    ONR_INT16 = 5,
    ONR_INT32 = 6,
    ONR_INT64 = 7,
    ONR_STRING = 8,
    ONR_BOOL = 9,
    ONR_FLOAT16 = 10,
    ONR_DOUBLE = 11,
    ONR_UINT32 = 12,
    ONR_UINT64 = 13,
    ONR_COMPLEX64 = 14,
    ONR_COMPLEX128 = 15,
    ONR_BFLOAT16 = 16,
    /* 8-, 4- and 2-bit types (IR 9 to 13). In memory every element takes one
     * byte: float8 bit patterns; int4/int2 sign-extended to int8, uint4/uint2
     * as uint8; float4e2m1 as its 4-bit pattern in the low nibble. Files
     * (.onnx, .pb) pack 4-bit types two and 2-bit types four to a byte. */
    ONR_FLOAT8E4M3FN = 17,
    ONR_FLOAT8E4M3FNUZ = 18,
    ONR_FLOAT8E5M2 = 19,
    ONR_FLOAT8E5M2FNUZ = 20,
    ONR_UINT4 = 21,
    ONR_INT4 = 22,
    ONR_FLOAT4E2M1 = 23,
    ONR_FLOAT8E8M0 = 24,
    ONR_UINT2 = 25,
    ONR_INT2 = 26,
    ONR_DTYPE_COUNT = 27
} onr_dtype;

/* What a value is: a tensor, a sequence (of tensors, or of maps), an
 * optional (a tensor, sequence or map that may be absent), or a map (keys
 * to values, as ai.onnx.ml classifiers use). The values are onnx-run's own. */
typedef enum onr_kind {
    ONR_VALUE_TENSOR = 0,
    ONR_VALUE_SEQUENCE = 1,
    ONR_VALUE_OPTIONAL = 2,
    ONR_VALUE_MAP = 3
} onr_kind;

/* Largest tensor rank onnx-run handles. */
#define ONR_MAX_RANK 12

typedef struct onr_session onr_session;
typedef struct onr_options onr_options;
typedef struct onr_tensor onr_tensor;

/* ---- element types --------------------------------------------------- */

/* "float32", "int64", ...; "undefined" for unknown values. */
const char *onr_dtype_name(onr_dtype t);
/* Bytes per element; 0 for STRING (stored as char *) and unknown types. */
size_t onr_dtype_size(onr_dtype t);
/* Short text for a status code. */
const char *onr_status_name(onr_status s);

/* ---- tensors ---------------------------------------------------------- */

/* A new zero-filled tensor owning its data. NULL on bad dims or no memory. */
onr_tensor *onr_tensor_new(onr_dtype t, int rank, const int64_t *dims);
/* A tensor over caller-owned data (not copied, not freed by onnx-run). The
 * data must stay valid while the tensor is used. STRING is not wrappable. */
onr_tensor *onr_tensor_wrap(onr_dtype t, int rank, const int64_t *dims, void *data);
void onr_tensor_free(onr_tensor *t);

onr_dtype onr_tensor_dtype(const onr_tensor *t);
int onr_tensor_rank(const onr_tensor *t);
const int64_t *onr_tensor_dims(const onr_tensor *t);
int64_t onr_tensor_numel(const onr_tensor *t);
/* Element data, row-major, contiguous. For STRING, an array of char *. */
void *onr_tensor_data(const onr_tensor *t);
/* Name carried by a tensor read from a .pb file (may be ""). */
const char *onr_tensor_name(const onr_tensor *t);

/* Read a serialized TensorProto (.pb) or a NumPy .npy file (chosen by its
 * contents). On failure returns a status and writes a message to msg. */
onr_status onr_tensor_read_file(const char *path, onr_tensor **out, char *msg, size_t msglen);
/* Parse a serialized TensorProto from memory. */
onr_status onr_tensor_read_pb(const void *buf, size_t len, onr_tensor **out, char *msg,
                              size_t msglen);
/* Write a tensor as a serialized TensorProto named `name`. */
onr_status onr_tensor_write_pb(const onr_tensor *t, const char *name, const char *path, char *msg,
                               size_t msglen);

/* ---- sequences and optionals -------------------------------------------
 * A value handed to or returned by a session is an onr_tensor handle of a
 * kind: a tensor (everything above), a sequence of tensors, or an optional
 * (a tensor or a sequence that may be absent). For a sequence or optional,
 * onr_tensor_dtype is its elements' type, and the elements are read with
 * onr_value_element; onr_tensor_free frees a container with its elements. */

onr_kind onr_value_kind(const onr_tensor *v);
/* A sequence's length; an optional's 1 (present) or 0 (absent); a map's
 * entry count; -1 for a tensor. */
int64_t onr_value_count(const onr_tensor *v);
/* Element i of a sequence, or an optional's value (i = 0); NULL when out
 * of range or absent, and for a map (see onr_map_keys). Owned by the
 * container, and read-only: containers share their elements (a run's
 * output sequence may hold its input's elements). */
const onr_tensor *onr_value_element(const onr_tensor *v, int64_t i);
/* A new sequence holding copies of items[0..n) (all of type elem; n may
 * be 0). NULL on bad arguments or no memory. */
onr_tensor *onr_sequence_new(onr_dtype elem, int64_t n, const onr_tensor *const *items);
/* A new optional holding a copy of value (a tensor or a sequence), or
 * absent when value is NULL (of element type elem). */
onr_tensor *onr_optional_new(onr_dtype elem, const onr_tensor *value);
/* Read a serialized value of the given kind: TensorProto (or .npy),
 * SequenceProto, OptionalProto or MapProto. onr_tensor_write_pb writes each
 * kind as its own message. */
onr_status onr_value_read_file(const char *path, onr_kind kind, onr_tensor **out, char *msg,
                               size_t msglen);

/* ---- maps ----------------------------------------------------------------
 * A map is a value of kind ONR_VALUE_MAP: n distinct keys (a 1-D tensor of
 * an integer type or STRING; the ai.onnx.ml operators use INT64 and STRING)
 * and their values (a tensor whose dim 0 is n: value i is row i, a scalar
 * when the tensor is 1-D). onr_tensor_dtype of a map is its values' type;
 * onr_value_count its entry count. A sequence of maps (ZipMap's output) is
 * a sequence whose elements are maps: onr_sequence_new accepts maps as
 * items, all of the same key and value types. */

/* A new map holding copies of keys and values. NULL when keys is not a 1-D
 * integer or string tensor, values' dim 0 differs from the key count, a key
 * repeats, or out of memory. */
onr_tensor *onr_map_new(const onr_tensor *keys, const onr_tensor *values);
/* A map's keys and values (owned by the map); NULL for other kinds. */
const onr_tensor *onr_map_keys(const onr_tensor *m);
const onr_tensor *onr_map_values(const onr_tensor *m);

/* ---- options ---------------------------------------------------------- */

onr_options *onr_options_new(void);
void onr_options_free(onr_options *o);
/* Threads used by kernels; 0 (default) means the number of online CPUs.
 * Counts above ONR_MAX_THREADS are taken as ONR_MAX_THREADS. */
#define ONR_MAX_THREADS 1024
/* How long the CLI's and the Python package's idle OpenMP workers spin
 * before they sleep (see "Waiting threads" above), in microseconds. 250
 * rather than 60: a worker that waits longer than the spin at the end of
 * an unevenly split region sleeps, and its wake-up (a cross-CPU interrupt
 * in a VM) costs more than the wait; BERT-base at 2 threads ran 3.5-6 %
 * faster (Intel Xeon VM, session 19), ResNet-18 3 %, and with 1 or 4 CPU
 * hogs on 2 cores 2 threads stayed within 1.01 of 1 thread (0.94 with 4). */
#define ONR_SPIN_US 250
/* The GOMP_SPINCOUNT for ONR_SPIN_US on this CPU: libgomp spins one PAUSE
 * per count, whose latency differs several-fold between CPUs (11 ns on an
 * Intel Xeon with AMX, about 30 ns on AMD Zen 5), so it is measured here
 * (0.1-0.3 ms). It must be in the environment before libgomp starts. */
long onr_gomp_spincount(void);
void onr_options_set_threads(onr_options *o, int n);
/* Enable (1, default) or disable (0) the planner's graph fusions. */
void onr_options_set_fuse(onr_options *o, int on);
/* Directory against which external-data locations are resolved for models
 * opened from memory (models opened from a path use that path's directory). */
void onr_options_set_base_dir(onr_options *o, const char *dir);
/* The session's memory budget in bytes: the weights held in memory, the
 * activation arena, scratch, graph outputs and what kernels allocate while
 * running (outputs sized at run time, sequences, string payloads) count
 * against it, and a model that would pass it is refused before the
 * allocation with ONR_E_NOMEM and a message naming the value and the bytes
 * ("value 'x' needs 4.0 GiB; the session's memory budget is 2.0 GiB,
 * 1.2 GiB in use"): at open when its shapes are static, else at run.
 * 0 (default): 90 % of the memory available when the session opens
 * (MemAvailable, lowered to a cgroup limit or RLIMIT_AS); < 0: no limit. */
void onr_options_set_memory_limit(onr_options *o, int64_t bytes);

/* ---- sessions --------------------------------------------------------- */

/* Load a model and prepare it to run. *out is set even on failure (unless
 * no memory at all), so the error message can be read; free it always. */
onr_status onr_session_open(const char *path, const onr_options *opt, onr_session **out);
/* The same from a serialized ModelProto in memory; the buffer is copied. */
onr_status onr_session_open_memory(const void *buf, size_t len, const onr_options *opt,
                                   onr_session **out);
void onr_session_free(onr_session *s);
/* Message of the failed open, or of the last run on this session to finish
 * ("" if it succeeded). The string is a copy for the calling thread, valid
 * until that thread's fourth next call of onr_session_errmsg. */
const char *onr_session_errmsg(const onr_session *s);
int onr_session_threads(const onr_session *s);

/* Declared graph inputs (those not backed by an initializer) and outputs. */
typedef struct onr_value_info {
    const char *name;
    onr_dtype dtype;
    int rank;                    /* -1 when the model does not declare a shape */
    const int64_t *dims;         /* -1 for a symbolic or unknown dim */
    const char *const *dim_names; /* symbolic dim name, or NULL, per dim */
    onr_kind kind;               /* a tensor, a sequence, an optional or a map;
                                    for the last three, dtype is the elements'
                                    (a map's values') type */
    onr_kind elem_kind;          /* a sequence's or optional's element kind
                                    (ONR_VALUE_MAP for ZipMap's seq(map)) */
    onr_dtype key_dtype;         /* a map's key type, or that of the maps a
                                    sequence or optional holds; else UNDEFINED */
} onr_value_info;

int onr_session_input_count(const onr_session *s);
int onr_session_output_count(const onr_session *s);
onr_status onr_session_input_info(const onr_session *s, int i, onr_value_info *info);
onr_status onr_session_output_info(const onr_session *s, int i, onr_value_info *info);

/* Run the model. names[i] names the graph input inputs[i] is bound to; with
 * names == NULL inputs bind positionally to the graph inputs. Every graph
 * input must be bound exactly once. Input tensors are read, never kept. */
onr_status onr_session_run(onr_session *s, int n, const char *const *names,
                           const onr_tensor *const *inputs);
/* Stop every run in progress on s (onr_session_run, _run_into and the
 * onr_run contexts of s), from another thread (or a signal handler): each
 * returns ONR_E_RUNTIME ("the run was cancelled") before its next step,
 * or before the next iteration of a Loop or Scan, at any nesting depth.
 * This is how to bound a model whose Loop has neither a trip count M nor a
 * condition that ends it, or one that ends only by its condition: run it
 * in a thread and cancel it after the time you allow. Each run starts
 * uncancelled, so a run that starts after this call is not stopped. No
 * effect when no run is going on. onr_run_cancel stops one context's run. */
void onr_session_cancel(onr_session *s);
/* The same, writing outputs into the caller's memory. outputs[k] (k < n_out)
 * receives graph output k, or the output named out_names[k] when out_names
 * is not NULL; a NULL entry leaves that output to the session, as
 * onr_session_run does. A tensor given must have the output's element type
 * and exactly the shape this run gives it (onr_tensor_wrap over the
 * caller's buffer, or onr_tensor_new); otherwise the run fails with
 * ONR_E_INPUT naming the output and both shapes. The step that computes
 * the output writes straight into it; an output that is a graph input or a
 * constant is copied into it. Afterwards onr_session_output(s, i) shows the
 * caller's memory (until the next run). STRING outputs cannot be bound. The
 * session keeps no pointer to the caller's tensors after the call. When the
 * run fails, the caller's tensors may hold partial results: read them only
 * after ONR_OK (onr_session_output returns NULL after any failed run). */
onr_status onr_session_run_into(onr_session *s, int n, const char *const *names,
                                const onr_tensor *const *inputs, int n_out,
                                const char *const *out_names, onr_tensor *const *outputs);
/* Output i of the last successful run, owned by the session and valid until
 * the next run or onr_session_free (the last run to finish, when several
 * threads run s: see "Threads" above). */
const onr_tensor *onr_session_output(const onr_session *s, int i);
/* The same, but ownership passes to the caller (free with onr_tensor_free).
 * A later call for the same i returns NULL until the next run. */
onr_tensor *onr_session_take_output(onr_session *s, int i);

/* ---- run contexts: per-call state for concurrent callers ----------------
 * An onr_run is one caller's context on a session: runs through it keep
 * their outputs, message and profile apart from every other run, so
 * threads sharing a session each use their own. It holds one of the
 * session's plan instances from its first exec until onr_run_free, so
 * repeated runs at the same shapes reuse their memory as a session does.
 * A context is used by one thread at a time (onr_run_cancel aside). */
typedef struct onr_run onr_run;

/* A context on s; NULL when s has no loaded model or no memory. */
onr_run *onr_run_new(onr_session *s);
/* Gives its instance back to the session (outputs not taken become invalid). */
void onr_run_free(onr_run *r);
/* Run as onr_session_run_into does (outputs may be NULL with n_out 0). */
onr_status onr_run_exec(onr_run *r, int n, const char *const *names,
                        const onr_tensor *const *inputs, int n_out, const char *const *out_names,
                        onr_tensor *const *outputs);
/* Output i of this context's last successful exec, valid until its next
 * exec or onr_run_free; take_output passes ownership (onr_tensor_free). */
const onr_tensor *onr_run_output(const onr_run *r, int i);
onr_tensor *onr_run_take_output(onr_run *r, int i);
/* Message of this context's last exec ("" when it succeeded). */
const char *onr_run_errmsg(const onr_run *r);
/* Stop this context's run in progress (from another thread or a signal
 * handler), as onr_session_cancel does for all. */
void onr_run_cancel(onr_run *r);
/* Step i's duration and start in this context's last exec (profiling on). */
double onr_run_step_ms(const onr_run *r, int i, double *start_ms);

/* ---- model facts (for tools like `onnx-run info`) ---------------------
 * These work once the model has loaded, even when opening failed later with
 * ONR_E_UNSUPPORTED, so a tool can still describe the model. */

int64_t onr_session_ir_version(const onr_session *s);
const char *onr_session_producer(const onr_session *s); /* "name version" */
int onr_session_opset_count(const onr_session *s);
/* Domain ("" for ai.onnx) and version of opset import i. */
const char *onr_session_opset(const onr_session *s, int i, int64_t *version);
/* Nodes of the main graph as loaded (before any folding or fusion). */
int onr_session_node_count(const onr_session *s);
const char *onr_session_node_op(const onr_session *s, int i, const char **domain);
/* Steps of the executable plan after folding/fusion. */
int onr_session_step_count(const onr_session *s);
/* One line describing step i (op, inputs, output shapes) into buf. */
onr_status onr_session_step_describe(const onr_session *s, int i, char *buf, size_t len);
/* Op type and node name of step i (NULL when out of range). */
const char *onr_session_step_op(const onr_session *s, int i, const char **node_name);
/* Steps the plan would have without the fusions (after folding and
 * dead-code elimination): the "before" of `info --plan`. */
int onr_session_unfused_step_count(const onr_session *s);
/* Names of step i's inputs (outputs when `outputs` is 1), "" for an omitted
 * optional one: fills names[0..max) and returns the count (-1 when i is out
 * of range). The names stay valid as long as the session. */
int onr_session_step_values(const onr_session *s, int i, int outputs, const char **names, int max);
/* What step i replaced when a fusion made it: the count of the loaded
 * graph's nodes it stands for (0 for an unfused step), and their list
 * ("Op 'name', ..."; NULL for an unfused step). */
const char *onr_session_step_fused(const onr_session *s, int i, int *n_nodes);
/* Activation memory of the current layout (that of the last run to finish,
 * or the one made at open): the arena's bytes, and the sum
 * of the sizes of the activations it holds (what one buffer each would
 * take). Both 0 before the layout exists (symbolic shapes before a run). */
onr_status onr_session_plan_memory(const onr_session *s, size_t *arena_bytes,
                                   size_t *activation_bytes);

/* The session's memory budget (0: no limit) and the bytes counted against
 * it now. */
onr_status onr_session_memory(const onr_session *s, uint64_t *limit, uint64_t *in_use);

/* ---- profiling ---------------------------------------------------------- */

/* When on, every run records each step's start offset and duration. */
void onr_session_set_profiling(onr_session *s, int on);
/* Duration of step i in the last profiled run to finish, and its start
 * offset from the start of that run, in milliseconds (0 when profiling is
 * off). With concurrent runs, onr_run_step_ms gives one context's. */
double onr_session_step_ms(const onr_session *s, int i, double *start_ms);

/* ---- operators ---------------------------------------------------------- */

/* Registrations of the operators this build implements: each is an op type
 * in a domain ("" is ai.onnx) over a range of opsets. */
int onr_op_count(void);
/* Registration i (0 <= i < onr_op_count()): returns the op type and sets
 * *domain, *since and *until (-1: up to the newest opset, which for the
 * standard domains is the newest the ONNX specification defines); NULL when i is
 * out of range. Any of the out pointers may be NULL. */
const char *onr_op_info(int i, const char **domain, int *since, int *until);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
