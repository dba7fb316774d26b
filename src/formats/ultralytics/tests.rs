//! The Ultralytics YOLO family: exact files, class ids indexing `names` (spec §11.1 items 6, 7,
//! 8, 10, 12), tracks, pose padding, YAML quoting and the shared Datumaro samples.

use super::config::{read_config, write_config, Source};
use super::lines::{corners, rectangle_of};
use super::*;
use crate::annotations::{Annotations, LabelIndex, ShapeType::*};
use crate::formats::testkit::{
    self, dataset, export_zip, frame, keyframe, label, label::*, label_index, shape, tag, track,
    write_zip, zip_entries, zip_text, TaskBuilder,
};
use crate::formats::{Exporter, FormatError, ImportInput, Importer, TaskDataset};

fn import_zip(
    f: &dyn Importer,
    path: &std::path::Path,
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    f.import(&ImportInput::open(path).unwrap(), ds)
}

fn names_of(zip: &std::path::Path) -> Vec<String> {
    let mut n: Vec<String> = zip_entries(zip).into_iter().map(|e| e.0).collect();
    n.sort();
    n
}

/// A zip in `dir` of `data.yaml` and `(path, text)` files.
fn ul_zip(dir: &std::path::Path, yaml: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let mut all: Vec<(&str, &[u8])> = vec![("data.yaml", yaml.as_bytes())];
    all.extend(files.iter().map(|(n, t)| (*n, t.as_bytes())));
    write_zip(dir, "ul.zip", &all)
}

const YAML: &str = "names:\n  0: car\n  1: person\npath: .\ntrain: train.txt\n";

#[test]
fn exact_files_of_a_small_detection_task() {
    let labels = label_index();
    let mut rotated = shape(Rectangle, 0, PERSON, &[2.0, 2.0, 12.0, 22.5]);
    rotated.rotation = 30.0;
    let a = Annotations {
        shapes: vec![
            shape(Rectangle, 0, CAR, &[1.0, 2.0, 13.5, 14.25]),
            rotated,
            shape(Polygon, 0, CAR, &[0.0, 0.0, 5.0, 0.0, 5.0, 5.0]),
            shape(Rectangle, 1, SIGN, &[0.0, 0.0, 1.0, 1.0]),
        ],
        ..Default::default()
    };
    let frames = vec![
        frame(0, 0, "img_00.jpg", 40, 30),
        frame(1, 1, "sub/img_01.png", 32, 24),
        frame(2, 2, "img_02", 40, 30),
    ];
    let ds = dataset(&labels, &a, frames);
    let (_dir, zip) = export_zip(&Ultralytics::DETECTION, &ds, None);
    // No label file for the empty frame (Datumaro writes none), as CVAT's export.
    assert_eq!(
        names_of(&zip),
        [
            "data.yaml",
            "labels/train/img_00.txt",
            "labels/train/sub/img_01.txt",
            "train.txt"
        ]
    );
    assert_eq!(
        zip_text(&zip, "data.yaml"),
        "names:\n  0: car\n  1: person\n  2: body\n  3: sign\n  4: unused\npath: .\ntrain: train.txt\n"
    );
    assert_eq!(
        zip_text(&zip, "train.txt"),
        "data/images/train/img_00.jpg\ndata/images/train/sub/img_01.png\ndata/images/train/img_02.jpg\n"
    );
    assert_eq!(
        zip_text(&zip, "labels/train/img_00.txt"),
        "0 0.181250 0.270833 0.312500 0.408333\n"
    );
    assert_eq!(
        zip_text(&zip, "labels/train/sub/img_01.txt"),
        "3 0.015625 0.020833 0.031250 0.041667\n"
    );
}

