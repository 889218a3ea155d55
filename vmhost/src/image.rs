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
//! 5. Make it read-only, rename it to `images/<name>@<hash>`, and record it
//!    as current in `images/<name>.json`. A crash before the record leaves
//!    only a `.build-` subvolume, which the next build removes.

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

/// Bumped whenever the build steps change in a way the recipe does not show.
const BUILD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipe {
    /// A Debian root file system made by mmdebstrap.
    Debian {
        suite: String,
        variant: String,
        packages: Vec<String>,
        mirror: String,
    },
    /// A tiny root of the host's static busybox, for fast tests.
    Busybox,
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
        }
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
    if final_path.exists() {
        publish(pool, name, &hash, recipe)?;
        return current(pool, name);
    }
    let build = pool.images_dir().join(format!(".build-{name}@{hash}"));
    btrfs::remove_tree(&build).map_err(|e| Error::path("cannot remove stale build", &build, e))?;
    btrfs::create_subvolume(&build)
        .map_err(|e| Error::path("cannot create subvolume", &build, e))?;
    progress(&format!("building image {name} ({hash})"));
    let built = match recipe {
        Recipe::Debian { .. } => build_debian(recipe, &build, progress),
        Recipe::Busybox => build_busybox(&build),
    };
    if let Err(e) = built {
        let _ = btrfs::remove_tree(&build);
        return Err(e);
    }
    prepare_root(&build)?;
    progress("shifting file ownership to the sprites' id range");
    shift_ownership(&build, id_base)?;
    btrfs::set_readonly(&build, true)
        .map_err(|e| Error::path("cannot make read-only", &build, e))?;
    fs::rename(&build, &final_path).map_err(|e| Error::path("cannot rename", &build, e))?;
    publish(pool, name, &hash, recipe)?;
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
    } = recipe
    else {
        unreachable!("called for Debian recipes only")
    };
    let mut child = Command::new("mmdebstrap")
        .arg(format!("--variant={variant}"))
        .arg(format!("--include={}", packages.join(",")))
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
