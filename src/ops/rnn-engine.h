/*
 * rnn-engine.h - the recurrence of RNN, GRU and LSTM, written once and
 * included twice by rnn.c:
 *
 *   RT = float,  SFX = f32, RNN_SGEMM = 1: the fast path (float32 tensors):
 *        X, W and R read in place (W and R packed at create when constant),
 *        the products on the SGEMM core;
 *   RT = double, SFX = f64, RNN_SGEMM = 0: the plain-C reference (double,
 *        float16, bfloat16 tensors, and float32 in tests): every input
 *        widened to double in scratch, the products as plain loops.
 *
 * Both do the same steps in the same order:
 *   1. XW = X * W^T + bias for every time step and direction at once (one
 *      product of (S*B) x I by I x (D*G*H); rows follow X's layout);
 *   2. per direction, per step s: G = H_prev * R^T for the whole batch, then
 *      per batch row whose sequence is still running the gate activations
 *      and the state update, and the row's Y written at its time index
 *      (t = s forward, len-1-s reverse, so a reverse pass starts at each
 *      sequence's own last step);
 *   3. Y_h / Y_c: each row's state after its last step (zero for a
 *      sequence of length 0).
 * The caller (rnn.c) has checked shapes and sequence_lens and carved the
 * scratch; this file only computes.
 */

#define RNN_CAT2(a, b) a##_##b
#define RNN_CAT(a, b) RNN_CAT2(a, b)
#define FN(name) RNN_CAT(name, SFX)

/* Activation a over v[0..n), after clipping to [-clip, clip] when the node
 * has a clip and `clip` is set. */
static void FN(act)(const rnn_act *a, const rnn_params *p, int clip, RT *v, int64_t n)
{
    if (clip && p->has_clip) {
        RT c = (RT)p->clip;
        for (int64_t i = 0; i < n; i++) v[i] = v[i] < -c ? -c : (v[i] > c ? c : v[i]);
    }
    RT al = (RT)a->alpha, be = (RT)a->beta;
    switch (a->kind) {
    case RNN_RELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0;
        break;
    case RNN_TANH:
        for (int64_t i = 0; i < n; i++) v[i] = R_TANH(v[i]);
        break;
    case RNN_SIGMOID:
        for (int64_t i = 0; i < n; i++) v[i] = 1 / (1 + R_EXP(-v[i]));
        break;
    case RNN_AFFINE:
        for (int64_t i = 0; i < n; i++) v[i] = al * v[i] + be;
        break;
    case RNN_LEAKYRELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] >= 0 ? v[i] : al * v[i];
        break;
    case RNN_THRESHOLDEDRELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] >= al ? v[i] : 0;
        break;
    case RNN_SCALEDTANH:
        for (int64_t i = 0; i < n; i++) v[i] = al * R_TANH(be * v[i]);
        break;
    case RNN_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            RT t = al * v[i] + be;
            v[i] = t < 0 ? 0 : (t > 1 ? 1 : t);
        }
        break;
    case RNN_ELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] >= 0 ? v[i] : al * R_EXPM1(v[i]);
        break;
    case RNN_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] / (1 + R_FABS(v[i]));
        break;
    case RNN_SOFTPLUS: /* log(1 + e^x), without overflow for large x */
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? v[i] + R_LOG1P(R_EXP(-v[i])) : R_LOG1P(R_EXP(v[i]));
        break;
    }
}

/* What one run works on. */
typedef struct FN(eng) {
    const rnn_params *p;
    int nt;
    const RT *x;     /* X, rows of I (layout decides which row is (t, b)) */
    const RT *w;     /* W as [D*G*H, I]; unused when packed */
    const RT *r;     /* R as [D, G*H, H]; unused when packed */
    RT *bx;          /* [D, G*H]: the biases added to X*W^T */
    RT *rbh;         /* [D, H]: GRU linear_before_reset: Rb of the h gate */
    RT *pp;          /* [D, 3H] LSTM peepholes, NULL when absent */
    RT *xw;          /* [rows, D*G*H] */
    RT *hs, *cs;     /* [D, B, H] the states; one direction's [B, H] in run_dir */
    RT *g;           /* [D, B, G*H] recurrent products, then the gates */
    RT *rh;          /* [D, B, H] GRU: r (.) H_prev */
    const int64_t *lens;
    void *ws;        /* SGEMM workspace */
} FN(eng);

