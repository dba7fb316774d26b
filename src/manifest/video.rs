//! Video manifests, the fast way (spec §3.7): demux every packet without decoding, number the
//! frames by presentation order, decode only the key-frame packets (in parallel, while demuxing
//! goes on) for their checksums, and check with a cheap demux-level seek that each key frame is
//! reachable the way CVAT's relaxed validation (spec §3.3) would find it.
//!
//! The result is the same `length` and the same `(number, pts, checksum)` lines as CVAT's
//! decode-everything generator on every video CVAT accepts, at close to demux speed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};

use super::model::{Chapter, KeyFrame, Manifest, VideoProperties};
use super::ManifestError;
use crate::media::{
    self, ColorMode, KeyframeDecoder, MediaError, PacketInfo, PictureType, RgbConverter, VideoInfo,
    VideoSource,
};

/// CVAT's bound on frames decoded forward after a seek (`SEEK_MISMATCH_UPPER_BOUND`).
pub const SEEK_MISMATCH_UPPER_BOUND: u64 = 200;
/// CVAT's CLI chunk size, used by the key-frame ratio rule.
pub const DEFAULT_CHUNK_SIZE: usize = 36;

/// Options for indexing a video.
#[derive(Debug, Clone, Copy)]
pub struct VideoOptions {
    /// Chunk size for the "not enough key frames" rule (`frames // keyframes >= 3*chunk_size+1`).
    pub chunk_size: usize,
    /// Lift the "not enough key frames" rule (only that rule).
    pub force: bool,
    /// Colour handling of the RGB conversion behind checksums.
    pub color: ColorMode,
    /// Key-frame decoding threads (0 = one per core).
    pub workers: usize,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            force: false,
            color: ColorMode::Untagged,
            workers: 0,
        }
    }
}

/// Progress of a long indexing run.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Demuxing: bytes read so far out of the file size.
    Demux { bytes: u64, total: u64 },
    /// Seek checks: key frames checked so far out of all.
    Seek { done: u64, total: u64 },
}

/// Where frame timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    /// Packet pts (every file CVAT accepts).
    Pts,
    /// Packet dts, for containers without pts and without frame reordering.
    Dts,
}

/// Why a key-frame packet did not make it into the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The packet decodes to no frame on its own.
    Undecodable,
    /// The decoder does not flag the decoded frame as a key frame.
    NotKeyFrame,
    /// Seeking to its pts fails.
    SeekFailed(String),
    /// Seeking lands where the previous kept key frame's seek landed.
    SameLanding,
    /// Seeking lands `frames` frames before it (more than CVAT decodes forward) or after it.
    Unreachable { landing_number: Option<u64> },
}

/// A rejected key-frame packet.
#[derive(Debug, Clone)]
pub struct RejectedKeyFrame {
    pub number: u64,
    pub pts: i64,
    pub why: Rejection,
}

/// What indexing found, beyond the manifest.
#[derive(Debug, Clone)]
pub struct IndexReport {
    pub info: VideoInfo,
    /// Video packets demuxed (including ones that show no frame).
    pub packets: usize,
    /// Packets flagged as key frames.
    pub key_packets: usize,
    pub timestamps: TimestampSource,
    pub rejected: Vec<RejectedKeyFrame>,
    /// Largest distance in frames between consecutive manifest key frames (or to the end).
    pub largest_gop: u64,
    /// Things a user should know (e.g. what CVAT would do differently).
    pub warnings: Vec<String>,
}

/// A video manifest with its report.
#[derive(Debug, Clone)]
pub struct VideoIndex {
    pub manifest: Manifest,
    pub report: IndexReport,
}

/// Result of decoding one key-frame packet.
#[derive(Debug, Clone)]
struct KeyDecode {
    checksum: String,
    is_key: bool,
    picture: PictureType,
    width: u32,
    height: u32,
}

