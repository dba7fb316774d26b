"""Cross-checks frameserver's dataset formats with PyPI Datumaro 1.13 (run by
tests/formats/datumaro-check.sh, which makes the venv: datumaro 1.13.12 + cvat-sdk 2.80.0).

Part 1, exports: a live `frameserver serve` gets an image task (8 frames of several sizes, one of
them empty) with rectangles, polygons, polylines, points, ellipses, masks, tags and two tracks
(no skeletons: Datumaro 1.13 cannot read them in the Datumaro format), uploaded with one
`PUT /api/tasks/{id}/annotations`. It is exported as "Datumaro 1.0" and "CVAT for images 1.1",
with and without images, and `shared/tools/dataset-summary.py` (Datumaro) must report the
expected items, labels and annotation counts per (type, label), computed here from what was
uploaded: one item per frame, tags as `label`, rectangles as `bbox`, tracks interpolated on every
frame where they are visible. Known losses of Datumaro 1.13's CVAT XML reader are applied to the
expectation and printed: it has no `<ellipse>`, and it refuses XML whose images are missing (the
export without images is read with blank placeholder images of the sizes in the XML, and its
annotations.xml must equal the one of the export with images). It is also exported as "YOLO 1.1"
(boxes only: Datumaro's yolo reader must see the task's rectangles, tracks interpolated, and no
track ids; the export without images is read with blank placeholders of the task's frame sizes).

Part 2, imports: the samples under shared/testdata/datumaro that Datumaro 1.13 reads (CVAT for
images `for_images`, CVAT for video `for_video`, Datumaro `diverse` and `v1.0`, YOLO `yolo`) are imported into
tasks made to fit them (labels from the sample, frames named and sized like its items; a video
task with frames 10–19 step 3 for `for_video`). What CVAT cannot import (annotations without a
label or with a label id outside the categories, captions, 3D cuboids) is dropped from a copy first when the server refuses the original
("where the labels allow"). The annotations the server stored, counted the way Datumaro 1.13 sees
them (skeletons as their element points; for tracks, keyframes per type and label), must equal
what dataset-summary reports for the (filtered) sample.

Driven by the registry: the formats come from the server's GET /api/server/annotation/formats.
Every enabled exporter and importer must have an expectation here (EXPORT_EXPECTATIONS,
IMPORT_EXPECTATIONS) or the run fails naming it; only enabled formats are checked. CVAT for video
1.1 is checked on the video task of part 2: the `for_video` sample, once imported, is exported
again and Datumaro must read the same keyframes per (type, label) and the same tracks.

Exit status 0 when every check passes, 1 otherwise. Usage:
  datumaro_check.py [--keep DIR] [--shared DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fsdriver as fd  # noqa: E402

TYPE_NAMES = {"rectangle": "bbox", "polygon": "polygon", "polyline": "polyline", "points": "points",
              "ellipse": "ellipse", "mask": "mask"}

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = ""):
    RESULTS.append((name, ok, detail))
    mark = "ok  " if ok else "FAIL"
    print(f"[{mark}] {name}" + (f"\n       {detail}" if detail and not ok else ""), flush=True)
    return ok


def note(msg: str):
    print(f"       note: {msg}", flush=True)


def summary(shared: Path, fmt: str, path: Path, items: bool = False) -> dict:
    cmd = [sys.executable, str(shared / "tools" / "dataset-summary.py"), fmt, str(path), "--json"]
    if items:
        cmd.append("--items")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dataset-summary {fmt!r} {path}: rc {r.returncode}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)


def diff_counts(expected: dict, got: dict) -> str:
    keys = sorted(set(expected) | set(got))
    return ", ".join(f"{k}: expected {expected.get(k, 0)} got {got.get(k, 0)}"
                     for k in keys if expected.get(k, 0) != got.get(k, 0))


# --------------------------------------------------------------------------------------------
# The registry: which formats the server enables, and what this script expects of each

# Enabled exporter name -> where its expectation is checked.
EXPORT_EXPECTATIONS = {
    "Datumaro 1.0": "part 1: the synthetic image task, with and without images",
    "CVAT for images 1.1": "part 1: the synthetic image task, with and without images",
    "CVAT for video 1.1": "part 2: the imported `for_video` sample exported again",
    "YOLO 1.1": "part 1: the synthetic image task, with and without images (boxes only)",
}
# Enabled importer name -> the samples of shared/testdata/datumaro imported with it.
IMPORT_EXPECTATIONS = {
    "CVAT 1.1": ["for_images", "for_video"],
    "Datumaro 1.0": ["diverse", "v1.0"],
    "YOLO 1.1": ["yolo"],
}


def registry(http) -> tuple[list, list]:
    """The enabled exporters and importers, from GET /api/server/annotation/formats; an enabled
    format without an expectation here is a failed check."""
    doc = json.loads(fd.rest(http, "GET", "/api/server/annotation/formats").data)
    exporters = [f["name"] for f in doc["exporters"] if f.get("enabled")]
    importers = [f["name"] for f in doc["importers"] if f.get("enabled")]
    print(f"       registry: enabled exporters {exporters}, importers {importers}", flush=True)
    for side, names, table in (("exporter", exporters, EXPORT_EXPECTATIONS),
                               ("importer", importers, IMPORT_EXPECTATIONS)):
        for n in names:
            check(f"enabled {side} {n!r} has an expectation", n in table,
                  f"the server enables {side} {n!r} but datumaro_check.py has no expectation for it: "
                  f"add one to {'EXPORT' if side == 'exporter' else 'IMPORT'}_EXPECTATIONS")
        for n in table:
            if n not in names:
                note(f"{side} {n!r} has an expectation but the server does not enable it: not checked")
    return exporters, importers


# --------------------------------------------------------------------------------------------
# Counting annotations the way Datumaro sees them


class LabelMap:
    def __init__(self, labels: dict):
        self.name = {v["id"]: k for k, v in labels.items()}
        for v in labels.values():
            for sub, sid in v["sublabels"].items():
                self.name[sid] = sub


def track_frames(track: dict, size: int):
    """(frame, shape) for every frame where the track is visible, from its first keyframe to the
    task's last frame (CVAT's interpolation range for a one-job task)."""
    keys = sorted(track["shapes"], key=lambda s: s["frame"])
    out = []
    for f in range(keys[0]["frame"], size):
        last = [s for s in keys if s["frame"] <= f][-1]
        if not last.get("outside", False):
            out.append((f, last))
    return out


def datumaro_counts(doc: dict, lm: LabelMap, size: int, *, ellipse: bool = True,
                    tracks: str = "expand") -> Counter:
    """`type:label` counts. tracks="expand": interpolated on every visible frame (exports);
    "keyframes": one per keyframe shape, outside ones included (CVAT for video read back)."""
    c = Counter()
    for t in doc.get("tags", []):
        c[f"label:{lm.name[t['label_id']]}"] += 1

    def add_shape(kind, label_id, elements=()):
        if kind == "skeleton":
            for e in elements:
                c[f"points:{lm.name[e['label_id']]}"] += 1
            return
        if kind == "ellipse" and not ellipse:
            return
        c[f"{TYPE_NAMES[kind]}:{lm.name[label_id]}"] += 1

    for s in doc.get("shapes", []):
        add_shape(s["type"], s["label_id"], s.get("elements", []))
    for t in doc.get("tracks", []):
        if tracks == "expand":
            for _, s in track_frames(t, size):
                add_shape(s["type"], t["label_id"])
        else:
            for s in t["shapes"]:
                if s["type"] != "skeleton":
                    add_shape(s["type"], t["label_id"])
            for e in t.get("elements", []):
                for s in e["shapes"]:
                    c[f"points:{lm.name[e['label_id']]}"] += 1
    return c


def by_type(c: Counter) -> Counter:
    out = Counter()
    for k, v in c.items():
        out[k.split(":", 1)[0]] += v
    return out


# --------------------------------------------------------------------------------------------
# Part 1: exports of a synthetic image task

FRAMES = [("f00.png", 64, 48), ("f01.png", 80, 60), ("f02.jpg", 96, 64), ("f03.png", 41, 30),
          ("f04.png", 64, 48), ("f05.png", 50, 50), ("f06.jpg", 120, 90), ("f07.png", 64, 48)]
EMPTY_FRAME = 5

LABELS = [
    {"name": "car", "attributes": [
        {"name": "color", "mutable": False, "input_type": "select", "values": ["red", "blue", "white"],
         "default_value": "red"},
        {"name": "parked", "mutable": True, "input_type": "checkbox", "values": ["false"],
         "default_value": "false"},
    ]},
    {"name": "person", "attributes": [
        {"name": "note", "mutable": False, "input_type": "text", "values": [""], "default_value": ""},
    ]},
    {"name": "sign"},
    {"name": "unused"},
]


def disk_mask(x0: int, y0: int, d: int) -> list:
    """A tight CVAT mask: a disk of diameter d in the box (x0, y0)-(x0+d-1, y0+d-1)."""
    r = (d - 1) / 2
    bits = [1 if (x - r) ** 2 + (y - r) ** 2 <= r * r + 0.5 else 0 for y in range(d) for x in range(d)]
    rle, cur, n = [], 0, 0
    for b in bits:
        if b == cur:
            n += 1
        else:
            rle.append(n)
            cur, n = b, 1
    rle.append(n)
    return [float(v) for v in rle] + [float(x0), float(y0), float(x0 + d - 1), float(y0 + d - 1)]


def synthetic_annotations(labels: dict) -> dict:
    rnd = random.Random(5)
    car, person, sign = (labels[n]["id"] for n in ("car", "person", "sign"))
    color, parked = labels["car"]["attributes"]["color"], labels["car"]["attributes"]["parked"]
    note_attr = labels["person"]["attributes"]["note"]

    def car_attrs():
        return [{"spec_id": color, "value": rnd.choice(["red", "blue", "white"])},
                {"spec_id": parked, "value": rnd.choice(["true", "false"])}]

    def pt(w, h):
        return [round(rnd.uniform(0, w - 1), 2), round(rnd.uniform(0, h - 1), 2)]

    shapes, tags = [], []
    for f, (_, w, h) in enumerate(FRAMES):
        if f == EMPTY_FRAME:
            continue
        for _ in range(1 + f % 3):
            x1, y1 = rnd.uniform(0, w / 2), rnd.uniform(0, h / 2)
            shapes.append({"type": "rectangle", "label_id": car, "frame": f, "attributes": car_attrs(),
                           "points": [round(x1, 2), round(y1, 2), round(x1 + w / 3, 2), round(y1 + h / 3, 2)]})
        shapes.append({"type": "polygon", "label_id": person, "frame": f,
                       "attributes": [{"spec_id": note_attr, "value": f"p{f}"}],
                       "points": pt(w, h) + pt(w, h) + pt(w, h) + pt(w, h)})
        if f % 2 == 0:
            shapes.append({"type": "polyline", "label_id": sign, "frame": f, "points": pt(w, h) + pt(w, h) + pt(w, h)})
            shapes.append({"type": "points", "label_id": person, "frame": f, "points": pt(w, h) + pt(w, h),
                           "attributes": [{"spec_id": note_attr, "value": ""}]})
        if f % 3 == 0:
            shapes.append({"type": "ellipse", "label_id": sign, "frame": f,
                           "points": [w / 2, h / 2, w / 2 + 8, h / 2 - 5]})
        if f in (0, 3, 6):
            shapes.append({"type": "mask", "label_id": car, "frame": f, "attributes": car_attrs(),
                           "points": disk_mask(2 + f, 3, 9 + f)})
        if f in (1, 4):
            tags.append({"label_id": sign, "frame": f})
            tags.append({"label_id": car, "frame": f, "attributes": car_attrs()})
    tracks = [
        {"label_id": car, "frame": 1, "attributes": [{"spec_id": color, "value": "blue"}],
         "shapes": [
             {"type": "rectangle", "frame": 1, "points": [1, 1, 11, 11], "attributes": [{"spec_id": parked, "value": "false"}]},
             {"type": "rectangle", "frame": 3, "points": [5, 5, 15, 15], "attributes": [{"spec_id": parked, "value": "true"}]},
             {"type": "rectangle", "frame": 5, "points": [5, 5, 15, 15], "outside": True, "attributes": [{"spec_id": parked, "value": "true"}]},
             {"type": "rectangle", "frame": 6, "points": [7, 7, 17, 17], "attributes": [{"spec_id": parked, "value": "true"}]},
         ]},
        {"label_id": person, "frame": 0, "attributes": [{"spec_id": note_attr, "value": "walker"}],
         "shapes": [
             {"type": "polygon", "frame": 0, "points": [1, 1, 9, 1, 5, 8]},
             {"type": "polygon", "frame": 2, "points": [3, 3, 11, 3, 7, 10], "outside": True},
         ]},
    ]
    return {"tags": tags, "shapes": shapes, "tracks": tracks}


def blank_images_for_cvat_xml(root_dir: Path):
    """Blank images of the sizes in annotations.xml under images/ (Datumaro 1.13's CVAT reader
    refuses an <image> whose file is missing; CVAT's own reader does not need them)."""
    from PIL import Image

    xml = ET.parse(root_dir / "annotations.xml").getroot()
    for im in xml.iter("image"):
        p = root_dir / "images" / im.get("name")
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (int(im.get("width")), int(im.get("height")))).save(p)


