/*
 * dwconv.c - depthwise convolution (see dwconv.h): the plain-C reference
 * kernel, the choice of kernel from CPUID, and the driver that splits the
 * output planes (and rows) over threads.
 */
#include "ops/dwconv.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/linalg.h"
#include "ops/ops.h"

/* The epilogue on one value; z the residual element or NULL. */
static float dw_epi1(const onr_dwconv *g, float v, const float *z)
{
    if (z && !g->res_after) v += *z;
    switch (g->act) {
    case ONR_DW_ACT_RELU: v = v < 0.f ? 0.f : v; break;
    case ONR_DW_ACT_CLIP:
        v = v < g->a ? g->a : v;
        v = v > g->b ? g->b : v;
        break;
    case ONR_DW_ACT_SIGMOID: v = 1.f / (1.f + expf(-v)); break;
    case ONR_DW_ACT_SILU: v = v / (1.f + expf(-v)); break;
    case ONR_DW_ACT_HARDSIGMOID:
    case ONR_DW_ACT_HARDSWISH: {
        float h = g->a * v + g->b;
        h = h < 0.f ? 0.f : h;
        h = h > 1.f ? 1.f : h;
        v = g->act == ONR_DW_ACT_HARDSWISH ? v * h : h;
        break;
    }
    case ONR_DW_ACT_LEAKYRELU: v = v < 0.f ? g->a * v : v; break;
    default: break;
    }
    if (z && g->res_after) v += *z;
    return v;
}

/* Taps j in [*lo, *hi) of k taps from `start` with step d that land in
 * [0, in). */
