/*
 * imagedecoder.c - ImageDecoder (opset 20, its only version): a 1-D uint8
 * tensor holding an encoded image file -> the decoded image, uint8
 * [Height, Width, Channels] (channels last), in pixel_format "RGB"
 * (default), "BGR" (3 channels) or "Grayscale" (1 channel).
 *
 * The format is told by the stream's first bytes, not by a name:
 *   JPEG (FF D8 FF), PNG, WebP (RIFF....WEBP), TIFF (II*\0 / MM\0*): through
 *     Debian's libraries (imagecodecs.c), each optional at build time;
 *   BMP (uncompressed 1/4/8/16/24/32-bit, bitfields) and the portable
 *     formats PBM/PGM/PPM (P1-P6): decoded here, they need no library;
 *   JPEG 2000 (and RLE-compressed BMP): recognized and refused as not
 *     supported.
 *
 * What the output holds, as the reference implementation (Pillow) gives it
 * and the specification's wording asks: a color source gives its RGB
 * (alpha dropped, palettes looked up, 16-bit samples reduced to their high
 * byte); a gray source gives its gray value in each of R, G and B; BGR is
 * RGB reversed; Grayscale is the gray source as is, or a color source's
 * ITU-R 601-2 luma computed from its decoded RGB the way Pillow's
 * convert("L") does (img_luma). JPEG is decoded with libjpeg-turbo's
 * defaults, the specification's "fancy" chroma upsampling included.
 *
 * A stream that cannot be decoded (corrupt, truncated, of no known
 * format, an image with no pixels) is an error naming the format and the
 * problem. The specification's text says such a stream "will return an
 * empty matrix" while its reference implementation raises; onnx-run raises
 * too, so a bad image is never mistaken for an empty one. Memory: the
 * output is sized from the header through the run's memory budget before
 * any pixel is decoded, and what a codec needs besides (whole-image
 * buffers of progressive JPEG, interlaced PNG, TIFF) is counted against
 * the budget first, so a decompression bomb is refused with a message
 * naming the bytes, never allocated.
 *
 * The output's shape depends on the stream's contents: ONR_OP_DYNAMIC_OUT,
 * run sizes it (onr_out_resize).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/budget.h"
#include "ops/imagedecoder.h"

typedef struct imgdec_params {
    int fmt; /* IMG_RGB, IMG_BGR, IMG_GRAY */
} imgdec_params;

static int imgdec_create(onr_create_ctx *c, void *params)
{
    imgdec_params *p = params;
    const char *f = onr_attr_string(c->node, "pixel_format", "RGB");
    if (strcmp(f, "RGB") == 0) p->fmt = IMG_RGB;
    else if (strcmp(f, "BGR") == 0) p->fmt = IMG_BGR;
    else if (strcmp(f, "Grayscale") == 0) p->fmt = IMG_GRAY;
    else
        return onr_seterr(c->err, ONR_E_MODEL,
                          "attribute 'pixel_format' must be \"RGB\", \"BGR\" or \"Grayscale\", "
                          "got \"%s\"",
                          f);
    return ONR_OK;
}

static int imgdec_reshape(onr_kctx *ctx, size_t *scratch)
{
    *scratch = 0;
    if (ctx->n_in != 1 || ctx->n_out != 1)
        return onr_seterr(ctx->err, ONR_E_MODEL, "ImageDecoder takes 1 input and 1 output, got %d and %d",
                          ctx->n_in, ctx->n_out);
    int st = onr_check_input(ctx, 0, ONR_T(ONR_UINT8));
    if (st) return st;
    if (ctx->in[0]->rank != 1)
        return onr_seterr(ctx->err, ONR_E_INPUT,
                          "input 'encoded_stream' must be 1-D (the bytes of an image file), "
                          "it has rank %d",
                          ctx->in[0]->rank);
    return ONR_OK;
}

/* ---- the sink ---------------------------------------------------------- */