def blank_images_for_yolo(root_dir: Path, sizes: dict):
    """Blank images of the task's frame sizes at the paths of the YOLO subset lists (Datumaro's
    yolo reader needs image sizes; CVAT passes the task's frame sizes instead)."""
    from PIL import Image

    for lst in root_dir.glob("*.txt"):
        for line in lst.read_text().splitlines():
            rel = line.strip().removeprefix("data/")
            if not rel:
                continue
            h, w = sizes[Path(rel).stem]
            p = root_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (w, h)).save(p)


def xml_without_dumped(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if "<dumped>" not in line)


def part1(srv, http, client, shared: Path, work: Path, exporters: list):
    print("\n== Part 1: exports of a synthetic image task, read by Datumaro 1.13", flush=True)
    media = work / "media"
    media.mkdir()
    from PIL import Image

    for i, (name, w, h) in enumerate(FRAMES):
        Image.new("RGB", (w, h), (30 * i % 255, 90, 160)).save(media / name)
    tid = fd.create_task(client, "datumaro check", LABELS, files=[media / n for n, _, _ in FRAMES],
                         data={"sorting_method": "lexicographical"})
    labels = fd.labels_by_name(http, tid)
    lm = LabelMap(labels)
    doc = synthetic_annotations(labels)
    fd.put_annotations(http, tid, doc)
    stored = fd.get_annotations(http, tid)
    n_up = (len(doc["tags"]), len(doc["shapes"]), len(doc["tracks"]))
    n_st = (len(stored["tags"]), len(stored["shapes"]), len(stored["tracks"]))
    check("PUT annotations stored everything (tags, shapes, tracks)", n_up == n_st, f"uploaded {n_up}, stored {n_st}")

    size = len(FRAMES)
    label_names = [l["name"] for l in LABELS]
    full = datumaro_counts(doc, lm, size)
    no_ellipse = datumaro_counts(doc, lm, size, ellipse=False)
    print(f"       uploaded: {len(doc['shapes'])} shapes, {len(doc['tags'])} tags, {len(doc['tracks'])} tracks; "
          f"Datumaro should see {sum(full.values())} annotations: {dict(sorted(by_type(full).items()))}", flush=True)
    sizes = {Path(n).stem: (h, w) for n, w, h in FRAMES}

    def verify(what: str, s: dict, expected: Counter, *, tracks_expected: int, with_media: bool):
        check(f"{what}: items", s["items"] == size, f"expected {size}, got {s['items']}")
        got_labels = [l["name"] for l in s["labels"]]
        check(f"{what}: labels", got_labels == label_names, f"expected {label_names}, got {got_labels}")
        got = Counter(s["annotations_by_type_label"])
        check(f"{what}: annotations by type:label ({sum(expected.values())})", got == expected,
              diff_counts(expected, got))
        check(f"{what}: track ids", s["distinct_track_ids"] == tracks_expected,
              f"expected {tracks_expected}, got {s['distinct_track_ids']}")
        if with_media:
            m = s["media"]
            check(f"{what}: every item has its image", m.get("with_data") == size,
                  f"media {m}")
        if "item_list" in s:
            wrong = []
            for it in s["item_list"]:
                stem = Path(it["id"]).name
                exp = sizes.get(stem)
                got_size = it.get("media", {}).get("size") if isinstance(it.get("media"), dict) else it.get("size")
                if exp is not None and got_size is not None and tuple(got_size) != exp:
                    wrong.append((it["id"], got_size, exp))
            check(f"{what}: image sizes (h, w) per item", not wrong, f"(item, got, expected): {wrong}")

    # Datumaro 1.0
    for save in ((False, True) if "Datumaro 1.0" in exporters else ()):
        what = f"Datumaro 1.0, save_images={save}"
        z = work / f"dm_{save}.zip"
        t = fd.export(http, tid, "Datumaro 1.0", z, save_images=save)
        d = fd.unzip(z, work / f"dm_{save}")
        s = summary(shared, "Datumaro 1.0", d, items=True)
        print(f"   {what}: {t['bytes']} bytes in {t['total_s']:.2f} s", flush=True)
        verify(what, s, full, tracks_expected=len(doc["tracks"]), with_media=save)

    # YOLO 1.1: boxes only (no tags, other shapes or track ids; the task has no rotated boxes)
    boxes = Counter({k: v for k, v in full.items() if k.startswith("bbox:")})
    for save in ((True, False) if "YOLO 1.1" in exporters else ()):
        what = f"YOLO 1.1, save_images={save}"
        z = work / f"yolo_{save}.zip"
        t = fd.export(http, tid, "YOLO 1.1", z, save_images=save)
        d = fd.unzip(z, work / f"yolo_{save}")
        print(f"   {what}: {t['bytes']} bytes in {t['total_s']:.2f} s", flush=True)
        if not save:
            check(f"{what}: no images in the zip",
                  not any(p.suffix.lower() in (".png", ".jpg") for p in d.rglob("*")))
            note("Datumaro's yolo reader needs image sizes: reading the export without images with "
                 "blank placeholders of the task's frame sizes")
            blank_images_for_yolo(d, sizes)
        s = summary(shared, "YOLO 1.1", d, items=True)
        verify(what, s, boxes, tracks_expected=0, with_media=True)

    # CVAT for images 1.1
    if "CVAT for images 1.1" not in exporters:
        return tid
    note("Datumaro 1.13's CVAT XML reader has no <ellipse> (SUPPORTED_IMPORT_SHAPES = box, polygon, "
         f"polyline, points, mask): {sum(full.values()) - sum(no_ellipse.values())} ellipses are not counted")
    xmls = {}
    for save in (True, False):
        what = f"CVAT for images 1.1, save_images={save}"
        z = work / f"cvat_{save}.zip"
        t = fd.export(http, tid, "CVAT for images 1.1", z, save_images=save)
        d = fd.unzip(z, work / f"cvat_{save}")
        print(f"   {what}: {t['bytes']} bytes in {t['total_s']:.2f} s", flush=True)
        xmls[save] = xml_without_dumped(d / "annotations.xml")
        if not save:
            check(f"{what}: annotations.xml equals the one exported with images (but <dumped>)",
                  xmls[False] == xmls[True])
            check(f"{what}: no images/ in the zip", not (d / "images").exists())
            note("Datumaro 1.13's CVAT reader refuses XML whose images are missing: reading it with "
                 "blank placeholders of the sizes in the XML")
            blank_images_for_cvat_xml(d)
        s = summary(shared, "CVAT for images 1.1", d, items=True)
        verify(what, s, no_ellipse, tracks_expected=0, with_media=True)
    return tid


