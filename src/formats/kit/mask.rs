//! Mask tools: COCO RLE (compressed strings, CVAT mask shapes ↔ COCO counts), a rasteriser for
//! polygons, boxes and ellipses with pycocotools' `rleFrPoly` semantics, a [`Bitmap`] with
//! area/bbox/RLE, the merge of instance masks into an index map for segmentation formats, the
//! VOC colour map ([`voc_color`]) and masks back to polygons ([`mask_to_polygons`], CVAT's
//! `conv_mask_to_poly`).
//!
//! Conventions: COCO RLE counts are column-major over the full `h`×`w` image and start with a
//! run of zeros; CVAT mask points are row-major runs over the box followed by
//! `left, top, right, bottom`. [`Bitmap`] stores its pixels **column-major** (index
//! `x * height + y`), the order of COCO RLE.

/// Errors of the mask tools.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// A compressed RLE string stops inside a count.
    #[error("the compressed RLE string ends in the middle of a count")]
    TruncatedString,
    /// A compressed RLE string holds a byte outside COCO's alphabet (or a too long count).
    #[error("the compressed RLE string has a bad character at {0}")]
    BadCharacter(usize),
    /// A compressed RLE string decodes to a negative count.
    #[error("the compressed RLE string decodes to a negative count")]
    NegativeCount,
    /// `h * w` overflows.
    #[error("the mask size {h}x{w} is too large")]
    TooLarge { h: u64, w: u64 },
    /// The counts cover more pixels than the image has.
    #[error("the RLE counts cover more than the {h}x{w} mask")]
    CountsOverflow { h: u64, w: u64 },
}

// ------------------------------------------------------------------------------------------------
// COCO RLE strings and CVAT masks (copied from formats/datumaro.rs)

/// Encodes COCO RLE counts as COCO's compressed string (`pycocotools` `rleToString`).
pub fn coco_counts_to_string(counts: &[u64]) -> String {
    let mut s = String::new();
    for (i, &c) in counts.iter().enumerate() {
        let mut x = c as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        loop {
            let mut c = (x & 0x1f) as u8;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            s.push((c + 48) as char);
            if !more {
                break;
            }
        }
    }
    s
}

/// Decodes COCO's compressed RLE string (`pycocotools` `rleFrString`).
pub fn coco_counts_from_string(s: &str) -> Result<Vec<u64>, MaskError> {
    let b = s.as_bytes();
    let mut out: Vec<u64> = Vec::new();
    let mut p = 0;
    while p < b.len() {
        let mut x: i64 = 0;
        let mut k = 0;
        loop {
            let Some(&ch) = b.get(p) else {
                return Err(MaskError::TruncatedString);
            };
            if !(48..48 + 64).contains(&ch) || k > 12 {
                return Err(MaskError::BadCharacter(p));
            }
            let c = (ch - 48) as i64;
            x |= (c & 0x1f) << (5 * k);
            let more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more {
                if c & 0x10 != 0 {
                    x |= -1i64 << (5 * k);
                }
                break;
            }
        }
        let m = out.len();
        if m > 2 {
            x += out[m - 2] as i64;
        }
        if x < 0 {
            return Err(MaskError::NegativeCount);
        }
        out.push(x as u64);
    }
    Ok(out)
}

/// Run-length accumulator starting with a run of zeros (COCO and CVAT both do).
pub struct Runs {
    counts: Vec<u64>,
    cur: bool,
    n: u64,
}

impl Default for Runs {
    fn default() -> Self {
        Runs::new()
    }
}

impl Runs {
    /// An empty accumulator (current value: zero).
    pub fn new() -> Runs {
        Runs {
            counts: Vec::new(),
            cur: false,
            n: 0,
        }
    }
    /// Appends `n` pixels of value `v`.
    pub fn push(&mut self, v: bool, n: u64) {
        if n == 0 {
            return;
        }
        if v != self.cur {
            self.counts.push(self.n);
            self.cur = v;
            self.n = 0;
        }
        self.n += n;
    }
    /// The counts, the last run included.
    pub fn finish(mut self) -> Vec<u64> {
        self.counts.push(self.n);
        self.counts
    }
}

