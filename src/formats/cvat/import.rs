//! The CVAT XML import: a streaming `quick_xml` reader, element by element, errors at the line
//! of the offending element.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Decoder, Reader};

use crate::annotations::{
    check_points, check_value, Annotations, AttrSpec, AttributeVal, LabelIndex, LabelInfo, Shape,
    ShapeType, Tag, Track, TrackedShape,
};
use crate::formats::{read_error, FormatError, ImportInput, TaskDataset};

use super::export::*;
use crate::formats::kit::frames::{py_int_str, FrameAttr, FrameMatcher, Item, Root};
use crate::formats::kit::paths::split_ext;

// ------------------------------------------------------------------------------------------------
// Reading

/// The frame of an `<image name id>`, as CVAT's `load_anno` matches it: an item with the name's
/// stem as id, the name's extension, and `id` as its `frame` attribute (spec §6). Items stream,
/// so names without the task's leading directories match by unique suffix.
fn image_frame(m: &FrameMatcher, name: Option<&str>, id: Option<&str>) -> Option<u64> {
    let (stem, ext) = name.map_or(("", ""), split_ext);
    let item = Item {
        id: stem,
        image_ext: Some(ext).filter(|e| !e.is_empty()),
        frame: id.map_or(FrameAttr::Absent, |s| FrameAttr::Value(py_int_str(s))),
    };
    m.match_item(&item, Root::Unknown).map(|(f, _)| f)
}

/// A parse failure: at a byte offset (turned into a line by re-reading), or outright.
pub(super) enum Fail {
    At(u64, String),
    Other(FormatError),
}

pub(super) type PResult<T> = Result<T, Fail>;

pub(super) fn at<T>(pos: u64, reason: impl Into<String>) -> PResult<T> {
    Err(Fail::At(pos, reason.into()))
}

/// Deepest element nesting accepted (CVAT's files nest five deep); bounds the parser's stacks.
const MAX_DEPTH: usize = 256;

pub(super) fn parse_source(
    input: &ImportInput,
    name: &str,
    ds: &TaskDataset<'_>,
    matcher: &FrameMatcher,
    out: &mut Annotations,
) -> Result<(), FormatError> {
    let max_value = input.limits().max_value;
    let parsed = input.with_reader(name, |r, _| {
        let mut r = BufReader::with_capacity(1 << 16, r);
        let mut events = QuickXml::new(&mut r, max_value);
        parse_xml(&mut events, ds, matcher, out).map_err(|fail| match fail {
            Fail::At(_, _) if events.limit_hit() => Fail::Other(FormatError::Limit(format!(
                "{name}: {} is larger than {max_value} bytes (--max-import-value)",
                events.what_was_too_large()
            ))),
            Fail::At(pos, reason) => match events.reader.get_mut().failed.take() {
                Some(e) => Fail::Other(read_error(name, e)),
                None => Fail::At(pos, reason),
            },
            other => other,
        })
    })?;
    match parsed {
        Ok(()) => Ok(()),
        Err(Fail::Other(e)) => Err(e),
        Err(Fail::At(pos, reason)) => {
            let line = input.with_reader(name, |r, _| line_at(&mut BufReader::new(r), pos))?;
            Err(FormatError::invalid(name, format!("line {line}"), reason))
        }
    }
}

/// The 1-based line of byte `pos`.
fn line_at(r: &mut dyn BufRead, pos: u64) -> u64 {
    let mut line = 1;
    let mut left = pos;
    while left > 0 {
        let buf = match r.fill_buf() {
            Ok(b) if !b.is_empty() => b,
            _ => break,
        };
        let n = buf.len().min(left as usize);
        line += buf[..n].iter().filter(|&&c| c == b'\n').count() as u64;
        r.consume(n);
        left -= n as u64;
    }
    line
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    Meta,
    Image,
    Track,
    ElemTrack,
    Shape,
    Element,
    Tag,
    Attribute,
    Other,
}

fn shape_kind(tag: &[u8]) -> Option<ShapeType> {
    Some(match tag {
        b"box" => ShapeType::Rectangle,
        b"polygon" => ShapeType::Polygon,
        b"polyline" => ShapeType::Polyline,
        b"points" => ShapeType::Points,
        b"ellipse" => ShapeType::Ellipse,
        b"cuboid" => ShapeType::Cuboid,
        b"mask" => ShapeType::Mask,
        b"skeleton" => ShapeType::Skeleton,
        _ => return None,
    })
}

/// A shape being read (its start tag's attributes, then its children).
struct Pending<'l> {
    kind: ShapeType,
    label: &'l LabelInfo,
    pos: u64,
    frame_abs: Option<u64>,
    keyframe: bool,
    outside: bool,
    occluded: bool,
    z_order: i64,
    rotation: f64,
    group: u64,
    points: Vec<f64>,
    /// Attribute values with their specs' mutability.
    attrs: Vec<(AttributeVal, bool)>,
    /// Image skeletons: their elements, read.
    elements: Vec<Shape>,
}

struct TagB<'l> {
    label: &'l LabelInfo,
    frame: u64,
    group: u64,
    attrs: Vec<(AttributeVal, bool)>,
}

/// A track being read: keyframes, and element tracks by label in order of appearance.
struct TrackB<'l> {
    label: &'l LabelInfo,
    group: u64,
    pos: u64,
    kind: Option<ShapeType>,
    shapes: Vec<TrackedShape>,
    immutable: Vec<AttributeVal>,
    /// All attributes of the first keyframe (a mask track becomes a shape with them).
    first_attrs: Vec<AttributeVal>,
    elements: Vec<TrackB<'l>>,
}

