"""cvat-cli 2.80.0 as a subprocess (spec §15): create, ls, frames, delete; auth errors; a PAT
from the environment. Each run gets an isolated HOME and XDG_CONFIG_HOME (no stored profiles)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat_util import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    ANONYMOUS,
    assert_same_image,
    open_image,
    create_access_token,
    need_auth,
)

CLI = Path(sys.executable).parent / "cvat-cli"


@pytest.fixture
def cli(server, tmp_path):
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)

    def run(*args, auth: str | None = f"{ADMIN_USER}:{ADMIN_PASSWORD}", env=None, expect_rc=0):
        full = [str(CLI), "--server-host", server.host, "--server-port", str(server.port)]
        e = {k: v for k, v in os.environ.items() if k not in ("CVAT_ACCESS_TOKEN", "PASS")}
        e.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                 XDG_CACHE_HOME=str(home / ".cache"))
        if ANONYMOUS:
            e["CVAT_ACCESS_TOKEN"] = "unused"  # no login request, no password prompt
        elif auth is not None:
            full += ["--auth", auth]
        full += [str(a) for a in args]
        e.update(env or {})
        r = subprocess.run(full, capture_output=True, text=True, env=e, cwd=tmp_path, timeout=120,
                           stdin=subprocess.DEVNULL)
        shown = " ".join(a if a != auth else "USER:***" for a in full[1:])
        if expect_rc is not None and r.returncode != expect_rc:
            raise AssertionError(
                f"cvat-cli {shown}: expected exit code {expect_rc}, got {r.returncode}\n"
                f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
            )
        if "is not compatible" in r.stderr:
            raise AssertionError(f"cvat-cli {shown} warned about the server version:\n{r.stderr}")
        return r

    return run


def listed_ids(r) -> list[int]:
    return [int(line) for line in r.stdout.split() if line.strip().isdigit()]


def test_create_ls_frames_delete(cli, admin_client, local_images, tmp_path):
    files = [local_images[n] for n in ("img_2.png", "img_10.png", "img_1.png")]
    r = cli("task", "create", "compat cli", "local", *files,
            "--labels", '[{"name": "car"}]', "--image_quality", "70")
    lines = r.stdout.strip().splitlines()
    assert lines and lines[-1].strip().isdigit(), f"task create: expected the new id on stdout, got {r.stdout!r}"
    task_id = int(lines[-1])
    try:
        task = admin_client.tasks.retrieve(task_id)
        assert (task.name, task.size) == ("compat cli", 3), f"created task: {(task.name, task.size)}"
        assert task.image_quality == 70, f"image_quality: expected 70, got {task.image_quality}"

        ids = listed_ids(cli("task", "ls"))
        assert task_id in ids, f"task ls: expected {task_id} in {ids}"

        js = json.loads(cli("task", "ls", "--json").stdout)
        assert task_id in [t["id"] for t in js], f"task ls --json: expected id {task_id}"

        outdir = tmp_path / "frames"
        cli("task", "frames", task_id, 0, 1, "--outdir", outdir)
        got = sorted(p.name for p in outdir.iterdir())
        expected = [f"task_{task_id}_frame_000000.png", f"task_{task_id}_frame_000001.png"]
        assert got == expected, f"task frames: expected files {expected}, got {got}"
        # The CLI sorts lexicographically by default: img_1.png, img_10.png, img_2.png.
        assert_same_image(open_image((outdir / expected[0]).read_bytes()),
                          local_images["img_1.png"], "cli frame 0")
        assert_same_image(open_image((outdir / expected[1]).read_bytes()),
                          local_images["img_10.png"], "cli frame 1")
    finally:
        cli("task", "delete", task_id)
    ids = listed_ids(cli("task", "ls"))
    assert task_id not in ids, f"task ls after delete: {task_id} still listed"
    # Deleting a missing task is not an error for the CLI.
    cli("task", "delete", task_id)


def test_wrong_password_exits_1(cli):
    need_auth()
    r = cli("task", "ls", auth=f"{ADMIN_USER}:wrong-password", expect_rc=1)
    assert "CRITICAL" in r.stderr, f"expected a CRITICAL log line, got stderr:\n{r.stderr}"


def test_access_token_from_environment(cli, admin_client):
    need_auth()
    token = create_access_token(admin_client, "compat-cli")
    r = cli("task", "ls", auth=None, env={"CVAT_ACCESS_TOKEN": token["value"]})
    assert r.returncode == 0
