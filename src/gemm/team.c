/*
 * team.c - the process's contention back-off for parallel regions (team.h).
 */
#include "gemm/team.h"
#include "gemm/spin.h"
#include "onnxrun.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* A back-off of IDLE_MIN_NS or more (five clock ticks at 100 Hz) ends
 * with a look at how much CPU the rest of the machine left idle meanwhile,
 * before any region tries its threads again: with less than the extra
 * threads need (minus half a CPU), the other process is still there, and
 * the process backs off for the longest time at once, without a probe
 * that would lose a time slice (each of those cost about 3 ms every
 * 512 ms, and the two more losses of the escalation as many at the
 * start). The idle time is the kernel's (/proc/stat, in clock ticks);
 * where it cannot be read, the regions probe as before. */
#define IDLE_MIN_NS 50000000
static _Atomic int64_t g_idle0 = -1; /* idle ticks of all CPUs when the back-off began, -1: none */
static _Atomic int64_t g_idle_t0; /* CLOCK_MONOTONIC ns then */
static _Atomic int64_t g_own0;    /* the process's CPU time then */
static atomic_size_t g_idle_skips;

/* The first line of /proc/stat that starts with `key`: its first n (<= 5)
 * numbers into v. 0 when found. */
static int proc_stat_line(const char *key, int n, unsigned long long *v)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512];
    size_t kl = strlen(key);
    int st = -1;
    while (st != 0 && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 &&
            sscanf(line + kl, "%llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4]) >= n)
            st = 0;
    fclose(f);
    return st;
}

/* This process's nice value (its threads share it: nothing here sets one). */
static int own_nice(void)
{
    errno = 0;
    int n = getpriority(PRIO_PROCESS, 0);
    return errno ? 0 : n;
}

/* The CPU time other processes leave this one, in clock ticks of all CPUs
 * together: idle and iowait, and the time of niced tasks (nice > 0) when
 * this process is not niced itself: the scheduler gives a task of nice 0
 * about 98 % of a CPU it shares with one of nice 19, so a background job
 * started with `nice` takes next to nothing from the threads (counted as
 * busy, it kept a 2-thread run on one thread for as long as the job ran). */
static int proc_idle_ticks(int64_t *idle)
{
    unsigned long long v[5] = {0};
    if (proc_stat_line("cpu ", 5, v)) return -1;
    *idle = (int64_t)(v[3] + v[4]); /* all CPUs' idle + iowait */
    if (own_nice() <= 0) *idle += (int64_t)v[1];
    return 0;
}

typedef int (*count_fn)(int64_t *); /* a count from the kernel, or a test's */
static _Atomic(count_fn) g_idle_fn = proc_idle_ticks;

void onr_team_set_idle_source(int (*fn)(int64_t *idle_ticks))
{
    atomic_store_explicit(&g_idle_fn, fn ? fn : proc_idle_ticks, memory_order_relaxed);
}

static int idle_ticks(int64_t *idle)
{
    return atomic_load_explicit(&g_idle_fn, memory_order_relaxed)(idle);
}

size_t onr_team_idle_skips(void) { return atomic_load_explicit(&g_idle_skips, memory_order_relaxed); }

/* When a back-off of len ns begins: the idle ticks to compare with. */
static void idle_mark(int64_t len, int64_t now)
{
    int64_t idle = -1;
    if (len < IDLE_MIN_NS || idle_ticks(&idle) != 0) { /* too short to tell, or unreadable */
        atomic_store_explicit(&g_idle0, -1, memory_order_relaxed);
        return;
    }
    atomic_store_explicit(&g_idle_t0, now, memory_order_relaxed);
    atomic_store_explicit(&g_own0, clock_ns(CLOCK_PROCESS_CPUTIME_ID), memory_order_relaxed);
    atomic_store_explicit(&g_idle0, idle, memory_order_relaxed);
}

/* Every back-off starts here: serial until now + len, the idle ticks
 * marked when it is long enough to check at its end. */
static void back_off(int64_t len, int64_t now)
{
    idle_mark(len, now);
    atomic_store_explicit(&g_serial_until, now + len, memory_order_relaxed);
}

/* At the end of a long back-off: whether the CPUs left idle since it began
 * would hold nt - 1 more threads (within half a CPU). What this process
 * used beyond its one working thread counts as free too: its own idle
 * threads spinning (OMP_WAIT_POLICY=active) would do its work instead. */
static int idle_allows(int nt, int64_t now)
{
    int64_t idle0 = atomic_load_explicit(&g_idle0, memory_order_relaxed), idle = 0;
    int64_t t0 = atomic_load_explicit(&g_idle_t0, memory_order_relaxed);
    long hz = sysconf(_SC_CLK_TCK);
    if (idle0 < 0 || hz <= 0 || now <= t0 || idle_ticks(&idle) != 0 || idle < idle0) return 1;
    double wall = (double)(now - t0) * 1e-9;
    double cpus = (double)(idle - idle0) / (wall * (double)hz);
    double own = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) -
                          atomic_load_explicit(&g_own0, memory_order_relaxed)) * 1e-9 / wall;
    if (own > 1) cpus += own - 1;
    return cpus >= (double)(nt - 1) - 0.5;
}

