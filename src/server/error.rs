//! API errors: a status and a one-line reason, sent as JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::chunks::BuildError;
use crate::frames::FrameError;
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
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}
