//! `memory_floor`: what a video decoder and an MP4 chunk encoder hold, measured with VmRSS, to
//! calibrate the memory budget's estimates (`media::decoder_memory`, `chunks::build_memory`).
//!
//! ```sh
//! cargo run --example memory_floor -- VIDEO
//! ```
//!
//! Large buffers are mmapped and returned on free (as the server tunes glibc), so RSS deltas are
//! what the codecs hold. Prints one line per step: the RSS delta and the estimate.

use frameserver::codec::Mp4Encoder;
use frameserver::media::FrameReader;

fn rss() -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<i64>()
        .unwrap()
        * 1024
}

fn mib(b: i64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn main() {
    frameserver::budget::tune_allocator();
    let path = std::env::args().nth(1).expect("VIDEO");
    let path = std::path::Path::new(&path);
    let base = rss();
    let mut readers = Vec::new();
    for i in 0..3 {
        let before = rss();
        let mut r = FrameReader::open(path).unwrap();
        let (mut w, mut h) = (0, 0);
        for _ in 0..36 {
            // Each frame is handed on and dropped, as builds do.
            let f = r.next_frame().unwrap().unwrap();
            (w, h) = (f.width(), f.height());
        }
        let est = r.memory_estimate();
        println!(
            "decoder {i}: {w}x{h} open after 36 frames: +{} (estimate {})",
            mib(rss() - before),
            mib(est as i64)
        );
        readers.push(r);
    }
    for (compressed, quality) in [(true, 70), (false, 100)] {
        let r = &mut readers[0];
        let before = rss();
        let mut enc: Option<Mp4Encoder> = None;
        let mut peak = 0;
        for _ in 0..36 {
            let f = r.next_frame().unwrap().unwrap();
            let e = enc.get_or_insert_with(|| {
                Mp4Encoder::new(f.width(), f.height(), quality, compressed).unwrap()
            });
            e.push_decoded(&f).unwrap();
            peak = peak.max(rss() - before);
        }
        let out = enc.unwrap().finish().unwrap();
        println!(
            "mp4 chunk compressed={compressed}: peak +{} while encoding 36 frames, output {}",
            mib(peak),
            mib(out.len() as i64)
        );
    }
    drop(readers);
    println!("after closing: +{}", mib(rss() - base));
}
