//! Datumaro 1.0 (spec `formats.md` §4–§6, §8.2): `annotations/<subset>.json` (+ `images/<subset>/…`).
//!
//! **Export** follows CVAT's `CvatTaskOrJobDataExtractor` + the Datumaro fork's JSON writer: one item per
//! task frame (empty ones included), `attr: {"frame": abs}`, `image: {"path", "size": [h, w]}`,
//! categories with every label (skeleton sub-labels with `parent`) and the label attribute names
//! pooled into the global `attributes` list, `points` categories for skeletons (sub-label order and
//! joints from the label SVG). Each annotation carries all of its label's attributes with defaults
//! filled (number → float, checkbox → bool, else string) plus `occluded`, `rotation` (boxes,
//! ellipses) and `track_id` + `keyframe` for track shapes. Tracks are interpolated and outside shapes
//! dropped. Masks become COCO RLE over the full image, written in COCO's compressed string form
//! (what Datumaro writes and the only form its reader accepts). Items are written straight as
//! bytes (those serde_json would write, see `formats::json_out`), rendered and deflated in pieces
//! on all cores ([`DeflatedEntry`]).
//!
//! **Import** reads `annotations/*.json` (any depth, any subset) from a zip or one bare `.json`,
//! streaming items one by one with serde_json, each straight into typed fields (no `Value`
//! trees). It converts like CVAT's
//! `import_dm_annotations`: labels by name, attributes by name (others dropped), groups with ≥ 2
//! shapes renumbered per item, `occluded` / `rotation` / `source` / `score` / `outside` /
//! `keyframe` / `track_id` special attributes, tracks rebuilt from `track_id` + `keyframe` with
//! CVAT's keyframe inference, masks → CVAT RLE over the tight box, ellipses `(x1, y1, x2, y2)` →
//! `(cx, cy, x2, y1)`, frames matched by §6
//! ([`FrameMatcher`]). Errors name the file, the item and the annotation.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Write};
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Number, Value};

use super::json_out::{put_bool, put_f64, put_i64, put_str, put_u64};
use super::kit::mask::{
    coco_counts_from_string, coco_counts_to_string, coco_to_cvat_mask, cvat_mask_to_coco,
};
use super::{
    read_error, DatasetFrame, DeflatedEntry, ExportOptions, FormatError, FrameAnnotations,
    FrameObject, FrameSource, ImportInput, TaskDataset, ValueTooLarge, ZipSink,
};
use crate::annotations::interpolate::FrameShape;
use crate::annotations::{
    self, check_points, check_value, Annotations, AttrSpec, AttributeVal, LabelIndex, LabelInfo,
    Shape, ShapeType, Tag, Track, TrackedShape,
};

/// Largest annotation JSON file the importer reads (decompressed), unless the caller sets
/// [`Datumaro::read_limit`].
pub const DEFAULT_READ_LIMIT: u64 = 4 << 30;

const DISPLAY: &str = "Datumaro 1.0";

/// The Datumaro 1.0 format.
#[derive(Debug, Clone)]
pub struct Datumaro {
    /// Largest decompressed size of one annotation file the importer accepts.
    pub read_limit: u64,
}

impl Datumaro {
    /// With [`DEFAULT_READ_LIMIT`].
    pub const DEFAULT: Datumaro = Datumaro {
        read_limit: DEFAULT_READ_LIMIT,
    };
}

impl Default for Datumaro {
    fn default() -> Self {
        Datumaro::DEFAULT
    }
}

impl super::Exporter for Datumaro {
    fn export(
        &self,
        ds: &TaskDataset<'_>,
        opts: &ExportOptions,
        images: Option<&dyn FrameSource>,
        zip: &mut ZipSink<std::fs::File>,
        progress: &dyn Fn(f64),
    ) -> Result<(), FormatError> {
        export(ds, opts, images, zip, progress)
    }
}

impl super::Importer for Datumaro {
    fn import(
        &self,
        input: &ImportInput,
        ds: &TaskDataset<'_>,
    ) -> Result<Annotations, FormatError> {
        import(input, ds, self.read_limit)
    }
}

// ------------------------------------------------------------------------------------------------
// Paths

/// Python's `os.path.splitext`: `("a/b", ".jpg")` for `a/b.jpg`; leading dots of the file name are
/// not an extension.
pub fn split_ext(p: &str) -> (&str, &str) {
    let name_start = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    if let Some(dot) = p.rfind('.') {
        if dot >= name_start && p[name_start..dot].bytes().any(|b| b != b'.') {
            return (&p[..dot], &p[dot..]);
        }
    }
    (p, "")
}

/// Python's `os.path.dirname`.
fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        None => "",
        Some(i) => {
            let head = &p[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head
            } else {
                trimmed
            }
        }
    }
}

/// `pathlib.PurePosixPath(p).parts`, for relative paths.
fn parts(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Frame matching (spec §6)

/// Matches dataset items to task frames the way CVAT does (spec §6): by path without extension,
/// then with the dataset root hint prepended, then by the `frame` attribute or a numeric id, then
/// (video tasks) by the number after `frame_`.
pub struct FrameMatcher<'a> {
    frames: &'a [DatasetFrame],
    /// Frame path without extension → task-relative frame, in frame order.
    stems: Vec<(String, u64)>,
    by_stem: HashMap<String, u64>,
    rels: HashSet<u64>,
    is_video: bool,
}

impl<'a> FrameMatcher<'a> {
    /// A matcher for the frames of a task; `is_video` for interpolation-mode (video) tasks.
    pub fn new(frames: &'a [DatasetFrame], is_video: bool) -> Self {
        let stems: Vec<(String, u64)> = frames
            .iter()
            .map(|f| (split_ext(&f.name).0.to_owned(), f.rel))
            .collect();
        let by_stem = stems.iter().cloned().collect();
        FrameMatcher {
            frames,
            stems,
            by_stem,
            rels: frames.iter().map(|f| f.rel).collect(),
            is_video,
        }
    }

    /// CVAT's `match_frame`: the path (its extension stripped when `has_ext`), then the path
    /// under `root_hint`.
    pub fn match_frame(&self, path: &str, root_hint: Option<&str>, has_ext: bool) -> Option<u64> {
        let path = if has_ext { split_ext(path).0 } else { path };
        if let Some(&f) = self.by_stem.get(path) {
            return Some(f);
        }
        match root_hint {
            Some(h) if !h.is_empty() && !path.starts_with(h) => {
                let joined = if path.starts_with('/') {
                    path.to_owned()
                } else if h.ends_with('/') {
                    format!("{h}{path}")
                } else {
                    format!("{h}/{path}")
                };
                self.by_stem.get(&joined).copied()
            }
            _ => None,
        }
    }

