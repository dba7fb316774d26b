#!/usr/bin/env python3
"""Dataset format benchmarks (issue #5), driven by benches/compare-formats.sh (which builds the
binaries and makes the venv); see that script for what is measured and the targets.

Prints progress on stderr and a markdown table on stdout; `--json FILE` also writes every raw
number. Exit status 1 when something fails (a request, a count check), 0 otherwise; missed
targets are reported in the table, not in the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "formats"))
import fsdriver as fd  # noqa: E402

FRAMES = 2000
COLORS = ["red", "green", "blue", "white"]
LABELS = [
    {"name": "car", "attributes": [{"name": "color", "mutable": False, "input_type": "select",
                                    "values": COLORS, "default_value": "red"}]},
    {"name": "person", "attributes": []},
]
CLIP = "h264_1080p_gop250.mp4"


@dataclass(frozen=True)
class Task:
    """A benchmark task: frame size, shapes per frame."""
    key: str
    w: int
    h: int
    boxes: int = 0
    polygons: int = 0
    masks: int = 0
    what: str = ""


TASKS = {
    # The annotations issue's task: 10 boxes + 5 polygons per frame (30,000 shapes).
    "shapes": Task("shapes", 64, 48, boxes=10, polygons=5, what="64x48, 10 boxes + 5 polygons a frame"),
    # For the raster formats: 5 polygons + 2 masks per frame on 512x384 frames.
    "masks": Task("masks", 512, 384, polygons=5, masks=2, what="512x384, 5 polygons + 2 masks a frame"),
}


@dataclass(frozen=True)
class Fmt:
    """One row of the benchmark: our exporter and importer names, Datumaro 1.13's format id for
    the same format (None: PyPI Datumaro has none), and the task it runs on. `lossless`: the
    import must store every shape of the task (the other formats drop or convert some, as CVAT
    does; their counts are reported)."""
    export: str
    imp: str | None
    dm: str | None
    task: str = "shapes"
    lossless: bool = False
    dm_import: str | None = None  # Datumaro's importer id when it differs from `dm` ("": none)

    @property
    def dm_reader(self) -> str | None:
        return self.dm if self.dm_import is None else (self.dm_import or None)


FORMATS = [
    Fmt("CVAT for images 1.1", "CVAT 1.1", "cvat", lossless=True),
    Fmt("Datumaro 1.0", "Datumaro 1.0", "datumaro", lossless=True),
    Fmt("YOLO 1.1", "YOLO 1.1", "yolo"),
    Fmt("COCO 1.0", "COCO 1.0", "coco_instances"),
    Fmt("PASCAL VOC 1.1", "PASCAL VOC 1.1", "voc", task="masks"),
    Fmt("Segmentation mask 1.1", "Segmentation mask 1.1", "voc_segmentation", task="masks"),
    # PyPI Datumaro 1.13 has a yolo_ultralytics exporter but no importer: its `yolo` importer
    # reads the layout, except with frames in folders (as here: the share's `formats-2000/`),
    # where it fails on its own exporter's output too (ItemImportError).
    Fmt("Ultralytics YOLO Detection 1.0", "Ultralytics YOLO Detection 1.0", "yolo_ultralytics",
        dm_import=""),
    Fmt("Ultralytics YOLO Segmentation 1.0", "Ultralytics YOLO Segmentation 1.0", None),
    Fmt("Ultralytics YOLO Oriented Bounding Boxes 1.0", "Ultralytics YOLO Oriented Bounding Boxes 1.0", None),
    Fmt("Ultralytics YOLO Detection Track 1.0", None, None),
]


def log(msg: str):
    print(f"[compare-formats] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------------------------
# Synthetic data


def make_frames(media: Path, task: Task, frames: int) -> str:
    """`frames` PNGs of the task's size (a few distinct images under many names) in
    media/formats-<task>-<n>/ (formats-<n>/ for the 64x48 task, as before)."""
    rel = f"formats-{frames}" if task.key == "shapes" else f"formats-{task.key}-{frames}"
    d = media / rel
    if d.is_dir() and len(list(d.glob("*.png"))) == frames:
        return rel
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    variants = [fd.png_bytes(task.w, task.h, (40 * i % 256, 90 + 20 * i, 200 - 30 * i)) for i in range(5)]
    for i in range(frames):
        (d / f"img_{i:05d}.png").write_bytes(variants[i % len(variants)])
    return rel


def mask_rle(x0: int, y0: int, w: int, h: int, rnd) -> list:
    """A CVAT mask (RLE over its box, then the box): an ellipse-ish blob filling the box."""
    bits = []
    cx, cy = (w - 1) / 2, (h - 1) / 2
    wobble = rnd.uniform(0.7, 1.0)
    for y in range(h):
        for x in range(w):
            bits.append(1 if ((x - cx) / (cx + 0.5)) ** 2 + ((y - cy) / (cy + 0.5)) ** 2 <= wobble else 0)
    return fd.cvat_mask(bits, x0, y0, w, h)


def make_annotations(task: Task, frames: int) -> list:
    """The task's shapes per frame; every other shape is a `car` with the select attribute
    `color`, the others `person` (no attributes). Label/attribute names, not ids."""
    rnd = random.Random(5)
    W, H = task.w, task.h
    shapes = []
    k = 0
    blobs = []  # a few distinct masks, reused (making RLE in Python is slow)
    for i in range(8):
        mw, mh = rnd.randint(W // 8, W // 3), rnd.randint(H // 8, H // 3)
        blobs.append((mw, mh, mask_rle(0, 0, mw, mh, rnd)[:-4]))
    for f in range(frames):
        for i in range(task.boxes + task.polygons + task.masks):
            car = k % 2 == 0
            k += 1
            s = {"frame": f, "label": "car" if car else "person", "z_order": i % 3,
                 "occluded": i % 7 == 0}
            if car:
                s["attributes"] = [{"name": "color", "value": rnd.choice(COLORS)}]
            if i < task.boxes:
                x, y = rnd.uniform(0, W - 12), rnd.uniform(0, H - 10)
                s.update(type="rectangle", points=[round(x, 2), round(y, 2),
                                                   round(x + rnd.uniform(2, 11), 2),
                                                   round(y + rnd.uniform(2, 9), 2)])
            elif i < task.boxes + task.polygons:
                n = rnd.randint(4, 6)
                s.update(type="polygon", points=[round(v, 2) for _ in range(n)
                                                 for v in (rnd.uniform(0, W - 1), rnd.uniform(0, H - 1))])
            else:
                mw, mh, rle = blobs[rnd.randrange(len(blobs))]
                x0, y0 = rnd.randint(0, W - mw), rnd.randint(0, H - mh)
                s.update(type="mask", points=rle + [float(x0), float(y0), float(x0 + mw - 1), float(y0 + mh - 1)])
            shapes.append(s)
    return shapes


def with_ids(shapes: list, labels: dict) -> dict:
    out = []
    for s in shapes:
        t = {k: v for k, v in s.items() if k not in ("label", "attributes")}
        lab = labels[s["label"]]
        t["label_id"] = lab["id"]
        t["attributes"] = [{"spec_id": lab["attributes"][a["name"]], "value": a["value"]}
                           for a in s.get("attributes", [])]
        out.append(t)
    return {"tags": [], "shapes": out, "tracks": []}


# --------------------------------------------------------------------------------------------
# Part 1: annotation formats, 2,000 frames: ours against Datumaro's own exporter and importer


def bench_task(args, task: Task, fmts: list, work: Path, results: dict):
    media = args.media
    rel = make_frames(media, task, args.frames)
    shapes = make_annotations(task, args.frames)
    log(f"task {task.key}: {args.frames} frames ({task.what}) in {media / rel}, {len(shapes)} shapes")
    r = results.setdefault("annotations", {}).setdefault(task.key, {
        "frames": args.frames, "shapes": len(shapes), "what": task.what, "formats": {}})
    tw = work / task.key
    tw.mkdir(parents=True, exist_ok=True)
    inputs = {}
    with fd.Server(share_dir=media, log_path=tw / "server.log") as srv:
        client = srv.client()
        http = fd.Http(srv)
        t = time.perf_counter()
        src = fd.create_task(client, f"formats bench {task.key}", LABELS, server_files=[rel + "/"],
                             data={"sorting_method": "lexicographical"})
        dst = fd.create_task(client, f"formats bench {task.key} import", LABELS, server_files=[rel + "/"],
                             data={"sorting_method": "lexicographical"})
        r["create_two_tasks_s"] = time.perf_counter() - t
        labels = fd.labels_by_name(http, src)
        body = json.dumps(with_ids(shapes, labels)).encode()
        r["put_bytes"] = len(body)
        r["put_s"] = fd.put_annotations(http, src, body)
        stored = fd.get_annotations(http, src)
        if len(stored["shapes"]) != len(shapes):
            raise RuntimeError(f"PUT stored {len(stored['shapes'])} shapes, sent {len(shapes)}")
        log(f"PUT {len(body) / 1e6:.1f} MB of annotations in {r['put_s']:.2f} s")

        doc = json.loads(fd.rest(http, "GET", "/api/server/annotation/formats").data)
        enabled = {x["name"] for x in doc["exporters"] if x.get("enabled")}
        for f in [f for f in fmts if f.export not in enabled]:
            log(f"{f.export}: not enabled by this server, skipped")
        fmts = [f for f in fmts if f.export in enabled]
        for f in fmts:
            fr = r["formats"].setdefault(f.export, {})
            runs = []
            for i in range(args.reps):
                z = tw / f"ours-{i}.zip"
                runs.append(fd.export(http, src, f.export, z, save_images=False))
                z.unlink()
            fr["export"] = runs
            log(f"ours export {f.export}: total {[round(x['total_s'], 3) for x in runs]} s, "
                f"{runs[-1]['bytes'] / 1e6:.1f} MB")
            if f.imp is None:
                continue
            # The import input of both sides: our export with the images (Datumaro's readers of
            # several formats need the image files for their sizes; ours skips them).
            z = tw / f"{f.export.replace(' ', '_')}.zip"
            fd.export(http, src, f.export, z, save_images=True)
            runs, server = [], []
            for i in range(args.reps):
                imp = fd.import_file(http, dst, f.imp, z)
                runs.append(imp["import_s"])
                server.append(imp["server_s"])
            got = fd.get_annotations(http, dst)
            n = len(got["shapes"]) + len(got["tags"]) + len(got["tracks"])
            fr.update(import_s=runs, import_server_s=server, imported=n, import_bytes=z.stat().st_size)
            if f.lossless and len(got["shapes"]) != len(shapes):
                raise RuntimeError(f"import {f.imp}: {len(got['shapes'])} shapes, expected {len(shapes)}")
            if n == 0:
                raise RuntimeError(f"import {f.imp}: nothing imported from our own export")
            log(f"ours import {f.imp}: {[round(x, 3) for x in runs]} s, {n} annotations stored")
            if f.dm_reader:
                inputs[f.export] = (f.dm_reader, fd.unzip(z, tw / f"ours-{f.export.replace(' ', '_')}"))

    base_fmts = [f for f in fmts if f.dm]
    if not base_fmts:
        return
    # The same data for Datumaro: frame names as the task has them (relative to the share root).
    spec = {"frames": [[f"{rel}/img_{i:05d}.png", task.w, task.h] for i in range(args.frames)],
            "labels": LABELS, "annotations": {"shapes": shapes}}
    spec_path = tw / "spec.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, str(REPO / "benches" / "baseline" / "datumaro_export.py"),
           "--spec", str(spec_path), "--reps", str(args.reps)]
    for f in base_fmts:
        cmd += ["--export", f.dm]
    for dm, d in inputs.values():
        cmd += ["--import", f"{dm}={d}"]
    log(f"Datumaro baseline on task {task.key}: {[f.dm for f in base_fmts]} ({args.reps} reps each)")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"datumaro_export.py failed:\n{p.stderr[-3000:]}")
    b = json.loads(p.stdout.strip().splitlines()[-1])
    if b["items"] != args.frames:
        raise RuntimeError(f"baseline dataset: {b['items']} items, expected {args.frames}")
    for f in base_fmts:
        fr = r["formats"][f.export]
        fr["baseline_export"] = b["export"][f.dm]
        if f.export in inputs:
            got = b["import"][str(inputs[f.export][1])]
            fr["baseline_import"] = got["times"]
            fr["baseline_imported"] = got["annotations"]
        log(f"Datumaro {b['datumaro']} {f.dm}: export {[round(x, 3) for x in fr['baseline_export']]} s, "
            f"import {[round(x, 3) for x in fr.get('baseline_import', [])]} s")
    r["baseline_datumaro"] = b["datumaro"]


def bench_annotations(args, work: Path, results: dict):
    wanted = [f for f in FORMATS if not args.formats or f.export in args.formats
              or (f.imp and f.imp in args.formats)]
    for key, task in TASKS.items():
        fmts = [f for f in wanted if f.task == key]
        if fmts:
            bench_task(args, task, fmts, work, results)


# --------------------------------------------------------------------------------------------
# Part 2: export with images of every frame of the 1080p clip


def run_floor(args, fmt: str, serial: bool) -> list:
    cmd = [str(args.floor_bin), str(args.media / CLIP), "--format", fmt, "--reps", str(args.video_reps)]
    if serial:
        cmd.append("--serial")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    runs = []
    for line in out.splitlines():
        if line.startswith("floor\t"):
            kv = dict(f.split("=", 1) for f in line.split("\t")[1:])
            runs.append({k: float(v) if k != "format" and k != "serial" else v for k, v in kv.items()})
    return runs


def run_ffmpeg(args, fmt: str, work: Path) -> float:
    d = work / f"ffmpeg-{fmt}"
    d.mkdir(exist_ok=True)
    codec = ["-c:v", "png"] if fmt == "png" else ["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p"]
    ext = "png" if fmt == "png" else "jpg"
    t = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(args.media / CLIP), "-f", "image2",
                    *codec, str(d / f"%06d.{ext}")], check=True)
    s = time.perf_counter() - t
    shutil.rmtree(d)
    return s


VIDEO_FORMATS = ["CVAT for images 1.1", "COCO 1.0", "YOLO 1.1"]


def bench_video(args, work: Path, results: dict):
    r = results.setdefault("video", {"clip": CLIP})
    for fmt in ("png", "jpeg"):
        with fd.Server(share_dir=args.media, log_path=work / f"server-video-{fmt}.log") as srv:
            client = srv.client()
            http = fd.Http(srv)
            doc = json.loads(fd.rest(http, "GET", "/api/server/annotation/formats").data)
            enabled = {x["name"] for x in doc["exporters"] if x.get("enabled")}
            tid = fd.create_task(client, f"1080p {fmt}", [{"name": "car"}], server_files=[CLIP])
            size = client.tasks.retrieve(tid).size
            r["frames"] = size
            for name in args.video_formats:
                if name not in enabled:
                    log(f"{name}: not enabled by this server, no video export")
                    continue
                runs = []
                for i in range(args.video_reps):
                    reset = srv.reset_peak_rss()
                    before = srv.rss()
                    # Polled every 20 ms: at 1 ms the poller takes ~60% of a core from an export
                    # that runs for seconds on 2 cores (0.1% resolution lost).
                    t = fd.export(http, tid, name, Path(os.devnull), save_images=True,
                                  image_format="jpeg" if fmt == "jpeg" else None, poll=0.02)
                    t.update(rss_before=before, peak_rss=srv.peak_rss(), peak_reset=reset)
                    runs.append(t)
                    log(f"ours export {name} with {fmt} images: {t['export_s']:.2f} s (+ download "
                        f"{t['download_s']:.2f} s, {t['bytes'] / 1e6:.0f} MB), VmHWM {t['peak_rss'] / 1e6:.0f} MB "
                        f"(RSS before {before / 1e6:.0f} MB)")
                r.setdefault("exports", {}).setdefault(name, {})[fmt] = runs
        for serial in (False, True):
            fl = run_floor(args, fmt, serial)
            r[f"floor_{fmt}_{'serial' if serial else 'overlap'}"] = fl
            log(f"floor {fmt} ({'serial' if serial else 'overlapped'}): {[x['seconds'] for x in fl]} s")
        if shutil.which("ffmpeg"):
            r[f"ffmpeg_{fmt}"] = run_ffmpeg(args, fmt, work)
            log(f"ffmpeg CLI {fmt} to files: {r[f'ffmpeg_{fmt}']:.2f} s")


# --------------------------------------------------------------------------------------------
# Report


def table(results: dict) -> str:
    rows = ["| measurement | frameserver s | reference s | ratio | target | result |",
            "|---|---|---|---|---|---|"]

    def verdict(ok):
        return "**pass**" if ok else "**FAIL**"

    for key, a in results.get("annotations", {}).items():
        what = f"{a['frames']:,} frames, {a['shapes']:,} shapes: {a['what']}"
        # The targets: exports >= 10x, imports >= 5x; the raster formats on the
        # mask-heavy task >= 5x both ways.
        exp_target, imp_target = (5, 5) if key == "masks" else (10, 5)
        for name, fr in a["formats"].items():
            f = next(x for x in FORMATS if x.export == name)
            if "export" not in fr:
                continue
            ours = median([x["total_s"] for x in fr["export"]])
            if "baseline_export" in fr:
                base = median(fr["baseline_export"])
                sp = base / ours
                rows.append(f"| export {name} ({what}; POST → finished + download) vs Datumaro "
                            f"`export(dir, '{f.dm}')` | {ours:.3f} | {base:.3f} | {sp:.1f}x faster | "
                            f"≥ {exp_target}x | {verdict(sp >= exp_target)} |")
            else:
                rows.append(f"| export {name} ({what}) | {ours:.3f} | | | no PyPI Datumaro 1.13 exporter | |")
            if "import_s" not in fr:
                continue
            ours = median(fr["import_s"])
            if "baseline_import" in fr:
                base = median(fr["baseline_import"])
                sp = base / ours
                rows.append(f"| import {f.imp} of our export (POST → finished, {fr['imported']:,} stored) vs "
                            f"Datumaro `import_from(dir, '{f.dm_reader}')` + walk ({fr['baseline_imported']:,} read) | "
                            f"{ours:.3f} | {base:.3f} | {sp:.1f}x faster | ≥ {imp_target}x | {verdict(sp >= imp_target)} |")
            else:
                rows.append(f"| import {f.imp} of our export ({fr['imported']:,} stored) | {ours:.3f} | | | "
                            "no PyPI Datumaro 1.13 importer | |")
    v = results.get("video")
    for name, by_fmt in (v or {}).get("exports", {}).items():
        for fmt, runs in by_fmt.items():
            ours = median([x["export_s"] for x in runs])
            floors = {m: median([x["seconds"] for x in v[f"floor_{fmt}_{m}"]]) for m in ("overlap", "serial")}
            mode = min(floors, key=floors.get)
            fl = floors[mode]
            ratio = ours / fl
            q = "PNG" if fmt == "png" else "JPEG q95 (`image_format=jpeg`)"
            rows.append(f"| export {name} with {q} images of all {v.get('frames', '?')} frames "
                        f"of the 1080p clip (POST → finished) vs floor (decode + {fmt.upper()} encode, "
                        f"in-process, {mode}) | {ours:.2f} | {fl:.2f} | {ratio:.2f}x floor | ≤ 1.3x | {verdict(ratio <= 1.3)} |")
            peak = max(x["peak_rss"] for x in runs) / 1e6
            rows.append(f"| server peak RSS (VmHWM) during the {name} {fmt.upper()} export (first: "
                        f"{runs[0]['peak_rss'] / 1e6:.0f} MB; max over {len(runs)} exports) | {peak:.0f} MB | | | "
                        f"< 300 MB | {verdict(peak < 300)} |")
    return "\n".join(rows)


def details(results: dict) -> str:
    lines = []
    for key, a in results.get("annotations", {}).items():
        lines.append(f"* task {key} ({a['what']}): PUT of {a['shapes']:,} shapes ({a['put_bytes'] / 1e6:.1f} MB "
                     f"JSON, one request): {a['put_s']:.2f} s.")
        for name, fr in a["formats"].items():
            runs = fr.get("export")
            if not runs:
                continue
            lines.append(f"* ours export {name}: export {median([x['export_s'] for x in runs]):.3f} s (server-side "
                         f"{median([x['server_s'] for x in runs]):.3f} s) + download "
                         f"{median([x['download_s'] for x in runs]):.3f} s, zip {runs[-1]['bytes'] / 1e6:.2f} MB; "
                         f"runs {[round(x['total_s'], 3) for x in runs]}; Datumaro "
                         f"{[round(x, 3) for x in fr.get('baseline_export', [])]}")
            if "import_s" in fr:
                lines.append(f"* ours import {name}: {fr['import_bytes'] / 1e6:.2f} MB zip with images, runs "
                             f"{[round(x, 3) for x in fr['import_s']]} (server-side "
                             f"{[round(x, 3) for x in fr['import_server_s']]}), {fr['imported']:,} annotations "
                             f"stored; Datumaro {[round(x, 3) for x in fr.get('baseline_import', [])]}, "
                             f"{fr.get('baseline_imported', 0):,} read")
    v = results.get("video")
    for name, by_fmt in (v or {}).get("exports", {}).items():
        for fmt, runs in by_fmt.items():
            lines.append(f"* {name}, {fmt}: ours export {[round(x['export_s'], 2) for x in runs]} s, download "
                         f"{[round(x['download_s'], 2) for x in runs]} s, zip {runs[-1]['bytes'] / 1e6:.0f} MB, "
                         f"VmHWM {[round(x['peak_rss'] / 1e6) for x in runs]} MB")
    for fmt in ("png", "jpeg"):
        if v and f"floor_{fmt}_overlap" in v:
            lines.append(f"* {fmt} floor: overlapped {[x['seconds'] for x in v[f'floor_{fmt}_overlap']]} s (decoding "
                         f"thread busy {[x['decode_seconds'] for x in v[f'floor_{fmt}_overlap']]} s), serial "
                         f"{[x['seconds'] for x in v.get(f'floor_{fmt}_serial', [])]} s; ffmpeg CLI to files "
                         f"{v.get(f'ffmpeg_{fmt}', float('nan')):.2f} s")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--video-reps", type=int, default=2)
    ap.add_argument("--frames", type=int, default=FRAMES)
    ap.add_argument("--media", type=Path, default=REPO / "target" / "bench-media")
    ap.add_argument("--floor-bin", type=Path, default=REPO / "target" / "release" / "examples" / "export_floor")
    ap.add_argument("--skip-annotations", action="store_true")
    ap.add_argument("--formats", action="append", default=[],
                    help="only these formats (export or import name; repeatable); default: every row of FORMATS")
    ap.add_argument("--skip-video", action="store_true")
    ap.add_argument("--video-formats", action="append", default=None,
                    help=f"formats of the video exports with images (repeatable; default {VIDEO_FORMATS})")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    args.media = args.media.resolve()
    args.video_formats = args.video_formats or VIDEO_FORMATS
    work = Path(tempfile.mkdtemp(prefix="compare-formats-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "server": str(fd.server_bin())}
    rc = 0
    try:
        if not args.skip_annotations:
            bench_annotations(args, work, results)
        if not args.skip_video:
            bench_video(args, work, results)
    except Exception as e:
        log(f"ERROR: {type(e).__name__}: {e}")
        rc = 1
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    print()
    print(details(results))
    sys.exit(rc)


if __name__ == "__main__":
    main()
