/*
 * norm-avx512.c - ChannelLayerNormalization's block kernel (norm-cln.h)
 * compiled with AVX-512 flags by its file name: the double sums of 16
 * positions take 2 vectors per channel instead of 8. Multiplies and adds
 * are not contracted into FMAs, so its results are the baseline build's
 * (and LayerNormalization's) bit for bit. Only called after a CPU check.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include "ops/norm.h"

#define ONR_CLN_B 16
#define CLN_BLOCK onr_cln_block_avx512
#include "ops/norm-cln.h"
