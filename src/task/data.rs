//! A task's data as the domain sees it: where its frames come from (one video or a list of
//! images), the chunking parameters, and the size and time stamps that tell a changed source
//! file. The store keeps them as JSON in its `data` and `images` rows.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ChunkType, FrameRange};

/// Size and modification time of a source file when the task was created: a chunk build
/// checks them to refuse serving frames of a file that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileStamp {
    /// Reads the stamp of `path`.
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let m = std::fs::metadata(path)?;
        let mtime_ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        Ok(FileStamp {
            size: m.len(),
            mtime_ns,
        })
    }
}

/// A container chapter mapped to frames (video meta).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapterInfo {
    pub id: i64,
    pub start: i64,
    pub stop: i64,
    pub title: Option<String>,
}

/// Where a task's frames come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MediaSource {
    /// One video.
    Video {
        /// Absolute path of the video file.
        path: PathBuf,
        /// Name shown in meta (relative to the upload or the share).
        name: String,
        /// Display size (after rotation).
        width: u32,
        height: u32,
        /// Display-matrix rotation, counter-clockwise degrees.
        rotation: f64,
        /// Frames in the source.
        frames: u64,
        /// The task's manifest (absent when none could be made: frames are then decoded from
        /// the start, as CVAT does).
        manifest: Option<PathBuf>,
        stamp: FileStamp,
        chapters: Vec<ChapterInfo>,
    },
    /// Images listed in the `images` table.
    Images,
}

/// A task's data: everything needed to serve chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub range: FrameRange,
    pub frame_filter: String,
    pub chunk_size: u64,
    pub image_quality: u8,
    pub compressed_chunk_type: ChunkType,
    pub original_chunk_type: ChunkType,
    /// `local` or `share`.
    pub storage: String,
    pub sorting_method: String,
    pub media: MediaSource,
    /// Directory owned by the data (uploads, manifest); removed with the task.
    pub dir: PathBuf,
}

/// One image frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFrame {
    /// Absolute source frame index.
    pub frame: u64,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Relative POSIX name shown in meta.
    pub name: String,
    /// Size after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Context images (absolute paths).
    pub related: Vec<PathBuf>,
    pub stamp: FileStamp,
}