    /// CVAT's `find_dataset_root`: the item id with the most path components is suffix-matched
    /// against the task paths; the unmatched prefix of that task path is the hint.
    pub fn root_hint<'s>(&self, ids: impl IntoIterator<Item = &'s str>) -> Option<String> {
        let mut longest: Option<(&str, usize)> = None;
        for id in ids {
            let n = parts(id).len();
            if longest.is_none_or(|(_, m)| n > m) {
                longest = Some((id, n));
            }
        }
        let (longest, _) = longest?;
        let want = parts(longest);
        let rel = self.stems.iter().find_map(|(stem, rel)| {
            let have = parts(stem);
            (have.len() >= want.len() && have[have.len() - want.len()..] == want[..])
                .then_some(*rel)
        })?;
        let frame = self.frames.iter().find(|f| f.rel == rel)?;
        let longest_match = dirname(&frame.name);
        let cut = dirname(longest).len();
        let mut prefix = if cut == 0 {
            longest_match
        } else {
            longest_match
                .len()
                .checked_sub(cut)
                .and_then(|k| longest_match.get(..k))
                .unwrap_or("")
        };
        if let Some(p) = prefix.strip_suffix('/') {
            prefix = p;
        }
        Some(prefix.to_owned())
    }

    /// CVAT's `match_dm_item`: the task-relative frame of an item, or `None`.
    pub fn match_item(
        &self,
        id: &str,
        image_ext: Option<&str>,
        frame_attr: Option<&Value>,
        root_hint: Option<&str>,
    ) -> Option<u64> {
        let mut n: Option<i64> = None;
        if let Some(ext) = image_ext {
            n = self
                .match_frame(&format!("{id}{ext}"), root_hint, true)
                .map(|f| f as i64);
        }
        if n.is_none() {
            n = self.match_frame(id, root_hint, false).map(|f| f as i64);
        }
        if n.is_none() {
            n = match frame_attr {
                Some(v) => py_int(v),
                None => py_int_str(id),
            };
        }
        if n.is_none() && self.is_video {
            let base = id.rsplit('/').next().unwrap_or(id);
            n = base.get("frame_".len()..).and_then(py_int_str);
        }
        let n = u64::try_from(n?).ok()?;
        self.rels.contains(&n).then_some(n)
    }
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

fn py_int_str(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

// ------------------------------------------------------------------------------------------------
// Skeleton SVG

fn svg_tag_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"(?is)<\s*(circle|line)\b([^>]*)>").expect("regex"))
}

fn svg_attr_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
            .expect("regex")
    })
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(j) = rest.find(';') else { break };
        let ent = &rest[1..j];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A skeleton's point layout: sub-label ids in Datumaro order and the joints.
#[derive(Debug, Clone, Default, PartialEq)]
struct SkeletonLayout {
    sublabels: Vec<i64>,
    joints: Vec<[i64; 2]>,
}

/// Parses the skeleton SVG like CVAT's `_load_categories`: circles give the sub-labels in order
/// (`data-label-name`, or `data-label-id` as stored by CVAT), lines the joints
/// (`data-node-from`, `data-node-to`; sorted, as a set). Sub-labels the SVG does not name are
/// appended.
fn skeleton_layout(labels: &LabelIndex, skeleton: &LabelInfo) -> SkeletonLayout {
    let mut children: Vec<&LabelInfo> = labels.children(skeleton.id).collect();
    children.sort_by_key(|l| l.id);
    let mut out = SkeletonLayout::default();
    for cap in svg_tag_re().captures_iter(&skeleton.svg) {
        let tag = cap[1].to_ascii_lowercase();
        let attrs: HashMap<&str, String> = svg_attr_re()
            .captures_iter(&cap[2])
            .map(|a| {
                let v = a.get(2).or_else(|| a.get(3)).map_or("", |m| m.as_str());
                (a.get(1).map_or("", |m| m.as_str()), xml_unescape(v))
            })
            .collect();
        if tag == "line" {
            let node = |k: &str| attrs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
            if let (Some(a), Some(b)) = (node("data-node-from"), node("data-node-to")) {
                out.joints.push([a, b]);
            }
        } else {
            let found = if let Some(name) = attrs.get("data-label-name") {
                children.iter().find(|c| &c.name == name)
            } else if let Some(id) = attrs
                .get("data-label-id")
                .and_then(|v| v.trim().parse::<i64>().ok())
            {
                children.iter().find(|c| c.id == id)
            } else {
                None
            };
            if let Some(c) = found {
                if !out.sublabels.contains(&c.id) {
                    out.sublabels.push(c.id);
                }
            }
        }
    }
    for c in children {
        if !out.sublabels.contains(&c.id) {
            out.sublabels.push(c.id);
        }
    }
    // Datumaro keeps joints as a set; sorted, they come out as its writer orders them.
    out.joints.sort();
    out.joints.dedup();
    out
}

// ------------------------------------------------------------------------------------------------
// Export

/// The task's labels as Datumaro categories.
struct Categories<'a> {
    /// Labels in category order (by id, as CVAT orders them).
    order: Vec<&'a LabelInfo>,
    /// Per label in `order`: one of its attributes is named like an attribute Datumaro adds
    /// (`occluded`, …), which then replaces the label's value in place.
    clash: Vec<bool>,
    skeletons: HashMap<i64, SkeletonLayout>,
}

impl<'a> Categories<'a> {
    fn new(labels: &'a LabelIndex) -> Self {
        let mut order: Vec<&LabelInfo> = labels.labels.iter().collect();
        order.sort_by_key(|l| l.id);
        let clash = order
            .iter()
            .map(|l| {
                l.attributes
                    .iter()
                    .any(|(_, a)| ADDED_ATTRIBUTES.contains(&a.name.as_str()))
            })
            .collect();
        let skeletons = order
            .iter()
            .filter(|l| l.kind == "skeleton")
            .map(|l| (l.id, skeleton_layout(labels, l)))
            .collect();
        Categories {
            order,
            clash,
            skeletons,
        }
    }

    /// The category index of label `id`.
    fn index(&self, id: i64) -> Option<usize> {
        self.order.binary_search_by_key(&id, |l| l.id).ok()
    }

    fn to_json(&self, labels: &LabelIndex) -> Value {
        let mut pooled: Vec<String> = vec!["occluded".into()];
        for l in &self.order {
            for (_, a) in &l.attributes {
                pooled.push(a.name.clone());
            }
        }
        pooled.sort();
        pooled.dedup();
        let label_items: Vec<Value> = self
            .order
            .iter()
            .map(|l| {
                let parent = l
                    .parent
                    .and_then(|p| labels.get(p))
                    .map_or("", |p| p.name.as_str());
                json!({"name": l.name, "parent": parent, "attributes": []})
            })
            .collect();
        let points: Vec<Value> = self
            .order
            .iter()
            .filter_map(|l| {
                let s = self.skeletons.get(&l.id)?;
                let names: Vec<&str> = s
                    .sublabels
                    .iter()
                    .filter_map(|id| labels.get(*id).map(|c| c.name.as_str()))
                    .collect();
                Some(json!({
                    "label_id": self.index(l.id),
                    "labels": names,
                    "joints": s.joints,
                    "positions": [],
                }))
            })
            .collect();
        json!({
            "label": {"labels": label_items, "label_groups": [], "attributes": pooled},
            "points": {"items": points},
        })
    }
}

/// A shape to export: a plain shape or a track's shape on one frame.
struct ShapeView<'s> {
    kind: ShapeType,
    label_id: i64,
    points: &'s [f64],
    occluded: bool,
    rotation: f64,
    z_order: i64,
    group: u64,
    attributes: &'s [AttributeVal],
    /// `(track_id, keyframe)` for track shapes.
    track: Option<(usize, bool)>,
    elements: Vec<ElementView<'s>>,
}

struct ElementView<'s> {
    label_id: i64,
    points: &'s [f64],
    occluded: bool,
    outside: bool,
    attributes: &'s [AttributeVal],
    track: Option<(usize, bool)>,
}

