/*
 * conv.h - test hooks of conv.c (Conv, FusedConv, ConvTranspose).
 */
#ifndef ONR_OPS_CONV_H
#define ONR_OPS_CONV_H

#include <stddef.h>

/* The transposed GEMM path for small outputs (CONV_GEMMT, conv.c): -1
 * automatic (create packs W^T when the planner's output shape is one that
 * runs transposed), 0 never, 1 whenever W is a constant float W that is not
 * depthwise (create packs it without a shape; reshape then takes the path
 * for every 1x1 or im2col geometry whose column matrix fits). Convolutions
 * created from now on. */
void onr_conv_force_transposed(int mode);

/* How many times a Conv / FusedConv run took the transposed path in this
 * process (a relaxed atomic counter), for tests. */
size_t onr_conv_transposed_count(void);

#endif
