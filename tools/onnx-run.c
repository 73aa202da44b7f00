/*
 * onnx-run.c - the command-line tool. Uses only the public API (onnxrun.h).
 *
 *   onnx-run run   MODEL [-i [NAME=]FILE]... [-o OUTDIR] [--threads N] [--no-fuse]
 *   onnx-run bench MODEL [-i [NAME=]FILE]... [--iters N] [--warmup N] [--threads N] [--json]
 *   onnx-run test  CASE_DIR... [--threads N] [--rtol X] [--atol Y]
 *   onnx-run info  MODEL [--plan] [--no-fuse] [--dot] [--svg FILE]
 *   onnx-run profile MODEL [-i ...] [--iters N] [--warmup N] [--threads N] [--trace FILE.json]
 *
 * Exit status: 0 success; 1 error while loading or running; 2 bad usage;
 * 3 the model needs something not supported.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "onnxrun.h"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2, EXIT_UNSUPPORTED = 3 };

static int exit_for(onr_status st)
{
    return st == ONR_OK ? EXIT_OK : st == ONR_E_UNSUPPORTED ? EXIT_UNSUPPORTED : EXIT_ERR;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  onnx-run run   MODEL [-i [NAME=]FILE]... [-o OUTDIR] [--threads N] [--no-fuse]\n"
            "  onnx-run bench MODEL [-i [NAME=]FILE]... [--iters N] [--warmup N] [--threads N] [--json]\n"
            "  onnx-run test  CASE_DIR... [--threads N] [--rtol X] [--atol Y]\n"
            "  onnx-run info  MODEL [--plan] [--no-fuse] [--dot] [--svg FILE]\n"
            "  onnx-run profile MODEL [-i [NAME=]FILE]... [--iters N] [--warmup N] [--threads N] [--trace FILE.json]\n"
            "FILE is a serialized TensorProto (.pb) or a NumPy .npy file. Without -i, inputs\n"
            "are generated deterministically from the declared shapes (symbolic dims = 1).\n"
            "Exit status: 0 ok, 1 error, 2 bad usage, 3 unsupported model feature.\n");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000000) return -1;
    *out = (int)v;
    return 0;
}

/* ---- common options ------------------------------------------------------ */

typedef struct cli {
    const char *model;
    const char *in_names[256];
    const char *in_files[256];
    int n_in;
    const char *outdir;
    int threads, no_fuse, iters, warmup, json, plan, dot;
    const char *svg;
    double rtol, atol;
    const char *trace;
    const char *cases[4096];
    int n_cases;
} cli;

/* Parses argv after the command; returns 0 or prints usage and returns -1. */
static int parse_args(const char *cmd, int argc, char **argv, cli *c)
{
    c->iters = 10;
    c->warmup = 2;
    c->rtol = 1e-3; /* the ONNX backend runner's tolerances */
    c->atol = 1e-7;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(EXIT_OK);
        } else if (strcmp(a, "-i") == 0 && has_next) {
            if (c->n_in == 256) return fprintf(stderr, "onnx-run: too many -i\n"), -1;
            char *v = argv[++i], *eq = strchr(v, '=');
            /* NAME=FILE unless the whole thing is an existing file */
            struct stat st;
            if (eq && stat(v, &st) != 0) {
                *eq = 0;
                c->in_names[c->n_in] = v;
                c->in_files[c->n_in++] = eq + 1;
            } else {
                c->in_names[c->n_in] = NULL;
                c->in_files[c->n_in++] = v;
            }
        } else if (strcmp(a, "-o") == 0 && has_next) {
            c->outdir = argv[++i];
        } else if (strcmp(a, "--threads") == 0 && has_next) {
            if (parse_int(argv[++i], &c->threads) || c->threads < 1)
                return fprintf(stderr, "onnx-run: --threads needs a positive integer\n"), -1;
        } else if (strcmp(a, "--iters") == 0 && has_next) {
            if (parse_int(argv[++i], &c->iters) || c->iters < 1)
                return fprintf(stderr, "onnx-run: --iters needs a positive integer\n"), -1;
        } else if (strcmp(a, "--warmup") == 0 && has_next) {
            if (parse_int(argv[++i], &c->warmup))
                return fprintf(stderr, "onnx-run: --warmup needs an integer >= 0\n"), -1;
        } else if ((strcmp(a, "--rtol") == 0 || strcmp(a, "--atol") == 0) && has_next) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || !(v >= 0)) return fprintf(stderr, "onnx-run: %s needs a number >= 0\n", a), -1;
            if (a[2] == 'r') c->rtol = v;
            else c->atol = v;
        } else if (strcmp(a, "--trace") == 0 && has_next) {
            c->trace = argv[++i];
        } else if (strcmp(a, "--no-fuse") == 0) {
            c->no_fuse = 1;
        } else if (strcmp(a, "--json") == 0) {
            c->json = 1;
        } else if ((strcmp(a, "--plan") == 0 || strcmp(a, "--dot") == 0 ||
                    strcmp(a, "--svg") == 0) && strcmp(cmd, "info") != 0) {
            fprintf(stderr, "onnx-run %s: %s is an option of 'onnx-run info'\n", cmd, a);
            return -1;
        } else if (strcmp(a, "--plan") == 0) {
            c->plan = 1;
        } else if (strcmp(a, "--dot") == 0) {
            c->dot = 1;
        } else if (strcmp(a, "--svg") == 0) {
            if (!has_next) return fprintf(stderr, "onnx-run info: --svg needs a FILE\n"), -1;
            c->svg = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "onnx-run %s: unknown option '%s'\n", cmd, a);
            return -1;
        } else if (strcmp(cmd, "test") == 0) {
            if (c->n_cases == 4096) return fprintf(stderr, "onnx-run: too many cases\n"), -1;
            c->cases[c->n_cases++] = a;
        } else if (!c->model) {
            c->model = a;
        } else {
            fprintf(stderr, "onnx-run %s: unexpected argument '%s'\n", cmd, a);
            return -1;
        }
    }
    if (strcmp(cmd, "test") == 0 ? c->n_cases == 0 : !c->model) {
        fprintf(stderr, "onnx-run %s: missing %s\n", cmd,
                strcmp(cmd, "test") == 0 ? "CASE_DIR" : "MODEL");
        return -1;
    }
    return 0;
}

