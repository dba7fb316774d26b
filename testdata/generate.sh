#!/usr/bin/env bash
# (Re)generate the committed synthetic test media under testdata/.
#
#   testdata/generate.sh              regenerate videos/, bad/, images/, *_facts.json (verifies everything)
#   testdata/generate.sh --check      only re-probe the existing videos and rewrite video_facts.json
#   testdata/generate.sh --bench DIR  create DIR/h264_1080p_gop250.mp4 (not committed; skipped if present)
#
# Needs: ffmpeg/ffprobe (built with libx264, libx265, libvpx), python3 with venv + pip
# (PyPI reachable the first time: pinned Pillow and PyAV wheels go into a throwaway venv under /tmp).
# Runnable from any directory. Idempotent: outputs are rebuilt in a temporary directory, verified,
# and only then swapped in; with the same FFmpeg/x264/x265/libvpx/Pillow builds the bytes are identical
# from run to run (see SHA256SUMS).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PILLOW_VERSION="12.3.0" # CVAT v2.73.0 lock file
PYAV_VERSION="16.0.1" # CVAT v2.73.0's pin; used only for reference_keyframes.json
# Throwaway venv for Pillow and PyAV (never committed); override with TESTDATA_VENV=DIR.
VENV="${TESTDATA_VENV:-${TMPDIR:-/tmp}/frameserver-testdata-venv-pil$PILLOW_VERSION-av$PYAV_VERSION}"

FF=(ffmpeg -hide_banner -nostdin -loglevel error -y)
# Deterministic output: no metadata, no encoder/muxer version strings, no creation time.
BITEXACT=(-map_metadata -1 -fflags +bitexact -flags:v +bitexact)
# Single-threaded x264 so the bitstream does not depend on the number of cores.
X264=(-c:v libx264 -threads 1 -preset medium -crf 28)

log() { printf '[generate] %s\n' "$*" >&2; }
die() { printf '[generate] ERROR: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found in PATH"; }

check_encoders() {
    local enc
    local have
    have="$(ffmpeg -hide_banner -encoders 2>/dev/null)"
    for enc in libx264 libx265 libvpx-vp9 mpeg4 aac; do
        grep -qE "^ [A-Z.]{6} $enc " <<<"$have" || die "ffmpeg has no '$enc' encoder"
    done
}

# ---------------------------------------------------------------------------------------------
# --bench DIR: a realistic-size 1080p clip for benchmarks (not committed).
# ---------------------------------------------------------------------------------------------
bench() {
    local dir="$1"
    local out="$dir/h264_1080p_gop250.mp4"
    mkdir -p "$dir"
    if [[ -s "$out" ]]; then
        log "$out exists, skipping"
        return 0
    fi
    need ffmpeg
    log "encoding $out (1920x1080, 900 frames, 30 fps, keyframe every 250; takes a minute or two)"
    # testsrc2 gives moving objects and a running counter; mild temporal noise makes it
    # compress more like camera footage than a flat synthetic pattern.
    "${FF[@]}" -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
        -vf "noise=alls=6:allf=t,format=yuv420p" -frames:v 900 \
        "${BITEXACT[@]}" -c:v libx264 -preset veryfast -crf 23 -profile:v high \
        -g 250 -keyint_min 250 -sc_threshold 0 -movflags +faststart "$out.tmp.mp4"
    local kf
    kf="$(ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv "$out.tmp.mp4" |
        awk -F, '$2 ~ /K/ { printf "%s%d", (n++ ? "," : ""), NR - 1 } END { printf " of %d", NR }')"
    [[ "$kf" == "0,250,500,750 of 900" ]] || die "bench clip keyframes/packets unexpected: $kf"
    mv "$out.tmp.mp4" "$out"
    log "done: $out (keyframe packets $kf)"
}

