//! Building chunks, single frames and previews from a task's source (spec §12–§13): zip of
//! JPEGs, zip of original files, or H.264 MP4, in frame order. Runs on blocking worker threads.

use std::path::Path;

use bytes::Bytes;
use rayon::prelude::*;

use crate::budget::{self, BudgetError, Reservation};
use crate::cache::Item;
use crate::codec::{self, CodecError, Raster, RgbImage, ZipChunk};
use crate::frames::{self, DecoderPool, FrameError, SeekTable};
use crate::media::{self, ColorMode, DecodedFrame, RgbConverter};
use crate::task::{ChunkType, DataSpec, ImageFrame, MediaSource, Quality};

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
    /// The build needs more memory than the process may ever use for it.
    #[error(transparent)]
    Memory(#[from] BudgetError),
    /// The build could not get its memory in time (everything is busy).
    #[error("{0}")]
    Busy(String),
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
    pub fn decode_video(
        &self,
        wanted: &[u64],
        emit: impl FnMut(u64, DecodedFrame) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let v = video_info(self);
        frames::check_source(v.path, v.name, v.stamp)?;
        frames::decode_frames(
            v.path,
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

/// What an item build makes (for its memory estimate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// A chunk (zip of JPEGs or MP4).
    Chunk,
    /// One frame (`type=frame`).
    Frame,
    /// The preview or context images.
    Small,
}

/// Memory a build needs at its start, reserved before it runs so that builds queue instead of
/// running past the budget: for a video, a decoder (unless a parked one will be continued), the
/// frames in flight between decoder and encoders, the encoder's state and the encoded output.
/// Image builds reserve per image as they decode ([`decode_oriented`]), so nothing here. The
/// output, once built, is counted exactly ([`crate::budget::Budget::account`]).
pub fn build_memory(src: &Source<'_>, frames: &[u64], quality: Quality, kind: BuildKind) -> u64 {
    let MediaSource::Video {
        width,
        height,
        rotation,
        ..
    } = &src.spec.media
    else {
        return 0;
    };
    let (w, h) = (*width as u64, *height as u64);
    let Some(&first) = frames.first() else {
        return 0;
    };
    let decoder = if src
        .pool
        .has_reader((src.data_id, src.version), first, src.seek)
    {
        0
    } else {
        media::decoder_memory_for(*width, *height)
    };
    let yuv = w * h * 3 / 2;
    let rgb = w * h * 3;
    let n = frames.len() as u64;
    let work = match (kind, src.chunk_type(quality)) {
        (BuildKind::Chunk, ChunkType::Video) => {
            let compressed = quality == Quality::Compressed;
            let (ow, oh) = codec::chunk_video_size(*width, *height, compressed);
            let out_frame = ow as u64 * oh as u64 * 3 / 2;
            // x264 keeps frames per thread (those it encodes in parallel and their references)
            // and its lookahead; the output of real footage at QP 1 is about a tenth of the raw
            // frames, a quarter leaves room. Measured with `examples/memory_floor` (1080p,
            // 2 cores: 15 MiB compressed, 58 MiB original, estimates 21 and 61).
            let encoder = out_frame * (4 + 2 * num_cpus::get() as u64) + (8 << 20);
            let staging = if *rotation != 0.0 { rgb * 2 } else { 0 };
            encoder + staging + n * out_frame / 4
        }
        // Frames queued for the JPEG encoders, and the JPEGs (about a third of RGB at most).
        (BuildKind::Chunk, ChunkType::Imageset) => 6 * (yuv + rgb) + n * rgb / 3,
        // A PNG: the RGB frame (twice if rotated) and the encoded file.
        (BuildKind::Frame, _) => yuv + 3 * rgb,
        (BuildKind::Small, _) => yuv + 2 * rgb,
    };
    decoder + work
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

/// What builds need to know of a task's video.
struct VideoInfo<'a> {
    path: &'a Path,
    /// The name clients know it by (relative to the upload or the share).
    name: &'a str,
    rotation: f64,
    stamp: &'a crate::task::FileStamp,
}

fn video_info<'a>(src: &Source<'a>) -> VideoInfo<'a> {
    match &src.spec.media {
        MediaSource::Video {
            path,
            name,
            rotation,
            stamp,
            ..
        } => VideoInfo {
            path: path.as_path(),
            name,
            rotation: *rotation,
            stamp,
        },
        MediaSource::Images => unreachable!("video_info on an image task"),
    }
}

/// Decoded frame → RGB (CVAT's conversion), rotated by the display matrix.
pub(crate) fn frame_raster(
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
    let rotation = video_info(src).rotation;
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
    let VideoInfo { name, rotation, .. } = video_info(src);
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
                path: name.to_owned(),
                reason: "no frames to encode".into(),
            })
        }
    };
    Ok(Item {
        bytes: Bytes::from(bytes),
        mime: "video/mp4",
    })
}

