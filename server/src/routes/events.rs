//! `/v1/events`: the live stream of the organization's sprite changes, as
//! server-sent events (one JSON [`SpriteEvent`] per `data:` line); and
//! `/v1/usage`, `/v1/sprites/{name}/usage`: what sprites have used.
//!
//! [`SpriteEvent`]: sprites_wire::api::SpriteEvent

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use sprites_wire::api::{SpriteUsage, UsageReport};
use tokio::sync::broadcast::error::RecvError;

use super::Routes;
use crate::accounts::Caller;
use crate::error::ApiError;
use crate::events::event;
use crate::{sprites, AppState};

pub fn routes() -> Routes {
    Routes::new()
        .get("/v1/events", stream)
        .get("/v1/usage", usage_all)
        .get("/v1/sprites/{name}/usage", usage)
}

/// Starts with a `resync` (fetch the list now: anything after it arrives
/// as an event), then every change in the caller's organization. A client
/// too slow to keep up gets another `resync` instead of what it missed.
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.events.subscribe();
    let first = Some(event("resync", "", None, None));
    let org = caller.org_id;
    let events = futures_util::stream::unfold((rx, first), move |(mut rx, first)| {
        let org = org.clone();
        async move {
            if let Some(e) = first {
                return Some((e, (rx, None)));
            }
            loop {
                match rx.recv().await {
                    Ok(e) if e.org_id.as_ref().is_none_or(|o| *o == org) => {
                        return Some((e.event.clone(), (rx, None)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        return Some((event("resync", "", None, None), (rx, None)))
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let events = futures_util::StreamExt::map(events, |e| {
        Ok(Event::default().data(serde_json::to_string(&e).expect("events serialize")))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SpriteUsage>, ApiError> {
    Ok(Json(sprites::usage(&state, &caller, &name).await?))
}

async fn usage_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UsageReport>, ApiError> {
    Ok(Json(sprites::usage_all(&state, &caller).await?))
}
