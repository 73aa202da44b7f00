/*
 * pass_shapes.c - symbolic shape inference by probing (see passes.h).
 *
 * Static inference (pass_fold.c) stops at the first value whose shape
 * depends on a symbolic graph-input dim (a dynamic batch or sequence), and
 * so do the fusions that need ranks, types and dims. This pass finds them
 * without ever changing what is folded:
 *
 *   - every symbolic (or unknown) dim of a graph input becomes a symbol,
 *     named by its dim_param (dims sharing a name share the symbol) or,
 *     when anonymous, "?INPUT[d]" (a symbol of its own);
 *   - the graph is walked three times in topological order with each
 *     symbol replaced by a probe value (run 0: distinct primes from 17;
 *     run 1: twice distinct primes from 3, so even; run 2: distinct primes
 *     from 2, as small as can be), shapes coming from each operator's
 *     reshape as in folding; the small tensors that shape computations are
 *     made of (Shape, Size and what hangs off them: at most
 *     ONR_PROBE_MAX_ELEMS elements, every input that small too, no
 *     strings) are evaluated with the real kernels, so a Reshape fed by
 *     Shape -> Gather -> Concat gets its shape;
 *   - a value shaped in runs 0 and 1 with one rank and type gets them; a
 *     dim equal in both runs (and in run 2, when run 2 shaped the value:
 *     tiny probes fail more often, so run 2 only ever turns a dim
 *     symbolic) is static, one that differs is symbolic (-1) and named when
 *     all those runs agree on what it is: a symbol ("seq"), a product with
 *     an optional static factor ("batch*seq", "12*batch"), or a symbol
 *     plus a constant ("seq+1", "seq-1"); else it stays unnamed. Equal
 *     names mean equal dims (for the fusion passes; fuse.h).
 *
 * Probe values live only in this file's tensors: no constant is made, no
 * value gets a probe dim, and the plan's own reshape at run time stays the
 * truth. Anything that fails under a probe (a reshape error, a deferral, a
 * data-dependent op such as NonZero) just leaves its outputs, and what
 * depends on them, unshaped. Known limit: a dim that only clamps a symbol
 * (a Slice of a fixed-size table by the sequence length) looks static
 * when every probe run that shaped it is above the table size; the
 * probes of run 2 (2, 3, 5, ...) make that need a table of one or two.
 *
 * Cost: three reshapes per node (folding does one) plus kernels run on
 * tensors of at most ONR_PROBE_MAX_ELEMS elements; no more than
 * ONR_PROBE_MAX_SYMS symbols (else the pass does nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"
#include "plan/passes.h"

#define ONR_PROBE_MAX_ELEMS 64
#define ONR_PROBE_RUNS 3
#define ONR_PROBE_NAME_MAX 128
#define ONR_PROBE_MAX_SYMS 64

typedef struct probe_sym {
    const char *name; /* a graph input's dim_param, or owned (anon) */
    int owned;
    int64_t p[ONR_PROBE_RUNS];
} probe_sym;

typedef struct probe_ws {
    onr_tensor *t[ONR_PROBE_RUNS]; /* per value: its tensor in run r (data: see has) */
    uint8_t *st[ONR_PROBE_RUNS];   /* per value: 0 unknown, 1 shaped, 2 shaped with owned data */
    probe_sym *sym;
    int n_sym;
    int *in_sym;       /* per graph input i and dim d: [i * ONR_MAX_RANK + d] */
    onr_tensor *meta_in, *meta_out;
    onr_tensor **in, **out, **res;
} probe_ws;

/* The smallest prime above x. */
static int64_t next_prime(int64_t x)
{
    for (x = x < 2 ? 2 : x + 1;; x++) {
        int prime = 1;
        for (int64_t d = 2; d * d <= x && prime; d++) prime = x % d != 0;
        if (prime) return x;
    }
}

static int is_shape_op(const onr_node *n)
{
    return !*n->domain && (strcmp(n->op_type, "Shape") == 0 || strcmp(n->op_type, "Size") == 0);
}