/* ---- the products --------------------------------------------------------- */

#if RNN_SGEMM
/* xw = X * W^T + bx, all steps and directions. */
static void FN(gemm_x)(const FN(eng) *e)
{
    const rnn_params *p = e->p;
    size_t m = (size_t)(p->S * p->B), n = (size_t)(p->D * p->GH), k = (size_t)p->I;
    if (!m || !n) return;
    if (!k) { /* no inputs: the biases alone */
        for (size_t i = 0; i < m; i++) memcpy(e->xw + i * n, e->bx, n * sizeof(float));
        return;
    }
    onr_gemm_epilogue ep = {.bias_col = e->bx};
    if (p->wpack)
        onr_sgemm_packed(0, m, n, k, 1.f, e->x, k, p->wpack, 0.f, e->xw, n, &ep, e->ws, e->nt);
    else
        onr_sgemm(0, 1, m, n, k, 1.f, e->x, k, e->w, k, 0.f, e->xw, n, &ep, e->ws, e->nt);
}

/* c[:, r0 .. r0+n) = a * R_d[r0 .. r0+n)^T for the batch, where part 0 is
 * R's rows [0, rsplit) and part 1 the rest. */
static void FN(gemm_r)(const FN(eng) *e, int d, int part, const RT *a, RT *c)
{
    const rnn_params *p = e->p;
    int64_t r0 = part ? p->rsplit : 0, n = part ? p->GH - p->rsplit : p->rsplit;
    if (!p->B || !n) return;
    if (p->rpack[d][part])
        onr_sgemm_packed(0, (size_t)p->B, (size_t)n, (size_t)p->H, 1.f, a, (size_t)p->H,
                         p->rpack[d][part], 0.f, c + r0, (size_t)p->GH, NULL, e->ws, e->nt);
    else
        onr_sgemm(0, 1, (size_t)p->B, (size_t)n, (size_t)p->H, 1.f, a, (size_t)p->H,
                  e->r + (d * p->GH + r0) * p->H, (size_t)p->H, 0.f, c + r0, (size_t)p->GH,
                  NULL, e->ws, e->nt);
}
#else
/* The same products as plain loops. */
static void FN(gemm_x)(const FN(eng) *e)
{
    const rnn_params *p = e->p;
    int64_t m = p->S * p->B, n = p->D * p->GH, k = p->I;
#pragma omp parallel for num_threads(onr_team(e->nt)) if (m * n * k > ONR_PAR_MIN)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            RT s = 0;
            for (int64_t q = 0; q < k; q++) s += e->x[i * k + q] * e->w[j * k + q];
            e->xw[i * n + j] = s + e->bx[j];
        }
}

static void FN(gemm_r)(const FN(eng) *e, int d, int part, const RT *a, RT *c)
{
    const rnn_params *p = e->p;
    int64_t r0 = part ? p->rsplit : 0, n = part ? p->GH - p->rsplit : p->rsplit, H = p->H;
    const RT *r = e->r + (d * p->GH + r0) * H;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t j = 0; j < n; j++) {
            RT s = 0;
            for (int64_t q = 0; q < H; q++) s += a[b * H + q] * r[j * H + q];
            c[b * p->GH + r0 + j] = s;
        }
}
#endif

/* Write n values of h at element off of y. */
static void FN(store)(onr_tensor *y, int64_t off, const RT *h, int64_t n)
{
#if RNN_SGEMM
    memcpy((float *)y->data + off, h, (size_t)n * sizeof(float));
#else
    for (int64_t j = 0; j < n; j++) onr_set_f64(y, off + j, h[j]);
#endif
}

/* ---- one row of one step ---------------------------------------------------- */

/* The row's gate pre-activations: recurrent products plus XW (with bias). */
static RT *FN(gates)(const FN(eng) *e, int d, int64_t b, int64_t t, int64_t from, int64_t n)
{
    const rnn_params *p = e->p;
    const RT *xr = e->xw + rnn_xrow(p, t, b) * p->D * p->GH + d * p->GH;
    RT *g = e->g + b * p->GH;
    for (int64_t j = from; j < from + n; j++) g[j] += xr[j];
    return g;
}

