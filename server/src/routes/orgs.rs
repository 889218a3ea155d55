//! `/v1/organizations`: the caller's organizations, team organizations and
//! their members.

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
        .get("/v1/organizations/{slug}/members", members)
        .post("/v1/organizations/{slug}/members", set_member)
        .delete("/v1/organizations/{slug}/members/{handle}", remove_member)
}

#[derive(Deserialize)]
struct NewOrg {
    slug: String,
    name: String,
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
        Json(orgs::create(&state.db, &caller, &req.slug, &req.name).await?),
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
