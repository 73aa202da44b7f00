/*
 * norm-cln.h - ChannelLayerNormalization's block kernel (ops/norm.c), written
 * once and compiled twice: by norm.c with the baseline flags and by
 * norm-avx512.c with AVX-512's (the double sums run 8 lanes a vector
 * instead of 2). The includer names the function (CLN_BLOCK). Both builds
 * compute every value with the same operations in the same order, and the
 * AVX-512 one must not contract a multiply and an add into an FMA (its
 * file turns contraction off), so both give onr_ln_row_f32_ref's results bit for
 * bit.
 */
#ifndef CLN_BLOCK
#error "define CLN_BLOCK (the function's name) before including norm-cln.h"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef ONR_CLN_B
#define ONR_CLN_B 16 /* positions a block normalizes together */
#endif

/* Positions [p0, p0 + nb) (nb <= ONR_CLN_B) of one image x ([C, P]) into y
 * ([C, P], or [P, C] when last): stats_f32's sums per position (8 double
 * lanes over the channels, then the tail), then row_affine_f32's step. */
void CLN_BLOCK(const float *x, float *y, int64_t C, int64_t P, int64_t p0, int nb, const float *s,
               const float *b, double eps, int last)
{
    enum { B = ONR_CLN_B };
    double a[8][B], t[B], mean[B];
    float fm[B], fi[B];
    memset(a, 0, sizeof a);
    memset(t, 0, sizeof t);
    int64_t c = 0;
    const float *xb = x + p0;
    for (; c + 8 <= C; c += 8)
        for (int k = 0; k < 8; k++)
            for (int j = 0; j < nb; j++) a[k][j] += xb[(c + k) * P + j];
    for (; c < C; c++)
        for (int j = 0; j < nb; j++) t[j] += xb[c * P + j];
    for (int j = 0; j < nb; j++)
        mean[j] = (((a[0][j] + a[1][j]) + (a[2][j] + a[3][j])) +
                   ((a[4][j] + a[5][j]) + (a[6][j] + a[7][j])) + t[j]) /
                  (double)C;
    memset(a, 0, sizeof a);
    memset(t, 0, sizeof t);
    for (c = 0; c + 8 <= C; c += 8)
        for (int k = 0; k < 8; k++)
            for (int j = 0; j < nb; j++) {
                double d = xb[(c + k) * P + j] - mean[j];
                a[k][j] += d * d;
            }
    for (; c < C; c++)
        for (int j = 0; j < nb; j++) t[j] += (xb[c * P + j] - mean[j]) * (xb[c * P + j] - mean[j]);
    for (int j = 0; j < nb; j++) {
        double var = (((a[0][j] + a[1][j]) + (a[2][j] + a[3][j])) +
                      ((a[4][j] + a[5][j]) + (a[6][j] + a[7][j])) + t[j]) /
                     (double)C;
        fm[j] = (float)mean[j];
        fi[j] = (float)(1.0 / sqrt(var + eps));
    }
    if (last) { /* Y's rows of C for the block's positions, each written in order */
        for (int j = 0; j < nb; j++) {
            float *yr = y + (p0 + j) * C;
            if (b)
                for (c = 0; c < C; c++) yr[c] = (xb[c * P + j] - fm[j]) * fi[j] * s[c] + b[c];
            else
                for (c = 0; c < C; c++) yr[c] = (xb[c * P + j] - fm[j]) * fi[j] * s[c];
        }
        return;
    }
    for (c = 0; c < C; c++) {
        const float *xr = xb + c * P;
        float *yr = y + c * P + p0;
        if (b)
            for (int j = 0; j < nb; j++) yr[j] = (xr[j] - fm[j]) * fi[j] * s[c] + b[c];
        else
            for (int j = 0; j < nb; j++) yr[j] = (xr[j] - fm[j]) * fi[j] * s[c];
    }
}

