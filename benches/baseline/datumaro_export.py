#!/usr/bin/env python3
"""Datumaro 1.13's own exporters and importers on the data of a frameserver task: the baseline of
benches/compare-formats.sh (issue #5).

Input: a JSON spec written by benches/compare_formats.py with the task's frames
(`[name, width, height]`), labels (`{name, attributes: [{name, input_type, values,
default_value}]}`) and annotations (the body PUT to the server, with label and attribute *names*
instead of ids). The script builds the same `datumaro.Dataset` in memory (one item per frame,
id = the frame's name without extension (as CVAT's Datumaro export names items), `Image` media
with path and size but no pixels read; rectangles as `Bbox` with `occluded`, polygons as
`Polygon`, CVAT masks as a frame-size `RleMask` (as CVAT's bindings hand them over), attributes
by name with CVAT's types: select/radio/text as str, checkbox as bool, number as float;
z_order), untimed. Then, `--reps` times each, timed with `time.perf_counter()` in-process:

* export (`--export FORMAT`, repeatable, e.g. `cvat`, `coco_instances`, `voc`):
  `dataset.export(dir, FORMAT, save_media=False)` into a fresh directory;
* import (`--import FORMAT=DIR`, repeatable): `Dataset.import_from(DIR, FORMAT)` of
  frameserver's own export unzipped (the same bytes the server imports, images included: several
  Datumaro readers need the image files for their sizes), followed by a walk over every item and
  annotation so that lazily parsed data is really read.

Prints one JSON object on stdout: `{"datumaro": version, "items": n, "annotations": n,
"export": {FORMAT: [s...]}, "import": {DIR: {"format": FORMAT, "times": [s...], "items": n,
"annotations": n}}}`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def cvat_mask_rle(points: list, width: int, height: int):
    """A CVAT mask (RLE over its box, then x0 y0 x1 y1) as a COCO RLE of the whole frame, as
    CVAT's bindings hand masks to Datumaro."""
    import numpy as np
    from pycocotools import mask as mask_utils

    x0, y0, x1, y1 = (int(v) for v in points[-4:])
    bw = x1 - x0 + 1
    flat = np.zeros((y1 - y0 + 1) * bw, dtype=np.uint8)
    pos, val = 0, 0
    for n in points[:-4]:
        n = int(n)
        if val:
            flat[pos:pos + n] = 1
        pos += n
        val ^= 1
    full = np.zeros((height, width), dtype=np.uint8)
    full[y0:y1 + 1, x0:x1 + 1] = flat.reshape(y1 - y0 + 1, bw)
    return mask_utils.encode(np.asfortranarray(full))


def build(spec: dict):
    import datumaro as dm
    from datumaro.components.annotation import (AnnotationType, Bbox, Label, LabelCategories, Polygon,
                                                RleMask)
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    cats = LabelCategories(attributes={"occluded"})
    index, types = {}, {}
    for l in spec["labels"]:
        attrs = l.get("attributes", [])
        index[l["name"]] = cats.add(l["name"], attributes={a["name"] for a in attrs})
        for a in attrs:
            types[(l["name"], a["name"])] = a["input_type"]

    def value(label, name, v):
        t = types.get((label, name), "text")
        if t == "checkbox":
            return v == "true"
        if t == "number":
            return float(v)
        return v

    frames = spec["frames"]
    per_frame = [[] for _ in frames]
    for s in spec["annotations"]["shapes"]:
        attrs = {a["name"]: value(s["label"], a["name"], a["value"]) for a in s.get("attributes", [])}
        attrs["occluded"] = bool(s.get("occluded", False))
        label = index[s["label"]]
        p = s["points"]
        if s["type"] == "rectangle":
            ann = Bbox(p[0], p[1], p[2] - p[0], p[3] - p[1], label=label, z_order=s.get("z_order", 0),
                       attributes=attrs, group=s.get("group", 0))
        elif s["type"] == "polygon":
            ann = Polygon(p, label=label, z_order=s.get("z_order", 0), attributes=attrs, group=s.get("group", 0))
        elif s["type"] == "mask":
            w, h = frames[s["frame"]][1:]
            ann = RleMask(rle=cvat_mask_rle(p, w, h), label=label, z_order=s.get("z_order", 0),
                          attributes=attrs, group=s.get("group", 0))
        else:
            raise SystemExit(f"shape type {s['type']} is not in this benchmark")
        per_frame[s["frame"]].append(ann)
    for t in spec["annotations"].get("tags", []):
        attrs = {a["name"]: value(t["label"], a["name"], a["value"]) for a in t.get("attributes", [])}
        per_frame[t["frame"]].append(Label(index[t["label"]], attributes=attrs))
    items = [
        DatasetItem(id=Path(name).with_suffix("").as_posix(), subset="default",
                    media=Image.from_file(path=name, size=(h, w)),
                    annotations=per_frame[i], attributes={"frame": i})
        for i, (name, w, h) in enumerate(frames)
    ]
    ds = dm.Dataset.from_iterable(items, categories={AnnotationType.label: cats}, media_type=Image)
    n = sum(len(it.annotations) for it in ds)  # materialise before timing
    return ds, n


def walk(ds) -> tuple[int, int]:
    items = anns = 0
    for it in ds:
        items += 1
        for a in it.annotations:
            anns += 1
            _ = a.attributes
    return items, anns


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--export", action="append", default=[], metavar="FORMAT",
                    help="a Datumaro format to export the dataset in (repeatable)")
    ap.add_argument("--import", dest="imports", action="append", default=[], metavar="FORMAT=DIR",
                    help="a directory to import with a Datumaro format (repeatable)")
    ap.add_argument("--keep", type=Path, help="keep one export of each format here")
    args = ap.parse_args()

    import logging

    import datumaro as dm

    logging.getLogger().setLevel(logging.ERROR)
    spec = json.loads(args.spec.read_text())
    t0 = time.perf_counter()
    ds, n = build(spec)
    out = {"datumaro": dm.__version__, "items": len(ds), "annotations": n,
           "build_s": time.perf_counter() - t0}
    tmp = Path(tempfile.mkdtemp(prefix="dm-bench-"))
    try:
        out["export"] = {}
        for fmt in args.export:
            src = ds
            if fmt.startswith("yolo_ultralytics"):
                # Its exporter allows only the subsets train/val/test and needs both train and
                # val (CVAT exports "default" as "train"): the same items in "train", the last
                # one in "val", made untimed.
                items = list(ds)
                src = dm.Dataset.from_iterable([it.wrap(subset="val" if i == len(items) - 1 else "train")
                                                for i, it in enumerate(items)],
                                               categories=ds.categories(), media_type=ds.media_type())
            times = []
            for r in range(args.reps):
                d = tmp / f"{fmt}-{r}"
                t = time.perf_counter()
                src.export(str(d), fmt, save_media=False)
                times.append(time.perf_counter() - t)
                if args.keep and r == 0:
                    shutil.copytree(d, args.keep / fmt, dirs_exist_ok=True)
                shutil.rmtree(d)
            out["export"][fmt] = times
        out["import"] = {}
        for spec_arg in args.imports:
            fmt, src = spec_arg.split("=", 1)
            times = []
            for _ in range(args.reps):
                t = time.perf_counter()
                imported = dm.Dataset.import_from(src, fmt)
                items, anns = walk(imported)
                times.append(time.perf_counter() - t)
                del imported
            out["import"][src] = {"format": fmt, "times": times, "items": items, "annotations": anns}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
