//! The streaming reader: a Datumaro JSON file parsed item by item with serde_json, straight
//! into typed fields, under the read and value limits.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::annotations::Annotations;
use crate::formats::{read_error, FormatError, ImportInput, TaskDataset, ValueTooLarge};

use super::import::*;
use super::*;

// ------------------------------------------------------------------------------------------------
// Import: streaming reader

/// A reader that fails once more than `limit` bytes were read, or once a JSON string in what it
/// reads is longer than `max_string` bytes (escaped, as in the file: at least its decoded size).
/// Everything the parser sees comes through it, so no string it buffers can be larger.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    max_string: u64,
    strings: StringScan,
}

impl<R> Limited<R> {
    fn new(inner: R, limit: u64, max_string: u64) -> Self {
        Limited {
            inner,
            left: limit,
            limit,
            max_string,
            strings: StringScan::default(),
        }
    }
}

#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the file is larger than {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(TooLarge(self.limit)));
        }
        self.left -= n as u64;
        if !self.strings.scan(&buf[..n], self.max_string) {
            return Err(std::io::Error::other(ValueTooLarge {
                what: "a JSON string",
                limit: self.max_string,
            }));
        }
        Ok(n)
    }
}

/// Where the bytes read so far leave a JSON lexer: inside a string or not, and how long the
/// string is so far. Only `"` and `\` matter (JSON has no other quoting), found with `memchr`.
#[derive(Debug, Default)]
pub(super) struct StringScan {
    in_string: bool,
    /// The previous byte was the `\` of an escape.
    escape: bool,
    /// Bytes of the current string so far.
    run: u64,
}

impl StringScan {
    /// Scans the next bytes; false once a string is longer than `max`.
    pub(super) fn scan(&mut self, mut buf: &[u8], max: u64) -> bool {
        while !buf.is_empty() {
            if !self.in_string {
                let Some(k) = memchr::memchr(b'"', buf) else {
                    return true;
                };
                buf = &buf[k + 1..];
                self.in_string = true;
                self.run = 0;
            } else if self.escape {
                self.escape = false;
                self.run += 1;
                buf = &buf[1..];
            } else {
                match memchr::memchr2(b'"', b'\\', buf) {
                    None => {
                        self.run += buf.len() as u64;
                        buf = &[];
                    }
                    Some(k) => {
                        self.run += k as u64;
                        if buf[k] == b'"' {
                            self.in_string = false;
                        } else {
                            self.escape = true;
                            self.run += 1;
                        }
                        buf = &buf[k + 1..];
                    }
                }
            }
            if self.run > max {
                return false;
            }
        }
        true
    }
}

/// What the streaming parser hands over.
pub(super) trait Sink<'de> {
    fn categories(&mut self, file: &str, cats: Value) -> Result<(), FormatError>;
    /// Takes one item; gives back lists to reuse for the next one.
    fn item(
        &mut self,
        file: &str,
        index: usize,
        item: Item<'de>,
    ) -> Result<Buffers<'de>, FormatError>;
}

struct ParseState<'s, 'de, S: Sink<'de>> {
    sink: &'s mut S,
    file: &'s str,
    /// The item being parsed (for syntax errors inside `items`).
    current: Option<usize>,
    /// A conversion error (serde errors carry only text; the real one is kept here).
    failed: Option<FormatError>,
    has_categories: bool,
    has_items: bool,
    /// Items seen before `categories`.
    pending: Vec<(usize, Item<'de>)>,
}

impl<'de, S: Sink<'de>> ParseState<'_, 'de, S> {
    fn fail<E: de::Error>(&mut self, e: FormatError) -> E {
        self.failed = Some(e);
        E::custom("conversion failed")
    }

