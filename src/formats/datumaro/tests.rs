use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::parse::*;
use super::skeleton::*;
use super::*;
use crate::annotations::{
    Annotations, AttributeVal, LabelIndex, LabelInfo, Shape, ShapeType, Tag, Track, TrackedShape,
};
use crate::formats::kit::json::read::*;
use crate::formats::kit::paths::*;
use crate::formats::testkit::{
    self, av, dataset, export_file, export_zip, frame, keyframe, label, normalised, spec, tag,
    write_file, write_zip, zip_bomb, zip_entry, zip_json, TestImages,
};
use crate::formats::Importer as _;
use crate::formats::DEFAULT_MAX_IMPORT_VALUE;
use crate::formats::{DatasetFrame, FormatError, FrameSource, ImportInput, TaskDataset};
use serde_json::Value;

/// Skeleton SVG as CVAT clients send it (`data-label-name`), with one circle in CVAT's stored
/// form (`data-label-id`); circle order hand, head, foot.
const SVG: &str = r##"<line x1="20" y1="20" x2="10" y2="10" stroke="black" data-type="edge" data-node-from="2" stroke-width="0.5" data-node-to="1"></line><line x1="20" y1="20" x2="5" y2="30" data-type="edge" data-node-from="1" data-node-to="3"></line><circle r="1.5" stroke="black" fill="#b3b3b3" cx="20" cy="20" stroke-width="0.1" data-type="element node" data-element-id="1" data-node-id="1" data-label-name="hand"></circle><circle r="1.5" cx="10" cy="10" data-type="element node" data-element-id="2" data-node-id="2" data-label-name="head"></circle><circle r="1.5" cx="5" cy="30" data-type="element node" data-element-id="3" data-node-id="3" data-label-id="6"></circle>"##;

/// The labels of the expected JSON below (their names, attribute names and ids, the skeleton's
/// sublabel order from [`SVG`]): car (color, speed, parked, note: 10–13), person (age, 20), a
/// body skeleton of head (`visible face`, 40), hand and foot, a mask label area.
fn labels() -> LabelIndex {
    LabelIndex::from_labels(vec![
        label(
            1,
            "car",
            "any",
            None,
            vec![
                (10, spec("color", "select", &["red", "blue"], "red", false)),
                (11, spec("speed", "number", &["0", "100", "0.5"], "0", true)),
                (12, spec("parked", "checkbox", &["false"], "false", true)),
                (13, spec("note", "text", &[], "", false)),
            ],
        ),
        label(
            2,
            "person",
            "rectangle",
            None,
            vec![(20, spec("age", "number", &["0", "150", "1"], "30", false))],
        ),
        LabelInfo {
            svg: SVG.into(),
            ..label(3, "body", "skeleton", None, vec![])
        },
        label(
            4,
            "head",
            "points",
            Some(3),
            vec![(
                40,
                spec("visible face", "checkbox", &["true"], "true", false),
            )],
        ),
        label(5, "hand", "points", Some(3), vec![]),
        label(6, "foot", "points", Some(3), vec![]),
        label(7, "area", "mask", None, vec![]),
    ])
}

/// A skeleton label without SVG (the fixture's `label` gives skeletons one).
fn bare_skeleton(id: i64, name: &str) -> LabelInfo {
    LabelInfo {
        svg: String::new(),
        ..label(id, name, "skeleton", None, vec![])
    }
}

/// Frames `0.jpg`, `1.jpg`, … (`n` of them), 10x10.
fn numbered_frames(n: u64) -> Vec<DatasetFrame> {
    (0..n)
        .map(|i| frame(i, i, &format!("{i}.jpg"), 10, 10))
        .collect()
}

fn frames() -> Vec<DatasetFrame> {
    vec![
        frame(0, 5, "img/a.jpg", 10, 8),
        frame(1, 7, "b.png", 6, 4),
        frame(2, 9, "c/d.e.jpeg", 3, 2),
    ]
}

/// A plain shape as an import gives it back (source `file`).
fn shape(
    kind: ShapeType,
    frame: u64,
    label_id: i64,
    points: &[f64],
    attributes: Vec<AttributeVal>,
) -> Shape {
    Shape {
        source: "file".into(),
        attributes,
        ..testkit::shape(kind, frame, label_id, points)
    }
}

/// A track as an import gives it back (source `file`), with track attributes.
fn track(label_id: i64, attributes: Vec<AttributeVal>, shapes: Vec<TrackedShape>) -> Track {
    Track {
        source: "file".into(),
        attributes,
        ..testkit::track(label_id, shapes)
    }
}

fn car_attrs(color: &str, speed: &str, parked: &str, note: &str) -> Vec<AttributeVal> {
    vec![av(10, color), av(11, speed), av(12, parked), av(13, note)]
}

/// Every shape kind CVAT's Datumaro export writes for 2D tasks, on 3 frames (the last empty).
fn sample_annotations() -> Annotations {
    let mut rect = shape(
        ShapeType::Rectangle,
        0,
        1,
        &[1.0, 2.0, 5.0, 6.0],
        car_attrs("red", "2.5", "false", ""),
    );
    rect.occluded = true;
    rect.rotation = 30.0;
    rect.z_order = 1;
    rect.group = 1;
    let mut poly = shape(
        ShapeType::Polygon,
        0,
        1,
        &[0.0, 0.0, 4.0, 0.0, 4.0, 3.0],
        car_attrs("blue", "0", "true", "x"),
    );
    poly.group = 1;
    let mut person = shape(
        ShapeType::Rectangle,
        0,
        2,
        &[2.0, 2.0, 3.0, 3.5],
        vec![av(20, "40")],
    );
    person.z_order = 2;
    let line = shape(
        ShapeType::Polyline,
        1,
        1,
        &[0.0, 0.0, 1.0, 1.0, 2.0, 0.0],
        car_attrs("red", "0", "false", ""),
    );
    let pts = shape(
        ShapeType::Points,
        1,
        1,
        &[1.0, 1.0, 2.0, 2.0],
        car_attrs("red", "100", "false", "p"),
    );
    let mut ell = shape(
        ShapeType::Ellipse,
        1,
        1,
        &[3.0, 2.0, 5.0, 1.0],
        car_attrs("red", "0", "false", ""),
    );
    ell.rotation = 10.0;
    // Box x 1..=2, y 0..=1 of a 6x4 frame: row 0 "10", row 1 "11".
    let mask = shape(
        ShapeType::Mask,
        1,
        7,
        &[0.0, 1.0, 1.0, 2.0, 1.0, 0.0, 2.0, 1.0],
        vec![],
    );
    let mut skel = shape(ShapeType::Skeleton, 1, 3, &[], vec![]);
    skel.z_order = 3;
    skel.occluded = true;
    let el = |label, p: [f64; 2], attrs| {
        let mut e = shape(ShapeType::Points, 1, label, &p, attrs);
        e.z_order = 3;
        e
    };
    let hand = el(5, [1.0, 1.0], vec![]);
    let mut head = el(4, [2.0, 2.0], vec![av(40, "false")]);
    head.occluded = true;
    let mut foot = el(6, [3.0, 3.0], vec![]);
    foot.outside = true;
    skel.elements = vec![hand, head, foot];
    Annotations {
        version: 0,
        tags: vec![Tag {
            group: 1,
            source: "file".into(),
            ..tag(0, 1, car_attrs("blue", "5", "true", "hello"))
        }],
        shapes: vec![rect, poly, person, line, pts, ell, mask, skel],
        tracks: vec![],
        intervals: Vec::new(),
    }
}

