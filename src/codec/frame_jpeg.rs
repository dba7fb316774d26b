//! Decoded video frames → JPEG for compressed zip chunks, and encoding overlapped with decoding.
//!
//! **Pixel path.** An 8-bit 4:2:0 frame (`yuv420p`, `yuvj420p`) that needs no rotation is
//! compressed straight from the decoder's planes (`tj3CompressFromYUVPlanes8`), skipping
//! swscale's YUV→RGB and libjpeg's RGB→YCbCr + 2x2 downsampling, which only undo each other.
//! Every other frame (other pixel formats, high bit depth, rotated video) takes the RGB path
//! ([`RgbConverter`], CVAT's conversion, then [`encode_jpeg`]).
//!
//! Colours: CVAT converts every video to RGB as BT.601 whatever its tags, with the range taken
//! from the pixel format (our [`ColorMode::Untagged`]); JPEG's YCbCr is BT.601 full range. So
//! the planes only need their range expanded: `yuv420p` is limited range (Y 16..235, Cb/Cr
//! 16..240), mapped to full range through two rounded 256-entry tables (luma also corrected for
//! swscale's truncation, [`SWSCALE_Y_BIAS`]); `yuvj420p` is already full range and is passed as
//! is. Decoded, the JPEGs are as close to CVAT's RGB frames as the RGB path's JPEGs are (mean
//! absolute difference between the two paths 0.7–1.2 per channel on real video; see the tests
//! and `examples/jpeg_paths.rs`), but not byte-identical to them.

use ffmpeg_next as ff;
use turbojpeg::{Compressor, Subsamp, YuvPlanesImage};

use super::{encode_jpeg, rotate, CodecError, Raster, Result, RgbImage};
use crate::media::{ColorMode, DecodedFrame, RgbConverter};

/// How much darker swscale's YUV→RGB (CVAT's conversion, the RGB path) makes a picture than
/// the exact BT.601 formulas, in full-range luma levels: its fixed-point arithmetic truncates
/// the luma term and each chroma term, so R, G and B come out ~1, ~1.5 and ~1 levels low, which
/// is -1.28 in Y and +0.17 / +0.21 in Cb / Cr (measured over random in-gamut YUV, FFmpeg 5.1
/// x86). Luma takes the offset so the JPEG's colours match the RGB path's on average (without
/// it, +1.3 levels: mean abs error vs the RGB path 1.52 instead of ~0.7 on cup.mp4); the chroma
/// offsets are below rounding. Full-range frames are passed as they are (no copy), which leaves
/// them up to ~1 level brighter than the RGB path (fullrange.mp4: mean abs difference 1.25).
const SWSCALE_Y_BIAS: f64 = -1.28;

/// Optimised Huffman tables (PIL `optimize=True`, as CVAT and [`encode_jpeg`]). Measured on this
/// path (2-core VM, quality 70): they double the encoding time (1080p frame 6.0 vs 3.0 ms, 640x480
/// 0.79 vs 0.40 ms) and save 19–23% of the bytes (1080p chunk 0: 2.33 vs 2.87 MB; cup.mp4 chunk
/// 0: 387 vs 461 KB). Turning them off makes a cold chunk ~20% faster when decoding is short
/// (1080p chunk 0: ~0.21 → ~0.17 s; cup.mp4 chunk 0: 44 → 33 ms) and ~4% when it is long
/// (chunk 20: 0.73 → 0.70 s). Kept: the extra bytes cost every transfer and cache hit (1080p
/// hits are bandwidth-bound), ~86 ms per 1080p chunk on a 50 Mbit/s link, more than the build
/// time they save, which is paid once per chunk.
const OPTIMIZE_HUFFMAN: bool = true;

/// Limited → full range for luma: `(y - 16) * 255 / 219` plus [`SWSCALE_Y_BIAS`], rounded and
/// clamped (16 → 0, 235 → 254).
static Y_FULL: [u8; 256] = range_table(16.0, 219.0, 0.0, SWSCALE_Y_BIAS);
/// Limited → full range for chroma: `(c - 128) * 255 / 224 + 128`, rounded and clamped
/// (16 → 1, 128 → 128, 240 → 255).
static C_FULL: [u8; 256] = range_table(128.0, 224.0, 128.0, 0.0);

