/*
 * dwconv.h - depthwise and small-group 2-D convolution, float32, NCHW.
 * Depthwise (cg = 1): every input channel is its own group (group == C)
 * and feeds `mult` output channels, output channel m reading input channel
 * m / mult through its own KH x KW filter W[m, 0, :, :]. Small groups (cg
 * > 1, as RegNet's and ResNeXt's 3x3 convolutions): C / cg groups of cg
 * input channels, each feeding `mult` output channels; output channel m
 * reads input channels (m / mult) * cg + c, c < cg, through W[m, c, :, :]
 * (W is [C / cg * mult, cg, KH, KW]). 1-D convolutions are the case IH =
 * OH = KH = 1.
 *
 * Plain math on pointers, like src/gemm/: knows nothing of the IR. Conv
 * (src/ops/conv.c) sends depthwise convolutions here from its float32 path.
 *
 * Each output is
 *     v = sum over input channels c of the group, then taps (kh, kw)
 *         inside the input, of W[m,c,kh,kw] * X[c,ih,iw] (c-major, then
 *         kh-major order), then + B[m]
 *     v = res_after ? act(v) + Z : act(v + Z)      (Z only when given)
 * Padding contributes nothing. The SIMD kernels (AVX2, AVX-512, chosen once
 * from CPUID) vectorise along the output row: full vectors with plain loads
 * where every tap of the vector lies inside the row, masked loads and stores
 * at the borders and the tail (masked-off lanes never touch memory), stride
 * 2 from input rows split once into even and odd columns (in a workspace).
 * Strides other than 1 and 2 along W run the plain-C reference. The taps use fused multiply-adds,
 * so the SIMD kernels and the reference differ by rounding.
 *
 * With cg > 1 a tile computes up to 8 output channels of one group at once,
 * each input vector loaded once for all of them (a direct convolution:
 * per-group GEMMs of a few channels run far below the FMA peak).
 *
 * Threads split the (image, output channel) planes (blocks of up to 8
 * planes with cg > 1; a group's outputs in blocks of 8 when there are
 * fewer groups than threads), and the rows of each plane when there are
 * few planes; every output is computed the same way whatever the split,
 * so results are bit-identical for every thread count.
 */
#ifndef ONR_DWCONV_H
#define ONR_DWCONV_H

#include <stddef.h>
#include <stdint.h>

/* The epilogue's activation (FusedConv's set). */
enum {
    ONR_DW_ACT_NONE,
    ONR_DW_ACT_RELU,
    ONR_DW_ACT_CLIP,        /* min(max(v, a), b) */
    ONR_DW_ACT_SIGMOID,
    ONR_DW_ACT_SILU,        /* v * sigmoid(v) */
    ONR_DW_ACT_HARDSIGMOID, /* max(0, min(1, a*v + b)) */
    ONR_DW_ACT_HARDSWISH,   /* v * hardsigmoid(v) */
    ONR_DW_ACT_LEAKYRELU,   /* v < 0 ? a*v : v */
};

typedef struct onr_dwconv {
    int64_t N, C, mult;       /* images, input channels, outputs per group */
    int64_t cg;               /* input channels per group; 0 or 1: depthwise */
    int64_t IH, IW, OH, OW;   /* input and output plane sizes */
    int64_t KH, KW;           /* kernel */
    int64_t SH, SW, DH, DW;   /* strides, dilations */
    int64_t PT, PL;           /* pads before (top, left); pads after follow from OH, OW */
    int act;                  /* ONR_DW_ACT_* */
    float a, b;               /* the activation's parameters */
    int res_after;            /* 1: act(v) + Z; 0: act(v + Z) */
} onr_dwconv;

/* Bytes of workspace onr_dwconv_f32 can use with this many threads (0
 * when it needs none; 64-byte aligned memory expected). */
size_t onr_dwconv_workspace_size(const onr_dwconv *g, int nthreads);

/* Floats of W laid out for the SIMD kernels (0: they read W as it is):
 * small groups (cg > 1) take each block of up to 8 outputs' filters
 * tap-major, depthwise layers with C >= 16 (mult 1) each block of 16
 * channels' taps channel-minor. The layout depends on C, mult, cg, KH and
 * KW only, so a constant W is laid out once, at create. */
size_t onr_dwconv_weights_floats(const onr_dwconv *g);
void onr_dwconv_prepare_weights(const onr_dwconv *g, const float *w, float *wl);

/* Y[N, C/cg*mult, OH, OW] = conv(X[N, C, IH, IW], W[C/cg*mult, cg, KH, KW]) + B
 * with the epilogue; B (C/cg*mult) and Z (Y's shape) may be NULL. C must be
 * a multiple of cg. Y must not overlap X or Z. wl: W laid out by
 * onr_dwconv_prepare_weights, or NULL (then it is laid out in ws). ws:
 * onr_dwconv_workspace_size(g, nthreads) bytes, or NULL (stride 2 and
 * small groups then take slower paths). Never allocates. */
void onr_dwconv_f32(const onr_dwconv *g, const float *x, const float *w, const float *wl,
                    const float *b, const float *z, float *y, void *ws, int nthreads);

