//! COCO unit tests: the file layout, instances (groups, crowds, masks, area), keypoints, the
//! import's variants and errors, and a regression test per pitfall of spec §11.1 touching COCO.

use serde_json::{json, Value};

use super::conformance::coco_json;
use super::Coco;
use crate::annotations::ShapeType::*;
use crate::annotations::{Annotations, LabelIndex, ShapeType};
use crate::formats::testkit::*;
use crate::formats::{FormatError, ImportInput, Importer, TaskDataset};

fn anns(shapes: Vec<crate::annotations::Shape>) -> Annotations {
    Annotations {
        shapes,
        ..Annotations::default()
    }
}

fn labels() -> LabelIndex {
    label_index()
}

fn one_frame(w: u32, h: u32) -> Vec<crate::formats::DatasetFrame> {
    vec![frame(0, 0, "img_00.jpg", w, h)]
}

fn export_json(coco: Coco, ds: &TaskDataset<'_>) -> Value {
    let (_dir, zip) = export_zip(&coco, ds, None);
    let file = match coco.kind {
        super::Kind::Instances => "annotations/instances_default.json",
        super::Kind::Keypoints => "annotations/person_keypoints_default.json",
    };
    zip_json(&zip, file)
}

fn import_bytes(
    coco: Coco,
    name: &str,
    bytes: &[u8],
    ds: &TaskDataset<'_>,
) -> Result<Annotations, FormatError> {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), name, bytes);
    coco.import(&ImportInput::open(&p).unwrap(), ds)
}

/// Exports `ds` and imports the zip back into it.
fn round_trip(coco: Coco, ds: &TaskDataset<'_>) -> Annotations {
    let (_dir, zip) = export_zip(&coco, ds, None);
    coco.import(&ImportInput::open(&zip).unwrap(), ds).unwrap()
}

fn kinds(a: &Annotations) -> Vec<ShapeType> {
    a.shapes.iter().map(|s| s.kind).collect()
}

#[test]
fn the_file_is_written_as_datumaro_writes_it() {
    let l = labels();
    let a = anns(vec![shape(
        Rectangle,
        0,
        label::SIGN,
        &[1.0, 2.0, 4.5, 6.0],
    )]);
    let ds = dataset(&l, &a, one_frame(40, 30));
    let (_dir, zip) = export_zip(&Coco::INSTANCES, &ds, None);
    let text = zip_text(&zip, "annotations/instances_default.json");
    assert!(text.starts_with(
        r#"{"licenses":[{"name":"","id":0,"url":""}],"info":{"contributor":"","date_created":"","description":"","url":"","version":"","year":""},"categories":[{"id":1,"name":"car","supercategory":""},"#
    ), "{text}");
    assert!(text.contains(
        r#""images":[{"id":1,"width":40,"height":30,"file_name":"img_00.jpg","license":0,"flickr_url":"","coco_url":"","date_captured":0}]"#
    ), "{text}");
    assert!(text.ends_with(
        r#""annotations":[{"id":1,"image_id":1,"category_id":8,"segmentation":[],"area":14.0,"bbox":[1.0,2.0,3.5,4.0],"iscrowd":0,"attributes":{"occluded":false,"rotation":0.0}}]}"#
    ), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Every label, sub-labels (supercategory = the skeleton) and tag-only ones too.
    assert_eq!(
        names,
        ["car", "person", "body", "head", "hand", "foot", "scene", "sign", "unused"]
    );
    assert_eq!(v["categories"][3]["supercategory"], "body");
}

#[test]
fn categories_keep_label_order() {
    // §11.1 item 12: not renumbered alphabetically.
    let mut ls = labels().labels;
    ls.reverse();
    let l = LabelIndex::from_labels(ls);
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(40, 30));
    let v = export_json(Coco::INSTANCES, &ds);
    assert_eq!(v["categories"][0]["name"], "car");
    assert_eq!(v["categories"][0]["id"], 1);
    assert_eq!(v["categories"][8]["name"], "unused");
}

