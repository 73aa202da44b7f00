/*
 * memplan.c - activation lifetimes and arena offsets; see memplan.h.
 */
#include "plan/memplan.h"

#include <stdlib.h>
#include <string.h>

#include "ir/budget.h"

#define ALIGN 64

static size_t round_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

static int vidx(const onr_tensor *t, const onr_tensor *rt) { return t ? (int)(t - rt) : -1; }

onr_status onr_memplan_init(onr_memplan *mp, const onr_graph *g, onr_step *steps, int n_steps,
                            onr_tensor *rt, onr_err *err)
{
    memset(mp, 0, sizeof *mp);
    int nv = g->n_values;
    mp->n_values = nv;
    mp->n_steps = n_steps;
    mp->g = g;
    size_t n1 = (size_t)nv + 1;
    mp->cls = calloc(n1, 1);
    mp->inplace = calloc(n1, 1);
    mp->first = malloc(n1 * sizeof *mp->first);
    mp->vlast = malloc(n1 * sizeof *mp->vlast);
    mp->root = malloc(n1 * sizeof *mp->root);
    mp->blk_last = malloc(n1 * sizeof *mp->blk_last);
    mp->off = calloc(n1, sizeof *mp->off);
    mp->size = calloc(n1, sizeof *mp->size);
    mp->live = malloc(n1 * sizeof *mp->live);
    if (!mp->cls || !mp->inplace || !mp->first || !mp->vlast || !mp->root || !mp->blk_last ||
        !mp->off || !mp->size || !mp->live) {
        onr_memplan_free(mp);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    }
    for (int v = 0; v < nv; v++) {
        mp->first[v] = -1;
        mp->vlast[v] = -1;
        mp->root[v] = v;
        mp->blk_last[v] = -1;
        mp->cls[v] = g->values[v].konst ? ONR_MEM_CONST : ONR_MEM_NONE;
    }
    for (int i = 0; i < g->n_inputs; i++) mp->cls[g->inputs[i]] = ONR_MEM_INPUT;
    for (int i = 0; i < n_steps; i++) {
        const onr_step *s = &steps[i];
        for (int k = 0; k < s->n_in; k++) {
            int v = vidx(s->in[k], rt);
            if (v >= 0) mp->vlast[v] = i;
        }
        for (int o = 0; o < s->n_out; o++) {
            int v = vidx(s->out[o], rt);
            if (v < 0) continue;
            mp->first[v] = i;
            if (o == 0 && (s->op->impl->flags & ONR_OP_VIEW)) mp->cls[v] = ONR_MEM_VIEW;
            else if (s->op->impl->flags & ONR_OP_DYNAMIC_OUT) mp->cls[v] = ONR_MEM_OWNED;
            else mp->cls[v] = ONR_MEM_ARENA;
            if (mp->vlast[v] < i) mp->vlast[v] = i; /* an unread output dies at once */
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        mp->vlast[v] = n_steps;
        /* graph outputs own their buffers, handed to the caller as they are */
        if (mp->cls[v] == ONR_MEM_ARENA || mp->cls[v] == ONR_MEM_VIEW) mp->cls[v] = ONR_MEM_OWNED;
    }
    /* a view keeps its source's block alive as long as itself */
    for (int i = n_steps - 1; i >= 0; i--) {
        const onr_step *s = &steps[i];
        if (!(s->op->impl->flags & ONR_OP_VIEW) || s->n_out < 1) continue;
        int y = vidx(s->out[0], rt), x = vidx(s->in[0], rt);
        if (y < 0 || x < 0 || mp->cls[y] != ONR_MEM_VIEW) continue;
        if (mp->vlast[y] > mp->vlast[x]) mp->vlast[x] = mp->vlast[y];
    }
    return ONR_OK;
}

void onr_memplan_free(onr_memplan *mp)
{
    free(mp->cls), free(mp->inplace), free(mp->first), free(mp->vlast), free(mp->root);
    free(mp->blk_last), free(mp->off), free(mp->size), free(mp->live);
    free(mp->arena);
    onr_budget_give(mp->budget, mp->arena_cap);
    memset(mp, 0, sizeof *mp);
}

static void live_insert(onr_memplan *mp, int r)
{
    int j = mp->n_live;
    while (j > 0 && mp->off[mp->live[j - 1]] > mp->off[r]) {
        mp->live[j] = mp->live[j - 1];
        j--;
    }
    mp->live[j] = r;
    mp->n_live++;
}

void onr_memplan_restart(onr_memplan *mp, int i)
{
    mp->n_live = 0;
    mp->arena_peak = 0;
    mp->total_bytes = 0;
    for (int v = 0; v < mp->n_values; v++) {
        if (mp->cls[v] != ONR_MEM_ARENA || mp->root[v] != v || mp->first[v] < 0) continue;
        if (mp->first[v] < i && mp->blk_last[v] >= i) {
            live_insert(mp, v);
            size_t end = mp->off[v] + mp->size[v];
            if (end > mp->arena_peak) mp->arena_peak = end;
        }
    }
    mp->valid = 0;
}

/* Lowest offset with `bytes` free between the live blocks. */
static size_t first_fit(const onr_memplan *mp, size_t bytes)
{
    size_t at = 0;
    for (int j = 0; j < mp->n_live; j++) {
        int r = mp->live[j];
        if (mp->off[r] >= at + bytes) break;
        size_t end = mp->off[r] + mp->size[r];
        if (end > at) at = end;
    }
    return at;
}

/* Point every placed arena value (and view of one) at the arena. */
static void repoint(onr_memplan *mp, onr_tensor *rt, int upto_step)
{
    for (int v = 0; v < mp->n_values; v++) {
        int r = mp->root[v];
        if (mp->first[v] < 0 || mp->first[v] > upto_step || mp->cls[r] != ONR_MEM_ARENA) continue;
        if (mp->cls[v] != ONR_MEM_ARENA && mp->cls[v] != ONR_MEM_VIEW) continue;
        rt[v].data = mp->arena ? (char *)mp->arena + mp->off[r] : NULL;
        rt[v].owns = 0;
        rt[v].cap = 0;
    }
}

/* Grow the arena to hold `need` bytes for value y (-1: a reservation),
 * counted against the budget before allocating. */
static onr_status grow(onr_memplan *mp, size_t need, onr_tensor *rt, int step, int y,
                       onr_err *err)
{
    if (mp->dry) return ONR_OK;
    size_t cap = mp->arena_cap + mp->arena_cap / 2;
    if (cap < need || !onr_budget_fits(mp->budget, round_up(cap))) cap = need;
    cap = round_up(cap);
    const char *name = y >= 0 && mp->g ? mp->g->values[y].name : NULL;
    onr_status st = onr_budget_take_any(mp->budget, name, y >= 0 ? mp->size[y] : cap, cap, err);
    if (st) return st;
    void *p = onr_alloc_aligned(cap); /* ALIGN (64) or more */
    if (!p) {
        onr_budget_give(mp->budget, cap);
        return onr_seterr(err, ONR_E_NOMEM, "out of memory for a %zu-byte activation arena", cap);
    }
    if (mp->arena) memcpy(p, mp->arena, mp->arena_cap);
    free(mp->arena);
    onr_budget_give(mp->budget, mp->arena_cap);
    mp->arena = p;
    mp->arena_cap = cap;
    repoint(mp, rt, step);
    return ONR_OK;
}

/* Whether step i may write output value y over the block of one of its
 * inputs: the op allows it, the input's block dies here and has y's size. */
static int inplace_source(const onr_memplan *mp, const onr_step *s, int i, size_t bytes,
                          const onr_tensor *rt)
{
    const onr_op_impl *impl = s->op->impl;
    int only = -1; /* the one input the op names (inplace_input), or any (-1) */
    if (!(impl->flags & ONR_OP_INPLACE)) {
        if (!impl->inplace_input || !s->params || !s->shaped) return -1;
        only = impl->inplace_input(s->params);
        if (only < 0 || only >= s->n_in) return -1;
    }
    for (int k = 0; k < s->n_in; k++) {
        if (only >= 0 && k != only) continue;
        int x = vidx(s->in[k], rt);
        if (x < 0) continue;
        int r = mp->root[x];
        if (mp->cls[r] != ONR_MEM_ARENA || mp->blk_last[r] != i || mp->size[r] != bytes) continue;
        if (onr_tensor_nbytes(s->in[k]) != onr_tensor_nbytes(s->out[0])) continue;
        /* the block must be read by no other input of this step under
         * another shape (elementwise ops), or at all (an op naming one) */
        int ok = 1;
        for (int j = 0; j < s->n_in && ok; j++) {
            int w = vidx(s->in[j], rt);
            if (j != k && w >= 0 && mp->root[w] == r &&
                (only >= 0 || onr_tensor_nbytes(s->in[j]) != bytes))
                ok = 0;
        }
        if (ok) return r;
    }
    return -1;
}

onr_status onr_memplan_place(onr_memplan *mp, onr_step *steps, int i, onr_tensor *rt,
                             onr_err *err)
{
    onr_step *s = &steps[i];
    for (int o = 0; o < s->n_out; o++) {
        int y = vidx(s->out[o], rt);
        if (y < 0) continue;
        if (mp->cls[y] == ONR_MEM_VIEW) {
            int x = vidx(s->in[0], rt);
            mp->root[y] = x >= 0 ? mp->root[x] : y;
            if (x >= 0 && mp->cls[mp->root[x]] == ONR_MEM_ARENA &&
                mp->blk_last[mp->root[x]] < mp->vlast[y])
                mp->blk_last[mp->root[x]] = mp->vlast[y];
            continue;
        }
        if (mp->cls[y] != ONR_MEM_ARENA) continue;
        if (rt[y].dtype == ONR_STRING || rt[y].kind) {
            /* strings (and containers) are arrays of pointers the tensor
             * owns and frees: never arena bytes, whatever the op */
            mp->cls[y] = ONR_MEM_OWNED;
            continue;
        }
        size_t bytes = round_up(onr_tensor_nbytes(&rt[y]));
        mp->total_bytes += bytes;
        int r = o == 0 ? inplace_source(mp, s, i, bytes, rt) : -1;
        if (r >= 0) {
            mp->root[y] = r;
            mp->inplace[y] = 1;
            mp->blk_last[r] = mp->vlast[y];
        } else {
            mp->root[y] = y;
            mp->inplace[y] = 0;
            mp->size[y] = bytes;
            mp->blk_last[y] = mp->vlast[y];
            mp->off[y] = first_fit(mp, bytes);
            live_insert(mp, y);
            size_t end = mp->off[y] + bytes;
            if (end > mp->arena_peak) mp->arena_peak = end;
            if (end > mp->arena_cap) {
                onr_status st = grow(mp, end, rt, i, y, err);
                if (st) return st;
            }
        }
        rt[y].data = mp->arena ? (char *)mp->arena + mp->off[mp->root[y]] : NULL;
        rt[y].owns = 0;
        rt[y].cap = 0;
    }
    return ONR_OK;
}

onr_status onr_memplan_reserve(onr_memplan *mp, size_t bytes, onr_tensor *rt, onr_err *err)
{
    return bytes > mp->arena_cap ? grow(mp, bytes, rt, -1, -1, err) : ONR_OK;
}

void onr_memplan_release(onr_memplan *mp, int i)
{
    int w = 0;
    for (int j = 0; j < mp->n_live; j++) {
        int r = mp->live[j];
        if (mp->blk_last[r] > i) mp->live[w++] = r;
    }
    mp->n_live = w;
}
