//! The COCO imports: the annotation file read streaming into compact records (categories,
//! images, annotations), then each image handed, with what Datumaro's COCO extractor makes of
//! its annotations, to the Datumaro importer's conversion (CVAT's `import_dm_annotations`).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Number, Value};

use crate::annotations::Annotations;
use crate::formats::datumaro::import::Importer as DmImporter;
use crate::formats::datumaro::parse::{
    Annotation, AnnotationsField, Attr, AttrsField, Buffers, DmAnnotation, DmItem, Item, Sink,
};
use crate::formats::datumaro::DEFAULT_READ_LIMIT;
use crate::formats::kit::frames::{FrameAttr, FrameMatcher, Item as MatchItem, Root};
use crate::formats::kit::json::read::{
    read_failed, skip_containers, visit_scalars, Limited, Name, Numbers, Skip,
};
use crate::formats::kit::mask::coco_counts_to_string;
use crate::formats::kit::paths::{basename, dirname, is_metadata_entry, split_ext};
use crate::formats::{FormatError, ImportInput, TaskDataset};

use super::Kind;

fn not_coco(kind: Kind, reason: impl Into<String>) -> FormatError {
    FormatError::NotThisFormat {
        format: kind.display().into(),
        reason: reason.into(),
    }
}

/// The annotation files of an import: `annotations/<task>_*.json` at any depth of a zip, or
/// the bare file.
fn annotation_files(kind: Kind, input: &ImportInput) -> Result<Vec<String>, FormatError> {
    if !input.is_zip() {
        return Ok(input.names());
    }
    let prefix = format!("{}_", kind.task());
    let mut files: Vec<String> = input
        .names()
        .into_iter()
        .filter(|n| {
            let name = basename(n);
            !is_metadata_entry(n)
                && basename(dirname(n)) == "annotations"
                && name.starts_with(&prefix)
                && name.to_ascii_lowercase().ends_with(".json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(not_coco(
            kind,
            format!("the dataset must contain a file matching annotations/{prefix}*.json"),
        ));
    }
    Ok(files)
}

// ------------------------------------------------------------------------------------------------
// Records

/// A `segmentation` as read.
#[derive(Debug, Default)]
enum Seg {
    /// Missing, `null`, `[]` or `[[]]`.
    #[default]
    Empty,
    Polygons(Vec<Vec<f64>>),
    Rle {
        counts: Counts,
        size: Option<Vec<f64>>,
    },
    Bad(&'static str),
}

#[derive(Debug)]
enum Counts {
    List(Vec<u64>),
    Str(String),
    Bad,
}

/// One element of `annotations`, what the importer reads of it.
#[derive(Debug, Default)]
struct RawAnn {
    id: Option<f64>,
    image_id: Option<f64>,
    category_id: Option<f64>,
    segmentation: Seg,
    has_bbox: bool,
    bbox: Option<Vec<f64>>,
    iscrowd: Option<f64>,
    score: Option<Option<f64>>,
    attributes: Option<Vec<Attr<'static>>>,
    attributes_bad: bool,
    keypoints: Option<Option<Vec<f64>>>,
    not_object: bool,
}

/// An element of `images`.
#[derive(Debug)]
struct RawImage {
    id: i64,
    file_name: String,
    width: u64,
    height: u64,
}

/// A category: its id, name and keypoint names.
#[derive(Debug)]
struct RawCategory {
    id: i64,
    name: String,
    keypoints: Vec<String>,
}

/// What one file holds.
#[derive(Debug, Default)]
struct RawFile {
    categories: Option<Value>,
    images: Option<Vec<Value>>,
    annotations: Option<Vec<RawAnn>>,
    /// A top-level key held something else than a list: its name.
    not_list: Option<&'static str>,
}

/// A JSON value with owned strings.
fn owned(v: Value) -> crate::formats::kit::json::read::Json<'static> {
    use crate::formats::kit::json::read::Json;
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Number(n) => Json::Num(n),
        Value::String(s) => Json::Str(Cow::Owned(s)),
        other => Json::Other(Box::new(other)),
    }
}

