/*
 * gemm.c - the blocked, packed, multithreaded SGEMM driver: kernel choice,
 * cache blocking, packing, the loop nest around the microkernels
 * (sgemm-ukernel.h), threading, batching and prepacked weights.
 *
 * Loop nest (BLIS order, in row-major terms; per thread, on its own
 * rectangle of C):
 *
 *   for jc in N step NC            B block kc x nc: stays in L2
 *     for pc in K step KC          (K blocks run in order: never split)
 *       B block <- packed weights | B read in place | packed into workspace
 *       for ic in M step MC
 *         A block mc x kc <- A read in place | copied (rows of kc floats)
 *         for ir in mc step MR     A micro-panel: stays in L1
 *           for jr in nc step NR   B micro-panels stream from L2
 *             microkernel: C tile (+= on later K blocks; epilogue on the last)
 *
 * When A has to be copied (transposed, or a row stride that aliases in L1)
 * and the rectangle's rows fit one A block, the pc loop goes outside the jc
 * loop instead, so each K block of A is copied once, not once per N block.
 * A few rows left after the last full row tile are shared with it (two
 * tiles of about (MR + rest) / 2 rows): a thin tile cannot hide its loads.
 *
 * Blocking: KC = L1d / 2 / (MR*4) (A micro-panel in half of L1, rounded to
 * 16), NC = L2 / 2 / (KC*4) (B block in half of L2), MC = L2 / 4 / (KC*4);
 * a product's K is cut into ceil(K/KC) equal blocks. Cache sizes come from
 * sysconf, then /sys, then 32 KiB / 512 KiB (and no L3 assumed).
 *
 * Threads: C is cut into tm x tn rectangles, rows evenly and columns on tile
 * boundaries (tm*tn = the thread count; shape chosen for the least work on
 * the busiest thread, then for more row parts when B is not copied and fits
 * the last-level cache, else for the least A + B read per thread); K is
 * never split and block sizes never depend on the thread count, so every
 * element is computed by the same sequence of operations whatever the
 * thread count: results are bit-identical.
 */
#include "gemm/gemm.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemm/sgemm-ukernel.h"

/* ---- kernel choice and blocking ---------------------------------------- */

typedef struct gemm_plan {
    const onr_sgemm_config *cfg;
    size_t mc, kc, nc;
} gemm_plan;

enum { CFG_REF, CFG_AVX2, CFG_AVX512, CFG_COUNT };

static const onr_sgemm_config *const g_configs[CFG_COUNT] = {
    &onr_sgemm_config_ref, &onr_sgemm_config_avx2, &onr_sgemm_config_avx512};
static int g_supported[CFG_COUNT];
static gemm_plan g_plans[CFG_COUNT];
static int g_auto, g_active;
static size_t g_l1, g_l2, g_l3;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Below this many multiply-adds a product runs on one thread. */
#define SERIAL_FMAS ((size_t)1 << 18)
/* Batched products at most this big run one per thread. */
#define BATCH_SPLIT_FMAS ((size_t)1 << 23)

static size_t read_sys_cache(int level)
{
    char path[96], buf[64];
    for (int idx = 0; idx < 8; idx++) {
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", idx);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int lv = 0;
        if (fscanf(f, "%d", &lv) != 1) lv = 0;
        fclose(f);
        if (lv != level) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", idx);
        f = fopen(path, "r");
        if (!f) continue;
        int is_instr = fgets(buf, sizeof buf, f) && strncmp(buf, "Instruction", 11) == 0;
        fclose(f);
        if (is_instr) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
        f = fopen(path, "r");
        if (!f) continue;
        unsigned long v = 0;
        char unit = 0;
        int got = fscanf(f, "%lu%c", &v, &unit);
        fclose(f);
        if (got >= 1) return unit == 'M' ? v << 20 : (unit == 'K' ? v << 10 : v);
    }
    return 0;
}

