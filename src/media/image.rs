//! Still images decoded in their **native pixel mode**, the way Pillow's `Image.open(f).tobytes()`
//! lays them out: CVAT's image checksum is the md5 of those bytes (spec §4.3), not of the file.
//!
//! * PNG through the `png` crate with no transformations: palette images stay palette indices
//!   (`P`), 1-bit stays packed (`1`), 2/4-bit grey is scaled to `L`, 16-bit grey is `I;16`
//!   (little-endian), 16-bit colour keeps the high byte of each sample (Pillow's `RGB;16B` etc.),
//!   16-bit grey+alpha becomes RGBA.
//! * JPEG through libjpeg-turbo (the decoder Pillow uses, same default IDCT and upsampling):
//!   `L`, `RGB` or `CMYK` (Adobe-inverted, as Pillow's `CMYK;I`).
//! * GIF through the `gif` crate as palette indices (`P`).
//! * Everything else (BMP, TIFF, WebP, …) through the `image` crate in its native colour type.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use md5::Digest;

use super::MediaError;

/// The default pixel limit (`--max-image-pixels`): 200 megapixels, near Pillow's
/// `MAX_IMAGE_PIXELS` decompression-bomb error threshold (2 x 89.5 MP).
pub const DEFAULT_MAX_PIXELS: u64 = 200_000_000;

static MAX_PIXELS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_PIXELS);

/// Sets the process-wide pixel limit every image decoder checks (width x height, read from the
/// header before any pixel buffer is allocated).
pub fn set_max_pixels(limit: u64) {
    MAX_PIXELS.store(limit.max(1), Ordering::Relaxed);
}

/// The process-wide pixel limit.
pub fn max_pixels() -> u64 {
    MAX_PIXELS.load(Ordering::Relaxed)
}

/// Refuses an image of `width` x `height` pixels above the process's limit.
pub fn check_pixels(display: &str, width: u64, height: u64) -> Result<(), MediaError> {
    let limit = max_pixels();
    if width.saturating_mul(height) > limit {
        return Err(MediaError::TooManyPixels {
            path: display.to_owned(),
            width,
            height,
            limit,
        });
    }
    Ok(())
}

/// What decoding an image will take, from its header: size and the bytes its decoders hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCost {
    pub width: u32,
    pub height: u32,
    /// Peak bytes of decoding to RGB/grey ([`crate::chunks::decode_raster`]): the output, plus
    /// the native buffer when the `image` crate converts, plus libjpeg's whole-image coefficient
    /// buffer for progressive JPEGs.
    pub bytes: u64,
}

/// Reads an image's header (no pixel is decoded) and checks it against the pixel limit.
pub fn decode_cost(bytes: &[u8], display: &str) -> Result<DecodeCost, MediaError> {
    let (width, height, per_pixel) = match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => {
            let h = turbojpeg::read_header(bytes).map_err(|e| err(display, e))?;
            let ch = match h.colorspace {
                turbojpeg::Colorspace::Gray => 1,
                _ => 3,
            };
            // Progressive (and multi-scan) JPEGs keep every DCT coefficient (2 bytes) until the
            // last scan: up to 2 bytes per sample.
            let coefficients = if h.is_progressive { 2 * ch } else { 0 };
            (h.width as u32, h.height as u32, ch + coefficients)
        }
        _ => {
            let dec = image::ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .map_err(|e| err(display, e))?
                .into_decoder()
                .map_err(|e| err(display, e))?;
            let (w, h) = image::ImageDecoder::dimensions(&dec);
            let native = image::ImageDecoder::color_type(&dec).bytes_per_pixel() as u64;
            // Converted to RGB (3) or grey (1) unless it already is.
            (w, h, native + 3)
        }
    };
    check_pixels(display, width as u64, height as u64)?;
    Ok(DecodeCost {
        width,
        height,
        bytes: width as u64 * height as u64 * per_pixel,
    })
}

/// `image` crate limits matching the pixel limit: no side longer than the limit, and no more
/// than the largest pixel layout (RGBA, 16 bits) of a picture at the limit.
pub fn image_limits() -> image::Limits {
    let px = max_pixels();
    let side = u32::try_from(px).unwrap_or(u32::MAX);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(px.saturating_mul(8));
    limits
}