static onr_session *open_model(const char *path, const cli *c, int *exit_code)
{
    onr_options *o = onr_options_new();
    if (c->threads) onr_options_set_threads(o, c->threads);
    onr_options_set_fuse(o, !c->no_fuse);
    onr_session *s = NULL;
    onr_status st = onr_session_open(path, o, &s);
    onr_options_free(o);
    if (st) {
        fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
        onr_session_free(s);
        *exit_code = exit_for(st);
        return NULL;
    }
    return s;
}

/* ---- inputs ------------------------------------------------------------ */

/* Deterministic input for a declared input: floats in [-1, 1), integers 0
 * or 1 (valid indices for any table, e.g. token types, and valid masks),
 * bools alternating. */
static onr_tensor *generate_input(const onr_value_info *info, char *msg, size_t msglen)
{
    int64_t dims[ONR_MAX_RANK];
    if (info->rank < 0) {
        snprintf(msg, msglen, "input '%s' has no declared shape; give it with -i", info->name);
        return NULL;
    }
    for (int d = 0; d < info->rank; d++) dims[d] = info->dims[d] >= 0 ? info->dims[d] : 1;
    onr_dtype dt = info->dtype == ONR_UNDEFINED ? ONR_FLOAT : info->dtype;
    onr_tensor *t = onr_tensor_new(dt, info->rank, dims);
    if (!t) {
        snprintf(msg, msglen, "cannot make input '%s' (%s, rank %d): shape too large or type "
                 "not supported", info->name, onr_dtype_name(dt), info->rank);
        return NULL;
    }
    uint32_t s = 12345;
    int64_t n = onr_tensor_numel(t);
    void *p = onr_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        double f = (s >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0;
        int64_t k = (int64_t)((s >> 8) % 2);
        switch (dt) {
        case ONR_FLOAT: ((float *)p)[i] = (float)f; break;
        case ONR_DOUBLE: ((double *)p)[i] = f; break;
        case ONR_INT64: ((int64_t *)p)[i] = k; break;
        case ONR_INT32: ((int32_t *)p)[i] = (int32_t)k; break;
        case ONR_BOOL: ((uint8_t *)p)[i] = (uint8_t)(i & 1); break;
        case ONR_INT8: case ONR_UINT8: ((uint8_t *)p)[i] = (uint8_t)k; break;
        case ONR_INT16: case ONR_UINT16: ((uint16_t *)p)[i] = (uint16_t)k; break;
        case ONR_UINT32: ((uint32_t *)p)[i] = (uint32_t)k; break;
        case ONR_UINT64: ((uint64_t *)p)[i] = (uint64_t)k; break;
        default: break; /* float16/bfloat16/string: zeros */
        }
    }
    return t;
}

/* Bind -i files (named or positional) and generate the rest. */
static int make_inputs(onr_session *s, const cli *c, onr_tensor **ins, const char **names)
{
    int n = onr_session_input_count(s);
    char msg[1024];
    for (int i = 0; i < n; i++) ins[i] = NULL;
    int next_pos = 0;
    for (int k = 0; k < c->n_in; k++) {
        int slot = -1;
        if (c->in_names[k]) {
            for (int i = 0; i < n; i++) {
                onr_value_info vi;
                onr_session_input_info(s, i, &vi);
                if (strcmp(vi.name, c->in_names[k]) == 0) slot = i;
            }
            if (slot < 0) {
                fprintf(stderr, "onnx-run: the model has no input named '%s'\n", c->in_names[k]);
                return EXIT_USAGE;
            }
        } else {
            while (next_pos < n && ins[next_pos]) next_pos++;
            slot = next_pos;
            if (slot >= n) {
                fprintf(stderr, "onnx-run: more -i files than model inputs (%d)\n", n);
                return EXIT_USAGE;
            }
        }
        if (ins[slot]) {
            fprintf(stderr, "onnx-run: input %d given twice\n", slot);
            return EXIT_USAGE;
        }
        onr_value_info ki; /* a TensorProto, .npy, SequenceProto or OptionalProto */
        onr_session_input_info(s, slot, &ki);
        onr_status st = onr_value_read_file(c->in_files[k], ki.kind, &ins[slot], msg, sizeof msg);
        if (st) {
            fprintf(stderr, "onnx-run: %s\n", msg);
            return EXIT_ERR;
        }
    }
    for (int i = 0; i < n; i++) {
        onr_value_info vi;
        onr_session_input_info(s, i, &vi);
        names[i] = vi.name;
        if (!ins[i] && vi.kind != ONR_VALUE_TENSOR) /* generated: empty */
            ins[i] = vi.kind == ONR_VALUE_SEQUENCE ? onr_sequence_new(vi.dtype, 0, NULL)
                                                   : onr_optional_new(vi.dtype, NULL);
        if (!ins[i] && !(ins[i] = generate_input(&vi, msg, sizeof msg))) {
            fprintf(stderr, "onnx-run: %s\n", msg);
            return EXIT_ERR;
        }
    }
    return EXIT_OK;
}

