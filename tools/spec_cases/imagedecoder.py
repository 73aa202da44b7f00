"""Spec-derived cases for ImageDecoder (20): small images of every format
onnx-run decodes, encoded here with Pillow, and the expected pixels from
Pillow's decoders -- the reference implementation's library -- in the
layout the specification asks for:
    RGB:       Image.open(f).convert("RGB")            [H, W, 3]
    BGR:       the same with the channels reversed     [H, W, 3]
    Grayscale: Image.open(f).convert("L")[..., None]   [H, W, 1]
(the reference implementation returns np.array(img) unconverted, which for
a gray, palette or RGBA source is not [H, W, 3]; convert() is what the
specification's channel layout means). Also writes
tests/imagedecoder_images.h: a few of the encoded images with their RGB
pixels, for the unit tests' hostile variants (truncated, patched dims).
    /usr/bin/python3 tools/spec_cases/imagedecoder.py
"""
import io
import os

import numpy as np
from onnx import helper
from PIL import Image

from common import rng, write_case

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "..", "..", "tests", "imagedecoder_images.h")


def smooth_rgb(h, w, seed):
    """A smooth image with some noise: JPEG-friendly, every channel varies."""
    r = rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                    (x + y) * 255 // max(h + w - 2, 1)], axis=-1).astype(np.int32)
    img += r.integers(-20, 21, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, format=fmt, **kw)
    return b.getvalue()


def expected(data, pixel_format):
    img = Image.open(io.BytesIO(data))
    if pixel_format == "Grayscale":
        return np.asarray(img.convert("L"))[:, :, None]
    rgb = np.asarray(img.convert("RGB"))
    return rgb[:, :, ::-1].copy() if pixel_format == "BGR" else rgb


def case(name, data, formats=("RGB", "BGR", "Grayscale")):
    x = np.frombuffer(data, dtype=np.uint8).copy()
    for pf in formats:
        node = helper.make_node("ImageDecoder", ["x"], ["y"], pixel_format=pf)
        write_case("imagedecoder20_%s_%s" % (name, pf.lower()), node, [("x", x)],
                   [("y", expected(data, pf))], 20)


def main():
    rgb = Image.fromarray(smooth_rgb(13, 17, 1))
    gray = rgb.convert("L")
    images = {}
    # JPEG: 4:2:0 (the specification's fancy upsampling), 4:4:4, gray, progressive
    images["jpeg"] = encode(rgb, "JPEG", quality=90)
    case("jpeg420", images["jpeg"])
    case("jpeg444", encode(rgb, "JPEG", quality=95, subsampling=0))
    case("jpeg_gray", encode(gray, "JPEG", quality=90))
    case("jpeg_progressive", encode(rgb, "JPEG", quality=85, progressive=True))
    # PNG: RGB, RGBA (alpha dropped), palette, gray, 1-bit, 16-bit, interlaced
    images["png"] = encode(rgb, "PNG")
    case("png_rgb", images["png"])
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray((np.arange(13 * 17).reshape(13, 17) % 256).astype(np.uint8)))
    case("png_rgba", encode(rgba, "PNG"))
    case("png_palette", encode(rgb.quantize(colors=16), "PNG"))
    case("png_gray", encode(gray, "PNG"))
    case("png_1bit", encode(gray.point(lambda v: 255 if v > 128 else 0).convert("1"), "PNG"))
    rgb16 = (smooth_rgb(5, 6, 2).astype(np.uint16) * 257 + 3)
    b16 = io.BytesIO()
    # Pillow writes 16-bit RGB PNGs only through raw data: build it by hand
    import struct
    import zlib
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    b16.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 6, 5, 16, 2, 0, 0, 0)) +
              chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    case("png_rgb16", b16.getvalue())
    case("png_interlaced", interlaced_png(rgb))
    # WebP: lossless (exact) and lossy
    images["webp"] = encode(rgb, "WEBP", lossless=True)
    case("webp_lossless", images["webp"])
    case("webp_lossy", encode(rgb, "WEBP", quality=80))
    # TIFF: raw RGB, LZW gray, RGBA (its RGB as stored, not premultiplied)
    images["tiff"] = encode(rgb, "TIFF", compression="tiff_lzw")
    case("tiff_rgb", encode(rgb, "TIFF"))
    case("tiff_gray_lzw", encode(gray, "TIFF", compression="tiff_lzw"))
    case("tiff_rgba_deflate", encode(rgba, "TIFF", compression="tiff_deflate"))  # alpha unassociated
    # BMP: 24-bit, 8-bit palette, 1-bit
    images["bmp"] = encode(rgb, "BMP")
    case("bmp24", images["bmp"])
    case("bmp8", encode(rgb.quantize(colors=32), "BMP"))
    case("bmp1", encode(gray.convert("1"), "BMP"))
    # Netpbm: P6, P5, P4 (binary), P3/P2 written by hand (ASCII, maxval 100)
    images["ppm"] = encode(rgb, "PPM")
    case("ppm_p6", images["ppm"])
    case("pgm_p5", encode(gray, "PPM"))
    case("pbm_p4", encode(gray.convert("1"), "PPM"))
    small = smooth_rgb(3, 4, 3) * 100 // 255
    p3 = ("P3\n# a comment\n4 3\n100\n" +
          "\n".join(" ".join(str(v) for v in row.reshape(-1)) for row in small) + "\n").encode()
    case("ppm_p3_maxval100", p3)
    write_header(images)


def interlaced_png(img):
    """Pillow cannot write Adam7: interlace by hand (filter 0 per row)."""
    import struct
    import zlib
    a = np.asarray(img)
    h, w, _ = a.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        raw += b"".join(b"\x00" + row.tobytes() for row in sub)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_header(images):
    out = ["/* Generated by tools/spec_cases/imagedecoder.py (Pillow encodes and",
           " * decodes): small encoded images and their RGB pixels, for the",
           " * ImageDecoder unit tests' hostile variants. Do not edit. */",
           "#ifndef IMAGEDECODER_IMAGES_H", "#define IMAGEDECODER_IMAGES_H", "#include <stdint.h>"]
    for name, data in images.items():
        px = expected(data, "RGB")
        out.append("static const uint8_t img_%s[%d] = {%s};" % (
            name, len(data), ",".join(str(b) for b in data)))
        out.append("static const int64_t img_%s_h = %d, img_%s_w = %d;" % (
            name, px.shape[0], name, px.shape[1]))
        out.append("static const uint8_t img_%s_rgb[%d] = {%s};" % (
            name, px.size, ",".join(str(int(v)) for v in px.reshape(-1))))
    out.append("#endif")
    with open(HEADER, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
