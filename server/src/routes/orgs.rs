//! `/v1/organizations`: the caller's organizations, team organizations,
//! classes (join code, per-student limits, `/v1/join`) and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::json::Body;
use super::Routes;
use crate::accounts::Caller;
use crate::error::ApiError;
use crate::{orgs, AppState};

pub fn routes() -> Routes {
    Routes::new()
        .get("/v1/organizations", list)
        .post("/v1/organizations", create)
        .get("/v1/organizations/{slug}", show)
        .post("/v1/organizations/{slug}/join-code", new_code)
        .put("/v1/organizations/{slug}/limits", set_limits)
        .post("/v1/join", join)
        .get("/v1/organizations/{slug}/members", members)
        .post("/v1/organizations/{slug}/members", set_member)
        .delete("/v1/organizations/{slug}/members/{handle}", remove_member)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    slug: String,
    name: String,
    /// A class: teachers and students who join with a code.
    #[serde(default)]
    class: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    /// Sprites each student may have; null: no limit.
    max_sprites_per_member: Option<i64>,
    /// Bytes of disk each student's sprites may use together; null: no limit.
    max_disk_per_member: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Join {
    code: String,
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(orgs::get(&state.db, &caller, &slug).await?))
}

async fn new_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(orgs::new_code(&state.db, &caller, &slug).await?))
}

async fn set_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<Limits>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        orgs::set_limits(
            &state.db,
            &caller,
            &slug,
            req.max_sprites_per_member,
            req.max_disk_per_member,
        )
        .await?,
    ))
}

async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<Join>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(orgs::join(&state.db, &caller, &req.code).await?))
}

#[derive(Deserialize)]
struct Member {
    handle: String,
    #[serde(default = "member")]
    role: String,
}

fn member() -> String {
    "member".into()
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    Ok(Json(orgs::list(&state.db, &caller).await?))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewOrg>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(orgs::create_kind(&state.db, &caller, &req.slug, &req.name, req.class).await?),
    ))
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(orgs::members(&state.db, &caller, &slug).await?))
}

async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    Body(req): Body<Member>,
) -> Result<Json<Value>, ApiError> {
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
