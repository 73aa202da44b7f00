/*
 * onnx-run.c - the command-line tool. Uses only the public API (onnxrun.h).
 *
 *   onnx-run run   MODEL [-i [NAME=]FILE]... [-o OUTDIR] [--threads N] [--no-fuse]
 *                  (run, bench, test, profile also take [--memory-limit BYTES])
 *   onnx-run bench MODEL [-i [NAME=]FILE]... [--iters N] [--warmup N] [--threads N] [--json]
 *   onnx-run test  CASE_DIR... [--threads N] [--rtol X] [--atol Y]
 *   onnx-run info  MODEL [--plan] [--no-fuse] [--dot] [--svg FILE]  |  onnx-run info --ops
 *   onnx-run profile MODEL [-i ...] [--iters N] [--warmup N] [--threads N] [--trace FILE.json] [--top N]
 *
 * `onnx-run COMMAND --help` lists a command's options with their defaults
 * (the table `options` below); an option of another command is refused.
 *
 * Exit status: 0 success; 1 error while loading or running (and `test` on
 * a path holding no case); 2 bad usage (an unknown or misplaced option, a
 * missing value, -i given for some inputs but not all); 3 the model needs
 * something not supported.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
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

/* ---- commands and their options ------------------------------------------
 * One table says which command takes which option, with its help and
 * default, so every command refuses what it does not take (exit 2, naming
 * the option and the command) and prints its own --help from the same rows. */

enum { C_RUN = 1, C_BENCH = 2, C_TEST = 4, C_INFO = 8, C_PROFILE = 16 };

static const struct command {
    const char *name, *args, *what;
    int bit;
} commands[] = {
    {"run", "MODEL", "run a model once; print a summary of each output or write them", C_RUN},
    {"bench", "MODEL", "time runs of a model", C_BENCH},
    {"test", "CASE_DIR...", "run ONNX backend test cases (model.onnx + test_data_set_*)", C_TEST},
    {"info", "MODEL | --ops", "describe a model and its plan, or list the supported operators",
     C_INFO},
    {"profile", "MODEL", "time each step of a model's plan", C_PROFILE},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static const struct option {
    const char *name, *value; /* value: its placeholder, NULL for a flag */
    int cmds;
    const char *help;
} options[] = {
    {"-i", "[NAME=]FILE", C_RUN | C_BENCH | C_PROFILE,
     "an input (.pb TensorProto or .npy), by name or else in graph order; once -i is used, "
     "every input must be given (default: none, all inputs generated from the declared "
     "shapes, symbolic dims = 1)"},
    {"-o", "OUTDIR", C_RUN, "write output K as OUTDIR/output_K.pb (default: a summary on stdout)"},
    {"--threads", "N", C_RUN | C_BENCH | C_TEST | C_INFO | C_PROFILE,
     "kernel threads, at most the CPUs available (default: the CPUs available)"},
    {"--memory-limit", "BYTES", C_RUN | C_BENCH | C_TEST | C_PROFILE,
     "the session's memory budget, with an optional K, M or G suffix (powers of 1024); a "
     "model that would need more is refused naming the value; 0: no limit (default: 90% of "
     "the memory available)"},
    {"--no-fuse", NULL, C_RUN | C_BENCH | C_INFO | C_PROFILE,
     "plan without graph fusions (default: fusions on)"},
    {"--iters", "N", C_BENCH | C_PROFILE, "timed runs (default: 10)"},
    {"--warmup", "N", C_BENCH | C_PROFILE, "untimed runs first (default: 2)"},
    {"--json", NULL, C_BENCH, "print one JSON line (default: text)"},
    {"--rtol", "X", C_TEST, "relative tolerance (default: 1e-3, the ONNX backend runner's)"},
    {"--atol", "Y", C_TEST, "absolute tolerance (default: 1e-7, the ONNX backend runner's)"},
    {"--plan", NULL, C_INFO, "show the plan: steps, fusions, activation memory"},
    {"--dot", NULL, C_INFO, "print the plan as a Graphviz drawing"},
    {"--svg", "FILE", C_INFO, "render the plan to FILE with Graphviz's dot"},
    {"--ops", NULL, C_INFO, "list the supported operators and opsets (no MODEL)"},
    {"--spincount", NULL, C_INFO,
     "print the GOMP_SPINCOUNT that spins OpenMP's idle workers ONR_SPIN_US (250) us on this CPU "
     "(no MODEL)"},
    {"--trace", "FILE", C_PROFILE, "write the last run as Chrome trace events"},
    {"--top", "N", C_PROFILE, "list the N slowest steps; 0: every step (default: 40)"},
    {"-h", NULL, C_RUN | C_BENCH | C_TEST | C_INFO | C_PROFILE, "this help (also --help)"},
};
#define N_OPTIONS (int)(sizeof options / sizeof options[0])

/* CPUs this process may run on (its affinity mask), at least 1. */
static int cpus_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: onnx-run COMMAND ARGS [OPTIONS]\n");
    for (int k = 0; k < N_COMMANDS; k++) {
        fprintf(f, "  onnx-run %-7s %s", commands[k].name, commands[k].args);
        for (int o = 0; o < N_OPTIONS; o++)
            if (options[o].cmds & commands[k].bit && strcmp(options[o].name, "-h") != 0)
                fprintf(f, " [%s%s%s]%s", options[o].name, options[o].value ? " " : "",
                        options[o].value ? options[o].value : "",
                        strcmp(options[o].name, "-i") == 0 ? "..." : "");
        fprintf(f, "\n");
    }
    fprintf(f, "'onnx-run COMMAND --help' describes a command's options and their defaults.\n"
               "Exit status: 0 ok, 1 error, 2 bad usage, 3 unsupported model feature.\n");
}