int img_begin(img_sink *s, int64_t h, int64_t w)
{
    if (h <= 0 || w <= 0)
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "the image is %lld x %lld pixels (empty)",
                          (long long)w, (long long)h);
    int64_t dims[3] = {h, w, s->ch};
    int st = onr_out_resize(s->ctx, 0, ONR_UINT8, 3, dims);
    if (st) {
        onr_budget_run_explain(s->ctx->err);
        return st;
    }
    s->h = h;
    s->w = w;
    s->out = s->ctx->out[0]->data;
    return ONR_OK;
}

void img_row(const img_sink *s, int64_t y, const uint8_t *src, int src_ch)
{
    uint8_t *d = img_row_ptr(s, y);
    int64_t w = s->w;
    if (src_ch <= 2) { /* gray (+ alpha) */
        if (s->ch == 1)
            for (int64_t x = 0; x < w; x++) d[x] = src[x * src_ch];
        else
            for (int64_t x = 0; x < w; x++) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = src[x * src_ch];
        return;
    }
    for (int64_t x = 0; x < w; x++) { /* RGB (+ alpha) */
        const uint8_t *p = src + x * src_ch;
        if (s->fmt == IMG_GRAY) {
            d[x] = img_luma(p[0], p[1], p[2]);
        } else if (s->fmt == IMG_BGR) {
            d[3 * x] = p[2];
            d[3 * x + 1] = p[1];
            d[3 * x + 2] = p[0];
        } else {
            d[3 * x] = p[0];
            d[3 * x + 1] = p[1];
            d[3 * x + 2] = p[2];
        }
    }
}

int img_reserve(const img_sink *s, uint64_t bytes, const char *what)
{
    if (bytes > onr_max_tensor_bytes())
        return onr_seterr(s->ctx->err, ONR_E_NOMEM,
                          "decoding needs %llu bytes for %s, more than the %llu-byte limit",
                          (unsigned long long)bytes, what,
                          (unsigned long long)onr_max_tensor_bytes());
    if (onr_budget_run_take(bytes, s->ctx->err)) {
        onr_budget_run_explain(s->ctx->err);
        return ONR_E_NOMEM;
    }
    return ONR_OK;
}

void *img_tmp(const img_sink *s, size_t bytes)
{
    if (img_reserve(s, bytes, "a decoding buffer")) return NULL;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) onr_seterr(s->ctx->err, ONR_E_NOMEM, "out of memory for a %zu-byte decoding buffer", bytes);
    return p;
}

