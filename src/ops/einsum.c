/*
 * einsum.c - Einsum (opset 12, the only version): Einstein summation over
 * any number of operands.
 *
 * create parses the equation once into label codes: each term is a list of
 * letters ('A'-'Z' -> 0..25, 'a'-'z' -> 26..51, so code order is ASCII
 * order, which the implicit output sorts by) with at most one ellipsis; an
 * optional "->" gives the output explicitly. Spaces are skipped; anything
 * else is an error naming the equation and the position.
 *
 * reshape binds the terms to the input shapes: the ellipsis of each input
 * stands for its leading dims left over after the letters, right-aligned and
 * broadcast across inputs as numpy does (labels 52 + j). Every label gets one
 * size; a dim of size 1 broadcasts (stride 0), a repeated label in a term
 * walks the diagonal (its strides add). The implicit output is the ellipsis
 * dims, then the letters used exactly once, in ASCII order; an explicit
 * output without "..." while the ellipsis covers dims is an error (numpy's
 * rule, which the specification's reference follows).
 *
 * run, reference path: for each output element, the sum over the contracted
 * labels of the product of the operands, accumulated in double for float
 * types and in 64-bit wrapping integer arithmetic for integer types.
 * float32 with two operands whose labels split cleanly into batch, M, N and
 * K (no diagonal, no label summed within one operand, no broadcast dim)
 * and M*N*K of at least EIN_GEMM_MIN runs as a batched SGEMM: operands
 * and result are permuted into [batch, M, K] / [batch, K, N] /
 * [batch, M, N] in scratch unless already laid out that way (or
 * transposed).
 */
#include <stdio.h>
#include <string.h>

#include "gemm/gemm.h"
#include "ops/ops.h"

#define EIN_MAX_IN 16                    /* operands */
#define EIN_LETTERS 52
#define EIN_NL (EIN_LETTERS + ONR_MAX_RANK) /* letters + ellipsis dims */
#define EIN_ELL (-1)                     /* the ellipsis in a parsed term */
#define EIN_GEMM_MIN 256                 /* M*N*K below which GEMM does not pay */

typedef struct ein_term {
    int8_t lab[ONR_MAX_RANK + 1]; /* letter codes, EIN_ELL for "..." */
    int n;                        /* entries of lab */
    int has_ell;
} ein_term;

typedef struct ein_params {
    /* create */
    int nin;
    ein_term in[EIN_MAX_IN];
    ein_term out;
    int explicit_out;
    /* reshape */
    int nout, nsum;          /* output labels, contracted labels */
    int olab[EIN_NL];        /* output labels in output-dim order */
    int slab[EIN_NL];        /* contracted labels */
    int64_t size[EIN_NL];    /* size of each label */
    int64_t istr[EIN_MAX_IN][EIN_NL]; /* element stride of each label in each input */
    int64_t ostr[EIN_NL];    /* in the output */
    int64_t out_numel, sum_numel;
    /* float32 batched-GEMM path */
    int gemm;
    int64_t gb, gm, gn, gk;
    int nb, nm, nn, nk;
    int blab[EIN_NL], mlab[EIN_NL], nlab[EIN_NL], klab[EIN_NL];
    int copy_a, copy_b, copy_c, trans_a, trans_b;
    size_t off_a, off_b, off_c, off_ws; /* scratch offsets */
} ein_params;

static int letter_code(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + ch - 'a';
    return -1;
}

static char code_letter(int c) { return (char)(c < 26 ? 'A' + c : 'a' + c - 26); }

/* Parse one term from eq[*pos] up to ',', "->" or the end. */
static int parse_term(onr_err *err, const char *eq, size_t *pos, ein_term *t)
{
    t->n = 0;
    t->has_ell = 0;
    for (;;) {
        char ch = eq[*pos];
        if (ch == '\0' || ch == ',' || (ch == '-' && eq[*pos + 1] == '>')) return ONR_OK;
        if (ch == ' ') {
            (*pos)++;
            continue;
        }
        int code = letter_code(ch);
        if (ch == '.') {
            if (strncmp(eq + *pos, "...", 3) != 0)
                return onr_seterr(err, ONR_E_MODEL,
                                  "equation '%s': '.' at position %zu is not part of '...'", eq,
                                  *pos);
            if (t->has_ell)
                return onr_seterr(err, ONR_E_MODEL,
                                  "equation '%s': a second '...' in one term at position %zu", eq,
                                  *pos);
            t->has_ell = 1;
            code = EIN_ELL;
            *pos += 2;
        } else if (code < 0) {
            return onr_seterr(err, ONR_E_MODEL,
                              "equation '%s': unexpected character '%c' at position %zu", eq, ch,
                              *pos);
        }
        if (t->n >= ONR_MAX_RANK + 1)
            return onr_seterr(err, ONR_E_MODEL,
                              "equation '%s': term ending at position %zu has more than %d "
                              "labels", eq, *pos, ONR_MAX_RANK);
        t->lab[t->n++] = (int8_t)code;
        (*pos)++;
    }
}

