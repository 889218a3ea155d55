//! Images: the read-only root file systems sprites are snapshotted from.
//!
//! An image is built from a [`Recipe`] once and kept as a read-only
//! subvolume named after the recipe's hash; it is rebuilt only when the
//! recipe changes. Building:
//!
//! 1. Take `images/.lock` (concurrent builders wait, then find it built).
//! 2. Create a fresh subvolume `images/.build-<name>@<hash>`.
//! 3. Fill it (mmdebstrap for Debian, `busybox --install` for the test image),
//!    streaming the builder's progress lines to the caller.
//! 4. Shift every file's owner by the sprites' id base, so root inside a
//!    sprite (mapped to that base outside) owns what root owned.
//! 5. Make it read-only, rename it to `images/<name>@<hash>`, record it as
//!    current in `images/<name>.json`, and remove the build it replaces. A
//!    crash before the record leaves only a `.build-` subvolume, which the
//!    next build removes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::btrfs;
use crate::error::{Error, Result};
use crate::pool::{FileLock, Pool};
use crate::record;

/// Bumped whenever the build steps change in a way the recipe does not show
/// (2: Debian images keep their package lists).
const BUILD_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipe {
    /// A Debian root file system made by mmdebstrap.
    Debian {
        suite: String,
        variant: String,
        packages: Vec<String>,
        mirror: String,
        /// Written into the root after the packages (templates).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<RecipeFile>,
    },
    /// A tiny root of the host's static busybox, for fast tests.
    Busybox {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<RecipeFile>,
    },
    /// A root file system imported from a tar archive (see [`import`]);
    /// never built by [`ensure`].
    Imported { sha256: String },
    /// A checkpoint of a sprite kept as an image (see [`from_snapshot`]).
    Checkpoint { sprite: String, checkpoint: u64 },
}

/// A file a recipe writes into the image, owned by root inside.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecipeFile {
    /// Absolute path inside the sprite.
    pub path: String,
    #[serde(default = "RecipeFile::default_mode")]
    pub mode: u32,
    pub content: String,
}

impl RecipeFile {
    fn default_mode() -> u32 {
        0o644
    }
}

impl Recipe {
    /// What users get: Debian bookworm minbase with the everyday tools.
    pub fn debian(mirror: &str) -> Recipe {
        let packages = [
            "bash",
            "coreutils",
            "procps",
            "iproute2",
            "iputils-ping",
            "ca-certificates",
            "curl",
            "git",
            "python3",
            "less",
            "nano",
            "vim-tiny",
            "openssh-client",
            "sudo",
        ];
        Recipe::Debian {
            suite: "bookworm".into(),
            variant: "minbase".into(),
            packages: packages.iter().map(|p| p.to_string()).collect(),
            mirror: mirror.into(),
            files: Vec::new(),
        }
    }

    /// The test image: busybox alone.
    pub fn busybox() -> Recipe {
        Recipe::Busybox { files: Vec::new() }
    }

    /// This recipe with `packages` added and `files` written on top.
    pub fn with(mut self, more_packages: &[String], more_files: Vec<RecipeFile>) -> Recipe {
        match &mut self {
            Recipe::Debian {
                packages, files, ..
            } => {
                packages.extend(more_packages.iter().cloned());
                files.extend(more_files);
            }
            Recipe::Busybox { files } => files.extend(more_files),
            Recipe::Imported { .. } | Recipe::Checkpoint { .. } => {}
        }
        self
    }

    pub fn hash(&self, id_base: u32) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(self).expect("recipes serialize"));
        h.update(format!("build-version={BUILD_VERSION};id-base={id_base}"));
        hex::encode(&h.finalize()[..8])
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    pub hash: String,
    pub recipe: Recipe,
    pub built_at: u64,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    pub hash: String,
    pub path: PathBuf,
}

fn record_path(pool: &Pool, name: &str) -> PathBuf {
    pool.images_dir().join(format!("{name}.json"))
}

