"""COCO 1.0 and COCO Keypoints 1.0: both export tasks with and without images read back by PyPI
Datumaro's `coco_instances` / `coco_person_keypoints` readers, a task with a skeleton label for
COCO Keypoints, and the `coco_instances` and `coco_person_keypoints` samples imported.

What the format carries, as dataset-summary (PyPI Datumaro 1.13) reads it back:
* COCO 1.0 writes boxes, polygons and masks (ellipses as masks); PyPI 1.13 reads one extra bbox
  per annotation with a segmentation (CVAT's fork does not). Polylines, points and tags are not
  COCO instances.
* COCO Keypoints writes skeletons only; PyPI 1.13 reads each as one `points` annotation of the
  skeleton label plus a bbox, and only the labels without a parent.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from .common import (ExportTask, Env, check, diff_counts, fd, import_or_filtered, note,
                     stored_and_summary, summary)

EXPORTS = {
    "COCO 1.0": "both export tasks, with and without images (boxes, polygons, masks, ellipses as masks)",
    "COCO Keypoints 1.0": "both export tasks (no skeletons: nothing but categories and images), and a "
                          "task with a skeleton label",
}
IMPORTS = {"COCO 1.0": ["coco_instances"], "COCO Keypoints 1.0": ["coco_person_keypoints"]}

SAMPLES = {
    "coco_instances": ("COCO 1.0", "coco_1.0/coco_dataset/coco_instances"),
    "coco_person_keypoints": ("COCO Keypoints 1.0", "coco_keypoints_1.0/coco_dataset/coco_person_keypoints"),
}


def with_images_dir(d: Path, save: bool) -> Path:
    """PyPI Datumaro's COCO reader wants an `images/` directory even without images (CVAT's zips
    have none then: they hold files only)."""
    if not save and not (d / "images").exists():
        note("no images: an empty images/ directory made for PyPI Datumaro's reader")
        (d / "images").mkdir()
    return d


def instances_expected(t: ExportTask) -> Counter:
    """What PyPI 1.13 reads of the COCO 1.0 export: boxes as bboxes; polygons, masks and ellipses
    (as masks) each with the bbox it adds."""
    out = Counter()
    for k, v in t.counts().items():
        kind, label = k.split(":", 1)
        if kind == "bbox":
            out[k] += v
        elif kind in ("polygon", "mask", "ellipse"):
            out[f"{'polygon' if kind == 'polygon' else 'mask'}:{label}"] += v
            out[f"bbox:{label}"] += v
    return out


def check_instances(tasks: list[ExportTask]):
    for t in tasks:
        expected = instances_expected(t)
        dropped = {k: v for k, v in t.counts().items()
                   if k.split(":", 1)[0] not in ("bbox", "polygon", "mask", "ellipse")}
        for save in (False, True):
            what = f"COCO 1.0, save_images={save}"
            d = t.export("COCO 1.0", save)
            check(f"{what} ({t.kind} task): one annotation file",
                  [p.name for p in (d / "annotations").iterdir()] == ["instances_default.json"],
                  str(list((d / "annotations").iterdir())))
            note(f"not COCO instances, not written: {dropped}; ellipses are written as masks; "
                 "PyPI Datumaro 1.13 reads an extra bbox per segmentation")
            s = summary(t.env.shared, "COCO 1.0", with_images_dir(d, save), items=True)
            tracks = len(t.doc["tracks"])
            t.verify(what, s, expected, tracks_expected=tracks, with_media=save)


def check_keypoints_plain(tasks: list[ExportTask]):
    for t in tasks:
        for save in (False, True):
            what = f"COCO Keypoints 1.0, save_images={save}"
            d = t.export("COCO Keypoints 1.0", save)
            note("the synthetic task has no skeletons: the file has categories and images only")
            s = summary(t.env.shared, "COCO Keypoints 1.0", with_images_dir(d, save), items=True)
            t.verify(what, s, Counter(), tracks_expected=0, with_media=save)


SKELETON_SVG = ('<line x1="10" y1="10" x2="30" y2="30" data-type="edge" data-node-from="1" data-node-to="2">'
                '</line><line x1="30" y1="30" x2="50" y2="10" data-type="edge" data-node-from="2" '
                'data-node-to="3"></line>'
                '<circle r="0.75" cx="10" cy="10" data-type="element node" data-element-id="1" '
                'data-node-id="1" data-label-name="head"></circle>'
                '<circle r="0.75" cx="30" cy="30" data-type="element node" data-element-id="2" '
                'data-node-id="2" data-label-name="hand"></circle>'
                '<circle r="0.75" cx="50" cy="10" data-type="element node" data-element-id="3" '
                'data-node-id="3" data-label-name="foot"></circle>')


def check_keypoints_skeletons(env: Env):
    """A task with a skeleton label `body` (head, hand, foot) and a plain label `car`: three
    skeletons on two frames and a box; COCO Keypoints writes the skeletons."""
    from PIL import Image

    what = "COCO Keypoints 1.0, skeleton task"
    print(f"\n-- {what}", flush=True)
    media = env.sub("coco_kp_media")
    frames = [("k0.png", 64, 48), ("k1.png", 80, 60)]
    for name, w, h in frames:
        Image.new("RGB", (w, h), (60, 60, 60)).save(media / name)
    labels = [{"name": "body", "type": "skeleton", "svg": SKELETON_SVG,
               "sublabels": [{"name": n, "type": "points"} for n in ("head", "hand", "foot")]},
              {"name": "car"}]
    tid = fd.create_task(env.client, "coco keypoints skeletons", labels,
                         files=[media / n for n, _, _ in frames])
    lm = fd.labels_by_name(env.http, tid)
    body, sub = lm["body"]["id"], lm["body"]["sublabels"]

    def skeleton(frame, pts, outside=()):
        return {"type": "skeleton", "label_id": body, "frame": frame, "points": [], "elements": [
            {"type": "points", "label_id": sub[n], "frame": frame, "points": list(p),
             "outside": n in outside, "occluded": n == "hand"} for n, p in pts.items()]}

    doc = {"tags": [], "tracks": [], "shapes": [
        skeleton(0, {"head": (5, 5), "hand": (10, 12), "foot": (20, 30)}),
        skeleton(0, {"head": (25, 5), "hand": (30, 12), "foot": (40, 30)}, outside=("foot",)),
        skeleton(1, {"head": (1, 2), "hand": (3, 4), "foot": (5, 6)}),
        {"type": "rectangle", "label_id": lm["car"]["id"], "frame": 1, "points": [1, 1, 9, 9]},
    ]}
    fd.put_annotations(env.http, tid, doc)
    z = env.work / "coco_kp_skeletons.zip"
    fd.export(env.http, tid, "COCO Keypoints 1.0", z, save_images=False)
    d = fd.unzip(z, env.work / "coco_kp_skeletons")
    ann = json.loads((d / "annotations" / "person_keypoints_default.json").read_text())
    cats = {c["name"]: c for c in ann["categories"]}
    check(f"{what}: categories are the labels without a parent", list(cats) == ["body", "car"],
          str(list(cats)))
    check(f"{what}: the skeleton's points and joints",
          cats.get("body", {}).get("keypoints") == ["head", "hand", "foot"]
          and cats.get("body", {}).get("skeleton") == [[1, 2], [2, 3]], str(cats.get("body")))
    vis = [a["keypoints"][2::3] for a in ann["annotations"]]
    check(f"{what}: visibility 2 visible, 1 occluded, 0 outside",
          vis == [[2, 1, 2], [2, 1, 0], [2, 1, 2]], str(vis))
    s = summary(env.shared, "COCO Keypoints 1.0", with_images_dir(d, False), items=True)
    got = Counter(s["annotations_by_type_label"])
    expected = Counter({"points:body": 3, "bbox:body": 3})
    note("PyPI Datumaro 1.13 reads each skeleton as one points annotation and a bbox; the car box "
         "is not a skeleton and is not written")
    check(f"{what}: items", s["items"] == 2, f"got {s['items']}")
    check(f"{what}: annotations by type:label ({sum(expected.values())})", got == expected,
          diff_counts(expected, got))
    # And back: three skeletons of three points each, the box dropped.
    tid2 = fd.create_task(env.client, "coco keypoints skeletons back", labels,
                          files=[media / n for n, _, _ in frames])
    fd.import_file(env.http, tid2, "COCO Keypoints 1.0", z)
    back = fd.get_annotations(env.http, tid2)
    kinds = Counter(sh["type"] for sh in back["shapes"])
    els = sum(len(sh.get("elements", [])) for sh in back["shapes"])
    check(f"{what}: imported back as 3 skeletons of 3 points", kinds == Counter({"skeleton": 3}) and els == 9,
          f"{dict(kinds)}, {els} elements")


def check_exports(tasks: list[ExportTask], exporters: list[str]):
    if "COCO 1.0" in exporters:
        check_instances(tasks)
    if "COCO Keypoints 1.0" in exporters:
        check_keypoints_plain(tasks)
        if tasks:
            check_keypoints_skeletons(tasks[0].env)


def sample_files(src: Path):
    return sorted((src / "annotations").glob("*.json"))


def sample(env: Env, name: str):
    fmt, rel = SAMPLES[name]
    src = env.shared / "testdata/datumaro" / rel
    work = env.sub(f"coco_{name}")
    what = f"sample {fmt} '{name}'"
    print(f"\n-- {what}", flush=True)
    keypoints = fmt == "COCO Keypoints 1.0"
    images = sorted(p for p in (src / "images").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    cats, expected = {}, Counter()
    filt = work / "filtered"
    shutil.copytree(src, filt)
    dropped = Counter()
    for f in sample_files(src):
        d = json.loads(f.read_text())
        for c in d["categories"]:
            cats.setdefault(c["name"], c.get("keypoints") or [])
        by_id = {c["id"]: c for c in d["categories"]}
        keep = []
        for a in d["annotations"]:
            c = by_id[a["category_id"]]
            seg = a.get("segmentation")
            if keypoints:
                if not c.get("keypoints"):
                    dropped["skeleton of a category without keypoint names"] += 1
                    continue
                if seg:
                    dropped["segmentation with a skeleton label"] += 1
                    a["segmentation"] = []
                for n in c["keypoints"]:
                    expected[f"points:{n}"] += 1
            elif seg:
                expected[f"{'mask' if isinstance(seg, dict) else 'polygon'}:{c['name']}"] += 1
            else:
                expected[f"bbox:{c['name']}"] += 1
            keep.append(a)
        d["annotations"] = keep
        (filt / "annotations" / f.name).write_text(json.dumps(d))
    if dropped:
        note(f"dropped from the copy (CVAT cannot store them): {dict(dropped)}")
    if keypoints:
        labels = [{"name": n, "type": "skeleton",
                   "sublabels": [{"name": p, "type": "points"} for p in pts]} if pts else {"name": n}
                  for n, pts in cats.items()]
    else:
        labels = [{"name": n} for n in cats]
    tid = fd.create_task(env.client, f"sample {name}", labels, files=images)
    used = import_or_filtered(env.http, tid, fmt, fd.zip_dir(src, work / "original.zip"),
                              fd.zip_dir(filt, work / "filtered.zip"), what)
    got, summ = stored_and_summary(env.http, env.shared, tid, fmt, filt, len(images))
    if keypoints:
        note("PyPI Datumaro 1.13 has no skeletons (it reads points + a bbox per annotation): the stored "
             "skeleton points are compared with the file's keypoint names; the README counts "
             "3 skeletons, 1 bbox, 1 polygon, 1 mask for CVAT's fork")
        pts = sum(v for k, v in summ.items() if k.startswith("points:"))
        check(f"{what}: PyPI reads one points annotation per kept skeleton",
              pts == sum(1 for f in sample_files(filt) for _ in json.loads(f.read_text())["annotations"]),
              str(dict(summ)))
    else:
        note("PyPI Datumaro 1.13 adds a bbox per segmentation; CVAT imports a box only when the "
             "segmentation is empty (README: 1 bbox, 1 polygon, 1 RLE mask)")
        extra = Counter()
        for k, v in expected.items():
            if not k.startswith("bbox:"):
                extra[f"bbox:{k.split(':', 1)[1]}"] += v
        check(f"{what}: dataset-summary = the file's annotations + PyPI's extra boxes",
              summ == expected + extra, diff_counts(expected + extra, summ))
    check(f"{what} ({used}): stored annotations ({sum(expected.values())})", got == expected,
          diff_counts(expected, got))


def check_imports(env: Env, importers: list[str], exporters: list[str]):
    for name, (fmt, _) in SAMPLES.items():
        if fmt not in importers:
            continue
        try:
            sample(env, name)
        except Exception as e:  # a failed import is a failed check, not the end of the run
            check(f"sample {fmt} '{name}'", False, f"{type(e).__name__}: {e}")
