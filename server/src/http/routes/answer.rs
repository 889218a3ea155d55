//! What a signed-in route starts from and what it answers: [`Cx`] is the
//! caller and the state their call reaches, taken together as one
//! extractor (a 401 or 403 before the handler runs, as [`Caller`] decides);
//! [`Answer`], [`Made`] and [`Done`] are the three shapes of a reply.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;

use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The state and who calls.
pub(super) struct Cx {
    pub state: AppState,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Cx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Cx, ApiError> {
        Ok(Cx {
            caller: Caller::from_request_parts(parts, state).await?,
            state: state.clone(),
        })
    }
}

/// 200 with a JSON body.
pub(super) type Answer<T> = Result<Json<T>, ApiError>;

/// 201 with what was made.
pub(super) type Made<T> = Result<(StatusCode, Json<T>), ApiError>;

/// 204: done, nothing to say.
pub(super) type Done = Result<StatusCode, ApiError>;

/// The 201 reply of a [`Made`].
pub(super) fn made<T>(thing: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(thing))
}
