//! Dataset export and annotation import as background requests (spec `client-api.md` §11–§12):
//! `POST /api/tasks/{id}/dataset/export?format=&save_images=` → `rq_id`, progress while it runs,
//! then a `result_url` to download the zip (results expire); `POST /api/tasks/{id}/annotations?format=`
//! (Upload-Start / TUS / Upload-Finish, or multipart `annotation_file`) imports, replacing the
//! annotations only if the whole file is valid. The same for jobs.

use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::access::{self, CurrentUser, St};
use super::forwarded::{base_of, BaseUrl};
use super::{annotations as ann_api, tus, ApiError, AppState};
use crate::chunks::Source;
use crate::dataset::{self, ExportData, ExportFrames, FrameFormat, Scope};
use crate::formats::catalogue::{self, Found};
use crate::formats::{
    ExportOptions, Exporter, FormatError, FrameSource, ImportInput, ImportLimits, Importer, ZipSink,
};
use crate::ingest::ArchiveLimits;
use crate::store::RequestRow;

/// How long export results are kept.
pub(crate) const RESULT_TTL: chrono::Duration = chrono::Duration::hours(24);

/// The exporter named `name`, or a 400 naming what is wrong with the name.
fn find_exporter(name: &str) -> Result<Found<dyn Exporter>, ApiError> {
    catalogue::exporter(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The importer named `name`, or a 400 naming what is wrong with the name.
fn find_importer(name: &str) -> Result<Found<dyn Importer>, ApiError> {
    catalogue::importer(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The data of a task, as an export reads its frames (the server's loaded copy).
struct TaskData {
    st: Arc<AppState>,
    task_id: i64,
    data: Arc<super::Loaded>,
}

impl ExportData for TaskData {
    fn source(&self) -> Source<'_> {
        super::data::source(&self.st, &self.data)
    }

    fn cancelled(&self) -> Option<String> {
        check_task_alive(&self.st, self.task_id)
            .err()
            .map(|e| e.to_string())
    }
}

/// Why a background dataset request (an export or an import) failed: the text is the
/// request's message (paths relative to the data dir, as everywhere in messages).
#[derive(Debug, thiserror::Error)]
enum RequestError {
    /// The task's data could not be read.
    #[error("{0}")]
    Data(String),
    /// Its labels, frames or annotations could not be loaded.
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    /// A file of the result could not be written (`what path: error`).
    #[error("cannot {what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The format failed to write the export.
    #[error("export to {path} failed: {source}")]
    Export {
        path: String,
        #[source]
        source: FormatError,
    },
    /// The export was stopped: its task was deleted while it ran.
    #[error(transparent)]
    Cancelled(FormatError),
    /// The file is not valid in the format, or does not fit the task.
    #[error("import failed: {0}")]
    Import(#[source] FormatError),
    /// Storing the imported annotations failed.
    #[error("{0}")]
    Store(String),
    /// The worker thread panicked.
    #[error("the request failed unexpectedly: {0}")]
    Panicked(String),
}

/// Loads the dataset of `scope` (see [`dataset::load`]) and the task's data.
fn load(
    st: &AppState,
    scope: Scope,
    with_annotations: bool,
) -> Result<(dataset::Loaded, Arc<super::Loaded>), RequestError> {
    let data = super::data::loaded(st, scope.task_id).map_err(|e| RequestError::Data(e.message))?;
    let src = super::data::source(st, &data);
    let l = dataset::load(&st.store, &src, scope, with_annotations)?;
    Ok((l, data))
}

#[derive(Deserialize)]
pub(crate) struct ExportQuery {
    format: Option<String>,
    save_images: Option<String>,
    /// `png` (CVAT's naming) or `jpeg` (much smaller and faster) for video frames.
    image_format: Option<String>,
    location: Option<String>,
}

fn python_bool(v: &Option<String>) -> bool {
    v.as_deref()
        .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

impl Scope {
    /// CVAT's request target and its id: `("job", 3)` or `("task", 1)`.
    fn target(&self) -> (&'static str, i64) {
        match self.job {
            Some((j, _, _)) => ("job", j),
            None => ("task", self.task_id),
        }
    }
}

/// CVAT's (2.x) id of an export request:
/// `export:<task|job>-<id>-<annotations|dataset>-in-<format>-format-by-<user>`, the format name
/// with `_` for spaces and `@` for dots. One user's same export of the same thing has one id.
fn export_rq_id(scope: &Scope, subresource: &str, format: &str, user: i64) -> String {
    let (target, id) = scope.target();
    format!(
        "export:{target}-{id}-{subresource}-in-{}-format-by-{user}",
        format.replace(' ', "_").replace('.', "@")
    )
}

/// What CVAT reads back from a request id: the job of a job request, the format of an export.
pub(crate) struct RqIdParts {
    pub job_id: Option<i64>,
    pub format: Option<String>,
}

/// Parses an id made by [`export_rq_id`] or `import:<target>-<id>-annotations` (others give
/// nothing). The format is the registry's name whose encoding matches, as CVAT decodes it.
pub(crate) fn parse_rq_id(rq_id: &str) -> RqIdParts {
    let mut parts = RqIdParts {
        job_id: None,
        format: None,
    };
    let Some((action, rest)) = rq_id.split_once(':') else {
        return parts;
    };
    if let Some(rest) = rest.strip_prefix("job-") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        parts.job_id = digits.parse().ok();
    }
    if action == "export" {
        let encoded = rest
            .split_once("-in-")
            .and_then(|(_, f)| f.rsplit_once("-format-by-"))
            .map(|(f, _)| f);
        parts.format = encoded.map(|e| {
            catalogue::CATALOGUE
                .iter()
                .map(|f| f.info.display_name())
                .find(|n| n.replace(' ', "_").replace('.', "@") == e)
                .unwrap_or_else(|| e.replace('_', " ").replace('@', "."))
        });
    }
    parts
}

/// Held while a request is checked for and stored, so two identical ones cannot both start.
static ENQUEUE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Stores a new queued request `id` of `op` (`export:dataset`, `import:annotations`, …) on
/// `scope`. As in CVAT, an id still queued or running is a 409; a finished one is replaced,
/// and its export result removed.
fn new_request(
    st: &AppState,
    id: String,
    op: &str,
    scope: &Scope,
    owner: i64,
) -> Result<RequestRow, ApiError> {
    let _guard = ENQUEUE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(prev) = st.store.request(&id)? {
        if matches!(prev.status.as_str(), "queued" | "started") {
            let (target, tid) = scope.target();
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                message: format!(
                    "the same request for {target} {tid} is still running ({id}); wait for it to finish"
                ),
            });
        }
        if let Some((_, file_id)) = prev
            .result_url
            .as_deref()
            .and_then(|u| u.rsplit_once("/api/exports/"))
        {
            if !file_id.is_empty() && file_id.chars().all(|c| c.is_ascii_hexdigit()) {
                remove_result(st, file_id);
            }
        }
    }
    let r = RequestRow {
        id,
        status: "queued".into(),
        message: String::new(),
        progress: Some(0.0),
        operation_type: op.into(),
        target: scope.target().0.into(),
        task_id: Some(scope.task_id),
        created_date: Utc::now(),
        started_date: None,
        finished_date: None,
        result_id: None,
        owner_id: Some(owner),
        result_url: None,
    };
    st.store.put_request(&r)?;
    Ok(r)
}

/// Runs `work` on a blocking thread as the background request `req`; `work` gets a progress
/// callback and returns the result URL (exports) or nothing.
fn run_request(
    st: Arc<AppState>,
    req: RequestRow,
    work: impl FnOnce(&Arc<AppState>, &dyn Fn(f64)) -> Result<Option<String>, RequestError>
        + Send
        + 'static,
) {
    tokio::spawn(async move {
        let st2 = Arc::clone(&st);
        let mut running = req.clone();
        let started = Utc::now();
        let outcome = tokio::task::spawn_blocking(move || {
            running.status = "started".into();
            running.started_date = Some(started);
            let _ = st2.store.put_request(&running);
            let last = std::sync::Mutex::new(std::time::Instant::now());
            let progress = |p: f64| {
                let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
                if l.elapsed() > std::time::Duration::from_millis(200) {
                    *l = std::time::Instant::now();
                    let mut r = running.clone();
                    r.progress = Some(p.clamp(0.0, 0.99));
                    let _ = st2.store.put_request(&r);
                }
            };
            work(&st2, &progress)
        })
        .await
        .unwrap_or_else(|e| Err(RequestError::Panicked(e.to_string())));
        let mut done = req;
        done.started_date = Some(started);
        done.finished_date = Some(Utc::now());
        match outcome {
            Ok(url) => {
                done.status = "finished".into();
                done.progress = Some(1.0);
                done.result_url = url;
            }
            Err(e) => {
                done.status = "failed".into();
                done.message = e.to_string();
            }
        }
        let _ = st.store.put_request(&done);
    });
}

fn exports_dir(st: &AppState) -> PathBuf {
    st.config.data_dir.join("exports")
}

/// A file name made of `[A-Za-z0-9_\-. ]` only (what the SDK accepts in Content-Disposition).
fn safe_file_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-. ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.').trim();
    let mut out: String = trimmed.chars().take(240).collect();
    if out.is_empty() {
        out = "export".into();
    }
    out
}

async fn start_export(
    st: Arc<AppState>,
    scope: Scope,
    q: ExportQuery,
    me: CurrentUser,
    base: String,
) -> Result<Response, ApiError> {
    let format = q
        .format
        .clone()
        .ok_or_else(|| ApiError::bad_request("'format' is required"))?;
    let fmt = find_exporter(&format)?;
    if q.location.as_deref().is_some_and(|l| l != "local") {
        return Err(ApiError::bad_request("only location=local is supported"));
    }
    super::data::loaded(&st, scope.task_id).map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::bad_request("the task has no data to export")
        } else {
            e
        }
    })?;
    let save_images = python_bool(&q.save_images);
    let jpeg = q
        .image_format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("jpeg") || f.eq_ignore_ascii_case("jpg"));
    // CVAT's names: a dataset has the images, annotations have not.
    let subresource = if save_images {
        "dataset"
    } else {
        "annotations"
    };
    let format_name = fmt.info.display_name();
    let rq_id = export_rq_id(&scope, subresource, &format_name, me.id);
    let req = new_request(
        &st,
        rq_id.clone(),
        &format!("export:{subresource}"),
        &scope,
        me.id,
    )?;
    let file_id = uuid::Uuid::new_v4().simple().to_string();
    let (target, tid) = scope.target();
    let stamp = Utc::now().format("%Y_%m_%d_%H_%M_%S");
    let download_name = safe_file_name(&format!(
        "{target}-{tid}_{subresource}_{stamp}_{}.zip",
        format.to_lowercase()
    ));
    run_request(st, req, move |st, progress| {
        let t0 = std::time::Instant::now();
        let (l, data) = load(st, scope, true)?;
        let ds = l.dataset();
        let t_load = t0.elapsed();
        let dir = exports_dir(st);
        std::fs::create_dir_all(&dir).map_err(|e| file_error(st, "create", &dir, e))?;
        let part = dir.join(format!("{file_id}.zip.part"));
        let result = (|| -> Result<(), RequestError> {
            let file =
                std::fs::File::create(&part).map_err(|e| file_error(st, "create", &part, e))?;
            let mut zip = ZipSink::new(file);
            let task_data = Arc::new(TaskData {
                st: Arc::clone(st),
                task_id: scope.task_id,
                data: Arc::clone(&data),
            });
            let frames_src = ExportFrames::new(
                task_data,
                l.frames.iter().map(|f| f.rel).collect(),
                if jpeg {
                    FrameFormat::Jpeg
                } else {
                    FrameFormat::Png
                },
            );
            let images: Option<&dyn FrameSource> =
                if save_images { Some(&frames_src) } else { None };
            fmt.side
                .export(
                    &ds,
                    &ExportOptions { save_images },
                    images,
                    &mut zip,
                    progress,
                )
                .map_err(|e| export_error(st, &part, e))?;
            let t_export = t0.elapsed();
            // No fsync: a result is transient and can be made again; the rename below is what
            // keeps a half-written file from ever being served.
            let mut f = zip.finish().map_err(|e| export_error(st, &part, e))?;
            f.flush().map_err(|e| file_error(st, "write", &part, e))?;
            let name_file = dir.join(format!("{file_id}.name"));
            std::fs::write(&name_file, &download_name)
                .map_err(|e| file_error(st, "write", &name_file, e))?;
            check_task_alive(st, scope.task_id).map_err(RequestError::Cancelled)?;
            let done = dir.join(format!("{file_id}.zip"));
            std::fs::rename(&part, &done).map_err(|e| file_error(st, "create", &done, e))?;
            // Deleted between the check and the rename: its results were removed before this
            // one existed.
            if let Err(e) = check_task_alive(st, scope.task_id) {
                remove_result(st, &file_id);
                return Err(RequestError::Cancelled(e));
            }
            tracing::info!(
                task = scope.task_id,
                format = %format_name,
                save_images,
                load_ms = t_load.as_secs_f64() * 1e3,
                export_ms = (t_export - t_load).as_secs_f64() * 1e3,
                finish_ms = (t0.elapsed() - t_export).as_secs_f64() * 1e3,
                "dataset exported"
            );
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
            let _ = std::fs::remove_file(dir.join(format!("{file_id}.name")));
        }
        result?;
        Ok(Some(format!("{base}/api/exports/{file_id}")))
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "rq_id": rq_id }))).into_response())
}

