"""Browser test: CVAT's own web UI (cvat-ui 2.73 production build) in headless Chromium, driven by
selenium against a real `frameserver serve --ui-dir`.

Steps (each a function below): a) start the server and create a video task over REST; b) log in
through the UI's login form; c) tasks list -> task page -> job page; d) frame 0 is drawn on the
annotation canvas (pixels compared with ffmpeg's decode of frame 0); e) play to frame >= 50, the
canvas changes; f) draw a rectangle and a polygon, save; g) REST sees both shapes, a reload shows
both in the objects sidebar; h) the job's state is "in progress"; i) no /api response >= 400 (but
401s before the login succeeded).

Every /api request the browser makes is recorded from Chromium's performance log (CDP
Network.requestWillBeSent / responseReceived / loadingFinished / loadingFailed), with the body
of every error response. A failing step is recorded and the later steps still run where they can
(a failure in a-b ends the UI part); the request check is the last assertion.

Environment: FRAMESERVER_BIN (server), FRAMESERVER_UI_DIR (the UI's dist/), BROWSER_ARTIFACTS
(output dir), CHROMIUM_BIN / CHROMEDRIVER_BIN. Exit code 0 pass, 1 fail, 2 setup error.
"""

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "hostile"))
import hostile  # noqa: E402  (the stdlib server harness: Server, login, upload, wait)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException, WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ARTIFACTS = os.environ.get("BROWSER_ARTIFACTS", os.path.join(REPO, "target", "browser-artifacts"))
UI_DIR = os.environ.get(
    "FRAMESERVER_UI_DIR", os.path.join(os.path.dirname(REPO), "shared", "cvat-ui", "dist")
)
CLIP = dict(size="320x240", rate=25, frames=200)
LABELS = [{"name": "car", "type": "any"}, {"name": "person", "type": "any"}]
PLAY_TO = 50
T0 = time.time()


class StepFailed(Exception):
    pass


class Watchdog(BaseException):
    """SIGALRM after BROWSER_TIMEOUT seconds (or SIGTERM): ends the steps, then the normal
    clean-up runs (browser quit, server stopped, artifacts written)."""


def check(cond, msg):
    if not cond:
        raise StepFailed(msg)


def log(msg):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


class RecordingServer(hostile.Server):
    """hostile.Server that remembers the test's own REST calls, so that the server log's
    requests can be told apart from the browser's."""

    def __init__(self, *args, **kw):
        self.own = []
        super().__init__(*args, **kw)

    def request(self, method, path, *args, **kw):
        self.own.append((method, path))
        return super().request(method, path, *args, **kw)


SERVER_LOG_LINE = re.compile(
    r"request\{method=(\S+) uri=(\S+) [^}]*\}: tower_http::trace::on_response: "
    r"finished processing request latency=(\d+) ms status=(\d+)"
)


def server_only_requests(log_text, browser_records, own):
    """The /api requests in the server log that neither the page's network log (Chromium does
    not report web workers' requests there: CVAT fetches chunks in a worker) nor the test made."""
    def key(method, path):  # the server logs paths without their trailing slash
        p, q, rest = path.partition("?")
        return method, p.rstrip("/") + q + rest

    seen = collections.Counter(key(r["method"], r["path"]) for r in browser_records)
    seen.update(key(m, p) for m, p in own)
    out = []
    for m in SERVER_LOG_LINE.finditer(log_text):
        method, uri, latency, status = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        if not uri.startswith("/api/"):
            continue
        if seen[key(method, uri)] > 0:
            seen[key(method, uri)] -= 1
            continue
        out.append({"method": method, "path": uri, "status": status, "latency_ms": latency,
                    "source": "server-log", "body": None})
    return out


# --- the recorded network and console --------------------------------------------------------


