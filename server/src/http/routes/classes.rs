//! A class's assignments (`/v1/organizations/{slug}/assignments`) and the
//! people a sprite is shared with (`/v1/sprites/{name}/members`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::classes::{
    Assignment, AssignmentList, Collect, Collection, CollectionList, NewAssignment,
    NewSpriteMember, Reset, ResetDone, SpriteMembers, Started,
};

use super::json::Body;
use crate::domain::caller::Caller;
use crate::domain::classes;
use crate::error::ApiError;
use crate::AppState;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<AssignmentList>, ApiError> {
    Ok(Json(classes::list(&state, &caller, &slug).await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<NewAssignment>,
) -> Result<(StatusCode, Json<Assignment>), ApiError> {
    let a = classes::create(&state, &caller, &slug, req).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<Assignment>, ApiError> {
    Ok(Json(classes::get(&state, &caller, &slug, &name).await?))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    classes::remove(&state, &caller, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<Started>, ApiError> {
    Ok(Json(classes::start(&state, &caller, &slug, &name).await?))
}

pub(super) async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
    Body(req): Body<Reset>,
) -> Result<Json<ResetDone>, ApiError> {
    Ok(Json(
        classes::reset(&state, &caller, &slug, &name, &req.student).await?,
    ))
}

pub(super) async fn collect(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
    Body(req): Body<Collect>,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    let c = classes::collect(&state, &caller, &slug, &name, &req.label).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

pub(super) async fn collections(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<CollectionList>, ApiError> {
    Ok(Json(
        classes::collections(&state, &caller, &slug, &name).await?,
    ))
}

pub(super) async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SpriteMembers>, ApiError> {
    Ok(Json(classes::members(&state, &caller, &name).await?))
}

pub(super) async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<NewSpriteMember>,
) -> Result<Json<SpriteMembers>, ApiError> {
    Ok(Json(
        classes::add_member(&state, &caller, &name, &req.handle).await?,
    ))
}

pub(super) async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, handle)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    classes::remove_member(&state, &caller, &name, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}