# --------------------------------------------------------------------------------------------
# Part 2: the samples Datumaro 1.13 reads, imported into tasks


def values_of(attr_el) -> list:
    text = (attr_el.findtext("values") or "").strip()
    return text.split("\n") if "\n" in text else text.split()


def labels_from_cvat_meta(xml_path: Path) -> list:
    """Task label specs from a CVAT XML <meta> (skeletons with their sublabels and SVG). Number
    attributes whose values are not [min, max, step] become text attributes (the server, like
    CVAT, refuses them as numbers)."""
    root = ET.parse(xml_path).getroot()
    specs, by_name = [], {}
    for l in root.find("meta").iter("label"):
        spec = {"name": l.findtext("name"), "attributes": []}
        if l.findtext("type"):
            spec["type"] = l.findtext("type")
        if l.findtext("color"):
            spec["color"] = l.findtext("color")
        attrs = l.find("attributes")
        for a in (attrs if attrs is not None else []):
            t = a.findtext("input_type")
            vals = values_of(a)
            default = a.findtext("default_value") or (vals[0] if vals else "")
            if t == "number":
                try:
                    lo, hi, step = (float(v) for v in vals)
                    ok = lo <= hi and step > 0
                except ValueError:
                    ok = False
                if not ok:
                    note(f"label {spec['name']!r}: number attribute {a.findtext('name')!r} with values "
                         f"{vals} is not [min, max, step]; created as a text attribute")
                    t, vals = "text", [default]
            spec["attributes"].append({"name": a.findtext("name"), "input_type": t, "values": vals,
                                       "default_value": default,
                                       "mutable": (a.findtext("mutable") or "False") == "True"})
        if l.findtext("svg"):
            spec["svg"] = l.findtext("svg")
        parent = l.findtext("parent")
        by_name[spec["name"]] = spec
        if parent:
            spec.pop("attributes") if not spec["attributes"] else None
            by_name[parent].setdefault("sublabels", []).append(spec)
        else:
            specs.append(spec)
    return specs


