//! A sprite's files, reached from the host without entering the sprite.
//!
//! Every path is resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` from
//! a descriptor of the sprite's root: `..` stops at the root and absolute
//! symlinks are taken relative to it, so a hostile path or a symlink planted
//! by the tenant cannot reach the host's files. Operations on a final name
//! (unlink, rename, chown, create) go through the parent's descriptor with
//! `*at` calls that never follow that name. Ownership is shown and set as
//! the sprite sees it: its root is uid 0 inside.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::IdMap;

mod call;
mod files;

pub use call::FileCall;
pub(crate) use files::{Elsewhere, UploadElsewhere};
pub use files::{Files, Upload};

/// What a path is: the API's word for it.
pub use sprites_wire::api::EntryKind as Kind;

/// A file's bytes as they are read, wherever the file is.
pub type Reader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// Absolute inside the sprite.
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    /// Permission bits (0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the Unix epoch.
    pub modified: i64,
    pub link_target: Option<String>,
}

pub struct SpriteFs {
    root: OwnedFd,
    ids: IdMap,
}

fn resolve() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// A path as given by a caller, checked and made relative to the root.
fn relative(path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(Error::InvalidPath {
            path: path.into(),
            reason: "empty path",
        });
    }
    if path.contains('\0') {
        return Err(Error::InvalidPath {
            path: path.escape_default().to_string(),
            reason: "contains a NUL byte",
        });
    }
    if path.len() > 4096 {
        return Err(Error::InvalidPath {
            path: path[..64].into(),
            reason: "too long",
        });
    }
    let rel = path.trim_start_matches('/');
    Ok(if rel.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(rel)
    })
}

/// Splits a path into its parent and a final plain name.
fn parent_and_name(path: &str) -> Result<(PathBuf, std::ffi::OsString)> {
    let rel = relative(path)?;
    match rel.components().next_back() {
        Some(Component::Normal(name)) => {
            let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
            let parent = if parent.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                parent
            };
            Ok((parent, name.to_os_string()))
        }
        _ => Err(Error::InvalidPath {
            path: path.into(),
            reason: "must name a file, not the root or a parent",
        }),
    }
}

fn map_err(path: &str, e: rustix::io::Errno) -> Error {
    let io = std::io::Error::from(e);
    match e {
        rustix::io::Errno::NOENT => Error::FileNotFound(path.into()),
        rustix::io::Errno::EXIST => Error::FileExists(path.into()),
        rustix::io::Errno::NOTDIR => Error::FileConflict {
            path: path.into(),
            reason: "a part of the path is not a directory",
            errno: "ENOTDIR",
        },
        rustix::io::Errno::ISDIR => Error::FileConflict {
            path: path.into(),
            reason: "is a directory",
            errno: "EISDIR",
        },
        rustix::io::Errno::NOTEMPTY => Error::FileConflict {
            path: path.into(),
            reason: "directory is not empty",
            errno: "ENOTEMPTY",
        },
        rustix::io::Errno::LOOP => Error::FileConflict {
            path: path.into(),
            reason: "too many levels of symbolic links",
            errno: "ELOOP",
        },
        rustix::io::Errno::XDEV => Error::FileConflict {
            path: path.into(),
            reason: "cannot move across file systems",
            errno: "EXDEV",
        },
        rustix::io::Errno::NAMETOOLONG => Error::InvalidPath {
            path: path.into(),
            reason: "name too long",
        },
        _ => Error::io(format!("file operation on {path:?} failed"), io),
    }
}

fn as_uid(id: u32) -> rustix::fs::Uid {
    assert_ne!(id, u32::MAX, "-1 is not an owner");
    // SAFETY: not -1, which would mean "leave unchanged".
    unsafe { rustix::fs::Uid::from_raw(id) }
}

fn as_gid(id: u32) -> rustix::fs::Gid {
    assert_ne!(id, u32::MAX, "-1 is not a group");
    // SAFETY: not -1, which would mean "leave unchanged".
    unsafe { rustix::fs::Gid::from_raw(id) }
}

fn kind_of(mode: u32) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

