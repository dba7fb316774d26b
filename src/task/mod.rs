//! CVAT's data model arithmetic (spec `media.md` §10–§12): frame ranges and steps, segments
//! (jobs), default chunk sizes, and which frames a chunk holds. Pure functions, no I/O (but
//! [`FileStamp::of`]). A task's data (media source, images, stamps) is in [`data`].

mod data;

pub use data::{ChapterInfo, DataSpec, FileStamp, ImageFrame, MediaSource};

use serde::{Deserialize, Serialize};

/// Chunk container types, as CVAT names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkType {
    /// H.264 MP4.
    Video,
    /// Zip of images.
    Imageset,
}

impl ChunkType {
    /// CVAT's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkType::Video => "video",
            ChunkType::Imageset => "imageset",
        }
    }
}

/// Requested chunk quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Compressed,
    Original,
}

impl Quality {
    /// Parses CVAT's query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "compressed" => Some(Quality::Compressed),
            "original" => Some(Quality::Original),
            _ => None,
        }
    }
}

/// The frame step of a `frame_filter` (`step=N`), 1 when absent. `None` when the filter is
/// present but malformed ("Invalid frame filter expression").
pub fn parse_step(frame_filter: &str) -> Option<u64> {
    if frame_filter.trim().is_empty() {
        return Some(1);
    }
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"step\s*=\s*([1-9]\d*)").expect("valid regex"));
    re.captures(frame_filter).and_then(|c| c[1].parse().ok())
}

/// The frames a task uses out of its source: `start`, `step` and the number of frames `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRange {
    pub start: u64,
    /// Inclusive last absolute frame actually used: `start + (size - 1) * step`.
    pub stop: u64,
    pub step: u64,
    pub size: u64,
}

impl FrameRange {
    /// CVAT's frame range for a source of `count` frames (§11.5). `stop` of `None` or `Some(0)`
    /// means "to the end". `None` when the range is empty.
    pub fn new(count: u64, start: u64, stop: Option<u64>, step: u64) -> Option<FrameRange> {
        let step = step.max(1);
        if count == 0 || start >= count {
            return None;
        }
        let end = match stop {
            Some(s) if s > 0 => (s + 1).min(count),
            _ => count,
        };
        if end <= start {
            return None;
        }
        let size = (end - start).div_ceil(step);
        Some(FrameRange {
            start,
            stop: start + (size - 1) * step,
            step,
            size,
        })
    }

    /// Absolute source frame of task frame `rel`.
    pub fn abs(&self, rel: u64) -> u64 {
        self.start + rel * self.step
    }
}

/// A segment: task-relative frames `start..=stop` (a job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRange {
    pub start: u64,
    pub stop: u64,
}

impl SegmentRange {
    /// Number of frames in the segment.
    pub fn len(&self) -> u64 {
        self.stop - self.start + 1
    }

    /// Always false: a segment has at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Task-relative frames of the segment's chunk `index` (chunks are per segment).
    pub fn chunk(&self, index: u64, chunk_size: u64) -> Option<SegmentRange> {
        let first = self.start + index * chunk_size;
        (first <= self.stop).then(|| SegmentRange {
            start: first,
            stop: (first + chunk_size - 1).min(self.stop),
        })
    }

    /// Number of chunks in the segment.
    pub fn chunk_count(&self, chunk_size: u64) -> u64 {
        self.len().div_ceil(chunk_size)
    }
}

/// Most frames in one chunk. CVAT takes any positive 32-bit value; a chunk is built and held in
/// memory whole, so frameserver refuses chunk sizes past this.
pub const MAX_CHUNK_SIZE: u64 = 1000;

/// Most jobs (segments) in one task: CVAT's `CVAT_MAX_JOBS_PER_TASK` default.
pub const MAX_JOBS_PER_TASK: usize = 5000;

/// CVAT's segmentation (§11.8): `segment_size` 0 or larger than `size` means one segment;
/// `overlap` `None` means 5 frames for video when there is more than one segment, else 0; it is
/// capped at half the segment size.
pub fn segments(
    size: u64,
    segment_size: u64,
    overlap: Option<u64>,
    is_video: bool,
) -> Vec<SegmentRange> {
    if size == 0 {
        return Vec::new();
    }
    let segment_size = if segment_size == 0 || segment_size > size {
        size
    } else {
        segment_size
    };
    let overlap = overlap.unwrap_or(if size <= segment_size {
        0
    } else if is_video {
        5
    } else {
        0
    });
    let overlap = overlap.min(segment_size / 2);
    let stride = segment_size - overlap;
    let mut out = Vec::new();
    let mut start = 0;
    while start < size - overlap {
        out.push(SegmentRange {
            start,
            stop: (start + segment_size - 1).min(size - 1),
        });
        start += stride;
    }
    out
}

