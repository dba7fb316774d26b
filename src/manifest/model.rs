//! The manifest data model, its byte-exact writer (manifest.jsonl + index.json) and its reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use super::json::to_line;
use super::ManifestError;

/// Manifest version we write. Readers accept "1.0" and "1.1".
pub const VERSION: &str = "1.1";
/// File name of the manifest inside an output directory.
pub const MANIFEST_FILE: &str = "manifest.jsonl";
/// File name of the byte-offset index next to the manifest.
pub const INDEX_FILE: &str = "index.json";

/// A chapter line item: `{"start","stop","metadata","id"}` in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chapter {
    pub start: i64,
    pub stop: i64,
    #[serde(serialize_with = "ordered_map")]
    pub metadata: Vec<(String, String)>,
    pub id: i64,
}

fn ordered_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// Video `properties` header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VideoProperties {
    /// Base name of the video file.
    pub name: String,
    /// `[width, height]` after display rotation.
    pub resolution: [u32; 2],
    /// Number of frames.
    pub length: u64,
    /// Chapters (empty when the container has none).
    pub chapters: Vec<Chapter>,
}

/// One seekable key frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFrame {
    /// 0-based frame number in presentation order.
    pub number: u64,
    /// The frame's pts in stream time base: seek target.
    pub pts: i64,
    /// md5 of the frame's packed RGB24 pixels.
    pub checksum: String,
}

/// `meta` of an image with context images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageMeta {
    pub related_images: Vec<String>,
}

/// One image line: `name, extension, width, height, [checksum], [meta]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageItem {
    /// Path relative to the data root, without extension, `/`-separated.
    pub name: String,
    /// Extension with its dot, original case (may be empty).
    pub extension: String,
    pub width: u32,
    pub height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<ImageMeta>,
}

impl ImageItem {
    /// `name + extension`: the path relative to the data root.
    pub fn full_name(&self) -> String {
        format!("{}{}", self.name, self.extension)
    }
}

/// A whole manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Video {
        properties: VideoProperties,
        keyframes: Vec<KeyFrame>,
    },
    Images {
        items: Vec<ImageItem>,
    },
}

#[derive(Serialize)]
struct VersionLine<'a> {
    version: &'a str,
}
#[derive(Serialize)]
struct TypeLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
}
#[derive(Serialize)]
struct PropertiesLine<'a> {
    properties: &'a VideoProperties,
}

impl Manifest {
    /// The manifest's `type`: `video` or `images`.
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Video { .. } => "video",
            Manifest::Images { .. } => "images",
        }
    }

    /// Number of item lines (key frames or images).
    pub fn len(&self) -> usize {
        match self {
            Manifest::Video { keyframes, .. } => keyframes.len(),
            Manifest::Images { items } => items.len(),
        }
    }

    /// True when there are no item lines.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The manifest.jsonl bytes and the index (byte offset of each item line).
    pub fn to_bytes(&self) -> (Vec<u8>, Vec<usize>) {
        let mut out = String::with_capacity(128 + self.len() * 96);
        let push = |out: &mut String, line: String| {
            out.push_str(&line);
            out.push('\n');
        };
        push(&mut out, to_line(&VersionLine { version: VERSION }));
        push(&mut out, to_line(&TypeLine { kind: self.kind() }));
        let mut offsets = Vec::with_capacity(self.len());
        match self {
            Manifest::Video {
                properties,
                keyframes,
            } => {
                push(&mut out, to_line(&PropertiesLine { properties }));
                for k in keyframes {
                    offsets.push(out.len());
                    push(&mut out, to_line(k));
                }
            }
            Manifest::Images { items } => {
                for i in items {
                    offsets.push(out.len());
                    push(&mut out, to_line(i));
                }
            }
        }
        (out.into_bytes(), offsets)
    }

    /// Writes `manifest.jsonl` and `index.json` into `dir` (created with its parents). Each file
    /// is written to a temporary file in `dir` and renamed into place, so a failure never leaves
    /// a half-written manifest. Returns the manifest path.
    pub fn write_to_dir(&self, dir: &Path) -> Result<PathBuf, ManifestError> {
        let out_err = |source| ManifestError::OutputDir {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(out_err)?;
        let (bytes, offsets) = self.to_bytes();
        let manifest = dir.join(MANIFEST_FILE);
        write_atomic(&manifest, &bytes).map_err(|e| match e {
            ManifestError::Io { source, .. } => out_err(source),
            other => other,
        })?;
        write_atomic(&dir.join(INDEX_FILE), index_json(&offsets).as_bytes())?;
        Ok(manifest)
    }
}

