/* qgemm-avx2.c - qgemm-kernel.h compiled with AVX2 (the file suffix sets
 * the flags); qgemm.c calls it only on CPUs that have AVX2. */
#define QMM_KERNEL_NAME onr_qmm_rows_avx2
#include "ops/qgemm-kernel.h"
