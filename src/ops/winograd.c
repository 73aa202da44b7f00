/*
 * winograd.c - Winograd F(4x4, 3x3) convolution (see winograd.h): the
 * weight transform, the choice rule, the blocking and the driver; the
 * portable build of the transforms (winograd-kern.h).
 */
#include "ops/winograd.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/ops.h"

#define WINO_SFX ref
#include "ops/winograd-kern.h"

/* ---- mode and ISA ------------------------------------------------------ */

static int g_env_mode = ONR_WINO_AUTO, g_mode = -1;
static onr_wino_in_fn g_in = onr_wino_in_ref;
static onr_wino_out_fn g_out = onr_wino_out_ref;
static onr_wino_gather_fn g_gather = onr_wino_gather_ref;
static onr_wino_store_fn g_store = onr_wino_store_ref;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void set_isa(const char *name)
{
    if (strcmp(name, "avx512") == 0) {
        g_in = onr_wino_in_avx512;
        g_out = onr_wino_out_avx512;
        g_gather = onr_wino_gather_avx512;
        g_store = onr_wino_store_avx512;
    } else if (strcmp(name, "avx2") == 0) {
        g_in = onr_wino_in_avx2;
        g_out = onr_wino_out_avx2;
        g_gather = onr_wino_gather_avx2;
        g_store = onr_wino_store_avx2;
    } else {
        g_in = onr_wino_in_ref;
        g_out = onr_wino_out_ref;
        g_gather = onr_wino_gather_ref;
        g_store = onr_wino_store_ref;
    }
}

static void wino_init(void)
{
    __builtin_cpu_init();
    const char *e = getenv("ONR_CONV_ALGO");
    if (e && strcmp(e, "im2col") == 0) g_env_mode = ONR_WINO_OFF;
    else if (e && strcmp(e, "winograd") == 0) g_env_mode = ONR_WINO_FORCE;
    set_isa(onr_cpu_supports("avx512") ? "avx512" : onr_cpu_supports("avx2") ? "avx2" : "ref");
}

int onr_wino_mode(void)
{
    pthread_once(&g_once, wino_init);
    return g_mode >= 0 ? g_mode : g_env_mode;
}

void onr_wino_force(int mode)
{
    pthread_once(&g_once, wino_init);
    g_mode = mode;
}

int onr_wino_force_isa(const char *name)
{
    pthread_once(&g_once, wino_init);
    if (!name) name = onr_cpu_supports("avx512") ? "avx512" : onr_cpu_supports("avx2") ? "avx2" : "ref";
    if (!onr_cpu_supports(name)) return -1;
    set_isa(name);
    return 0;
}

/* ---- weights ------------------------------------------------------------ */

int64_t onr_wino_ldu(int64_t Cg)
{
    /* the SGEMM copies an A whose rows are a multiple of 2 KiB apart */
    return Cg % 512 == 0 ? Cg + 16 : Cg;
}

size_t onr_wino_weights_floats(int64_t M, int64_t Cg)
{
    return (size_t)36 * (size_t)M * (size_t)onr_wino_ldu(Cg);
}

/* G applied to (a, b, c) in each of CB lanes, into o[0..5][lane]: row j of
 * G is (1, p, p^2) / prod_{l != j} (p - p_l) for the points p = 0, 1, -1,
 * 1/2, -2, then (0, 0, 1) for infinity (see winograd-kern.h). Lanes are
 * independent kernels, so the loops vectorise; the divisions by the
 * products are multiplications by their reciprocals (in double, an ulp of
 * double at most before the result is rounded to float). */
enum { WINO_CB = 16 };
static void wino_g3(const double *a, const double *b, const double *c, double (*o)[WINO_CB],
                    int ost, int n)
{
    const double r3 = 1.0 / 3, r15 = 1.0 / 15, r0 = 1.0 / 0.9375;
    for (int j = 0; j < n; j++) {
        double g0 = a[j], g1 = b[j], g2 = c[j];
        o[0][j] = g0;
        o[ost][j] = (g0 + g1 + g2) * r3;
        o[2 * ost][j] = -(g0 - g1 + g2) * r3;
        o[3 * ost][j] = -(g0 + g1 * 0.5 + g2 * 0.25) * r0;
        o[4 * ost][j] = (g0 - 2 * g1 + 4 * g2) * r15;
        o[5 * ost][j] = g2;
    }
}

/* U = G g G^T, in double, for n <= WINO_CB 3x3 kernels g[j] (row-major,
 * 9 floats apart): u[6 i + p][j]. */
