/*
 * passes.c - the pass pipeline, in its fixed order.
 */
#include "plan/passes.h"

onr_status onr_passes_run(onr_edit *e, const onr_pass_opts *o, onr_err *err)
{
    int st;
    if ((st = onr_edit_compact(e, err))) return st; /* topological order for the passes */
    /* folding first, so a Dropout's training_mode made by a Constant node is
     * a constant by the time the identity pass looks at it */
    if ((st = onr_pass_fold(e, o->nthreads, err))) return st;
    if ((st = onr_pass_identity(e, err))) return st;
    if ((st = onr_pass_dce(e, err))) return st;
    if (o->fuse) {
        /* Order matters: norms and activations first, so the attention and
         * GEMM patterns see them fused; each pass owns one file. */
        /* FUSE: layernorm, rmsnorm (fuse_norm.c) */
        if ((st = onr_pass_fuse_gelu(e, err))) return st;
        /* FUSE: rotary (fuse_rotary.c) */
        /* FUSE: attention (fuse_attention.c) */
        /* FUSE: skip layernorm (fuse_norm.c) */
        if ((st = onr_pass_fuse_gemm(e, err))) return st;
        /* FUSE: conv epilogues, BatchNormalization folding (fuse_conv.c) */
        if ((st = onr_pass_dce(e, err))) return st;
    }
    return onr_edit_compact(e, err);
}
