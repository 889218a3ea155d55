//! `/v1/organizations`: the caller's organizations, team organizations,
//! classes (join code, per-student limits, `/v1/join`) and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::client::path;
use sprites_wire::orgs::{
    Join, JoinCode, Limits, Member, MemberList, NewOrganization, Organization, OrganizationList,
};

use super::json::Body;
use super::Routes;
use crate::domain::caller::Caller;
use crate::domain::orgs;
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get(path::ORGANIZATIONS, list)
        .post(path::ORGANIZATIONS, create)
        .get(path::ORGANIZATION, show)
        .post(path::JOIN_CODE, new_code)
        .put(path::LIMITS, set_limits)
        .post(path::JOIN, join)
        .get(path::MEMBERS, members)
        .post(path::MEMBERS, set_member)
        .delete(path::MEMBER, remove_member)
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(orgs::get(&state.db, &caller, &slug).await?))
}

async fn new_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<JoinCode>, ApiError> {
    Ok(Json(orgs::new_code(&state.db, &caller, &slug).await?))
}

async fn set_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<Limits>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(
        orgs::set_limits(&state.db, &caller, &slug, req).await?,
    ))
}

async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<Join>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(orgs::join(&state.db, &caller, &req.code).await?))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OrganizationList>, ApiError> {
    Ok(Json(orgs::list(&state.db, &caller).await?))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewOrganization>,
) -> Result<(StatusCode, Json<Organization>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(orgs::create_kind(&state.db, &caller, &req.slug, &req.name, req.class).await?),
    ))
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<MemberList>, ApiError> {
    Ok(Json(orgs::members(&state.db, &caller, &slug).await?))
}

async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<Member>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(
        orgs::set_member(&state.db, &caller, &slug, &req.handle, &req.role).await?,
    ))
}

async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, handle)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    orgs::remove_member(&state.db, &caller, &slug, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}
