/*
 * det.c - Det (opsets 11 and 22; 22 adds bfloat16).
 *
 * Input [*, M, M], output [*]: the determinant of each matrix, by LU
 * factorization with partial pivoting in double (scratch: one M x M matrix
 * per thread), rounded to the input type on store. A 0 x 0 matrix has
 * determinant 1; a singular one 0; NaN propagates.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/ops.h"

typedef struct det_params {
    int64_t batch, m;
} det_params;

static int det_reshape(onr_kctx *ctx, size_t *scratch)
{
    det_params *p = ctx->params;
    *scratch = 0;
    uint32_t types = ONR_TYPES_FLOAT;
    if (ctx->opset < 22) types &= ~ONR_T(ONR_BFLOAT16);
    int st = onr_check_input(ctx, 0, types);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    char s1[256];
    if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2])
        return onr_seterr(ctx->err, ONR_E_MODEL, "input %s must be [*, M, M]",
                          onr_fmt_dims(s1, sizeof s1, x->dims, x->rank));
    p->m = x->dims[x->rank - 1];
    p->batch = 1;
    for (int d = 0; d < x->rank - 2; d++) p->batch *= x->dims[d];
    if ((st = onr_set_out(ctx, 0, x->dtype, x->rank - 2, x->dims))) return st;
    if (p->batch == 0) return ONR_OK;
    if ((uint64_t)p->m * (uint64_t)p->m > onr_max_tensor_bytes() / sizeof(double) / (uint64_t)ctx->nthreads)
        return onr_seterr(ctx->err, ONR_E_NOMEM, "a %lld x %lld matrix is too large", (long long)p->m,
                          (long long)p->m);
    *scratch = (size_t)ctx->nthreads * (size_t)(p->m * p->m) * sizeof(double);
    return ONR_OK;
}

/* Determinant of the m x m matrix in a (destroyed). */
static double det_lu(double *a, int64_t m)
{
    double det = 1;
    for (int64_t k = 0; k < m; k++) {
        int64_t piv = k;
        for (int64_t i = k + 1; i < m; i++)
            if (fabs(a[i * m + k]) > fabs(a[piv * m + k])) piv = i;
        double pv = a[piv * m + k];
        if (pv != pv) return NAN;
        if (pv == 0) return 0;
        if (piv != k) {
            for (int64_t j = 0; j < m; j++) {
                double t = a[k * m + j];
                a[k * m + j] = a[piv * m + j];
                a[piv * m + j] = t;
            }
            det = -det;
        }
        det *= pv;
        for (int64_t i = k + 1; i < m; i++) {
            double f = a[i * m + k] / pv;
            if (f == 0) continue;
            for (int64_t j = k + 1; j < m; j++) a[i * m + j] -= f * a[k * m + j];
        }
    }
    return det;
}

static int det_run(const onr_kctx *ctx)
{
    const det_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int64_t mm = p->m * p->m, work = p->batch * mm * (p->m + 1);
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
    for (int64_t b = 0; b < p->batch; b++) {
        double *a = (double *)ctx->scratch + (size_t)omp_get_thread_num() * (size_t)mm;
        for (int64_t i = 0; i < mm; i++) a[i] = onr_get_f64(x, b * mm + i);
        onr_set_f64(y, b, det_lu(a, p->m));
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_det = {.reshape = det_reshape, .run = det_run,
    .params_size = sizeof(det_params), .types = ONR_TYPES_FLOAT};
