"""Datumaro 1.0: both export tasks read back with and without images; the `diverse` and `v1.0`
samples imported."""

from __future__ import annotations

import json
import shutil
from collections import Counter

from .common import (ExportTask, Env, check, diff_counts, fd, import_or_filtered, note,
                     stored_and_summary, summary)

EXPORTS = {"Datumaro 1.0": "both export tasks, with and without images"}
IMPORTS = {"Datumaro 1.0": ["diverse", "v1.0"]}

IMPORTABLE_DM_TYPES = {"label", "bbox", "polygon", "polyline", "points", "ellipse", "mask"}


def check_exports(tasks: list[ExportTask], exporters: list[str]):
    if "Datumaro 1.0" not in exporters:
        return
    for t in tasks:
        for save in (False, True):
            what = f"Datumaro 1.0, save_images={save}"
            d = t.export("Datumaro 1.0", save)
            s = summary(t.env.shared, "Datumaro 1.0", d, items=True)
            t.verify(what, s, t.counts(), tracks_expected=len(t.doc["tracks"]), with_media=save)


def sample(env: Env, name: str):
    src = env.shared / f"testdata/datumaro/datumaro_1.0/datumaro_dataset/{name}"
    work = env.sub(f"dm_{name}")
    what = f"sample Datumaro '{name}'"
    print(f"\n-- {what}", flush=True)
    from PIL import Image

    # Frames named like the items (the first size the sample gives an item, else 8x8).
    items = {}
    filt = work / "filtered"
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
    media = work / "media"
    media.mkdir()
    for item_id, size in items.items():
        h, w = size if size else (8, 8)
        Image.new("RGB", (w, h), (100, 100, 100)).save(media / f"{item_id}.png")
    cats = json.loads(next((src / "annotations").glob("*.json")).read_text())["categories"]
    labels = [{"name": l["name"]} for l in cats["label"]["labels"]]
    tid = fd.create_task(env.client, f"sample dm {name}", labels, files=sorted(media.iterdir()))
    used = import_or_filtered(env.http, tid, "Datumaro 1.0", fd.zip_dir(src, work / "original.zip"),
                              fd.zip_dir(filt, work / "filtered.zip"), what)
    got, exp = stored_and_summary(env.http, env.shared, tid, "Datumaro 1.0", filt, len(items))
    check(f"{what} ({used}): stored annotations = Datumaro's ({sum(exp.values())})", got == exp,
          diff_counts(exp, got))


def check_imports(env: Env, importers: list[str], exporters: list[str]):
    if "Datumaro 1.0" not in importers:
        return
    for name in IMPORTS["Datumaro 1.0"]:
        try:
            sample(env, name)
        except Exception as e:  # a failed import is a failed check, not the end of the run
            check(f"sample Datumaro '{name}'", False, f"{type(e).__name__}: {e}")