/// The current build of image `name`, if any.
pub fn current(pool: &Pool, name: &str) -> Result<Image> {
    let rec: ImageRecord =
        record::read(&record_path(pool, name))?.ok_or_else(|| Error::ImageMissing(name.into()))?;
    let path = pool.images_dir().join(format!("{}@{}", rec.name, rec.hash));
    if !path.exists() {
        return Err(Error::ImageMissing(name.into()));
    }
    Ok(Image {
        name: rec.name,
        hash: rec.hash,
        path,
    })
}

/// Builds image `name` from `recipe` unless that exact build exists.
/// `progress` receives one line per step of the build.
pub fn ensure(
    pool: &Pool,
    name: &str,
    recipe: &Recipe,
    id_base: u32,
    progress: &mut dyn FnMut(&str),
) -> Result<Image> {
    let hash = recipe.hash(id_base);
    let final_path = pool.images_dir().join(format!("{name}@{hash}"));
    let fast = current(pool, name);
    if let Ok(img) = &fast {
        if img.hash == hash {
            return fast;
        }
    }
    let _lock = FileLock::acquire(&pool.images_dir().join(".lock"))?;
    // Read-only means whole: built here, or received from a bucket to the end.
    if btrfs::is_readonly(&final_path).unwrap_or(false) {
        publish_replacing(pool, name, &hash, recipe)?;
        return current(pool, name);
    }
    let build = pool.images_dir().join(format!(".build-{name}@{hash}"));
    btrfs::remove_tree(&build).map_err(|e| Error::path("cannot remove stale build", &build, e))?;
    btrfs::create_subvolume(&build)
        .map_err(|e| Error::path("cannot create subvolume", &build, e))?;
    progress(&format!("building image {name} ({hash})"));
    let built = match recipe {
        Recipe::Debian { files, .. } => {
            build_debian(recipe, &build, progress).and_then(|()| write_files(&build, files))
        }
        Recipe::Busybox { files } => {
            build_busybox(&build).and_then(|()| write_files(&build, files))
        }
        Recipe::Imported { .. } | Recipe::Checkpoint { .. } => Err(Error::Invalid(format!(
            "image {name} is not built from a recipe; import it or save it again"
        ))),
    };
    if let Err(e) = built {
        let _ = btrfs::remove_tree(&build);
        return Err(e);
    }
    if !files_of(recipe).is_empty() {
        progress(&format!("wrote {} files", files_of(recipe).len()));
    }
    prepare_root(&build)?;
    progress("shifting file ownership to the sprites' id range");
    shift_ownership(&build, id_base)?;
    btrfs::set_readonly(&build, true)
        .map_err(|e| Error::path("cannot make read-only", &build, e))?;
    fs::rename(&build, &final_path).map_err(|e| Error::path("cannot rename", &build, e))?;
    // The build it replaces goes: sprites made from it have their own snapshots.
    publish_replacing(pool, name, &hash, recipe)?;
    progress(&format!("image {name} is ready"));
    current(pool, name)
}

fn publish(pool: &Pool, name: &str, hash: &str, recipe: &Recipe) -> Result<()> {
    let rec = ImageRecord {
        name: name.into(),
        hash: hash.into(),
        recipe: recipe.clone(),
        built_at: crate::now(),
    };
    record::write(&record_path(pool, name), &rec)
}

fn build_debian(recipe: &Recipe, dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let Recipe::Debian {
        suite,
        variant,
        packages,
        mirror,
        ..
    } = recipe
    else {
        unreachable!("called for Debian recipes only")
    };
    let mut cmd = Command::new("mmdebstrap");
    // A build dies with the thread that runs it (a server stopped mid-build):
    // the next build removes what it left.
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .arg(format!("--variant={variant}"))
        .arg(format!("--include={}", packages.join(",")))
        // The package lists stay, so a sprite's first `apt-get install x`
        // works without an `apt-get update` first.
        .arg("--skip=cleanup/apt/lists")
        .arg("--verbose")
        .arg(suite)
        .arg(dir)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Spawn("mmdebstrap".into(), e.to_string()))?;
    let stderr = child.stderr.take().expect("piped");
    let mut tail = std::collections::VecDeque::new();
    for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
        // mmdebstrap's own steps start with "I:"; apt's chatter is kept for errors only.
        if line.starts_with("I: ") || line.starts_with("E: ") {
            progress(line.trim_start_matches("I: "));
        }
        tail.push_back(line);
        if tail.len() > 20 {
            tail.pop_front();
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::Spawn("mmdebstrap".into(), e.to_string()))?;
    if !status.success() {
        let tail: Vec<String> = tail.into();
        return Err(Error::io(
            "mmdebstrap failed",
            std::io::Error::other(tail.join("\n")),
        ));
    }
    Ok(())
}

