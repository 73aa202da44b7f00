/*
 * test_ops_imagedecoder.c - ImageDecoder (20): decoded pixels against
 * Pillow's (tests/imagedecoder_images.h, from tools/spec_cases/
 * imagedecoder.py; the spec cases cover every format and pixel format),
 * the grayscale formula, BMP and PBM/PGM/PPM built here byte by byte, and
 * hostile streams: empty, unknown, truncated, corrupt, dims that pass the
 * memory budget (refused before any allocation, naming the bytes), random
 * mutations (an error or an image, never a crash: ASan in tools/test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagedecoder_images.h"
#include "kutil.h"
#include "ops/imagedecoder.h"
#include "pbw.h"

static onr_tensor *bytes_tensor(const uint8_t *b, size_t n)
{
    int64_t d = (int64_t)n;
    return tk_typed(ONR_UINT8, 1, &d, b);
}

/* Decode with pixel_format pf (NULL: default); NULL result on error, with
 * the message in err. */
static onr_tensor *decode(const uint8_t *b, size_t n, const char *pf, onr_err *err)
{
    onr_node *node = tk_node("ImageDecoder");
    if (pf) tk_attr_string(node, "pixel_format", pf);
    onr_tensor *in[1] = {bytes_tensor(b, n)}, *out[1] = {NULL};
    onr_err e = {0};
    onr_status st = tk_run(node, 20, 1, in, 1, out, 1, &e);
    tk_free_all(1, in);
    tk_node_free(node);
    if (err) *err = e;
    if (st) {
        tk_free_all(1, out);
        return NULL;
    }
    return out[0];
}

static void expect_error(const uint8_t *b, size_t n, onr_status code, const char *needle)
{
    onr_node *node = tk_node("ImageDecoder");
    onr_tensor *in[1] = {bytes_tensor(b, n)};
    tk_expect_fail(node, 20, 1, in, 1, code, needle);
    tk_free_all(1, in);
    tk_node_free(node);
}

/* rgb [h*w*3] in pixel_format pf's layout. */
static void expect_pixels(const onr_tensor *y, const uint8_t *rgb, int64_t h, int64_t w,
                          const char *pf)
{
    int ch = pf && strcmp(pf, "Grayscale") == 0 ? 1 : 3;
    tk_assert_shape(y, 3, (const int64_t[]){h, w, ch});
    assert_int_equal(y->dtype, ONR_UINT8);
    const uint8_t *p = y->data;
    for (int64_t i = 0; i < h * w; i++) {
        const uint8_t *c = rgb + 3 * i;
        if (ch == 1) {
            if (p[i] != img_luma(c[0], c[1], c[2]))
                fail_msg("pixel %lld: gray %d, want %d", (long long)i, p[i],
                         img_luma(c[0], c[1], c[2]));
        } else {
            int bgr = pf && strcmp(pf, "BGR") == 0;
            for (int k = 0; k < 3; k++)
                if (p[3 * i + k] != c[bgr ? 2 - k : k])
                    fail_msg("pixel %lld channel %d: %d, want %d", (long long)i, k, p[3 * i + k],
                             c[bgr ? 2 - k : k]);
        }
    }
}

static void check_image(const uint8_t *b, size_t n, const uint8_t *rgb, int64_t h, int64_t w,
                        const char *fmt)
{
    if (!img_codec_built(fmt) && strcmp(fmt, "BMP") != 0 && strcmp(fmt, "PPM") != 0) {
        expect_error(b, n, ONR_E_UNSUPPORTED, "this build of onnx-run has no");
        return;
    }
    static const char *const pfs[] = {NULL, "RGB", "BGR", "Grayscale"};
    for (int k = 0; k < 4; k++) {
        onr_err e;
        onr_tensor *y = decode(b, n, pfs[k], &e);
        if (!y) fail_msg("%s (%s): %s", fmt, pfs[k] ? pfs[k] : "default", e.msg);
        expect_pixels(y, rgb, h, w, pfs[k]);
        onr_tensor_free(y);
    }
}

