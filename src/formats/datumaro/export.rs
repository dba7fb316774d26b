//! The Datumaro export: categories, then one item per task frame, written as bytes and
//! deflated on all cores.

use std::collections::HashMap;
use std::io::Write;

use serde_json::{json, Value};

use crate::annotations::{AttributeVal, LabelIndex, LabelInfo, ShapeType, Tag};
use crate::formats::kit::json::{put_bool, put_f64, put_i64, put_str, put_u64};
use crate::formats::kit::mask::{coco_counts_to_string, cvat_mask_to_coco};
use crate::formats::{
    DatasetFrame, DeflatedEntry, ExportOptions, FormatError, FrameAnnotations, FrameSource,
    TaskDataset, ZipSink,
};

use super::skeleton::*;
use crate::formats::kit::dataset::ShapeView;
use crate::formats::kit::images::{save_images, UniqueNames};
use crate::formats::kit::paths::split_ext;

// ------------------------------------------------------------------------------------------------
// Export

/// The task's labels as Datumaro categories.
pub(crate) struct Categories<'a> {
    /// Labels in category order (by id, as CVAT orders them).
    pub(crate) order: Vec<&'a LabelInfo>,
    /// Per label in `order`: one of its attributes is named like an attribute Datumaro adds
    /// (`occluded`, …), which then replaces the label's value in place.
    clash: Vec<bool>,
    pub(crate) skeletons: HashMap<i64, SkeletonLayout>,
}

impl<'a> Categories<'a> {
    pub(crate) fn new(labels: &'a LabelIndex) -> Self {
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
    pub(crate) fn index(&self, id: i64) -> Option<usize> {
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

/// Attributes Datumaro's CVAT converter adds to a shape's own (`occluded`, …).
const ADDED_ATTRIBUTES: [&str; 4] = ["occluded", "rotation", "track_id", "keyframe"];

/// An attribute value as Datumaro types it.
#[derive(Clone, Copy)]
pub(crate) enum Scalar<'v> {
    Num(f64),
    Int(u64),
    Bool(bool),
    Str(&'v str),
}

/// One annotation's attributes in the order Datumaro writes them: its label's (defaults filled
/// in), then the ones the converter adds. A map that keeps insertion order, as Python's dict.
#[derive(Default)]
pub(crate) struct Attrs<'v> {
    pub(crate) items: Vec<(&'v str, Scalar<'v>)>,
    /// The label has an attribute named like an added one: adding must look for it first.
    clash: bool,
}

impl<'v> Attrs<'v> {
    /// Adds `key` (replacing its value in place when the label has an attribute so named).
    pub(crate) fn add(&mut self, key: &'v str, v: Scalar<'v>) {
        if self.clash {
            self.set(key, v)
        } else {
            self.items.push((key, v))
        }
    }

    /// Sets `key`, replacing its value in place when it is already there.
    pub(crate) fn set(&mut self, key: &'v str, v: Scalar<'v>) {
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = v,
            None => self.items.push((key, v)),
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
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
pub(crate) struct Exporter<'a> {
    cats: Categories<'a>,
    file: String,
}

impl<'a> Exporter<'a> {
    /// The task's labels as categories; errors name `file` (other JSON exporters reuse the
    /// label and attribute conversion: COCO).
    pub(crate) fn new(labels: &'a LabelIndex, file: &str) -> Self {
        Exporter {
            cats: Categories::new(labels),
            file: file.to_owned(),
        }
    }

    /// The categories.
    pub(crate) fn categories(&self) -> &Categories<'a> {
        &self.cats
    }

    fn invalid(&self, f: &DatasetFrame, reason: String) -> FormatError {
        FormatError::invalid(&self.file, item_location(f), reason)
    }

    /// The label, its category index, and whether its attributes clash with the added ones.
    pub(crate) fn label(
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
    pub(crate) fn label_attrs<'v>(
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

    /// Fills `attrs` for shape `s` as the Datumaro converter does: its label's attributes
    /// ([`label_attrs`](Self::label_attrs)), then `occluded`, `rotation` (boxes, ellipses) and,
    /// for tracked shapes, `track_id` and `keyframe`. Returns the label and its category index.
    pub(crate) fn shape_attrs<'v>(
        &self,
        attrs: &mut Attrs<'v>,
        s: &ShapeView<'v>,
        f: &DatasetFrame,
    ) -> Result<(&'a LabelInfo, usize), FormatError>
    where
        'a: 'v,
    {
        let (label, index, clash) = self.label(s.label_id, f)?;
        self.label_attrs(attrs, label, clash, s.attributes, f)?;
        attrs.add("occluded", Scalar::Bool(s.occluded));
        if matches!(s.kind, ShapeType::Rectangle | ShapeType::Ellipse) {
            attrs.add("rotation", Scalar::Num(s.rotation));
        }
        if let Some(track_id) = s.track {
            attrs.add("track_id", Scalar::Int(track_id as u64));
            attrs.add("keyframe", Scalar::Bool(s.keyframe));
        }
        Ok((label, index))
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
        let (label, index) = self.shape_attrs(attrs, s, f)?;
        if s.kind == ShapeType::Skeleton {
            let key = |v: &ShapeView<'_>| v.track.is_some() && v.keyframe;
            attrs.set(
                "keyframe",
                Scalar::Bool(key(s) || s.elements.iter().any(key)),
            );
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
        let mut slots: Vec<Option<&ShapeView<'_>>> = vec![None; n];
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
                    if let Some(track_id) = e.track {
                        ea.add("track_id", Scalar::Int(track_id as u64));
                        ea.add("keyframe", Scalar::Bool(e.keyframe));
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
            let view = s.view();
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

pub(super) fn export(
    ds: &TaskDataset<'_>,
    opts: &ExportOptions,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    let subset = crate::formats::kit::paths::export_subset(ds)?;
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
        // Datumaro names saved images after the item id with '/' → '_'; a clash gets a suffix.
        let mut names = UniqueNames::default();
        save_images(
            ds,
            images,
            zip,
            |i, f, ext| {
                let stem = split_ext(&f.name).0.replace('/', "_");
                paths[i] = names.name(&stem, ext.trim_start_matches('.'));
                format!("images/{subset}/{}", paths[i])
            },
            &|p| progress(image_share * p),
        )?;
    }

    // Tags, then shapes (plain, then tracks' not outside), stably sorted by z-order.
    let by_frame = FrameAnnotations::new(ds, |f| !f.outside);
    let mut w = DeflatedEntry::new(&file);
    w.write_all(br#"{"dm_format_version":"1.0","media_type":2,"infos":{},"categories":"#)?;
    serde_json::to_writer(&mut w, &ex.cats.to_json(ds.labels)).map_err(std::io::Error::from)?;
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
