//! The conformance suite every format runs (issue 11, point 4), in the style of `object_store`'s
//! `integration.rs`: a format's tests call these functions with its own exporter and importer
//! and the [`Capabilities`] it declares; [`conformance_suite!`] is the one call that runs every
//! check. Fixtures come from
//! [`testkit`](super::testkit).
//!
//! Annotations are compared *normalised*: every track is interpolated (as CVAT's per-frame
//! exports do) and only its visible frames are kept, every plain shape and tag is one object of
//! its frame, labels and attributes are named (missing attributes take their default), groups
//! are renumbered by first use, and whatever the format does not carry (its capabilities) is
//! left out of both sides. So a format that keeps tracks as tracks and one that writes them per
//! frame are held to the same per-frame geometry: a track that comes back with a keyframe lost
//! or moved fails, whatever its keyframes look like.
#![cfg(test)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::annotations::interpolate::{interpolate, FrameShape};
use crate::annotations::{Annotations, AttributeVal, LabelIndex, ShapeType};
use crate::formats::testkit::{export_file, write_zip, zip_entries, Task, TaskBuilder, TestImages};
use crate::formats::{
    catalogue, Exporter, FormatError, FrameSource, ImportInput, Importer, TaskDataset,
};

/// Every shape type, for formats that carry them all.
pub const ALL_SHAPES: &[ShapeType] = &[
    ShapeType::Rectangle,
    ShapeType::Polygon,
    ShapeType::Polyline,
    ShapeType::Points,
    ShapeType::Ellipse,
    ShapeType::Cuboid,
    ShapeType::Mask,
    ShapeType::Skeleton,
];

/// Every attribute input type.
pub const ALL_ATTRIBUTES: &[&str] = &["select", "radio", "checkbox", "number", "text"];

/// How a format carries tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackMode {
    /// Tracks come back as tracks (CVAT for video, Datumaro's `track_id`).
    Tracks,
    /// Tracks are written as a shape per visible frame and come back as plain shapes.
    PerFrame,
    /// Tracks are not written at all.
    Dropped,
}

/// What a format carries, as it declares it; checks compare only that.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Shape types it writes and reads back.
    pub shapes: &'static [ShapeType],
    /// Whether rectangles, ellipses (…) keep their rotation.
    pub rotation: bool,
    /// Attribute input types it carries (`select`, `radio`, `checkbox`, `number`, `text`).
    pub attributes: &'static [&'static str],
    /// Decimal places coordinates keep (CVAT XML: 2).
    pub precision: u32,
    pub tracks: TrackMode,
    pub tags: bool,
    pub groups: bool,
    pub z_order: bool,
    pub occluded: bool,
    /// Whether it has an importer (export-only formats must refuse imports).
    pub import: bool,
}

/// A bad input of the format, and where its error must point.
#[derive(Debug, Clone)]
pub struct BadInput {
    /// The file name it is imported as (a bare file).
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// The file the error names.
    pub file: &'static str,
    /// A part of the location the error gives (e.g. `"line 5"`).
    pub location: &'static str,
}

/// A format under test.
pub struct FormatUnderTest {
    /// Its export name in the catalogue (e.g. `"Datumaro 1.0"`).
    pub name: &'static str,
    pub exporter: &'static dyn Exporter,
    pub importer: Option<&'static dyn Importer>,
    pub caps: Capabilities,
    pub bad_inputs: Vec<BadInput>,
    /// Grouped shapes are written as one object (COCO instances): the objects of a frame that
    /// carry the label of a grouped shape there are not compared.
    pub merges_groups: bool,
    /// Export names of other formats whose archives this importer reads as CVAT does (PASCAL
    /// VOC and Segmentation mask both import with Datumaro's `voc`): not foreign to it.
    pub also_reads: &'static [&'static str],
    /// Folders of annotation images (segmentation masks), not the frames' images.
    pub mask_dirs: &'static [&'static str],
    /// The format writes a frame's image once per tag (Ultralytics YOLO Classification).
    pub image_per_tag: bool,
}

