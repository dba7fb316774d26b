#![doc(hidden)]
//! The formats' test kit: one fixture builder for every format's tests, the conformance suite
//! (`formats::conformance`) and `benches/formats.rs`.
//!
//! It is `pub` (and `#[doc(hidden)]`) rather than `#[cfg(test)]` because benches are a crate of
//! their own that only sees the library's public API; it is not part of the API formats are
//! written against, and nothing outside tests and benches calls it.
//!
//! ```ignore
//! let t = TaskBuilder::video(10).frame_step(10, 3).segment_size(5).everything().build();
//! let ds = t.dataset();            // the whole task
//! let job = t.job(2);              // its second segment: frames and annotations of it only
//! let ds2 = job.dataset(&t);
//! ```
//!
//! The content, by frame (task-relative; with `segment_size(5)` frames 0–4 are job 1 and 5–9
//! job 2, and nothing crosses a segment boundary):
//!
//! * 0: a car rectangle (every car attribute, group 1, z 1), a car polygon (group 1, occluded),
//!   a rotated person rectangle (z 2, every person attribute), tags `scene` and `car`;
//! * 1: car polyline, points, rotated ellipse, cuboid, mask, and a skeleton (one element
//!   outside, one occluded with an attribute);
//! * 2: a sign rectangle (z -1, source `auto`); 3: a tag (no shapes);
//! * 4 and 6: no plain shapes; 5: a person polygon, a sign points; 7: a mask, a car rectangle (group 2) and a
//!   person ellipse (group 2); 8: a tag; 9: nothing but an `outside` keyframe;
//! * tracks: a car rectangle 0 → 2 (visible keyframes, mutable attribute changing) closed by
//!   `outside` at 3; a skeleton track 1 → 3 whose `hand` element goes outside at 2; and, with
//!   [`TaskBuilder::closed_track`], the closed segment of issue 11 (a sign rectangle
//!   `[0,0,10,10]` at 5, `outside` at 9 with `[40,40,50,50]`: frames 6–8 are 10/20/30).
//!
//! Tasks shorter than 10 frames keep the objects on frames they have.
//!
//! Format tests that need data of their own (a label table their expected output names, frames
//! of other names and sizes, hand-made annotations) build it from the same pieces: [`label()`],
//! [`spec`] and [`fixture_spec`] for labels, [`frame`] and [`dataset`] for a dataset, [`av`],
//! [`shape`], [`keyframe`], [`track`] and [`tag`] for annotations, [`TestImages`] for images;
//! and export, read and compare with [`export_zip`] / [`export_file`], [`zip_entry`] /
//! [`zip_text`] / [`zip_json`] / [`zip_entries`], [`normalised`] and [`with_source`]; inputs
//! are written with [`write_file`], [`write_zip`] and [`zip_bomb`].

use crate::annotations::Annotations;
use crate::annotations::{
    AttrSpec, AttributeVal, LabelIndex, LabelInfo, Shape, ShapeType, Tag, Track, TrackedShape,
};
use crate::formats::{
    DatasetFrame, ExportOptions, Exporter, FormatError, FrameSource, TaskDataset, ZipSink,
};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Label ids of the fixture.
pub mod label {
    /// `any`: color (select, immutable), speed (number, mutable), parked (checkbox, mutable),
    /// note (text, immutable), lights (radio, mutable).
    pub const CAR: i64 = 1;
    /// `any`: age (number, immutable), mood (select, mutable), plate (text, mutable),
    /// seen (checkbox, immutable), side (radio, immutable).
    pub const PERSON: i64 = 2;
    /// A skeleton of `HEAD`, `HAND`, `FOOT`.
    pub const BODY: i64 = 3;
    /// Sub-label with a checkbox attribute.
    pub const HEAD: i64 = 4;
    pub const HAND: i64 = 5;
    pub const FOOT: i64 = 6;
    /// A tag-only label (`type: tag`) with a radio attribute.
    pub const SCENE: i64 = 7;
    /// No attributes.
    pub const SIGN: i64 = 8;
    /// Declared, never used.
    pub const UNUSED: i64 = 9;
}

/// Attribute spec ids of the fixture.
pub mod attr {
    pub const COLOR: i64 = 10;
    pub const SPEED: i64 = 11;
    pub const PARKED: i64 = 12;
    pub const NOTE: i64 = 13;
    pub const LIGHTS: i64 = 14;
    pub const AGE: i64 = 20;
    pub const MOOD: i64 = 21;
    pub const PLATE: i64 = 22;
    pub const SEEN: i64 = 23;
    pub const SIDE: i64 = 24;
    pub const VISIBLE: i64 = 40;
    pub const WEATHER: i64 = 70;
}

