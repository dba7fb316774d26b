"""A task from local images through the SDK (spec §6.1–§6.4, §8): task fields, meta, frames,
chunks, preview, jobs and labels. The files are uploaded out of order; the task sorts them
naturally."""

import io
import zipfile
from datetime import datetime

import pytest

from compat_util import (
    ADMIN_USER,
    ANONYMOUS,
    LABELS_SPEC,
    NATURAL_ORDER,
    as_json,
    assert_same_image,
    create_task,
    expect_api_error,
    is_lossy,
    open_image,
)

CHUNK_SIZE = 2
SEGMENT_SIZE = 3
QUALITY = 80
UPLOAD_ORDER = ["img_10.png", "img_4.jpg", "img_1.png", "img_3.bmp", "img_2.png"]


@pytest.fixture(scope="module")
def task(admin_client, local_images):
    t = create_task(
        admin_client,
        {"name": "compat images", "labels": LABELS_SPEC, "segment_size": SEGMENT_SIZE},
        [local_images[n] for n in UPLOAD_ORDER],
        data_params={"image_quality": QUALITY, "chunk_size": CHUNK_SIZE, "sorting_method": "natural"},
        what="local image",
    )
    yield t
    t.remove()


def source(local_images, frame: int):
    return local_images[NATURAL_ORDER[frame]]


def test_task_fields(task):
    got = as_json(task._model)
    expected = {
        "name": "compat images",
        "size": 5,
        "data_chunk_size": CHUNK_SIZE,
        "data_original_chunk_type": "imageset",
        "data_compressed_chunk_type": "imageset",
        "mode": "annotation",
        "dimension": "2d",
        "image_quality": QUALITY,
        "segment_size": SEGMENT_SIZE,
        "subset": "",
        "organization": None,
    }
    wrong = {k: (v, got.get(k, "<absent>")) for k, v in expected.items() if got.get(k, "<absent>") != v}
    assert not wrong, f"TaskRead fields (expected, got): {wrong}\nfull TaskRead: {got}"
    for k in ("target_storage", "updated_date", "created_date", "jobs", "labels"):
        assert k in got, f"TaskRead.{k} must be present (spec §2 rule 2); got keys {sorted(got)}"
    assert isinstance(task.updated_date, datetime) and task.updated_date.tzinfo is not None, (
        f"TaskRead.updated_date must be timezone-aware ISO-8601, got {got.get('updated_date')!r}"
    )
    assert task.jobs.count == 2, f"TaskRead.jobs.count: expected 2 (5 frames, segment_size 3), got {task.jobs.count}"
    if not ANONYMOUS:
        assert task.owner is not None and task.owner.username == ADMIN_USER, (
            f"TaskRead.owner: expected username {ADMIN_USER!r}, got {got.get('owner')!r}"
        )


def test_meta(task, local_images):
    meta = task.get_meta()
    names = [f.name for f in meta.frames]
    assert names == NATURAL_ORDER, f"meta frame names: expected natural order {NATURAL_ORDER}, got {names}"
    for i, f in enumerate(meta.frames):
        exp = open_image(source(local_images, i).read_bytes()).size
        assert (f.width, f.height) == exp, f"meta frame {i} ({f.name}): expected {exp}, got {(f.width, f.height)}"
        assert f.related_files == 0, f"meta frame {i}: related_files expected 0, got {f.related_files}"
    got = {
        "size": meta.size, "start_frame": meta.start_frame, "stop_frame": meta.stop_frame,
        "chunk_size": meta.chunk_size, "image_quality": meta.image_quality,
        "frame_filter": meta.frame_filter, "deleted_frames": list(meta.deleted_frames),
    }
    expected = {
        "size": 5, "start_frame": 0, "stop_frame": 4, "chunk_size": CHUNK_SIZE,
        "image_quality": QUALITY, "frame_filter": "", "deleted_frames": [],
    }
    assert got == expected, f"DataMetaRead: expected {expected}, got {got}"
    assert meta.chunks_updated_date.tzinfo is not None, "chunks_updated_date must be timezone-aware"


def test_original_frames_equal_sources(task, local_images):
    for i in range(5):
        im = open_image(task.get_frame(i, quality="original"))
        src = source(local_images, i)
        assert_same_image(
            im, src, f"get_frame({i}, quality='original')",
            lossy_tolerance=2.0 if is_lossy(src) else None,
        )


def test_compressed_and_default_frames_decode(task, local_images):
    for i in range(5):
        size = open_image(source(local_images, i).read_bytes()).size
        for quality in ("compressed", None):
            im = open_image(task.get_frame(i, quality=quality))
            assert im.size == size, f"get_frame({i}, quality={quality!r}): expected size {size}, got {im.size}"


def test_frame_out_of_range_is_4xx(task):
    expect_api_error(lambda: task.get_frame(5, quality="original"), range(400, 500),
                     "get_frame(5) on a 5-frame task")


