//! The CVAT XML export: `<meta>`, then images with their shapes and tags ("CVAT for images")
//! or tracks ("CVAT for video").

use std::fmt::Write as _;
use std::io::{self, Write};

use quick_xml::events::{BytesStart, Event};

use crate::annotations::interpolate::{interpolate, FrameShape};
use crate::annotations::{AttributeVal, LabelIndex, LabelInfo, ShapeType};
use crate::formats::{DeflatedEntry, FormatError, FrameAnnotations, TaskDataset};

use super::import::*;
use super::xml::*;
use crate::formats::kit::dataset::ShapeView;
use crate::formats::kit::paths::split_ext;

// ------------------------------------------------------------------------------------------------
// Frames

/// The task's frames by task-relative number (jobs hold a slice of them).
struct Frames<'d> {
    ds: &'d TaskDataset<'d>,
    step: u64,
    video: bool,
}

impl<'d> Frames<'d> {
    fn new(ds: &'d TaskDataset<'d>) -> Self {
        let step = match ds.frames.as_slice() {
            [a, b, ..] if b.rel > a.rel && b.abs > a.abs => (b.abs - a.abs) / (b.rel - a.rel),
            _ => 1,
        }
        .max(1);
        Frames {
            ds,
            step,
            video: ds.original_size.is_some() || ds.mode == "interpolation",
        }
    }

    /// Absolute frame of task frame `rel`.
    fn abs(&self, rel: u64) -> u64 {
        match self.ds.frame_index(rel) {
            Some(i) => self.ds.frames[i].abs,
            None => {
                let first = self.ds.frames.first().map_or((0, 0), |f| (f.rel, f.abs));
                (first.1 + rel * self.step).saturating_sub(first.0 * self.step)
            }
        }
    }

    fn start_abs(&self) -> u64 {
        self.ds.frames.first().map_or(0, |f| f.abs)
    }

    fn stop_abs(&self) -> u64 {
        self.ds.frames.last().map_or(0, |f| f.abs)
    }

    fn last_rel(&self) -> Option<u64> {
        self.ds.frames.last().map(|f| f.rel)
    }
}

/// Python's `str(datetime)` of an aware UTC time: `2020-04-23 08:57:24.614217+00:00`.
fn py_datetime(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    if t.nanosecond() / 1000 == 0 {
        t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    }
}

/// A stored timestamp (RFC 3339) the way CVAT prints it; anything else as is.
pub(super) fn py_timestamp(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => py_datetime(t.with_timezone(&chrono::Utc)),
        Err(_) => s.to_owned(),
    }
}

fn label_name(labels: &LabelIndex, id: i64) -> &str {
    labels.get(id).map_or("", |l| l.name.as_str())
}

/// An attribute's name: in its label, else in any label (CVAT looks it up globally).
fn attr_name(labels: &LabelIndex, label_id: i64, spec_id: i64) -> Option<&str> {
    fn spec(l: &LabelInfo, spec_id: i64) -> Option<&str> {
        l.attributes
            .iter()
            .find(|(id, _)| *id == spec_id)
            .map(|(_, s)| s.name.as_str())
    }
    labels
        .get(label_id)
        .and_then(|l| spec(l, spec_id))
        .or_else(|| labels.labels.iter().find_map(|l| spec(l, spec_id)))
}

pub(super) fn shape_tag(kind: ShapeType) -> &'static str {
    match kind {
        ShapeType::Rectangle => "box",
        k => k.as_str(),
    }
}

