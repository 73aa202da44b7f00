/*
 * test_team.c - the contention back-off for parallel regions (gemm/team.h):
 * a region that lost time backs the process off (every region on one
 * thread), the back-off runs out and probation ends after regions that
 * gain, a long back-off ends with a probe only if the CPUs were idle enough
 * meanwhile, the first region starts backed off when every CPU is busy,
 * a loss backs off only when other processes' tasks are runnable too,
 * niced tasks do not count as such,
 * and results do not change when a product or a loop runs
 * backed off.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gemm/gemm.h"
#include "gemm/team.h"
#include "ops/ops.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts)) {
    }
}

/* A region whose threads were off the CPU: the wall time passes (a sleep)
 * while no thread works. Measured when it is the first region after
 * onr_team_reset (one in 16 is, while not backed off). */
static void lost_region(long us)
{
    onr_team_region r;
    onr_team_begin(&r);
    int64_t w0 = onr_team_work_start(&r);
    sleep_us(us);
    onr_team_work_done(&r, w0);
    onr_team_end(&r);
}

/* Idle clock ticks of all CPUs for the end of a long back-off: one whole
 * CPU idle all along, or none (another process keeps it busy). */
static int idle_one_cpu(int64_t *idle)
{
    *idle = mono_ns() / (1000000000 / sysconf(_SC_CLK_TCK));
    return 0;
}

static int idle_none(int64_t *idle)
{
    *idle = 12345;
    return 0;
}

/* Tasks runnable now: every CPU busy with other processes (and this
 * process's threads on top), or only this thread. */
static int running_all(int64_t *n)
{
    *n = sysconf(_SC_NPROCESSORS_ONLN) + 64;
    return 0;
}

static int running_me(int64_t *n)
{
    *n = 1;
    return 0;
}

/* A region of two threads that both worked the whole 200 us. */
static void gaining_region(void) { onr_team_note(400000, 200000); }

static void test_quiet_keeps_threads(void **state)
{
    (void)state;
    onr_team_reset();
    for (int i = 0; i < 20; i++) gaining_region();
    assert_int_equal(onr_team(2), 2);
    assert_int_equal(onr_team_probe(3), 3);
    assert_int_equal(onr_team(1), 1);
    assert_int_equal(onr_team(0), 1);
    assert_false(onr_team_backed_off());
}

static void test_loss_backs_off_then_recovers(void **state)
{
    (void)state;
    onr_team_reset();
    /* the CPUs idle when the back-off ends, whatever else runs on this
     * machine now: a sleep of 1 ms that oversleeps by half backs off for
     * 50 ms or more, which asks the idle counts at its end, and another
     * test running beside this one keeps the real ones busy */
    onr_team_set_idle_source(idle_one_cpu);
    lost_region(1000); /* a real region that lost 1 ms or more (a sleep, no work) */
    assert_true(onr_team_backed_off());
    assert_int_equal(onr_team(2), 1);
    assert_int_equal(onr_team_probe(2), 1);
    int64_t t0 = mono_ns();
    while (onr_team_probe(2) == 1) {
        assert_true(mono_ns() - t0 < 2000000000); /* it must run out */
        sleep_us(500);
    }
    /* over: measured regions may try their threads, the others are on
     * probation until 16 measured regions in a row have gained */
    assert_int_equal(onr_team_probe(2), 2);
    assert_int_equal(onr_team(2), 1);
    for (int i = 0; i < 15; i++) gaining_region();
    assert_int_equal(onr_team(2), 1);
    gaining_region();
    assert_int_equal(onr_team(2), 2);
    assert_false(onr_team_backed_off());
    onr_team_set_idle_source(NULL);
    onr_team_reset();
}

