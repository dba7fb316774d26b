"""Constants and helpers shared by the compatibility tests (imported by conftest.py and the tests).

Everything here talks to the server through the public clients (cvat-sdk / cvat-cli 2.80.0).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
ANONYMOUS = os.environ.get("COMPAT_ANONYMOUS", "") not in ("", "0")

ADMIN_USER = "admin"
ADMIN_PASSWORD = "Adm1n-compat.pw"
ALICE_USER = "alice"
ALICE_PASSWORD = "Al1ce-compat.pw"

TIMEOUT = float(os.environ.get("COMPAT_TIMEOUT", "120"))

# Local image fixtures: (name in the task, source under testdata/images/set). The names exercise
# natural sorting (img_1, img_2, img_3, img_4, img_10); formats PNG, BMP, JPEG; distinct sizes.
LOCAL_IMAGES = [
    ("img_1.png", "b9.png"),  # RGB 64x48
    ("img_2.png", "file.with.dots.png"),  # RGB 32x24
    ("img_10.png", "scene1.png"),  # RGB 80x60
    ("img_3.bmp", "f.bmp"),  # RGB 41x30
    ("img_4.jpg", "a.jpg"),  # RGB 96x64 (lossy: compared with a tolerance)
]
NATURAL_ORDER = ["img_1.png", "img_2.png", "img_3.bmp", "img_4.jpg", "img_10.png"]

# The share root given to the server: relative path -> source under testdata.
SHARE_FILES = {
    "images/b9.png": "images/set/b9.png",
    "images/scene1.png": "images/set/scene1.png",
    "images/f.bmp": "images/set/f.bmp",
    "images/sub/file.with.dots.png": "images/set/file.with.dots.png",
    "videos/clip.mp4": "videos/h264_bframes.mp4",
}
VIDEO_SOURCE = TESTDATA / "videos" / "h264_bframes.mp4"  # 320x240, 90 frames, key frames 0/24/48/72

LABELS_SPEC = [
    {
        "name": "car",
        "color": "#ff0000",
        "attributes": [
            {
                "name": "color",
                "mutable": False,
                "input_type": "select",
                "values": ["red", "blue"],
                "default_value": "red",
            },
            {
                "name": "parked",
                "mutable": True,
                "input_type": "checkbox",
                "values": ["false"],
                "default_value": "false",
            },
        ],
    },
    {"name": "person", "type": "rectangle"},
]


# --------------------------------------------------------------------------------------------
# Clients


def sdk_config(cache_dir: Path):
    from cvat_sdk import Config

    return Config(status_check_period=0.1, allow_unsupported_server=False, cache_dir=cache_dir)


def api_error(e: Exception) -> str:
    """A readable description of a client-side API exception (status + body)."""
    status = getattr(e, "status", None)
    body = getattr(e, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if status is not None:
        return f"{type(e).__name__}: HTTP {status} {getattr(e, 'reason', '')}; body: {str(body)[:2000]}"
    return f"{type(e).__name__}: {e}"


def need_auth():
    if ANONYMOUS:
        pytest.skip("COMPAT_ANONYMOUS=1: the server under test has no users")


def login_client(server, credentials, cache_dir: Path):
    """A `Client` with the suite's config, logged in with `credentials` (a (user, pw) tuple or a
    Credentials object). Login failures become readable assertion errors."""
    from cvat_sdk import Client
    from cvat_sdk.api_client import exceptions

    client = Client(server.url, config=sdk_config(cache_dir))
    if credentials is None:
        return client
    try:
        client.login(credentials)
    except exceptions.ApiException as e:
        client.close()
        raise AssertionError(
            f"login as {credentials[0] if isinstance(credentials, tuple) else credentials!r} "
            f"failed: expected POST /api/auth/login -> 2xx with cookies sessionid + csrftoken; "
            f"got {api_error(e)}"
        ) from e
    except AssertionError as e:
        client.close()
        raise AssertionError(
            "login answered 2xx but the client's cookie jar lacks 'sessionid' and/or 'csrftoken' "
            f"(it has: {sorted(client.api_client.cookies.keys())}); the server must set both "
            "with Set-Cookie (spec §2 rule 5)"
        ) from e
    return client


def create_access_token(client, name: str) -> dict:
    """Creates a personal access token for the client's (session-authenticated) user via
    `POST /api/auth/access_tokens` and returns the parsed JSON (with `id` and `value`)."""
    from cvat_sdk import models
    from cvat_sdk.api_client import exceptions

    try:
        _, resp = client.api_client.auth_api.create_access_tokens(
            models.AccessTokenWriteRequest(name=name), _parse_response=False
        )
    except exceptions.ApiException as e:
        raise AssertionError(
            "POST /api/auth/access_tokens {\"name\": ...} with session cookie + X-CSRFToken: "
            f"expected 201 {{id, name, value}}; got {api_error(e)}"
        ) from e
    body = resp.data.decode("utf-8", "replace")
    assert resp.status == 201, f"POST /api/auth/access_tokens: expected status 201, got {resp.status}: {body[:500]}"
    try:
        doc = json.loads(body)
    except ValueError:
        raise AssertionError(f"POST /api/auth/access_tokens: expected JSON, got {body[:500]!r}")
    for key, typ in (("id", int), ("name", str), ("value", str)):
        assert isinstance(doc.get(key), typ), (
            f"POST /api/auth/access_tokens: expected '{key}' of type {typ.__name__} in the "
            f"response, got {doc!r}"
        )
    assert doc["name"] == name, f"token name: expected {name!r}, got {doc['name']!r}"
    assert doc["value"], "token value is empty"
    return doc


def create_task(client, spec: dict, resources, *, what: str, **kwargs):
    """`client.tasks.create_from_data` with failures turned into readable assertion errors."""
    from cvat_sdk.api_client import exceptions
    from cvat_sdk.core.exceptions import BackgroundRequestException

    try:
        return client.tasks.create_from_data(spec, resources=[str(r) for r in resources], **kwargs)
    except exceptions.ApiException as e:
        raise AssertionError(f"creating the {what} task failed: {api_error(e)}") from e
    except BackgroundRequestException as e:
        raise AssertionError(
            f"creating the {what} task failed: the background request ended 'failed' with "
            f"message {str(e)!r}"
        ) from e


def expect_api_error(fn, statuses, what: str):
    """Calls fn() and asserts it raises an ApiException with a status in `statuses`; returns it."""
    from cvat_sdk.api_client import exceptions

    if isinstance(statuses, int):
        statuses = (statuses,)
    if isinstance(statuses, range):
        shown = f"{statuses.start}..{statuses.stop - 1}"
    else:
        shown = " or ".join(map(str, statuses))
    try:
        result = fn()
    except exceptions.ApiException as e:
        assert e.status in statuses, f"{what}: expected HTTP {shown}, got {api_error(e)}"
        return e
    raise AssertionError(
        f"{what}: expected HTTP {shown}, but the call succeeded and returned {str(result)[:300]}"
    )


def as_json(model) -> dict:
    """An SDK model as the plain JSON the server sent (for messages and comparisons)."""
    from cvat_sdk.api_client.model_utils import to_json

    return to_json(model)


# --------------------------------------------------------------------------------------------
# Images


def open_image(data) -> "PIL.Image.Image":
    from PIL import Image

    if isinstance(data, (bytes, bytearray)):
        data = io.BytesIO(data)
    im = Image.open(data)
    im.load()
    return im


def assert_same_image(got, expected_path: Path, what: str, *, lossy_tolerance: float | None = None):
    """Pixel comparison of a served image with its source file. Exact unless the source is lossy
    (then the mean absolute difference per channel must stay within `lossy_tolerance`)."""
    from PIL import Image, ImageChops, ImageStat

    exp = Image.open(expected_path)
    exp.load()
    assert got.size == exp.size, f"{what}: expected size {exp.size} (as {expected_path.name}), got {got.size}"
    if lossy_tolerance is None:
        g, e = got, exp
        if g.mode != e.mode:
            g, e = g.convert("RGBA"), e.convert("RGBA")
        if g.tobytes() != e.tobytes():
            diff = ImageChops.difference(g.convert("RGB"), e.convert("RGB"))
            raise AssertionError(
                f"{what}: pixels differ from {expected_path.name} (mode got {got.mode}, expected "
                f"{exp.mode}; differing box {diff.getbbox()}, max diff per band "
                f"{[hi for _, hi in diff.getextrema()]})"
            )
    else:
        diff = ImageChops.difference(got.convert("RGB"), exp.convert("RGB"))
        mean = sum(ImageStat.Stat(diff).mean) / 3
        assert mean <= lossy_tolerance, (
            f"{what}: mean absolute difference {mean:.2f} from {expected_path.name} exceeds "
            f"{lossy_tolerance}"
        )


def is_lossy(path: Path) -> bool:
    return path.suffix.lower() in (".jpg", ".jpeg")


def ffmpeg_frames(video: Path, numbers: list[int], outdir: Path) -> dict:
    """Decodes the given frame numbers (presentation order) of `video` with the ffmpeg CLI into
    RGB PNGs; returns {number: PIL image}, or None when ffmpeg is not installed."""
    import shutil

    if shutil.which("ffmpeg") is None:
        return None
    numbers = sorted(set(numbers))
    outdir.mkdir(parents=True, exist_ok=True)
    select = "+".join(f"eq(n\\,{n})" for n in numbers)
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf", f"select={select}",
        "-vsync", "0", "-pix_fmt", "rgb24", str(outdir / "f%04d.png"),
    ]
    subprocess.run(cmd, check=True, timeout=60)
    out = {}
    for i, n in enumerate(numbers):
        out[n] = open_image((outdir / f"f{i + 1:04d}.png").read_bytes()).convert("RGB")
    return out


def mean_diff(a, b) -> float:
    from PIL import ImageChops, ImageStat

    d = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(d).mean) / 3
