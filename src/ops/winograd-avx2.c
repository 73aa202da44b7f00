/*
 * winograd-avx2.c - the Winograd transforms (winograd-kern.h) built for
 * AVX2; winograd.c calls them after a CPU check.
 */
#define WINO_SFX avx2
#include "ops/winograd-kern.h"