impl SpriteFs {
    pub fn open(root: &Path, ids: IdMap) -> Result<SpriteFs> {
        let root = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("cannot open sprite root", root, e.into()))?;
        Ok(SpriteFs { root, ids })
    }

    /// The sprite's root folder.
    pub(crate) fn root_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.root.as_fd()
    }

    /// The size of the file at `path`, if there is one.
    pub(crate) fn size_of(&self, path: &str) -> Option<u64> {
        let fd = self
            .at(&relative(path).ok()?, OFlags::PATH, Mode::empty())
            .ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        (kind_of(st.st_mode) == Kind::File).then_some(st.st_size as u64)
    }

    /// A descriptor of `path` for following its changes (a directory
    /// readable to list, anything else as a bare reference), resolved as
    /// inside the sprite; whether it is a directory.
    pub(crate) fn open_for_watch(&self, path: &str) -> Result<(OwnedFd, bool)> {
        let rel = relative(path)?;
        match self.at(&rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()) {
            Ok(fd) => Ok((fd, true)),
            Err(rustix::io::Errno::NOTDIR) => self
                .at(&rel, OFlags::PATH, Mode::empty())
                .map(|fd| (fd, false))
                .map_err(|e| map_err(path, e)),
            Err(e) => Err(map_err(path, e)),
        }
    }

    fn at(&self, rel: &Path, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(&self.root, rel, flags | OFlags::CLOEXEC, mode, resolve())
    }

    fn dir(&self, path: &str, rel: &Path) -> Result<OwnedFd> {
        self.at(rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .map_err(|e| map_err(path, e))
    }

    fn inside_uid(&self, host: u32) -> u32 {
        host.checked_sub(self.ids.base)
            .filter(|id| *id < self.ids.size)
            .unwrap_or(65534)
    }

    fn outside(&self, id: u32, path: &str) -> Result<u32> {
        if id >= self.ids.size {
            return Err(Error::InvalidPath {
                path: path.into(),
                reason: "owner id is outside the sprite's range",
            });
        }
        Ok(self.ids.base + id)
    }

    fn entry(&self, dir: impl AsFd, name: &OsStr, path: String) -> Result<Entry> {
        let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| map_err(&path, e))?;
        let kind = kind_of(st.st_mode);
        let link_target = if kind == Kind::Symlink {
            rustix::fs::readlinkat(&dir, name, Vec::new())
                .ok()
                .map(|t| t.to_string_lossy().into_owned())
        } else {
            None
        };
        Ok(Entry {
            name: name.to_string_lossy().into_owned(),
            path,
            kind,
            size: st.st_size as u64,
            mode: st.st_mode & 0o7777,
            uid: self.inside_uid(st.st_uid),
            gid: self.inside_uid(st.st_gid),
            modified: st.st_mtime as i64,
            link_target,
        })
    }

    /// Metadata of `path` itself (a symlink is not followed).
    pub fn stat(&self, path: &str) -> Result<Entry> {
        let rel = relative(path)?;
        if rel == Path::new(".") {
            return self.entry(&self.root, OsStr::new("."), "/".into());
        }
        let (parent, name) = parent_and_name(path)?;
        let dir = self.dir(path, &parent)?;
        self.entry(&dir, &name, absolute(&rel))
    }

    /// Entries of a directory, sorted by name.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>> {
        let rel = relative(path)?;
        let dir = self.dir(path, &rel)?;
        let base = absolute(&rel);
        let mut out = Vec::new();
        for name in dir_names(&dir).map_err(|e| map_err(path, e))? {
            let child = join(&base, &name);
            match self.entry(&dir, &name, child) {
                Ok(e) => out.push(e),
                Err(Error::FileNotFound(_)) => continue, // removed meanwhile
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every entry below folder `path`, each folder's entries (sorted by
    /// name) followed by its subfolders' in turn; a link is listed, never
    /// followed. More than `max` entries is refused rather than cut short.
    pub fn walk(&self, path: &str, max: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let top = absolute(&relative(path)?);
        let mut folders = vec![top.clone()];
        while let Some(folder) = folders.pop() {
            let entries = match self.list(&folder) {
                // A folder removed (or made a file) meanwhile: nothing below.
                Err(Error::FileNotFound(_)) if folder != top => continue,
                other => other?,
            };
            let subfolders = entries.iter().rev().filter(|e| e.kind == Kind::Dir);
            folders.extend(subfolders.map(|e| e.path.clone()));
            if out.len() + entries.len() > max {
                return Err(Error::Invalid(format!(
                    "{path} holds more than {max} entries: list a folder further down"
                )));
            }
            out.extend(entries);
        }
        Ok(out)
    }

    /// Opens a regular file for reading (symlinks inside the sprite followed).
    pub fn open_read(&self, path: &str) -> Result<File> {
        let rel = relative(path)?;
        let fd = self
            .at(
                &rel,
                OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK,
                Mode::empty(),
            )
            .map_err(|e| map_err(path, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| map_err(path, e))?;
        match kind_of(st.st_mode) {
            Kind::File => Ok(File::from(fd)),
            Kind::Dir => Err(Error::FileConflict {
                path: path.into(),
                reason: "is a directory",
                errno: "EISDIR",
            }),
            _ => Err(Error::FileConflict {
                path: path.into(),
                reason: "is not a regular file",
                errno: "EINVAL",
            }),
        }
    }

    /// Reads a whole file of at most `max` bytes.
    pub fn read(&self, path: &str, max: u64) -> Result<Vec<u8>> {
        let f = self.open_read(path)?;
        let mut data = Vec::new();
        f.take(max + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::io(format!("cannot read {path:?}"), e))?;
        if data.len() as u64 > max {
            return Err(Error::FileConflict {
                path: path.into(),
                reason: "file is larger than allowed here",
                errno: "EFBIG",
            });
        }
        Ok(data)
    }

    /// Replaces or creates a file atomically: a reader sees the old content
    /// or the new, never a mix. A replaced file keeps its owner and mode;
    /// a new one belongs to the sprite's root with `mode` (0644 by default).
    pub fn write(
        &self,
        path: &str,
        data: &[u8],
        mode: Option<u32>,
        make_parents: bool,
    ) -> Result<Entry> {
        let mut new = self.create(path, mode, make_parents)?;
        new.file()
            .write_all(data)
            .map_err(|e| Error::io(format!("cannot write {path:?}"), e))?;
        new.finish(self)
    }

    /// Begins replacing or creating `path` as [`SpriteFs::write`] does,
    /// with the bytes still to come: they go to a hidden file beside it,
    /// which takes the name only at [`NewFile::finish`] (and is removed if
    /// the write is dropped before).
    pub fn create(&self, path: &str, mode: Option<u32>, make_parents: bool) -> Result<NewFile> {
        let (parent, name) = parent_and_name(path)?;
        if make_parents {
            self.mkdir_all(path, &parent)?;
        }
        let dir = self.dir(path, &parent)?;
        let existing = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW).ok();
        if existing.is_some_and(|st| kind_of(st.st_mode) == Kind::Dir) {
            return Err(Error::FileConflict {
                path: path.into(),
                reason: "is a directory",
                errno: "EISDIR",
            });
        }
        let (uid, gid, perm) = match existing.filter(|st| kind_of(st.st_mode) == Kind::File) {
            Some(st) => (st.st_uid, st.st_gid, mode.unwrap_or(st.st_mode & 0o7777)),
            None => (self.ids.base, self.ids.base, mode.unwrap_or(0o644)),
        };
        let tmp = temp_name(&name);
        // Unnamed until finished (O_TMPFILE), so a server killed mid-write
        // leaves nothing behind; a named temporary where the file system
        // has no unnamed files.
        let private = Mode::from_bits_truncate(0o600);
        let (fd, named) = match rustix::fs::openat(
            &dir,
            ".",
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            private,
        ) {
            Ok(fd) => (fd, false),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR) => {
                let fd = rustix::fs::openat(
                    &dir,
                    &tmp,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    private,
                )
                .map_err(|e| map_err(path, e))?;
                (fd, true)
            }
            Err(e) => return Err(map_err(path, e)),
        };
        Ok(NewFile {
            file: Some(File::from(fd)),
            dir,
            tmp,
            named,
            name,
            path: path.to_string(),
            owner: (uid, gid, perm),
        })
    }

    fn mkdir_all(&self, path: &str, rel: &Path) -> Result<()> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if let Component::Normal(_) = c {
                match self.mkdir_one(path, &cur) {
                    Ok(()) | Err(Error::FileExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn mkdir_one(&self, path: &str, rel: &Path) -> Result<()> {
        let (parent, name) = parent_and_name(&rel.to_string_lossy())?;
        let dir = self.dir(path, &parent)?;
        rustix::fs::mkdirat(&dir, &name, Mode::from_bits_truncate(0o755))
            .map_err(|e| map_err(path, e))?;
        rustix::fs::chownat(
            &dir,
            &name,
            Some(as_uid(self.ids.base)),
            Some(as_gid(self.ids.base)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| map_err(path, e))
    }

    /// Creates a directory (and its parents with `parents`).
    pub fn mkdir(&self, path: &str, parents: bool) -> Result<Entry> {
        let rel = relative(path)?;
        if parents {
            self.mkdir_all(path, &rel)?;
        } else {
            self.mkdir_one(path, &rel)?;
        }
        self.stat(path)
    }

    /// Removes a file, a symlink, or a directory (its contents too with `recursive`).
    pub fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        let (parent, name) = parent_and_name(path)?;
        let dir = self.dir(path, &parent)?;
        let st = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| map_err(path, e))?;
        if kind_of(st.st_mode) == Kind::Dir {
            if recursive {
                empty_dir(&dir, &name).map_err(|e| map_err(path, e))?;
            }
            rustix::fs::unlinkat(&dir, &name, AtFlags::REMOVEDIR).map_err(|e| map_err(path, e))
        } else {
            rustix::fs::unlinkat(&dir, &name, AtFlags::empty()).map_err(|e| map_err(path, e))
        }
    }

    /// Renames within the sprite, replacing a file at `to`.
    pub fn rename(&self, from: &str, to: &str) -> Result<Entry> {
        let (fp, fname) = parent_and_name(from)?;
        let (tp, tname) = parent_and_name(to)?;
        let fdir = self.dir(from, &fp)?;
        let tdir = self.dir(to, &tp)?;
        rustix::fs::renameat(&fdir, &fname, &tdir, &tname).map_err(|e| map_err(from, e))?;
        self.entry(&tdir, &tname, absolute(&relative(to)?))
    }

    /// Copies a file, a symlink, or (with `recursive`) a directory tree.
    /// File data is shared copy-on-write (a reflink), so copies are instant.
    /// Copies `from` to `to` (which must not exist), a folder only with
    /// `recursive`; `keep` keeps owners, modes and times, otherwise the
    /// copy is the sprite root's, made now.
    pub fn copy(&self, from: &str, to: &str, recursive: bool, keep: bool) -> Result<Entry> {
        let (fp, fname) = parent_and_name(from)?;
        let (tp, tname) = parent_and_name(to)?;
        let fdir = self.dir(from, &fp)?;
        let tdir = self.dir(to, &tp)?;
        if rustix::fs::statat(&tdir, &tname, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            return Err(Error::FileExists(to.into()));
        }
        let st = rustix::fs::statat(&fdir, &fname, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| map_err(from, e))?;
        if kind_of(st.st_mode) == Kind::Dir && !recursive {
            return Err(Error::FileConflict {
                path: from.into(),
                reason: "is a directory (copy it recursively)",
                errno: "EISDIR",
            });
        }
        let attrs = match keep {
            true => Attrs::Kept,
            false => Attrs::New {
                owner: self.ids.base,
            },
        };
        copy_at(&fdir, &fname, &tdir, &tname, attrs).map_err(|e| map_err(from, e))?;
        self.entry(&tdir, &tname, absolute(&relative(to)?))
    }

    /// Sets permission bits; symlinks have none to set.
    pub fn chmod(&self, path: &str, mode: u32) -> Result<Entry> {
        let rel = relative(path)?;
        let fd = self
            .at(&rel, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| map_err(path, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| map_err(path, e))?;
        if kind_of(st.st_mode) == Kind::Symlink {
            return Err(Error::FileConflict {
                path: path.into(),
                reason: "is a symbolic link",
                errno: "EINVAL",
            });
        }
        // An O_PATH descriptor cannot be fchmod'ed; its /proc link can be
        // chmod'ed, and it names exactly the inode we opened.
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::chmod(proc.as_str(), Mode::from_bits_truncate(mode & 0o7777))
            .map_err(|e| map_err(path, e))?;
        self.stat(path)
    }

    /// Sets owner and group as ids inside the sprite (either left as it is
    /// when `None`); a symlink itself is changed.
    pub fn chown(&self, path: &str, uid: Option<u32>, gid: Option<u32>) -> Result<Entry> {
        let (parent, name) = parent_and_name(path)?;
        let dir = self.dir(path, &parent)?;
        let u = uid.map(|id| self.outside(id, path)).transpose()?;
        let g = gid.map(|id| self.outside(id, path)).transpose()?;
        rustix::fs::chownat(
            &dir,
            &name,
            u.map(as_uid),
            g.map(as_gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| map_err(path, e))?;
        self.entry(&dir, &name, absolute(&relative(path)?))
    }
}

/// Which of the sprite's own tables names an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTable {
    /// `/etc/passwd`
    Users,
    /// `/etc/group`
    Groups,
}

impl SpriteFs {
    /// The id the sprite's own `/etc/passwd` or `/etc/group` gives `name`.
    pub fn id_of(&self, table: IdTable, name: &str) -> Result<u32> {
        let (file, what) = match table {
            IdTable::Users => ("/etc/passwd", "user"),
            IdTable::Groups => ("/etc/group", "group"),
        };
        let text = self.read(file, 4 << 20)?;
        String::from_utf8_lossy(&text)
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                Error::Invalid(format!("no {what} named {name:?} in the sprite's {file}"))
            })
    }
}

fn absolute(rel: &Path) -> String {
    if rel == Path::new(".") {
        "/".into()
    } else {
        format!("/{}", rel.display())
    }
}

/// A file being written (see [`SpriteFs::create`]).
pub struct NewFile {
    /// `None` once finished.
    file: Option<File>,
    dir: OwnedFd,
    /// The name it takes for a moment before `name` (all along when
    /// `named`: the file system has no unnamed files).
    tmp: std::ffi::OsString,
    named: bool,
    name: std::ffi::OsString,
    path: String,
    /// Owner, group and permission bits the file takes at the end.
    owner: (u32, u32, u32),
}

impl NewFile {
    /// Where the bytes go.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a finished file takes no more bytes")
    }

    /// Gives the file its owner and mode, makes it durable and puts it in
    /// place of whatever had the name.
    pub fn finish(mut self, fs: &SpriteFs) -> Result<Entry> {
        let f = self.file.take().expect("a file is finished once");
        let (uid, gid, perm) = self.owner;
        let done = (|| {
            rustix::fs::fchown(&f, Some(as_uid(uid)), Some(as_gid(gid)))?;
            rustix::fs::fchmod(&f, Mode::from_bits_truncate(perm & 0o7777))?;
            f.sync_all()?;
            if !self.named {
                let unnamed = format!("/proc/self/fd/{}", f.as_raw_fd());
                let here = rustix::fs::CWD;
                rustix::fs::linkat(
                    here,
                    unnamed.as_str(),
                    &self.dir,
                    &self.tmp,
                    AtFlags::SYMLINK_FOLLOW,
                )?;
            }
            rustix::fs::renameat(&self.dir, &self.tmp, &self.dir, &self.name)?;
            Ok::<(), std::io::Error>(())
        })();
        if let Err(e) = done {
            let _ = rustix::fs::unlinkat(&self.dir, &self.tmp, AtFlags::empty());
            return Err(Error::io(format!("cannot write {:?}", self.path), e));
        }
        fs.entry(&self.dir, &self.name, absolute(&relative(&self.path)?))
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        // An unnamed file goes with its descriptor.
        if self.file.is_some() && self.named {
            let _ = rustix::fs::unlinkat(&self.dir, &self.tmp, AtFlags::empty());
        }
    }
}

