//! Sprites on one Linux host.
//!
//! [`Host`] owns the vocabulary: create, sleep, wake, exec, attach,
//! checkpoint, restore, fork, diff, destroy and file access, each documented
//! with the phases it is allowed in. Underneath, [`pool`] keeps every sprite
//! and checkpoint as btrfs subvolumes, [`image`] builds the root file systems
//! sprites start from, [`runtime`] runs each sprite in a sandbox, and
//! [`agent`] talks to `sprite-init`, PID 1 inside each sprite.

pub mod agent;
pub mod args;
pub mod bench;
pub(crate) mod btrfs;
pub mod call;
pub(crate) mod cgroup;
pub mod cluster;
pub mod diff;
pub mod error;
pub(crate) mod failpoint;
pub mod fs;
pub mod image;
pub(crate) mod net;
pub mod phase;
pub(crate) mod pool;
pub(crate) mod ports;
pub(crate) mod record;
pub mod remote;
pub mod runtime;
pub mod sprite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verbs;
pub mod watch;

pub use agent::{Chunk, ExecOutput, ServiceEvents, Stream};
pub use error::{Error, Result, WireError};
pub use net::UntrackedLoopback;
pub use pool::Pool;
pub use sprite::replica;
pub use sprite::{
    Activity, Capacity, Check, CheckpointInfo, Connection, CreateOptions, Desired, Duplex, Held,
    Host, HostConfig, HostEvent, MgmtConnection, MgmtListener, Origin, Phase, SpriteInfo,
};
pub use sprite_init::{
    ExecSpec, ServiceEvent, ServiceInfo, ServiceOp, ServiceSpec, ServiceState, SessionInfo, WinSize,
};
pub use sprites_wire::{CheckpointId, SpriteName};
pub use verbs::Verbs;
pub use watch::{FsChange, FsEvent, FsWatch};

/// Checks a network policy as [`Host::set_network_policy`] would, refusing
/// a bad one with a sentence naming its rule.
pub fn check_network_policy(policy: &sprites_wire::policy::NetworkPolicy) -> Result<()> {
    net::policy::Policy::new(policy).map(|_| ())
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
