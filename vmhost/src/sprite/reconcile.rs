//! Reconciliation on start: make records, disk and processes agree before
//! anything is served.
//!
//! 1. Empty `staging/` (unpublished creations and forks), `trash/`
//!    (published destructions) and `incoming/` (sprites received ahead
//!    for an adoption that did not come).
//! 2. For each sprite: finish an interrupted restore; remove checkpoint
//!    subvolumes without a record, records without a subvolume, and a stray
//!    `root.old`.
//! 3. Bring the sandbox to the desired phase: re-adopt a running sandbox
//!    whose init answers; restart one that is stopped or does not answer;
//!    thaw one frozen mid-checkpoint; stop one that should sleep cold. A
//!    fenced sprite (a host whose lease lapsed, see `fence`) stays as it
//!    is.
//! 4. Stop sandboxes of this instance that belong to no sprite.
//! 5. Wait until the kept sprites have their resolvers and network
//!    policies again (see `crate::net::egress`).

use std::time::Duration;

use sprites_wire::SpriteName;

use super::checkpoint::{recorded_ids, snapshot_ids};
use super::restore::Intent;
use super::{Desired, Host, SpriteRecord};
use crate::btrfs;
use crate::error::{Error, Result};
use crate::record;
use crate::runtime::SandboxStatus;

/// How long a re-adopted init has to answer before it is restarted.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(3);

impl Host {
    pub(crate) async fn reconcile(&self) -> Result<()> {
        for sub in ["staging", "trash", "incoming"] {
            let dir = self.dir.join(sub);
            for e in std::fs::read_dir(&dir).map_err(|e| Error::path("cannot list", &dir, e))? {
                let p = e.map_err(|e| Error::path("cannot list", &dir, e))?.path();
                tracing::info!(path = %p.display(), "removing leftovers of an interrupted operation");
                if sub == "trash" {
                    self.note_forget(&p)?;
                }
                btrfs::remove_tree(&p).map_err(|e| Error::path("cannot delete", &p, e))?;
            }
        }
        let mut known = Vec::new();
        let sprites = self.dir.join("sprites");
        for e in std::fs::read_dir(&sprites).map_err(|e| Error::path("cannot list", &sprites, e))? {
            let e = e.map_err(|e| Error::path("cannot list", &sprites, e))?;
            let Ok(name) = SpriteName::parse(&e.file_name().to_string_lossy()) else {
                tracing::warn!(entry = ?e.file_name(), "ignoring a foreign entry among sprites");
                continue;
            };
            known.push(self.sandbox_id(&name));
            if let Err(err) = self.reconcile_one(&name).await {
                // One broken sprite must not keep the others from serving.
                tracing::error!(sprite = %name, error = %err, source = ?std::error::Error::source(&err), "cannot reconcile sprite");
            }
        }
        let prefix = format!("{}.", self.cfg.instance);
        for id in self.runtime.list(&prefix)? {
            if !known.contains(&id) {
                tracing::warn!(sandbox = %id, "stopping a sandbox that belongs to no sprite");
                self.runtime.stop(&id, Duration::ZERO).await?;
            }
        }
        // Re-adopted sprites have their resolvers and policies again
        // before anything is served (or a command of `vmhost` ends).
        self.networks_made().await;
        Ok(())
    }

    async fn reconcile_one(&self, name: &SpriteName) -> Result<()> {
        let _guard = self.lock(name).await;
        let (paths, rec) = self.load(name)?;
        if crate::sprite::replica::ReplicaState::read(&paths)?.location
            == crate::sprite::replica::Location::Bucket
        {
            // Its disk is in the bucket, its records say what is there;
            // half-received checkpoints are finished by the next fetch. A
            // restore never started on a disk that was not here.
            let _ = record::remove(&paths.op);
            return Ok(());
        }
        if let Some(Intent::Restore { target, backup }) = record::read::<Intent>(&paths.op)? {
            tracing::info!(sprite = %name, %target, "finishing an interrupted restore");
            return self.finish_restore(name, &paths, rec, target, backup).await;
        }
        btrfs::remove_tree(&paths.old_root)
            .map_err(|e| Error::path("cannot delete", &paths.old_root, e))?;
        let recorded = recorded_ids(&paths)?;
        let snapshots = snapshot_ids(&paths)?;
        for id in snapshots.iter().filter(|id| !recorded.contains(id)) {
            tracing::info!(sprite = %name, checkpoint = %id, "removing an unfinished checkpoint");
            btrfs::remove_tree(&paths.checkpoint(*id))
                .map_err(|e| Error::path("cannot delete", paths.checkpoint(*id), e))?;
        }
        for id in recorded.iter().filter(|id| !snapshots.contains(id)) {
            record::remove(&paths.checkpoint_record(*id))?;
        }
        let mut rec = rec;
        if rec
            .current
            .is_some_and(|c| !recorded.contains(&c) || !snapshots.contains(&c))
        {
            rec.current = None;
            record::write(&paths.record, &rec)?;
        }
        self.settle(name, &rec).await
    }

    /// Brings the sandbox to the record's desired phase.
    async fn settle(&self, name: &SpriteName, rec: &SpriteRecord) -> Result<()> {
        let id = self.sandbox_id(name);
        let status = self.runtime.status(&id)?;
        if self.unfenced(name).is_err() {
            // As it is, frozen or stopped, until the control plane holds it.
            if matches!(status, SandboxStatus::Running | SandboxStatus::Frozen) {
                self.connect_network(name, &rec.network_policy, false);
            }
            return Ok(());
        }
        match (rec.desired, status) {
            (Desired::Running, SandboxStatus::Running) => {
                if tokio::time::timeout(ADOPT_TIMEOUT, self.agent(name).ping())
                    .await
                    .is_ok_and(|r| r.is_ok())
                {
                    tracing::info!(sprite = %name, "re-adopted running sprite");
                    self.connect_network(name, &rec.network_policy, false);
                    return Ok(());
                }
                tracing::warn!(sprite = %name, "init does not answer; restarting the sprite");
                self.wake_after_stop(name).await
            }
            // Frozen by a checkpoint that never finished.
            (Desired::Running, SandboxStatus::Frozen) => {
                self.connect_network(name, &rec.network_policy, false);
                self.runtime.thaw(&id)
            }
            (Desired::SleepingWarm, SandboxStatus::Frozen) => {
                self.connect_network(name, &rec.network_policy, false);
                Ok(())
            }
            (Desired::SleepingWarm, SandboxStatus::Running) => {
                self.connect_network(name, &rec.network_policy, false);
                self.runtime.freeze(&id)
            }
            (Desired::Running, SandboxStatus::Stopped | SandboxStatus::Absent) => {
                self.wake_after_stop(name).await
            }
            // Memory of a warm sleeper is gone once its sandbox is: it sleeps cold now.
            (Desired::SleepingWarm, SandboxStatus::Stopped | SandboxStatus::Absent) => {
                let (paths, mut rec) = self.load(name)?;
                rec.set_desired(Desired::SleepingCold);
                record::write(&paths.record, &rec)?;
                self.stop_sandbox(name, Duration::ZERO).await
            }
            (Desired::SleepingCold, SandboxStatus::Absent) => Ok(()),
            (Desired::SleepingCold, _) => self.stop_sandbox(name, Duration::ZERO).await,
        }
    }

    async fn wake_after_stop(&self, name: &SpriteName) -> Result<()> {
        self.stop_sandbox(name, Duration::ZERO).await?;
        self.wake_locked(name).await.map(|_| ())
    }
}