static void test_formats_match_pillow(void **state)
{
    (void)state;
    /* JPEG Grayscale: the luma of the decoded RGB (Pillow's convert("L")) */
    check_image(img_jpeg, sizeof img_jpeg, img_jpeg_rgb, img_jpeg_h, img_jpeg_w, "JPEG");
    check_image(img_png, sizeof img_png, img_png_rgb, img_png_h, img_png_w, "PNG");
    check_image(img_bmp, sizeof img_bmp, img_bmp_rgb, img_bmp_h, img_bmp_w, "BMP");
    check_image(img_ppm, sizeof img_ppm, img_ppm_rgb, img_ppm_h, img_ppm_w, "PPM");
    check_image(img_webp, sizeof img_webp, img_webp_rgb, img_webp_h, img_webp_w, "WebP");
    check_image(img_tiff, sizeof img_tiff, img_tiff_rgb, img_tiff_h, img_tiff_w, "TIFF");
}

/* The grayscale formula on known colors: ITU-R 601-2 luma, rounded. */
static void test_grayscale_formula(void **state)
{
    (void)state;
    static const uint8_t ppm[] = "P6 5 1 255\n"
                                 "\xff\x00\x00"
                                 "\x00\xff\x00"
                                 "\x00\x00\xff"
                                 "\x0a\x14\x1e"
                                 "\xff\xff\xff";
    onr_err e;
    onr_tensor *y = decode(ppm, sizeof ppm - 1, "Grayscale", &e);
    if (!y) fail_msg("%s", e.msg);
    tk_assert_shape(y, 3, (const int64_t[]){1, 5, 1});
    const uint8_t *p = y->data;
    /* 0.299 R + 0.587 G + 0.114 B: 76.245, 149.685, 29.07, 18.15, 255 (Pillow: the same) */
    assert_int_equal(p[0], 76);
    assert_int_equal(p[1], 150);
    assert_int_equal(p[2], 29);
    assert_int_equal(p[3], 18);
    assert_int_equal(p[4], 255);
    onr_tensor_free(y);
    /* a gray source keeps its values in all three RGB channels */
    static const uint8_t pgm[] = "P5 2 1 255\n\x07\xc8";
    y = decode(pgm, sizeof pgm - 1, "BGR", &e);
    if (!y) fail_msg("%s", e.msg);
    const uint8_t want[6] = {7, 7, 7, 200, 200, 200};
    assert_memory_equal(y->data, want, 6);
    onr_tensor_free(y);
}

/* ---- BMP / Netpbm built here ------------------------------------------- */

static size_t put_le(uint8_t *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    return (size_t)n;
}

/* A 40-byte-header BMP of w x h at bpp with the given palette and rows
 * (bottom-up unless top_down); returns its size. */
static size_t make_bmp(uint8_t *b, int w, int h, int bpp, int comp, const uint8_t *pal, int npal,
                       const uint8_t *rows, size_t rows_bytes, int top_down)
{
    size_t off = 14 + 40 + (size_t)npal * 4;
    memset(b, 0, off);
    b[0] = 'B', b[1] = 'M';
    put_le(b + 2, off + rows_bytes, 4);
    put_le(b + 10, off, 4);
    put_le(b + 14, 40, 4);
    put_le(b + 18, (uint32_t)w, 4);
    put_le(b + 22, (uint32_t)(top_down ? -h : h), 4);
    put_le(b + 26, 1, 2);
    put_le(b + 28, (uint64_t)bpp, 2);
    put_le(b + 30, (uint64_t)comp, 4);
    put_le(b + 46, (uint64_t)npal, 4);
    if (npal) memcpy(b + 54, pal, (size_t)npal * 4);
    memcpy(b + off, rows, rows_bytes);
    return off + rows_bytes;
}

