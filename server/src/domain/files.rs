//! A sprite's files as a caller reaches them, in the shapes of the Sprites
//! SDKs' filesystem API. Paths are absolute inside the sprite, or relative
//! to a working directory; every one is confined to the sprite's root by
//! `vmhost::fs`. Files work in every phase: a sleeping sprite stays asleep.

use axum::body::Bytes;
use sprites_wire::fs::{Chmod, Chown, FileEntry, Listing, Mkdir, Move, Owner};
use vmhost::fs::{Entry, Files, IdTable, Kind};

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// `path` made absolute against `working_dir` (default `/`).
fn resolve(path: &str, working_dir: Option<&str>) -> Result<String, ApiError> {
    if path.is_empty() {
        return Err(ApiError::Invalid("path: give a path".into()));
    }
    if path.starts_with('/') {
        return Ok(path.to_string());
    }
    let base = working_dir.filter(|w| !w.is_empty()).unwrap_or("/");
    Ok(format!("{}/{path}", base.trim_end_matches('/')))
}

/// An octal mode: `0644`, `755`, `0o600`.
pub fn mode_of(text: &str) -> Result<u32, ApiError> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| ApiError::Invalid(format!("mode {text:?}: octal, like 0644")))
}

fn entry(e: &Entry) -> FileEntry {
    FileEntry {
        name: e.name.clone(),
        path: e.path.clone(),
        size: e.size,
        mode: format!("{:04o}", e.mode),
        mod_time: crate::db::iso_secs(e.modified.max(0) as u64),
        is_dir: e.kind == Kind::Dir,
        kind: e.kind,
        uid: e.uid,
        gid: e.gid,
        link_target: e.link_target.clone(),
    }
}

/// Where a call acts: the caller's sprite `name` and a path in it.
pub struct Place<'a> {
    pub sprite: &'a str,
    pub path: &'a str,
    pub working_dir: Option<&'a str>,
}

/// The files of the caller's sprite `sprite`, as they are or (`checkpoint`)
/// as they were, and `path` made absolute against `working_dir`.
async fn open(
    state: &AppState,
    caller: &Caller,
    sprite: &str,
    checkpoint: Option<&str>,
    (path, working_dir): (&str, Option<&str>),
) -> Result<(Files, String), ApiError> {
    let host = access::host_sprite(state, caller, sprite).await?;
    let files = match checkpoint {
        None => state.host.sprite_files(&host).await?,
        Some(id) => {
            let id = id
                .parse()
                .map_err(|_| ApiError::NotFound(format!("checkpoint {id}")))?;
            state.host.checkpoint_files(&host, id).await?
        }
    };
    Ok((files, resolve(path, working_dir)?))
}

impl Place<'_> {
    /// [`open`] at this place, as the sprite is now.
    async fn open(&self, state: &AppState, caller: &Caller) -> Result<(Files, String), ApiError> {
        open(
            state,
            caller,
            self.sprite,
            None,
            (self.path, self.working_dir),
        )
        .await
    }
}

/// The most entries a recursive listing gathers before it is refused.
pub const MAX_LISTED: usize = 20_000;

/// Which entries a listing gives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Listed<'a> {
    /// Everything below the folder, not only its own entries; each named
    /// by its path below the folder (`src/main.rs`).
    pub recursive: bool,
    /// Only those whose name (path below the folder, when recursive)
    /// matches this glob (`*.rs`, `src/**/*.rs`).
    pub pattern: Option<&'a str>,
}

/// A directory's entries, or the one entry of a file.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    at: Place<'_>,
    what: Listed<'_>,
) -> Result<Listing, ApiError> {
    let pattern = what
        .pattern
        .map(glob::Pattern::new)
        .transpose()
        .map_err(|e| ApiError::Invalid(format!("pattern: {e}")))?;
    let (fs, path) = at.open(state, caller).await?;
    let (me, entries) = match what.recursive {
        true => fs.walk(&path, MAX_LISTED).await?,
        false => fs.list_or_stat(&path).await?,
    };
    let is_dir = me.kind == Kind::Dir;
    let below = |e: &Entry| match (is_dir, e.path.strip_prefix(&me.path)) {
        (true, Some(rest)) => rest.trim_start_matches('/').to_string(),
        _ => e.name.clone(),
    };
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let entries = entries
        .iter()
        .map(|e| FileEntry {
            name: if what.recursive {
                below(e)
            } else {
                e.name.clone()
            },
            ..entry(e)
        })
        .filter(|e| {
            pattern
                .as_ref()
                .is_none_or(|p| p.matches_with(&e.name, options))
        })
        .collect();
    Ok(Listing {
        path: me.path.clone(),
        is_dir,
        entries,
    })
}

/// A file opened to be read as it streams out, and its size; as it was at
/// checkpoint `checkpoint` when given (the history view's diff). No size
/// is too large: the bytes never gather in memory.
pub async fn read(
    state: &AppState,
    caller: &Caller,
    at: Place<'_>,
    checkpoint: Option<&str>,
) -> Result<(vmhost::fs::Reader, u64), ApiError> {
    let place = (at.path, at.working_dir);
    let (fs, path) = open(state, caller, at.sprite, checkpoint, place).await?;
    Ok(fs.open_read(&path).await?)
}

/// The bytes of a file [`read`] opened, in pieces of at most 64 KiB, up to
/// the size it had when opened.
pub fn chunks(
    (file, size): (vmhost::fs::Reader, u64),
) -> tokio_util::io::ReaderStream<tokio::io::Take<vmhost::fs::Reader>> {
    use tokio::io::AsyncReadExt;
    tokio_util::io::ReaderStream::with_capacity(file.take(size), 64 << 10)
}

