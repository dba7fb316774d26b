#!/usr/bin/env bash
# COCO import memory (issue: a 200 MB COCO JSON must import holding no more than ~3x its size).
#
# Usage (from anywhere; paths are relative to the repository root):
#   benches/coco-import-memory.sh [--mb N] [--frames N] [--no-build]
#
# Generates target/bench-media/coco-memory/instances_default.json, a COCO 1.0 instances file of
# about N MB (default 200): --frames images (default 2000, 64x48 PNGs under one name pattern),
# categories car/person, and per annotation a 12-point polygon (2-decimal coordinates), a box,
# `iscrowd` and an `attributes` object, numbered in image order. Then starts `frameserver
# serve` (FRAMESERVER_BIN, default target/release/frameserver) on a fresh data dir, creates a
# matching task (same labels, same frame names and sizes), resets the server's peak RSS
# (VmHWM, `echo 5 > /proc/PID/clear_refs`), imports the bare JSON as "COCO 1.0", and reports:
#   file MB, RSS before, peak RSS during the import, (peak - before) / file size, seconds,
#   shapes stored.
# Target: (peak - before) <= 3x the file size.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

mb=200
frames=2000
build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mb) mb="$2"; shift 2 ;;
        --frames) frames="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "coco-import-memory: unknown argument $1" >&2; exit 2 ;;
    esac
done

py="$(bash "$repo/tests/formats/setup-datumaro-venv.sh" | tail -n 1)"
bin="${FRAMESERVER_BIN:-$repo/target/release/frameserver}"
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
if [[ ! -x "$bin" && "$build" == 1 ]]; then
    cargo build --release --bin frameserver
fi
export FRAMESERVER_BIN="$bin"

MB="$mb" FRAMES="$frames" "$py" - <<'EOF'
import json, os, random, sys, time
from pathlib import Path

repo = Path.cwd()
sys.path.insert(0, str(repo / "tests" / "formats"))
import fsdriver as fd

target_mb, n_frames = int(os.environ["MB"]), int(os.environ["FRAMES"])
work = repo / "target" / "bench-media" / "coco-memory"
media = work / "frames"
media.mkdir(parents=True, exist_ok=True)
W, H = 64, 48
names = [f"f{i:05d}.png" for i in range(n_frames)]
png = fd.png_bytes(W, H)
for n in names:
    p = media / n
    if not p.exists():
        p.write_bytes(png)

path = work / "instances_default.json"
rnd = random.Random(7)
target = target_mb * 1_000_000
if not path.exists() or abs(path.stat().st_size - target) > target // 20:
    t0 = time.perf_counter()
    with open(path, "w") as f:
        f.write('{"licenses":[{"name":"","id":0,"url":""}],"info":{},"categories":'
                '[{"id":1,"name":"car","supercategory":""},{"id":2,"name":"person","supercategory":""}],'
                '"images":[')
        f.write(",".join(json.dumps({"id": i + 1, "width": W, "height": H, "file_name": n})
                         for i, n in enumerate(names)))
        f.write('],"annotations":[')
        written, ann_id = f.tell(), 0
        while written < target:
            ann_id += 1
            pts = [round(rnd.uniform(0, W - 1), 2) if k % 2 == 0 else round(rnd.uniform(0, H - 1), 2)
                   for k in range(24)]
            xs, ys = pts[0::2], pts[1::2]
            a = {"id": ann_id, "image_id": (ann_id - 1) % n_frames + 1, "category_id": 1 + ann_id % 2,
                 "segmentation": [pts], "area": 100.0,
                 "bbox": [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)],
                 "iscrowd": 0, "attributes": {"occluded": False}}
            s = ("," if ann_id > 1 else "") + json.dumps(a, separators=(",", ":"))
            f.write(s)
            written += len(s)
        f.write("]}")
    print(f"generated {path} ({ann_id} annotations) in {time.perf_counter() - t0:.1f} s", flush=True)
size = path.stat().st_size

with fd.Server() as srv:
    http = fd.Http(srv)
    client = srv.client()
    tid = fd.create_task(client, "coco memory", [{"name": "car"}, {"name": "person"}],
                         files=[media / n for n in names], data={"sorting_method": "lexicographical"})
    time.sleep(1)
    before = srv.rss()
    reset = srv.reset_peak_rss()
    # RSS sampled every 20 ms, to tell the read (parse + conversion + validation, the server
    # log's parse_ms) from the store that follows it.
    import re, threading
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            try:
                samples.append((time.perf_counter(), srv.rss()))
            except Exception:
                pass
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    th.start()
    fd.import_file(http, tid, "COCO 1.0", path)
    secs = time.perf_counter() - t0
    done.set()
    th.join()
    peak = srv.peak_rss()
    stored = len(fd.get_annotations(http, tid)["shapes"])
    log = srv.log_path.read_text(errors="replace")
m = re.findall(r"parse_ms=(\d+)", log)
parse_s = int(m[-1]) / 1000 if m else None
ratio = (peak - before) / size
print(f"file {size / 1e6:.1f} MB; RSS before {before / 1e6:.1f} MB; peak during import "
      f"{peak / 1e6:.1f} MB{'' if reset else ' (VmHWM not reset: peak since start)'}; "
      f"(peak - before) / file = {ratio:.2f}x; {secs:.1f} s; {stored} shapes stored")
if parse_s is not None and samples:
    # The store takes the last (secs - parse_s) seconds of the request (plus polling); the
    # samples before that are the upload and the read. Approximate: sampled every 20 ms.
    store_s = secs - parse_s
    t_read_end = t0 + secs - max(store_s, 0.0)
    read_peak = max((r for t, r in samples if t <= t_read_end), default=0)
    print(f"read (parse, conversion, validation: {parse_s:.1f} s): peak RSS {read_peak / 1e6:.1f} MB, "
          f"(peak - before) / file = {(read_peak - before) / size:.2f}x; the rest is the store")
print("target (peak - before) <= 3x the file:", "met" if ratio <= 3.0 else "NOT met")
EOF