static void test_bmp_variants(void **state)
{
    (void)state;
    uint8_t b[512];
    onr_err e;
    /* 24-bit, 2x2 bottom-up: rows padded to 8 bytes; BGR order */
    const uint8_t rows24[] = {1, 2, 3, 4, 5, 6, 0, 0, /* bottom row */
                              7, 8, 9, 10, 11, 12, 0, 0};
    size_t n = make_bmp(b, 2, 2, 24, 0, NULL, 0, rows24, sizeof rows24, 0);
    onr_tensor *y = decode(b, n, NULL, &e);
    if (!y) fail_msg("%s", e.msg);
    const uint8_t want24[] = {9, 8, 7, 12, 11, 10, 3, 2, 1, 6, 5, 4};
    assert_memory_equal(y->data, want24, sizeof want24);
    onr_tensor_free(y);
    /* the same top-down */
    n = make_bmp(b, 2, 2, 24, 0, NULL, 0, rows24, sizeof rows24, 1);
    y = decode(b, n, NULL, &e);
    const uint8_t want24t[] = {3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10};
    assert_memory_equal(y->data, want24t, sizeof want24t);
    onr_tensor_free(y);
    /* 4-bit palette, 3x1: indices 1, 2, 15 (past the 3-entry palette: black) */
    const uint8_t pal[] = {0, 0, 0, 0, 30, 20, 10, 0, 3, 2, 1, 0};
    const uint8_t rows4[] = {0x12, 0xf0, 0, 0};
    n = make_bmp(b, 3, 1, 4, 0, pal, 3, rows4, sizeof rows4, 0);
    y = decode(b, n, "RGB", &e);
    if (!y) fail_msg("%s", e.msg);
    const uint8_t want4[] = {10, 20, 30, 1, 2, 3, 0, 0, 0};
    assert_memory_equal(y->data, want4, sizeof want4);
    onr_tensor_free(y);
    /* 16-bit 5-5-5: white-ish 0x7fff and pure red 0x7c00 */
    const uint8_t rows16[] = {0xff, 0x7f, 0x00, 0x7c};
    n = make_bmp(b, 2, 1, 16, 0, NULL, 0, rows16, sizeof rows16, 0);
    y = decode(b, n, "RGB", &e);
    if (!y) fail_msg("%s", e.msg);
    const uint8_t want16[] = {255, 255, 255, 255, 0, 0};
    assert_memory_equal(y->data, want16, sizeof want16);
    onr_tensor_free(y);
    /* RLE: refused as unsupported; rows shorter than the dims: truncated */
    n = make_bmp(b, 2, 2, 8, 1, pal, 3, rows24, sizeof rows24, 0);
    expect_error(b, n, ONR_E_UNSUPPORTED, "RLE");
    n = make_bmp(b, 2, 2, 24, 0, NULL, 0, rows24, 12, 0);
    expect_error(b, n, ONR_E_INPUT, "truncated");
    /* dims of 2^31-1 with 16 bytes of pixels: truncated, nothing allocated */
    n = make_bmp(b, 0x7fffffff, 0x7fff, 24, 0, NULL, 0, rows24, sizeof rows24, 0);
    expect_error(b, n, ONR_E_INPUT, "truncated");
    expect_error(b, 20, ONR_E_INPUT, "BMP");
}

