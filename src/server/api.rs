//! Routes, and the JSON resources: server info, tasks, jobs, requests, metrics.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, ServiceExt};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use super::{data, ApiError, AppState};
use crate::store::{JobRow, RequestRow, TaskRow};
use crate::task::iso_utc;

pub(crate) type St = State<Arc<AppState>>;

/// The application's routes (wrapped in a trailing-slash normaliser by [`service`]).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_upload_size as usize;
    Router::new()
        .route("/api/server/about", get(about))
        .route("/api/tasks", post(create_task).get(list_tasks))
        .route(
            "/api/tasks/{id}",
            get(get_task).patch(patch_task).delete(delete_task),
        )
        .route(
            "/api/tasks/{id}/data",
            post(data::post_data)
                .get(data::task_data)
                .layer(axum::extract::DefaultBodyLimit::max(max_body)),
        )
        .route("/api/tasks/{id}/data/meta", get(data::task_meta))
        .route("/api/tasks/{id}/preview", get(data::task_preview))
        .route("/api/jobs", get(list_jobs))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/data", get(data::job_data))
        .route("/api/jobs/{id}/data/meta", get(data::job_meta))
        .route("/api/jobs/{id}/preview", get(data::job_preview))
        .route("/api/requests", get(list_requests))
        .route("/api/requests/{rq_id}", get(get_request))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("Not found.") })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The service to serve: every route answers with and without a trailing slash (no redirects,
/// which the CVAT clients do not follow reliably).
pub(crate) fn service(
    state: Arc<AppState>,
) -> axum::routing::IntoMakeService<tower_http::normalize_path::NormalizePath<Router>> {
    ServiceExt::<Request>::into_make_service(
        NormalizePathLayer::trim_trailing_slash().layer(router(state)),
    )
}

/// `http://host:port` as the client addressed us (for absolute URLs in responses).
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

async fn about() -> Json<Value> {
    Json(json!({
        "name": "frameserver",
        "description": "A fast, CVAT-compatible media server",
        "version": "2.80.0",
        "logo_url": "",
        "subtitle": concat!("frameserver ", env!("CARGO_PKG_VERSION")),
    }))
}

#[derive(Deserialize)]
struct TaskWrite {
    name: Option<String>,
    #[serde(default)]
    labels: Option<Value>,
    segment_size: Option<u64>,
    overlap: Option<u64>,
    bug_tracker: Option<String>,
    subset: Option<String>,
    assignee_id: Option<i64>,
}

fn validate_labels(labels: &Value) -> Result<(), ApiError> {
    let Some(list) = labels.as_array() else {
        return Err(ApiError::bad_request("'labels' must be a list"));
    };
    let mut names = std::collections::HashSet::new();
    for l in list {
        let name = l
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("every label needs a 'name'"))?;
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ApiError::bad_request(format!(
                "label name '{name}' must be 1 to 64 characters"
            )));
        }
        if !names.insert(name.to_owned()) {
            return Err(ApiError::bad_request(format!(
                "label names must be unique: '{name}'"
            )));
        }
    }
    Ok(())
}

async fn create_task(
    State(st): St,
    headers: HeaderMap,
    body: Result<Json<TaskWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(w) =
        body.map_err(|e| ApiError::bad_request(format!("invalid task JSON: {}", e.body_text())))?;
    let name = w
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("'name' is required"))?;
    let labels = w.labels.unwrap_or(json!([]));
    validate_labels(&labels)?;
    let now = Utc::now();
    let task = st.store.create_task(TaskRow {
        id: 0,
        name,
        labels,
        segment_size: w.segment_size.unwrap_or(0),
        overlap: w.overlap,
        bug_tracker: w.bug_tracker.unwrap_or_default(),
        subset: w.subset.unwrap_or_default(),
        owner_id: None,
        assignee_id: w.assignee_id,
        created_date: now,
        updated_date: now,
        data_id: None,
    })?;
    Ok((
        StatusCode::CREATED,
        Json(task_json(&st, &task, &base_url(&headers))?),
    )
        .into_response())
}

pub(crate) fn task_or_404(st: &AppState, id: i64) -> Result<TaskRow, ApiError> {
    st.store
        .task(id)?
        .ok_or_else(|| ApiError::not_found("Not found."))
}

