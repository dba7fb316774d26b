//! H.264 MP4 video chunks (spec §12.3/§12.4/§17): Constrained Baseline (what the UI's
//! Broadway.js decoder can play), 25 fps, yuv420p, fixed QP from the chunk quality.
//!
//! CVAT encodes with OpenH264 (`qmin = qmax = QP`). Debian's FFmpeg has no OpenH264, so this
//! uses libx264 with `profile=baseline` (x264 flags baseline streams as constrained:
//! constraint_set0/1), `coder=0` (CAVLC), no B-frames, `preset=ultrafast` (which also turns
//! deblocking off, like CVAT's x264 fallback's `flags=-loop`), no tune, and **constant QP**
//! (`qp` option, with `i_qfactor = 1` so I-frames get the same QP as P-frames). Constant QP is
//! the x264 counterpart of OpenH264's `qmin = qmax`; CRF (CVAT's x264 fallback) would let
//! the QP drift per frame and make "quality" mean something else.
//!
//! IDR placement is x264's: the first frame, then every 250 frames (ultrafast has no scene-cut
//! detection), where CVAT's OpenH264 also starts an IDR at every source I-frame. The UI decodes
//! chunks sequentially, so this changes chunk size only (§17).
//!
//! Deviation from CVAT: QP 0 is lossless, which x264 only does in High 4:4:4 Predictive, not
//! in Baseline, so the QP is clamped to at least 1: CVAT's on-the-fly originals (quality 100,
//! QP 0) come out at QP 1 here (near-lossless, not bit-exact).

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use ff::ffi;
use ff::format::context::StreamIo;
use ff::software::scaling;
use ffmpeg_next as ff;

use super::{CodecError, Result, RgbImage};
use crate::media::DecodedFrame;

/// Largest picture (width × height) a video chunk may have: OpenH264's
/// `MAX_MBS_PER_FRAME << 8` = 36864 macroblocks, the limit CVAT enforces.
pub const MAX_VIDEO_PIXELS: u64 = 36864 << 8;

/// Chunk frame rate (always 25 fps, whatever the source's rate).
const FPS: i32 = 25;

/// CVAT's quality → QP mapping: `round(51 * (100 - quality) / 99)` (quality clamped to
/// 1..=100; the division never lands on .5). 100 → 0, 70 → 15, 67 → 17, 50 → 26, 1 → 51.
/// [`Mp4Encoder`] raises 0 to 1 (see the module docs).
pub fn qp_from_quality(quality: u8) -> u8 {
    let q = quality.clamp(1, 100) as u32;
    // 51/99 = 34/66; adding 33 before the division rounds to nearest.
    ((34 * (100 - q) + 33) / 66) as u8
}

/// The size of a chunk's video stream for source frames of `width`×`height`. Compressed
/// chunks are downscaled by the smallest power of two `f` with `height / f < 1080`
/// (1080p → 960×540, 2160p → 960×540, 1440p → 1280×720, 720p unchanged; the UI assumes
/// power-of-two factors); then odd dimensions are rounded **up** to even (801×601 → 802×602).
/// A dimension that would be 0 becomes 2.
pub fn chunk_video_size(width: u32, height: u32, compressed: bool) -> (u32, u32) {
    let (mut w, mut h) = (width, height);
    if compressed {
        let mut f = 1u32;
        while f < (1 << 31) && h / f >= 1080 {
            f *= 2;
        }
        w /= f;
        h /= f;
    }
    let even = |v: u32| v.max(1).saturating_add(v.max(1) & 1);
    (even(w), even(h))
}