static void free_inputs(int n, onr_tensor **ins)
{
    for (int i = 0; i < n; i++) onr_tensor_free(ins[i]);
}

/* ---- run ----------------------------------------------------------------- */

static void print_dims(FILE *f, const onr_tensor *t)
{
    fputc('[', f);
    for (int d = 0; d < onr_tensor_rank(t); d++)
        fprintf(f, d ? ",%lld" : "%lld", (long long)onr_tensor_dims(t)[d]);
    fputc(']', f);
}

static double elem(const onr_tensor *t, int64_t i)
{
    const void *p = onr_tensor_data(t);
    switch (onr_tensor_dtype(t)) {
    case ONR_FLOAT: return ((const float *)p)[i];
    case ONR_DOUBLE: return ((const double *)p)[i];
    case ONR_INT64: return (double)((const int64_t *)p)[i];
    case ONR_INT32: return ((const int32_t *)p)[i];
    case ONR_INT16: return ((const int16_t *)p)[i];
    case ONR_INT8: return ((const int8_t *)p)[i];
    case ONR_UINT8: case ONR_BOOL: return ((const uint8_t *)p)[i];
    case ONR_UINT16: return ((const uint16_t *)p)[i];
    case ONR_UINT32: return ((const uint32_t *)p)[i];
    case ONR_UINT64: return (double)((const uint64_t *)p)[i];
    default: return NAN;
    }
}

static void summarize(const char *name, const onr_tensor *t)
{
    if (onr_value_kind(t) != ONR_VALUE_TENSOR) { /* a sequence or optional: each element */
        int64_t n = onr_value_count(t);
        printf("%s: %s of %lld %s\n", name,
               onr_value_kind(t) == ONR_VALUE_SEQUENCE ? "sequence" : "optional", (long long)n,
               onr_dtype_name(onr_tensor_dtype(t)));
        for (int64_t i = 0; i < n && i < 8; i++) {
            char sub[64];
            snprintf(sub, sizeof sub, "  [%lld]", (long long)i);
            summarize(sub, onr_value_element(t, i));
        }
        return;
    }
    printf("%s: %s ", name, onr_dtype_name(onr_tensor_dtype(t)));
    print_dims(stdout, t);
    int64_t n = onr_tensor_numel(t);
    if (onr_tensor_dtype(t) == ONR_STRING) {
        printf(" = \"%s\"%s\n", n ? ((char **)onr_tensor_data(t))[0] : "", n > 1 ? " ..." : "");
        return;
    }
    if (onr_tensor_dtype(t) == ONR_FLOAT16 || onr_tensor_dtype(t) == ONR_BFLOAT16) {
        printf("\n");
        return;
    }
    printf(" =");
    for (int64_t i = 0; i < n && i < 8; i++) printf(" %.6g", elem(t, i));
    if (n > 8) {
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = elem(t, i);
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            sum += v;
        }
        printf(" ... (min %.6g, max %.6g, mean %.6g)", mn, mx, sum / (double)n);
    }
    printf("\n");
}

static int cmd_run(const cli *c)
{
    int code = 0;
    onr_session *s = open_model(c->model, c, &code);
    if (!s) return code;
    int n = onr_session_input_count(s);
    onr_tensor *ins[n > 0 ? n : 1];
    const char *names[n > 0 ? n : 1];
    if ((code = make_inputs(s, c, ins, names)) == EXIT_OK) {
        onr_status st = onr_session_run(s, n, names, (const onr_tensor *const *)ins);
        if (st) {
            fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
            code = exit_for(st);
        } else {
            if (c->outdir && mkdir(c->outdir, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "onnx-run: cannot create '%s': %s\n", c->outdir, strerror(errno));
                code = EXIT_ERR;
            }
            for (int i = 0; i < onr_session_output_count(s) && code == EXIT_OK; i++) {
                onr_value_info vi;
                onr_session_output_info(s, i, &vi);
                const onr_tensor *t = onr_session_output(s, i);
                if (!c->outdir) {
                    summarize(vi.name, t);
                    continue;
                }
                char path[4096], msg[1024];
                snprintf(path, sizeof path, "%s/output_%d.pb", c->outdir, i);
                if (onr_tensor_write_pb(t, vi.name, path, msg, sizeof msg)) {
                    fprintf(stderr, "onnx-run: %s\n", msg);
                    code = EXIT_ERR;
                }
            }
        }
    }
    free_inputs(n, ins);
    onr_session_free(s);
    return code;
}

