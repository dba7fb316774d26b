#!/usr/bin/env python3
"""Reference key-frame lines for the test videos, computed with PyAV 16.0.1 (CVAT v2.73.0's pin).

    python ref_keyframes.py TESTDATA_DIR [--out FILE]     (needs: pip install av==16.0.1 Pillow)

This is a direct Python transcription of /work/shared/spec/media.md sections 3.1-3.4 and 3.6 (sequential decode
with threading AUTO, key-frame validation by pts seek, the running "not enough key frames" ratio with
chunk size 36) and of the section 4.2 checksum (md5 of frame.to_image().tobytes(), i.e. PyAV's default RGB24
conversion that ignores colour tags). It was NOT produced by running CVAT itself; treat it as the spec's algorithm
evaluated with the same PyAV/FFmpeg build CVAT v2.73.0 uses. Output: reference_keyframes.json.
"""
import hashlib
import json
import math
import os
import sys

import av

CHUNK_SIZE = 36
SEEK_MISMATCH_UPPER_BOUND = 200
PICT_TYPES = {0: "NONE", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


def md5_frame(frame):
    return hashlib.md5(frame.to_image().tobytes()).hexdigest()


def rotated_size(w, h, rot):
    if not rot:
        return [w, h]
    a = math.radians(rot)
    return [int(h * abs(math.sin(a)) + w * abs(math.cos(a))), int(h * abs(math.cos(a)) + w * abs(math.sin(a)))]


def open_video(path):
    c = av.open(path)
    s = next(st for st in c.streams if st.type == "video")
    s.thread_type = "AUTO"
    return c, s


def validate_key_frame(path, target_pts, target_md5, prev_seek_pts):
    c, s = open_video(path)
    try:
        c.seek(target_pts, stream=s, backward=True, any_frame=False)
        landing = None
        n = 0
        for frame in c.decode(s):
            if n == 0:
                landing = frame.pts
                if landing == prev_seek_pts:
                    return None
            n += 1
            if n > SEEK_MISMATCH_UPPER_BOUND:
                return None
            if frame.pts < target_pts:
                continue
            return landing if (frame.pts == target_pts and md5_frame(frame) == target_md5) else None
        return None
    finally:
        c.close()


def reference(path):
    out = {}
    c, s = open_video(path)
    upper = 3 * CHUNK_SIZE + 1
    prev_pts = prev_dts = prev_seek = None
    index = 0
    keys = []
    all_key_flags = []
    errors = []
    dts_repeats = []
    not_enough_at = None
    first = True
    for frame in c.decode(s):
        if first:
            first = False
            pt = frame.pict_type  # an int in PyAV 16 (AVPictureType), an enum in some other versions
            out["first_pict_type"] = pt.name if hasattr(pt, "name") else PICT_TYPES.get(int(pt), str(pt))
            rot = getattr(frame, "rotation", 0) or 0
            out["rotation"] = rot
            out["resolution"] = rotated_size(frame.width, frame.height, rot)
            out["frame0_md5"] = md5_frame(frame)
            if out["first_pict_type"] != "I":
                errors.append("The first frame is not a key frame")
        if frame.pts is not None and prev_pts is not None and frame.pts <= prev_pts:
            errors.append("Detected non-increasing PTS sequence in the video")
        if frame.dts is not None and prev_dts is not None and frame.dts <= prev_dts:
            errors.append("Detected non-increasing DTS sequence in the video")
            dts_repeats.append(index)
        prev_pts, prev_dts = frame.pts, frame.dts
        if frame.key_frame:
            all_key_flags.append(index)
            md5 = md5_frame(frame)
            landing = validate_key_frame(path, frame.pts, md5, prev_seek)
            if landing is not None:
                prev_seek = landing
                keys.append({"number": index, "pts": frame.pts, "checksum": md5})
        index += 1
        if not_enough_at is None and index // max(len(keys), 1) >= upper:
            not_enough_at = index
    c.close()
    out.update({
        "length": index,
        "decoded_key_frame_numbers": all_key_flags,
        "key_frames": keys,
        "not_enough_keyframes": not_enough_at is not None,  # True -> CVAT needs --force
        "not_enough_keyframes_after_frame": not_enough_at,
        "errors": sorted(set(errors)),
        "non_increasing_dts_at_frames": dts_repeats,
    })
    if not keys:
        out["errors"].append("Could not find any valid keyframes in the video")
    return out


def main():
    root = sys.argv[1]
    dst = os.path.join(root, "reference_keyframes.json")
    if "--out" in sys.argv:
        dst = sys.argv[sys.argv.index("--out") + 1]
    vids = sorted(os.listdir(os.path.join(root, "videos")))
    res = {"_note": "Spec sections 3-4 evaluated with PyAV %s (libavcodec %s, bundled FFmpeg) by "
                    "testdata/ref_keyframes.py; not produced by CVAT itself. chunk_size=%d."
                    % (av.__version__, ".".join(map(str, av.library_versions["libavcodec"])), CHUNK_SIZE),
           "pyav_version": av.__version__,
           "videos": {}}
    for v in vids:
        r = reference(os.path.join(root, "videos", v))
        res["videos"][v] = r
        print("%-20s length=%-3d res=%s rot=%s keys=%s force_needed=%s errors=%s" % (
            v, r["length"], r["resolution"], r["rotation"], [k["number"] for k in r["key_frames"]],
            r["not_enough_keyframes"], r["errors"]))
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(res, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
