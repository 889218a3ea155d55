//! The sandbox runtime seam. A runtime turns a [`SandboxSpec`] into an
//! isolated, running sandbox whose PID 1 is `sprite-init` listening on the
//! socket it was handed, and can freeze, thaw, inspect and stop it.
//!
//! [`cli::OciCli`] is the default: an OCI bundle run by crun (or runc), with
//! user, pid, mount, uts, ipc, net and cgroup namespaces, cgroup limits,
//! seccomp and dropped capabilities. A microVM runtime (cloud-hypervisor) can
//! implement the same trait where hardware virtualization is available.

pub mod cli;
pub mod oci;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Resource limits of one sprite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids: u32,
    /// CPU time per 100 ms period, in microseconds; 0 means no cap.
    pub cpu_quota_us: u64,
    pub disk_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 4 << 30,
            pids: 4096,
            cpu_quota_us: 0,
            disk_bytes: 100 << 30,
        }
    }
}

/// Root inside a sprite is `base` outside; ids 0..size map to base..base+size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub base: u32,
    pub size: u32,
}

#[derive(Clone)]
pub struct SandboxSpec {
    /// Unique on this machine.
    pub id: String,
    pub hostname: String,
    pub rootfs: PathBuf,
    /// `sprite-init`, mounted read-only at `/.sprite/bin/sprite-init`.
    pub init_binary: PathBuf,
    /// Shown read-only at `/.sprite/checkpoints`.
    pub checkpoints_dir: PathBuf,
    /// Shown read-only at `/.sprite/run`: the management socket the host
    /// serves for this sprite (`api.sock`).
    pub mgmt_dir: PathBuf,
    /// Shown read-only at `/etc/resolv.conf`: name servers sprites reach.
    pub resolv_conf: PathBuf,
    /// Shown at `/etc/hostname` and `/etc/hosts`: the sprite's own names
    /// (`hostname`, `hosts` in this directory), writable by its root.
    pub names_dir: PathBuf,
    /// Listening socket that becomes fd 3 of `sprite-init`.
    pub init_socket: Arc<OwnedFd>,
    /// Where `sprite-init`'s own output goes.
    pub log_path: PathBuf,
    pub limits: Limits,
    pub ids: IdMap,
    /// Its seccomp profile and no-new-privileges.
    pub privileges: sprites_wire::policy::PrivilegesPolicy,
    /// Extra devices: a node made for this sprite (owned by its root, so
    /// it opens through a user namespace) and where it appears inside.
    pub devices: Vec<Device>,
}

/// A device a sprite may open besides the usual ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The node on the host, made for this sprite.
    pub node: PathBuf,
    /// Where it appears inside: `/dev/net/tun`.
    pub path: String,
    pub major: u64,
    pub minor: u64,
}

/// The devices a privileges policy may add: path inside, major, minor.
pub const DEVICES: &[(&str, u64, u64)] = &[("/dev/net/tun", 10, 200)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxStatus {
    /// The runtime knows nothing of it.
    Absent,
    Running,
    Frozen,
    /// Its init has exited; the runtime still holds its state.
    Stopped,
}

#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts the sandbox; returns once its init runs.
    async fn start(&self, spec: &SandboxSpec) -> Result<()>;
    /// Stops every process of the sandbox and forgets it. With a grace
    /// period, processes get SIGTERM first.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    fn status(&self, id: &str) -> Result<SandboxStatus>;
    /// Host pid of the sandbox's init while it runs.
    fn init_pid(&self, id: &str) -> Result<Option<i32>>;
    fn freeze(&self, id: &str) -> Result<()>;
    fn thaw(&self, id: &str) -> Result<()>;
    /// Ids of the sandboxes the runtime holds whose id starts with `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Which of its limits the running sandbox has used up, if one.
    fn exhausted(&self, id: &str) -> Result<Option<crate::error::Exhausted>>;
    /// Sets the running (or frozen) sandbox's memory limit, in force at
    /// once: lowered below what it uses, the kernel reclaims, and kills as
    /// at any limit.
    fn set_memory(&self, id: &str, bytes: u64) -> Result<()>;
}
