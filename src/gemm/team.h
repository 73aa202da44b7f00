/*
 * team.h - how many threads a parallel region may use now.
 *
 * On a CPU shared with other processes, a thread of a parallel region that
 * the OS has descheduled holds the region's end up, and the region can
 * take longer than it would have on one thread. The regions that can tell
 * (the GEMM core's products, onr_par_for) measure what their threads
 * gained: the CPU time every thread spent on the region's work, minus the
 * region's wall time (one thread would have needed the sum of the CPU
 * times), less an eighth of the wall time. A woken thread's start-up
 * delay, a thread descheduled for longer than the others' share of the
 * work, or two threads time-sliced on one core makes that gain negative.
 * Gains are summed with a decay; when the sum falls below -0.5 ms (more
 * than a late wake-up: small regions woken cold on a quiet machine lose
 * tens of microseconds, a thread descheduled by another process costs
 * milliseconds), and the kernel shows other processes' runnable tasks
 * that with the team's threads are more than the CPUs (else the loss is
 * forgotten: the host took a virtual CPU away for a moment, say, and
 * fewer threads would not help), the process backs off:
 *  - every region runs on one thread for 1 ms, then 16, 256, 512 ms with
 *    each loss in a row, and at least 32 times the loss (so that probing a
 *    CPU that stays shared costs a percent or less, within a second of the
 *    first loss; as a loss that backs off is over 0.5 ms, the first
 *    back-off lasts 16 ms or more);
 *  - when that time is over, the measured regions try their threads again
 *    (they can tell whether that paid); after a back-off of 50 ms or
 *    more, only if the rest of the machine left enough CPU idle meanwhile
 *    for the extra threads (within half a CPU; the kernel's idle ticks),
 *    else the process backs off for 512 ms at once, without a losing
 *    probe; the others stay on one thread, on probation, until 16
 *    measured regions in a row have gained or a second has passed
 *    without a loss. On probation one region that loses more
 *    than 0.25 ms backs off again by itself (the summed gains of the
 *    others would hide it), so a probe of a CPU still shared costs one
 *    region.
 * The first measured region of a process looks before it runs: when the
 * other processes' runnable tasks and its nt threads are more than the
 * CPUs (four looks in a row), it starts backed off for 50 ms, then the
 * idle check as above.
 * Niced tasks (nice above this process's) do not count as other
 * processes' runnable tasks, and the CPU time they take counts as idle
 * (when this process is not niced): the scheduler gives a task of nice 0
 * about 98 % of a CPU shared with one of nice 19.
 * The team's idle threads sleep meanwhile (the wait policy), so the process
 * then competes for one core only, as it would at one thread.
 *
 * Results never depend on it: every kernel computes each element the same
 * way whatever the size of its team (a region's code must not assume that
 * the team has the size it asked for: it asks omp_get_num_threads(), or
 * splits work with a worksharing loop or a claim counter).
 */
#ifndef ONR_TEAM_H
#define ONR_TEAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Thread t's share [*lo, *hi) of n items over T threads: schedule(static)'s
 * split written out (contiguous runs, the first n % T one item longer), for
 * regions whose threads must know their own range. */
static inline void onr_team_share(int64_t n, int64_t T, int64_t t, int64_t *lo, int64_t *hi)
{
    int64_t q = n / T, r = n % T;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r);
}

/* Bytes from the start of one thread's part of a per-thread scratch to the
 * next one's: the part in whole cache lines and a gap of ONR_THREAD_GAP
 * bytes after it. Parts that touch false-share through the hardware's
 * adjacent-line prefetch: MaxPool's per-thread rows of 448 bytes, one
 * right after another, ran 64x112x112 in 0.19 ms on 2 threads against
 * 0.17 ms on one (Zen 5); 0.09 ms with the gap. */
#define ONR_THREAD_GAP 128
static inline size_t onr_thread_stride(size_t bytes)
{
    return (bytes + 63) / 64 * 64 + ONR_THREAD_GAP;
}

/* At a session's open, before its first run: start OpenMP's team of nt
 * threads (libgomp makes its threads at the first region that wants
 * them, and the first run paid for that: 0.4-0.5 ms of MobileNetV2's
 * first step on 2 threads, Zen 5) and take the first measured region's
 * look at the CPUs now (see above). Nothing for nt <= 1. */
void onr_team_start(int nt);

/* The team size a region that wants nt threads should ask for now: nt, or 1
 * while the process is backed off or on probation (after a back-off, until
 * measured regions have gained 16 times in a row). */
int onr_team(int nt);
/* The same for a measured region: nt as soon as the back-off has run out,
 * so that the regions that can tell are the ones that probe the CPU. */
int onr_team_probe(int nt);

/* One measured region: onr_team_begin before it (calling thread), each
 * thread of the team onr_team_work_start at its start and
 * onr_team_work_done when its share is done, onr_team_end after it. Thread
 * CPU clocks cost a system call here and there, so while the process is
 * not backed off only one region in 16 is measured. */
typedef struct onr_team_region {
    int measure;
    int64_t start;       /* CLOCK_MONOTONIC ns */
    _Atomic int64_t cpu; /* summed thread CPU ns of the work */
} onr_team_region;

void onr_team_begin(onr_team_region *r);
int64_t onr_team_work_start(const onr_team_region *r);
void onr_team_work_done(onr_team_region *r, int64_t work_start);
void onr_team_end(onr_team_region *r);
/* What onr_team_end reports: the threads' summed CPU time on the region's
 * work and the region's wall time (also for tests). */
void onr_team_note(int64_t cpu_ns, int64_t wall_ns);

/* Where the end of a long back-off reads the idle clock ticks of all CPUs
 * together (tests; NULL: /proc/stat's). How many back-offs it extended
 * without a probe, in this process. */
void onr_team_set_idle_source(int (*fn)(int64_t *idle_ticks));
size_t onr_team_idle_skips(void);

/* Where the first measured region reads how many tasks are runnable
 * (tests; NULL: /proc/stat's procs_running), and look again at the next
 * one. How many times that look started the process backed off. */
void onr_team_set_running_source(int (*fn)(int64_t *running));
size_t onr_team_predicted(void);

/* How many losses did not back off because no other process had a task
 * runnable beside the team (team.c: oversubscribed); the same source as
 * above tells. */
size_t onr_team_unconfirmed(void);
/* How many tasks of process pid are runnable (state R) with a nice value
 * no higher than this process's: the ones that compete with its threads
 * (tests; a niced task yields to them and does not count). */
int64_t onr_team_pid_competing(int pid);
/* Tests: keep (1) every region's threads whatever the load, never backing
 * off (tests that compare 1-, 2- and 3-thread runs, under ctest -j2 or on
 * fewer CPUs than threads); 0 goes back to the back-off. */
void onr_team_keep_threads(int keep);
/* Forget any back-off and history (tests). Whether the process is backed
 * off now (tests). */
void onr_team_reset(void);
int onr_team_backed_off(void);

#endif
