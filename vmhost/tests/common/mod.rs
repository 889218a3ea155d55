//! Integration harness: a real host on a real btrfs pool, real crun
//! sandboxes and the real Debian image. Needs root; it fails (never skips)
//! without it. Each test gets its own instance in a shared pool, so tests
//! run in parallel without seeing each other's sprites, and the images are
//! built once for all of them.

#![allow(dead_code)]

use vmhost::{Host, SpriteName};

pub mod replica;

// Each test binary uses its own part of this module.
#[allow(unused_imports)]
pub use vmhost::testing::{config, data_dir, host, run_dir};

pub fn name(s: &str) -> SpriteName {
    SpriteName::parse(s).expect("valid test name")
}

/// A fresh host instance with one running sprite made from the default image.
pub async fn sprite(instance: &str, sprite: &str) -> (Host, SpriteName) {
    let host = host(instance).await;
    let s = name(sprite);
    host.create(&s, vmhost::CreateOptions::default())
        .await
        .unwrap_or_else(|e| panic!("create {sprite}: {e} ({e:?})"));
    (host, s)
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
    vmhost::testing::destroy_all(host).await;
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
    while let Some(chunk) = stream.output.next().await.expect("read session output") {
        if let vmhost::Chunk::Exit(c) = chunk {
            code = Some(c);
        }
    }
    code
}