static int ein_create(onr_create_ctx *c, void *params)
{
    ein_params *p = params;
    const onr_attr *a = onr_node_attr(c->node, "equation");
    if (!a) return onr_seterr(c->err, ONR_E_MODEL, "attribute 'equation' is missing");
    if (a->type != ONR_ATTR_STRING)
        return onr_seterr(c->err, ONR_E_MODEL, "attribute 'equation' must be a string");
    const char *eq = a->s;
    if (c->n_in < 1 || c->n_in > EIN_MAX_IN)
        return onr_seterr(c->err, ONR_E_UNSUPPORTED, "Einsum with %d inputs (1 to %d supported)",
                          c->n_in, EIN_MAX_IN);
    size_t pos = 0;
    int st;
    p->nin = 0;
    for (;;) {
        if (p->nin >= c->n_in)
            return onr_seterr(c->err, ONR_E_MODEL,
                              "equation '%s': more terms than the %d inputs (position %zu)", eq,
                              c->n_in, pos);
        if ((st = parse_term(c->err, eq, &pos, &p->in[p->nin]))) return st;
        p->nin++;
        if (eq[pos] != ',') break;
        pos++;
    }
    if (p->nin != c->n_in)
        return onr_seterr(c->err, ONR_E_MODEL, "equation '%s' has %d terms for %d inputs", eq,
                          p->nin, c->n_in);
    if (eq[pos] == '-') {
        pos += 2;
        p->explicit_out = 1;
        if ((st = parse_term(c->err, eq, &pos, &p->out))) return st;
        if (eq[pos] != '\0')
            return onr_seterr(c->err, ONR_E_MODEL,
                              "equation '%s': unexpected '%c' in the output at position %zu", eq,
                              eq[pos], pos);
        int seen[EIN_LETTERS] = {0};
        for (int i = 0; i < p->out.n; i++) {
            int l = p->out.lab[i];
            if (l == EIN_ELL) continue;
            int used = 0;
            for (int k = 0; k < p->nin && !used; k++)
                for (int j = 0; j < p->in[k].n; j++) used |= p->in[k].lab[j] == l;
            if (!used)
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "equation '%s': output label '%c' is in no input term", eq,
                                  code_letter(l));
            if (seen[l]++)
                return onr_seterr(c->err, ONR_E_MODEL,
                                  "equation '%s': output label '%c' appears twice", eq,
                                  code_letter(l));
        }
    }
    return ONR_OK;
}

/* ---- reshape ------------------------------------------------------------ */

/* Label of dim d of a term bound to rank r with e ellipsis dims, the
 * ellipsis right-aligned to E. Fills labs[0..r). */
static void term_labels(const ein_term *t, int e, int E, int *labs)
{
    int d = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->lab[i] == EIN_ELL)
            for (int j = 0; j < e; j++) labs[d++] = EIN_LETTERS + (E - e) + j;
        else
            labs[d++] = t->lab[i];
    }
}

static int lab_in(const int *labs, int n, int l)
{
    for (int i = 0; i < n; i++)
        if (labs[i] == l) return 1;
    return 0;
}

/* seq = b ++ x ++ y; returns its length. */
static int seq3(int *seq, const int *b, int nb, const int *x, int nx, const int *y, int ny)
{
    int n = 0;
    for (int i = 0; i < nb; i++) seq[n++] = b[i];
    for (int i = 0; i < nx; i++) seq[n++] = x[i];
    for (int i = 0; i < ny; i++) seq[n++] = y[i];
    return n;
}

static int same_labels(const int *a, int na, const int *b, int nb)
{
    return na == nb && (na == 0 || memcmp(a, b, sizeof(int) * (size_t)na) == 0);
}