/// Datumaro 1.0 samples in the shared test data.
fn shared() -> PathBuf {
    testkit::shared_testdata().join("datumaro/datumaro_1.0/datumaro_dataset")
}

/// Zips the folder `src` (paths relative to it) into `dir/name`.
fn zip_dir(src: &Path, dir: &Path, name: &str) -> PathBuf {
    fn walk(d: &Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, files);
            } else {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    let entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let name = f
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (name, std::fs::read(f).unwrap())
        })
        .collect();
    let entries: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    write_zip(dir, name, &entries)
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    write_file(dir, name, serde_json::to_vec(v).unwrap())
}

// ---- pure helpers ------------------------------------------------------------------------------

#[test]
fn splitext_and_dirname_follow_python() {
    assert_eq!(split_ext("a/b.jpg"), ("a/b", ".jpg"));
    assert_eq!(split_ext("c/d.e.jpeg"), ("c/d.e", ".jpeg"));
    assert_eq!(split_ext(".hidden"), (".hidden", ""));
    assert_eq!(split_ext("a.d/b"), ("a.d/b", ""));
    assert_eq!(split_ext("..a"), ("..a", ""));
    assert_eq!(split_ext("x/.a.png"), ("x/.a", ".png"));
    assert_eq!(dirname("a/b/c.jpg"), "a/b");
    assert_eq!(dirname("c.jpg"), "");
    assert_eq!(dirname("/c.jpg"), "/");
}

#[test]
fn skeleton_svg_gives_sublabel_order_and_joints() {
    let l = labels();
    let layout = skeleton_layout(&l, l.get(3).unwrap());
    assert_eq!(layout.sublabels, vec![5, 4, 6]);
    assert_eq!(layout.joints, vec![[1, 3], [2, 1]]);
    // No SVG: children by id, no joints.
    let bare = LabelIndex::from_labels(vec![
        bare_skeleton(1, "s"),
        label(3, "b", "points", Some(1), vec![]),
        label(2, "a", "points", Some(1), vec![]),
    ]);
    let layout = skeleton_layout(&bare, bare.get(1).unwrap());
    assert_eq!(layout.sublabels, vec![2, 3]);
    assert!(layout.joints.is_empty());
}

// ---- export ------------------------------------------------------------------------------------

#[test]
fn export_writes_cvat_shaped_json() {
    let l = labels();
    let a = sample_annotations();
    let ds = dataset(&l, &a, frames());
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, None);
    let v = zip_json(&zip, "annotations/default.json");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "dm_format_version",
            "media_type",
            "infos",
            "categories",
            "items"
        ]
    );
    assert_eq!(v["dm_format_version"], "1.0");
    assert_eq!(v["media_type"], 2);
    let cat = &v["categories"]["label"];
    let names: Vec<(&str, &str)> = cat["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["parent"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("car", ""),
            ("person", ""),
            ("body", ""),
            ("head", "body"),
            ("hand", "body"),
            ("foot", "body"),
            ("area", "")
        ]
    );
    assert_eq!(
        cat["attributes"],
        json!([
            "age",
            "color",
            "note",
            "occluded",
            "parked",
            "speed",
            "visible face"
        ])
    );
    assert_eq!(
        v["categories"]["points"]["items"],
        json!([{"label_id": 2, "labels": ["hand", "head", "foot"], "joints": [[1, 3], [2, 1]], "positions": []}])
    );
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["id"], "img/a");
    assert_eq!(items[0]["attr"], json!({"frame": 5}));
    assert_eq!(
        items[0]["image"],
        json!({"path": "img/a.jpg", "size": [8, 10]})
    );
    assert_eq!(items[2]["id"], "c/d.e");
    assert_eq!(items[2]["annotations"], json!([]));

    let f0 = items[0]["annotations"].as_array().unwrap();
    assert_eq!(
        f0[0],
        json!({"id": 0, "type": "label", "attributes": {"color": "blue", "speed": 5.0, "parked": true, "note": "hello"}, "group": 1, "label_id": 0})
    );
    // Shapes sorted by z-order: polygon (0), car box (1), person box (2).
    let types: Vec<&str> = f0.iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["label", "polygon", "bbox", "bbox"]);
    assert_eq!(
        f0[2],
        json!({"id": 0, "type": "bbox",
               "attributes": {"color": "red", "speed": 2.5, "parked": false, "note": "", "occluded": true, "rotation": 30.0},
               "group": 1, "label_id": 0, "z_order": 1, "bbox": [1.0, 2.0, 4.0, 4.0]})
    );
    assert_eq!(
        f0[3]["attributes"],
        json!({"age": 40.0, "occluded": false, "rotation": 0.0})
    );

    let f1 = items[1]["annotations"].as_array().unwrap();
    let by_type = |t: &str| f1.iter().find(|a| a["type"] == t).unwrap().clone();
    assert_eq!(by_type("points")["visibility"], json!([2, 2]));
    assert_eq!(by_type("ellipse")["points"], json!([1.0, 1.0, 5.0, 3.0]));
    assert_eq!(by_type("ellipse")["attributes"]["rotation"], json!(10.0));
    // Mask on the 6x4 frame: pixels (1,0), (1,1), (2,1) → runs 4, 2, 3, 1, 14 (pycocotools: b'423O;').
    assert_eq!(
        by_type("mask"),
        json!({"id": 0, "type": "mask", "attributes": {"occluded": false}, "group": 0, "label_id": 6,
               "rle": {"counts": "423O;", "size": [4, 6]}, "z_order": 0})
    );
    assert_eq!(
        by_type("skeleton"),
        json!({"id": 0, "type": "skeleton", "attributes": {"occluded": true, "keyframe": false}, "group": 0,
               "label_id": 2, "points": [1.0, 1.0, 2, 2.0, 2.0, 1, 3.0, 3.0, 0],
               "points_attributes": [{}, {"visible face": false}, {}], "z_order": 3})
    );
}

