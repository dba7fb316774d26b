//! The imports: Datumaro's `voc` importer as CVAT calls it for both formats (every VOC task:
//! class lists, `Annotations/*.xml` boxes, layout parts, segmentation PNGs), masks turned into
//! polygons (`conv_mask_to_poly`, CVAT's default), then CVAT's `import_dm_annotations` (frame
//! matching, labels by name, attributes by name, groups of two or more shapes kept).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::annotations::{
    check_value, Annotations, AttributeVal, LabelInfo, Shape, ShapeType, Tag,
};
use crate::formats::kit::frames::{FrameAttr, FrameMatcher, Item, Root};
use crate::formats::kit::input::file_shape;
use crate::formats::kit::mask::datumaro_coord;
use crate::formats::kit::paths::{basename, is_metadata_entry, split_ext};
use crate::formats::{read_error, DatasetFrame, FormatError, ImportInput, TaskDataset};

use super::labelmap::{self, Categories, LabelMap};
use super::segm::{
    decode_png, instance_inverse, packed, read_masks, to_indices, CLASS_DIR, OBJECT_DIR,
};
use super::xml::Doc;
use super::Flavour;

/// The VOC task folders of `ImageSets/`, in the order Datumaro looks for them.
const TASK_DIRS: [&str; 4] = ["Main", "Segmentation", "Layout", "Action"];

/// Items decoded on all cores at a time.
const BATCH: usize = 64;

fn not_this(flavour: Flavour, reason: impl Into<String>) -> FormatError {
    FormatError::NotThisFormat {
        format: flavour.name().into(),
        reason: reason.into(),
    }
}

fn read_bytes(input: &ImportInput, name: &str) -> Result<Vec<u8>, FormatError> {
    let bytes = input.with_reader(name, |r, _| {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map(|_| buf)
    })?;
    bytes.map_err(|e| read_error(name, e))
}

fn read_text(input: &ImportInput, name: &str) -> Result<String, FormatError> {
    String::from_utf8(read_bytes(input, name)?)
        .map_err(|e| FormatError::invalid(name, "", format!("not UTF-8 text: {e}")))
}

/// An attribute value as Datumaro's extractor gives it.
#[derive(Debug, Clone)]
enum Val {
    Bool(bool),
    Str(String),
}

/// One item of the dataset: its id, subset, and which task lists name it.
#[derive(Default)]
struct ItemInfo {
    id: String,
    subset: String,
    main: bool,
    segm: bool,
    layout: bool,
    /// The first list and line naming it, for errors.
    list: String,
    line: usize,
}

/// What is read of an item before decoding.
struct Raw {
    xml: Option<(String, String)>,
    class_png: Option<(String, Vec<u8>)>,
    inst_png: Option<(String, Vec<u8>)>,
}

/// A shape read from the dataset, its group key (Datumaro's group) still to be renumbered.
struct Read {
    group: i64,
    shape: Shape,
}

struct Ctx<'a> {
    ds: &'a TaskDataset<'a>,
    cats: Categories,
    class_inverse: HashMap<u32, usize>,
    inst_inverse: HashMap<u32, usize>,
}

