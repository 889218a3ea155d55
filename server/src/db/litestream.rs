//! The SQLite database's replica, by Litestream: with an object store and
//! a SQLite database, the server writes Litestream's configuration (the
//! database, and `<prefix>/db` in the same bucket) and keeps `litestream
//! replicate` running beside it, restarting it when it stops; `admin
//! recover` runs `litestream restore` with the same configuration.
//!
//! Credentials reach Litestream the way they reach the server, through the
//! `AWS_*` variables it inherits: none are written to disk. A PostgreSQL
//! database is backed up by its own operator's means and needs nothing here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// Where `scripts/setup` installs Litestream when it is not on PATH.
const INSTALLED: &str = "/var/cache/sprites/litestream/bin/litestream";

/// What Litestream needs to know of the object store.
#[derive(Debug, Clone)]
pub struct Replica {
    /// `s3://bucket` or `s3://bucket/prefix`, as given to the server.
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// The `litestream` executable: `$SPRITES_LITESTREAM`, else on PATH, else
/// where scripts/setup puts it.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SPRITES_LITESTREAM") {
        return Ok(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("litestream"))
        .find(|p| p.is_file());
    let found = on_path.or_else(|| Some(PathBuf::from(INSTALLED)).filter(|p| p.is_file()));
    found.context(
        "litestream is not installed (scripts/setup installs it; or set SPRITES_LITESTREAM): \
         it replicates the SQLite database to the object store",
    )
}

/// The SQLite file of a `sqlite://` database URL; `None` for PostgreSQL.
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some(PathBuf::from(path))
}

/// Writes Litestream's configuration for `db` into `dir`; returns its path.
pub fn write_config(dir: &Path, db: &Path, replica: &Replica) -> anyhow::Result<PathBuf> {
    let rest = replica
        .url
        .strip_prefix("s3://")
        .context("the object store is written s3://bucket or s3://bucket/prefix")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let path = if prefix.is_empty() {
        "db".to_string()
    } else {
        format!("{prefix}/db")
    };
    let endpoint = replica
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let region = replica
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok());
    // JSON is YAML: every value quoted and escaped by serde.
    let mut s3 = serde_json::json!({
        "type": "s3",
        "bucket": bucket,
        "path": path,
        "force-path-style": true,
        "sync-interval": "1s",
    });
    if let Some(endpoint) = endpoint {
        s3["endpoint"] = endpoint.into();
    }
    if let Some(region) = region {
        s3["region"] = region.into();
    }
    let config = serde_json::json!({
        "dbs": [{ "path": db, "replica": s3 }],
    });
    let file = dir.join("litestream.yml");
    std::fs::write(&file, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

/// Keeps `litestream replicate` running for the database at `db` until the
/// server stops; it dies with the server, even by SIGKILL.
pub fn spawn(config: PathBuf) -> anyhow::Result<()> {
    let bin = binary()?;
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            let started = std::time::Instant::now();
            match command(&bin, &config).spawn() {
                Ok(mut child) => {
                    tracing::info!(config = %config.display(), "litestream replicates the database");
                    match child.wait().await {
                        Ok(status) => {
                            tracing::warn!(%status, "litestream stopped; starting it again")
                        }
                        Err(e) => tracing::warn!(error = %e, "litestream: cannot wait"),
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, bin = %bin.display(), "cannot start litestream")
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    });
    Ok(())
}

/// `litestream` with the server's environment but `AWS_CA_BUNDLE`: with
/// it, Litestream's AWS SDK refuses its own HTTP client ("unable to add
/// custom RootCAs HTTPClient") and replicates nothing; it trusts the
/// system's roots without it.
fn litestream(bin: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_remove("AWS_CA_BUNDLE");
    cmd
}

fn command(bin: &Path, config: &Path) -> tokio::process::Command {
    let mut cmd = litestream(bin);
    cmd.arg("replicate")
        .arg("-config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Restores the database at `db` from the bucket (it must not exist).
pub async fn restore(config: &Path, db: &Path) -> anyhow::Result<()> {
    let bin = binary()?;
    let out = litestream(&bin)
        .arg("restore")
        .arg("-config")
        .arg(config)
        .arg("-o")
        .arg(db)
        .arg(db)
        .output()
        .await
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "litestream could not restore the database: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/sprites/sprites.db"),
            Some(PathBuf::from("/var/lib/sprites/sprites.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://x.db?mode=rwc"),
            Some(PathBuf::from("x.db"))
        );
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }

    #[test]
    fn the_config_keeps_the_database_beside_the_sprites() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica {
            url: "s3://bucket/some/prefix/".into(),
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
        };
        let file = write_config(dir.path(), Path::new("/d/s.db"), &replica).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let r = &v["dbs"][0]["replica"];
        assert_eq!(v["dbs"][0]["path"], "/d/s.db");
        assert_eq!(r["bucket"], "bucket");
        assert_eq!(r["path"], "some/prefix/db");
        assert_eq!(r["endpoint"], "http://127.0.0.1:3900");
        assert!(write_config(
            dir.path(),
            Path::new("/d/s.db"),
            &Replica {
                url: "b".into(),
                endpoint: None,
                region: None
            }
        )
        .is_err());
    }
}
