//! In-memory frames ([`Raster`]) and the geometric operations chunk builders need: lossless
//! 90° rotations for display matrices, the eight EXIF orientations and a PIL-like thumbnail.

use std::fmt;

use super::{CodecError, Result};

macro_rules! pixel_buffer {
    ($(#[$doc:meta])* $name:ident, $channels:expr, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name {
            width: u32,
            height: u32,
            data: Vec<u8>,
        }

        impl $name {
            /// Bytes per pixel.
            pub const CHANNELS: usize = $channels;

            /// Wraps `data` (rows top to bottom, no padding). Fails unless both dimensions are
            /// non-zero and `data.len() == width * height * CHANNELS`.
            pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
                let invalid = |reason: String| CodecError::InvalidRaster {
                    kind: $kind,
                    width,
                    height,
                    reason,
                };
                if width == 0 || height == 0 {
                    return Err(invalid("a dimension is zero".into()));
                }
                let expected = (width as usize)
                    .checked_mul(height as usize)
                    .and_then(|n| n.checked_mul(Self::CHANNELS))
                    .ok_or_else(|| invalid("too large".into()))?;
                if data.len() != expected {
                    return Err(invalid(format!(
                        "{} bytes of pixel data, expected {expected}",
                        data.len()
                    )));
                }
                Ok($name {
                    width,
                    height,
                    data,
                })
            }

            /// Width in pixels.
            pub fn width(&self) -> u32 {
                self.width
            }

            /// Height in pixels.
            pub fn height(&self) -> u32 {
                self.height
            }

            /// The pixel bytes, `width * height * CHANNELS` of them.
            pub fn data(&self) -> &[u8] {
                &self.data
            }

            /// Takes the pixel bytes.
            pub fn into_data(self) -> Vec<u8> {
                self.data
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}x{})", stringify!($name), self.width, self.height)
            }
        }
    };
}

pixel_buffer!(
    /// A packed RGB24 image (3 bytes per pixel).
    RgbImage,
    3,
    "RGB"
);
pixel_buffer!(
    /// An 8-bit grayscale image (PIL mode `L`).
    GrayImage,
    1,
    "grayscale"
);

impl TryFrom<image::RgbImage> for RgbImage {
    type Error = CodecError;
    fn try_from(img: image::RgbImage) -> Result<Self> {
        let (w, h) = img.dimensions();
        let mut data = img.into_raw();
        data.truncate(w as usize * h as usize * 3);
        RgbImage::new(w, h, data)
    }
}

impl TryFrom<image::GrayImage> for GrayImage {
    type Error = CodecError;
    fn try_from(img: image::GrayImage) -> Result<Self> {
        let (w, h) = img.dimensions();
        let mut data = img.into_raw();
        data.truncate(w as usize * h as usize);
        GrayImage::new(w, h, data)
    }
}

/// A frame as chunk builders produce it: RGB, or grayscale (which JPEG keeps grayscale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raster {
    Rgb(RgbImage),
    Gray(GrayImage),
}

impl Raster {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        match self {
            Raster::Rgb(i) => i.width,
            Raster::Gray(i) => i.width,
        }
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        match self {
            Raster::Rgb(i) => i.height,
            Raster::Gray(i) => i.height,
        }
    }

    /// Bytes per pixel: 3 or 1.
    pub fn channels(&self) -> usize {
        match self {
            Raster::Rgb(_) => RgbImage::CHANNELS,
            Raster::Gray(_) => GrayImage::CHANNELS,
        }
    }

    /// The pixel bytes.
    pub fn data(&self) -> &[u8] {
        match self {
            Raster::Rgb(i) => &i.data,
            Raster::Gray(i) => &i.data,
        }
    }

    /// Rebuilds a raster of the same kind around new pixels (sizes are the caller's duty).
    fn with_pixels(&self, width: u32, height: u32, data: Vec<u8>) -> Raster {
        match self {
            Raster::Rgb(_) => Raster::Rgb(RgbImage {
                width,
                height,
                data,
            }),
            Raster::Gray(_) => Raster::Gray(GrayImage {
                width,
                height,
                data,
            }),
        }
    }
}