static void command_help(FILE *f, const struct command *c)
{
    fprintf(f, "usage: onnx-run %s %s [OPTIONS]\n%s\noptions:\n", c->name, c->args, c->what);
    for (int o = 0; o < N_OPTIONS; o++) {
        if (!(options[o].cmds & c->bit)) continue;
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", options[o].name, options[o].value ? " " : "",
                 options[o].value ? options[o].value : "");
        char help[512];
        snprintf(help, sizeof help, "%s", options[o].help);
        if (strcmp(options[o].name, "--threads") == 0) /* the default, as it is here */
            snprintf(help + strlen(help) - 1, sizeof help - strlen(help) + 1, ", %d here)",
                     cpus_available());
        /* the help wrapped at 80 columns, indented under itself */
        fprintf(f, "  %-18s", head);
        int col = 20;
        for (char *w = strtok(help, " "); w; w = strtok(NULL, " ")) {
            int len = (int)strlen(w);
            if (col + 1 + len > 80) {
                fprintf(f, "\n%20s", "");
                col = 20;
            }
            fprintf(f, " %s", w);
            col += 1 + len;
        }
        fprintf(f, "\n");
    }
    fprintf(f, "Exit status: 0 ok, 1 error, 2 bad usage, 3 unsupported model feature.\n");
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

/* "512", "64K", "1.5G": bytes (K, M, G, T are powers of 1024); -1 when bad. */
static int64_t parse_bytes(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return -1;
    double mul = 1;
    if (*end) {
        const char *u = strchr("KMGT", toupper((unsigned char)*end));
        if (!u || !*u) return -1;
        for (const char *k = "KMGT"; k <= u; k++) mul *= 1024;
        end++;
        if (toupper((unsigned char)*end) == 'I') end++; /* "Gi" */
        if (toupper((unsigned char)*end) == 'B') end++; /* "GB", "GiB" */
        if (*end) return -1;
    }
    v *= mul;
    if (v >= 9.2e18) return -1;
    return (int64_t)v;
}

/* ---- common options ------------------------------------------------------ */

typedef struct cli {
    const char *model;
    const char *in_names[256];
    const char *in_files[256];
    int n_in;
    const char *outdir;
    int threads, no_fuse, iters, warmup, top, json, plan, dot, ops, spincount;
    int64_t memory_limit; /* 0: the library's default; < 0: none */
    const char *svg;
    double rtol, atol;
    const char *trace;
    const char *cases[4096];
    int n_cases;
} cli;

/* More threads than this is a typo, not a request (libgomp cannot make 10^9). */
#define MAX_THREADS_ARG 4096

/* Parses argv after the command; returns 0, or prints why and returns -1
 * (the caller exits 2). */
static int parse_args(const struct command *cmd, int argc, char **argv, cli *c)
{
    const char *cn = cmd->name;
    c->iters = 10;
    c->warmup = 2;
    c->top = 40;
    c->rtol = 1e-3; /* the ONNX backend runner's tolerances */
    c->atol = 1e-7;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) { /* an operand */
            if (cmd->bit == C_TEST) {
                if (c->n_cases == (int)(sizeof c->cases / sizeof c->cases[0]))
                    return fprintf(stderr, "onnx-run test: too many CASE_DIRs\n"), -1;
                c->cases[c->n_cases++] = a;
            } else if (!c->model) {
                c->model = a;
            } else {
                return fprintf(stderr, "onnx-run %s: unexpected argument '%s'\n", cn, a), -1;
            }
            continue;
        }
        if (strcmp(a, "--help") == 0) a = "-h";
        int o = 0;
        while (o < N_OPTIONS && strcmp(options[o].name, a) != 0) o++;
        if (o == N_OPTIONS)
            return fprintf(stderr, "onnx-run %s: unknown option '%s'\n", cn, a), -1;
        if (!(options[o].cmds & cmd->bit)) {
            char owners[128] = "";
            for (int k = 0, n = 0; k < N_COMMANDS; k++)
                if (options[o].cmds & commands[k].bit)
                    snprintf(owners + strlen(owners), sizeof owners - strlen(owners),
                             "%s'onnx-run %s'", n++ ? " or " : "", commands[k].name);
            return fprintf(stderr, "onnx-run %s: %s is an option of %s, not of '%s'\n", cn, a,
                           owners, cn),
                   -1;
        }
        const char *v = NULL;
        if (options[o].value) {
            if (i + 1 >= argc)
                return fprintf(stderr, "onnx-run %s: option '%s' needs a value (%s %s)\n", cn, a,
                               a, options[o].value),
                       -1;
            v = argv[++i];
        }
        if (strcmp(a, "-h") == 0) {
            command_help(stdout, cmd);
            exit(EXIT_OK);
        } else if (strcmp(a, "-i") == 0) {
            if (c->n_in == (int)(sizeof c->in_files / sizeof c->in_files[0]))
                return fprintf(stderr, "onnx-run %s: too many -i (at most %d)\n", cn, c->n_in), -1;
            char *eq = strchr(argv[i], '=');
            /* NAME=FILE unless the whole thing is an existing file */
            struct stat st;
            if (eq && stat(argv[i], &st) != 0) {
                *eq = 0;
                c->in_names[c->n_in] = argv[i];
                c->in_files[c->n_in++] = eq + 1;
            } else {
                c->in_names[c->n_in] = NULL;
                c->in_files[c->n_in++] = v;
            }
        } else if (strcmp(a, "-o") == 0) {
            c->outdir = v;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_int(v, &c->threads) || c->threads < 1 || c->threads > MAX_THREADS_ARG)
                return fprintf(stderr, "onnx-run %s: --threads needs an integer from 1 to %d, "
                               "not '%s'\n", cn, MAX_THREADS_ARG, v),
                       -1;
            int cpus = cpus_available();
            if (c->threads > cpus) {
                fprintf(stderr, "onnx-run: warning: --threads %d is more than the %d CPU%s "
                        "available; using %d\n", c->threads, cpus, cpus == 1 ? "" : "s", cpus);
                c->threads = cpus;
            }
        } else if (strcmp(a, "--memory-limit") == 0) {
            int64_t b = parse_bytes(v);
            if (b < 0)
                return fprintf(stderr, "onnx-run %s: --memory-limit needs a byte count with an "
                               "optional K, M or G suffix (e.g. 2G), not '%s'\n", cn, v),
                       -1;
            c->memory_limit = b ? b : -1;
        } else if (strcmp(a, "--iters") == 0) {
            if (parse_int(v, &c->iters) || c->iters < 1)
                return fprintf(stderr, "onnx-run %s: --iters needs a positive integer, not "
                               "'%s'\n", cn, v),
                       -1;
        } else if (strcmp(a, "--warmup") == 0) {
            if (parse_int(v, &c->warmup))
                return fprintf(stderr, "onnx-run %s: --warmup needs an integer >= 0, not '%s'\n",
                               cn, v),
                       -1;
        } else if (strcmp(a, "--top") == 0) {
            if (parse_int(v, &c->top))
                return fprintf(stderr, "onnx-run %s: --top needs an integer >= 0, not '%s'\n",
                               cn, v),
                       -1;
        } else if (strcmp(a, "--rtol") == 0 || strcmp(a, "--atol") == 0) {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end || !(x >= 0) || isinf(x))
                return fprintf(stderr, "onnx-run %s: %s needs a number >= 0, not '%s'\n", cn, a,
                               v),
                       -1;
            if (a[2] == 'r') c->rtol = x;
            else c->atol = x;
        } else if (strcmp(a, "--trace") == 0) {
            c->trace = v;
        } else if (strcmp(a, "--svg") == 0) {
            c->svg = v;
        } else if (strcmp(a, "--no-fuse") == 0) {
            c->no_fuse = 1;
        } else if (strcmp(a, "--json") == 0) {
            c->json = 1;
        } else if (strcmp(a, "--plan") == 0) {
            c->plan = 1;
        } else if (strcmp(a, "--dot") == 0) {
            c->dot = 1;
        } else if (strcmp(a, "--ops") == 0) {
            c->ops = 1;
        } else if (strcmp(a, "--spincount") == 0) {
            c->spincount = 1;
        }
    }
    if (c->ops || c->spincount) {
        if (c->model || c->plan || c->dot || c->svg || (c->ops && c->spincount))
            return fprintf(stderr, "onnx-run info: %s and takes no MODEL or other view\n",
                           c->ops ? "--ops lists the operators" : "--spincount prints a spin count"),
                   -1;
        return 0;
    }
    if (cmd->bit == C_TEST ? c->n_cases == 0 : !c->model)
        return fprintf(stderr, "onnx-run %s: missing %s\n", cn,
                       cmd->bit == C_TEST ? "CASE_DIR" : "MODEL"),
               -1;
    return 0;
}

