//! The Ultralytics YOLO family (spec `formats.md` §3, §8.12, §8.13, §11.1 items 6, 7, 8, 10):
//! Datumaro's `yolo_ultralytics_*` formats as CVAT 2.73 calls them.
//!
//! ```text
//! data.yaml                   names: {0: car, …}, path: ., train: train.txt (Pose: kpt_shape: [K, 3])
//! train.txt                   data/images/<subset>/<image> per frame
//! images/<subset>/<image>     with "Save images"
//! labels/<subset>/<id>.txt    one line per object, values normalised to the frame ("%.6f")
//! ```
//!
//! **Export** ([`Ultralytics`]): one item per task frame (the task subset; `default` or none →
//! `train`), a label file only for frames with at least one line (as Datumaro writes them), class
//! ids from [`LabelMap`](crate::formats::kit::labelmap::LabelMap) so that they index `names`
//! exactly (skeleton sub-labels and tag-only labels are never classes, CVAT issue 8090), tracks
//! interpolated and written per frame (outside frames dropped). Per format:
//! * Detection: `class cx cy w h` per unrotated rectangle (rotated ones are skipped, as Datumaro
//!   skips them); Detection Track appends the track's 0-based index (`track_id`) to tracked boxes.
//! * Segmentation: `class x1 y1 …` per polygon. CVAT converts masks to polygons first
//!   (`masks_to_polygons`, OpenCV contours) and ellipses are not polygons: both are **dropped**
//!   here (no contour tracer in the kit yet).
//! * Oriented Bounding Boxes: `class x1 y1 … x4 y4`, the four corners of every rectangle turned by
//!   its rotation about its centre (Datumaro's `bbox_annotation_as_polygon`).
//! * Pose: `class cx cy w h` (the box of the skeleton's points) then `x y v` per point of the
//!   skeleton's label in label order, `v` 2 visible, 1 occluded, 0 outside; skeletons with fewer
//!   points than the largest (`kpt_shape: [K, 3]`) are padded with `0.0 0.0 0`; only skeleton
//!   labels are classes.
//! * Classification ([`Classification`], `classification.rs`): tags; `<subset>/<label>/<image>`
//!   per tag (`no_label/` for untagged frames) and `<subset>/labels.json` with each item's labels
//!   and path (spec §8.13).
//!
//! **Import** (every format but Detection Track, which CVAT imports as Detection): `data.yaml`
//! (`names` a list or a map, subsets as a list file, an image directory or a list of images),
//! `images/<subset>/` or `<subset>/images/` image paths with their `labels` twins, sizes from the
//! task frames the items match (spec §6; no images needed), an optional integer track id at the end
//! of any line (shapes with one become tracks, every shape a keyframe, CVAT's
//! `SetKeyframeForEveryTrackShape`). Oriented boxes come back as rotated rectangles, Pose as
//! skeletons of the task's skeleton labels (`kpt_shape` `[K, 3]` or `[K, 2]`). A class id outside
//! `names`, a wrong number of values, an odd coordinate count, a bad `kpt_shape` or malformed YAML
//! is an error naming the file and the line; an archive without `data.yaml` (or, for
//! Classification, without class folders) is not this format.

mod classification;
mod config;
mod export;
mod import;
mod lines;

/// The line layout of a format of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Detection,
    Segmentation,
    OrientedBoxes,
    Pose,
}

/// An Ultralytics YOLO format with `data.yaml` and label files: its
/// [`Exporter`](super::Exporter) is in `export.rs`, its [`Importer`](super::Importer) in
/// `import.rs`.
#[derive(Debug, Clone, Copy)]
pub struct Ultralytics {
    kind: Kind,
    /// Detection Track: the track id ends the lines of tracked boxes.
    track_ids: bool,
}

impl Ultralytics {
    pub const DETECTION: Ultralytics = Ultralytics {
        kind: Kind::Detection,
        track_ids: false,
    };
    pub const DETECTION_TRACK: Ultralytics = Ultralytics {
        kind: Kind::Detection,
        track_ids: true,
    };
    pub const SEGMENTATION: Ultralytics = Ultralytics {
        kind: Kind::Segmentation,
        track_ids: false,
    };
    pub const ORIENTED_BOXES: Ultralytics = Ultralytics {
        kind: Kind::OrientedBoxes,
        track_ids: false,
    };
    pub const POSE: Ultralytics = Ultralytics {
        kind: Kind::Pose,
        track_ids: false,
    };

    /// The import name CVAT gives the format (for errors).
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Detection => "Ultralytics YOLO Detection 1.0",
            Kind::Segmentation => "Ultralytics YOLO Segmentation 1.0",
            Kind::OrientedBoxes => "Ultralytics YOLO Oriented Bounding Boxes 1.0",
            Kind::Pose => "Ultralytics YOLO Pose 1.0",
        }
    }
}

/// Ultralytics YOLO Classification 1.0 (`classification.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Classification;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
