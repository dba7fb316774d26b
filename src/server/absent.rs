//! Resources CVAT has and frameserver does not (yet): organizations, invitations, user
//! agreements, serverless functions. Each is answered as CVAT answers when there are none, so
//! that its web UI and clients carry on instead of showing errors.

use std::collections::HashMap;

use axum::extract::Query;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::forwarded::BaseUrl;
use super::listing::ListQuery;

/// `GET /api/organizations`, `GET /api/invitations`: empty pages (no organizations).
#[utoipa::path(get, path = "/api/organizations", tag = "organizations", responses((status = 200, description = "Paginated list (always empty: no organizations)", body = Object)))]
pub(crate) async fn empty_page(
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    uri: axum::http::Uri,
) -> Json<Value> {
    Json(ListQuery::new(params).page(Vec::new(), &base, uri.path()))
}

/// `GET /api/user-agreements`, `GET|HEAD /api/lambda/functions`, `GET /api/lambda/requests`:
/// empty lists (CVAT answers these without pagination).
#[utoipa::path(get, path = "/api/lambda/functions", tag = "lambda", responses((status = 200, description = "Serverless functions (none)", body = Object)))]
pub(crate) async fn empty_list() -> Json<Value> {
    Json(json!([]))
}