/// A label attribute named like one the converter adds (`occluded`, `rotation`, `track_id`,
/// `keyframe`) keeps its place and takes the added value, as Python's dict does.
#[test]
fn added_attributes_replace_label_attributes_of_the_same_name() {
    let l = LabelIndex::from_labels(vec![label(
        1,
        "odd",
        "any",
        None,
        vec![
            (10, spec("rotation", "text", &[], "none", false)),
            (11, spec("kind", "select", &["a", "b"], "a", false)),
            (12, spec("occluded", "checkbox", &["false"], "false", false)),
        ],
    )]);
    let mut boxed = shape(
        ShapeType::Rectangle,
        0,
        1,
        &[1.0, 2.0, 3.0, 4.0],
        vec![av(11, "b")],
    );
    boxed.occluded = true;
    boxed.rotation = 45.5;
    let poly = shape(
        ShapeType::Polygon,
        0,
        1,
        &[1.0, 1.0, 2.0, 2.0, 3.0, 1.0],
        vec![],
    );
    let a = Annotations {
        shapes: vec![boxed, poly],
        ..Default::default()
    };
    let ds = dataset(&l, &a, numbered_frames(1));
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, None);
    let text = String::from_utf8(zip_entry(&zip, "annotations/default.json")).unwrap();
    assert!(
        text.contains(r#""attributes":{"rotation":45.5,"kind":"b","occluded":true},"group""#),
        "{text}"
    );
    assert!(
        text.contains(r#""attributes":{"rotation":"none","kind":"a","occluded":false},"group""#),
        "{text}"
    );
}

#[test]
fn export_with_images_stores_them_per_subset() {
    let l = labels();
    let a = Annotations::default();
    let mut ds = dataset(&l, &a, frames());
    ds.subset = "train".into();
    let images = TestImages::all(&ds, "jpg");
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, Some(&images));
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut names: Vec<String> = z.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "annotations/train.json",
            "images/train/b.jpg",
            "images/train/c_d.e.jpg",
            "images/train/img_a.jpg"
        ]
    );
    assert_eq!(
        z.by_name("images/train/b.jpg").unwrap().compression(),
        zip::CompressionMethod::Stored
    );
    let v = zip_json(&zip, "annotations/train.json");
    assert_eq!(
        v["items"][0]["image"],
        json!({"path": "img_a.jpg", "size": [8, 10]})
    );
    assert_eq!(zip_entry(&zip, "images/train/c_d.e.jpg"), images.bytes(2));

    // Names that clash once '/' becomes '_' get a suffix.
    let fr = vec![frame(0, 0, "a/b.jpg", 2, 2), frame(1, 1, "a_b.jpg", 2, 2)];
    let ds = dataset(&l, &a, fr);
    let images = TestImages::all(&ds, "jpg");
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, Some(&images));
    let v = zip_json(&zip, "annotations/default.json");
    assert_eq!(v["items"][0]["image"]["path"], "a_b.jpg");
    assert_eq!(v["items"][1]["image"]["path"], "a_b_1.jpg");
    assert_eq!(zip_entry(&zip, "images/default/a_b_1.jpg"), images.bytes(1));
}

// ---- import ------------------------------------------------------------------------------------

#[test]
fn export_then_import_round_trips() {
    let l = labels();
    let a = sample_annotations();
    let ds = dataset(&l, &a, frames());
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, None);
    let back = Datumaro::default()
        .import(&ImportInput::open(&zip).unwrap(), &ds)
        .unwrap();
    assert_eq!(normalised(&back), normalised(&a));

    // Also with images saved (paths renamed) and as a bare JSON file.
    let images = TestImages::all(&ds, "jpg");
    let (_dir2, zip2) = export_zip(&Datumaro::default(), &ds, Some(&images));
    let back = Datumaro::default()
        .import(&ImportInput::open(&zip2).unwrap(), &ds)
        .unwrap();
    assert_eq!(normalised(&back), normalised(&a));
    let json_path = write_json(
        _dir.path(),
        "default.json",
        &zip_json(&zip, "annotations/default.json"),
    );
    let back = Datumaro::default()
        .import(&ImportInput::open(&json_path).unwrap(), &ds)
        .unwrap();
    assert_eq!(normalised(&back), normalised(&a));
}

#[test]
fn import_reads_the_cvat_skeleton_sample() {
    let l = LabelIndex::from_labels(vec![
        bare_skeleton(1, "skeleton-label"),
        label(2, "point1-label", "points", Some(1), vec![]),
        label(
            3,
            "point2-label",
            "points",
            Some(1),
            vec![(30, spec("point2-attribute-text", "text", &[], "", false))],
        ),
        label(
            4,
            "point3-label",
            "points",
            Some(1),
            vec![(
                40,
                spec(
                    "point3-attribute-checkbox",
                    "checkbox",
                    &["false"],
                    "false",
                    false,
                ),
            )],
        ),
    ]);
    let a = Annotations::default();
    let ds = dataset(&l, &a, vec![frame(0, 0, "100.jpg", 6, 10)]);
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_dir(&shared().join("with_skeleton"), dir.path(), "s.zip");
    let got = Datumaro::default()
        .import(&ImportInput::open(&zip).unwrap(), &ds)
        .unwrap();
    assert!(got.tags.is_empty() && got.tracks.is_empty());
    assert_eq!(got.shapes.len(), 1);
    let s = &got.shapes[0];
    assert_eq!(
        (s.kind, s.label_id, s.frame, s.occluded),
        (ShapeType::Skeleton, 1, 0, false)
    );
    let els: Vec<(i64, Vec<f64>, Vec<AttributeVal>)> = s
        .elements
        .iter()
        .map(|e| (e.label_id, e.points.clone(), e.attributes.clone()))
        .collect();
    assert_eq!(
        els,
        vec![
            (2, vec![0.9, 3.53], vec![]),
            (4, vec![2.45, 7.6], vec![av(40, "true")]),
            (3, vec![5.2, 2.5], vec![av(30, "some text")]),
        ]
    );
    assert!(s.elements.iter().all(|e| !e.outside && !e.occluded));
}

/// Counts what a file holds, as Datumaro's summary does (items, annotations by type).
#[derive(Default)]
struct Counter {
    items: usize,
    by_type: BTreeMap<String, usize>,
}

impl<'de> Sink<'de> for Counter {
    fn categories(&mut self, _: &str, _: Value) -> Result<(), FormatError> {
        Ok(())
    }
    fn item(&mut self, _: &str, _: usize, item: Item<'de>) -> Result<Buffers<'de>, FormatError> {
        self.items += 1;
        let Item::Object(DmItem {
            annotations: AnnotationsField::List,
            lists,
            ..
        }) = &item
        else {
            panic!("an item without an annotation list: {item:?}");
        };
        for a in &lists.annotations {
            *self.by_type.entry(a.ty().unwrap().to_owned()).or_default() += 1;
        }
        Ok(item.into_buffers())
    }
}

fn count_dir(dir: &Path) -> Counter {
    let mut c = Counter::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("annotations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        parse_file(
            std::fs::File::open(&f).unwrap(),
            None,
            "f",
            DEFAULT_READ_LIMIT,
            DEFAULT_MAX_IMPORT_VALUE,
            &mut c,
        )
        .unwrap();
    }
    c
}