class Recorder:
    """Drains Chromium's performance and console logs; keeps every /api request in send order."""

    def __init__(self, driver):
        self.driver = driver
        self.records = []  # in send order
        self.by_id = {}  # CDP requestId -> the latest record
        self.console = []
        self.logged_in = False

    def drain(self):
        try:
            perf = self.driver.get_log("performance")
            self.console += self.driver.get_log("browser")
        except Exception:  # noqa: BLE001 — the driver is gone (watchdog): keep what we have
            return
        for entry in perf:
            msg = json.loads(entry["message"])["message"]
            self._event(msg.get("method", ""), msg.get("params", {}))

    def _event(self, method, p):
        rid = p.get("requestId")
        if method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if "/api/" not in urlsplit(url).path:
                return
            old = self.by_id.get(rid)
            if old is not None and p.get("redirectResponse"):
                old["status"] = p["redirectResponse"]["status"]
            u = urlsplit(url)
            rec = {
                "seq": len(self.records),
                "t": round(time.time() - T0, 2),
                "method": p["request"]["method"],
                "path": u.path + ("?" + u.query if u.query else ""),
                "request_body": (p["request"].get("postData") or "")[:2000] or None,
                "status": None,
                "after_login": self.logged_in,
                "finished": False,
                "error": None,
                "body": None,
            }
            self.records.append(rec)
            self.by_id[rid] = rec
        elif method == "Network.responseReceived":
            rec = self.by_id.get(rid)
            if rec is not None:
                rec["status"] = p["response"]["status"]
                if (rec["method"], urlsplit(rec["path"]).path, rec["status"]) == (
                    "POST", "/api/auth/login", 200
                ):
                    self.logged_in = True
        elif method == "Network.loadingFinished":
            rec = self.by_id.get(rid)
            if rec is not None:
                rec["finished"] = True
                if rec["status"] is not None and rec["status"] >= 400:
                    rec["body"] = self._body(rid)
        elif method == "Network.loadingFailed":
            rec = self.by_id.get(rid)
            if rec is not None:
                rec["error"] = p.get("errorText") + (" (canceled)" if p.get("canceled") else "")

    def _body(self, rid):
        try:
            r = self.driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": rid})
            return (r.get("body") or "")[:1000]
        except WebDriverException as e:
            return f"(body unavailable: {str(e).splitlines()[0][:100]})"

    def seen(self, method, path_prefix, since=0, status=None):
        self.drain()
        for r in self.records[since:]:
            if r["method"] == method and r["path"].startswith(path_prefix) and r["status"] is not None:
                if status is None or r["status"] == status:
                    return r
        return None

    def offending(self):
        self.drain()
        return [
            r for r in self.records
            if r["status"] is not None and r["status"] >= 400
            and not (r["status"] == 401 and not r["after_login"])
        ]

    def save(self, directory):
        self.drain()
        with open(os.path.join(directory, "api-log.json"), "w") as f:
            json.dump(self.records, f, indent=1)
        with open(os.path.join(directory, "console.json"), "w") as f:
            json.dump(self.console, f, indent=1)
        with open(os.path.join(directory, "console.txt"), "w") as f:
            for c in self.console:
                f.write(f"{c.get('level')}: {c.get('message')}\n")

    def console_errors(self):
        self.drain()
        return [c["message"] for c in self.console if c.get("level") == "SEVERE"]


def table(records):
    lines = [f"{'#':>4} {'method':6} {'status':>6}  path  | body"]
    for r in records:
        body = (r["body"] or "").replace("\n", " ")[:160]
        lines.append(f"{r['seq']:>4} {r['method']:6} {r['status']!s:>6}  {r['path']}  | {body}")
    return "\n".join(lines)


# --- the test --------------------------------------------------------------------------------