/* Rows [oh0, oh1) of one output plane: xp the input plane (cg > 1: the
 * group's first of cg), wm the output's cg x KH x KW filter, zp the
 * residual plane or NULL, yp the output plane, ws this thread's part of
 * the workspace or NULL. One of these per ISA; the reference takes any cg,
 * the SIMD ones cg <= 1. */
typedef void (*onr_dwconv_rows_fn)(const onr_dwconv *g, const float *xp, const float *wm,
                                   float bias, const float *zp, float *yp, int64_t oh0,
                                   int64_t oh1, float *ws);
void onr_dwconv_rows_ref(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                         const float *zp, float *yp, int64_t oh0, int64_t oh1, float *ws);
void onr_dwconv_rows_avx2(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                          const float *zp, float *yp, int64_t oh0, int64_t oh1, float *ws);
void onr_dwconv_rows_avx512(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                            const float *zp, float *yp, int64_t oh0, int64_t oh1, float *ws);

/* Rows [oh0, oh1) of nm consecutive output planes of one group (cg > 1;
 * 8 at a time along each row): xg the group's first input plane, wl the
 * first output's filters as onr_dwconv_prepare_weights lays them out
 * (blocks of 8, 4, 2, 1 outputs, each tap-major), bias nm values or NULL,
 * zp and yp the first residual and output planes (OH x OW floats apart). */
#define ONR_GCONV_KW_MAX 16 /* widest kernel the SIMD small-group kernels take */
typedef void (*onr_gconv_rows_fn)(const onr_dwconv *g, const float *xg, const float *wm,
                                  const float *bias, const float *zp, float *yp, int nm,
                                  int64_t oh0, int64_t oh1, float *ws);
void onr_gconv_rows_avx2(const onr_dwconv *g, const float *xg, const float *wm,
                         const float *bias, const float *zp, float *yp, int nm, int64_t oh0,
                         int64_t oh1, float *ws);
void onr_gconv_rows_avx512(const onr_dwconv *g, const float *xg, const float *wm,
                           const float *bias, const float *zp, float *yp, int nm, int64_t oh0,
                           int64_t oh1, float *ws);

/* Planes with rows of at most 128 (the limit measured), depthwise with
 * multiplier 1, dilation 1, strides 1 or 2,
 * kernels up to 7x7: 16 channels at a time in a channel-blocked copy
 * (position-major, the 16 channels of a position in one vector, zero
 * borders), every tap a full-vector FMA, then back to NCHW (16 x 16
 * transposes) with the epilogue. The same sums as the row tiles (every
 * tap, padding as 0, kernel-row-major), bit for bit. AVX-512 only. */
int onr_dwconv_blocked_ok(const onr_dwconv *g);
/* Output rows the blocked path does at a time (a band of the plane), and
 * the width of its padded rows (every input column an output reads). */
int64_t onr_dwconv_blocked_band(const onr_dwconv *g);
static inline int64_t onr_dwconv_blocked_pw(const onr_dwconv *g)
{
    return (g->OW - 1) * g->SW + g->KW;
}
size_t onr_dwconv_blocked_floats(const onr_dwconv *g);
/* 16 channels of one image from channel c, output rows [oh0, oh1): x, y
 * (and z) at that channel's plane, wl at the block's laid-out taps (16
 * floats a tap), b at its bias or NULL; ws onr_dwconv_blocked_floats(g)
 * floats, 64-byte aligned. */
void onr_dwconv_block16_avx512(const onr_dwconv *g, const float *x, const float *wl,
                               const float *b, const float *z, float *y, float *ws, int64_t oh0,
                               int64_t oh1);

/* A max pool right after a small-group convolution (FusedConv's pool: a
 * ResNet stem's 7x7 / 2 and 3x3 / 2 pool), 2-D, dilation 1: windows of KH x
 * KW conv outputs at strides SH, SW, PT and PL pads before (padding never
 * wins), OH x OW pooled outputs. */
typedef struct onr_dwpool {
    int64_t KH, KW, SH, SW, PT, PL, OH, OW;
} onr_dwpool;

/* Y[N, C/cg*mult, p->OH, p->OW] = maxpool(conv(X, W) + B with the
 * activation), cg > 1 and no residual: the conv output goes a band of rows
 * at a time through a per-thread buffer near the cache and is pooled from
 * there, never written whole. The same conv sums as onr_dwconv_f32 and an
 * exact max, so the same values as the two steps apart, for any thread
 * count. ws: onr_dwconv_pool_workspace_size bytes (64-byte aligned); wl as
 * for onr_dwconv_f32. */
size_t onr_dwconv_pool_workspace_size(const onr_dwconv *g, const onr_dwpool *p, int nthreads);
void onr_dwconv_pool_f32(const onr_dwconv *g, const onr_dwpool *p, const float *x, const float *w,
                         const float *wl, const float *b, float *y, void *ws, int nthreads);

/* Name of the kernel in use ("avx512", "avx2", "ref"). */
const char *onr_dwconv_kernel_name(void);
/* Force a kernel for tests: "ref", "avx2", "avx512" (the CPU must have it);
 * NULL restores the automatic choice. Returns 0 on success. Also read once
 * from the ONR_DWCONV_KERNEL environment variable. */
int onr_dwconv_force_kernel(const char *name);

#endif