/// `(v - zero) * 255 / span + base + bias` for every byte `v`, rounded half up, clamped to 0..=255.
const fn range_table(zero: f64, span: f64, base: f64, bias: f64) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        let x = (v as f64 - zero) * 255.0 / span + base + bias;
        t[v] = if x <= 0.0 {
            0
        } else if x >= 255.0 {
            255
        } else {
            (x + 0.5) as u8
        };
        v += 1;
    }
    t
}

/// A borrowed view of a decoded 8-bit 4:2:0 frame's planes.
struct Yuv420<'a> {
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    width: usize,
    height: usize,
    /// `yuvj420p`: already full range.
    full_range: bool,
}

/// The planes of `frame` when it is 8-bit 4:2:0 with positive strides, else `None`.
fn yuv420(frame: &DecodedFrame) -> Option<Yuv420<'_>> {
    let f = &frame.frame;
    let full_range = match f.format() {
        ff::format::Pixel::YUV420P => false,
        ff::format::Pixel::YUVJ420P => true,
        _ => return None,
    };
    let (width, height) = (f.width() as usize, f.height() as usize);
    if width == 0 || height == 0 {
        return None;
    }
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    // SAFETY: reading the fields of a valid frame. A decoded yuv420p frame has three planes of
    // `linesize[i]` bytes per row, `height` rows for Y and `ceil(height / 2)` for Cb/Cr, of
    // which the first `width` / `ceil(width / 2)` bytes are pixels; the slices below cover
    // exactly those bytes (last row only up to its last pixel).
    unsafe {
        let raw = &*f.as_ptr();
        let mut planes: [&[u8]; 3] = [&[]; 3];
        let mut strides = [0usize; 3];
        for (i, (w, h)) in [(width, height), (cw, ch), (cw, ch)]
            .into_iter()
            .enumerate()
        {
            let stride = usize::try_from(raw.linesize[i]).ok().filter(|&s| s >= w)?;
            if raw.data[i].is_null() {
                return None;
            }
            planes[i] = std::slice::from_raw_parts(raw.data[i], stride * (h - 1) + w);
            strides[i] = stride;
        }
        Some(Yuv420 {
            planes,
            strides,
            width,
            height,
            full_range,
        })
    }
}

/// Writes `src` (`w`×`h` pixels, `stride` bytes per row) through `lut` into `dst` as a tight
/// `pw`×`ph` plane (`pw >= w`, `ph >= h`), repeating the last column and row into the padding.
#[allow(clippy::too_many_arguments)]
fn copy_plane(
    src: &[u8],
    stride: usize,
    w: usize,
    h: usize,
    lut: Option<&[u8; 256]>,
    dst: &mut [u8],
    pw: usize,
    ph: usize,
) {
    for y in 0..ph {
        let row = &src[y.min(h - 1) * stride..][..w];
        let out = &mut dst[y * pw..][..pw];
        match lut {
            Some(lut) => {
                for (o, &i) in out[..w].iter_mut().zip(row) {
                    *o = lut[i as usize];
                }
            }
            None => out[..w].copy_from_slice(row),
        }
        let last = out[w - 1];
        out[w..].fill(last);
    }
}

/// Encodes decoded video frames as the JPEGs of compressed zip chunks (quality, 4:2:0,
/// optimised Huffman tables), by the fastest path the frame allows (see the module docs).
/// Holds reusable buffers; one per thread.
pub struct FrameJpegEncoder {
    quality: u8,
    rotation: f64,
    rgb: RgbConverter,
    /// Full-range planes (Y, Cb, Cr back to back) for limited-range or odd-sized frames.
    planes: Vec<u8>,
    compressor: Option<Compressor>,
}

impl FrameJpegEncoder {
    /// An encoder for frames shown rotated by `rotation` degrees (the display matrix; a multiple
    /// of 90), at JPEG `quality`.
    pub fn new(quality: u8, rotation: f64) -> Self {
        FrameJpegEncoder {
            quality,
            rotation,
            rgb: RgbConverter::new(ColorMode::Untagged),
            planes: Vec::new(),
            compressor: None,
        }
    }

