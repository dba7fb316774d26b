//! YOLO 1.1: exact files, frame-step naming, class ids (spec §11.1 items 6, 7, 10) and the
//! shared Datumaro sample.

use super::*;
use crate::annotations::{Annotations, LabelIndex, ShapeType::*};
use crate::formats::testkit::{
    self, dataset, export_zip, frame, keyframe, label, label::*, label_index, shape, track,
    write_zip, zip_entries, zip_text, TaskBuilder,
};
use crate::formats::{FormatError, ImportInput, Importer as _, TaskDataset};

fn import_zip(path: &std::path::Path, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
    Yolo.import(&ImportInput::open(path).unwrap(), ds)
}

/// A YOLO zip in `dir`: `obj.names`, and per `(id, lines)` an image `<id>.jpg` in `train.txt`
/// with its `obj_train_data/<id>.txt`.
fn small_zip(dir: &std::path::Path, names: &str, items: &[(&str, &str)]) -> std::path::PathBuf {
    let list: String = items
        .iter()
        .map(|(id, _)| format!("data/obj_train_data/{id}.jpg\n"))
        .collect();
    let txts: Vec<(String, &str)> = items
        .iter()
        .map(|(id, lines)| (format!("obj_train_data/{id}.txt"), *lines))
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        (
            "obj.data",
            b"train = data/train.txt\nnames = data/obj.names\n",
        ),
        ("obj.names", names.as_bytes()),
        ("train.txt", list.as_bytes()),
    ];
    files.extend(txts.iter().map(|(n, l)| (n.as_str(), l.as_bytes())));
    write_zip(dir, "yolo.zip", &files)
}

/// Each `(entry, text)` of the zip at `zip` has that text.
fn assert_texts(zip: &std::path::Path, want: &[(&str, &str)]) {
    for (name, text) in want {
        assert_eq!(zip_text(zip, name), *text, "{name}");
    }
}

#[test]
fn exact_files_of_a_small_task() {
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
    let (_dir, zip) = export_zip(&Yolo, &ds, None);
    let mut names: Vec<String> = zip_entries(&zip).into_iter().map(|e| e.0).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "obj.data",
            "obj.names",
            "obj_train_data/img_00.txt",
            "obj_train_data/img_02.txt",
            "obj_train_data/sub/img_01.txt",
            "train.txt"
        ]
    );
    assert_eq!(
        zip_text(&zip, "obj.names"),
        "car\nperson\nbody\nsign\nunused\n"
    );
    assert_eq!(
        zip_text(&zip, "obj.data"),
        "classes = 5\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n"
    );
    assert_eq!(
        zip_text(&zip, "train.txt"),
        "data/obj_train_data/img_00.jpg\ndata/obj_train_data/sub/img_01.png\n\
         data/obj_train_data/img_02.jpg\n"
    );
    // Datumaro's "%.6f"; the rotated box and the polygon are not written.
    assert_texts(
        &zip,
        &[
            (
                "obj_train_data/img_00.txt",
                "0 0.181250 0.270833 0.312500 0.408333\n",
            ),
            (
                "obj_train_data/sub/img_01.txt",
                "3 0.015625 0.020833 0.031250 0.041667\n",
            ),
            ("obj_train_data/img_02.txt", ""),
        ],
    );
}