impl<'s> ShapeView<'s> {
    fn plain(s: &'s Shape) -> Self {
        ShapeView {
            kind: s.kind,
            label_id: s.label_id,
            points: &s.points,
            occluded: s.occluded,
            rotation: s.rotation,
            z_order: s.z_order,
            group: s.group,
            attributes: &s.attributes,
            track: None,
            elements: s
                .elements
                .iter()
                .map(|e| ElementView {
                    label_id: e.label_id,
                    points: &e.points,
                    occluded: e.occluded,
                    outside: e.outside,
                    attributes: &e.attributes,
                    track: None,
                })
                .collect(),
        }
    }

    fn tracked(f: &'s FrameShape, track_id: usize, group: u64) -> Self {
        ShapeView {
            kind: f.kind,
            label_id: f.label_id,
            points: &f.points,
            occluded: f.occluded,
            rotation: f.rotation,
            z_order: f.z_order,
            group,
            attributes: &f.attributes,
            track: Some((track_id, f.keyframe)),
            elements: f
                .elements
                .iter()
                .map(|e| ElementView {
                    label_id: e.label_id,
                    points: &e.points,
                    occluded: e.occluded,
                    outside: e.outside,
                    attributes: &e.attributes,
                    track: Some((track_id, e.keyframe)),
                })
                .collect(),
        }
    }
}

/// Attributes Datumaro's CVAT converter adds to a shape's own (`occluded`, …).
const ADDED_ATTRIBUTES: [&str; 4] = ["occluded", "rotation", "track_id", "keyframe"];

/// An attribute value as Datumaro types it.
#[derive(Clone, Copy)]
enum Scalar<'v> {
    Num(f64),
    Int(u64),
    Bool(bool),
    Str(&'v str),
}

/// One annotation's attributes in the order Datumaro writes them: its label's (defaults filled
/// in), then the ones the converter adds. A map that keeps insertion order, as Python's dict.
#[derive(Default)]
struct Attrs<'v> {
    items: Vec<(&'v str, Scalar<'v>)>,
    /// The label has an attribute named like an added one: adding must look for it first.
    clash: bool,
}

impl<'v> Attrs<'v> {
    /// Adds `key` (replacing its value in place when the label has an attribute so named).
    fn add(&mut self, key: &'v str, v: Scalar<'v>) {
        if self.clash {
            self.set(key, v)
        } else {
            self.items.push((key, v))
        }
    }

    /// Sets `key`, replacing its value in place when it is already there.
    fn set(&mut self, key: &'v str, v: Scalar<'v>) {
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = v,
            None => self.items.push((key, v)),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put_str(out, k);
            out.push(b':');
            match *v {
                Scalar::Num(f) => put_f64(out, f),
                Scalar::Int(n) => put_u64(out, n),
                Scalar::Bool(b) => put_bool(out, b),
                Scalar::Str(s) => put_str(out, s),
            }
        }
        out.push(b'}');
    }
}

/// `[a,b,…]` of floats.
fn put_f64s(out: &mut Vec<u8>, values: impl IntoIterator<Item = f64>) {
    out.push(b'[');
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_f64(out, v);
    }
    out.push(b']');
}

/// Where in the file an item is, for errors.
fn item_location(f: &DatasetFrame) -> String {
    format!("frame {} ('{}')", f.rel, f.name)
}

/// Writes annotations as Datumaro JSON, straight into bytes (building a `Value` per shape was most
/// of the export's time).
struct Exporter<'a> {
    cats: Categories<'a>,
    file: String,
}

impl<'a> Exporter<'a> {
    fn invalid(&self, f: &DatasetFrame, reason: String) -> FormatError {
        FormatError::invalid(&self.file, item_location(f), reason)
    }

    /// The label, its category index, and whether its attributes clash with the added ones.
    fn label(
        &self,
        id: i64,
        f: &DatasetFrame,
    ) -> Result<(&'a LabelInfo, usize, bool), FormatError> {
        match self.cats.index(id) {
            Some(i) => Ok((self.cats.order[i], i, self.cats.clash[i])),
            None => Err(self.invalid(f, format!("unknown label id {id}"))),
        }
    }