#[test]
fn skeleton_sublabels_and_tag_labels_are_not_classes() {
    // Spec §11.1 item 6, CVAT issue 8090: class ids counted sub-labels and pointed past `names`.
    let labels = label_index();
    let a = Annotations {
        shapes: vec![shape(Rectangle, 0, UNUSED, &[0.0, 0.0, 4.0, 3.0])],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let (_dir, zip) = export_zip(&Ultralytics::DETECTION, &ds, None);
    let yaml = zip_text(&zip, "data.yaml");
    assert!(!yaml.contains("head") && !yaml.contains("scene"), "{yaml}");
    let line = zip_text(&zip, "labels/train/a.txt");
    assert_eq!(line.split(' ').next(), Some("4"));
    assert!(yaml.contains("  4: unused\n"), "{yaml}");
}

#[test]
fn label_order_is_the_tasks_not_alphabetical() {
    // Spec §11.1 item 12: exporters renumbering categories alphabetically.
    let names = ["zebra", "apple", "mango"];
    assert_eq!(
        write_config(&names, "train", None),
        "names:\n  0: zebra\n  1: apple\n  2: mango\npath: .\ntrain: train.txt\n"
    );
}

#[test]
fn class_id_outside_names_names_file_and_line() {
    // Spec §11.1 item 7: CVAT issue 7008, Datumaro issue 74.
    let dir = tempfile::tempdir().unwrap();
    let zip = ul_zip(
        dir.path(),
        YAML,
        &[
            ("train.txt", "data/images/train/a.jpg\n"),
            (
                "labels/train/a.txt",
                "1 0.5 0.5 0.1 0.1\n\n2 0.5 0.5 0.1 0.1\n",
            ),
        ],
    );
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let e = import_zip(&Ultralytics::DETECTION, &zip, &ds)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("labels/train/a.txt, line 3: class id 2 is not in names"),
        "{e}"
    );
}

#[test]
fn a_map_of_names_with_gaps_maps_ids_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let zip = ul_zip(
        dir.path(),
        "names:\n  3: person\n  7: car\ntrain: train.txt\n",
        &[
            ("train.txt", "images/train/a.jpg\n"),
            (
                "labels/train/a.txt",
                "7 0.5 0.5 0.5 0.5\n3 0.5 0.5 0.5 0.5\n",
            ),
        ],
    );
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let back = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap();
    let got: Vec<i64> = back.shapes.iter().map(|s| s.label_id).collect();
    assert_eq!(got, [CAR, PERSON]);
    let zip = ul_zip(
        dir.path(),
        "names:\n  3: person\n  7: car\ntrain: train.txt\n",
        &[
            ("train.txt", "images/train/a.jpg\n"),
            ("labels/train/a.txt", "1 0.5 0.5 0.5 0.5\n"),
        ],
    );
    let e = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap_err();
    assert!(
        e.to_string().contains("line 1: class id 1 is not in names"),
        "{e}"
    );
}

#[test]
fn frame_step_video_task_names_files_by_absolute_frame() {
    // Spec §11.1 item 10, CVAT issue 1294.
    let mut t = TaskBuilder::video(4).frame_step(10, 3).build();
    t.annotations.shapes = vec![shape(Rectangle, 1, CAR, &[4.0, 3.0, 8.0, 9.0])];
    t.annotations.tracks = vec![track(
        SIGN,
        vec![
            keyframe(Rectangle, 2, false, &[0.0, 0.0, 4.0, 3.0]),
            keyframe(Rectangle, 3, true, &[0.0, 0.0, 4.0, 3.0]),
        ],
    )];
    let ds = t.dataset();
    let (_dir, zip) = export_zip(&Ultralytics::DETECTION_TRACK, &ds, None);
    assert_eq!(
        zip_text(&zip, "train.txt"),
        "data/images/train/frame_000010.PNG\ndata/images/train/frame_000013.PNG\n\
         data/images/train/frame_000016.PNG\ndata/images/train/frame_000019.PNG\n"
    );
    assert_eq!(
        zip_text(&zip, "labels/train/frame_000013.txt"),
        "0 0.150000 0.200000 0.100000 0.200000\n"
    );
    // Detection Track: the track's index ends its lines.
    assert_eq!(
        zip_text(&zip, "labels/train/frame_000016.txt"),
        "3 0.050000 0.050000 0.100000 0.100000 0\n"
    );
    // Imported as Detection: the tracked line is a track closed after its last frame (ends at 2
    // of 0..=3, so an outside shape on 3).
    let back = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 1);
    assert_eq!((back.shapes[0].frame, back.shapes[0].label_id), (1, CAR));
    assert_eq!(back.tracks.len(), 1);
    let frames: Vec<(u64, bool)> = back.tracks[0]
        .shapes
        .iter()
        .map(|s| (s.frame, s.outside))
        .collect();
    assert_eq!(frames, [(2, false), (3, true)]);
}

