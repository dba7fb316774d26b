"""Small images in every pixel layout whose checksum depends on Pillow's native mode.

Written by testdata/generate.sh into testdata/images/modes/; their golden manifest
(testdata/golden/images_modes/) is made by benches/baseline/make-goldens.sh with Pillow, so the
Rust decoder is checked against Pillow's `tobytes()` for each layout. Deterministic: fixed
patterns, no randomness, no timestamps.
"""
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image

W, H = 13, 7  # odd sizes exercise row padding of packed layouts


def pattern(x, y, k=0):
    return (x * 37 + y * 91 + k * 53) % 256


def png_chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(path, width, height, bit_depth, color_type, rows, extra=b""):
    """Writes a PNG from already packed rows (filter type 0)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = b"".join(b"\x00" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra
    data += png_chunk(b"IDAT", zlib.compress(body, 9)) + png_chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def packed_rows(bits, sample):
    rows = []
    per = 8 // bits
    for y in range(H):
        row = bytearray((W * bits + 7) // 8)
        for x in range(W):
            v = sample(x, y) & ((1 << bits) - 1)
            row[x // per] |= v << (8 - bits * (x % per + 1))
        rows.append(bytes(row))
    return rows


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # 1-bit, 2-bit and 4-bit greyscale.
    for bits in (1, 2, 4):
        raw_png(out / f"grey{bits}bit.png", W, H, bits, 0, packed_rows(bits, lambda x, y: x + 2 * y))
    # 1/2/4-bit palette with a PLTE of 2**bits colours.
    for bits in (1, 2, 4):
        n = 1 << bits
        plte = png_chunk(b"PLTE", bytes(v for i in range(n) for v in ((i * 60) % 256, (i * 110) % 256, (255 - i * 16) % 256)))
        raw_png(out / f"palette{bits}bit.png", W, H, bits, 3, packed_rows(bits, lambda x, y: x * 3 + y), plte)
    # 16-bit grey+alpha and 16-bit RGBA (Pillow keeps the high byte).
    raw_png(out / "la16.png", W, H, 16, 4,
            [b"".join(struct.pack(">HH", pattern(x, y) * 257 + x, pattern(x, y, 1) * 256 + y) for x in range(W)) for y in range(H)])
    raw_png(out / "rgba16.png", W, H, 16, 6,
            [b"".join(struct.pack(">HHHH", *(pattern(x, y, k) * 256 + k + x for k in range(4))) for x in range(W)) for y in range(H)])
    # 8-bit grey+alpha, RGB with a tRNS colour.
    Image.frombytes("LA", (W, H), bytes(pattern(x, y, k) for y in range(H) for x in range(W) for k in range(2))).save(out / "la8.png")
    rgb = Image.frombytes("RGB", (W, H), bytes(pattern(x, y, k) for y in range(H) for x in range(W) for k in range(3)))
    rgb.save(out / "rgb_trns.png", transparency=(0, 91, 182))
    # GIF (palette), WebP with alpha (lossless), TIFF grey and RGBA, JPEG variants.
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(out / "palette.gif")
    Image.frombytes("RGBA", (W, H), bytes(pattern(x, y, k) for y in range(H) for x in range(W) for k in range(4))).save(
        out / "rgba_lossless.webp", lossless=True)
    rgb.convert("L").save(out / "grey.tiff")
    rgb.convert("RGBA").save(out / "rgba.tiff")
    big = rgb.resize((W * 4, H * 4), Image.Resampling.BICUBIC)
    big.save(out / "q90_444.jpg", quality=90, subsampling=0)
    big.save(out / "q75_422.jpg", quality=75, subsampling=1)
    big.save(out / "progressive.jpg", quality=80, progressive=True)
    big.convert("CMYK").save(out / "cmyk.jpg", quality=90)


if __name__ == "__main__":
    main(sys.argv[1])