    /// Encodes one frame.
    pub fn encode(&mut self, frame: &DecodedFrame) -> Result<Vec<u8>> {
        if self.rotation == 0.0 {
            if let Some(yuv) = yuv420(frame) {
                return self.encode_yuv420(&yuv);
            }
        }
        self.encode_rgb(frame)
    }

    /// The RGB path: CVAT's conversion, rotation, libjpeg's RGB → YCbCr 4:2:0.
    fn encode_rgb(&mut self, frame: &DecodedFrame) -> Result<Vec<u8>> {
        let (w, h, data) = self.rgb.to_rgb(frame)?;
        let mut raster = Raster::Rgb(RgbImage::new(w, h, data)?);
        if self.rotation != 0.0 {
            raster = rotate(raster, self.rotation)?;
        }
        encode_jpeg(&raster, self.quality)
    }

    fn encode_yuv420(&mut self, yuv: &Yuv420<'_>) -> Result<Vec<u8>> {
        let (w, h) = (yuv.width, yuv.height);
        let err = |e: turbojpeg::Error| CodecError::Jpeg {
            width: w as u32,
            height: h as u32,
            reason: e.to_string(),
        };
        // libjpeg reads luma padded to even dimensions (`PAD(width, 2)` columns, `PAD(height,
        // 2)` rows): an odd-sized frame is copied with its last column/row repeated, as the RGB
        // path's downsampling does, so no byte outside the picture reaches the encoder.
        let (pw, ph) = (w.next_multiple_of(2), h.next_multiple_of(2));
        let (cw, ch) = (pw / 2, ph / 2);
        let copy = !yuv.full_range || pw != w || ph != h;
        let image = if copy {
            let (luma, chroma) = if yuv.full_range {
                (None, None)
            } else {
                (Some(&Y_FULL), Some(&C_FULL))
            };
            self.planes.resize(pw * ph + 2 * cw * ch, 0);
            let (y, c) = self.planes.split_at_mut(pw * ph);
            let (u, v) = c.split_at_mut(cw * ch);
            copy_plane(yuv.planes[0], yuv.strides[0], w, h, luma, y, pw, ph);
            copy_plane(yuv.planes[1], yuv.strides[1], cw, ch, chroma, u, cw, ch);
            copy_plane(yuv.planes[2], yuv.strides[2], cw, ch, chroma, v, cw, ch);
            YuvPlanesImage {
                y_plane: &*y,
                u_plane: &*u,
                v_plane: &*v,
                width: w,
                height: h,
                y_stride: pw,
                u_stride: cw,
                v_stride: cw,
                subsamp: Subsamp::Sub2x2,
            }
        } else {
            YuvPlanesImage {
                y_plane: yuv.planes[0],
                u_plane: yuv.planes[1],
                v_plane: yuv.planes[2],
                width: w,
                height: h,
                y_stride: yuv.strides[0],
                u_stride: yuv.strides[1],
                v_stride: yuv.strides[2],
                subsamp: Subsamp::Sub2x2,
            }
        };
        let c = match &mut self.compressor {
            Some(c) => c,
            None => {
                let mut c = Compressor::new().map_err(err)?;
                c.set_quality(self.quality.clamp(1, 100) as i32)
                    .map_err(err)?;
                c.set_optimize(OPTIMIZE_HUFFMAN).map_err(err)?;
                self.compressor.insert(c)
            }
        };
        c.compress_yuv_planes_to_vec(&image).map_err(err)
    }
}

