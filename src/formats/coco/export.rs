//! The COCO exports: `annotations/<task>_<subset>.json` (licenses, info, categories, images,
//! annotations, in the order and byte layout Datumaro's `dump_json_file` writes), images in
//! `images/<subset>/`. Annotations are rendered per frame on all cores and deflated as they go
//! ([`DeflatedEntry::write_items`]); ids are numbered from per-frame counts made first.

use std::io::Write;

use crate::annotations::ShapeType;
use crate::formats::datumaro::export::{Attrs, Exporter as DmAttrs, Scalar};
use crate::formats::kit::dataset::ShapeView;
use crate::formats::kit::images::save_images;
use crate::formats::kit::json::{put_f64, put_str, put_u64};
use crate::formats::kit::mask::{cvat_mask_to_coco, ellipse_counts, polygon_counts};
use crate::formats::kit::paths::with_image_ext;
use crate::formats::{
    DatasetFrame, DeflatedEntry, ExportOptions, FormatError, FrameAnnotations, FrameSource,
    TaskDataset, ZipSink,
};

use super::{Kind, RESERVED_ATTRIBUTES};

/// `licenses` and `info` as Datumaro writes them (empty), the start of every file.
const HEADER: &[u8] = br#"{"licenses":[{"name":"","id":0,"url":""}],"info":{"contributor":"","date_created":"","description":"","url":"","version":"","year":""},"categories":["#;

/// Python's `round(v, 2)` (correctly rounded through its decimal text, as `{:.2}` is).
pub(super) fn round2(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let mut buf = [0u8; 64];
    let mut w = &mut buf[..];
    if write!(w, "{v:.2}").is_err() {
        return v;
    }
    let n = 64 - w.len();
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(v)
}

/// What one shape is in an instance: a box, a polygon, or a mask (COCO RLE counts over the
/// image).
enum Geom<'v> {
    Box,
    Polygon(&'v [f64]),
    Mask(Vec<u64>),
}

/// A shape of an instance group, with what the group's leader and `bbox` need.
struct Part<'v> {
    view: ShapeView<'v>,
    geom: Geom<'v>,
    /// Datumaro's `get_area()`: box `w * h`, polygon (shoelace), mask pixels.
    area: f64,
    /// `[x, y, w, h]`.
    bbox: [f64; 4],
}

fn polygon_bbox(p: &[f64]) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for xy in p.chunks_exact(2) {
        x0 = x0.min(xy[0]);
        x1 = x1.max(xy[0]);
        y0 = y0.min(xy[1]);
        y1 = y1.max(xy[1]);
    }
    if x0 > x1 {
        return [0.0; 4];
    }
    [x0, y0, x1 - x0, y1 - y0]
}

fn shoelace(p: &[f64]) -> f64 {
    let n = p.len() / 2;
    let mut s = 0.0;
    for i in 0..n {
        let j = (i + 1) % n;
        s += p[2 * i] * p[2 * j + 1] - p[2 * j] * p[2 * i + 1];
    }
    (s / 2.0).abs()
}

/// Set pixels of COCO RLE counts (`pycocotools.mask.area`).
fn counts_area(counts: &[u64]) -> u64 {
    counts.iter().skip(1).step_by(2).sum()
}

/// `pycocotools.mask.toBbox` of counts over an image `h` pixels high.
fn counts_bbox(counts: &[u64], h: u64) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (u64::MAX, u64::MAX, 0, 0);
    let mut pos = 0u64;
    for (k, &c) in counts.iter().enumerate() {
        if k % 2 == 1 && c > 0 && h > 0 {
            let (s, e) = (pos, pos + c - 1);
            let (xs, xe) = (s / h, e / h);
            x0 = x0.min(xs);
            x1 = x1.max(xe);
            if xs != xe {
                y0 = 0;
                y1 = h - 1;
            } else {
                y0 = y0.min(s % h);
                y1 = y1.max(e % h);
            }
        }
        pos += c;
    }
    if x0 == u64::MAX {
        return [0.0; 4];
    }
    [
        x0 as f64,
        y0 as f64,
        (x1 - x0 + 1) as f64,
        (y1 - y0 + 1) as f64,
    ]
}

