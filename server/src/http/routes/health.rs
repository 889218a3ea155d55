//! Liveness and a summary of the host, for operators and monitoring.

use axum::extract::State;
use axum::Json;
use sprites_wire::api::{Health, HostSummary};

use super::answer::Answer;
use crate::AppState;

pub(super) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

pub(super) async fn host(State(state): State<AppState>) -> Answer<HostSummary> {
    Ok(Json(crate::domain::sprites::host_summary(&state).await?))
}