/// Decodes an image with the `image` crate, refusing it from its header when it is over the
/// pixel limit; `format` when known, else guessed.
pub fn decode_with_image(
    bytes: &[u8],
    format: Option<image::ImageFormat>,
    display: &str,
) -> Result<image::DynamicImage, MediaError> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes));
    match format {
        Some(f) => reader.set_format(f),
        None => reader = reader.with_guessed_format().map_err(|e| err(display, e))?,
    }
    reader.limits(image_limits());
    let dec = reader.into_decoder().map_err(|e| err(display, e))?;
    let (w, h) = image::ImageDecoder::dimensions(&dec);
    check_pixels(display, w as u64, h as u64)?;
    image::DynamicImage::from_decoder(dec).map_err(|e| err(display, e))
}

/// Pillow's name for a pixel layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelMode {
    /// 1-bit, 8 pixels per byte, rows padded to a byte.
    Bilevel,
    L,
    LA,
    P,
    Rgb,
    Rgba,
    Cmyk,
    /// 16-bit grey, little-endian.
    I16,
}

impl PixelMode {
    /// Pillow's mode string.
    pub fn pillow_name(self) -> &'static str {
        match self {
            PixelMode::Bilevel => "1",
            PixelMode::L => "L",
            PixelMode::LA => "LA",
            PixelMode::P => "P",
            PixelMode::Rgb => "RGB",
            PixelMode::Rgba => "RGBA",
            PixelMode::Cmyk => "CMYK",
            PixelMode::I16 => "I;16",
        }
    }
}

/// A decoded image in its native mode.
#[derive(Debug, Clone)]
pub struct NativeImage {
    pub width: u32,
    pub height: u32,
    pub mode: PixelMode,
    /// Pixel bytes exactly as Pillow's `tobytes()` returns them.
    pub data: Vec<u8>,
}

impl NativeImage {
    /// md5 of the pixel bytes, lowercase hex: CVAT's image checksum.
    pub fn md5_hex(&self) -> String {
        super::convert::hex(&md5::Md5::digest(&self.data))
    }
}

/// Width, height (swapped when EXIF orientation > 4, as CVAT does) and optional checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProps {
    pub width: u32,
    pub height: u32,
    pub checksum: Option<String>,
}

/// Reads an image's properties; decodes the pixels only when `checksum` is asked for.
/// `display` is the name used in error messages (CVAT uses the path relative to the data root).
pub fn probe(path: &Path, display: &str, checksum: bool) -> Result<ImageProps, MediaError> {
    let bytes = std::fs::read(path).map_err(|e| err(display, e))?;
    let (width, height, checksum) = if checksum {
        let img = decode_native(&bytes, display)?;
        (img.width, img.height, Some(img.md5_hex()))
    } else {
        let (w, h) = image::ImageReader::new(Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| err(display, e))?
            .into_dimensions()
            .map_err(|e| err(display, e))?;
        check_pixels(display, w as u64, h as u64)?;
        (w, h, None)
    };
    let (width, height) = if exif_orientation(&bytes) > 4 {
        (height, width)
    } else {
        (width, height)
    };
    Ok(ImageProps {
        width,
        height,
        checksum,
    })
}

/// EXIF orientation (tag 274) of an image, 1 when absent or unreadable.
pub fn exif_orientation(bytes: &[u8]) -> u32 {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        })
        .unwrap_or(1)
}

/// Decodes an image file's bytes to its native mode. Images over the pixel limit are refused
/// from their header, here for every format below (their decoders also carry allocation
/// limits); the decode's memory is counted in the process's budget.
pub fn decode_native(bytes: &[u8], display: &str) -> Result<NativeImage, MediaError> {
    let cost = decode_cost(bytes, display)?;
    let _memory = crate::budget::global().reserve_blocking(display, cost.bytes)?;
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => decode_png(bytes, display),
        Ok(image::ImageFormat::Jpeg) => decode_jpeg(bytes, display),
        Ok(image::ImageFormat::Gif) => decode_gif(bytes, display),
        Ok(format) => decode_generic(bytes, format, display),
        Err(e) => Err(err(display, e)),
    }
}

fn err(display: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Image {
        path: display.to_owned(),
        reason: e.to_string(),
    }
}