# ---------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------
gen_videos() {
    local v="$1/videos" tmp="$1/tmp"
    mkdir -p "$v" "$tmp"

    log "h264_bframes.mp4"
    # H.264 High, 3 B-frames, closed GOP of 24, moov at the front (+faststart) so that a
    # truncated copy still opens (bad/truncated.mp4).
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 90 "${BITEXACT[@]}" \
        "${X264[@]}" -profile:v high -pix_fmt yuv420p -bf 3 -g 24 -keyint_min 24 -sc_threshold 0 \
        -movflags +faststart "$v/h264_bframes.mp4"

    log "hevc.mp4"
    # Typical x265 output: open GOP (x265's default), so the keyframes after frame 0 are CRA pictures
    # followed in decode order by RASL leading pictures. No thread pool / frame threads (determinism);
    # hvc1 sample entry (what Apple players need).
    "${FF[@]}" -f lavfi -i "mandelbrot=size=320x240:rate=25:maxiter=512:start_scale=3:end_scale=0.3:end_pts=3.6" -frames:v 90 \
        "${BITEXACT[@]}" -c:v libx265 -preset medium -crf 30 -pix_fmt yuv420p \
        -x265-params "keyint=30:min-keyint=30:scenecut=0:open-gop=1:pools=none:frame-threads=1:log-level=error" \
        -tag:v hvc1 "$v/hevc.mp4"

    log "hevc_closed_gop.mp4"
    # Closed GOP: every keyframe is an IDR_N_LP. FFmpeg 8's HEVC decoder outputs the last two frames
    # of each GOP while decoding the IDR packet and gives both the same pkt_dts (FFmpeg 5.1 does not);
    # a CVAT-style "non-increasing DTS" check on decoded frames then trips (see README.md).
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 90 \
        "${BITEXACT[@]}" -c:v libx265 -preset medium -crf 30 -pix_fmt yuv420p \
        -x265-params "keyint=30:min-keyint=30:scenecut=0:open-gop=0:pools=none:frame-threads=1:log-level=error" \
        -tag:v hvc1 "$v/hevc_closed_gop.mp4"

    log "vp9.webm"
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -vf "hue=H=2*PI*t/3.6" -frames:v 90 \
        "${BITEXACT[@]}" -c:v libvpx-vp9 -threads 1 -row-mt 0 -deadline good -cpu-used 4 \
        -b:v 0 -crf 40 -g 30 -keyint_min 30 -pix_fmt yuv420p "$v/vp9.webm"

    log "mpeg4.avi"
    # MPEG-4 Part 2 Simple profile, no B-frames (so no packed-B-frame AVI hacks).
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 90 "${BITEXACT[@]}" \
        -c:v mpeg4 -threads 1 -g 25 -bf 0 -q:v 9 -pix_fmt yuv420p "$v/mpeg4.avi"

    log "vfr.mkv"
    # 30 frames at 25 fps (40 ms), 20 frames at 10 fps (100 ms), 30 frames at 50 fps (20 ms),
    # timestamps in ms (Matroska time base 1/1000), passed through unchanged.
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 80 \
        -vf "settb=1/1000,setpts='if(lt(N,30),N*40,if(lt(N,50),1200+(N-30)*100,3200+(N-50)*20))',format=yuv420p" \
        -fps_mode passthrough -enc_time_base:v 1/1000 "${BITEXACT[@]}" \
        "${X264[@]}" -g 20 -keyint_min 20 -sc_threshold 0 "$v/vfr.mkv"

    log "rotated90.mp4"
    # FFmpeg 5.1 only writes a display matrix for a stream copy with the legacy rotate tag.
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x180:rate=25" -frames:v 50 "${BITEXACT[@]}" \
        "${X264[@]}" -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0 "$tmp/unrotated.mp4"
    "${FF[@]}" -i "$tmp/unrotated.mp4" -map 0 -c copy "${BITEXACT[@]}" -metadata:s:v:0 rotate=90 \
        "$v/rotated90.mp4"

    log "single_keyframe.mp4"
    "${FF[@]}" -f lavfi -i "testsrc2=size=240x180:rate=25" -frames:v 150 "${BITEXACT[@]}" \
        "${X264[@]}" -pix_fmt yuv420p -x264-params "keyint=infinite:scenecut=0" "$v/single_keyframe.mp4"

    log "bt709.mp4"
    # RGB -> YUV really done with the BT.709 matrix (limited range), and tagged so.
    # 426 wide: not a multiple of 16, so the SPS carries a cropping rectangle.
    "${FF[@]}" -f lavfi -i "testsrc2=size=426x240:rate=25" -frames:v 50 \
        -vf "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p" "${BITEXACT[@]}" \
        "${X264[@]}" -g 25 -keyint_min 25 -sc_threshold 0 \
        -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv "$v/bt709.mp4"

    log "fullrange.mp4"
    # yuvj420p = full-range BT.601 YUV; x264 sets the VUI full_range flag.
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 50 \
        -vf "scale=out_range=pc,format=yuvj420p" "${BITEXACT[@]}" \
        "${X264[@]}" -g 25 -keyint_min 25 -sc_threshold 0 -color_range pc "$v/fullrange.mp4"

    log "open_gop.mp4"
    # Only frame 0 is IDR; the other I-frames are non-IDR (recovery point SEI) and are followed in
    # decode order by B-frames that reference the previous GOP.
    "${FF[@]}" -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 90 "${BITEXACT[@]}" \
        "${X264[@]}" -pix_fmt yuv420p -bf 3 \
        -x264-params "open-gop=1:keyint=30:min-keyint=30:scenecut=0" "$v/open_gop.mp4"

    log "gop_long.mp4"
    # Keyframe every 120 frames: > 3*36+1 = 109, so CVAT's "not enough keyframes" rule rejects it.
    "${FF[@]}" -f lavfi -i "mandelbrot=size=160x120:rate=25:maxiter=512:start_scale=3:end_scale=0.05:end_pts=10.4" -frames:v 260 \
        "${BITEXACT[@]}" "${X264[@]}" -pix_fmt yuv420p -g 120 -keyint_min 120 -sc_threshold 0 \
        "$v/gop_long.mp4"
}

