//! The YOLO 1.1 export: `obj.data`, `obj.names`, the subset's image list and one `.txt` per
//! frame, as Datumaro's `yolo` converter writes them.

use crate::annotations::ShapeType;
use crate::formats::kit::images::image_names;
use crate::formats::kit::labelmap::LabelMap;
use crate::formats::kit::paths::split_ext;
use crate::formats::{
    DatasetFrame, ExportOptions, FormatError, FrameAnnotations, FrameSource, TaskDataset, ZipSink,
};

/// Config keys of `obj.data` a subset cannot be named after (Datumaro's
/// `YoloPath.RESERVED_CONFIG_KEYS`).
pub(super) const RESERVED_KEYS: [&str; 3] = ["backup", "classes", "names"];

/// The subset the export writes: the task's, `train` for none or `default`.
fn subset_name<'d>(ds: &'d TaskDataset<'_>) -> Result<&'d str, FormatError> {
    let subset = match ds.subset.as_str() {
        "" | "default" => "train",
        s => s,
    };
    if RESERVED_KEYS.contains(&subset) {
        return Err(FormatError::Unsupported(format!(
            "cannot export the subset '{subset}' in YOLO format: the word is reserved"
        )));
    }
    if subset.contains(['/', '\\']) || subset.chars().any(char::is_whitespace) {
        return Err(FormatError::Unsupported(format!(
            "the subset name '{subset}' is not a YOLO subset name"
        )));
    }
    Ok(subset)
}

/// The item id of a frame: its path without extension (leading `/` dropped).
fn item_id(f: &DatasetFrame) -> &str {
    split_ext(f.name.trim_start_matches('/')).0
}

/// Darknet's box: centre and size, relative to the image (Datumaro's `_make_yolo_bbox`).
fn yolo_box(p: &[f64], width: u32, height: u32) -> [f64; 4] {
    let (w, h) = (f64::from(width), f64::from(height));
    [
        (p[0] + p[2]) / 2.0 / w,
        (p[1] + p[3]) / 2.0 / h,
        (p[2] - p[0]) / w,
        (p[3] - p[1]) / h,
    ]
}

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
        let [cx, cy, w, h] = yolo_box(s.points, f.width, f.height);
        let _ = writeln!(out, "{class} {cx:.6} {cy:.6} {w:.6} {h:.6}");
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
        let subset = subset_name(ds)?;
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
        let image_share = if opts.save_images { 0.7 } else { 0.0 };
        let image_names = image_names(ds, images, zip, opts.save_images, &dir, &|p| {
            progress(image_share * p)
        })?;

        // Frames with one item id (`a.jpg`, `a.png`) are one Datumaro item: the last one.
        let mut last_of_id = std::collections::HashMap::new();
        for (i, f) in ds.frames.iter().enumerate() {
            last_of_id.insert(item_id(f), i);
        }
        let written = |i: usize| last_of_id.get(item_id(&ds.frames[i])) == Some(&i);
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

        let mut list = String::new();
        for (_, name) in image_names.iter().enumerate().filter(|(i, _)| written(*i)) {
            list.push_str("data/");
            list.push_str(&dir);
            list.push('/');
            list.push_str(name);
            list.push('\n');
        }
        zip.stored_file(&format!("{subset}.txt"))?
            .write_all(list.as_bytes())?;
        progress(1.0);
        Ok(())
    }
}
