use std::path::{Path, PathBuf};

use super::export::*;
use super::import::*;
use super::xml::*;
use super::*;
use crate::annotations::{
    Annotations, AttrSpec, AttributeVal, LabelIndex, LabelInfo, Shape, ShapeType, Track,
};
use crate::formats::kit::paths::*;
use crate::formats::testkit::{
    self, attr, av, export_zip, fixture_spec, frame, keyframe, label, normalised, shape, spec, tag,
    with_source, write_file, write_zip, zip_bomb, zip_entry, zip_text, TestImages,
};
use crate::formats::{DatasetFrame, FormatError, ImportInput, TaskDataset};
use quick_xml::events::Event;
use quick_xml::Reader;

/// The person skeleton's SVG: head and hand by `data-label-id` (the export names them).
const PERSON_SVG: &str = r#"<line data-type="edge" data-node-from="1" data-node-to="2"></line><circle data-label-id="4" data-node-id="1"></circle><circle data-label-id="5" data-node-id="2"></circle>"#;

/// The labels of the expected XML below (names, colors, types and SVG are written): car with
/// the fixture's color, speed, parked and note (ids 10–13), sign, a person skeleton of head
/// (`visible`, 14) and hand, a tag label scene (`weather`, 15).
fn labels() -> LabelIndex {
    let colored = |color: &str, l: LabelInfo| LabelInfo {
        color: color.into(),
        ..l
    };
    let car = [attr::COLOR, attr::SPEED, attr::PARKED, attr::NOTE].map(|id| (id, fixture_spec(id)));
    LabelIndex::from_labels(vec![
        colored("#ff0000", label(1, "car", "any", None, car.to_vec())),
        colored("#00ff00", label(2, "sign", "rectangle", None, vec![])),
        LabelInfo {
            svg: PERSON_SVG.into(),
            ..colored("#0000ff", label(3, "person", "skeleton", None, vec![]))
        },
        colored(
            "#111111",
            label(
                4,
                "head",
                "points",
                Some(3),
                vec![(14, fixture_spec(attr::VISIBLE))],
            ),
        ),
        colored("#222222", label(5, "hand", "points", Some(3), vec![])),
        colored(
            "#333333",
            label(
                6,
                "scene",
                "tag",
                None,
                vec![(15, fixture_spec(attr::WEATHER))],
            ),
        ),
    ])
}

/// The image task (`a.jpg` 10×8, `sub/b.png` 20×16, `c.jpg` 10×8) or the video task (4 frames
/// from source frame 10, step 3, 25×20) of these tests, as one job (11).
fn dataset<'a>(labels: &'a LabelIndex, a: &'a Annotations, video: bool) -> TaskDataset<'a> {
    let frames: Vec<DatasetFrame> = if video {
        (0..4)
            .map(|r| {
                frame(
                    r,
                    10 + 3 * r,
                    &format!("frame_{:06}.PNG", 10 + 3 * r),
                    25,
                    20,
                )
            })
            .collect()
    } else {
        vec![
            frame(0, 0, "a.jpg", 10, 8),
            frame(1, 1, "sub/b.png", 20, 16),
            frame(2, 2, "c.jpg", 10, 8),
        ]
    };
    let last = frames.len() as u64 - 1;
    TaskDataset {
        mode: if video { "interpolation" } else { "annotation" }.into(),
        original_size: video.then_some((25, 20)),
        segments: vec![(11, 0, last)],
        ..testkit::dataset(labels, a, frames)
    }
}

fn skeleton(frame: u64) -> Shape {
    let mut head = shape(ShapeType::Points, frame, 4, &[1.0, 2.0]);
    head.attributes = vec![av(14, "false")];
    let mut hand = shape(ShapeType::Points, frame, 5, &[3.0, 4.0]);
    hand.outside = true;
    let mut s = shape(ShapeType::Skeleton, frame, 3, &[]);
    s.elements = vec![head, hand];
    s
}

fn car_box(frame: u64) -> Shape {
    let mut s = shape(ShapeType::Rectangle, frame, 1, &[1.0, 2.0, 3.5, 4.25]);
    s.rotation = 15.5;
    s.z_order = 1;
    s.group = 1;
    s.attributes = vec![
        av(10, "blue"),
        av(11, "42"),
        av(12, "true"),
        av(13, "a \"quoted\" <note> & more"),
    ];
    s
}

/// Plain shapes of every type and a tag, on frames 0 and 1 (frame 2 empty).
fn image_annotations() -> Annotations {
    let mut polygon = shape(ShapeType::Polygon, 0, 1, &[0.0, 0.0, 5.0, 0.0, 5.0, 5.0]);
    polygon.occluded = true;
    let mut sign = shape(ShapeType::Rectangle, 0, 2, &[0.0, 0.0, 1.0, 1.0]);
    sign.z_order = -1;
    sign.source = "auto".into();
    let cuboid: Vec<f64> = (0..16).map(|i| i as f64 + 0.5).collect();
    Annotations {
        version: 0,
        tags: vec![tag(0, 6, vec![av(15, "rainy")])],
        shapes: vec![
            car_box(0),
            polygon,
            shape(ShapeType::Polyline, 1, 1, &[1.0, 1.0, 2.0, 2.0]),
            shape(ShapeType::Points, 1, 1, &[3.0, 3.0]),
            shape(ShapeType::Ellipse, 1, 1, &[5.5, 4.0, 8.25, 2.5]),
            shape(ShapeType::Cuboid, 1, 1, &cuboid),
            shape(ShapeType::Mask, 0, 1, &[2.0, 3.0, 1.0, 1.0, 2.0, 3.0, 3.0]),
            skeleton(1),
            sign,
        ],
        tracks: vec![],
        intervals: Vec::new(),
    }
}

fn import(path: &Path, ds: &TaskDataset<'_>) -> Result<Annotations, FormatError> {
    CvatXml::IMAGES.import(&ImportInput::open(path).unwrap(), ds)
}

