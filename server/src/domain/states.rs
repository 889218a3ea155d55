//! The states of the caller's sprites, followed (`GET /v1/sprites` asked
//! as NDJSON, the JS SDK's `watchSprites`): a line for each listed sprite,
//! then one for each sprite that changes (created, woken, asleep, updated,
//! destroyed), and a heartbeat every [`HEARTBEAT`]. Every line carries the
//! organization's counts, kept from the list and the changes.

use std::collections::BTreeMap;
use std::time::Duration;

use sprites_wire::api::{OrgCounts, Sprite, SpriteStateLine};
use tokio::sync::mpsc;

use crate::db::{iso_ms, now_ms};
use crate::domain::caller::Caller;
use crate::domain::{events, sprites};
use crate::error::ApiError;
use crate::AppState;

/// How often a quiet stream says it is still there.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Changes that say something about a sprite's state.
const STATE_CHANGES: [&str; 4] = [
    "sprite.created",
    "sprite.status",
    "sprite.updated",
    "sprite.destroyed",
];

/// What a follower knows: each sprite's status, by name.
struct Known {
    org: String,
    status: BTreeMap<String, String>,
}

impl Known {
    fn counts(&self) -> OrgCounts {
        let count = |s: &str| self.status.values().filter(|v| *v == s).count();
        OrgCounts {
            name: self.org.clone(),
            running: count("running"),
            warm: count("warm"),
            cold: count("cold"),
        }
    }

    fn line(&self, sprite: Option<&Sprite>, name: &str, status: &str) -> SpriteStateLine {
        SpriteStateLine {
            kind: None,
            name: Some(name.to_string()),
            status: Some(status.to_string()),
            running_version: sprite.map(|s| s.version.clone()),
            last_running_at: sprite.and_then(|s| s.last_running_at.clone()),
            timestamp: iso_ms(now_ms().max(0) as u64),
            org: self.counts(),
        }
    }

    fn heartbeat(&self) -> SpriteStateLine {
        SpriteStateLine {
            kind: Some("heartbeat".into()),
            name: None,
            status: None,
            running_version: None,
            last_running_at: None,
            timestamp: iso_ms(now_ms().max(0) as u64),
            org: self.counts(),
        }
    }

    /// Every sprite the caller sees, now.
    async fn refresh(
        &mut self,
        state: &AppState,
        caller: &Caller,
    ) -> Result<Vec<Sprite>, ApiError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = sprites::list(state, caller, None, None, after.as_deref()).await?;
            after = page.next_continuation_token.clone();
            all.extend(page.sprites);
            if !page.has_more {
                break;
            }
        }
        self.status = all
            .iter()
            .map(|s| (s.name.clone(), s.status.clone()))
            .collect();
        Ok(all)
    }
}

/// The states of the caller's sprites whose names start with `prefix`
/// (at most `max` listed at first), followed until the receiver is dropped.
pub async fn follow(
    state: &AppState,
    caller: &Caller,
    prefix: Option<&str>,
    max: Option<usize>,
) -> Result<mpsc::Receiver<SpriteStateLine>, ApiError> {
    // The prefix and the list are checked before anything streams.
    let prefix = prefix.unwrap_or("");
    sprites::check_prefix(prefix)?;
    let mut changes = events::follow(state, caller.clone());
    let mut known = Known {
        org: caller.org_slug.clone(),
        status: BTreeMap::new(),
    };
    // Every sprite counts; those the prefix names (at most `max`, as a
    // page of the list) come first.
    let max = max.unwrap_or(sprites::MAX_PAGE).clamp(1, sprites::MAX_PAGE);
    let first: Vec<Sprite> = known
        .refresh(state, caller)
        .await?
        .into_iter()
        .filter(|s| s.name.starts_with(prefix))
        .take(max)
        .collect();
    let (tx, rx) = mpsc::channel(64);
    let (state, caller, prefix) = (state.clone(), caller.clone(), prefix.to_string());
    tokio::spawn(async move {
        for s in &first {
            if tx
                .send(known.line(Some(s), &s.name, &s.status))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        loop {
            let line = tokio::select! {
                change = changes.recv() => {
                    let Some(e) = change else { return };
                    if e.kind == "resync" {
                        if let Err(err) = known.refresh(&state, &caller).await {
                            tracing::warn!(error = %err, "a sprite state stream cannot list the sprites");
                        }
                        continue;
                    }
                    if !STATE_CHANGES.contains(&e.kind.as_str()) || e.sprite.is_empty() {
                        continue;
                    }
                    if e.kind == "sprite.destroyed" {
                        known.status.remove(&e.sprite);
                        if !e.sprite.starts_with(&prefix) {
                            continue;
                        }
                        known.line(None, &e.sprite, "destroyed")
                    } else {
                        let Ok(s) = sprites::get(&state, &caller, &e.sprite).await else {
                            continue;
                        };
                        known.status.insert(s.name.clone(), s.status.clone());
                        if !s.name.starts_with(&prefix) {
                            continue;
                        }
                        known.line(Some(&s), &s.name, &s.status)
                    }
                }
                _ = beat.tick() => known.heartbeat(),
                () = tx.closed() => return,
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
