"""YOLO 1.1: boxes only (no tags, other shapes or track ids; the tasks have no rotated boxes),
both export tasks with and without images; the `yolo` sample imported."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .common import ExportTask, Env, check, diff_counts, fd, note, stored_and_summary, summary

EXPORTS = {"YOLO 1.1": "both export tasks, with and without images (boxes only)"}
IMPORTS = {"YOLO 1.1": ["yolo"]}


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


def check_exports(tasks: list[ExportTask], exporters: list[str]):
    if "YOLO 1.1" not in exporters:
        return
    for t in tasks:
        boxes = Counter({k: v for k, v in t.counts().items() if k.startswith("bbox:")})
        for save in (True, False):
            what = f"YOLO 1.1, save_images={save}"
            d = t.export("YOLO 1.1", save)
            if not save:
                check(f"{what} ({t.kind} task): no images in the zip",
                      not any(p.suffix.lower() in (".png", ".jpg") for p in d.rglob("*")))
                note("Datumaro's yolo reader needs image sizes: reading the export without images with "
                     "blank placeholders of the task's frame sizes")
                blank_images_for_yolo(d, t.sizes)
            s = summary(t.env.shared, "YOLO 1.1", d, items=True)
            t.verify(what, s, boxes, tracks_expected=0, with_media=True)


def sample(env: Env, name: str):
    src = env.shared / f"testdata/datumaro/yolo_1.1/yolo_dataset/{name}"
    work = env.sub(f"yolo_{name}")
    what = f"sample YOLO 1.1 '{name}'"
    print(f"\n-- {what}", flush=True)
    names = [l.strip() for l in (src / "obj.names").read_text().splitlines() if l.strip()]
    images = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    tid = fd.create_task(env.client, f"sample yolo {name}", [{"name": n} for n in names], files=images)
    fd.import_file(env.http, tid, "YOLO 1.1", fd.zip_dir(src, work / "sample.zip"))
    got, exp = stored_and_summary(env.http, env.shared, tid, "YOLO 1.1", src, len(images))
    check(f"{what}: stored annotations = Datumaro's ({sum(exp.values())})", got == exp,
          diff_counts(exp, got))


def check_imports(env: Env, importers: list[str], exporters: list[str]):
    if "YOLO 1.1" not in importers:
        return
    for name in IMPORTS["YOLO 1.1"]:
        try:
            sample(env, name)
        except Exception as e:
            check(f"sample YOLO 1.1 '{name}'", False, f"{type(e).__name__}: {e}")