impl FormatUnderTest {
    /// The format as the catalogue has it (exporter, and importer by its import name).
    pub fn from_catalogue(
        name: &'static str,
        caps: Capabilities,
        bad_inputs: Vec<BadInput>,
    ) -> FormatUnderTest {
        let found = catalogue::exporter(name).expect("an implemented exporter");
        let importer = found
            .info
            .import_name()
            .and_then(|n| catalogue::importer(&n).ok())
            .map(|f| f.side);
        FormatUnderTest {
            name,
            exporter: found.side,
            importer,
            caps,
            bad_inputs,
            merges_groups: false,
            also_reads: &[],
            mask_dirs: &[],
            image_per_tag: false,
        }
    }

    /// The format, its annotation images in `dirs` ([`mask_dirs`](Self::mask_dirs)).
    pub fn with_mask_dirs(mut self, dirs: &'static [&'static str]) -> FormatUnderTest {
        self.mask_dirs = dirs;
        self
    }

    /// The format, reading the exports of `formats` too ([`also_reads`](Self::also_reads)).
    pub fn also_reading(mut self, formats: &'static [&'static str]) -> FormatUnderTest {
        self.also_reads = formats;
        self
    }

    /// A format that writes each group of shapes as one object ([`Self::merges_groups`]).
    pub fn merging_groups(mut self) -> Self {
        self.merges_groups = true;
        self
    }

    /// The format writes a frame's image once per tag on it.
    pub fn with_image_per_tag(mut self) -> Self {
        self.image_per_tag = true;
        self
    }

    fn importer(&self) -> &'static dyn Importer {
        self.importer
            .unwrap_or_else(|| panic!("{}: declared importable but has no importer", self.name))
    }
}

/// The standard tasks: an image task and a video task (start 10, step 3), 10 frames in two
/// segments of 5, with everything.
pub fn standard_tasks() -> Vec<(&'static str, Task)> {
    vec![
        (
            "image task",
            TaskBuilder::images(10).segment_size(5).everything().build(),
        ),
        (
            "video task",
            TaskBuilder::video(10)
                .frame_step(10, 3)
                .segment_size(5)
                .everything()
                .build(),
        ),
    ]
}

/// Exports `ds` into a zip in `dir`; `images` when saving them.
pub fn export(
    f: &FormatUnderTest,
    ds: &TaskDataset<'_>,
    images: Option<&dyn FrameSource>,
    dir: &Path,
    name: &str,
) -> PathBuf {
    let path = dir.join(name);
    export_file(f.exporter, ds, images, &path)
        .unwrap_or_else(|e| panic!("{}: export failed: {e}", f.name));
    path
}

fn import(
    f: &FormatUnderTest,
    path: &Path,
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    f.importer().import(&ImportInput::open(path).unwrap(), ds)
}

// ---- normalisation -----------------------------------------------------------------------------

/// One object of a frame, as compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj {
    pub frame: u64,
    /// `tag`, or the shape type.
    pub kind: &'static str,
    pub label: String,
    pub points: Vec<f64>,
    pub rotation: f64,
    pub occluded: bool,
    pub outside: bool,
    pub z_order: i64,
    pub group: u64,
    pub attributes: BTreeMap<String, String>,
    pub elements: Vec<Obj>,
}

struct Norm<'a> {
    caps: &'a Capabilities,
    labels: &'a LabelIndex,
}

