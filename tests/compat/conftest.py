"""Fixtures of the cvat-sdk / cvat-cli 2.80.0 compatibility suite.

The suite starts the real server binary once per session and drives it only through the public
clients (plus `requests` for the few things the clients cannot express). Contract:
/work/shared/spec/client-api.md (shared/spec/client-api.md beside the repository).

What this file assumes of the server (keep in sync with tests/compat/README.md):

* `frameserver serve --data-dir DIR --bind 127.0.0.1:0 --share-dir SHARE` prints, as its first
  stdout line, `frameserver listening on http://127.0.0.1:PORT`; logs go to stderr; SIGTERM stops it.
* With `FRAMESERVER_ADMIN_PASSWORD=<pw>` in its environment the server creates the superuser
  `admin` with that password when it first starts on an empty data dir. (The fixture starts it
  once on an empty data dir, stops it, adds `alice`, and starts it again: this works whether
  "empty" means "no users" or "no admin", and checks that users survive a restart.)
* User management CLI (works on the database while the server is NOT running):
      frameserver user create NAME [--admin] [--password-stdin] --data-dir DIR
      frameserver user passwd NAME [--password-stdin] --data-dir DIR
      frameserver user list --data-dir DIR
  With `--password-stdin` the password is the first line of standard input (a trailing newline is
  stripped). The suite creates the ordinary (non-admin) user `alice` this way between the two
  starts, and logs `user list` into the server log.
* Personal access tokens mirror CVAT's API: `POST /api/auth/access_tokens` with JSON
  `{"name": ...}` (session cookie + `X-CSRFToken`) -> 201 `{"id", "name", "value": <token>, ...}`;
  `GET /api/auth/access_tokens` (paginated list); `DELETE /api/auth/access_tokens/{id}` revokes.

Environment knobs (set by run.sh or by hand):
  FRAMESERVER_BIN   the server binary (default: <repo>/target/release/frameserver)
  COMPAT_TIMEOUT    per-phase watchdog in seconds (default 120)
  COMPAT_SERVER_LOG the server's FRAMESERVER_LOG filter (default: info,tower_http=debug)
  COMPAT_ANONYMOUS  1 = development aid for servers without auth: the client fixtures do not log
                    in and the tests that need users are skipped. CI must not set it.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compat_util import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    ALICE_PASSWORD,
    ALICE_USER,
    ANONYMOUS,
    LOCAL_IMAGES,
    REPO,
    SHARE_FILES,
    TESTDATA,
    TIMEOUT,
    VIDEO_SOURCE,
    login_client,
    need_auth,
)

# --------------------------------------------------------------------------------------------
# Watchdog: the SDK polls background requests forever, so every test phase gets a deadline.
# SIGALRM interrupts blocking socket reads in the main thread; the test then fails normally.


class CompatTimeout(Exception):
    pass


def _arm(phase: str, nodeid: str):
    def on_alarm(signum, frame):
        sys.stderr.write(f"\n=== compat watchdog: {nodeid} {phase} exceeded {TIMEOUT:.0f}s; stacks:\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise CompatTimeout(
            f"{phase} of {nodeid} exceeded {TIMEOUT:.0f}s (COMPAT_TIMEOUT); the clients poll "
            "background requests without a timeout, so a request that never finishes ends here. "
            "See the server log section below."
        )

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    return previous


def _disarm(previous):
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    prev = _arm("setup", item.nodeid)
    try:
        yield
    finally:
        _disarm(prev)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    prev = _arm("call", item.nodeid)
    try:
        yield
    finally:
        _disarm(prev)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    prev = _arm("teardown", item.nodeid)
    try:
        yield
    finally:
        _disarm(prev)


# --------------------------------------------------------------------------------------------
# The server process


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d\.\d{3})\d*Z\s+")
_REQUEST = re.compile(r"request\{method=(\S+) uri=(\S+)[^}]*\}: tower_http::trace::on_(request|response): ")
_RESPONSE = re.compile(r"latency=(\d+ \w+) status=(\d+)")


def compact_log_line(line: str):
    t = _TIME.match(line)
    stamp = t.group(1) + " " if t else ""
    rest = line[t.end():] if t else line
    m = _REQUEST.search(rest)
    if not m:
        return stamp + rest
    if m.group(3) == "request":
        return None
    r = _RESPONSE.search(rest)
    if not r:
        return stamp + rest
    mark = "   " if r.group(2).startswith("2") else "!! "
    return f"{stamp}{mark}{m.group(1)} {m.group(2)} -> {r.group(2)} ({r.group(1)})"


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    host: str
    port: int
    data_dir: Path
    share_dir: Path
    log_path: Path
    user_errors: dict = field(default_factory=dict)

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, max_lines: int = 80) -> str:
        """The server log from `offset`, compacted: one line per HTTP request
        (`METHOD URI -> STATUS`, non-2xx marked with '!!'), other lines as logged."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"(cannot read {self.log_path}: {e})"
        lines = [compact_log_line(_ANSI.sub("", line)) for line in text.splitlines()]
        lines = [line for line in lines if line is not None]
        if len(lines) > max_lines:
            lines = [f"... ({len(lines) - max_lines} earlier lines in {self.log_path})"] + lines[-max_lines:]
        return "\n".join(lines)

    def tail(self, n: int = 60) -> str:
        return self.log_since(0, n)


