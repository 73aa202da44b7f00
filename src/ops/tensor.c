/*
 * tensor.c - helpers shared by the tensor-manipulation operators: element
 * copies that know about STRING, the strided-copy engine behind Transpose,
 * Slice, Expand and Tile, and typed reductions for the Scatter family.
 *
 * The strided-copy engine first coalesces the index space (drops size-1
 * dims, merges dims that are contiguous in the source too), then picks an
 * inner loop: whole contiguous rows (memcpy), a broadcast fill, a tiled 2-D
 * transpose when some source axis has stride 1, or a plain strided gather.
 * The outer dims are walked with an odometer, so no index is ever rebuilt
 * with divisions inside the copy. The plan is made once per shape (an op's
 * reshape stores it in its params) and run walks it.
 */
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "ops/tensor.h"

size_t tn_esz(onr_dtype dt)
{
    return dt == ONR_STRING ? sizeof(char *) : onr_dtype_size(dt);
}

int64_t tn_prod(const int64_t *dims, int a, int b)
{
    /* saturating: an empty tensor may have huge dims beside its zero */
    int64_t p = 1;
    for (int i = a; i < b; i++)
        if (__builtin_mul_overflow(p, dims[i], &p)) p = INT64_MAX;
    return p;
}

/* ---- element copies -------------------------------------------------------- */

int tn_copy(onr_dtype dt, void *dst, const void *src, int64_t n)
{
    if (n <= 0) return ONR_OK;
    if (dt != ONR_STRING) {
        memcpy(dst, src, (size_t)n * onr_dtype_size(dt));
        return ONR_OK;
    }
    char **d = dst;
    char *const *s = src;
    for (int64_t i = 0; i < n; i++)
        if (onr_str_assign(&d[i], s[i])) return ONR_E_NOMEM;
    return ONR_OK;
}

/* Fill with one element, per element size: the loop is the same for every
 * type of that size, so only four copies of it exist. */
#define FILL_LOOP(T)                                                                     \
    do {                                                                                 \
        T v_;                                                                            \
        memcpy(&v_, val, sizeof v_);                                                     \
        T *d_ = dst;                                                                     \
        for (int64_t i_ = 0; i_ < n; i_++) d_[i_] = v_;                                  \
    } while (0)

int tn_fill(onr_dtype dt, void *dst, const void *val, int64_t n)
{
    if (n <= 0) return ONR_OK;
    if (dt == ONR_STRING) {
        char **d = dst;
        const char *v = *(char *const *)val;
        for (int64_t i = 0; i < n; i++)
            if (onr_str_assign(&d[i], v)) return ONR_E_NOMEM;
        return ONR_OK;
    }
    switch (onr_dtype_size(dt)) {
    case 1: memset(dst, *(const uint8_t *)val, (size_t)n); break;
    case 2: FILL_LOOP(uint16_t); break;
    case 4: FILL_LOOP(uint32_t); break;
    case 8: FILL_LOOP(uint64_t); break;
    default: return ONR_E_UNSUPPORTED;
    }
    return ONR_OK;
}

int tn_zero(onr_dtype dt, void *dst, int64_t n)
{
    if (n <= 0) return ONR_OK;
    if (dt == ONR_STRING) {
        static const char *const empty = "";
        return tn_fill(dt, dst, &empty, n);
    }
    memset(dst, 0, (size_t)n * onr_dtype_size(dt));
    return ONR_OK;
}

/* ---- strided copy ------------------------------------------------------------ */

enum { SC_ROWS, SC_FILL, SC_TILE, SC_STRIDED };

/* 16x16 tiles: small enough that the tile's strided side stays in L1 even
 * when the stride is a power of two (cache-set conflicts) */
#define SC_TILE_B 16

