/*
 * budget.c - the session memory budget; see budget.h.
 */
#include "ir/budget.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const char *onr_fmt_bytes(char *buf, size_t len, uint64_t n)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)n);
        return buf;
    }
    double v = (double)n / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) v /= 1024, u++;
    snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

/* A number from the first line of `path` that starts with `key` (NULL:
 * the file's first number), times `scale`; 0 when absent. */
static uint64_t read_number(const char *path, const char *key, uint64_t scale)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    uint64_t v = 0;
    size_t kl = key ? strlen(key) : 0;
    while (fgets(line, sizeof line, f)) {
        if (key && strncmp(line, key, kl) != 0) continue;
        unsigned long long x;
        if (sscanf(line + kl, " %llu", &x) == 1) v = (uint64_t)x * scale;
        break;
    }
    fclose(f);
    return v;
}

uint64_t onr_budget_default(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t phys = (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz : (1ull << 32);
    uint64_t avail = read_number("/proc/meminfo", "MemAvailable:", 1024);
    if (!avail) avail = phys / 2;
    if (avail > phys) avail = phys;
    /* a container's limit ("max" reads as no number) */
    uint64_t cg = read_number("/sys/fs/cgroup/memory.max", NULL, 1);
    if (cg && cg < avail) avail = cg;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)rl.rlim_cur < avail)
        avail = (uint64_t)rl.rlim_cur;
    return avail / 10 * 9;
}

/* planned: 1 the in-use bytes include planned ones; 2 value_bytes is a
 * lower bound (what a kernel allocated for it so far). subject and verb
 * start the message ("value 'x'" "needs", "its packed weights" "need"). */
static onr_status refuse_as(const onr_budget *b, const char *subject, const char *verb,
                            uint64_t value_bytes, uint64_t in_use, int planned, onr_err *err)
{
    char v[32], l[32], u[32];
    return onr_seterr(err, ONR_E_NOMEM, "%s %s %s%s; the session's memory budget is %s, %s in use%s",
                      subject, verb, planned == 2 ? "at least " : "",
                      onr_fmt_bytes(v, sizeof v, value_bytes), onr_fmt_bytes(l, sizeof l, b->limit),
                      onr_fmt_bytes(u, sizeof u, in_use), planned == 1 ? " or planned" : "");
}

static onr_status refuse(const onr_budget *b, const char *name, uint64_t value_bytes,
                         uint64_t in_use, int planned, onr_err *err)
{
    char what[300];
    if (name) snprintf(what, sizeof what, "value '%s'", name);
    else snprintf(what, sizeof what, "the kernels' scratch memory");
    return refuse_as(b, what, "needs", value_bytes, in_use, planned, err);
}

/* Take bytes, or refuse them naming subject; 0 when taken. */
static onr_status take_as(onr_budget *b, const char *subject, const char *name, uint64_t value_bytes,
                          uint64_t take, onr_err *err)
{
    if (!b) return ONR_OK;
    uint64_t u = atomic_load(&b->used);
    do {
        if (b->limit && (take > b->limit || u > b->limit - take))
            return subject ? refuse_as(b, subject, "need", value_bytes, u, 0, err)
                           : refuse(b, name, value_bytes, u, 0, err);
    } while (!atomic_compare_exchange_weak(&b->used, &u, u + take));
    return ONR_OK;
}

onr_status onr_budget_take_as(onr_budget *b, const char *subject, uint64_t bytes, onr_err *err)
{
    return take_as(b, subject, NULL, bytes, bytes, err);
}

int onr_budget_fits(const onr_budget *b, uint64_t bytes)
{
    if (!b || !b->limit) return 1;
    uint64_t u = atomic_load(&b->used);
    return bytes <= b->limit && u <= b->limit - bytes;
}

onr_status onr_budget_take(onr_budget *b, const char *name, uint64_t value_bytes, uint64_t take,
                           onr_err *err)
{
    return take_as(b, NULL, name, value_bytes, take, err);
}

void onr_budget_give(onr_budget *b, uint64_t bytes)
{
    if (!b || !bytes) return;
    uint64_t u = atomic_load(&b->used);
    while (!atomic_compare_exchange_weak(&b->used, &u, u > bytes ? u - bytes : 0)) {
    }
}

onr_status onr_budget_check(const onr_budget *b, const char *name, uint64_t value_bytes,
                            uint64_t pending, onr_err *err)
{
    if (!b || !b->limit) return ONR_OK;
    uint64_t u = atomic_load(&b->used);
    uint64_t in_use = u + pending < u ? UINT64_MAX : u + pending;
    if (value_bytes > b->limit || in_use > b->limit - value_bytes)
        return refuse(b, name, value_bytes, in_use, pending != 0, err);
    return ONR_OK;
}

/* ---- run scope ------------------------------------------------------------ */

static _Thread_local onr_budget_run *cur;

int onr_budget_run_begin(onr_budget_run *r, onr_budget *b)
{
    if (cur) return 0;
    memset(r, 0, sizeof *r);
    r->b = b;
    r->active = 1;
    cur = r;
    return 1;
}

void onr_budget_run_end(onr_budget_run *r)
{
    if (!r->active) return;
    onr_budget_give(r->b, r->taken);
    r->taken = 0;
    r->active = 0;
    if (cur == r) cur = NULL;
}

const char *onr_budget_run_name(const char *name)
{
    if (!cur) return NULL;
    const char *old = cur->name;
    cur->name = name;
    cur->name_taken = 0;
    return old;
}

static int run_take(onr_budget_run *r, const char *name, uint64_t value_bytes, uint64_t bytes,
                    int lower_bound, onr_err *err)
{
    onr_err tmp = {0};
    if (onr_budget_take(r->b, name, value_bytes, bytes, &tmp)) {
        if (lower_bound) { /* say the value's bytes so far are a lower bound */
            memset(&tmp, 0, sizeof tmp);
            refuse(r->b, name, value_bytes, atomic_load(&r->b->used), 2, &tmp);
        }
        if (!r->refusal.code) r->refusal = tmp;
        if (err) onr_seterr(err, tmp.code, "%s", tmp.msg);
        return -1;
    }
    r->taken += bytes;
    return 0;
}

int onr_budget_run_take(uint64_t bytes, onr_err *err)
{
    onr_budget_run *r = cur;
    if (!r || !r->b || !r->name) return 0;
    if (run_take(r, r->name, r->name_taken + bytes, bytes, 1, err)) return -1;
    r->name_taken += bytes;
    return 0;
}

onr_status onr_budget_take_any(onr_budget *b, const char *name, uint64_t value_bytes,
                               uint64_t take, onr_err *err)
{
    if (b) return onr_budget_take(b, name, value_bytes, take, err);
    onr_budget_run *r = cur;
    if (!r || !r->b) return ONR_OK;
    return run_take(r, name, value_bytes, take, 0, err) ? ONR_E_NOMEM : ONR_OK;
}

void onr_budget_run_explain(onr_err *err)
{
    onr_budget_run *r = cur;
    if (!r || !r->refusal.code || !err) return;
    *err = r->refusal;
    memset(&r->refusal, 0, sizeof r->refusal);
}
