//! The server's own resources: `about`, the format list, plugins, health, the share listing, and
//! the Prometheus `/metrics`.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::St;
use super::ApiError;

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