#[test]
fn shared_samples_stream_with_datumaro_counts() {
    // dataset-summary.py "Datumaro 1.0" (PyPI datumaro 1.13.12) on the same folders.
    let c = count_dir(&shared().join("v1.0"));
    assert_eq!(c.items, 7);
    let want: BTreeMap<String, usize> = [
        ("bbox", 3),
        ("caption", 3),
        ("cuboid_3d", 1),
        ("ellipse", 1),
        ("label", 2),
        ("mask", 1),
        ("points", 1),
        ("polygon", 1),
        ("polyline", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(c.by_type, want);
    let c = count_dir(&shared().join("diverse"));
    assert_eq!((c.items, c.by_type.values().sum::<usize>()), (7, 13));
    let c = count_dir(&shared().join("with_skeleton"));
    assert_eq!((c.items, c.by_type.values().sum::<usize>()), (1, 1));
}

fn cat_labels() -> LabelIndex {
    LabelIndex::from_labels(
        (0..5)
            .map(|i| {
                label(
                    i + 1,
                    &format!("cat{i}"),
                    "any",
                    None,
                    vec![
                        (
                            100 + 2 * i,
                            spec("x", "number", &["0", "10", "1"], "0", false),
                        ),
                        (101 + 2 * i, spec("y", "text", &[], "", false)),
                    ],
                )
            })
            .collect(),
    )
}

fn cat_frames() -> Vec<DatasetFrame> {
    ["1.jpg", "2.jpg", "21.jpg", "42.jpg", "43.jpg", "100.jpg"]
        .iter()
        .enumerate()
        .map(|(i, n)| frame(i as u64, i as u64, n, 6, 10))
        .collect()
}

#[test]
fn v1_sample_fails_like_cvat_on_an_unlabelled_annotation() {
    let l = cat_labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, cat_frames());
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_dir(&shared().join("v1.0"), dir.path(), "v1.zip");
    let e = Datumaro::default()
        .import(&ImportInput::open(&zip).unwrap(), &ds)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "annotations/train.json, item '100' (#0), annotation #4 (bbox): annotation has no label"
    );
}

#[test]
fn v1_train_subset_imports_without_the_unlabelled_box() {
    let l = cat_labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, cat_frames());
    let dir = tempfile::tempdir().unwrap();
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(shared().join("v1.0/annotations/train.json")).unwrap(),
    )
    .unwrap();
    v["items"][0]["annotations"]
        .as_array_mut()
        .unwrap()
        .remove(4);
    let p = write_json(dir.path(), "train.json", &v);
    let got = Datumaro::default()
        .import(&ImportInput::open(&p).unwrap(), &ds)
        .unwrap();
    // Captions are dropped; item "100" is frame 5, item "21" frame 2.
    let tags: Vec<(u64, i64, Vec<AttributeVal>)> = got
        .tags
        .iter()
        .map(|t| (t.frame, t.label_id, t.attributes.clone()))
        .collect();
    assert_eq!(
        tags,
        vec![(5, 3, vec![av(104, "1"), av(105, "2")]), (2, 3, vec![])]
    );
    type Row = (u64, ShapeType, i64, Vec<f64>, i64, Option<f64>);
    let shapes: Vec<Row> = got
        .shapes
        .iter()
        .map(|s| {
            (
                s.frame,
                s.kind,
                s.label_id,
                s.points.clone(),
                s.z_order,
                s.score,
            )
        })
        .collect();
    assert_eq!(
        shapes,
        vec![
            (
                5,
                ShapeType::Rectangle,
                5,
                vec![1.0, 2.0, 4.0, 6.0],
                1,
                Some(1.0)
            ),
            (
                5,
                ShapeType::Points,
                1,
                vec![1.0, 2.0, 2.0, 0.0, 1.0, 1.0],
                4,
                None
            ),
            (
                5,
                ShapeType::Mask,
                4,
                vec![0.0, 6.0, 0.0, 0.0, 2.0, 1.0],
                2,
                None
            ),
            (
                2,
                ShapeType::Rectangle,
                5,
                vec![1.0, 2.0, 4.0, 6.0],
                0,
                None
            ),
        ]
    );
    assert!(got
        .shapes
        .iter()
        .all(|s| s.group == 0 && s.source == "file"));
}

#[test]
fn v1_ellipse_converts_to_cvat_points() {
    let l = cat_labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, cat_frames());
    let dir = tempfile::tempdir().unwrap();
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(shared().join("v1.0/annotations/val.json")).unwrap())
            .unwrap();
    for a in v["items"][0]["annotations"].as_array_mut().unwrap() {
        a["label_id"] = json!(1);
    }
    let p = write_json(dir.path(), "val.json", &v);
    let got = Datumaro::default()
        .import(&ImportInput::open(&p).unwrap(), &ds)
        .unwrap();
    let e = got
        .shapes
        .iter()
        .find(|s| s.kind == ShapeType::Ellipse)
        .unwrap();
    // Datumaro (1, 3, 2, 4) → CVAT (cx, cy, x2, y1).
    assert_eq!(e.points, vec![1.5, 3.5, 2.0, 3.0]);
    assert_eq!(got.shapes.len(), 3);
}

fn import_json(v: &Value, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
    let dir = tempfile::tempdir().unwrap();
    let p = write_json(dir.path(), "bad.json", v);
    Datumaro::default().import(&ImportInput::open(&p).unwrap(), ds)
}

