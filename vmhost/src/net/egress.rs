//! Network policies, kept: each running sprite's resolver (see
//! [`super::resolver`]) decides names by its policy, and this instance's
//! nftables table (`inet sprites-policy-<instance>`) lets a sprite under a
//! policy open connections only to addresses its resolver gave for allowed
//! names, for their TTL:
//!
//! - `restricted`: the addresses of sprites under a policy;
//! - `admitted`: `sprite . destination` pairs, each with its timeout;
//! - `revoked`: pairs whose connections a policy change cut; their packets
//!   are refused even mid-connection, until the resolver gives the
//!   address for an allowed name again.
//!
//! A refused TCP connection is reset and anything else answered "prohibited",
//! so programs fail at once rather than time out.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use std::process::Command;

use super::policy::Policy;
use super::{run, Slot};
use crate::error::Result;

/// An address the resolver gave stays admitted at least this long: a
/// program connects right after it resolves, even with a TTL of 0.
const MIN_ADMIT: Duration = Duration::from_secs(30);
/// ... and at most this long, whatever the TTL says.
const MAX_ADMIT: Duration = Duration::from_secs(3600);
/// Addresses remembered per sprite (with the names they were given for).
const MAX_SEEN: usize = 4096;
/// Names remembered per address.
const MAX_NAMES: usize = 16;

/// The policies of one instance's running sprites.
pub(crate) struct Egress {
    table: String,
    upstream: Arc<Vec<SocketAddr>>,
    sprites: Mutex<HashMap<String, Arc<SpriteNet>>>,
}

impl Egress {
    /// Installs the instance's table. Its rules are replaced; its sets are
    /// kept, as another process of the same host (the `vmhost` command
    /// beside the server) may be keeping them. Elements of sprites that
    /// stopped meanwhile go as their addresses are taken again
    /// ([`Egress::start`] sets an address's membership either way), and
    /// admissions time out.
    pub fn install(instance: &str, upstream: Vec<SocketAddr>) -> Result<Egress> {
        let table = format!("sprites-policy-{instance}");
        let rules = format!(
            "add table inet {table}
add set inet {table} restricted {{ type ipv4_addr; }}
add set inet {table} admitted {{ type ipv4_addr . ipv4_addr; flags timeout; }}
add set inet {table} revoked {{ type ipv4_addr . ipv4_addr; }}
add chain inet {table} forward {{ type filter hook forward priority 0; policy accept; }}
flush chain inet {table} forward
table inet {table} {{
  chain forward {{
    ip saddr @restricted ip saddr . ip daddr @revoked meta l4proto tcp reject with tcp reset
    ip saddr @restricted ip saddr . ip daddr @revoked reject with icmpx type admin-prohibited
    ct state new ip saddr @restricted ip saddr . ip daddr != @admitted meta l4proto tcp reject with tcp reset
    ct state new ip saddr @restricted ip saddr . ip daddr != @admitted reject with icmpx type admin-prohibited
  }}
}}
"
        );
        nft(&rules)?;
        Ok(Egress {
            table,
            upstream: Arc::new(upstream),
            sprites: Mutex::new(HashMap::new()),
        })
    }

    /// Serves the running sprite `id` (its init is `pid`, its link in
    /// `slot`, made just now when `new_link`) its resolver, under `policy`.
    /// Runs on a blocking thread, before any command of the sprite: it
    /// never meets its network without its policy. A re-adopted sprite
    /// (another process of the host may be serving it too) only has its
    /// membership of `restricted` made sure of; a new link's address drops
    /// whatever an earlier holder left in the sets.
    pub fn start(
        &self,
        id: &str,
        pid: i32,
        slot: Slot,
        policy: Policy,
        new_link: bool,
        rt: &tokio::runtime::Handle,
    ) -> Result<()> {
        self.stop(id, None);
        let restricts = policy.restricts();
        let net = Arc::new(SpriteNet {
            addr: slot.address(),
            table: self.table.clone(),
            policy: RwLock::new(Arc::new(policy)),
            seen: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
            ever_restricted: AtomicBool::new(restricts),
        });
        if restricts {
            let mut script = String::new();
            net.restrict_lines(&mut script, new_link);
            if let Err(e) = nft(&script) {
                // Never a link out without the policy over it.
                super::detach(slot);
                return Err(e);
            }
        }
        let tasks = super::resolver::serve(net.clone(), self.upstream.clone(), pid, rt)
            .map_err(|e| crate::error::Error::io("cannot serve the sprite's resolver", e))?;
        *net.tasks.lock().unwrap() = tasks;
        self.sprites.lock().unwrap().insert(id.to_string(), net);
        Ok(())
    }

