//! Labels (`/api/labels`, `/api/labels/{id}`): a task's or job's top-level labels, with their
//! sublabels embedded.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::Value;

use super::access::{job_or_404, task_or_404, visible, CurrentUser, St};
use super::forwarded::BaseUrl;
use super::listing::{Fields, ListQuery};
use super::ApiError;
use crate::store::label_json;

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
        (None, Some(j)) => vec![job_or_404(&st, j, &me)?.task_id],
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
