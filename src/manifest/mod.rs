//! CVAT-compatible dataset manifests (`manifest.jsonl` + `index.json`): the model and its
//! byte-exact writer, the fast video indexer, image manifests, sorting and validation.
//!
//! ```no_run
//! use frameserver::manifest::{self, VideoOptions};
//! let index = manifest::index_video("clip.mp4".as_ref(), &VideoOptions::default(), &|_| {})?;
//! index.manifest.write_to_dir("out".as_ref())?;
//! # Ok::<(), frameserver::manifest::ManifestError>(())
//! ```

mod images;
mod json;
mod model;
mod sort;
mod validate;
mod video;

use std::path::{Path, PathBuf};

pub use images::{
    build_items, discover, is_image_name, owner_of as owner_of_path, ImageOptions, ImageSet,
    RELATED_IMAGES_DIR,
};
pub use json::to_line;
pub use model::{
    index_json, parse_manifest, read_manifest, write_atomic, Chapter, ImageItem, ImageMeta,
    KeyFrame, Manifest, VideoProperties, INDEX_FILE, MANIFEST_FILE, VERSION,
};
pub use sort::{NaturalKey, SortingMethod};
pub use validate::{validate, Finding, Severity, ValidateOptions};
pub use video::{
    first_ratio_violation, index_video, IndexReport, Progress, RejectedKeyFrame, Rejection,
    TimestampSource, VideoIndex, VideoOptions, DEFAULT_CHUNK_SIZE, SEEK_MISMATCH_UPPER_BOUND,
};

use crate::media::MediaError;

/// Errors from building, reading and checking manifests. Messages are one line and say what to
/// do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The output directory cannot be created or written.
    #[error("cannot write to the output directory {path}: {source}")]
    OutputDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Media could not be opened or decoded.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The video cannot be indexed, for the reason given.
    #[error("{path}: {reason}")]
    InvalidVideo { path: PathBuf, reason: String },
    /// Frames cannot be numbered because packets lack timestamps.
    #[error("{path}: {missing} of {total} video packets have no presentation timestamp (e.g. an AVI with packed B-frames), so frames cannot be numbered or seeked reliably; {hint}")]
    NoTimestamps {
        path: PathBuf,
        missing: usize,
        total: usize,
        hint: String,
    },
    /// CVAT's rule: too few key frames for smooth random access. `--force` lifts it.
    #[error("The number of keyframes is not enough for smooth iteration over the video ({path}: {keyframes} usable key frame(s) in {length} frames, limit reached at frame {frame}); use --force to write the manifest anyway, or re-encode with shorter GOPs")]
    NotEnoughKeyframes {
        path: PathBuf,
        frame: u64,
        keyframes: usize,
        length: u64,
    },
    /// No key frame can be reached by seeking.
    #[error("Could not find any valid keyframes in the video ({path}); {hint}")]
    NoValidKeyframes { path: PathBuf, hint: String },
    /// A manifest file is malformed.
    #[error("{path}{}: invalid manifest: {reason}", if *line > 0 { format!(", line {line}") } else { String::new() })]
    InvalidManifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// No images were found in the source.
    #[error("no images found in {0}")]
    NoImages(PathBuf),
    /// The command was given something it cannot work with.
    #[error("{0}")]
    Usage(String),
}

impl ManifestError {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        ManifestError::Io {
            path: path.as_ref().to_owned(),
            source,
        }
    }
}