/// `POST /api/tasks/{id}/dataset/export`
#[utoipa::path(post, path = "/api/tasks/{id}/dataset/export", tag = "tasks", params(("id" = i64, Path, description = "Task id"), ("format" = String, Query, description = "Export format name"), ("save_images" = bool, Query, description = "Include images")), responses((status = 202, description = "rq_id of the export request", body = Object)))]
pub(crate) async fn export_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Response, ApiError> {
    let scope = access::Scope::task(&st, id, &me)?.dataset_scope();
    start_export(st, scope, q, me, base).await
}

/// `POST /api/jobs/{id}/dataset/export`
#[utoipa::path(post, path = "/api/jobs/{id}/dataset/export", tag = "jobs", params(("id" = i64, Path, description = "Job id"), ("format" = String, Query, description = "Export format name"), ("save_images" = bool, Query, description = "Include images")), responses((status = 202, description = "rq_id of the export request", body = Object)))]
pub(crate) async fn export_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Response, ApiError> {
    let scope = access::Scope::job(&st, id, &me)?.dataset_scope();
    start_export(st, scope, q, me, base).await
}

/// `GET /api/exports/{file_id}`: an export result (streamed from disk).
#[utoipa::path(get, path = "/api/exports/{file_id}", tag = "requests", params(("file_id" = String, Path, description = "Result id")), responses((status = 200, description = "The zip", content_type = "application/zip")))]
pub(crate) async fn download(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(file_id): Path<String>,
) -> Result<Response, ApiError> {
    if !file_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("Not found."));
    }
    // Only the requester (or an admin) may download.
    let request = st
        .store
        .request_by_result(&format!("/api/exports/{file_id}"))?;
    let task_alive = match request.as_ref().and_then(|r| r.task_id) {
        Some(t) => st.store.task(t)?.is_some(),
        None => true,
    };
    let owner_ok = task_alive && request.is_some_and(|r| me.is_admin || r.owner_id == Some(me.id));
    let dir = exports_dir(&st);
    let path = dir.join(format!("{file_id}.zip"));
    if !owner_ok || !path.exists() {
        return Err(ApiError::not_found(
            "The export result does not exist or has expired; export again.",
        ));
    }
    let name = std::fs::read_to_string(dir.join(format!("{file_id}.name")))
        .unwrap_or_else(|_| "export.zip".into());
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(file_error(&st, "read", &path, e).to_string()))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 << 10));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from_str(&len.to_string()).expect("digits"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(r)
}

