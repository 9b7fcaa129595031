#!/usr/bin/env python3
"""Writes the BlendImage fixtures (dev-only; needs the venv from scripts/setup-dev-venv.sh plus Pillow).

Everything is generated from fixed formulas and a seeded NumPy generator, so a rerun writes the
same files (as long as Pillow's encoders do not change). Outputs, under
Tests/BlendImageTests/Fixtures/:

  resample/src_WxH.rgb                 source images, raw interleaved RGB bytes
  resample/lanczos_WxH_to_wxh.rgb      Pillow's Image.resize((w, h), Image.LANCZOS) of the source
  resample/nearest_WxH_to_wxh.rgb      Pillow's Image.resize((w, h), Image.NEAREST)
  png/*.png + png/*.rgb                PNGs in many colour types and bit depths, and the RGB
                                       bytes the decoder must produce (alpha dropped, like
                                       Pillow's convert("RGB"); 16-bit samples scaled to 8 bits;
                                       a gAMA chunk ignored, as Pillow ignores it)
  jpeg/orientation-N.jpg               24x16 upright quadrant image stored rotated/flipped, with an
                                       APP1 Exif orientation N (2..8), alternating TIFF byte orders
  jpeg/{rgb,grey,cmyk,progressive}.jpg + .rgb   and Pillow's decoded convert("RGB") bytes

    .venv/bin/python -m pip install Pillow   # if missing
    .venv/bin/python scripts/make-image-fixtures.py
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "BlendImageTests", "Fixtures")


def out_path(*parts):
    path = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def write_bytes(data, *parts):
    with open(out_path(*parts), "wb") as f:
        f.write(bytes(data))


def test_image(width, height, seed):
    """Smooth gradients, hard edges and noise: exercises Lanczos' negative lobes and clipping."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), dtype=np.float64)
    img[..., 0] = 255 * x / max(width - 1, 1)
    img[..., 1] = 255 * y / max(height - 1, 1)
    img[..., 2] = np.where((x // 4 + y // 3) % 2 == 0, 250, 5)
    img += rng.normal(0, 20, img.shape)
    img[height // 3: height // 3 + 3, :, :] = 255          # a white bar: ringing over 255
    img[:, width // 2: width // 2 + 2, :] = 0               # a black bar: ringing under 0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# MARK: - Resampling

def make_resample():
    sources = {(40, 30): test_image(40, 30, 1), (16, 12): test_image(16, 12, 2)}
    cases = [((40, 30), (16, 12)), ((16, 12), (40, 30)), ((40, 30), (23, 45)), ((40, 30), (40, 17)),
             ((16, 12), (7, 12))]
    for (w, h), src in sources.items():
        write_bytes(src.tobytes(), "resample", f"src_{w}x{h}.rgb")
    for (sw, sh), (dw, dh) in cases:
        im = Image.fromarray(sources[(sw, sh)], mode="RGB")
        for name, method in [("lanczos", Image.Resampling.LANCZOS), ("nearest", Image.Resampling.NEAREST)]:
            out = np.asarray(im.resize((dw, dh), method))
            assert out.shape == (dh, dw, 3)
            write_bytes(out.tobytes(), "resample", f"{name}_{sw}x{sh}_to_{dw}x{dh}.rgb")


# MARK: - PNG

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png_16(samples, color_type):
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): no gAMA, no sRGB chunk."""
    height, width = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def to_8bit(samples16):
    return np.rint(samples16.astype(np.float64) * 255 / 65535).astype(np.uint8)


def make_png():
    w, h = 8, 6
    rgb = test_image(w, h, 3)
    alpha = np.tile(np.array([0, 64, 128, 255], dtype=np.uint8), (w * h) // 4).reshape(h, w)

    def save(im, name, expected, **params):
        im.save(out_path("png", f"{name}.png"), **params)
        write_bytes(np.asarray(expected, dtype=np.uint8).tobytes(), "png", f"{name}.rgb")

    save(Image.fromarray(rgb, "RGB"), "rgb8", rgb)
    rgba = np.dstack([rgb, alpha])
    # Fully transparent pixels keep their colour in the file; dropping alpha must show it.
    save(Image.fromarray(rgba, "RGBA"), "rgba8", rgb)
    grey = rgb[..., 1]
    save(Image.fromarray(grey, "L"), "grey8", np.dstack([grey] * 3))
    save(Image.fromarray(np.dstack([grey, alpha]), "LA"), "grey-alpha8", np.dstack([grey] * 3))
    bits = (grey > 127)
    save(Image.fromarray(bits), "grey1", np.dstack([bits.astype(np.uint8) * 255] * 3))

    pal = Image.fromarray(rgb, "RGB").quantize(colors=7, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    save(pal, "palette", np.asarray(pal.convert("RGB")))
    pal_trns = pal.copy()
    pal_trns.info["transparency"] = 2
    save(pal_trns, "palette-trns", np.asarray(pal.convert("RGB")), transparency=2)

    grey16 = (np.arange(w * h, dtype=np.uint32).reshape(h, w) * 1423 + 17).astype(np.uint16)
    write_bytes(encode_png_16(grey16, 0), "png", "grey16.png")
    write_bytes(np.dstack([to_8bit(grey16)] * 3).tobytes(), "png", "grey16.rgb")

    rng = np.random.default_rng(4)
    rgb16 = rng.integers(0, 65536, size=(h, w, 3), dtype=np.uint32).astype(np.uint16)
    rgb16[0, :4] = [[0, 0, 0], [65535, 65535, 65535], [257, 514, 32896], [128, 127, 65407]]
    write_bytes(encode_png_16(rgb16, 2), "png", "rgb16.png")
    write_bytes(to_8bit(rgb16).tobytes(), "png", "rgb16.rgb")
    rgba16 = np.dstack([rgb16, (alpha.astype(np.uint16) * 257)])
    write_bytes(encode_png_16(rgba16, 6), "png", "rgba16.png")
    write_bytes(to_8bit(rgb16).tobytes(), "png", "rgba16.rgb")

    # gAMA 1.0 (linear): Pillow ignores the chunk and returns the stored samples.
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    gamma = (b"\x89PNG\r\n\x1a\n"
             + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
             + png_chunk(b"gAMA", struct.pack(">I", 100000))
             + png_chunk(b"IDAT", zlib.compress(rows, 9))
             + png_chunk(b"IEND", b""))
    write_bytes(gamma, "png", "gamma-linear.png")
    assert np.array_equal(np.asarray(Image.open(out_path("png", "gamma-linear.png")).convert("RGB")), rgb)
    write_bytes(rgb.tobytes(), "png", "gamma-linear.rgb")


# MARK: - JPEG

def exif_orientation(value, big_endian):
    """An APP1 payload: "Exif\\0\\0", a TIFF header and IFD0 with a single Orientation (0x0112) entry."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, value, 0) + struct.pack(e + "I", 0)
    return b"Exif\x00\x00" + tiff + ifd


# Pillow's ImageOps.exif_transpose: the transpose that makes a stored image upright.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Its inverse: how a camera stores an upright scene under each orientation.
STORED = {**UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def quadrant_image():
    """24x16: red top-left, green top-right, blue bottom-left, white bottom-right (8x8 blocks)."""
    img = np.zeros((16, 24, 3), dtype=np.uint8)
    img[:8, :8] = [255, 0, 0]
    img[:8, 16:] = [0, 255, 0]
    img[8:, :8] = [0, 0, 255]
    img[8:, 16:] = [255, 255, 255]
    img[:, 8:16] = [128, 128, 128]
    return Image.fromarray(img, "RGB")


def make_jpeg():
    from PIL import ImageOps
    upright = quadrant_image()
    for value in range(2, 9):
        stored = upright.transpose(STORED[value])
        path = out_path("jpeg", f"orientation-{value}.jpg")
        stored.save(path, quality=95, subsampling=0, exif=exif_orientation(value, big_endian=value % 2 == 1))
        check = ImageOps.exif_transpose(Image.open(path))
        assert check.size == upright.size, (value, check.size)
        diff = np.abs(np.asarray(check, dtype=int) - np.asarray(upright, dtype=int)).max()
        assert diff < 16, (value, diff)

    photo = Image.fromarray(test_image(20, 14, 5), "RGB")
    cases = {
        "rgb": (photo, dict(quality=90)),
        "grey": (photo.convert("L"), dict(quality=90)),
        "cmyk": (photo.convert("CMYK"), dict(quality=90)),
        "progressive": (photo, dict(quality=80, progressive=True)),
    }
    for name, (im, params) in cases.items():
        path = out_path("jpeg", f"{name}.jpg")
        im.save(path, **params)
        write_bytes(np.asarray(Image.open(path).convert("RGB")).tobytes(), "jpeg", f"{name}.rgb")


def main():
    make_resample()
    make_png()
    make_jpeg()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote fixtures to {os.path.normpath(ROOT)} ({total} bytes)")


if __name__ == "__main__":
    main()
