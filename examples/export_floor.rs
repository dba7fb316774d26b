//! `export_floor`: the in-process floor for "export with images" of a video task (issue #5), used
//! by `benches/compare-formats.sh`: decode every frame of the video once, in order (the crate's
//! `FrameReader`, threaded decoder), convert each to RGB24 (`RgbConverter`, CVAT's conversion)
//! and encode it as PNG (`codec::encode_png`) or JPEG (`codec::encode_jpeg`, quality 95 as the
//! export uses) on all cores with rayon, overlapped with decoding. Nothing else: no zip, no
//! HTTP, no task, no annotations. The encoded bytes are counted (or written with `--out-dir`).
//!
//! ```sh
//! cargo run --release --example export_floor -- VIDEO [--format png|jpeg] [--reps 3] \
//!     [--quality 95] [--serial] [--out-dir DIR]
//! ```
//!
//! Prints one tab-separated line per repetition on stdout:
//! `floor\tformat=png\tframes=900\tseconds=…\tbytes=…\tdecode_seconds=…`
//! (`decode_seconds`: time the decoding thread spent decoding + converting, for where the time
//! goes). `--serial` encodes batches of 8 frames in parallel but does not decode meanwhile (the
//! shape of a pipeline without overlap), for comparison.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use frameserver::codec::{encode_jpeg, encode_png, Raster, RgbImage};
use frameserver::media::{ColorMode, FrameReader, RgbConverter};
use rayon::prelude::*;

#[derive(Parser)]
#[command(about = "Floor of a video export with images: decode every frame + encode PNG/JPEG")]
struct Args {
    video: PathBuf,
    /// png or jpeg
    #[arg(long, default_value = "png")]
    format: String,
    /// JPEG quality (the export uses 95)
    #[arg(long, default_value_t = 95)]
    quality: u8,
    #[arg(long, default_value_t = 1)]
    reps: usize,
    /// Decode, then encode each batch of 8 in parallel, without overlapping the two.
    #[arg(long)]
    serial: bool,
    /// Write the encoded frames here as frame_NNNNNN.{png,jpg}.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

fn encode(r: &Raster, jpeg: bool, quality: u8) -> Result<Vec<u8>> {
    Ok(if jpeg {
        encode_jpeg(r, quality)?
    } else {
        encode_png(r)?
    })
}

struct Run {
    frames: u64,
    bytes: u64,
    seconds: f64,
    decode_seconds: f64,
}

fn run(args: &Args, jpeg: bool) -> Result<Run> {
    let t0 = Instant::now();
    // Serial: a rendezvous channel, so the decoder waits while a batch is being encoded.
    let (tx, rx) = sync_channel::<(u64, Raster)>(if args.serial { 0 } else { 16 });
    let path = args.video.clone();
    let decoder = std::thread::spawn(move || -> Result<Duration> {
        let mut reader = FrameReader::open(&path)?;
        let mut rgb = RgbConverter::new(ColorMode::Untagged);
        let mut busy = Duration::ZERO;
        let mut n = 0u64;
        loop {
            let t = Instant::now();
            let Some(frame) = reader.next_frame()? else {
                break;
            };
            let (w, h, data) = rgb.to_rgb(&frame)?;
            busy += t.elapsed();
            if tx
                .send((n, Raster::Rgb(RgbImage::new(w, h, data)?)))
                .is_err()
            {
                break;
            }
            n += 1;
        }
        Ok(busy)
    });
    let write = |n: u64, bytes: &[u8]| -> Result<()> {
        if let Some(dir) = &args.out_dir {
            let ext = if jpeg { "jpg" } else { "png" };
            std::fs::write(dir.join(format!("frame_{n:06}.{ext}")), bytes)?;
        }
        Ok(())
    };
    let (frames, bytes) = if args.serial {
        // Batches of 8, encoded in parallel, the decoder blocked meanwhile.
        let mut frames = 0u64;
        let mut bytes = 0u64;
        let mut batch = Vec::with_capacity(8);
        let mut it = rx.into_iter();
        loop {
            batch.clear();
            batch.extend(it.by_ref().take(8));
            if batch.is_empty() {
                break;
            }
            let out: Vec<Result<(u64, Vec<u8>)>> = batch
                .par_iter()
                .map(|(n, r)| Ok((*n, encode(r, jpeg, args.quality)?)))
                .collect();
            for o in out {
                let (n, b) = o?;
                write(n, &b)?;
                frames += 1;
                bytes += b.len() as u64;
            }
        }
        (frames, bytes)
    } else {
        let out: Vec<Result<u64>> = rx
            .into_iter()
            .par_bridge()
            .map(|(n, r)| {
                let b = encode(&r, jpeg, args.quality)?;
                write(n, &b)?;
                Ok(b.len() as u64)
            })
            .collect();
        let mut bytes = 0u64;
        for o in &out {
            bytes += *o.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        (out.len() as u64, bytes)
    };
    let busy = decoder
        .join()
        .map_err(|_| anyhow::anyhow!("decoder thread panicked"))??;
    Ok(Run {
        frames,
        bytes,
        seconds: t0.elapsed().as_secs_f64(),
        decode_seconds: busy.as_secs_f64(),
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let jpeg = match args.format.to_ascii_lowercase().as_str() {
        "png" => false,
        "jpeg" | "jpg" => true,
        other => bail!("--format must be png or jpeg, not {other}"),
    };
    if let Some(d) = &args.out_dir {
        std::fs::create_dir_all(d)?;
    }
    frameserver::media::init();
    for _ in 0..args.reps.max(1) {
        let r = run(&args, jpeg)?;
        println!(
            "floor\tformat={}\tframes={}\tseconds={:.3}\tbytes={}\tdecode_seconds={:.3}\tserial={}",
            if jpeg { "jpeg" } else { "png" },
            r.frames,
            r.seconds,
            r.bytes,
            r.decode_seconds,
            args.serial
        );
    }
    Ok(())
}