/* RNN: H = f(X W^T + H R^T + Wb + Rb). */
static void FN(rnn_row)(const FN(eng) *e, int d, int64_t b, int64_t t)
{
    const rnn_params *p = e->p;
    RT *g = FN(gates)(e, d, b, t, 0, p->H);
    FN(act)(&p->act[d * p->nacts], p, 1, g, p->H);
    memcpy(e->hs + b * p->H, g, (size_t)p->H * sizeof(RT));
}

/* LSTM, gates in the order i, o, f, c; peepholes P in the order i, o, f. */
static void FN(lstm_row)(const FN(eng) *e, int d, int64_t b, int64_t t)
{
    const rnn_params *p = e->p;
    int64_t H = p->H;
    const rnn_act *a = &p->act[d * p->nacts];
    RT *g = FN(gates)(e, d, b, t, 0, p->GH);
    RT *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
    RT *h = e->hs + b * H, *c = e->cs + b * H;
    const RT *pi = e->pp ? e->pp + d * 3 * H : NULL, *po = pi ? pi + H : NULL,
             *pf = pi ? pi + 2 * H : NULL;
    if (pi)
        for (int64_t j = 0; j < H; j++) {
            gi[j] += pi[j] * c[j];
            gf[j] += pf[j] * c[j];
        }
    FN(act)(&a[0], p, 1, gi, H);
    if (p->input_forget)
        for (int64_t j = 0; j < H; j++) gf[j] = 1 - gi[j];
    else
        FN(act)(&a[0], p, 1, gf, H);
    FN(act)(&a[1], p, 1, gc, H);
    for (int64_t j = 0; j < H; j++) c[j] = gf[j] * c[j] + gi[j] * gc[j];
    if (po)
        for (int64_t j = 0; j < H; j++) go[j] += po[j] * c[j];
    FN(act)(&a[0], p, 1, go, H);
    memcpy(gc, c, (size_t)H * sizeof(RT)); /* h(clip(C)) in the spent c-gate slot */
    FN(act)(&a[2], p, 1, gc, H);
    for (int64_t j = 0; j < H; j++) h[j] = go[j] * gc[j];
}

/* GRU, gates z, r, h: z and r (and, before the h gate's product when
 * linear_before_reset = 0, r (.) H_prev into rh). */
static void FN(gru_zr_row)(const FN(eng) *e, int d, int64_t b, int64_t t)
{
    const rnn_params *p = e->p;
    int64_t H = p->H;
    RT *g = FN(gates)(e, d, b, t, 0, 2 * H);
    FN(act)(&p->act[d * p->nacts], p, 1, g, 2 * H);
    if (!p->lbr) {
        const RT *h = e->hs + b * H, *r = g + H;
        RT *rh = e->rh + b * H;
        for (int64_t j = 0; j < H; j++) rh[j] = r[j] * h[j];
    }
}

/* GRU h gate and update: H = (1 - z) (.) h~ + z (.) H_prev. */
static void FN(gru_h_row)(const FN(eng) *e, int d, int64_t b, int64_t t)
{
    const rnn_params *p = e->p;
    int64_t H = p->H;
    RT *g = e->g + b * p->GH, *z = g, *r = g + H, *gh = g + 2 * H, *h = e->hs + b * H;
    const RT *xh = e->xw + rnn_xrow(p, t, b) * p->D * p->GH + d * p->GH + 2 * H;
    if (p->lbr) { /* h~ = g(X Wh^T + Wbh + r (.) (H Rh^T + Rbh)) */
        const RT *rb = e->rbh + d * H;
        for (int64_t j = 0; j < H; j++) gh[j] = xh[j] + r[j] * (gh[j] + rb[j]);
    } else { /* h~ = g(X Wh^T + (r (.) H) Rh^T + Wbh + Rbh) */
        for (int64_t j = 0; j < H; j++) gh[j] += xh[j];
    }
    FN(act)(&p->act[d * p->nacts + 1], p, 1, gh, H);
    for (int64_t j = 0; j < H; j++) h[j] = (1 - z[j]) * gh[j] + z[j] * h[j];
}

/* One phase over the batch rows still running at step s; rows that ended
 * keep their state. */