impl<'l> TrackB<'l> {
    fn new(label: &'l LabelInfo, group: u64, pos: u64) -> Self {
        TrackB {
            label,
            group,
            pos,
            kind: None,
            shapes: Vec::new(),
            immutable: Vec::new(),
            first_attrs: Vec::new(),
            elements: Vec::new(),
        }
    }

    fn element(&mut self, label: &'l LabelInfo, pos: u64) -> &mut TrackB<'l> {
        let i = match self.elements.iter().position(|e| e.label.id == label.id) {
            Some(i) => i,
            None => {
                self.elements.push(TrackB::new(label, 0, pos));
                self.elements.len() - 1
            }
        };
        &mut self.elements[i]
    }

    /// Adds a keyframe: mutable attributes stay on it, immutable ones go to the track.
    fn add(&mut self, p: Pending<'l>, frame: u64) -> PResult<()> {
        match self.kind {
            None => self.kind = Some(p.kind),
            Some(k) if k != p.kind => {
                return at(
                    p.pos,
                    format!(
                        "a track's shapes all have one type: <{}> after <{}>",
                        shape_tag(p.kind),
                        shape_tag(k)
                    ),
                )
            }
            _ => {}
        }
        if self.shapes.is_empty() {
            self.first_attrs = p.attrs.iter().map(|(a, _)| a.clone()).collect();
        }
        let mut mutable = Vec::new();
        for (a, m) in p.attrs {
            if m {
                mutable.push(a);
            } else {
                put_attr(&mut self.immutable, a);
            }
        }
        self.shapes.push(TrackedShape {
            id: None,
            kind: p.kind,
            frame,
            occluded: p.occluded,
            outside: p.outside,
            z_order: p.z_order,
            rotation: p.rotation,
            points: if p.kind == ShapeType::Skeleton {
                Vec::new()
            } else {
                p.points
            },
            attributes: mutable,
        });
        Ok(())
    }

    /// The finished track (keyframes sorted by frame).
    fn finish(mut self, is_element: bool) -> PResult<Track> {
        self.shapes.sort_by_key(|s| s.frame);
        if let Some(w) = self.shapes.windows(2).find(|w| w[0].frame == w[1].frame) {
            return at(
                self.pos,
                format!(
                    "track of '{}' has two keyframes on task frame {}",
                    self.label.name, w[0].frame
                ),
            );
        }
        let first = match self.shapes.first() {
            Some(s) => s.frame,
            None => {
                return at(
                    self.pos,
                    format!(
                        "track of '{}' has no keyframe (keyframe=\"1\")",
                        self.label.name
                    ),
                )
            }
        };
        let mut elements = Vec::new();
        if !is_element && self.kind == Some(ShapeType::Skeleton) {
            for e in std::mem::take(&mut self.elements) {
                if !e.shapes.is_empty() {
                    elements.push(e.finish(true)?);
                }
            }
            if elements.is_empty() {
                return at(
                    self.pos,
                    format!(
                        "skeleton track of '{}' has no element keyframes",
                        self.label.name
                    ),
                );
            }
        }
        Ok(Track {
            id: None,
            frame: first,
            label_id: self.label.id,
            group: self.group,
            source: "file".into(),
            attributes: self.immutable,
            shapes: self.shapes,
            elements,
        })
    }
}

/// Sets an attribute, replacing an earlier value of the same spec.
fn put_attr(list: &mut Vec<AttributeVal>, a: AttributeVal) {
    match list.iter_mut().find(|x| x.spec_id == a.spec_id) {
        Some(x) => *x = a,
        None => list.push(a),
    }
}

fn put_attr_m(list: &mut Vec<(AttributeVal, bool)>, a: AttributeVal, mutable: bool) {
    match list.iter_mut().find(|(x, _)| x.spec_id == a.spec_id) {
        Some(x) => *x = (a, mutable),
        None => list.push((a, mutable)),
    }
}

fn label_accepts(label: &LabelInfo, kind: &str) -> bool {
    label.kind == "any" || label.kind == kind
}

/// Declares the attribute names the reader looks up: `Key`, their slots in `Attrs`.
macro_rules! attr_keys {
    ($($key:ident = $name:literal),* $(,)?) => {
        /// An attribute name the reader looks up (a slot of `Attrs`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Key {
            $($key),*
        }

        impl Key {
            const COUNT: usize = [$($name),*].len();
            #[cfg(test)]
            pub(super) const ALL: [Key; Key::COUNT] = [$(Key::$key),*];

            pub(super) fn name(self) -> &'static str {
                match self {
                    $(Key::$key => $name),*
                }
            }

            fn of(name: &str) -> Option<Key> {
                match name {
                    $($name => Some(Key::$key),)*
                    _ => None,
                }
            }
        }
    };
}

attr_keys! {
    Name = "name", Id = "id", Label = "label", Source = "source", GroupId = "group_id",
    Frame = "frame", Keyframe = "keyframe", Outside = "outside", Occluded = "occluded",
    ZOrder = "z_order", Rotation = "rotation", Points = "points",
    Xtl = "xtl", Ytl = "ytl", Xbr = "xbr", Ybr = "ybr", Cx = "cx", Cy = "cy", Rx = "rx", Ry = "ry",
    Rle = "rle", Left = "left", Top = "top", Width = "width", Height = "height",
    Xtl1 = "xtl1", Ytl1 = "ytl1", Xbl1 = "xbl1", Ybl1 = "ybl1",
    Xtr1 = "xtr1", Ytr1 = "ytr1", Xbr1 = "xbr1", Ybr1 = "ybr1",
    Xtl2 = "xtl2", Ytl2 = "ytl2", Xbl2 = "xbl2", Ybl2 = "ybl2",
    Xtr2 = "xtr2", Ytr2 = "ytr2", Xbr2 = "xbr2", Ybr2 = "ybr2",
}