static void sc_make(tn_copy_plan *pl, int rank, const int64_t *dims, const int64_t *strides)
{
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 1) continue;
        if (r > 0 && pl->s[r - 1] == strides[i] * dims[i]) {
            pl->d[r - 1] *= dims[i];
            pl->s[r - 1] = strides[i];
        } else {
            pl->d[r] = dims[i];
            pl->s[r] = strides[i];
            r++;
        }
    }
    pl->r = r;
    int64_t st = 1;
    for (int i = r - 1; i >= 0; i--) {
        pl->os[i] = st;
        st *= pl->d[i];
    }
    pl->p = -1;
    if (r == 0) { /* one element: a single row of length 1 */
        pl->r = r = 1;
        pl->d[0] = 1;
        pl->s[0] = 1;
        pl->os[0] = 1;
    }
    int last = r - 1;
    if (pl->s[last] == 1) {
        pl->mode = SC_ROWS;
    } else if (pl->s[last] == 0) {
        pl->mode = SC_FILL;
    } else {
        pl->mode = SC_STRIDED;
        for (int i = 0; i < last; i++)
            if (pl->s[i] == 1 && pl->d[i] >= 4 && pl->d[last] >= 4) {
                pl->mode = SC_TILE;
                pl->p = i;
            }
    }
    pl->no = 0;
    pl->m = 1;
    for (int i = 0; i < last; i++) {
        if (i == pl->p) continue;
        pl->oax[pl->no++] = i;
        pl->m *= pl->d[i];
    }
    pl->inner = pl->d[last] * (pl->p >= 0 ? pl->d[pl->p] : 1);
}

/* The inner work of one unit, for an element type T: a row, or for SC_TILE
 * the block of rows [i0, i1) of the tiled axis. */
#define SC_INNER(T)                                                                      \
    do {                                                                                 \
        T *o_ = (T *)dst + doff;                                                         \
        const T *x_ = (const T *)src + soff;                                             \
        int64_t L_ = pl->d[pl->r - 1], sl_ = pl->s[pl->r - 1];                           \
        switch (pl->mode) {                                                              \
        case SC_ROWS: memcpy(o_, x_, (size_t)L_ * sizeof(T)); break;                     \
        case SC_FILL: {                                                                  \
            T v_ = *x_;                                                                  \
            for (int64_t j_ = 0; j_ < L_; j_++) o_[j_] = v_;                             \
            break;                                                                       \
        }                                                                                \
        case SC_STRIDED:                                                                 \
            for (int64_t j_ = 0; j_ < L_; j_++) o_[j_] = x_[j_ * sl_];                   \
            break;                                                                       \
        default: {                                                                       \
            int64_t osp_ = pl->os[pl->p];                                                \
            for (int64_t j0 = 0; j0 < L_; j0 += SC_TILE_B) {                             \
                int64_t j1 = j0 + SC_TILE_B < L_ ? j0 + SC_TILE_B : L_;                  \
                for (int64_t i_ = i0; i_ < i1; i_++)                                     \
                    for (int64_t j_ = j0; j_ < j1; j_++)                                 \
                        o_[i_ * osp_ + j_] = x_[i_ + j_ * sl_];                          \
            }                                                                            \
        }                                                                                \
        }                                                                                \
    } while (0)

/* SC_TILE for 4-byte elements: o[i*osp + j] = x[i + j*sl] for i in [i0,
 * i1), j in [0, L), in 4x4 blocks transposed in SSE registers (a vector
 * load per source row and a vector store per destination row, instead of
 * a scalar each: ConvNeXt's NCHW <-> NHWC transposes), the edges scalar,
 * within the same 16-wide column blocks as the generic loop. The bits are
 * moved, never computed on, so any 4-byte type goes through it. */
static void sc_tile4(uint32_t *o, const uint32_t *x, int64_t i0, int64_t i1, int64_t L,
                     int64_t osp, int64_t sl)
{
    for (int64_t j0 = 0; j0 < L; j0 += SC_TILE_B) {
        int64_t j1 = j0 + SC_TILE_B < L ? j0 + SC_TILE_B : L, i = i0;
#if defined(__SSE__)
        for (; i + 4 <= i1; i += 4) {
            int64_t j = j0;
            for (; j + 4 <= j1; j += 4) {
                const float *s = (const float *)(x + i + j * sl);
                __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + sl);
                __m128 r2 = _mm_loadu_ps(s + 2 * sl), r3 = _mm_loadu_ps(s + 3 * sl);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                float *d = (float *)(o + i * osp + j);
                _mm_storeu_ps(d, r0);
                _mm_storeu_ps(d + osp, r1);
                _mm_storeu_ps(d + 2 * osp, r2);
                _mm_storeu_ps(d + 3 * osp, r3);
            }
            for (; j < j1; j++)
                for (int64_t ii = i; ii < i + 4; ii++) o[ii * osp + j] = x[ii + j * sl];
        }
#endif
        for (; i < i1; i++)
            for (int64_t j = j0; j < j1; j++) o[i * osp + j] = x[i + j * sl];
    }
}

/* Copy units [q0, q1). A unit is one outer position, except for SC_TILE
 * where each outer position has nb units (blocks of SC_TILE_B rows of the
 * tiled axis), so a single large 2-D transpose still splits across threads. */