/// `index.json` content: `{"0":121,"1":188}`.
pub fn index_json(offsets: &[usize]) -> String {
    let mut s = String::with_capacity(2 + offsets.len() * 12);
    s.push('{');
    for (i, o) in offsets.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"{i}\":{o}"));
    }
    s.push('}');
    s
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".manifest-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ManifestError::io(dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| ManifestError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ManifestError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| ManifestError::io(path, e.error))?;
    Ok(())
}

/// Reads and structurally checks a manifest file (any key order, versions 1.0 and 1.1, blank
/// lines skipped, `chapters` optional). Errors name the line that is wrong.
pub fn read_manifest(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read(path).map_err(|e| ManifestError::io(path, e))?;
    let text =
        String::from_utf8(text).map_err(|_| invalid(path, 0, "the file is not UTF-8 text"))?;
    parse_manifest(path, &text)
}

fn invalid(path: &Path, line: usize, why: impl Into<String>) -> ManifestError {
    ManifestError::InvalidManifest {
        path: path.to_owned(),
        line,
        reason: why.into(),
    }
}

/// Parses manifest text; `path` is used in messages only.
pub fn parse_manifest(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let mut next_json = |what: &str| -> Result<(usize, Value), ManifestError> {
        let (n, l) = lines
            .next()
            .ok_or_else(|| invalid(path, 0, format!("the file ends before the {what} line")))?;
        let v: Value =
            serde_json::from_str(l).map_err(|e| invalid(path, n, format!("not JSON: {e}")))?;
        Ok((n, v))
    };
    let (n, v) = next_json("version")?;
    match v.get("version").and_then(Value::as_str) {
        Some("1.0" | "1.1") => {}
        Some(other) => {
            return Err(invalid(
                path,
                n,
                format!("unsupported version {other:?} (expected \"1.0\" or \"1.1\")"),
            ))
        }
        None => return Err(invalid(path, n, "'version' is required, but not found")),
    }
    let (n, v) = next_json("type")?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(path, n, "'type' is required, but not found"))?
        .to_owned();
    match kind.as_str() {
        "video" => {
            let (n, v) = next_json("properties")?;
            let p = v
                .get("properties")
                .ok_or_else(|| invalid(path, n, "'properties' is required, but not found"))?;
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(path, n, "'properties.name' must be a string"))?;
            let res = p
                .get("resolution")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 2)
                .and_then(|a| Some([a[0].as_u64()? as u32, a[1].as_u64()? as u32]))
                .ok_or_else(|| {
                    invalid(path, n, "'properties.resolution' must be [width, height]")
                })?;
            let length = p
                .get("length")
                .and_then(Value::as_u64)
                .filter(|&l| l != 0)
                .ok_or_else(|| {
                    invalid(path, n, "'properties.length' must be a positive integer")
                })?;
            let chapters = match p.get("chapters") {
                None | Some(Value::Null) => Vec::new(),
                Some(c) => parse_chapters(c)
                    .ok_or_else(|| invalid(path, n, "'properties.chapters' is malformed"))?,
            };
            let mut keyframes = Vec::new();
            for (n, l) in lines {
                let v: Value = serde_json::from_str(l)
                    .map_err(|e| invalid(path, n, format!("not JSON: {e}")))?;
                let number = v
                    .get("number")
                    .ok_or_else(|| invalid(path, n, "'number' is required, but not found"))?;
                let number = number
                    .as_u64()
                    .ok_or_else(|| invalid(path, n, "'number' must be a non-negative integer"))?;
                let pts = v
                    .get("pts")
                    .ok_or_else(|| invalid(path, n, "'pts' is required, but not found"))?;
                let pts = pts
                    .as_i64()
                    .ok_or_else(|| invalid(path, n, "'pts' must be an integer"))?;
                let checksum = v
                    .get("checksum")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                keyframes.push(KeyFrame {
                    number,
                    pts,
                    checksum,
                });
            }
            Ok(Manifest::Video {
                properties: VideoProperties {
                    name: name.to_owned(),
                    resolution: res,
                    length,
                    chapters,
                },
                keyframes,
            })
        }
        "images" => {
            let mut items = Vec::new();
            for (n, l) in lines {
                let v: Value = serde_json::from_str(l)
                    .map_err(|e| invalid(path, n, format!("not JSON: {e}")))?;
                let s = |k: &str| -> Result<String, ManifestError> {
                    v.get(k)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            invalid(path, n, format!("'{k}' is required, but not found"))
                        })
                };
                let u = |k: &str| -> Result<u32, ManifestError> {
                    v.get(k)
                        .and_then(Value::as_u64)
                        .map(|x| x as u32)
                        .ok_or_else(|| invalid(path, n, format!("'{k}' must be an integer")))
                };
                let meta = v
                    .get("meta")
                    .and_then(|m| m.get("related_images"))
                    .and_then(Value::as_array)
                    .map(|a| ImageMeta {
                        related_images: a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect(),
                    });
                items.push(ImageItem {
                    name: s("name")?,
                    extension: s("extension")?,
                    width: u("width")?,
                    height: u("height")?,
                    checksum: v.get("checksum").and_then(Value::as_str).map(str::to_owned),
                    meta,
                });
            }
            Ok(Manifest::Images { items })
        }
        other => Err(invalid(
            path,
            n,
            format!("unknown manifest type {other:?} (expected \"video\" or \"images\")"),
        )),
    }
}

