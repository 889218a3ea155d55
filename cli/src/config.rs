//! Where the CLI keeps its server URL and token, and the current sprite.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub url: String,
    pub token: String,
}

fn path() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| anyhow::anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(base.join("sprites").join("config.json"))
}

/// Writes the configuration readable by its owner only.
pub fn save(cfg: &Config) -> anyhow::Result<()> {
    let p = path()?;
    std::fs::create_dir_all(p.parent().unwrap())?;
    let tmp = p.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(serde_json::to_string_pretty(cfg)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, p)?;
    Ok(())
}

pub fn load() -> anyhow::Result<Config> {
    let p = path()?;
    let data = std::fs::read(&p)
        .map_err(|_| anyhow::anyhow!("not logged in: run `sprite login --url URL`"))?;
    Ok(serde_json::from_slice(&data)?)
}

pub fn forget() -> anyhow::Result<()> {
    match std::fs::remove_file(path()?) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The name in the nearest `.sprite` file, from here up.
pub fn current_sprite() -> Option<String> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        if let Ok(name) = std::fs::read_to_string(dir.join(".sprite")) {
            return Some(name.trim().to_string()).filter(|n| !n.is_empty());
        }
        if !dir.pop() {
            return None;
        }
    }
}
