//! Egress: a sprite's way out to the internet, when the operator allows it.
//!
//! Each running sprite gets a veth pair: `sprite<N>` on the host (no other
//! interface may take that prefix), `eth0` in
//! the sprite with the address `100.64.0.0/10 + N` (the shared address
//! space, so never an address of the networks around the machine), routed
//! through `100.64.0.1`, the gateway, whose address is on one dummy link
//! of the host (`sgw0`): the host's ends hold no address. One nftables table
//! (`inet sprites`) then:
//!
//! - masquerades what sprites send out, so they reach the internet;
//! - drops what they send to private, shared, link-local, loopback and
//!   multicast ranges (the machine's neighbours, other sprites, cloud
//!   metadata), and anything but IPv4;
//! - drops everything they send to the host itself (the API, the database,
//!   any local service), whatever address it is sent to.
//!
//! Without egress a sprite has only its loopback. Either way the host
//! reaches in (proxied requests, forwarded ports) with sockets it opens in
//! the sprite's namespace, never through this network.
//!
//! What a sprite may reach is further narrowed by its network policy
//! ([`policy`]): its resolver ([`resolver`]) answers only allowed names, and
//! [`egress`] admits only the addresses given for them.

pub(crate) mod egress;
pub mod policy;
pub(crate) mod resolver;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The host's end of every sprite's link.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// Addresses for sprites: 100.64.1.0 onwards.
const FIRST: u32 = u32::from_be_bytes([100, 64, 1, 0]);
const SLOTS: u32 = (1 << 22) - 512;

/// Destinations a sprite never reaches.
const REFUSED: &str = "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, \
    172.16.0.0/12, 192.0.0.0/24, 192.168.0.0/16, 198.18.0.0/15, 224.0.0.0/4, 240.0.0.0/4";

/// The nftables table; replaced whole, so applying it twice is harmless.
fn ruleset() -> String {
    format!(
        "table inet sprites
delete table inet sprites
table inet sprites {{
  set refused {{ type ipv4_addr; flags interval; elements = {{ {REFUSED} }} }}
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname \"sprite*\" drop
  }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname \"sprite*\" meta nfproto != ipv4 drop
    iifname \"sprite*\" ip daddr @refused drop
    iifname \"sprite*\" accept
    oifname \"sprite*\" ct state established,related accept
    oifname \"sprite*\" drop
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr 100.64.0.0/10 oifname != \"sprite*\" masquerade
  }}
}}
"
    )
}

fn run(cmd: &mut Command, what: &str, input: Option<&str>) -> Result<()> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {what}"), e))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("cannot feed {what}"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("cannot run {what}"), e))?;
    if !out.status.success() {
        return Err(Error::Runtime(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The link holding the gateway's address for every sprite (a bridge with
/// no ports, as this kernel may lack dummy links; the
/// host answers a sprite's ARP for it on the sprite's own link).
pub const GATEWAY_LINK: &str = "sgw0";

/// Makes [`GATEWAY_LINK`] with [`GATEWAY`], unless it is there.
fn install_gateway() -> Result<()> {
    let shown = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", GATEWAY_LINK])
        .output();
    if shown.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{GATEWAY}/32"))) {
        return Ok(());
    }
    let _ = run(
        Command::new("ip").args(["link", "add", GATEWAY_LINK, "type", "bridge"]),
        "ip link add",
        None,
    );
    run(
        Command::new("ip").args(["-batch", "-"]),
        "ip",
        Some(&format!(
            "addr replace {GATEWAY}/32 dev {GATEWAY_LINK}\nlink set {GATEWAY_LINK} up\n"
        )),
    )
}

/// Turns forwarding on and installs the table. Once per host start.
pub fn install() -> Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| Error::io("cannot turn on IPv4 forwarding", e))?;
    install_gateway()?;
    run(
        Command::new("nft").arg("-f").arg("-"),
        "nft",
        Some(&ruleset()),
    )?;
    remove_stale_local_tables();
    Ok(())
}