    /// Hands an item over (or keeps it until the categories come); gives back its emptied
    /// lists for the next one.
    fn item<E: de::Error>(&mut self, index: usize, v: Item<'de>) -> Result<Buffers<'de>, E> {
        if !self.has_categories {
            self.pending.push((index, v));
            return Ok(Buffers::default());
        }
        self.sink
            .item(self.file, index, v)
            .map_err(|e| self.fail(e))
    }
}

struct Top<'a, 's, 'de, S: Sink<'de>>(&'a mut ParseState<'s, 'de, S>);

impl<'de, S: Sink<'de>> Visitor<'de> for Top<'_, '_, 'de, S> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Datumaro annotation file (a JSON object with \"categories\" and \"items\")")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "categories" => {
                    let v: Value = map.next_value()?;
                    st.sink
                        .categories(st.file, v)
                        .map_err(|e| st.fail::<A::Error>(e))?;
                    st.has_categories = true;
                    for (i, item) in std::mem::take(&mut st.pending) {
                        st.item::<A::Error>(i, item)?;
                    }
                }
                "items" => {
                    map.next_value_seed(Items(&mut *st))?;
                    st.has_items = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Top<'_, '_, 'de, S> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

pub(super) struct Items<'a, 's, 'de, S: Sink<'de>>(&'a mut ParseState<'s, 'de, S>);

impl<'de, S: Sink<'de>> Visitor<'de> for Items<'_, '_, 'de, S> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let st = self.0;
        let mut i = 0;
        let mut lists = Buffers::default();
        loop {
            st.current = Some(i);
            let Some(v) = seq.next_element_seed(ItemSeed { lists })? else {
                break;
            };
            lists = st.item::<A::Error>(i, v)?;
            i += 1;
        }
        st.current = None;
        Ok(())
    }
}

impl<'de, S: Sink<'de>> DeserializeSeed<'de> for Items<'_, '_, 'de, S> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

// ------------------------------------------------------------------------------------------------
// Import: typed items
//
// Items are read straight into the types below instead of `Value` trees: strings borrowed from
// the input where possible, number lists as `f64`s, unknown fields dropped. Nothing here
// rejects a value of the wrong type: it is kept (or marked) so that the conversion reports it
// with the same message and in the same order as when items were `Value`s. Everything is read
// through `deserialize_any`, so syntax errors (and what counts as one: UTF-8, escapes, number
// range, nesting depth) are those of a `Value` parse.

/// Visitor methods for JSON scalars: `null` gives `$null`, any other scalar `$other`.
macro_rules! visit_scalars {
    ($null:expr, $other:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($null)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// Visitor methods that read and drop a list (`seq`) or an object (`map`), giving `$v`.
macro_rules! skip_containers {
    (seq: $s:expr, map: $m:expr) => {
        skip_containers!(seq: $s);
        skip_containers!(map: $m);
    };
    (seq: $v:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Skip.visit_seq(seq)?;
            Ok($v)
        }
    };
    (map: $v:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Skip.visit_map(map)?;
            Ok($v)
        }
    };
}

/// `impl Deserialize for $t`: `deserialize_any` with visitor `$v`.
macro_rules! deserialize_any_with {
    ($t:ty, $v:expr) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($v)
            }
        }
    };
}

/// Any JSON value, read and dropped. Unlike [`IgnoredAny`] it checks what a `Value` parse
/// checks (UTF-8 in strings, number range), so unknown fields fail as they used to.
struct Skip;

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Skip, Skip);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

deserialize_any_with!(Skip, Skip);

/// A JSON value as the importer keeps it: scalars typed (strings borrowed from the input where
/// possible), lists and objects, which no field the importer reads holds, as a `Value`.
#[derive(Debug)]
pub(super) enum Json<'de> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'de, str>),
    Other(Box<Value>),
}