/// CVAT mask points (RLE over the box, row-major, then `left, top, right, bottom`) → COCO RLE
/// counts over the full `h`×`w` image (column-major). Pixels outside the image are dropped.
pub fn cvat_mask_to_coco(points: &[f64], h: u32, w: u32) -> Vec<u64> {
    let (h, w) = (h as i64, w as i64);
    let mut runs = Runs::new();
    if points.len() < 4 {
        runs.push(false, (h * w) as u64);
        return runs.finish();
    }
    let (rle, bbox) = points.split_at(points.len() - 4);
    let (left, top, right) = (
        bbox[0].trunc() as i64,
        bbox[1].trunc() as i64,
        bbox[2].trunc() as i64,
    );
    let bw = (right - left + 1).max(0);
    // Box pixels, row-major.
    let mut bits: Vec<bool> = Vec::new();
    let mut v = false;
    for c in rle {
        let c = c.trunc().max(0.0) as usize;
        bits.extend(std::iter::repeat_n(v, c));
        v = !v;
    }
    let bh = if bw > 0 {
        (bits.len() as i64 + bw - 1) / bw
    } else {
        0
    };
    let bit = |x: i64, y: i64| -> bool {
        let (bx, by) = (x - left, y - top);
        if bx < 0 || by < 0 || bx >= bw || by >= bh {
            return false;
        }
        bits.get((by * bw + bx) as usize).copied().unwrap_or(false)
    };
    for x in 0..w {
        if x < left || x > right {
            runs.push(false, h as u64);
            continue;
        }
        for y in 0..h {
            runs.push(bit(x, y), 1);
        }
    }
    runs.finish()
}

/// COCO RLE counts over an `h`×`w` image (column-major) → CVAT mask points over the tight box,
/// or `None` for an empty mask.
pub fn coco_to_cvat_mask(counts: &[u64], h: u64, w: u64) -> Result<Option<Vec<f64>>, MaskError> {
    let total = h.checked_mul(w).ok_or(MaskError::TooLarge { h, w })?;
    let mut ones: Vec<(u64, u64)> = Vec::new(); // [start, end)
    let mut pos: u64 = 0;
    let mut v = false;
    for &c in counts {
        let end = pos
            .checked_add(c)
            .filter(|&e| e <= total)
            .ok_or(MaskError::CountsOverflow { h, w })?;
        if v && c > 0 {
            ones.push((pos, end));
        }
        pos = end;
        v = !v;
    }
    if ones.is_empty() {
        return Ok(None);
    }
    let left = ones[0].0 / h;
    let right = (ones[ones.len() - 1].1 - 1) / h;
    let (mut top, mut bottom) = (u64::MAX, 0);
    for &(s, e) in &ones {
        let (xs, xe) = (s / h, (e - 1) / h);
        if xs != xe {
            top = 0;
            bottom = h - 1;
        } else {
            top = top.min(s % h);
            bottom = bottom.max((e - 1) % h);
        }
    }
    // One-intervals of rows per column of the box.
    let bw = (right - left + 1) as usize;
    let mut cols: Vec<Vec<(u64, u64)>> = vec![Vec::new(); bw];
    for &(s, e) in &ones {
        let (xs, xe) = (s / h, (e - 1) / h);
        for x in xs..=xe {
            let y0 = if x == xs { s % h } else { 0 };
            let y1 = if x == xe { (e - 1) % h } else { h - 1 };
            cols[(x - left) as usize].push((y0, y1));
        }
    }
    let mut ptr = vec![0usize; bw];
    let mut runs = Runs::new();
    for y in top..=bottom {
        for (xi, col) in cols.iter().enumerate() {
            let p = &mut ptr[xi];
            while *p < col.len() && col[*p].1 < y {
                *p += 1;
            }
            runs.push(*p < col.len() && col[*p].0 <= y, 1);
        }
    }
    let mut points: Vec<f64> = runs.finish().into_iter().map(|c| c as f64).collect();
    points.extend([left as f64, top as f64, right as f64, bottom as f64]);
    Ok(Some(points))
}

// ------------------------------------------------------------------------------------------------
// Rasteriser (pycocotools rleFrPoly)