/* Decide the batched-GEMM path for float32 A (x) B and its scratch layout. */
static void plan_gemm(ein_params *p, onr_kctx *ctx, int labs[][ONR_MAX_RANK], size_t *scratch)
{
    p->gemm = 0;
    const onr_tensor *a = ctx->in[0], *b = ctx->in[1];
    if (p->nin != 2 || a->dtype != ONR_FLOAT) return;
    int nb = 0, nm = 0, nn = 0, nk = 0;
    for (int k = 0; k < 2; k++) {
        const onr_tensor *t = ctx->in[k];
        for (int d = 0; d < t->rank; d++) {
            int l = labs[k][d];
            if (t->dims[d] != p->size[l]) return;            /* broadcast dim */
            for (int e = d + 1; e < t->rank; e++)
                if (labs[k][e] == l) return;                  /* diagonal */
            int other = lab_in(labs[1 - k], ctx->in[1 - k]->rank, l);
            int out = lab_in(p->olab, p->nout, l);
            if (!other && !out) return;                       /* summed in one operand */
        }
    }
    /* batch, M, N in output order; K in A's order */
    for (int i = 0; i < p->nout; i++) {
        int l = p->olab[i];
        int ina = lab_in(labs[0], a->rank, l), inb = lab_in(labs[1], b->rank, l);
        if (ina && inb) p->blab[nb++] = l;
        else if (ina) p->mlab[nm++] = l;
        else p->nlab[nn++] = l;
    }
    for (int d = 0; d < a->rank; d++)
        if (!lab_in(p->olab, p->nout, labs[0][d])) p->klab[nk++] = labs[0][d];
    p->nb = nb, p->nm = nm, p->nn = nn, p->nk = nk;
    p->gb = p->gm = p->gn = p->gk = 1;
    for (int i = 0; i < nb; i++) p->gb *= p->size[p->blab[i]];
    for (int i = 0; i < nm; i++) p->gm *= p->size[p->mlab[i]];
    for (int i = 0; i < nn; i++) p->gn *= p->size[p->nlab[i]];
    for (int i = 0; i < nk; i++) p->gk *= p->size[p->klab[i]];
    /* tiny products (a Hadamard product is a batch of 1 x 1 x 1 GEMMs) go
     * faster through the reference loop than through GEMM calls */
    if (p->gm * p->gn * p->gk < EIN_GEMM_MIN) return;
    /* does an operand already read as [b, x, y], or [b, y, x] (transposed)? */
    int seq[EIN_NL], ns;
    ns = seq3(seq, p->blab, nb, p->mlab, nm, p->klab, nk);
    p->copy_a = !same_labels(seq, ns, labs[0], a->rank);
    ns = seq3(seq, p->blab, nb, p->klab, nk, p->mlab, nm);
    p->trans_a = p->copy_a && same_labels(seq, ns, labs[0], a->rank);
    if (p->trans_a) p->copy_a = 0;
    ns = seq3(seq, p->blab, nb, p->klab, nk, p->nlab, nn);
    p->copy_b = !same_labels(seq, ns, labs[1], b->rank);
    ns = seq3(seq, p->blab, nb, p->nlab, nn, p->klab, nk);
    p->trans_b = p->copy_b && same_labels(seq, ns, labs[1], b->rank);
    if (p->trans_b) p->copy_b = 0;
    ns = seq3(seq, p->blab, nb, p->mlab, nm, p->nlab, nn);
    p->copy_c = !same_labels(seq, ns, p->olab, p->nout);
    size_t off = 0, fs = sizeof(float);
#define TAKE(o, bytes) (o = off, off += ((bytes) + 63) & ~(size_t)63)
    TAKE(p->off_a, p->copy_a ? (size_t)(p->gb * p->gm * p->gk) * fs : 0);
    TAKE(p->off_b, p->copy_b ? (size_t)(p->gb * p->gk * p->gn) * fs : 0);
    TAKE(p->off_c, p->copy_c ? (size_t)(p->gb * p->gm * p->gn) * fs : 0);
    TAKE(p->off_ws, onr_sgemm_batch_workspace_size((size_t)p->gm, (size_t)p->gn, (size_t)p->gk,
                                                   (size_t)p->gb, ctx->nthreads));
#undef TAKE
    *scratch = off;
    p->gemm = 1;
}

