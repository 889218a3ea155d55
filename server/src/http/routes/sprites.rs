//! `/v1/sprites`: create, list, get, update and destroy sprites.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use sprites_wire::api::{
    CreateSprite, Fork, KeepAwake, NewKeepAwake, SleepRequest, Sprite, SpriteList, UpdateSprite,
};

use super::json::{Body, Query};
use crate::domain::caller::Caller;
use crate::domain::sprites;
use crate::error::ApiError;
use crate::AppState;

pub(super) async fn list_keep_awake(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<KeepAwake>>, ApiError> {
    Ok(Json(
        sprites::list_keep_awake(&state, &caller, &name).await?,
    ))
}

pub(super) async fn add_keep_awake(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<NewKeepAwake>,
) -> Result<(StatusCode, Json<KeepAwake>), ApiError> {
    let task = sprites::add_keep_awake(&state, &caller, &name, req).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

pub(super) async fn remove_keep_awake(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    sprites::remove_keep_awake(&state, &caller, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn fork(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Fork>,
) -> Result<(StatusCode, Json<Sprite>), ApiError> {
    let checkpoint = req
        .checkpoint
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::NotFound(format!("checkpoint {c}")))
        })
        .transpose()?;
    let sprite = sprites::fork(&state, &caller, &name, &req.name, checkpoint).await?;
    Ok((StatusCode::CREATED, Json(sprite)))
}

pub(super) async fn sleep(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Body<SleepRequest>, ApiError>,
) -> Result<Json<Sprite>, ApiError> {
    let cold = body.map(|Body(b)| b.cold).unwrap_or(false);
    Ok(Json(sprites::sleep(&state, &caller, &name, cold).await?))
}

pub(super) async fn wake(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Sprite>, ApiError> {
    Ok(Json(sprites::wake(&state, &caller, &name).await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<CreateSprite>,
) -> Result<(StatusCode, Json<Sprite>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(sprites::create(&state, &caller, req).await?),
    ))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    prefix: Option<String>,
    max_results: Option<usize>,
    continuation_token: Option<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<SpriteList>, ApiError> {
    let list = sprites::list(
        &state,
        &caller,
        q.prefix.as_deref(),
        q.max_results,
        q.continuation_token.as_deref(),
    )
    .await?;
    Ok(Json(list))
}

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Sprite>, ApiError> {
    Ok(Json(sprites::get(&state, &caller, &name).await?))
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<UpdateSprite>,
) -> Result<Json<Sprite>, ApiError> {
    Ok(Json(sprites::update(&state, &caller, &name, req).await?))
}

pub(super) async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    sprites::destroy(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
