//! YOLO 1.1 runs the formats conformance suite.

use std::io::Write;

use crate::annotations::ShapeType::Rectangle;
use crate::formats::conformance::{
    conformance_suite, BadInput, Capabilities, FormatUnderTest, TrackMode,
};

/// A YOLO zip (in memory) whose only frame file `obj_train_data/img_00.txt` holds `lines`.
fn yolo_zip(lines: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, text) in [
        (
            "obj.data",
            "classes = 1\ntrain = data/train.txt\nnames = data/obj.names\n",
        ),
        ("obj.names", "car\n"),
        ("train.txt", "data/obj_train_data/img_00.jpg\n"),
        ("obj_train_data/img_00.txt", lines),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn yolo() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "YOLO 1.1",
        Capabilities {
            shapes: &[Rectangle],
            // Rotated boxes are not written (Datumaro's converter skips them).
            rotation: false,
            attributes: &[],
            // Normalised "%.6f" values: a 40 px frame keeps well under 0.005 px.
            precision: 2,
            tracks: TrackMode::PerFrame,
            tags: false,
            groups: false,
            z_order: false,
            occluded: false,
            import: true,
        },
        vec![
            BadInput {
                name: "class.zip",
                bytes: yolo_zip("0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.2 0.2\n"),
                file: "obj_train_data/img_00.txt",
                location: "line 2",
            },
            BadInput {
                name: "values.zip",
                bytes: yolo_zip("0 0.5 0.5 0.1\n"),
                file: "obj_train_data/img_00.txt",
                location: "line 1",
            },
            BadInput {
                name: "number.zip",
                bytes: yolo_zip("\n0 0.5 0.5 0.1 x\n"),
                file: "obj_train_data/img_00.txt",
                location: "line 2",
            },
        ],
    )
}

conformance_suite!(yolo_1_1, yolo());