const _: () = assert!(Key::COUNT <= 64, "Attrs::set is a u64");

/// A cuboid's coordinates, in the order of its points.
pub(super) const CUBOID: [Key; 16] = [
    Key::Xtl1,
    Key::Ytl1,
    Key::Xbl1,
    Key::Ybl1,
    Key::Xtr1,
    Key::Ytr1,
    Key::Xbr1,
    Key::Ybr1,
    Key::Xtl2,
    Key::Ytl2,
    Key::Xbl2,
    Key::Ybl2,
    Key::Xtr2,
    Key::Ytr2,
    Key::Xbr2,
    Key::Ybr2,
];

/// The attributes of one start tag that the reader looks up. Other attributes are checked
/// (syntax, encoding, references, duplicates) and dropped.
pub(super) struct Attrs<'b> {
    /// The tag's text (name and attributes), when it is UTF-8.
    text: &'b str,
    /// Bit `k` set: key `k` was given, its value is `text[spans[k]]`, or in `owned` when bit `k`
    /// of `owned_set` is set too.
    set: u64,
    spans: [(u32, u32); Key::COUNT],
    owned_set: u64,
    /// Values unlike their text: unescaped, or of a tag that is not UTF-8.
    owned: Vec<(Key, String)>,
}

impl<'b> Attrs<'b> {
    pub(super) fn empty() -> Attrs<'b> {
        Attrs {
            text: "",
            set: 0,
            spans: [(0, 0); Key::COUNT],
            owned_set: 0,
            owned: Vec::new(),
        }
    }

    #[inline] // Builds the (large) value in the caller's place.
    pub(super) fn read(e: &'b BytesStart<'_>, pos: u64) -> PResult<Attrs<'b>> {
        let decoder = e.decoder();
        let mut a = Attrs::empty();
        // The decoder is UTF-8's (borrowing) unless the document says otherwise.
        if let Ok(Cow::Borrowed(text)) = decoder.decode(e) {
            a.text = text;
            if a.scan(e.name().as_ref().len()).is_some() {
                return Ok(a);
            }
            (a.set, a.owned_set) = (0, 0);
            a.owned.clear();
        }
        a.read_with_quick_xml(e, decoder, pos)?;
        Ok(a)
    }

    /// Reads the attributes of `text[from..]` as quick-xml's iterator does when that succeeds,
    /// without its allocations and per-value UTF-8 checks. `None` (some attributes read) on
    /// anything it would reject, a duplicate name included, and on more unknown names than
    /// are tracked for duplicates: `read_with_quick_xml` then reads them again, for its error.
    #[inline(never)]
    fn scan(&mut self, from: usize) -> Option<()> {
        let text = self.text;
        let b = text.as_bytes();
        let ws = |i: usize| i < b.len() && quick_xml::utils::is_whitespace(b[i]);
        let mut others: [&str; 8] = [""; 8];
        let mut n_others = 0;
        let mut i = from;
        loop {
            while ws(i) {
                i += 1;
            }
            if i >= b.len() {
                return Some(());
            }
            // As quick-xml: the name's first byte is taken whatever it is.
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'=' && !ws(i) {
                i += 1;
            }
            let name = text.get(start..i)?;
            while ws(i) {
                i += 1;
            }
            if b.get(i) != Some(&b'=') {
                return None;
            }
            i += 1;
            while ws(i) {
                i += 1;
            }
            let quote = *b.get(i).filter(|&&q| q == b'"' || q == b'\'')?;
            let v0 = i + 1;
            let mut refs = false;
            let v1 = loop {
                i += 1 + find_any(&b[i + 1..], [quote, b'&'])?;
                if b[i] == quote {
                    break i;
                }
                refs = true;
            };
            let value = text.get(v0..v1)?;
            i += 1;
            let owned = match refs {
                true => match quick_xml::escape::unescape(value).ok()? {
                    Cow::Owned(s) => Some(s),
                    Cow::Borrowed(_) => None,
                },
                false => None,
            };
            let Some(k) = Key::of(name) else {
                if n_others == others.len() || others[..n_others].contains(&name) {
                    return None;
                }
                others[n_others] = name;
                n_others += 1;
                continue;
            };
            let bit = 1 << k as u32;
            if self.set & bit != 0 {
                return None;
            }
            self.set |= bit;
            self.spans[k as usize] = (u32::try_from(v0).ok()?, u32::try_from(v1).ok()?);
            if let Some(s) = owned {
                self.owned_set |= bit;
                self.owned.push((k, s));
            }
        }
    }

    /// quick-xml's own reading of the attributes, with its checks and errors.
    #[inline(never)]
    pub(super) fn read_with_quick_xml(
        &mut self,
        e: &'b BytesStart<'_>,
        decoder: Decoder,
        pos: u64,
    ) -> PResult<()> {
        for a in e.attributes() {
            let a = a.map_err(|err| Fail::At(pos, format!("malformed attribute: {err}")))?;
            let value = a.decode_and_unescape_value(decoder).map_err(|err| {
                Fail::At(
                    pos,
                    format!(
                        "attribute '{}': {err}",
                        String::from_utf8_lossy(a.key.as_ref())
                    ),
                )
            })?;
            if let Some(k) = std::str::from_utf8(a.key.as_ref()).ok().and_then(Key::of) {
                let bit = 1 << k as u32;
                self.set |= bit;
                self.owned_set |= bit;
                self.owned.push((k, value.into_owned()));
            }
        }
        Ok(())
    }

    pub(super) fn get(&self, k: Key) -> Option<&str> {
        let bit = 1 << k as u32;
        if self.set & bit == 0 {
            None
        } else if self.owned_set & bit != 0 {
            self.owned
                .iter()
                .find(|(o, _)| *o == k)
                .map(|(_, v)| v.as_str())
        } else {
            let (a, b) = self.spans[k as usize];
            self.text.get(a as usize..b as usize)
        }
    }

    fn req(&self, tag: &str, k: Key, pos: u64) -> PResult<&str> {
        self.get(k)
            .ok_or_else(|| Fail::At(pos, format!("<{tag}> has no '{}' attribute", k.name())))
    }

    fn float(&self, tag: &str, k: Key, pos: u64) -> PResult<f64> {
        let v = self.req(tag, k, pos)?;
        parse_float(v).ok_or_else(|| {
            Fail::At(
                pos,
                format!("<{tag}> attribute '{}': '{v}' is not a number", k.name()),
            )
        })
    }

    fn int(&self, tag: &str, k: Key, pos: u64) -> PResult<i64> {
        let v = self.req(tag, k, pos)?;
        v.trim().parse::<i64>().map_err(|_| {
            Fail::At(
                pos,
                format!("<{tag}> attribute '{}': '{v}' is not an integer", k.name()),
            )
        })
    }

    fn int_or(&self, tag: &str, k: Key, default: i64, pos: u64) -> PResult<i64> {
        match self.get(k) {
            None => Ok(default),
            Some(_) => self.int(tag, k, pos),
        }
    }

    /// `attr == "1"`, CVAT's test for flags.
    fn flag(&self, k: Key, default: bool) -> bool {
        self.get(k).map_or(default, |v| v == "1")
    }
}

