#!/usr/bin/env bash
# Dataset format benchmarks (issue #5): frameserver's exports and imports against PyPI Datumaro
# 1.13's own exporters/importers, and video exports with images against the decode + encode floor.
#
# Usage (from anywhere; paths are relative to the repository root):
#   benches/compare-formats.sh [--reps N] [--video-reps N] [--no-build] [--skip-annotations]
#                              [--skip-video] [--formats NAME]... [--video-formats NAME]...
#                              [--json FILE] [--keep DIR]
#
# In one run:
#   1. Annotation formats, one row per format of FORMATS in benches/compare_formats.py (or the
#      --formats given, by export or import name), each on its task of 2,000 frames (PNGs under
#      target/bench-media/, made once; a few distinct images under 2,000 names), created from
#      --share-dir with its shapes loaded with one `PUT /api/tasks/{id}/annotations`:
#        shapes: 64x48 frames, 30,000 shapes (10 boxes + 5 polygons per frame; every other shape
#                a `car` with a select attribute, the others `person`): every format but the
#                raster ones;
#        masks:  512x384 frames, 5 polygons + 2 masks per frame (14,000 shapes): PASCAL VOC and
#                Segmentation mask.
#      N times each (default 3), medians:
#        ours:     export with save_images=False, timed from the export POST to the finished
#                  request (polled every 1 ms) plus the download of result_url; import (multipart
#                  POST until the request is finished and the annotations stored) of our own
#                  export with images into a second task with the same labels and frames;
#        baseline: benches/baseline/datumaro_export.py in the Datumaro venv: the same items,
#                  labels and shapes as a `datumaro.Dataset` (built untimed), then
#                  `dataset.export(dir, FORMAT, save_media=False)` with Datumaro's id of the
#                  format, and `Dataset.import_from(dir, FORMAT)` + a walk over every annotation
#                  of our export with images unzipped (the same bytes ours imports).
#      Targets: exports >= 10x faster than Datumaro's, imports >= 5x. Formats PyPI Datumaro 1.13
#      has no exporter/importer for are timed without a ratio.
#   2. Export with images of every frame of the 1080p 30 s clip (target/bench-media/
#      h264_1080p_gop250.mp4 from testdata/generate.sh --bench, made when missing): a video task
#      from --share-dir, exported as "CVAT for images 1.1", "COCO 1.0" and "YOLO 1.1" (those the
#      server enables; --video-formats NAME picks others) with save_images=True (PNG, CVAT's naming)
#      and with `&image_format=jpeg` (JPEG q95), M times each (default 2) on a fresh server per image format,
#      timed POST to finished (polled every 20 ms; the download is reported beside it), and the server's VmHWM
#      during each export (reset before it through /proc/PID/clear_refs). Floor:
#      target/release/examples/export_floor (examples/export_floor.rs: FrameReader decode of
#      every frame + RgbConverter + codec::encode_png / encode_jpeg(95) on all cores with rayon,
#      in-process, no zip), both overlapped with decoding and serial; the faster is the floor.
#      For reference, the ffmpeg CLI writing the frames as files (-f image2 -c:v png / mjpeg).
#      Targets: <= 1.3x the floor, peak RSS < 300 MB.
#
# Prints a markdown table (stdout; progress on stderr), then the raw numbers. Exit status 1 when
# a build, a request or a count check fails; missed targets are in the table, not the status.
#
# Environment:
#   BENCH_REPS, BENCH_VIDEO_REPS   as the flags (defaults 3 and 2)
#   FRAMESERVER_BIN    server binary (default target/release/frameserver)
#   EXPORT_FLOOR_BIN   floor binary (default target/release/examples/export_floor)
#   DATUMARO_VENV      the Datumaro venv (default target/datumaro-venv; see
#                      tests/formats/setup-datumaro-venv.sh)
#   BENCH_OUT          also write the markdown table to this file
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps="${BENCH_REPS:-3}"
video_reps="${BENCH_VIDEO_REPS:-2}"
build=1
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --video-reps) video_reps="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --skip-annotations|--skip-video) extra+=("$1"); shift ;;
        --formats|--video-formats) extra+=("$1" "$2"); shift 2 ;;
        --json|--keep) extra+=("$1" "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
        -h|--help) sed -n '2,54p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$reps" "$video_reps"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "--reps and --video-reps must be positive integers" >&2; exit 2; }
done

cd "$repo_root"
log() { echo "[compare-formats] $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v ffmpeg >/dev/null 2>&1 || {
    sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    log "installing ffmpeg with apt-get"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >&2
}

server_bin="${FRAMESERVER_BIN:-$repo_root/target/release/frameserver}"
floor_bin="${EXPORT_FLOOR_BIN:-$repo_root/target/release/examples/export_floor}"
if [[ $build == 1 ]]; then
    if [[ ! -x scripts/install-deps.sh ]] || ! bash scripts/install-deps.sh >&2; then
        log "WARNING: scripts/install-deps.sh failed or is missing; building anyway"
    fi
    log "cargo build --release (frameserver, examples/export_floor)"
    cargo build --release --locked -p frameserver --bin frameserver --example export_floor >&2 \
        || die "cargo build failed"
fi
[[ -x "$server_bin" ]] || die "$server_bin not found (build it, or drop --no-build)"
[[ -x "$floor_bin" ]] || die "$floor_bin not found (cargo build --release --example export_floor)"

py="$(bash "$repo_root/tests/formats/setup-datumaro-venv.sh" | tail -n 1)"

clip="$repo_root/target/bench-media/h264_1080p_gop250.mp4"
if [[ ! -f "$clip" ]]; then
    log "generating bench media with testdata/generate.sh --bench target/bench-media"
    bash "$repo_root/testdata/generate.sh" --bench target/bench-media >&2 || die "generate.sh --bench failed"
fi

export FRAMESERVER_BIN="$server_bin"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY || true
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost" PYTHONDONTWRITEBYTECODE=1

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
"$py" "$repo_root/benches/compare_formats.py" --reps "$reps" --video-reps "$video_reps" \
    --media "$repo_root/target/bench-media" --floor-bin "$floor_bin" ${extra[@]+"${extra[@]}"} | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if [[ -n "${BENCH_OUT:-}" ]]; then
    cp "$out" "$BENCH_OUT"
fi
exit "$rc"