/// The skeleton's SVG, as CVAT stores it (`data-label-id`).
pub const SKELETON_SVG: &str = r#"<line data-type="edge" data-node-from="1" data-node-to="2"></line><line data-type="edge" data-node-from="1" data-node-to="3"></line><circle r="1.5" cx="20" cy="20" data-type="element node" data-node-id="1" data-label-id="4"></circle><circle r="1.5" cx="10" cy="10" data-type="element node" data-node-id="2" data-label-id="5"></circle><circle r="1.5" cx="5" cy="30" data-type="element node" data-node-id="3" data-label-id="6"></circle>"#;

/// An attribute spec.
pub fn spec(
    name: &str,
    input_type: &str,
    values: &[&str],
    default: &str,
    mutable: bool,
) -> AttrSpec {
    AttrSpec {
        name: name.into(),
        input_type: input_type.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
        default_value: default.into(),
        mutable,
    }
}

/// A label.
pub fn label(
    id: i64,
    name: &str,
    kind: &str,
    parent: Option<i64>,
    attributes: Vec<(i64, AttrSpec)>,
) -> LabelInfo {
    LabelInfo {
        id,
        name: name.into(),
        kind: kind.into(),
        color: format!("#{:02x}{:02x}{:02x}", id * 30 % 256, 100, 255 - id * 20),
        svg: if kind == "skeleton" {
            SKELETON_SVG.into()
        } else {
            String::new()
        },
        parent,
        attributes,
    }
}

/// The fixture's labels (see [`label`] and [`attr`]): every attribute input type, mutable and
/// not, a skeleton with sub-labels, a tag-only label, a label without attributes, an unused one.
pub fn labels() -> Vec<LabelInfo> {
    use attr::*;
    use label::*;
    vec![
        label(
            CAR,
            "car",
            "any",
            None,
            vec![
                (
                    COLOR,
                    spec("color", "select", &["red", "blue"], "red", false),
                ),
                (
                    SPEED,
                    spec("speed", "number", &["0", "100", "1"], "0", true),
                ),
                (
                    PARKED,
                    spec("parked", "checkbox", &["false"], "false", true),
                ),
                (NOTE, spec("note", "text", &[""], "", false)),
                (LIGHTS, spec("lights", "radio", &["off", "on"], "off", true)),
            ],
        ),
        label(
            PERSON,
            "person",
            "any",
            None,
            vec![
                (AGE, spec("age", "number", &["0", "150", "1"], "30", false)),
                (
                    MOOD,
                    spec("mood", "select", &["calm", "busy"], "calm", true),
                ),
                (PLATE, spec("plate", "text", &[""], "", true)),
                (SEEN, spec("seen", "checkbox", &["true"], "true", false)),
                (
                    SIDE,
                    spec("side", "radio", &["left", "right"], "left", false),
                ),
            ],
        ),
        label(BODY, "body", "skeleton", None, vec![]),
        label(
            HEAD,
            "head",
            "points",
            Some(BODY),
            vec![(
                VISIBLE,
                spec("visible", "checkbox", &["true"], "true", true),
            )],
        ),
        label(HAND, "hand", "points", Some(BODY), vec![]),
        label(FOOT, "foot", "points", Some(BODY), vec![]),
        label(
            SCENE,
            "scene",
            "tag",
            None,
            vec![(
                WEATHER,
                spec("weather", "radio", &["sunny", "rainy"], "sunny", false),
            )],
        ),
        label(SIGN, "sign", "any", None, vec![]),
        label(UNUSED, "unused", "any", None, vec![]),
    ]
}

/// The fixture's [`labels`], indexed (what a task of [`TaskBuilder`] has).
pub fn label_index() -> LabelIndex {
    LabelIndex::from_labels(labels())
}

/// The spec of the fixture's attribute `id` (see [`attr`]), for a test's own label table.
pub fn fixture_spec(id: i64) -> AttrSpec {
    labels()
        .into_iter()
        .flat_map(|l| l.attributes)
        .find(|a| a.0 == id)
        .unwrap_or_else(|| panic!("no attribute {id} in the fixture"))
        .1
}

