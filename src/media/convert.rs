//! Decoded frame → packed RGB24, the way CVAT's checksum (PyAV `frame.to_image()`) does it.

use ff::ffi;
use ff::software::scaling;
use ffmpeg_next as ff;

use super::{DecodedFrame, MediaError, Result};

/// How YUV→RGB conversion treats the frame's colour tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// CVAT v2.73 / PyAV ≤ 16: swscale defaults (BT.601 matrix, range from the pixel format),
    /// whatever the frame is tagged with.
    #[default]
    Untagged,
    /// Newer PyAV (18+): the matrix and range follow the frame's colourspace tags.
    Tagged,
}

/// Converts decoded frames to packed RGB24 at the same size, with `SWS_BILINEAR` and without
/// `SWS_ACCURATE_RND`, reusing its swscale context while the input format and size stay the same.
pub struct RgbConverter {
    mode: ColorMode,
    ctx: Option<(scaling::Context, Key)>,
    out: ff::frame::Video,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    format: ff::format::Pixel,
    width: u32,
    height: u32,
    space: ff::color::Space,
    range: ff::color::Range,
}

// SAFETY: the swscale context and frames are owned exclusively by this value and never shared.
unsafe impl Send for RgbConverter {}

impl RgbConverter {
    /// A converter for the given colour mode.
    pub fn new(mode: ColorMode) -> Self {
        RgbConverter {
            mode,
            ctx: None,
            out: ff::frame::Video::empty(),
        }
    }

    /// Converts `frame` and calls `row` with each of its RGB rows (`3 * width` bytes, no padding).
    pub fn convert_rows(
        &mut self,
        frame: &DecodedFrame,
        mut row: impl FnMut(&[u8]),
    ) -> Result<(u32, u32)> {
        let frame = &frame.frame;
        let key = Key {
            format: frame.format(),
            width: frame.width(),
            height: frame.height(),
            space: frame.color_space(),
            range: frame.color_range(),
        };
        if key.width == 0 || key.height == 0 || key.format == ff::format::Pixel::None {
            return Err(MediaError::Decode {
                path: Default::default(),
                reason: "the decoder returned an empty frame".into(),
            });
        }
        let stale = self.ctx.as_ref().is_none_or(|(_, k)| *k != key);
        if stale {
            let ctx = scaling::Context::get(
                key.format,
                key.width,
                key.height,
                ff::format::Pixel::RGB24,
                key.width,
                key.height,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| MediaError::Decode {
                path: Default::default(),
                reason: format!("cannot convert {:?} to RGB: {e}", key.format),
            })?;
            let mut ctx = (ctx, key);
            if self.mode == ColorMode::Tagged {
                apply_color_tags(&mut ctx.0, key);
            }
            self.ctx = Some(ctx);
        }
        let (ctx, _) = self.ctx.as_mut().expect("set above");
        ctx.run(frame, &mut self.out)
            .map_err(|e| MediaError::Decode {
                path: Default::default(),
                reason: format!("RGB conversion failed: {e}"),
            })?;
        let stride = self.out.stride(0);
        let data = self.out.data(0);
        let row_len = key.width as usize * 3;
        for y in 0..key.height as usize {
            row(&data[y * stride..y * stride + row_len]);
        }
        Ok((key.width, key.height))
    }

    /// Converts `frame` into a packed RGB24 buffer (`3 * width * height` bytes).
    pub fn to_rgb(&mut self, frame: &DecodedFrame) -> Result<(u32, u32, Vec<u8>)> {
        let mut buf = Vec::with_capacity(frame.width() as usize * frame.height() as usize * 3);
        let (w, h) = self.convert_rows(frame, |r| buf.extend_from_slice(r))?;
        Ok((w, h, buf))
    }

    /// md5 of the packed RGB24 pixels: CVAT's video frame checksum (lowercase hex).
    pub fn md5_hex(&mut self, frame: &DecodedFrame) -> Result<String> {
        use md5::Digest;
        let mut h = md5::Md5::new();
        self.convert_rows(frame, |r| h.update(r))?;
        Ok(hex(&h.finalize()))
    }
}

/// Lowercase hex of a byte slice.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Makes swscale follow the frame's colourspace and range tags (what `sws_scale_frame` in
/// FFmpeg 8 / PyAV 18 does); RGB output is full range.
fn apply_color_tags(ctx: &mut scaling::Context, key: Key) {
    let space = match key.space {
        ff::color::Space::BT709 => ffi::SWS_CS_ITU709,
        ff::color::Space::FCC => ffi::SWS_CS_FCC,
        ff::color::Space::BT470BG => ffi::SWS_CS_ITU601,
        ff::color::Space::SMPTE170M => ffi::SWS_CS_SMPTE170M,
        ff::color::Space::SMPTE240M => ffi::SWS_CS_SMPTE240M,
        ff::color::Space::BT2020NCL | ff::color::Space::BT2020CL => ffi::SWS_CS_BT2020,
        _ => ffi::SWS_CS_DEFAULT,
    };
    let src_full = match key.range {
        ff::color::Range::JPEG => 1,
        ff::color::Range::MPEG => 0,
        // Untagged: swscale's own inference from the pixel format (yuvj* = full).
        _ => matches!(
            key.format,
            ff::format::Pixel::YUVJ420P
                | ff::format::Pixel::YUVJ422P
                | ff::format::Pixel::YUVJ444P
                | ff::format::Pixel::YUVJ440P
                | ff::format::Pixel::YUVJ411P
        ) as i32,
    };
    // SAFETY: the context is valid; sws_getCoefficients returns a static table.
    unsafe {
        let src_table = ffi::sws_getCoefficients(space);
        let dst_table = ffi::sws_getCoefficients(ffi::SWS_CS_DEFAULT);
        ffi::sws_setColorspaceDetails(
            ctx.as_mut_ptr(),
            src_table,
            src_full,
            dst_table,
            1,
            0,
            1 << 16,
            1 << 16,
        );
    }
}
