//! Liveness and a summary of the host, for operators and monitoring.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/v1/host", get(host))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn host(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let sprites = state.host.list()?;
    let running = sprites
        .iter()
        .filter(|s| s.phase == vmhost::Phase::Running)
        .count();
    Ok(Json(json!({
        "runtime": state.host.runtime().name(),
        "sprites": sprites.len(),
        "running": running,
        "pool_used_bytes": state.host.pool().used_bytes()?,
    })))
}
