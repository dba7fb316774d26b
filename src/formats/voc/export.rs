//! The exports: Datumaro's `voc` converter as CVAT calls it for PASCAL VOC 1.1 (`label_map =
//! "source"`, every VOC task) and `voc_segmentation` for Segmentation mask 1.1 (the task's colour
//! map, shapes rasterised first).

use std::fmt::Write as _;

use rayon::prelude::*;

use crate::annotations::{LabelInfo, ShapeType};
use crate::formats::kit::dataset::ShapeView;
use crate::formats::kit::images::image_names;
use crate::formats::kit::json::write::put_py_float;
use crate::formats::kit::mask::datumaro_coord;
use crate::formats::kit::paths::{export_subset, split_ext};
use crate::formats::kit::xml::escape_text;
use crate::formats::{
    DatasetFrame, ExportOptions, FormatError, FrameAnnotations, FrameSource, TaskDataset, ZipSink,
};

use super::labelmap::{self, Categories, LabelMap};
use super::segm::{frame_pngs, SegMode, CLASS_DIR, OBJECT_DIR};
use super::Flavour;

/// Frames rendered on all cores at a time (their PNGs are held until written in order).
const BATCH: usize = 64;

/// The item id of a frame: its path without extension (leading `/` dropped).
pub(super) fn item_id(f: &DatasetFrame) -> &str {
    split_ext(f.name.trim_start_matches('/')).0
}

/// What one frame gives the archive.
struct Rendered {
    xml: Option<String>,
    pngs: Option<(Vec<u8>, Vec<u8>)>,
    /// Whether the item has no annotation at all (Datumaro then lists it anyway).
    empty: bool,
}

/// An attribute value as Datumaro holds it (CVAT's `_convert_attrs`).
#[derive(Clone, Copy)]
enum Val<'v> {
    Num(f64),
    Int(u64),
    Bool(bool),
    Str(&'v str),
}

impl Val<'_> {
    /// Python's `str(value)`.
    fn put(self, out: &mut String) {
        match self {
            Val::Num(v) => put_py_float(out, v),
            Val::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Val::Bool(b) => out.push_str(if b { "True" } else { "False" }),
            Val::Str(s) => escape_text(s, out),
        }
    }

    /// `int(value)`, 0 when Python's `int()` would fail (Datumaro's `_convert_attr` default).
    fn int(self) -> i64 {
        match self {
            Val::Num(v) => v.trunc() as i64,
            Val::Int(v) => v as i64,
            Val::Bool(b) => i64::from(b),
            Val::Str(s) => s.trim().parse().unwrap_or(0),
        }
    }
}

/// A shape's attributes in Datumaro's order: its label's (defaults filled in), then `occluded`,
/// `rotation`, `track_id`, `keyframe` (replacing a label attribute of that name in place).
fn shape_attrs<'v>(label: &'v LabelInfo, s: &ShapeView<'v>, out: &mut Vec<(&'v str, Val<'v>)>) {
    out.clear();
    for (spec_id, spec) in &label.attributes {
        let raw = s
            .attributes
            .iter()
            .find(|a| a.spec_id == *spec_id)
            .map_or(spec.default_value.as_str(), |a| a.value.as_str());
        let v = match spec.input_type.as_str() {
            "number" => raw.trim().parse().map_or(Val::Str(raw), Val::Num),
            "checkbox" => Val::Bool(raw.eq_ignore_ascii_case("true")),
            _ => Val::Str(raw),
        };
        out.push((spec.name.as_str(), v));
    }
    let mut set = |k: &'v str, v: Val<'v>| match out.iter_mut().find(|(n, _)| *n == k) {
        Some(e) => e.1 = v,
        None => out.push((k, v)),
    };
    set("occluded", Val::Bool(s.occluded));
    if matches!(s.kind, ShapeType::Rectangle | ShapeType::Ellipse) {
        set("rotation", Val::Num(s.rotation));
    }
    if let Some(t) = s.track {
        set("track_id", Val::Int(t as u64));
        set("keyframe", Val::Bool(s.keyframe));
    }
}

/// `<tag>text</tag>` on its own line at `depth`.
fn elem(out: &mut String, depth: usize, tag: &str, text: impl FnOnce(&mut String)) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push('<');
    out.push_str(tag);
    out.push('>');
    text(out);
    out.push_str("</");
    out.push_str(tag);
    out.push_str(">\n");
}

fn open(out: &mut String, depth: usize, tag: &str, close: bool) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push('<');
    if close {
        out.push('/');
    }
    out.push_str(tag);
    out.push_str(">\n");
}

