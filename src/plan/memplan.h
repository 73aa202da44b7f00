/*
 * memplan.h - where every activation lives: value lifetimes over the final
 * step order, and offsets in one 64-byte-aligned arena.
 *
 * Storage classes: constants (read in place), graph inputs (the caller's
 * buffers), owned buffers (graph outputs, which the session hands out
 * without copying, string tensors, and the outputs of ONR_OP_DYNAMIC_OUT
 * steps, which run sizes itself), views (the output of a shape-only
 * op is its input's buffer) and the arena (everything else).
 *
 * Offsets are assigned step by step in execution order: a step's outputs
 * take the lowest gap that fits among the blocks still live, or the block
 * of an input that dies at that step when the operator can write in place;
 * after the step, the blocks whose last reader it was are released. With
 * static shapes this runs once at build time; with symbolic dims the
 * executor reruns it from the first step whose shapes changed, and the
 * offsets are reused while the shapes repeat. The arena only grows (when a
 * larger shape needs more), so runs at shapes seen before allocate nothing.
 */
#ifndef ONR_MEMPLAN_H
#define ONR_MEMPLAN_H

#include "exec/exec.h"

enum { ONR_MEM_NONE, ONR_MEM_CONST, ONR_MEM_INPUT, ONR_MEM_OWNED, ONR_MEM_VIEW, ONR_MEM_ARENA };

typedef struct onr_memplan {
    int n_values, n_steps;
    uint8_t *cls;     /* storage class per value */
    int *first;       /* producing step, -1 for none */
    int *vlast;       /* last step reading the value or a view of it; n_steps for graph outputs */
    int *root;        /* value whose buffer v uses (itself, a view's source, an in-place input) */
    int *blk_last;    /* per arena root: last step reading its block */
    size_t *off, *size; /* per arena root: offset and bytes at the current layout */
    uint8_t *inplace; /* per value: written over an input's block */
    int *live;        /* arena roots holding blocks, by offset */
    int n_live;
    void *arena;
    size_t arena_cap;  /* bytes allocated */
    size_t arena_peak; /* bytes the current layout needs */
    size_t total_bytes; /* sum of every arena value's size at the current layout */
    int valid;         /* offsets match the current shapes */
    /* the memory budget the arena counts against (NULL: a subgraph's plan,
     * counted against the enclosing run), and value names for its messages */
    struct onr_budget *budget;
    const onr_graph *g;
    int dry; /* lay out without memory: offsets and arena_peak only */
} onr_memplan;

/* Classes and lifetimes from the steps (rt: the plan's runtime tensors, one
 * per graph value). */
onr_status onr_memplan_init(onr_memplan *mp, const onr_graph *g, onr_step *steps, int n_steps,
                            onr_tensor *rt, onr_err *err);
void onr_memplan_free(onr_memplan *mp);

/* Restart the layout at step i: the blocks live across it keep their offsets. */
void onr_memplan_restart(onr_memplan *mp, int i);
/* Place step i's outputs (shapes known) and point their tensors at the
 * arena; grows the arena (moving the live blocks) when needed. */
onr_status onr_memplan_place(onr_memplan *mp, onr_step *steps, int i, onr_tensor *rt,
                             onr_err *err);
/* Make the arena at least `bytes` now (one allocation before a layout
 * whose peak a dry layout measured). */
onr_status onr_memplan_reserve(onr_memplan *mp, size_t bytes, onr_tensor *rt, onr_err *err);
/* Release the blocks whose last reader is step i. */
void onr_memplan_release(onr_memplan *mp, int i);

#endif