/// An attribute value.
pub fn av(spec_id: i64, value: &str) -> AttributeVal {
    AttributeVal {
        spec_id,
        value: value.into(),
    }
}

/// A frame: task-relative `rel`, source frame `abs`, its name and size.
pub fn frame(rel: u64, abs: u64, name: &str, width: u32, height: u32) -> DatasetFrame {
    DatasetFrame {
        rel,
        abs,
        name: name.into(),
        width,
        height,
    }
}

/// A plain shape with defaults (source `manual`, nothing set).
pub fn shape(kind: ShapeType, frame: u64, label_id: i64, points: &[f64]) -> Shape {
    Shape {
        id: None,
        kind,
        frame,
        label_id,
        group: 0,
        source: "manual".into(),
        occluded: false,
        outside: false,
        z_order: 0,
        rotation: 0.0,
        points: points.to_vec(),
        attributes: vec![],
        elements: vec![],
        score: None,
    }
}

/// A track keyframe.
pub fn keyframe(kind: ShapeType, frame: u64, outside: bool, points: &[f64]) -> TrackedShape {
    TrackedShape {
        id: None,
        kind,
        frame,
        occluded: false,
        outside,
        z_order: 0,
        rotation: 0.0,
        points: points.to_vec(),
        attributes: vec![],
    }
}

/// A track of `shapes` (its frame is the first keyframe's).
pub fn track(label_id: i64, shapes: Vec<TrackedShape>) -> Track {
    Track {
        id: None,
        frame: shapes.first().map_or(0, |s| s.frame),
        label_id,
        group: 0,
        source: "manual".into(),
        attributes: vec![],
        shapes,
        elements: vec![],
    }
}

/// A tag.
pub fn tag(frame: u64, label_id: i64, attributes: Vec<AttributeVal>) -> Tag {
    Tag {
        id: None,
        frame,
        label_id,
        group: 0,
        source: "manual".into(),
        attributes,
    }
}

/// A tight CVAT mask (`rle…, left, top, right, bottom`) of a `w`×`h` box at (`x`, `y`): a ring
/// (so its first and last rows and columns have pixels, and an import that tightens the box
/// keeps it) with a checkered inside.
pub fn mask(x: u32, y: u32, w: u32, h: u32) -> Vec<f64> {
    let bits = (0..h).flat_map(|r| {
        (0..w).map(move |c| r == 0 || c == 0 || r == h - 1 || c == w - 1 || (r + c) % 2 == 0)
    });
    let (mut rle, mut cur, mut n) = (Vec::new(), false, 0u32);
    for b in bits {
        if b == cur {
            n += 1;
        } else {
            rle.push(n as f64);
            cur = b;
            n = 1;
        }
    }
    rle.push(n as f64);
    rle.extend([x as f64, y as f64, (x + w - 1) as f64, (y + h - 1) as f64]);
    rle
}

/// What to put in a task; see [`TaskBuilder`].
#[derive(Debug, Clone)]
pub struct TaskBuilder {
    video: bool,
    frames: u64,
    start: u64,
    step: u64,
    segment_size: Option<u64>,
    shapes: bool,
    tags: bool,
    tracks: bool,
    closed_track: bool,
}

impl TaskBuilder {
    /// An image task of `frames` frames (names with and without folders, two sizes), no
    /// annotations, one segment.
    pub fn images(frames: u64) -> TaskBuilder {
        TaskBuilder {
            video: false,
            frames,
            start: 0,
            step: 1,
            segment_size: None,
            shapes: false,
            tags: false,
            tracks: false,
            closed_track: false,
        }
    }

    /// A video task of `frames` frames (`frame_{abs:06}.PNG`, 40×30), from source frame 0, step 1.
    pub fn video(frames: u64) -> TaskBuilder {
        TaskBuilder {
            video: true,
            ..TaskBuilder::images(frames)
        }
    }

    /// Task frame `rel` is source frame `start + rel * step` (`abs != rel`).
    pub fn frame_step(mut self, start: u64, step: u64) -> Self {
        self.start = start;
        self.step = step;
        self
    }

    /// Segments (jobs 1, 2, …) of `n` frames.
    pub fn segment_size(mut self, n: u64) -> Self {
        self.segment_size = Some(n);
        self
    }

    /// Plain shapes of every type (groups, z-order, rotation, attributes, empty frames).
    pub fn shapes(mut self) -> Self {
        self.shapes = true;
        self
    }

