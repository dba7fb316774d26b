//! Conversion of parsed items to CVAT annotations, as CVAT's `import_dm_annotations` does it.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::annotations::{
    check_points, check_value, Annotations, AttrSpec, AttributeVal, LabelIndex, LabelInfo, Shape,
    ShapeType, Tag, Track, TrackedShape,
};
use crate::formats::kit::mask::{coco_counts_from_string, coco_to_cvat_mask};
use crate::formats::{FormatError, TaskDataset};

use super::parse::*;
use crate::formats::kit::frames::{py_int_str, FrameAttr, FrameMatcher, Item as MatchItem, Root};
use crate::formats::kit::json::read::*;
use crate::formats::kit::paths::{basename, split_ext};

// ------------------------------------------------------------------------------------------------
// Import: conversion to CVAT annotations

/// A Datumaro label category.
struct DmLabel {
    name: String,
}

/// One file's categories.
#[derive(Default)]
struct DmCategories {
    labels: Vec<DmLabel>,
    /// Skeleton label index → sub-label names in point order.
    points: HashMap<usize, Vec<String>>,
}

fn parse_categories(v: &Value) -> Result<DmCategories, String> {
    let mut out = DmCategories::default();
    let Some(obj) = v.as_object() else {
        return Err("\"categories\" must be an object".into());
    };
    if let Some(label) = obj.get("label").filter(|v| !v.is_null()) {
        let labels = label
            .get("labels")
            .and_then(Value::as_array)
            .ok_or("categories.label must have a \"labels\" list")?;
        for (i, l) in labels.iter().enumerate() {
            let name = l
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("categories.label.labels[{i}] has no name"))?;
            out.labels.push(DmLabel {
                name: name.to_owned(),
            });
        }
    }
    if let Some(points) = obj.get("points").filter(|v| !v.is_null()) {
        let items = points
            .get("items")
            .and_then(Value::as_array)
            .ok_or("categories.points must have an \"items\" list")?;
        for (i, it) in items.iter().enumerate() {
            let label_id = it
                .get("label_id")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("categories.points.items[{i}] has no label_id"))?;
            let names = it
                .get("labels")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|n| n.as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            out.points.insert(label_id as usize, names);
        }
    }
    Ok(out)
}

/// Where an item came from, for frame matching and error messages.
struct ItemRef {
    file: String,
    index: usize,
    id: String,
    image_ext: Option<String>,
    /// The `frame` attribute, read as Python's `int()` would.
    frame_attr: FrameAttr,
}

impl ItemRef {
    fn location(&self) -> String {
        format!("item '{}' (#{})", self.id, self.index)
    }
}

/// A skeleton element as read (visibility: hidden → occluded, absent → outside).
struct RawElement {
    label_id: i64,
    points: Vec<f64>,
    occluded: bool,
    outside: bool,
    attributes: Vec<AttributeVal>,
    source: String,
}

/// A track shape before frames are known.
#[derive(Clone)]
struct RawTracked {
    item: usize,
    frame: u64,
    kind: ShapeType,
    occluded: bool,
    outside: bool,
    keyframe: bool,
    points: Vec<f64>,
    z_order: i64,
    rotation: f64,
    attributes: Vec<AttributeVal>,
}

struct TrackAcc {
    key: String,
    label_id: i64,
    group: u64,
    source: String,
    shapes: Vec<RawTracked>,
    /// `(element label id, shapes)`, in order of appearance.
    elements: Vec<(i64, Vec<RawTracked>)>,
}

pub(crate) struct Importer<'d> {
    labels: &'d LabelIndex,
    matcher: FrameMatcher<'d>,
    last_frame: u64,
    cats: Option<DmCategories>,
    /// The task label of each label category of `cats` (by name).
    cat_labels: Vec<Option<&'d LabelInfo>>,
    items: Vec<ItemRef>,
    /// Tags and shapes, with their frames still to be set, and the items they come from.
    tags: Vec<Tag>,
    tag_items: Vec<usize>,
    shapes: Vec<Shape>,
    shape_items: Vec<usize>,
    tracks: Vec<TrackAcc>,
    track_index: HashMap<String, usize>,
}

