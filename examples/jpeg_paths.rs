//! `jpeg_paths`: how far the JPEGs of compressed chunks (`codec::FrameJpegEncoder`, straight from
//! the YUV planes when it can) are from the RGB path (CVAT's swscale conversion, then
//! `encode_jpeg`), and from the swscale RGB of the frame itself.
//!
//! ```sh
//! cargo run --release --example jpeg_paths -- VIDEO... [--frames 72] [--quality 70]
//! ```
//!
//! Prints one tab-separated line per video: frames compared, then for "new vs rgb-path",
//! "new vs source" and "rgb-path vs source" the mean absolute difference per channel and the
//! largest one, and the total JPEG bytes of each path. JPEGs are decoded with libjpeg-turbo.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use frameserver::codec::{encode_jpeg, FrameJpegEncoder, Raster, RgbImage};
use frameserver::media::{ColorMode, FrameReader, RgbConverter};

#[derive(Parser)]
#[command(about = "Compare the chunk JPEG pixel path with the RGB path")]
struct Args {
    videos: Vec<PathBuf>,
    /// Frames compared per video, from the start.
    #[arg(long, default_value_t = 72)]
    frames: usize,
    #[arg(long, default_value_t = 70)]
    quality: u8,
}

#[derive(Default)]
struct Diff {
    sum: u64,
    n: u64,
    max: u8,
}

impl Diff {
    fn add(&mut self, a: &[u8], b: &[u8]) {
        assert_eq!(a.len(), b.len());
        for (&x, &y) in a.iter().zip(b) {
            let d = x.abs_diff(y);
            self.sum += d as u64;
            self.max = self.max.max(d);
        }
        self.n += a.len() as u64;
    }

    fn show(&self) -> String {
        format!(
            "mae={:.3}\tmax={}",
            self.sum as f64 / self.n.max(1) as f64,
            self.max
        )
    }
}

fn decode(jpeg: &[u8]) -> Result<Vec<u8>> {
    Ok(turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB)?.pixels)
}

fn main() -> Result<()> {
    let args = Args::parse();
    frameserver::media::init();
    for video in &args.videos {
        let mut reader =
            FrameReader::open(video).with_context(|| format!("opening {}", video.display()))?;
        let mut rgb = RgbConverter::new(ColorMode::Untagged);
        let mut enc = FrameJpegEncoder::new(args.quality, 0.0);
        let (mut new_rgb, mut new_src, mut rgb_src) =
            (Diff::default(), Diff::default(), Diff::default());
        let (mut bytes_new, mut bytes_rgb, mut n) = (0usize, 0usize, 0usize);
        while n < args.frames {
            let Some(frame) = reader.next_frame()? else {
                break;
            };
            let new = enc.encode(&frame)?;
            let (w, h, source) = rgb.to_rgb(&frame)?;
            let old = encode_jpeg(
                &Raster::Rgb(RgbImage::new(w, h, source.clone())?),
                args.quality,
            )?;
            let (new_px, old_px) = (decode(&new)?, decode(&old)?);
            new_rgb.add(&new_px, &old_px);
            new_src.add(&new_px, &source);
            rgb_src.add(&old_px, &source);
            bytes_new += new.len();
            bytes_rgb += old.len();
            n += 1;
        }
        println!(
            "{}\tframes={n}\tnew_vs_rgbpath:\t{}\tnew_vs_source:\t{}\trgbpath_vs_source:\t{}\tbytes_new={bytes_new}\tbytes_rgbpath={bytes_rgb}",
            video.file_name().unwrap_or_default().to_string_lossy(),
            new_rgb.show(),
            new_src.show(),
            rgb_src.show(),
        );
    }
    Ok(())
}
