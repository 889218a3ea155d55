//! Liveness and a summary of the host, for operators and monitoring.

use axum::extract::State;
use axum::Json;
use sprites_wire::api::{Health, HostSummary};

use crate::error::ApiError;
use crate::AppState;

pub(super) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

pub(super) async fn host(State(state): State<AppState>) -> Result<Json<HostSummary>, ApiError> {
    let sprites = state.host.list()?;
    let running = sprites
        .iter()
        .filter(|s| s.phase == vmhost::Phase::Running)
        .count();
    Ok(Json(HostSummary {
        runtime: state.host.runtime_name().into(),
        sprites: sprites.len(),
        running,
        pool_used_bytes: state.host.pool_used_bytes()?,
    }))
}