impl From<RgbImage> for Raster {
    fn from(i: RgbImage) -> Self {
        Raster::Rgb(i)
    }
}

impl From<GrayImage> for Raster {
    fn from(i: GrayImage) -> Self {
        Raster::Gray(i)
    }
}

/// The eight lossless transforms of the square (PIL's `Image.Transpose` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Identity,
    FlipLeftRight,
    Rotate180,
    FlipTopBottom,
    /// Mirror about the main diagonal.
    Transpose,
    /// 90° counter-clockwise (PIL `ROTATE_90`).
    Rotate90,
    /// Mirror about the anti-diagonal.
    Transverse,
    /// 270° counter-clockwise = 90° clockwise (PIL `ROTATE_270`).
    Rotate270,
}

impl Transform {
    fn apply(self, raster: Raster) -> Raster {
        if self == Transform::Identity {
            return raster;
        }
        let (w, h) = (raster.width() as usize, raster.height() as usize);
        let (ow, oh, data) = match raster.channels() {
            3 => remap::<3>(raster.data(), w, h, self),
            _ => remap::<1>(raster.data(), w, h, self),
        };
        raster.with_pixels(ow as u32, oh as u32, data)
    }
}

/// Output pixel `(x, y)` is source pixel number `base + x * dx + y * dy` (row-major index).
fn remap<const C: usize>(src: &[u8], w: usize, h: usize, t: Transform) -> (usize, usize, Vec<u8>) {
    let (w_, h_) = (w as isize, h as isize);
    let last_row = (h_ - 1) * w_;
    #[rustfmt::skip]
    let (ow, oh, base, dx, dy) = match t {
        Transform::Identity      => (w, h, 0, 1, w_),
        Transform::FlipLeftRight => (w, h, w_ - 1, -1, w_),
        Transform::Rotate180     => (w, h, last_row + w_ - 1, -1, -w_),
        Transform::FlipTopBottom => (w, h, last_row, 1, -w_),
        // Output is h wide and w tall: moving right in the output walks down a source column.
        Transform::Transpose     => (h, w, 0, w_, 1),
        Transform::Rotate90      => (h, w, w_ - 1, w_, -1),
        Transform::Transverse    => (h, w, last_row + w_ - 1, -w_, -1),
        Transform::Rotate270     => (h, w, last_row, -w_, 1),
    };
    let mut out = Vec::with_capacity(ow * oh * C);
    for y in 0..oh as isize {
        let mut i = base + y * dy;
        for _ in 0..ow {
            let s = i as usize * C;
            out.extend_from_slice(&src[s..s + C]);
            i += dx;
        }
    }
    (ow, oh, out)
}

/// Rotates a frame by a display-matrix angle: `degrees` **counter-clockwise**, as FFmpeg's
/// `av_display_rotation_get` (negated, i.e. PyAV's `frame.rotation`) and the manifest's
/// rotation report it. 90 turns the top-right corner into the top-left one; -90 (= 270) is a
/// clockwise quarter turn. Only multiples of 90° (within 0.001°) are supported, and they are
/// lossless pixel moves.
///
/// CVAT v2.73 rotates with an OpenCV affine warp about `(w/2, h/2)`, which for quarter turns
/// lands one pixel off (one edge row or column comes out black, the opposite one is lost);
/// frameserver does the exact rotation instead.
pub fn rotate(raster: Raster, degrees: f64) -> Result<Raster> {
    let turns = (degrees / 90.0).round();
    if !degrees.is_finite() || (degrees - turns * 90.0).abs() > 1e-3 {
        return Err(CodecError::UnsupportedRotation(degrees));
    }
    let t = match (turns as i64).rem_euclid(4) {
        0 => Transform::Identity,
        1 => Transform::Rotate90,
        2 => Transform::Rotate180,
        _ => Transform::Rotate270,
    };
    Ok(t.apply(raster))
}