/// CVAT's default chunk size (§11.7) for frames of `width`×`height`.
pub fn default_chunk_size(compressed: ChunkType, width: u32, height: u32) -> u64 {
    match compressed {
        ChunkType::Video => 36,
        ChunkType::Imageset => {
            let area = (width as u64 * height as u64).max(1);
            (36 * 1920 * 1080 / area).clamp(2, 72)
        }
    }
}

/// Task chunk `n` (task-relative frames `[n*cs, (n+1)*cs)`), `None` past the end.
pub fn task_chunk(size: u64, chunk_size: u64, n: u64) -> Option<SegmentRange> {
    SegmentRange {
        start: 0,
        stop: size - 1,
    }
    .chunk(n, chunk_size)
}

/// `X-Checksum`: `crc32(data[:1000], crc32(str(len(data))))` (§15.3).
pub fn x_checksum(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data.len().to_string().as_bytes());
    let seed = h.finalize();
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(&data[..data.len().min(1000)]);
    h.finalize()
}

/// An ISO-8601 UTC timestamp as CVAT prints it: `Z`, microseconds only when non-zero.
pub fn iso_utc(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    if t.nanosecond() / 1000 == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(v: &[(u64, u64)]) -> Vec<SegmentRange> {
        v.iter()
            .map(|&(start, stop)| SegmentRange { start, stop })
            .collect()
    }

    #[test]
    fn segmentation_matches_cvat_tests() {
        // test_default_overlap_for_small_segment_size: 8-frame video, segment 5 → (0,4), (3,7).
        assert_eq!(segments(8, 5, None, true), seg(&[(0, 4), (3, 7)]));
        // Images, size 4, segment 3, overlap 1 → (0,2), (2,3).
        assert_eq!(segments(4, 3, Some(1), false), seg(&[(0, 2), (2, 3)]));
        // test_task_segmentation: sizes 2..6, segment 3, overlap 1.
        assert_eq!(
            segments(6, 3, Some(1), false),
            seg(&[(0, 2), (2, 4), (4, 5)])
        );
        assert_eq!(segments(2, 3, Some(1), false), seg(&[(0, 1)]));
        assert_eq!(segments(5, 0, None, true), seg(&[(0, 4)]));
        assert_eq!(segments(10, 5, None, false), seg(&[(0, 4), (5, 9)]));
    }

    #[test]
    fn frame_range_follows_cvat() {
        // 7 images, start 2, stop 5 → size 4.
        let r = FrameRange::new(7, 2, Some(5), 1).unwrap();
        assert_eq!((r.size, r.stop), (4, 5));
        let r = FrameRange::new(10, 1, None, 3).unwrap();
        assert_eq!((r.size, r.stop, r.abs(2)), (3, 7, 7));
        assert_eq!(FrameRange::new(10, 0, Some(0), 1).unwrap().size, 10);
        assert_eq!(FrameRange::new(10, 0, Some(100), 1).unwrap().size, 10);
        assert!(FrameRange::new(10, 10, None, 1).is_none());
    }

    #[test]
    fn steps_and_chunk_sizes() {
        assert_eq!(parse_step(""), Some(1));
        assert_eq!(parse_step("step=3"), Some(3));
        assert_eq!(parse_step("step = 12"), Some(12));
        assert_eq!(parse_step("step=0"), None);
        assert_eq!(parse_step("every=2"), None);
        assert_eq!(default_chunk_size(ChunkType::Imageset, 1920, 1080), 36);
        assert_eq!(default_chunk_size(ChunkType::Imageset, 1280, 720), 72);
        assert_eq!(default_chunk_size(ChunkType::Imageset, 3840, 2160), 9);
        assert_eq!(default_chunk_size(ChunkType::Imageset, 100, 100), 72);
        assert_eq!(default_chunk_size(ChunkType::Video, 100, 100), 36);
    }

    #[test]
    fn chunks_of_segments_and_tasks() {
        let s = SegmentRange { start: 3, stop: 12 };
        assert_eq!(s.chunk(0, 4), Some(SegmentRange { start: 3, stop: 6 }));
        assert_eq!(
            s.chunk(2, 4),
            Some(SegmentRange {
                start: 11,
                stop: 12
            })
        );
        assert_eq!(s.chunk(3, 4), None);
        assert_eq!(s.chunk_count(4), 3);
        assert_eq!(
            task_chunk(10, 4, 2),
            Some(SegmentRange { start: 8, stop: 9 })
        );
    }

    #[test]
    fn x_checksum_matches_cvat_example() {
        assert_eq!(x_checksum(b"hello"), 357000742);
    }

    #[test]
    fn iso_dates() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 4, 2, 36)
            .unwrap();
        assert_eq!(iso_utc(t), "2026-11-25T04:02:36Z");
        let t2 = t + chrono::Duration::microseconds(1500);
        assert_eq!(iso_utc(t2), "2026-11-25T04:02:36.001500Z");
    }
}
