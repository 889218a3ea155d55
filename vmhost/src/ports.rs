//! The TCP ports a sprite listens on: its network namespace's
//! `/proc/<init>/net/tcp` and `tcp6` (read from the host, through its
//! init), with the process holding each, found by the socket's inode among
//! the file descriptors of the sprite's processes.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use sprites_wire::ports::Port;

/// `LISTEN` in the kernel's table.
const LISTEN: &str = "0A";

/// A listening socket: its port, its address and its inode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Listening {
    pub port: u16,
    pub address: String,
    pub inode: u64,
}

/// The listening sockets of `table`, the text of a `/proc/net/tcp` or
/// `tcp6`.
pub(crate) fn parse(table: &str) -> Vec<Listening> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != LISTEN {
                return None;
            }
            let (addr, port) = f[1].split_once(':')?;
            Some(Listening {
                port: u16::from_str_radix(port, 16).ok()?,
                address: address(addr)?,
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// An address as the kernel's table writes it: 32-bit words in hex, each
/// in the machine's byte order.
fn address(hex: &str) -> Option<String> {
    let words: Option<Vec<[u8; 4]>> = hex
        .as_bytes()
        .chunks(8)
        .map(|w| {
            let w = std::str::from_utf8(w).ok()?;
            Some(u32::from_str_radix(w, 16).ok()?.to_ne_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match bytes.len() {
        4 => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(Ipv6Addr::from(b).to_string())
        }
        _ => None,
    }
}

/// The ports the sprite whose init is `pid` listens on, one entry per port
/// and address. `owners` maps sockets' inodes to the sprite's pids across
/// calls: only sockets new since the last call are looked for.
pub(crate) fn listening(pid: i32, owners: &mut HashMap<u64, u32>) -> std::io::Result<Vec<Port>> {
    let mut found = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        match std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            Ok(text) => found.extend(parse(&text)),
            Err(e) if table == "tcp6" && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    owners.retain(|inode, _| found.iter().any(|l| l.inode == *inode));
    let unknown: BTreeSet<u64> = found
        .iter()
        .map(|l| l.inode)
        .filter(|i| !owners.contains_key(i))
        .collect();
    if !unknown.is_empty() {
        find_owners(pid, &unknown, owners);
    }
    let mut seen = BTreeSet::new();
    Ok(found
        .into_iter()
        .filter(|l| seen.insert((l.port, l.address.clone())))
        .map(|l| Port {
            pid: owners.get(&l.inode).copied().unwrap_or(0),
            port: l.port,
            address: l.address,
        })
        .collect())
}

/// Looks for the processes holding the sockets `inodes` among those in
/// the network namespace of `pid`, recording each as the sprite numbers
/// it.
fn find_owners(pid: i32, inodes: &BTreeSet<u64>, owners: &mut HashMap<u64, u32>) {
    let Ok(netns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
        return;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut left = inodes.len();
    for p in procs.flatten() {
        let Some(host_pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_link(p.path().join("ns/net")).ok().as_ref() != Some(&netns) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if let Some(inode) = inode.filter(|i| inodes.contains(i) && !owners.contains_key(i)) {
                owners.insert(inode, inner_pid(host_pid).unwrap_or(0));
                left -= 1;
                if left == 0 {
                    return;
                }
            }
        }
    }
}

/// The pid the sprite knows host process `pid` by (the last of `NSpid`).
fn inner_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_tables_read_as_listening_ports() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 678 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 20 4 30 10 -1\n";
        let l = parse(tcp);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(
            (l[0].port, l[0].address.as_str(), l[0].inode),
            (8080, "127.0.0.1", 12345)
        );
        assert_eq!((l[1].port, l[1].address.as_str()), (80, "0.0.0.0"));
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0\n";
        let l = parse(tcp6);
        assert_eq!((l[0].port, l[0].address.as_str()), (8081, "::"));
        assert_eq!((l[1].port, l[1].address.as_str()), (3000, "::1"));
    }
}