#[test]
fn track_ids_rebuild_tracks_with_outside_after_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let zip = ul_zip(
        dir.path(),
        YAML,
        &[
            (
                "train.txt",
                "images/train/a.jpg\nimages/train/b.jpg\nimages/train/c.jpg\nimages/train/d.jpg\n",
            ),
            ("labels/train/a.txt", "0 0.5 0.5 0.5 0.5 7\n"),
            ("labels/train/c.txt", "0 0.5 0.5 0.5 0.5 7\n"),
        ],
    );
    let labels = label_index();
    let none = Annotations::default();
    let frames = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, n)| frame(i as u64, i as u64, &format!("{n}.jpg"), 40, 30))
        .collect();
    let ds = dataset(&labels, &none, frames);
    let back = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap();
    let got: Vec<(u64, bool)> = back.tracks[0]
        .shapes
        .iter()
        .map(|s| (s.frame, s.outside))
        .collect();
    assert_eq!(got, [(0, false), (1, true), (2, false), (3, true)]);
}

#[test]
fn reimport_without_images_or_label_files_needs_only_the_task_frames() {
    // Spec §11.1 item 8, CVAT issue 9433: "Can't find image info" and `labels/` missing.
    let labels = label_index();
    let none = Annotations::default();
    let frames = vec![frame(0, 0, "a.jpg", 40, 30), frame(1, 1, "b.jpg", 40, 30)];
    let ds = dataset(&labels, &none, frames.clone());
    for f in [
        &Ultralytics::DETECTION,
        &Ultralytics::SEGMENTATION,
        &Ultralytics::ORIENTED_BOXES,
    ] {
        let (_dir, zip) = export_zip(f, &ds, None);
        assert!(import_zip(f, &zip, &ds).unwrap().is_empty());
    }
    let a = Annotations {
        shapes: vec![shape(Rectangle, 1, CAR, &[4.0, 3.0, 8.0, 9.0])],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, frames);
    let (_dir, zip) = export_zip(&Ultralytics::DETECTION, &ds, None);
    let back = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 1);
}

#[test]
fn segmentation_keeps_every_class() {
    // Spec §11.1 item 8, CVAT issue 8739: the segmentation export dropped classes.
    let labels = label_index();
    let p = [0.0, 0.0, 20.0, 0.0, 20.0, 15.0];
    let a = Annotations {
        shapes: vec![
            shape(Polygon, 0, CAR, &p),
            shape(Polygon, 0, PERSON, &p),
            shape(Polygon, 0, SIGN, &p),
            shape(Polygon, 0, UNUSED, &p),
        ],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let (_dir, zip) = export_zip(&Ultralytics::SEGMENTATION, &ds, None);
    let text = zip_text(&zip, "labels/train/a.txt");
    let classes: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(classes, ["0", "1", "3", "4"]);
    assert!(text.starts_with("0 0.000000 0.000000 0.500000 0.000000 0.500000 0.500000\n"));
    let back = import_zip(&Ultralytics::SEGMENTATION, &zip, &ds).unwrap();
    let got: Vec<i64> = back.shapes.iter().map(|s| s.label_id).collect();
    assert_eq!(got, [CAR, PERSON, SIGN, UNUSED]);
}

#[test]
fn round_trip_keeps_box_coordinates() {
    // Spec §11.1 item 3 (the same for every box format): coordinates come back unchanged.
    let labels = label_index();
    let mut turned = shape(Rectangle, 0, PERSON, &[5.0, 4.0, 25.0, 14.0]);
    turned.rotation = 30.0;
    let a = Annotations {
        shapes: vec![shape(Rectangle, 0, CAR, &[1.25, 2.5, 13.75, 14.0]), turned],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 40, 30)]);
    for f in [&Ultralytics::DETECTION, &Ultralytics::ORIENTED_BOXES] {
        let (_dir, zip) = export_zip(f, &ds, None);
        let back = import_zip(f, &zip, &ds).unwrap();
        for (s, want) in back.shapes.iter().zip(&a.shapes) {
            for (g, w) in s.points.iter().zip(&want.points) {
                assert!((g - w).abs() < 1e-4, "{:?} vs {:?}", s.points, want.points);
            }
            assert!((s.rotation - want.rotation).abs() < 1e-3, "{}", s.rotation);
        }
    }
}

