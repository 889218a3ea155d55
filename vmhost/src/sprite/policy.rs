//! A sprite's policies. Its network policy: kept in its record (it goes
//! with the sprite through sleeps, restarts of the host and forks, and is
//! no part of its disk, so a restore leaves it), shown read-only inside
//! the sprite at [`POLICY_FILE`], and in force on the running sprite within
//! milliseconds of a change (see [`crate::net::egress`]). Its memory limit:
//! kept in its record's limits, and written to a running or frozen
//! sandbox's cgroup at once.

use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy};
use sprites_wire::SpriteName;

use super::{Host, Phase};
use crate::error::{Error, Result};
use crate::net::policy::Policy;
use crate::record;

/// Where the sprite reads its own network policy (`/.sprite/run` is the
/// host's directory, mounted read-only).
pub const POLICY_FILE: &str = "/.sprite/run/network-policy.json";

impl Host {
    /// The sprite's network policy, as it was set.
    pub fn network_policy(&self, name: &SpriteName) -> Result<NetworkPolicy> {
        Ok(self.load(name)?.1.network_policy)
    }

    /// Replaces the sprite's network policy; a running sprite is under it
    /// when this returns. A policy that does not check out is refused and
    /// the old one stays.
    pub async fn set_network_policy(&self, name: &SpriteName, policy: NetworkPolicy) -> Result<()> {
        let checked = Policy::new(&policy)?;
        let _guard = self.lock(name).await;
        let (paths, mut rec) = self.load(name)?;
        rec.network_policy = policy;
        record::write(&paths.record, &rec)?;
        self.write_network_policy(name, &rec.network_policy)?;
        if let Some(egress) = &self.egress {
            egress.set_policy(&self.sandbox_id(name), checked)?;
        }
        Ok(())
    }

    /// The sprite's memory limit, in bytes.
    pub fn memory_limit(&self, name: &SpriteName) -> Result<u64> {
        Ok(self.load(name)?.1.limits.memory_bytes)
    }

    /// Sets the sprite's memory limit (`None`: the host's default); a
    /// running or frozen sprite is under it when this returns, one asleep
    /// on disk when it wakes.
    pub async fn set_memory_limit(&self, name: &SpriteName, bytes: Option<u64>) -> Result<u64> {
        let bytes = bytes.unwrap_or(crate::runtime::Limits::default().memory_bytes);
        let _guard = self.lock(name).await;
        let (paths, mut rec) = self.load(name)?;
        let phase = self.observe(name)?;
        if matches!(phase, Phase::Running | Phase::SleepingWarm) {
            self.runtime.set_memory(&self.sandbox_id(name), bytes)?;
        }
        rec.limits.memory_bytes = bytes;
        record::write(&paths.record, &rec)?;
        Ok(bytes)
    }

    /// What of the kernel the sprite's processes may ask for.
    pub fn privileges(&self, name: &SpriteName) -> Result<PrivilegesPolicy> {
        Ok(self.load(name)?.1.privileges)
    }

    /// Sets what of the kernel the sprite's processes may ask for. They
    /// are set when it starts, so a running (or frozen) sprite whose
    /// privileges change restarts onto them, its disk kept; whether it did.
    pub async fn set_privileges(
        &self,
        name: &SpriteName,
        policy: PrivilegesPolicy,
    ) -> Result<bool> {
        if let Some(problem) = policy.problem() {
            return Err(Error::Invalid(problem));
        }
        let phase = {
            let _guard = self.lock(name).await;
            let (paths, mut rec) = self.load(name)?;
            if rec.privileges == policy {
                return Ok(false);
            }
            rec.privileges = policy;
            record::write(&paths.record, &rec)?;
            self.observe(name)?
        };
        if !matches!(phase, Phase::Running | Phase::SleepingWarm) {
            return Ok(false);
        }
        self.restart(name).await?;
        Ok(true)
    }

    /// Writes the policy where the sprite reads it (see [`POLICY_FILE`]),
    /// replacing the file whole (as a record; the one in the sprite's own
    /// record is what keeps it).
    pub(crate) fn write_network_policy(
        &self,
        name: &SpriteName,
        policy: &NetworkPolicy,
    ) -> Result<()> {
        let dir = self.mgmt_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::path("cannot create", &dir, e))?;
        record::replace(&dir.join("network-policy.json"), policy)
    }
}
