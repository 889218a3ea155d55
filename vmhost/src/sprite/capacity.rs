//! What a machine has room for: the figures a control plane places new
//! sprites by, asked of every host the same way.

use serde::{Deserialize, Serialize};

use super::Host;
use crate::error::Result;
use crate::phase::Phase;

/// A host's room, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Processors the host's sprites share.
    pub cpus: u32,
    pub memory_bytes: u64,
    /// What the kernel could give without swapping (`MemAvailable`).
    pub memory_available_bytes: u64,
    /// The sum of the memory limits of its running sprites: what they may
    /// still claim. A sleeping sprite claims none.
    pub memory_promised_bytes: u64,
    /// The storage pool's size, and what of it is free.
    pub disk_bytes: u64,
    pub disk_free_bytes: u64,
    pub running: usize,
    /// Asleep, warm or cold.
    pub sleeping: usize,
}

impl Host {
    /// This machine's room now.
    pub async fn capacity(&self) -> Result<Capacity> {
        let sprites = self.list()?;
        let (disk_bytes, disk_free_bytes) = self.pool().space()?;
        let (memory_bytes, memory_available_bytes) = crate::pool::memory()?;
        let running: Vec<_> = sprites
            .iter()
            .filter(|s| s.phase == Phase::Running)
            .collect();
        let sleeping = sprites
            .iter()
            .filter(|s| matches!(s.phase, Phase::SleepingWarm | Phase::SleepingCold))
            .count();
        Ok(Capacity {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            memory_bytes,
            memory_available_bytes,
            memory_promised_bytes: running.iter().map(|s| s.limits.memory_bytes).sum(),
            disk_bytes,
            disk_free_bytes,
            running: running.len(),
            sleeping,
        })
    }
}