    /// Starts `attrs` with all of the label's attributes, values given or defaults, typed as
    /// CVAT's `_convert_attrs` types them (number → float, checkbox → bool, else string).
    fn label_attrs<'v>(
        &self,
        attrs: &mut Attrs<'v>,
        label: &'v LabelInfo,
        clash: bool,
        vals: &'v [AttributeVal],
        f: &DatasetFrame,
    ) -> Result<(), FormatError> {
        attrs.items.clear();
        attrs.clash = clash;
        for (spec_id, spec) in &label.attributes {
            let raw = vals
                .iter()
                .find(|a| a.spec_id == *spec_id)
                .map_or(spec.default_value.as_str(), |a| a.value.as_str());
            let v = match spec.input_type.as_str() {
                "number" => Scalar::Num(raw.trim().parse().map_err(|_| {
                    self.invalid(
                        f,
                        format!(
                            "failed to convert attribute '{}'='{raw}': not a number",
                            spec.name
                        ),
                    )
                })?),
                "checkbox" => Scalar::Bool(raw.eq_ignore_ascii_case("true")),
                _ => Scalar::Str(raw),
            };
            attrs.items.push((spec.name.as_str(), v));
        }
        Ok(())
    }

    /// `{"id":0,"type":…,"attributes":…,"group":…,"label_id":…` (the object is left open).
    fn head(out: &mut Vec<u8>, type_name: &str, attrs: &Attrs<'_>, group: u64, index: usize) {
        out.extend_from_slice(br#"{"id":0,"type":""#);
        out.extend_from_slice(type_name.as_bytes());
        out.extend_from_slice(br#"","attributes":"#);
        attrs.write(out);
        out.extend_from_slice(br#","group":"#);
        put_u64(out, group);
        out.extend_from_slice(br#","label_id":"#);
        put_u64(out, index as u64);
    }

    fn write_tag<'v>(
        &self,
        out: &mut Vec<u8>,
        attrs: &mut Attrs<'v>,
        t: &'v Tag,
        f: &DatasetFrame,
    ) -> Result<(), FormatError>
    where
        'a: 'v,
    {
        let (label, index, clash) = self.label(t.label_id, f)?;
        self.label_attrs(attrs, label, clash, &t.attributes, f)?;
        Self::head(out, "label", attrs, t.group, index);
        out.push(b'}');
        Ok(())
    }

    /// One shape as a Datumaro annotation; false for shapes Datumaro 2D has no type for
    /// (cuboids), which are not written.
    fn write_shape<'v>(
        &self,
        out: &mut Vec<u8>,
        attrs: &mut Attrs<'v>,
        s: &ShapeView<'v>,
        f: &DatasetFrame,
    ) -> Result<bool, FormatError>
    where
        'a: 'v,
    {
        let type_name = match s.kind {
            ShapeType::Rectangle => "bbox",
            ShapeType::Polygon => "polygon",
            ShapeType::Polyline => "polyline",
            ShapeType::Points => "points",
            ShapeType::Ellipse => "ellipse",
            ShapeType::Mask => "mask",
            ShapeType::Skeleton => "skeleton",
            ShapeType::Cuboid => return Ok(false),
        };
        let p = s.points;
        let need = |n: usize| -> Result<(), FormatError> {
            if p.len() < n {
                let what = s.kind.as_str();
                Err(self.invalid(
                    f,
                    format!("a {what} needs {n} coordinates, got {}", p.len()),
                ))
            } else {
                Ok(())
            }
        };
        match s.kind {
            ShapeType::Rectangle | ShapeType::Ellipse => need(4)?,
            ShapeType::Mask => need(5)?,
            _ => {}
        }
        let (label, index, clash) = self.label(s.label_id, f)?;
        self.label_attrs(attrs, label, clash, s.attributes, f)?;
        attrs.add("occluded", Scalar::Bool(s.occluded));
        if matches!(s.kind, ShapeType::Rectangle | ShapeType::Ellipse) {
            attrs.add("rotation", Scalar::Num(s.rotation));
        }
        if let Some((track_id, keyframe)) = s.track {
            attrs.add("track_id", Scalar::Int(track_id as u64));
            attrs.add("keyframe", Scalar::Bool(keyframe));
        }
        if s.kind == ShapeType::Skeleton {
            let any_key = s.elements.iter().any(|e| e.track.is_some_and(|t| t.1));
            let own = s.track.is_some_and(|t| t.1);
            attrs.set("keyframe", Scalar::Bool(own || any_key));
        }
        Self::head(out, type_name, attrs, s.group, index);
        let z_order = |out: &mut Vec<u8>| {
            out.extend_from_slice(br#","z_order":"#);
            put_i64(out, s.z_order);
        };
        match s.kind {
            ShapeType::Rectangle => {
                z_order(out);
                out.extend_from_slice(br#","bbox":"#);
                put_f64s(out, [p[0], p[1], p[2] - p[0], p[3] - p[1]]);
            }
            ShapeType::Ellipse => {
                let (cx, cy) = (p[0], p[1]);
                let (rx, ry) = (p[2] - cx, cy - p[3]);
                out.extend_from_slice(br#","points":"#);
                put_f64s(out, [cx - rx, cy - ry, cx + rx, cy + ry]);
                z_order(out);
            }
            ShapeType::Polygon | ShapeType::Polyline | ShapeType::Points => {
                out.extend_from_slice(br#","points":"#);
                put_f64s(out, p.iter().copied());
                z_order(out);
                if s.kind == ShapeType::Points {
                    out.extend_from_slice(br#","visibility":["#);
                    for i in 0..p.len() / 2 {
                        out.extend_from_slice(if i == 0 { b"2" } else { b",2" });
                    }
                    out.push(b']');
                }
            }
            ShapeType::Mask => {
                let counts = cvat_mask_to_coco(p, f.height, f.width);
                out.extend_from_slice(br#","rle":{"counts":"#);
                put_str(out, &coco_counts_to_string(&counts));
                out.extend_from_slice(br#","size":["#);
                put_u64(out, f.height.into());
                out.push(b',');
                put_u64(out, f.width.into());
                out.extend_from_slice(b"]}");
                z_order(out);
            }
            ShapeType::Skeleton => {
                self.write_skeleton_points(out, label, s, f)?;
                // Not written by Datumaro's writer, read by its reader: keeps skeleton z-order.
                z_order(out);
            }
            ShapeType::Cuboid => unreachable!("not exported"),
        }
        out.push(b'}');
        Ok(true)
    }

    /// A skeleton's `"points":[x,y,visibility,…],"points_attributes":[…]`, in the layout's
    /// sub-label order (sub-labels without an element: `0.0, 0.0, 0` and `{}`).
    fn write_skeleton_points(
        &self,
        out: &mut Vec<u8>,
        label: &LabelInfo,
        s: &ShapeView<'_>,
        f: &DatasetFrame,
    ) -> Result<(), FormatError> {
        let layout = self.cats.skeletons.get(&s.label_id).ok_or_else(|| {
            self.invalid(f, format!("label '{}' is not a skeleton label", label.name))
        })?;
        let n = layout.sublabels.len();
        let mut slots: Vec<Option<&ElementView<'_>>> = vec![None; n];
        for e in &s.elements {
            let Some(pos) = layout.sublabels.iter().position(|&id| id == e.label_id) else {
                return Err(self.invalid(
                    f,
                    format!(
                        "label id {} is not a sublabel of '{}'",
                        e.label_id, label.name
                    ),
                ));
            };
            slots[pos] = Some(e);
        }
        out.extend_from_slice(br#","points":["#);
        for (i, e) in slots.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let (x, y, vis) = match e {
                None => (0.0, 0.0, 0),
                Some(e) => (
                    e.points.first().copied().unwrap_or(0.0),
                    e.points.get(1).copied().unwrap_or(0.0),
                    if e.outside {
                        0
                    } else if e.occluded {
                        1
                    } else {
                        2
                    },
                ),
            };
            put_f64(out, x);
            out.push(b',');
            put_f64(out, y);
            out.push(b',');
            put_u64(out, vis);
        }
        out.extend_from_slice(br#"],"points_attributes":["#);
        let mut ea = Attrs::default();
        for (i, e) in slots.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match e {
                None => out.extend_from_slice(b"{}"),
                Some(e) => {
                    let (el, _, clash) = self.label(e.label_id, f)?;
                    self.label_attrs(&mut ea, el, clash, e.attributes, f)?;
                    if let Some((track_id, keyframe)) = e.track {
                        ea.add("track_id", Scalar::Int(track_id as u64));
                        ea.add("keyframe", Scalar::Bool(keyframe));
                    }
                    ea.write(out);
                }
            }
        }
        out.push(b']');
        Ok(())
    }

    /// One item (dataset frame `i`) of the annotation file.
    fn write_item(
        &self,
        out: &mut Vec<u8>,
        by_frame: &FrameAnnotations<'_>,
        f: &DatasetFrame,
        i: usize,
        path: &str,
    ) -> Result<(), FormatError> {
        let mut attrs = Attrs::default();
        out.extend_from_slice(br#"{"id":"#);
        put_str(out, split_ext(&f.name).0);
        out.extend_from_slice(br#","annotations":["#);
        let mut first = true;
        for t in by_frame.tags(i) {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            self.write_tag(out, &mut attrs, t, f)?;
        }
        for s in by_frame.shapes(i) {
            let view = match s {
                FrameObject::Plain(s) => ShapeView::plain(s),
                FrameObject::Tracked {
                    index,
                    track,
                    shape,
                } => ShapeView::tracked(shape, index, track.group),
            };
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            if self.write_shape(out, &mut attrs, &view, f)? {
                first = false;
            } else {
                // Not exported (cuboid): take the separator back.
                out.truncate(mark);
            }
        }
        out.extend_from_slice(br#"],"attr":{"frame":"#);
        put_u64(out, f.abs);
        out.extend_from_slice(br#"},"image":{"path":"#);
        put_str(out, path);
        out.extend_from_slice(br#","size":["#);
        put_u64(out, f.height.into());
        out.push(b',');
        put_u64(out, f.width.into());
        out.extend_from_slice(b"]}}");
        Ok(())
    }
}

fn export(
    ds: &TaskDataset<'_>,
    opts: &ExportOptions,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    let subset = if ds.subset.is_empty() {
        "default"
    } else {
        ds.subset.as_str()
    };
    if subset.contains('/') || subset.contains('\\') {
        return Err(FormatError::Io(format!(
            "the subset name '{subset}' contains a path separator"
        )));
    }
    let file = format!("annotations/{subset}.json");
    let ex = Exporter {
        cats: Categories::new(ds.labels),
        file: file.clone(),
    };
    let n = ds.frames.len();

    // Images first (their extension comes from the frame source), then the annotations.
    let mut paths: Vec<String> = ds.frames.iter().map(|f| f.name.clone()).collect();
    let image_share = if opts.save_images { 0.7 } else { 0.0 };
    if opts.save_images {
        let src = images.ok_or_else(|| {
            FormatError::Io("images were requested but no frame source was given".into())
        })?;
        // Datumaro names saved images after the item id with '/' → '_'; a clash gets a suffix.
        let mut used: HashSet<String> = HashSet::new();
        for (i, f) in ds.frames.iter().enumerate() {
            let (bytes, ext) = src.image(f.rel)?;
            let ext = ext.trim_start_matches('.');
            let stem = split_ext(&f.name).0.replace('/', "_");
            let with_ext = |stem: &str| {
                if ext.is_empty() {
                    stem.to_owned()
                } else {
                    format!("{stem}.{ext}")
                }
            };
            let mut name = with_ext(&stem);
            let mut k = 1;
            while !used.insert(name.clone()) {
                name = with_ext(&format!("{stem}_{k}"));
                k += 1;
            }
            zip.stored_file(&format!("images/{subset}/{name}"))?
                .write_all(&bytes)?;
            paths[i] = name;
            progress(image_share * (i + 1) as f64 / n.max(1) as f64);
        }
    }

    // Tags, then shapes (plain, then tracks' not outside), stably sorted by z-order.
    let by_frame = FrameAnnotations::new(ds, |f| !f.outside);
    let mut w = DeflatedEntry::new(&file);
    w.write_all(br#"{"dm_format_version":"1.0","media_type":2,"infos":{},"categories":"#)?;
    serde_json::to_writer(&mut w, &ex.cats.to_json(ds.labels))
        .map_err(|e| FormatError::Io(e.to_string()))?;
    w.write_all(br#","items":["#)?;
    w.write_items(
        n,
        |i, out| {
            if i > 0 {
                out.push(b',');
            }
            ex.write_item(out, &by_frame, &ds.frames[i], i, &paths[i])
        },
        |done| progress(image_share + (1.0 - image_share) * done as f64 / n.max(1) as f64),
    )?;
    w.write_all(b"]}")?;
    w.finish(zip)?;
    progress(1.0);
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Import: streaming reader

/// A reader that fails once more than `limit` bytes were read, or once a JSON string in what it
/// reads is longer than `max_string` bytes (escaped, as in the file: at least its decoded size).
/// Everything the parser sees comes through it, so no string it buffers can be larger.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    max_string: u64,
    strings: StringScan,
}

impl<R> Limited<R> {
    fn new(inner: R, limit: u64, max_string: u64) -> Self {
        Limited {
            inner,
            left: limit,
            limit,
            max_string,
            strings: StringScan::default(),
        }
    }
}

#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the file is larger than {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(TooLarge(self.limit)));
        }
        self.left -= n as u64;
        if !self.strings.scan(&buf[..n], self.max_string) {
            return Err(std::io::Error::other(ValueTooLarge {
                what: "a JSON string",
                limit: self.max_string,
            }));
        }
        Ok(n)
    }
}

/// Where the bytes read so far leave a JSON lexer: inside a string or not, and how long the
/// string is so far. Only `"` and `\` matter (JSON has no other quoting), found with `memchr`.
#[derive(Debug, Default)]
struct StringScan {
    in_string: bool,
    /// The previous byte was the `\` of an escape.
    escape: bool,
    /// Bytes of the current string so far.
    run: u64,
}

impl StringScan {
    /// Scans the next bytes; false once a string is longer than `max`.
    fn scan(&mut self, mut buf: &[u8], max: u64) -> bool {
        while !buf.is_empty() {
            if !self.in_string {
                let Some(k) = memchr::memchr(b'"', buf) else {
                    return true;
                };
                buf = &buf[k + 1..];
                self.in_string = true;
                self.run = 0;
            } else if self.escape {
                self.escape = false;
                self.run += 1;
                buf = &buf[1..];
            } else {
                match memchr::memchr2(b'"', b'\\', buf) {
                    None => {
                        self.run += buf.len() as u64;
                        buf = &[];
                    }
                    Some(k) => {
                        self.run += k as u64;
                        if buf[k] == b'"' {
                            self.in_string = false;
                        } else {
                            self.escape = true;
                            self.run += 1;
                        }
                        buf = &buf[k + 1..];
                    }
                }
            }
            if self.run > max {
                return false;
            }
        }
        true
    }
}

/// What the streaming parser hands over.
trait Sink<'de> {
    fn categories(&mut self, file: &str, cats: Value) -> Result<(), FormatError>;
    /// Takes one item; gives back lists to reuse for the next one.
    fn item(
        &mut self,
        file: &str,
        index: usize,
        item: Item<'de>,
    ) -> Result<Buffers<'de>, FormatError>;
}

struct ParseState<'s, 'de, S: Sink<'de>> {
    sink: &'s mut S,
    file: &'s str,
    /// The item being parsed (for syntax errors inside `items`).
    current: Option<usize>,
    /// A conversion error (serde errors carry only text; the real one is kept here).
    failed: Option<FormatError>,
    has_categories: bool,
    has_items: bool,
    /// Items seen before `categories`.
    pending: Vec<(usize, Item<'de>)>,
}

impl<'de, S: Sink<'de>> ParseState<'_, 'de, S> {
    fn fail<E: de::Error>(&mut self, e: FormatError) -> E {
        self.failed = Some(e);
        E::custom("conversion failed")
    }

    /// Hands an item over (or keeps it until the categories come); gives back its emptied
    /// lists for the next one.
    fn item<E: de::Error>(&mut self, index: usize, v: Item<'de>) -> Result<Buffers<'de>, E> {
        if !self.has_categories {
            self.pending.push((index, v));
            return Ok(Buffers::default());
        }
        self.sink
            .item(self.file, index, v)
            .map_err(|e| self.fail(e))
    }
}

struct Top<'a, 's, 'de, S: Sink<'de>>(&'a mut ParseState<'s, 'de, S>);

impl<'de, S: Sink<'de>> Visitor<'de> for Top<'_, '_, 'de, S> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Datumaro annotation file (a JSON object with \"categories\" and \"items\")")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "categories" => {
                    let v: Value = map.next_value()?;
                    st.sink
                        .categories(st.file, v)
                        .map_err(|e| st.fail::<A::Error>(e))?;
                    st.has_categories = true;
                    for (i, item) in std::mem::take(&mut st.pending) {
                        st.item::<A::Error>(i, item)?;
                    }
                }
                "items" => {
                    map.next_value_seed(Items(&mut *st))?;
                    st.has_items = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Top<'_, '_, 'de, S> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

struct Items<'a, 's, 'de, S: Sink<'de>>(&'a mut ParseState<'s, 'de, S>);

impl<'de, S: Sink<'de>> Visitor<'de> for Items<'_, '_, 'de, S> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let st = self.0;
        let mut i = 0;
        let mut lists = Buffers::default();
        loop {
            st.current = Some(i);
            let Some(v) = seq.next_element_seed(ItemSeed { lists })? else {
                break;
            };
            lists = st.item::<A::Error>(i, v)?;
            i += 1;
        }
        st.current = None;
        Ok(())
    }
}

impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Items<'_, '_, 'de, S> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

// ------------------------------------------------------------------------------------------------
// Import: typed items
//
// Items are read straight into the types below instead of `Value` trees: strings borrowed from
// the input where possible, number lists as `f64`s, unknown fields dropped. Nothing here
// rejects a value of the wrong type: it is kept (or marked) so that the conversion reports it
// with the same message and in the same order as when items were `Value`s. Everything is read
// through `deserialize_any`, so syntax errors (and what counts as one: UTF-8, escapes, number
// range, nesting depth) are those of a `Value` parse.

/// Visitor methods for JSON scalars: `null` gives `$null`, any other scalar `$other`.
macro_rules! visit_scalars {
    ($null:expr, $other:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($null)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// Visitor methods that read and drop a list (`seq`) or an object (`map`), giving `$v`.
macro_rules! skip_containers {
    (seq: $s:expr, map: $m:expr) => {
        skip_containers!(seq: $s);
        skip_containers!(map: $m);
    };
    (seq: $v:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Skip.visit_seq(seq)?;
            Ok($v)
        }
    };
    (map: $v:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Skip.visit_map(map)?;
            Ok($v)
        }
    };
}

/// `impl Deserialize for $t`: `deserialize_any` with visitor `$v`.
macro_rules! deserialize_any_with {
    ($t:ty, $v:expr) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($v)
            }
        }
    };
}

/// Any JSON value, read and dropped. Unlike [`IgnoredAny`] it checks what a `Value` parse
/// checks (UTF-8 in strings, number range), so unknown fields fail as they used to.
struct Skip;

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Skip, Skip);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

deserialize_any_with!(Skip, Skip);

/// A JSON value as the importer keeps it: scalars typed (strings borrowed from the input where
/// possible), lists and objects, which no field the importer reads holds, as a `Value`.
#[derive(Debug)]
enum Json<'de> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'de, str>),
    Other(Box<Value>),
}

impl<'de> Json<'de> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => n.as_f64(),
            _ => None,
        }
    }
    fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.as_u64(),
            _ => None,
        }
    }
    fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
    /// The list or object, if it is one.
    fn as_value(&self) -> Option<&Value> {
        match self {
            Json::Other(v) => Some(v),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Other(v) => (**v).clone(),
        }
    }
    fn from_value(v: &'de Value) -> Self {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Num(n.clone()),
            Value::String(s) => Json::Str(Cow::Borrowed(s)),
            other => Json::Other(Box::new(other.clone())),
        }
    }
}

/// As JSON text, like `Value`'s `Display`.
impl std::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_value().fmt(f)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Num))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Json<'de>, A::Error> {
        let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Json::Other(Box::new(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json<'de>, A::Error> {
        let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Json::Other(Box::new(v)))
    }
}

