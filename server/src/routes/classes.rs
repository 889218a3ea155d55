//! A class's assignments (`/v1/organizations/{slug}/assignments`) and the
//! people a sprite is shared with (`/v1/sprites/{name}/members`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::json::Body;
use super::Routes;
use crate::accounts::Caller;
use crate::classes::{self, NewAssignment};
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/v1/organizations/{slug}/assignments", list)
        .post("/v1/organizations/{slug}/assignments", create)
        .get("/v1/organizations/{slug}/assignments/{name}", show)
        .delete("/v1/organizations/{slug}/assignments/{name}", remove)
        .post("/v1/organizations/{slug}/assignments/{name}/start", start)
        .post("/v1/organizations/{slug}/assignments/{name}/reset", reset)
        .post(
            "/v1/organizations/{slug}/assignments/{name}/collect",
            collect,
        )
        .get(
            "/v1/organizations/{slug}/assignments/{name}/collections",
            collections,
        )
        .get("/v1/sprites/{name}/members", members)
        .post("/v1/sprites/{name}/members", add_member)
        .delete("/v1/sprites/{name}/members/{handle}", remove_member)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    /// The student's handle.
    student: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Collect {
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    handle: String,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(classes::list(&state, &caller, &slug).await?))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<NewAssignment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let a = classes::create(&state, &caller, &slug, req).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(classes::get(&state, &caller, &slug, &name).await?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    classes::remove(&state, &caller, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(classes::start(&state, &caller, &slug, &name).await?))
}

async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
    Body(req): Body<Reset>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        classes::reset(&state, &caller, &slug, &name, &req.student).await?,
    ))
}

async fn collect(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
    Body(req): Body<Collect>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = classes::collect(&state, &caller, &slug, &name, &req.label).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

async fn collections(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        classes::collections(&state, &caller, &slug, &name).await?,
    ))
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(classes::members(&state, &caller, &name).await?))
}

async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<NewMember>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        classes::add_member(&state, &caller, &name, &req.handle).await?,
    ))
}

async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, handle)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    classes::remove_member(&state, &caller, &name, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}