/// Runs `produce` (typically: decode frames) on the calling thread while the frames it submits
/// are JPEG-encoded ([`FrameJpegEncoder`]) on other threads, and returns the JPEGs in
/// submission order ([`super::encode_overlapped`], collected).
pub fn encode_jpegs_overlapped<E>(
    quality: u8,
    rotation: f64,
    produce: impl FnOnce(
        &mut dyn FnMut(DecodedFrame) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>,
) -> std::result::Result<Vec<Vec<u8>>, E>
where
    E: From<CodecError> + Send,
{
    let mut jpegs = Vec::new();
    super::encode_overlapped(
        || {
            let mut enc = FrameJpegEncoder::new(quality, rotation);
            move |f: &DecodedFrame| enc.encode(f).map_err(E::from)
        },
        produce,
        |jpeg| {
            jpegs.push(jpeg);
            Ok(())
        },
    )?;
    Ok(jpegs)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::media::FrameReader;

    #[test]
    fn range_tables_round_and_clamp() {
        for v in 0..=255i32 {
            let y = ((v - 16) as f64 * 255.0 / 219.0 + SWSCALE_Y_BIAS + 0.5)
                .floor()
                .clamp(0.0, 255.0) as u8;
            let c = ((v - 128) as f64 * 255.0 / 224.0 + 128.5)
                .floor()
                .clamp(0.0, 255.0) as u8;
            assert_eq!(Y_FULL[v as usize], y, "Y {v}");
            assert_eq!(C_FULL[v as usize], c, "C {v}");
        }
        assert_eq!(
            (Y_FULL[0], Y_FULL[16], Y_FULL[126], Y_FULL[235], Y_FULL[255]),
            (0, 0, 127, 254, 255)
        );
        assert_eq!((C_FULL[16], C_FULL[128], C_FULL[240]), (1, 128, 255));
    }

    fn frames(video: &str, n: usize) -> Vec<DecodedFrame> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/videos")
            .join(video);
        let mut r = FrameReader::open(&path).unwrap();
        (0..n).map(|_| r.next_frame().unwrap().unwrap()).collect()
    }

    fn decode(jpeg: &[u8]) -> Vec<u8> {
        turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB)
            .unwrap()
            .pixels
    }

    /// Mean and max absolute difference per channel.
    fn diff(a: &[u8], b: &[u8]) -> (f64, u8) {
        assert_eq!(a.len(), b.len());
        let (sum, max) = a.iter().zip(b).fold((0u64, 0u8), |(s, m), (&x, &y)| {
            (s + x.abs_diff(y) as u64, m.max(x.abs_diff(y)))
        });
        (sum as f64 / a.len() as f64, max)
    }

    /// A synthetic yuv420p/yuvj420p frame: smooth colour ramps.
    fn synthetic(format: ff::format::Pixel, w: u32, h: u32) -> DecodedFrame {
        let mut f = ff::frame::Video::new(format, w, h);
        for (i, (pw, ph)) in [
            (w, h),
            (w.div_ceil(2), h.div_ceil(2)),
            (w.div_ceil(2), h.div_ceil(2)),
        ]
        .into_iter()
        .enumerate()
        {
            let stride = f.stride(i);
            let data = f.data_mut(i);
            for y in 0..ph as usize {
                for x in 0..pw as usize {
                    // Smooth ramps (at most 2 levels per pixel; frames up to 64x64).
                    data[y * stride + x] = match i {
                        0 => 20 + (x * 2 + y) as u8,
                        1 => 90 + x as u8,
                        _ => 170 - y as u8,
                    };
                }
            }
        }
        DecodedFrame { frame: f }
    }

    /// The YUV path against the RGB path (CVAT's conversion, then libjpeg's RGB → YCbCr) on the
    /// same frame: both JPEGs decoded to RGB must agree within `bound` (mean absolute difference
    /// per channel), and the YUV path must be about as close to the swscale RGB of the frame
    /// (what CVAT encodes) as the RGB path is.
    fn check_against_rgb_path(frame: &DecodedFrame, what: &str, bound: f64) -> u8 {
        assert!(yuv420(frame).is_some(), "{what}: not on the YUV path");
        let mut enc = FrameJpegEncoder::new(70, 0.0);
        let yuv_jpeg = enc.encode(frame).unwrap();
        let rgb_jpeg = enc.encode_rgb(frame).unwrap();
        let header = turbojpeg::read_header(&yuv_jpeg).unwrap();
        assert_eq!(
            (header.width as u32, header.height as u32, header.subsamp),
            (frame.width(), frame.height(), Subsamp::Sub2x2),
            "{what}"
        );
        let (yuv_px, rgb_px) = (decode(&yuv_jpeg), decode(&rgb_jpeg));
        let source = RgbConverter::new(ColorMode::Untagged)
            .to_rgb(frame)
            .unwrap()
            .2;
        let (mae, max) = diff(&yuv_px, &rgb_px);
        let (mae_yuv, _) = diff(&yuv_px, &source);
        let (mae_rgb, _) = diff(&rgb_px, &source);
        assert!(
            mae <= bound,
            "{what}: YUV vs RGB path: mean {mae:.3}, max {max}"
        );
        assert!(
            mae_yuv <= mae_rgb + 0.5,
            "{what}: vs the source: YUV path {mae_yuv:.3}, RGB path {mae_rgb:.3}"
        );
        max
    }

    #[test]
    fn yuv_path_matches_rgb_path_on_real_frames() {
        // A real camera clip (limited range, BT.601): the two paths agree within rounding.
        let shared = std::env::var_os("FRAMESERVER_SHARED_TESTDATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
        let cup = shared.join("videos/cup.mp4");
        let mut r = FrameReader::open(&cup).unwrap();
        for i in 0..8 {
            let f = r.next_frame().unwrap().unwrap();
            check_against_rgb_path(&f, &format!("cup.mp4 frame {i}"), 1.2);
        }
        // Synthetic clips (saturated test patterns with sharp edges, where each path's own
        // quantisation noise is ~4 levels): untagged, BT.709-tagged 426x240 (converted as
        // BT.601, as CVAT does), full range (yuvj420p), HEVC.
        for video in ["h264_bframes.mp4", "bt709.mp4", "fullrange.mp4", "hevc.mp4"] {
            for (i, f) in frames(video, 4).iter().enumerate() {
                check_against_rgb_path(f, &format!("{video} frame {i}"), 3.0);
            }
        }
    }

    #[test]
    fn odd_sizes_take_the_yuv_path() {
        for format in [ff::format::Pixel::YUV420P, ff::format::Pixel::YUVJ420P] {
            for (w, h) in [(33, 17), (1, 1), (2, 3), (17, 32), (64, 48)] {
                let f = synthetic(format, w, h);
                let what = format!("{format:?} {w}x{h}");
                // Smooth ramps: a wrong edge column or row would show as a large difference.
                let max = check_against_rgb_path(&f, &what, 2.0);
                assert!(max <= 10, "{what}: max {max}");
            }
        }
    }

    #[test]
    fn other_formats_and_rotation_take_the_rgb_path() {
        let mut enc = FrameJpegEncoder::new(70, 0.0);
        let f = DecodedFrame {
            frame: ff::frame::Video::new(ff::format::Pixel::YUV444P, 16, 8),
        };
        assert!(yuv420(&f).is_none());
        assert_eq!(enc.encode(&f).unwrap(), enc.encode_rgb(&f).unwrap());
        let f = synthetic(ff::format::Pixel::YUV420P, 32, 16);
        let jpeg = FrameJpegEncoder::new(70, 90.0).encode(&f).unwrap();
        let header = turbojpeg::read_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (16, 32));
    }

    #[test]
    fn overlapped_encoding_keeps_order_and_bytes() {
        let input = frames("h264_bframes.mp4", 30);
        let mut enc = FrameJpegEncoder::new(70, 0.0);
        let serial: Vec<_> = input.iter().map(|f| enc.encode(f).unwrap()).collect();
        let again = frames("h264_bframes.mp4", 30);
        let got = encode_jpegs_overlapped::<CodecError>(70, 0.0, |submit| {
            again.into_iter().try_for_each(submit)
        })
        .unwrap();
        assert_eq!(got, serial);
    }

    #[test]
    fn overlapped_encoding_reports_errors() {
        // An error from the producer is returned.
        let r = encode_jpegs_overlapped::<CodecError>(70, 0.0, |submit| {
            for f in frames("h264_bframes.mp4", 3) {
                submit(f)?;
            }
            Err(CodecError::NoFrames)
        });
        assert!(matches!(r, Err(CodecError::NoFrames)), "{r:?}");
        // An encoding error (an empty frame) is returned, and stops the producer.
        let mut submitted = 0;
        let r = encode_jpegs_overlapped::<CodecError>(70, 0.0, |submit| {
            submit(DecodedFrame {
                frame: ff::frame::Video::empty(),
            })?;
            for f in frames("h264_bframes.mp4", 60) {
                submit(f)?;
                submitted += 1;
            }
            Ok(())
        });
        assert!(matches!(r, Err(CodecError::Media(_))), "{r:?}");
        assert!(submitted < 60, "the producer was not stopped");
    }
}
