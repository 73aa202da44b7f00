/*
 * strings.c - the string operators: StringNormalizer (10), TfIdfVectorizer
 * (9), StringConcat, StringSplit and RegexFullMatch (20).
 *
 * Strings are NUL-terminated UTF-8 (the tensor holds char *[numel]). Case
 * mapping and regular expressions use the C.UTF-8 locale through a locale
 * object of the op's own (newlocale / uselocale), never the process locale,
 * so they work per code point whatever the embedding program set. A string
 * output element is given its own allocation (the one exception to "run
 * never allocates": a string tensor owns one buffer per element, as Cast's
 * string output does).
 *
 * RegexFullMatch's pattern is RE2 syntax; onnx-run runs it on POSIX
 * extended regular expressions (regcomp/regexec, glibc) after translating
 * the RE2 forms POSIX lacks: \d \D \w \W \s \S (outside brackets; \d \w \s
 * inside them), non-capturing and named groups (?: (?P<n> (?<n>, lazy
 * quantifiers (the same full-match answer as greedy ones), \A \z, escaped
 * punctuation, \t \n \r \f \v, and a leading (?i). Anything else RE2-only
 * (Unicode classes \p, other inline flags, negated classes inside brackets)
 * is refused at create with a message. The match is a full match: the
 * pattern is anchored as ^(...)$. Backreferences, which RE2 refuses and
 * POSIX allows, are refused too.
 */
#define _GNU_SOURCE
#include <locale.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "ops/ops.h"

#define T_STR ONR_T(ONR_STRING)

/* The C.UTF-8 locale object, or (locale_t)0 when the system lacks it (then
 * case mapping is ASCII only and regexes see bytes). */
static locale_t utf8_locale(void)
{
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!l) l = newlocale(LC_CTYPE_MASK, "C.utf8", (locale_t)0);
    return l;
}

static const char *sget(const onr_tensor *t, int64_t i)
{
    const char *s = ((char *const *)t->data)[i];
    return s ? s : "";
}

/* Replace *slot by a copy of the n bytes at p (and a NUL). */
static int str_set_n(char **slot, const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return -1;
    memcpy(s, p, n);
    s[n] = 0;
    free(*slot);
    *slot = s;
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------- */

/* Decode one code point at s (len bytes left); *n gets its length. An
 * invalid byte decodes as itself with length 1 (copied through). */
static uint32_t utf8_dec(const unsigned char *s, size_t len, int *n)
{
    unsigned c = s[0];
    int k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (k == 0 || (size_t)k > len) {
        *n = 1;
        return 0x80000000u | c; /* marked raw byte */
    }
    uint32_t v = k == 1 ? c : c & (0x7Fu >> k);
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *n = 1;
            return 0x80000000u | c;
        }
        v = v << 6 | (s[i] & 0x3F);
    }
    *n = k;
    return v;
}

