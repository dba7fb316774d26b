//! Routes, and the JSON resources: server info, tasks, labels, jobs, requests, metrics.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use super::access::{readable, task_or_404, visible, CurrentUser, St};
use super::auth::{self, basic_user};
use super::forwarded::{self, BaseUrl};
use super::input::{assignee, json_body, present};
use super::listing::{Fields, ListQuery};
use super::{annotations, data, datasets, tus, ApiError, AppState};
use crate::labels::{parse_labels, LabelSpec};
use crate::store::{label_json, RequestRow, TaskRow};
use crate::task::iso_utc;
use crate::workflow::Status;

/// The application's routes (wrapped in a trailing-slash normaliser by [`service`]).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_upload_size as usize;
    Router::new()
        .route("/api/server/about", get(about))
        .route("/api/server/annotation/formats", get(formats))
        .route("/api/server/plugins", get(plugins))
        .route("/api/server/health", get(health))
        .route("/api/server/share", get(share))
        .route("/api/schema", get(super::openapi::schema))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route(
            "/api/auth/access_tokens",
            post(auth::create_token).get(auth::list_tokens),
        )
        .route("/api/auth/access_tokens/self", get(auth::token_self))
        .route("/api/auth/access_tokens/{id}", delete(auth::revoke_token))
        .route("/api/users/self", get(auth::users_self))
        .route("/api/users", get(auth::list_users))
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
        .route(
            "/api/tasks/{id}/data/{file_id}",
            axum::routing::patch(tus::append)
                .head(tus::head)
                .layer(axum::extract::DefaultBodyLimit::max(tus::MAX_CHUNK)),
        )
        .route("/api/tasks/{id}/data/meta", get(data::task_meta))
        .route(
            "/api/tasks/{id}/annotations",
            get(annotations::get_task)
                .put(annotations::put_task)
                .patch(annotations::patch_task)
                .delete(annotations::delete_task)
                .post(datasets::import_task)
                // For multipart imports (streamed to disk); PUT/PATCH bodies are streamed
                // under `--max-annotation-body` by `annotations::parse_body`.
                .layer(axum::extract::DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/api/tasks/{id}/annotations/{file_id}",
            axum::routing::patch(tus::append)
                .head(tus::head)
                .layer(axum::extract::DefaultBodyLimit::max(tus::MAX_CHUNK)),
        )
        .route(
            "/api/tasks/{id}/dataset/export",
            post(datasets::export_task),
        )
        .route("/api/jobs/{id}/dataset/export", post(datasets::export_job))
        .route("/api/exports/{file_id}", get(datasets::download))
        .route(
            "/api/jobs/{id}/annotations",
            get(annotations::get_job)
                .put(annotations::put_job)
                .patch(annotations::patch_job)
                .delete(annotations::delete_job)
                .post(datasets::import_job)
                // As for tasks: multipart imports; PUT/PATCH have their own limit.
                .layer(axum::extract::DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/api/jobs/{id}/annotations/{file_id}",
            axum::routing::patch(tus::append_job)
                .head(tus::head_job)
                .layer(axum::extract::DefaultBodyLimit::max(tus::MAX_CHUNK)),
        )
        .route("/api/tasks/{id}/preview", get(data::task_preview))
        .route("/api/labels", get(list_labels))
        .route("/api/labels/{id}", get(get_label))
        .route("/api/jobs", get(super::jobs::list_jobs))
        .route(
            "/api/issues",
            get(super::review::list_issues).post(super::review::create_issue),
        )
        .route(
            "/api/issues/{id}",
            get(super::review::get_issue)
                .patch(super::review::patch_issue)
                .delete(super::review::delete_issue),
        )
        .route(
            "/api/comments",
            get(super::review::list_comments).post(super::review::create_comment),
        )
        .route(
            "/api/comments/{id}",
            get(super::review::get_comment)
                .patch(super::review::patch_comment)
                .delete(super::review::delete_comment),
        )
        .route(
            "/api/events",
            post(super::events::post_events).layer(axum::extract::DefaultBodyLimit::max(
                super::events::MAX_EVENTS_BODY,
            )),
        )
        .route("/api/organizations", get(super::absent::empty_page))
        .route("/api/invitations", get(super::absent::empty_page))
        .route("/api/user-agreements", get(super::absent::empty_list))
        .route("/api/lambda/functions", get(super::absent::empty_list))
        .route("/api/lambda/requests", get(super::absent::empty_list))
        .route(
            "/api/jobs/{id}",
            get(super::jobs::get_job).patch(super::jobs::patch_job),
        )
        .route("/api/jobs/{id}/data", get(data::job_data))
        .route("/api/jobs/{id}/data/meta", get(data::job_meta))
        .route("/api/jobs/{id}/preview", get(data::job_preview))
        .route("/api/requests", get(list_requests))
        .route("/api/requests/{rq_id}", get(get_request))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_auth,
        ))
        // Outside authentication: the login needs the client address.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            forwarded::annotate,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Unknown server paths are 404s; with `--ui-dir`, every other path is the UI's.
