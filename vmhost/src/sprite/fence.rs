//! The host's lease: with a cluster, a host runs its sprites only while
//! the control plane says they are its own.
//!
//! Every heartbeat of an API server hands the host a hold ([`Host::hold`]):
//! the names PostgreSQL places on it. A hold lasts the lease (shorter than
//! the servers' host timeout), counted from when it was sent. When none
//! came within it, the lease has lapsed ([`Host::keep_lease`]): every
//! sprite of the host is fenced, the running ones frozen (stopped, when
//! they cannot be), and while the lease stays lapsed the host looks again
//! every second for a fenced sprite that runs. A fenced sprite neither
//! wakes, nor starts, nor thaws after a checkpoint, nor ships to the
//! object store, nor is destroyed (`Error::Fenced`): by the time the
//! servers count the host as lost and bring its sprites back elsewhere,
//! nothing of them runs here, and nothing here writes over or deletes
//! what the new host keeps.
//!
//! A hold that names a fenced sprite lets it go on (thawed, or started
//! by the caller); one the control plane places elsewhere stays fenced
//! until [`Host::forget`] drops it, keeping its objects, which are its new
//! host's. A fence is written in the sprite's folder (`fenced`), and the
//! last hold with the lease in the host's folder (`held-at.json`), so a
//! daemon that starts again keeps every fence and one that starts after
//! its lease lapsed fences everything and restarts nothing; `vmhost`'s own
//! commands on such a pool keep the fences written.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sprites_wire::SpriteName;

use super::{Desired, Host};
use crate::error::{Error, Result};
use crate::runtime::SandboxStatus;

/// The host's side of the lease.
#[derive(Default)]
pub(crate) struct Fence(Mutex<FenceState>);

#[derive(Default)]
struct FenceState {
    /// The lease (`None`: the sprites are this host's alone).
    lease: Option<Duration>,
    /// Milliseconds since the Unix epoch the last hold was sent at.
    held_at: u64,
    lapsed: bool,
    /// Sprites that may not run until a hold names them.
    fenced: HashSet<String>,
}

/// The last hold, as written in the host's folder.
#[derive(Serialize, Deserialize)]
struct LastHold {
    held_at: u64,
    lease_ms: u64,
}

/// What a hold did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Named sprites that were fenced, meant to run and are stopped: the
    /// caller wakes them.
    pub to_wake: Vec<SpriteName>,
    /// Sprites still fenced: the host has them, the hold did not name
    /// them (placed elsewhere, or unknown to the control plane).
    pub fenced: Vec<SpriteName>,
    /// The host's lease, in ms: the servers' host timeout must leave room
    /// for one and a half of it.
    pub lease_ms: u64,
}

impl Host {
    fn lease_file(&self) -> std::path::PathBuf {
        self.dir.join("held-at.json")
    }

    fn fence_mark(&self, name: &SpriteName) -> std::path::PathBuf {
        self.paths(name).dir.join("fenced")
    }

    /// At start: the fences written, and, when this host's lease lapsed
    /// while nothing ran, every sprite fenced.
    pub(crate) async fn fence_at_start(&self) -> Result<()> {
        let lease = self.cfg.lease;
        // Unreadable, it says no hold: every sprite is fenced, the safe side.
        let held_at = match crate::record::read::<LastHold>(&self.lease_file()) {
            Ok(last) => last.map_or(0, |l| l.held_at),
            Err(e) => {
                tracing::warn!(error = %e, "the last hold is not known: fencing every sprite");
                0
            }
        };
        let marked: Vec<String> = self
            .list()?
            .into_iter()
            .map(|s| s.name)
            .filter(|n| SpriteName::parse(n).is_ok_and(|n| self.fence_mark(&n).exists()))
            .collect();
        {
            let mut state = self.fence.0.lock().unwrap();
            state.lease = lease;
            state.held_at = held_at;
            state.fenced.extend(marked);
        }
        let Some(lease) = lease else {
            return Ok(());
        };
        if crate::now_ms().saturating_sub(held_at) > lease.as_millis() as u64 {
            // Nothing restarts: the control plane may have placed these
            // sprites elsewhere meanwhile.
            self.fence_all().await?;
        }
        Ok(())
    }

    /// Refuses `name` to run, ship or wake while it is fenced.
    pub(crate) fn unfenced(&self, name: &SpriteName) -> Result<()> {
        if self.fence.0.lock().unwrap().fenced.contains(name.as_str()) {
            return Err(Error::Fenced(name.to_string()));
        }
        Ok(())
    }

    /// Fences every sprite of the host when no hold came within the
    /// lease; while it stays lapsed, freezes any fenced sprite found
    /// running. How many it froze.
    pub async fn keep_lease(&self) -> Result<usize> {
        let lapsed = {
            let state = self.fence.0.lock().unwrap();
            let Some(lease) = state.lease else {
                return Ok(0);
            };
            if state.lapsed {
                true
            } else if crate::now_ms().saturating_sub(state.held_at) <= lease.as_millis() as u64 {
                return Ok(0);
            } else {
                tracing::warn!(
                    "no API server has held this host's sprites for {lease:?}: fencing them all"
                );
                false
            }
        };
        if lapsed {
            return self.sweep().await;
        }
        self.fence_all().await
    }