static void test_losses_in_a_row_back_off_longer(void **state)
{
    (void)state;
    onr_team_reset();
    /* a loss under 0.5 ms (a late wake-up) does not back off */
    onr_team_note(0, 300000);
    assert_false(onr_team_backed_off());
    onr_team_reset();
    /* the n-th loss in a row backs off for 1, 16, 256, 512 ms, and at
     * least 32 times the loss: 0.6 ms lost (0.675 with the eighth) backs
     * off for about 22 ms the first two times, 256 ms the third, 512 the
     * fourth */
    int64_t len[4];
    onr_team_set_idle_source(idle_one_cpu); /* the long ones end with a probe */
    for (int k = 0; k < 4; k++) {
        onr_team_note(0, 600000);
        assert_true(onr_team_backed_off());
        int64_t t0 = mono_ns();
        while (onr_team_probe(2) == 1) sleep_us(200);
        len[k] = mono_ns() - t0;
    }
    assert_true(len[0] >= 15000000);
    assert_true(len[0] < 60000000);
    assert_true(len[1] < 60000000);
    assert_true(len[2] >= 200000000);
    assert_true(len[3] >= 400000000);
    /* a long loss backs off for 32 times it at once (capped at 512 ms) */
    onr_team_reset();
    onr_team_note(1000000, 3000000); /* 2.375 ms lost */
    int64_t t0 = mono_ns();
    while (onr_team_probe(2) == 1) sleep_us(1000);
    int64_t l = mono_ns() - t0;
    assert_true(l >= 60000000);
    assert_true(l < 1000000000);
    /* probation also ends a second after the back-off without a loss */
    assert_int_equal(onr_team(2), 1);
    sleep_us(1100000);
    assert_int_equal(onr_team(2), 2);
    onr_team_set_idle_source(NULL);
    onr_team_reset();
}

/* The end of a back-off of 50 ms or more probes only if the CPUs were
 * idle enough meanwhile: with none idle it backs off 512 ms more without
 * a probe; then, one CPU idle, it probes (2 threads), but not 3 (needs
 * 1.5 CPUs). The shorter back-offs always probe. */
static void test_long_backoff_asks_idle(void **state)
{
    (void)state;
    onr_team_reset();
    onr_team_set_idle_source(idle_none);
    size_t skips = onr_team_idle_skips();
    for (int k = 0; k < 2; k++) { /* about 22 ms each, probed whatever the idle time */
        onr_team_note(0, 600000);
        while (onr_team_probe(2) == 1) sleep_us(200);
    }
    assert_int_equal(onr_team_idle_skips(), skips);
    onr_team_note(0, 600000); /* the third: 256 ms */
    int64_t t0 = mono_ns();
    while (mono_ns() - t0 < 300000000) {
        assert_int_equal(onr_team_probe(2), 1);
        sleep_us(2000);
    }
    assert_int_equal(onr_team_idle_skips(), skips + 1); /* looked once, at 256 ms */
    onr_team_set_idle_source(idle_one_cpu);
    while (onr_team_probe(3) == 1) { /* the extension runs out, then 1 CPU < 1.5 */
        assert_true(mono_ns() - t0 < 3000000000);
        sleep_us(2000);
    }
    int64_t waited = mono_ns() - t0;
    assert_true(waited >= 256000000 + 400000000); /* the extension was 512 ms */
    /* one long loss (76 ms back-off), the CPU still busy: 512 ms more */
    onr_team_reset();
    onr_team_set_idle_source(idle_none);
    skips = onr_team_idle_skips();
    onr_team_note(1000000, 3000000); /* 2.375 ms lost */
    t0 = mono_ns();
    while (mono_ns() - t0 < 200000000) {
        assert_int_equal(onr_team_probe(2), 1);
        sleep_us(2000);
    }
    assert_int_equal(onr_team_idle_skips(), skips + 1);
    onr_team_reset();
    onr_team_set_idle_source(NULL);
}

/* On probation one losing region backs off again, however much the
 * regions before it gained; before any back-off it takes the summed loss. */
static void test_probe_loss_backs_off_at_once(void **state)
{
    (void)state;
    onr_team_reset();
    for (int i = 0; i < 8; i++) onr_team_note(4000000, 2000000); /* +1.75 ms each */
    onr_team_note(0, 300000); /* 0.34 ms lost: the sum still gains */
    assert_false(onr_team_backed_off());
    onr_team_reset();
    onr_team_note(0, 600000); /* backs off */
    assert_true(onr_team_backed_off());
    int64_t t0 = mono_ns();
    while (onr_team_probe(2) == 1) {
        assert_true(mono_ns() - t0 < 2000000000);
        sleep_us(500);
    }
    for (int i = 0; i < 8; i++) onr_team_note(4000000, 2000000);
    assert_int_equal(onr_team_probe(2), 2);
    onr_team_note(40000, 50000); /* a small region that lost 16 us (a late wake-up): no */
    assert_int_equal(onr_team_probe(2), 2);
    onr_team_note(0, 300000); /* one region lost 0.34 ms: back off again */
    assert_int_equal(onr_team_probe(2), 1);
    assert_true(onr_team_backed_off());
    onr_team_reset();
}

