//! Dataset formats: one module per format, implementing [`Exporter`] and/or [`Importer`];
//! [`catalogue`] lists every format CVAT has (its display names, spec `formats.md` §2) and
//! looks them up by name. Exports stream into a zip ([`ZipSink`]); imports
//! read a zip or a bare file ([`ImportInput`]) and report the file and line/item of the first
//! problem ([`FormatError::Invalid`]).

use std::cell::RefCell;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::annotations::interpolate::{interpolate, FrameShape};
use crate::annotations::{Annotations, LabelIndex, Shape, Tag, Track};
use crate::ingest::{ArchiveLimits, IngestError, ZipEntries};

pub mod catalogue;
mod conformance;
mod conformance_tests;
pub mod cvat;
pub mod datumaro;
mod deflate;
mod json_out;
pub mod kit;
pub mod testkit;

pub use catalogue::{Dimension, FormatInfo, LookupError};
pub use deflate::DeflatedEntry;

/// A frame of the task as formats see it.
#[derive(Debug, Clone)]
pub struct DatasetFrame {
    /// Task-relative frame number.
    pub rel: u64,
    /// Absolute source frame (`start + rel * step`).
    pub abs: u64,
    /// The frame's path as CVAT names it: the image's relative path (with extension) for image
    /// tasks, `frame_{abs:06}.PNG` for video tasks.
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// A task as formats see it: meta, labels, frames and annotations (tracks not interpolated).
#[derive(Debug, Clone)]
pub struct TaskDataset<'a> {
    pub task_id: i64,
    pub name: String,
    /// `annotation` (images) or `interpolation` (video).
    pub mode: String,
    pub size: u64,
    pub overlap: u64,
    pub bug_tracker: String,
    /// Task subset; empty means `default`.
    pub subset: String,
    pub created: String,
    pub updated: String,
    pub owner: Option<String>,
    /// Video tasks: the video's display size.
    pub original_size: Option<(u32, u32)>,
    /// Segments (jobs): `(id, start, stop)`, task-relative.
    pub segments: Vec<(i64, u64, u64)>,
    pub labels: &'a LabelIndex,
    /// Every task frame, in order (`frames[rel]`).
    pub frames: Vec<DatasetFrame>,
    pub annotations: &'a Annotations,
}

impl TaskDataset<'_> {
    /// The index in [`frames`](Self::frames) of task frame `rel`, if the dataset has it.
    pub fn frame_index(&self, rel: u64) -> Option<usize> {
        // Frames are consecutive (a task or a job's range): try the direct position first.
        let first = self.frames.first()?.rel;
        let guess = usize::try_from(rel.checked_sub(first)?).ok()?;
        match self.frames.get(guess) {
            Some(f) if f.rel == rel => Some(guess),
            _ => self.frames.binary_search_by_key(&rel, |f| f.rel).ok(),
        }
    }
}

/// Indices of things grouped by the dataset frame they are on: a counting sort (stable, two
/// passes, no per-frame allocation). Things on frames the dataset does not have are left out.
struct ByFrame {
    /// `idx[start[i]..start[i + 1]]` are on dataset frame `i`.
    start: Vec<u32>,
    idx: Vec<u32>,
}

impl ByFrame {
    fn new(ds: &TaskDataset<'_>, frames: impl Iterator<Item = u64> + Clone) -> ByFrame {
        let pos = |rel| ds.frame_index(rel);
        let mut start = vec![0u32; ds.frames.len() + 1];
        for p in frames.clone().filter_map(pos) {
            start[p + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut idx = vec![0u32; start[start.len() - 1] as usize];
        for (k, rel) in frames.enumerate() {
            if let Some(p) = pos(rel) {
                idx[next[p] as usize] = k as u32;
                next[p] += 1;
            }
        }
        ByFrame { start, idx }
    }

    fn of(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.idx[self.start[i] as usize..self.start[i + 1] as usize]
            .iter()
            .map(|&k| k as usize)
    }
}

/// A shape on one frame for exporters that write frame by frame.
pub(crate) enum FrameObject<'a> {
    /// A shape of its own.
    Plain(&'a Shape),
    /// Track number `index` (its position in the task's tracks) on this frame.
    Tracked {
        index: usize,
        track: &'a Track,
        shape: &'a FrameShape,
    },
}

impl FrameObject<'_> {
    fn z_order(&self) -> i64 {
        match self {
            FrameObject::Plain(s) => s.z_order,
            FrameObject::Tracked { shape, .. } => shape.z_order,
        }
    }
}

/// A dataset's annotations by frame, as CVAT's frame-by-frame exports see them: tags, and shapes
/// (plain ones, then the tracks' interpolated shapes) sorted by z-order.
pub(crate) struct FrameAnnotations<'a> {
    a: &'a Annotations,
    /// The tracks' shapes that are kept: `(track index, shape)`.
    tracked: Vec<(usize, FrameShape)>,
    tags: ByFrame,
    plain: ByFrame,
    tracks: ByFrame,
}