#[test]
fn oriented_box_corners_and_back() {
    let c = corners(&[0.0, 0.0, 4.0, 2.0], 90.0);
    let want = [3.0, -1.0, 3.0, 3.0, 1.0, 3.0, 1.0, -1.0];
    for (g, w) in c.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{c:?}");
    }
    let (p, r) = rectangle_of(&c);
    assert!((r - 90.0).abs() < 1e-9);
    for (g, w) in p.iter().zip([0.0, 0.0, 4.0, 2.0]) {
        assert!((g - w).abs() < 1e-9, "{p:?}");
    }
    // Turned by 200°: the same box, its rotation below 180.
    let (_, r) = rectangle_of(&corners(&[0.0, 0.0, 4.0, 2.0], 200.0));
    assert!((r - 20.0).abs() < 1e-9, "{r}");
}

#[test]
fn pose_pads_smaller_skeletons_and_writes_visibility() {
    let mut labels = label_index().labels;
    labels.push(label(50, "hand2", "skeleton", None, vec![]));
    labels.push(label(51, "tip", "points", Some(50), vec![]));
    let labels = LabelIndex::from_labels(labels);
    let mut body = shape(Skeleton, 0, BODY, &[]);
    let mut head = shape(Points, 0, HEAD, &[4.0, 3.0]);
    head.occluded = true;
    let mut foot = shape(Points, 0, FOOT, &[8.0, 9.0]);
    foot.outside = true;
    body.elements = vec![head, shape(Points, 0, HAND, &[20.0, 15.0]), foot];
    let mut hand = shape(Skeleton, 0, 50, &[]);
    hand.elements = vec![shape(Points, 0, 51, &[10.0, 6.0])];
    let a = Annotations {
        shapes: vec![body, hand, shape(Rectangle, 0, CAR, &[0.0, 0.0, 1.0, 1.0])],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let (_dir, zip) = export_zip(&Ultralytics::POSE, &ds, None);
    assert_eq!(
        zip_text(&zip, "data.yaml"),
        "kpt_shape:\n- 3\n- 3\nnames:\n  0: body\n  1: hand2\npath: .\ntrain: train.txt\n"
    );
    assert_eq!(
        zip_text(&zip, "labels/train/a.txt"),
        "0 0.300000 0.300000 0.400000 0.400000 0.100000 0.100000 1 0.500000 0.500000 2 \
         0.200000 0.300000 0\n\
         1 0.250000 0.200000 0.000000 0.000000 0.250000 0.200000 2 0.0 0.0 0 0.0 0.0 0\n"
    );
    let back = import_zip(&Ultralytics::POSE, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 2);
    let e = &back.shapes[0].elements;
    assert_eq!(
        e.iter()
            .map(|e| (e.label_id, e.occluded, e.outside))
            .collect::<Vec<_>>(),
        [
            (HEAD, true, false),
            (HAND, false, false),
            (FOOT, false, true)
        ]
    );
    assert_eq!(back.shapes[1].elements.len(), 1);
}

#[test]
fn pose_with_two_values_per_point_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let zip = ul_zip(
        dir.path(),
        "kpt_shape: [3, 2]\nnames:\n  0: body\ntrain: images/train\n",
        &[
            ("images/train/a.jpg", ""),
            (
                "labels/train/a.txt",
                "0 0.5 0.5 0.2 0.2 0.1 0.2 0.3 0.4 0.5 0.6\n",
            ),
        ],
    );
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 10, 10)]);
    let back = import_zip(&Ultralytics::POSE, &zip, &ds).unwrap();
    let e = &back.shapes[0].elements;
    assert_eq!(e.len(), 3);
    assert!(e.iter().all(|e| !e.occluded && !e.outside));
    assert_eq!(e[2].points, [5.0, 6.0]);
    // The Detection importer does not take a pose dataset.
    assert!(matches!(
        import_zip(&Ultralytics::DETECTION, &zip, &ds),
        Err(FormatError::NotThisFormat { .. })
    ));
}

#[test]
fn subset_first_layout_and_names_list() {
    // `train/images/` + `train/labels/` (Roboflow's order), names as a list.
    let dir = tempfile::tempdir().unwrap();
    let zip = ul_zip(
        dir.path(),
        "names: [car, person]\ntrain: train/images\n",
        &[
            ("train/images/a.jpg", ""),
            ("train/labels/a.txt", "1 0.5 0.5 0.5 0.5\n"),
        ],
    );
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let back = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap();
    assert_eq!(back.shapes[0].label_id, PERSON);
    assert_eq!(back.shapes[0].points, [10.0, 7.5, 30.0, 22.5]);
}

