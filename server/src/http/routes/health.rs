//! Liveness and a summary of the host, for operators and monitoring.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::Routes;
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/healthz", health).get("/v1/host", host)
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
        "runtime": state.host.runtime_name(),
        "sprites": sprites.len(),
        "running": running,
        "pool_used_bytes": state.host.pool_used_bytes()?,
    })))
}