/* ---- BMP ----------------------------------------------------------------- */

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* One channel of a bitfield-packed pixel scaled to 8 bits (v * 255 / max,
 * truncated as Pillow's BGR;15 / BGR;16 unpackers do). */
static uint8_t bmp_field(uint32_t px, uint32_t mask)
{
    if (!mask) return 0;
    int shift = 0, bits = 0;
    while (!(mask >> shift & 1)) shift++;
    while (shift + bits < 32 && (mask >> (shift + bits) & 1)) bits++;
    uint32_t v = (px & mask) >> shift, max = bits >= 32 ? 0xffffffffu : (1u << bits) - 1;
    return (uint8_t)((uint64_t)v * 255 / max); /* truncated, as Pillow's BGR;15/16 */
}

static int bmp_err(const img_sink *s, const char *what)
{
    return onr_seterr(s->ctx->err, ONR_E_INPUT, "BMP: %s", what);
}

/* Windows BMP: the 14-byte file header, then an info header of 12
 * (OS/2 core) or 40+ bytes; rows bottom-up unless the height is negative,
 * each padded to 4 bytes. Palette images (1/4/8-bit) look their colors up
 * (index past the palette: black); 16-bit is 5-5-5 unless bitfields say
 * otherwise; 24-bit is BGR; 32-bit BGRX (or bitfields). */
static int decode_bmp(img_sink *s, const uint8_t *b, size_t n)
{
    if (n < 26) return bmp_err(s, "the file ends inside its header (truncated)");
    uint32_t off = le32(b + 10), hs = le32(b + 14);
    if (hs != 12 && (hs < 40 || hs > 1024)) return bmp_err(s, "unknown info header size");
    if (14 + (size_t)hs > n) return bmp_err(s, "the file ends inside its info header (truncated)");
    const uint8_t *ih = b + 14;
    int64_t w, h;
    uint32_t bpp, comp = 0, ncolors = 0, masks[3] = {0, 0, 0};
    size_t pal_entry = 4;
    if (hs == 12) {
        w = le16(ih + 4);
        h = le16(ih + 6);
        bpp = le16(ih + 10);
        pal_entry = 3;
    } else {
        w = (int32_t)le32(ih + 4);
        h = (int32_t)le32(ih + 8);
        bpp = le16(ih + 14);
        comp = le32(ih + 16);
        ncolors = le32(ih + 32);
    }
    int top_down = h < 0;
    if (top_down) h = -h;
    if (w <= 0 || h <= 0) return bmp_err(s, "the image has no pixels");
    if (comp == 1 || comp == 2) return onr_seterr(s->ctx->err, ONR_E_UNSUPPORTED,
                                                  "BMP: RLE-compressed bitmaps are not supported");
    if (comp == 3 || comp == 6) { /* BI_BITFIELDS: after a 40-byte header, else inside it */
        size_t mo = hs >= 52 ? 14 + 40 : 14 + hs;
        if (mo + 12 > n) return bmp_err(s, "the file ends inside its bit masks (truncated)");
        for (int k = 0; k < 3; k++) masks[k] = le32(b + mo + 4 * k);
    } else if (comp != 0) {
        return onr_seterr(s->ctx->err, ONR_E_UNSUPPORTED,
                          "BMP: compression %u (JPEG/PNG inside BMP) is not supported", comp);
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return bmp_err(s, "bits per pixel must be 1, 4, 8, 16, 24 or 32");
    if ((comp == 3 || comp == 6) && bpp != 16 && bpp != 32)
        return bmp_err(s, "bit masks need 16 or 32 bits per pixel");
    if (comp == 0 && bpp == 16) masks[0] = 0x7c00, masks[1] = 0x03e0, masks[2] = 0x001f;
    if (comp == 0 && bpp == 32) masks[0] = 0xff0000, masks[1] = 0xff00, masks[2] = 0xff;
    /* the palette, right after the info header (and masks) */
    const uint8_t *pal = NULL;
    uint32_t npal = 0;
    if (bpp <= 8) {
        size_t po = 14 + (size_t)hs + (comp == 3 && hs == 40 ? 12 : 0);
        npal = ncolors && ncolors <= (1u << bpp) ? ncolors : 1u << bpp;
        if (po > n || (n - po) / pal_entry < npal) {
            if (po > n) return bmp_err(s, "the file ends inside its palette (truncated)");
            npal = (uint32_t)((n - po) / pal_entry);
        }
        pal = b + po;
    }
    /* rows: check the pixel data is all there before sizing the output */
    uint64_t stride = (((uint64_t)w * bpp + 31) / 32) * 4;
    if (off > n || (uint64_t)(n - off) / stride < (uint64_t)h)
        return bmp_err(s, "the pixel data is shorter than the header's dims (truncated)");
    int st = img_begin(s, h, w);
    if (st) return st;
    uint8_t rgb[3 * 64];
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *r = b + off + (size_t)(top_down ? y : h - 1 - y) * stride;
        for (int64_t x0 = 0; x0 < w; x0 += 64) { /* 64 pixels at a time through rgb */
            int64_t cnt = w - x0 < 64 ? w - x0 : 64;
            for (int64_t k = 0; k < cnt; k++) {
                int64_t x = x0 + k;
                uint8_t *o = rgb + 3 * k;
                if (bpp <= 8) {
                    uint32_t idx = bpp == 8 ? r[x]
                                 : bpp == 4 ? (uint32_t)(r[x / 2] >> (x % 2 ? 0 : 4)) & 15
                                            : (uint32_t)(r[x / 8] >> (7 - x % 8)) & 1;
                    if (idx < npal) {
                        const uint8_t *c = pal + (size_t)idx * pal_entry;
                        o[0] = c[2], o[1] = c[1], o[2] = c[0];
                    } else {
                        o[0] = o[1] = o[2] = 0;
                    }
                } else if (bpp == 24) {
                    o[0] = r[3 * x + 2], o[1] = r[3 * x + 1], o[2] = r[3 * x];
                } else {
                    uint32_t px = bpp == 16 ? le16(r + 2 * x) : le32(r + 4 * x);
                    for (int c = 0; c < 3; c++) o[c] = bmp_field(px, masks[c]);
                }
            }
            img_sink part = *s; /* convert this run of pixels into place */
            part.w = cnt;
            part.out = img_row_ptr(s, y) + x0 * s->ch;
            img_row(&part, 0, rgb, 3);
        }
    }
    return ONR_OK;
}

/* ---- PBM / PGM / PPM (P1-P6) ---------------------------------------------- */

typedef struct pnm_rd {
    const uint8_t *b;
    size_t n, i;
} pnm_rd;

static void pnm_skip(pnm_rd *r)
{
    while (r->i < r->n) {
        uint8_t c = r->b[r->i];
        if (c == '#')
            while (r->i < r->n && r->b[r->i] != '\n' && r->b[r->i] != '\r') r->i++;
        else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            r->i++;
        else
            break;
    }
}

/* A decimal number after whitespace and comments; -1 when there is none
 * or it passes 2^31. */
static int64_t pnm_num(pnm_rd *r)
{
    pnm_skip(r);
    int64_t v = -1;
    while (r->i < r->n && r->b[r->i] >= '0' && r->b[r->i] <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (r->b[r->i++] - '0');
        if (v > INT32_MAX) return -1;
    }
    return v;
}

/* v (clamped to maxv) * 255 / maxv rounded half to even, as Pillow's
 * round(v / maxval * 255). */
static uint8_t pnm_scale(uint32_t v, uint32_t maxv)
{
    uint64_t t = (uint64_t)(v > maxv ? maxv : v) * 255, q = t / maxv, rem = t % maxv;
    if (2 * rem > maxv || (2 * rem == maxv && (q & 1))) q++;
    return (uint8_t)q;
}

static int pnm_err(const img_sink *s, char kind, const char *what)
{
    return onr_seterr(s->ctx->err, ONR_E_INPUT, "P%c (portable anymap): %s", kind, what);
}

/* Netpbm: "P<k>", width, height, maxval (not for P1/P4), then one
 * whitespace and binary samples (P4-P6: bits MSB first / bytes / 16-bit
 * big-endian when maxval > 255) or decimal ones (P1-P3). Bitmaps: 1 is
 * black. Samples scale to 8 bits (pnm_scale). */
static int decode_pnm(img_sink *s, const uint8_t *b, size_t n)
{
    char kind = (char)b[1];
    pnm_rd r = {b, n, 2};
    int bitmap = kind == '1' || kind == '4', ascii = kind <= '3';
    int sch = kind == '3' || kind == '6' ? 3 : 1;
    int64_t w = pnm_num(&r), h = pnm_num(&r), maxv = bitmap ? 1 : pnm_num(&r);
    if (w < 0 || h < 0 || maxv < 0) return pnm_err(s, kind, "the header is incomplete or malformed");
    if (maxv < 1 || maxv > 65535) return pnm_err(s, kind, "maxval must be 1 to 65535");
    if (w == 0 || h == 0) return pnm_err(s, kind, "the image has no pixels");
    if (!ascii) {
        if (r.i >= n) return pnm_err(s, kind, "the file ends after its header (truncated)");
        r.i++; /* the single whitespace before the raster */
        uint64_t bps = maxv > 255 ? 2 : 1;
        uint64_t row = bitmap ? ((uint64_t)w + 7) / 8 : (uint64_t)w * sch * bps;
        if ((uint64_t)(n - r.i) / row < (uint64_t)h)
            return pnm_err(s, kind, "the raster is shorter than the header's dims (truncated)");
    } else if ((uint64_t)(n - r.i) / (uint64_t)h / (uint64_t)w / (uint64_t)sch < 1) {
        /* every ASCII sample takes at least one byte (bitmaps may omit spaces) */
        return pnm_err(s, kind, "the raster is shorter than the header's dims (truncated)");
    }
    int st = img_begin(s, h, w);
    if (st) return st;
    uint8_t px[3 * 64];
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = b + r.i;
        for (int64_t x0 = 0; x0 < w; x0 += 64) {
            int64_t cnt = w - x0 < 64 ? w - x0 : 64;
            for (int64_t k = 0; k < cnt * sch; k++) {
                int64_t x = x0 * sch + k;
                uint32_t v;
                if (ascii) {
                    if (bitmap) { /* one digit, spaces optional */
                        pnm_skip(&r);
                        if (r.i >= n || (b[r.i] != '0' && b[r.i] != '1'))
                            return pnm_err(s, kind, "a sample is missing or not 0/1");
                        v = b[r.i++] == '1';
                    } else {
                        int64_t t = pnm_num(&r);
                        if (t < 0) return pnm_err(s, kind, "a sample is missing (truncated)");
                        if (t > maxv) return pnm_err(s, kind, "a sample exceeds maxval");
                        v = (uint32_t)t;
                    }
                } else if (bitmap) {
                    v = row[x / 8] >> (7 - x % 8) & 1;
                } else if (maxv > 255) {
                    v = (uint32_t)row[2 * x] << 8 | row[2 * x + 1];
                } else {
                    v = row[x];
                }
                px[k] = bitmap ? (v ? 0 : 255) : pnm_scale(v, (uint32_t)maxv);
            }
            img_sink part = *s;
            part.w = cnt;
            part.out = img_row_ptr(s, y) + x0 * s->ch;
            img_row(&part, 0, px, sch);
        }
        if (!ascii)
            r.i += bitmap ? (size_t)((w + 7) / 8) : (size_t)w * sch * (maxv > 255 ? 2 : 1);
    }
    return ONR_OK;
}

