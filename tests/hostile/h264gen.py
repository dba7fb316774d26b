"""A 1080p H.264 clip written with the Python standard library (no ffmpeg needed): Baseline
profile, CAVLC, 1920x1080 (coded 1920x1088, cropped), in an MP4 container (faststart).

Every IDR frame is all I_PCM macroblocks (raw samples: noise, so it is a real 3 MB picture to
decode and re-encode); the P frames in between skip every macroblock except one row of I_PCM
macroblocks that moves down the picture, so each frame differs from the last. A decoder holds
the same frame buffers as for camera footage of that size (the memory is what the load probe
measures); the encoder has real work on every frame.
"""

import random
import re
import struct

MB_W, MB_H = 120, 68  # 1920 x 1088 coded
LOG2_MAX_FRAME_NUM = 8


class Bits:
    def __init__(self):
        self.acc = 0
        self.n = 0
        self.out = bytearray()

    def u(self, v, n):
        self.acc = (self.acc << n) | (v & ((1 << n) - 1))
        self.n += n
        while self.n >= 8:
            self.n -= 8
            self.out.append((self.acc >> self.n) & 0xFF)
        self.acc &= (1 << self.n) - 1

    def ue(self, v):
        v += 1
        length = v.bit_length()
        self.u(0, length - 1)
        self.u(v, length)

    def se(self, v):
        self.ue(2 * v - 1 if v > 0 else -2 * v)

    def align(self):
        if self.n:
            self.u(0, 8 - self.n)

    def raw(self, data):
        assert self.n == 0
        self.out += data

    def trailing(self):
        self.u(1, 1)
        self.align()
        return bytes(self.out)


def nal(header, rbsp):
    """A NAL unit (no start code) with emulation prevention: 00 00 0x (x <= 3) -> 00 00 03 0x."""
    return bytes([header]) + re.sub(b"\x00\x00(?=[\x00-\x03])", b"\x00\x00\x03", rbsp)


def sps():
    b = Bits()
    b.u(66, 8)  # Baseline
    b.u(0xC0, 8)  # constraint_set0/1
    b.u(40, 8)  # level 4.0
    b.ue(0)
    b.ue(LOG2_MAX_FRAME_NUM - 4)
    b.ue(2)  # pic_order_cnt_type 2: output order = decode order
    b.ue(1)  # max_num_ref_frames
    b.u(0, 1)
    b.ue(MB_W - 1)
    b.ue(MB_H - 1)
    b.u(1, 1)  # frame_mbs_only
    b.u(1, 1)  # direct_8x8_inference
    b.u(1, 1)  # cropping: 8 lines at the bottom
    b.ue(0)
    b.ue(0)
    b.ue(0)
    b.ue(4)
    b.u(0, 1)  # no VUI
    return nal(0x67, b.trailing())


def pps():
    b = Bits()
    b.ue(0)
    b.ue(0)
    b.u(0, 1)  # CAVLC
    b.u(0, 1)
    b.ue(0)
    b.ue(0)
    b.ue(0)
    b.u(0, 1)
    b.u(0, 2)
    b.se(0)
    b.se(0)
    b.se(0)
    b.u(1, 1)  # deblocking control present
    b.u(0, 1)
    b.u(0, 1)
    return nal(0x68, b.trailing())


def pcm_mb(b, samples):
    b.align()
    b.raw(samples)


def idr(idr_id, noise):
    b = Bits()
    b.ue(0)
    b.ue(7)  # I
    b.ue(0)
    b.u(0, LOG2_MAX_FRAME_NUM)
    b.ue(idr_id)
    b.u(0, 1)
    b.u(0, 1)
    b.se(0)
    b.ue(1)  # no deblocking
    for i in range(MB_W * MB_H):
        b.ue(25)  # I_PCM
        pcm_mb(b, noise(i))
    return nal(0x65, b.trailing())


def p_frame(frame_num, row, noise):
    b = Bits()
    b.ue(0)
    b.ue(5)  # P
    b.ue(0)
    b.u(frame_num, LOG2_MAX_FRAME_NUM)
    b.u(0, 1)  # num_ref_idx_active_override
    b.u(0, 1)  # ref_pic_list_modification
    b.u(0, 1)  # adaptive_ref_pic_marking
    b.se(0)
    b.ue(1)
    first = row * MB_W
    for i in range(MB_W):
        b.ue(first if i == 0 else 0)  # mb_skip_run
        b.ue(30)  # I_PCM in a P slice
        pcm_mb(b, noise(first + i))
    rest = MB_W * MB_H - first - MB_W
    if rest:
        b.ue(rest)
    return nal(0x41, b.trailing())


