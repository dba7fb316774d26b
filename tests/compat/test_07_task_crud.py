"""Listing, updating and deleting tasks (spec §8: tasks.list, task.update, task.remove,
remove_by_ids, retrieve of a missing task)."""

import time

import pytest

from compat_util import api_error, as_json, create_task, expect_api_error


@pytest.fixture
def small_task(admin_client, local_images):
    t = create_task(
        admin_client, {"name": "compat crud", "labels": [{"name": "car"}]},
        [local_images["img_1.png"], local_images["img_2.png"]],
        data_params={"image_quality": 70}, what="crud",
    )
    yield t
    admin_client.tasks.remove_by_ids([t.id])  # 404 (already removed) is only logged


def test_update_moves_updated_date(admin_client, small_task):
    before = small_task.updated_date
    time.sleep(0.05)
    small_task.update({"name": "compat crud renamed"})  # PATCH, then GET
    assert small_task.name == "compat crud renamed", f"after update: name {small_task.name!r}"
    assert small_task.updated_date > before, (
        f"updated_date must move forward on PATCH: before {before}, after {small_task.updated_date}"
    )
    again = admin_client.tasks.retrieve(small_task.id)
    assert again.name == "compat crud renamed", f"retrieve after update: name {again.name!r}"


def test_remove(admin_client, small_task):
    from cvat_sdk.api_client import exceptions

    task_id = small_task.id
    assert task_id in [t.id for t in admin_client.tasks.list()]
    small_task.remove()
    with pytest.raises(exceptions.NotFoundException):
        admin_client.tasks.retrieve(task_id)
    assert task_id not in [t.id for t in admin_client.tasks.list()], "a removed task is still listed"


def test_remove_by_ids_tolerates_missing(admin_client):
    admin_client.tasks.remove_by_ids([987654])  # 404 is logged, not raised


def test_retrieve_missing_is_404(admin_client):
    expect_api_error(lambda: admin_client.tasks.retrieve(987654), 404, "GET /api/tasks/987654")


def test_task_without_data(admin_client):
    """A task that has no data yet must still parse as TaskRead (nullable fields null, not absent)."""
    from cvat_sdk.api_client import exceptions

    try:
        t = admin_client.tasks.create({"name": "compat empty", "labels": [{"name": "car"}]})
    except exceptions.ApiException as e:
        raise AssertionError(f"POST /api/tasks: expected 201 TaskRead, got {api_error(e)}") from e
    try:
        assert t.size == 0, f"size of a task without data: expected 0, got {t.size}"
        got = as_json(t._model)
        for k in ("data_chunk_size", "data_original_chunk_type", "organization", "target_storage", "subset", "mode", "dimension"):
            assert k in got, f"TaskRead.{k} must be present even without data; got {got}"
        assert t.id in [x.id for x in admin_client.tasks.list()]
    finally:
        t.remove()


def test_list_pagination(admin_client):
    """12 tasks with the default page size: the SDK follows `next` (spec §19)."""
    created = [admin_client.tasks.create({"name": f"compat page {i}"}) for i in range(12)]
    try:
        ids = [t.id for t in admin_client.tasks.list()]
        missing = [t.id for t in created if t.id not in ids]
        assert not missing, f"tasks.list() lost tasks {missing} (got {len(ids)} ids)"
        assert len(ids) == len(set(ids)), f"tasks.list() returned duplicates: {ids}"
        page, _ = admin_client.api_client.tasks_api.list(page_size=5)
        assert len(page.results) == 5 and page.next, (
            f"GET /api/tasks?page_size=5: expected 5 results and a next link, got "
            f"{len(page.results)} results, next={page.next!r}, count={page.count}"
        )
    finally:
        admin_client.tasks.remove_by_ids([t.id for t in created])
