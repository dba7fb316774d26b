//! Criterion benches of the dataset formats (issue #5), in-process: the synthetic task of
//! `benches/compare-formats.sh` (2,000 frames, 30,000 shapes: 10 boxes + 5 polygons per frame,
//! a select attribute on every other shape) exported to a zip on disk with "CVAT for images 1.1"
//! and "Datumaro 1.0", each export parsed back (import without storing), and the store's
//! replacement of the task's annotations (what an import does after parsing). The live-server
//! numbers against Datumaro 1.13 come from `benches/compare-formats.sh`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use frameserver::annotations::Annotations;
use frameserver::formats::testkit;
use frameserver::formats::{catalogue, ExportOptions, Exporter, ImportInput, TaskDataset, ZipSink};

fn export_to(fmt: &dyn Exporter, ds: &TaskDataset<'_>, path: &std::path::Path) {
    let mut zip = ZipSink::new(std::fs::File::create(path).unwrap());
    fmt.export(ds, &ExportOptions::default(), None, &mut zip, &|_| {})
        .unwrap();
    zip.finish().unwrap();
}

fn bench(c: &mut Criterion) {
    // The task of benches/compare-formats.sh (formats::testkit, shared with the formats' tests).
    let task = testkit::bench_task();
    let a = &task.annotations;
    let ds = task.dataset();
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
