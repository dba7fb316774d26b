"""Annotations (spec §9–§12, §14, §15) through the SDK and the CLI: JSON CRUD
(`set_annotations`, `get_annotations`, `update_annotations` with CREATE/UPDATE/DELETE,
`remove_annotations`), the formats list, dataset export ("CVAT for images 1.1", "CVAT for video
1.1", "Datumaro 1.0", with and without images), import of those exports into a fresh task with
the same labels and images (compared modulo ids and `source`), a broken import (a failed request;
nothing changes), `cvat-cli task export-dataset` / `import-dataset`, and `TaskDataset` seeing the
shapes and tags per sample.

The labels are the suite's LABELS_SPEC: `car` (any shape; immutable select `color`, mutable
checkbox `parked`) and `person` (rectangles only, no attributes)."""

import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from compat_util import (
    LABELS_SPEC,
    NATURAL_ORDER,
    api_error,
    as_json,
    create_task,
    expect_api_error,
    open_image,
)
from test_08_cli import cli  # noqa: F401  (the cvat-cli runner fixture)

SIZE = len(NATURAL_ORDER)


def make_task(client, local_images, name: str):
    return create_task(
        client, {"name": name, "labels": LABELS_SPEC},
        [local_images[n] for n in reversed(NATURAL_ORDER)],
        data_params={"image_quality": 70, "sorting_method": "natural"},
        what=name,
    )


@pytest.fixture(scope="module")
def task(admin_client, local_images):
    t = make_task(admin_client, local_images, "compat annotations")
    yield t
    t.remove()


@pytest.fixture
def fresh_task(admin_client, local_images):
    """A new task with the same labels and images (for imports)."""
    t = make_task(admin_client, local_images, "compat annotations import")
    yield t
    t.remove()


# --------------------------------------------------------------------------------------------
# Helpers


class Ids:
    """Label and attribute ids of a task, by name."""

    def __init__(self, task):
        self.labels = {}
        self.attrs = {}
        self.label_names = {}
        self.attr_names = {}
        for label in task.get_labels():
            self.labels[label.name] = label.id
            self.label_names[label.id] = label.name
            for a in label.attributes:
                self.attrs[(label.name, a.name)] = a.id
                self.attr_names[a.id] = a.name

    def attr(self, label: str, name: str, value: str) -> dict:
        return {"spec_id": self.attrs[(label, name)], "value": value}

    def car_attrs(self, color: str = "blue", parked: str = "false") -> list:
        return [self.attr("car", "color", color), self.attr("car", "parked", parked)]


def labeled_data(ids: Ids, tags=(), shapes=(), tracks=()):
    """A LabeledDataRequest from plain dicts (label names in "label")."""
    from cvat_sdk import models

    def label_id(d):
        d = dict(d)
        d["label_id"] = ids.labels[d.pop("label")]
        return d

    def attrs(d):
        d = dict(d)
        if "attributes" in d:
            d["attributes"] = [models.AttributeValRequest(**a) for a in d["attributes"]]
        return d

    return models.LabeledDataRequest(
        tags=[models.LabeledImageRequest(**attrs(label_id(t))) for t in tags],
        shapes=[models.LabeledShapeRequest(**attrs(label_id(s))) for s in shapes],
        tracks=[
            models.LabeledTrackRequest(
                **attrs(label_id({k: v for k, v in t.items() if k != "shapes"})),
                shapes=[models.TrackedShapeRequest(**attrs(s)) for s in t["shapes"]],
            )
            for t in tracks
        ],
    )


def get(task) -> dict:
    """GET /api/tasks/{id}/annotations/ as plain JSON."""
    from cvat_sdk.api_client import exceptions

    try:
        return as_json(task.get_annotations())
    except exceptions.ApiException as e:
        raise AssertionError(f"task.get_annotations(): {api_error(e)}") from e


def _r(v) -> float:
    return round(float(v), 2)


def normalize(data: dict, ids: Ids) -> dict:
    """Annotations without ids and `source`, with label/attribute names for ids, points rounded
    to 0.01 (CVAT XML writes two decimals), sorted: comparable across tasks."""

    def attrs(lst):
        return tuple(sorted((ids.attr_names.get(a["spec_id"], a["spec_id"]), a["value"]) for a in lst or []))

    def shape(s, tracked=False):
        d = {
            "type": s["type"], "frame": s["frame"],
            "points": tuple(_r(p) for p in s.get("points") or []),
            "occluded": s.get("occluded", False), "outside": s.get("outside", False),
            "z_order": s.get("z_order", 0), "rotation": _r(s.get("rotation", 0.0)),
            "attributes": attrs(s.get("attributes")),
        }
        if not tracked:
            d.update(label=ids.label_names[s["label_id"]], group=s.get("group") or 0)
        return tuple(sorted(d.items()))

    tags = sorted(
        (t["frame"], ids.label_names[t["label_id"]], t.get("group") or 0, attrs(t.get("attributes")))
        for t in data.get("tags", [])
    )
    shapes = sorted(shape(s) for s in data.get("shapes", []))
    tracks = sorted(
        (t["frame"], ids.label_names[t["label_id"]], t.get("group") or 0, attrs(t.get("attributes")),
         tuple(sorted((shape(s, tracked=True) for s in t["shapes"]), key=lambda x: dict(x)["frame"])))
        for t in data.get("tracks", [])
    )
    return {"tags": tags, "shapes": shapes, "tracks": tracks}