fn join(base: &str, name: &OsStr) -> String {
    if base == "/" {
        format!("/{}", name.to_string_lossy())
    } else {
        format!("{base}/{}", name.to_string_lossy())
    }
}

fn temp_name(name: &OsStr) -> std::ffi::OsString {
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(
        ".sprite-tmp-{}-{}",
        std::process::id(),
        crate::now_ms()
    ));
    tmp
}

/// The names in an open directory, without `.` and `..`.
pub(crate) fn dir_names(dir: &OwnedFd) -> rustix::io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for ent in rustix::fs::Dir::read_from(dir)? {
        let n = ent?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(std::ffi::OsString::from_vec(n));
        }
    }
    Ok(names)
}

/// Empties the directory `name` in `dir` without following any symlink.
fn empty_dir(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for n in dir_names(&sub)? {
        let st = rustix::fs::statat(&sub, &n, AtFlags::SYMLINK_NOFOLLOW)?;
        if kind_of(st.st_mode) == Kind::Dir {
            empty_dir(&sub, &n)?;
            rustix::fs::unlinkat(&sub, &n, AtFlags::REMOVEDIR)?;
        } else {
            rustix::fs::unlinkat(&sub, &n, AtFlags::empty())?;
        }
    }
    Ok(())
}

nix::ioctl_write_int!(ficlone, 0x94, 9);

