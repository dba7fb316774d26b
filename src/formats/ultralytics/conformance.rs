//! The Ultralytics YOLO formats run the formats conformance suite.

use std::io::Write;

use crate::annotations::ShapeType::{Polygon, Rectangle, Skeleton};
use crate::formats::conformance::{
    conformance_suite, BadInput, Capabilities, FormatUnderTest, TrackMode,
};

const DETECTION_YAML: &str = "names:\n  0: car\n  1: person\npath: .\ntrain: train.txt\n";
const POSE_YAML: &str = "kpt_shape:\n- 3\n- 3\nnames:\n  0: body\npath: .\ntrain: train.txt\n";

/// A zip (in memory) of `files`.
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, text) in files {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A dataset of `yaml` whose only frame file `labels/train/img_00.txt` holds `lines`.
fn ul_zip(yaml: &str, lines: &str) -> Vec<u8> {
    zip_of(&[
        ("data.yaml", yaml),
        ("train.txt", "data/images/train/img_00.jpg\n"),
        ("labels/train/img_00.txt", lines),
    ])
}

const LABELS: &str = "labels/train/img_00.txt";

fn bad(name: &'static str, bytes: Vec<u8>, file: &'static str, location: &'static str) -> BadInput {
    BadInput {
        name,
        bytes,
        file,
        location,
    }
}

/// The bad inputs every `data.yaml` format has: no config, malformed YAML, an unknown image.
fn config_bad_inputs(yaml: &str, good_line: &str) -> Vec<BadInput> {
    vec![
        bad(
            "no-config.zip",
            zip_of(&[
                ("train.txt", "data/images/train/img_00.jpg\n"),
                (LABELS, good_line),
            ]),
            "data.yaml",
            "",
        ),
        bad(
            "yaml.zip",
            ul_zip("names: [car\ntrain: train.txt\n", good_line),
            "data.yaml",
            "line",
        ),
        bad(
            "unknown-image.zip",
            zip_of(&[
                ("data.yaml", yaml),
                (
                    "train.txt",
                    "data/images/train/img_00.jpg\ndata/images/train/zz.jpg\n",
                ),
            ]),
            "train.txt",
            "line 2",
        ),
    ]
}

fn caps(shapes: &'static [crate::annotations::ShapeType], rotation: bool) -> Capabilities {
    Capabilities {
        shapes,
        rotation,
        attributes: &[],
        // Normalised "%.6f" values: a 40 px frame keeps well under 0.005 px.
        precision: 2,
        tracks: TrackMode::PerFrame,
        tags: false,
        groups: false,
        z_order: false,
        occluded: false,
        import: true,
    }
}

fn detection() -> FormatUnderTest {
    let good = "0 0.5 0.5 0.1 0.1\n";
    let mut bad_inputs = vec![
        bad(
            "class.zip",
            ul_zip(DETECTION_YAML, "0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.2 0.2\n"),
            LABELS,
            "line 2",
        ),
        bad(
            "values.zip",
            ul_zip(DETECTION_YAML, "0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n"),
            LABELS,
            "line 2",
        ),
        bad(
            "number.zip",
            ul_zip(DETECTION_YAML, "\n0 0.5 0.5 0.1 x\n"),
            LABELS,
            "line 2",
        ),
        bad(
            "track.zip",
            ul_zip(DETECTION_YAML, "0 0.5 0.5 0.1 0.1 1.5\n"),
            LABELS,
            "line 1",
        ),
    ];
    bad_inputs.extend(config_bad_inputs(DETECTION_YAML, good));
    FormatUnderTest::from_catalogue(
        "Ultralytics YOLO Detection 1.0",
        // Rotated boxes are not written (Datumaro's exporter skips them).
        caps(&[Rectangle], false),
        bad_inputs,
    )
    .also_reading(&["Ultralytics YOLO Detection Track 1.0"])
}

fn detection_track() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "Ultralytics YOLO Detection Track 1.0",
        Capabilities {
            import: false,
            ..caps(&[Rectangle], false)
        },
        vec![],
    )
}

