//! Ultralytics YOLO Classification 1.0 (spec §8.13): Datumaro's
//! `yolo_ultralytics_classification`. Each frame's image goes to `<subset>/<label>/` once per tag
//! (`no_label/` without one), its name the item's file name made unique in that folder
//! (`a.jpg`, then `a.0.jpg`, …); `<subset>/labels.json` (CVAT's extension) maps each item id to
//! its labels and path, so an export imports back by item id. Without `labels.json` the label is
//! an image's folder and its item id its path below the subset folder.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::annotations::{Annotations, Tag};
use crate::formats::kit::darknet::{
    archive_files, image_name, item_id, read_text, subset_name, ItemFrames, ItemMatcher,
};
use crate::formats::kit::images::save_images_as;
use crate::formats::kit::json::write::put_str;
use crate::formats::kit::paths::{basename, parts, split_ext, with_image_ext};
use crate::formats::{
    DatasetFrame, ExportOptions, FormatError, FrameAnnotations, FrameSource, ImportInput,
    TaskDataset, ZipSink,
};

/// The folder of untagged images.
const NO_LABEL: &str = "no_label";
/// The item list of a subset.
const LABELS_FILE: &str = "labels.json";
const FORMAT: &str = "Ultralytics YOLO Classification 1.0";

/// Datumaro's `_generate_path_for_item`: names made unique per label folder.
struct Placer<'d> {
    subset: &'d str,
    used: HashMap<String, HashSet<String>>,
    /// Per written frame: its labels and the path of its last image (below the subset).
    info: Vec<Option<(Vec<&'d str>, String)>>,
}

impl<'d> Placer<'d> {
    /// The images of frame `i` (with `labels`), pushed as archive entries into `names`.
    fn place(
        &mut self,
        i: usize,
        f: &DatasetFrame,
        ext: &str,
        labels: Vec<&'d str>,
    ) -> Vec<String> {
        let base = basename(item_id(f)).to_owned();
        let ext = split_ext(&with_image_ext(&image_name(f), ext)).1.to_owned();
        let mut entries = Vec::with_capacity(labels.len().max(1));
        let mut path = String::new();
        let folders: Vec<&str> = if labels.is_empty() {
            vec![NO_LABEL]
        } else {
            labels.clone()
        };
        for label in folders {
            let used = self.used.entry(label.to_owned()).or_default();
            let mut name = base.clone();
            let mut k = 0;
            while used.contains(&name) {
                name = format!("{base}.{k}");
                k += 1;
            }
            used.insert(name.clone());
            path = format!("{label}/{name}{ext}");
            entries.push(format!("{}/{path}", self.subset));
        }
        self.info[i] = Some((labels, path));
        entries
    }
}

impl crate::formats::Exporter for super::Classification {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        let subset = subset_name(ds, &[], "Ultralytics YOLO Classification")?;
        let items = ItemFrames::new(ds);
        let by_frame = FrameAnnotations::new(ds, |_| false);
        let labels_of = |i: usize| -> Vec<&str> {
            by_frame
                .tags(i)
                .filter_map(|t| ds.labels.get(t.label_id).map(|l| l.name.as_str()))
                .collect()
        };
        let mut placer = Placer {
            subset,
            used: HashMap::new(),
            info: vec![None; ds.frames.len()],
        };
        if opts.save_images {
            save_images_as(
                ds,
                images,
                zip,
                |i, f, ext, names| {
                    if items.written(i) {
                        names.extend(placer.place(i, f, ext, labels_of(i)));
                    }
                },
                &|p| progress(0.9 * p),
            )?;
        } else {
            for (i, f) in ds.frames.iter().enumerate() {
                if items.written(i) {
                    placer.place(i, f, "", labels_of(i));
                }
            }
        }
        // orjson's compact `{"id":{"labels":[…],"path":"…"},…}`.
        let mut json = Vec::new();
        json.push(b'{');
        let mut first = true;
        for (i, f) in ds.frames.iter().enumerate() {
            let Some((labels, path)) = &placer.info[i] else {
                continue;
            };
            if !first {
                json.push(b',');
            }
            first = false;
            put_str(&mut json, item_id(f));
            json.extend_from_slice(b":{\"labels\":[");
            for (k, l) in labels.iter().enumerate() {
                if k > 0 {
                    json.push(b',');
                }
                put_str(&mut json, l);
            }
            json.extend_from_slice(b"],\"path\":");
            put_str(&mut json, path);
            json.push(b'}');
        }
        json.push(b'}');
        zip.stored_file(&format!("{subset}/{LABELS_FILE}"))?
            .write_all(&json)?;
        progress(1.0);
        Ok(())
    }
}