/// `attrs.converters.to_bool`, as CVAT reads `occluded`, `outside`, `keyframe`.
fn to_bool(v: Option<&Json>) -> bool {
    match v {
        Some(Json::Bool(b)) => *b,
        Some(Json::Num(n)) => n.as_f64() == Some(1.0),
        Some(Json::Str(s)) => ["true", "t", "yes", "y", "on", "1"]
            .iter()
            .any(|t| s.eq_ignore_ascii_case(t)),
        _ => false,
    }
}

/// An attribute value as text (integral numbers without a fraction, booleans lower-case).
fn value_text(v: &Json) -> String {
    match v {
        Json::Str(s) => s.to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Num(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    (f as i64).to_string()
                } else {
                    f.to_string()
                }
            } else {
                n.to_string()
            }
        }
        Json::Null => String::new(),
        Json::Other(v) => v.to_string(),
    }
}

/// A number list read by [`Numbers`] (`None`: missing, or not a list of numbers).
pub(crate) fn numbers(v: Option<Vec<f64>>, what: &str) -> Result<Vec<f64>, String> {
    v.ok_or_else(|| format!("\"{what}\" must be a list of numbers"))
}

/// As [`numbers`], for a `serde_json` list (the mask's `rle.size`).
fn value_numbers(v: Option<&Value>, what: &str) -> Result<Vec<f64>, String> {
    let arr = v
        .and_then(Value::as_array)
        .ok_or_else(|| format!("\"{what}\" must be a list of numbers"))?;
    arr.iter()
        .map(|x| {
            x.as_f64()
                .ok_or_else(|| format!("\"{what}\" must be a list of numbers"))
        })
        .collect()
}

fn label_accepts(label: &LabelInfo, kind: &str) -> bool {
    label.kind == "any" || label.kind == kind
}

/// Datumaro annotation types that are valid but carry nothing CVAT imports: Datumaro 1.13's
/// `AnnotationType` names (checked against the PyPI package) minus `unknown`, `label` and the ones
/// [`shape_kind`] maps, plus `hash_key` and `feature_vector` of other Datumaro releases; any
/// other type is an error.
const IGNORED_TYPES: &[&str] = &[
    "caption",
    "super_resolution_annotation",
    "depth_annotation",
    "hash_key",
    "feature_vector",
    "tabular",
    "rotated_bbox",
    "cuboid_2d",
];

/// Shape types that take part in groups and tracks (CVAT's `shapes` map).
fn shape_kind(ty: &str) -> Option<ShapeType> {
    Some(match ty {
        "bbox" => ShapeType::Rectangle,
        "polygon" => ShapeType::Polygon,
        "polyline" => ShapeType::Polyline,
        "points" => ShapeType::Points,
        "ellipse" => ShapeType::Ellipse,
        "mask" => ShapeType::Mask,
        "skeleton" => ShapeType::Skeleton,
        "cuboid_3d" => ShapeType::Cuboid,
        _ => return None,
    })
}