def all_ids(data: dict) -> list:
    out = [a.get("id") for kind in ("tags", "shapes", "tracks") for a in data.get(kind, [])]
    out += [s.get("id") for t in data.get("tracks", []) for s in t["shapes"]]
    return out


def diff_message(what: str, expected: dict, got: dict) -> str:
    lines = [f"{what}: annotations differ (ids and source ignored)"]
    for kind in ("tags", "shapes", "tracks"):
        e, g = expected[kind], got[kind]
        if e != g:
            missing = [x for x in e if x not in g]
            extra = [x for x in g if x not in e]
            lines.append(f"  {kind}: expected {len(e)}, got {len(g)}")
            for x in missing[:5]:
                lines.append(f"    missing: {x}")
            for x in extra[:5]:
                lines.append(f"    unexpected: {x}")
    return "\n".join(lines)


def read_zip(path: Path) -> zipfile.ZipFile:
    data = Path(path).read_bytes()
    assert zipfile.is_zipfile(io.BytesIO(data)), (
        f"{path}: expected a zip, got {len(data)} bytes starting {data[:16]!r}"
    )
    z = zipfile.ZipFile(io.BytesIO(data))
    bad = z.testzip()
    assert bad is None, f"{path}: corrupt zip member {bad}"
    return z


def export(task, fmt: str, path: Path, include_images: bool) -> zipfile.ZipFile:
    from cvat_sdk.api_client import exceptions
    from cvat_sdk.core.exceptions import BackgroundRequestException

    try:
        task.export_dataset(fmt, path, include_images=include_images)
    except exceptions.ApiException as e:
        raise AssertionError(f"export_dataset({fmt!r}, include_images={include_images}): {api_error(e)}") from e
    except BackgroundRequestException as e:
        raise AssertionError(
            f"export_dataset({fmt!r}, include_images={include_images}): the request failed: {e}"
        ) from e
    return read_zip(path)


def import_annotations(task, fmt: str, path: Path):
    from cvat_sdk.api_client import exceptions
    from cvat_sdk.core.exceptions import BackgroundRequestException

    try:
        task.import_annotations(fmt, path)
    except exceptions.ApiException as e:
        raise AssertionError(f"import_annotations({fmt!r}, {path.name}): {api_error(e)}") from e
    except BackgroundRequestException as e:
        raise AssertionError(f"import_annotations({fmt!r}, {path.name}): the request failed: {e}") from e


# The annotation set of the export/import tests: every attribute given explicitly (an export
# fills missing ones with defaults), coordinates with two decimals at most.
def full_set(ids: Ids) -> dict:
    return dict(
        tags=[
            {"label": "car", "frame": 0, "attributes": ids.car_attrs("blue", "true")},
            {"label": "car", "frame": 3, "attributes": ids.car_attrs("red", "false")},
        ],
        shapes=[
            {"type": "rectangle", "label": "person", "frame": 0, "points": [1.5, 2.25, 20.0, 15.75],
             "z_order": 2, "rotation": 30.0},
            {"type": "rectangle", "label": "car", "frame": 1, "points": [0.0, 0.0, 10.0, 8.0],
             "occluded": True, "group": 1, "attributes": ids.car_attrs("red", "true")},
            {"type": "polygon", "label": "car", "frame": 1, "points": [2.0, 2.0, 12.0, 3.0, 7.5, 9.0],
             "group": 1, "attributes": ids.car_attrs("red", "true")},
            {"type": "polyline", "label": "car", "frame": 2, "points": [1.0, 1.0, 5.0, 6.0, 9.0, 2.0],
             "attributes": ids.car_attrs("blue", "false")},
            {"type": "points", "label": "car", "frame": 2, "points": [3.0, 4.0, 8.0, 9.0],
             "attributes": ids.car_attrs("blue", "false")},
            {"type": "ellipse", "label": "car", "frame": 4, "points": [20.0, 15.0, 30.0, 10.0],
             "attributes": ids.car_attrs("blue", "true")},
            # A 4x4 mask at (2, 3)-(5, 6): CVAT RLE over the box (row-major runs, zeros first),
            # then left, top, right, bottom. The box is tight (Datumaro imports re-tighten it).
            {"type": "mask", "label": "car", "frame": 0, "points": [2.0, 12.0, 2.0, 2.0, 3.0, 5.0, 6.0],
             "attributes": ids.car_attrs("red", "false")},
        ],
    )