/// Encodes frames into an H.264 MP4 chunk in memory.
///
/// Frames are rescaled (bilinear, not padded) to [`chunk_video_size`] and converted to
/// yuv420p with swscale's defaults (BT.601 matrix, untagged), like CVAT's PyAV `reformat`.
/// Timestamps are 0, 1, 2, … in 1/25 s; the MP4 muxer chooses the track time base (1/12800,
/// as in CVAT's chunks) and writes `moov` at the end. SPS/PPS go in `avcC` only.
pub struct Mp4Encoder {
    sink: Sink,
    width: u32,
    height: u32,
    scaler: Option<Scaler>,
    /// Padded RGB24 staging frame for [`push_rgb`](Self::push_rgb).
    rgb: Option<ff::frame::Video>,
    /// Reused yuv420p frame the scaler writes into.
    yuv: ff::frame::Video,
}

/// The opened encoder and muxer, and the packet plumbing between them.
struct Sink {
    encoder: ff::encoder::video::Encoder,
    muxer: ff::format::context::Output,
    buffer: SharedBuffer,
    stream_index: usize,
    stream_time_base: ff::Rational,
    packet: ff::Packet,
    frames: i64,
}

impl Mp4Encoder {
    /// Opens an encoder for source frames of `src_width`×`src_height` at chunk `quality`
    /// (1..=100, see [`qp_from_quality`]); `compressed` selects the downscaling of
    /// [`chunk_video_size`]. Fails with CVAT's message when the chunk would exceed
    /// [`MAX_VIDEO_PIXELS`], or when FFmpeg lacks libx264.
    pub fn new(src_width: u32, src_height: u32, quality: u8, compressed: bool) -> Result<Self> {
        crate::media::init();
        if src_width == 0 || src_height == 0 {
            return Err(CodecError::Video {
                stage: "configuring the encoder",
                reason: format!("invalid frame size {src_width}x{src_height}"),
            });
        }
        let (width, height) = chunk_video_size(src_width, src_height, compressed);
        if width as u64 * height as u64 > MAX_VIDEO_PIXELS {
            return Err(CodecError::ResolutionTooHigh { width, height });
        }
        let qp = qp_from_quality(quality).max(1);
        let sink = Sink::open(width, height, qp)?;
        Ok(Mp4Encoder {
            sink,
            width,
            height,
            scaler: None,
            rgb: None,
            yuv: ff::frame::Video::new(ff::format::Pixel::YUV420P, width, height),
        })
    }

    /// Size of the encoded video (after downscaling and even rounding).
    pub fn output_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Frames pushed so far.
    pub fn frame_count(&self) -> usize {
        self.sink.frames as usize
    }

    /// Encodes an RGB frame (any size; it is rescaled to the output size).
    pub fn push_rgb(&mut self, image: &RgbImage) -> Result<()> {
        let (w, h) = (image.width(), image.height());
        let staging = match &mut self.rgb {
            Some(f) if f.width() == w && f.height() == h => f,
            slot => slot.insert(ff::frame::Video::new(ff::format::Pixel::RGB24, w, h)),
        };
        make_writable(staging)?;
        let stride = staging.stride(0);
        let row = w as usize * 3;
        let dst = staging.data_mut(0);
        for (y, src) in image.data().chunks_exact(row).enumerate() {
            dst[y * stride..y * stride + row].copy_from_slice(src);
        }
        let staging = self.rgb.as_ref().expect("filled above");
        scale(&mut self.scaler, staging, &mut self.yuv)?;
        self.sink.send(&mut self.yuv)
    }

    /// Encodes a decoded video frame directly from its pixel format (no RGB round trip). A
    /// yuv420p frame that already has the output size is passed to the encoder as is.
    pub fn push_decoded(&mut self, frame: &DecodedFrame) -> Result<()> {
        let src = &frame.frame;
        if src.width() == 0 || src.height() == 0 || src.format() == ff::format::Pixel::None {
            return Err(CodecError::Video {
                stage: "reading a decoded frame",
                reason: "the frame is empty".into(),
            });
        }
        if src.format() == ff::format::Pixel::YUV420P
            && (src.width(), src.height()) == (self.width, self.height)
        {
            let mut alias = ff::frame::Video::empty();
            // SAFETY: both frames are valid; av_frame_ref adds references to the source's
            // buffers (and copies its properties) into the empty frame.
            let ret = unsafe { ffi::av_frame_ref(alias.as_mut_ptr(), src.as_ptr()) };
            if ret < 0 {
                return Err(ff_err("referencing a decoded frame")(ff::Error::from(ret)));
            }
            return self.sink.send(&mut alias);
        }
        scale(&mut self.scaler, src, &mut self.yuv)?;
        self.sink.send(&mut self.yuv)
    }

