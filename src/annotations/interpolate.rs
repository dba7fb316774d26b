//! Track interpolation: a track's keyframes → one shape per frame, as CVAT computes them when it
//! exports tracks as per-frame shapes.
//!
//! This is a port of `TrackManager.get_interpolated_shapes` from CVAT's
//! `cvat/apps/dataset_manager/annotation.py` (upstream `cvat-ai/cvat` at `4c4f6b5d`, checked
//! against a 2025 copy of upstream `develop` whose interpolation code is the same), with
//! `include_outside=True`, and of `TrackManager.to_shapes` for skeleton elements:
//!
//! * Keyframes are taken in frame order. Between two keyframes the shape is a copy of the
//!   earlier one (`occluded`, `z_order`, `outside`, `kind`, attributes) with:
//!   * rectangles, ellipses, cuboids, skeletons and single points: every coordinate
//!     `p0 + (p1 - p0) * t` with `t = (frame - f0) / (f1 - f0)`, and the rotation
//!     `(r0 + find_angle_diff(r1, r0) * t + 360) % 360` (shortest way round, except that a
//!     half turn becomes +1°, as CVAT's `find_angle_diff` has it);
//!   * polygons and polylines: CVAT's `interpolate_position` (points matched by their relative
//!     position along the curve, then close points merged), for any point counts; the rotation
//!     is the earlier keyframe's;
//!   * point sets with more than one point, and masks: the earlier keyframe, unchanged.
//! * After the last keyframe, the shape is repeated up to `last_frame`. A keyframe after
//!   `last_frame` still bends the frames before it (they are interpolated towards it).
//! * Each keyframe also carries the attributes of the keyframes before it that it does not set
//!   itself; every frame's attributes are those, then the track's.
//! * Every frame is produced, outside ones included: an `outside` keyframe's copies are outside
//!   too. [`FrameShape::keep_in_track_export`] and [`FrameShape::keep_in_frame_export`] say
//!   which of them CVAT's exports keep.
//! * A track with `elements` (skeletons) gets, on each of its frames, the shape of each element
//!   track on that frame (elements are interpolated as tracks of their own).

use std::iter::FusedIterator;

use super::{AttributeVal, ShapeType, Track, TrackedShape};

/// A track's shape on one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameShape {
    pub frame: u64,
    /// The label of this shape (the track's, or the element's for skeleton elements).
    pub label_id: i64,
    pub kind: ShapeType,
    pub points: Vec<f64>,
    pub rotation: f64,
    pub occluded: bool,
    /// The keyframe's own flag (copied from the keyframe before, between keyframes). A skeleton
    /// is not marked outside when all its elements are; see [`FrameShape::keep_in_frame_export`].
    pub outside: bool,
    pub z_order: i64,
    /// True on the track's keyframes (frames that have a `TrackedShape`).
    pub keyframe: bool,
    /// Track attributes merged with the shape attributes of the last keyframe at or before:
    /// that keyframe's attributes, then those of earlier keyframes it does not set, then the
    /// track's.
    pub attributes: Vec<AttributeVal>,
    /// Skeleton tracks: the elements' shapes on this frame, in element order (an element whose
    /// track starts later has none yet).
    pub elements: Vec<FrameShape>,
}

impl FrameShape {
    /// Whether CVAT's track exports (CVAT for video, `get_interpolated_shapes` with
    /// `include_outside=False`) write this frame: keyframes, outside ones included, and visible
    /// frames. For skeletons CVAT for video interpolates the element tracks on their own; use
    /// [`interpolate`] on each of `track.elements` for those.
    pub fn keep_in_track_export(&self) -> bool {
        self.keyframe || !self.outside
    }

    /// Whether CVAT's per-frame exports (`to_shapes` + `group_by_frame`: CVAT for images,
    /// Datumaro-based formats) show this shape: not outside, and for a shape with elements, not
    /// all of its elements outside. The elements themselves are kept, outside ones included
    /// (they mark absent skeleton points).
    pub fn keep_in_frame_export(&self) -> bool {
        !self.outside && (self.elements.is_empty() || self.elements.iter().any(|e| !e.outside))
    }
}

