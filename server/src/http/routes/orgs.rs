//! `/v1/organizations`: the caller's organizations, team organizations,
//! classes (join code, per-student limits, `/v1/join`) and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::orgs::{
    Join, JoinCode, Limits, Member, MemberList, NewOrganization, Organization, OrganizationList,
};

use super::json::Body;
use crate::domain::caller::Caller;
use crate::domain::orgs;
use crate::error::ApiError;
use crate::AppState;

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(orgs::get(&state.db, &caller, &slug).await?))
}

pub(super) async fn new_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<JoinCode>, ApiError> {
    Ok(Json(orgs::new_code(&state.db, &caller, &slug).await?))
}

pub(super) async fn set_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<Limits>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(
        orgs::set_limits(&state.db, &caller, &slug, req).await?,
    ))
}

pub(super) async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<Join>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(orgs::join(&state.db, &caller, &req.code).await?))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OrganizationList>, ApiError> {
    Ok(Json(orgs::list(&state.db, &caller).await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewOrganization>,
) -> Result<(StatusCode, Json<Organization>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(orgs::create_kind(&state.db, &caller, &req.slug, &req.name, req.class).await?),
    ))
}

pub(super) async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<MemberList>, ApiError> {
    Ok(Json(orgs::members(&state.db, &caller, &slug).await?))
}

pub(super) async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<Member>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(
        orgs::set_member(&state.db, &caller, &slug, &req.handle, &req.role).await?,
    ))
}

pub(super) async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, handle)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    orgs::remove_member(&state.db, &caller, &slug, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}