static void dw_taps(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *lo, int64_t *hi)
{
    int64_t l = start < 0 ? (-start + d - 1) / d : 0;
    int64_t h = in - start <= 0 ? 0 : (in - start + d - 1) / d;
    if (h > k) h = k;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

void onr_dwconv_rows_ref(const onr_dwconv *g, const float *xp, const float *wm, float bias,
                         const float *zp, float *yp, int64_t oh0, int64_t oh1, float *ws)
{
    (void)ws;
    for (int64_t oh = oh0; oh < oh1; oh++) {
        int64_t ih0 = oh * g->SH - g->PT, kh0, kh1;
        dw_taps(ih0, g->KH, g->DH, g->IH, &kh0, &kh1);
        for (int64_t ow = 0; ow < g->OW; ow++) {
            int64_t iw0 = ow * g->SW - g->PL, kw0, kw1;
            dw_taps(iw0, g->KW, g->DW, g->IW, &kw0, &kw1);
            float acc = 0.f;
            for (int64_t c = 0; c < (g->cg > 1 ? g->cg : 1); c++)
                for (int64_t kh = kh0; kh < kh1; kh++) {
                    const float *xr = xp + (c * g->IH + ih0 + kh * g->DH) * g->IW + iw0;
                    const float *wr = wm + (c * g->KH + kh) * g->KW;
                    for (int64_t kw = kw0; kw < kw1; kw++) acc += wr[kw] * xr[kw * g->DW];
                }
            int64_t i = oh * g->OW + ow;
            yp[i] = dw_epi1(g, acc + bias, zp ? zp + i : NULL);
        }
    }
}

/* ---- kernel choice ------------------------------------------------------ */

enum { DW_REF, DW_AVX2, DW_AVX512, DW_COUNT };
static const char *const dw_names[DW_COUNT] = {"ref", "avx2", "avx512"};
static const onr_dwconv_rows_fn dw_fns[DW_COUNT] = {onr_dwconv_rows_ref, onr_dwconv_rows_avx2,
                                                    onr_dwconv_rows_avx512};
static const onr_gconv_rows_fn gc_fns[DW_COUNT] = {NULL, onr_gconv_rows_avx2,
                                                   onr_gconv_rows_avx512};
static int dw_supported[DW_COUNT], dw_auto, dw_active;
static pthread_once_t dw_once = PTHREAD_ONCE_INIT;

static int dw_find(const char *name)
{
    for (int i = 0; i < DW_COUNT; i++)
        if (strcmp(name, dw_names[i]) == 0) return i;
    return -1;
}

static void dw_init(void)
{
    dw_supported[DW_REF] = 1;
    dw_supported[DW_AVX2] = onr_cpu_supports("avx2");
    dw_supported[DW_AVX512] = onr_cpu_supports("avx512");
    dw_auto = dw_supported[DW_AVX512] ? DW_AVX512 : (dw_supported[DW_AVX2] ? DW_AVX2 : DW_REF);
    const char *env = getenv("ONR_DWCONV_KERNEL");
    if (env && *env) {
        int i = dw_find(env);
        if (i >= 0 && dw_supported[i]) dw_auto = i;
    }
    dw_active = dw_auto;
}

const char *onr_dwconv_kernel_name(void)
{
    pthread_once(&dw_once, dw_init);
    return dw_names[dw_active];
}

int onr_dwconv_force_kernel(const char *name)
{
    pthread_once(&dw_once, dw_init);
    if (!name) {
        dw_active = dw_auto;
        return 0;
    }
    int i = dw_find(name);
    if (i < 0 || !dw_supported[i]) return -1;
    dw_active = i;
    return 0;
}

/* ---- driver ------------------------------------------------------------- */

static int64_t dw_cg(const onr_dwconv *g) { return g->cg > 1 ? g->cg : 1; }

/* Output rows per band of the blocked path: a band's padded input rows
 * and its outputs (16 floats a position) in about half of a 1 MiB L2; the
 * whole plane when it fits. */
int64_t onr_dwconv_blocked_band(const onr_dwconv *g)
{
    const int64_t PW = onr_dwconv_blocked_pw(g), budget = 8192; /* positions: 512 KiB */
    int64_t band = (budget - (g->KH - g->SH) * PW) / (g->SH * PW + g->OW);
    if (band < 1) band = 1;
    return band < g->OH ? band : g->OH;
}

int onr_dwconv_blocked_ok(const onr_dwconv *g)
{
    /* measured with the unrolled taps: 3x3 gains on every plane of
     * MobileNetV2 up to 112x112 at strides 1 and 2 */
    return !(g->cg > 1 || g->mult != 1 || g->DH != 1 || g->DW != 1 || g->SH < 1 || g->SH > 2 ||
             g->SW < 1 || g->SW > 2 || g->KH > 7 || g->KW > 7 || g->OH < 1 || g->OW < 1 ||
             g->OW > 128 || g->C < 16);
}

size_t onr_dwconv_blocked_floats(const onr_dwconv *g)
{
    const int64_t band = onr_dwconv_blocked_band(g);
    const int64_t ph = (band - 1) * g->SH + g->KH, pw = onr_dwconv_blocked_pw(g);
    /* a band's padded rows and its outputs, each 16 floats a position */
    return (size_t)16 * (size_t)(ph * pw + band * g->OW);
}

size_t onr_dwconv_weights_floats(const onr_dwconv *g)
{
    size_t kk = (size_t)(g->KH * g->KW);
    if (g->cg > 1) return (size_t)(g->C / g->cg * g->mult) * (size_t)g->cg * kk;
    if (g->mult == 1 && g->C >= 16) return (size_t)(g->C / 16 * 16) * kk;
    return 0;
}

void onr_dwconv_prepare_weights(const onr_dwconv *g, const float *w, float *wl)
{
    const int64_t kk = g->KH * g->KW;
    if (g->cg > 1) {
        /* per group, runs of 8 outputs and the rest cut into blocks of 4,
         * 2, 1 (as gc_rows cuts a group), each block's filters tap-major:
         * wl[tap * mb + m] */
        const int64_t taps = g->cg * kk, groups = g->C / g->cg;
        for (int64_t grp = 0; grp < groups; grp++)
            for (int64_t u0 = 0; u0 < g->mult; u0 += 8) {
                int64_t nm = g->mult - u0 < 8 ? g->mult - u0 : 8;
                for (int64_t m0 = 0; m0 < nm;) {
                    int64_t left = nm - m0, mb = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
                    int64_t at = (grp * g->mult + u0 + m0) * taps;
                    for (int64_t k = 0; k < taps; k++)
                        for (int64_t m = 0; m < mb; m++) wl[at + k * mb + m] = w[at + m * taps + k];
                    m0 += mb;
                }
            }
        return;
    }
    if (g->mult != 1) return;
    /* blocks of 16 channels, each tap's 16 weights together */
    for (int64_t c0 = 0; c0 + 16 <= g->C; c0 += 16)
        for (int64_t k = 0; k < kk; k++)
            for (int64_t c = 0; c < 16; c++) wl[c0 * kk + k * 16 + c] = w[(c0 + c) * kk + k];
}

/* Floats of one thread's workspace: stride 2 along W splits the input
 * plane's rows (each of the group's cg planes) into even and odd columns,
 * each row ceil(IW/2) long. */
static size_t dw_ws_floats(const onr_dwconv *g)
{
    size_t f = 0;
    if (g->SW == 2) f += 2 * (size_t)dw_cg(g) * (size_t)g->IH * (size_t)((g->IW + 1) / 2);
    if (onr_dwconv_blocked_ok(g) && onr_dwconv_blocked_floats(g) > f)
        f = onr_dwconv_blocked_floats(g);
    /* one thread's part to the next's: 64-byte aligned, a gap between */
    return f ? onr_thread_stride(sizeof(float) * f) / sizeof(float) : 0;
}

/* The workspace: W laid out (when the caller has no layout), then each
 * thread's part. */
static size_t dw_wl_floats(const onr_dwconv *g)
{
    return (onr_dwconv_weights_floats(g) + 15) / 16 * 16;
}

size_t onr_dwconv_workspace_size(const onr_dwconv *g, int nthreads)
{
    size_t per = dw_ws_floats(g) * (size_t)(nthreads > 1 ? nthreads : 1);
    return sizeof(float) * (dw_wl_floats(g) + per);
}

/* The SIMD small-group rows function for g (cg > 1), or NULL where only
 * the portable rows take it: strides other than 1 and 2 (the SIMD kernels
 * treat every other as 2), wider kernels, the reference kernel chosen. */
static onr_gconv_rows_fn dw_gc_fn(const onr_dwconv *g)
{
    return (g->SW == 1 || g->SW == 2) && g->KW <= ONR_GCONV_KW_MAX && g->mult <= 1 << 30
               ? gc_fns[dw_active]
               : NULL;
}

/* One call's state for the work items below (onr_par_for). Work items
 * are (plane, row chunk), with cg > 1 (all planes of one group, row
 * chunk); a plane is cut into chunks only when there are too few planes
 * (groups) to keep every thread busy. */
typedef struct dw_job {
    const onr_dwconv *g;
    const float *x, *w, *wl, *b, *z;
    float *y, *ws0;
    onr_dwconv_rows_fn fn;
    onr_gconv_rows_fn gfn;
    int64_t M, OUT, cg, nb, chunks, rows;
} dw_job;

static float *dw_thread_ws(const dw_job *j)
{
    return j->ws0 ? j->ws0 + dw_ws_floats(j->g) * (size_t)omp_get_thread_num() : NULL;
}

/* Blocked path: 16 channels of one image, a row chunk of their planes. */
static void dw_item_block16(void *ctx, int64_t it)
{
    const dw_job *j = ctx;
    const onr_dwconv *g = j->g;
    const int64_t blk = it / j->chunks, ch = it % j->chunks;
    int64_t n = blk / j->nb, c = blk % j->nb * 16;
    const int64_t oh0 = ch * j->rows, oh1 = oh0 + j->rows < g->OH ? oh0 + j->rows : g->OH;
    if (oh0 >= oh1) return;
    size_t off = (size_t)((n * g->C + c) * j->OUT);
    onr_dwconv_block16_avx512(g, j->x + (size_t)((n * g->C + c) * g->IH * g->IW),
                              j->wl + c * g->KH * g->KW, j->b ? j->b + c : NULL,
                              j->z ? j->z + off : NULL, j->y + off, dw_thread_ws(j), oh0, oh1);
}

/* Blocked path: one of the last C % 16 planes of one image. */
static void dw_item_rest(void *ctx, int64_t it)
{
    const dw_job *j = ctx;
    const onr_dwconv *g = j->g;
    int64_t rest = g->C % 16;
    int64_t n = it / rest, m = j->nb * 16 + it % rest, pl = n * j->M + m;
    j->fn(g, j->x + (n * g->C + m) * g->IH * g->IW, j->w + m * g->KH * g->KW, j->b ? j->b[m] : 0.f,
          j->z ? j->z + pl * j->OUT : NULL, j->y + pl * j->OUT, 0, g->OH, dw_thread_ws(j));
}

/* Row path: a chunk of output rows of one unit (a plane, or a group's). */
static void dw_item_rows(void *ctx, int64_t it)
{
    const dw_job *j = ctx;
    const onr_dwconv *g = j->g;
    int64_t u = it / j->chunks, ch = it % j->chunks;
    int64_t oh0 = ch * j->rows, oh1 = oh0 + j->rows < g->OH ? oh0 + j->rows : g->OH;
    if (oh0 >= oh1) return;
    const int64_t M = j->M, OUT = j->OUT, cg = j->cg;
    if (j->gfn) {
        const int64_t G = M / g->mult, n = u / G, grp = u % G, m0 = grp * g->mult;
        int64_t pl = n * M + m0;
        j->gfn(g, j->x + (n * g->C + grp * cg) * g->IH * g->IW, j->wl + m0 * cg * g->KH * g->KW,
               j->b ? j->b + m0 : NULL, j->z ? j->z + pl * OUT : NULL, j->y + pl * OUT,
               (int)g->mult, oh0, oh1, dw_thread_ws(j));
        return;
    }
    int64_t n = u / M, m = u % M;
    const float *xp = j->x + (n * g->C + m / g->mult * cg) * g->IH * g->IW;
    j->fn(g, xp, j->w + m * cg * g->KH * g->KW, j->b ? j->b[m] : 0.f, j->z ? j->z + u * OUT : NULL,
          j->y + u * OUT, oh0, oh1, dw_thread_ws(j));
}

void onr_dwconv_f32(const onr_dwconv *g, const float *x, const float *w, const float *wl,
                    const float *b, const float *z, float *y, void *ws, int nthreads)
{
    pthread_once(&dw_once, dw_init);
    onr_dwconv_rows_fn fn = dw_fns[dw_active];
    const int64_t cg = dw_cg(g);
    onr_gconv_rows_fn gfn = cg > 1 && ws ? dw_gc_fn(g) : NULL;
    if (g->SW != 1 && g->SW != 2) fn = onr_dwconv_rows_ref;
    if (cg > 1) fn = onr_dwconv_rows_ref; /* the SIMD rows functions are depthwise */
    int64_t M = g->C / cg * g->mult, planes = g->N * M, OUT = g->OH * g->OW;
    if (planes == 0 || OUT == 0) return;
    /* units: planes, or the planes of one group (gc_rows takes them 8 at a
     * time along each output row, so the input rows stay in cache) */
    int64_t units = gfn ? g->N * (M / g->mult) : planes;
    int nt = nthreads > 1 ? nthreads : 1;
    int64_t work = planes * OUT * (cg * g->KH * g->KW + 1);
    const int blocked = dw_active == DW_AVX512 && ws && onr_dwconv_blocked_ok(g);
    /* the SIMD kernels read W laid out: the caller's, or made here */
    if ((gfn || blocked) && !wl) {
        onr_dwconv_prepare_weights(g, w, (float *)ws);
        wl = ws;
    }
    dw_job j = {.g = g, .x = x, .w = w, .wl = wl, .b = b, .z = z, .y = y,
                .ws0 = ws ? (float *)ws + dw_wl_floats(g) : NULL, .fn = fn, .gfn = gfn,
                .M = M, .OUT = OUT, .cg = cg, .nb = g->C / 16};
    const int par = work > ONR_PAR_MIN;
    if (blocked) {
        /* blocks of 16 channels (the last C % 16 per plane after), cut in
         * row chunks when the blocks do not split evenly between the
         * threads: 144 channels are 9 blocks, 5 / 4 on 2 threads, and 18
         * half-planes 9 / 9 (the chunks' border rows are read twice) */
        const int64_t blocks = g->N * j.nb;
        j.chunks = 1;
        if (par && nt > 1 && blocks % nt && blocks < 8 * (int64_t)nt) {
            while (j.chunks < g->OH && (blocks * j.chunks) % nt && j.chunks < nt) j.chunks++;
            if ((blocks * j.chunks) % nt) j.chunks = 1;
        }
        j.rows = (g->OH + j.chunks - 1) / j.chunks;
        onr_par_for(blocks * j.chunks, nt, par, dw_item_block16, &j);
        if (g->C % 16) onr_par_for(g->N * (g->C % 16), nt, par, dw_item_rest, &j);
        return;
    }
    j.chunks = 1;
    /* fewer groups than threads (an image's stem: one group of 3 inputs,
     * 64 outputs): the threads split each group's output rows, every
     * thread computing all its outputs (ResNet's 7x7 stem at 2 threads on
     * Zen 5: 0.77-0.79 -> 0.67-0.68 ms in ResNet-18, the max pool after
     * it 0.01 ms slower; in one process, runs alternating: ResNet-18
     * -1.6..-1.9 %, ResNet-50 -0.75..0 %). Split by outputs instead (each
     * thread computing its outputs' planes whole) it was 10 % slower
     * alone, and each thread split the whole input again. */
    if (nt > 1 && units < 4 * (int64_t)nt) {
        j.chunks = (4 * (int64_t)nt + units - 1) / units;
        if (j.chunks > g->OH) j.chunks = g->OH;
    }
    j.rows = (g->OH + j.chunks - 1) / j.chunks;
    onr_par_for(units * j.chunks, nt, par, dw_item_rows, &j);
}

/* ---- small groups + max pool (FusedConv's pool) ------------------------- */

/* Conv rows a band holds for `rows` pooled rows: the windows' union, at
 * most the conv output's rows (a window taller than them, over wide
 * pads, reads only those). */
static int64_t dwp_conv_rows(const onr_dwconv *g, const onr_dwpool *p, int64_t rows)
{
    int64_t r = (rows - 1) * p->SH + p->KH;
    return r < g->OH ? r : g->OH;
}

/* Pooled rows per band: the band's conv rows of one group's outputs in
 * about a quarter of L2 (with the even / odd split of its input and the
 * pooled rows beside it), at least one. Depends on the shapes only. */
static int64_t dwp_band(const onr_dwconv *g, const onr_dwpool *p)
{
    onr_sgemm_blocking b;
    onr_sgemm_get_blocking(&b);
    const int64_t row = g->mult * g->OW * (int64_t)sizeof(float);
    const int64_t fit = row > 0 ? (int64_t)b.l2_bytes / 4 / row : g->OH; /* conv rows */
    if (fit >= g->OH) return p->OH > 0 ? p->OH : 1; /* all of them: one band */
    int64_t rows = fit < p->KH ? 1 : (fit - p->KH) / p->SH + 1;
    return rows < 1 ? 1 : rows > p->OH ? p->OH : rows;
}

/* One thread's floats: the input split (dw_ws_floats), a band of conv
 * rows, the pool's row. */
static size_t dwp_band_floats(const onr_dwconv *g, const onr_dwpool *p)
{
    return (size_t)(g->mult * dwp_conv_rows(g, p, dwp_band(g, p)) * g->OW);
}

static size_t dwp_thread_floats(const onr_dwconv *g, const onr_dwpool *p)
{
    size_t f = dw_ws_floats(g) + dwp_band_floats(g, p) + (size_t)(g->OW + 16);
    return onr_thread_stride(sizeof(float) * f) / sizeof(float);
}

size_t onr_dwconv_pool_workspace_size(const onr_dwconv *g, const onr_dwpool *p, int nthreads)
{
    size_t per = dwp_thread_floats(g, p) * (size_t)(nthreads > 1 ? nthreads : 1);
    return sizeof(float) * (dw_wl_floats(g) + per);
}

typedef struct dwp_job {
    const onr_dwconv *g;
    const onr_dwpool *p;
    const float *x, *w, *wl, *b;
    float *y, *ws0;
    onr_gconv_rows_fn gfn;
    int64_t M, chunks, rows, band;
} dwp_job;

/* Conv rows [r0, r1) of one group's outputs into the band (planes of R
 * rows, R * OW floats apart), its row 0 being conv row c0: the geometry
 * shifted by c0 rows (pads before less c0 strides: the same taps, the same
 * sums as the whole layer's row r), planes of R rows. */
static void dwp_conv_rows_into(const dwp_job *j, const float *xg, int64_t m0, float *band, int64_t R,
                               int64_t c0, int64_t r0, int64_t r1, float *ws)
{
    onr_dwconv gs = *j->g;
    gs.OH = R;
    gs.PT = j->g->PT - c0 * j->g->SH;
    const int64_t taps = gs.cg * gs.KH * gs.KW;
    if (j->gfn) {
        j->gfn(&gs, xg, j->wl + m0 * taps, j->b ? j->b + m0 : NULL, NULL, band, (int)gs.mult,
               r0 - c0, r1 - c0, ws);
        return;
    }
    for (int64_t m = 0; m < gs.mult; m++)
        onr_dwconv_rows_ref(&gs, xg, j->w + (m0 + m) * taps, j->b ? j->b[m0 + m] : 0.f, NULL,
                            band + m * R * gs.OW, r0 - c0, r1 - c0, ws);
}

/* A chunk of pooled rows of one (image, group): band by band, the conv
 * rows the band's windows read (those of the band before that it shares
 * moved up, not computed again), then the pool of them. */
static void dwp_item(void *ctx, int64_t it)
{
    const dwp_job *j = ctx;
    const onr_dwconv *g = j->g;
    const onr_dwpool *p = j->p;
    const int64_t u = it / j->chunks, ch = it % j->chunks, G = j->M / g->mult;
    const int64_t n = u / G, grp = u % G, m0 = grp * g->mult;
    int64_t q0 = ch * j->rows, q1 = q0 + j->rows < p->OH ? q0 + j->rows : p->OH;
    if (q0 >= q1) return;
    float *ws = j->ws0 + dwp_thread_floats(g, p) * (size_t)omp_get_thread_num();
    float *band = ws + dw_ws_floats(g), *tmp = band + dwp_band_floats(g, p);
    const int64_t R = dwp_conv_rows(g, p, j->band), OW = g->OW;
    const float *xg = j->x + (n * g->C + grp * g->cg) * g->IH * g->IW;
    float *yu = j->y + (n * j->M + m0) * p->OH * p->OW;
    int64_t h0 = 0, h1 = 0; /* conv rows the band holds */
    for (int64_t p0 = q0; p0 < q1; p0 += j->band) {
        const int64_t p1 = p0 + j->band < q1 ? p0 + j->band : q1;
        int64_t c0 = p0 * p->SH - p->PT, c1 = (p1 - 1) * p->SH - p->PT + p->KH;
        if (c0 < 0) c0 = 0;
        if (c1 > g->OH) c1 = g->OH;
        if (c1 < c0) c1 = c0; /* windows all in the padding: -inf */
        int64_t from = c0;
        if (h1 > c0 && h0 <= c0) { /* the rows shared with the band before */
            for (int64_t m = 0; m < g->mult; m++)
                memmove(band + m * R * OW, band + (m * R + c0 - h0) * OW,
                        sizeof(float) * (size_t)((h1 - c0) * OW));
            from = h1;
        }
        if (from < c1) dwp_conv_rows_into(j, xg, m0, band, R, c0, from, c1, ws);
        h0 = c0, h1 = c1;
        /* the pool over the band as an image of its own: its windows start
         * p->PT - (c0 - p0 * SH) rows before its first row */
        onr_spatial sp = {.nsp = 2,
                          .in = {1, c1 - c0, OW}, .out = {1, p1 - p0, p->OW},
                          .k = {1, p->KH, p->KW}, .s = {1, p->SH, p->SW}, .d = {1, 1, 1},
                          .pb = {0, p->PT + c0 - p0 * p->SH, p->PL}};
        sp.pe[1] = (p1 - p0 - 1) * p->SH + p->KH - (c1 - c0) - sp.pb[1];
        sp.pe[2] = (p->OW - 1) * p->SW + p->KW - OW - p->PL;
        onr_maxpool_planes_f32(&sp, g->mult, band, R * OW, yu + p0 * p->OW, p->OH * p->OW, tmp);
    }
}

void onr_dwconv_pool_f32(const onr_dwconv *g, const onr_dwpool *p, const float *x, const float *w,
                         const float *wl, const float *b, float *y, void *ws, int nthreads)
{
    pthread_once(&dw_once, dw_init);
    const int64_t M = g->C / g->cg * g->mult, units = g->N * (g->C / g->cg);
    if (units == 0 || p->OH == 0 || p->OW == 0 || g->mult == 0) return;
    onr_gconv_rows_fn gfn = dw_gc_fn(g); /* NULL: the portable rows */
    if (gfn && !wl) {
        onr_dwconv_prepare_weights(g, w, (float *)ws);
        wl = ws;
    }
    int nt = nthreads > 1 ? nthreads : 1;
    dwp_job j = {.g = g, .p = p, .x = x, .w = w, .wl = wl, .b = b, .y = y,
                 .ws0 = (float *)ws + dw_wl_floats(g), .gfn = gfn, .M = M, .chunks = 1,
                 .band = dwp_band(g, p)};
    /* fewer units than threads (the stem: one group): each unit's pooled
     * rows in a chunk a thread; a chunk computes again the conv rows its
     * first windows share with the chunk before (one row for 3x3 / 2).
     * ResNet's stem and pool alone at 2 threads, in one process, runs
     * alternating (Zen 5): chunks of a thread +0.9 % against the two
     * steps apart, two chunks a thread (for a thread done first to take
     * one of the other's) +4.6 %, four +6 %. */
    if (nt > 1 && units < (int64_t)nt) {
        j.chunks = ((int64_t)nt + units - 1) / units;
        if (j.chunks > p->OH) j.chunks = p->OH;
    }
    j.rows = (p->OH + j.chunks - 1) / j.chunks;
    const int64_t work = M * g->N * g->OH * g->OW * (g->cg * g->KH * g->KW + 1);
    onr_par_for(units * j.chunks, nt, work > ONR_PAR_MIN, dwp_item, &j);
}
