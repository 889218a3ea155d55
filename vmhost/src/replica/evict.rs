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
        let _guard = self.lock(name).await;
        let (paths, _) = self.load(name)?;
        let phase = self.observe(name)?;
        if phase != Phase::SleepingCold {
            return Err(wrong_phase("evict", phase));
        }
        let mut state = ReplicaState::read_for(&paths, self.cfg.bucket.as_deref())?;
        if state.location == Location::Bucket {
            return Ok(());
        }
        let generation = super::replicate::committed_generation(&paths.root)?;
        let pending = recorded_ids(&paths)?
            .iter()
            .any(|id| !state.shipped.contains_key(&id.0));
        if pending || state.generation != Some(generation) || state.error.is_some() {
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
        Ok(())
    }
}