static void test_netpbm_variants(void **state)
{
    (void)state;
    onr_err e;
    /* P1 ASCII bitmap (1 = black), digits without spaces */
    static const char p1[] = "P1\n# c\n3 2\n101\n0 1 0\n";
    onr_tensor *y = decode((const uint8_t *)p1, sizeof p1 - 1, "Grayscale", &e);
    if (!y) fail_msg("%s", e.msg);
    const uint8_t want1[] = {0, 255, 0, 255, 0, 255};
    assert_memory_equal(y->data, want1, 6);
    onr_tensor_free(y);
    /* P2 with maxval 2: 0, 1, 2 -> 0, 128 (127.5 to even), 255 */
    static const char p2[] = "P2 3 1 2\n0 1 2\n";
    y = decode((const uint8_t *)p2, sizeof p2 - 1, "Grayscale", &e);
    if (!y) fail_msg("%s", e.msg);
    const uint8_t want2[] = {0, 128, 255};
    assert_memory_equal(y->data, want2, 3);
    onr_tensor_free(y);
    /* P5 16-bit: 0x0100 of 0x01ff */
    static const uint8_t p5[] = "P5 1 1 511\n\x01\x00";
    y = decode(p5, sizeof p5 - 1, "Grayscale", &e);
    if (!y) fail_msg("%s", e.msg);
    assert_int_equal(((uint8_t *)y->data)[0], 128); /* 256*255/511 = 127.75 */
    onr_tensor_free(y);
    /* hostile headers */
    static const char bad1[] = "P6 2 2 255\n\x01\x02";
    expect_error((const uint8_t *)bad1, sizeof bad1 - 1, ONR_E_INPUT, "truncated");
    static const char bad2[] = "P6 99999999999 2 255\n";
    expect_error((const uint8_t *)bad2, sizeof bad2 - 1, ONR_E_INPUT, "malformed");
    static const char bad3[] = "P5 2 2 70000\n";
    expect_error((const uint8_t *)bad3, sizeof bad3 - 1, ONR_E_INPUT, "maxval");
    static const char bad4[] = "P2 2 1 9\n3 12\n";
    expect_error((const uint8_t *)bad4, sizeof bad4 - 1, ONR_E_INPUT, "exceeds maxval");
    static const char bad5[] = "P3 2 1 255\n1 2 3 4";
    expect_error((const uint8_t *)bad5, sizeof bad5 - 1, ONR_E_INPUT, "P3");
    static const char bad6[] = "P6 0 5 255\n";
    expect_error((const uint8_t *)bad6, sizeof bad6 - 1, ONR_E_INPUT, "no pixels");
}

/* ---- hostile streams ------------------------------------------------------ */

static void test_bad_streams(void **state)
{
    (void)state;
    expect_error((const uint8_t *)"", 0, ONR_E_INPUT, "empty");
    static const uint8_t junk[] = {'G', 'I', 'F', '8', '9', 'a', 0, 1};
    expect_error(junk, sizeof junk, ONR_E_INPUT, "no image format ImageDecoder knows");
    static const uint8_t jp2[] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', '\r', '\n', 0x87, '\n', 0};
    expect_error(jp2, sizeof jp2, ONR_E_UNSUPPORTED, "JPEG 2000");
    if (img_codec_built("JPEG")) {
        /* cut anywhere: an error naming JPEG, never a crash */
        expect_error(img_jpeg, sizeof img_jpeg / 2, ONR_E_INPUT, "truncated");
        expect_error(img_jpeg, 3, ONR_E_INPUT, "JPEG");
        expect_error(img_jpeg, 100, ONR_E_INPUT, "JPEG");
    }
    if (img_codec_built("PNG")) {
        expect_error(img_png, sizeof img_png / 2, ONR_E_INPUT, "PNG");
        expect_error(img_png, 8, ONR_E_INPUT, "PNG");
        expect_error(img_png, 30, ONR_E_INPUT, "truncated");
    }
    if (img_codec_built("WebP")) {
        expect_error(img_webp, 20, ONR_E_INPUT, "WebP");
        expect_error(img_webp, sizeof img_webp - 10, ONR_E_INPUT, "WebP");
    }
    if (img_codec_built("TIFF")) {
        expect_error(img_tiff, 8, ONR_E_INPUT, "TIFF");
        expect_error(img_tiff, sizeof img_tiff / 2, ONR_E_INPUT, "TIFF");
    }
}

