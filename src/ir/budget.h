/*
 * budget.h - a session's memory budget: every large buffer the session
 * holds is counted against one limit, and a request that would pass it is
 * refused BEFORE the allocation, with a message that names the value and
 * the bytes ("value 'x' needs 4.0 GiB; the session's memory budget is
 * 2.0 GiB, 1.2 GiB in use").
 *
 * What counts, and when it is checked:
 *  - held for the session's life (onr_budget_take / onr_budget_give):
 *    weights copied out of the model file, the activation arena, the
 *    scratch buffer and the executor's owned buffers (graph outputs). With
 *    static shapes the planner checks their sum at plan time (a layout
 *    done without memory, see plan.c), so such a model is refused at open.
 *  - made while a kernel runs (a run scope, onr_budget_run_*): outputs
 *    sized by run (ONR_OP_DYNAMIC_OUT, onr_out_resize / onr_out_grow),
 *    sequence slots and elements, and string payloads (onr_strdup,
 *    onr_strndup, onr_str_assign and the string arrays of onr_tensor_alloc)
 *    count from the moment they are made until the run ends, freed or not:
 *    an upper bound, never an undercount within one run. The scope is a
 *    thread-local set by the executor around a top-level run; a subgraph's
 *    plan run inside it counts against the same scope.
 *
 * The budget is shared by the runs of one session: `used` is atomic.
 */
#ifndef ONR_BUDGET_H
#define ONR_BUDGET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

typedef struct onr_budget {
    uint64_t limit;        /* bytes; 0: no limit */
    _Atomic uint64_t used; /* bytes held now */
} onr_budget;

/* The default limit: 90 % of the memory available to this process, read
 * now: MemAvailable (/proc/meminfo), lowered to the cgroup's memory.max
 * and the address-space rlimit when those are set; half the physical
 * memory when none can be read. */
uint64_t onr_budget_default(void);

/* Take `take` bytes for value `name` (a buffer of which `value_bytes` are
 * the value's own; they differ for an arena that grows). b NULL: no-op.
 * Refuses with ONR_E_NOMEM and the message above when used + take would
 * pass the limit. */
onr_status onr_budget_take(onr_budget *b, const char *name, uint64_t value_bytes, uint64_t take,
                           onr_err *err);
/* onr_budget_take of bytes held for something other than a value; the
 * refusal reads "<subject> need N; the session's memory budget is ..."
 * (e.g. "its packed weights"). */
onr_status onr_budget_take_as(onr_budget *b, const char *subject, uint64_t bytes, onr_err *err);
void onr_budget_give(onr_budget *b, uint64_t bytes);
/* Whether `bytes` more (after `pending` planned but not yet taken) fit;
 * refuses like onr_budget_take, saying the planned bytes are counted. */
onr_status onr_budget_check(const onr_budget *b, const char *name, uint64_t value_bytes,
                            uint64_t pending, onr_err *err);
/* 0 when the limit would not be passed by taking `bytes` (a quiet check). */
int onr_budget_fits(const onr_budget *b, uint64_t bytes);

/* "4.0 GiB", "512 B" into buf. */
const char *onr_fmt_bytes(char *buf, size_t len, uint64_t n);

/* ---- allocations made while kernels run ---------------------------------- */
typedef struct onr_budget_run {
    onr_budget *b;
    const char *name; /* the value the running step computes */
    uint64_t taken;   /* bytes taken by this run, given back at its end */
    uint64_t name_taken; /* of those, taken by kernels for the value named now */
    onr_err refusal;  /* the first refusal, for the failed step's error */
    int active;
} onr_budget_run;

/* Begin counting this thread's run-time allocations against b (may be
 * NULL: none counted). Returns 0 and does nothing when a run scope is
 * already active on this thread (a subgraph's run: it shares the outer
 * scope); 1 when r became the scope (end it with onr_budget_run_end). */
int onr_budget_run_begin(onr_budget_run *r, onr_budget *b);
void onr_budget_run_end(onr_budget_run *r);
/* Name the value a kernel is computing; while a name is set, the IR's
 * allocation helpers count against the scope (NULL: not counted, the
 * executor's own buffers, taken explicitly). Returns the previous name. */
const char *onr_budget_run_name(const char *name);
/* Take bytes for an allocation a kernel makes now, if a run scope with a
 * name is active: 0, or -1 when refused (err, when not NULL, and the scope
 * get the message). */
int onr_budget_run_take(uint64_t bytes, onr_err *err);
/* For a plan's own buffers: take from b when the plan has a budget (held
 * until given back), else from the active run scope's (given back at the
 * run's end: a subgraph's plan), else nothing. */
onr_status onr_budget_take_any(onr_budget *b, const char *name, uint64_t value_bytes,
                               uint64_t take, onr_err *err);
/* After a failed step: when the budget refused one of its allocations
 * (even one whose failure the kernel reported as a bare "out of memory"),
 * put the refusal's message in err. */
void onr_budget_run_explain(onr_err *err);

#endif
