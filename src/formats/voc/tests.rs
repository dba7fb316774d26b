//! PASCAL VOC 1.1 and Segmentation mask 1.1: exact files, colour maps (spec §7), raster round
//! trips by pixels, the flat layout, the shared Datumaro samples, and the pitfalls of spec §11.1
//! (items 3, 5, 7, 10, 11/12).

use super::conformance::{png, xml, zip_of};
use super::*;
use crate::annotations::LabelIndex;
use crate::annotations::{Annotations, Shape, ShapeType::*};
use crate::formats::kit::mask::{Bitmap, IndexMap};
use crate::formats::testkit::{
    dataset, export_zip, frame, label, label::*, label_index, mask, shape, tag, zip_entries,
    zip_entry, zip_text, TaskBuilder,
};
use crate::formats::{FormatError, ImportInput, TaskDataset};

fn import_bytes(
    f: &dyn crate::formats::Importer,
    bytes: &[u8],
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("in.zip");
    std::fs::write(&p, bytes).unwrap();
    f.import(&ImportInput::open(&p).unwrap(), ds)
}

fn import_zip(
    f: &dyn crate::formats::Importer,
    p: &std::path::Path,
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    f.import(&ImportInput::open(p).unwrap(), ds)
}

/// The pixels of polygons on a `w`×`h` frame (as the rasteriser paints them).
fn pixels(polys: &[&[f64]], w: u32, h: u32) -> Vec<u16> {
    let mut m = IndexMap::new(w, h);
    for p in polys {
        m.paint(&Bitmap::polygon(p, w, h), 1);
    }
    m.values
}

#[test]
fn exact_xml_lists_and_label_map_of_a_small_task() {
    let labels = label_index();
    let mut car = shape(Rectangle, 0, CAR, &[1.0, 2.0, 13.5, 14.25]);
    car.attributes = vec![
        crate::formats::testkit::av(crate::formats::testkit::attr::PARKED, "true"),
        crate::formats::testkit::av(crate::formats::testkit::attr::NOTE, "a <b> & c"),
    ];
    car.occluded = true;
    let a = Annotations {
        shapes: vec![
            car,
            shape(Polygon, 1, SIGN, &[0.0, 0.0, 5.0, 0.0, 5.0, 5.0]),
        ],
        tags: vec![tag(0, SCENE, vec![])],
        ..Default::default()
    };
    let frames = vec![
        frame(0, 0, "img_00.jpg", 40, 30),
        frame(1, 1, "sub/b.png", 32, 24),
    ];
    let ds = dataset(&labels, &a, frames);
    let (_d, zip) = export_zip(&Voc, &ds, None);
    let mut names: Vec<String> = zip_entries(&zip).into_iter().map(|e| e.0).collect();
    names.sort();
    assert!(
        names.contains(&"ImageSets/Main/scene_default.txt".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("Segmentation")),
        "{names:?}"
    );
    assert_eq!(
        zip_text(&zip, "Annotations/img_00.xml"),
        "<annotation>\n  <folder>img</folder>\n  <filename>img_00.jpg</filename>\n  <source>\n    \
         <database>Unknown</database>\n    <annotation>Unknown</annotation>\n    \
         <image>Unknown</image>\n  </source>\n  <size>\n    <width>40</width>\n    \
         <height>30</height>\n    <depth></depth>\n  </size>\n  <segmented>0</segmented>\n  \
         <object>\n    <name>car</name>\n    <truncated>0</truncated>\n    \
         <occluded>1</occluded>\n    <difficult>0</difficult>\n    <bndbox>\n      \
         <xmin>1.0</xmin>\n      <ymin>2.0</ymin>\n      <xmax>13.5</xmax>\n      \
         <ymax>14.25</ymax>\n    </bndbox>\n    <attributes>\n      <attribute>\n        \
         <name>color</name>\n        <value>red</value>\n      </attribute>\n      \
         <attribute>\n        <name>speed</name>\n        <value>0.0</value>\n      \
         </attribute>\n      <attribute>\n        <name>parked</name>\n        \
         <value>True</value>\n      </attribute>\n      <attribute>\n        \
         <name>note</name>\n        <value>a &lt;b&gt; &amp; c</value>\n      </attribute>\n      \
         <attribute>\n        <name>lights</name>\n        <value>off</value>\n      \
         </attribute>\n      <attribute>\n        <name>rotation</name>\n        \
         <value>0.0</value>\n      </attribute>\n    </attributes>\n  </object>\n</annotation>\n"
    );
    assert!(zip_text(&zip, "Annotations/sub/b.xml").contains("<folder></folder>"));
    assert_eq!(
        zip_text(&zip, "ImageSets/Main/default.txt"),
        "img_00\nsub/b\n"
    );
    assert_eq!(
        zip_text(&zip, "ImageSets/Main/scene_default.txt"),
        "img_00  1\n"
    );
    assert_eq!(
        zip_text(&zip, "ImageSets/Main/car_default.txt"),
        "img_00 -1\n"
    );
    assert_eq!(
        zip_text(&zip, "labelmap.txt"),
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:128,0,0::\nperson:0,128,0::\n\
         body:128,128,0::\nhead:0,0,128::\nhand:128,0,128::\nfoot:0,128,128::\n\
         scene:128,128,128::\nsign:64,0,0::\nunused:192,0,0::\n"
    );
}

