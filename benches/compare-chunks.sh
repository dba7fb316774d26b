#!/usr/bin/env bash
# Chunk server benchmarks (issue #3): frameserver's compressed zip chunks (36 JPEGs at
# image_quality 70) against the in-process floor and against CVAT's method in Python.
#
# Usage (from anywhere; paths are relative to the repository root):
#   benches/compare-chunks.sh [--reps N] [--seq-reps N] [--wrk-seconds S] [--no-build]
#                             [--parts cold,seq,hits] [VIDEO...]
#
# Per video (default: target/bench-media/h264_1080p_gop250.mp4, generated when missing, and the
# shared real clip cup.mp4), in one run:
#   1. Cold chunk, for chunk 0 and for the chunk whose cold build decodes the most frames from
#      its key frame ("worst", from the manifest). N rounds (default 5), each round running:
#        floor:    target/release/examples/chunk_floor VIDEO --chunk 0 --chunk W --warmup 1 --reps 1
#                  (examples/chunk_floor/floor.rs: seek + decode forward as the server does,
#                  non-reference frames before the chunk not decoded (frames::decode_frames
#                  without the reader pool), JPEGs encoded on other threads meanwhile by the
#                  server's pixel path (codec::encode_jpegs_overlapped), ZipChunk; in-process,
#                  timed with Instant)
#        baseline: benches/baseline/cvat_chunk.py, CVAT's method with PyAV 16.0.1 + Pillow
#                  (seek to the key frame pts, decode forward, frame.to_image(), JPEG q70
#                  optimize, zipfile STORED; timed in-process with perf_counter, after one
#                  unmeasured warm-up build as a CVAT worker is a warm process)
#        server:   one long-running `frameserver serve` per video; every measurement uses a new
#                  task (a new data id: cold cache, no positioned decoder to reuse), created from
#                  --share-dir; the latency of `GET /api/tasks/N/data?type=chunk&number=K
#                  &quality=compressed` by curl's time_total. Before each request the server is
#                  idle (no prefetch running: /metrics frameserver_chunk_builds_in_flight 0); one
#                  unmeasured task warms the process first.
#      Medians of the N rounds; each ratio is the median of the N per-round ratios (robust to a
#      burst of other load in one round). Targets: server <= 1.3x floor, >= 3x faster than baseline.
#      The server's chunk must be byte-identical to the floor's. Its JPEGs are not byte-identical
#      to the baseline's any more (ours are compressed straight from the decoder's YUV 4:2:0
#      planes, CVAT's from RGB; see src/codec/frame_jpeg.rs): both are decoded (Pillow) and must
#      agree within a mean absolute difference of 1.5 per channel (the largest is reported too).
#   2. Sequential playback: M rounds (default 3) of (a) a fresh server, a new task, every chunk
#      requested in order over one keep-alive connection (one curl for all URLs), wall time;
#      frameserver_frames_decoded_total afterwards; and (b) the floor: one decode of the whole
#      video from frame 0 with every frame JPEG-encoded (chunk_floor --sequential-reps 1).
#      Target: server <= 1.3x floor, frames decoded == frame count. Also, once, the baseline's
#      cost of the same playback the CVAT way (every chunk built cold from its key frame).
#   3. Cache hits: a fresh server with --cache-size (default 256 MiB), logged in as the web UI
#      is (session cookie; also, for information, with a Bearer token), chunk 0 requested once
#      (prefetch of chunk 1 left to finish), then `wrk -t2 -c64 -d10s --latency` on chunk 0,
#      twice, alternating with the reference below; the better pass of each is reported.
#      Targets: >= 5000 responses/s, p99 <= 5 ms, peak RSS (VmHWM) <= cache size + 150 MB.
#      Reference: the same bytes served by examples/bytes_server (a minimal axum server holding
#      them in memory: the loopback floor). For information, the same with
#      `type=frame&quality=compressed` (one JPEG out of the cached chunk, ~1/36 of the bytes)
#      against bytes_server serving that JPEG.
#
# Every server gets its own temporary data dir and an ephemeral port, and is stopped on exit. When
# the build has users, each server creates `admin` with a random FRAMESERVER_ADMIN_PASSWORD and
# the script logs in (session cookie + X-CSRFToken, as the web UI does) before any request.
#
# Prints a markdown table (stdout; progress on stderr). Exit status 1 when a build or a request
# fails, when the server's bytes differ from the floor's or its JPEGs from the baseline's beyond
# the pixel tolerance, 0 otherwise (missed targets are
# reported in the table, not in the exit status).
#
# Environment:
#   BENCH_REPS, BENCH_SEQ_REPS, BENCH_WRK_SECONDS   as the flags (defaults 5, 3, 10)
#   BENCH_CACHE_SIZE     --cache-size for the cache-hit server (default 268435456)
#   BENCH_IDLE_WAIT      before each round, wait up to this many seconds (default 120; 0: never)
#                        for the CPU to be idle (a shared machine's other jobs skew ratios)
#   BENCH_BASELINE_SEQ   0 skips the baseline's sequential playback (~16 s on the 1080p clip)
#   FRAMESERVER_BIN      server binary (default target/release/frameserver)
#   CHUNK_FLOOR_BIN      floor binary (default target/release/examples/chunk_floor)
#   BYTES_SERVER_BIN     loopback floor (default target/release/examples/bytes_server)
#   BASELINE_VENV        venv of the Python baseline (default target/baseline-venv)
#   SHARED_DIR           the shared/ directory (default ../shared beside the repo, then /work/shared)
#   BENCH_OUT            also write the markdown table to this file
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps="${BENCH_REPS:-5}"
seq_reps="${BENCH_SEQ_REPS:-3}"
wrk_seconds="${BENCH_WRK_SECONDS:-10}"
cache_size="${BENCH_CACHE_SIZE:-268435456}"
baseline_seq="${BENCH_BASELINE_SEQ:-1}"
build=1
parts="${BENCH_PARTS:-cold,seq,hits}"
quality=70
chunk_size=36

