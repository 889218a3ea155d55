//! The storage pool: one btrfs file system that holds images, sprites and
//! checkpoints, so every one of them can be a snapshot of another.
//!
//! Set-up on first start, under an exclusive lock on `<data>/.pool.lock`
//! (several processes may open the same data directory at once):
//!
//! 1. When the data directory is itself on btrfs, `<data>/pool` is a plain
//!    directory on it.
//! 2. Otherwise `<data>/pool.img` is created as a sparse file, formatted as
//!    btrfs, loop-mounted on `<data>/pool`, and the mount is made private so
//!    sandboxes created later do not hold copies of it.
//! 3. Simple quotas are enabled, so each sprite's root can be limited to
//!    what it writes itself (see `btrfs::enable_simple_quota`).
//!
//! Layout inside the pool:
//!
//! ```text
//! images/<name>@<recipe-hash>      read-only subvolume of a built image
//! images/<name>.json               which build of <name> is current
//! hosts/<instance>/sprites/<name>/ one sprite (see `sprite::paths`)
//! hosts/<instance>/staging/        half-made sprites, removed on start
//! hosts/<instance>/trash/          destroyed sprites, removed on start
//! ```

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::btrfs;
use crate::error::{Error, Result};

/// Below this size a new pool uses mixed data and metadata block groups.
const SMALL_POOL: u64 = 16 << 30;

#[derive(Debug, Clone)]
pub struct Pool {
    root: PathBuf,
}

/// Holds an exclusive `flock` until dropped (closing the file releases it).
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::path("cannot open lock file", path, e))?;
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(Error::path(
                "cannot lock",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(FileLock { _file: f })
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| Error::Spawn(what.to_string(), e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::io(
            format!("{what} failed"),
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ))
    }
}

