//! Authentication as an extractor. A handler that takes a [`Caller`] runs
//! only for a valid `Authorization: Bearer` token, or for a signed-in
//! browser session; anything else is a 401. A session request that changes
//! state must also send the session's CSRF token in `X-CSRF-Token` (403
//! otherwise); bearer requests need none.
//!
//! A session request that names its origin must come from the API's own
//! origin: sprite URLs share the site of the app (`*.localhost`, or the
//! operator's wildcard domain), so a sprite's page could otherwise open the
//! exec WebSocket, a GET that carries the session cookie and no CSRF token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use tower_sessions::Session;

use crate::domain::accounts::{caller_for_token, caller_for_user};
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::http::session::{CSRF, ORG_ID, USER_ID};
use crate::AppState;

pub const CSRF_HEADER: &str = "x-csrf-token";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        // A sprite's own management socket acts for that sprite alone.
        if let Some(crate::http::mgmt::SpriteItself(caller)) = parts.extensions.get() {
            return Ok(caller.clone());
        }
        if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let header = header.to_str().map_err(|_| ApiError::Unauthorized)?;
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or(ApiError::Unauthorized)?;
            return caller_for_token(&state.db, token.trim())
                .await?
                .ok_or(ApiError::Unauthorized);
        }
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Unauthorized)?;
        if !same_origin(&parts.headers) {
            return Err(ApiError::Forbidden(
                "a signed-in session is only usable from the app's own pages".into(),
            ));
        }
        let user: Option<String> = session.get(USER_ID).await.map_err(session_error)?;
        let org: Option<String> = session.get(ORG_ID).await.map_err(session_error)?;
        let (Some(user), Some(org)) = (user, org) else {
            return Err(ApiError::Unauthorized);
        };
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let expected: Option<String> = session.get(CSRF).await.map_err(session_error)?;
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if expected.is_none() || sent != expected.as_deref() {
                return Err(ApiError::Forbidden("missing or wrong X-CSRF-Token".into()));
            }
        }
        caller_for_user(&state.db, &user, &org)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}

/// Whether the request's `Origin`, when it sends one, is the host it asks.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

pub fn session_error(e: tower_sessions::session::Error) -> ApiError {
    ApiError::Internal(format!("session store: {e}"))
}

/// A caller who is one of the server's admins; anyone else gets a 403.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if crate::domain::accounts::is_admin(&state.db, &caller).await? {
            Ok(Admin(caller))
        } else {
            Err(ApiError::Forbidden(
                "only the server's admins may do this".into(),
            ))
        }
    }
}