impl<'de> Json<'de> {
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => n.as_f64(),
            _ => None,
        }
    }
    pub(super) fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.as_u64(),
            _ => None,
        }
    }
    pub(super) fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
    /// The list or object, if it is one.
    pub(super) fn as_value(&self) -> Option<&Value> {
        match self {
            Json::Other(v) => Some(v),
            _ => None,
        }
    }
    pub(super) fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Other(v) => (**v).clone(),
        }
    }
    fn from_value(v: &'de Value) -> Self {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Num(n.clone()),
            Value::String(s) => Json::Str(Cow::Borrowed(s)),
            other => Json::Other(Box::new(other.clone())),
        }
    }
}

/// As JSON text, like `Value`'s `Display`.
impl std::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_value().fmt(f)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Num))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Json<'de>, A::Error> {
        let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Json::Other(Box::new(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json<'de>, A::Error> {
        let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Json::Other(Box::new(v)))
    }
}

deserialize_any_with!(Json<'de>, JsonVisitor);

/// One element of a number list: `Some` if it is a number.
pub(super) struct Num(Option<f64>);

impl<'de> Visitor<'de> for Num {
    type Value = Num;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num(Some(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num(Some(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num(Some(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
        Ok(Num(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Num, E> {
        Ok(Num(None))
    }
    skip_containers!(seq: Num(None), map: Num(None));
}

deserialize_any_with!(Num, Num(None));

/// A list of numbers as `f64`s; `None` for anything else (`numbers` gives the error).
pub(super) struct Numbers(Option<Vec<f64>>);

impl<'de> Visitor<'de> for Numbers {
    type Value = Numbers;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Numbers(None), Numbers(None));
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Numbers, A::Error> {
        // Most lists are short: gathered on the stack, then allocated once at their length.
        let mut head = [0.0; 16];
        let mut n = 0;
        let mut long: Vec<f64> = Vec::new();
        let mut ok = true;
        while let Some(Num(x)) = seq.next_element()? {
            match x {
                Some(x) if ok => {
                    if n < head.len() {
                        head[n] = x;
                        n += 1;
                    } else {
                        if long.is_empty() {
                            long.reserve(4 * head.len());
                            long.extend_from_slice(&head);
                        }
                        long.push(x);
                    }
                }
                _ => ok = false,
            }
        }
        Ok(Numbers(ok.then(|| {
            if long.is_empty() {
                head[..n].to_vec()
            } else {
                long
            }
        })))
    }
    skip_containers!(map: Numbers(None));
}

deserialize_any_with!(Numbers, Numbers(None));

/// An attribute name, borrowed from the input where possible.
struct Name<'de>(Cow<'de, str>);

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(s.to_owned())))
    }
}

deserialize_any_with!(Name<'de>, NameVisitor);

/// One entry of an `attributes` object.
pub(super) type Attr<'de> = (Cow<'de, str>, Json<'de>);

/// CVAT's special attributes of an annotation, found in one pass.
#[derive(Default)]
pub(super) struct Special<'a, 'de> {
    pub(super) source: Option<&'a Json<'de>>,
    pub(super) rotation: Option<&'a Json<'de>>,
    pub(super) occluded: Option<&'a Json<'de>>,
    pub(super) outside: Option<&'a Json<'de>>,
    pub(super) keyframe: Option<&'a Json<'de>>,
    pub(super) score: Option<&'a Json<'de>>,
    pub(super) track_id: Option<&'a Json<'de>>,
}

impl<'a, 'de> Special<'a, 'de> {
    pub(super) fn of(attrs: &'a [Attr<'de>]) -> Self {
        let mut s = Special::default();
        for (k, v) in attrs {
            let slot = match k.as_ref() {
                "source" => &mut s.source,
                "rotation" => &mut s.rotation,
                "occluded" => &mut s.occluded,
                "outside" => &mut s.outside,
                "keyframe" => &mut s.keyframe,
                "score" => &mut s.score,
                "track_id" => &mut s.track_id,
                _ => continue,
            };
            *slot = Some(v);
        }
        s
    }
}

/// The entries of a parsed object (skeleton point attributes).
pub(super) fn attrs_of(m: &Map<String, Value>) -> Vec<Attr<'_>> {
    m.iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from_value(v)))
        .collect()
}