    /// Tags.
    pub fn tags(mut self) -> Self {
        self.tags = true;
        self
    }

    /// Tracks with keyframes and `outside`, the closed segment included.
    pub fn tracks(mut self) -> Self {
        self.tracks = true;
        self
    }

    /// The closed segment of issue 11: a sign rectangle visible at 5 and `outside` at 9 (no
    /// keyframe between, so frames 6–8 are interpolated; not part of [`everything`]).
    ///
    /// [`everything`]: TaskBuilder::everything
    pub fn closed_track(mut self) -> Self {
        self.closed_track = true;
        self
    }

    /// Shapes, tags and tracks (not the closed track).
    pub fn everything(self) -> Self {
        self.shapes().tags().tracks()
    }

    pub fn build(self) -> Task {
        let frames = (0..self.frames)
            .map(|rel| {
                let abs = self.start + rel * self.step;
                if self.video {
                    frame(rel, abs, &format!("frame_{abs:06}.PNG"), 40, 30)
                } else {
                    let (width, height) = if rel % 2 == 0 { (40, 30) } else { (32, 24) };
                    let name = match rel % 3 {
                        1 => format!("sub/img_{rel:02}.png"),
                        2 => format!("img_{rel:02}.jpeg"),
                        _ => format!("img_{rel:02}.jpg"),
                    };
                    frame(rel, abs, &name, width, height)
                }
            })
            .collect::<Vec<_>>();
        let n = self.frames.max(1);
        let seg = self.segment_size.unwrap_or(n).max(1);
        let segments = (0..n.div_ceil(seg))
            .map(|i| (i as i64 + 1, i * seg, ((i + 1) * seg).min(n) - 1))
            .collect();
        let mut a = Annotations::default();
        if self.shapes {
            a.shapes = fixture_shapes();
        }
        if self.tags {
            a.tags = fixture_tags();
        }
        if self.tracks {
            a.tracks = fixture_tracks();
        }
        if self.closed_track {
            a.tracks.push(closed_track());
        }
        let last = self.frames.saturating_sub(1);
        a.shapes.retain(|s| s.frame <= last);
        a.tags.retain(|t| t.frame <= last);
        a.tracks
            .retain(|t| t.shapes.iter().all(|s| s.frame <= last));
        Task {
            task_id: 7,
            name: "conformance & co".into(),
            video: self.video,
            labels: label_index(),
            frames,
            segments,
            annotations: a,
            original_size: self.video.then_some((40, 30)),
        }
    }
}

fn fixture_shapes() -> Vec<Shape> {
    use attr::*;
    use label::*;
    use ShapeType::*;
    let mut car = shape(Rectangle, 0, CAR, &[1.0, 2.0, 13.5, 14.25]);
    car.z_order = 1;
    car.group = 1;
    car.attributes = vec![
        av(COLOR, "blue"),
        av(SPEED, "42"),
        av(PARKED, "true"),
        av(NOTE, "a \"quoted\" <note> & more"),
        av(LIGHTS, "on"),
    ];
    let mut poly = shape(Polygon, 0, CAR, &[0.0, 0.0, 5.0, 0.0, 5.0, 5.0]);
    poly.occluded = true;
    poly.group = 1;
    poly.attributes = vec![av(COLOR, "red"), av(SPEED, "7")];
    let mut person = shape(Rectangle, 0, PERSON, &[2.0, 2.0, 12.0, 22.5]);
    person.rotation = 30.0;
    person.z_order = 2;
    person.attributes = vec![
        av(AGE, "40"),
        av(MOOD, "busy"),
        av(PLATE, "AB-12"),
        av(SEEN, "false"),
        av(SIDE, "right"),
    ];
    let mut ellipse = shape(Ellipse, 1, CAR, &[10.0, 8.0, 14.0, 5.0]);
    ellipse.rotation = 10.0;
    let cuboid: Vec<f64> = (0..16).map(|i| i as f64 + 0.5).collect();
    let mut skel = shape(Skeleton, 1, BODY, &[]);
    skel.z_order = 3;
    let mut head = shape(Points, 1, HEAD, &[2.0, 2.0]);
    head.occluded = true;
    head.attributes = vec![av(VISIBLE, "false")];
    let hand = shape(Points, 1, HAND, &[1.0, 1.0]);
    let mut foot = shape(Points, 1, FOOT, &[3.0, 3.0]);
    foot.outside = true;
    skel.elements = vec![head, hand, foot];
    let mut sign = shape(Rectangle, 2, SIGN, &[0.0, 0.0, 1.0, 1.0]);
    sign.z_order = -1;
    sign.source = "auto".into();
    let mut car7 = shape(Rectangle, 7, CAR, &[3.0, 3.0, 9.0, 9.0]);
    car7.group = 2;
    let mut person7 = shape(Ellipse, 7, PERSON, &[6.0, 6.0, 9.0, 8.0]);
    person7.group = 2;
    vec![
        car,
        poly,
        person,
        shape(Polyline, 1, CAR, &[1.0, 1.0, 2.0, 2.0, 3.0, 1.0]),
        shape(Points, 1, CAR, &[3.0, 3.0, 4.5, 4.5]),
        ellipse,
        shape(Cuboid, 1, CAR, &cuboid),
        shape(Mask, 1, CAR, &mask(2, 3, 5, 4)),
        skel,
        sign,
        shape(
            Polygon,
            5,
            PERSON,
            &[1.0, 1.0, 8.0, 1.0, 8.0, 6.0, 1.0, 6.0],
        ),
        shape(Points, 5, SIGN, &[4.0, 4.0]),
        shape(Mask, 7, SIGN, &mask(10, 4, 3, 5)),
        car7,
        person7,
    ]
}