    /// Flushes the encoder (EOF, drain), finalises the MP4 and returns its bytes. Fails if no
    /// frame was pushed.
    pub fn finish(self) -> Result<Vec<u8>> {
        let Mp4Encoder { mut sink, .. } = self;
        if sink.frames == 0 {
            return Err(CodecError::NoFrames);
        }
        sink.encoder
            .send_eof()
            .map_err(ff_err("flushing the encoder"))?;
        sink.drain()?;
        sink.muxer
            .write_trailer()
            .map_err(ff_err("finalising the MP4"))?;
        let Sink { muxer, buffer, .. } = sink;
        // Dropping the muxer flushes and releases the I/O context (and its buffer clone).
        drop(muxer);
        buffer.take()
    }
}

impl Sink {
    fn open(width: u32, height: u32, qp: u8) -> Result<Self> {
        let codec = ff::encoder::find_by_name("libx264").ok_or_else(|| CodecError::Video {
            stage: "opening the encoder",
            reason: "this FFmpeg build has no libx264 encoder".into(),
        })?;
        // The MP4 is muxed straight into memory: ffmpeg-next's StreamIo owns the AVIOContext
        // and its buffer (freed with the muxer), and the mov muxer's one backwards seek (to
        // patch the mdat size) lands in a Cursor. No temp file to name, clean up, or leak.
        let buffer = SharedBuffer::default();
        let io =
            StreamIo::from_write_seek(buffer.clone()).map_err(ff_err("creating the output"))?;
        let mut muxer = ff::format::output_to_stream(io, None, Some("mp4"))
            .map_err(ff_err("creating the MP4 muxer"))?;
        let global_header = muxer
            .format()
            .flags()
            .contains(ff::format::Flags::GLOBAL_HEADER);

        let mut enc = ff::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ff_err("creating the encoder"))?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(ff::format::Pixel::YUV420P);
        enc.set_time_base(ff::Rational::new(1, FPS));
        enc.set_frame_rate(Some(ff::Rational::new(FPS, 1)));
        enc.set_max_b_frames(0);
        // x264's ip_factor = 1 / i_qfactor: I-frames at the same QP as P-frames.
        enc.set_i_quant_factor(1.0);
        if global_header {
            enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ff::Dictionary::new();
        opts.set("preset", "ultrafast");
        opts.set("profile", "baseline");
        opts.set("coder", "0");
        opts.set("qp", &qp.to_string());
        // Do not copy closed captions from decoded frames into SEI messages.
        opts.set("a53cc", "0");
        let encoder = enc
            .open_as_with(codec, opts)
            .map_err(ff_err("opening the libx264 encoder"))?;

        let stream_index = {
            let mut stream = muxer
                .add_stream(codec)
                .map_err(ff_err("adding the video stream"))?;
            stream.set_time_base(ff::Rational::new(1, FPS));
            stream.set_parameters(&encoder);
            stream.index()
        };
        muxer
            .write_header()
            .map_err(ff_err("writing the MP4 header"))?;
        let stream_time_base = muxer
            .stream(stream_index)
            .map(|s| s.time_base())
            .ok_or_else(|| CodecError::Video {
                stage: "writing the MP4 header",
                reason: "the video stream disappeared".into(),
            })?;
        Ok(Sink {
            encoder,
            muxer,
            buffer,
            stream_index,
            stream_time_base,
            packet: ff::Packet::empty(),
            frames: 0,
        })
    }

