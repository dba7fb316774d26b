//! Decoding: one key-frame packet on its own, or forward from a seek point.

use std::collections::VecDeque;
use std::path::Path;

use ff::ffi;
use ffmpeg_next as ff;

use super::source::packet_info;
use super::{MediaError, PacketInfo, PictureType, Result, VideoSource};

/// A decoded video frame.
pub struct DecodedFrame {
    pub(crate) frame: ff::frame::Video,
}

// SAFETY: an AVFrame with its own buffers can move between threads; it is never aliased.
unsafe impl Send for DecodedFrame {}

impl DecodedFrame {
    /// The frame's pts (stream time base), as the decoder reports it.
    pub fn pts(&self) -> Option<i64> {
        self.frame.pts()
    }

    /// The decoder's best guess at the frame's timestamp (pts, or a dts-based guess).
    pub fn best_effort_timestamp(&self) -> Option<i64> {
        // SAFETY: reading a plain field of a valid frame.
        let ts = unsafe { (*self.frame.as_ptr()).best_effort_timestamp };
        (ts != ffi::AV_NOPTS_VALUE).then_some(ts)
    }

    /// The decoder flags this frame as a key frame.
    pub fn is_key(&self) -> bool {
        self.frame.is_key()
    }

    /// The picture type the decoder reports.
    pub fn picture_type(&self) -> PictureType {
        match self.frame.kind() {
            ff::picture::Type::I => PictureType::I,
            ff::picture::Type::P => PictureType::P,
            ff::picture::Type::B => PictureType::B,
            ff::picture::Type::None => PictureType::Unknown,
            _ => PictureType::Other,
        }
    }

    /// Coded width.
    pub fn width(&self) -> u32 {
        self.frame.width()
    }

    /// Coded height.
    pub fn height(&self) -> u32 {
        self.frame.height()
    }
}

/// How a decoder uses threads.
#[derive(Clone, Copy)]
enum Threads {
    /// One thread: for decoding single packets, parallelised by the caller instead.
    Single,
    /// PyAV's `AUTO`: frame + slice threading, FFmpeg picks the count.
    Auto,
}

