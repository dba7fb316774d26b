//! The YOLO 1.1 export: `obj.data`, `obj.names`, the subset's image list and one `.txt` per
//! frame, as Datumaro's `yolo` converter writes them.

use crate::annotations::ShapeType;
use crate::formats::kit::darknet::{
    item_id, put_values, save_frame_images, subset_list, subset_name, yolo_box, ItemFrames,
};
use crate::formats::kit::labelmap::LabelMap;
use crate::formats::{
    DatasetFrame, ExportOptions, FormatError, FrameAnnotations, FrameSource, TaskDataset, ZipSink,
};

/// Config keys of `obj.data` a subset cannot be named after (Datumaro's
/// `YoloPath.RESERVED_CONFIG_KEYS`).
pub(super) const RESERVED_KEYS: [&str; 3] = ["backup", "classes", "names"];

/// The lines of one frame's `.txt`: `class cx cy w h` with `%.6f` values, per rectangle with a
/// class and no rotation (Datumaro skips rotated boxes), in the frame's z-order.
fn frame_lines(
    out: &mut String,
    classes: &LabelMap<'_>,
    by_frame: &FrameAnnotations<'_>,
    i: usize,
    f: &DatasetFrame,
) {
    use std::fmt::Write as _;
    for obj in by_frame.shapes(i) {
        let s = obj.view();
        if s.kind != ShapeType::Rectangle || s.points.len() < 4 {
            continue;
        }
        if s.rotation.rem_euclid(360.0) > 0.00001 {
            continue;
        }
        let Some(class) = classes.class_of(s.label_id) else {
            continue;
        };
        let _ = write!(out, "{class}");
        put_values(out, yolo_box(s.points, f.width, f.height));
        out.push('\n');
    }
}

impl crate::formats::Exporter for super::Yolo {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        let subset = subset_name(ds, &RESERVED_KEYS, "YOLO")?;
        let dir = format!("obj_{subset}_data");
        let classes = LabelMap::new(ds.labels, 0);

        let mut names = String::new();
        for (_, l) in classes.iter() {
            names.push_str(&l.name);
            names.push('\n');
        }
        zip.stored_file("obj.names")?.write_all(names.as_bytes())?;
        let data = format!(
            "classes = {}\n{subset} = data/{subset}.txt\nnames = data/obj.names\nbackup = backup/\n",
            classes.len()
        );
        zip.stored_file("obj.data")?.write_all(data.as_bytes())?;

        // Images first (their extension comes from the frame source), then the annotations.
        let (image_names, image_share) = save_frame_images(ds, opts, images, zip, &dir, progress)?;

        // Frames with one item id (`a.jpg`, `a.png`) are one Datumaro item: the last one.
        let items = ItemFrames::new(ds);
        let written = |i: usize| items.written(i);
        let by_frame = FrameAnnotations::new(ds, |f| f.keep_in_frame_export());
        let n = ds.frames.len().max(1) as f64;
        let mut lines = String::new();
        for (i, f) in ds.frames.iter().enumerate() {
            if !written(i) {
                continue;
            }
            lines.clear();
            frame_lines(&mut lines, &classes, &by_frame, i, f);
            zip.stored_file(&format!("{dir}/{}.txt", item_id(f)))?
                .write_all(lines.as_bytes())?;
            progress(image_share + (1.0 - image_share) * (i + 1) as f64 / n);
        }

        let list = subset_list(&image_names, &items, &dir);
        zip.stored_file(&format!("{subset}.txt"))?
            .write_all(list.as_bytes())?;
        progress(1.0);
        Ok(())
    }
}
