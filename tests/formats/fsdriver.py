"""A tiny driver for a live `frameserver serve`, shared by tests/formats/datumaro_check.py and
benches/compare_formats.py: start the server on an ephemeral port (as tests/compat/conftest.py
does), log in with cvat-sdk 2.80, create tasks, export and import datasets, and time the raw HTTP
steps (export POST → finished request → download; import POST → finished request).

Needs cvat-sdk (task creation with the upload protocol the SDK uses) and urllib3; no pytest.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "Adm1n-formats.pw")
PREFIX = "frameserver listening on "


def server_bin() -> Path:
    p = Path(os.environ.get("FRAMESERVER_BIN", REPO / "target" / "release" / "frameserver"))
    if not p.is_absolute():
        p = REPO / p
    if not p.exists():
        raise SystemExit(f"server binary {p} not found: build it or set FRAMESERVER_BIN")
    return p


class Server:
    """`frameserver serve --bind 127.0.0.1:0` on a fresh data dir; stop() or use as a context."""

    def __init__(self, share_dir: Path | None = None, data_dir: Path | None = None,
                 log_path: Path | None = None, extra_args: list[str] | None = None):
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fsdriver-")
            data_dir = Path(self._tmp.name) / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.log_path = log_path or data_dir.parent / "server.log"
        cmd = [str(server_bin()), "serve", "--data-dir", str(data_dir), "--bind", "127.0.0.1:0"]
        if share_dir is not None:
            cmd += ["--share-dir", str(share_dir)]
        cmd += extra_args or []
        env = dict(os.environ)
        env["FRAMESERVER_ADMIN_PASSWORD"] = ADMIN[1]
        env.setdefault("FRAMESERVER_LOG", "info")
        env["NO_COLOR"] = "1"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        lines: queue.Queue = queue.Queue()

        def pump():
            first = True
            for raw in iter(self.proc.stdout.readline, b""):
                if first:
                    lines.put(raw.decode("utf-8", "replace"))
                    first = False
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            first = None
        if not first or not first.startswith(PREFIX):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"server did not start: first line {first!r}; log {self.log_path}:\n"
                               + self.log_path.read_text(errors="replace")[-3000:])
        self.url = first[len(PREFIX):].strip().rstrip("/")
        self.host, port = self.url.split("://", 1)[1].rsplit(":", 1)
        self.port = int(port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- process memory (Linux) ------------------------------------------------------------

    def _status(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def rss(self) -> int:
        return self._status("VmRSS")

    def peak_rss(self) -> int:
        """VmHWM: the peak resident set size since start or the last reset_peak_rss()."""
        return self._status("VmHWM")

    def reset_peak_rss(self) -> bool:
        """Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`, Linux ≥ 4.0)."""
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    # ---- clients ---------------------------------------------------------------------------

    def client(self):
        from cvat_sdk import Client, Config

        cache = Path(tempfile.mkdtemp(prefix="fsdriver-sdk-"))
        c = Client(self.url, config=Config(status_check_period=0.05, cache_dir=cache))
        c.login(ADMIN)
        return c


# --------------------------------------------------------------------------------------------
# Raw HTTP (urllib3, a session login): timed steps without the SDK's polling sleeps


class Http:
    """A logged-in session (Django-style `sessionid` + `csrftoken` cookies) over one urllib3 pool."""

    def __init__(self, server: Server, credentials=ADMIN):
        import urllib3

        self.base = server.url
        self.pool = urllib3.PoolManager(maxsize=4, retries=False)
        r = self.pool.request("POST", self.base + "/api/auth/login",
                              body=json.dumps({"username": credentials[0], "password": credentials[1]}),
                              headers={"Content-Type": "application/json"})
        if r.status != 200:
            raise RuntimeError(f"login: HTTP {r.status}: {r.data[:500]!r}")
        cookies = {}
        for v in r.headers.getlist("Set-Cookie"):
            k, _, rest_ = v.split(";", 1)[0].partition("=")
            cookies[k.strip()] = rest_.strip()
        self.headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "X-CSRFToken": cookies.get("csrftoken", ""),
        }

    def request(self, method: str, path: str, *, body=None, headers=None, fields=None,
                preload=True, timeout=3600):
        h = dict(self.headers)
        h.update(headers or {})
        url = path if "://" in path else self.base + path
        if fields is not None:
            return self.pool.request(method, url, fields=fields, headers=h,
                                     preload_content=preload, timeout=timeout)
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        return self.pool.request(method, url, body=body, headers=h, preload_content=preload,
                                 timeout=timeout)


def rest(http: Http, method: str, path: str, *, expect=(200, 201, 202, 204), **kw):
    r = http.request(method, path, **kw)
    if expect and r.status not in expect:
        raise RuntimeError(f"{method} {path}: HTTP {r.status}: {r.data[:2000]!r}")
    return r


def wait_request(http: Http, rq_id: str, period: float = 0.001, timeout: float = 3600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = rest(http, "GET", f"/api/requests/{quote(rq_id, safe='')}")
        doc = json.loads(r.data)
        if doc["status"] == "finished":
            return doc
        if doc["status"] == "failed":
            raise RuntimeError(f"request {rq_id} failed: {doc.get('message')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"request {rq_id} did not finish within {timeout} s")
        time.sleep(period)


def request_seconds(doc: dict) -> float | None:
    """finished_date - created_date of a Request (None when either is missing)."""
    from datetime import datetime

    try:
        a = datetime.fromisoformat(doc["created_date"].replace("Z", "+00:00"))
        b = datetime.fromisoformat(doc["finished_date"].replace("Z", "+00:00"))
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    return (b - a).total_seconds()


def export(http, task_id: int, fmt: str, out: Path, *, save_images: bool,
           image_format: str | None = None, poll: float = 0.001) -> dict:
    """POST …/dataset/export, poll the request every `poll` seconds, download result_url into
    `out`.
    Returns the timings: `export_s` (POST to finished), `download_s`, `total_s`, `bytes`, and
    `server_s` (the request's created_date to finished_date: the server's own time)."""
    q = f"format={quote(fmt)}&save_images={'True' if save_images else 'False'}"
    if image_format:
        q += f"&image_format={image_format}"
    t0 = time.perf_counter()
    r = rest(http, "POST", f"/api/tasks/{task_id}/dataset/export?{q}", body=b"",
             headers={"Content-Type": "application/json"})
    rq = json.loads(r.data)["rq_id"]
    doc = wait_request(http, rq, period=poll)
    t1 = time.perf_counter()
    server_s = request_seconds(doc)
    resp = rest(http, "GET", doc["result_url"], preload=False)
    n = 0
    with open(out, "wb") as f:
        for chunk in resp.stream(1 << 20):
            f.write(chunk)
            n += len(chunk)
    resp.release_conn()
    t2 = time.perf_counter()
    return {"export_s": t1 - t0, "download_s": t2 - t1, "total_s": t2 - t0, "bytes": n,
            "server_s": server_s}


def import_file(http, task_id: int, fmt: str, path: Path) -> dict:
    """POST …/annotations?format= with the file as multipart `annotation_file`, poll until the
    request finishes. Returns `{"import_s": POST to finished, "server_s": the request's
    created_date to finished_date}`."""
    data = Path(path).read_bytes()
    t0 = time.perf_counter()
    r = rest(http, "POST", f"/api/tasks/{task_id}/annotations?format={quote(fmt)}",
             fields={"annotation_file": (Path(path).name, data, "application/octet-stream")})
    rq = json.loads(r.data)["rq_id"]
    doc = wait_request(http, rq)
    return {"import_s": time.perf_counter() - t0, "server_s": request_seconds(doc)}


def put_annotations(http, task_id: int, doc) -> float:
    """PUT /api/tasks/{id}/annotations (a dict, or JSON bytes); returns the seconds it took."""
    body = doc if isinstance(doc, (bytes, bytearray)) else json.dumps(doc).encode()
    t0 = time.perf_counter()
    rest(http, "PUT", f"/api/tasks/{task_id}/annotations", body=body,
         headers={"Content-Type": "application/json"})
    return time.perf_counter() - t0


def get_annotations(http, task_id: int) -> dict:
    return json.loads(rest(http, "GET", f"/api/tasks/{task_id}/annotations").data)


def labels_by_name(http, task_id: int) -> dict:
    """{label name: {"id", "attributes": {name: id}, "sublabels": {name: id}}}"""
    out = {}
    page = 1
    while True:
        doc = json.loads(rest(http, "GET", f"/api/labels?task_id={task_id}&page={page}&page_size=500").data)
        for l in doc["results"]:
            out[l["name"]] = {
                "id": l["id"], "type": l.get("type"),
                "attributes": {a["name"]: a["id"] for a in l.get("attributes", [])},
                "sublabels": {s["name"]: s["id"] for s in l.get("sublabels", [])},
            }
        if not doc.get("next"):
            return out
        page += 1


def create_task(client, name: str, labels: list, *, files=None, server_files=None,
                data: dict | None = None) -> int:
    """Creates a task from local files (uploaded as the SDK does) or share paths; returns its id."""
    from cvat_sdk.core.proxies.tasks import ResourceType

    params = {"image_quality": 70}
    params.update(data or {})
    if server_files is not None:
        t = client.tasks.create_from_data({"name": name, "labels": labels},
                                          resource_type=ResourceType.SHARE,
                                          resources=[str(s) for s in server_files],
                                          data_params=params)
    else:
        t = client.tasks.create_from_data({"name": name, "labels": labels},
                                          resources=[str(f) for f in files], data_params=params)
    return t.id


def unzip(path: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path) as z:
        z.extractall(dest)
    return dest


def zip_dir(src: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src).as_posix())
    return out


def png_bytes(w: int, h: int, color=(40, 120, 200)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def cvat_mask(bits: list, x0: int, y0: int, w: int, h: int) -> list:
    """CVAT's mask points from the row-major 0/1 `bits` of a w x h box at (x0, y0): run lengths
    over the box, zeros first, then left, top, right, bottom."""
    rle, cur, n = [], 0, 0
    for b in bits:
        if b == cur:
            n += 1
        else:
            rle.append(n)
            cur, n = b, 1
    rle.append(n)
    return [float(v) for v in rle] + [float(x0), float(y0), float(x0 + w - 1), float(y0 + h - 1)]
