//! Jobs: `GET /api/jobs` (CVAT's filters), `GET/PATCH /api/jobs/{id}` (stage, state,
//! assignee). A job is visible to whoever sees its task, and to its own assignee.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{job_or_404, visible, CurrentUser, St};
use super::auth::basic_user;
use super::forwarded::BaseUrl;
use super::input::json_body;
use super::listing::{Fields, ListQuery};
use super::{ApiError, AppState};
use crate::store::{JobRow, JobUpdate};
use crate::task::{iso_utc, MediaSource};
use crate::workflow::{JobChange, Stage, State as JobState, Status};

/// CVAT's `JobViewSet` filter, search and ordering fields.
const JOB_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("task_id", "/task_id"),
        ("task_name", "/task_name"),
        ("project_id", "/project_id"),
        ("project_name", "/project_name"),
        ("assignee", "/assignee/username"),
        ("state", "/state"),
        ("stage", "/stage"),
        ("status", "/status"),
        ("type", "/type"),
        ("dimension", "/dimension"),
        ("updated_date", "/updated_date"),
        ("parent_job_id", "/parent_job_id"),
    ],
    search: &["task_name", "project_name", "assignee", "state", "stage"],
};

/// `JobRead`.
pub(crate) fn job_json(st: &AppState, j: &JobRow, base: &str) -> Result<Value, ApiError> {
    let data = st.store.data_of_task(j.task_id)?;
    let task = st.store.task(j.task_id)?;
    let (start, stop, cs, comp, orig, mode) = match &data {
        Some(d) => (
            d.spec.range.abs(j.range.start),
            d.spec.range.abs(j.range.stop),
            Value::from(d.spec.chunk_size),
            d.spec.compressed_chunk_type.as_str(),
            d.spec.original_chunk_type.as_str(),
            if matches!(d.spec.media, MediaSource::Video { .. }) {
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
        "task_name": task.as_ref().map(|t| t.name.clone()),
        "project_id": null,
        "project_name": null,
        "guide_id": null,
        "assignee": basic_user(st, j.assignee_id, base),
        "assignee_updated_date": j.assignee_updated_date.map(iso_utc),
        "bug_tracker": task.as_ref().map(|t| t.bug_tracker.clone()).filter(|b| !b.is_empty()),
        "start_frame": start,
        "stop_frame": stop,
        "frame_count": j.range.len(),
        "status": Status::of(j.stage, j.state).as_str(),
        "stage": j.stage.as_str(),
        "state": j.state.as_str(),
        "type": "annotation",
        "mode": mode,
        "dimension": "2d",
        "data_chunk_size": cs,
        "data_compressed_chunk_type": comp,
        "data_original_chunk_type": orig,
        "created_date": iso_utc(j.created_date),
        "updated_date": iso_utc(j.updated_date),
        "organization": null,
        "target_storage": null,
        "source_storage": null,
        "parent_job_id": null,
        "consensus_replicas": 0,
        "issues": {"count": st.store.issue_count(j.id)?, "url": format!("{base}/api/issues?job_id={}", j.id)},
        "labels": {"url": format!("{base}/api/labels?job_id={}", j.id)},
    }))
}

/// `GET /api/jobs`: visible jobs, with CVAT's simple filters (`task_id`, `type`, `state`,
/// `stage`, `assignee`, …), `search`, `filter` (JSON Logic) and `sort` (default `-id`).
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(("task_id" = i64, Query, description = "Task id"), ("type" = String, Query, description = "annotation | ground_truth | consensus_replica"), ("state" = String, Query, description = "new | in progress | completed | rejected"), ("stage" = String, Query, description = "annotation | validation | acceptance"), ("filter" = String, Query, description = "JSON Logic filter"), ("sort" = String, Query, description = "Sort fields, e.g. -id"), ("page" = usize, Query, description = "Page number")), responses((status = 200, description = "Paginated JobRead list", body = Object)))]
pub(crate) async fn list_jobs(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let q = ListQuery::new(params);
    let task_id = q.int("task_id")?;
    let mut items = Vec::new();
    let mut seen: HashMap<i64, bool> = HashMap::new();
    for j in st.store.jobs(task_id)? {
        let task_visible = match seen.get(&j.task_id) {
            Some(v) => *v,
            None => {
                let v = st.store.task(j.task_id)?.is_some_and(|t| visible(&t, &me));
                seen.insert(j.task_id, v);
                v
            }
        };
        if task_visible || j.assignee_id == Some(me.id) {
            items.push(job_json(&st, &j, &base)?);
        }
    }
    Ok(Json(q.answer(
        &JOB_FIELDS,
        items,
        "-id",
        &base,
        "/api/jobs",
    )?))
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses((status = 200, description = "JobRead", body = Object)))]
pub(crate) async fn get_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let j = job_or_404(&st, id, &me)?;
    Ok(Json(job_json(&st, &j, &base)?))
}

/// `PatchedJobWriteRequest`: the fields a PATCH may change.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct JobWrite {
    stage: Option<String>,
    state: Option<String>,
    /// A user id, or null to unassign.
    #[serde(default, deserialize_with = "super::input::present")]
    #[schema(value_type = Option<i64>)]
    assignee: Option<Value>,
}

/// `PATCH /api/jobs/{id}`: stage, state and assignee. As in CVAT, a new stage without a state
/// starts the job again as "new", and the status follows (annotation → validation →
/// completed). The job's assignee may change its state; its stage and assignee are changed by
/// whoever sees the task (its owner, assignee, or an admin).
#[utoipa::path(patch, path = "/api/jobs/{id}", tag = "jobs", params(("id" = i64, Path, description = "Job id")), request_body = JobWrite, responses((status = 200, description = "JobRead", body = Object)))]
pub(crate) async fn patch_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<JobWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let w = json_body(body, "job")?;
    let job = job_or_404(&st, id, &me)?;
    let choice = |field: &str, value: &str, choices: &[&str]| {
        ApiError::bad_request(format!(
            "'{field}': \"{value}\" is not a valid choice (one of: {})",
            choices.join(", ")
        ))
    };
    let change = JobChange {
        stage: w
            .stage
            .as_deref()
            .map(|s| {
                Stage::parse(s)
                    .ok_or_else(|| choice("stage", s, &["annotation", "validation", "acceptance"]))
            })
            .transpose()?,
        state: w
            .state
            .as_deref()
            .map(|s| {
                JobState::parse(s).ok_or_else(|| {
                    choice("state", s, &["new", "in progress", "completed", "rejected"])
                })
            })
            .transpose()?,
    };
    let assignee = super::input::assignee(&st, &w.assignee)?;
    let manager = st
        .store
        .task(job.task_id)?
        .is_some_and(|t| visible(&t, &me));
    let changes_stage = change.stage.is_some_and(|s| s != job.stage);
    let changes_assignee = assignee.is_some_and(|a| a != job.assignee_id);
    if !manager && (changes_stage || changes_assignee) {
        return Err(ApiError {
            status: axum::http::StatusCode::FORBIDDEN,
            message: "only the task's owner, its assignee or an admin can change a job's stage \
                      or assignee"
                .into(),
        });
    }
    let (stage, state) = change.apply(job.stage, job.state);
    let updated = st
        .store
        .update_job(
            id,
            &JobUpdate {
                stage,
                state,
                assignee: assignee.filter(|a| *a != job.assignee_id),
            },
        )?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(job_json(&st, &updated, &base)?))
}