static void sc_range(const tn_copy_plan *pl, size_t esz, void *dst, const void *src,
                     int64_t offset, int64_t q0, int64_t q1)
{
    int64_t coord[TN_MAX_DIMS];
    int64_t nb = pl->mode == SC_TILE ? (pl->d[pl->p] + SC_TILE_B - 1) / SC_TILE_B : 1;
    int64_t A = pl->mode == SC_TILE ? pl->d[pl->p] : 1;
    int64_t soff = offset, doff = 0, q = q0 / nb, blk = q0 % nb;
    for (int k = pl->no - 1; k >= 0; k--) {
        int ax = pl->oax[k];
        coord[k] = q % pl->d[ax];
        q /= pl->d[ax];
        soff += coord[k] * pl->s[ax];
        doff += coord[k] * pl->os[ax];
    }
    for (q = q0; q < q1; q++) {
        int64_t i0 = blk * SC_TILE_B, i1 = i0 + SC_TILE_B < A ? i0 + SC_TILE_B : A;
        switch (esz) {
        case 1: SC_INNER(uint8_t); break;
        case 2: SC_INNER(uint16_t); break;
        case 4:
            if (pl->mode == SC_TILE)
                sc_tile4((uint32_t *)dst + doff, (const uint32_t *)src + soff, i0, i1,
                         pl->d[pl->r - 1], pl->os[pl->p], pl->s[pl->r - 1]);
            else
                SC_INNER(uint32_t);
            break;
        default: SC_INNER(uint64_t); break;
        }
        if (++blk < nb) continue;
        blk = 0;
        for (int k = pl->no - 1; k >= 0; k--) { /* odometer step */
            int ax = pl->oax[k];
            soff += pl->s[ax];
            doff += pl->os[ax];
            if (++coord[k] < pl->d[ax]) break;
            soff -= pl->s[ax] * pl->d[ax];
            doff -= pl->os[ax] * pl->d[ax];
            coord[k] = 0;
        }
    }
}

/* STRING: the same walk over every element, duplicating each string. */
static int sc_strings(const tn_copy_plan *pl, char **dst, char *const *src, int64_t offset)
{
    int64_t coord[TN_MAX_DIMS] = {0};
    int64_t total = 1, soff = offset;
    for (int i = 0; i < pl->r; i++) total *= pl->d[i];
    for (int64_t q = 0; q < total; q++) {
        if (onr_str_assign(&dst[q], src[soff])) return ONR_E_NOMEM;
        for (int k = pl->r - 1; k >= 0; k--) {
            soff += pl->s[k];
            if (++coord[k] < pl->d[k]) break;
            soff -= pl->s[k] * pl->d[k];
            coord[k] = 0;
        }
    }
    return ONR_OK;
}

int tn_copy_plan_make(tn_copy_plan *pl, onr_dtype dt, int rank, const int64_t *dims,
                      const int64_t *strides, int64_t offset, onr_err *err)
{
    memset(pl, 0, sizeof *pl);
    if (rank > TN_MAX_DIMS)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "copy of rank %d exceeds the maximum %d", rank,
                          TN_MAX_DIMS);
    pl->esz = dt == ONR_STRING ? 0 : onr_dtype_size(dt);
    if (dt != ONR_STRING && pl->esz != 1 && pl->esz != 2 && pl->esz != 4 && pl->esz != 8)
        return onr_seterr(err, ONR_E_UNSUPPORTED, "element type %s is not supported",
                          onr_dtype_name(dt));
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0) {
            pl->empty = 1;
            return ONR_OK;
        }
    sc_make(pl, rank, dims, strides);
    pl->offset = offset;
    pl->units = pl->m * (pl->mode == SC_TILE ? (pl->d[pl->p] + SC_TILE_B - 1) / SC_TILE_B : 1);
    return ONR_OK;
}

int tn_copy_plan_run(const tn_copy_plan *pl, onr_dtype dt, void *dst, const void *src,
                     int nthreads, onr_err *err)
{
    if (pl->empty) return ONR_OK;
    if (dt == ONR_STRING) {
        if (sc_strings(pl, dst, src, pl->offset))
            return onr_seterr(err, ONR_E_NOMEM, "out of memory copying strings");
        return ONR_OK;
    }
    int64_t work = pl->m * pl->inner, units = pl->units;
    int nt = nthreads > 0 ? nthreads : 1;
    if (nt > units) nt = (int)units;
    if (nt <= 1 || work <= ONR_PAR_MIN) {
        sc_range(pl, pl->esz, dst, src, pl->offset, 0, units);
        return ONR_OK;
    }
#pragma omp parallel num_threads(onr_team(nt))
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t q0 = units * t / T, q1 = units * (t + 1) / T;
        if (q0 < q1) sc_range(pl, pl->esz, dst, src, pl->offset, q0, q1);
    }
    return ONR_OK;
}