fn decode_png(bytes: &[u8], display: &str) -> Result<NativeImage, MediaError> {
    use png::{BitDepth, ColorType};
    let limit = png::Limits {
        bytes: usize::try_from(max_pixels().saturating_mul(8)).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limit);
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| err(display, e))?;
    let mut raw = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut raw).map_err(|e| err(display, e))?;
    raw.truncate(info.buffer_size());
    let (w, h) = (info.width as usize, info.height as usize);
    let line = info.line_size;
    let depth = info.bit_depth as u8;
    let (mode, data) = match (info.color_type, info.bit_depth) {
        (ColorType::Grayscale, BitDepth::One) => (PixelMode::Bilevel, raw),
        (ColorType::Grayscale, BitDepth::Two | BitDepth::Four) => {
            let scale = if depth == 2 { 0x55 } else { 0x11 };
            (PixelMode::L, unpack_bits(&raw, w, h, line, depth, scale))
        }
        (ColorType::Grayscale, BitDepth::Eight) => (PixelMode::L, raw),
        (ColorType::Grayscale, BitDepth::Sixteen) => {
            // Pillow's I;16 is little-endian; PNG stores big-endian.
            let mut d = raw;
            d.chunks_exact_mut(2).for_each(|c| c.swap(0, 1));
            (PixelMode::I16, d)
        }
        (ColorType::Indexed, BitDepth::Eight) => (PixelMode::P, raw),
        (ColorType::Indexed, _) => (PixelMode::P, unpack_bits(&raw, w, h, line, depth, 1)),
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => (PixelMode::LA, raw),
        (ColorType::Rgb, BitDepth::Eight) => (PixelMode::Rgb, raw),
        (ColorType::Rgba, BitDepth::Eight) => (PixelMode::Rgba, raw),
        // 16-bit colour: Pillow keeps the most significant byte of each sample.
        // Pillow opens 16-bit grey+alpha as RGBA (L, L, L, A), high bytes.
        (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => (
            PixelMode::Rgba,
            raw.chunks_exact(4)
                .flat_map(|c| [c[0], c[0], c[0], c[2]])
                .collect(),
        ),
        (ColorType::Rgb, BitDepth::Sixteen) => (PixelMode::Rgb, high_bytes(&raw)),
        (ColorType::Rgba, BitDepth::Sixteen) => (PixelMode::Rgba, high_bytes(&raw)),
        (ct, bd) => {
            return Err(err(
                display,
                format!("unsupported PNG layout {ct:?} {bd:?}"),
            ))
        }
    };
    Ok(NativeImage {
        width: w as u32,
        height: h as u32,
        mode,
        data,
    })
}

/// Unpacks sub-byte samples (MSB first, rows padded to a byte) to one byte each, times `scale`.
fn unpack_bits(raw: &[u8], w: usize, h: usize, line: usize, depth: u8, scale: u8) -> Vec<u8> {
    let per_byte = 8 / depth as usize;
    let mask = (1u8 << depth) - 1;
    let mut out = Vec::with_capacity(w * h);
    for row in raw.chunks(line).take(h) {
        for x in 0..w {
            let byte = row[x / per_byte];
            let shift = 8 - depth as usize * (x % per_byte + 1);
            out.push(((byte >> shift) & mask) * scale);
        }
    }
    out
}

fn high_bytes(raw: &[u8]) -> Vec<u8> {
    raw.chunks_exact(2).map(|c| c[0]).collect()
}

fn decode_jpeg(bytes: &[u8], display: &str) -> Result<NativeImage, MediaError> {
    let header = turbojpeg::read_header(bytes).map_err(|e| err(display, e))?;
    let (format, mode) = match header.colorspace {
        turbojpeg::Colorspace::Gray => (turbojpeg::PixelFormat::GRAY, PixelMode::L),
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => {
            (turbojpeg::PixelFormat::CMYK, PixelMode::Cmyk)
        }
        _ => (turbojpeg::PixelFormat::RGB, PixelMode::Rgb),
    };
    let img = turbojpeg::decompress(bytes, format).map_err(|e| err(display, e))?;
    let (width, height) = (img.width, img.height);
    let mut data = tight_pixels(img);
    if mode == PixelMode::Cmyk && has_adobe_marker(bytes) {
        // Adobe writes inverted CMYK; Pillow reads it with raw mode "CMYK;I".
        data.iter_mut().for_each(|b| *b = 255 - *b);
    }
    Ok(NativeImage {
        width: width as u32,
        height: height as u32,
        mode,
        data,
    })
}

