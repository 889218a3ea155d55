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
use sprites_wire::api::{SpriteEvent, SpriteUsage, UsageReport};
use tokio::sync::broadcast::error::RecvError;

use super::answer::{Answer, Cx};
use crate::domain::accounts::caller_for_user;
use crate::domain::events::event;
use crate::domain::{access, sprites};

/// How often a stream checks that its caller still belongs to the
/// organization; a removed member's stream ends within this time.
const MEMBERSHIP_CHECK: Duration = Duration::from_secs(30);

/// Starts with a `resync` (fetch the list now: anything after it arrives
/// as an event), then every change in the caller's organization. A client
/// too slow to keep up gets another `resync` instead of what it missed.
pub(super) async fn stream(cx: Cx) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = cx.state.events.subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<SpriteEvent>(64);
    tokio::spawn(async move {
        if tx.send(event("resync", "", None, None)).await.is_err() {
            return;
        }
        let mut check = tokio::time::interval(MEMBERSHIP_CHECK);
        check.tick().await; // the first tick is now, and the cx.caller was just checked
                            // A class's student hears only of the sprites they may see; what
                            // they may not is remembered until the next membership check.
        let mut hidden = std::collections::HashSet::<String>::new();
        let mut shown = std::collections::HashSet::<String>::new();
        loop {
            let next = tokio::select! {
                received = rx.recv() => match received {
                    Ok(e) if e.org_id.as_ref().is_none_or(|o| *o == cx.caller.org_id) => {
                        let e = e.event.clone();
                        if cx.caller.student && !e.sprite.is_empty() && !shown.contains(&e.sprite) {
                            // A destroyed sprite is news only to those who saw it.
                            if hidden.contains(&e.sprite) || e.kind == "sprite.destroyed" {
                                continue;
                            }
                            match access::sees(&cx.state, &cx.caller, &e.sprite).await {
                                Ok(true) => {
                                    shown.insert(e.sprite.clone());
                                }
                                Ok(false) => {
                                    hidden.insert(e.sprite.clone());
                                    continue;
                                }
                                Err(err) => {
                                    tracing::warn!(error = %err, "cannot check who sees an event");
                                    continue;
                                }
                            }
                        }
                        e
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => event("resync", "", None, None),
                    Err(RecvError::Closed) => return,
                },
                _ = check.tick() => {
                    hidden.clear();
                    match caller_for_user(&cx.state.db, &cx.caller.user_id, &cx.caller.org_id).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return, // no longer a member
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot check an event stream's membership");
                            continue;
                        }
                    }
                }
                () = tx.closed() => return, // the client left
            };
            if tx.send(next).await.is_err() {
                return;
            }
        }
    });
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