# --------------------------------------------------------------------------------------------
# Formats list


def test_formats_list(admin_client):
    from cvat_sdk.api_client import exceptions

    try:
        formats, _ = admin_client.api_client.server_api.retrieve_annotation_formats()
    except exceptions.ApiException as e:
        raise AssertionError(f"GET /api/server/annotation/formats: {api_error(e)}") from e
    importers = {f.name for f in formats.importers}
    exporters = {f.name for f in formats.exporters}
    for name in ("CVAT 1.1", "Datumaro 1.0"):
        assert name in importers, f"importers: expected {name!r} among {sorted(importers)}"
    for name in ("CVAT for images 1.1", "CVAT for video 1.1", "Datumaro 1.0"):
        assert name in exporters, f"exporters: expected {name!r} among {sorted(exporters)}"
    for f in list(formats.importers) + list(formats.exporters):
        d = as_json(f)
        for key in ("name", "ext", "version", "enabled", "dimension"):
            assert key in d, f"format entry {d}: missing {key!r} (spec §10)"


# --------------------------------------------------------------------------------------------
# JSON CRUD (spec §9)


def test_set_and_get(task):
    ids = Ids(task)
    before = task.updated_date
    task.set_annotations(labeled_data(
        ids,
        tags=[{"label": "car", "frame": 0, "attributes": [ids.attr("car", "color", "blue")]}],
        shapes=[
            {"type": "rectangle", "label": "person", "frame": 1, "points": [1.0, 2.0, 10.0, 20.0]},
            {"type": "polygon", "label": "car", "frame": 0, "points": [1.0, 1.0, 9.0, 1.0, 5.0, 7.0]},
        ],
        tracks=[{
            "label": "car", "frame": 0,
            "shapes": [
                {"type": "rectangle", "frame": 0, "points": [0.0, 0.0, 5.0, 5.0]},
                {"type": "rectangle", "frame": 2, "points": [1.0, 1.0, 6.0, 6.0], "outside": True},
            ],
        }],
    ))
    got = get(task)
    assert (len(got["tags"]), len(got["shapes"]), len(got["tracks"])) == (1, 2, 1), (
        f"after set_annotations: expected 1 tag, 2 shapes, 1 track; got {got}"
    )
    for key in ("version", "tags", "shapes", "tracks"):
        assert key in got, f"LabeledData: expected key {key!r}, got {sorted(got)}"
    ids_seen = all_ids(got)
    assert all(isinstance(i, int) for i in ids_seen), f"ids must be integers, got {ids_seen}"
    top = [a["id"] for k in ("tags", "shapes", "tracks") for a in got[k]]
    assert len(set(top)) == len(top), f"annotation ids must be distinct, got {top}"

    tag = got["tags"][0]
    assert (tag["frame"], tag["label_id"], tag["source"], tag["group"]) == (0, ids.labels["car"], "manual", 0), (
        f"tag: expected frame 0, label car, source 'manual', group 0; got {tag}"
    )
    assert tag["attributes"] == [{"spec_id": ids.attrs[("car", "color")], "value": "blue"}], (
        f"tag attributes: got {tag['attributes']}"
    )
    rect = next(s for s in got["shapes"] if s["type"] == "rectangle")
    defaults = {"source": "manual", "group": 0, "occluded": False, "outside": False, "z_order": 0,
                "rotation": 0.0, "attributes": [], "frame": 1, "label_id": ids.labels["person"],
                "points": [1.0, 2.0, 10.0, 20.0]}
    wrong = {k: (v, rect.get(k, "<absent>")) for k, v in defaults.items() if rect.get(k, "<absent>") != v}
    assert not wrong, f"rectangle: defaults (expected, got): {wrong}\nfull shape: {rect}"
    assert rect.get("elements", []) == [], f"rectangle elements: expected [], got {rect.get('elements')}"
    track = got["tracks"][0]
    assert track["source"] == "manual" and track["group"] == 0, f"track: {track}"
    kf = [(s["frame"], s["points"], s["outside"]) for s in track["shapes"]]
    assert kf == [(0, [0.0, 0.0, 5.0, 5.0], False), (2, [1.0, 1.0, 6.0, 6.0], True)], (
        f"track keyframes (frame, points, outside): got {kf}"
    )

    task.fetch()
    assert task.updated_date > before, (
        f"TaskRead.updated_date must move forward on annotation changes (rule 9): "
        f"{before} -> {task.updated_date}"
    )