/* Backed off, a loop still runs every index once and a product gives the
 * same bits. */
typedef struct seen {
    int n[1000];
} seen;

static void count_fn(void *ctx, int64_t i)
{
    seen *s = ctx;
    #pragma omp atomic
    s->n[i]++;
}

static void test_backed_off_same_results(void **state)
{
    (void)state;
    const size_t M = 97, N = 131, K = 203;
    float *a = malloc(M * K * sizeof *a), *b = malloc(K * N * sizeof *b);
    float *c0 = malloc(M * N * sizeof *c0), *c1 = malloc(M * N * sizeof *c1);
    size_t wsz = onr_sgemm_workspace_size(M, N, K, 2);
    void *ws = NULL;
    assert_int_equal(posix_memalign(&ws, 64, wsz), 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c0);
    assert_non_null(c1);
    uint32_t r = 12345;
    for (size_t i = 0; i < M * K; i++) a[i] = (float)((r = r * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < K * N; i++) b[i] = (float)((r = r * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;

    onr_team_reset();
    onr_sgemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c0, N, NULL, ws, 2);
    onr_team_reset(); /* so that the next region is one of those measured */
    lost_region(3000); /* backed off for about 100 ms */
    assert_true(onr_team_backed_off());
    onr_sgemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c1, N, NULL, ws, 2);
    assert_memory_equal(c0, c1, M * N * sizeof *c0);

    seen s;
    memset(&s, 0, sizeof s);
    onr_par_for(1000, 2, 1, count_fn, &s);
    for (int i = 0; i < 1000; i++) assert_int_equal(s.n[i], 1);
    onr_team_reset();
    memset(&s, 0, sizeof s);
    onr_par_for(1000, 3, 1, count_fn, &s);
    for (int i = 0; i < 1000; i++) assert_int_equal(s.n[i], 1);
    free(a);
    free(b);
    free(c0);
    free(c1);
    free(ws);
}

/* The first measured region looks at the runnable tasks: every CPU busy,
 * it starts backed off (50 ms, then the idle check: still busy, 512 ms
 * more); only itself running, it keeps its threads. It looks once. */
static void test_first_region_looks(void **state)
{
    (void)state;
    onr_team_reset();
    onr_team_set_idle_source(idle_none);
    size_t pred = onr_team_predicted(), skips = onr_team_idle_skips();
    onr_team_set_running_source(running_all);
    assert_int_equal(onr_team_probe(2), 1);
    assert_int_equal(onr_team_predicted(), pred + 1);
    assert_int_equal(onr_team(2), 1);
    int64_t t0 = mono_ns();
    while (mono_ns() - t0 < 120000000) {
        assert_int_equal(onr_team_probe(2), 1);
        sleep_us(2000);
    }
    assert_int_equal(onr_team_idle_skips(), skips + 1);
    assert_int_equal(onr_team_predicted(), pred + 1); /* once */
    onr_team_reset();
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        onr_team_set_running_source(running_me);
        assert_int_equal(onr_team_probe(2), 2);
        assert_int_equal(onr_team_predicted(), pred + 1);
    }
    onr_team_set_running_source(running_all); /* the group's setting */
    onr_team_set_idle_source(NULL);
    onr_team_reset();
}

/* This process's threads, as /proc/self/task lists them. */
static int own_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A session's open starts the team (onr_team_start): the threads exist
 * before the first region, and the first region's look is taken then;
 * one thread starts nothing and does not look. It runs first, before any
 * region of this process made threads: this thread is the only one. (Three
 * threads, not more: clang's libomp keeps, and LeakSanitizer reports, a
 * few structures of a team larger than it sizes for this 2-CPU machine.) */
static void test_start_makes_team_and_looks(void **state)
{
    (void)state;
    onr_team_reset();
    onr_team_set_idle_source(idle_none);
    size_t pred = onr_team_predicted();
    onr_team_set_running_source(running_all); /* re-arms the look */
    onr_team_start(1);
    assert_int_equal(onr_team_predicted(), pred);
    assert_int_equal(own_threads(), 1);
    onr_team_start(3);
    assert_int_equal(onr_team_predicted(), pred + 1);
    assert_true(onr_team_backed_off());
    assert_true(own_threads() >= 3);
    onr_team_start(3); /* looks once */
    assert_int_equal(onr_team_predicted(), pred + 1);
    onr_team_set_idle_source(NULL);
    onr_team_reset();
}

