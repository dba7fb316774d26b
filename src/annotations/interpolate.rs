//! Track interpolation: a track's keyframes → one shape per frame, as CVAT computes them when it
//! exports tracks as per-frame shapes (being written; the API below is fixed).

use super::{AttributeVal, ShapeType, Track};

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
    pub outside: bool,
    pub z_order: i64,
    /// True on the track's keyframes (frames that have a `TrackedShape`).
    pub keyframe: bool,
    /// Track attributes merged with the shape attributes of the last keyframe at or before.
    pub attributes: Vec<AttributeVal>,
    /// Skeleton tracks: the elements' shapes on this frame.
    pub elements: Vec<FrameShape>,
}

/// Every frame of `track` from its first keyframe to `last_frame` (the task's last frame,
/// task-relative), outside frames included (callers drop them where CVAT does).
pub fn interpolate(track: &Track, last_frame: u64) -> Vec<FrameShape> {
    let _ = (track, last_frame);
    unimplemented!("track interpolation is being written")
}