/// The geometry attributes of a shape, in CVAT's order.
fn write_geometry<W: Write>(x: &mut Xml<W>, v: &ShapeView<'_>) {
    let p = v.points;
    let g = |i: usize| p.get(i).copied().unwrap_or(0.0);
    match v.kind {
        ShapeType::Rectangle => {
            x.attr_f2("xtl", g(0));
            x.attr_f2("ytl", g(1));
            x.attr_f2("xbr", g(2));
            x.attr_f2("ybr", g(3));
            if v.rotation != 0.0 {
                x.attr_f2("rotation", v.rotation);
            }
        }
        ShapeType::Ellipse => {
            x.attr_f2("cx", g(0));
            x.attr_f2("cy", g(1));
            x.attr_f2("rx", g(2) - g(0));
            x.attr_f2("ry", g(1) - g(3));
            if v.rotation != 0.0 {
                x.attr_f2("rotation", v.rotation);
            }
        }
        ShapeType::Cuboid => {
            for (i, k) in CUBOID.iter().enumerate() {
                x.attr_f2(k.name(), g(i));
            }
        }
        ShapeType::Mask => {
            let n = p.len().saturating_sub(4);
            let _ = write!(x.el, " rle=\"");
            for (i, c) in p[..n].iter().enumerate() {
                if i > 0 {
                    x.el.push_str(", ");
                }
                let _ = write!(x.el, "{}", *c as i64);
            }
            x.el.push('"');
            let (l, t, r, b) = (g(n), g(n + 1), g(n + 2), g(n + 3));
            x.attr_num("left", l as i64);
            x.attr_num("top", t as i64);
            x.attr_num("width", (r - l) as i64 + 1);
            x.attr_num("height", (b - t) as i64 + 1);
        }
        ShapeType::Skeleton => {}
        ShapeType::Polygon | ShapeType::Polyline | ShapeType::Points => x.attr_points("points", p),
    }
}

fn write_attributes<W: Write>(
    x: &mut Xml<W>,
    labels: &LabelIndex,
    label_id: i64,
    attrs: &[AttributeVal],
) -> io::Result<()> {
    for a in attrs {
        if let Some(name) = attr_name(labels, label_id, a.spec_id) {
            x.begin("attribute");
            x.attr("name", name);
            x.leaf_built(&a.value)?;
        }
    }
    Ok(())
}

/// One shape of `<image>` (`dump_labeled_shapes`); skeleton elements have `outside` and no
/// `z_order`.
fn write_image_shape<W: Write>(
    x: &mut Xml<W>,
    labels: &LabelIndex,
    v: &ShapeView<'_>,
    is_element: bool,
) -> io::Result<()> {
    let tag = shape_tag(v.kind);
    x.begin(tag);
    x.attr("label", label_name(labels, v.label_id));
    x.attr("source", v.source);
    if is_element {
        x.attr_bool("outside", v.outside);
    }
    if v.kind != ShapeType::Skeleton {
        x.attr_bool("occluded", v.occluded);
    }
    write_geometry(x, v);
    if !is_element {
        x.attr_num("z_order", v.z_order);
    }
    if v.group != 0 {
        x.attr_num("group_id", v.group);
    }
    x.open()?;
    if v.kind == ShapeType::Skeleton {
        for e in &v.elements {
            write_image_shape(x, labels, e, true)?;
        }
    }
    write_attributes(x, labels, v.label_id, v.attributes)?;
    x.close(tag)
}

/// One shape of a `<track>` (`dump_shape`): `frame` on shapes, `label` on skeleton elements; a
/// skeleton without element shapes on its frame is not written at all.
fn write_track_shape<W: Write>(
    x: &mut Xml<W>,
    labels: &LabelIndex,
    frame: Option<u64>,
    v: &ShapeView<'_>,
) -> io::Result<()> {
    if v.kind == ShapeType::Skeleton && v.elements.is_empty() {
        return Ok(());
    }
    let tag = shape_tag(v.kind);
    x.begin(tag);
    match frame {
        Some(f) => x.attr_num("frame", f),
        None => x.attr("label", label_name(labels, v.label_id)),
    }
    x.attr_bool("keyframe", v.keyframe);
    if v.kind != ShapeType::Skeleton {
        x.attr_bool("outside", v.outside);
        x.attr_bool("occluded", v.occluded);
    }
    write_geometry(x, v);
    if frame.is_some() {
        x.attr_num("z_order", v.z_order);
    }
    x.open()?;
    for e in &v.elements {
        write_track_shape(x, labels, None, e)?;
    }
    write_attributes(x, labels, v.label_id, v.attributes)?;
    x.close(tag)
}

