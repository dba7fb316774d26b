"""`cvat_sdk.datasets.TaskDataset` on an image task (spec §14): the chunk-based adapter reads
original chunks by position; the second construction is served from the SDK's cache."""

import pytest

from compat_util import LABELS_SPEC, NATURAL_ORDER, assert_same_image, create_task, is_lossy


@pytest.fixture(scope="module")
def task(admin_client, local_images):
    t = create_task(
        admin_client, {"name": "compat dataset", "labels": LABELS_SPEC},
        [local_images[n] for n in reversed(NATURAL_ORDER)],
        data_params={"image_quality": 70, "chunk_size": 2, "sorting_method": "natural"},
        what="dataset image",
    )
    yield t
    t.remove()


def count_chunk_downloads(monkeypatch) -> list:
    from cvat_sdk.core.proxies.tasks import Task

    calls = []
    original = Task.download_chunk

    def counting(self, chunk_id, *args, **kwargs):
        calls.append(chunk_id)
        return original(self, chunk_id, *args, **kwargs)

    monkeypatch.setattr(Task, "download_chunk", counting)
    return calls


def check_samples(ds, task, local_images):
    assert len(ds.samples) == task.size == 5, f"samples: expected 5 (task size {task.size}), got {len(ds.samples)}"
    for i, s in enumerate(ds.samples):
        assert s.frame_index == i, f"sample {i}: frame_index {s.frame_index}"
        assert s.frame_name == NATURAL_ORDER[i], f"sample {i}: frame_name expected {NATURAL_ORDER[i]!r}, got {s.frame_name!r}"
        src = local_images[NATURAL_ORDER[i]]
        assert_same_image(s.media.load_image(), src, f"TaskDataset sample {i} ({s.frame_name})",
                          lossy_tolerance=2.0 if is_lossy(src) else None)


def test_task_dataset_media_and_labels(admin_client, task, local_images, monkeypatch):
    from cvat_sdk.datasets import TaskDataset

    downloads = count_chunk_downloads(monkeypatch)
    ds = TaskDataset(admin_client, task.id, load_annotations=False)
    assert sorted(downloads) == [0, 1, 2], f"first construction: expected chunks 0, 1, 2 downloaded, got {downloads}"
    check_samples(ds, task, local_images)
    labels = {l.name: l.id for l in ds.labels}
    expected = {l.name: l.id for l in task.get_labels()}
    assert labels == expected and sorted(labels) == ["car", "person"], (
        f"TaskDataset.labels: expected {expected}, got {labels}"
    )

    # Second construction, same updated_date: nothing is downloaded again (spec §14.1).
    downloads.clear()
    ds2 = TaskDataset(admin_client, task.id, load_annotations=False)
    assert downloads == [], f"second construction re-downloaded chunks {downloads}; the cache should be used"
    check_samples(ds2, task, local_images)


def test_task_dataset_offline_from_cache(admin_client, task, local_images, monkeypatch):
    """UpdatePolicy.NEVER makes no requests at all once the cache is filled."""
    from cvat_sdk.api_client.api_client import ApiClient
    from cvat_sdk.datasets import TaskDataset, UpdatePolicy

    TaskDataset(admin_client, task.id, load_annotations=False)  # fill the cache

    def no_network(*args, **kwargs):
        raise AssertionError(f"UpdatePolicy.NEVER made a request: {args[:3]}")

    monkeypatch.setattr(ApiClient, "request", no_network)
    ds = TaskDataset(admin_client, task.id, load_annotations=False, update_policy=UpdatePolicy.NEVER)
    check_samples(ds, task, local_images)


def test_task_dataset_with_annotations(admin_client, task):
    """The default construction also fetches GET /api/tasks/{id}/annotations/ (empty here)."""
    from cvat_sdk.datasets import TaskDataset

    ds = TaskDataset(admin_client, task.id)
    for s in ds.samples:
        assert s.annotations is not None
        assert (list(s.annotations.tags), list(s.annotations.shapes)) == ([], []), (
            f"sample {s.frame_index}: expected no annotations, got {s.annotations}"
        )
