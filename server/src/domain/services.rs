//! A sprite's services, in the shapes of the Sprites SDKs: what runs, and
//! its changes and logs as a stream of lines ([`Events`]) that ends with
//! `complete`, or with an `error` saying why it stopped.

use std::time::Duration;

use sprites_wire::services::{Service, ServiceLine, ServiceRequest, ServiceState};
use vmhost::{ServiceEvent, ServiceInfo, ServiceOp, SpriteName};

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::workers::idle::Busy;
use crate::AppState;

/// The longest a change's events are followed.
const MAX_FOLLOW: Duration = Duration::from_secs(300);

/// How long to follow a service's events: a duration as the SDKs write
/// one (`5s`, `500ms`, `2m`), at most [`MAX_FOLLOW`]; none is zero.
pub fn follow_for(text: Option<&str>, what: &str) -> Result<Duration, ApiError> {
    match text {
        None => Ok(Duration::ZERO),
        Some(t) => sprites_wire::parse_duration(t)
            .map(|d| d.min(MAX_FOLLOW))
            .ok_or_else(|| ApiError::Invalid(format!("{what}: like 5s, 500ms or 2m"))),
    }
}

fn view(s: &ServiceInfo) -> Service {
    let iso = |ms: Option<u64>| ms.map(crate::db::iso_ms);
    Service {
        name: s.name.clone(),
        spec: s.spec.clone(),
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
        log_files: None,
    }
}

/// A service's events as they come, while the sprite is kept awake; until
/// they end, or until a deadline.
pub struct Events {
    /// The service the events are about.
    service: String,
    events: vmhost::ServiceEvents,
    _busy: Busy,
    until: Option<tokio::time::Instant>,
}

impl Events {
    /// Hands each line to `say`, then `complete` (or the `error` that
    /// ended it).
    pub async fn run(mut self, say: impl Fn(ServiceLine)) {
        loop {
            let next = match self.until {
                Some(deadline) => match tokio::time::timeout_at(deadline, self.events.next()).await
                {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => self.events.next().await,
            };
            match next {
                Ok(Some(e)) => say(line(e)),
                Ok(None) => break,
                Err(e) => {
                    say(ServiceLine::failed(ApiError::from(e).public_message()));
                    return;
                }
            }
        }
        let now = crate::db::now_ms() as u64;
        say(ServiceLine::complete(now, &self.service));
    }
}

pub async fn list(state: &AppState, caller: &Caller, name: &str) -> Result<Vec<Service>, ApiError> {
    let host = access::running(state, caller, name).await?;
    Ok(state.host.services(&host).await?.iter().map(view).collect())
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    name: &str,
    service: &str,
) -> Result<Service, ApiError> {
    let host = access::running(state, caller, name).await?;
    let all = state.host.services(&host).await?;
    let found = all
        .iter()
        .find(|s| s.name == service)
        .ok_or_else(|| ApiError::NotFound(format!("service {service}")))?;
    Ok(view(found))
}

/// What a change does to a service.
pub enum Change {
    Put(ServiceRequest),
    Start,
    Restart,
    /// SIGTERM, then SIGKILL after the timeout.
    Stop(Duration),
}

/// Applies `change` to `service` of the caller's sprite; its events follow
/// for `follow` (a stop's own, until it has stopped). The change itself is
/// made now, so its errors come before any stream.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    name: &str,
    service: &str,
    change: Change,
    follow: Duration,
) -> Result<Events, ApiError> {
    let (op, follow) = match change {
        Change::Put(spec) => (ServiceOp::Put { spec }, follow),
        Change::Start => (ServiceOp::Start, follow),
        Change::Restart => (ServiceOp::Restart, follow),
        // The stop's own events (stopping, exit, stopped) come before the
        // answer; a short follow delivers them.
        Change::Stop(timeout) => {
            let timeout_ms = timeout.as_millis() as u64;
            (ServiceOp::Stop { timeout_ms }, Duration::from_millis(50))
        }
    };
    let host = access::running(state, caller, name).await?;
    let busy = state.activity.busy(&host).await;
    let follow_ms = follow.as_millis() as u64;
    let events = state
        .host
        .service(&host, service, op, follow_ms.max(1))
        .await?;
    state.upstreams.forget(&host);
    Ok(Events {
        service: service.to_string(),
        events,
        _busy: busy,
        until: None,
    })
}

/// The last `lines` lines of the service's output, then (for `follow`, a
/// duration) the new ones until then.
pub async fn logs(
    state: &AppState,
    caller: &Caller,
    name: &str,
    service: &str,
    lines: usize,
    follow: Option<&str>,
) -> Result<Events, ApiError> {
    let host = access::running(state, caller, name).await?;
    let follow = follow_for(follow, "duration")?;
    let busy = state.activity.busy(&host).await;
    let events = state
        .host
        .service_logs(&host, service, lines, !follow.is_zero())
        .await?;
    let until = (!follow.is_zero()).then(|| tokio::time::Instant::now() + follow);
    Ok(Events {
        service: service.to_string(),
        events,
        _busy: busy,
        until,
    })
}

/// Runs `op` on `service` and waits for it to be done.
async fn settle(
    host: &SpriteName,
    state: &AppState,
    service: &str,
    op: ServiceOp,
) -> Result<(), ApiError> {
    let mut events = state.host.service(host, service, op, 0).await?;
    while let Ok(Some(_)) = events.next().await {}
    Ok(())
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    name: &str,
    service: &str,
) -> Result<(), ApiError> {
    let host = access::running(state, caller, name).await?;
    settle(&host, state, service, ServiceOp::Delete).await?;
    state.upstreams.forget(&host);
    Ok(())
}

/// Sends `signal` (a number) to the service's process.
pub async fn signal(
    state: &AppState,
    caller: &Caller,
    name: &str,
    service: &str,
    signal: i32,
) -> Result<(), ApiError> {
    let host = access::running(state, caller, name).await?;
    settle(&host, state, service, ServiceOp::Signal { signal }).await
}
