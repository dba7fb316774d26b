//! The YOLO 1.1 import: CVAT's `yolo` importer on Datumaro's extractor. `obj.data` (the
//! shallowest in the archive) gives the class list and the subset lists; each listed image's
//! `.txt` beside it holds its boxes, sized by the task frame the item matches.

use std::collections::HashSet;

use crate::annotations::{Annotations, ShapeType};
use crate::formats::kit::darknet::{
    archive_files, class_id, localize, number, read_text, under, ItemMatcher,
};
use crate::formats::kit::input::file_shape;
use crate::formats::kit::paths::{basename, dirname, parts, split_ext};
use crate::formats::{FormatError, ImportInput, TaskDataset};

use super::export::RESERVED_KEYS;

const FORMAT: &str = "YOLO 1.1";

fn not_yolo(reason: impl Into<String>) -> FormatError {
    FormatError::NotThisFormat {
        format: FORMAT.into(),
        reason: reason.into(),
    }
}

/// Datumaro's `name_from_path`: the item id of an image path `[data/]obj_<subset>_data/<id>.ext`.
fn item_id(path: &str) -> String {
    let p = parts(localize(path));
    let rest = if p.len() > 1 { &p[1..] } else { &p[..] };
    split_ext(&rest.join("/")).0.to_owned()
}

/// One item of a subset list: its id, its image's extension and its `.txt` entry.
struct ListedItem {
    id: String,
    image_ext: String,
    txt: String,
    /// The list file and line naming it, for errors.
    list: String,
    line: usize,
}

/// One box line of a `.txt`, checked: class id and the four normalised values.
fn parse_line(line: &str, names: usize) -> Result<Option<(usize, [f64; 4])>, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.is_empty() {
        return Ok(None);
    }
    if fields.len() != 5 {
        return Err(format!(
            "{} values, expected 5 (class id, x centre, y centre, width, height)",
            fields.len()
        ));
    }
    let class = class_id(fields[0], names, "obj.names")?;
    let mut v = [0.0; 4];
    for (k, what) in ["x centre", "y centre", "width", "height"]
        .iter()
        .enumerate()
    {
        v[k] = number(fields[k + 1], what)?;
    }
    Ok(Some((class, v)))
}

impl crate::formats::Importer for super::Yolo {
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        import(input, ds)
    }
}

fn import(input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
    if !input.is_zip() {
        return Err(not_yolo("a YOLO dataset is a zip archive"));
    }
    let entries = archive_files(input);
    let data_file = entries
        .iter()
        .filter(|n| basename(n) == "obj.data")
        .min_by_key(|n| (n.matches('/').count(), n.len()))
        .ok_or_else(|| not_yolo("no obj.data in the archive"))?
        .clone();
    let root = dirname(&data_file).to_owned();
    let present: HashSet<&str> = entries.iter().map(String::as_str).collect();

    // obj.data: `key = value` lines.
    let data = read_text(input, &data_file)?;
    let mut names_path = None;
    let mut lists: Vec<(String, String)> = Vec::new();
    for (k, line) in data.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            FormatError::invalid(
                &data_file,
                format!("line {}", k + 1),
                "expected 'key = value'",
            )
        })?;
        let (key, value) = (key.trim(), value.trim());
        if key == "names" {
            names_path = Some(value.to_owned());
        } else if !RESERVED_KEYS.contains(&key) && !value.is_empty() {
            lists.push((key.to_owned(), value.to_owned()));
        }
    }
    let names_path = names_path
        .ok_or_else(|| FormatError::invalid(&data_file, "", "no 'names' entry (the class list)"))?;
    let names_file = under(&root, localize(&names_path));
    if !present.contains(names_file.as_str()) {
        return Err(FormatError::invalid(
            &names_file,
            "",
            format!("the class list '{names_path}' named by {data_file} is not in the archive"),
        ));
    }
    let names: Vec<String> = read_text(input, &names_file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();

    // The subset lists: one image path a line.
    let mut items = Vec::new();
    for (subset, path) in &lists {
        let list = under(&root, localize(path));
        if !present.contains(list.as_str()) {
            return Err(FormatError::invalid(
                &data_file,
                "",
                format!("cannot find the '{subset}' subset list '{path}'"),
            ));
        }
        for (k, line) in read_text(input, &list)?.lines().enumerate() {
            let image = line.trim();
            if image.is_empty() {
                continue;
            }
            let local = localize(image);
            items.push(ListedItem {
                id: item_id(image),
                image_ext: split_ext(local).1.to_owned(),
                txt: under(&root, &format!("{}.txt", split_ext(local).0)),
                list: list.clone(),
                line: k + 1,
            });
        }
    }

    let matcher = ItemMatcher::new(ds, items.iter().map(|i| i.id.as_str()));
    let mut out = Annotations::default();
    for it in &items {
        let rel = matcher.frame(&it.id, &it.image_ext, &it.list, || {
            format!("line {}", it.line)
        })?;
        let frame = ds.frame_index(rel).map(|i| &ds.frames[i]).ok_or_else(|| {
            FormatError::invalid(&it.list, format!("line {}", it.line), "no such frame")
        })?;
        if !present.contains(it.txt.as_str()) {
            continue;
        }
        let text = read_text(input, &it.txt)?;
        let (w, h) = (f64::from(frame.width), f64::from(frame.height));
        for (k, line) in text.lines().enumerate() {
            let parsed = parse_line(line, names.len())
                .map_err(|r| FormatError::invalid(&it.txt, format!("line {}", k + 1), r))?;
            let Some((class, [cx, cy, bw, bh])) = parsed else {
                continue;
            };
            let name = &names[class];
            let label = ds.labels.by_name(name).ok_or_else(|| {
                FormatError::invalid(
                    &it.txt,
                    format!("line {}", k + 1),
                    format!("label '{name}' is not registered in the task"),
                )
            })?;
            let (x, y) = ((cx - bw * 0.5) * w, (cy - bh * 0.5) * h);
            out.shapes.push(file_shape(
                ShapeType::Rectangle,
                rel,
                label.id,
                vec![x, y, x + bw * w, y + bh * h],
            ));
        }
    }
    Ok(out)
}