/// The index of the first of `bytes` in `s`, eight bytes at a time.
pub(super) fn find_any<const N: usize>(s: &[u8], bytes: [u8; N]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `v` is zero when its bit 7 is set in `(v - ONES) & !v & HIGH` (bytes after
    // a zero byte can be set too: only the lowest one is used).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut words = s.chunks_exact(8);
    for (n, w) in words.by_ref().enumerate() {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        let hit = bytes
            .iter()
            .fold(0, |hit, &b| hit | zero(v ^ (ONES * u64::from(b))));
        if hit != 0 {
            return Some(n * 8 + hit.trailing_zeros() as usize / 8);
        }
    }
    let done = s.len() - words.remainder().len();
    let rest = words.remainder().iter().position(|c| bytes.contains(c));
    rest.map(|p| done + p)
}

/// A finite number, as Python's `float()` reads it.
pub(super) fn parse_float(s: &str) -> Option<f64> {
    if let Some(v) = plain_decimal(s.as_bytes()) {
        return Some(v);
    }
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// `str::parse::<f64>` of `-?[0-9]*(\.[0-9]*)?` (a digit at least, 19 characters at most after
/// the sign) whose digits, as an integer, are at most 2^53; `None` otherwise. That integer and
/// a power of ten up to 10^18 are exact `f64`s, so their quotient, rounded once by the division,
/// is the correctly rounded value that `str::parse` returns too (Clinger's fast path).
fn plain_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    let (neg, b) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    // 19 digits always fit a u64.
    if b.len() > 19 {
        return None;
    }
    let mut m = 0u64;
    let mut i = 0;
    let mut digits = |i: &mut usize| {
        let start = *i;
        while let Some(d) = b.get(*i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10) {
            m = m * 10 + u64::from(d);
            *i += 1;
        }
        *i - start
    };
    let whole = digits(&mut i);
    let decimals = match b.get(i) {
        Some(b'.') => {
            i += 1;
            digits(&mut i)
        }
        _ => 0,
    };
    if i != b.len() || whole + decimals == 0 || m > 1 << 53 {
        return None;
    }
    let v = m as f64 / POW10[decimals];
    Some(if neg { -v } else { v })
}

/// `float("{:.2f}".format(v))`.
pub(super) fn round2(v: f64) -> f64 {
    format!("{v:.2}").parse().unwrap_or(v)
}

/// The points of a shape from its start tag, as CVAT's `load_anno` reads them.
fn read_geometry(kind: ShapeType, tag: &str, a: &Attrs, pos: u64) -> PResult<Vec<f64>> {
    Ok(match kind {
        ShapeType::Rectangle => vec![
            a.float(tag, Key::Xtl, pos)?,
            a.float(tag, Key::Ytl, pos)?,
            a.float(tag, Key::Xbr, pos)?,
            a.float(tag, Key::Ybr, pos)?,
        ],
        ShapeType::Ellipse => {
            let (cx, cy) = (a.float(tag, Key::Cx, pos)?, a.float(tag, Key::Cy, pos)?);
            let (rx, ry) = (a.float(tag, Key::Rx, pos)?, a.float(tag, Key::Ry, pos)?);
            vec![cx, cy, round2(cx + rx), round2(cy - ry)]
        }
        ShapeType::Cuboid => CUBOID
            .iter()
            .map(|&k| a.float(tag, k, pos))
            .collect::<PResult<Vec<f64>>>()?,
        ShapeType::Mask => {
            let rle = a.req(tag, Key::Rle, pos)?;
            let mut pts = Vec::new();
            for c in rle.split(',') {
                let n: u64 = c.trim().parse().map_err(|_| {
                    Fail::At(
                        pos,
                        format!("<mask> attribute 'rle': '{}' is not a count", c.trim()),
                    )
                })?;
                pts.push(n as f64);
            }
            let int = |k| a.int(tag, k, pos);
            let (l, t) = (int(Key::Left)?, int(Key::Top)?);
            let (w, h) = (int(Key::Width)?, int(Key::Height)?);
            pts.extend([l as f64, t as f64, (l + w - 1) as f64, (t + h - 1) as f64]);
            pts
        }
        ShapeType::Skeleton => Vec::new(),
        ShapeType::Polygon | ShapeType::Polyline | ShapeType::Points => {
            let s = a.req(tag, Key::Points, pos)?;
            // Splitting at both separators at once gives the same pieces as at ';' then ','.
            let seps = s.bytes().filter(|&c| c == b';' || c == b',').count();
            let mut pts = Vec::with_capacity(seps + 1);
            for v in s.split([';', ',']) {
                pts.push(parse_float(v).ok_or_else(|| {
                    Fail::At(
                        pos,
                        format!("<{tag}> attribute 'points': '{v}' is not a number"),
                    )
                })?);
            }
            pts
        }
    })
}

struct Parser<'a, 'l> {
    labels: &'l LabelIndex,
    matcher: &'a FrameMatcher<'a>,
    out: &'a mut Annotations,
    stack: Vec<Node>,
    image: Option<u64>,
    track: Option<TrackB<'l>>,
    /// Legacy layout: the element track being read inside a skeleton track.
    elem_track: Option<&'l LabelInfo>,
    shape: Option<Pending<'l>>,
    element: Option<Pending<'l>>,
    tag: Option<TagB<'l>>,
    /// The `<attribute>` being read: its label's spec of that name (`None`: unknown, skipped).
    attr: Option<(Option<&'l (i64, AttrSpec)>, u64)>,
    text: String,
}

/// quick-xml's reader, giving each event with the offset where it starts (at the end: the
/// file's length). quick-xml reads each event (a tag with its attributes, a text, a comment, …)
/// whole into `buf`, so the input is read through an [`EventLimit`]: no event is more than
/// `--max-import-value` bytes (plus one read buffer).
struct QuickXml<'r> {
    reader: Reader<EventLimit<'r>>,
    buf: Vec<u8>,
    /// The last event was a text, whose end (`<`) quick-xml consumed with it.
    after_text: bool,
    max_value: u64,
    /// An attribute value gathered from several events passed `max_value`.
    text_overflow: bool,
}

impl<'r> QuickXml<'r> {
    fn new(r: &'r mut dyn BufRead, max_value: u64) -> Self {
        QuickXml {
            reader: Reader::from_reader(EventLimit {
                inner: r,
                since: 0,
                head: [0; 2],
                head_len: 0,
                limit: max_value,
                hit: false,
                failed: None,
            }),
            buf: Vec::with_capacity(4096),
            after_text: false,
            max_value,
            text_overflow: false,
        }
    }

    fn next_event(&mut self) -> PResult<(u64, Event<'_>)> {
        self.buf.clear();
        self.reader.get_mut().begin();
        let pos = self.reader.buffer_position();
        match self.reader.read_event_into(&mut self.buf) {
            Ok(Event::Eof) => Ok((self.reader.buffer_position(), Event::Eof)),
            Ok(ev) => {
                self.after_text = matches!(ev, Event::Text(_));
                Ok((pos, ev))
            }
            Err(e) => at(self.reader.error_position(), format!("malformed XML: {e}")),
        }
    }

    /// Whether reading stopped because an event passed the limit.
    fn limit_hit(&self) -> bool {
        self.text_overflow || self.reader.get_ref().hit
    }

    /// What the event that passed the limit was, by its first bytes.
    fn what_was_too_large(&self) -> &'static str {
        if self.text_overflow {
            return "a text value";
        }
        let r = self.reader.get_ref();
        let head = &r.head[..r.head_len];
        // After a text, the markup's `<` is already consumed.
        let markup = match head {
            [b'&', ..] => return "an entity reference",
            _ if self.after_text => head.first(),
            [b'<', rest @ ..] => rest.first(),
            _ => return "a text value",
        };
        match markup {
            Some(b'!') => "a comment, CDATA section or DOCTYPE",
            Some(b'?') => "a processing instruction",
            _ => "an element tag (with its attribute values)",
        }
    }
}

