//! What a sprite is doing, and which verbs each phase allows. Its own
//! module: the errors name phases, and everything names the errors.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a sprite is doing, as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Being made; not yet visible to other calls.
    Creating,
    /// Its processes run; exec and sessions are possible.
    Running,
    /// Frozen in memory; wakes in about a millisecond.
    SleepingWarm,
    /// No processes; only its disk remains.
    SleepingCold,
    /// Gone.
    Destroyed,
}

impl Phase {
    pub fn can_exec(self) -> bool {
        self == Phase::Running
    }
    pub fn can_sleep(self) -> bool {
        matches!(self, Phase::Running | Phase::SleepingWarm)
    }
    pub fn can_wake(self) -> bool {
        matches!(
            self,
            Phase::Running | Phase::SleepingWarm | Phase::SleepingCold
        )
    }
    pub fn can_checkpoint(self) -> bool {
        self.can_wake()
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Creating => "being created",
            Phase::Running => "running",
            Phase::SleepingWarm => "asleep (warm)",
            Phase::SleepingCold => "asleep (cold)",
            Phase::Destroyed => "destroyed",
        })
    }
}
