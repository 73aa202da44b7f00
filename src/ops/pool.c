/*
 * pool.c - MaxPool (with optional Indices), AveragePool, LpPool and their
 * Global forms, over 1-D, 2-D and 3-D inputs (N x C x D1 ...).
 *
 * Window taps are clipped to the input per axis (onr_sp_taps), so padding is
 * never read; what it contributes is decided per op (max: nothing, average:
 * the count when count_include_pad, Lp: zero). The main engine builds an
 * output row at a time in a per-thread row of doubles (scratch): for every
 * kernel tap, the whole row takes in the input row shifted by that tap, a
 * contiguous loop at stride 1. Values are exact in double for every type
 * handled, so max is exact and sums are accurate. MaxPool with its Indices
 * output goes output by output instead, and Global pools reduce each plane
 * in one loop. Planes run in parallel, each by one thread, so results do not
 * depend on the thread count.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/linalg.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define POOL_AVX512 1
/* y[pl] = the mean of plane pl (n floats, planes contiguous) for pl in
 * [p0, p1): the sum in double, 16 lanes (two vectors of 8 doubles; the
 * portable loop ran EfficientNet's squeeze-excitation planes at a fraction
 * of the memory's speed), the tail under a mask, many planes a call (a
 * call and a scalar tail per 7x7 plane cost more than its sum). */
__attribute__((target("avx512f"))) static void pool_avg_planes_avx512(const float *x, float *y,
                                                                     int64_t n, int64_t p0,
                                                                     int64_t p1)
{
    const int64_t n16 = n / 16 * 16;
    const __mmask16 mt = (__mmask16)((1u << (n - n16)) - 1u);
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *p = x + pl * n;
        __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
        for (int64_t i = 0; i < n16; i += 16) {
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(p + i)));
            a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(p + i + 8)));
        }
        if (mt) {
            __m512 t = _mm512_maskz_loadu_ps(mt, p + n16);
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
            a1 = _mm512_add_pd(
                a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))));
        }
        y[pl] = (float)(_mm512_reduce_add_pd(_mm512_add_pd(a0, a1)) / (double)n);
    }
}

/* t[i] = max(xr[nr - 1][i], ... max(xr[0][i], t[i])), NaN never winning
 * (the instruction returns its second operand, the running max, when
 * either is NaN), for i < n; first: t is taken as -inf (not read). */
__attribute__((target("avx512f"))) static void pool_fold_max_avx512(float *t,
                                                                   const float *const *xr,
                                                                   int nr, int64_t n, int first)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 acc = first ? ninf : _mm512_loadu_ps(t + i);
        for (int r = 0; r < nr; r++) acc = _mm512_max_ps(_mm512_loadu_ps(xr[r] + i), acc);
        _mm512_storeu_ps(t + i, acc);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 acc = first ? ninf : _mm512_maskz_loadu_ps(m, t + i);
        for (int r = 0; r < nr; r++) acc = _mm512_max_ps(_mm512_maskz_loadu_ps(m, xr[r] + i), acc);
        _mm512_mask_storeu_ps(t + i, m, acc);
    }
}

/* The even lanes of src[0 .. 2n - 1) for 0 < n <= 16 (src[2i], i < n;
 * lanes from n on zero): two loads masked to exactly those floats. */
__attribute__((target("avx512f"))) static inline __m512 pool_even_s2(const float *src, int64_t n)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    uint32_t need = 2 * (uint32_t)n - 1;
    __mmask16 m0 = (__mmask16)(need >= 16 ? 0xFFFFu : (1u << need) - 1u);
    __mmask16 m1 = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1u : 0u);
    __m512 a = _mm512_maskz_loadu_ps(m0, src), b = _mm512_maskz_loadu_ps(m1, src + 16);
    return _mm512_permutex2var_ps(a, even, b);
}

/* y[ow] = max over the k taps of t[2 ow + off[kw]] (max(v, acc) in tap
 * order from -inf, as the per-tap passes), for ow in [lo, hi), where every
 * tap lies inside t: 16 outputs at a time in registers. */
__attribute__((target("avx512f"))) static void pool_max_s2_taps_avx512(float *y, const float *t,
                                                                      const int64_t *off, int64_t k,
                                                                      int64_t lo, int64_t hi)
{
    for (int64_t ow = lo; ow < hi; ow += 16) {
        int64_t n = hi - ow < 16 ? hi - ow : 16;
        __m512 acc = _mm512_set1_ps(-INFINITY);
        for (int64_t kw = 0; kw < k; kw++)
            acc = _mm512_max_ps(pool_even_s2(t + 2 * ow + off[kw], n), acc);
        _mm512_mask_storeu_ps(y + ow, (__mmask16)((1u << n) - 1u), acc);
    }
}

/* y[ow] = max(t[2 ow + off], y[ow]) for ow in [lo, hi), nothing else read
 * or written. */
__attribute__((target("avx512f"))) static void pool_max_s2_avx512(float *y, const float *t,
                                                                 int64_t off, int64_t lo,
                                                                 int64_t hi)
{
    for (int64_t ow = lo; ow < hi; ow += 16) {
        int64_t n = hi - ow < 16 ? hi - ow : 16;
        __mmask16 m = (__mmask16)((1u << n) - 1u);
        __m512 cur = _mm512_maskz_loadu_ps(m, y + ow);
        _mm512_mask_storeu_ps(y + ow, m, _mm512_max_ps(pool_even_s2(t + 2 * ow + off, n), cur));
    }
}

/* max over rows r[0 .. nr) of their columns [c, c + 16), c >= 0, -inf in
 * the lanes at or past IW (not read). */
__attribute__((target("avx512f"), always_inline)) static inline __m512
pool_fold16(const float *const *r, int nr, int64_t c, int64_t IW, __m512 ninf)
{
    __m512 a = ninf;
    if (c + 16 <= IW) {
        for (int i = 0; i < nr; i++) a = _mm512_max_ps(_mm512_loadu_ps(r[i] + c), a);
        return a;
    }
    if (c >= IW) return ninf;
    __mmask16 m = (__mmask16)((1u << (IW - c)) - 1u);
    for (int i = 0; i < nr; i++) a = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m, r[i] + c), a);
    return a;
}

/* The 16 lanes from lane k of lo on (lanes of hi after lo's 16); k a
 * constant (a macro: clang wants the immediate at the call). */
#define POOL_ALIGN(hi, lo, k)                                                                 \
    _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), k))

