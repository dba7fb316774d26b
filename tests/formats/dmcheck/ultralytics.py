"""The Ultralytics YOLO family: exports of both tasks with and without images, every sample of
the family imported.

PyPI Datumaro 1.13 reads only the detection layout (its `yolo_ultralytics` importer, which has no
track ids); the Segmentation, Oriented Bounding Boxes, Pose and Classification exports and the
Detection Track export are checked structurally in Python against the task (data.yaml, the subset
list, the label lines per class, labels.json), and their samples are compared with the counts the
samples' README lists (read by CVAT's fork), each with a note."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

from .common import ExportTask, Env, check, diff_counts, fd, note, stored_and_summary, summary
from .yolo import blank_images_for_yolo

DET = "Ultralytics YOLO Detection 1.0"
TRACK = "Ultralytics YOLO Detection Track 1.0"
SEG = "Ultralytics YOLO Segmentation 1.0"
OBB = "Ultralytics YOLO Oriented Bounding Boxes 1.0"
POSE = "Ultralytics YOLO Pose 1.0"
CLS = "Ultralytics YOLO Classification 1.0"

EXPORTS = {
    DET: "both export tasks, with and without images, read by Datumaro (boxes only)",
    TRACK: "both export tasks, with and without images: label lines and track ids checked in Python",
    SEG: "both export tasks, with and without images: polygons per label checked in Python",
    OBB: "both export tasks, with and without images: boxes per label checked in Python",
    POSE: "both export tasks, with and without images: data.yaml and (no) skeleton lines in Python",
    CLS: "both export tasks, with and without images: labels.json and images checked in Python",
}
DATA = "testdata/datumaro"
IMPORTS = {
    DET: [f"ultralytics_yolo_detection_1.0/yolo_dataset/{n}" for n in
          ("yolov8_detection", "yolov8_detection_with_list_of_imgs",
           "yolov8_detection_with_list_of_names", "yolov8_detection_with_subset_txt")],
    SEG: ["ultralytics_yolo_segmentation_1.0/yolo_dataset/yolov8_segmentation"],
    OBB: ["ultralytics_yolo_obb_1.0/yolo_dataset/yolov8_oriented_boxes"],
    POSE: ["ultralytics_yolo_pose_1.0/yolo_dataset/yolov8_pose",
           "ultralytics_yolo_pose_1.0/yolo_dataset/yolov8_pose_two_values_per_point"],
    CLS: ["ultralytics_yolo_classification_1.0/yolo_dataset/yolov8_classification"],
}
# The samples' README counts (CVAT's fork reads them; PyPI 1.13 cannot), as `type:label`.
README_COUNTS = {
    "yolov8_segmentation": Counter({"polygon:label_2": 1, "polygon:label_4": 1}),
    "yolov8_oriented_boxes": Counter({"bbox:label_2": 1, "bbox:label_4": 1}),
    "yolov8_pose": Counter({"points:p0": 1, "points:p1": 1, "points:p2": 1}),
    "yolov8_pose_two_values_per_point": Counter({"points:p0": 1, "points:p1": 1, "points:p2": 1}),
    "yolov8_classification": Counter({"label:label_0": 2, "label:label_1": 1}),
}
IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def only(c: Counter, kind: str) -> Counter:
    return Counter({k: v for k, v in c.items() if k.startswith(f"{kind}:")})


def rename(c: Counter, kind: str) -> Counter:
    return Counter({f"{kind}:{k.split(':', 1)[1]}": v for k, v in c.items()})


def read_yaml(p: Path) -> dict:
    import yaml

    return yaml.safe_load(p.read_text())


def label_lines(d: Path, subset: str = "train") -> list[tuple[str, list[str]]]:
    """(label file stem, fields) of every label line of the export."""
    out = []
    for f in sorted((d / "labels" / subset).rglob("*.txt")):
        for line in f.read_text().splitlines():
            if line.split():
                out.append((f.stem, line.split()))
    return out


def structural(t: ExportTask, fmt: str, d: Path, save: bool, kind: str, expected: Counter,
               fields: set | None, track_ids: int | None = None):
    """data.yaml, the subset list and the label lines of an export against the task."""
    what = f"{fmt}, save_images={save} ({t.kind} task)"
    cfg = read_yaml(d / "data.yaml")
    names = cfg["names"]
    want_names = t.label_names if fmt != POSE else []
    check(f"{what}: data.yaml names = the task's classes in order",
          [names[i] for i in sorted(names)] == want_names, f"got {names}")
    check(f"{what}: data.yaml path and subset list", cfg.get("path") == "." and cfg.get("train") == "train.txt",
          f"got {cfg}")
    listed = [l for l in (d / "train.txt").read_text().splitlines() if l.strip()]
    check(f"{what}: train.txt lists every frame", len(listed) == t.size, f"{len(listed)} of {t.size}")
    images = [p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTS]
    check(f"{what}: images", len(images) == (t.size if save else 0), f"{len(images)} images")
    if fmt == POSE:
        check(f"{what}: kpt_shape = [0, 3] (no skeleton labels)", cfg.get("kpt_shape") == [0, 3],
              f"got {cfg.get('kpt_shape')}")
    lines = label_lines(d)
    got = Counter(f"{kind}:{want_names[int(f[0])]}" for _, f in lines if int(f[0]) < len(want_names))
    check(f"{what}: {kind} lines per label ({sum(expected.values())})", got == expected,
          diff_counts(expected, got))
    if fields is not None:
        bad = [f for _, f in lines if len(f) not in fields]
        check(f"{what}: values per line in {sorted(fields)}", not bad, f"{bad[:3]}")
    if track_ids is not None:
        ids = {f[5] for _, f in lines if len(f) == 6}
        check(f"{what}: distinct track ids ({track_ids})", len(ids) == track_ids, f"got {sorted(ids)}")
    coords_ok = all(abs(float(v)) < 10 for _, f in lines for v in f[1:5])
    check(f"{what}: coordinates normalised", coords_ok)


def check_exports(tasks: list[ExportTask], exporters: list[str]):
    for t in tasks:
        full = t.counts()
        boxes = only(full, "bbox")
        for save in (True, False):
            if DET in exporters:
                what = f"{DET}, save_images={save}"
                d = t.export(DET, save)
                if not save:
                    note("Datumaro's reader needs image sizes: reading the export without images with "
                         "blank placeholders of the task's frame sizes")
                    blank_images_for_yolo(d, t.sizes)
                note("Datumaro 1.13 lists only the frames with a label file as items; CVAT's exporter "
                     "writes none for a frame without lines")
                s = summary(t.env.shared, DET, d, items=True)
                label_files = len(list((d / "labels" / "train").rglob("*.txt")))
                t.verify(what, s, boxes, tracks_expected=0, with_media=True, items=label_files)
                check(f"{what} ({t.kind} task): train.txt lists every frame",
                      len((d / "train.txt").read_text().split()) == t.size)
            if TRACK in exporters:
                d = t.export(TRACK, save)
                rect_tracks = sum(1 for tr in t.doc["tracks"] if tr["shapes"][0]["type"] == "rectangle")
                note("Datumaro 1.13 has no reader of track ids in Ultralytics lines: checked in Python")
                structural(t, TRACK, d, save, "bbox", boxes, {5, 6}, track_ids=rect_tracks)
            if SEG in exporters:
                d = t.export(SEG, save)
                note("masks (and ellipses) are not converted to polygons (CVAT's masks_to_polygons): "
                     f"{sum(only(full, 'mask').values())} masks not written; Datumaro 1.13 cannot read "
                     "the layout: checked in Python")
                structural(t, SEG, d, save, "polygon", only(full, "polygon"), None)
            if OBB in exporters:
                d = t.export(OBB, save)
                note("Datumaro 1.13 cannot read oriented boxes: checked in Python")
                structural(t, OBB, d, save, "bbox", boxes, {9})
            if POSE in exporters:
                d = t.export(POSE, save)
                note("the export tasks have no skeletons (Datumaro 1.13 has no skeleton type): "
                     "data.yaml and empty label lists checked in Python")
                structural(t, POSE, d, save, "skeleton", Counter(), None)
            if CLS in exporters:
                d = t.export(CLS, save)
                check_classification(t, d, save, only(full, "label"))


def check_classification(t: ExportTask, d: Path, save: bool, tags: Counter):
    what = f"{CLS}, save_images={save} ({t.kind} task)"
    note("Datumaro 1.13 cannot read the classification layout: checked in Python")
    info = json.loads((d / "train" / "labels.json").read_text())
    check(f"{what}: labels.json has every frame", len(info) == t.size, f"{len(info)} of {t.size}")
    got = Counter(f"label:{l}" for v in info.values() for l in v["labels"])
    check(f"{what}: tags per label ({sum(tags.values())})", got == tags, diff_counts(tags, got))
    images = [p for p in (d / "train").rglob("*") if p.suffix.lower() in IMAGE_EXTS]
    want = sum(max(1, len(v["labels"])) for v in info.values()) if save else 0
    check(f"{what}: one image per tag (no_label/ for untagged frames)", len(images) == want,
          f"{len(images)} images, expected {want}")
    if save:
        paths_ok = all((d / "train" / v["path"]).is_file() for v in info.values())
        check(f"{what}: labels.json paths exist", paths_ok)


# --------------------------------------------------------------------------------------------
# Samples

SKELETON_SVG = "".join(
    f'<circle r="1.5" cx="{10 * (i + 1)}" cy="{10 * (i + 1)}" data-type="element node" '
    f'data-node-id="{i + 1}" data-label-name="p{i}"></circle>' for i in range(3))


def sample_labels(src: Path, fmt: str) -> list:
    if fmt == CLS:
        return [{"name": p.name} for p in sorted((src / "train").iterdir()) if p.is_dir()]
    names = read_yaml(src / "data.yaml")["names"]
    names = names if isinstance(names, list) else [names[k] for k in sorted(names)]
    if fmt == POSE:
        return [{"name": n, "type": "skeleton", "svg": SKELETON_SVG,
                 "sublabels": [{"name": f"p{i}", "type": "points"} for i in range(3)]} for n in names]
    return [{"name": n} for n in names]


def sample(env: Env, fmt: str, rel: str):
    src = env.shared / DATA / rel
    name = Path(rel).name
    work = env.sub(f"ul_{name}")
    what = f"sample {fmt} '{name}'"
    print(f"\n-- {what}", flush=True)
    images = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if fmt == CLS:
        # Item ids are <label>/<image> below the subset: frames named so (a zip keeps the folders).
        media = work / "media.zip"
        with zipfile.ZipFile(media, "w") as z:
            for p in images:
                z.write(p, p.relative_to(src / "train").as_posix())
        files = [media]
    else:
        files = images
    tid = fd.create_task(env.client, f"sample {name}", sample_labels(src, fmt), files=files)
    # The sample's annotations only (images are not needed: sizes come from the task).
    copy = work / "sample"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns(*(f"*{e}" for e in IMAGE_EXTS))
                    if fmt != CLS else None)
    fd.import_file(env.http, tid, fmt, fd.zip_dir(copy, work / "sample.zip"))
    if fmt == DET:
        got, exp = stored_and_summary(env.http, env.shared, tid, fmt, src, len(images))
        check(f"{what}: stored annotations = Datumaro's ({sum(exp.values())})", got == exp,
              diff_counts(exp, got))
        return
    from .common import LabelMap, datumaro_counts

    lm = LabelMap(fd.labels_by_name(env.http, tid))
    doc = fd.get_annotations(env.http, tid)
    got = datumaro_counts(doc, lm, len(images))
    exp = README_COUNTS[name]
    note(f"Datumaro 1.13 cannot read {fmt}: compared with the sample README's counts")
    check(f"{what}: stored annotations = the README's ({sum(exp.values())})", got == exp,
          diff_counts(exp, got))
    if fmt == OBB:
        rot = [s.get("rotation", 0) for s in doc["shapes"]]
        check(f"{what}: the boxes are rotated", all(abs(r) > 1e-3 for r in rot) and len(rot) == 2,
              f"rotations {rot}")


def check_imports(env: Env, importers: list[str], exporters: list[str]):
    for fmt, samples in IMPORTS.items():
        if fmt not in importers:
            continue
        for rel in samples:
            try:
                sample(env, fmt, rel)
            except Exception as e:  # a failed import is a failed check, not the end of the run
                check(f"sample {fmt} '{Path(rel).name}'", False, f"{type(e).__name__}: {e}")
