//! The btrfs ioctls the pool needs: create, snapshot and delete subvolumes,
//! set them read-only, and limit their quota group. Each takes the parent
//! directory of the subvolume and a plain name, as the kernel does.
//!
//! A snapshot is O(1): the kernel flushes the source's dirty data, commits
//! the transaction and shares every extent with the source.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const BTRFS_SUPER_MAGIC: i64 = 0x9123683e;
/// Inode number of every subvolume's root directory.
const FIRST_FREE_OBJECTID: u64 = 256;
const SUBVOL_RDONLY: u64 = 1 << 1;
const QGROUP_LIMIT_MAX_RFER: u64 = 1 << 0;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; 4088],
}

#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; 4040],
}

#[repr(C)]
#[derive(Default)]
struct QgroupLimit {
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

#[repr(C)]
#[derive(Default)]
struct QgroupLimitArgs {
    qgroupid: u64,
    lim: QgroupLimit,
}

#[repr(C)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    rest: [u8; 992],
}

#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

#[repr(C)]
struct Timespec {
    sec: u64,
    nsec: u32,
}

#[repr(C)]
struct SubvolInfoArgs {
    treeid: u64,
    name: [u8; 256],
    parent_id: u64,
    dirid: u64,
    generation: u64,
    flags: u64,
    uuid: [u8; 16],
    parent_uuid: [u8; 16],
    received_uuid: [u8; 16],
    ctransid: u64,
    otransid: u64,
    stransid: u64,
    rtransid: u64,
    ctime: Timespec,
    otime: Timespec,
    stime: Timespec,
    rtime: Timespec,
    reserved: [u64; 8],
}

const QUOTA_CTL_DISABLE: u64 = 2;
const QUOTA_CTL_ENABLE_SIMPLE: u64 = 4;

mod ioctl {
    use super::*;
    nix::ioctl_write_ptr!(subvol_create, 0x94, 14, VolArgs);
    nix::ioctl_write_ptr!(snap_destroy, 0x94, 15, VolArgs);
    nix::ioctl_write_ptr!(snap_create_v2, 0x94, 23, VolArgsV2);
    nix::ioctl_read!(subvol_getflags, 0x94, 25, u64);
    nix::ioctl_write_ptr!(subvol_setflags, 0x94, 26, u64);
    // The kernel declares this one _IOR although it reads the argument.
    nix::ioctl_read!(qgroup_limit, 0x94, 43, QgroupLimitArgs);
    nix::ioctl_read!(fs_info, 0x94, 31, FsInfoArgs);
    nix::ioctl_readwrite!(quota_ctl, 0x94, 40, QuotaCtlArgs);
    nix::ioctl_readwrite!(ino_lookup, 0x94, 18, InoLookupArgs);
    nix::ioctl_read!(get_subvol_info, 0x94, 60, SubvolInfoArgs);
}

fn split(path: &Path) -> io::Result<(File, &OsStr)> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok((File::open(parent)?, name))
}

fn copy_name(dst: &mut [u8], name: &OsStr) -> io::Result<()> {
    let b = name.as_bytes();
    if b.len() >= dst.len() || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad subvolume name",
        ));
    }
    dst[..b.len()].copy_from_slice(b);
    Ok(())
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

pub fn is_btrfs(path: &Path) -> io::Result<bool> {
    let st = nix::sys::statfs::statfs(path).map_err(errno)?;
    Ok(st.filesystem_type().0 as i64 == BTRFS_SUPER_MAGIC)
}

pub fn is_subvolume(path: &Path) -> io::Result<bool> {
    let md = std::fs::symlink_metadata(path)?;
    Ok(md.is_dir() && md.ino() == FIRST_FREE_OBJECTID && is_btrfs(path)?)
}

pub fn create_subvolume(path: &Path) -> io::Result<()> {
    let (parent, name) = split(path)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; 4088],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: `args` is a valid, initialised btrfs_ioctl_vol_args.
    unsafe { ioctl::subvol_create(parent.as_raw_fd(), &args) }.map_err(errno)?;
    Ok(())
}