/// Removes the [`skip_tracking`] tables of ports nothing listens on any
/// more (a server that ended without removing its own): each one is a
/// hook every packet of the host passes, and every nftables change pays
/// for the size of the ruleset.
fn remove_stale_local_tables() {
    let Ok(out) = Command::new("nft").args(["list", "tables"]).output() else {
        return;
    };
    let Ok(sockets) = crate::ports::listening_sockets(None) else {
        return;
    };
    let listening: std::collections::BTreeSet<u16> = sockets.iter().map(|l| l.port).collect();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(port) = line
            .trim()
            .strip_prefix("table inet sprites-local-")
            .and_then(|p| p.parse::<u16>().ok())
        else {
            continue;
        };
        if !listening.contains(&port) {
            let _ = resume_tracking(port);
        }
    }
}

/// The table of [`skip_tracking`] for `port`.
fn local_table(port: u16) -> String {
    format!("sprites-local-{port}")
}

/// Takes the host's loopback connections to or from TCP `port` (the
/// server's) out of connection tracking. The egress table's NAT turns
/// tracking on for the whole host namespace, and every proxied request
/// paid for it twice on its way in and out through loopback (~4-7% of a
/// small request's rate). Only loopback: a firewall's rules on the real
/// interfaces still see tracked connections. Replaced whole, as
/// [`install`]; [`resume_tracking`] removes it.
pub fn skip_tracking(port: u16) -> Result<()> {
    let t = local_table(port);
    let rules = format!(
        "table inet {t}
delete table inet {t}
table inet {t} {{
  chain prerouting {{
    type filter hook prerouting priority raw; policy accept;
    iif lo tcp dport {port} notrack
    iif lo tcp sport {port} notrack
  }}
  chain output {{
    type filter hook output priority raw; policy accept;
    oif lo tcp dport {port} notrack
    oif lo tcp sport {port} notrack
  }}
}}
"
    );
    run(Command::new("nft").arg("-f").arg("-"), "nft", Some(&rules))
}

/// Undoes [`skip_tracking`] for `port`.
pub fn resume_tracking(port: u16) -> Result<()> {
    run(
        Command::new("nft").args(["delete", "table", "inet", &local_table(port)]),
        "nft",
        None,
    )
}

/// Loopback connections to a port stay out of connection tracking while
/// this lives (see [`skip_tracking`]; made by
/// [`crate::Host::untrack_loopback`]).
pub struct UntrackedLoopback(u16);

impl Drop for UntrackedLoopback {
    fn drop(&mut self) {
        let _ = resume_tracking(self.0);
    }
}

impl UntrackedLoopback {
    pub(crate) fn new(port: u16) -> Result<UntrackedLoopback> {
        skip_tracking(port)?;
        Ok(UntrackedLoopback(port))
    }
}

/// A sprite's slot: its address and its host interface's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(pub u32);

impl Slot {
    pub fn address(self) -> Ipv4Addr {
        Ipv4Addr::from(FIRST + self.0)
    }

    pub fn interface(self) -> String {
        format!("sprite{}", self.0)
    }
}

/// Slots in use, as files of `dir` (a directory of the run dir, so a
/// reboot frees them all) named by slot and holding the sandbox's id.
pub struct Slots {
    dir: PathBuf,
}

impl Slots {
    pub fn new(run_dir: &Path) -> Result<Slots> {
        let dir = run_dir.join("net");
        std::fs::create_dir_all(&dir).map_err(|e| Error::path("cannot create", &dir, e))?;
        Ok(Slots { dir })
    }