static void wino_weight_tiles(const float *g, int n, double (*u)[WINO_CB])
{
    double d[9][WINO_CB], t[18][WINO_CB];
    for (int j = 0; j < n; j++)
        for (int i = 0; i < 9; i++) d[i][j] = g[9 * j + i];
    for (int k = 0; k < 3; k++) wino_g3(d[k], d[3 + k], d[6 + k], t + k, 3, n); /* G g: 6 x 3 */
    for (int i = 0; i < 6; i++) wino_g3(t[3 * i], t[3 * i + 1], t[3 * i + 2], u + 6 * i, 1, n);
}

void onr_wino_transform_weights(const float *w, int64_t M, int64_t Cg, int64_t G, float *u, int nt)
{
    /* WINO_CB input channels at a time, so each of the 36 rows (a multiple
     * of 4 KiB apart when the channel counts are round) gets a whole cache
     * line per visit, not one float; output channels split over nt
     * threads (each value computed the same way on any) */
    int64_t Mg = M / G, ldu = onr_wino_ldu(Cg);
    #pragma omp parallel for num_threads(nt > 1 ? nt : 1) if (nt > 1 && M * Cg >= 4096) schedule(static)
    for (int64_t m = 0; m < M; m++) {
        double t[36][WINO_CB];
        int64_t grp = m / Mg, mm = m % Mg;
        float *ug = u + (size_t)grp * 36 * (size_t)(Mg * ldu) + (size_t)mm * (size_t)ldu;
        for (int64_t c0 = 0; c0 < Cg; c0 += WINO_CB) {
            int nc = (int)(Cg - c0 < WINO_CB ? Cg - c0 : WINO_CB);
            wino_weight_tiles(w + (m * Cg + c0) * 9, nc, t);
            for (int xi = 0; xi < 36; xi++) {
                float *row = ug + (size_t)xi * (size_t)(Mg * ldu) + (size_t)c0;
                for (int j = 0; j < nc; j++) row[j] = (float)t[xi][j];
            }
        }
        for (int xi = 0; xi < 36 && ldu > Cg; xi++)
            memset(ug + (size_t)xi * (size_t)(Mg * ldu) + (size_t)Cg, 0,
                   sizeof(float) * (size_t)(ldu - Cg));
    }
}

/* ---- choice and blocking ------------------------------------------------ */

/* Measured on Zen 5 (ResNet layers, N = 1, 8..256 channels, one thread):
 * Winograd takes 0.4-0.8x im2col's time from 10x10 outputs up, and
 * 1.2x on 7x7, where a 2x2-tile image leaves the GEMMs a handful of
 * columns (and its 8x8 of tiles wastes a third). So: at least three tiles
 * each way. And at most 4096 channels in and out of a group, which bounds
 * the scratch (V and Mx of a block of at least 2*NR tiles: 38 MB then). */
