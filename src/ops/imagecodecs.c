/*
 * imagecodecs.c - ImageDecoder's formats that go through Debian's image
 * libraries: JPEG (libjpeg-turbo), PNG (libpng), WebP (libwebp), TIFF
 * (libtiff). Each is compiled in when CMake found its library
 * (ONR_HAVE_JPEG, ...); without it the format is refused with
 * ONR_E_UNSUPPORTED naming the missing library.
 *
 * Containment: libjpeg and libpng report fatal errors by calling a handler
 * that must not return; ours format the library's message and longjmp back
 * to the decode function, which frees what the library holds (its own
 * pools; a buffer of ours is allocated before the setjmp that guards its
 * use, or is volatile) and returns the message as an error. Warnings that
 * mean the data is corrupt or truncated are errors too; nothing is printed
 * (the libraries' output handlers are replaced). libtiff gets per-file
 * error handlers (TIFFOpenOptions), so no global state is touched.
 *
 * Bombs: the output is sized through the run's budget (img_begin) before
 * decoding; what the library needs on top (progressive JPEG's coefficient
 * arrays, interlaced PNG's whole image, TIFF's RGBA raster, WebP lossless'
 * ARGB buffer) is reserved first (img_reserve / img_tmp), and libjpeg and
 * libtiff are told to allocate no more than that; a progressive JPEG
 * may have at most JPG_MAX_SCANS scans.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/imagedecoder.h"

#if !defined(ONR_HAVE_JPEG) || !defined(ONR_HAVE_PNG) || !defined(ONR_HAVE_WEBP) ||               \
    !defined(ONR_HAVE_TIFF)
static int not_built(const img_sink *s, const char *fmt, const char *lib)
{
    return onr_seterr(s->ctx->err, ONR_E_UNSUPPORTED,
                      "the stream is %s, and this build of onnx-run has no %s decoder (%s was "
                      "not found when it was built)",
                      fmt, fmt, lib);
}
#endif

int img_codec_built(const char *format)
{
#ifdef ONR_HAVE_JPEG
    if (strcmp(format, "JPEG") == 0) return 1;
#endif
#ifdef ONR_HAVE_PNG
    if (strcmp(format, "PNG") == 0) return 1;
#endif
#ifdef ONR_HAVE_WEBP
    if (strcmp(format, "WebP") == 0) return 1;
#endif
#ifdef ONR_HAVE_TIFF
    if (strcmp(format, "TIFF") == 0) return 1;
#endif
    (void)format;
    return 0;
}

/* Images are at most INT32_MAX pixels a side for every library here. */
static int dims_ok(const img_sink *s, const char *fmt, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX)
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "%s: the header declares %llu x %llu pixels",
                          fmt, (unsigned long long)w, (unsigned long long)h);
    return ONR_OK;
}

/* ---- JPEG ---------------------------------------------------------------- */
#ifdef ONR_HAVE_JPEG
#include <jerror.h>
#include <jpeglib.h>

#define JPG_MAX_SCANS 1000

typedef struct jpg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
} jpg_err;

static void jpg_exit(j_common_ptr c)
{
    jpg_err *e = (jpg_err *)c->err;
    if (!e->msg[0]) c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* level < 0: a warning, i.e. corrupt or truncated data; extraneous bytes
 * between markers (common, harmless) are let through. Traces: ignored. */
static void jpg_emit(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code != JWRN_EXTRANEOUS_DATA) {
        jpg_err *e = (jpg_err *)c->err;
        c->err->format_message(c, e->msg);
        if (c->err->msg_code == JWRN_JPEG_EOF)
            strcat(e->msg, " (the stream is truncated)");
        jpg_exit(c);
    }
}

static void jpg_silent(j_common_ptr c) { (void)c; }

static void jpg_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPG_MAX_SCANS) {
        jpg_err *e = (jpg_err *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than %d progressive scans (refused as a "
                 "decompression bomb)", JPG_MAX_SCANS);
        jpg_exit(c);
    }
}