#[test]
fn grouped_shapes_are_one_instance_led_by_the_largest() {
    let l = labels();
    let mut b = shape(Rectangle, 0, label::CAR, &[0.0, 0.0, 4.0, 4.0]);
    b.group = 3;
    let mut p = shape(
        Polygon,
        0,
        label::PERSON,
        &[10.0, 10.0, 20.0, 10.0, 20.0, 20.0],
    );
    p.group = 3;
    let a = anns(vec![
        b,
        p,
        shape(Polygon, 0, label::SIGN, &[1.0, 1.0, 3.0, 1.0, 3.0, 3.0]),
    ]);
    let ds = dataset(&l, &a, one_frame(40, 30));
    let v = export_json(Coco::INSTANCES, &ds);
    let anns = v["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 2, "{anns:?}");
    // Group 0 first, then the groups.
    assert_eq!(anns[0]["category_id"], 8);
    assert_eq!(
        anns[1]["category_id"], 2,
        "the polygon (area 50) leads the box (16)"
    );
    assert_eq!(
        anns[1]["segmentation"],
        json!([[10.0, 10.0, 20.0, 10.0, 20.0, 20.0]])
    );
    assert_eq!(anns[1]["bbox"], json!([0.0, 0.0, 20.0, 20.0]));
    assert_eq!(anns[1]["iscrowd"], 0);
    assert_eq!(anns[1]["id"], 2);
}

#[test]
fn polygon_area_is_pycocotools() {
    // The coco_instances sample: [0,0,1,0,1,2,0,2] on a 5x10 image has area 2.0.
    let l = labels();
    let a = anns(vec![shape(
        Polygon,
        0,
        label::CAR,
        &[0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0],
    )]);
    let ds = dataset(&l, &a, vec![frame(0, 0, "b.jpg", 5, 10)]);
    let v = export_json(Coco::INSTANCES, &ds);
    assert_eq!(v["annotations"][0]["area"], 2.0);
    assert_eq!(v["annotations"][0]["bbox"], json!([0.0, 0.0, 1.0, 2.0]));
}

#[test]
fn masks_are_rle_crowds_and_come_back() {
    let l = labels();
    let a = anns(vec![shape(Mask, 0, label::SIGN, &mask(2, 3, 5, 4))]);
    let ds = dataset(&l, &a, one_frame(40, 30));
    let v = export_json(Coco::INSTANCES, &ds);
    let ann = &v["annotations"][0];
    assert_eq!(ann["iscrowd"], 1);
    assert_eq!(ann["segmentation"]["size"], json!([30, 40]));
    let counts: Vec<u64> = ann["segmentation"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 1200);
    let m = mask(2, 3, 5, 4);
    let ones: f64 = m[..m.len() - 4].iter().skip(1).step_by(2).sum();
    assert_eq!(ann["area"], ones);
    assert_eq!(ann["bbox"], json!([2.0, 3.0, 5.0, 4.0]));
    let back = round_trip(Coco::INSTANCES, &ds);
    assert_eq!(back.shapes.len(), 1);
    assert_eq!(back.shapes[0].kind, Mask);
    assert_eq!(back.shapes[0].points, a.shapes[0].points);
}

#[test]
fn is_crowd_checkbox_or_number_makes_a_group_one_mask() {
    use crate::formats::testkit::{av, spec};
    for (input, value) in [("checkbox", "true"), ("number", "1")] {
        let values: &[&str] = if input == "number" {
            &["0", "1", "1"]
        } else {
            &["false"]
        };
        let crowd = label(
            1,
            "crowd",
            "any",
            None,
            vec![(1, spec("is_crowd", input, values, "0", false))],
        );
        let l = LabelIndex::from_labels(vec![crowd]);
        let mut p = shape(Polygon, 0, 1, &[1.0, 1.0, 9.0, 1.0, 9.0, 9.0, 1.0, 9.0]);
        p.attributes = vec![av(1, value)];
        p.group = 1;
        let mut q = shape(Polygon, 0, 1, &[20.0, 20.0, 22.0, 20.0, 22.0, 22.0]);
        q.group = 1;
        let a = anns(vec![p, q]);
        let ds = dataset(&l, &a, one_frame(40, 30));
        let v = export_json(Coco::INSTANCES, &ds);
        let anns = v["annotations"].as_array().unwrap();
        assert_eq!(anns.len(), 1, "{input}");
        assert_eq!(anns[0]["iscrowd"], 1, "{input}");
        assert!(anns[0]["segmentation"]["counts"].is_array(), "{input}");
        assert!(anns[0]
            .get("attributes")
            .is_none_or(|a| a.get("is_crowd").is_none()));
    }
}

#[test]
fn ellipses_are_masks_and_rotated_boxes_keep_their_rotation() {
    let l = labels();
    let mut a = anns(vec![shape(
        Ellipse,
        0,
        label::SIGN,
        &[20.0, 15.0, 26.0, 11.0],
    )]);
    let mut r = shape(Rectangle, 0, label::SIGN, &[2.0, 2.0, 10.0, 6.0]);
    r.rotation = 30.0;
    a.shapes.push(r);
    let ds = dataset(&l, &a, one_frame(40, 30));
    let v = export_json(Coco::INSTANCES, &ds);
    let anns = v["annotations"].as_array().unwrap();
    assert_eq!(anns[0]["iscrowd"], 1);
    assert!(anns[0]["area"].as_f64().unwrap() > 50.0);
    assert_eq!(anns[1]["attributes"]["rotation"], 30.0);
    let back = round_trip(Coco::INSTANCES, &ds);
    assert_eq!(kinds(&back), [Mask, Rectangle]);
    assert_eq!(back.shapes[1].rotation, 30.0);
}

#[test]
fn round_trip_keeps_box_coordinates() {
    // §11.1 item 3 (CVAT issue 10885).
    let l = labels();
    let a = anns(vec![shape(
        Rectangle,
        0,
        label::SIGN,
        &[1.25, 2.75, 13.5, 14.33],
    )]);
    let ds = dataset(&l, &a, one_frame(40, 30));
    let back = round_trip(Coco::INSTANCES, &ds);
    let p = &back.shapes[0].points;
    for (x, y) in p.iter().zip([1.25, 2.75, 13.5, 14.33]) {
        assert!((x - y).abs() < 1e-9, "{p:?}");
    }
}

#[test]
fn reimporting_the_own_export_works() {
    // §11.1 item 4 (`KeyError: 'coco_instances'`, CVAT issues 2845, 2111).
    let task = TaskBuilder::images(10).everything().build();
    let ds = task.dataset();
    for coco in [Coco::INSTANCES, Coco::KEYPOINTS] {
        let (_dir, zip) = export_zip(&coco, &ds, None);
        let back = coco.import(&ImportInput::open(&zip).unwrap(), &ds).unwrap();
        assert!(!back.is_empty(), "{:?}", coco.kind);
    }
}

#[test]
fn licenses_info_and_iscrowd_are_optional() {
    // §11.1 item 1 ("Cannot find the licenses section", CVAT issue 9406).
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(40, 30));
    let json = br#"{"categories":[{"id":1,"name":"car"}],
        "images":[{"id":1,"file_name":"img_00.jpg"}],
        "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4]}]}"#;
    let back = import_bytes(Coco::INSTANCES, "a.json", json, &ds).unwrap();
    assert_eq!(kinds(&back), [Rectangle]);
    assert_eq!(back.shapes[0].points, [1.0, 2.0, 4.0, 6.0]);
}

