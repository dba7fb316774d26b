"""Shared harness of the hostile-input probes (tests/hostile/): a real `frameserver serve` child
process on a loopback port, logged-in HTTP helpers, and the child's peak RSS (VmHWM).

Python standard library only, so the probes need no venv. Each probe is one file
`probe_<name>.py` with a `run(...)` that raises AssertionError (or any exception) on failure;
`run.py` runs each in its own process with a time limit.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ADMIN_PASSWORD = "hostile-admin-password"


def binary():
    b = os.environ.get("FRAMESERVER_BIN", os.path.join(REPO, "target", "debug", "frameserver"))
    if not os.path.isabs(b):
        b = os.path.join(REPO, b)
    if not os.access(b, os.X_OK):
        raise SystemExit(f"hostile: FRAMESERVER_BIN={b} is not an executable")
    return b


def shared_testdata():
    return os.environ.get(
        "FRAMESERVER_SHARED_TESTDATA", os.path.join(os.path.dirname(REPO), "shared", "testdata")
    )


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Server:
    """`frameserver serve` on 127.0.0.1:0 with a fresh data dir; `args` are extra flags."""

    def __init__(self, *args, env=None, data_dir=None, share_dir=None, log_level="info"):
        self.tmp = tempfile.mkdtemp(prefix="fs-hostile-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        cmd = [binary(), "serve", "--data-dir", self.data_dir, "--bind", "127.0.0.1:0"]
        if share_dir:
            cmd += ["--share-dir", share_dir]
        cmd += [str(a) for a in args]
        e = dict(os.environ)
        e["FRAMESERVER_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        e["FRAMESERVER_LOG"] = log_level
        e.update(env or {})
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.log, env=e, stdin=subprocess.DEVNULL
        )
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if not m:
            self.proc.wait(10)
            raise AssertionError(f"server did not start: {line!r}\n{self.log_text()}")
        self.host, self.port = m.group(1), int(m.group(2))
        self.token = None
        self.cookies = {}

    # --- process -------------------------------------------------------------------------
    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def status_field(self, field):
        """A field of /proc/PID/status in bytes (VmHWM: peak RSS, VmRSS: current RSS)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def peak_rss(self):
        return self.status_field("VmHWM")

    def rss(self):
        return self.status_field("VmRSS")

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write("--- server log (tail) ---\n" + self.log_text()[-4000:] + "\n")
        self.stop()

    # --- HTTP ----------------------------------------------------------------------------
    def conn(self, timeout=60):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, auth=True, timeout=60):
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if auth and self.token and "Authorization" not in h:
            h["Authorization"] = f"Bearer {self.token}"
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def login(self, username="admin", password=ADMIN_PASSWORD, headers=None):
        """POST /api/auth/login; returns the response (cookies kept on success)."""
        r = self.request(
            "POST", "/api/auth/login", {"username": username, "password": password},
            headers=headers, auth=False,
        )
        return r

    def use_token(self, username="admin", password=ADMIN_PASSWORD):
        """Logs in and switches this client to a personal access token (Bearer)."""
        r = self.login(username, password)
        assert r.status == 200, f"login as {username}: {r}"
        cookies = {}
        for k, v in r.headers:
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                cookies[name] = rest.split(";")[0]
        r = self.request(
            "POST", "/api/auth/access_tokens", {"name": "hostile"}, auth=False,
            headers={
                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                "X-CSRFToken": cookies["csrftoken"],
            },
        )
        assert r.status == 201, f"token: {r}"
        self.token = r.json()["value"]
        return self.token

    def create_user(self, name, password, admin=False):
        args = [binary(), "user", "create", name, "--password-stdin", "--data-dir", self.data_dir]
        if admin:
            args.append("--admin")
        p = subprocess.run(args, input=password.encode(), capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr.decode()

    def metric(self, name):
        body = self.get("/metrics", auth=False).body.decode()
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {name} not found")

    # --- tasks ---------------------------------------------------------------------------
    def create_task(self, name="hostile", labels=None, **fields):
        body = {"name": name, "labels": labels or [{"name": "car"}], **fields}
        r = self.post("/api/tasks", body)
        assert r.status == 201, f"create task: {r}"
        return r.json()["id"]

    def upload(self, task, files, params=None):
        """Multipart POST /api/tasks/{task}/data with `files` [(name, bytes)]; returns rq_id."""
        fields = {"image_quality": "70", **(params or {})}
        body, ctype = multipart(fields, [(f"client_files[{i}]", n, b) for i, (n, b) in enumerate(files)])
        r = self.post(f"/api/tasks/{task}/data", body, headers={"Content-Type": ctype})
        assert r.status == 202, f"upload: {r}"
        return r.json()["rq_id"]

    def wait(self, rq_id, timeout=120):
        """Polls a background request until it ends; returns its JSON."""
        end = time.time() + timeout
        while time.time() < end:
            r = self.get(f"/api/requests/{rq_id}")
            assert r.status == 200, f"request {rq_id}: {r}"
            v = r.json()
            if v["status"] in ("finished", "failed"):
                return v
            time.sleep(0.1)
        raise AssertionError(f"request {rq_id} did not end in {timeout} s")


def multipart(fields, files):
    """A multipart/form-data body: `fields` {name: str}, `files` [(field, filename, bytes)]."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for field, name, data in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def mib(n):
    return f"{n / 2**20:.0f} MiB"


def video_clip(size="1920x1080", seconds=10, gop=250, rate=30):
    """The bytes of an H.264 MP4 made by the ffmpeg CLI (installed by scripts/install-deps.sh):
    `testsrc2` at `size`, a key frame every `gop` frames."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "clip.mp4")
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-t", str(seconds),
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
             "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", out],
            check=True, timeout=120,
        )
        with open(out, "rb") as f:
            return f.read()


def read_response(sock, timeout=None):
    """One raw HTTP/1.1 response on `sock`: (status, head, body) as bytes, the body as long as
    its Content-Length says (or until the server closes)."""
    if timeout is not None:
        sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed before a full response: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 "), f"no HTTP answer: {data[:200]!r}")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), head, body