def import_or_filtered(http, tid: int, fmt: str, original: Path, filtered: Path | None, what: str):
    """Imports `original`; if the server refuses it and a filtered copy exists, imports that.
    Returns which one was imported."""
    try:
        fd.import_file(http, tid, fmt, original)
        return "original"
    except RuntimeError as e:
        if filtered is None:
            raise
        note(f"{what}: the server refused the sample as is ({str(e)[:300]}); importing the copy "
             "without what CVAT cannot import")
        fd.import_file(http, tid, fmt, filtered)
        return "filtered"


def sample_cvat_images(http, client, shared: Path, work: Path):
    src = shared / "testdata/datumaro/cvat_for_images_1.1/cvat_dataset/for_images"
    what = "sample CVAT for images 'for_images'"
    print(f"\n-- {what}", flush=True)
    labels = labels_from_cvat_meta(src / "train.xml")
    tid = fd.create_task(client, "sample for_images", labels, files=sorted((src / "images").iterdir()),
                         data={"sorting_method": "lexicographical"})
    # CVAT imports no shape without a label: drop the two with label="" from a copy.
    filt = work / "for_images_filtered"
    shutil.copytree(src, filt)
    root = ET.parse(src / "train.xml").getroot()
    dropped = 0
    for im in root.iter("image"):
        for el in list(im):
            if el.get("label") == "":
                im.remove(el)
                dropped += 1
    ET.ElementTree(root).write(filt / "train.xml", encoding="utf-8", xml_declaration=True)
    note(f"{dropped} shapes with label=\"\" dropped from the copy (CVAT requires a label)")
    used = import_or_filtered(http, tid, "CVAT 1.1", fd.zip_dir(src, work / "for_images.zip"),
                              fd.zip_dir(filt, work / "for_images_filtered.zip"), what)
    s = summary(shared, "CVAT for images 1.1", filt)
    lm = LabelMap(fd.labels_by_name(http, tid))
    got = datumaro_counts(fd.get_annotations(http, tid), lm, 2)
    exp = Counter(s["annotations_by_type_label"])
    check(f"{what} ({used}): stored annotations = Datumaro's ({sum(exp.values())}; skeletons as points)",
          got == exp, diff_counts(exp, got))