static int utf8_enc(uint32_t v, unsigned char *o)
{
    if (v & 0x80000000u) {
        o[0] = (unsigned char)(v & 0xFF);
        return 1;
    }
    if (v < 0x80) return o[0] = (unsigned char)v, 1;
    if (v < 0x800) {
        o[0] = (unsigned char)(0xC0 | v >> 6), o[1] = (unsigned char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        o[0] = (unsigned char)(0xE0 | v >> 12), o[1] = (unsigned char)(0x80 | (v >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (v & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | v >> 18), o[1] = (unsigned char)(0x80 | (v >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (v >> 6 & 0x3F)), o[3] = (unsigned char)(0x80 | (v & 0x3F));
    return 4;
}

/* Case of one code point: 0 keep, 1 lower, 2 upper. */
static uint32_t case_cp(uint32_t v, int how, locale_t loc)
{
    if (!how || (v & 0x80000000u)) return v;
    if (!loc || v < 0x80) {
        if (how == 1 && v >= 'A' && v <= 'Z') return v + 32;
        if (how == 2 && v >= 'a' && v <= 'z') return v - 32;
        return v;
    }
    wint_t w = how == 1 ? towlower_l((wint_t)v, loc) : towupper_l((wint_t)v, loc);
    return (uint32_t)w;
}

/* s with its case changed into out (at least 2 * strlen(s) + 4 bytes: a
 * code point's mapping is at most 3/2 as long in UTF-8). */
static size_t case_map(const char *s, int how, locale_t loc, char *out)
{
    size_t len = strlen(s), i = 0, o = 0;
    while (i < len) {
        int n;
        uint32_t v = utf8_dec((const unsigned char *)s + i, len - i, &n);
        o += (size_t)utf8_enc(case_cp(v, how, loc), (unsigned char *)out + o);
        i += (size_t)n;
    }
    out[o] = 0;
    return o;
}

/* a == b, comparing lowercased code points when fold. */
static int str_eq(const char *a, const char *b, int fold, locale_t loc)
{
    if (!fold) return strcmp(a, b) == 0;
    size_t la = strlen(a), lb = strlen(b), i = 0, j = 0;
    while (i < la && j < lb) {
        int na, nb;
        uint32_t x = utf8_dec((const unsigned char *)a + i, la - i, &na);
        uint32_t y = utf8_dec((const unsigned char *)b + j, lb - j, &nb);
        if (case_cp(x, 1, loc) != case_cp(y, 1, loc)) return 0;
        i += (size_t)na, j += (size_t)nb;
    }
    return i == la && j == lb;
}

/* ---- StringNormalizer ---------------------------------------------------------- */

/* X [C] or [1, C]: elements equal to a stopword (case-insensitively unless
 * is_case_sensitive) are dropped, then the rest are lowercased, uppercased
 * or kept (case_change_action). When nothing is left the output is one
 * empty string: [1] or [1, 1]. The locale attribute is accepted but case
 * mapping is Unicode's simple mapping (C.UTF-8), not locale-specific
 * (Turkish dotless i and the like). */
typedef struct sn_params {
    int how;       /* 0 NONE, 1 LOWER, 2 UPPER */
    int sensitive;
    int nstop;
    char **stops;
    locale_t loc;
    int64_t kept;  /* reshape */
    size_t buf;    /* reshape: scratch bytes for one mapped string */
} sn_params;

static void sn_destroy(void *params)
{
    sn_params *p = params;
    for (int i = 0; i < p->nstop; i++) free(p->stops[i]);
    free(p->stops);
    if (p->loc) freelocale(p->loc);
}

static int sn_create(onr_create_ctx *c, void *params)
{
    sn_params *p = params;
    const char *a = onr_attr_string(c->node, "case_change_action", "NONE");
    if (strcmp(a, "NONE") == 0) p->how = 0;
    else if (strcmp(a, "LOWER") == 0) p->how = 1;
    else if (strcmp(a, "UPPER") == 0) p->how = 2;
    else
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute case_change_action is '%s', not NONE, LOWER or UPPER", a);
    int64_t cs = onr_attr_int(c->node, "is_case_sensitive", 0);
    if (cs != 0 && cs != 1)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute is_case_sensitive must be 0 or 1, not %lld",
                          (long long)cs);
    p->sensitive = (int)cs;
    p->loc = utf8_locale();
    const onr_attr *sw = onr_node_attr(c->node, "stopwords");
    if (sw && sw->type != ONR_ATTR_STRINGS)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute stopwords must be a list of strings");
    if (sw && sw->n) {
        if (!(p->stops = calloc(sw->n, sizeof *p->stops)))
            return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
        for (size_t i = 0; i < sw->n; i++) {
            if (!(p->stops[i] = onr_strdup(sw->strings[i] ? sw->strings[i] : "")))
                return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
            p->nstop++;
        }
    }
    return ONR_OK;
}

static int sn_is_stop(const sn_params *p, const char *s)
{
    for (int i = 0; i < p->nstop; i++)
        if (str_eq(s, p->stops[i], !p->sensitive, p->loc)) return 1;
    return 0;
}

static int sn_reshape(onr_kctx *ctx, size_t *scratch)
{
    sn_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, T_STR);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (!(x->rank == 1 || (x->rank == 2 && x->dims[0] == 1)))
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must be [C] or [1, C], it has rank %d%s",
                          x->rank, x->rank == 2 ? " with a first dim other than 1" : "");
    if (!x->data && x->numel > 0) return ONR_SHAPE_DEFER;
    p->kept = 0;
    size_t mx = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = sget(x, i);
        if (sn_is_stop(p, s)) continue;
        p->kept++;
        size_t l = strlen(s);
        if (l > mx) mx = l;
    }
    p->buf = 2 * mx + 4;
    *scratch = p->buf;
    int64_t dims[2] = {1, p->kept ? p->kept : 1};
    return x->rank == 1 ? onr_set_out(ctx, 0, ONR_STRING, 1, dims + 1)
                        : onr_set_out(ctx, 0, ONR_STRING, 2, dims);
}

static int sn_run(const onr_kctx *ctx)
{
    const sn_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    char **out = ctx->out[0]->data;
    int64_t k = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = sget(x, i);
        if (sn_is_stop(p, s)) continue;
        size_t n = case_map(s, p->how, p->loc, ctx->scratch);
        if (str_set_n(&out[k++], ctx->scratch, n))
            return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
    }
    if (k == 0 && str_set_n(&out[0], "", 0))
        return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
    return ONR_OK;
}