def test_update_create_update_delete(task):
    from cvat_sdk import models
    from cvat_sdk.core.proxies.annotations import AnnotationUpdateAction

    ids = Ids(task)
    task.set_annotations(labeled_data(
        ids,
        tags=[{"label": "car", "frame": 2, "attributes": ids.car_attrs()}],
        shapes=[{"type": "rectangle", "label": "person", "frame": 1, "points": [1.0, 2.0, 10.0, 20.0]}],
    ))
    start = get(task)
    rect, tag = start["shapes"][0], start["tags"][0]

    # CREATE: a polygon; the response is parsed by the SDK (schema-valid LabeledData).
    task.update_annotations(
        models.PatchedLabeledDataRequest(shapes=[models.LabeledShapeRequest(
            type="polygon", label_id=ids.labels["car"], frame=3, points=[1.0, 1.0, 8.0, 2.0, 4.0, 9.0],
            attributes=[models.AttributeValRequest(**a) for a in ids.car_attrs("red", "true")],
        )]),
        action=AnnotationUpdateAction.CREATE,
    )
    got = get(task)
    polys = [s for s in got["shapes"] if s["type"] == "polygon"]
    assert len(got["shapes"]) == 2 and len(polys) == 1, f"after CREATE: expected rectangle + polygon, got {got['shapes']}"
    poly = polys[0]
    assert isinstance(poly["id"], int) and poly["id"] not in (rect["id"], tag["id"]), (
        f"CREATE: the polygon needs a new id, got {poly['id']} (existing {rect['id']}, {tag['id']})"
    )
    assert (poly["frame"], poly["points"], poly["source"]) == (3, [1.0, 1.0, 8.0, 2.0, 4.0, 9.0], "manual"), poly

    # UPDATE: move the rectangle (same id).
    task.update_annotations(
        models.PatchedLabeledDataRequest(shapes=[models.LabeledShapeRequest(
            id=rect["id"], type="rectangle", label_id=ids.labels["person"], frame=1,
            points=[2.0, 3.0, 12.0, 22.0], occluded=True,
        )]),
        action=AnnotationUpdateAction.UPDATE,
    )
    got = get(task)
    moved = [s for s in got["shapes"] if s["id"] == rect["id"]]
    assert len(moved) == 1 and moved[0]["points"] == [2.0, 3.0, 12.0, 22.0] and moved[0]["occluded"] is True, (
        f"after UPDATE of shape {rect['id']}: expected points [2, 3, 12, 22], occluded; got {got['shapes']}"
    )
    assert len(got["shapes"]) == 2 and len(got["tags"]) == 1, f"UPDATE must not add or drop anything: {got}"

    # DELETE: the tag.
    task.update_annotations(
        models.PatchedLabeledDataRequest(tags=[models.LabeledImageRequest(
            id=tag["id"], label_id=tag["label_id"], frame=tag["frame"],
        )]),
        action=AnnotationUpdateAction.DELETE,
    )
    got = get(task)
    assert got["tags"] == [] and len(got["shapes"]) == 2, f"after DELETE of tag {tag['id']}: {got}"


def test_invalid_change_is_rejected_and_changes_nothing(task):
    from cvat_sdk import models
    from cvat_sdk.core.proxies.annotations import AnnotationUpdateAction

    ids = Ids(task)
    task.set_annotations(labeled_data(
        ids, shapes=[{"type": "rectangle", "label": "person", "frame": 1, "points": [1.0, 2.0, 10.0, 20.0]}],
    ))
    before = normalize(get(task), ids)
    good = models.LabeledShapeRequest(type="rectangle", label_id=ids.labels["person"], frame=0,
                                      points=[0.0, 0.0, 4.0, 4.0])
    # `person` is a rectangle label: a polygon is refused; the valid shape beside it is not kept.
    bad = models.LabeledShapeRequest(type="polygon", label_id=ids.labels["person"], frame=0,
                                     points=[0.0, 0.0, 4.0, 0.0, 2.0, 3.0])
    expect_api_error(
        lambda: task.update_annotations(models.PatchedLabeledDataRequest(shapes=[good, bad]),
                                        action=AnnotationUpdateAction.CREATE),
        range(400, 500), "PATCH ?action=create with a polygon on the rectangle-only label 'person'",
    )
    outside = models.LabeledShapeRequest(type="rectangle", label_id=ids.labels["person"], frame=SIZE,
                                         points=[0.0, 0.0, 4.0, 4.0])
    expect_api_error(
        lambda: task.update_annotations(models.PatchedLabeledDataRequest(shapes=[good, outside]),
                                        action=AnnotationUpdateAction.CREATE),
        range(400, 500), f"PATCH ?action=create with a shape on frame {SIZE} of a {SIZE}-frame task",
    )
    after = normalize(get(task), ids)
    assert after == before, diff_message("after two rejected PATCHes", before, after)