/* A loss while no other process has a task runnable is not a shared CPU
 * (the host took the VM's CPU away for a moment, say): no back-off, the
 * loss is counted as unconfirmed and forgotten. The same losses with every
 * CPU busy back off. */
static void test_loss_needs_other_tasks(void **state)
{
    (void)state;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) skip(); /* a team of 2 oversubscribes 1 CPU */
    onr_team_set_running_source(running_me);
    onr_team_reset();
    size_t u = onr_team_unconfirmed();
    assert_int_equal(onr_team_probe(2), 2);
    onr_team_note(0, 600000);
    assert_false(onr_team_backed_off());
    assert_int_equal(onr_team_unconfirmed(), u + 1);
    onr_team_note(1000000, 3000000); /* 2.375 ms: forgotten too */
    lost_region(1000);
    assert_false(onr_team_backed_off());
    assert_int_equal(onr_team_probe(2), 2);
    assert_int_equal(onr_team_unconfirmed(), u + 3);
    /* the forgotten losses leave no debt: one small loss later does not
     * tip a sum over the line */
    onr_team_set_running_source(running_all);
    onr_team_reset();
    onr_team_note(0, 300000);
    assert_false(onr_team_backed_off());
    onr_team_note(0, 600000);
    assert_true(onr_team_backed_off());
    assert_int_equal(onr_team_unconfirmed(), u + 3);
    onr_team_reset();
}

/* A child that spins at nice `nice` until killed; its pid. */
static pid_t spinner(int nice_inc)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (nice_inc && nice(nice_inc) == -1) _exit(1);
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    return pid;
}

/* Whether process pid counts as competing within 2 s (it has to be
 * scheduled once after the fork to show state R with its nice). */
static int competes_soon(pid_t pid, int want)
{
    int64_t t0 = mono_ns();
    while (mono_ns() - t0 < 2000000000) {
        if ((onr_team_pid_competing((int)pid) > 0) == want) return 1;
        sleep_us(5000);
    }
    return 0;
}

/* A busy process at nice 19 does not compete with this one (nice 0): the
 * scheduler leaves it about 2 % of a shared CPU; one at this process's
 * nice does. Each spinner is looked at for up to 2 s. */
static void test_niced_tasks_do_not_compete(void **state)
{
    (void)state;
    errno = 0;
    if (getpriority(PRIO_PROCESS, 0) != 0 || errno) skip(); /* the test itself runs niced */
    pid_t low = spinner(19), same = spinner(0);
    assert_true(low > 0 && same > 0);
    sleep_us(20000);
    /* the child renices itself once scheduled: on a busy host that came
     * after the first looks (a CI run counted it 3 times in 20) */
    int64_t t0 = mono_ns();
    for (;;) {
        errno = 0;
        int pr = getpriority(PRIO_PROCESS, (id_t)low);
        if ((pr == 19 && !errno) || mono_ns() - t0 > 5000000000) break;
        sleep_us(2000);
    }
    int ok_same = competes_soon(same, 1);
    /* the niced one never counts: looked at several times */
    int low_counted = 0;
    for (int k = 0; k < 20; k++) {
        low_counted += onr_team_pid_competing((int)low) > 0;
        sleep_us(2000);
    }
    kill(low, SIGKILL), kill(same, SIGKILL);
    waitpid(low, NULL, 0), waitpid(same, NULL, 0);
    assert_true(ok_same);
    assert_int_equal(low_counted, 0);
}

/* Every test but the one above sees every CPU busy when a loss asks (and
 * each starts with onr_team_reset, so no first look follows from it). */
static int group_setup(void **state)
{
    (void)state;
    onr_team_set_running_source(running_all);
    onr_team_reset();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    onr_team_set_running_source(NULL);
    onr_team_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_makes_team_and_looks), /* first: no threads yet */
        cmocka_unit_test(test_quiet_keeps_threads),
        cmocka_unit_test(test_loss_backs_off_then_recovers),
        cmocka_unit_test(test_losses_in_a_row_back_off_longer),
        cmocka_unit_test(test_probe_loss_backs_off_at_once),
        cmocka_unit_test(test_long_backoff_asks_idle),
        cmocka_unit_test(test_first_region_looks),
        cmocka_unit_test(test_backed_off_same_results),
        cmocka_unit_test(test_loss_needs_other_tasks),
        cmocka_unit_test(test_niced_tasks_do_not_compete),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
