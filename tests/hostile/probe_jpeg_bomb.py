"""JPEG decompression bomb (issue 18, item 1): a 3.5 MB baseline JPEG declaring 30000x30000
pixels (one grey colour, 2 bits per 8x8 block), and a PNG declaring the same, are refused at
task creation from their headers, with the file name and the dimensions in the message; nothing
of the upload is kept and the server's peak RSS stays small. Then an image accepted at creation
is refused at every later decode (chunk, frame, preview) once `--max-image-pixels` is lowered.
"""

import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # noqa: E401,E702
import shutil
import struct
import tempfile
import zlib

from hostile import Server, check, mib


def grey_jpeg(width, height):
    """A valid baseline greyscale JPEG of one colour: Huffman tables with a single 1-bit code
    (DC difference 0, end of block), so each 8x8 block takes 2 bits."""
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + bytes([1, 0x11, 0])
    one_code = bytes([1] + [0] * 15) + b"\x00"
    blocks = -(-width // 8) * -(-height // 8)
    return b"".join([
        b"\xff\xd8",
        b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64),
        b"\xff\xc0" + sof,
        b"\xff\xc4" + struct.pack(">H", 20) + b"\x00" + one_code,
        b"\xff\xc4" + struct.pack(">H", 20) + b"\x10" + one_code,
        b"\xff\xda" + struct.pack(">HB", 8, 1) + bytes([1, 0x00, 0, 63, 0]),
        b"\x00" * -(-2 * blocks // 8),
        b"\xff\xd9",
    ])


def png_header_bomb(width, height):
    """A PNG whose IHDR declares `width` x `height` RGB pixels (the data is a few bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def leftovers(data_dir):
    """Files kept under the data dir's media and uploads directories."""
    out = []
    for sub in ("media", "uploads"):
        for root, _, files in os.walk(os.path.join(data_dir, sub)):
            out += [os.path.join(root, f) for f in files]
    return out


def run():
    bomb = grey_jpeg(30000, 30000)
    check(len(bomb) < 4 << 20, f"the bomb is small on disk: {len(bomb)} bytes")
    data = tempfile.mkdtemp(prefix="fs-jpeg-bomb-")
    try:
        with Server(data_dir=data) as s:
            s.use_token()
            base = s.peak_rss()
            for name, payload in [("photo.jpg", bomb), ("pic.png", png_header_bomb(30000, 30000))]:
                task = s.create_task(name)
                out = s.wait(s.upload(task, [(name, payload)]))
                msg = out["message"]
                check(out["status"] == "failed", f"{name}: creation must fail: {out}")
                check(name in msg and "30000x30000" in msg and "--max-image-pixels" in msg,
                      f"{name}: the message names the file, the size and the flag: {msg!r}")
                check(data not in msg, f"no server path in the message: {msg!r}")
                meta = s.get(f"/api/tasks/{task}/data/meta")
                check(meta.status == 400, f"{name}: the task has no data: {meta}")
                check(leftovers(data) == [], f"{name}: nothing kept: {leftovers(data)}")
            peak = s.peak_rss()
            print(f"measured: message {msg!r}")
            print(f"measured: creation with 30000x30000 JPEG and PNG: peak RSS {mib(peak)} "
                  f"(idle {mib(base)}; main: 1786 MiB, and the task was created)")
            check(peak < base + (64 << 20), f"peak RSS {mib(peak)} stays near idle {mib(base)}")

            # An image within the default limit is accepted...
            task = s.create_task("big")
            out = s.wait(s.upload(task, [("big.jpg", grey_jpeg(4000, 4000))]))
            check(out["status"] == "finished", f"a 16 MP image is accepted by default: {out}")
        # ... and refused at every later decode once the limit is lowered.
        with Server("--max-image-pixels", 10_000_000, data_dir=data) as s:
            s.use_token()
            # (Original chunks and frames serve the file's bytes as they are: no decode.)
            for what in ("data?type=chunk&number=0&quality=compressed",
                         "data?type=frame&number=0&quality=compressed",
                         "preview"):
                r = s.get(f"/api/tasks/{task}/{what}")
                detail = r.json().get("detail", "") if r.status != 200 else ""
                check(r.status == 413 and "big.jpg" in detail and "4000x4000" in detail,
                      f"{what}: refused with the name and the size: {r}")
            print(f"measured: later decode over --max-image-pixels: 413 {detail!r}; "
                  f"peak RSS {mib(s.peak_rss())}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    run()
