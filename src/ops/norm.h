/*
 * norm.h - ChannelLayerNormalization's block kernel and LayerNormalization's
 * rows in their two builds (baseline in norm.c, AVX-512 in norm-avx512.c,
 * the latter only called after a CPU check), and the tests' switch between
 * them.
 */
#ifndef ONR_OPS_NORM_H
#define ONR_OPS_NORM_H

#include <stdint.h>

void onr_cln_block_ref(const float *x, float *y, int64_t C, int64_t P, int64_t p0, int nb,
                       const float *s, const float *b, double eps, int last);
void onr_cln_block_avx512(const float *x, float *y, int64_t C, int64_t P, int64_t p0, int nb,
                          const float *s, const float *b, double eps, int last);
/* LayerNormalization's float32 row (y may be x) and SkipLayerNormalization's
 * (dst = (x + bias) + k, then y from dst; dst may be x or k, y may be dst):
 * the statistics in two passes of double lanes, then y = (x - mean) * inv *
 * s + b in float32. The baseline build (norm.c) and an AVX-512 one
 * (norm-avx512.c, only called after a CPU check), bit for bit the same. */
void onr_ln_row_f32_ref(const float *x, float *y, int64_t n, const float *s, const float *b,
                        double eps, double *mean_out, double *inv_out);
void onr_ln_row_f32_avx512(const float *x, float *y, int64_t n, const float *s, const float *b,
                           double eps, double *mean_out, double *inv_out);
void onr_sln_row_f32_ref(const float *x, const float *k, const float *bias, const float *g,
                         const float *b, float *dst, float *y, int64_t n, double eps,
                         double *mean_out, double *inv_out);
void onr_sln_row_f32_avx512(const float *x, const float *k, const float *bias, const float *g,
                            const float *b, float *dst, float *y, int64_t n, double eps,
                            double *mean_out, double *inv_out);
/* 1: the baseline builds (the block kernel and the rows) whatever the CPU;
 * 0 or -1: the best the CPU runs (tests). */
void onr_cln_force_ref(int on);

#endif