/* One output row of a max pool with stride 2, dilation 1, kw = 2 or 3
 * taps along W and pl < kw columns of padding before: y[ow] = the max over
 * rows r[0 .. nr) and columns 2 ow - pl + [0, kw), columns outside the row
 * not counted (-inf when none is inside). The rows are folded in
 * registers 16 columns at a time (F0, F1: columns [2 ow, 2 ow + 32) of 16
 * outputs), and column 2 ow + d of output ow is the even (d = 0) or odd
 * (d = 1) lanes of the fold, or those moved a lane over from the block
 * before (d = -1, -2: -inf before the first) or after (d = 2): each input
 * column loaded once per row. The fold in memory and the taps one by one
 * after it took 0.021 ms for 8 planes of 112x112 (3x3 / 2, pad 1, Zen 5),
 * this 0.009. NaN never wins (the instruction returns its second operand,
 * the running max, when either is NaN); of tied zeros the sign may differ
 * from the tap-order passes. */
__attribute__((target("avx512f"), always_inline)) static inline void
pool_max_s2_rows_tpl(float *y, const float *const *r, const int nr, int64_t IW, int64_t OW,
                     const int64_t pl, const int64_t kw)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 F0 = pool_fold16(r, nr, 0, IW, ninf), Ep = ninf, Op = ninf;
    for (int64_t ow = 0; ow < OW; ow += 16) {
        int64_t n = OW - ow < 16 ? OW - ow : 16, c = 2 * ow;
        __m512 F1 = pool_fold16(r, nr, c + 16, IW, ninf), G0 = pool_fold16(r, nr, c + 32, IW, ninf);
        __m512 E = _mm512_permutex2var_ps(F0, ev, F1), O = _mm512_permutex2var_ps(F0, od, F1);
        __m512 acc = ninf;
        for (int64_t t = 0; t < kw; t++) {
            __m512 v;
            switch (t - pl) {
                case 0: v = E; break;
                case 1: v = O; break;
                case 2: v = POOL_ALIGN(G0, E, 1); break;   /* E[i + 1], the next block's E[0] */
                case -1: v = POOL_ALIGN(O, Op, 15); break; /* O[i - 1], the last block's O[15] */
                default: v = POOL_ALIGN(E, Ep, 15); break; /* -2: E[i - 1] */
            }
            acc = _mm512_max_ps(v, acc);
        }
        _mm512_mask_storeu_ps(y + ow, (__mmask16)((1u << n) - 1u), acc);
        Ep = E, Op = O, F0 = G0;
    }
}

/* Rows, taps and padding compile-time constants for the usual windows
 * (ResNet's 3x3 / 2 with one column of padding, UNet's and VGG's 2x2 / 2
 * with none), so that the folds and the taps unroll: ResNet's pool
 * (64x112x112, 3x3 / 2) alone at 1 thread, in one process: 0.873 of
 * the time before (Zen 5). */
__attribute__((target("avx512f"))) static void pool_max_s2_rows_avx512(float *y,
                                                                      const float *const *r,
                                                                      int nr, int64_t IW,
                                                                      int64_t OW, int64_t pl,
                                                                      int64_t kw)
{
    if (kw == 3 && pl == 1 && nr == 3) pool_max_s2_rows_tpl(y, r, 3, IW, OW, 1, 3);
    else if (kw == 3 && pl == 1 && nr == 2) pool_max_s2_rows_tpl(y, r, 2, IW, OW, 1, 3);
    else if (kw == 2 && pl == 0 && nr == 2) pool_max_s2_rows_tpl(y, r, 2, IW, OW, 0, 2);
    else pool_max_s2_rows_tpl(y, r, nr, IW, OW, pl, kw);
}
#endif

/* Whether the AVX-512 helpers above may run (CPUID once, kept). */
static int pool_has_avx512(void)
{
#ifdef POOL_AVX512
    return onr_cpu_supports("avx512"); /* cached by gemm.c */
#else
    return 0;
#endif
}

enum { POOL_MAX, POOL_AVG, POOL_LP };

typedef struct pool_geom {
    int kind;
    int64_t N, C, IN, OUT, K;
    onr_spatial sp;
    int count_include_pad, storage_order;
    double p;
    int64_t ldx, ldy; /* maxpool_f32: floats from one plane to the next (0: IN, OUT) */
} pool_geom;

/* ---- window iteration -------------------------------------------------- */

/* The clipped taps [l, h) and window start st of one output position. */
typedef struct pool_win {
    int64_t l[3], h[3], st[3];
} pool_win;

static inline void pool_window(const onr_spatial *sp, int64_t od, int64_t oh, int64_t ow,
                               pool_win *w)
{
    const int64_t o[3] = {od, oh, ow};
    for (int j = 0; j < 3; j++) {
        w->st[j] = o[j] * sp->s[j] - sp->pb[j];
        onr_sp_taps(w->st[j], sp->k[j], sp->d[j], sp->in[j], &w->l[j], &w->h[j]);
    }
}

/* Every plane pl in parallel, every output o of it with its window w. */
#define POOL_FOR_OUTPUTS(g, nt, ...)                                                           \
    do {                                                                                       \
        const onr_spatial *sp = &(g)->sp;                                                      \
        int64_t planes = (g)->N * (g)->C, work = planes * (g)->OUT * ((g)->K + 1);             \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)") \
        for (int64_t pl = 0; pl < planes; pl++) {                                              \
            pool_win w;                                                                        \
            int64_t o = 0;                                                                     \
            for (int64_t od = 0; od < sp->out[0]; od++)                                        \
                for (int64_t oh = 0; oh < sp->out[1]; oh++)                                    \
                    for (int64_t ow = 0; ow < sp->out[2]; ow++, o++) {                         \
                        pool_window(sp, od, oh, ow, &w);                                       \
                        __VA_ARGS__                                                            \
                    }                                                                          \
        }                                                                                      \
    } while (0)

/* Element offset, in its plane, of the input row of window w's taps ta, tb
 * along the two outer spatial axes. */
static inline int64_t pool_row_off(const onr_spatial *sp, const pool_win *w, int64_t ta, int64_t tb)
{
    return ((w->st[0] + ta * sp->d[0]) * sp->in[1] + w->st[1] + tb * sp->d[1]) * sp->in[2];
}

/* Every in-input tap (ta, tb, tc) of window w, at element offset off of
 * its plane. */