deserialize_any_with!(Json<'de>, JsonVisitor);

/// One element of a number list: `Some` if it is a number.
struct Num(Option<f64>);

impl<'de> Visitor<'de> for Num {
    type Value = Num;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num(Some(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num(Some(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num(Some(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Num, E> {
        Ok(Num(None))
    }
    skip_containers!(seq: Num(None), map: Num(None));
}

deserialize_any_with!(Num, Num(None));

/// A list of numbers as `f64`s; `None` for anything else (`numbers` gives the error).
struct Numbers(Option<Vec<f64>>);

impl<'de> Visitor<'de> for Numbers {
    type Value = Numbers;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Numbers(None), Numbers(None));
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Numbers, A::Error> {
        // Most lists are short: gathered on the stack, then allocated once at their length.
        let mut head = [0.0; 16];
        let mut n = 0;
        let mut long: Vec<f64> = Vec::new();
        let mut ok = true;
        while let Some(Num(x)) = seq.next_element()? {
            match x {
                Some(x) if ok => {
                    if n < head.len() {
                        head[n] = x;
                        n += 1;
                    } else {
                        if long.is_empty() {
                            long.reserve(4 * head.len());
                            long.extend_from_slice(&head);
                        }
                        long.push(x);
                    }
                }
                _ => ok = false,
            }
        }
        Ok(Numbers(ok.then(|| {
            if long.is_empty() {
                head[..n].to_vec()
            } else {
                long
            }
        })))
    }
    skip_containers!(map: Numbers(None));
}

deserialize_any_with!(Numbers, Numbers(None));

/// An attribute name, borrowed from the input where possible.
struct Name<'de>(Cow<'de, str>);

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(s.to_owned())))
    }
}

deserialize_any_with!(Name<'de>, NameVisitor);

/// One entry of an `attributes` object.
type Attr<'de> = (Cow<'de, str>, Json<'de>);

/// CVAT's special attributes of an annotation, found in one pass.
#[derive(Default)]
struct Special<'a, 'de> {
    source: Option<&'a Json<'de>>,
    rotation: Option<&'a Json<'de>>,
    occluded: Option<&'a Json<'de>>,
    outside: Option<&'a Json<'de>>,
    keyframe: Option<&'a Json<'de>>,
    score: Option<&'a Json<'de>>,
    track_id: Option<&'a Json<'de>>,
}

impl<'a, 'de> Special<'a, 'de> {
    fn of(attrs: &'a [Attr<'de>]) -> Self {
        let mut s = Special::default();
        for (k, v) in attrs {
            let slot = match k.as_ref() {
                "source" => &mut s.source,
                "rotation" => &mut s.rotation,
                "occluded" => &mut s.occluded,
                "outside" => &mut s.outside,
                "keyframe" => &mut s.keyframe,
                "score" => &mut s.score,
                "track_id" => &mut s.track_id,
                _ => continue,
            };
            *slot = Some(v);
        }
        s
    }
}

/// The entries of a parsed object (skeleton point attributes).
fn attrs_of(m: &Map<String, Value>) -> Vec<Attr<'_>> {
    m.iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from_value(v)))
        .collect()
}

