//! checkpoint: an instant, consistent, read-only copy of a sprite's disk.
//!
//! 1. Sync the file system, then freeze the sprite's cgroup (when it runs),
//!    so no process is between two writes of one update; syncing first
//!    keeps the frozen time short when much was written before.
//! 2. Snapshot `root` read-only as `checkpoints/vN`. The snapshot ioctl
//!    flushes the subvolume's dirty data and commits the transaction, so
//!    everything written before it, fsynced or not, is in the checkpoint.
//! 3. Thaw.
//! 4. Write `meta/checkpoints/vN.json`: from this instant the checkpoint
//!    exists. A `vN` subvolume without its record is removed on start.
//! 5. Record vN as the checkpoint the sprite stands on.

use serde::{Deserialize, Serialize};
use sprites_wire::{CheckpointId, SpriteName};

use super::{wrong_phase, Host, Paths, SpriteRecord};
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::runtime::SandboxStatus;
use crate::{btrfs, record};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub id: CheckpointId,
    pub comment: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// The checkpoint the sprite stood on when this one was taken.
    pub parent: Option<CheckpointId>,
    /// Taken by the system (before a restore, or to replicate), not asked for.
    pub auto: bool,
    /// Taken only to replicate: left out of the history people see.
    #[serde(default)]
    pub hidden: bool,
}

/// Why a checkpoint is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Someone asked for it.
    Asked,
    /// To replicate what was written since the last one (hidden).
    Replica,
}

impl Host {
    /// Takes a checkpoint. Allowed in every phase but Creating.
    pub async fn checkpoint(&self, name: &SpriteName, comment: &str) -> Result<CheckpointInfo> {
        let _guard = self.lock(name).await;
        self.fetch_locked(name).await?;
        let (paths, mut rec) = self.load(name)?;
        let phase = self.observe(name)?;
        if !phase.can_checkpoint() {
            return Err(wrong_phase("checkpoint", phase));
        }
        let info = self.take_checkpoint(name, &paths, &rec, comment, Taken::Asked)?;
        rec.current = Some(info.id);
        rec.next_checkpoint = info.id.0 + 1;
        record::write(&paths.record, &rec)?;
        Ok(info)
    }

    pub(crate) fn take_checkpoint(
        &self,
        name: &SpriteName,
        paths: &Paths,
        rec: &SpriteRecord,
        comment: &str,
        taken: Taken,
    ) -> Result<CheckpointInfo> {
        let id = match taken {
            Taken::Asked => next_id(paths, rec)?,
            Taken::Replica => next_hidden_id(paths, rec)?,
        };
        let sandbox = self.sandbox_id(name);
        // Write out what is already dirty before freezing, so the processes
        // stay frozen only for the little written since.
        sync_fs(&paths.root)?;
        let froze = self.runtime.status(&sandbox)? == SandboxStatus::Running;
        if froze {
            self.runtime.freeze(&sandbox)?;
        }
        step("checkpoint.frozen");
        let snap = btrfs::snapshot(&paths.root, &paths.checkpoint(id), true);
        // A sprite fenced meanwhile stays frozen (see `fence`).
        if froze && self.unfenced(name).is_ok() {
            self.runtime.thaw(&sandbox)?;
        }
        snap.map_err(|e| Error::path("cannot snapshot", paths.checkpoint(id), e))?;
        step("checkpoint.snapshotted");
        let info = CheckpointInfo {
            id,
            comment: comment.to_string(),
            created_at: crate::now_ms(),
            parent: rec.current,
            auto: taken != Taken::Asked,
            hidden: taken == Taken::Replica,
        };
        if let Err(e) = record::write(&paths.checkpoint_record(id), &info) {
            // Unrecorded, the snapshot would only hold space until the next start.
            let _ = btrfs::remove_tree(&paths.checkpoint(id));
            return Err(e);
        }
        step("checkpoint.recorded");
        Ok(info)
    }

    /// The sprite's checkpoints, oldest first.
    pub fn checkpoints(&self, name: &SpriteName) -> Result<Vec<CheckpointInfo>> {
        let (paths, _) = self.load(name)?;
        let mut out = Vec::new();
        for id in recorded_ids(&paths)? {
            if let Some(info) = record::read::<CheckpointInfo>(&paths.checkpoint_record(id))? {
                out.push(info);
            }
        }
        Ok(out)
    }