/* The first measured region of the process looks at the CPUs before it
 * runs: when the tasks of other processes runnable right now and its nt
 * threads are more than the CPUs, another process is busy there, and the
 * process starts backed off (IDLE_MIN_NS, then the idle
 * check above) instead of learning it from losing regions, which cost
 * a time slice or so each, three of them in a row before the long
 * back-offs (short processes, a benchmark's runs, paid that on every
 * start). The counts are the kernel's: /proc/stat's procs_running, less
 * this process's threads in state R (its pool spinning after a region
 * made one quiet start in 15 look busy). */
static atomic_int g_looked; /* the first onr_team_probe looked (tests: reset sets it, the source hook clears it) */
static atomic_size_t g_predicted;
#define LOOKS 4
#define LOOK_GAP_NS 300000

static int proc_running(int64_t *n)
{
    unsigned long long v[5] = {0};
    if (proc_stat_line("procs_running ", 1, v)) return -1;
    *n = (int64_t)v[0];
    return 0;
}

#define SCAN_MAX_TASKS 8192 /* the most tasks one look reads */

/* Tasks of process `pid` (a /proc name) in state R with nice <= nice0;
 * *seen counts the tasks looked at. */
static int64_t pid_competing(const char *pid, int nice0, int64_t *seen)
{
    char path[96], buf[512];
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    DIR *td = opendir(path);
    if (!td) return 0;
    int64_t n = 0;
    struct dirent *t;
    while ((t = readdir(td)) != NULL && *seen < SCAN_MAX_TASKS) {
        if (t->d_name[0] == '.' || strlen(t->d_name) > 20) continue;
        ++*seen;
        snprintf(path, sizeof path, "/proc/%s/task/%s/stat", pid, t->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *p = strrchr(buf, ')'); /* after the command name */
        if (!p || p[1] != ' ' || p[2] != 'R') continue;
        /* the fields after the state: ppid pgrp session tty_nr tpgid flags
         * minflt cminflt majflt cmajflt utime stime cutime cstime priority
         * nice */
        long nice = 0;
        if (sscanf(p + 3, "%*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %ld",
                   &nice) == 1 &&
            nice <= nice0)
            n++;
    }
    closedir(td);
    return n;
}

/* This process's threads runnable now (state R, any nice; at least 1):
 * its own pool's threads spinning after a region are no other process. */
static int64_t own_running(void)
{
    int64_t seen = 0, n = pid_competing("self", INT_MAX, &seen);
    return n > 0 ? n : 1;
}

int64_t onr_team_pid_competing(int pid)
{
    char name[24];
    int64_t seen = 0;
    snprintf(name, sizeof name, "%d", pid);
    return pid_competing(name, own_nice(), &seen);
}

/* Other processes' tasks in state R whose nice is at most this process's
 * (a niced task yields its CPU to them: see proc_idle_ticks), read from
 * /proc/[pid]/task/[tid]/stat; -1 when /proc cannot be read. Only asked
 * once procs_running says other tasks are runnable; it stops after
 * SCAN_MAX_TASKS tasks (counting what it saw so far). */
static int64_t competing_tasks(void)
{
    DIR *d = opendir("/proc");
    if (!d) return -1;
    const long me = (long)getpid();
    const int nice0 = own_nice();
    int64_t n = 0, seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && seen < SCAN_MAX_TASKS) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == me || strlen(e->d_name) > 20) continue;
        n += pid_competing(e->d_name, nice0, &seen);
    }
    closedir(d);
    return n;
}

