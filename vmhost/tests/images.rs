//! Images beyond the base: recipes with files (templates), roots imported
//! from tar archives with their refusals, and checkpoints kept as images.

mod common;

use common::{cleanup, host, name, ok};
use vmhost::image::{Recipe, RecipeFile};
use vmhost::{CreateOptions, Error};

const MB: u64 = 1 << 20;

fn from_image(image: &str) -> CreateOptions {
    CreateOptions {
        image: Some(image.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recipes_files_are_in_every_sprite_made_from_it() {
    let host = host("t-img-recipe").await;
    let files = vec![
        RecipeFile {
            path: "/root/site/index.html".into(),
            mode: 0o644,
            content: "<h1>Hello</h1>\n".into(),
        },
        RecipeFile {
            path: "/usr/local/bin/hello".into(),
            mode: 0o755,
            content: "#!/bin/sh\necho hello from the template\n".into(),
        },
    ];
    let recipe = Recipe::busybox().with(&[], files);
    // Built afresh every run: the pool outlives the tests.
    match host.remove_image("t-recipe-files") {
        Ok(()) | Err(Error::ImageMissing(_)) => {}
        Err(e) => panic!("remove the image of an earlier run: {e}"),
    }
    let mut lines = Vec::new();
    let image = host
        .ensure_image("t-recipe-files", &recipe, &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("wrote 2 files")),
        "{lines:?}"
    );
    // An empty file list keeps the recipe's hash: the base images stay built.
    assert_eq!(
        Recipe::busybox().with(&[], vec![]).hash(100_000),
        Recipe::busybox().hash(100_000)
    );
    assert_ne!(recipe.hash(100_000), Recipe::busybox().hash(100_000));

    let s = name("site");
    let info = host.create(&s, from_image("t-recipe-files")).await.unwrap();
    assert_eq!(info.image, format!("t-recipe-files@{}", image.hash));
    assert_eq!(
        ok(&host, &s, "cat /root/site/index.html").await,
        "<h1>Hello</h1>"
    );
    assert_eq!(ok(&host, &s, "hello").await, "hello from the template");
    // Root inside owns them, and the sprite may change them.
    assert_eq!(
        ok(&host, &s, "stat -c %u:%a /root/site/index.html").await,
        "0:644"
    );
    ok(&host, &s, "echo changed > /root/site/index.html").await;

    // A second build of the same recipe is the same image; a changed
    // recipe is a new one, and the old build goes (the sprite keeps its copy).
    let again = host
        .ensure_image("t-recipe-files", &recipe, &mut |_| {})
        .unwrap();
    assert_eq!(again.hash, image.hash);
    let changed = recipe.clone().with(
        &[],
        vec![RecipeFile {
            path: "/root/site/about.html".into(),
            mode: 0o644,
            content: "about\n".into(),
        }],
    );
    let newer = host
        .ensure_image("t-recipe-files", &changed, &mut |_| {})
        .unwrap();
    assert_ne!(newer.hash, image.hash);
    assert!(!image.path.exists());
    assert_eq!(ok(&host, &s, "cat /root/site/index.html").await, "changed");

    let hostile = Recipe::busybox().with(
        &[],
        vec![RecipeFile {
            path: "/root/../../escape".into(),
            mode: 0o644,
            content: String::new(),
        }],
    );
    let err = host
        .ensure_image("t-recipe-hostile", &hostile, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
    assert!(matches!(
        host.create(&name("nope"), from_image("t-recipe-hostile"))
            .await,
        Err(Error::ImageMissing(_))
    ));
    cleanup(&host).await;
}

/// A small root: busybox, its shell, a set-uid file, a passwd.
fn archive(extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let busybox = std::fs::read("/bin/busybox").unwrap();
    dir(&mut b, "bin");
    file(&mut b, "bin/busybox", 0o755, &busybox);
    link(&mut b, tar::EntryType::Symlink, "bin/sh", "busybox");
    link(&mut b, tar::EntryType::Symlink, "bin/cat", "busybox");
    link(&mut b, tar::EntryType::Symlink, "bin/stat", "busybox");
    dir(&mut b, "etc");
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
    );
    file(&mut b, "etc/motd", 0o4755, b"set-uid inside only\n");
    dir(&mut b, "root");
    extra(&mut b);
    b.into_inner().unwrap()
}

fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(path).unwrap();
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header(tar::EntryType::Directory, path, 0o755, 0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, path, mode, data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
    let mut h = header(kind, path, 0o777, 0);
    h.set_link_name(target).unwrap();
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
}

fn raw_path(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    // set_path refuses `..`; a hostile archive writes the bytes itself.
    let mut h = header(tar::EntryType::Regular, "placeholder", 0o644, 1);
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().name[path.len()..].fill(0);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imported_root_runs_and_hostile_archives_leave_nothing() {
    let host = host("t-img-import").await;
    let good = archive(|_| {});
    let image = host
        .import_image("t-imported", &mut &good[..], 64 * MB, &mut |_| {})
        .unwrap();
    let s = name("imported");
    host.create(&s, from_image("t-imported")).await.unwrap();
    assert_eq!(ok(&host, &s, "cat /etc/motd").await, "set-uid inside only");
    // The set-uid bit is kept, on a file owned by the sprite's own root.
    assert_eq!(ok(&host, &s, "stat -c %u:%a /etc/motd").await, "0:4755");
    let outside = std::fs::metadata(image.path.join("etc/motd")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(outside.uid(), host.config().ids.base);

    // Gzip-compressed, as `tar -z` makes it; the same content is the same build.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &good).unwrap();
    let gz = gz.finish().unwrap();
    let zipped = host
        .import_image("t-imported-gz", &mut &gz[..], 64 * MB, &mut |_| {})
        .unwrap();
    assert!(zipped.path.join("bin/busybox").exists());

    let hostile: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "device node",
            archive(|b| {
                let mut h = header(tar::EntryType::Char, "dev-mem", 0o600, 0);
                h.set_device_major(1).unwrap();
                h.set_device_minor(1).unwrap();
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }),
            "device nodes are not allowed",
        ),
        (
            "parent path",
            archive(|b| raw_path(b, "../../escaped")),
            "inside the root",
        ),
        (
            "write through a link to outside",
            archive(|b| {
                link(b, tar::EntryType::Symlink, "host", "/tmp");
                file(b, "host/t-img-import-escaped", 0o644, b"x");
            }),
            "cannot unpack",
        ),
        (
            "hard link to outside",
            archive(|b| link(b, tar::EntryType::Link, "passwd", "../../../etc/passwd")),
            "hard link must point inside",
        ),
        (
            "owner outside the id range",
            archive(|b| {
                let mut h = header(tar::EntryType::Regular, "theirs", 0o644, 1);
                h.set_uid(100_000);
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
            }),
            "outside the sprites' ids",
        ),
        (
            "too large",
            archive(|b| file(b, "big", 0o644, &vec![0u8; 3 << 20])),
            "more than the limit",
        ),
        (
            "not a tar archive",
            b"hello, not an archive".to_vec(),
            "archive",
        ),
    ];
    for (what, data, expected) in hostile {
        let err = host
            .import_image("t-hostile", &mut &data[..], 4 * MB, &mut |_| {})
            .expect_err(what);
        assert!(
            err.to_string().contains(expected) || format!("{err:?}").contains(expected),
            "{what}: {err} ({err:?})"
        );
    }
    assert!(!std::path::Path::new("/tmp/t-img-import-escaped").exists());
    let mut b = tar::Builder::new(Vec::new());
    dir(&mut b, "etc");
    let shell_less = b.into_inner().unwrap();
    let err = host
        .import_image("t-hostile", &mut &shell_less[..], 4 * MB, &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("/bin/sh"), "{err}");
    // Nothing of the refused imports is left: no image, no build directory.
    assert!(host.images().unwrap().iter().all(|i| i.name != "t-hostile"));
    let leftovers: Vec<_> = std::fs::read_dir(host.pool().images_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("t-hostile"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    host.remove_image("t-imported-gz").unwrap();
    assert!(!zipped.path.exists());
    assert!(matches!(
        host.remove_image("t-imported-gz"),
        Err(Error::ImageMissing(_))
    ));
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_kept_as_an_image_starts_new_sprites() {
    let host = host("t-img-save").await;
    let s = name("teacher");
    host.create(&s, from_image("busybox")).await.unwrap();
    ok(&host, &s, "echo 'step one' > /root/task.txt").await;
    let cp = host.checkpoint(&s, "ready").await.unwrap();
    ok(&host, &s, "echo 'later work' > /root/task.txt").await;

    let image = host.save_image(&s, cp.id, "t-saved").await.unwrap();
    let copy = name("student");
    let info = host.create(&copy, from_image("t-saved")).await.unwrap();
    assert_eq!(info.image, format!("t-saved@{}", image.hash));
    assert_eq!(ok(&host, &copy, "cat /root/task.txt").await, "step one");
    // The image does not depend on the sprite or its checkpoint any more.
    host.destroy(&s).await.unwrap();
    let again = name("student2");
    host.create(&again, from_image("t-saved")).await.unwrap();
    assert_eq!(ok(&host, &again, "cat /root/task.txt").await, "step one");
    // Saving again under the name replaces the build.
    let s2 = name("teacher2");
    host.create(&s2, from_image("busybox")).await.unwrap();
    let cp2 = host.checkpoint(&s2, "v2").await.unwrap();
    let newer = host.save_image(&s2, cp2.id, "t-saved").await.unwrap();
    assert_ne!(newer.hash, image.hash);
    assert!(!image.path.exists());
    assert!(matches!(
        host.save_image(&s2, vmhost::CheckpointId(99), "t-saved")
            .await,
        Err(Error::CheckpointNotFound(..))
    ));
    // An operator lists and removes images with the command line; sprites
    // made from a removed image keep their files.
    let listed = vmhost_cli(&["image-list"]);
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["t-saved", "checkpoint"]),
        "{listed}"
    );
    assert!(vmhost_cli(&["image-remove", "t-saved"]).status.success());
    let listed = vmhost_cli(&["image-list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("t-saved"));
    assert_eq!(ok(&host, &again, "cat /root/task.txt").await, "step one");
    assert!(host
        .create(&name("late"), from_image("t-saved"))
        .await
        .is_err());
    assert!(!vmhost_cli(&["image-remove", "../hosts"]).status.success());
    cleanup(&host).await;
}

fn vmhost_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vmhost"))
        .env("SPRITES_DATA_DIR", common::data_dir())
        .env("SPRITES_RUN_DIR", common::run_dir())
        .env("SPRITES_INSTANCE", "t-img-save")
        .args(args)
        .output()
        .expect("run vmhost")
}
