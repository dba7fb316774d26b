//! Reading video frames by number for chunks (spec §13.2): find the nearest manifest key frame at
//! or before the first wanted frame, seek to its pts, decode forward numbering frames from it.
//!
//! Sequential playback costs one decode: readers are kept open in a small pool, positioned where
//! the last build stopped, so chunk n+1 continues where chunk n ended without a new seek.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::budget::{self, Reservation};
use crate::manifest::{self, Manifest};
use crate::media::{DecodedFrame, FrameReader, MediaError};
use crate::task::FileStamp;

/// Frames decoded and seeks made since start (exported at `/metrics`; sequential playback
/// should decode each frame once).
pub static FRAMES_DECODED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Frames not decoded at all since start: non-reference frames before a chunk's first frame.
pub static FRAMES_SKIPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Seeks made by chunk builds.
pub static SEEKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Video decoders open now: parked in a pool or in use by a build or an export.
pub static OPEN_DECODERS: AtomicU64 = AtomicU64::new(0);

/// Errors reading frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The source is gone (named as the task knows it: relative to the upload or the share).
    #[error("the source file {0} is missing")]
    SourceMissing(String),
    /// The source changed after the task was created (its frames may no longer match).
    #[error("the source file {0} changed after the task was created; re-create the task")]
    SourceChanged(String),
    /// Decoding ended before the wanted frame.
    #[error("frame {0} could not be decoded (the video ends at frame {1})")]
    FrameMissing(u64, u64),
    /// The manifest could not be read.
    #[error("the task's manifest is unreadable: {0}")]
    Manifest(String),
}

/// Checks that `path` still has the stamp recorded at creation; errors say `name`.
pub fn check_source(path: &Path, name: &str, stamp: &FileStamp) -> Result<(), FrameError> {
    match FileStamp::of(path) {
        Err(_) => Err(FrameError::SourceMissing(name.to_owned())),
        Ok(s) if s != *stamp => Err(FrameError::SourceChanged(name.to_owned())),
        Ok(_) => Ok(()),
    }
}

/// [`check_source`] for requests answered from the cache: each source is looked at no more than
/// once per [`SourceWatch::INTERVAL`] while it is unchanged (a failed check is repeated on every
/// request).
#[derive(Default)]
pub struct SourceWatch {
    checked: Mutex<HashMap<PathBuf, Instant>>,
}

impl SourceWatch {
    /// How long an unchanged source is trusted without looking again.
    pub const INTERVAL: Duration = Duration::from_secs(1);

    /// Checks the source unless it was found unchanged less than [`Self::INTERVAL`] ago.
    pub fn check(&self, path: &Path, name: &str, stamp: &FileStamp) -> Result<(), FrameError> {
        let fresh = |m: &HashMap<PathBuf, Instant>| {
            m.get(path)
                .is_some_and(|t| t.elapsed() < SourceWatch::INTERVAL)
        };
        if fresh(&self.checked.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        check_source(path, name, stamp)?;
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), Instant::now());
        Ok(())
    }
}

/// A video's seek points: `(number, pts)` of each manifest key frame, ascending.
#[derive(Debug, Default)]
pub struct SeekTable {
    keyframes: Vec<(u64, i64)>,
    /// Frames in the video, when known: a reader that reached the end is not kept.
    frames: Option<u64>,
    /// Skipping non-reference frames before a chunk could not number frames exactly on this
    /// video (its timestamps do not prove the order): do not try again.
    no_skip: AtomicBool,
}