fn write_meta<W: Write>(x: &mut Xml<W>, ds: &TaskDataset<'_>, fr: &Frames<'_>) -> io::Result<()> {
    x.open_plain("meta")?;
    x.open_plain("task")?;
    x.leaf("id", &ds.task_id.to_string())?;
    x.leaf("name", &ds.name)?;
    x.leaf("size", &ds.size.to_string())?;
    x.leaf("mode", &ds.mode)?;
    x.leaf("overlap", &ds.overlap.to_string())?;
    x.leaf("bugtracker", &ds.bug_tracker)?;
    x.leaf("created", &py_timestamp(&ds.created))?;
    x.leaf("updated", &py_timestamp(&ds.updated))?;
    x.leaf(
        "subset",
        if ds.subset.is_empty() {
            "default"
        } else {
            &ds.subset
        },
    )?;
    x.leaf("start_frame", &fr.start_abs().to_string())?;
    x.leaf("stop_frame", &fr.stop_abs().to_string())?;
    let filter = if fr.step > 1 {
        format!("step={}", fr.step)
    } else {
        String::new()
    };
    x.leaf("frame_filter", &filter)?;
    x.open_plain("segments")?;
    for (id, start, stop) in &ds.segments {
        x.open_plain("segment")?;
        x.leaf("id", &id.to_string())?;
        x.leaf("start", &start.to_string())?;
        x.leaf("stop", &stop.to_string())?;
        x.leaf("url", &format!("/api/jobs/{id}"))?;
        x.close("segment")?;
    }
    x.close("segments")?;
    match &ds.owner {
        Some(user) => {
            x.open_plain("owner")?;
            x.leaf("username", user)?;
            x.leaf("email", "")?;
            x.close("owner")?;
        }
        None => x.leaf("owner", "")?,
    }
    x.leaf("assignee", "")?;
    x.open_plain("labels")?;
    let mut labels: Vec<&LabelInfo> = ds.labels.labels.iter().collect();
    labels.sort_by_key(|l| l.id);
    for l in labels {
        x.open_plain("label")?;
        x.leaf("name", &l.name)?;
        x.leaf("color", &l.color)?;
        x.leaf("type", &l.kind)?;
        x.open_plain("attributes")?;
        for (_, a) in &l.attributes {
            x.open_plain("attribute")?;
            x.leaf("name", &a.name)?;
            x.leaf("mutable", if a.mutable { "True" } else { "False" })?;
            x.leaf("input_type", &a.input_type)?;
            x.leaf("default_value", &a.default_value)?;
            x.leaf("values", &a.values.join("\n"))?;
            x.close("attribute")?;
        }
        x.close("attributes")?;
        if let Some(p) = l.parent {
            x.leaf("parent", label_name(ds.labels, p))?;
        }
        if l.kind == "skeleton" {
            let mut svg = l.svg.clone();
            for sub in ds.labels.children(l.id) {
                svg = svg.replace(
                    &format!("data-label-id=\"{}\"", sub.id),
                    &format!("data-label-name=\"{}\"", sub.name),
                );
            }
            x.leaf("svg", &svg)?;
        }
        x.close("label")?;
    }
    x.close("labels")?;
    if let Some((w, h)) = ds.original_size {
        x.open_plain("original_size")?;
        x.leaf("width", &w.to_string())?;
        x.leaf("height", &h.to_string())?;
        x.close("original_size")?;
    }
    x.close("task")?;
    x.leaf("dumped", &py_datetime(chrono::Utc::now()))?;
    x.close("meta")
}

fn write_images_body(
    x: &mut Xml<&mut DeflatedEntry>,
    ds: &TaskDataset<'_>,
    fr: &Frames<'_>,
    progress: &dyn Fn(f64),
) -> io::Result<()> {
    // Not outside, and a skeleton not with all its elements outside.
    let by_frame = FrameAnnotations::new(ds, FrameShape::keep_in_frame_export);
    // Each image is rendered by its own `Xml` at the same indentation level, so the bytes are
    // those of a serial writer.
    let n = ds.frames.len();
    let level = x.level;
    let out: &mut DeflatedEntry = x.w.get_mut();
    out.write_items(
        n,
        |i, buf| {
            let mut img = Xml::new(std::mem::take(buf));
            img.level = level;
            let r = write_image(&mut img, ds, fr, &by_frame, i);
            *buf = img.w.into_inner();
            r
        },
        |done| progress(done as f64 / n.max(1) as f64),
    )?;
    Ok(())
}

