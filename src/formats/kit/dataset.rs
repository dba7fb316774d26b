//! The dataset view every format reads: the task's frames ([`DatasetFrame`]), its meta and
//! annotations ([`TaskDataset`]), the annotations grouped by frame ([`FrameAnnotations`]), one
//! [`ShapeView`] for plain and tracked shapes alike, and where saved images come from
//! ([`FrameSource`]).

use crate::annotations::interpolate::{interpolate, FrameShape};
use crate::annotations::{Annotations, AttributeVal, LabelIndex, Shape, ShapeType, Tag, Track};
use crate::formats::FormatError;

/// A frame of the task as formats see it.
#[derive(Debug, Clone)]
pub struct DatasetFrame {
    /// Task-relative frame number.
    pub rel: u64,
    /// Absolute source frame (`start + rel * step`).
    pub abs: u64,
    /// The frame's path as CVAT names it: the image's relative path (with extension) for image
    /// tasks, `frame_{abs:06}.PNG` for video tasks.
    pub name: String,
    pub width: u32,
    pub height: u32,
}

/// A task as formats see it: meta, labels, frames and annotations (tracks not interpolated).
#[derive(Debug, Clone)]
pub struct TaskDataset<'a> {
    pub task_id: i64,
    pub name: String,
    /// `annotation` (images) or `interpolation` (video).
    pub mode: String,
    pub size: u64,
    pub overlap: u64,
    pub bug_tracker: String,
    /// Task subset; empty means `default`.
    pub subset: String,
    pub created: String,
    pub updated: String,
    pub owner: Option<String>,
    /// Video tasks: the video's display size.
    pub original_size: Option<(u32, u32)>,
    /// Segments (jobs): `(id, start, stop)`, task-relative.
    pub segments: Vec<(i64, u64, u64)>,
    pub labels: &'a LabelIndex,
    /// Every task frame, in order (`frames[rel]`).
    pub frames: Vec<DatasetFrame>,
    pub annotations: &'a Annotations,
}

impl TaskDataset<'_> {
    /// Whether this is a video task: CVAT's rule, `mode == "interpolation"`.
    pub fn is_video(&self) -> bool {
        self.mode == "interpolation"
    }

    /// The index in [`frames`](Self::frames) of task frame `rel`, if the dataset has it.
    pub fn frame_index(&self, rel: u64) -> Option<usize> {
        // Frames are consecutive (a task or a job's range): try the direct position first.
        let first = self.frames.first()?.rel;
        let guess = usize::try_from(rel.checked_sub(first)?).ok()?;
        match self.frames.get(guess) {
            Some(f) if f.rel == rel => Some(guess),
            _ => self.frames.binary_search_by_key(&rel, |f| f.rel).ok(),
        }
    }
}

/// Indices of things grouped by the dataset frame they are on: a counting sort (stable, two
/// passes, no per-frame allocation). Things on frames the dataset does not have are left out.
struct ByFrame {
    /// `idx[start[i]..start[i + 1]]` are on dataset frame `i`.
    start: Vec<u32>,
    idx: Vec<u32>,
}

impl ByFrame {
    fn new(ds: &TaskDataset<'_>, frames: impl Iterator<Item = u64> + Clone) -> ByFrame {
        let pos = |rel| ds.frame_index(rel);
        let mut start = vec![0u32; ds.frames.len() + 1];
        for p in frames.clone().filter_map(pos) {
            start[p + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut idx = vec![0u32; start[start.len() - 1] as usize];
        for (k, rel) in frames.enumerate() {
            if let Some(p) = pos(rel) {
                idx[next[p] as usize] = k as u32;
                next[p] += 1;
            }
        }
        ByFrame { start, idx }
    }

    fn of(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.idx[self.start[i] as usize..self.start[i + 1] as usize]
            .iter()
            .map(|&k| k as usize)
    }
}

/// A shape on one frame for exporters that write frame by frame.
pub(crate) enum FrameObject<'a> {
    /// A shape of its own.
    Plain(&'a Shape),
    /// Track number `index` (its position in the task's tracks) on this frame.
    Tracked {
        index: usize,
        track: &'a Track,
        shape: &'a FrameShape,
    },
}

impl<'a> FrameObject<'a> {
    fn z_order(&self) -> i64 {
        match self {
            FrameObject::Plain(s) => s.z_order,
            FrameObject::Tracked { shape, .. } => shape.z_order,
        }
    }

    /// The shape as every exporter reads it, its elements included.
    pub(crate) fn view(&self) -> ShapeView<'a> {
        match *self {
            FrameObject::Plain(s) => ShapeView::plain(s),
            FrameObject::Tracked {
                index,
                track,
                shape,
            } => ShapeView::tracked(shape, index, track),
        }
    }
}

/// What an exporter writes of a shape, whether plain or a track's shape on one frame: one view
/// for both, so that formats never tell the two apart except where they must (`track`).
#[derive(Debug, Clone)]
pub struct ShapeView<'a> {
    pub kind: ShapeType,
    pub label_id: i64,
    pub source: &'a str,
    pub group: u64,
    pub occluded: bool,
    pub outside: bool,
    /// Always true for plain shapes.
    pub keyframe: bool,
    pub z_order: i64,
    pub rotation: f64,
    pub points: &'a [f64],
    pub attributes: &'a [AttributeVal],
    /// A track's shape: the track's position in the task's tracks (CVAT's `track_id`).
    pub track: Option<usize>,
    /// Skeletons: the elements, in element order.
    pub elements: Vec<ShapeView<'a>>,
}

