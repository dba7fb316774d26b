//! The fast indexer must give what decoding every frame gives (CVAT's method): the same frame
//! count, and at each manifest key frame the same pts and checksum. Checked on every test video,
//! including ones CVAT itself rejects; plus frame-accurate reading after a seek to each key frame.

mod common;

use std::path::Path;

use frameserver::manifest::{self, Manifest, ManifestError, VideoIndex, VideoOptions};
use frameserver::media::{ColorMode, FrameReader, RgbConverter};

/// (pts, md5) of every frame in decoder output order.
fn decode_all(path: &Path) -> Vec<(Option<i64>, String)> {
    let mut reader = FrameReader::open(path).unwrap();
    let mut rgb = RgbConverter::new(ColorMode::Untagged);
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        out.push((f.pts(), rgb.md5_hex(&f).unwrap()));
    }
    out
}

/// The video's manifest, made as `manifest create --force` makes it.
fn index_forced(video: &Path) -> Result<VideoIndex, ManifestError> {
    let opts = VideoOptions {
        force: true,
        ..Default::default()
    };
    manifest::index_video(video, &opts, &|_| {})
}

#[test]
fn manifest_matches_full_sequential_decoding_on_every_video() {
    let mut checked = 0;
    for video in common::all_videos() {
        let name = video.file_name().unwrap().to_string_lossy().into_owned();
        let index = match index_forced(&video) {
            Ok(i) => i,
            Err(e) => {
                // Only the AVI with packed B-frames and no pts is refused, with a remux hint.
                assert_eq!(name, "Megamind.avi", "{name}: {e}");
                assert!(e.to_string().contains("ffmpeg -fflags +genpts"), "{e}");
                continue;
            }
        };
        let Manifest::Video {
            properties,
            keyframes,
        } = &index.manifest
        else {
            unreachable!()
        };
        let frames = decode_all(&video);
        assert_eq!(
            properties.length as usize,
            frames.len(),
            "{name}: frame count"
        );
        for k in keyframes {
            let (pts, md5) = &frames[k.number as usize];
            assert_eq!(*pts, Some(k.pts), "{name}: pts of frame {}", k.number);
            assert_eq!(md5, &k.checksum, "{name}: checksum of frame {}", k.number);
        }
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} videos checked");
}

#[test]
fn seeking_to_each_key_frame_then_decoding_is_frame_accurate() {
    for video in common::all_videos() {
        let name = video.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(index) = index_forced(&video) else {
            continue;
        };
        let Manifest::Video { keyframes, .. } = &index.manifest else {
            unreachable!()
        };
        let frames = decode_all(&video);
        let mut reader = FrameReader::open(&video).unwrap();
        let mut rgb = RgbConverter::new(ColorMode::Untagged);
        for k in keyframes {
            reader.seek(k.pts).unwrap();
            // Skip leading frames from before the key frame (open GOPs), then the next 10
            // frames must be frames number.. of the sequential decode, pixel for pixel.
            let mut n = k.number as usize;
            let mut compared = 0;
            while compared < 10 && n < frames.len() {
                let f = reader
                    .next_frame()
                    .unwrap()
                    .unwrap_or_else(|| panic!("{name}: EOF after seek"));
                if f.pts().is_some_and(|p| p < k.pts) {
                    continue;
                }
                assert_eq!(
                    f.pts(),
                    frames[n].0,
                    "{name}: frame {n} after seeking to {}",
                    k.number
                );
                assert_eq!(
                    rgb.md5_hex(&f).unwrap(),
                    frames[n].1,
                    "{name}: pixels of frame {n}"
                );
                n += 1;
                compared += 1;
            }
        }
    }
}

/// Chunks built cold (a seek to the key frame, then non-reference frames between it and the
/// first wanted frame skipped, frames numbered by pts rank) give exactly the frames of a full
/// sequential decode, on every video: for small videos with every frame as the first wanted
/// one, for the 1080p bench clip (when generated) at a few chunks. Skipping must actually
/// happen on the videos with B-frames; videos whose timestamps cannot prove the numbering
/// (vfr.mkv: packets without dts) fall back to decoding every frame, and must be exact too.
#[test]
fn skipping_non_reference_frames_before_a_chunk_keeps_every_frame_exact() {
    use std::sync::atomic::Ordering;

    use frameserver::frames::{self, DecoderPool, FrameError, SeekTable, FRAMES_SKIPPED};

    let mut videos = common::all_videos();
    let bench =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-media/h264_1080p_gop250.mp4");
    if bench.exists() {
        videos.push(bench);
    } else {
        eprintln!("(the 1080p bench clip is not generated: testdata/generate.sh --bench target/bench-media)");
    }
    let must_skip = [
        "h264_bframes.mp4",
        "open_gop.mp4",
        "hevc.mp4",
        "hevc_closed_gop.mp4",
        "gop_long.mp4",
        "single_keyframe.mp4",
        "h264_1080p_gop250.mp4",
    ];
    let dir = tempfile::tempdir().unwrap();
    for video in videos {
        let name = video.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(index) = index_forced(&video) else {
            continue;
        };
        let manifest_dir = dir.path().join(&name);
        std::fs::create_dir_all(&manifest_dir).unwrap();
        let seek =
            SeekTable::from_manifest(&index.manifest.write_to_dir(&manifest_dir).unwrap()).unwrap();
        let frames = decode_all(&video);
        let starts: Vec<usize> = if frames.len() > 300 {
            [1, 6, 7, 13, 20, 24]
                .iter()
                .map(|c| c * 36)
                .filter(|&s| s < frames.len())
                .collect()
        } else {
            (0..frames.len()).collect()
        };
        let skipped_before = FRAMES_SKIPPED.load(Ordering::Relaxed);
        let mut rgb = RgbConverter::new(ColorMode::Untagged);
        for s in starts {
            let wanted: Vec<u64> = (s..frames.len().min(s + 3)).map(|n| n as u64).collect();
            // No reader is kept: every build seeks.
            let pool = DecoderPool::new(0);
            let mut got = Vec::new();
            frames::decode_frames::<FrameError>(&video, &seek, &pool, (1, 1), &wanted, |n, f| {
                assert_eq!(
                    (f.pts(), rgb.md5_hex(&f).unwrap()),
                    frames[n as usize],
                    "{name}: frame {n} of a build from frame {s}"
                );
                got.push(n);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: build from frame {s}: {e}"));
            assert_eq!(got, wanted, "{name}: frames of a build from frame {s}");
        }
        let skipped = FRAMES_SKIPPED.load(Ordering::Relaxed) - skipped_before;
        eprintln!("{name}: {skipped} frames skipped");
        if must_skip.contains(&name.as_str()) {
            assert!(skipped > 0, "{name}: no frame was skipped");
        }
    }
}