/// Every frame of `track` from its first keyframe to `last_frame` (the task's last frame,
/// task-relative), outside frames included (callers drop them where CVAT does).
pub fn interpolate(track: &Track, last_frame: u64) -> Vec<FrameShape> {
    frames(track, last_frame).collect()
}

/// The frames of [`interpolate`], one at a time (nothing is computed before it is asked for).
pub fn frames(track: &Track, last_frame: u64) -> Frames<'_> {
    let node = Node::new(track, last_frame);
    let next = node.cursor.first;
    Frames {
        node,
        next,
        last: last_frame,
    }
}

/// Iterator over a track's frames, from [`frames`].
pub struct Frames<'a> {
    node: Node<'a>,
    /// The next frame to produce; `None` when done.
    next: Option<u64>,
    last: u64,
}

impl Iterator for Frames<'_> {
    type Item = FrameShape;

    fn next(&mut self) -> Option<FrameShape> {
        let f = self.next?;
        self.next = if f < self.last { Some(f + 1) } else { None };
        self.node.at(f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.next {
            None => (0, Some(0)),
            Some(f) => match usize::try_from(self.last - f) {
                Ok(n) if n < usize::MAX => (n + 1, Some(n + 1)),
                _ => (usize::MAX, None),
            },
        }
    }
}

impl FusedIterator for Frames<'_> {}

/// A track and its element tracks.
struct Node<'a> {
    cursor: Cursor<'a>,
    elements: Vec<Node<'a>>,
}

impl<'a> Node<'a> {
    fn new(track: &'a Track, last_frame: u64) -> Node<'a> {
        Node {
            cursor: Cursor::new(track, last_frame),
            elements: track
                .elements
                .iter()
                .map(|e| Node::new(e, last_frame))
                .collect(),
        }
    }

    /// The shape on frame `f`; `f` never decreases from one call to the next.
    fn at(&mut self, f: u64) -> Option<FrameShape> {
        let mut shape = self.cursor.at(f)?;
        if !self.elements.is_empty() {
            shape.elements.reserve_exact(self.elements.len());
            for e in &mut self.elements {
                if let Some(s) = e.at(f) {
                    shape.elements.push(s);
                }
            }
        }
        Some(shape)
    }
}

/// One track's keyframes, walked forwards.
struct Cursor<'a> {
    track: &'a Track,
    /// Keyframes in frame order (one per frame): those up to the last frame, then at most one
    /// after it, which only bends the frames before it.
    keys: Vec<&'a TrackedShape>,
    /// How many of `keys` are on or before the last frame.
    in_range: usize,
    /// Each in-range keyframe's attributes with those it inherits.
    attrs: Vec<Vec<AttributeVal>>,
    /// First frame produced (`None`: none).
    first: Option<u64>,
    last: u64,
    /// The keyframe at or before the current frame.
    seg: usize,
    /// The polygon/polyline plan for `keys[seg] → keys[seg + 1]`, once made.
    poly: Option<(usize, PolyPlan)>,
    /// Interpolated points of the current frame (polygons/polylines).
    scratch: Vec<[f64; 2]>,
}