static int ein_reshape(onr_kctx *ctx, size_t *scratch)
{
    ein_params *p = ctx->params;
    *scratch = 0;
    const uint32_t types = ONR_TYPES_INT | ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16);
    int st;
    for (int k = 0; k < p->nin; k++) {
        if ((st = onr_check_input(ctx, k, types))) return st;
        if (ctx->in[k]->dtype != ctx->in[0]->dtype)
            return onr_seterr(ctx->err, ONR_E_MODEL, "input %d is %s, input 0 is %s", k,
                              onr_dtype_name(ctx->in[k]->dtype), onr_dtype_name(ctx->in[0]->dtype));
    }
    /* ellipsis dims per input and overall */
    int ell[EIN_MAX_IN], E = 0;
    for (int k = 0; k < p->nin; k++) {
        const ein_term *t = &p->in[k];
        int letters = t->n - t->has_ell, r = ctx->in[k]->rank;
        ell[k] = r - letters;
        if (ell[k] < 0 || (!t->has_ell && ell[k] != 0))
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "term %d has %d labels%s but input %d has rank %d", k, letters,
                              t->has_ell ? " and '...'" : "", k, r);
        if (ell[k] > E) E = ell[k];
    }
    /* sizes */
    int labs[EIN_MAX_IN][ONR_MAX_RANK];
    int count[EIN_NL] = {0};
    for (int l = 0; l < EIN_NL; l++) p->size[l] = -1;
    for (int k = 0; k < p->nin; k++) {
        const onr_tensor *x = ctx->in[k];
        term_labels(&p->in[k], ell[k], E, labs[k]);
        for (int d = 0; d < x->rank; d++) {
            int l = labs[k][d];
            int64_t n = x->dims[d];
            count[l]++;
            for (int e = 0; e < d; e++)
                if (labs[k][e] == l && x->dims[e] != n)
                    return onr_seterr(ctx->err, ONR_E_MODEL,
                                      "input %d repeats label '%c' over dims of sizes %lld and "
                                      "%lld", k, code_letter(l), (long long)x->dims[e],
                                      (long long)n);
            if (p->size[l] < 0 || p->size[l] == 1) {
                p->size[l] = n;
            } else if (n != 1 && n != p->size[l]) {
                char lb[32];
                if (l < EIN_LETTERS) snprintf(lb, sizeof lb, "'%c'", code_letter(l));
                else snprintf(lb, sizeof lb, "'...' dim %d", l - EIN_LETTERS);
                return onr_seterr(ctx->err, ONR_E_MODEL,
                                  "label %s has size %lld in input %d but %lld elsewhere", lb,
                                  (long long)n, k, (long long)p->size[l]);
            }
        }
    }
    /* strides: a dim of size 1 under a label of another size broadcasts (0);
     * a label repeated in one term walks the diagonal (strides add) */
    for (int k = 0; k < p->nin; k++) {
        const onr_tensor *x = ctx->in[k];
        int64_t str[ONR_MAX_RANK];
        onr_strides(x->dims, x->rank, str);
        for (int l = 0; l < EIN_NL; l++) p->istr[k][l] = 0;
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d] == p->size[labs[k][d]]) p->istr[k][labs[k][d]] += str[d];
    }
    /* output labels */
    p->nout = 0;
    if (p->explicit_out) {
        if (E > 0 && !p->out.has_ell)
            return onr_seterr(ctx->err, ONR_E_MODEL,
                              "the output term has no '...' but the inputs' '...' covers %d dims",
                              E);
        for (int i = 0; i < p->out.n; i++) {
            if (p->out.lab[i] == EIN_ELL)
                for (int j = 0; j < E; j++) p->olab[p->nout++] = EIN_LETTERS + j;
            else
                p->olab[p->nout++] = p->out.lab[i];
        }
    } else {
        for (int j = 0; j < E; j++) p->olab[p->nout++] = EIN_LETTERS + j;
        for (int l = 0; l < EIN_LETTERS; l++)
            if (count[l] == 1) p->olab[p->nout++] = l;
    }
    if (p->nout > ONR_MAX_RANK)
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED, "the output would have rank %d (max %d)",
                          p->nout, ONR_MAX_RANK);
    int64_t odims[ONR_MAX_RANK], ostr[ONR_MAX_RANK];
    for (int i = 0; i < p->nout; i++) odims[i] = p->size[p->olab[i]];
    onr_strides(odims, p->nout, ostr);
    for (int l = 0; l < EIN_NL; l++) p->ostr[l] = 0;
    for (int i = 0; i < p->nout; i++) p->ostr[p->olab[i]] = ostr[i];
    p->nsum = 0;
    for (int l = 0; l < EIN_NL; l++)
        if (count[l] && !lab_in(p->olab, p->nout, l)) p->slab[p->nsum++] = l;
    if ((st = onr_set_out(ctx, 0, ctx->in[0]->dtype, p->nout, odims))) return st;
    p->out_numel = ctx->out[0] ? ctx->out[0]->numel : 0;
    p->sum_numel = 1;
    for (int i = 0; i < p->nsum; i++) {
        int64_t n = p->size[p->slab[i]];
        if (n == 0) {
            p->sum_numel = 0;
            break;
        }
        if (p->sum_numel > INT64_MAX / n)
            return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                              "the contracted labels span more than 2^63 products");
        p->sum_numel *= n;
    }
    plan_gemm(p, ctx, labs, scratch);
    return ONR_OK;
}

