//! Request-body helpers shared by the JSON resources: JSON bodies with DRF-like errors, nullable
//! fields, assignees.

use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, AppState};

/// The JSON body of a request, or a 400 (413 when too large) naming `what` it should be.
pub(crate) fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    what: &str,
) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("the {what} body is too large"),
            }
        } else {
            ApiError::bad_request(format!("invalid {what} JSON: {}", e.body_text()))
        }
    })
}

/// A nullable field that was present: `null` is `Some(Value::Null)`, absent is `None` (with
/// `#[serde(default)]`), where plain `Option<Value>` makes both `None`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// An assignee field: absent → no change; null → unassign; a user id (that must exist).
pub(crate) fn assignee(st: &AppState, v: &Option<Value>) -> Result<Option<Option<i64>>, ApiError> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => {
            let id = v
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("'assignee_id' must be a user id"))?;
            st.store
                .user(id)?
                .ok_or_else(|| ApiError::bad_request(format!("no user with id {id}")))?;
            Ok(Some(Some(id)))
        }
    }
}
