/*
 * team.c - the process's contention back-off for parallel regions (team.h).
 */
#include "gemm/team.h"

#include <time.h>

#define BACKOFF_MIN_NS 1000000   /* the first back-off: 1 ms */
#define BACKOFF_MAX_NS 512000000 /* the longest: 512 ms */
#define BACKOFF_MAX_LEVEL 4      /* 1, 16, 256, then 512 ms */
#define GOOD_TO_CLEAR 16         /* measured regions in a row that gain: back to normal */
#define PROBATION_MAX_NS 1000000000 /* or a second without a loss after the back-off */
#define LOSS_MIN_NS 500000        /* the summed loss that backs off: 0.5 ms */
#define PROBE_LOSS_NS 250000      /* after a back-off, one region's loss that does: 0.25 ms */
#define SAMPLE_EVERY 16           /* regions measured while not backed off: 1 in 16 */

static _Atomic int64_t g_serial_until; /* CLOCK_MONOTONIC ns */
static _Atomic int64_t g_gain;         /* decayed sum of recent gains, ns */
static atomic_int g_level;
static atomic_int g_good;
static atomic_uint g_regions; /* regions begun: every SAMPLE_EVERY-th is measured */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int onr_team(int nt)
{
    if (nt <= 1 || !atomic_load_explicit(&g_level, memory_order_relaxed)) return nt > 1 ? nt : 1;
    /* on probation; a second without a loss after the back-off ends it too
     * (a session whose regions are not measured is not held back forever) */
    if (clock_ns(CLOCK_MONOTONIC) >
        atomic_load_explicit(&g_serial_until, memory_order_relaxed) + PROBATION_MAX_NS) {
        atomic_store_explicit(&g_level, 0, memory_order_relaxed);
        return nt;
    }
    return 1;
}

int onr_team_probe(int nt)
{
    if (nt <= 1) return 1;
    if (atomic_load_explicit(&g_serial_until, memory_order_relaxed) > clock_ns(CLOCK_MONOTONIC))
        return 1;
    return nt;
}

void onr_team_begin(onr_team_region *r)
{
    unsigned k = atomic_fetch_add_explicit(&g_regions, 1, memory_order_relaxed);
    r->measure = k % SAMPLE_EVERY == 0 || atomic_load_explicit(&g_level, memory_order_relaxed);
    r->start = r->measure ? clock_ns(CLOCK_MONOTONIC) : 0;
    atomic_init(&r->cpu, 0);
}

int64_t onr_team_work_start(const onr_team_region *r)
{
    return r->measure ? clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
}

void onr_team_work_done(onr_team_region *r, int64_t work_start)
{
    if (r->measure)
        atomic_fetch_add_explicit(&r->cpu, clock_ns(CLOCK_THREAD_CPUTIME_ID) - work_start,
                                  memory_order_relaxed);
}

void onr_team_end(onr_team_region *r)
{
    if (!r->measure) return;
    int64_t end = clock_ns(CLOCK_MONOTONIC);
    onr_team_note(atomic_load_explicit(&r->cpu, memory_order_relaxed), end - r->start);
}

void onr_team_note(int64_t cpu_ns, int64_t wall_ns)
{
    /* a region must gain an eighth of its time to count as a gain: two
     * threads time-sliced on one core (the other core busy with another
     * process) show no loss, and no gain either */
    int64_t gain = cpu_ns - wall_ns - wall_ns / 8;
    /* several sessions may report at once: a lost update only blurs the sum */
    int64_t sum = atomic_load_explicit(&g_gain, memory_order_relaxed);
    sum = sum - sum / 4 + gain;
    atomic_store_explicit(&g_gain, sum, memory_order_relaxed);
    /* after a back-off (on probation), one region that loses more than a
     * late wake-up backs off again at once: the gains of the regions that
     * did not lose must not hide the ones that did while the CPU is still
     * shared (each probe then costs one region) */
    int lv = atomic_load_explicit(&g_level, memory_order_relaxed); /* > 0: on probation */
    if (sum < -LOSS_MIN_NS || (lv > 0 && gain < -PROBE_LOSS_NS)) {
        if (lv < BACKOFF_MAX_LEVEL) lv++;
        atomic_store_explicit(&g_level, lv, memory_order_relaxed);
        atomic_store_explicit(&g_good, 0, memory_order_relaxed);
        atomic_store_explicit(&g_gain, 0, memory_order_relaxed);
        /* at least 32 times what the loss cost, so that probing a CPU that
         * stays shared costs a few percent */
        int64_t len = (int64_t)BACKOFF_MIN_NS << (4 * (lv - 1));
        int64_t lost = sum < gain ? -sum : -gain;
        if (len < 32 * lost) len = 32 * lost;
        if (len > BACKOFF_MAX_NS) len = BACKOFF_MAX_NS;
        atomic_store_explicit(&g_serial_until, clock_ns(CLOCK_MONOTONIC) + len,
                              memory_order_relaxed);
    } else if (gain >= 0 && lv > 0 &&
               atomic_fetch_add_explicit(&g_good, 1, memory_order_relaxed) + 1 >= GOOD_TO_CLEAR) {
        atomic_store_explicit(&g_level, 0, memory_order_relaxed);
    }
}

void onr_team_reset(void)
{
    atomic_store_explicit(&g_level, 0, memory_order_relaxed);
    atomic_store_explicit(&g_good, 0, memory_order_relaxed);
    atomic_store_explicit(&g_gain, 0, memory_order_relaxed);
    atomic_store_explicit(&g_serial_until, 0, memory_order_relaxed);
    atomic_store_explicit(&g_regions, 0, memory_order_relaxed);
}

int onr_team_backed_off(void) { return onr_team(2) == 1; }