async fn fallback(State(st): St, req: axum::extract::Request) -> Response {
    match &st.config.ui_dir {
        Some(dir) if !super::ui::is_server_path(req.uri().path()) => {
            super::ui::serve(dir.clone(), req).await
        }
        _ => ApiError::not_found("Not found.").into_response(),
    }
}

/// The service to serve: every route answers with and without a trailing slash (no redirects,
/// which the CVAT clients do not follow reliably).
pub(crate) fn service(state: Arc<AppState>) -> tower_http::normalize_path::NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router(state))
}

#[utoipa::path(get, path = "/api/server/about", tag = "server", responses((status = 200, description = "Server name and the CVAT version it is compatible with", body = Object)))]
pub(crate) async fn about() -> Json<Value> {
    Json(json!({
        "name": "frameserver",
        "description": "A fast, CVAT-compatible media server",
        "version": "2.80.0",
        "logo_url": "",
        "subtitle": concat!("frameserver ", env!("CARGO_PKG_VERSION")),
    }))
}

/// CVAT's format list, from the catalogue: a format is enabled once frameserver implements it.
/// `dimension` is CVAT's `DimensionType` value ("2d"), which the web UI compares with the job's
/// to offer a format.
#[utoipa::path(get, path = "/api/server/annotation/formats", tag = "server", responses((status = 200, description = "Dataset formats (importers, exporters)", body = Object)))]
pub(crate) async fn formats() -> Json<Value> {
    use crate::formats::catalogue;
    Json(json!({"importers": catalogue::importers(), "exporters": catalogue::exporters()}))
}

/// `GET /api/server/health/?format=json`, without login as in CVAT (django-health-check's
/// shape: one entry per check, 200 when all work, 500 naming the one that does not).
#[utoipa::path(get, path = "/api/server/health", tag = "server", responses((status = 200, description = "Every check works", body = Object), (status = 500, description = "A check failed", body = Object)))]
pub(crate) async fn health(State(st): St) -> Response {
    // Answered to anyone: the causes go to the log, not into the response.
    let database = st.store.check().map_err(|e| {
        tracing::error!("health check: database: {e}");
        "unavailable: the database does not answer"
    });
    let disk = super::check_writable(&st.media_dir()).map_err(|e| {
        tracing::error!("health check: {e}");
        "unavailable: the data directory is not writable"
    });
    let status = |r: &Result<(), &'static str>| match r {
        Ok(()) => "working",
        Err(e) => *e,
    };
    let code = if database.is_ok() && disk.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = json!({"DatabaseBackend": status(&database), "DiskUsage": status(&disk)});
    (code, Json(body)).into_response()
}

#[utoipa::path(get, path = "/api/server/plugins", tag = "server", responses((status = 200, description = "Plugins (none)", body = Object)))]
pub(crate) async fn plugins() -> Json<Value> {
    Json(json!({"GIT_INTEGRATION": false, "ANALYTICS": false, "MODELS": false, "PREDICT": false}))
}

#[derive(Deserialize)]
pub(crate) struct ShareQuery {
    directory: Option<String>,
}

