use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::media::{ColorMode, FrameReader, RgbConverter};

#[test]
fn quality_to_qp() {
    let cases = [
        (100, 0),
        (70, 15),
        (75, 13),
        (80, 10),
        (50, 26),
        (67, 17),
        (1, 51),
        (0, 51),
        (255, 0),
    ];
    for (q, qp) in cases {
        assert_eq!(qp_from_quality(q), qp, "quality {q}");
    }
    // Agrees with round(51 * (100 - q) / 99) everywhere.
    for q in 1..=100u8 {
        let exact = (51.0 * (100.0 - q as f64) / 99.0).round() as u8;
        assert_eq!(qp_from_quality(q), exact, "quality {q}");
    }
}

#[test]
fn video_sizes() {
    assert_eq!(chunk_video_size(1920, 1080, true), (960, 540));
    assert_eq!(chunk_video_size(3840, 2160, true), (960, 540));
    assert_eq!(chunk_video_size(2560, 1440, true), (1280, 720));
    assert_eq!(chunk_video_size(1280, 720, true), (1280, 720));
    assert_eq!(chunk_video_size(801, 601, true), (802, 602));
    assert_eq!(chunk_video_size(801, 601, false), (802, 602));
    assert_eq!(chunk_video_size(1920, 1080, false), (1920, 1080));
    assert_eq!(chunk_video_size(1919, 1079, true), (1920, 1080));
    assert_eq!(chunk_video_size(1921, 2161, true), (480, 540));
    assert_eq!(chunk_video_size(1, 4000, true), (2, 1000));
    assert_eq!(chunk_video_size(u32::MAX, u32::MAX, true), (1024, 1024));
}

#[test]
fn too_large_is_rejected_with_cvats_message() {
    let err = Mp4Encoder::new(4096, 2305, 100, false)
        .err()
        .expect("too large");
    assert_eq!(
        err.to_string(),
        "The video codec being used does not support such high video resolution, refer \
         https://github.com/cvat-ai/cvat/issues/7425"
    );
    // 4096 x 2304 is exactly the limit; compressed chunks are downscaled below it.
    assert!(Mp4Encoder::new(4096, 2304, 100, false).is_ok());
    assert!(Mp4Encoder::new(8192, 4608, 70, true).is_ok());
    assert!(Mp4Encoder::new(0, 10, 70, true).is_err());
}

#[test]
fn no_frames_is_an_error() {
    let enc = Mp4Encoder::new(64, 48, 70, false).unwrap();
    assert!(matches!(enc.finish(), Err(CodecError::NoFrames)));
}

#[test]
fn encoder_is_send() {
    fn is_send<T: Send>() {}
    is_send::<Mp4Encoder>();
}

/// A smooth, linear pattern sampled at pixel centres, moving with `t`: bilinear rescaling of a
/// linear function is (almost) exact, so the expected frame at any size is the same formula.
fn pattern(w: u32, h: u32, t: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let u = (x as f64 + 0.5) / w as f64;
            let v = (y as f64 + 0.5) / h as f64;
            data.extend([
                (20.0 + 200.0 * u) as u8,
                (30.0 + 180.0 * v) as u8,
                (40.0 + 100.0 * (u + v) / 2.0 + 10.0 * t as f64) as u8,
            ]);
        }
    }
    RgbImage::new(w, h, data).unwrap()
}

fn mean_abs_error(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    sum as f64 / a.len() as f64
}

/// Writes `bytes` to a unique temp file, removed on drop.
struct TempMp4(PathBuf);

impl TempMp4 {
    fn new(bytes: &[u8], tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "frameserver-codec-test-{}-{tag}.mp4",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        TempMp4(path)
    }
}

