//! Authentication as an extractor: a handler that takes a [`Caller`] only
//! runs for a valid `Authorization: Bearer` token; anything else is a 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::accounts::{caller_for_token, Caller};
use crate::error::ApiError;
use crate::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?;
        caller_for_token(&state.db, token.trim())
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}