def box(kind, *parts):
    data = b"".join(parts)
    return struct.pack(">I", 8 + len(data)) + kind + data


def full(kind, version, flags, *parts):
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def mp4(samples, keys, sps_nal, pps_nal, width, height, fps):
    """ISO BMFF with one avc1 track, moov before mdat; `samples` are length-prefixed NALs."""
    timescale, delta = fps * 512, 512
    n = len(samples)
    duration_ms = n * 1000 // fps

    def moov(mdat_offset):
        avcc = box(
            b"avcC",
            bytes([1, 66, 0xC0, 40, 0xFF, 0xE1]),
            struct.pack(">H", len(sps_nal)),
            sps_nal,
            b"\x01",
            struct.pack(">H", len(pps_nal)),
            pps_nal,
        )
        avc1 = box(
            b"avc1",
            b"\0" * 6,
            struct.pack(">H", 1),
            b"\0" * 16,
            struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1),
            b"\0" * 32,
            struct.pack(">Hh", 0x18, -1),
            avcc,
        )
        stbl = box(
            b"stbl",
            full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
            full(b"stts", 0, 0, struct.pack(">III", 1, n, delta)),
            full(b"stss", 0, 0, struct.pack(">I", sum(keys)), b"".join(struct.pack(">I", i + 1) for i, k in enumerate(keys) if k)),
            full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, n, 1)),
            full(b"stsz", 0, 0, struct.pack(">II", 0, n), b"".join(struct.pack(">I", len(s)) for s in samples)),
            full(b"stco", 0, 0, struct.pack(">II", 1, mdat_offset)),
        )
        minf = box(
            b"minf",
            full(b"vmhd", 0, 1, b"\0" * 8),
            box(b"dinf", full(b"dref", 0, 0, struct.pack(">I", 1), full(b"url ", 0, 1))),
            stbl,
        )
        mdia = box(
            b"mdia",
            full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, n * delta, 0x55C4, 0)),
            full(b"hdlr", 0, 0, b"\0" * 4, b"vide", b"\0" * 12, b"VideoHandler\0"),
            minf,
        )
        tkhd = full(
            b"tkhd", 0, 3,
            struct.pack(">IIIII", 0, 0, 1, 0, duration_ms), b"\0" * 8,
            struct.pack(">hhhH", 0, 0, 0, 0), MATRIX, struct.pack(">II", width << 16, height << 16),
        )
        mvhd = full(
            b"mvhd", 0, 0,
            struct.pack(">IIIIIH", 0, 0, 1000, duration_ms, 0x10000, 0x100), b"\0" * 10, MATRIX,
            b"\0" * 24, struct.pack(">I", 2),
        )
        return box(b"moov", mvhd, box(b"trak", tkhd, mdia))

    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    size = len(moov(0))
    head = ftyp + moov(len(ftyp) + size + 8)
    data = b"".join(samples)
    return head + struct.pack(">I", 8 + len(data)) + b"mdat" + data


def clip(frames=300, gop=250, fps=30, seed=1):
    """The MP4 bytes of a 1920x1080 clip of `frames` frames, an IDR every `gop` frames."""
    rng = random.Random(seed)
    # A pool of macroblocks of noise (samples 16..235: never 0), picked pseudo-randomly.
    pool = [bytes(rng.randrange(16, 236) for _ in range(384)) for _ in range(97)]
    out, keys = [], []
    for n in range(frames):
        salt = n * 7919
        noise = lambda i: pool[(i * 31 + salt) % len(pool)]  # noqa: E731
        if n % gop == 0:
            unit = idr(n // gop, noise)
        else:
            k = n % gop
            unit = p_frame(k % (1 << LOG2_MAX_FRAME_NUM), (k * 5) % MB_H, noise)
        out.append(struct.pack(">I", len(unit)) + unit)
        keys.append(n % gop == 0)
    return mp4(out, keys, sps(), pps(), 1920, 1080, fps)


if __name__ == "__main__":
    import sys

    data = clip()
    with open(sys.argv[1] if len(sys.argv) > 1 else "clip1080.mp4", "wb") as f:
        f.write(data)
    print(len(data))
