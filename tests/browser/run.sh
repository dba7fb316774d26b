#!/usr/bin/env bash
# Browser test: CVAT's own web UI (the cvat-ui 2.73 build) in headless Chromium against a real
# `frameserver serve --ui-dir`: log in, open a video job, check and play frames, draw and save a
# rectangle and a polygon, reload, job state, and no /api error. Runnable from any directory:
#
#   tests/browser/run.sh            (ui_test.py)
#   tests/browser/run.sh annotate   (annotate_test.py: the annotator's paths in a job; artifacts
#                                    in target/browser-artifacts-annotate/)
#   tests/browser/run.sh manage     (manage_test.py: task creation, task page, review, tasks list;
#                                    artifacts in target/browser-artifacts-manage/)
#   tests/browser/run.sh paths      (paths_test.py, in `make test`: track, job menu export and
#                                    upload, share task, issue resolved, in ~90 s; artifacts in
#                                    target/browser-artifacts/paths/)
#
# Environment:
#   FRAMESERVER_BIN     server binary (default: <repo>/target/debug/frameserver; built if missing)
#   FRAMESERVER_UI_DIR  the UI build's dist/ (default: <repo>/../shared/cvat-ui/dist)
#   BROWSER_VENV        venv to create/reuse (default: <repo>/target/browser-venv)
#   BROWSER_TIMEOUT     the test stops itself after this many seconds (default 240)
# Artifacts (overwritten each run): <repo>/target/browser-artifacts/ — screenshots per step,
# api-log.json (every /api request of the page), api-log-workers.json (requests only the server
# log shows: the UI's web workers), server.log, console.txt / console.json, notifications.json.
# Exit code: 0 passed, 1 failed, 2 setup error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_updated=""
apt_install() {
    echo "browser: installing $*" >&2
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Chromium and its WebDriver come from Debian (matching versions); ffmpeg makes the test clip.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

venv="${BROWSER_VENV:-$repo/target/browser-venv}"
case "$venv" in /*) ;; *) venv="$repo/$venv" ;; esac
selenium_pin="4.51.0"
if ! "$venv/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$selenium_pin')" 2>/dev/null; then
    if [ ! -x "$venv/bin/python" ]; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            apt_install python3-venv  # Debian ships venv support separately
        fi
        echo "browser: creating $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "selenium==$selenium_pin"
fi

bin="${FRAMESERVER_BIN:-$repo/target/debug/frameserver}"
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
if [ ! -x "$bin" ]; then
    if [ -n "${FRAMESERVER_BIN:-}" ]; then
        echo "browser: FRAMESERVER_BIN=$bin is not an executable" >&2
        exit 2
    fi
    echo "browser: $bin not found; building it" >&2
    cargo build --bin frameserver
fi
ui="${FRAMESERVER_UI_DIR:-$repo/../shared/cvat-ui/dist}"
case "$ui" in /*) ;; *) ui="$repo/$ui" ;; esac
if [ ! -f "$ui/index.html" ]; then
    echo "browser: no CVAT UI build at $ui (set FRAMESERVER_UI_DIR)" >&2
    exit 2
fi

export FRAMESERVER_BIN="$bin" FRAMESERVER_UI_DIR="$(cd "$ui" && pwd)"
case "${1:-ui}" in
    ui) script="$here/ui_test.py"; export BROWSER_ARTIFACTS="$repo/target/browser-artifacts" ;;
    annotate) script="$here/annotate_test.py"; export BROWSER_ARTIFACTS="$repo/target/browser-artifacts-annotate" ;;
    manage) script="$here/manage_test.py"; export BROWSER_ARTIFACTS="$repo/target/browser-artifacts-manage" ;;
    paths) script="$here/paths_test.py"; export BROWSER_ARTIFACTS="$repo/target/browser-artifacts/paths" ;;
    *) echo "browser: unknown test '$1' (ui, annotate, manage, paths)" >&2; exit 2 ;;
esac
export CHROMIUM_BIN="$(command -v chromium)" CHROMEDRIVER_BIN="$(command -v chromedriver)"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY || true
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

set +e
export BROWSER_TIMEOUT="${BROWSER_TIMEOUT:-240}"
# ui_test.py stops itself (and cleans up) at BROWSER_TIMEOUT; this is the backstop.
timeout --kill-after=15 "$((BROWSER_TIMEOUT + 30))" "$venv/bin/python" "$script"
rc=$?
set -e
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "browser: FAILED: watchdog: killed after $((BROWSER_TIMEOUT + 30)) s"
    rc=1
fi
echo "browser: artifacts in $BROWSER_ARTIFACTS"
exit $rc
