//! Media decoding: our small, safe surface over FFmpeg (through `ffmpeg-next`).
//!
//! Nothing outside this module touches `ffmpeg-next` types. The pieces are:
//! * [`VideoSource`]: an opened video file, its first video stream and what it says about itself
//!   ([`VideoInfo`]), a demux-only scan of every packet ([`VideoSource::scan_packets`]) and a
//!   per-stream seek by pts ([`VideoSource::seek`]).
//! * [`KeyframeDecoder`]: decodes one key-frame packet on its own (for checksums).
//! * [`FrameReader`]: seeks to a key frame and decodes forward, frame by frame (optionally not
//!   decoding the non-reference frames before the wanted ones).
//! * [`RgbConverter`]: decoded frame → packed RGB24, exactly as CVAT's checksum wants it.
//! * [`image`]: still images decoded in their native pixel mode (for image checksums).

mod convert;
mod decode;
pub mod image;
mod source;

use std::path::PathBuf;
use std::sync::Once;

pub use convert::{ColorMode, RgbConverter};
pub use decode::{decoder_memory, decoder_memory_for, DecodedFrame, FrameReader, KeyframeDecoder};
pub(crate) use source::packet_info as source_packet_info;
pub use source::{rotated_size, Chapter, PacketInfo, PictureType, VideoInfo, VideoSource};

/// Errors from opening, demuxing and decoding media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// FFmpeg could not recognise the file as a media container.
    #[error("{path}: not a media file FFmpeg can read ({reason})")]
    NotMedia { path: PathBuf, reason: String },
    /// The container has no video stream.
    #[error("{path}: the file has no video stream")]
    NoVideoStream { path: PathBuf },
    /// No decoder for the stream's codec in this FFmpeg build.
    #[error("{path}: no decoder for codec '{codec}' in this FFmpeg build")]
    NoDecoder { path: PathBuf, codec: String },
    /// Reading packets failed part way (truncated or corrupt file).
    #[error("{path}: reading the video failed after {packets} packets: {reason} (is the file truncated or corrupt?)")]
    Demux {
        path: PathBuf,
        packets: usize,
        reason: String,
    },
    /// A decoder or converter call failed.
    #[error("{path}: decoding failed: {reason}")]
    Decode { path: PathBuf, reason: String },
    /// A seek failed.
    #[error("{path}: seeking to pts {pts} failed: {reason}")]
    Seek {
        path: PathBuf,
        pts: i64,
        reason: String,
    },
    /// A still image could not be decoded.
    #[error("failed to parse image file '{path}': {reason}")]
    Image { path: String, reason: String },
    /// An image larger than the pixel limit (`--max-image-pixels`), refused from its header
    /// before any pixel buffer is allocated.
    #[error(
        "{path}: {width}x{height} pixels is more than the limit of {limit} (--max-image-pixels)"
    )]
    TooManyPixels {
        path: String,
        width: u64,
        height: u64,
        limit: u64,
    },
    /// Decoding would need more memory than the process may ever use for it (`--memory-limit`).
    #[error(transparent)]
    Memory(#[from] crate::budget::BudgetError),
}

/// Result alias for media operations.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;

/// Initialises FFmpeg once per process and silences its log (errors reach users through our
/// own messages, not through FFmpeg's stderr chatter).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // `ffmpeg::init` only registers devices; it cannot fail in a way we could act on.
        let _ = ffmpeg_next::init();
        let level = match std::env::var("FRAMESERVER_FFMPEG_LOG").as_deref() {
            Ok("debug") => ffmpeg_next::util::log::Level::Debug,
            Ok("info") => ffmpeg_next::util::log::Level::Info,
            Ok("warning") => ffmpeg_next::util::log::Level::Warning,
            Ok("error") => ffmpeg_next::util::log::Level::Error,
            _ => ffmpeg_next::util::log::Level::Quiet,
        };
        ffmpeg_next::util::log::set_level(level);
    });
}

/// A rational number (FFmpeg time bases and frame rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rational {
    pub num: i32,
    pub den: i32,
}

impl Rational {
    /// The value as a float, or `None` for a zero denominator.
    pub fn to_f64(self) -> Option<f64> {
        (self.den != 0).then(|| self.num as f64 / self.den as f64)
    }
}

impl From<ffmpeg_next::Rational> for Rational {
    fn from(r: ffmpeg_next::Rational) -> Self {
        Rational {
            num: r.numerator(),
            den: r.denominator(),
        }
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}
