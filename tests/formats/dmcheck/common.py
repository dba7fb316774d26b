"""The pieces every format's Datumaro check uses (tests/formats/datumaro_check.py runs them): the
check log, dataset-summary, counting annotations the way Datumaro 1.13 sees them, the synthetic
export tasks (an image task and a video task with every 2D shape type, tags and tracks), and the
helpers of sample imports.

A format's check is one module beside this one (cvat.py, yolo.py, ...) with
  EXPORTS = {exporter name: what is checked}     IMPORTS = {importer name: [sample names]}
  def check_exports(tasks: list[ExportTask], exporters: list[str]) -> None   (optional)
  def check_imports(env: Env, importers: list[str], exporters: list[str]) -> None  (optional)
An enabled format without an entry in some module's EXPORTS/IMPORTS fails the run.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
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


def disk_mask(x0: int, y0: int, d: int) -> list:
    """A tight CVAT mask: a disk of diameter d in the box (x0, y0)-(x0+d-1, y0+d-1)."""
    r = (d - 1) / 2
    bits = [1 if (x - r) ** 2 + (y - r) ** 2 <= r * r + 0.5 else 0 for y in range(d) for x in range(d)]
    return fd.cvat_mask(bits, x0, y0, d, d)


def synthetic_annotations(labels: dict, frames: list, empty_frame: int) -> dict:
    """Every 2D shape type, tags and two tracks (one with an outside gap, one closed) on
    `frames` ((name, w, h) each), nothing on `empty_frame`."""
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
    for f, (_, w, h) in enumerate(frames):
        if f == empty_frame:
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


def stored_and_summary(http, shared: Path, tid: int, fmt: str, src: Path, frames: int):
    """The counts of what task `tid` stored (as Datumaro sees them) and of dataset-summary's
    report of `src` read as `fmt`."""
    s = summary(shared, fmt, src)
    lm = LabelMap(fd.labels_by_name(http, tid))
    return (datumaro_counts(fd.get_annotations(http, tid), lm, frames),
            Counter(s["annotations_by_type_label"]))


# --------------------------------------------------------------------------------------------
# The export tasks

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

# The image task: several sizes, one frame without annotations.
IMAGE_FRAMES = [("f00.png", 64, 48), ("f01.png", 80, 60), ("f02.jpg", 96, 64), ("f03.png", 41, 30),
                ("f04.png", 64, 48), ("f05.png", 50, 50), ("f06.jpg", 120, 90), ("f07.png", 64, 48)]
IMAGE_EMPTY_FRAME = 5
# The video task: a generated 8-frame clip.
VIDEO_SIZE = (96, 64)
VIDEO_FRAMES = [(f"frame_{i:06d}", *VIDEO_SIZE) for i in range(8)]
VIDEO_EMPTY_FRAME = 2


@dataclass
class Env:
    """What a check needs of the run: the server, its HTTP and SDK clients, shared/, a work dir
    of its own."""
    srv: object
    http: object
    client: object
    shared: Path
    work: Path

    def sub(self, name: str) -> Path:
        d = self.work / name
        d.mkdir(parents=True, exist_ok=True)
        return d


@dataclass
class ExportTask:
    """A task with the synthetic annotations, uploaded with one PUT: `kind` "image" or "video"."""
    env: Env
    kind: str
    tid: int
    doc: dict
    lm: LabelMap
    frames: list  # (name, w, h)
    label_names: list = field(default_factory=lambda: [l["name"] for l in LABELS])

    @property
    def size(self) -> int:
        return len(self.frames)

    @property
    def sizes(self) -> dict:
        """Item stem -> (h, w)."""
        return {Path(n).stem: (h, w) for n, w, h in self.frames}

    def counts(self, **kw) -> Counter:
        """`type:label` counts Datumaro should see (datumaro_counts' options)."""
        return datumaro_counts(self.doc, self.lm, self.size, **kw)

    def export(self, fmt: str, save_images: bool) -> Path:
        """Exports the task as `fmt` and unzips it; returns the directory."""
        tag = f"{fmt}_{self.kind}_{save_images}".replace(" ", "_").replace(".", "_")
        z = self.env.work / f"{tag}.zip"
        t = fd.export(self.env.http, self.tid, fmt, z, save_images=save_images)
        print(f"   {fmt}, {self.kind} task, save_images={save_images}: {t['bytes']} bytes in "
              f"{t['total_s']:.2f} s", flush=True)
        return fd.unzip(z, self.env.work / tag)

    def verify(self, what: str, s: dict, expected: Counter, *, tracks_expected: int, with_media: bool,
               items: int | None = None, labels: list | None = None):
        """dataset-summary's report `s` has the task's items (or `items`), labels (or `labels`),
        `expected` annotations by type:label, `tracks_expected` track ids, the images when
        `with_media`, and the frame sizes per item when it lists them."""
        what = f"{what} ({self.kind} task)"
        n = self.size if items is None else items
        check(f"{what}: items", s["items"] == n, f"expected {n}, got {s['items']}")
        want_labels = self.label_names if labels is None else labels
        got_labels = [l["name"] for l in s["labels"]]
        check(f"{what}: labels", got_labels == want_labels, f"expected {want_labels}, got {got_labels}")
        got = Counter(s["annotations_by_type_label"])
        check(f"{what}: annotations by type:label ({sum(expected.values())})", got == expected,
              diff_counts(expected, got))
        check(f"{what}: track ids", s["distinct_track_ids"] == tracks_expected,
              f"expected {tracks_expected}, got {s['distinct_track_ids']}")
        if with_media:
            m = s["media"]
            check(f"{what}: every item has its image", m.get("with_data") == n, f"media {m}")
        if "item_list" in s:
            wrong = []
            sizes = self.sizes
            for it in s["item_list"]:
                exp = sizes.get(Path(it["id"]).name)
                got_size = it.get("media", {}).get("size") if isinstance(it.get("media"), dict) else it.get("size")
                if exp is not None and got_size is not None and tuple(got_size) != exp:
                    wrong.append((it["id"], got_size, exp))
            check(f"{what}: image sizes (h, w) per item", not wrong, f"(item, got, expected): {wrong}")


def _upload(env: Env, kind: str, tid: int, frames: list, empty: int) -> ExportTask:
    labels = fd.labels_by_name(env.http, tid)
    doc = synthetic_annotations(labels, frames, empty)
    fd.put_annotations(env.http, tid, doc)
    stored = fd.get_annotations(env.http, tid)
    n_up = (len(doc["tags"]), len(doc["shapes"]), len(doc["tracks"]))
    n_st = (len(stored["tags"]), len(stored["shapes"]), len(stored["tracks"]))
    check(f"{kind} task: PUT annotations stored everything (tags, shapes, tracks)", n_up == n_st,
          f"uploaded {n_up}, stored {n_st}")
    t = ExportTask(env, kind, tid, doc, LabelMap(labels), frames)
    full = t.counts()
    print(f"       {kind} task: {len(doc['shapes'])} shapes, {len(doc['tags'])} tags, {len(doc['tracks'])} "
          f"tracks; Datumaro should see {sum(full.values())} annotations: {dict(sorted(by_type(full).items()))}",
          flush=True)
    return t


def image_task(env: Env) -> ExportTask:
    from PIL import Image

    media = env.sub("image_media")
    for i, (name, w, h) in enumerate(IMAGE_FRAMES):
        Image.new("RGB", (w, h), (30 * i % 255, 90, 160)).save(media / name)
    tid = fd.create_task(env.client, "datumaro check images", LABELS,
                         files=[media / n for n, _, _ in IMAGE_FRAMES],
                         data={"sorting_method": "lexicographical"})
    return _upload(env, "image", tid, IMAGE_FRAMES, IMAGE_EMPTY_FRAME)


def video_task(env: Env) -> ExportTask:
    video = env.sub("video_media") / "clip.mp4"
    w, h = VIDEO_SIZE
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate=25",
                    "-frames:v", str(len(VIDEO_FRAMES)), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-g", "4", str(video)], check=True)
    tid = fd.create_task(env.client, "datumaro check video", LABELS, files=[video])
    return _upload(env, "video", tid, VIDEO_FRAMES, VIDEO_EMPTY_FRAME)