/// A reader that fails once more than `limit` bytes were consumed since [`begin`](Self::begin)
/// (called before each event), and keeps the error of the reader below.
struct EventLimit<'r> {
    inner: &'r mut dyn BufRead,
    since: u64,
    /// The first bytes since `begin`, to tell what kind of event passed the limit.
    head: [u8; 2],
    head_len: usize,
    limit: u64,
    hit: bool,
    failed: Option<io::Error>,
}

impl EventLimit<'_> {
    fn begin(&mut self) {
        self.since = 0;
        self.head_len = 0;
    }
}

impl io::Read for EventLimit<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for EventLimit<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since > self.limit {
            self.hit = true;
            return Err(io::Error::other("the value is too large"));
        }
        let allowed = (self.limit.saturating_add(1) - self.since).min(usize::MAX as u64) as usize;
        match self.inner.fill_buf() {
            Ok(buf) => {
                // Never more than the limit allows: past it, the next fill fails.
                let buf = &buf[..buf.len().min(allowed)];
                if self.since == self.head_len as u64 {
                    let n = buf.len().min(2 - self.head_len);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&buf[..n]);
                    self.head_len += n;
                }
                Ok(buf)
            }
            Err(e) => {
                let msg = e.to_string();
                self.failed = Some(e);
                Err(io::Error::other(msg))
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.since += n as u64;
        self.inner.consume(n);
    }
}

