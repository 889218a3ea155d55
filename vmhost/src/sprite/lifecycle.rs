//! sleep and wake.
//!
//! The desired phase is recorded first, then applied, so a crash in between
//! is finished by the next start's reconciliation.
//!
//! - warm sleep: freeze the sprite's cgroup; memory stays, CPU use stops.
//! - cold sleep: stop every process (SIGTERM, a grace period, SIGKILL);
//!   only the disk remains.
//! - wake: thaw, or start the sandbox again (its services come back with it).

use sprites_wire::SpriteName;

use super::{wrong_phase, Desired, Host, Phase};
use crate::error::Result;
use crate::record;

impl Host {
    /// Freezes a running sprite. Allowed when Running or already SleepingWarm.
    pub async fn sleep_warm(&self, name: &SpriteName) -> Result<Phase> {
        let _guard = self.lock(name).await;
        let (paths, mut rec) = self.load(name)?;
        let phase = self.observe(name)?;
        if !phase.can_sleep() {
            return Err(wrong_phase("warm sleep", phase));
        }
        rec.set_desired(Desired::SleepingWarm);
        record::replace(&paths.record, &rec)?;
        if phase == Phase::Running {
            self.runtime.freeze(&self.sandbox_id(name))?;
            self.emit(name, Phase::SleepingWarm);
        }
        Ok(Phase::SleepingWarm)
    }

    /// Stops a sprite's processes, keeping its disk. Allowed in any phase
    /// but Creating; a no-op when already cold.
    pub async fn sleep_cold(&self, name: &SpriteName) -> Result<Phase> {
        let _guard = self.lock(name).await;
        let (paths, mut rec) = self.load(name)?;
        let phase = self.observe(name)?;
        rec.set_desired(Desired::SleepingCold);
        record::replace(&paths.record, &rec)?;
        self.stop_sandbox(name, self.cfg.stop_grace).await?;
        if phase != Phase::SleepingCold {
            self.emit(name, Phase::SleepingCold);
        }
        Ok(Phase::SleepingCold)
    }

    /// Brings a sprite to Running from any sleep; a no-op when running.
    pub async fn wake(&self, name: &SpriteName) -> Result<Phase> {
        let _guard = self.lock(name).await;
        self.wake_locked(name).await
    }

    pub(crate) async fn wake_locked(&self, name: &SpriteName) -> Result<Phase> {
        self.unfenced(name)?;
        // A disk only in the bucket comes back first.
        self.fetch_locked(name).await?;
        let (paths, mut rec) = self.load(name)?;
        if rec.desired != Desired::Running {
            rec.set_desired(Desired::Running);
            record::replace(&paths.record, &rec)?;
        }
        let id = self.sandbox_id(name);
        match self.runtime.status(&id)? {
            crate::runtime::SandboxStatus::Running => return Ok(Phase::Running),
            crate::runtime::SandboxStatus::Frozen => self.runtime.thaw(&id)?,
            crate::runtime::SandboxStatus::Stopped => {
                self.stop_sandbox(name, std::time::Duration::ZERO).await?;
                self.start_sandbox(name, &paths, &rec).await?;
            }
            crate::runtime::SandboxStatus::Absent => self.start_sandbox(name, &paths, &rec).await?,
        }
        self.emit(name, Phase::Running);
        Ok(Phase::Running)
    }
}