/// The runs of set pixels of counts, as `[start, end)`.
fn ones(counts: &[u64], out: &mut Vec<(u64, u64)>) {
    let mut pos = 0u64;
    for (k, &c) in counts.iter().enumerate() {
        if k % 2 == 1 && c > 0 {
            out.push((pos, pos + c));
        }
        pos += c;
    }
}

/// The union of masks given as counts over `total` pixels (`pycocotools.mask.merge`).
fn union(masks: &[Vec<u64>], total: u64) -> Vec<u64> {
    if masks.len() == 1 {
        return masks[0].clone();
    }
    let mut runs = Vec::new();
    for m in masks {
        ones(m, &mut runs);
    }
    runs.sort_unstable();
    let mut counts = Vec::with_capacity(2 * runs.len() + 1);
    let (mut pos, mut cur): (u64, Option<(u64, u64)>) = (0, None);
    let emit = |(s, e): (u64, u64), counts: &mut Vec<u64>, pos: &mut u64| {
        counts.push(s - *pos);
        counts.push(e - s);
        *pos = e;
    };
    for r in runs {
        cur = match cur {
            Some((s, e)) if r.0 <= e => Some((s, e.max(r.1))),
            Some(c) => {
                emit(c, &mut counts, &mut pos);
                Some(r)
            }
            None => Some(r),
        };
    }
    if let Some(c) = cur {
        emit(c, &mut counts, &mut pos);
    }
    counts.push(total.saturating_sub(pos));
    counts
}

/// Area of the union of masks.
fn union_area(masks: &[Vec<u64>]) -> u64 {
    if masks.len() == 1 {
        return counts_area(&masks[0]);
    }
    let mut runs = Vec::new();
    for m in masks {
        ones(m, &mut runs);
    }
    runs.sort_unstable();
    let (mut area, mut cur): (u64, Option<(u64, u64)>) = (0, None);
    for r in runs {
        cur = match cur {
            Some((s, e)) if r.0 <= e => Some((s, e.max(r.1))),
            Some((s, e)) => {
                area += e - s;
                Some(r)
            }
            None => Some(r),
        };
    }
    area + cur.map_or(0, |(s, e)| e - s)
}

/// Datumaro's `max_bbox`.
fn max_bbox<'a>(boxes: impl Iterator<Item = &'a [f64; 4]>) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let mut any = false;
    for b in boxes {
        any = true;
        x0 = x0.min(b[0]);
        y0 = y0.min(b[1]);
        x1 = x1.max(b[0] + b[2]);
        y1 = y1.max(b[1] + b[3]);
    }
    if !any {
        return [0.0; 4];
    }
    [x0, y0, x1 - x0, y1 - y0]
}

/// A COCO file being written: the task's labels (their attribute typing is Datumaro's, shared
/// with the Datumaro export), the kind of file.
pub(super) struct Writer<'a> {
    kind: Kind,
    attrs: DmAttrs<'a>,
    file: String,
}

/// One instance, ready to write.
struct Instance<'p, 'v> {
    leader: &'p Part<'v>,
    /// Polygons (rounded coordinates) or an RLE mask.
    polygons: Vec<&'p [f64]>,
    mask: Option<Vec<u64>>,
    bbox: [f64; 4],
}

impl<'a> Writer<'a> {
    pub(super) fn new(kind: Kind, ds: &'a TaskDataset<'_>, file: &str) -> Self {
        Writer {
            kind,
            attrs: DmAttrs::new(ds.labels, file),
            file: file.to_owned(),
        }
    }

    fn invalid(&self, f: &DatasetFrame, reason: impl Into<String>) -> FormatError {
        FormatError::invalid(
            &self.file,
            format!("frame {} ('{}')", f.rel, f.name),
            reason,
        )
    }

