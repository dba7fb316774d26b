//! The segmentation part both formats share: shapes of a frame rasterised and merged into class
//! and instance PNGs (`SegmentationClass/`, `SegmentationObject/`) as Datumaro's VOC converter
//! writes them, and those PNGs read back into labelled instances, then polygons.

use std::collections::HashMap;

use crate::annotations::ShapeType;
use crate::codec::{encode_png, paint_indices, Raster, RgbImage};
use crate::formats::kit::dataset::ShapeView;
use crate::formats::kit::mask::{
    box_counts, cvat_mask_to_coco, dm_polygon_counts, ellipse_counts, mask_to_polygons, voc_color,
    Bitmap, IndexMap,
};
use crate::formats::FormatError;

pub(super) const CLASS_DIR: &str = "SegmentationClass";
pub(super) const OBJECT_DIR: &str = "SegmentationObject";

/// A frame's class and instance PNGs.
pub(super) type Pngs = (Vec<u8>, Vec<u8>);

/// Which shapes become masks before the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SegMode {
    /// Segmentation mask: rotated boxes → polygons, polygons, boxes and ellipses → masks, then
    /// `merge_instance_segments` (one instance per group).
    All,
    /// PASCAL VOC: masks, and ellipses as masks; each its own instance.
    MasksOnly,
}

/// One instance: its pixels, class index and z-order.
struct Instance {
    bits: Bitmap,
    class: usize,
    z: i64,
}

/// CVAT's `RotatedBoxesToPolygons`: the box's corners turned about its centre.
fn rotated_box(p: &[f64], degrees: f64) -> [f64; 8] {
    let (x0, y0, x1, y1) = (p[0], p[1], p[2], p[3]);
    let (cx, cy) = (x0 + (x1 - x0) / 2.0, y0 + (y1 - y0) / 2.0);
    let (s, c) = degrees.to_radians().sin_cos();
    let mut out = [0.0; 8];
    for (k, (x, y)) in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        .into_iter()
        .enumerate()
    {
        let (dx, dy) = (x - cx, y - cy);
        out[2 * k] = dx * c - dy * s + cx;
        out[2 * k + 1] = dx * s + dy * c + cy;
    }
    out
}

/// The rasterised pixels of a shape (`None` for what is not a segment in `mode`).
fn shape_counts(s: &ShapeView<'_>, mode: SegMode, w: u32, h: u32) -> Option<Vec<u64>> {
    let p = s.points;
    match (s.kind, mode) {
        (ShapeType::Mask, _) if p.len() >= 5 => Some(cvat_mask_to_coco(p, h, w)),
        (ShapeType::Ellipse, _) if p.len() >= 4 => {
            // CVAT (cx, cy, rx point, ry point) → Datumaro's Ellipse(x1, y1, x2, y2).
            let (cx, cy) = (p[0], p[1]);
            let (rx, ry) = ((p[2] - cx).abs(), (cy - p[3]).abs());
            Some(ellipse_counts(cx - rx, cy - ry, cx + rx, cy + ry, h, w))
        }
        (ShapeType::Polygon, SegMode::All) if p.len() >= 6 => Some(dm_polygon_counts(p, h, w)),
        (ShapeType::Rectangle, SegMode::All) if p.len() >= 4 => {
            if s.rotation.rem_euclid(360.0) != 0.0 {
                Some(dm_polygon_counts(&rotated_box(p, s.rotation), h, w))
            } else {
                Some(box_counts(p[0], p[1], p[2] - p[0], p[3] - p[1], h, w))
            }
        }
        _ => None,
    }
}

