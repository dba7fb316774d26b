//! Ingesting uploaded media safely: client file names, share paths, archives and media typing
//! (spec `media.md` §11.1–§11.3).
//!
//! Everything here treats its input as hostile. The pieces, in the order the server uses them:
//!
//! * [`sanitize_file_name`]: the base name of a multipart upload's file name (clients send
//!   absolute paths, POSIX or Windows).
//! * [`resolve_share_path`] / [`expand_share_dir`]: `server_files[]` entries, confined to the
//!   share root (`..` and symlinks that lead outside are refused).
//! * [`classify`]: which kind of media a set of files is (one video, many images, or one
//!   archive), with the manifest and related (context) images set aside.
//! * [`extract_archive`]: zip / tar / tar.gz extraction that refuses path tricks, links, special
//!   files, duplicates and bombs, and leaves nothing behind when it refuses.
//!   [`classify_extracted`] then types what came out of it. [`ZipEntries`] reads a zip entry by
//!   entry under the same limits without extracting it (annotation imports).
//! * [`create`]: task creation's pipeline, which runs all of the above on a data upload and
//!   stores the task's data (its errors are [`create::CreateError`]s).
//!
//! Every error is an [`IngestError`] whose message is one line a user can act on; all of them
//! except [`IngestError::Io`] are the client's fault (HTTP 400), see
//! [`IngestError::is_client_error`].

mod archive;
pub(crate) mod create;
mod media_kind;
mod names;
mod share;

use std::io;
use std::path::PathBuf;

pub use archive::{
    extract_archive, limit_error, ArchiveFormat, ArchiveLimits, ZipEntries, ZipEntry,
    RATIO_CHECK_AFTER_BYTES,
};
pub use media_kind::{classify, classify_extracted, Media, MediaKind, MediaSet};
pub use names::{is_ignored_name, sanitize_file_name, IGNORED_NAME_PARTS, MAX_NAME_BYTES};
pub use share::{expand_share_dir, resolve_share_path};

/// Why an upload, a share path or an archive was refused.
///
/// The messages are single lines meant to be shown to the user as they are (HTTP 400 bodies).
/// They never contain server-side absolute paths, except [`IngestError::Io`], which is a server
/// fault and should be logged rather than shown.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An uploaded file name that cannot be stored.
    #[error("Invalid file name {name:?}: {reason}")]
    InvalidFileName {
        /// The name as the client sent it.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A share path with a `..` component (CVAT's message).
    #[error("Don't use '..' inside file paths: {0}")]
    ShareParentDir(String),

    /// A share path that is malformed or leads outside the share, e.g. through a symlink
    /// (CVAT's "Bad file path" message).
    #[error("Bad file path: {0}")]
    ShareEscape(String),

    /// A share path that does not exist.
    #[error("File not found in the share: {0}")]
    ShareNotFound(String),

    /// An archive entry that would write outside the destination, or is not a regular file.
    #[error("Unsafe archive entry {name:?}: {reason}; the archive was rejected")]
    UnsafeEntry {
        /// The entry name as stored in the archive.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Two archive entries with the same path.
    #[error("The archive contains {0:?} more than once; the archive was rejected")]
    DuplicateEntry(String),

    /// More entries than [`ArchiveLimits::max_entries`].
    #[error("The archive has more than {limit} entries; split it into smaller archives")]
    TooManyEntries {
        /// The limit that was exceeded.
        limit: usize,
    },

    /// More uncompressed data than [`ArchiveLimits::max_total_bytes`].
    #[error(
        "The archive expands to more than {limit} bytes (--max-extracted-size); split it into \
         smaller archives"
    )]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },

    /// An entry expanding more than [`ArchiveLimits::max_ratio`] times its compressed size: a
    /// compression bomb.
    #[error(
        "The archive entry {entry:?} expands to more than {max_ratio} times its compressed size \
         ({out_bytes} bytes out of {compressed_bytes}); it looks like a compression bomb and was \
         rejected"
    )]
    CompressionBomb {
        /// The entry's name.
        entry: String,
        /// The limit that was exceeded.
        max_ratio: f64,
        /// The entry's compressed bytes read when it was stopped.
        compressed_bytes: u64,
        /// Its uncompressed bytes by then.
        out_bytes: u64,
    },

    /// Two zip entries sharing compressed data (an "overlapping files" zip bomb).
    #[error(
        "The archive entries {0:?} and {1:?} overlap (a zip bomb reuses data this way); the \
         archive was rejected"
    )]
    OverlappingEntries(String, String),

    /// A password-protected zip entry.
    #[error("The archive entry {0:?} is encrypted; upload an archive without a password")]
    Encrypted(String),

    /// An archive that cannot be read to its end.
    #[error("The archive is corrupt or truncated: {0}")]
    Corrupt(String),

    /// An archive format (or a feature of one) that is not supported.
    #[error("Unsupported archive: {0}")]
    UnsupportedArchive(String),

    /// More than one unique media (video, archive, …), or one next to images (CVAT's message).
    #[error(
        "Only one video, audio, archive, pdf, zip or many image, directory can be used \
         simultaneously, but {found} found."
    )]
    MixedMedia {
        /// What was found, e.g. `"2 video(s)"` or `"3 image(s), 1 video(s)"`.
        found: String,
    },

    /// No video, image or archive among the files (CVAT's message).
    #[error("No media data found")]
    NoMedia,

    /// More than one `*.jsonl` file (CVAT's message).
    #[error("Only one manifest file can be attached to data")]
    MultipleManifests,

    /// Media CVAT knows but this server does not handle (audio, PDF).
    #[error("{kind} files are not supported by this server ({name}); upload images, a video or a zip/tar archive of images")]
    UnsupportedMedia {
        /// `"audio"` or `"pdf"`.
        kind: &'static str,
        /// The file's base name.
        name: String,
    },

    /// A server-side I/O failure (disk full, permissions): not the client's fault.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl IngestError {
    /// Whether the error is caused by the request (HTTP 400) rather than by the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, IngestError::Io { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }
}
