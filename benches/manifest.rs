//! Criterion benches of the manifest path: demux-only scan (the floor), one key frame decoded
//! alone + RGB24 + md5 (the per-key-frame cost), and the whole `index_video`.
//!
//! Uses `target/bench-media/h264_1080p_gop250.mp4` (make it with
//! `testdata/generate.sh --bench target/bench-media`); falls back to a small committed clip.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use frameserver::manifest::{self, VideoOptions};
use frameserver::media::{ColorMode, KeyframeDecoder, PacketInfo, RgbConverter, VideoSource};

fn clip() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let big = root.join("target/bench-media/h264_1080p_gop250.mp4");
    if big.exists() {
        big
    } else {
        eprintln!("bench clip missing: run testdata/generate.sh --bench target/bench-media; using a small clip");
        root.join("testdata/videos/h264_bframes.mp4")
    }
}

fn benches(c: &mut Criterion) {
    let path = clip();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut g = c.benchmark_group(name);
    g.sample_size(10);

    g.bench_function("demux_scan", |b| {
        b.iter(|| {
            let mut src = VideoSource::open(&path).unwrap();
            let mut n = 0usize;
            src.scan_packets(|_, _| n += 1).unwrap();
            n
        })
    });

    // The first key frame's payload, decoded alone, converted and hashed.
    let mut src = VideoSource::open(&path).unwrap();
    let mut key: Option<(PacketInfo, Vec<u8>)> = None;
    src.scan_packets(|p, d| {
        if p.key && key.is_none() {
            key = Some((*p, d.to_vec()));
        }
    })
    .unwrap();
    let (info, data) = key.expect("a key frame");
    let mut decoder = KeyframeDecoder::new(&src).unwrap();
    let mut rgb = RgbConverter::new(ColorMode::Untagged);
    g.bench_function("keyframe_decode_rgb_md5", |b| {
        b.iter(|| {
            let f = decoder.decode(&info, &data).unwrap().unwrap();
            rgb.md5_hex(&f).unwrap()
        })
    });

    g.bench_function("index_video", |b| {
        let opts = VideoOptions {
            force: true,
            ..Default::default()
        };
        b.iter(|| manifest::index_video(&path, &opts, &|_| {}).unwrap())
    });
    g.finish();
}

criterion_group!(manifest_benches, benches);
criterion_main!(manifest_benches);
