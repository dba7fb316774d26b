#!/usr/bin/env bash
# Compare our `manifest create` with CVAT v2.73.0's algorithm (the Python port in
# benches/baseline/cvat_manifest.py, full decode with PyAV 16.0.1) and with the
# demux-only floor (`ffmpeg -c copy -f null`).
#
# Usage (from the repository root):
#   benches/compare-manifest.sh [--reps N] [VIDEO...]
#
# For every video, each command is run N times (default 3, or BENCH_REPS) under
# /usr/bin/time -v; the table reports the median wall time and the median peak
# RSS. The wall time is taken with a nanosecond clock around the /usr/bin/time
# call (its own "Elapsed" field has only 10 ms resolution); the peak RSS is
# /usr/bin/time's "Maximum resident set size".
#   (a) floor:    ffmpeg -v error -i X -map 0:v:0 -c copy -f null -
#   (b) baseline: python benches/baseline/cvat_manifest.py --force --output-dir TMP X
#   (c) manifest: ${MANIFEST_BIN:-target/release/manifest} create --force --output-dir TMP X
# It then checks that (b) and (c) wrote byte-identical manifest.jsonl files and
# prints a diff when they don't.
#
# Without VIDEO arguments it benchmarks target/bench-media/h264_1080p_gop250.mp4
# (made by testdata/generate.sh --bench target/bench-media, or generated here
# with ffmpeg when that script is missing) and shared/testdata/videos/cup.mp4.
#
# Environment:
#   BENCH_REPS     repetitions per command (default 3)
#   MANIFEST_BIN   our binary (default target/release/manifest); it is not built here
#   BASELINE_VENV  venv of the Python baseline (default target/baseline-venv)
#   SHARED_DIR     the shared/ directory (default ../shared beside the repo, then /work/shared)
#   BENCH_OUT      also write the markdown table to this file
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps="${BENCH_REPS:-3}"

videos=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --reps=*) reps="${1#--reps=}"; shift ;;
        -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *)
            [[ -e "$1" ]] || { echo "no such file: $1" >&2; exit 2; }
            videos+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
    esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }

cd "$repo_root"

log() { echo "[compare-manifest] $*" >&2; }