    /// Sends one yuv420p frame of the output size (pts = frame number) and muxes what comes out.
    fn send(&mut self, frame: &mut ff::frame::Video) -> Result<()> {
        frame.set_pts(Some(self.frames));
        // Let x264 choose frame types: a decoded frame's P/B type would otherwise be forced.
        frame.set_kind(ff::picture::Type::None);
        self.encoder
            .send_frame(frame)
            .map_err(ff_err("encoding a frame"))?;
        self.frames += 1;
        self.drain()
    }

    /// Moves every packet the encoder has ready into the muxer.
    fn drain(&mut self) -> Result<()> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(()),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    return Ok(())
                }
                Err(e) => return Err(ff_err("encoding a frame")(e)),
            }
            if self.packet.duration() == 0 {
                self.packet.set_duration(1);
            }
            self.packet.set_stream(self.stream_index);
            self.packet
                .rescale_ts(ff::Rational::new(1, FPS), self.stream_time_base);
            self.packet
                .write_interleaved(&mut self.muxer)
                .map_err(ff_err("writing the MP4"))?;
        }
    }
}

/// The swscale context for one input format and size, to yuv420p at the output size.
struct Scaler {
    ctx: scaling::Context,
    format: ff::format::Pixel,
    width: u32,
    height: u32,
}

// SAFETY: the SwsContext is owned exclusively by this value, has no thread affinity and is
// only used through `&mut`.
unsafe impl Send for Scaler {}

/// Scales `src` into `dst` (yuv420p, allocated at the output size), reusing the scaler while
/// the input format and size stay the same.
fn scale(
    scaler: &mut Option<Scaler>,
    src: &ff::frame::Video,
    dst: &mut ff::frame::Video,
) -> Result<()> {
    let (format, width, height) = (src.format(), src.width(), src.height());
    let stale = scaler
        .as_ref()
        .is_none_or(|s| (s.format, s.width, s.height) != (format, width, height));
    if stale {
        let ctx = scaling::Context::get(
            format,
            width,
            height,
            ff::format::Pixel::YUV420P,
            dst.width(),
            dst.height(),
            scaling::Flags::BILINEAR,
        )
        .map_err(|e| CodecError::Video {
            stage: "converting a frame",
            reason: format!("cannot convert {format:?} {width}x{height} to yuv420p: {e}"),
        })?;
        *scaler = Some(Scaler {
            ctx,
            format,
            width,
            height,
        });
    }
    // The encoder may still hold a reference to the previous frame's buffers.
    make_writable(dst)?;
    let s = scaler.as_mut().expect("set above");
    s.ctx.run(src, dst).map_err(ff_err("converting a frame"))
}

/// Makes `frame`'s buffers exclusively ours (copying them if another reference exists).
fn make_writable(frame: &mut ff::frame::Video) -> Result<()> {
    // SAFETY: `frame` is a valid, allocated frame.
    let ret = unsafe { ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if ret < 0 {
        return Err(ff_err("allocating a frame")(ff::Error::from(ret)));
    }
    Ok(())
}

fn ff_err(stage: &'static str) -> impl Fn(ff::Error) -> CodecError {
    move |e| CodecError::Video {
        stage,
        reason: e.to_string(),
    }
}

/// The in-memory MP4 file: shared between the muxer's I/O context (which needs an owned,
/// `Send + 'static` stream) and the encoder, which takes the bytes out at the end.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Cursor<Vec<u8>>>>);

impl SharedBuffer {
    fn lock(&self) -> std::io::Result<std::sync::MutexGuard<'_, Cursor<Vec<u8>>>> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("MP4 buffer lock poisoned"))
    }

    fn take(&self) -> Result<Vec<u8>> {
        let mut guard = self.lock().map_err(|e| CodecError::Video {
            stage: "finalising the MP4",
            reason: e.to_string(),
        })?;
        Ok(std::mem::take(guard.get_mut()))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock()?.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedBuffer {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.lock()?.seek(pos)
    }
}

#[cfg(test)]
mod tests;
