/*
 * session.c - the public API: options, sessions (load -> plan -> run),
 * input binding with shape checks, outputs, and model facts for tools.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemm/team.h"
#include "ir/budget.h"
#include "load/load.h"
#include "plan/plan.h"

struct onr_options {
    int threads;
    int fuse;
    char *base_dir;
    int64_t memory_limit; /* 0: the default; < 0: none */
};

/* One plan instance of the session's pool (see the header's "Threads"):
 * everything a run changes. The first is made at open; more when callers
 * run at the same time, reused afterwards. */
typedef struct onr_inst {
    onr_plan *plan;
    onr_tensor **outs;         /* per graph output: the plan's buffer, or a copy (see publish) */
    uint8_t *bound;            /* per graph input, while binding */
    onr_tensor **bind;         /* run_into: per graph output, the caller's tensor (or NULL) */
    const onr_tensor **bind_v; /* the same per value of the plan's graph */
    int busy;                  /* a run (or an onr_run) has it; under the session's lock */
} onr_inst;

/* Instances one session makes at most: callers beyond wait for one. */
#define POOL_MAX 256

struct onr_session {
    onr_err err;        /* the failed open, or the last run to finish (under lock) */
    onr_model *model;
    onr_plan *plan;     /* instance 0's: the plan the model facts describe */
    int nthreads;
    onr_names in_names; /* graph input name -> slot, for binding by name */
    pthread_mutex_t lock; /* the pool, out_inst, err after open, profiles */
    pthread_cond_t freed; /* an instance was given back */
    /* the pool: read without the lock by onr_session_cancel (a signal
     * handler may call it), so slots are only appended, never moved */
    onr_inst *_Atomic pool[POOL_MAX];
    _Atomic int n_pool;
    int n_building;       /* instances being made (outside the lock) */
    onr_inst *out_inst;   /* whose outs onr_session_output shows (NULL: none) */
    _Atomic int profiling;
    double *prof_ms, *prof_start_ms; /* the last profiled run's, copied */
    size_t mem_arena, mem_act;       /* onr_session_plan_memory: the last run's layout */
    onr_budget budget;  /* memory budget of the plans (every instance's) and their runs */
};

/* A caller's own run context (onr_run_new): an instance held until freed. */
struct onr_run {
    onr_session *s;
    onr_inst *_Atomic inst; /* taken at the first exec; onr_run_cancel reads it */
    int have_outputs;
    onr_err err;
};

onr_options *onr_options_new(void)
{
    onr_options *o = calloc(1, sizeof *o);
    if (o) o->fuse = 1;
    return o;
}

void onr_options_free(onr_options *o)
{
    if (!o) return;
    free(o->base_dir);
    free(o);
}

void onr_options_set_threads(onr_options *o, int n)
{
    if (o) o->threads = n > 0 ? n : 0;
}

void onr_options_set_fuse(onr_options *o, int on)
{
    if (o) o->fuse = on != 0;
}

void onr_options_set_base_dir(onr_options *o, const char *dir)
{
    if (!o) return;
    free(o->base_dir);
    o->base_dir = dir ? onr_strdup(dir) : NULL;
}