fn not_this(reason: impl Into<String>) -> FormatError {
    FormatError::NotThisFormat {
        format: FORMAT.into(),
        reason: reason.into(),
    }
}

/// Whether an entry name is an image Datumaro's `find_images` finds.
fn is_image(name: &str) -> bool {
    crate::manifest::is_image_name(Path::new(name))
}

/// An item of the dataset: id, image extension, labels, where it was read (for errors).
struct ClassItem {
    id: String,
    image_ext: String,
    labels: Vec<String>,
    file: String,
    location: String,
}

impl crate::formats::Importer for super::Classification {
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        if !input.is_zip() {
            return Err(not_this(
                "an Ultralytics YOLO Classification dataset is a zip archive",
            ));
        }
        let entries = archive_files(input);
        if let Some(c) = entries
            .iter()
            .find(|n| !n.contains('/') && (n.ends_with(".yaml") || n.ends_with(".data")))
        {
            return Err(not_this(format!("{c}: a detection dataset's config")));
        }
        // Only images and labels.json: annotation files (a VOC or Segmentation mask export's
        // XML, lists and label map, whose mask PNGs would otherwise read as labelled images)
        // belong to another format.
        if let Some(other) = entries
            .iter()
            .find(|e| !is_image(e) && parts(e).last() != Some(&LABELS_FILE))
        {
            return Err(not_this(format!(
                "{other}: a classification dataset holds only images and {LABELS_FILE} files"
            )));
        }
        // Subsets: top folders with a labels.json or images in label folders.
        let mut subsets: Vec<&str> = Vec::new();
        for e in &entries {
            let p = parts(e);
            let fits = (p.len() == 2 && p[1] == LABELS_FILE) || (p.len() >= 3 && is_image(e));
            if fits && !subsets.contains(&p[0]) {
                subsets.push(p[0]);
            }
        }
        if subsets.is_empty() {
            return Err(not_this(
                "no <subset>/labels.json and no images in <subset>/<label>/ folders",
            ));
        }
        let mut items = Vec::new();
        for subset in &subsets {
            let list = format!("{subset}/{LABELS_FILE}");
            if entries.contains(&list) {
                read_labels_json(input, &list, &mut items)?;
                continue;
            }
            let prefix = format!("{subset}/");
            for e in entries
                .iter()
                .filter(|e| e.starts_with(&prefix) && is_image(e))
            {
                let rel = &e[prefix.len()..];
                let p = parts(rel);
                if p.len() < 2 {
                    continue;
                }
                let (id, ext) = split_ext(rel);
                items.push(ClassItem {
                    id: id.to_owned(),
                    image_ext: ext.to_owned(),
                    labels: vec![p[0].to_owned()],
                    file: e.clone(),
                    location: String::new(),
                });
            }
        }

        let matcher = ItemMatcher::new(ds, items.iter().map(|i| i.id.as_str()));
        let mut out = Annotations::default();
        for it in &items {
            let rel = matcher.frame(&it.id, &it.image_ext, &it.file, || it.location.clone())?;
            for name in it.labels.iter().filter(|l| *l != NO_LABEL) {
                let label = ds.labels.by_name(name).ok_or_else(|| {
                    FormatError::invalid(
                        &it.file,
                        it.location.clone(),
                        format!("label '{name}' is not registered in the task"),
                    )
                })?;
                out.tags.push(Tag {
                    id: None,
                    frame: rel,
                    label_id: label.id,
                    group: 0,
                    source: "file".into(),
                    attributes: vec![],
                });
            }
        }
        Ok(out)
    }
}

/// The items of a subset's `labels.json`: `{id: {"labels": [...], "path": "<label>/<image>"}}`.
fn read_labels_json(
    input: &ImportInput,
    file: &str,
    items: &mut Vec<ClassItem>,
) -> Result<(), FormatError> {
    let text = read_text(input, file)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        FormatError::invalid(
            file,
            format!("line {}", e.line()),
            format!("malformed JSON: {e}"),
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(FormatError::invalid(
            file,
            "",
            "expected an object of items",
        ));
    };
    for (id, info) in map {
        let location = format!("item '{id}'");
        let bad = |why: &str| FormatError::invalid(file, location.clone(), why.to_owned());
        let labels = info
            .get("labels")
            .and_then(|l| l.as_array())
            .ok_or_else(|| bad("'labels' must be a list of label names"))?
            .iter()
            .map(|l| l.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| bad("'labels' must be a list of label names"))?;
        let path = info
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or_else(|| bad("'path' must be the image's path"))?;
        items.push(ClassItem {
            image_ext: split_ext(path).1.to_owned(),
            id,
            labels,
            file: file.to_owned(),
            location,
        });
    }
    Ok(())
}
