//! Background requests (`/api/requests`, `/api/requests/{rq_id}`): task creation, exports and
//! imports as CVAT's `RequestSerializer` shows them, to their owner (and admins).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::access::{CurrentUser, St};
use super::forwarded::BaseUrl;
use super::listing::{Fields, ListQuery};
use super::{datasets, ApiError, AppState};
use crate::store::RequestRow;
use crate::task::iso_utc;

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
