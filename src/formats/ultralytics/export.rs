//! The export of the family's `data.yaml` formats, as Datumaro's `yolo_ultralytics_*` exporters
//! write them.

use crate::formats::kit::darknet::{
    item_id, save_frame_images, subset_list, subset_name, ItemFrames,
};
use crate::formats::{
    ExportOptions, FormatError, FrameAnnotations, FrameSource, TaskDataset, ZipSink,
};

use super::config::{write_config, DATA_YAML, RESERVED_KEYS};
use super::lines::LineWriter;
use super::Kind;

impl crate::formats::Exporter for super::Ultralytics {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        let subset = subset_name(ds, &RESERVED_KEYS, "Ultralytics YOLO")?;
        let writer = LineWriter::new(self.kind, self.track_ids, ds.labels);
        let names: Vec<&str> = writer
            .classes
            .iter()
            .map(|(_, l)| l.name.as_str())
            .collect();
        let kpt = (self.kind == Kind::Pose).then_some(writer.kpt);
        zip.stored_file(DATA_YAML)?
            .write_all(write_config(&names, subset, kpt).as_bytes())?;

        let images_dir = format!("images/{subset}");
        let (image_names, image_share) =
            save_frame_images(ds, opts, images, zip, &images_dir, progress)?;

        let items = ItemFrames::new(ds);
        let by_frame = FrameAnnotations::new(ds, |f| f.keep_in_frame_export());
        let n = ds.frames.len().max(1) as f64;
        let mut lines = String::new();
        let mut path = String::new();
        for (i, f) in ds.frames.iter().enumerate() {
            if !items.written(i) {
                continue;
            }
            lines.clear();
            for obj in by_frame.shapes(i) {
                writer.line(&mut lines, &obj.view(), f.width, f.height);
            }
            // Datumaro writes no label file for a frame without lines.
            if !lines.is_empty() {
                path.clear();
                path.push_str("labels/");
                path.push_str(subset);
                path.push('/');
                path.push_str(item_id(f));
                path.push_str(".txt");
                zip.stored_file(&path)?.write_all(lines.as_bytes())?;
            }
            if i % 256 == 0 {
                progress(image_share + (1.0 - image_share) * (i + 1) as f64 / n);
            }
        }

        let list = subset_list(&image_names, &items, &images_dir);
        zip.stored_file(&format!("{subset}.txt"))?
            .write_all(list.as_bytes())?;
        progress(1.0);
        Ok(())
    }
}
