//! Masks back to polygons, as CVAT's importers do it (`conv_mask_to_poly`, on by default):
//! Datumaro's `masks_to_polygons` transform, i.e. `mask_tools.mask_to_polygons(mask)`:
//! `cv2.findContours(mask, RETR_EXTERNAL, …)` (the outer border of every 8-connected region
//! that is not inside another region's hole), contours of at most two points dropped, each
//! closed by repeating its first point, and kept when `pycocotools` gives it an area of at least
//! one pixel (`area_threshold=1`; so a 1-pixel-high region yields nothing).
//!
//! The border is traced with Suzuki and Abe's border following (OpenCV's algorithm) and
//! compressed as `CHAIN_APPROX_SIMPLE` does (only the ends of straight runs kept). Datumaro asks
//! OpenCV for `CHAIN_APPROX_TC89_KCOS`, which drops a few more points on diagonal runs: the
//! polygons outline the same pixels, with a few more vertices.

use super::polygon_counts;

/// The 8 neighbour steps, counterclockwise on screen (y down): E, NE, N, NW, W, SW, S, SE.
const DIRS: [(i64, i64); 8] = [
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

const BG: u8 = 0;
const FG: u8 = 1;
const OUTSIDE: u8 = 2;
const SEEN: u8 = 3;

/// Datumaro's `mask_to_polygons`: the external contours of the set pixels of a `width`×`height`
/// row-major mask (`is_set(i)` for pixel `i = y * width + x`), offset by `(dx, dy)`, as closed
/// polygons `x0, y0, …, x0, y0` whose `pycocotools` area on an `image_h`×`image_w` image is at
/// least one pixel.
pub fn mask_to_polygons(
    width: u32,
    height: u32,
    is_set: impl Fn(usize) -> bool,
    (dx, dy): (u32, u32),
    (image_w, image_h): (u32, u32),
) -> Vec<Vec<f64>> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    // A one-pixel frame of background around the mask.
    let (pw, ph) = (w + 2, h + 2);
    let mut g = vec![BG; pw * ph];
    for y in 0..h {
        let row = &mut g[(y + 1) * pw + 1..(y + 1) * pw + 1 + w];
        for (x, v) in row.iter_mut().enumerate() {
            if is_set(y * w + x) {
                *v = FG;
            }
        }
    }
    // The background 4-connected to the frame is outside every region.
    let mut stack = vec![0usize];
    g[0] = OUTSIDE;
    while let Some(p) = stack.pop() {
        let (x, y) = (p % pw, p / pw);
        let mut visit = |q: usize| {
            if g[q] == BG {
                g[q] = OUTSIDE;
                stack.push(q);
            }
        };
        if x > 0 {
            visit(p - 1);
        }
        if x + 1 < pw {
            visit(p + 1);
        }
        if y > 0 {
            visit(p - pw);
        }
        if y + 1 < ph {
            visit(p + pw);
        }
    }
    let mut out = Vec::new();
    let mut contour: Vec<(i64, i64)> = Vec::new();
    for p in pw..pw * (ph - 1) {
        if g[p] != FG {
            continue;
        }
        // The first pixel of a region in raster order; the region is external when the
        // background above it is the outside.
        let external = g[p - pw] == OUTSIDE;
        if external {
            trace(&g, pw, p, &mut contour);
        }
        // Mark the region (8-connected) as seen.
        g[p] = SEEN;
        stack.push(p);
        while let Some(q) = stack.pop() {
            let (x, y) = ((q % pw) as i64, (q / pw) as i64);
            for (ddx, ddy) in DIRS {
                let r = ((y + ddy) as usize) * pw + (x + ddx) as usize;
                if g[r] == FG {
                    g[r] = SEEN;
                    stack.push(r);
                }
            }
        }
        if !external {
            continue;
        }
        let pts = simplify(&contour);
        if pts.len() <= 2 {
            continue;
        }
        let mut xy: Vec<f64> = Vec::with_capacity(2 * pts.len() + 2);
        for &(x, y) in &pts {
            xy.push((x - 1 + dx as i64).max(0) as f64);
            xy.push((y - 1 + dy as i64).max(0) as f64);
        }
        if pts.first() != pts.last() {
            xy.push(xy[0]);
            xy.push(xy[1]);
        }
        let counts = polygon_counts(&xy, image_h, image_w);
        let area: u64 = counts.iter().skip(1).step_by(2).sum();
        if area >= 1 {
            out.push(xy);
        }
    }
    out
}