#[test]
fn skeleton_sublabels_and_tag_labels_are_not_classes() {
    // CVAT issue 8090: class ids counted sub-labels and pointed past obj.names.
    let labels = label_index();
    let a = Annotations {
        shapes: vec![shape(Rectangle, 0, UNUSED, &[0.0, 0.0, 4.0, 3.0])],
        ..Default::default()
    };
    let ds = dataset(&labels, &a, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let (_dir, zip) = export_zip(&Yolo, &ds, None);
    let names = zip_text(&zip, "obj.names");
    assert!(
        !names.contains("head") && !names.contains("scene"),
        "{names}"
    );
    let id: usize = zip_text(&zip, "obj_train_data/a.txt")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(names.lines().nth(id), Some("unused"));
    assert_eq!(names.lines().count(), 5);
}

#[test]
fn frame_step_video_task_names_files_by_absolute_frame() {
    // CVAT issue 1294: frame-step tasks exported files of the wrong frames.
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
    let (_dir, zip) = export_zip(&Yolo, &ds, None);
    assert_eq!(
        zip_text(&zip, "train.txt"),
        "data/obj_train_data/frame_000010.PNG\ndata/obj_train_data/frame_000013.PNG\n\
         data/obj_train_data/frame_000016.PNG\ndata/obj_train_data/frame_000019.PNG\n"
    );
    assert_texts(
        &zip,
        &[
            (
                "obj_train_data/frame_000013.txt",
                "0 0.150000 0.200000 0.100000 0.200000\n",
            ),
            (
                "obj_train_data/frame_000016.txt",
                "3 0.050000 0.050000 0.100000 0.100000\n",
            ),
            ("obj_train_data/frame_000019.txt", ""),
        ],
    );
    let back = import_zip(&zip, &ds).unwrap();
    let mut got: Vec<(u64, i64)> = back.shapes.iter().map(|s| (s.frame, s.label_id)).collect();
    got.sort();
    assert_eq!(got, [(1, CAR), (2, SIGN)]);
    assert!(back.tracks.is_empty());
}

#[test]
fn class_id_outside_obj_names_names_file_and_line() {
    // CVAT issue 7008, Datumaro issue 74.
    let dir = tempfile::tempdir().unwrap();
    let zip = small_zip(
        dir.path(),
        "car\nperson\n",
        &[("a", "1 0.5 0.5 0.1 0.1\n\n2 0.5 0.5 0.1 0.1\n")],
    );
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let e = import_zip(&zip, &ds).unwrap_err().to_string();
    assert!(
        e.starts_with("obj_train_data/a.txt, line 3: class id 2 is not in obj.names"),
        "{e}"
    );
}

#[test]
fn missing_obj_names_and_foreign_zip() {
    let dir = tempfile::tempdir().unwrap();
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let zip = write_zip(
        dir.path(),
        "no-names.zip",
        &[(
            "obj.data",
            b"train = data/train.txt\nnames = data/obj.names\n",
        )],
    );
    match import_zip(&zip, &ds) {
        Err(FormatError::Invalid { file, .. }) => assert_eq!(file, "obj.names"),
        other => panic!("{other:?}"),
    }
    let zip = write_zip(
        dir.path(),
        "other.zip",
        &[("a.txt", b"0 0.5 0.5 0.1 0.1\n")],
    );
    assert!(matches!(
        import_zip(&zip, &ds),
        Err(FormatError::NotThisFormat { .. })
    ));
}

#[test]
fn datumaro_sample_imports_two_boxes() {
    // The README of the shared data: 1 item (train), 2 bbox, 10 labels.
    let root = testkit::shared_testdata().join("datumaro/yolo_1.1/yolo_dataset/yolo");
    let files: Vec<(String, Vec<u8>)> = [
        "obj.data",
        "obj.names",
        "train.txt",
        "obj_train_data/1.txt",
        "obj_train_data/1.jpg",
    ]
    .iter()
    .map(|n| (n.to_string(), std::fs::read(root.join(n)).unwrap()))
    .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let dir = tempfile::tempdir().unwrap();
    let zip = write_zip(dir.path(), "yolo.zip", &refs);
    let labels = LabelIndex::from_labels(
        (0..10)
            .map(|i| label(100 + i, &format!("label_{i}"), "rectangle", None, vec![]))
            .collect(),
    );
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "1.jpg", 15, 10)]);
    let back = import_zip(&zip, &ds).unwrap();
    assert_eq!(back.shapes.len(), 2);
    let want = [(102, [0.0, 2.0, 4.0, 4.0]), (104, [3.0, 3.0, 5.0, 6.0])];
    for (s, (label_id, points)) in back.shapes.iter().zip(want) {
        assert_eq!((s.kind, s.frame, s.label_id), (Rectangle, 0, label_id));
        for (g, w) in s.points.iter().zip(points) {
            assert!((g - w).abs() < 1e-4, "{:?} vs {points:?}", s.points);
        }
    }
}

#[test]
fn an_item_without_a_task_frame_names_the_list_line() {
    let dir = tempfile::tempdir().unwrap();
    let zip = small_zip(
        dir.path(),
        "car\n",
        &[("a", "0 0.5 0.5 0.1 0.1\n"), ("zz", "")],
    );
    let labels = label_index();
    let none = Annotations::default();
    let ds = dataset(&labels, &none, vec![frame(0, 0, "a.jpg", 40, 30)]);
    let e = import_zip(&zip, &ds).unwrap_err().to_string();
    assert!(
        e.starts_with("train.txt, line 2: could not match item id 'zz'"),
        "{e}"
    );
}

#[test]
fn frames_of_one_item_id_are_one_item() {
    // Datumaro keeps one item per id: `a.jpg` and `a.png` are item `a`, the last frame wins.
    let labels = label_index();
    let a = Annotations {
        shapes: vec![
            shape(Rectangle, 0, CAR, &[0.0, 0.0, 4.0, 3.0]),
            shape(Rectangle, 1, SIGN, &[0.0, 0.0, 4.0, 3.0]),
        ],
        ..Default::default()
    };
    let frames = vec![frame(0, 0, "a.jpg", 40, 30), frame(1, 1, "a.png", 40, 30)];
    let ds = dataset(&labels, &a, frames);
    let (_dir, zip) = export_zip(&Yolo, &ds, None);
    assert_texts(
        &zip,
        &[
            ("train.txt", "data/obj_train_data/a.png\n"),
            (
                "obj_train_data/a.txt",
                "3 0.050000 0.050000 0.100000 0.100000\n",
            ),
        ],
    );
}
