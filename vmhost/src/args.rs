//! The host's command-line and environment settings, shared by every binary
//! that opens a [`Host`](crate::Host) (the server and `vmhost`).

use std::path::PathBuf;

use crate::runtime::cli::Flavor;
use crate::HostConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// Directory holding the storage pool.
    #[arg(long, env = "SPRITES_DATA_DIR", default_value = "/var/lib/sprites")]
    pub data_dir: PathBuf,
    /// Runtime state (sockets, the runtime's state); cleared by a reboot.
    #[arg(long, env = "SPRITES_RUN_DIR", default_value = "/run/sprites")]
    pub run_dir: PathBuf,
    /// Which host's sprites, when several share one pool.
    #[arg(long, env = "SPRITES_INSTANCE", default_value = "default")]
    pub instance: String,
    /// OCI runtime for the sandboxes: crun or runc.
    #[arg(long, env = "SPRITES_RUNTIME", default_value = "crun")]
    pub runtime: Flavor,
    /// Debian mirror for building the base image.
    #[arg(
        long,
        env = "SPRITES_DEBIAN_MIRROR",
        default_value = "http://deb.debian.org/debian"
    )]
    pub mirror: String,
    /// Let sprites reach the internet through the host (NAT; private
    /// ranges and the host itself stay out of reach). `false`: loopback only.
    #[arg(long, env = "SPRITES_EGRESS", default_value_t = true, action = clap::ArgAction::Set)]
    pub egress: bool,
}

impl HostArgs {
    pub fn config(&self) -> HostConfig {
        let mut cfg = HostConfig::new(&self.data_dir);
        cfg.run_dir = self.run_dir.clone();
        cfg.instance = self.instance.clone();
        cfg.runtime = self.runtime;
        cfg.egress = self.egress;
        cfg
    }
}