#define POOL_FOR_TAPS(sp, w, off, ...)                                                         \
    for (int64_t ta = (w).l[0]; ta < (w).h[0]; ta++)                                           \
        for (int64_t tb = (w).l[1]; tb < (w).h[1]; tb++) {                                     \
            int64_t row_ = pool_row_off(sp, &(w), ta, tb) + (w).st[2];                         \
            for (int64_t tc = (w).l[2]; tc < (w).h[2]; tc++) {                                 \
                int64_t off = row_ + tc * (sp)->d[2];                                          \
                __VA_ARGS__                                                                    \
            }                                                                                  \
        }

/* Flat index of the tap in X (the Indices output): row-major, or with the
 * first spatial axis fastest for storage_order 1. */
static inline int64_t pool_index(const pool_geom *g, int64_t pl, const pool_win *w, int64_t ta,
                                 int64_t tb, int64_t tc)
{
    const onr_spatial *sp = &g->sp;
    int64_t a = w->st[0] + ta * sp->d[0], b = w->st[1] + tb * sp->d[1];
    int64_t c = w->st[2] + tc * sp->d[2];
    int64_t in_plane = g->storage_order ? a + (b + c * sp->in[1]) * sp->in[0]
                                        : (a * sp->in[1] + b) * sp->in[2] + c;
    return pl * g->IN + in_plane;
}

/* ---- kernels per type --------------------------------------------------- */

static inline double ld_f16(uint16_t h) { return onr_half_to_float(h); }
static inline double ld_bf16(uint16_t h) { return onr_bf16_to_float(h); }
static inline uint16_t st_f16(double v) { return onr_float_to_half((float)v); }
static inline uint16_t st_bf16(double v) { return onr_float_to_bf16((float)v); }
#define LD_D(v) ((double)(v))

/* |v|^p, with the common p done without pow. */
static inline double lp_term(double v, double p)
{
    v = fabs(v);
    return p == 2. ? v * v : p == 1. ? v : pow(v, p);
}

static inline double lp_root(double sum, double p)
{
    return p == 2. ? sqrt(sum) : p == 1. ? sum : pow(sum, 1. / p);
}

/* Taps of output column ow along the innermost axis inside the input (or,
 * with pad != 0, inside the padded input). */
static inline int64_t taps_w(const onr_spatial *sp, int64_t ow, int pad)
{
    int64_t lo, hi, st = ow * sp->s[2] - sp->pb[2];
    if (pad)
        onr_sp_taps(st + sp->pb[2], sp->k[2], sp->d[2], sp->in[2] + sp->pb[2] + sp->pe[2], &lo,
                    &hi);
    else
        onr_sp_taps(st, sp->k[2], sp->d[2], sp->in[2], &lo, &hi);
    return hi - lo;
}

/* Taps along the two outer axes of window w (or of its padded extent). */
static inline int64_t taps_outer(const onr_spatial *sp, const pool_win *w, int pad)
{
    int64_t n = 1, lo, hi;
    for (int j = 0; j < 2; j++) {
        if (pad)
            onr_sp_taps(w->st[j] + sp->pb[j], sp->k[j], sp->d[j],
                        sp->in[j] + sp->pb[j] + sp->pe[j], &lo, &hi);
        else
            lo = w->l[j], hi = w->h[j];
        n *= hi - lo;
    }
    return n;
}

/* Row engine: max, average and Lp pools; rows holds nthreads rows of OW
 * doubles, onr_thread_stride apart. */
