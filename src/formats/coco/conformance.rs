//! COCO 1.0 and COCO Keypoints 1.0 run the formats conformance suite.

use crate::annotations::ShapeType::{Polygon, Rectangle, Skeleton};
use crate::formats::conformance::{
    conformance_suite, BadInput, Capabilities, FormatUnderTest, TrackMode, ALL_ATTRIBUTES,
};

/// A COCO file with one 40x30 image `img_00.jpg` (its size as given), category 1 `car` (with
/// `keypoints`) and the annotations `anns` (a JSON list's inside).
pub(super) fn coco_json(size: (u32, u32), keypoints: &str, anns: &str) -> Vec<u8> {
    format!(
        r#"{{"categories":[{{"id":1,"name":"car","supercategory":"","keypoints":[{keypoints}],"skeleton":[]}}],
"images":[{{"id":1,"width":{},"height":{},"file_name":"img_00.jpg"}}],
"annotations":[{anns}]}}"#,
        size.0, size.1
    )
    .into_bytes()
}

fn bad(name: &'static str, bytes: Vec<u8>, location: &'static str) -> BadInput {
    BadInput {
        name,
        bytes,
        file: name,
        location,
    }
}

fn coco() -> FormatUnderTest {
    let box_ann = |extra: &str| {
        format!(
            r#"{{"id":1,"image_id":1,"category_id":1,"segmentation":[],"bbox":[1,2,3,4],"iscrowd":0{extra}}}"#
        )
    };
    FormatUnderTest::from_catalogue(
        "COCO 1.0",
        Capabilities {
            // Ellipses come back as masks and masks as masks: compared by the unit tests.
            shapes: &[Rectangle, Polygon],
            rotation: true,
            attributes: ALL_ATTRIBUTES,
            // Boxes and polygons are rounded to 2 decimals.
            precision: 2,
            tracks: TrackMode::Tracks,
            tags: false,
            groups: false,
            z_order: false,
            occluded: true,
            import: true,
        },
        vec![
            bad(
                "class.json",
                coco_json(
                    (40, 30),
                    "",
                    &format!(
                        "{},{}",
                        box_ann(""),
                        r#"{"id":2,"image_id":1,"category_id":7,"segmentation":[],"bbox":[1,2,3,4],"iscrowd":0}"#
                    ),
                ),
                "annotations[1] (id 2)",
            ),
            bad(
                "values.json",
                coco_json(
                    (40, 30),
                    "",
                    r#"{"id":1,"image_id":1,"category_id":1,"segmentation":[],"bbox":[1,2,3],"iscrowd":0}"#,
                ),
                "annotations[0]",
            ),
            bad(
                "polygon.json",
                coco_json(
                    (40, 30),
                    "",
                    r#"{"id":1,"image_id":1,"category_id":1,"segmentation":[[1,2,3,4,5]],"bbox":[1,2,3,4],"iscrowd":0}"#,
                ),
                "annotations[0]",
            ),
            bad("size.json", coco_json((64, 48), "", &box_ann("")), "images[0]"),
            bad(
                "rle.json",
                coco_json(
                    (40, 30),
                    "",
                    r#"{"id":1,"image_id":1,"category_id":1,"segmentation":{"counts":[5,10],"size":[10,10]},"bbox":[1,2,3,4],"iscrowd":1}"#,
                ),
                "annotations[0]",
            ),
            bad(
                "image.json",
                coco_json(
                    (40, 30),
                    "",
                    r#"{"id":1,"image_id":5,"category_id":1,"segmentation":[],"bbox":[1,2,3,4],"iscrowd":0}"#,
                ),
                "annotations[0]",
            ),
            bad(
                "truncated.json",
                b"{\"images\": [\n{\"id\": 1,\n".to_vec(),
                "line 3",
            ),
            bad(
                "no-annotations.json",
                br#"{"categories": [], "images": []}"#.to_vec(),
                "",
            ),
        ],
    )
    .merging_groups()
}

fn coco_keypoints() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "COCO Keypoints 1.0",
        Capabilities {
            shapes: &[Skeleton],
            rotation: false,
            // Keypoints carry no per-point attributes; the skeleton label has none.
            attributes: &[],
            precision: 2,
            tracks: TrackMode::Tracks,
            tags: false,
            groups: false,
            z_order: false,
            occluded: true,
            import: true,
        },
        vec![
            bad(
                "triplets.json",
                coco_json(
                    (40, 30),
                    r#""a","b""#,
                    r#"{"id":1,"image_id":1,"category_id":1,"segmentation":[],"bbox":[1,2,3,4],"iscrowd":0,"keypoints":[1,2,2,3,4],"num_keypoints":2}"#,
                ),
                "annotations[0]",
            ),
            bad(
                "class.json",
                coco_json(
                    (40, 30),
                    r#""a""#,
                    r#"{"id":1,"image_id":1,"category_id":3,"segmentation":[],"bbox":[1,2,3,4],"iscrowd":0,"keypoints":[1,2,2],"num_keypoints":1}"#,
                ),
                "annotations[0]",
            ),
            bad("broken.json", b"{\"annotations\": [}".to_vec(), "line 1"),
        ],
    )
    .merging_groups()
}

conformance_suite!(coco_1_0, coco());
conformance_suite!(coco_keypoints_1_0, coco_keypoints());