/// Removes expired export results, and `.zip.part` files unwritten for `part_idle` (those of
/// exports that were killed; `Duration::ZERO` at start, when no export runs).
pub(crate) fn clean_exports(st: &AppState, part_idle: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(exports_dir(st)) else {
        return;
    };
    let ttl = RESULT_TTL.to_std().expect("positive");
    for e in entries.flatten() {
        let age = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        let part = e.file_name().to_string_lossy().ends_with(".part");
        let expired = (part && age >= part_idle) || age > ttl;
        if expired && std::fs::remove_file(e.path()).is_ok() && part {
            tracing::info!(file = %e.file_name().to_string_lossy(), "removed an interrupted export");
        }
    }
}

/// The export results of a task, to remove with [`remove_results`] once it is deleted (its
/// requests go with it; running exports notice the deletion and stop).
pub(crate) fn results_of_task(st: &AppState, task_id: i64) -> Vec<String> {
    let requests = st.store.requests().unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.task_id == Some(task_id))
        .filter_map(|r| r.result_url.as_deref()?.rsplit_once("/api/exports/"))
        .map(|(_, id)| id.to_owned())
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

/// Removes export results (see [`results_of_task`]).
pub(crate) fn remove_results(st: &AppState, file_ids: &[String]) {
    for id in file_ids {
        remove_result(st, id);
    }
}