/// Applies EXIF orientation `orientation` (tag 274) the way PIL's `ImageOps.exif_transpose`
/// does, so the result displays upright: 1 none, 2 mirror left-right, 3 rotate 180°,
/// 4 mirror top-bottom, 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90°
/// counter-clockwise. Other values leave the frame unchanged (as PIL does).
pub fn exif_transpose(raster: Raster, orientation: u32) -> Raster {
    let t = match orientation {
        2 => Transform::FlipLeftRight,
        3 => Transform::Rotate180,
        4 => Transform::FlipTopBottom,
        5 => Transform::Transpose,
        6 => Transform::Rotate270,
        7 => Transform::Transverse,
        8 => Transform::Rotate90,
        _ => Transform::Identity,
    };
    t.apply(raster)
}

/// The size PIL's `Image.thumbnail((max_w, max_h))` picks: unchanged if the image already
/// fits, else the aspect-preserving size that fits, rounded the way PIL rounds.
fn thumbnail_size(w: u32, h: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    if max_w >= w && max_h >= h {
        return (w, h);
    }
    let aspect = w as f64 / h as f64;
    let (x, y) = (max_w as f64, max_h as f64);
    // PIL: max(min(floor(n), ceil(n), key=key), 1); `min` keeps the first on ties.
    let pick = |n: f64, key: &dyn Fn(f64) -> f64| -> u32 {
        let (lo, hi) = (n.floor(), n.ceil());
        let best = if key(hi) < key(lo) { hi } else { lo };
        (best as u32).max(1)
    };
    if x / y >= aspect {
        let nx = pick(y * aspect, &|n| (aspect - n / y).abs());
        (nx, max_h)
    } else {
        let ny = pick(x / aspect, &|n| {
            if n == 0.0 {
                0.0
            } else {
                (aspect - x / n).abs()
            }
        });
        (max_w, ny)
    }
}

/// A preview like PIL's `thumbnail((max, max))`: aspect ratio kept, fits in `max`×`max`, never
/// enlarged (`max` 0 counts as 1). Like PIL (`reducing_gap=2`), large reductions first average
/// whole `f`×`f` blocks (trailing partial blocks are dropped, less than half an output pixel),
/// then a Catmull-Rom resize (PIL's `BICUBIC`) finishes; results match PIL closely, not bit-exactly.
pub fn thumbnail(raster: &Raster, max: u32) -> Raster {
    let max = max.max(1);
    let (w, h) = (raster.width(), raster.height());
    let (tw, th) = thumbnail_size(w, h, max, max);
    if (tw, th) == (w, h) {
        return raster.clone();
    }
    let fx = ((w as f64 / tw as f64 / 2.0) as u32).max(1);
    let fy = ((h as f64 / th as f64 / 2.0) as u32).max(1);
    let ch = raster.channels();
    let reduced;
    let (rw, rh, src) = if fx > 1 || fy > 1 {
        let r = reduce(
            raster.data(),
            w as usize,
            h as usize,
            ch,
            fx as usize,
            fy as usize,
        );
        reduced = r.2;
        (r.0 as u32, r.1 as u32, reduced.as_slice())
    } else {
        (w, h, raster.data())
    };
    use image::imageops::{resize, FilterType};
    let filter = FilterType::CatmullRom;
    let data = match raster {
        Raster::Rgb(_) => {
            let img = image::ImageBuffer::<image::Rgb<u8>, &[u8]>::from_raw(rw, rh, src);
            img.map(|i| resize(&i, tw, th, filter).into_raw())
        }
        Raster::Gray(_) => {
            let img = image::ImageBuffer::<image::Luma<u8>, &[u8]>::from_raw(rw, rh, src);
            img.map(|i| resize(&i, tw, th, filter).into_raw())
        }
    };
    // `from_raw` only fails for a short buffer, which the Raster invariant rules out.
    let data = data.unwrap_or_else(|| vec![0; tw as usize * th as usize * ch]);
    raster.with_pixels(tw, th, data)
}