/// `GET /api/server/share?directory=`: one level of the share, directories first.
#[utoipa::path(get, path = "/api/server/share", tag = "server", params(("directory" = String, Query, description = "Directory relative to the share root")), responses((status = 200, description = "One level of the share directory", body = Object)))]
pub(crate) async fn share(
    State(st): St,
    Query(q): Query<ShareQuery>,
) -> Result<Json<Value>, ApiError> {
    let root = st
        .config
        .share_dir
        .clone()
        .ok_or_else(|| ApiError::not_found("The server has no share directory"))?;
    let dir = q.directory.unwrap_or_else(|| "/".into());
    let path = crate::ingest::resolve_share_path(&root, &dir)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !path.is_dir() {
        return Err(ApiError::bad_request(format!("'{dir}' is not a directory")));
    }
    let canonical_root = root
        .canonicalize()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut entries: Vec<(bool, String, Value)> = Vec::new();
    for e in std::fs::read_dir(&path)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .flatten()
    {
        // Skip entries (e.g. symlinks) that lead outside the share.
        let Ok(target) = e.path().canonicalize() else {
            continue;
        };
        if !target.starts_with(&canonical_root) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = target.is_dir();
        // CVAT's media kinds (its `get_mime`), which the web UI checks a selection against.
        let mime = if is_dir {
            "DIR"
        } else {
            match mime_guess::from_path(&name).first_raw().unwrap_or("") {
                m if m.starts_with("image/") => "image",
                m if m.starts_with("video/") => "video",
                "application/zip" => "zip",
                "application/pdf" => "pdf",
                "application/x-tar"
                | "application/gzip"
                | "application/x-gzip"
                | "application/x-bzip2"
                | "application/x-7z-compressed"
                | "application/vnd.rar"
                | "application/x-rar-compressed" => "archive",
                _ => "unknown",
            }
        };
        entries.push((
            !is_dir,
            name.clone(),
            json!({"name": name, "type": if is_dir { "DIR" } else { "REG" }, "mime_type": mime}),
        ));
    }
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(Json(Value::Array(
        entries.into_iter().map(|(_, _, v)| v).collect(),
    )))
}

/// `TaskWriteRequest` / `PatchedTaskWriteRequest`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TaskWrite {
    name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    labels: Option<Value>,
    segment_size: Option<u64>,
    overlap: Option<u64>,
    bug_tracker: Option<String>,
    subset: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    assignee_id: Option<Value>,
    owner_id: Option<i64>,
    #[schema(value_type = Option<i64>)]
    project_id: Option<Value>,
}

impl TaskWrite {
    /// CVAT's field lengths (`Task.name` 256, `bug_tracker` 2000, `subset` 64 characters),
    /// refused with DRF's wording.
    fn check_lengths(&self) -> Result<(), ApiError> {
        for (field, value, max) in [
            ("name", &self.name, MAX_TASK_NAME),
            ("bug_tracker", &self.bug_tracker, 2000),
            ("subset", &self.subset, 64),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                return Err(ApiError::bad_request(format!(
                    "'{field}': ensure this field has no more than {max} characters."
                )));
            }
        }
        Ok(())
    }
}

/// Longest task name (CVAT's `Task.name` column).
const MAX_TASK_NAME: usize = 256;

/// Stores labels (and sublabels) of a task; answers the names and ids of the labels stored at
/// this level.
fn insert_labels(
    st: &AppState,
    task_id: i64,
    labels: &[LabelSpec],
    parent: Option<i64>,
) -> Result<Vec<(String, i64)>, ApiError> {
    let mut stored = Vec::with_capacity(labels.len());
    for l in labels {
        let attrs: Vec<Value> = l.attributes.iter().map(|(_, a)| a.clone()).collect();
        let id = st.store.insert_label(task_id, parent, &l.info, &attrs)?;
        let subs = insert_labels(st, task_id, &l.sublabels, Some(id))?;
        if let (Some(svg), false) = (l.info["svg"].as_str(), subs.is_empty()) {
            let mut info = l.info.clone();
            info["svg"] = Value::from(crate::labels::svg_with_label_ids(svg, &subs));
            st.store.update_label(id, &info, &[])?;
        }
        stored.push((l.info["name"].as_str().unwrap_or("").to_owned(), id));
    }
    Ok(stored)
}

#[utoipa::path(post, path = "/api/tasks", tag = "tasks", responses((status = 201, description = "TaskRead of the new task", body = Object)))]
pub(crate) async fn create_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<TaskWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let w = json_body(body, "task")?;
    w.check_lengths()?;
    let name = w
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("'name' is required"))?;
    if w.project_id.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(ApiError::bad_request(
            "projects are not supported yet: create the task without 'project_id'",
        ));
    }
    let labels = parse_labels(&w.labels.unwrap_or(json!([]))).map_err(ApiError::bad_request)?;
    let assignee_id = assignee(&st, &w.assignee_id)?.flatten();
    let owner_id = match w.owner_id {
        Some(o) if me.is_admin => {
            st.store
                .user(o)?
                .ok_or_else(|| ApiError::bad_request(format!("no user with id {o}")))?;
            o
        }
        _ => me.id,
    };
    let task = st.store.create_task(TaskRow {
        segment_size: w.segment_size.unwrap_or(0),
        overlap: w.overlap,
        bug_tracker: w.bug_tracker.unwrap_or_default(),
        subset: w.subset.unwrap_or_default(),
        owner_id: Some(owner_id),
        assignee_id,
        ..TaskRow::new(name)
    })?;
    if let Err(e) = insert_labels(&st, task.id, &labels, None) {
        st.store.delete_task(task.id)?;
        return Err(e);
    }
    Ok((StatusCode::CREATED, Json(task_json(&st, &task, &base)?)).into_response())
}