int onr_wino_worth(const onr_wino_geom *g)
{
    return g->OH > 8 && g->OW > 8 && g->Cg + g->Mg <= 4096;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The distance between two of the 36 matrices of V (or Mx): a multiple
 * of 4 KiB is padded by a cache line. The input transform writes a run
 * to each of 36 of them in turn, and the output transform reads six:
 * all in one set of L1 (and of a few of L2) when the matrices are a
 * multiple of 4 KiB apart (64 and 128 channels of 64 tiles: 16 and 32
 * KiB). In one process, runs alternating, 1 / 2 threads, Zen 5:
 * ResNet-18 -1.9..-2.1 / -1.7..-1.9 %, ResNet-50 -0.6..-1.1 / -0.8..-2.0 %
 * (two runs of 4 session pairs). */
static size_t wino_mat_stride(int64_t floats)
{
    return (size_t)(floats % 1024 == 0 ? floats + 16 : floats);
}

void onr_wino_plan(onr_wino_geom *g, int nthreads)
{
    onr_sgemm_blocking b;
    onr_sgemm_get_blocking(&b);
    g->nthreads = nthreads > 0 ? nthreads : 1;
    g->TY = (g->OH + 3) / 4;
    g->TX = (g->OW + 3) / 4;
    /* tiles per block: V and Mx of a block in about the L2, at least four
     * microkernel widths of columns where V and Mx of those stay within
     * four L2s, and two at least (so the GEMMs are not all edge); each
     * thread's share of the tiles in equal blocks. (At least two made
     * ResNet-18's 56x56 layers on 2 threads blocks of 64 and 34 tiles per
     * thread, the second one 32 columns and 2 past them, and U read again
     * for each: with four, one block of 98 took a 64-channel layer alone
     * 0.36 -> 0.33 ms; in one process, runs alternating, Zen 5: ResNet-18
     * -1.5..-1.9 % at 2 threads, 0..-0.7 % at 1; ResNet-50 and UNet within
     * noise.) */
    int64_t nr = (int64_t)b.nr, per_tile = 36 * (g->Cg + g->Mg) * (int64_t)sizeof(float);
    int64_t target = (int64_t)b.l2_bytes / per_tile / nr * nr;
    if (target < 4 * nr) { /* (V and Mx in at most four L2s: the scratch bound below) */
        int64_t most = 4 * (int64_t)b.l2_bytes / per_tile / nr * nr;
        target = most < 4 * nr ? most : 4 * nr;
        if (target < 2 * nr) target = 2 * nr;
    }
    if (target > 16 * nr) target = 16 * nr;
    int64_t total = g->N * g->TY * g->TX, share = (total + g->nthreads - 1) / g->nthreads;
    /* a thread's share under two kernel widths would make its products
     * mostly edge (14x14 outputs: 16 tiles, 8 each on 2 threads, ran at a
     * quarter of the 1-thread speed): all threads then share each block */
    g->shared = g->nthreads > 1 && share < 2 * nr;
    /* few tiles (a 28x28 image: 49): one block of all of them on any
     * number of threads (per-thread mode on one, the shared one's single
     * block on more), so its products may leave the columns past a
     * multiple of 16 to the SGEMM tail (dot products: fixed_shape) and
     * still compute every output the same way at any thread count. 49
     * columns took a 32-wide tile and a 17-wide one that costs as much; 36
     * products 128 x 49 x 128 alone, one thread (Zen 5): -15 %. Only
     * where the kernel has a tail for the width: fixed_shape also cuts K
     * in two blocks for products of at most half as many rows as K, which
     * cost a 512 -> 256 layer on 14x14 (16 tiles, no tail) 8-10 %. */
    g->one_block = total <= 2 * nr && total <= target && onr_sgemm_tail_cols((size_t)total) > 0;
    if (g->shared) {
        g->SX = min64(g->TX, target);
        g->R = min64(target / g->SX, g->N * g->TY);
        if (g->R < 1) g->R = 1;
        share = g->R * g->SX;
    }
    /* blocks of whole vectors of columns (half a kernel width): 196 tiles
     * in four even blocks of 49 took 4 vectors each (16 in all), blocks
     * of 64 take 13 with the last one's 4 tiles; target is a multiple */
    int64_t nb = (share + target - 1) / target, vec = nr / 2 > 1 ? nr / 2 : 1;
    g->tblk = ((share + nb - 1) / nb + vec - 1) / vec * vec;
    if (g->tblk > share) g->tblk = share;
    if (g->tblk < 1) g->tblk = 1;
    g->ldt = (g->tblk + 15) / 16 * 16;
    if (g->ldt % 256 == 0) g->ldt += 16;
    g->ldu = onr_wino_ldu(g->Cg);
    /* gathered input + its B^T rows; one thread's to the next's in shared mode */
    g->tmp_floats = onr_thread_stride(sizeof(float) * (size_t)(72 * g->tblk)) / sizeof(float);
    size_t used = 0, al = 64;
#define WINO_CARVE(off, bytes)                        \
    do {                                              \
        (off) = used;                                 \
        used += ((size_t)(bytes) + al - 1) / al * al; \
    } while (0)
    /* per-thread mode: one set per thread, every phase of a block on the
     * thread that owns it, its data in that core's caches; shared mode:
     * one V, Mx and workspace, a transform buffer per thread */
    g->vs = wino_mat_stride(g->Cg * g->ldt);
    g->ms = wino_mat_stride(g->Mg * g->ldt);
    WINO_CARVE(g->off_v, sizeof(float) * 36 * g->vs);
    WINO_CARVE(g->off_m, sizeof(float) * 36 * g->ms);
    WINO_CARVE(g->off_ws, onr_sgemm_batch_workspace_size((size_t)g->Mg, (size_t)g->tblk,
                                                         (size_t)g->Cg, 36, g->shared ? g->nthreads : 1));
    WINO_CARVE(g->off_tmp, sizeof(float) * g->tmp_floats * (size_t)(g->shared ? g->nthreads : 1));
#undef WINO_CARVE
    g->per_thread = g->shared ? 0 : onr_thread_stride(used);
    g->scratch = g->shared ? used : g->per_thread * (size_t)g->nthreads;
}

/* ---- the driver --------------------------------------------------------- */

static atomic_size_t g_runs;

size_t onr_wino_run_count(void) { return atomic_load_explicit(&g_runs, memory_order_relaxed); }

static void wino_add(float *y, const float *z, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += z[i];
}

/* Output row yr (len floats, at ro in Y) from the transform's src, with
 * the epilogue: a clamp (Relu, Clip) and the residual in the store, other
 * activations after it. */
static void wino_store_row(const onr_wino_epi *e, float *y, size_t ro, const float *src,
                           int64_t len)
{
    float *yr = y + ro;
    if (!e) {
        memcpy(yr, src, sizeof(float) * (size_t)len);
        return;
    }
    const float *zr = e->z ? e->z + ro : NULL;
    const float *zb = zr && !e->z_after ? zr : NULL, *za = zr && e->z_after ? zr : NULL;
    if (e->clamp || !e->act) {
        g_store(yr, src, zb, za, len, e->clamp ? e->lo : -INFINITY, e->clamp ? e->hi : INFINITY);
        return;
    }
    g_store(yr, src, zb, NULL, len, -INFINITY, INFINITY);
    e->act(e->act_ctx, yr, len);
    if (za) wino_add(yr, za, len);
}

/* The windows of tiles x0 .. x0+nx-1 of tile row (n, ty) of one channel:
 * dst[(i*6 + p)*ld + t] = the plane at row 4ty - pt + i, column
 * 4(x0 + t) - pl + p, 0 in the padding. */
static void wino_gather(const onr_wino_geom *g, onr_wino_gather_fn fg, const float *plane,
                        int64_t ty, int64_t x0, int64_t nx, float *dst, int64_t ld)
{
    for (int64_t i = 0; i < 6; i++) {
        int64_t iy = 4 * ty - g->pt + i;
        const float *row = iy >= 0 && iy < g->IH ? plane + iy * g->IW : NULL;
        fg(row, g->IW, 4 * x0 - g->pl, nx, dst + i * 6 * ld, ld);
    }
}

/* Prefetch (into L1) the lines wino_gather reads of the windows of tiles
 * x0 .. x0+nx-1 of tile row ty in plane: the next channel's, while this
 * one's are gathered. Each is a few lines of six rows a plane apart, too
 * scattered for the hardware to follow on large planes (UNet at 256x256:
 * -3.5 to -6 % at 1 and 2 threads, alternating runs in one process on Zen
 * 5; ResNet-50 within +-0.5 %, ResNet-18 0 / -1.8 %). */
static void wino_prefetch(const onr_wino_geom *g, const float *plane, int64_t ty, int64_t x0,
                          int64_t nx)
{
    int64_t c0 = 4 * x0 - g->pl, c1 = c0 + 4 * nx + 2;
    if (c0 < 0) c0 = 0;
    if (c1 > g->IW) c1 = g->IW;
    if (c0 >= c1) return;
    for (int64_t i = 0; i < 6; i++) {
        int64_t iy = 4 * ty - g->pt + i;
        if (iy < 0 || iy >= g->IH) continue;
        const char *a = (const char *)(plane + iy * g->IW + c0), *e = (const char *)(plane + iy * g->IW + c1);
        for (; a < e; a += 64) __builtin_prefetch(a, 0, 3);
        __builtin_prefetch(e - 1, 0, 3); /* a run that ends in another line */
    }
}

/* The tiles [t0, t0 + T) of group grp (T <= tblk) on one thread: gather
 * and transform the input, the 36 products, transform the output and
 * store it with the epilogue. The tiles run in segments, one per tile row
 * they touch. */
static void wino_block(const onr_wino_geom *g, const float *x, const float *ug, int64_t grp,
                       const onr_wino_epi *e, float *y, char *mine, int64_t t0, int64_t T)
{
    float *V = (float *)(mine + g->off_v), *Mx = (float *)(mine + g->off_m);
    float *tmp = (float *)(mine + g->off_tmp);
    void *ws = mine + g->off_ws;
    const int64_t IN = g->IH * g->IW, OUT = g->OH * g->OW;
    const size_t vs = g->vs, ms = g->ms;
    for (int64_t c = 0; c < g->Cg; c++) {
        for (int64_t i = 0; i < T;) { /* segment: tiles i.. of one tile row */
            int64_t l = t0 + i, r = l / g->TX, tx = l % g->TX, nx = min64(g->TX - tx, T - i);
            int64_t n = r / g->TY, ty = r % g->TY;
            const float *plane = x + (n * g->C + grp * g->Cg + c) * IN;
            if (c + 1 < g->Cg) wino_prefetch(g, plane + IN, ty, tx, nx);
            wino_gather(g, g_gather, plane, ty, tx, nx, tmp + i, T);
            i += nx;
        }
        g_in(tmp, T, V + c * g->ldt, vs, tmp + 36 * T);
    }
    const onr_gemm_epilogue fixed = {.fixed_shape = 1};
    onr_sgemm_batch(0, 0, (size_t)g->Mg, (size_t)T, (size_t)g->Cg, 1.f, ug, (size_t)g->ldu,
                    (size_t)(g->Mg * g->ldu), V, (size_t)g->ldt, vs, 0.f, Mx, (size_t)g->ldt, ms,
                    36, g->one_block ? &fixed : NULL, ws, 1);
    for (int64_t m = 0; m < g->Mg; m++) {
        int64_t mg = grp * g->Mg + m;
        g_out(Mx + m * g->ldt, ms, T, e && e->bias ? e->bias[mg] : 0.f, tmp, tmp + 16 * T);
        for (int64_t i = 0; i < T;) {
            int64_t l = t0 + i, r = l / g->TX, tx = l % g->TX, nx = min64(g->TX - tx, T - i);
            int64_t n = r / g->TY, oy0 = 4 * (r % g->TY), ox0 = 4 * tx, len = min64(4 * nx, g->OW - ox0);
            size_t off = (size_t)((n * g->M + mg) * OUT);
            for (int64_t a = 0; a < 4 && oy0 + a < g->OH; a++)
                wino_store_row(e, y, off + (size_t)((oy0 + a) * g->OW + ox0), tmp + a * 4 * T + 4 * i,
                               len);
            i += nx;
        }
    }
}

/* One block of the shared scheme, for onr_par_for: tiles (rr, t) of rows
 * r0 .. r0 + nr, columns x0 .. x0 + nx, of group grp. */
typedef struct wino_shared_job {
    const onr_wino_geom *g;
    const float *x;
    const onr_wino_epi *e;
    float *y, *V, *Mx, *tmp;
    int64_t grp, r0, nr, x0, nx, T;
    size_t vs, ms;
} wino_shared_job;

/* The input transform of channel c. */
static void wino_shared_in(void *ctx, int64_t c)
{
    const wino_shared_job *j = ctx;
    const onr_wino_geom *g = j->g;
    const int64_t IN = g->IH * g->IW, T = j->T;
    float *t0 = j->tmp + (size_t)omp_get_thread_num() * g->tmp_floats;
    for (int64_t rr = 0; rr < j->nr; rr++) {
        int64_t r = j->r0 + rr, n = r / g->TY, ty = r % g->TY;
        const float *plane = j->x + (n * g->C + j->grp * g->Cg + c) * IN;
        wino_gather(g, g_gather, plane, ty, j->x0, j->nx, t0 + rr * j->nx, T);
    }
    g_in(t0, T, j->V + c * g->ldt, j->vs, t0 + 36 * T);
}

/* The output transform and epilogue of output channel m of the group. */
static void wino_shared_out(void *ctx, int64_t m)
{
    const wino_shared_job *j = ctx;
    const onr_wino_geom *g = j->g;
    const onr_wino_epi *e = j->e;
    const int64_t OUT = g->OH * g->OW, T = j->T, nx = j->nx;
    float *t0 = j->tmp + (size_t)omp_get_thread_num() * g->tmp_floats;
    int64_t mg = j->grp * g->Mg + m;
    g_out(j->Mx + m * g->ldt, j->ms, T, e && e->bias ? e->bias[mg] : 0.f, t0, t0 + 16 * T);
    int64_t ox0 = 4 * j->x0, len = min64(4 * nx, g->OW - ox0);
    for (int64_t rr = 0; rr < j->nr; rr++) {
        int64_t r = j->r0 + rr, n = r / g->TY, oy0 = 4 * (r % g->TY);
        size_t off = (size_t)((n * g->M + mg) * OUT);
        for (int64_t a = 0; a < 4 && oy0 + a < g->OH; a++)
            wino_store_row(e, j->y, off + (size_t)((oy0 + a) * g->OW + ox0),
                           t0 + a * 4 * T + 4 * rr * nx, len);
    }
}

/* Few tiles (ONR_WINO_SHARED): each block on all threads together, phase
 * by phase: the input transform split over channels, the 36 products over
 * the threads (onr_sgemm_batch), the output transform over channels. */
static void wino_run_shared(const onr_wino_geom *g, const float *x, const float *u,
                            const onr_wino_epi *e, float *y, void *scratch, int nt)
{
    char *base = scratch;
    void *ws = base + g->off_ws;
    const int64_t rows = g->N * g->TY;
    const onr_gemm_epilogue fixed = {.fixed_shape = 1};
    wino_shared_job j = {.g = g, .x = x, .e = e, .y = y, .V = (float *)(base + g->off_v),
                         .Mx = (float *)(base + g->off_m), .tmp = (float *)(base + g->off_tmp),
                         .vs = g->vs, .ms = g->ms};
    for (j.grp = 0; j.grp < g->G; j.grp++) {
        const float *ug = u + (size_t)j.grp * 36 * (size_t)(g->Mg * g->ldu);
        for (j.r0 = 0; j.r0 < rows; j.r0 += g->R) {
            j.nr = min64(g->R, rows - j.r0);
            for (j.x0 = 0; j.x0 < g->TX; j.x0 += g->SX) {
                /* tile (rr, t) of the block is tile rr*nx + t of the GEMMs */
                j.nx = min64(g->SX, g->TX - j.x0);
                j.T = j.nr * j.nx;
                const int par = 36 * j.T * (g->Cg + g->Mg) > ONR_PAR_MIN;
                onr_par_for(g->Cg, nt, par, wino_shared_in, &j);
                onr_sgemm_batch(0, 0, (size_t)g->Mg, (size_t)j.T, (size_t)g->Cg, 1.f, ug,
                                (size_t)g->ldu, (size_t)(g->Mg * g->ldu), j.V, (size_t)g->ldt,
                                j.vs, 0.f, j.Mx, (size_t)g->ldt, j.ms, 36,
                                g->one_block ? &fixed : NULL, ws, nt);
                onr_par_for(g->Mg, nt, par, wino_shared_out, &j);
            }
        }
    }
}

/* The per-thread scheme's part `part` of the tiles, every phase of its
 * blocks, in the scratch of the thread that runs it. */
typedef struct wino_part_job {
    const onr_wino_geom *g;
    const float *x, *u;
    const onr_wino_epi *e;
    float *y;
    void *scratch;
    int64_t share, total;
} wino_part_job;

static void wino_part(void *ctx, int64_t part)
{
    const wino_part_job *j = ctx;
    const onr_wino_geom *g = j->g;
    char *mine = (char *)j->scratch + (size_t)omp_get_thread_num() * g->per_thread;
    int64_t p0 = part * j->share, p1 = min64(p0 + j->share, j->total);
    for (int64_t grp = 0; grp < g->G; grp++) {
        const float *ug = j->u + (size_t)grp * 36 * (size_t)(g->Mg * g->ldu);
        for (int64_t t0 = p0; t0 < p1; t0 += g->tblk)
            wino_block(g, j->x, ug, grp, j->e, j->y, mine, t0, min64(g->tblk, p1 - t0));
    }
}

void onr_wino_run(const onr_wino_geom *g, const float *x, const float *u,
                  const onr_wino_epi *e, float *y, void *scratch, int nt)
{
    pthread_once(&g_once, wino_init);
    atomic_fetch_add_explicit(&g_runs, 1, memory_order_relaxed);
    if (nt > g->nthreads) nt = g->nthreads;
    if (nt < 1) nt = 1;
    if (g->shared) {
        wino_run_shared(g, x, u, e, y, scratch, nt);
        return;
    }
    const int64_t total = g->N * g->TY * g->TX;
    const int64_t work = 36 * total * (g->Cg + g->Mg) * g->G;
    /* each thread its share of the tiles (as planned for g->nthreads, so
     * the blocks, and the results, never depend on nt), every phase of a
     * block on the thread that owns it: one fork and join per convolution */
    const int64_t parts = g->nthreads, share = (total + parts - 1) / parts;
    wino_part_job j = {.g = g, .x = x, .u = u, .e = e, .y = y, .scratch = scratch,
                       .share = share, .total = total};
    onr_par_for(parts, nt, work > ONR_PAR_MIN, wino_part, &j);
}