/// Merges repeated names in `attrs[start..]` as a `serde_json::Map` does: first place, last
/// value. Repetitions are rare, so they are looked for first, without allocating for a few
/// names.
fn merge_repeated(attrs: &mut Vec<Attr<'_>>, start: usize) {
    let new = &attrs[start..];
    let n = new.len();
    let repeated = if n <= 16 {
        (1..n).any(|i| new[..i].iter().any(|(k, _)| *k == new[i].0))
    } else {
        let mut seen = HashSet::with_capacity(n);
        !new.iter().all(|(k, _)| seen.insert(k.as_ref()))
    };
    if !repeated {
        return;
    }
    let mut at: HashMap<Cow<'_, str>, usize> = HashMap::new();
    let mut merged: Vec<Attr<'_>> = Vec::with_capacity(n);
    for (k, v) in attrs.drain(start..) {
        match at.get(&k) {
            Some(&i) => merged[i].1 = v,
            None => {
                at.insert(k.clone(), merged.len());
                merged.push((k, v));
            }
        }
    }
    attrs.append(&mut merged);
}

/// The `attributes` field of an annotation.
#[derive(Debug, Default)]
pub(super) enum AttrsField {
    /// Missing or `null`.
    #[default]
    Absent,
    /// Its entries in the item's [`DmItem::attrs`].
    Object(std::ops::Range<usize>),
    NotObject,
}

/// Reads an `attributes` field, appending an object's entries to the item's attribute list.
struct AttrsSeed<'a, 'de>(&'a mut Vec<Attr<'de>>);

impl<'de> Visitor<'de> for AttrsSeed<'_, 'de> {
    type Value = AttrsField;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(AttrsField::Absent, AttrsField::NotObject);
    skip_containers!(seq: AttrsField::NotObject);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrsField, A::Error> {
        let start = self.0.len();
        while let Some((Name(k), v)) = map.next_entry()? {
            self.0.push((k, v));
        }
        merge_repeated(self.0, start);
        Ok(AttrsField::Object(start..self.0.len()))
    }
}

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_, 'de> {
    type Value = AttrsField;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<AttrsField, D::Error> {
        d.deserialize_any(self)
    }
}

/// The fields of an annotation that the importer reads (the last value of a repeated one;
/// number lists `None` when missing or not lists of numbers).
#[derive(Debug, Default)]
pub(super) struct DmAnnotation<'de> {
    pub(super) ty: Option<Json<'de>>,
    pub(super) label_id: Option<Json<'de>>,
    pub(super) group: Option<Json<'de>>,
    pub(super) z_order: Option<Json<'de>>,
    pub(super) attributes: AttrsField,
    pub(super) points: Option<Vec<f64>>,
    pub(super) bbox: Option<Vec<f64>>,
    pub(super) position: Option<Vec<f64>>,
    pub(super) rotation: Option<Vec<f64>>,
    pub(super) scale: Option<Vec<f64>>,
    pub(super) rle: Option<Json<'de>>,
    pub(super) points_attributes: Option<Json<'de>>,
}

/// An element of an item's `annotations`: its fields, `None` if it is not a JSON object.
#[derive(Debug, Default)]
pub(super) struct Annotation<'de>(pub(super) Option<DmAnnotation<'de>>);

impl Annotation<'_> {
    /// The `type`, if it is a string.
    pub(super) fn ty(&self) -> Option<&str> {
        self.0.as_ref()?.ty.as_ref()?.as_str()
    }
}

/// The annotation field a key names.
enum AnnKey {
    Type,
    LabelId,
    Group,
    ZOrder,
    Attributes,
    Points,
    Bbox,
    Position,
    Rotation,
    Scale,
    Rle,
    PointsAttributes,
    Other,
}