/* ---- the op ------------------------------------------------------------- */

static int starts(const uint8_t *b, size_t n, const void *magic, size_t m)
{
    return n >= m && memcmp(b, magic, m) == 0;
}

static int imgdec_run(const onr_kctx *ctx)
{
    const imgdec_params *p = ctx->params;
    const onr_tensor *x = ctx->in[0];
    const uint8_t *b = x->data;
    size_t n = (size_t)x->numel;
    img_sink s = {ctx, p->fmt, p->fmt == IMG_GRAY ? 1 : 3, 0, 0, NULL};
    if (n == 0)
        return onr_seterr(ctx->err, ONR_E_INPUT, "the encoded stream is empty (0 bytes)");
    if (starts(b, n, "\xff\xd8\xff", 3)) return img_decode_jpeg(&s, b, n);
    if (starts(b, n, "\x89PNG\r\n\x1a\n", 8)) return img_decode_png(&s, b, n);
    if (n >= 12 && starts(b, n, "RIFF", 4) && memcmp(b + 8, "WEBP", 4) == 0)
        return img_decode_webp(&s, b, n);
    if (starts(b, n, "II*\0", 4) || starts(b, n, "MM\0*", 4) || starts(b, n, "II+\0", 4) ||
        starts(b, n, "MM\0+", 4))
        return img_decode_tiff(&s, b, n);
    if (starts(b, n, "BM", 2)) return decode_bmp(&s, b, n);
    if (n >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' &&
        (b[2] == ' ' || b[2] == '\t' || b[2] == '\n' || b[2] == '\r' || b[2] == '#'))
        return decode_pnm(&s, b, n);
    if (starts(b, n, "\0\0\0\x0cjP  \r\n\x87\n", 12) || starts(b, n, "\xff\x4f\xff\x51", 4))
        return onr_seterr(ctx->err, ONR_E_UNSUPPORTED,
                          "the stream is JPEG 2000, which this build does not decode");
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0, len = 0; i < n && i < 8; i++)
        len += (size_t)snprintf(hex + len, sizeof hex - len, "%s%02x", i ? " " : "", b[i]);
    return onr_seterr(ctx->err, ONR_E_INPUT,
                      "the %zu-byte stream is no image format ImageDecoder knows (it starts %s; "
                      "known: JPEG, PNG, WebP, TIFF, BMP, PBM/PGM/PPM)",
                      n, hex);
}

const onr_op_impl onr_impl_ImageDecoder = {.create = imgdec_create,
                                           .reshape = imgdec_reshape,
                                           .run = imgdec_run,
                                           .params_size = sizeof(imgdec_params),
                                           .types = ONR_T(ONR_UINT8),
                                           .flags = ONR_OP_DYNAMIC_OUT};