/// pycocotools' `rleFrPoly`: COCO RLE counts of polygon `xy` (`x0, y0, x1, y1, …`) over an
/// `h`×`w` image, exactly as `mask.frPyObjects([xy], h, w)` computes them for a polygon of more
/// than two points (pycocotools treats a 4-number list as a box `[x, y, w, h]` instead; use
/// [`box_counts`] for that). Coordinates are upsampled by 5, the boundary is traced with C's
/// truncating `(int)(v + .5)` casts, and pixels are filled where the traced y-boundary crosses
/// pixel centres. An odd trailing coordinate is ignored.
pub fn polygon_counts(xy: &[f64], h: u32, w: u32) -> Vec<u64> {
    let k = xy.len() / 2;
    let (hh, ww) = (h as i64, w as i64);
    if k == 0 {
        let mut r = Runs::new();
        r.push(false, (hh * ww) as u64);
        return r.finish();
    }
    let scale = 5.0f64;
    // C `(int)` casts truncate toward zero.
    let cint = |v: f64| -> i64 { v as i32 as i64 };
    let mut x: Vec<i64> = (0..k).map(|j| cint(scale * xy[2 * j] + 0.5)).collect();
    let mut y: Vec<i64> = (0..k).map(|j| cint(scale * xy[2 * j + 1] + 0.5)).collect();
    x.push(x[0]);
    y.push(y[0]);
    let mut u: Vec<i64> = Vec::new();
    let mut v: Vec<i64> = Vec::new();
    for j in 0..k {
        let (mut xs, mut xe, mut ys, mut ye) = (x[j], x[j + 1], y[j], y[j + 1]);
        let dx = (xe - xs).abs();
        let dy = (ys - ye).abs();
        let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if flip {
            std::mem::swap(&mut xs, &mut xe);
            std::mem::swap(&mut ys, &mut ye);
        }
        let s = if dx >= dy {
            (ye - ys) as f64 / dx as f64
        } else {
            (xe - xs) as f64 / dy as f64
        };
        if dx >= dy {
            for d in 0..=dx {
                let t = if flip { dx - d } else { d };
                u.push(t + xs);
                v.push(cint(ys as f64 + s * t as f64 + 0.5));
            }
        } else {
            for d in 0..=dy {
                let t = if flip { dy - d } else { d };
                v.push(t + ys);
                u.push(cint(xs as f64 + s * t as f64 + 0.5));
            }
        }
    }
    // Points along the y-boundary, downsampled.
    let mut a: Vec<u64> = Vec::new();
    for j in 1..u.len() {
        if u[j] == u[j - 1] {
            continue;
        }
        let xd = (if u[j] < u[j - 1] { u[j] } else { u[j] - 1 }) as f64;
        let xd = (xd + 0.5) / scale - 0.5;
        if xd.floor() != xd || xd < 0.0 || xd > (ww - 1) as f64 {
            continue;
        }
        let yd = (if v[j] < v[j - 1] { v[j] } else { v[j - 1] }) as f64;
        let yd = ((yd + 0.5) / scale - 0.5).clamp(0.0, hh as f64).ceil();
        a.push((xd as i64 * hh + yd as i64) as u64);
    }
    a.push((hh * ww) as u64);
    a.sort_unstable();
    let mut p = 0u64;
    for t in a.iter_mut() {
        let cur = *t;
        *t -= p;
        p = cur;
    }
    let mut b: Vec<u64> = Vec::with_capacity(a.len());
    let mut j = 0;
    b.push(a[j]);
    j += 1;
    while j < a.len() {
        if a[j] > 0 {
            b.push(a[j]);
            j += 1;
        } else {
            j += 1;
            if j < a.len() {
                *b.last_mut().expect("b is not empty") += a[j];
                j += 1;
            }
        }
    }
    b
}

/// Datumaro's coordinate storage: every `Shape` keeps its points as
/// `np.array(points, dtype=float32).round(2)`, read back as doubles. Polygons, boxes and
/// ellipses on a Datumaro path (`polygons_to_masks`, `boxes_to_masks`, COCO area) are rasterised
/// from these values, so `0.3` becomes `0.30000001192092896` and `12.4999` becomes `12.5`.
pub fn datumaro_coord(v: f64) -> f64 {
    let x = v as f32 * 100.0f32;
    (x.round_ties_even() / 100.0f32) as f64
}