impl<'a> FrameAnnotations<'a> {
    /// Groups `ds`'s annotations; `keep` says which of the tracks' shapes are exported.
    pub(crate) fn new(ds: &TaskDataset<'a>, keep: impl Fn(&FrameShape) -> bool + Sync) -> Self {
        let a = ds.annotations;
        let mut tracked = Vec::new();
        if let Some(last) = ds.frames.last().map(|f| f.rel) {
            use rayon::prelude::*;
            let per_track: Vec<Vec<FrameShape>> = a
                .tracks
                .par_iter()
                .map(|t| {
                    let mut shapes = interpolate(t, last);
                    shapes.retain(&keep);
                    shapes
                })
                .collect();
            for (ti, shapes) in per_track.into_iter().enumerate() {
                tracked.extend(shapes.into_iter().map(|f| (ti, f)));
            }
        }
        FrameAnnotations {
            a,
            tags: ByFrame::new(ds, a.tags.iter().map(|t| t.frame)),
            plain: ByFrame::new(ds, a.shapes.iter().map(|s| s.frame)),
            tracks: ByFrame::new(ds, tracked.iter().map(|t| t.1.frame)),
            tracked,
        }
    }

    /// The tags on dataset frame `i` (its index in `frames`).
    pub(crate) fn tags(&self, i: usize) -> impl Iterator<Item = &'a Tag> + '_ {
        self.tags.of(i).map(|k| &self.a.tags[k])
    }

    /// The shapes on dataset frame `i`: plain ones, then tracks', stably sorted by z-order.
    pub(crate) fn shapes(&self, i: usize) -> Vec<FrameObject<'_>> {
        let mut out: Vec<FrameObject<'_>> = self
            .plain
            .of(i)
            .map(|k| FrameObject::Plain(&self.a.shapes[k]))
            .chain(self.tracks.of(i).map(|k| {
                let (index, shape) = &self.tracked[k];
                FrameObject::Tracked {
                    index: *index,
                    track: &self.a.tracks[*index],
                    shape,
                }
            }))
            .collect();
        out.sort_by_key(FrameObject::z_order);
        out
    }
}

/// Where exported images come from (the chunk cache / frame provider).
pub trait FrameSource: Sync {
    /// The image bytes of task frame `rel`, and the extension they are encoded with.
    fn image(&self, rel: u64) -> Result<(Vec<u8>, String), FormatError>;
}

/// Export options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Write the images too ("Save images").
    pub save_images: bool,
}

/// A streaming zip writer: each file is written as it is produced, never the whole dataset
/// in memory. Annotation files are written as [`DeflatedEntry`]s, images as stored files.
pub struct ZipSink<W: Write + Seek> {
    /// Buffered: the zip crate copies raw entries and writes headers in small pieces.
    zip: zip::ZipWriter<std::io::BufWriter<W>>,
}

impl<W: Write + Seek> ZipSink<W> {
    /// A zip writing into `w`.
    pub fn new(w: W) -> Self {
        ZipSink {
            zip: zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 16, w)),
        }
    }

    /// Starts a stored (uncompressed) file: for images, which do not compress.
    pub fn stored_file(&mut self, name: &str) -> Result<&mut dyn Write, FormatError> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        self.zip
            .start_file(name, opts)
            .map_err(|e| FormatError::Io(e.to_string()))?;
        Ok(&mut self.zip)
    }

    /// Finishes the archive.
    pub fn finish(self) -> Result<W, FormatError> {
        self.zip
            .finish()
            .map_err(|e| FormatError::Io(e.to_string()))?
            .into_inner()
            .map_err(|e| FormatError::Io(e.error().to_string()))
    }
}

/// Default of [`ImportLimits::max_value`] (`--max-import-value`): 64 MiB.
pub const DEFAULT_MAX_IMPORT_VALUE: u64 = 64 << 20;

/// What an import may read: the archive rules task data has (entry count, expansion ratio per
/// entry, total bytes), and the largest single value (an XML text or attribute value, a JSON
/// string), so that no parser buffers more than that at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImportLimits {
    /// Rules for zip inputs (`--max-extracted-size` is `max_total_bytes`).
    pub archive: ArchiveLimits,
    /// Largest single value, in bytes (`--max-import-value`). Default
    /// [`DEFAULT_MAX_IMPORT_VALUE`].
    pub max_value: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            archive: ArchiveLimits::default(),
            max_value: DEFAULT_MAX_IMPORT_VALUE,
        }
    }
}

#[cfg(test)]
impl ImportLimits {
    /// Only the value limit (`max_value` bytes): no expansion-ratio check, so a test's bomb
    /// reaches the parser.
    pub(crate) fn values_only(max_value: u64) -> ImportLimits {
        ImportLimits {
            archive: ArchiveLimits {
                max_ratio: f64::INFINITY,
                ..Default::default()
            },
            max_value,
        }
    }
}