def keyframes_by_type_label(s: dict) -> Counter:
    """`type:label` counts of the keyframe shapes in a dataset-summary --items report."""
    c = Counter()
    for it in s["item_list"]:
        for a in it["annotations"]:
            if a.get("attributes", {}).get("keyframe"):
                c[f"{a['type']}:{a['label']}"] += 1
    return c


def sample_cvat_video(http, client, shared: Path, work: Path, exporters: list = ()):
    src = shared / "testdata/datumaro/cvat_for_video_1.1/cvat_dataset/for_video"
    what = "sample CVAT for video 'for_video'"
    print(f"\n-- {what}", flush=True)
    video = work / "v20.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=26x20:rate=25",
                    "-frames:v", "20", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5", str(video)],
                   check=True)
    labels = labels_from_cvat_meta(src / "annotations.xml")
    tid = fd.create_task(client, "sample for_video", labels, files=[video],
                         data={"start_frame": 10, "stop_frame": 19, "frame_filter": "step=3"})
    fd.import_file(http, tid, "CVAT 1.1", fd.zip_dir(src, work / "for_video.zip"))
    s = summary(shared, "CVAT for video 1.1", src, items=True)
    stored = fd.get_annotations(http, tid)
    exp = keyframes_by_type_label(s)
    lm = LabelMap(fd.labels_by_name(http, tid))
    got = datumaro_counts(stored, lm, 4, tracks="keyframes")
    check(f"{what}: stored track keyframes = Datumaro's keyframe shapes ({sum(exp.values())}; "
          "skeleton elements as points)", got == exp, diff_counts(exp, got))
    check(f"{what}: tracks = Datumaro's distinct track ids", len(stored["tracks"]) == s["distinct_track_ids"],
          f"stored {len(stored['tracks'])} tracks, Datumaro {s['distinct_track_ids']} track ids")
    if "CVAT for video 1.1" not in exporters:
        return
    # The export of the video task, read by Datumaro: the sample's keyframes and tracks again.
    name = "CVAT for video 1.1"
    z = work / "for_video_export.zip"
    t = fd.export(http, tid, name, z, save_images=False)
    d = fd.unzip(z, work / "for_video_export")
    print(f"   {name} export of the imported sample: {t['bytes']} bytes in {t['total_s']:.2f} s", flush=True)
    # Datumaro 1.13's CVAT reader cannot read skeleton tracks as CVAT writes them (element
    # <points> inside <skeleton> without a frame: KeyError 'frame'); read a copy without them.
    labels = fd.labels_by_name(http, tid)
    skeletons = {n for n, v in labels.items() if v["sublabels"]}
    sublabels = {sub for v in labels.values() for sub in v["sublabels"]}
    root = ET.parse(d / "annotations.xml").getroot()
    dropped = [t for t in root.findall("track") if t.get("label") in skeletons]
    for t in dropped:
        root.remove(t)
    ET.ElementTree(root).write(d / "annotations.xml", encoding="utf-8", xml_declaration=True)
    note(f"Datumaro 1.13's CVAT reader cannot read CVAT's skeleton tracks (<points> without a frame): "
         f"{len(dropped)} skeleton tracks dropped from the copy it reads, and their element points "
         "from the expectation")
    exp2 = Counter({k: v for k, v in exp.items()
                    if not (k.startswith("points:") and k.split(":", 1)[1] in sublabels)})
    s2 = summary(shared, name, d, items=True)
    got2 = keyframes_by_type_label(s2)
    check(f"{name} export of the imported sample: keyframes by type:label = the sample's ({sum(exp2.values())})",
          got2 == exp2, diff_counts(exp2, got2))
    plain_tracks = [t for t in stored["tracks"] if not t.get("elements")]
    check(f"{name} export of the imported sample: track ids = the stored tracks without skeletons",
          s2["distinct_track_ids"] == len(plain_tracks),
          f"stored {len(plain_tracks)}, export {s2['distinct_track_ids']}")



