//! TUS 1.0 uploads (the clients send data files over 100 MiB, and every annotation file, this
//! way): creation (`POST …/data/` or `POST …/annotations/` of a task or a job, with
//! `Upload-Length`), `PATCH …/{file_id}` pieces and `HEAD` resume, at the endpoint the upload was
//! created on. A completed data file joins the task's upload
//! session like a multipart file; a completed annotation file waits for `Upload-Finish`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;

use super::access::{CurrentUser, Scope, St};
use super::{ApiError, AppState};

/// Largest PATCH body accepted (clients send 10 MiB pieces).
pub(crate) const MAX_CHUNK: usize = 64 << 20;

/// What a finished upload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A media file of the task's data upload session.
    Data,
    /// An annotation file to import into the task, or into its job `Some(id)` (found again by
    /// its name at `Upload-Finish`).
    Annotations(Option<i64>),
}

impl Purpose {
    /// The job whose endpoint the upload belongs to (`None`: the task's).
    fn job(self) -> Option<i64> {
        match self {
            Purpose::Data => None,
            Purpose::Annotations(job) => job,
        }
    }
}

/// An upload in progress.
pub(crate) struct TusUpload {
    task_id: i64,
    purpose: Purpose,
    user_id: i64,
    path: PathBuf,
    name: String,
    length: u64,
    offset: u64,
}

/// All uploads in progress, by file id.
pub(crate) type TusUploads = std::sync::Mutex<HashMap<String, TusUpload>>;

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn tus_headers(r: &mut Response, offset: u64) {
    let h = r.headers_mut();
    h.insert("Tus-Resumable", HeaderValue::from_static("1.0.0"));
    h.insert(
        "Upload-Offset",
        HeaderValue::from_str(&offset.to_string()).expect("digits"),
    );
}

/// The `filename` of an `Upload-Metadata` header (`key base64,key base64`).
fn metadata_filename(meta: &str) -> Option<String> {
    meta.split(',').find_map(|kv| {
        let mut it = kv.trim().splitn(2, ' ');
        let (k, v) = (it.next()?, it.next()?);
        (k == "filename")
            .then(|| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .ok()
            })
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    })
}

/// Handles the TUS creation request for task `id` (its upload session must be open); `endpoint`
/// is the absolute URL the pieces go to (`Location` is `endpoint/<file id>`).
pub(crate) fn create(
    st: &AppState,
    id: i64,
    me: &CurrentUser,
    headers: &HeaderMap,
    dir: PathBuf,
    purpose: Purpose,
    endpoint: &str,
) -> Result<Response, ApiError> {
    let length: u64 = header_str(headers, "Upload-Length")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::bad_request("Upload-Length must be a non-negative integer"))?;
    if length > st.config.max_upload_size {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the file is larger than the upload limit of {} bytes",
                st.config.max_upload_size
            ),
        });
    }
    let raw = header_str(headers, "Upload-Metadata")
        .and_then(metadata_filename)
        .ok_or_else(|| ApiError::bad_request("Upload-Metadata must carry a base64 'filename'"))?;
    let name = crate::ingest::sanitize_file_name(&raw)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let path = dir.join(&name);
    let mut uploads = st.tus.lock().unwrap_or_else(|e| e.into_inner());
    if path.exists() || uploads.values().any(|u| u.task_id == id && u.name == name) {
        return Err(ApiError::bad_request(format!(
            "the file '{name}' was uploaded twice"
        )));
    }
    std::fs::File::create(&path)
        .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
    let file_id = uuid::Uuid::new_v4().to_string();
    uploads.insert(
        file_id.clone(),
        TusUpload {
            task_id: id,
            purpose,
            user_id: me.id,
            path,
            name: name.clone(),
            length,
            offset: 0,
        },
    );
    drop(uploads);
    if length == 0 {
        complete(st, &file_id);
    }
    let mut r = StatusCode::CREATED.into_response();
    tus_headers(&mut r, 0);
    let h = r.headers_mut();
    h.insert(
        "Location",
        HeaderValue::from_str(&format!("{endpoint}/{file_id}"))
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    h.insert(
        "Upload-Filename",
        HeaderValue::from_str(&name).unwrap_or_else(|_| HeaderValue::from_static("upload")),
    );
    Ok(r)
}

/// Moves a finished upload into its task's session.
fn complete(st: &AppState, file_id: &str) {
    let done = st
        .tus
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(file_id);
    let Some(u) = done else { return };
    match u.purpose {
        Purpose::Data => {
            if let Some(s) = st
                .uploads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&u.task_id)
            {
                s.files.push(u.name);
            }
        }
        Purpose::Annotations(job) => {
            st.annotation_files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((u.task_id, job, u.name), u.path);
        }
    }
}

/// The upload `file_id` of `me` on the endpoint `at` (a task's, or one of its jobs'), or 404.
fn upload_of(
    st: &AppState,
    at: Scope,
    file_id: &str,
    me: &CurrentUser,
) -> Result<(u64, u64, PathBuf), ApiError> {
    let uploads = st.tus.lock().unwrap_or_else(|e| e.into_inner());
    let u = uploads
        .get(file_id)
        .filter(|u| u.task_id == at.task_id && u.purpose.job() == at.job_id() && u.user_id == me.id)
        .ok_or_else(|| {
            ApiError::not_found("No such upload (finished, expired or never started).")
        })?;
    Ok((u.offset, u.length, u.path.clone()))
}

