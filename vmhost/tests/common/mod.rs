//! Integration harness: a real host on a real btrfs pool, real runc
//! sandboxes and the real Debian image. Needs root; it fails (never skips)
//! without it. Each test gets its own instance in a shared pool, so tests
//! run in parallel without seeing each other's sprites, and the images are
//! built once for all of them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use vmhost::image::Recipe;
use vmhost::{Host, HostConfig, SpriteName};

pub fn data_dir() -> PathBuf {
    std::env::var_os("SPRITES_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/sprites-test"))
}

pub fn run_dir() -> PathBuf {
    PathBuf::from("/run/sprites-test")
}

pub fn mirror() -> String {
    std::env::var("SPRITES_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

pub fn config(instance: &str) -> HostConfig {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the integration tests need root (run scripts/test as root)"
    );
    let mut cfg = HostConfig::new(data_dir());
    cfg.run_dir = run_dir();
    cfg.instance = instance.to_string();
    cfg.stop_grace = std::time::Duration::from_millis(500);
    cfg
}

static IMAGES: OnceLock<()> = OnceLock::new();

/// Opens the host of `instance` with the images built and no sprites left
/// over from an earlier run of the same test.
pub async fn host(instance: &str) -> Host {
    let host = Host::open(config(instance)).await.expect("open host");
    IMAGES.get_or_init(|| {
        let mut progress = |l: &str| eprintln!("image: {l}");
        host.ensure_image("busybox", &Recipe::Busybox, &mut progress)
            .expect("busybox image");
        host.ensure_image("debian", &Recipe::debian(&mirror()), &mut progress)
            .expect("debian image");
    });
    for s in host.list().expect("list") {
        host.destroy(&name(&s.name))
            .await
            .expect("remove leftover sprite");
    }
    host
}

pub fn name(s: &str) -> SpriteName {
    SpriteName::parse(s).expect("valid test name")
}

/// Runs a shell command in the sprite and returns (stdout, stderr, code).
pub async fn sh(host: &Host, sprite: &SpriteName, script: &str) -> (String, String, i32) {
    let out = host
        .run(sprite, &["/bin/sh", "-c", script], b"")
        .await
        .unwrap_or_else(|e| panic!("exec {script:?}: {e} ({e:?})"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.code,
    )
}

/// Like [`sh`], asserting success and returning trimmed stdout.
pub async fn ok(host: &Host, sprite: &SpriteName, script: &str) -> String {
    let (out, err, code) = sh(host, sprite, script).await;
    assert_eq!(code, 0, "{script:?} failed: {err}");
    out.trim().to_string()
}

/// Destroys every sprite of the host.
pub async fn cleanup(host: &Host) {
    for s in host.list().expect("list") {
        host.destroy(&name(&s.name)).await.expect("destroy");
    }
}

/// Creates a sprite from the default image with the given limits.
pub async fn create_limited(host: &Host, sprite: &SpriteName, limits: vmhost::runtime::Limits) {
    let opts = vmhost::CreateOptions {
        limits: Some(limits),
        ..Default::default()
    };
    host.create(sprite, opts).await.expect("create with limits");
}

/// Drains a session's output to its end; its exit code, if it sent one.
pub async fn exit_code(stream: &mut vmhost::Stream) -> Option<i32> {
    let mut code = None;
    while let Some(f) = stream.output.next().await.expect("read session output") {
        if f.tag == sprite_init::Tag::Exit {
            code = Some(f.as_i32().expect("exit code"));
        }
    }
    code
}
