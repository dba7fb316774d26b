//! Datumaro 1.0 runs the formats conformance suite.

use crate::annotations::ShapeType::*;
use crate::formats::conformance::{
    conformance_suite, BadInput, Capabilities, FormatUnderTest, TrackMode, ALL_ATTRIBUTES,
};

fn datumaro() -> FormatUnderTest {
    let json = |anns: &str| {
        format!(
            r#"{{"categories": {{"label": {{"labels": [{{"name": "car", "parent": ""}}]}}}},
"items": [{{"id": "img_00", "annotations": {anns}}}]}}"#
        )
        .into_bytes()
    };
    FormatUnderTest::from_catalogue(
        "Datumaro 1.0",
        Capabilities {
            // No 2D cuboids in Datumaro (spec formats.md).
            shapes: &[
                Rectangle, Polygon, Polyline, Points, Ellipse, Mask, Skeleton,
            ],
            rotation: true,
            attributes: ALL_ATTRIBUTES,
            precision: 2,
            tracks: TrackMode::Tracks,
            tags: true,
            groups: true,
            z_order: true,
            occluded: true,
            import: true,
        },
        vec![
            BadInput {
                name: "bbox.json",
                bytes: json(r#"[{"type": "bbox", "label_id": 0, "bbox": [1, 2, 3]}]"#),
                file: "bbox.json",
                location: "item 'img_00' (#0), annotation #0",
            },
            BadInput {
                name: "broken.json",
                bytes: json("[}"),
                file: "broken.json",
                location: "item #0",
            },
        ],
    )
}

// Issue 11's bug (fixed): a track closed by `outside` one step after its last visible frame lost
// that frame as a keyframe on import (frames 1-3 came back 7.5/15/22.5 instead of 10/20/30).
conformance_suite!(datumaro_1_0, datumaro());
