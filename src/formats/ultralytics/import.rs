//! The import of the family's `data.yaml` formats: CVAT's `_import_common` on Datumaro's
//! `yolo_ultralytics_*` extractors, with the task's frame sizes as `image_info`.

use std::collections::{HashMap, HashSet};

use crate::annotations::{Annotations, LabelInfo, Shape, ShapeType, Track, TrackedShape};
use crate::formats::kit::darknet::{archive_files, localize, read_text, under, ItemMatcher};
use crate::formats::kit::input::file_shape;
use crate::formats::kit::paths::{basename, dirname, parts, split_ext};
use crate::formats::{FormatError, ImportInput, TaskDataset};

use super::config::{read_config, Config, Source, DATA_YAML};
use super::lines::{looks_like, parse_line, rectangle_of};
use super::{Kind, Ultralytics};

impl crate::formats::Importer for Ultralytics {
    fn read(&self, input: &ImportInput, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        Import::new(self, input)?.read(ds)
    }
}

/// An image of a subset: its item id, its image's extension, its label file, and where it was
/// listed (for errors).
struct Listed {
    id: String,
    image_ext: String,
    labels: String,
    file: String,
    location: String,
}

/// A shape of a track (by its track id), not yet keyframed.
struct TrackPart {
    frame: u64,
    shape: Shape,
    /// The label file and line it came from (for errors).
    file: String,
    line: usize,
}

struct Import<'a> {
    format: &'a Ultralytics,
    input: &'a ImportInput,
    entries: Vec<String>,
    root: String,
    config_file: String,
    config: Config,
}

impl<'a> Import<'a> {
    fn not_this(format: &Ultralytics, reason: impl Into<String>) -> FormatError {
        FormatError::NotThisFormat {
            format: format.name().into(),
            reason: reason.into(),
        }
    }

    fn new(format: &'a Ultralytics, input: &'a ImportInput) -> Result<Self, FormatError> {
        if !input.is_zip() {
            return Err(Self::not_this(
                format,
                "an Ultralytics YOLO dataset is a zip archive",
            ));
        }
        let entries = archive_files(input);
        // Datumaro looks for the config at the root or one folder down; `data.yaml` first.
        let yamls: Vec<&String> = entries
            .iter()
            .filter(|n| n.matches('/').count() <= 1 && n.ends_with(".yaml"))
            .collect();
        let config_file = yamls
            .iter()
            .filter(|n| basename(n) == DATA_YAML)
            .min_by_key(|n| n.matches('/').count())
            .or(if yamls.len() == 1 {
                yamls.first()
            } else {
                None
            })
            .map(|s| s.to_string());
        let Some(config_file) = config_file else {
            // Label files in `labels/` folders: an Ultralytics dataset that lost its config.
            let labels = entries.iter().any(|n| {
                n.ends_with(".txt") && parts(n).iter().rev().skip(1).any(|p| *p == "labels")
            });
            if labels && yamls.is_empty() {
                return Err(FormatError::invalid(
                    DATA_YAML,
                    "",
                    "missing: an Ultralytics YOLO dataset has data.yaml at its root",
                ));
            }
            return Err(Self::not_this(
                format,
                if yamls.is_empty() {
                    "no data.yaml in the archive".to_owned()
                } else {
                    "cannot choose the config file: several .yaml files and no data.yaml".to_owned()
                },
            ));
        };
        let root = dirname(&config_file).to_owned();
        let text = read_text(input, &config_file)?;
        let config = read_config(&config_file, &text)?;
        match (format.kind, &config.kpt_shape) {
            (Kind::Pose, None) => {
                return Err(Self::not_this(format, "data.yaml has no 'kpt_shape'"))
            }
            (Kind::Pose, Some(Err(why))) => {
                return Err(FormatError::invalid(
                    &config_file,
                    "key 'kpt_shape'",
                    why.clone(),
                ))
            }
            (Kind::Pose, Some(Ok(_))) => {}
            (_, Some(_)) => {
                return Err(Self::not_this(
                    format,
                    "data.yaml has 'kpt_shape': a pose dataset",
                ))
            }
            (_, None) => {}
        }
        Ok(Import {
            format,
            input,
            entries,
            root,
            config_file,
            config,
        })
    }