#define ROW_POOL(sfx, T, LOAD, STORE, LOWEST)                                                  \
    static void rowpool_##sfx(const pool_geom *g, const void *xv, void *yv, double *rows,      \
                              int nt)                                                          \
    {                                                                                          \
        const T *x = xv;                                                                       \
        T *y = yv;                                                                             \
        const onr_spatial *sp = &g->sp;                                                        \
        int64_t planes = g->N * g->C, work = planes * g->OUT * (g->K + 1), OW = sp->out[2];    \
        size_t stride = onr_thread_stride((size_t)OW * sizeof(double)) / sizeof(double);        \
        int kind = g->kind;                                                                    \
        double p = g->p;                                                                       \
        _Pragma("omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)") \
        for (int64_t pl = 0; pl < planes; pl++) {                                              \
            double *acc = rows + (size_t)omp_get_thread_num() * stride;                        \
            const T *xp = x + pl * g->IN;                                                      \
            pool_win w;                                                                        \
            for (int64_t od = 0; od < sp->out[0]; od++)                                        \
                for (int64_t oh = 0; oh < sp->out[1]; oh++) {                                  \
                    pool_window(sp, od, oh, 0, &w);                                            \
                    for (int64_t ow = 0; ow < OW; ow++) acc[ow] = kind == POOL_MAX ? LOWEST : 0; \
                    for (int64_t ta = w.l[0]; ta < w.h[0]; ta++)                               \
                        for (int64_t tb = w.l[1]; tb < w.h[1]; tb++) {                         \
                            const T *xr = xp + pool_row_off(sp, &w, ta, tb);                   \
                            for (int64_t kw = 0; kw < sp->k[2]; kw++) {                        \
                                int64_t off = kw * sp->d[2] - sp->pb[2], s2 = sp->s[2], lo, hi; \
                                onr_sp_taps(off, OW, s2, sp->in[2], &lo, &hi);                 \
                                if (kind == POOL_MAX) {                                        \
                                    for (int64_t ow = lo; ow < hi; ow++) {                     \
                                        double v = LOAD(xr[ow * s2 + off]);                    \
                                        acc[ow] = v > acc[ow] ? v : acc[ow];                   \
                                    }                                                          \
                                } else if (kind == POOL_AVG) {                                 \
                                    for (int64_t ow = lo; ow < hi; ow++)                       \
                                        acc[ow] += LOAD(xr[ow * s2 + off]);                    \
                                } else {                                                       \
                                    for (int64_t ow = lo; ow < hi; ow++)                       \
                                        acc[ow] += lp_term(LOAD(xr[ow * s2 + off]), p);        \
                                }                                                              \
                            }                                                                  \
                        }                                                                      \
                    T *yr = y + pl * g->OUT + (od * sp->out[1] + oh) * OW;                     \
                    if (kind == POOL_MAX) {                                                    \
                        for (int64_t ow = 0; ow < OW; ow++) yr[ow] = STORE(acc[ow]);           \
                    } else if (kind == POOL_AVG) {                                             \
                        int cip = g->count_include_pad;                                        \
                        int64_t outer = taps_outer(sp, &w, cip);                               \
                        for (int64_t ow = 0; ow < OW; ow++)                                    \
                            yr[ow] = STORE(acc[ow] / (double)(outer * taps_w(sp, ow, cip)));   \
                    } else {                                                                   \
                        for (int64_t ow = 0; ow < OW; ow++) yr[ow] = STORE(lp_root(acc[ow], p)); \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }

/* MaxPool with Indices, output by output: the first largest tap wins; NaN
 * never does (as in the row engine); a window all in padding (or all NaN)
 * gives LOWEST and index -1. */
#define MAXPOOL_IDX(sfx, T, LOAD, STORE, LOWEST)                                               \
    static void maxidx_##sfx(const pool_geom *g, const void *xv, void *yv, int64_t *idx, int nt) \
    {                                                                                          \
        const T *x = xv;                                                                       \
        T *y = yv;                                                                             \
        POOL_FOR_OUTPUTS(g, nt, {                                                              \
            const T *xp = x + pl * g->IN;                                                      \
            double best = LOWEST;                                                              \
            int64_t ba = -1, bb = 0, bc = 0;                                                   \
            POOL_FOR_TAPS(sp, w, off, {                                                        \
                double v = LOAD(xp[off]);                                                      \
                if (v > best || (ba < 0 && v == best)) {                                       \
                    best = v;                                                                  \
                    ba = ta, bb = tb, bc = tc;                                                 \
                }                                                                              \
            })                                                                                 \
            y[pl * g->OUT + o] = STORE(best);                                                  \
            idx[pl * g->OUT + o] = ba < 0 ? -1 : pool_index(g, pl, &w, ba, bb, bc);            \
        });                                                                                    \
    }

/* Global pools: one reduction per plane (onr_par_for items). */
typedef struct global_job {
    const pool_geom *g;
    const void *x;
    void *y;
} global_job;

#define GLOBAL_POOL(sfx, T, LOAD, STORE, LOWEST)                                               \
    static void global_plane_##sfx(void *ctx, int64_t pl)                                      \
    {                                                                                          \
        const global_job *J = ctx;                                                             \
        const pool_geom *g = J->g;                                                             \
        const T *x = J->x;                                                                     \
        T *y = J->y;                                                                           \
        const int64_t IN = g->IN;                                                              \
        {                                                                                      \
            const T *xp = x + pl * IN;                                                         \
            double acc = g->kind == POOL_MAX ? LOWEST : 0;                                     \
            /* eight independent lanes (one chain of dependent adds ran a      \
             * 56x56 plane at a fifth of the memory's speed), then the lanes */ \
            int64_t i8 = IN / 8 * 8;                                                           \
            if (g->kind == POOL_MAX) {                                                         \
                double l[8];                                                                   \
                for (int j = 0; j < 8; j++) l[j] = acc;                                        \
                for (int64_t i = 0; i < i8; i += 8)                                            \
                    for (int j = 0; j < 8; j++) {                                              \
                        double v = LOAD(xp[i + j]);                                            \
                        l[j] = v > l[j] ? v : l[j];                                            \
                    }                                                                          \
                for (int64_t i = i8; i < IN; i++) {                                            \
                    double v = LOAD(xp[i]);                                                    \
                    acc = v > acc ? v : acc;                                                   \
                }                                                                              \
                for (int j = 0; j < 8; j++) acc = l[j] > acc ? l[j] : acc;                     \
            } else if (g->kind == POOL_AVG) {                                                  \
                double l[8] = {0};                                                             \
                for (int64_t i = 0; i < i8; i += 8)                                            \
                    for (int j = 0; j < 8; j++) l[j] += LOAD(xp[i + j]);                       \
                for (int64_t i = i8; i < IN; i++) acc += LOAD(xp[i]);                          \
                for (int j = 0; j < 8; j++) acc += l[j];                                       \
                acc /= (double)IN;                                                             \
            } else {                                                                           \
                for (int64_t i = 0; i < IN; i++) acc += lp_term(LOAD(xp[i]), g->p);            \
                acc = lp_root(acc, g->p);                                                      \
            }                                                                                  \
            y[pl] = STORE(acc);                                                                \
        }                                                                                      \
    }                                                                                          \
    static void global_##sfx(const pool_geom *g, const void *xv, void *yv, int nt)             \
    {                                                                                          \
        global_job J = {g, xv, yv};                                                            \
        int64_t planes = g->N * g->C;                                                          \
        onr_par_for(planes, nt, planes * g->IN > ONR_PAR_MIN, global_plane_##sfx, &J);         \
    }

#ifdef POOL_AVX512
/* GlobalAveragePool of float32 on AVX-512: chunks of planes a call. */
typedef struct gavg_job {
    const float *x;
    float *y;
    int64_t n, planes, chunk;
} gavg_job;

static void gavg_chunk(void *ctx, int64_t it)
{
    const gavg_job *J = ctx;
    int64_t p0 = it * J->chunk, p1 = p0 + J->chunk < J->planes ? p0 + J->chunk : J->planes;
    pool_avg_planes_avx512(J->x, J->y, J->n, p0, p1);
}

static int global_avg_f32_fast(const pool_geom *g, const void *x, void *y, int nt)
{
    if (g->kind != POOL_AVG || !pool_has_avx512()) return 0;
    const int64_t planes = g->N * g->C;
    /* chunks of about 16K floats, at least one plane each */
    int64_t chunk = g->IN > 0 ? 16384 / g->IN : planes;
    if (chunk < 1) chunk = 1;
    gavg_job J = {x, y, g->IN, planes, chunk};
    int64_t items = (planes + chunk - 1) / chunk;
    onr_par_for(items, nt, planes * g->IN > ONR_PAR_MIN, gavg_chunk, &J);
    return 1;
}
#endif

#define POOL_TYPE(sfx, T, LOAD, STORE, LOWEST)                                                 \
    ROW_POOL(sfx, T, LOAD, STORE, LOWEST)                                                      \
    MAXPOOL_IDX(sfx, T, LOAD, STORE, LOWEST)                                                   \
    GLOBAL_POOL(sfx, T, LOAD, STORE, LOWEST)

POOL_TYPE(f32, float, LD_D, (float), -INFINITY)
POOL_TYPE(f64, double, LD_D, (double), -INFINITY)
POOL_TYPE(f16, uint16_t, ld_f16, st_f16, -INFINITY)
POOL_TYPE(bf16, uint16_t, ld_bf16, st_bf16, -INFINITY)
POOL_TYPE(i8, int8_t, LD_D, (int8_t), INT8_MIN)
POOL_TYPE(u8, uint8_t, LD_D, (uint8_t), 0)

/* MaxPool on float32 without indices: per output row, the kernel rows
 * inside the input folded into one row first (rows holds IW floats per
 * thread), then the taps along W from it; both folds vectorise. The same
 * result as the row engine (NaN never wins, a window without a number
 * gives -inf), up to which of +0 and -0 a window of tied zeros returns. */
#ifdef POOL_AVX512
enum { POOL_S2_TAPS = 16, POOL_FOLD_ROWS = 8 };

/* y[ow] for ow outside [in_lo, in_hi): the taps inside the row one by one,
 * in tap order from -inf (as the passes below). */
static void pool_max_row_edges(const onr_spatial *sp, const float *t, float *yr, int64_t OW,
                               int64_t IW, int64_t in_lo, int64_t in_hi)
{
    const int64_t from[2] = {0, in_hi}, to[2] = {in_lo, OW};
    for (int e = 0; e < 2; e++)
        for (int64_t ow = from[e]; ow < to[e]; ow++) {
            float m = -INFINITY;
            for (int64_t kw = 0; kw < sp->k[2]; kw++) {
                int64_t i = ow * sp->s[2] + kw * sp->d[2] - sp->pb[2];
                if (i >= 0 && i < IW) m = t[i] > m ? t[i] : m;
            }
            yr[ow] = m;
        }
}
#endif

static void maxpool_f32(const pool_geom *g, const float *x, float *y, float *rows, size_t stride,
                        int nt)
{
    const onr_spatial *sp = &g->sp;
    const int64_t planes = g->N * g->C, work = planes * g->OUT * (g->K + 1);
    const int64_t OW = sp->out[2], IW = sp->in[2];
    const int avx512 = pool_has_avx512();
    (void)avx512;
#ifdef POOL_AVX512
    /* stride 2 along W: the outputs [in_lo, in_hi) every tap reads inside
     * the row go in one pass, the few at the borders tap by tap */
    int64_t in_lo = 0, in_hi = 0, off[POOL_S2_TAPS];
    if (avx512 && sp->s[2] == 2 && sp->k[2] <= POOL_S2_TAPS) {
        in_hi = OW;
        for (int64_t kw = 0; kw < sp->k[2]; kw++) {
            int64_t lo, hi;
            off[kw] = kw * sp->d[2] - sp->pb[2];
            onr_sp_taps(off[kw], OW, 2, IW, &lo, &hi);
            in_lo = lo > in_lo ? lo : in_lo;
            in_hi = hi < in_hi ? hi : in_hi;
        }
    }
#endif
#ifdef POOL_AVX512
    /* stride 2, 2 or 3 taps along W (ResNet's 3x3 / 2, VGG's and UNet's
     * 2x2 / 2): the rows folded in registers (pool_max_s2_rows_avx512) */
    const int s2rows = avx512 && sp->s[2] == 2 && sp->d[2] == 1 && (sp->k[2] == 2 || sp->k[2] == 3) &&
                       sp->pb[2] >= 0 && sp->pb[2] < sp->k[2];
#endif
    #pragma omp parallel for num_threads(onr_team(nt)) if (work > ONR_PAR_MIN && nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *t = rows + (size_t)omp_get_thread_num() * stride;
        const float *xp = x + pl * (g->ldx ? g->ldx : g->IN);
        pool_win w;
        for (int64_t od = 0; od < sp->out[0]; od++)
            for (int64_t oh = 0; oh < sp->out[1]; oh++) {
                pool_window(sp, od, oh, 0, &w);
                float *yr = y + pl * (g->ldy ? g->ldy : g->OUT) + (od * sp->out[1] + oh) * OW;
                int first = 1;
#ifdef POOL_AVX512
                const float *fr[POOL_FOLD_ROWS];
                int nr = 0;
                if (s2rows && (w.h[0] - w.l[0]) * (w.h[1] - w.l[1]) <= POOL_FOLD_ROWS) {
                    for (int64_t ta = w.l[0]; ta < w.h[0]; ta++)
                        for (int64_t tb = w.l[1]; tb < w.h[1]; tb++)
                            fr[nr++] = xp + pool_row_off(sp, &w, ta, tb);
                    pool_max_s2_rows_avx512(yr, fr, nr, IW, OW, sp->pb[2], sp->k[2]);
                    continue;
                }
#endif
                for (int64_t ta = w.l[0]; ta < w.h[0]; ta++)
                    for (int64_t tb = w.l[1]; tb < w.h[1]; tb++) {
                        const float *xr = xp + pool_row_off(sp, &w, ta, tb);
#ifdef POOL_AVX512
                        if (avx512) { /* the rows folded POOL_FOLD_ROWS at a time */
                            fr[nr++] = xr;
                            if (nr == POOL_FOLD_ROWS) {
                                pool_fold_max_avx512(t, fr, nr, IW, first);
                                first = 0, nr = 0;
                            }
                            continue;
                        }
#endif
                        if (first)
                            for (int64_t i = 0; i < IW; i++) t[i] = -INFINITY;
                        first = 0;
                        for (int64_t i = 0; i < IW; i++) t[i] = xr[i] > t[i] ? xr[i] : t[i];
                    }
#ifdef POOL_AVX512
                if (nr) {
                    pool_fold_max_avx512(t, fr, nr, IW, first);
                    first = 0;
                }
#endif
                if (first)
                    for (int64_t i = 0; i < IW; i++) t[i] = -INFINITY;
#ifdef POOL_AVX512
                if (in_lo < in_hi) {
                    pool_max_s2_taps_avx512(yr, t, off, sp->k[2], in_lo, in_hi);
                    pool_max_row_edges(sp, t, yr, OW, IW, in_lo, in_hi);
                    continue;
                }
#endif
                for (int64_t ow = 0; ow < OW; ow++) yr[ow] = -INFINITY;
                for (int64_t kw = 0; kw < sp->k[2]; kw++) {
                    int64_t off = kw * sp->d[2] - sp->pb[2], s2 = sp->s[2], lo, hi;
                    onr_sp_taps(off, OW, s2, IW, &lo, &hi);
#ifdef POOL_AVX512
                    if (s2 == 2 && avx512) {
                        pool_max_s2_avx512(yr, t, off, lo, hi);
                        continue;
                    }
#endif
                    if (s2 == 2) { /* the common stride, written so it vectorises */
                        const float *tk = t + off;
                        for (int64_t ow = lo; ow < hi; ow++) {
                            float v = tk[2 * ow];
                            yr[ow] = v > yr[ow] ? v : yr[ow];
                        }
                        continue;
                    }
                    for (int64_t ow = lo; ow < hi; ow++) {
                        float v = t[ow * s2 + off];
                        yr[ow] = v > yr[ow] ? v : yr[ow];
                    }
                }
            }
    }
}

/* MaxPool of float32 planes on the calling thread (FusedConv's pool,
 * linalg.h): the same code as the op's, one plane after another. */
size_t onr_maxpool_tmp_floats(const onr_spatial *sp) { return (size_t)sp->in[2]; }

void onr_maxpool_planes_f32(const onr_spatial *sp, int64_t planes, const float *x, int64_t ldx,
                            float *y, int64_t ldy, float *tmp)
{
    pool_geom g = {.kind = POOL_MAX, .N = 1, .C = planes, .IN = onr_sp_numel(sp->in),
                   .OUT = onr_sp_numel(sp->out), .K = onr_sp_numel(sp->k), .sp = *sp,
                   .ldx = ldx, .ldy = ldy};
    maxpool_f32(&g, x, y, tmp, 0, 1);
}

/* Bytes from one thread's row of the scratch to the next: the row engine's
 * OW doubles, or maxpool_f32's IW floats, apart (onr_thread_stride). */
static size_t pool_row_bytes(const pool_geom *g)
{
    size_t a = (size_t)g->sp.out[2] * sizeof(double), b = (size_t)g->sp.in[2] * sizeof(float);
    return onr_thread_stride(a > b ? a : b);
}

typedef void (*rowpool_fn)(const pool_geom *, const void *, void *, double *, int);
typedef void (*maxidx_fn)(const pool_geom *, const void *, void *, int64_t *, int);
typedef void (*global_fn)(const pool_geom *, const void *, void *, int);

static const struct {
    onr_dtype dt;
    rowpool_fn row;
    maxidx_fn maxidx;
    global_fn global;
} pool_table[] = {
    {ONR_FLOAT, rowpool_f32, maxidx_f32, global_f32},
    {ONR_DOUBLE, rowpool_f64, maxidx_f64, global_f64},
    {ONR_FLOAT16, rowpool_f16, maxidx_f16, global_f16},
    {ONR_BFLOAT16, rowpool_bf16, maxidx_bf16, global_bf16},
    {ONR_INT8, rowpool_i8, maxidx_i8, global_i8},
    {ONR_UINT8, rowpool_u8, maxidx_u8, global_u8},
};

/* ---- shape and geometry --------------------------------------------------- */

static uint32_t pool_types(int kind, int64_t opset)
{
    uint32_t t = ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16);
    if (opset >= 22) t |= ONR_T(ONR_BFLOAT16);
    if (kind == POOL_MAX && opset >= 12) t |= ONR_T(ONR_INT8) | ONR_T(ONR_UINT8);
    return t;
}

static const char *const pool_names[] = {"MaxPool", "AveragePool", "LpPool"};
static const char *const global_names[] = {"GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"};

/* Pool params: attributes from create, geometry and the path from reshape. */
typedef struct pool_params {
    int kind, global;
    onr_sp_list kernel;
    onr_window_attrs wa;
    int ceil_mode, count_include_pad, storage_order;
    double p;
    pool_geom g;
    int with_idx;  /* MaxPool's Indices output is wanted */
    int nthreads;  /* run threads the row scratch was sized for */
    size_t scratch;
} pool_params;

/* The p attribute of LpPool / GlobalLpPool: a float in opset 1, an int
 * after; must be positive. */
static int pool_p(onr_create_ctx *c, double *p)
{
    const onr_attr *a = onr_node_attr(c->node, "p");
    if (a && a->type != ONR_ATTR_FLOAT && a->type != ONR_ATTR_INT)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'p' must be an INT (or a FLOAT in "
                          "opset 1)");
    *p = !a ? 2. : a->type == ONR_ATTR_FLOAT ? (double)a->f : (double)a->i;
    if (!(*p > 0) || *p > 1e6)
        return onr_seterr(c->err, ONR_E_MODEL, "p = %g must be positive", *p);
    return ONR_OK;
}

static int bool_attr(onr_create_ctx *c, const char *name, int *v)
{
    int64_t a = onr_attr_int(c->node, name, 0);
    if (a != 0 && a != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute '%s' = %lld must be 0 or 1", name,
                          (long long)a);
    *v = (int)a;
    return ONR_OK;
}

static int pool_create(onr_create_ctx *c, pool_params *p, int kind, int global)
{
    int st;
    p->kind = kind;
    p->global = global;
    if (kind == POOL_LP && (st = pool_p(c, &p->p))) return st;
    if (global) return ONR_OK;
    if ((st = onr_sp_list_attr(c, "kernel_shape", ONR_SP_MAX, 1, &p->kernel))) return st;
    if (!p->kernel.present)
        return onr_seterr(c->err, ONR_E_MODEL, "%s needs the kernel_shape attribute",
                          pool_names[kind]);
    if ((st = bool_attr(c, "ceil_mode", &p->ceil_mode)) ||
        (st = bool_attr(c, "count_include_pad", &p->count_include_pad)) ||
        (st = bool_attr(c, "storage_order", &p->storage_order)) ||
        (st = onr_window_attrs_read(c, &p->wa)))
        return st;
    return ONR_OK;
}

/* Input and output count, type and rank shared by all pools. */
static int pool_inputs(onr_kctx *ctx, int kind, const char *op, int min_rank, int max_out)
{
    if (ctx->n_in != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s takes 1 input, got %d", op, ctx->n_in);
    if (ctx->n_out < 1 || ctx->n_out > max_out)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s has %d outputs, at most %d allowed", op,
                          ctx->n_out, max_out);
    int st = onr_check_input(ctx, 0, pool_types(kind, ctx->opset));
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    char s1[256];
    if (x->rank < min_rank)
        return onr_seterr(ctx->err, ONR_E_MODEL, "%s input %s must be N x C x D1 ... (rank >= %d)",
                          op, onr_fmt_dims(s1, sizeof s1, x->dims, x->rank), min_rank);
    return ONR_OK;
}

static int pool_geom_init(onr_kctx *ctx, const pool_params *p, pool_geom *g)
{
    int kind = p->kind;
    const char *op = pool_names[kind];
    /* MaxPool has the Indices output from opset 8 */
    int st = pool_inputs(ctx, kind, op, 3, kind == POOL_MAX && ctx->opset >= 8 ? 2 : 1);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    int nsp = x->rank - 2;
    if (nsp > ONR_SP_MAX)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "%s over %d spatial dims (at most %d)", op,
                          nsp, ONR_SP_MAX);
    int64_t kernel[ONR_SP_MAX];
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->count_include_pad = p->count_include_pad;
    g->storage_order = p->storage_order;
    g->p = p->p;
    if ((st = onr_sp_list_get(ctx->err, &p->kernel, nsp, 1, kernel)) ||
        (st = onr_spatial_window(ctx->err, &p->wa, nsp, x->dims + 2, kernel, p->ceil_mode, &g->sp)))
        return st;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->IN = onr_sp_numel(g->sp.in);
    g->OUT = onr_sp_numel(g->sp.out);
    g->K = onr_sp_numel(g->sp.k);
    return ONR_OK;
}

/* Global pools: one window over the whole plane, flattened to one axis so
 * any rank works. */
static int global_geom_init(onr_kctx *ctx, const pool_params *p, pool_geom *g)
{
    int kind = p->kind;
    int st = pool_inputs(ctx, kind, global_names[kind], 2, 1);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->p = p->p;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->IN = 1;
    for (int i = 2; i < x->rank; i++) g->IN *= x->dims[i];
    onr_spatial *sp = &g->sp;
    sp->nsp = 1;
    for (int j = 0; j < 3; j++) sp->in[j] = sp->out[j] = sp->k[j] = sp->s[j] = sp->d[j] = 1;
    sp->in[2] = sp->k[2] = g->IN;
    g->OUT = 1;
    g->K = g->IN;
    return ONR_OK;
}

static int pool_set_outputs(onr_kctx *ctx, const pool_geom *g, int global)
{
    const onr_tensor *x = ctx->in[0];
    int64_t dims[ONR_MAX_RANK];
    int rank = x->rank, nsp = rank - 2;
    dims[0] = g->N;
    dims[1] = g->C;
    for (int i = 0; i < nsp; i++) dims[2 + i] = global ? 1 : g->sp.out[3 - nsp + i];
    int st = onr_set_out(ctx, 0, x->dtype, rank, dims);
    if (!st && ctx->n_out > 1) st = onr_set_out(ctx, 1, ONR_INT64, rank, dims);
    return st;
}

static int pool_reshape(onr_kctx *ctx, size_t *scratch)
{
    pool_params *p = ctx->params;
    int st = p->global ? global_geom_init(ctx, p, &p->g) : pool_geom_init(ctx, p, &p->g);
    if (st || (st = pool_set_outputs(ctx, &p->g, p->global))) return st;
    p->with_idx = ctx->n_out > 1 && ctx->out[1];
    p->nthreads = ctx->nthreads > 0 ? ctx->nthreads : 1;
    /* the row engine: one row of doubles per thread */
    p->scratch = p->global || (p->kind == POOL_MAX && p->with_idx)
                     ? 0
                     : (size_t)p->nthreads * pool_row_bytes(&p->g);
    *scratch = p->scratch;
    return ONR_OK;
}

static int pool_run(const onr_kctx *ctx)
{
    const pool_params *p = ctx->params;
    const pool_geom *g = &p->g;
    const onr_tensor *x = ctx->in[0];
    onr_tensor *y = ctx->out[0];
    int nt = ctx->nthreads < p->nthreads ? ctx->nthreads : p->nthreads;
    if (nt < 1) nt = 1;
    size_t i = 0, n = sizeof pool_table / sizeof pool_table[0];
    while (i < n && pool_table[i].dt != x->dtype) i++;
    if (i == n)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "pooling of %s", onr_dtype_name(x->dtype));
    if (p->global) {
#ifdef POOL_AVX512
        if (x->dtype == ONR_FLOAT && global_avg_f32_fast(g, x->data, y->data, nt)) return ONR_OK;
#endif
        pool_table[i].global(g, x->data, y->data, nt);
    } else if (p->kind == POOL_MAX && p->with_idx) {
        pool_table[i].maxidx(g, x->data, y->data, ctx->out[1]->data, nt);
    } else {
        if (ctx->scratch_size < p->scratch)
            return onr_seterr(ctx->err, ONR_E_RUNTIME, "pooling scratch too small");
        if (p->kind == POOL_MAX && x->dtype == ONR_FLOAT)
            maxpool_f32(g, x->data, y->data, ctx->scratch, pool_row_bytes(g) / sizeof(float), nt);
        else
            pool_table[i].row(g, x->data, y->data, ctx->scratch, nt);
    }
    return ONR_OK;
}

