//! Reading JSON annotation files: under the import limits (the file's size, the longest string),
//! from memory when small enough, streamed otherwise, and straight into typed values (no `Value`
//! trees) with serde visitors: [`Skip`], [`Json`] scalars, [`Num`]/[`Numbers`], [`Name`],
//! [`FieldOf`].

use std::borrow::Cow;
use std::io::{BufReader, Read};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Number, Value};

use crate::formats::{read_error, FormatError, ValueTooLarge};

// ------------------------------------------------------------------------------------------------
// Limits

/// A reader that fails once more than `limit` bytes were read, or once a JSON string in what it
/// reads is longer than `max_string` bytes (escaped, as in the file: at least its decoded size).
/// Everything the parser sees comes through it, so no string it buffers can be larger.
pub struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    max_string: u64,
    strings: StringScan,
}

impl<R> Limited<R> {
    pub fn new(inner: R, limit: u64, max_string: u64) -> Self {
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
pub struct TooLarge(u64);

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
pub struct StringScan {
    in_string: bool,
    /// The previous byte was the `\` of an escape.
    escape: bool,
    /// Bytes of the current string so far.
    run: u64,
}

impl StringScan {
    /// Scans the next bytes; false once a string is longer than `max`.
    pub fn scan(&mut self, mut buf: &[u8], max: u64) -> bool {
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

/// Annotation files up to this size are read whole and parsed from memory (serde_json parses
/// a slice about twice as fast as a reader, and strings can be borrowed); larger ones are
/// streamed.
pub const IN_MEMORY_MAX: u64 = 256 << 20;

/// Reads up to `IN_MEMORY_MAX + 1` bytes of `reader` into `head`, as `read_to_end` does, but
/// into a zeroed buffer of the `expected` size first: `calloc` hands out fresh pages without
/// writing them, where `read_to_end` would zero its spare capacity before each read.
pub fn read_head(
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

/// A read of `file` failed: the file limit, else an import limit or I/O ([`read_error`]).
pub fn read_failed(file: &str, e: std::io::Error) -> FormatError {
    match e.get_ref().and_then(|r| r.downcast_ref::<TooLarge>()) {
        Some(t) => FormatError::invalid(file, "", t.to_string()),
        None => read_error(file, e),
    }
}

/// A JSON file opened under the limits: whole in memory (parse it with
/// `serde_json::Deserializer::from_slice`, strings can be borrowed) or, past [`IN_MEMORY_MAX`],
/// as a buffered stream (`from_reader`).
pub enum JsonFile<R: Read> {
    Whole(Vec<u8>),
    Stream(BufReader<std::io::Chain<std::io::Cursor<Vec<u8>>, Limited<R>>>),
}

/// Opens `reader` (the file `file`, `size` bytes as its container says, if known): at most
/// `limit` bytes, no string longer than `max_string`.
pub fn open_json<R: Read>(
    reader: R,
    size: Option<u64>,
    file: &str,
    limit: u64,
    max_string: u64,
) -> Result<JsonFile<R>, FormatError> {
    let mut reader = Limited::new(reader, limit, max_string);
    let expected = size.unwrap_or(0).min(limit).min(IN_MEMORY_MAX) as usize;
    let mut head = Vec::new();
    if let Err(e) = read_head(&mut reader, expected, &mut head) {
        return Err(read_failed(file, e));
    }
    if head.len() as u64 <= IN_MEMORY_MAX {
        return Ok(JsonFile::Whole(head));
    }
    Ok(JsonFile::Stream(BufReader::with_capacity(
        1 << 16,
        std::io::Cursor::new(head).chain(reader),
    )))
}

// ------------------------------------------------------------------------------------------------
// Typed values
//
// Read through `deserialize_any`, so syntax errors (and what counts as one: UTF-8, escapes,
// number range, nesting depth) are those of a `Value` parse.

/// Visitor methods for JSON scalars: `null` gives `$null`, any other scalar `$other`.
macro_rules! visit_scalars {
    ($null:expr, $other:expr) => {
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($null)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
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
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            serde::de::Visitor::visit_seq($crate::formats::kit::json::read::Skip, seq)?;
            Ok($v)
        }
    };
    (map: $v:expr) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            serde::de::Visitor::visit_map($crate::formats::kit::json::read::Skip, map)?;
            Ok($v)
        }
    };
}

/// `impl Deserialize for $t`: `deserialize_any` with visitor `$v`.
macro_rules! deserialize_any_with {
    ($t:ty, $v:expr) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($v)
            }
        }
    };
}

pub(crate) use {deserialize_any_with, skip_containers, visit_scalars};

/// Any JSON value, read and dropped. Unlike [`IgnoredAny`] it checks what a `Value` parse
/// checks (UTF-8 in strings, number range), so unknown fields fail as they used to.
pub struct Skip;

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
pub enum Json<'de> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'de, str>),
    Other(Box<Value>),
}

impl<'de> Json<'de> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => n.as_f64(),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.as_u64(),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
    /// The list or object, if it is one.
    pub fn as_value(&self) -> Option<&Value> {
        match self {
            Json::Other(v) => Some(v),
            _ => None,
        }
    }
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Other(v) => (**v).clone(),
        }
    }
    pub fn from_value(v: &'de Value) -> Self {
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

pub struct JsonVisitor;

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
pub struct Num(pub Option<f64>);

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
pub struct Numbers(pub Option<Vec<f64>>);

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
pub struct Name<'de>(pub Cow<'de, str>);

pub struct NameVisitor;

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

/// One field of an object: `None` if the value is not an object, else the field's (last)
/// value if it has it.
pub struct FieldOf(pub &'static str);

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