#[test]
fn bad_input_names_file_item_and_reason() {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, frames());
    let cats = json!({"label": {"labels": [{"name": "car", "parent": ""}, {"name": "zzz", "parent": ""}]}});
    let item = |id: &str, anns: Value| json!({"id": id, "annotations": anns});
    let cases = [
        (
            json!({"categories": cats, "items": [item("b", json!([])), item("img/a", json!([{"type": "bbox", "label_id": 0, "bbox": [1, 2, 3]}]))]}),
            "bad.json, item 'img/a' (#1), annotation #0 (bbox): \"bbox\" must have 4 numbers, got 3",
        ),
        (
            json!({"categories": cats, "items": [item("b", json!([{"type": "label", "label_id": 1}]))]}),
            "bad.json, item 'b' (#0), annotation #0 (label): Label 'zzz' is not registered for this task",
        ),
        (
            json!({"categories": cats, "items": [item("b", json!([{"type": "label", "label_id": 0, "attributes": {"color": "green"}}]))]}),
            "attribute 'color' of label 'car': 'green' is not one of",
        ),
        (
            json!({"categories": cats, "items": [item("b", json!([{"type": "polygon", "label_id": 0, "points": [1, 2, 3, 4]}]))]}),
            "item 'b' (#0), annotation #0 (polygon): a polygon needs an even number of at least 6",
        ),
        (
            // Regression (issue 11): an unknown type was silently dropped.
            json!({"categories": cats, "items": [item("b", json!([{"type": "triangle", "label_id": 0}]))]}),
            "bad.json, item 'b' (#0), annotation #0 (triangle): unknown annotation type 'triangle'",
        ),
        (
            json!({"categories": cats, "items": [item("b", json!([])), item("nope", json!([]))]}),
            "bad.json, item 'nope' (#1): Could not match item id: 'nope' with any task frame",
        ),
        (
            json!({"categories": cats, "items": [item("b", json!([])), {"id": "c"}]}),
            "bad.json, item 'c' (#1): the item has no \"annotations\" list",
        ),
        (
            json!({"categories": cats, "items": [item("b", json!([{"type": "mask", "label_id": 0, "rle": {"counts": [3, 4], "size": [2, 3]}}]))]}),
            "the RLE counts cover more than the 2x3 mask",
        ),
    ];
    for (v, want) in cases {
        let e = import_json(&v, &ds).unwrap_err().to_string();
        assert!(e.contains(want), "{v}\n got: {e}\nwant: {want}");
    }

    // Items before categories are kept until the categories come.
    let v = json!({"items": [item("b", json!([{"type": "label", "label_id": 0}]))], "categories": cats});
    assert_eq!(import_json(&v, &ds).unwrap().tags.len(), 1);

    // Not Datumaro at all.
    let e = import_json(&json!({"foo": 1}), &ds).unwrap_err();
    assert!(matches!(e, FormatError::NotThisFormat { .. }), "{e}");

    // Broken JSON inside the second item: file, item index, line and column.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.json");
    std::fs::write(
        &p,
        "{\"categories\": {\"label\": {\"labels\": []}},\n\"items\": [\n{\"id\": \"b\", \"annotations\": []},\n{\"id\": \"c\", \"annotations\": [}\n]}",
    )
    .unwrap();
    let e = Datumaro::default()
        .import(&ImportInput::open(&p).unwrap(), &ds)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("broken.json, item #1: invalid JSON: ") && e.contains("line 4"),
        "{e}"
    );

    // The read limit.
    let e = Datumaro { read_limit: 20 }
        .import(&ImportInput::open(&p).unwrap(), &ds)
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 20 bytes"), "{e}");

    // A zip without annotations/*.json.
    let z = write_zip(dir.path(), "x.zip", &[("readme.txt", b"hi")]);
    let e = Datumaro::default()
        .import(&ImportInput::open(&z).unwrap(), &ds)
        .unwrap_err();
    assert!(matches!(e, FormatError::NotThisFormat { .. }), "{e}");
}

#[test]
fn groups_are_renumbered_per_item_and_singletons_dropped() {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, frames());
    let cats = json!({"label": {"labels": [{"name": "car", "parent": ""}]}});
    let bbox = |g: i64| json!({"type": "bbox", "label_id": 0, "group": g, "bbox": [0, 0, 1, 1]});
    let v = json!({"categories": cats, "items": [
        {"id": "b", "annotations": [bbox(7), bbox(3), bbox(7), bbox(3), bbox(9), {"type": "label", "label_id": 0, "group": 9}, {"type": "label", "label_id": 0, "group": 7}]}
    ]});
    let got = import_json(&v, &ds).unwrap();
    let groups: Vec<u64> = got.shapes.iter().map(|s| s.group).collect();
    assert_eq!(groups, vec![2, 1, 2, 1, 0]);
    let tag_groups: Vec<u64> = got.tags.iter().map(|t| t.group).collect();
    assert_eq!(tag_groups, vec![0, 2]);
}

#[test]
fn tracks_are_rebuilt_from_track_id_and_keyframe() {
    // Hand-written per-frame shapes (as CVAT exports a track): frames 0, 1 visible (1 is not a
    // keyframe), 3 a keyframe after a gap; the task has 5 frames.
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, numbered_frames(5));
    let cats = json!({"label": {"labels": [{"name": "car", "parent": ""}]}});
    let b = |x: f64, kf: bool| {
        json!([{"type": "bbox", "label_id": 0, "bbox": [x, 0, 1, 1],
                "attributes": {"track_id": 4, "keyframe": kf, "color": "blue", "speed": x, "occluded": false}}])
    };
    let v = json!({"categories": cats, "items": [
        {"id": "3", "annotations": b(3.0, true)},
        {"id": "0", "annotations": b(0.0, true)},
        {"id": "1", "annotations": b(1.0, false)},
    ]});
    let got = import_json(&v, &ds).unwrap();
    assert!(got.shapes.is_empty());
    assert_eq!(got.tracks.len(), 1);
    let t = &got.tracks[0];
    assert_eq!((t.frame, t.label_id), (0, 1));
    assert_eq!(t.attributes, vec![av(10, "blue")]);
    let shapes: Vec<(u64, bool, f64, Vec<AttributeVal>)> = t
        .shapes
        .iter()
        .map(|s| (s.frame, s.outside, s.points[0], s.attributes.clone()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            (0, false, 0.0, vec![av(11, "0")]),
            (1, false, 1.0, vec![av(11, "1")]),
            (2, true, 1.0, vec![av(11, "1")]),
            (3, false, 3.0, vec![av(11, "3")]),
            (4, true, 3.0, vec![av(11, "3")]),
        ]
    );

    // Two shapes of one track on a frame.
    let v = json!({"categories": cats, "items": [
        {"id": "0", "annotations": [b(0.0, true)[0].clone(), b(1.0, true)[0].clone()]},
    ]});
    let e = import_json(&v, &ds).unwrap_err().to_string();
    assert!(
        e.contains("track 4: two shapes of the track are on frame 0"),
        "{e}"
    );
}

// ---- tracks through interpolation ------------------------------------------------------------

fn track_annotations() -> Annotations {
    use ShapeType::{Points, Rectangle, Skeleton};
    // Visible at 0, outside at 2.
    let two = |kind, points: &[f64], occluded: bool, attrs: Vec<AttributeVal>| {
        [false, true].map(|outside| TrackedShape {
            occluded,
            attributes: attrs.clone(),
            ..keyframe(kind, if outside { 2 } else { 0 }, outside, points)
        })
    };
    let box_track = track(
        1,
        vec![av(10, "blue"), av(13, "t")],
        two(
            Rectangle,
            &[1.0, 1.0, 3.0, 3.0],
            false,
            vec![av(11, "1"), av(12, "false")],
        )
        .to_vec(),
    );
    let element = |label_id, p: [f64; 2], occluded: bool, track_attrs: Vec<AttributeVal>| {
        track(
            label_id,
            track_attrs,
            two(Points, &p, occluded, vec![]).to_vec(),
        )
    };
    let skel_track = Track {
        elements: vec![
            element(5, [1.0, 1.0], false, vec![]),
            element(4, [2.0, 2.0], true, vec![av(40, "true")]),
            element(6, [3.0, 3.0], false, vec![]),
        ],
        ..track(3, vec![], two(Skeleton, &[], false, vec![]).to_vec())
    };
    Annotations {
        version: 0,
        tags: vec![],
        shapes: vec![],
        tracks: vec![box_track, skel_track],
        intervals: Vec::new(),
    }
}