int img_decode_jpeg(img_sink *s, const uint8_t *buf, size_t n)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr prog;
    jpg_err je;
    memset(&ci, 0, sizeof ci);
    memset(&je, 0, sizeof je);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpg_exit;
    je.pub.emit_message = jpg_emit;
    je.pub.output_message = jpg_silent;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "JPEG: %s", je.msg);
    }
    jpeg_create_decompress(&ci);
    memset(&prog, 0, sizeof prog);
    prog.progress_monitor = jpg_progress;
    ci.progress = &prog;
    jpeg_mem_src(&ci, buf, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    int st = dims_ok(s, "JPEG", ci.image_width, ci.image_height);
    if (!st && (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK))
        st = onr_seterr(s->ctx->err, ONR_E_UNSUPPORTED, "JPEG: CMYK/YCCK images are not supported");
    int src_gray = ci.num_components == 1;
    ci.out_color_space = s->fmt == IMG_GRAY ? (src_gray ? JCS_GRAYSCALE : JCS_RGB)
                       : s->fmt == IMG_BGR  ? JCS_EXT_BGR
                                            : JCS_RGB;
    int direct = ci.out_color_space != JCS_RGB || s->fmt == IMG_RGB;
    if (!st) {
        /* what libjpeg allocates besides a few rows: whole-image
         * coefficient arrays (128 bytes per 8x8 block and component) for
         * progressive or multi-scan images */
        uint64_t need = (uint64_t)ci.num_components * 64 * ((uint64_t)ci.image_width + 64);
        if (jpeg_has_multiple_scans(&ci))
            for (int c = 0; c < ci.num_components; c++)
                need += ((uint64_t)ci.comp_info[c].width_in_blocks + 1) *
                        ((uint64_t)ci.comp_info[c].height_in_blocks + 1) * 128;
        need += 4u << 20;
        st = img_reserve(s, need, "the JPEG decoder's buffers");
        ci.mem->max_memory_to_use = (long)(need > LONG_MAX ? LONG_MAX : need);
    }
    if (!st) st = img_begin(s, ci.image_height, ci.image_width);
    if (st) {
        jpeg_destroy_decompress(&ci);
        return st;
    }
    jpeg_start_decompress(&ci);
    if (ci.output_width != (JDIMENSION)s->w || ci.output_height != (JDIMENSION)s->h) {
        jpeg_destroy_decompress(&ci);
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "JPEG: the output dims disagree with the header");
    }
    JSAMPARRAY row = direct ? NULL
                            : (*ci.mem->alloc_sarray)((j_common_ptr)&ci, JPOOL_IMAGE,
                                                      ci.output_width * (JDIMENSION)ci.output_components, 1);
    while (ci.output_scanline < ci.output_height) {
        JDIMENSION y = ci.output_scanline;
        JSAMPROW r = direct ? img_row_ptr(s, y) : row[0];
        if (jpeg_read_scanlines(&ci, &r, 1) != 1) {
            jpeg_destroy_decompress(&ci);
            return onr_seterr(s->ctx->err, ONR_E_INPUT, "JPEG: row %u could not be read", y);
        }
        if (!direct) img_row(s, y, row[0], ci.output_components);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return ONR_OK;
}
#else
int img_decode_jpeg(img_sink *s, const uint8_t *buf, size_t n)
{
    (void)buf, (void)n;
    return not_built(s, "JPEG", "libjpeg");
}
#endif

/* ---- PNG ----------------------------------------------------------------- */
#ifdef ONR_HAVE_PNG
#include <png.h>

typedef struct png_src {
    const uint8_t *b;
    size_t n, off;
    char msg[256];
} png_src;