    /// A free slot for sandbox `id`: its hash's first, else the next free.
    pub fn take(&self, id: &str) -> Result<Slot> {
        self.release(id);
        let start = id
            .bytes()
            .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619))
            % SLOTS;
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let path = self.dir.join(slot.to_string());
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(id.as_bytes())
                        .map_err(|e| Error::path("cannot write", &path, e))?;
                    return Ok(Slot(slot));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::path("cannot create", &path, e)),
            }
        }
        Err(Error::Runtime("no network address is free".into()))
    }

    /// The slot sandbox `id` holds, if any (a running sprite re-adopted
    /// after a restart of the host keeps its link).
    pub fn held(&self, id: &str) -> Option<Slot> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .find_map(|entry| {
                let owner = std::fs::read(entry.path()).ok()?;
                (owner == id.as_bytes())
                    .then(|| entry.file_name().to_str()?.parse().ok().map(Slot))
                    .flatten()
            })
    }

    /// Frees the slot of sandbox `id`, if it holds one.
    pub fn release(&self, id: &str) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            if std::fs::read(entry.path()).is_ok_and(|owner| owner == id.as_bytes()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Gives the sprite whose init is `pid` its link in `slot`. Runs at a
/// lower CPU priority than the requests it must not slow down (a create or
/// a wake on a small machine). A half-made link is removed.
pub fn attach(pid: i32, slot: Slot) -> Result<()> {
    // A sprite that stopped before this ran may have had its slot taken
    // by a new one since, whose link must stay.
    if !alive(pid) {
        return Err(Error::Runtime(format!("sandbox init {pid} is gone")));
    }
    let host = slot.interface();
    let addr = slot.address();
    let ns = format!("/proc/{pid}/ns/net");
    // A link left by an earlier sandbox of this slot would be in the way.
    let _ = run(
        Command::new("ip").args(["link", "del", &host]),
        "ip link del",
        None,
    );
    // The sprite's end is made inside its namespace: moving a link into a
    // namespace waits for the kernel's network-wide synchronisation (~30
    // ms here), making it there does not (~3 ms). A command the sprite
    // runs waits for this (`Host::link_made`), so it runs at full priority.
    // The host's end holds no address (the gateway's is on the one
    // `GATEWAY_LINK`): an address added or removed on the host makes
    // browsers on this machine drop their requests in flight
    // (ERR_NETWORK_CHANGED), and sprites start and stop all the time.
    let outside = format!(
        "link add {host} type veth peer name eth0 netns {pid}\n\
         link set {host} up\n\
         route add {addr}/32 dev {host} src {GATEWAY}\n"
    );
    let inside = format!(
        "addr add {addr}/32 dev eth0\n\
         link set eth0 up\n\
         route add {GATEWAY} dev eth0\n\
         route add default via {GATEWAY} dev eth0\n"
    );
    let made = run(
        Command::new("ip").args(["-batch", "-"]),
        "ip",
        Some(&outside),
    )
    .and_then(|()| {
        run(
            Command::new("nsenter")
                .arg(format!("--net={ns}"))
                .args(["ip", "-batch", "-"]),
            "ip (in the sprite)",
            Some(&inside),
        )
    });
    if made.is_err() {
        // The sprite may have stopped meanwhile; leave nothing behind.
        let _ = run(
            Command::new("ip").args(["link", "del", &host]),
            "ip link del",
            None,
        );
    }
    made
}

/// Takes the link of `slot` away (with it, the sprite's end).
pub fn detach(slot: Slot) {
    let _ = run(
        Command::new("ip").args(["link", "del", &slot.interface()]),
        "ip link del",
        None,
    );
}

/// Whether the process `pid` still has its network namespace: a sprite
/// that stopped while its link was being made is no error. (Its init may
/// linger as a zombie with `/proc/<pid>` still there, its namespaces
/// already gone, and with them the link half made.)
pub fn alive(pid: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_addresses_in_the_shared_space_and_taken_once() {
        assert_eq!(Slot(0).address(), Ipv4Addr::new(100, 64, 1, 0));
        assert_eq!(Slot(300).address(), Ipv4Addr::new(100, 64, 2, 44));
        assert!(Slot(SLOTS - 1).address() < Ipv4Addr::new(100, 128, 0, 0));
        let dir = tempfile::tempdir().unwrap();
        let slots = Slots::new(dir.path()).unwrap();
        let a = slots.take("a").unwrap();
        let b = slots.take("b").unwrap();
        assert_ne!(a, b);
        // Taking again for the same sandbox gives back its old slot first.
        assert_eq!(slots.take("a").unwrap(), a);
        slots.release("a");
        assert_eq!(
            std::fs::read_dir(dir.path().join("net")).unwrap().count(),
            1
        );
    }
}