#[test]
fn tracks_export_per_frame_and_round_trip() {
    let l = labels();
    let a = track_annotations();
    let ds = dataset(&l, &a, frames());
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, None);
    let v = zip_json(&zip, "annotations/default.json");
    let items = v["items"].as_array().unwrap();
    for (i, kf) in [(0, true), (1, false)] {
        let anns = items[i]["annotations"].as_array().unwrap();
        let bbox = anns.iter().find(|a| a["type"] == "bbox").unwrap();
        assert_eq!(bbox["attributes"]["track_id"], 0);
        assert_eq!(bbox["attributes"]["keyframe"], kf);
        let skel = anns.iter().find(|a| a["type"] == "skeleton").unwrap();
        assert_eq!(skel["attributes"]["track_id"], 1);
        assert_eq!(skel["attributes"]["keyframe"], kf);
        assert_eq!(skel["points_attributes"][0]["track_id"], 1);
    }
    assert_eq!(
        items[2]["annotations"],
        json!([]),
        "outside shapes are dropped"
    );
    let back = Datumaro::default()
        .import(&ImportInput::open(&zip).unwrap(), &ds)
        .unwrap();
    // Import makes the last visible frame before each inferred `outside` a keyframe (CVAT's
    // `_close_last_interval`): frame 1 here, with the same geometry, so nothing moves.
    let mut want = a.clone();
    fn close_at_1(t: &mut Track) {
        let mut k = t.shapes[0].clone();
        k.frame = 1;
        t.shapes.insert(1, k);
        t.elements.iter_mut().for_each(close_at_1);
    }
    want.tracks.iter_mut().for_each(close_at_1);
    assert_eq!(normalised(&back), normalised(&want));
}

/// Regression (issue 11): a segment closed by an outside shape one step after its last
/// visible frame keeps that frame as a keyframe (CVAT's `_close_last_interval`), so frames
/// 1–3 come back at 10/20/30, not interpolated toward the outside shape (7.5/15/22.5).
#[test]
fn track_closed_by_outside_keeps_its_last_visible_frame() {
    let l = testkit::label_index();
    let ts = |frame, outside, x: f64| TrackedShape {
        attributes: vec![av(11, "1"), av(12, "false")],
        ..keyframe(
            ShapeType::Rectangle,
            frame,
            outside,
            &[x, x, x + 10.0, x + 10.0],
        )
    };
    let a = Annotations {
        tracks: vec![track(
            1,
            vec![av(10, "blue"), av(13, "t")],
            vec![ts(0, false, 0.0), ts(4, true, 40.0)],
        )],
        ..Annotations::default()
    };
    let frames: Vec<DatasetFrame> = (0..8)
        .map(|i| frame(i, i, &format!("{i}.jpg"), 100, 100))
        .collect();
    let ds = dataset(&l, &a, frames);
    let (_dir, zip) = export_zip(&Datumaro::default(), &ds, None);
    let back = Datumaro::default()
        .import(&ImportInput::open(&zip).unwrap(), &ds)
        .unwrap();
    let got: Vec<(u64, bool, f64)> = back.tracks[0]
        .shapes
        .iter()
        .map(|s| (s.frame, s.outside, s.points[0]))
        .collect();
    assert_eq!(
        got,
        vec![(0, false, 0.0), (3, false, 30.0), (4, true, 30.0)]
    );
}

// ---- the in-memory and streaming readers -----------------------------------------------------------------------------

/// Records what a parse hands over, in text (`Debug` prints floats exactly).
#[derive(Default)]
struct Recorder(Vec<String>);

impl<'de> Sink<'de> for Recorder {
    fn categories(&mut self, _: &str, cats: Value) -> Result<(), FormatError> {
        self.0.push(format!("categories {cats:?}"));
        Ok(())
    }
    fn item(
        &mut self,
        _: &str,
        index: usize,
        item: Item<'de>,
    ) -> Result<Buffers<'de>, FormatError> {
        self.0.push(format!("#{index} {item:?}"));
        Ok(Buffers::default())
    }
}

fn parse_with(text: &str) -> (Result<(), FormatError>, Vec<String>) {
    let mut r = Recorder::default();
    let res = parse_file(
        text.as_bytes(),
        None,
        "f.json",
        DEFAULT_READ_LIMIT,
        DEFAULT_MAX_IMPORT_VALUE,
        &mut r,
    );
    (res, r.0)
}

/// Odd but valid JSON, in every place the importer reads.
const ODD_BUT_VALID: &str = r#" { "info" : {"a": [1, {"b": null}], "c": "\u00e9"},
	"items": [
	  {"id": "a\/b", "media": {"path": "x", "list": [[], {}, [true, false, null]]},
	   "annotations": [
	     {"id": 0, "type": "bbox", "label_id": 0, "group": 2, "z_order": -1.5,
	      "bbox": [1, -0, -0.0, 1e2], "bbox": [0.1, 2.5E-3, 1.5e+3, 123456789012345678],
	      "attributes": {"color": "r\u0065d", "note": "\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t",
	                     "note": "last", "speed": 2.5, "parked": true, "list": [1, "x"],
	                     "obj": {"k": [1.25]}, "n": null, "big": -9223372036854775808,
	                     "u": 18446744073709551615, "f": 0.30000000000000004,
	                     "e": 1e0000000001, "long": 0.12345678901234567890}},
	     {"type": "polygon", "label_id": 0, "points": [4.9e-324, 1.7976931348623157e308,
	      2.2250738585072014e-308, 1e-400, 0.1, 12.34567890123456789]},
	     {"t\u0079pe": "points", "label_id": 0, "points": "not numbers"},
	     {"type": "mask", "label_id": 0, "rle": {"counts": "52203", "size": [3, 3]}},
	     {"type": "skeleton", "label_id": 0, "points": [1, 2, 2],
	      "points_attributes": [{"source": "manual", "visible face": true}]},
	     {"type": "cuboid_3d", "label_id": 0, "position": [1, 2, 3], "rotation": [0, 0, 0.5],
	      "scale": [1, 1, 1]},
	     [], "not an annotation", 3, null, {}
	   ],
	   "attr": {"frame": 7, "frame": 2}, "image": {"path": "x.PNG", "size": [2, 3]}},
	  {"id": 3, "annotations": null, "annotations": [], "attr": [], "image": "no"},
	  [], "not an item", {"annotations": {}}, {"id": "x", "annotations": 5}
	],
	"categories": {"label": {"labels": [{"name": "car", "parent": ""}]}}, "trailing": [] }
	 "#;

#[test]
fn files_too_large_for_memory_stream_the_same_items() {
    // Files over `IN_MEMORY_MAX` are parsed from a reader, where nothing is borrowed.
    let mut streamed = Recorder::default();
    let de = serde_json::Deserializer::from_reader(ODD_BUT_VALID.as_bytes());
    parse_json(de, "f.json", &mut streamed).unwrap();
    let (res, in_memory) = parse_with(ODD_BUT_VALID);
    res.unwrap();
    assert_eq!(streamed.0, in_memory);
}

// ---- conversion errors ---------------------------------------------------------------------------

