//! Continuous replication: every few seconds, each sprite on this disk that
//! was written to since its last shipment, and whose last one is older than
//! the server's interval (`--replicate-every`, default 60 s), gets a hidden
//! checkpoint shipped to the object store ([`vmhost::Host::replicate`]).
//! A lost machine costs at most about that interval of work.
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
    if state.host.config().bucket.is_none() {
        return;
    }
    let every = state.settings.replicate_every;
    tokio::spawn(async move {
        loop {
            round(&state, every).await;
            tokio::time::sleep(TICK).await;
        }
    });
}

/// One look at every sprite.
async fn round(state: &AppState, every: Duration) {
    let sprites = match state.host.list() {
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
        if state
            .host
            .replication(&name)
            .is_ok_and(|r| r.location == Location::Bucket)
        {
            continue;
        }
        match state.host.replicate(&name, every).await {
            Ok(report) if !report.checkpoints.is_empty() => tracing::debug!(
                sprite = %name,
                checkpoints = ?report.checkpoints,
                bytes = report.bytes,
                "shipped"
            ),
            Ok(_) => {}
            // Gone meanwhile.
            Err(vmhost::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(sprite = %name, error = %e, "replication: cannot ship"),
        }
    }
}