const IMAGE0: &str = r#"
  <image id="0" name="a.jpg" width="10" height="8">
    <box label="sign" source="auto" occluded="0" xtl="0.00" ytl="0.00" xbr="1.00" ybr="1.00" z_order="-1">
    </box>
    <polygon label="car" source="manual" occluded="1" points="0.00,0.00;5.00,0.00;5.00,5.00" z_order="0">
    </polygon>
    <mask label="car" source="manual" occluded="0" rle="2, 3, 1" left="1" top="2" width="3" height="2" z_order="0">
    </mask>
    <box label="car" source="manual" occluded="0" xtl="1.00" ytl="2.00" xbr="3.50" ybr="4.25" rotation="15.50" z_order="1" group_id="1">
      <attribute name="color">blue</attribute>
      <attribute name="speed">42</attribute>
      <attribute name="parked">true</attribute>
      <attribute name="note">a "quoted" &lt;note&gt; &amp; more</attribute>
    </box>
    <tag label="scene" source="manual">
      <attribute name="weather">rainy</attribute>
    </tag>
  </image>"#;

#[test]
fn images_export_writes_cvat_xml_text() {
    let l = labels();
    let a = image_annotations();
    let ds = dataset(&l, &a, false);
    let (_d, zip) = export_zip(&CvatXml::IMAGES, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    let head = r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id>
      <name>conformance &amp; co</name>
      <size>3</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <bugtracker></bugtracker>
      <created>2026-12-01 10:20:30.123456+00:00</created>
      <updated>2026-12-02 11:00:00+00:00</updated>
      <subset>default</subset>
      <start_frame>0</start_frame>
      <stop_frame>2</stop_frame>
      <frame_filter></frame_filter>
      <segments>
        <segment>
          <id>11</id>
          <start>0</start>
          <stop>2</stop>
          <url>/api/jobs/11</url>
        </segment>
      </segments>
      <owner>
        <username>admin</username>
        <email></email>
      </owner>
      <assignee></assignee>
      <labels>
        <label>
          <name>car</name>
          <color>#ff0000</color>
          <type>any</type>
          <attributes>
            <attribute>
              <name>color</name>
              <mutable>False</mutable>
              <input_type>select</input_type>
              <default_value>red</default_value>
              <values>red
blue</values>
            </attribute>
"#;
    assert!(
        xml.starts_with(head),
        "{}",
        &xml[..head.len().min(xml.len())]
    );
    for needle in [
            "\n        <label>\n          <name>sign</name>\n          <color>#00ff00</color>\n          <type>rectangle</type>\n          <attributes>\n          </attributes>\n        </label>",
            "<name>note</name>\n              <mutable>False</mutable>\n              <input_type>text</input_type>\n              <default_value></default_value>\n              <values></values>",
            "<svg>&lt;line data-type=\"edge\" data-node-from=\"1\" data-node-to=\"2\"&gt;&lt;/line&gt;&lt;circle data-label-name=\"head\" data-node-id=\"1\"&gt;&lt;/circle&gt;&lt;circle data-label-name=\"hand\" data-node-id=\"2\"&gt;&lt;/circle&gt;</svg>\n        </label>",
            "<name>head</name>\n          <color>#111111</color>\n          <type>points</type>\n          <attributes>",
            "</attributes>\n          <parent>person</parent>\n        </label>",
            "\n      </labels>\n    </task>\n    <dumped>",
            IMAGE0,
            r#"
  <image id="1" name="sub/b.png" width="20" height="16">
    <polyline label="car" source="manual" occluded="0" points="1.00,1.00;2.00,2.00" z_order="0">
    </polyline>
    <points label="car" source="manual" occluded="0" points="3.00,3.00" z_order="0">
    </points>
    <ellipse label="car" source="manual" occluded="0" cx="5.50" cy="4.00" rx="2.75" ry="1.50" z_order="0">
    </ellipse>
    <cuboid label="car" source="manual" occluded="0" xtl1="0.50" ytl1="1.50" xbl1="2.50" ybl1="3.50" xtr1="4.50" ytr1="5.50" xbr1="6.50" ybr1="7.50" xtl2="8.50" ytl2="9.50" xbl2="10.50" ybl2="11.50" xtr2="12.50" ytr2="13.50" xbr2="14.50" ybr2="15.50" z_order="0">
    </cuboid>
    <skeleton label="person" source="manual" z_order="0">
      <points label="head" source="manual" outside="0" occluded="0" points="1.00,2.00">
        <attribute name="visible">false</attribute>
      </points>
      <points label="hand" source="manual" outside="1" occluded="0" points="3.00,4.00">
      </points>
    </skeleton>
  </image>"#,
        ] {
            assert!(xml.contains(needle), "missing:\n{needle}\n--- in ---\n{xml}");
        }
    assert!(xml.ends_with(
            "\n  <image id=\"2\" name=\"c.jpg\" width=\"10\" height=\"8\">\n  </image>\n</annotations>\n"
        ));
    assert!(!xml.contains("original_size") && !xml.contains("<track"));
    let dumped = xml
        .split("<dumped>")
        .nth(1)
        .unwrap()
        .split("</dumped>")
        .next()
        .unwrap();
    assert!(dumped.ends_with("+00:00") && dumped.len() >= 25, "{dumped}");
}

#[test]
fn images_export_reimports_exactly() {
    let l = labels();
    let a = image_annotations();
    let ds = dataset(&l, &a, false);
    let (_d, zip) = export_zip(&CvatXml::IMAGES, &ds, None);
    let back = import(&zip, &ds).unwrap();
    assert!(back
        .shapes
        .iter()
        .all(|s| s.source == "file" && s.id.is_none()));
    assert_eq!(normalised(&back), normalised(&with_source(&a, "file")));
}

#[test]
fn images_are_stored_under_their_frame_names() {
    let l = labels();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    let (_d, zip) = export_zip(&CvatXml::IMAGES, &ds, Some(&TestImages::of(&ds)));
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let names: Vec<String> = z.file_names().map(str::to_owned).collect();
    assert_eq!(names[0], "annotations.xml");
    let mut imgs: Vec<&String> = names.iter().filter(|n| n.starts_with("images/")).collect();
    imgs.sort();
    assert_eq!(imgs, ["images/a.jpg", "images/c.jpg", "images/sub/b.png"]);
    let f = z.by_name("images/sub/b.png").unwrap();
    assert_eq!(f.compression(), zip::CompressionMethod::Stored);

    // Video frames: frame_NNNNNN with the extension the source encoded them with.
    let ds = dataset(&l, &a, true);
    for (ext, want) in [
        ("PNG", "images/frame_000013.PNG"),
        ("jpg", "images/frame_000013.jpg"),
    ] {
        let images = TestImages::all(&ds, ext);
        let (_d, zip) = export_zip(&CvatXml::VIDEO, &ds, Some(&images));
        assert_eq!(zip_entry(&zip, want), images.bytes(1));
    }
}

/// The video task: shapes on frames 0 (abs 10), 2 (abs 16) and 3 (abs 19, the last), a tag.
fn video_annotations() -> Annotations {
    Annotations {
        shapes: vec![
            car_box(0),
            shape(ShapeType::Points, 2, 1, &[3.0, 3.0]),
            skeleton(3),
        ],
        tags: vec![tag(1, 6, vec![])],
        ..Annotations::default()
    }
}

#[test]
fn video_export_writes_shapes_as_tracks() {
    let l = labels();
    let a = video_annotations();
    let ds = dataset(&l, &a, true);
    let (_d, zip) = export_zip(&CvatXml::VIDEO, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    for needle in [
            "      <mode>interpolation</mode>",
            "      <start_frame>10</start_frame>\n      <stop_frame>19</stop_frame>\n      <frame_filter>step=3</frame_filter>",
            "\n      </labels>\n      <original_size>\n        <width>25</width>\n        <height>20</height>\n      </original_size>\n    </task>\n    <dumped>",
            r#"
  <track id="0" label="car" source="manual" group_id="1">
    <box frame="10" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.50" ybr="4.25" rotation="15.50" z_order="1">
      <attribute name="color">blue</attribute>
      <attribute name="speed">42</attribute>
      <attribute name="parked">true</attribute>
      <attribute name="note">a "quoted" &lt;note&gt; &amp; more</attribute>
    </box>
    <box frame="13" keyframe="1" outside="1" occluded="0" xtl="1.00" ytl="2.00" xbr="3.50" ybr="4.25" rotation="15.50" z_order="1">"#,
            // 16 + 3 is not before the stop frame 19: no finishing outside shape (CVAT's rule).
            r#"
  <track id="1" label="car" source="manual">
    <points frame="16" keyframe="1" outside="0" occluded="0" points="3.00,3.00" z_order="0">
    </points>
  </track>
  <track id="2" label="person" source="manual">
    <skeleton frame="19" keyframe="1" z_order="0">
      <points label="head" keyframe="1" outside="0" occluded="0" points="1.00,2.00">
        <attribute name="visible">false</attribute>
      </points>
      <points label="hand" keyframe="1" outside="1" occluded="0" points="3.00,4.00">
      </points>
    </skeleton>
  </track>
</annotations>
"#,
        ] {
            assert!(xml.contains(needle), "missing:\n{needle}\n--- in ---\n{xml}");
        }
    assert!(
        !xml.contains("<tag") && !xml.contains("<image"),
        "video mode writes no tags or images"
    );

    // The same task as images: absolute ids, frame names without extension.
    let (_d, zip) = export_zip(&CvatXml::IMAGES, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    assert!(xml.contains("\n  <image id=\"13\" name=\"frame_000013\" width=\"25\" height=\"20\">\n    <tag label=\"scene\" source=\"manual\">\n    </tag>\n  </image>"), "{xml}");
}

#[test]
fn video_export_reimports_as_tracks() {
    let l = labels();
    let a = video_annotations();
    let ds = dataset(&l, &a, true);
    let (_d, zip) = export_zip(&CvatXml::VIDEO, &ds, None);
    let back = import(&zip, &ds).unwrap();
    let ts = |frame, outside, attrs: Vec<AttributeVal>, kind, points: &[f64]| {
        let mut k = keyframe(kind, frame, outside, points);
        if kind == ShapeType::Rectangle {
            k.z_order = 1;
            k.rotation = 15.5;
        }
        k.attributes = attrs;
        k
    };
    // Its frame is its first keyframe's.
    let track = |label_id, group, attrs, shapes, elements| Track {
        group,
        source: "file".into(),
        attributes: attrs,
        elements,
        ..testkit::track(label_id, shapes)
    };
    let mutable = vec![av(11, "42"), av(12, "true")];
    let bx = [1.0, 2.0, 3.5, 4.25];
    let want = Annotations {
        version: 0,
        tags: vec![],
        shapes: vec![],
        tracks: vec![
            track(
                1,
                1,
                vec![av(10, "blue"), av(13, "a \"quoted\" <note> & more")],
                vec![
                    ts(0, false, mutable.clone(), ShapeType::Rectangle, &bx),
                    ts(1, true, mutable, ShapeType::Rectangle, &bx),
                ],
                vec![],
            ),
            track(
                1,
                0,
                vec![],
                vec![ts(2, false, vec![], ShapeType::Points, &[3.0, 3.0])],
                vec![],
            ),
            track(
                3,
                0,
                vec![],
                vec![ts(3, false, vec![], ShapeType::Skeleton, &[])],
                vec![
                    track(
                        4,
                        0,
                        vec![],
                        vec![ts(
                            3,
                            false,
                            vec![av(14, "false")],
                            ShapeType::Points,
                            &[1.0, 2.0],
                        )],
                        vec![],
                    ),
                    track(
                        5,
                        0,
                        vec![],
                        vec![ts(3, true, vec![], ShapeType::Points, &[3.0, 4.0])],
                        vec![],
                    ),
                ],
            ),
        ],
        intervals: Vec::new(),
    };
    assert_eq!(back, want);
}

/// A track of every kind the model interpolates, exported both ways and read back.
#[test]
fn tracks_round_trip_through_both_layouts() {
    use ShapeType::{Points, Rectangle, Skeleton};
    let l = labels();
    let with = |mut k: crate::annotations::TrackedShape, attrs: Vec<AttributeVal>| {
        k.attributes = attrs;
        k
    };
    let mut a = Annotations::default();
    let mut car = testkit::track(
        1,
        vec![
            with(
                keyframe(Rectangle, 0, false, &[0.0, 0.0, 10.0, 10.0]),
                vec![av(11, "1")],
            ),
            with(
                keyframe(Rectangle, 2, false, &[2.0, 2.0, 12.0, 12.0]),
                vec![av(11, "3")],
            ),
            with(
                keyframe(Rectangle, 3, true, &[2.0, 2.0, 12.0, 12.0]),
                vec![av(11, "3")],
            ),
        ],
    );
    car.attributes = vec![av(10, "red")];
    a.tracks.push(car);
    let mut person = testkit::track(3, vec![keyframe(Skeleton, 1, false, &[])]);
    person.elements = vec![
        testkit::track(4, vec![keyframe(Points, 1, false, &[1.0, 1.0])]),
        testkit::track(
            5,
            vec![
                keyframe(Points, 1, false, &[2.0, 2.0]),
                keyframe(Points, 2, true, &[2.0, 2.0]),
            ],
        ),
    ];
    a.tracks.push(person);
    let ds = dataset(&l, &a, true);

    // Video: keyframes, outside markers and every visible frame are written; reading keeps
    // only the keyframes, so the tracks come back as they were.
    let (_d, zip) = export_zip(&CvatXml::VIDEO, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    assert!(xml.contains(r#"<box frame="13" keyframe="0" outside="0" occluded="0" xtl="1.00" ytl="1.00" xbr="11.00" ybr="11.00" z_order="0">"#), "{xml}");
    assert!(
        xml.contains(r#"<box frame="19" keyframe="1" outside="1" occluded="0""#),
        "{xml}"
    );
    let back = import(&zip, &ds).unwrap();
    assert_eq!(normalised(&back), normalised(&with_source(&a, "file")));

    // Images: one plain shape per visible frame, nothing after the outside keyframe.
    let (_d, zip) = export_zip(&CvatXml::IMAGES, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    assert_eq!(xml.matches("<box ").count(), 3, "{xml}");
    assert_eq!(xml.matches("<skeleton ").count(), 3, "{xml}");
    let back = import(&zip, &ds).unwrap();
    assert!(back.tracks.is_empty());
    assert_eq!(back.shapes.len(), 6);
}

fn error_of(dir: &Path, name: &str, text: &str) -> String {
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    let p = write_file(dir, name, text);
    import(&p, &ds).unwrap_err().to_string()
}

const BAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="a.jpg" width="10" height="8">
    <box label="LABEL" occluded="0" xtl="XTL" ytl="0" xbr="1" ybr="1" z_order="0">
      <attribute name="color">COLOR</attribute>
    </box>
  </image>
</annotations>
"#;

/// [`BAD`] with its label, `xtl` and color.
fn bad(label: &str, xtl: &str, color: &str) -> String {
    BAD.replace("LABEL", label)
        .replace("XTL", xtl)
        .replace("COLOR", color)
}

#[test]
fn bad_files_report_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = bad("car", "0", "red");
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    let got = import(&write_file(d, "ok.xml", &ok), &ds).unwrap();
    assert_eq!(got.shapes.len(), 1);
    assert_eq!(got.shapes[0].attributes, vec![av(10, "red")]);

    let cases = [
        (
            "label.xml",
            bad("truck", "0", "red"),
            "label.xml, line 5: unknown label 'truck'",
        ),
        (
            "number.xml",
            bad("car", "1.2.3", "red"),
            "number.xml, line 5: <box> attribute 'xtl': '1.2.3' is not a number",
        ),
        (
            "value.xml",
            bad("car", "0", "green"),
            "value.xml, line 6: attribute 'color': 'green' is not one of",
        ),
        (
            "kind.xml",
            bad("scene", "0", "red"),
            "kind.xml, line 5: label 'scene' is for tags, not rectangles",
        ),
        (
            "frame.xml",
            ok.replace("a.jpg", "zzz.jpg")
                .replace("id=\"0\"", "id=\"9\""),
            "frame.xml, line 4: <image name=\"zzz.jpg\" id=\"9\"> matches no frame",
        ),
        (
            "points.xml",
            ok.replace(
                "<box label=\"car\" occluded=\"0\" xtl=\"0\" ytl=\"0\" xbr=\"1\" ybr=\"1\"",
                "<polygon label=\"car\" points=\"1,2;3,4\"",
            )
            .replace("</box>", "</polygon>"),
            "points.xml, line 5: a polygon needs an even number of at least 6 coordinates, got 4",
        ),
        (
            "mismatch.xml",
            ok.replace("</box>", "</image>"),
            "mismatch.xml, line 7: malformed XML",
        ),
        ("empty.xml", String::new(), "not a CVAT 1.1 dataset"),
        (
            "other.xml",
            "<dataset><item/></dataset>".into(),
            "not a CVAT 1.1 dataset: the root element is <dataset>",
        ),
    ];
    for (name, text, want) in cases {
        let e = error_of(d, name, &text);
        assert!(e.contains(want), "{name}: {e}");
    }

    // Truncated in the middle of an element: the line where that element starts.
    let l = labels();
    let a = image_annotations();
    let ds = dataset(&l, &a, false);
    let (_z, zip) = export_zip(&CvatXml::IMAGES, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    let cut = xml.find("<ellipse").unwrap() + 20;
    let line = xml[..cut].matches('\n').count() + 1;
    let e = error_of(d, "cut.xml", &xml[..cut]);
    assert!(
        e.starts_with(&format!("cut.xml, line {line}: malformed XML")),
        "{e}"
    );
    // Truncated between elements.
    let cut = xml.find("<ellipse").unwrap();
    let e = error_of(d, "cut2.xml", &xml[..cut]);
    let last = xml[..cut].matches('\n').count() + 1;
    assert!(
        e.starts_with(&format!(
            "cut2.xml, line {last}: the file ends inside <image>"
        )),
        "{e}"
    );

    // Inside a zip, at any depth: the entry is named.
    let truck = BAD.replace("LABEL", "truck");
    let zpath = write_zip(d, "deep.zip", &[("a/b/anno.xml", truck.as_bytes())]);
    let e = import(&zpath, &ds).unwrap_err().to_string();
    assert!(
        e.starts_with("a/b/anno.xml, line 5: unknown label 'truck'"),
        "{e}"
    );
}

fn import_with(
    path: &Path,
    ds: &TaskDataset<'_>,
    limits: crate::formats::ImportLimits,
) -> Result<Annotations, FormatError> {
    let input = ImportInput::open_with(path, "annotations.xml", limits)?;
    CvatXml::IMAGES.import(&input, ds)
}

#[test]
fn values_past_the_import_limit_are_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    let limits = crate::formats::ImportLimits {
        max_value: 1 << 20,
        ..Default::default()
    };
    let ok = bad("car", "0", "red");
    let big = " ".repeat(2 << 20);
    let refs = format!("{}&amp;", "a".repeat(1000)).repeat(1100);
    let cases = [
        // Whitespace in one text node (what the reader used to buffer whole).
        (
            ok.replace("<version>", &format!("{big}<version>")),
            "a text value",
        ),
        (
            ok.replace("<version>", &format!("<version x=\"{big}\">")),
            "an element tag (with its attribute values)",
        ),
        (
            ok.replace("<version>", &format!("<!--{big}--><version>")),
            "a comment, CDATA section or DOCTYPE",
        ),
        (
            ok.replace(
                "<version>",
                &format!("text &{};<version>", "x".repeat(2 << 20)),
            ),
            "an entity reference",
        ),
        // An attribute value gathered from many small events.
        (
            ok.replace("\"color\">red<", &format!("\"nope\">{refs}<")),
            "a text value",
        ),
    ];
    for (i, (text, what)) in cases.iter().enumerate() {
        let p = write_file(d, &format!("{i}.xml"), text);
        let e = import_with(&p, &ds, limits).unwrap_err();
        assert!(matches!(e, FormatError::Limit(_)), "{i}: {e}");
        assert_eq!(
            e.to_string(),
            format!("annotations.xml: {what} is larger than 1048576 bytes (--max-import-value)"),
            "{i}"
        );
        // The same file under the default limit (64 MiB) is read.
        assert_eq!(import(&p, &ds).unwrap().shapes.len(), 1, "{i}");
    }

    // Nesting is bounded too.
    let deep = ok.replace(
        "<version>1.1</version>",
        &format!("{}{}", "<x>".repeat(300), "</x>".repeat(300)),
    );
    let e = error_of(d, "deep.xml", &deep);
    assert!(e.contains("nested more than 256 deep"), "{e}");
}

#[test]
fn zipped_xml_bombs_are_refused_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    // 80 MiB of whitespace in one text node, ~80 KB deflated.
    let zpath = zip_bomb(
        dir.path(),
        "bomb.zip",
        "annotations.xml",
        b"<annotations>",
        b' ',
        80,
        b"</annotations>",
    );
    let e = import(&zpath, &ds).unwrap_err();
    assert!(matches!(e, FormatError::Limit(_)), "{e}");
    let e = e.to_string();
    assert!(
        e.starts_with("The archive entry \"annotations.xml\" expands to more than 200 times"),
        "{e}"
    );
    // With the ratio check off, the value limit stops it.
    let limits = crate::formats::ImportLimits::values_only(1 << 20);
    let e = import_with(&zpath, &ds, limits).unwrap_err().to_string();
    assert_eq!(
        e,
        "annotations.xml: a text value is larger than 1048576 bytes (--max-import-value)"
    );
}

#[test]
fn lenient_reading_like_cvat() {
    let dir = tempfile::tempdir().unwrap();
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    // Unknown attribute names are skipped; checkbox values are case-folded; names match
    // with or without the extension and without the task's directories; ids match too.
    let text = r#"<annotations>
  <meta><task><labels><label><name>car</name><attributes><attribute><name>x</name></attribute></attributes></label></labels></task></meta>
  <image id="0" name="a" width="1" height="1">
    <box label="car" xtl="0" ytl="0" xbr="1" ybr="1"><attribute name="nope">1</attribute><attribute name="parked">TRUE</attribute></box>
  </image>
  <image id="1" name="b.png" width="1" height="1"><tag label="scene"><attribute name="weather">sunny</attribute></tag></image>
  <image id="2" name="somewhere/else.jpg" width="1" height="1"><points label="car" points="1,1"/></image>
  <tag label="scene"/>
</annotations>"#;
    let got = import(&write_file(dir.path(), "x.xml", text), &ds).unwrap();
    assert_eq!(got.shapes.len(), 2);
    assert_eq!(got.shapes[0].attributes, vec![av(12, "true")]);
    assert_eq!((got.shapes[0].frame, got.shapes[1].frame), (0, 2));
    assert_eq!(got.tags.len(), 1);
    assert_eq!(got.tags[0].frame, 1);
}

#[test]
fn numbers_read_as_str_parse_reads_them() {
    use rand::{Rng, SeedableRng};
    let std_parse = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(f64::to_bits)
    };
    let mut cases: Vec<String> = [
        "0",
        "-0",
        "0.0",
        "-0.0",
        "1",
        "1.",
        ".5",
        "-.5",
        "-5.",
        ".",
        "-",
        "-.",
        "",
        " ",
        "1.2.3",
        "+1",
        " 1.5",
        "1.5 ",
        "1e3",
        "1E-3",
        "inf",
        "-inf",
        "NaN",
        "1_000",
        "0x10",
        "12,5",
        "0.1",
        "0.2",
        "0.30000000000000004",
        "123456789.123456789",
        "9007199254740992",
        "9007199254740993",
        "9007199254740991.5",
        "18446744073709551615",
        "99999999999999999999",
        "1234567890123456789",
        "0.000000000000000001",
        "000000000000000000012.5",
        "4503599627370496.5",
        "1.7976931348623157e308",
        "1e309",
        "2.2250738585072014e-308",
        "\u{a0}1",
        "１",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rnd = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..200_000 {
        let digits = rnd.random_range(1..=21);
        let mut s: String = (0..digits)
            .map(|_| char::from(b'0' + rnd.random_range(0..10u8)))
            .collect();
        if rnd.random_bool(0.8) {
            s.insert(rnd.random_range(0..=s.len()), '.');
        }
        if rnd.random_bool(0.3) {
            s.insert(0, '-');
        }
        cases.push(s);
    }
    for s in &cases {
        assert_eq!(parse_float(s).map(f64::to_bits), std_parse(s), "{s:?}");
    }
}

/// The values of every key of a tag, or the error.
type Values = Result<Vec<Option<String>>, String>;

/// `Attrs` of one tag by its fast scan, and by quick-xml's iterator alone.
fn attrs_both_ways(tag: &[u8]) -> (Values, Values) {
    let mut reader = Reader::from_reader(tag);
    let Ok(Event::Empty(e)) = reader.read_event() else {
        panic!("not one empty tag: {}", String::from_utf8_lossy(tag));
    };
    let values = |a: PResult<Attrs<'_>>| match a {
        Ok(a) => Ok(Key::ALL
            .iter()
            .map(|&k| a.get(k).map(str::to_owned))
            .collect()),
        Err(Fail::At(_, why)) => Err(why),
        Err(Fail::Other(e)) => Err(e.to_string()),
    };
    let fast = values(Attrs::read(&e, 0));
    let mut a = Attrs::empty();
    let slow = a.read_with_quick_xml(&e, reader.decoder(), 0).map(|()| a);
    (fast, values(slow))
}

#[test]
fn attributes_read_as_quick_xml_reads_them() {
    let tags: &[&[u8]] = &[
        b"<box label=\"car\" xtl=\"1.5\" ytl='2' xbr=\"3\" ybr=\"4\"/>",
        b"<box/>",
        b"<box   />",
        b"<box label=\"car\"xtl=\"1\"/>",
        b"<box label = \"car\" xtl\t=\n'1' />",
        b"<box label=\"a'b\" note='a\"b'/>",
        b"<box label=\"a &amp; b &#x41;&#66;\"/>",
        b"<box label=\"a &bogus; b\"/>",
        b"<box label=\"a & b\"/>",
        b"<box note=\"a &bogus; b\"/>",
        b"<box label=\"car\" label=\"car\"/>",
        b"<box n1=\"\" n2=\"\" n1=\"\"/>",
        b"<box n1=\"\" n2=\"\" n3=\"\" n4=\"\" n5=\"\" n6=\"\" n7=\"\" n8=\"\" n9=\"\" n10=\"\"/>",
        b"<box n1=\"\" n2=\"\" n3=\"\" n4=\"\" n5=\"\" n6=\"\" n7=\"\" n8=\"\" n9=\"\" n1=\"\"/>",
        b"<box label/>",
        b"<box label />",
        b"<box label x=\"1\"/>",
        b"<box label=car/>",
        b"<box label=/>",
        b"<box label=\"car\" note=\"/>\"/>",
        b"<box =\"x\"/>",
        b"<box \xc3\xa9=\"1\" label=\"\xc3\xa9\"/>",
        b"<box label=\"\xff\"/>",
        b"<box \xff=\"1\"/>",
        b"<box note=\"\xff\" label=\"&bogus;\"/>",
        b"<box label=\"&bogus;\" note=\"\xff\"/>",
        b"<box xtl=\"\" ytl=\"&lt;\" xbr=\"&#0;\"/>",
    ];
    for tag in tags {
        let (fast, slow) = attrs_both_ways(tag);
        assert_eq!(fast, slow, "{}", String::from_utf8_lossy(tag));
    }
    // Errors are quick-xml's.
    let (fast, _) = attrs_both_ways(b"<box label=\"car\" label=\"car\"/>");
    assert_eq!(
            fast.unwrap_err(),
            "malformed attribute: position 16: duplicated attribute, previous declaration at position 4"
        );
}

#[test]
fn bad_attributes_report_quick_xmls_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ok = bad("car", "0", "red");
    let with = |extra: &str| ok.replace("occluded=\"0\"", &format!("occluded=\"0\"{extra}"));
    let cases = [
            (with(" xtl=\"1\""), "malformed attribute: position 37: duplicated attribute, previous declaration at position 29"),
            (with(" extra=\"1\" extra=\"2\""), "malformed attribute: position 39: duplicated attribute, previous declaration at position 29"),
            (with(" note=\"a &bogus; b\""), "attribute 'note': at 3..8: unrecognized entity `bogus`"),
            (with(" note=\"a & b\""), "attribute 'note': Error while escaping character at range 2..5: Cannot find ';' after '&'"),
            (with(" note"), "malformed attribute: position 34: attribute key must be directly followed by `=` or space"),
            (ok.replace("occluded=\"0\"", "occluded=0"), "malformed attribute: position 25: attribute value must be enclosed in `\"` or `'`"),
        ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let e = error_of(dir.path(), &format!("a{i}.xml"), text);
        assert_eq!(e, format!("a{i}.xml, line 5: {want}"));
    }
    let mut bytes = ok.clone().into_bytes();
    bytes[ok.find("ytl=\"0\"").unwrap() + 5] = 0xff;
    let p = dir.path().join("utf.xml");
    std::fs::write(&p, &bytes).unwrap();
    let l = testkit::label_index();
    let a = Annotations::default();
    let ds = dataset(&l, &a, false);
    assert_eq!(
            import(&p, &ds).unwrap_err().to_string(),
            "utf.xml, line 5: attribute 'ytl': cannot decode input using UTF-8: invalid utf-8 sequence of 1 bytes from index 0"
        );
    // References resolve, unknown attributes of any name are skipped.
    let text = ok.replace(
        "label=\"car\"",
        "label=\"c&#97;r\" \u{e9}=\"1\" n=\"\u{e9}\"",
    );
    let got = import(&write_file(dir.path(), "refs.xml", &text), &ds).unwrap();
    assert_eq!(got.shapes.len(), 1);
    assert_eq!(got.shapes[0].label_id, 1);
}

#[test]
fn large_zip_entries_import_like_the_bare_file() {
    let l = labels();
    let mut a = image_annotations();
    let one = a.shapes.clone();
    for i in 0..1500 {
        a.shapes.extend(one.iter().cloned().map(|mut s| {
            s.frame = i % 3;
            s
        }));
    }
    let ds = dataset(&l, &a, false);
    let (dir, zip) = export_zip(&CvatXml::IMAGES, &ds, None);
    let xml = zip_text(&zip, "annotations.xml");
    assert!(xml.len() > 1 << 20, "{}", xml.len());
    let bare = write_file(dir.path(), "annotations.xml", &xml);
    let empty = Annotations::default();
    let ds = dataset(&l, &empty, false);
    let from_zip = import(&zip, &ds).unwrap();
    assert_eq!(from_zip.shapes.len(), a.shapes.len());
    assert_eq!(from_zip, import(&bare, &ds).unwrap());
}

#[test]
fn find_any_finds_the_first_of_some_bytes() {
    use rand::{Rng, SeedableRng};
    let mut rnd = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..20_000 {
        let len = rnd.random_range(0..40);
        let s: Vec<u8> = (0..len).map(|_| rnd.random_range(b'"'..=b'*')).collect();
        let want = s.iter().position(|&c| c == b'"' || c == b'&');
        assert_eq!(find_any(&s, [b'"', b'&']), want, "{s:?}");
        let want = s.iter().position(|&c| c == b'*');
        assert_eq!(find_any(&s, [b'*']), want, "{s:?}");
    }
    assert_eq!(find_any(b"\x80\x00\xff&", [b'&']), Some(3));
    assert_eq!(find_any(b"0123456789", [b'9', b'x', b'8']), Some(8));
}

#[test]
fn python_formatting_helpers() {
    let mut s = String::new();
    quote_attr("plain", &mut s);
    quote_attr("say \"hi\"", &mut s);
    quote_attr("it's \"x\"\n\t<&>", &mut s);
    assert_eq!(
        s,
        r#""plain"'say "hi"'"it's &quot;x&quot;&#10;&#9;&lt;&amp;&gt;""#
    );
    assert_eq!(format!("{:.2}", 0.125), "0.12");
    assert_eq!(format!("{:.2}", 2.675), "2.67");
    assert_eq!(format!("{:.2}", -0.001), "-0.00");
    assert_eq!(round2(8.255), 8.26);
    assert_eq!(split_ext("a/b.c/d"), ("a/b.c/d", ""));
    assert_eq!(split_ext("a/.hidden"), ("a/.hidden", ""));
    assert_eq!(split_ext("a/x.tar.gz"), ("a/x.tar", ".gz"));
    assert_eq!(
        crate::formats::kit::paths::with_image_ext("frame_000001.PNG", "jpg"),
        "frame_000001.jpg"
    );
    assert_eq!(
        crate::formats::kit::paths::with_image_ext("x/a.JPG", "jpg"),
        "x/a.JPG"
    );
    assert_eq!(
        py_timestamp("2020-04-23T08:57:24.614217Z"),
        "2020-04-23 08:57:24.614217+00:00"
    );
}

/// Datumaro's samples in the shared test data.
fn shared() -> Option<PathBuf> {
    Some(testkit::shared_testdata().join("datumaro"))
}

/// Labels as in a sample's `<meta>` (black, no SVG), with ids from 1 and attribute ids
/// from 101.
fn sample_labels(rows: &[(&str, Option<&str>, &str, Vec<AttrSpec>)]) -> LabelIndex {
    let mut labels: Vec<LabelInfo> = Vec::new();
    let mut attr_id = 100;
    for (i, (name, parent, kind, attrs)) in rows.iter().enumerate() {
        let parent = parent.map(|p| labels.iter().find(|l| l.name == p).unwrap().id);
        let attrs = attrs
            .iter()
            .map(|a| {
                attr_id += 1;
                (attr_id, a.clone())
            })
            .collect();
        labels.push(LabelInfo {
            color: "#000000".into(),
            svg: String::new(),
            ..label(i as i64 + 1, name, kind, parent, attrs)
        });
    }
    LabelIndex::from_labels(labels)
}

fn count_kinds(shapes: &[Shape]) -> Vec<(&'static str, usize)> {
    let mut m: Vec<(&'static str, usize)> = Vec::new();
    for s in shapes {
        match m.iter_mut().find(|(k, _)| *k == s.kind.as_str()) {
            Some((_, n)) => *n += 1,
            None => m.push((s.kind.as_str(), 1)),
        }
    }
    m.sort();
    m
}

/// Datumaro's `cvat_dataset/for_images` (CVAT 1.1 XML, old writer): 2 items, 1 box,
/// 1 polygon, 1 polyline, 1 points, 2 skeletons (Datumaro fork: 6 annotations).
#[test]
fn shared_for_images_sample() {
    let Some(root) = shared() else { return };
    let xml = root.join("cvat_for_images_1.1/cvat_dataset/for_images/train.xml");
    let skeleton = |extra: bool| {
        let mut rows = vec![
            (
                "label1",
                None,
                "any",
                vec![
                    spec("a1", "checkbox", &["false"], "false", false),
                    spec("a2", "radio", &["v1", "v2", "v3"], "v1", false),
                    spec("a3", "text", &["0001"], "0000", false),
                    spec("a4", "number", &["-5.6", "2.4", "1"], "0", false),
                ],
            ),
            ("label2", None, "any", vec![]),
            ("skeleton", None, "skeleton", vec![]),
            ("1", Some("skeleton"), "points", vec![]),
            ("2", Some("skeleton"), "points", vec![]),
            ("3", Some("skeleton"), "points", vec![]),
            ("4", Some("skeleton"), "points", vec![]),
        ];
        if extra {
            // The sample's polygon and polyline have label="" (Datumaro: no label).
            rows.push(("", None, "any", vec![]));
        }
        sample_labels(&rows)
    };
    let a = Annotations::default();
    let frames = vec![
        frame(0, 0, "img0.jpg", 8, 8),
        frame(1, 1, "img1.jpg", 10, 10),
    ];

    // CVAT itself rejects the unlabeled shapes ("Label '' is not registered").
    let l = skeleton(false);
    let mut ds = dataset(&l, &a, false);
    ds.frames = frames.clone();
    let e = import(&xml, &ds).unwrap_err().to_string();
    assert!(e.starts_with("train.xml, line 90: unknown label ''"), "{e}");

    let l = skeleton(true);
    let mut ds = dataset(&l, &a, false);
    ds.frames = frames;
    let got = import(&xml, &ds).unwrap();
    assert_eq!(
        count_kinds(&got.shapes),
        [
            ("points", 1),
            ("polygon", 1),
            ("polyline", 1),
            ("rectangle", 1),
            ("skeleton", 2)
        ]
    );
    assert!(got.tags.is_empty() && got.tracks.is_empty());
    let b = &got.shapes[0];
    assert_eq!(
        (b.kind, b.frame, b.occluded, b.z_order),
        (ShapeType::Rectangle, 0, true, 1)
    );
    assert_eq!(b.points, [0.0, 2.0, 4.0, 4.0]);
    let values: Vec<&str> = b.attributes.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(values, ["true", "v3", "0003", "2.4"]);
    let sk: Vec<&Shape> = got
        .shapes
        .iter()
        .filter(|s| s.kind == ShapeType::Skeleton)
        .collect();
    assert_eq!(sk[0].elements.len(), 4);
    assert!(sk[0].elements[0].outside && !sk[0].elements[1].outside);
    assert_eq!(sk[1].frame, 1);
    assert_eq!(sk[1].elements[2].points, [5.0, 5.0]);
    // Items as Datumaro counts them: the frames that have annotations.
    let mut items: Vec<u64> = got.shapes.iter().map(|s| s.frame).collect();
    items.dedup();
    assert_eq!(items, [0, 1]);
}

/// Datumaro's `cvat_dataset/for_video` (interpolation mode, the older nested-track skeleton
/// layout, frames 10/13/16 of a step-3 task): 4 tracks; per frame 3 boxes, 2 points,
/// 2 polylines, 3 skeletons (Datumaro fork: 3 items, 10 annotations).
#[test]
fn shared_for_video_sample() {
    let Some(root) = shared() else { return };
    let xml = root.join("cvat_for_video_1.1/cvat_dataset/for_video/annotations.xml");
    let l = sample_labels(&[
        (
            "klhg",
            None,
            "any",
            vec![spec("hgl", "select", &["jk", "hgkf"], "jk", true)],
        ),
        ("z U k", None, "any", vec![]),
        ("II", None, "any", vec![]),
        ("skeleton", None, "skeleton", vec![]),
        ("1", Some("skeleton"), "points", vec![]),
        ("2", Some("skeleton"), "points", vec![]),
        ("3", Some("skeleton"), "points", vec![]),
        ("4", Some("skeleton"), "points", vec![]),
    ]);
    let a = Annotations::default();
    let mut ds = dataset(&l, &a, true);
    ds.frames.truncate(3); // frame_000010, 13, 16: the sample's three items
    ds.size = 3;
    let got = import(&xml, &ds).unwrap();
    assert!(got.shapes.is_empty() && got.tags.is_empty());
    assert_eq!(got.tracks.len(), 4);
    let frames =
        |t: &Track| -> Vec<(u64, bool)> { t.shapes.iter().map(|s| (s.frame, s.outside)).collect() };
    let t = &got.tracks;
    assert_eq!(
        (t[0].label_id, frames(&t[0])),
        (3, vec![(0, false), (1, true), (2, true)])
    );
    assert_eq!(
        (t[1].label_id, frames(&t[1])),
        (1, vec![(0, false), (1, true)])
    );
    assert_eq!(t[1].shapes[0].attributes, vec![av(101, "hgkf")]);
    assert_eq!(t[1].shapes[1].attributes, vec![av(101, "jk")]);
    assert_eq!(
        (t[2].label_id, frames(&t[2])),
        (3, vec![(1, false), (2, true)])
    );
    assert_eq!(
        t[2].shapes[0].points,
        [7.85, 13.88, 3.5, 6.67, 15.9, 2.0, 13.31, 7.21]
    );
    // The skeleton: one keyframe (frame 10); its elements are the nested tracks.
    assert_eq!((t[3].label_id, frames(&t[3])), (4, vec![(0, false)]));
    let el: Vec<(i64, Vec<(u64, bool)>)> = t[3]
        .elements
        .iter()
        .map(|e| (e.label_id, frames(e)))
        .collect();
    assert_eq!(
        el,
        [
            (5, vec![(0, false)]),
            (6, vec![(0, false)]),
            (7, vec![(0, false), (1, true)]),
            (8, vec![(0, false)])
        ]
    );
    assert_eq!(t[3].elements[1].shapes[0].points, [48.8, 156.28]);

    // Per frame, as Datumaro counts them: re-export as video and count the shapes.
    let (_d, zip) = export_zip(&CvatXml::VIDEO, &dataset_with(&ds, &got), None);
    let out = zip_text(&zip, "annotations.xml");
    let n = |tag: &str| out.matches(&format!("\n    <{tag} ")).count();
    assert_eq!(
        (n("box"), n("points"), n("polyline"), n("skeleton")),
        (3, 2, 2, 3),
        "{out}"
    );
}

fn dataset_with<'a>(ds: &TaskDataset<'a>, a: &'a Annotations) -> TaskDataset<'a> {
    TaskDataset {
        annotations: a,
        ..ds.clone()
    }
}