/// `Annotations/<id>.xml` as lxml pretty-prints Datumaro's tree.
fn write_xml(
    out: &mut String,
    id: &str,
    filename: &str,
    f: &DatasetFrame,
    segmented: bool,
    boxes: &[ShapeView<'_>],
    ds: &TaskDataset<'_>,
) {
    let mut attrs = Vec::new();
    out.push_str("<annotation>\n");
    let folder = id.find('_').map_or("", |k| &id[..k]);
    elem(out, 1, "folder", |o| escape_text(folder, o));
    elem(out, 1, "filename", |o| escape_text(filename, o));
    open(out, 1, "source", false);
    for t in ["database", "annotation", "image"] {
        elem(out, 2, t, |o| o.push_str("Unknown"));
    }
    open(out, 1, "source", true);
    open(out, 1, "size", false);
    elem(out, 2, "width", |o| {
        let _ = write!(o, "{}", f.width);
    });
    elem(out, 2, "height", |o| {
        let _ = write!(o, "{}", f.height);
    });
    elem(out, 2, "depth", |_| {});
    open(out, 1, "size", true);
    elem(out, 1, "segmented", |o| {
        o.push(if segmented { '1' } else { '0' });
    });
    for s in boxes {
        let Some(label) = ds.labels.get(s.label_id) else {
            continue;
        };
        shape_attrs(label, s, &mut attrs);
        let get = |k: &str| attrs.iter().find(|(n, _)| *n == k).map(|e| e.1);
        open(out, 1, "object", false);
        elem(out, 2, "name", |o| escape_text(&label.name, o));
        if let Some(pose) = get("pose") {
            elem(out, 2, "pose", |o| pose.put(o));
        }
        for k in ["truncated", "occluded", "difficult"] {
            let v = get(k).map_or(0, Val::int);
            elem(out, 2, k, |o| {
                let _ = write!(o, "{v}");
            });
        }
        // Bbox(x, y, w, h) of the stored (float32, 2 decimals) points.
        let p = s.points;
        let [x1, y1, x2, y2] = [p[0], p[1], p[2], p[3]].map(datumaro_coord);
        let (w, h) = (x2 - x1, y2 - y1);
        open(out, 2, "bndbox", false);
        for (t, v) in [
            ("xmin", x1),
            ("ymin", y1),
            ("xmax", x1 + w),
            ("ymax", y1 + h),
        ] {
            elem(out, 3, t, |o| put_py_float(o, v));
        }
        open(out, 2, "bndbox", true);
        let others: Vec<&(&str, Val<'_>)> = attrs
            .iter()
            .filter(|(n, _)| !["difficult", "pose", "truncated", "occluded"].contains(n))
            .collect();
        if !others.is_empty() {
            open(out, 2, "attributes", false);
            for (n, v) in others {
                open(out, 3, "attribute", false);
                elem(out, 4, "name", |o| escape_text(n, o));
                elem(out, 4, "value", |o| v.put(o));
                open(out, 3, "attribute", true);
            }
            open(out, 2, "attributes", true);
        }
        open(out, 1, "object", true);
    }
    out.push_str("</annotation>\n");
}

/// The label map a flavour writes.
fn label_map(flavour: Flavour, ds: &TaskDataset<'_>) -> LabelMap {
    match flavour {
        Flavour::Voc => LabelMap::from_source(ds.labels),
        Flavour::Segmentation => LabelMap::task_colormap(ds.labels),
    }
}

pub(super) fn export(
    flavour: Flavour,
    ds: &TaskDataset<'_>,
    opts: &ExportOptions,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    let subset = export_subset(ds)?;
    let mut map = label_map(flavour, ds);
    let bg_name = map.find_or_create_background();
    let cats: Categories = map.categories();
    let bg = cats.index(&bg_name).unwrap_or(0);
    let palette = cats.palette();
    let class_of = |label_id: i64| -> usize {
        ds.labels
            .get(label_id)
            .and_then(|l| cats.index(&l.name))
            .unwrap_or(bg)
    };

    // Images first (their extension comes from the frame source), then the annotations.
    let image_share = if opts.save_images { 0.5 } else { 0.0 };
    let image_names = image_names(ds, images, zip, opts.save_images, "JPEGImages", &|p| {
        progress(image_share * p)
    })?;

    // Frames of one item id (`a.jpg`, `a.png`) are one Datumaro item: the last one.
    let mut last_of_id = std::collections::HashMap::new();
    for (i, f) in ds.frames.iter().enumerate() {
        last_of_id.insert(item_id(f), i);
    }
    let written: Vec<usize> = (0..ds.frames.len())
        .filter(|&i| last_of_id.get(item_id(&ds.frames[i])) == Some(&i))
        .collect();
    let by_frame = FrameAnnotations::new(ds, |f| f.keep_in_frame_export());
    let mode = match flavour {
        Flavour::Voc => SegMode::MasksOnly,
        Flavour::Segmentation => SegMode::All,
    };

    let render = |i: usize| -> Result<Rendered, FormatError> {
        let f = &ds.frames[i];
        let objs = by_frame.shapes(i);
        let views: Vec<ShapeView<'_>> = objs
            .iter()
            .map(|o| o.view())
            .filter(|v| v.kind != ShapeType::Cuboid)
            .collect();
        let has_tags = by_frame.tags(i).next().is_some();
        let pngs =
            frame_pngs(&views, mode, (f.width, f.height), &class_of, &palette).map_err(|r| {
                FormatError::Frame {
                    frame: f.rel,
                    reason: r,
                }
            })?;
        // After the rasterisation, what is left of the item (Segmentation mask turns polygons,
        // boxes and ellipses into masks; polylines, points, skeletons and tags stay).
        let empty = views.is_empty() && !has_tags;
        let xml = (flavour == Flavour::Voc).then(|| {
            let boxes: Vec<ShapeView<'_>> = views
                .iter()
                .filter(|v| v.kind == ShapeType::Rectangle && v.points.len() >= 4)
                .cloned()
                .collect();
            let mut s = String::with_capacity(512 + 400 * boxes.len());
            write_xml(
                &mut s,
                item_id(f),
                &image_names[i],
                f,
                pngs.is_some(),
                &boxes,
                ds,
            );
            s
        });
        Ok(Rendered { xml, pngs, empty })
    };

    let mut main_list = String::new();
    let mut segm_list = String::new();
    // Per item with tags: the class indices of its tags.
    let mut class_lists: Vec<(&str, Vec<usize>)> = Vec::new();
    let n = written.len().max(1) as f64;
    for (b, batch) in written.chunks(BATCH).enumerate() {
        let rendered: Vec<Result<Rendered, FormatError>> =
            batch.par_iter().map(|&i| render(i)).collect();
        for (&i, r) in batch.iter().zip(rendered) {
            let r = r?;
            let id = item_id(&ds.frames[i]);
            if let Some(xml) = &r.xml {
                zip.stored_file(&format!("Annotations/{id}.xml"))?
                    .write_all(xml.as_bytes())?;
                main_list.push_str(id);
                main_list.push('\n');
                let tags: Vec<usize> = by_frame
                    .tags(i)
                    .filter_map(|t| ds.labels.get(t.label_id))
                    .filter_map(|l| cats.index(&l.name))
                    .collect();
                if !tags.is_empty() {
                    class_lists.push((id, tags));
                }
            }
            if let Some((class, inst)) = &r.pngs {
                zip.stored_file(&format!("{CLASS_DIR}/{id}.png"))?
                    .write_all(class)?;
                zip.stored_file(&format!("{OBJECT_DIR}/{id}.png"))?
                    .write_all(inst)?;
            }
            if r.pngs.is_some() || r.empty {
                segm_list.push_str(id);
                segm_list.push('\n');
            }
        }
        let done = ((b + 1) * BATCH).min(written.len()) as f64;
        progress(image_share + (1.0 - image_share) * 0.95 * done / n);
    }

    if flavour == Flavour::Voc && !main_list.is_empty() {
        zip.stored_file(&format!("ImageSets/Main/{subset}.txt"))?
            .write_all(main_list.as_bytes())?;
        if !class_lists.is_empty() {
            let mut text = String::new();
            for (ci, e) in map.entries.iter().enumerate() {
                let Some(c) = cats.index(&e.name).or(Some(ci)) else {
                    continue;
                };
                text.clear();
                for (id, tags) in &class_lists {
                    let present = if tags.contains(&c) { " 1" } else { "-1" };
                    let _ = writeln!(text, "{id} {present}");
                }
                zip.stored_file(&format!("ImageSets/Main/{}_{subset}.txt", e.name))?
                    .write_all(text.as_bytes())?;
            }
        }
    }
    if !segm_list.is_empty() {
        zip.stored_file(&format!("ImageSets/Segmentation/{subset}.txt"))?
            .write_all(segm_list.as_bytes())?;
    }
    zip.stored_file(labelmap::FILE)?
        .write_all(map.write().as_bytes())?;
    progress(1.0);
    Ok(())
}
