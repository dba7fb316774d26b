//! The review workflow's resources: issues (`/api/issues`: a region of a job's frame that needs
//! a fix, opened with a first comment, resolved or reopened) and their comments
//! (`/api/comments`). Both are visible to whoever sees the job.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{job_or_404, visible, CurrentUser, St};
use super::auth::basic_user;
use super::forwarded::BaseUrl;
use super::input::{assignee, json_body, present};
use super::listing::{Fields, ListQuery};
use super::{ApiError, AppState};
use crate::store::{CommentRow, IssueRow, JobRow, NewIssue};
use crate::task::iso_utc;

/// Longest comment (CVAT's `Comment.message` is a text field; a bound keeps rows sane).
const MAX_MESSAGE: usize = 64 * 1024;
/// Most points in an issue's region.
const MAX_POSITION: usize = 4096;

/// CVAT's `IssueViewSet` filter, search and ordering fields.
const ISSUE_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("job_id", "/job"),
        ("frame_id", "/frame"),
        ("owner", "/owner/username"),
        ("assignee", "/assignee/username"),
        ("resolved", "/resolved"),
        ("updated_date", "/updated_date"),
    ],
    search: &["owner", "assignee"],
};

/// CVAT's `CommentViewSet` filter, search and ordering fields.
const COMMENT_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("issue_id", "/issue"),
        ("owner", "/owner/username"),
        ("updated_date", "/updated_date"),
    ],
    search: &["owner"],
};

fn issue_json(st: &AppState, i: &IssueRow, base: &str) -> Result<Value, ApiError> {
    Ok(json!({
        "id": i.id,
        "frame": i.frame,
        "position": i.position,
        "job": i.job_id,
        "owner": basic_user(st, i.owner_id, base),
        "assignee": basic_user(st, i.assignee_id, base),
        "created_date": iso_utc(i.created_date),
        "updated_date": iso_utc(i.updated_date),
        "resolved": i.resolved,
        "comments": {
            "count": st.store.comment_count(i.id)?,
            "url": format!("{base}/api/comments?issue_id={}", i.id),
        },
    }))
}

fn comment_json(st: &AppState, c: &CommentRow, base: &str) -> Value {
    json!({
        "id": c.id,
        "issue": c.issue_id,
        "owner": basic_user(st, c.owner_id, base),
        "message": c.message,
        "created_date": iso_utc(c.created_date),
        "updated_date": iso_utc(c.updated_date),
    })
}

/// An issue whose job `me` sees, with the job; or 404.
fn issue_or_404(st: &AppState, id: i64, me: &CurrentUser) -> Result<(IssueRow, JobRow), ApiError> {
    let issue = st
        .store
        .issue(id)?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    let job = job_or_404(st, issue.job_id, me)?;
    Ok((issue, job))
}

/// Who may edit or delete what `owner` wrote: its author, an admin, or whoever manages the
/// job's task.
fn may_edit(
    st: &AppState,
    owner: Option<i64>,
    job: &JobRow,
    me: &CurrentUser,
) -> Result<(), ApiError> {
    let manager = st
        .store
        .task(job.task_id)?
        .is_some_and(|t| visible(&t, me) && (me.is_admin || t.owner_id == Some(me.id)));
    if owner == Some(me.id) || manager {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: "only its author, the task's owner or an admin can change or delete it".into(),
        })
    }
}

/// A required field, refused in DRF's words when absent.
fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::bad_request(format!("'{field}': this field is required.")))
}

fn message(m: Option<String>) -> Result<String, ApiError> {
    let m = required(m.filter(|m| !m.trim().is_empty()), "message")?;
    if m.chars().count() > MAX_MESSAGE {
        return Err(ApiError::bad_request(format!(
            "'message': ensure this field has no more than {MAX_MESSAGE} characters."
        )));
    }
    Ok(m)
}

fn position(p: Option<Vec<f64>>) -> Result<Option<Vec<f64>>, ApiError> {
    match p {
        None => Ok(None),
        Some(p) if p.is_empty() => Err(ApiError::bad_request(
            "'position': this list may not be empty.",
        )),
        Some(p) if p.len() > MAX_POSITION || p.iter().any(|v| !v.is_finite()) => {
            Err(ApiError::bad_request(format!(
                "'position': at most {MAX_POSITION} finite coordinates"
            )))
        }
        Some(p) => Ok(Some(p)),
    }
}

/// `IssueWriteRequest` / `PatchedIssueWriteRequest` (`frame`, `job` and `message` are
/// write-once).
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct IssueWrite {
    frame: Option<u64>,
    position: Option<Vec<f64>>,
    job: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    assignee: Option<Value>,
    message: Option<String>,
    resolved: Option<bool>,
}

