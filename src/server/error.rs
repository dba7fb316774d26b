//! API errors: a status and a one-line reason, sent as JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use std::path::PathBuf;

use crate::chunks::BuildError;
use crate::frames::FrameError;
use crate::media::MediaError;
use crate::store::StoreError;

/// An error answered to the client. 400s carry CVAT's message as a JSON string (as CVAT does);
/// other statuses a `{"detail": "..."}` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: msg.into(),
        }
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: msg.into(),
        }
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: msg.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        let body = if self.status == StatusCode::BAD_REQUEST {
            serde_json::Value::String(self.message)
        } else {
            serde_json::json!({ "detail": self.message })
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl From<&BuildError> for ApiError {
    fn from(e: &BuildError) -> Self {
        let status = match e {
            BuildError::Frames(FrameError::SourceMissing(_)) => StatusCode::GONE,
            BuildError::Frames(FrameError::SourceChanged(_)) => StatusCode::CONFLICT,
            // An image over --max-image-pixels (e.g. the limit was lowered after creation).
            BuildError::Media(MediaError::TooManyPixels { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            // More memory than --memory-limit allows, now or ever.
            BuildError::Memory(_)
            | BuildError::Media(MediaError::Memory(_))
            | BuildError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

/// `message` with each of `roots` (absolute server directories) taken out of the paths in it,
/// longest first: what is left is relative to the task's data, the share or the data directory.
/// Client-facing errors never show where the server keeps its files.
pub(crate) fn relative_paths(message: &str, roots: &[PathBuf]) -> String {
    let mut roots: Vec<String> = roots
        .iter()
        .map(|r| r.to_string_lossy().trim_end_matches('/').to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
    let mut out = message.to_owned();
    for r in roots {
        out = out.replace(&format!("{r}/"), "");
    }
    out
}

/// A client-facing message about task `task_dir` (its creation or a build), with the server's
/// directories taken out of its paths: what is left is relative to the task's raw files (or the
/// archive extracted there), its directory, the upload `upload_dir`, the share or the data
/// directory.
pub(crate) fn task_message(
    st: &super::AppState,
    task_dir: &std::path::Path,
    upload_dir: Option<&std::path::Path>,
    message: &str,
) -> String {
    let raw = task_dir.join("raw");
    let mut roots = vec![raw.join("extracted"), raw, task_dir.to_path_buf()];
    roots.extend(upload_dir.map(std::path::Path::to_path_buf));
    roots.extend(st.config.share_dir.iter().cloned());
    roots.push(st.config.data_dir.clone());
    relative_paths(message, &roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_the_server_directories() {
        let roots = [
            PathBuf::from("/srv/data/media/task_1_ab/raw"),
            PathBuf::from("/srv/share/"),
            PathBuf::from("/srv/data"),
        ];
        assert_eq!(
            relative_paths(
                "cannot read /srv/data/media/task_1_ab/raw/a/b.mp4: gone; /srv/share/x.png too; /srv/data/media/other",
                &roots
            ),
            "cannot read a/b.mp4: gone; x.png too; media/other"
        );
    }
}