gen_bad() {
    local b="$1/bad" v="$1/videos" tmp="$1/tmp"
    mkdir -p "$b" "$tmp"
    local n

    log "bad/*"
    # first 40% of a faststart MP4: the moov is complete, the media data stops early
    n=$(stat -c %s "$v/h264_bframes.mp4")
    head -c $((n * 40 / 100)) "$v/h264_bframes.mp4" >"$b/truncated.mp4"
    # first 40% of an MP4 whose moov is at the end: no moov at all
    n=$(stat -c %s "$v/bt709.mp4")
    head -c $((n * 40 / 100)) "$v/bt709.mp4" >"$b/truncated_no_moov.mp4"

    printf 'This is a plain text file with an .mp4 name.\nIt contains no media at all.\n' >"$b/not_media.mp4"
    : >"$b/empty.mp4"

    "${FF[@]}" -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=1" "${BITEXACT[@]}" \
        -flags:a +bitexact -c:a aac -b:a 64k "$b/audio_only.m4a"

    # valid MP4 with 4 KiB in the middle of mdat overwritten by seeded pseudo-random bytes
    cp "$v/h264_bframes.mp4" "$b/garbage_middle.mp4"
    python3 - "$b/garbage_middle.mp4" <<'EOF'
import random, struct, sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
off = 0
while off < len(data):
    size, typ = struct.unpack(">I4s", data[off:off + 8])
    hdr = 8
    if size == 1:
        size, hdr = struct.unpack(">Q", data[off + 8:off + 16])[0], 16
    if typ == b"mdat":
        start, end = off + hdr, off + size
        break
    off += size
else:
    sys.exit("no mdat box")
mid = (start + end) // 2
data[mid:mid + 4096] = random.Random(20240611).randbytes(4096)
open(p, "wb").write(bytes(data))
print("garbage_middle.mp4: overwrote bytes %d..%d (mdat %d..%d)" % (mid, mid + 4096, start, end), file=sys.stderr)
EOF
}

# ---------------------------------------------------------------------------------------------
# Images (Pillow in a throwaway venv)
# ---------------------------------------------------------------------------------------------
venv_python() {
    local ok="import PIL, av, sys; sys.exit(PIL.__version__ != '$PILLOW_VERSION' or av.__version__ != '$PYAV_VERSION')"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "$ok" 2>/dev/null; then
        log "creating $VENV with Pillow==$PILLOW_VERSION av==$PYAV_VERSION"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "Pillow==$PILLOW_VERSION" "av==$PYAV_VERSION"
    fi
    printf '%s\n' "$VENV/bin/python"
}

gen_images() {
    local py
    py="$(venv_python)"
    log "images/*"
    "$py" "$HERE/gen_images.py" "$1/images" >"$1/images.log"
    log "images/modes/* (one file per Pillow pixel layout)"
    "$py" "$HERE/gen_modes.py" "$1/images/modes"
    mv "$1/images/image_facts.json" "$1/image_facts.json"
}

# ---------------------------------------------------------------------------------------------
main() {
    case "${1:-}" in
        --bench)
            [[ $# -eq 2 ]] || die "usage: $0 --bench DIR"
            bench "$2"
            return
            ;;
        --check)
            python3 "$HERE/probe_facts.py" "$HERE"
            return
            ;;
        "") ;;
        -h | --help)
            sed -n '2,12p' "$0"
            return
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac

    need ffmpeg
    need ffprobe
    need python3
    check_encoders

    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/frameserver-testdata.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT

    gen_videos "$work"
    gen_bad "$work"
    gen_images "$work"

    log "verifying videos with ffprobe"
    python3 "$HERE/probe_facts.py" "$work" --out "$work/video_facts.json"
    cat "$work/images.log"

    log "reference key frames with PyAV $PYAV_VERSION (spec sections 3-4)"
    "$(venv_python)" "$HERE/ref_keyframes.py" "$work" --out "$work/reference_keyframes.json"

    # Everything verified: swap the new outputs in.
    rm -rf "$HERE/videos" "$HERE/bad" "$HERE/images"
    mv "$work/videos" "$work/bad" "$work/images" "$HERE/"
    mv "$work/video_facts.json" "$work/image_facts.json" "$work/reference_keyframes.json" "$HERE/"
    (cd "$HERE" && find videos bad images -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum >SHA256SUMS)

    local total
    total=$(du -sb --exclude=.venv-gen --exclude=__pycache__ "$HERE" | cut -f1)
    log "done; testdata/ is $total bytes"
    ((total <= 5 * 1024 * 1024)) || die "testdata/ exceeds 5 MiB ($total bytes)"
}

main "$@"