fn build_busybox(dir: &Path) -> Result<()> {
    let io = |e| Error::path("cannot build busybox image", dir, e);
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev", "var/tmp",
    ] {
        fs::create_dir_all(dir.join(d)).map_err(io)?;
    }
    fs::copy("/bin/busybox", dir.join("bin/busybox")).map_err(io)?;
    let list = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .map_err(|e| Error::Spawn("busybox".into(), e.to_string()))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join(applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        std::os::unix::fs::symlink(target, &link).map_err(io)?;
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").map_err(io)?;
    fs::write(dir.join("etc/group"), "root:x:0:\n").map_err(io)?;
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).map_err(io)?;
    Ok(())
}

fn files_of(recipe: &Recipe) -> &[RecipeFile] {
    match recipe {
        Recipe::Debian { files, .. } | Recipe::Busybox { files } => files,
        Recipe::Imported { .. } | Recipe::Checkpoint { .. } => &[],
    }
}

/// Writes a recipe's files into the root at `dir` (before the ownership
/// shift, so root inside owns them).
fn write_files(dir: &Path, files: &[RecipeFile]) -> Result<()> {
    for f in files {
        let rel = inside_path(&f.path)?;
        let target = dir.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::path("cannot create", parent, e))?;
        }
        fs::write(&target, &f.content).map_err(|e| Error::path("cannot write", &target, e))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(|e| Error::path("cannot chmod", &target, e))?;
    }
    Ok(())
}

/// `path`, absolute inside a sprite, as a path relative to its root; only
/// plain components are allowed.
fn inside_path(path: &str) -> Result<PathBuf> {
    use std::path::Component;
    let p = Path::new(path);
    let invalid = |reason| Error::InvalidPath {
        path: path.into(),
        reason,
    };
    if !p.is_absolute() {
        return Err(invalid("must be absolute"));
    }
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => rel.push(n),
            _ => return Err(invalid("must not hold . or ..")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(invalid("must name a file"));
    }
    Ok(rel)
}

/// Mount points every sprite needs, made once in the image.
fn prepare_root(dir: &Path) -> Result<()> {
    for d in [".sprite/bin", ".sprite/checkpoints"] {
        let p = dir.join(d);
        fs::create_dir_all(&p).map_err(|e| Error::path("cannot create", &p, e))?;
    }
    let init = dir.join(".sprite/bin/sprite-init");
    fs::write(&init, b"").map_err(|e| Error::path("cannot create", &init, e))?;
    Ok(())
}

/// Adds `id_base` to the owner and group of every file under `dir`.
/// chown clears set-id bits, so they are put back afterwards.
pub fn shift_ownership(dir: &Path, id_base: u32) -> Result<()> {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(|e| Error::io("cannot walk image", e.into()))?;
        let path = entry.path();
        let md = entry
            .metadata()
            .map_err(|e| Error::io("cannot stat image file", e.into()))?;
        if md.uid() >= id_base {
            continue;
        }
        std::os::unix::fs::lchown(path, Some(md.uid() + id_base), Some(md.gid() + id_base))
            .map_err(|e| Error::path("cannot chown", path, e))?;
        if !md.file_type().is_symlink() && md.mode() & 0o6000 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(|e| Error::path("cannot chmod", path, e))?;
        }
    }
    Ok(())
}