#[test]
fn a_flat_segmentation_list_is_one_polygon() {
    // §11.1 item 2 ("object of type 'float' has no len()", CVAT issue 6392).
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(40, 30));
    let json = coco_json(
        (40, 30),
        "",
        r#"{"id":1,"image_id":1,"category_id":1,"segmentation":[1,1,5,1,5,5],"bbox":[1,1,4,4],"iscrowd":0}"#,
    );
    let back = import_bytes(Coco::INSTANCES, "a.json", &json, &ds).unwrap();
    assert_eq!(
        kinds(&back),
        [Polygon],
        "no box: the segmentation is not empty"
    );
    assert_eq!(back.shapes[0].points, [1.0, 1.0, 5.0, 1.0, 5.0, 5.0]);
}

#[test]
fn layout_detection_reports_the_reason_and_accepts_nested_roots() {
    // §11.1 item 5 (CVAT issue 5977).
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(40, 30));
    let dir = tempfile::tempdir().unwrap();
    let bad = write_zip(
        dir.path(),
        "bad.zip",
        &[("annotations/default.json", b"{}")],
    );
    match Coco::INSTANCES.import(&ImportInput::open(&bad).unwrap(), &ds) {
        Err(FormatError::NotThisFormat { reason, .. }) => {
            assert!(reason.contains("annotations/instances_"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let body = coco_json(
        (40, 30),
        "",
        r#"{"id":1,"image_id":1,"category_id":1,"segmentation":[],"bbox":[1,1,4,4],"iscrowd":0}"#,
    );
    let captions = br#"{"images":[{"id":1,"file_name":"img_00.jpg"}],"annotations":[{"id":1,"image_id":1,"caption":"x"}]}"#;
    let nested = write_zip(
        dir.path(),
        "nested.zip",
        &[
            ("my dataset/annotations/instances_train.json", &body),
            ("my dataset/annotations/captions_train.json", captions),
            ("my dataset/annotations/panoptic_train.json", b"not json"),
            ("my dataset/images/train/img_00.jpg", b"jpeg"),
        ],
    );
    let back = Coco::INSTANCES
        .import(&ImportInput::open(&nested).unwrap(), &ds)
        .unwrap();
    assert_eq!(kinds(&back), [Rectangle]);
}

#[test]
fn compressed_rle_and_counts_lists_are_read() {
    use crate::formats::kit::mask::coco_counts_to_string;
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(4, 3));
    let counts = [4u64, 2, 6];
    for seg in [
        json!({"counts": counts, "size": [3, 4]}),
        json!({"counts": coco_counts_to_string(&counts), "size": [3, 4]}),
    ] {
        let ann = json!({"id": 1, "image_id": 1, "category_id": 1, "segmentation": seg,
                         "bbox": [1, 1, 1, 2], "iscrowd": 1});
        let json = coco_json((4, 3), "", &ann.to_string());
        let back = import_bytes(Coco::INSTANCES, "a.json", &json, &ds).unwrap();
        assert_eq!(kinds(&back), [Mask]);
        // Column 1, rows 1-2: the box (1, 1)-(1, 2), one pixel wide.
        assert_eq!(back.shapes[0].points, [0.0, 2.0, 1.0, 1.0, 1.0, 2.0]);
    }
}

#[test]
fn import_errors_name_the_file_and_the_annotation() {
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(40, 30));
    let json = coco_json(
        (40, 30),
        "",
        r#"{"id":1,"image_id":1,"category_id":1,"segmentation":[],"bbox":[1,1,4,4],"iscrowd":0},
           {"id":9,"image_id":1,"category_id":1,"segmentation":[[1,2,3]],"bbox":[1,1,4,4],"iscrowd":0}"#,
    );
    match import_bytes(Coco::INSTANCES, "bad.json", &json, &ds) {
        Err(FormatError::Invalid { file, location, .. }) => {
            assert_eq!(file, "bad.json");
            assert_eq!(location, "annotations[1] (id 9)");
        }
        other => panic!("{other:?}"),
    }
    // A label the task does not have: named.
    let json =
        br#"{"categories":[{"id":1,"name":"truck"}],"images":[{"id":1,"file_name":"img_00.jpg"}],
        "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4]}]}"#;
    let e = import_bytes(Coco::INSTANCES, "t.json", json, &ds).unwrap_err();
    assert!(e.to_string().contains("truck"), "{e}");
}

#[test]
fn tracks_come_back_from_track_id() {
    let task = TaskBuilder::images(8).tracks().build();
    let ds = task.dataset();
    let v = export_json(Coco::INSTANCES, &ds);
    let with_track: Vec<&Value> = v["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["attributes"].get("track_id").is_some())
        .collect();
    assert_eq!(with_track.len(), 3, "the car track on frames 0, 1, 2");
    let back = round_trip(Coco::INSTANCES, &ds);
    assert_eq!(back.tracks.len(), 1);
    assert!(back.tracks[0].shapes.last().unwrap().outside);
}

#[test]
fn frame_step_tasks_name_their_frames_by_absolute_number() {
    // §11.1 item 10: rel ↔ abs with start + rel * step.
    let task = TaskBuilder::video(4).frame_step(10, 3).shapes().build();
    let ds = task.dataset();
    let v = export_json(Coco::INSTANCES, &ds);
    let names: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "frame_000010.PNG",
            "frame_000013.PNG",
            "frame_000016.PNG",
            "frame_000019.PNG"
        ]
    );
    let back = round_trip(Coco::INSTANCES, &ds);
    let mut frames: Vec<u64> = back.shapes.iter().map(|s| s.frame).collect();
    frames.sort();
    frames.dedup();
    assert_eq!(frames, [0, 1, 2]);
}