def _server_bin() -> Path:
    p = Path(os.environ.get("FRAMESERVER_BIN", REPO / "target" / "release" / "frameserver"))
    if not p.is_absolute():
        p = REPO / p
    if not p.exists():
        pytest.exit(
            f"server binary {p} not found: build it (cargo build --release --bin frameserver) "
            "or set FRAMESERVER_BIN; tests/compat/run.sh does this for you",
            returncode=3,
        )
    return p


def _run_user_cli(binary: Path, args: list[str], password: str | None, log) -> str | None:
    """Runs `frameserver user ...`; returns None on success, else a readable error."""
    cmd = [str(binary), "user", *args]
    try:
        r = subprocess.run(
            cmd,
            input=(password + "\n") if password is not None else None,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`{' '.join(cmd)}` could not run: {e}"
    log.write(f"$ {' '.join(cmd)}\n-> rc {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}\n")
    log.flush()
    if r.returncode != 0:
        return (
            f"`{' '.join(cmd)}` (password on stdin) exited {r.returncode}; expected 0.\n"
            f"stdout: {r.stdout.strip()}\nstderr: {r.stderr.strip()}"
        )
    return None


class _Process:
    """One `frameserver serve` process: stderr into the shared log, the first stdout line parsed,
    later stdout lines copied into the log."""

    PREFIX = "frameserver listening on "

    def __init__(self, binary: Path, data_dir: Path, share_dir: Path, log, log_lock, env):
        cmd = [
            str(binary), "serve",
            "--data-dir", str(data_dir),
            "--bind", "127.0.0.1:0",
            "--share-dir", str(share_dir),
        ]
        with log_lock:
            log.write(f"$ FRAMESERVER_ADMIN_PASSWORD=... {' '.join(cmd)}\n")
            log.flush()
        self.log, self.log_lock = log, log_lock
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        self._lines: queue.Queue = queue.Queue()
        self._pumper = threading.Thread(target=self._pump, daemon=True)
        self._pumper.start()

    def _pump(self):
        first = True
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace")
            if first:
                self._lines.put(text)
                first = False
            else:
                with self.log_lock:
                    if not self.log.closed:
                        self.log.write("[stdout] " + text)
                        self.log.flush()
        self._lines.put(None)

    def wait_listening(self, timeout: float = 30) -> str | None:
        """The base URL, or None (the process is then killed)."""
        try:
            first = self._lines.get(timeout=timeout)
        except queue.Empty:
            first = None
        if first and first.startswith(self.PREFIX):
            return first[len(self.PREFIX):].strip().rstrip("/")
        self.proc.kill()
        self.proc.wait()
        self.failure = (
            f"expected a first stdout line '{self.PREFIX}http://127.0.0.1:PORT', got {first!r}; "
            f"exit code {self.proc.returncode}"
        )
        return None

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
            msg = f"compat: server exited with {rc} after SIGTERM\n"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            msg = "compat: server did not stop within 15 s of SIGTERM; killed\n"
        self._pumper.join(timeout=5)
        with self.log_lock:
            self.log.write(msg)
            self.log.flush()
        return msg


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """The server under test. Started twice: first on an empty data dir (it creates `admin` from
    FRAMESERVER_ADMIN_PASSWORD) and stopped; then `alice` is added with `frameserver user create`
    while it is down, and it is started again on the same data dir for the whole session. This
    works whether the server reads "empty database" as "no users" or as "no admin", and checks
    that users survive a restart."""
    binary = _server_bin()
    root = tmp_path_factory.mktemp("frameserver")
    data_dir = root / "data"
    share_dir = root / "share"
    data_dir.mkdir()
    for rel, src in SHARE_FILES.items():
        dst = share_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TESTDATA / src, dst)
    log_path = root / "server.log"
    log = open(log_path, "w", encoding="utf-8", errors="replace")
    log_lock = threading.Lock()

    env = dict(os.environ)
    env["FRAMESERVER_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    env["FRAMESERVER_LOG"] = os.environ.get("COMPAT_SERVER_LOG", "info,tower_http=debug")
    env["NO_COLOR"] = "1"
    env.setdefault("RUST_BACKTRACE", "1")

    def give_up(p: _Process, phase: str):
        with log_lock:
            log.close()
        pytest.exit(
            f"server did not start ({phase}): {p.failure}.\n--- {log_path} ---\n"
            + log_path.read_text(errors="replace")[-6000:],
            returncode=3,
        )

    user_errors = {}
    if not ANONYMOUS:
        first = _Process(binary, data_dir, share_dir, log, log_lock, env)
        if first.wait_listening() is None:
            give_up(first, "first start, empty data dir")
        first.stop()
        err = _run_user_cli(
            binary, ["create", ALICE_USER, "--password-stdin", "--data-dir", str(data_dir)],
            ALICE_PASSWORD, log,
        )
        if err:
            user_errors[ALICE_USER] = err
        # For the log (and for humans reading it when a login fails).
        _run_user_cli(binary, ["list", "--data-dir", str(data_dir)], None, log)

    p = _Process(binary, data_dir, share_dir, log, log_lock, env)
    url = p.wait_listening()
    if url is None:
        give_up(p, "session start")
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    srv = Server(p.proc, url, f"http://{host}", int(port), data_dir, share_dir, log_path, user_errors)
    yield srv

    p.stop()
    with log_lock:
        log.close()


# Attach the server's log lines written during a failed test to its report, and the tail of the
# whole log at the end of a failed session.

_LOG_OFFSET_KEY = pytest.StashKey[int]()
_SERVER_KEY = pytest.StashKey[Server]()


@pytest.fixture(autouse=True)
def _server_log_marker(request, server):
    request.config.stash[_SERVER_KEY] = server
    request.node.stash[_LOG_OFFSET_KEY] = server.log_size()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        srv = item.config.stash.get(_SERVER_KEY, None)
        offset = item.stash.get(_LOG_OFFSET_KEY, None)
        if srv is not None and offset is not None:
            rep.sections.append(
                (f"frameserver log during this test ({srv.log_path})", srv.log_since(offset))
            )
            if srv.proc.poll() is not None:
                rep.sections.append(
                    ("frameserver exited", f"exit code {srv.proc.returncode}\n{srv.tail(40)}")
                )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    srv = config.stash.get(_SERVER_KEY, None)
    if srv is None:
        return
    if exitstatus != 0:
        terminalreporter.section("frameserver log (tail)")
        terminalreporter.write_line(srv.tail(40))
    terminalreporter.write_line(f"compat: full server log: {srv.log_path}")


# --------------------------------------------------------------------------------------------
# Clients


@pytest.fixture(scope="session")
def admin_client(server, tmp_path_factory):
    try:
        client = login_client(
            server, None if ANONYMOUS else (ADMIN_USER, ADMIN_PASSWORD),
            tmp_path_factory.mktemp("sdk-cache-admin"),
        )
    except AssertionError as e:
        raise AssertionError(
            f"{e}\n(admin should exist: the server was first started on an empty data dir with "
            f"FRAMESERVER_ADMIN_PASSWORD set; `frameserver user list` is in {server.log_path})"
        ) from None
    yield client
    client.close()


@pytest.fixture(scope="session")
def alice_client(server, tmp_path_factory):
    need_auth()
    if ALICE_USER in server.user_errors:
        pytest.fail(
            "the second user could not be created before the server started:\n"
            + server.user_errors[ALICE_USER],
            pytrace=False,
        )
    client = login_client(server, (ALICE_USER, ALICE_PASSWORD), tmp_path_factory.mktemp("sdk-cache-alice"))
    yield client
    client.close()


@pytest.fixture(scope="session")
def local_images(tmp_path_factory) -> dict[str, Path]:
    """The local image files of the image tasks, by task name (see LOCAL_IMAGES)."""
    d = tmp_path_factory.mktemp("local-images")
    out = {}
    for name, src in LOCAL_IMAGES:
        shutil.copyfile(TESTDATA / "images" / "set" / src, d / name)
        out[name] = d / name
    return out


@pytest.fixture(scope="session")
def local_video(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("local-video")
    p = d / "clip.mp4"
    shutil.copyfile(VIDEO_SOURCE, p)
    return p


@pytest.fixture(scope="session", autouse=True)
def _quiet_sdk_logging():
    # Keep the SDK's INFO progress lines out of failure reports; warnings stay visible.
    logging.getLogger("cvat_sdk").setLevel(logging.WARNING)
    yield