/* ---- run: reference ----------------------------------------------------- */

static void store_i64(onr_dtype dt, void *p, int64_t i, uint64_t v)
{
    switch (dt) {
    case ONR_INT8: case ONR_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case ONR_INT16: case ONR_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case ONR_INT32: case ONR_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    default: ((uint64_t *)p)[i] = v; break;
    }
}

/* Sum over the last contracted label (n steps, per-input strides st) of the
 * product of the operands at off: typed loops for two float32 or float64
 * operands, element access through onr_get_f64 / onr_load_i64 otherwise. */
static void ein_inner(const ein_params *p, const onr_kctx *ctx, const int64_t *off,
                      const int64_t *st, int64_t n, double *accd, uint64_t *acci)
{
    onr_dtype dt = ctx->in[0]->dtype;
    if (p->nin == 2 && (dt == ONR_FLOAT || dt == ONR_DOUBLE)) {
        double acc = 0;
        if (dt == ONR_FLOAT) {
            const float *a = (const float *)ctx->in[0]->data + off[0];
            const float *b = (const float *)ctx->in[1]->data + off[1];
            for (int64_t j = 0; j < n; j++) acc += (double)a[j * st[0]] * b[j * st[1]];
        } else {
            const double *a = (const double *)ctx->in[0]->data + off[0];
            const double *b = (const double *)ctx->in[1]->data + off[1];
            for (int64_t j = 0; j < n; j++) acc += a[j * st[0]] * b[j * st[1]];
        }
        *accd += acc;
        return;
    }
    int isint = ((ONR_TYPES_INT >> dt) & 1) != 0;
    for (int64_t j = 0; j < n; j++) {
        if (isint) {
            uint64_t prod = 1;
            for (int k = 0; k < p->nin; k++)
                prod *= (uint64_t)onr_load_i64(dt, ctx->in[k]->data, off[k] + j * st[k]);
            *acci += prod;
        } else {
            double prod = 1;
            for (int k = 0; k < p->nin; k++) prod *= onr_get_f64(ctx->in[k], off[k] + j * st[k]);
            *accd += prod;
        }
    }
}

/* Output elements [o0, o1): each one the full sum over the contracted
 * labels, the last of them in ein_inner, the others by an odometer. */
static void ein_ref_range(const ein_params *p, const onr_kctx *ctx, int64_t o0, int64_t o1)
{
    onr_dtype dt = ctx->in[0]->dtype;
    int isint = ((ONR_TYPES_INT >> dt) & 1) != 0;
    onr_tensor *y = ctx->out[0];
    int nodo = p->nsum > 0 ? p->nsum - 1 : 0; /* labels the odometer walks */
    int64_t nlast = p->nsum > 0 ? p->size[p->slab[p->nsum - 1]] : 1, lst[EIN_MAX_IN];
    for (int k = 0; k < p->nin; k++) lst[k] = p->nsum > 0 ? p->istr[k][p->slab[p->nsum - 1]] : 0;
    int64_t iters = nlast > 0 ? p->sum_numel / nlast : 0;
    for (int64_t o = o0; o < o1; o++) {
        /* offsets of each input at this output element */
        int64_t off[EIN_MAX_IN] = {0}, rem = o;
        for (int i = p->nout - 1; i >= 0; i--) {
            int l = p->olab[i];
            int64_t idx = rem % p->size[l];
            rem /= p->size[l];
            for (int k = 0; k < p->nin; k++) off[k] += idx * p->istr[k][l];
        }
        int64_t cnt[EIN_NL] = {0};
        double accd = 0;
        uint64_t acci = 0;
        for (int64_t s = 0; s < iters; s++) {
            ein_inner(p, ctx, off, lst, nlast, &accd, &acci);
            /* odometer over the other contracted labels, last fastest */
            for (int i = nodo - 1; i >= 0; i--) {
                int l = p->slab[i];
                for (int k = 0; k < p->nin; k++) off[k] += p->istr[k][l];
                if (++cnt[i] < p->size[l]) break;
                cnt[i] = 0;
                for (int k = 0; k < p->nin; k++) off[k] -= p->istr[k][l] * p->size[l];
            }
        }
        if (isint) store_i64(dt, y->data, o, acci);
        else onr_set_f64(y, o, accd);
    }
}