/// An import's input: a zip archive (read entry by entry under [`ImportLimits::archive`], never
/// extracted), or a bare annotation file. One input serves one import: the archive's byte
/// counts add up over everything read from it.
pub struct ImportInput {
    path: PathBuf,
    /// How errors name the file (the client's name for it, never a server path).
    display: String,
    zip: Option<RefCell<ZipEntries>>,
    limits: ImportLimits,
}

impl std::fmt::Debug for ImportInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportInput")
            .field("display", &self.display)
            .field("zip", &self.zip.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

impl ImportInput {
    /// Opens `path` with the default limits; errors name it by its file name.
    pub fn open(path: &Path) -> Result<ImportInput, FormatError> {
        let display = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::open_with(path, &display, ImportLimits::default())
    }

    /// Opens `path` (a zip if its magic bytes say so, else a bare file) with `limits`; errors
    /// call it `display`.
    pub fn open_with(
        path: &Path,
        display: &str,
        limits: ImportLimits,
    ) -> Result<ImportInput, FormatError> {
        let mut magic = [0u8; 4];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| FormatError::Io(format!("cannot read {display}: {e}")))?;
        let zip = if n == 4 && &magic == b"PK\x03\x04" {
            let z = ZipEntries::open(path, &limits.archive).map_err(|e| match e {
                IngestError::Io { source, .. } => {
                    FormatError::Io(format!("cannot read {display}: {source}"))
                }
                e if matches!(
                    e,
                    IngestError::Corrupt(_) | IngestError::UnsupportedArchive(_)
                ) =>
                {
                    FormatError::invalid(display, "", format!("not a readable zip archive: {e}"))
                }
                e => FormatError::Limit(format!("{display}: {e}")),
            })?;
            Some(RefCell::new(z))
        } else {
            None
        };
        Ok(ImportInput {
            path: path.to_owned(),
            display: display.to_owned(),
            zip,
            limits,
        })
    }

    /// Whether the input is a zip archive.
    pub fn is_zip(&self) -> bool {
        self.zip.is_some()
    }

    /// The name errors give the input.
    pub fn display_name(&self) -> &str {
        &self.display
    }

    /// The limits the input is read under.
    pub fn limits(&self) -> &ImportLimits {
        &self.limits
    }

    /// Names of the files inside (a bare file: its display name).
    pub fn names(&self) -> Vec<String> {
        match &self.zip {
            None => vec![self.display.clone()],
            Some(z) => z.borrow().names().map(str::to_owned).collect(),
        }
    }

    /// Runs `f` on a reader of file `name` (a bare file ignores the name) and the size its
    /// container declares (a hint). Reads of a zip entry fail past the archive limits: turn
    /// their errors into [`FormatError`]s with [`read_error`].
    pub fn with_reader<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut dyn Read, Option<u64>) -> T,
    ) -> Result<T, FormatError> {
        match &self.zip {
            None => {
                let mut file = std::fs::File::open(&self.path)
                    .map_err(|e| FormatError::Io(format!("cannot read {}: {e}", self.display)))?;
                let size = file.metadata().ok().map(|m| m.len());
                Ok(f(&mut file, size))
            }
            Some(z) => {
                let mut z = z.borrow_mut();
                let index = z.index_of(name).ok_or_else(|| {
                    FormatError::invalid(name, "", "cannot read it from the archive: not found")
                })?;
                let mut entry = z.entry(index).map_err(|e| {
                    FormatError::invalid(name, "", format!("cannot read it from the archive: {e}"))
                })?;
                let size = entry.declared_size();
                Ok(f(&mut entry, Some(size)))
            }
        }
    }
}

/// A value past [`ImportLimits::max_value`], inside the [`std::io::Error`] of a guarded reader.
#[derive(Debug, thiserror::Error)]
#[error("{what} is larger than {limit} bytes (--max-import-value)")]
pub(crate) struct ValueTooLarge {
    /// What it is, e.g. "a JSON string".
    pub what: &'static str,
    pub limit: u64,
}

/// The error for a failed read of `file` (a bare file, or an entry of the zip being imported):
/// an import limit that was passed (its message names the limit and what passed it), else the
/// I/O error.
pub(crate) fn read_error(file: &str, e: std::io::Error) -> FormatError {
    if let Some(limit) = crate::ingest::limit_error(&e) {
        // It names the entry (ratio) or is about the whole archive (total).
        return FormatError::Limit(limit.to_string());
    }
    if let Some(v) = e.get_ref().and_then(|r| r.downcast_ref::<ValueTooLarge>()) {
        return FormatError::Limit(format!("{file}: {v}"));
    }
    FormatError::Io(format!("cannot read {file}: {e}"))
}

/// Errors of exports and imports.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
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
}

impl From<std::io::Error> for FormatError {
    fn from(e: std::io::Error) -> Self {
        FormatError::Io(e.to_string())
    }
}

impl FormatError {
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

/// Reads annotations in one format for a task.
pub trait Importer: Send + Sync {
    /// Reads annotations for the task `ds` (its labels and frames) from `input`.
    fn import(&self, input: &ImportInput, ds: &TaskDataset<'_>)
        -> Result<Annotations, FormatError>;
}
