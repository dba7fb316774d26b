//! Building chunks, single frames and previews from a task's source (spec §12–§13): zip of
//! JPEGs, zip of original files, or H.264 MP4, in frame order. Runs on blocking worker threads.

use std::path::Path;

use bytes::Bytes;
use rayon::prelude::*;

use crate::cache::Item;
use crate::codec::{self, CodecError, Raster, RgbImage, ZipChunk};
use crate::frames::{self, DecoderPool, FrameError, SeekTable};
use crate::media::{self, ColorMode, DecodedFrame, RgbConverter};
use crate::store::{DataSpec, ImageFrame, MediaSource};
use crate::task::{ChunkType, Quality};

/// Errors building an item.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Frames(#[from] FrameError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Media(#[from] media::MediaError),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Read {
            path: String::new(),
            reason: e.to_string(),
        }
    }
}

/// Everything a build needs to know about a task's data.
pub struct Source<'a> {
    pub data_id: i64,
    pub version: i64,
    pub spec: &'a DataSpec,
    /// Image frames, indexed by absolute frame (image tasks only).
    pub images: &'a [ImageFrame],
    pub seek: &'a SeekTable,
    pub pool: &'a DecoderPool,
}

impl Source<'_> {
    /// Decodes the video's absolute frames `wanted` (in order) through the positioned decoders,
    /// after checking that the file is still the one the task was made from.
    fn decode_video(
        &self,
        wanted: &[u64],
        emit: impl FnMut(u64, DecodedFrame) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let (path, _, stamp) = video_info(self);
        frames::check_source(path, stamp)?;
        frames::decode_frames(
            path,
            self.seek,
            self.pool,
            (self.data_id, self.version),
            wanted,
            emit,
        )
    }

    fn chunk_type(&self, quality: Quality) -> ChunkType {
        match quality {
            Quality::Compressed => self.spec.compressed_chunk_type,
            Quality::Original => self.spec.original_chunk_type,
        }
    }

    fn image(&self, abs: u64) -> Result<&ImageFrame, BuildError> {
        self.images
            .get(abs as usize)
            .filter(|i| i.frame == abs)
            .ok_or_else(|| BuildError::Read {
                path: format!("frame {abs}"),
                reason: "no such image in the task".into(),
            })
    }
}

/// Builds the chunk holding absolute frames `frames` (ascending).
pub fn build_chunk(src: &Source<'_>, frames: &[u64], quality: Quality) -> Result<Item, BuildError> {
    let q = match quality {
        Quality::Compressed => src.spec.image_quality,
        Quality::Original => 100,
    };
    match (&src.spec.media, src.chunk_type(quality)) {
        (MediaSource::Video { .. }, ChunkType::Video) => video_mp4(src, frames, q),
        (MediaSource::Video { .. }, ChunkType::Imageset) => video_jpeg_zip(src, frames, q),
        (MediaSource::Images, _) if quality == Quality::Original => {
            images_original_zip(src, frames)
        }
        (MediaSource::Images, _) => images_jpeg_zip(src, frames, q),
    }
}

fn video_info<'a>(src: &Source<'a>) -> (&'a Path, f64, &'a crate::store::FileStamp) {
    match &src.spec.media {
        MediaSource::Video {
            path,
            rotation,
            stamp,
            ..
        } => (path.as_path(), *rotation, stamp),
        MediaSource::Images => unreachable!("video_info on an image task"),
    }
}

/// Decoded frame → RGB (CVAT's conversion), rotated by the display matrix.
fn frame_raster(
    rgb: &mut RgbConverter,
    frame: &DecodedFrame,
    rotation: f64,
) -> Result<Raster, BuildError> {
    let (w, h, data) = rgb.to_rgb(frame)?;
    let raster = Raster::Rgb(RgbImage::new(w, h, data)?);
    Ok(if rotation != 0.0 {
        codec::rotate(raster, rotation)?
    } else {
        raster
    })
}