static void test_bad_attributes_and_inputs(void **state)
{
    (void)state;
    onr_node *node = tk_node("ImageDecoder");
    tk_attr_string(node, "pixel_format", "RGBA");
    onr_tensor *in[1] = {bytes_tensor(img_ppm, sizeof img_ppm)};
    tk_expect_fail(node, 20, 1, in, 1, ONR_E_MODEL, "pixel_format");
    tk_node_free(node);
    node = tk_node("ImageDecoder");
    tk_attr_int(node, "pixel_format", 3);
    tk_expect_fail(node, 20, 1, in, 1, ONR_E_MODEL, "pixel_format");
    tk_node_free(node);
    tk_free_all(1, in);
    node = tk_node("ImageDecoder");
    int64_t d2[2] = {2, (int64_t)sizeof img_ppm / 2};
    in[0] = tk_typed(ONR_UINT8, 2, d2, img_ppm);
    tk_expect_fail(node, 20, 1, in, 1, ONR_E_INPUT, "1-D");
    tk_free_all(1, in);
    float f[4] = {0};
    in[0] = tk_f32(1, (const int64_t[]){4}, f);
    tk_expect_fail(node, 20, 1, in, 1, ONR_E_UNSUPPORTED, "unsupported type");
    tk_free_all(1, in);
    tk_node_free(node);
    /* opset 19 and 27 have no ImageDecoder */
    assert_null(onr_op_find("", "ImageDecoder", 19));
    assert_non_null(onr_op_find("", "ImageDecoder", 26));
}

/* ---- the memory budget ------------------------------------------------------ */

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

/* A one-node model: x (uint8 [N]) -ImageDecoder-> y, opened under `limit`. */
static onr_session *decoder_session(int64_t limit)
{
    pbw g = {0};
    int64_t dn[] = {-1}, dy[] = {-1, -1, 3};
    pbw_node(&g, "ImageDecoder", "dec", (const char *[]){"x", NULL}, (const char *[]){"y", NULL},
             NULL);
    pbw_value_info(&g, 11, "x", ONR_UINT8, 1, dn);
    pbw_value_info(&g, 12, "y", ONR_UINT8, 3, dy);
    pbw m = pbw_model(&g, 9, 20);
    onr_options *o = onr_options_new();
    onr_options_set_memory_limit(o, limit);
    onr_options_set_threads(o, 1);
    onr_session *s = NULL;
    assert_int_equal(onr_session_open_memory(m.b, m.n, o, &s), ONR_OK);
    onr_options_free(o);
    free(m.b);
    return s;
}

static onr_status session_decode(onr_session *s, const uint8_t *b, size_t n)
{
    int64_t d = (int64_t)n;
    onr_tensor *t = onr_tensor_wrap(ONR_UINT8, 1, &d, (void *)b);
    const onr_tensor *in[1] = {t};
    onr_status st = onr_session_run(s, 1, NULL, in);
    onr_tensor_free(t);
    return st;
}

