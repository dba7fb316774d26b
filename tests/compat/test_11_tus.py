"""TUS uploads of task data (spec §6.1, §6.6): files over the SDK's 100 MiB request limit are
sent with the TUS protocol (POST with Upload-Length → absolute Location + Upload-Filename, then
10 MiB PATCHes), after the multipart groups.

The first test lowers the SDK's thresholds in-process (the same client code path, small files):
several multipart groups, two files through TUS in several PATCHes each. The second one sends a
real 111 MB file with the SDK's defaults."""

from compat_util import NATURAL_ORDER, assert_same_image, create_task, is_lossy, open_image


def test_multipart_groups_and_tus_mixed(admin_client, local_images, monkeypatch):
    import cvat_sdk.core.proxies.tasks as tasks_module
    import cvat_sdk.core.uploading as uploading

    class SmallRequests(uploading.DataUploader):
        def __init__(self, client, *, max_request_size: int = 2000):
            super().__init__(client, max_request_size=max_request_size)

    # Files > 2000 bytes (img_3.bmp, img_4.jpg) go through TUS in 1000-byte PATCHes; the rest are
    # grouped into two multipart requests.
    monkeypatch.setattr(tasks_module, "DataUploader", SmallRequests)
    monkeypatch.setattr(uploading, "TUS_CHUNK_SIZE", 1000)
    sizes = {n: p.stat().st_size for n, p in local_images.items()}
    assert sum(1 for s in sizes.values() if s > 2000) == 2, f"fixture sizes changed: {sizes}"

    t = create_task(
        admin_client, {"name": "compat tus mixed", "labels": [{"name": "car"}]},
        [local_images[n] for n in ("img_3.bmp", "img_1.png", "img_10.png", "img_4.jpg", "img_2.png")],
        data_params={"image_quality": 70, "sorting_method": "natural"}, what="TUS (mixed)",
    )
    try:
        names = [f.name for f in t.get_meta().frames]
        assert names == NATURAL_ORDER, f"meta frame names: expected {NATURAL_ORDER}, got {names}"
        for i, name in enumerate(NATURAL_ORDER):
            src = local_images[name]
            assert_same_image(open_image(t.get_frame(i, quality="original")), src,
                              f"TUS task frame {i} ({name})", lossy_tolerance=2.0 if is_lossy(src) else None)
    finally:
        t.remove()


def test_file_over_100_mib(admin_client, tmp_path):
    from PIL import Image

    # 6200 x 6000 RGB BMP = 111.6 MB > 100 MiB: the SDK sends it with TUS in 11 PATCHes.
    big = tmp_path / "big.bmp"
    im = Image.linear_gradient("L").resize((6200, 6000)).convert("RGB")
    im.save(big)
    assert big.stat().st_size > 100 * 2**20
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(small)

    t = create_task(
        admin_client, {"name": "compat tus big", "labels": [{"name": "car"}]}, [small, big],
        data_params={"image_quality": 70, "chunk_size": 1}, what="TUS (111 MB)",
    )
    try:
        frames = [(f.name, f.width, f.height) for f in t.get_meta().frames]
        assert frames == [("big.bmp", 6200, 6000), ("small.png", 64, 48)], f"meta frames: {frames}"
        assert open_image(t.get_frame(1, quality="original")).size == (64, 48)
    finally:
        t.remove()
        big.unlink()