fn remove_result(st: &AppState, file_id: &str) {
    let dir = exports_dir(st);
    for ext in ["zip", "name", "zip.part"] {
        let _ = std::fs::remove_file(dir.join(format!("{file_id}.{ext}")));
    }
}

/// Fails an export whose task was deleted while it ran.
fn check_task_alive(st: &AppState, task_id: i64) -> Result<(), FormatError> {
    match st.store.task(task_id) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(FormatError::Cancelled(TASK_DELETED.into())),
        Err(e) => Err(FormatError::Cancelled(format!(
            "the task could not be read: {e}"
        ))),
    }
}

const TASK_DELETED: &str = "the task was deleted during the export";

#[derive(Deserialize)]
pub(crate) struct ImportQuery {
    format: Option<String>,
    filename: Option<String>,
    import_mode: Option<String>,
}

async fn start_import(
    st: Arc<AppState>,
    scope: Scope,
    q: ImportQuery,
    me: CurrentUser,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    // TUS pieces go to the endpoint the upload was created on, as in CVAT.
    let (target, tid) = scope.target();
    let endpoint = format!(
        "{}/api/{target}s/{tid}/annotations",
        base_of(req.extensions())
    );
    let dir = st
        .uploads_dir()
        .join(format!("annotations_{}", scope.task_id));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(file_error(&st, "create", &dir, e).to_string()))?;
    if headers.contains_key("Upload-Length") {
        return tus::create(
            &st,
            scope.task_id,
            &me,
            &headers,
            dir,
            tus::Purpose::Annotations(scope.job.map(|(j, _, _)| j)),
            &endpoint,
        );
    }
    if headers.contains_key("Upload-Start") {
        if let Some(f) = &q.format {
            find_importer(f)?;
        }
        return Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response());
    }
    let format = q
        .format
        .clone()
        .ok_or_else(|| ApiError::bad_request("'format' is required"))?;
    let fmt = find_importer(&format)?;
    // The file: uploaded with TUS (Upload-Finish names it), or in this multipart request.
    let (path, display) = if headers.contains_key("Upload-Finish") {
        let name = q
            .filename
            .clone()
            .ok_or_else(|| ApiError::bad_request("'filename' is required with Upload-Finish"))?;
        let path = st
            .annotation_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(scope.task_id, scope.job.map(|(j, _, _)| j), name.clone()))
            .ok_or_else(|| {
                ApiError::bad_request(format!("no uploaded file '{name}': upload it first"))
            })?;
        (path, name)
    } else {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
            ApiError::bad_request(format!(
                "send the file as multipart 'annotation_file': {}",
                e.body_text()
            ))
        })?;
        let mut saved = None;
        while let Some(field) = mp.next_field().await.map_err(|e| {
            ApiError::bad_request(format!("the upload was interrupted: {}", e.body_text()))
        })? {
            if field.file_name().is_some() {
                let name =
                    crate::ingest::sanitize_file_name(field.file_name().unwrap_or("annotations"))
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let p = dir.join(format!("{}_{name}", uuid::Uuid::new_v4().simple()));
                save_field(&st, field, &p).await?;
                if let Some((old, _)) = saved.replace((p, name)) {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        saved.ok_or_else(|| ApiError::bad_request("no annotation file in the request"))?
    };
    let append = q.import_mode.as_deref() == Some("append");
    // CVAT's id: one import at a time per task or job.
    let rq_id = format!("import:{target}-{tid}-annotations");
    let req = match new_request(&st, rq_id.clone(), "import:annotations", &scope, me.id) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    run_request(st, req, move |st, progress| {
        let r = import_file(st, scope, fmt, &path, &display, append, progress);
        let _ = std::fs::remove_file(&path);
        r.map(|()| None)
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "rq_id": rq_id }))).into_response())
}

