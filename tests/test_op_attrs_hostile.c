/*
 * test_op_attrs_hostile.c - every registered operator with each attribute
 * it reads set to a hostile value: INT64_MAX and INT64_MIN, negatives,
 * 2^40, empty and 8-long lists, NaN and infinities, empty and long
 * strings. Whatever the op makes of it, opening and running the model
 * ends in a status and a message, never a crash or a hang (issue 16: what
 * the fuzzer finds by chance, swept here for every op).
 *
 * Which attributes an op reads is found, not listed: the op is opened with
 * the attribute of the wrong type (a string for a number, a number for a
 * string), and the attributes its error names are the ones it reads
 * (a wrong-typed attribute is an error naming it, test_attr_types.c).
 * Each op runs in a child process, so one crash names its op and
 * attribute and the rest still run.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kutil.h"
#include "pbw.h"

enum { F32 = 1, I64 = 7 };

typedef struct hattr {
    const char *name;
    char type; /* 'i' int, 'I' ints, 'f' float, 's' string */
} hattr;

/* Attribute names of the registered ops (and their types; a name that is
 * an int in one op and a list in another is here twice). */
static const hattr attrs[] = {
    {"axis", 'i'}, {"axes", 'I'}, {"axes", 'i'}, {"perm", 'I'}, {"shape", 'I'},
    {"kernel_shape", 'I'}, {"strides", 'I'}, {"pads", 'I'}, {"dilations", 'I'},
    {"output_shape", 'I'}, {"output_padding", 'I'}, {"group", 'i'}, {"split", 'I'},
    {"num_outputs", 'i'}, {"sizes", 'I'}, {"starts", 'I'}, {"ends", 'I'}, {"k", 'i'},
    {"keepdims", 'i'}, {"to", 'i'}, {"dtype", 'i'}, {"blocksize", 'i'}, {"block_size", 'i'},
    {"batch_dims", 'i'}, {"num_heads", 'i'}, {"num_groups", 'i'}, {"seed", 'f'},
    {"sample_size", 'i'}, {"output_datatype", 'i'}, {"upper", 'i'}, {"reverse", 'i'},
    {"exclusive", 'i'}, {"allowzero", 'i'}, {"noop_with_empty_axes", 'i'},
    {"stash_type", 'i'}, {"start", 'i'}, {"end", 'i'}, {"offset_group", 'i'},
    {"largest", 'i'}, {"sorted", 'i'}, {"ceil_mode", 'i'}, {"count_include_pad", 'i'},
    {"storage_order", 'i'}, {"select_last_index", 'i'}, {"center_point_box", 'i'},
    {"hidden_size", 'i'}, {"layout", 'i'}, {"size", 'i'}, {"p", 'i'}, {"p", 'f'},
    {"rotary_embedding_dim", 'i'}, {"interleaved", 'i'}, {"time_axis", 'i'},
    {"batch_axis", 'i'}, {"new_axis", 'i'}, {"pooled_shape", 'I'}, {"sampling_ratio", 'i'},
    {"targets", 'i'}, {"n_targets", 'i'}, {"maxsplit", 'i'}, {"onesided", 'i'},
    {"inverse", 'i'}, {"frame_length", 'i'}, {"output_height", 'i'}, {"output_width", 'i'},
    {"repeats", 'I'}, {"value_int", 'i'}, {"value_ints", 'I'}, {"cast_to", 's'},
    {"alpha", 'f'}, {"beta", 'f'}, {"gamma", 'f'}, {"epsilon", 'f'}, {"ratio", 'f'},
    {"spatial_scale", 'f'}, {"scale", 'f'}, {"bias", 'f'}, {"lambd", 'f'}, {"min", 'f'},
    {"max", 'f'}, {"low", 'f'}, {"high", 'f'}, {"mean", 'f'}, {"threshold", 'f'},
    {"momentum", 'f'}, {"extrapolation_value", 'f'}, {"cubic_coeff_a", 'f'},
    {"value_float", 'f'}, {"scales", 'f'}, {"mode", 's'}, {"direction", 's'},
    {"auto_pad", 's'}, {"coordinate_transformation_mode", 's'}, {"nearest_mode", 's'},
    {"approximate", 's'}, {"reduction", 's'}, {"equation", 's'}, {"delimiter", 's'},
    {"activation", 's'}, {"post_transform", 's'}, {"padding_mode", 's'},
    {"keep_aspect_ratio_policy", 's'}, {"round_mode", 's'}, {"norm", 's'},
};
enum { N_ATTRS = sizeof attrs / sizeof attrs[0] };

