//! Criterion benches of the dataset formats (issue #5), in-process: the synthetic task of
//! `benches/compare-formats.sh` (2,000 frames, 30,000 shapes: 10 boxes + 5 polygons per frame,
//! a select attribute on every other shape) exported to a zip on disk with "CVAT for images 1.1"
//! and "Datumaro 1.0", each export parsed back (import without storing), and the store's
//! replacement of the task's annotations (what an import does after parsing). The live-server
//! numbers against Datumaro 1.13 come from `benches/compare-formats.sh`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use frameserver::annotations::{Annotations, AttributeVal, LabelIndex, Shape, ShapeType};
use frameserver::formats::{
    catalogue, DatasetFrame, ExportOptions, Exporter, ImportInput, TaskDataset, ZipSink,
};
use frameserver::store::LabelRow;
use rand::{Rng, SeedableRng};
use serde_json::json;

const FRAMES: u64 = 2000;
const COLORS: [&str; 4] = ["red", "green", "blue", "white"];

fn labels() -> LabelIndex {
    let row = |id, name: &str, attrs| LabelRow {
        id,
        task_id: 1,
        parent_id: None,
        info: json!({"name": name, "type": "any", "color": "#ff0000"}),
        attributes: attrs,
    };
    LabelIndex::new(&[
        row(
            1,
            "car",
            vec![(
                10,
                json!({"name": "color", "input_type": "select", "values": COLORS,
                       "default_value": "red", "mutable": false}),
            )],
        ),
        row(2, "person", vec![]),
    ])
}

fn annotations() -> Annotations {
    let mut rnd = rand::rngs::StdRng::seed_from_u64(5);
    let mut a = Annotations::default();
    let mut k = 0;
    for frame in 0..FRAMES {
        for i in 0..15 {
            let car = k % 2 == 0;
            k += 1;
            let r2 = |v: f64| (v * 100.0).round() / 100.0;
            let points = if i < 10 {
                let (x, y) = (rnd.random_range(0.0..52.0), rnd.random_range(0.0..38.0));
                vec![
                    r2(x),
                    r2(y),
                    r2(x + rnd.random_range(2.0..11.0)),
                    r2(y + rnd.random_range(2.0..9.0)),
                ]
            } else {
                (0..rnd.random_range(4..=6))
                    .flat_map(|_| {
                        [
                            r2(rnd.random_range(0.0..63.0)),
                            r2(rnd.random_range(0.0..47.0)),
                        ]
                    })
                    .collect()
            };
            a.shapes.push(Shape {
                id: Some(k),
                kind: if i < 10 {
                    ShapeType::Rectangle
                } else {
                    ShapeType::Polygon
                },
                frame,
                label_id: if car { 1 } else { 2 },
                group: 0,
                source: "manual".into(),
                occluded: i % 7 == 0,
                outside: false,
                z_order: i % 3,
                rotation: 0.0,
                points,
                attributes: if car {
                    vec![AttributeVal {
                        spec_id: 10,
                        value: COLORS[rnd.random_range(0..4)].into(),
                    }]
                } else {
                    vec![]
                },
                elements: vec![],
                score: None,
            });
        }
    }
    a
}

fn dataset<'a>(labels: &'a LabelIndex, a: &'a Annotations) -> TaskDataset<'a> {
    TaskDataset {
        task_id: 1,
        name: "formats bench".into(),
        mode: "annotation".into(),
        size: FRAMES,
        overlap: 0,
        bug_tracker: String::new(),
        subset: String::new(),
        created: "2026-11-25T00:00:00.000000Z".into(),
        updated: "2026-11-25T00:00:00.000000Z".into(),
        owner: Some("admin".into()),
        original_size: None,
        segments: vec![(1, 0, FRAMES - 1)],
        labels,
        frames: (0..FRAMES)
            .map(|i| DatasetFrame {
                rel: i,
                abs: i,
                name: format!("formats-2000/img_{i:05}.png"),
                width: 64,
                height: 48,
            })
            .collect(),
        annotations: a,
    }
}

fn export_to(fmt: &dyn Exporter, ds: &TaskDataset<'_>, path: &std::path::Path) {
    let mut zip = ZipSink::new(std::fs::File::create(path).unwrap());
    fmt.export(ds, &ExportOptions::default(), None, &mut zip, &|_| {})
        .unwrap();
    zip.finish().unwrap();
}

fn bench(c: &mut Criterion) {
    let labels = labels();
    let a = annotations();
    let ds = dataset(&labels, &a);
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("formats_30k_shapes");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for name in ["CVAT for images 1.1", "Datumaro 1.0"] {
        let exporter = catalogue::exporter(name).expect("format registered");
        let fmt = catalogue::importer(name).expect("format registered").side;
        let path = dir.path().join(format!("{}.zip", exporter.info.name));
        export_to(exporter.side, &ds, &path);
        g.bench_function(format!("export {name}"), |b| {
            b.iter(|| export_to(exporter.side, &ds, &path))
        });
        let input = ImportInput::open(&path).unwrap();
        g.bench_function(format!("import {name} (parse only)"), |b| {
            b.iter(|| {
                let got = fmt.import(&input, &ds).unwrap();
                assert_eq!(got.shapes.len(), a.shapes.len());
            })
        });
    }
    // Storing an import: replace the task's 30,000 shapes (delete + insert, one fsync).
    let store = frameserver::store::Store::open(&dir.path().join("db.sqlite3")).unwrap();
    let task = store
        .create_task(frameserver::store::TaskRow::new("formats bench"))
        .unwrap()
        .id;
    let replace = |a: Annotations| {
        use frameserver::store::{AnnotationChange, ALL_FRAMES};
        store
            .change_annotations(
                task,
                vec![
                    AnnotationChange::DeleteRange(ALL_FRAMES.0, ALL_FRAMES.1),
                    AnnotationChange::Insert(a),
                ],
            )
            .unwrap()
    };
    replace(a.clone());
    g.bench_function("store: replace 30,000 shapes", |b| {
        b.iter_batched(|| a.clone(), replace, criterion::BatchSize::LargeInput)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
