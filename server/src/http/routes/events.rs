//! `/v1/events`: the live stream of the organization's sprite changes, as
//! server-sent events (one JSON [`SpriteEvent`] per `data:` line); and
//! `/v1/usage`, `/v1/sprites/{name}/usage`: what sprites have used.
//!
//! [`SpriteEvent`]: sprites_wire::api::SpriteEvent

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::Path;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use sprites_wire::api::{SpriteUsage, UsageReport};

use super::answer::{Answer, Cx};
use crate::domain::{events, sprites};

/// Starts with a `resync` (fetch the list now: anything after it arrives
/// as an event), then every change in the caller's organization (see
/// [`events::follow`]).
pub(super) async fn stream(cx: Cx) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let out = events::follow(&cx.state, cx.caller);
    let events = futures_util::stream::unfold(out, |mut out| async move {
        let e = out.recv().await?;
        let data = serde_json::to_string(&e).expect("events serialize");
        Some((Ok(Event::default().data(data)), out))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

pub(super) async fn usage(cx: Cx, Path(name): Path<String>) -> Answer<SpriteUsage> {
    Ok(Json(sprites::usage(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn usage_all(cx: Cx) -> Answer<UsageReport> {
    Ok(Json(sprites::usage_all(&cx.state, &cx.caller).await?))
}