#[test]
fn wrong_types_name_the_field() {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, frames());
    let cats = json!({"label": {"labels": [{"name": "car"}, {"name": "person"}]}});
    let one =
        |ann: Value| json!({"categories": cats, "items": [{"id": "b", "annotations": [ann]}]});
    let at = "bad.json, item 'b' (#0), annotation #0";
    let cases = [
        (
            json!({"type": "bbox", "label_id": 0, "bbox": "1 2 3 4"}),
            "(bbox): \"bbox\" must be a list of numbers",
        ),
        (
            json!({"type": "bbox", "label_id": 0, "bbox": [1, "2", 3, 4]}),
            "(bbox): \"bbox\" must be a list of numbers",
        ),
        (
            json!({"type": "bbox", "label_id": 0, "points": [1, 2, 3, 4]}),
            "(bbox): \"bbox\" must be a list of numbers",
        ),
        (
            json!({"type": "polygon", "label_id": 0, "points": {"x": 1}}),
            "(polygon): \"points\" must be a list of numbers",
        ),
        (
            json!({"type": "cuboid_3d", "label_id": 0, "position": [1, 2, 3], "scale": [1, 1, 1]}),
            "(cuboid_3d): \"rotation\" must be a list of numbers",
        ),
        (
            json!({"type": "bbox", "bbox": [1, 2, 3, 4]}),
            "(bbox): annotation has no label",
        ),
        (
            json!({"type": "bbox", "label_id": null, "bbox": [1, 2, 3, 4]}),
            "(bbox): annotation has no label",
        ),
        (
            json!({"type": "label", "label_id": "0"}),
            "(label): label_id \"0\" is not a label index",
        ),
        (
            json!({"type": "label", "label_id": -1}),
            "(label): label_id -1 is not a label index",
        ),
        (
            json!({"type": "label", "label_id": 1.0}),
            "(label): label_id 1.0 is not a label index",
        ),
        (
            json!({"type": "label", "label_id": 2}),
            "(label): label_id 2 is not in the label categories",
        ),
        (
            json!({"label_id": 0}),
            "(?): the annotation has no \"type\"",
        ),
        (
            json!({"type": 3, "label_id": 0}),
            "(?): the annotation has no \"type\"",
        ),
        (json!([1]), "(?): an annotation must be a JSON object"),
        (
            json!({"type": "label", "label_id": 0, "attributes": ["color"]}),
            "(label): \"attributes\" must be an object",
        ),
        (
            json!({"type": "label", "label_id": 0, "attributes": {"color": 1}}),
            "(label): attribute 'color' of label 'car': '1' is not one of [\"red\", \"blue\"]",
        ),
        (
            json!({"type": "label", "label_id": 0, "attributes": {"color": true}}),
            "(label): attribute 'color' of label 'car': 'true' is not one of [\"red\", \"blue\"]",
        ),
        (
            json!({"type": "label", "label_id": 0, "attributes": {"parked": "yes"}}),
            "(label): attribute 'parked' of label 'car': 'yes' is not true or false",
        ),
        (
            json!({"type": "label", "label_id": 0, "attributes": {"speed": [1]}}),
            "(label): attribute 'speed' of label 'car': '[1]' is not a number",
        ),
        (
            json!({"type": "bbox", "label_id": 0, "bbox": [1, 2, 3, 4], "attributes": {"score": "0.5"}}),
            "(bbox): the score must be a number",
        ),
        (
            json!({"type": "bbox", "label_id": 0, "bbox": [1, 2, 3, 4], "attributes": {"score": 2}}),
            "(bbox): the score 2 is outside 0..1",
        ),
    ];
    for (ann, want) in cases {
        let e = import_json(&one(ann.clone()), &ds).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{at} {want}")),
            "{ann}\n got: {e}\nwant: {at} {want}"
        );
    }
    let e = import_json(&json!({"categories": cats, "items": [5]}), &ds)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "bad.json, item #0: an item must be a JSON object");
    let e = import_json(
        &json!({"categories": cats, "items": [{"id": [], "annotations": []}]}),
        &ds,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "bad.json, item #0: the item has no string \"id\"");
    let e = import_json(
        &json!({"categories": cats, "items": [{"id": "b", "annotations": {}}]}),
        &ds,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "bad.json, item 'b' (#0): \"annotations\" must be a list");

    // Values of other types, as CVAT reads them.
    let v = one(
        json!({"type": "bbox", "label_id": 0, "bbox": [1, 2, 3, 4], "z_order": 2.7,
        "attributes": {"note": ["x", 1], "parked": 1, "speed": 5.0, "occluded": "Yes",
                       "rotation": 370, "source": "AUTO", "score": 1}}),
    );
    let got = import_json(&v, &ds).unwrap();
    let s = &got.shapes[0];
    assert_eq!(
        (
            s.z_order,
            s.occluded,
            s.rotation,
            s.source.as_str(),
            s.score
        ),
        (2, true, 10.0, "auto", Some(1.0))
    );
    assert_eq!(
        s.attributes,
        vec![av(13, "[\"x\",1]"), av(12, "true"), av(11, "5")]
    );
}

#[test]
fn track_ids_of_any_type_key_tracks() {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, numbered_frames(5));
    let cats = json!({"label": {"labels": [{"name": "car"}]}});
    let b = |track_id: Value, keyframe: Option<bool>| {
        let mut attrs = json!({"track_id": track_id});
        if let Some(k) = keyframe {
            attrs["keyframe"] = json!(k);
        }
        json!({"type": "bbox", "label_id": 0, "bbox": [0, 0, 1, 1], "attributes": attrs})
    };
    // 4 and 4.0 are one track, "4" another; without `keyframe` a box is no track shape.
    let v = json!({"categories": cats, "items": [
        {"id": "0", "annotations": [b(json!(4), Some(true)), b(json!("4"), Some(true)), b(json!(9), None)]},
        {"id": "1", "annotations": [b(json!(4.0), Some(false)), b(json!(null), Some(true))]},
    ]});
    let got = import_json(&v, &ds).unwrap();
    let frames: Vec<Vec<(u64, bool)>> = got
        .tracks
        .iter()
        .map(|t| t.shapes.iter().map(|s| (s.frame, s.outside)).collect())
        .collect();
    assert_eq!(
        frames,
        vec![
            vec![(0, false), (1, false), (2, true)],
            vec![(0, false), (1, true)]
        ]
    );
    assert_eq!(got.shapes.len(), 2);

    // Track errors name the track as its id reads.
    for (id, key) in [
        (json!("a"), "\"a\""),
        (json!(2.5), "2.5"),
        (json!(-3), "-3"),
    ] {
        let v = json!({"categories": cats, "items": [
            {"id": "0", "annotations": [b(id.clone(), Some(true)), b(id, Some(true))]},
        ]});
        let e = import_json(&v, &ds).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("bad.json, item '0' (#0): track {key}: two shapes of the track are on frame 0")
        );
    }
}

