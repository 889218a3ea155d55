//! `/v1/sprites`: create, list, get, update and destroy sprites.

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sprites_wire::api::{
    CreateSprite, Fork, KeepAwake, NewKeepAwake, Restarted, SleepRequest, Sprite, SpriteCheck,
    SpriteList, UpdateSprite, Upgraded,
};

use super::answer::{made, Answer, Cx, Done, Made};
use super::json::{Body, OptionalBody, Query};
use crate::domain::{sprites, states};
use crate::error::ApiError;

pub(super) async fn list_keep_awake(cx: Cx, Path(name): Path<String>) -> Answer<Vec<KeepAwake>> {
    Ok(Json(
        sprites::list_keep_awake(&cx.state, &cx.caller, &name).await?,
    ))
}

pub(super) async fn add_keep_awake(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<NewKeepAwake>,
) -> Made<KeepAwake> {
    Ok(made(
        sprites::add_keep_awake(&cx.state, &cx.caller, &name, req).await?,
    ))
}

pub(super) async fn remove_keep_awake(cx: Cx, Path((name, id)): Path<(String, String)>) -> Done {
    sprites::remove_keep_awake(&cx.state, &cx.caller, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn fork(cx: Cx, Path(name): Path<String>, Body(req): Body<Fork>) -> Made<Sprite> {
    let checkpoint = req
        .checkpoint
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::NotFound(format!("checkpoint {c}")))
        })
        .transpose()?;
    let sprite = sprites::fork(&cx.state, &cx.caller, &name, &req.name, checkpoint).await?;
    Ok(made(sprite))
}

pub(super) async fn sleep(
    cx: Cx,
    Path(name): Path<String>,
    OptionalBody(req): OptionalBody<SleepRequest>,
) -> Answer<Sprite> {
    Ok(Json(
        sprites::sleep(&cx.state, &cx.caller, &name, req.cold).await?,
    ))
}

pub(super) async fn restart(cx: Cx, Path(name): Path<String>) -> Answer<Restarted> {
    Ok(Json(sprites::restart(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn upgrade(cx: Cx, Path(name): Path<String>) -> Answer<Upgraded> {
    Ok(Json(sprites::upgrade(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn check(cx: Cx, Path(name): Path<String>) -> Answer<SpriteCheck> {
    Ok(Json(sprites::check(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn wake(cx: Cx, Path(name): Path<String>) -> Answer<Sprite> {
    Ok(Json(sprites::wake(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn create(cx: Cx, Body(req): Body<CreateSprite>) -> Made<Sprite> {
    Ok(made(sprites::create(&cx.state, &cx.caller, req).await?))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    prefix: Option<String>,
    max_results: Option<usize>,
    continuation_token: Option<String>,
}

/// The list as JSON; asked as NDJSON (`Accept: application/x-ndjson`),
/// the sprites' states followed live (`domain::states`).
pub(super) async fn list(
    cx: Cx,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if ndjson {
        let rx = states::follow(&cx.state, &cx.caller, q.prefix.as_deref(), q.max_results).await?;
        return Ok(super::checkpoints::ndjson_of(rx));
    }
    let list: SpriteList = sprites::list(
        &cx.state,
        &cx.caller,
        q.prefix.as_deref(),
        q.max_results,
        q.continuation_token.as_deref(),
    )
    .await?;
    Ok(Json(list).into_response())
}

pub(super) async fn show(cx: Cx, Path(name): Path<String>) -> Answer<Sprite> {
    Ok(Json(sprites::get(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn update(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<UpdateSprite>,
) -> Answer<Sprite> {
    Ok(Json(
        sprites::update(&cx.state, &cx.caller, &name, req).await?,
    ))
}

pub(super) async fn destroy(cx: Cx, Path(name): Path<String>) -> Done {
    sprites::destroy(&cx.state, &cx.caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