/// [`polygon_counts`] of a Datumaro `Polygon(xy)`: coordinates through [`datumaro_coord`] first.
pub fn dm_polygon_counts(xy: &[f64], h: u32, w: u32) -> Vec<u64> {
    let p: Vec<f64> = xy.iter().map(|&v| datumaro_coord(v)).collect();
    polygon_counts(&p, h, w)
}

/// Datumaro's box → mask (`boxes_to_masks`): `Bbox(x, y, w, h).as_polygon()` through
/// [`polygon_counts`]. As Datumaro does: the points `x, y, x+w, y+h` are stored through
/// [`datumaro_coord`], the width is taken back as `x2 - x1` and the corners are `x1 + w`.
pub fn box_counts(x: f64, y: f64, bw: f64, bh: f64, h: u32, w: u32) -> Vec<u64> {
    let (x1, y1) = (datumaro_coord(x), datumaro_coord(y));
    let (sx2, sy2) = (datumaro_coord(x + bw), datumaro_coord(y + bh));
    let (x2, y2) = (x1 + (sx2 - x1), y1 + (sy2 - y1));
    let (x, y) = (x1, y1);
    polygon_counts(&[x, y, x2, y, x2, y2, x, y2], h, w)
}

/// The 720-point polygon of Datumaro's `Ellipse(x1, y1, x2, y2).as_polygon()`
/// (`theta = linspace(0, 2π, 720)`, `c + r·(cos θ, sin θ)`), axis-aligned.
/// Coordinates go through [`datumaro_coord`] first, as `Ellipse` stores them.
pub fn ellipse_polygon(x1: f64, y1: f64, x2: f64, y2: f64) -> Vec<f64> {
    const N: usize = 720;
    let [x1, y1, x2, y2] = [x1, y1, x2, y2].map(datumaro_coord);
    let (cx, cy) = (0.5 * (x1 + x2), 0.5 * (y1 + y2));
    let (l1, l2) = (0.5 * (x2 - x1), 0.5 * (y2 - y1));
    let tau = 2.0 * std::f64::consts::PI;
    let step = tau / (N - 1) as f64;
    let mut out = Vec::with_capacity(2 * N);
    for i in 0..N {
        let t = if i == N - 1 { tau } else { i as f64 * step };
        out.push(cx + l1 * t.cos());
        out.push(cy + l2 * t.sin());
    }
    out
}

/// Datumaro's ellipse → mask (`polygons_to_masks` on an `Ellipse`): [`ellipse_polygon`] through
/// [`polygon_counts`]. CVAT's own `EllipsesToMasks` (COCO exporters: `cv2.ellipse` with rounded
/// centre/axes and a rotation) is a different raster and is **not** this function.
pub fn ellipse_counts(x1: f64, y1: f64, x2: f64, y2: f64, h: u32, w: u32) -> Vec<u64> {
    polygon_counts(&ellipse_polygon(x1, y1, x2, y2), h, w)
}

// ------------------------------------------------------------------------------------------------
// Bitmap and index maps

/// A binary mask of `width`×`height` pixels, stored column-major (`bits[x * height + y]`), the
/// order of COCO RLE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    width: u32,
    height: u32,
    bits: Vec<bool>,
}

impl Bitmap {
    /// An all-zero mask.
    pub fn new(width: u32, height: u32) -> Bitmap {
        Bitmap {
            width,
            height,
            bits: vec![false; width as usize * height as usize],
        }
    }

    /// Decodes COCO RLE counts over `height`×`width` (counts past the end are an error; missing
    /// trailing pixels stay zero).
    pub fn from_counts(counts: &[u64], width: u32, height: u32) -> Result<Bitmap, MaskError> {
        let (h, w) = (height as u64, width as u64);
        let total = h.checked_mul(w).ok_or(MaskError::TooLarge { h, w })?;
        let mut m = Bitmap::new(width, height);
        let (mut pos, mut v) = (0u64, false);
        for &c in counts {
            let end = pos
                .checked_add(c)
                .filter(|&e| e <= total)
                .ok_or(MaskError::CountsOverflow { h, w })?;
            if v {
                m.bits[pos as usize..end as usize].fill(true);
            }
            pos = end;
            v = !v;
        }
        Ok(m)
    }

