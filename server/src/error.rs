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
    /// An organization's limit reached (see `domain::limits`).
    #[error("{}", .0.message)]
    RateLimited(Box<RateLimit>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

/// A limit reached, as the SDKs read it: the body's `limit`,
/// `window_seconds`, `current_count` and `retry_after_seconds`, and the
/// `Retry-After` and `X-RateLimit-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// `sprite_creation_rate_limited` or `concurrent_sprite_limit_exceeded`.
    pub code: &'static str,
    pub message: String,
    pub limit: u64,
    pub remaining: u64,
    pub window_seconds: Option<u64>,
    pub current_count: Option<u64>,
    /// Seconds until one more is allowed, when that is known.
    pub retry_after: Option<u64>,
}

impl RateLimit {
    fn headers(&self, headers: &mut axum::http::HeaderMap) {
        headers.insert("x-ratelimit-limit", self.limit.into());
        headers.insert("x-ratelimit-remaining", self.remaining.into());
        if let Some(secs) = self.retry_after {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + secs;
            headers.insert("x-ratelimit-reset", reset.into());
            headers.insert(axum::http::header::RETRY_AFTER, secs.into());
        }
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use vmhost::Error as E;
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::RateLimited(limit) => (StatusCode::TOO_MANY_REQUESTS, limit.code),
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
                // The sprite's own processes took all they may have.
                E::Exhausted(_) => (StatusCode::CONFLICT, "limit_reached"),
                E::PoolFull => (StatusCode::INSUFFICIENT_STORAGE, "pool_full"),
                E::NoRoom(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_room"),
                E::Moving(_) => (StatusCode::CONFLICT, "moving"),
                E::Fenced(_) => (StatusCode::SERVICE_UNAVAILABLE, "fenced"),
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

    /// The error's code, as the JSON body's `error` names it.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
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

/// axum's own refusals (a method the path does not take, a path part that
/// does not decode, a body over the limit) come as plain text; the API
/// answers them in its JSON, keeping their status, words and headers
/// (`Allow` on a 405).
pub async fn json_refusal(res: Response) -> Response {
    let plain = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = match parts.status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "invalid",
    };
    let message = match text.is_empty() {
        true => parts
            .status
            .canonical_reason()
            .unwrap_or("refused")
            .to_string(),
        false => text,
    };
    let body = ErrorBody::new(error, message);
    let json = serde_json::to_vec(&body).expect("error bodies serialize");
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(json))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.public_message();
        let errno = match &self {
            ApiError::Host(e) => e.errno().map(str::to_string),
            _ => None,
        };
        let mut body = ErrorBody {
            code: errno,
            ..ErrorBody::new(code, message)
        };
        if let ApiError::RateLimited(limit) = &self {
            body.limit = Some(limit.limit);
            body.window_seconds = limit.window_seconds;
            body.current_count = limit.current_count;
            body.retry_after_seconds = limit.retry_after;
        }
        let mut res = (status, Json(body)).into_response();
        match &self {
            ApiError::TooManyRequests(secs) => {
                res.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, (*secs).into());
            }
            ApiError::RateLimited(limit) => limit.headers(res.headers_mut()),
            _ => {}
        }
        res
    }
}