static _Atomic(count_fn) g_running_fn = proc_running;

/* Other processes' tasks runnable now that compete with this process's
 * threads: all runnable tasks (procs_running, or a test's count) less this
 * process's in state R; from /proc/stat, those found are then looked up
 * one by one, so that niced ones do not count. 0 when found. */
static int others_runnable(int64_t *others)
{
    count_fn fn = atomic_load_explicit(&g_running_fn, memory_order_relaxed);
    int64_t running = 0;
    if (fn(&running) != 0) return -1;
    int64_t n = running - own_running();
    if (n < 0) n = 0;
    if (n > 0 && fn == proc_running) {
        int64_t c = competing_tasks();
        if (c >= 0 && c < n) n = c;
    }
    *others = n;
    return 0;
}

void onr_team_set_running_source(int (*fn)(int64_t *running))
{
    atomic_store_explicit(&g_running_fn, fn ? fn : proc_running, memory_order_relaxed);
    atomic_store_explicit(&g_looked, 0, memory_order_relaxed); /* look again */
}

size_t onr_team_predicted(void) { return atomic_load_explicit(&g_predicted, memory_order_relaxed); }

static void look_first(int nt)
{
    if (atomic_exchange_explicit(&g_looked, 1, memory_order_relaxed)) return;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu <= 0) return;
    /* four looks 0.3 ms apart must all see it: a task runnable for a moment
     * (a parent shell between fork and wait) made one look in 15 on a
     * quiet machine start backed off */
    for (int k = 0; k < LOOKS; k++) {
        int64_t others = 0;
        if (others_runnable(&others) != 0 || others + nt <= ncpu) return;
        if (k + 1 < LOOKS) {
            struct timespec ts = {0, LOOK_GAP_NS};
            nanosleep(&ts, NULL);
        }
    }
    atomic_fetch_add_explicit(&g_predicted, 1, memory_order_relaxed);
    atomic_store_explicit(&g_good, 0, memory_order_relaxed);
    atomic_store_explicit(&g_gain, 0, memory_order_relaxed);
    atomic_store_explicit(&g_level, 1, memory_order_relaxed);
    back_off(IDLE_MIN_NS, clock_ns(CLOCK_MONOTONIC)); /* after the looks' sleeps */
}

/* A loss backs off only when the CPUs are oversubscribed as this machine's
 * kernel sees them: the other processes' competing tasks runnable now
 * (others_runnable: not this process's, not niced ones) and the team are
 * more than the CPUs. A
 * loss without that is not another process's doing: a virtual CPU the
 * host took away for a moment, a burst of page faults. Backing off does
 * not help then, and it made runs slower (ResNet-50 at 2 threads on the
 * project's 2-vCPU VM, nothing else running in it: 5 processes in 10 had
 * runs at one thread's speed, median 40.1 ms against 38.8 without the
 * back-off). A process another process really shares the CPUs with keeps
 * one of its tasks runnable nearly all the time, so one look finds it;
 * where the count cannot be read, every loss backs off as before. */
