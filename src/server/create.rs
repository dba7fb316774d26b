//! Task creation from data (spec §11): the upload protocol, parameter validation, and the
//! background job that types the media, extracts archives, indexes videos (our fast manifest
//! generator, or a validated uploaded manifest), reads images, and stores frames, segments and
//! jobs in one transaction. A failed creation leaves nothing behind.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

use super::access::task_or_404;
use super::{ApiError, AppState, UploadSession};
use crate::ingest::{self, ArchiveLimits, Media};
use crate::manifest::{self, Manifest, SortingMethod, VideoOptions};
use crate::media::{self, FrameReader};
use crate::store::{RequestRow, TaskRow};
use crate::task::{
    self, ChapterInfo, ChunkType, DataSpec, FileStamp, FrameRange, ImageFrame, MediaSource,
};

/// Validated data parameters (the `Upload-Finish` body or a one-shot request).
#[derive(Debug, Clone)]
pub(crate) struct DataParams {
    image_quality: u8,
    chunk_size: Option<u64>,
    start_frame: u64,
    stop_frame: Option<u64>,
    frame_filter: String,
    step: u64,
    sorting: SortingMethod,
    use_zip_chunks: bool,
    copy_data: bool,
    server_files: Vec<String>,
    upload_file_order: Vec<String>,
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl DataParams {
    /// Validates the parameters with CVAT's messages.
    pub(crate) fn from_map(m: &Map<String, Value>) -> Result<DataParams, ApiError> {
        let get = |k: &str| m.get(k).filter(|v| !v.is_null());
        let bad = |m: String| ApiError::bad_request(m);
        let image_quality =
            match get("image_quality") {
                None => return Err(bad(
                    "The 'image_quality' parameter is required for image- and video-based tasks"
                        .into(),
                )),
                Some(v) => match int(v) {
                    Some(q) if (1..=100).contains(&q) => q as u8,
                    _ => return Err(bad("image_quality must be an integer from 1 to 100".into())),
                },
            };
        let chunk_size = match get("chunk_size") {
            None => None,
            Some(v) => match int(v) {
                Some(c) if c > 0 && c as u64 <= task::MAX_CHUNK_SIZE => Some(c as u64),
                Some(c) if c > 0 => {
                    return Err(bad(format!(
                        "Chunk size {c} is more than the limit of {} frames (a chunk is built and held in memory whole)",
                        task::MAX_CHUNK_SIZE
                    )))
                }
                _ => return Err(bad("Chunk size must be a positive integer".into())),
            },
        };
        let frame = |k: &str| -> Result<Option<u64>, ApiError> {
            match get(k) {
                None => Ok(None),
                Some(v) => match int(v) {
                    Some(f) if f >= 0 => Ok(Some(f as u64)),
                    _ => Err(bad(format!("{k} must be a non-negative integer"))),
                },
            }
        };
        let start_frame = frame("start_frame")?.unwrap_or(0);
        let stop_frame = frame("stop_frame")?;
        if stop_frame.is_some_and(|s| s > 0 && s < start_frame) {
            return Err(bad("Stop frame must be more or equal start frame".into()));
        }
        let frame_filter = get("frame_filter")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let step = task::parse_step(&frame_filter)
            .ok_or_else(|| bad("Invalid frame filter expression".into()))?;
        let sorting = match get("sorting_method").and_then(Value::as_str) {
            None => SortingMethod::Lexicographical,
            Some(s) => s.parse().map_err(|e: String| bad(e))?,
        };
        let flag = |k: &str| -> Result<bool, ApiError> {
            match get(k) {
                None => Ok(false),
                Some(v) => boolean(v).ok_or_else(|| bad(format!("{k} must be true or false"))),
            }
        };
        Ok(DataParams {
            image_quality,
            chunk_size,
            start_frame,
            stop_frame,
            frame_filter: if step > 1 {
                format!("step={step}")
            } else {
                String::new()
            },
            step,
            sorting,
            use_zip_chunks: flag("use_zip_chunks")?,
            copy_data: flag("copy_data")?,
            server_files: get("server_files").map(strings).unwrap_or_default(),
            upload_file_order: get("upload_file_order").map(strings).unwrap_or_default(),
        })
    }
}

fn header(req: &Request, name: &str) -> bool {
    req.headers().contains_key(name)
}

/// The upload protocol entry point.
pub(crate) async fn post_data(
    st: Arc<AppState>,
    id: i64,
    me: super::access::CurrentUser,
    req: Request,
) -> Result<Response, ApiError> {
    let task = task_or_404(&st, id, &me)?;
    let busy = st
        .creating
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id);
    if task.data_id.is_some() || busy {
        return Err(ApiError::bad_request("Adding more data is not supported"));
    }
    if header(&req, "Upload-Length") {
        // TUS creation: a file larger than the multipart groups, inside the upload session.
        if !st
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
        {
            new_session(&st, id)?;
        }
        let dir = st
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|s| s.dir.clone())
            .expect("session just ensured");
        return super::tus::create(
            &st,
            id,
            &me,
            req.headers(),
            dir,
            super::tus::Purpose::Data,
            &format!(
                "{}/api/tasks/{id}/data",
                super::forwarded::base_of(req.extensions())
            ),
        );
    }
    if header(&req, "Upload-Start") {
        new_session(&st, id)?;
        return Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response());
    }
    if header(&req, "Upload-Multiple") {
        if !st
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
        {
            new_session(&st, id)?;
        }
        receive_multipart(&st, id, req).await?;
        return Ok((StatusCode::OK, Json(json!({}))).into_response());
    }
    if header(&req, "Upload-Finish") {
        let params = json_params(req).await?;
        let session = st
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        // The web UI opens a session even for share tasks: an empty one is no upload.
        let session = match session {
            Some(s) if s.files.is_empty() => {
                let _ = std::fs::remove_dir_all(&s.dir);
                None
            }
            other => other,
        };
        return start(st, me.id, task, params, session);
    }
    let is_multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        new_session(&st, id)?;
        let fields = receive_multipart(&st, id, req).await;
        let session = st
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let fields = match fields {
            Ok(f) => f,
            Err(e) => {
                if let Some(s) = session {
                    let _ = std::fs::remove_dir_all(s.dir);
                }
                return Err(e);
            }
        };
        let params = match DataParams::from_map(&fields) {
            Ok(p) => p,
            Err(e) => {
                if let Some(s) = session {
                    let _ = std::fs::remove_dir_all(s.dir);
                }
                return Err(e);
            }
        };
        let session = session.filter(|s| !s.files.is_empty());
        return start(st, me.id, task, params, session);
    }
    let params = json_params(req).await?;
    start(st, me.id, task, params, None)
}