#[test]
fn yaml_scalars_are_quoted_as_pyyaml_quotes_them() {
    // What PyYAML 6 writes for these names (checked with `yaml.dump`).
    let names = [
        "yes",
        "1",
        "1.5",
        "a: b",
        "#x",
        "plain name",
        "été",
        "null",
        "it's",
        "-x",
        "a #b",
        ".5",
        "2001-01-01",
        "0x1F",
        "1_000",
        "[a]",
        "",
        "~",
    ];
    assert_eq!(
        write_config(&names, "train", Some(3)),
        "kpt_shape:\n- 3\n- 3\nnames:\n  0: 'yes'\n  1: '1'\n  2: '1.5'\n  3: 'a: b'\n  4: '#x'\n  \
         5: plain name\n  6: \"\\xE9t\\xE9\"\n  7: 'null'\n  8: it's\n  9: -x\n  10: 'a #b'\n  \
         11: '.5'\n  12: '2001-01-01'\n  13: '0x1F'\n  14: '1_000'\n  15: '[a]'\n  16: ''\n  \
         17: '~'\npath: .\ntrain: train.txt\n"
    );
    let c = read_config("data.yaml", &write_config(&names, "train", None)).unwrap();
    let back: Vec<&str> = c.names.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(back, names);
    assert_eq!(
        c.subsets,
        [("train".to_owned(), Source::List("train.txt".into()))]
    );
}

#[test]
fn malformed_yaml_and_aliases_name_the_line() {
    let e = read_config("data.yaml", "names:\n  0: car\ntrain: [a\n").unwrap_err();
    assert!(e.to_string().starts_with("data.yaml, line"), "{e}");
    let e = read_config("data.yaml", "a: &x [1]\nnames: *x\n").unwrap_err();
    assert!(e.to_string().contains("aliases"), "{e}");
}

#[test]
fn classification_writes_an_image_per_tag_and_labels_json() {
    let labels = label_index();
    let a = Annotations {
        tags: vec![
            tag(0, CAR, vec![]),
            tag(0, SCENE, vec![]),
            tag(2, CAR, vec![]),
        ],
        ..Default::default()
    };
    let frames = vec![
        frame(0, 0, "a.jpg", 40, 30),
        frame(1, 1, "sub/b.png", 40, 30),
        frame(2, 2, "x/a.jpg", 40, 30),
    ];
    let ds = dataset(&labels, &a, frames);
    let (_dir, zip) = export_zip(&Classification, &ds, None);
    assert_eq!(names_of(&zip), ["train/labels.json"]);
    assert_eq!(
        zip_text(&zip, "train/labels.json"),
        "{\"a\":{\"labels\":[\"car\",\"scene\"],\"path\":\"scene/a.jpg\"},\
         \"sub/b\":{\"labels\":[],\"path\":\"no_label/b.png\"},\
         \"x/a\":{\"labels\":[\"car\"],\"path\":\"car/a.0.jpg\"}}"
    );
    let back = import_zip(&Classification, &zip, &ds).unwrap();
    let got: Vec<(u64, i64)> = back.tags.iter().map(|t| (t.frame, t.label_id)).collect();
    assert_eq!(got, [(0, CAR), (0, SCENE), (2, CAR)]);
}

/// The shared sample `rel` (below `testdata/datumaro`) as a zip in `dir`, without its images.
fn sample_zip(dir: &std::path::Path, rel: &str) -> std::path::PathBuf {
    let root = testkit::shared_testdata().join("datumaro").join(rel);
    let mut files = Vec::new();
    for e in walk(&root) {
        let name = e
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        files.push((name, std::fs::read(&e).unwrap()));
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    write_zip(dir, "sample.zip", &refs)
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            out.extend(walk(&e));
        } else {
            out.push(e);
        }
    }
    out
}

fn ten_labels() -> LabelIndex {
    LabelIndex::from_labels(
        (0..10)
            .map(|i| label(100 + i, &format!("label_{i}"), "any", None, vec![]))
            .collect(),
    )
}