impl<'de> Visitor<'de> for AnnKey {
    type Value = AnnKey;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<AnnKey, E> {
        Ok(match s {
            "type" => AnnKey::Type,
            "label_id" => AnnKey::LabelId,
            "group" => AnnKey::Group,
            "z_order" => AnnKey::ZOrder,
            "attributes" => AnnKey::Attributes,
            "points" => AnnKey::Points,
            "bbox" => AnnKey::Bbox,
            "position" => AnnKey::Position,
            "rotation" => AnnKey::Rotation,
            "scale" => AnnKey::Scale,
            "rle" => AnnKey::Rle,
            "points_attributes" => AnnKey::PointsAttributes,
            _ => AnnKey::Other,
        })
    }
}

deserialize_any_with!(AnnKey, AnnKey::Other);

/// Reads an annotation into `slot`, its attributes into `attrs`.
struct AnnotationSeed<'a, 'de> {
    slot: &'a mut Annotation<'de>,
    attrs: &'a mut Vec<Attr<'de>>,
}

impl<'de> Visitor<'de> for AnnotationSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!((), ());
    skip_containers!(seq: ());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let a = self.slot.0.insert(DmAnnotation::default());
        while let Some(key) = map.next_key::<AnnKey>()? {
            match key {
                AnnKey::Type => a.ty = Some(map.next_value()?),
                AnnKey::LabelId => a.label_id = Some(map.next_value()?),
                AnnKey::Group => a.group = Some(map.next_value()?),
                AnnKey::ZOrder => a.z_order = Some(map.next_value()?),
                AnnKey::Attributes => {
                    a.attributes = map.next_value_seed(AttrsSeed(&mut *self.attrs))?
                }
                AnnKey::Points => a.points = map.next_value::<Numbers>()?.0,
                AnnKey::Bbox => a.bbox = map.next_value::<Numbers>()?.0,
                AnnKey::Position => a.position = map.next_value::<Numbers>()?.0,
                AnnKey::Rotation => a.rotation = map.next_value::<Numbers>()?.0,
                AnnKey::Scale => a.scale = map.next_value::<Numbers>()?.0,
                AnnKey::Rle => a.rle = Some(map.next_value()?),
                AnnKey::PointsAttributes => a.points_attributes = Some(map.next_value()?),
                AnnKey::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for AnnotationSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// What an item's `annotations` field is.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) enum AnnotationsField {
    /// Missing or `null`.
    #[default]
    Absent,
    /// A list, in [`DmItem::annotations`].
    List,
    NotList,
}

/// Reads an `annotations` field into the item's (reused) lists.
struct AnnotationsSeed<'a, 'de>(&'a mut Buffers<'de>);

impl<'de> Visitor<'de> for AnnotationsSeed<'_, 'de> {
    type Value = AnnotationsField;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(AnnotationsField::Absent, AnnotationsField::NotList);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnnotationsField, A::Error> {
        let Buffers { annotations, attrs } = self.0;
        loop {
            annotations.push(Annotation::default());
            let slot = annotations.last_mut().expect("just pushed");
            let seed = AnnotationSeed {
                slot,
                attrs: &mut *attrs,
            };
            if seq.next_element_seed(seed)?.is_none() {
                annotations.pop();
                return Ok(AnnotationsField::List);
            }
        }
    }
    skip_containers!(map: AnnotationsField::NotList);
}

impl<'de> DeserializeSeed<'de> for AnnotationsSeed<'_, 'de> {
    type Value = AnnotationsField;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<AnnotationsField, D::Error> {
        self.0.clear();
        d.deserialize_any(self)
    }
}

/// An item's annotations and their attributes; kept from item to item so that their memory is
/// reused.
#[derive(Debug, Default)]
pub(super) struct Buffers<'de> {
    pub(super) annotations: Vec<Annotation<'de>>,
    pub(super) attrs: Vec<Attr<'de>>,
}