/// Decodes on this thread while other threads encode the JPEGs (`codec::FrameJpegEncoder`:
/// straight from the YUV planes when the frame allows it).
fn video_jpeg_zip(src: &Source<'_>, frames: &[u64], quality: u8) -> Result<Item, BuildError> {
    let (_, rotation, _) = video_info(src);
    let jpegs = codec::encode_jpegs_overlapped::<BuildError>(quality, rotation, |submit| {
        src.decode_video(frames, |_, f| submit(f))
    })?;
    let mut zip = ZipChunk::with_capacity(jpegs.iter().map(|j| j.len() + 100).sum::<usize>() + 100);
    for (idx, jpeg) in jpegs.iter().enumerate() {
        zip.add(&codec::entry_name(idx, "jpeg"), jpeg)?;
    }
    Ok(Item {
        bytes: Bytes::from(zip.finish()?),
        mime: "application/zip",
    })
}

/// The chunk's MP4 encoder, opened at the first frame's size.
fn open_mp4(
    encoder: &mut Option<codec::Mp4Encoder>,
    width: u32,
    height: u32,
    quality: u8,
    compressed: bool,
) -> Result<&mut codec::Mp4Encoder, BuildError> {
    if encoder.is_none() {
        *encoder = Some(codec::Mp4Encoder::new(width, height, quality, compressed)?);
    }
    Ok(encoder.as_mut().expect("opened above"))
}

fn video_mp4(src: &Source<'_>, frames: &[u64], quality: u8) -> Result<Item, BuildError> {
    let (path, rotation, _) = video_info(src);
    let compressed = quality != 100;
    let mut encoder: Option<codec::Mp4Encoder> = None;
    let mut rgb = RgbConverter::new(ColorMode::Untagged);
    src.decode_video(frames, |_, f| {
        if rotation != 0.0 {
            let raster = frame_raster(&mut rgb, &f, rotation)?;
            let Raster::Rgb(img) = raster else {
                unreachable!("video frames are RGB")
            };
            let enc = open_mp4(&mut encoder, img.width(), img.height(), quality, compressed)?;
            enc.push_rgb(&img)?;
        } else {
            let enc = open_mp4(&mut encoder, f.width(), f.height(), quality, compressed)?;
            enc.push_decoded(&f)?;
        }
        Ok(())
    })?;
    let bytes = match encoder {
        Some(e) => e.finish()?,
        None => {
            return Err(BuildError::Read {
                path: path.display().to_string(),
                reason: "no frames to encode".into(),
            })
        }
    };
    Ok(Item {
        bytes: Bytes::from(bytes),
        mime: "video/mp4",
    })
}

/// Original bytes of an image as they go into an original chunk: unchanged, except EXIF-rotated
/// images and TIFFs, which are transposed and re-encoded (spec §12.1).
pub fn original_image_bytes(img: &ImageFrame) -> Result<(Vec<u8>, String), BuildError> {
    frames::check_source(&img.path, &img.stamp)?;
    let bytes = std::fs::read(&img.path).map_err(|e| BuildError::Read {
        path: img.name.clone(),
        reason: e.to_string(),
    })?;
    let ext = img
        .path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let orientation = media::image::exif_orientation(&bytes);
    let is_tiff = matches!(ext.to_ascii_lowercase().as_str(), "tif" | "tiff");
    if orientation == 1 && !is_tiff {
        return Ok((bytes, ext));
    }
    let raster = codec::exif_transpose(decode_raster(&bytes, &img.name)?, orientation);
    let out = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Jpeg) => codec::encode_jpeg(&raster, 100)?,
        Ok(image::ImageFormat::Tiff) => {
            encode_with_image(&raster, image::ImageFormat::Tiff, &img.name)?
        }
        _ => codec::encode_png(&raster)?,
    };
    Ok((out, ext))
}