/* Nodes whose kernel is never run here: random ones (as folding), and
 * control flow (subgraphs). */
static int never_eval(const onr_node *n)
{
    static const char *const names[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                        "RandomUniformLike", "Multinomial", "Bernoulli", NULL};
    if (n->op && (n->op->impl->flags & ONR_OP_NOFOLD)) return 1;
    for (int i = 0; names[i]; i++)
        if (strcmp(n->op_type, names[i]) == 0) return 1;
    for (int a = 0; a < n->n_attr; a++)
        if (n->attrs[a].type == ONR_ATTR_GRAPH || n->attrs[a].type == ONR_ATTR_GRAPHS) return 1;
    return 0;
}

static int small_data(const onr_tensor *t)
{
    return t->data && t->dtype != ONR_STRING && t->numel <= ONR_PROBE_MAX_ELEMS;
}

/* The symbols of the graph inputs, and w->in_sym (per input and dim: its
 * symbol, -1 when static). None when there are none or more than
 * ONR_PROBE_MAX_SYMS (the pass then does nothing). */
static int collect_symbols(const onr_graph *g, probe_ws *w, onr_err *err)
{
    w->in_sym = malloc(((size_t)g->n_inputs + 1) * ONR_MAX_RANK * sizeof *w->in_sym);
    w->sym = calloc(ONR_PROBE_MAX_SYMS, sizeof *w->sym);
    if (!w->in_sym || !w->sym) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    int64_t p0 = 16, p1 = 2, p2 = 1;
    for (int i = 0; i < g->n_inputs; i++) {
        const onr_value *v = &g->values[g->inputs[i]];
        for (int d = 0; d < ONR_MAX_RANK; d++) {
            int *slot = &w->in_sym[(size_t)i * ONR_MAX_RANK + (size_t)d];
            *slot = -1;
            if (d >= v->rank || v->dims[d] >= 0) continue;
            const char *nm = v->dim_names[d];
            int k = w->n_sym;
            if (nm)
                for (k = 0; k < w->n_sym && !(w->sym[k].name && strcmp(w->sym[k].name, nm) == 0);)
                    k++;
            if (k == w->n_sym) {
                if (w->n_sym == ONR_PROBE_MAX_SYMS) {
                    w->n_sym = 0; /* too many: give up (the caller frees the names) */
                    return ONR_OK;
                }
                probe_sym *s = &w->sym[w->n_sym];
                if (nm) {
                    s->name = nm;
                } else {
                    size_t len = strlen(v->name) + 32;
                    char *a = malloc(len);
                    if (!a) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
                    snprintf(a, len, "?%s[%d]", v->name, d);
                    s->name = a;
                    s->owned = 1;
                }
                s->p[0] = p0 = next_prime(p0);
                p1 = next_prime(p1);
                s->p[1] = 2 * p1;
                s->p[2] = p2 = next_prime(p2);
                w->n_sym++;
            }
            *slot = k;
        }
    }
    return ONR_OK;
}