static onr_session *open_model(const char *path, const cli *c, int *exit_code)
{
    onr_options *o = onr_options_new();
    if (c->threads) onr_options_set_threads(o, c->threads);
    onr_options_set_fuse(o, !c->no_fuse);
    onr_options_set_memory_limit(o, c->memory_limit);
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

/* A file the user names for writing (--trace, --svg): created without
 * following a symbolic link, and refused unless it is a regular file, so a
 * FIFO or device never blocks or receives output. */
static int create_out_fd(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
    struct stat st;
    if (fd < 0) {
        fprintf(stderr, "onnx-run: cannot create '%s': %s\n", path,
                errno == ELOOP   ? "it is a symbolic link (refused)"
                : errno == ENXIO ? "it is a FIFO or device (refused)"
                                 : strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) != 0) {
        fprintf(stderr, "onnx-run: cannot create '%s': not a regular file (refused)\n", path);
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static FILE *create_out(const char *path)
{
    int fd = create_out_fd(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd >= 0 && !f) {
        fprintf(stderr, "onnx-run: cannot write '%s': %s\n", path, strerror(errno));
        close(fd);
    }
    return f;
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
        case ONR_INT8: case ONR_UINT8: case ONR_INT4: case ONR_UINT4: case ONR_INT2:
        case ONR_UINT2: ((uint8_t *)p)[i] = (uint8_t)k; break;
        case ONR_INT16: case ONR_UINT16: ((uint16_t *)p)[i] = (uint16_t)k; break;
        case ONR_UINT32: ((uint32_t *)p)[i] = (uint32_t)k; break;
        case ONR_UINT64: ((uint64_t *)p)[i] = (uint64_t)k; break;
        default: break; /* float16/bfloat16/string: zeros */
        }
    }
    return t;
}

/* An empty map of a declared map input's key and value types. */
static onr_tensor *empty_map(const onr_value_info *vi)
{
    int64_t zero = 0;
    onr_dtype kt = vi->key_dtype == ONR_UNDEFINED ? ONR_INT64 : vi->key_dtype;
    onr_dtype vt = vi->dtype == ONR_UNDEFINED ? ONR_FLOAT : vi->dtype;
    onr_tensor *k = onr_tensor_new(kt, 1, &zero), *v = onr_tensor_new(vt, 1, &zero);
    onr_tensor *m = k && v ? onr_map_new(k, v) : NULL;
    onr_tensor_free(k);
    onr_tensor_free(v);
    return m;
}

/* Bind -i files (named or positional) and generate the rest. The arrays
 * (one slot per model input) are allocated here, on the heap: a model may
 * declare tens of thousands of inputs; free_inputs releases them. */

/* NumPy has no 8-, 4- or 2-bit types: an input the model declares as one
 * may come as uint8 or int8 (a .npy of 'u1', 'i1', or 'V1' as ml_dtypes
 * arrays are saved, or a uint8 TensorProto), one element per byte holding
 * its bit pattern: a float8 byte, or a 4-/2-bit value in the low bits with
 * the high bits zero or (int4/int2) a copy of its sign bit. Those bytes
 * become the declared type; a byte that is no element of it is an error. */
static onr_status lowp_from_bytes(onr_tensor **t, onr_dtype declared, const char *file, char *msg,
                                  size_t len)
{
    int bits;
    switch (declared) {
    case ONR_FLOAT8E4M3FN: case ONR_FLOAT8E4M3FNUZ: case ONR_FLOAT8E5M2:
    case ONR_FLOAT8E5M2FNUZ: case ONR_FLOAT8E8M0: bits = 8; break;
    case ONR_UINT4: case ONR_INT4: case ONR_FLOAT4E2M1: bits = 4; break;
    case ONR_UINT2: case ONR_INT2: bits = 2; break;
    default: return ONR_OK;
    }
    onr_dtype got = onr_tensor_dtype(*t);
    if (got == declared) return ONR_OK;
    if (got != ONR_UINT8 && got != ONR_INT8) {
        snprintf(msg, len, "%s: %s data for an input of type %s (give its bit patterns as "
                 "uint8)", file, onr_dtype_name(got), onr_dtype_name(declared));
        return ONR_E_ARG;
    }
    onr_tensor *b = onr_tensor_new(declared, onr_tensor_rank(*t), onr_tensor_dims(*t));
    if (!b) {
        snprintf(msg, len, "%s: out of memory", file);
        return ONR_E_NOMEM;
    }
    const unsigned char *src = onr_tensor_data(*t);
    unsigned char *dst = onr_tensor_data(b);
    unsigned mask = (1u << bits) - 1, high = 0xFFu & ~mask;
    int sign = declared == ONR_INT4 || declared == ONR_INT2;
    for (int64_t i = 0; i < onr_tensor_numel(*t); i++) {
        unsigned v = src[i], neg = sign && (v >> (bits - 1) & 1);
        if (bits < 8 && (v & high) != 0 && !(neg && (v & high) == high)) {
            snprintf(msg, len, "%s: element %lld is 0x%02x, which is no %s bit pattern", file,
                     (long long)i, v, onr_dtype_name(declared));
            onr_tensor_free(b);
            return ONR_E_ARG;
        }
        dst[i] = (unsigned char)(neg ? v | high : v); /* int4/int2 live sign-extended */
    }
    onr_tensor_free(*t);
    *t = b;
    return ONR_OK;
}

static int make_inputs(onr_session *s, const cli *c, onr_tensor ***ins_out,
                       const char ***names_out)
{
    int n = onr_session_input_count(s);
    char msg[1024];
    onr_tensor **ins = *ins_out = calloc((size_t)n + 1, sizeof *ins);
    const char **names = *names_out = calloc((size_t)n + 1, sizeof *names);
    if (!ins || !names) {
        fprintf(stderr, "onnx-run: out of memory for %d inputs\n", n);
        return EXIT_ERR;
    }
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
        onr_value_info ki; /* a TensorProto, .npy, SequenceProto, OptionalProto or MapProto */
        onr_session_input_info(s, slot, &ki);
        onr_status st = onr_value_read_file(c->in_files[k], ki.kind, &ins[slot], msg, sizeof msg);
        if (!st && ki.kind == ONR_VALUE_TENSOR)
            st = lowp_from_bytes(&ins[slot], ki.dtype, c->in_files[k], msg, sizeof msg);
        if (st) {
            fprintf(stderr, "onnx-run: %s\n", msg);
            return EXIT_ERR;
        }
    }
    /* once -i is used, every input is the user's: a forgotten one is an error,
     * never silently made up */
    for (int i = 0; c->n_in > 0 && i < n; i++) {
        if (ins[i]) continue;
        onr_value_info vi;
        onr_session_input_info(s, i, &vi);
        fprintf(stderr, "onnx-run: input '%s' is not given: the model has %d input%s and -i "
                "gives %d (give every input with -i, or none to have them all generated)\n",
                vi.name, n, n == 1 ? "" : "s", c->n_in);
        return EXIT_USAGE;
    }
    if (c->n_in == 0 && n > 0)
        fprintf(stderr, "onnx-run: no -i given: generating %s%d input%s from the declared "
                "shapes (symbolic dims = 1)\n", n > 1 ? "all " : "", n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        onr_value_info vi;
        onr_session_input_info(s, i, &vi);
        names[i] = vi.name;
        if (!ins[i] && vi.kind != ONR_VALUE_TENSOR) /* generated: empty */
            ins[i] = vi.kind == ONR_VALUE_SEQUENCE ? onr_sequence_new(vi.dtype, 0, NULL)
                     : vi.kind == ONR_VALUE_MAP    ? empty_map(&vi)
                                                   : onr_optional_new(vi.dtype, NULL);
        if (!ins[i] && !(ins[i] = generate_input(&vi, msg, sizeof msg))) {
            fprintf(stderr, "onnx-run: %s\n", msg);
            return EXIT_ERR;
        }
    }
    return EXIT_OK;
}

