//! Dataset formats: one folder per format, implementing [`Exporter`] and/or [`Importer`] with
//! the shared [`kit`]; [`catalogue`] lists every format CVAT has (its display names, spec
//! `formats.md` §2) and looks them up by name. Exports stream into a zip ([`ZipSink`]); imports
//! read a zip or a bare file ([`ImportInput`]), are validated against the task or job once
//! ([`Importer::import`]), and report the file and line/item of the first problem
//! ([`FormatError::Invalid`]). Every format runs the shared conformance suite
//! (`formats::conformance`, on fixtures from [`testkit`]).

use crate::annotations::Annotations;

pub mod catalogue;
pub mod coco;
mod conformance;
pub mod cvat;
pub mod datumaro;
pub mod kit;
pub mod testkit;
pub mod ultralytics;
pub mod voc;
pub mod yolo;

pub use catalogue::{Dimension, FormatInfo, LookupError};
pub(crate) use kit::dataset::FrameAnnotations;
pub use kit::dataset::{DatasetFrame, FrameSource, TaskDataset};
pub use kit::deflate::DeflatedEntry;
pub(crate) use kit::input::{read_error, ValueTooLarge};
pub use kit::input::{ImportInput, ImportLimits, DEFAULT_MAX_IMPORT_VALUE};
pub use kit::sink::ZipSink;

/// Export options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Write the images too ("Save images").
    pub save_images: bool,
}

/// Errors of exports and imports.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading or writing a file failed: what was being done (may be empty), and the error.
    #[error("{}{source}", if context.is_empty() { String::new() } else { format!("{context}: ") })]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The image of a frame could not be produced for the export (decoding, encoding, a source
    /// that changed).
    #[error("frame {frame}: {reason}")]
    Frame { frame: u64, reason: String },
    /// The export cannot be made as asked (images without a frame source, a subset name that is
    /// not a file name).
    #[error("{0}")]
    Unsupported(String),
    /// The input is malformed or does not fit the task: the file, where in it, and why.
    #[error("{file}{}: {reason}", if location.is_empty() { String::new() } else { format!(", {location}") })]
    Invalid {
        file: String,
        location: String,
        reason: String,
    },
    /// The archive is not in this format at all.
    #[error("the file is not a {format} dataset: {reason}")]
    NotThisFormat { format: String, reason: String },
    /// An import limit was passed; the message names the file, the limit and its flag.
    #[error("{0}")]
    Limit(String),
    /// The export was stopped (the reason: e.g. its task was deleted while it ran).
    #[error("{0}")]
    Cancelled(String),
}

impl From<std::io::Error> for FormatError {
    fn from(source: std::io::Error) -> Self {
        FormatError::Io {
            context: String::new(),
            source,
        }
    }
}

/// A failed write of the export's zip (the zip crate's error kept as the cause, its type kept
/// out of the format API).
pub(crate) fn zip_error(e: zip::result::ZipError) -> FormatError {
    FormatError::io("cannot write the archive", std::io::Error::other(e))
}

impl FormatError {
    /// A failed read or write of `what` (e.g. "cannot read a.zip").
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        FormatError::Io {
            context: what.into(),
            source,
        }
    }

    /// A problem at `location` (e.g. "line 12", "item 'a/b'") of `file`.
    pub fn invalid(file: &str, location: impl Into<String>, reason: impl Into<String>) -> Self {
        FormatError::Invalid {
            file: file.to_owned(),
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// Writes a task's dataset in one format. A format implements it (and/or [`Importer`]) and is
/// listed in [`catalogue::CATALOGUE`].
pub trait Exporter: Send + Sync {
    /// Writes the dataset into `zip`; images come from `images` when `opts.save_images`.
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError>;
}

/// Reads annotations in one format for a task. A format implements [`read`](Self::read);
/// callers use [`import`](Self::import), which checks the result against the task once.
pub trait Importer: Send + Sync {
    /// Reads annotations for the task `ds` (its labels and frames) from `input`: the format's
    /// layout and mapping only; [`import`](Self::import) validates what it returns.
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError>;

    /// [`read`](Self::read), then the one check against `ds`'s labels and frame range
    /// ([`kit::validate::imported`]). Formats do not override it.
    fn import(
        &self,
        input: &ImportInput,
        ds: &TaskDataset<'_>,
    ) -> Result<Annotations, FormatError> {
        let a = self.read(input, ds)?;
        kit::validate::imported(ds, input.display_name(), &a)?;
        Ok(a)
    }
}