/// `PATCH /api/tasks/{id}/data/{file_id}`
#[utoipa::path(patch, path = "/api/tasks/{id}/data/{file_id}", tag = "tasks", request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"), params(("id" = i64, Path, description = "Task id"), ("file_id" = String, Path, description = "Upload id")), responses((status = 204, description = "TUS piece appended")))]
pub(crate) async fn append(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path((id, file_id)): Path<(i64, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let at = Scope::task(&st, id, &me)?;
    append_at(st, at, file_id, me, headers, body).await
}

/// `PATCH /api/jobs/{id}/annotations/{file_id}`: a piece of an annotation file uploaded for
/// the job's import.
#[utoipa::path(patch, path = "/api/jobs/{id}/annotations/{file_id}", tag = "jobs", request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"), params(("id" = i64, Path, description = "Job id"), ("file_id" = String, Path, description = "Upload id")), responses((status = 204, description = "TUS piece appended")))]
pub(crate) async fn append_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path((id, file_id)): Path<(i64, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let at = Scope::job(&st, id, &me)?;
    append_at(st, at, file_id, me, headers, body).await
}

async fn append_at(
    st: std::sync::Arc<AppState>,
    at: Scope,
    file_id: String,
    me: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (offset, length, path) = upload_of(&st, at, &file_id, &me)?;
    let sent: Option<u64> =
        header_str(&headers, "Upload-Offset").and_then(|v| v.trim().parse().ok());
    if sent != Some(offset) {
        let mut r = ApiError {
            status: StatusCode::CONFLICT,
            message: format!("Upload-Offset must be the current offset {offset}"),
        }
        .into_response();
        tus_headers(&mut r, offset);
        return Ok(r);
    }
    if offset + body.len() as u64 > length {
        return Err(ApiError::bad_request(format!(
            "the upload would exceed its Upload-Length of {length} bytes"
        )));
    }
    let st2 = std::sync::Arc::clone(&st);
    let fid = file_id.clone();
    let new_offset = tokio::task::spawn_blocking(move || -> Result<u64, ApiError> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
        f.write_all(&body)
            .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
        let mut uploads = st2.tus.lock().unwrap_or_else(|e| e.into_inner());
        let u = uploads
            .get_mut(&fid)
            .ok_or_else(|| ApiError::not_found("The upload was cancelled."))?;
        u.offset += body.len() as u64;
        Ok(u.offset)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    if new_offset == length {
        complete(&st, &file_id);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut r, new_offset);
    Ok(r)
}

/// `HEAD /api/tasks/{id}/data/{file_id}`
#[utoipa::path(head, path = "/api/tasks/{id}/data/{file_id}", tag = "tasks", params(("id" = i64, Path, description = "Task id"), ("file_id" = String, Path, description = "Upload id")), responses((status = 200, description = "TUS upload offset", body = Object)))]
pub(crate) async fn head(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path((id, file_id)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    head_at(&st, Scope::task(&st, id, &me)?, &file_id, &me)
}

/// `HEAD /api/jobs/{id}/annotations/{file_id}`
#[utoipa::path(head, path = "/api/jobs/{id}/annotations/{file_id}", tag = "jobs", params(("id" = i64, Path, description = "Job id"), ("file_id" = String, Path, description = "Upload id")), responses((status = 200, description = "TUS upload offset", body = Object)))]
pub(crate) async fn head_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path((id, file_id)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    head_at(&st, Scope::job(&st, id, &me)?, &file_id, &me)
}

fn head_at(
    st: &AppState,
    at: Scope,
    file_id: &str,
    me: &CurrentUser,
) -> Result<Response, ApiError> {
    let (offset, length, _) = upload_of(st, at, file_id, me)?;
    let mut r = StatusCode::OK.into_response();
    tus_headers(&mut r, offset);
    r.headers_mut().insert(
        "Upload-Length",
        HeaderValue::from_str(&length.to_string()).expect("digits"),
    );
    r.headers_mut()
        .insert("Cache-Control", HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Drops a task's unfinished uploads (task deleted or session restarted).
pub(crate) fn forget_task(st: &AppState, task_id: i64) {
    st.tus
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|_, u| u.task_id != task_id);
}

/// Drops the uploads whose file nobody wrote to for `idle`, with their files; returns how many.
pub(crate) fn forget_stale(st: &AppState, idle: std::time::Duration) -> usize {
    let mut n = 0;
    st.tus
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|_, u| {
            let keep = super::sweep::idle_for(&u.path) < idle;
            if !keep {
                let _ = std::fs::remove_file(&u.path);
                n += 1;
            }
            keep
        });
    n
}

/// Whether an upload in progress writes below `path` (or `path` is inside its file's folder).
pub(crate) fn owns(st: &AppState, path: &std::path::Path) -> bool {
    st.tus
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .any(|u| u.path.starts_with(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filename_is_base64() {
        assert_eq!(
            metadata_filename("filename dmlkZW8ubXA0").as_deref(),
            Some("video.mp4")
        );
        assert_eq!(
            metadata_filename("a Yg==, filename eC5wbmc=").as_deref(),
            Some("x.png")
        );
        assert_eq!(metadata_filename("filename !!!"), None);
    }
}
