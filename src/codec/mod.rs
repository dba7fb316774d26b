//! Chunk encoders: everything that turns frames into the bytes CVAT's web UI downloads
//! (spec §12 chunk formats, §17 UI requirements).
//!
//! * [`Raster`] ([`RgbImage`] / [`GrayImage`]): the frames chunk builders produce, with the
//!   lossless 90° [`rotate`] for display matrices, [`exif_transpose`] and a PIL-like
//!   [`thumbnail`].
//! * [`encode_jpeg`] (libjpeg-turbo) and [`encode_png`] for single frames and zip chunks.
//! * [`FrameJpegEncoder`]: decoded video frames → JPEG, straight from YUV 4:2:0 planes when it
//!   can; [`encode_jpegs_overlapped`] runs it on other threads while the caller decodes.
//! * [`ZipChunk`]: the zip chunk writer (stored entries `000000.jpeg`, …), plus
//!   [`read_zip_entry`] / [`zip_entry_count`] to serve one frame out of a cached chunk.
//! * [`Mp4Encoder`]: H.264 Constrained Baseline MP4 video chunks (libx264 through FFmpeg).
//!
//! All encoders are `Send` (they run on blocking worker threads) and report bad input as
//! [`CodecError`], never by panicking.

mod frame_jpeg;
mod jpeg;
mod mp4;
mod overlap;
mod png;
mod png_indexed;
mod raster;
mod zip;

pub use self::frame_jpeg::{encode_jpegs_overlapped, FrameJpegEncoder};
pub use self::jpeg::encode_jpeg;
pub use self::mp4::{chunk_video_size, qp_from_quality, Mp4Encoder, MAX_VIDEO_PIXELS};
pub use self::overlap::encode_overlapped;
pub use self::png::encode_png;
pub use self::png_indexed::{
    encode_gray16_png, encode_gray8_png, encode_indexed_png, paint_indices,
};
pub use self::raster::{exif_transpose, rotate, thumbnail, GrayImage, Raster, RgbImage};
pub use self::zip::{entry_name, read_zip_entry, zip_entry_count, ZipChunk};

/// Errors from building chunks and encoding frames.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Pixel buffer and dimensions disagree, or a dimension is zero.
    #[error("invalid {kind} image {width}x{height}: {reason}")]
    InvalidRaster {
        kind: &'static str,
        width: u32,
        height: u32,
        reason: String,
    },
    /// A display-matrix rotation that is not a multiple of 90 degrees.
    #[error("cannot rotate a frame by {0} degrees: only multiples of 90 are supported")]
    UnsupportedRotation(f64),
    /// libjpeg-turbo refused the image.
    #[error("JPEG encoding of a {width}x{height} image failed: {reason}")]
    Jpeg {
        width: u32,
        height: u32,
        reason: String,
    },
    /// Converting a decoded frame failed.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    /// A JPEG encoder thread stopped or lost a frame.
    #[error("JPEG encoding: {0}")]
    EncoderThread(String),
    /// The PNG encoder failed.
    #[error("PNG encoding of a {width}x{height} image failed: {reason}")]
    Png {
        width: u32,
        height: u32,
        reason: String,
    },
    /// Writing or reading a zip chunk failed.
    #[error("zip chunk: {0}")]
    Zip(#[from] ::zip::result::ZipError),
    /// An I/O error while copying zip entry data.
    #[error("zip chunk: {0}")]
    ZipIo(#[from] std::io::Error),
    /// `read_zip_entry` was asked for an entry past the end.
    #[error("zip chunk has {count} entries, there is no entry {index}")]
    ZipEntryOutOfRange { index: usize, count: usize },
    /// The video chunk would exceed OpenH264's macroblock limit (CVAT's message, verbatim).
    #[error("The video codec being used does not support such high video resolution, refer https://github.com/cvat-ai/cvat/issues/7425")]
    ResolutionTooHigh { width: u32, height: u32 },
    /// A video chunk with no frames.
    #[error("no frames to encode into the video chunk")]
    NoFrames,
    /// FFmpeg (encoder, scaler or MP4 muxer) failed.
    #[error("video chunk encoding failed while {stage}: {reason}")]
    Video { stage: &'static str, reason: String },
}

/// Result alias for codec operations.
pub type Result<T, E = CodecError> = std::result::Result<T, E>;