/* ---- small shared checks ----------------------------------------------------- */

int tn_norm_axes(onr_err *err, const int64_t *vals, int n, int rank, int *axes,
                 const char *what)
{
    for (int i = 0; i < n; i++) {
        int64_t a = vals[i] < 0 ? vals[i] + rank : vals[i];
        if (a < 0 || a >= rank)
            return onr_seterr(err, ONR_E_MODEL, "%s value %lld is out of range for rank %d",
                              what, (long long)vals[i], rank);
        for (int j = 0; j < i; j++)
            if (axes[j] == a)
                return onr_seterr(err, ONR_E_MODEL, "%s repeats axis %lld", what,
                                  (long long)a);
        axes[i] = (int)a;
    }
    return ONR_OK;
}

int tn_lowp_since(onr_dtype dt, int float8_since)
{
    switch (dt) {
    case ONR_FLOAT8E4M3FN:
    case ONR_FLOAT8E4M3FNUZ:
    case ONR_FLOAT8E5M2:
    case ONR_FLOAT8E5M2FNUZ: return float8_since;
    case ONR_UINT4:
    case ONR_INT4: return 21;
    case ONR_FLOAT4E2M1: return 23;
    case ONR_FLOAT8E8M0: return 24;
    case ONR_UINT2:
    case ONR_INT2: return 25;
    default: return 0;
    }
}

int tn_check_data(onr_kctx *ctx, int i, int float8_since)
{
    if (i >= ctx->n_in || !ctx->in[i] || !onr_dtype_is_lowp(ctx->in[i]->dtype))
        return onr_check_input(ctx, i, ONR_TYPES_ALL);
    onr_dtype dt = ctx->in[i]->dtype;
    if (!float8_since)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input %d is %s, a type this operator does not take at any opset", i,
                          onr_dtype_name(dt));
    int since = tn_lowp_since(dt, float8_since);
    if (ctx->opset < since)
        return onr_seterr(ctx->err, ONR_E_MODEL,
                          "input %d is %s, which this operator takes from opset %d (this is %lld)",
                          i, onr_dtype_name(dt), since, (long long)ctx->opset);
    return ONR_OK;
}

int tn_check_out(const onr_kctx *ctx, int i, int rank, const int64_t *dims)
{
    const onr_tensor *o = ctx->out[i];
    int same = o->rank == rank;
    for (int k = 0; same && k < rank; k++) same = o->dims[k] == dims[k];
    if (same) return ONR_OK;
    char b1[256], b2[256];
    return onr_seterr(ctx->err, ONR_E_RUNTIME,
                      "output %d has shape %s but the inputs now give %s", i, TN_DIMS(b1, o),
                      onr_fmt_dims(b2, sizeof b2, dims, rank));
}

int tn_nodefer(const onr_kctx *ctx, int st)
{
    if (st != ONR_SHAPE_DEFER) return st;
    return onr_seterr(ctx->err, ONR_E_RUNTIME, "an input value is still unknown at run time");
}

int tn_need_data(const onr_kctx *ctx, int i)
{
    if (i >= ctx->n_in || !ctx->in[i])
        return onr_seterr(ctx->err, ONR_E_MODEL, "required input %d is missing", i);
    if (!ctx->in[i]->data && ctx->in[i]->numel > 0) return ONR_SHAPE_DEFER;
    return ONR_OK;
}

int tn_read_ints_opt(onr_kctx *ctx, int i, int64_t *vals, int max, int *count, int *present)
{
    *count = 0;
    *present = i < ctx->n_in && ctx->in[i];
    if (!*present) return ONR_OK;
    return onr_read_ints(ctx, i, vals, max, count);
}

/* ---- typed reductions ------------------------------------------------------ */

