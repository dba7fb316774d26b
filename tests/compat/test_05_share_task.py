"""Tasks from the server's share directory (`ResourceType.SHARE`, paths relative to the share
root; spec §6.5). The share is populated by conftest.py (SHARE_FILES)."""

import pytest

from compat_util import SHARE_FILES, TESTDATA, api_error, assert_same_image, create_task, open_image

SHARE_IMAGES = ["images/scene1.png", "images/sub/file.with.dots.png", "images/b9.png", "images/f.bmp"]
LEXICOGRAPHIC = sorted(SHARE_IMAGES)


@pytest.fixture(scope="module")
def image_task(admin_client):
    from cvat_sdk.core.proxies.tasks import ResourceType

    t = create_task(
        admin_client, {"name": "compat share images", "labels": [{"name": "car"}]}, SHARE_IMAGES,
        resource_type=ResourceType.SHARE,
        data_params={"image_quality": 75, "sorting_method": "lexicographical"},
        what="share image",
    )
    yield t
    t.remove()


def test_share_images(image_task):
    assert image_task.size == len(SHARE_IMAGES), f"size: expected {len(SHARE_IMAGES)}, got {image_task.size}"
    names = [f.name for f in image_task.get_meta().frames]
    assert names == LEXICOGRAPHIC, f"meta frame names: expected {LEXICOGRAPHIC}, got {names}"
    for i, rel in enumerate(LEXICOGRAPHIC):
        im = open_image(image_task.get_frame(i, quality="original"))
        assert_same_image(im, TESTDATA / SHARE_FILES[rel], f"share task get_frame({i}, original)")


def test_share_video(admin_client):
    from cvat_sdk.core.proxies.tasks import ResourceType

    t = create_task(
        admin_client, {"name": "compat share video", "labels": [{"name": "car"}]}, ["videos/clip.mp4"],
        resource_type=ResourceType.SHARE, data_params={"image_quality": 70, "chunk_size": 30},
        what="share video",
    )
    try:
        assert (t.size, t.mode) == (90, "interpolation"), f"(size, mode): expected (90, 'interpolation'), got {(t.size, t.mode)}"
        frames = [(f.name, f.width, f.height) for f in t.get_meta().frames]
        assert frames == [("videos/clip.mp4", 320, 240)], f"meta frames: got {frames}"
        im = open_image(t.get_frame(89, quality="original"))
        assert im.size == (320, 240)
    finally:
        t.remove()


def test_missing_share_file_fails_cleanly(admin_client):
    """A path that is not in the share must fail the creation: a 4xx on the data POST or a
    'failed' background request, both of which the SDK raises."""
    from cvat_sdk.api_client import exceptions
    from cvat_sdk.core.exceptions import BackgroundRequestException
    from cvat_sdk.core.proxies.tasks import ResourceType

    before = {t.id for t in admin_client.tasks.list()}
    with pytest.raises((exceptions.ApiException, BackgroundRequestException)) as info:
        admin_client.tasks.create_from_data(
            {"name": "compat share missing", "labels": [{"name": "car"}]},
            resources=["images/does-not-exist.png"], resource_type=ResourceType.SHARE,
            data_params={"image_quality": 70},
        )
    if isinstance(info.value, exceptions.ApiException):
        assert 400 <= info.value.status < 500, f"expected a 4xx, got {api_error(info.value)}"
    # The SDK created the task before uploading data; clean it up.
    for t in admin_client.tasks.list():
        if t.id not in before:
            t.remove()
