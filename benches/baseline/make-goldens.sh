#!/usr/bin/env bash
# Regenerate testdata/golden/: the reference manifests that our Rust tests compare
# with byte for byte. They are produced by benches/baseline/cvat_manifest.py, a
# port of CVAT v2.73.0's manifest generator, with the pinned PyAV/Pillow/natsort of
# benches/baseline/requirements.txt.
#
#   benches/baseline/make-goldens.sh [--no-wait]
#
# Inputs:
#   testdata/videos/*             every file; run without --force first, and again
#                                 with --force when CVAT's key-frame ratio rule rejects it
#   testdata/images/set           image directory, --sorting lexicographical and natural
#   $SHARED_DIR/testdata/videos/* the real videos of shared/, always with --force
# Outputs (testdata/golden/):
#   <file name>/manifest.jsonl + index.json     (e.g. h264_bframes.mp4/)
#   <file name>/error.txt                       when the algorithm rejects the file even
#                                               with --force: the generator's stderr, verbatim
#   images_set_lexicographical/, images_set_natural/
#   shared-<file name>/                         for the real videos of shared/
#   outcomes.tsv                                one line per input: how it was produced
#   README.md                                   how all this was produced (regenerated)
#
# The test media of testdata/ are made by testdata/generate.sh; when they are not
# there yet this script waits for them (WAIT_SECONDS, default 1800; --no-wait: 0),
# then does what it can and reports what was missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
golden="$repo_root/testdata/golden"
wait_seconds="${WAIT_SECONDS:-1800}"
[[ "${1:-}" == "--no-wait" ]] && wait_seconds=0

log() { echo "[make-goldens] $*" >&2; }

py="$(bash "$here/setup-venv.sh" | tail -n 1)"
gen="$here/cvat_manifest.py"

shared="${SHARED_DIR:-}"
if [[ -z "$shared" ]]; then
    for d in "$repo_root/../shared" /work/shared; do
        [[ -d "$d/testdata/videos" ]] && { shared="$(cd "$d" && pwd)"; break; }
    done
fi

# ---- self-check against CVAT's own golden files (shared/testdata/cvat) ------------------
if [[ -n "$shared" ]] && [[ -d "$shared/testdata/cvat" ]]; then
    chk="$(mktemp -d "${TMPDIR:-/tmp}/make-goldens-check.XXXXXX")"
    "$py" "$gen" --output-dir "$chk/v" "$shared/testdata/cvat/video/video_1.mp4" >/dev/null
    cmp -s "$chk/v/manifest.jsonl" "$shared/testdata/cvat/video/manifest.jsonl" ||
        { log "SELF-CHECK FAILED: video_1.mp4 manifest differs from CVAT's"; exit 1; }
    [[ "$(cat "$chk/v/index.json")" == '{"0":121}' ]] ||
        { log "SELF-CHECK FAILED: video_1.mp4 index.json is $(cat "$chk/v/index.json")"; exit 1; }
    "$py" "$gen" --output-dir "$chk/i" "$shared/testdata/cvat/images_case_65/*.png" >/dev/null
    cmp -s <(tail -n +2 "$chk/i/manifest.jsonl") <(tail -n +2 "$shared/testdata/cvat/images_case_65/manifest.jsonl") &&
        [[ "$(head -n 1 "$chk/i/manifest.jsonl")" == '{"version":"1.1"}' ]] ||
        { log "SELF-CHECK FAILED: images_case_65 manifest differs from CVAT's"; exit 1; }
    rm -rf "$chk"
    log "self-check passed: CVAT's video_1.mp4 and images_case_65 manifests reproduced byte for byte"
else
    log "WARNING: shared/testdata/cvat not found, self-check skipped"
fi