videos=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --seq-reps) seq_reps="$2"; shift 2 ;;
        --wrk-seconds) wrk_seconds="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --parts) parts="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^set -euo/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *)
            [[ -f "$1" ]] || { echo "no such file: $1" >&2; exit 2; }
            videos+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
    esac
done
for v in "$reps" "$seq_reps" "$wrk_seconds"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "--reps, --seq-reps and --wrk-seconds must be positive integers" >&2; exit 2; }
done

cd "$repo_root"

log() { echo "[compare-chunks] $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- tools ---------------------------------------------------------------------------
apt_updated=0
apt_install() {
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    log "installing $* with apt-get"
    if [[ $apt_updated == 0 ]]; then
        $sudo apt-get update -qq >&2 || true
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
command -v curl >/dev/null 2>&1 || apt_install curl
command -v ffmpeg >/dev/null 2>&1 || apt_install ffmpeg
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv

server_bin="${FRAMESERVER_BIN:-$repo_root/target/release/frameserver}"
floor_bin="${CHUNK_FLOOR_BIN:-$repo_root/target/release/examples/chunk_floor}"
bytes_bin="${BYTES_SERVER_BIN:-$repo_root/target/release/examples/bytes_server}"
if [[ $build == 1 ]]; then
    if [[ ! -f scripts/install-deps.sh ]] || ! bash scripts/install-deps.sh >&2; then
        log "WARNING: scripts/install-deps.sh failed or is missing; building anyway"
    fi
    log "cargo build --release (frameserver, examples/chunk_floor, examples/bytes_server)"
    cargo build --release --locked -p frameserver --bin frameserver --example chunk_floor --example bytes_server >&2 \
        || die "cargo build failed"
fi
[[ -x "$server_bin" ]] || die "$server_bin not found (build it, or drop --no-build)"
[[ -x "$floor_bin" ]] || die "$floor_bin not found (cargo build --release --example chunk_floor)"
[[ -x "$bytes_bin" ]] || die "$bytes_bin not found (cargo build --release --example bytes_server)"

baseline_py="$(bash "$repo_root/benches/baseline/setup-venv.sh" | tail -n 1)"
baseline_script="$repo_root/benches/baseline/cvat_chunk.py"

# ---- default inputs ------------------------------------------------------------------
if [[ ${#videos[@]} -eq 0 ]]; then
    clip="$repo_root/target/bench-media/h264_1080p_gop250.mp4"
    if [[ ! -f "$clip" ]]; then
        log "generating bench media with testdata/generate.sh --bench target/bench-media"
        bash "$repo_root/testdata/generate.sh" --bench target/bench-media >&2 || die "generate.sh --bench failed"
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

# ---- servers and cleanup -------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/compare-chunks.XXXXXX")"
server_pids=()
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
# Servers with users (README "Users") get this admin password; requests carry a Bearer token.
admin_password="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
loadavg_before="$(cut -d' ' -f1-3 /proc/loadavg)"
cpu_idle() {  # % of CPU time idle over the next second (other processes disturb the numbers)
    local a b
    read -r -a a < <(head -n 1 /proc/stat); sleep 1; read -r -a b < <(head -n 1 /proc/stat)
    awk -v i0="${a[4]}" -v i1="${b[4]}" -v t0="$(IFS=+; echo "$((${a[*]:1}))")" -v t1="$(IFS=+; echo "$((${b[*]:1}))")" \
        'BEGIN { d = t1 - t0; if (d <= 0) print "n/a"; else printf "%.0f%%", 100 * (i1 - i0) / d }'
}
idle_before="$(cpu_idle)"
# On a shared machine other jobs come and go: before each measurement round, wait (up to
# BENCH_IDLE_WAIT seconds, default 120; 0 disables) until the CPU has been >= 85% idle for 3 s
# in a row. Rounds that started without that are counted in the output.
idle_wait="${BENCH_IDLE_WAIT:-120}"
busy_rounds=0
wait_cpu_quiet() {
    [[ "$idle_wait" == 0 ]] && return 0
    local a b i q=0 tot idle k
    read -r -a a </proc/stat
    for ((i = 0; i < idle_wait; i++)); do
        sleep 1
        read -r -a b </proc/stat
        tot=0
        for k in 1 2 3 4 5 6 7 8; do tot=$((tot + b[k] - a[k])); done
        idle=$((b[4] - a[4]))
        if ((tot > 0 && 100 * idle / tot >= 85)); then q=$((q + 1)); else q=0; fi
        a=("${b[@]}")
        ((q >= 3)) && return 0
    done
    busy_rounds=$((busy_rounds + 1))
    log "  (the CPU stayed busy for ${idle_wait} s; measuring anyway)"
}
notes=""
note() { notes+=$'\n'"* $*"; }

# start_bg NAME cmd...: starts a server printing "... listening on http://ADDR" on stdout; sets
# SRV_PID and SRV_URL.
start_bg() {
    local name="$1"; shift
    local dir="$work/servers/$name"
    mkdir -p "$dir"
    : >"$dir/stdout"  # exists before the background job opens it (no race with the sed below)
    "$@" >>"$dir/stdout" 2>"$dir/stderr" &
    SRV_PID=$!
    server_pids+=("$SRV_PID")
    local i
    for ((i = 0; i < 200; i++)); do
        SRV_URL="$(sed -n 's#^.* listening on \(http://[0-9.:]*\).*#\1#p' "$dir/stdout" | head -n 1)"
        [[ -n "$SRV_URL" ]] && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/stderr" >&2
    die "$name did not start"
}

# start_server NAME SHARE_DIR [extra serve args...]: a fresh frameserver with its own data dir.
# When the build has users (README "Users"), logs in as admin as the web UI does and sets AUTH
# (curl arguments: the session cookies and X-CSRFToken), AUTH_COOKIE (the same cookies as a
# header, for wrk) and AUTH_BEARER (a personal access token header, as API clients may use);
# for a build without authentication they are empty.
start_server() {
    local name="$1" share="$2"; shift 2
    FRAMESERVER_ADMIN_PASSWORD="$admin_password" start_bg "$name" "$server_bin" serve \
        --data-dir "$work/servers/$name/data" --bind 127.0.0.1:0 --share-dir "$share" "$@"
    AUTH=() AUTH_COOKIE="" AUTH_BEARER=""
    local jar="$work/servers/$name/cookies" code csrf sid resp token
    code="$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -H 'Content-Type: application/json' \
        -d "{\"username\": \"admin\", \"password\": \"$admin_password\"}" "$SRV_URL/api/auth/login")"
    [[ "$code" == 404 ]] && return 0  # no users in this build
    [[ "$code" == 200 ]] || die "login as admin failed: HTTP $code"
    csrf="$(awk '$6 == "csrftoken" { print $7 }' "$jar")"
    sid="$(awk '$6 == "sessionid" { print $7 }' "$jar")"
    [[ -n "$csrf" && -n "$sid" ]] || die "login did not set the sessionid and csrftoken cookies"
    AUTH=(-b "$jar" -H "X-CSRFToken: $csrf")
    AUTH_COOKIE="Cookie: sessionid=$sid; csrftoken=$csrf"
    resp="$(curl -sf "${AUTH[@]}" -H 'Content-Type: application/json' \
        -d '{"name": "compare-chunks"}' "$SRV_URL/api/auth/access_tokens")" || die "cannot create an access token"
    token="$(grep -o '"value": *"[^"]*"' <<<"$resp" | sed 's/.*"\([^"]*\)"$/\1/')"
    [[ -n "$token" ]] || die "no token in: $resp"
    AUTH_BEARER="Authorization: Bearer $token"
}

stop_server() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# create_task URL VIDEO_NAME: prints the new task's id once its data is created.
create_task() {
    local url="$1" file="$2" resp id status i
    resp="$(curl -sf "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
        -d '{"name": "bench", "labels": []}' "$url/api/tasks")" || die "POST /api/tasks failed"
    id="$(grep -o '"id": *[0-9]*' <<<"$resp" | head -n 1 | grep -o '[0-9]*$')"
    [[ -n "$id" ]] || die "no task id in: $resp"
    curl -sf "${AUTH[@]}" -X POST -H 'Content-Type: application/json' \
        -d "{\"image_quality\": $quality, \"use_zip_chunks\": true, \"chunk_size\": $chunk_size, \"server_files\": [\"$file\"]}" \
        "$url/api/tasks/$id/data" >/dev/null || die "POST /api/tasks/$id/data failed"
    for ((i = 0; i < 1200; i++)); do
        resp="$(curl -sf "${AUTH[@]}" "$url/api/requests/create%3Atask-$id")" || true
        status="$(grep -o '"status": *"[a-z]*"' <<<"$resp" | head -n 1 | sed 's/.*"\([a-z]*\)"$/\1/')"
        case "$status" in
            finished) echo "$id"; return 0 ;;
            failed) die "task creation failed: $resp" ;;
        esac
        sleep 0.05
    done
    die "task $id was not created within 60 s"
}

metric() {  # metric URL NAME
    curl -sf "$1/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'
}

wait_idle() {  # wait until no chunk build (e.g. a prefetch) is running
    local i
    for ((i = 0; i < 1200; i++)); do
        [[ "$(metric "$1" frameserver_chunk_builds_in_flight)" == 0 ]] && return 0
        sleep 0.05
    done
    die "the server stayed busy for 60 s"
}

chunk_url() { echo "$1/api/tasks/$2/data?type=chunk&number=$3&quality=compressed"; }

# get_chunk URL TASK N OUT: prints curl's time_total (s); fails unless 200.
get_chunk() {
    local r code t
    r="$(curl -s "${AUTH[@]}" -o "$4" -w '%{http_code} %{time_total}' "$(chunk_url "$1" "$2" "$3")")"
    read -r code t <<<"$r"
    [[ "$code" == 200 ]] || die "chunk $3 of task $2: HTTP $code: $(head -c 300 "$4")"
    echo "$t"
}

run_wrk() {  # run_wrk OUT URL [HEADER]: 64 connections on 2 threads for --wrk-seconds
    wait_cpu_quiet
    local h=()
    [[ -n "${3:-}" ]] && h=(-H "$3")
    wrk -t2 -c64 -d"${wrk_seconds}s" --latency "${h[@]}" "$2" >"$1" 2>&1 || die "wrk failed: $(cat "$1")"
    log "  wrk $(basename "$1"): $(awk '/^Requests\/sec:/ { print $2 }' "$1") responses/s, p99 $(awk '$1 == "99%" { print $2 }' "$1")"
}

# ---- number helpers ------------------------------------------------------------------
median() {  # numbers on stdin -> median
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
kv() {  # kv KEY < lines: the value of KEY=... in the first line having it
    awk -v k="$1" -F'\t' '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }'
}
line_for() { grep -P "^$1\t" | grep -P "\t$2(\t|$)" | head -n 1; }  # line_for KIND n=K
fmt_s() { awk -v x="$1" 'BEGIN { if (x == "nan" || x == "") print "n/a"; else if (x < 1) printf "%.0f ms", x * 1000; else printf "%.2f s", x }'; }
# pratio "a1 a2 ..." "b1 b2 ...": the median of the per-round ratios a_i / b_i, as "1.23x".
# Each round's two numbers were measured minutes apart at most, so a burst of other load on a
# shared machine skews one round's pair, not the result.
pratio() {
    paste <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) \
        | awk '$2 + 0 > 0 { print $1 / $2 }' | median | awk '{ if ($1 == "nan") print "n/a"; else printf "%.2fx\n", $1 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }
verdict() {  # verdict VALUE OP LIMIT
    awk -v x="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (x !~ /^[0-9]+(\.[0-9]*)?$/) { print "n/a"; exit }
        ok = (op == "<=") ? (x <= l) : (op == ">=") ? (x >= l) : (x == l)
        print ok ? "pass" : "**FAIL**" }'
}
to_ms() {  # wrk latency (e.g. 812.00us, 3.41ms, 1.02s) -> ms
    awk -v x="$1" 'BEGIN {
        if (x ~ /us$/) printf "%.3f", substr(x, 1, length(x) - 2) / 1000
        else if (x ~ /ms$/) printf "%.3f", substr(x, 1, length(x) - 2)
        else if (x ~ /s$/) printf "%.3f", substr(x, 1, length(x) - 1) * 1000
        else print "nan" }'
}