impl Norm<'_> {
    fn attrs(&self, label_id: i64, vals: &[AttributeVal]) -> BTreeMap<String, String> {
        let Some(l) = self.labels.get(label_id) else {
            return BTreeMap::new();
        };
        l.attributes
            .iter()
            .filter(|(_, s)| self.caps.attributes.contains(&s.input_type.as_str()))
            .map(|(id, s)| {
                let v = vals
                    .iter()
                    .find(|v| v.spec_id == *id)
                    .map_or(s.default_value.clone(), |v| v.value.clone());
                (s.name.clone(), v)
            })
            .collect()
    }

    fn label(&self, id: i64) -> String {
        self.labels
            .get(id)
            .map_or(format!("#{id}"), |l| l.name.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn obj(
        &self,
        frame: u64,
        kind: ShapeType,
        label_id: i64,
        points: &[f64],
        rotation: f64,
        occluded: bool,
        outside: bool,
        z_order: i64,
        group: u64,
        attrs: &[AttributeVal],
    ) -> Obj {
        let c = self.caps;
        let rotation = if c.rotation {
            let r = rotation.rem_euclid(360.0);
            if r > 360.0 - 1e-6 {
                0.0
            } else {
                r
            }
        } else {
            0.0
        };
        Obj {
            frame,
            kind: kind.as_str(),
            label: self.label(label_id),
            points: points.to_vec(),
            rotation,
            occluded: c.occluded && occluded,
            outside,
            z_order: if c.z_order { z_order } else { 0 },
            group: if c.groups { group } else { 0 },
            attributes: self.attrs(label_id, attrs),
            elements: vec![],
        }
    }

    fn frame_shape(&self, fs: &FrameShape, group: u64) -> Obj {
        let mut o = self.obj(
            fs.frame,
            fs.kind,
            fs.label_id,
            &fs.points,
            fs.rotation,
            fs.occluded,
            false,
            fs.z_order,
            group,
            &fs.attributes,
        );
        o.elements = fs
            .elements
            .iter()
            .map(|e| {
                let mut eo = self.frame_shape(e, 0);
                eo.outside = e.outside;
                eo.z_order = 0;
                eo
            })
            .collect();
        o
    }

    /// Every visible object of `a` on `ds`'s frames.
    fn objects(&self, a: &Annotations, ds: &TaskDataset<'_>) -> Vec<Obj> {
        let c = self.caps;
        let on = |f: u64| ds.frame_index(f).is_some();
        let mut out = Vec::new();
        if c.tags {
            for t in a.tags.iter().filter(|t| on(t.frame)) {
                out.push(Obj {
                    kind: "tag",
                    ..self.obj(
                        t.frame,
                        ShapeType::Points,
                        t.label_id,
                        &[],
                        0.0,
                        false,
                        false,
                        0,
                        t.group,
                        &t.attributes,
                    )
                });
            }
        }
        // A format without rotation does not write rotated shapes (Datumaro's YOLO converter
        // skips them), so they are not expected back.
        let dropped = |rotation: f64| !c.rotation && rotation.rem_euclid(360.0) > 1e-5;
        for s in a.shapes.iter().filter(|s| on(s.frame)) {
            if !c.shapes.contains(&s.kind) || dropped(s.rotation) {
                continue;
            }
            let mut o = self.obj(
                s.frame,
                s.kind,
                s.label_id,
                &s.points,
                s.rotation,
                s.occluded,
                s.outside,
                s.z_order,
                s.group,
                &s.attributes,
            );
            o.elements = s
                .elements
                .iter()
                .map(|e| {
                    self.obj(
                        e.frame,
                        e.kind,
                        e.label_id,
                        &e.points,
                        e.rotation,
                        e.occluded,
                        e.outside,
                        0,
                        0,
                        &e.attributes,
                    )
                })
                .collect();
            out.push(o);
        }
        if c.tracks != TrackMode::Dropped {
            let last = ds.frames.last().map_or(0, |f| f.rel);
            for t in &a.tracks {
                for fs in interpolate(t, last) {
                    if !on(fs.frame)
                        || !fs.keep_in_frame_export()
                        || !c.shapes.contains(&fs.kind)
                        || dropped(fs.rotation)
                    {
                        continue;
                    }
                    out.push(self.frame_shape(&fs, t.group));
                }
            }
        }
        for o in &mut out {
            o.elements.sort_by(|a, b| a.label.cmp(&b.label));
        }
        out.sort_by_key(|o| self.key(o));
        // Groups by first use on each frame: a group is a set of objects of one frame (Datumaro
        // numbers them per item, CVAT's Datumaro importers renumber them, spec formats.md §5).
        let mut ids = BTreeMap::new();
        for o in &mut out {
            if o.group != 0 {
                let n = ids.len() as u64 + 1;
                o.group = *ids.entry((o.frame, o.group)).or_insert(n);
            }
        }
        out
    }

    fn key(&self, o: &Obj) -> String {
        let p = self.caps.precision as usize;
        let pts = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{:.*}", p.saturating_sub(1), x))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{:06} {} {} [{}] {:?} {}",
            o.frame,
            o.kind,
            o.label,
            pts(&o.points),
            o.attributes,
            o.elements
                .iter()
                .map(|e| format!("{}[{}]", e.label, pts(&e.points)))
                .collect::<String>()
        )
    }
}