static void png_read_mem(png_structp png, png_bytep out, size_t len)
{
    png_src *src = png_get_io_ptr(png);
    if (len > src->n - src->off) png_error(png, "the stream ends early (truncated)");
    memcpy(out, src->b + src->off, len);
    src->off += len;
}

static void png_fail(png_structp png, png_const_charp msg)
{
    png_src *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

int img_decode_png(img_sink *s, const uint8_t *buf, size_t n)
{
    png_src src = {buf, n, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return onr_seterr(s->ctx->err, ONR_E_NOMEM, "PNG: out of memory");
    }
    uint8_t *volatile tmp = NULL;
    volatile int st = ONR_OK;
    if (setjmp(png_jmpbuf(png))) {
        free(tmp);
        png_destroy_read_struct(&png, &info, NULL);
        if (st) return st;
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_set_chunk_malloc_max(png, 8u << 20); /* text/ICC chunks: no zlib bombs */
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if ((st = dims_ok(s, "PNG", w, h))) png_longjmp(png, 1);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* the high byte, as Pillow's RGB;16B */
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    int src_gray = !(ct & PNG_COLOR_MASK_COLOR);
    if (src_gray && s->fmt != IMG_GRAY) png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (ch < 1 || ch > 4) {
        st = onr_seterr(s->ctx->err, ONR_E_INPUT, "PNG: %d channels after conversion", ch);
        png_longjmp(png, 1);
    }
    if (rowbytes != (size_t)w * (size_t)ch) {
        st = onr_seterr(s->ctx->err, ONR_E_INPUT, "PNG: unexpected row size %zu", rowbytes);
        png_longjmp(png, 1);
    }
    /* libpng's own buffers: a few rows, plus its zlib window */
    if ((st = img_reserve(s, 4 * (uint64_t)rowbytes + (1u << 20), "the PNG decoder's rows")))
        png_longjmp(png, 1);
    if ((st = img_begin(s, h, w))) png_longjmp(png, 1);
    /* rows go straight into the output when they already have its layout;
     * else (BGR, alpha from tRNS, gray of a color image) through tmp,
     * the whole image when interlaced */
    int direct = ch == s->ch && s->fmt != IMG_BGR;
    if (!direct) {
        size_t rows = passes > 1 ? (size_t)h : 1;
        if (!(tmp = img_tmp(s, rows * rowbytes))) {
            st = ONR_E_NOMEM;
            png_longjmp(png, 1);
        }
    }
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++) {
            uint8_t *r = direct ? img_row_ptr(s, y) : tmp + (passes > 1 ? (size_t)y * rowbytes : 0);
            png_read_row(png, r, NULL);
            if (!direct && passes == 1) img_row(s, y, r, ch);
        }
    if (!direct && passes > 1)
        for (png_uint_32 y = 0; y < h; y++) img_row(s, y, tmp + (size_t)y * rowbytes, ch);
    free(tmp);
    tmp = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    return ONR_OK;
}
#else
int img_decode_png(img_sink *s, const uint8_t *buf, size_t n)
{
    (void)buf, (void)n;
    return not_built(s, "PNG", "libpng");
}
#endif

/* ---- WebP ---------------------------------------------------------------- */
#ifdef ONR_HAVE_WEBP
#include <webp/decode.h>

int img_decode_webp(img_sink *s, const uint8_t *buf, size_t n)
{
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(buf, n, &f);
    if (vs != VP8_STATUS_OK)
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "WebP: the header is %s",
                          vs == VP8_STATUS_NOT_ENOUGH_DATA ? "truncated" : "invalid");
    if (f.has_animation)
        return onr_seterr(s->ctx->err, ONR_E_UNSUPPORTED, "WebP: animated images are not supported");
    int st = dims_ok(s, "WebP", (uint64_t)(f.width > 0 ? f.width : 0),
                     (uint64_t)(f.height > 0 ? f.height : 0));
    /* the decoder's own buffers: ARGB rows of a lossless image, a few
     * macroblock rows of a lossy one */
    uint64_t need = (uint64_t)f.width * (f.format == 2 ? (uint64_t)f.height * 4 + 64 : 16 * 8) + (1u << 20);
    if (!st) st = img_reserve(s, need, "the WebP decoder's buffers");
    if (!st) st = img_begin(s, f.height, f.width);
    if (st) return st;
    size_t stride = (size_t)f.width * 3, bytes = stride * (size_t)f.height;
    uint8_t *dst = s->fmt == IMG_GRAY ? img_tmp(s, bytes) : s->out;
    if (!dst) return ONR_E_NOMEM;
    uint8_t *ok = s->fmt == IMG_BGR ? WebPDecodeBGRInto(buf, n, dst, bytes, (int)stride)
                                    : WebPDecodeRGBInto(buf, n, dst, bytes, (int)stride);
    if (ok && s->fmt == IMG_GRAY)
        for (int64_t y = 0; y < s->h; y++) img_row(s, y, dst + (size_t)y * stride, 3);
    if (s->fmt == IMG_GRAY) free(dst);
    if (!ok)
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "WebP: the image data is corrupt or truncated");
    return ONR_OK;
}
#else
int img_decode_webp(img_sink *s, const uint8_t *buf, size_t n)
{
    (void)buf, (void)n;
    return not_built(s, "WebP", "libwebp");
}
#endif