def read_chunk(task, index: int, quality: str) -> zipfile.ZipFile:
    buf = io.BytesIO()
    task.download_chunk(index, buf, quality=quality)
    data = buf.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(data)), (
        f"chunk {index} ({quality}): expected a zip, got {len(data)} bytes starting {data[:16]!r}"
    )
    return zipfile.ZipFile(io.BytesIO(data))


def test_original_chunks_by_position(task, local_images):
    for k in range(3):
        z = read_chunk(task, k, "original")
        members = z.infolist()
        expected_count = min(CHUNK_SIZE, 5 - k * CHUNK_SIZE)
        assert len(members) == expected_count, (
            f"original chunk {k}: expected {expected_count} members, got {[m.filename for m in members]}"
        )
        # The adapters read frames by position (spec §2 rule 8), never by member name.
        for j, m in enumerate(members):
            frame = k * CHUNK_SIZE + j
            src = source(local_images, frame)
            assert_same_image(
                open_image(z.read(m)), src, f"original chunk {k} member {j} (frame {frame})",
                lossy_tolerance=2.0 if is_lossy(src) else None,
            )


def test_compressed_chunk(task, local_images):
    z = read_chunk(task, 0, "compressed")
    members = z.infolist()
    assert len(members) == CHUNK_SIZE, f"compressed chunk 0: expected {CHUNK_SIZE} members, got {len(members)}"
    for j, m in enumerate(members):
        im = open_image(z.read(m))
        size = open_image(source(local_images, j).read_bytes()).size
        assert im.format == "JPEG", f"compressed chunk member {j}: expected JPEG, got {im.format}"
        assert im.size == size, f"compressed chunk member {j}: expected size {size}, got {im.size}"


def test_chunk_out_of_range_is_4xx(task):
    expect_api_error(lambda: task.download_chunk(3, io.BytesIO(), quality="original"),
                     range(400, 500), "download_chunk(3) on a task with chunks 0..2")


def test_preview(task):
    im = open_image(task.get_preview())
    assert im.width > 0 and im.height > 0


def test_download_frames(task, tmp_path):
    task.download_frames([0, 3], outdir=tmp_path, quality="original")
    files = sorted(p.name for p in tmp_path.iterdir())
    # Frame 0 is img_1.png, frame 3 is img_4.jpg; the SDK names files by the decoded format.
    assert files == ["frame_000000.png", "frame_000003.jpg"], f"download_frames wrote {files}"


def test_jobs(task, local_images):
    jobs = task.get_jobs()
    ranges = sorted((j.start_frame, j.stop_frame) for j in jobs)
    assert ranges == [(0, 2), (3, 4)], f"job frame ranges: expected [(0, 2), (3, 4)], got {ranges}"
    for j in jobs:
        assert j.task_id == task.id, f"job {j.id}: task_id expected {task.id}, got {j.task_id}"
    job = sorted(jobs, key=lambda j: j.start_frame)[1]
    meta = job.get_meta()
    assert meta.size == 2, f"job {job.id} meta size: expected 2, got {meta.size}"
    # Job frame numbers are task frame numbers (spec §8).
    im = open_image(job.get_frame(job.start_frame, quality="original"))
    assert_same_image(im, source(local_images, 3), f"job {job.id} get_frame({job.start_frame})",
                      lossy_tolerance=2.0)


def test_labels(task):
    labels = {l.name: l for l in task.get_labels()}
    assert sorted(labels) == ["car", "person"], f"labels: expected car, person; got {sorted(labels)}"
    ids = [l.id for l in labels.values()]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 2, f"label ids: expected 2 distinct ints, got {ids}"

    car = labels["car"]
    assert car.color == "#ff0000", f"car.color: expected '#ff0000', got {car.color!r}"
    attrs = {a.name: a for a in car.attributes}
    assert sorted(attrs) == ["color", "parked"], f"car attributes: got {sorted(attrs)}"
    attr_ids = [a.id for a in attrs.values()]
    assert all(isinstance(i, int) for i in attr_ids) and len(set(attr_ids)) == 2, (
        f"attribute ids: expected 2 distinct ints, got {attr_ids}"
    )
    got = {n: (str(a.input_type), list(a.values), a.default_value, a.mutable) for n, a in attrs.items()}
    expected = {
        "color": ("select", ["red", "blue"], "red", False),
        "parked": ("checkbox", ["false"], "false", True),
    }
    assert got == expected, f"car attributes (input_type, values, default_value, mutable): expected {expected}, got {got}"

    person = labels["person"]
    assert str(person.type) == "rectangle", f"person.type: expected 'rectangle', got {person.type!r}"
    assert list(person.attributes) == [], f"person.attributes: expected [], got {person.attributes}"


def test_task_listed(admin_client, task):
    ids = [t.id for t in admin_client.tasks.list()]
    assert task.id in ids, f"tasks.list(): expected task {task.id} among {ids}"
    filtered = admin_client.tasks.list(name="compat images")
    names = {t.id: t.name for t in filtered}
    assert task.id in names, f"tasks.list(name='compat images'): expected task {task.id}, got {names}"
    assert all("compat images" in n for n in names.values()), f"tasks.list(name=...) did not filter: {names}"