/* ---- bench ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_bench(const cli *c)
{
    int code = 0;
    double t0 = now_ms();
    onr_session *s = open_model(c->model, c, &code);
    if (!s) return code;
    double load_ms = now_ms() - t0;
    int n = onr_session_input_count(s);
    onr_tensor *ins[n > 0 ? n : 1];
    const char *names[n > 0 ? n : 1];
    double *times = malloc(sizeof(double) * (size_t)c->iters);
    if (!times || (code = make_inputs(s, c, ins, names)) != EXIT_OK) {
        free(times);
        onr_session_free(s);
        return code ? code : EXIT_ERR;
    }
    double first = 0;
    onr_status st = ONR_OK;
    for (int i = 0; i < 1 + c->warmup + c->iters && !st; i++) {
        double a = now_ms();
        st = onr_session_run(s, n, names, (const onr_tensor *const *)ins);
        double dt = now_ms() - a;
        if (i == 0) first = dt;
        else if (i > c->warmup) times[i - 1 - c->warmup] = dt;
    }
    if (st) {
        fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
        code = exit_for(st);
    } else {
        qsort(times, (size_t)c->iters, sizeof *times, cmp_double);
        double med = c->iters % 2 ? times[c->iters / 2]
                                  : 0.5 * (times[c->iters / 2 - 1] + times[c->iters / 2]);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double rss = ru.ru_maxrss / 1024.0;
        if (c->json)
            printf("{\"model\":\"%s\",\"load_ms\":%.3f,\"first_run_ms\":%.3f,\"median_ms\":%.3f,"
                   "\"min_ms\":%.3f,\"max_ms\":%.3f,\"iterations\":%d,\"threads\":%d,"
                   "\"peak_rss_mb\":%.1f}\n",
                   c->model, load_ms, first, med, times[0], times[c->iters - 1], c->iters,
                   onr_session_threads(s), rss);
        else
            printf("model %s\nthreads %d\nload %.2f ms\nfirst run %.2f ms\n"
                   "median %.3f ms  min %.3f ms  max %.3f ms  (%d iterations, %d warm-up)\n"
                   "peak RSS %.1f MB\n",
                   c->model, onr_session_threads(s), load_ms, first, med, times[0],
                   times[c->iters - 1], c->iters, c->warmup, rss);
    }
    free(times);
    free_inputs(n, ins);
    onr_session_free(s);
    return code;
}

/* ---- info ----------------------------------------------------------------- */

typedef struct opcount {
    const char *op, *domain;
    int n;
} opcount;

static int cmp_opcount(const void *a, const void *b)
{
    const opcount *x = a, *y = b;
    if (x->n != y->n) return y->n - x->n;
    return strcmp(x->op, y->op);
}

static void print_value(const char *kind, const onr_value_info *vi)
{
    printf("  %s %s: %s ", kind, vi->name, onr_dtype_name(vi->dtype));
    if (vi->rank < 0) {
        printf("[?]\n");
        return;
    }
    printf("[");
    for (int d = 0; d < vi->rank; d++) {
        if (d) printf(",");
        if (vi->dims[d] >= 0) printf("%lld", (long long)vi->dims[d]);
        else printf("%s", vi->dim_names[d] ? vi->dim_names[d] : "?");
    }
    printf("]\n");
}

/* ---- info: the plan as a Graphviz drawing -------------------------------- */

typedef struct producer {
    const char *name;
    int step;
} producer;

static int cmp_producer(const void *a, const void *b)
{
    return strcmp(((const producer *)a)->name, ((const producer *)b)->name);
}

/* Who writes value `name` (prod sorted by name): its entry's step, or
 * NO_PRODUCER (a constant, or not in the plan). */
#define NO_PRODUCER INT_MIN
static int find_producer(const producer *prod, int np, const char *name)
{
    producer key = {name, 0};
    const producer *p = np ? bsearch(&key, prod, (size_t)np, sizeof *prod, cmp_producer) : NULL;
    return p ? p->step : NO_PRODUCER;
}

/* A string as a DOT quoted-string body. */
static void dot_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
}

/* Steps as boxes (fused ones coloured, with what they replaced), graph
 * inputs and outputs as ellipses, an edge per activation a step reads
 * (constants are left out: they would swamp the drawing). */
static int write_dot(FILE *f, const onr_session *s)
{
    int n = onr_session_step_count(s), n_in = onr_session_input_count(s);
    int n_out = onr_session_output_count(s), np = 0, cap = n_in, widest = 1;
    for (int i = 0; i < n; i++) {
        int a = onr_session_step_values(s, i, 0, NULL, 0), b = onr_session_step_values(s, i, 1, NULL, 0);
        cap += b;
        if (a > widest) widest = a;
        if (b > widest) widest = b;
    }
    /* who writes each value: a step (>= 0) or graph input j (-1 - j) */
    producer *prod = malloc((size_t)(cap + 1) * sizeof *prod);
    const char **names = malloc((size_t)widest * sizeof *names);
    if (!prod || !names) return free(prod), free(names), -1;
    fprintf(f, "digraph plan {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
               "fontname=\"Helvetica\", fontsize=10, fillcolor=\"#eeeeee\"];\n"
               "  edge [color=\"#777777\"];\n");
    for (int i = 0; i < n_in; i++) {
        onr_value_info vi;
        onr_session_input_info(s, i, &vi);
        prod[np++] = (producer){vi.name, -1 - i};
        fprintf(f, "  in%d [shape=ellipse, fillcolor=\"#cfe2ff\", label=\"", i);
        dot_str(f, vi.name);
        fprintf(f, "\"];\n");
    }
    for (int i = 0; i < n; i++) {
        int got = onr_session_step_values(s, i, 1, names, widest);
        for (int k = 0; k < got; k++)
            if (*names[k]) prod[np++] = (producer){names[k], i};
    }
    qsort(prod, (size_t)np, sizeof *prod, cmp_producer);
    for (int i = 0; i < n; i++) {
        const char *name = NULL;
        const char *op = onr_session_step_op(s, i, &name);
        int fused = 0;
        const char *from = onr_session_step_fused(s, i, &fused);
        fprintf(f, "  s%d [label=\"", i);
        dot_str(f, op ? op : "?");
        if (fused) fprintf(f, "\\n(%d nodes fused)", fused);
        fprintf(f, "\", tooltip=\"");
        dot_str(f, name ? name : "");
        if (from) {
            fputs(": ", f);
            dot_str(f, from);
        }
        fprintf(f, "\"%s];\n", fused ? ", fillcolor=\"#ffd8a8\"" : "");
        int got = onr_session_step_values(s, i, 0, names, widest);
        for (int k = 0; k < got; k++) {
            int w = *names[k] ? find_producer(prod, np, names[k]) : NO_PRODUCER;
            if (w >= 0) fprintf(f, "  s%d -> s%d;\n", w, i);
            else if (w != NO_PRODUCER) fprintf(f, "  in%d -> s%d;\n", -1 - w, i);
        }
    }
    for (int i = 0; i < n_out; i++) {
        onr_value_info vi;
        onr_session_output_info(s, i, &vi);
        fprintf(f, "  out%d [shape=ellipse, fillcolor=\"#d1e7dd\", label=\"", i);
        dot_str(f, vi.name);
        fprintf(f, "\"];\n");
        int w = find_producer(prod, np, vi.name);
        if (w >= 0) fprintf(f, "  s%d -> out%d;\n", w, i);
        else if (w != NO_PRODUCER) fprintf(f, "  in%d -> out%d;\n", -1 - w, i);
    }
    fprintf(f, "}\n");
    free(prod);
    free(names);
    return 0;
}

