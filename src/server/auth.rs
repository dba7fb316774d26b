//! Authentication: password login with Django-style `sessionid` + `csrftoken` cookies (CSRF
//! checked on unsafe methods), personal access tokens (`Authorization: Bearer`), logout, the
//! current user, and brute-force protection on login (the rules are in [`super::lockout`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{CurrentUser, St};
use super::forwarded::{BaseUrl, ClientIp};
use super::listing::{Fields, ListQuery};
use super::{ApiError, AppState};
use crate::auth::{hash_password, random_secret, secret_hash, verify_password};
use crate::store::{TokenRow, UserRow};
use crate::task::iso_utc;

const SESSION_DAYS: i64 = 14;
/// Answered without credentials (as CVAT does), besides the UI's own files.
const PUBLIC: &[&str] = &[
    "/api/server/about",
    "/api/server/health",
    // The UI reads both before its login page (popups otherwise).
    "/api/schema",
    "/api/user-agreements",
    "/api/auth/login",
    "/metrics",
];

fn unauthorized(msg: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: msg.to_owned(),
    }
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Reads one cookie from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Authenticates every request except the public endpoints: a Bearer token, or a session
/// cookie (then unsafe methods need `X-CSRFToken` equal to the session's CSRF token).
pub(crate) async fn require_auth(State(st): St, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().trim_end_matches('/');
    if PUBLIC.contains(&path) || !super::ui::is_server_path(path) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let user = if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let Some(token) = bearer_token(auth) else {
            return unauthorized(
                "Unsupported authorization scheme: use 'Authorization: Bearer <token>'",
            );
        };
        match st.store.token_by_hash(&secret_hash(token)) {
            Ok(Some((t, u))) => CurrentUser {
                token_id: Some(t.id),
                ..CurrentUser::from(&u)
            },
            Ok(None) => return unauthorized("Invalid token."),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else if let Some(sid) = cookie(headers, "sessionid") {
        match st.store.session(&secret_hash(sid)) {
            Ok(Some((u, csrf))) => {
                let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
                let sent = headers.get("X-CSRFToken").and_then(|v| v.to_str().ok());
                if !safe && sent != Some(csrf.as_str()) {
                    return ApiError {
                        status: StatusCode::FORBIDDEN,
                        message: "CSRF Failed: CSRF token missing or incorrect.".into(),
                    }
                    .into_response();
                }
                CurrentUser::from(&u)
            }
            Ok(None) => return unauthorized("Invalid or expired session: log in again."),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        return unauthorized("Authentication credentials were not provided.");
    };
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// `LoginSerializerExRequest`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginRequest {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

fn cookie_header(name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    let expires =
        (Utc::now() + chrono::Duration::seconds(max_age)).format("%a, %d %b %Y %H:%M:%S GMT");
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; expires={expires}; Max-Age={max_age}; Path=/; SameSite=Lax{http_only}"
    ))
    .expect("cookie values are hex")
}

/// `POST /api/auth/login`
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", responses((status = 200, description = "Sets the sessionid and csrftoken cookies", body = Object)))]
pub(crate) async fn login(
    State(st): St,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) =
        body.map_err(|e| ApiError::bad_request(format!("invalid login JSON: {}", e.body_text())))?;
    let name = req.username.or(req.email).unwrap_or_default();
    let password = req.password.unwrap_or_default();
    let attempt = match st.login_guard.begin(&name, ip, Instant::now()) {
        Ok(a) => a,
        Err(wait) => {
            let wait = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!(
                    "Too many failed login attempts for this user from this address; try again in {wait} s."
                ),
            }
            .into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&wait.to_string()).expect("digits"),
            );
            return Ok(r);
        }
    };
    let user = st.store.user_by_name(&name)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // Verify on a blocking thread (argon2 is deliberately slow), a few at a time (each takes
    // ~19 MiB); verify a dummy hash for unknown users so timing does not reveal which names exist.
    let ok = {
        let _turn = st.login_guard.verify_permit().await;
        tokio::task::spawn_blocking(move || match hash {
            Some(h) => verify_password(&password, &h),
            None => {
                verify_password(&password, DUMMY_HASH.get_or_init(|| hash_password("dummy")));
                false
            }
        })
        .await
        .unwrap_or(false)
    };
    let Some(user) = user.filter(|_| ok) else {
        let delay = attempt.failed(Instant::now());
        tokio::time::sleep(delay).await;
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"non_field_errors": ["Unable to log in with provided credentials."]})),
        )
            .into_response());
    };
    attempt.succeeded();
    let sid = random_secret(32);
    let csrf = random_secret(16);
    st.store.create_session(
        &secret_hash(&sid),
        user.id,
        &csrf,
        Utc::now() + chrono::Duration::days(SESSION_DAYS),
    )?;
    let mut r = Json(json!({"key": random_secret(20)})).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie_header("csrftoken", &csrf, 31_449_600, false),
    );
    h.append(
        header::SET_COOKIE,
        cookie_header("sessionid", &sid, SESSION_DAYS * 86_400, true),
    );
    tracing::info!(user = %user.username, "logged in");
    Ok(r)
}