/// `TaskRead`, with every field the clients read.
fn task_json(st: &AppState, t: &TaskRow, base: &str) -> Result<Value, ApiError> {
    let data = st.store.data_of_task(t.id)?;
    let jobs = st.store.jobs_of_task(t.id)?;
    let (size, chunk_size, quality, comp, orig, mode, data_id) = match &data {
        Some(d) => (
            d.spec.range.size,
            Value::from(d.spec.chunk_size),
            d.spec.image_quality as u64,
            Value::from(d.spec.compressed_chunk_type.as_str()),
            Value::from(d.spec.original_chunk_type.as_str()),
            if matches!(d.spec.media, crate::store::MediaSource::Video { .. }) {
                "interpolation"
            } else {
                "annotation"
            },
            Value::from(d.id),
        ),
        None => (
            0,
            Value::Null,
            70,
            Value::Null,
            Value::Null,
            "",
            Value::Null,
        ),
    };
    Ok(json!({
        "url": format!("{base}/api/tasks/{}", t.id),
        "id": t.id,
        "name": t.name,
        "project_id": null,
        "project_name": null,
        "mode": mode,
        "owner": null,
        "assignee": null,
        "bug_tracker": t.bug_tracker,
        "created_date": iso_utc(t.created_date),
        "updated_date": iso_utc(t.updated_date),
        "overlap": t.overlap,
        "segment_size": t.segment_size,
        "status": "annotation",
        "data_chunk_size": chunk_size,
        "data_compressed_chunk_type": comp,
        "data_original_chunk_type": orig,
        "guide_id": null,
        "data_cloud_storage_id": null,
        "size": size,
        "image_quality": quality,
        "data": data_id,
        "dimension": "2d",
        "subset": t.subset,
        "organization": null,
        "organization_id": null,
        "target_storage": null,
        "source_storage": null,
        "jobs": {"count": jobs.len(), "completed": 0, "validation": 0, "url": format!("{base}/api/jobs?task_id={}", t.id)},
        "labels": {"url": format!("{base}/api/labels?task_id={}", t.id)},
        "assignee_updated_date": null,
        "validation_mode": null,
    }))
}

async fn get_task(
    State(st): St,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = task_or_404(&st, id)?;
    Ok(Json(task_json(&st, &t, &base_url(&headers))?))
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<usize>,
    page_size: Option<usize>,
    task_id: Option<i64>,
}

fn paginate(items: Vec<Value>, q: &ListQuery, base: &str, path: &str) -> Value {
    let size = q.page_size.unwrap_or(10).clamp(1, 1000);
    let page = q.page.unwrap_or(1).max(1);
    let count = items.len();
    let start = (page - 1) * size;
    let results: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let next =
        (start + size < count).then(|| format!("{base}{path}?page={}&page_size={size}", page + 1));
    let previous = (page > 1).then(|| format!("{base}{path}?page={}&page_size={size}", page - 1));
    json!({"count": count, "next": next, "previous": previous, "results": results})
}

async fn list_tasks(
    State(st): St,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers);
    let tasks = st.store.tasks()?;
    let items = tasks
        .iter()
        .map(|t| task_json(&st, t, &base))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(paginate(items, &q, &base, "/api/tasks")))
}

async fn patch_task(
    State(st): St,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Json<TaskWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(w) =
        body.map_err(|e| ApiError::bad_request(format!("invalid task JSON: {}", e.body_text())))?;
    let mut t = task_or_404(&st, id)?;
    if let Some(n) = w.name {
        if n.trim().is_empty() {
            return Err(ApiError::bad_request("'name' cannot be empty"));
        }
        t.name = n;
    }
    if let Some(l) = w.labels {
        validate_labels(&l)?;
        t.labels = l;
    }
    if let Some(b) = w.bug_tracker {
        t.bug_tracker = b;
    }
    if let Some(s) = w.subset {
        t.subset = s;
    }
    if w.assignee_id.is_some() {
        t.assignee_id = w.assignee_id;
    }
    t.updated_date = Utc::now();
    st.store.update_task(&t)?;
    Ok(Json(task_json(&st, &t, &base_url(&headers))?))
}