/// Merges repeated names in `attrs[start..]` as a `serde_json::Map` does: first place, last
/// value. Repetitions are rare, so they are looked for first, without allocating for a few
/// names.
fn merge_repeated(attrs: &mut Vec<Attr<'_>>, start: usize) {
    let new = &attrs[start..];
    let n = new.len();
    let repeated = if n <= 16 {
        (1..n).any(|i| new[..i].iter().any(|(k, _)| *k == new[i].0))
    } else {
        let mut seen = HashSet::with_capacity(n);
        !new.iter().all(|(k, _)| seen.insert(k.as_ref()))
    };
    if !repeated {
        return;
    }
    let mut at: HashMap<Cow<'_, str>, usize> = HashMap::new();
    let mut merged: Vec<Attr<'_>> = Vec::with_capacity(n);
    for (k, v) in attrs.drain(start..) {
        match at.get(&k) {
            Some(&i) => merged[i].1 = v,
            None => {
                at.insert(k.clone(), merged.len());
                merged.push((k, v));
            }
        }
    }
    attrs.append(&mut merged);
}

/// The `attributes` field of an annotation.
#[derive(Debug, Default)]
enum AttrsField {
    /// Missing or `null`.
    #[default]
    Absent,
    /// Its entries in the item's [`DmItem::attrs`].
    Object(std::ops::Range<usize>),
    NotObject,
}

/// Reads an `attributes` field, appending an object's entries to the item's attribute list.
struct AttrsSeed<'a, 'de>(&'a mut Vec<Attr<'de>>);