impl Clone for SeekTable {
    fn clone(&self) -> Self {
        SeekTable {
            keyframes: self.keyframes.clone(),
            frames: self.frames,
            no_skip: AtomicBool::new(self.no_skip.load(Ordering::Relaxed)),
        }
    }
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
                no_skip: AtomicBool::new(false),
            }),
            Manifest::Images { .. } => Err(FrameError::Manifest(
                "an image manifest was given for a video".into(),
            )),
        }
    }

    /// Seek points `(number, pts)` of key frames (ascending) of a video of `frames` frames.
    pub fn from_keyframes(keyframes: Vec<(u64, i64)>, frames: Option<u64>) -> SeekTable {
        SeekTable {
            keyframes,
            frames,
            no_skip: AtomicBool::new(false),
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

/// An open reader with its memory counted in the process's budget (and in
/// [`OPEN_DECODERS`]) for as long as it is open.
struct OpenReader {
    reader: FrameReader,
    memory: Reservation,
}

impl OpenReader {
    fn open(path: &Path) -> Result<OpenReader, FrameError> {
        let reader = FrameReader::open(path)?;
        // The decoder's buffers are allocated as it decodes: counted now, without waiting
        // (builds wait for memory before they start, see `decoder_bytes`).
        let memory = budget::global().force(reader.memory_estimate());
        OPEN_DECODERS.fetch_add(1, Ordering::Relaxed);
        Ok(OpenReader { reader, memory })
    }

    fn bytes(&self) -> u64 {
        self.memory.bytes()
    }
}

impl Drop for OpenReader {
    fn drop(&mut self) {
        OPEN_DECODERS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for OpenReader {
    type Target = FrameReader;
    fn deref(&self) -> &FrameReader {
        &self.reader
    }
}

impl std::ops::DerefMut for OpenReader {
    fn deref_mut(&mut self) -> &mut FrameReader {
        &mut self.reader
    }
}

/// A reader parked in the pool: `next` is the number of the frame it will output next.
struct Parked {
    owner: (i64, i64),
    reader: OpenReader,
    next: u64,
    used: Instant,
}

type Parking = Mutex<Vec<Parked>>;

/// Open, positioned readers for sequential access. Parked readers are closed when idle for
/// [`DecoderPool::IDLE`], when more than `max` are parked, and when the memory budget is short
/// ([`DecoderPool::shed`], the budget's reclaimer). Cloning shares the pool.
#[derive(Clone)]
pub struct DecoderPool {
    parked: Arc<Parking>,
    max: usize,
}

impl DecoderPool {
    /// How long a parked reader may stay unused before it is closed.
    pub const IDLE: Duration = Duration::from_secs(60);

    /// A pool keeping at most `max` readers open, closing those idle for [`Self::IDLE`].
    pub fn new(max: usize) -> Self {
        Self::with_idle(max, Self::IDLE)
    }

    /// A pool whose readers are closed after `idle` without use (checked every `idle / 4`).
    pub fn with_idle(max: usize, idle: Duration) -> Self {
        let parked: Arc<Parking> = Arc::default();
        let weak: Weak<Parking> = Arc::downgrade(&parked);
        let every = (idle / 4).max(Duration::from_millis(10));
        // The sweeper ends with the pool.
        let _ = std::thread::Builder::new()
            .name("decoder-sweeper".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(parked) = weak.upgrade() else { return };
                let closed = Self::close(&parked, |p| p.used.elapsed() >= idle);
                if !closed.is_empty() {
                    tracing::debug!("closed {} idle video decoders", closed.len());
                }
            });
        DecoderPool { parked, max }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the parked readers `pick` selects; they are closed by the caller, outside the
    /// lock (closing joins the decoder's threads).
    fn close(parked: &Parking, mut pick: impl FnMut(&Parked) -> bool) -> Vec<Parked> {
        let mut all = parked.lock().unwrap_or_else(|e| e.into_inner());
        let (gone, kept) = std::mem::take(&mut *all).into_iter().partition(|p| pick(p));
        *all = kept;
        gone
    }

    fn position(
        parked: &[Parked],
        owner: (i64, i64),
        first: u64,
        seek_from: Option<u64>,
    ) -> Option<usize> {
        parked.iter().position(|p| {
            p.owner == owner && p.next <= first && seek_from.is_none_or(|k| p.next >= k)
        })
    }

    /// Takes a reader of `owner` that can reach `first` by decoding forward no further than a
    /// seek to `seek_from` would (so continuing never costs more than seeking).
    fn take(
        &self,
        owner: (i64, i64),
        first: u64,
        seek_from: Option<u64>,
    ) -> Option<(OpenReader, u64)> {
        let mut parked = self.lock();
        let i = Self::position(&parked, owner, first, seek_from)?;
        let p = parked.swap_remove(i);
        Some((p.reader, p.next))
    }

    /// Whether a build of `owner` from `first` would find a parked reader (see `take`).
    pub fn has_reader(&self, owner: (i64, i64), first: u64, seek: &SeekTable) -> bool {
        let key = seek.before(first).map(|k| k.0);
        Self::position(&self.lock(), owner, first, key).is_some()
    }

    fn put(&self, owner: (i64, i64), reader: OpenReader, next: u64) {
        let lru = {
            let mut parked = self.lock();
            parked.push(Parked {
                owner,
                reader,
                next,
                used: Instant::now(),
            });
            if parked.len() > self.max {
                // Drop the least recently used reader.
                parked
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| p.used)
                    .map(|(i, _)| i)
                    .map(|i| parked.swap_remove(i))
            } else {
                None
            }
        };
        drop(lru);
    }

    /// Closes the readers of a data (task deleted).
    pub fn forget(&self, data_id: i64) {
        drop(Self::close(&self.parked, |p| p.owner.0 == data_id));
    }

    /// Closes parked readers, least recently used first, until about `bytes` of their memory are
    /// freed (the budget's reclaimer). Returns the bytes freed.
    pub fn shed(&self, bytes: u64) -> u64 {
        let mut freed = 0;
        let gone = {
            let mut parked = self.lock();
            parked.sort_by_key(|p| std::cmp::Reverse(p.used));
            let mut gone = Vec::new();
            while freed < bytes {
                let Some(p) = parked.pop() else { break };
                freed += p.reader.bytes();
                gone.push(p);
            }
            gone
        };
        if !gone.is_empty() {
            tracing::debug!("closed {} parked video decoders to free memory", gone.len());
        }
        drop(gone);
        freed
    }

    /// Readers currently parked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no reader is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pre-rolls shorter than this many frames decode every frame: skipping would save little.
const MIN_SKIP_PREROLL: u64 = 8;

/// Decodes the frames numbered `wanted` (ascending, absolute) of the video at `path` and calls
/// `emit` with each, in order (the frame is handed over: it may go to another thread).
/// `owner` (data id, version) keys the pool.
///
/// After a seek, the frames between the key frame and the first wanted one are decoded only as
/// far as later frames need them: non-reference frames are skipped
/// ([`FrameReader::skip_nonref_before`]) and frames are numbered by pts rank until the first
/// wanted one. If the packets' timestamps cannot prove that numbering, the build starts over
/// from the key frame decoding every frame (and the video is not skipped on again).
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
            let mut r = OpenReader::open(path)?;
            match key {
                Some((number, pts)) => {
                    r.seek(pts).map_err(FrameError::from)?;
                    SEEKS.fetch_add(1, Ordering::Relaxed);
                    if first - number >= MIN_SKIP_PREROLL && !seek.no_skip.load(Ordering::Relaxed) {
                        // A no-op for codecs where skipping is not exact.
                        r.skip_nonref_before(pts, first - number);
                    }
                    // Until the first frame at or after the key frame's pts, numbering is unknown.
                    (r, None, Some((number, pts)))
                }
                None => (r, Some(0), None),
            }
        }
    };
    // During a pre-roll: frames decoded (not skipped) before the first wanted one, and the
    // number of the last of them.
    let (mut preroll_decoded, mut ranked_before) = (0u64, None::<u64>);
    let mut w = 0usize;
    loop {
        let Some(frame) = reader.next_frame().map_err(FrameError::from)? else {
            let reached = next.unwrap_or(0);
            return Err(FrameError::FrameMissing(wanted[w], reached).into());
        };
        FRAMES_DECODED.fetch_add(1, Ordering::Relaxed);
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
                if reader.in_preroll() {
                    // Frames may be skipped: number by pts rank up to the first wanted frame.
                    let ranked = frame
                        .pts()
                        .and_then(|p| reader.rank_since_seek(p))
                        .map(|r| kf_number + r);
                    match ranked {
                        Some(n) if n < first => {
                            ranked_before = Some(n);
                            preroll_decoded += 1;
                            continue;
                        }
                        Some(n) if n == first || !reader.skipped_nonref() => {
                            let skipped = (first - kf_number).saturating_sub(preroll_decoded);
                            FRAMES_SKIPPED.fetch_add(skipped, Ordering::Relaxed);
                            reader.end_preroll();
                            skip_before = None;
                            n
                        }
                        // Nothing skipped yet: counting from the last ranked frame is exact.
                        None if !reader.skipped_nonref() => {
                            reader.end_preroll();
                            skip_before = None;
                            ranked_before.map_or(kf_number, |n| n + 1)
                        }
                        // Not provable, or the first wanted frame did not come out: decode
                        // again from the key frame, every frame, numbering by counting.
                        _ => {
                            tracing::debug!(
                                path = %path.display(),
                                "frames cannot be numbered by pts rank; not skipping frames on this video"
                            );
                            seek.no_skip.store(true, Ordering::Relaxed);
                            reader.seek(kf_pts).map_err(FrameError::from)?;
                            SEEKS.fetch_add(1, Ordering::Relaxed);
                            (preroll_decoded, ranked_before) = (0, None);
                            continue;
                        }
                    }
                } else {
                    skip_before = None;
                    kf_number
                }
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

    fn video() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/videos/h264_bframes.mp4")
    }

    /// Decodes frames `wanted` through `pool`, parking the reader.
    fn decode(pool: &DecoderPool, owner: (i64, i64), wanted: &[u64]) {
        let seek = SeekTable::from_keyframes(vec![(0, 0)], Some(90));
        decode_frames::<FrameError>(&video(), &seek, pool, owner, wanted, |_, _| Ok(())).unwrap();
    }

    #[test]
    fn parked_decoders_are_counted_and_closed_when_memory_is_short() {
        let pool = DecoderPool::new(8);
        decode(&pool, (1, 1), &[0, 1, 2]);
        decode(&pool, (2, 1), &[0]);
        assert_eq!(pool.len(), 2);
        let each = pool.lock()[0].reader.bytes();
        // 320x240, 4:2:0, FFmpeg's threads: frame buffers and a fixed part.
        assert!(each > 4 << 20 && each < 16 << 20, "{each}");
        let seek = SeekTable::from_keyframes(vec![(0, 0)], Some(90));
        assert!(pool.has_reader((1, 1), 3, &seek));
        assert!(!pool.has_reader((1, 1), 1, &seek), "cannot go back");
        // The budget's reclaimer: least recently used first, as many as the bytes need.
        assert_eq!(pool.shed(1), each);
        assert_eq!(pool.len(), 1);
        assert!(pool.has_reader((2, 1), 1, &seek), "the newer one stays");
        assert_eq!(pool.shed(u64::MAX), each);
        assert!(pool.is_empty());
    }

    #[test]
    fn idle_decoders_are_closed() {
        let pool = DecoderPool::with_idle(8, Duration::from_millis(100));
        decode(&pool, (3, 1), &[0]);
        assert_eq!(pool.len(), 1);
        let end = Instant::now() + Duration::from_secs(5);
        while !pool.is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(pool.is_empty(), "an idle decoder is closed");
    }

    #[test]
    fn source_checks_name_the_file_as_the_task_knows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mp4");
        std::fs::write(&path, b"one").unwrap();
        let stamp = FileStamp::of(&path).unwrap();
        let watch = SourceWatch::default();
        watch.check(&path, "sub/v.mp4", &stamp).unwrap();
        std::fs::write(&path, b"changed").unwrap();
        // Trusted for a second after a good check...
        watch.check(&path, "sub/v.mp4", &stamp).unwrap();
        std::thread::sleep(SourceWatch::INTERVAL);
        // ... then looked at again.
        let e = watch.check(&path, "sub/v.mp4", &stamp).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the source file sub/v.mp4 changed after the task was created; re-create the task"
        );
        std::fs::remove_file(&path).unwrap();
        let e = check_source(&path, "sub/v.mp4", &stamp).unwrap_err();
        assert_eq!(e.to_string(), "the source file sub/v.mp4 is missing");
    }

    #[test]
    fn seek_table_finds_the_key_frame_before() {
        let t = SeekTable {
            keyframes: vec![(0, 0), (30, 3000), (60, 6000)],
            frames: Some(90),
            no_skip: AtomicBool::new(false),
        };
        assert_eq!(t.before(0), Some((0, 0)));
        assert_eq!(t.before(29), Some((0, 0)));
        assert_eq!(t.before(30), Some((30, 3000)));
        assert_eq!(t.before(1000), Some((60, 6000)));
        assert_eq!(SeekTable::none().before(5), None);
    }
}