void onr_options_set_memory_limit(onr_options *o, int64_t bytes)
{
    if (o) o->memory_limit = bytes;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static const char *input_name(const void *ctx, int slot)
{
    const onr_graph *g = ((const onr_session *)ctx)->model->graph;
    return g->values[g->inputs[slot]].name;
}

static void inst_free(onr_session *s, onr_inst *in)
{
    if (!in) return;
    if (in->outs)
        for (int i = 0; i < s->model->graph->n_outputs; i++) onr_tensor_free(in->outs[i]);
    free(in->outs);
    free(in->bound);
    free(in->bind);
    free(in->bind_v);
    if (in->plan != s->plan) onr_plan_free(in->plan); /* instance 0's plan goes last */
    free(in);
}

/* A pool entry over plan p (instance 0: s->plan), or over a new instance of
 * it. Touches nothing shared but reads of s->plan, so it runs unlocked. */
static onr_status inst_new(onr_session *s, onr_plan *p, onr_inst **out, onr_err *err)
{
    const onr_graph *g = s->model->graph, *pg = onr_plan_graph(s->plan);
    onr_inst *in = calloc(1, sizeof *in);
    *out = NULL;
    if (!in) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    in->plan = p;
    onr_status st = p ? ONR_OK : onr_plan_instance(s->plan, &in->plan, err);
    if (!st) {
        in->outs = calloc((size_t)g->n_outputs + 1, sizeof *in->outs);
        in->bound = calloc((size_t)g->n_inputs + 1, 1);
        in->bind = calloc((size_t)g->n_outputs + 1, sizeof *in->bind);
        in->bind_v = calloc((size_t)pg->n_values + 1, sizeof *in->bind_v);
        if (!in->outs || !in->bound || !in->bind || !in->bind_v)
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    if (st) {
        inst_free(s, in);
        return st;
    }
    *out = in;
    return ONR_OK;
}

static void lock(const onr_session *s) { pthread_mutex_lock((pthread_mutex_t *)&s->lock); }
static void unlock(const onr_session *s) { pthread_mutex_unlock((pthread_mutex_t *)&s->lock); }

/* Take a free instance (not `avoid`), making one when all are busy and the
 * pool has room; otherwise wait for one to be given back. */
static onr_status acquire(onr_session *s, const onr_inst *avoid, onr_inst **out, onr_err *err)
{
    lock(s);
    for (;;) {
        int n = atomic_load(&s->n_pool), full = n + s->n_building >= POOL_MAX;
        for (int i = 0; i < n; i++) {
            onr_inst *in = atomic_load(&s->pool[i]);
            if (in->busy || (in == avoid && !full)) continue;
            in->busy = 1;
            unlock(s);
            *out = in;
            return ONR_OK;
        }
        if (!full) break;
        pthread_cond_wait(&s->freed, &s->lock);
    }
    s->n_building++;
    unlock(s);
    onr_inst *in = NULL;
    onr_status st = inst_new(s, NULL, &in, err);
    lock(s);
    s->n_building--;
    if (!st) {
        in->busy = 1;
        int n = atomic_load(&s->n_pool);
        atomic_store(&s->pool[n], in);
        atomic_store(&s->n_pool, n + 1);
    }
    pthread_cond_broadcast(&s->freed); /* a waiter may build in the slot left over */
    unlock(s);
    *out = in;
    return st;
}

/* Give an instance back (the lock held). */
static void give_back(onr_session *s, onr_inst *in)
{
    in->busy = 0;
    pthread_cond_signal(&s->freed);
}

static onr_status finish_open(onr_session *s, const onr_options *opt)
{
    s->nthreads = opt && opt->threads > 0 ? opt->threads : default_threads();
    /* a count no machine has is a mistake: OpenMP would fail to make the threads */
    if (s->nthreads > ONR_MAX_THREADS) s->nthreads = ONR_MAX_THREADS;
    int64_t lim = opt ? opt->memory_limit : 0;
    s->budget.limit = lim > 0 ? (uint64_t)lim : lim < 0 ? 0 : onr_budget_default();
    onr_plan_opts po = {.nthreads = s->nthreads, .fuse = opt ? opt->fuse : 1, .budget = &s->budget};
    onr_status st = onr_plan_build(s->model, &po, &s->plan, &s->err);
    if (st) return st;
    onr_plan_memory(s->plan, &s->mem_arena, &s->mem_act);
    onr_inst *in0;
    if ((st = inst_new(s, s->plan, &in0, &s->err))) return st;
    atomic_store(&s->pool[0], in0);
    atomic_store(&s->n_pool, 1);
    s->in_names = (onr_names){.key = input_name, .ctx = s};
    for (int i = 0; i < s->model->graph->n_inputs; i++)
        if (onr_names_put(&s->in_names, i)) return onr_seterr(&s->err, ONR_E_NOMEM, "out of memory");
    onr_team_start(s->nthreads);
    return ONR_OK;
}

static onr_session *session_new(void)
{
    onr_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (pthread_mutex_init(&s->lock, NULL)) {
        free(s);
        return NULL;
    }
    if (pthread_cond_init(&s->freed, NULL)) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

onr_status onr_session_open(const char *path, const onr_options *opt, onr_session **out)
{
    if (!out) return ONR_E_ARG;
    onr_session *s = session_new();
    *out = s;
    if (!s) return ONR_E_NOMEM;
    if (!path) return onr_seterr(&s->err, ONR_E_ARG, "no model path given");
    onr_status st = onr_load_file(path, &s->model, &s->err);
    if (st) return st;
    return finish_open(s, opt);
}

onr_status onr_session_open_memory(const void *buf, size_t len, const onr_options *opt,
                                   onr_session **out)
{
    if (!out) return ONR_E_ARG;
    onr_session *s = session_new();
    *out = s;
    if (!s) return ONR_E_NOMEM;
    if (!buf && len) return onr_seterr(&s->err, ONR_E_ARG, "no model buffer given");
    onr_status st = onr_load_buffer(buf, len, opt ? opt->base_dir : NULL, &s->model, &s->err);
    if (st) return st;
    return finish_open(s, opt);
}

void onr_session_free(onr_session *s)
{
    if (!s) return;
    /* the instances first: they share instance 0's plan (its graph, weights) */
    int n = atomic_load(&s->n_pool);
    for (int i = n - 1; i >= 0; i--) inst_free(s, atomic_load(&s->pool[i]));
    onr_names_free(&s->in_names);
    free(s->prof_ms);
    free(s->prof_start_ms);
    onr_plan_free(s->plan);
    onr_model_free(s->model);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* A copy per call (a few kept per thread), taken under the lock: another
 * thread's run may set the session's message meanwhile. */
const char *onr_session_errmsg(const onr_session *s)
{
    static _Thread_local char ring[4][sizeof(((onr_err *)0)->msg)];
    static _Thread_local unsigned next;
    if (!s) return "out of memory (no session)";
    char *m = ring[next++ % 4];
    lock(s);
    if (s->err.code) snprintf(m, sizeof ring[0], "%s", s->err.msg);
    else m[0] = 0;
    unlock(s);
    return m;
}

int onr_session_threads(const onr_session *s) { return s ? s->nthreads : 0; }

static int ready(const onr_session *s) { return s && s->model && s->plan && atomic_load(&s->n_pool); }
/* Model facts are available once the model loaded, even if planning failed
 * (so `onnx-run info` can describe a model with unsupported ops). */
static int loaded(const onr_session *s) { return s && s->model; }

int onr_session_input_count(const onr_session *s)
{
    return loaded(s) ? s->model->graph->n_inputs : 0;
}

int onr_session_output_count(const onr_session *s)
{
    return loaded(s) ? s->model->graph->n_outputs : 0;
}

static void fill_info(const onr_value *v, onr_value_info *info)
{
    info->name = v->name;
    info->dtype = v->dtype;
    info->rank = v->rank;
    info->dims = v->dims;
    info->dim_names = (const char *const *)v->dim_names;
    info->kind = (onr_kind)v->kind;
    info->elem_kind = (onr_kind)v->elem_kind;
    info->key_dtype = v->key_dtype;
}

onr_status onr_session_input_info(const onr_session *s, int i, onr_value_info *info)
{
    if (!loaded(s) || !info || i < 0 || i >= s->model->graph->n_inputs) return ONR_E_ARG;
    fill_info(&s->model->graph->values[s->model->graph->inputs[i]], info);
    return ONR_OK;
}

onr_status onr_session_output_info(const onr_session *s, int i, onr_value_info *info)
{
    if (!loaded(s) || !info || i < 0 || i >= s->model->graph->n_outputs) return ONR_E_ARG;
    /* the plan's copy carries the shapes inference derived */
    const onr_graph *g = ready(s) ? onr_plan_graph(s->plan) : s->model->graph;
    fill_info(&g->values[g->outputs[i]], info);
    return ONR_OK;
}

static onr_status check_input(onr_err *err, const onr_value *v, const onr_tensor *t,
                              const char **sym_names, int64_t *sym_vals, int *n_sym)
{
    char b1[256], b2[256];
    if (v->kind || t->kind) { /* sequences, optionals and maps: the kind must match */
        static const char *const kinds[] = {"a tensor", "a sequence", "an optional", "a map"};
        int vk = v->kind < 4 ? v->kind : 0, tk = t->kind < 4 ? t->kind : 0;
        if (vk != tk && !(vk == ONR_VALUE_OPTIONAL && !t->kind))
            return onr_seterr(err, ONR_E_INPUT, "input '%s': expected %s, got %s", v->name,
                              kinds[vk], kinds[tk]);
        /* a map, or the maps of a sequence: declared key and value types */
        const onr_tensor *m = tk == ONR_VALUE_MAP ? t : NULL;
        if (tk == ONR_VALUE_SEQUENCE && v->elem_kind == ONR_VALUE_MAP && t->numel > 0) {
            m = onr_value_item(t, 0);
            if (!m || m->kind != ONR_VALUE_MAP)
                return onr_seterr(err, ONR_E_INPUT,
                                  "input '%s': expected a sequence of maps, got one of %s", v->name,
                                  m ? kinds[m->kind < 4 ? m->kind : 0] : "nothing");
        }
        if (m && v->key_dtype != ONR_UNDEFINED && onr_map_keys_of(m)->dtype != v->key_dtype)
            return onr_seterr(err, ONR_E_INPUT, "input '%s': expected map keys of %s, got %s",
                              v->name, onr_dtype_name(v->key_dtype),
                              onr_dtype_name(onr_map_keys_of(m)->dtype));
        if (m && v->dtype != ONR_UNDEFINED && m->dtype != v->dtype && onr_map_keys_of(m)->numel)
            return onr_seterr(err, ONR_E_INPUT, "input '%s': expected map values of %s, got %s",
                              v->name, onr_dtype_name(v->dtype), onr_dtype_name(m->dtype));
        return ONR_OK;
    }
    if (t->dtype == ONR_UNDEFINED || (t->numel > 0 && !t->data))
        return onr_seterr(err, ONR_E_ARG, "input '%s': tensor has no data", v->name);
    if (v->dtype != ONR_UNDEFINED && t->dtype != v->dtype)
        return onr_seterr(err, ONR_E_INPUT, "input '%s': expected %s, got %s", v->name,
                          onr_dtype_name(v->dtype), onr_dtype_name(t->dtype));
    if (v->rank < 0) return ONR_OK;
    if (t->rank != v->rank)
        return onr_seterr(err, ONR_E_INPUT, "input '%s': expected rank %d %s, got rank %d %s",
                          v->name, v->rank, onr_fmt_dims(b1, sizeof b1, v->dims, v->rank),
                          t->rank, onr_fmt_dims(b2, sizeof b2, t->dims, t->rank));
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d] >= 0 && t->dims[d] != v->dims[d])
            return onr_seterr(err, ONR_E_INPUT,
                              "input '%s': dim %d must be %lld, got shape %s", v->name, d,
                              (long long)v->dims[d], onr_fmt_dims(b2, sizeof b2, t->dims, t->rank));
        if (v->dims[d] < 0 && v->dim_names[d]) {
            int k = 0;
            while (k < *n_sym && strcmp(sym_names[k], v->dim_names[d]) != 0) k++;
            if (k < *n_sym) {
                if (sym_vals[k] != t->dims[d])
                    return onr_seterr(err, ONR_E_INPUT,
                                      "input '%s': dim %d ('%s') is %lld, but another input "
                                      "binds '%s' to %lld",
                                      v->name, d, v->dim_names[d], (long long)t->dims[d],
                                      v->dim_names[d], (long long)sym_vals[k]);
            } else if (*n_sym < 64) {
                sym_names[*n_sym] = v->dim_names[d];
                sym_vals[(*n_sym)++] = t->dims[d];
            }
        }
    }
    return ONR_OK;
}

/* Output i after a run: the plan's own buffer for outputs computed by a
 * step (no copy); a copy for an output that is a graph input or constant. */
static onr_status publish_output(onr_session *s, onr_inst *in, int i, onr_err *err)
{
    const onr_graph *g = s->model->graph;
    onr_tensor *r = onr_plan_output(in->plan, i);
    onr_tensor *o = in->outs[i];
    if (!o && !(o = in->outs[i] = calloc(1, sizeof *o)))
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    if (r->dtype == ONR_UNDEFINED && !r->kind)
        return onr_seterr(err, ONR_E_RUNTIME, "output '%s' was not computed",
                          g->values[g->outputs[i]].name);
    onr_tensor *dst = in->bind[i];
    if (dst && r->kind)
        return onr_seterr(err, ONR_E_INPUT,
                          "output '%s' is a sequence, optional or map; only tensor outputs can be bound",
                          g->values[g->outputs[i]].name);
    if (r->kind && !r->owns) { /* a container the plan does not own (an input): copy */
        if (!o->owns) memset(o, 0, sizeof *o);
        return onr_value_copy(o, r, err);
    }
    if (dst) { /* the caller's memory: written by the step, or copied here */
        int same = r->dtype == dst->dtype && r->rank == dst->rank;
        for (int d = 0; same && d < r->rank; d++) same = r->dims[d] == dst->dims[d];
        if (!same) {
            char b1[256], b2[256];
            return onr_seterr(err, ONR_E_INPUT,
                              "output '%s': the caller's tensor is %s%s, the run makes %s%s",
                              g->values[g->outputs[i]].name, onr_dtype_name(dst->dtype),
                              onr_fmt_dims(b1, sizeof b1, dst->dims, dst->rank),
                              onr_dtype_name(r->dtype), onr_fmt_dims(b2, sizeof b2, r->dims, r->rank));
        }
        if (r->data != dst->data && onr_tensor_nbytes(r)) memcpy(dst->data, r->data, onr_tensor_nbytes(r));
        if (o->owns) onr_tensor_clear(o);
        *o = *dst;
        o->owns = 0;
        o->cap = 0;
        o->name = NULL;
        return ONR_OK;
    }
    if (r->owns) { /* a step's output buffer: hand it out as it is */
        if (o->owns) onr_tensor_clear(o);
        *o = *r;
        o->owns = 0;
        o->cap = 0;
        o->name = NULL;
        return ONR_OK;
    }
    if (!o->owns) memset(o, 0, sizeof *o);
    onr_status st;
    if ((st = onr_tensor_set_shape(o, r->dtype, r->rank, r->dims, err)) ||
        (st = onr_tensor_alloc(o, err)))
        return st;
    if (r->dtype == ONR_STRING) {
        char **d = o->data, *const *src = r->data;
        for (int64_t k = 0; k < o->numel; k++)
            if (onr_str_assign(&d[k], src[k]))
                return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    } else if (onr_tensor_nbytes(o)) {
        memcpy(o->data, r->data, onr_tensor_nbytes(o));
    }
    return ONR_OK;
}

static onr_status run_bound(onr_session *s, onr_inst *in, int n, const char *const *names,
                            const onr_tensor *const *inputs, onr_err *err)
{
    onr_graph *g = s->model->graph;
    if (n < 0 || (n > 0 && !inputs))
        return onr_seterr(err, ONR_E_ARG, "bad input array");
    if (n > g->n_inputs && !names) /* by name, the loop names the stray input */
        return onr_seterr(err, ONR_E_INPUT, "the model has %d input%s, %d given",
                          g->n_inputs, g->n_inputs == 1 ? "" : "s", n);
    const char *sym_names[64];
    int64_t sym_vals[64];
    int n_sym = 0;
    uint8_t *bound = in->bound;
    memset(bound, 0, (size_t)g->n_inputs);
    for (int i = 0; i < n; i++) {
        int slot = i;
        if (names) {
            if (!names[i]) return onr_seterr(err, ONR_E_ARG, "input %d has no name", i);
            slot = onr_names_find(&s->in_names, names[i]);
            if (slot < 0)
                return onr_seterr(err, ONR_E_INPUT, "the model has no input named '%s'",
                                  names[i]);
        }
        if (bound[slot])
            return onr_seterr(err, ONR_E_INPUT, "input '%s' is bound twice",
                              g->values[g->inputs[slot]].name);
        bound[slot] = 1;
        const onr_tensor *t = inputs[i];
        if (!t) return onr_seterr(err, ONR_E_ARG, "input %d is NULL", i);
        int v = g->inputs[slot];
        onr_status st = check_input(err, &g->values[v], t, sym_names, sym_vals, &n_sym);
        if (st) return st;
        /* the plan reads the caller's data in place */
        onr_tensor *rt = onr_plan_input(in->plan, slot);
        *rt = *t;
        rt->owns = 0;
        rt->cap = 0;
        rt->name = NULL;
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (!bound[i])
            return onr_seterr(err, ONR_E_INPUT,
                              "input '%s' is not given (the model has %d input%s, %d given)",
                              g->values[g->inputs[i]].name, g->n_inputs,
                              g->n_inputs == 1 ? "" : "s", n);
    onr_status st = onr_plan_run(in->plan, err);
    for (int i = 0; i < g->n_outputs && !st; i++) st = publish_output(s, in, i, err);
    /* inputs are the caller's: forget them */
    for (int i = 0; i < g->n_inputs; i++) {
        onr_tensor *rt = onr_plan_input(in->plan, i);
        rt->data = NULL;
    }
    return st;
}

/* Record the caller's output tensors: per graph output (in->bind) and, for
 * the plan, per value (the first binding of a value that is listed twice
 * as a graph output; the other is copied after the run). */
static onr_status bind_outputs(onr_session *s, onr_inst *in, int n_out,
                               const char *const *out_names, onr_tensor *const *outputs,
                               onr_err *err)
{
    const onr_graph *g = s->model->graph, *pg = onr_plan_graph(in->plan);
    for (int k = 0; k < n_out; k++) {
        int i = k;
        if (out_names) {
            if (!out_names[k]) return onr_seterr(err, ONR_E_ARG, "output %d has no name", k);
            for (i = 0; i < g->n_outputs; i++)
                if (strcmp(g->values[g->outputs[i]].name, out_names[k]) == 0) break;
            if (i == g->n_outputs)
                return onr_seterr(err, ONR_E_ARG, "the model has no output named '%s'",
                                  out_names[k]);
        }
        onr_tensor *t = outputs[k];
        if (!t) continue;
        const char *name = g->values[g->outputs[i]].name;
        if (in->bind[i]) return onr_seterr(err, ONR_E_ARG, "output '%s' is bound twice", name);
        if (t->dtype == ONR_STRING || t->dtype == ONR_UNDEFINED || (t->numel > 0 && !t->data))
            return onr_seterr(err, ONR_E_ARG, "output '%s': a %s tensor%s cannot receive it",
                              name, onr_dtype_name(t->dtype),
                              t->numel > 0 && !t->data ? " without data" : "");
        in->bind[i] = t;
        int v = pg->outputs[i];
        if (!in->bind_v[v]) in->bind_v[v] = t;
    }
    return ONR_OK;
}

/* One run on an instance the caller holds: inputs, the caller's output
 * tensors, the plan, the outputs published in in->outs. */
static onr_status inst_run(onr_session *s, onr_inst *in, int n, const char *const *names,
                           const onr_tensor *const *inputs, int n_out,
                           const char *const *out_names, onr_tensor *const *outputs, onr_err *err)
{
    const onr_graph *g = s->model->graph, *pg = onr_plan_graph(in->plan);
    if (n_out < 0 || (n_out > 0 && !outputs))
        return onr_seterr(err, ONR_E_ARG, "bad output array");
    if (n_out > g->n_outputs)
        return onr_seterr(err, ONR_E_ARG, "the model has %d output%s, %d given", g->n_outputs,
                          g->n_outputs == 1 ? "" : "s", n_out);
    onr_plan_set_cancel(in->plan, 0); /* each run starts uncancelled */
    onr_plan_set_profiling(in->plan, atomic_load(&s->profiling));
    onr_status st = n_out ? bind_outputs(s, in, n_out, out_names, outputs, err) : ONR_OK;
    if (!st) {
        in->plan->out_bind = n_out ? in->bind_v : NULL;
        st = run_bound(s, in, n, names, inputs, err);
    }
    if (n_out) { /* forget the caller's tensors: the plan must not keep them */
        for (int i = 0; i < g->n_outputs; i++) {
            int v = pg->outputs[i];
            onr_tensor *rt = onr_plan_output(in->plan, i);
            if (in->bind_v[v] && rt->data == in->bind_v[v]->data && !rt->owns) {
                rt->data = NULL;
                rt->cap = 0;
            }
            in->bind_v[v] = NULL;
            in->bind[i] = NULL;
        }
    }
    in->plan->out_bind = NULL;
    return st;
}

/* After a run (the lock held): the session's profile and memory figures. */
static void note_run(onr_session *s, onr_inst *in)
{
    onr_plan_memory(in->plan, &s->mem_arena, &s->mem_act);
    int steps = onr_plan_step_count(in->plan);
    if (!in->plan->profiling || !in->plan->prof_ms) return;
    if (!s->prof_ms) {
        s->prof_ms = calloc((size_t)steps + 1, sizeof *s->prof_ms);
        s->prof_start_ms = calloc((size_t)steps + 1, sizeof *s->prof_start_ms);
        if (!s->prof_ms || !s->prof_start_ms) {
            free(s->prof_ms), free(s->prof_start_ms);
            s->prof_ms = s->prof_start_ms = NULL;
            return;
        }
    }
    for (int i = 0; i < steps; i++)
        s->prof_ms[i] = onr_plan_step_ms(in->plan, i, &s->prof_start_ms[i]);
}

onr_status onr_session_run(onr_session *s, int n, const char *const *names,
                           const onr_tensor *const *inputs)
{
    return onr_session_run_into(s, n, names, inputs, 0, NULL, NULL);
}

onr_status onr_session_run_into(onr_session *s, int n, const char *const *names,
                                const onr_tensor *const *inputs, int n_out,
                                const char *const *out_names, onr_tensor *const *outputs)
{
    if (!s) return ONR_E_ARG;
    onr_err err = {0};
    onr_inst *in = NULL;
    onr_status st;
    if (!ready(s)) st = onr_seterr(&err, ONR_E_ARG, "the session has no loaded model");
    else if (!(st = acquire(s, NULL, &in, &err)))
        st = inst_run(s, in, n, names, inputs, n_out, out_names, outputs, &err);
    lock(s);
    s->err.code = err.code;
    if (err.code) snprintf(s->err.msg, sizeof s->err.msg, "%s", err.msg);
    s->out_inst = st ? NULL : in;
    if (in) {
        note_run(s, in);
        give_back(s, in);
    }
    unlock(s);
    return st;
}

void onr_session_cancel(onr_session *s)
{
    if (!s) return;
    /* no lock: a signal handler may call this. Slots are appended only. */
    int n = atomic_load(&s->n_pool);
    for (int i = 0; i < n; i++) {
        onr_inst *in = atomic_load(&s->pool[i]);
        if (in) onr_plan_set_cancel(in->plan, 1);
    }
}

const onr_tensor *onr_session_output(const onr_session *s, int i)
{
    if (!ready(s) || i < 0 || i >= s->model->graph->n_outputs) return NULL;
    lock(s);
    const onr_tensor *t = s->out_inst ? s->out_inst->outs[i] : NULL;
    unlock(s);
    return t;
}

/* Output i of instance in's last run changes hands (in is not running). */
static onr_tensor *take_output(onr_session *s, onr_inst *in, int i)
{
    onr_tensor *t = in->outs[i];
    if (!t) return NULL;
    if (!t->owns && t->data) {
        /* the plan's buffer changes hands unless another output shows it too */
        const onr_graph *g = s->model->graph;
        int shared = 0;
        for (int j = 0; j < g->n_outputs; j++)
            shared |= j != i && g->outputs[j] == g->outputs[i] && in->outs[j];
        onr_tensor *r = onr_plan_output(in->plan, i);
        if (shared || !r->owns || r->data != t->data) {
            onr_tensor *c = onr_tensor_clone(t);
            if (!c) return NULL;
            in->outs[i] = NULL;
            free(t);
            return c;
        }
        t->owns = 1;
        t->cap = r->cap;
        onr_plan_output_released(in->plan, i); /* the caller's memory now */
        r->data = NULL;
        r->owns = 0;
        r->cap = 0;
    }
    in->outs[i] = NULL;
    return t;
}

onr_tensor *onr_session_take_output(onr_session *s, int i)
{
    if (!ready(s) || i < 0 || i >= s->model->graph->n_outputs) return NULL;
    lock(s);
    onr_inst *in = s->out_inst;
    /* a run going on over those buffers: the caller broke the contract */
    onr_tensor *t = in && !in->busy ? take_output(s, in, i) : NULL;
    unlock(s);
    return t;
}

/* Instances in s's pool (tests; not in the public header). */
int onr_session_pool_size(const onr_session *s)
{
    return s ? atomic_load(&((onr_session *)s)->n_pool) : 0;
}

/* ---- run contexts ------------------------------------------------------ */

onr_run *onr_run_new(onr_session *s)
{
    if (!ready(s)) return NULL;
    onr_run *r = calloc(1, sizeof *r);
    if (r) r->s = s;
    return r;
}

void onr_run_free(onr_run *r)
{
    if (!r) return;
    onr_inst *in = atomic_load(&r->inst);
    if (in) {
        lock(r->s);
        give_back(r->s, in);
        unlock(r->s);
    }
    free(r);
}

onr_status onr_run_exec(onr_run *r, int n, const char *const *names,
                        const onr_tensor *const *inputs, int n_out, const char *const *out_names,
                        onr_tensor *const *outputs)
{
    if (!r) return ONR_E_ARG;
    onr_session *s = r->s;
    memset(&r->err, 0, sizeof r->err);
    r->have_outputs = 0;
    onr_status st = ONR_OK;
    onr_inst *in = atomic_load(&r->inst);
    if (!in) {
        /* keep clear of the instance whose outputs onr_session_output shows */
        lock(s);
        const onr_inst *avoid = s->out_inst;
        unlock(s);
        if (!(st = acquire(s, avoid, &in, &r->err))) atomic_store(&r->inst, in);
    }
    if (!st) st = inst_run(s, in, n, names, inputs, n_out, out_names, outputs, &r->err);
    r->have_outputs = st == ONR_OK;
    return st;
}

const onr_tensor *onr_run_output(const onr_run *r, int i)
{
    if (!r || !r->have_outputs || i < 0 || i >= r->s->model->graph->n_outputs) return NULL;
    return atomic_load(&((onr_run *)r)->inst)->outs[i];
}

onr_tensor *onr_run_take_output(onr_run *r, int i)
{
    if (!r || !r->have_outputs || i < 0 || i >= r->s->model->graph->n_outputs) return NULL;
    return take_output(r->s, atomic_load(&r->inst), i);
}

const char *onr_run_errmsg(const onr_run *r)
{
    if (!r) return "out of memory (no run context)";
    return r->err.code ? r->err.msg : "";
}

void onr_run_cancel(onr_run *r)
{
    onr_inst *in = r ? atomic_load(&r->inst) : NULL;
    if (in) onr_plan_set_cancel(in->plan, 1);
}

double onr_run_step_ms(const onr_run *r, int i, double *start_ms)
{
    if (start_ms) *start_ms = 0;
    onr_inst *in = r ? atomic_load(&((onr_run *)r)->inst) : NULL;
    return in ? onr_plan_step_ms(in->plan, i, start_ms) : 0;
}

int64_t onr_session_ir_version(const onr_session *s) { return loaded(s) ? s->model->ir_version : 0; }
const char *onr_session_producer(const onr_session *s)
{
    return loaded(s) && s->model->producer ? s->model->producer : "";
}
int onr_session_opset_count(const onr_session *s) { return loaded(s) ? s->model->n_opsets : 0; }

const char *onr_session_opset(const onr_session *s, int i, int64_t *version)
{
    if (!loaded(s) || i < 0 || i >= s->model->n_opsets) return NULL;
    if (version) *version = s->model->opsets[i].version;
    return s->model->opsets[i].domain;
}

int onr_session_node_count(const onr_session *s) { return loaded(s) ? s->model->graph->n_nodes : 0; }

const char *onr_session_node_op(const onr_session *s, int i, const char **domain)
{
    if (!loaded(s) || i < 0 || i >= s->model->graph->n_nodes) return NULL;
    if (domain) *domain = s->model->graph->nodes[i].domain;
    return s->model->graph->nodes[i].op_type;
}

int onr_session_step_count(const onr_session *s) { return ready(s) ? onr_plan_step_count(s->plan) : 0; }

onr_status onr_session_step_describe(const onr_session *s, int i, char *buf, size_t len)
{
    if (!ready(s) || !buf || !len || i < 0 || i >= onr_plan_step_count(s->plan)) return ONR_E_ARG;
    const onr_graph *g = onr_plan_graph(s->plan);
    const onr_node *n = onr_plan_step_node(s->plan, i);
    size_t o = (size_t)snprintf(buf, len, "%s%s%s '%s' (", *n->domain ? n->domain : "",
                                *n->domain ? "." : "", n->op_type, n->name);
    for (int k = 0; k < n->n_in && o < len; k++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", k ? ", " : "",
                              n->inputs[k] >= 0 ? g->values[n->inputs[k]].name : "");
    if (o < len) o += (size_t)snprintf(buf + o, len - o, ") ->");
    for (int k = 0; k < n->n_out && o < len; k++) {
        if (n->outputs[k] < 0) continue;
        const onr_value *v = &g->values[n->outputs[k]];
        char d[256];
        if (v->rank >= 0) { /* symbolic dims by name ("?" unnamed) */
            size_t q = (size_t)snprintf(d, sizeof d, "[");
            for (int j = 0; j < v->rank && q < sizeof d; j++) {
                if (v->dims[j] >= 0)
                    q += (size_t)snprintf(d + q, sizeof d - q, "%s%lld", j ? "," : "",
                                          (long long)v->dims[j]);
                else
                    q += (size_t)snprintf(d + q, sizeof d - q, "%s%s", j ? "," : "",
                                          v->dim_names[j] ? v->dim_names[j] : "?");
            }
            if (q < sizeof d) snprintf(d + q, sizeof d - q, "]");
        } else {
            snprintf(d, sizeof d, "[?]");
        }
        char mb[64];
        /* the layout of instance 0, unless a run is changing it now */
        lock(s);
        const char *mem = atomic_load(&((onr_session *)s)->pool[0])->busy
                              ? ""
                              : onr_plan_step_memory(s->plan, i, k, mb, sizeof mb);
        unlock(s);
        o += (size_t)snprintf(buf + o, len - o, " %s %s%s%s%s%s", v->name,
                              onr_dtype_name(v->dtype), d, *mem ? " [" : "", mem, *mem ? "]" : "");
    }
    return ONR_OK;
}

const char *onr_session_step_op(const onr_session *s, int i, const char **node_name)
{
    if (!ready(s) || i < 0 || i >= onr_plan_step_count(s->plan)) return NULL;
    const onr_node *n = onr_plan_step_node(s->plan, i);
    if (node_name) *node_name = n->name;
    return n->op_type;
}

int onr_session_unfused_step_count(const onr_session *s)
{
    return ready(s) ? onr_plan_unfused_step_count(s->plan) : 0;
}

int onr_session_step_values(const onr_session *s, int i, int outputs, const char **names, int max)
{
    if (!ready(s) || i < 0 || i >= onr_plan_step_count(s->plan)) return -1;
    const onr_graph *g = onr_plan_graph(s->plan);
    const onr_node *n = onr_plan_step_node(s->plan, i);
    int cnt = outputs ? n->n_out : n->n_in;
    const int *vals = outputs ? n->outputs : n->inputs;
    for (int k = 0; k < cnt && k < max && names; k++)
        names[k] = vals[k] >= 0 ? g->values[vals[k]].name : "";
    return cnt;
}

const char *onr_session_step_fused(const onr_session *s, int i, int *n_nodes)
{
    if (n_nodes) *n_nodes = 0;
    if (!ready(s) || i < 0 || i >= onr_plan_step_count(s->plan)) return NULL;
    const onr_node *n = onr_plan_step_node(s->plan, i);
    if (n_nodes) *n_nodes = n->n_fused;
    return n->fused_from;
}

onr_status onr_session_plan_memory(const onr_session *s, size_t *arena_bytes,
                                   size_t *activation_bytes)
{
    if (!ready(s) || !arena_bytes || !activation_bytes) return ONR_E_ARG;
    lock(s);
    *arena_bytes = s->mem_arena;
    *activation_bytes = s->mem_act;
    unlock(s);
    return ONR_OK;
}

onr_status onr_session_memory(const onr_session *s, uint64_t *limit, uint64_t *in_use)
{
    if (!s || !limit || !in_use) return ONR_E_ARG;
    *limit = s->budget.limit;
    *in_use = atomic_load(&((onr_session *)s)->budget.used);
    return ONR_OK;
}

void onr_session_set_profiling(onr_session *s, int on)
{
    if (ready(s)) atomic_store(&s->profiling, on != 0);
}

double onr_session_step_ms(const onr_session *s, int i, double *start_ms)
{
    if (start_ms) *start_ms = 0;
    if (!ready(s) || i < 0 || i >= onr_plan_step_count(s->plan)) return 0;
    lock(s);
    double ms = s->prof_ms ? s->prof_ms[i] : 0;
    if (start_ms && s->prof_ms) *start_ms = s->prof_start_ms[i];
    unlock(s);
    return ms;
}
