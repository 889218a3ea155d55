//! Following a sprite's files as they change (`Host::watch`), for file
//! trees and editors that stay true, and for the SDKs' `fs.watch`.
//!
//! The sprite's disk is a directory of the host, so the host watches it
//! with inotify, whichever phase the sprite is in. Paths come from the
//! caller and the disk's contents from the tenant, so nothing is looked up
//! by a host path that a symlink could turn elsewhere:
//!
//! 1. Each watched path is opened inside the sprite's root (`openat2` with
//!    `RESOLVE_IN_ROOT`, as every file operation is), and each folder below
//!    it by name from its parent's descriptor with `O_NOFOLLOW`.
//! 2. The watch is added on `/proc/self/fd/<n>`, which names exactly the
//!    opened inode; then the descriptor is closed (the watch keeps it).
//! 3. Events name entries of watched folders; their paths are the folder's
//!    path in the sprite and the entry's name. A folder made later under a
//!    recursive watch is opened from its path again (step 1), and what was
//!    made in it before its watch was added is reported as made then (a
//!    file with its size), since no event of the kernel tells of it.
//! 4. A restore puts a new disk in place: when the sprite's phase changes,
//!    the watcher compares the disk's root with the one it watches and,
//!    if it was replaced, watches the new one from scratch.
//!
//! The stream ends when the sprite is destroyed or the caller drops it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use rustix::fs::{Mode, OFlags};
use sprites_wire::SpriteName;

use crate::error::{Error, Result};
use crate::fs::SpriteFs;
use crate::sprite::Host;

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsChange {
    Create,
    Write,
    Remove,
    /// Moved away from this path (its new path, if watched, is a create).
    Rename,
    /// Mode, owner or times changed.
    Chmod,
}

impl FsChange {
    /// The word the SDKs use.
    pub fn as_str(self) -> &'static str {
        match self {
            FsChange::Create => "create",
            FsChange::Write => "write",
            FsChange::Remove => "remove",
            FsChange::Rename => "rename",
            FsChange::Chmod => "chmod",
        }
    }
}

/// One change under a watched path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FsEvent {
    /// The path in the sprite.
    pub path: String,
    pub change: FsChange,
    pub is_dir: bool,
    /// The size after a write, when it could be read.
    pub size: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

/// The most folders one watch follows; beyond, it tells the caller.
pub const MAX_FOLDERS: usize = 20_000;
/// Writes to one path closer together than this are one event.
const WRITE_GAP: Duration = Duration::from_millis(50);

/// Changes under the watched paths, in order.
pub struct FsWatch {
    rx: tokio::sync::mpsc::Receiver<Result<FsEvent>>,
    task: tokio::task::JoinHandle<()>,
}

impl FsWatch {
    /// The changes `task` sends to `rx`; dropping the watch stops it.
    pub(crate) fn from_task(
        rx: tokio::sync::mpsc::Receiver<Result<FsEvent>>,
        task: tokio::task::JoinHandle<()>,
    ) -> FsWatch {
        FsWatch { rx, task }
    }

    /// The next change; `None` once the sprite is gone. An `Err` says
    /// what could not be watched and the stream goes on.
    pub async fn next(&mut self) -> Option<Result<FsEvent>> {
        self.rx.recv().await
    }
}

impl Drop for FsWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Host {
    /// Follows changes to `paths` (absolute paths in the sprite, folders or
    /// files) and, with `recursive`, to every folder below them, those made
    /// later included. Allowed in every phase: a sleeping sprite's disk is
    /// there too. A path that does not exist is an error now.
    pub async fn watch(
        &self,
        name: &SpriteName,
        paths: &[String],
        recursive: bool,
    ) -> Result<FsWatch> {
        if paths.is_empty() || paths.len() > 256 {
            return Err(Error::Invalid("watch between 1 and 256 paths".into()));
        }
        // A disk only in the bucket comes back first.
        let files = self.files_here(name).await?;
        let root = self.root_path(name)?;
        let ids = self.config().ids;
        let mut watcher = Watcher::new(paths.to_vec(), recursive)?;
        let mut warnings = Vec::new();
        watcher.watch_all(&files, &mut warnings)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        for w in warnings {
            let _ = tx.try_send(Err(w));
        }
        let events = self.subscribe();
        let name = name.clone();
        let task = tokio::spawn(async move {
            watcher
                .run(Disk { root, ids }, name, files, events, tx)
                .await;
        });
        Ok(FsWatch { rx, task })
    }
}

/// Where the sprite's disk is, to open it again after a restore.
struct Disk {
    root: PathBuf,
    ids: crate::runtime::IdMap,
}

