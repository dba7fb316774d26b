//! PASCAL VOC 1.1 and Segmentation mask 1.1 (spec `formats.md` §3, §7, §8.9, §8.10, §11):
//! Datumaro's VOC layout, one folder for both (they share the label map, the colour maps and
//! the segmentation PNGs).
//!
//! ```text
//! labelmap.txt                          # label:r,g,b:parts:actions
//! Annotations/<id>.xml                  # PASCAL VOC: boxes of every frame
//! ImageSets/Main/<subset>.txt           # PASCAL VOC: every item
//! ImageSets/Main/<label>_<subset>.txt   # PASCAL VOC: "<id>  1" / "<id> -1" (tags)
//! ImageSets/Segmentation/<subset>.txt   # items with masks, and items without annotations
//! SegmentationClass/<id>.png            # RGB, class colours
//! SegmentationObject/<id>.png           # RGB, instance i in VOC colour i
//! JPEGImages/<id>.<ext>                 # with "Save images"
//! ```
//!
//! **Export, PASCAL VOC 1.1** (`voc`, `label_map="source"`): the label map is the task's labels
//! (id order) with `background` first unless a label has that name, coloured by index with the
//! VOC colour map. Every frame gets `Annotations/<id>.xml` laid out as lxml pretty-prints
//! Datumaro's tree (`folder` = the id up to its first `_`, `filename`, `source`, `size` with an
//! empty `depth`, `segmented`, per rectangle an `object` with `name`, `pose` (a `pose`
//! attribute), `truncated`/`occluded`/`difficult` as `0`/`1` (the UI's occluded flag; checkbox
//! attributes `truncated`/`difficult`), `bndbox` (Python `str` of the coordinates) and every
//! other attribute, `rotation`, `track_id` and `keyframe` included, in `attributes`). Rotated
//! boxes are written unrotated with their `rotation`. Tags are the classification lists. Masks
//! and ellipses (as masks, Datumaro's raster) are the segmentation PNGs; **polygons, polylines,
//! points, cuboids and skeletons are not written** (Datumaro's VOC converter writes only
//! labels, boxes and masks). No parts or actions are written: a `source` label map has none.
//!
//! **Export, Segmentation mask 1.1** (`voc_segmentation`, `label_map = make_colormap(task)`):
//! the label map is every task label with its colour (`background` black first when the task
//! has none), **sorted by name** as Datumaro's converter sorts a dict label map. Rotated boxes
//! become polygons, polygons, boxes and ellipses masks, and the masks of one group one
//! instance (the largest member's label and z-order); only the PNGs, their list and the label
//! map are written. Attributes are not carried; tracks are exported per frame.
//!
//! Both: instances are painted by z-order (later wins), instance `i` (1-based, its index as a
//! byte) in VOC colour `i`, classes in their label-map colour (a mask of class index 0 paints
//! background); PNGs are rasterised and encoded on all cores, a frame per task, written in
//! frame order.
//!
//! **Import** (both: Datumaro's `voc` over every VOC task, then `masks_to_polygons`): subset
//! lists in `ImageSets/{Main,Segmentation,Layout,Action}`; boxes of `Annotations/<id>.xml`
//! (`difficult`, `truncated`, `occluded`, `pose`, actions, the `attributes` section; `occluded`
//! is also the UI flag, `rotation` the box's rotation), parts of layout items, tags from the
//! classification lists, and instances of the segmentation PNGs (RGB through the label map's
//! colours; one-channel PNGs as indices, §7) as polygons ([`mask_to_polygons`]; a mask without
//! area yields none). PASCAL VOC only: a missing `labelmap.txt` is synthesised from the task's
//! labels (`name:::`, colours by index), and an archive without `Annotations/` is flat: every
//! `*.xml` is an annotation of the `train` subset. Segmentation mask without a label map uses
//! VOC's own. Groups (a box's object number, a mask's instance id) of two or more shapes are
//! kept, renumbered. Errors name the file and line (XML, lists, label map), or the file and
//! pixel (a colour not in the label map); an XML `<size>` or a mask that is not the task
//! frame's size is an error. Tracks (`track_id`/`keyframe` attributes) come back as boxes per
//! frame.
//!
//! [`mask_to_polygons`]: crate::formats::kit::mask::mask_to_polygons

mod export;
mod import;
mod labelmap;
mod segm;
mod xml;

use crate::annotations::Annotations;
use crate::formats::{ExportOptions, FormatError, FrameSource, ImportInput, TaskDataset, ZipSink};

/// Which of the two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Voc,
    Segmentation,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Voc => "PASCAL VOC 1.1",
            Flavour::Segmentation => "Segmentation mask 1.1",
        }
    }
}

/// PASCAL VOC 1.1.
#[derive(Debug, Clone, Copy, Default)]
pub struct Voc;

/// Segmentation mask 1.1.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentationMask;

macro_rules! voc_format {
    ($t:ty, $flavour:expr) => {
        impl crate::formats::Exporter for $t {
            fn export(
                &self,
                ds: &TaskDataset<'_>,
                opts: &ExportOptions,
                images: Option<&dyn FrameSource>,
                zip: &mut ZipSink<std::fs::File>,
                progress: &dyn Fn(f64),
            ) -> Result<(), FormatError> {
                export::export($flavour, ds, opts, images, zip, progress)
            }
        }

        impl crate::formats::Importer for $t {
            fn read(
                &self,
                input: &ImportInput,
                ds: &TaskDataset<'_>,
            ) -> Result<Annotations, FormatError> {
                import::import($flavour, input, ds)
            }
        }
    };
}

voc_format!(Voc, Flavour::Voc);
voc_format!(SegmentationMask, Flavour::Segmentation);

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
