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

use md5::Digest;

use super::MediaError;

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

/// Decodes an image file's bytes to its native mode.
pub fn decode_native(bytes: &[u8], display: &str) -> Result<NativeImage, MediaError> {
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
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
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
    let bpp = format.size();
    let row = img.width * bpp;
    let mut data = Vec::with_capacity(row * img.height);
    for y in 0..img.height {
        data.extend_from_slice(&img.pixels[y * img.pitch..y * img.pitch + row]);
    }
    if mode == PixelMode::Cmyk && has_adobe_marker(bytes) {
        // Adobe writes inverted CMYK; Pillow reads it with raw mode "CMYK;I".
        data.iter_mut().for_each(|b| *b = 255 - *b);
    }
    Ok(NativeImage {
        width: img.width as u32,
        height: img.height as u32,
        mode,
        data,
    })
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
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| err(display, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
