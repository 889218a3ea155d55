//! The one place where errors become HTTP statuses and JSON bodies. A 5xx
//! body is generic; its detail goes to the log only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Host(#[from] vmhost::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use vmhost::Error as E;
        let ApiError::Host(e) = &self;
        let (status, code) = match e {
            E::NotFound(_)
            | E::CheckpointNotFound(..)
            | E::SessionNotFound(_)
            | E::FileNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            E::AlreadyExists(_) | E::FileExists(_) => (StatusCode::CONFLICT, "already_exists"),
            E::WrongPhase { .. } | E::CheckpointInUse(_) | E::FileConflict { .. } => {
                (StatusCode::CONFLICT, "conflict")
            }
            E::InvalidName(_) | E::InvalidPath { .. } | E::Invalid(_) => {
                (StatusCode::BAD_REQUEST, "invalid")
            }
            E::QuotaExceeded => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded"),
            E::PoolFull => (StatusCode::INSUFFICIENT_STORAGE, "pool_full"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "request failed");
            "something went wrong on the server".to_string()
        } else {
            e.to_string()
        };
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}