    /// Rasterises a polygon ([`polygon_counts`]).
    pub fn polygon(xy: &[f64], width: u32, height: u32) -> Bitmap {
        Bitmap::from_counts(&polygon_counts(xy, height, width), width, height)
            .expect("rleFrPoly counts cover the image")
    }

    /// Image width.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Image height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The pixels, column-major.
    pub fn bits(&self) -> &[bool] {
        &self.bits
    }
    /// Pixel `(x, y)`; false outside the image.
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width
            && y < self.height
            && self.bits[x as usize * self.height as usize + y as usize]
    }
    /// Sets pixel `(x, y)` (ignored outside the image).
    pub fn set(&mut self, x: u32, y: u32, v: bool) {
        if x < self.width && y < self.height {
            self.bits[x as usize * self.height as usize + y as usize] = v;
        }
    }

    /// COCO RLE counts (column-major, starting with zeros).
    pub fn to_counts(&self) -> Vec<u64> {
        let mut r = Runs::new();
        for &b in &self.bits {
            r.push(b, 1);
        }
        r.finish()
    }

    /// Number of set pixels (`pycocotools.mask.area`).
    pub fn area(&self) -> u64 {
        self.bits.iter().filter(|&&b| b).count() as u64
    }

    /// `[x, y, w, h]` of the set pixels, as `pycocotools.mask.toBbox` (all zeros when empty).
    pub fn bbox(&self) -> [u32; 4] {
        let h = self.height as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for (i, _) in self.bits.iter().enumerate().filter(|(_, &b)| b) {
            let (x, y) = ((i / h) as u32, (i % h) as u32);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 == u32::MAX {
            return [0; 4];
        }
        [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
    }
}

/// A per-pixel index map (label or instance index), row-major (`values[y * width + x]`), the
/// order PNG rows are written in; 0 is background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexMap {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Row-major indices.
    pub values: Vec<u16>,
}

impl IndexMap {
    /// All background.
    pub fn new(width: u32, height: u32) -> IndexMap {
        IndexMap {
            width,
            height,
            values: vec![0; width as usize * height as usize],
        }
    }

    /// Paints `mask` with `index`; later paints win (call in z-order, bottom first).
    /// A mask of another size is painted over the common area.
    pub fn paint(&mut self, mask: &Bitmap, index: u16) {
        let (w, h) = (
            self.width.min(mask.width) as usize,
            self.height.min(mask.height) as usize,
        );
        let mh = mask.height as usize;
        for x in 0..w {
            let col = &mask.bits[x * mh..x * mh + h];
            for (y, _) in col.iter().enumerate().filter(|(_, &b)| b) {
                self.values[y * self.width as usize + x] = index;
            }
        }
    }

    /// Merges instance masks `(mask, index)` given bottom to top: later masks win.
    pub fn merge<'a>(
        width: u32,
        height: u32,
        masks: impl IntoIterator<Item = (&'a Bitmap, u16)>,
    ) -> IndexMap {
        let mut m = IndexMap::new(width, height);
        for (mask, index) in masks {
            m.paint(mask, index);
        }
        m
    }

    /// The values as 8-bit indices (for palette PNGs); `None` if one exceeds 255.
    pub fn to_u8(&self) -> Option<Vec<u8>> {
        self.values.iter().map(|&v| u8::try_from(v).ok()).collect()
    }
}

// ------------------------------------------------------------------------------------------------
// Colour maps

/// Colour `index` of the PASCAL VOC colour map (Datumaro's `generate_colormap`: the bits of the
/// index spread over the channels, most significant first). `voc_color(0)` is black; the
/// instance masks of VOC (`VocInstColormap`) use indices 0..=255, the class masks of a label map
/// without colours index `i` for label `i`.
pub fn voc_color(index: u8) -> [u8; 3] {
    let mut c = [0u8; 3];
    let mut i = index;
    for j in (0..8).rev() {
        for (k, ch) in c.iter_mut().enumerate() {
            *ch |= ((i >> k) & 1) << j;
        }
        i >>= 3;
    }
    c
}

mod contours;
pub use contours::mask_to_polygons;

#[cfg(test)]
mod tests;