/// CVAT's task status: "annotation" while a job is in annotation, else "validation" while one is
/// in validation, else "completed" (a task without jobs is in annotation).
fn task_status(jobs: &[crate::store::JobRow]) -> Status {
    let statuses: Vec<Status> = jobs.iter().map(|j| Status::of(j.stage, j.state)).collect();
    if statuses.is_empty() || statuses.contains(&Status::Annotation) {
        Status::Annotation
    } else if statuses.contains(&Status::Validation) {
        Status::Validation
    } else {
        Status::Completed
    }
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
            if matches!(d.spec.media, crate::task::MediaSource::Video { .. }) {
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
        "owner": basic_user(st, t.owner_id, base),
        "assignee": basic_user(st, t.assignee_id, base),
        "bug_tracker": t.bug_tracker,
        "created_date": iso_utc(t.created_date),
        "updated_date": iso_utc(t.updated_date),
        "overlap": t.overlap,
        "segment_size": t.segment_size,
        "status": task_status(&jobs).as_str(),
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
        "jobs": {
            "count": jobs.len(),
            "completed": jobs.iter().filter(|j| Status::of(j.stage, j.state) == Status::Completed).count(),
            "validation": jobs.iter().filter(|j| Status::of(j.stage, j.state) == Status::Validation).count(),
            "url": format!("{base}/api/jobs?task_id={}", t.id),
        },
        "labels": {"url": format!("{base}/api/labels?task_id={}", t.id)},
        "assignee_updated_date": null,
        "validation_mode": null,
    }))
}

#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 200, description = "TaskRead", body = Object)))]
pub(crate) async fn get_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let t = st
        .store
        .task(id)?
        .filter(|t| readable(&st, t, &me))
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(task_json(&st, &t, &base)?))
}

/// CVAT's `TaskViewSet` filter, search and ordering fields.
const TASK_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("name", "/name"),
        ("owner", "/owner/username"),
        ("assignee", "/assignee/username"),
        ("status", "/status"),
        ("subset", "/subset"),
        ("mode", "/mode"),
        ("dimension", "/dimension"),
        ("project_id", "/project_id"),
        ("project_name", "/project_name"),
        ("tracker_link", "/bug_tracker"),
        ("validation_mode", "/validation_mode"),
        ("updated_date", "/updated_date"),
    ],
    search: &[
        "name",
        "owner",
        "assignee",
        "status",
        "subset",
        "mode",
        "dimension",
        "project_name",
        "tracker_link",
    ],
};

/// `GET /api/tasks`: visible tasks, with CVAT's simple filters (`name`, `owner`, `subset`,
/// `mode`, `project_id`, …), `search`, `filter` (JSON Logic) and `sort` (default `-id`).
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(("page" = usize, Query, description = "Page number"), ("page_size" = usize, Query, description = "Page size"), ("name" = String, Query, description = "Name equals"), ("owner" = String, Query, description = "Owner username equals"), ("search" = String, Query, description = "Any search field contains"), ("filter" = String, Query, description = "JSON Logic filter"), ("sort" = String, Query, description = "Sort fields, e.g. name,-id")), responses((status = 200, description = "Paginated TaskRead list", body = Object)))]
pub(crate) async fn list_tasks(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let q = ListQuery::new(params);
    let items = st
        .store
        .tasks()?
        .iter()
        .filter(|t| readable(&st, t, &me))
        .map(|t| task_json(&st, t, &base))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(q.answer(
        &TASK_FIELDS,
        items,
        "-id",
        &base,
        "/api/tasks",
    )?))
}