static void free_inputs(int n, onr_tensor **ins, const char **names)
{
    for (int i = 0; ins && i < n; i++) onr_tensor_free(ins[i]);
    free(ins);
    free(names);
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
    case ONR_INT8: case ONR_INT4: case ONR_INT2: return ((const int8_t *)p)[i];
    case ONR_UINT8: case ONR_BOOL: case ONR_UINT4: case ONR_UINT2: return ((const uint8_t *)p)[i];
    case ONR_UINT16: return ((const uint16_t *)p)[i];
    case ONR_UINT32: return ((const uint32_t *)p)[i];
    case ONR_UINT64: return (double)((const uint64_t *)p)[i];
    default: return NAN;
    }
}

static void summarize(const char *name, const onr_tensor *t)
{
    if (onr_value_kind(t) == ONR_VALUE_MAP) { /* a map: its first entries */
        const onr_tensor *k = onr_map_keys(t), *v = onr_map_values(t);
        int64_t n = onr_value_count(t), row = n ? onr_tensor_numel(v) / n : 0;
        printf("%s: map of %lld, %s -> %s", name, (long long)n,
               onr_dtype_name(onr_tensor_dtype(k)), onr_dtype_name(onr_tensor_dtype(v)));
        for (int64_t i = 0; i < n && i < 8; i++) {
            if (onr_tensor_dtype(k) == ONR_STRING)
                printf(" \"%s\":", ((char **)onr_tensor_data(k))[i]);
            else
                printf(" %.0f:", elem(k, i));
            if (onr_tensor_dtype(v) == ONR_STRING)
                printf(" \"%s\"", ((char **)onr_tensor_data(v))[i * row]);
            else
                printf(" %.6g%s", elem(v, i * row), row > 1 ? " ..." : "");
        }
        printf("%s\n", n > 8 ? " ..." : "");
        return;
    }
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
    switch (onr_tensor_dtype(t)) { /* float8, float4: their bit patterns */
    case ONR_FLOAT8E4M3FN: case ONR_FLOAT8E4M3FNUZ: case ONR_FLOAT8E5M2:
    case ONR_FLOAT8E5M2FNUZ: case ONR_FLOAT4E2M1: case ONR_FLOAT8E8M0:
        printf(" = bits");
        for (int64_t i = 0; i < n && i < 8; i++)
            printf(" 0x%02x", ((const unsigned char *)onr_tensor_data(t))[i]);
        printf("%s\n", n > 8 ? " ..." : "");
        return;
    default: break;
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
    onr_tensor **ins = NULL;
    const char **names = NULL;
    if ((code = make_inputs(s, c, &ins, &names)) == EXIT_OK) {
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
    free_inputs(n, ins, names);
    onr_session_free(s);
    return code;
}

/* ---- bench ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The OpenMP wait policy this process started with (set_wait_policy), for
 * bench's JSON: only letters, digits and "=._- " of the variables. */
static const char *wait_policy_name(void)
{
    static char buf[96];
    const char *p = getenv("OMP_WAIT_POLICY"), *n = getenv("GOMP_SPINCOUNT");
    if (!p && !n) return "libgomp default";
    char raw[96];
    snprintf(raw, sizeof raw, "%s%.30s%s%s%.30s", p ? "OMP_WAIT_POLICY=" : "", p ? p : "",
             p && n ? " " : "", n ? "GOMP_SPINCOUNT=" : "", n ? n : "");
    size_t j = 0;
    for (size_t i = 0; raw[i] && j + 1 < sizeof buf; i++)
        if (isalnum((unsigned char)raw[i]) || strchr("=._- ", raw[i])) buf[j++] = raw[i];
    buf[j] = 0;
    return buf;
}

static int cmd_bench(const cli *c)
{
    int code = 0;
    double t0 = now_ms();
    onr_session *s = open_model(c->model, c, &code);
    if (!s) return code;
    double load_ms = now_ms() - t0;
    int n = onr_session_input_count(s);
    onr_tensor **ins = NULL;
    const char **names = NULL;
    double *times = malloc(sizeof(double) * (size_t)c->iters);
    if (!times || (code = make_inputs(s, c, &ins, &names)) != EXIT_OK) {
        free(times);
        free_inputs(n, ins, names);
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
                   "\"peak_rss_mb\":%.1f,\"wait_policy\":\"%s\"}\n",
                   c->model, load_ms, first, med, times[0], times[c->iters - 1], c->iters,
                   onr_session_threads(s), rss, wait_policy_name());
        else
            printf("model %s\nthreads %d\nload %.2f ms\nfirst run %.2f ms\n"
                   "median %.3f ms  min %.3f ms  max %.3f ms  (%d iterations, %d warm-up)\n"
                   "peak RSS %.1f MB\n",
                   c->model, onr_session_threads(s), load_ms, first, med, times[0],
                   times[c->iters - 1], c->iters, c->warmup, rss);
    }
    free(times);
    free_inputs(n, ins, names);
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

static int cmp_opname(const void *a, const void *b)
{
    const opcount *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->op, y->op);
}

static void print_value(const char *kind, const onr_value_info *vi)
{
    int maps = vi->kind == ONR_VALUE_MAP || vi->elem_kind == ONR_VALUE_MAP;
    if (maps) { /* map(K, V), seq(map(K, V)), optional(map(K, V)) */
        printf("  %s %s: %smap(%s, %s)%s\n", kind, vi->name,
               vi->kind == ONR_VALUE_SEQUENCE ? "seq(" : vi->kind == ONR_VALUE_OPTIONAL ? "optional(" : "",
               onr_dtype_name(vi->key_dtype), onr_dtype_name(vi->dtype),
               vi->kind != ONR_VALUE_MAP ? ")" : "");
        return;
    }
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
    int fd[2], out = create_out_fd(path); /* dot writes to it: no FIFO, no link */
    if (out < 0) return EXIT_ERR;
    if (pipe(fd) != 0) {
        close(out);
        return fprintf(stderr, "onnx-run: pipe: %s\n", strerror(errno)), EXIT_ERR;
    }
    pid_t pid = fork();
    if (pid < 0) return fprintf(stderr, "onnx-run: fork: %s\n", strerror(errno)), EXIT_ERR;
    if (pid == 0) {
        dup2(fd[0], 0);
        dup2(out, 1);
        close(fd[0]), close(fd[1]), close(out);
        execlp("dot", "dot", "-Tsvg", (char *)NULL);
        _exit(127);
    }
    close(fd[0]);
    close(out);
    /* dot may be missing (the child exits at once): a write error, not SIGPIPE */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    FILE *f = fdopen(fd[1], "w");
    int wrote = f ? write_dot(f, s) : -1;
    if (f && fclose(f) != 0) wrote = -1;
    if (!f) close(fd[1]);
    signal(SIGPIPE, old);
    int status = 0;
    waitpid(pid, &status, 0);
    if (wrote || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        unlink(path); /* no half-written or empty drawing left behind */
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

/* info --ops: one line per operator, "DOMAIN OP OPSETS", sorted by domain
 * and op; OPSETS lists the opset ranges implemented ("7-12, 13+"), adjacent
 * rows merged. tools/gen-ops-table turns it into the README's table. */
typedef struct oprow {
    const char *domain, *op;
    int since, until;
} oprow;

static int cmp_oprow(const void *a, const void *b)
{
    const oprow *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    if (!c) c = strcmp(x->op, y->op);
    return c ? c : x->since - y->since;
}

static int list_ops(void)
{
    int n = onr_op_count();
    oprow *r = calloc((size_t)n + 1, sizeof *r);
    if (!r) return fprintf(stderr, "onnx-run: out of memory\n"), EXIT_ERR;
    for (int i = 0; i < n; i++) {
        r[i].op = onr_op_info(i, &r[i].domain, &r[i].since, &r[i].until);
        if (!r[i].domain || !*r[i].domain) r[i].domain = "ai.onnx";
    }
    qsort(r, (size_t)n, sizeof *r, cmp_oprow);
    for (int i = 0; i < n;) {
        printf("%s %s ", r[i].domain, r[i].op);
        int j = i, first = 1;
        while (j < n && strcmp(r[j].domain, r[i].domain) == 0 && strcmp(r[j].op, r[i].op) == 0) {
            int since = r[j].since, until = r[j].until;
            /* merge rows that continue one another */
            while (j + 1 < n && until >= 0 && r[j + 1].since == until + 1 &&
                   strcmp(r[j + 1].domain, r[i].domain) == 0 && strcmp(r[j + 1].op, r[i].op) == 0)
                until = r[++j].until;
            if (until < 0) printf("%s%d+", first ? "" : ", ", since);
            else if (until == since) printf("%s%d", first ? "" : ", ", since);
            else printf("%s%d-%d", first ? "" : ", ", since, until);
            first = 0;
            j++;
        }
        printf("\n");
        i = j;
    }
    free(r);
    return EXIT_OK;
}

static int cmd_info(const cli *c)
{
    if (c->ops) return list_ops();
    if (c->spincount) {
        printf("%ld\n", onr_gomp_spincount());
        return EXIT_OK;
    }
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
    /* the histogram: sort the nodes' (domain, op) pairs, count the runs
     * (a scan of the distinct ops per node was quadratic in distinct ops) */
    int nn = onr_session_node_count(s), nops = 0;
    opcount *ops = calloc((size_t)nn + 1, sizeof *ops);
    for (int i = 0; ops && i < nn; i++) {
        const char *dom;
        const char *op = onr_session_node_op(s, i, &dom);
        ops[i] = (opcount){op, dom, 1};
    }
    if (ops) {
        qsort(ops, (size_t)nn, sizeof *ops, cmp_opname);
        for (int i = 0; i < nn; i++) {
            if (nops && strcmp(ops[nops - 1].op, ops[i].op) == 0 &&
                strcmp(ops[nops - 1].domain, ops[i].domain) == 0)
                ops[nops - 1].n++;
            else
                ops[nops++] = ops[i];
        }
        qsort(ops, (size_t)nops, sizeof *ops, cmp_opcount);
    }
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

/* Sorted entries of dir whose names start with prefix, every one of them:
 * *out is malloc'd (free with free_list); returns the count, -1 when dir
 * cannot be read or memory runs out. */
static int list_dir(const char *dir, const char *prefix, char ***out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (n == cap) {
            char **nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        if (!(v[n] = strdup(e->d_name))) break;
        n++;
    }
    int complete = e == NULL;
    closedir(d);
    if (!complete) {
        for (int i = 0; i < n; i++) free(v[i]);
        free(v);
        return -1;
    }
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

/* Is byte b a NaN of the 8-bit float type dt? */
static int lowp_nan(onr_dtype dt, uint8_t b)
{
    switch (dt) {
    case ONR_FLOAT8E4M3FN: return (b & 0x7F) == 0x7F;
    case ONR_FLOAT8E4M3FNUZ:
    case ONR_FLOAT8E5M2FNUZ: return b == 0x80;
    case ONR_FLOAT8E5M2: return (b & 0x7F) > 0x7C;
    case ONR_FLOAT8E8M0: return b == 0xFF;
    default: return 0;
    }
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
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
        char gs[256] = "", ws[256] = "";
        for (int d = 0; d < r && strlen(gs) < 200; d++)
            snprintf(gs + strlen(gs), sizeof gs - strlen(gs), "%s%lld", d ? "," : "",
                     (long long)onr_tensor_dims(got)[d]);
        for (int d = 0; d < onr_tensor_rank(want) && strlen(ws) < 200; d++)
            snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%lld", d ? "," : "",
                     (long long)onr_tensor_dims(want)[d]);
        snprintf(why, len, "shape [%s], expected [%s]", gs, ws);
        return 0;
    }
    int64_t n = onr_tensor_numel(got), bad = 0, first = 0;
    double max_abs = 0, max_rel = 0, first_g = 0, first_w = 0;
    onr_dtype dt = onr_tensor_dtype(got);
    for (int64_t i = 0; i < n; i++) {
        if (dt == ONR_STRING) {
            if (strcmp(((char **)onr_tensor_data(got))[i], ((char **)onr_tensor_data(want))[i])) {
                snprintf(why, len, "string %lld differs", (long long)i);
                return 0;
            }
            continue;
        }
        if (dt >= ONR_FLOAT8E4M3FN && dt <= ONR_INT2) {
            /* 8/4/2-bit types (one byte each in memory): the same value,
             * any NaN pattern matching any other */
            uint8_t gb = ((const uint8_t *)onr_tensor_data(got))[i];
            uint8_t wb = ((const uint8_t *)onr_tensor_data(want))[i];
            if (gb == wb || (lowp_nan(dt, gb) && lowp_nan(dt, wb))) continue;
            snprintf(why, len, "element %lld is 0x%02x, expected 0x%02x (%s)", (long long)i, gb,
                     wb, onr_dtype_name(dt));
            return 0;
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
        double diff = fabs(g - w), rel = w != 0 ? diff / fabs(w) : INFINITY;
        if (!(diff <= max_abs)) max_abs = diff; /* NaN sticks */
        if (!(rel <= max_rel)) max_rel = rel;
        if (!(diff <= atol + rtol * fabs(w))) {
            if (!bad++) first = i, first_g = g, first_w = w;
        }
    }
    if (!bad) return 1;
    snprintf(why, len,
             "%lld of %lld elements differ; max abs diff %.3g, max rel diff %.3g (tolerance "
             "|got - expected| <= atol %g + rtol %g * |expected|); first at element %lld: %.9g, "
             "expected %.9g",
             (long long)bad, (long long)n, max_abs, max_rel, atol, rtol, (long long)first,
             first_g, first_w);
    return 0;
}

/* Maps compare as sets of entries: the same keys (exactly, in any order),
 * and for each key values within compare()'s tolerance. */
static const onr_tensor *sort_keys; /* qsort has no context; the CLI is single-threaded */

static int cmp_key_index(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (onr_tensor_dtype(sort_keys) == ONR_STRING) {
        char **k = onr_tensor_data(sort_keys);
        return strcmp(k[i], k[j]);
    }
    if (onr_tensor_dtype(sort_keys) == ONR_UINT64) {
        const uint64_t *k = onr_tensor_data(sort_keys);
        return (k[i] > k[j]) - (k[i] < k[j]);
    }
    double x = elem(sort_keys, i), y = elem(sort_keys, j); /* exact for keys below 2^53 */
    if (x == y && onr_tensor_dtype(sort_keys) == ONR_INT64) {
        const int64_t *k = onr_tensor_data(sort_keys);
        return (k[i] > k[j]) - (k[i] < k[j]);
    }
    return (x > y) - (x < y);
}

static int64_t *key_order(const onr_tensor *keys, int64_t n)
{
    int64_t *ix = malloc((size_t)(n ? n : 1) * sizeof *ix);
    if (!ix) return NULL;
    for (int64_t i = 0; i < n; i++) ix[i] = i;
    sort_keys = keys;
    qsort(ix, (size_t)n, sizeof *ix, cmp_key_index);
    return ix;
}

static void key_text(const onr_tensor *keys, int64_t i, char *buf, size_t len)
{
    if (onr_tensor_dtype(keys) == ONR_STRING)
        snprintf(buf, len, "'%.100s'", ((char **)onr_tensor_data(keys))[i]);
    else if (onr_tensor_dtype(keys) == ONR_UINT64)
        snprintf(buf, len, "%llu", (unsigned long long)((uint64_t *)onr_tensor_data(keys))[i]);
    else if (onr_tensor_dtype(keys) == ONR_INT64)
        snprintf(buf, len, "%lld", (long long)((int64_t *)onr_tensor_data(keys))[i]);
    else
        snprintf(buf, len, "%.0f", elem(keys, i));
}

static int compare_map(const onr_tensor *got, const onr_tensor *want, double rtol, double atol,
                       char *why, size_t len)
{
    const onr_tensor *gk = onr_map_keys(got), *wk = onr_map_keys(want);
    const onr_tensor *gv = onr_map_values(got), *wv = onr_map_values(want);
    int64_t n = onr_value_count(got);
    if (onr_tensor_dtype(gk) != onr_tensor_dtype(wk) || n != onr_value_count(want)) {
        snprintf(why, len, "map of %lld %s keys, expected %lld %s keys", (long long)n,
                 onr_dtype_name(onr_tensor_dtype(gk)), (long long)onr_value_count(want),
                 onr_dtype_name(onr_tensor_dtype(wk)));
        return 0;
    }
    if (n == 0) return 1;
    int same = onr_tensor_dtype(gv) == onr_tensor_dtype(wv) && onr_tensor_rank(gv) == onr_tensor_rank(wv);
    for (int d = 0; same && d < onr_tensor_rank(gv); d++)
        same = onr_tensor_dims(gv)[d] == onr_tensor_dims(wv)[d];
    if (!same) {
        snprintf(why, len, "map values are %s rank %d, expected %s rank %d",
                 onr_dtype_name(onr_tensor_dtype(gv)), onr_tensor_rank(gv),
                 onr_dtype_name(onr_tensor_dtype(wv)), onr_tensor_rank(wv));
        return 0;
    }
    int64_t *gi = key_order(gk, n), *wi = key_order(wk, n);
    onr_dtype vt = onr_tensor_dtype(gv);
    int64_t row = onr_tensor_numel(gv) / n;
    size_t esz = onr_dtype_size(vt), rb = (size_t)row * esz;
    /* want's values put in got's key order, then compared as one tensor */
    void *perm = vt == ONR_STRING ? NULL : malloc(rb * (size_t)n + 1);
    int ok = gi && wi && (vt == ONR_STRING || perm);
    if (!ok) snprintf(why, len, "out of memory comparing maps");
    for (int64_t r = 0; ok && r < n; r++) {
        char a[128], b[128];
        key_text(gk, gi[r], a, sizeof a);
        key_text(wk, wi[r], b, sizeof b);
        if (strcmp(a, b) != 0) {
            snprintf(why, len, "map keys differ: got key %s where the expected map has %s", a, b);
            ok = 0;
        } else if (vt == ONR_STRING) {
            char **g = onr_tensor_data(gv), **w = onr_tensor_data(wv);
            for (int64_t j = 0; ok && j < row; j++)
                if (strcmp(g[gi[r] * row + j], w[wi[r] * row + j])) {
                    snprintf(why, len, "map value of key %s differs", a);
                    ok = 0;
                }
        } else {
            memcpy((char *)perm + (size_t)gi[r] * rb,
                   (const char *)onr_tensor_data(wv) + (size_t)wi[r] * rb, rb);
        }
    }
    if (ok && vt != ONR_STRING) {
        onr_tensor *pw = onr_tensor_wrap(vt, onr_tensor_rank(wv), onr_tensor_dims(wv), perm);
        char sub[400];
        ok = pw && compare(gv, pw, rtol, atol, sub, sizeof sub);
        if (!ok) snprintf(why, len, "map values (rows in key order of the output): %s", pw ? sub : "out of memory");
        onr_tensor_free(pw);
    }
    free(perm);
    free(gi);
    free(wi);
    return ok;
}

/* compare() through sequences, optionals and maps, element by element. */
static int compare_value(const onr_tensor *got, const onr_tensor *want, double rtol, double atol,
                         char *why, size_t len)
{
    onr_kind gk = onr_value_kind(got), wk = onr_value_kind(want);
    if (gk == ONR_VALUE_TENSOR && wk == ONR_VALUE_TENSOR)
        return compare(got, want, rtol, atol, why, len);
    if (gk == ONR_VALUE_MAP && wk == ONR_VALUE_MAP)
        return compare_map(got, want, rtol, atol, why, len);
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
    char **sets;
    int nsets = list_dir(dir, "test_data_set_", &sets);
    struct stat st;
    /* a path that holds no case is a failure, never a skip: a typo in CI must not pass */
    if (stat(path, &st) != 0 || nsets <= 0) {
        printf("FAIL %s: %s\n", name,
               stat(dir, &st) != 0   ? "no such directory"
               : !S_ISDIR(st.st_mode) ? "not a directory (a case is a directory holding "
                                        "model.onnx and test_data_set_*)"
               : stat(path, &st) != 0 ? "no model.onnx here: not a test case directory"
                                      : "no test_data_set_* here");
        (*fail)++;
        free_list(sets, nsets);
        return;
    }
    (void)skip;
    onr_options *o = onr_options_new();
    if (c->threads) onr_options_set_threads(o, c->threads);
    onr_options_set_memory_limit(o, c->memory_limit);
    onr_session *s = NULL;
    onr_status rc = onr_session_open(path, o, &s);
    onr_options_free(o);
    for (int k = 0; k < nsets; k++) {
        char sdir[4096], why[1600] = "";
        snprintf(sdir, sizeof sdir, "%s/%s", dir, sets[k]);
        int ok = 0;
        char **files_in, **files_out;
        int nin = list_dir(sdir, "input_", &files_in);
        int nout = list_dir(sdir, "output_", &files_out);
        onr_tensor **ins = calloc((size_t)(nin > 0 ? nin : 0) + 1, sizeof *ins);
        const char **names = calloc((size_t)(nin > 0 ? nin : 0) + 1, sizeof *names);
        if (nin < 0 || nout < 0 || !ins || !names) {
            snprintf(why, sizeof why, "cannot read %.1000s", sdir);
            nin = nin < 0 ? 0 : nin;
            goto done;
        }
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
            onr_value_info ki; /* a TensorProto, SequenceProto, OptionalProto or MapProto */
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
            char f[8192], msg[1024], w[1024];
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
        for (int i = 0; ins && i < nin; i++) onr_tensor_free(ins[i]);
    report:
        free(ins);
        free(names);
        free_list(files_in, nin);
        free_list(files_out, nout);
        if (ok) {
            printf("PASS %s/%s\n", name, sets[k]);
            (*pass)++;
        } else {
            printf("FAIL %s/%s: %s\n", name, sets[k], why);
            (*fail)++;
        }
        fflush(stdout);
    }
    free_list(sets, nsets);
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

/* Steps by op type name (qsort has no context argument: the session is here). */
static const onr_session *profile_session;
static int cmp_step_op(const void *a, const void *b)
{
    const char *x = onr_session_step_op(profile_session, ((const stepstat *)a)->step, NULL);
    const char *y = onr_session_step_op(profile_session, ((const stepstat *)b)->step, NULL);
    return strcmp(x ? x : "", y ? y : "");
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
    onr_tensor **ins = NULL;
    const char **names = NULL;
    stepstat *acc = calloc((size_t)ns + 1, sizeof *acc);
    if (!acc || (code = make_inputs(s, c, &ins, &names)) != EXIT_OK) {
        free(acc);
        free_inputs(n, ins, names);
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
        FILE *f = create_out(c->trace);
        if (!f) {
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
    for (int i = 0; i < ns && (c->top == 0 || i < c->top); i++) {
        const char *node;
        const char *op = onr_session_step_op(s, acc[i].step, &node);
        printf("%5d  %-20s %10.4f %6.2f  %s\n", acc[i].step, op, acc[i].ms / c->iters,
               steps_total > 0 ? 100 * acc[i].ms / steps_total : 0, node);
    }
    /* per op type, sorted by total time: sort the steps by op name, sum the
     * runs, then sort the sums */
    printf("\n%-20s %6s %10s %6s\n", "op", "steps", "ms/run", "%");
    opcount *types = calloc((size_t)ns + 1, sizeof *types);
    double *type_ms = calloc((size_t)ns + 1, sizeof *type_ms);
    stepstat *by_op = calloc((size_t)ns + 1, sizeof *by_op);
    if (types && type_ms && by_op) {
        memcpy(by_op, acc, (size_t)ns * sizeof *by_op);
        profile_session = s;
        qsort(by_op, (size_t)ns, sizeof *by_op, cmp_step_op);
        int nt = 0;
        for (int i = 0; i < ns; i++) {
            const char *op = onr_session_step_op(s, by_op[i].step, NULL);
            if (!nt || strcmp(types[nt - 1].op, op) != 0) types[nt++] = (opcount){op, "", 0};
            types[nt - 1].n++;
            type_ms[nt - 1] += by_op[i].ms;
        }
        /* sort by time: carry each type's time in a stepstat keyed by its index */
        for (int t = 0; t < nt; t++) by_op[t] = (stepstat){t, type_ms[t]};
        qsort(by_op, (size_t)nt, sizeof *by_op, cmp_stepstat);
        for (int k = 0; k < nt; k++) {
            const opcount *t = &types[by_op[k].step];
            printf("%-20s %6d %10.4f %6.2f\n", t->op, t->n, by_op[k].ms / c->iters,
                   steps_total > 0 ? 100 * by_op[k].ms / steps_total : 0);
        }
    }
    free(types);
    free(type_ms);
    free(by_op);
out:
    free(acc);
    free_inputs(n, ins, names);
    onr_session_free(s);
    return code;
}

/* OpenMP workers that spin while waiting for the next parallel region
 * keep their CPU even when another process needs it; on a shared, busy
 * host such a worker is preempted while "running", and every region then
 * waits a scheduler time slice for it (tiny ResNet-18: 0.24 ms a run at 1
 * thread, 100-126 ms at 2 threads with libgomp's default spin, 4.4 ms with
 * GOMP_SPINCOUNT=20000, 0.43 ms with sleeping workers, at load 11 on 2
 * cores). Sleeping workers pay a wake-up per region instead, which on a
 * quiet machine costs ResNet-50 at 2 threads about 20% (50 ms against 40
 * spinning). A short bounded spin, ONR_SPIN_US (250 us, then sleep; the
 * count measured for this CPU, onr_gomp_spincount), keeps most of that
 * gain when quiet; at 60 us it cost 8-35% over passive at load 11, and 250
 * us measured the same as 60 with 1, 4 and 9 CPU hogs on 2 cores, where
 * the back-off of team.h runs regions on one thread (tools/bench-contention;
 * results/2026-12-06-s19-intel.md). libgomp
 * reads its policy once, in its constructor, before main; so when the user
 * has set no policy (OMP_WAIT_POLICY, GOMP_SPINCOUNT), the CLI sets
 * GOMP_SPINCOUNT and executes itself again, once (ONR_WAIT_POLICY_SET marks
 * the second start). If that fails it runs on with libgomp's default. */
static void set_wait_policy(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("ONR_WAIT_POLICY_SET"))
        return;
    static char self[PATH_MAX]; /* the path itself (a tool such as valgrind reports its client) */
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0 || (size_t)len >= sizeof self - 1) return;
    self[len] = 0;
    char count[32];
    snprintf(count, sizeof count, "%ld", onr_gomp_spincount());
    if (setenv("GOMP_SPINCOUNT", count, 0) || setenv("ONR_WAIT_POLICY_SET", "1", 1)) return;
    execv(self, argv);
    unsetenv("GOMP_SPINCOUNT"); /* not re-executed: leave the environment as it was */
    unsetenv("ONR_WAIT_POLICY_SET");
}

int main(int argc, char **argv)
{
    set_wait_policy(argv);
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
    static int (*const fns[])(const cli *) = {cmd_run, cmd_bench, cmd_test, cmd_info,
                                              cmd_profile}; /* in the order of commands[] */
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        if (parse_args(&commands[i], argc - 2, argv + 2, &c)) {
            fprintf(stderr, "(onnx-run %s --help lists its options)\n", cmd);
            return EXIT_USAGE;
        }
        return fns[i](&c);
    }
    fprintf(stderr, "onnx-run: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
