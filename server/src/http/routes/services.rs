//! `/v1/sprites/{name}/services` (see `domain::services`). Changes answer
//! with NDJSON: the service's events for the `duration` asked for (a stop,
//! until it has stopped), then `{"type": "complete"}`.

use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use sprites_wire::services::{Service, ServiceRequest, ServiceSignal};

use super::answer::{Answer, Cx, Done};
use super::checkpoints::ndjson;
use super::json::{Body, Query};
use crate::domain::caller::Caller;
use crate::domain::services::{self, Change, Events};
use crate::domain::sessions;
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize, Default)]
pub(super) struct Follow {
    duration: Option<String>,
    timeout: Option<String>,
    lines: Option<usize>,
}

impl Follow {
    fn duration(&self) -> Result<Duration, ApiError> {
        services::follow_for(self.duration.as_deref(), "duration")
    }
}

/// A service's events as NDJSON lines.
fn stream(events: Events) -> Response {
    ndjson(move |tx| async move {
        events
            .run(move |line| {
                let _ = tx.send(line);
            })
            .await
    })
}

pub(super) async fn list(cx: Cx, Path(name): Path<String>) -> Answer<Vec<Service>> {
    Ok(Json(services::list(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn show(cx: Cx, Path((name, service)): Path<(String, String)>) -> Answer<Service> {
    Ok(Json(
        services::get(&cx.state, &cx.caller, &name, &service).await?,
    ))
}

/// Applies `change` and streams the service's events for `follow`.
async fn change(
    state: AppState,
    caller: Caller,
    (name, service): (String, String),
    change: Change,
    follow: Duration,
) -> Result<Response, ApiError> {
    let events = services::change(&state, &caller, &name, &service, change, follow).await?;
    Ok(stream(events))
}

pub(super) async fn put(
    cx: Cx,
    Path(at): Path<(String, String)>,
    Query(q): Query<Follow>,
    Body(req): Body<ServiceRequest>,
) -> Result<Response, ApiError> {
    change(cx.state, cx.caller, at, Change::Put(req), q.duration()?).await
}

pub(super) async fn start(
    cx: Cx,
    Path(at): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    change(cx.state, cx.caller, at, Change::Start, q.duration()?).await
}

pub(super) async fn restart(
    cx: Cx,
    Path(at): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    change(cx.state, cx.caller, at, Change::Restart, q.duration()?).await
}

pub(super) async fn stop(
    cx: Cx,
    Path(at): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    let timeout = match q.timeout.as_deref() {
        None => Duration::from_secs(10),
        Some(t) => services::follow_for(Some(t), "timeout")?,
    };
    change(
        cx.state,
        cx.caller,
        at,
        Change::Stop(timeout),
        Duration::ZERO,
    )
    .await
}

pub(super) async fn delete(cx: Cx, Path((name, service)): Path<(String, String)>) -> Done {
    services::delete(&cx.state, &cx.caller, &name, &service).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn logs(
    cx: Cx,
    Path((name, service)): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    let lines = q.lines.unwrap_or(100).min(2000);
    let follow = q.duration.as_deref();
    let events = services::logs(&cx.state, &cx.caller, &name, &service, lines, follow).await?;
    Ok(stream(events))
}

pub(super) async fn signal(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<ServiceSignal>,
) -> Done {
    let signal = sessions::signal_number(Some(&req.signal))?;
    services::signal(&cx.state, &cx.caller, &name, &req.name, signal).await?;
    Ok(StatusCode::NO_CONTENT)
}
