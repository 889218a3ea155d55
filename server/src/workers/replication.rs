//! Continuous replication: every few seconds, each sprite on this disk that
//! was written to since its last shipment, and whose last one is older than
//! the server's interval (`--replicate-every`, default 60 s), gets a hidden
//! checkpoint shipped to the object store ([`vmhost::Host::replicate`]).
//! A lost machine costs at most about that interval of work.
//!
//! The cold tier: a sprite asleep cold for longer than `--evict-after`
//! (default 7 days) whose state is fully shipped leaves the local disk
//! ([`vmhost::Host::evict`]); its next wake fetches it back.
//!
//! What the bucket no longer needs to keep leaves it: each round prunes
//! every sprite's old hidden checkpoints and deleted ones
//! ([`vmhost::Host::prune`], with `--replica-retention`) and empties the
//! places of destroyed sprites ([`vmhost::Host::forget_destroyed`]).
//!
//! The bucket away or refusing stops nothing: the sprite works on, its
//! checkpoints wait on the disk, each failure is kept in the sprite's
//! replica state (the API shows it, with the lag), and the next round tries
//! again.

use std::time::Duration;

use vmhost::replica::Location;
use vmhost::SpriteName;

use crate::AppState;

/// How often the replicator looks.
const TICK: Duration = Duration::from_secs(2);

/// Starts the replicator, when the host has an object store.
pub fn spawn_replicator(state: AppState) {
    if !state.host.replicates() {
        return;
    }
    crate::domain::events::relay_replication(state.clone());
    let every = state.settings.replicate_every;
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            round(&state, every, state.settings.evict_after, &mut backoff).await;
            tokio::time::sleep(TICK).await;
        }
    });
}

/// Sprites whose last attempt failed wait before the next, longer each
/// time (up to a minute), so a bucket that is away is not hammered and a
/// sprite that cannot ship does not hold up the others.
///
/// Keyed by sprite name, or [`FORGET`] for the destroyed sprites' objects.
#[derive(Default)]
struct Backoff(std::collections::HashMap<String, (u32, std::time::Instant)>);

/// The [`Backoff`] key of emptying destroyed sprites' places (no sprite
/// name has a space).
const FORGET: &str = "destroyed sprites";

impl Backoff {
    fn waiting(&self, key: &str) -> bool {
        self.0
            .get(key)
            .is_some_and(|(_, until)| std::time::Instant::now() < *until)
    }

    fn failed(&mut self, key: &str) {
        let fails = self.0.get(key).map_or(0, |(n, _)| *n) + 1;
        let wait = Duration::from_secs(2u64.saturating_pow(fails.min(6)).min(60));
        self.0
            .insert(key.to_string(), (fails, std::time::Instant::now() + wait));
    }

    fn done(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// One look at every sprite.
async fn round(state: &AppState, every: Duration, evict_after: Duration, backoff: &mut Backoff) {
    if !backoff.waiting(FORGET) {
        match state.host.forget_destroyed().await {
            Ok(n) => {
                backoff.done(FORGET);
                if n > 0 {
                    tracing::info!(
                        sprites = n,
                        "destroyed sprites deleted from the object store"
                    );
                }
            }
            Err(e) => {
                backoff.failed(FORGET);
                tracing::warn!(error = %e, "replication: cannot delete destroyed sprites from the object store");
            }
        }
    }
    let sprites = match state.host.list().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "replication: cannot list sprites");
            return;
        }
    };
    for info in sprites {
        let Ok(name) = SpriteName::parse(&info.name) else {
            continue;
        };
        if backoff.waiting(name.as_str()) {
            continue;
        }
        if state
            .host
            .replication(&name)
            .await
            .is_ok_and(|r| r.location == Location::Bucket)
        {
            // Nothing to ship; old checkpoints may still go.
            if let Err(e) = state.host.prune(&name).await {
                backoff.failed(name.as_str());
                tracing::warn!(sprite = %name, error = %e, "replication: cannot prune");
            }
            continue;
        }
        let asleep_for = info
            .asleep_since
            .map(|t| Duration::from_millis(vmhost::now_ms().saturating_sub(t)));
        if info.phase == vmhost::Phase::SleepingCold
            && !evict_after.is_zero()
            && asleep_for.is_some_and(|a| a >= evict_after)
        {
            match state.host.evict(&name).await {
                Ok(()) => {
                    backoff.done(name.as_str());
                    tracing::info!(sprite = %name, "evicted: only in the object store now")
                }
                Err(e) => {
                    backoff.failed(name.as_str());
                    tracing::warn!(sprite = %name, error = %e, "cannot evict")
                }
            }
            continue;
        }
        match state.host.replicate(&name, every).await {
            Ok(report) => {
                backoff.done(name.as_str());
                state.metrics.shipped(report.bytes);
                if let Some(took) = report.checkpoint_took {
                    state.metrics.checkpoint_took(took);
                }
                if !report.checkpoints.is_empty() || !report.pruned.is_empty() {
                    tracing::debug!(sprite = %name, checkpoints = ?report.checkpoints, bytes = report.bytes, pruned = ?report.pruned, "shipped");
                }
            }
            // Gone meanwhile.
            Err(vmhost::Error::NotFound(_)) => {}
            Err(e) => {
                backoff.failed(name.as_str());
                state.metrics.ship_failed();
                tracing::warn!(sprite = %name, error = %e, "replication: cannot ship");
            }
        }
    }
}
