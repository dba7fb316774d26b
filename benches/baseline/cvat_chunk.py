#!/usr/bin/env python3
"""CVAT v2.73.0's way of building a compressed zip chunk of a video on the fly (spec media.md
§13.2 and §12.2), as the baseline for frameserver's chunk server (issue #3).

For chunk n (frames [n*cs, min((n+1)*cs, length) - 1]):
  1. the nearest manifest key frame with number <= first frame, by bisecting the manifest;
  2. PyAV: open the container, first video stream, thread_type AUTO,
     container.seek(pts, stream=stream, backward=True);
  3. decode forward (container.demux(stream) -> packet.decode()), skipping frames with
     pts < key pts; the first frame at or after it is numbered with the key frame's number;
     frames before the chunk's first frame are skipped;
  4. frame.to_image() (RGB24 through swscale), Pillow save(format="JPEG", quality=q,
     optimize=True) as CVAT's ZipCompressedChunkWriter does;
  5. zipfile, ZIP_STORED, entries "{idx:06d}.jpeg".

Timing is in-process (time.perf_counter around steps 2-5, the work a long-running CVAT chunk
worker does per chunk; interpreter start-up and imports are excluded). Each repetition is a
cold build: a new container, a seek, a fresh decoder.

Usage:
  cvat_chunk.py --manifest manifest.jsonl VIDEO --chunk N [--chunk M] [--warmup 1] [--reps 5]
                [--chunk-size 36] [--quality 70] [--out-dir DIR]
  cvat_chunk.py --manifest manifest.jsonl VIDEO --all   # every chunk, each built cold, once

Prints one tab-separated key=value line per chunk (same format as examples/chunk_floor):
  chunk n=.. first=.. last=.. decoded=.. bytes=.. first_s=.. median_s=.. min_s=.. reps=..
and with --all a final line "all chunks=.. decoded=.. total_s=..".
"""

import argparse
import bisect
import io
import json
import os
import statistics
import sys
import time
import zipfile

import av
from PIL import Image  # noqa: F401  (Pillow is what frame.to_image() returns)


def read_manifest(path):
    """(length, [(number, pts), ...]) from a CVAT video manifest."""
    keyframes = []
    length = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            if "properties" in item:
                length = item["properties"]["length"]
            elif "number" in item:
                keyframes.append((item["number"], item["pts"]))
    if length is None:
        sys.exit(f"{path}: not a video manifest")
    keyframes.sort()
    return length, keyframes


def build_chunk(video, keyframes, first, last, quality):
    """Returns (zip bytes, frames decoded)."""
    numbers = [k[0] for k in keyframes]
    i = bisect.bisect_right(numbers, first) - 1
    key_number, key_pts = keyframes[i] if i >= 0 else (0, 0)

    buf = io.BytesIO()
    decoded = 0
    with av.open(video) as container, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        container.seek(key_pts, stream=stream, backward=True)
        number = None
        done = False
        for packet in container.demux(stream):
            for frame in packet.decode():
                decoded += 1
                if number is None:
                    if frame.pts is not None and frame.pts < key_pts:
                        continue
                    number = key_number
                else:
                    number += 1
                if number < first:
                    continue
                image = frame.to_image()
                jpeg = io.BytesIO()
                image.save(jpeg, format="JPEG", quality=quality, optimize=True)
                zf.writestr(f"{number - first:06d}.jpeg", jpeg.getvalue())
                if number >= last:
                    done = True
                    break
            if done:
                break
        if not done:
            raise RuntimeError(f"the video ended before frame {last}")
    return buf.getvalue(), decoded


def chunk_frames(n, chunk_size, length):
    first = n * chunk_size
    return first, min(first + chunk_size, length) - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--chunk", type=int, action="append", default=[])
    ap.add_argument("--all", action="store_true", help="build every chunk once, cold")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=0,
                    help="unmeasured builds of each chunk first (a CVAT worker is a warm process)")
    ap.add_argument("--chunk-size", type=int, default=36)
    ap.add_argument("--quality", type=int, default=70)
    ap.add_argument("--out-dir")
    args = ap.parse_args()

    length, keyframes = read_manifest(args.manifest)
    chunks = (length + args.chunk_size - 1) // args.chunk_size
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)

    for n in args.chunk:
        if not 0 <= n < chunks:
            sys.exit(f"chunk {n}: the video has {chunks} chunks")
        first, last = chunk_frames(n, args.chunk_size, length)
        times = []
        for _ in range(args.warmup):
            build_chunk(args.video, keyframes, first, last, args.quality)
        for _ in range(max(1, args.reps)):
            t0 = time.perf_counter()
            data, decoded = build_chunk(args.video, keyframes, first, last, args.quality)
            times.append(time.perf_counter() - t0)
        if args.out_dir:
            with open(os.path.join(args.out_dir, f"chunk_{n}.zip"), "wb") as f:
                f.write(data)
        print(
            f"chunk\tn={n}\tfirst={first}\tlast={last}\tdecoded={decoded}\tbytes={len(data)}"
            f"\tfirst_s={times[0]:.6f}\tmedian_s={statistics.median(times):.6f}"
            f"\tmin_s={min(times):.6f}\treps={len(times)}",
            flush=True,
        )

    if args.all:
        total = 0.0
        decoded_all = 0
        for n in range(chunks):
            first, last = chunk_frames(n, args.chunk_size, length)
            t0 = time.perf_counter()
            _, decoded = build_chunk(args.video, keyframes, first, last, args.quality)
            total += time.perf_counter() - t0
            decoded_all += decoded
        print(f"all\tchunks={chunks}\tdecoded={decoded_all}\ttotal_s={total:.6f}", flush=True)


if __name__ == "__main__":
    main()