def stored_and_summary(http, shared: Path, tid: int, fmt: str, src: Path, frames: int):
    """The counts of what task `tid` stored (as Datumaro sees them) and of dataset-summary's
    report of `src` read as `fmt`."""
    s = summary(shared, fmt, src)
    lm = LabelMap(fd.labels_by_name(http, tid))
    return (datumaro_counts(fd.get_annotations(http, tid), lm, frames),
            Counter(s["annotations_by_type_label"]))


IMPORTABLE_DM_TYPES = {"label", "bbox", "polygon", "polyline", "points", "ellipse", "mask"}


def sample_datumaro(http, client, shared: Path, work: Path, name: str):
    src = shared / f"testdata/datumaro/datumaro_1.0/datumaro_dataset/{name}"
    what = f"sample Datumaro '{name}'"
    print(f"\n-- {what}", flush=True)
    from PIL import Image

    # Frames named like the items (the first size the sample gives an item, else 8x8).
    items = {}
    filt = work / f"dm_{name}_filtered"
    shutil.copytree(src, filt)
    dropped = Counter()
    for f in sorted((src / "annotations").glob("*.json")):
        d = json.loads(f.read_text())
        n_labels = len(d["categories"]["label"]["labels"])
        for it in d["items"]:
            size = (it.get("image") or (it.get("media") or {})).get("size") if isinstance(
                it.get("image") or it.get("media"), dict) else None
            if it["id"] not in items or (items[it["id"]] is None and size):
                items[it["id"]] = size
            keep = []
            for a in it["annotations"]:
                label = a.get("label_id")
                if a["type"] not in IMPORTABLE_DM_TYPES:
                    dropped[a["type"]] += 1
                elif label is None:
                    dropped[f"{a['type']} without label"] += 1
                elif not 0 <= label < n_labels:
                    dropped[f"{a['type']} with label_id {label} outside the categories"] += 1
                else:
                    keep.append(a)
            it["annotations"] = keep
        (filt / "annotations" / f.name).write_text(json.dumps(d))
    note(f"dropped from the copy (CVAT cannot import them): {dict(dropped)}")
    media = work / f"dm_{name}_media"
    media.mkdir()
    for item_id, size in items.items():
        h, w = size if size else (8, 8)
        Image.new("RGB", (w, h), (100, 100, 100)).save(media / f"{item_id}.png")
    cats = json.loads(next((src / "annotations").glob("*.json")).read_text())["categories"]
    labels = [{"name": l["name"]} for l in cats["label"]["labels"]]
    tid = fd.create_task(client, f"sample dm {name}", labels, files=sorted(media.iterdir()))
    used = import_or_filtered(http, tid, "Datumaro 1.0", fd.zip_dir(src, work / f"dm_{name}.zip"),
                              fd.zip_dir(filt, work / f"dm_{name}_filtered.zip"), what)
    got, exp = stored_and_summary(http, shared, tid, "Datumaro 1.0", filt, len(items))
    check(f"{what} ({used}): stored annotations = Datumaro's ({sum(exp.values())})", got == exp,
          diff_counts(exp, got))


