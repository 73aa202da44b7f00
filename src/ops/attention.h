/*
 * attention.h - test hooks of the Attention operator (attention.c).
 */
#ifndef ONR_OPS_ATTENTION_H
#define ONR_OPS_ATTENTION_H

/* Which path Attention takes for float32:
 *   0: automatic (the streaming kernel when it applies, else the reference),
 *   1: always the plain-C reference (full score rows, computed in double),
 *   2: the streaming kernel wherever it applies (same as 0 today).
 * Process-wide; for tests and benchmarks. Returns the previous value. */
int onr_attention_force_path(int path);

/* Tile sizes of the streaming kernel (query rows, key columns); 0 keeps the
 * current value. For tests at tile edges and for tuning; process-wide. */
void onr_attention_set_tiles(int bq, int bk);
void onr_attention_get_tiles(int *bq, int *bk);

/* Row operations of the streaming kernel: "ref" (portable C), "avx2",
 * "avx512", or NULL for the best the CPU has. -1 when the CPU lacks it.
 * Takes effect at the next reshape. */
int onr_attention_force_isa(const char *name);

#endif