impl Ctx<'_> {
    /// The task label of category `index` (an error names `file` and `location`).
    fn task_label(
        &self,
        index: usize,
        file: &str,
        location: &str,
    ) -> Result<&LabelInfo, FormatError> {
        let name = self.cats.names.get(index).ok_or_else(|| {
            FormatError::invalid(
                file,
                location,
                format!(
                    "class index {index} is not in the label map ({} labels)",
                    self.cats.names.len()
                ),
            )
        })?;
        self.ds.labels.by_name(name).ok_or_else(|| {
            FormatError::invalid(
                file,
                location,
                format!("label '{name}' is not registered in the task"),
            )
        })
    }

    /// CVAT's attribute import: values matched to the label's specs by name (others dropped),
    /// checkboxes normalised, every value checked.
    fn attributes(
        &self,
        label: &LabelInfo,
        attrs: &[(String, Val)],
        err: &dyn Fn(String) -> FormatError,
    ) -> Result<Vec<AttributeVal>, FormatError> {
        let mut out: Vec<AttributeVal> = Vec::new();
        for (name, v) in attrs {
            let Some((spec_id, spec)) = label.attributes.iter().find(|(_, s)| s.name == *name)
            else {
                continue;
            };
            let mut text = match v {
                Val::Bool(b) => b.to_string(),
                Val::Str(s) => s.clone(),
            };
            if spec.input_type == "checkbox" && text != spec.default_value {
                text = text.to_ascii_lowercase();
            }
            check_value(spec, &text).map_err(|why| {
                err(format!(
                    "attribute '{name}' of label '{}': {why}",
                    label.name
                ))
            })?;
            match out.iter_mut().find(|a| a.spec_id == *spec_id) {
                Some(a) => a.value = text,
                None => out.push(AttributeVal {
                    spec_id: *spec_id,
                    value: text,
                }),
            }
        }
        Ok(out)
    }

    /// The boxes of one `Annotations/<id>.xml` (and the parts of its objects when the item is in
    /// a layout list).
    fn read_xml(
        &self,
        file: &str,
        text: &str,
        frame: &DatasetFrame,
        layout: bool,
        out: &mut Vec<Read>,
    ) -> Result<(), FormatError> {
        let doc = Doc::parse(text, file)?;
        if doc.nodes[0].tag != "annotation" {
            return Err(doc.error(0, "the root element is not <annotation>"));
        }
        // <size>: must agree with the task frame.
        let int = |n: Option<usize>| n.and_then(|n| doc.text(n)).map(|t| t.trim().parse::<i64>());
        let size = doc.find(0, "size");
        let (w, h) = (
            int(size.and_then(|s| doc.find(s, "width"))),
            int(size.and_then(|s| doc.find(s, "height"))),
        );
        if let (Some(w), Some(h)) = (&w, &h) {
            let s = size.expect("size");
            let (w, h) = match (w, h) {
                (Ok(w), Ok(h)) => (*w, *h),
                _ => {
                    return Err(doc.error(s, "<size> has a width or height that is not an integer"))
                }
            };
            if w != 0 && h != 0 && (w != i64::from(frame.width) || h != i64::from(frame.height)) {
                return Err(doc.error(
                    s,
                    format!(
                        "the image size {w}x{h} is not the size of the task frame '{}' ({}x{})",
                        frame.name, frame.width, frame.height
                    ),
                ));
            }
        }
        let number = |n: usize, tag: &str| -> Result<f64, FormatError> {
            let e = doc
                .find(n, tag)
                .ok_or_else(|| doc.error(n, format!("no <{tag}>")))?;
            doc.text(e)
                .and_then(|t| t.trim().parse::<f64>().ok())
                .ok_or_else(|| doc.error(e, format!("<{tag}> is not a number")))
        };
        let bbox = |n: usize| -> Result<[f64; 4], FormatError> {
            let b = doc
                .find(n, "bndbox")
                .filter(|&b| !doc.nodes[b].children.is_empty())
                .ok_or_else(|| doc.error(n, "no <bndbox>"))?;
            let (x1, x2) = (number(b, "xmin")?, number(b, "xmax")?);
            let (y1, y2) = (number(b, "ymin")?, number(b, "ymax")?);
            // Bbox(x, y, w, h), stored as Datumaro stores points.
            let (bw, bh) = (x2 - x1, y2 - y1);
            Ok([x1, y1, x1 + bw, y1 + bh].map(datumaro_coord))
        };
        let flag = |n: usize, tag: &str| -> Result<Option<bool>, FormatError> {
            match doc.find(n, tag) {
                None => Ok(None),
                Some(e) => match doc.text(e) {
                    Some("0") => Ok(Some(false)),
                    Some("1") => Ok(Some(true)),
                    _ => Err(doc.error(e, format!("<{tag}> must be 0 or 1"))),
                },
            }
        };
        for (k, obj) in doc.find_all(0, "object").enumerate() {
            let group = k as i64 + 1;
            let err = |why: String| doc.error(obj, why);
            let name_el = doc
                .find(obj, "name")
                .ok_or_else(|| err("no <name>".into()))?;
            let name = doc.text(name_el).unwrap_or("");
            let index = self.cats.index(name).ok_or_else(|| {
                doc.error(name_el, format!("label '{name}' is not in the label map"))
            })?;
            let points = bbox(obj)?;
            let mut attrs: Vec<(String, Val)> = Vec::new();
            for key in ["difficult", "truncated", "occluded"] {
                attrs.push((key.into(), Val::Bool(flag(obj, key)?.unwrap_or(false))));
            }
            if let Some(p) = doc.find(obj, "pose").and_then(|p| doc.text(p)) {
                attrs.push(("pose".into(), Val::Str(p.to_owned())));
            }
            let mut actions: Vec<(String, bool)> = self.cats.actions[index]
                .iter()
                .map(|a| (a.clone(), false))
                .collect();
            if let Some(ae) = doc.find(obj, "actions") {
                for &c in &doc.nodes[ae].children {
                    let tag = doc.nodes[c].tag.clone();
                    let v = flag(ae, &tag)?.unwrap_or(false);
                    match actions.iter_mut().find(|(a, _)| *a == tag) {
                        Some(e) => e.1 = v,
                        None => actions.push((tag, v)),
                    }
                }
            }
            attrs.extend(actions.into_iter().map(|(a, v)| (a, Val::Bool(v))));
            for part in doc.find_all(obj, "part") {
                let pn = doc
                    .find(part, "name")
                    .and_then(|n| doc.text(n))
                    .unwrap_or("");
                let pidx = self.cats.index(pn).ok_or_else(|| {
                    doc.error(part, format!("label '{pn}' is not in the label map"))
                })?;
                let pbox = bbox(part)?;
                if !layout {
                    break; // the detection reader checks the first part only
                }
                let plabel = self.task_label(pidx, file, &format!("line {}", doc.line(part)))?;
                out.push(Read {
                    group,
                    shape: file_shape(ShapeType::Rectangle, frame.rel, plabel.id, pbox.to_vec()),
                });
            }
            if let Some(ae) = doc.find(obj, "attributes") {
                for a in doc.find_all(ae, "attribute") {
                    let n = doc
                        .find(a, "name")
                        .ok_or_else(|| doc.error(a, "no <name>"))?;
                    let v = doc
                        .find(a, "value")
                        .ok_or_else(|| doc.error(a, "no <value>"))?;
                    let key = doc.text(n).unwrap_or("").to_owned();
                    let val = Val::Str(doc.text(v).unwrap_or("").to_owned());
                    match attrs.iter_mut().find(|(k, _)| *k == key) {
                        Some(e) => e.1 = val,
                        None => attrs.push((key, val)),
                    }
                }
            }
            let label = self.task_label(index, file, &format!("line {}", doc.line(obj)))?;
            let mut shape = file_shape(ShapeType::Rectangle, frame.rel, label.id, points.to_vec());
            for (k, v) in &attrs {
                match (k.as_str(), v) {
                    ("occluded", Val::Bool(b)) => shape.occluded = *b,
                    ("occluded", Val::Str(s)) => {
                        shape.occluded = matches!(s.to_ascii_lowercase().as_str(), "true" | "1")
                    }
                    ("rotation", Val::Str(s)) => {
                        shape.rotation = s
                            .trim()
                            .parse()
                            .map_err(|_| err(format!("the rotation '{s}' is not a number")))?
                    }
                    _ => {}
                }
            }
            shape.attributes = self.attributes(label, &attrs, &err)?;
            out.push(Read { group, shape });
        }
        Ok(())
    }

    /// The masks of an item's PNGs, as polygons.
    fn read_pngs(
        &self,
        raw: &Raw,
        frame: &DatasetFrame,
        out: &mut Vec<Read>,
    ) -> Result<(), FormatError> {
        let size_check = |file: &str, w: u32, h: u32| {
            if (w, h) != (frame.width, frame.height) {
                return Err(FormatError::invalid(
                    file,
                    "",
                    format!(
                        "the mask is {w}x{h}, the task frame '{}' is {}x{}",
                        frame.name, frame.width, frame.height
                    ),
                ));
            }
            Ok(())
        };
        let class = match &raw.class_png {
            Some((file, bytes)) => {
                let m = decode_png(bytes, file)?;
                size_check(file, m.width, m.height)?;
                Some((file.as_str(), to_indices(&m, &self.class_inverse, file)?))
            }
            None => None,
        };
        let inst = match &raw.inst_png {
            Some((file, bytes)) => {
                let m = decode_png(bytes, file)?;
                size_check(file, m.width, m.height)?;
                Some((file.as_str(), to_indices(&m, &self.inst_inverse, file)?))
            }
            None => None,
        };
        if let (Some((file, _)), None) = (&inst, &class) {
            return Err(FormatError::invalid(
                file,
                "",
                "instance masks without a class mask in SegmentationClass/: the instances have no labels",
            ));
        }
        let masks = read_masks(
            class.as_ref().map(|c| c.1.as_slice()),
            inst.as_ref().map(|c| c.1.as_slice()),
            (frame.width, frame.height),
        );
        let file = class.as_ref().map_or("", |c| c.0);
        for m in masks {
            let label = self.task_label(m.class, file, "")?;
            for p in m.polygons {
                out.push(Read {
                    group: m.group as i64,
                    shape: file_shape(ShapeType::Polygon, frame.rel, label.id, p),
                });
            }
        }
        Ok(())
    }
}

