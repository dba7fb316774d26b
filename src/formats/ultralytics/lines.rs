//! The label lines of the family: one writer and one reader per line kind.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::annotations::{LabelIndex, ShapeType};
use crate::formats::kit::darknet::{number, put_values, yolo_box};
use crate::formats::kit::dataset::ShapeView;
use crate::formats::kit::labelmap::LabelMap;

use super::Kind;

/// Writes the lines of one format for the shapes of a frame.
pub(super) struct LineWriter<'l> {
    pub kind: Kind,
    pub track_ids: bool,
    pub classes: LabelMap<'l>,
    /// Pose: each skeleton label's point labels, in label order.
    pub points: HashMap<i64, Vec<i64>>,
    /// Pose: the largest skeleton's point count (`kpt_shape[0]`).
    pub kpt: usize,
}

impl<'l> LineWriter<'l> {
    pub fn new(kind: Kind, track_ids: bool, labels: &'l LabelIndex) -> Self {
        let classes = if kind == Kind::Pose {
            LabelMap::with(labels, 0, |l| l.parent.is_none() && l.kind == "skeleton")
        } else {
            LabelMap::new(labels, 0)
        };
        let mut points = HashMap::new();
        if kind == Kind::Pose {
            for (_, l) in classes.iter() {
                points.insert(l.id, labels.children(l.id).map(|c| c.id).collect());
            }
        }
        let kpt = points.values().map(Vec::len).max().unwrap_or(0);
        LineWriter {
            kind,
            track_ids,
            classes,
            points,
            kpt,
        }
    }

    /// Appends the line of `s` (if the format writes it) to `out`; `w`, `h`: the frame's size.
    pub fn line(&self, out: &mut String, s: &ShapeView<'_>, w: u32, h: u32) {
        let Some(class) = self.classes.class_of(s.label_id) else {
            return;
        };
        let (fw, fh) = (f64::from(w), f64::from(h));
        let start = out.len();
        let _ = write!(out, "{class}");
        match (self.kind, s.kind) {
            (Kind::Detection, ShapeType::Rectangle) if s.points.len() >= 4 => {
                if s.rotation.rem_euclid(360.0) > 0.00001 {
                    out.truncate(start);
                    return;
                }
                put_values(out, yolo_box(s.points, w, h));
            }
            (Kind::Segmentation, ShapeType::Polygon) => {
                put_values(out, normalised(s.points, fw, fh));
            }
            (Kind::OrientedBoxes, ShapeType::Rectangle) if s.points.len() >= 4 => {
                put_values(out, normalised(&corners(s.points, s.rotation), fw, fh));
            }
            (Kind::Pose, ShapeType::Skeleton) if !s.elements.is_empty() => {
                let p = &self.points[&s.label_id];
                let (mut x0, mut y0) = (f64::INFINITY, f64::INFINITY);
                let (mut x1, mut y1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
                for e in &s.elements {
                    for xy in e.points.chunks_exact(2) {
                        (x0, x1) = (x0.min(xy[0]), x1.max(xy[0]));
                        (y0, y1) = (y0.min(xy[1]), y1.max(xy[1]));
                    }
                }
                if x0 > x1 {
                    out.truncate(start);
                    return;
                }
                put_values(out, yolo_box(&[x0, y0, x1, y1], w, h));
                for label in p {
                    match s.elements.iter().find(|e| e.label_id == *label) {
                        Some(e) if e.points.len() >= 2 => {
                            let v = if e.outside {
                                0
                            } else if e.occluded {
                                1
                            } else {
                                2
                            };
                            put_values(out, [e.points[0] / fw, e.points[1] / fh]);
                            let _ = write!(out, " {v}");
                        }
                        _ => out.push_str(" 0.0 0.0 0"),
                    }
                }
                for _ in p.len()..self.kpt {
                    out.push_str(" 0.0 0.0 0");
                }
            }
            _ => {
                out.truncate(start);
                return;
            }
        }
        if let (true, Some(t)) = (self.track_ids, s.track) {
            let _ = write!(out, " {t}");
        }
        out.push('\n');
    }
}

/// `x y` pairs divided by the frame's width and height.
fn normalised(p: &[f64], w: f64, h: f64) -> impl Iterator<Item = f64> + '_ {
    p.chunks_exact(2).flat_map(move |xy| [xy[0] / w, xy[1] / h])
}

/// The four corners of box `x1 y1 x2 y2` turned by `rotation` degrees about its centre: top left,
/// top right, bottom right, bottom left (Datumaro's `bbox_annotation_as_polygon`).
pub(super) fn corners(p: &[f64], rotation: f64) -> [f64; 8] {
    let (x1, y1, x2, y2) = (p[0], p[1], p[2], p[3]);
    let mut c = [x1, y1, x2, y1, x2, y2, x1, y2];
    let r = rotation.to_radians();
    if r != 0.0 {
        let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let (sin, cos) = r.sin_cos();
        for xy in c.chunks_exact_mut(2) {
            let (dx, dy) = (xy[0] - cx, xy[1] - cy);
            xy[0] = cx + cos * dx - sin * dy;
            xy[1] = cy + sin * dx + cos * dy;
        }
    }
    c
}