/// The bytes of an image task's source file, after checking it is the file the task was made
/// from (409/410 otherwise); errors name it as the client does.
fn read_source_image(img: &ImageFrame) -> Result<Vec<u8>, BuildError> {
    frames::check_source(&img.path, &img.name, &img.stamp)?;
    std::fs::read(&img.path).map_err(|e| BuildError::Read {
        path: img.name.clone(),
        reason: e.to_string(),
    })
}

/// Original bytes of an image as they go into an original chunk: unchanged, except EXIF-rotated
/// images and TIFFs, which are transposed and re-encoded (spec §12.1).
pub fn original_image_bytes(img: &ImageFrame) -> Result<(Vec<u8>, String), BuildError> {
    let bytes = read_source_image(img)?;
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
    let (raster, _memory) = decode_oriented(&bytes, &img.name)?;
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
/// expanded, 16-bit grey normalised). An image over the pixel limit (`--max-image-pixels`) is
/// refused from its header, before any pixel buffer is allocated.
pub fn decode_raster(bytes: &[u8], name: &str) -> Result<Raster, BuildError> {
    if let Ok(image::ImageFormat::Jpeg) = image::guess_format(bytes) {
        if let Ok(h) = turbojpeg::read_header(bytes) {
            media::image::check_pixels(name, h.width as u64, h.height as u64)?;
            let gray = h.colorspace == turbojpeg::Colorspace::Gray;
            let format = if gray {
                turbojpeg::PixelFormat::GRAY
            } else {
                turbojpeg::PixelFormat::RGB
            };
            // Not decodable by libjpeg-turbo as RGB (e.g. CMYK): the `image` crate below.
            if let Ok(img) = turbojpeg::decompress(bytes, format) {
                let (w, h) = (img.width as u32, img.height as u32);
                let data = media::image::tight_pixels(img);
                return Ok(if gray {
                    Raster::Gray(codec::GrayImage::new(w, h, data)?)
                } else {
                    Raster::Rgb(RgbImage::new(w, h, data)?)
                });
            }
        }
    }
    let img = media::image::decode_with_image(bytes, None, name)?;
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
        image::DynamicImage::ImageRgb8(rgb) => Raster::Rgb(rgb.try_into()?),
        other => Raster::Rgb(other.to_rgb8().try_into()?),
    })
}

/// Checks that an image file decodes (fully: a truncated or fake image fails here with the
/// decoder's reason), with the pixel limit checked from its header first and the decode's
/// memory counted; returns its size after EXIF orientation.
pub fn check_image(bytes: &[u8], name: &str) -> Result<(u32, u32), BuildError> {
    let (raster, _memory) = decode_counted(bytes, name, 1)?;
    let (w, h) = (raster.width(), raster.height());
    Ok(if media::image::exif_orientation(bytes) > 4 {
        (h, w)
    } else {
        (w, h)
    })
}

/// An image file decoded for re-encoding and EXIF-transposed, with the memory that takes
/// reserved in the process's budget (waiting for it if builds hold it all) for as long as the
/// returned reservation lives.
pub fn decode_oriented(bytes: &[u8], name: &str) -> Result<(Raster, Reservation), BuildError> {
    decode_counted(bytes, name, media::image::exif_orientation(bytes))
}

/// [`decode_raster`] with its memory reserved, then transposed for EXIF `orientation`.
fn decode_counted(
    bytes: &[u8],
    name: &str,
    orientation: u32,
) -> Result<(Raster, Reservation), BuildError> {
    let cost = media::image::decode_cost(bytes, name)?;
    // A transposed copy exists next to the decoded raster for a moment.
    let copy = if orientation == 1 {
        0
    } else {
        cost.width as u64 * cost.height as u64 * 3
    };
    let memory = budget::global().reserve_blocking(name, cost.bytes + copy)?;
    let raster = codec::exif_transpose(decode_raster(bytes, name)?, orientation);
    Ok((raster, memory))
}

/// A compressed (JPEG) frame of an image task: EXIF-transposed, converted, re-encoded.
fn image_jpeg(img: &ImageFrame, quality: u8) -> Result<Vec<u8>, BuildError> {
    let bytes = read_source_image(img)?;
    let (raster, _memory) = decode_oriented(&bytes, &img.name)?;
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
    let rotation = video_info(src).rotation;
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
    let (raster, png, _memory) = match &src.spec.media {
        MediaSource::Video { .. } => (video_frame_raster(src, abs)?, false, Reservation::none()),
        MediaSource::Images => {
            let img = src.image(abs)?;
            let bytes = read_source_image(img)?;
            let png = image_mime(&img.name) == "image/png";
            let (raster, memory) = decode_oriented(&bytes, &img.name)?;
            (raster, png, memory)
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
        // Errors name the files as the image is named: relative to the task's root.
        let root = img
            .path
            .ancestors()
            .nth(Path::new(&img.name).components().count())
            .unwrap_or(Path::new(""));
        for p in &img.related {
            let rel = p.strip_prefix(&common).unwrap_or(p).with_extension("jpg");
            let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
            let bytes = std::fs::read(p).map_err(|e| BuildError::Read {
                path: name.clone(),
                reason: e.to_string(),
            })?;
            let (raster, _memory) = decode_counted(&bytes, &name, 1)?;
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
