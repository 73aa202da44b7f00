/*
 * winograd-avx512.c - the Winograd transforms (winograd-kern.h) built for
 * AVX512; winograd.c calls them after a CPU check.
 */
#define WINO_SFX avx512
#include "ops/winograd-kern.h"
