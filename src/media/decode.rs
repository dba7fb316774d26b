//! Decoding: one key-frame packet on its own, or forward from a seek point.

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

/// Seeks to a key frame and decodes forward: the way frames are read for chunks and for
/// checking that a key frame is reachable.
pub struct FrameReader {
    source: VideoSource,
    decoder: ff::decoder::Video,
    eof_sent: bool,
    decode_errors: usize,
    packets_sent: usize,
}

// SAFETY: the demuxer and codec contexts are owned exclusively by this value.
unsafe impl Send for FrameReader {}

impl FrameReader {
    /// Opens `path` for reading frames with a threaded decoder.
    pub fn open(path: &Path) -> Result<Self> {
        let source = VideoSource::open(path)?;
        let decoder = open_decoder(path, source.parameters(), Threads::Auto)?;
        Ok(FrameReader {
            source,
            decoder,
            eof_sent: false,
            decode_errors: 0,
            packets_sent: 0,
        })
    }

    /// The underlying source.
    pub fn source(&self) -> &VideoSource {
        &self.source
    }

    /// Seeks to the last key frame at or before `pts` and resets the decoder.
    pub fn seek(&mut self, pts: i64) -> Result<()> {
        self.source.seek(pts)?;
        self.decoder.flush();
        self.eof_sent = false;
        Ok(())
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
            match self.source.read_packet()? {
                Some(p) => self.send(&p),
                None => {
                    // Ask the decoder to drain what it still holds.
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                }
            }
        }
    }

    /// Packets the decoder rejected or frames it failed on since opening.
    pub fn decode_errors(&self) -> usize {
        self.decode_errors
    }
}

fn is_eagain(e: &ff::Error) -> bool {
    *e == ff::Error::Other {
        errno: ff::util::error::EAGAIN,
    }
}
