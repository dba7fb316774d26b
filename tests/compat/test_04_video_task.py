"""A task from a local video through the SDK, with a frame step and zip (JPEG) compressed chunks
(spec §8, checklist item 10). Source: testdata/videos/h264_bframes.mp4 (320x240, 90 frames)."""

import io
import zipfile

import pytest

from compat_util import as_json, create_task, expect_api_error, ffmpeg_frames, mean_diff, open_image

STEP = 3
CHUNK_SIZE = 10
SIZE = 30  # ceil(90 / 3)


@pytest.fixture(scope="module")
def task(admin_client, local_video):
    t = create_task(
        admin_client,
        {"name": "compat video", "labels": [{"name": "car"}]},
        [local_video],
        data_params={
            "image_quality": 70, "chunk_size": CHUNK_SIZE, "frame_step": STEP,
            "use_zip_chunks": True,
        },
        what="local video",
    )
    yield t
    t.remove()


def test_task_fields(task):
    got = as_json(task._model)
    expected = {
        "size": SIZE, "data_chunk_size": CHUNK_SIZE, "mode": "interpolation", "dimension": "2d",
        "data_original_chunk_type": "video", "data_compressed_chunk_type": "imageset",
        "image_quality": 70,
    }
    wrong = {k: (v, got.get(k, "<absent>")) for k, v in expected.items() if got.get(k, "<absent>") != v}
    assert not wrong, f"TaskRead fields (expected, got): {wrong}\nfull TaskRead: {got}"


def test_meta(task):
    meta = task.get_meta()
    frames = [(f.name, f.width, f.height) for f in meta.frames]
    # Video: exactly one frames[] entry (the video's name and size).
    assert frames == [("clip.mp4", 320, 240)], f"meta frames: expected [('clip.mp4', 320, 240)], got {frames}"
    got = {
        "size": meta.size, "start_frame": meta.start_frame, "stop_frame": meta.stop_frame,
        "frame_filter": meta.frame_filter, "chunk_size": meta.chunk_size,
        "deleted_frames": list(meta.deleted_frames),
    }
    expected = {
        "size": SIZE, "start_frame": 0, "stop_frame": (SIZE - 1) * STEP,
        "frame_filter": f"step={STEP}", "chunk_size": CHUNK_SIZE, "deleted_frames": [],
    }
    assert got == expected, f"DataMetaRead: expected {expected}, got {got}"


def test_original_frames_are_the_right_source_frames(task, local_video, tmp_path):
    task_frames = [0, 8, 9, SIZE - 1]  # source frames 0, 24 (key frame), 27, 87
    wanted = sorted({STEP * k + d for k in task_frames for d in (-1, 0, 1) if 0 <= STEP * k + d < 90})
    ref = ffmpeg_frames(local_video, wanted, tmp_path)
    for k in task_frames:
        im = open_image(task.get_frame(k, quality="original"))
        assert im.size == (320, 240), f"get_frame({k}, original): expected 320x240, got {im.size}"
        if ref is None:
            continue  # no ffmpeg CLI: sizes only
        n = STEP * k
        diffs = {m: round(mean_diff(im, ref[m]), 2) for m in (n - 1, n, n + 1) if m in ref}
        best = min(diffs, key=diffs.get)
        assert best == n and diffs[n] < 2.5, (
            f"get_frame({k}, original) should be source frame {n} (step {STEP}); mean abs "
            f"difference to source frames {diffs}"
        )


def test_compressed_frame(task):
    im = open_image(task.get_frame(5, quality="compressed"))
    assert im.size == (320, 240), f"get_frame(5, compressed): expected 320x240, got {im.size}"


def test_compressed_chunk_is_zip_of_jpegs(task):
    buf = io.BytesIO()
    task.download_chunk(2, buf, quality="compressed")
    data = buf.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(data)), (
        f"compressed chunk with use_zip_chunks: expected a zip, got {data[:16]!r}"
    )
    members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert len(members) == CHUNK_SIZE, f"chunk 2: expected {CHUNK_SIZE} members, got {len(members)}"
    for m in members:
        im = open_image(zipfile.ZipFile(io.BytesIO(data)).read(m))
        assert (im.format, im.size) == ("JPEG", (320, 240)), f"chunk 2 member {m.filename}: {im.format} {im.size}"


def test_original_chunk_is_mp4(task):
    buf = io.BytesIO()
    task.download_chunk(0, buf, quality="original")
    data = buf.getvalue()
    assert data[4:8] == b"ftyp", f"original video chunk: expected an MP4 (ftyp box), got {data[:16]!r}"


def test_frame_out_of_range_is_4xx(task):
    expect_api_error(lambda: task.get_frame(SIZE, quality="original"), range(400, 500),
                     f"get_frame({SIZE}) on a {SIZE}-frame task")
