//! Task creation's pipeline: from the files of a data upload (or share paths) to a task's data
//! stored with its frames, segments and jobs. It types the media, extracts archives, indexes
//! videos (the fast manifest generator, or a validated uploaded manifest), reads images, and
//! stores everything in one transaction; a failed creation leaves no directory behind.
//!
//! It lives in `ingest` as the last step of taking files in (after the name, share-path and
//! archive checks beside it) rather than in `task`: it reads and writes the store, and `store`
//! builds on `task`'s types, so `task` stays below both. The server's handlers parse the
//! request, call [`create_data`] on a blocking thread and turn a [`CreateError`] into the
//! request's message.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{ArchiveLimits, IngestError, Media};
use crate::chunks::BuildError;
use crate::ingest;
use crate::manifest::{self, Manifest, ManifestError, SortingMethod, VideoOptions};
use crate::media::{self, FrameReader, MediaError};
use crate::store::{Store, StoreError, TaskRow};
use crate::task::{
    self, ChapterInfo, ChunkType, DataSpec, FileStamp, FrameRange, ImageFrame, MediaSource,
};

/// Validated data parameters (the `Upload-Finish` body or a one-shot request).
#[derive(Debug, Clone)]
pub(crate) struct DataParams {
    pub(crate) image_quality: u8,
    pub(crate) chunk_size: Option<u64>,
    pub(crate) start_frame: u64,
    pub(crate) stop_frame: Option<u64>,
    /// CVAT's normalised filter (`step=N`, or empty).
    pub(crate) frame_filter: String,
    pub(crate) step: u64,
    pub(crate) sorting: SortingMethod,
    pub(crate) use_zip_chunks: bool,
    pub(crate) copy_data: bool,
    /// Paths relative to the share (instead of uploaded files).
    pub(crate) server_files: Vec<String>,
    /// The client's order of the uploaded files (`sorting_method=predefined`).
    pub(crate) upload_file_order: Vec<String>,
}

/// Uploaded files: a directory and their sanitised names in arrival order.
#[derive(Debug, Clone)]
pub(crate) struct Uploaded {
    pub(crate) dir: PathBuf,
    pub(crate) files: Vec<String>,
}

/// Where a creation reads and writes.
pub(crate) struct Creation<'a> {
    pub(crate) store: &'a Store,
    /// The share `server_files` are relative to.
    pub(crate) share_dir: Option<&'a Path>,
    /// `--max-extracted-size`: the most an uploaded archive may extract to.
    pub(crate) max_extracted_size: u64,
}