#[test]
fn keypoints_carry_visibility_and_the_skeleton_layout() {
    let task = TaskBuilder::images(3).shapes().build();
    let ds = task.dataset();
    let v = export_json(Coco::KEYPOINTS, &ds);
    let cats: Vec<&str> = v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cats, ["car", "person", "body", "scene", "sign", "unused"]);
    let body = &v["categories"][2];
    assert_eq!(body["id"], 3);
    assert_eq!(body["keypoints"], json!(["head", "hand", "foot"]));
    let anns = v["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 1, "one skeleton: {anns:?}");
    // head occluded (1), hand visible (2), foot outside (0).
    assert_eq!(
        anns[0]["keypoints"],
        json!([2.0, 2.0, 1, 1.0, 1.0, 2, 3.0, 3.0, 0])
    );
    assert_eq!(anns[0]["num_keypoints"], 2);
    assert_eq!(anns[0]["bbox"], json!([1.0, 1.0, 1.0, 1.0]));
    assert_eq!(anns[0]["segmentation"], json!([]));
    let back = round_trip(Coco::KEYPOINTS, &ds);
    assert_eq!(kinds(&back), [Skeleton]);
    let els = &back.shapes[0].elements;
    assert_eq!(els.len(), 3);
    assert!(els.iter().any(|e| e.occluded && e.points == [2.0, 2.0]));
    assert!(els.iter().any(|e| e.outside && e.points == [3.0, 3.0]));
}

