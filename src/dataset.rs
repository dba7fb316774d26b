//! Dataset assembly: what a format needs of a task or one of its jobs (labels, frames,
//! annotations and the task's meta), read from the store and the task's data, and the frames
//! of an export with images. Domain code below the server: its export and import requests call
//! it, and so can a CLI or a bench, with nothing of the HTTP state.
//!
//! Export frames are read through the chunk path ([`Source`]): an image task's original files
//! (EXIF-rotated and TIFF images re-encoded, as in original chunks), or the video decoded once,
//! sequentially, and encoded on the other cores ([`codec::encode_overlapped`]). Both check that
//! the source is still the file the task was made from, as chunk builds do.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::annotations::{Annotations, LabelIndex};
use crate::chunks::{self, BuildError, Source};
use crate::codec;
use crate::formats::{DatasetFrame, FormatError, FrameSource, TaskDataset};
use crate::media::{ColorMode, DecodedFrame, RgbConverter};
use crate::store::{Store, StoreError};
use crate::task::{iso_utc, MediaSource};

/// What a dataset covers: a whole task, or one of its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub task_id: i64,
    /// The job: `(id, first, last)` task-relative frames.
    pub job: Option<(i64, u64, u64)>,
}

impl Scope {
    /// The task-relative frames covered, given the task's size.
    pub fn frames(&self, task_size: u64) -> (u64, u64) {
        self.job
            .map(|(_, a, b)| (a, b))
            .unwrap_or((0, task_size.saturating_sub(1)))
    }
}

/// Why a dataset could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("the task was deleted")]
    TaskDeleted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A task's or job's dataset, owned: [`Loaded::dataset`] is the view formats read.
#[derive(Debug)]
pub struct Loaded {
    pub task_id: i64,
    pub labels: LabelIndex,
    pub annotations: Arc<Annotations>,
    pub frames: Vec<DatasetFrame>,
    meta: TaskMeta,
}

#[derive(Debug)]
struct TaskMeta {
    name: String,
    mode: String,
    size: u64,
    overlap: u64,
    bug_tracker: String,
    subset: String,
    created: String,
    updated: String,
    owner: Option<String>,
    original_size: Option<(u32, u32)>,
    segments: Vec<(i64, u64, u64)>,
}

impl Loaded {
    /// The view formats export from and import against.
    pub fn dataset(&self) -> TaskDataset<'_> {
        let m = &self.meta;
        TaskDataset {
            task_id: self.task_id,
            name: m.name.clone(),
            mode: m.mode.clone(),
            size: m.size,
            overlap: m.overlap,
            bug_tracker: m.bug_tracker.clone(),
            subset: m.subset.clone(),
            created: m.created.clone(),
            updated: m.updated.clone(),
            owner: m.owner.clone(),
            original_size: m.original_size,
            segments: m.segments.clone(),
            labels: &self.labels,
            frames: self.frames.clone(),
            annotations: &self.annotations,
        }
    }
}

/// Reads the dataset of `scope` from `store` and the task's data `src`; `with_annotations`
/// false skips reading the stored annotations (imports replace them and do not need them).
pub fn load(
    store: &Store,
    src: &Source<'_>,
    scope: Scope,
    with_annotations: bool,
) -> Result<Loaded, DatasetError> {
    let task = store
        .task(scope.task_id)?
        .ok_or(DatasetError::TaskDeleted)?;
    let spec = src.spec;
    let (lo, hi) = scope.frames(spec.range.size);
    let frames = (lo..=hi)
        .filter_map(|rel| {
            let abs = spec.range.abs(rel);
            Some(match &spec.media {
                MediaSource::Video { width, height, .. } => DatasetFrame {
                    rel,
                    abs,
                    name: format!("frame_{abs:06}.PNG"),
                    width: *width,
                    height: *height,
                },
                MediaSource::Images => {
                    let img = src.images.get(abs as usize)?;
                    DatasetFrame {
                        rel,
                        abs,
                        name: img.name.clone(),
                        width: img.width,
                        height: img.height,
                    }
                }
            })
        })
        .collect();
    let labels = LabelIndex::new(&store.labels(scope.task_id)?);
    let annotations = if with_annotations {
        store.annotations(scope.task_id, scope.job.map(|(_, a, b)| (a, b)))?
    } else {
        Arc::default()
    };
    let jobs = store.jobs_of_task(scope.task_id)?;
    let is_video = matches!(spec.media, MediaSource::Video { .. });
    let meta = TaskMeta {
        name: task.name.clone(),
        mode: if is_video {
            "interpolation"
        } else {
            "annotation"
        }
        .into(),
        size: hi - lo + 1,
        overlap: task
            .overlap
            .unwrap_or(if is_video && jobs.len() > 1 { 5 } else { 0 }),
        bug_tracker: task.bug_tracker.clone(),
        subset: task.subset.clone(),
        created: iso_utc(task.created_date),
        updated: iso_utc(task.updated_date),
        owner: task
            .owner_id
            .and_then(|id| store.user(id).ok().flatten())
            .map(|u| u.username),
        original_size: match &spec.media {
            MediaSource::Video { width, height, .. } => Some((*width, *height)),
            MediaSource::Images => None,
        },
        segments: jobs
            .iter()
            .filter(|j| scope.job.is_none_or(|(id, _, _)| id == j.id))
            .map(|j| (j.id, j.range.start, j.range.stop))
            .collect(),
    };
    Ok(Loaded {
        task_id: scope.task_id,
        labels,
        annotations,
        frames,
        meta,
    })
}

