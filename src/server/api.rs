//! The routes: every endpoint and the handler that answers it, behind authentication and the
//! forwarded-header annotation; unknown paths are 404s (or the UI's, with `--ui-dir`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use super::access::St;
use super::auth;
use super::forwarded;
use super::{annotations, data, datasets, info, labels, requests, tasks, tus, ApiError, AppState};

/// The application's routes (wrapped in a trailing-slash normaliser by [`service`]).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_upload_size as usize;
    Router::new()
        .route("/api/server/about", get(info::about))
        .route("/api/server/annotation/formats", get(info::formats))
        .route("/api/server/plugins", get(info::plugins))
        .route("/api/server/health", get(info::health))
        .route("/api/server/share", get(info::share))
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
        .route(
            "/api/tasks",
            post(tasks::create_task).get(tasks::list_tasks),
        )
        .route(
            "/api/tasks/{id}",
            get(tasks::get_task)
                .patch(tasks::patch_task)
                .delete(tasks::delete_task),
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
        .route("/api/labels", get(labels::list_labels))
        .route("/api/labels/{id}", get(labels::get_label))
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
        .route("/api/requests", get(requests::list_requests))
        .route("/api/requests/{rq_id}", get(requests::get_request))
        .route("/metrics", get(info::metrics))
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