/* One create per op over the shared params; reshape and run are shared. */
#define POOL_OP(Name, kind, global)                                                            \
    static int Name##_create(onr_create_ctx *c, void *params)                                  \
    {                                                                                          \
        return pool_create(c, params, kind, global);                                           \
    }                                                                                          \
    const onr_op_impl onr_impl_##Name = {                                                      \
        .create = Name##_create,                                                               \
        .reshape = pool_reshape,                                                               \
        .run = pool_run,                                                                       \
        .params_size = sizeof(pool_params),                                                    \
        .types = ONR_TYPES_FLOAT | (kind == POOL_MAX ? ONR_T(ONR_INT8) | ONR_T(ONR_UINT8) : 0), \
    };

POOL_OP(MaxPool, POOL_MAX, 0)
POOL_OP(AveragePool, POOL_AVG, 0)
POOL_OP(LpPool, POOL_LP, 0)
POOL_OP(GlobalMaxPool, POOL_MAX, 1)
POOL_OP(GlobalAveragePool, POOL_AVG, 1)
POOL_OP(GlobalLpPool, POOL_LP, 1)

/* ======================================================================
 * MaxUnpool: Y = zeros, Y[I[j]] = X[j]
 * ==================================================================== */

/* MaxUnpool params: attributes from create; from reshape, the shape the
 * indices address (inferred) and the output's, with their strides. */