def test_remove_by_ids_then_all(task):
    ids = Ids(task)
    task.set_annotations(labeled_data(
        ids,
        tags=[{"label": "car", "frame": 0, "attributes": ids.car_attrs()}],
        shapes=[
            {"type": "rectangle", "label": "person", "frame": 1, "points": [1.0, 2.0, 10.0, 20.0]},
            {"type": "polygon", "label": "car", "frame": 0, "points": [1.0, 1.0, 9.0, 1.0, 5.0, 7.0]},
        ],
        tracks=[{"label": "car", "frame": 0, "shapes": [
            {"type": "rectangle", "frame": 0, "points": [0.0, 0.0, 5.0, 5.0]},
            {"type": "rectangle", "frame": 1, "points": [1.0, 1.0, 6.0, 6.0], "outside": True},
        ]}],
    ))
    got = get(task)
    rect = next(s for s in got["shapes"] if s["type"] == "rectangle")
    poly = next(s for s in got["shapes"] if s["type"] == "polygon")
    task.remove_annotations(ids=[rect["id"], got["tags"][0]["id"], got["tracks"][0]["id"]])
    left = get(task)
    assert [s["id"] for s in left["shapes"]] == [poly["id"]] and left["tags"] == [] and left["tracks"] == [], (
        f"remove_annotations(ids=[rect, tag, track]): expected only polygon {poly['id']} left, got {left}"
    )
    task.remove_annotations()
    empty = get(task)
    assert (empty["tags"], empty["shapes"], empty["tracks"]) == ([], [], []), (
        f"remove_annotations(): expected no annotations, got {empty}"
    )


# --------------------------------------------------------------------------------------------
# Export (spec §12)


@pytest.fixture(scope="module")
def annotated(task):
    """The task holding `full_set` (set once for the export tests)."""
    ids = Ids(task)
    task.set_annotations(labeled_data(ids, **full_set(ids)))
    return task, ids


def test_export_cvat_for_images(annotated, tmp_path):
    task, ids = annotated
    z = export(task, "CVAT for images 1.1", tmp_path / "no_images.zip", include_images=False)
    names = z.namelist()
    assert "annotations.xml" in names, f"expected annotations.xml in the zip, got {names}"
    assert [n for n in names if n.startswith("images/")] == [], f"include_images=False: image entries {names}"
    root = ET.fromstring(z.read("annotations.xml"))
    images = root.findall("image")
    assert [i.get("name") for i in images] == NATURAL_ORDER, (
        f"<image> names: expected {NATURAL_ORDER}, got {[i.get('name') for i in images]}"
    )
    counts = {t: len(root.findall(f"image/{t}")) for t in ("box", "polygon", "polyline", "points", "ellipse", "mask", "tag")}
    assert counts == {"box": 2, "polygon": 1, "polyline": 1, "points": 1, "ellipse": 1, "mask": 1, "tag": 2}, (
        f"element counts in annotations.xml: {counts}"
    )
    labels = [l.findtext("name") for l in root.iter("label")]
    assert labels == ["car", "person"], f"<meta> labels: expected car, person; got {labels}"

    zi = export(task, "CVAT for images 1.1", tmp_path / "with_images.zip", include_images=True)
    imgs = sorted(n for n in zi.namelist() if n.startswith("images/") and not n.endswith("/"))
    assert imgs == sorted(f"images/{n}" for n in NATURAL_ORDER), f"include_images=True: image entries {imgs}"
    for n in NATURAL_ORDER:
        w, h = open_image(zi.read(f"images/{n}")).size
        meta = next(i for i in images if i.get("name") == n)
        assert (str(w), str(h)) == (meta.get("width"), meta.get("height")), (
            f"images/{n}: size {w}x{h}, annotations.xml says {meta.get('width')}x{meta.get('height')}"
        )


def test_export_into_directory_uses_server_name(annotated, tmp_path):
    task, _ = annotated
    out = tmp_path / "dir"
    out.mkdir()
    task.export_dataset("CVAT for images 1.1", out, include_images=False)
    files = list(out.iterdir())
    assert len(files) == 1 and files[0].suffix == ".zip", f"export into a directory wrote {files}"
    read_zip(files[0])