fn fixture_tags() -> Vec<Tag> {
    use attr::*;
    use label::*;
    let mut car = tag(0, CAR, vec![av(COLOR, "blue"), av(NOTE, "tagged")]);
    car.group = 1;
    vec![
        tag(0, SCENE, vec![av(WEATHER, "rainy")]),
        car,
        tag(3, SIGN, vec![]),
        tag(8, SCENE, vec![]),
    ]
}

fn fixture_tracks() -> Vec<Track> {
    use attr::*;
    use label::*;
    use ShapeType::*;
    let mut car = track(
        CAR,
        vec![
            keyframe(Rectangle, 0, false, &[0.0, 0.0, 10.0, 10.0]),
            keyframe(Rectangle, 2, false, &[2.0, 2.0, 12.0, 12.0]),
            keyframe(Rectangle, 3, true, &[2.0, 2.0, 12.0, 12.0]),
        ],
    );
    car.attributes = vec![av(COLOR, "red")];
    car.shapes[0].attributes = vec![av(SPEED, "1")];
    car.shapes[1].attributes = vec![av(SPEED, "3")];
    car.shapes[1].z_order = 1;
    let mut body = track(BODY, vec![keyframe(Skeleton, 1, false, &[])]);
    body.shapes.push(keyframe(Skeleton, 3, false, &[]));
    let mut head = track(HEAD, vec![keyframe(Points, 1, false, &[1.0, 1.0])]);
    head.shapes.push(keyframe(Points, 3, false, &[3.0, 3.0]));
    let hand = track(
        HAND,
        vec![
            keyframe(Points, 1, false, &[2.0, 2.0]),
            keyframe(Points, 2, true, &[2.0, 2.0]),
        ],
    );
    let foot = track(FOOT, vec![keyframe(Points, 1, false, &[4.0, 4.0])]);
    body.elements = vec![head, hand, foot];
    vec![car, body]
}

/// Issue 11's Datumaro repro, moved to frame 5: visible at 5, closed by `outside` at 9.
fn closed_track() -> Track {
    use ShapeType::Rectangle;
    track(
        label::SIGN,
        vec![
            keyframe(Rectangle, 5, false, &[0.0, 0.0, 10.0, 10.0]),
            keyframe(Rectangle, 9, true, &[40.0, 40.0, 50.0, 50.0]),
        ],
    )
}

/// A dataset of `frames` with `labels` and `a`, for a test that makes its own: task 7
/// (`conformance & co`) in annotation mode, one segment (job 1) over all frames, created
/// `2026-12-01T10:20:30.123456Z`, updated `2026-12-02T11:00:00Z`, owner `admin`, no original
/// size (set what a test needs with `TaskDataset { …, ..dataset(…) }`).
pub fn dataset<'a>(
    labels: &'a LabelIndex,
    a: &'a Annotations,
    frames: Vec<DatasetFrame>,
) -> TaskDataset<'a> {
    TaskDataset {
        task_id: 7,
        name: "conformance & co".into(),
        mode: "annotation".into(),
        size: frames.len() as u64,
        overlap: 0,
        bug_tracker: String::new(),
        subset: String::new(),
        created: "2026-12-01T10:20:30.123456Z".into(),
        updated: "2026-12-02T11:00:00Z".into(),
        owner: Some("admin".into()),
        original_size: None,
        segments: vec![(1, 0, (frames.len() as u64).saturating_sub(1))],
        labels,
        frames,
        annotations: a,
    }
}

