//! Task creation from data (spec §11), the HTTP side: the upload protocol (one-shot multipart,
//! or Upload-Start / TUS / Upload-Finish), parameter validation with CVAT's messages, and the
//! background request that runs [`crate::ingest::create`]'s pipeline and reports its outcome.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

use super::access::task_or_404;
use super::{ApiError, AppState, UploadSession};
use crate::ingest;
use crate::ingest::create::{self, Creation, DataParams, Uploaded};
use crate::manifest::SortingMethod;
use crate::store::{RequestRow, TaskRow};
use crate::task;

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
    create::remove_orphaned_dirs(&st.store, &st.media_dir());
}

/// The creation job. Returns a note for the request message, or the reason it failed (naming
/// files as the client did: relative to the upload, the archive or the share).
fn create_blocking(
    st: &AppState,
    task: &TaskRow,
    params: &DataParams,
    session: Option<UploadSession>,
    progress: &(dyn Fn(f64, &str) + Sync),
) -> Result<String, String> {
    let media_dir = st.media_dir();
    let ctx = Creation {
        store: &st.store,
        share_dir: st.config.share_dir.as_deref(),
        max_extracted_size: st.config.max_extracted_size,
    };
    let dir = create::task_dir(&media_dir, task.id);
    let upload = session.map(|s| Uploaded {
        dir: s.dir,
        files: s.files,
    });
    let upload_dir = upload.as_ref().map(|u| u.dir.clone());
    create::create_data(&ctx, &dir, task, params, upload, progress)
        .map_err(|e| super::error::task_message(st, &dir, upload_dir.as_deref(), &e.to_string()))
}