impl Drop for TempMp4 {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=codec_name,profile,width,height,pix_fmt,has_b_frames,nb_read_frames,time_base,r_frame_rate:format=format_name"])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_stream(path: &Path, w: u32, h: u32, frames: usize) {
    let probe = ffprobe(path);
    let s = &probe["streams"][0];
    assert_eq!(s["codec_name"], "h264", "{probe}");
    assert_eq!(s["profile"], "Constrained Baseline", "{probe}");
    assert_eq!(s["has_b_frames"], 0, "{probe}");
    assert_eq!(s["pix_fmt"], "yuv420p", "{probe}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(w as u64), Some(h as u64))
    );
    assert_eq!(s["nb_read_frames"], frames.to_string(), "{probe}");
    assert_eq!(s["r_frame_rate"], "25/1", "{probe}");
    assert_eq!(s["time_base"], "1/12800", "{probe}");
    assert!(probe["format"]["format_name"]
        .as_str()
        .unwrap()
        .contains("mp4"));
}

/// A decoded frame as (width, height, packed RGB24).
type RgbFrame = (u32, u32, Vec<u8>);

/// Decodes every frame of an MP4 to RGB24.
fn decode_all(path: &Path) -> Vec<RgbFrame> {
    let mut reader = FrameReader::open(path).unwrap();
    let mut conv = RgbConverter::new(ColorMode::Untagged);
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        frames.push(conv.to_rgb(&f).unwrap());
    }
    frames
}

fn pts_list(path: &Path) -> Vec<i64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

#[test]
fn rgb_frames_encode_to_constrained_baseline() {
    for (w, h) in [(64u32, 48u32), (65, 49)] {
        for quality in [70u8, 100] {
            let mut enc = Mp4Encoder::new(w, h, quality, false).unwrap();
            let (ow, oh) = enc.output_size();
            assert_eq!((ow, oh), (w + w % 2, h + h % 2));
            for t in 0..10 {
                enc.push_rgb(&pattern(w, h, t)).unwrap();
            }
            assert_eq!(enc.frame_count(), 10);
            let bytes = enc.finish().unwrap();
            assert_eq!(&bytes[4..12], b"ftypisom");
            // moov after mdat, as in CVAT's chunks.
            let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
            assert!(find(b"mdat") < find(b"moov"));

            let file = TempMp4::new(&bytes, &format!("rgb-{w}x{h}-q{quality}"));
            check_stream(&file.0, ow, oh, 10);
            let pts = pts_list(&file.0);
            assert_eq!(pts, (0..10).map(|i| i * 512).collect::<Vec<_>>());

            let frames = decode_all(&file.0);
            assert_eq!(frames.len(), 10);
            let limit = if quality == 100 { 2.5 } else { 4.0 };
            for (t, (fw, fh, rgb)) in frames.iter().enumerate() {
                assert_eq!((*fw, *fh), (ow, oh));
                let mae = mean_abs_error(rgb, pattern(ow, oh, t as u32).data());
                assert!(mae < limit, "{w}x{h} q{quality} frame {t}: mae {mae}");
            }
        }
    }
}

#[test]
fn qp_follows_quality() {
    // Lower quality → higher QP → smaller file, for the same (noisy) content.
    let noisy = |t: u32| {
        let data = (0..96 * 64 * 3u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(t * 7919) >> 24) as u8)
            .collect();
        RgbImage::new(96, 64, data).unwrap()
    };
    let size = |q| {
        let mut enc = Mp4Encoder::new(96, 64, q, true).unwrap();
        for t in 0..3 {
            enc.push_rgb(&noisy(t)).unwrap();
        }
        enc.finish().unwrap().len()
    };
    let (s100, s70, s10) = (size(100), size(70), size(10));
    assert!(s100 > s70 && s70 > s10, "{s100} {s70} {s10}");
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/videos")
        .join(name)
}