impl<'a> Cursor<'a> {
    fn new(track: &'a Track, last: u64) -> Cursor<'a> {
        let mut keys: Vec<&TrackedShape> = track.shapes.iter().collect();
        // Stable, like Python's `sorted`; tracks are stored in order already.
        if keys.windows(2).any(|w| w[1].frame < w[0].frame) {
            keys.sort_by_key(|s| s.frame);
        }
        // CVAT skips a repeated frame (an identical copy) and rejects other repeats; keep the
        // first.
        keys.dedup_by_key(|s| s.frame);
        let in_range = keys.iter().take_while(|s| s.frame <= last).count();
        // CVAT stops at the first keyframe past the end, after interpolating towards it.
        keys.truncate(in_range + 1);

        // Attribute propagation: each keyframe gets those of the previous one it lacks.
        let mut attrs: Vec<Vec<AttributeVal>> = Vec::with_capacity(in_range);
        for (i, k) in keys[..in_range].iter().enumerate() {
            let mut own = k.attributes.clone();
            if i > 0 {
                for a in &attrs[i - 1] {
                    if !own.iter().any(|o| o.spec_id == a.spec_id) {
                        own.push(a.clone());
                    }
                }
            }
            attrs.push(own);
        }

        // Shapes before the track's frame are dropped (CVAT: `track["frame"] <= frame`).
        let first = keys[..in_range]
            .first()
            .map(|k| k.frame.max(track.frame))
            .filter(|&f| f <= last);
        Cursor {
            track,
            keys,
            in_range,
            attrs,
            first,
            last,
            seg: 0,
            poly: None,
            scratch: Vec::new(),
        }
    }

    /// The shape on frame `f`; `f` never decreases from one call to the next.
    fn at(&mut self, f: u64) -> Option<FrameShape> {
        let first = self.first?;
        if f < first || f > self.last {
            return None;
        }
        while self.seg + 1 < self.in_range && self.keys[self.seg + 1].frame <= f {
            self.seg += 1;
        }
        let i = self.seg;
        let k0 = self.keys[i];
        let (points, rotation, keyframe) = if k0.frame == f {
            (k0.points.clone(), k0.rotation, true)
        } else if let Some(&k1) = self.keys.get(i + 1) {
            let (p, r) = self.between(i, k0, k1, f);
            (p, r, false)
        } else {
            (k0.points.clone(), k0.rotation, false)
        };
        let mut attributes = Vec::with_capacity(self.attrs[i].len() + self.track.attributes.len());
        attributes.extend_from_slice(&self.attrs[i]);
        attributes.extend_from_slice(&self.track.attributes);
        Some(FrameShape {
            frame: f,
            label_id: self.track.label_id,
            kind: k0.kind,
            points,
            rotation,
            occluded: k0.occluded,
            outside: k0.outside,
            z_order: k0.z_order,
            keyframe,
            attributes,
            elements: Vec::new(),
        })
    }

    /// Points and rotation on frame `f`, strictly between keyframes `i` (`k0`) and `i + 1` (`k1`).
    fn between(
        &mut self,
        i: usize,
        k0: &TrackedShape,
        k1: &TrackedShape,
        f: u64,
    ) -> (Vec<f64>, f64) {
        // CVAT: `offset = (frame - shape0["frame"]) / distance`.
        let t = (f - k0.frame) as f64 / (k1.frame - k0.frame) as f64;
        if k0.kind != k1.kind {
            // CVAT raises NotImplementedError; keep the earlier shape.
            return (k0.points.clone(), k0.rotation);
        }
        match k0.kind {
            ShapeType::Rectangle | ShapeType::Ellipse | ShapeType::Cuboid | ShapeType::Skeleton => {
                simple(k0, k1, t)
            }
            ShapeType::Points if k0.points.len() == 2 && k1.points.len() == 2 => simple(k0, k1, t),
            ShapeType::Polygon | ShapeType::Polyline => {
                if self.poly.as_ref().is_none_or(|(s, _)| *s != i) {
                    self.poly = Some((
                        i,
                        PolyPlan::new(&k0.points, &k1.points, k0.kind == ShapeType::Polygon),
                    ));
                }
                let plan = &self.poly.as_ref().expect("made above").1;
                (plan.at(t, &mut self.scratch), k0.rotation)
            }
            // Point sets of several points are not interpolated by CVAT; masks are not either
            // (CVAT has no mask interpolation and fails on two visible mask keyframes).
            ShapeType::Points | ShapeType::Mask => (k0.points.clone(), k0.rotation),
        }
    }
}

/// CVAT's `simple_interpolation`: coordinates and rotation, linearly.
fn simple(k0: &TrackedShape, k1: &TrackedShape, t: f64) -> (Vec<f64>, f64) {
    let rotation = py_mod(
        k0.rotation + find_angle_diff(k1.rotation, k0.rotation) * t + 360.0,
        360.0,
    );
    let points = if k0.points.len() == k1.points.len() {
        // numpy: `shape0["points"] + (shape1["points"] - shape0["points"]) * offset`.
        k0.points
            .iter()
            .zip(&k1.points)
            .map(|(a, b)| a + (b - a) * t)
            .collect()
    } else {
        // Mismatched point counts (invalid for these types): CVAT's numpy call fails.
        k0.points.clone()
    };
    (points, rotation)
}

/// Python's float `%` (the result takes the divisor's sign).
fn py_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m + b
        } else {
            m
        }
    } else {
        0.0f64.copysign(b)
    }
}