def test_export_datumaro(annotated, tmp_path):
    task, ids = annotated
    z = export(task, "Datumaro 1.0", tmp_path / "dm.zip", include_images=False)
    names = z.namelist()
    assert "annotations/default.json" in names, f"expected annotations/default.json, got {names}"
    assert [n for n in names if n.startswith("images/")] == [], f"include_images=False: image entries {names}"
    doc = json.loads(z.read("annotations/default.json"))
    items = doc["items"]
    assert len(items) == SIZE, f"Datumaro items: expected {SIZE} (one per frame), got {len(items)}"
    label_names = [l["name"] for l in doc["categories"]["label"]["labels"]]
    assert label_names == ["car", "person"], f"Datumaro label categories: {label_names}"
    types = {}
    for it in items:
        for a in it["annotations"]:
            types[a["type"]] = types.get(a["type"], 0) + 1
    expected = {"label": 2, "bbox": 2, "polygon": 1, "polyline": 1, "points": 1, "ellipse": 1, "mask": 1}
    assert types == expected, f"Datumaro annotation types: expected {expected}, got {types}"

    zi = export(task, "Datumaro 1.0", tmp_path / "dm_images.zip", include_images=True)
    imgs = sorted(n for n in zi.namelist() if n.startswith("images/") and not n.endswith("/"))
    assert len(imgs) == SIZE and all(n.startswith("images/default/") for n in imgs), (
        f"Datumaro include_images=True: expected {SIZE} entries under images/default/, got {imgs}"
    )


def test_export_unknown_format_raises(annotated, tmp_path):
    task, _ = annotated
    expect_api_error(
        lambda: task.export_dataset("No Such Format 9.9", tmp_path / "x.zip", include_images=False),
        range(400, 500), "export_dataset with an unknown format",
    )


# --------------------------------------------------------------------------------------------
# Import (spec §11)


@pytest.mark.parametrize(
    "fmt, import_fmt, member",
    [
        ("CVAT for images 1.1", "CVAT 1.1", "annotations.xml"),  # the bare XML
        ("CVAT for images 1.1", "CVAT 1.1", None),  # the zip as exported
        ("Datumaro 1.0", "Datumaro 1.0", None),
    ],
    ids=["cvat-xml", "cvat-zip", "datumaro-zip"],
)
def test_export_import_round_trip(annotated, fresh_task, tmp_path, fmt, import_fmt, member):
    task, ids = annotated
    z = export(task, fmt, tmp_path / "export.zip", include_images=False)
    path = tmp_path / "export.zip"
    if member:
        path = tmp_path / member
        path.write_bytes(z.read(member))
    import_annotations(fresh_task, import_fmt, path)

    fresh_ids = Ids(fresh_task)
    got_raw = get(fresh_task)
    expected = normalize(get(task), ids)
    got = normalize(got_raw, fresh_ids)
    assert got == expected, diff_message(f"{fmt} export imported as {import_fmt!r} ({path.name})", expected, got)
    sources = {a.get("source") for k in ("tags", "shapes", "tracks") for a in got_raw[k]}
    assert sources <= {"file", "manual"}, f"imported annotations: unexpected sources {sources}"


@pytest.fixture
def video_source_task(admin_client, local_images):
    t = make_task(admin_client, local_images, "compat annotations tracks")
    yield t
    t.remove()


def test_video_format_round_trip_keeps_tracks(video_source_task, fresh_task, tmp_path):
    task = video_source_task
    ids = Ids(task)
    task.set_annotations(labeled_data(ids, tracks=[{
        "label": "car", "frame": 0, "attributes": [ids.attr("car", "color", "blue")],
        "shapes": [
            {"type": "rectangle", "frame": 0, "points": [0.0, 0.0, 5.0, 5.0],
             "attributes": [ids.attr("car", "parked", "false")]},
            {"type": "rectangle", "frame": 2, "points": [2.0, 2.0, 9.0, 9.0],
             "attributes": [ids.attr("car", "parked", "true")]},
            {"type": "rectangle", "frame": 4, "points": [2.0, 2.0, 9.0, 9.0], "outside": True,
             "attributes": [ids.attr("car", "parked", "true")]},
        ],
    }]))
    z = export(task, "CVAT for video 1.1", tmp_path / "video.zip", include_images=False)
    root = ET.fromstring(z.read("annotations.xml"))
    assert len(root.findall("track")) == 1, f"CVAT for video: expected 1 <track>, got {len(root.findall('track'))}"
    import_annotations(fresh_task, "CVAT 1.1", tmp_path / "video.zip")
    expected = normalize(get(task), ids)
    got = normalize(get(fresh_task), Ids(fresh_task))
    assert got == expected, diff_message("CVAT for video 1.1 export imported as 'CVAT 1.1'", expected, got)