# close_jpegs A.zip B.zip: "yes (…)" when both zips have the same entry names in order and their
# JPEGs decode (Pillow) to pixels within a mean absolute difference of 1.5 per channel overall
# (our JPEGs come straight from the YUV planes, CVAT's from RGB: not byte-identical); "no (…)"
# otherwise. Reports the mean and the largest difference.
close_jpegs() {
    "$baseline_py" - "$1" "$2" <<'EOF'
import io, sys, zipfile
from PIL import Image, ImageChops, ImageStat
a, b = (zipfile.ZipFile(p) for p in sys.argv[1:3])
ea, eb = a.infolist(), b.infolist()
names = len(ea) == len(eb) and all(x.filename == y.filename for x, y in zip(ea, eb))
total, count, worst = 0.0, 0, 0
for x, y in zip(ea, eb):
    ia, ib = (Image.open(io.BytesIO(z.read(e))).convert("RGB") for z, e in ((a, x), (b, y)))
    if ia.size != ib.size:
        names = False
        break
    d = ImageChops.difference(ia, ib)
    total += sum(ImageStat.Stat(d).mean) / 3
    count += 1
    worst = max(worst, max(hi for _, hi in d.getextrema()))
mae = total / max(count, 1)
ok = names and count > 0 and mae <= 1.5
print(f"{'yes' if ok else 'no'} (mean abs diff {mae:.2f}, max {worst}{'' if names else ', entries differ'})")
EOF
}