#[test]
fn segmentation_colour_map_is_sorted_with_background_first_when_missing() {
    // Spec §7: make_colormap(task) with background prepended, sorted by the converter.
    let labels = label_index();
    let a = Annotations {
        shapes: vec![shape(Rectangle, 0, CAR, &[0.0, 0.0, 4.0, 3.0])],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 8, 6)]);
    let (_d, zip) = export_zip(&SegmentationMask, &ds, None);
    let lm = zip_text(&zip, "labelmap.txt");
    let names: Vec<&str> = lm
        .lines()
        .skip(1)
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "background",
            "body",
            "car",
            "foot",
            "hand",
            "head",
            "person",
            "scene",
            "sign",
            "unused"
        ]
    );
    let car_color = labels.get(CAR).unwrap().color.clone();
    let rgb = |i: usize| u8::from_str_radix(&car_color[1 + 2 * i..3 + 2 * i], 16).unwrap();
    assert!(
        lm.contains(&format!("car:{},{},{}::", rgb(0), rgb(1), rgb(2))),
        "{lm}"
    );
    let class = image::load_from_memory(&zip_entry(&zip, "SegmentationClass/a.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(class.get_pixel(1, 1).0, [rgb(0), rgb(1), rgb(2)]);
    assert_eq!(class.get_pixel(7, 5).0, [0, 0, 0]);
    let inst = image::load_from_memory(&zip_entry(&zip, "SegmentationObject/a.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(inst.get_pixel(1, 1).0, [128, 0, 0]);
    assert_eq!(zip_text(&zip, "ImageSets/Segmentation/default.txt"), "a\n");
    assert!(!zip_entries(&zip)
        .iter()
        .any(|e| e.0.starts_with("Annotations")));
}

#[test]
fn segmentation_round_trip_keeps_the_pixels_of_every_shape() {
    let labels = label_index();
    let poly = [2.0, 2.0, 12.0, 2.0, 12.0, 9.0, 2.0, 9.0];
    let mut top = shape(Rectangle, 0, SIGN, &[8.0, 5.0, 16.0, 12.0]);
    top.z_order = 1;
    let a = Annotations {
        shapes: vec![
            shape(Polygon, 0, CAR, &poly),
            top,
            shape(Mask, 1, PERSON, &mask(3, 3, 6, 5)),
        ],
        ..Default::default()
    };
    let ds = dataset(
        &labels,
        &a,
        vec![frame(0, 0, "a.jpg", 20, 15), frame(1, 1, "b.jpg", 20, 15)],
    );
    let (_d, zip) = export_zip(&SegmentationMask, &ds, None);
    let back = import_zip(&SegmentationMask, &zip, &ds).unwrap();
    assert!(back.shapes.iter().all(|s| s.kind == Polygon));
    let of = |frame: u64, label: i64| -> Vec<u16> {
        let ps: Vec<&[f64]> = back
            .shapes
            .iter()
            .filter(|s| s.frame == frame && s.label_id == label)
            .map(|s| s.points.as_slice())
            .collect();
        pixels(&ps, 20, 15)
    };
    // The sign box covers part of the car polygon: the car keeps the rest. Polygons outline
    // the pixel centres of their mask (as OpenCV's contours do), so the box [8, 16) x [5, 12)
    // comes back as the polygon from (8, 5) to (15, 11).
    let sign: Vec<&Shape> = back
        .shapes
        .iter()
        .filter(|s| s.frame == 0 && s.label_id == SIGN)
        .collect();
    assert_eq!(sign.len(), 1);
    let xs: Vec<f64> = sign[0].points.iter().step_by(2).copied().collect();
    let ys: Vec<f64> = sign[0].points.iter().skip(1).step_by(2).copied().collect();
    let (min, max) = (
        |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min),
        |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max),
    );
    assert_eq!(
        [min(&xs), min(&ys), max(&xs), max(&ys)],
        [8.0, 5.0, 15.0, 11.0]
    );
    let car = of(0, CAR);
    let sign = of(0, SIGN);
    assert!(car.iter().zip(&sign).all(|(c, s)| !(*c == 1 && *s == 1)));
    assert!(car.iter().filter(|&&c| c == 1).count() > 30);
    // The mask's ring with a checkered inside: one region (8-connected), its outline.
    assert!(back
        .shapes
        .iter()
        .any(|s| s.frame == 1 && s.label_id == PERSON));
}

#[test]
fn round_trip_keeps_box_coordinates_and_rotation() {
    // Spec §11.1 item 3 (CVAT issue 10885): coordinates come back as written.
    let labels = label_index();
    let mut r = shape(Rectangle, 0, PERSON, &[0.3, 1.25, 10.7, 20.05]);
    r.rotation = 45.5;
    let a = Annotations {
        shapes: vec![r],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let (_d, zip) = export_zip(&Voc, &ds, None);
    let back = import_zip(&Voc, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 1);
    let s = &back.shapes[0];
    for (g, w) in s.points.iter().zip([0.3, 1.25, 10.7, 20.05]) {
        assert!((g - w).abs() < 1e-5, "{:?}", s.points);
    }
    assert_eq!(s.rotation, 45.5);
}

#[test]
fn tags_round_trip_as_classification_lists() {
    let labels = label_index();
    let a = Annotations {
        tags: vec![
            tag(0, SCENE, vec![]),
            tag(0, CAR, vec![]),
            tag(2, SIGN, vec![]),
        ],
        ..Default::default()
    };
    let frames = (0..3)
        .map(|i| frame(i, i, &format!("f{i}.jpg"), 8, 8))
        .collect();
    let ds = dataset(&labels, &a, frames);
    let (_d, zip) = export_zip(&Voc, &ds, None);
    let back = import_zip(&Voc, &zip, &ds).unwrap();
    let mut got: Vec<(u64, i64)> = back.tags.iter().map(|t| (t.frame, t.label_id)).collect();
    got.sort();
    assert_eq!(got, [(0, CAR), (0, SCENE), (2, SIGN)]);
}

#[test]
fn frame_step_task_names_items_after_absolute_frames() {
    // Spec §11.1 item 10 (CVAT issue 1294): start 10, step 3 → frame_000010, frame_000013, …
    let mut task = TaskBuilder::video(4).frame_step(10, 3).build();
    task.annotations.shapes = vec![shape(Rectangle, 2, CAR, &[1.0, 1.0, 5.0, 5.0])];
    let ds = task.dataset();
    let (_d, zip) = export_zip(&Voc, &ds, None);
    assert_eq!(
        zip_text(&zip, "ImageSets/Main/default.txt"),
        "frame_000010\nframe_000013\nframe_000016\nframe_000019\n"
    );
    assert!(zip_text(&zip, "Annotations/frame_000016.xml").contains("<name>car</name>"));
    assert!(zip_text(&zip, "Annotations/frame_000016.xml")
        .contains("<filename>frame_000016.PNG</filename>"));
    let back = import_zip(&Voc, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 1);
    assert_eq!(back.shapes[0].frame, 2);
}

#[test]
fn label_map_keeps_the_task_label_order() {
    // Spec §11.1 items 11 and 12: classes are numbered in task order, never alphabetically.
    let labels = LabelIndex::from_labels(vec![
        label(5, "zebra", "any", None, vec![]),
        label(9, "apple", "any", None, vec![]),
    ]);
    let a = Annotations::default();
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 4, 4)]);
    let (_d, zip) = export_zip(&Voc, &ds, None);
    assert_eq!(
        zip_text(&zip, "labelmap.txt"),
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\nzebra:128,0,0::\napple:0,128,0::\n"
    );
}

