#!/usr/bin/env python3
"""Probe the generated test videos with ffprobe/ffmpeg, check them against what
generate.sh intended, and write the measured facts to video_facts.json.

Standard library only (runs with any python3 >= 3.8). Called by generate.sh:

    python3 probe_facts.py DIR [--out FILE]

DIR is the testdata directory (containing videos/ and bad/). Exits non-zero,
listing every failed expectation, if a file is not what it was meant to be.

Terminology used in the facts (same as /work/shared/testdata/videos/README.md):
  * packet index   - 0-based index of a video packet in demux (file/dts) order;
  * frame number   - 0-based rank of a frame in presentation (pts) order, which is
                     what a CVAT manifest calls "number";
  * keyframe       - a packet with the K flag (ffprobe packet flags).
"""
import json
import os
import re
import subprocess
import sys


def run(cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr))
    return p


def ffprobe_json(args, path):
    p = run(["ffprobe", "-v", "error", "-of", "json"] + args + [path])
    return json.loads(p.stdout)


def nal_kinds(path, codec):
    """Per-packet picture kind from the bitstream (trace_headers bsf), demux order.

    H.264: 'IDR', 'I' (non-IDR I slice), 'P', 'B'.
    HEVC : NAL type name of the first VCL NAL (IDR_W_RADL, IDR_N_LP, CRA, TRAIL, RASL, RADL, ...).
    """
    p = run(["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
             "-i", path, "-map", "0:v:0", "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"])
    kinds = []
    cur = None  # list of (nal_type, slice_type) for the current packet
    for line in p.stderr.splitlines():
        if "[trace_headers" not in line:
            continue
        if "Packet:" in line:
            if cur is not None:
                kinds.append(cur)
            cur = []
            continue
        if cur is None:
            continue  # extradata (SPS/PPS/VPS) before the first packet
        m = re.search(r"\bnal_unit_type\s+\S+ = (\d+)", line)
        if m:
            cur.append([int(m.group(1)), None])
            continue
        m = re.search(r"\bslice_type\s+\S+ = (\d+)", line)
        if m and cur:
            cur[-1][1] = int(m.group(1))
    if cur is not None:
        kinds.append(cur)

    out = []
    for nals in kinds:
        if codec == "h264":
            vcl = [n for n in nals if n[0] in (1, 5)]
            if not vcl:
                out.append("?")
                continue
            nt, st = vcl[0]
            if nt == 5:
                out.append("IDR")
            else:
                out.append({0: "P", 1: "B", 2: "I", 3: "SP", 4: "SI"}.get(st % 5, "?"))
        else:  # hevc
            names = {0: "TRAIL_N", 1: "TRAIL_R", 2: "TSA_N", 3: "TSA_R", 4: "STSA_N", 5: "STSA_R",
                     6: "RADL_N", 7: "RADL_R", 8: "RASL_N", 9: "RASL_R", 16: "BLA_W_LP",
                     17: "BLA_W_RADL", 18: "BLA_N_LP", 19: "IDR_W_RADL", 20: "IDR_N_LP", 21: "CRA"}
            vcl = [n for n in nals if n[0] < 32]
            out.append(names.get(vcl[0][0], str(vcl[0][0])) if vcl else "?")
    return out