/// The pixels of a decompressed JPEG without row padding: the buffer itself when rows are
/// tight (as `turbojpeg::decompress` makes them), else a copy.
pub fn tight_pixels(img: turbojpeg::Image<Vec<u8>>) -> Vec<u8> {
    let row = img.width * img.format.size();
    if img.pitch == row {
        let mut pixels = img.pixels;
        pixels.truncate(row * img.height);
        return pixels;
    }
    let mut data = Vec::with_capacity(row * img.height);
    for y in 0..img.height {
        data.extend_from_slice(&img.pixels[y * img.pitch..y * img.pitch + row]);
    }
    data
}

/// Whether a JPEG has an Adobe APP14 segment (scans the markers before the first scan).
fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() && bytes[i] == 0xFF {
        let marker = bytes[i + 1];
        if marker == 0xDA {
            break;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xEE && bytes.get(i + 4..i + 9) == Some(b"Adobe") {
            return true;
        }
        i += 2 + len;
    }
    false
}

fn decode_gif(bytes: &[u8], display: &str) -> Result<NativeImage, MediaError> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    // One byte per pixel (indices): a frame may not hold more than the pixel limit.
    if let Some(limit) = std::num::NonZeroU64::new(max_pixels()) {
        opts.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut dec = opts
        .read_info(Cursor::new(bytes))
        .map_err(|e| err(display, e))?;
    let (w, h) = (dec.width() as usize, dec.height() as usize);
    let background = dec.bg_color().unwrap_or(0) as u8;
    let frame = dec
        .read_next_frame()
        .map_err(|e| err(display, e))?
        .ok_or_else(|| err(display, "the GIF has no frames"))?;
    // Place the first frame on a canvas filled with the background index.
    let mut data = vec![background; w * h];
    let (fl, ft, fw) = (
        frame.left as usize,
        frame.top as usize,
        frame.width as usize,
    );
    for (y, row) in frame.buffer.chunks(fw.max(1)).enumerate() {
        let cy = ft + y;
        if cy >= h {
            break;
        }
        for (x, &v) in row.iter().enumerate() {
            let cx = fl + x;
            if cx < w {
                data[cy * w + cx] = v;
            }
        }
    }
    Ok(NativeImage {
        width: w as u32,
        height: h as u32,
        mode: PixelMode::P,
        data,
    })
}