static atomic_int g_team_nt = 2; /* the team size the last measured region asked for */
static atomic_size_t g_unconfirmed;

size_t onr_team_unconfirmed(void)
{
    return atomic_load_explicit(&g_unconfirmed, memory_order_relaxed);
}

static int oversubscribed(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t others = 0;
    if (ncpu <= 0 || others_runnable(&others) != 0) return 1;
    return others + atomic_load_explicit(&g_team_nt, memory_order_relaxed) > ncpu;
}

static atomic_int g_keep; /* onr_team_keep_threads */

void onr_team_keep_threads(int keep) { atomic_store_explicit(&g_keep, keep != 0, memory_order_relaxed); }

int onr_team(int nt)
{
    if (nt <= 1 || !atomic_load_explicit(&g_level, memory_order_relaxed) ||
        atomic_load_explicit(&g_keep, memory_order_relaxed))
        return nt > 1 ? nt : 1;
    /* on probation; a second without a loss after the back-off ends it too
     * (a session whose regions are not measured is not held back forever) */
    if (clock_ns(CLOCK_MONOTONIC) >
        atomic_load_explicit(&g_serial_until, memory_order_relaxed) + PROBATION_MAX_NS) {
        atomic_store_explicit(&g_level, 0, memory_order_relaxed);
        return nt;
    }
    return 1;
}

static atomic_int g_started;

void onr_team_start(int nt)
{
    if (nt <= 1) return;
    if (!atomic_load_explicit(&g_keep, memory_order_relaxed)) look_first(nt);
    /* the region counts its threads: one with an empty body is optimised
     * away, and no team made */
#pragma omp parallel num_threads(nt)
    atomic_fetch_add_explicit(&g_started, 1, memory_order_relaxed);
}

int onr_team_probe(int nt)
{
    if (nt <= 1) return 1;
    if (atomic_load_explicit(&g_keep, memory_order_relaxed)) return nt;
    atomic_store_explicit(&g_team_nt, nt, memory_order_relaxed);
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (!atomic_load_explicit(&g_looked, memory_order_relaxed)) look_first(nt);
    int64_t until = atomic_load_explicit(&g_serial_until, memory_order_relaxed);
    if (until > now) return 1;
    if (atomic_load_explicit(&g_idle0, memory_order_relaxed) >= 0) {
        /* one caller looks (the others stay serial meanwhile) */
        if (!atomic_compare_exchange_strong_explicit(&g_serial_until, &until, now + BACKOFF_MIN_NS,
                                                     memory_order_relaxed, memory_order_relaxed))
            return 1;
        if (!idle_allows(nt, now)) { /* still shared: the longest back-off, no probe */
            atomic_fetch_add_explicit(&g_idle_skips, 1, memory_order_relaxed);
            atomic_store_explicit(&g_level, BACKOFF_MAX_LEVEL, memory_order_relaxed);
            back_off(BACKOFF_MAX_NS, now);
            return 1;
        }
        atomic_store_explicit(&g_idle0, -1, memory_order_relaxed); /* looked: probe */
        atomic_store_explicit(&g_serial_until, now, memory_order_relaxed);
    }
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
        if (!oversubscribed()) { /* not another process: forget it, keep the threads */
            atomic_fetch_add_explicit(&g_unconfirmed, 1, memory_order_relaxed);
            atomic_store_explicit(&g_gain, 0, memory_order_relaxed);
            return;
        }
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
        back_off(len, clock_ns(CLOCK_MONOTONIC));
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
    atomic_store_explicit(&g_idle0, -1, memory_order_relaxed);
    atomic_store_explicit(&g_looked, 1, memory_order_relaxed); /* tests re-arm it */
}

int onr_team_backed_off(void) { return onr_team(2) == 1; }

long onr_gomp_spincount(void) { return onr_spin_count_for(ONR_SPIN_US); }