fn parse_xml(
    events: &mut QuickXml<'_>,
    ds: &TaskDataset<'_>,
    matcher: &FrameMatcher,
    out: &mut Annotations,
) -> PResult<()> {
    let mut p = Parser {
        labels: ds.labels,
        matcher,
        out,
        stack: Vec::new(),
        image: None,
        track: None,
        elem_track: None,
        shape: None,
        element: None,
        tag: None,
        attr: None,
        text: String::new(),
    };
    let mut seen_root = false;
    loop {
        // An attribute's value is gathered from several events (texts, references, CDATA).
        if p.text.len() as u64 > events.max_value {
            events.text_overflow = true;
            return at(0, "");
        }
        let (pos, ev) = events.next_event()?;
        match ev {
            Event::Start(e) => {
                seen_root = true;
                p.start(&e, pos)?;
            }
            Event::Empty(e) => {
                seen_root = true;
                p.start(&e, pos)?;
                p.end(pos)?;
            }
            Event::End(_) => p.end(pos)?,
            Event::Text(t) if p.attr.is_some() => {
                let s = t
                    .xml10_content()
                    .map_err(|e| Fail::At(pos, format!("bad text: {e}")))?;
                p.text.push_str(&s);
            }
            Event::CData(t) if p.attr.is_some() => {
                let s = t
                    .decode()
                    .map_err(|e| Fail::At(pos, format!("bad text: {e}")))?;
                p.text.push_str(&s);
            }
            Event::GeneralRef(r) if p.attr.is_some() => {
                let c = crate::formats::kit::xml::resolve_ref(&r).map_err(|e| Fail::At(pos, e))?;
                p.text.push(c);
            }
            Event::Eof => {
                if !seen_root {
                    return Err(Fail::Other(FormatError::NotThisFormat {
                        format: "CVAT 1.1".into(),
                        reason: "the file has no <annotations> element".into(),
                    }));
                }
                if let Some(open) = p.stack.last() {
                    return at(
                        pos,
                        format!(
                            "the file ends inside <{}> (truncated?)",
                            match open {
                                Node::Root => "annotations",
                                Node::Meta => "meta",
                                Node::Image => "image",
                                Node::Track | Node::ElemTrack => "track",
                                Node::Shape | Node::Element => "a shape",
                                Node::Tag => "tag",
                                Node::Attribute => "attribute",
                                Node::Other => "an element",
                            }
                        ),
                    );
                }
                return Ok(());
            }
            _ => {}
        }
    }
}

