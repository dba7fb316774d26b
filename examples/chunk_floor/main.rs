//! `chunk_floor`: the in-process floor for cold chunks and sequential playback (issue #3), used by
//! `benches/compare-chunks.sh`. See `floor.rs` for what is (and is not) measured.
//!
//! ```sh
//! cargo run --release --example chunk_floor -- VIDEO [--chunk 0 --chunk 6 | --worst] \
//!     [--warmup 1] [--reps 5] [--sequential-reps 1] [--out-dir DIR] [--manifest-out DIR]
//! ```
//!
//! Prints one tab-separated `key=value` line per measurement on stdout:
//! `plan …`, `chunk n=… decoded=… first_s=… median_s=… min_s=…`, `sequential …`.
//! With `--out-dir` the built zips are written there (`chunk_N.zip`, `seq_NNN.zip`) so the
//! script can check they are byte-identical to what the server sends.

mod floor;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;

#[derive(Parser)]
#[command(about = "In-process floor for cold chunk builds and sequential playback")]
struct Args {
    video: PathBuf,
    #[arg(long, default_value_t = 36)]
    chunk_size: u64,
    #[arg(long, default_value_t = 70)]
    quality: u8,
    /// Chunks to build cold (repeatable).
    #[arg(long = "chunk")]
    chunks: Vec<u64>,
    /// Also build the chunk whose cold build decodes the most frames.
    #[arg(long)]
    worst: bool,
    /// Repetitions per chunk.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Unmeasured builds of each chunk before the measured ones (warms the process: allocator,
    /// libraries, page cache), as a long-running server is warm.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Repetitions of the whole-video decode + encode (0: skip).
    #[arg(long, default_value_t = 0)]
    sequential_reps: usize,
    /// Only decode the chunks' frames (no RGB, no JPEG, no zip): where the time goes.
    #[arg(long)]
    decode_only: bool,
    /// Encode on the decoding thread instead of overlapping (what the overlap gains; same bytes).
    #[arg(long)]
    serial: bool,
    /// Write the built zips here.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Write the manifest used for seeking (manifest.jsonl, index.json) here.
    #[arg(long)]
    manifest_out: Option<PathBuf>,
}

fn stats(times: &[f64]) -> String {
    let mut s = times.to_vec();
    s.sort_by(f64::total_cmp);
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    format!(
        "first_s={:.6}\tmedian_s={median:.6}\tmin_s={:.6}\treps={}",
        times[0],
        s[0],
        s.len()
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    frameserver::media::init();
    let plan = floor::Plan::new(&args.video, args.chunk_size)?;
    if let Some(dir) = &args.manifest_out {
        std::fs::create_dir_all(dir)?;
        plan.manifest.write_to_dir(dir)?;
    }
    let worst = plan.worst_chunk();
    println!(
        "plan\tframes={}\tchunks={}\tkeyframes={}\tworst_chunk={worst}\tworst_decode={}",
        plan.frames,
        plan.chunks(),
        plan.keyframes.len(),
        plan.decode_cost(worst)
    );
    let mut chunks = args.chunks.clone();
    if args.worst && !chunks.contains(&worst) {
        chunks.push(worst);
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)?;
    }
    for &n in &chunks {
        anyhow::ensure!(
            n < plan.chunks(),
            "chunk {n}: the video has {} chunks",
            plan.chunks()
        );
        let (first, last) = plan.chunk_frames(n);
        if args.decode_only {
            let mut times = Vec::new();
            let mut decoded = 0;
            for _ in 0..args.warmup {
                floor::decode_only(&args.video, &plan, n)?;
            }
            for _ in 0..args.reps.max(1) {
                let t = Instant::now();
                decoded = floor::decode_only(&args.video, &plan, n)?;
                times.push(t.elapsed().as_secs_f64());
            }
            println!(
                "decode\tn={n}\tfirst={first}\tlast={last}\tdecoded={decoded}\t{}",
                stats(&times)
            );
            continue;
        }
        let mut times = Vec::with_capacity(args.reps);
        let mut out = None;
        let build = |n| {
            if args.serial {
                floor::build_chunk_serial(&args.video, &plan, n, args.quality)
            } else {
                floor::build_chunk(&args.video, &plan, n, args.quality)
            }
        };
        for _ in 0..args.warmup {
            build(n)?;
        }
        for _ in 0..args.reps.max(1) {
            let t = Instant::now();
            let built = build(n)?;
            times.push(t.elapsed().as_secs_f64());
            out = Some(built);
        }
        let built = out.expect("at least one rep");
        if let Some(dir) = &args.out_dir {
            std::fs::write(dir.join(format!("chunk_{n}.zip")), &built.zip)?;
        }
        println!(
            "chunk\tn={n}\tfirst={first}\tlast={last}\tdecoded={}\tskipped={}\tbytes={}\t{}",
            built.decoded,
            built.skipped,
            built.zip.len(),
            stats(&times)
        );
    }
    if args.sequential_reps > 0 {
        let mut times = Vec::with_capacity(args.sequential_reps);
        let mut out = None;
        for _ in 0..args.sequential_reps {
            let t = Instant::now();
            let r = floor::build_all(&args.video, &plan, args.quality)?;
            times.push(t.elapsed().as_secs_f64());
            out = Some(r);
        }
        let (zips, decoded) = out.expect("at least one rep");
        if let Some(dir) = &args.out_dir {
            for (i, z) in zips.iter().enumerate() {
                std::fs::write(dir.join(format!("seq_{i:03}.zip")), z)?;
            }
        }
        println!(
            "sequential\tframes={}\tdecoded={decoded}\tchunks={}\tbytes={}\t{}",
            plan.frames,
            zips.len(),
            zips.iter().map(Vec::len).sum::<usize>(),
            stats(&times)
        );
    }
    Ok(())
}