fn open_decoder(
    path: &Path,
    params: ff::codec::Parameters,
    threads: Threads,
) -> Result<ff::decoder::Video> {
    let codec_name = params.id().name().to_owned();
    let mut ctx =
        ff::codec::context::Context::from_parameters(params).map_err(|e| MediaError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    // SAFETY: setting plain fields before avcodec_open2.
    unsafe {
        let c = &mut *ctx.as_mut_ptr();
        match threads {
            Threads::Single => {
                c.thread_count = 1;
                c.thread_type = 0;
            }
            Threads::Auto => {
                c.thread_count = 0;
                c.thread_type = ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE;
            }
        }
    }
    if ff::codec::decoder::find(ctx.id()).is_none() {
        return Err(MediaError::NoDecoder {
            path: path.to_owned(),
            codec: codec_name,
        });
    }
    ctx.decoder().video().map_err(|e| MediaError::Decode {
        path: path.to_owned(),
        reason: format!("cannot open the {codec_name} decoder: {e}"),
    })
}

/// Decodes single key-frame packets, each on its own: flush, send the packet, send EOF, drain.
/// Intra frames decode to the same pixels this way as in a full sequential decode.
pub struct KeyframeDecoder {
    decoder: ff::decoder::Video,
}

// SAFETY: the codec context is owned exclusively by this value.
unsafe impl Send for KeyframeDecoder {}

impl KeyframeDecoder {
    /// A single-threaded decoder for `source`'s video stream.
    pub fn new(source: &VideoSource) -> Result<Self> {
        Ok(KeyframeDecoder {
            decoder: open_decoder(source.path(), source.parameters(), Threads::Single)?,
        })
    }

    /// Decodes one packet on its own. Returns the first frame it produces, or `None` if the
    /// packet decodes to nothing (e.g. a placeholder packet or a broken key frame).
    pub fn decode(&mut self, info: &PacketInfo, data: &[u8]) -> Result<Option<DecodedFrame>> {
        let mut packet = ff::Packet::copy(data);
        packet.set_pts(info.pts);
        packet.set_dts(info.dts);
        if info.key {
            packet.set_flags(ff::packet::Flags::KEY);
        }
        self.decoder.flush();
        let mut result = None;
        // A decoder may reject a damaged packet; that key frame is simply not usable.
        if self.decoder.send_packet(&packet).is_ok() {
            let _ = self.decoder.send_eof();
            let mut frame = ff::frame::Video::empty();
            while self.decoder.receive_frame(&mut frame).is_ok() {
                if result.is_none() {
                    result = Some(DecodedFrame {
                        frame: std::mem::replace(&mut frame, ff::frame::Video::empty()),
                    });
                }
            }
        }
        self.decoder.flush();
        Ok(result)
    }
}

/// Frames a threaded decoder keeps besides one per thread: the references (H.264 allows 16;
/// real streams use 1 to 4) and the reorder delay.
const HELD_FRAMES: u64 = 6;

/// Bytes an open, decoding [`FrameReader`] holds with frames of `frame_bytes` and `threads`
/// decoding threads: its frame buffers (one in flight per thread, plus [`HELD_FRAMES`]) and a
/// fixed part for the codec and demuxer contexts. Calibrated with VmRSS (`examples/memory_floor`,
/// 2 cores, 3 threads): 1080p H.264 holds 29 MiB (estimate 31), 720p 14 MiB (estimate 16).
pub fn decoder_memory(frame_bytes: u64, threads: u64) -> u64 {
    frame_bytes * (HELD_FRAMES + threads) + (4 << 20)
}

/// [`decoder_memory`] of a reader not opened yet: 8-bit 4:2:0 frames of `width` x `height`,
/// FFmpeg's automatic thread count (cores + 1, at most 16).
pub fn decoder_memory_for(width: u32, height: u32) -> u64 {
    let frame = (width as u64).next_multiple_of(32) * (height as u64).next_multiple_of(32) * 3 / 2;
    let threads = (num_cpus::get() as u64 + 1).min(16);
    decoder_memory(frame, threads)
}

/// Seeks to a key frame and decodes forward: the way frames are read for chunks and for
/// checking that a key frame is reachable.
pub struct FrameReader {
    source: VideoSource,
    decoder: ff::decoder::Video,
    eof_sent: bool,
    decode_errors: usize,
    packets_sent: usize,
    preroll: Option<Preroll>,
    /// The codec's "non-reference" frames are never used by other frames (see `open`).
    nonref_skippable: bool,
}

/// Decoding from a key frame up to a later first wanted frame ("pre-roll"), skipping the
/// non-reference frames nobody will see ([`FrameReader::skip_nonref_before`]).
///
/// A frame's number after a seek is the key frame's number plus the rank of its pts among the
/// packets at or after the key frame's pts (spec: frames are numbered by pts rank). Packets are
/// read ahead of the decoder until that rank is final: dts never decrease and pts >= dts, so
/// once a packet with dts > p has been read, no packet still to come has a pts below p. Every
/// packet is checked for that (pts and dts present, dts non-decreasing, pts >= dts, pts unique);
/// on the first that fails, ranks are no longer exact: no more skipping, and
/// [`FrameReader::rank_since_seek`] answers `None`.
struct Preroll {
    key_pts: i64,
    /// Ranks below this are not wanted: their non-reference frames need not be decoded.
    skip_below: u64,
    /// pts of the frame packets (not demuxer-discarded) read since the seek at or after
    /// `key_pts`, ascending.
    pts: Vec<i64>,
    last_dts: Option<i64>,
    /// Packets read but not yet sent to the decoder.
    ahead: VecDeque<ff::Packet>,
    exact: bool,
    skipped: bool,
    eof: bool,
    /// No more reading ahead: send what was read, then drop the pre-roll.
    ending: bool,
}

impl Preroll {
    fn note(&mut self, packet: ff::Packet) {
        match (packet.pts(), packet.dts()) {
            (Some(pts), Some(dts)) if pts >= dts && self.last_dts.is_none_or(|d| dts >= d) => {
                self.last_dts = Some(dts);
                // Demuxer-discarded packets (MP4 edit lists) are not frames of the video.
                if !packet_info(&packet).discard && pts >= self.key_pts {
                    match self.pts.binary_search(&pts) {
                        Ok(_) => self.exact = false,
                        Err(i) => self.pts.insert(i, pts),
                    }
                }
            }
            _ => self.exact = false,
        }
        self.ahead.push_back(packet);
    }

    /// No packet still to come can have a pts below `pts`.
    fn settled(&self, pts: i64) -> bool {
        self.exact && (self.eof || self.last_dts.is_some_and(|d| d > pts))
    }

    fn rank(&self, pts: i64) -> Option<u64> {
        (pts >= self.key_pts && self.settled(pts))
            .then(|| self.pts.partition_point(|&p| p < pts) as u64)
    }

    /// Whether `packet` may be decoded without its frame if that frame is not a reference.
    fn may_skip(&self, packet: &ff::Packet) -> bool {
        match packet.pts() {
            Some(pts) if !self.ending && self.settled(pts) => {
                // Frames before the key frame (open-GOP leading frames) are never wanted.
                pts < self.key_pts || self.rank(pts).is_some_and(|r| r < self.skip_below)
            }
            _ => false,
        }
    }
}

// SAFETY: the demuxer and codec contexts are owned exclusively by this value.
unsafe impl Send for FrameReader {}

impl FrameReader {
    /// Opens `path` for reading frames with a threaded decoder.
    pub fn open(path: &Path) -> Result<Self> {
        let source = VideoSource::open(path)?;
        let params = source.parameters();
        let nonref_skippable = nonref_skippable(&params);
        let decoder = open_decoder(path, params, Threads::Auto)?;
        Ok(FrameReader {
            source,
            decoder,
            eof_sent: false,
            decode_errors: 0,
            packets_sent: 0,
            preroll: None,
            nonref_skippable,
        })
    }

    /// The underlying source.
    pub fn source(&self) -> &VideoSource {
        &self.source
    }

    /// Memory this reader holds once it decodes (see [`decoder_memory`]), from its decoder's
    /// frame size, pixel format and thread count.
    pub fn memory_estimate(&self) -> u64 {
        // SAFETY: reading plain fields of the opened codec context.
        let (w, h, fmt, threads) = unsafe {
            let c = &*self.decoder.as_ptr();
            (c.width, c.height, c.pix_fmt, c.thread_count)
        };
        // SAFETY: a pure size computation; negative (unknown format) falls back to 4:2:0.
        let frame = unsafe { ffi::av_image_get_buffer_size(fmt, w.max(1), h.max(1), 32) };
        let frame = u64::try_from(frame).unwrap_or(w.max(1) as u64 * h.max(1) as u64 * 3 / 2);
        decoder_memory(frame, threads.max(1) as u64)
    }

    /// Seeks to the last key frame at or before `pts` and resets the decoder.
    pub fn seek(&mut self, pts: i64) -> Result<()> {
        self.source.seek(pts)?;
        self.decoder.flush();
        self.eof_sent = false;
        self.preroll = None;
        self.decoder.skip_frame(ff::Discard::Default);
        Ok(())
    }

    /// Right after a [`seek`](Self::seek) to the key frame at `key_pts`: the frames before the
    /// one `frames` frames after the key frame are not wanted, so their non-reference frames
    /// (most B-frames) are not decoded at all (`AVDISCARD_NONREF`, packet by packet: the first
    /// wanted frame and everything after it decode normally). Skipped frames produce no output,
    /// so frames must then be numbered by [`rank_since_seek`](Self::rank_since_seek) instead of
    /// by counting, until [`end_preroll`](Self::end_preroll). Packets whose timestamps do not
    /// prove the ranks stop the skipping (see `rank_since_seek`). Returns false (and does
    /// nothing) for codecs where a skipped frame could still be a reference (see `open`).
    pub fn skip_nonref_before(&mut self, key_pts: i64, frames: u64) -> bool {
        if !self.nonref_skippable {
            return false;
        }
        self.preroll = Some(Preroll {
            key_pts,
            skip_below: frames,
            pts: Vec::new(),
            last_dts: None,
            ahead: VecDeque::new(),
            exact: true,
            skipped: false,
            eof: false,
            ending: false,
        });
        true
    }

    /// During a pre-roll: the rank of `pts` among the pts of the frames at or after the key
    /// frame, i.e. the frame's number counted from the key frame. `None` when it is not provably
    /// exact (no pre-roll, `pts` before the key frame, or packet timestamps that break the
    /// rules: missing pts or dts, dts going back, pts < dts, repeated pts).
    pub fn rank_since_seek(&self, pts: i64) -> Option<u64> {
        self.preroll.as_ref()?.rank(pts)
    }

    /// A pre-roll is under way (and not ending).
    pub fn in_preroll(&self) -> bool {
        self.preroll.as_ref().is_some_and(|p| !p.ending)
    }

    /// During a pre-roll: whether any packet was decoded with its non-reference frame skipped
    /// (so counting output frames no longer numbers them).
    pub fn skipped_nonref(&self) -> bool {
        self.preroll.as_ref().is_some_and(|p| p.skipped)
    }

    /// Ends a pre-roll: no more skipping; packets read ahead are decoded first.
    pub fn end_preroll(&mut self) {
        if let Some(p) = &mut self.preroll {
            p.ending = true;
            if p.ahead.is_empty() {
                self.preroll = None;
            }
        }
        self.decoder.skip_frame(ff::Discard::Default);
    }

    /// Reads packets only (no decoding) until the next packet of the video stream, e.g. to see
    /// where a seek landed. The packet is fed to the decoder too, so decoding can go on from it.
    pub fn next_packet(&mut self) -> Result<Option<PacketInfo>> {
        match self.source.read_packet()? {
            Some(p) => {
                let info = packet_info(&p);
                self.send(&p);
                Ok(Some(info))
            }
            None => Ok(None),
        }
    }

    fn send(&mut self, p: &ff::Packet) {
        self.packets_sent += 1;
        // `next_frame` drains the decoder before it sends the next packet, so the decoder never
        // refuses one for a full queue; a refused packet is a damaged one.
        if self.decoder.send_packet(p).is_err() {
            self.decode_errors += 1;
        }
    }

    /// Decodes the next frame in output order, or `None` at the end of the stream.
    pub fn next_frame(&mut self) -> Result<Option<DecodedFrame>> {
        let mut frame = ff::frame::Video::empty();
        loop {
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => return Ok(Some(DecodedFrame { frame })),
                Err(ff::Error::Eof) => return Ok(None),
                Err(e) if is_eagain(&e) => {}
                // A broken frame: count it and keep going, as players do.
                Err(_) => self.decode_errors += 1,
            }
            if self.eof_sent {
                return Ok(None);
            }
            match self.next_packet_to_send()? {
                Some(p) => self.send(&p),
                None => {
                    // Ask the decoder to drain what it still holds.
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                }
            }
        }
    }

    /// The next packet for the decoder: straight from the demuxer, or during a pre-roll from
    /// the packets read ahead (with the decoder's frame skipping set for it).
    fn next_packet_to_send(&mut self) -> Result<Option<ff::Packet>> {
        let Some(pre) = &mut self.preroll else {
            return self.source.read_packet();
        };
        // Read ahead until the next packet's rank is settled (a few packets: the reordering
        // depth), or while nothing is left to send.
        loop {
            let settled = match pre.ahead.front() {
                None => false,
                Some(p) => pre.ending || !pre.exact || p.pts().is_none_or(|t| pre.settled(t)),
            };
            if settled || pre.eof {
                break;
            }
            match self.source.read_packet()? {
                Some(p) => pre.note(p),
                None => pre.eof = true,
            }
        }
        let Some(packet) = pre.ahead.pop_front() else {
            // The end of the video; the pre-roll stays (frames are still to be numbered).
            self.decoder.skip_frame(ff::Discard::Default);
            return Ok(None);
        };
        let skip = pre.may_skip(&packet);
        pre.skipped |= skip;
        if pre.ending && pre.ahead.is_empty() {
            self.preroll = None;
        }
        // Frame threads copy this setting when the packet is submitted, so it applies per packet.
        self.decoder.skip_frame(if skip {
            ff::Discard::NonReference
        } else {
            ff::Discard::Default
        });
        Ok(Some(packet))
    }

    /// Packets the decoder rejected or frames it failed on since opening.
    pub fn decode_errors(&self) -> usize {
        self.decode_errors
    }
}