/* Render the drawing with Graphviz's dot into path (no shell involved). */
static int write_svg(const onr_session *s, const char *path)
{
    int fd[2];
    if (pipe(fd) != 0) return fprintf(stderr, "onnx-run: pipe: %s\n", strerror(errno)), EXIT_ERR;
    pid_t pid = fork();
    if (pid < 0) return fprintf(stderr, "onnx-run: fork: %s\n", strerror(errno)), EXIT_ERR;
    if (pid == 0) {
        dup2(fd[0], 0);
        close(fd[0]), close(fd[1]);
        execlp("dot", "dot", "-Tsvg", "-o", path, (char *)NULL);
        _exit(127);
    }
    close(fd[0]);
    /* dot may be missing (the child exits at once): a write error, not SIGPIPE */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    FILE *f = fdopen(fd[1], "w");
    int wrote = f ? write_dot(f, s) : -1;
    if (f && fclose(f) != 0) wrote = -1;
    if (!f) close(fd[1]);
    signal(SIGPIPE, old);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr, "onnx-run: --svg needs Graphviz's 'dot' (Debian: apt install graphviz); "
                        "--dot writes the drawing's source instead\n");
        return EXIT_ERR;
    }
    if (wrote || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "onnx-run: dot failed to write '%s'\n", path);
        return EXIT_ERR;
    }
    fprintf(stderr, "onnx-run: wrote %s\n", path);
    return EXIT_OK;
}

static int cmd_info(const cli *c)
{
    /* describe the model even when some of its ops are unsupported */
    onr_options *o = onr_options_new();
    if (c->threads) onr_options_set_threads(o, c->threads);
    onr_options_set_fuse(o, !c->no_fuse);
    onr_session *s = NULL;
    onr_status st = onr_session_open(c->model, o, &s);
    onr_options_free(o);
    if (st && (st != ONR_E_UNSUPPORTED || onr_session_node_count(s) == 0)) {
        fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
        onr_session_free(s);
        return exit_for(st);
    }
    if ((c->dot || c->svg) && st) {
        fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
        onr_session_free(s);
        return exit_for(st);
    }
    if (c->dot) { /* stdout is the drawing alone: `info --dot MODEL > plan.dot` */
        int rc = write_dot(stdout, s) ? EXIT_ERR : EXIT_OK;
        if (!rc && c->svg) rc = write_svg(s, c->svg);
        onr_session_free(s);
        return rc;
    }
    printf("model %s\nir_version %lld\nproducer %s\nopsets:", c->model,
           (long long)onr_session_ir_version(s), onr_session_producer(s));
    for (int i = 0; i < onr_session_opset_count(s); i++) {
        int64_t v;
        const char *d = onr_session_opset(s, i, &v);
        printf(" %s=%lld", *d ? d : "ai.onnx", (long long)v);
    }
    printf("\n");
    for (int i = 0; i < onr_session_input_count(s); i++) {
        onr_value_info vi;
        onr_session_input_info(s, i, &vi);
        print_value("input", &vi);
    }
    for (int i = 0; i < onr_session_output_count(s); i++) {
        onr_value_info vi;
        onr_session_output_info(s, i, &vi);
        print_value("output", &vi);
    }
    int nn = onr_session_node_count(s), nops = 0;
    opcount *ops = calloc((size_t)nn + 1, sizeof *ops);
    for (int i = 0; ops && i < nn; i++) {
        const char *dom;
        const char *op = onr_session_node_op(s, i, &dom);
        int k = 0;
        while (k < nops && !(strcmp(ops[k].op, op) == 0 && strcmp(ops[k].domain, dom) == 0)) k++;
        if (k == nops) ops[nops++] = (opcount){op, dom, 0};
        ops[k].n++;
    }
    if (ops) qsort(ops, (size_t)nops, sizeof *ops, cmp_opcount);
    printf("nodes %d, plan steps %d (%d before fusion)\nop histogram:\n", nn, onr_session_step_count(s),
           onr_session_unfused_step_count(s));
    for (int k = 0; k < nops; k++)
        printf("  %6d  %s%s%s\n", ops[k].n, *ops[k].domain ? ops[k].domain : "",
               *ops[k].domain ? "." : "", ops[k].op);
    free(ops);
    if (c->plan) {
        size_t arena = 0, acts = 0;
        onr_session_plan_memory(s, &arena, &acts);
        int steps = onr_session_step_count(s), fused_steps = 0, replaced = 0;
        for (int i = 0; i < steps; i++) {
            int k = 0;
            if (onr_session_step_fused(s, i, &k)) fused_steps++, replaced += k;
        }
        printf("plan (%d steps):\n", steps);
        if (c->no_fuse)
            printf("fusion: off (--no-fuse)\n");
        else
            printf("fusion: %d steps before, %d after; %d fused steps replace %d nodes\n",
                   onr_session_unfused_step_count(s), steps, fused_steps, replaced);
        if (arena || acts)
            printf("activation memory: arena %.3f MB for %.3f MB of activations (%.1f%%)\n",
                   arena / 1e6, acts / 1e6, acts ? 100.0 * (double)arena / (double)acts : 0.0);
        else
            printf("activation memory: laid out at the first run (shapes not static)\n");
        char line[2048];
        for (int i = 0; i < onr_session_step_count(s); i++)
            if (onr_session_step_describe(s, i, line, sizeof line) == ONR_OK) {
                printf("  %4d  %s\n", i, line);
                int k = 0;
                const char *from = onr_session_step_fused(s, i, &k);
                if (from) printf("        fused from %d nodes: %s\n", k, from);
            }
    }
    if (!st && c->svg) {
        int rc = write_svg(s, c->svg);
        onr_session_free(s);
        return rc;
    }
    if (st) fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
    onr_session_free(s);
    return exit_for(st);
}