/// An integer field (`group`, `z_order`): truncated if fractional, 0 if not a number.
fn group_key(v: Option<&Json>) -> i64 {
    match v {
        Some(Json::Num(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
    .unwrap_or(0)
}

/// Groups of an item's shapes renumbered 1..n in key order, as `(key, number)` sorted by key;
/// CVAT keeps only groups of two or more shapes.
fn item_groups(anns: &[Annotation]) -> Vec<(i64, u64)> {
    let mut keys: Vec<i64> = anns
        .iter()
        .filter(|a| a.ty().and_then(shape_kind).is_some())
        .map(|a| group_key(a.0.as_ref().and_then(|a| a.group.as_ref())))
        .collect();
    keys.sort_unstable();
    keys.chunk_by(|a, b| a == b)
        .filter(|run| run[0] != 0 && run.len() > 1)
        .enumerate()
        .map(|(i, run)| (run[0], i as u64 + 1))
        .collect()
}

/// The new number of group `key` (0: not kept).
fn group_number(groups: &[(i64, u64)], key: i64) -> u64 {
    groups
        .binary_search_by_key(&key, |g| g.0)
        .map_or(0, |i| groups[i].1)
}

/// CVAT's `source` special attribute: one of its four sources (lower-cased), else "file".
fn source_of(source: Option<&Json>) -> String {
    match source.and_then(Json::as_str) {
        Some(s) => {
            let s = s.to_ascii_lowercase();
            match s.as_str() {
                "auto" | "semi-auto" | "manual" | "file" => s,
                _ => "file".to_owned(),
            }
        }
        None => "file".to_owned(),
    }
}

impl<'d> Importer<'d> {
    pub(crate) fn new(ds: &'d TaskDataset<'_>) -> Self {
        Importer {
            labels: ds.labels,
            matcher: FrameMatcher::new(&ds.frames, ds.is_video()),
            last_frame: ds.frames.iter().map(|f| f.rel).max().unwrap_or(0),
            cats: None,
            cat_labels: Vec::new(),
            items: Vec::new(),
            tags: Vec::new(),
            tag_items: Vec::new(),
            shapes: Vec::new(),
            shape_items: Vec::new(),
            tracks: Vec::new(),
            track_index: HashMap::new(),
        }
    }

    /// The label's attribute values by name (others dropped), normalised and checked.
    fn attributes(&self, label: &LabelInfo, attrs: &[Attr]) -> Result<Vec<AttributeVal>, String> {
        let mut out = Vec::new();
        for (name, v) in attrs {
            let Some((spec_id, spec)) = label.attributes.iter().find(|(_, s)| s.name == *name)
            else {
                continue;
            };
            let value = attribute_value(spec, v)
                .map_err(|why| format!("attribute '{name}' of label '{}': {why}", label.name))?;
            out.push(AttributeVal {
                spec_id: *spec_id,
                value,
            });
        }
        Ok(out)
    }

    fn top_label(
        &self,
        cats: &DmCategories,
        v: Option<&Json>,
    ) -> Result<(usize, &'d LabelInfo), String> {
        let idx = match v {
            None | Some(Json::Null) => return Err("annotation has no label".into()),
            Some(x) => x
                .as_u64()
                .ok_or_else(|| format!("label_id {x} is not a label index"))?
                as usize,
        };
        let dm = cats
            .labels
            .get(idx)
            .ok_or_else(|| format!("label_id {idx} is not in the label categories"))?;
        let label = self.cat_labels[idx]
            .ok_or_else(|| format!("Label '{}' is not registered for this task", dm.name))?;
        Ok((idx, label))
    }

    fn add_item(
        &mut self,
        file: &str,
        index: usize,
        item: &mut Item<'_>,
    ) -> Result<(), FormatError> {
        let cats = self.cats.take().unwrap_or_default();
        let res = self.add_item_with(&cats, file, index, item);
        self.cats = Some(cats);
        res
    }

    fn add_item_with(
        &mut self,
        cats: &DmCategories,
        file: &str,
        index: usize,
        item: &mut Item<'_>,
    ) -> Result<(), FormatError> {
        let Item::Object(item) = item else {
            return Err(FormatError::invalid(
                file,
                format!("item #{index}"),
                "an item must be a JSON object",
            ));
        };
        let id = match &item.id {
            Some(Json::Str(s)) => s.to_string(),
            Some(Json::Num(n)) => n.to_string(),
            _ => {
                return Err(FormatError::invalid(
                    file,
                    format!("item #{index}"),
                    "the item has no string \"id\"",
                ))
            }
        };
        let image_ext =
            item.image_path
                .as_ref()
                .map(|path| match path.as_ref().and_then(Json::as_str) {
                    Some(p) if !p.is_empty() => split_ext(basename(p)).1.to_owned(),
                    _ => ".jpg".to_owned(),
                });
        let frame_attr = match item
            .frame_attr
            .as_ref()
            .and_then(|f| f.as_ref().map(Json::to_value))
        {
            Some(v) => FrameAttr::Value(py_int(&v)),
            None => FrameAttr::Absent,
        };
        let item_ref = ItemRef {
            file: file.to_owned(),
            index,
            id,
            image_ext,
            frame_attr,
        };
        match item.annotations {
            AnnotationsField::List => {}
            AnnotationsField::Absent => {
                return Err(FormatError::invalid(
                    file,
                    item_ref.location(),
                    "the item has no \"annotations\" list",
                ))
            }
            AnnotationsField::NotList => {
                return Err(FormatError::invalid(
                    file,
                    item_ref.location(),
                    "\"annotations\" must be a list",
                ))
            }
        }
        let item_no = self.items.len();
        self.items.push(item_ref);

        let Buffers { annotations, attrs } = &mut item.lists;
        let groups = item_groups(annotations);
        for (j, ann) in annotations.iter_mut().enumerate() {
            if let Err(why) = self.add_annotation(cats, item_no, ann, attrs, &groups) {
                let ty = ann.ty().unwrap_or("?");
                let loc = self.items[item_no].location();
                return Err(FormatError::invalid(
                    file,
                    format!("{loc}, annotation #{j} ({ty})"),
                    why,
                ));
            }
        }
        Ok(())
    }

    /// Converts one annotation (its number lists are taken out of `ann`); `item_attrs` holds
    /// the attributes of the item's annotations.
    fn add_annotation(
        &mut self,
        cats: &DmCategories,
        item: usize,
        ann: &mut Annotation<'_>,
        item_attrs: &[Attr],
        groups: &[(i64, u64)],
    ) -> Result<(), String> {
        let Some(a) = &mut ann.0 else {
            return Err("an annotation must be a JSON object".into());
        };
        let ty =
            a.ty.as_ref()
                .and_then(Json::as_str)
                .ok_or("the annotation has no \"type\"")?;
        let kind = shape_kind(ty);
        if kind.is_none() && ty != "label" {
            if IGNORED_TYPES.contains(&ty) {
                return Ok(()); // captions and other types CVAT has no use for
            }
            // Datumaro's reader raises on a type it does not know; so does CVAT's import.
            return Err(format!("unknown annotation type '{ty}'"));
        }
        let (label_idx, label) = self.top_label(cats, a.label_id.as_ref())?;
        let attrs = match &a.attributes {
            AttrsField::Object(r) => &item_attrs[r.clone()],
            AttrsField::Absent => &[],
            AttrsField::NotObject => return Err("\"attributes\" must be an object".into()),
        };
        let group = group_number(groups, group_key(a.group.as_ref()));
        let special = Special::of(attrs);
        let source = source_of(special.source);
        let attributes = self.attributes(label, attrs)?;

        let Some(kind) = kind else {
            if !label_accepts(label, "tag") {
                return Err(format!(
                    "label '{}' is for {}s, not tags",
                    label.name, label.kind
                ));
            }
            self.tags.push(Tag {
                id: None,
                frame: 0,
                label_id: label.id,
                group,
                source,
                attributes,
            });
            self.tag_items.push(item);
            return Ok(());
        };

        if !label_accepts(label, kind.as_str()) {
            return Err(format!(
                "label '{}' is for {}s, not {}s",
                label.name,
                label.kind,
                kind.as_str()
            ));
        }
        let z_order = match kind {
            ShapeType::Cuboid => 0,
            _ => group_key(a.z_order.as_ref()),
        };
        let points: Vec<f64> = match kind {
            ShapeType::Rectangle => {
                let mut b = numbers(a.bbox.take(), "bbox")?;
                if b.len() != 4 {
                    return Err(format!("\"bbox\" must have 4 numbers, got {}", b.len()));
                }
                // (x, y, w, h) → (x1, y1, x2, y2)
                b[2] += b[0];
                b[3] += b[1];
                b
            }
            ShapeType::Ellipse => {
                let p = numbers(a.points.take(), "points")?;
                if p.len() != 4 {
                    return Err(format!("an ellipse needs 4 numbers, got {}", p.len()));
                }
                vec![(p[0] + p[2]) / 2.0, (p[1] + p[3]) / 2.0, p[2], p[1]]
            }
            ShapeType::Mask => mask_points(a.rle.as_ref().and_then(Json::as_value))?,
            ShapeType::Cuboid => {
                let mut p = numbers(a.position.take(), "position")?;
                p.extend(numbers(a.rotation.take(), "rotation")?);
                p.extend(numbers(a.scale.take(), "scale")?);
                if p.len() != 9 {
                    return Err(
                        "a cuboid_3d needs 3 position, 3 rotation and 3 scale values".into(),
                    );
                }
                p.extend([0.0; 7]);
                p
            }
            ShapeType::Skeleton => Vec::new(),
            _ => numbers(a.points.take(), "points")?,
        };
        if kind != ShapeType::Skeleton {
            check_points(kind, &points)?;
        }
        let rotation = special
            .rotation
            .and_then(Json::as_f64)
            .unwrap_or(0.0)
            .rem_euclid(360.0);
        let occluded = to_bool(special.occluded);
        let keyframe = to_bool(special.keyframe);
        let outside = to_bool(special.outside);
        let score = match special.score {
            None | Some(Json::Null) => None,
            Some(v) => {
                let s = v.as_f64().ok_or("the score must be a number")?;
                if !(0.0..=1.0).contains(&s) {
                    return Err(format!("the score {s} is outside 0..1"));
                }
                Some(s)
            }
        };

        let mut elements: Vec<RawElement> = Vec::new();
        if kind == ShapeType::Skeleton {
            let p = numbers(a.points.take(), "points")?;
            if p.len() % 3 != 0 {
                return Err(format!(
                    "skeleton points have {} values, not (x, y, visibility) triplets",
                    p.len()
                ));
            }
            let sub = cats.points.get(&label_idx).ok_or_else(|| {
                format!("label '{}' has no points category (sub-labels)", label.name)
            })?;
            let point_attrs = a
                .points_attributes
                .as_ref()
                .and_then(Json::as_value)
                .and_then(Value::as_array);
            for (i, t) in p.chunks(3).enumerate() {
                let name = sub.get(i).ok_or_else(|| {
                    format!("skeleton point {i} has no sub-label in the points category")
                })?;
                let el = self
                    .labels
                    .child_by_name(label.id, name)
                    .ok_or_else(|| format!("Label '{name}' is not registered for this task"))?;
                let ea = match point_attrs.and_then(|a| a.get(i)) {
                    Some(Value::Object(m)) => attrs_of(m),
                    _ => Vec::new(),
                };
                let esource = source_of(Special::of(&ea).source);
                let eattrs = self.attributes(el, &ea)?;
                let vis = t[2].round() as i64;
                elements.push(RawElement {
                    label_id: el.id,
                    points: vec![t[0], t[1]],
                    occluded: vis == 1,
                    outside: vis == 0,
                    attributes: eattrs,
                    source: esource,
                });
            }
        }

        let track_id = special.track_id.filter(|v| !v.is_null());
        if let (Some(tid), true) = (track_id, special.keyframe.is_some()) {
            let key = match tid {
                Json::Num(n) => n
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| (f as i64).to_string())
                    .unwrap_or_else(|| n.to_string()),
                other => other.to_string(),
            };
            let ti = match self.track_index.get(&key) {
                Some(&i) => i,
                None => {
                    self.tracks.push(TrackAcc {
                        key: key.clone(),
                        label_id: label.id,
                        group,
                        source: source.clone(),
                        shapes: Vec::new(),
                        elements: Vec::new(),
                    });
                    self.track_index.insert(key, self.tracks.len() - 1);
                    self.tracks.len() - 1
                }
            };
            let t = &mut self.tracks[ti];
            t.shapes.push(RawTracked {
                item,
                frame: 0,
                kind,
                occluded,
                outside,
                keyframe,
                points,
                z_order,
                rotation,
                attributes,
            });
            for RawElement {
                label_id: el_id,
                points: ep,
                occluded: eocc,
                outside: eout,
                attributes: eattrs,
                ..
            } in elements
            {
                let shape = RawTracked {
                    item,
                    frame: 0,
                    kind: ShapeType::Points,
                    occluded: eocc,
                    outside: eout,
                    keyframe,
                    points: ep,
                    z_order: 0,
                    rotation: 0.0,
                    attributes: eattrs,
                };
                match t.elements.iter_mut().find(|(id, _)| *id == el_id) {
                    Some((_, v)) => v.push(shape),
                    None => t.elements.push((el_id, vec![shape])),
                }
            }
            return Ok(());
        }

        let elements = elements
            .into_iter()
            .map(|e| Shape {
                id: None,
                kind: ShapeType::Points,
                frame: 0,
                label_id: e.label_id,
                group,
                source: e.source,
                occluded: e.occluded,
                outside: e.outside,
                z_order,
                rotation: 0.0,
                points: e.points,
                attributes: e.attributes,
                elements: Vec::new(),
                score: None,
            })
            .collect();
        self.shapes.push(Shape {
            id: None,
            kind,
            frame: 0,
            label_id: label.id,
            group,
            source,
            occluded,
            outside: false,
            z_order,
            rotation,
            points,
            attributes,
            elements,
            score,
        });
        self.shape_items.push(item);
        Ok(())
    }

    /// CVAT's `_validate_track_shapes`: sorted by frame, keyframes inferred, an outside shape
    /// after each gap and after the last visible frame.
    fn keyframes(&self, mut shapes: Vec<RawTracked>) -> Result<Vec<RawTracked>, (usize, String)> {
        shapes.sort_by_key(|s| s.frame);
        if let Some(w) = shapes.windows(2).find(|w| w[0].frame == w[1].frame) {
            return Err((
                w[1].item,
                format!("two shapes of the track are on frame {}", w[1].frame),
            ));
        }
        let mut out: Vec<RawTracked> = Vec::new();
        let mut prev: Option<RawTracked> = None;
        // Whether `prev` is already in `out` (as a keyframe).
        let mut prev_kept = false;
        // CVAT's `_close_last_interval`: the last visible shape before an inferred outside
        // becomes a keyframe, so the frames before it keep their positions.
        let close = |out: &mut Vec<RawTracked>, p: &RawTracked, kept: bool| {
            if !kept {
                let mut k = p.clone();
                k.keyframe = true;
                out.push(k);
            }
        };
        for mut s in shapes {
            let prev_visible = prev.as_ref().map(|p| !p.outside);
            let cur_visible = !s.outside;
            let mut has_gap = false;
            if let (Some(true), Some(p)) = (prev_visible, prev.as_ref()) {
                has_gap = p.frame + 1 < s.frame;
                if has_gap {
                    close(&mut out, p, prev_kept);
                    let mut o = p.clone();
                    o.outside = true;
                    o.keyframe = true;
                    o.frame = p.frame + 1;
                    out.push(o);
                }
            }
            if prev_visible != Some(cur_visible) || (cur_visible && (has_gap || s.keyframe)) {
                s.keyframe = true;
                out.push(s.clone());
                prev_kept = true;
            } else {
                prev_kept = false;
            }
            prev = Some(s);
        }
        if let Some(p) = prev {
            if !p.outside && p.frame < self.last_frame {
                close(&mut out, &p, prev_kept);
                let mut o = p;
                o.outside = true;
                o.keyframe = true;
                o.frame += 1;
                out.push(o);
            }
        }
        Ok(out)
    }

    pub(crate) fn finish(mut self) -> Result<Annotations, FormatError> {
        let hint = self
            .matcher
            .root_hint(self.items.iter().map(|i| i.id.as_str()));
        let mut frames = Vec::with_capacity(self.items.len());
        for it in &self.items {
            let item = MatchItem {
                id: &it.id,
                image_ext: it.image_ext.as_deref(),
                frame: it.frame_attr,
            };
            let (f, _) = self
                .matcher
                .match_item(&item, Root::Hint(hint.as_deref()))
                .ok_or_else(|| {
                    FormatError::invalid(
                        &it.file,
                        it.location(),
                        format!("Could not match item id: '{}' with any task frame", it.id),
                    )
                })?;
            frames.push(f);
        }
        let mut out = Annotations {
            tags: std::mem::take(&mut self.tags),
            shapes: std::mem::take(&mut self.shapes),
            ..Annotations::default()
        };
        for (t, &item) in out.tags.iter_mut().zip(&self.tag_items) {
            t.frame = frames[item];
        }
        for (s, &item) in out.shapes.iter_mut().zip(&self.shape_items) {
            s.frame = frames[item];
            for e in &mut s.elements {
                e.frame = s.frame;
            }
        }
        let err = |s: &Self, item: usize, why: String| {
            let it = &s.items[item];
            FormatError::invalid(&it.file, it.location(), why)
        };
        for mut t in std::mem::take(&mut self.tracks) {
            for s in &mut t.shapes {
                s.frame = frames[s.item];
            }
            for (_, shapes) in &mut t.elements {
                for s in shapes.iter_mut() {
                    s.frame = frames[s.item];
                }
            }
            let key = t.key.clone();
            let shapes = self
                .keyframes(t.shapes)
                .map_err(|(i, why)| err(&self, i, format!("track {key}: {why}")))?;
            let mut elements = Vec::new();
            for (el_id, shapes) in t.elements {
                let shapes = self
                    .keyframes(shapes)
                    .map_err(|(i, why)| err(&self, i, format!("track {key}: {why}")))?;
                elements.push(self.build_track(el_id, 0, &t.source, shapes));
            }
            if shapes.is_empty() && elements.is_empty() {
                continue;
            }
            let mut track = self.build_track(t.label_id, t.group, &t.source, shapes);
            track.elements = elements;
            out.tracks.push(track);
        }
        Ok(out)
    }

    /// A track from inferred keyframes: immutable attributes (of the last shape) on the track,
    /// mutable ones on the shapes.
    fn build_track(
        &self,
        label_id: i64,
        group: u64,
        source: &str,
        shapes: Vec<RawTracked>,
    ) -> Track {
        let mutable: HashSet<i64> = self
            .labels
            .get(label_id)
            .map(|l| {
                l.attributes
                    .iter()
                    .filter(|(_, s)| s.mutable)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        let attributes = shapes
            .last()
            .map(|s| {
                s.attributes
                    .iter()
                    .filter(|a| !mutable.contains(&a.spec_id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let frame = shapes.first().map_or(0, |s| s.frame);
        Track {
            id: None,
            frame,
            label_id,
            group,
            source: source.to_owned(),
            attributes,
            shapes: shapes
                .into_iter()
                .map(|s| TrackedShape {
                    id: None,
                    kind: s.kind,
                    frame: s.frame,
                    occluded: s.occluded,
                    outside: s.outside,
                    z_order: s.z_order,
                    rotation: s.rotation,
                    points: s.points,
                    attributes: s
                        .attributes
                        .into_iter()
                        .filter(|a| mutable.contains(&a.spec_id))
                        .collect(),
                })
                .collect(),
            elements: Vec::new(),
        }
    }
}

impl<'de> Sink<'de> for Importer<'_> {
    fn categories(&mut self, file: &str, cats: Value) -> Result<(), FormatError> {
        let cats =
            parse_categories(&cats).map_err(|why| FormatError::invalid(file, "categories", why))?;
        self.cat_labels = cats
            .labels
            .iter()
            .map(|l| self.labels.by_name(&l.name))
            .collect();
        self.cats = Some(cats);
        Ok(())
    }
    fn item(
        &mut self,
        file: &str,
        index: usize,
        mut item: Item<'de>,
    ) -> Result<Buffers<'de>, FormatError> {
        self.add_item(file, index, &mut item)?;
        Ok(item.into_buffers())
    }
}

/// A CVAT attribute value from a Datumaro one (CVAT's `_import_attribute`), checked against the
/// spec.
fn attribute_value(spec: &AttrSpec, v: &Json) -> Result<String, String> {
    let mut text = value_text(v);
    if spec.input_type == "checkbox" && text != spec.default_value {
        text = match v {
            Json::Num(n) => (n.as_f64() != Some(0.0)).to_string(),
            _ => text.to_ascii_lowercase(),
        };
    }
    check_value(spec, &text)?;
    Ok(text)
}

/// The CVAT mask points of a Datumaro `rle` object.
fn mask_points(rle: Option<&Value>) -> Result<Vec<f64>, String> {
    let rle = rle
        .and_then(Value::as_object)
        .ok_or("a mask needs an \"rle\" object")?;
    let size = value_numbers(rle.get("size"), "rle.size")?;
    if size.len() != 2 || size.iter().any(|s| *s < 0.0 || s.fract() != 0.0) {
        return Err("\"rle.size\" must be [height, width]".into());
    }
    let (h, w) = (size[0] as u64, size[1] as u64);
    let counts = match rle.get("counts") {
        Some(Value::String(s)) => coco_counts_from_string(s).map_err(|e| e.to_string())?,
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| {
                c.as_u64()
                    .ok_or("\"rle.counts\" must be non-negative integers")
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("\"rle.counts\" must be a string or a list of integers".into()),
    };
    coco_to_cvat_mask(&counts, h, w)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the mask is empty".into())
}

/// Python's `int(value)` for JSON values (None where it would raise).
fn py_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(*b as i64),
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => py_int_str(s),
        _ => None,
    }
}