/// A number, `None` for anything else (read and dropped).
struct Scalar;

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(f64::from(u8::from(v))))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip.visit_map(map)?;
        Ok(None)
    }
}

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<f64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// An element of a `segmentation` list: a number (a flat polygon) or a list of numbers.
enum PolyElem {
    Num(f64),
    List(Option<Vec<f64>>),
    Other,
}

impl<'de> Deserialize<'de> for PolyElem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PolyElem;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a list of numbers")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PolyElem, E> {
                Ok(PolyElem::Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PolyElem, E> {
                Ok(PolyElem::Num(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PolyElem, E> {
                Ok(PolyElem::Num(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PolyElem, E> {
                Ok(PolyElem::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<PolyElem, E> {
                Ok(PolyElem::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<PolyElem, E> {
                Ok(PolyElem::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PolyElem, A::Error> {
                Ok(PolyElem::List(Numbers(None).visit_seq(seq)?.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PolyElem, A::Error> {
                Skip.visit_map(map)?;
                Ok(PolyElem::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// RLE `counts`: a list of integers or COCO's compressed string.
impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Counts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("RLE counts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Counts, E> {
                Ok(Counts::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Counts, A::Error> {
                let mut out = Vec::new();
                let mut ok = true;
                while let Some(x) = seq.next_element_seed(Scalar)? {
                    match x {
                        Some(c) if c >= 0.0 && c.fract() == 0.0 && ok => out.push(c as u64),
                        _ => ok = false,
                    }
                }
                Ok(if ok { Counts::List(out) } else { Counts::Bad })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Counts, A::Error> {
                Skip.visit_map(map)?;
                Ok(Counts::Bad)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Counts, E> {
                Ok(Counts::Bad)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Counts, E> {
                Ok(Counts::Bad)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Counts, E> {
                Ok(Counts::Bad)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Counts, E> {
                Ok(Counts::Bad)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Counts, E> {
                Ok(Counts::Bad)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Seg {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Seg;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a segmentation")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Seg, E> {
                Ok(Seg::Empty)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Seg, E> {
                Ok(Seg::Bad("\"segmentation\" must be a list or an RLE object"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seg, E> {
                self.visit_bool(v != 0)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seg, E> {
                self.visit_bool(v != 0)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seg, E> {
                self.visit_bool(v != 0.0)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Seg, E> {
                self.visit_bool(true)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seg, A::Error> {
                let mut polygons: Vec<Vec<f64>> = Vec::new();
                let mut flat: Vec<f64> = Vec::new();
                let mut bad = false;
                while let Some(e) = seq.next_element::<PolyElem>()? {
                    match e {
                        PolyElem::Num(x) => flat.push(x),
                        PolyElem::List(Some(mut p)) => {
                            // Held until every image is known: no spare capacity.
                            p.shrink_to_fit();
                            polygons.push(p)
                        }
                        PolyElem::List(None) | PolyElem::Other => bad = true,
                    }
                }
                if bad || (!flat.is_empty() && !polygons.is_empty()) {
                    return Ok(Seg::Bad(
                        "\"segmentation\" must be a list of polygons (lists of numbers)",
                    ));
                }
                if !flat.is_empty() {
                    // A flat list is one polygon (CVAT issue 6392).
                    polygons.push(flat);
                }
                polygons.retain(|p| !p.is_empty());
                polygons.shrink_to_fit();
                Ok(if polygons.is_empty() {
                    Seg::Empty
                } else {
                    Seg::Polygons(polygons)
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seg, A::Error> {
                let (mut counts, mut size) = (None, None);
                while let Some(Name(key)) = map.next_key()? {
                    match key.as_ref() {
                        "counts" => counts = Some(map.next_value::<Counts>()?),
                        "size" => size = map.next_value::<Numbers>()?.0,
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(match counts {
                    Some(counts) => Seg::Rle { counts, size },
                    None => Seg::Bad("an RLE \"segmentation\" needs \"counts\""),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// An element of `annotations` that is not an object.
fn not_object() -> RawAnn {
    RawAnn {
        not_object: true,
        ..RawAnn::default()
    }
}

impl<'de> Deserialize<'de> for RawAnn {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAnn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an annotation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAnn, A::Error> {
                let mut a = RawAnn::default();
                while let Some(Name(key)) = map.next_key()? {
                    match key.as_ref() {
                        "id" => a.id = map.next_value_seed(Scalar)?,
                        "image_id" => a.image_id = map.next_value_seed(Scalar)?,
                        "category_id" => a.category_id = map.next_value_seed(Scalar)?,
                        "segmentation" => a.segmentation = map.next_value()?,
                        "bbox" => {
                            a.has_bbox = true;
                            a.bbox = map.next_value::<Numbers>()?.0;
                        }
                        "iscrowd" => a.iscrowd = map.next_value_seed(Scalar)?,
                        "score" => a.score = Some(map.next_value_seed(Scalar)?),
                        "keypoints" => a.keypoints = Some(map.next_value::<Numbers>()?.0),
                        "attributes" => match map.next_value::<Value>()? {
                            Value::Object(m) => {
                                a.attributes = Some(
                                    m.into_iter()
                                        .map(|(k, v)| (Cow::Owned(k), owned(v)))
                                        .collect(),
                                )
                            }
                            Value::Null => {}
                            _ => a.attributes_bad = true,
                        },
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(a)
            }
            visit_scalars!(not_object(), not_object());
            skip_containers!(seq: not_object());
        }
        d.deserialize_any(V)
    }
}

/// A list, or `None` when the value is something else (read and dropped).
struct ListOf<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListOf<T> {
    type Value = Option<Vec<T>>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(x) = seq.next_element()? {
            out.push(x);
        }
        Ok(Some(out))
    }
    visit_scalars!(None, None);
    skip_containers!(map: None);
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ListOf<T> {
    type Value = Option<Vec<T>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// The top-level object: `categories`, `images`, `annotations`; everything else skipped.
struct Top;

impl<'de> Visitor<'de> for Top {
    type Value = Option<RawFile>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a COCO object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = RawFile::default();
        while let Some(Name(key)) = map.next_key()? {
            match key.as_ref() {
                "categories" => out.categories = Some(map.next_value()?),
                "images" => {
                    out.images = map.next_value_seed(ListOf::<Value>(Default::default()))?;
                    if out.images.is_none() {
                        out.not_list = Some("images");
                    }
                }
                "annotations" => {
                    out.annotations = map.next_value_seed(ListOf::<RawAnn>(Default::default()))?;
                    if out.annotations.is_none() {
                        out.not_list = Some("annotations");
                    }
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Some(out))
    }
    visit_scalars!(None, None);
    skip_containers!(seq: None);
}

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Option<RawFile>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn parse_with<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    file: &str,
) -> Result<Option<RawFile>, FormatError> {
    let res = Top.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    res.map_err(|e| {
        if e.is_io() {
            return read_failed(file, std::io::Error::from(e));
        }
        FormatError::invalid(
            file,
            format!("line {}, column {}", e.line(), e.column()),
            format!("invalid JSON: {e}"),
        )
    })
}

/// Reads one COCO file, streamed: what is held is the records (a COCO file's bulk is its
/// annotations, all kept until every image is known), never the file's bytes as well.
fn parse_file(
    input: &ImportInput,
    name: &str,
    display: &str,
) -> Result<Option<RawFile>, FormatError> {
    let max_string = input.limits().max_value;
    input.with_reader(name, |r, _| {
        let limited = Limited::new(r, DEFAULT_READ_LIMIT, max_string);
        let r = std::io::BufReader::with_capacity(1 << 16, limited);
        parse_with(serde_json::Deserializer::from_reader(r), display)
    })?
}

// ------------------------------------------------------------------------------------------------
// Conversion

fn int_field(v: &Value, key: &str) -> Option<i64> {
    let n = v.get(key)?;
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn parse_categories(file: &str, v: Option<&Value>) -> Result<Vec<RawCategory>, FormatError> {
    let list = v
        .ok_or_else(|| FormatError::invalid(file, "", "no \"categories\" list"))?
        .as_array()
        .ok_or_else(|| FormatError::invalid(file, "categories", "must be a list"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let at = || format!("categories[{i}]");
        let id = int_field(c, "id").ok_or_else(|| {
            FormatError::invalid(file, at(), "the category has no integer \"id\"")
        })?;
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| FormatError::invalid(file, at(), "the category has no \"name\""))?;
        let keypoints = match c.get("keypoints") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    FormatError::invalid(file, at(), "\"keypoints\" must be a list of names")
                })?,
            Some(_) => {
                return Err(FormatError::invalid(
                    file,
                    at(),
                    "\"keypoints\" must be a list of names",
                ))
            }
        };
        out.push(RawCategory {
            id,
            name: name.to_owned(),
            keypoints,
        });
    }
    // Datumaro orders label categories by id.
    out.sort_by_key(|c| c.id);
    Ok(out)
}

fn parse_images(file: &str, list: Vec<Value>) -> Result<Vec<RawImage>, FormatError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        let at = || format!("images[{i}]");
        let id = int_field(&v, "id")
            .ok_or_else(|| FormatError::invalid(file, at(), "the image has no integer \"id\""))?;
        let file_name = v
            .get("file_name")
            .and_then(Value::as_str)
            .ok_or_else(|| FormatError::invalid(file, at(), "the image has no \"file_name\""))?;
        let dim = |k: &str| int_field(&v, k).filter(|d| *d > 0).unwrap_or(0) as u64;
        out.push(RawImage {
            id,
            file_name: file_name.to_owned(),
            width: dim("width"),
            height: dim("height"),
        });
    }
    Ok(out)
}

fn str_json(s: &'static str) -> crate::formats::kit::json::read::Json<'static> {
    crate::formats::kit::json::read::Json::Str(Cow::Borrowed(s))
}

fn num_json(v: f64) -> crate::formats::kit::json::read::Json<'static> {
    use crate::formats::kit::json::read::Json;
    if v.fract() == 0.0 && v.abs() < 9e15 {
        Json::Num((v as i64).into())
    } else {
        Number::from_f64(v).map_or(Json::Null, Json::Num)
    }
}

/// What Datumaro's COCO extractor makes of one annotation, appended to `buf`.
fn convert(
    kind: Kind,
    a: RawAnn,
    label: Option<usize>,
    img: &RawImage,
    buf: &mut Buffers<'static>,
) -> Result<(), String> {
    use crate::formats::kit::json::read::Json;
    let ann_id = a.id.ok_or("the annotation has no integer \"id\"")?;
    if a.attributes_bad {
        return Err("\"attributes\" must be an object".into());
    }
    // attributes, then score, then is_crowd (a dict: a repeated name keeps its place).
    let start = buf.attrs.len();
    buf.attrs.extend(a.attributes.unwrap_or_default());
    let mut set = |k: &'static str, v: Json<'static>| match buf.attrs[start..]
        .iter_mut()
        .find(|(n, _)| n == k)
    {
        Some(e) => e.1 = v,
        None => buf.attrs.push((Cow::Borrowed(k), v)),
    };
    if let Some(score) = a.score {
        let s = score.ok_or("\"score\" must be a number")?;
        set("score", num_json(s));
    }
    if let Some(c) = a.iscrowd {
        set("is_crowd", Json::Bool(c != 0.0));
    }
    let range = start..buf.attrs.len();
    let base = |ty: &'static str| DmAnnotation {
        ty: Some(str_json(ty)),
        label_id: label.map(|l| Json::Num((l as u64).into())),
        group: Some(num_json(ann_id)),
        attributes: AttrsField::Object(range.clone()),
        ..DmAnnotation::default()
    };
    if kind == Kind::Keypoints {
        let kp = a
            .keypoints
            .ok_or("the annotation has no \"keypoints\"")?
            .ok_or("\"keypoints\" must be a list of numbers")?;
        if kp.len() % 3 != 0 {
            return Err(format!(
                "keypoints have {} values, not (x, y, visibility) triplets",
                kp.len()
            ));
        }
        let mut s = base("skeleton");
        s.points = Some(kp);
        buf.annotations.push(Annotation(Some(s)));
    }
    match a.segmentation {
        Seg::Bad(why) => return Err(why.into()),
        Seg::Polygons(polygons) => {
            for p in polygons {
                if p.len() % 2 != 0 {
                    return Err(format!(
                        "a polygon has {} values, not (x, y) pairs",
                        p.len()
                    ));
                }
                if p.len() < 6 {
                    return Err(format!(
                        "a polygon has {} values, at least 3 (x, y) pairs are needed",
                        p.len()
                    ));
                }
                let mut s = base("polygon");
                s.points = Some(p);
                buf.annotations.push(Annotation(Some(s)));
            }
        }
        Seg::Rle { counts, size } => {
            let size = size
                .filter(|s| s.len() == 2 && s.iter().all(|v| *v >= 0.0 && v.fract() == 0.0))
                .ok_or("the RLE \"size\" must be [height, width]")?;
            let (h, w) = (size[0] as u64, size[1] as u64);
            if img.width > 0 && img.height > 0 && (h, w) != (img.height, img.width) {
                return Err(format!(
                    "the mask size {h}x{w} does not match the image size {}x{}",
                    img.height, img.width
                ));
            }
            let counts = match counts {
                Counts::List(c) => coco_counts_to_string(&c),
                Counts::Str(s) => s,
                Counts::Bad => {
                    return Err(
                        "RLE \"counts\" must be a string or a list of non-negative integers".into(),
                    )
                }
            };
            let mut s = base("mask");
            s.rle = Some(Json::Other(Box::new(
                json!({"counts": counts, "size": [h, w]}),
            )));
            buf.annotations.push(Annotation(Some(s)));
        }
        Seg::Empty => {
            // Boxes only when there is no segmentation (the CVAT fork); COCO Keypoints drops
            // them (they would carry skeleton labels).
            if kind == Kind::Instances {
                if !a.has_bbox {
                    return Err("the annotation has neither \"segmentation\" nor \"bbox\"".into());
                }
                let b = a.bbox.ok_or("\"bbox\" must be a list of numbers")?;
                if b.len() != 4 {
                    return Err(format!(
                        "\"bbox\" has {} values, expected 4 (x, y, width, height)",
                        b.len()
                    ));
                }
                let mut s = base("bbox");
                s.bbox = Some(b);
                buf.annotations.push(Annotation(Some(s)));
            }
        }
    }
    Ok(())
}

pub(super) fn import(
    kind: Kind,
    input: &ImportInput,
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    let files = annotation_files(kind, input)?;
    let mut imp = DmImporter::new(ds);
    let matcher = FrameMatcher::new(&ds.frames, ds.is_video());
    for name in &files {
        let display = if input.is_zip() {
            name.clone()
        } else {
            input.display_name().to_owned()
        };
        let file = &display;
        let raw = parse_file(input, name, file)?
            .ok_or_else(|| FormatError::invalid(file, "", "a COCO file is a JSON object"))?;
        if let Some(key) = raw.not_list {
            return Err(FormatError::invalid(file, key, "must be a list"));
        }
        let cats = parse_categories(file, raw.categories.as_ref())?;
        let images = parse_images(
            file,
            raw.images
                .ok_or_else(|| FormatError::invalid(file, "", "no \"images\" list"))?,
        )?;
        let anns = raw
            .annotations
            .ok_or_else(|| FormatError::invalid(file, "", "no \"annotations\" list"))?;

        // Categories as the Datumaro importer reads them (label index = position by id).
        let by_cat: HashMap<i64, usize> = cats.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let mut points = Vec::new();
        if kind == Kind::Keypoints {
            for (i, c) in cats.iter().enumerate() {
                points.push(json!({"label_id": i, "labels": c.keypoints}));
            }
        }
        let labels: Vec<Value> = cats.iter().map(|c| json!({"name": c.name})).collect();
        imp.categories(
            file,
            json!({"label": {"labels": labels}, "points": {"items": points}}),
        )?;

        // Images by id; each one's size checked against the frame it matches (spec §6).
        let mut by_image: HashMap<i64, usize> = HashMap::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            by_image.insert(img.id, i);
        }
        let stems: Vec<&str> = images.iter().map(|i| split_ext(&i.file_name).0).collect();
        let hint = matcher.root_hint(stems.iter().copied());
        for (i, img) in images.iter().enumerate() {
            if img.width == 0 || img.height == 0 {
                continue;
            }
            let item = MatchItem {
                id: stems[i],
                image_ext: Some(split_ext(&img.file_name).1),
                frame: FrameAttr::Absent,
            };
            let Some((rel, _)) = matcher.match_item(&item, Root::Hint(hint.as_deref())) else {
                continue;
            };
            if let Some(f) = ds.frame_index(rel).map(|k| &ds.frames[k]) {
                if (u64::from(f.width), u64::from(f.height)) != (img.width, img.height) {
                    return Err(FormatError::invalid(
                        file,
                        format!("images[{i}] ('{}')", img.file_name),
                        format!(
                            "the image is {}x{}, its task frame {} is {}x{}",
                            img.width, img.height, f.rel, f.width, f.height
                        ),
                    ));
                }
            }
        }

        // Annotations by image, in file order: indices (the records stay where they are, taken
        // out one by one as their image is converted).
        let mut anns = anns;
        let mut per_image: Vec<Vec<u32>> = (0..images.len()).map(|_| Vec::new()).collect();
        let at = |k: usize, id: Option<f64>| {
            let id = id.map_or(String::new(), |id| format!(" (id {id})"));
            format!("annotations[{k}]{id}")
        };
        for (k, a) in anns.iter().enumerate() {
            if a.not_object {
                return Err(FormatError::invalid(
                    file,
                    at(k, None),
                    "an annotation must be an object",
                ));
            }
            let image = a.image_id.filter(|v| v.fract() == 0.0).ok_or_else(|| {
                FormatError::invalid(file, at(k, a.id), "no integer \"image_id\"")
            })?;
            let Some(&img) = by_image.get(&(image as i64)) else {
                return Err(FormatError::invalid(
                    file,
                    at(k, a.id),
                    format!("unknown image id {image}"),
                ));
            };
            per_image[img].push(k as u32);
        }

        for (i, ks) in per_image.into_iter().enumerate() {
            let img = &images[i];
            let mut buf = Buffers::default();
            for k in ks {
                let k = k as usize;
                let a = std::mem::take(&mut anns[k]);
                let id = a.id;
                let label = match a.category_id {
                    None | Some(0.0) => None,
                    Some(c) => Some(*by_cat.get(&(c as i64)).ok_or_else(|| {
                        FormatError::invalid(
                            file,
                            at(k, id),
                            format!("category id {c} is not in \"categories\""),
                        )
                    })?),
                };
                convert(kind, a, label, img, &mut buf)
                    .map_err(|why| FormatError::invalid(file, at(k, id), why))?;
            }
            let item = DmItem {
                id: Some(crate::formats::kit::json::read::Json::Str(Cow::Owned(
                    stems[i].to_owned(),
                ))),
                image_path: Some(Some(crate::formats::kit::json::read::Json::Str(
                    Cow::Owned(img.file_name.clone()),
                ))),
                frame_attr: None,
                annotations: AnnotationsField::List,
                lists: buf,
            };
            imp.item(file, i, Item::Object(item))?;
        }
    }
    imp.finish()
}