/// Applies a label PATCH: entries with `id` update (or with `deleted: true` remove) a label,
/// entries without add one. Names must stay unique.
fn patch_labels(st: &AppState, task_id: i64, specs: &[LabelSpec]) -> Result<(), ApiError> {
    let existing = st.store.labels(task_id)?;
    let mut names: std::collections::HashMap<i64, String> = existing
        .iter()
        .filter(|l| l.parent_id.is_none())
        .map(|l| (l.id, l.info["name"].as_str().unwrap_or("").to_owned()))
        .collect();
    for s in specs {
        if let Some(id) = s.id {
            if !existing.iter().any(|l| l.id == id) {
                return Err(ApiError::bad_request(format!(
                    "the task has no label with id {id}"
                )));
            }
            if s.deleted {
                names.remove(&id);
            } else {
                names.insert(id, s.info["name"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    let mut all: Vec<String> = names.into_values().collect();
    all.extend(
        specs
            .iter()
            .filter(|s| s.id.is_none())
            .map(|s| s.info["name"].as_str().unwrap_or("").to_owned()),
    );
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = all.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(ApiError::bad_request(format!(
            "label names must be unique: '{dup}'"
        )));
    }
    for s in specs {
        match s.id {
            Some(id) if s.deleted => st.store.delete_label(id)?,
            Some(id) => st.store.update_label(id, &s.info, &s.attributes)?,
            None => {
                insert_labels(st, task_id, std::slice::from_ref(s), None)?;
            }
        }
    }
    Ok(())
}

#[utoipa::path(patch, path = "/api/tasks/{id}", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 200, description = "TaskRead", body = Object)))]
pub(crate) async fn patch_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<TaskWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let w = json_body(body, "task")?;
    w.check_lengths()?;
    let mut t = task_or_404(&st, id, &me)?;
    if let Some(n) = w.name {
        if n.trim().is_empty() {
            return Err(ApiError::bad_request("'name' cannot be empty"));
        }
        t.name = n;
    }
    if let Some(l) = &w.labels {
        let specs = parse_labels(l).map_err(ApiError::bad_request)?;
        patch_labels(&st, id, &specs)?;
    }
    if let Some(b) = w.bug_tracker {
        t.bug_tracker = b;
    }
    if let Some(s) = w.subset {
        t.subset = s;
    }
    if let Some(a) = assignee(&st, &w.assignee_id)? {
        t.assignee_id = a;
    }
    t.updated_date = Utc::now();
    st.store.update_task(&t)?;
    Ok(Json(task_json(&st, &t, &base)?))
}

#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 204, description = "Deleted with its data, files and cache entries")))]
pub(crate) async fn delete_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    task_or_404(&st, id, &me)?;
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
    let results = datasets::results_of_task(&st, id);
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
    tus::forget_task(&st, id);
    datasets::remove_results(&st, &results);
    Ok(StatusCode::NO_CONTENT)
}

/// CVAT's `LabelViewSet` filter and ordering fields.
const LABEL_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("name", "/name"),
        ("type", "/type"),
        ("color", "/color"),
        ("parent_id", "/parent_id"),
    ],
    search: &["name", "parent"],
};

/// CVAT's `RequestViewSet` filter and ordering fields.
const REQUEST_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("status", "/status"),
        ("task_id", "/operation/task_id"),
        ("job_id", "/operation/job_id"),
        ("project_id", "/operation/project_id"),
        ("target", "/operation/target"),
        ("type", "/operation/type"),
        ("format", "/operation/format"),
        ("created_date", "/created_date"),
    ],
    search: &[],
};

/// `GET /api/labels?task_id=|job_id=`: top-level labels with their sublabels embedded.
#[utoipa::path(get, path = "/api/labels", tag = "labels", params(("task_id" = i64, Query, description = "Task id"), ("job_id" = i64, Query, description = "Job id"), ("page" = usize, Query, description = "Page number")), responses((status = 200, description = "Paginated Label list", body = Object)))]
pub(crate) async fn list_labels(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let q = ListQuery::new(params);
    let tasks: Vec<i64> = match (q.int("task_id")?, q.int("job_id")?) {
        (Some(t), _) => vec![task_or_404(&st, t, &me)?.id],
        // A job's assignee sees its labels without seeing the task.
        (None, Some(j)) => vec![super::access::job_or_404(&st, j, &me)?.task_id],
        (None, None) => st
            .store
            .tasks()?
            .iter()
            .filter(|t| visible(t, &me))
            .map(|t| t.id)
            .collect(),
    };
    let mut items = Vec::new();
    for t in tasks {
        let all = st.store.labels(t)?;
        items.extend(
            all.iter()
                .filter(|l| l.parent_id.is_none())
                .map(|l| label_json(l, &all)),
        );
    }
    Ok(Json(q.answer(
        &LABEL_FIELDS,
        items,
        "id",
        &base,
        "/api/labels",
    )?))
}