/// The `<image>` element of dataset frame `i`, with its shapes (sorted by z-order) and tags.
fn write_image<W: Write>(
    x: &mut Xml<W>,
    ds: &TaskDataset<'_>,
    fr: &Frames<'_>,
    by_frame: &FrameAnnotations<'_>,
    i: usize,
) -> io::Result<()> {
    let frame = &ds.frames[i];
    x.begin("image");
    x.attr_num("id", frame.abs);
    let name = if fr.video {
        split_ext(&frame.name).0
    } else {
        frame.name.as_str()
    };
    x.attr("name", name);
    x.attr_num("width", frame.width);
    x.attr_num("height", frame.height);
    x.open()?;
    for item in by_frame.shapes(i) {
        write_image_shape(x, ds.labels, &item.view(), false)?;
    }
    for t in by_frame.tags(i) {
        x.begin("tag");
        x.attr("label", label_name(ds.labels, t.label_id));
        x.attr("source", &t.source);
        if t.group != 0 {
            x.attr_num("group_id", t.group);
        }
        x.open()?;
        write_attributes(x, ds.labels, t.label_id, &t.attributes)?;
        x.close("tag")?;
    }
    x.close("image")
}

fn open_track<W: Write>(
    x: &mut Xml<W>,
    labels: &LabelIndex,
    id: usize,
    label_id: i64,
    source: &str,
    group: u64,
) -> io::Result<()> {
    x.begin("track");
    x.attr_num("id", id);
    x.attr("label", label_name(labels, label_id));
    x.attr("source", source);
    if group != 0 {
        x.attr_num("group_id", group);
    }
    x.open()
}

fn write_video_body<W: Write>(
    x: &mut Xml<W>,
    ds: &TaskDataset<'_>,
    fr: &Frames<'_>,
    progress: &dyn Fn(f64),
) -> io::Result<()> {
    let a = ds.annotations;
    let total = (a.tracks.len() + a.shapes.len()).max(1) as f64;
    let mut done = 0usize;
    let mut counter = 0usize;
    if let Some(last) = fr.last_rel() {
        for (index, t) in a.tracks.iter().enumerate() {
            // CVAT keeps keyframes (outside ones too) and every visible frame.
            let shapes: Vec<FrameShape> = interpolate(t, last)
                .into_iter()
                .filter(|f| f.keep_in_track_export() && ds.frame_index(f.frame).is_some())
                .collect();
            done += 1;
            if shapes.is_empty() {
                continue;
            }
            open_track(x, ds.labels, counter, t.label_id, &t.source, t.group)?;
            for f in &shapes {
                let mut v = ShapeView::tracked(f, index, t);
                // As `FrameShape::keep_in_track_export`: keyframes and visible elements.
                v.elements.retain(|e| e.keyframe || !e.outside);
                write_track_shape(x, ds.labels, Some(fr.abs(f.frame)), &v)?;
            }
            x.close("track")?;
            counter += 1;
            progress(done as f64 / total);
        }
    }
    let stop = fr.stop_abs();
    for s in &a.shapes {
        done += 1;
        if ds.frame_index(s.frame).is_none() {
            continue;
        }
        open_track(x, ds.labels, counter, s.label_id, &s.source, s.group)?;
        let frame = fr.abs(s.frame);
        let mut v = ShapeView::plain(s);
        v.outside = false;
        write_track_shape(x, ds.labels, Some(frame), &v)?;
        // A finishing outside keyframe, unless it would hop over the last frame.
        let next = frame + fr.step;
        if next < stop {
            v.outside = true;
            for e in &mut v.elements {
                e.outside = true;
            }
            write_track_shape(x, ds.labels, Some(next), &v)?;
        }
        x.close("track")?;
        counter += 1;
        progress(done as f64 / total);
    }
    Ok(())
}

/// Writes `annotations.xml` for `ds` into `out` ("CVAT for video 1.1" when `video`, else "CVAT
/// for images 1.1"). Tracks are interpolated with
/// [`crate::annotations::interpolate::interpolate`].
pub fn write_xml(
    ds: &TaskDataset<'_>,
    video: bool,
    out: &mut DeflatedEntry,
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    let fr = Frames::new(ds);
    let mut x = Xml::new(out);
    (|| -> io::Result<()> {
        x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n")?;
        x.w.write_event(Event::Start(BytesStart::new("annotations")))?;
        x.level = 1;
        x.leaf("version", "1.1")?;
        write_meta(&mut x, ds, &fr)?;
        if video {
            write_video_body(&mut x, ds, &fr, progress)?;
        } else {
            write_images_body(&mut x, ds, &fr, progress)?;
        }
        x.close("annotations")?;
        x.raw("\n")
    })()
    .map_err(FormatError::from)
}
