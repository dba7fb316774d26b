//! Datumaro 1.0 (spec `formats.md` §4–§6, §8.2): `annotations/<subset>.json` (+ `images/<subset>/…`).
//!
//! **Export** follows CVAT's `CvatTaskOrJobDataExtractor` + the Datumaro fork's JSON writer: one item per
//! task frame (empty ones included), `attr: {"frame": abs}`, `image: {"path", "size": [h, w]}`,
//! categories with every label (skeleton sub-labels with `parent`) and the label attribute names
//! pooled into the global `attributes` list, `points` categories for skeletons (sub-label order and
//! joints from the label SVG). Each annotation carries all of its label's attributes with defaults
//! filled (number → float, checkbox → bool, else string) plus `occluded`, `rotation` (boxes,
//! ellipses) and `track_id` + `keyframe` for track shapes. Tracks are interpolated and outside shapes
//! dropped. Masks become COCO RLE over the full image, written in COCO's compressed string form
//! (what Datumaro writes and the only form its reader accepts). Items are written straight as
//! bytes (those serde_json would write, see `formats::kit::json`), rendered and deflated in pieces
//! on all cores ([`DeflatedEntry`]).
//!
//! **Import** reads `annotations/*.json` (any depth, any subset) from a zip or one bare `.json`,
//! streaming items one by one with serde_json, each straight into typed fields (no `Value`
//! trees). It converts like CVAT's
//! `import_dm_annotations`: labels by name, attributes by name (others dropped), groups with ≥ 2
//! shapes renumbered per item, `occluded` / `rotation` / `source` / `score` / `outside` /
//! `keyframe` / `track_id` special attributes, tracks rebuilt from `track_id` + `keyframe` with
//! CVAT's keyframe inference, masks → CVAT RLE over the tight box, ellipses `(x1, y1, x2, y2)` →
//! `(cx, cy, x2, y1)`, frames matched by §6
//! ([`FrameMatcher`](crate::formats::kit::frames::FrameMatcher)). Errors name the file, the item and the annotation.

use super::{ExportOptions, FormatError, FrameSource, ImportInput, TaskDataset, ZipSink};
use crate::annotations::Annotations;

pub(crate) mod export;
pub(crate) mod import;
pub(crate) mod parse;
pub(crate) mod skeleton;

use export::export;
use parse::import;

/// Largest annotation JSON file the importer reads (decompressed), unless the caller sets
/// [`Datumaro::read_limit`].
pub const DEFAULT_READ_LIMIT: u64 = 4 << 30;

const DISPLAY: &str = "Datumaro 1.0";

/// The Datumaro 1.0 format.
#[derive(Debug, Clone)]
pub struct Datumaro {
    /// Largest decompressed size of one annotation file the importer accepts.
    pub read_limit: u64,
}

impl Datumaro {
    /// With [`DEFAULT_READ_LIMIT`].
    pub const DEFAULT: Datumaro = Datumaro {
        read_limit: DEFAULT_READ_LIMIT,
    };
}

impl Default for Datumaro {
    fn default() -> Self {
        Datumaro::DEFAULT
    }
}

impl super::Exporter for Datumaro {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        export(ds, opts, images, zip, progress)
    }
}

impl super::Importer for Datumaro {
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        import(input, ds, self.read_limit)
    }
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
