"""The short second browser scenario `make test` runs after ui_test.py: the UI paths that matter
most beyond drawing, in about a minute and a half, on one server (`--ui-dir --share-dir`).

Steps: a) server (share = testdata/) and a 200-frame video task over REST; b) log in; c) open the
video job; 2) a rectangle track drawn on frame 0, moved on frame 10, stored with keyframes 0 and
10, frame 5 drawn interpolated; 5a) the job menu's "Export job dataset" (CVAT for video 1.1,
annotations only), the request polled, the result downloaded from the Requests page; 5b) the job
menu's "Upload annotations" (CVAT 1.1, over TUS at the job) of a REST export into the emptied
job, the same objects back; s) a task created from the connected file share, its frame 0 drawn;
r) review: an issue drawn in a job in validation, with its comment, then resolved; i) no /api
response >= 400 after the login (the page's, and the web workers' from the server log).

The steps are annotate_test.py's and manage_test.py's (the longer scenarios: `run.sh annotate`,
`run.sh manage`). Artifacts (screenshots, api-log.json, server.log) in BROWSER_ARTIFACTS
(run.sh: target/browser-artifacts/paths/). Exit code 0 passed, 1 failed, 2 setup error.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import annotate_test  # noqa: E402
import manage_test  # noqa: E402
import ui_test  # noqa: E402


class PathsTest(annotate_test.AnnotateTest, manage_test.ManageTest):
    task_name = "paths video"
    server_kw = {"share_dir": manage_test.TESTDATA}

    def steps(self):
        return [
            ("a:server-and-task", self.step_a, True),
            ("b:login", self.step_b_login, True),
            ("c:open-job", self.step_c, True),
            ("2:track", self.step_2_track, False),
            ("5a:export-menu", lambda: self.step_5a_export((False,)), False),
            ("5b:upload-annotations", self.step_5b_upload, False),
            ("s:create-from-share", self.step_2_share, False),
            ("r:issue-and-resolve", lambda: self.step_4_review(full=False), False),
        ]

    def run(self):
        # UiTest's driver (its final check fails on any /api response >= 400), not
        # ManageTest's report, which only lists them.
        failures = ui_test.UiTest.run(self)
        failed = dict(failures)
        print("\n=== summary ===")
        for name in [s[0] for s in self.steps()] + ["i:api-errors"]:
            print(f"  {name:24s} {'BROKEN: ' + failed[name][:400] if name in failed else 'works'}")
        problems = [p for p in self.problems if p["step"] not in failed]
        for p in problems:
            failures.append((p["step"], p["what"]))
            print(f"  problem [{p['step']}]: {p['what']}")
        return failures


if __name__ == "__main__":
    sys.exit(ui_test.main(PathsTest))