impl<'de> Visitor<'de> for AttrsSeed<'_, 'de> {
    type Value = AttrsField;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(AttrsField::Absent, AttrsField::NotObject);
    skip_containers!(seq: AttrsField::NotObject);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrsField, A::Error> {
        let start = self.0.len();
        while let Some((Name(k), v)) = map.next_entry()? {
            self.0.push((k, v));
        }
        merge_repeated(self.0, start);
        Ok(AttrsField::Object(start..self.0.len()))
    }
}

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_, 'de> {
    type Value = AttrsField;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<AttrsField, D::Error> {
        d.deserialize_any(self)
    }
}

/// The fields of an annotation that the importer reads (the last value of a repeated one;
/// number lists `None` when missing or not lists of numbers).
#[derive(Debug, Default)]
struct DmAnnotation<'de> {
    ty: Option<Json<'de>>,
    label_id: Option<Json<'de>>,
    group: Option<Json<'de>>,
    z_order: Option<Json<'de>>,
    attributes: AttrsField,
    points: Option<Vec<f64>>,
    bbox: Option<Vec<f64>>,
    position: Option<Vec<f64>>,
    rotation: Option<Vec<f64>>,
    scale: Option<Vec<f64>>,
    rle: Option<Json<'de>>,
    points_attributes: Option<Json<'de>>,
}

/// An element of an item's `annotations`: its fields, `None` if it is not a JSON object.
#[derive(Debug, Default)]
struct Annotation<'de>(Option<DmAnnotation<'de>>);

impl Annotation<'_> {
    /// The `type`, if it is a string.
    fn ty(&self) -> Option<&str> {
        self.0.as_ref()?.ty.as_ref()?.as_str()
    }
}

/// The annotation field a key names.
enum AnnKey {
    Type,
    LabelId,
    Group,
    ZOrder,
    Attributes,
    Points,
    Bbox,
    Position,
    Rotation,
    Scale,
    Rle,
    PointsAttributes,
    Other,
}

impl<'de> Visitor<'de> for AnnKey {
    type Value = AnnKey;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<AnnKey, E> {
        Ok(match s {
            "type" => AnnKey::Type,
            "label_id" => AnnKey::LabelId,
            "group" => AnnKey::Group,
            "z_order" => AnnKey::ZOrder,
            "attributes" => AnnKey::Attributes,
            "points" => AnnKey::Points,
            "bbox" => AnnKey::Bbox,
            "position" => AnnKey::Position,
            "rotation" => AnnKey::Rotation,
            "scale" => AnnKey::Scale,
            "rle" => AnnKey::Rle,
            "points_attributes" => AnnKey::PointsAttributes,
            _ => AnnKey::Other,
        })
    }
}

deserialize_any_with!(AnnKey, AnnKey::Other);

/// Reads an annotation into `slot`, its attributes into `attrs`.
struct AnnotationSeed<'a, 'de> {
    slot: &'a mut Annotation<'de>,
    attrs: &'a mut Vec<Attr<'de>>,
}

impl<'de> Visitor<'de> for AnnotationSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!((), ());
    skip_containers!(seq: ());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let a = self.slot.0.insert(DmAnnotation::default());
        while let Some(key) = map.next_key::<AnnKey>()? {
            match key {
                AnnKey::Type => a.ty = Some(map.next_value()?),
                AnnKey::LabelId => a.label_id = Some(map.next_value()?),
                AnnKey::Group => a.group = Some(map.next_value()?),
                AnnKey::ZOrder => a.z_order = Some(map.next_value()?),
                AnnKey::Attributes => {
                    a.attributes = map.next_value_seed(AttrsSeed(&mut *self.attrs))?
                }
                AnnKey::Points => a.points = map.next_value::<Numbers>()?.0,
                AnnKey::Bbox => a.bbox = map.next_value::<Numbers>()?.0,
                AnnKey::Position => a.position = map.next_value::<Numbers>()?.0,
                AnnKey::Rotation => a.rotation = map.next_value::<Numbers>()?.0,
                AnnKey::Scale => a.scale = map.next_value::<Numbers>()?.0,
                AnnKey::Rle => a.rle = Some(map.next_value()?),
                AnnKey::PointsAttributes => a.points_attributes = Some(map.next_value()?),
                AnnKey::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for AnnotationSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// What an item's `annotations` field is.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum AnnotationsField {
    /// Missing or `null`.
    #[default]
    Absent,
    /// A list, in [`DmItem::annotations`].
    List,
    NotList,
}

/// Reads an `annotations` field into the item's (reused) lists.
struct AnnotationsSeed<'a, 'de>(&'a mut Buffers<'de>);

impl<'de> Visitor<'de> for AnnotationsSeed<'_, 'de> {
    type Value = AnnotationsField;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(AnnotationsField::Absent, AnnotationsField::NotList);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnnotationsField, A::Error> {
        let Buffers { annotations, attrs } = self.0;
        loop {
            annotations.push(Annotation::default());
            let slot = annotations.last_mut().expect("just pushed");
            let seed = AnnotationSeed {
                slot,
                attrs: &mut *attrs,
            };
            if seq.next_element_seed(seed)?.is_none() {
                annotations.pop();
                return Ok(AnnotationsField::List);
            }
        }
    }
    skip_containers!(map: AnnotationsField::NotList);
}

impl<'de> DeserializeSeed<'de> for AnnotationsSeed<'_, 'de> {
    type Value = AnnotationsField;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<AnnotationsField, D::Error> {
        self.0.clear();
        d.deserialize_any(self)
    }
}

/// An item's annotations and their attributes; kept from item to item so that their memory is
/// reused.
#[derive(Debug, Default)]
struct Buffers<'de> {
    annotations: Vec<Annotation<'de>>,
    attrs: Vec<Attr<'de>>,
}

impl Buffers<'_> {
    fn clear(&mut self) {
        self.annotations.clear();
        self.attrs.clear();
    }
}

/// One field of an object: `None` if the value is not an object, else the field's (last)
/// value if it has it.
struct FieldOf(&'static str);

impl<'de> Visitor<'de> for FieldOf {
    type Value = Option<Option<Json<'de>>>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(None, None);
    skip_containers!(seq: None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Name(key)) = map.next_key()? {
            if key == self.0 {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Some(found))
    }
}

impl<'de> DeserializeSeed<'de> for FieldOf {
    type Value = Option<Option<Json<'de>>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// The fields of an item that the importer reads (the last value of a repeated one).
#[derive(Debug, Default)]
struct DmItem<'de> {
    id: Option<Json<'de>>,
    /// `image.path`; `None` if `image` is missing or not an object.
    image_path: Option<Option<Json<'de>>>,
    /// `attr.frame`; `None` if `attr` is missing or not an object.
    frame_attr: Option<Option<Json<'de>>>,
    annotations: AnnotationsField,
    /// The annotations (if `annotations` is a list) and their attributes.
    lists: Buffers<'de>,
}

/// An element of the `items` list.
#[derive(Debug)]
enum Item<'de> {
    Object(DmItem<'de>),
    NotObject,
}

impl<'de> Item<'de> {
    /// The item's lists, emptied, for the next item.
    fn into_buffers(self) -> Buffers<'de> {
        match self {
            Item::Object(DmItem { mut lists, .. }) => {
                lists.clear();
                lists
            }
            Item::NotObject => Buffers::default(),
        }
    }
}

/// Reads an item, reusing `lists`.
struct ItemSeed<'de> {
    lists: Buffers<'de>,
}