/// The class and instance PNGs of one frame (RGB, painted as Datumaro's `paint_mask` does), or
/// `None` when the frame has no segment. `class_of(label_id)` is the class index of a label.
pub(super) fn frame_pngs(
    shapes: &[ShapeView<'_>],
    mode: SegMode,
    (w, h): (u32, u32),
    class_of: &(dyn Fn(i64) -> usize + Sync),
    palette: &[[u8; 3]],
) -> Result<Option<Pngs>, String> {
    if w == 0 || h == 0 {
        return Ok(None);
    }
    // Segments in annotation order; rotated boxes are moved to the end (CVAT's transform
    // removes and appends them).
    let mut segs: Vec<(u64, Instance)> = Vec::new();
    let mut moved: Vec<(u64, Instance)> = Vec::new();
    for s in shapes {
        let Some(counts) = shape_counts(s, mode, w, h) else {
            continue;
        };
        let bits = Bitmap::from_counts(&counts, w, h).map_err(|e| e.to_string())?;
        let inst = Instance {
            bits,
            class: class_of(s.label_id),
            z: s.z_order,
        };
        let group = if mode == SegMode::All { s.group } else { 0 };
        let rotated = mode == SegMode::All
            && s.kind == ShapeType::Rectangle
            && s.rotation.rem_euclid(360.0) != 0.0;
        if rotated {
            moved.push((group, inst));
        } else {
            segs.push((group, inst));
        }
    }
    segs.append(&mut moved);
    if segs.is_empty() {
        return Ok(None);
    }
    let mut instances: Vec<Instance> = Vec::new();
    if mode == SegMode::All {
        // merge_instance_segments: ungrouped segments one by one, then each group (by id) as
        // one mask that takes the label and z-order of its largest member.
        segs.sort_by_key(|(g, _)| *g);
        let mut it = segs.into_iter().peekable();
        while let Some((g, first)) = it.next() {
            if g == 0 {
                instances.push(first);
                continue;
            }
            let mut members = vec![first];
            while it.peek().is_some_and(|(g2, _)| *g2 == g) {
                members.push(it.next().expect("peeked").1);
            }
            if members.len() == 1 {
                instances.extend(members);
                continue;
            }
            let areas: Vec<u64> = members.iter().map(|m| m.bits.area()).collect();
            let max = *areas.iter().max().expect("members");
            let leader = areas.iter().position(|&a| a == max).expect("max");
            let mut union = IndexMap::new(w, h);
            for m in &members {
                union.paint(&m.bits, 1);
            }
            let mut bits = Bitmap::new(w, h);
            for y in 0..h {
                for x in 0..w {
                    if union.values[(y * w + x) as usize] != 0 {
                        bits.set(x, y, true);
                    }
                }
            }
            let l = &members[leader];
            instances.push(Instance {
                bits,
                class: l.class,
                z: l.z,
            });
        }
    } else {
        instances = segs.into_iter().map(|(_, i)| i).collect();
    }
    // CompiledMask.from_instance_masks: by z-order (stable), instance i + 1; a mask of class 0
    // paints index 0.
    instances.sort_by_key(|i| i.z);
    let mut index = IndexMap::new(w, h);
    let mut class_by_index = vec![0usize; instances.len() + 1];
    for (k, inst) in instances.iter().enumerate() {
        let idx = if inst.class == 0 { 0 } else { k + 1 };
        class_by_index[k + 1] = inst.class;
        index.paint(&inst.bits, idx.min(u16::MAX as usize) as u16);
    }
    let class: Vec<u8> = index
        .values
        .iter()
        .map(|&i| class_by_index[i as usize] as u8)
        .collect();
    // Instance indices as uint8 (Datumaro's `paint_mask` casts them).
    let inst: Vec<u8> = index.values.iter().map(|&i| i as u8).collect();
    let inst_palette: Vec<[u8; 3]> = (0..=255u8).map(voc_color).collect();
    let png = |idx: &[u8], pal: &[[u8; 3]]| -> Result<Vec<u8>, String> {
        let rgb = RgbImage::new(w, h, paint_indices(idx, pal)).map_err(|e| e.to_string())?;
        encode_png(&Raster::Rgb(rgb)).map_err(|e| e.to_string())
    };
    Ok(Some((png(&class, palette)?, png(&inst, &inst_palette)?)))
}

// ------------------------------------------------------------------------------------------------
// Import

/// A decoded mask PNG: per pixel, a colour (RGB) or an index (one channel).
pub(super) struct MaskImage {
    pub width: u32,
    pub height: u32,
    /// RGB: `r << 16 | g << 8 | b`; one channel: the value.
    pub values: Vec<u32>,
    pub rgb: bool,
}

/// Decodes a PNG (palette, gray or RGB(A)) as OpenCV's `IMREAD_UNCHANGED` sees it.
pub(super) fn decode_png(bytes: &[u8], file: &str) -> Result<MaskImage, FormatError> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| FormatError::invalid(file, "", format!("not a readable image: {e}")))?;
    let (width, height) = (img.width(), img.height());
    use image::DynamicImage as D;
    let (values, rgb) = match img {
        D::ImageLuma8(g) => (g.into_raw().into_iter().map(u32::from).collect(), false),
        D::ImageLuma16(g) => (g.into_raw().into_iter().map(u32::from).collect(), false),
        other => {
            let c = other.to_rgb8();
            let v = c
                .pixels()
                .map(|p| (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]))
                .collect();
            (v, true)
        }
    };
    Ok(MaskImage {
        width,
        height,
        values,
        rgb,
    })
}