typedef struct unpool_params {
    onr_sp_list kernel, strides, pads;
    int rank, same; /* same: the output has the inferred shape */
    int64_t limit;  /* elements of the inferred shape: indices lie in [0, limit) */
    int64_t odims[ONR_MAX_RANK], istr[ONR_MAX_RANK], ostr[ONR_MAX_RANK];
} unpool_params;

static int unpool_create(onr_create_ctx *c, void *params)
{
    unpool_params *p = params;
    int st, maxsp = ONR_MAX_RANK - 2;
    if ((st = onr_sp_list_attr(c, "kernel_shape", maxsp, 1, &p->kernel))) return st;
    if (!p->kernel.present)
        return onr_seterr(c->err, ONR_E_MODEL, "MaxUnpool needs the kernel_shape attribute");
    if ((st = onr_sp_list_attr(c, "strides", maxsp, 1, &p->strides)) ||
        (st = onr_sp_list_attr(c, "pads", 2 * maxsp, 0, &p->pads)))
        return st;
    return ONR_OK;
}

/* The spatial dims unpooling gives, (in - 1) * s - pads + k, in *inferred;
 * the output dims (those, or the output_shape input) in *odims. */
static int unpool_geom(onr_kctx *ctx, const unpool_params *p, int64_t *inferred, int64_t *odims)
{
    if (ctx->n_in < 2 || ctx->n_in > 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "MaxUnpool takes 2 or 3 inputs, got %d",
                          ctx->n_in);
    int st;
    if ((st = onr_check_input(ctx, 0, pool_types(POOL_AVG, ctx->opset))) ||
        (st = onr_check_input(ctx, 1, ONR_T(ONR_INT64))))
        return st;
    const onr_tensor *x = ctx->in[0], *ix = ctx->in[1];
    char s1[256], s2[256];
    if (x->rank < 3)
        return onr_seterr(ctx->err, ONR_E_MODEL, "MaxUnpool input %s must be N x C x D1 ...",
                          onr_fmt_dims(s1, sizeof s1, x->dims, x->rank));
    if (ix->rank != x->rank || memcmp(ix->dims, x->dims, sizeof(int64_t) * (size_t)x->rank))
        return onr_seterr(ctx->err, ONR_E_MODEL, "indices %s must have the shape of X %s",
                          onr_fmt_dims(s1, sizeof s1, ix->dims, ix->rank),
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    int nsp = x->rank - 2;
    int64_t k[ONR_MAX_RANK], s[ONR_MAX_RANK], pads[2 * ONR_MAX_RANK];
    if ((st = onr_sp_list_get(ctx->err, &p->kernel, nsp, 1, k)) ||
        (st = onr_sp_list_get(ctx->err, &p->strides, nsp, 1, s)) ||
        (st = onr_sp_list_get(ctx->err, &p->pads, 2 * nsp, 0, pads)))
        return st;
    inferred[0] = odims[0] = x->dims[0];
    inferred[1] = odims[1] = x->dims[1];
    for (int i = 0; i < nsp; i++) {
        if (x->dims[2 + i] > 1 && s[i] > ONR_SP_ATTR_MAX / (x->dims[2 + i] - 1))
            return onr_seterr(ctx->err, ONR_E_MODEL, "stride %lld times input %lld is too large",
                              (long long)s[i], (long long)x->dims[2 + i]);
        inferred[2 + i] = (x->dims[2 + i] - 1) * s[i] - pads[i] - pads[nsp + i] + k[i];
        if (inferred[2 + i] < 0)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "pads %lld+%lld leave no output on spatial axis %d",
                              (long long)pads[i], (long long)pads[nsp + i], i);
        odims[2 + i] = inferred[2 + i];
    }
    if (ctx->n_in < 3 || !ctx->in[2]) return ONR_OK;
    int n;
    if ((st = onr_read_ints(ctx, 2, odims, ONR_MAX_RANK, &n))) return st;
    if (n != x->rank || odims[0] != x->dims[0] || odims[1] != x->dims[1])
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "output_shape %s must be N x C x ... of rank %d with N, C of X %s",
                          onr_fmt_dims(s1, sizeof s1, odims, n), x->rank,
                          onr_fmt_dims(s2, sizeof s2, x->dims, x->rank));
    return ONR_OK;
}

