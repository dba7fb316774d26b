//! Reading video frames by number for chunks (spec §13.2): find the nearest manifest key frame at
//! or before the first wanted frame, seek to its pts, decode forward numbering frames from it.
//!
//! Sequential playback costs one decode: readers are kept open in a small pool, positioned where
//! the last build stopped, so chunk n+1 continues where chunk n ended without a new seek.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::manifest::{self, Manifest};
use crate::media::{DecodedFrame, FrameReader, MediaError};
use crate::store::FileStamp;

/// Frames decoded and seeks made since start (exported at `/metrics`; sequential playback
/// should decode each frame once).
pub static FRAMES_DECODED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Seeks made by chunk builds.
pub static SEEKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Errors reading frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The source is gone.
    #[error("the source file {0} is missing")]
    SourceMissing(PathBuf),
    /// The source changed after the task was created (its frames may no longer match).
    #[error("the source file {0} changed after the task was created; re-create the task")]
    SourceChanged(PathBuf),
    /// Decoding ended before the wanted frame.
    #[error("frame {0} could not be decoded (the video ends at frame {1})")]
    FrameMissing(u64, u64),
    /// The manifest could not be read.
    #[error("the task's manifest is unreadable: {0}")]
    Manifest(String),
}

/// Checks that `path` still has the stamp recorded at creation.
pub fn check_source(path: &Path, stamp: &FileStamp) -> Result<(), FrameError> {
    match FileStamp::of(path) {
        Err(_) => Err(FrameError::SourceMissing(path.to_owned())),
        Ok(s) if s != *stamp => Err(FrameError::SourceChanged(path.to_owned())),
        Ok(_) => Ok(()),
    }
}

/// A video's seek points: `(number, pts)` of each manifest key frame, ascending.
#[derive(Debug, Clone, Default)]
pub struct SeekTable {
    keyframes: Vec<(u64, i64)>,
    /// Frames in the video, when known: a reader that reached the end is not kept.
    frames: Option<u64>,
}

impl SeekTable {
    /// Reads the key frames of a video manifest.
    pub fn from_manifest(path: &Path) -> Result<SeekTable, FrameError> {
        match manifest::read_manifest(path).map_err(|e| FrameError::Manifest(e.to_string()))? {
            Manifest::Video {
                keyframes,
                properties,
            } => Ok(SeekTable {
                keyframes: keyframes.iter().map(|k| (k.number, k.pts)).collect(),
                frames: Some(properties.length),
            }),
            Manifest::Images { .. } => Err(FrameError::Manifest(
                "an image manifest was given for a video".into(),
            )),
        }
    }

    /// No seek points: decode from the start (a video without a usable manifest).
    pub fn none() -> SeekTable {
        SeekTable::default()
    }

    /// The last key frame at or before `frame`.
    pub fn before(&self, frame: u64) -> Option<(u64, i64)> {
        let i = self.keyframes.partition_point(|&(n, _)| n <= frame);
        (i > 0).then(|| self.keyframes[i - 1])
    }
}

/// A reader parked in the pool: `next` is the number of the frame it will output next.
struct Parked {
    owner: (i64, i64),
    reader: FrameReader,
    next: u64,
    used: Instant,
}

/// Open, positioned readers for sequential access.
pub struct DecoderPool {
    parked: Mutex<Vec<Parked>>,
    max: usize,
}

impl DecoderPool {
    /// A pool keeping at most `max` readers open.
    pub fn new(max: usize) -> Self {
        DecoderPool {
            parked: Mutex::new(Vec::new()),
            max,
        }
    }

    /// Takes a reader of `owner` that can reach `first` by decoding forward no further than a
    /// seek to `seek_from` would (so continuing never costs more than seeking).
    fn take(
        &self,
        owner: (i64, i64),
        first: u64,
        seek_from: Option<u64>,
    ) -> Option<(FrameReader, u64)> {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        let i = parked.iter().position(|p| {
            p.owner == owner && p.next <= first && seek_from.is_none_or(|k| p.next >= k)
        })?;
        let p = parked.swap_remove(i);
        Some((p.reader, p.next))
    }