/// Streams a multipart file field into `path` (never whole in memory); removes it on failure.
async fn save_field(
    st: &AppState,
    mut field: axum::extract::multipart::Field<'_>,
    path: &FsPath,
) -> Result<(), ApiError> {
    use tokio::io::AsyncWriteExt;
    let write_err =
        |e: std::io::Error| ApiError::internal(file_error(st, "write", path, e).to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(write_err)?;
    let result = async {
        while let Some(chunk) = field.chunk().await.map_err(|e| {
            ApiError::bad_request(format!("the upload was interrupted: {}", e.body_text()))
        })? {
            file.write_all(&chunk).await.map_err(write_err)?;
        }
        file.flush().await.map_err(write_err)
    }
    .await;
    if result.is_err() {
        drop(file);
        let _ = tokio::fs::remove_file(path).await;
    }
    result
}

/// A client-facing message for an I/O failure: what was done, on which file (relative to the
/// data dir, never an absolute server path), and why.
fn file_error(st: &AppState, what: &'static str, path: &FsPath, e: std::io::Error) -> RequestError {
    RequestError::File {
        what,
        path: shown_path(st, path),
        source: e,
    }
}

/// A failed export into `part`: cancellation stays a cancellation.
fn export_error(st: &AppState, part: &FsPath, e: FormatError) -> RequestError {
    match e {
        FormatError::Cancelled(_) => RequestError::Cancelled(e),
        e => RequestError::Export {
            path: shown_path(st, part),
            source: e,
        },
    }
}

/// `path` relative to the data dir (else only its file name).
fn shown_path(st: &AppState, path: &FsPath) -> String {
    match path.strip_prefix(&st.config.data_dir) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The limits an import is read under: the archive rules of task data, and
/// `--max-import-value`.
fn import_limits(st: &AppState) -> ImportLimits {
    ImportLimits {
        archive: ArchiveLimits {
            max_total_bytes: st.config.max_extracted_size,
            ..ArchiveLimits::default()
        },
        max_value: st.config.max_import_value,
    }
}

/// Parses, validates and stores an imported file (`display`: the client's name for it); the
/// existing annotations are replaced only when all of it is valid.
fn import_file(
    st: &AppState,
    scope: Scope,
    fmt: Found<dyn Importer>,
    path: &FsPath,
    display: &str,
    append: bool,
    progress: &dyn Fn(f64),
) -> Result<(), RequestError> {
    let t0 = std::time::Instant::now();
    let (l, _) = load(st, scope, false)?;
    let ds = l.dataset();
    let input =
        ImportInput::open_with(path, display, import_limits(st)).map_err(RequestError::Import)?;
    progress(0.1);
    let imported = fmt.side.import(&input, &ds).map_err(RequestError::Import)?;
    progress(0.8);
    // Parsed and validated against the task or job (`Importer::import`).
    let t_parse = t0.elapsed();
    let objects = imported.len();
    let stored = if append {
        st.store
            .change_annotations(
                scope.task_id,
                vec![crate::store::AnnotationChange::Insert(imported)],
            )
            .map(drop)
            .map_err(|e| RequestError::Store(e.to_string()))
    } else {
        ann_api::replace(
            st,
            scope.task_id,
            scope.job.map(|(_, a, b)| (a, b)),
            imported,
        )
        .map_err(|e| RequestError::Store(e.message))
    };
    tracing::info!(
        task = scope.task_id,
        format = %fmt.info.import_name().unwrap_or_default(),
        objects,
        parse_ms = t_parse.as_millis() as u64,
        store_ms = (t0.elapsed() - t_parse).as_millis() as u64,
        "annotations imported"
    );
    stored
}

/// `POST /api/tasks/{id}/annotations?format=`: import (Upload-Start, TUS, Upload-Finish; or multipart).
#[utoipa::path(post, path = "/api/tasks/{id}/annotations", tag = "tasks", params(("id" = i64, Path, description = "Task id"), ("format" = String, Query, description = "Import format name"), ("filename" = String, Query, description = "Uploaded file name (Upload-Finish)")), responses((status = 202, description = "rq_id of the import request", body = Object)))]
pub(crate) async fn import_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ImportQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let scope = access::Scope::task(&st, id, &me)?.dataset_scope();
    start_import(st, scope, q, me, req).await
}

/// `POST /api/jobs/{id}/annotations?format=`
#[utoipa::path(post, path = "/api/jobs/{id}/annotations", tag = "jobs", params(("id" = i64, Path, description = "Job id"), ("format" = String, Query, description = "Import format name"), ("filename" = String, Query, description = "Uploaded file name (Upload-Finish)")), responses((status = 202, description = "rq_id of the import request", body = Object)))]
pub(crate) async fn import_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ImportQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let scope = access::Scope::job(&st, id, &me)?.dataset_scope();
    start_import(st, scope, q, me, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_what_the_sdk_accepts() {
        assert_eq!(
            safe_file_name("task-1_dataset_2026_cvat for images 1.1.zip"),
            "task-1_dataset_2026_cvat for images 1.1.zip"
        );
        assert_eq!(safe_file_name("../é/x.zip"), "___x.zip");
        assert_eq!(safe_file_name(""), "export");
    }
}
