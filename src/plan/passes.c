/*
 * passes.c - the pass pipeline, in its fixed order.
 */
#include "plan/passes.h"

static int live_nodes(const onr_edit *e)
{
    int n = 0;
    for (int i = 0; i < e->g->n_nodes; i++) n += !e->dead[i];
    return n;
}

onr_status onr_passes_run(onr_edit *e, const onr_pass_opts *o, onr_pass_stats *stats,
                          onr_err *err)
{
    int st;
    if ((st = onr_edit_compact(e, err))) return st; /* topological order for the passes */
    /* folding first, so a Dropout's training_mode made by a Constant node is
     * a constant by the time the identity pass looks at it */
    if ((st = onr_pass_fold(e, o->nthreads, err))) return st;
    if ((st = onr_pass_identity(e, err))) return st;
    if ((st = onr_pass_dce(e, err))) return st;
    if (stats) stats->nodes_unfused = live_nodes(e);

    if (o->fuse) {
        /* shapes below symbolic dims, which the fusions' checks need */
        if ((st = onr_pass_shapes(e, o->nthreads, err))) return st;
        /* Order matters: norms and activations first, so the attention and
         * GEMM patterns see them fused; each pass owns one file. */
        if ((st = onr_pass_fuse_layernorm(e, err))) return st;
        if ((st = onr_pass_fuse_rmsnorm(e, err))) return st;
        if ((st = onr_pass_fuse_gelu(e, err))) return st;
        if ((st = onr_pass_fuse_rotary(e, err))) return st;
        if ((st = onr_pass_fuse_attention(e, err))) return st;
        if ((st = onr_pass_fuse_skip_layernorm(e, err))) return st;
        if ((st = onr_pass_fuse_channel_layernorm(e, err))) return st;
        if ((st = onr_pass_fuse_gemm(e, err))) return st;
        if ((st = onr_pass_fuse_qkv(e, err))) return st;
        if ((st = onr_pass_fuse_conv(e, err))) return st;
        if ((st = onr_pass_dce(e, err))) return st;
    }
    return onr_edit_compact(e, err);
}
