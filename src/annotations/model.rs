//! CVAT's annotation JSON (`LabeledData`): tags, shapes and tracks, with the defaults the server
//! fills in (spec `client-api.md` §9.2). Frames are task-relative.

use serde::{Deserialize, Serialize};

/// An attribute value: the attribute spec id and its value as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeVal {
    pub spec_id: i64,
    pub value: String,
}

/// Shape types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    Rectangle,
    Polygon,
    Polyline,
    Points,
    Ellipse,
    Cuboid,
    Mask,
    Skeleton,
}

impl ShapeType {
    /// CVAT's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShapeType::Rectangle => "rectangle",
            ShapeType::Polygon => "polygon",
            ShapeType::Polyline => "polyline",
            ShapeType::Points => "points",
            ShapeType::Ellipse => "ellipse",
            ShapeType::Cuboid => "cuboid",
            ShapeType::Mask => "mask",
            ShapeType::Skeleton => "skeleton",
        }
    }
}

fn manual() -> String {
    "manual".into()
}

/// A tag (`LabeledImage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(default)]
    pub id: Option<i64>,
    pub frame: u64,
    pub label_id: i64,
    #[serde(default)]
    pub group: u64,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub attributes: Vec<AttributeVal>,
}

/// A shape (`LabeledShape`); skeletons carry their points as `elements` (sub-shapes without
/// elements of their own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: ShapeType,
    pub frame: u64,
    pub label_id: i64,
    #[serde(default)]
    pub group: u64,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub occluded: bool,
    #[serde(default)]
    pub outside: bool,
    #[serde(default)]
    pub z_order: i64,
    #[serde(default)]
    pub rotation: f64,
    #[serde(default)]
    pub points: Vec<f64>,
    #[serde(default)]
    pub attributes: Vec<AttributeVal>,
    #[serde(default)]
    pub elements: Vec<Shape>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A keyframe of a track (`TrackedShape`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedShape {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: ShapeType,
    pub frame: u64,
    #[serde(default)]
    pub occluded: bool,
    #[serde(default)]
    pub outside: bool,
    #[serde(default)]
    pub z_order: i64,
    #[serde(default)]
    pub rotation: f64,
    #[serde(default)]
    pub points: Vec<f64>,
    #[serde(default)]
    pub attributes: Vec<AttributeVal>,
}

/// A track (`LabeledTrack`): keyframes, and for skeletons one sub-track per element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    #[serde(default)]
    pub id: Option<i64>,
    pub frame: u64,
    pub label_id: i64,
    #[serde(default)]
    pub group: u64,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub attributes: Vec<AttributeVal>,
    pub shapes: Vec<TrackedShape>,
    #[serde(default)]
    pub elements: Vec<Track>,
}

/// An audio interval (`LabeledInterval`, CVAT 2.73's annotations of 1D tasks). frameserver has
/// no audio tasks: the field is accepted and answered (always empty), and validation refuses
/// intervals rather than dropping them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    #[serde(default)]
    pub id: Option<i64>,
    pub label_id: i64,
    pub start: u64,
    pub stop: Option<u64>,
    #[serde(default)]
    pub group: Option<u64>,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub attributes: Vec<AttributeVal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A task's or job's annotations (`LabeledData`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotations {
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub shapes: Vec<Shape>,
    #[serde(default)]
    pub tracks: Vec<Track>,
    /// Always answered (CVAT 2.73's UI takes a body without it for a failed save).
    #[serde(default)]
    pub intervals: Vec<Interval>,
}

impl Annotations {
    /// True when there is nothing.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.shapes.is_empty() && self.tracks.is_empty()
    }

    /// Number of top-level objects.
    pub fn len(&self) -> usize {
        self.tags.len() + self.shapes.len() + self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_bodies_get_cvat_defaults() {
        let a: Annotations = serde_json::from_str(
            r#"{"tags":[{"label_id":1,"frame":0,"attributes":[{"spec_id":1,"value":"blue"}]}],
                "shapes":[{"type":"rectangle","label_id":2,"frame":1,"points":[1.0,2.0,10.0,20.0]}],
                "tracks":[{"label_id":1,"frame":0,"shapes":[{"type":"rectangle","frame":0,"points":[0,0,5,5]},
                                                            {"type":"rectangle","frame":2,"points":[1,1,6,6],"outside":true}]}]}"#,
        )
        .unwrap();
        assert_eq!(a.tags[0].source, "manual");
        assert_eq!(a.shapes[0].kind, ShapeType::Rectangle);
        assert!(
            !a.shapes[0].occluded && a.shapes[0].rotation == 0.0 && a.shapes[0].elements.is_empty()
        );
        assert!(a.tracks[0].shapes[1].outside);
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(back["shapes"][0]["type"], "rectangle");
        assert_eq!(back["shapes"][0]["group"], 0);
        assert!(back["shapes"][0].get("score").is_none());
    }
}