/// What an export's frames are read from: the task's data, and whether the export should stop
/// (the task was deleted, the server is stopping).
pub trait ExportData: Send + Sync + 'static {
    /// The task's data, as chunk builds read it.
    fn source(&self) -> Source<'_>;
    /// `Some(reason)` when the export should stop.
    fn cancelled(&self) -> Option<String>;
}

/// How exported video frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// CVAT's choice: lossless, large, slow.
    Png,
    /// JPEG at quality 95 (`image_format=jpeg`): much smaller and faster.
    Jpeg,
}

impl FrameFormat {
    fn ext(self) -> &'static str {
        match self {
            FrameFormat::Png => "PNG",
            FrameFormat::Jpeg => "jpg",
        }
    }
}

/// An encoded video frame, or why the pipeline stopped.
type Encoded = Result<Vec<u8>, BuildError>;

/// The frames of an export with images ([`FrameSource`]): image tasks give their original
/// files; video frames are decoded once, in order, and encoded on all cores a few frames ahead
/// of the writer. Formats ask for the frames in order; a frame asked for out of order on a video
/// is refused.
pub struct ExportFrames<D: ExportData> {
    data: Arc<D>,
    format: FrameFormat,
    /// The task frames the export writes, in order (the video pipeline decodes these).
    frames: Vec<u64>,
    /// The video pipeline, started at the first frame asked for, and the position in `frames`
    /// of the next frame it sends.
    pipeline: Mutex<Option<(Receiver<Encoded>, usize)>>,
}

impl<D: ExportData> ExportFrames<D> {
    /// Frames `frames` (task-relative, ascending) of `data`, video frames encoded as `format`.
    pub fn new(data: Arc<D>, frames: Vec<u64>, format: FrameFormat) -> Self {
        ExportFrames {
            data,
            format,
            frames,
            pipeline: Mutex::new(None),
        }
    }

    /// Decodes the export's frames in order on a thread of its own, encoding them on the others
    /// (the chunk path's decoder and [`codec::encode_overlapped`]); a bounded channel carries
    /// them to the writer, so a slow writer stops the decoder instead of growing memory. The
    /// thread stops when the receiver is dropped.
    fn start(&self) -> Receiver<Encoded> {
        let (tx, rx) = mpsc::sync_channel::<Encoded>(4);
        let data = Arc::clone(&self.data);
        let frames = self.frames.clone();
        let format = self.format;
        std::thread::spawn(move || {
            let src = data.source();
            let wanted: Vec<u64> = frames.iter().map(|&r| src.spec.range.abs(r)).collect();
            let rotation = match &src.spec.media {
                MediaSource::Video { rotation, .. } => *rotation,
                MediaSource::Images => 0.0,
            };
            let send = |tx: &SyncSender<Encoded>, e: Encoded| {
                tx.send(e)
                    .map_err(|_| BuildError::Busy("export cancelled".into()))
            };
            let r = codec::encode_overlapped(
                || {
                    let mut rgb = RgbConverter::new(ColorMode::Untagged);
                    move |f: &DecodedFrame| encode_frame(&mut rgb, f, rotation, format)
                },
                |submit| src.decode_video(&wanted, |_, f| submit(f)),
                |bytes| send(&tx, Ok(bytes)),
            );
            if let Err(e) = r {
                let _ = tx.send(Err(e));
            }
        });
        rx
    }
}

/// A decoded frame → RGB (CVAT's conversion), rotated by the display matrix, encoded.
fn encode_frame(
    rgb: &mut RgbConverter,
    f: &DecodedFrame,
    rotation: f64,
    format: FrameFormat,
) -> Result<Vec<u8>, BuildError> {
    let raster = chunks::frame_raster(rgb, f, rotation)?;
    Ok(match format {
        FrameFormat::Jpeg => codec::encode_jpeg(&raster, 95)?,
        FrameFormat::Png => codec::encode_png(&raster)?,
    })
}

impl<D: ExportData> FrameSource for ExportFrames<D> {
    fn image(&self, rel: u64) -> Result<(Vec<u8>, String), FormatError> {
        // Frames are the long part of an export: stop as soon as it is cancelled.
        if let Some(reason) = self.data.cancelled() {
            return Err(FormatError::Cancelled(reason));
        }
        let src = self.data.source();
        let abs = src.spec.range.abs(rel);
        if let MediaSource::Images = src.spec.media {
            let img = src
                .images
                .get(abs as usize)
                .ok_or_else(|| FormatError::Frame {
                    frame: rel,
                    reason: "the task has no such frame".into(),
                })?;
            return chunks::original_image_bytes(img).map_err(|e| FormatError::Frame {
                frame: rel,
                reason: e.to_string(),
            });
        }
        let mut guard = self.pipeline.lock().unwrap_or_else(|e| e.into_inner());
        let (rx, next) = guard.get_or_insert_with(|| (self.start(), 0));
        // In order: skip frames the format did not ask for, refuse going back.
        while let Some(&want) = self.frames.get(*next) {
            if want > rel {
                break;
            }
            *next += 1;
            let got = rx.recv().map_err(|_| FormatError::Frame {
                frame: rel,
                reason: "it could not be decoded".into(),
            })?;
            let bytes = got.map_err(|e| FormatError::Frame {
                frame: rel,
                reason: e.to_string(),
            })?;
            if want == rel {
                return Ok((bytes, self.format.ext().to_owned()));
            }
        }
        Err(FormatError::Frame {
            frame: rel,
            reason: "not one of the export's frames, or asked for twice".into(),
        })
    }
}