static int unpool_reshape(onr_kctx *ctx, size_t *scratch)
{
    unpool_params *p = ctx->params;
    int64_t inferred[ONR_MAX_RANK];
    int st = unpool_geom(ctx, p, inferred, p->odims);
    if (st || (st = onr_set_out(ctx, 0, ctx->in[0]->dtype, ctx->in[0]->rank, p->odims)))
        return st;
    int rank = p->rank = ctx->in[0]->rank;
    p->same = !memcmp(inferred, p->odims, sizeof(int64_t) * (size_t)rank);
    p->limit = 1;
    for (int d = 0; d < rank; d++) p->limit *= inferred[d];
    onr_strides(inferred, rank, p->istr);
    onr_strides(p->odims, rank, p->ostr);
    *scratch = 0;
    return ONR_OK;
}

/* Indices address the unpooled tensor of the inferred shape; an explicit
 * output_shape keeps each element's coordinates (the extra room is at the
 * end of each axis, as in the ONNX backend test data). */
static int unpool_run(const onr_kctx *ctx)
{
    const unpool_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0], *ix = ctx->in[1];
    onr_tensor *y = ctx->out[0];
    size_t es = onr_dtype_size(x->dtype);
    memset(y->data, 0, onr_tensor_nbytes(y));
    const int64_t *idx = ix->data;
    for (int64_t j = 0; j < x->numel; j++) {
        int64_t v = idx[j], off = 0, rem = v;
        if (v < 0 || v >= p->limit)
            return onr_seterr(ctx->err, ONR_E_RUNTIME,
                              "index %lld at %lld is out of range [0, %lld)", (long long)v,
                              (long long)j, (long long)p->limit);
        for (int d = 0; d < p->rank && !p->same; d++) {
            int64_t c = rem / p->istr[d];
            rem %= p->istr[d];
            if (c >= p->odims[d])
                return onr_seterr(ctx->err, ONR_E_RUNTIME,
                                  "index %lld falls outside output_shape on axis %d",
                                  (long long)v, d);
            off += c * p->ostr[d];
        }
        if (p->same) off = v;
        memcpy((char *)y->data + (size_t)off * es, (const char *)x->data + (size_t)j * es, es);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_MaxUnpool = {
    .create = unpool_create,
    .reshape = unpool_reshape,
    .run = unpool_run,
    .params_size = sizeof(unpool_params),
    .types = ONR_TYPES_FLOAT,
    .shape_inputs = 1u << 2, /* output_shape's values give the output dims */
};
