/*
 * conv.h - test hooks of conv.c (Conv, FusedConv, ConvTranspose).
 */
#ifndef ONR_OPS_CONV_H
#define ONR_OPS_CONV_H

#include <stddef.h>
#include <stdint.h>

/* The transposed GEMM path for small outputs (CONV_GEMMT, conv.c): -1
 * automatic (create packs W^T when the planner's output shape is one that
 * runs transposed), 0 never, 1 whenever W is a constant float W that is not
 * depthwise (create packs it without a shape; reshape then takes the path
 * for every 1x1 or im2col geometry whose column matrix fits). Convolutions
 * created from now on. */
void onr_conv_force_transposed(int mode);
/* How the transposed path's threads split a product: -1 automatic (the
 * output positions where gathering col^T in every part would cost more
 * than reading W^T in every part), 0 the output channels, 1 the
 * positions. Results do not depend on it. Process-wide; for tests. */
void onr_conv_t_split(int mode);

/* How many times a Conv / FusedConv run took the transposed path in this
 * process (a relaxed atomic counter), for tests. */
size_t onr_conv_transposed_count(void);
/* How many of those gathered col^T tap-major (layers of several taps and
 * at least 16 input channels per group: K ordered tap, then channel, from
 * X transposed to channels-last; conv.c's conv_colt_tapmajor), for tests. */
size_t onr_conv_t_tapmajor_count(void);
/* Test hook: whether tap-major layers of one 2-D kernel with dilation 1
 * read their taps in place from X laid out by rows (conv.c's
 * conv_t_rows_products; no col^T): -1 or 1 yes (the default), 0 never.
 * Reshapes from now on; results may differ in the last bits (K summed in
 * runs). How many runs did, for tests. */
void onr_conv_t_rows(int mode);
size_t onr_conv_t_rows_count(void);
/* Test hook: the transposed path's output positions per band (gathered
 * and multiplied at a time; rounded up to a whole row tile), 0 for the
 * automatic choice (bands only where col^T would not fit in half the L2).
 * Reshapes from now on; results do not depend on it. */
void onr_conv_t_force_band(int64_t rows);

/* Whether a 2-D convolution of W [M, C/group, KH, KW] with these strides
 * (smax: the largest) runs on the small-group kernel (dwconv.c) with more
 * than one input channel a group: the convolutions whose MaxPool
 * fuse_conv.c folds into FusedConv (pooled band by band, never written
 * whole). How many FusedConv runs pooled so, in this process (tests). */
int onr_conv_pool_banded(int64_t group, const int64_t wdims[4], int64_t smax);
size_t onr_conv_pool_banded_count(void);

/* Whether create copies a constant W whose rows are a multiple of 512
 * floats long (Cg * taps: 1x1 layers of 512, 1024, 2048 inputs) with
 * padded rows, so that the GEMM reads it in place (1, the default) or
 * leaves it (0: the SGEMM then copies it on every run). Convolutions
 * created from now on. How many creates padded one, in this process. */
void onr_conv_force_padded(int on);
size_t onr_conv_padded_count(void);

/* How many creates consumed W because the plan's shapes are fixed and the
 * path they take reads only W's packed form (Winograd's, the transposed
 * path's, or a 1x1 layer's AMX terms), in this process. */
size_t onr_conv_w_released_count(void);

/* How many FusedConv runs applied the input scale S (its fifth input) in W
 * (mode 1), in the transposed path's gather (2) or in a copy of X (3), in
 * this process (relaxed atomic counters), for tests. */
size_t onr_conv_scale_count(int mode);

#endif