impl<'de> Visitor<'de> for ItemSeed<'de> {
    type Value = Item<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Item::NotObject, Item::NotObject);
    skip_containers!(seq: Item::NotObject);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut it = DmItem {
            lists: self.lists,
            ..DmItem::default()
        };
        while let Some(Name(key)) = map.next_key()? {
            match key.as_ref() {
                "id" => it.id = Some(map.next_value()?),
                "image" => it.image_path = map.next_value_seed(FieldOf("path"))?,
                "attr" => it.frame_attr = map.next_value_seed(FieldOf("frame"))?,
                "annotations" => {
                    it.annotations = map.next_value_seed(AnnotationsSeed(&mut it.lists))?
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Item::Object(it))
    }
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'de> {
    type Value = Item<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Annotation files up to this size are read whole and parsed from memory (serde_json parses
/// a slice about twice as fast as a reader, and strings can be borrowed); larger ones are
/// streamed.
const IN_MEMORY_MAX: u64 = 256 << 20;

/// Reads up to `IN_MEMORY_MAX + 1` bytes of `reader` into `head`, as `read_to_end` does, but
/// into a zeroed buffer of the `expected` size first: `calloc` hands out fresh pages without
/// writing them, where `read_to_end` would zero its spare capacity before each read.
fn read_head(reader: &mut impl Read, expected: usize, head: &mut Vec<u8>) -> std::io::Result<()> {
    *head = vec![0; expected];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    if filled == expected {
        // The size was not known, or is wrong: read what is left.
        reader
            .take(IN_MEMORY_MAX + 1 - filled as u64)
            .read_to_end(head)?;
    }
    Ok(())
}

/// Streams one Datumaro JSON file into `sink`: categories first (items met before them are
/// kept until they come), then the items one by one. `size` (the file's size as its container
/// says, if known) sizes the in-memory buffer.
fn parse_file<S: for<'de> Sink<'de>>(
    reader: impl Read,
    size: Option<u64>,
    file: &str,
    limit: u64,
    max_string: u64,
    sink: &mut S,
) -> Result<(), FormatError> {
    let mut reader = Limited::new(reader, limit, max_string);
    let expected = size.unwrap_or(0).min(limit).min(IN_MEMORY_MAX) as usize;
    let mut head = Vec::new();
    if let Err(e) = read_head(&mut reader, expected, &mut head) {
        return Err(read_failed(file, e));
    }
    if head.len() as u64 <= IN_MEMORY_MAX {
        return parse_json(serde_json::Deserializer::from_slice(&head), file, sink);
    }
    let rest = BufReader::with_capacity(1 << 16, std::io::Cursor::new(head).chain(reader));
    parse_json(serde_json::Deserializer::from_reader(rest), file, sink)
}

/// A read of `file` failed: the file limit, else an import limit or I/O ([`read_error`]).
fn read_failed(file: &str, e: std::io::Error) -> FormatError {
    match e.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
        Some(t) => FormatError::invalid(file, "", t.to_string()),
        None => read_error(file, e),
    }
}

impl<'s, 'de, S: Sink<'de>> ParseState<'s, 'de, S> {
    fn new(sink: &'s mut S, file: &'s str) -> Self {
        ParseState {
            sink,
            file,
            current: None,
            failed: None,
            has_categories: false,
            has_items: false,
            pending: Vec::new(),
        }
    }

    /// After the whole file: it must have had both keys.
    fn check_keys(&self) -> Result<(), FormatError> {
        if !self.has_categories || !self.has_items {
            return Err(FormatError::NotThisFormat {
                format: DISPLAY.into(),
                reason: format!(
                    "{} must be a JSON object with \"categories\" and \"items\" keys",
                    self.file
                ),
            });
        }
        Ok(())
    }
}

fn parse_json<'de, R: serde_json::de::Read<'de>, S: Sink<'de>>(
    mut de: serde_json::Deserializer<R>,
    file: &str,
    sink: &mut S,
) -> Result<(), FormatError> {
    let mut st = ParseState::new(sink, file);
    let res = Top(&mut st).deserialize(&mut de).and_then(|_| de.end());
    if let Some(e) = st.failed.take() {
        return Err(e);
    }
    if let Err(e) = res {
        if e.is_io() {
            return Err(read_failed(file, std::io::Error::from(e)));
        }
        let location = match st.current {
            Some(i) => format!("item #{i}"),
            None => String::new(),
        };
        return Err(FormatError::invalid(
            file,
            location,
            format!("invalid JSON: {e}"),
        ));
    }
    st.check_keys()
}

/// The annotation files of an import: `annotations/*.json` in a zip (any depth), or the bare file.
fn annotation_files(input: &ImportInput) -> Result<Vec<String>, FormatError> {
    if !input.is_zip() {
        return Ok(input.names());
    }
    let mut files: Vec<String> = input
        .names()
        .into_iter()
        .filter(|n| {
            let (dir, name) = n.rsplit_once('/').unwrap_or(("", n));
            let parent = dir.rsplit('/').next().unwrap_or("");
            parent == "annotations"
                && !n.starts_with("__MACOSX/")
                && name.len() > 5
                && name.to_ascii_lowercase().ends_with(".json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(FormatError::NotThisFormat {
            format: DISPLAY.into(),
            reason: "the dataset must contain a file matching pattern annotations/*.json".into(),
        });
    }
    Ok(files)
}

fn import(
    input: &ImportInput,
    ds: &TaskDataset<'_>,
    limit: u64,
) -> Result<Annotations, FormatError> {
    let files = annotation_files(input)?;
    let max_string = input.limits().max_value;
    let mut imp = Importer::new(ds);
    for name in &files {
        input.with_reader(name, |r, size| {
            parse_file(r, size, name, limit, max_string, &mut imp)
        })??;
    }
    imp.finish()
}

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
    frame_attr: Option<Value>,
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

struct Importer<'d> {
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
fn numbers(v: Option<Vec<f64>>, what: &str) -> Result<Vec<f64>, String> {
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

/// Datumaro annotation types that are valid but carry nothing CVAT imports (Datumaro's
/// `AnnotationType` minus the ones [`shape_kind`] maps and `label`); any other type is an error.
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
    fn new(ds: &'d TaskDataset<'_>) -> Self {
        Importer {
            labels: ds.labels,
            matcher: FrameMatcher::new(&ds.frames, ds.mode == "interpolation"),
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
                    Some(p) if !p.is_empty() => {
                        split_ext(p.rsplit('/').next().unwrap_or(p)).1.to_owned()
                    }
                    _ => ".jpg".to_owned(),
                });
        let frame_attr = item
            .frame_attr
            .as_ref()
            .and_then(|f| f.as_ref().map(Json::to_value));
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

    fn finish(mut self) -> Result<Annotations, FormatError> {
        let hint = self
            .matcher
            .root_hint(self.items.iter().map(|i| i.id.as_str()));
        let mut frames = Vec::with_capacity(self.items.len());
        for it in &self.items {
            let f = self
                .matcher
                .match_item(
                    &it.id,
                    it.image_ext.as_deref(),
                    it.frame_attr.as_ref(),
                    hint.as_deref(),
                )
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
        let last = self.last_frame;
        annotations::validate(
            &annotations::Context {
                labels: self.labels,
                frames: (0, last),
            },
            &out,
        )
        .map_err(|e| {
            FormatError::invalid(
                self.items.first().map_or("", |i| i.file.as_str()),
                e.what,
                e.why,
            )
        })?;
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

#[cfg(test)]
mod tests;