class UiTest:
    # Subclasses (annotate_test.py) override these and steps().
    labels = LABELS
    task_name = "browser video"
    server_kw = {}  # more hostile.Server arguments (e.g. share_dir)

    def __init__(self):
        self.server = None
        self.driver = None
        self.rec = None
        self.failures = []  # (step, reason)
        self.task_id = self.job_id = None
        self.clip_path = None
        self.drawn_frame = None
        self.canvas_frame0 = None
        self.notices = []  # the UI's notifications: {t, step, kind, text}
        self._seen_notices = set()  # WebElement ids of the notifications already recorded
        self.step = None

    # helpers ----------------------------------------------------------------------------------
    @property
    def base(self):
        return f"http://{self.server.host}:{self.server.port}"

    def shot(self, name):
        try:
            self.driver.save_screenshot(os.path.join(ARTIFACTS, f"{name}.png"))
        except Exception:  # noqa: BLE001 — a screenshot never fails a step
            pass

    def dismiss_notifications(self):
        """Records (once each, with its kind: error/warning/success/info) and closes the UI's
        notifications (they cover the right side of the page and intercept clicks)."""
        try:
            for n in self.driver.find_elements(By.CSS_SELECTOR, ".ant-notification-notice"):
                if not n.is_displayed():
                    continue
                cls = n.get_attribute("class") or ""
                kind = next((k for k in ("error", "warning", "success", "info")
                             if f"ant-notification-notice-{k}" in cls), "plain")
                text = " | ".join(t for t in n.text.splitlines() if t.strip())
                if text and n.id not in self._seen_notices:
                    self._seen_notices.add(n.id)
                    self.notices.append({"t": round(time.time() - T0, 1), "step": self.step,
                                         "kind": kind, "text": text})
                    log(f"UI notification ({kind}): {text}")
                for c in n.find_elements(By.CSS_SELECTOR, ".ant-notification-notice-close"):
                    try:
                        c.click()
                    except WebDriverException:
                        pass
        except WebDriverException:
            pass

    def click(self, el, what="element"):
        """el.click(), retried when a notification (or another overlay) intercepts it."""
        for attempt in range(4):
            try:
                return el.click()
            except ElementClickInterceptedException as e:
                if attempt == 3:
                    raise StepFailed(f"cannot click the {what}: {str(e).splitlines()[0][:300]}") from None
                self.dismiss_notifications()
                time.sleep(0.7)

    def wait(self, what, fn, timeout=30, poll=0.25):
        """Polls `fn` (drains the logs each time) until it returns a truthy value."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            self.rec.drain()
            self.dismiss_notifications()
            try:
                v = fn()
                if v:
                    return v
            except WebDriverException as e:
                last = e
            time.sleep(poll)
        extra = f" (last error: {str(last).splitlines()[0][:160]})" if last else ""
        raise StepFailed(f"timed out after {timeout} s waiting for {what}{extra}")

    def visible(self, css):
        els = [e for e in self.driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        return els[0] if els else None

    def wait_visible(self, css, timeout=30, what=None):
        return self.wait(what or f"a visible {css!r}", lambda: self.visible(css), timeout)

    def rest(self, method, path, body=None):
        r = self.server.request(method, path, body)
        return r

    def canvas_stats(self):
        """Size, per-channel mean/stddev, distinct colours and a 32x24 grey grid of the frame
        canvas, or None while it does not exist / has no size."""
        return self.driver.execute_script(
            """
            const c = document.getElementById('cvat_canvas_background');
            if (!c || !c.width || !c.height) return null;
            const w = c.width, h = c.height;
            const d = c.getContext('2d').getImageData(0, 0, w, h).data;
            const GW = 32, GH = 24, grid = new Array(GW * GH).fill(0), cnt = new Array(GW * GH).fill(0);
            let s = [0, 0, 0], q = [0, 0, 0], n = 0; const colours = new Set();
            for (let y = 0; y < h; y += 2) for (let x = 0; x < w; x += 2) {
                const i = (y * w + x) * 4;
                for (let k = 0; k < 3; k++) { s[k] += d[i + k]; q[k] += d[i + k] * d[i + k]; }
                n++;
                if (colours.size < 1000) colours.add((d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3));
                const g = Math.floor(x * GW / w) + GW * Math.floor(y * GH / h);
                grid[g] += (d[i] + d[i + 1] + d[i + 2]) / 3; cnt[g]++;
            }
            const mean = s.map(v => v / n);
            const std = q.map((v, k) => Math.sqrt(Math.max(0, v / n - mean[k] * mean[k])));
            return {w, h, mean, std, colours: colours.size, grid: grid.map((v, i) => cnt[i] ? v / cnt[i] : 0)};
            """
        )

    def frame_number(self):
        el = self.visible(".cvat-player-frame-selector input")
        if el is None:
            return None
        v = el.get_attribute("value")
        return int(v) if v not in (None, "") and v.lstrip("-").isdigit() else None

    def click_at_image(self, points, pause=0.3):
        """Clicks image coordinates `points` [(x, y)] on the annotation canvas."""
        rect = self.driver.execute_script(
            "const c = document.getElementById('cvat_canvas_background');"
            "const r = c.getBoundingClientRect();"
            "return {l: r.left, t: r.top, w: r.width, h: r.height, iw: c.width, ih: c.height};"
        )
        for x, y in points:
            sx = int(rect["l"] + x * rect["w"] / rect["iw"])
            sy = int(rect["t"] + y * rect["h"] / rect["ih"])
            ab = ActionBuilder(self.driver)
            ab.pointer_action.move_to_location(sx, sy)
            ab.pointer_action.click()
            ab.perform()
            time.sleep(pause)

    def press(self, *keys):
        ActionChains(self.driver).send_keys(*keys).perform()

    def objects_count(self):
        return len(self.driver.find_elements(By.CSS_SELECTOR, ".cvat-objects-sidebar-state-item"))

    def annotations(self):
        r = self.rest("GET", f"/api/jobs/{self.job_id}/annotations")
        check(r.status == 200, f"GET /api/jobs/{self.job_id}/annotations: {r}")
        return r.json()

    # a --------------------------------------------------------------------------------------
    def step_a_server_and_task(self):
        check(os.path.isfile(os.path.join(UI_DIR, "index.html")), f"no UI build at {UI_DIR}")
        self.server = RecordingServer("--ui-dir", UI_DIR, log_level="info,tower_http=debug",
                                      **self.server_kw)
        self.server.use_token()
        log(f"server at {self.base}")
        video = hostile.video_clip(
            size=CLIP["size"], seconds=CLIP["frames"] / CLIP["rate"], gop=50, rate=CLIP["rate"]
        )
        self.clip_path = os.path.join(self.server.tmp, "clip.mp4")
        with open(self.clip_path, "wb") as f:
            f.write(video)
        self.task_id = self.server.create_task(name=self.task_name, labels=self.labels)
        rq = self.server.upload(self.task_id, [("clip.mp4", video)])
        v = self.server.wait(rq, timeout=120)
        check(v["status"] == "finished", f"task data request: {v}")
        r = self.rest("GET", f"/api/jobs?task_id={self.task_id}")
        check(r.status == 200, f"jobs list: {r}")
        jobs = r.json()["results"]
        check(len(jobs) == 1, f"expected one job, got {jobs}")
        self.job_id = jobs[0]["id"]
        meta = self.rest("GET", f"/api/tasks/{self.task_id}/data/meta").json()
        check(meta["size"] == CLIP["frames"], f"task size {meta['size']}, expected {CLIP['frames']}")
        log(f"task {self.task_id}, job {self.job_id}, {meta['size']} frames")

    def start_browser(self):
        opts = webdriver.ChromeOptions()
        opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
        for a in ("--headless=new", "--no-sandbox", "--window-size=1600,1000",
                  "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                  "--disable-extensions", "--disable-background-networking",
                  # The UI links Google fonts: no network, fail fast instead of hanging the load.
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        opts.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
        service = webdriver.ChromeService(
            executable_path=os.environ.get("CHROMEDRIVER_BIN", shutil.which("chromedriver")),
            log_output=os.path.join(ARTIFACTS, "chromedriver.log"),
        )
        self.driver = webdriver.Chrome(options=opts, service=service)
        self.driver.set_page_load_timeout(60)
        self.rec = Recorder(self.driver)
        # So that response bodies can be read back after the fact.
        self.driver.execute_cdp_cmd("Network.enable", {"maxTotalBufferSize": 50_000_000,
                                                       "maxResourceBufferSize": 5_000_000})

    # b --------------------------------------------------------------------------------------
    def step_b_login(self):
        self.driver.get(self.base + "/")
        cred = self.wait_visible("#credential", 60, "the login form's username field (#credential)")
        self.click(cred, "username field")
        cred.send_keys("admin")
        pw = self.wait_visible("input#password", 10, "the login form's password field")
        pw.send_keys(hostile.ADMIN_PASSWORD)
        self.shot("b-login-form")
        btn = self.wait_visible(".cvat-login-form .cvat-credentials-action-button", 10,
                                "the Sign in button")
        self.click(btn, "Sign in button")
        self.wait("POST /api/auth/login -> 200",
                  lambda: self.rec.seen("POST", "/api/auth/login", status=200), 30)
        check(self.rec.logged_in, "login response not seen")

    # c --------------------------------------------------------------------------------------
    def step_c_open_job(self):
        try:
            item = self.wait_visible(".cvat-tasks-list-item", 60, "the tasks list")
            self.shot("c-tasks-list")
            check("browser video" in item.text, f"task list item text: {item.text!r}")
            btn = item.find_element(By.CSS_SELECTOR, ".cvat-item-open-task-button")
            self.click(btn, "Open task button")
            self.wait(f"the task page /tasks/{self.task_id}",
                      lambda: urlsplit(self.driver.current_url).path == f"/tasks/{self.task_id}", 20)
            link_css = f'.cvat-job-item a[href="/tasks/{self.task_id}/jobs/{self.job_id}"]'
            link = self.wait_visible(link_css, 60, f"the job link {link_css}")
            self.shot("c-task-page")
            self.click(link, "job link")
            self.wait(f"the job page /tasks/{self.task_id}/jobs/{self.job_id}",
                      lambda: urlsplit(self.driver.current_url).path
                      == f"/tasks/{self.task_id}/jobs/{self.job_id}", 20)
        except Exception:
            self.shot("c-failed")
            # Later steps can still run: go to the job page directly.
            self.driver.get(f"{self.base}/tasks/{self.task_id}/jobs/{self.job_id}")
            raise

    # d --------------------------------------------------------------------------------------
    def wait_canvas_drawn(self, timeout=60):
        def drawn():
            s = self.canvas_stats()
            return s if s and s["colours"] > 20 and max(s["std"]) > 10 else None
        try:
            return self.wait("a drawn (non-uniform) frame on #cvat_canvas_background", drawn, timeout)
        except StepFailed as e:
            s = None
            try:
                s = self.canvas_stats()
            except WebDriverException:
                pass
            if s:
                s = {k: v for k, v in s.items() if k != "grid"}
            raise StepFailed(f"{e}; canvas now: {s}") from None

    def reference_frame(self, n):
        """(mean rgb, 32x24 grey grid) of frame n of the clip, decoded by the ffmpeg CLI."""
        w, h = map(int, CLIP["size"].split("x"))
        raw = subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", self.clip_path,
             "-vf", f"select=eq(n\\,{n})", "-vframes", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            check=True, capture_output=True, timeout=60,
        ).stdout
        check(len(raw) == w * h * 3, f"ffmpeg frame {n}: {len(raw)} bytes")
        GW, GH = 32, 24
        grid, cnt, s, n_ = [0.0] * (GW * GH), [0] * (GW * GH), [0, 0, 0], 0
        for y in range(0, h, 2):
            row = y * w * 3
            gy = GW * (y * GH // h)
            for x in range(0, w, 2):
                i = row + x * 3
                r, g, b = raw[i], raw[i + 1], raw[i + 2]
                s[0] += r
                s[1] += g
                s[2] += b
                n_ += 1
                k = x * GW // w + gy
                grid[k] += (r + g + b) / 3
                cnt[k] += 1
        return [v / n_ for v in s], [g / c if c else 0 for g, c in zip(grid, cnt)]

    @staticmethod
    def grid_diff(a, b):
        return sum(abs(x - y) for x, y in zip(a, b)) / len(a)

    def step_d_frame0(self):
        self.wait_visible(".cvat-canvas-container, #cvat_canvas_wrapper", 60, "the annotation canvas")
        s = self.wait_canvas_drawn(60)
        self.wait("the frame number input", lambda: self.frame_number() is not None, 20)
        self.shot("d-frame0")
        fn = self.frame_number()
        check(fn == 0, f"the job opened at frame {fn}, expected 0")
        w, h = map(int, CLIP["size"].split("x"))
        check((s["w"], s["h"]) == (w, h), f"canvas is {s['w']}x{s['h']}, the video {w}x{h}")
        mean0, grid0 = self.reference_frame(0)
        _, grid_far = self.reference_frame(PLAY_TO)
        d0 = self.grid_diff(s["grid"], grid0)
        dfar = self.grid_diff(s["grid"], grid_far)
        dmean = max(abs(a - b) for a, b in zip(s["mean"], mean0))
        log(f"frame 0 on canvas: mean {[round(v) for v in s['mean']]} vs ffmpeg "
            f"{[round(v) for v in mean0]}; grid diff {d0:.1f} (vs frame {PLAY_TO}: {dfar:.1f})")
        check(dmean < 12 and d0 < 12,
              f"canvas does not look like frame 0: mean {s['mean']} vs {mean0}, grid diff {d0:.1f}")
        self.canvas_frame0 = s

    # e --------------------------------------------------------------------------------------
    def step_e_play(self):
        before = self.canvas_stats() or self.canvas_frame0
        play = self.wait_visible(".cvat-player-play-button", 20, "the play button")
        # The page watches the frame number and presses pause itself at PLAY_TO (a WebDriver
        # poll loop overshoots by seconds on a busy 2-core machine).
        self.driver.execute_script(
            """
            window.__fsPlay = {done: false, at: null};
            const target = arguments[0], t0 = Date.now();
            const tick = () => {
                const el = document.querySelector('.cvat-player-frame-selector input');
                const v = el ? parseInt(el.value, 10) : NaN;
                if (v >= target) {
                    const p = document.querySelector('.cvat-player-pause-button');
                    if (p) p.click();
                    window.__fsPlay = {done: true, at: v, ms: Date.now() - t0};
                    return;
                }
                if (Date.now() - t0 < 90000) setTimeout(tick, 10);
            };
            tick();
            """, PLAY_TO)
        self.click(play, "play button")
        try:
            res = self.wait(f"the frame number to reach {PLAY_TO} while playing",
                            lambda: self.driver.execute_script("return window.__fsPlay.done && window.__fsPlay;"),
                            90, poll=0.5)
            log(f"frame {res['at']} reached after {res['ms']} ms of playing")
        finally:
            pause = self.visible(".cvat-player-pause-button")
            if pause is not None:
                pause.click()
        time.sleep(1.0)
        fn = self.frame_number()
        s = self.wait_canvas_drawn(20)
        self.shot("e-after-play")
        log(f"played to frame {fn}")
        check(fn is not None and fn >= PLAY_TO, f"frame number {fn} after playing")
        diff = self.grid_diff(before["grid"], s["grid"])
        check(diff > 1.0, f"canvas did not change after playing to frame {fn} (grid diff {diff:.2f})")
        _, grid_fn = self.reference_frame(fn)
        d = self.grid_diff(s["grid"], grid_fn)
        log(f"canvas vs ffmpeg frame {fn}: grid diff {d:.1f}; vs frame 0: {diff:.1f}")
        check(d < 12, f"canvas does not look like frame {fn} (grid diff {d:.1f})")
        self.drawn_frame = fn

    # f --------------------------------------------------------------------------------------
    def open_draw_popover(self, shape):
        control = self.wait_visible(f".cvat-draw-{shape}-control", 20, f"the {shape} tool")
        self.click(control, f"{shape} tool")
        try:
            return self.wait_visible(".cvat-draw-shape-popover", 3, f"the {shape} popover")
        except StepFailed:
            ActionChains(self.driver).move_to_element(control).perform()
            return self.wait_visible(".cvat-draw-shape-popover", 10, f"the {shape} popover")

    def choose_label(self, popover, label):
        sel = popover.find_element(By.CSS_SELECTOR, ".ant-select")
        if label in sel.text:
            return
        self.click(sel, "label select")
        opt = self.wait(
            f"the label option {label!r}",
            lambda: next((e for e in self.driver.find_elements(
                By.CSS_SELECTOR, ".ant-select-dropdown .ant-select-item-option")
                if e.is_displayed() and e.text.strip() == label), None), 10)
        self.click(opt, f"label option {label}")
        self.wait(f"label {label!r} chosen", lambda: label in sel.text, 5)

    def step_f_draw_and_save(self):
        if self.drawn_frame is None:
            self.drawn_frame = self.frame_number() or 0
        n0 = self.objects_count()
        # Rectangle, label "car" (the first label), two clicks.
        pop = self.open_draw_popover("rectangle")
        self.choose_label(pop, "car")
        self.click(pop.find_element(By.CSS_SELECTOR, ".cvat-draw-rectangle-shape-button"), "Shape button")
        time.sleep(0.5)
        self.click_at_image([(40, 40), (140, 120)])
        self.wait("the rectangle in the objects sidebar", lambda: self.objects_count() == n0 + 1, 10)
        log("rectangle drawn")
        # Polygon, label "person", four clicks and N.
        pop = self.open_draw_popover("polygon")
        self.choose_label(pop, "person")
        self.click(pop.find_element(By.CSS_SELECTOR, ".cvat-draw-polygon-shape-button"), "Shape button")
        time.sleep(0.5)
        self.click_at_image([(180, 60), (290, 70), (280, 200), (170, 190)])
        self.press("n")
        self.wait("the polygon in the objects sidebar", lambda: self.objects_count() == n0 + 2, 10)
        log("polygon drawn")
        self.shot("f-after-drawing")
        # Save.
        since = len(self.rec.records)
        save = self.wait_visible(".cvat-annotation-header-save-button", 10, "the Save button")
        self.click(save, "Save button")
        log("save clicked")
        r = self.wait(f"the annotations of job {self.job_id} to be sent",
                      lambda: self.rec.seen("PATCH", f"/api/jobs/{self.job_id}/annotations", since)
                      or self.rec.seen("PUT", f"/api/jobs/{self.job_id}/annotations", since), 30)
        self.wait("the Save button to leave 'Saving...'",
                  lambda: "Saving" not in (self.visible(".cvat-annotation-header-save-button").text), 30)
        time.sleep(1)
        self.shot("f-after-save")
        check(r["status"] < 400, f"{r['method']} {r['path']} -> {r['status']}: {r['body']}")

    # g --------------------------------------------------------------------------------------
    def step_g_verify_and_reload(self):
        ann = self.annotations()
        kinds = sorted(s["type"] for s in ann.get("shapes", []))
        check(kinds == ["polygon", "rectangle"],
              f"stored shapes {kinds}, expected one rectangle and one polygon: {json.dumps(ann)[:600]}")
        frames = {s["frame"] for s in ann["shapes"]}
        check(frames == {self.drawn_frame}, f"shapes on frames {frames}, drawn on {self.drawn_frame}")
        labels = {s["type"]: s["label_id"] for s in ann["shapes"]}
        task_labels = {lb["name"]: lb["id"] for lb in
                       self.rest("GET", f"/api/labels?task_id={self.task_id}").json()["results"]}
        check(labels == {"rectangle": task_labels["car"], "polygon": task_labels["person"]},
              f"shape labels {labels}, task labels {task_labels}")
        self.driver.get(f"{self.base}/tasks/{self.task_id}/jobs/{self.job_id}?frame={self.drawn_frame}")
        self.wait_canvas_drawn(60)
        try:
            self.wait("2 objects in the objects sidebar after the reload",
                      lambda: self.objects_count() == 2, 30)
        finally:
            self.shot("g-after-reload")
        fn = self.frame_number()
        check(fn == self.drawn_frame, f"reload opened frame {fn}, expected {self.drawn_frame}")

    # h --------------------------------------------------------------------------------------
    def job_state(self):
        r = self.rest("GET", f"/api/jobs/{self.job_id}")
        check(r.status == 200, f"GET /api/jobs/{self.job_id}: {r}")
        return r.json().get("state")

    def step_h_job_state(self):
        state = self.job_state()
        if state == "in progress":
            log("job state 'in progress' (set by the UI after the first save)")
            return
        auto = self.rec.seen("PATCH", f"/api/jobs/{self.job_id}")
        note = (f"after the save the job state was {state!r}; the UI's automatic "
                f"PATCH /api/jobs/{self.job_id}: "
                + (f"{auto['status']} {auto['body']}" if auto else "not seen"))
        log(note + "; trying the job menu")
        since = len(self.rec.records)
        self.wait_visible(".cvat-annotation-header-menu-button", 10, "the job menu button").click()
        sub = self.wait("the 'Change job state' menu entry", lambda: next(
            (e for e in self.driver.find_elements(By.CSS_SELECTOR, ".ant-dropdown-menu-submenu-title")
             if e.is_displayed() and "Change job state" in e.text), None), 10)
        def entry():
            return next((e for e in self.driver.find_elements(
                By.CSS_SELECTOR, ".cvat-annotation-menu-job-state-submenu li")
                if e.is_displayed() and e.text.strip() == "in progress"), None)
        ActionChains(self.driver).move_to_element(sub).perform()
        try:
            item = self.wait("the 'in progress' entry (hover)", entry, 3)
        except StepFailed:
            self.click(sub, "Change job state entry")
            item = self.wait("the 'in progress' entry of 'Change job state'", entry, 10)
        self.click(item, "in progress entry")
        # CVAT asks for confirmation on some transitions.
        time.sleep(0.5)
        ok = self.visible(".ant-modal-confirm .ant-btn-primary")
        if ok is not None:
            ok.click()
        r = self.wait(f"PATCH /api/jobs/{self.job_id}",
                      lambda: self.rec.seen("PATCH", f"/api/jobs/{self.job_id}", since), 15)
        self.shot("h-job-state")
        state = self.job_state()
        check(state == "in progress",
              f"{note}; via the menu: PATCH -> {r['status']} {r['body']}; state now {state!r}")
        log(f"warning: {note}; the job menu then set 'in progress'")

    # i --------------------------------------------------------------------------------------
    def worker_requests(self):
        self.rec.drain()
        return server_only_requests(self.server.log_text(), self.rec.records, self.server.own)

    def step_i_api_errors(self):
        workers = self.worker_requests()
        log(f"{len(self.rec.records)} /api requests from the page, {len(workers)} more in the "
            f"server log only (workers: {collections.Counter(urlsplit(w['path']).path for w in workers)})")
        bad = self.rec.offending() + [
            dict(w, seq="w") for w in workers if w["status"] >= 400]
        if bad:
            print("\nOffending /api responses:\n" + table(bad), flush=True)
        check(not bad, f"{len(bad)} /api responses >= 400 after login: "
              + ", ".join(sorted({f"{r['method']} {urlsplit(r['path']).path} {r['status']}" for r in bad})))

    # driver -----------------------------------------------------------------------------------
    def steps(self):
        """(name, function, critical) in order; a name starting with "b" starts the browser
        first. A critical step's failure ends the run (but the final request check)."""
        return [
            ("a:server-and-task", self.step_a_server_and_task, True),
            ("b:login", self.step_b_login, True),
            ("c:open-job", self.step_c_open_job, False),
            ("d:frame0", self.step_d_frame0, False),
            ("e:play", self.step_e_play, False),
            ("f:draw-and-save", self.step_f_draw_and_save, False),
            ("g:verify-and-reload", self.step_g_verify_and_reload, False),
            ("h:job-state", self.step_h_job_state, False),
        ]

    def run(self):
        try:
            for i, (name, fn, critical) in enumerate(self.steps()):
                if name.startswith("b"):
                    self.start_browser()
                log(f"step {name}")
                self.step = name
                t = time.time()
                try:
                    fn()
                    log(f"step {name}: ok ({time.time() - t:.1f} s)")
                except Watchdog as e:
                    log(f"step {name}: FAILED: {e}")
                    self.failures.append((name, str(e)))
                    self.shot(f"{name.split(':')[0]}-watchdog")
                    break
                except Exception as e:  # noqa: BLE001 — recorded, reported at the end
                    reason = str(e) if isinstance(e, (StepFailed, AssertionError)) else \
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    if not isinstance(e, (StepFailed, AssertionError)):
                        traceback.print_exc()
                    log(f"step {name}: FAILED: {reason}")
                    self.failures.append((name, reason))
                    if self.driver is not None:
                        self.shot(f"{name.split(':')[0]}-failed")
                    if critical:
                        break
            if self.rec is not None:
                log("step i:api-errors")
                try:
                    self.step_i_api_errors()
                    log("step i:api-errors: ok")
                except StepFailed as e:
                    self.failures.append(("i:api-errors", str(e)))
        finally:
            self.finish()
        return self.failures

    def finish(self):
        if self.rec is not None:
            try:
                self.rec.save(ARTIFACTS)
            except Exception as e:  # noqa: BLE001
                print(f"browser: could not save the recorded logs: {e}")
            try:
                with open(os.path.join(ARTIFACTS, "api-log-workers.json"), "w") as f:
                    json.dump(self.worker_requests(), f, indent=1)
            except Exception:  # noqa: BLE001
                pass
            errs = self.rec.console_errors()
            if errs:
                print(f"\nBrowser console errors ({len(errs)}):", flush=True)
                for m in errs[:40]:
                    print("  " + m[:300])
            if self.notices:
                print(f"\nUI notifications ({len(self.notices)}):", flush=True)
                for n in self.notices:
                    print(f"  [{n['step']}] {n['text'][:300]}")
            with open(os.path.join(ARTIFACTS, "notifications.json"), "w") as f:
                json.dump(self.notices, f, indent=1)
            if self.failures and self.failures[-1][0] != "i:api-errors":
                bad = self.rec.offending()
                try:
                    bad += [dict(w, seq="w") for w in self.worker_requests() if w["status"] >= 400]
                except Exception:  # noqa: BLE001
                    pass
                if bad:
                    print("\nOffending /api responses:\n" + table(bad), flush=True)
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception:  # noqa: BLE001
                pass
        if self.server is not None:
            try:
                shutil.copy(self.server.log_path, os.path.join(ARTIFACTS, "server.log"))
            except OSError:
                pass
            self.server.stop()


def main(test_cls=None):
    limit = int(os.environ.get("BROWSER_TIMEOUT", "240"))

    def stop(signum, _frame):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Watchdog(f"watchdog: {'no result within %d s' % limit if signum == signal.SIGALRM else 'terminated'}")

    signal.signal(signal.SIGALRM, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.alarm(limit)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    os.makedirs(ARTIFACTS)
    return report((test_cls or UiTest)().run())


def report(failures):
    print(f"\nartifacts: {ARTIFACTS}  ({time.time() - T0:.0f} s)")
    if failures:
        for step, reason in failures[1:]:
            print(f"  also failed: {step}: {reason}")
        step, reason = failures[0]
        print(f"browser: FAILED: {step}: {reason}")
        return 1
    print("browser: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