static void test_dims_past_the_budget(void **state)
{
    (void)state;
    const int64_t limit = 64ll << 20;
    onr_session *s = decoder_session(limit);
    /* the real image decodes */
    assert_int_equal(session_decode(s, img_ppm, sizeof img_ppm), ONR_OK);
    /* a PPM declaring 8000 x 8000 (192 MB) with its raster "present"
     * would pass the budget: it is cut short, so refused as truncated
     * first; a BMP too. The codecs size the output from the header: */
    if (img_codec_built("PNG")) {
        /* PNG IHDR patched to 6000 x 6000 RGB (108 MB), CRC fixed */
        uint8_t *p = malloc(sizeof img_png);
        memcpy(p, img_png, sizeof img_png);
        put_be32(p + 16, 6000);
        put_be32(p + 20, 6000);
        put_be32(p + 29, crc32_png(p + 12, 17));
        assert_int_equal(session_decode(s, p, sizeof img_png), ONR_E_NOMEM);
        const char *msg = onr_session_errmsg(s);
        if (!strstr(msg, "memory budget is 64.0 MiB") || !strstr(msg, "ImageDecoder"))
            fail_msg("%s", msg);
        free(p);
    }
    if (img_codec_built("JPEG")) {
        /* JPEG SOF patched to 60000 x 60000 (10 GB) */
        uint8_t *p = malloc(sizeof img_jpeg);
        memcpy(p, img_jpeg, sizeof img_jpeg);
        size_t i = 2;
        while (i + 9 < sizeof img_jpeg && !(p[i] == 0xff && (p[i + 1] == 0xc0 || p[i + 1] == 0xc2)))
            i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
        assert_true(i + 9 < sizeof img_jpeg);
        p[i + 5] = 60000 >> 8, p[i + 6] = 60000 & 255, p[i + 7] = 60000 >> 8, p[i + 8] = 60000 & 255;
        onr_status st = session_decode(s, p, sizeof img_jpeg);
        assert_int_equal(st, ONR_E_NOMEM);
        const char *msg = onr_session_errmsg(s);
        if (!strstr(msg, "memory budget") && !strstr(msg, "limit")) fail_msg("%s", msg);
        free(p);
    }
    /* the session still decodes what fits */
    assert_int_equal(session_decode(s, img_ppm, sizeof img_ppm), ONR_OK);
    const onr_tensor *y = onr_session_output(s, 0);
    assert_non_null(y);
    assert_memory_equal(y->data, img_ppm_rgb, sizeof img_ppm_rgb);
    onr_session_free(s);
}

/* Random byte mutations of every image: an image or an error, never a
 * crash or a read past the stream (the tensor is exactly its bytes).
 * ONR_IMGDEC_MUTATIONS=N runs N per image instead of 150 (a longer soak
 * under ASan). */
static void test_mutations(void **state)
{
    (void)state;
    const struct {
        const uint8_t *b;
        size_t n;
    } imgs[] = {{img_jpeg, sizeof img_jpeg}, {img_png, sizeof img_png},
                {img_bmp, sizeof img_bmp},   {img_ppm, sizeof img_ppm},
                {img_webp, sizeof img_webp}, {img_tiff, sizeof img_tiff}};
    uint32_t seed = 12345;
    onr_session *s = decoder_session(64ll << 20);
    int ok = 0, failed = 0, iters = 150;
    const char *env = getenv("ONR_IMGDEC_MUTATIONS");
    if (env && atoi(env) > 0) iters = atoi(env);
    for (size_t k = 0; k < sizeof imgs / sizeof imgs[0]; k++) {
        uint8_t *p = malloc(imgs[k].n);
        for (int it = 0; it < iters; it++) {
            memcpy(p, imgs[k].b, imgs[k].n);
            int flips = 1 + it % 4;
            for (int f = 0; f < flips; f++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % imgs[k].n;
                /* keep the magic so the format's decoder is reached */
                if (at < 4) at = 4 + at;
                seed = seed * 1103515245u + 12345u;
                p[at % imgs[k].n] = (uint8_t)(seed >> 16);
            }
            seed = seed * 1103515245u + 12345u;
            size_t len = it % 3 == 0 ? (seed >> 8) % imgs[k].n + 1 : imgs[k].n;
            onr_status st = session_decode(s, p, len);
            if (st == ONR_OK) ok++;
            else {
                failed++;
                assert_true(onr_session_errmsg(s)[0] != 0);
            }
        }
        free(p);
    }
    onr_session_free(s);
    print_message("%d mutated streams decoded, %d refused with an error\n", ok, failed);
    assert_int_equal(ok + failed, 6 * iters);
    assert_true(failed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_match_pillow),
        cmocka_unit_test(test_grayscale_formula),
        cmocka_unit_test(test_bmp_variants),
        cmocka_unit_test(test_netpbm_variants),
        cmocka_unit_test(test_bad_streams),
        cmocka_unit_test(test_bad_attributes_and_inputs),
        cmocka_unit_test(test_dims_past_the_budget),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