/// `POST /api/issues`: opens an issue on a frame of a job, with its first comment.
#[utoipa::path(post, path = "/api/issues", tag = "issues", request_body = IssueWrite, responses((status = 201, description = "IssueRead", body = Object)))]
pub(crate) async fn create_issue(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<IssueWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let w = json_body(body, "issue")?;
    let job_id = required(w.job, "job")?;
    let job = job_or_404(&st, job_id, &me)
        .map_err(|_| ApiError::bad_request(format!("'job': there is no job {job_id}")))?;
    let frame = required(w.frame, "frame")?;
    // Task-relative, as the job's range.
    if !(job.range.start..=job.range.stop).contains(&frame) {
        return Err(ApiError::bad_request(format!(
            "'frame': frame {frame} is not in job {job_id}"
        )));
    }
    let position = required(position(w.position)?, "position")?;
    let issue = st.store.create_issue(&NewIssue {
        job_id,
        frame,
        position,
        owner_id: me.id,
        assignee_id: assignee(&st, &w.assignee)?.flatten(),
        resolved: w.resolved.unwrap_or(false),
        message: message(w.message)?,
    })?;
    Ok((StatusCode::CREATED, Json(issue_json(&st, &issue, &base)?)).into_response())
}

/// `GET /api/issues`: issues of the jobs `me` sees (`job_id`, `task_id`, `frame_id`, `owner`,
/// `assignee`, `resolved`, `filter`, `sort`; default `-id`).
#[utoipa::path(get, path = "/api/issues", tag = "issues", params(("job_id" = i64, Query, description = "Job id"), ("task_id" = i64, Query, description = "Task id"), ("page" = usize, Query, description = "Page number")), responses((status = 200, description = "Paginated IssueRead list", body = Object)))]
pub(crate) async fn list_issues(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let q = ListQuery::new(params);
    let task_id = q.int("task_id")?;
    let job_id = q.int("job_id")?;
    if let Some(j) = job_id {
        job_or_404(&st, j, &me)?;
    }
    let mut seen: HashMap<i64, Option<JobRow>> = HashMap::new();
    let mut items = Vec::new();
    for issue in st.store.issues(job_id)? {
        let job = match seen.get(&issue.job_id) {
            Some(j) => *j,
            None => {
                let j = job_or_404(&st, issue.job_id, &me).ok();
                seen.insert(issue.job_id, j);
                j
            }
        };
        if job.is_some_and(|j| task_id.is_none_or(|t| t == j.task_id)) {
            items.push(issue_json(&st, &issue, &base)?);
        }
    }
    Ok(Json(q.answer(
        &ISSUE_FIELDS,
        items,
        "-id",
        &base,
        "/api/issues",
    )?))
}

#[utoipa::path(get, path = "/api/issues/{id}", tag = "issues", params(("id" = i64, Path, description = "Issue id")), responses((status = 200, description = "IssueRead", body = Object)))]
pub(crate) async fn get_issue(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let (issue, _) = issue_or_404(&st, id, &me)?;
    Ok(Json(issue_json(&st, &issue, &base)?))
}

/// `PATCH /api/issues/{id}`: `resolved` (anyone who sees the job: the review workflow),
/// `position` and `assignee` (its author, the task's owner, an admin).
#[utoipa::path(patch, path = "/api/issues/{id}", tag = "issues", params(("id" = i64, Path, description = "Issue id")), request_body = IssueWrite, responses((status = 200, description = "IssueRead", body = Object)))]
pub(crate) async fn patch_issue(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<IssueWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let w = json_body(body, "issue")?;
    let (mut issue, job) = issue_or_404(&st, id, &me)?;
    for (field, set) in [
        ("frame", w.frame.is_some_and(|f| f != issue.frame)),
        ("job", w.job.is_some_and(|j| j != issue.job_id)),
        ("message", w.message.is_some()),
    ] {
        if set {
            return Err(ApiError::bad_request(format!(
                "'{field}' cannot be changed once the issue exists"
            )));
        }
    }
    let new_position = position(w.position)?;
    let new_assignee = assignee(&st, &w.assignee)?;
    if new_position.is_some() || new_assignee.is_some() {
        may_edit(&st, issue.owner_id, &job, &me)?;
    }
    if let Some(p) = new_position {
        issue.position = p;
    }
    if let Some(a) = new_assignee {
        issue.assignee_id = a;
    }
    if let Some(r) = w.resolved {
        issue.resolved = r;
    }
    st.store.update_issue(&issue)?;
    let stored = st
        .store
        .issue(id)?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(issue_json(&st, &stored, &base)?))
}

