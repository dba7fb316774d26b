//! The conformance suite ([`super::conformance`]) run by the formats frameserver implements,
//! from the catalogue. Each check is a test of its own, so one known failure does not hide the
//! others. (These calls move into each format's folder once the formats are folders.)
#![cfg(test)]

use crate::annotations::ShapeType::{self, *};
use crate::formats::conformance::{
    self as suite, BadInput, Capabilities, FormatUnderTest, TrackMode,
};

const ALL_SHAPES: &[ShapeType] = &[
    Rectangle, Polygon, Polyline, Points, Ellipse, Cuboid, Mask, Skeleton,
];
const ALL_ATTRIBUTES: &[&str] = &["select", "radio", "checkbox", "number", "text"];

/// A CVAT XML file with one box on the first image frame; `xtl` at line 5.
fn cvat_xml(xtl: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="img_00.jpg" width="40" height="30">
    <box label="car" occluded="0" xtl="{xtl}" ytl="0" xbr="1" ybr="1" z_order="0">
      <attribute name="color">red</attribute>
    </box>
  </image>
</annotations>
"#
    )
    .into_bytes()
}

fn cvat_bad_inputs() -> Vec<BadInput> {
    vec![
        BadInput {
            name: "number.xml",
            bytes: cvat_xml("1.2.3"),
            file: "number.xml",
            location: "line 5",
        },
        BadInput {
            name: "cut.xml",
            bytes: cvat_xml("0")[..200].to_vec(),
            file: "cut.xml",
            location: "line 5",
        },
    ]
}

fn cvat_images() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "CVAT for images 1.1",
        Capabilities {
            shapes: ALL_SHAPES,
            rotation: true,
            attributes: ALL_ATTRIBUTES,
            precision: 2,
            tracks: TrackMode::PerFrame,
            tags: true,
            groups: true,
            z_order: true,
            occluded: true,
            import: true,
        },
        cvat_bad_inputs(),
    )
}

fn cvat_video() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "CVAT for video 1.1",
        Capabilities {
            tracks: TrackMode::Tracks,
            // CVAT for video writes no tags.
            tags: false,
            ..cvat_images().caps
        },
        cvat_bad_inputs(),
    )
}

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

/// One test per check and format.
macro_rules! conformance {
    ($m:ident, $f:expr) => {
        mod $m {
            use super::*;

            #[test]
            fn import_side() {
                suite::import_side(&$f);
            }

            #[test]
            fn round_trip() {
                let f = $f;
                for (what, task) in suite::standard_tasks() {
                    suite::round_trip(&f, &task, what);
                }
            }

            #[test]
            fn closed_track_round_trip() {
                suite::closed_track_round_trip(&$f);
            }

            #[test]
            fn empty_task() {
                let f = $f;
                for (_, task) in suite::standard_tasks() {
                    suite::empty_task(&f, &task);
                }
            }

            #[test]
            fn job_range() {
                let f = $f;
                for (what, task) in suite::standard_tasks() {
                    suite::job_range(&f, &task, what);
                }
            }

            #[test]
            fn save_images() {
                let f = $f;
                for (what, task) in suite::standard_tasks() {
                    suite::save_images(&f, &task, what);
                }
            }

            #[test]
            fn foreign_archives() {
                let f = $f;
                for (_, task) in suite::standard_tasks() {
                    suite::foreign_archives(&f, &task);
                }
            }

            #[test]
            fn bad_inputs() {
                suite::bad_inputs(&$f, &suite::standard_tasks().remove(0).1);
            }

            #[test]
            fn unknown_label() {
                let f = $f;
                for (_, task) in suite::standard_tasks() {
                    suite::unknown_label(&f, &task);
                }
            }
        }
    };
}

conformance!(cvat_for_images, cvat_images());
conformance!(cvat_for_video, cvat_video());
// Issue 11's bug (fixed): a track closed by `outside` one step after its last visible frame lost
// that frame as a keyframe on import (frames 1-3 came back 7.5/15/22.5 instead of 10/20/30).
conformance!(datumaro_1_0, datumaro());

/// `run_all` is the one call a format that passes every check makes.
#[test]
fn run_all_on_cvat_for_images() {
    suite::run_all(&cvat_images());
}