/// Maps an image to indices: colours through `inverse` (an undeclared colour is an error naming
/// the pixel), one-channel values as they are.
pub(super) fn to_indices(
    m: &MaskImage,
    inverse: &HashMap<u32, usize>,
    file: &str,
) -> Result<Vec<usize>, FormatError> {
    if !m.rgb {
        return Ok(m.values.iter().map(|&v| v as usize).collect());
    }
    let mut out = Vec::with_capacity(m.values.len());
    let mut last: Option<(u32, usize)> = None;
    for (i, &v) in m.values.iter().enumerate() {
        let idx = match last {
            Some((c, idx)) if c == v => idx,
            _ => {
                let idx = *inverse.get(&v).ok_or_else(|| {
                    let (x, y) = (i as u32 % m.width, i as u32 / m.width);
                    FormatError::invalid(
                        file,
                        format!("pixel ({x}, {y})"),
                        format!(
                            "the colour ({}, {}, {}) is not in the label map",
                            v >> 16,
                            (v >> 8) & 255,
                            v & 255
                        ),
                    )
                })?;
                last = Some((v, idx));
                idx
            }
        };
        out.push(idx);
    }
    Ok(out)
}

/// `r << 16 | g << 8 | b`.
pub(super) fn packed([r, g, b]: [u8; 3]) -> u32 {
    (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b)
}

/// The inverse of the instance colour map.
pub(super) fn instance_inverse() -> HashMap<u32, usize> {
    (0..=255u8)
        .map(|i| (packed(voc_color(i)), i as usize))
        .collect()
}

/// One mask read back: its class index, group (the instance id, 0 for class-only masks) and
/// polygons (CVAT's `conv_mask_to_poly`).
pub(super) struct ReadMask {
    pub class: usize,
    pub group: u64,
    pub polygons: Vec<Vec<f64>>,
}

/// Datumaro's VOC segmentation reader on decoded index maps: with an instance map, one mask
/// per instance id (its class: `CompiledMask.get_instance_labels`, the largest class id seen
/// with it); with only a class map, one mask per class value (background included). Masks
/// are turned into polygons.
pub(super) fn read_masks(
    class: Option<&[usize]>,
    inst: Option<&[usize]>,
    (w, h): (u32, u32),
) -> Vec<ReadMask> {
    let mut out = Vec::new();
    let n = (w as usize) * (h as usize);
    let polys = |keep: &dyn Fn(usize) -> bool, (x0, y0, x1, y1): (u32, u32, u32, u32)| {
        let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
        mask_to_polygons(
            cw,
            ch,
            |i| {
                let (x, y) = (x0 + i as u32 % cw, y0 + i as u32 / cw);
                keep((y * w + x) as usize)
            },
            (x0, y0),
            (w, h),
        )
    };
    // Per value: its bounding box (a table by value: one pass, no map lookups per pixel).
    let boxes = |vals: &[usize]| {
        let max = vals.iter().take(n).copied().max().unwrap_or(0);
        let mut b: Vec<Option<(u32, u32, u32, u32)>> = vec![None; max + 1];
        for (i, &v) in vals.iter().enumerate().take(n) {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let e = b[v].get_or_insert((x, y, x, y));
            e.0 = e.0.min(x);
            e.1 = e.1.min(y);
            e.2 = e.2.max(x);
            e.3 = e.3.max(y);
        }
        b
    };
    match (inst, class) {
        (Some(inst), class) => {
            let bb = boxes(inst);
            // Per instance id: the largest class id seen with it (get_instance_labels).
            let mut label_of: Vec<Option<usize>> = vec![None; bb.len()];
            for (i, &id) in inst.iter().enumerate().take(n) {
                if id == 0 {
                    continue;
                }
                let c = class.map_or(0, |c| c.get(i).copied().unwrap_or(0));
                let e = label_of[id].get_or_insert(c);
                *e = (*e).max(c);
            }
            // In the order of (class, instance), as Datumaro's dict of sorted keys.
            let mut ids: Vec<(usize, usize)> = label_of
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.map(|c| (c, i)))
                .collect();
            ids.sort_unstable();
            for (c, id) in ids {
                let b = bb[id].expect("a box per instance seen");
                out.push(ReadMask {
                    class: c,
                    group: id as u64,
                    polygons: polys(&|p| inst[p] == id, b),
                });
            }
        }
        (None, Some(class)) => {
            for (c, b) in boxes(class).into_iter().enumerate() {
                let Some(b) = b else { continue };
                out.push(ReadMask {
                    class: c,
                    group: 0,
                    polygons: polys(&|p| class[p] == c, b),
                });
            }
        }
        (None, None) => {}
    }
    out
}