async fn json_params(req: Request) -> Result<DataParams, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), 16 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    let v: Value = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the data parameters are not valid JSON: {e}"))
        })?
    };
    let m = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the data parameters must be a JSON object"))?;
    DataParams::from_map(m)
}

fn new_session(st: &AppState, id: i64) -> Result<(), ApiError> {
    super::tus::forget_task(st, id);
    let dir = st.uploads_dir().join(format!("task_{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create the upload directory: {e}")))?;
    st.uploads.lock().unwrap_or_else(|e| e.into_inner()).insert(
        id,
        UploadSession {
            dir,
            files: Vec::new(),
        },
    );
    Ok(())
}

/// Streams the files of a multipart request into the task's upload session; returns the other
/// form fields (`server_files[i]` collected into a list).
async fn receive_multipart(
    st: &Arc<AppState>,
    id: i64,
    req: Request,
) -> Result<Map<String, Value>, ApiError> {
    let dir = st
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .map(|s| s.dir.clone())
        .ok_or_else(|| ApiError::bad_request("no upload in progress: send Upload-Start first"))?;
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
        ApiError::bad_request(format!("invalid multipart request: {}", e.body_text()))
    })?;
    let mut fields = Map::new();
    let mut received = Vec::new();
    let result: Result<(), ApiError> = async {
        while let Some(mut field) = mp.next_field().await.map_err(|e| {
            ApiError::bad_request(format!(
                "the upload was interrupted or malformed: {}",
                e.body_text()
            ))
        })? {
            let name = field.name().unwrap_or_default().to_owned();
            if let Some(file_name) = field.file_name().map(str::to_owned) {
                let clean = ingest::sanitize_file_name(&file_name)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let path = dir.join(&clean);
                if path.exists() || received.contains(&clean) {
                    return Err(ApiError::bad_request(format!(
                        "the file '{clean}' was uploaded twice"
                    )));
                }
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
                received.push(clean.clone());
                while let Some(chunk) = field.chunk().await.map_err(|e| {
                    ApiError::bad_request(format!(
                        "the upload of '{clean}' was interrupted: {}",
                        e.body_text()
                    ))
                })? {
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
                }
                out.flush()
                    .await
                    .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
            } else {
                let text = field.text().await.map_err(|e| {
                    ApiError::bad_request(format!("invalid form field '{name}': {}", e.body_text()))
                })?;
                let key = name.split('[').next().unwrap_or(&name).to_owned();
                if key == "server_files" || key == "upload_file_order" {
                    let list = fields
                        .entry(key)
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = list {
                        a.push(Value::String(text));
                    }
                } else {
                    fields.insert(key, Value::String(text));
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        // A truncated or bad upload keeps nothing of this request.
        for f in &received {
            let _ = std::fs::remove_file(dir.join(f));
        }
        return Err(e);
    }
    if let Some(s) = st
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&id)
    {
        s.files.extend(received);
    }
    Ok(fields)
}

/// Starts the background creation; answers 202 with the request id.
fn start(
    st: Arc<AppState>,
    me_id: i64,
    task: TaskRow,
    params: DataParams,
    session: Option<UploadSession>,
) -> Result<Response, ApiError> {
    if session.is_none() && params.server_files.is_empty() {
        return Err(ApiError::bad_request("No media data found"));
    }
    if session.is_some() && !params.server_files.is_empty() {
        return Err(ApiError::bad_request("Only one video, audio, archive, pdf, zip or many image, directory can be used simultaneously, but both uploaded files and server files were given."));
    }
    if !params.server_files.is_empty() {
        let Some(share) = &st.config.share_dir else {
            return Err(ApiError::bad_request(
                "server_files cannot be used: the server was started without --share-dir",
            ));
        };
        // Paths that escape the share (`..`, symlinks) or do not exist are refused up front.
        for f in &params.server_files {
            ingest::resolve_share_path(share, f)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
    }
    {
        let mut creating = st.creating.lock().unwrap_or_else(|e| e.into_inner());
        if !creating.insert(task.id) {
            return Err(ApiError::bad_request("Adding more data is not supported"));
        }
    }
    let rq_id = format!("create:task-{}", task.id);
    let now = Utc::now();
    let request = RequestRow {
        id: rq_id.clone(),
        status: "queued".into(),
        message: String::new(),
        progress: Some(0.0),
        operation_type: "create:task".into(),
        target: "task".into(),
        task_id: Some(task.id),
        created_date: now,
        started_date: None,
        finished_date: None,
        result_id: None,
        owner_id: Some(me_id),
        result_url: None,
    };
    st.store.put_request(&request)?;
    tokio::spawn(async move {
        let st2 = Arc::clone(&st);
        let task_id = task.id;
        let mut req2 = request.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            req2.status = "started".into();
            req2.started_date = Some(Utc::now());
            let _ = st2.store.put_request(&req2);
            let progress = |p: f64, msg: &str| {
                let mut r = req2.clone();
                r.progress = Some(p.clamp(0.0, 1.0));
                r.message = msg.to_owned();
                let _ = st2.store.put_request(&r);
            };
            create_blocking(&st2, &task, &params, session, &progress)
        })
        .await
        .unwrap_or_else(|e| Err(format!("task creation failed unexpectedly: {e}")));
        let mut done = request;
        done.started_date = done.started_date.or(Some(now));
        done.finished_date = Some(Utc::now());
        match outcome {
            Ok(note) => {
                done.status = "finished".into();
                done.progress = Some(1.0);
                done.message = note;
                tracing::info!(task = task_id, "data created");
            }
            Err(msg) => {
                done.status = "failed".into();
                done.message = msg;
                tracing::warn!(task = task_id, "data creation failed: {}", done.message);
            }
        }
        let _ = st.store.put_request(&done);
        st.creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task_id);
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "rq_id": rq_id }))).into_response())
}

