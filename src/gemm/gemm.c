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
 *       B block <- packed weights | B read in place (few rows of A, or a
 *                  small B) | packed into workspace
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
 * Threads: C is cut into tasks (rows split evenly, columns on tile
 * boundaries, about four per thread, the grid that adds the least A and B
 * traffic), claimed one at a time from an atomic counter, so a thread slowed
 * by another process does fewer and holds no fixed share. When rows must be
 * split and B would otherwise be packed by every task, B is packed once,
 * cooperatively, into shared panels first. K is never split and block
 * sizes never depend on the thread count, so every element is computed by
 * the same sequence of operations whatever the thread count and whichever
 * thread computes it: results are bit-identical. A product whose caller
 * waited long at the end of the parallel region (a descheduled thread: the
 * CPU is shared) makes the next ones run on one thread for a while
 * (team.h).
 */
#include "gemm/gemm.h"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gemm/sgemm-amx.h"
#include "gemm/sgemm-ukernel.h"
#include "gemm/team.h"
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

/* ---- kernel choice and blocking ---------------------------------------- */

typedef struct gemm_plan {
    const onr_sgemm_config *cfg;
    size_t mc, kc, nc;
    size_t nc_stream; /* column block of prepacked weights streamed past few rows (block_cols) */
} gemm_plan;

enum { CFG_REF, CFG_AVX2, CFG_AVX512, CFG_COUNT };

static const onr_sgemm_config *const g_configs[CFG_COUNT] = {
    &onr_sgemm_config_ref, &onr_sgemm_config_avx2, &onr_sgemm_config_avx512};
static int g_supported[CFG_COUNT];
static gemm_plan g_plans[CFG_COUNT];
static int g_auto, g_active;
/* AMX for weights packed with ONR_PACK_AMX: the CPU and the OS allow it
 * (usable), it is in use now (on: follows the kernel choice), and at
 * start-up (auto) */
static int g_amx_usable, g_amx_on, g_amx_auto;
static size_t g_l1, g_l2, g_l3;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Products with at most this many rows read a row-major B in place (init_job). */
#define B_DIRECT_ROWS 320
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
    gemm_plan p = {cfg, 0, 0, 0, 0};
    p.kc = clampz(g_l1 / 2 / (cfg->mr * sizeof(float)) / 16 * 16, 64, 1024);
    p.nc = clampz(g_l2 / 2 / (p.kc * sizeof(float)) / cfg->nr * cfg->nr, cfg->nr, 8192);
    p.mc = clampz(g_l2 / 4 / (p.kc * sizeof(float)) / cfg->mr * cfg->mr, cfg->mr, 1024);
    p.nc_stream = clampz(g_l2 / 16 / (p.kc * sizeof(float)) / cfg->nr * cfg->nr, 2 * cfg->nr, p.nc);
    return p;
}

static int find_isa(const char *name)
{
    for (int i = 0; i < CFG_COUNT; i++)
        if (strcmp(name, g_configs[i]->isa) == 0) return i;
    return -1;
}

/* The CPU's instruction sets, found once: bit 0 AVX2 + FMA, bit 1 the
 * AVX-512 subsets; -1 until the first call (a race computes it twice, to
 * the same value). */
static _Atomic int g_isa_bits = -1;
static void gemm_init(void);

int onr_cpu_supports(const char *isa)
{
    int bits = atomic_load_explicit(&g_isa_bits, memory_order_relaxed);
    if (bits < 0) {
        __builtin_cpu_init();
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
        bits = avx2 | avx512 << 1;
        atomic_store_explicit(&g_isa_bits, bits, memory_order_relaxed);
    }
    if (strcmp(isa, "ref") == 0) return 1;
    if (strcmp(isa, "avx2") == 0) return bits & 1;
    if (strcmp(isa, "avx512") == 0) return bits >> 1 & 1;
    if (strcmp(isa, "amx") == 0) {
        pthread_once(&g_once, gemm_init);
        return g_amx_usable;
    }
    return 0;
}

/* AMX-TILE and AMX-BF16 (CPUID leaf 7), and the kernel's permission to
 * use tile data (Linux 5.16+: asked for once per process). */
static int amx_detect(void)
{
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(edx >> 24 & 1) || !(edx >> 22 & 1)) return 0;
    if (!onr_cpu_supports("avx512")) return 0; /* the split and packing use it */
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static void gemm_init(void)
{
    detect_caches();
    for (int i = 0; i < CFG_COUNT; i++) g_supported[i] = onr_cpu_supports(g_configs[i]->isa);
    for (int i = 0; i < CFG_COUNT; i++) g_plans[i] = make_plan(g_configs[i]);
    g_auto = g_supported[CFG_AVX512] ? CFG_AVX512 : (g_supported[CFG_AVX2] ? CFG_AVX2 : CFG_REF);
    g_active = g_auto;
    const char *env = getenv("ONR_GEMM_KERNEL");
    if (env && *env) {
        int i = find_isa(env);
        if (i >= 0 && g_supported[i]) g_active = i;
    }
    g_amx_usable = amx_detect();
    /* AMX with the AVX-512 kernels, unless a kernel was named (ONR_GEMM_KERNEL=amx asks for it) */
    g_amx_on = g_amx_usable && g_active == CFG_AVX512 &&
               (!env || !*env || strcmp(env, "amx") == 0);
    g_auto = g_active; /* force_kernel(NULL) comes back to the start-up choice */
    g_amx_auto = g_amx_on;
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
        g_amx_on = g_amx_auto;
        return 0;
    }
    if (strcmp(name, "amx") == 0) {
        if (!g_amx_usable) return -1;
        g_active = CFG_AVX512;
        g_amx_on = 1;
        return 0;
    }
    int i = find_isa(name);
    if (i < 0 || !g_supported[i]) return -1;
    g_active = i;
    g_amx_on = 0;
    return 0;
}