/// CVAT's `find_angle_diff`, quirk included: after normalising to `[-180, 180)`, a difference
/// of exactly -180 (a half turn either way) becomes `1` (the Python reads
/// `360 - abs(d) * -1 if d > 0 else 1`).
fn find_angle_diff(right: f64, left: f64) -> f64 {
    let mut d = right - left;
    d = py_mod(d + 180.0, 360.0) - 180.0;
    if d.abs() >= 180.0 {
        d = if d > 0.0 { 360.0 - d.abs() * -1.0 } else { 1.0 };
    }
    d
}

/// One step of CVAT's `reduce_interpolation`.
#[derive(Debug, Clone, Copy)]
enum ReduceOp {
    /// Keep this interpolated point.
    Point(usize),
    /// `minimize_segment` over interpolated points `start..=stop` (`start < stop`).
    Minimize {
        start: usize,
        stop: usize,
        /// `base_length / (2 * N)`.
        threshold: f64,
    },
}

/// CVAT's `interpolate_position` for one pair of keyframes: everything but the offset is fixed,
/// so matching and the reduction steps are worked out once.
#[derive(Debug)]
struct PolyPlan {
    /// Polygon: the keyframes were closed (first point appended) and the result loses its last
    /// point.
    closed: bool,
    /// `(left, right)` of each interpolated point, in order (empty: copy `left`).
    pairs: Vec<([f64; 2], [f64; 2])>,
    ops: Vec<ReduceOp>,
    /// Fallback for degenerate input: the left points, unchanged.
    fallback: Option<Vec<f64>>,
}

fn to_xy(points: &[f64], closed: bool) -> Vec<[f64; 2]> {
    let mut v: Vec<[f64; 2]> = points.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
    if closed {
        if let Some(&p) = v.first() {
            v.push(p);
        }
    }
    v
}

/// CVAT's `curve_length`.
fn curve_length(points: &[[f64; 2]]) -> f64 {
    let mut length = 0.0;
    for w in points.windows(2) {
        let dx = w[1][0] - w[0][0];
        let dy = w[1][1] - w[0][1];
        length += (dx * dx + dy * dy).sqrt();
    }
    length
}

/// CVAT's `curve_to_offset_vec`: each point's position along the curve, 0..=1 (NaN for a curve
/// of length 0, as in numpy).
fn curve_offsets(points: &[[f64; 2]]) -> Vec<f64> {
    let length = curve_length(points);
    let mut out = Vec::with_capacity(points.len().max(1));
    out.push(0.0);
    let mut acc = 0.0;
    for w in points.windows(2) {
        let dx = w[1][0] - w[0][0];
        let dy = w[1][1] - w[0][1];
        acc += (dx * dx + dy * dy).sqrt();
        out.push(acc / length);
    }
    out
}

/// CVAT's `find_nearest_pair`: the first index of the closest value.
fn nearest(value: f64, curve: &[f64]) -> usize {
    let mut best = 0;
    let mut best_d = (value - curve[0]).abs();
    for (i, c) in curve.iter().enumerate().skip(1) {
        let d = (value - c).abs();
        if d < best_d {
            best = i;
            best_d = d;
        }
    }
    best
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    (dx * dx + dy * dy).sqrt()
}