# ---- run -----------------------------------------------------------------------------
table="| video | measurement | frameserver | reference | ratio | target | result |
|---|---|---|---|---|---|---|"
row() { table+=$'\n'"| $* |"; }

vi=0
for video in "${videos[@]}"; do
    vi=$((vi + 1))
    vname="$(basename "$video")"
    vdir="$(dirname "$video")"
    wd="$work/v$vi"
    mkdir -p "$wd"
    log "== $vname"

    # The plan: frame count, chunks, the chunk with the longest decode from its key frame; the
    # manifest (the same one the server generates) for the Python baseline.
    "$floor_bin" "$video" --chunk-size "$chunk_size" --reps 1 --manifest-out "$wd/manifest" >"$wd/plan.txt" \
        || die "chunk_floor failed on $vname"
    plan="$(grep -P '^plan\t' "$wd/plan.txt")"
    frames="$(kv frames <<<"$plan")"
    nchunks="$(kv chunks <<<"$plan")"
    worst="$(kv worst_chunk <<<"$plan")"
    worst_decode="$(kv worst_decode <<<"$plan")"
    log "$frames frames, $nchunks chunks, $(kv keyframes <<<"$plan") key frames; worst chunk $worst ($worst_decode frames decoded cold)"
    test_chunks=(0)
    [[ "$worst" != 0 ]] && test_chunks+=("$worst")
    chunk_args=()
    for c in "${test_chunks[@]}"; do chunk_args+=(--chunk "$c"); done

    # -- 1. cold chunks ----------------------------------------------------------------
    if [[ ",$parts," == *,cold,* ]]; then
    start_server "v$vi-cold" "$vdir"
    cold_pid=$SRV_PID cold_url=$SRV_URL
    warm_task="$(create_task "$cold_url" "$vname")"
    get_chunk "$cold_url" "$warm_task" "$((nchunks > 1 ? 1 : 0))" "$wd/warm.zip" >/dev/null
    wait_idle "$cold_url"
    declare -A t_floor=() t_base=() t_srv=()
    for ((r = 1; r <= reps; r++)); do
        wait_cpu_quiet
        "$floor_bin" "$video" --chunk-size "$chunk_size" --quality "$quality" "${chunk_args[@]}" \
            --warmup 1 --reps 1 --out-dir "$wd/floor" >"$wd/floor.$r.txt" || die "chunk_floor failed"
        "$baseline_py" "$baseline_script" --manifest "$wd/manifest/manifest.jsonl" "$video" \
            --chunk-size "$chunk_size" --quality "$quality" "${chunk_args[@]}" \
            --warmup 1 --reps 1 --out-dir "$wd/base" >"$wd/base.$r.txt" || die "cvat_chunk.py failed"
        for c in "${test_chunks[@]}"; do
            task="$(create_task "$cold_url" "$vname")"
            wait_idle "$cold_url"
            t="$(get_chunk "$cold_url" "$task" "$c" "$wd/server_chunk_$c.zip")"
            wait_idle "$cold_url"
            f="$(line_for chunk "n=$c" <"$wd/floor.$r.txt" | kv median_s)"
            b="$(line_for chunk "n=$c" <"$wd/base.$r.txt" | kv median_s)"
            t_floor[$c]+="$f "; t_base[$c]+="$b "; t_srv[$c]+="$t "
            log "  round $r chunk $c: server $t s, floor $f s, baseline $b s"
        done
    done
    stop_server "$cold_pid"
    for c in "${test_chunks[@]}"; do
        srv="$(tr ' ' '\n' <<<"${t_srv[$c]}" | grep . | median)"
        flo="$(tr ' ' '\n' <<<"${t_floor[$c]}" | grep . | median)"
        bas="$(tr ' ' '\n' <<<"${t_base[$c]}" | grep . | median)"
        fl_line="$(line_for chunk "n=$c" <"$wd/floor.1.txt")"
        decoded="$(kv decoded <<<"$fl_line")"
        skipped="$(kv skipped <<<"$fl_line")"
        [[ "${skipped:-0}" == 0 ]] && skipped_txt="" || skipped_txt=", $skipped non-reference frames before the chunk skipped"
        first="$(kv first <<<"$fl_line")"; last="$(kv last <<<"$fl_line")"
        if cmp -s "$wd/server_chunk_$c.zip" "$wd/floor/chunk_$c.zip"; then same_floor=yes; else same_floor=no; failed=1; fi
        close_base="$(close_jpegs "$wd/server_chunk_$c.zip" "$wd/base/chunk_$c.zip")"
        [[ "$close_base" == yes* ]] || failed=1
        kb=$(( $(stat -c %s "$wd/server_chunk_$c.zip") / 1024 ))
        note "\`$vname\` chunk $c (frames $first–$last, $decoded decoded from the key frame$skipped_txt, $kb KiB): server bytes identical to the floor's: $same_floor; JPEG pixels within mean abs diff 1.5 of the baseline's: $close_base."
        label="cold chunk $c ($decoded frames decoded${skipped_txt:+, $skipped skipped})"
        rf="$(pratio "${t_srv[$c]}" "${t_floor[$c]}")"
        rb="$(pratio "${t_base[$c]}" "${t_srv[$c]}")"
        row "$vname | $label vs floor | $(fmt_s "$srv") | $(fmt_s "$flo") | $rf | ≤ 1.3x | $(verdict "${rf%x}" '<=' 1.3)"
        row "$vname | $label vs CVAT method (PyAV) | $(fmt_s "$srv") | $(fmt_s "$bas") | $rb faster | ≥ 3x | $(verdict "${rb%x}" '>=' 3)"
    done

    fi
    # -- 2. sequential playback -----------------------------------------------------------
    if [[ ",$parts," == *,seq,* ]]; then
    seq_srv=() seq_floor=() seq_decoded=() seq_seeks=() seq_first=() seq_maxwait=()
    urls=()
    for ((r = 1; r <= seq_reps; r++)); do
        out_args=()
        [[ $r == 1 ]] && out_args=(--out-dir "$wd/floor_seq")
        wait_cpu_quiet
        "$floor_bin" "$video" --chunk-size "$chunk_size" --quality "$quality" --reps 1 \
            --sequential-reps 1 "${out_args[@]}" >"$wd/floor_seq.$r.txt" || die "chunk_floor --sequential failed"
        f="$(grep -P '^sequential\t' "$wd/floor_seq.$r.txt" | kv median_s)"
        seq_floor+=("$f")

        start_server "v$vi-seq$r" "$vdir"
        task="$(create_task "$SRV_URL" "$vname")"
        d0="$(metric "$SRV_URL" frameserver_frames_decoded_total)"
        s0="$(metric "$SRV_URL" frameserver_seeks_total)"
        args=()
        mkdir -p "$wd/srv_seq"
        for ((n = 0; n < nchunks; n++)); do
            args+=(-o "$wd/srv_seq/seq_$(printf %03d "$n").zip" "$(chunk_url "$SRV_URL" "$task" "$n")")
        done
        t0=$(date +%s%N)
        codes="$(curl -s "${AUTH[@]}" -w '%{http_code} %{time_total}\n' "${args[@]}")" || die "sequential playback: curl failed"
        t1=$(date +%s%N)
        [[ "$(awk '$1 != 200' <<<"$codes" | wc -l)" == 0 ]] || die "sequential playback: not all 200: $(tr '\n' ' ' <<<"$codes")"
        seq_first+=("$(awk 'NR == 1 { print $2 }' <<<"$codes")")
        seq_maxwait+=("$(awk 'NR == 1 || $2 > m { m = $2 } END { print m }' <<<"$codes")")
        wait_idle "$SRV_URL"
        d1="$(metric "$SRV_URL" frameserver_frames_decoded_total)"
        s1="$(metric "$SRV_URL" frameserver_seeks_total)"
        stop_server "$SRV_PID"
        t="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')"
        seq_srv+=("$t"); seq_decoded+=($((d1 - d0))); seq_seeks+=($((s1 - s0)))
        log "  sequential round $r: server $t s ($((d1 - d0)) frames decoded, $((s1 - s0)) seeks), floor $f s"
        if [[ $r == 1 ]]; then
            mism=0
            for ((n = 0; n < nchunks; n++)); do
                z="seq_$(printf %03d "$n").zip"
                cmp -s "$wd/srv_seq/$z" "$wd/floor_seq/$z" || mism=$((mism + 1))
            done
            [[ $mism == 0 ]] || failed=1
            note "\`$vname\` sequential playback: $nchunks chunks, $((mism == 0 ? nchunks : nchunks - mism))/$nchunks byte-identical to the floor's."
            rm -rf "$wd/floor_seq"
        fi
        rm -rf "$wd/srv_seq"
    done
    srv="$(printf '%s\n' "${seq_srv[@]}" | median)"
    flo="$(printf '%s\n' "${seq_floor[@]}" | median)"
    dec_max="$(printf '%s\n' "${seq_decoded[@]}" | sort -g | tail -n 1)"
    rs="$(pratio "${seq_srv[*]}" "${seq_floor[*]}")"
    row "$vname | sequential playback, $nchunks chunks in order, fresh server | $(fmt_s "$srv") | $(fmt_s "$flo") | $rs | ≤ 1.3x | $(verdict "${rs%x}" '<=' 1.3)"
    row "$vname | frames decoded during that playback (max of $seq_reps) | $dec_max | $frames frames | | = frame count | $(verdict "$dec_max" '==' "$frames")"
    note "\`$vname\` sequential playback: frames decoded per round ${seq_decoded[*]}, seeks per round ${seq_seeks[*]}; longest wait for one chunk (median of rounds) $(fmt_s "$(printf '%s\n' "${seq_maxwait[@]}" | median)")."
    c0_floor="$(tr ' ' '\n' <<<"${t_floor[0]}" | grep . | median)"
    first_srv="$(printf '%s\n' "${seq_first[@]}" | median)"
    row "$vname | (info) chunk 0 as the first request of a fresh server process | $(fmt_s "$first_srv") | $(fmt_s "$c0_floor") | $(ratio "$first_srv" "$c0_floor") | |"
    if [[ "$baseline_seq" != 0 ]]; then
        log "  baseline: every chunk built cold, the CVAT way"
        wait_cpu_quiet
        "$baseline_py" "$baseline_script" --manifest "$wd/manifest/manifest.jsonl" "$video" \
            --chunk-size "$chunk_size" --quality "$quality" --all >"$wd/base_all.txt" || die "cvat_chunk.py --all failed"
        ball="$(grep -P '^all\t' "$wd/base_all.txt")"
        bt="$(kv total_s <<<"$ball")"
        row "$vname | (info) the same playback the CVAT way: each chunk built cold | $(fmt_s "$srv") | $(fmt_s "$bt") | $(ratio "$bt" "$srv") faster | |"
        note "\`$vname\` CVAT-way playback decodes $(kv decoded <<<"$ball") frames for $frames."
    fi

    fi
    # -- 3. cache hits --------------------------------------------------------------------
    if [[ ",$parts," == *,hits,* ]]; then
    # frameserver and the loopback floor (examples/bytes_server: the same bytes from a minimal
    # axum server) are driven alternately, twice each for chunks; the better pass of each is
    # reported (other load on the machine only ever slows a pass down).
    start_server "v$vi-hits" "$vdir" --cache-size "$cache_size"
    hits_pid=$SRV_PID hits_url=$SRV_URL hits_auth="$AUTH_COOKIE" hits_bearer="$AUTH_BEARER"
    task="$(create_task "$hits_url" "$vname")"
    get_chunk "$hits_url" "$task" 0 "$wd/hit0.zip" >/dev/null
    wait_idle "$hits_url"
    bytes0=$(stat -c %s "$wd/hit0.zip")
    "$baseline_py" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2], "wb").write(z.read(z.infolist()[0]))' \
        "$wd/hit0.zip" "$wd/hit0_frame0.jpeg"
    start_bg "v$vi-bytes-chunk" "$bytes_bin" "$wd/hit0.zip"
    ref_chunk_pid=$SRV_PID ref_chunk_url=$SRV_URL
    start_bg "v$vi-bytes-frame" "$bytes_bin" "$wd/hit0_frame0.jpeg"
    ref_frame_pid=$SRV_PID ref_frame_url=$SRV_URL
    h0="$(metric "$hits_url" frameserver_cache_hits_total)"
    for pass in 1 2; do
        run_wrk "$wd/wrk_chunk.$pass.txt" "$(chunk_url "$hits_url" "$task" 0)" "$hits_auth"
        run_wrk "$wd/wrk_ref_chunk.$pass.txt" "$ref_chunk_url/"
    done
    h1="$(metric "$hits_url" frameserver_cache_hits_total)"
    hwm_kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$hits_pid/status")"
    run_wrk "$wd/wrk_frame.1.txt" "$hits_url/api/tasks/$task/data?type=frame&number=0&quality=compressed" "$hits_auth"
    run_wrk "$wd/wrk_ref_frame.1.txt" "$ref_frame_url/"
    if [[ -n "$hits_bearer" ]]; then
        run_wrk "$wd/wrk_bearer.1.txt" "$(chunk_url "$hits_url" "$task" 0)" "$hits_bearer"
    fi
    hwm2_kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$hits_pid/status")"
    stop_server "$hits_pid"; stop_server "$ref_chunk_pid"; stop_server "$ref_frame_pid"
    kinds=(chunk frame ref_chunk ref_frame)
    [[ -n "$hits_bearer" ]] && kinds+=(bearer)
    for k in "${kinds[@]}"; do
        w="$(for f in "$wd/wrk_$k".*.txt; do echo "$(awk '/^Requests\/sec:/ { print $2 }' "$f") $f"; done | sort -gr | head -n 1 | cut -d' ' -f2-)"
        declare "rps_$k=$(awk '/^Requests\/sec:/ { print $2 }' "$w")"
        declare "p99_$k=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$w")")"
        declare "n_$k=$(awk '/requests in/ { print $1 }' "$w")"
        declare "gbs_$k=$(awk '/^Transfer\/sec:/ { print $2 }' "$w")"
        bad="$(awk '/Non-2xx/' "$wd/wrk_$k".*.txt)"
        [[ -z "$bad" ]] || { note "\`$vname\` wrk ($k): $bad"; failed=1; }
        sock="$(awk '/Socket errors/' "$w")"
        [[ -z "$sock" ]] || note "\`$vname\` wrk ($k): $sock"
    done
    note "\`$vname\` cache hits, responses/s per pass: frameserver $(awk '/^Requests\/sec:/ { printf "%s ", $2 }' "$wd"/wrk_chunk.*.txt)/ reference $(awk '/^Requests\/sec:/ { printf "%s ", $2 }' "$wd"/wrk_ref_chunk.*.txt)."
    limit_mb=$(( cache_size / 1048576 + 150 ))
    hwm_mb="$(awk -v k="$hwm_kb" 'BEGIN { printf "%.0f", k / 1024 }')"
    row "$vname | cache hits: chunk 0 ($((bytes0 / 1024)) KiB), wrk 64 connections ${wrk_seconds} s, best of 2; reference: the same bytes from a minimal axum server | $(printf '%.0f' "$rps_chunk") responses/s ($n_chunk, $gbs_chunk/s) | $(printf '%.0f' "$rps_ref_chunk")/s ($gbs_ref_chunk/s) | $(ratio "$rps_chunk" "$rps_ref_chunk") | ≥ 5000/s | $(verdict "$rps_chunk" '>=' 5000)"
    row "$vname | cache hits: p99 latency | $p99_chunk ms | $p99_ref_chunk ms | | ≤ 5 ms | $(verdict "$p99_chunk" '<=' 5)"
    row "$vname | cache hits: server peak RSS (VmHWM), --cache-size $((cache_size / 1048576)) MiB | $hwm_mb MB | | | ≤ $limit_mb MB | $(verdict "$hwm_mb" '<=' "$limit_mb")"
    row "$vname | (info) cache hits on one compressed frame (type=frame, $(( $(stat -c %s "$wd/hit0_frame0.jpeg") / 1024 )) KiB) | $(printf '%.0f' "$rps_frame")/s, p99 $p99_frame ms | $(printf '%.0f' "$rps_ref_frame")/s, p99 $p99_ref_frame ms | $(ratio "$rps_frame" "$rps_ref_frame") | |"
    if [[ -n "$hits_bearer" ]]; then
        row "$vname | (info) cache hits on chunk 0 authenticated with a Bearer access token instead of the session cookie | $(printf '%.0f' "$rps_bearer")/s, p99 $p99_bearer ms | $(printf '%.0f' "$rps_ref_chunk")/s, p99 $p99_ref_chunk ms | $(ratio "$rps_bearer" "$rps_ref_chunk") | |"
    fi
    note "\`$vname\` cache hits: hit counter +$((h1 - h0)) during the chunk passes; peak RSS after the frame run $(awk -v k="$hwm2_kb" 'BEGIN { printf "%.0f", k / 1024 }') MB."
    fi
    unset t_floor t_base t_srv
done

{
    echo "One run, $(nproc) cores; CPU idle just before the run $idle_before; load average at start $loadavg_before, at end $(cut -d' ' -f1-3 /proc/loadavg); rounds started on a busy CPU: $busy_rounds. Cold chunk: medians of $reps rounds; sequential: medians of $seq_reps rounds; ratios vs floor and baseline: median of the per-round ratios; JPEG q$quality, $chunk_size frames per chunk. Baseline: PyAV $("$baseline_py" -c 'import av; print(av.__version__)') (FFmpeg $("$baseline_py" -c 'import av; print(av.ffmpeg_version_info)')), Pillow $("$baseline_py" -c 'import PIL; print(PIL.__version__)')."
    echo
    echo "$table"
    if [[ -n "$notes" ]]; then
        echo
        echo "Notes:$notes"
    fi
} | tee "${BENCH_OUT:-/dev/null}"

exit "$failed"
