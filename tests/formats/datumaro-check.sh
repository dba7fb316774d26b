#!/usr/bin/env bash
# Cross-check of frameserver's dataset formats with PyPI Datumaro 1.13 (the library CVAT's
# formats are built on), through shared/tools/dataset-summary.py. Runnable from any directory:
#
#   tests/formats/datumaro-check.sh             # venv (once), server, checks; exit 0 = all passed
#   tests/formats/datumaro-check.sh --keep DIR  # keep the exports, samples and server log in DIR
#
# What it checks (details in tests/formats/datumaro_check.py):
#   1. a live `frameserver serve` (ephemeral port, fresh data dir) gets an image task with boxes,
#      polygons, polylines, points, ellipses, masks, tags and tracks (one PUT); its exports
#      "Datumaro 1.0", "CVAT for images 1.1" and "YOLO 1.1", with and without images, must read back in
#      Datumaro with the expected items, labels and annotation counts per (type, label);
#   2. the samples of shared/testdata/datumaro that Datumaro 1.13 reads (CVAT for images/video,
#      Datumaro `diverse` and `v1.0`, YOLO `yolo`) are imported into fitting tasks through the API and the
#      stored annotations are counted against dataset-summary's report; the for_video task is
#      exported again as "CVAT for video 1.1" and read back.
#   Only the formats GET /api/server/annotation/formats enables are checked; an enabled format
#   without an expectation in a module of tests/formats/dmcheck/ fails the run.
#
# Environment:
#   DATUMARO_VENV    the venv (default <repo>/target/datumaro-venv; created by
#                    tests/formats/setup-datumaro-venv.sh: datumaro 1.13.12 + cvat-sdk 2.80.0,
#                    ~560 MB, ~15-20 s to install with PyPI reachable, then cached)
#   FRAMESERVER_BIN  the server (default <repo>/target/release/frameserver, built if missing)
#   SHARED_DIR       the shared/ directory (default ../shared beside the repository)
# Needs ffmpeg (the CVAT-for-video sample's task is made from a generated 20-frame clip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

shared="${SHARED_DIR:-$repo/../shared}"
[[ -f "$shared/tools/dataset-summary.py" ]] || {
    echo "datumaro-check: $shared/tools/dataset-summary.py not found (set SHARED_DIR)" >&2
    exit 2
}
shared="$(cd "$shared" && pwd)"

command -v ffmpeg >/dev/null 2>&1 || {
    echo "datumaro-check: ffmpeg not found (scripts/install-deps.sh installs it)" >&2
    exit 2
}

py="$(bash "$here/setup-datumaro-venv.sh" | tail -n 1)"
venv="$(dirname "$(dirname "$py")")"
[[ -f "$venv/.install-seconds" ]] && echo "datumaro-check: venv $venv (installed in $(cat "$venv/.install-seconds") s)" >&2

if [[ -n "${FRAMESERVER_BIN:-}" ]]; then
    bin="$FRAMESERVER_BIN"
    case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
    [[ -x "$bin" ]] || { echo "datumaro-check: FRAMESERVER_BIN=$bin is not an executable" >&2; exit 2; }
else
    bin="$repo/target/release/frameserver"
    if [[ ! -x "$bin" ]]; then
        echo "datumaro-check: $bin not found; building it" >&2
        cargo build --release --bin frameserver
    fi
fi
export FRAMESERVER_BIN="$bin"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY || true
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost" PYTHONDONTWRITEBYTECODE=1

exec "$py" "$here/datumaro_check.py" --shared "$shared" "$@"