/// Every image with a current build, by name.
pub fn list(pool: &Pool) -> Result<Vec<ImageRecord>> {
    let dir = pool.images_dir();
    let mut out = Vec::new();
    let entries = fs::read_dir(&dir).map_err(|e| Error::path("cannot list", &dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            if let Some(rec) = record::read::<ImageRecord>(&path)? {
                out.push(rec);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes image `name`: its record and every build of it. Sprites made
/// from it keep their own snapshots and are not affected.
pub fn remove(pool: &Pool, name: &str) -> Result<()> {
    let _lock = FileLock::acquire(&pool.images_dir().join(".lock"))?;
    let rec = record_path(pool, name);
    match fs::remove_file(&rec) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ImageMissing(name.into()))
        }
        Err(e) => return Err(Error::path("cannot remove", &rec, e)),
    }
    let dir = pool.images_dir();
    let prefix = format!("{name}@");
    for entry in fs::read_dir(&dir).map_err(|e| Error::path("cannot list", &dir, e))? {
        let entry = entry.map_err(|e| Error::path("cannot list", &dir, e))?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            btrfs::remove_tree(&entry.path())
                .map_err(|e| Error::path("cannot remove", entry.path(), e))?;
        }
    }
    Ok(())
}

/// Makes image `name` from the read-only snapshot at `source` (a
/// checkpoint) in O(1): another read-only snapshot of it.
pub fn from_snapshot(pool: &Pool, name: &str, source: &Path, recipe: Recipe) -> Result<Image> {
    let _lock = FileLock::acquire(&pool.images_dir().join(".lock"))?;
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&recipe).expect("recipes serialize"));
    h.update(crate::now_ms().to_le_bytes());
    let hash = hex::encode(&h.finalize()[..8]);
    let path = pool.images_dir().join(format!("{name}@{hash}"));
    btrfs::snapshot(source, &path, true).map_err(|e| Error::path("cannot snapshot", source, e))?;
    publish_replacing(pool, name, &hash, &recipe)?;
    current(pool, name)
}

/// Records `hash` as the current build of `name` and removes the builds it
/// replaces (sprites made from them keep their own snapshots).
fn publish_replacing(pool: &Pool, name: &str, hash: &str, recipe: &Recipe) -> Result<()> {
    let old = record::read::<ImageRecord>(&record_path(pool, name))?;
    publish(pool, name, hash, recipe)?;
    if let Some(old) = old.filter(|o| o.hash != hash) {
        let path = pool.images_dir().join(format!("{}@{}", old.name, old.hash));
        if let Err(e) = btrfs::remove_tree(&path) {
            tracing::warn!(image = %name, error = %e, "cannot remove the replaced build");
        }
    }
    Ok(())
}

/// What an import may hold.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Sum of the regular files' sizes.
    pub max_bytes: u64,
    /// Owners and groups must be below this (the sprites' id range size).
    pub id_size: u32,
    /// Added to every owner (the sprites' id base).
    pub id_base: u32,
}