# ---- tools ---------------------------------------------------------------------------
apt_install() {
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    log "installing $* with apt-get"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
[[ -x /usr/bin/time ]] || apt_install time
command -v ffmpeg >/dev/null 2>&1 || apt_install ffmpeg

baseline_py="$(bash "$repo_root/benches/baseline/setup-venv.sh" | tail -n 1)"
baseline_script="$repo_root/benches/baseline/cvat_manifest.py"

manifest_bin="${MANIFEST_BIN:-target/release/manifest}"
if [[ "$manifest_bin" != /* ]] && [[ "$manifest_bin" == */* ]]; then
    manifest_bin="$repo_root/$manifest_bin"
fi
have_manifest=1
if ! command -v "$manifest_bin" >/dev/null 2>&1; then
    log "WARNING: $manifest_bin not found (build it with: cargo build --release -p manifest-tool); its column will be n/a"
    have_manifest=0
fi

# ---- default inputs ------------------------------------------------------------------
if [[ ${#videos[@]} -eq 0 ]]; then
    bench_dir="$repo_root/target/bench-media"
    clip="$bench_dir/h264_1080p_gop250.mp4"
    if [[ ! -f "$clip" ]] && [[ -f "$repo_root/testdata/generate.sh" ]]; then
        log "generating bench media with testdata/generate.sh --bench target/bench-media"
        bash "$repo_root/testdata/generate.sh" --bench target/bench-media >&2 || log "generate.sh failed"
    fi
    if [[ ! -f "$clip" ]]; then
        log "generating $clip with ffmpeg (1920x1080, 30 s, GOP 250)"
        mkdir -p "$bench_dir"
        ffmpeg -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 30 \
            -c:v libx264 -preset veryfast -g 250 -keyint_min 250 -sc_threshold 0 \
            -pix_fmt yuv420p "$clip.tmp.mp4"
        mv "$clip.tmp.mp4" "$clip"
    fi
    videos+=("$clip")

    shared="${SHARED_DIR:-}"
    if [[ -z "$shared" ]]; then
        for d in "$repo_root/../shared" /work/shared; do
            [[ -d "$d/testdata/videos" ]] && { shared="$d"; break; }
        done
    fi
    if [[ -n "$shared" ]] && [[ -f "$shared/testdata/videos/cup.mp4" ]]; then
        videos+=("$(cd "$shared/testdata/videos" && pwd)/cup.mp4")
    else
        log "WARNING: shared/testdata/videos/cup.mp4 not found, skipping it"
    fi
fi

# ---- measurement helpers -------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/compare-manifest.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# run_timed OUTPREFIX cmd... : runs cmd under /usr/bin/time -v, writes
# OUTPREFIX.{wall,rss,rc,stdout,stderr,time}. Never fails.
run_timed() {
    local out="$1"; shift
    local t0 t1 rc=0
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$out.time" "$@" >"$out.stdout" 2>"$out.stderr" || rc=$?
    t1=$(date +%s%N)
    echo "$rc" >"$out.rc"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }' >"$out.wall"
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$out.time" >"$out.rss"
}

median() {  # numbers on stdin -> median
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fmt_s() { awk -v x="$1" 'BEGIN { if (x == "nan" || x == "") print "n/a"; else printf "%.3f", x }'; }
fmt_mb() { awk -v x="$1" 'BEGIN { if (x == "nan" || x == "") print "n/a"; else printf "%.1f", x / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.1fx", a / b }'; }

# bench NAME VIDEO_INDEX cmd... (the literal word OUTDIR in cmd is replaced by a fresh
# output directory per repetition). Prints "wall_median rss_median_kb status".
bench() {
    local name="$1" vi="$2"; shift 2
    local i walls=() rsses=() status="ok"
    for ((i = 1; i <= reps; i++)); do
        local outdir="$work/v$vi/$name/rep$i"
        mkdir -p "$outdir"
        local cmd=() a
        for a in "$@"; do cmd+=("${a//OUTDIR/$outdir}"); done
        run_timed "$outdir/run" "${cmd[@]}"
        local rc; rc=$(cat "$outdir/run.rc")
        if [[ "$rc" != 0 ]]; then
            status="exit $rc: $(tail -n 1 "$outdir/run.stderr")"
        fi
        walls+=("$(cat "$outdir/run.wall")")
        rsses+=("$(cat "$outdir/run.rss")")
        log "  $name rep $i: $(cat "$outdir/run.wall") s, $(cat "$outdir/run.rss") kB, rc=$rc"
    done
    printf '%s\t%s\t%s\n' \
        "$(printf '%s\n' "${walls[@]}" | median)" \
        "$(printf '%s\n' "${rsses[@]}" | median)" \
        "$status"
}

# ---- run -----------------------------------------------------------------------------
table="| video | demux floor s | baseline s | manifest s | speedup vs baseline | ratio vs floor | manifest peak RSS MB | baseline peak RSS MB | identical |
|---|---|---|---|---|---|---|---|---|"
notes=""
mismatch=0

vi=0
for video in "${videos[@]}"; do
    vi=$((vi + 1))
    vname="$(basename "$video")"
    log "== $vname ($reps repetitions)"

    IFS=$'\t' read -r floor_w floor_rss floor_st < <(bench floor "$vi" \
        ffmpeg -v error -i "$video" -map 0:v:0 -c copy -f null -)
    IFS=$'\t' read -r base_w base_rss base_st < <(bench baseline "$vi" \
        "$baseline_py" "$baseline_script" --force --output-dir OUTDIR "$video")
    if [[ $have_manifest == 1 ]]; then
        IFS=$'\t' read -r ours_w ours_rss ours_st < <(bench manifest "$vi" \
            "$manifest_bin" create --force --output-dir OUTDIR "$video")
    else
        ours_w=nan; ours_rss=nan; ours_st="missing binary"
    fi

    base_manifest="$work/v$vi/baseline/rep$reps/manifest.jsonl"
    ours_manifest="$work/v$vi/manifest/rep$reps/manifest.jsonl"
    identical="n/a"
    if [[ $have_manifest == 0 ]]; then
        identical="n/a (no binary)"
        [[ "$base_st" == ok ]] || notes+=$'\n'"* \`$vname\`: baseline: ${base_st}"
    elif [[ "$base_st" != ok ]] && [[ "$ours_st" != ok ]]; then
        identical="both failed"
        notes+=$'\n'"* \`$vname\`: baseline: ${base_st}; manifest: ${ours_st}"
    elif [[ "$base_st" != ok ]] || [[ "$ours_st" != ok ]]; then
        identical="**no**"
        mismatch=1
        notes+=$'\n'"* \`$vname\`: baseline: ${base_st}; manifest: ${ours_st}"
    elif cmp -s "$base_manifest" "$ours_manifest"; then
        identical="yes"
    else
        identical="**no**"
        mismatch=1
        notes+=$'\n'"* \`$vname\`: manifest.jsonl differs from the baseline:"$'\n\n```diff\n'"$(diff -u --label baseline --label manifest "$base_manifest" "$ours_manifest" | head -n 60 || true)"$'\n```'
    fi
    if [[ "$floor_st" != ok ]]; then
        notes+=$'\n'"* \`$vname\`: ffmpeg demux floor: ${floor_st}"
    fi

    [[ "$base_st" == ok ]] || base_w=nan
    [[ "$ours_st" == ok ]] || ours_w=nan
    [[ "$floor_st" == ok ]] || floor_w=nan

    table+=$'\n'"| $vname | $(fmt_s "$floor_w") | $(fmt_s "$base_w") | $(fmt_s "$ours_w") | $(ratio "$base_w" "$ours_w") | $(ratio "$ours_w" "$floor_w") | $(fmt_mb "$ours_rss") | $(fmt_mb "$base_rss") | $identical |"
done

{
    echo "Medians of $reps runs on $(nproc) cores; baseline = CVAT v2.73.0 algorithm (PyAV $("$baseline_py" -c 'import av; print(av.__version__)'), FFmpeg $("$baseline_py" -c 'import av; print(av.ffmpeg_version_info)')), all with --force."
    echo
    echo "$table"
    if [[ -n "$notes" ]]; then
        echo
        echo "Notes:$notes"
    fi
} | tee "${BENCH_OUT:-/dev/null}"

exit "$mismatch"