/* ---- test ----------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    /* numeric suffix order: input_2 before input_10 */
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly) return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

/* Sorted entries of dir whose names start with prefix; returns count. */
static int list_dir(const char *dir, const char *prefix, char **out, int max)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) out[n++] = strdup(e->d_name);
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_str);
    return n;
}

/* ONNX backend runner tolerance: |got - want| <= atol + rtol * |want|. */
static int compare(const onr_tensor *got, const onr_tensor *want, double rtol, double atol,
                   char *why, size_t len)
{
    if (onr_tensor_dtype(got) != onr_tensor_dtype(want)) {
        snprintf(why, len, "type %s, expected %s", onr_dtype_name(onr_tensor_dtype(got)),
                 onr_dtype_name(onr_tensor_dtype(want)));
        return 0;
    }
    int r = onr_tensor_rank(got);
    int same = r == onr_tensor_rank(want);
    for (int d = 0; same && d < r; d++) same = onr_tensor_dims(got)[d] == onr_tensor_dims(want)[d];
    if (!same) {
        snprintf(why, len, "shape differs (rank %d vs expected rank %d)", r, onr_tensor_rank(want));
        return 0;
    }
    int64_t n = onr_tensor_numel(got);
    onr_dtype dt = onr_tensor_dtype(got);
    for (int64_t i = 0; i < n; i++) {
        if (dt == ONR_STRING) {
            if (strcmp(((char **)onr_tensor_data(got))[i], ((char **)onr_tensor_data(want))[i])) {
                snprintf(why, len, "string %lld differs", (long long)i);
                return 0;
            }
            continue;
        }
        double g, w;
        if (dt == ONR_FLOAT16 || dt == ONR_BFLOAT16) {
            /* compare via float32 by exact bits or relative tolerance */
            uint16_t gb = ((const uint16_t *)onr_tensor_data(got))[i];
            uint16_t wb = ((const uint16_t *)onr_tensor_data(want))[i];
            uint32_t g32 = dt == ONR_BFLOAT16 ? (uint32_t)gb << 16 : 0, w32 = dt == ONR_BFLOAT16 ? (uint32_t)wb << 16 : 0;
            if (dt == ONR_BFLOAT16) {
                float gf, wf;
                memcpy(&gf, &g32, 4);
                memcpy(&wf, &w32, 4);
                g = gf, w = wf;
            } else {
                /* half -> double */
                int ge = (gb >> 10) & 31, we = (wb >> 10) & 31;
                double gm = (gb & 1023) / 1024.0, wm = (wb & 1023) / 1024.0;
                g = ge == 31 ? ((gb & 1023) ? NAN : INFINITY)
                             : ldexp(ge ? 1 + gm : gm, ge ? ge - 15 : -14);
                w = we == 31 ? ((wb & 1023) ? NAN : INFINITY)
                             : ldexp(we ? 1 + wm : wm, we ? we - 15 : -14);
                if (gb & 0x8000) g = -g;
                if (wb & 0x8000) w = -w;
            }
        } else {
            g = elem(got, i);
            w = elem(want, i);
        }
        if (isnan(w) && isnan(g)) continue;
        if (g == w) continue;
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            snprintf(why, len, "element %lld is %.9g, expected %.9g", (long long)i, g, w);
            return 0;
        }
    }
    return 1;
}

/* compare() through sequences and optionals, element by element. */
static int compare_value(const onr_tensor *got, const onr_tensor *want, double rtol, double atol,
                         char *why, size_t len)
{
    onr_kind gk = onr_value_kind(got), wk = onr_value_kind(want);
    if (gk == ONR_VALUE_TENSOR && wk == ONR_VALUE_TENSOR)
        return compare(got, want, rtol, atol, why, len);
    if (gk != wk || onr_value_count(got) != onr_value_count(want)) {
        snprintf(why, len, "kind %d with %lld elements, expected kind %d with %lld", (int)gk,
                 (long long)onr_value_count(got), (int)wk, (long long)onr_value_count(want));
        return 0;
    }
    for (int64_t i = 0; i < onr_value_count(got); i++) {
        char sub[400];
        if (!compare_value(onr_value_element(got, i), onr_value_element(want, i), rtol, atol, sub,
                           sizeof sub)) {
            snprintf(why, len, "element %lld: %s", (long long)i, sub);
            return 0;
        }
    }
    return 1;
}

static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *b = p + n;
    while (b > p && b[-1] != '/') b--;
    return b;
}

/* ONNX <= 1.12 backend test data stores bfloat16 tensors as uint16 (NumPy
 * has no bfloat16): read such a tensor as the bfloat16 the model declares. */