#[utoipa::path(delete, path = "/api/issues/{id}", tag = "issues", params(("id" = i64, Path, description = "Issue id")), responses((status = 204, description = "Deleted with its comments")))]
pub(crate) async fn delete_issue(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let (issue, job) = issue_or_404(&st, id, &me)?;
    may_edit(&st, issue.owner_id, &job, &me)?;
    st.store.delete_issue(id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `CommentWriteRequest` (`issue` is write-once).
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct CommentWrite {
    issue: Option<i64>,
    message: Option<String>,
}

/// `POST /api/comments`: adds a comment to an issue.
#[utoipa::path(post, path = "/api/comments", tag = "issues", request_body = CommentWrite, responses((status = 201, description = "CommentRead", body = Object)))]
pub(crate) async fn create_comment(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<CommentWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let w = json_body(body, "comment")?;
    let issue_id = required(w.issue, "issue")?;
    issue_or_404(&st, issue_id, &me)
        .map_err(|_| ApiError::bad_request(format!("'issue': there is no issue {issue_id}")))?;
    let c = st
        .store
        .create_comment(issue_id, me.id, &message(w.message)?)?;
    Ok((StatusCode::CREATED, Json(comment_json(&st, &c, &base))).into_response())
}

/// `GET /api/comments`: comments of the issues `me` sees (`issue_id`, `job_id`, `frame_id`,
/// `owner`, `filter`, `sort`; default `-id`).
#[utoipa::path(get, path = "/api/comments", tag = "issues", params(("issue_id" = i64, Query, description = "Issue id"), ("job_id" = i64, Query, description = "Job id"), ("page" = usize, Query, description = "Page number")), responses((status = 200, description = "Paginated CommentRead list", body = Object)))]
pub(crate) async fn list_comments(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let q = ListQuery::new(params);
    let issue_id = q.int("issue_id")?;
    let job_id = q.int("job_id")?;
    let frame = q.int("frame_id")?;
    if let Some(j) = job_id {
        job_or_404(&st, j, &me)?;
    }
    let mut seen: HashMap<i64, Option<IssueRow>> = HashMap::new();
    let mut items = Vec::new();
    for c in st.store.comments(issue_id, job_id)? {
        let issue = match seen.get(&c.issue_id) {
            Some(i) => i.clone(),
            None => {
                let i = issue_or_404(&st, c.issue_id, &me).ok().map(|(i, _)| i);
                seen.insert(c.issue_id, i.clone());
                i
            }
        };
        if issue.is_some_and(|i| frame.is_none_or(|f| f as u64 == i.frame)) {
            items.push(comment_json(&st, &c, &base));
        }
    }
    Ok(Json(q.answer(
        &COMMENT_FIELDS,
        items,
        "-id",
        &base,
        "/api/comments",
    )?))
}

/// A comment whose issue `me` sees, with the issue's job; or 404.
fn comment_or_404(
    st: &AppState,
    id: i64,
    me: &CurrentUser,
) -> Result<(CommentRow, JobRow), ApiError> {
    let c = st
        .store
        .comment(id)?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    let (_, job) = issue_or_404(st, c.issue_id, me)?;
    Ok((c, job))
}

#[utoipa::path(get, path = "/api/comments/{id}", tag = "issues", params(("id" = i64, Path, description = "Comment id")), responses((status = 200, description = "CommentRead", body = Object)))]
pub(crate) async fn get_comment(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let (c, _) = comment_or_404(&st, id, &me)?;
    Ok(Json(comment_json(&st, &c, &base)))
}

/// `PATCH /api/comments/{id}`: a new message (its author, the task's owner, an admin).
#[utoipa::path(patch, path = "/api/comments/{id}", tag = "issues", params(("id" = i64, Path, description = "Comment id")), request_body = CommentWrite, responses((status = 200, description = "CommentRead", body = Object)))]
pub(crate) async fn patch_comment(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    body: Result<Json<CommentWrite>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let w = json_body(body, "comment")?;
    let (c, job) = comment_or_404(&st, id, &me)?;
    if w.issue.is_some_and(|i| i != c.issue_id) {
        return Err(ApiError::bad_request(
            "'issue' cannot be changed once the comment exists",
        ));
    }
    may_edit(&st, c.owner_id, &job, &me)?;
    if w.message.is_some() {
        st.store.update_comment(id, &message(w.message)?)?;
    }
    let (c, _) = comment_or_404(&st, id, &me)?;
    Ok(Json(comment_json(&st, &c, &base)))
}

#[utoipa::path(delete, path = "/api/comments/{id}", tag = "issues", params(("id" = i64, Path, description = "Comment id")), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_comment(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let (c, job) = comment_or_404(&st, id, &me)?;
    may_edit(&st, c.owner_id, &job, &me)?;
    st.store.delete_comment(id)?;
    Ok(StatusCode::NO_CONTENT)
}
