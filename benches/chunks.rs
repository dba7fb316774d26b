//! Criterion benches of the chunk path's floor (issue #3): what a cold compressed zip chunk costs
//! in-process with nothing but the crate's public media/codec API (see
//! `examples/chunk_floor/floor.rs`), and its parts: decode only, RGB conversion, JPEG encoding
//! from RGB, and from the YUV planes (`FrameJpegEncoder`, what chunks use).
//!
//! Clips: `target/bench-media/h264_1080p_gop250.mp4` (`testdata/generate.sh --bench
//! target/bench-media`) and the shared real clip `cup.mp4` (640x480, GOP 30), when present
//! (`FRAMESERVER_SHARED_TESTDATA`, else `../shared/testdata`, else `/work/shared/testdata`).
//! The sequential floor (every frame decoded once and encoded) is benched on cup.mp4 only: on the
//! 1080p clip one iteration takes ~10 s (`benches/compare-chunks.sh` measures it).

#[path = "../examples/chunk_floor/floor.rs"]
mod floor;

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use frameserver::codec::{encode_jpeg, FrameJpegEncoder, Raster, RgbImage};
use frameserver::media::{ColorMode, FrameReader, RgbConverter};

const QUALITY: u8 = 70;
const CHUNK_SIZE: u64 = 36;

fn clips() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let big = root.join("target/bench-media/h264_1080p_gop250.mp4");
    if big.exists() {
        out.push(big);
    } else {
        eprintln!("bench clip missing: run testdata/generate.sh --bench target/bench-media");
    }
    let shared = std::env::var_os("FRAMESERVER_SHARED_TESTDATA")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root.join("../shared/testdata"),
            "/work/shared/testdata".into(),
        ])
        .map(|d| d.join("videos/cup.mp4"))
        .find(|p| p.exists());
    match shared {
        Some(p) => out.push(p),
        None => eprintln!("shared cup.mp4 not found; set FRAMESERVER_SHARED_TESTDATA"),
    }
    if out.is_empty() {
        out.push(root.join("testdata/videos/h264_bframes.mp4"));
    }
    out
}

fn benches(c: &mut Criterion) {
    for path in clips() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let plan = floor::Plan::new(&path, CHUNK_SIZE).unwrap();
        let worst = plan.worst_chunk();
        let mut g = c.benchmark_group(format!("chunks/{name}"));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(8));

        g.bench_function("cold_chunk_0", |b| {
            b.iter(|| {
                floor::build_chunk(&path, &plan, 0, QUALITY)
                    .unwrap()
                    .zip
                    .len()
            })
        });
        g.bench_function(
            format!(
                "cold_chunk_{worst}_worst_{}_decoded",
                plan.decode_cost(worst)
            ),
            |b| {
                b.iter(|| {
                    floor::build_chunk(&path, &plan, worst, QUALITY)
                        .unwrap()
                        .zip
                        .len()
                })
            },
        );
        g.bench_function(format!("decode_only_chunk_{worst}"), |b| {
            b.iter(|| floor::decode_only(&path, &plan, worst).unwrap())
        });

        // One frame's conversion and encoding.
        let mut r = FrameReader::open(&path).unwrap();
        let frame = r.next_frame().unwrap().unwrap();
        let mut rgb = RgbConverter::new(ColorMode::Untagged);
        g.bench_function("rgb24_one_frame", |b| {
            b.iter(|| rgb.to_rgb(&frame).unwrap().2.len())
        });
        let (w, h, data) = rgb.to_rgb(&frame).unwrap();
        let raster = Raster::Rgb(RgbImage::new(w, h, data).unwrap());
        g.bench_function("jpeg_q70_one_frame", |b| {
            b.iter(|| encode_jpeg(&raster, QUALITY).unwrap().len())
        });
        // What chunks use: JPEG straight from the YUV planes (no RGB step).
        let mut enc = FrameJpegEncoder::new(QUALITY, 0.0);
        g.bench_function("frame_jpeg_q70_one_frame", |b| {
            b.iter(|| enc.encode(&frame).unwrap().len())
        });

        if plan.frames <= 300 {
            g.bench_function("sequential_all_frames", |b| {
                b.iter(|| floor::build_all(&path, &plan, QUALITY).unwrap().1)
            });
        }
        g.finish();
    }
}

criterion_group!(chunk_benches, benches);
criterion_main!(chunk_benches);