def test_import_in_several_tus_patches(annotated, fresh_task, tmp_path, monkeypatch):
    """An annotation file over the TUS chunk size arrives in several PATCHes (here 1000-byte
    chunks instead of the SDK's 10 MiB, the same client code path)."""
    import cvat_sdk.core.uploading as uploading

    task, ids = annotated
    z = export(task, "CVAT for images 1.1", tmp_path / "e.zip", include_images=False)
    xml = tmp_path / "annotations.xml"
    xml.write_bytes(z.read("annotations.xml"))
    assert xml.stat().st_size > 3000, f"the XML is only {xml.stat().st_size} bytes"
    monkeypatch.setattr(uploading, "TUS_CHUNK_SIZE", 1000)
    import_annotations(fresh_task, "CVAT 1.1", xml)
    expected = normalize(get(task), ids)
    got = normalize(get(fresh_task), Ids(fresh_task))
    assert got == expected, diff_message("CVAT XML imported in 1000-byte TUS PATCHes", expected, got)


BROKEN_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="img_1.png" width="64" height="48">
    <box label="car" occluded="0" xtl="1.00" ytl="2.00" xbr="30.00" ybr="40.00" z_order="0">
"""

UNKNOWN_LABEL_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="img_1.png" width="64" height="48">
    <box label="car" occluded="0" xtl="1.00" ytl="2.00" xbr="30.00" ybr="40.00" z_order="0"></box>
    <box label="no-such-label" occluded="0" xtl="1.00" ytl="2.00" xbr="30.00" ybr="40.00" z_order="0"></box>
  </image>
</annotations>
"""


@pytest.mark.parametrize(
    "name, content, fmt",
    [
        ("truncated.xml", BROKEN_XML, "CVAT 1.1"),
        ("unknown_label.xml", UNKNOWN_LABEL_XML, "CVAT 1.1"),
        ("not_a_zip.zip", b"PK\x03\x04 this is not a zip archive", "CVAT 1.1"),
        ("broken.json", b'{"info": {}, "categories": {"label": {"labels": [', "Datumaro 1.0"),
    ],
)
def test_broken_import_fails_and_changes_nothing(annotated, tmp_path, name, content, fmt):
    from cvat_sdk.core.exceptions import BackgroundRequestException

    task, ids = annotated
    before = normalize(get(task), ids)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BackgroundRequestException) as e:
        task.import_annotations(fmt, path)
    message = str(e.value).strip()
    assert message, "the failed import request must carry a message"
    # Issue 11: the message names the file as the client sent it, never the server's stored copy
    # (e.g. `855f64b2..._unknown_label.xml`).
    assert f"import failed: {name}" in message and not re.search(r"[0-9a-f]{32}_", message), (
        f"the message of the failed import should name {name!r} as sent: {message!r}"
    )
    after = normalize(get(task), ids)
    assert after == before, diff_message(f"after the failed import of {name}", before, after)


def test_sdk_create_with_annotations(admin_client, annotated, local_images, tmp_path):
    """`create_from_data(annotation_path=..., annotation_format="CVAT XML 1.1")` (the SDK's default
    import name) imports right after the data upload."""
    task, ids = annotated
    z = export(task, "CVAT for images 1.1", tmp_path / "e.zip", include_images=False)
    xml = tmp_path / "annotations.xml"
    xml.write_bytes(z.read("annotations.xml"))
    t = create_task(
        admin_client, {"name": "compat create with annotations", "labels": LABELS_SPEC},
        [local_images[n] for n in NATURAL_ORDER],
        data_params={"image_quality": 70, "sorting_method": "natural"},
        annotation_path=str(xml), annotation_format="CVAT XML 1.1", what="annotated",
    )
    try:
        expected = normalize(get(task), ids)
        got = normalize(get(t), Ids(t))
        assert got == expected, diff_message("create_from_data(annotation_path=...)", expected, got)
    finally:
        t.remove()


# --------------------------------------------------------------------------------------------
# CLI (spec §15)


def test_cli_export_and_import_dataset(cli, admin_client, annotated, fresh_task, tmp_path):  # noqa: F811
    task, ids = annotated
    out = tmp_path / "cli_export.zip"
    cli("task", "export-dataset", task.id, out, "--format", "CVAT for images 1.1")
    z = read_zip(out)
    assert "annotations.xml" in z.namelist(), f"cli export: {z.namelist()}"
    assert not [n for n in z.namelist() if n.startswith("images/")], "cli export without --with-images has images"

    out_images = tmp_path / "cli_export_images.zip"
    cli("task", "export-dataset", task.id, out_images, "--format", "CVAT for images 1.1", "--with-images", "true")
    zi = read_zip(out_images)
    assert len([n for n in zi.namelist() if n.startswith("images/")]) == SIZE, (
        f"cli export --with-images true: {zi.namelist()}"
    )

    cli("task", "import-dataset", fresh_task.id, out, "--format", "CVAT 1.1")
    expected = normalize(get(task), ids)
    got = normalize(get(fresh_task), Ids(fresh_task))
    assert got == expected, diff_message("cvat-cli export-dataset | import-dataset", expected, got)


