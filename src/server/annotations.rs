//! Annotations API (spec `client-api.md` §9): `GET`, `PUT` (replace), `PATCH ?action=create|update|delete`
//! and `DELETE` on tasks and jobs. Every request is validated first and stored in one
//! transaction: a failed request changes nothing. Jobs see and edit only their frames.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde::Deserialize;

use super::access::{CurrentUser, Scope, St};
use super::{ApiError, AppState};
use crate::annotations::{self, Annotations, Context, LabelIndex};
use crate::store::{AnnotationChange, AnnotationStoreError, ALL_FRAMES};

fn read(st: &AppState, scope: &Scope) -> Result<Arc<Annotations>, ApiError> {
    Ok(st.store.annotations(scope.task_id, scope.job_frames())?)
}

/// Reads and parses an annotations body (PUT/PATCH) as it streams in: refused with 413 when
/// `Content-Length` or the bytes received pass `--max-annotation-body`, parsed by serde_json on a
/// blocking thread from the chunks as they arrive, so the body is never held whole.
///
/// An error answered before the body was read to its end says `Connection: close`: the server
/// does not read the rest, so the client must not send its next request on this connection.
async fn parse_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Annotations, Response> {
    let mut drained = false;
    read_body(st, headers, body, &mut drained)
        .await
        .map_err(|e| {
            let mut r = e.into_response();
            if !drained {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        })
}

async fn read_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
    drained: &mut bool,
) -> Result<Annotations, ApiError> {
    let limit = st.config.max_annotation_body;
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "the annotations body is larger than {limit} bytes (--max-annotation-body); send \
             fewer objects per request (PATCH ?action=create in parts) or import a file"
        ),
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime_guess::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
    if !json {
        return Err(ApiError::bad_request(
            "invalid annotations JSON: Expected request with `Content-Type: application/json`",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        serde_json::from_reader::<_, Annotations>(std::io::BufReader::with_capacity(
            1 << 16,
            reader,
        ))
    });
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut over = false;
    loop {
        let Some(chunk) = stream.next().await else {
            *drained = true;
            break;
        };
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                break;
            }
        };
        received += chunk.len() as u64;
        if received > limit {
            over = true;
            let _ = tx.send(Err(std::io::Error::other("body too large"))).await;
            break;
        }
        if tx.send(Ok(chunk)).await.is_err() {
            break; // the parser stopped (a syntax error): its error is the answer
        }
    }
    drop(tx);
    let parsed = parser
        .await
        .map_err(|e| ApiError::internal(format!("the annotations parser failed: {e}")))?;
    if over {
        return Err(too_large());
    }
    parsed.map_err(|e| {
        if e.is_io() {
            ApiError::bad_request(format!("the request body was interrupted: {e}"))
        } else {
            ApiError::bad_request(format!("invalid annotations JSON: {e}"))
        }
    })
}

