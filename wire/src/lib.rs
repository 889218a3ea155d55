//! Types that cross the wire between the server, the web app and the CLI.
//!
//! This crate does no I/O so it compiles to WebAssembly unchanged.

pub mod accounts;
pub mod api;
pub mod classes;
pub mod client;
pub mod control;
pub mod fs;
pub mod names;
pub mod orgs;
pub mod policy;
pub mod ports;
pub mod services;

pub use names::{CheckpointId, NameError, SpriteName};

#[cfg(feature = "schema")]
pub use schemars;

/// The version of this system: the server's (the `Sprite-Version` header),
/// and sprite-init's, which a sprite reports as its own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The first label of a sprite's URL host name: `<sprite>-<org>` (the
/// host is `<sprite>-<org>.<base domain>`). Names and slugs may both hold
/// hyphens, so two sprites could share one; the server refuses the second.
pub fn url_label(sprite: &str, org: &str) -> String {
    format!("{sprite}-{org}")
}

/// A duration as the SDKs write one: `10`, `10s`, `1.5s`, `500ms`, `2m`,
/// `1h`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(m) = t.strip_suffix('m') {
        (m, 60.0)
    } else if let Some(h) = t.strip_suffix('h') {
        (h, 3600.0)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    num.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && s * scale < 1e9)
        .map(|s| std::time::Duration::from_secs_f64(s * scale))
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
    fn durations_read_as_the_sdks_write_them() {
        use std::time::Duration;
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(206_000_000), "206.0 MB");
    }
}