fn parse_chapters(v: &Value) -> Option<Vec<Chapter>> {
    v.as_array()?
        .iter()
        .map(|c| {
            Some(Chapter {
                start: c.get("start")?.as_i64()?,
                stop: c.get("stop")?.as_i64()?,
                metadata: c
                    .get("metadata")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str()
                                        .map(str::to_owned)
                                        .unwrap_or_else(|| v.to_string()),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                id: c.get("id")?.as_i64()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video() -> Manifest {
        Manifest::Video {
            properties: VideoProperties {
                name: "video_1.mp4".into(),
                resolution: [800, 800],
                length: 3,
                chapters: vec![],
            },
            keyframes: vec![KeyFrame {
                number: 0,
                pts: 0,
                checksum: "e2d72b868aa94fa82bab9f43cfc40939".into(),
            }],
        }
    }

    #[test]
    fn video_bytes_and_index_match_cvat() {
        let (bytes, offsets) = video().to_bytes();
        let expected = "{\"version\":\"1.1\"}\n{\"type\":\"video\"}\n{\"properties\":{\"name\":\"video_1.mp4\",\"resolution\":[800,800],\"length\":3,\"chapters\":[]}}\n{\"number\":0,\"pts\":0,\"checksum\":\"e2d72b868aa94fa82bab9f43cfc40939\"}\n";
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        assert_eq!(index_json(&offsets), r#"{"0":121}"#);
    }

    #[test]
    fn chapter_keys_keep_their_order() {
        let c = Chapter {
            start: 0,
            stop: 9,
            metadata: vec![("title".into(), "Zé".into()), ("a".into(), "b".into())],
            id: 1,
        };
        assert_eq!(
            to_line(&c),
            r#"{"start":0,"stop":9,"metadata":{"title":"Z\u00e9","a":"b"},"id":1}"#
        );
    }

    #[test]
    fn round_trips_and_reports_bad_lines() {
        let (bytes, _) = video().to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(parse_manifest(Path::new("m"), &text).unwrap(), video());
        let broken = text.replace("\"pts\":0", "\"ptz\":0");
        let e = parse_manifest(Path::new("m"), &broken)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4") && e.contains("'pts' is required"),
            "{e}"
        );
        let old = text.replace(",\"chapters\":[]", "").replace("1.1", "1.0");
        assert!(parse_manifest(Path::new("m"), &old).is_ok());
        assert!(parse_manifest(Path::new("m"), "{\"version\":\"2.0\"}\n").is_err());
    }
}