/// A task built by [`TaskBuilder`]: it owns what a [`TaskDataset`] borrows.
#[derive(Debug, Clone)]
pub struct Task {
    pub task_id: i64,
    pub name: String,
    pub video: bool,
    pub labels: LabelIndex,
    pub frames: Vec<DatasetFrame>,
    /// `(job id, start, stop)`, task-relative.
    pub segments: Vec<(i64, u64, u64)>,
    pub annotations: Annotations,
    pub original_size: Option<(u32, u32)>,
}

impl Task {
    /// The whole task.
    pub fn dataset(&self) -> TaskDataset<'_> {
        self.dataset_with(&self.labels, &self.annotations)
    }

    /// The task with other labels or annotations (e.g. an import's target without a label).
    pub fn dataset_with<'a>(
        &'a self,
        labels: &'a LabelIndex,
        a: &'a Annotations,
    ) -> TaskDataset<'a> {
        TaskDataset {
            task_id: self.task_id,
            name: self.name.clone(),
            mode: if self.video {
                "interpolation"
            } else {
                "annotation"
            }
            .into(),
            original_size: self.original_size,
            segments: self.segments.clone(),
            ..dataset(labels, a, self.frames.clone())
        }
    }

    /// Job `id` (a segment): its frames, and the annotations on them (tracks whose keyframes
    /// all are in it). Panics on an unknown job.
    pub fn job(&self, id: i64) -> Job {
        let &(_, start, stop) = self
            .segments
            .iter()
            .find(|s| s.0 == id)
            .expect("a job of the task");
        let inside = |f: u64| (start..=stop).contains(&f);
        let a = &self.annotations;
        Job {
            segment: (id, start, stop),
            frames: self
                .frames
                .iter()
                .filter(|f| inside(f.rel))
                .cloned()
                .collect(),
            annotations: Annotations {
                tags: a.tags.iter().filter(|t| inside(t.frame)).cloned().collect(),
                shapes: a
                    .shapes
                    .iter()
                    .filter(|s| inside(s.frame))
                    .cloned()
                    .collect(),
                tracks: a
                    .tracks
                    .iter()
                    .filter(|t| t.shapes.iter().all(|s| inside(s.frame)))
                    .cloned()
                    .collect(),
                ..Annotations::default()
            },
        }
    }
}

/// A job of a [`Task`]: what a job export or import sees.
#[derive(Debug, Clone)]
pub struct Job {
    pub segment: (i64, u64, u64),
    pub frames: Vec<DatasetFrame>,
    pub annotations: Annotations,
}

impl Job {
    /// The job as the server builds its dataset: the job's frames, annotations and segment.
    pub fn dataset<'a>(&'a self, task: &'a Task) -> TaskDataset<'a> {
        TaskDataset {
            size: self.frames.len() as u64,
            segments: vec![self.segment],
            frames: self.frames.clone(),
            annotations: &self.annotations,
            ..task.dataset()
        }
    }
}

/// Small real images for exports with `save_images`: a PNG for image frames named `.png`, a
/// JPEG otherwise (video frames: `ext`), of the frame's size.
pub struct TestImages {
    /// `(rel, width, height, ext)` per frame.
    pub frames: Vec<(u64, u32, u32, String)>,
}

impl TestImages {
    /// Images of `ds`'s frames, by their extension (`.png` → PNG, else JPEG).
    pub fn of(ds: &TaskDataset<'_>) -> TestImages {
        TestImages {
            frames: ds
                .frames
                .iter()
                .map(|f| {
                    let ext = if f.name.to_ascii_lowercase().ends_with(".png") {
                        "png"
                    } else {
                        "jpg"
                    };
                    (f.rel, f.width, f.height, ext.to_owned())
                })
                .collect(),
        }
    }
}

impl TestImages {
    /// Images of `ds`'s frames, all encoded as `ext` whatever the frame's name (as a video's
    /// frames are, by the extension the source gives them).
    pub fn all(ds: &TaskDataset<'_>, ext: &str) -> TestImages {
        TestImages {
            frames: ds
                .frames
                .iter()
                .map(|f| (f.rel, f.width, f.height, ext.to_owned()))
                .collect(),
        }
    }