    /// `"categories":[…]` entries: every label (instances), or the labels without a parent
    /// (keypoints, with their skeleton's points and joints); ids are 1 + the label's position.
    pub(super) fn write_categories(&self, ds: &TaskDataset<'_>, out: &mut Vec<u8>) {
        let cats = self.attrs.categories();
        let mut first = true;
        for (idx, l) in cats.order.iter().enumerate() {
            if self.kind == Kind::Keypoints && l.parent.is_some() {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            put_u64(out, idx as u64 + 1);
            out.extend_from_slice(br#","name":"#);
            put_str(out, &l.name);
            out.extend_from_slice(br#","supercategory":"#);
            let parent = l.parent.and_then(|p| ds.labels.get(p));
            put_str(out, parent.map_or("", |p| p.name.as_str()));
            if self.kind == Kind::Keypoints {
                out.extend_from_slice(br#","keypoints":["#);
                if let Some(layout) = cats.skeletons.get(&l.id) {
                    for (i, id) in layout.sublabels.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        put_str(out, ds.labels.get(*id).map_or("", |c| c.name.as_str()));
                    }
                    out.extend_from_slice(br#"],"skeleton":["#);
                    for (i, [a, b]) in layout.joints.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.push(b'[');
                        put_f64_int(out, *a);
                        out.push(b',');
                        put_f64_int(out, *b);
                        out.push(b']');
                    }
                    out.push(b']');
                } else {
                    out.extend_from_slice(br#"],"skeleton":["#);
                    out.push(b']');
                }
            }
            out.push(b'}');
        }
    }

    /// The parts of the frame's instance shapes (boxes, polygons, masks; ellipses as masks),
    /// in the frame's order.
    fn parts<'v>(&self, shapes: &[ShapeView<'v>], f: &DatasetFrame) -> Vec<Part<'v>> {
        let (h, w) = (f.height, f.width);
        let mut parts = Vec::new();
        for s in shapes {
            let p = s.points;
            let (geom, area, bbox) = match s.kind {
                ShapeType::Rectangle if p.len() >= 4 => {
                    let b = [p[0], p[1], p[2] - p[0], p[3] - p[1]];
                    (Geom::Box, b[2] * b[3], b)
                }
                ShapeType::Polygon if p.len() >= 6 => {
                    (Geom::Polygon(p), shoelace(p), polygon_bbox(p))
                }
                ShapeType::Mask if p.len() >= 5 => {
                    let counts = cvat_mask_to_coco(p, h, w);
                    let (a, b) = (counts_area(&counts) as f64, counts_bbox(&counts, h.into()));
                    (Geom::Mask(counts), a, b)
                }
                ShapeType::Ellipse if p.len() >= 4 => {
                    let (cx, cy) = (p[0], p[1]);
                    let (rx, ry) = (p[2] - cx, cy - p[3]);
                    let counts = ellipse_counts(cx - rx, cy - ry, cx + rx, cy + ry, h, w);
                    let (a, b) = (counts_area(&counts) as f64, counts_bbox(&counts, h.into()));
                    (Geom::Mask(counts), a, b)
                }
                _ => unreachable!("only instance shapes (is_instance)"),
            };
            parts.push(Part {
                view: s.clone(),
                geom,
                area,
                bbox,
            });
        }
        parts
    }

    /// Whether the leader's `is_crowd` asks for a mask: a checkbox set, a number 1 (the docs
    /// allow both, spec §11.2), `None` when the label has no such attribute.
    fn is_crowd(&self, leader: &ShapeView<'_>) -> Option<bool> {
        let label = self
            .attrs
            .categories()
            .order
            .iter()
            .find(|l| l.id == leader.label_id)?;
        let (spec_id, spec) = label
            .attributes
            .iter()
            .find(|(_, s)| s.name == "is_crowd")?;
        let raw = leader
            .attributes
            .iter()
            .find(|a| a.spec_id == *spec_id)
            .map_or(spec.default_value.as_str(), |a| a.value.as_str())
            .trim();
        Some(raw.eq_ignore_ascii_case("true") || raw.parse::<f64>().is_ok_and(|v| v == 1.0))
    }

    /// Datumaro's `find_instance_parts` (`segmentation_mode=guess`) for one group.
    fn instance<'p, 'v>(&self, group: &[&'p Part<'v>], f: &DatasetFrame) -> Instance<'p, 'v> {
        let of = |k: fn(&Geom) -> bool| group.iter().copied().filter(move |p| k(&p.geom));
        let ordered: Vec<&Part> = of(|g| matches!(g, Geom::Box))
            .chain(of(|g| matches!(g, Geom::Polygon(_))))
            .chain(of(|g| matches!(g, Geom::Mask(_))))
            .collect();
        let mut leader = ordered[0];
        for p in &ordered[1..] {
            if p.area > leader.area {
                leader = p;
            }
        }
        let bbox = max_bbox(ordered.iter().map(|p| &p.bbox));
        let polygons: Vec<&[f64]> = ordered
            .iter()
            .filter_map(|p| match p.geom {
                Geom::Polygon(xy) => Some(xy),
                _ => None,
            })
            .collect();
        let masks: Vec<&Part> = of(|g| matches!(g, Geom::Mask(_))).collect();
        let use_masks = self.is_crowd(&leader.view).unwrap_or_else(|| {
            masks
                .iter()
                .any(|m| m.view.label_id == leader.view.label_id)
        });
        // A mask group that is not a crowd would be traced into polygons (OpenCV contours);
        // it is written as RLE instead (see the module docs).
        if !use_masks && masks.is_empty() {
            return Instance {
                leader,
                polygons,
                mask: None,
                bbox,
            };
        }
        let (h, w) = (f.height, f.width);
        let mut all: Vec<Vec<u64>> = Vec::new();
        for m in &masks {
            if let Geom::Mask(c) = &m.geom {
                all.push(c.clone());
            }
        }
        if !polygons.is_empty() && h > 0 && w > 0 {
            let rasters: Vec<Vec<u64>> = polygons
                .iter()
                .map(|xy| {
                    let r: Vec<f64> = xy.iter().map(|&v| round2(v)).collect();
                    polygon_counts(&r, h, w)
                })
                .collect();
            all.push(union(&rasters, u64::from(h) * u64::from(w)));
        }
        let mask = (!all.is_empty()).then(|| union(&all, u64::from(h) * u64::from(w)));
        Instance {
            leader,
            polygons: Vec::new(),
            mask,
            bbox,
        }
    }

    /// `attributes` of an annotation: the label's (defaults filled, typed as Datumaro types
    /// them) but `is_crowd` and `score`, then `occluded`, `rotation` (boxes, ellipses),
    /// `track_id` and `keyframe` (tracks). Nothing when empty.
    fn put_attributes(
        &self,
        out: &mut Vec<u8>,
        s: &ShapeView<'_>,
        f: &DatasetFrame,
    ) -> Result<(), FormatError> {
        let mut a = Attrs::default();
        self.attrs.shape_attrs(&mut a, s, f)?;
        if s.kind == ShapeType::Skeleton {
            // A skeleton is a keyframe where one of its points is (as the Datumaro export).
            let key = |v: &ShapeView<'_>| v.track.is_some() && v.keyframe;
            if key(s) || s.elements.iter().any(key) {
                a.set("keyframe", Scalar::Bool(true));
            }
        }
        a.items.retain(|(k, _)| !RESERVED_ATTRIBUTES.contains(k));
        if !a.items.is_empty() {
            out.extend_from_slice(br#","attributes":"#);
            a.write(out);
        }
        Ok(())
    }

    /// One annotation object, its keypoints (`keypoints` files) appended by `tail`.
    #[allow(clippy::too_many_arguments)]
    fn put_annotation(
        &self,
        out: &mut Vec<u8>,
        id: u64,
        image_id: u64,
        leader: &ShapeView<'_>,
        inst: Option<&Instance<'_, '_>>,
        bbox: [f64; 4],
        f: &DatasetFrame,
    ) -> Result<(), FormatError> {
        let Some(cat) = self.attrs.categories().index(leader.label_id) else {
            return Err(self.invalid(f, format!("unknown label id {}", leader.label_id)));
        };
        out.extend_from_slice(br#"{"id":"#);
        put_u64(out, id);
        out.extend_from_slice(br#","image_id":"#);
        put_u64(out, image_id);
        out.extend_from_slice(br#","category_id":"#);
        put_u64(out, cat as u64 + 1);
        out.extend_from_slice(br#","segmentation":"#);
        let (h, w) = (f.height, f.width);
        let mut crowd = false;
        let area = match inst {
            Some(Instance {
                mask: Some(counts), ..
            }) => {
                crowd = true;
                out.extend_from_slice(br#"{"counts":["#);
                for (i, c) in counts.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    put_u64(out, *c);
                }
                out.extend_from_slice(br#"],"size":["#);
                put_u64(out, h.into());
                out.push(b',');
                put_u64(out, w.into());
                out.extend_from_slice(b"]}");
                counts_area(counts) as f64
            }
            Some(Instance { polygons, .. }) if !polygons.is_empty() => {
                out.push(b'[');
                let mut rasters = Vec::with_capacity(polygons.len());
                for (i, xy) in polygons.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    let r: Vec<f64> = xy.iter().map(|&v| round2(v)).collect();
                    for (k, v) in r.iter().enumerate() {
                        if k > 0 {
                            out.push(b',');
                        }
                        put_f64(out, *v);
                    }
                    out.push(b']');
                    // Without an image size, Datumaro guesses it from the box.
                    let (ah, aw) = if h > 0 && w > 0 {
                        (h, w)
                    } else {
                        ((bbox[1] + bbox[3]) as u32, (bbox[0] + bbox[2]) as u32)
                    };
                    rasters.push(polygon_counts(&r, ah, aw));
                }
                out.push(b']');
                union_area(&rasters) as f64
            }
            _ => {
                out.extend_from_slice(b"[]");
                bbox[2] * bbox[3]
            }
        };
        out.extend_from_slice(br#","area":"#);
        put_f64(out, area);
        out.extend_from_slice(br#","bbox":["#);
        for (i, v) in bbox.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put_f64(out, round2(*v));
        }
        out.extend_from_slice(br#"],"iscrowd":"#);
        put_u64(out, u64::from(crowd));
        self.put_attributes(out, leader, f)?;
        Ok(())
    }

    /// `,"keypoints":[x,y,v,…],"num_keypoints":n` of a skeleton, in its layout's point order.
    fn put_keypoints(
        &self,
        out: &mut Vec<u8>,
        s: &ShapeView<'_>,
        f: &DatasetFrame,
    ) -> Result<(), FormatError> {
        let layout = self
            .attrs
            .categories()
            .skeletons
            .get(&s.label_id)
            .ok_or_else(|| self.invalid(f, "a skeleton without a skeleton label"))?;
        out.extend_from_slice(br#","keypoints":["#);
        let mut annotated = 0;
        for (i, id) in layout.sublabels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let (x, y, v) = match s.elements.iter().find(|e| e.label_id == *id) {
                None => (0.0, 0.0, 0),
                Some(e) => (
                    e.points.first().copied().unwrap_or(0.0),
                    e.points.get(1).copied().unwrap_or(0.0),
                    visibility(e),
                ),
            };
            if v != 0 {
                annotated += 1;
            }
            put_f64(out, x);
            out.push(b',');
            put_f64(out, y);
            out.push(b',');
            put_u64(out, v);
        }
        out.extend_from_slice(br#"],"num_keypoints":"#);
        put_u64(out, annotated);
        Ok(())
    }

    /// The frame's annotations (`count_only`: how many there would be, nothing written).
    fn frame(
        &self,
        out: &mut Vec<u8>,
        by_frame: &FrameAnnotations<'_>,
        i: usize,
        f: &DatasetFrame,
        (first_id, image_id): (u64, u64),
        count_only: bool,
    ) -> Result<u64, FormatError> {
        let objects = by_frame.shapes(i);
        let views: Vec<ShapeView<'_>> = objects.iter().map(|o| o.view()).collect();
        let is_instance = |s: &ShapeView<'_>| is_instance(s);
        // Datumaro's `find_instances`: group 0 one instance per shape, then the groups.
        let mut inst_groups: Vec<(u64, Vec<usize>)> = Vec::new();
        let mut order: Vec<usize> = (0..views.len())
            .filter(|&k| is_instance(&views[k]))
            .collect();
        order.sort_by_key(|&k| views[k].group);
        for k in order {
            let g = views[k].group;
            match inst_groups.last_mut() {
                Some((lg, v)) if g != 0 && *lg == g => v.push(k),
                _ => inst_groups.push((g, vec![k])),
            }
        }
        let skeleton_of = |g: u64| {
            (g != 0)
                .then(|| {
                    views
                        .iter()
                        .find(|s| s.kind == ShapeType::Skeleton && s.group == g)
                })
                .flatten()
        };
        let keypoints = self.kind == Kind::Keypoints;
        let mut id = first_id;
        let mut n = 0u64;
        // Before annotation `id` (the first of the file has no comma).
        let sep = |out: &mut Vec<u8>, id: u64, n: &mut u64| {
            if !count_only && id > 1 {
                out.push(b',');
            }
            *n += 1;
        };
        if keypoints {
            // Skeletons alone (group 0, or a group without boxes, polygons, masks) first.
            let mut solitary: Vec<&ShapeView<'_>> = views
                .iter()
                .filter(|s| s.kind == ShapeType::Skeleton)
                .filter(|s| {
                    s.group == 0 || !views.iter().any(|o| o.group == s.group && is_instance(o))
                })
                .collect();
            solitary.sort_by_key(|s| s.group);
            for s in solitary {
                sep(out, id, &mut n);
                if count_only {
                    continue;
                }
                let bbox = skeleton_bbox(s);
                self.put_annotation(out, id, image_id, s, None, bbox, f)?;
                self.put_keypoints(out, s, f)?;
                out.push(b'}');
                id += 1;
            }
        }
        if inst_groups.is_empty() {
            return Ok(n);
        }
        if count_only && !keypoints {
            return Ok(inst_groups.len() as u64);
        }
        let inst_views: Vec<ShapeView<'_>> =
            views.iter().filter(|s| is_instance(s)).cloned().collect();
        let index_of: Vec<usize> = (0..views.len())
            .scan(0usize, |c, k| {
                let r = *c;
                if is_instance(&views[k]) {
                    *c += 1;
                }
                Some(r)
            })
            .collect();
        let parts = if count_only {
            Vec::new()
        } else {
            self.parts(&inst_views, f)
        };
        for (g, members) in &inst_groups {
            let skeleton = if keypoints {
                match skeleton_of(*g) {
                    Some(s) => Some(s),
                    None => continue,
                }
            } else {
                None
            };
            sep(out, id, &mut n);
            if count_only {
                continue;
            }
            let group: Vec<&Part<'_>> = members.iter().map(|&k| &parts[index_of[k]]).collect();
            let inst = self.instance(&group, f);
            self.put_annotation(
                out,
                id,
                image_id,
                &inst.leader.view,
                Some(&inst),
                inst.bbox,
                f,
            )?;
            if let Some(s) = skeleton {
                self.put_keypoints(out, s, f)?;
            }
            out.push(b'}');
            id += 1;
        }
        Ok(n)
    }
}

/// Whether a shape is part of an instance: a box, polygon, mask or ellipse with its points.
fn is_instance(s: &ShapeView<'_>) -> bool {
    let n = s.points.len();
    match s.kind {
        ShapeType::Rectangle | ShapeType::Ellipse => n >= 4,
        ShapeType::Polygon => n >= 6,
        ShapeType::Mask => n >= 5,
        _ => false,
    }
}

/// COCO keypoint visibility: 0 outside (absent), 1 occluded (hidden), 2 visible.
fn visibility(e: &ShapeView<'_>) -> u64 {
    if e.outside {
        0
    } else if e.occluded {
        1
    } else {
        2
    }
}

/// A skeleton's box: around its points that are not outside.
fn skeleton_bbox(s: &ShapeView<'_>) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for e in s
        .elements
        .iter()
        .filter(|e| !e.outside && e.points.len() >= 2)
    {
        x0 = x0.min(e.points[0]);
        x1 = x1.max(e.points[0]);
        y0 = y0.min(e.points[1]);
        y1 = y1.max(e.points[1]);
    }
    if x0 > x1 {
        return [0.0; 4];
    }
    [x0, y0, x1 - x0, y1 - y0]
}

/// An integer as Python's `int` writes it.
fn put_f64_int(out: &mut Vec<u8>, v: i64) {
    crate::formats::kit::json::put_i64(out, v);
}

/// The subset the files are named after: the task's, `default` for none.
pub(super) fn subset_name<'d>(ds: &'d TaskDataset<'_>) -> Result<&'d str, FormatError> {
    let subset = if ds.subset.is_empty() {
        "default"
    } else {
        ds.subset.as_str()
    };
    if subset.contains(['/', '\\']) {
        return Err(FormatError::Unsupported(format!(
            "the subset name '{subset}' contains a path separator"
        )));
    }
    Ok(subset)
}

pub(super) fn export(
    kind: Kind,
    ds: &TaskDataset<'_>,
    opts: &ExportOptions,
    images: Option<&dyn FrameSource>,
    zip: &mut ZipSink<std::fs::File>,
    progress: &dyn Fn(f64),
) -> Result<(), FormatError> {
    let subset = subset_name(ds)?;
    let file = format!("annotations/{}_{subset}.json", kind.task());
    let writer = Writer::new(kind, ds, &file);

    // Images first (their extension comes from the frame source), then the annotations.
    let mut names: Vec<String> = ds.frames.iter().map(|f| f.name.clone()).collect();
    let image_share = if opts.save_images { 0.6 } else { 0.0 };
    if opts.save_images {
        save_images(
            ds,
            images,
            zip,
            |i, f, ext| {
                names[i] = with_image_ext(&f.name, ext);
                format!("images/{subset}/{}", names[i])
            },
            &|p| progress(image_share * p),
        )?;
    }

    let by_frame = FrameAnnotations::new(ds, |f| !f.outside);
    let n = ds.frames.len();
    // Annotation ids run 1.. over the file: each frame's count first (cheap, on all cores).
    let counts: Vec<u64> = {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .map(|i| writer.frame(&mut Vec::new(), &by_frame, i, &ds.frames[i], (1, 0), true))
            .collect::<Result<_, _>>()?
    };
    let mut first_ids = Vec::with_capacity(n);
    let mut next = 1u64;
    for c in &counts {
        first_ids.push(next);
        next += c;
    }

    let mut w = DeflatedEntry::new(&file);
    let mut head = HEADER.to_vec();
    writer.write_categories(ds, &mut head);
    head.extend_from_slice(br#"],"images":["#);
    w.write_all(&head)?;
    w.write_items(
        n,
        |i, out| {
            let f = &ds.frames[i];
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            put_u64(out, i as u64 + 1);
            out.extend_from_slice(br#","width":"#);
            put_u64(out, f.width.into());
            out.extend_from_slice(br#","height":"#);
            put_u64(out, f.height.into());
            out.extend_from_slice(br#","file_name":"#);
            put_str(out, &names[i]);
            out.extend_from_slice(
                br#","license":0,"flickr_url":"","coco_url":"","date_captured":0}"#,
            );
            Ok::<(), FormatError>(())
        },
        |_| {},
    )?;
    w.write_all(br#"],"annotations":["#)?;
    w.write_items(
        n,
        |i, out| {
            writer
                .frame(
                    out,
                    &by_frame,
                    i,
                    &ds.frames[i],
                    (first_ids[i], i as u64 + 1),
                    false,
                )
                .map(|_| ())
        },
        |done| progress(image_share + (1.0 - image_share) * done as f64 / n.max(1) as f64),
    )?;
    w.write_all(b"]}")?;
    w.finish(zip)?;
    progress(1.0);
    Ok(())
}