#[test]
fn keypoints_import_drops_boxes() {
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, one_frame(40, 30));
    let json = br#"{"categories":[{"id":1,"name":"body","keypoints":["head","hand","foot"],"skeleton":[[1,2]]}],
        "images":[{"id":1,"file_name":"img_00.jpg","width":40,"height":30}],
        "annotations":[{"id":1,"image_id":1,"category_id":1,"segmentation":[],"bbox":[1,1,4,4],"iscrowd":0,
                        "keypoints":[1,1,2,2,2,1,3,3,0],"num_keypoints":2}]}"#;
    let back = import_bytes(Coco::KEYPOINTS, "k.json", json, &ds).unwrap();
    assert_eq!(kinds(&back), [Skeleton]);
}

#[test]
fn the_shared_samples_import() {
    let root = shared_testdata().join("datumaro");
    let inst = root.join("coco_1.0/coco_dataset/coco_instances/annotations");
    let l = LabelIndex::from_labels(vec![
        label(1, "a", "any", None, vec![]),
        label(2, "b", "any", None, vec![]),
        label(3, "c", "any", None, vec![]),
    ]);
    let a = Annotations::default();
    let ds = dataset(
        &l,
        &a,
        vec![frame(0, 0, "a.jpg", 10, 5), frame(1, 1, "b.jpg", 5, 10)],
    );
    let mut got = Vec::new();
    for f in ["instances_train.json", "instances_val.json"] {
        let input = ImportInput::open(&inst.join(f)).unwrap();
        got.extend(kinds(&Coco::INSTANCES.import(&input, &ds).unwrap()));
    }
    got.sort_by_key(|k| k.as_str());
    assert_eq!(got, [Mask, Polygon, Rectangle]);
    // Other COCO task files are not instances files and are not read as such.
    let captions = root.join("coco_1.0/coco_dataset/coco_captions/annotations/captions_train.json");
    let e = Coco::INSTANCES
        .import(&ImportInput::open(&captions).unwrap(), &ds)
        .unwrap_err();
    assert!(matches!(e, FormatError::Invalid { .. }), "{e}");
}