/// Why a task's data could not be created. The messages are the request's (one line, CVAT's
/// wording where CVAT has one); paths in them are the server's, which the caller makes relative.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    #[error("cannot create the task directory: {0}")]
    TaskDir(#[source] std::io::Error),
    #[error("cannot store '{name}': {source}")]
    Store {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot copy '{name}': {source}")]
    Copy {
        name: String,
        source: std::io::Error,
    },
    #[error("server_files cannot be used: the server was started without --share-dir")]
    NoShare,
    /// A refused name, share path or archive, or one that is not media.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("an archive inside an archive is not supported")]
    NestedArchive,
    #[error(
        "the requested frame range (start {start}, stop {stop:?}) selects no frame of {count}"
    )]
    NoFrames {
        start: u64,
        stop: Option<u64>,
        count: u64,
    },
    #[error("the task would have {0} jobs, more than the limit of {max} (CVAT_MAX_JOBS_PER_TASK): use a larger segment_size", max = task::MAX_JOBS_PER_TASK)]
    TooManyJobs(usize),
    #[error("the task was deleted while its data was being created")]
    TaskDeleted,
    #[error(transparent)]
    Db(#[from] StoreError),
    /// The video cannot be opened or decoded.
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("cannot read the video: {0}")]
    VideoStamp(#[source] std::io::Error),
    /// The manifest cannot be written or read back.
    #[error(transparent)]
    Manifest(ManifestError),
    /// The video (`name`, as uploaded) is not one frames can be numbered in.
    #[error("{name}: {reason}")]
    InvalidVideo { name: String, reason: String },
    #[error("the manifest describes images, not a video")]
    ImagesManifest,
    /// No frame of the video (named as uploaded) decodes.
    #[error("{0}: no frame can be decoded")]
    NoFrame(String),
    #[error("Uploaded files do not match the 'upload_file_order' field contents")]
    FileOrder,
    #[error("cannot read '{name}': {source}")]
    ReadImage {
        name: String,
        source: std::io::Error,
    },
    /// An image that is refused (too large) or does not decode.
    #[error(transparent)]
    Image(#[from] BuildError),
}

/// A new, unique data directory for task `task_id` under `media_dir`.
pub(crate) fn task_dir(media_dir: &Path, task_id: i64) -> PathBuf {
    media_dir.join(format!(
        "task_{}_{}",
        task_id,
        uuid::Uuid::new_v4().simple()
    ))
}

/// Removes the data directory unless creation succeeded.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Creates `task`'s data in `dir` (from [`task_dir`]) from the uploaded files, or the share's
/// `params.server_files`. Returns a note for the request's message (e.g. an uploaded manifest
/// that was replaced). The upload directory is removed either way; `dir` unless it succeeded.
pub(crate) fn create_data(
    ctx: &Creation<'_>,
    dir: &Path,
    task: &TaskRow,
    params: &DataParams,
    upload: Option<Uploaded>,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<String, CreateError> {
    let raw = dir.join("raw");
    std::fs::create_dir_all(&raw).map_err(CreateError::TaskDir)?;
    let mut guard = DirGuard(Some(dir.to_path_buf()));
    let upload_dir = upload.as_ref().map(|u| u.dir.clone());
    let result = collect_and_store(ctx, task, params, upload, dir, &raw, progress);
    if let Some(d) = &upload_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    if result.is_ok() {
        guard.0 = None;
    }
    result
}

/// Removes the task data directories under `media_dir` that no task owns (left by a creation
/// the server was stopped in).
pub(crate) fn remove_orphaned_dirs(store: &Store, media_dir: &Path) {
    let owned: HashSet<PathBuf> = store
        .tasks()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| store.data_of_task(t.id).ok().flatten())
        .map(|d| d.spec.dir)
        .collect();
    if let Ok(entries) = std::fs::read_dir(media_dir) {
        for e in entries.flatten() {
            if !owned.contains(&e.path()) {
                tracing::info!("removing orphaned media directory {}", e.path().display());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn collect_and_store(
    ctx: &Creation<'_>,
    task: &TaskRow,
    params: &DataParams,
    session: Option<Uploaded>,
    dir: &Path,
    raw: &Path,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<String, CreateError> {
    progress(0.02, "Collecting the files");
    // 1. The files, as paths relative to a root.
    let (root, rels, storage) = match session {
        Some(s) => {
            let mut rels = Vec::new();
            for f in &s.files {
                std::fs::rename(s.dir.join(f), raw.join(f)).map_err(|source| {
                    CreateError::Store {
                        name: f.clone(),
                        source,
                    }
                })?;
                rels.push(PathBuf::from(f));
            }
            (raw.to_path_buf(), rels, "local")
        }
        None => {
            let share = ctx
                .share_dir
                .map(Path::to_path_buf)
                .ok_or(CreateError::NoShare)?;
            let mut rels = Vec::new();
            for f in &params.server_files {
                let p = ingest::resolve_share_path(&share, f)?;
                let files = if p.is_dir() {
                    ingest::expand_share_dir(&share, &p)?
                } else {
                    vec![p]
                };
                for file in files {
                    rels.push(file.strip_prefix(&share).unwrap_or(&file).to_path_buf());
                }
            }
            rels.sort();
            rels.dedup();
            if params.copy_data {
                for r in &rels {
                    let copy_error = |source| CreateError::Copy {
                        name: r.display().to_string(),
                        source,
                    };
                    let target = raw.join(r);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(copy_error)?;
                    }
                    std::fs::copy(share.join(r), &target).map_err(copy_error)?;
                }
                (raw.to_path_buf(), rels, "local")
            } else {
                (share, rels, "share")
            }
        }
    };
    // 2. What kind of media.
    let set = ingest::classify(&rels)?;
    let mut note = String::new();
    let (root, set) = match set.media {
        Media::Archive(a) => {
            progress(0.05, "Extracting the archive");
            let dest = raw.join("extracted");
            let limits = ArchiveLimits {
                max_total_bytes: ctx.max_extracted_size,
                ..ArchiveLimits::default()
            };
            let files = ingest::extract_archive(&root.join(&a), &dest, &limits)?;
            let inner = ingest::classify_extracted(&files)?;
            (dest, inner)
        }
        _ => (root, set),
    };
    let is_video = matches!(set.media, Media::Video(_));
    // 3. Frames.
    let (count, first_size, media, images) = match &set.media {
        Media::Video(v) => {
            let path = root.join(v);
            let (media, n, note_v) = index_video(
                &path,
                v,
                set.manifest.as_ref().map(|m| root.join(m)),
                dir,
                params,
                progress,
            )?;
            note = note_v;
            let size = match &media {
                MediaSource::Video { width, height, .. } => (*width, *height),
                MediaSource::Images => unreachable!(),
            };
            (n, size, media, Vec::new())
        }
        Media::Images(list) => {
            let images = read_images(&root, list, &set.related_images, params, progress)?;
            let first = images
                .get(params.start_frame as usize)
                .map(|i| (i.width, i.height))
                .unwrap_or((1, 1));
            (images.len() as u64, first, MediaSource::Images, images)
        }
        Media::Archive(_) => return Err(CreateError::NestedArchive),
    };
    let range = FrameRange::new(count, params.start_frame, params.stop_frame, params.step).ok_or(
        CreateError::NoFrames {
            start: params.start_frame,
            stop: params.stop_frame,
            count,
        },
    )?;
    let compressed = if is_video && !params.use_zip_chunks {
        ChunkType::Video
    } else {
        ChunkType::Imageset
    };
    let original = if is_video {
        ChunkType::Video
    } else {
        ChunkType::Imageset
    };
    let chunk_size = params
        .chunk_size
        .unwrap_or_else(|| task::default_chunk_size(compressed, first_size.0, first_size.1));
    let segments = task::segments(range.size, task.segment_size, task.overlap, is_video);
    if segments.len() > task::MAX_JOBS_PER_TASK {
        return Err(CreateError::TooManyJobs(segments.len()));
    }
    let spec = DataSpec {
        range,
        frame_filter: params.frame_filter.clone(),
        chunk_size,
        image_quality: params.image_quality,
        compressed_chunk_type: compressed,
        original_chunk_type: original,
        storage: storage.to_owned(),
        sorting_method: params.sorting.as_str().to_owned(),
        media,
        dir: dir.to_path_buf(),
    };
    progress(0.95, "Saving the task");
    // The task may have been deleted meanwhile.
    if ctx.store.task(task.id)?.is_none() {
        return Err(CreateError::TaskDeleted);
    }
    ctx.store.attach_data(task.id, &spec, &images, &segments)?;
    Ok(note)
}

/// Indexes a video: validates an uploaded manifest (spec §9.2) or generates one with the fast
/// indexer. Returns the media description, the frame count and a note for the request.
fn index_video(
    path: &Path,
    rel: &Path,
    uploaded: Option<PathBuf>,
    dir: &Path,
    params: &DataParams,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<(MediaSource, u64, String), CreateError> {
    let source = media::VideoSource::open(path)?;
    let info = source.info().clone();
    drop(source);
    let stamp = FileStamp::of(path).map_err(CreateError::VideoStamp)?;
    let mut note = String::new();
    let mut manifest_path = None;
    if let Some(m) = uploaded {
        progress(0.1, "Checking the uploaded manifest");
        match manifest::validate(&m, Some(path), &Default::default()) {
            Ok((Manifest::Video { .. }, findings))
                if findings
                    .iter()
                    .all(|f| f.severity != manifest::Severity::Error) =>
            {
                manifest_path = Some(m);
            }
            Ok((_, findings)) => {
                let why = findings
                    .iter()
                    .find(|f| f.severity == manifest::Severity::Error)
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| "not a video manifest".into());
                note =
                    format!("Invalid manifest file was uploaded: {why}; a new one was generated");
            }
            Err(e) => {
                note = format!("Invalid manifest file was uploaded: {e}; a new one was generated")
            }
        }
    }
    if manifest_path.is_none() {
        progress(0.1, "Indexing the video");
        let opts = VideoOptions {
            chunk_size: params.chunk_size.unwrap_or(36) as usize,
            force: true,
            ..Default::default()
        };
        let total = stamp.size.max(1) as f64;
        let report = |p: manifest::Progress| {
            if let manifest::Progress::Demux { bytes, .. } = p {
                progress(0.1 + 0.8 * bytes as f64 / total, "Indexing the video");
            }
        };
        match manifest::index_video(path, &opts, &report) {
            Ok(index) => {
                index
                    .manifest
                    .write_to_dir(dir)
                    .map_err(CreateError::Manifest)?;
                manifest_path = Some(dir.join(manifest::MANIFEST_FILE));
            }
            Err(manifest::ManifestError::Media(e)) => return Err(CreateError::Media(e)),
            Err(manifest::ManifestError::InvalidVideo { reason, .. }) => {
                return Err(CreateError::InvalidVideo {
                    name: rel.display().to_string(),
                    reason,
                })
            }
            Err(e) => {
                // As CVAT: the task is still created, frames are decoded from the start.
                note = format!("Failed to create manifest for the uploaded video: {e}. A manifest will not be used in this task");
            }
        }
    }
    let (frames, width, height, chapters) = match &manifest_path {
        Some(m) => match manifest::read_manifest(m).map_err(CreateError::Manifest)? {
            Manifest::Video { properties, .. } => (
                properties.length,
                properties.resolution[0],
                properties.resolution[1],
                properties
                    .chapters
                    .iter()
                    .map(|c| ChapterInfo {
                        id: c.id,
                        start: c.start,
                        stop: c.stop,
                        title: c
                            .metadata
                            .iter()
                            .find(|(k, _)| k == "title")
                            .map(|(_, v)| v.clone()),
                    })
                    .collect(),
            ),
            Manifest::Images { .. } => return Err(CreateError::ImagesManifest),
        },
        None => {
            // No manifest: count frames by decoding, as CVAT does.
            progress(0.5, "Counting frames");
            let mut r = FrameReader::open(path)?;
            let mut n = 0u64;
            let mut size = None;
            while let Some(f) = r.next_frame()? {
                size.get_or_insert((f.width(), f.height()));
                n += 1;
            }
            let (w, h) = size.ok_or_else(|| CreateError::NoFrame(rel.display().to_string()))?;
            let (w, h) = media::rotated_size(w, h, info.rotation);
            (n, w, h, Vec::new())
        }
    };
    Ok((
        MediaSource::Video {
            path: path.to_path_buf(),
            name: rel.to_string_lossy().into_owned(),
            width,
            height,
            rotation: info.rotation,
            frames,
            manifest: manifest_path,
            stamp,
            chapters,
        },
        frames,
        note,
    ))
}

/// Sorts and reads the images: full decode (so a truncated or fake image fails the request
/// with its name, not a later chunk), size after EXIF orientation, context images.
fn read_images(
    root: &Path,
    list: &[PathBuf],
    related: &[PathBuf],
    params: &DataParams,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<Vec<ImageFrame>, CreateError> {
    let mut list: Vec<PathBuf> = list.to_vec();
    if params.sorting == SortingMethod::Predefined && !params.upload_file_order.is_empty() {
        let order: BTreeMap<&str, usize> = params
            .upload_file_order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let name = |p: &PathBuf| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if list.len() != order.len() || list.iter().any(|p| !order.contains_key(name(p).as_str())) {
            return Err(CreateError::FileOrder);
        }
        list.sort_by_key(|p| order[name(p).as_str()]);
    } else {
        let mut keyed: Vec<(String, PathBuf)> = list
            .into_iter()
            .map(|p| (root.join(&p).to_string_lossy().into_owned(), p))
            .collect();
        params.sorting.sort(&mut keyed, |(k, _)| k.as_str());
        list = keyed.into_iter().map(|(_, p)| p).collect();
    }
    // Context images: <dir>/related_images/<name>_<ext>/… belongs to <dir>/<name>.<ext>.
    let mut ctx: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for r in related {
        if let Some(owner) = manifest::owner_of_path(r) {
            ctx.entry(owner).or_default().push(root.join(r));
        }
    }
    for v in ctx.values_mut() {
        v.sort();
    }
    let total = list.len().max(1) as f64;
    let done = std::sync::atomic::AtomicUsize::new(0);
    list.par_iter()
        .enumerate()
        .map(|(i, rel)| {
            let path = root.join(rel);
            let name = rel.to_string_lossy().replace('\\', "/");
            let read_error = |source| CreateError::ReadImage {
                name: name.clone(),
                source,
            };
            let bytes = std::fs::read(&path).map_err(read_error)?;
            // Refused from its header if over --max-image-pixels; decoded with its memory
            // counted (so parallel creations and builds cannot add up past --memory-limit).
            let (w, h) = crate::chunks::check_image(&bytes, &name)?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 64 == 0 {
                progress(0.05 + 0.85 * n as f64 / total, "Reading the images");
            }
            Ok(ImageFrame {
                frame: i as u64,
                stamp: FileStamp::of(&path).map_err(read_error)?,
                path,
                name,
                width: w,
                height: h,
                related: ctx.get(rel).cloned().unwrap_or_default(),
            })
        })
        .collect()
}