/* Shape node i's outputs in run r; evaluate it when it is small. */
static int probe_node(const onr_edit *e, int i, probe_ws *w, int r, int nthreads, onr_err *err)
{
    const onr_graph *g = e->g;
    const onr_node *n = &g->nodes[i];
    if (!n->op) return ONR_OK;
    int all_small = 1;
    for (int k = 0; k < n->n_in; k++) {
        w->in[k] = NULL;
        int v = n->inputs[k];
        if (v < 0) continue;
        if (!w->st[r][v]) return ONR_OK;
        w->meta_in[k] = w->t[r][v];
        w->meta_in[k].owns = 0;
        w->meta_in[k].cap = 0;
        w->meta_in[k].name = NULL;
        w->in[k] = &w->meta_in[k];
        all_small &= small_data(w->in[k]);
    }
    for (int o = 0; o < n->n_out; o++) {
        memset(&w->meta_out[o], 0, sizeof w->meta_out[o]);
        w->out[o] = n->outputs[o] >= 0 ? &w->meta_out[o] : NULL;
    }
    onr_err tmp = {0};
    onr_step s;
    if (onr_step_init(&s, n, n->op, n->n_in, n->n_out, &tmp))
        return tmp.code == ONR_E_NOMEM ? onr_seterr(err, ONR_E_NOMEM, "out of memory") : ONR_OK;
    for (int k = 0; k < n->n_in; k++) s.in[k] = w->in[k];
    for (int o = 0; o < n->n_out; o++) s.out[o] = w->out[o];
    int st = onr_step_create(&s, nthreads, &tmp);
    if (!st) st = onr_step_reshape(&s, nthreads, NULL, &tmp);
    onr_step_destroy(&s);
    if (st) return ONR_OK; /* deferred, or refused under the probe: unknown */
    int small_out = 1;
    for (int o = 0; o < n->n_out; o++) {
        if (!w->out[o]) continue;
        onr_tensor *t = &w->t[r][n->outputs[o]];
        memset(t, 0, sizeof *t);
        t->dtype = w->out[o]->dtype;
        t->rank = w->out[o]->rank;
        t->numel = w->out[o]->numel;
        memcpy(t->dims, w->out[o]->dims, sizeof(int64_t) * (size_t)t->rank);
        w->st[r][n->outputs[o]] = 1;
        small_out &= t->dtype != ONR_STRING && t->numel <= ONR_PROBE_MAX_ELEMS;
    }
    if (!small_out || !(all_small || is_shape_op(n)) || never_eval(n)) return ONR_OK;
    /* evaluate: the outputs' values feed later shape computations */
    for (int o = 0; o < n->n_out; o++) {
        w->res[o] = NULL;
        if (n->outputs[o] >= 0 && !(w->res[o] = calloc(1, sizeof(onr_tensor)))) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto done;
        }
    }
    memset(&tmp, 0, sizeof tmp);
    if (onr_exec_node(n, n->op, n->opset, w->in, n->n_in, NULL, w->res, n->n_out, nthreads, NULL,
                      &tmp)) {
        st = tmp.code == ONR_E_NOMEM ? onr_seterr(err, ONR_E_NOMEM, "out of memory") : ONR_OK;
        goto done;
    }
    for (int o = 0; o < n->n_out; o++) {
        if (!w->res[o]) continue;
        onr_tensor *t = &w->t[r][n->outputs[o]];
        if (w->res[o]->rank != t->rank || w->res[o]->dtype != t->dtype ||
            memcmp(w->res[o]->dims, t->dims, sizeof(int64_t) * (size_t)t->rank) != 0)
            continue; /* run disagrees with reshape: keep the shape only */
        onr_tensor *c = w->res[o]->owns ? w->res[o] : onr_tensor_clone(w->res[o]);
        if (!c) {
            st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
            goto done;
        }
        if (c != w->res[o]) free(w->res[o]);
        w->res[o] = NULL;
        *t = *c; /* t owns c's data now */
        free(c);
        t->name = NULL;
        w->st[r][n->outputs[o]] = 2;
    }
done:
    for (int o = 0; o < n->n_out; o++) onr_tensor_free(w->res[o]);
    return st;
}

static int probe_run(const onr_edit *e, probe_ws *w, int r, int nthreads, onr_err *err)
{
    const onr_graph *g = e->g;
    for (int v = 0; v < g->n_values; v++) {
        const onr_tensor *k = g->values[v].konst;
        if (!k) continue;
        w->t[r][v] = *k;
        w->t[r][v].owns = 0;
        w->t[r][v].cap = 0;
        w->t[r][v].name = NULL;
        w->st[r][v] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const onr_value *val = &g->values[v];
        if (val->konst || val->dtype == ONR_UNDEFINED || val->rank < 0) continue;
        int64_t dims[ONR_MAX_RANK];
        int ok = 1;
        for (int d = 0; d < val->rank && ok; d++) {
            int k = w->in_sym[(size_t)i * ONR_MAX_RANK + (size_t)d];
            dims[d] = val->dims[d] >= 0 ? val->dims[d] : k >= 0 ? w->sym[k].p[r] : -1;
            ok = dims[d] >= 0;
        }
        onr_err tmp = {0};
        if (ok && !onr_tensor_set_shape(&w->t[r][v], val->dtype, val->rank, dims, &tmp))
            w->st[r][v] = 1;
    }
    int st = ONR_OK;
    for (int i = 0; i < g->n_nodes && !st; i++)
        if (!e->dead[i]) st = probe_node(e, i, w, r, nthreads, err);
    return st;
}