static void FN(rows)(const FN(eng) *e, int d, int64_t s, int phase, onr_tensor *y)
{
    const rnn_params *p = e->p;
    int rev = rnn_dir_reverse(p, d);
#pragma omp parallel for num_threads(onr_team(e->nt)) if (p->B * p->GH * 8 > ONR_PAR_MIN)
    for (int64_t b = 0; b < p->B; b++) {
        int64_t len = e->lens[b];
        if (s >= len) {
            if (phase == RNN_PH_GRU_ZR && !p->lbr) /* its rh row still enters the product */
                memset(e->rh + b * p->H, 0, (size_t)p->H * sizeof(RT));
            continue;
        }
        int64_t t = rev ? len - 1 - s : s;
        switch (phase) {
        case RNN_PH_RNN: FN(rnn_row)(e, d, b, t); break;
        case RNN_PH_LSTM: FN(lstm_row)(e, d, b, t); break;
        case RNN_PH_GRU_ZR: FN(gru_zr_row)(e, d, b, t); break;
        default: FN(gru_h_row)(e, d, b, t); break;
        }
        if (y && phase != RNN_PH_GRU_ZR) FN(store)(y, rnn_yoff(p, t, d, b), e->hs + b * p->H, p->H);
    }
}

/* One time step of direction d. */
static void FN(step)(const FN(eng) *e, int d, int64_t s, onr_tensor *y)
{
    const rnn_params *p = e->p;
    FN(gemm_r)(e, d, 0, e->hs, e->g);
    if (p->kind == RNN_KIND_RNN) {
        FN(rows)(e, d, s, RNN_PH_RNN, y);
    } else if (p->kind == RNN_KIND_LSTM) {
        FN(rows)(e, d, s, RNN_PH_LSTM, y);
    } else {
        FN(rows)(e, d, s, RNN_PH_GRU_ZR, NULL);
        if (!p->lbr) FN(gemm_r)(e, d, 1, e->rh, e->g);
        FN(rows)(e, d, s, RNN_PH_GRU_H, y);
    }
}

/* Read a small float tensor (B, P, initial states) into RT. */
static void FN(load)(const onr_tensor *t, int64_t off, RT *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = (RT)onr_get_f64(t, off + i);
}

/* Direction d over the whole sequence, then its Y_h / Y_c. */
static void FN(run_dir)(const FN(eng) *e, int d, onr_tensor *Y, onr_tensor *Yh, onr_tensor *Yc,
                        const onr_tensor *h0, const onr_tensor *c0)
{
    const rnn_params *p = e->p;
    int64_t B = p->B, H = p->H, GH = p->GH, maxlen = 0;
    for (int64_t b = 0; b < B; b++) {
        if (e->lens[b] > maxlen) maxlen = e->lens[b];
        if (h0) FN(load)(h0, rnn_hoff(p, d, b), e->hs + b * H, H);
        else memset(e->hs + b * H, 0, (size_t)H * sizeof(RT));
        if (p->kind != RNN_KIND_LSTM) continue;
        if (c0) FN(load)(c0, rnn_hoff(p, d, b), e->cs + b * H, H);
        else memset(e->cs + b * H, 0, (size_t)H * sizeof(RT));
    }
    for (int64_t s = 0; GH && s < maxlen; s++) FN(step)(e, d, s, Y);
    for (int64_t b = 0; b < B; b++) {
        if (e->lens[b] == 0) { /* no step ran: zero, like Y's padding */
            memset(e->hs + b * H, 0, (size_t)H * sizeof(RT));
            if (e->cs) memset(e->cs + b * H, 0, (size_t)H * sizeof(RT));
        }
        if (Yh) FN(store)(Yh, rnn_hoff(p, d, b), e->hs + b * H, H);
        if (Yc) FN(store)(Yc, rnn_hoff(p, d, b), e->cs + b * H, H);
    }
}