fn decode_generic(
    bytes: &[u8],
    format: image::ImageFormat,
    display: &str,
) -> Result<NativeImage, MediaError> {
    let img = decode_with_image(bytes, Some(format), display)?;
    let (width, height) = (img.width(), img.height());
    let (mode, data) = match img {
        image::DynamicImage::ImageLuma8(b) => (PixelMode::L, b.into_raw()),
        image::DynamicImage::ImageLumaA8(b) => (PixelMode::LA, b.into_raw()),
        image::DynamicImage::ImageRgb8(b) => (PixelMode::Rgb, b.into_raw()),
        image::DynamicImage::ImageRgba8(b) => (PixelMode::Rgba, b.into_raw()),
        image::DynamicImage::ImageLuma16(b) => (
            PixelMode::I16,
            b.into_raw().iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        image::DynamicImage::ImageRgb16(b) => (
            PixelMode::Rgb,
            b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        ),
        image::DynamicImage::ImageRgba16(b) => (
            PixelMode::Rgba,
            b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        ),
        other if other.color().has_alpha() => (PixelMode::Rgba, other.to_rgba8().into_raw()),
        other => (PixelMode::Rgb, other.to_rgb8().into_raw()),
    };
    Ok(NativeImage {
        width,
        height,
        mode,
        data,
    })
}

/// Test images that declare more pixels than they hold (decompression bombs), tiny on disk.
#[cfg(test)]
pub(crate) mod bombs {
    /// A valid baseline greyscale JPEG of one colour: Huffman tables with a single 1-bit code
    /// (DC difference 0, end of block), so each 8x8 block takes 2 bits.
    pub(crate) fn grey_jpeg(width: u16, height: u16) -> Vec<u8> {
        let blocks = (width as usize).div_ceil(8) * (height as usize).div_ceil(8);
        let one_code: Vec<u8> = [&[1u8][..], &[0; 15], &[0]].concat();
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0, 67, 0];
        j.extend([1u8; 64]);
        j.extend([0xFF, 0xC0, 0, 11, 8]);
        j.extend(height.to_be_bytes());
        j.extend(width.to_be_bytes());
        j.extend([1, 1, 0x11, 0]);
        for class in [0x00, 0x10] {
            j.extend([0xFF, 0xC4, 0, 20, class]);
            j.extend(&one_code);
        }
        j.extend([0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
        j.extend(vec![0u8; (2 * blocks).div_ceil(8)]);
        j.extend([0xFF, 0xD9]);
        j
    }

    /// A PNG whose IHDR declares `width` x `height` RGB pixels (its data is a few bytes).
    pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend(kind);
            c.extend(data);
            let mut h = crc32fast::Hasher::new();
            h.update(kind);
            h.update(data);
            c.extend(h.finalize().to_be_bytes());
            c
        };
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        p.extend(chunk(b"IHDR", &ihdr));
        // A zlib stream of a few zero bytes.
        p.extend(chunk(
            b"IDAT",
            &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
        ));
        p.extend(chunk(b"IEND", b""));
        p
    }

    /// A GIF whose logical screen and only frame are `width` x `height`.
    pub(crate) fn gif(width: u16, height: u16) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend(width.to_le_bytes());
        g.extend(height.to_le_bytes());
        g.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]); // a 2-colour global palette
        g.push(0x2C);
        g.extend([0, 0, 0, 0]);
        g.extend(width.to_le_bytes());
        g.extend(height.to_le_bytes());
        g.extend([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_over_the_pixel_limit_are_refused_from_their_header() {
        // 30000 x 30000 (900 MP) against the default 200 MP: refused before any allocation (the
        // JPEG would take 900 MB to decode), with the name and the size.
        let cases: [(&str, Vec<u8>, &str); 3] = [
            ("photo.jpg", bombs::grey_jpeg(30000, 30000), "30000x30000"),
            ("pic.png", bombs::png(30000, 30000), "30000x30000"),
            ("anim.gif", bombs::gif(65000, 65000), "65000x65000"),
        ];
        for (name, bytes, size) in &cases {
            assert!(bytes.len() < 4 << 20, "{name} is small on disk");
            let want = format!(
                "{name}: {size} pixels is more than the limit of 200000000 (--max-image-pixels)"
            );
            let e = decode_cost(bytes, name).unwrap_err();
            assert_eq!(e.to_string(), want);
            let e = decode_native(bytes, name).unwrap_err();
            assert!(matches!(e, MediaError::TooManyPixels { .. }), "{name}: {e}");
            assert_eq!(e.to_string(), want);
        }
        let e = decode_with_image(&cases[1].1, None, "pic.png").unwrap_err();
        assert!(matches!(e, MediaError::TooManyPixels { .. }), "{e}");
    }

    #[test]
    fn images_under_the_limit_decode_with_their_cost() {
        let jpeg = bombs::grey_jpeg(4000, 3000);
        let cost = decode_cost(&jpeg, "ok.jpg").unwrap();
        assert_eq!(
            (cost.width, cost.height, cost.bytes),
            (4000, 3000, 12_000_000)
        );
        let img = decode_native(&jpeg, "ok.jpg").unwrap();
        assert_eq!(
            (img.width, img.height, img.mode),
            (4000, 3000, PixelMode::L)
        );
        assert!(img.data.iter().all(|&v| v == 128), "one grey colour");
        let gif = decode_cost(&bombs::gif(40, 30), "small.gif").unwrap();
        assert_eq!((gif.width, gif.height), (40, 30));
    }

    #[test]
    fn decoded_jpeg_pixels_are_not_copied() {
        let jpeg = bombs::grey_jpeg(64, 48);
        let img = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::GRAY).unwrap();
        let ptr = img.pixels.as_ptr();
        let data = tight_pixels(img);
        assert_eq!((data.as_ptr(), data.len()), (ptr, 64 * 48));
        // Padded rows are packed.
        let padded = turbojpeg::Image {
            pixels: (0..12u8).collect::<Vec<_>>(),
            width: 2,
            pitch: 4,
            height: 3,
            format: turbojpeg::PixelFormat::GRAY,
        };
        assert_eq!(tight_pixels(padded), vec![0, 1, 4, 5, 8, 9]);
    }

    #[test]
    fn unpacks_two_bit_grey_like_pillow() {
        // One row of 5 pixels at 2 bits: 00 01 10 11 | 01 (padded).
        let raw = [0b0001_1011, 0b0100_0000];
        assert_eq!(
            unpack_bits(&raw, 5, 1, 2, 2, 0x55),
            vec![0, 85, 170, 255, 85]
        );
    }

    #[test]
    fn rejects_garbage_with_the_file_name() {
        let e = decode_native(b"not an image at all", "x/y.png").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to parse image file 'x/y.png'"),
            "{e}"
        );
    }
}
