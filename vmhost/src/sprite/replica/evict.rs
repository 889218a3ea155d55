//! evict: the cold tier. A sprite asleep cold whose every write is in the
//! bucket leaves the local pool; its records stay, so it is listed as
//! before, and its first wake brings it back ([`Host::fetch`]).
//!
//! The location is recorded as the bucket (durably) before any subvolume
//! goes: a crash in between leaves a sprite whose next wake fetches what is
//! missing and reuses what is still there.

use std::time::Duration;

use sprites_wire::SpriteName;

use super::{Location, ReplicaState};
use crate::btrfs;
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::sprite::{recorded_ids, wrong_phase, Host, Phase};

impl Host {
    /// Leaves `name` only in the bucket. Allowed while it sleeps cold;
    /// what it wrote since its last shipment is shipped first (a last
    /// hidden checkpoint), and it stays when that cannot be done.
    pub async fn evict(&self, name: &SpriteName) -> Result<()> {
        self.bucket()?;
        let phase = self.observe(name)?;
        if phase != Phase::SleepingCold {
            return Err(wrong_phase("evict", phase));
        }
        self.replicate(name, Duration::ZERO).await?;
        // No shipment reads the subvolumes while they go.
        let _one = self.replica_lock(name).await;
        let _guard = self.lock(name).await;
        let (paths, _) = self.load(name)?;
        let phase = self.observe(name)?;
        if phase != Phase::SleepingCold {
            return Err(wrong_phase("evict", phase));
        }
        let mut state = ReplicaState::read_for(&paths, self.bucket_label().as_deref())?;
        if state.location == Location::Bucket {
            return Ok(());
        }
        // File calls reach a sleeping sprite's disk without its lock: it is
        // made read-only first, so none lands after the last look.
        btrfs::set_readonly(&paths.root, true)
            .map_err(|e| Error::path("cannot make read-only", &paths.root, e))?;
        let generation = super::replicate::committed_generation(&paths.root)?;
        let pending = recorded_ids(&paths)?
            .iter()
            .any(|id| !state.shipped.contains_key(&id.0));
        // The root as it stands is the checkpoint taken at this generation,
        // and that one is in the bucket.
        let root_shipped = state.generation == Some(generation)
            && state
                .generation_of
                .is_some_and(|id| state.shipped.contains_key(&id.0));
        if pending || !root_shipped || state.error.is_some() {
            btrfs::set_readonly(&paths.root, false)
                .map_err(|e| Error::path("cannot make writable", &paths.root, e))?;
            return Err(Error::Invalid(format!(
                "sprite {name} has writes not yet in the object store; it stays on this disk"
            )));
        }
        state.location = Location::Bucket;
        state.write(&paths)?;
        step("evict.recorded");
        for id in crate::sprite::snapshot_ids(&paths)? {
            btrfs::remove_tree(&paths.checkpoint(id))
                .map_err(|e| Error::path("cannot delete", paths.checkpoint(id), e))?;
        }
        btrfs::remove_tree(&paths.root)
            .map_err(|e| Error::path("cannot delete", &paths.root, e))?;
        self.replica_changed(name);
        Ok(())
    }
}
