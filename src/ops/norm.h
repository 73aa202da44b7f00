/*
 * norm.h - ChannelLayerNormalization's block kernel in its two builds
 * (norm-cln.h: baseline in norm.c, AVX-512 in norm-avx512.c, the latter
 * only called after a CPU check), and the tests' switch between them.
 */
#ifndef ONR_OPS_NORM_H
#define ONR_OPS_NORM_H

#include <stdint.h>

void onr_cln_block_ref(const float *x, float *y, int64_t C, int64_t P, int64_t p0, int nb,
                       const float *s, const float *b, double eps, int last);
void onr_cln_block_avx512(const float *x, float *y, int64_t C, int64_t P, int64_t p0, int nb,
                          const float *s, const float *b, double eps, int last);
/* 1: the baseline build whatever the CPU; 0 or -1: the best the CPU runs
 * (tests). */
void onr_cln_force_ref(int on);

#endif