/// Writes exports for a cross-check with Datumaro (`shared/tools/dataset-summary.py`):
/// `DATUMARO_EXPORT_DIR=/tmp/x cargo test --lib formats::datumaro::tests::write_exports -- --ignored`
/// gives `shapes.zip` (no skeleton: PyPI Datumaro 1.13 has no skeleton type), `all.zip`
/// (with the skeleton), `images.zip` (saved images, subset `train`) and `tracks.zip` (a box track).
#[test]
#[ignore = "writes files for a manual cross-check"]
fn write_exports() {
    let Some(out) = std::env::var_os("DATUMARO_EXPORT_DIR").map(PathBuf::from) else {
        return;
    };
    std::fs::create_dir_all(&out).unwrap();
    let l = labels();
    let all = sample_annotations();
    let mut shapes = all.clone();
    shapes.shapes.retain(|s| s.kind != ShapeType::Skeleton);
    for (name, a, subset, save) in [
        ("shapes.zip", &shapes, "", false),
        ("all.zip", &all, "", false),
        ("images.zip", &shapes, "train", true),
    ] {
        let mut ds = dataset(&l, a, frames());
        ds.subset = subset.into();
        let images = TestImages::all(&ds, "jpg");
        let (_dir, zip) = export_zip(
            &Datumaro::default(),
            &ds,
            save.then_some(&images as &dyn FrameSource),
        );
        std::fs::copy(zip, out.join(name)).unwrap();
    }
    // A dataset Datumaro wrote (e.g. `dataset-summary.py … shapes --export "Datumaro 1.0" DIR`)
    // must read back as the annotations exported.
    if let Some(dir) = std::env::var_os("DATUMARO_REIMPORT_DIR").map(PathBuf::from) {
        let ds = dataset(&l, &shapes, frames());
        let zip = zip_dir(&dir, &out, "reimport.zip");
        let back = Datumaro::default()
            .import(&ImportInput::open(&zip).unwrap(), &ds)
            .unwrap();
        assert_eq!(normalised(&back), normalised(&shapes));
    }
    {
        // The box track only: PyPI Datumaro 1.13 cannot read skeletons.
        let mut a = track_annotations();
        a.tracks.truncate(1);
        let ds = dataset(&l, &a, frames());
        let (_dir, zip) = export_zip(&Datumaro::default(), &ds, None);
        std::fs::copy(zip, out.join("tracks.zip")).unwrap();
    }
}

/// An annotation that cannot be written (a label the task does not have) fails the export with
/// the file and the frame, even deep in a large export rendered in pieces on all cores.
#[test]
fn export_errors_name_the_frame() {
    let l = testkit::label_index();
    let mut a = Annotations::default();
    for f in 0..3000 {
        let label = if f == 2500 { 99 } else { 2 };
        a.shapes.push(shape(
            ShapeType::Rectangle,
            f,
            label,
            &[1.0, 2.0, 3.0, 4.0],
            vec![],
        ));
    }
    let ds = dataset(&l, &a, numbered_frames(3000));
    let dir = tempfile::tempdir().unwrap();
    let err = export_file(&Datumaro::default(), &ds, None, &dir.path().join("x.zip")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "annotations/default.json, frame 2500 ('2500.jpg'): unknown label id 99"
    );
}

// ---- import limits -------------------------------------------------------------------------------

#[test]
fn string_scan_follows_json_quoting_across_chunks() {
    // (text, longest string in it)
    let cases: [(&str, u64); 6] = [
        (r#"{"a": "bc", "def": 1}"#, 3),
        (r#"["x\"y\"z"]"#, 7),
        (r#"["\\", "1234"]"#, 4),
        (r#"["\\\"12"]"#, 6),
        (r#"["\u00e9\u00e9"]"#, 12),
        ("[1, 2, 3]", 0),
    ];
    for (text, longest) in cases {
        for chunk in [1, 2, 3, text.len()] {
            let scan = |max| {
                let mut s = StringScan::default();
                text.as_bytes().chunks(chunk).all(|c| s.scan(c, max))
            };
            assert!(scan(longest), "{text} / {chunk}: {longest} is allowed");
            if longest > 0 {
                assert!(
                    !scan(longest - 1),
                    "{text} / {chunk}: {} is not",
                    longest - 1
                );
            }
        }
    }
}

#[test]
fn strings_past_the_import_limit_are_refused_naming_it() {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, frames());
    let dir = tempfile::tempdir().unwrap();
    let limits = crate::formats::ImportLimits {
        max_value: 1 << 20,
        ..Default::default()
    };
    let cats = json!({"label": {"labels": [{"name": "car"}]}});
    let long = "x".repeat(2 << 20);
    let quotes = "\"".repeat(600_000); // escaped: 1.2 MB in the file, 600 KB decoded
    let mut key = serde_json::Map::new();
    key.insert("categories".into(), cats.clone());
    key.insert("items".into(), json!([]));
    key.insert(long.clone(), json!(1));
    let cases = [
        json!({"info": {"note": long}, "categories": cats, "items": []}),
        json!({"categories": cats, "items": [{"id": long, "annotations": []}]}),
        Value::Object(key),
        json!({"categories": cats, "items": [{"id": "a", "quotes": quotes}]}),
    ];
    for (i, v) in cases.iter().enumerate() {
        let p = write_json(dir.path(), &format!("{i}.json"), v);
        let input = ImportInput::open_with(&p, "default.json", limits).unwrap();
        let e = Datumaro::default().import(&input, &ds).unwrap_err();
        assert!(matches!(e, FormatError::Limit(_)), "{i}: {e}");
        assert_eq!(
            e.to_string(),
            "default.json: a JSON string is larger than 1048576 bytes (--max-import-value)",
            "{i}"
        );
        // Under the default limit the same file is read (or fails for another reason).
        let e = Datumaro::default()
            .import(&ImportInput::open(&p).unwrap(), &ds)
            .err();
        assert!(!matches!(e, Some(FormatError::Limit(_))), "{i}: {e:?}");
    }
}

#[test]
fn zipped_json_bombs_are_refused_naming_the_entry() {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, frames());
    let dir = tempfile::tempdir().unwrap();
    // One 80 MiB string, ~80 KB deflated.
    let z = zip_bomb(
        dir.path(),
        "dataset.zip",
        "annotations/default.json",
        br#"{"categories": {}, "items": [], "info": ""#,
        b'a',
        80,
        b"\"}",
    );
    let e = Datumaro::default()
        .import(&ImportInput::open(&z).unwrap(), &ds)
        .unwrap_err();
    assert!(matches!(e, FormatError::Limit(_)), "{e}");
    assert!(
        e.to_string().starts_with(
            "The archive entry \"annotations/default.json\" expands to more than 200 times"
        ),
        "{e}"
    );
    // With the ratio check off, the string limit stops it.
    let limits = crate::formats::ImportLimits::values_only(1 << 20);
    let input = ImportInput::open_with(&z, "dataset.zip", limits).unwrap();
    let e = Datumaro::default().import(&input, &ds).unwrap_err();
    assert_eq!(
        e.to_string(),
        "annotations/default.json: a JSON string is larger than 1048576 bytes (--max-import-value)"
    );
}
