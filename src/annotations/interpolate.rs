//! Track interpolation: a track's keyframes → one shape per frame, as CVAT computes them when it
//! exports tracks as per-frame shapes.
//!
//! This is a port of `TrackManager.get_interpolated_shapes` from CVAT's
//! `cvat/apps/dataset_manager/annotation.py` (a 2025 snapshot of upstream `develop`, as carried
//! by the fork `timmermansjoy/cvat-temporal-sam2` at `3dd4046f`; the interpolation maths is the
//! same as upstream `cvat-ai/cvat` at `4c4f6b5d`), with `include_outside=True`, and of
//! `TrackManager.to_shapes` for skeleton elements:
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
//!   * point sets with more than one point: the earlier keyframe, unchanged;
//!   * masks: the earlier keyframe, unchanged (CVAT has no mask interpolation: it repeats a
//!     mask after its last keyframe but fails between two keyframes).
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
        // `360 - abs(d) * -1` is `360 + abs(d)`, bit for bit.
        d = if d > 0.0 { 360.0 + d.abs() } else { 1.0 };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(frame: u64, kind: ShapeType, points: &[f64]) -> TrackedShape {
        TrackedShape {
            id: None,
            kind,
            frame,
            occluded: false,
            outside: false,
            z_order: 0,
            rotation: 0.0,
            points: points.to_vec(),
            attributes: vec![],
        }
    }

    fn rect(frame: u64, points: [f64; 4]) -> TrackedShape {
        key(frame, ShapeType::Rectangle, &points)
    }

    fn outside(mut s: TrackedShape) -> TrackedShape {
        s.outside = true;
        s
    }

    fn rotated(mut s: TrackedShape, rotation: f64) -> TrackedShape {
        s.rotation = rotation;
        s
    }

    fn track(label_id: i64, shapes: Vec<TrackedShape>) -> Track {
        Track {
            id: None,
            frame: shapes.iter().map(|s| s.frame).min().unwrap_or(0),
            label_id,
            group: 0,
            source: "manual".into(),
            attributes: vec![],
            shapes,
            elements: vec![],
        }
    }

    fn attr(spec_id: i64, value: &str) -> AttributeVal {
        AttributeVal {
            spec_id,
            value: value.into(),
        }
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[track_caller]
    fn assert_points(s: &FrameShape, want: &[f64]) {
        assert!(
            close(&s.points, want),
            "frame {}: got {:?}, want {:?}",
            s.frame,
            s.points,
            want
        );
    }

    #[track_caller]
    fn assert_rot(s: &FrameShape, want: f64) {
        assert!(
            (s.rotation - want).abs() < 1e-9,
            "frame {}: rotation {}, want {want}",
            s.frame,
            s.rotation
        );
    }

    fn frames_of(v: &[FrameShape]) -> Vec<u64> {
        v.iter().map(|s| s.frame).collect()
    }

    #[test]
    fn empty_track_has_no_frames() {
        assert!(interpolate(&track(1, vec![]), 10).is_empty());
    }

    #[test]
    fn box_between_two_keyframes_is_linear() {
        // (0,0,10,20) at 0 → (8,4,18,40) at 4; diff = (8,4,8,20).
        let t = track(
            7,
            vec![
                rect(0, [0.0, 0.0, 10.0, 20.0]),
                rect(4, [8.0, 4.0, 18.0, 40.0]),
            ],
        );
        let v = interpolate(&t, 4);
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4]);
        assert_eq!(
            v.iter().map(|s| s.keyframe).collect::<Vec<_>>(),
            [true, false, false, false, true]
        );
        assert!(v
            .iter()
            .all(|s| s.label_id == 7 && s.kind == ShapeType::Rectangle));
        assert!(v.iter().all(|s| !s.outside && s.elements.is_empty()));
        assert_points(&v[0], &[0.0, 0.0, 10.0, 20.0]);
        // t = 1/4: (0 + 8/4, 0 + 4/4, 10 + 8/4, 20 + 20/4) = (2, 1, 12, 25)
        assert_points(&v[1], &[2.0, 1.0, 12.0, 25.0]);
        // t = 1/2 (midpoint): (4, 2, 14, 30)
        assert_points(&v[2], &[4.0, 2.0, 14.0, 30.0]);
        // t = 3/4: (6, 3, 16, 35)
        assert_points(&v[3], &[6.0, 3.0, 16.0, 35.0]);
        assert_points(&v[4], &[8.0, 4.0, 18.0, 40.0]);
        assert!(v.iter().all(|s| s.rotation == 0.0));
    }

    #[test]
    fn last_keyframe_is_repeated_up_to_last_frame() {
        let t = track(
            1,
            vec![rect(2, [0.0, 0.0, 2.0, 2.0]), rect(4, [2.0, 2.0, 4.0, 4.0])],
        );
        let v = interpolate(&t, 7);
        // Starts at the first keyframe, ends at last_frame.
        assert_eq!(frames_of(&v), [2, 3, 4, 5, 6, 7]);
        // Frame 3: t = 1/2 → (1, 1, 3, 3).
        assert_points(&v[1], &[1.0, 1.0, 3.0, 3.0]);
        for s in &v[3..] {
            assert!(!s.keyframe && !s.outside);
            assert_points(s, &[2.0, 2.0, 4.0, 4.0]);
        }
        // A single keyframe on the last frame: just itself.
        let one = interpolate(&track(1, vec![rect(5, [1.0, 1.0, 2.0, 2.0])]), 5);
        assert_eq!(frames_of(&one), [5]);
        assert!(one[0].keyframe);
        // Keyframes after last_frame produce nothing.
        assert!(interpolate(&track(1, vec![rect(6, [1.0, 1.0, 2.0, 2.0])]), 5).is_empty());
    }

    #[test]
    fn keyframe_after_last_frame_still_bends_the_frames_before_it() {
        // CVAT interpolates towards the first keyframe past the end, then stops:
        // (0,0,10,10) at 0 → (10,10,20,20) at 10, last frame 4: frame 4 has t = 0.4 → +4.
        let t = track(
            1,
            vec![
                rect(0, [0.0, 0.0, 10.0, 10.0]),
                rect(10, [10.0, 10.0, 20.0, 20.0]),
                rect(12, [50.0, 50.0, 60.0, 60.0]),
            ],
        );
        let v = interpolate(&t, 4);
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4]);
        assert_points(&v[4], &[4.0, 4.0, 14.0, 14.0]);
        assert!(!v[4].keyframe);
    }

    #[test]
    fn rotation_is_interpolated_the_short_way_round() {
        let frames = |r0: f64, r1: f64| {
            let t = track(
                1,
                vec![
                    rotated(rect(0, [0.0, 0.0, 1.0, 1.0]), r0),
                    rotated(rect(4, [0.0, 0.0, 1.0, 1.0]), r1),
                ],
            );
            interpolate(&t, 4)
        };
        // 90 → 0 (CVAT's own test): d = ((0 - 90 + 180) % 360) - 180 = -90;
        // 90 - 90/4 = 67.5, 45, 22.5.
        let v = frames(90.0, 0.0);
        assert_rot(&v[1], 67.5);
        assert_rot(&v[2], 45.0);
        assert_rot(&v[3], 22.5);
        assert_rot(&v[4], 0.0);
        // 350 → 10 wraps through 0: d = ((10 - 350 + 180) % 360) - 180 = (-160 % 360) - 180
        // = 200 - 180 = 20; (350 + 5 + 360) % 360 = 355, (350 + 10 + 360) % 360 = 0,
        // (350 + 15 + 360) % 360 = 5.
        let v = frames(350.0, 10.0);
        assert_rot(&v[1], 355.0);
        assert_rot(&v[2], 0.0);
        assert_rot(&v[3], 5.0);
        // 10 → 350 the other way: d = ((340 + 180) % 360) - 180 = -20;
        // (10 - 5 + 360) % 360 = 5, then 0, then (10 - 15 + 360) % 360 = 355.
        let v = frames(10.0, 350.0);
        assert_rot(&v[1], 5.0);
        assert_rot(&v[2], 0.0);
        assert_rot(&v[3], 355.0);
        // 30 → 300: d = ((270 + 180) % 360) - 180 = 90 - 180 = -90;
        // 30 - 22.5 = 7.5, 30 - 45 + 360 = 345, 30 - 67.5 + 360 = 322.5.
        let v = frames(30.0, 300.0);
        assert_rot(&v[1], 7.5);
        assert_rot(&v[2], 345.0);
        assert_rot(&v[3], 322.5);
    }

    #[test]
    fn half_turn_rotation_keeps_cvats_quirk() {
        // 0 → 180: d = ((180 + 180) % 360) - 180 = -180, |d| >= 180 and d <= 0, so CVAT's
        // `360 - abs(d) * -1 if d > 0 else 1` gives 1: the box turns by 1° over the segment.
        let t = track(
            1,
            vec![
                rotated(rect(0, [0.0, 0.0, 1.0, 1.0]), 0.0),
                rotated(rect(4, [0.0, 0.0, 1.0, 1.0]), 180.0),
            ],
        );
        let v = interpolate(&t, 4);
        assert_rot(&v[1], 0.25);
        assert_rot(&v[2], 0.5);
        assert_rot(&v[3], 0.75);
        assert_rot(&v[4], 180.0);
        // 270 → 90: d = ((-180 + 180) % 360) - 180 = -180 → 1; midpoint 270.5.
        let t = track(
            1,
            vec![
                rotated(rect(0, [0.0, 0.0, 1.0, 1.0]), 270.0),
                rotated(rect(2, [0.0, 0.0, 1.0, 1.0]), 90.0),
            ],
        );
        assert_rot(&interpolate(&t, 2)[1], 270.5);
    }

    #[test]
    fn ellipse_interpolates_points_and_rotation() {
        // (cx, cy, rx_pt, ry_pt) = (10,10,20,15) r=0 → (30,10,50,25) r=40 over 4 frames.
        // Frame 1: t = 1/4 → (15, 10, 27.5, 17.5), rotation 10.
        // Frame 3: t = 3/4 → (25, 10, 42.5, 22.5), rotation 30.
        let t = track(
            1,
            vec![
                key(0, ShapeType::Ellipse, &[10.0, 10.0, 20.0, 15.0]),
                rotated(key(4, ShapeType::Ellipse, &[30.0, 10.0, 50.0, 25.0]), 40.0),
            ],
        );
        let v = interpolate(&t, 4);
        assert_points(&v[1], &[15.0, 10.0, 27.5, 17.5]);
        assert_rot(&v[1], 10.0);
        assert_points(&v[3], &[25.0, 10.0, 42.5, 22.5]);
        assert_rot(&v[3], 30.0);
        assert!(v.iter().all(|s| s.kind == ShapeType::Ellipse));
    }

    #[test]
    fn cuboid_interpolates_all_sixteen_coordinates() {
        // Points 0..15 at frame 0, each + 16 at frame 4: midpoint (frame 2) is i + 8,
        // frame 1 is i + 4.
        let p0: Vec<f64> = (0..16).map(f64::from).collect();
        let p1: Vec<f64> = (0..16).map(|i| f64::from(i) + 16.0).collect();
        let t = track(
            1,
            vec![
                key(0, ShapeType::Cuboid, &p0),
                key(4, ShapeType::Cuboid, &p1),
            ],
        );
        let v = interpolate(&t, 4);
        let mid: Vec<f64> = (0..16).map(|i| f64::from(i) + 8.0).collect();
        let quarter: Vec<f64> = (0..16).map(|i| f64::from(i) + 4.0).collect();
        assert_points(&v[2], &mid);
        assert_points(&v[1], &quarter);
    }

    #[test]
    fn single_points_interpolate_point_sets_do_not() {
        // One point: linear. (0, 10) → (4, 2): frame 1 = (1, 8), frame 2 = (2, 6).
        let t = track(
            1,
            vec![
                key(0, ShapeType::Points, &[0.0, 10.0]),
                key(4, ShapeType::Points, &[4.0, 2.0]),
            ],
        );
        let v = interpolate(&t, 4);
        assert_points(&v[1], &[1.0, 8.0]);
        assert_points(&v[2], &[2.0, 6.0]);
        // Several points (even the same count): CVAT's points_interpolation copies the earlier
        // keyframe until the next.
        let t = track(
            1,
            vec![
                key(0, ShapeType::Points, &[0.0, 0.0, 1.0, 1.0]),
                key(2, ShapeType::Points, &[10.0, 10.0, 11.0, 11.0]),
            ],
        );
        let v = interpolate(&t, 3);
        assert_points(&v[1], &[0.0, 0.0, 1.0, 1.0]);
        assert!(!v[1].keyframe);
        assert_points(&v[3], &[10.0, 10.0, 11.0, 11.0]);
    }

    #[test]
    fn outside_keyframe_ends_a_segment_until_the_next_keyframe() {
        // CVAT's test_shape_interpolation: visible at 0, outside at 2, visible at 4, end 7.
        let t = track(
            1,
            vec![
                rect(0, [0.0, 0.0, 4.0, 4.0]),
                outside(rect(2, [2.0, 2.0, 6.0, 6.0])),
                rect(4, [4.0, 4.0, 8.0, 8.0]),
            ],
        );
        let v = interpolate(&t, 6);
        // Every frame is produced...
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4, 5, 6]);
        let flags: Vec<(bool, bool)> = v.iter().map(|s| (s.keyframe, s.outside)).collect();
        assert_eq!(
            flags,
            [
                (true, false),
                (false, false),
                (true, true),
                (false, true),
                (true, false),
                (false, false),
                (false, false)
            ]
        );
        // ...and CVAT's exports keep 0, 1, 2 (outside keyframe), 4, 5, 6; frame 3 is dropped.
        let kept: Vec<u64> = v
            .iter()
            .filter(|s| s.keep_in_track_export())
            .map(|s| s.frame)
            .collect();
        assert_eq!(kept, [0, 1, 2, 4, 5, 6]);
        let shown: Vec<u64> = v
            .iter()
            .filter(|s| s.keep_in_frame_export())
            .map(|s| s.frame)
            .collect();
        assert_eq!(shown, [0, 1, 4, 5, 6]);
        // Frame 1 is interpolated towards the outside keyframe: (1, 1, 5, 5).
        assert_points(&v[1], &[1.0, 1.0, 5.0, 5.0]);
        // Frame 4 starts afresh from its keyframe.
        assert_points(&v[4], &[4.0, 4.0, 8.0, 8.0]);
        assert_points(&v[6], &[4.0, 4.0, 8.0, 8.0]);
    }

    #[test]
    fn outside_last_keyframe_stays_outside() {
        // CVAT's test_outside_shape_interpolation: 0 visible, 2 outside, 4 outside; end 5
        // → CVAT returns frames 0, 1, 2, 4.
        let t = track(
            1,
            vec![
                rect(0, [0.0, 0.0, 1.0, 1.0]),
                outside(rect(2, [2.0, 2.0, 3.0, 3.0])),
                outside(rect(4, [4.0, 4.0, 5.0, 5.0])),
            ],
        );
        let v = interpolate(&t, 8);
        assert_eq!(v.len(), 9);
        assert!(v[5..].iter().all(|s| s.outside && !s.keyframe));
        let kept: Vec<u64> = v
            .iter()
            .filter(|s| s.keep_in_track_export())
            .map(|s| s.frame)
            .collect();
        assert_eq!(kept, [0, 1, 2, 4]);
    }

    #[test]
    fn rotated_box_to_outside_keyframe_matches_cvats_test() {
        // CVAT's test_bbox_interpolation: base 0 rotation 90 at 0, base 4 rotation 0 outside at
        // 4, end 6: frames 1..3 are (1+b, 2+b, 3+b, 4+b) with rotation 67.5, 45, 22.5.
        let b = |base: f64| [1.0 + base, 2.0 + base, 3.0 + base, 4.0 + base];
        let t = track(
            1,
            vec![rotated(rect(0, b(0.0)), 90.0), outside(rect(4, b(4.0)))],
        );
        let v: Vec<FrameShape> = interpolate(&t, 5)
            .into_iter()
            .filter(FrameShape::keep_in_track_export)
            .collect();
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4]);
        for (i, r) in [(1, 67.5), (2, 45.0), (3, 22.5)] {
            assert_points(&v[i], &b(i as f64));
            assert_rot(&v[i], r);
            assert!(!v[i].outside && !v[i].keyframe);
        }
        assert!(v[4].outside && v[4].keyframe);
    }

    #[test]
    fn occluded_and_z_order_come_from_the_keyframe_before() {
        let mut k0 = rect(0, [0.0, 0.0, 1.0, 1.0]);
        k0.occluded = true;
        k0.z_order = 3;
        let mut k2 = rect(2, [2.0, 2.0, 3.0, 3.0]);
        k2.z_order = 1;
        let v = interpolate(&track(1, vec![k0, k2]), 3);
        assert!(v[1].occluded && v[1].z_order == 3);
        assert!(!v[2].occluded && v[2].z_order == 1);
        assert!(!v[3].occluded && v[3].z_order == 1);
    }

    #[test]
    fn attributes_are_inherited_from_earlier_keyframes_then_the_tracks() {
        let mut k0 = rect(0, [0.0, 0.0, 1.0, 1.0]);
        k0.attributes = vec![attr(1, "a0"), attr(2, "b0")];
        let mut k2 = rect(2, [0.0, 0.0, 1.0, 1.0]);
        k2.attributes = vec![attr(1, "a2")];
        let k4 = outside(rect(4, [0.0, 0.0, 1.0, 1.0]));
        let mut t = track(1, vec![k0, k2, k4]);
        t.attributes = vec![attr(9, "track")];
        let v = interpolate(&t, 5);
        let at = |f: usize| v[f].attributes.clone();
        // Frames 0, 1: keyframe 0's own, then the track's.
        let first = vec![attr(1, "a0"), attr(2, "b0"), attr(9, "track")];
        assert_eq!(at(0), first);
        assert_eq!(at(1), first);
        // Keyframe 2 sets 1 and inherits 2 (appended after its own).
        let second = vec![attr(1, "a2"), attr(2, "b0"), attr(9, "track")];
        assert_eq!(at(2), second);
        assert_eq!(at(3), second);
        // The outside keyframe inherits everything.
        assert_eq!(at(4), second);
        assert_eq!(at(5), second);
    }

    #[test]
    fn masks_are_copied_not_interpolated() {
        // RLE [2, 2] over the box (0,0)-(1,1), then [1, 3] over (5,5)-(6,6).
        let m0 = [2.0, 2.0, 0.0, 0.0, 1.0, 1.0];
        let m3 = [1.0, 3.0, 5.0, 5.0, 6.0, 6.0];
        let t = track(
            1,
            vec![key(0, ShapeType::Mask, &m0), key(3, ShapeType::Mask, &m3)],
        );
        let v = interpolate(&t, 5);
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4, 5]);
        for s in &v[..3] {
            assert_eq!(s.points, m0);
        }
        for s in &v[3..] {
            assert_eq!(s.points, m3);
        }
        assert!(v.iter().all(|s| s.kind == ShapeType::Mask));
    }

    /// Square (0,0) (4,0) (4,4) (0,4) and triangle (0,0) (4,0) (0,3).
    const SQUARE: [f64; 8] = [0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0];
    const TRIANGLE: [f64; 6] = [0.0, 0.0, 4.0, 0.0, 0.0, 3.0];

    #[test]
    fn polygon_triangle_to_square_is_resampled_like_cvat() {
        // Closed for the computation: L = tri + (0,0), perimeter 4 + 5 + 3 = 12, offsets
        // [0, 4/12, 9/12, 1]; R = square + (0,0), perimeter 16, offsets [0, .25, .5, .75, 1].
        // left→right nearest: L0→R0, L1 (.333)→R1 (|.083|), L2 (.75)→R3, L3→R4.
        // R2 (.5) is unmatched; nearest left: |.5-.333| = .167 → L1.
        // Matching {0:[0], 1:[1,2], 2:[3], 3:[4]}; interpolated: L0R0, L1R1, L1R2, L2R3, L3R4.
        // reduce: L0 alone → point 0; L1 has two → minimize over R1..R2 (length 4, N = 2,
        // threshold 4 / 4 = 1): both kept when |ip1 ip2| >= 1; L2 → point 3; L3 → point 4.
        // The polygon then loses its last point (the closing one).
        let t = track(
            1,
            vec![
                key(0, ShapeType::Polygon, &TRIANGLE),
                key(4, ShapeType::Polygon, &SQUARE),
            ],
        );
        let v = interpolate(&t, 4);
        // t = .25: ip1 = (4,0); ip2 = (4,0) + ((4,4) - (4,0)) * .25 = (4,1), |ip1 ip2| = 1 >= 1;
        // ip3 = (0,3) + ((0,4) - (0,3)) * .25 = (0, 3.25).
        assert_points(&v[1], &[0.0, 0.0, 4.0, 0.0, 4.0, 1.0, 0.0, 3.25]);
        // t = .5: ip2 = (4,2), ip3 = (0,3.5).
        assert_points(&v[2], &[0.0, 0.0, 4.0, 0.0, 4.0, 2.0, 0.0, 3.5]);
        // t = .75: ip2 = (4,3), ip3 = (0,3.75).
        assert_points(&v[3], &[0.0, 0.0, 4.0, 0.0, 4.0, 3.0, 0.0, 3.75]);
        assert_points(&v[4], &SQUARE);
        assert!(v.iter().all(|s| s.kind == ShapeType::Polygon));
    }

    #[test]
    fn polygon_square_to_triangle_merges_close_points() {
        // L = square closed, offsets [0, .25, .5, .75, 1]; R = triangle closed,
        // offsets [0, 1/3, .75, 1]. L0→R0; L1 (.25)→R1 (|.25-.333| = .083 < .25);
        // L2 (.5)→R1 (.167 < .25); L3→R2; L4→R3. Every right point is matched.
        // Interpolated: L0R0, L1R1, L2R1, L3R2, L4R3.
        // reduce: L0 → point 0; L1, L2 share R1 → left segment L1..L2 (length 4, N = 2,
        // threshold 1) over ip1..ip2; L3 → point 3; L4 → point 4; last point dropped.
        let t = track(
            1,
            vec![
                key(0, ShapeType::Polygon, &SQUARE),
                key(8, ShapeType::Polygon, &TRIANGLE),
            ],
        );
        let v = interpolate(&t, 8);
        // t = 4/8: ip1 = (4,0), ip2 = (4,4) + ((4,0) - (4,4)) * .5 = (4,2) (|2| >= 1, kept),
        // ip3 = (0,4) + ((0,3) - (0,4)) * .5 = (0,3.5).
        assert_points(&v[4], &[0.0, 0.0, 4.0, 0.0, 4.0, 2.0, 0.0, 3.5]);
        // t = 6/8: ip2 = (4,1), exactly the threshold away from ip1: kept; ip3 = (0,3.25).
        assert_points(&v[6], &[0.0, 0.0, 4.0, 0.0, 4.0, 1.0, 0.0, 3.25]);
        // t = 7/8: ip2 = (4,.5), closer than 1 → ip1, ip2 averaged to (4,.25);
        // ip3 = (0, 4 - .875) = (0, 3.125). Three points remain.
        assert_points(&v[7], &[0.0, 0.0, 4.0, 0.25, 0.0, 3.125]);
        assert_points(&v[8], &TRIANGLE);
    }

    #[test]
    fn polygon_with_equal_points_translates() {
        // CVAT's test_polygon_interpolation: (1,2) (3,4) (5,2) + base, base 0 → 4 over 4 frames;
        // frame i is base i.
        let p = |b: f64| [1.0 + b, 2.0 + b, 3.0 + b, 4.0 + b, 5.0 + b, 2.0 + b];
        let t = track(
            1,
            vec![
                key(0, ShapeType::Polygon, &p(0.0)),
                key(4, ShapeType::Polygon, &p(4.0)),
            ],
        );
        let v = interpolate(&t, 4);
        assert_eq!(v.len(), 5);
        for (i, s) in v.iter().enumerate() {
            assert_points(s, &p(i as f64));
        }
    }

    #[test]
    fn polyline_with_more_points_is_resampled_like_cvat() {
        // L = (0,0) (10,0): offsets [0, 1]. R = (0,0) (5,5) (10,0): offsets [0, .5, 1].
        // L0→R0, L1→R2; R1 (.5) is unmatched, equally near L0 and L1 → the first, L0.
        // Matching {0:[0,1], 1:[2]}; interpolated L0R0, L0R1, L1R2.
        // reduce: L0 has two → minimize over R0..R1 (length √50, N = 2, threshold √50/4
        // ≈ 1.7678); L1 → point 2. Polylines are not closed.
        let t = track(
            1,
            vec![
                key(0, ShapeType::Polyline, &[0.0, 0.0, 10.0, 0.0]),
                key(5, ShapeType::Polyline, &[0.0, 0.0, 5.0, 5.0, 10.0, 0.0]),
            ],
        );
        let v = interpolate(&t, 5);
        // t = .2: ip1 = (1,1), |ip0 ip1| = √2 ≈ 1.414 < 1.7678 → averaged (.5,.5).
        assert_points(&v[1], &[0.5, 0.5, 10.0, 0.0]);
        // t = .4: ip1 = (2,2), √8 ≈ 2.83 >= 1.7678 → kept.
        assert_points(&v[2], &[0.0, 0.0, 2.0, 2.0, 10.0, 0.0]);
        // t = .8: ip1 = (4,4).
        assert_points(&v[4], &[0.0, 0.0, 4.0, 4.0, 10.0, 0.0]);
        assert_eq!(v[5].points, [0.0, 0.0, 5.0, 5.0, 10.0, 0.0]);
        assert!(v.iter().all(|s| s.kind == ShapeType::Polyline));
    }

    #[test]
    fn polygon_rotation_is_copied_not_interpolated() {
        let t = track(
            1,
            vec![
                rotated(key(0, ShapeType::Polygon, &TRIANGLE), 10.0),
                rotated(key(2, ShapeType::Polygon, &TRIANGLE), 50.0),
            ],
        );
        assert_rot(&interpolate(&t, 2)[1], 10.0);
    }

    #[test]
    fn unsorted_keyframes_are_sorted_and_track_frame_cuts_the_start() {
        let mut t = track(
            1,
            vec![rect(4, [4.0, 4.0, 5.0, 5.0]), rect(0, [0.0, 0.0, 1.0, 1.0])],
        );
        let v = interpolate(&t, 4);
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4]);
        assert_points(&v[2], &[2.0, 2.0, 3.0, 3.0]);
        // CVAT drops shapes before the track's frame (still interpolating from keyframe 0).
        t.frame = 2;
        let v = interpolate(&t, 4);
        assert_eq!(frames_of(&v), [2, 3, 4]);
        assert_points(&v[0], &[2.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn skeleton_elements_are_interpolated_as_their_own_tracks() {
        // Element A: (0,0) at 0, outside (2,2) at 2. Element B: (10,10) at 0, outside (12,12)
        // at 2, (20,20) at 4. Element C starts at 3. Skeleton keyframes at 0 and 4, no points.
        let mut a = track(11, vec![key(0, ShapeType::Points, &[0.0, 0.0])]);
        a.shapes
            .push(outside(key(2, ShapeType::Points, &[2.0, 2.0])));
        a.attributes = vec![attr(5, "a")];
        let b = track(
            12,
            vec![
                key(0, ShapeType::Points, &[10.0, 10.0]),
                outside(key(2, ShapeType::Points, &[12.0, 12.0])),
                key(4, ShapeType::Points, &[20.0, 20.0]),
            ],
        );
        let c = track(13, vec![key(3, ShapeType::Points, &[5.0, 5.0])]);
        let mut s = track(
            10,
            vec![
                key(0, ShapeType::Skeleton, &[]),
                key(4, ShapeType::Skeleton, &[]),
            ],
        );
        s.elements = vec![a, b, c];
        let v = interpolate(&s, 5);
        assert_eq!(frames_of(&v), [0, 1, 2, 3, 4, 5]);
        assert!(v
            .iter()
            .all(|f| f.label_id == 10 && f.kind == ShapeType::Skeleton));
        assert!(v.iter().all(|f| f.points.is_empty() && !f.outside));
        let labels = |f: &FrameShape| f.elements.iter().map(|e| e.label_id).collect::<Vec<_>>();
        assert_eq!(labels(&v[2]), [11, 12]);
        assert_eq!(labels(&v[3]), [11, 12, 13]);
        // Frame 1: A (0,0)→(2,2) at t = 1/2 → (1,1); B (10,10)→(12,12) → (11,11); both visible.
        assert_points(&v[1].elements[0], &[1.0, 1.0]);
        assert_points(&v[1].elements[1], &[11.0, 11.0]);
        assert!(v[1].elements.iter().all(|e| !e.outside && !e.keyframe));
        // Element attributes: the element track's.
        assert_eq!(v[1].elements[0].attributes, [attr(5, "a")]);
        // Frame 2: both outside keyframes → the whole skeleton is dropped by CVAT's
        // per-frame exports.
        assert!(v[2].elements.iter().all(|e| e.outside && e.keyframe));
        assert!(!v[2].keep_in_frame_export());
        assert!(v[2].keep_in_track_export());
        // Frame 3: A repeats its outside keyframe; B goes from the outside (12,12) towards
        // (20,20) at t = 1/2 → (16,16), still outside; C appears (its keyframe).
        assert_points(&v[3].elements[0], &[2.0, 2.0]);
        assert_points(&v[3].elements[1], &[16.0, 16.0]);
        assert!(v[3].elements[0].outside && v[3].elements[1].outside);
        assert!(!v[3].elements[2].outside && v[3].elements[2].keyframe);
        assert!(v[3].keep_in_frame_export());
        // Frame 4: B visible again at its keyframe; frame 5 repeats it.
        assert!(!v[4].elements[1].outside && v[4].elements[1].keyframe);
        assert_points(&v[5].elements[1], &[20.0, 20.0]);
        assert!(v[5].elements[0].outside);
        assert!(v[4].keyframe && !v[5].keyframe);
        // Element frames equal the element tracks interpolated alone.
        let alone = interpolate(&s.elements[1], 5);
        for f in &v {
            assert_eq!(f.elements[1], alone[f.frame as usize]);
        }
    }

    #[test]
    fn frames_iterator_matches_and_sizes() {
        let t = track(
            1,
            vec![rect(3, [0.0, 0.0, 1.0, 1.0]), rect(6, [3.0, 3.0, 4.0, 4.0])],
        );
        let it = frames(&t, 9);
        assert_eq!(it.size_hint(), (7, Some(7)));
        assert_eq!(it.collect::<Vec<_>>(), interpolate(&t, 9));
        // Huge last frame: no overflow.
        let mut it = frames(&t, u64::MAX);
        assert_eq!(it.next().map(|s| s.frame), Some(3));
    }

    #[test]
    fn python_modulo_and_angle_diff() {
        assert_eq!(py_mod(-160.0, 360.0), 200.0);
        assert_eq!(py_mod(720.0, 360.0), 0.0);
        assert_eq!(find_angle_diff(10.0, 350.0), 20.0);
        assert_eq!(find_angle_diff(350.0, 10.0), -20.0);
        assert_eq!(find_angle_diff(180.0, 0.0), 1.0);
        assert_eq!(find_angle_diff(0.0, 180.0), 1.0);
        assert_eq!(find_angle_diff(179.0, 0.0), 179.0);
    }
}
