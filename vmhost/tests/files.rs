//! File access from the host: every operation, ownership as the sprite
//! sees it, and hostile paths and symlinks that must stay inside.

mod common;

use common::{cleanup, ok, sprite};
use vmhost::fs::Kind;
use vmhost::Error;

#[tokio::test(flavor = "multi_thread")]
async fn every_file_operation_works_and_maps_ownership() {
    let (host, s) = sprite("t-files", "files").await;
    let fs = host.files(&s).unwrap();

    let e = fs
        .write("/srv/site/index.html", b"<h1>hi</h1>", None, true)
        .unwrap();
    assert_eq!(
        (e.kind, e.size, e.mode, e.uid, e.gid),
        (Kind::File, 11, 0o644, 0, 0)
    );
    assert_eq!(
        ok(&host, &s, "cat /srv/site/index.html").await,
        "<h1>hi</h1>"
    );
    assert_eq!(
        ok(
            &host,
            &s,
            "stat -c '%U:%G %a' /srv/site /srv/site/index.html"
        )
        .await,
        "root:root 755\nroot:root 644"
    );
    assert_eq!(
        fs.read("/srv/site/index.html", 1 << 20).unwrap(),
        b"<h1>hi</h1>"
    );

    // Replacing keeps owner and mode.
    ok(
        &host,
        &s,
        "useradd -m alice && chown alice /srv/site/index.html && chmod 600 /srv/site/index.html",
    )
    .await;
    let alice: u32 = ok(&host, &s, "id -u alice").await.parse().unwrap();
    let e = fs
        .write("/srv/site/index.html", b"v2", None, false)
        .unwrap();
    assert_eq!((e.uid, e.mode), (alice, 0o600));

    fs.mkdir("/srv/a/b/c", true).unwrap();
    assert!(matches!(
        fs.mkdir("/srv/a", false),
        Err(Error::FileExists(_))
    ));
    fs.write("/srv/a/b/c/f.txt", b"deep", None, false).unwrap();
    let names: Vec<String> = fs
        .list("/srv/a/b/c")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["f.txt"]);
    assert_eq!(fs.stat("/").unwrap().kind, Kind::Dir);

    fs.copy("/srv/a", "/srv/a-copy", true, false).unwrap();
    assert_eq!(fs.read("/srv/a-copy/b/c/f.txt", 100).unwrap(), b"deep");
    assert!(matches!(
        fs.copy("/srv/a", "/srv/a-copy", true, false),
        Err(Error::FileExists(_))
    ));
    assert!(matches!(
        fs.copy("/srv/a", "/srv/x", false, false),
        Err(Error::FileConflict { .. })
    ));

    // A copy keeps owner, mode and times only when asked (`cp -p`);
    // otherwise it is root's, made now, without set-id or group write.
    ok(
        &host,
        &s,
        "chown alice /srv/site/index.html && chmod 4775 /srv/site/index.html \
         && touch -d 2001-02-03T04:05:06 /srv/site/index.html",
    )
    .await;
    let kept = fs
        .copy("/srv/site/index.html", "/srv/kept.html", false, true)
        .unwrap();
    assert_eq!((kept.uid, kept.mode), (alice, 0o4775));
    assert_eq!(ok(&host, &s, "date -u -r /srv/kept.html +%Y").await, "2001");
    let fresh = fs
        .copy("/srv/site/index.html", "/srv/fresh.html", false, false)
        .unwrap();
    assert_eq!((fresh.uid, fresh.gid, fresh.mode), (0, 0, 0o755));
    assert!(fresh.modified > kept.modified);
    assert_eq!(fs.read("/srv/fresh.html", 100).unwrap(), b"v2");

    // Writes stream in: a write dropped halfway leaves the old file and
    // no trace; a finished one is whole, however large.
    let files = host.sprite_files(&s).await.unwrap();
    let mut half = files.create("/srv/fresh.html", None, false).await.unwrap();
    half.write(b"half").await.unwrap();
    // Unnamed while written: a host killed now leaves nothing in the tree.
    assert_eq!(
        ok(&host, &s, "ls -A /srv | grep -c sprite-tmp || true").await,
        "0"
    );
    drop(half);
    assert_eq!(fs.read("/srv/fresh.html", 100).unwrap(), b"v2");
    assert_eq!(
        ok(&host, &s, "ls -A /srv | grep -c sprite-tmp || true").await,
        "0"
    );
    let mut big = files.create("/srv/big.bin", None, false).await.unwrap();
    for _ in 0..80 {
        big.write(&[7u8; 1 << 20]).await.unwrap();
    }
    assert_eq!(big.finish().await.unwrap().size, 80 << 20);
    let (mut reader, size) = files.open_read("/srv/big.bin").await.unwrap();
    let mut read = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut read)
        .await
        .unwrap();
    assert_eq!((size, read.len()), (80 << 20, 80 << 20));
    fs.remove("/srv/big.bin", false).unwrap();
    fs.rename("/srv/a-copy", "/srv/moved").unwrap();
    assert!(matches!(
        fs.stat("/srv/a-copy"),
        Err(Error::FileNotFound(_))
    ));

    let e = fs.chmod("/srv/moved/b/c/f.txt", 0o751).unwrap();
    assert_eq!(e.mode, 0o751);
    let e = fs
        .chown("/srv/moved/b/c/f.txt", Some(alice), Some(alice))
        .unwrap();
    assert_eq!(e.uid, alice);
    assert_eq!(
        ok(&host, &s, "stat -c '%U %a' /srv/moved/b/c/f.txt").await,
        "alice 751"
    );
    assert!(matches!(
        fs.chown("/srv/moved", Some(70000), Some(0)),
        Err(Error::InvalidPath { .. })
    ));

    assert!(matches!(
        fs.remove("/srv/moved", false),
        Err(Error::FileConflict { .. })
    ));
    fs.remove("/srv/moved", true).unwrap();
    assert!(matches!(
        fs.remove("/srv/moved", true),
        Err(Error::FileNotFound(_))
    ));
    assert_eq!(
        ok(&host, &s, "ls /srv/moved 2>/dev/null || echo gone").await,
        "gone"
    );

    // Files work while the sprite sleeps, without waking it.
    host.sleep_cold(&s).await.unwrap();
    fs.write("/root/while-asleep", b"z", None, false).unwrap();
    host.wake(&s).await.unwrap();
    assert_eq!(ok(&host, &s, "cat /root/while-asleep").await, "z");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_paths_and_symlinks_stay_inside_the_sprite() {
    let (host, s) = sprite("t-hostile", "evil").await;
    let fs = host.files(&s).unwrap();
    // A file at the same path on the host and on the sprite's own disk
    // (not /etc/hostname: a sprite's is a per-start file of the run dir).
    let host_secret = std::fs::read("/etc/issue").unwrap();
    ok(&host, &s, "echo sprite-issue > /etc/issue").await;

    // `..` stops at the sprite's root.
    assert_eq!(
        fs.read("/../../../../etc/issue", 100).unwrap(),
        b"sprite-issue\n"
    );
    assert_eq!(fs.read("../etc/issue", 100).unwrap(), b"sprite-issue\n");
    // Symlinks planted by the tenant resolve inside the sprite.
    ok(&host, &s, "ln -s /etc/issue /root/abs; ln -s ../../../../../../etc/issue /root/rel; ln -s / /root/rootlink").await;
    assert_eq!(fs.read("/root/abs", 100).unwrap(), b"sprite-issue\n");
    assert_eq!(fs.read("/root/rel", 100).unwrap(), b"sprite-issue\n");
    assert_eq!(
        fs.read("/root/rootlink/etc/issue", 100).unwrap(),
        b"sprite-issue\n"
    );
    // Writing through a symlink never touches the host.
    fs.write("/root/rootlink/etc/issue", b"pwned", None, false)
        .unwrap();
    assert_eq!(std::fs::read("/etc/issue").unwrap(), host_secret);
    fs.remove("/root/abs", false).unwrap();
    assert_eq!(
        std::fs::read("/etc/issue").unwrap(),
        host_secret,
        "removing a symlink removes only the link"
    );
    // /proc magic links are refused.
    ok(&host, &s, "ln -s /proc/1/root /root/magic").await;
    assert!(fs.read("/root/magic/etc/issue", 100).is_err());
    // Malformed paths get clear errors.
    assert!(matches!(fs.read("", 10), Err(Error::InvalidPath { .. })));
    assert!(matches!(
        fs.read("/etc/\0passwd", 10),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        fs.remove("/", true),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        fs.write("/..", b"x", None, false),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        fs.read("/etc", 10),
        Err(Error::FileConflict { .. })
    ));
    assert!(
        matches!(fs.read("/etc/passwd", 3), Err(Error::FileConflict { .. })),
        "size limit"
    );
    cleanup(&host).await;
}
