//! `POST /api/events`: the client event log CVAT's UI sends every few seconds (clicks, saves,
//! timings; CVAT stores it in ClickHouse for its analytics). frameserver has no analytics: the
//! events are checked, counted in `/metrics` and dropped. Bodies are bounded
//! ([`MAX_EVENTS_BODY`]).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::input::json_body;
use super::ApiError;

/// Largest accepted event batch, in bytes (the UI sends a few kilobytes at a time).
pub(crate) const MAX_EVENTS_BODY: usize = 1 << 20;

static EVENTS: AtomicU64 = AtomicU64::new(0);

/// `POST /api/events` (`ClientEventsRequest`): 201 with the batch, as CVAT answers.
#[utoipa::path(post, path = "/api/events", tag = "events", responses((status = 201, description = "Accepted (counted, not stored)", body = Object)))]
pub(crate) async fn post_events(
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let batch = json_body(body, "events")?;
    let n = batch
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("'events': this field is required (a list)."))?
        .len();
    EVENTS.fetch_add(n as u64, Ordering::Relaxed);
    Ok((StatusCode::CREATED, Json(batch)).into_response())
}

/// The events counter, in Prometheus text.
pub(crate) fn render_metrics() -> String {
    format!(
        "# HELP frameserver_client_events_total Client (web UI) events received and dropped.\n# TYPE frameserver_client_events_total counter\nframeserver_client_events_total {}\n",
        EVENTS.load(Ordering::Relaxed)
    )
}