#[test]
fn import_errors_name_the_file_and_line() {
    // Spec §11.1 item 7 (datumaro issue 74).
    let task = TaskBuilder::images(2).build();
    let ds = task.dataset();
    let bad = zip_of(&[
        ("ImageSets/Main/default.txt", b"img_00\n"),
        (
            "Annotations/img_00.xml",
            xml("car", 40, 30).replace("<xmax>5", "<xmax>x5").as_bytes(),
        ),
    ]);
    match import_bytes(&Voc, &bad, &ds) {
        Err(FormatError::Invalid {
            file,
            location,
            reason,
        }) => {
            assert_eq!(file, "Annotations/img_00.xml");
            assert_eq!(location, "line 12", "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let bad = zip_of(&[
        ("ImageSets/Main/default.txt", b"img_00\n"),
        ("ImageSets/Main/car_default.txt", b"img_00 2\n"),
    ]);
    match import_bytes(&Voc, &bad, &ds) {
        Err(FormatError::Invalid { file, location, .. }) => {
            assert_eq!(
                (file.as_str(), location.as_str()),
                ("ImageSets/Main/car_default.txt", "line 1")
            );
        }
        other => panic!("{other:?}"),
    }
    let bad = zip_of(&[("ImageSets/Main/default.txt", b"nothing_like_it\n")]);
    match import_bytes(&Voc, &bad, &ds) {
        Err(FormatError::Invalid { file, location, .. }) => {
            assert_eq!(
                (file.as_str(), location.as_str()),
                ("ImageSets/Main/default.txt", "line 1")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn layout_detection_accepts_the_flat_layout_and_synthesises_the_label_map() {
    // Spec §11.1 item 5 (CVAT issue 5977), §8.9: XMLs anywhere, no labelmap.txt.
    let task = TaskBuilder::images(2).build();
    let ds = task.dataset();
    let flat = zip_of(&[("some/dir/img_00.xml", xml("car", 40, 30).as_bytes())]);
    let back = import_bytes(&Voc, &flat, &ds).unwrap();
    assert_eq!(back.shapes.len(), 1);
    assert_eq!(back.shapes[0].points, [1.0, 2.0, 5.0, 6.0]);
    // Foreign archives say why they are not VOC.
    let foreign = zip_of(&[("annotations.xml", b"<annotations></annotations>")]);
    match import_bytes(&Voc, &foreign, &ds) {
        Err(FormatError::NotThisFormat { reason, .. }) => assert!(reason.contains("Annotations")),
        other => panic!("{other:?}"),
    }
    match import_bytes(&SegmentationMask, &flat, &ds) {
        Err(FormatError::NotThisFormat { reason, .. }) => assert!(reason.contains("ImageSets")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_channel_index_masks_use_the_label_map_line_index() {
    // Spec §7: a 1-channel mask's values are label-map indices.
    let task = TaskBuilder::images(1).build();
    let ds = task.dataset();
    let mut vals = vec![0u8; 40 * 30];
    for y in 5..15 {
        for x in 4..20 {
            vals[y * 40 + x] = 2;
        }
    }
    let gray = crate::codec::encode_gray8_png(&vals, 40, 30).unwrap();
    let zip = zip_of(&[
        (
            "labelmap.txt",
            b"background:0,0,0::\n_dummy1:1,1,1::\ncar:2,2,2::\n",
        ),
        ("ImageSets/Segmentation/default.txt", b"img_00\n"),
        ("SegmentationClass/img_00.png", &gray),
    ]);
    // Class-only masks: one mask per class value, background included (Datumaro's reader).
    let labels = LabelIndex::from_labels(vec![
        label(1, "car", "any", None, vec![]),
        label(2, "background", "any", None, vec![]),
    ]);
    let none = Annotations::default();
    let ds2 = TaskDataset {
        labels: &labels,
        annotations: &none,
        ..ds
    };
    let back = import_bytes(&SegmentationMask, &zip, &ds2).unwrap();
    let car: Vec<&[f64]> = back
        .shapes
        .iter()
        .filter(|s| s.label_id == 1)
        .map(|s| s.points.as_slice())
        .collect();
    assert_eq!(car.len(), 1);
    let px = pixels(&car, 40, 30);
    // The outline through pixel centres: (16 - 1) x (10 - 1) pixels under pycocotools.
    assert_eq!(px.iter().filter(|&&v| v == 1).count(), 15 * 9);
    // A mask colour not in the label map names the file and pixel.
    let zip = zip_of(&[
        ("labelmap.txt", b"background:0,0,0::\ncar:2,2,2::\n"),
        ("ImageSets/Segmentation/default.txt", b"img_00\n"),
        ("SegmentationClass/img_00.png", &png(40, 30, [9, 9, 9])),
    ]);
    assert!(matches!(
        import_bytes(&SegmentationMask, &zip, &ds2),
        Err(FormatError::Invalid { location, .. }) if location == "pixel (0, 0)"
    ));
}

/// The zip of a sample folder of the shared Datumaro test data (`None` when it is missing).
fn sample_zip(dir: &std::path::Path) -> Option<Vec<u8>> {
    let root = std::path::Path::new("/work/shared/testdata/datumaro").join(dir);
    if !root.is_dir() {
        return None;
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    Some(zip_of(&refs))
}

#[test]
fn the_datumaro_voc_sample_imports_as_dataset_summary_counts_it() {
    // README: voc_dataset1 has 11 labels, 3 boxes (one a layout part), 1 mask.
    let Some(zip) = sample_zip("pascal_voc_1.1/voc_dataset/voc_dataset1".as_ref()) else {
        return;
    };
    let names = [
        "background",
        "aeroplane",
        "bicycle",
        "bird",
        "boat",
        "bottle",
        "bus",
        "car",
        "cat",
        "chair",
        "cow",
        "diningtable",
        "dog",
        "horse",
        "motorbike",
        "person",
        "pottedplant",
        "sheep",
        "sofa",
        "train",
        "tvmonitor",
        "ignored",
        "foot",
        "hand",
        "head",
    ];
    let labels = LabelIndex::from_labels(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| label(i as i64 + 1, n, "any", None, vec![]))
            .collect(),
    );
    let none = Annotations::default();
    let frames = vec![
        frame(0, 0, "2007_000001.jpg", 20, 10),
        frame(1, 1, "2007_000002.jpg", 20, 10),
    ];
    let ds = dataset(&labels, &none, frames);
    let back = import_bytes(&Voc, &zip, &ds).unwrap();
    assert_eq!(back.tags.len(), 11);
    assert_eq!(
        back.shapes.iter().filter(|s| s.kind == Rectangle).count(),
        3
    );
    assert!(back.shapes.iter().any(|s| s.kind == Polygon));
    let seg = sample_zip("segmentation_mask_1.1/voc_dataset/voc_dataset1".as_ref()).unwrap();
    let back = import_bytes(&SegmentationMask, &seg, &ds).unwrap();
    assert_eq!(back.tags.len(), 11);
    assert!(back.shapes.iter().any(|s| s.kind == Polygon));
}

#[test]
fn numbers_are_written_as_python_writes_floats() {
    let s = |v: f64| {
        let mut o = String::new();
        crate::formats::kit::json::write::put_py_float(&mut o, v);
        o
    };
    assert_eq!(s(42.0), "42.0");
    assert_eq!(s(0.30000001192092896), "0.30000001192092896");
    assert_eq!(s(1e16), "1e+16");
    assert_eq!(s(0.00001), "1e-05");
    assert_eq!(s(0.0001), "0.0001");
    assert_eq!(s(-2.5), "-2.5");
}