static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `POST /api/auth/logout`
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 200, description = "Ends the session", body = Object)))]
pub(crate) async fn logout(State(st): St, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(sid) = cookie(&headers, "sessionid") {
        st.store.delete_session(&secret_hash(sid))?;
    }
    let mut r = Json(json!({"detail": "Successfully logged out."})).into_response();
    let h = r.headers_mut();
    h.append(header::SET_COOKIE, cookie_header("sessionid", "", 0, true));
    h.append(header::SET_COOKIE, cookie_header("csrftoken", "", 0, false));
    Ok(r)
}

/// A user's JSON (`User` / `BasicUser`).
pub(crate) fn user_json(u: &UserRow, base: &str) -> Value {
    json!({
        "url": format!("{base}/api/users/{}", u.id),
        "id": u.id,
        "username": u.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "groups": [if u.is_admin { "admin" } else { "user" }],
        "is_staff": u.is_admin,
        "is_superuser": u.is_admin,
        "is_active": true,
        "last_login": null,
        "date_joined": iso_utc(u.created_date),
        "has_analytics_access": false,
    })
}

/// The short owner/assignee form embedded in tasks and jobs.
pub(crate) fn basic_user(st: &AppState, id: Option<i64>, base: &str) -> Value {
    match id.and_then(|id| st.store.user(id).ok().flatten()) {
        Some(u) => {
            json!({"url": format!("{base}/api/users/{}", u.id), "id": u.id, "username": u.username, "first_name": "", "last_name": ""})
        }
        None => Value::Null,
    }
}

/// `GET /api/users/self`
#[utoipa::path(get, path = "/api/users/self", tag = "users", responses((status = 200, description = "The current user", body = Object)))]
pub(crate) async fn users_self(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    let u = st
        .store
        .user(me.id)?
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(user_json(&u, &base)))
}

/// CVAT's `UserViewSet` fields: `search` looks in the names; `username`, `first_name`,
/// `last_name`, `id` and `is_active` filter (simple or JSON Logic) and sort.
const USER_FIELDS: Fields = Fields {
    fields: &[
        ("id", "/id"),
        ("username", "/username"),
        ("first_name", "/first_name"),
        ("last_name", "/last_name"),
        ("is_active", "/is_active"),
    ],
    search: &["username", "first_name", "last_name"],
};

/// `GET /api/users`: with CVAT's simple filters, `search`, `filter` (JSON Logic) and `sort`
/// (default `-id`), as the UI's assignee box asks (`?search=an&limit=10`).
#[utoipa::path(get, path = "/api/users", tag = "users", params(("page" = usize, Query, description = "Page number"), ("page_size" = usize, Query, description = "Page size"), ("username" = String, Query, description = "Username equals"), ("is_active" = bool, Query, description = "Active users"), ("search" = String, Query, description = "Username, first or last name contains"), ("filter" = String, Query, description = "JSON Logic filter"), ("sort" = String, Query, description = "Sort fields, e.g. username,-id")), responses((status = 200, description = "Paginated users", body = Object)))]
pub(crate) async fn list_users(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Query(params): Query<HashMap<String, String>>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
) -> Result<Json<Value>, ApiError> {
    // CVAT's IAM rule outside organizations: admins list everyone, other users themselves.
    let users: Vec<Value> = st
        .store
        .users()?
        .iter()
        .filter(|u| me.is_admin || u.id == me.id)
        .map(|u| user_json(u, &base))
        .collect();
    Ok(Json(ListQuery::new(params).answer(
        &USER_FIELDS,
        users,
        "-id",
        &base,
        "/api/users",
    )?))
}

