#!/usr/bin/env python3
"""Generate the synthetic test images under OUT/ (called by generate.sh).

    python gen_images.py OUT            # writes OUT/set, OUT/bad, OUT/lossy.webp, OUT/image_facts.json

Needs Pillow (generate.sh installs a pinned version into a throwaway venv).
All content is computed from closed-form patterns (no randomness, no fonts), so
with the same Pillow version the bytes are reproducible. Every file is re-opened
after writing and checked (mode, size, bit depth, EXIF, compression).
"""
import hashlib
import io
import json
import os
import struct
import sys
import zlib

from PIL import Image, ImageDraw, JpegImagePlugin, __version__ as PIL_VERSION

OUT = sys.argv[1] if len(sys.argv) > 1 else "images"


def path(rel):
    p = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def rgb_pattern(w, h, seed):
    """Smooth gradients plus a checker and a disc, different for every seed."""
    im = Image.new("RGB", (w, h))
    px = []
    for y in range(h):
        for x in range(w):
            r = (x * 255) // max(w - 1, 1)
            g = (y * 255) // max(h - 1, 1)
            b = ((x // 4 + y // 4 + seed) % 2) * 160 + (seed * 29) % 90
            px.append((r, (g + seed * 53) % 256, b))
    im.putdata(px)
    d = ImageDraw.Draw(im)
    cx, cy, rr = (seed * 7) % w, (seed * 5) % h, min(w, h) // 4
    d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=((seed * 71) % 256, 255 - seed % 256, 40))
    d.line([0, h - 1, w - 1, 0], fill=(255, 255, 255), width=1)
    return im


def grey_pattern(w, h, seed):
    return rgb_pattern(w, h, seed).convert("L")


FACTS = {}


def png_ihdr(p):
    with open(p, "rb") as fh:
        data = fh.read(33)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", p
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return {"png_bit_depth": depth, "png_color_type": ctype}


def record(rel, **expect):
    """Re-open a written file with Pillow, check expectations, record CVAT-relevant facts."""
    p = os.path.join(OUT, rel)
    with Image.open(p) as im:
        im.load()
        exif = im.getexif()
        orient = exif.get(274)
        w, h = im.size
        mw, mh = (h, w) if orient is not None and orient > 4 else (w, h)
        facts = {
            "pil_format": im.format,
            "pil_mode": im.mode,
            "stored_width": w,
            "stored_height": h,
            "exif_orientation": orient,
            # CVAT manifest width/height (swapped for EXIF orientation > 4, spec 5.1)
            "manifest_width": mw,
            "manifest_height": mh,
            # CVAT image checksum: md5 of PIL tobytes() in native mode (spec 4.3)
            "pixel_md5": hashlib.md5(im.tobytes()).hexdigest(),
            "size_bytes": os.path.getsize(p),
        }
        if im.format == "JPEG":
            facts["jpeg_subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0", -1: "n/a (grey)"}.get(
                JpegImagePlugin.get_sampling(im), "?")
        if im.format == "PNG":
            facts.update(png_ihdr(p))
        if im.format == "TIFF":
            facts["tiff_compression"] = im.info.get("compression")
        if im.format == "BMP":
            with open(p, "rb") as fh:
                hdr = fh.read(30)
            facts["bmp_bits_per_pixel"] = struct.unpack("<H", hdr[28:30])[0]
        if im.format == "WEBP":
            with open(p, "rb") as fh:
                hdr = fh.read(16)
            facts["webp_chunk"] = hdr[12:16].decode("ascii")
        if im.mode == "P":
            facts["palette_colors_used"] = len(im.getcolors())
    for k, v in expect.items():
        assert facts.get(k) == v, "%s: %s expected %r, got %r" % (rel, k, v, facts.get(k))
    FACTS[rel] = facts


def write_png16_rgb(p, w, h):
    """16-bit/channel RGB PNG (colour type 2, depth 16). Pillow cannot write one, so do it by hand."""
    raw = bytearray()
    for y in range(h):
        raw.append(0)  # filter type None
        for x in range(w):
            r = (x * 65535) // (w - 1)
            g = (y * 65535) // (h - 1)
            b = (x * 257 + y * 4099 + 12345) % 65536  # low byte matters: not representable in 8 bits
            raw += struct.pack(">HHH", r, g, b)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    with open(p, "wb") as fh:
        fh.write(data)


def main():
    S = "set/"
    # --- the image set --------------------------------------------------------------------------
    rgb_pattern(96, 64, 1).save(path(S + "a.jpg"), quality=90, subsampling=2)
    record(S + "a.jpg", pil_mode="RGB", jpeg_subsampling="4:2:0", stored_width=96, stored_height=64)

    rgb_pattern(64, 48, 2).save(path(S + "b9.png"))
    record(S + "b9.png", pil_mode="RGB", png_bit_depth=8, png_color_type=2)

    rgba = rgb_pattern(64, 48, 3).convert("RGBA")
    alpha = Image.new("L", (64, 48))
    alpha.putdata([(x * 4 + y * 2) % 256 for y in range(48) for x in range(64)])
    rgba.putalpha(alpha)
    rgba.save(path(S + "b10.png"))
    record(S + "b10.png", pil_mode="RGBA", png_bit_depth=8, png_color_type=6)

    grey_pattern(48, 32, 4).save(path(S + "B2.png"))
    record(S + "B2.png", pil_mode="L", png_bit_depth=8, png_color_type=0)

    pal = rgb_pattern(64, 48, 5).quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(path(S + "c_palette.png"), bits=4)
    record(S + "c_palette.png", pil_mode="P", png_color_type=3, png_bit_depth=4)
    assert FACTS[S + "c_palette.png"]["palette_colors_used"] <= 16

    w, h = 48, 32
    vals = [((x * 65535) // (w - 1) + y * 1031) % 65536 for y in range(h) for x in range(w)]
    Image.frombytes("I;16", (w, h), struct.pack("<%dH" % len(vals), *vals)).save(path(S + "d16.png"))
    record(S + "d16.png", pil_mode="I;16", png_bit_depth=16, png_color_type=0)

    write_png16_rgb(path(S + "e_rgb16.png"), 40, 30)
    record(S + "e_rgb16.png", png_bit_depth=16, png_color_type=2, stored_width=40, stored_height=30)

    rgb_pattern(41, 30, 6).save(path(S + "f.bmp"))  # 41*3 = 123 bytes/row -> row padding
    record(S + "f.bmp", pil_mode="RGB", bmp_bits_per_pixel=24, stored_width=41)

    rgb_pattern(48, 32, 7).save(path(S + "g.tiff"), compression="raw")
    record(S + "g.tiff", pil_mode="RGB", tiff_compression="raw")

    rgb_pattern(64, 48, 8).save(path(S + "h_lossless.webp"), lossless=True, method=4)
    record(S + "h_lossless.webp", pil_mode="RGB", webp_chunk="VP8L")
    with Image.open(path(S + "h_lossless.webp")) as im:
        assert im.tobytes() == rgb_pattern(64, 48, 8).tobytes(), "lossless webp is not lossless"

    exif = Image.Exif()
    exif[274] = 6
    rgb_pattern(64, 32, 9).save(path(S + "i_exif6.jpg"), quality=90, exif=exif.tobytes())
    record(S + "i_exif6.jpg", exif_orientation=6, stored_width=64, stored_height=32,
           manifest_width=32, manifest_height=64)

    grey_pattern(48, 48, 10).save(path(S + "grey.jpg"), quality=90)
    record(S + "grey.jpg", pil_mode="L")

    rgb_pattern(32, 24, 11).save(path(S + "nested/deeper/k.png"))
    record(S + "nested/deeper/k.png", pil_mode="RGB")
    rgb_pattern(32, 24, 12).save(path(S + "nested/l.jpg"), quality=90)
    record(S + "nested/l.jpg", pil_mode="RGB")

    uni = "\u00fcn\u00efcode_\u540d\u524d.png"  # "ünïcode_名前.png", NFC
    rgb_pattern(32, 24, 13).save(path(S + uni))
    record(S + uni, pil_mode="RGB")

    rgb_pattern(32, 24, 14).save(path(S + "file.with.dots.png"))
    record(S + "file.with.dots.png", pil_mode="RGB")

    # related images (spec 5.3): <dir>/related_images/<name>_<ext>/
    rgb_pattern(80, 60, 15).save(path(S + "scene1.png"))
    record(S + "scene1.png", pil_mode="RGB")
    rgb_pattern(40, 30, 16).save(path(S + "related_images/scene1_png/ctx_a.jpg"), quality=90)
    record(S + "related_images/scene1_png/ctx_a.jpg", pil_mode="RGB")
    rgb_pattern(40, 30, 17).save(path(S + "related_images/scene1_png/ctx_b.png"))
    record(S + "related_images/scene1_png/ctx_b.png", pil_mode="RGB")

    with open(path(S + "notes.txt"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write("Not an image. The manifest tool must ignore this file (no image/* MIME type).\n")

    # --- lossy webp, outside set/ ---------------------------------------------------------------
    rgb_pattern(64, 48, 18).save(path("lossy.webp"), quality=75, method=4)
    record("lossy.webp", pil_mode="RGB", webp_chunk="VP8 ")

    # --- bad images -----------------------------------------------------------------------------
    buf = io.BytesIO()
    rgb_pattern(64, 48, 19).save(buf, format="PNG", compress_level=0)  # stored deflate: big IDAT
    data = buf.getvalue()
    i = data.index(b"IDAT") - 4
    idat_len = struct.unpack(">I", data[i:i + 4])[0]
    cut = i + 8 + idat_len // 2
    with open(path("bad/broken.png"), "wb") as fh:
        fh.write(data[:cut])
    try:
        with Image.open(path("bad/broken.png")) as im:
            im.load()
        raise AssertionError("bad/broken.png decoded without error")
    except (OSError, SyntaxError):
        pass  # expected: "image file is truncated"
    with open(path("bad/fake.jpg"), "w", encoding="ascii", newline="\n") as fh:
        fh.write("This is plain text with a .jpg name; it is not a JPEG.\n")
    try:
        Image.open(path("bad/fake.jpg"))
        raise AssertionError("bad/fake.jpg opened")
    except OSError:
        pass  # expected: "cannot identify image file"

    with open(os.path.join(OUT, "image_facts.json"), "w", encoding="utf-8") as fh:
        json.dump({"_note": "Generated by testdata/generate.sh (gen_images.py) with Pillow %s. "
                            "pixel_md5 = md5(PIL.Image.open(f).tobytes()), CVAT's image checksum "
                            "(spec 4.3); JPEG/WebP pixel values depend on the decoder library."
                            % PIL_VERSION,
                   "pillow_version": PIL_VERSION,
                   "images": FACTS}, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    for rel, f in sorted(FACTS.items()):
        print("%-40s %-5s %-5s %3dx%-3d manifest %3dx%-3d md5 %s" % (
            rel, f["pil_format"], f["pil_mode"], f["stored_width"], f["stored_height"],
            f["manifest_width"], f["manifest_height"], f["pixel_md5"]))


if __name__ == "__main__":
    main()