    /// The bytes [`FrameSource::image`] gives for frame `rel` (panics on an unknown frame).
    pub fn bytes(&self, rel: u64) -> Vec<u8> {
        self.image(rel).expect("a frame of the images").0
    }
}

/// An image of `w`×`h` encoded as `ext` (`png`, any case, or else JPEG).
pub fn image_bytes(w: u32, h: u32, ext: &str, seed: u64) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 + seed as u32) as u8,
            (y * 5) as u8,
            (seed * 40) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    let fmt = if ext.eq_ignore_ascii_case("png") {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::Jpeg
    };
    img.write_to(&mut out, fmt).expect("encoding a test image");
    out.into_inner()
}

impl FrameSource for TestImages {
    fn image(&self, rel: u64) -> Result<(Vec<u8>, String), FormatError> {
        let (_, w, h, ext) =
            self.frames
                .iter()
                .find(|f| f.0 == rel)
                .ok_or_else(|| FormatError::Frame {
                    frame: rel,
                    reason: "no test image".into(),
                })?;
        Ok((image_bytes(*w, *h, ext, rel), ext.clone()))
    }
}

/// Exports `ds` with `fmt` into a new zip at `path`, saving images when `images` is given.
pub fn export_file(
    fmt: &dyn Exporter,
    ds: &TaskDataset<'_>,
    images: Option<&dyn FrameSource>,
    path: &Path,
) -> Result<(), FormatError> {
    let mut zip = ZipSink::new(std::fs::File::create(path).unwrap());
    let opts = ExportOptions {
        save_images: images.is_some(),
    };
    fmt.export(ds, &opts, images, &mut zip, &|_| {})?;
    zip.finish()?;
    Ok(())
}

/// Exports `ds` with `fmt` (see [`export_file`]) into `export.zip` of a new temporary folder,
/// which is removed when the returned guard drops; panics when the export fails.
pub fn export_zip(
    fmt: &dyn Exporter,
    ds: &TaskDataset<'_>,
    images: Option<&dyn FrameSource>,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.zip");
    export_file(fmt, ds, images, &path).unwrap_or_else(|e| panic!("export failed: {e}"));
    (dir, path)
}

/// The zip's entries: `(name, bytes)`.
pub fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    zip_entries_of(std::fs::File::open(path).unwrap())
}

/// The entries of the zip read from `r` (a file, or bytes in a `Cursor`): `(name, bytes)`.
pub fn zip_entries_of(r: impl std::io::Read + std::io::Seek) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(r).unwrap();
    (0..z.len())
        .map(|i| {
            let mut e = z.by_index(i).unwrap();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (e.name().to_owned(), b)
        })
        .collect()
}

/// The bytes of the zip's entry `name` (panics when it has none).
pub fn zip_entry(path: &Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    z.by_name(name)
        .unwrap_or_else(|e| panic!("{}: no entry {name}: {e}", path.display()))
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The zip's entry `name` as UTF-8 text.
pub fn zip_text(path: &Path, name: &str) -> String {
    String::from_utf8(zip_entry(path, name)).expect("a UTF-8 entry")
}

/// The zip's entry `name` parsed as JSON.
pub fn zip_json(path: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&zip_entry(path, name))
        .unwrap_or_else(|e| panic!("{}: entry {name} is not JSON: {e}", path.display()))
}

