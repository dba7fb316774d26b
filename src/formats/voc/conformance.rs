//! PASCAL VOC 1.1 and Segmentation mask 1.1 run the formats conformance suite. Both import
//! with Datumaro's `voc`, so each reads the other's exports (not foreign to it).

use std::io::Write;

use crate::annotations::ShapeType::Rectangle;
use crate::formats::conformance::{
    conformance_suite, BadInput, Capabilities, FormatUnderTest, TrackMode,
};

/// A zip (in memory) of `files`.
pub(super) fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, bytes) in files {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A VOC zip of one item `img_00` (40x30 in the standard task) with `xml` and `labelmap`.
fn voc_zip(xml: &str, labelmap: &str) -> Vec<u8> {
    zip_of(&[
        ("labelmap.txt", labelmap.as_bytes()),
        ("ImageSets/Main/default.txt", b"img_00\n"),
        ("Annotations/img_00.xml", xml.as_bytes()),
    ])
}

/// `Annotations/img_00.xml` with one object of label `name`, the image `w`x`h`.
pub(super) fn xml(name: &str, w: u32, h: u32) -> String {
    format!(
        "<annotation>\n  <filename>img_00.jpg</filename>\n  <size>\n    <width>{w}</width>\n    \
         <height>{h}</height>\n  </size>\n  <object>\n    <name>{name}</name>\n    <bndbox>\n      \
         <xmin>1</xmin>\n      <ymin>2</ymin>\n      <xmax>5</xmax>\n      <ymax>6</ymax>\n    \
         </bndbox>\n  </object>\n</annotation>\n"
    )
}

const MASK_DIRS: &[&str] = &["SegmentationClass/", "SegmentationObject/"];

const LABELS: &str = "background:0,0,0::\ncar:128,0,0::\n";

/// An RGB PNG of `w`x`h` pixels of colour `c`.
pub(super) fn png(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
    let data: Vec<u8> = (0..w * h).flat_map(|_| c).collect();
    let img = crate::codec::RgbImage::new(w, h, data).unwrap();
    crate::codec::encode_png(&crate::codec::Raster::Rgb(img)).unwrap()
}

/// A segmentation zip of item `img_00` with the class PNG `class` and `labelmap` (if any).
fn segm_zip(class: &[u8], labelmap: Option<&str>) -> Vec<u8> {
    let mut files: Vec<(&str, &[u8])> = vec![
        ("ImageSets/Segmentation/default.txt", b"img_00\n"),
        ("SegmentationClass/img_00.png", class),
    ];
    if let Some(l) = labelmap {
        files.push(("labelmap.txt", l.as_bytes()));
    }
    zip_of(&files)
}

fn voc() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "PASCAL VOC 1.1",
        Capabilities {
            // Boxes in the XML; masks and ellipses come back as polygons of their pixels
            // (checked in tests.rs), polygons and the rest are not written.
            shapes: &[Rectangle],
            // The `rotation` attribute.
            rotation: true,
            // Numbers come back as Python floats ("42" → "42.0"), as in CVAT.
            attributes: &["select", "radio", "checkbox", "text"],
            precision: 2,
            tracks: TrackMode::PerFrame,
            // Tags are the classification lists, without attributes or groups: checked in
            // tests.rs.
            tags: false,
            groups: false,
            z_order: false,
            occluded: true,
            import: true,
        },
        vec![
            BadInput {
                name: "label.zip",
                bytes: voc_zip(&xml("truck", 40, 30), LABELS),
                file: "Annotations/img_00.xml",
                location: "line 8",
            },
            BadInput {
                name: "size.zip",
                bytes: voc_zip(&xml("car", 64, 48), LABELS),
                file: "Annotations/img_00.xml",
                location: "line 3",
            },
            BadInput {
                name: "malformed.zip",
                bytes: voc_zip("<annotation>\n  <object>\n    <name>car</nam>\n", LABELS),
                file: "Annotations/img_00.xml",
                location: "line 3",
            },
            BadInput {
                name: "labelmap.zip",
                bytes: voc_zip(&xml("car", 40, 30), "background:0,0,0::\ncar:128,0::\n"),
                file: "labelmap.txt",
                location: "line 2",
            },
            BadInput {
                name: "flag.zip",
                bytes: voc_zip(
                    &xml("car", 40, 30).replace("<bndbox>", "<difficult>yes</difficult>\n<bndbox>"),
                    LABELS,
                ),
                file: "Annotations/img_00.xml",
                location: "line 9",
            },
        ],
    )
    .also_reading(&["Segmentation mask 1.1"])
    .with_mask_dirs(MASK_DIRS)
}

fn segmentation_mask() -> FormatUnderTest {
    FormatUnderTest::from_catalogue(
        "Segmentation mask 1.1",
        Capabilities {
            // Every shape comes back as polygons of its pixels: compared in tests.rs by pixels,
            // not here by points.
            shapes: &[],
            rotation: false,
            attributes: &[],
            precision: 0,
            tracks: TrackMode::PerFrame,
            tags: false,
            groups: false,
            z_order: false,
            occluded: false,
            import: true,
        },
        vec![
            BadInput {
                name: "colour.zip",
                bytes: segm_zip(&png(40, 30, [1, 2, 3]), Some(LABELS)),
                file: "SegmentationClass/img_00.png",
                location: "pixel (0, 0)",
            },
            BadInput {
                // Without labelmap.txt the VOC label map applies: the task's colour is not in it.
                name: "no-labelmap.zip",
                bytes: segm_zip(&png(40, 30, [30, 100, 235]), None),
                file: "SegmentationClass/img_00.png",
                location: "pixel (0, 0)",
            },
            BadInput {
                name: "size.zip",
                bytes: segm_zip(&png(8, 8, [128, 0, 0]), Some(LABELS)),
                file: "SegmentationClass/img_00.png",
                location: "",
            },
            BadInput {
                name: "labelmap.zip",
                bytes: segm_zip(&png(40, 30, [128, 0, 0]), Some("car:128,0,0:\n")),
                file: "labelmap.txt",
                location: "line 1",
            },
        ],
    )
    .also_reading(&["PASCAL VOC 1.1"])
    .with_mask_dirs(MASK_DIRS)
}

conformance_suite!(pascal_voc_1_1, voc());
conformance_suite!(segmentation_mask_1_1, segmentation_mask());
