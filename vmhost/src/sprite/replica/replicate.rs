//! replicate: keeps the bucket within an interval of a sprite's disk.
//!
//! When the sprite's root changed since the last look (its btrfs
//! generation grew) and the last hidden checkpoint is older than the
//! interval, a hidden checkpoint is taken (the generation moves only when a
//! transaction commits, so what is still in memory is written out before it
//! is read); then everything not yet in the
//! bucket is shipped (hidden checkpoints then leave the host: see
//! [`Host::ship`]), and the bucket lets go of what it no longer needs to
//! keep ([`Host::prune`]).

use std::time::Duration;

use sprites_wire::{CheckpointId, SpriteName};

use super::{Location, ReplicaState, ShipReport};
use crate::error::{Error, Result};
use crate::record;
use crate::sprite::{CheckpointInfo, Host, Taken};
use crate::{btrfs, failpoint::step};

impl Host {
    /// Takes a hidden checkpoint of `name` if it was written to since the
    /// last and that one is older than `every`, then ships what is not in
    /// the bucket (see the module).
    pub async fn replicate(&self, name: &SpriteName, every: Duration) -> Result<ShipReport> {
        self.bucket()?;
        self.unfenced(name)?;
        let started = std::time::Instant::now();
        let taken = self.take_replica_checkpoint(name, every).await?;
        let took = taken.as_ref().map(|_| started.elapsed());
        if taken.is_none() {
            let (paths, _) = self.load(name)?;
            let state = ReplicaState::read_for(&paths, self.bucket_label().as_deref())?;
            let pending = crate::sprite::recorded_ids(&paths)?
                .iter()
                .any(|id| !state.shipped.contains_key(&id.0));
            let record = self.stored_record(name)?.1;
            if !pending && state.error.is_none() && state.record_digest == Some(record) {
                return Ok(ShipReport::default());
            }
        }
        let mut report = self.ship(name).await?;
        report.checkpoint_took = took;
        report.pruned = self.prune(name).await?;
        Ok(report)
    }

    /// The hidden checkpoint [`Host::replicate`] takes, when one is due.
    async fn take_replica_checkpoint(
        &self,
        name: &SpriteName,
        every: Duration,
    ) -> Result<Option<CheckpointInfo>> {
        let _guard = self.lock(name).await;
        let (paths, mut rec) = self.load(name)?;
        let mut state = ReplicaState::read(&paths)?;
        if state.location != Location::Local {
            return Ok(None);
        }
        let now = crate::now_ms();
        let due = now.saturating_sub(state.taken_at) >= every.as_millis() as u64;
        if !due {
            return Ok(None);
        }
        let generation = committed_generation(&paths.root)?;
        if state.generation == Some(generation) {
            return Ok(None);
        }
        let info = self.take_checkpoint(name, &paths, &rec, "replica", Taken::Replica)?;
        // Ids are never given twice, even once this one is dropped here:
        // the bucket keeps it under its id.
        rec.next_hidden = rec.next_hidden.max(info.id.0 + 1);
        record::write(&paths.record, &rec)?;
        // The snapshot's transaction: the root stood there when it was
        // taken, and anything written after commits later, moving it on.
        let snapshot = paths.checkpoint(info.id);
        state.generation = Some(
            btrfs::generation(&snapshot)
                .map_err(|e| Error::path("cannot read the generation of", &snapshot, e))?,
        );
        state.generation_of = Some(info.id);
        state.taken_at = now;
        state.write(&paths)?;
        step("replicate.taken");
        Ok(Some(info))
    }

    /// Drops the hidden checkpoints the bucket holds, but the last shipped
    /// and the one the sprite stands on, and the subvolumes of checkpoints
    /// deleted while a shipment read them (see `delete_checkpoint`).
    pub(crate) async fn drop_shipped_hidden(&self, name: &SpriteName) -> Result<()> {
        let _guard = self.lock(name).await;
        let (paths, rec) = self.load(name)?;
        let recorded = crate::sprite::recorded_ids(&paths)?;
        for id in crate::sprite::snapshot_ids(&paths)? {
            if !recorded.contains(&id) {
                btrfs::remove_tree(&paths.checkpoint(id))
                    .map_err(|e| Error::path("cannot delete", paths.checkpoint(id), e))?;
            }
        }
        let state = ReplicaState::read_for(&paths, self.bucket_label().as_deref())?;
        let last = state.last().map(|(id, _)| id);
        for id in crate::sprite::recorded_ids(&paths)? {
            if Some(id) == last || Some(id) == rec.current || !state.shipped.contains_key(&id.0) {
                continue;
            }
            let Some(info) = record::read::<CheckpointInfo>(&paths.checkpoint_record(id))? else {
                continue;
            };
            if info.hidden {
                drop_checkpoint(&paths, id)?;
            }
        }
        Ok(())
    }
}

/// The generation of the subvolume at `root` once everything written to it
/// is committed: writes still in memory do not move it, so they are
/// written out first.
pub(crate) fn committed_generation(root: &std::path::Path) -> Result<u64> {
    crate::sprite::sync_fs(root)?;
    btrfs::generation(root).map_err(|e| Error::path("cannot read the generation of", root, e))
}

fn drop_checkpoint(paths: &crate::sprite::Paths, id: CheckpointId) -> Result<()> {
    record::remove(&paths.checkpoint_record(id))?;
    btrfs::remove_tree(&paths.checkpoint(id))
        .map_err(|e| Error::path("cannot delete", paths.checkpoint(id), e))
}
