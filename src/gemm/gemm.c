/*
 * gemm.c - placeholder portable SGEMM (correct, unblocked) so the rest of
 * the library links while the packed core is built. Replaced by the packed,
 * multithreaded implementation.
 */
#include "gemm/gemm.h"

#include <math.h>
#include <string.h>

static float apply_act(const onr_gemm_epilogue *ep, float v)
{
    switch (ep->act) {
    case ONR_ACT_RELU: return v > 0.f ? v : 0.f;
    case ONR_ACT_CLIP: return v < ep->clip_min ? ep->clip_min : (v > ep->clip_max ? ep->clip_max : v);
    case ONR_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case ONR_ACT_SILU: return v / (1.f + expf(-v));
    case ONR_ACT_GELU_ERF: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case ONR_ACT_GELU_TANH:
        return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    default: return v;
    }
}

size_t onr_sgemm_workspace_size(size_t m, size_t n, size_t k, int nthreads)
{
    (void)m; (void)n; (void)k; (void)nthreads;
    return 0;
}

void onr_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc, const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    (void)workspace;
    #pragma omp parallel for num_threads(nthreads) if (m * n * k > 65536 && nthreads > 1)
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            float acc = 0.f;
            for (size_t p = 0; p < k; p++) {
                float av = trans_a ? a[p * lda + i] : a[i * lda + p];
                float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                acc += av * bv;
            }
            float v = alpha * acc;
            if (beta != 0.f) v += beta * c[i * ldc + j];
            if (ep) {
                if (ep->bias_col) v += ep->bias_col[j];
                if (ep->bias_row) v += ep->bias_row[i];
                if (ep->residual && ep->residual_before_act) v += ep->residual[i * ep->ldr + j];
                v = apply_act(ep, v);
                if (ep->residual && !ep->residual_before_act) v += ep->residual[i * ep->ldr + j];
            }
            c[i * ldc + j] = v;
        }
    }
}

size_t onr_sgemm_pack_b_size(size_t k, size_t n) { return k * n * sizeof(float); }

void onr_sgemm_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, void *packed)
{
    float *p = packed;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < n; j++) p[i * n + j] = trans_b ? b[j * ldb + i] : b[i * ldb + j];
}

void onr_sgemm_packed(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const void *packed_b, float beta, float *c, size_t ldc,
                      const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    onr_sgemm(trans_a, 0, m, n, k, alpha, a, lda, packed_b, n, beta, c, ldc, ep, workspace,
              nthreads);
}

size_t onr_sgemm_batch_workspace_size(size_t m, size_t n, size_t k, size_t batch, int nthreads)
{
    (void)batch;
    return onr_sgemm_workspace_size(m, n, k, nthreads);
}

void onr_sgemm_batch(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, size_t stride_a, const float *b, size_t ldb,
                     size_t stride_b, float beta, float *c, size_t ldc, size_t stride_c,
                     size_t batch, const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    for (size_t p = 0; p < batch; p++)
        onr_sgemm(trans_a, trans_b, m, n, k, alpha, a + p * stride_a, lda, b + p * stride_b, ldb,
                  beta, c + p * stride_c, ldc, ep, workspace, nthreads);
}

const char *onr_sgemm_kernel_name(void) { return "ref-naive"; }

int onr_sgemm_force_kernel(const char *name)
{
    return (name == NULL || strcmp(name, "ref") == 0) ? 0 : -1;
}
