//! PNG writers for segmentation masks: 8-bit palette PNGs from an index map and a palette, and
//! 8/16-bit grayscale PNGs for instance-id maps (MOTS, Cityscapes `instanceIds`).
//!
//! Note: Datumaro itself writes VOC/Segmentation mask/CamVid/Cityscapes class masks as 24-bit
//! RGB (`paint_mask` then `cv2.imwrite`), not as palette PNGs; [`paint_indices`] gives those
//! RGB pixels for [`super::encode_png`], and the palette writer is for formats or callers that
//! want a palette (same colours, smaller files).

use png::{BitDepth, ColorType, Compression, Encoder};

use super::{CodecError, Result};

fn check(width: u32, height: u32, len: usize, per_pixel: usize) -> Result<()> {
    let want = width as usize * height as usize * per_pixel;
    if width == 0 || height == 0 || len != want {
        return Err(CodecError::InvalidRaster {
            kind: "mask",
            width,
            height,
            reason: format!("{len} values for {want}"),
        });
    }
    Ok(())
}

fn encode(
    data: &[u8],
    width: u32,
    height: u32,
    color: ColorType,
    depth: BitDepth,
    palette: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    let err = |e: png::EncodingError| CodecError::Png {
        width,
        height,
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(depth);
    enc.set_compression(Compression::Fast);
    if let Some(p) = palette {
        enc.set_palette(p);
    }
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(data).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}

/// An 8-bit palette PNG: `indices` row-major (`width * height` values), `palette` entry `i` is
/// the RGB colour of index `i` (at most 256 entries). Every index used must have an entry.
pub fn encode_indexed_png(
    indices: &[u8],
    width: u32,
    height: u32,
    palette: &[[u8; 3]],
) -> Result<Vec<u8>> {
    check(width, height, indices.len(), 1)?;
    let bad = |reason: String| CodecError::InvalidRaster {
        kind: "palette mask",
        width,
        height,
        reason,
    };
    if palette.is_empty() || palette.len() > 256 {
        return Err(bad(format!("a palette of {} colours", palette.len())));
    }
    if let Some(&i) = indices.iter().find(|&&i| i as usize >= palette.len()) {
        return Err(bad(format!(
            "index {i} has no colour in a palette of {}",
            palette.len()
        )));
    }
    let flat: Vec<u8> = palette.iter().flatten().copied().collect();
    encode(
        indices,
        width,
        height,
        ColorType::Indexed,
        BitDepth::Eight,
        Some(flat),
    )
}

/// An 8-bit grayscale PNG of row-major values.
pub fn encode_gray8_png(values: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    check(width, height, values.len(), 1)?;
    encode(
        values,
        width,
        height,
        ColorType::Grayscale,
        BitDepth::Eight,
        None,
    )
}

/// A 16-bit grayscale PNG of row-major values (instance ids such as Cityscapes'
/// `class_id * 1000 + instance`).
pub fn encode_gray16_png(values: &[u16], width: u32, height: u32) -> Result<Vec<u8>> {
    check(width, height, values.len(), 1)?;
    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    encode(
        &be,
        width,
        height,
        ColorType::Grayscale,
        BitDepth::Sixteen,
        None,
    )
}

/// Datumaro's `paint_mask`: row-major indices → RGB bytes; an index without a colour becomes
/// `(255, 255, 255)` (Datumaro's `(-1, -1, -1) mod 256`).
pub fn paint_indices(indices: &[u8], palette: &[[u8; 3]]) -> Vec<u8> {
    indices
        .iter()
        .flat_map(|&i| palette.get(i as usize).copied().unwrap_or([255; 3]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_png_round_trips_indices_and_colours() {
        let palette = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [250, 50, 83]];
        let (w, h) = (5u32, 3u32);
        let idx: Vec<u8> = (0..w * h).map(|i| (i % 4) as u8).collect();
        let png = encode_indexed_png(&idx, w, h, &palette).unwrap();
        // The palette survives as written (PLTE chunk), and indices decode to their colours.
        let mut dec = png::Decoder::new(std::io::Cursor::new(&png));
        dec.set_transformations(png::Transformations::IDENTITY);
        let mut reader = dec.read_info().unwrap();
        let plte = reader.info().palette.clone().unwrap();
        assert_eq!(&plte[..], &palette.concat()[..]);
        let mut buf = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!(&buf[..idx.len()], &idx[..]);
        let rgb = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(rgb.dimensions(), (w, h));
        assert_eq!(rgb.as_raw(), &paint_indices(&idx, &palette));
        assert!(encode_indexed_png(&[4], 1, 1, &palette).is_err());
        assert!(encode_indexed_png(&idx, w, h + 1, &palette).is_err());
    }

    #[test]
    fn gray16_png_keeps_instance_ids() {
        let vals = [0u16, 1, 26001, 65535, 7000, 300];
        let png = encode_gray16_png(&vals, 3, 2).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma16();
        assert_eq!(img.as_raw(), &vals);
        let png = encode_gray8_png(&[0, 3, 255, 7], 2, 2).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.as_raw(), &[0, 3, 255, 7]);
        assert_eq!(
            paint_indices(&[1, 9], &[[0; 3], [1, 2, 3]]),
            [1, 2, 3, 255, 255, 255]
        );
    }
}