    /// Keeps the lease of `host` (see [`Host::keep_lease`]) once a second,
    /// for as long as the host lives.
    pub fn spawn_lease_keeper(host: &std::sync::Arc<Host>) -> tokio::task::JoinHandle<()> {
        let host = std::sync::Arc::downgrade(host);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(host) = host.upgrade() else {
                    return;
                };
                if let Err(e) = host.keep_lease().await {
                    tracing::error!(error = %e, "cannot fence the sprites of a lapsed lease");
                }
            }
        })
    }

    /// Fences every sprite at once (written down), then freezes the
    /// running ones; how many it froze.
    pub(crate) async fn fence_all(&self) -> Result<usize> {
        let names: Vec<SpriteName> = self
            .list()?
            .into_iter()
            .filter_map(|s| SpriteName::parse(&s.name).ok())
            .collect();
        {
            let mut state = self.fence.0.lock().unwrap();
            state.lapsed = true;
            state.fenced.extend(names.iter().map(|n| n.to_string()));
        }
        for name in &names {
            let mark = self.fence_mark(name);
            if let Err(e) = std::fs::write(&mark, b"") {
                tracing::error!(sprite = %name, error = %e, "a fence is not written down");
            }
        }
        self.sweep().await
    }

    /// Freezes (or, failing that, stops) every fenced sprite that runs;
    /// how many. Each under its lock, all at once: a sandbox frozen while
    /// it starts would hang its start, and one sprite's long fetch must not
    /// hold up the others.
    async fn sweep(&self) -> Result<usize> {
        let fenced: Vec<SpriteName> = {
            let state = self.fence.0.lock().unwrap();
            state
                .fenced
                .iter()
                .filter_map(|n| SpriteName::parse(n).ok())
                .collect()
        };
        let froze = futures_util::future::join_all(fenced.iter().map(|n| self.freeze_fenced(n)))
            .await
            .into_iter()
            .collect::<Result<Vec<bool>>>()?;
        Ok(froze.into_iter().filter(|f| *f).count())
    }

    /// Freezes fenced sprite `name` if it runs (stops it if it cannot be
    /// frozen); whether it froze it.
    async fn freeze_fenced(&self, name: &SpriteName) -> Result<bool> {
        let _guard = self.lock(name).await;
        let id = self.sandbox_id(name);
        if self.runtime.status(&id)? != SandboxStatus::Running {
            return Ok(false);
        }
        if let Err(e) = self.runtime.freeze(&id) {
            tracing::error!(sprite = %name, error = %e, "a fenced sprite cannot be frozen: stopping it");
            self.runtime.stop(&id, Duration::ZERO).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// The control plane places `names` on this host, for another lease:
    /// those fenced go on (thawed, if the lapse froze them). `sent_at`
    /// (ms since the Unix epoch, the sender's clock): a hold that took more
    /// than half a lease to come is refused, so one delayed past the
    /// servers' host timeout cannot renew a lease they count as lapsed
    /// (clocks agreeing within half a lease).
    pub async fn hold(&self, names: &[SpriteName], sent_at: u64) -> Result<Held> {
        let now = crate::now_ms();
        // Counted from when it was sent (from now, if the sender's clock
        // is ahead).
        let held_at = sent_at.min(now);
        let lease = self.fence.0.lock().unwrap().lease;
        if let Some(lease) = lease {
            let late = now.saturating_sub(sent_at);
            if late > lease.as_millis() as u64 / 2 {
                return Err(Error::Invalid(format!(
                    "a hold sent {late} ms ago comes too late for a lease of {lease:?}"
                )));
            }
            let last = LastHold {
                held_at,
                lease_ms: lease.as_millis() as u64,
            };
            crate::record::write(&self.lease_file(), &last)?;
        }
        let released: Vec<&SpriteName> = {
            let mut state = self.fence.0.lock().unwrap();
            state.held_at = held_at;
            state.lapsed = false;
            names
                .iter()
                .filter(|n| state.fenced.remove(n.as_str()))
                .collect()
        };
        let mut held = Held {
            lease_ms: lease.map_or(0, |l| l.as_millis() as u64),
            ..Held::default()
        };
        for name in released {
            let _guard = self.lock(name).await;
            let Ok((_, rec)) = self.load(name) else {
                continue;
            };
            let _ = std::fs::remove_file(self.fence_mark(name));
            if rec.desired != Desired::Running {
                continue; // asleep as it was meant to be
            }
            // Frozen while meant to run: the fence froze it.
            let id = self.sandbox_id(name);
            match self.runtime.status(&id)? {
                SandboxStatus::Frozen => self.runtime.thaw(&id)?,
                SandboxStatus::Stopped | SandboxStatus::Absent => held.to_wake.push(name.clone()),
                SandboxStatus::Running => {}
            }
        }
        let state = self.fence.0.lock().unwrap();
        held.fenced = state
            .fenced
            .iter()
            .filter_map(|n| SpriteName::parse(n).ok())
            .collect();
        held.fenced.sort();
        Ok(held)
    }

    /// Drops this host's copy of fenced sprite `name`, which lives on
    /// another host now: its sandbox stops, its folder goes, its objects in
    /// the bucket stay (they are the other host's).
    pub async fn forget(&self, name: &SpriteName) -> Result<()> {
        let _one = self.replica_lock(name).await;
        let _guard = self.lock(name).await;
        self.load(name)?;
        if self.unfenced(name).is_ok() {
            return Err(Error::Invalid(format!(
                "sprite {name} is held by this host: only a fenced sprite is forgotten"
            )));
        }
        self.stop_sandbox(name, Duration::ZERO).await?;
        let gone = self.unpublish(name, "staging")?;
        crate::btrfs::remove_tree(&gone).map_err(|e| Error::path("cannot delete", &gone, e))?;
        self.remove_outside(name);
        self.fence.0.lock().unwrap().fenced.remove(name.as_str());
        tracing::info!(sprite = %name, "forgot a sprite that lives on another host now");
        Ok(())
    }
}