fn segmentation() -> FormatUnderTest {
    let good = "0 0.1 0.1 0.2 0.1 0.2 0.2\n";
    let mut bad_inputs = vec![
        bad(
            "odd.zip",
            ul_zip(
                DETECTION_YAML,
                "0 0.1 0.1 0.2 0.1 0.2 0.2\n0 0.1 0.1 0.2 0.1 0.2 0.2 0.3\n",
            ),
            LABELS,
            "line 2",
        ),
        bad(
            "short.zip",
            ul_zip(DETECTION_YAML, "0 0.1 0.1 0.2 0.1 0.2 0.2\n1 0.1 0.2\n"),
            LABELS,
            "line 2",
        ),
        bad(
            "class.zip",
            ul_zip(DETECTION_YAML, "2 0.1 0.1 0.2 0.1 0.2 0.2\n"),
            LABELS,
            "line 1",
        ),
    ];
    bad_inputs.extend(config_bad_inputs(DETECTION_YAML, good));
    // Masks and ellipses are not converted to polygons (see the module doc).
    FormatUnderTest::from_catalogue(
        "Ultralytics YOLO Segmentation 1.0",
        caps(&[Polygon], false),
        bad_inputs,
    )
    .also_reading(&["Ultralytics YOLO Oriented Bounding Boxes 1.0"])
}

fn oriented_boxes() -> FormatUnderTest {
    let good = "0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n";
    let mut bad_inputs = vec![
        bad(
            "values.zip",
            ul_zip(
                DETECTION_YAML,
                "0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n0 0.1 0.1 0.2 0.1 0.2 0.2 0.1\n",
            ),
            LABELS,
            "line 2",
        ),
        bad(
            "class.zip",
            ul_zip(DETECTION_YAML, "5 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n"),
            LABELS,
            "line 1",
        ),
    ];
    bad_inputs.extend(config_bad_inputs(DETECTION_YAML, good));
    FormatUnderTest::from_catalogue(
        "Ultralytics YOLO Oriented Bounding Boxes 1.0",
        caps(&[Rectangle], true),
        bad_inputs,
    )
}

fn pose() -> FormatUnderTest {
    let good = "0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 0.2 1 0.3 0.3 0\n";
    let mut bad_inputs = vec![
        bad(
            "points.zip",
            ul_zip(POSE_YAML, "0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 0.2 1\n"),
            LABELS,
            "line 1",
        ),
        bad(
            "class.zip",
            ul_zip(
                POSE_YAML,
                &format!("{good}1 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 0.2 1 0.3 0.3 0\n"),
            ),
            LABELS,
            "line 2",
        ),
        bad(
            "visibility.zip",
            ul_zip(
                POSE_YAML,
                "0 0.5 0.5 0.2 0.2 0.1 0.1 7 0.2 0.2 1 0.3 0.3 0\n",
            ),
            LABELS,
            "line 1",
        ),
        bad(
            "kpt-shape.zip",
            ul_zip(&POSE_YAML.replace("- 3\n- 3", "- 3\n- 4"), good),
            "data.yaml",
            "kpt_shape",
        ),
        bad(
            "kpt-too-small.zip",
            ul_zip(&POSE_YAML.replace("- 3\n- 3", "- 2\n- 3"), good),
            "data.yaml",
            "kpt_shape",
        ),
    ];
    bad_inputs.extend(config_bad_inputs(POSE_YAML, good));
    FormatUnderTest::from_catalogue(
        "Ultralytics YOLO Pose 1.0",
        caps(&[Skeleton], false),
        bad_inputs,
    )
}

fn classification() -> FormatUnderTest {
    let json = |text: &str| zip_of(&[("train/labels.json", text)]);
    FormatUnderTest::from_catalogue(
        "Ultralytics YOLO Classification 1.0",
        Capabilities {
            tags: true,
            tracks: TrackMode::Dropped,
            ..caps(&[], false)
        },
        vec![
            bad(
                "json.zip",
                json("{\"img_00\": {\"labels\": [\"car\"], \"path\": "),
                "train/labels.json",
                "line 1",
            ),
            bad(
                "labels.zip",
                json("{\"img_00\": {\"labels\": \"car\", \"path\": \"car/img_00.jpg\"}}"),
                "train/labels.json",
                "item 'img_00'",
            ),
            bad(
                "unknown-item.zip",
                json("{\"zz\": {\"labels\": [\"car\"], \"path\": \"car/zz.jpg\"}}"),
                "train/labels.json",
                "item 'zz'",
            ),
        ],
    )
    .with_image_per_tag()
}

conformance_suite!(ultralytics_detection, detection());
conformance_suite!(ultralytics_detection_track, detection_track());
conformance_suite!(ultralytics_segmentation, segmentation());
conformance_suite!(ultralytics_oriented_boxes, oriented_boxes());
conformance_suite!(ultralytics_pose, pose());
conformance_suite!(ultralytics_classification, classification());