static onr_tensor *bf16_from_u16(onr_tensor *t, onr_dtype declared)
{
    if (declared != ONR_BFLOAT16 || onr_tensor_dtype(t) != ONR_UINT16) return t;
    onr_tensor *b = onr_tensor_new(ONR_BFLOAT16, onr_tensor_rank(t), onr_tensor_dims(t));
    if (!b) return t;
    memcpy(onr_tensor_data(b), onr_tensor_data(t), (size_t)onr_tensor_numel(t) * 2);
    onr_tensor_free(t);
    return b;
}

/* Runs every data set of one case; updates counters; returns nothing. */
static void run_case(const char *dir, const cli *c, int *pass, int *fail, int *skip)
{
    char path[4096], name[256];
    size_t bl = strlen(base_name(dir));
    while (bl > 0 && base_name(dir)[bl - 1] == '/') bl--;
    snprintf(name, sizeof name, "%.*s", (int)bl, base_name(dir));
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    char *sets[64];
    int nsets = list_dir(dir, "test_data_set_", sets, 64);
    struct stat st;
    if (stat(path, &st) != 0 || nsets == 0) {
        printf("SKIP %s: no model.onnx or no test_data_set_*\n", name);
        (*skip)++;
        for (int i = 0; i < nsets; i++) free(sets[i]);
        return;
    }
    onr_options *o = onr_options_new();
    if (c->threads) onr_options_set_threads(o, c->threads);
    onr_session *s = NULL;
    onr_status rc = onr_session_open(path, o, &s);
    onr_options_free(o);
    for (int k = 0; k < nsets; k++) {
        char sdir[4096], why[1200] = "";
        snprintf(sdir, sizeof sdir, "%s/%s", dir, sets[k]);
        int ok = 0;
        char *files_in[256], *files_out[256];
        int nin = list_dir(sdir, "input_", files_in, 256);
        int nout = list_dir(sdir, "output_", files_out, 256);
        onr_tensor *ins[256] = {0};
        const char *names[256];
        if (rc) {
            snprintf(why, sizeof why, "%s: %s", rc == ONR_E_UNSUPPORTED ? "unsupported" : "load error",
                     onr_session_errmsg(s));
            goto report;
        }
        int n_model = onr_session_input_count(s);
        if (nin != n_model) {
            snprintf(why, sizeof why, "%d input files for %d model inputs", nin, n_model);
            goto done;
        }
        for (int i = 0; i < nin; i++) {
            char f[8192], msg[1024];
            snprintf(f, sizeof f, "%s/%s", sdir, files_in[i]);
            onr_value_info ki; /* a TensorProto, SequenceProto or OptionalProto */
            onr_session_input_info(s, i, &ki);
            if (onr_value_read_file(f, ki.kind, &ins[i], msg, sizeof msg)) {
                snprintf(why, sizeof why, "%s", msg);
                goto done;
            }
            /* bind by the name stored in the .pb when it names a model input */
            onr_value_info vi;
            onr_session_input_info(s, i, &vi);
            names[i] = vi.name;
            for (int m = 0; m < n_model; m++) {
                onr_session_input_info(s, m, &vi);
                if (strcmp(vi.name, onr_tensor_name(ins[i])) == 0) names[i] = vi.name;
            }
        }
        for (int i = 0; i < nin; i++)
            for (int j = 0; j < i; j++)
                if (strcmp(names[i], names[j]) == 0) { /* names unusable: positional */
                    for (int m = 0; m < nin; m++) {
                        onr_value_info vi;
                        onr_session_input_info(s, m, &vi);
                        names[m] = vi.name;
                    }
                    i = nin;
                    break;
                }
        for (int i = 0; i < nin; i++)
            for (int m = 0; m < n_model; m++) {
                onr_value_info vi;
                onr_session_input_info(s, m, &vi);
                if (strcmp(vi.name, names[i]) == 0) ins[i] = bf16_from_u16(ins[i], vi.dtype);
            }
        onr_status r = onr_session_run(s, nin, names, (const onr_tensor *const *)ins);
        if (r) {
            snprintf(why, sizeof why, "%s: %s", r == ONR_E_UNSUPPORTED ? "unsupported" : "run error",
                     onr_session_errmsg(s));
            goto done;
        }
        if (nout != onr_session_output_count(s)) {
            snprintf(why, sizeof why, "%d expected outputs, model has %d", nout,
                     onr_session_output_count(s));
            goto done;
        }
        ok = 1;
        for (int i = 0; i < nout && ok; i++) {
            char f[8192], msg[1024], w[512];
            onr_tensor *want = NULL;
            snprintf(f, sizeof f, "%s/%s", sdir, files_out[i]);
            onr_value_info vi;
            onr_session_output_info(s, i, &vi);
            if (onr_value_read_file(f, vi.kind, &want, msg, sizeof msg)) {
                snprintf(why, sizeof why, "%s", msg);
                ok = 0;
                break;
            }
            want = bf16_from_u16(want, vi.dtype);
            if (!compare_value(onr_session_output(s, i), want, c->rtol, c->atol, w, sizeof w)) {
                snprintf(why, sizeof why, "output %d '%s': %s", i, vi.name, w);
                ok = 0;
            }
            onr_tensor_free(want);
        }
    done:
        for (int i = 0; i < nin; i++) onr_tensor_free(ins[i]);
    report:
        for (int i = 0; i < nin; i++) free(files_in[i]);
        for (int i = 0; i < nout; i++) free(files_out[i]);
        if (ok) {
            printf("PASS %s/%s\n", name, sets[k]);
            (*pass)++;
        } else {
            printf("FAIL %s/%s: %s\n", name, sets[k], why);
            (*fail)++;
        }
        fflush(stdout);
        free(sets[k]);
    }
    onr_session_free(s);
}

