/*
 * qgemm-kernel.h - the integer GEMM kernel of qgemm.c, written once and
 * compiled twice: at the baseline ISA in qgemm.c (the reference) and with
 * AVX2 in qgemm-avx2.c; qgemm.c picks one per CPU at run time. Define
 * QMM_KERNEL_NAME (and QMM_KERNEL_STATIC for a file-local copy) first.
 *
 * c[r, n] = sum_k a[r, k] * b[k, n] for rows r < nr (<= QMM_ROWS), modulo
 * 2^32; row strides lda, ldb, ldc in elements. The int32 accumulators of
 * QMM_ROWS rows x QMM_COLS columns stay in L1 while B's rows stream past
 * once per block; the inner loop is an int16 x int16 -> int32 multiply-add
 * over contiguous n, which the compiler vectorizes. Every sum is exact
 * modulo 2^32, so the result does not depend on the ISA or the blocking.
 */
#include <stdint.h>
#include <string.h>

#ifndef QMM_ROWS
#define QMM_ROWS 4
#define QMM_COLS 256
#endif

#ifdef QMM_KERNEL_STATIC
static
#endif
void QMM_KERNEL_NAME(const int16_t *a, int64_t lda, int nr, const int16_t *b, int64_t ldb,
                     int64_t K, int64_t N, int32_t *c, int64_t ldc)
{
    for (int64_t n0 = 0; n0 < N; n0 += QMM_COLS) {
        int64_t nb = N - n0 < QMM_COLS ? N - n0 : QMM_COLS;
        for (int r = 0; r < nr; r++) memset(c + r * ldc + n0, 0, sizeof(int32_t) * (size_t)nb);
        for (int64_t k = 0; k < K; k++) {
            const int16_t *br = b + k * ldb + n0;
            for (int r = 0; r < nr; r++) {
                int32_t av = a[r * lda + k];
                if (!av) continue;
                uint32_t *u = (uint32_t *)(c + r * ldc + n0);
                for (int64_t n = 0; n < nb; n++) u[n] += (uint32_t)(av * (int32_t)br[n]);
            }
        }
    }
}
