//! Annotations: CVAT's JSON model, validation against a task's labels and frames, and the
//! conversion to and from stored objects. Track interpolation lives in [`interpolate`].

pub mod interpolate;
mod model;

use std::collections::HashMap;

pub use model::{Annotations, AttributeVal, Shape, ShapeType, Tag, Track, TrackedShape};

/// An attribute spec, as validation needs it.
#[derive(Debug, Clone)]
pub struct AttrSpec {
    pub name: String,
    pub input_type: String,
    pub values: Vec<String>,
    pub default_value: String,
    pub mutable: bool,
}

/// A label, as validation and formats need it.
#[derive(Debug, Clone)]
pub struct LabelInfo {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub color: String,
    pub svg: String,
    pub parent: Option<i64>,
    /// Attribute specs by id, in declaration order.
    pub attributes: Vec<(i64, AttrSpec)>,
}

/// A task's labels by id.
#[derive(Debug, Clone, Default)]
pub struct LabelIndex {
    pub labels: Vec<LabelInfo>,
    by_id: HashMap<i64, usize>,
}

impl LabelIndex {
    /// Indexes `labels` by id. (The store builds one from its rows: `LabelIndex::new`, in
    /// `store::labels`.)
    pub fn from_labels(labels: Vec<LabelInfo>) -> LabelIndex {
        let by_id = labels.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
        LabelIndex { labels, by_id }
    }

    /// A label by id.
    pub fn get(&self, id: i64) -> Option<&LabelInfo> {
        self.by_id.get(&id).map(|&i| &self.labels[i])
    }

    /// A top-level label by name.
    pub fn by_name(&self, name: &str) -> Option<&LabelInfo> {
        self.labels
            .iter()
            .find(|l| l.parent.is_none() && l.name == name)
    }

    /// A sublabel of `parent` by name.
    pub fn child_by_name(&self, parent: i64, name: &str) -> Option<&LabelInfo> {
        self.labels
            .iter()
            .find(|l| l.parent == Some(parent) && l.name == name)
    }

    /// Sublabels of a skeleton, in order.
    pub fn children(&self, parent: i64) -> impl Iterator<Item = &LabelInfo> {
        self.labels.iter().filter(move |l| l.parent == Some(parent))
    }
}

/// A validation failure: which object, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct Invalid {
    pub what: String,
    pub why: String,
}

fn invalid(what: &str, why: impl Into<String>) -> Invalid {
    Invalid {
        what: what.to_owned(),
        why: why.into(),
    }
}

/// Refuses audio intervals (frameserver has no 1D tasks), so that none is silently dropped.
pub fn check_no_intervals(a: &Annotations) -> Result<(), Invalid> {
    if a.intervals.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            "intervals[0]",
            "intervals annotate audio tasks, which this server does not have; send them as \
             an empty list",
        ))
    }
}

/// What annotations may refer to: labels, and the frames of the task or job.
pub struct Context<'a> {
    pub labels: &'a LabelIndex,
    /// Allowed task-relative frames, inclusive.
    pub frames: (u64, u64),
}

impl Context<'_> {
    fn frame(&self, what: &str, f: u64) -> Result<(), Invalid> {
        if f < self.frames.0 || f > self.frames.1 {
            return Err(invalid(
                what,
                format!(
                    "frame {f} is outside the allowed frames {}..={}",
                    self.frames.0, self.frames.1
                ),
            ));
        }
        Ok(())
    }

    fn label(&self, what: &str, id: i64, parent: Option<i64>) -> Result<&LabelInfo, Invalid> {
        let l = self
            .labels
            .get(id)
            .ok_or_else(|| invalid(what, format!("unknown label id {id}")))?;
        if l.parent != parent {
            return Err(match parent {
                None => invalid(
                    what,
                    format!(
                        "label {id} ('{}') is a skeleton sublabel; use its skeleton",
                        l.name
                    ),
                ),
                Some(p) => invalid(
                    what,
                    format!(
                        "label {id} ('{}') is not a sublabel of skeleton label {p}",
                        l.name
                    ),
                ),
            });
        }
        Ok(l)
    }

    fn attributes(
        &self,
        what: &str,
        label: &LabelInfo,
        attrs: &[AttributeVal],
    ) -> Result<(), Invalid> {
        let mut seen = std::collections::HashSet::new();
        for a in attrs {
            let spec = label
                .attributes
                .iter()
                .find(|(id, _)| *id == a.spec_id)
                .map(|(_, s)| s)
                .ok_or_else(|| {
                    invalid(
                        what,
                        format!(
                            "attribute {} does not belong to label '{}'",
                            a.spec_id, label.name
                        ),
                    )
                })?;
            if !seen.insert(a.spec_id) {
                return Err(invalid(
                    what,
                    format!("attribute '{}' is given twice", spec.name),
                ));
            }
            check_value(spec, &a.value)
                .map_err(|why| invalid(what, format!("attribute '{}': {why}", spec.name)))?;
        }
        Ok(())
    }
}