int onr_sgemm_amx(void)
{
    pthread_once(&g_once, gemm_init);
    return g_amx_on;
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
 * stream as one sequence (GEMV). A product of a fixed shape
 * (onr_gemm_epilogue.fixed_shape) with at most half as many rows as K,
 * and K of KSPLIT_MIN_K or more in one block, gets two, so that two
 * threads can split it by K (run_ksplit): MobileNetV2 at 2 threads -3.9 %
 * more than the K split of products with two blocks already (its 384 ->
 * 64 layers), EfficientNet-B0 -0.9 %, ResNet-50 within noise, all three
 * within 0.3 % at 1 thread (ABBA, Intel Xeon VM; from K 384 up instead:
 * MobileNetV2 -2.3 %, EfficientNet-B0 0). Depends on the shape and the
 * kernel only, never on the thread count. */
#define KSPLIT_MIN_K 256
static size_t k_block(const gemm_plan *p, size_t m, size_t k, int fixed_shape)
{
    size_t kc = p->kc;
    if (m < p->cfg->mr) {
        size_t rows = m ? m : 1;
        kc = clampz(g_l1 / 2 / (rows * sizeof(float)) / 16 * 16, p->kc, 8192);
    }
    size_t nk = (k + kc - 1) / kc;
    if (fixed_shape && nk == 1 && 2 * m <= k && k >= KSPLIT_MIN_K) nk = 2;
    if (nk <= 1) return k;
    return min_z(kc, round_up((k + nk - 1) / nk, 8));
}

/* How many K blocks k_block makes. */
static size_t k_blocks(const gemm_plan *p, size_t m, size_t k, int fixed_shape)
{
    const size_t kc = k_block(p, m, k, fixed_shape);
    return (k + kc - 1) / kc;
}

static size_t a_copy_stride(size_t kc);

/* The most rows of a copied A that are copied once per K block and swept
 * over all of a region's columns (run_region): a copy of at most half of
 * L2, and never fewer rows than one A block. Copying A again for every
 * column block instead (ViT-B/16's FFN output, 197 x 768 x 3072: a row
 * stride that aliases, two A blocks, three column blocks, so A was copied
 * three times) made ViT 2 % slower at one thread (189.8 -> 185.8 ms). The kernels
 * read the copy a micro-panel at a time, once per column block, so it
 * need not stay in L2 while the B blocks pass. */
static size_t sweep_rows(const gemm_plan *p, size_t kc)
{
    size_t r = g_l2 / 2 / (a_copy_stride(kc) * sizeof(float)) / p->cfg->mr * p->cfg->mr;
    return r > p->mc ? r : p->mc;
}

static size_t a_buf_bytes(const gemm_plan *p, size_t m, size_t kc)
{
    return align64(min_z(sweep_rows(p, kc), round_up(m, p->cfg->mr)) * a_copy_stride(kc) *
                   sizeof(float));
}

static size_t b_buf_bytes(const gemm_plan *p, size_t n, size_t kc)
{
    return align64(min_z(p->nc, round_up(n, p->cfg->nr)) * kc * sizeof(float));
}

/* After the B block: the tail columns transposed (run_block). */
static size_t t_buf_bytes(const gemm_plan *p, size_t kc)
{
    return p->cfg->tail ? align64(p->cfg->tail_max * round_up(kc, 16) * sizeof(float)) : 0;
}

static size_t per_thread_bytes(const gemm_plan *p, size_t m, size_t n, size_t k)
{
    size_t kc = k_block(p, m, k, 0); /* the longer block of the two ways */
    return a_buf_bytes(p, m, kc) + b_buf_bytes(p, n, kc) + t_buf_bytes(p, kc);
}

static int want_shared_b(const gemm_plan *P, size_t m, size_t n, size_t k, int t);
static size_t shared_b_bytes(const gemm_plan *P, size_t n, size_t k);
static size_t ksplit_parts(const gemm_plan *P, size_t m, size_t n, size_t k, int fixed_shape,
                           size_t t);
static size_t ksplit_bytes(size_t m, size_t n, size_t parts);

size_t onr_sgemm_workspace_size(size_t m, size_t n, size_t k, int nthreads)
{
    pthread_once(&g_once, gemm_init);
    if (m == 0 || n == 0 || k == 0) return 0;
    size_t t = nthreads > 1 ? (size_t)nthreads : 1, best = 0, shared = 0;
    for (int i = 0; i < CFG_COUNT; i++) {
        if (!g_supported[i]) continue;
        size_t b = per_thread_bytes(&g_plans[i], m, n, k);
        if (b > best) best = b;
        if (want_shared_b(&g_plans[i], m, n, k, (int)t) &&
            shared_b_bytes(&g_plans[i], n, k) > shared)
            shared = shared_b_bytes(&g_plans[i], n, k);
        /* or, in the same place, the K split's partial products, on as
         * many threads as the product has K blocks (either way) */
        for (int fs = 0; fs < 2; fs++) {
            const size_t nk = k_blocks(&g_plans[i], m, k, fs);
            if (nk <= t && ksplit_parts(&g_plans[i], m, n, k, fs, nk) > 1 &&
                ksplit_bytes(m, n, nk) > shared)
                shared = ksplit_bytes(m, n, nk);
        }
    }
    return t * onr_thread_stride(best) + shared + 64;
}

/* The AMX path's workspace (run_amx): the operand the product packs (A'
 * of all rows, or B' of all columns), then per thread the sums of its task
 * (AMX_RP rows x amx_nch columns) and the B' it splits. */
#define AMX_RP 256
/* the fewest rows a product on weights packed with ONR_PACK_AMX runs on
 * AMX with (amx_job) */
#define AMX_MIN_ROWS 64
#define AMX_NCH (ONR_AMX_CB * ONR_AMX_MB)
#define AMX_NCH_MAX (6 * ONR_AMX_MB)
/* column blocks a thread needs to take its own columns (run_amx) */
#define AMX_COLS_PER_THREAD 8

/* A' of m rows or B' of m columns, K = k: three bfloat16 terms a value */
static size_t amx_terms_bytes(size_t m, size_t k)
{
    return align64(round_up(m, ONR_AMX_MB) * round_up(k, ONR_AMX_KS) * 3 * sizeof(uint16_t));
}
/* per thread: a task's sums, then B' split from float panels (amx_task) */
#define AMX_SUMS_BYTES (AMX_RP * AMX_NCH_MAX * sizeof(float))
static size_t amx_sums_stride(void)
{
    return onr_thread_stride(AMX_SUMS_BYTES + 2 * ONR_AMX_KCB * ONR_AMX_BLOCK * sizeof(uint16_t));
}
/* per thread, products on prepacked A' at several threads: the B' of the
 * column block whose rows it shares with the thread before it
 * (amx_stream_share) */
static size_t amx_part_bytes(size_t k) { return onr_thread_stride(amx_terms_bytes(AMX_NCH_MAX, k)); }

size_t onr_sgemm_workspace_size_ex(size_t m, size_t n, size_t k, int nthreads, int flags)
{
    size_t bytes = onr_sgemm_workspace_size(m, n, k, nthreads);
    if ((flags & ONR_PACK_AMX) && g_amx_usable && m >= AMX_MIN_ROWS && n && k) {
        size_t t = nthreads > 1 ? (size_t)nthreads : 1;
        size_t amx = amx_terms_bytes(m, k) + t * amx_sums_stride() + 64;
        if (amx > bytes) bytes = amx;
    }
    return bytes;
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

/* A float read with memcpy: B packed at create may be a weight still in
 * the model's mapping at any alignment (ONR_OP_LAZY_B) */
static inline float ld_f32(const float *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* B rows [p0, p0+kc) x columns [j0, j0+nr) of op(B) -> dst[k*NR + j],
 * columns nr..NR-1 zero. */
static void pack_b_panel(int trans_b, const float *b, size_t ldb, size_t p0, size_t kc,
                         size_t j0, size_t nr, size_t NR, float *dst)
{
    if (!trans_b) {
        const float *src = b + p0 * ldb + j0;
        /* full panels of the kernels' widths: copies of a constant size,
         * inlined (a memcpy call per 128-byte row cost a tenth of a 1x1
         * convolution with 64 channels) */
        if (nr == 32 && NR == 32) {
            for (size_t k = 0; k < kc; k++) memcpy(dst + k * 32, src + k * ldb, 32 * sizeof(float));
            return;
        }
        if (nr == 16 && NR == 16) {
            for (size_t k = 0; k < kc; k++) memcpy(dst + k * 16, src + k * ldb, 16 * sizeof(float));
            return;
        }
        for (size_t k = 0; k < kc; k++) {
            memcpy(dst + k * NR, src + k * ldb, nr * sizeof(float));
            for (size_t j = nr; j < NR; j++) dst[k * NR + j] = 0.f;
        }
        return;
    }
    for (size_t k = 0; k < kc; k++)
        for (size_t j = nr; j < NR; j++) dst[k * NR + j] = 0.f;
    /* 64 rows of the panel at a time (8 KiB with NR 32): the strided
     * writes stay in L1 while each column's run of K is read in order */
    for (size_t k0 = 0; k0 < kc; k0 += 64) {
        const size_t k1 = min_z(kc, k0 + 64);
        size_t j = 0;
#if defined(__SSE2__)
        /* four columns at a time, 4 x 4 blocks transposed in registers: a
         * vector store per panel row instead of four scalar ones (packing
         * transposed weights at create was a sixth of ResNet-50's load) */
        for (; j + 4 <= nr; j += 4) {
            const float *s0 = b + (j0 + j) * ldb + p0, *s1 = s0 + ldb, *s2 = s1 + ldb,
                        *s3 = s2 + ldb;
            size_t k = k0;
            for (; k + 4 <= k1; k += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
                __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(dst + k * NR + j, r0);
                _mm_storeu_ps(dst + (k + 1) * NR + j, r1);
                _mm_storeu_ps(dst + (k + 2) * NR + j, r2);
                _mm_storeu_ps(dst + (k + 3) * NR + j, r3);
            }
            for (; k < k1; k++) {
                float *d = dst + k * NR + j;
                d[0] = ld_f32(s0 + k), d[1] = ld_f32(s1 + k), d[2] = ld_f32(s2 + k), d[3] = ld_f32(s3 + k);
            }
        }
#endif
        for (; j < nr; j++) {
            const float *src = b + (j0 + j) * ldb + p0;
            for (size_t k = k0; k < k1; k++) dst[k * NR + j] = ld_f32(src + k);
        }
    }
}

/* Prepacked B: a header, then panels of NR columns x K rows (k-major). */
#define PACK_MAGIC 0x42524e4fu /* "ONRB" */
typedef struct pack_header {
    uint32_t magic, nr;
    uint64_t k, n;
    uint32_t amx; /* ONR_PACK_AMX, all finite: products may run on AMX (run_amx) */
    char pad[36];
} pack_header;
_Static_assert(sizeof(pack_header) == 64, "packed panels stay 64-byte aligned");

size_t onr_sgemm_pack_b_size(size_t k, size_t n) { return onr_sgemm_pack_b_size_ex(k, n, 0); }

size_t onr_sgemm_pack_b_size_ex(size_t k, size_t n, int flags)
{
    (void)flags; /* the same float panels either way */
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
    onr_sgemm_pack_b_ex(trans_b, k, n, b, ldb, packed, 0);
}

void onr_sgemm_pack_b_ex(int trans_b, size_t k, size_t n, const float *b, size_t ldb,
                         void *packed, int flags)
{
    atomic_fetch_add_explicit(&g_pack_count, 1, memory_order_relaxed);
    size_t nr = active_plan()->cfg->nr;
    pack_header h;
    memset(&h, 0, sizeof h);
    h.magic = PACK_MAGIC;
    h.k = k;
    h.n = n;
    h.nr = (uint32_t)nr;
    float *dst = (float *)((char *)packed + sizeof h);
    for (size_t j = 0; j < n; j += nr)
        pack_b_panel(trans_b, b, ldb, 0, k, j, min_z(nr, n - j), nr, dst + j * k);
    /* AMX splits panels of its own block width, 32 columns, as it reads
     * them; a value that is not finite would make NaN terms */
    if ((flags & ONR_PACK_AMX) && g_amx_on && nr == ONR_AMX_MB && k > 0 && n > 0) {
        /* exponent all ones: inf or NaN (a loop the compiler vectorizes) */
        const size_t len = round_up(n, nr) * k;
        uint32_t bad = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t u;
            memcpy(&u, dst + i, sizeof u);
            bad |= (u & 0x7F800000u) == 0x7F800000u;
        }
        h.amx = !bad;
    }
    memcpy(packed, &h, sizeof h);
}

/* ---- the loop nest ----------------------------------------------------- */

/* Where the kernels' B comes from: packed from B by each task (B_PACK) or
 * by the caller's generator (B_GEN: onr_sgemm_gen), read in place
 * (B_DIRECT), or prepacked panels (B_PREPACKED). */
enum b_source { B_PACK, B_DIRECT, B_PREPACKED, B_GEN };

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
    size_t panel_k; /* B_PREPACKED: rows per stored panel (k, or more: onr_sgemm_packed_cols_k) */
    onr_sgemm_bgen gen; /* B_GEN: the caller's generator and its context */
    void *gen_ctx;
    float *c;
    size_t ldc;
    const onr_gemm_epilogue *ep;
    const _Atomic int *cancel; /* the caller's run: stop at the next block once set */
    const float *a_next; /* a_direct: the A (same m, k, lda) the caller multiplies next, or NULL */
    int fixed_shape;     /* onr_gemm_epilogue.fixed_shape: tail_cols, k_block's halves */
} gemm_job;

static _Thread_local const _Atomic int *g_cancel;

const _Atomic int *onr_sgemm_set_cancel(const _Atomic int *flag)
{
    const _Atomic int *old = g_cancel;
    g_cancel = flag;
    return old;
}

const _Atomic int *onr_sgemm_get_cancel(void) { return g_cancel; }

static inline int job_cancelled(const gemm_job *J) { return J->cancel && *J->cancel; }

/* The product of columns [j0, j1) of J in *S, its epilogue in *e; B's
 * column j0 at b_off floats from J->b (j0 for a row-major B, j0 * k for
 * prepacked panels starting at j0). */
static void job_cols(const gemm_job *J, size_t j0, size_t j1, size_t b_off, gemm_job *S,
                     onr_gemm_epilogue *e)
{
    *S = *J;
    S->n = j1 - j0;
    S->b = J->b + b_off;
    S->c = J->c + j0;
    if (J->ep) {
        *e = *J->ep;
        if (e->bias_col) e->bias_col += j0;
        if (e->residual) e->residual += j0;
        S->ep = e;
    }
}

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

/* The epilogue of the tile at (i, j) in *t, or NULL: none, or not the
 * product's last K block (last == 0). */
static const onr_sgemm_tile_epi *tile_epi(const gemm_job *J, int last, size_t i, size_t j,
                                          onr_sgemm_tile_epi *t)
{
    if (!last || !J->ep) return NULL;
    tile_epilogue(J->ep, i, j, t);
    return t;
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

/* Where B's row pc, column j (jr within the block, bbuf's columns) is,
 * and the stride of its rows (*ldbk). */
static inline const float *tile_b(const gemm_job *J, size_t j, size_t jr, size_t pc, size_t kc,
                                  const float *bbuf, size_t *ldbk)
{
    if (J->bsrc == B_PACK || J->bsrc == B_GEN) {
        const size_t NR = J->plan->cfg->nr;
        *ldbk = NR;
        return bbuf + jr / NR * NR * kc + jr % NR;
    }
    if (J->bsrc == B_DIRECT) {
        *ldbk = J->ldb;
        return J->b + pc * J->ldb + j;
    }
    const size_t w = J->panel_w;
    *ldbk = w;
    return J->b + (j / w) * J->panel_k * w + pc * w + j % w;
}

/* One MR x NR tile (fewer at the edges): rows i.., columns j.. of C. */
static inline void run_tile(const gemm_job *J, size_t i, size_t mr, size_t j, size_t jr,
                            size_t nr, size_t pc, size_t kc, const float *ap, size_t as,
                            const float *bbuf, float beta, int last)
{
    size_t ldbk;
    const float *bp = tile_b(J, j, jr, pc, kc, bbuf, &ldbk);
    onr_sgemm_tile_epi te;
    const onr_sgemm_tile_epi *tep = tile_epi(J, last, i, j, &te);
    const onr_sgemm_ahead *h = &onr_sgemm_ahead_cur;
    onr_sgemm_ukernel_fn fn = J->plan->cfg->ukernel;
    if ((h->p < h->end || h->rows) && J->plan->cfg->ukernel_ahead) fn = J->plan->cfg->ukernel_ahead;
    fn(mr, nr, kc, ap, as, bp, ldbk, J->c + i * J->ldc + j, J->ldc, J->alpha, beta, tep);
}

/* Reads one 32-bit word of every cache line of rows [0, rows) x [0, kc)
 * of an A read in place (row stride lda), in address order, so that a
 * block of weights coming from memory streams into the caches before the
 * kernels use it. The kernels' broadcasts walk the rows of a tile side by
 * side, and a miss there stalls the FMAs that wait on it; loads in address
 * order over the whole block let the hardware prefetchers run ahead at the
 * memory's bandwidth instead. ResNet-50's layer3 (1x1 layers with
 * 256-1024 KiB of weights, 14x14) at one thread: 34.3 -> 29.5 ms with
 * this, 32.2-32.5 with software prefetches over the same block, and the
 * same loads a tile at a time gained nothing (31.2 against 31.4). The
 * words are or-ed into two chains, not summed (a float sum made each line
 * wait on the add before, 4 cycles), so a block already in cache costs
 * about one load per line. */
static void touch_a_block(const float *a, size_t lda, size_t rows, size_t kc)
{
    typedef uint32_t __attribute__((may_alias)) word;
    uint32_t o0 = 0, o1 = 0;
    for (size_t i = 0; i < rows; i++) {
        const word *r = (const word *)(a + i * lda);
        size_t q = 0;
        for (; q + 16 < kc; q += 32) o0 |= r[q], o1 |= r[q + 16];
        for (; q < kc; q += 16) o0 |= r[q];
        o1 |= r[kc - 1]; /* a last line that the stride of 16 skipped */
    }
    __asm__ volatile("" : : "r"(o0 | o1)); /* keep the loads */
}

_Thread_local onr_sgemm_ahead onr_sgemm_ahead_cur;

/* What the kernels fetch ahead of a block of A read in place: the next one
 * or two blocks the thread will read (the next rows or K block of this
 * product, or the first block of the caller's next A), handed to the
 * kernels one at a time (onr_sgemm_ahead walks a block's rows). A block
 * fetched whole is not touched again; one fetched in part is resumed
 * where it stopped during the next block. */
enum { AHEAD_BLOCKS = 2, AHEAD_WHOLE = 4 };
typedef struct ahead_block {
    const float *first; /* rows x kc floats, lda apart */
    size_t lda, rows, kc;
    int weights; /* a prepacked B block (block_cols), not an A block: never recorded as fetched */
} ahead_block;
typedef struct ahead_queue {
    ahead_block b[AHEAD_BLOCKS];
    int nb, cur; /* blocks, the next one to hand out */
} ahead_queue;

/* the blocks fetched whole and not read yet (NULL: free) */
static _Thread_local const float *g_ahead_whole[AHEAD_WHOLE];
/* the block fetched in part and where its cursor stopped */
static _Thread_local struct {
    const float *first;
    onr_sgemm_ahead rest;
} g_ahead_part;
static _Thread_local size_t g_ahead_count;
size_t onr_sgemm_ahead_count(void) { return g_ahead_count; }

static int ahead_is_whole(const float *a, int take)
{
    for (int i = 0; i < AHEAD_WHOLE; i++)
        if (g_ahead_whole[i] == a) {
            if (take) g_ahead_whole[i] = NULL;
            return 1;
        }
    return 0;
}

static void ahead_mark_whole(const float *a)
{
    static _Thread_local int next;
    if (ahead_is_whole(a, 0)) return;
    for (int i = 0; i < AHEAD_WHOLE; i++)
        if (!g_ahead_whole[i]) {
            g_ahead_whole[i] = a;
            return;
        }
    g_ahead_whole[next] = a; /* full: replace one */
    next = (next + 1) % AHEAD_WHOLE;
}

static void ahead_add(ahead_queue *q, const float *a, size_t lda, size_t rows, size_t kc)
{
    if (ahead_is_whole(a, 0) || rows == 0) return; /* fetched already */
    ahead_block *b = &q->b[q->nb++];
    b->first = a;
    b->lda = lda;
    b->rows = rows;
    b->kc = kc;
    b->weights = 0;
}

/* The next block to the kernels once they are done with the last one. */
static inline void ahead_piece(ahead_queue *q)
{
    onr_sgemm_ahead *c = &onr_sgemm_ahead_cur;
    if (q->cur >= q->nb || c->p < c->end || c->rows) return;
    const ahead_block *b = &q->b[q->cur++];
    uintptr_t s = (uintptr_t)b->first & ~(uintptr_t)63;
    uintptr_t e = ((uintptr_t)(b->first + b->kc) + 63) & ~(uintptr_t)63;
    c->ld = b->lda * sizeof(float);
    c->span = (size_t)(e - s);
    if (c->ld <= c->span) { /* rows contiguous (or overlapping lines): one span */
        e = ((uintptr_t)(b->first + (b->rows - 1) * b->lda + b->kc) + 63) & ~(uintptr_t)63;
        c->rows = 0;
    } else {
        c->rows = b->rows - 1;
    }
    c->row = c->p = (const char *)s;
    c->end = (const char *)e;
}

/* After a block's tiles: record the blocks fetched whole and where the
 * next one stopped; stop the kernels' prefetches. */
static void ahead_end(ahead_queue *q)
{
    onr_sgemm_ahead *c = &onr_sgemm_ahead_cur;
    const int unfinished = c->p < c->end || c->rows; /* the last block handed out */
    int whole = q->cur - unfinished;
    for (int i = 0; i < whole; i++)
        if (!q->b[i].weights) ahead_mark_whole(q->b[i].first);
    g_ahead_part.first = unfinished && !q->b[whole].weights ? q->b[whole].first : NULL;
    g_ahead_part.rest = *c;
    memset(c, 0, sizeof *c);
}

/* The A blocks a region reads after block (ic, pc) of its first column
 * block (rows [ic, ic+mc) of [m0, m1), columns [pc, pc+kc)), up to
 * AHEAD_BLOCKS not fetched yet: the next rows, the next K block, then the
 * first block of the caller's next A. */
static void ahead_plan(const gemm_job *J, size_t m0, size_t m1, size_t ic, size_t mc, size_t pc,
                       size_t kc, ahead_queue *q)
{
    const size_t MC = J->plan->mc;
    q->nb = q->cur = 0;
    for (int steps = 0; q->nb < AHEAD_BLOCKS && steps < 4 * AHEAD_BLOCKS; steps++) {
        if (ic + mc < m1) {
            ic += mc;
            mc = min_z(MC, m1 - ic);
        } else if (pc + kc < J->k) {
            pc += kc;
            kc = min_z(J->kc, J->k - pc);
            ic = m0;
            mc = min_z(MC, m1 - m0);
        } else {
            if (J->a_next) ahead_add(q, J->a_next + m0 * J->lda, J->lda, min_z(MC, m1 - m0),
                                     min_z(J->kc, J->k));
            break;
        }
        ahead_add(q, J->a + ic * J->lda + pc, J->lda, mc, kc);
    }
    /* resume the block the last queue fetched in part */
    if (q->nb && q->b[0].first == g_ahead_part.first) {
        onr_sgemm_ahead_cur = g_ahead_part.rest;
        q->cur = 1;
    }
    g_ahead_part.first = NULL;
}

/* The columns a product leaves past a multiple of 16 (its width mod NR
 * mod 16: 196 -> 4, 49 -> 1; a 16-column rest is one full vector),
 * computed by the kernel's tail as dot products along k instead of as a
 * tile that costs as many FMAs per k step as a full one (1024 x 192 x 256
 * took 0.64 ms and 1024 x 196 x 256 0.76). With the tail, B read in place,
 * one thread, Intel Xeon: 1024 x 196 x 256 0.740 -> 0.690 ms, 256 x 196 x
 * 1024 0.790 -> 0.738, 384 x 196 x 64 0.065 -> 0.062, 144 x 196 x 24 the
 * same, 2048 x 49 x 512 1.07 -> 0.98. In the models (ABBA in one process,
 * 1 / 2 threads): ResNet-50 -1.1 / +0.3 %, MobileNetV2 -0.9 / -0.5 %,
 * EfficientNet-B0 -0.8 / -0.8 %; the 7x7 1x1 layers (49 columns) still
 * run transposed (conv.c): through this tail instead they were 2-5 %
 * slower. 0: none (the caller did not set fixed_shape, the kernel has no
 * tail, or more such columns). Depends on the width and the kernel only,
 * so an element is computed the same way at any thread count and in a
 * product of any number of rows; the columns always lie in the product's
 * last tile (regions and blocks start on tile boundaries). */
static _Thread_local size_t g_tail_count;
size_t onr_sgemm_tail_count(void) { return g_tail_count; }

static size_t tail_width(const onr_sgemm_config *cfg, size_t n)
{
    if (!cfg->tail) return 0;
    const size_t d = n % cfg->nr % 16;
    return d <= cfg->tail_max ? d : 0;
}

static size_t tail_cols(const gemm_job *J)
{
    return J->fixed_shape ? tail_width(J->plan->cfg, J->n) : 0;
}

size_t onr_sgemm_tail_cols(size_t n) { return tail_width(active_plan()->cfg, n); }

/* Columns [j, j+nt) of the B block (tile_b) -> bt[c*ldt + k], zero from
 * kc to ldt. */
static void pack_tail(const gemm_job *J, size_t j, size_t jr, size_t pc, size_t kc,
                      const float *bbuf, size_t nt, float *bt, size_t ldt)
{
    size_t ld;
    const float *b = tile_b(J, j, jr, pc, kc, bbuf, &ld);
    for (size_t k = 0; k < kc; k++, b += ld)
        for (size_t c = 0; c < nt; c++) bt[c * ldt + k] = b[c];
    for (size_t c = 0; c < nt; c++)
        for (size_t k = kc; k < ldt; k++) bt[c * ldt + k] = 0.f;
}

/* One kc x nc block of B against rows [m0, m1) of A: the ic, ir, jr loops.
 * apacked != NULL: those rows of A are already copied there. first: the
 * first column block of the region, where A is used for the first time
 * (an A read in place is touched in address order then). */
static void run_block(const gemm_job *J, size_t m0, size_t m1, size_t jc, size_t nc, size_t pc,
                      size_t kc, const float *apacked, float *abuf, float *bbuf, int first,
                      const ahead_block *wnext)
{
    const gemm_plan *P = J->plan;
    const size_t MR = P->cfg->mr, NR = P->cfg->nr;
    const float beta = pc == 0 ? J->beta : 1.0f;
    const int last = pc + kc == J->k;
    const size_t as = J->a_direct ? J->lda : a_copy_stride(kc);
    /* the product's last columns, in this block's last tile: as dot
     * products (tail_cols), B's columns copied transposed after the block */
    size_t nt = jc + nc == J->n ? tail_cols(J) : 0, jt = nc - nt, ldt = round_up(kc, 16);
    float *bt = NULL;
    if (nt) {
        g_tail_count++;
        bt = (float *)((char *)bbuf + b_buf_bytes(P, J->n, J->kc));
        pack_tail(J, jc + jt, jt, pc, kc, bbuf, nt, bt, ldt);
    }
    for (size_t ic = m0; ic < m1; ic += P->mc) {
        ahead_queue ahead = {.nb = 0};
        const size_t mc = min_z(P->mc, m1 - ic);
        const float *ablk = J->a + ic * J->lda + pc;
        if (apacked) {
            ablk = apacked + (ic - m0) * as;
        } else if (J->a_direct) {
            /* a block the kernels fetched whole while the block before it
             * ran is not touched again */
            if (first && ahead_is_whole(ablk, 1)) g_ahead_count++;
            else if (first) touch_a_block(ablk, J->lda, mc, kc);
            /* (a prepacked B is the weights, and A the activations, in
             * cache: the next block of weights is fetched instead, where
             * block_cols says so) */
            if (first && J->bsrc != B_PREPACKED) ahead_plan(J, m0, m1, ic, mc, pc, kc, &ahead);
        } else {
            pack_a(J->trans_a, J->a, J->lda, ic, mc, pc, kc, abuf, as);
            ablk = abuf;
        }
        if (wnext && ic == m0 && ahead.nb < AHEAD_BLOCKS) ahead.b[ahead.nb++] = *wnext;
        for (size_t ir = 0, mr; ir < mc; ir += mr) {
            /* a few rows left over after a full tile: two tiles of about
             * half as many rows each, not a full one and a thin one whose
             * few FMAs per B row cannot hide the loads */
            const size_t rest = mc - ir;
            mr = rest > MR && rest < MR + MR / 2 ? (rest + 1) / 2 : min_z(MR, rest);
            for (size_t jr = 0; jr < jt; jr += NR) {
                ahead_piece(&ahead);
                run_tile(J, ic + ir, mr, jc + jr, jr, min_z(NR, jt - jr), pc, kc,
                         ablk + ir * as, as, bbuf, beta, last);
            }
            if (nt) {
                onr_sgemm_tile_epi te;
                P->cfg->tail(mr, nt, kc, ablk + ir * as, as, bt, ldt,
                             J->c + (ic + ir) * J->ldc + jc + jt, J->ldc, J->alpha, beta,
                             tile_epi(J, last, ic + ir, jc + jt, &te));
            }
        }
        if (ahead.nb) ahead_end(&ahead);
    }
}

/* Rows [p0, p0+kc) x columns [j0, j0+nr) of B, from B or the generator,
 * -> dst[k*NR + j], columns nr..NR-1 zero. */
static void job_pack_panel(const gemm_job *J, size_t p0, size_t kc, size_t j0, size_t nr,
                           size_t NR, float *dst)
{
    if (J->bsrc != B_GEN) {
        pack_b_panel(J->trans_b, J->b, J->ldb, p0, kc, j0, nr, NR, dst);
        return;
    }
    J->gen(J->gen_ctx, p0, kc, j0, nr, dst, NR);
    if (nr < NR)
        for (size_t k = 0; k < kc; k++)
            for (size_t j = nr; j < NR; j++) dst[k * NR + j] = 0.f;
}

static void pack_b_block(const gemm_job *J, size_t jc, size_t nc, size_t pc, size_t kc,
                         float *bbuf)
{
    const size_t NR = J->plan->cfg->nr;
    if (J->bsrc == B_PACK || J->bsrc == B_GEN)
        for (size_t jr = 0; jr < nc; jr += NR)
            job_pack_panel(J, pc, kc, jc + jr, min_z(NR, nc - jr), NR, bbuf + jr * kc);
}

/* Whether a region of `rows` rows streams its B (and is split by columns,
 * plan_grid), and its columns per block of B (block_cols). Prepacked weights
 * against few rows (at most two A blocks: a transformer's tokens) come
 * from memory once per product, and with blocks of half of L2 the first
 * row tile of each block waited on them (a chain of 24 MatMuls 128 x 768
 * x 3072 and back, 226 MB of weights, ran 10-12 % slower per MatMul than
 * one pair whose weights stayed in cache; Intel Xeon with AMX, L2 2 MiB).
 * There the blocks are about L2/16 and the kernels fetch the next one
 * into L2 while they run (next_weights): in one process, runs alternating
 * ABBA, 1 / 2 threads: BERT-base -5.5 / -3.2 %, the GPT-2-like decoder
 * -7.0 / -3.5 %, ViT-B/16 -4.0 / -1.8 %, ResNet-50 -2.3 / -5.3 %,
 * ConvNeXt-T -2.6 / -0.7 %, EfficientNet-B0 within 1 %. Blocks of L2/8
 * gained about half as much on the GPT-2-like decoder, one panel (32
 * columns) lost 1-2 %, and the fetch with blocks of half of L2 lost 1.4 %
 * (BERT-base, 1 thread; also on Zen 5 in an earlier session). So do up
 * to two A blocks (BERT's 128 tokens were an A block of 120 rows and one
 * of 8 against blocks of half of L2, fetched by nothing ahead; ViT-B/16's
 * 197): in one process, 10 session pairs, 1 / 2 threads, Zen 5: BERT-base
 * 0.975 / 0.960, ViT-B/16 1.009-1.011 / 0.975, the GPT-2-like decoder
 * 0.993 / 0.985 (6 pairs), ResNet-50 0.991 / 0.991 (its transposed
 * layers). More rows keep half of L2: the weights are then read many
 * times per block, and narrower blocks would make every row tile of A
 * pass again (ConvNeXt-T's Linear layers on 3136 rows: +1.5 %). */
static int streams_weights(const gemm_job *J, size_t rows)
{
    return J->bsrc == B_PREPACKED && rows <= 2 * J->plan->mc;
}

static size_t block_cols(const gemm_job *J, size_t rows)
{
    return streams_weights(J, rows) ? J->plan->nc_stream : J->plan->nc;
}

/* The prepacked weights' block rows [pc, pc+kc) x columns [jc, jc+nc) as
 * something for the kernels to fetch ahead: kc rows of each panel it
 * touches, one contiguous span per panel; NULL if the block is empty or
 * the region does not stream its weights. */
static const ahead_block *next_weights(const gemm_job *J, size_t rows, size_t jc, size_t nc,
                                       size_t pc, size_t kc, ahead_block *out)
{
    if (!streams_weights(J, rows) || nc == 0 || kc == 0) return NULL;
    const size_t w = J->panel_w;
    out->first = J->b + (jc / w) * J->panel_k * w + pc * w;
    out->lda = J->panel_k * w;
    out->rows = (jc + nc - 1) / w - jc / w + 1;
    out->kc = kc * w;
    out->weights = 1;
    return out;
}

static _Thread_local size_t g_sweep_count;
size_t onr_sgemm_sweep_count(void) { return g_sweep_count; }

static void run_region(const gemm_job *J, size_t m0, size_t m1, size_t n0, size_t n1,
                       float *abuf, float *bbuf)
{
    const gemm_plan *P = J->plan;
    const size_t K = J->k, NC = block_cols(J, m1 - m0);

    if (!J->a_direct && m1 - m0 <= sweep_rows(P, J->kc)) {
        /* A is copied and its rows fit the sweep: copy each K block of A
         * once and sweep all of N with it (K blocks still in order). */
        if (m1 - m0 > P->mc) g_sweep_count++;
        for (size_t pc = 0; pc < K; pc += J->kc) {
            const size_t kc = min_z(J->kc, K - pc);
            if (job_cancelled(J)) return;
            pack_a(J->trans_a, J->a, J->lda, m0, m1 - m0, pc, kc, abuf, a_copy_stride(kc));
            for (size_t jc = n0; jc < n1; jc += NC) {
                const size_t nc = min_z(NC, n1 - jc);
                /* next: the column block to the right, else the first of the next K block */
                ahead_block nb;
                const ahead_block *wn =
                    jc + nc < n1 ? next_weights(J, m1 - m0, jc + nc, min_z(NC, n1 - jc - nc), pc, kc, &nb)
                    : pc + kc < K ? next_weights(J, m1 - m0, n0, min_z(NC, n1 - n0), pc + kc,
                                                 min_z(J->kc, K - pc - kc), &nb)
                                  : NULL;
                pack_b_block(J, jc, nc, pc, kc, bbuf);
                run_block(J, m0, m1, jc, nc, pc, kc, abuf, abuf, bbuf, 0, wn);
            }
        }
        return;
    }
    for (size_t jc = n0; jc < n1; jc += NC) {
        const size_t nc = min_z(NC, n1 - jc);
        for (size_t pc = 0; pc < K; pc += J->kc) {
            const size_t kc = min_z(J->kc, K - pc);
            if (job_cancelled(J)) return;
            /* next: the same columns' next K block, else the next column block */
            ahead_block nb;
            const ahead_block *wn =
                pc + kc < K ? next_weights(J, m1 - m0, jc, nc, pc + kc, min_z(J->kc, K - pc - kc), &nb)
                : jc + nc < n1 ? next_weights(J, m1 - m0, jc + nc, min_z(NC, n1 - jc - nc), 0,
                                              min_z(J->kc, K), &nb)
                               : NULL;
            pack_b_block(J, jc, nc, pc, kc, bbuf);
            run_block(J, m0, m1, jc, nc, pc, kc, NULL, abuf, bbuf, jc == n0, wn);
        }
    }
}

/* ---- threads ------------------------------------------------------------ */

/* Threads share a product out as tasks, rectangles of C claimed one at a
 * time from an atomic counter: a thread that starts late or is slowed by
 * another process does fewer, and no thread waits on a fixed share of
 * another's. A task is rows [m0, m1) x a run of NR-wide column tiles; rows
 * are split evenly (any row count), columns on tile boundaries. */
typedef struct task_grid {
    size_t pr, pn;   /* row parts x column parts */
    int shared_b;    /* B packed once for all threads (below) before the tasks */
} task_grid;

/* Tasks per thread the grid aims at (slack for uneven progress), and the
 * fewest multiply-adds a task (and a thread) is worth. */
#define TASKS_PER_THREAD 4
#define MIN_TASK_FMAS ((size_t)1 << 19)
#define STREAM_TASK_BYTES ((size_t)1 << 20)
/* How much more another pass over A costs than one over B when A is read
 * in place against a B read in place (plan_grid). */
#define A_WEIGHTS_COST 4
/* Largest B packed once and shared by all threads (bytes). */
#define SHARED_B_MAX ((size_t)6 << 20)

static size_t shared_b_bytes(const gemm_plan *P, size_t n, size_t k)
{
    return align64(round_up(n, P->cfg->nr) * k * sizeof(float));
}

/* B packed by every task that needs it would be packed more than once when
 * rows are split: with too few column tiles for the tasks wanted, B (if it
 * is small enough) is packed once instead, shared, as prepacked panels. */
static int want_shared_b(const gemm_plan *P, size_t m, size_t n, size_t k, int t)
{
    size_t tiles_n = (n + P->cfg->nr - 1) / P->cfg->nr;
    return t > 1 && tiles_n < (size_t)t * TASKS_PER_THREAD && m >= 2 * P->cfg->mr &&
           shared_b_bytes(P, n, k) <= SHARED_B_MAX;
}

/* The grid: starting from one task, double the row or the column parts,
 * whichever adds less traffic (another row part re-reads B, or packs it
 * again when each task packs its own; another column part re-reads A, or
 * copies it again), until there are TASKS_PER_THREAD per thread, a part
 * would be thinner than a tile, or a task smaller than MIN_TASK_FMAS. */
static task_grid plan_grid(const gemm_job *J, int t)
{
    const gemm_plan *P = J->plan;
    const size_t MR = P->cfg->mr, NR = P->cfg->nr;
    const size_t tiles_n = (J->n + NR - 1) / NR;
    task_grid g = {1, 1, 0};
    const int packs = J->bsrc == B_PACK || J->bsrc == B_GEN;
    g.shared_b = packs && want_shared_b(P, J->m, J->n, J->k, t);
    const int b_copied = packs && !g.shared_b;
    const double row_cost = (double)J->k * (double)J->n * (b_copied ? 2 : 1);
    /* A against a B read in place is a convolution's weights: they come
     * from memory, while B (the activations the layer before just wrote)
     * is in cache, so another read of A costs more than another of B
     * (ResNet-50's 1024 -> 256 layers on 14x14 at 2 threads split 8 x 1
     * instead of 4 x 2: 0.53 -> 0.49 ms; the whole model -3 %,
     * MobileNetV2 -4 %). So is an A read in place against a B packed once
     * and shared (a 1x1 convolution with more outputs, few positions: its
     * 1024 -> 512 layer on 14x14, 0.77 -> 0.66 ms; with many positions,
     * B packed by each task, 128 -> 512 on 28x28 was 5 % slower split by
     * rows). A prepacked B is a MatMul's weights instead. */
    const int a_weights = J->bsrc == B_DIRECT || (J->a_direct && g.shared_b);
    const double col_cost = (double)J->m * (double)J->k * (J->a_direct ? 1 : 2) *
                            (a_weights ? A_WEIGHTS_COST : 1);
    const size_t want = (size_t)t * TASKS_PER_THREAD, fmas = J->m * J->n * J->k;
    const size_t max_pr = J->m >= 2 * MR ? J->m / (2 * MR) : 1; /* parts of >= 2 tiles */
    /* Few rows against prepacked weights (block_cols streams them): one
     * column part per thread, all rows. Split 2 x 4 as the costs below
     * say, each row part read the thread's weights again, from memory,
     * and each task copied its rows of an aliasing A once more (a row
     * stride a multiple of 2 KiB: ViT-B/16's FFN output layer, 197 x 768
     * x 3072); in one process, ABBA, 2 threads, Intel Xeon VM: ViT-B/16
     * -1.8 / -3.2 %, BERT-base -2.6 / -2.8 %, the GPT-2-like decoder
     * -3.2 %, six CNNs within noise (ConvNeXt-T -2 %). Two column parts
     * per thread, which would leave some for a thread that is done first
     * to take, gained half as much (each part copies A again). */
    if (streams_weights(J, J->m)) {
        g.pn = (size_t)t < tiles_n ? (size_t)t : tiles_n;
        return g;
    }
    while (g.pr * g.pn < want && fmas / (g.pr * g.pn * 2) >= MIN_TASK_FMAS) {
        int can_r = g.pr * 2 <= max_pr, can_n = g.pn * 2 <= tiles_n;
        if (!can_r && !can_n) break;
        double cr = row_cost * (double)g.pr, cn = col_cost * (double)g.pn;
        if (can_r && (!can_n || cr <= cn)) g.pr *= 2;
        else g.pn *= 2;
    }
    return g;
}

static int threads_for(size_t m, size_t n, size_t k, const gemm_plan *P, int nthreads)
{
    size_t fmas = m * n * k;
    if (nthreads <= 1 || fmas < SERIAL_FMAS) return 1;
    size_t tiles = ((m + P->cfg->mr - 1) / P->cfg->mr) * ((n + P->cfg->nr - 1) / P->cfg->nr);
    size_t t = (size_t)onr_team_probe(nthreads); /* 1 while backed off (team.h) */
    if (tiles < t) t = tiles;
    /* a thread per MIN_TASK_FMAS multiply-adds, or per STREAM_TASK_BYTES of
     * B: a product of few rows streams B from memory, and two cores read
     * it faster even where its multiply-adds would not pay for a second
     * (ViT-B/16's 1-row classifier, 3 MB of weights: 0.23 ms on one
     * thread, where ORT's two took 0.14) */
    size_t worth = fmas / MIN_TASK_FMAS, stream = n * k * sizeof(float) / STREAM_TASK_BYTES;
    if (stream > worth) worth = stream;
    if (worth < t) t = worth > 1 ? worth : 1;
    return (int)t;
}

/* One thread's slot of the workspace: its A copy, its B block, its tail. */
static size_t thread_slot(const gemm_job *J)
{
    return onr_thread_stride(a_buf_bytes(J->plan, J->m, J->kc) +
                             b_buf_bytes(J->plan, J->n, J->kc) + t_buf_bytes(J->plan, J->kc));
}

static void thread_bufs(const gemm_job *J, void *ws, int tid, float **abuf, float **bbuf)
{
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    base += (size_t)tid * thread_slot(J);
    *abuf = (float *)base;
    *bbuf = (float *)(base + a_buf_bytes(J->plan, J->m, J->kc));
}

/* The shared B of a product on t threads: after the t per-thread slots. */
static float *shared_b_buf(const gemm_job *J, void *ws, int t)
{
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    return (float *)(base + (size_t)t * thread_slot(J));
}

/* Task ranges of a product: thread r first claims the tasks of range r (a
 * contiguous run of column parts), then those left in the others. */
#define GEMM_RANGES 64

typedef struct range_ctr {
    _Alignas(64) atomic_size_t next;
} range_ctr;

/* What the threads of one product share: the claim counters. */
typedef struct task_state {
    atomic_size_t next_pack, packed;
    range_ctr range[GEMM_RANGES];
} task_state;

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One thread's part of a product: claim B packing units (shared B), wait
 * until every unit is packed, then claim tasks until none is left. */
static void run_tasks(const gemm_job *J, const gemm_job *JB, const task_grid *g, task_state *st,
                      int tid, int nranges, float *shared, float *abuf, float *bbuf)
{
    const size_t NR = J->plan->cfg->nr, tiles_n = (J->n + NR - 1) / NR;
    if (g->shared_b) {
        /* units: one K block of one NR-wide panel, panel-major */
        const size_t kb = (J->k + J->kc - 1) / J->kc, units = tiles_n * kb;
        size_t u;
        while ((u = atomic_fetch_add_explicit(&st->next_pack, 1, memory_order_relaxed)) < units) {
            size_t pnl = u / kb, p0 = u % kb * J->kc, kc = min_z(J->kc, J->k - p0);
            size_t j0 = pnl * NR;
            job_pack_panel(J, p0, kc, j0, min_z(NR, J->n - j0), NR, shared + j0 * J->k + p0 * NR);
            atomic_fetch_add_explicit(&st->packed, 1, memory_order_release);
        }
        /* wait only for units another thread has claimed and not finished */
        for (unsigned spin = 0;
             atomic_load_explicit(&st->packed, memory_order_acquire) < units; spin++) {
            if (spin < 4096) cpu_relax();
            else sched_yield();
        }
    }
    /* Tasks in column-part-major order, cut into one contiguous range per
     * thread: on a quiet machine each thread computes the same columns of
     * C in every product (the columns of a convolution are output
     * positions), so the next layer mostly reads what its own core wrote
     * and cache lines need not cross between cores (costly where the cores
     * share no cache). A thread whose range is done takes what is left of
     * the others', so a slow or descheduled thread does less. */
    const size_t tasks = g->pr * g->pn, R = (size_t)nranges;
    for (size_t k = 0; k < R; k++) {
        size_t r = ((size_t)tid + k) % R, end = (r + 1) * tasks / R, i;
        while ((i = atomic_fetch_add_explicit(&st->range[r].next, 1, memory_order_relaxed)) < end) {
            size_t rp = i % g->pr, cp = i / g->pr;
            size_t m0 = rp * J->m / g->pr, m1 = (rp + 1) * J->m / g->pr;
            size_t n0 = cp * tiles_n / g->pn * NR, n1 = min_z((cp + 1) * tiles_n / g->pn * NR, J->n);
            if (m0 < m1 && n0 < n1) run_region(JB, m0, m1, n0, n1, abuf, bbuf);
        }
    }
}

/* The K split: a product of few rows (C small) against a long B read in
 * place (a 1x1 convolution's input channels: ResNet-50's 1024 -> 256
 * layers on 14x14, MobileNetV2's 576 -> 96) on as many threads as it has
 * K blocks: thread i multiplies K block i only, into C (i = 0) or a
 * partial product of its own, and after a barrier each thread adds the
 * partial products into its share of C's rows in block order and applies
 * the epilogue, through the kernel's own finishing code (finish). The
 * layer before wrote B's rows (its output channels) split the same way
 * between the threads, so each thread reads the rows its own core wrote;
 * split by rows or columns of C each read all of B, half of it from the
 * other core's cache: 96 x 196 x 576 at 2 threads took 0.092 ms on a B
 * already in both caches, 0.123-0.139 on one the two threads had just
 * written (Intel Xeon VM), and the model's layer as much; split by K,
 * 0.088-0.093 either way (256 x 196 x 1024: 0.42 -> 0.37). The models at
 * 2 threads (tools/bench-compare, 7 rounds, with k_block's halves):
 * MobileNetV2 -6.2 %, ResNet-50 -3.1 %, EfficientNet-B0 -1.1 %; at 1
 * thread within 1 %. The sums are those of one thread (each K block into
 * C in turn, the same code after them), so the bits are the same at any
 * thread count. Only as many threads as K blocks: with more blocks per
 * thread a thread's own sum of two blocks would change the order. 1: no
 * split. */
static size_t ksplit_parts(const gemm_plan *P, size_t m, size_t n, size_t k, int fixed_shape,
                           size_t t)
{
    if (t < 2 || !P->cfg->finish || 2 * m > k) return 1;
    const size_t nk = k_blocks(P, m, k, fixed_shape);
    if (nk != t || m * n * k < t * 4 * MIN_TASK_FMAS) return 1;
    return nk;
}

/* The parts' partial products (all but thread 0's, which is C): m x n each. */
static size_t ksplit_bytes(size_t m, size_t n, size_t parts)
{
    return (parts - 1) * align64(m * n * sizeof(float));
}

static atomic_size_t g_ksplit_count;
size_t onr_sgemm_ksplit_count(void)
{
    return atomic_load_explicit(&g_ksplit_count, memory_order_relaxed);
}

static void run_ksplit(const gemm_job *J, void *ws, int t)
{
    atomic_fetch_add_explicit(&g_ksplit_count, 1, memory_order_relaxed);
    float *part = shared_b_buf(J, ws, t);
    const size_t pstride = align64(J->m * J->n * sizeof(float)) / sizeof(float);
    const size_t MR = J->plan->cfg->mr, NR = J->plan->cfg->nr;
    onr_team_region reg;
    onr_team_begin(&reg);
#pragma omp parallel num_threads(t)
    {
        int64_t w0 = onr_team_work_start(&reg);
        const int tid = omp_get_thread_num();
        float *abuf, *bbuf;
        thread_bufs(J, ws, tid, &abuf, &bbuf);
        /* K block tid: into C (with the caller's beta) or partial tid */
        gemm_job S = *J;
        const size_t pc = (size_t)tid * J->kc, kc = min_z(J->kc, J->k - pc);
        S.a = J->trans_a ? J->a + pc * J->lda : J->a + pc;
        S.b = J->b + pc * J->ldb;
        S.k = S.kc = kc;
        S.ep = NULL;
        S.a_next = NULL;
        if (tid > 0) {
            S.c = part + (size_t)(tid - 1) * pstride;
            S.ldc = J->n;
            S.beta = 0.f;
        }
        run_region(&S, 0, J->m, 0, J->n, abuf, bbuf);
#pragma omp barrier
        /* C += the partials in block order, the epilogue with the last; a
         * thread's rows in whole tiles */
        const size_t tiles_m = (J->m + MR - 1) / MR;
        const size_t i0 = (size_t)tid * tiles_m / (size_t)t * MR;
        const size_t i1 = min_z((size_t)(tid + 1) * tiles_m / (size_t)t * MR, J->m);
        for (int q = 1; q < t && !job_cancelled(J); q++) {
            const float *pp = part + (size_t)(q - 1) * pstride;
            const int lastp = q == t - 1;
            for (size_t i = i0; i < i1; i += MR)
                for (size_t j = 0; j < J->n; j += NR) {
                    onr_sgemm_tile_epi te;
                    J->plan->cfg->finish(min_z(MR, J->m - i), min_z(NR, J->n - j), 0, NULL, 0,
                                         pp + i * J->n + j, J->n, J->c + i * J->ldc + j, J->ldc,
                                         1.f, 1.f, tile_epi(J, lastp, i, j, &te));
                }
        }
        onr_team_work_done(&reg, w0);
    }
    onr_team_end(&reg);
}

/* One product on up to nthreads threads. Which thread computes which part
 * of C never changes a result: every element is the same sequence of
 * operations (K blocks fixed by the shape, added into C in order, also
 * by the K split). */
static void run_job(const gemm_job *J, void *ws, int nthreads)
{
    if (J->m == 0 || J->n == 0) return;
    if (J->k == 0) {
        scale_only(J);
        return;
    }
    int t = threads_for(J->m, J->n, J->k, J->plan, nthreads);
    if (t == 1) {
        float *abuf, *bbuf;
        thread_bufs(J, ws, 0, &abuf, &bbuf);
        run_region(J, 0, J->m, 0, J->n, abuf, bbuf);
        return;
    }
    if (J->bsrc == B_DIRECT &&
        ksplit_parts(J->plan, J->m, J->n, J->k, J->fixed_shape, (size_t)t) == (size_t)t) {
        run_ksplit(J, ws, t);
        return;
    }
    const task_grid g = plan_grid(J, t);
    float *shared = g.shared_b ? shared_b_buf(J, ws, t) : NULL;
    gemm_job JB = *J;
    if (g.shared_b) { /* the tasks read the shared panels as prepacked B */
        JB.bsrc = B_PREPACKED;
        JB.b = shared;
        JB.panel_w = J->plan->cfg->nr;
        JB.panel_k = J->k;
        JB.trans_b = 0;
    }
    task_state st;
    atomic_init(&st.next_pack, 0);
    atomic_init(&st.packed, 0);
    const int nranges = t < GEMM_RANGES ? t : GEMM_RANGES;
    const size_t tasks = g.pr * g.pn;
    for (int r = 0; r < nranges; r++) atomic_init(&st.range[r].next, (size_t)r * tasks / (size_t)nranges);
    onr_team_region reg; /* what the threads gained (team.h) */
    onr_team_begin(&reg);
#pragma omp parallel num_threads(t)
    {
        int64_t w0 = onr_team_work_start(&reg);
        int tid = omp_get_thread_num();
        float *abuf, *bbuf;
        thread_bufs(J, ws, tid, &abuf, &bbuf);
        run_tasks(J, &JB, &g, &st, tid % nranges, nranges, shared, abuf, bbuf);
        onr_team_work_done(&reg, w0);
    }
    onr_team_end(&reg);
}

/* No workspace: a slow, allocation-free path (one dot product per
 * element), kept only so a NULL workspace is never a crash. */
static float b_at(const gemm_job *J, size_t p, size_t j)
{
    if (J->bsrc == B_PREPACKED) {
        size_t w = J->panel_w;
        return J->b[(j / w) * J->panel_k * w + p * w + j % w];
    }
    if (J->bsrc == B_GEN) {
        float v;
        J->gen(J->gen_ctx, p, 1, j, 1, &v, 1);
        return v;
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
    J->fixed_shape = ep && ep->fixed_shape;
    J->kc = k_block(P, m, k, J->fixed_shape);
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
    /* only fixed_shape: no epilogue to apply */
    J->ep = ep && !ep->bias_col && !ep->bias_row && ep->act == ONR_ACT_NONE && !ep->residual
                ? NULL
                : ep;
    J->panel_w = 0;
    J->panel_k = k;
    J->gen = NULL;
    J->gen_ctx = NULL;
    J->cancel = g_cancel; /* the calling thread's: every thread of the product reads it here */
    J->a_next = NULL;
    /* Row-major A is read in place unless its rows would alias in L1
     * (a row stride that is a multiple of 2 KiB). */
    J->a_direct = !trans_a && lda % 512 != 0;
    /* Few rows of A: packing B would cost as much as using it, so read it
     * in place (the kernels' masked tails keep inside its rows). Likewise,
     * where B's rows do not alias in L1 (a row stride that is not a multiple
     * of 1 KiB), a B small enough to stay in L2 whole (attention's K^T and
     * V), and any B against at most B_DIRECT_ROWS rows: packing is one more
     * pass over B (read and write) that so few row tiles do not earn back
     * (1x1 convolutions with 64-256 output channels ran 5-19 % faster
     * reading the activations in place, with both kernels; at 512 rows it
     * is even). */
    J->bsrc = (!trans_b && (m <= 2 * P->cfg->mr ||
                            (ldb % 256 != 0 && (m <= B_DIRECT_ROWS ||
                                                k * n * sizeof(float) <= g_l2 / 4))))
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

void onr_sgemm_gen(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, onr_sgemm_bgen gen, void *gen_ctx, float beta, float *c,
                   size_t ldc, const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    gemm_job J;
    init_job(&J, active_plan(), trans_a, 0, m, n, k, alpha, a, lda, NULL, 0, beta, c, ldc, ep);
    J.bsrc = B_GEN;
    J.gen = gen;
    J.gen_ctx = gen_ctx;
    if (!workspace) run_unpacked(&J);
    else run_job(&J, workspace, nthreads);
}

size_t onr_sgemm_packed_width(const void *packed_b)
{
    pack_header h;
    memcpy(&h, packed_b, sizeof h);
    return h.nr;
}

int onr_sgemm_packed_is_amx(const void *packed_b)
{
    pack_header h;
    memcpy(&h, packed_b, sizeof h);
    return h.amx != 0;
}

/* ---- weights as AMX terms ---------------------------------------------- */

/* K steps (of 32) per block of the AMX tasks: their sums go to the task's
 * buffer between blocks */
#define AMX_KCB ((size_t)ONR_AMX_KCB)

/* Columns per task: AMX_NCH, or AMX_NCH_MAX over a long K (a task re-reads
 * all of A' whose rows it computes, 3.6 MB on ViT-B/16's 197 x 3072 ->
 * 768 layer: fewer, wider tasks read it fewer times). Never depends on the
 * thread count. */
static size_t amx_nch(const gemm_job *J) { return J->k >= 2048 ? AMX_NCH_MAX : AMX_NCH; }

/* An AMX task: rows [m0, m1) x columns [n0, n1) of C (m0, n0 multiples
 * of 32; at most AMX_RP x amx_nch). */
typedef struct amx_rect {
    size_t m0, m1, n0, n1;
} amx_rect;

/* A task: 32 x 32 blocks of C, K block by K block; in each, column block
 * by column block, B' of it (bp's, or split into bs from the float panels
 * of prepacked weights), then every row block of the task against it (A'
 * from ap), and the last K block's sums through the float32 kernel's own
 * finishing code (alpha, beta, the epilogue: finish). Every element is
 * the same sequence of operations whichever task computes it. Prepacked
 * weights stay float32 in memory (4 bytes a value where terms take 6):
 * few rows of A leave the product waiting on them as they come from
 * memory once (a transformer's tokens), and the kernel calls of a column
 * block meanwhile fetch the same panel's next K block (or the next task's
 * first) towards L2, each its share, spread between its tile products: all
 * of it at the start of the first call stalled the core on its fill
 * buffers (64 x 768 x 50257, GPT-2's LM head: 30.5 -> 25.5 ms at 1
 * thread, 16 -> 13.5 at 2; 12 layers of its products 5.8 -> 5.2 ms a
 * layer at 1 thread). */
/* Prepacked weights' float panel of column j (32 wide), from K step ks */
static inline const float *amx_panel(const gemm_job *J, size_t j, size_t ks)
{
    return J->b + (j / ONR_AMX_MB) * J->k * ONR_AMX_MB + ks * ONR_AMX_KS * ONR_AMX_MB;
}

/* Share idx of parts kernel calls that fetch bytes from base between
 * them: its start (NULL: past the end) and *step, the bytes a K step of
 * its nkb fetches (a multiple of 64). */
static const char *amx_fetch_share(const char *base, size_t bytes, size_t parts, size_t idx,
                                   size_t nkb, size_t *step)
{
    const size_t share = round_up((bytes + parts - 1) / parts, (size_t)64 * nkb);
    *step = 0;
    if (idx * share >= bytes) return NULL;
    *step = round_up(min_z(share, bytes - idx * share), (size_t)64 * nkb) / nkb;
    return base + idx * share;
}

static void amx_task(const gemm_job *J, const uint16_t *ap, const uint16_t *bp, amx_rect r,
                     const amx_rect *next, float *sums, uint16_t *bs)
{
    const size_t K = J->k, KB = (K + ONR_AMX_KS - 1) / ONR_AMX_KS, MR = J->plan->cfg->mr;
    const size_t JB = (J->n + ONR_AMX_MB - 1) / ONR_AMX_MB, KS = AMX_KCB * ONR_AMX_KS;
    const size_t NCH = amx_nch(J); /* the sums' row stride */
    uint16_t *buf[2] = {bs, bs + AMX_KCB * ONR_AMX_BLOCK};
    /* A last row block of a few rows (ViT-B/16's 197 = 6 x 32 + 5) costs
     * AMX half a block of tile products whatever its rows (a tile product
     * takes the same time for 1 to 16 rows, measured): with weights read
     * as float panels and A row-major, the float32 kernel does it in
     * proportion to its rows, from the panel the tiles just used. Up to
     * half the kernel's MR rows (12 rows of ViT's products: 5 rows 0.5-3 %
     * faster that way, 8 and more 1-4 % slower). SIZE_MAX: no such block. */
    const size_t tail = (r.m1 - r.m0) % ONR_AMX_MB;
    const size_t fma_row = !bp && !J->trans_a && tail && tail <= MR / 2 ? r.m1 - tail : SIZE_MAX;
    /* the task splits B' from float panels (some row block is on AMX) */
    const int splits = !bp && fma_row != r.m0;
    /* kernel calls per column block (row blocks on AMX), which share the
     * fetch of the weights' next K block between them */
    const size_t amx_calls = (r.m1 - r.m0 + ONR_AMX_MB - 1) / ONR_AMX_MB - (fma_row != SIZE_MAX);
    for (size_t kb0 = 0; kb0 < KB; kb0 += AMX_KCB) {
        const size_t nkb = min_z(AMX_KCB, KB - kb0);
        const int last = kb0 + nkb == KB;
        if (job_cancelled(J)) return;
        if (splits) /* the first column block's B'; the kernels split the others */
            onr_amx_split_panel(amx_panel(J, r.n0, kb0), K - kb0 * ONR_AMX_KS, nkb, buf[0]);
        for (size_t j = r.n0, jj = 0; j < r.n1; j += ONR_AMX_MB, jj++) {
            const uint16_t *bj = bp ? bp + onr_amx_b_offset(KB, JB, j / ONR_AMX_MB, kb0) : buf[jj & 1];
            onr_amx_split nx = {0};
            const char *pf = NULL;
            size_t pf_bytes = 0;
            if (splits) {
                if (j + ONR_AMX_MB < r.n1)
                    nx = (onr_amx_split){amx_panel(J, j + ONR_AMX_MB, kb0), K - kb0 * ONR_AMX_KS,
                                         nkb, buf[(jj + 1) & 1]};
                /* fetch this panel's next K block, else the next task's */
                size_t pf_rows = 0;
                if (!last) {
                    pf = (const char *)amx_panel(J, j, kb0 + nkb);
                    pf_rows = min_z(KS, K - (kb0 + nkb) * ONR_AMX_KS);
                } else if (next && next->n0 + (j - r.n0) < next->n1) {
                    pf = (const char *)amx_panel(J, next->n0 + (j - r.n0), 0);
                    pf_rows = min_z(KS, K);
                }
                pf_bytes = pf_rows * ONR_AMX_MB * sizeof(float);
            }
            for (size_t i = r.m0, call = 0; i < r.m1; i += ONR_AMX_MB) {
                const int first = i == r.m0;
                /* this call's share of the fetches */
                const char *pfc = NULL;
                size_t pfc_step = 0;
                if (pf && i != fma_row)
                    pfc = amx_fetch_share(pf, pf_bytes, amx_calls, call, nkb, &pfc_step);
                if (i != fma_row) call++;
                const size_t ni = last && next ? next->m0 + (i - r.m0) : i; /* rows to fetch */
                if (bp && (!last || (next && ni < next->m1))) {
                    /* A' prepacked (a convolution's weights, 6 bytes a
                     * value, from memory): this row block's next K block,
                     * else the next task's first, shared by the column
                     * blocks (ResNet-50 54.0 -> 51.2 ms at 1 thread, 30.4
                     * -> 29.0 at 2: its 1x1 layers on 14 x 14 0.1 ms faster
                     * each; the next task's, 51.3 -> 50.8 and 29.1 -> 28.7) */
                    const size_t fk = last ? 0 : kb0 + nkb;
                    const uint16_t *blk = ap + ((ni / ONR_AMX_MB) * KB + fk) * ONR_AMX_BLOCK;
                    pfc = amx_fetch_share((const char *)blk,
                                          min_z(AMX_KCB, KB - fk) * ONR_AMX_BLOCK * sizeof(uint16_t),
                                          (r.n1 - r.n0 + ONR_AMX_MB - 1) / ONR_AMX_MB, jj, nkb,
                                          &pfc_step);
                }
                float *sum = sums + (i - r.m0) * NCH + (j - r.n0);
                const size_t rows = min_z(ONR_AMX_MB, r.m1 - i), cols = min_z(ONR_AMX_MB, r.n1 - j);
                if (i == fma_row) /* the last few rows: float32 FMAs on the panel just read */
                    J->plan->cfg->ukernel(rows, cols, min_z(KS, K - kb0 * ONR_AMX_KS),
                                          J->a + i * J->lda + kb0 * ONR_AMX_KS, J->lda,
                                          amx_panel(J, j, kb0), ONR_AMX_MB, sum, NCH, 1.f,
                                          kb0 > 0 ? 1.f : 0.f, NULL);
                else
                    onr_amx_kernel(ap + ((i / ONR_AMX_MB) * KB + kb0) * ONR_AMX_BLOCK, bj, nkb, sum,
                                   NCH, kb0 > 0, pfc, pfc_step,
                                   first && nx.p ? &nx : NULL, rows <= 16);
                if (!last) continue;
                for (size_t q = 0; q < rows; q += MR) {
                    onr_sgemm_tile_epi te;
                    J->plan->cfg->finish(min_z(MR, rows - q), cols, 0, NULL, 0, sum + q * NCH,
                                         NCH, J->c + (i + q) * J->ldc + j, J->ldc, J->alpha,
                                         J->beta, tile_epi(J, 1, i + q, j, &te));
                }
            }
        }
    }
}

/* Task i of the columns [n0, n1): row parts of AMX_RP rows, column parts
 * of amx_nch from n0. Prepacked B (weights) of more than half the L2 (the
 * transformers' layers) in column-part-major order, so that tasks after
 * one another share them and they come from memory once; otherwise
 * row-part-major: prepacked A' (a convolution's weights) is then shared
 * the same way, and each thread's range of tasks is a range of rows,
 * those its core packed and those the next layer's same thread reads (as
 * run_tasks). A' in column-part-major order gave each of 2 threads one
 * column part, unequal where the columns end in a narrower part (ResNet's
 * 1024 x 256 x 196: 4 and 3 column blocks, 0.29 ms at 2 threads, 0.26
 * row-part-major). */
static amx_rect amx_task_rect(const gemm_job *J, size_t n0, size_t n1, size_t i)
{
    const size_t NCH = amx_nch(J);
    const size_t pr = (J->m + AMX_RP - 1) / AMX_RP, pn = (n1 - n0 + NCH - 1) / NCH;
    const int rows_first = J->bsrc != B_PREPACKED || J->n * J->k * sizeof(float) <= g_l2 / 2;
    const size_t rp = rows_first ? i / pn : i % pr, cp = rows_first ? i % pn : i / pr;
    amx_rect r = {rp * AMX_RP, min_z(J->m, rp * AMX_RP + AMX_RP), n0 + cp * NCH,
                  min_z(n1, n0 + cp * NCH + NCH)};
    return r;
}

static size_t amx_task_count(const gemm_job *J, size_t n0, size_t n1)
{
    return ((J->m + AMX_RP - 1) / AMX_RP) * ((n1 - n0 + amx_nch(J) - 1) / amx_nch(J));
}

/* The tasks of columns [n0, n1) on nranges threads: thread tid first takes
 * its own contiguous range of tasks (next: the claim counters; NULL: one
 * thread, every task in order), then what is left of the others'. */
static void amx_tasks(const gemm_job *J, const uint16_t *ap, const uint16_t *bp, size_t n0,
                      size_t n1, range_ctr *next, int tid, int nranges, float *sums)
{
    uint16_t *bs = (uint16_t *)((char *)sums + AMX_SUMS_BYTES); /* the thread's split B' */
    const size_t T = amx_task_count(J, n0, n1), R = next ? (size_t)nranges : 1;
    onr_amx_tiles_on();
    for (size_t q = 0; q < R; q++) {
        const size_t rg = ((size_t)tid + q) % R, end = (rg + 1) * T / R;
        size_t i = next ? atomic_fetch_add_explicit(&next[rg].next, 1, memory_order_relaxed) : 0;
        while (i < end) {
            const size_t nx = next ? atomic_fetch_add_explicit(&next[rg].next, 1, memory_order_relaxed)
                                   : i + 1;
            amx_rect after;
            if (nx < end) after = amx_task_rect(J, n0, n1, nx);
            amx_task(J, ap, bp, amx_task_rect(J, n0, n1, i), nx < end ? &after : NULL, sums, bs);
            i = nx;
        }
    }
    onr_amx_tiles_off();
}

/* Blocks [u0, u1) of the operand a product packs itself: B' column blocks
 * (pack_b) or A' row blocks. Nonzero if a value is not finite. */
static int amx_pack_own(const gemm_job *J, int pack_b, size_t u0, size_t u1, uint16_t *dst)
{
    if (pack_b) return onr_amx_pack_b(J->trans_b, J->k, J->n, J->b, J->ldb, u0, u1, dst);
    return onr_amx_pack_a(J->trans_a, J->a, J->lda, J->m, J->k, u0, u1, dst);
}

static atomic_size_t g_amx_count;
size_t onr_sgemm_amx_count(void) { return atomic_load_explicit(&g_amx_count, memory_order_relaxed); }

/* Columns [n0, n1) of a product on prepacked A' (a convolution's
 * weights), a column part at a time: its B' packed, then its tasks, while
 * that B' is still in L2 (packed all first, a 56 x 56 layer's B' went to
 * memory and back: 256 inputs, 4.8 MB). Nonzero at the first column part
 * whose B' holds a value that is not finite, the parts before it written. */
static int amx_stream_cols(const gemm_job *J, const uint16_t *ap, uint16_t *own, size_t n0,
                           size_t n1, float *sums)
{
    const size_t NCH = amx_nch(J);
    for (size_t c0 = n0; c0 < n1; c0 += NCH) {
        const size_t c1 = min_z(n1, c0 + NCH);
        if (amx_pack_own(J, 1, c0 / ONR_AMX_MB, (c1 + ONR_AMX_MB - 1) / ONR_AMX_MB, own)) return 1;
        amx_tasks(J, ap, own, c0, c1, NULL, 0, 1, sums);
    }
    return 0;
}

/* Rows [m0, m1) of columns [n0, n1) (one column block) on B' in bp. */
static void amx_rows(const gemm_job *J, const uint16_t *ap, const uint16_t *bp, size_t n0,
                     size_t n1, size_t m0, size_t m1, float *sums)
{
    uint16_t *bs = (uint16_t *)((char *)sums + AMX_SUMS_BYTES);
    onr_amx_tiles_on();
    for (size_t i = m0; i < m1; i += AMX_RP) {
        amx_rect r = {i, min_z(m1, i + AMX_RP), n0, n1};
        amx_task(J, ap, bp, r, NULL, sums, bs);
    }
    onr_amx_tiles_off();
}

/* Rows [m0, m1) of a product on prepacked A' with beta 0, a column part
 * at a time, B' of each packed into `mine` (this thread's). */
static int amx_rows_own(const gemm_job *J, const uint16_t *ap, uint16_t *mine, size_t m0,
                        size_t m1, float *sums)
{
    const size_t NCH = amx_nch(J);
    for (size_t c0 = 0; c0 < J->n; c0 += NCH) {
        gemm_job S;
        onr_gemm_epilogue e;
        job_cols(J, c0, min_z(J->n, c0 + NCH), c0, &S, &e);
        if (onr_amx_pack_b(0, S.k, S.n, S.b, S.ldb, 0, (S.n + ONR_AMX_MB - 1) / ONR_AMX_MB, mine))
            return 1;
        amx_rows(&S, ap, mine, 0, S.n, m0, m1, sums);
    }
    return 0;
}

/* A thread's share of a product on prepacked A' with beta 0: the blocks
 * [p0, p1) of the product's row blocks of 32 taken column block by column
 * block (block p: column block p / RB, row block p % RB). A column block
 * split between threads is packed by each: into `own` (at its place in
 * all of B') by the thread that has its first rows, into `mine` (alone,
 * as the B' of a product of its columns only) by any other. So that the
 * threads share only A', their work within a row block of each other
 * whatever the column blocks: ResNet's 1024 x 256 x 196 and MobileNetV2's
 * 96 x 576 x 196 (7 column blocks, 4 and 3 a thread by whole blocks). */
static int amx_stream_share(const gemm_job *J, const uint16_t *ap, uint16_t *own, uint16_t *mine,
                            size_t p0, size_t p1, float *sums)
{
    const size_t RB = (J->m + ONR_AMX_MB - 1) / ONR_AMX_MB;
    size_t u = p0 / RB;
    const size_t r0 = p0 % RB, ue = (p1 - 1) / RB, re = (p1 - 1) % RB + 1;
    if (r0) { /* the first block's last rows: its columns as a product of their own */
        gemm_job S;
        onr_gemm_epilogue e;
        job_cols(J, u * ONR_AMX_MB, min_z(J->n, (u + 1) * ONR_AMX_MB), u * ONR_AMX_MB, &S, &e);
        if (onr_amx_pack_b(0, S.k, S.n, S.b, S.ldb, 0, 1, mine)) return 1;
        const size_t m1 = min_z(J->m, (u == ue ? re : RB) * ONR_AMX_MB);
        amx_rows(&S, ap, mine, 0, S.n, r0 * ONR_AMX_MB, m1, sums);
        if (u == ue) return 0;
        u++;
    }
    const size_t whole = re == RB ? ue + 1 : ue; /* blocks [u, whole) all rows */
    if (u < whole &&
        amx_stream_cols(J, ap, own, u * ONR_AMX_MB, min_z(J->n, whole * ONR_AMX_MB), sums))
        return 1;
    if (re < RB) { /* the last block's first rows */
        if (amx_pack_own(J, 1, ue, ue + 1, own)) return 1;
        amx_rows(J, ap, own, ue * ONR_AMX_MB, min_z(J->n, (ue + 1) * ONR_AMX_MB), 0,
                 re * ONR_AMX_MB, sums);
    }
    return 0;
}

/* How run_amx's threads split a product:
 *  - AMX_SPLIT_TASKS: the packing of the operand it packs split evenly,
 *    then the tasks from a shared counter (or, A' prepacked with beta 1
 *    and enough column blocks, each thread packs and runs its columns);
 *  - AMX_SPLIT_ROWS: each thread its share of the row blocks (a
 *    convolution's output channels), packing all of B' itself a column
 *    part at a time (amx_rows_own);
 *  - AMX_SPLIT_BLOCKS: each thread its share of the row blocks taken
 *    column block by column block (amx_stream_share).
 * Products on prepacked A' with beta 0 (convolutions) split by blocks,
 * so that each thread reads only the B' it packed and its work is within
 * a row block of the others' (by whole column blocks, 7 of them went 4 and
 * 3, and by tasks, B' went between the cores: at 2 threads 96 x 576 x 196
 * 0.086 -> 0.074 ms, 256 x 1024 x 196 0.331 -> 0.273, 160 x 960 x 49
 * 0.104 -> 0.062; ResNet-50's 1024 x 256 x 196 as fast either way), or
 * by rows where there are at least 4 row blocks a thread, few columns (at
 * most AMX_ROWS_MAX_N) and at least twice as many rows as K (expansions):
 * the next layer's threads (a depthwise layer's channels) then find their
 * inputs in their own core's cache, and B' is small enough for each
 * thread to pack it all. MobileNetV2 at 2 threads, by rows against by
 * blocks: its expansions 384 x 64 x 196 0.066 -> 0.042 ms, 576 x 96 x 196
 * 0.106 -> 0.078, 960 x 160 x 49 0.088 -> 0.065, the depthwise layers
 * after them 0.005-0.01 ms faster each; the model 4.05 -> 3.72 ms. Not
 * reductions: ResNet-50's 1024 -> 256 layers on 14 x 14 by rows left both
 * cores holding all of X, which the block's last layer then writes over
 * (in place of its residual): that layer 0.33 -> 0.38 ms at 2 threads,
 * five times in the model. By tasks where the rows are many against the
 * columns and the tasks enough for all: A' is then read once, B' is the
 * smaller. The split never changes a result: every element is the same
 * sequence of operations whichever thread computes it. */
enum { AMX_SPLIT_TASKS, AMX_SPLIT_ROWS, AMX_SPLIT_BLOCKS };
#define AMX_ROWS_MAX_N 256
static int amx_split_for(const gemm_job *J, int stream, size_t RB, int t)
{
    if (!stream || J->trans_b) return AMX_SPLIT_TASKS;
    if (RB >= 4 * (size_t)t && J->n <= AMX_ROWS_MAX_N && J->m >= 2 * J->k) return AMX_SPLIT_ROWS;
    if (J->m > 2 * J->n && amx_task_count(J, 0, J->n) >= 4 * (size_t)t) return AMX_SPLIT_TASKS;
    return AMX_SPLIT_BLOCKS;
}

/* A product on AMX, one operand prepacked (weights): A' as terms (ap_pre,
 * a convolution's), then B' is packed from J->b; or B as float panels
 * (J->bsrc B_PREPACKED, a MatMul's), split as the tasks read it, then A'
 * is packed from J->a. That packing is shared by all threads (its blocks
 * split evenly), then the tasks; or, on A' with C not read (beta 0), each
 * thread packs and runs its columns a part at a time (amx_stream_cols).
 * Returns nonzero if the packed operand holds a value that is not finite,
 * having written nothing where beta is not 0 (where it is, C may be
 * partly written): the caller then runs the float32 path. */
static int run_amx(const gemm_job *J, const uint16_t *ap_pre, void *ws, int nthreads)
{
    atomic_fetch_add_explicit(&g_amx_count, 1, memory_order_relaxed);
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    uint16_t *own = (uint16_t *)base;
    const size_t packed = ap_pre ? J->n : J->m; /* columns of B' or rows of A' */
    float *sums0 = (float *)(base + amx_terms_bytes(packed, J->k));
    const uint16_t *ap = ap_pre ? ap_pre : own, *bp = ap_pre ? own : NULL;
    const size_t units = (packed + ONR_AMX_MB - 1) / ONR_AMX_MB;
    const int stream = ap_pre && J->beta == 0.f;
    const size_t RB = (J->m + ONR_AMX_MB - 1) / ONR_AMX_MB, blocks = units * RB;
    int t = threads_for(J->m, J->n, J->k, J->plan, nthreads);
    const int split = amx_split_for(J, stream, RB, t);
    const size_t parts = split == AMX_SPLIT_ROWS     ? RB
                         : split == AMX_SPLIT_BLOCKS ? blocks
                                                     : amx_task_count(J, 0, J->n);
    if ((size_t)t > parts) t = (int)parts;
    if (t <= 1) {
        if (stream) return amx_stream_cols(J, ap, own, 0, J->n, sums0);
        if (amx_pack_own(J, ap_pre != NULL, 0, units, own)) return 1;
        amx_tasks(J, ap, bp, 0, J->n, NULL, 0, 1, sums0);
        return 0;
    }
    atomic_int bad;
    atomic_init(&bad, 0);
    /* with beta 1, A' prepacked and enough column blocks: each thread
     * packs its own columns' B' and runs their tasks (no B' crosses
     * between cores) */
    const int by_cols = ap_pre && units >= AMX_COLS_PER_THREAD * (size_t)t;
    const size_t tasks = amx_task_count(J, 0, J->n);
    const int nranges = t < GEMM_RANGES ? t : GEMM_RANGES;
    range_ctr next[GEMM_RANGES];
    for (int r = 0; r < nranges; r++) atomic_init(&next[r].next, (size_t)r * tasks / (size_t)nranges);
    onr_team_region reg;
    onr_team_begin(&reg);
#pragma omp parallel num_threads(t)
    {
        int64_t w0 = onr_team_work_start(&reg);
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        float *sums = (float *)((char *)sums0 + (size_t)tid * amx_sums_stride());
        /* the blocks it packs; by_cols: its columns */
        const size_t u0 = (size_t)tid * units / (size_t)nt, u1 = (size_t)(tid + 1) * units / (size_t)nt;
        const size_t n0 = u0 * ONR_AMX_MB, n1 = min_z(J->n, u1 * ONR_AMX_MB);
        /* this thread's B' of a part of the columns (AMX_SPLIT_ROWS) or
         * of the column block it shares (AMX_SPLIT_BLOCKS) */
        uint16_t *mine = (uint16_t *)((char *)sums0 + (size_t)t * amx_sums_stride() +
                                      (size_t)tid * amx_part_bytes(J->k));
        if (split == AMX_SPLIT_ROWS) {
            const size_t r0 = (size_t)tid * RB / (size_t)nt, r1 = (size_t)(tid + 1) * RB / (size_t)nt;
            if (r0 < r1 &&
                amx_rows_own(J, ap, mine, r0 * ONR_AMX_MB, min_z(J->m, r1 * ONR_AMX_MB), sums))
                atomic_store_explicit(&bad, 1, memory_order_relaxed);
        } else if (split == AMX_SPLIT_BLOCKS) {
            const size_t p0 = (size_t)tid * blocks / (size_t)nt, p1 = (size_t)(tid + 1) * blocks / (size_t)nt;
            if (p0 < p1 && amx_stream_share(J, ap, own, mine, p0, p1, sums))
                atomic_store_explicit(&bad, 1, memory_order_relaxed);
        } else {
            if (amx_pack_own(J, ap_pre != NULL, u0, u1, own))
                atomic_store_explicit(&bad, 1, memory_order_relaxed);
#pragma omp barrier
            const int ok = !atomic_load_explicit(&bad, memory_order_relaxed);
            if (ok && by_cols && n0 < n1) amx_tasks(J, ap, bp, n0, n1, NULL, 0, 1, sums);
            else if (ok && !by_cols) amx_tasks(J, ap, bp, 0, J->n, next, tid % nranges, nranges, sums);
        }
        onr_team_work_done(&reg, w0);
    }
    onr_team_end(&reg);
    return atomic_load_explicit(&bad, memory_order_relaxed);
}

/* The job of a product with prepacked B (onr_sgemm_packed and its column
 * ranges). */
static void init_packed_job(gemm_job *J, int trans_a, size_t m, size_t n, size_t k, float alpha,
                            const float *a, size_t lda, const void *packed_b, float beta,
                            float *c, size_t ldc, const onr_gemm_epilogue *ep)
{
    pack_header h;
    memcpy(&h, packed_b, sizeof h);
    const size_t w = h.nr;
    const gemm_plan *P = active_plan();
    /* Packed for another kernel (one forced since): its panels still work
     * for any kernel whose NR divides their width; the reference one's does. */
    if (w % P->cfg->nr != 0) P = &g_plans[CFG_REF];
    init_job(J, P, trans_a, 0, m, n, k, alpha, a, lda,
             (const float *)((const char *)packed_b + sizeof(pack_header)), 0, beta, c, ldc, ep);
    J->bsrc = B_PREPACKED;
    J->panel_w = w;
    J->panel_k = (size_t)h.k; /* k, or more where a product takes some of its rows */
}

/* Whether a product runs on AMX: weights packed for it, AMX in use, a
 * kernel that can finish its sums, and at least AMX_MIN_ROWS rows (AMX
 * computes rows in blocks of 32: with fewer it waits on the weights, and
 * a decoder's one-token products are faster on the float32 kernels).
 * Never depends on the thread count. */
static int amx_job(const gemm_job *J, const void *packed_b)
{
    return onr_sgemm_packed_is_amx(packed_b) && g_amx_on && J->bsrc == B_PREPACKED &&
           J->panel_w == ONR_AMX_MB && J->plan->cfg->finish && J->m >= AMX_MIN_ROWS && J->n &&
           J->k;
}

void onr_sgemm_packed(int trans_a, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const void *packed_b, float beta, float *c, size_t ldc,
                      const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    gemm_job J;
    init_packed_job(&J, trans_a, m, n, k, alpha, a, lda, packed_b, beta, c, ldc, ep);
    if (!workspace) run_unpacked(&J);
    else if (!amx_job(&J, packed_b) || run_amx(&J, NULL, workspace, nthreads))
        run_job(&J, workspace, nthreads);
}

/* packed_cols on rows [k0, k0 + k) of the packed B (k0 + k at most its
 * rows; never on AMX terms: their rows are not panels of floats) */
static void packed_cols(int trans_a, size_t m, size_t n, size_t n0, size_t n1, size_t k0,
                        size_t k, float alpha, const float *a, size_t lda, const void *packed_b,
                        float beta, float *c, size_t ldc, const onr_gemm_epilogue *ep,
                        void *workspace)
{
    gemm_job J;
    init_packed_job(&J, trans_a, m, n, k, alpha, a, lda, packed_b, beta, c, ldc, ep);
    J.b += k0 * J.panel_w;
    if (n1 > n) n1 = n;
    if (m == 0 || n0 >= n1) return;
    if (k == 0 || !workspace) { /* the slow paths, on the columns' own view of C */
        gemm_job S;
        onr_gemm_epilogue e;
        job_cols(&J, n0, n1, n0 * J.panel_k, &S, &e); /* n0 starts a panel */
        if (k == 0) scale_only(&S);
        else run_unpacked(&S);
        return;
    }
    if (amx_job(&J, packed_b)) { /* A' of all rows here, then this range's tasks */
        char *base = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
        uint16_t *ap = (uint16_t *)base;
        atomic_fetch_add_explicit(&g_amx_count, 1, memory_order_relaxed);
        if (!onr_amx_pack_a(trans_a, a, lda, m, k, 0, (m + ONR_AMX_MB - 1) / ONR_AMX_MB, ap)) {
            amx_tasks(&J, ap, NULL, n0, n1, NULL, 0, 1, (float *)(base + amx_terms_bytes(m, k)));
            return;
        }
    }
    float *abuf, *bbuf;
    thread_bufs(&J, workspace, 0, &abuf, &bbuf);
    run_region(&J, 0, m, n0, n1, abuf, bbuf);
}

void onr_sgemm_packed_cols(int trans_a, size_t m, size_t n, size_t n0, size_t n1, size_t k,
                           float alpha, const float *a, size_t lda, const void *packed_b,
                           float beta, float *c, size_t ldc, const onr_gemm_epilogue *ep,
                           void *workspace)
{
    packed_cols(trans_a, m, n, n0, n1, 0, k, alpha, a, lda, packed_b, beta, c, ldc, ep, workspace);
}

void onr_sgemm_packed_cols_k(size_t m, size_t n, size_t n0, size_t n1, size_t k0, size_t k,
                             float alpha, const float *a, size_t lda, const void *packed_b,
                             float beta, float *c, size_t ldc, const onr_gemm_epilogue *ep,
                             void *workspace)
{
    pack_header h;
    memcpy(&h, packed_b, sizeof h);
    if (h.amx || k0 > h.k || k > h.k - k0) return; /* (callers never ask: conv_t_rows_products) */
    packed_cols(0, m, n, n0, n1, k0, k, alpha, a, lda, packed_b, beta, c, ldc, ep, workspace);
}

/* ---- weights as A, packed for AMX -------------------------------------- */

size_t onr_sgemm_pack_a_size(size_t m, size_t k)
{
    pthread_once(&g_once, gemm_init);
    if (!g_amx_on || m == 0 || k == 0) return 0;
    return sizeof(pack_header) + amx_terms_bytes(m, k);
}

int onr_sgemm_pack_a(int trans_a, size_t m, size_t k, const float *a, size_t lda, void *packed)
{
    pthread_once(&g_once, gemm_init);
    if (!g_amx_on || m == 0 || k == 0) return -1;
    pack_header h;
    memset(&h, 0, sizeof h);
    h.magic = PACK_MAGIC;
    h.nr = ONR_AMX_MB;
    h.k = k;
    h.n = m; /* the rows */
    h.amx = 1;
    if (onr_amx_pack_a(trans_a, a, lda, m, k, 0, (m + ONR_AMX_MB - 1) / ONR_AMX_MB,
                       (uint16_t *)((char *)packed + sizeof h)))
        return -1;
    memcpy(packed, &h, sizeof h);
    return 0;
}

static float bf16_value(uint16_t t)
{
    const uint32_t u = (uint32_t)t << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void onr_sgemm_unpack_a(const void *packed, float *dst, size_t ldd)
{
    pack_header h;
    memcpy(&h, packed, sizeof h);
    const size_t m = h.n, k = h.k, KB = (k + ONR_AMX_KS - 1) / ONR_AMX_KS;
    const uint16_t *src = (const uint16_t *)((const char *)packed + sizeof h);
    for (size_t i = 0; i < m; i++) {
        /* row i of its block: tile r / 16 of each term, its (r % 16)th row */
        const uint16_t *row = src + (i / ONR_AMX_MB) * KB * ONR_AMX_BLOCK +
                              (i % ONR_AMX_MB / 16) * 512 + (i % 16) * 32;
        for (size_t kk = 0; kk < k; kk++) {
            const uint16_t *t = row + (kk / ONR_AMX_KS) * ONR_AMX_BLOCK + kk % ONR_AMX_KS;
            /* x0 + x1 is x truncated to 16 bits, exact; adding x2 gives x
             * (a zero keeps x0's sign: -0 splits into -0, +0, +0) */
            const float x0 = bf16_value(t[0]);
            const float v = x0 + bf16_value(t[1024]) + bf16_value(t[2048]);
            dst[i * ldd + kk] = v == 0.f ? x0 : v;
        }
    }
}

size_t onr_sgemm_packed_a_workspace_size(size_t m, size_t n, size_t k, int nthreads)
{
    pthread_once(&g_once, gemm_init);
    if (!g_amx_usable || m == 0 || n == 0 || k == 0) return 0;
    size_t t = nthreads > 1 ? (size_t)nthreads : 1;
    return amx_terms_bytes(n, k) + t * (amx_sums_stride() + amx_part_bytes(k)) + 64;
}

int onr_sgemm_packed_a(size_t m, size_t n, size_t k, float alpha, const void *packed_a,
                       const float *b, size_t ldb, float beta, float *c, size_t ldc,
                       const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    pack_header h;
    memcpy(&h, packed_a, sizeof h);
    if (!g_amx_on || !workspace || !h.amx || h.k != k || h.n != m || m == 0 || n == 0 || k == 0)
        return -1;
    gemm_job J;
    init_job(&J, active_plan(), 0, 0, m, n, k, alpha, NULL, 0, b, ldb, beta, c, ldc, ep);
    if (!J.plan->cfg->finish) return -1;
    return run_amx(&J, (const uint16_t *)((const char *)packed_a + sizeof(pack_header)), workspace,
                   nthreads);
}

/* One product of a batch: on the calling thread (across: each product on
 * one of the batch's threads) or on the product's own threads. */
typedef struct batch_job {
    const gemm_plan *P;
    int trans_a, trans_b, across, nthreads;
    size_t m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c;
    float alpha, beta;
    const float *a, *b;
    float *c;
    const onr_gemm_epilogue *ep;
    void *workspace;
    const _Atomic int *cancel;
} batch_job;

static void batch_one(const batch_job *B, size_t p, int has_next)
{
    onr_gemm_epilogue e;
    const onr_gemm_epilogue *ep_p = NULL;
    if (B->ep) {
        e = *B->ep;
        if (e.residual) e.residual += p * e.residual_batch_stride;
        ep_p = &e;
    }
    gemm_job J;
    init_job(&J, B->P, B->trans_a, B->trans_b, B->m, B->n, B->k, B->alpha, B->a + p * B->stride_a,
             B->lda, B->b + p * B->stride_b, B->ldb, B->beta, B->c + p * B->stride_c, B->ldc, ep_p);
    J.cancel = B->cancel;
    /* the thread's next product: its A's first block is fetched ahead */
    if (has_next) J.a_next = B->a + (p + 1) * B->stride_a;
    if (!B->workspace) {
        run_unpacked(&J);
    } else if (B->across) {
        float *abuf, *bbuf;
        thread_bufs(&J, B->workspace, omp_get_thread_num(), &abuf, &bbuf);
        if (B->m && B->n && B->k) run_region(&J, 0, B->m, 0, B->n, abuf, bbuf);
        else if (B->m && B->n) scale_only(&J);
    } else {
        run_job(&J, B->workspace, B->nthreads);
    }
}

void onr_sgemm_batch(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, size_t stride_a, const float *b, size_t ldb,
                     size_t stride_b, float beta, float *c, size_t ldc, size_t stride_c,
                     size_t batch, const onr_gemm_epilogue *ep, void *workspace, int nthreads)
{
    size_t fmas = m * n * k;
    int across = workspace && nthreads > 1 && batch >= (size_t)nthreads && stride_c != 0 &&
                 fmas <= BATCH_SPLIT_FMAS && fmas * batch >= SERIAL_FMAS;
    batch_job B = {.P = active_plan(), .trans_a = trans_a, .trans_b = trans_b, .across = across,
                   .nthreads = nthreads, .m = m, .n = n, .k = k, .lda = lda, .stride_a = stride_a,
                   .ldb = ldb, .stride_b = stride_b, .ldc = ldc, .stride_c = stride_c,
                   .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c, .ep = ep,
                   .workspace = workspace, .cancel = g_cancel /* the caller's, for the batch */};
    /* no region when the products run one after another: libgomp ends even
     * a region whose if() is false with a futex wake (a system call) */
    if (!across) {
        for (size_t p = 0; p < batch; p++) batch_one(&B, p, p + 1 < batch);
        return;
    }
    /* schedule(static)'s split, written out: each thread knows the product
     * it runs next */
#pragma omp parallel num_threads(onr_team(nthreads))
    {
        int64_t lo, hi;
        onr_team_share((int64_t)batch, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        for (int64_t p = lo; p < hi; p++) batch_one(&B, (size_t)p, p + 1 < hi);
    }
}
