//! What imports read: a zip archive read entry by entry under the import limits, or a bare
//! file ([`ImportInput`]); the limits themselves ([`ImportLimits`]); and how a failed read
//! becomes a [`FormatError`] ([`read_error`]).

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::formats::FormatError;
use crate::ingest::{ArchiveLimits, IngestError, ZipEntries};

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
            .map_err(|e| FormatError::io(format!("cannot read {display}"), e))?;
        let zip = if n == 4 && &magic == b"PK\x03\x04" {
            let z = ZipEntries::open(path, &limits.archive).map_err(|e| match e {
                IngestError::Io { source, .. } => {
                    FormatError::io(format!("cannot read {display}"), source)
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
                    .map_err(|e| FormatError::io(format!("cannot read {}", self.display), e))?;
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
    FormatError::io(format!("cannot read {file}"), e)
}

/// A shape read from a file (source `file`, no attributes) of `kind` on task frame `frame`.
pub fn file_shape(
    kind: crate::annotations::ShapeType,
    frame: u64,
    label_id: i64,
    points: Vec<f64>,
) -> crate::annotations::Shape {
    use crate::annotations::Shape;
    Shape {
        id: None,
        kind,
        frame,
        label_id,
        group: 0,
        source: "file".into(),
        occluded: false,
        outside: false,
        z_order: 0,
        rotation: 0.0,
        points,
        attributes: vec![],
        elements: vec![],
        score: None,
    }
}