/// A blocking reader over body chunks sent through a channel.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn validate(st: &AppState, scope: &Scope, a: &Annotations) -> Result<(), ApiError> {
    if st.store.data_of_task(scope.task_id)?.is_none() && !a.is_empty() {
        return Err(ApiError::bad_request(
            "the task has no data yet: annotations need frames",
        ));
    }
    let labels = LabelIndex::new(&st.store.labels(scope.task_id)?);
    annotations::validate(
        &Context {
            labels: &labels,
            frames: scope.frames(st)?,
        },
        a,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn store_err(e: AnnotationStoreError) -> ApiError {
    match e {
        AnnotationStoreError::UnknownId(_) => ApiError::bad_request(e.to_string()),
        AnnotationStoreError::Store(s) => ApiError::from(s),
    }
}

/// Replaces the scope's annotations with `a` (validated), in one transaction.
pub(crate) fn replace(
    st: &AppState,
    task_id: i64,
    frames: Option<(u64, u64)>,
    a: Annotations,
) -> Result<(), ApiError> {
    let (lo, hi) = frames.unwrap_or(ALL_FRAMES);
    st.store
        .change_annotations(
            task_id,
            vec![
                AnnotationChange::DeleteRange(lo, hi),
                AnnotationChange::Insert(a),
            ],
        )
        .map_err(store_err)?;
    Ok(())
}

async fn do_get(st: &AppState, scope: Scope) -> Result<Json<Arc<Annotations>>, ApiError> {
    Ok(Json(read(st, &scope)?))
}

async fn do_put(
    st: &AppState,
    scope: Scope,
    a: Annotations,
) -> Result<Json<Arc<Annotations>>, ApiError> {
    validate(st, &scope, &a)?;
    replace(st, scope.task_id, scope.job_frames(), a)?;
    Ok(Json(read(st, &scope)?))
}

#[derive(Deserialize)]
pub(crate) struct ActionQuery {
    action: Option<String>,
}

/// Ids of the top-level objects of `a`; all must be present.
fn ids_of(a: &Annotations) -> Result<Vec<i64>, ApiError> {
    annotations::check_no_intervals(a).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ids = a
        .tags
        .iter()
        .map(|t| ("tag", t.id))
        .chain(a.shapes.iter().map(|s| ("shape", s.id)))
        .chain(a.tracks.iter().map(|t| ("track", t.id)));
    ids.enumerate()
        .map(|(i, (kind, id))| {
            id.ok_or_else(|| ApiError::bad_request(format!("object {i} ({kind}) has no 'id'")))
        })
        .collect()
}

/// Checks that every id is an object of the scope (for jobs: starting in its frames).
fn check_ids_in_scope(st: &AppState, scope: &Scope, ids: &[i64]) -> Result<(), ApiError> {
    let existing = st.store.annotation_ids(scope.task_id, scope.job_frames())?;
    match ids.iter().find(|id| !existing.contains(id)) {
        Some(id) => Err(ApiError::bad_request(format!(
            "there is no annotation object with id {id} here"
        ))),
        None => Ok(()),
    }
}

async fn do_patch(
    st: &AppState,
    scope: Scope,
    action: Option<String>,
    a: Annotations,
) -> Result<Json<Arc<Annotations>>, ApiError> {
    let change = match action.as_deref() {
        Some("create") => {
            validate(st, &scope, &a)?;
            AnnotationChange::Insert(a)
        }
        Some("update") => {
            validate(st, &scope, &a)?;
            check_ids_in_scope(st, &scope, &ids_of(&a)?)?;
            AnnotationChange::Update(a)
        }
        Some("delete") => {
            let ids = ids_of(&a)?;
            check_ids_in_scope(st, &scope, &ids)?;
            st.store
                .change_annotations(scope.task_id, vec![AnnotationChange::Delete(ids)])
                .map_err(store_err)?;
            return Ok(Json(Arc::new(a)));
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "action must be create, update or delete, got {}",
                other
                    .map(|a| format!("'{a}'"))
                    .unwrap_or_else(|| "nothing".into())
            )))
        }
    };
    let written = st
        .store
        .change_annotations(scope.task_id, vec![change])
        .map_err(store_err)?;
    Ok(Json(written))
}

