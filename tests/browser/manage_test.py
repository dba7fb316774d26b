"""Browser test of the task manager's and the reviewer's paths: CVAT's own web UI (cvat-ui 2.73
production build) in headless Chromium against a real `frameserver serve --ui-dir --share-dir`.

It reports, per step, whether the path works, and every /api response >= 400, every UI error
notification and every UI/REST mismatch it saw. Steps (independent: each makes its own fixtures
over REST; a failure is recorded and the next step runs):

  1  create a task from the UI with local files: 5 images (sent in one multipart POST) and a
     3.5 MB video (> the UI's 2 MB limit, so sent with TUS); open the job, frame 0 drawn
  2  create a task from the connected file share (several images, then a directory)
  3  task page: job stage / state / assignee through the job card's selects (checked over REST);
     Actions: export (CVAT for images 1.1, Datumaro 1.0: request, poll, download from the
     Requests page), upload annotations (CVAT 1.1), delete
  4  review: a job in stage "validation", Review workspace, issue tool (region + comment), reply,
     resolve, reopen, reload, Menu -> Finish the job (checked over REST)
  5  tasks list: search box, quick filters, sort (the UI's search= / filter= / sort=) vs REST

Where a server bug blocks the UI entirely (e.g. an empty format list), the test records it and
then, to reach the rest of the path, patches that one response in the page (a documented
workaround, printed as such).

Runs from any directory:  target/browser-venv/bin/python tests/browser/manage_test.py
Environment as ui_test.py (FRAMESERVER_BIN, FRAMESERVER_UI_DIR, CHROMIUM_BIN, CHROMEDRIVER_BIN,
BROWSER_TIMEOUT); artifacts in BROWSER_ARTIFACTS (default target/browser-artifacts-manage).
Exit code 0: every step works; 1: something is broken (see the report); 2: setup error.
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import zipfile
from urllib.parse import quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("BROWSER_ARTIFACTS", os.path.join(REPO, "target", "browser-artifacts-manage"))
os.environ.setdefault("FRAMESERVER_BIN", os.path.join(REPO, "target", "debug", "frameserver"))
os.environ.setdefault("CHROMIUM_BIN", shutil.which("chromium") or "/usr/bin/chromium")
os.environ.setdefault("CHROMEDRIVER_BIN", shutil.which("chromedriver") or "/usr/bin/chromedriver")
for _v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ.pop(_v, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
sys.path.insert(0, HERE)

import ui_test  # noqa: E402  (the browser harness: server, login, recorder, helpers)
from ui_test import ARTIFACTS, UI_DIR, By, ActionBuilder, StepFailed, Watchdog, check  # noqa: E402
from ui_test import WebDriverException, table  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

TESTDATA = os.path.join(REPO, "testdata")
IMAGES = os.path.join(TESTDATA, "images", "set")
LOCAL_IMAGES = ["a.jpg", "B2.png", "b9.png", "b10.png", "grey.jpg"]
DOWNLOADS = os.path.join(ARTIFACTS, "downloads")
log = ui_test.log

# Lower-cases the formats' "dimension" in the page (CVAT answers "2d"; the UI keeps only formats
# whose dimension equals the task's "2d"). Installed only after the bug has been recorded.
FORMATS_PATCH = r"""
(function () {
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (m, u) { this.__fsUrl = String(u); return open.apply(this, arguments); };
  const dT = Object.getOwnPropertyDescriptor(XMLHttpRequest.prototype, 'responseText');
  const dR = Object.getOwnPropertyDescriptor(XMLHttpRequest.prototype, 'response');
  const hit = x => (x.__fsUrl || '').includes('/api/server/annotation/formats');
  const fix = s => s.replace(/"dimension":\s*"2D"/g, '"dimension":"2d"');
  Object.defineProperty(XMLHttpRequest.prototype, 'responseText', {configurable: true, get() {
    const v = dT.get.call(this); return hit(this) && typeof v === 'string' ? fix(v) : v; }});
  Object.defineProperty(XMLHttpRequest.prototype, 'response', {configurable: true, get() {
    const v = dR.get.call(this);
    if (!hit(this)) return v;
    if (typeof v === 'string') return fix(v);
    if (v && typeof v === 'object' && !(v instanceof ArrayBuffer) && !(v instanceof Blob)) return JSON.parse(fix(JSON.stringify(v)));
    return v; }});
  window.__fsFormatsPatched = true;
})();
"""


def short(body, n=300):
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return body.replace("\n", " ")[:n]


class ManageTest(ui_test.UiTest):
    def __init__(self):
        super().__init__()
        self.problems = []  # {step, what, request, response, expected}
        self.results = collections.OrderedDict()  # step -> "works" | "broken: ..."
        self.step_ranges = []  # (step, first record index, last)
        self.formats_patched = False
        self._problem_keys = set()

    # --- recording -------------------------------------------------------------------------
    def problem(self, what, request=None, response=None, expected=None, key=None):
        """Records a broken thing (once per `key`, when given)."""
        if key is not None:
            if key in self._problem_keys:
                log(f"(again: {what})")
                return
            self._problem_keys.add(key)
        p = {"step": self.step, "what": what, "request": request, "response": response,
             "expected": expected}
        self.problems.append(p)
        log(f"PROBLEM: {what}" + (f"\n      request:  {request}" if request else "")
            + (f"\n      response: {response}" if response else "")
            + (f"\n      CVAT:     {expected}" if expected else ""))

    def req_text(self, r):
        body = f" body={short(r['request_body'], 200)}" if r.get("request_body") else ""
        return f"{r['method']} {r['path']}{body}"

    def resp_text(self, r):
        return f"{r['status']} {short(r.get('body'))}"

    def notice_since(self, n0, needle):
        self.dismiss_notifications()
        return next((n for n in self.notices[n0:] if needle in n["text"]), None)

    def error_notices_since(self, n0):
        self.dismiss_notifications()
        return [n for n in self.notices[n0:]
                if n.get("kind") == "error" or n["text"].startswith("Could not")]

    # --- UI helpers ----------------------------------------------------------------------------
    def options(self):
        return [e for e in self.driver.find_elements(
            By.CSS_SELECTOR, ".ant-select-dropdown .ant-select-item-option") if e.is_displayed()]

    def open_select(self, sel):
        self.click(sel.find_element(By.CSS_SELECTOR, ".ant-select-selector"), "select")

    def pick(self, sel, value, what):
        self.open_select(sel)
        opt = self.wait(f"the option {value!r} of {what}",
                        lambda: next((o for o in self.options() if o.text.strip() == value), None), 10)
        self.click(opt, f"option {value}")

    def menu_item(self, text, timeout=10):
        return self.wait(f"the menu entry {text!r}", lambda: next(
            (e for e in self.driver.find_elements(By.CSS_SELECTOR, ".ant-dropdown-menu-item")
             if e.is_displayed() and e.text.strip() == text), None), timeout)

    def task_action(self, text):
        self.click(self.wait_visible(".cvat-task-page-actions-button", 20, "the task Actions button"),
                   "Actions button")
        self.click(self.menu_item(text), text)

    def modal_button(self, modal, text):
        return next(b for b in modal.find_elements(By.CSS_SELECTOR, "button")
                    if b.is_displayed() and b.text.strip() == text)

    def watch_notifications(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self.rec.drain()
            self.dismiss_notifications()
            time.sleep(0.2)

    def rest_json(self, method, path, body=None, want=200):
        r = self.rest(method, path, body)
        check(r.status == want, f"{method} {path}: {r}")
        return r.json() if r.body else None

    # --- REST fixtures -------------------------------------------------------------------------
    def images_task(self, name, files=("a.jpg", "b9.png", "grey.jpg"), labels=("car", "person")):
        tid = self.server.create_task(name=name, labels=[{"name": n} for n in labels])
        payload = []
        for f in files:
            with open(os.path.join(IMAGES, f), "rb") as fh:
                payload.append((f, fh.read()))
        v = self.server.wait(self.server.upload(tid, payload))
        check(v["status"] == "finished", f"fixture task {name}: {v}")
        jid = self.rest_json("GET", f"/api/jobs?task_id={tid}")["results"][0]["id"]
        return tid, jid

    # --- form helpers --------------------------------------------------------------------------
    def open_create_form(self, name, labels):
        self.nav("Tasks", "/tasks")
        plus = self.wait_visible(".cvat-create-task-dropdown", 60, "the tasks page '+' button")
        self.click(plus, "+ button")
        self.click(self.wait_visible(".cvat-create-task-button", 10, "'Create a new task'"),
                   "Create a new task")
        self.wait("the create-task page", lambda: urlsplit(self.driver.current_url).path == "/tasks/create", 15)
        self.wait_visible("input#name", 20, "the task name field").send_keys(name)
        # "Continue" saves the label and opens the form for the next one.
        self.click(self.wait_visible(".cvat-constructor-viewer-new-item", 10, "Add label"), "Add label")
        for label in labels:
            self.wait_visible("input[placeholder='Label name']", 10, "the label name field").send_keys(label)
            self.click(self.visible(".cvat-submit-new-label-button"), "Continue (label)")
            time.sleep(0.3)
        cancel = self.visible(".cvat-cancel-new-label-button")
        if cancel is not None:
            self.click(cancel, "Cancel (label)")
        time.sleep(0.3)

    def submit_create_form(self, timeout=60):
        """Submit & Open; returns (task id or None, the records of the creation)."""
        since = len(self.rec.records)
        btn = self.wait_visible(".cvat-submit-open-task-button", 10, "Submit & Open")
        check(btn.is_enabled(), "'Submit & Open' is disabled")
        self.click(btn, "Submit & Open")
        tid = None

        def done():
            nonlocal tid
            p = urlsplit(self.driver.current_url).path
            if p.startswith("/tasks/") and p.split("/")[2].isdigit():
                tid = int(p.split("/")[2])
                return True
            return any(r["status"] is not None and r["status"] >= 400 and "/api/tasks" in r["path"]
                       for r in self.rec.records[since:])
        try:
            self.wait("the task page after Submit", done, timeout)
        finally:
            self.watch_notifications(1.0)
        return tid, self.rec.records[since:]

    def open_job_and_check_frame(self, tid):
        link_css = ".cvat-job-item a[href^='/tasks/%d/jobs/']" % tid
        link = self.wait_visible(link_css, 60, "the job link on the task page")
        jid = int(link.get_attribute("href").rstrip("/").split("/")[-1])
        self.click(link, "job link")
        self.wait("the job page", lambda: urlsplit(self.driver.current_url).path == f"/tasks/{tid}/jobs/{jid}", 20)
        s = self.wait("a drawn frame on #cvat_canvas_background", lambda: (
            lambda c: c if c and c["w"] and max(c["std"]) > 3 else None)(self.canvas_stats()), 60)
        meta = self.rest_json("GET", f"/api/tasks/{tid}/data/meta")
        f0 = meta["frames"][0]
        check((s["w"], s["h"]) == (f0["width"], f0["height"]),
              f"canvas {s['w']}x{s['h']}, frame 0 is {f0['width']}x{f0['height']}")
        fn = self.frame_number()
        check(fn == 0, f"the job opened at frame {fn}")
        return jid, s

    # ============================================================================================
    def step_setup(self):
        check(os.path.isfile(os.path.join(UI_DIR, "index.html")), f"no UI build at {UI_DIR}")
        self.server = ui_test.RecordingServer("--ui-dir", UI_DIR, share_dir=TESTDATA,
                                              log_level="info,tower_http=debug")
        self.server.use_token()
        self.server.create_user("reviewer1", "reviewer1-password")
        log(f"server at {self.base} (share {TESTDATA})")

    def step_login(self):
        self.step_b_login()
        os.makedirs(DOWNLOADS, exist_ok=True)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": DOWNLOADS})

    # 1 ------------------------------------------------------------------------------------------
    def step_1_local_images(self):
        self.open_create_form("ui local images", ["car", "person"])
        fi = self.driver.find_element(By.CSS_SELECTOR, ".cvat-file-manager-local-tab input[type=file], input[type=file]")
        fi.send_keys("\n".join(os.path.join(IMAGES, f) for f in LOCAL_IMAGES))
        self.wait("'5 files selected'", lambda: "5 files selected" in self.driver.page_source, 10)
        tid, recs = self.submit_create_form()
        bad = [r for r in recs if r["status"] and r["status"] >= 400]
        for r in bad:
            self.problem("task creation request failed", self.req_text(r), self.resp_text(r))
        check(tid is not None, "no task page after Submit")
        multi = [r for r in recs if r["method"] == "POST" and r["path"].startswith(f"/api/tasks/{tid}/data")]
        log(f"task {tid}: {len(multi)} POSTs to /data (start, files, finish)")
        t = self.rest_json("GET", f"/api/tasks/{tid}")
        labels = sorted(lb["name"] for lb in self.rest_json("GET", f"/api/labels?task_id={tid}")["results"])
        check(t["size"] == 5 and labels == ["car", "person"], f"task size {t['size']}, labels {labels}")
        jid, s = self.open_job_and_check_frame(tid)
        self.shot("1-images-frame0")
        log(f"task {tid} job {jid}: frame 0 drawn ({s['w']}x{s['h']})")

    def step_1_local_video_tus(self):
        clip = os.path.join(self.server.tmp, "big.mp4")
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "testsrc2=size=640x480:rate=25", "-t", "6", "-c:v", "libx264",
                        "-preset", "ultrafast", "-qp", "0", "-g", "25", "-pix_fmt", "yuv420p", clip],
                       check=True, timeout=60)
        size = os.path.getsize(clip)
        check(size > 2 * 2**20, f"clip is {size} bytes, not above the UI's 2 MiB TUS threshold")
        self.open_create_form("ui tus video", ["car"])
        self.driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(clip)
        tid, recs = self.submit_create_form(90)
        for r in recs:
            if r["status"] and r["status"] >= 400:
                self.problem("TUS task creation request failed", self.req_text(r), self.resp_text(r))
        check(tid is not None, "no task page after Submit")
        tus = [r for r in recs if r["method"] == "PATCH" and f"/api/tasks/{tid}/data/" in r["path"]]
        check(tus, "no TUS PATCH seen")
        log(f"task {tid}: video {size} bytes in {len(tus)} TUS PATCHes")
        t = self.rest_json("GET", f"/api/tasks/{tid}")
        check(t["size"] == 150, f"task size {t['size']}, expected 150 frames")
        jid, s = self.open_job_and_check_frame(tid)
        self.shot("1-video-frame0")
        log(f"task {tid} job {jid}: frame 0 drawn ({s['w']}x{s['h']})")

    # 2 ------------------------------------------------------------------------------------------
    def share_pane(self):
        return next(p for p in self.driver.find_elements(By.CSS_SELECTOR, ".cvat-file-manager-share-tab")
                    if p.is_displayed())

    def share_row(self, key):
        return self.wait(f"the share entry {key!r}", lambda: next(
            (r for r in self.share_pane().find_elements(By.CSS_SELECTOR, "tr.ant-table-row")
             if r.get_attribute("data-row-key") == key), None), 15)

    def share_toggle(self, key):
        self.click(self.share_row(key).find_element(By.CSS_SELECTOR, "input[type=checkbox]"), key)
        time.sleep(0.2)

    def step_2_share(self):
        self.open_create_form("ui share", ["car"])
        tab = next(e for e in self.driver.find_elements(By.CSS_SELECTOR, ".ant-tabs-tab")
                   if e.is_displayed() and e.text.strip() == "Connected file share")
        self.click(tab, "Connected file share tab")
        self.click(self.share_row("images/").find_element(By.CSS_SELECTOR, "button"), "images/")
        self.click(self.share_row("images/set/").find_element(By.CSS_SELECTOR, "button"), "images/set/")
        files = ["images/set/a.jpg", "images/set/b9.png", "images/set/grey.jpg"]
        for k in files:
            self.share_toggle(k)
        time.sleep(0.5)
        alert = self.visible(".ant-alert-error")
        btn = self.visible(".cvat-submit-open-task-button")
        if alert is not None or not btn.is_enabled():
            listing = self.rest("GET", "/api/server/share?directory=images%2Fset%2F")
            entry = next((e for e in listing.json() if e["name"] == "a.jpg"), None)
            self.problem(
                "the UI refuses several share images: " + (alert.text if alert else "Submit disabled"),
                "GET /api/server/share?directory=images/set/",
                f"{listing.status} ... {json.dumps(entry)} (mime_type is a full MIME type)",
                'CVAT: "mime_type" is the media kind from get_mime(): "image", "video", "archive", '
                '"pdf", "zip", "unknown" ("DIR" for directories); the UI compares with "image"/"video"')
            self.shot("2-share-files-refused")
            for k in files:
                self.share_toggle(k)
            log("falling back to selecting the directory images/set/nested/ (2 images)")
            self.share_toggle("images/set/nested/")
        tid, recs = self.submit_create_form()
        for r in recs:
            if tid is not None and r["status"] and r["status"] >= 400:
                self.problem("share task creation: a request failed", self.req_text(r), self.resp_text(r))
        if tid is None:
            # Pinpoint: the same request without the UI's (empty) upload session.
            fin = next((r for r in recs if r["status"] and r["status"] >= 400), None)
            body = json.loads(fin["request_body"]) if fin and fin["request_body"] else {}
            ptid = self.server.create_task(name="rest share", labels=[{"name": "car"}])
            r0 = self.rest("POST", f"/api/tasks/{ptid}/data", body)
            v = self.server.wait(r0.json()["rq_id"]) if r0.status == 202 else None
            log(f"same body without Upload-Start/Upload-Finish over REST: {r0.status} -> "
                f"{v and v['status']}")
            self.problem(
                "an Upload-Start session with no client files + server_files in Upload-Finish is refused",
                "POST /api/tasks/{id}/data (Upload-Start: true) {} -> 202; POST /api/tasks/{id}/data "
                f"(Upload-Finish: true) {short(fin and fin['request_body'], 200)}",
                self.resp_text(fin) if fin else None,
                "CVAT: 202 {rq_id}: the session has no uploaded files, so only server_files count "
                "(the UI always opens a session, even for share/remote/cloud sources)")
        check(tid is not None, "the UI could not create a task from the share")
        t = self.rest_json("GET", f"/api/tasks/{tid}")
        log(f"share task {tid}: size {t['size']}")
        self.open_job_and_check_frame(tid)
        self.shot("2-share-frame0")

    # 3 ------------------------------------------------------------------------------------------
    def job_rest(self, jid):
        return self.rest_json("GET", f"/api/jobs/{jid}")

    def check_formats(self, modal, css, want):
        sel = modal.find_element(By.CSS_SELECTOR, css)
        self.open_select(sel)
        time.sleep(0.7)
        names = [o.text.strip() for o in self.options()]
        if want not in names and not self.formats_patched:
            fm = self.rest("GET", "/api/server/annotation/formats")
            ex = fm.json()["exporters"][0]
            self.problem(
                f"the format list of {css} is empty ({len(names)} options): the UI keeps the formats "
                "whose dimension == the task's dimension ('2d')",
                "GET /api/server/annotation/formats", f"{fm.status} ... {json.dumps(ex)}",
                'CVAT: "dimension": "2d" (DimensionType values are "2d"/"3d")')
            log("workaround: patching the formats response in the page (dimension -> '2d') and reloading")
            self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FORMATS_PATCH})
            self.formats_patched = True
            return False
        check(want in names, f"format {want!r} not among {names}")
        self.click(next(o for o in self.options() if o.text.strip() == want), want)
        return True

    def export(self, tid, fmt):
        n0, since = len(self.notices), len(self.rec.records)
        self.task_action("Export task dataset")
        m = self.wait_visible(".cvat-modal-export-task", 10, "the export modal")
        if not self.check_formats(m, ".cvat-modal-export-select", fmt):
            self.driver.get(f"{self.base}/tasks/{tid}")
            self.wait_visible(".cvat-job-item", 30, "the job card")
            return self.export(tid, fmt)
        self.click(self.modal_button(m, "OK"), "OK")
        post = self.wait("POST .../dataset/export", lambda: self.rec.seen(
            "POST", f"/api/tasks/{tid}/dataset/export", since), 15)
        if post["status"] >= 400:
            self.problem(f"export {fmt} failed", self.req_text(post), self.resp_text(post))
            return None
        try:
            fin = self.wait("'Export is finished'", lambda: self.notice_since(n0, "Export is finished")
                            or self.error_notices_since(n0), 60)
        finally:
            self.shot(f"3-export-{fmt.split()[0]}")
        check(isinstance(fin, dict), f"export {fmt}: {fin}")
        rq = [r for r in self.rec.records[since:] if r["path"].startswith("/api/requests/")]
        log(f"export {fmt}: {post['path']} -> {post['status']}, {len(rq)} polls, '{fin['text']}'")
        rid = urlsplit(rq[-1]["path"]).path.split("/api/requests/")[1] if rq else None
        if rid:
            v = self.rest_json("GET", f"/api/requests/{quote(rid)}")
            op = v["operation"]
            if op.get("format") != fmt:
                self.problem(f"request {rid}: operation.format is {op.get('format')!r}",
                             f"GET /api/requests/{rid}", short(json.dumps(op)),
                             f"CVAT: operation.format = {fmt!r}", key="op-format")
            if "save_images=false" in post["path"] and op.get("type") != "export:annotations":
                self.problem(f"annotations-only export (save_images=false) is typed {op.get('type')!r}; "
                             "the Requests page shows it as 'Export Dataset'",
                             f"GET /api/requests/{rid}", short(json.dumps(op)),
                             "CVAT: operation.type 'export:annotations' (and rq id export:task-N-annotations-...)",
                             key="op-type")
        return rid

    def nav(self, text, path):
        """Goes to `path` with the header's link `text` (in-app navigation, no reload)."""
        link = next((e for e in self.driver.find_elements(By.CSS_SELECTOR, ".cvat-header button, .cvat-header a")
                     if e.is_displayed() and e.text.strip() == text), None)
        if link is None:
            self.driver.get(self.base + path)
        else:
            self.click(link, text)
        self.wait(f"the page {path}", lambda: urlsplit(self.driver.current_url).path == path, 15)

    def back_to_task(self, tid):
        """From the Requests page: the card's 'Task #N' link (in-app navigation)."""
        link = next((e for e in self.driver.find_elements(By.CSS_SELECTOR, f".cvat-requests-card a[href='/tasks/{tid}']")
                     if e.is_displayed()), None)
        if link is None:
            self.driver.get(f"{self.base}/tasks/{tid}")
        else:
            self.click(link, f"Task #{tid}")
        self.wait_visible(".cvat-job-item", 30, "the job card")

    def download_latest_request(self):
        before = set(os.listdir(DOWNLOADS))
        self.nav("Requests", "/requests")
        self.wait_visible(".cvat-requests-card", 30, "a card on the Requests page")
        btn = self.driver.find_elements(By.CSS_SELECTOR, ".cvat-requests-card .cvat-requests-page-actions-button")[0]
        self.click(btn, "request card actions")
        self.click(self.menu_item("Download"), "Download")

        def new_file():
            fresh = [f for f in set(os.listdir(DOWNLOADS)) - before if not f.endswith(".crdownload")]
            return fresh[0] if fresh else None
        name = self.wait("the downloaded file", new_file, 30)
        return os.path.join(DOWNLOADS, name)

    def step_3_task_page(self):
        tid, jid = self.images_task("manage task page")
        labels = {lb["name"]: lb["id"] for lb in self.rest_json("GET", f"/api/labels?task_id={tid}")["results"]}
        self.rest_json("PUT", f"/api/jobs/{jid}/annotations", {"version": 0, "tags": [], "tracks": [], "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": labels["car"], "points": [5, 5, 40, 30],
             "occluded": False, "z_order": 0, "attributes": [], "group": 0, "source": "manual"}]})
        self.driver.get(f"{self.base}/tasks/{tid}")
        card = self.wait_visible(".cvat-job-item", 60, "the job card on the task page")
        self.shot("3-task-page")
        # stage, state
        for css, field, value in ((".cvat-job-item-stage", "stage", "validation"),
                                  (".cvat-job-item-state", "state", "in progress")):
            since = len(self.rec.records)
            self.pick(self.visible(".cvat-job-item").find_element(By.CSS_SELECTOR, css), value, field)
            r = self.wait(f"PATCH /api/jobs/{jid}", lambda: self.rec.seen("PATCH", f"/api/jobs/{jid}", since), 15)
            j = self.job_rest(jid)
            log(f"{field} -> {value!r}: {r['method']} {r['path']} {r['request_body']} -> {r['status']}; REST {field}={j[field]!r}")
            if r["status"] >= 400 or j[field] != value:
                self.problem(f"job {field} change not applied", self.req_text(r), self.resp_text(r),
                             f"REST {field}={j[field]!r}")
        t = self.rest_json("GET", f"/api/tasks/{tid}")
        if t["status"] != "validation":
            self.problem("the task's status does not follow its job's stage",
                         f"GET /api/tasks/{tid} (its only job: stage validation)",
                         f"status={t['status']!r}, jobs={json.dumps(t['jobs'])}",
                         "CVAT: task.status is recomputed on job save: 'annotation' if a job is in "
                         "annotation, else 'validation' if one is in validation, else 'completed'")
        # assignee (the UI searches users as one types)
        since = len(self.rec.records)
        card = self.visible(".cvat-job-item")
        box = card.find_element(By.CSS_SELECTOR, ".cvat-job-assignee-selector input")
        self.click(box, "assignee")
        box.send_keys("review")
        # The box lists every user at first; its search (debounced 500 ms) then narrows the list.
        self.wait("GET /api/users?search=review", lambda: self.rec.seen(
            "GET", "/api/users?search=review", since), 10)
        try:
            self.wait("the options to narrow to the search answer", lambda: [
                o.text.strip() for o in self.options()] == ["reviewer1"], 5)
        except StepFailed:
            pass
        opt = self.wait("the option reviewer1", lambda: next(
            (o for o in self.options() if o.text.strip() == "reviewer1"), None), 10)
        shown = [o.text.strip() for o in self.options()]
        if "admin" in shown:
            r = self.rest("GET", "/api/users?search=review")
            self.problem("the user search ignores search=: typing 'review' offers " + str(shown),
                         "GET /api/users?search=review&limit=10&is_active=true",
                         f"{r.status} count={r.json()['count']} {[u['username'] for u in r.json()['results']]}",
                         "CVAT: search over username/first_name/last_name/email -> only reviewer1")
        self.click(opt, "reviewer1")
        r = self.wait(f"PATCH /api/jobs/{jid} (assignee)", lambda: next(
            (x for x in self.rec.records[since:] if x["method"] == "PATCH" and x["status"]
             and "assignee" in (x["request_body"] or "")), None), 15)
        j = self.job_rest(jid)
        log(f"assignee -> reviewer1: {r['request_body']} -> {r['status']}; REST assignee="
            f"{(j['assignee'] or {}).get('username')!r}")
        if r["status"] >= 400 or (j["assignee"] or {}).get("username") != "reviewer1":
            self.problem("job assignee change not applied", self.req_text(r), self.resp_text(r))
        self.shot("3-job-card-changed")
        # exports + download from the Requests page
        for fmt, member in (("CVAT for images 1.1", "annotations.xml"),
                            ("Datumaro 1.0", "annotations/default.json")):
            if self.export(tid, fmt) is None:
                continue
            path = self.download_latest_request()
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                check(member in names, f"{os.path.basename(path)}: no {member} in {names}")
                text = z.read(member).decode()
            check("car" in text, f"{member} does not mention the label 'car'")
            log(f"downloaded {os.path.basename(path)}: {names}")
            self.back_to_task(tid)
        # upload annotations (CVAT 1.1 XML, two boxes)
        meta = self.rest_json("GET", f"/api/tasks/{tid}/data/meta")
        xml = '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n'
        for i, f in enumerate(meta["frames"][:2]):
            xml += (f'<image id="{i}" name="{f["name"]}" width="{f["width"]}" height="{f["height"]}">\n'
                    '<box label="person" occluded="0" source="manual" xtl="2" ytl="3" xbr="20" ybr="25" z_order="0">'
                    '</box>\n</image>\n')
        xml += "</annotations>\n"
        ann = os.path.join(self.server.tmp, "ann.xml")
        with open(ann, "w") as fh:
            fh.write(xml)
        n0, since = len(self.notices), len(self.rec.records)
        self.task_action("Upload annotations")
        m = self.wait_visible(".cvat-modal-import-dataset", 10, "the import modal")
        if not self.check_formats(m, ".cvat-modal-import-select", "CVAT 1.1"):
            self.driver.get(f"{self.base}/tasks/{tid}")
            self.wait_visible(".cvat-job-item", 30, "the job card")
            self.task_action("Upload annotations")
            m = self.wait_visible(".cvat-modal-import-dataset", 10, "the import modal")
            self.check_formats(m, ".cvat-modal-import-select", "CVAT 1.1")
        m.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(ann)
        time.sleep(0.3)
        self.click(self.modal_button(m, "OK"), "OK")
        confirm = self.wait_visible(".ant-modal-confirm", 10, "the 'Replace existing annotations?' confirmation")
        self.click(self.modal_button(confirm, "Replace annotations"), "Replace annotations")
        fin = self.wait("'Annotations import is finished'", lambda: self.notice_since(
            n0, "import is finished") or self.error_notices_since(n0), 60)
        check(isinstance(fin, dict), f"import: {fin}")
        for r in self.rec.records[since:]:
            if r["status"] and r["status"] >= 400:
                self.problem("annotation upload request failed", self.req_text(r), self.resp_text(r))
        shapes = self.rest_json("GET", f"/api/tasks/{tid}/annotations")["shapes"]
        pl = labels["person"]
        check(len(shapes) == 2 and all(s["label_id"] == pl for s in shapes),
              f"after the import (replace) the task has {[(s['frame'], s['label_id']) for s in shapes]}")
        log(f"upload annotations: '{fin['text']}', REST has the 2 imported boxes")
        # delete
        since = len(self.rec.records)
        self.task_action("Delete")
        c = self.wait_visible(".cvat-modal-confirm-delete-task", 10, "the delete confirmation")
        self.click(self.modal_button(c, "Delete"), "Delete")
        r = self.wait(f"DELETE /api/tasks/{tid}", lambda: self.rec.seen("DELETE", f"/api/tasks/{tid}", since), 15)
        check(r["status"] == 204, f"DELETE -> {r['status']} {r['body']}")
        self.wait("the tasks list after the delete", lambda: urlsplit(self.driver.current_url).path == "/tasks", 15)
        g = self.rest("GET", f"/api/tasks/{tid}")
        check(g.status == 404, f"GET /api/tasks/{tid} after the delete: {g.status}")
        log(f"task {tid} deleted from the UI (REST 404)")

    # 4 ------------------------------------------------------------------------------------------
    def issue_labels(self):
        return [e for e in self.driver.find_elements(By.CSS_SELECTOR, ".cvat-hidden-issue-label") if e.is_displayed()]

    def open_issue_dialog(self):
        if self.visible(".cvat-issue-dialog") is None:
            lab = self.wait("an issue marker", lambda: (self.issue_labels() or [None])[0], 15)
            self.click(lab, "issue marker")
        return self.wait_visible(".cvat-issue-dialog", 10, "the issue dialog")

    def step_4_review(self, full=True):
        """A job in validation: an issue drawn with a comment, then resolved; `full` also replies,
        reopens, reloads and finishes the job."""
        tid, jid = self.images_task("manage review")
        self.rest_json("PATCH", f"/api/jobs/{jid}", {"stage": "validation"})
        self.driver.get(f"{self.base}/tasks/{tid}/jobs/{jid}")
        self.wait("a drawn frame", lambda: (lambda c: c if c and max(c["std"]) > 3 else None)(self.canvas_stats()), 60)
        ws = self.wait_visible(".cvat-workspace-selector", 20, "the workspace selector")
        if "Review" not in ws.text:
            self.pick(ws, "Review", "workspace")
        self.wait_visible(".cvat-review-workspace", 20, "the Review workspace")
        # the issue tool: drag a region, comment, submit
        since = len(self.rec.records)
        self.click(self.wait_visible(".cvat-issue-control", 10, "the issue tool"), "issue tool")
        time.sleep(0.4)
        rect = self.driver.execute_script(
            "const c=document.getElementById('cvat_canvas_background');const r=c.getBoundingClientRect();"
            "return {l:r.left,t:r.top,w:r.width,h:r.height,iw:c.width,ih:c.height};")

        def sc(x, y):
            return int(rect["l"] + x * rect["w"] / rect["iw"]), int(rect["t"] + y * rect["h"] / rect["ih"])
        (x0, y0), (x1, y1) = sc(rect["iw"] * 0.2, rect["ih"] * 0.2), sc(rect["iw"] * 0.6, rect["ih"] * 0.7)
        ab = ActionBuilder(self.driver)
        ab.pointer_action.move_to_location(x0, y0)
        ab.pointer_action.pointer_down()
        ab.pointer_action.move_to_location((x0 + x1) // 2, (y0 + y1) // 2)
        ab.pointer_action.move_to_location(x1, y1)
        ab.pointer_action.pointer_up()
        ab.perform()
        self.wait_visible("#issue_description", 10, "the new-issue comment field").send_keys("wrong box here")
        self.click(self.visible(".cvat-create-issue-dialog-submit-button"), "Submit issue")
        r = self.wait("POST /api/issues", lambda: self.rec.seen("POST", "/api/issues", since), 15)
        check(r["status"] == 201, f"POST /api/issues -> {r['status']} {r['body']}")
        issues = self.rest_json("GET", f"/api/issues?job_id={jid}")["results"]
        comments = self.rest_json("GET", f"/api/comments?job_id={jid}")["results"]
        check(len(issues) == 1 and [c["message"] for c in comments] == ["wrong box here"],
              f"REST issues {issues}, comments {comments}")
        iid = issues[0]["id"]
        log(f"issue {iid} created (position {issues[0]['position']}), its comment over REST")
        self.shot("4-issue-created")
        if full:
            self.review_reply(iid)
        buttons = [(".cvat-issue-dialog-resolve-button", True)]
        if full:
            buttons.append((".cvat-issue-dialog-reopen-button", False))
        for button, want in buttons:
            since = len(self.rec.records)
            self.open_issue_dialog()
            self.click(self.wait_visible(button, 5, button), button)
            r = self.wait(f"PATCH /api/issues/{iid}", lambda: self.rec.seen("PATCH", f"/api/issues/{iid}", since), 15)
            got = self.rest_json("GET", f"/api/issues/{iid}")["resolved"]
            check(r["status"] == 200 and got is want, f"{button}: PATCH -> {r['status']}, REST resolved={got}")
            log(f"{button.split('-')[-2]}: {r['request_body']} -> {r['status']}, REST resolved={got}")
            time.sleep(0.5)
        if full:
            self.review_reload_and_finish(jid)

    def review_reply(self, iid):
        since = len(self.rec.records)
        d = self.open_issue_dialog()
        d.find_element(By.CSS_SELECTOR, ".cvat-issue-dialog-input input").send_keys("agreed, will fix")
        self.click(self.wait_visible(".cvat-issue-dialog-comment-button", 5, "the Comment button"), "Comment")
        r = self.wait("POST /api/comments", lambda: self.rec.seen("POST", "/api/comments", since), 15)
        check(r["status"] == 201, f"POST /api/comments -> {r['status']} {r['body']}")
        msgs = sorted(c["message"] for c in self.rest_json("GET", f"/api/comments?issue_id={iid}")["results"])
        check(msgs == ["agreed, will fix", "wrong box here"], f"REST comments {msgs}")
        log("reply comment stored")

    def review_reload_and_finish(self, jid):
        # reload: the marker and the Issues tab
        self.driver.refresh()
        self.wait("a drawn frame after the reload", lambda: (lambda c: c if c and max(c["std"]) > 3 else None)(self.canvas_stats()), 60)
        self.wait("the issue marker after the reload", lambda: any(
            "wrong box here" in e.text for e in self.issue_labels()), 20)
        tab = next(e for e in self.driver.find_elements(By.CSS_SELECTOR, ".ant-tabs-tab")
                   if e.is_displayed() and e.text.strip() == "Issues")
        self.click(tab, "Issues tab")
        item = self.wait_visible(".cvat-objects-sidebar-issue-item", 10, "the issue in the Issues tab")
        check("agreed, will fix" in item.text, f"Issues tab item: {item.text!r}")
        self.shot("4-after-reload")
        log("after the reload: issue marker and Issues tab entry shown")
        # finish the job
        since = len(self.rec.records)
        self.click(self.wait_visible(".cvat-annotation-header-menu-button", 10, "the job Menu"), "Menu")
        self.click(self.menu_item("Finish the job"), "Finish the job")
        c = self.wait_visible(".ant-modal-confirm", 10, "the finish confirmation")
        self.click(c.find_element(By.CSS_SELECTOR, ".ant-btn-primary"), "Continue")
        self.wait("PATCH state completed", lambda: next(
            (x for x in self.rec.records[since:] if x["method"] == "PATCH" and x["status"]
             and '"completed"' in (x["request_body"] or "")), None), 20)
        j = self.job_rest(jid)
        patches = [f"{x['request_body']} -> {x['status']}" for x in self.rec.records[since:] if x["method"] == "PATCH"]
        log(f"finish the job: {patches}; REST stage={j['stage']!r} state={j['state']!r}")
        check(j["state"] == "completed", f"REST state {j['state']!r} after 'Finish the job'")

    # 5 ------------------------------------------------------------------------------------------
    def list_names(self):
        for attempt in range(5):  # the list re-renders while it loads
            try:
                return [e.find_element(By.CSS_SELECTOR, ".cvat-item-task-name").text
                        for e in self.driver.find_elements(By.CSS_SELECTOR, ".cvat-tasks-list-item")]
            except WebDriverException:
                time.sleep(0.5)
        raise StepFailed("the tasks list kept re-rendering")

    def wait_list(self, since, what):
        r = self.wait(f"GET /api/tasks ({what})", lambda: next(
            (x for x in reversed(self.rec.records[since:]) if x["method"] == "GET"
             and urlsplit(x["path"]).path == "/api/tasks" and x["status"]), None), 15)
        time.sleep(0.6)
        self.rec.drain()
        r = next(x for x in reversed(self.rec.records[since:]) if x["method"] == "GET"
                 and urlsplit(x["path"]).path == "/api/tasks" and x["status"])
        return r, self.list_names()

    def compare(self, what, req, got, expected):
        if sorted(got) != sorted(expected):
            self.problem(f"tasks list, {what}: the UI shows {got}", f"GET {req['path']}",
                         f"{req['status']} {got}", f"expected {sorted(expected)}")
        else:
            log(f"{what}: {got} (as expected)")

    def step_5_tasks_list(self):
        ta, _ = self.images_task("list alpha one", files=("a.jpg",))
        tb, jb = self.images_task("list beta two", files=("b9.png",))
        tc, _ = self.images_task("list gamma alpha", files=("grey.jpg",))
        self.rest_json("PATCH", f"/api/tasks/{tc}", {"assignee_id": 1})
        self.rest_json("PATCH", f"/api/jobs/{jb}", {"stage": "acceptance"})
        self.rest_json("PATCH", f"/api/jobs/{jb}", {"state": "completed"})
        all_tasks = self.rest_json("GET", "/api/tasks?page_size=100")["results"]
        check(len(all_tasks) <= 10, f"{len(all_tasks)} tasks: more than one UI page")
        names = {t["id"]: t["name"] for t in all_tasks}
        tb_status = next(t["status"] for t in all_tasks if t["id"] == tb)
        if tb_status != "completed":
            self.problem(f"task {tb} (its only job: acceptance/completed) has status {tb_status!r}",
                         f"GET /api/tasks/{tb}", f"status={tb_status!r}", "CVAT: 'completed'")
        self.driver.get(self.base + "/tasks")
        self.wait_visible(".cvat-tasks-list-item", 30, "the tasks list")
        # search box
        since = len(self.rec.records)
        box = self.visible("input[placeholder^='Search']")
        box.send_keys("alpha", Keys.ENTER)
        req, got = self.wait_list(since, "search")
        check("search=alpha" in req["path"], f"the search sent {req['path']}")
        self.compare("search 'alpha'", req, got, [n for n in names.values() if "alpha" in n.lower()])
        box = self.visible("input[placeholder^='Search']")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE, Keys.ENTER)
        time.sleep(1)
        # quick filters
        expected = {"Assigned to me": [names[tc]],
                    "Owned by me": list(names.values()),
                    "Not completed": [n for i, n in names.items() if i != tb]}
        def quick_label(q):
            if self.visible(".cvat-resource-page-predefined-filters-list") is None:
                self.click(self.wait_visible(".cvat-quick-filters-button", 10, "Quick filters"), "Quick filters")
            return self.wait(f"the quick filter {q!r}", lambda: next(
                (e for e in self.driver.find_elements(By.CSS_SELECTOR, ".cvat-resource-page-predefined-filters-list label")
                 if e.is_displayed() and e.text.strip() == q), None), 10)
        for q, exp in expected.items():
            since = len(self.rec.records)
            self.click(quick_label(q), q)
            req, got = self.wait_list(since, q)
            check("filter=" in req["path"], f"quick filter {q} sent {req['path']}")
            self.compare(f"quick filter {q!r} (filter={short(req['path'].split('filter=')[1].split('&')[0], 200)})",
                         req, got, exp)
            since = len(self.rec.records)
            self.click(quick_label(q), q)  # off again
            self.wait_list(since, f"{q} off")
        # sort: toggle the order of ID (default -id) -> sort=id
        self.click(self.wait_visible(".cvat-switch-sort-constructor-button", 10, "Sort by"), "Sort by")
        pop = self.wait_visible(".cvat-resource-page-sorting-list", 10, "the sorting list")
        since = len(self.rec.records)
        self.click(pop.find_element(By.CSS_SELECTOR, ".cvat-sorting-field .cvat-switch-sort-order-button"), "ID order")
        req, got = self.wait_list(since, "sort")
        want = [names[i] for i in sorted(names)]
        if "sort=id" not in req["path"] or got != want:
            self.problem(f"sort by ID ascending: the UI shows {got}", f"GET {req['path']}", str(got), f"expected {want}")
        else:
            log(f"sort=id: {got} (as expected)")
        self.press(Keys.ESCAPE)
        # a filter from the URL (what the Filter constructor produces: JSON Logic)
        flt = {"and": [{"in": ["alp", {"var": "name"}]}, {"==": [{"var": "owner"}, "admin"]}]}
        since = len(self.rec.records)
        self.driver.get(self.base + "/tasks?filter=" + quote(json.dumps(flt)) + "&sort=-name")
        self.wait_visible(".cvat-tasks-list-item", 30, "the filtered list")
        req, got = self.wait_list(since, "URL filter")
        want = sorted((n for n in names.values() if "alp" in n), reverse=True)
        if got != want:
            self.problem(f"filter {json.dumps(flt)} + sort=-name: the UI shows {got}", f"GET {req['path']}",
                         str(got), f"expected {want}")
        else:
            log(f"filter (name contains 'alp' and owner admin), sort=-name: {got} (as expected)")
        self.shot("5-tasks-list")

    # driver -------------------------------------------------------------------------------------
    def run(self):
        steps = [
            ("0:setup", self.step_setup, True),
            ("0:login", self.step_login, True),
            ("1a:create-local-images", self.step_1_local_images, False),
            ("1b:create-local-video-tus", self.step_1_local_video_tus, False),
            ("2:create-from-share", self.step_2_share, False),
            ("3:task-page", self.step_3_task_page, False),
            ("4:review", self.step_4_review, False),
            ("5:tasks-list", self.step_5_tasks_list, False),
        ]
        try:
            for name, fn, critical in steps:
                if name == "0:login":
                    self.start_browser()
                log(f"step {name}")
                self.step = name
                t, first = time.time(), len(self.rec.records) if self.rec else 0
                n_problems = len(self.problems)
                try:
                    fn()
                    ok = len(self.problems) == n_problems
                    self.results[name] = "works" if ok else \
                        f"broken ({len(self.problems) - n_problems} problem(s))"
                except Watchdog as e:
                    self.results[name] = f"broken: {e}"
                    self.failures.append((name, str(e)))
                    break
                except Exception as e:  # noqa: BLE001
                    reason = str(e) if isinstance(e, (StepFailed, AssertionError)) else \
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    if not isinstance(e, (StepFailed, AssertionError)):
                        traceback.print_exc()
                    self.results[name] = f"broken: {reason}"
                    self.failures.append((name, reason))
                    if self.driver is not None:
                        self.shot(f"{name.split(':')[0]}-failed")
                    if critical:
                        break
                finally:
                    if self.rec is not None:
                        self.rec.drain()
                        self.dismiss_notifications()
                        self.step_ranges.append((name, first, len(self.rec.records)))
                log(f"step {name}: {self.results.get(name)} ({time.time() - t:.1f} s)")
            self.report()
        finally:
            self.finish()
        return [(s, r) for s, r in self.results.items() if r != "works"]

    def report(self):
        print("\n==== manage_test report ====", flush=True)
        for name, res in self.results.items():
            print(f"  {name:28} {res}")
        if self.problems:
            print(f"\nProblems ({len(self.problems)}):")
            for i, p in enumerate(self.problems, 1):
                print(f"  {i}. [{p['step']}] {p['what']}")
                for k in ("request", "response", "expected"):
                    if p[k]:
                        print(f"       {k:9} {p[k]}")
        bad = []
        for name, a, b in self.step_ranges:
            for r in self.rec.records[a:b]:
                if r["status"] is not None and r["status"] >= 400 and r["after_login"]:
                    bad.append(dict(r, seq=f"{name.split(':')[0]}"))
        try:
            workers = self.worker_requests()
            bad += [dict(w, seq="w") for w in workers if w["status"] >= 400]
        except Exception:  # noqa: BLE001
            pass
        if bad:
            print("\n/api responses >= 400 (seq = step; w = web worker, from the server log):\n" + table(bad))
        errs = [n for n in self.notices if n.get("kind") == "error"]
        if errs:
            print("\nUI error notifications:")
            for n in errs:
                print(f"  [{n['step']}] {n['text'][:300]}")
        with open(os.path.join(ARTIFACTS, "report.json"), "w") as f:
            json.dump({"results": self.results, "problems": self.problems, "errors": bad,
                       "notifications": self.notices}, f, indent=1)


if __name__ == "__main__":
    sys.exit(ui_test.main(ManageTest))
