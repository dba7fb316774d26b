//! The one check of imported annotations against the task or job they are imported into: its
//! labels, its frame range (a job's frames for a job import), attribute values and geometry.
//! [`Importer::import`](crate::formats::Importer::import) runs it on every format's result.

use crate::annotations::{self, Annotations, Context};
use crate::formats::{FormatError, TaskDataset};

/// Checks `a` against `ds` (a task, or a job's slice of it); errors name `file`, where the
/// problem is in the annotations (e.g. `tracks[2], shape 1`), and why.
pub fn imported(ds: &TaskDataset<'_>, file: &str, a: &Annotations) -> Result<(), FormatError> {
    let frames = match (ds.frames.first(), ds.frames.last()) {
        (Some(first), Some(last)) => (first.rel, last.rel),
        _ => (0, 0),
    };
    annotations::validate(
        &Context {
            labels: ds.labels,
            frames,
        },
        a,
    )
    .map_err(|e| FormatError::invalid(file, e.what, e.why))
}
