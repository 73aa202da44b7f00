/*
 * session.c - the public API: options, sessions (load -> plan -> run),
 * input binding with shape checks, outputs, and model facts for tools.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/budget.h"
#include "load/load.h"
#include "plan/plan.h"

struct onr_options {
    int threads;
    int fuse;
    char *base_dir;
    int64_t memory_limit; /* 0: the default; < 0: none */
};

struct onr_session {
    onr_err err;
    onr_model *model;
    onr_plan *plan;
    int nthreads;
    onr_tensor **outs;  /* per graph output: the plan's buffer, or a copy (see run) */
    uint8_t *bound;     /* per graph input, while binding */
    int64_t *in_dims;   /* declared dims per input, for onr_value_info */
    onr_names in_names; /* graph input name -> slot, for binding by name */
    int have_outputs;
    onr_tensor **bind;  /* run_into: per graph output, the caller's tensor (or NULL) */
    const onr_tensor **bind_v; /* the same per value of the plan's graph */
    onr_budget budget;  /* memory budget of the plan and its runs */
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
    int n = s->model->graph->n_outputs;
    s->outs = calloc((size_t)n + 1, sizeof *s->outs);
    s->bound = calloc((size_t)s->model->graph->n_inputs + 1, 1);
    if (!s->outs || !s->bound) return onr_seterr(&s->err, ONR_E_NOMEM, "out of memory");
    s->in_names = (onr_names){.key = input_name, .ctx = s};
    for (int i = 0; i < s->model->graph->n_inputs; i++)
        if (onr_names_put(&s->in_names, i)) return onr_seterr(&s->err, ONR_E_NOMEM, "out of memory");
    return ONR_OK;
}

onr_status onr_session_open(const char *path, const onr_options *opt, onr_session **out)
{
    if (!out) return ONR_E_ARG;
    onr_session *s = calloc(1, sizeof *s);
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
    onr_session *s = calloc(1, sizeof *s);
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
    if (s->outs && s->model)
        for (int i = 0; i < s->model->graph->n_outputs; i++) onr_tensor_free(s->outs[i]);
    free(s->outs);
    free(s->bound);
    onr_names_free(&s->in_names);
    free(s->bind);
    free(s->bind_v);
    onr_plan_free(s->plan);
    onr_model_free(s->model);
    free(s);
}

const char *onr_session_errmsg(const onr_session *s)
{
    if (!s) return "out of memory (no session)";
    return s->err.code ? s->err.msg : "";
}

int onr_session_threads(const onr_session *s) { return s ? s->nthreads : 0; }

static int ready(const onr_session *s) { return s && s->model && s->plan; }
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

/* Check an input tensor against the model's declaration; symbolic dims must
 * agree across inputs (sym_names/sym_vals collect the bindings). */