/// Snapshots the subvolume `src` as `dst`, read-only when asked.
pub fn snapshot(src: &Path, dst: &Path, readonly: bool) -> io::Result<()> {
    let source = File::open(src)?;
    let (parent, name) = split(dst)?;
    let mut args = VolArgsV2 {
        fd: source.as_raw_fd() as i64,
        transid: 0,
        flags: if readonly { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; 4040],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: `args` is a valid, initialised btrfs_ioctl_vol_args_v2.
    unsafe { ioctl::snap_create_v2(parent.as_raw_fd(), &args) }.map_err(errno)?;
    Ok(())
}

/// Whether the subvolume at `path` is read-only (a received one becomes so
/// only once whole).
pub fn is_readonly(path: &Path) -> io::Result<bool> {
    if !is_subvolume(path)? {
        return Ok(false);
    }
    let f = File::open(path)?;
    let mut flags = 0u64;
    // SAFETY: the kernel writes one u64.
    unsafe { ioctl::subvol_getflags(f.as_raw_fd(), &mut flags) }.map_err(errno)?;
    Ok(flags & SUBVOL_RDONLY != 0)
}

pub fn set_readonly(path: &Path, readonly: bool) -> io::Result<()> {
    let f = File::open(path)?;
    let mut flags = 0u64;
    // SAFETY: the kernel writes one u64.
    unsafe { ioctl::subvol_getflags(f.as_raw_fd(), &mut flags) }.map_err(errno)?;
    flags = if readonly {
        flags | SUBVOL_RDONLY
    } else {
        flags & !SUBVOL_RDONLY
    };
    // SAFETY: the kernel reads one u64.
    unsafe { ioctl::subvol_setflags(f.as_raw_fd(), &flags) }.map_err(errno)?;
    Ok(())
}

/// Limits the referenced bytes of the subvolume at `path` (quotas must be on).
pub fn limit_referenced(path: &Path, bytes: u64) -> io::Result<()> {
    let f = File::open(path)?;
    let mut args = QgroupLimitArgs {
        qgroupid: 0, // 0: the subvolume the descriptor is in
        lim: QgroupLimit {
            flags: QGROUP_LIMIT_MAX_RFER,
            max_rfer: bytes,
            ..Default::default()
        },
    };
    // SAFETY: `args` is a valid btrfs_ioctl_qgroup_limit_args.
    unsafe { ioctl::qgroup_limit(f.as_raw_fd(), &mut args) }.map_err(errno)?;
    Ok(())
}

/// The sysfs directory of the btrfs file system `f` is on.
fn sysfs_dir(f: &File) -> io::Result<String> {
    let mut args = FsInfoArgs {
        max_id: 0,
        num_devices: 0,
        fsid: [0; 16],
        rest: [0; 992],
    };
    // SAFETY: the kernel fills a btrfs_ioctl_fs_info_args of this size.
    unsafe { ioctl::fs_info(f.as_raw_fd(), &mut args) }.map_err(errno)?;
    let h = hex::encode(args.fsid);
    Ok(format!(
        "/sys/fs/btrfs/{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// The quota mode of the file system at `path`: "squota", "qgroup", or
/// `None` when quotas are off.
pub fn quota_mode(path: &Path) -> io::Result<Option<String>> {
    let dir = sysfs_dir(&File::open(path)?)?;
    match std::fs::read_to_string(format!("{dir}/qgroups/mode")) {
        Ok(mode) => Ok(Some(mode.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id of the subvolume the open descriptor `fd` is in: ids are never
/// given twice, so a new subvolume at the same path has another.
pub fn subvolume_id(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u64> {
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; 4080],
    };
    // SAFETY: a valid btrfs_ioctl_ino_lookup_args; with treeid 0 the
    // kernel answers the id of the subvolume the descriptor is in.
    unsafe { ioctl::ino_lookup(fd.as_raw_fd(), &mut args) }.map_err(errno)?;
    Ok(args.treeid)
}

/// The transaction that last changed the subvolume at `path`: it grows
/// with every write that reaches it, so two equal readings mean nothing
/// was written in between.
pub fn generation(path: &Path) -> io::Result<u64> {
    let f = File::open(path)?;
    // SAFETY: all-zero is a valid btrfs_ioctl_get_subvol_info_args.
    let mut args: SubvolInfoArgs = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel fills the struct whose size the number encodes.
    unsafe { ioctl::get_subvol_info(f.as_raw_fd(), &mut args) }.map_err(errno)?;
    Ok(args.generation)
}

/// Bytes charged to the subvolume at `path` by its quota group: with
/// simple quotas, what it wrote itself and what still holds those
/// extents. `None` when quotas are off.
pub fn charged_bytes(path: &Path) -> io::Result<Option<u64>> {
    let f = File::open(path)?;
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; 4080],
    };
    // SAFETY: a valid btrfs_ioctl_ino_lookup_args; with treeid 0 the
    // kernel answers the id of the subvolume the descriptor is in.
    unsafe { ioctl::ino_lookup(f.as_raw_fd(), &mut args) }.map_err(errno)?;
    let file = format!("{}/qgroups/0_{}/referenced", sysfs_dir(&f)?, args.treeid);
    match std::fs::read_to_string(&file) {
        Ok(n) => n
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {n:?}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Switches the file system at `path` to simple quotas, which charge each
/// extent to the subvolume that wrote it: a snapshot costs nothing until it
/// writes, and deleting one never leaves the accounting inconsistent (as
/// full qgroups do, after which their limits are not enforced).
pub fn enable_simple_quota(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    let ctl = |cmd| {
        let mut args = QuotaCtlArgs { cmd, status: 0 };
        // SAFETY: a valid btrfs_ioctl_quota_ctl_args.
        unsafe { ioctl::quota_ctl(f.as_raw_fd(), &mut args) }.map_err(errno)
    };
    if quota_mode(path)?.as_deref() == Some("qgroup") {
        ctl(QUOTA_CTL_DISABLE)?;
    }
    ctl(QUOTA_CTL_ENABLE_SIMPLE)?;
    Ok(())
}

/// Deletes the subvolume at `path` and every subvolume nested in it.
pub fn delete_subvolume(path: &Path) -> io::Result<()> {
    match destroy(path) {
        // The kernel refuses a subvolume that still contains others (a
        // sprite's user may create some): find them, delete them, retry.
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            for n in nested_subvolumes(path)? {
                delete_subvolume(&n)?;
            }
            destroy(path)
        }
        other => other,
    }
}

fn destroy(path: &Path) -> io::Result<()> {
    let (parent, name) = split(path)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; 4088],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: `args` is a valid, initialised btrfs_ioctl_vol_args.
    unsafe { ioctl::snap_destroy(parent.as_raw_fd(), &args) }.map_err(errno)?;
    Ok(())
}

fn nested_subvolumes(path: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let top_dev = std::fs::symlink_metadata(path)?.dev();
    let mut nested = Vec::new();
    let mut walk = walkdir::WalkDir::new(path).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_dir() {
            let md = entry.metadata().map_err(io::Error::other)?;
            if md.ino() == FIRST_FREE_OBJECTID && md.dev() != top_dev {
                nested.push(entry.path().to_path_buf());
                walk.skip_current_dir();
            }
        }
    }
    Ok(nested)
}

/// Removes `path` whatever it holds: subvolumes through the ioctl, plain
/// directories and files through the file system.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(md) if !md.is_dir() => return std::fs::remove_file(path),
        Ok(_) => {}
    }
    if is_subvolume(path)? {
        return delete_subvolume(path);
    }
    for entry in std::fs::read_dir(path)? {
        remove_tree(&entry?.path())?;
    }
    std::fs::remove_dir(path)
}
