/*
 * imagedecoder.h - what ImageDecoder (imagedecoder.c) shares with its
 * format decoders: a sink that turns decoded rows into the output image.
 *
 * A decoder reads the header, calls img_begin with the image's height and
 * width (which sizes the output [H, W, C] through the run's memory budget
 * before any pixel is decoded), then either writes rows straight into
 * img_row_ptr when it can produce the output's channel order itself, or
 * hands each decoded row to img_row (gray, RGB or RGBA, 8 bits), which
 * converts it. Temporary buffers a decoder needs come from img_tmp, which
 * counts them against the budget too. Errors go to the sink's err with
 * the format named; a decoder never prints.
 */
#ifndef ONR_IMAGEDECODER_H
#define ONR_IMAGEDECODER_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"

enum { IMG_RGB, IMG_BGR, IMG_GRAY };

typedef struct img_sink {
    const onr_kctx *ctx;
    int fmt;       /* IMG_RGB, IMG_BGR or IMG_GRAY */
    int ch;        /* output channels: 3 or 1 */
    int64_t h, w;  /* set by img_begin */
    uint8_t *out;  /* the output's data, set by img_begin */
} img_sink;

/* Size the output [h, w, ch]: an error (naming the dims) for an empty or
 * too large image, or one past the memory budget. */
int img_begin(img_sink *s, int64_t h, int64_t w);
/* Output row y (h rows of w * ch bytes). */
static inline uint8_t *img_row_ptr(const img_sink *s, int64_t y)
{
    return s->out + (size_t)y * (size_t)s->w * (size_t)s->ch;
}
/* Convert decoded row y (w pixels of src_ch 8-bit samples: 1 gray, 2 gray
 * + alpha, 3 RGB, 4 RGBA; alpha is dropped) into the output. */
void img_row(const img_sink *s, int64_t y, const uint8_t *src, int src_ch);
/* ITU-R 601-2 luma as Pillow's convert("L") computes it (the reference
 * implementation's grayscale): (R*19595 + G*38470 + B*7471 + 2^15) >> 16. */
static inline uint8_t img_luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}
/* A temporary buffer of `bytes`, counted against the run's memory budget
 * (free it with free()); NULL with the error set when refused. */
void *img_tmp(const img_sink *s, size_t bytes);
/* Count `bytes` a codec library will allocate on its own against the
 * run's budget: 0, or an error naming what needs them. */
int img_reserve(const img_sink *s, uint64_t bytes, const char *what);

/* The codecs linked in at build time (imagecodecs.c); each returns
 * ONR_E_UNSUPPORTED when its library was absent. */
int img_decode_jpeg(img_sink *s, const uint8_t *buf, size_t n);
int img_decode_png(img_sink *s, const uint8_t *buf, size_t n);
int img_decode_webp(img_sink *s, const uint8_t *buf, size_t n);
int img_decode_tiff(img_sink *s, const uint8_t *buf, size_t n);
/* Whether the codec for "JPEG", "PNG", "WebP" or "TIFF" was built in. */
int img_codec_built(const char *format);

#endif