impl<'a> ShapeView<'a> {
    /// A plain shape.
    pub fn plain(s: &'a Shape) -> Self {
        ShapeView {
            kind: s.kind,
            label_id: s.label_id,
            source: &s.source,
            group: s.group,
            occluded: s.occluded,
            outside: s.outside,
            keyframe: true,
            z_order: s.z_order,
            rotation: s.rotation,
            points: &s.points,
            attributes: &s.attributes,
            track: None,
            elements: s.elements.iter().map(ShapeView::plain).collect(),
        }
    }

    /// Track `index` (`track`) on one frame (`f`, interpolated or a keyframe). Elements take
    /// their own element track's source and group (the track's source, group 0, without one).
    pub fn tracked(f: &'a FrameShape, index: usize, track: &'a Track) -> Self {
        let mut v = Self::frame(f, index, &track.source, track.group);
        v.elements = f
            .elements
            .iter()
            .map(|e| {
                let et = track.elements.iter().find(|t| t.label_id == e.label_id);
                Self::frame(
                    e,
                    index,
                    et.map_or(track.source.as_str(), |et| et.source.as_str()),
                    et.map_or(0, |et| et.group),
                )
            })
            .collect();
        v
    }

    fn frame(f: &'a FrameShape, index: usize, source: &'a str, group: u64) -> Self {
        ShapeView {
            kind: f.kind,
            label_id: f.label_id,
            source,
            group,
            occluded: f.occluded,
            outside: f.outside,
            keyframe: f.keyframe,
            z_order: f.z_order,
            rotation: f.rotation,
            points: &f.points,
            attributes: &f.attributes,
            track: Some(index),
            elements: Vec::new(),
        }
    }
}

/// A dataset's annotations by frame, as CVAT's frame-by-frame exports see them: tags, and shapes
/// (plain ones, then the tracks' interpolated shapes) sorted by z-order.
pub(crate) struct FrameAnnotations<'a> {
    a: &'a Annotations,
    /// The tracks' shapes that are kept: `(track index, shape)`.
    tracked: Vec<(usize, FrameShape)>,
    tags: ByFrame,
    plain: ByFrame,
    tracks: ByFrame,
}

impl<'a> FrameAnnotations<'a> {
    /// Groups `ds`'s annotations; `keep` says which of the tracks' shapes are exported.
    pub(crate) fn new(ds: &TaskDataset<'a>, keep: impl Fn(&FrameShape) -> bool + Sync) -> Self {
        let a = ds.annotations;
        let mut tracked = Vec::new();
        if let Some(last) = ds.frames.last().map(|f| f.rel) {
            use rayon::prelude::*;
            let per_track: Vec<Vec<FrameShape>> = a
                .tracks
                .par_iter()
                .map(|t| {
                    let mut shapes = interpolate(t, last);
                    shapes.retain(&keep);
                    shapes
                })
                .collect();
            for (ti, shapes) in per_track.into_iter().enumerate() {
                tracked.extend(shapes.into_iter().map(|f| (ti, f)));
            }
        }
        FrameAnnotations {
            a,
            tags: ByFrame::new(ds, a.tags.iter().map(|t| t.frame)),
            plain: ByFrame::new(ds, a.shapes.iter().map(|s| s.frame)),
            tracks: ByFrame::new(ds, tracked.iter().map(|t| t.1.frame)),
            tracked,
        }
    }

    /// The tags on dataset frame `i` (its index in `frames`).
    pub(crate) fn tags(&self, i: usize) -> impl Iterator<Item = &'a Tag> + '_ {
        self.tags.of(i).map(|k| &self.a.tags[k])
    }

    /// The shapes on dataset frame `i`: plain ones, then tracks', stably sorted by z-order.
    pub(crate) fn shapes(&self, i: usize) -> Vec<FrameObject<'_>> {
        let mut out: Vec<FrameObject<'_>> = self
            .plain
            .of(i)
            .map(|k| FrameObject::Plain(&self.a.shapes[k]))
            .chain(self.tracks.of(i).map(|k| {
                let (index, shape) = &self.tracked[k];
                FrameObject::Tracked {
                    index: *index,
                    track: &self.a.tracks[*index],
                    shape,
                }
            }))
            .collect();
        out.sort_by_key(FrameObject::z_order);
        out
    }
}

/// Where exported images come from (the chunk cache / frame provider).
pub trait FrameSource: Sync {
    /// The image bytes of task frame `rel`, and the extension they are encoded with.
    fn image(&self, rel: u64) -> Result<(Vec<u8>, String), FormatError>;
}
