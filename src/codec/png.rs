//! PNG encoding of single frames (e.g. `GET …/data?type=frame&quality=original` of a video).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use super::{CodecError, Raster, Result};

/// Encodes `raster` as an 8-bit RGB or grayscale PNG with fast settings: the `png` crate's
/// `Fast` deflate and the Paeth filter (on 1080p frames as small as the adaptive filter for
/// smooth content, within 3% for noisy content, and faster than adaptive on both).
pub fn encode_png(raster: &Raster) -> Result<Vec<u8>> {
    let (width, height) = (raster.width(), raster.height());
    let color = match raster {
        Raster::Rgb(_) => ExtendedColorType::Rgb8,
        Raster::Gray(_) => ExtendedColorType::L8,
    };
    let mut out = Vec::with_capacity(raster.data().len() / 2 + 1024);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Paeth)
        .write_image(raster.data(), width, height, color)
        .map_err(|e| CodecError::Png {
            width,
            height,
            reason: e.to_string(),
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{GrayImage, RgbImage};

    #[test]
    fn png_round_trip() {
        let data: Vec<u8> = (0..31 * 17 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let rgb = Raster::Rgb(RgbImage::new(31, 17, data.clone()).unwrap());
        let png = encode_png(&rgb).unwrap();
        let back = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!(back.color(), image::ColorType::Rgb8);
        assert_eq!(back.into_rgb8().into_raw(), data);

        let gray = Raster::Gray(GrayImage::new(5, 3, (0..15).collect()).unwrap());
        let back = image::load_from_memory(&encode_png(&gray).unwrap()).unwrap();
        assert_eq!(back.color(), image::ColorType::L8);
        assert_eq!(back.into_luma8().into_raw(), (0..15).collect::<Vec<u8>>());
    }
}