/* ---- naming symbolic dims ------------------------------------------------------ */

/* Whether value x[r] in each run r < nr is c * prod(p_k[r]^e_k) (run 0's
 * factorization over the probe primes) or p_k[r] + c, and its name. */
static const char *dim_name(const probe_ws *w, const int64_t *x, int nr, char *buf, size_t len)
{
    for (int k = 0; k < w->n_sym; k++) {
        int all = 1;
        for (int r = 0; r < nr; r++) all &= w->sym[k].p[r] == x[r];
        if (all) return w->sym[k].name;
    }
    /* monomial */
    if (x[0] > 0) {
        int64_t rest = x[0], xr[ONR_PROBE_RUNS] = {1, 1, 1};
        char prod[ONR_PROBE_NAME_MAX];
        size_t o = 0;
        int used = 0, ok = 1;
        prod[0] = 0;
        for (int k = 0; k < w->n_sym && ok; k++) {
            for (int e = 0; ok && rest % w->sym[k].p[0] == 0; e++) {
                if (e >= 8) ok = 0;
                for (int r = 1; r < nr && ok; r++)
                    if (xr[r] > INT64_MAX / w->sym[k].p[r]) ok = 0;
                if (!ok) break;
                rest /= w->sym[k].p[0];
                for (int r = 1; r < nr; r++) xr[r] *= w->sym[k].p[r];
                int m = snprintf(prod + o, sizeof prod - o, "%s%s", used ? "*" : "", w->sym[k].name);
                if (m < 0 || (size_t)m >= sizeof prod - o) ok = 0;
                else o += (size_t)m;
                used++;
            }
        }
        for (int r = 1; r < nr && ok; r++)
            ok = rest <= INT64_MAX / xr[r] && rest * xr[r] == x[r];
        if (ok && used) {
            int m = rest == 1 ? snprintf(buf, len, "%s", prod)
                              : snprintf(buf, len, "%lld*%s", (long long)rest, prod);
            return m > 0 && (size_t)m < len ? buf : NULL;
        }
    }
    /* a symbol plus a constant */
    for (int k = 0; k < w->n_sym; k++) {
        int64_t c = x[0] - w->sym[k].p[0];
        int all = 1;
        for (int r = 1; r < nr; r++) all &= x[r] - w->sym[k].p[r] == c;
        if (!all) continue;
        int m = snprintf(buf, len, "%s%c%lld", w->sym[k].name, c < 0 ? '-' : '+',
                         (long long)(c < 0 ? -c : c));
        return m > 0 && (size_t)m < len ? buf : NULL;
    }
    return NULL;
}

/* Write what the runs agree on into the values that static inference left
 * without a shape (or with symbolic dims). Runs 0 and 1 must both have
 * shaped a value; run 2 (the smallest probes) counts where it shaped it
 * too: a dim it sees differently is symbolic (a clamp of the symbol by a
 * fixed size between its probes), and names must fit it. */