/// Box-averages whole `fx`×`fy` blocks (PIL `reduce`, rounding to nearest).
fn reduce(
    src: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    fx: usize,
    fy: usize,
) -> (usize, usize, Vec<u8>) {
    let (rw, rh) = ((w / fx).max(1), (h / fy).max(1));
    let (fx, fy) = (fx.min(w), fy.min(h));
    let area = (fx * fy) as u32;
    let mut out = Vec::with_capacity(rw * rh * ch);
    let mut acc = vec![0u32; rw * ch];
    for ry in 0..rh {
        acc.fill(0);
        for row in src[ry * fy * w * ch..].chunks_exact(w * ch).take(fy) {
            for (rx, block) in row.chunks_exact(fx * ch).take(rw).enumerate() {
                let a = &mut acc[rx * ch..rx * ch + ch];
                for px in block.chunks_exact(ch) {
                    for (s, &v) in a.iter_mut().zip(px) {
                        *s += v as u32;
                    }
                }
            }
        }
        out.extend(acc.iter().map(|&s| ((s + area / 2) / area) as u8));
    }
    (rw, rh, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 wide, 3 tall:
    /// ```text
    /// a b
    /// c d
    /// e f
    /// ```
    fn gray_2x3() -> Raster {
        GrayImage::new(2, 3, b"abcdef".to_vec()).unwrap().into()
    }

    fn rgb_2x3() -> Raster {
        // Each pixel is (letter, letter + 100, letter + 200 wrapping) so channels must move together.
        let data = b"abcdef"
            .iter()
            .flat_map(|&c| [c, c.wrapping_add(100), c.wrapping_add(200)])
            .collect();
        RgbImage::new(2, 3, data).unwrap().into()
    }

    fn show(r: &Raster) -> (u32, u32, String) {
        let letters = r
            .data()
            .chunks(r.channels())
            .map(|p| p[0] as char)
            .collect();
        (r.width(), r.height(), letters)
    }

    fn check(r: &Raster, w: u32, h: u32, letters: &str) {
        assert_eq!(show(r), (w, h, letters.to_string()));
        if r.channels() == 3 {
            for p in r.data().chunks(3) {
                assert_eq!(p[1], p[0].wrapping_add(100));
                assert_eq!(p[2], p[0].wrapping_add(200));
            }
        }
    }

    #[test]
    fn rejects_bad_buffers() {
        assert!(RgbImage::new(2, 2, vec![0; 11]).is_err());
        assert!(RgbImage::new(0, 2, vec![]).is_err());
        assert!(GrayImage::new(2, 2, vec![0; 4]).is_ok());
        let e = RgbImage::new(2, 2, vec![0; 5]).unwrap_err().to_string();
        assert!(e.contains("5 bytes") && e.contains("expected 12"), "{e}");
    }

    #[test]
    fn rotations_counter_clockwise() {
        for src in [gray_2x3(), rgb_2x3()] {
            check(&rotate(src.clone(), 0.0).unwrap(), 2, 3, "abcdef");
            check(&rotate(src.clone(), 360.0).unwrap(), 2, 3, "abcdef");
            // 90° CCW: the right column becomes the top row.
            // b d f
            // a c e
            check(&rotate(src.clone(), 90.0).unwrap(), 3, 2, "bdface");
            // f e
            // d c
            // b a
            check(&rotate(src.clone(), 180.0).unwrap(), 2, 3, "fedcba");
            check(&rotate(src.clone(), -180.0).unwrap(), 2, 3, "fedcba");
            // 90° clockwise: the left column becomes the top row, read bottom-up.
            // e c a
            // f d b
            check(&rotate(src.clone(), -90.0).unwrap(), 3, 2, "ecafdb");
            check(&rotate(src.clone(), 270.0).unwrap(), 3, 2, "ecafdb");
            check(&rotate(src.clone(), 90.0000001).unwrap(), 3, 2, "bdface");
            assert!(matches!(
                rotate(src.clone(), 45.0),
                Err(CodecError::UnsupportedRotation(_))
            ));
            assert!(rotate(src, f64::NAN).is_err());
        }
    }

    #[test]
    fn exif_orientations() {
        for src in [gray_2x3(), rgb_2x3()] {
            let t = |o| exif_transpose(src.clone(), o);
            check(&t(1), 2, 3, "abcdef");
            check(&t(0), 2, 3, "abcdef");
            check(&t(9), 2, 3, "abcdef");
            // 2 mirror: b a / d c / f e
            check(&t(2), 2, 3, "badcfe");
            // 3 rotate 180
            check(&t(3), 2, 3, "fedcba");
            // 4 flip: e f / c d / a b
            check(&t(4), 2, 3, "efcdab");
            // 5 transpose: a c e / b d f
            check(&t(5), 3, 2, "acebdf");
            // 6 rotate 90° clockwise: e c a / f d b
            check(&t(6), 3, 2, "ecafdb");
            // 7 transverse: f d b / e c a
            check(&t(7), 3, 2, "fdbeca");
            // 8 rotate 90° counter-clockwise: b d f / a c e
            check(&t(8), 3, 2, "bdface");
        }
    }

    #[test]
    fn thumbnail_sizes_like_pil() {
        assert_eq!(thumbnail_size(1920, 1080, 256, 256), (256, 144));
        assert_eq!(thumbnail_size(1080, 1920, 256, 256), (144, 256));
        assert_eq!(thumbnail_size(100, 50, 256, 256), (100, 50));
        assert_eq!(thumbnail_size(1000, 1, 256, 256), (256, 1));
        assert_eq!(thumbnail_size(1, 1000, 256, 256), (1, 256));
        // 640x481: 256 / (640/481) = 192.4 -> 192
        assert_eq!(thumbnail_size(640, 481, 256, 256), (256, 192));
        assert_eq!(thumbnail_size(300, 300, 256, 256), (256, 256));
    }

    #[test]
    fn thumbnail_keeps_content() {
        // A horizontal gradient, 1000x500: thumbnail is 256x128 and still a gradient.
        let (w, h) = (1000u32, 500u32);
        let data = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| [(x * 255 / (w - 1)) as u8, 128, 7]))
            .collect();
        let t = thumbnail(&RgbImage::new(w, h, data).unwrap().into(), 256);
        assert_eq!((t.width(), t.height(), t.channels()), (256, 128, 3));
        let row = &t.data()[64 * 256 * 3..65 * 256 * 3];
        for x in 0..256usize {
            let expected = (x as f64 + 0.5) * 255.0 / 256.0;
            assert!(
                (row[x * 3] as f64 - expected).abs() < 3.0,
                "x={x}: {}",
                row[x * 3]
            );
            assert!((row[x * 3 + 1] as i32 - 128).abs() <= 1);
            assert!((row[x * 3 + 2] as i32 - 7).abs() <= 1);
        }
        let g = thumbnail(&GrayImage::new(3, 600, vec![9; 1800]).unwrap().into(), 256);
        assert_eq!((g.width(), g.height(), g.channels()), (1, 256, 1));
        assert!(g.data().iter().all(|&v| v == 9));
        // Already small: unchanged.
        let small = gray_2x3();
        assert_eq!(thumbnail(&small, 256), small);
        assert_eq!(thumbnail(&small, 0).width(), 1);
    }

    #[test]
    fn reduce_averages_blocks() {
        // 5x2 gray, factor 2x2 -> 2x1 (last column dropped).
        let src = [0, 2, 10, 20, 99, 4, 6, 30, 41, 99];
        let (w, h, out) = reduce(&src, 5, 2, 1, 2, 2);
        assert_eq!((w, h), (2, 1));
        assert_eq!(out, vec![3, 25]); // (0+2+4+6)/4 = 3, (10+20+30+41)/4 = 25.25
    }
}