def sample_yolo(http, client, shared: Path, work: Path, name: str):
    src = shared / f"testdata/datumaro/yolo_1.1/yolo_dataset/{name}"
    what = f"sample YOLO 1.1 '{name}'"
    print(f"\n-- {what}", flush=True)
    names = [l.strip() for l in (src / "obj.names").read_text().splitlines() if l.strip()]
    images = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    tid = fd.create_task(client, f"sample yolo {name}", [{"name": n} for n in names], files=images)
    fd.import_file(http, tid, "YOLO 1.1", fd.zip_dir(src, work / f"yolo_{name}.zip"))
    got, exp = stored_and_summary(http, shared, tid, "YOLO 1.1", src, len(images))
    check(f"{what}: stored annotations = Datumaro's ({sum(exp.values())})", got == exp,
          diff_counts(exp, got))


def part2(srv, http, client, shared: Path, work: Path, exporters: list, importers: list):
    print("\n== Part 2: samples Datumaro 1.13 reads, imported through the API", flush=True)
    cvat = IMPORT_EXPECTATIONS["CVAT 1.1"] if "CVAT 1.1" in importers else []
    for sample, fn in (("for_images", sample_cvat_images), ("for_video", sample_cvat_video)):
        if sample not in cvat:
            continue
        try:
            if fn is sample_cvat_video:
                fn(http, client, shared, work, exporters)
            else:
                fn(http, client, shared, work)
        except Exception as e:  # a failed import is a failed check, not the end of the run
            check(fn.__name__, False, f"{type(e).__name__}: {e}")
    for name in (IMPORT_EXPECTATIONS["Datumaro 1.0"] if "Datumaro 1.0" in importers else []):
        try:
            sample_datumaro(http, client, shared, work, name)
        except Exception as e:
            check(f"sample Datumaro '{name}'", False, f"{type(e).__name__}: {e}")
    for name in (IMPORT_EXPECTATIONS["YOLO 1.1"] if "YOLO 1.1" in importers else []):
        try:
            sample_yolo(http, client, shared, work, name)
        except Exception as e:
            check(f"sample YOLO 1.1 '{name}'", False, f"{type(e).__name__}: {e}")
    if "CVAT for video 1.1" in exporters and "for_video" not in cvat:
        check("CVAT for video 1.1 export", False, "its expectation needs the CVAT 1.1 importer (the for_video sample)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="keep exports, samples and the server log here")
    ap.add_argument("--shared", type=Path, default=None, help="the shared/ directory")
    args = ap.parse_args()
    shared = args.shared or next(p for p in (fd.REPO.parent / "shared", Path("/work/shared")) if p.exists())
    import datumaro

    print(f"datumaro {datumaro.__version__}, server {fd.server_bin()}, shared {shared}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="datumaro-check-")) if args.keep is None else args.keep
    if args.keep is not None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    t0 = time.perf_counter()
    srv = fd.Server(log_path=work / "server.log")
    try:
        client = srv.client()
        http = fd.Http(srv)
        exporters, importers = registry(http)
        try:
            (work / "part1").mkdir()
            part1(srv, http, client, shared, work / "part1", exporters)
        except Exception as e:
            check("part 1", False, f"{type(e).__name__}: {e}")
        (work / "part2").mkdir()
        part2(srv, http, client, shared, work / "part2", exporters, importers)
    finally:
        srv.stop()
    failed = [r for r in RESULTS if not r[1]]
    for name, _, detail in failed:
        print(f"  FAILED: {name}: {detail}")
    if args.keep is None and not failed:
        shutil.rmtree(work, ignore_errors=True)
        where = "--keep DIR keeps the exports and the server log"
    else:
        where = f"exports and samples in {work}, server log {work / 'server.log'}"
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    print(f"datumaro-check: {time.perf_counter() - t0:.1f} s; {where}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