/// Which disk was watched: a restore swaps it for another subvolume, and
/// subvolume ids are never given twice (a device and inode number can be).
fn identity(files: &SpriteFs) -> Option<u64> {
    crate::btrfs::subvolume_id(files.root_fd()).ok()
}

struct Watcher {
    paths: Vec<String>,
    recursive: bool,
    inotify: inotify::EventStream<Vec<u8>>,
    watches: Watches,
    /// Watched inode to its path in the sprite, and whether it is a folder.
    wds: HashMap<WatchDescriptor, (String, bool)>,
    last_write: HashMap<String, Instant>,
    folders: usize,
}

fn mask(dir: bool) -> WatchMask {
    let common = WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF;
    if dir {
        common
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::EXCL_UNLINK
    } else {
        common
    }
}

fn join(dir: &str, name: &OsStr) -> String {
    let name = name.to_string_lossy();
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// An inotify instance as a stream of events, and the handle that adds
/// watches to it.
fn fresh_inotify() -> Result<(inotify::EventStream<Vec<u8>>, Watches)> {
    let inotify = Inotify::init().map_err(|e| Error::io("cannot start watching files", e))?;
    let watches = inotify.watches();
    let stream = inotify
        .into_event_stream(vec![0u8; 64 * 1024])
        .map_err(|e| Error::io("cannot start watching files", e))?;
    Ok((stream, watches))
}

impl Watcher {
    fn new(paths: Vec<String>, recursive: bool) -> Result<Watcher> {
        let (inotify, watches) = fresh_inotify()?;
        Ok(Watcher {
            paths,
            recursive,
            inotify,
            watches,
            wds: HashMap::new(),
            last_write: HashMap::new(),
            folders: 0,
        })
    }

    /// A fresh inotify instance, nothing watched.
    fn reset(&mut self) -> Result<()> {
        (self.inotify, self.watches) = fresh_inotify()?;
        self.wds.clear();
        self.folders = 0;
        Ok(())
    }

    fn add(&mut self, fd: &impl AsRawFd, path: &str, dir: bool) -> Result<()> {
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let wd = self
            .watches
            .add(&proc_path, mask(dir))
            .map_err(|e| Error::io(format!("cannot watch {path:?}"), e))?;
        self.wds.insert(wd, (path.to_string(), dir));
        if dir {
            self.folders += 1;
        }
        Ok(())
    }

    /// Watches every path asked for; folders that cannot be followed
    /// (too many, gone meanwhile) become warnings.
    fn watch_all(&mut self, files: &SpriteFs, warnings: &mut Vec<Error>) -> Result<()> {
        for path in self.paths.clone() {
            self.watch_path(files, &path, warnings, None)?;
        }
        Ok(())
    }

    fn watch_path(
        &mut self,
        files: &SpriteFs,
        path: &str,
        warnings: &mut Vec<Error>,
        found: Option<&mut Vec<(String, bool)>>,
    ) -> Result<()> {
        let (fd, dir) = files.open_for_watch(path)?;
        self.add(&fd, path, dir)?;
        if dir && self.recursive {
            self.below(fd, path, warnings, found);
        }
        Ok(())
    }

    /// Watches the folders below the open folder `fd` at `path`; with
    /// `found`, notes every entry below it (path, whether a folder).
    fn below(
        &mut self,
        fd: OwnedFd,
        path: &str,
        warnings: &mut Vec<Error>,
        mut found: Option<&mut Vec<(String, bool)>>,
    ) {
        let mut stack = vec![(fd, path.to_string())];
        while let Some((fd, path)) = stack.pop() {
            let Ok(dir) = rustix::fs::Dir::read_from(&fd) else {
                continue;
            };
            for entry in dir.flatten() {
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let is_dir = entry.file_type() == rustix::fs::FileType::Directory;
                if let Some(found) = found.as_deref_mut() {
                    let entry_name = OsStr::new(std::str::from_utf8(name).unwrap_or_default());
                    found.push((join(&path, entry_name), is_dir));
                }
                if !is_dir {
                    continue;
                }
                if self.folders >= MAX_FOLDERS {
                    warnings.push(Error::Invalid(format!(
                        "more than {MAX_FOLDERS} folders under {path:?}: the rest are not watched"
                    )));
                    return;
                }
                let name = OsStr::new(std::str::from_utf8(name).unwrap_or_default());
                if name.is_empty() {
                    continue;
                }
                let child = rustix::fs::openat(
                    &fd,
                    name,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                );
                let Ok(child) = child else { continue };
                let child_path = join(&path, name);
                match self.add(&child, &child_path, true) {
                    Ok(()) => stack.push((child, child_path)),
                    Err(e) => warnings.push(e),
                }
            }
        }
    }

    /// The change an inotify event stands for, if any.
    fn change(&mut self, mask: EventMask, path: &str) -> Option<FsChange> {
        let change = if mask.contains(EventMask::CREATE) || mask.contains(EventMask::MOVED_TO) {
            FsChange::Create
        } else if mask.contains(EventMask::DELETE) {
            FsChange::Remove
        } else if mask.contains(EventMask::MOVED_FROM) {
            FsChange::Rename
        } else if mask.contains(EventMask::ATTRIB) {
            FsChange::Chmod
        } else if mask.contains(EventMask::MODIFY) || mask.contains(EventMask::CLOSE_WRITE) {
            let now = Instant::now();
            if let Some(last) = self.last_write.get(path) {
                if now.duration_since(*last) < WRITE_GAP {
                    return None;
                }
            }
            if self.last_write.len() > 10_000 {
                self.last_write.clear();
            }
            self.last_write.insert(path.to_string(), now);
            FsChange::Write
        } else {
            return None;
        };
        if change != FsChange::Write {
            self.last_write.remove(path);
        }
        Some(change)
    }

    async fn run(
        mut self,
        disk_at: Disk,
        name: SpriteName,
        mut files: SpriteFs,
        mut phases: tokio::sync::broadcast::Receiver<crate::sprite::HostEvent>,
        tx: tokio::sync::mpsc::Sender<Result<FsEvent>>,
    ) {
        let mut disk = identity(&files);
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                event = phases.recv() => {
                    let ours = match event {
                        Ok(e) => e.sprite == name,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(_) => return,
                    };
                    if !ours {
                        continue;
                    }
                    // Destroyed, or restored onto a new disk? (While a
                    // restore swaps them there is no root for a moment,
                    // but the sprite's folder stays; a destroy moves it.)
                    let Ok(now) = SpriteFs::open(&disk_at.root, disk_at.ids) else {
                        if disk_at.root.parent().is_some_and(Path::exists) {
                            continue;
                        }
                        return;
                    };
                    let now_disk = identity(&now);
                    if now_disk != disk {
                        (files, disk) = (now, now_disk);
                        let mut warnings = Vec::new();
                        let rewatched = self.reset().and_then(|()| self.watch_all(&files, &mut warnings));
                        for w in warnings.into_iter().map(Err).chain(rewatched.err().map(Err)) {
                            if tx.send(w).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                item = self.inotify.next() => {
                    let Some(Ok(event)) = item else {
                        return;
                    };
                    if event.mask.contains(EventMask::Q_OVERFLOW) {
                        let _ = tx.send(Err(Error::Invalid("too many changes at once: some were not reported".into()))).await;
                        continue;
                    }
                    if event.mask.contains(EventMask::IGNORED) {
                        self.wds.remove(&event.wd);
                        continue;
                    }
                    let Some((base, base_dir)) = self.wds.get(&event.wd).cloned() else {
                        continue;
                    };
                    let went = if event.mask.contains(EventMask::DELETE_SELF) {
                        Some(FsChange::Remove)
                    } else if event.mask.contains(EventMask::MOVE_SELF) {
                        Some(FsChange::Rename)
                    } else {
                        None
                    };
                    let (path, is_dir, change) = match (&event.name, went) {
                        (Some(n), _) => {
                            let path = join(&base, n);
                            let change = self.change(event.mask, &path);
                            (path, event.mask.contains(EventMask::ISDIR), change)
                        }
                        // A watched folder or file itself went: its parent
                        // reports it when watched; a top path reports here.
                        (None, Some(_)) if !self.paths.contains(&base) => continue,
                        (None, Some(change)) => (base, base_dir, Some(change)),
                        (None, None) => {
                            let change = self.change(event.mask, &base);
                            (base, base_dir, change)
                        }
                    };
                    let Some(change) = change else { continue };
                    // A folder made under a recursive watch is watched from
                    // now; what was made in it before that is reported as
                    // made (a file with its size by then).
                    let mut found = Vec::new();
                    if change == FsChange::Create && is_dir && self.recursive {
                        let mut warnings = Vec::new();
                        if let Err(e) = self.watch_path(&files, &path, &mut warnings, Some(&mut found)) {
                            warnings.push(e);
                        }
                        for w in warnings {
                            let _ = tx.send(Err(w)).await;
                        }
                    }
                    let size = match change {
                        FsChange::Write => files.size_of(&path),
                        _ => None,
                    };
                    let at = crate::now_ms();
                    let inside = found.into_iter().map(|(path, is_dir)| {
                        let size = if is_dir { None } else { files.size_of(&path) };
                        FsEvent { path, change: FsChange::Create, is_dir, size, at }
                    });
                    let first = FsEvent { path, change, is_dir, size, at };
                    for out in std::iter::once(first).chain(inside) {
                        if tx.send(Ok(out)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}