#[utoipa::path(get, path = "/api/labels/{id}", tag = "labels", params(("id" = i64, Path, description = "Label id")), responses((status = 200, description = "Label", body = Object)))]
pub(crate) async fn get_label(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    for t in st.store.tasks()?.iter().filter(|t| visible(t, &me)) {
        let all = st.store.labels(t.id)?;
        if let Some(l) = all.iter().find(|l| l.id == id) {
            return Ok(Json(label_json(l, &all)));
        }
    }
    Err(ApiError::not_found("Not found."))
}

/// A request as CVAT's `RequestSerializer` answers it; the job and the format come from the id,
/// as CVAT reads them.
pub(crate) fn request_json(st: &AppState, r: &RequestRow) -> Value {
    let parsed = datasets::parse_rq_id(&r.id);
    let owner = r
        .owner_id
        .and_then(|id| st.store.user(id).ok().flatten())
        .map(|u| json!({"id": u.id, "username": u.username}));
    let mut v = json!({
        "id": r.id,
        "status": r.status,
        "message": r.message,
        "progress": r.progress,
        "operation": {
            "type": r.operation_type,
            "target": r.target,
            "project_id": null,
            "task_id": r.task_id,
            "job_id": parsed.job_id,
            "format": parsed.format,
            "function_id": null,
            "lightweight": null,
        },
        "created_date": iso_utc(r.created_date),
        "started_date": r.started_date.map(iso_utc),
        "finished_date": r.finished_date.map(iso_utc),
        "expiry_date": null,
        "result_url": r.result_url,
        "result_id": r.result_id,
    });
    // `owner` is optional but never null for the client.
    if let Some(o) = owner {
        v["owner"] = o;
    }
    v
}

fn request_visible(r: &RequestRow, me: &CurrentUser) -> bool {
    me.is_admin || r.owner_id == Some(me.id)
}

#[utoipa::path(get, path = "/api/requests/{rq_id}", tag = "requests", params(("rq_id" = String, Path, description = "Request id (percent-encoded)")), responses((status = 200, description = "Request", body = Object)))]
pub(crate) async fn get_request(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(rq_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Axum has already percent-decoded the path segment (`create%3Atask-1` → `create:task-1`).
    let r = st
        .store
        .request(&rq_id)?
        .filter(|r| request_visible(r, &me))
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(request_json(&st, &r)))
}

#[utoipa::path(get, path = "/api/requests", tag = "requests", params(("page" = usize, Query, description = "Page number")), responses((status = 200, description = "Paginated Request list", body = Object)))]
pub(crate) async fn list_requests(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let q = ListQuery::new(params);
    let items = st
        .store
        .requests()?
        .iter()
        .filter(|r| request_visible(r, &me))
        .map(|r| request_json(&st, r))
        .collect();
    Ok(Json(q.answer(
        &REQUEST_FIELDS,
        items,
        "-created_date",
        &base,
        "/api/requests",
    )?))
}

#[utoipa::path(get, path = "/metrics", tag = "server", responses((status = 200, description = "Prometheus metrics (text)")))]
pub(crate) async fn metrics(State(st): St) -> impl IntoResponse {
    let mut body = st.cache.render_metrics();
    body.push_str(&format!(
        "# HELP frameserver_decoders_open Video decoders open (parked for sequential access or in use).\n# TYPE frameserver_decoders_open gauge\nframeserver_decoders_open {}\n",
        crate::frames::OPEN_DECODERS.load(std::sync::atomic::Ordering::Relaxed)
    ));
    body.push_str(&crate::budget::global().render_metrics());
    body.push_str(&format!(
        "# HELP frameserver_frames_decoded_total Video frames decoded for chunks and frames.\n# TYPE frameserver_frames_decoded_total counter\nframeserver_frames_decoded_total {}\n# HELP frameserver_seeks_total Seeks made to build chunks.\n# TYPE frameserver_seeks_total counter\nframeserver_seeks_total {}\n",
        crate::frames::FRAMES_DECODED.load(std::sync::atomic::Ordering::Relaxed),
        crate::frames::SEEKS.load(std::sync::atomic::Ordering::Relaxed)
    ));
    body.push_str(&format!(
        "# HELP frameserver_frames_skipped_total Non-reference frames before a chunk's first frame left undecoded.\n# TYPE frameserver_frames_skipped_total counter\nframeserver_frames_skipped_total {}\n",
        crate::frames::FRAMES_SKIPPED.load(std::sync::atomic::Ordering::Relaxed)
    ));
    body.push_str(&super::listen::render_metrics());
    body.push_str(&super::events::render_metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