enum { N_INT = 5, N_INTS = 6, N_FLOAT = 5, N_STRING = 4 };

static void put_hostile(pbw *a, const hattr *h, int v)
{
    static const int64_t ints[N_INT] = {INT64_MAX, INT64_MIN, -3, (int64_t)1 << 40, 0};
    static const int64_t big2[2] = {INT64_MAX, INT64_MIN};
    static const int64_t neg8[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    static const int64_t huge4[4] = {(int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40,
                                     (int64_t)1 << 40};
    static const int64_t zero4[4] = {0, 0, 0, 0};
    static const int64_t m7[1] = {-7};
    char longs[301];
    memset(longs, 'x', 300);
    longs[300] = 0;
    switch (h->type) {
    case 'i': pbw_attr_int(a, h->name, ints[v]); break;
    case 'I':
        switch (v) {
        case 0: pbw_attr_ints(a, h->name, big2, 2); break;
        case 1: pbw_attr_ints(a, h->name, neg8, 8); break;
        case 2: pbw_attr_ints(a, h->name, NULL, 0); break;
        case 3: pbw_attr_ints(a, h->name, huge4, 4); break;
        case 4: pbw_attr_ints(a, h->name, zero4, 4); break;
        default: pbw_attr_ints(a, h->name, m7, 1); break;
        }
        break;
    case 'f': {
        const float f[N_FLOAT] = {NAN, INFINITY, -INFINITY, -1e38f, 0.f};
        pbw_attr_float(a, h->name, f[v]);
        break;
    }
    default: {
        const char *s[N_STRING] = {"", longs, "\xff\xfe", "NOTSET"};
        pbw_attr_string(a, h->name, s[v]);
        break;
    }
    }
}

static int n_values(const hattr *h)
{
    return h->type == 'i' ? N_INT : h->type == 'I' ? N_INTS : h->type == 'f' ? N_FLOAT : N_STRING;
}

/* Inputs: X float [1, 2, 3, 4] alone; with two int64 [2] of 1s (shapes,
 * indices, axes); with two more float [1, 2, 3, 4] (weights, scales). */
enum { N_IN_PATTERNS = 3 };

/* Open (and when that succeeds, run) op with one attribute: wrong-typed
 * (v < 0) or hostile value v. Returns whether the open failed naming the
 * attribute. */
static int try_attr(const char *op, const char *domain, int since, int ip, const hattr *h, int v)
{
    static const int64_t d4[] = {1, 2, 3, 4}, d1[] = {2};
    static float f[24];
    static const int64_t ones[2] = {1, 1};
    for (int i = 0; i < 24; i++) f[i] = (float)(i % 7) * 0.5f - 1.f;
    pbw g = {0}, a = {0};
    if (v < 0) {
        if (h->type == 's') pbw_attr_int(&a, h->name, 7);
        else pbw_attr_string(&a, h->name, "zz");
    } else {
        put_hostile(&a, h, v);
    }
    const char *ins[4] = {"x", NULL, NULL, NULL};
    if (ip > 0) ins[1] = "b", ins[2] = "c";
    pbw_node_in(&g, 1, op, *domain ? domain : NULL, "the_node", ins,
                (const char *[]){"y", "z", NULL}, &a);
    const char *names[3];
    onr_tensor *bind[3];
    int n_bind = 0;
    for (int k = 0; ins[k]; k++) {
        int i64 = ip == 1 && k > 0;
        pbw_value_info(&g, 11, ins[k], i64 ? I64 : F32, i64 ? 1 : 4, i64 ? d1 : d4);
        names[n_bind] = ins[k];
        bind[n_bind++] = i64 ? onr_tensor_wrap(ONR_INT64, 1, d1, (void *)ones)
                             : onr_tensor_wrap(ONR_FLOAT, 4, d4, f);
    }
    pbw_value_info(&g, 12, "y", F32, -1, NULL);
    pbw_value_info(&g, 12, "z", F32, -1, NULL);
    int64_t opset = *domain ? 17 : since < 7 ? 7 : since;
    const char *doms[2] = {"", domain};
    int64_t vers[2] = {opset, since > 0 ? since : 1};
    pbw m = pbw_model_opsets(&g, 8, *domain ? 2 : 1, doms, vers);
    onr_options *o = onr_options_new();
    onr_options_set_threads(o, 1);
    onr_options_set_memory_limit(o, (int64_t)256 << 20);
    onr_session *s = NULL;
    int named = 0;
    onr_status st = onr_session_open_memory(m.b, m.n, o, &s);
    if (st == ONR_OK) {
        (void)onr_session_run(s, n_bind, names, (const onr_tensor *const *)bind);
    } else if (v < 0) {
        char q[80];
        snprintf(q, sizeof q, "'%s'", h->name);
        named = strstr(onr_session_errmsg(s), q) != NULL;
    }
    onr_session_free(s);
    onr_options_free(o);
    for (int i = 0; i < n_bind; i++) onr_tensor_free(bind[i]);
    free(m.b);
    return named;
}

/* In a child: every attribute op reads, every hostile value, every input
 * pattern. On a crash the parent learns which from the pipe: the last
 * "attr value pattern" line written before each try. */
static void try_op(const char *op, const char *domain, int since, int fd)
{
    for (int i = 0; i < N_ATTRS; i++) {
        int reads = 0;
        for (int ip = 0; ip < N_IN_PATTERNS && !reads; ip++)
            reads = try_attr(op, domain, since, ip, &attrs[i], -1);
        if (!reads) continue;
        for (int v = 0; v < n_values(&attrs[i]); v++)
            for (int ip = 0; ip < N_IN_PATTERNS; ip++) {
                char line[128];
                int n = snprintf(line, sizeof line, "%s (%c) value %d, inputs %d\n",
                                 attrs[i].name, attrs[i].type, v, ip);
                if (write(fd, line, (size_t)n) != n) _exit(4);
                try_attr(op, domain, since, ip, &attrs[i], v);
            }
    }
}


static void test_every_op_hostile_attrs(void **state)
{
    (void)state;
    int n = onr_op_count(), bad = 0, tried = 0;
    char report[8192];
    size_t used = 0;
    report[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *domain = NULL;
        int since = 0;
        const char *op = onr_op_info(i, &domain, &since, NULL);
        if (!op) continue;
        if (!domain) domain = "";
        tried++;
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            tk_child_setup(300); /* a hang ends as SIGALRM (14) */
            try_op(op, domain, since, pfd[1]);
            _exit(0);
        }
        close(pfd[1]);
        /* the child's progress: keep the last line */
        char buf[4096], last[128] = "(before the first hostile value)";
        size_t have = 0;
        ssize_t r;
        while ((r = read(pfd[0], buf + have, sizeof buf - 1 - have)) > 0) {
            have += (size_t)r;
            buf[have] = 0;
            char *nl;
            while ((nl = strchr(buf, '\n')) != NULL) {
                *nl = 0;
                snprintf(last, sizeof last, "%.120s", buf);
                size_t rest = have - (size_t)(nl + 1 - buf);
                memmove(buf, nl + 1, rest);
                have = rest;
                buf[have] = 0;
            }
            if (have >= sizeof buf - 1) have = 0;
        }
        close(pfd[0]);
        int ws = 0;
        assert_true(waitpid(pid, &ws, 0) == pid);
        char where[160];
        snprintf(where, sizeof where, "at %s", last);
        bad += tk_child_report(report, sizeof report, &used, domain, op, since, ws, where);
    }
    char what[64];
    snprintf(what, sizeof what, "%d attribute names", N_ATTRS);
    tk_child_finish(tried, what, bad, report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_hostile_attrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