#[test]
fn datumaro_detection_samples_import_two_boxes() {
    // The README of the shared data: 1 item (train), 2 bbox, 10 labels, for every layout.
    let labels = ten_labels();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "1.jpg", 15, 10)]);
    for name in [
        "yolov8_detection",
        "yolov8_detection_with_list_of_imgs",
        "yolov8_detection_with_list_of_names",
        "yolov8_detection_with_subset_txt",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let zip = sample_zip(
            dir.path(),
            &format!("ultralytics_yolo_detection_1.0/yolo_dataset/{name}"),
        );
        let back = import_zip(&Ultralytics::DETECTION, &zip, &ds).unwrap();
        let got: Vec<(i64, Vec<f64>)> = back
            .shapes
            .iter()
            .map(|s| {
                (
                    s.label_id,
                    s.points
                        .iter()
                        .map(|v| (v * 100.0).round() / 100.0)
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (102, vec![0.0, 2.0, 4.0, 4.0]),
                (104, vec![3.0, 3.0, 5.0, 6.0])
            ],
            "{name}"
        );
    }
}

#[test]
fn datumaro_segmentation_obb_and_classification_samples() {
    let labels = ten_labels();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "1.jpg", 10, 10)]);
    let dir = tempfile::tempdir().unwrap();
    let zip = sample_zip(
        dir.path(),
        "ultralytics_yolo_segmentation_1.0/yolo_dataset/yolov8_segmentation",
    );
    let back = import_zip(&Ultralytics::SEGMENTATION, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 2);
    assert!(back.shapes.iter().all(|s| s.kind == Polygon));
    let zip = sample_zip(
        dir.path(),
        "ultralytics_yolo_obb_1.0/yolo_dataset/yolov8_oriented_boxes",
    );
    let back = import_zip(&Ultralytics::ORIENTED_BOXES, &zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 2);
    assert!(
        back.shapes.iter().all(|s| s.rotation > 1.0),
        "{:?}",
        back.shapes
    );

    let labels = LabelIndex::from_labels(vec![
        label(1, "label_0", "tag", None, vec![]),
        label(2, "label_1", "tag", None, vec![]),
    ]);
    let frames = vec![
        frame(0, 0, "label_0/1.jpg", 10, 5),
        frame(1, 1, "label_0/2.jpg", 10, 5),
        frame(2, 2, "label_1/3.jpg", 10, 5),
    ];
    let ds = dataset(&labels, &none, frames);
    let root = testkit::shared_testdata()
        .join("datumaro/ultralytics_yolo_classification_1.0/yolo_dataset/yolov8_classification");
    let files: Vec<(String, Vec<u8>)> = walk(&root)
        .into_iter()
        .map(|e| {
            let n = e
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (n, std::fs::read(&e).unwrap())
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let zip = write_zip(dir.path(), "cls.zip", &refs);
    let mut got: Vec<(u64, i64)> = import_zip(&Classification, &zip, &ds)
        .unwrap()
        .tags
        .iter()
        .map(|t| (t.frame, t.label_id))
        .collect();
    got.sort();
    assert_eq!(got, [(0, 1), (1, 1), (2, 2)]);
}

#[test]
fn datumaro_pose_samples_import_one_skeleton() {
    let labels = LabelIndex::from_labels(vec![
        label(1, "skeleton_label", "skeleton", None, vec![]),
        label(2, "p0", "points", Some(1), vec![]),
        label(3, "p1", "points", Some(1), vec![]),
        label(4, "p2", "points", Some(1), vec![]),
    ]);
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "1.jpg", 10, 10)]);
    for name in ["yolov8_pose", "yolov8_pose_two_values_per_point"] {
        let dir = tempfile::tempdir().unwrap();
        let zip = sample_zip(
            dir.path(),
            &format!("ultralytics_yolo_pose_1.0/yolo_dataset/{name}"),
        );
        let back = import_zip(&Ultralytics::POSE, &zip, &ds).unwrap();
        assert_eq!(back.shapes.len(), 1, "{name}");
        let pts: Vec<Vec<f64>> = back.shapes[0]
            .elements
            .iter()
            .map(|e| {
                e.points
                    .iter()
                    .map(|v| (v * 100.0).round() / 100.0)
                    .collect()
            })
            .collect();
        assert_eq!(
            pts,
            [vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]],
            "{name}"
        );
    }
}

#[test]
fn export_trait_objects_are_the_catalogues() {
    let f: &dyn Exporter = crate::formats::catalogue::exporter("Ultralytics YOLO Pose 1.0")
        .unwrap()
        .side;
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let (_dir, zip) = export_zip(f, &ds, None);
    assert!(zip_text(&zip, "data.yaml").starts_with("kpt_shape:\n- 3\n- 3\n"));
}