static onr_status check_input(onr_session *s, const onr_value *v, const onr_tensor *t,
                              const char **sym_names, int64_t *sym_vals, int *n_sym)
{
    char b1[256], b2[256];
    if (v->kind || t->kind) { /* sequences and optionals: the kind must match */
        static const char *const kinds[] = {"a tensor", "a sequence", "an optional"};
        int vk = v->kind < 3 ? v->kind : 0, tk = t->kind < 3 ? t->kind : 0;
        if (vk != tk && !(vk == ONR_VALUE_OPTIONAL && !t->kind))
            return onr_seterr(&s->err, ONR_E_INPUT, "input '%s': expected %s, got %s", v->name,
                              kinds[vk], kinds[tk]);
        return ONR_OK;
    }
    if (t->dtype == ONR_UNDEFINED || (t->numel > 0 && !t->data))
        return onr_seterr(&s->err, ONR_E_ARG, "input '%s': tensor has no data", v->name);
    if (v->dtype != ONR_UNDEFINED && t->dtype != v->dtype)
        return onr_seterr(&s->err, ONR_E_INPUT, "input '%s': expected %s, got %s", v->name,
                          onr_dtype_name(v->dtype), onr_dtype_name(t->dtype));
    if (v->rank < 0) return ONR_OK;
    if (t->rank != v->rank)
        return onr_seterr(&s->err, ONR_E_INPUT, "input '%s': expected rank %d %s, got rank %d %s",
                          v->name, v->rank, onr_fmt_dims(b1, sizeof b1, v->dims, v->rank),
                          t->rank, onr_fmt_dims(b2, sizeof b2, t->dims, t->rank));
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d] >= 0 && t->dims[d] != v->dims[d])
            return onr_seterr(&s->err, ONR_E_INPUT,
                              "input '%s': dim %d must be %lld, got shape %s", v->name, d,
                              (long long)v->dims[d], onr_fmt_dims(b2, sizeof b2, t->dims, t->rank));
        if (v->dims[d] < 0 && v->dim_names[d]) {
            int k = 0;
            while (k < *n_sym && strcmp(sym_names[k], v->dim_names[d]) != 0) k++;
            if (k < *n_sym) {
                if (sym_vals[k] != t->dims[d])
                    return onr_seterr(&s->err, ONR_E_INPUT,
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
static onr_status publish_output(onr_session *s, int i)
{
    const onr_graph *g = s->model->graph;
    onr_tensor *r = onr_plan_output(s->plan, i);
    onr_tensor *o = s->outs[i];
    if (!o && !(o = s->outs[i] = calloc(1, sizeof *o)))
        return onr_seterr(&s->err, ONR_E_NOMEM, "out of memory");
    if (r->dtype == ONR_UNDEFINED && !r->kind)
        return onr_seterr(&s->err, ONR_E_RUNTIME, "output '%s' was not computed",
                          g->values[g->outputs[i]].name);
    onr_tensor *dst = s->bind ? s->bind[i] : NULL;
    if (dst && r->kind)
        return onr_seterr(&s->err, ONR_E_INPUT,
                          "output '%s' is a sequence or optional; only tensor outputs can be bound",
                          g->values[g->outputs[i]].name);
    if (r->kind && !r->owns) { /* a container the plan does not own (an input): copy */
        if (!o->owns) memset(o, 0, sizeof *o);
        return onr_value_copy(o, r, &s->err);
    }
    if (dst) { /* the caller's memory: written by the step, or copied here */
        int same = r->dtype == dst->dtype && r->rank == dst->rank;
        for (int d = 0; same && d < r->rank; d++) same = r->dims[d] == dst->dims[d];
        if (!same) {
            char b1[256], b2[256];
            return onr_seterr(&s->err, ONR_E_INPUT,
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
    if ((st = onr_tensor_set_shape(o, r->dtype, r->rank, r->dims, &s->err)) ||
        (st = onr_tensor_alloc(o, &s->err)))
        return st;
    if (r->dtype == ONR_STRING) {
        char **d = o->data, *const *src = r->data;
        for (int64_t k = 0; k < o->numel; k++)
            if (onr_str_assign(&d[k], src[k]))
                return onr_seterr(&s->err, ONR_E_NOMEM, "out of memory");
    } else if (onr_tensor_nbytes(o)) {
        memcpy(o->data, r->data, onr_tensor_nbytes(o));
    }
    return ONR_OK;
}

static onr_status run_bound(onr_session *s, int n, const char *const *names,
                            const onr_tensor *const *inputs)
{
    onr_graph *g = s->model->graph;
    if (n < 0 || (n > 0 && !inputs))
        return onr_seterr(&s->err, ONR_E_ARG, "bad input array");
    if (n > g->n_inputs && !names) /* by name, the loop names the stray input */
        return onr_seterr(&s->err, ONR_E_INPUT, "the model has %d input%s, %d given",
                          g->n_inputs, g->n_inputs == 1 ? "" : "s", n);
    const char *sym_names[64];
    int64_t sym_vals[64];
    int n_sym = 0;
    uint8_t *bound = s->bound;
    memset(bound, 0, (size_t)g->n_inputs);
    for (int i = 0; i < n; i++) {
        int slot = i;
        if (names) {
            if (!names[i]) return onr_seterr(&s->err, ONR_E_ARG, "input %d has no name", i);
            slot = onr_names_find(&s->in_names, names[i]);
            if (slot < 0)
                return onr_seterr(&s->err, ONR_E_INPUT, "the model has no input named '%s'",
                                  names[i]);
        }
        if (bound[slot])
            return onr_seterr(&s->err, ONR_E_INPUT, "input '%s' is bound twice",
                              g->values[g->inputs[slot]].name);
        bound[slot] = 1;
        const onr_tensor *t = inputs[i];
        if (!t) return onr_seterr(&s->err, ONR_E_ARG, "input %d is NULL", i);
        int v = g->inputs[slot];
        onr_status st = check_input(s, &g->values[v], t, sym_names, sym_vals, &n_sym);
        if (st) return st;
        /* the plan reads the caller's data in place */
        onr_tensor *rt = onr_plan_input(s->plan, slot);
        *rt = *t;
        rt->owns = 0;
        rt->cap = 0;
        rt->name = NULL;
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (!bound[i])
            return onr_seterr(&s->err, ONR_E_INPUT,
                              "input '%s' is not given (the model has %d input%s, %d given)",
                              g->values[g->inputs[i]].name, g->n_inputs,
                              g->n_inputs == 1 ? "" : "s", n);
    onr_plan_set_cancel(s->plan, 0);
    onr_status st = onr_plan_run(s->plan, &s->err);
    for (int i = 0; i < g->n_outputs && !st; i++) st = publish_output(s, i);
    /* inputs are the caller's: forget them */
    for (int i = 0; i < g->n_inputs; i++) {
        onr_tensor *rt = onr_plan_input(s->plan, i);
        rt->data = NULL;
    }
    return st;
}

onr_status onr_session_run(onr_session *s, int n, const char *const *names,
                           const onr_tensor *const *inputs)
{
    return onr_session_run_into(s, n, names, inputs, 0, NULL, NULL);
}

/* Record the caller's output tensors: per graph output (s->bind) and, for
 * the plan, per value (the first binding of a value that is listed twice
 * as a graph output; the other is copied after the run). */
static onr_status bind_outputs(onr_session *s, int n_out, const char *const *out_names,
                               onr_tensor *const *outputs)
{
    const onr_graph *g = s->model->graph, *pg = onr_plan_graph(s->plan);
    if (!s->bind) {
        s->bind = calloc((size_t)g->n_outputs + 1, sizeof *s->bind);
        s->bind_v = calloc((size_t)pg->n_values + 1, sizeof *s->bind_v);
        if (!s->bind || !s->bind_v) return onr_seterr(&s->err, ONR_E_NOMEM, "out of memory");
    }
    for (int k = 0; k < n_out; k++) {
        int i = k;
        if (out_names) {
            if (!out_names[k]) return onr_seterr(&s->err, ONR_E_ARG, "output %d has no name", k);
            for (i = 0; i < g->n_outputs; i++)
                if (strcmp(g->values[g->outputs[i]].name, out_names[k]) == 0) break;
            if (i == g->n_outputs)
                return onr_seterr(&s->err, ONR_E_ARG, "the model has no output named '%s'",
                                  out_names[k]);
        }
        onr_tensor *t = outputs[k];
        if (!t) continue;
        const char *name = g->values[g->outputs[i]].name;
        if (s->bind[i]) return onr_seterr(&s->err, ONR_E_ARG, "output '%s' is bound twice", name);
        if (t->dtype == ONR_STRING || t->dtype == ONR_UNDEFINED || (t->numel > 0 && !t->data))
            return onr_seterr(&s->err, ONR_E_ARG, "output '%s': a %s tensor%s cannot receive it",
                              name, onr_dtype_name(t->dtype),
                              t->numel > 0 && !t->data ? " without data" : "");
        s->bind[i] = t;
        int v = pg->outputs[i];
        if (!s->bind_v[v]) s->bind_v[v] = t;
    }
    return ONR_OK;
}

onr_status onr_session_run_into(onr_session *s, int n, const char *const *names,
                                const onr_tensor *const *inputs, int n_out,
                                const char *const *out_names, onr_tensor *const *outputs)
{
    if (!s) return ONR_E_ARG;
    memset(&s->err, 0, sizeof s->err);
    if (!ready(s)) return onr_seterr(&s->err, ONR_E_ARG, "the session has no loaded model");
    const onr_graph *pg = onr_plan_graph(s->plan);
    s->have_outputs = 0;
    if (n_out < 0 || (n_out > 0 && !outputs))
        return onr_seterr(&s->err, ONR_E_ARG, "bad output array");
    if (n_out > s->model->graph->n_outputs)
        return onr_seterr(&s->err, ONR_E_ARG, "the model has %d output%s, %d given",
                          s->model->graph->n_outputs, s->model->graph->n_outputs == 1 ? "" : "s",
                          n_out);
    onr_status st = n_out ? bind_outputs(s, n_out, out_names, outputs) : ONR_OK;
    if (!st) {
        s->plan->out_bind = n_out ? s->bind_v : NULL;
        st = run_bound(s, n, names, inputs);
    }
    if (s->bind) { /* forget the caller's tensors: the plan must not keep them */
        for (int i = 0; i < s->model->graph->n_outputs; i++) {
            int v = pg->outputs[i];
            onr_tensor *rt = onr_plan_output(s->plan, i);
            if (s->bind_v[v] && rt->data == s->bind_v[v]->data && !rt->owns) {
                rt->data = NULL;
                rt->cap = 0;
            }
            s->bind_v[v] = NULL;
            s->bind[i] = NULL;
        }
    }
    s->plan->out_bind = NULL;
    if (st) return st;
    s->have_outputs = 1;
    return ONR_OK;
}

void onr_session_cancel(onr_session *s)
{
    if (ready(s)) onr_plan_set_cancel(s->plan, 1);
}

const onr_tensor *onr_session_output(const onr_session *s, int i)
{
    if (!ready(s) || !s->have_outputs || i < 0 || i >= s->model->graph->n_outputs) return NULL;
    return s->outs[i];
}

onr_tensor *onr_session_take_output(onr_session *s, int i)
{
    if (!ready(s) || !s->have_outputs || i < 0 || i >= s->model->graph->n_outputs) return NULL;
    onr_tensor *t = s->outs[i];
    if (!t) return NULL;
    if (!t->owns && t->data) {
        /* the plan's buffer changes hands unless another output shows it too */
        const onr_graph *g = s->model->graph;
        int shared = 0;
        for (int j = 0; j < g->n_outputs; j++)
            shared |= j != i && g->outputs[j] == g->outputs[i] && s->outs[j];
        onr_tensor *r = onr_plan_output(s->plan, i);
        if (shared || !r->owns || r->data != t->data) {
            onr_tensor *c = onr_tensor_clone(t);
            if (!c) return NULL;
            s->outs[i] = NULL;
            free(t);
            return c;
        }
        t->owns = 1;
        t->cap = r->cap;
        onr_plan_output_released(s->plan, i); /* the caller's memory now */
        r->data = NULL;
        r->owns = 0;
        r->cap = 0;
    }
    s->outs[i] = NULL;
    return t;
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
        const char *mem = onr_plan_step_memory(s->plan, i, k, mb, sizeof mb);
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
    onr_plan_memory(s->plan, arena_bytes, activation_bytes);
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
    if (ready(s)) onr_plan_set_profiling(s->plan, on);
}

double onr_session_step_ms(const onr_session *s, int i, double *start_ms)
{
    if (start_ms) *start_ms = 0;
    return ready(s) ? onr_plan_step_ms(s->plan, i, start_ms) : 0;
}