async fn do_delete(st: &AppState, scope: Scope) -> Result<StatusCode, ApiError> {
    let (lo, hi) = scope.job_frames().unwrap_or(ALL_FRAMES);
    st.store
        .change_annotations(scope.task_id, vec![AnnotationChange::DeleteRange(lo, hi)])
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/tasks/{id}/annotations`
#[utoipa::path(get, operation_id = "tasks_retrieve_annotations", path = "/api/tasks/{id}/annotations", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 200, description = "LabeledData", body = Object)))]
pub(crate) async fn get_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Json<Arc<Annotations>>, ApiError> {
    do_get(&st, Scope::task(&st, id, &me)?).await
}

/// `PUT /api/tasks/{id}/annotations`
#[utoipa::path(put, operation_id = "tasks_update_annotations", path = "/api/tasks/{id}/annotations", tag = "tasks", params(("id" = i64, Path, description = "Task id")), request_body = Object, responses((status = 200, description = "LabeledData", body = Object)))]
pub(crate) async fn put_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Arc<Annotations>>, Response> {
    let scope = Scope::task(&st, id, &me).map_err(IntoResponse::into_response)?;
    let a = parse_body(&st, &headers, body).await?;
    do_put(&st, scope, a)
        .await
        .map_err(IntoResponse::into_response)
}

/// `PATCH /api/tasks/{id}/annotations?action=`
#[utoipa::path(patch, operation_id = "tasks_partial_update_annotations", path = "/api/tasks/{id}/annotations", tag = "tasks", params(("id" = i64, Path, description = "Task id"), ("action" = String, Query, description = "create | update | delete")), request_body = Object, responses((status = 200, description = "The affected objects", body = Object)))]
pub(crate) async fn patch_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ActionQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Arc<Annotations>>, Response> {
    let scope = Scope::task(&st, id, &me).map_err(IntoResponse::into_response)?;
    let a = parse_body(&st, &headers, body).await?;
    do_patch(&st, scope, q.action, a)
        .await
        .map_err(IntoResponse::into_response)
}

/// `DELETE /api/tasks/{id}/annotations`
#[utoipa::path(delete, operation_id = "tasks_destroy_annotations", path = "/api/tasks/{id}/annotations", tag = "tasks", params(("id" = i64, Path, description = "Task id")), responses((status = 204, description = "All annotations removed")))]
pub(crate) async fn delete_task(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    do_delete(&st, Scope::task(&st, id, &me)?).await
}

/// `GET /api/jobs/{id}/annotations`
#[utoipa::path(get, operation_id = "jobs_retrieve_annotations", path = "/api/jobs/{id}/annotations", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses((status = 200, description = "LabeledData of the job's frames", body = Object)))]
pub(crate) async fn get_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<Json<Arc<Annotations>>, ApiError> {
    do_get(&st, Scope::job(&st, id, &me)?).await
}

/// `PUT /api/jobs/{id}/annotations`
#[utoipa::path(put, operation_id = "jobs_update_annotations", path = "/api/jobs/{id}/annotations", tag = "jobs", params(("id" = i64, Path, description = "Job id")), request_body = Object, responses((status = 200, description = "LabeledData", body = Object)))]
pub(crate) async fn put_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Arc<Annotations>>, Response> {
    let scope = Scope::job(&st, id, &me).map_err(IntoResponse::into_response)?;
    let a = parse_body(&st, &headers, body).await?;
    do_put(&st, scope, a)
        .await
        .map_err(IntoResponse::into_response)
}

/// `PATCH /api/jobs/{id}/annotations?action=`
#[utoipa::path(patch, operation_id = "jobs_partial_update_annotations", path = "/api/jobs/{id}/annotations", tag = "jobs", params(("id" = i64, Path, description = "Job id"), ("action" = String, Query, description = "create | update | delete")), request_body = Object, responses((status = 200, description = "The affected objects", body = Object)))]
pub(crate) async fn patch_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ActionQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Arc<Annotations>>, Response> {
    let scope = Scope::job(&st, id, &me).map_err(IntoResponse::into_response)?;
    let a = parse_body(&st, &headers, body).await?;
    do_patch(&st, scope, q.action, a)
        .await
        .map_err(IntoResponse::into_response)
}

/// `DELETE /api/jobs/{id}/annotations`
#[utoipa::path(delete, operation_id = "jobs_destroy_annotations", path = "/api/jobs/{id}/annotations", tag = "jobs", params(("id" = i64, Path, description = "Job id")), responses((status = 204, description = "The job's annotations removed")))]
pub(crate) async fn delete_job(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    do_delete(&st, Scope::job(&st, id, &me)?).await
}