static int parse_reduction(const onr_node *node, int64_t opset, onr_err *err, tn_reduce *red)
{
    static const struct {
        const char *name;
        tn_reduce red;
        int since;
    } table[] = {{"none", TN_RED_NONE, 1}, {"add", TN_RED_ADD, 16}, {"mul", TN_RED_MUL, 16},
                 {"max", TN_RED_MAX, 18}, {"min", TN_RED_MIN, 18}};
    *red = TN_RED_NONE;
    if (opset < 16) return ONR_OK; /* the attribute did not exist yet */
    const char *s = onr_attr_string(node, "reduction", "none");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s, table[i].name) == 0) {
            if (opset < table[i].since) break;
            *red = table[i].red;
            return ONR_OK;
        }
    return onr_seterr(err, ONR_E_MODEL, "reduction '%s' is not valid at opset %lld", s,
                      (long long)opset);
}

int tn_reduction_attr(const onr_create_ctx *c, tn_reduce *red)
{
    return parse_reduction(c->node, c->opset, c->err, red);
}

/* Native types: the arithmetic is that of the type; signed integer add/mul
 * wrap through the unsigned type (no undefined overflow). */
#define RED_LOOP(T, ADD, MUL)                                                            \
    do {                                                                                 \
        T *d_ = dst;                                                                     \
        const T *s_ = src;                                                               \
        for (int64_t i_ = 0; i_ < n; i_++) {                                             \
            T a = d_[i_], b = s_[i_];                                                    \
            switch (red) {                                                               \
            case TN_RED_ADD: d_[i_] = (T)(ADD); break;                                   \
            case TN_RED_MUL: d_[i_] = (T)(MUL); break;                                   \
            case TN_RED_MAX: d_[i_] = a > b ? a : b; break;                              \
            case TN_RED_MIN: d_[i_] = a < b ? a : b; break;                              \
            default: d_[i_] = b; break;                                                  \
            }                                                                            \
        }                                                                                \
    } while (0)
#define RED_FLT(T) RED_LOOP(T, a + b, a * b)
#define RED_INT(T, U) RED_LOOP(T, (U)((U)a + (U)b), (U)((uint64_t)(U)a * (uint64_t)(U)b))

/* fp16/bf16: compute in float, round on store. */
#define RED_HALF(TOF, FROMF)                                                             \
    do {                                                                                 \
        uint16_t *d_ = dst;                                                              \
        const uint16_t *s_ = src;                                                        \
        for (int64_t i_ = 0; i_ < n; i_++) {                                             \
            float a = TOF(d_[i_]), b = TOF(s_[i_]), r;                                   \
            switch (red) {                                                               \
            case TN_RED_ADD: r = a + b; break;                                           \
            case TN_RED_MUL: r = a * b; break;                                           \
            case TN_RED_MAX: r = a > b ? a : b; break;                                   \
            case TN_RED_MIN: r = a < b ? a : b; break;                                   \
            default: r = b; break;                                                       \
            }                                                                            \
            d_[i_] = red == TN_RED_NONE ? s_[i_] : FROMF(r);                             \
        }                                                                                \
    } while (0)

int tn_reduce_into(onr_dtype dt, tn_reduce red, void *dst, const void *src, int64_t n)
{
    if (red == TN_RED_NONE) return tn_copy(dt, dst, src, n);
    switch (dt) {
    case ONR_FLOAT: RED_FLT(float); break;
    case ONR_DOUBLE: RED_FLT(double); break;
    case ONR_FLOAT16: RED_HALF(onr_half_to_float, onr_float_to_half); break;
    case ONR_BFLOAT16: RED_HALF(onr_bf16_to_float, onr_float_to_bf16); break;
    case ONR_INT8: RED_INT(int8_t, uint8_t); break;
    case ONR_INT16: RED_INT(int16_t, uint16_t); break;
    case ONR_INT32: RED_INT(int32_t, uint32_t); break;
    case ONR_INT64: RED_INT(int64_t, uint64_t); break;
    case ONR_UINT8: RED_INT(uint8_t, uint8_t); break;
    case ONR_UINT16: RED_INT(uint16_t, uint16_t); break;
    case ONR_UINT32: RED_INT(uint32_t, uint32_t); break;
    case ONR_UINT64: RED_INT(uint64_t, uint64_t); break;
    case ONR_BOOL: /* add/max = or, mul/min = and */
        RED_LOOP(uint8_t, (a | b) != 0, (a & b) != 0);
        if (red == TN_RED_MAX || red == TN_RED_MIN) {
            uint8_t *d = dst;
            for (int64_t i = 0; i < n; i++) d[i] = d[i] != 0;
        }
        break;
    default: return ONR_E_UNSUPPORTED;
    }
    return ONR_OK;
}
