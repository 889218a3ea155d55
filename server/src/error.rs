//! The one place where errors become HTTP statuses and JSON bodies
//! (`{"error": code, "message": text}`). A 5xx body is generic; its detail
//! goes to the log only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sprites_wire::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Host(#[from] vmhost::Error),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("authentication required: send an API token as `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed attempts; try again in {0} seconds")]
    TooManyRequests(u64),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use vmhost::Error as E;
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Db(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Host(e) => match e {
                E::NotFound(_)
                | E::CheckpointNotFound(..)
                | E::SessionNotFound(_)
                | E::FileNotFound(_)
                | E::ServiceNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                E::AlreadyExists(_) | E::FileExists(_) => (StatusCode::CONFLICT, "already_exists"),
                E::WrongPhase { .. }
                | E::CheckpointInUse(_)
                | E::FileConflict { .. }
                | E::ServiceConflict(_) => (StatusCode::CONFLICT, "conflict"),
                E::InvalidName(_) | E::InvalidPath { .. } | E::Invalid(_) => {
                    (StatusCode::BAD_REQUEST, "invalid")
                }
                E::QuotaExceeded => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded"),
                E::PoolFull => (StatusCode::INSUFFICIENT_STORAGE, "pool_full"),
                E::PortClosed(_) => (StatusCode::BAD_GATEWAY, "port_closed"),
                // A disk that lives in the object store, which is away now.
                E::Bucket(_) => (StatusCode::SERVICE_UNAVAILABLE, "object_store_unavailable"),
                E::Corrupt { .. } | E::Refused(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_replica")
                }
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The message a client may read: the error's own words, or a generic
    /// sentence for a server fault, whose detail goes to the log instead.
    pub fn public_message(&self) -> String {
        if self.status_and_code().0 == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, source = ?std::error::Error::source(self), detail = ?self, "request failed");
            "something went wrong on the server".to_string()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.public_message();
        let errno = match &self {
            ApiError::Host(e) => e.errno().map(str::to_string),
            _ => None,
        };
        let body = ErrorBody {
            error: code.to_string(),
            message,
            code: errno,
        };
        let mut res = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests(secs) = self {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}