# ---- wait for the colleague-generated media -------------------------------------------
videos_dir="$repo_root/testdata/videos"
images_dir="$repo_root/testdata/images/set"
ready() { [[ -d "$videos_dir" ]] && [[ -d "$images_dir" ]]; }
waited=0
while ! ready && ((waited < wait_seconds)); do
    ((waited % 60 == 0)) && log "waiting for testdata/videos and testdata/images/set (${waited}s of ${wait_seconds}s)"
    sleep 10
    waited=$((waited + 10))
done
# generate.sh moves finished directories into place; give it a moment to finish the rest
ready && ((waited > 0)) && sleep 5

missing=()
[[ -d "$videos_dir" ]] || missing+=("testdata/videos")
[[ -d "$images_dir" ]] || missing+=("testdata/images/set")
((${#missing[@]} == 0)) || log "WARNING: missing inputs: ${missing[*]} (their goldens are not generated)"

# ---- generation ------------------------------------------------------------------------
mkdir -p "$golden"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/make-goldens.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Build everything in a staging directory, then replace the generated subdirectories.
stage="$tmp/golden"
mkdir -p "$stage"
outcomes="$stage/outcomes.tsv"
printf 'golden\tsource\tflags\toutcome\tmessage\n' >"$outcomes"

# run_gen OUTDIR ARGS... -> exit code; stdout/stderr in $tmp/last.{out,err}
run_gen() {
    local outdir="$1"; shift
    rm -rf "$outdir"
    local rc=0
    "$py" "$gen" --output-dir "$outdir" "$@" >"$tmp/last.out" 2>"$tmp/last.err" || rc=$?
    return $rc
}

ratio_msg="The number of keyframes is not enough for smooth iteration over the video"

# golden_video NAME SOURCE_LABEL PATH MODE   (MODE: auto = plain, then --force if needed; force)
golden_video() {
    local name="$1" label="$2" src="$3" mode="$4"
    local dest="$stage/$name" flags="" outcome msg=""
    if [[ "$mode" == auto ]]; then
        if run_gen "$tmp/out" "$src"; then
            outcome="accepted"
        else
            msg="$(cat "$tmp/last.err")"
            if [[ "$msg" == "$ratio_msg" ]]; then
                flags="--force"
                if run_gen "$tmp/out" --force "$src"; then
                    outcome="needs --force"
                else
                    outcome="rejected"
                    msg="$(cat "$tmp/last.err")"
                fi
            else
                outcome="rejected"
            fi
        fi
    else
        flags="--force"
        if run_gen "$tmp/out" --force "$src"; then
            outcome="accepted with --force"
        else
            outcome="rejected"
            msg="$(cat "$tmp/last.err")"
        fi
    fi
    mkdir -p "$dest"
    if [[ "$outcome" == rejected ]]; then
        cp "$tmp/last.err" "$dest/error.txt"
    else
        cp "$tmp/out/manifest.jsonl" "$tmp/out/index.json" "$dest/"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$flags" "$outcome" "${msg//$'\n'/ }" >>"$outcomes"
    log "$name: $outcome${flags:+ ($flags)}${msg:+: $msg}"
}

if [[ -d "$videos_dir" ]]; then
    while IFS= read -r -d '' f; do
        name="$(basename "$f")"
        golden_video "$name" "testdata/videos/$name" "$f" auto
    done < <(find "$videos_dir" -maxdepth 1 -type f -print0 | LC_ALL=C sort -z)
fi

if [[ -d "$images_dir" ]]; then
    for sorting in lexicographical natural; do
        name="images_set_$sorting"
        if run_gen "$tmp/out" --sorting "$sorting" "$images_dir"; then
            mkdir -p "$stage/$name"
            cp "$tmp/out/manifest.jsonl" "$tmp/out/index.json" "$stage/$name/"
            printf '%s\t%s\t%s\t%s\t%s\n' "$name" "testdata/images/set" "--sorting $sorting" "accepted" "" >>"$outcomes"
            log "$name: $(($(wc -l <"$stage/$name/manifest.jsonl") - 2)) images"
        else
            mkdir -p "$stage/$name"
            cp "$tmp/last.err" "$stage/$name/error.txt"
            printf '%s\t%s\t%s\t%s\t%s\n' "$name" "testdata/images/set" "--sorting $sorting" "rejected" "$(tr '\n' ' ' <"$tmp/last.err")" >>"$outcomes"
            log "$name: rejected: $(cat "$tmp/last.err")"
        fi
    done
fi

# One image per Pillow pixel layout (1-bit, 2/4-bit grey and palette, LA, 16-bit, GIF, TIFF,
# WebP with alpha, JPEG 4:4:4/4:2:2/progressive/CMYK): checks native-mode decoding.
modes_dir="$repo_root/testdata/images/modes"
if [[ -d "$modes_dir" ]]; then
    name="images_modes"
    if run_gen "$tmp/out" "$modes_dir"; then
        mkdir -p "$stage/$name"
        cp "$tmp/out/manifest.jsonl" "$tmp/out/index.json" "$stage/$name/"
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "testdata/images/modes" "--sorting lexicographical" "accepted" "" >>"$outcomes"
        log "$name: $(($(wc -l <"$stage/$name/manifest.jsonl") - 2)) images"
    else
        log "$name: rejected: $(cat "$tmp/last.err")"
        exit 1
    fi
fi

if [[ -n "$shared" ]]; then
    while IFS= read -r -d '' f; do
        name="$(basename "$f")"
        case "$name" in *.md|*.txt) continue ;; esac
        golden_video "shared-$name" "shared/testdata/videos/$name" "$f" force
    done < <(find "$shared/testdata/videos" -maxdepth 1 -type f -print0 | LC_ALL=C sort -z)
else
    log "WARNING: shared/testdata/videos not found"
    missing+=("shared/testdata/videos")
fi

# ---- README ----------------------------------------------------------------------------
versions="$("$py" - <<'EOF'
import av, PIL, natsort, numpy, platform
from PIL import features
lv = av.library_versions
print(f"* PyAV **{av.__version__}** (manylinux wheel), bundling FFmpeg **{av.ffmpeg_version_info}** "
      f"(libavcodec {'.'.join(map(str, lv['libavcodec']))}, libavformat {'.'.join(map(str, lv['libavformat']))}, "
      f"libswscale {'.'.join(map(str, lv['libswscale']))})")
print(f"* Pillow **{PIL.__version__}** (libjpeg-turbo {features.version('libjpeg_turbo')}, "
      f"zlib {features.version('zlib')}, libwebp {features.version('webp')}, libtiff {features.version('libtiff')})")
print(f"* natsort **{natsort.__version__}** (no PyICU), numpy {numpy.__version__}")
print(f"* Python {platform.python_version()} on {platform.machine()} ({platform.system()})")
EOF
)"

{
    cat <<EOF
# Golden manifests

**Generated by \`benches/baseline/make-goldens.sh\`; do not edit by hand.** These are the
reference outputs that our Rust tests compare with **byte for byte** (\`manifest.jsonl\` and
\`index.json\`, or the error message in \`error.txt\`).

They were produced by \`benches/baseline/cvat_manifest.py\`, a self-contained port of CVAT
v2.73.0's manifest generator (\`utils/dataset_manifest/create.py\` with \`core.py\`/\`utils.py\`):
a full decode with PyAV in decoder output order, CVAT's relaxed key-frame seek check
(\`SEEK_MISMATCH_UPPER_BOUND = 200\`), the key-frame ratio rule with chunk size 36, the
checksum \`md5(frame.to_image().tobytes())\` (RGB24) for video frames and
\`md5(Image.open(f).tobytes())\` for images (spec \`media.md\` sections 2-8). The port
reproduces CVAT's own golden files byte for byte (\`shared/testdata/cvat\`: \`video/manifest.jsonl\`
and \`images_case_65/manifest.jsonl\`, the latter apart from its version line "1.0").

Software (pinned in \`benches/baseline/requirements.txt\`; CVAT v2.73.0 pins the same PyAV,
natsort and Pillow versions):

$versions

The video checksums depend on swscale's RGB24 conversion in that FFmpeg build (x86-64 SIMD
path, BT.601 matrix whatever the colour tags say, as PyAV <= 16 does). The image checksums of
JPEG and WebP files depend on the decoder library bundled in the Pillow wheel.

## Layout

* \`<video file name>/\` for every file in \`testdata/videos/\`: run without \`--force\`, and with
  \`--force\` when CVAT rejects it with "The number of keyframes is not enough for smooth
  iteration over the video" (CVAT's server always uses force).
* \`shared-<video file name>/\` for the real videos of \`shared/testdata/videos/\`, always with \`--force\`.
* \`images_set_lexicographical/\`, \`images_set_natural/\`: the directory \`testdata/images/set\`
  with \`--sorting lexicographical\` / \`natural\`. Image \`name\`s are relative to the data root,
  so the files do not depend on where the repository is checked out; lexicographical sorting
  compares the absolute path strings, which share the data-root prefix, so the order does not
  depend on it either.
* \`error.txt\` instead of the manifest when CVAT's algorithm rejects the input even with
  \`--force\`: the generator's stderr verbatim (the exception message plus a newline; CVAT's
  CLI exits with status 1). No \`manifest.jsonl\` is written in that case.
* \`outcomes.tsv\`: one line per golden directory: source, flags used, outcome
  (\`accepted\`, \`needs --force\`, \`accepted with --force\`, \`rejected\`) and message.

## Outcomes

| golden | source | flags | outcome | message |
|---|---|---|---|---|
EOF
    tail -n +2 "$outcomes" | awk -F'\t' '{ printf "| `%s` | `%s` | %s | %s | %s |\n", $1, $2, ($3 == "" ? "" : "`" $3 "`"), $4, $5 }'
    if ((${#missing[@]} > 0)); then
        echo
        echo "Inputs missing when these goldens were generated: ${missing[*]}."
    fi
    cat <<EOF

## Things to know

* **Colour tags.** PyAV 16 converts to RGB24 with swscale's defaults, i.e. the BT.601 matrix
  even for BT.709-tagged video. \`bt709.mp4\` frame 0 therefore hashes to
  \`2f0c8d5aa10fea567ecc6038b41347ce\` here, while \`ffmpeg -i bt709.mp4 -pix_fmt rgb24 -f rawvideo\`
  (FFmpeg 5.1, whose scale filter honours the tag) and PyAV 18 give \`f07421ffdcdf0e02bc8f27b818c5dbb7\`.
  Untagged, BT.601-tagged and full-range (\`yuvj420p\`) clips agree with the ffmpeg CLI.
* **HEVC and FFmpeg 8.** In FFmpeg 8.0 (and 8.1) the HEVC decoder outputs the last frame of
  each closed GOP of \`hevc.mp4\` with the same \`pkt_dts\` as the frame before it (frame 29:
  pts 14848, dts 14336 after frame 28 with dts 14336), so CVAT's generator stops with
  "Detected non-increasing DTS sequence in the video" (with or without \`--force\`). FFmpeg 5.1's
  decoder gives strictly increasing dts for the same file.
* **Images.** 16-bit PNGs are hashed as Pillow decodes them: \`I;16\` greyscale keeps 2 bytes
  per pixel, 16-bit RGB is reduced to 8-bit \`RGB\`. Palette images hash their indices.

## Regenerating

\`\`\`
testdata/generate.sh                 # the synthetic media (testdata/videos, testdata/images)
benches/baseline/make-goldens.sh     # creates target/baseline-venv and rewrites testdata/golden/
\`\`\`
EOF
} >"$stage/README.md"

# ---- swap in ---------------------------------------------------------------------------
find "$golden" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
cp -a "$stage/." "$golden/"
log "wrote $golden ($(find "$golden" -mindepth 1 -maxdepth 1 -type d | wc -l) directories)"