    /// An image path (relative to the root) as an item: Datumaro's `name_from_path` and
    /// `_get_labels_path_from_image_path`.
    fn item(&self, image: &str, file: &str, location: String) -> Result<Listed, FormatError> {
        let image = localize(image);
        let p = parts(image);
        let images_at = (0..p.len().min(2)).rev().find(|&i| p[i] == "images");
        let Some(at) = images_at.filter(|_| p.len() >= 3) else {
            return Err(FormatError::invalid(
                file,
                location,
                format!(
                    "malformed folder structure for image '{image}': expected images/<subset>/… or <subset>/images/…"
                ),
            ));
        };
        let mut l: Vec<&str> = p.clone();
        l[at] = "labels";
        let rest = p[2..].join("/");
        let (stem, ext) = split_ext(&rest);
        let labels = format!("{}/{}/{stem}.txt", l[0], l[1]);
        Ok(Listed {
            id: stem.to_owned(),
            image_ext: ext.to_owned(),
            labels: under(&self.root, &labels),
            file: file.to_owned(),
            location,
        })
    }

    /// Every subset's images, in the config's order.
    fn items(&self) -> Result<Vec<Listed>, FormatError> {
        let present: HashSet<&str> = self.entries.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for (subset, source) in &self.config.subsets {
            let key = format!("key '{subset}'");
            match source {
                Source::List(path) => {
                    let list = under(&self.root, localize(path));
                    if !present.contains(list.as_str()) {
                        return Err(FormatError::invalid(
                            &self.config_file,
                            key,
                            format!("cannot find the '{subset}' subset list '{path}'"),
                        ));
                    }
                    for (k, line) in read_text(self.input, &list)?.lines().enumerate() {
                        if !line.trim().is_empty() {
                            out.push(self.item(line, &list, format!("line {}", k + 1))?);
                        }
                    }
                }
                Source::Dir(path) => {
                    let dir = under(&self.root, localize(path));
                    let prefix = format!("{}/", dir.trim_end_matches('/'));
                    let skip = if self.root.is_empty() {
                        0
                    } else {
                        self.root.len() + 1
                    };
                    let before = out.len();
                    for e in self.entries.iter().filter(|e| e.starts_with(&prefix)) {
                        out.push(self.item(&e[skip..], &self.config_file, key.clone())?);
                    }
                    if out.len() == before {
                        // No images (CVAT needs none: sizes come from the task): the label files
                        // of the folder's `labels` twin are the items.
                        let listed = self.item(
                            &format!("{}/_", localize(path)),
                            &self.config_file,
                            key.clone(),
                        );
                        let labels_dir = listed.ok().map(|l| dirname(&l.labels).to_owned());
                        if let Some(ld) = labels_dir {
                            let lprefix = format!("{ld}/");
                            let twin = &localize(path);
                            for e in self
                                .entries
                                .iter()
                                .filter(|e| e.starts_with(&lprefix) && e.ends_with(".txt"))
                            {
                                let image = format!("{twin}/{}", &e[lprefix.len()..]);
                                let mut it = self.item(&image, &self.config_file, key.clone())?;
                                it.image_ext.clear();
                                it.labels = e.clone();
                                out.push(it);
                            }
                        }
                    }
                    if out.len() == before {
                        return Err(FormatError::invalid(
                            &self.config_file,
                            key,
                            format!("cannot find the '{subset}' subset image folder '{path}'"),
                        ));
                    }
                }
                Source::Images(list) => {
                    for (k, image) in list.iter().enumerate() {
                        out.push(self.item(
                            image,
                            &self.config_file,
                            format!("key '{subset}', image {}", k + 1),
                        )?);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Pose: per class, the task skeleton and its point labels (CVAT's `skeleton_sub_labels`).
    fn skeletons<'t>(
        &self,
        ds: &'t TaskDataset<'_>,
        kpt: usize,
    ) -> Result<Vec<(&'t LabelInfo, Vec<&'t LabelInfo>)>, FormatError> {
        let mut out = Vec::with_capacity(self.config.names.len());
        for (_, name) in &self.config.names {
            let skeleton = ds
                .labels
                .by_name(name)
                .filter(|l| l.kind == "skeleton")
                .ok_or_else(|| {
                    FormatError::invalid(
                        &self.config_file,
                        "key 'names'",
                        format!("label '{name}' is not registered in the task as a skeleton"),
                    )
                })?;
            let points: Vec<&LabelInfo> = ds.labels.children(skeleton.id).collect();
            if points.len() > kpt {
                return Err(FormatError::invalid(
                    &self.config_file,
                    "key 'kpt_shape'",
                    format!(
                        "kpt_shape has {kpt} points but the skeleton '{name}' has {}",
                        points.len()
                    ),
                ));
            }
            out.push((skeleton, points));
        }
        Ok(out)
    }

    fn read(self, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
        let items = self.items()?;
        let present: HashSet<&str> = self.entries.iter().map(String::as_str).collect();
        let kind = self.format.kind;
        let kpt = match &self.config.kpt_shape {
            Some(Ok(k)) => *k,
            _ => (0, 0),
        };
        let skeletons = if kind == Kind::Pose {
            self.skeletons(ds, kpt.0)?
        } else {
            Vec::new()
        };
        // Class → task label id, looked up once per class on first use.
        let mut labels: Vec<Option<i64>> = vec![None; self.config.names.len()];
        let ids: HashMap<i64, usize> = self
            .config
            .names
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let class_of = |id: i64| ids.get(&id).copied();

        let matcher = ItemMatcher::new(ds, items.iter().map(|i| i.id.as_str()));
        let last_frame = ds.frames.last().map_or(0, |f| f.rel);
        let mut out = Annotations::default();
        let mut tracks: Vec<(i64, Vec<TrackPart>)> = Vec::new();
        let mut track_of: HashMap<i64, usize> = HashMap::new();
        let mut values = Vec::new();
        let mut sniffed = false;
        for it in &items {
            let rel = matcher.frame(&it.id, &it.image_ext, &it.file, || it.location.clone())?;
            let frame = ds.frame_index(rel).map(|i| &ds.frames[i]).ok_or_else(|| {
                FormatError::invalid(&it.file, it.location.clone(), "no such frame")
            })?;
            if !present.contains(it.labels.as_str()) {
                continue;
            }
            let text = read_text(self.input, &it.labels)?;
            let (w, h) = (f64::from(frame.width), f64::from(frame.height));
            for (k, line) in text.lines().enumerate() {
                let at = || format!("line {}", k + 1);
                if !sniffed && kind != Kind::Pose {
                    let n = line.split_ascii_whitespace().count();
                    if n > 0 {
                        sniffed = true;
                        let seen = looks_like(n);
                        let fits = match (kind, seen) {
                            (_, None) => true,
                            // A four-point polygon is an oriented box's line too.
                            (Kind::Segmentation, Some(Kind::OrientedBoxes)) => true,
                            (k, Some(s)) => k == s,
                        };
                        if !fits {
                            return Err(Self::not_this(
                                self.format,
                                format!(
                                    "{}, {}: {n} values is a line of another Ultralytics YOLO format",
                                    it.labels,
                                    at()
                                ),
                            ));
                        }
                    }
                }
                let parsed = parse_line(
                    kind,
                    kpt,
                    line,
                    self.config.names.len(),
                    &class_of,
                    &mut values,
                )
                .map_err(|r| FormatError::invalid(&it.labels, at(), r))?;
                let Some((class, track)) = parsed else {
                    continue;
                };
                let label_id = match labels[class] {
                    Some(id) => id,
                    None => {
                        let name = &self.config.names[class].1;
                        let id = match kind {
                            Kind::Pose => skeletons[class].0.id,
                            _ => {
                                ds.labels
                                    .by_name(name)
                                    .ok_or_else(|| {
                                        FormatError::invalid(
                                            &it.labels,
                                            at(),
                                            format!("label '{name}' is not registered in the task"),
                                        )
                                    })?
                                    .id
                            }
                        };
                        labels[class] = Some(id);
                        id
                    }
                };
                let mut shape = file_shape(ShapeType::Rectangle, rel, label_id, Vec::new());
                match kind {
                    Kind::Detection => {
                        let [cx, cy, bw, bh] = [values[0], values[1], values[2], values[3]];
                        let (x, y) = ((cx - bw * 0.5) * w, (cy - bh * 0.5) * h);
                        shape.points = vec![x, y, x + bw * w, y + bh * h];
                    }
                    Kind::OrientedBoxes => {
                        let mut c = [0.0; 8];
                        for (k, v) in values.iter().enumerate() {
                            c[k] = v * if k % 2 == 0 { w } else { h };
                        }
                        let (points, rotation) = rectangle_of(&c);
                        shape.points = points.to_vec();
                        shape.rotation = rotation;
                    }
                    Kind::Segmentation => {
                        shape.kind = ShapeType::Polygon;
                        shape.points = values
                            .chunks_exact(2)
                            .flat_map(|xy| [xy[0] * w, xy[1] * h])
                            .collect();
                    }
                    Kind::Pose => {
                        shape.kind = ShapeType::Skeleton;
                        let element = shape.clone();
                        let per = kpt.1;
                        for (p, point) in skeletons[class].1.iter().enumerate() {
                            let v = &values[4 + p * per..4 + (p + 1) * per];
                            let visibility = if per == 3 { v[2] } else { 2.0 };
                            if ![0.0, 1.0, 2.0].contains(&visibility) {
                                return Err(FormatError::invalid(
                                    &it.labels,
                                    at(),
                                    format!(
                                        "the visibility '{visibility}' of point {} is not 0, 1 or 2",
                                        p + 1
                                    ),
                                ));
                            }
                            shape.elements.push(Shape {
                                kind: ShapeType::Points,
                                label_id: point.id,
                                occluded: visibility == 1.0,
                                outside: visibility == 0.0,
                                points: vec![v[0] * w, v[1] * h],
                                ..element.clone()
                            });
                        }
                    }
                }
                match track {
                    None => out.shapes.push(shape),
                    Some(t) => {
                        let i = *track_of.entry(t).or_insert_with(|| {
                            tracks.push((t, Vec::new()));
                            tracks.len() - 1
                        });
                        if tracks[i]
                            .1
                            .first()
                            .is_some_and(|p| p.shape.label_id != label_id)
                        {
                            return Err(FormatError::invalid(
                                &it.labels,
                                at(),
                                format!("track {t} has shapes of two labels"),
                            ));
                        }
                        tracks[i].1.push(TrackPart {
                            frame: rel,
                            shape,
                            file: it.labels.clone(),
                            line: k + 1,
                        });
                    }
                }
            }
        }
        for (t, parts) in tracks {
            out.tracks.push(build_track(t, parts, last_frame)?);
        }
        Ok(out)
    }
}

/// A track from its shapes, each a keyframe (CVAT's `SetKeyframeForEveryTrackShape`), with
/// CVAT's `outside` shape after each gap and after the last shape when the task goes on.
fn build_track(id: i64, mut parts: Vec<TrackPart>, last_frame: u64) -> Result<Track, FormatError> {
    parts.sort_by_key(|p| p.frame);
    if let Some(w) = parts.windows(2).find(|w| w[0].frame == w[1].frame) {
        return Err(FormatError::invalid(
            &w[1].file,
            format!("line {}", w[1].line),
            format!("two shapes of track {id} are on frame {}", w[1].frame),
        ));
    }
    let first = &parts[0].shape;
    let mut track = Track {
        id: None,
        frame: parts[0].frame,
        label_id: first.label_id,
        group: 0,
        source: "file".into(),
        attributes: vec![],
        shapes: Vec::with_capacity(parts.len() + 1),
        elements: Vec::new(),
    };
    let tracked = |s: &Shape, frame: u64, outside: bool| TrackedShape {
        id: None,
        kind: s.kind,
        frame,
        occluded: s.occluded,
        outside,
        z_order: s.z_order,
        rotation: s.rotation,
        points: s.points.clone(),
        attributes: vec![],
    };
    // Element tracks (skeletons): one per point label, in the skeleton's point order.
    let element_labels: Vec<i64> = first.elements.iter().map(|e| e.label_id).collect();
    let mut elements: Vec<Vec<TrackedShape>> = vec![Vec::new(); element_labels.len()];
    let close = |shapes: &mut Vec<TrackedShape>, frames: &[u64]| {
        // `shapes[k]` is on `frames[k]`; outside after gaps and after the last shape.
        let mut out = Vec::with_capacity(shapes.len() + 1);
        let mut prev: Option<(u64, bool)> = None;
        for (s, &f) in shapes.drain(..).zip(frames) {
            if let Some((pf, pv)) = prev {
                if pv && pf + 1 < f {
                    let mut o: TrackedShape = out.last().cloned().unwrap_or_else(|| s.clone());
                    o.frame = pf + 1;
                    o.outside = true;
                    out.push(o);
                } else if !pv && s.outside {
                    prev = Some((f, false));
                    continue;
                }
            }
            prev = Some((f, !s.outside));
            out.push(s);
        }
        if let Some((pf, true)) = prev {
            if pf < last_frame {
                let mut o = out.last().cloned().expect("a shape");
                o.frame = pf + 1;
                o.outside = true;
                out.push(o);
            }
        }
        *shapes = out;
    };
    let frames: Vec<u64> = parts.iter().map(|p| p.frame).collect();
    for p in &parts {
        track.shapes.push(tracked(&p.shape, p.frame, false));
        for (k, label) in element_labels.iter().enumerate() {
            if let Some(e) = p.shape.elements.iter().find(|e| e.label_id == *label) {
                elements[k].push(tracked(e, p.frame, e.outside));
            }
        }
    }
    close(&mut track.shapes, &frames);
    for (label, mut shapes) in element_labels.into_iter().zip(elements) {
        close(&mut shapes, &frames);
        track.elements.push(Track {
            id: None,
            frame: track.frame,
            label_id: label,
            group: 0,
            source: "file".into(),
            attributes: vec![],
            shapes,
            elements: Vec::new(),
        });
    }
    Ok(track)
}