impl PolyPlan {
    fn new(p0: &[f64], p1: &[f64], closed: bool) -> PolyPlan {
        if p0.len() < 2 || p1.len() < 2 || p0.len() % 2 != 0 || p1.len() % 2 != 0 {
            // Invalid shapes; CVAT would fail or return nothing useful.
            return PolyPlan {
                closed,
                pairs: Vec::new(),
                ops: Vec::new(),
                fallback: Some(p0.to_vec()),
            };
        }
        let left = to_xy(p0, closed);
        let right = to_xy(p1, closed);
        let lo = curve_offsets(&left);
        let ro = curve_offsets(&right);

        // match_left_right, then match_right_left (unmatched right points go to their nearest
        // left point), each list sorted.
        let mut matching: Vec<Vec<usize>> = lo.iter().map(|&v| vec![nearest(v, &ro)]).collect();
        let mut matched = vec![false; right.len()];
        for m in &matching {
            matched[m[0]] = true;
        }
        for (j, &v) in ro.iter().enumerate() {
            if !matched[j] {
                matching[nearest(v, &lo)].push(j);
            }
        }
        for m in &mut matching {
            m.sort_unstable();
        }

        let mut pairs = Vec::with_capacity(left.len() + right.len());
        let mut first_index = Vec::with_capacity(left.len());
        for (i, m) in matching.iter().enumerate() {
            first_index.push(pairs.len());
            for &j in m {
                pairs.push((left[i], right[j]));
            }
        }

        // reduce_interpolation's walk.
        let mut ops = Vec::new();
        let left_segment = |ops: &mut Vec<ReduceOp>, start: usize, stop: usize| {
            let (si, ei) = (first_index[start], first_index[stop]);
            if si == ei {
                ops.push(ReduceOp::Point(si));
            } else {
                let n = stop - start + 1;
                ops.push(ReduceOp::Minimize {
                    start: si,
                    stop: ei,
                    threshold: curve_length(&left[start..=stop]) / (2 * n) as f64,
                });
            }
        };
        let mut opened: Option<usize> = None;
        for (i, m) in matching.iter().enumerate() {
            if m.len() == 1 {
                match opened {
                    Some(p) if m[0] == matching[p][0] => continue,
                    Some(p) => {
                        left_segment(&mut ops, p, i - 1);
                        opened = Some(i);
                    }
                    None => opened = Some(i),
                }
            } else {
                if let Some(p) = opened.take() {
                    left_segment(&mut ops, p, i - 1);
                }
                // right_segment
                let (start, stop) = (m[0], m[m.len() - 1]);
                let n = stop - start + 1;
                ops.push(ReduceOp::Minimize {
                    start: first_index[i],
                    stop: first_index[i] + m.len() - 1,
                    threshold: curve_length(&right[start..=stop]) / (2 * n) as f64,
                });
            }
        }
        if let Some(p) = opened {
            left_segment(&mut ops, p, matching.len() - 1);
        }
        PolyPlan {
            closed,
            pairs,
            ops,
            fallback: None,
        }
    }

    /// The flat points at offset `t`; `scratch` holds the interpolated points.
    fn at(&self, t: f64, scratch: &mut Vec<[f64; 2]>) -> Vec<f64> {
        if let Some(p) = &self.fallback {
            return p.clone();
        }
        scratch.clear();
        scratch.extend(
            self.pairs
                .iter()
                .map(|(l, r)| [l[0] + (r[0] - l[0]) * t, l[1] + (r[1] - l[1]) * t]),
        );
        let ip = &scratch[..];
        let mut out: Vec<f64> = Vec::with_capacity(2 * ip.len());
        for op in &self.ops {
            match *op {
                ReduceOp::Point(i) => out.extend_from_slice(&ip[i]),
                ReduceOp::Minimize {
                    start,
                    stop,
                    threshold,
                } => {
                    // minimize_segment
                    let mark = out.len();
                    out.extend_from_slice(&ip[start]);
                    let mut latest = start;
                    let mut kept = 1;
                    for (i, &p) in ip.iter().enumerate().take(stop).skip(start + 1) {
                        if distance(ip[latest], p) >= threshold {
                            out.extend_from_slice(&p);
                            latest = i;
                            kept += 1;
                        }
                    }
                    out.extend_from_slice(&ip[stop]);
                    kept += 1;
                    if kept == 2 && distance(ip[start], ip[stop]) < threshold {
                        // average_point
                        out.truncate(mark);
                        out.push((0.0 + ip[start][0] + ip[stop][0]) / 2.0);
                        out.push((0.0 + ip[start][1] + ip[stop][1]) / 2.0);
                    }
                }
            }
        }
        if self.closed {
            out.truncate(out.len().saturating_sub(2));
        }
        out
    }
}