/* The whole operator; pointers into scratch were laid out by reshape. */
static void FN(run)(const onr_kctx *ctx, const rnn_params *p, const int64_t *lens)
{
    FN(eng) E = {.p = p, .lens = lens};
    E.nt = ctx->nthreads < p->nt ? ctx->nthreads : p->nt;
    if (E.nt < 1) E.nt = 1;
    int64_t S = p->S, B = p->B, H = p->H, D = p->D, GH = p->GH;
    E.bx = onr_scratch_at(ctx, p->off_bx);
    E.rbh = onr_scratch_at(ctx, p->off_rbh);
    E.xw = onr_scratch_at(ctx, p->off_xw);
    E.hs = onr_scratch_at(ctx, p->off_h);
    E.cs = onr_scratch_at(ctx, p->off_c);
    E.g = onr_scratch_at(ctx, p->off_g);
    E.rh = onr_scratch_at(ctx, p->off_rh);
    E.ws = onr_scratch_at(ctx, p->off_ws);
    const onr_tensor *X = ctx->in[0], *W = ctx->in[1], *R = ctx->in[2];
#if RNN_SGEMM
    E.x = X->data;
    E.w = W->data;
    E.r = R->data;
#else
    RT *xd = onr_scratch_at(ctx, p->off_x), *wd = onr_scratch_at(ctx, p->off_w),
       *rd = onr_scratch_at(ctx, p->off_r);
    FN(load)(X, 0, xd, X->numel);
    FN(load)(W, 0, wd, W->numel);
    FN(load)(R, 0, rd, R->numel);
    E.x = xd, E.w = wd, E.r = rd;
#endif
    /* biases: everything that adds to X W^T goes there; GRU's Rbh stays
     * apart when linear_before_reset (it is multiplied by r) */
    const onr_tensor *Bt = ctx->n_in > 3 ? ctx->in[3] : NULL;
    for (int64_t d = 0; d < D; d++)
        for (int64_t j = 0; j < GH; j++) {
            RT wb = Bt ? (RT)onr_get_f64(Bt, d * 2 * GH + j) : 0;
            RT rb = Bt ? (RT)onr_get_f64(Bt, d * 2 * GH + GH + j) : 0;
            if (p->kind == RNN_KIND_GRU && p->lbr && j >= 2 * H) {
                E.bx[d * GH + j] = wb;
                E.rbh[d * H + j - 2 * H] = rb;
            } else {
                E.bx[d * GH + j] = wb + rb;
            }
        }
    if (p->kind == RNN_KIND_LSTM && ctx->n_in > 7 && ctx->in[7]) {
        E.pp = onr_scratch_at(ctx, p->off_p);
        FN(load)(ctx->in[7], 0, E.pp, D * 3 * H);
    }
    FN(gemm_x)(&E);

    onr_tensor *Y = ctx->n_out > 0 ? ctx->out[0] : NULL;
    onr_tensor *Yh = ctx->n_out > 1 ? ctx->out[1] : NULL;
    onr_tensor *Yc = p->kind == RNN_KIND_LSTM && ctx->n_out > 2 ? ctx->out[2] : NULL;
    const onr_tensor *h0 = ctx->n_in > 5 ? ctx->in[5] : NULL;
    const onr_tensor *c0 = p->kind == RNN_KIND_LSTM && ctx->n_in > 6 ? ctx->in[6] : NULL;
    size_t esz = Y ? onr_dtype_size(Y->dtype) : 0;
    for (int64_t b = 0; b < B; b++) {
        /* Y past a sequence's end is zero (all-zero bits in every float type) */
        if (Y)
            for (int64_t t = lens[b]; t < S; t++)
                for (int d = 0; d < D; d++)
                    memset((char *)Y->data + (size_t)rnn_yoff(p, t, d, b) * esz, 0,
                           (size_t)H * esz);
    }
    /* the directions are independent: a bidirectional node runs them
     * concurrently, each on its own state, gates and workspace */
    int par = D == 2 && E.nt >= 2;
#pragma omp parallel for num_threads(onr_team(2)) if (par)
    for (int d = 0; d < D; d++) {
        FN(eng) Ed = E;
        Ed.hs = E.hs + d * B * H;
        Ed.cs = E.cs ? E.cs + d * B * H : NULL;
        Ed.g = E.g + d * B * GH;
        Ed.rh = E.rh ? E.rh + d * B * H : NULL;
        Ed.ws = E.ws ? (char *)E.ws + (size_t)d * p->ws_step : NULL;
        Ed.nt = par ? E.nt / 2 : E.nt;
        if (B * GH * H < RNN_STEP_PAR_FMAS) Ed.nt = 1;
        FN(run_dir)(&Ed, d, Y, Yh, Yc, h0, c0);
    }
}

#undef FN
#undef RNN_CAT
#undef RNN_CAT2
