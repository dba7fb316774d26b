//! CVAT for images and CVAT for video run the formats conformance suite.

use crate::formats::conformance::{
    conformance_suite, BadInput, Capabilities, FormatUnderTest, TrackMode, ALL_ATTRIBUTES,
    ALL_SHAPES,
};

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

conformance_suite!(cvat_for_images, cvat_images());
conformance_suite!(cvat_for_video, cvat_video());