    pub fn checkpoint_info(&self, name: &SpriteName, id: CheckpointId) -> Result<CheckpointInfo> {
        let (paths, _) = self.load(name)?;
        record::read(&paths.checkpoint_record(id))?
            .ok_or_else(|| Error::CheckpointNotFound(name.to_string(), id))
    }

    /// The files of a checkpoint, read-only (a checkpoint is a read-only
    /// snapshot: every write fails), with the same path rules as
    /// [`Host::files`], for async callers like [`Host::sprite_files`].
    pub fn checkpoint_files(
        &self,
        name: &SpriteName,
        id: CheckpointId,
    ) -> Result<crate::fs::Files> {
        self.checkpoint_info(name, id)?;
        let (paths, _) = self.load(name)?;
        crate::fs::SpriteFs::open(&paths.checkpoint(id), self.cfg.ids).map(crate::fs::Files::new)
    }

    /// Deletes a checkpoint, but not the one the sprite stands on.
    pub async fn delete_checkpoint(&self, name: &SpriteName, id: CheckpointId) -> Result<()> {
        let _guard = self.lock(name).await;
        let (paths, rec) = self.load(name)?;
        if record::read::<CheckpointInfo>(&paths.checkpoint_record(id))?.is_none() {
            return Err(Error::CheckpointNotFound(name.to_string(), id));
        }
        if rec.current == Some(id) {
            return Err(Error::CheckpointInUse(id));
        }
        // The record goes first: a crash after it leaves an unrecorded
        // subvolume, which the next start removes.
        record::remove(&paths.checkpoint_record(id))?;
        match btrfs::remove_tree(&paths.checkpoint(id)) {
            // Being sent to the object store (btrfs refuses to delete a
            // subvolume a send reads): deleted all the same, its record
            // gone; the shipment removes the subvolume when it ends.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                tracing::info!(sprite = %name, checkpoint = %id, "checkpoint deleted while being shipped: its disk goes once the shipment ends");
                Ok(())
            }
            r => r.map_err(|e| Error::path("cannot delete", paths.checkpoint(id), e)),
        }
    }
}

pub(crate) fn sync_fs(path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::path("cannot open", path, e))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))
        .map_err(|e| Error::path("cannot sync", path, e.into()))
}

/// Ids with a record, ascending.
pub(crate) fn recorded_ids(paths: &Paths) -> Result<Vec<CheckpointId>> {
    let mut ids = Vec::new();
    let dir = &paths.checkpoint_meta;
    for e in std::fs::read_dir(dir).map_err(|e| Error::path("cannot list", dir, e))? {
        let e = e.map_err(|e| Error::path("cannot list", dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(id) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// Ids with a subvolume, recorded or not, ascending.
pub(crate) fn snapshot_ids(paths: &Paths) -> Result<Vec<CheckpointId>> {
    let mut ids = Vec::new();
    let dir = &paths.checkpoints;
    for e in std::fs::read_dir(dir).map_err(|e| Error::path("cannot list", dir, e))? {
        let e = e.map_err(|e| Error::path("cannot list", dir, e))?;
        if let Ok(id) = e.file_name().to_string_lossy().parse() {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// Hidden checkpoints (replication's) take ids from here up (the largest
/// id is nine digits), so the ones people see stay v0, v1, v2... without
/// gaps: half a billion each, at one hidden checkpoint a minute some
/// nine centuries.
pub(crate) const HIDDEN_BASE: u32 = 500_000_000;

/// Ids only grow: a deleted checkpoint's id is never given again.
pub(crate) fn next_id(paths: &Paths, rec: &SpriteRecord) -> Result<CheckpointId> {
    let last = recorded_ids(paths)?
        .into_iter()
        .chain(snapshot_ids(paths)?)
        .filter(|id| id.0 < HIDDEN_BASE)
        .max();
    let after_last = last.map_or(0, |CheckpointId(n)| n + 1);
    Ok(CheckpointId(after_last.max(rec.next_checkpoint)))
}

/// The next hidden checkpoint's id; these only grow too.
pub(crate) fn next_hidden_id(paths: &Paths, rec: &SpriteRecord) -> Result<CheckpointId> {
    let last = recorded_ids(paths)?
        .into_iter()
        .chain(snapshot_ids(paths)?)
        .filter(|id| id.0 >= HIDDEN_BASE)
        .max();
    let after_last = last.map_or(HIDDEN_BASE, |CheckpointId(n)| n + 1);
    Ok(CheckpointId(
        after_last.max(rec.next_hidden).max(HIDDEN_BASE),
    ))
}
