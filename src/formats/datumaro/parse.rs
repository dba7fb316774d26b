//! The streaming reader: a Datumaro JSON file parsed item by item with serde_json, straight
//! into typed fields, under the read and value limits.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::annotations::Annotations;
use crate::formats::{FormatError, ImportInput, TaskDataset};

use super::import::*;
use super::*;
use crate::formats::kit::json::read::*;
use crate::formats::kit::json::read::{deserialize_any_with, skip_containers, visit_scalars};

// ------------------------------------------------------------------------------------------------
// Import: streaming reader

/// What the streaming parser hands over.
pub(crate) trait Sink<'de> {
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
                    if v.is_array() {
                        // COCO's `categories` (a list): another format's file.
                        return Err(st.fail(FormatError::NotThisFormat {
                            format: DISPLAY.into(),
                            reason: format!("{} has a \"categories\" list: a COCO file", st.file),
                        }));
                    }
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

pub(crate) struct Items<'a, 's, 'de, S: Sink<'de>>(&'a mut ParseState<'s, 'de, S>);

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

/// One entry of an `attributes` object.
pub(crate) type Attr<'de> = (Cow<'de, str>, Json<'de>);

/// CVAT's special attributes of an annotation, found in one pass.
#[derive(Default)]
pub(crate) struct Special<'a, 'de> {
    pub(crate) source: Option<&'a Json<'de>>,
    pub(crate) rotation: Option<&'a Json<'de>>,
    pub(crate) occluded: Option<&'a Json<'de>>,
    pub(crate) outside: Option<&'a Json<'de>>,
    pub(crate) keyframe: Option<&'a Json<'de>>,
    pub(crate) score: Option<&'a Json<'de>>,
    pub(crate) track_id: Option<&'a Json<'de>>,
}

impl<'a, 'de> Special<'a, 'de> {
    pub(crate) fn of(attrs: &'a [Attr<'de>]) -> Self {
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
pub(crate) fn attrs_of(m: &Map<String, Value>) -> Vec<Attr<'_>> {
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
pub(crate) enum AttrsField {
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
pub(crate) struct DmAnnotation<'de> {
    pub(crate) ty: Option<Json<'de>>,
    pub(crate) label_id: Option<Json<'de>>,
    pub(crate) group: Option<Json<'de>>,
    pub(crate) z_order: Option<Json<'de>>,
    pub(crate) attributes: AttrsField,
    pub(crate) points: Option<Vec<f64>>,
    pub(crate) bbox: Option<Vec<f64>>,
    pub(crate) position: Option<Vec<f64>>,
    pub(crate) rotation: Option<Vec<f64>>,
    pub(crate) scale: Option<Vec<f64>>,
    pub(crate) rle: Option<Json<'de>>,
    pub(crate) points_attributes: Option<Json<'de>>,
}

/// An element of an item's `annotations`: its fields, `None` if it is not a JSON object.
#[derive(Debug, Default)]
pub(crate) struct Annotation<'de>(pub(crate) Option<DmAnnotation<'de>>);

impl Annotation<'_> {
    /// The `type`, if it is a string.
    pub(crate) fn ty(&self) -> Option<&str> {
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
pub(crate) enum AnnotationsField {
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
pub(crate) struct Buffers<'de> {
    pub(crate) annotations: Vec<Annotation<'de>>,
    pub(crate) attrs: Vec<Attr<'de>>,
}

impl Buffers<'_> {
    fn clear(&mut self) {
        self.annotations.clear();
        self.attrs.clear();
    }
}

/// The fields of an item that the importer reads (the last value of a repeated one).
#[derive(Debug, Default)]
pub(crate) struct DmItem<'de> {
    pub(crate) id: Option<Json<'de>>,
    /// `image.path`; `None` if `image` is missing or not an object.
    pub(crate) image_path: Option<Option<Json<'de>>>,
    /// `attr.frame`; `None` if `attr` is missing or not an object.
    pub(crate) frame_attr: Option<Option<Json<'de>>>,
    pub(crate) annotations: AnnotationsField,
    /// The annotations (if `annotations` is a list) and their attributes.
    pub(crate) lists: Buffers<'de>,
}

/// An element of the `items` list.
#[derive(Debug)]
pub(crate) enum Item<'de> {
    Object(DmItem<'de>),
    NotObject,
}

impl<'de> Item<'de> {
    /// The item's lists, emptied, for the next item.
    pub(crate) fn into_buffers(self) -> Buffers<'de> {
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

/// Streams one Datumaro JSON file into `sink`: categories first (items met before them are
/// kept until they come), then the items one by one. `size` (the file's size as its container
/// says, if known) sizes the in-memory buffer.
pub(crate) fn parse_file<S: for<'de> Sink<'de>>(
    reader: impl Read,
    size: Option<u64>,
    file: &str,
    limit: u64,
    max_string: u64,
    sink: &mut S,
) -> Result<(), FormatError> {
    match open_json(reader, size, file, limit, max_string)? {
        JsonFile::Whole(bytes) => {
            parse_json(serde_json::Deserializer::from_slice(&bytes), file, sink)
        }
        JsonFile::Stream(r) => parse_json(serde_json::Deserializer::from_reader(r), file, sink),
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

pub(crate) fn parse_json<'de, R: serde_json::de::Read<'de>, S: Sink<'de>>(
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

pub(crate) fn import(
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