async fn delete_task(State(st): St, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    task_or_404(&st, id)?;
    if st
        .creating
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id)
    {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message:
                "the task's data is still being created; delete it when the request has finished"
                    .into(),
        });
    }
    let data = st.store.delete_task(id)?;
    if let Some(d) = data {
        // Unlike CVAT, deleting a task frees its cache entries, readers and files at once.
        st.cache.invalidate_data(d.id);
        st.pool.forget(d.id);
        st.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&d.id);
        if d.spec.dir.starts_with(st.media_dir()) {
            if let Err(e) = std::fs::remove_dir_all(&d.spec.dir) {
                tracing::warn!(task = id, "could not remove {}: {e}", d.spec.dir.display());
            }
        }
    }
    if let Some(s) = st
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id)
    {
        let _ = std::fs::remove_dir_all(s.dir);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn job_json(st: &AppState, j: &JobRow, base: &str) -> Result<Value, ApiError> {
    let data = st.store.data_of_task(j.task_id)?;
    let (start, stop, cs, comp, orig, mode) = match &data {
        Some(d) => (
            d.spec.range.abs(j.range.start),
            d.spec.range.abs(j.range.stop),
            Value::from(d.spec.chunk_size),
            d.spec.compressed_chunk_type.as_str(),
            d.spec.original_chunk_type.as_str(),
            if matches!(d.spec.media, crate::store::MediaSource::Video { .. }) {
                "interpolation"
            } else {
                "annotation"
            },
        ),
        None => (0, 0, Value::Null, "", "", ""),
    };
    Ok(json!({
        "url": format!("{base}/api/jobs/{}", j.id),
        "id": j.id,
        "task_id": j.task_id,
        "project_id": null,
        "assignee": null,
        "start_frame": start,
        "stop_frame": stop,
        "frame_count": j.range.len(),
        "status": "annotation",
        "stage": "annotation",
        "state": "new",
        "type": "annotation",
        "mode": mode,
        "dimension": "2d",
        "data_chunk_size": cs,
        "data_compressed_chunk_type": comp,
        "data_original_chunk_type": orig,
        "organization": null,
        "issues": {"count": 0, "url": format!("{base}/api/issues?job_id={}", j.id)},
        "labels": {"url": format!("{base}/api/labels?job_id={}", j.id)},
    }))
}

async fn list_jobs(
    State(st): St,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers);
    let jobs = st.store.jobs(q.task_id)?;
    let items = jobs
        .iter()
        .map(|j| job_json(&st, j, &base))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(paginate(items, &q, &base, "/api/jobs")))
}

async fn get_job(
    State(st): St,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let j = st
        .store
        .job(id)?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(job_json(&st, &j, &base_url(&headers))?))
}

pub(crate) fn request_json(r: &RequestRow) -> Value {
    json!({
        "id": r.id,
        "status": r.status,
        "message": r.message,
        "progress": r.progress,
        "operation": {
            "type": r.operation_type,
            "target": r.target,
            "project_id": null,
            "task_id": r.task_id,
            "job_id": null,
            "format": null,
            "function_id": null,
            "lightweight": null,
        },
        "created_date": iso_utc(r.created_date),
        "started_date": r.started_date.map(iso_utc),
        "finished_date": r.finished_date.map(iso_utc),
        "expiry_date": null,
        "result_url": null,
        "result_id": r.result_id,
    })
}

async fn get_request(State(st): St, Path(rq_id): Path<String>) -> Result<Json<Value>, ApiError> {
    // Axum has already percent-decoded the path segment (`create%3Atask-1` → `create:task-1`).
    let r = st
        .store
        .request(&rq_id)?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(request_json(&r)))
}

async fn list_requests(
    State(st): St,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let items = st.store.requests()?.iter().map(request_json).collect();
    Ok(Json(paginate(
        items,
        &q,
        &base_url(&headers),
        "/api/requests",
    )))
}

async fn metrics(State(st): St) -> impl IntoResponse {
    let mut body = st.cache.render_metrics();
    body.push_str(&format!(
        "# HELP frameserver_decoders_open Video readers kept open for sequential access.\n# TYPE frameserver_decoders_open gauge\nframeserver_decoders_open {}\n",
        st.pool.len()
    ));
    body.push_str(&format!(
        "# HELP frameserver_frames_decoded_total Video frames decoded for chunks and frames.\n# TYPE frameserver_frames_decoded_total counter\nframeserver_frames_decoded_total {}\n# HELP frameserver_seeks_total Seeks made to build chunks.\n# TYPE frameserver_seeks_total counter\nframeserver_seeks_total {}\n",
        crate::frames::FRAMES_DECODED.load(std::sync::atomic::Ordering::Relaxed),
        crate::frames::SEEKS.load(std::sync::atomic::Ordering::Relaxed)
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