impl<'a, 'l> Parser<'a, 'l> {
    fn label(&self, name: &str, pos: u64) -> PResult<&'l LabelInfo> {
        let labels: &'l LabelIndex = self.labels;
        labels.by_name(name).ok_or_else(|| {
            Fail::At(
                pos,
                format!("unknown label '{name}': the task has no such label"),
            )
        })
    }

    fn sublabel(&self, parent: &'l LabelInfo, name: &str, pos: u64) -> PResult<&'l LabelInfo> {
        let labels: &'l LabelIndex = self.labels;
        labels.child_by_name(parent.id, name).ok_or_else(|| {
            Fail::At(
                pos,
                format!(
                    "unknown label '{name}': not a sublabel of skeleton '{}'",
                    parent.name
                ),
            )
        })
    }

    /// `text`: `e`'s text, when known to be UTF-8.
    fn start(&mut self, e: &BytesStart<'_>, pos: u64) -> PResult<()> {
        let name = e.name();
        let name = name.as_ref();
        let parent = self.stack.last().copied();
        let node = match parent {
            None => {
                if name != b"annotations" {
                    return Err(Fail::Other(FormatError::NotThisFormat {
                        format: "CVAT 1.1".into(),
                        reason: format!(
                            "the root element is <{}>, not <annotations>",
                            String::from_utf8_lossy(name)
                        ),
                    }));
                }
                Node::Root
            }
            Some(Node::Root) => match name {
                b"meta" => Node::Meta,
                b"image" => {
                    let a = Attrs::read(e, pos)?;
                    let frame = image_frame(self.matcher, a.get(Key::Name), a.get(Key::Id))
                        .ok_or_else(|| {
                            Fail::At(
                                pos,
                                format!(
                                    "<image name=\"{}\" id=\"{}\"> matches no frame of the task",
                                    a.get(Key::Name).unwrap_or(""),
                                    a.get(Key::Id).unwrap_or("")
                                ),
                            )
                        })?;
                    self.image = Some(frame);
                    Node::Image
                }
                b"track" => {
                    let a = Attrs::read(e, pos)?;
                    let label = self.label(a.req("track", Key::Label, pos)?, pos)?;
                    let group = a.int_or("track", Key::GroupId, 0, pos)?.max(0) as u64;
                    self.track = Some(TrackB::new(label, group, pos));
                    Node::Track
                }
                _ => Node::Other,
            },
            Some(Node::Image) => {
                if let Some(kind) = shape_kind(name) {
                    let a = Attrs::read(e, pos)?;
                    let tag = shape_tag(kind);
                    let label = self.label(a.req(tag, Key::Label, pos)?, pos)?;
                    self.shape = Some(self.pending(kind, label, &a, pos, false)?);
                    Node::Shape
                } else if name == b"tag" {
                    let a = Attrs::read(e, pos)?;
                    let label = self.label(a.req("tag", Key::Label, pos)?, pos)?;
                    if !label_accepts(label, "tag") {
                        return at(
                            pos,
                            format!("label '{}' is for {}s, not tags", label.name, label.kind),
                        );
                    }
                    self.tag = Some(TagB {
                        label,
                        frame: self.image.unwrap_or(0),
                        group: a.int_or("tag", Key::GroupId, 0, pos)?.max(0) as u64,
                        attrs: Vec::new(),
                    });
                    Node::Tag
                } else {
                    Node::Other
                }
            }
            Some(Node::Track) => {
                let label = self.track.as_ref().map(|t| t.label).expect("open track");
                if let Some(kind) = shape_kind(name) {
                    let a = Attrs::read(e, pos)?;
                    self.shape = Some(self.pending(kind, label, &a, pos, true)?);
                    Node::Shape
                } else if name == b"track" {
                    // The older layout: one nested track per skeleton element.
                    let a = Attrs::read(e, pos)?;
                    let sub = self.sublabel(label, a.req("track", Key::Label, pos)?, pos)?;
                    self.track.as_mut().expect("open track").element(sub, pos);
                    self.elem_track = Some(sub);
                    Node::ElemTrack
                } else {
                    Node::Other
                }
            }
            Some(Node::ElemTrack) => match shape_kind(name) {
                Some(kind) => {
                    let a = Attrs::read(e, pos)?;
                    let label = self.elem_track.expect("open element track");
                    self.element = Some(self.pending(kind, label, &a, pos, true)?);
                    Node::Element
                }
                None => Node::Other,
            },
            Some(Node::Shape) => {
                let (parent_kind, parent_label, frame_abs) = {
                    let p = self.shape.as_ref().expect("open shape");
                    (p.kind, p.label, p.frame_abs)
                };
                if name == b"attribute" {
                    self.start_attr(e, pos)?;
                    Node::Attribute
                } else if let (Some(kind), ShapeType::Skeleton) = (shape_kind(name), parent_kind) {
                    let a = Attrs::read(e, pos)?;
                    let tag = shape_tag(kind);
                    let sub = self.sublabel(parent_label, a.req(tag, Key::Label, pos)?, pos)?;
                    let in_track = self.track.is_some();
                    let mut p = self.pending(kind, sub, &a, pos, false)?;
                    if in_track {
                        p.frame_abs = frame_abs;
                        p.keyframe = a.flag(Key::Keyframe, true);
                    }
                    self.element = Some(p);
                    Node::Element
                } else {
                    Node::Other
                }
            }
            Some(Node::Element) | Some(Node::Tag) => {
                if name == b"attribute" {
                    self.start_attr(e, pos)?;
                    Node::Attribute
                } else {
                    Node::Other
                }
            }
            Some(Node::Meta) | Some(Node::Attribute) | Some(Node::Other) => Node::Other,
        };
        if self.stack.len() >= MAX_DEPTH {
            return at(
                pos,
                format!("elements are nested more than {MAX_DEPTH} deep"),
            );
        }
        self.stack.push(node);
        Ok(())
    }

    /// Matches an `<attribute name>` to its label's spec by name (unknown names are skipped, as
    /// CVAT does; their text is still read).
    fn start_attr(&mut self, e: &BytesStart<'_>, pos: u64) -> PResult<()> {
        let a = Attrs::read(e, pos)?;
        let name = a.req("attribute", Key::Name, pos)?;
        let label = if let Some(p) = &self.element {
            Some(p.label)
        } else if let Some(p) = &self.shape {
            Some(p.label)
        } else {
            self.tag.as_ref().map(|t| t.label)
        };
        let spec = label.and_then(|l| l.attributes.iter().find(|(_, s)| s.name == name));
        self.attr = Some((spec, pos));
        self.text.clear();
        Ok(())
    }

    /// A shape from its start tag. `in_track`: it has a `frame` and a `keyframe` flag.
    fn pending(
        &self,
        kind: ShapeType,
        label: &'l LabelInfo,
        a: &Attrs,
        pos: u64,
        in_track: bool,
    ) -> PResult<Pending<'l>> {
        let tag = shape_tag(kind);
        let is_element = label.parent.is_some();
        if is_element {
            if kind != ShapeType::Points {
                return at(pos, format!("skeleton elements are <points>, not <{tag}>"));
            }
        } else if !label_accepts(label, kind.as_str()) {
            return at(
                pos,
                format!(
                    "label '{}' is for {}s, not {}s",
                    label.name,
                    label.kind,
                    kind.as_str()
                ),
            );
        }
        let points = read_geometry(kind, tag, a, pos)?;
        if kind != ShapeType::Skeleton {
            check_points(kind, &points).map_err(|why| Fail::At(pos, why))?;
        }
        let rotation = match a.get(Key::Rotation) {
            None => 0.0,
            Some(v) => parse_float(v).ok_or_else(|| {
                Fail::At(
                    pos,
                    format!("<{tag}> attribute 'rotation': '{v}' is not a number"),
                )
            })?,
        };
        let rotation = if (0.0..=360.0).contains(&rotation) {
            rotation
        } else {
            rotation.rem_euclid(360.0)
        };
        let frame_abs = if in_track {
            let v = a.req(tag, Key::Frame, pos)?;
            Some(v.trim().parse::<u64>().map_err(|_| {
                Fail::At(
                    pos,
                    format!("<{tag}> attribute 'frame': '{v}' is not a frame number"),
                )
            })?)
        } else {
            None
        };
        Ok(Pending {
            kind,
            label,
            pos,
            frame_abs,
            keyframe: if in_track {
                a.flag(Key::Keyframe, true)
            } else {
                true
            },
            outside: a.flag(Key::Outside, false),
            occluded: a.flag(Key::Occluded, false),
            z_order: a.int_or(tag, Key::ZOrder, 0, pos)?,
            rotation,
            group: a.int_or(tag, Key::GroupId, 0, pos)?.max(0) as u64,
            points,
            attrs: Vec::new(),
            elements: Vec::new(),
        })
    }

    /// Task-relative frame of a track shape's absolute `frame`.
    fn track_frame(matcher: &FrameMatcher, p: &Pending<'_>) -> PResult<u64> {
        let abs = p.frame_abs.unwrap_or(0);
        matcher
            .by_abs(abs)
            .ok_or_else(|| Fail::At(p.pos, format!("frame {abs} is not a frame of the task")))
    }

    fn end(&mut self, pos: u64) -> PResult<()> {
        let Some(node) = self.stack.pop() else {
            return at(pos, "an end tag without a start tag");
        };
        match node {
            Node::Image => self.image = None,
            Node::ElemTrack => self.elem_track = None,
            Node::Attribute => self.end_attr()?,
            Node::Tag => {
                if let Some(t) = self.tag.take() {
                    self.out.tags.push(Tag {
                        id: None,
                        frame: t.frame,
                        label_id: t.label.id,
                        group: t.group,
                        source: "file".into(),
                        attributes: t.attrs.into_iter().map(|(a, _)| a).collect(),
                    });
                }
            }
            Node::Element => {
                let Some(p) = self.element.take() else {
                    return Ok(());
                };
                let matcher = self.matcher;
                if let Some(track) = self.track.as_mut() {
                    if p.keyframe {
                        let frame = Self::track_frame(matcher, &p)?;
                        track.element(p.label, p.pos).add(p, frame)?;
                    }
                } else if let Some(shape) = self.shape.as_mut() {
                    shape.elements.push(Shape {
                        id: None,
                        kind: p.kind,
                        frame: self.image.unwrap_or(0),
                        label_id: p.label.id,
                        group: 0,
                        source: "file".into(),
                        occluded: p.occluded,
                        outside: p.outside,
                        z_order: 0,
                        rotation: 0.0,
                        points: p.points,
                        attributes: p.attrs.into_iter().map(|(a, _)| a).collect(),
                        elements: Vec::new(),
                        score: None,
                    });
                }
            }
            Node::Shape => {
                let Some(p) = self.shape.take() else {
                    return Ok(());
                };
                let matcher = self.matcher;
                if let Some(track) = self.track.as_mut() {
                    if p.keyframe {
                        let frame = Self::track_frame(matcher, &p)?;
                        track.add(p, frame)?;
                    }
                } else {
                    if p.kind == ShapeType::Skeleton && p.elements.is_empty() {
                        return at(p.pos, "a <skeleton> needs its <points> elements");
                    }
                    self.out.shapes.push(Shape {
                        id: None,
                        kind: p.kind,
                        frame: self.image.unwrap_or(0),
                        label_id: p.label.id,
                        group: p.group,
                        source: "file".into(),
                        occluded: p.occluded,
                        outside: false,
                        z_order: p.z_order,
                        rotation: p.rotation,
                        points: p.points,
                        attributes: p.attrs.into_iter().map(|(a, _)| a).collect(),
                        elements: p.elements,
                        score: None,
                    });
                }
            }
            Node::Track => {
                let Some(t) = self.track.take() else {
                    return Ok(());
                };
                if let (Some(ShapeType::Mask), Some(s)) = (t.kind, t.shapes.first()) {
                    // CVAT has no mask tracks: the first keyframe becomes a shape.
                    self.out.shapes.push(Shape {
                        id: None,
                        kind: ShapeType::Mask,
                        frame: s.frame,
                        label_id: t.label.id,
                        group: 0,
                        source: "file".into(),
                        occluded: s.occluded,
                        outside: false,
                        z_order: s.z_order,
                        rotation: s.rotation,
                        points: s.points.clone(),
                        attributes: t.first_attrs,
                        elements: Vec::new(),
                        score: None,
                    });
                } else {
                    self.out.tracks.push(t.finish(false)?);
                }
            }
            Node::Root | Node::Meta | Node::Other => {}
        }
        Ok(())
    }

    /// Checks the value of the `<attribute>` just read and sets it.
    fn end_attr(&mut self) -> PResult<()> {
        let Some((spec, pos)) = self.attr.take() else {
            return Ok(());
        };
        let mut value = std::mem::take(&mut self.text);
        let Some((spec_id, spec)) = spec else {
            return Ok(());
        };
        if spec.input_type == "checkbox" && value != spec.default_value {
            value = value.to_lowercase();
        }
        check_value(spec, &value)
            .map_err(|why| Fail::At(pos, format!("attribute '{}': {why}", spec.name)))?;
        let a = AttributeVal {
            spec_id: *spec_id,
            value,
        };
        let mutable = spec.mutable;
        if let Some(p) = self.element.as_mut() {
            put_attr_m(&mut p.attrs, a, mutable);
        } else if let Some(p) = self.shape.as_mut() {
            put_attr_m(&mut p.attrs, a, mutable);
        } else if let Some(t) = self.tag.as_mut() {
            put_attr_m(&mut t.attrs, a, mutable);
        }
        Ok(())
    }
}