/// Imports image `name` from a tar archive (plain or gzip-compressed, as
/// `docker export` or `tar -C DIR -c .` make it). Refused, with nothing
/// left behind: device nodes, paths that leave the root, links to outside
/// it, owners outside the sprites' id range, more than `max_bytes`, and a
/// root without `/bin/sh`. Set-id bits are kept: they act inside the
/// sprite's own id range only.
pub fn import(
    pool: &Pool,
    name: &str,
    archive: &mut dyn std::io::Read,
    limits: ImportLimits,
    progress: &mut dyn FnMut(&str),
) -> Result<Image> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let build = pool
        .images_dir()
        .join(format!(".import-{name}-{}-{seq}", std::process::id()));
    btrfs::create_subvolume(&build)
        .map_err(|e| Error::path("cannot create subvolume", &build, e))?;
    let result = (|| {
        let mut hashing = HashingReader {
            inner: archive,
            hash: Sha256::new(),
        };
        let (files, bytes) = unpack_checked(&mut hashing, &build, limits)?;
        // The rest of the stream (tar's zero padding) counts for the hash.
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| Error::io("cannot read the archive", e))?;
        progress(&format!(
            "unpacked {files} entries, {}",
            sprites_wire::human_bytes(bytes)
        ));
        if fs::symlink_metadata(build.join("bin/sh")).is_err() {
            return Err(Error::Invalid(
                "the archive has no /bin/sh: sprites need a shell".into(),
            ));
        }
        prepare_root(&build)?;
        progress("shifting file ownership to the sprites' id range");
        shift_ownership(&build, limits.id_base)?;
        let digest = hashing.hash.finalize();
        let mut h = Sha256::new();
        h.update(digest);
        h.update(format!(
            "build-version={BUILD_VERSION};id-base={}",
            limits.id_base
        ));
        let hash = hex::encode(&h.finalize()[..8]);
        btrfs::set_readonly(&build, true)
            .map_err(|e| Error::path("cannot make read-only", &build, e))?;
        let _lock = FileLock::acquire(&pool.images_dir().join(".lock"))?;
        let final_path = pool.images_dir().join(format!("{name}@{hash}"));
        if final_path.exists() {
            // The same archive again: the build is already there.
            btrfs::remove_tree(&build).map_err(|e| Error::path("cannot remove", &build, e))?;
        } else {
            fs::rename(&build, &final_path).map_err(|e| Error::path("cannot rename", &build, e))?;
        }
        let recipe = Recipe::Imported {
            sha256: hex::encode(digest),
        };
        publish_replacing(pool, name, &hash, &recipe)?;
        progress(&format!("image {name} is ready"));
        current(pool, name)
    })();
    if result.is_err() {
        let _ = btrfs::remove_tree(&build);
    }
    result
}

struct HashingReader<'a> {
    inner: &'a mut dyn std::io::Read,
    hash: Sha256,
}

impl std::io::Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks the archive into `dir`, checking every entry first. Returns the
/// number of entries and the bytes of regular files.
fn unpack_checked(
    input: &mut dyn std::io::Read,
    dir: &Path,
    limits: ImportLimits,
) -> Result<(u64, u64)> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let gzip = input
        .fill_buf()
        .map_err(|e| Error::io("cannot read the archive", e))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn std::io::Read + '_> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let bad = |msg: String| Error::Invalid(msg);
    let (mut count, mut bytes) = (0u64, 0u64);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("the archive is damaged: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry's path is unreadable: {e}")))?
            .into_owned();
        let shown = path.display().to_string();
        if path.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        }) {
            return Err(bad(format!("{shown}: paths must stay inside the root")));
        }
        let header = entry.header();
        let kind = header.entry_type();
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::Directory | T::Symlink => {}
            T::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(format!("{shown}: unreadable link: {e}")))?
                    .unwrap_or_default();
                if target.components().any(|c| {
                    !matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )
                }) {
                    return Err(bad(format!(
                        "{shown}: a hard link must point inside the root"
                    )));
                }
            }
            T::Char | T::Block => {
                return Err(bad(format!(
                    "{shown}: device nodes are not allowed (sprites get their own /dev)"
                )))
            }
            T::Fifo => {
                return Err(bad(format!("{shown}: named pipes are not allowed")));
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            other => {
                return Err(bad(format!(
                    "{shown}: entries of type {other:?} are not allowed"
                )))
            }
        }
        let (uid, gid) = (
            header.uid().unwrap_or(u64::MAX),
            header.gid().unwrap_or(u64::MAX),
        );
        if uid >= u64::from(limits.id_size) || gid >= u64::from(limits.id_size) {
            return Err(bad(format!(
                "{shown}: owner {uid}:{gid} is outside the sprites' ids (0 to {})",
                limits.id_size - 1
            )));
        }
        if kind.is_file() {
            bytes += header.size().unwrap_or(0);
            if bytes > limits.max_bytes {
                return Err(bad(format!(
                    "the archive holds more than the limit of {}",
                    sprites_wire::human_bytes(limits.max_bytes)
                )));
            }
        }
        // unpack_in refuses to write through a link that leaves `dir`.
        let inside = entry
            .unpack_in(dir)
            .map_err(|e| Error::io(format!("cannot unpack {shown}"), e))?;
        if !inside {
            return Err(bad(format!("{shown}: paths must stay inside the root")));
        }
        count += 1;
    }
    Ok((count, bytes))
}