/// Suzuki–Abe border following of the outer border starting at `start` (whose left neighbour
/// is background), into `out` as padded-grid coordinates.
fn trace(g: &[u8], pw: usize, start: usize, out: &mut Vec<(i64, i64)>) {
    out.clear();
    let fg = |x: i64, y: i64| {
        let v = g[y as usize * pw + x as usize];
        v == FG || v == SEEN
    };
    let s = ((start % pw) as i64, (start / pw) as i64);
    out.push(s);
    // 3.1: clockwise from the west neighbour, the first set pixel.
    let Some(d1) = (0..8)
        .map(|k| (4 + 8 - k) % 8)
        .find(|&d| fg(s.0 + DIRS[d].0, s.1 + DIRS[d].1))
    else {
        return; // a single pixel
    };
    let p1 = (s.0 + DIRS[d1].0, s.1 + DIRS[d1].1);
    let (mut p2, mut p3) = (p1, s);
    loop {
        // 3.3: counterclockwise around p3, from the step after p2.
        let d = DIRS
            .iter()
            .position(|&(ddx, ddy)| (p3.0 + ddx, p3.1 + ddy) == p2)
            .expect("p2 neighbours p3");
        let mut p4 = p3;
        for k in 1..=8 {
            let e = (d + k) % 8;
            let q = (p3.0 + DIRS[e].0, p3.1 + DIRS[e].1);
            if fg(q.0, q.1) {
                p4 = q;
                break;
            }
        }
        // 3.5
        if p4 == s && p3 == p1 {
            break;
        }
        out.push(p4);
        p2 = p3;
        p3 = p4;
    }
    // The last point pushed is the start again when the trace closed on it.
    if out.len() > 1 && out.last() == Some(&s) {
        out.pop();
    }
}

/// `CHAIN_APPROX_SIMPLE`: the points of a closed chain where its direction changes.
fn simplify(chain: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let n = chain.len();
    if n < 3 {
        return chain.to_vec();
    }
    let step = |a: (i64, i64), b: (i64, i64)| (b.0 - a.0, b.1 - a.1);
    (0..n)
        .filter(|&k| {
            let prev = chain[(k + n - 1) % n];
            let next = chain[(k + 1) % n];
            step(prev, chain[k]) != step(chain[k], next)
        })
        .map(|k| chain[k])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polys(rows: &[&str]) -> Vec<Vec<f64>> {
        let w = rows[0].len();
        let bits: Vec<bool> = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| b == b'#'))
            .collect();
        mask_to_polygons(
            w as u32,
            rows.len() as u32,
            |i| bits[i],
            (0, 0),
            (w as u32, rows.len() as u32),
        )
    }

    #[test]
    fn a_square_becomes_its_four_corners_closed() {
        let p = polys(&["....", ".##.", ".##.", "...."]);
        assert_eq!(p.len(), 1);
        let mut corners: Vec<(f64, f64)> = p[0].chunks(2).map(|c| (c[0], c[1])).collect();
        assert_eq!(corners.first(), corners.last());
        corners.pop();
        corners.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(corners, [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]);
    }

    #[test]
    fn holes_and_islands_in_holes_are_not_external_and_thin_regions_vanish() {
        let p = polys(&[
            "#######", "#.....#", "#.###.#", "#.#.#.#", "#.###.#", "#.....#", "#######",
        ]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].iter().all(|&v| v == 0.0 || v == 6.0));
        // A 1-pixel-high line has no area under pycocotools: no polygon (spec §11.2).
        assert!(polys(&["......", ".####.", "......"]).is_empty());
        // Two regions, diagonal neighbours are one region (8-connected).
        let two = polys(&[
            "##...", "##...", "..##.", "..##.", ".....", "##...", "##...",
        ]);
        assert_eq!(two.len(), 2, "{two:?}");
    }

    #[test]
    fn an_l_shape_is_one_closed_polygon_of_its_corners() {
        let p = polys(&["##..", "##..", "####", "####"]);
        assert_eq!(p.len(), 1);
        let pts: Vec<(f64, f64)> = p[0].chunks(2).map(|c| (c[0], c[1])).collect();
        assert_eq!(pts.first(), pts.last());
        // The outline through pixel centres, cutting the inner corner diagonally as OpenCV's
        // 8-connected borders do: (0,0) (0,3) (3,3) (3,2) (2,2) (1,1) (1,0), closed.
        let mut corners = pts[..pts.len() - 1].to_vec();
        corners.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            corners,
            [
                (0.0, 0.0),
                (0.0, 3.0),
                (1.0, 0.0),
                (1.0, 1.0),
                (2.0, 2.0),
                (3.0, 2.0),
                (3.0, 3.0)
            ]
        );
    }
}