/* ---- TIFF ---------------------------------------------------------------- */
#ifdef ONR_HAVE_TIFF
#include <tiffio.h>

typedef struct tif_src {
    const uint8_t *b;
    uint64_t n, off;
    char msg[256];
} tif_src;

static tmsize_t tif_read(thandle_t h, void *out, tmsize_t len)
{
    tif_src *t = h;
    if (len < 0) return 0;
    uint64_t k = (uint64_t)len < t->n - t->off ? (uint64_t)len : t->n - t->off;
    memcpy(out, t->b + t->off, k);
    t->off += k;
    return (tmsize_t)k;
}
static tmsize_t tif_write(thandle_t h, void *in, tmsize_t len) { (void)h, (void)in, (void)len; return 0; }
static toff_t tif_seek(thandle_t h, toff_t off, int whence)
{
    tif_src *t = h;
    uint64_t base = whence == SEEK_CUR ? t->off : whence == SEEK_END ? t->n : 0;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    t->off = base + off > t->n ? t->n : base + off;
    return t->off;
}
static int tif_close(thandle_t h) { (void)h; return 0; }
static toff_t tif_size(thandle_t h) { return ((tif_src *)h)->n; }
static int tif_map(thandle_t h, void **base, toff_t *size) { (void)h, (void)base, (void)size; return 0; }
static void tif_unmap(thandle_t h, void *base, toff_t size) { (void)h, (void)base, (void)size; }

static int tif_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    tif_src *t = user;
    if (!t->msg[0]) { /* the first error is the cause */
        int k = snprintf(t->msg, sizeof t->msg, "%s: ", module ? module : "libtiff");
        if (k > 0 && (size_t)k < sizeof t->msg) vsnprintf(t->msg + k, sizeof t->msg - (size_t)k, fmt, ap);
    }
    return 1;
}
static int tif_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1;
}

