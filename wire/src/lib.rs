//! Types that cross the wire between the server, the web app and the CLI.
//!
//! This crate does no I/O so it compiles to WebAssembly unchanged.

pub mod accounts;
pub mod api;
pub mod classes;
pub mod client;
pub mod fs;
pub mod names;
pub mod orgs;
pub mod services;

pub use names::{CheckpointId, NameError, SpriteName};

#[cfg(feature = "schema")]
pub use schemars;

/// The first label of a sprite's URL host name: `<sprite>-<org>` (the
/// host is `<sprite>-<org>.<base domain>`). Names and slugs may both hold
/// hyphens, so two sprites could share one; the server refuses the second.
pub fn url_label(sprite: &str, org: &str) -> String {
    format!("{sprite}-{org}")
}

/// A byte count for people, in decimal units as disks are sold: `0 B`,
/// `999 B`, `1.5 KB`, `206.0 MB`. The CLI and the web app print sizes alike.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(206_000_000), "206.0 MB");
    }
}