/// A zip bomb in `dir/name`: one entry `entry` of `head`, `mib` MiB of the byte `fill` and
/// `tail`, which deflates to about a thousandth of that.
pub fn zip_bomb(
    dir: &Path,
    name: &str,
    entry: &str,
    head: &[u8],
    fill: u8,
    mib: usize,
    tail: &[u8],
) -> PathBuf {
    let p = dir.join(name);
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    z.start_file(entry, zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(head).unwrap();
    let block = vec![fill; 1 << 20];
    for _ in 0..mib {
        z.write_all(&block).unwrap();
    }
    z.write_all(tail).unwrap();
    z.finish().unwrap();
    p
}

/// A zip of `files` in `dir`.
pub fn write_zip(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let p = dir.join(name);
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    for (n, b) in files {
        z.start_file(*n, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b).unwrap();
    }
    z.finish().unwrap();
    p
}

/// Writes `bytes` to `dir/name` (creating the folders `name` has); returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The shared test data (`../shared/testdata` beside the repository, or
/// `FRAMESERVER_SHARED_TESTDATA`); panics when it is not there.
pub fn shared_testdata() -> PathBuf {
    let p = std::env::var_os("FRAMESERVER_SHARED_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    assert!(p.is_dir(), "shared test data not found at {}", p.display());
    p
}

/// Annotations in a comparable form: as JSON, every `id` dropped (objects, elements,
/// keyframes), tags, shapes and tracks each sorted (by their JSON text); the rest as it is.
pub fn normalised(a: &Annotations) -> serde_json::Value {
    fn drop_ids(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("id");
                m.values_mut().for_each(drop_ids);
            }
            serde_json::Value::Array(xs) => xs.iter_mut().for_each(drop_ids),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(a).unwrap();
    drop_ids(&mut v);
    for k in ["tags", "shapes", "tracks"] {
        if let Some(xs) = v[k].as_array_mut() {
            xs.sort_by_key(|x| x.to_string());
        }
    }
    v
}

/// `a` with the source of every tag, shape and track (their elements too) set to `source`:
/// what an import (source `file`) gives back.
pub fn with_source(a: &Annotations, source: &str) -> Annotations {
    fn track(t: &mut Track, source: &str) {
        t.source = source.into();
        t.elements.iter_mut().for_each(|e| track(e, source));
    }
    let mut a = a.clone();
    for t in &mut a.tags {
        t.source = source.into();
    }
    for s in &mut a.shapes {
        s.source = source.into();
        for e in &mut s.elements {
            e.source = source.into();
        }
    }
    a.tracks.iter_mut().for_each(|t| track(t, source));
    a
}

/// The synthetic task of `benches/compare-formats.sh` and `benches/formats.rs`: 2,000 image
/// frames (64×48), 30,000 shapes (10 boxes + 5 polygons of 4–6 points per frame, coordinates of
/// 2 decimals, every other shape a car with a select attribute), seeded so every run gets the
/// same task.
pub fn bench_task() -> Task {
    use rand::{Rng, SeedableRng};
    const FRAMES: u64 = 2000;
    const COLORS: [&str; 4] = ["red", "green", "blue", "white"];
    let labels = LabelIndex::from_labels(vec![
        LabelInfo {
            color: "#ff0000".into(),
            ..label(
                1,
                "car",
                "any",
                None,
                vec![(10, spec("color", "select", &COLORS, "red", false))],
            )
        },
        LabelInfo {
            color: "#ff0000".into(),
            ..label(2, "person", "any", None, vec![])
        },
    ]);
    let mut rnd = rand::rngs::StdRng::seed_from_u64(5);
    let mut a = Annotations::default();
    let mut k = 0;
    for frame in 0..FRAMES {
        for i in 0..15 {
            let car = k % 2 == 0;
            k += 1;
            let r2 = |v: f64| (v * 100.0).round() / 100.0;
            let points = if i < 10 {
                let (x, y) = (rnd.random_range(0.0..52.0), rnd.random_range(0.0..38.0));
                vec![
                    r2(x),
                    r2(y),
                    r2(x + rnd.random_range(2.0..11.0)),
                    r2(y + rnd.random_range(2.0..9.0)),
                ]
            } else {
                (0..rnd.random_range(4..=6))
                    .flat_map(|_| {
                        [
                            r2(rnd.random_range(0.0..63.0)),
                            r2(rnd.random_range(0.0..47.0)),
                        ]
                    })
                    .collect()
            };
            let kind = if i < 10 {
                ShapeType::Rectangle
            } else {
                ShapeType::Polygon
            };
            let mut s = shape(kind, frame, if car { 1 } else { 2 }, &[]);
            s.id = Some(k);
            s.occluded = i % 7 == 0;
            s.z_order = i % 3;
            s.points = points;
            if car {
                s.attributes = vec![av(10, COLORS[rnd.random_range(0..4)])];
            }
            a.shapes.push(s);
        }
    }
    Task {
        task_id: 1,
        name: "formats bench".into(),
        video: false,
        labels,
        frames: (0..FRAMES)
            .map(|i| frame(i, i, &format!("formats-2000/img_{i:05}.png"), 64, 48))
            .collect(),
        segments: vec![(1, 0, FRAMES - 1)],
        annotations: a,
        original_size: None,
    }
}