# --------------------------------------------------------------------------------------------
# cvat_sdk.datasets (spec §14)


def test_task_dataset_sees_annotations(admin_client, annotated):
    from cvat_sdk.datasets import TaskDataset

    task, ids = annotated
    data = get(task)
    ds = TaskDataset(admin_client, task.id)
    assert len(ds.samples) == SIZE
    for s in ds.samples:
        exp_tags = sorted((t["label_id"], t["id"]) for t in data["tags"] if t["frame"] == s.frame_index)
        exp_shapes = sorted((x["type"], x["id"]) for x in data["shapes"] if x["frame"] == s.frame_index)
        got_tags = sorted((t.label_id, t.id) for t in s.annotations.tags)
        got_shapes = sorted((str(x.type), x.id) for x in s.annotations.shapes)
        assert (got_tags, got_shapes) == (exp_tags, exp_shapes), (
            f"TaskDataset sample {s.frame_index} ({s.frame_name}): expected tags {exp_tags}, shapes "
            f"{exp_shapes}; got {got_tags}, {got_shapes}"
        )
    shape_counts = [len(s.annotations.shapes) for s in ds.samples]
    assert shape_counts == [2, 2, 2, 0, 1], f"shapes per sample: {shape_counts}"
    assert [len(s.annotations.tags) for s in ds.samples] == [1, 0, 0, 1, 0]

    # After a change, a new TaskDataset sees it (updated_date moved, the cache is refreshed).
    task.remove_annotations()
    try:
        ds2 = TaskDataset(admin_client, task.id)
        left = [(len(s.annotations.tags), len(s.annotations.shapes)) for s in ds2.samples]
        assert left == [(0, 0)] * SIZE, (
            f"TaskDataset after remove_annotations(): expected nothing, got {left} (stale cache: "
            "TaskRead.updated_date must move forward on every annotation change)"
        )
    finally:
        task.set_annotations(labeled_data(ids, **full_set(ids)))  # as the `annotated` fixture left it


# --------------------------------------------------------------------------------------------
# Jobs (the same endpoints under /api/jobs/{id}; frames are task frames)


def test_job_annotations(admin_client, local_images):
    from cvat_sdk import models
    from cvat_sdk.core.proxies.annotations import AnnotationUpdateAction

    t = create_task(
        admin_client, {"name": "compat job annotations", "labels": LABELS_SPEC, "segment_size": 3},
        [local_images[n] for n in NATURAL_ORDER],
        data_params={"image_quality": 70, "sorting_method": "natural"}, what="job annotations",
    )
    try:
        ids = Ids(t)
        first, second = sorted(t.get_jobs(), key=lambda j: j.start_frame)
        assert (second.start_frame, second.stop_frame) == (3, 4), (second.start_frame, second.stop_frame)
        second.set_annotations(labeled_data(ids, shapes=[
            {"type": "rectangle", "label": "person", "frame": 3, "points": [1.0, 1.0, 5.0, 5.0]},
        ]))
        first.set_annotations(labeled_data(ids, tags=[
            {"label": "car", "frame": 0, "attributes": ids.car_attrs()},
        ]))
        in_task = get(t)
        assert [(s["frame"], s["type"]) for s in in_task["shapes"]] == [(3, "rectangle")], in_task
        assert [x["frame"] for x in in_task["tags"]] == [0], in_task
        first_json = as_json(first.get_annotations())
        assert (len(first_json["tags"]), len(first_json["shapes"])) == (1, 0), (
            f"job {first.id} (frames 0-2): expected only the tag, got {first_json}"
        )
        expect_api_error(
            lambda: first.update_annotations(
                models.PatchedLabeledDataRequest(shapes=[models.LabeledShapeRequest(
                    type="rectangle", label_id=ids.labels["person"], frame=4, points=[0.0, 0.0, 2.0, 2.0])]),
                action=AnnotationUpdateAction.CREATE),
            range(400, 500), f"PATCH /api/jobs/{first.id}/annotations with frame 4 outside the job (0-2)",
        )
        # DELETE on a job clears only that job's frames.
        second.remove_annotations()
        left = get(t)
        assert (len(left["tags"]), len(left["shapes"])) == (1, 0), f"after removing job {second.id}'s annotations: {left}"
    finally:
        t.remove()