fn token_json(t: &TokenRow, owner: &CurrentUser, value: Option<&str>) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "created_date": iso_utc(t.created_date),
        "updated_date": iso_utc(t.created_date),
        "expiry_date": t.expiry_date.map(iso_utc),
        "last_used_date": t.last_used_date.map(iso_utc),
        "read_only": false,
        "owner": {"id": owner.id, "username": owner.username},
    });
    if let Some(value) = value {
        v["value"] = Value::from(value);
    }
    v
}

/// `AccessTokenWriteRequest`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TokenCreate {
    name: Option<String>,
    expiry_date: Option<chrono::DateTime<Utc>>,
}

/// `POST /api/auth/access_tokens`: the token value is returned once, only its hash is kept.
#[utoipa::path(post, path = "/api/auth/access_tokens", tag = "auth", responses((status = 201, description = "The new token; its value is shown only here", body = Object)))]
pub(crate) async fn create_token(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    body: Result<Json<TokenCreate>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) =
        body.map_err(|e| ApiError::bad_request(format!("invalid token JSON: {}", e.body_text())))?;
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("'name' is required"))?;
    if req.expiry_date.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::bad_request("'expiry_date' must be in the future"));
    }
    let value = format!("fs_{}", random_secret(24));
    let t = st
        .store
        .create_token(me.id, &name, &secret_hash(&value), req.expiry_date)?;
    Ok((StatusCode::CREATED, Json(token_json(&t, &me, Some(&value)))).into_response())
}

/// `GET /api/auth/access_tokens`
#[utoipa::path(get, path = "/api/auth/access_tokens", tag = "auth", responses((status = 200, description = "Paginated tokens of the current user", body = Object)))]
pub(crate) async fn list_tokens(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = st
        .store
        .tokens(me.id)?
        .iter()
        .map(|t| token_json(t, &me, None))
        .collect();
    Ok(Json(
        json!({"count": items.len(), "next": null, "previous": null, "results": items}),
    ))
}

/// `GET /api/auth/access_tokens/self`: the token this request was made with.
#[utoipa::path(get, path = "/api/auth/access_tokens/self", tag = "auth", responses((status = 200, description = "The token this request was made with", body = Object)))]
pub(crate) async fn token_self(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let id = me
        .token_id
        .ok_or_else(|| ApiError::not_found("This request was not made with an access token."))?;
    let t = st
        .store
        .tokens(me.id)?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found("Not found."))?;
    Ok(Json(token_json(&t, &me, None)))
}

/// `DELETE /api/auth/access_tokens/{id}`
#[utoipa::path(delete, path = "/api/auth/access_tokens/{id}", tag = "auth", params(("id" = i64, Path, description = "Token id")), responses((status = 204, description = "Revoked")))]
pub(crate) async fn revoke_token(
    State(st): St,
    Extension(me): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if st.store.revoke_token(me.id, id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Not found."))
    }
}

/// Creates the first admin on an empty database: password from `FRAMESERVER_ADMIN_PASSWORD`, or
/// a generated one printed once to the log.
pub(crate) fn ensure_admin(st: &Arc<AppState>) -> anyhow::Result<()> {
    if !st.store.users()?.is_empty() {
        return Ok(());
    }
    let (password, generated) = match std::env::var("FRAMESERVER_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (random_secret(12), true),
    };
    st.store
        .create_user("admin", &hash_password(&password), true)?;
    if generated {
        tracing::warn!("created user 'admin' with password '{password}' (shown once; change it with `frameserver user passwd admin`)");
    } else {
        tracing::info!("created user 'admin' with the password from FRAMESERVER_ADMIN_PASSWORD");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "  bEaReR \t abc  ",
        ] {
            assert_eq!(bearer_token(v), Some("abc"), "{v:?}");
        }
        for v in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "Token abc"] {
            assert_eq!(bearer_token(v), None, "{v:?}");
        }
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; csrftoken=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("sessionid=xyz"));
        assert_eq!(cookie(&h, "csrftoken"), Some("abc"));
        assert_eq!(cookie(&h, "sessionid"), Some("xyz"));
        assert_eq!(cookie(&h, "nope"), None);
    }
}