/// Encodes the first `n` frames of `source` with `push_decoded` into an encoder configured for
/// `src_size`, returns (MP4 bytes, the source frames as RGB).
fn reencode(
    source: &str,
    n: usize,
    src_size: Option<(u32, u32)>,
    quality: u8,
) -> (Vec<u8>, Vec<RgbFrame>, (u32, u32)) {
    let mut reader = FrameReader::open(&testdata(source)).unwrap();
    let mut conv = RgbConverter::new(ColorMode::Untagged);
    let mut enc = None;
    let mut originals = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        let (w, h) = src_size.unwrap_or((frame.width(), frame.height()));
        let enc = enc.get_or_insert_with(|| Mp4Encoder::new(w, h, quality, false).unwrap());
        enc.push_decoded(&frame).unwrap();
        originals.push(conv.to_rgb(&frame).unwrap());
        if originals.len() == n {
            break;
        }
    }
    let enc = enc.unwrap();
    let size = enc.output_size();
    (enc.finish().unwrap(), originals, size)
}

#[test]
fn decoded_frames_pass_through() {
    // 320x240 yuv420p with B-frames: the frames go to the encoder without conversion.
    let (bytes, originals, (w, h)) = reencode("h264_bframes.mp4", 30, None, 100);
    assert_eq!((w, h), (320, 240));
    let file = TempMp4::new(&bytes, "decoded");
    check_stream(&file.0, w, h, 30);
    let frames = decode_all(&file.0);
    assert_eq!(frames.len(), 30);
    for (i, ((_, _, a), (_, _, b))) in frames.iter().zip(&originals).enumerate() {
        let mae = mean_abs_error(a, b);
        assert!(mae < 1.5, "frame {i}: mae {mae}");
    }
}

#[test]
fn decoded_frames_are_converted_and_rescaled() {
    // yuvj420p (full range) goes through swscale; the RGB the UI sees must match the source's.
    let (bytes, originals, (w, h)) = reencode("fullrange.mp4", 12, None, 100);
    let file = TempMp4::new(&bytes, "fullrange");
    check_stream(&file.0, w, h, 12);
    let frames = decode_all(&file.0);
    for (i, ((_, _, a), (_, _, b))) in frames.iter().zip(&originals).enumerate() {
        let mae = mean_abs_error(a, b);
        assert!(mae < 3.0, "frame {i}: mae {mae}");
    }

    // An encoder set up for 161x121 rescales the 320x240 frames to 162x122.
    let (bytes, originals, (w, h)) = reencode("h264_bframes.mp4", 8, Some((161, 121)), 70);
    assert_eq!((w, h), (162, 122));
    let file = TempMp4::new(&bytes, "rescaled");
    check_stream(&file.0, 162, 122, 8);
    let frames = decode_all(&file.0);
    let mean = |d: &[u8]| d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
    for ((_, _, a), (_, _, b)) in frames.iter().zip(&originals) {
        assert!((mean(a) - mean(b)).abs() < 3.0);
    }
}

#[test]
fn frames_of_other_sizes_are_rescaled() {
    let mut enc = Mp4Encoder::new(64, 48, 90, false).unwrap();
    for (w, h) in [(64, 48), (128, 96), (33, 17), (64, 48)] {
        enc.push_rgb(&pattern(w, h, 0)).unwrap();
    }
    let file = TempMp4::new(&enc.finish().unwrap(), "mixed");
    check_stream(&file.0, 64, 48, 4);
    for (i, (_, _, rgb)) in decode_all(&file.0).iter().enumerate() {
        let mae = mean_abs_error(rgb, pattern(64, 48, 0).data());
        assert!(mae < 4.0, "frame {i}: mae {mae}");
    }

    // The smallest possible chunk: a 1x1 source becomes a 2x2 video.
    let mut enc = Mp4Encoder::new(1, 1, 70, true).unwrap();
    assert_eq!(enc.output_size(), (2, 2));
    enc.push_rgb(&RgbImage::new(1, 1, vec![200, 100, 50]).unwrap())
        .unwrap();
    let file = TempMp4::new(&enc.finish().unwrap(), "tiny");
    check_stream(&file.0, 2, 2, 1);
}
