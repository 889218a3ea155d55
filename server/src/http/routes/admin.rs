//! `/v1/admin`: invitations and the server's accounts, for its admins.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::accounts::{Invitation, InvitationList, NewInvitation, UserList, UserSummary};

use super::json::Body;
use crate::domain::admin;
use crate::error::ApiError;
use crate::http::auth::Admin;
use crate::AppState;

pub(super) async fn invitations(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<InvitationList>, ApiError> {
    Ok(Json(admin::invitations(&state.db).await?))
}

pub(super) async fn invite(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Body(req): Body<NewInvitation>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(admin::invite(&state.db, &caller, &req).await?),
    ))
}

pub(super) async fn withdraw(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::withdraw(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn users(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<UserList>, ApiError> {
    Ok(Json(admin::users(&state.db).await?))
}

pub(super) async fn disable(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(handle): Path<String>,
) -> Result<Json<UserSummary>, ApiError> {
    set_disabled(&state, &caller, &handle, true).await
}

pub(super) async fn enable(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(handle): Path<String>,
) -> Result<Json<UserSummary>, ApiError> {
    set_disabled(&state, &caller, &handle, false).await
}

async fn set_disabled(
    state: &AppState,
    caller: &crate::domain::caller::Caller,
    handle: &str,
    disabled: bool,
) -> Result<Json<UserSummary>, ApiError> {
    Ok(Json(
        admin::set_disabled(&state.db, caller, handle, disabled).await?,
    ))
}