/// Builds a CVAT-compatible video manifest for `path`.
pub fn index_video(
    path: &Path,
    opts: &VideoOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<VideoIndex, ManifestError> {
    let mut source = VideoSource::open_for_indexing(path)?;
    let info = source.info().clone();
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let (packets, decodes) = demux_and_decode_keys(&mut source, opts, total, progress)?;
    check_complete(path, &info, &packets, total)?;

    let mut warnings = Vec::new();
    let timestamps = choose_timestamps(path, &info, &packets)?;
    let ts = |p: &PacketInfo| match timestamps {
        TimestampSource::Pts => p.pts.expect("checked by choose_timestamps"),
        TimestampSource::Dts => p.dts.expect("checked by choose_timestamps"),
    };

    // Frames are packets that show a picture, numbered by presentation order. Packets before the
    // first key packet (in decode order) cannot be decoded by anyone and are not frames.
    let first_key =
        packets
            .iter()
            .position(|p| p.key)
            .ok_or_else(|| ManifestError::InvalidVideo {
                path: path.to_owned(),
                reason: "the video has no key frames at all, so no frame can be decoded".into(),
            })?;
    if first_key > 0 {
        warnings.push(format!(
            "{first_key} packet(s) before the first key frame cannot be decoded and are not counted as frames"
        ));
    }
    let mut order: Vec<usize> = (first_key..packets.len())
        .filter(|&i| !packets[i].discard)
        .collect();
    order.sort_by_key(|&i| (ts(&packets[i]), i));
    let mut rank = vec![u64::MAX; packets.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as u64;
    }
    let length = order.len() as u64;
    if order
        .windows(2)
        .any(|w| ts(&packets[w[0]]) == ts(&packets[w[1]]))
    {
        warnings.push(
            "some frames share a timestamp: CVAT rejects such files (\"non-increasing PTS\"); frames with equal \
             timestamps are numbered in file order"
                .into(),
        );
    }

    // Key-frame candidates, in presentation order.
    let mut key_idx = 0usize;
    let mut candidates: Vec<(usize, Option<KeyDecode>)> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        if p.key {
            let d = decodes[key_idx].clone();
            key_idx += 1;
            if rank[i] != u64::MAX {
                candidates.push((i, d));
            }
        }
    }
    candidates.sort_by_key(|(i, _)| rank[*i]);

    let first_frame = candidates.first().and_then(|(_, d)| d.as_ref());
    if let Some(d) = first_frame {
        if d.picture != PictureType::I {
            warnings.push(format!(
                "the first frame is not typed as an I-frame ({:?}): CVAT rejects this file (\"The first frame is not a key frame\")",
                d.picture
            ));
        }
    }
    let (width, height) = first_frame
        .map(|d| (d.width, d.height))
        .unwrap_or((info.width, info.height));
    let resolution = media::rotated_size(width, height, info.rotation);

    // Seek checks. CVAT validates on a second container while it decodes on the first; our
    // demux pass is over, so the same demuxer serves (one open and stream probe fewer).
    let checker = &mut source;
    // Seeks land on key packets: index only those by position (a map of every packet would
    // cost tens of MB on long videos); anything else is found by a scan.
    let by_pos: HashMap<i64, usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.pos >= 0 && p.key)
        .map(|(i, p)| (p.pos, i))
        .collect();
    let mut keyframes = Vec::new();
    let mut rejected = Vec::new();
    let mut prev_landing: Option<usize> = None;
    let n_candidates = candidates.len() as u64;
    for (done, (i, decode)) in candidates.into_iter().enumerate() {
        progress(Progress::Seek {
            done: done as u64,
            total: n_candidates,
        });
        let p = &packets[i];
        let number = rank[i];
        let pts = ts(p);
        let reject = |why| RejectedKeyFrame { number, pts, why };
        let Some(decode) = decode else {
            rejected.push(reject(Rejection::Undecodable));
            continue;
        };
        if !decode.is_key {
            rejected.push(reject(Rejection::NotKeyFrame));
            continue;
        }
        let landing = match seek_landing(checker, pts, &packets, &by_pos) {
            Ok(l) => l,
            Err(e) => {
                rejected.push(reject(Rejection::SeekFailed(e.to_string())));
                continue;
            }
        };
        let Some(landing) = landing else {
            rejected.push(reject(Rejection::Unreachable {
                landing_number: None,
            }));
            continue;
        };
        if prev_landing == Some(landing) {
            rejected.push(reject(Rejection::SameLanding));
            continue;
        }
        // CVAT decodes forward from the landing until it reaches the target's pts, for at most
        // SEEK_MISMATCH_UPPER_BOUND frames. Intra frames decode the same from any entry point.
        let landing_rank = rank[landing];
        let reachable = landing == i
            || (landing_rank != u64::MAX
                && landing_rank <= number
                && number - landing_rank < SEEK_MISMATCH_UPPER_BOUND);
        if !reachable {
            rejected.push(reject(Rejection::Unreachable {
                landing_number: (landing_rank != u64::MAX).then_some(landing_rank),
            }));
            continue;
        }
        prev_landing = Some(landing);
        keyframes.push(KeyFrame {
            number,
            pts,
            checksum: decode.checksum,
        });
    }
    progress(Progress::Seek {
        done: n_candidates,
        total: n_candidates,
    });

    if keyframes.is_empty() {
        return Err(ManifestError::NoValidKeyframes {
            path: path.to_owned(),
            hint: remux_hint(path, &info),
        });
    }
    let upper = 3 * opts.chunk_size as u64 + 1;
    if !opts.force {
        if let Some(at) = first_ratio_violation(&keyframes, length, upper) {
            return Err(ManifestError::NotEnoughKeyframes {
                path: path.to_owned(),
                frame: at,
                keyframes: keyframes.len(),
                length,
            });
        }
    }
    let largest_gop = largest_gop(&keyframes, length);
    let sorted_ts: Vec<i64> = order.iter().map(|&i| ts(&packets[i])).collect();
    let chapters = chapters(&source, &info, &sorted_ts);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key_packets = packets.iter().filter(|p| p.key).count();
    Ok(VideoIndex {
        manifest: Manifest::Video {
            properties: VideoProperties {
                name,
                resolution: [resolution.0, resolution.1],
                length,
                chapters,
            },
            keyframes,
        },
        report: IndexReport {
            info,
            packets: packets.len(),
            key_packets,
            timestamps,
            rejected,
            largest_gop,
            warnings,
        },
    })
}