impl Buffers<'_> {
    fn clear(&mut self) {
        self.annotations.clear();
        self.attrs.clear();
    }
}

/// One field of an object: `None` if the value is not an object, else the field's (last)
/// value if it has it.
struct FieldOf(&'static str);

impl<'de> Visitor<'de> for FieldOf {
    type Value = Option<Option<Json<'de>>>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(None, None);
    skip_containers!(seq: None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Name(key)) = map.next_key()? {
            if key == self.0 {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Some(found))
    }
}

impl<'de> DeserializeSeed<'de> for FieldOf {
    type Value = Option<Option<Json<'de>>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// The fields of an item that the importer reads (the last value of a repeated one).
#[derive(Debug, Default)]
pub(super) struct DmItem<'de> {
    pub(super) id: Option<Json<'de>>,
    /// `image.path`; `None` if `image` is missing or not an object.
    pub(super) image_path: Option<Option<Json<'de>>>,
    /// `attr.frame`; `None` if `attr` is missing or not an object.
    pub(super) frame_attr: Option<Option<Json<'de>>>,
    pub(super) annotations: AnnotationsField,
    /// The annotations (if `annotations` is a list) and their attributes.
    pub(super) lists: Buffers<'de>,
}

/// An element of the `items` list.
#[derive(Debug)]
pub(super) enum Item<'de> {
    Object(DmItem<'de>),
    NotObject,
}

impl<'de> Item<'de> {
    /// The item's lists, emptied, for the next item.
    pub(super) fn into_buffers(self) -> Buffers<'de> {
        match self {
            Item::Object(DmItem { mut lists, .. }) => {
                lists.clear();
                lists
            }
            Item::NotObject => Buffers::default(),
        }
    }
}

/// Reads an item, reusing `lists`.
struct ItemSeed<'de> {
    lists: Buffers<'de>,
}

impl<'de> Visitor<'de> for ItemSeed<'de> {
    type Value = Item<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    visit_scalars!(Item::NotObject, Item::NotObject);
    skip_containers!(seq: Item::NotObject);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut it = DmItem {
            lists: self.lists,
            ..DmItem::default()
        };
        while let Some(Name(key)) = map.next_key()? {
            match key.as_ref() {
                "id" => it.id = Some(map.next_value()?),
                "image" => it.image_path = map.next_value_seed(FieldOf("path"))?,
                "attr" => it.frame_attr = map.next_value_seed(FieldOf("frame"))?,
                "annotations" => {
                    it.annotations = map.next_value_seed(AnnotationsSeed(&mut it.lists))?
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Item::Object(it))
    }
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'de> {
    type Value = Item<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Annotation files up to this size are read whole and parsed from memory (serde_json parses
/// a slice about twice as fast as a reader, and strings can be borrowed); larger ones are
/// streamed.
pub(super) const IN_MEMORY_MAX: u64 = 256 << 20;

/// Reads up to `IN_MEMORY_MAX + 1` bytes of `reader` into `head`, as `read_to_end` does, but
/// into a zeroed buffer of the `expected` size first: `calloc` hands out fresh pages without
/// writing them, where `read_to_end` would zero its spare capacity before each read.
fn read_head(
    reader: &mut impl Read,
    expected: usize,
    head: &mut Vec<u8>,
) -> std::io::Result<()> {
    *head = vec![0; expected];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    if filled == expected {
        // The size was not known, or is wrong: read what is left.
        reader
            .take(IN_MEMORY_MAX + 1 - filled as u64)
            .read_to_end(head)?;
    }
    Ok(())
}

/// Streams one Datumaro JSON file into `sink`: categories first (items met before them are
/// kept until they come), then the items one by one. `size` (the file's size as its container
/// says, if known) sizes the in-memory buffer.
pub(super) fn parse_file<S: for<'de> Sink<'de>>(
    reader: impl Read,
    size: Option<u64>,
    file: &str,
    limit: u64,
    max_string: u64,
    sink: &mut S,
) -> Result<(), FormatError> {
    let mut reader = Limited::new(reader, limit, max_string);
    let expected = size.unwrap_or(0).min(limit).min(IN_MEMORY_MAX) as usize;
    let mut head = Vec::new();
    if let Err(e) = read_head(&mut reader, expected, &mut head) {
        return Err(read_failed(file, e));
    }
    if head.len() as u64 <= IN_MEMORY_MAX {
        return parse_json(serde_json::Deserializer::from_slice(&head), file, sink);
    }
    let rest = BufReader::with_capacity(1 << 16, std::io::Cursor::new(head).chain(reader));
    parse_json(serde_json::Deserializer::from_reader(rest), file, sink)
}

/// A read of `file` failed: the file limit, else an import limit or I/O ([`read_error`]).
fn read_failed(file: &str, e: std::io::Error) -> FormatError {
    match e.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
        Some(t) => FormatError::invalid(file, "", t.to_string()),
        None => read_error(file, e),
    }
}

impl<'s, 'de, S: Sink<'de>> ParseState<'s, 'de, S> {
    fn new(sink: &'s mut S, file: &'s str) -> Self {
        ParseState {
            sink,
            file,
            current: None,
            failed: None,
            has_categories: false,
            has_items: false,
            pending: Vec::new(),
        }
    }

    /// After the whole file: it must have had both keys.
    fn check_keys(&self) -> Result<(), FormatError> {
        if !self.has_categories || !self.has_items {
            return Err(FormatError::NotThisFormat {
                format: DISPLAY.into(),
                reason: format!(
                    "{} must be a JSON object with \"categories\" and \"items\" keys",
                    self.file
                ),
            });
        }
        Ok(())
    }
}

