//! The live event stream of sprite changes, per organization.
//!
//! The host announces phase changes under host names (sleep, wake, and in
//! time the idle sleeper); [`relay`] turns each into an event of the
//! organization that owns the sprite. The server's own changes (created,
//! updated, destroyed, checkpoints) are published where they happen.

use std::sync::Arc;
use std::time::Duration;

use sprites_wire::api::{Replication, SpriteEvent};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::db::{iso_ms, now_ms, Db};
use crate::domain::access;
use crate::domain::accounts::caller_for_user;
use crate::domain::caller::Caller;
use crate::AppState;

/// Events kept for a slow subscriber before it is told to resync.
const BACKLOG: usize = 1024;

/// An event and the organization whose members may see it; `None` for
/// everyone (a resync after the relay itself lost events).
#[derive(Debug)]
pub struct OrgEvent {
    pub org_id: Option<String>,
    pub event: SpriteEvent,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<OrgEvent>>,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<OrgEvent>> {
        self.tx.subscribe()
    }

    /// Publishes `kind` for `sprite` of organization `org_id`.
    pub fn publish(
        &self,
        org_id: &str,
        kind: &str,
        sprite: &str,
        status: Option<&str>,
        checkpoint: Option<String>,
    ) {
        self.send(
            Some(org_id.to_string()),
            event(kind, sprite, status, checkpoint),
        );
    }

    /// Publishes that `by` wrote the file at `path` of `sprite`, so others
    /// with it open see it changed.
    pub fn file_written(&self, org_id: &str, sprite: &str, path: &str, by: &str) {
        let mut e = event("file.written", sprite, None, None);
        e.path = Some(path.to_string());
        e.by = Some(by.to_string());
        self.send(Some(org_id.to_string()), e);
    }

    /// Publishes how the copy of `sprite` in the object store stands now.
    pub fn replication(&self, org_id: &str, sprite: &str, now: Replication) {
        let mut e = event("sprite.replication", sprite, None, None);
        e.replication = Some(now);
        self.send(Some(org_id.to_string()), e);
    }

    fn send(&self, org_id: Option<String>, event: SpriteEvent) {
        // Nobody listening is fine.
        let _ = self.tx.send(Arc::new(OrgEvent { org_id, event }));
    }
}

/// How often a stream checks that its caller still belongs to the
/// organization; a removed member's stream ends within this time.
const MEMBERSHIP_CHECK: Duration = Duration::from_secs(30);

/// The changes the caller may see in their organization, as they happen:
/// first a `resync` (fetch the list now: anything after it arrives as an
/// event), then every change. A follower too slow to keep up gets another
/// `resync` instead of what it missed; a class's student hears only of the
/// sprites they may see; a caller removed from the organization hears
/// nothing more within [`MEMBERSHIP_CHECK`].
pub fn follow(state: &AppState, caller: Caller) -> mpsc::Receiver<SpriteEvent> {
    let mut rx = state.events.subscribe();
    let (tx, out) = mpsc::channel::<SpriteEvent>(64);
    let state = state.clone();
    tokio::spawn(async move {
        if tx.send(event("resync", "", None, None)).await.is_err() {
            return;
        }
        let mut check = tokio::time::interval(MEMBERSHIP_CHECK);
        check.tick().await; // the first tick is now, and the caller was just checked
                            // A class's student hears only of the sprites they may see; what
                            // they may not is remembered until the next membership check.
        let mut hidden = std::collections::HashSet::<String>::new();
        let mut shown = std::collections::HashSet::<String>::new();
        loop {
            let next = tokio::select! {
                received = rx.recv() => match received {
                    Ok(e) if e.org_id.as_ref().is_none_or(|o| *o == caller.org_id) => {
                        let e = e.event.clone();
                        if caller.student && !e.sprite.is_empty() && !shown.contains(&e.sprite) {
                            // A destroyed sprite is news only to those who saw it.
                            if hidden.contains(&e.sprite) || e.kind == "sprite.destroyed" {
                                continue;
                            }
                            match access::sees(&state, &caller, &e.sprite).await {
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
                    match caller_for_user(&state.db, &caller.user_id, &caller.org_id).await {
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
    out
}

pub fn event(
    kind: &str,
    sprite: &str,
    status: Option<&str>,
    checkpoint: Option<String>,
) -> SpriteEvent {
    SpriteEvent {
        kind: kind.into(),
        sprite: sprite.into(),
        status: status.map(Into::into),
        checkpoint,
        path: None,
        by: None,
        replication: None,
        at: iso_ms(now_ms().max(0) as u64),
    }
}

/// Forwards the host's phase changes as `sprite.status` events until the
/// host goes away. Destruction is announced by the server (the row is gone
/// by the time the relay would look it up).
pub fn relay(mut host_events: broadcast::Receiver<vmhost::HostEvent>, db: Db, events: Events) {
    tokio::spawn(async move {
        loop {
            let e = match host_events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "event relay fell behind; subscribers resync");
                    events.send(None, event("resync", "", None, None));
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if e.phase == vmhost::Phase::Destroyed {
                continue;
            }
            match owner(&db, &e.sprite).await {
                Ok(Some((org, name))) => {
                    let status = crate::domain::sprites::status(e.phase);
                    events.publish(&org, "sprite.status", &name, Some(status), None);
                }
                // Not (or no longer) a sprite of the API: nothing to tell.
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "event relay cannot look up a sprite"),
            }
        }
    });
}

/// Forwards the host's replica changes as `sprite.replication` events,
/// each with the sprite's replication as it stands when relayed.
pub fn relay_replication(state: crate::AppState) {
    let mut changes = state.host.replica_changes();
    tokio::spawn(async move {
        loop {
            let host = match changes.recv().await {
                Ok(host) => host,
                // Missed changes are superseded by the next ones.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let (Ok(Some((org, name))), Ok(now)) = (
                owner(&state.db, &host).await,
                crate::domain::sprites::replication(&state, &host).await,
            ) else {
                continue;
            };
            state.events.replication(&org, &name, now);
        }
    });
}

/// The organization and API name of host sprite `host`, if it is one.
async fn owner(
    db: &Db,
    host: &vmhost::SpriteName,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT org_id, name FROM sprites WHERE host_name = $1")
        .bind(host.as_str())
        .fetch_optional(db.pool())
        .await
}