    /// Gives the running sprite `id` its new policy, in effect when this
    /// returns (one nftables transaction): its resolver decides by it, and its
    /// connections the policy no longer allows are cut.
    pub fn set_policy(&self, id: &str, policy: Policy) -> Result<()> {
        let net = self.sprites.lock().unwrap().get(id).cloned();
        match net {
            Some(net) => net.set_policy(Arc::new(policy)),
            // Not running (or without a link): it is given it at its start.
            None => Ok(()),
        }
    }

    /// Forgets the sprite `id`, which stopped: its resolver ends and its
    /// elements leave the sets (its address, in `slot`, goes to the next
    /// sprite). One this process never started (stopped after a restart
    /// of the host) leaves `restricted` at least.
    pub fn stop(&self, id: &str, slot: Option<Slot>) {
        let Some(net) = self.sprites.lock().unwrap().remove(id) else {
            if let Some(slot) = slot {
                let _ = nft(&unrestrict_lines(&self.table, slot.address()));
            }
            return;
        };
        for task in net.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        if let Err(e) = net.clear() {
            tracing::warn!(sandbox = id, error = %e, "cannot clear the sprite's policy elements");
        }
    }
}

impl Egress {
    /// Ends every resolver of this process, returning once their sockets
    /// are closed (on drop they close at the runtime's next turn).
    pub async fn close(&self) {
        let nets: Vec<_> = self
            .sprites
            .lock()
            .unwrap()
            .drain()
            .map(|(_, n)| n)
            .collect();
        for net in nets {
            let tasks: Vec<_> = net.tasks.lock().unwrap().drain(..).collect();
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for Egress {
    /// The resolvers end with the host that serves them (the sets stay:
    /// another process of the host may keep them, see [`Egress::install`]).
    fn drop(&mut self) {
        for net in self.sprites.lock().unwrap().values() {
            for task in net.tasks.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

/// Runs an nft script.
fn nft(script: &str) -> Result<()> {
    run(Command::new("nft").arg("-f").arg("-"), "nft", Some(script))
}

/// An address the resolver gave a sprite.
struct Seen {
    names: BTreeSet<String>,
    until: Instant,
    /// Whether it is in `admitted` (until `until`).
    admitted: bool,
}

/// A running sprite's policy and what its resolver gave it.
pub(crate) struct SpriteNet {
    addr: Ipv4Addr,
    table: String,
    policy: RwLock<Arc<Policy>>,
    seen: Mutex<HashMap<Ipv4Addr, Seen>>,
    revoked: Mutex<HashSet<Ipv4Addr>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Whether it was ever under a policy here: only then has it elements.
    ever_restricted: AtomicBool,
}

impl super::resolver::Gate for SpriteNet {
    fn allows(&self, name: &str) -> bool {
        self.policy.read().unwrap().allows(name)
    }

    /// Remembers that the resolver gave `ips` (each with its TTL) for
    /// `name`, and under a policy admits them before the answer leaves.
    fn admit(&self, name: &str, ips: &[(Ipv4Addr, u32)]) -> Result<()> {
        let now = Instant::now();
        let mut script = String::new();
        {
            let mut seen = self.seen.lock().unwrap();
            if seen.len() + ips.len() > MAX_SEEN {
                seen.retain(|_, s| s.until > now);
                while seen.len() + ips.len() > MAX_SEEN {
                    let oldest = *seen.iter().min_by_key(|(_, s)| s.until).unwrap().0;
                    seen.remove(&oldest);
                }
            }
            let restricted = self.restricted();
            let mut revoked = self.revoked.lock().unwrap();
            for &(ip, ttl) in ips {
                let lasting = Duration::from_secs(ttl.into()).clamp(MIN_ADMIT, MAX_ADMIT);
                let s = seen.entry(ip).or_insert_with(|| Seen {
                    names: BTreeSet::new(),
                    until: now,
                    admitted: false,
                });
                if s.names.len() < MAX_NAMES {
                    s.names
                        .insert(name.trim_end_matches('.').to_ascii_lowercase());
                }
                // Admitted for long enough already: no nftables round trip
                // for every lookup of a busy name.
                let fresh = s.admitted && s.until > now + lasting / 2;
                s.until = s.until.max(now + lasting);
                if restricted && !fresh {
                    self.admit_line(&mut script, ip, s.until - now);
                    s.admitted = true;
                }
                if revoked.remove(&ip) {
                    self.remove_line(&mut script, "revoked", ip);
                }
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        nft(&script)
    }
}

impl SpriteNet {
    fn restricted(&self) -> bool {
        self.policy.read().unwrap().restricts()
    }

    /// Puts `policy` in force; see [`Egress::set_policy`].
    fn set_policy(&self, policy: Arc<Policy>) -> Result<()> {
        let was = self.restricted();
        let restricts = policy.restricts();
        if restricts {
            self.ever_restricted.store(true, Ordering::Relaxed);
        }
        *self.policy.write().unwrap() = policy.clone();
        let mut script = String::new();
        let addr = self.addr;
        let t = &self.table;
        let mut seen = self.seen.lock().unwrap();
        let mut revoked = self.revoked.lock().unwrap();
        if !restricts {
            if was {
                script.push_str(&unrestrict_lines(t, addr));
            }
            for ip in revoked.drain() {
                self.remove_line(&mut script, "revoked", ip);
            }
        } else {
            let now = Instant::now();
            if !was {
                self.restrict_lines(&mut script, true);
            }
            for (ip, s) in seen.iter_mut().filter(|(_, s)| s.until > now) {
                s.admitted = s.names.iter().any(|n| policy.allows(n));
                if s.admitted {
                    self.admit_line(&mut script, *ip, s.until - now);
                } else {
                    self.remove_line(&mut script, "admitted", *ip);
                }
            }
            let allowed = |ip: &Ipv4Addr| seen.get(ip).is_some_and(|s| s.until > now && s.admitted);
            // The sprite's connections to what it may no longer reach are cut.
            for ip in connections_from(addr) {
                if !allowed(&ip) && revoked.insert(ip) {
                    script.push_str(&format!(
                        "add element inet {t} revoked {{ {addr} . {ip} }}\n"
                    ));
                }
            }
            for ip in revoked
                .iter()
                .copied()
                .filter(|ip| allowed(ip))
                .collect::<Vec<_>>()
            {
                revoked.remove(&ip);
                self.remove_line(&mut script, "revoked", ip);
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        nft(&script)
    }

    /// Takes every element of the sprite out of the sets: none, and no
    /// nftables round trip, for a sprite never under a policy.
    fn clear(&self) -> Result<()> {
        if !self.ever_restricted.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut script = unrestrict_lines(&self.table, self.addr);
        let now = Instant::now();
        for (ip, _) in self
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.until > now && s.admitted)
        {
            self.remove_line(&mut script, "admitted", *ip);
        }
        for ip in self.revoked.lock().unwrap().drain() {
            self.remove_line(&mut script, "revoked", ip);
        }
        nft(&script)
    }

    /// Puts the sprite's address in `restricted`; with `purge`, after
    /// taking out the elements an earlier holder of the address may have
    /// left (a host that stopped without clearing them).
    fn restrict_lines(&self, script: &mut String, purge: bool) {
        let (addr, t) = (self.addr, &self.table);
        if purge {
            for (set, ip) in elements_of(t, addr) {
                self.remove_line(script, set, ip);
            }
        }
        script.push_str(&format!("add element inet {t} restricted {{ {addr} }}\n"));
    }

    /// Admits `ip` for `lasting` from now, whether it was admitted or not
    /// (an element's timeout is set when it is added).
    fn admit_line(&self, script: &mut String, ip: Ipv4Addr, lasting: Duration) {
        let (addr, t) = (self.addr, &self.table);
        let secs = lasting.as_secs().max(1);
        script.push_str(&format!(
            "add element inet {t} admitted {{ {addr} . {ip} timeout 1s }}\n\
             delete element inet {t} admitted {{ {addr} . {ip} }}\n\
             add element inet {t} admitted {{ {addr} . {ip} timeout {secs}s }}\n"
        ));
    }

    /// Takes `addr . ip` out of `set`, whether it is there or not (it may
    /// have timed out).
    fn remove_line(&self, script: &mut String, set: &str, ip: Ipv4Addr) {
        let (addr, t) = (self.addr, &self.table);
        let timeout = if set == "admitted" { " timeout 1s" } else { "" };
        script.push_str(&format!(
            "add element inet {t} {set} {{ {addr} . {ip}{timeout} }}\n\
             delete element inet {t} {set} {{ {addr} . {ip} }}\n"
        ));
    }
}

/// Takes `addr` out of `restricted` in table `t`, whether it is there or
/// not (a delete alone fails on an absent element).
fn unrestrict_lines(t: &str, addr: Ipv4Addr) -> String {
    format!(
        "add element inet {t} restricted {{ {addr} }}\n\
         delete element inet {t} restricted {{ {addr} }}\n"
    )
}

/// The elements of `admitted` and `revoked` in table `t` whose sprite is
/// `addr`: each set's name and the destination.
fn elements_of(t: &str, addr: Ipv4Addr) -> Vec<(&'static str, Ipv4Addr)> {
    let mut found = Vec::new();
    for set in ["admitted", "revoked"] {
        let out = Command::new("nft")
            .args(["-j", "list", "set", "inet", t, set])
            .output();
        let Ok(out) = out.map(|o| o.stdout) else {
            continue;
        };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out) else {
            continue;
        };
        let mut pairs = Vec::new();
        concats(&json, &mut pairs);
        found.extend(
            pairs
                .into_iter()
                .filter(|(s, _)| *s == addr)
                .map(|(_, d)| (set, d)),
        );
    }
    found
}

/// Every `{"concat": [a, b]}` of two addresses in nft's JSON.
fn concats(v: &serde_json::Value, out: &mut Vec<(Ipv4Addr, Ipv4Addr)>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Array(pair)) = m.get("concat") {
                let ip = |i: usize| pair.get(i)?.as_str()?.parse::<Ipv4Addr>().ok();
                if let (Some(a), Some(b)) = (ip(0), ip(1)) {
                    out.push((a, b));
                }
            }
            m.values().for_each(|x| concats(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| concats(x, out)),
        _ => {}
    }
}

/// Destinations of the connections tracked from `addr`.
fn connections_from(addr: Ipv4Addr) -> HashSet<Ipv4Addr> {
    let table = match std::fs::read_to_string("/proc/net/nf_conntrack") {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the connection tracking table; open connections stay");
            return HashSet::new();
        }
    };
    let src = format!("src={addr} ");
    table
        .lines()
        .filter(|l| l.contains(&src))
        .filter_map(|l| {
            // The first src= and dst= are the original direction.
            let mut words = l.split_whitespace();
            let s = words.find_map(|w| w.strip_prefix("src="))?;
            let d = words.find_map(|w| w.strip_prefix("dst="))?;
            (s.parse::<Ipv4Addr>().ok()? == addr).then_some(d.parse().ok()?)
        })
        .collect()
}
