//! `/v1/sprites/{name}/services`: the sprite's services, in the shapes of
//! the Sprites SDKs. Changes answer with NDJSON: the service's events for
//! the `duration` asked for (a stop, until it has stopped), then
//! `{"type": "complete"}`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use sprites_wire::services::{Service, ServiceLine, ServiceRequest, ServiceSignal, ServiceState};
use vmhost::{ServiceEvent, ServiceInfo, ServiceOp, ServiceSpec};

use super::checkpoints::ndjson;
use super::json::{parse_duration, Body, Query};
use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The longest a change's events are followed.
const MAX_FOLLOW: Duration = Duration::from_secs(300);

fn view(s: &ServiceInfo) -> Service {
    let iso = |ms: Option<u64>| ms.map(crate::db::iso_ms);
    Service {
        name: s.name.clone(),
        cmd: s.spec.cmd.clone(),
        args: s.spec.args.clone(),
        env: s.spec.env.clone(),
        dir: s.spec.dir.clone(),
        needs: s.spec.needs.clone(),
        http_port: s.spec.http_port,
        state: ServiceState {
            name: s.name.clone(),
            status: s.state.status.clone(),
            pid: s.state.pid,
            started_at: iso(s.state.started_at),
            error: s.state.error.clone(),
            restart_count: s.state.restart_count,
            next_restart_at: iso(s.state.next_restart_at),
        },
    }
}

fn line(e: ServiceEvent) -> ServiceLine {
    ServiceLine {
        kind: e.kind,
        data: e.data,
        exit_code: e.exit_code,
        timestamp: Some(e.timestamp),
        error: None,
    }
}

fn failed(e: vmhost::Error) -> ServiceLine {
    ServiceLine::failed(ApiError::from(e).public_message())
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<Service>>, ApiError> {
    let host = access::running(&state, &caller, &name).await?;
    Ok(Json(
        state.host.services(&host).await?.iter().map(view).collect(),
    ))
}

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
) -> Result<Json<Service>, ApiError> {
    let host = access::running(&state, &caller, &name).await?;
    let all = state.host.services(&host).await?;
    let found = all
        .iter()
        .find(|s| s.name == service)
        .ok_or_else(|| ApiError::NotFound(format!("service {service}")))?;
    Ok(Json(view(found)))
}

#[derive(Deserialize, Default)]
pub(super) struct Follow {
    duration: Option<String>,
    timeout: Option<String>,
    lines: Option<usize>,
}

fn follow_for(text: Option<&str>, what: &str) -> Result<Duration, ApiError> {
    match text {
        None => Ok(Duration::ZERO),
        Some(t) => parse_duration(t)
            .map(|d| d.min(MAX_FOLLOW))
            .ok_or_else(|| ApiError::Invalid(format!("{what}: like 5s, 500ms or 2m"))),
    }
}

/// Applies `change` and streams the service's events for `follow`.
async fn change(
    state: AppState,
    caller: &Caller,
    name: &str,
    service: &str,
    change: ServiceOp,
    follow: Duration,
) -> Result<Response, ApiError> {
    let host = access::running(&state, caller, name).await?;
    let busy = state.activity.busy(&host).await;
    // The change itself is made before answering, so its errors are
    // HTTP statuses; its events follow as the stream.
    let follow_ms = follow.as_millis() as u64;
    let events = state
        .host
        .service(&host, service, change, follow_ms.max(1))
        .await?;
    state.upstreams.forget(&host);
    Ok(stream(events, busy))
}

fn stream(mut events: vmhost::ServiceEvents, busy: crate::workers::idle::Busy) -> Response {
    ndjson(move |tx| async move {
        let _busy = busy;
        loop {
            match events.next().await {
                Ok(Some(e)) => {
                    let _ = tx.send(line(e));
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(failed(e));
                    return;
                }
            }
        }
        let _ = tx.send(ServiceLine::complete(crate::db::now_ms() as u64));
    })
}

pub(super) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
    Query(q): Query<Follow>,
    Body(req): Body<ServiceRequest>,
) -> Result<Response, ApiError> {
    let spec = ServiceSpec {
        cmd: req.cmd,
        args: req.args,
        env: req.env,
        dir: req.dir,
        needs: req.needs,
        http_port: req.http_port,
    };
    let follow = follow_for(q.duration.as_deref(), "duration")?;
    change(
        state,
        &caller,
        &name,
        &service,
        ServiceOp::Put { spec },
        follow,
    )
    .await
}

pub(super) async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    let follow = follow_for(q.duration.as_deref(), "duration")?;
    change(state, &caller, &name, &service, ServiceOp::Start, follow).await
}

pub(super) async fn restart(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    let follow = follow_for(q.duration.as_deref(), "duration")?;
    change(state, &caller, &name, &service, ServiceOp::Restart, follow).await
}

pub(super) async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    let timeout = match q.timeout.as_deref() {
        None => Duration::from_secs(10),
        Some(_) => follow_for(q.timeout.as_deref(), "timeout")?,
    };
    let stop = ServiceOp::Stop {
        timeout_ms: timeout.as_millis() as u64,
    };
    // The stop's own events (stopping, exit, stopped) come before the
    // answer; a short follow delivers them.
    change(
        state,
        &caller,
        &name,
        &service,
        stop,
        Duration::from_millis(50),
    )
    .await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let host = access::running(&state, &caller, &name).await?;
    let mut events = state
        .host
        .service(&host, &service, ServiceOp::Delete, 0)
        .await?;
    while let Ok(Some(_)) = events.next().await {}
    state.upstreams.forget(&host);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, service)): Path<(String, String)>,
    Query(q): Query<Follow>,
) -> Result<Response, ApiError> {
    let host = access::running(&state, &caller, &name).await?;
    let follow = follow_for(q.duration.as_deref(), "duration")?;
    let lines = q.lines.unwrap_or(100).min(2000);
    let busy = state.activity.busy(&host).await;
    let mut events = state
        .host
        .service_logs(&host, &service, lines, !follow.is_zero())
        .await?;
    if follow.is_zero() {
        return Ok(stream(events, busy));
    }
    // Follow for the duration: the stream is cut then.
    Ok(ndjson(move |tx| async move {
        let _busy = busy;
        let deadline = tokio::time::Instant::now() + follow;
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Ok(Some(e))) => {
                    let _ = tx.send(line(e));
                }
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(e)) => {
                    let _ = tx.send(failed(e));
                    return;
                }
            }
        }
        let _ = tx.send(ServiceLine::complete(crate::db::now_ms() as u64));
    }))
}

pub(super) async fn signal(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<ServiceSignal>,
) -> Result<StatusCode, ApiError> {
    let signal = super::exec::signal_number(Some(&req.signal))?;
    let host = access::running(&state, &caller, &name).await?;
    let mut events = state
        .host
        .service(&host, &req.name, ServiceOp::Signal { signal }, 0)
        .await?;
    while let Ok(Some(_)) = events.next().await {}
    Ok(StatusCode::NO_CONTENT)
}