/// `a` and `b` are the same within `precision` decimals.
fn close(a: &[f64], b: &[f64], precision: u32) -> bool {
    let tol = 0.5 * 10f64.powi(-(precision as i32)) + 1e-9;
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

fn same(a: &Obj, b: &Obj, precision: u32) -> bool {
    a.frame == b.frame
        && a.kind == b.kind
        && a.label == b.label
        && close(&a.points, &b.points, precision)
        && close(&[a.rotation], &[b.rotation], precision)
        && a.occluded == b.occluded
        && a.outside == b.outside
        && a.z_order == b.z_order
        && a.group == b.group
        && a.attributes == b.attributes
        && a.elements.len() == b.elements.len()
        && a.elements
            .iter()
            .zip(&b.elements)
            .all(|(x, y)| same(x, y, precision))
}

/// Panics unless `got` (imported into `ds`) shows what `want` does, normalised under `caps`.
#[allow(dead_code)] // for formats' own tests
pub fn assert_same_annotations(
    what: &str,
    caps: &Capabilities,
    ds: &TaskDataset<'_>,
    want: &Annotations,
    got: &Annotations,
) {
    assert_same_annotations_of(what, caps, false, ds, want, got)
}

/// [`assert_same_annotations`]; with `merges_groups`, the objects of a frame with the label of
/// a grouped plain shape there are left out of both sides ([`FormatUnderTest::merges_groups`]).
pub fn assert_same_annotations_of(
    what: &str,
    caps: &Capabilities,
    merges_groups: bool,
    ds: &TaskDataset<'_>,
    want: &Annotations,
    got: &Annotations,
) {
    let n = Norm {
        caps,
        labels: ds.labels,
    };
    let (mut w, mut g) = (n.objects(want, ds), n.objects(got, ds));
    if merges_groups {
        let grouped: HashSet<(u64, String)> = want
            .shapes
            .iter()
            .filter(|s| s.group != 0)
            .map(|s| (s.frame, n.label(s.label_id)))
            .collect();
        let keep = |o: &Obj| !grouped.contains(&(o.frame, o.label.clone()));
        w.retain(keep);
        g.retain(keep);
    }
    let mut problems = Vec::new();
    let mut used = vec![false; g.len()];
    for o in &w {
        match (0..g.len()).find(|&i| !used[i] && same(o, &g[i], caps.precision)) {
            Some(i) => used[i] = true,
            None => problems.push(format!("missing or changed: {o:?}")),
        }
    }
    for (i, o) in g.iter().enumerate() {
        if !used[i] {
            problems.push(format!("unexpected: {o:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} of {} objects differ:\n  {}",
        problems.len(),
        w.len(),
        problems.join("\n  ")
    );
}

// ---- checks ------------------------------------------------------------------------------------

/// Export and import back: the same annotations (normalised), and tracks kept as the format
/// says.
pub fn round_trip(f: &FormatUnderTest, task: &Task, what: &str) {
    if !f.caps.import {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ds = task.dataset();
    let zip = export(f, &ds, None, dir.path(), "export.zip");
    let back = import(f, &zip, &ds)
        .unwrap_or_else(|e| panic!("{} ({what}): import of its own export failed: {e}", f.name));
    assert_same_annotations_of(
        &format!("{} round trip ({what})", f.name),
        &f.caps,
        f.merges_groups,
        &ds,
        &task.annotations,
        &back,
    );
    let want_tracks = task
        .annotations
        .tracks
        .iter()
        .filter(|t| t.shapes.iter().any(|s| f.caps.shapes.contains(&s.kind)))
        .count();
    match f.caps.tracks {
        TrackMode::Tracks => assert!(
            back.tracks.len() >= want_tracks,
            "{} ({what}): {want_tracks} tracks exported, {} came back as tracks",
            f.name,
            back.tracks.len()
        ),
        TrackMode::PerFrame | TrackMode::Dropped => assert!(
            back.tracks.is_empty(),
            "{} ({what}): declared without tracks, imported {}",
            f.name,
            back.tracks.len()
        ),
    }
}

/// Issue 11's repro: an 8-frame image task, a rectangle `[0,0,10,10]` at 0 closed by `outside`
/// at 4 (`[40,40,50,50]`), frames 1–3 must come back 10/20/30; then the standard video task
/// (frame step) with [`TaskBuilder::closed_track`].
pub fn closed_track_round_trip(f: &FormatUnderTest) {
    use crate::annotations::ShapeType::Rectangle;
    use crate::formats::testkit::{keyframe, label, track};
    if !f.caps.import || f.caps.tracks == TrackMode::Dropped || !f.caps.shapes.contains(&Rectangle)
    {
        return;
    }
    let mut task = TaskBuilder::images(8).build();
    task.annotations.tracks = vec![track(
        label::SIGN,
        vec![
            keyframe(Rectangle, 0, false, &[0.0, 0.0, 10.0, 10.0]),
            keyframe(Rectangle, 4, true, &[40.0, 40.0, 50.0, 50.0]),
        ],
    )];
    round_trip(f, &task, "a track closed by outside");
    let task = TaskBuilder::video(10)
        .frame_step(10, 3)
        .segment_size(5)
        .everything()
        .closed_track()
        .build();
    round_trip(f, &task, "video task with a track closed by outside");
}

/// An empty task exports and imports to nothing.
pub fn empty_task(f: &FormatUnderTest, task: &Task) {
    let dir = tempfile::tempdir().unwrap();
    let none = Annotations::default();
    let ds = task.dataset_with(&task.labels, &none);
    let zip = export(f, &ds, None, dir.path(), "empty.zip");
    if f.caps.import {
        let back = import(f, &zip, &ds)
            .unwrap_or_else(|e| panic!("{}: importing an empty export failed: {e}", f.name));
        assert!(
            back.is_empty(),
            "{}: an empty export imported {back:?}",
            f.name
        );
    }
}

/// A job's export imports into that job: its annotations, only on its frames.
pub fn job_range(f: &FormatUnderTest, task: &Task, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    for &(id, start, stop) in &task.segments {
        let job = task.job(id);
        let ds = job.dataset(task);
        let zip = export(f, &ds, None, dir.path(), &format!("job{id}.zip"));
        if !f.caps.import {
            continue;
        }
        let back = import(f, &zip, &ds)
            .unwrap_or_else(|e| panic!("{} ({what}): job {id} import failed: {e}", f.name));
        let frames = back
            .tags
            .iter()
            .map(|t| t.frame)
            .chain(back.shapes.iter().map(|s| s.frame))
            .chain(
                back.tracks
                    .iter()
                    .flat_map(|t| t.shapes.iter().map(|s| s.frame)),
            );
        for fr in frames {
            assert!(
                (start..=stop).contains(&fr),
                "{} ({what}): job {id} ({start}..={stop}) imported an object on frame {fr}",
                f.name
            );
        }
        assert_same_annotations_of(
            &format!("{} job {id} ({what})", f.name),
            &f.caps,
            f.merges_groups,
            &ds,
            &job.annotations,
            &back,
        );
    }
}

/// With `save_images`, every frame has exactly one image (real image bytes, its frame's size),
/// under a name no other entry has; the annotations are those of the export without images.
pub fn save_images(f: &FormatUnderTest, task: &Task, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ds = task.dataset();
    let images = TestImages::of(&ds);
    let zip = export(f, &ds, Some(&images), dir.path(), "with-images.zip");
    let entries = zip_entries(&zip);
    let mut names = HashSet::new();
    for (n, _) in &entries {
        assert!(
            names.insert(n.clone()),
            "{} ({what}): entry {n} twice",
            f.name
        );
    }
    let imgs: Vec<(&String, image::DynamicImage)> = entries
        .iter()
        .filter(|(n, b)| {
            image::guess_format(b).is_ok() && !f.mask_dirs.iter().any(|d| n.starts_with(d))
        })
        .map(|(n, b)| (n, image::load_from_memory(b).unwrap()))
        .collect();
    // Per frame, how many images it has: one, or one per tag (at least one).
    let per_frame = |rel: u64| {
        let tags = task
            .annotations
            .tags
            .iter()
            .filter(|t| t.frame == rel)
            .count();
        if f.image_per_tag {
            tags.max(1)
        } else {
            1
        }
    };
    assert_eq!(
        imgs.len(),
        ds.frames.iter().map(|fr| per_frame(fr.rel)).sum::<usize>(),
        "{} ({what}): {} images for {} frames: {:?}",
        f.name,
        imgs.len(),
        ds.frames.len(),
        imgs.iter().map(|i| i.0).collect::<Vec<_>>()
    );
    for fr in &ds.frames {
        let stem = fr.name.rsplit_once('.').map_or(fr.name.as_str(), |p| p.0);
        // Under the frame's path, or flattened ('/' → '_', as Datumaro names images).
        let flat = stem.replace('/', "_");
        let hits: Vec<_> = imgs
            .iter()
            .filter(|(n, _)| {
                n.rsplit_once('.').is_some_and(|p| {
                    p.0.ends_with(&format!("/{stem}")) || p.0.ends_with(&format!("/{flat}"))
                })
            })
            .collect();
        // Datumaro makes a name unique in its folder with `.0`, `.1`, … before the extension.
        let hits: Vec<_> = if f.image_per_tag {
            imgs.iter()
                .filter(|(n, _)| {
                    let base = stem.rsplit('/').next().unwrap_or(stem);
                    let file = n.rsplit('/').next().unwrap_or(n);
                    file.rsplit_once('.').is_some_and(|p| {
                        p.0 == base
                            || p.0.strip_prefix(base).is_some_and(|r| {
                                r.strip_prefix('.')
                                    .is_some_and(|k| k.bytes().all(|b| b.is_ascii_digit()))
                            })
                    })
                })
                .collect()
        } else {
            hits
        };
        assert_eq!(
            hits.len(),
            per_frame(fr.rel),
            "{} ({what}): frame {} has {} images: {:?}",
            f.name,
            fr.name,
            hits.len(),
            imgs.iter().map(|i| i.0).collect::<Vec<_>>()
        );
        let img = &hits[0].1;
        assert_eq!(
            (img.width(), img.height()),
            (fr.width, fr.height),
            "{} ({what}): image of {}",
            f.name,
            fr.name
        );
    }
    if f.caps.import {
        let back = import(f, &zip, &ds).unwrap_or_else(|e| {
            panic!(
                "{} ({what}): import of the export with images failed: {e}",
                f.name
            )
        });
        assert_same_annotations_of(
            &format!("{} with images ({what})", f.name),
            &f.caps,
            f.merges_groups,
            &ds,
            &task.annotations,
            &back,
        );
    }
}

/// A zip of text files, and the export of every catalogued format with another importer, are
/// [`FormatError::NotThisFormat`].
pub fn foreign_archives(f: &FormatUnderTest, task: &Task) {
    if !f.caps.import {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ds = task.dataset();
    let mut inputs = vec![(
        "a zip of text files".to_owned(),
        write_zip(
            dir.path(),
            "text.zip",
            &[
                ("readme.txt", b"hello"),
                ("notes/a.txt", b"{\"not\": \"a dataset\"}"),
                ("data.csv", b"a,b\n1,2\n"),
            ],
        ),
    )];
    let own = catalogue::exporter(f.name).unwrap().info.import_name();
    for r in catalogue::CATALOGUE {
        let Some(other) = r.exporter else { continue };
        let name = r.info.display_name();
        if r.info.import_name() == own || f.also_reads.contains(&name.as_str()) {
            continue;
        }
        let other_f = FormatUnderTest {
            name: "foreign",
            exporter: other,
            importer: None,
            caps: f.caps.clone(),
            bad_inputs: vec![],
            merges_groups: false,
            also_reads: &[],
            mask_dirs: &[],
            image_per_tag: false,
        };
        let p = export(
            &other_f,
            &ds,
            None,
            dir.path(),
            &format!("{}.zip", r.info.name),
        );
        inputs.push((format!("a {name} export"), p));
    }
    for (what, p) in inputs {
        match import(f, &p, &ds) {
            Err(FormatError::NotThisFormat { .. }) => {}
            other => panic!("{}: {what} must be NotThisFormat, got {other:?}", f.name),
        }
    }
}

/// Each bad input fails naming its file and location.
pub fn bad_inputs(f: &FormatUnderTest, task: &Task) {
    if !f.caps.import {
        return;
    }
    assert!(
        !f.bad_inputs.is_empty(),
        "{}: give the suite bad inputs",
        f.name
    );
    let dir = tempfile::tempdir().unwrap();
    let none = Annotations::default();
    let ds = task.dataset_with(&task.labels, &none);
    for b in &f.bad_inputs {
        let p = dir.path().join(b.name);
        std::fs::write(&p, &b.bytes).unwrap();
        match import(f, &p, &ds) {
            Err(FormatError::Invalid {
                file,
                location,
                reason,
            }) => {
                assert_eq!(file, b.file, "{}: {}: {reason}", f.name, b.name);
                assert!(
                    location.contains(b.location),
                    "{}: {}: location {location:?} must contain {:?} ({reason})",
                    f.name,
                    b.name,
                    b.location
                );
            }
            other => panic!("{}: {} must be Invalid, got {other:?}", f.name, b.name),
        }
    }
}

/// Importing into a task without a label the file uses is an error naming the label: `car`,
/// or for a format that carries no car shape, the label of the first shape it carries (the
/// skeleton of COCO Keypoints).
pub fn unknown_label(f: &FormatUnderTest, task: &Task) {
    if !f.caps.import {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ds = task.dataset();
    let zip = export(f, &ds, None, dir.path(), "export.zip");
    let carried = |label: i64| {
        task.annotations
            .shapes
            .iter()
            .any(|s| s.label_id == label && f.caps.shapes.contains(&s.kind))
    };
    let name = match task.labels.by_name("car") {
        Some(car) if !carried(car.id) => task
            .annotations
            .shapes
            .iter()
            .find(|s| f.caps.shapes.contains(&s.kind))
            .and_then(|s| task.labels.get(s.label_id))
            .map_or("car".to_owned(), |l| l.name.clone()),
        _ => "car".to_owned(),
    };
    let fewer = LabelIndex::from_labels(
        task.labels
            .labels
            .iter()
            .filter(|l| l.name != name)
            .cloned()
            .collect(),
    );
    let none = Annotations::default();
    let target = task.dataset_with(&fewer, &none);
    match import(f, &zip, &target) {
        Err(e @ FormatError::Invalid { .. }) => assert!(
            e.to_string().contains(&name),
            "{}: the error must name the label: {e}",
            f.name
        ),
        other => panic!(
            "{}: an unknown label must be Invalid, got {other:?}",
            f.name
        ),
    }
}

/// An export-only format has no importer, and the catalogue refuses to import it.
pub fn import_side(f: &FormatUnderTest) {
    let found = catalogue::exporter(f.name).expect("catalogued");
    let by_name = found
        .info
        .import_name()
        .map(|n| catalogue::importer(&n).is_ok())
        .unwrap_or(false);
    assert_eq!(
        by_name, f.caps.import,
        "{}: declared import {} but the catalogue says {by_name}",
        f.name, f.caps.import
    );
    assert_eq!(f.importer.is_some(), f.caps.import, "{}", f.name);
}

/// The one call a format's tests make: `conformance_suite!(module, format_under_test)` runs every
/// check of the suite on the format, each as a test of its own (so one failure does not hide the
/// others), in a module named `module`.
macro_rules! conformance_suite {
    ($m:ident, $f:expr) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            use $crate::formats::conformance as suite;

            #[test]
            fn import_side() {
                suite::import_side(&$f);
            }

            #[test]
            fn round_trip() {
                let f = $f;
                for (what, task) in suite::standard_tasks() {
                    suite::round_trip(&f, &task, what);
                }
            }

            #[test]
            fn closed_track_round_trip() {
                suite::closed_track_round_trip(&$f);
            }

            #[test]
            fn empty_task() {
                let f = $f;
                for (_, task) in suite::standard_tasks() {
                    suite::empty_task(&f, &task);
                }
            }

            #[test]
            fn job_range() {
                let f = $f;
                for (what, task) in suite::standard_tasks() {
                    suite::job_range(&f, &task, what);
                }
            }

            #[test]
            fn save_images() {
                let f = $f;
                for (what, task) in suite::standard_tasks() {
                    suite::save_images(&f, &task, what);
                }
            }

            #[test]
            fn foreign_archives() {
                let f = $f;
                for (_, task) in suite::standard_tasks() {
                    suite::foreign_archives(&f, &task);
                }
            }

            #[test]
            fn bad_inputs() {
                suite::bad_inputs(&$f, &suite::standard_tasks().remove(0).1);
            }

            #[test]
            fn unknown_label() {
                let f = $f;
                for (_, task) in suite::standard_tasks() {
                    suite::unknown_label(&f, &task);
                }
            }
        }
    };
}

pub(crate) use conformance_suite;