/// Writes a file from `data` as it arrives (making its folders with
/// `parents`): it takes its name only once whole, so a write cut short
/// leaves the old file; the sprite's disk quota is its only size limit.
/// The others sharing the sprite hear of it.
pub async fn write<E: std::fmt::Display>(
    state: &AppState,
    caller: &Caller,
    at: Place<'_>,
    (mode, parents): (Option<&str>, bool),
    data: impl futures_util::Stream<Item = Result<Bytes, E>>,
) -> Result<FileEntry, ApiError> {
    let (fs, path) = at.open(state, caller).await?;
    let mode = mode.map(mode_of).transpose()?;
    let mut file = fs.create(&path, mode, parents).await?;
    let mut data = std::pin::pin!(data);
    while let Some(chunk) = futures_util::StreamExt::next(&mut data).await {
        let chunk = chunk
            .map_err(|e| ApiError::Invalid(format!("the file's bytes stopped arriving: {e}")))?;
        file.write(&chunk).await?;
    }
    let e = file.finish().await?;
    state
        .events
        .file_written(&caller.org_id, at.sprite, &path, &caller.handle);
    Ok(entry(&e))
}

pub async fn remove(
    state: &AppState,
    caller: &Caller,
    at: Place<'_>,
    recursive: bool,
) -> Result<(), ApiError> {
    let (fs, path) = at.open(state, caller).await?;
    Ok(fs.remove(&path, recursive).await?)
}

pub async fn mkdir(
    state: &AppState,
    caller: &Caller,
    sprite: &str,
    req: Mkdir,
) -> Result<FileEntry, ApiError> {
    let place = (req.path.as_str(), req.working_dir.as_deref());
    let (fs, path) = open(state, caller, sprite, None, place).await?;
    Ok(entry(&fs.mkdir(&path, req.parents).await?))
}

/// Renames `req.source` to `req.dest`, or (`copy`) copies it there.
pub async fn rename_or_copy(
    state: &AppState,
    caller: &Caller,
    sprite: &str,
    req: Move,
    copy: bool,
) -> Result<FileEntry, ApiError> {
    let wd = req.working_dir.as_deref();
    let (fs, from) = open(state, caller, sprite, None, (&req.source, wd)).await?;
    let to = resolve(&req.dest, wd)?;
    let e = if copy {
        let keep = req.preserve_attrs.unwrap_or(false);
        fs.copy(&from, &to, req.recursive.unwrap_or(true), keep)
            .await?
    } else {
        fs.rename(&from, &to).await?
    };
    Ok(entry(&e))
}

pub async fn chmod(
    state: &AppState,
    caller: &Caller,
    sprite: &str,
    req: Chmod,
) -> Result<FileEntry, ApiError> {
    let place = (req.path.as_str(), req.working_dir.as_deref());
    let (fs, path) = open(state, caller, sprite, None, place).await?;
    let mode = mode_of(&req.mode)?;
    Ok(entry(&fs.chmod(&path, mode, req.recursive).await?))
}

pub async fn chown(
    state: &AppState,
    caller: &Caller,
    sprite: &str,
    req: Chown,
) -> Result<FileEntry, ApiError> {
    if req.uid.is_none() && req.gid.is_none() {
        return Err(ApiError::Invalid("uid or gid: give one or both".into()));
    }
    let place = (req.path.as_str(), req.working_dir.as_deref());
    let (fs, path) = open(state, caller, sprite, None, place).await?;
    let uid = id_of(&fs, IdTable::Users, req.uid).await?;
    let gid = id_of(&fs, IdTable::Groups, req.gid).await?;
    Ok(entry(&fs.chown(&path, uid, gid, req.recursive).await?))
}

/// An owner's id: given, or looked up by name in the sprite's own tables.
async fn id_of(fs: &Files, table: IdTable, who: Option<Owner>) -> Result<Option<u32>, ApiError> {
    Ok(match who {
        None => None,
        Some(Owner::Id(id)) => Some(id),
        Some(Owner::Name(name)) => match name.parse() {
            Ok(id) => Some(id),
            Err(_) => Some(fs.id_of(table, &name).await?),
        },
    })
}

/// Who follows changes to a sprite's files (the file-watch WebSocket).
pub struct Watcher {
    state: AppState,
    host: vmhost::SpriteName,
}

/// A watcher of the caller's sprite `name`.
pub async fn watcher(state: &AppState, caller: &Caller, name: &str) -> Result<Watcher, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    Ok(Watcher {
        state: state.clone(),
        host,
    })
}

impl Watcher {
    /// Changes to `paths` (absolute) and, with `recursive`, to everything
    /// below them.
    pub async fn watch(
        &self,
        paths: &[String],
        recursive: bool,
    ) -> Result<vmhost::FsWatch, ApiError> {
        Ok(self.state.host.watch(&self.host, paths, recursive).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_working_directory() {
        assert_eq!(resolve("/etc/hosts", Some("/root")).unwrap(), "/etc/hosts");
        assert_eq!(
            resolve("notes.txt", Some("/root/")).unwrap(),
            "/root/notes.txt"
        );
        assert_eq!(resolve("notes.txt", None).unwrap(), "/notes.txt");
        assert!(resolve("", None).is_err());
        assert_eq!(mode_of("0755").unwrap(), 0o755);
        assert_eq!(mode_of("644").unwrap(), 0o644);
        assert!(mode_of("rwx").is_err());
        assert!(mode_of("77777").is_err());
    }
}