/// Marks requests left queued or started by a previous run as failed, and removes media
/// directories that no task owns (a creation interrupted by a crash).
pub(crate) fn fail_interrupted(st: &AppState) {
    if let Ok(reqs) = st.store.requests() {
        for mut r in reqs
            .into_iter()
            .filter(|r| r.status == "queued" || r.status == "started")
        {
            r.status = "failed".into();
            r.message = "the server restarted while this request was running; send it again".into();
            r.finished_date = Some(Utc::now());
            let _ = st.store.put_request(&r);
        }
    }
    let owned: HashSet<PathBuf> = st
        .store
        .tasks()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| st.store.data_of_task(t.id).ok().flatten())
        .map(|d| d.spec.dir)
        .collect();
    if let Ok(entries) = std::fs::read_dir(st.media_dir()) {
        for e in entries.flatten() {
            if !owned.contains(&e.path()) {
                tracing::info!("removing orphaned media directory {}", e.path().display());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
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

/// The creation job. Returns a note for the request message, or the reason it failed.
fn create_blocking(
    st: &AppState,
    task: &TaskRow,
    params: &DataParams,
    session: Option<UploadSession>,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<String, String> {
    let dir = st.media_dir().join(format!(
        "task_{}_{}",
        task.id,
        uuid::Uuid::new_v4().simple()
    ));
    let raw = dir.join("raw");
    std::fs::create_dir_all(&raw).map_err(|e| format!("cannot create the task directory: {e}"))?;
    let mut guard = DirGuard(Some(dir.clone()));
    let session_dir = session.as_ref().map(|s| s.dir.clone());
    let result = collect_and_store(st, task, params, session, &dir, &raw, progress);
    if let Some(d) = &session_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    if result.is_ok() {
        guard.0 = None;
    }
    // Messages name files as the client did: relative to the upload, the archive or the share.
    result.map_err(|m| super::error::task_message(st, &dir, session_dir.as_deref(), &m))
}

fn collect_and_store(
    st: &AppState,
    task: &TaskRow,
    params: &DataParams,
    session: Option<UploadSession>,
    dir: &Path,
    raw: &Path,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<String, String> {
    progress(0.02, "Collecting the files");
    // 1. The files, as paths relative to a root.
    let (root, rels, storage) = match session {
        Some(s) => {
            let mut rels = Vec::new();
            for f in &s.files {
                std::fs::rename(s.dir.join(f), raw.join(f))
                    .map_err(|e| format!("cannot store '{f}': {e}"))?;
                rels.push(PathBuf::from(f));
            }
            (raw.to_path_buf(), rels, "local")
        }
        None => {
            let share = st
                .config
                .share_dir
                .clone()
                .expect("checked before starting");
            let mut rels = Vec::new();
            for f in &params.server_files {
                let p = ingest::resolve_share_path(&share, f).map_err(|e| e.to_string())?;
                let files = if p.is_dir() {
                    ingest::expand_share_dir(&share, &p).map_err(|e| e.to_string())?
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
                    let target = raw.join(r);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| format!("cannot copy '{}': {e}", r.display()))?;
                    }
                    std::fs::copy(share.join(r), &target)
                        .map_err(|e| format!("cannot copy '{}': {e}", r.display()))?;
                }
                (raw.to_path_buf(), rels, "local")
            } else {
                (share, rels, "share")
            }
        }
    };
    // 2. What kind of media.
    let set = ingest::classify(&rels).map_err(|e| e.to_string())?;
    let mut note = String::new();
    let (root, set) = match set.media {
        Media::Archive(a) => {
            progress(0.05, "Extracting the archive");
            let dest = raw.join("extracted");
            let limits = ArchiveLimits {
                max_total_bytes: st.config.max_extracted_size,
                ..ArchiveLimits::default()
            };
            let files = ingest::extract_archive(&root.join(&a), &dest, &limits)
                .map_err(|e| e.to_string())?;
            let inner = ingest::classify_extracted(&files).map_err(|e| e.to_string())?;
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
        Media::Archive(_) => return Err("an archive inside an archive is not supported".into()),
    };
    let range = FrameRange::new(count, params.start_frame, params.stop_frame, params.step)
        .ok_or_else(|| {
            format!(
                "the requested frame range (start {}, stop {:?}) selects no frame of {count}",
                params.start_frame, params.stop_frame
            )
        })?;
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
        return Err(format!(
            "the task would have {} jobs, more than the limit of {} (CVAT_MAX_JOBS_PER_TASK): use a larger segment_size",
            segments.len(),
            task::MAX_JOBS_PER_TASK
        ));
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
    if st.store.task(task.id).map_err(|e| e.to_string())?.is_none() {
        return Err("the task was deleted while its data was being created".into());
    }
    st.store
        .attach_data(task.id, &spec, &images, &segments)
        .map_err(|e| e.to_string())?;
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
) -> Result<(MediaSource, u64, String), String> {
    let source = media::VideoSource::open(path).map_err(|e| e.to_string())?;
    let info = source.info().clone();
    drop(source);
    let stamp = FileStamp::of(path).map_err(|e| format!("cannot read the video: {e}"))?;
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
                    .map_err(|e| e.to_string())?;
                manifest_path = Some(dir.join(manifest::MANIFEST_FILE));
            }
            Err(manifest::ManifestError::Media(e)) => return Err(e.to_string()),
            Err(manifest::ManifestError::InvalidVideo { reason, .. }) => {
                return Err(format!("{}: {reason}", rel.display()))
            }
            Err(e) => {
                // As CVAT: the task is still created, frames are decoded from the start.
                note = format!("Failed to create manifest for the uploaded video: {e}. A manifest will not be used in this task");
            }
        }
    }
    let (frames, width, height, chapters) = match &manifest_path {
        Some(m) => match manifest::read_manifest(m).map_err(|e| e.to_string())? {
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
            Manifest::Images { .. } => {
                return Err("the manifest describes images, not a video".into())
            }
        },
        None => {
            // No manifest: count frames by decoding, as CVAT does.
            progress(0.5, "Counting frames");
            let mut r = FrameReader::open(path).map_err(|e| e.to_string())?;
            let mut n = 0u64;
            let mut size = None;
            while let Some(f) = r.next_frame().map_err(|e| e.to_string())? {
                size.get_or_insert((f.width(), f.height()));
                n += 1;
            }
            let (w, h) =
                size.ok_or_else(|| format!("{}: no frame can be decoded", rel.display()))?;
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
) -> Result<Vec<ImageFrame>, String> {
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
            return Err(
                "Uploaded files do not match the 'upload_file_order' field contents".into(),
            );
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
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read '{name}': {e}"))?;
            // Refused from its header if over --max-image-pixels; decoded with its memory
            // counted (so parallel creations and builds cannot add up past --memory-limit).
            let (w, h) = crate::chunks::check_image(&bytes, &name).map_err(|e| e.to_string())?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 64 == 0 {
                progress(0.05 + 0.85 * n as f64 / total, "Reading the images");
            }
            Ok(ImageFrame {
                frame: i as u64,
                stamp: FileStamp::of(&path).map_err(|e| format!("cannot read '{name}': {e}"))?,
                path,
                name,
                width: w,
                height: h,
                related: ctx.get(rel).cloned().unwrap_or_default(),
            })
        })
        .collect()
}