/// Makes sure a sprite's own ids can pass through every folder on the way
/// to its disk: they are an unprivileged range, "others" to every folder
/// there, and the runtime resolves the sprite's root as them. The data
/// directory is ours to open for passing through (`o+x`, which lists
/// nothing); a folder above it that lets only its owner through is the
/// operator's, and the server refuses to start, saying what to change,
/// rather than answer every create with an error.
fn let_sprites_through(data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let data_dir = data_dir
        .canonicalize()
        .map_err(|e| Error::path("cannot resolve", data_dir, e))?;
    for dir in data_dir.ancestors() {
        let meta = fs::metadata(dir).map_err(|e| Error::path("cannot stat", dir, e))?;
        let mode = meta.permissions().mode();
        if mode & 0o001 != 0 {
            continue;
        }
        if dir == data_dir {
            tracing::info!(dir = %dir.display(), "letting the sprites pass through the data directory (o+x)");
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001))
                .map_err(|e| Error::path("cannot change the mode of", dir, e))?;
        } else {
            return Err(Error::Unreachable {
                dir: dir.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

impl Pool {
    /// Opens the pool of `data_dir`, creating it on first use. `image_size`
    /// is the apparent size of a new pool image file (it is sparse).
    pub fn open_or_create(data_dir: &Path, image_size: u64) -> Result<Pool> {
        fs::create_dir_all(data_dir).map_err(|e| Error::path("cannot create", data_dir, e))?;
        let_sprites_through(data_dir)?;
        let _lock = FileLock::acquire(&data_dir.join(".pool.lock"))?;
        let root = data_dir.join("pool");
        fs::create_dir_all(&root).map_err(|e| Error::path("cannot create", &root, e))?;
        let on_btrfs = btrfs::is_btrfs(&root).map_err(|e| Error::path("cannot stat", &root, e))?;
        if !on_btrfs {
            let image = data_dir.join("pool.img");
            if !image.exists() {
                tracing::info!(path = %image.display(), size = image_size, "creating the storage pool image");
                let tmp = data_dir.join("pool.img.new");
                let f = File::create(&tmp).map_err(|e| Error::path("cannot create", &tmp, e))?;
                f.set_len(image_size)
                    .map_err(|e| Error::path("cannot size", &tmp, e))?;
                drop(f);
                let mut mkfs = Command::new("mkfs.btrfs");
                mkfs.args(["-q", "-L", "sprites"]);
                // A small file system that fills up can end with every chunk
                // given to data and none left for metadata, so that even a
                // delete fails; mixed block groups avoid that.
                if image_size < SMALL_POOL {
                    mkfs.arg("--mixed");
                }
                run(mkfs.arg(&tmp), "mkfs.btrfs")?;
                fs::rename(&tmp, &image).map_err(|e| Error::path("cannot rename", &tmp, e))?;
            }
            run(
                Command::new("mount")
                    .args(["-t", "btrfs", "-o", "loop,noatime"])
                    .arg(&image)
                    .arg(&root),
                "mount of the storage pool",
            )?;
            run(
                Command::new("mount").arg("--make-private").arg(&root),
                "mount --make-private",
            )?;
        }
        let pool = Pool { root };
        pool.enable_quota()?;
        for dir in [pool.images_dir(), pool.root.join("hosts")] {
            fs::create_dir_all(&dir).map_err(|e| Error::path("cannot create", &dir, e))?;
        }
        Ok(pool)
    }

    fn enable_quota(&self) -> Result<()> {
        if btrfs::quota_mode(&self.root)
            .map_err(|e| Error::path("cannot read quota mode", &self.root, e))?
            .as_deref()
            == Some("squota")
        {
            return Ok(());
        }
        tracing::info!(pool = %self.root.display(), "enabling simple quotas");
        btrfs::enable_simple_quota(&self.root)
            .map_err(|e| Error::path("cannot enable quotas", &self.root, e))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn host_dir(&self, instance: &str) -> PathBuf {
        self.root.join("hosts").join(instance)
    }

    /// Waits until the space of deleted subvolumes is given back (the kernel
    /// frees it in the background after a delete returns).
    pub fn wait_for_deletions(&self) -> Result<()> {
        run(
            Command::new("btrfs")
                .args(["subvolume", "sync"])
                .arg(&self.root),
            "btrfs subvolume sync",
        )
    }

    /// The pool file system's size and its free bytes.
    pub fn space(&self) -> Result<(u64, u64)> {
        let st = nix::sys::statvfs::statvfs(&self.root)
            .map_err(|e| Error::path("cannot statvfs", &self.root, e.into()))?;
        Ok((
            st.blocks() * st.fragment_size(),
            st.blocks_available() * st.fragment_size(),
        ))
    }

    /// Bytes used in the pool's file system (data and metadata).
    pub fn used_bytes(&self) -> Result<u64> {
        let st = nix::sys::statvfs::statvfs(&self.root)
            .map_err(|e| Error::path("cannot statvfs", &self.root, e.into()))?;
        Ok((st.blocks() - st.blocks_free()) * st.fragment_size())
    }
}

/// Empties `data_dir` for a pool made from nothing: the pool an earlier
/// use left mounted there is unmounted, the directory removed and made
/// again. For a second pool standing for another machine (the replication
/// tests and benchmark).
pub fn fresh_data_dir(data_dir: &Path) -> std::io::Result<()> {
    if data_dir.exists() {
        // Not mounted is as good as unmounted.
        let _ = Command::new("umount").arg(data_dir.join("pool")).status();
        fs::remove_dir_all(data_dir)?;
    }
    fs::create_dir_all(data_dir)
}

/// Has the kernel start writing dirty data out in the background once
/// `bytes` of it wait (`vm.dirty_background_bytes`), unless it starts as
/// early already. The kernel's default waits for a tenth of the memory
/// (gigabytes here); the data a sprite wrote would then still be in memory
/// when it is checkpointed, and the checkpoint would write it out while the
/// sprite waits. Written out as it comes, it costs the writer nothing (the
/// disk outpaces it) and leaves a checkpoint little to do. The setting is
/// the machine's: a host given to sprites is the machine they run on.
pub fn write_out_early(bytes: u64) -> Result<()> {
    const BYTES: &str = "/proc/sys/vm/dirty_background_bytes";
    let read = |path: &str| -> Result<u64> {
        let text =
            fs::read_to_string(path).map_err(|e| Error::path("cannot read", Path::new(path), e))?;
        Ok(text.trim().parse().unwrap_or(0))
    };
    let now = match read(BYTES)? {
        0 => read("/proc/sys/vm/dirty_background_ratio")? * available_memory()? / 100,
        set => set,
    };
    if now <= bytes {
        return Ok(());
    }
    fs::write(BYTES, bytes.to_string())
        .map_err(|e| Error::path("cannot write", Path::new(BYTES), e))?;
    tracing::info!(
        bytes,
        was = now,
        "dirty data is written out in the background from this much on"
    );
    Ok(())
}

/// `MemAvailable`, in bytes: about what the kernel takes a share of for
/// its dirty thresholds.
fn available_memory() -> Result<u64> {
    Ok(memory()?.1)
}

/// The machine's memory and what of it is available (`MemTotal`,
/// `MemAvailable`), in bytes.
pub(crate) fn memory() -> Result<(u64, u64)> {
    let path = Path::new("/proc/meminfo");
    let text = fs::read_to_string(path).map_err(|e| Error::path("cannot read", path, e))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok((field("MemTotal:"), field("MemAvailable:")))
}
