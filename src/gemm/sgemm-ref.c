/*
 * sgemm-ref.c - portable C SGEMM microkernel (4 x 16), the reference the
 * SIMD kernels are tested against, and the scalar epilogue shared by all.
 * It follows the same contract (sgemm-ukernel.h) and the same per-element
 * order of operations as the SIMD kernels: acc = sum over k in order,
 * then alpha*acc, then beta*C, then the epilogue.
 */
#include <math.h>

#include "gemm/sgemm-ukernel.h"

enum { MR = 4, NR = 16 };

static float act_scalar(int act, float v, float lo, float hi)
{
    switch (act) {
    case ONR_ACT_RELU: return v < 0.f ? 0.f : v;
    case ONR_ACT_CLIP: return v < lo ? lo : (v > hi ? hi : v);
    case ONR_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case ONR_ACT_SILU: return v / (1.f + expf(-v));
    /* GELU in forms that keep relative accuracy for v << 0, where 1 + erf
     * and 1 + tanh cancel (as the SIMD epilogue, sgemm-act-simd.h) */
    case ONR_ACT_GELU_ERF: return 0.5f * v * erfcf(v * -0.70710678118654752f);
    case ONR_ACT_GELU_TANH:
        return v / (1.f + expf(-2.f * 0.79788456080286536f * (v + 0.044715f * v * v * v)));
    default: return v;
    }
}

float onr_sgemm_epi_scalar(const onr_sgemm_tile_epi *e, float v, size_t i, size_t j)
{
    if (e->bias_row) v += e->bias_row[i];
    if (e->bias_col) v += e->bias_col[j];
    float r = e->residual ? e->residual[i * e->ldr + j] : 0.f;
    if (e->residual && e->residual_before_act) v += r;
    v = act_scalar(e->act, v, e->clip_min, e->clip_max);
    if (e->residual && !e->residual_before_act) v += r;
    return v;
}

static void ukernel(size_t mr, size_t nr, size_t kc, const float *a, size_t lda, const float *b,
                    size_t ldb, float *c, size_t ldc, float alpha, float beta,
                    const onr_sgemm_tile_epi *epi)
{
    float acc[MR][NR] = {{0}};
    for (size_t k = 0; k < kc; k++) {
        for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < nr; j++) acc[i][j] += a[i * lda + k] * b[j];
        b += ldb;
    }
    for (size_t i = 0; i < mr; i++) {
        for (size_t j = 0; j < nr; j++) {
            float v = alpha * acc[i][j];
            if (beta != 0.f) v = beta * c[i * ldc + j] + v;
            if (epi) v = onr_sgemm_epi_scalar(epi, v, i, j);
            c[i * ldc + j] = v;
        }
    }
}

const onr_sgemm_config onr_sgemm_config_ref = {"ref-4x16", "ref", MR,   NR, ukernel,
                                               NULL,       NULL,  0,    NULL};
