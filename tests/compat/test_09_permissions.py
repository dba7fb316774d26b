"""Two users: an ordinary user cannot see or touch another user's task (CVAT answers 404 for
objects outside the user's visibility), and sees her own."""

import pytest

from compat_util import ALICE_USER, api_error, expect_api_error, need_auth


@pytest.fixture(scope="module")
def admin_task(admin_client):
    need_auth()
    t = admin_client.tasks.create({"name": "compat private", "labels": [{"name": "car"}]})
    yield t
    t.remove()


def test_other_users_task_is_invisible(alice_client, admin_task):
    expect_api_error(lambda: alice_client.tasks.retrieve(admin_task.id), 404,
                     f"alice: GET /api/tasks/{admin_task.id} (admin's task)")
    ids = [t.id for t in alice_client.tasks.list()]
    assert admin_task.id not in ids, f"alice's tasks.list() includes admin's task {admin_task.id}: {ids}"


def test_other_users_task_cannot_be_changed(alice_client, admin_client, admin_task):
    api = alice_client.api_client.tasks_api
    from cvat_sdk import models

    expect_api_error(
        lambda: api.partial_update(admin_task.id, patched_task_write_request=models.PatchedTaskWriteRequest(name="hijacked")),
        (403, 404), f"alice: PATCH /api/tasks/{admin_task.id}",
    )
    expect_api_error(lambda: api.destroy(admin_task.id), (403, 404), f"alice: DELETE /api/tasks/{admin_task.id}")
    expect_api_error(lambda: api.retrieve_data_meta(admin_task.id), (403, 404),
                     f"alice: GET /api/tasks/{admin_task.id}/data/meta")
    still = admin_client.tasks.retrieve(admin_task.id)
    assert still.name == "compat private", f"admin's task was changed by alice: name {still.name!r}"


def test_own_task_is_visible(alice_client):
    from cvat_sdk.api_client import exceptions

    try:
        t = alice_client.tasks.create({"name": "compat alice", "labels": [{"name": "car"}]})
    except exceptions.ApiException as e:
        raise AssertionError(f"alice: POST /api/tasks: expected 201, got {api_error(e)}") from e
    try:
        assert t.owner is not None and t.owner.username == ALICE_USER, f"owner of alice's task: {t.owner}"
        assert t.id in [x.id for x in alice_client.tasks.list()], "alice does not see her own task"
    finally:
        t.remove()