def probe_video(path):
    info = ffprobe_json(["-show_format", "-show_streams"], path)
    vstreams = [s for s in info["streams"] if s.get("codec_type") == "video"]
    st = vstreams[0]
    pk = ffprobe_json(["-select_streams", "v:0", "-show_packets",
                       "-show_entries", "packet=pts,dts,flags,size"], path)["packets"]
    fr = ffprobe_json(["-select_streams", "v:0", "-show_frames",
                       "-show_entries", "frame=pts,pkt_dts,key_frame,pict_type"], path)["frames"]

    def num(x):
        return None if x in (None, "N/A") else int(x)

    pkt_pts = [num(p.get("pts")) for p in pk]
    pkt_dts = [num(p.get("dts")) for p in pk]
    key_idx = [i for i, p in enumerate(pk) if "K" in p.get("flags", "")]
    # presentation rank of every packet (by pts, ties by demux order)
    order = sorted(range(len(pk)), key=lambda i: (pkt_pts[i] if pkt_pts[i] is not None else -1, i))
    rank = {i: r for r, i in enumerate(order)}
    frame_pts = [num(f.get("pts")) for f in fr]
    pict = "".join(f.get("pict_type", "?") for f in fr)
    rot = None
    for sd in st.get("side_data_list", []) or []:
        if sd.get("side_data_type") == "Display Matrix":
            rot = sd.get("rotation")
    sorted_pts = sorted(p for p in pkt_pts if p is not None)
    deltas = sorted({b - a for a, b in zip(sorted_pts, sorted_pts[1:])})

    facts = {
        "format": info["format"]["format_name"],
        "size_bytes": os.path.getsize(path),
        "codec": st["codec_name"],
        "profile": st.get("profile"),
        "codec_tag": st.get("codec_tag_string"),
        "width": st["width"],
        "height": st["height"],
        "pix_fmt": st.get("pix_fmt"),
        "color_range": st.get("color_range", "unknown"),
        "color_space": st.get("color_space", "unknown"),
        "color_primaries": st.get("color_primaries", "unknown"),
        "color_transfer": st.get("color_transfer", "unknown"),
        "rotation": rot,
        "time_base": st.get("time_base"),
        "r_frame_rate": st.get("r_frame_rate"),
        "avg_frame_rate": st.get("avg_frame_rate"),
        "has_b_frames": st.get("has_b_frames"),
        "video_stream_index": st["index"],
        "stream_count": len(info["streams"]),
        "packets": len(pk),
        "frames_decoded": len(fr),
        "keyframe_packet_indices": key_idx,
        "keyframe_pts": [pkt_pts[i] for i in key_idx],
        "keyframe_frame_numbers": [rank[i] for i in key_idx],
        "decoded_keyframe_numbers": [i for i, f in enumerate(fr) if f.get("key_frame") == 1],
        "first_pts": sorted_pts[0] if sorted_pts else None,
        "first_dts": pkt_dts[0] if pkt_dts else None,
        "pts_deltas": deltas,
        "pict_types": pict,
        "b_frames": pict.count("B"),
        "frames_in_pts_order": frame_pts == sorted(frame_pts),
    }
    if facts["codec"] in ("h264", "hevc"):
        kinds = nal_kinds(path, facts["codec"])
        facts["bitstream_kinds_demux_order"] = kinds
        if facts["codec"] == "h264":
            facts["idr_packet_indices"] = [i for i, k in enumerate(kinds) if k == "IDR"]
            facts["non_idr_i_packet_indices"] = [i for i, k in enumerate(kinds) if k == "I"]
        else:
            facts["irap_packet_indices"] = [i for i, k in enumerate(kinds)
                                            if k.startswith(("IDR", "CRA", "BLA"))]
            facts["irap_kinds"] = [kinds[i] for i in facts["irap_packet_indices"]]
    return facts


def probe_bad(path):
    """What ffprobe makes of a damaged / non-video input."""
    p = run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", path], check=False)
    facts = {"size_bytes": os.path.getsize(path), "ffprobe_exit": p.returncode,
             "ffprobe_error": (p.stderr.strip().splitlines() or [""])[-1].replace(path, os.path.basename(path))[:200]}
    if p.returncode == 0:
        info = json.loads(p.stdout)
        facts["format"] = info.get("format", {}).get("format_name")
        facts["streams"] = [s.get("codec_type") + ":" + s.get("codec_name", "?") for s in info.get("streams", [])]
        if any(s.get("codec_type") == "video" for s in info.get("streams", [])):
            d = run(["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-i", path,
                     "-map", "0:v:0", "-f", "null", "-"], check=False)
            pk = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
                      "-of", "csv", path], check=False)
            fr = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts",
                      "-of", "csv", path], check=False)
            facts["packets_demuxed"] = len([l for l in pk.stdout.splitlines() if l.startswith("packet")])
            facts["frames_decoded"] = len([l for l in fr.stdout.splitlines() if l.startswith("frame")])
            facts["decode_errors"] = len([l for l in d.stderr.splitlines() if l.strip()])
            facts["decode_exit"] = d.returncode
    return facts


# ---------------------------------------------------------------------------
# What generate.sh intended. Every key is checked against the measured facts.
# ---------------------------------------------------------------------------
EXPECT = {
    "h264_bframes.mp4": dict(codec="h264", profile="High", width=320, height=240, pix_fmt="yuv420p",
                             frames_decoded=90, packets=90, keyframe_packet_indices=[0, 24, 48, 72],
                             min_b_frames=10, rotation=None),
    "hevc.mp4": dict(codec="hevc", profile="Main", codec_tag="hvc1", width=320, height=240,
                     pix_fmt="yuv420p", frames_decoded=90, packets=90, keyframe_frame_numbers=[0, 30, 60],
                     irap_kinds=["IDR_N_LP", "CRA", "CRA"], min_b_frames=10),
    "hevc_closed_gop.mp4": dict(codec="hevc", profile="Main", codec_tag="hvc1", width=320, height=240,
                                pix_fmt="yuv420p", frames_decoded=90, packets=90,
                                keyframe_packet_indices=[0, 30, 60], keyframe_frame_numbers=[0, 30, 60],
                                irap_kinds=["IDR_N_LP", "IDR_N_LP", "IDR_N_LP"], min_b_frames=10),
    "vp9.webm": dict(codec="vp9", width=320, height=240, pix_fmt="yuv420p", frames_decoded=90,
                     packets=90, keyframe_packet_indices=[0, 30, 60], b_frames=0),
    "mpeg4.avi": dict(codec="mpeg4", width=320, height=240, pix_fmt="yuv420p", frames_decoded=90,
                      packets=90, keyframe_packet_indices=[0, 25, 50, 75], b_frames=0, has_b_frames=0),
    "vfr.mkv": dict(codec="h264", width=320, height=240, frames_decoded=80, packets=80,
                    keyframe_packet_indices=[0, 20, 40, 60], pts_deltas=[20, 40, 100], min_b_frames=5),
    "rotated90.mp4": dict(codec="h264", width=320, height=180, frames_decoded=50, packets=50,
                          keyframe_packet_indices=[0, 25], rotation=90),
    "single_keyframe.mp4": dict(codec="h264", frames_decoded=150, packets=150,
                                keyframe_packet_indices=[0], min_b_frames=10),
    "bt709.mp4": dict(codec="h264", width=426, height=240, pix_fmt="yuv420p", frames_decoded=50,
                      packets=50, keyframe_packet_indices=[0, 25], color_range="tv",
                      color_space="bt709", color_primaries="bt709", color_transfer="bt709"),
    "fullrange.mp4": dict(codec="h264", pix_fmt="yuvj420p", color_range="pc", frames_decoded=50,
                          packets=50, keyframe_packet_indices=[0, 25]),
    "open_gop.mp4": dict(codec="h264", frames_decoded=90, packets=90, min_b_frames=10,
                         idr_packet_indices=[0], min_non_idr_i=2),
    "gop_long.mp4": dict(codec="h264", frames_decoded=260, packets=260,
                         keyframe_packet_indices=[0, 120, 240]),
}