pub(super) fn parse_json<'de, R: serde_json::de::Read<'de>, S: Sink<'de>>(
    mut de: serde_json::Deserializer<R>,
    file: &str,
    sink: &mut S,
) -> Result<(), FormatError> {
    let mut st = ParseState::new(sink, file);
    let res = Top(&mut st).deserialize(&mut de).and_then(|_| de.end());
    if let Some(e) = st.failed.take() {
        return Err(e);
    }
    if let Err(e) = res {
        if e.is_io() {
            return Err(read_failed(file, std::io::Error::from(e)));
        }
        let location = match st.current {
            Some(i) => format!("item #{i}"),
            None => String::new(),
        };
        return Err(FormatError::invalid(
            file,
            location,
            format!("invalid JSON: {e}"),
        ));
    }
    st.check_keys()
}

/// The annotation files of an import: `annotations/*.json` in a zip (any depth), or the bare file.
fn annotation_files(input: &ImportInput) -> Result<Vec<String>, FormatError> {
    if !input.is_zip() {
        return Ok(input.names());
    }
    let mut files: Vec<String> = input
        .names()
        .into_iter()
        .filter(|n| {
            let (dir, name) = n.rsplit_once('/').unwrap_or(("", n));
            let parent = dir.rsplit('/').next().unwrap_or("");
            parent == "annotations"
                && !n.starts_with("__MACOSX/")
                && name.len() > 5
                && name.to_ascii_lowercase().ends_with(".json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(FormatError::NotThisFormat {
            format: DISPLAY.into(),
            reason: "the dataset must contain a file matching pattern annotations/*.json".into(),
        });
    }
    Ok(files)
}

pub(super) fn import(
    input: &ImportInput,
    ds: &TaskDataset<'_>,
    limit: u64,
) -> Result<Annotations, FormatError> {
    let files = annotation_files(input)?;
    let max_string = input.limits().max_value;
    let mut imp = Importer::new(ds);
    for name in &files {
        input.with_reader(name, |r, size| {
            parse_file(r, size, name, limit, max_string, &mut imp)
        })??;
    }
    imp.finish()
}