/// Demuxes every packet and, on worker threads, decodes and hashes the key-frame packets.
/// Returns the packets and the key-frame results in key-packet order.
fn demux_and_decode_keys(
    source: &mut VideoSource,
    opts: &VideoOptions,
    total: u64,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Vec<PacketInfo>, Vec<Option<KeyDecode>>), ManifestError> {
    let workers = if opts.workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.workers
    };
    let decoders = (0..workers)
        .map(|_| KeyframeDecoder::new(source))
        .collect::<Result<Vec<_>, _>>()?;
    let mut packets: Vec<PacketInfo> = Vec::new();
    let mut results: Vec<Option<KeyDecode>> = Vec::new();
    let color = opts.color;
    let scan = std::thread::scope(|s| -> Result<usize, MediaError> {
        // A small bounded queue keeps memory flat: at most a few key-frame payloads in flight.
        let (tx, rx) = sync_channel::<(usize, PacketInfo, Vec<u8>)>(workers * 2);
        let rx = Arc::new(Mutex::new(rx));
        let (rtx, rrx) = channel::<(usize, Result<Option<KeyDecode>, MediaError>)>();
        for mut decoder in decoders {
            let rx = Arc::clone(&rx);
            let rtx = rtx.clone();
            s.spawn(move || {
                let mut rgb = RgbConverter::new(color);
                loop {
                    let job = rx.lock().expect("queue lock").recv();
                    let Ok((n, info, data)) = job else { break };
                    let r = decoder.decode(&info, &data).and_then(|f| {
                        f.map(|f| {
                            Ok(KeyDecode {
                                checksum: rgb.md5_hex(&f)?,
                                is_key: f.is_key(),
                                picture: f.picture_type(),
                                width: f.width(),
                                height: f.height(),
                            })
                        })
                        .transpose()
                    });
                    if rtx.send((n, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(rtx);
        let mut keys = 0usize;
        let mut last_report = 0u64;
        let scanned = source.scan_packets(|info, data| {
            packets.push(*info);
            if info.key {
                // The receivers only stop if a worker panicked; the scan result reports that.
                let _ = tx.send((keys, *info, data.to_vec()));
                keys += 1;
            }
            if info.pos > 0 && info.pos as u64 > last_report + (1 << 20) {
                last_report = info.pos as u64;
                progress(Progress::Demux {
                    bytes: last_report,
                    total,
                });
            }
        });
        drop(tx);
        results = vec![None; keys];
        let mut first_error = None;
        for (n, r) in rrx {
            match r {
                Ok(d) => results[n] = d,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        scanned
    });
    scan?;
    progress(Progress::Demux {
        bytes: total,
        total,
    });
    Ok((packets, results))
}

/// Fails on a file whose packets end before the container says they should (truncated MP4s
/// demux cleanly up to the cut, then stop).
fn check_complete(
    path: &Path,
    info: &VideoInfo,
    packets: &[PacketInfo],
    file_size: u64,
) -> Result<(), ManifestError> {
    if packets.is_empty() {
        return Err(ManifestError::InvalidVideo {
            path: path.to_owned(),
            reason: "the video stream has no packets (is the file truncated?)".into(),
        });
    }
    let beyond_end = packets
        .iter()
        .any(|p| p.pos >= 0 && p.pos as u64 + p.size as u64 > file_size);
    let short = info.container.contains("mp4")
        && info
            .container_frames
            .is_some_and(|n| (packets.len() as u64) < n);
    if beyond_end || short {
        return Err(ManifestError::InvalidVideo {
            path: path.to_owned(),
            reason: format!(
                "the file is truncated: only {} of {} video packets are present",
                packets.len(),
                info.container_frames
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
        });
    }
    Ok(())
}

fn choose_timestamps(
    path: &Path,
    info: &VideoInfo,
    packets: &[PacketInfo],
) -> Result<TimestampSource, ManifestError> {
    let missing_pts = packets.iter().filter(|p| p.pts.is_none()).count();
    if missing_pts == 0 {
        return Ok(TimestampSource::Pts);
    }
    let all_dts = packets.iter().all(|p| p.dts.is_some());
    if missing_pts == packets.len() && all_dts && !info.has_b_frames {
        return Ok(TimestampSource::Dts);
    }
    Err(ManifestError::NoTimestamps {
        path: path.to_owned(),
        missing: missing_pts,
        total: packets.len(),
        hint: remux_hint(path, info),
    })
}

/// Seeks `checker` to `pts` and returns the index (in `packets`) of the first video packet read.
fn seek_landing(
    checker: &mut VideoSource,
    pts: i64,
    packets: &[PacketInfo],
    by_pos: &HashMap<i64, usize>,
) -> Result<Option<usize>, MediaError> {
    checker.seek(pts)?;
    let Some(p) = checker.read_packet()? else {
        return Ok(None);
    };
    let info = media::source_packet_info(&p);
    if info.pos >= 0 {
        if let Some(&i) = by_pos.get(&info.pos) {
            return Ok(Some(i));
        }
        return Ok(packets.iter().position(|q| q.pos == info.pos));
    }
    Ok(packets
        .iter()
        .position(|q| q.pts == info.pts && q.dts == info.dts && q.size == info.size))
}

/// The first frame count `n` (1-based) at which `n // max(K(n), 1) >= upper`, K(n) being the
/// number of key frames among the first `n` frames (CVAT's running rule, spec §3.4).
pub fn first_ratio_violation(keyframes: &[KeyFrame], length: u64, upper: u64) -> Option<u64> {
    let mut k = 0u64;
    let mut next = keyframes.iter().map(|f| f.number).peekable();
    // Between key frames the ratio only grows, so checking each frame is cheap enough but we can
    // jump: for fixed K the first violating n is max(current n, upper * max(K,1)).
    let mut n = 1u64;
    while n <= length {
        while next.peek().is_some_and(|&num| num < n) {
            next.next();
            k += 1;
        }
        let threshold = upper * k.max(1);
        let next_key_n = next.peek().map(|&num| num + 1).unwrap_or(u64::MAX);
        let candidate = threshold.max(n);
        if candidate < next_key_n && candidate <= length {
            return Some(candidate);
        }
        n = next_key_n;
    }
    None
}

fn largest_gop(keyframes: &[KeyFrame], length: u64) -> u64 {
    let mut largest = keyframes.first().map(|k| k.number).unwrap_or(length);
    for w in keyframes.windows(2) {
        largest = largest.max(w[1].number - w[0].number);
    }
    if let Some(last) = keyframes.last() {
        largest = largest.max(length - last.number);
    }
    largest
}

/// Chapters mapped to frame numbers (spec §2.3).
fn chapters(source: &VideoSource, info: &VideoInfo, sorted_ts: &[i64]) -> Vec<Chapter> {
    let tb = info.time_base;
    source
        .chapters()
        .into_iter()
        .map(|c| {
            let start = rescale_round(c.start, c.time_base, tb);
            let end = rescale_round(c.end, c.time_base, tb);
            let i = closest(sorted_ts, start);
            let j = closest(sorted_ts, end);
            let last = *sorted_ts.last().unwrap_or(&0);
            Chapter {
                start: i as i64,
                stop: if end > last { j as i64 } else { j as i64 - 1 },
                metadata: c.metadata,
                id: c.id,
            }
        })
        .collect()
}

/// `int(q * src / dst + 0.5)` in exact rational arithmetic (Python truncates toward zero).
fn rescale_round(q: i64, src: media::Rational, dst: media::Rational) -> i64 {
    let num = q as i128 * src.num as i128 * dst.den as i128;
    let den = src.den as i128 * dst.num as i128;
    if den == 0 {
        return q;
    }
    // (num/den + 1/2) = (2*num + den) / (2*den), truncated toward zero.
    let (n, d) = (2 * num + den, 2 * den);
    (n / d) as i64
}

/// Index of the value in `sorted` closest to `t` (ties go to the earlier one), as CVAT does.
fn closest(sorted: &[i64], t: i64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let pos = sorted.partition_point(|&x| x < t);
    if pos == 0 {
        return 0;
    }
    if pos >= sorted.len() {
        return sorted.len() - 1;
    }
    if (sorted[pos] - t).abs() < (sorted[pos - 1] - t).abs() {
        pos
    } else {
        pos - 1
    }
}

/// A remux command that usually fixes timestamp and seeking problems.
fn remux_hint(path: &Path, info: &VideoInfo) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into());
    let bsf = if info.codec == "mpeg4" {
        " -bsf:v mpeg4_unpack_bframes"
    } else {
        ""
    };
    format!(
        "remux it first, e.g. `ffmpeg -fflags +genpts -i '{}' -map 0 -c copy{bsf} '{stem}-remuxed.mkv'`",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kf(numbers: &[u64]) -> Vec<KeyFrame> {
        numbers
            .iter()
            .map(|&n| KeyFrame {
                number: n,
                pts: n as i64,
                checksum: String::new(),
            })
            .collect()
    }

    /// The rule evaluated literally, frame by frame, as CVAT's loop does.
    fn literal(keys: &[u64], length: u64, upper: u64) -> Option<u64> {
        let mut k = 0;
        for index in 0..length {
            if keys.contains(&index) {
                k += 1;
            }
            let n = index + 1;
            if n / k.max(1) >= upper {
                return Some(n);
            }
        }
        None
    }

    #[test]
    fn ratio_rule_matches_the_literal_loop() {
        let cases: &[(&[u64], u64)] = &[
            (&[0], 108),
            (&[0], 109),
            (&[0], 500),
            (&[0, 108], 216),
            (&[0, 108], 218),
            (&[0, 250, 500, 750], 900),
            (&[0, 30, 60, 90], 120),
            (&[5], 300),
            (&[0, 1, 2, 3, 400], 500),
        ];
        for (keys, length) in cases {
            assert_eq!(
                first_ratio_violation(&kf(keys), *length, 109),
                literal(keys, *length, 109),
                "{keys:?} {length}"
            );
        }
    }

    #[test]
    fn chapter_helpers_follow_python() {
        let r = |n, d| media::Rational { num: n, den: d };
        assert_eq!(rescale_round(3, r(1, 1000), r(1, 12800)), 38); // 38.4 + .5 → 38
        assert_eq!(rescale_round(1, r(1, 2), r(1, 1)), 1); // 0.5 + .5 → 1
        assert_eq!(closest(&[0, 10, 20], 14), 1);
        assert_eq!(closest(&[0, 10, 20], 15), 1); // tie → earlier
        assert_eq!(closest(&[0, 10, 20], 16), 2);
        assert_eq!(closest(&[0, 10, 20], 99), 2);
    }

    #[test]
    fn largest_gop_counts_to_the_end() {
        assert_eq!(largest_gop(&kf(&[0, 250, 500, 750]), 900), 250);
        assert_eq!(largest_gop(&kf(&[0]), 132), 132);
    }
}
