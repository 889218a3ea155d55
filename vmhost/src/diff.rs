//! Which paths differ between two trees of one sprite (two checkpoints, or
//! a checkpoint and the live root).
//!
//! Snapshots keep inode numbers and change times, so an entry whose type,
//! inode, size, mode, owner, mtime and ctime are all equal on both sides is
//! the same file; only directories are descended into. Walking is done with
//! directory descriptors and `O_NOFOLLOW`, so a tenant who swaps a directory
//! for a symlink mid-walk cannot steer it outside the tree.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, Stat};

use sprites_wire::{CheckpointId, SpriteName};

use crate::error::{Error, Result};
use crate::fs::Kind;
use crate::sprite::Host;

/// A path that changed, and how: the API's types.
pub use sprites_wire::api::{ChangeKind, PathChange as Change};

/// Reports at most this many changes; a diff is for people to read.
const MAX_CHANGES: usize = 100_000;

fn kind(st: &Stat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

fn same(a: &Stat, b: &Stat) -> bool {
    a.st_mode == b.st_mode
        && a.st_ino == b.st_ino
        && a.st_size == b.st_size
        && a.st_uid == b.st_uid
        && a.st_gid == b.st_gid
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
        && a.st_ctime == b.st_ctime
        && a.st_ctime_nsec == b.st_ctime_nsec
}

fn open_dir(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn entries(dir: &OwnedFd) -> rustix::io::Result<BTreeMap<OsString, Stat>> {
    let mut out = BTreeMap::new();
    for n in crate::fs::dir_names(dir)? {
        match rustix::fs::statat(dir, &n, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                out.insert(n, st);
            }
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn walk(a: &OwnedFd, b: &OwnedFd, base: &str, out: &mut Vec<Change>) -> rustix::io::Result<()> {
    let (ea, eb) = (entries(a)?, entries(b)?);
    let path = |n: &OsStr| format!("{base}/{}", n.to_string_lossy());
    for (name, sa) in &ea {
        if out.len() >= MAX_CHANGES {
            return Ok(());
        }
        match eb.get(name) {
            None => out.push(Change {
                path: path(name),
                change: ChangeKind::Deleted,
                kind: kind(sa),
            }),
            Some(sb) if kind(sa) != kind(sb) => {
                out.push(Change {
                    path: path(name),
                    change: ChangeKind::Deleted,
                    kind: kind(sa),
                });
                out.push(Change {
                    path: path(name),
                    change: ChangeKind::Added,
                    kind: kind(sb),
                });
            }
            Some(sb) if kind(sa) == Kind::Dir => {
                if sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid {
                    out.push(Change {
                        path: path(name),
                        change: ChangeKind::Modified,
                        kind: Kind::Dir,
                    });
                }
                match (open_dir(a, name), open_dir(b, name)) {
                    (Ok(da), Ok(db)) => walk(&da, &db, &path(name), out)?,
                    // Replaced by something else while we looked: report it changed.
                    _ => out.push(Change {
                        path: path(name),
                        change: ChangeKind::Modified,
                        kind: Kind::Dir,
                    }),
                }
            }
            Some(sb) if !same(sa, sb) => out.push(Change {
                path: path(name),
                change: ChangeKind::Modified,
                kind: kind(sb),
            }),
            Some(_) => {}
        }
    }
    for (name, sb) in &eb {
        if out.len() >= MAX_CHANGES {
            return Ok(());
        }
        if !ea.contains_key(name) {
            out.push(Change {
                path: path(name),
                change: ChangeKind::Added,
                kind: kind(sb),
            });
        }
    }
    Ok(())
}

/// Changes that turn tree `a` into tree `b`, in path order.
pub fn diff_trees(a: &Path, b: &Path) -> Result<Vec<Change>> {
    let open = |p: &Path| {
        rustix::fs::open(
            p,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("cannot open tree", p, e.into()))
    };
    let (da, db) = (open(a)?, open(b)?);
    let mut out = Vec::new();
    walk(&da, &db, "", &mut out).map_err(|e| Error::io("cannot compare trees", e.into()))?;
    out.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(out)
}

impl Host {
    /// What changed from checkpoint `from` to checkpoint `to`, or to the
    /// sprite's disk now when `to` is `None`. Allowed in every phase.
    pub async fn diff(
        &self,
        name: &SpriteName,
        from: CheckpointId,
        to: Option<CheckpointId>,
    ) -> Result<Vec<Change>> {
        let (paths, _) = self.load(name)?;
        let exists = |id: CheckpointId| -> Result<std::path::PathBuf> {
            self.checkpoint_info(name, id)?;
            Ok(paths.checkpoint(id))
        };
        let a = exists(from)?;
        let b = match to {
            Some(id) => exists(id)?,
            None => paths.root.clone(),
        };
        // A walk of two trees: on the blocking pool.
        tokio::task::spawn_blocking(move || diff_trees(&a, &b))
            .await
            .map_err(|e| Error::Runtime(format!("the diff stopped: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_added_modified_deleted_and_type_changes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let w = |root: &Path, p: &str, data: &str| {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        };
        w(a.path(), "same.txt", "x");
        w(a.path(), "gone.txt", "x");
        w(a.path(), "dir/edit.txt", "old");
        w(a.path(), "swap", "file");
        // b is built separately, so "same.txt" differs by inode; copy the
        // metadata-identical case by hard-linking instead.
        std::fs::hard_link(a.path().join("same.txt"), b.path().join("same.txt")).unwrap();
        w(b.path(), "dir/edit.txt", "new!");
        w(b.path(), "dir/new.txt", "n");
        std::fs::create_dir(b.path().join("swap")).unwrap();
        let changes = diff_trees(a.path(), b.path()).unwrap();
        let got: Vec<(String, ChangeKind)> =
            changes.iter().map(|c| (c.path.clone(), c.change)).collect();
        assert_eq!(
            got,
            vec![
                ("/dir/edit.txt".into(), ChangeKind::Modified),
                ("/dir/new.txt".into(), ChangeKind::Added),
                ("/gone.txt".into(), ChangeKind::Deleted),
                ("/swap".into(), ChangeKind::Deleted),
                ("/swap".into(), ChangeKind::Added),
            ]
        );
    }
}
