//! Tasks (`/api/tasks`, `/api/tasks/{id}`): creation with labels, `TaskRead`, the listing with
//! CVAT's filters, PATCH (labels included) and deletion with everything the task owns.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{readable, task_or_404, CurrentUser, St};
use super::auth::basic_user;
use super::forwarded::BaseUrl;
use super::input::{assignee, json_body, present};
use super::listing::{Fields, ListQuery};
use super::{datasets, tus, ApiError, AppState};
use crate::labels::{parse_labels, LabelSpec};
use crate::store::TaskRow;
use crate::task::iso_utc;
use crate::workflow::Status;

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
