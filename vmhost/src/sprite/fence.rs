//! The host's lease: with a cluster, a host runs its sprites only while
//! the control plane says they are its own.
//!
//! Every heartbeat of an API server hands the host a hold ([`Host::hold`]):
//! the names PostgreSQL places on it. A hold lasts the lease (shorter than
//! the servers' host timeout). When none came within it, the lease has
//! lapsed ([`Host::keep_lease`]): every sprite of the host is fenced,
//! the running ones frozen. A fenced sprite neither wakes, nor starts, nor
//! ships to the object store (`Error::Fenced`), so by the time the
//! servers count the host as lost and bring its sprites back elsewhere,
//! nothing of them runs here, and nothing here writes over what the new
//! host ships.
//!
//! A hold that names a fenced sprite lets it go on (thawed, or started
//! by the caller); one the control plane places elsewhere stays fenced
//! until [`Host::forget`] drops it, keeping its objects, which are its new
//! host's. The lease's last hold is written in the host's folder, so a
//! daemon that starts long after the last one held anything starts
//! fenced, and restarts none of its sprites.

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
    /// Milliseconds since the Unix epoch of the last hold.
    held_at: u64,
    lapsed: bool,
    /// Sprites that may not run until a hold names them.
    fenced: HashSet<String>,
    /// Of those, the ones the lapse froze.
    frozen: HashSet<String>,
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
}

impl Host {
    fn lease_file(&self) -> std::path::PathBuf {
        self.dir.join("held-at.json")
    }

    /// At start: whether the lease had lapsed while no daemon ran (then
    /// every sprite starts fenced).
    pub(crate) fn lapsed_at_start(&self) -> bool {
        let Some(lease) = self.cfg.lease else {
            return false;
        };
        let held_at = crate::record::read::<u64>(&self.lease_file())
            .ok()
            .flatten()
            .unwrap_or(0);
        let mut state = self.fence.0.lock().unwrap();
        state.held_at = held_at;
        crate::now_ms().saturating_sub(held_at) > lease.as_millis() as u64
    }

    /// Refuses `name` to run, ship or wake while it is fenced.
    pub(crate) fn unfenced(&self, name: &SpriteName) -> Result<()> {
        if self.fence.0.lock().unwrap().fenced.contains(name.as_str()) {
            return Err(Error::Fenced(name.to_string()));
        }
        Ok(())
    }

    /// Fences every sprite of the host, freezing the running ones, when
    /// no hold came within the lease; how many it froze.
    pub async fn keep_lease(&self) -> Result<usize> {
        let Some(lease) = self.cfg.lease else {
            return Ok(0);
        };
        {
            let state = self.fence.0.lock().unwrap();
            let since = crate::now_ms().saturating_sub(state.held_at);
            if state.lapsed || since <= lease.as_millis() as u64 {
                return Ok(0);
            }
        }
        tracing::warn!(
            "no API server has held this host's sprites for {lease:?}: fencing them all"
        );
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

    /// Fences every sprite, freezing the running ones.
    pub(crate) async fn fence_all(&self) -> Result<usize> {
        self.fence.0.lock().unwrap().lapsed = true;
        let mut froze = 0;
        for info in self.list()? {
            let Ok(name) = SpriteName::parse(&info.name) else {
                continue;
            };
            // Under its lock: a checkpoint's own freeze and thaw is over.
            let _guard = self.lock(&name).await;
            let id = self.sandbox_id(&name);
            let mut state = self.fence.0.lock().unwrap();
            state.fenced.insert(info.name.clone());
            if self.runtime.status(&id)? == SandboxStatus::Running {
                self.runtime.freeze(&id)?;
                state.frozen.insert(info.name);
                froze += 1;
            }
        }
        Ok(froze)
    }

    /// The control plane places `names` on this host, for another lease:
    /// those fenced go on (thawed, if the lapse froze them).
    pub async fn hold(&self, names: &[SpriteName]) -> Result<Held> {
        let now = crate::now_ms();
        if self.cfg.lease.is_some() {
            crate::record::write(&self.lease_file(), &now)?;
        }
        let (released, frozen) = {
            let mut state = self.fence.0.lock().unwrap();
            state.held_at = now;
            state.lapsed = false;
            let mut released = Vec::new();
            let mut frozen = HashSet::new();
            for name in names {
                if state.fenced.remove(name.as_str()) {
                    if state.frozen.remove(name.as_str()) {
                        frozen.insert(name.clone());
                    }
                    released.push(name.clone());
                }
            }
            (released, frozen)
        };
        let mut held = Held::default();
        for name in released {
            let _guard = self.lock(&name).await;
            let Ok((_, rec)) = self.load(&name) else {
                continue;
            };
            let id = self.sandbox_id(&name);
            match self.runtime.status(&id)? {
                SandboxStatus::Frozen if frozen.contains(&name) => self.runtime.thaw(&id)?,
                SandboxStatus::Stopped | SandboxStatus::Absent
                    if rec.desired == Desired::Running =>
                {
                    held.to_wake.push(name)
                }
                _ => {}
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
        let mut state = self.fence.0.lock().unwrap();
        state.fenced.remove(name.as_str());
        state.frozen.remove(name.as_str());
        tracing::info!(sprite = %name, "forgot a sprite that lives on another host now");
        Ok(())
    }
}