int img_decode_tiff(img_sink *s, const uint8_t *buf, size_t n)
{
    tif_src src = {buf, n, 0, ""};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return onr_seterr(s->ctx->err, ONR_E_NOMEM, "TIFF: out of memory");
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tif_error, &src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tif_warning, &src);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)64 << 20);
    TIFF *tif = TIFFClientOpenExt("stream", "rm", &src, tif_read, tif_write, tif_seek, tif_close,
                                  tif_size, tif_map, tif_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
        return onr_seterr(s->ctx->err, ONR_E_INPUT, "TIFF: %s", src.msg[0] ? src.msg : "cannot open");
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    int st = dims_ok(s, "TIFF", w, h);
    /* 8-bit RGB(A) or gray(+alpha) in strips: rows as stored, alpha
     * dropped (the RGBA interface below would premultiply unassociated
     * alpha into RGB, where Pillow keeps the stored values) */
    uint16_t bps = 0, spp = 0, photo = 0, planar = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo)) photo = 0xffff;
    if (!st && !TIFFIsTiled(tif) && bps == 8 && planar == PLANARCONFIG_CONTIG &&
        ((photo == PHOTOMETRIC_RGB && spp >= 3 && spp <= 4) ||
         (photo == PHOTOMETRIC_MINISBLACK && spp >= 1 && spp <= 2))) {
        tmsize_t line = TIFFScanlineSize(tif);
        uint8_t *row = NULL;
        if (line < (tmsize_t)w * spp) st = onr_seterr(s->ctx->err, ONR_E_INPUT, "TIFF: bad scanline size");
        if (!st) st = img_reserve(s, (uint64_t)64 << 20, "the TIFF decoder's strip buffers");
        if (!st && !(row = img_tmp(s, (size_t)line))) st = ONR_E_NOMEM;
        if (!st) st = img_begin(s, h, w);
        for (uint32_t y = 0; !st && y < h; y++) {
            if (TIFFReadScanline(tif, row, y, 0) < 0 || src.msg[0])
                st = onr_seterr(s->ctx->err, ONR_E_INPUT, "TIFF: row %u: %s", y,
                                src.msg[0] ? src.msg : "could not be read");
            else
                img_row(s, y, row, spp);
        }
        free(row);
        TIFFClose(tif);
        return st;
    }
    uint32_t *raster = NULL;
    if (!st && (uint64_t)w * h > SIZE_MAX / 4) st = onr_seterr(s->ctx->err, ONR_E_NOMEM, "TIFF: too large");
    char emsg[1024] = "";
    if (!st) { /* the RGBA raster, and libtiff's strip buffers (bounded above) */
        st = img_reserve(s, (uint64_t)64 << 20, "the TIFF decoder's strip buffers");
        if (!st && !(raster = img_tmp(s, (size_t)w * h * 4))) st = ONR_E_NOMEM;
    }
    if (!st && !TIFFRGBAImageOK(tif, emsg))
        st = onr_seterr(s->ctx->err, ONR_E_UNSUPPORTED, "TIFF: %s", emsg);
    if (!st && !TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 0))
        st = onr_seterr(s->ctx->err, ONR_E_INPUT, "TIFF: %s",
                        src.msg[0] ? src.msg : "the image data could not be read");
    if (!st && src.msg[0]) /* an error libtiff reported but read past */
        st = onr_seterr(s->ctx->err, ONR_E_INPUT, "TIFF: %s", src.msg);
    if (!st) st = img_begin(s, h, w);
    if (!st) {
        uint8_t px[4 * 64];
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x0 = 0; x0 < w; x0 += 64) {
                uint32_t cnt = w - x0 < 64 ? w - x0 : 64;
                for (uint32_t k = 0; k < cnt; k++) {
                    uint32_t v = raster[(size_t)y * w + x0 + k];
                    px[4 * k] = (uint8_t)TIFFGetR(v);
                    px[4 * k + 1] = (uint8_t)TIFFGetG(v);
                    px[4 * k + 2] = (uint8_t)TIFFGetB(v);
                    px[4 * k + 3] = (uint8_t)TIFFGetA(v);
                }
                img_sink part = *s;
                part.w = cnt;
                part.out = img_row_ptr(s, y) + (size_t)x0 * s->ch;
                img_row(&part, 0, px, 4);
            }
    }
    free(raster);
    TIFFClose(tif);
    return st;
}
#else
int img_decode_tiff(img_sink *s, const uint8_t *buf, size_t n)
{
    (void)buf, (void)n;
    return not_built(s, "TIFF", "libtiff");
}
#endif
