//! YOLO 1.1 (spec `formats.md` §3, §8.11, §11.1 items 6, 7, 10): Darknet's layout.
//!
//! ```text
//! obj.data                  classes = N, <subset> = data/<subset>.txt, names = data/obj.names, backup = backup/
//! obj.names                 one class name per line, in class-id order
//! <subset>.txt              data/obj_<subset>_data/<image> per frame
//! obj_<subset>_data/<id>.txt  "class cx cy w h" per box, normalised to the frame size ("%.6f")
//! ```
//!
//! **Export** is Datumaro's `yolo` converter as CVAT calls it: one `.txt` per task frame (empty
//! frames included), the task subset (`default` or none → `train`), boxes only (tracks
//! interpolated, outside frames dropped; rotated boxes skipped, as Datumaro skips them), and
//! class ids from [`LabelMap`](crate::formats::kit::labelmap::LabelMap): skeleton sub-labels and
//! tag-only labels are never classes, so ids always index `obj.names` (CVAT issue 8090).
//!
//! **Import** is CVAT's `yolo` importer: `obj.data` names the class list and the subset lists,
//! each listed image's `.txt` beside it is read, sizes come from the task frames the items match
//! (spec §6, no images needed), and every box becomes a plain rectangle. A class id outside
//! `obj.names` or a line without exactly five values is an error naming the file and the line.

mod export;
mod import;

/// The YOLO 1.1 format: its [`Exporter`](super::Exporter) is in `export.rs`, its
/// [`Importer`](super::Importer) in `import.rs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Yolo;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