/// The rectangle `x1 y1 x2 y2` and rotation (degrees, in `[0, 180)`) of four corners: the first
/// edge gives the width and the angle, the second the height, their mean the centre. For the
/// corners an export writes this is the box that was written (turned by 180° at most).
pub(super) fn rectangle_of(c: &[f64; 8]) -> ([f64; 4], f64) {
    let (cx, cy) = (
        (c[0] + c[2] + c[4] + c[6]) / 4.0,
        (c[1] + c[3] + c[5] + c[7]) / 4.0,
    );
    let w = (c[2] - c[0]).hypot(c[3] - c[1]);
    let h = (c[4] - c[2]).hypot(c[5] - c[3]);
    let mut rotation = (c[3] - c[1])
        .atan2(c[2] - c[0])
        .to_degrees()
        .rem_euclid(180.0);
    if rotation.abs() <= 0.00001 || (180.0 - rotation).abs() <= 0.00001 {
        rotation = 0.0;
    }
    (
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
        rotation,
    )
}

/// Which kind a line of `n` fields looks like (for telling the family's formats apart).
pub(super) fn looks_like(n: usize) -> Option<Kind> {
    match n {
        5 | 6 => Some(Kind::Detection),
        9 | 10 => Some(Kind::OrientedBoxes),
        7.. => Some(Kind::Segmentation),
        _ => None,
    }
}

/// The track id field: an integer.
fn track_id(field: &str, what: &str) -> Result<i64, String> {
    field
        .parse::<i64>()
        .map_err(|_| format!("the {what} track id '{field}' is not an integer"))
}

/// Parses one line of `kind` (`kpt`: Pose's `kpt_shape`); `class_of` maps a class id to its
/// class. `values` is reused. `Ok(None)` for a blank line.
pub(super) fn parse_line(
    kind: Kind,
    kpt: (usize, usize),
    line: &str,
    names: usize,
    class_of: &dyn Fn(i64) -> Option<usize>,
    values: &mut Vec<f64>,
) -> Result<Option<(usize, Option<i64>)>, String> {
    let mut fields = line.split_ascii_whitespace();
    let Some(first) = fields.next() else {
        return Ok(None);
    };
    values.clear();
    // Counted first, then read: no allocation per line.
    let n = fields.clone().count() + 1;
    let (count, what): (usize, &str) = match kind {
        Kind::Detection => {
            if n != 5 && n != 6 {
                return Err(format!(
                    "{n} values, expected 5 or 6 (class id, x centre, y centre, width, height, optional track id)"
                ));
            }
            (4, "box")
        }
        Kind::OrientedBoxes => {
            if n != 9 && n != 10 {
                return Err(format!(
                    "{n} values, expected 9 or 10 (class id, x1 y1 … x4 y4, optional track id)"
                ));
            }
            (8, "box")
        }
        Kind::Segmentation => {
            if n <= 6 {
                return Err(format!(
                    "{n} values, expected a class id and at least 3 points (x y …), then an optional track id"
                ));
            }
            (n - 1 - (n - 1) % 2, "polygon")
        }
        Kind::Pose => {
            let want = 5 + kpt.0 * kpt.1;
            if n != want && n != want + 1 {
                return Err(format!(
                    "{n} values, expected {want} or {} (class id, box, {} values for each of {} points, optional track id)",
                    want + 1,
                    kpt.1,
                    kpt.0
                ));
            }
            (want - 1, "skeleton")
        }
    };
    let id: i64 = first
        .parse()
        .map_err(|_| format!("the class id '{first}' is not an integer"))?;
    let class =
        class_of(id).ok_or_else(|| format!("class id {id} is not in names ({names} names)"))?;
    for k in 0..count {
        let f = fields.next().unwrap_or_default();
        let what = Coord { kind: what, k };
        values.push(number(f, &what)?);
    }
    let track = match fields.next() {
        None => None,
        Some(f) if kind == Kind::Segmentation => Some(track_id(f, what).map_err(|_| {
            format!(
                "{} coordinates: an odd count (the last value '{f}' is not an integer track id)",
                n - 1
            )
        })?),
        Some(f) => Some(track_id(f, what)?),
    };
    Ok(Some((class, track)))
}

/// Names a value of a line in errors.
struct Coord<'a> {
    kind: &'a str,
    k: usize,
}

impl std::fmt::Display for Coord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let axis = if self.k % 2 == 0 { "x" } else { "y" };
        write!(f, "{} value {} ({axis})", self.kind, self.k + 1)
    }
}