fn encode_with_image(
    raster: &Raster,
    format: image::ImageFormat,
    name: &str,
) -> Result<Vec<u8>, BuildError> {
    let mut out = std::io::Cursor::new(Vec::new());
    let r = match raster {
        Raster::Rgb(i) => image::write_buffer_with_format(
            &mut out,
            i.data(),
            i.width(),
            i.height(),
            image::ExtendedColorType::Rgb8,
            format,
        ),
        Raster::Gray(i) => image::write_buffer_with_format(
            &mut out,
            i.data(),
            i.width(),
            i.height(),
            image::ExtendedColorType::L8,
            format,
        ),
    };
    r.map_err(|e| BuildError::Read {
        path: name.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(out.into_inner())
}

/// Decodes an image file to RGB or grey (spec §12.2 conversions: alpha dropped, palettes
/// expanded, 16-bit grey normalised).
pub fn decode_raster(bytes: &[u8], name: &str) -> Result<Raster, BuildError> {
    let bad = |e: String| BuildError::Read {
        path: name.to_owned(),
        reason: e,
    };
    if let Ok(image::ImageFormat::Jpeg) = image::guess_format(bytes) {
        if let Ok(h) = turbojpeg::read_header(bytes) {
            let gray = h.colorspace == turbojpeg::Colorspace::Gray;
            let format = if gray {
                turbojpeg::PixelFormat::GRAY
            } else {
                turbojpeg::PixelFormat::RGB
            };
            if let Ok(img) = turbojpeg::decompress(bytes, format) {
                let bpp = format.size();
                let mut data = Vec::with_capacity(img.width * img.height * bpp);
                for y in 0..img.height {
                    data.extend_from_slice(
                        &img.pixels[y * img.pitch..y * img.pitch + img.width * bpp],
                    );
                }
                let (w, h) = (img.width as u32, img.height as u32);
                return Ok(if gray {
                    Raster::Gray(codec::GrayImage::new(w, h, data)?)
                } else {
                    Raster::Rgb(RgbImage::new(w, h, data)?)
                });
            }
        }
    }
    let img = image::load_from_memory(bytes).map_err(|e| bad(e.to_string()))?;
    Ok(match img {
        image::DynamicImage::ImageLuma8(g) => Raster::Gray(g.try_into()?),
        image::DynamicImage::ImageLuma16(g) => {
            // I;16 → (a - min) / max * 255 as L, as CVAT does.
            let (w, h) = g.dimensions();
            let raw = g.into_raw();
            let min = raw.iter().copied().min().unwrap_or(0) as f64;
            let max = raw.iter().copied().max().unwrap_or(1).max(1) as f64;
            let data = raw
                .iter()
                .map(|&v| (((v as f64 - min) / max) * 255.0).round().clamp(0.0, 255.0) as u8)
                .collect();
            Raster::Gray(codec::GrayImage::new(w, h, data)?)
        }
        other => Raster::Rgb(other.to_rgb8().try_into()?),
    })
}

/// A compressed (JPEG) frame of an image task: EXIF-transposed, converted, re-encoded.
fn image_jpeg(img: &ImageFrame, quality: u8) -> Result<Vec<u8>, BuildError> {
    frames::check_source(&img.path, &img.stamp)?;
    let bytes = std::fs::read(&img.path).map_err(|e| BuildError::Read {
        path: img.name.clone(),
        reason: e.to_string(),
    })?;
    let orientation = media::image::exif_orientation(&bytes);
    let raster = codec::exif_transpose(decode_raster(&bytes, &img.name)?, orientation);
    Ok(codec::encode_jpeg(&raster, quality)?)
}

fn images_jpeg_zip(src: &Source<'_>, frames: &[u64], quality: u8) -> Result<Item, BuildError> {
    let images = frames
        .iter()
        .map(|&f| src.image(f))
        .collect::<Result<Vec<_>, _>>()?;
    // Images are independent: encode them in parallel, then write the zip in order.
    let jpegs = images
        .par_iter()
        .map(|img| image_jpeg(img, quality))
        .collect::<Result<Vec<_>, _>>()?;
    let mut zip = ZipChunk::new();
    for (i, j) in jpegs.iter().enumerate() {
        zip.add(&codec::entry_name(i, "jpeg"), j)?;
    }
    Ok(Item {
        bytes: Bytes::from(zip.finish()?),
        mime: "application/zip",
    })
}

fn images_original_zip(src: &Source<'_>, frames: &[u64]) -> Result<Item, BuildError> {
    let images = frames
        .iter()
        .map(|&f| src.image(f))
        .collect::<Result<Vec<_>, _>>()?;
    let files = images
        .par_iter()
        .map(|img| original_image_bytes(img))
        .collect::<Result<Vec<_>, _>>()?;
    let mut zip = ZipChunk::new();
    for (i, (bytes, ext)) in files.iter().enumerate() {
        zip.add(&codec::entry_name(i, ext), bytes)?;
    }
    Ok(Item {
        bytes: Bytes::from(zip.finish()?),
        mime: "application/zip",
    })
}

/// MIME type of an image file by extension.
pub fn image_mime(name: &str) -> &'static str {
    match Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("jpg" | "jpeg" | "jpe") => "image/jpeg",
        Some("png") => "image/png",
        Some("bmp") => "image/bmp",
        Some("gif") => "image/gif",
        Some("tif" | "tiff") => "image/tiff",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

/// One video frame as PNG (spec §13.1: video frames are served as PNG), exact decode.
pub fn video_frame_png(src: &Source<'_>, abs: u64) -> Result<Item, BuildError> {
    let raster = video_frame_raster(src, abs)?;
    Ok(Item {
        bytes: Bytes::from(codec::encode_png(&raster)?),
        mime: "image/png",
    })
}

fn video_frame_raster(src: &Source<'_>, abs: u64) -> Result<Raster, BuildError> {
    let (_, rotation, _) = video_info(src);
    let mut rgb = RgbConverter::new(ColorMode::Untagged);
    let mut out = None;
    src.decode_video(&[abs], |_, f| {
        out = Some(frame_raster(&mut rgb, &f, rotation)?);
        Ok(())
    })?;
    out.ok_or(BuildError::Frames(FrameError::FrameMissing(abs, abs)))
}

/// An original image frame: the file bytes (EXIF/TIFF handled as in original chunks).
pub fn image_frame_original(src: &Source<'_>, abs: u64) -> Result<Item, BuildError> {
    let img = src.image(abs)?;
    let (bytes, _) = original_image_bytes(img)?;
    Ok(Item {
        bytes: Bytes::from(bytes),
        mime: image_mime(&img.name),
    })
}

/// The preview: the first frame, thumbnailed into 256×256, JPEG (PNG for PNG sources).
pub fn preview(src: &Source<'_>, abs: u64) -> Result<Item, BuildError> {
    let (raster, png) = match &src.spec.media {
        MediaSource::Video { .. } => (video_frame_raster(src, abs)?, false),
        MediaSource::Images => {
            let img = src.image(abs)?;
            frames::check_source(&img.path, &img.stamp)?;
            let bytes = std::fs::read(&img.path)?;
            let orientation = media::image::exif_orientation(&bytes);
            let png = image_mime(&img.name) == "image/png";
            (
                codec::exif_transpose(decode_raster(&bytes, &img.name)?, orientation),
                png,
            )
        }
    };
    let thumb = if raster.width() <= 256 && raster.height() <= 256 {
        raster
    } else {
        codec::thumbnail(&raster, 256)
    };
    Ok(if png {
        Item {
            bytes: Bytes::from(codec::encode_png(&thumb)?),
            mime: "image/png",
        }
    } else {
        Item {
            bytes: Bytes::from(codec::encode_jpeg(&thumb, 75)?),
            mime: "image/jpeg",
        }
    })
}

/// Context images of a frame as a deflated zip: names relative to their common directory,
/// extension `.jpg`, JPEG quality 100 (spec §12.5).
pub fn context_images(img: &ImageFrame) -> Result<Item, BuildError> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zw = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let common = common_dir(&img.related);
        for p in &img.related {
            let rel = p.strip_prefix(&common).unwrap_or(p).with_extension("jpg");
            let bytes = std::fs::read(p).map_err(|e| BuildError::Read {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?;
            let raster = decode_raster(&bytes, &p.display().to_string())?;
            zw.start_file(rel.to_string_lossy(), opts)
                .map_err(CodecError::from)?;
            zw.write_all(&codec::encode_jpeg(&raster, 100)?)?;
        }
        zw.finish().map_err(CodecError::from)?;
    }
    Ok(Item {
        bytes: Bytes::from(out.into_inner()),
        mime: "application/zip",
    })
}

fn common_dir(paths: &[std::path::PathBuf]) -> std::path::PathBuf {
    let mut it = paths.iter();
    let Some(first) = it.next() else {
        return Default::default();
    };
    let mut common = first.parent().map(Path::to_path_buf).unwrap_or_default();
    for p in it {
        while !p.starts_with(&common) {
            if !common.pop() {
                break;
            }
        }
    }
    common
}