/* ---- run: batched SGEMM ------------------------------------------------- */

/* dst (contiguous, dims in the order of labs) <- src read with per-label
 * strides; or, scatter = 1, the reverse. */
static void permute_f32(const ein_params *p, int n, const int *labs, const int64_t *str,
                        float *contig, float *strided, int scatter)
{
    int64_t total = 1, cnt[EIN_NL] = {0}, off = 0;
    for (int i = 0; i < n; i++) total *= p->size[labs[i]];
    for (int64_t e = 0; e < total; e++) {
        if (scatter) strided[off] = contig[e];
        else contig[e] = strided[off];
        for (int i = n - 1; i >= 0; i--) {
            int l = labs[i];
            off += str[l];
            if (++cnt[i] < p->size[l]) break;
            cnt[i] = 0;
            off -= str[l] * p->size[l];
        }
    }
}

static void ein_gemm(const ein_params *p, const onr_kctx *ctx)
{
    char *s = ctx->scratch;
    const float *a = ctx->in[0]->data, *b = ctx->in[1]->data;
    float *c = ctx->out[0]->data;
    int la[EIN_NL], lb[EIN_NL], lc[EIN_NL], n;
    if (p->copy_a) {
        n = 0;
        for (int i = 0; i < p->nb; i++) la[n++] = p->blab[i];
        for (int i = 0; i < p->nm; i++) la[n++] = p->mlab[i];
        for (int i = 0; i < p->nk; i++) la[n++] = p->klab[i];
        permute_f32(p, n, la, p->istr[0], (float *)(s + p->off_a), (float *)a, 0);
        a = (const float *)(s + p->off_a);
    }
    if (p->copy_b) {
        n = 0;
        for (int i = 0; i < p->nb; i++) lb[n++] = p->blab[i];
        for (int i = 0; i < p->nk; i++) lb[n++] = p->klab[i];
        for (int i = 0; i < p->nn; i++) lb[n++] = p->nlab[i];
        permute_f32(p, n, lb, p->istr[1], (float *)(s + p->off_b), (float *)b, 0);
        b = (const float *)(s + p->off_b);
    }
    float *cc = p->copy_c ? (float *)(s + p->off_c) : c;
    size_t M = (size_t)p->gm, N = (size_t)p->gn, K = (size_t)p->gk;
    size_t lda = p->trans_a ? M : K, ldb = p->trans_b ? K : N;
    onr_sgemm_batch(p->trans_a, p->trans_b, M, N, K, 1.f, a, lda, M * K, b, ldb, K * N, 0.f, cc,
                    N, M * N, (size_t)p->gb, NULL, s + p->off_ws, ctx->nthreads);
    if (p->copy_c) {
        n = 0;
        for (int i = 0; i < p->nb; i++) lc[n++] = p->blab[i];
        for (int i = 0; i < p->nm; i++) lc[n++] = p->mlab[i];
        for (int i = 0; i < p->nn; i++) lc[n++] = p->nlab[i];
        permute_f32(p, n, lc, p->ostr, cc, c, 1);
    }
}

static int ein_run(const onr_kctx *ctx)
{
    const ein_params *p = ctx->params;
    if (p->out_numel == 0) return ONR_OK;
    if (p->gemm) {
        ein_gemm(p, ctx);
        return ONR_OK;
    }
    int64_t chunk = 256, nch = (p->out_numel + chunk - 1) / chunk;
    double work = (double)p->out_numel * (double)(p->sum_numel ? p->sum_numel : 1) * p->nin;
#pragma omp parallel for num_threads(onr_team(ctx->nthreads)) if (work > ONR_PAR_MIN)
    for (int64_t ch = 0; ch < nch; ch++) {
        int64_t o1 = (ch + 1) * chunk < p->out_numel ? (ch + 1) * chunk : p->out_numel;
        ein_ref_range(p, ctx, ch * chunk, o1);
    }
    return ONR_OK;
}

const onr_op_impl onr_impl_einsum = {.create = ein_create, .reshape = ein_reshape,
    .run = ein_run, .params_size = sizeof(ein_params),
    .types = ONR_TYPES_INT | ONR_T(ONR_FLOAT) | ONR_T(ONR_DOUBLE) | ONR_T(ONR_FLOAT16)};