    fn put(&self, owner: (i64, i64), reader: FrameReader, next: u64) {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        parked.push(Parked {
            owner,
            reader,
            next,
            used: Instant::now(),
        });
        if parked.len() > self.max {
            // Drop the least recently used reader.
            if let Some((i, _)) = parked.iter().enumerate().min_by_key(|(_, p)| p.used) {
                parked.swap_remove(i);
            }
        }
    }

    /// Closes the readers of a data (task deleted).
    pub fn forget(&self, data_id: i64) {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        parked.retain(|p| p.owner.0 != data_id);
    }

    /// Readers currently parked.
    pub fn len(&self) -> usize {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no reader is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decodes the frames numbered `wanted` (ascending, absolute) of the video at `path` and calls
/// `emit` with each, in order (the frame is handed over: it may go to another thread).
/// `owner` (data id, version) keys the pool.
pub fn decode_frames<E: From<FrameError>>(
    path: &Path,
    seek: &SeekTable,
    pool: &DecoderPool,
    owner: (i64, i64),
    wanted: &[u64],
    mut emit: impl FnMut(u64, DecodedFrame) -> Result<(), E>,
) -> Result<(), E> {
    let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
        return Ok(());
    };
    let key = seek.before(first);
    let (mut reader, mut next, mut skip_before) = match pool.take(owner, first, key.map(|k| k.0)) {
        Some((r, next)) => (r, Some(next), None),
        None => {
            let mut r = FrameReader::open(path).map_err(FrameError::from)?;
            match key {
                Some((number, pts)) => {
                    r.seek(pts).map_err(FrameError::from)?;
                    SEEKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Until the first frame at or after the key frame's pts, numbering is unknown.
                    (r, None, Some((number, pts)))
                }
                None => (r, Some(0), None),
            }
        }
    };
    let mut w = 0usize;
    loop {
        let Some(frame) = reader.next_frame().map_err(FrameError::from)? else {
            let reached = next.unwrap_or(0);
            return Err(FrameError::FrameMissing(wanted[w], reached).into());
        };
        FRAMES_DECODED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let number = match (next, skip_before) {
            (Some(n), _) => n,
            (None, Some((kf_number, kf_pts))) => {
                // Frames before the key frame's pts come from before the seek point (open GOP
                // leading frames): skip them, as CVAT does.
                if frame
                    .pts()
                    .or(frame.best_effort_timestamp())
                    .is_some_and(|p| p < kf_pts)
                {
                    continue;
                }
                skip_before = None;
                kf_number
            }
            (None, None) => unreachable!("numbering is known when no seek happened"),
        };
        next = Some(number + 1);
        while w < wanted.len() && wanted[w] < number {
            // A wanted frame was skipped over: cannot happen with ascending input.
            w += 1;
        }
        if w < wanted.len() && wanted[w] == number {
            emit(number, frame)?;
            w += 1;
        }
        if number >= last || w >= wanted.len() {
            // A reader at the end of the video can serve nothing more: close it instead of
            // parking it (a parked 1080p decoder holds tens of MB of frame buffers).
            if seek.frames.is_none_or(|n| number + 1 < n) {
                pool.put(owner, reader, number + 1);
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_table_finds_the_key_frame_before() {
        let t = SeekTable {
            keyframes: vec![(0, 0), (30, 3000), (60, 6000)],
            frames: Some(90),
        };
        assert_eq!(t.before(0), Some((0, 0)));
        assert_eq!(t.before(29), Some((0, 0)));
        assert_eq!(t.before(30), Some((30, 3000)));
        assert_eq!(t.before(1000), Some((60, 6000)));
        assert_eq!(SeekTable::none().before(5), None);
    }
}