/// `<dir>/ImageSets/<task>/<name>.txt` → `(dir, task, name)` for subset lists (names without `_`).
fn subset_list(entry: &str) -> Option<(&str, &'static str, &str)> {
    let (rest, file) = entry.rsplit_once('/')?;
    let name = file.strip_suffix(".txt")?;
    if name.contains('_') || name.is_empty() {
        return None;
    }
    let (rest, task) = rest.rsplit_once('/').unwrap_or(("", rest));
    let task = TASK_DIRS.iter().find(|t| **t == task)?;
    let root = if rest == "ImageSets" {
        ""
    } else {
        rest.strip_suffix("/ImageSets")?
    };
    Some((root, task, name))
}

pub(super) fn import(
    flavour: Flavour,
    input: &ImportInput,
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    if !input.is_zip() {
        return Err(not_this(flavour, "a VOC dataset is a zip archive"));
    }
    let entries: Vec<String> = input
        .names()
        .into_iter()
        .filter(|n| !is_metadata_entry(n) && !n.ends_with('/'))
        .collect();
    let present: HashSet<&str> = entries.iter().map(String::as_str).collect();

    // PASCAL VOC: an archive without Annotations/ is flat: every *.xml is an annotation file
    // of the 'train' subset (CVAT moves them into Annotations/ and writes the list).
    let mut xml_of: HashMap<String, String> = HashMap::new();
    let mut generated: Option<Vec<String>> = None;
    if flavour == Flavour::Voc && !entries.iter().any(|e| e.starts_with("Annotations/")) {
        let mut xmls: Vec<&String> = entries.iter().filter(|e| e.ends_with(".xml")).collect();
        xmls.sort();
        let mut ids = Vec::new();
        let mut any_voc = false;
        for x in xmls {
            let id = split_ext(basename(x)).0.to_owned();
            if let Some(prev) = xml_of.get(&id) {
                return Err(FormatError::invalid(
                    x,
                    "",
                    format!("a flat VOC archive has '{prev}' with the same file name"),
                ));
            }
            if !any_voc {
                let text = read_text(input, x)?;
                any_voc = Doc::parse(&text, x).is_ok_and(|d| d.nodes[0].tag == "annotation");
            }
            xml_of.insert(id.clone(), x.clone());
            ids.push(id);
        }
        if !any_voc && !entries.iter().any(|e| subset_list(e).is_some()) {
            return Err(not_this(
                flavour,
                "no Annotations/ folder and no VOC annotation (<annotation>) XML file",
            ));
        }
        generated = Some(ids);
    }

    // The dataset root: where the first task's subset lists are (the shallowest).
    let lists: Vec<(&str, &str, &str, &str)> = entries
        .iter()
        .filter_map(|e| subset_list(e).map(|(r, t, n)| (r, t, n, e.as_str())))
        .collect();
    let root: String = if generated.is_some() {
        String::new()
    } else {
        TASK_DIRS
            .iter()
            .find_map(|t| {
                lists
                    .iter()
                    .filter(|l| {
                        l.1 == *t && l.0.matches('/').count() + usize::from(!l.0.is_empty()) <= 3
                    })
                    .map(|l| l.0)
                    .min_by_key(|r| (r.matches('/').count() + usize::from(!r.is_empty()), r.len()))
            })
            .ok_or_else(|| {
                not_this(
                    flavour,
                    "no subset list ImageSets/{Main,Segmentation,Layout,Action}/<subset>.txt",
                )
            })?
            .to_owned()
    };
    let under = |p: &str| {
        if root.is_empty() {
            p.to_owned()
        } else {
            format!("{root}/{p}")
        }
    };
    if generated.is_none() {
        for e in &entries {
            if let Some(rest) = e.strip_prefix(&under("Annotations/")) {
                if let Some(id) = rest.strip_suffix(".xml") {
                    xml_of.insert(id.to_owned(), e.clone());
                }
            }
        }
    }

    // The label map: labelmap.txt, else (PASCAL VOC) the task's labels, else VOC's own.
    let lm_file = under(labelmap::FILE);
    let map = if present.contains(lm_file.as_str()) {
        LabelMap::parse(&read_text(input, &lm_file)?, &lm_file)?
    } else if flavour == Flavour::Voc {
        LabelMap::synthesised(ds.labels)
    } else {
        LabelMap::default_voc()
    };
    let cats = map.categories();
    let class_inverse = cats
        .inverse()
        .into_iter()
        .map(|(c, i)| (packed(c), i))
        .collect();
    let ctx = Ctx {
        ds,
        cats,
        class_inverse,
        inst_inverse: instance_inverse(),
    };

    // Items of every list, in order of appearance.
    let mut items: Vec<ItemInfo> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut add =
        |items: &mut Vec<ItemInfo>, id: &str, subset: &str, task: &str, list: &str, line: usize| {
            let k = *index
                .entry((subset.to_owned(), id.to_owned()))
                .or_insert_with(|| {
                    items.push(ItemInfo {
                        id: id.to_owned(),
                        subset: subset.to_owned(),
                        list: list.to_owned(),
                        line,
                        ..Default::default()
                    });
                    items.len() - 1
                });
            let it = &mut items[k];
            match task {
                "Main" => it.main = true,
                "Segmentation" => it.segm = true,
                "Layout" => it.layout = true,
                _ => {}
            }
        };
    let mut main_subsets: Vec<String> = Vec::new();
    for task in TASK_DIRS {
        let mut files: Vec<(&str, &str)> = lists
            .iter()
            .filter(|l| l.0 == root && l.1 == task)
            .map(|l| (l.2, l.3))
            .collect();
        files.sort();
        if task == "Main" {
            if let Some(ids) = &generated {
                files.retain(|f| f.0 != "train");
                let gen = under("ImageSets/Main/train.txt");
                for (k, id) in ids.iter().enumerate() {
                    add(&mut items, id, "train", task, &gen, k + 1);
                }
                main_subsets.push("train".into());
            }
        }
        for (subset, file) in files {
            if task == "Main" {
                main_subsets.push(subset.to_owned());
            }
            for (k, line) in read_text(input, file)?.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let id = if task == "Layout" {
                    let q: Vec<&str> = line.split('"').collect();
                    match q.len() {
                        1 => line.split_whitespace().next().unwrap_or(""),
                        3 => q[1],
                        _ => {
                            return Err(FormatError::invalid(
                                file,
                                format!("line {}", k + 1),
                                "unexpected number of quotes in the file name, expected 0 or 2",
                            ))
                        }
                    }
                } else {
                    line
                };
                add(&mut items, id, subset, task, file, k + 1);
            }
        }
    }

    // Classification: Main/<label>_<subset>.txt, "<item> 1" for a tag.
    let mut labels_of: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for subset in &main_subsets {
        for (li, name) in ctx.cats.names.iter().enumerate() {
            let file = under(&format!("ImageSets/Main/{name}_{subset}.txt"));
            if !present.contains(file.as_str()) {
                continue;
            }
            for (k, line) in read_text(input, &file)?.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let bad = |r: &str| FormatError::invalid(&file, format!("line {}", k + 1), r);
                let (item, flag) = line
                    .rsplit_once(char::is_whitespace)
                    .ok_or_else(|| bad("expected '<image> <-1, 0 or 1>'"))?;
                match flag {
                    "1" => labels_of
                        .entry((subset.clone(), item.trim_end().to_owned()))
                        .or_default()
                        .push(li),
                    "0" | "-1" => {}
                    _ => return Err(bad("the class presence must be -1, 0 or 1")),
                }
            }
        }
    }

    // Frames.
    let matcher = FrameMatcher::new(&ds.frames, ds.is_video());
    let hint = matcher.root_hint(items.iter().map(|i| i.id.as_str()));
    let image_ext: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|e| e.strip_prefix(&under("JPEGImages/")).map(split_ext))
        .collect();
    let mut frames: Vec<&DatasetFrame> = Vec::with_capacity(items.len());
    let mut raws: Vec<Raw> = Vec::with_capacity(items.len());
    for it in &items {
        let xml = match (it.main || it.layout, xml_of.get(&it.id)) {
            (true, Some(f)) => Some((f.clone(), read_text(input, f)?)),
            _ => None,
        };
        // The image's extension: the XML's <filename>, else the image in JPEGImages/.
        let ext_from_xml = xml.as_ref().and_then(|(_, t)| {
            let a = t.find("<filename>")? + "<filename>".len();
            let b = a + t[a..].find("</filename>")?;
            Some(split_ext(&t[a..b]).1.to_owned())
        });
        let ext = ext_from_xml
            .or_else(|| image_ext.get(it.id.as_str()).map(|e| e.to_string()))
            .unwrap_or_default();
        let item = Item {
            id: &it.id,
            image_ext: (!ext.is_empty()).then_some(ext.as_str()),
            frame: FrameAttr::Absent,
        };
        let frame =
            matcher.listed_frame(ds, &item, Root::Hint(hint.as_deref()), &it.list, it.line)?;
        let png = |dir: &str| -> Result<Option<(String, Vec<u8>)>, FormatError> {
            let f = under(&format!("{dir}/{}.png", it.id));
            if it.segm && present.contains(f.as_str()) {
                Ok(Some((f.clone(), read_bytes(input, &f)?)))
            } else {
                Ok(None)
            }
        };
        raws.push(Raw {
            xml,
            class_png: png(CLASS_DIR)?,
            inst_png: png(OBJECT_DIR)?,
        });
        frames.push(frame);
    }

    // Decode on all cores, a batch at a time; errors in item order.
    let mut out = Annotations::default();
    for (b, chunk) in raws.chunks(BATCH).enumerate() {
        let base = b * BATCH;
        let read: Vec<Result<Vec<Read>, FormatError>> = chunk
            .par_iter()
            .enumerate()
            .map(|(k, raw)| {
                let (it, frame) = (&items[base + k], frames[base + k]);
                let mut v = Vec::new();
                if let Some((file, text)) = &raw.xml {
                    ctx.read_xml(file, text, frame, it.layout, &mut v)?;
                }
                ctx.read_pngs(raw, frame, &mut v)?;
                Ok(v)
            })
            .collect();
        for (k, r) in read.into_iter().enumerate() {
            let (it, frame) = (&items[base + k], frames[base + k]);
            let mut shapes = r?;
            if it.main {
                if let Some(ls) = labels_of.get(&(it.subset.clone(), it.id.clone())) {
                    let file = under(&format!("ImageSets/Main/<label>_{}.txt", it.subset));
                    for &li in ls {
                        let label = ctx.task_label(li, &file, &format!("item '{}'", it.id))?;
                        out.tags.push(Tag {
                            id: None,
                            frame: frame.rel,
                            label_id: label.id,
                            group: 0,
                            source: "file".into(),
                            attributes: vec![],
                        });
                    }
                }
            }
            // Groups of two or more shapes survive, renumbered 1..n in key order.
            let mut keys: Vec<i64> = shapes.iter().map(|s| s.group).collect();
            keys.sort_unstable();
            let kept: Vec<i64> = keys
                .chunk_by(|a, b| a == b)
                .filter(|run| run[0] != 0 && run.len() > 1)
                .map(|run| run[0])
                .collect();
            for s in shapes.drain(..) {
                let mut shape = s.shape;
                shape.group = kept.binary_search(&s.group).map_or(0, |i| i as u64 + 1);
                out.shapes.push(shape);
            }
        }
    }
    Ok(out)
}