static int write_shapes(onr_edit *e, const probe_ws *w, onr_err *err)
{
    onr_graph *g = e->g;
    for (int v = 0; v < g->n_values; v++) {
        onr_value *val = &g->values[v];
        if (val->konst || val->is_input || !w->st[0][v] || !w->st[1][v]) continue;
        const onr_tensor *t[ONR_PROBE_RUNS] = {&w->t[0][v], &w->t[1][v], &w->t[2][v]};
        if (t[0]->rank != t[1]->rank || t[0]->dtype != t[1]->dtype || t[0]->dtype == ONR_UNDEFINED)
            continue;
        int nr = w->st[2][v] ? 3 : 2;
        if (nr == 3 && (t[2]->rank != t[0]->rank || t[2]->dtype != t[0]->dtype)) continue;
        int sym = 0;
        for (int d = 0; d < t[0]->rank; d++)
            for (int r = 1; r < nr; r++) sym |= t[r]->dims[d] != t[0]->dims[d];
        int stat_known = val->dtype != ONR_UNDEFINED && val->rank >= 0;
        for (int d = 0; d < val->rank && stat_known; d++) stat_known = val->dims[d] >= 0;
        if (!sym && stat_known) continue; /* folding's shape: the same */
        int64_t dims[ONR_MAX_RANK];
        char names[ONR_MAX_RANK][ONR_PROBE_NAME_MAX];
        const char *np[ONR_MAX_RANK];
        for (int d = 0; d < t[0]->rank; d++) {
            int64_t x[ONR_PROBE_RUNS];
            int differ = 0;
            for (int r = 0; r < nr; r++) differ |= (x[r] = t[r]->dims[d]) != t[0]->dims[d];
            np[d] = NULL;
            dims[d] = differ ? -1 : x[0];
            if (differ) np[d] = dim_name(w, x, nr, names[d], sizeof names[d]);
            /* a graph output keeps the name its declaration gives a dim: that
             * is what the API reports to users (a mismatch only makes
             * onr_fuse_dim_eq answer "different", which is safe) */
            if (differ && val->is_output && val->rank == t[0]->rank && val->dim_names[d])
                np[d] = val->dim_names[d];
        }
        int st = onr_edit_set_shape(e, v, t[0]->dtype, t[0]->rank, dims, np, err);
        if (st) return st;
    }
    return ONR_OK;
}

onr_status onr_pass_shapes(onr_edit *e, int nthreads, onr_err *err)
{
    onr_graph *g = e->g;
    probe_ws w = {0};
    int st = collect_symbols(g, &w, err);
    if (st || !w.n_sym) goto done;
    int wide = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].n_in > wide) wide = g->nodes[i].n_in;
        if (g->nodes[i].n_out > wide) wide = g->nodes[i].n_out;
    }
    size_t nv = (size_t)g->n_values + 1;
    for (int r = 0; r < ONR_PROBE_RUNS; r++) {
        w.t[r] = calloc(nv, sizeof *w.t[r]);
        w.st[r] = calloc(nv, 1);
    }
    w.meta_in = calloc((size_t)wide, sizeof *w.meta_in);
    w.meta_out = calloc((size_t)wide, sizeof *w.meta_out);
    w.in = calloc((size_t)wide, sizeof *w.in);
    w.out = calloc((size_t)wide, sizeof *w.out);
    w.res = calloc((size_t)wide, sizeof *w.res);
    int ok = 1;
    for (int r = 0; r < ONR_PROBE_RUNS; r++) ok &= w.t[r] && w.st[r];
    if (!ok || !w.meta_in || !w.meta_out || !w.in ||
        !w.out || !w.res) {
        st = onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto done;
    }
    for (int r = 0; r < ONR_PROBE_RUNS && !st; r++) st = probe_run(e, &w, r, nthreads, err);
    if (!st) st = write_shapes(e, &w, err);
done:
    for (int r = 0; r < ONR_PROBE_RUNS; r++) {
        for (int v = 0; w.t[r] && w.st[r] && v < g->n_values; v++)
            if (w.st[r][v] == 2) free(w.t[r][v].data);
        free(w.t[r]), free(w.st[r]);
    }
    for (int k = 0; w.sym && k < ONR_PROBE_MAX_SYMS; k++)
        if (w.sym[k].owned) free((char *)w.sym[k].name);
    free(w.sym), free(w.in_sym), free(w.meta_in), free(w.meta_out), free(w.in), free(w.out), free(w.res);
    return st;
}