const onr_op_impl onr_impl_string_normalizer = {.create = sn_create, .reshape = sn_reshape,
    .run = sn_run, .destroy = sn_destroy, .params_size = sizeof(sn_params), .types = T_STR,
    .shape_inputs = 1u << 0};

/* ---- StringConcat ------------------------------------------------------------------ */

typedef struct sc_params {
    int rank;
    int64_t dims[ONR_MAX_RANK], sa[ONR_MAX_RANK], sb[ONR_MAX_RANK];
} sc_params;

static int sc_reshape(onr_kctx *ctx, size_t *scratch)
{
    sc_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, T_STR);
    if (!st) st = onr_check_input(ctx, 1, T_STR);
    if (st) return st;
    if ((st = onr_broadcast_shape(ctx, 2, (const onr_tensor *const *)ctx->in, p->dims, &p->rank))) return st;
    onr_bcast_strides(ctx->in[0]->dims, ctx->in[0]->rank, p->dims, p->rank, p->sa);
    onr_bcast_strides(ctx->in[1]->dims, ctx->in[1]->rank, p->dims, p->rank, p->sb);
    return onr_set_out(ctx, 0, ONR_STRING, p->rank, p->dims);
}

static int sc_run(const onr_kctx *ctx)
{
    const sc_params *p = ctx->params;
    onr_tensor *y = ctx->out[0];
    char **out = y->data;
    int64_t co[ONR_MAX_RANK] = {0}, ia = 0, ib = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        const char *a = sget(ctx->in[0], ia), *b = sget(ctx->in[1], ib);
        size_t la = strlen(a), lb = strlen(b);
        char *s = malloc(la + lb + 1);
        if (!s) return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
        free(out[i]);
        out[i] = s;
        for (int d = p->rank - 1; d >= 0; d--) { /* next coordinate */
            ia += p->sa[d], ib += p->sb[d];
            if (++co[d] < p->dims[d]) break;
            ia -= p->sa[d] * co[d], ib -= p->sb[d] * co[d];
            co[d] = 0;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_string_concat = {.reshape = sc_reshape, .run = sc_run,
    .params_size = sizeof(sc_params), .types = T_STR};

/* ---- StringSplit ---------------------------------------------------------------------- */

/* Y = X.shape + [the most substrings of any element], padded with empty
 * strings; Z = the number of substrings of each element. Python's
 * str.split: with a delimiter, every occurrence splits ("a,,b" -> a, "", b;
 * "" -> one empty string); without one (absent or empty), runs of ASCII
 * whitespace split and leading and trailing whitespace is dropped ("" -> no
 * substrings). maxsplit limits the splits, the rest of the string being the
 * last substring. */
typedef struct ss_params {
    char *delim; /* NULL: whitespace mode */
    size_t dlen;
    int64_t maxsplit; /* -1: unlimited */
    int64_t most;     /* reshape */
} ss_params;

static void ss_destroy(void *params) { free(((ss_params *)params)->delim); }

static int ss_create(onr_create_ctx *c, void *params)
{
    ss_params *p = params;
    const char *d = onr_attr_string(c->node, "delimiter", "");
    if (*d) {
        if (!(p->delim = onr_strdup(d))) return onr_seterr(c->err, ONR_E_NOMEM, "out of memory");
        p->dlen = strlen(d);
    }
    p->maxsplit = -1;
    if (onr_node_attr(c->node, "maxsplit")) {
        p->maxsplit = onr_attr_int(c->node, "maxsplit", 0);
        if (p->maxsplit < 0)
            return onr_seterr(c->err, ONR_E_MODEL, "attribute maxsplit must be >= 0, it is %lld",
                              (long long)p->maxsplit);
    }
    return ONR_OK;
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* Substrings of s: count them, and when out != NULL store the first
 * cap of them as (offset, length) pairs. */
static int64_t ss_split(const ss_params *p, const char *s, int64_t *out, int64_t cap)
{
    size_t len = strlen(s), i = 0;
    int64_t n = 0, splits = 0;
#define EMIT(off, l)                                                                             \
    do {                                                                                         \
        if (out && n < cap) out[2 * n] = (int64_t)(off), out[2 * n + 1] = (int64_t)(l);          \
        n++;                                                                                     \
    } while (0)
    if (p->delim) {
        size_t start = 0;
        while (p->maxsplit < 0 || splits < p->maxsplit) {
            const char *f = strstr(s + i, p->delim);
            if (!f) break;
            size_t at = (size_t)(f - s);
            EMIT(start, at - start);
            splits++;
            i = start = at + p->dlen;
        }
        EMIT(start, len - start);
        return n;
    }
    while (i < len) {
        while (i < len && is_ws(s[i])) i++;
        if (i >= len) break;
        if (p->maxsplit >= 0 && splits >= p->maxsplit) {
            EMIT(i, len - i); /* the rest, trailing whitespace and all */
            break;
        }
        size_t b = i;
        while (i < len && !is_ws(s[i])) i++;
        EMIT(b, i - b);
        splits++;
    }
#undef EMIT
    return n;
}

static int ss_reshape(onr_kctx *ctx, size_t *scratch)
{
    ss_params *p = ctx->params;
    *scratch = 0;
    int st = onr_check_input(ctx, 0, T_STR);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    if (x->rank >= ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "input rank %d leaves no room for the "
                          "substring axis (at most %d)", x->rank, ONR_MAX_RANK);
    if (!x->data && x->numel > 0) return ONR_SHAPE_DEFER;
    p->most = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t n = ss_split(p, sget(x, i), NULL, 0);
        if (n > p->most) p->most = n;
    }
    int64_t dims[ONR_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[x->rank] = p->most;
    if ((st = onr_set_out(ctx, 0, ONR_STRING, x->rank + 1, dims))) return st;
    if ((st = onr_set_out(ctx, 1, ONR_INT64, x->rank, x->dims))) return st;
    const int64_t sd[1] = {2 * p->most};
    int64_t cells;
    if ((st = onr_dims_numel(sd, 1, ONR_INT64, &cells, ctx->err))) return st;
    *scratch = (size_t)cells * sizeof(int64_t);
    return ONR_OK;
}

static int ss_run(const onr_kctx *ctx)
{
    const ss_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    char **y = ctx->out[0] ? ctx->out[0]->data : NULL;
    int64_t *z = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
    int64_t *pieces = ctx->scratch;
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = sget(x, i);
        int64_t n = ss_split(p, s, pieces, p->most);
        if (z) z[i] = n;
        if (!y) continue;
        for (int64_t k = 0; k < n; k++)
            if (str_set_n(&y[i * p->most + k], s + pieces[2 * k], (size_t)pieces[2 * k + 1]))
                return onr_seterr(ctx->err, ONR_E_NOMEM, "out of memory for a string");
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_string_split = {.create = ss_create, .reshape = ss_reshape,
    .run = ss_run, .destroy = ss_destroy, .params_size = sizeof(ss_params), .types = T_STR,
    .shape_inputs = 1u << 0};

/* ---- RegexFullMatch ---------------------------------------------------------------------- */

typedef struct rx_params {
    regex_t re;
    int compiled;
    locale_t loc;
} rx_params;

static void rx_destroy(void *params)
{
    rx_params *p = params;
    if (p->compiled) regfree(&p->re);
    if (p->loc) freelocale(p->loc);
}

/* Append n bytes to the growing translation. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *p, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 64) + n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s, b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* The character an escape \c stands for when it is a plain character
 * (punctuation, \t \n ...), else 0. */
static char esc_char(char c)
{
    switch (c) {
    case 't': return '\t';
    case 'n': return '\n';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    default: break;
    }
    if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
        (c >= '{' && c <= '~'))
        return c;
    return 0;
}

/* Translate an RE2 pattern to POSIX ERE (see the file comment). Returns
 * NULL with why set when the pattern uses something POSIX cannot say. */
static char *re2_to_ere(const char *pat, int *icase, const char **why)
{
    sbuf b = {0};
    const char *p = pat;
    *icase = 0;
    if (strncmp(p, "(?i)", 4) == 0) {
        *icase = 1;
        p += 4;
    }
    sb_str(&b, "^(");
    while (*p) {
        char c = *p;
        if (c == '\\') {
            char e = p[1];
            if (!e) { *why = "the pattern ends with a lone backslash"; goto bad; }
            p += 2;
            switch (e) {
            case 'd': sb_str(&b, "[0-9]"); continue;
            case 'D': sb_str(&b, "[^0-9]"); continue;
            case 'w': sb_str(&b, "[[:alnum:]_]"); continue;
            case 'W': sb_str(&b, "[^[:alnum:]_]"); continue;
            case 's': sb_str(&b, "[[:space:]]"); continue;
            case 'S': sb_str(&b, "[^[:space:]]"); continue;
            case 'b': sb_str(&b, "\\b"); continue;
            case 'B': sb_str(&b, "\\B"); continue;
            case 'A': sb_str(&b, "^"); continue;
            case 'z': sb_str(&b, "$"); continue;
            default: break;
            }
            char lit = esc_char(e);
            if (!lit) {
                *why = e >= '1' && e <= '9' ? "backreferences are not RE2 syntax"
                                            : "an escape RE2 has and POSIX lacks (\\p, \\x, \\Q, ...)";
                goto bad;
            }
            if (strchr("^.[]$()|*+?{}\\", lit)) {
                char t[2] = {'\\', lit};
                sb_add(&b, t, 2);
            } else {
                sb_add(&b, &lit, 1);
            }
            continue;
        }
        if (c == '[') { /* a bracket expression */
            p++;
            sbuf cls = {0};
            int neg = 0, dash = 0, close = 0;
            if (*p == '^') neg = 1, p++;
            if (*p == ']') close = 1, p++;
            while (*p && *p != ']') {
                if (*p == '[' && p[1] == ':') { /* a POSIX class inside, as is */
                    const char *e = strstr(p + 2, ":]");
                    if (!e) { *why = "an unterminated [: class"; goto bad_cls; }
                    sb_add(&cls, p, (size_t)(e + 2 - p));
                    p = e + 2;
                    continue;
                }
                if (*p == '\\') {
                    char e = p[1];
                    if (!e) { *why = "the pattern ends with a lone backslash"; goto bad_cls; }
                    p += 2;
                    if (e == 'd') sb_str(&cls, "0-9");
                    else if (e == 'w') sb_str(&cls, "[:alnum:]_");
                    else if (e == 's') sb_str(&cls, "[:space:]");
                    else if (e == 'D' || e == 'W' || e == 'S') {
                        *why = "a negated class (\\D, \\W, \\S) inside brackets";
                        goto bad_cls;
                    } else {
                        char lit = esc_char(e);
                        if (!lit) { *why = "an escape RE2 has and POSIX lacks inside brackets"; goto bad_cls; }
                        if (lit == '-') dash = 1;
                        else if (lit == ']') close = 1;
                        else sb_add(&cls, &lit, 1);
                    }
                    continue;
                }
                sb_add(&cls, p, 1);
                p++;
            }
            if (*p != ']') { *why = "an unterminated bracket expression"; goto bad_cls; }
            p++;
            /* POSIX: ']' first, '-' last, backslash literal */
            sb_str(&b, neg ? "[^" : "[");
            if (close) sb_str(&b, "]");
            if (cls.s) sb_str(&b, cls.s);
            if (dash) sb_str(&b, "-");
            sb_str(&b, "]");
            free(cls.s);
            if (cls.oom) b.oom = 1;
            continue;
        bad_cls:
            free(cls.s);
            goto bad;
        }
        if (c == '(' && p[1] == '?') {
            if (p[2] == ':') p += 3;
            else if (p[2] == 'P' && p[3] == '<') p = strchr(p, '>') ? strchr(p, '>') + 1 : p + strlen(p);
            else if (p[2] == '<' && p[3] != '=' && p[3] != '!') p = strchr(p, '>') ? strchr(p, '>') + 1 : p + strlen(p);
            else { *why = "inline flags or lookaround groups ((?...)) other than a leading (?i)"; goto bad; }
            sb_str(&b, "(");
            continue;
        }
        if ((c == '*' || c == '+' || c == '?' || c == '}') && p[1] == '?') {
            sb_add(&b, p, 1); /* lazy: the same full-match answer */
            p += 2;
            continue;
        }
        sb_add(&b, p, 1);
        p++;
    }
    sb_str(&b, ")$");
    if (b.oom) {
        *why = "out of memory";
        free(b.s);
        return NULL;
    }
    return b.s;
bad:
    free(b.s);
    return NULL;
}

static int rx_create(onr_create_ctx *c, void *params)
{
    rx_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "pattern");
    if (!a || a->type != ONR_ATTR_STRING)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute pattern (string) is required");
    int icase;
    const char *why = "";
    char *ere = re2_to_ere(a->s, &icase, &why);
    if (!ere && strcmp(why, "out of memory") == 0)
        return onr_seterr(c->err, ONR_E_NOMEM, "out of memory translating pattern '%s'", a->s);
    if (!ere)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "pattern '%s' uses %s (onnx-run runs RE2 "
                          "patterns on POSIX extended regular expressions)", a->s, why);
    p->loc = utf8_locale();
    locale_t old = p->loc ? uselocale(p->loc) : (locale_t)0;
    int rc = regcomp(&p->re, ere, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
    if (p->loc) uselocale(old);
    if (rc) {
        char msg[256];
        regerror(rc, &p->re, msg, sizeof msg);
        int st = onr_seterr(c->err, rc == REG_ESPACE ? ONR_E_NOMEM : ONR_E_MODEL, "pattern '%s' (as POSIX '%s') does not compile: %s",
                            a->s, ere, msg);
        free(ere);
        return st;
    }
    free(ere);
    p->compiled = 1;
    return ONR_OK;
}

static int rx_reshape(onr_kctx *ctx, size_t *scratch)
{
    *scratch = 0;
    int st = onr_check_input(ctx, 0, T_STR);
    if (st) return st;
    const onr_tensor *x = ctx->in[0];
    return onr_set_out(ctx, 0, ONR_BOOL, x->rank, x->dims);
}

static int rx_run(const onr_kctx *ctx)
{
    const rx_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    uint8_t *y = ctx->out[0]->data;
    locale_t old = p->loc ? uselocale(p->loc) : (locale_t)0;
    for (int64_t i = 0; i < x->numel; i++) y[i] = regexec(&p->re, sget(x, i), 0, NULL, 0) == 0;
    if (p->loc) uselocale(old);
    return ONR_OK;
}

const onr_op_impl onr_impl_regex_full_match = {.create = rx_create, .reshape = rx_reshape,
    .run = rx_run, .destroy = rx_destroy, .params_size = sizeof(rx_params), .types = T_STR};

/* ---- TfIdfVectorizer --------------------------------------------------------------------- */

/* The pool holds n-grams of each length n (1, 2, ...): ngram_counts[n-1]
 * is where the n-grams start in pool_int64s / pool_strings, and the k-th
 * n-gram overall (counting every length) is counted into output column
 * ngram_indexes[k]. Only lengths in [min_gram_length, max_gram_length]
 * are looked for. Along each row, for every skip distance d in 1 ..
 * max_skip_count + 1 and every start, the n-gram of items start, start+d,
 * ..., start+(n-1)d counts when the pool has it; unigrams count once (at
 * d = 1 only). mode: TF the counts; IDF weights[col] (or 1) where a count
 * is non-zero; TFIDF weights[col] * count (or the count). Strings are
 * mapped to the id of the equal pool string (or "none"), so both input
 * kinds become int64 sequences; the grams live in a hash table built at
 * create. */
typedef struct tf_gram {
    int64_t off;  /* first item in items[] */
    int n;
    int64_t col;
} tf_gram;

typedef struct tf_params {
    int is_str;
    int mode; /* 1 TF, 2 IDF, 3 TFIDF */
    int64_t min_n, max_n, max_skip, out_size;
    int64_t *items;       /* pool as ids */
    tf_gram *grams;
    int64_t ngrams;
    int64_t *table;       /* hash -> gram index + 1 (0 empty) */
    int64_t tsize;
    char **strs;          /* string pool: distinct strings, id = index */
    int64_t *stable;      /* hash -> string index + 1 */
    int64_t nstrs, ssize;
    float *weights;
    int64_t nweights;
    int64_t B, C;         /* reshape: rows, row length (B 0: a 1-D input) */
} tf_params;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t mixh(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Hash of n items taken every d from v. */
static uint64_t hash_gram(const int64_t *v, int n, int64_t d)
{
    uint64_t h = mixh((uint64_t)n);
    for (int i = 0; i < n; i++) h = mixh(h ^ (uint64_t)v[i * d]);
    return h;
}

static int64_t str_id(const tf_params *p, const char *s)
{
    uint64_t m = (uint64_t)p->ssize - 1;
    for (uint64_t h = hash_str(s) & m;; h = (h + 1) & m) {
        int64_t e = p->stable[h];
        if (!e) return -1;
        if (strcmp(p->strs[e - 1], s) == 0) return e - 1;
    }
}

/* Gram index of the n items every d from v, or -1. */
static int64_t gram_find(const tf_params *p, const int64_t *v, int n, int64_t d)
{
    uint64_t m = (uint64_t)p->tsize - 1;
    for (uint64_t h = hash_gram(v, n, d) & m;; h = (h + 1) & m) {
        int64_t e = p->table[h];
        if (!e) return -1;
        const tf_gram *g = &p->grams[e - 1];
        if (g->n != n) continue;
        int k = 0;
        while (k < n && p->items[g->off + k] == v[k * d]) k++;
        if (k == n) return e - 1;
    }
}

static void tf_destroy(void *params)
{
    tf_params *p = params;
    free(p->items);
    free(p->grams);
    free(p->table);
    for (int64_t i = 0; i < p->nstrs; i++) free(p->strs[i]);
    free(p->strs);
    free(p->stable);
    free(p->weights);
}

static int64_t pow2_at_least(int64_t n)
{
    int64_t m = 16;
    while (m < n) m <<= 1;
    return m;
}

static int tf_create(onr_create_ctx *c, void *params)
{
    tf_params *p = params;
    onr_err *err = c->err;
    const char *mode = onr_attr_string(c->node, "mode", "");
    p->mode = strcmp(mode, "TF") == 0 ? 1 : strcmp(mode, "IDF") == 0 ? 2 : strcmp(mode, "TFIDF") == 0 ? 3 : 0;
    if (!p->mode) return onr_seterr(err, ONR_E_MODEL, "attribute mode is '%s', not TF, IDF or TFIDF", mode);
    p->min_n = onr_attr_int(c->node, "min_gram_length", -1);
    p->max_n = onr_attr_int(c->node, "max_gram_length", -1);
    p->max_skip = onr_attr_int(c->node, "max_skip_count", -1);
    if (p->min_n < 1 || p->max_n < p->min_n || p->max_skip < 0 || p->max_n > 1000)
        return onr_seterr(err, ONR_E_MODEL,
                          "need 1 <= min_gram_length (%lld) <= max_gram_length (%lld) <= 1000 and "
                          "max_skip_count (%lld) >= 0",
                          (long long)p->min_n, (long long)p->max_n, (long long)p->max_skip);
    size_t ncounts = 0, nidx = 0, nints = 0;
    const int64_t *counts = onr_attr_ints(c->node, "ngram_counts", &ncounts);
    const int64_t *idx = onr_attr_ints(c->node, "ngram_indexes", &nidx);
    const int64_t *ints = onr_attr_ints(c->node, "pool_int64s", &nints);
    const onr_attr *ps = onr_node_attr(c->node, "pool_strings");
    if ((ps != NULL) == (ints != NULL))
        return onr_seterr(err, ONR_E_MODEL, "exactly one of pool_strings and pool_int64s is needed");
    if (ps && ps->type != ONR_ATTR_STRINGS)
        return onr_seterr(err, ONR_E_MODEL, "attribute pool_strings must be a list of strings");
    p->is_str = ps != NULL;
    int64_t total = p->is_str ? (int64_t)ps->n : (int64_t)nints;
    if (!ncounts || !nidx)
        return onr_seterr(err, ONR_E_MODEL, "attributes ngram_counts and ngram_indexes are required");
    p->out_size = 0;
    for (size_t i = 0; i < nidx; i++) {
        if (idx[i] < 0 || idx[i] > (int64_t)1 << 40)
            return onr_seterr(err, ONR_E_MODEL, "ngram_indexes[%zu] = %lld is out of range", i,
                              (long long)idx[i]);
        if (idx[i] + 1 > p->out_size) p->out_size = idx[i] + 1;
    }
    if (!(p->items = malloc(sizeof(int64_t) * (size_t)(total ? total : 1))))
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    if (p->is_str) { /* distinct pool strings get ids */
        p->ssize = pow2_at_least(2 * total + 1);
        p->strs = malloc(sizeof(char *) * (size_t)(total ? total : 1));
        p->stable = calloc((size_t)p->ssize, sizeof(int64_t));
        if (!p->strs || !p->stable) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        for (int64_t i = 0; i < total; i++) {
            const char *s = ps->strings[i] ? ps->strings[i] : "";
            int64_t id = str_id(p, s);
            if (id < 0) {
                if (!(p->strs[p->nstrs] = onr_strdup(s)))
                    return onr_seterr(err, ONR_E_NOMEM, "out of memory");
                id = p->nstrs++;
                uint64_t m = (uint64_t)p->ssize - 1, h = hash_str(s) & m;
                while (p->stable[h]) h = (h + 1) & m;
                p->stable[h] = id + 1;
            }
            p->items[i] = id;
        }
    } else {
        memcpy(p->items, ints, sizeof(int64_t) * (size_t)total);
    }
    /* the grams, numbered over every length */
    int64_t k = 0;
    p->grams = malloc(sizeof(tf_gram) * (size_t)(total ? total : 1));
    if (!p->grams) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < ncounts; i++) {
        int64_t start = counts[i], end = i + 1 < ncounts ? counts[i + 1] : total, n = (int64_t)i + 1;
        if (start < 0 || end < start || end > total)
            return onr_seterr(err, ONR_E_MODEL, "ngram_counts[%zu] = %lld is out of order or past "
                              "the pool (%lld items)", i, (long long)start, (long long)total);
        if ((end - start) % n)
            return onr_seterr(err, ONR_E_MODEL, "the pool's %lld items of %lld-grams are not a "
                              "whole number of them", (long long)(end - start), (long long)n);
        for (int64_t off = start; off < end; off += n, k++) {
            if (k >= (int64_t)nidx)
                return onr_seterr(err, ONR_E_MODEL, "ngram_indexes has %zu entries, the pool "
                                  "more n-grams", nidx);
            if (n < p->min_n || n > p->max_n) continue;
            p->grams[p->ngrams++] = (tf_gram){off, (int)n, idx[k]};
        }
    }
    p->tsize = pow2_at_least(2 * p->ngrams + 1);
    if (!(p->table = calloc((size_t)p->tsize, sizeof(int64_t))))
        return onr_seterr(err, ONR_E_NOMEM, "out of memory");
    for (int64_t g = 0; g < p->ngrams; g++) {
        const tf_gram *t = &p->grams[g];
        int64_t have = gram_find(p, p->items + t->off, t->n, 1);
        if (have >= 0) { /* a repeated gram: the later one's column wins */
            p->grams[have].col = t->col;
            continue;
        }
        uint64_t m = (uint64_t)p->tsize - 1, h = hash_gram(p->items + t->off, t->n, 1) & m;
        while (p->table[h]) h = (h + 1) & m;
        p->table[h] = g + 1;
    }
    size_t nw = 0;
    const float *w = onr_attr_floats(c->node, "weights", &nw);
    if (w && nw) {
        if ((int64_t)nw < p->out_size)
            return onr_seterr(err, ONR_E_MODEL, "weights has %zu entries, the output %lld columns",
                              nw, (long long)p->out_size);
        if (!(p->weights = malloc(sizeof(float) * nw))) return onr_seterr(err, ONR_E_NOMEM, "out of memory");
        memcpy(p->weights, w, sizeof(float) * nw);
        p->nweights = (int64_t)nw;
    }
    return ONR_OK;
}

static int tf_reshape(onr_kctx *ctx, size_t *scratch)
{
    tf_params *p = ctx->params;
    *scratch = 0;
    uint32_t ok = p->is_str ? T_STR : ONR_T(ONR_INT32) | ONR_T(ONR_INT64);
    int st = onr_check_input(ctx, 0, ok);
    if (st) {
        if (ctx->in[0] && ctx->in[0]->dtype != ONR_STRING && p->is_str)
            return onr_seterr(ctx->err, ONR_E_MODEL, "the pool is strings, the input %s",
                              onr_dtype_name(ctx->in[0]->dtype));
        return st;
    }
    const onr_tensor *x = ctx->in[0];
    if (x->rank != 1 && x->rank != 2)
        return onr_seterr(ctx->err, ONR_E_MODEL, "input must be [C] or [B, C], it has rank %d",
                          x->rank);
    p->B = x->rank == 2 ? x->dims[0] : 0;
    p->C = x->rank == 2 ? x->dims[1] : x->dims[0];
    if (x->numel == 0) p->C = 0;
    int64_t dims[2] = {p->B, p->out_size};
    if ((st = x->rank == 2 ? onr_set_out(ctx, 0, ONR_FLOAT, 2, dims)
                           : onr_set_out(ctx, 0, ONR_FLOAT, 1, dims + 1)))
        return st;
    *scratch = (size_t)(p->C ? p->C : 1) * sizeof(int64_t);
    return ONR_OK;
}

static int tf_run(const onr_kctx *ctx)
{
    const tf_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    float *y = ctx->out[0]->data;
    int64_t rows = x->rank == 2 ? p->B : 1, C = p->C, O = p->out_size;
    int64_t *v = ctx->scratch;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * O;
        for (int64_t k = 0; k < O; k++) yr[k] = 0;
        for (int64_t i = 0; i < C; i++) {
            int64_t e = r * C + i;
            v[i] = p->is_str ? str_id(p, sget(x, e))
                   : x->dtype == ONR_INT64 ? ((const int64_t *)x->data)[e]
                                           : ((const int32_t *)x->data)[e];
        }
        /* a gram of two or more items spans (n - 1) d < C: larger distances
         * find nothing (and a huge max_skip_count must not loop for long) */
        int64_t dmax = C > 1 ? C - 1 : 1;
        if (p->max_skip < dmax) dmax = p->max_skip + 1;
        for (int64_t d = 1; d <= dmax; d++) {
            int64_t from = d == 1 ? p->min_n : (p->min_n > 2 ? p->min_n : 2);
            if (from > p->max_n) break;
            for (int64_t s = 0; s < C; s++)
                for (int64_t n = from; n <= p->max_n && s + (n - 1) * d < C; n++) {
                    if (p->is_str && v[s + (n - 1) * d] < 0) break; /* not in the pool */
                    int64_t g = gram_find(p, v + s, (int)n, d);
                    if (g >= 0) yr[p->grams[g].col] += 1;
                }
        }
        for (int64_t k = 0; k < O; k++) {
            float w = p->weights ? p->weights[k] : 1.f;
            if (p->mode == 2) yr[k] = yr[k] > 0 ? w : 0;
            else if (p->mode == 3) yr[k] *= w;
        }
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_tfidf_vectorizer = {.create = tf_create, .reshape = tf_reshape,
    .run = tf_run, .destroy = tf_destroy, .params_size = sizeof(tf_params),
    .types = T_STR | ONR_T(ONR_INT32) | ONR_T(ONR_INT64)};
