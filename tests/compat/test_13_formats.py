"""The formats annotation teams leave CVAT in, through the unmodified clients (issue 12): for
"COCO 1.0", "YOLO 1.1" and "Ultralytics YOLO Detection 1.0", `task.export_dataset` with and
without images (the archive has the format's layout and, with images, every frame), then
`task.import_annotations` of that export into a fresh task with the same labels and images,
which must hold what the format carries of the source task (COCO: boxes and polygons with their
attributes and occlusion; the YOLO formats: boxes only, by label); and the same round trip with
`cvat-cli task export-dataset` / `import-dataset`."""

import pytest

from test_08_cli import cli  # noqa: F401  (the cvat-cli runner fixture)
from test_12_annotations import (  # noqa: F401  (fixtures)
    SIZE,
    Ids,
    _r,
    export,
    fresh_task,
    get,
    import_annotations,
    labeled_data,
    make_task,
    read_zip,
)


@pytest.fixture(scope="module")
def source(admin_client, local_images):
    """A task with boxes (one occluded, one with attributes) and a polygon on three frames: what
    all three formats carry at least in part, nothing grouped (COCO merges a group into one
    instance) and nothing rotated (the YOLO formats drop rotated boxes)."""
    t = make_task(admin_client, local_images, "compat formats")
    ids = Ids(t)
    t.set_annotations(labeled_data(ids, shapes=[
        {"type": "rectangle", "label": "car", "frame": 0, "points": [1.5, 2.25, 20.0, 15.75],
         "occluded": True, "attributes": ids.car_attrs("blue", "true")},
        {"type": "rectangle", "label": "person", "frame": 0, "points": [3.0, 4.0, 10.0, 12.0]},
        {"type": "polygon", "label": "car", "frame": 1, "points": [2.0, 2.0, 12.0, 3.0, 7.5, 9.0],
         "attributes": ids.car_attrs("red", "false")},
        {"type": "rectangle", "label": "person", "frame": 3, "points": [0.0, 0.0, 8.0, 6.5]},
    ]))
    yield t, ids
    t.remove()


def carried(data: dict, ids: Ids, fmt: str) -> list:
    """What `fmt` keeps of a task's annotations, comparable across tasks: (frame, label, type,
    points to 0.01[, occluded, attributes]) sorted."""
    out = []
    for s in data["shapes"]:
        if fmt.startswith(("YOLO", "Ultralytics")) and s["type"] != "rectangle":
            continue
        row = (s["frame"], ids.label_names[s["label_id"]], s["type"],
               tuple(_r(p) for p in s["points"]))
        if fmt.startswith("COCO"):
            attrs = tuple(sorted((ids.attr_names[a["spec_id"]], a["value"]) for a in s.get("attributes") or []))
            row += (s.get("occluded", False), attrs)
        out.append(row)
    return sorted(out)


# (export name, import name, entries every export has, the prefix of the image entries)
FORMATS = [
    ("COCO 1.0", "COCO 1.0", ["annotations/instances_default.json"], "images/"),
    ("YOLO 1.1", "YOLO 1.1", ["obj.data", "obj.names", "train.txt"], "obj_train_data/"),
    ("Ultralytics YOLO Detection 1.0", "Ultralytics YOLO Detection 1.0", ["data.yaml"], "images/"),
]
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")


@pytest.mark.parametrize("fmt, import_fmt, entries, images", FORMATS, ids=[f[0] for f in FORMATS])
def test_sdk_export_import_round_trip(source, fresh_task, tmp_path, fmt, import_fmt, entries, images):
    task, ids = source
    z = export(task, fmt, tmp_path / "no_images.zip", include_images=False)
    names = z.namelist()
    for e in entries:
        assert e in names, f"{fmt} export: expected {e} in the zip, got {names}"
    assert not [n for n in names if n.lower().endswith(IMAGE_EXT)], f"{fmt} without images: {names}"

    zi = export(task, fmt, tmp_path / "with_images.zip", include_images=True)
    imgs = [n for n in zi.namelist() if n.startswith(images) and n.lower().endswith(IMAGE_EXT)]
    assert len(imgs) == SIZE, f"{fmt} with images: expected {SIZE} images under {images}, got {zi.namelist()}"

    expected = carried(get(task), ids, fmt)
    assert expected, f"{fmt}: the source task has nothing this format carries"
    for what, path in (("without images", tmp_path / "no_images.zip"), ("with images", tmp_path / "with_images.zip")):
        import_annotations(fresh_task, import_fmt, path)
        got = carried(get(fresh_task), Ids(fresh_task), fmt)
        assert got == expected, (
            f"{fmt} export {what} imported as {import_fmt!r}:\n  expected {expected}\n  got      {got}"
        )


@pytest.mark.parametrize("fmt, import_fmt, entries, images", FORMATS, ids=[f[0] for f in FORMATS])
def test_cli_export_import_dataset(cli, source, fresh_task, tmp_path, fmt, import_fmt, entries, images):  # noqa: F811
    task, ids = source
    out = tmp_path / "cli_export.zip"
    cli("task", "export-dataset", task.id, out, "--format", fmt)
    names = read_zip(out).namelist()
    for e in entries:
        assert e in names, f"cvat-cli export-dataset --format {fmt!r}: expected {e} in the zip, got {names}"
    cli("task", "import-dataset", fresh_task.id, out, "--format", import_fmt)
    expected = carried(get(task), ids, fmt)
    got = carried(get(fresh_task), Ids(fresh_task), fmt)
    assert got == expected, (
        f"cvat-cli export-dataset | import-dataset ({fmt}):\n  expected {expected}\n  got      {got}"
    )