static size_t clampz(size_t v, size_t lo, size_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

static void detect_caches(void)
{
    long l1 = 0, l2 = 0, l3 = 0;
#ifdef _SC_LEVEL1_DCACHE_SIZE
    l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    g_l1 = l1 > 0 ? (size_t)l1 : read_sys_cache(1);
    g_l2 = l2 > 0 ? (size_t)l2 : read_sys_cache(2);
    g_l3 = l3 > 0 ? (size_t)l3 : read_sys_cache(3);
    if (g_l1 == 0) g_l1 = 32 << 10;
    if (g_l2 == 0) g_l2 = 512 << 10;
    g_l1 = clampz(g_l1, 16 << 10, 256 << 10);
    g_l2 = clampz(g_l2, 128 << 10, 64 << 20);
    g_l3 = g_l3 > g_l2 ? g_l3 : g_l2; /* none: only what fits L2 counts as near */
}

static gemm_plan make_plan(const onr_sgemm_config *cfg)
{
    gemm_plan p = {cfg, 0, 0, 0};
    p.kc = clampz(g_l1 / 2 / (cfg->mr * sizeof(float)) / 16 * 16, 64, 1024);
    p.nc = clampz(g_l2 / 2 / (p.kc * sizeof(float)) / cfg->nr * cfg->nr, cfg->nr, 8192);
    p.mc = clampz(g_l2 / 4 / (p.kc * sizeof(float)) / cfg->mr * cfg->mr, cfg->mr, 1024);
    return p;
}

static int find_isa(const char *name)
{
    for (int i = 0; i < CFG_COUNT; i++)
        if (strcmp(name, g_configs[i]->isa) == 0) return i;
    return -1;
}

static void gemm_init(void)
{
    detect_caches();
    __builtin_cpu_init();
    g_supported[CFG_REF] = 1;
    g_supported[CFG_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    g_supported[CFG_AVX512] = g_supported[CFG_AVX2] && __builtin_cpu_supports("avx512f") &&
                              __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512dq") &&
                              __builtin_cpu_supports("avx512vl");
    for (int i = 0; i < CFG_COUNT; i++) g_plans[i] = make_plan(g_configs[i]);
    g_auto = g_supported[CFG_AVX512] ? CFG_AVX512 : (g_supported[CFG_AVX2] ? CFG_AVX2 : CFG_REF);
    g_active = g_auto;
    const char *env = getenv("ONR_GEMM_KERNEL");
    if (env && *env) {
        int i = find_isa(env);
        if (i >= 0 && g_supported[i]) g_active = i;
    }
    g_auto = g_active; /* force_kernel(NULL) comes back to the start-up choice */
}

static const gemm_plan *active_plan(void)
{
    pthread_once(&g_once, gemm_init);
    return &g_plans[g_active];
}

const char *onr_sgemm_kernel_name(void) { return active_plan()->cfg->name; }

int onr_sgemm_force_kernel(const char *name)
{
    pthread_once(&g_once, gemm_init);
    if (name == NULL) {
        g_active = g_auto;
        return 0;
    }
    int i = find_isa(name);
    if (i < 0 || !g_supported[i]) return -1;
    g_active = i;
    return 0;
}

void onr_sgemm_get_blocking(onr_sgemm_blocking *out)
{
    const gemm_plan *p = active_plan();
    out->mr = p->cfg->mr;
    out->nr = p->cfg->nr;
    out->mc = p->mc;
    out->kc = p->kc;
    out->nc = p->nc;
    out->l1d_bytes = g_l1;
    out->l2_bytes = g_l2;
}

/* ---- sizes ------------------------------------------------------------- */

static size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }
static size_t min_z(size_t a, size_t b) { return a < b ? a : b; }
static size_t align64(size_t bytes) { return round_up(bytes, 64); }

/* The K block for a product of depth k with m rows: ceil(k/KC) equal
 * blocks. With fewer rows than a tile the A rows are short, so K is cut
 * only where m rows of it would overflow half of L1: the weights then
 * stream as one sequence (GEMV). Depends on m, k and the kernel only,
 * never on the thread count. */
static size_t k_block(const gemm_plan *p, size_t m, size_t k)
{
    size_t kc = p->kc;
    if (m < p->cfg->mr) {
        size_t rows = m ? m : 1;
        kc = clampz(g_l1 / 2 / (rows * sizeof(float)) / 16 * 16, p->kc, 8192);
    }
    size_t nk = (k + kc - 1) / kc;
    if (nk <= 1) return k;
    return min_z(kc, round_up((k + nk - 1) / nk, 8));
}

static size_t a_copy_stride(size_t kc);
static size_t a_buf_bytes(const gemm_plan *p, size_t m, size_t kc)
{
    return align64(min_z(p->mc, round_up(m, p->cfg->mr)) * a_copy_stride(kc) * sizeof(float));
}

static size_t b_buf_bytes(const gemm_plan *p, size_t n, size_t kc)
{
    return align64(min_z(p->nc, round_up(n, p->cfg->nr)) * kc * sizeof(float));
}

static size_t per_thread_bytes(const gemm_plan *p, size_t m, size_t n, size_t k)
{
    size_t kc = k_block(p, m, k);
    return a_buf_bytes(p, m, kc) + b_buf_bytes(p, n, kc);
}

size_t onr_sgemm_workspace_size(size_t m, size_t n, size_t k, int nthreads)
{
    pthread_once(&g_once, gemm_init);
    if (m == 0 || n == 0 || k == 0) return 0;
    size_t t = nthreads > 1 ? (size_t)nthreads : 1, best = 0;
    for (int i = 0; i < CFG_COUNT; i++) {
        if (!g_supported[i]) continue;
        size_t b = per_thread_bytes(&g_plans[i], m, n, k);
        if (b > best) best = b;
    }
    return t * best + 64;
}

size_t onr_sgemm_batch_workspace_size(size_t m, size_t n, size_t k, size_t batch, int nthreads)
{
    (void)batch; /* batched products reuse the per-thread buffers */
    return onr_sgemm_workspace_size(m, n, k, nthreads);
}

/* ---- packing ----------------------------------------------------------- */

/* Row stride of a copied A block: padded so rows do not share L1 sets. */
static size_t a_copy_stride(size_t kc)
{
    size_t as = round_up(kc, 16);
    return as % 256 == 0 ? as + 16 : as;
}

/* Rows [i0, i0+mr) x columns [p0, p0+kc) of op(A) -> dst[i*as + k]. */
static void pack_a(int trans_a, const float *a, size_t lda, size_t i0, size_t mr, size_t p0,
                   size_t kc, float *dst, size_t as)
{
    if (!trans_a) {
        for (size_t i = 0; i < mr; i++)
            memcpy(dst + i * as, a + (i0 + i) * lda + p0, kc * sizeof(float));
        return;
    }
    for (size_t k = 0; k < kc; k++) {
        const float *src = a + (p0 + k) * lda + i0;
        for (size_t i = 0; i < mr; i++) dst[i * as + k] = src[i];
    }
}

/* B rows [p0, p0+kc) x columns [j0, j0+nr) of op(B) -> dst[k*NR + j],
 * columns nr..NR-1 zero. */
static void pack_b_panel(int trans_b, const float *b, size_t ldb, size_t p0, size_t kc,
                         size_t j0, size_t nr, size_t NR, float *dst)
{
    if (!trans_b) {
        for (size_t k = 0; k < kc; k++) {
            memcpy(dst + k * NR, b + (p0 + k) * ldb + j0, nr * sizeof(float));
            for (size_t j = nr; j < NR; j++) dst[k * NR + j] = 0.f;
        }
        return;
    }
    for (size_t k = 0; k < kc; k++)
        for (size_t j = nr; j < NR; j++) dst[k * NR + j] = 0.f;
    for (size_t j = 0; j < nr; j++) {
        const float *src = b + (j0 + j) * ldb + p0;
        for (size_t k = 0; k < kc; k++) dst[k * NR + j] = src[k];
    }
}

/* Prepacked B: a header, then panels of NR columns x K rows (k-major). */
#define PACK_MAGIC 0x42524e4fu /* "ONRB" */
typedef struct pack_header {
    uint32_t magic, nr;
    uint64_t k, n;
    char pad[40];
} pack_header;
_Static_assert(sizeof(pack_header) == 64, "packed panels stay 64-byte aligned");

size_t onr_sgemm_pack_b_size(size_t k, size_t n)
{
    size_t nr = active_plan()->cfg->nr;
    return sizeof(pack_header) + round_up(n, nr) * k * sizeof(float);
}

static atomic_size_t g_pack_count;

size_t onr_sgemm_pack_count(void)
{
    return atomic_load_explicit(&g_pack_count, memory_order_relaxed);
}

void onr_sgemm_pack_b(int trans_b, size_t k, size_t n, const float *b, size_t ldb, void *packed)
{
    atomic_fetch_add_explicit(&g_pack_count, 1, memory_order_relaxed);
    size_t nr = active_plan()->cfg->nr;
    pack_header h;
    memset(&h, 0, sizeof h);
    h.magic = PACK_MAGIC;
    h.nr = (uint32_t)nr;
    h.k = k;
    h.n = n;
    memcpy(packed, &h, sizeof h);
    float *dst = (float *)((char *)packed + sizeof h);
    for (size_t j = 0; j < n; j += nr)
        pack_b_panel(trans_b, b, ldb, 0, k, j, min_z(nr, n - j), nr, dst + j * k);
}

/* ---- the loop nest ----------------------------------------------------- */

enum b_source { B_PACK, B_DIRECT, B_PREPACKED };

typedef struct gemm_job {
    const gemm_plan *plan;
    size_t m, n, k, kc;
    float alpha, beta;
    int trans_a, trans_b;
    const float *a, *b;
    size_t lda, ldb;
    int a_direct;   /* the kernels read A in place (row-major, no aliasing) */
    enum b_source bsrc;
    size_t panel_w; /* B_PREPACKED: columns per stored panel */
    float *c;
    size_t ldc;
    const onr_gemm_epilogue *ep;
} gemm_job;

static void tile_epilogue(const onr_gemm_epilogue *ep, size_t i, size_t j, onr_sgemm_tile_epi *t)
{
    t->bias_col = ep->bias_col ? ep->bias_col + j : NULL;
    t->bias_row = ep->bias_row ? ep->bias_row + i : NULL;
    t->residual = ep->residual ? ep->residual + i * ep->ldr + j : NULL;
    t->ldr = ep->ldr;
    t->act = ep->act;
    t->clip_min = ep->clip_min;
    t->clip_max = ep->clip_max;
    t->residual_before_act = ep->residual_before_act;
}

/* C = beta*C then the epilogue: the K == 0 product. */
static void scale_only(const gemm_job *J)
{
    for (size_t i = 0; i < J->m; i++) {
        float *cr = J->c + i * J->ldc;
        for (size_t j = 0; j < J->n; j++) {
            float v = J->beta == 0.f ? 0.f : J->beta * cr[j];
            if (J->ep) {
                onr_sgemm_tile_epi t;
                tile_epilogue(J->ep, i, j, &t);
                v = onr_sgemm_epi_scalar(&t, v, 0, 0);
            }
            cr[j] = v;
        }
    }
}

/* One MR x NR tile (fewer at the edges): rows i.., columns j.. of C. */
static inline void run_tile(const gemm_job *J, size_t i, size_t mr, size_t j, size_t jr,
                            size_t nr, size_t pc, size_t kc, const float *ap, size_t as,
                            const float *bbuf, float beta, int last)
{
    const float *bp;
    size_t ldbk;
    if (J->bsrc == B_PACK) {
        bp = bbuf + jr * kc;
        ldbk = J->plan->cfg->nr;
    } else if (J->bsrc == B_DIRECT) {
        bp = J->b + pc * J->ldb + j;
        ldbk = J->ldb;
    } else {
        size_t w = J->panel_w;
        bp = J->b + (j / w) * J->k * w + pc * w + j % w;
        ldbk = w;
    }
    onr_sgemm_tile_epi te, *tep = NULL;
    if (last && J->ep) {
        tile_epilogue(J->ep, i, j, &te);
        tep = &te;
    }
    J->plan->cfg->ukernel(mr, nr, kc, ap, as, bp, ldbk, J->c + i * J->ldc + j, J->ldc, J->alpha,
                          beta, tep);
}

/* One kc x nc block of B against rows [m0, m1) of A: the ic, ir, jr loops.
 * apacked != NULL: those rows of A are already copied there. */
static void run_block(const gemm_job *J, size_t m0, size_t m1, size_t jc, size_t nc, size_t pc,
                      size_t kc, const float *apacked, float *abuf, const float *bbuf)
{
    const gemm_plan *P = J->plan;
    const size_t MR = P->cfg->mr, NR = P->cfg->nr;
    const float beta = pc == 0 ? J->beta : 1.0f;
    const int last = pc + kc == J->k;
    const size_t as = J->a_direct ? J->lda : a_copy_stride(kc);
    for (size_t ic = m0; ic < m1; ic += P->mc) {
        const size_t mc = min_z(P->mc, m1 - ic);
        const float *ablk = J->a + ic * J->lda + pc;
        if (apacked) {
            ablk = apacked;
        } else if (!J->a_direct) {
            pack_a(J->trans_a, J->a, J->lda, ic, mc, pc, kc, abuf, as);
            ablk = abuf;
        }
        for (size_t ir = 0, mr; ir < mc; ir += mr) {
            /* a few rows left over after a full tile: two tiles of about
             * half as many rows each, not a full one and a thin one whose
             * few FMAs per B row cannot hide the loads */
            const size_t rest = mc - ir;
            mr = rest > MR && rest < MR + MR / 2 ? (rest + 1) / 2 : min_z(MR, rest);
            for (size_t jr = 0; jr < nc; jr += NR)
                run_tile(J, ic + ir, mr, jc + jr, jr, min_z(NR, nc - jr), pc, kc,
                         ablk + ir * as, as, bbuf, beta, last);
        }
    }
}

static void pack_b_block(const gemm_job *J, size_t jc, size_t nc, size_t pc, size_t kc,
                         float *bbuf)
{
    const size_t NR = J->plan->cfg->nr;
    if (J->bsrc == B_PACK)
        for (size_t jr = 0; jr < nc; jr += NR)
            pack_b_panel(J->trans_b, J->b, J->ldb, pc, kc, jc + jr, min_z(NR, nc - jr), NR,
                         bbuf + jr * kc);
}

static void run_region(const gemm_job *J, size_t m0, size_t m1, size_t n0, size_t n1,
                       float *abuf, float *bbuf)
{
    const gemm_plan *P = J->plan;
    const size_t K = J->k;

    if (!J->a_direct && m1 - m0 <= P->mc) {
        /* A is copied and its rows fit one block: copy each K block of A
         * once and sweep all of N with it (K blocks still in order). */
        for (size_t pc = 0; pc < K; pc += J->kc) {
            const size_t kc = min_z(J->kc, K - pc);
            pack_a(J->trans_a, J->a, J->lda, m0, m1 - m0, pc, kc, abuf, a_copy_stride(kc));
            for (size_t jc = n0; jc < n1; jc += P->nc) {
                const size_t nc = min_z(P->nc, n1 - jc);
                pack_b_block(J, jc, nc, pc, kc, bbuf);
                run_block(J, m0, m1, jc, nc, pc, kc, abuf, abuf, bbuf);
            }
        }
        return;
    }
    for (size_t jc = n0; jc < n1; jc += P->nc) {
        const size_t nc = min_z(P->nc, n1 - jc);
        for (size_t pc = 0; pc < K; pc += J->kc) {
            const size_t kc = min_z(J->kc, K - pc);
            pack_b_block(J, jc, nc, pc, kc, bbuf);
            run_block(J, m0, m1, jc, nc, pc, kc, NULL, abuf, bbuf);
        }
    }
}

/* The most columns any of `parts` parts gets when `tiles` tiles of `w`
 * over a length of `len` are shared out as run_tiles does. */
static size_t largest_part(size_t tiles, size_t w, size_t len, size_t parts)
{
    size_t most = 0;
    for (size_t p = 0; p < parts; p++) {
        size_t lo = p * tiles / parts * w, hi = min_z((p + 1) * tiles / parts * w, len);
        if (hi > lo && hi - lo > most) most = hi - lo;
    }
    return most;
}

/* Threads as a tm x tn grid over C: rows split evenly (any row count),
 * columns on tile boundaries. First the least work for the busiest thread
 * (its rows x columns); among grids within 2% of that, more row parts when
 * B is read without copying and sits in the last-level cache (each thread
 * then keeps its A rows in L2 over several N blocks, and re-reading B from
 * L3 is cheap), else the least A and B each thread reads (rows + columns). */
static void choose_grid(const gemm_job *J, int t, int *tm, int *tn)
{
    const size_t m = J->m, n = J->n, mr = J->plan->cfg->mr, nr = J->plan->cfg->nr;
    const size_t tiles_n = (n + nr - 1) / nr;
    const int rows_first = J->bsrc != B_PACK && J->k * n * sizeof(float) <= g_l3;
    double best_area = 0;
    size_t best_edge = SIZE_MAX;
    int best_a = 0;
    *tm = 1;
    *tn = 1;
    for (int a = 1; a <= t; a++) {
        if (t % a) continue;
        int b = t / a;
        if ((size_t)a > m || (size_t)b > tiles_n) continue;
        size_t rows = (m + a - 1) / a, cols = largest_part(tiles_n, nr, n, (size_t)b);
        double area = (double)rows * (double)cols;
        size_t edge = rows + cols;
        int better;
        if (best_edge == SIZE_MAX || area < best_area * 0.98) better = 1;
        else if (area > best_area * 1.02) better = 0;
        else if (rows_first && rows >= mr) better = a > best_a;
        else better = edge < best_edge;
        if (better) {
            best_area = area;
            best_edge = edge;
            best_a = a;
            *tm = a;
            *tn = b;
        }
    }
}

static int threads_for(size_t m, size_t n, size_t k, const gemm_plan *P, int nthreads)
{
    if (nthreads <= 1 || m * n * k < SERIAL_FMAS) return 1;
    size_t tiles = ((m + P->cfg->mr - 1) / P->cfg->mr) * ((n + P->cfg->nr - 1) / P->cfg->nr);
    return tiles < (size_t)nthreads ? (int)tiles : nthreads;
}

static void thread_bufs(const gemm_job *J, void *ws, int tid, float **abuf, float **bbuf)
{
    size_t ab = a_buf_bytes(J->plan, J->m, J->kc), bb = b_buf_bytes(J->plan, J->n, J->kc);
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    base += (size_t)tid * (ab + bb);
    *abuf = (float *)base;
    *bbuf = (float *)(base + ab);
}

static void run_tiles(const gemm_job *J, size_t tiles_n, int tm, int tn, int tid, float *abuf,
                      float *bbuf)
{
    const size_t NR = J->plan->cfg->nr;
    size_t ti = (size_t)(tid / tn), tj = (size_t)(tid % tn);
    size_t m0 = ti * J->m / tm, m1 = (ti + 1) * J->m / tm;
    size_t n0 = tj * tiles_n / tn * NR, n1 = min_z((tj + 1) * tiles_n / tn * NR, J->n);
    if (m0 < m1 && n0 < n1) run_region(J, m0, m1, n0, n1, abuf, bbuf);
}

/* One product on up to nthreads threads (or on the caller's thread when
 * serial: tid_base picks its slice of the workspace). */
static void run_job(const gemm_job *J, void *ws, int nthreads)
{
    if (J->m == 0 || J->n == 0) return;
    if (J->k == 0) {
        scale_only(J);
        return;
    }
    const size_t NR = J->plan->cfg->nr, tiles_n = (J->n + NR - 1) / NR;
    int t = threads_for(J->m, J->n, J->k, J->plan, nthreads);
    int tm, tn;
    choose_grid(J, t, &tm, &tn);
    if (t == 1) {
        float *abuf, *bbuf;
        thread_bufs(J, ws, 0, &abuf, &bbuf);
        run_region(J, 0, J->m, 0, J->n, abuf, bbuf);
        return;
    }
#pragma omp parallel num_threads(t)
    {
        int tid = omp_get_thread_num(), got = omp_get_num_threads();
        float *abuf, *bbuf;
        thread_bufs(J, ws, tid, &abuf, &bbuf);
        if (got == t) {
            run_tiles(J, tiles_n, tm, tn, tid, abuf, bbuf);
        } else if (tid == 0) { /* fewer threads granted (nested): do it all */
            for (int r = 0; r < t; r++) run_tiles(J, tiles_n, tm, tn, r, abuf, bbuf);
        }
    }
}

/* No workspace: a slow, allocation-free path (one dot product per
 * element), kept only so a NULL workspace is never a crash. */
static float b_at(const gemm_job *J, size_t p, size_t j)
{
    if (J->bsrc == B_PREPACKED) {
        size_t w = J->panel_w;
        return J->b[(j / w) * J->k * w + p * w + j % w];
    }
    return J->trans_b ? J->b[j * J->ldb + p] : J->b[p * J->ldb + j];
}

static void run_unpacked(const gemm_job *J)
{
    if (J->k == 0) {
        scale_only(J);
        return;
    }
    for (size_t i = 0; i < J->m; i++)
        for (size_t j = 0; j < J->n; j++) {
            float acc = 0.f;
            for (size_t p = 0; p < J->k; p++)
                acc += (J->trans_a ? J->a[p * J->lda + i] : J->a[i * J->lda + p]) * b_at(J, p, j);
            float *cp = J->c + i * J->ldc + j;
            float v = J->alpha * acc;
            if (J->beta != 0.f) v = J->beta * *cp + v;
            if (J->ep) {
                onr_sgemm_tile_epi t;
                tile_epilogue(J->ep, i, j, &t);
                v = onr_sgemm_epi_scalar(&t, v, 0, 0);
            }
            *cp = v;
        }
}

static void init_job(gemm_job *J, const gemm_plan *P, int trans_a, int trans_b, size_t m,
                     size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
                     size_t ldb, float beta, float *c, size_t ldc, const onr_gemm_epilogue *ep)
{
    J->plan = P;
    J->m = m;
    J->n = n;
    J->k = k;
    J->kc = k_block(P, m, k);
    J->alpha = alpha;
    J->beta = beta;
    J->trans_a = trans_a;
    J->trans_b = trans_b;
    J->a = a;
    J->b = b;
    J->lda = lda;
    J->ldb = ldb;
    J->c = c;
    J->ldc = ldc;
    J->ep = ep;
    J->panel_w = 0;
    /* Row-major A is read in place unless its rows would alias in L1
     * (a row stride that is a multiple of 2 KiB). */
    J->a_direct = !trans_a && lda % 512 != 0;
    /* Few rows of A: packing B would cost as much as using it, so read it
     * in place (the kernels' masked tails keep inside its rows). Likewise a
     * B small enough to stay in L2 whole (attention's K^T and V) whose rows
     * do not alias in L1 (a row stride that is a multiple of 1 KiB). */
    J->bsrc = (!trans_b && (m <= 2 * P->cfg->mr ||
                            (ldb % 256 != 0 && k * n * sizeof(float) <= g_l2 / 4)))
                  ? B_DIRECT
                  : B_PACK;
}

void onr_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc, const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    gemm_job J;
    init_job(&J, active_plan(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
             ep);
    if (!workspace) run_unpacked(&J);
    else run_job(&J, workspace, nthreads);
}

void onr_sgemm_packed(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const void *packed_b, float beta, float *c, size_t ldc,
                      const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    pack_header h;
    memcpy(&h, packed_b, sizeof h);
    const gemm_plan *P = active_plan();
    /* Packed for another kernel (one forced since): its panels still work
     * for any kernel whose NR divides their width; the reference one's does. */
    if (h.nr % P->cfg->nr != 0) P = &g_plans[CFG_REF];
    gemm_job J;
    init_job(&J, P, trans_a, 0, m, n, k, alpha, a, lda,
             (const float *)((const char *)packed_b + sizeof h), 0, beta, c, ldc, ep);
    J.bsrc = B_PREPACKED;
    J.panel_w = h.nr;
    if (!workspace) run_unpacked(&J);
    else run_job(&J, workspace, nthreads);
}

void onr_sgemm_batch(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, size_t stride_a, const float *b, size_t ldb,
                     size_t stride_b, float beta, float *c, size_t ldc, size_t stride_c,
                     size_t batch, const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    const gemm_plan *P = active_plan();
    size_t fmas = m * n * k;
    int across = workspace && nthreads > 1 && batch >= (size_t)nthreads && stride_c != 0 &&
                 fmas <= BATCH_SPLIT_FMAS && fmas * batch >= SERIAL_FMAS;
    int outer_t = across ? nthreads : 1;

#pragma omp parallel for schedule(static) num_threads(outer_t) if (across)
    for (size_t p = 0; p < batch; p++) {
        onr_gemm_epilogue e;
        const onr_gemm_epilogue *ep_p = NULL;
        if (ep) {
            e = *ep;
            if (e.residual) e.residual += p * e.residual_batch_stride;
            ep_p = &e;
        }
        gemm_job J;
        init_job(&J, P, trans_a, trans_b, m, n, k, alpha, a + p * stride_a, lda,
                 b + p * stride_b, ldb, beta, c + p * stride_c, ldc, ep_p);
        if (!workspace) {
            run_unpacked(&J);
        } else if (across) {
            float *abuf, *bbuf;
            thread_bufs(&J, workspace, omp_get_thread_num(), &abuf, &bbuf);
            if (m && n && k) run_region(&J, 0, m, 0, n, abuf, bbuf);
            else if (m && n) scale_only(&J);
        } else {
            run_job(&J, workspace, nthreads);
        }
    }
}
