//! `/v1/tokens`: the caller's API tokens in their organization. A new
//! token is shown once, in the answer that creates it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::json::Body;
use super::Routes;
use crate::accounts::{self, Caller};
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/v1/tokens", list)
        .post("/v1/tokens", create)
        .delete("/v1/tokens/{id}", revoke)
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    /// Organization the token acts in (default: the caller's current one).
    #[serde(default)]
    organization: Option<String>,
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "tokens": accounts::list_tokens(&state.db, &caller).await? }),
    ))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::Invalid("name: 1 to 100 characters".into()));
    }
    let (org_id, org_slug) = match &req.organization {
        Some(slug) => (
            crate::orgs::role_in(&state.db, &caller.user_id, slug)
                .await?
                .0,
            slug.clone(),
        ),
        None => (caller.org_id.clone(), caller.org_slug.clone()),
    };
    let token = accounts::create_token(&state.db, &caller.user_id, &org_id, name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": name, "token": token, "organization": org_slug })),
    ))
}

async fn revoke(
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
