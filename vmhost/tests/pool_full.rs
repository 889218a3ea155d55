//! A full storage pool: writes inside fail with a clear error, host
//! operations report `PoolFull` (or succeed), and nothing already stored is
//! lost. Uses its own small pool so filling it harms no other test.

mod common;

use std::path::PathBuf;

use common::{name, ok, sh};
use vmhost::image::Recipe;
use vmhost::runtime::Limits;
use vmhost::{CreateOptions, Error, Host};

#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_loses_nothing() {
    let mut cfg = common::config("t-full");
    cfg.data_dir = PathBuf::from(format!("{}-small", common::data_dir().display()));
    cfg.pool_image_size = 1 << 30;
    cfg.default_image = "busybox".into();
    let host = Host::open(cfg).await.unwrap();
    host.ensure_image("busybox", &Recipe::busybox(), &mut |_| {})
        .unwrap();
    common::cleanup(&host).await;
    host.pool().wait_for_deletions().unwrap();

    let s = name("filler");
    let unlimited = Limits {
        disk_bytes: 64 << 30,
        ..Limits::default()
    };
    common::create_limited(&host, &s, unlimited).await;
    ok(&host, &s, "echo precious > /root/precious && sync").await;
    let v0 = host.checkpoint(&s, "before filling").await.unwrap();

    let (_, err, code) = sh(
        &host,
        &s,
        "dd if=/dev/urandom of=/root/fill bs=1M count=4096 conv=fsync",
    )
    .await;
    assert_ne!(code, 0, "the pool is smaller than that");
    assert!(
        err.contains("No space left") || err.contains("quota"),
        "{err}"
    );

    // Host operations either work or say the pool is full.
    let while_full = host.checkpoint(&s, "while full").await;
    for attempt in [
        while_full.as_ref().map(|_| ()).map_err(|e| match e {
            Error::PoolFull => Error::PoolFull,
            other => panic!("checkpoint on a full pool: {other:?}"),
        }),
        host.create(&name("late"), CreateOptions::default())
            .await
            .map(|_| ()),
        host.files(&s)
            .unwrap()
            .write("/root/more", &vec![7u8; 8 << 20], None, false)
            .map(|_| ()),
    ] {
        match attempt {
            Ok(()) | Err(Error::PoolFull) | Err(Error::QuotaExceeded) => {}
            Err(e) => panic!("a full pool must give a clear error, got {e:?}"),
        }
    }

    // Nothing stored before is lost, and freeing space brings it back.
    assert_eq!(ok(&host, &s, "cat /root/precious").await, "precious");
    ok(&host, &s, "rm -f /root/fill /root/more && sync").await;
    if let Ok(c) = while_full {
        host.delete_checkpoint(&s, c.id).await.unwrap();
    }
    host.pool().wait_for_deletions().unwrap();
    host.restore(&s, v0.id).await.unwrap();
    assert_eq!(ok(&host, &s, "cat /root/precious").await, "precious");
    host.create(&name("after"), CreateOptions::default())
        .await
        .unwrap();
    common::cleanup(&host).await;
}
