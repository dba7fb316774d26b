//! `--ui-dir`: serves a build of CVAT's web UI from the same origin as `/api`, as CVAT's own
//! nginx does: every path that is not a file falls back to `index.html` (the UI's client-side
//! routes), and the cross-origin isolation headers its SharedArrayBuffer workers need.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Checks that `dir` holds a UI build (an `index.html`), so a wrong path fails at start-up
/// rather than as a blank page.
pub(crate) fn check_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("index.html").is_file() {
        anyhow::bail!(
            "--ui-dir {}: no index.html there; point it at the `dist` directory of a CVAT UI build",
            dir.display()
        );
    }
    Ok(())
}

/// Whether a path belongs to the server rather than to the UI.
pub(crate) fn is_server_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
}

/// Answers a GET/HEAD of a UI path: the file, or `index.html` for anything else.
pub(crate) async fn serve(dir: PathBuf, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response();
    }
    let assets = req.uri().path().starts_with("/assets/");
    // A missing asset is a 404 (not the page, which would be cached as the asset).
    let served = if assets {
        ServeDir::new(&dir).oneshot(req).await
    } else {
        ServeDir::new(&dir)
            .fallback(ServeFile::new(dir.join("index.html")))
            .oneshot(req)
            .await
    };
    let mut res = match served {
        Ok(r) => r.map(Body::new),
        Err(e) => match e {},
    };
    if res.status() == StatusCode::NOT_FOUND {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let h = res.headers_mut();
    h.insert(
        "Cross-Origin-Opener-Policy",
        HeaderValue::from_static("same-origin"),
    );
    // The UI's workers use SharedArrayBuffer: the scripts they load must be `require-corp`;
    // pages are `credentialless` so that cross-origin images (e.g. fonts, avatars) still load.
    h.insert(
        "Cross-Origin-Embedder-Policy",
        HeaderValue::from_static(if assets {
            "require-corp"
        } else {
            "credentialless"
        }),
    );
    // Asset names carry a content hash; the page itself must be re-read to find new ones.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if assets {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    res
}