/// Checks a value against its attribute spec.
pub fn check_value(spec: &AttrSpec, value: &str) -> Result<(), String> {
    if value.len() > 4096 {
        return Err("the value is longer than 4096 characters".into());
    }
    match spec.input_type.as_str() {
        "select" | "radio" if !spec.values.iter().any(|v| v == value) => {
            Err(format!("'{value}' is not one of {:?}", spec.values))
        }
        "checkbox" if value != "true" && value != "false" => {
            Err(format!("'{value}' is not true or false"))
        }
        "number" => {
            let v: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("'{value}' is not a number"))?;
            let nums: Vec<f64> = spec.values.iter().filter_map(|x| x.parse().ok()).collect();
            if nums.len() == 3 && (v < nums[0] || v > nums[1]) {
                return Err(format!("{v} is outside {}..={}", nums[0], nums[1]));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn label_accepts(label: &LabelInfo, kind: &str) -> bool {
    label.kind == "any" || label.kind == kind
}

/// Whether a shape of `kind` may use `label`: the label's type must match unless it is `any`;
/// skeleton elements (points under a skeleton) are always allowed.
fn kind_allowed(label: &LabelInfo, kind: ShapeType, is_element: bool) -> bool {
    label_accepts(label, kind.as_str()) || (is_element && kind == ShapeType::Points)
}

/// Checks the points of a shape of `kind` (counts, finite values; masks: RLE fits its box).
pub fn check_points(kind: ShapeType, points: &[f64]) -> Result<(), String> {
    if points.iter().any(|p| !p.is_finite()) {
        return Err("points must be finite numbers".into());
    }
    let n = points.len();
    let ok = match kind {
        ShapeType::Rectangle | ShapeType::Ellipse => n == 4,
        ShapeType::Polygon => n >= 6 && n % 2 == 0,
        ShapeType::Polyline => n >= 4 && n % 2 == 0,
        ShapeType::Points => n >= 2 && n % 2 == 0,
        ShapeType::Cuboid => n == 16,
        ShapeType::Skeleton => true,
        ShapeType::Mask => return check_mask(points),
    };
    if ok {
        Ok(())
    } else {
        let need = match kind {
            ShapeType::Rectangle | ShapeType::Ellipse => "4",
            ShapeType::Polygon => "an even number of at least 6",
            ShapeType::Polyline => "an even number of at least 4",
            ShapeType::Points => "an even number of at least 2",
            ShapeType::Cuboid => "16",
            _ => "other",
        };
        Err(format!(
            "a {} needs {need} coordinates, got {n}",
            kind.as_str()
        ))
    }
}

/// CVAT's mask: RLE counts over the box, then `left, top, right, bottom` (inclusive).
fn check_mask(points: &[f64]) -> Result<(), String> {
    if points.len() < 5 {
        return Err("a mask needs its RLE counts followed by left, top, right, bottom".into());
    }
    let (rle, bbox) = points.split_at(points.len() - 4);
    let (l, t, r, b) = (bbox[0], bbox[1], bbox[2], bbox[3]);
    if r < l || b < t || l < 0.0 || t < 0.0 {
        return Err(format!("the mask box {l},{t},{r},{b} is empty or negative"));
    }
    let area = ((r - l + 1.0) * (b - t + 1.0)).round() as u64;
    if rle.iter().any(|c| *c < 0.0 || c.fract() != 0.0) {
        return Err("mask RLE counts must be non-negative integers".into());
    }
    let total: u64 = rle.iter().map(|c| *c as u64).sum();
    if total != area {
        return Err(format!(
            "the mask RLE covers {total} pixels but its box has {area}"
        ));
    }
    Ok(())
}

fn check_shape(
    ctx: &Context<'_>,
    what: &str,
    s: &Shape,
    parent: Option<i64>,
) -> Result<(), Invalid> {
    ctx.frame(what, s.frame)?;
    let label = ctx.label(what, s.label_id, parent)?;
    if !kind_allowed(label, s.kind, parent.is_some()) {
        return Err(invalid(
            what,
            format!(
                "label '{}' is for {}s, not {}s",
                label.name,
                label.kind,
                s.kind.as_str()
            ),
        ));
    }
    if !(0.0..=360.0).contains(&s.rotation) {
        return Err(invalid(
            what,
            format!("rotation {} is outside 0..360", s.rotation),
        ));
    }
    if s.score.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
        return Err(invalid(what, "score must be within 0..1"));
    }
    check_points(s.kind, &s.points).map_err(|why| invalid(what, why))?;
    ctx.attributes(what, label, &s.attributes)?;
    if s.kind == ShapeType::Skeleton {
        if parent.is_some() {
            return Err(invalid(what, "a skeleton element cannot be a skeleton"));
        }
        if s.elements.is_empty() {
            return Err(invalid(what, "a skeleton needs its elements"));
        }
        for (i, e) in s.elements.iter().enumerate() {
            if e.kind != ShapeType::Points || e.frame != s.frame {
                return Err(invalid(
                    &format!("{what}, element {i}"),
                    "skeleton elements are points on the skeleton's frame",
                ));
            }
            check_shape(ctx, &format!("{what}, element {i}"), e, Some(s.label_id))?;
        }
    } else if !s.elements.is_empty() {
        return Err(invalid(what, "only skeletons have elements"));
    }
    Ok(())
}

fn check_track(
    ctx: &Context<'_>,
    what: &str,
    t: &Track,
    parent: Option<i64>,
) -> Result<(), Invalid> {
    let label = ctx.label(what, t.label_id, parent)?;
    ctx.attributes(what, label, &t.attributes)?;
    let first = t
        .shapes
        .first()
        .ok_or_else(|| invalid(what, "a track needs at least one shape"))?;
    if t.shapes.windows(2).any(|w| w[1].frame <= w[0].frame) {
        return Err(invalid(
            what,
            "track shapes must have strictly increasing frames",
        ));
    }
    for (i, s) in t.shapes.iter().enumerate() {
        let sw = format!("{what}, shape {i}");
        ctx.frame(&sw, s.frame)?;
        if s.kind != first.kind {
            return Err(invalid(&sw, "all shapes of a track have the same type"));
        }
        if !kind_allowed(label, s.kind, parent.is_some()) {
            return Err(invalid(
                &sw,
                format!(
                    "label '{}' is for {}s, not {}s",
                    label.name,
                    label.kind,
                    s.kind.as_str()
                ),
            ));
        }
        if !(0.0..=360.0).contains(&s.rotation) {
            return Err(invalid(
                &sw,
                format!("rotation {} is outside 0..360", s.rotation),
            ));
        }
        if s.kind != ShapeType::Skeleton {
            check_points(s.kind, &s.points).map_err(|why| invalid(&sw, why))?;
        }
        ctx.attributes(&sw, label, &s.attributes)?;
    }
    if first.kind == ShapeType::Skeleton {
        if t.elements.is_empty() {
            return Err(invalid(what, "a skeleton track needs its element tracks"));
        }
        for (i, e) in t.elements.iter().enumerate() {
            check_track(ctx, &format!("{what}, element {i}"), e, Some(t.label_id))?;
        }
    } else if !t.elements.is_empty() {
        return Err(invalid(what, "only skeleton tracks have elements"));
    }
    Ok(())
}

/// Validates annotations against labels and frames; the first problem is reported with its
/// position (`shapes[3]`, `tracks[0], shape 2`, …).
pub fn validate(ctx: &Context<'_>, a: &Annotations) -> Result<(), Invalid> {
    check_no_intervals(a)?;
    for (i, t) in a.tags.iter().enumerate() {
        let what = format!("tags[{i}]");
        ctx.frame(&what, t.frame)?;
        let label = ctx.label(&what, t.label_id, None)?;
        if !label_accepts(label, "tag") {
            return Err(invalid(
                &what,
                format!("label '{}' is for {}s, not tags", label.name, label.kind),
            ));
        }
        ctx.attributes(&what, label, &t.attributes)?;
    }
    // One buffer for every shape's position: imports validate tens of thousands.
    let mut what = String::new();
    for (i, s) in a.shapes.iter().enumerate() {
        use std::fmt::Write;
        what.clear();
        write!(what, "shapes[{i}]").expect("writing into a String cannot fail");
        check_shape(ctx, &what, s, None)?;
    }
    for (i, t) in a.tracks.iter().enumerate() {
        let what = format!("tracks[{i}]");
        check_track(ctx, &what, t, None)?;
        if t.frame != t.shapes[0].frame {
            return Err(invalid(
                &what,
                format!(
                    "the track's frame {} differs from its first shape's frame {}",
                    t.frame, t.shapes[0].frame
                ),
            ));
        }
    }
    Ok(())
}

/// Number of nested objects that need ids (track shapes, elements).
pub fn nested_count(a: &Annotations) -> usize {
    fn track(t: &Track) -> usize {
        t.shapes.len() + t.elements.iter().map(|e| 1 + track(e)).sum::<usize>()
    }
    a.shapes.iter().map(|s| s.elements.len()).sum::<usize>()
        + a.tracks.iter().map(track).sum::<usize>()
}

/// Gives nested objects ids from `ids` (in a fixed order), leaving existing ids when `keep`.
pub fn assign_nested_ids(a: &mut Annotations, ids: &mut impl Iterator<Item = i64>, keep: bool) {
    fn set(id: &mut Option<i64>, ids: &mut dyn Iterator<Item = i64>, keep: bool) {
        let fresh = ids.next();
        if !(keep && id.is_some()) {
            *id = fresh;
        }
    }
    fn track(t: &mut Track, ids: &mut dyn Iterator<Item = i64>, keep: bool) {
        for s in &mut t.shapes {
            set(&mut s.id, ids, keep);
        }
        for e in &mut t.elements {
            set(&mut e.id, ids, keep);
            track(e, ids, keep);
        }
    }
    for s in &mut a.shapes {
        for e in &mut s.elements {
            set(&mut e.id, ids, keep);
        }
    }
    for t in &mut a.tracks {
        track(t, ids, keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> LabelIndex {
        let label = |id, parent, name: &str, kind: &str, attributes| LabelInfo {
            id,
            name: name.into(),
            kind: kind.into(),
            color: String::new(),
            svg: String::new(),
            parent,
            attributes,
        };
        let attr =
            |name: &str, input_type: &str, values: &[&str], default: &str, mutable| AttrSpec {
                name: name.into(),
                input_type: input_type.into(),
                values: values.iter().map(|&v| v.to_owned()).collect(),
                default_value: default.into(),
                mutable,
            };
        LabelIndex::from_labels(vec![
            label(
                1,
                None,
                "car",
                "any",
                vec![
                    (10, attr("color", "select", &["red", "blue"], "red", false)),
                    (11, attr("speed", "number", &["0", "100", "1"], "0", true)),
                ],
            ),
            label(2, None, "box", "rectangle", vec![]),
            label(3, None, "body", "skeleton", vec![]),
            label(4, Some(3), "head", "points", vec![]),
        ])
    }

    fn check(v: serde_json::Value) -> Result<(), Invalid> {
        let l = labels();
        let a: Annotations = serde_json::from_value(v).unwrap();
        validate(
            &Context {
                labels: &l,
                frames: (0, 9),
            },
            &a,
        )
    }

    #[test]
    fn valid_annotations_pass() {
        check(json!({
            "tags": [{"frame": 0, "label_id": 1, "attributes": [{"spec_id": 10, "value": "blue"}]}],
            "shapes": [
                {"type": "rectangle", "frame": 1, "label_id": 2, "points": [0, 0, 5, 5]},
                {"type": "mask", "frame": 1, "label_id": 1, "points": [3, 1, 0, 0, 1, 1]},
                {"type": "skeleton", "frame": 2, "label_id": 3, "points": [], "elements": [{"type": "points", "frame": 2, "label_id": 4, "points": [1, 1]}]}
            ],
            "tracks": [{"frame": 3, "label_id": 2, "shapes": [{"type": "rectangle", "frame": 3, "points": [0, 0, 1, 1]}, {"type": "rectangle", "frame": 5, "points": [1, 1, 2, 2], "outside": true}]}]
        }))
        .unwrap();
    }

    #[test]
    fn invalid_annotations_say_where_and_why() {
        let cases = [
            (
                json!({"shapes": [{"type": "rectangle", "frame": 0, "label_id": 99, "points": [0, 0, 1, 1]}]}),
                "shapes[0]: unknown label id 99",
            ),
            (
                json!({"tags": [{"frame": 0, "label_id": 1, "attributes": [{"spec_id": 10, "value": "green"}]}]}),
                "'green' is not one of",
            ),
            (
                json!({"tags": [{"frame": 0, "label_id": 1, "attributes": [{"spec_id": 11, "value": "500"}]}]}),
                "outside 0..=100",
            ),
            (
                json!({"tags": [{"frame": 0, "label_id": 1, "attributes": [{"spec_id": 77, "value": "x"}]}]}),
                "does not belong",
            ),
            (
                json!({"shapes": [{"type": "rectangle", "frame": 10, "label_id": 2, "points": [0, 0, 1, 1]}]}),
                "frame 10 is outside",
            ),
            (
                json!({"shapes": [{"type": "polygon", "frame": 0, "label_id": 1, "points": [0, 0, 1, 1]}]}),
                "needs an even number of at least 6",
            ),
            (
                json!({"shapes": [{"type": "polygon", "frame": 0, "label_id": 2, "points": [0, 0, 1, 1, 2, 2]}]}),
                "is for rectangles",
            ),
            (
                json!({"shapes": [{"type": "mask", "frame": 0, "label_id": 1, "points": [3, 2, 0, 0, 1, 1]}]}),
                "covers 5 pixels but its box has 4",
            ),
            (
                json!({"shapes": [{"type": "rectangle", "frame": 0, "label_id": 2, "points": [0, 0, 1, 1], "rotation": 400}]}),
                "rotation 400",
            ),
            (
                json!({"shapes": [{"type": "skeleton", "frame": 0, "label_id": 3, "points": [], "elements": [{"type": "points", "frame": 0, "label_id": 2, "points": [1, 1]}]}]}),
                "not a sublabel",
            ),
            (
                json!({"tracks": [{"frame": 0, "label_id": 2, "shapes": [{"type": "rectangle", "frame": 2, "points": [0, 0, 1, 1]}, {"type": "rectangle", "frame": 1, "points": [0, 0, 1, 1]}]}]}),
                "strictly increasing",
            ),
        ];
        for (v, needle) in cases {
            let e = check(v.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn nested_ids_are_assigned_in_order() {
        let mut a: Annotations = serde_json::from_value(json!({
            "tracks": [{"frame": 0, "label_id": 3, "shapes": [{"type": "skeleton", "frame": 0}], "elements": [{"frame": 0, "label_id": 4, "shapes": [{"type": "points", "frame": 0, "points": [1, 1]}]}]}]
        }))
        .unwrap();
        assert_eq!(nested_count(&a), 3);
        assign_nested_ids(&mut a, &mut [7, 8, 9].into_iter(), false);
        assert_eq!(a.tracks[0].shapes[0].id, Some(7));
        assert_eq!(a.tracks[0].elements[0].id, Some(8));
        assert_eq!(a.tracks[0].elements[0].shapes[0].id, Some(9));
    }
}