/// Whether FFmpeg's `AVDISCARD_NONREF` only drops frames no other frame uses: H.264
/// (`nal_ref_idc` 0), and HEVC with a single temporal sub-layer (its "sub-layer non-reference"
/// pictures may be references for higher sub-layers; the MP4 `hvcC` record tells the count).
/// Other codecs decode every frame.
fn nonref_skippable(params: &ff::codec::Parameters) -> bool {
    match params.id() {
        ff::codec::Id::H264 => true,
        ff::codec::Id::HEVC => {
            // SAFETY: reading the extradata buffer of valid codec parameters.
            let extradata = unsafe {
                let p = &*params.as_ptr();
                if p.extradata.is_null() || p.extradata_size < 23 {
                    return false;
                }
                std::slice::from_raw_parts(p.extradata, p.extradata_size as usize)
            };
            // hvcC: configurationVersion 1; byte 21 = constantFrameRate(2) numTemporalLayers(3)
            // temporalIdNested(1) lengthSizeMinusOne(2).
            extradata[0] == 1 && (extradata[21] >> 3) & 7 == 1
        }
        _ => false,
    }
}

fn is_eagain(e: &ff::Error) -> bool {
    *e == ff::Error::Other {
        errno: ff::util::error::EAGAIN,
    }
}
