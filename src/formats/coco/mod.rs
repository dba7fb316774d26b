//! COCO 1.0 and COCO Keypoints 1.0 (spec `formats.md` §3, §4, §5, §8.7, §8.8, §11.1 items 1–5,
//! §11.2): Datumaro's `coco_instances` and `coco_person_keypoints` as CVAT calls them.
//!
//! ```text
//! annotations/instances_<subset>.json         COCO 1.0
//! annotations/person_keypoints_<subset>.json  COCO Keypoints 1.0
//! images/<subset>/<image>                     with "Save images" (merge_images=False)
//! ```
//!
//! **Export** (`export.rs`) writes one JSON file as Datumaro's `dump_json_file` does (compact,
//! keys in Datumaro's order): empty `licenses`/`info`, `categories` (every task label in label
//! order, `id` = 1 + its position, `supercategory` its parent: skeleton sub-labels are
//! categories of COCO 1.0 too; COCO Keypoints lists only labels without a parent, keeping their
//! ids, with the skeleton's point names and SVG joints as `keypoints`/`skeleton`), one image per
//! task frame (`id` 1.., `file_name` the frame's name, or the saved image's), and annotations
//! numbered 1.. in frame order. Tracks are interpolated, outside frames dropped; shapes group
//! into instances as Datumaro's `find_instances` (group 0: one shape each) and each instance is
//! `find_instance_parts` with `segmentation_mode=guess`: the largest shape leads; when its
//! `is_crowd` attribute is set (a checkbox, or the number 1 — §11.2) or, without that attribute,
//! when the group has a mask of the leader's label, polygons and masks are merged into one RLE
//! mask (`iscrowd: 1`, uncompressed counts), otherwise polygons are written; `bbox` covers every
//! shape of the group (rounded to 2 decimals, Datumaro's `COORDINATE_ROUNDING_DIGITS`), `area`
//! is pycocotools' (`kit::mask` rasterisers). Ellipses are converted to masks first (CVAT's
//! `ellipses → masks`), rotated boxes keep their unrotated box and a `rotation` attribute;
//! polylines, points and cuboids are not COCO instances and are dropped, as are tags. The
//! `attributes` object holds the leader's label attributes (defaults filled in, typed as
//! Datumaro types them: the Datumaro export's conversion) but `is_crowd` and `score`, then
//! `occluded`, `rotation`, and `track_id` + `keyframe` for tracks. COCO Keypoints writes
//! skeletons: a skeleton alone (or in a group without boxes, polygons, masks) is an annotation
//! of its own with the box around its points, `segmentation: []` and `area` = box area; a
//! skeleton grouped with shapes takes that instance's segmentation and box; `keypoints` are
//! `x, y, v` per skeleton point in the SVG's order (`v`: 0 outside, 1 occluded, 2 visible) and
//! `num_keypoints` counts those not outside.
//!
//! **Import** (`import.rs`) is CVAT's: `annotations/instances_*.json` (or
//! `person_keypoints_*.json`) at any depth of a zip, or a bare `.json`; read with
//! `kit::json::read`, streamed straight into compact records (the file's bytes are never held);
//! `licenses`, `info` and `iscrowd` optional (§11.1 item 1), `segmentation` as a list of
//! polygons, a flat list (one polygon, §11.1 item 2), uncompressed or compressed RLE.
//! Each annotation becomes what Datumaro's COCO extractor makes of it (group = the annotation's
//! id, attributes = its `attributes` + `is_crowd` (+ `score`)): polygons, or a mask, and a box
//! **only when `segmentation` is empty** (the CVAT fork, §11.2); COCO Keypoints makes a skeleton
//! of the `keypoints` triplets (sub-labels by the category's `keypoints` names) and drops the
//! boxes. Those are then converted by the Datumaro importer's `import_dm_annotations`
//! (`formats::datumaro::import`): labels and attributes by name, groups of ≥ 2 kept, `occluded`
//! / `rotation` / `score` / `source` restored, tracks rebuilt from `track_id` + `keyframe`,
//! images matched to task frames by `file_name` (§6). An image whose `width`/`height` contradict
//! its frame, an RLE whose `size` is not its image's, a category id that is not in `categories`,
//! an annotation of an unknown image and malformed JSON are errors naming the file and the
//! item; an archive without such a file is not a COCO dataset.
//!
//! Deviations, each a CVAT behaviour that needs OpenCV: ellipses are rasterised with Datumaro's
//! 720-point polygon (`kit::mask::ellipse_counts`), not `cv2.ellipse`, so their rotation does
//! not turn the mask; and a mask in a group that is not a crowd (its label has an `is_crowd`
//! attribute that is false) is written as RLE instead of being traced into polygons with
//! `cv2.findContours`.

mod export;
mod import;

use super::{ExportOptions, FormatError, FrameSource, ImportInput, TaskDataset, ZipSink};
use crate::annotations::Annotations;

/// Attributes the COCO writer keeps out of `attributes` (Datumaro's `_convert_attributes`).
const RESERVED_ATTRIBUTES: [&str; 2] = ["is_crowd", "score"];

/// Which COCO task a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `instances`: COCO 1.0.
    Instances,
    /// `person_keypoints`: COCO Keypoints 1.0.
    Keypoints,
}

impl Kind {
    /// The task's name in the file names.
    fn task(self) -> &'static str {
        match self {
            Kind::Instances => "instances",
            Kind::Keypoints => "person_keypoints",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Kind::Instances => "COCO 1.0",
            Kind::Keypoints => "COCO Keypoints 1.0",
        }
    }
}

/// A COCO format: [`Coco::INSTANCES`] or [`Coco::KEYPOINTS`].
#[derive(Debug, Clone, Copy)]
pub struct Coco {
    pub kind: Kind,
}

impl Coco {
    /// COCO 1.0.
    pub const INSTANCES: Coco = Coco {
        kind: Kind::Instances,
    };
    /// COCO Keypoints 1.0.
    pub const KEYPOINTS: Coco = Coco {
        kind: Kind::Keypoints,
    };
}

impl super::Exporter for Coco {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        export::export(self.kind, ds, opts, images, zip, progress)
    }
}

impl super::Importer for Coco {
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        import::import(self.kind, input, ds)
    }
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