static int cmd_test(const cli *c)
{
    int pass = 0, fail = 0, skip = 0;
    for (int i = 0; i < c->n_cases; i++) run_case(c->cases[i], c, &pass, &fail, &skip);
    printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
    return fail ? EXIT_ERR : EXIT_OK;
}

/* ---- profile --------------------------------------------------------------- */

typedef struct stepstat {
    int step;
    double ms;
} stepstat;

static int cmp_stepstat(const void *a, const void *b)
{
    double x = ((const stepstat *)a)->ms, y = ((const stepstat *)b)->ms;
    return x > y ? -1 : x < y;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
    fputc('"', f);
}

/* Per-step times over --iters runs (after --warmup), sorted by total time,
 * then per op type; --trace writes the last run as Chrome trace events. */
static int cmd_profile(const cli *c)
{
    int code = 0;
    onr_session *s = open_model(c->model, c, &code);
    if (!s) return code;
    int n = onr_session_input_count(s), ns = onr_session_step_count(s);
    onr_tensor *ins[n > 0 ? n : 1];
    const char *names[n > 0 ? n : 1];
    stepstat *acc = calloc((size_t)ns + 1, sizeof *acc);
    if (!acc || (code = make_inputs(s, c, ins, names)) != EXIT_OK) {
        free(acc);
        onr_session_free(s);
        return code ? code : EXIT_ERR;
    }
    for (int i = 0; i < ns; i++) acc[i].step = i;
    onr_status st = ONR_OK;
    double total = 0;
    for (int it = 0; it < c->warmup + c->iters && !st; it++) {
        onr_session_set_profiling(s, it >= c->warmup);
        double a = now_ms();
        st = onr_session_run(s, n, names, (const onr_tensor *const *)ins);
        if (it < c->warmup || st) continue;
        total += now_ms() - a;
        for (int i = 0; i < ns; i++) acc[i].ms += onr_session_step_ms(s, i, NULL);
    }
    if (st) {
        fprintf(stderr, "onnx-run: %s\n", onr_session_errmsg(s));
        code = exit_for(st);
        goto out;
    }
    if (c->trace) {
        FILE *f = fopen(c->trace, "w");
        if (!f) {
            fprintf(stderr, "onnx-run: cannot create '%s': %s\n", c->trace, strerror(errno));
            code = EXIT_ERR;
            goto out;
        }
        fprintf(f, "{\"traceEvents\":[\n");
        for (int i = 0; i < ns; i++) {
            const char *node;
            const char *op = onr_session_step_op(s, i, &node);
            double start, ms = onr_session_step_ms(s, i, &start);
            fprintf(f, "%s{\"name\":", i ? ",\n" : "");
            json_str(f, op);
            fprintf(f, ",\"cat\":\"step\",\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":%.3f,\"dur\":%.3f,"
                       "\"args\":{\"node\":", start * 1e3, ms * 1e3);
            json_str(f, node);
            fprintf(f, ",\"step\":%d}}", i);
        }
        fprintf(f, "\n]}\n");
        fclose(f);
    }
    double steps_total = 0;
    for (int i = 0; i < ns; i++) steps_total += acc[i].ms;
    qsort(acc, (size_t)ns, sizeof *acc, cmp_stepstat);
    printf("model %s, %d steps, %d threads, %d runs: %.3f ms per run (steps %.3f ms)\n", c->model,
           ns, onr_session_threads(s), c->iters, total / c->iters, steps_total / c->iters);
    printf("%5s  %-20s %10s %6s  %s\n", "step", "op", "ms/run", "%", "node");
    for (int i = 0; i < ns && i < 40; i++) {
        const char *node;
        const char *op = onr_session_step_op(s, acc[i].step, &node);
        printf("%5d  %-20s %10.4f %6.2f  %s\n", acc[i].step, op, acc[i].ms / c->iters,
               steps_total > 0 ? 100 * acc[i].ms / steps_total : 0, node);
    }
    /* per op type */
    printf("\n%-20s %6s %10s %6s\n", "op", "steps", "ms/run", "%");
    int *done = calloc((size_t)ns + 1, sizeof *done);
    for (int i = 0; done && i < ns; i++) {
        if (done[i]) continue;
        const char *op = onr_session_step_op(s, acc[i].step, NULL);
        double ms = 0;
        int cnt = 0;
        for (int j = i; j < ns; j++)
            if (!done[j] && strcmp(onr_session_step_op(s, acc[j].step, NULL), op) == 0) {
                done[j] = 1;
                ms += acc[j].ms;
                cnt++;
            }
        printf("%-20s %6d %10.4f %6.2f\n", op, cnt, ms / c->iters,
               steps_total > 0 ? 100 * ms / steps_total : 0);
    }
    free(done);
out:
    free(acc);
    free_inputs(n, ins);
    onr_session_free(s);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("onnx-run %s\n", ONR_VERSION_STRING);
        return EXIT_OK;
    }
    static cli c;
    static const struct {
        const char *name;
        int (*fn)(const cli *);
    } cmds[] = {{"run", cmd_run},   {"bench", cmd_bench},     {"test", cmd_test},
                {"info", cmd_info}, {"profile", cmd_profile}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name) != 0) continue;
        if (parse_args(cmd, argc - 2, argv + 2, &c)) {
            usage(stderr);
            return EXIT_USAGE;
        }
        return cmds[i].fn(&c);
    }
    fprintf(stderr, "onnx-run: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
