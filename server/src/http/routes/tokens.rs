//! `/v1/tokens`: the caller's API tokens in their organization. A new
//! token is shown once, in the answer that creates it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::orgs::{MintedToken, NewToken, TokenList};

use super::json::Body;
use crate::domain::accounts;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(accounts::list_tokens(&state.db, &caller).await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, Json<MintedToken>), ApiError> {
    let minted = accounts::mint_token(&state.db, &caller, &req).await?;
    Ok((StatusCode::CREATED, Json(minted)))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if accounts::revoke_token(&state.db, &caller, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("token {id}")))
    }
}
