"""PASCAL VOC 1.1 and Segmentation mask 1.1: both export tasks read back with and without images
(what each format carries; the losses are noted), and every VOC sample of shared/testdata imported
into a task made to fit it, compared with dataset-summary's counts after CVAT's masks_to_polygons."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .common import ExportTask, Env, LabelMap, check, datumaro_counts, diff_counts, fd, note, summary

VOC, SEGM = "PASCAL VOC 1.1", "Segmentation mask 1.1"
EXPORTS = {
    VOC: "both export tasks, with and without images (boxes, tags, masks and ellipses as masks)",
    SEGM: "both export tasks, with and without images (every segment as a mask instance)",
}
SAMPLES = {
    VOC: ["pascal_voc_1.1/voc_dataset/voc_dataset1", "pascal_voc_1.1/voc_dataset/voc_dataset2",
          "pascal_voc_1.1/voc_dataset/voc_dataset3"],
    SEGM: ["segmentation_mask_1.1/voc_dataset/voc_dataset1"],
}
IMPORTS = {k: [Path(p).name for p in v] for k, v in SAMPLES.items()}


def _labels(c: Counter, kinds: set) -> Counter:
    return Counter({k: v for k, v in c.items() if k.split(":", 1)[0] in kinds})


def expected_voc(t: ExportTask) -> Counter:
    """What Datumaro reads back of a VOC export: boxes, tags (labels), and CVAT masks and
    ellipses as one mask instance each."""
    c = t.counts()
    out = _labels(c, {"bbox", "label"})
    for k, v in c.items():
        kind, label = k.split(":", 1)
        if kind in ("mask", "ellipse"):
            out[f"mask:{label}"] += v
    return out


def expected_segm(t: ExportTask) -> Counter:
    """Segmentation mask: boxes, polygons, ellipses and masks as a mask instance each (no
    groups in the tasks); tags and the rest are not written."""
    out = Counter()
    for k, v in t.counts().items():
        kind, label = k.split(":", 1)
        if kind in ("bbox", "polygon", "ellipse", "mask"):
            out[f"mask:{label}"] += v
    return out


def check_exports(tasks: list[ExportTask], exporters: list[str]):
    for fmt, expect, kinds in ((VOC, expected_voc, "polygons, polylines and points"),
                               (SEGM, expected_segm, "tags, polylines, points and attributes")):
        if fmt not in exporters:
            continue
        note(f"{fmt}: {kinds} are not carried (Datumaro's VOC converter writes what is counted); "
             "track ids only as box attributes")
        for t in tasks:
            want = expect(t)
            labels = ["background"] + t.label_names
            if fmt == SEGM:
                labels = sorted(labels)
            for save in (False, True):
                what = f"{fmt}, save_images={save}"
                d = t.export(fmt, save)
                # PyPI Datumaro's `voc` needs ImageSets/Main, which voc_segmentation does not
                # write: the Segmentation mask export is read with its instance reader.
                s = summary(t.env.shared, "voc_instance_segmentation" if fmt == SEGM else fmt, d,
                            items=True)
                items = t.size
                if fmt == SEGM:
                    # Only items with masks or without any annotation are listed.
                    items = s["items"]
                    note(f"{what} ({t.kind} task): {items} of {t.size} items listed "
                         "(items with masks or without annotations, as Datumaro lists them)")
                # VOC keeps `track_id` among a box's attributes (CVAT adds it to track shapes).
                boxes = sum(1 for tr in t.doc["tracks"] if tr["shapes"][0]["type"] == "rectangle")
                t.verify(what, s, want, tracks_expected=boxes if fmt == VOC else 0, with_media=save and fmt == VOC,
                         items=items, labels=labels)
                if save and fmt == SEGM:
                    imgs = list((d / "JPEGImages").glob("*"))
                    check(f"{what} ({t.kind} task): every frame's image in JPEGImages/",
                          len(imgs) == t.size, f"{len(imgs)} images for {t.size} frames")


def cvat_summary(shared: Path, fmt: str, path: Path) -> dict:
    """dataset-summary with CVAT's import steps (masks_to_polygons)."""
    cmd = [sys.executable, str(shared / "tools" / "dataset-summary.py"), fmt, str(path), "--json",
           "--items", "--cvat"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dataset-summary --cvat {fmt!r} {path}: rc {r.returncode}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)


def sample(env: Env, fmt: str, rel: str):
    from PIL import Image

    src = env.shared / "testdata/datumaro" / rel
    name = Path(rel).name
    work = env.sub(f"voc_{fmt[:3]}_{name}")
    what = f"sample {fmt} '{rel.split('/')[0]}/{name}'"
    print(f"\n-- {what}", flush=True)
    s = cvat_summary(env.shared, fmt, src)
    # A task to fit: the sample's labels, a frame per item named and sized like it.
    labels = []
    for l in s["labels"]:
        if l["name"] not in [x["name"] for x in labels]:
            labels.append({"name": l["name"]})
    media = work / "media"
    media.mkdir(exist_ok=True)
    files = []
    for it in s["item_list"]:
        m = it.get("media") if isinstance(it.get("media"), dict) else {}
        size = m.get("size") or it.get("size") or (10, 20)
        h, w = size
        p = media / f"{it['id']}.jpg"
        Image.new("RGB", (w, h), (90, 90, 90)).save(p)
        files.append(p)
    tid = fd.create_task(env.client, f"sample voc {name}", labels, files=sorted(files))
    fd.import_file(env.http, tid, fmt, fd.zip_dir(src, work / "sample.zip"))
    lm = LabelMap(fd.labels_by_name(env.http, tid))
    got = datumaro_counts(fd.get_annotations(env.http, tid), lm, len(files))
    exp = Counter(s["annotations_by_type_label"])
    check(f"{what}: stored annotations = Datumaro's with masks_to_polygons ({sum(exp.values())})",
          got == exp, diff_counts(exp, got))


def check_imports(env: Env, importers: list[str], exporters: list[str]):
    for fmt, rels in SAMPLES.items():
        if fmt not in importers:
            continue
        for rel in rels:
            try:
                sample(env, fmt, rel)
            except Exception as e:
                check(f"sample {fmt} '{rel}'", False, f"{type(e).__name__}: {e}")