/// What a copy takes from its source besides the bytes.
#[derive(Debug, Clone, Copy)]
pub enum Attrs {
    /// Owner, group, every mode bit and the times (`cp -p`).
    Kept,
    /// As a new file of `owner`'s: the source's permission bits less
    /// group and other write and the set-id bits (`cp` under umask 022),
    /// the time of the copy.
    New { owner: u32 },
}

fn copy_at(
    fdir: &OwnedFd,
    fname: &OsStr,
    tdir: &OwnedFd,
    tname: &OsStr,
    attrs: Attrs,
) -> rustix::io::Result<()> {
    let st = rustix::fs::statat(fdir, fname, AtFlags::SYMLINK_NOFOLLOW)?;
    let (owner, perm) = match attrs {
        Attrs::Kept => (
            (Some(as_uid(st.st_uid)), Some(as_gid(st.st_gid))),
            Mode::from_bits_truncate(st.st_mode & 0o7777),
        ),
        Attrs::New { owner } => (
            (Some(as_uid(owner)), Some(as_gid(owner))),
            Mode::from_bits_truncate(st.st_mode & 0o755),
        ),
    };
    let times = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    };
    let keep_times = matches!(attrs, Attrs::Kept);
    match kind_of(st.st_mode) {
        Kind::Symlink => {
            let target = rustix::fs::readlinkat(fdir, fname, Vec::new())?;
            rustix::fs::symlinkat(target.as_c_str(), tdir, tname)?;
            rustix::fs::chownat(tdir, tname, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
            if keep_times {
                rustix::fs::utimensat(tdir, tname, &times, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            Ok(())
        }
        Kind::Dir => {
            rustix::fs::mkdirat(tdir, tname, Mode::from_bits_truncate(0o700))?;
            let open = |d: &OwnedFd, n: &OsStr| {
                rustix::fs::openat(
                    d,
                    n,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            };
            let src = open(fdir, fname)?;
            let dst = open(tdir, tname)?;
            for n in dir_names(&src)? {
                copy_at(&src, &n, &dst, &n, attrs)?;
            }
            finish_copy(&dst, owner, perm, keep_times.then_some(&times))
        }
        Kind::File => {
            let src = rustix::fs::openat(
                fdir,
                fname,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let dst = rustix::fs::openat(
                tdir,
                tname,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            // SAFETY: FICLONE takes the source descriptor as its argument.
            let cloned = unsafe { ficlone(dst.as_raw_fd(), src.as_raw_fd() as _) };
            if cloned.is_err() {
                let mut s = File::from(src);
                let mut d = File::from(dst.try_clone().map_err(|e| {
                    rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
                })?);
                std::io::copy(&mut s, &mut d).map_err(|e| {
                    rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
                })?;
            }
            finish_copy(&dst, owner, perm, keep_times.then_some(&times))
        }
        // Devices, fifos and sockets are not copied.
        Kind::Other => Err(rustix::io::Errno::OPNOTSUPP),
    }
}

/// The owner, mode and (when kept) times of a copy, set last: a
/// directory's times change while its entries are copied in.
fn finish_copy(
    dst: &OwnedFd,
    (uid, gid): (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>),
    perm: Mode,
    times: Option<&rustix::fs::Timestamps>,
) -> rustix::io::Result<()> {
    rustix::fs::fchown(dst, uid, gid)?;
    rustix::fs::fchmod(dst, perm)?;
    match times {
        Some(t) => rustix::fs::futimens(dst, t),
        None => Ok(()),
    }
}