def check(name, facts, exp):
    errs = []
    for k, v in exp.items():
        if k == "min_b_frames":
            if facts["b_frames"] < v:
                errs.append("%s: expected >= %d B-frames, got %d" % (name, v, facts["b_frames"]))
        elif k == "min_non_idr_i":
            n = len(facts.get("non_idr_i_packet_indices", []))
            if n < v:
                errs.append("%s: expected >= %d non-IDR I frames, got %d" % (name, v, n))
        elif facts.get(k) != v:
            errs.append("%s: %s expected %r, got %r" % (name, k, v, facts.get(k)))
    # generic sanity: every file CVAT should accept decodes in pts order, first packet is key
    if facts["keyframe_packet_indices"][:1] != [0]:
        errs.append("%s: first packet is not a keyframe" % name)
    if not facts["frames_in_pts_order"]:
        errs.append("%s: decoder output is not in pts order" % name)
    if facts["frames_decoded"] != facts["packets"]:
        errs.append("%s: %d packets but %d decoded frames" % (name, facts["packets"], facts["frames_decoded"]))
    return errs


BAD_EXPECT = {
    "truncated.mp4": lambda f: f["ffprobe_exit"] == 0 and f["frames_decoded"] < 90,
    "truncated_no_moov.mp4": lambda f: f["ffprobe_exit"] != 0,
    "not_media.mp4": lambda f: f["ffprobe_exit"] != 0,
    "empty.mp4": lambda f: f["ffprobe_exit"] != 0 and f["size_bytes"] == 0,
    "audio_only.m4a": lambda f: f["ffprobe_exit"] == 0 and f["streams"] == ["audio:aac"],
    "garbage_middle.mp4": lambda f: f["ffprobe_exit"] == 0 and f["packets_demuxed"] == 90
    and f["decode_errors"] > 0,
}


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    root = args[0]
    out = os.path.join(root, "video_facts.json")
    if "--out" in args:
        out = args[args.index("--out") + 1]
    errs = []
    result = {"_note": "Generated by testdata/generate.sh (probe_facts.py) with FFmpeg's ffprobe. "
                       "packet indices are 0-based in demux order; frame numbers are 0-based pts ranks.",
              "videos": {}, "bad": {}}
    for name, exp in EXPECT.items():
        path = os.path.join(root, "videos", name)
        if not os.path.exists(path):
            errs.append("%s: missing" % name)
            continue
        facts = probe_video(path)
        errs += check(name, facts, exp)
        result["videos"][name] = facts
    for name, ok in BAD_EXPECT.items():
        path = os.path.join(root, "bad", name)
        if not os.path.exists(path):
            errs.append("bad/%s: missing" % name)
            continue
        facts = probe_bad(path)
        if not ok(facts):
            errs.append("bad/%s: unexpected probe result %r" % (name, facts))
        result["bad"][name] = facts

    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
        fh.write("\n")

    for name, f in result["videos"].items():
        extra = ""
        if "non_idr_i_packet_indices" in f:
            extra = " idr=%s non-idr-I=%s" % (f["idr_packet_indices"], f["non_idr_i_packet_indices"])
        print("%-20s %-5s %-9s %4dx%-4d %-8s frames=%-3d keys(pkt)=%s keys(frame#)=%s B=%d rot=%s "
              "range=%s space=%s%s" % (
                  name, f["codec"], f.get("profile") or "-", f["width"], f["height"], f["pix_fmt"],
                  f["frames_decoded"], f["keyframe_packet_indices"], f["keyframe_frame_numbers"],
                  f["b_frames"], f["rotation"], f["color_range"], f["color_space"], extra))
    for name, f in result["bad"].items():
        print("bad/%-16s %s" % (name, json.dumps(f, sort_keys=True)))
    if errs:
        print("\nVERIFICATION FAILED:", file=sys.stderr)
        for e in errs:
            print("  " + e, file=sys.stderr)
        return 1
    print("all video expectations verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
