//! Replication to a real Garage (started by scripts/test, which exports
//! `SPRITES_TEST_OBJECT_STORE` and the `AWS_*` variables): a sprite's
//! checkpoints shipped from the shared test pool come back, bit for bit,
//! into a second pool of their own: another machine.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::replica::{bucket, busybox, first_host, first_host_keeping, key_file, second_host};
use common::{name, ok};
use sha2::{Digest, Sha256};
use vmhost::replica::{Bucket, Location};
use vmhost::{CheckpointId, CreateOptions, Host};

/// Everything a file system holds that a user could tell apart: each
/// entry's path, kind, mode, owner, size, content, link target, device
/// and extended attributes, in one digest per entry.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = std::fs::symlink_metadata(path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut h = Sha256::new();
        h.update(format!(
            "{:o} {} {} {} ",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.len()
        ));
        let kind = meta.file_type();
        if kind.is_file() {
            h.update(std::fs::read(path).unwrap());
        } else if kind.is_symlink() {
            h.update(std::fs::read_link(path).unwrap().as_os_str().as_bytes());
        } else if kind.is_char_device() || kind.is_block_device() {
            h.update(meta.rdev().to_le_bytes());
        }
        for (k, v) in xattrs(path) {
            h.update(&k);
            h.update(&v);
        }
        out.insert(rel, hex::encode(h.finalize()));
    }
    out
}

fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    // SAFETY: a valid C string and a buffer of the length given.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    let mut out = Vec::new();
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let cname = std::ffi::CString::new(name).unwrap();
        let mut value = vec![0u8; 65536];
        // SAFETY: valid C strings and a buffer of the length given.
        let m = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(m >= 0, "lgetxattr {}", path.display());
        value.truncate(m as usize);
        out.push((name.to_vec(), value));
    }
    out.sort();
    out
}

fn checkpoint_dir(host: &Host, sprite: &str, id: CheckpointId) -> PathBuf {
    host.pool()
        .host_dir(&host.config().instance)
        .join("sprites")
        .join(sprite)
        .join("checkpoints")
        .join(id.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_comes_back_on_another_machine_bit_for_bit() {
    let bucket = bucket("whole");
    let mut cfg = common::config("t-replica");
    cfg.bucket = Some(bucket.clone());
    let a = vmhost::testing::host_with(cfg).await;
    let s = name("kept");
    a.create(&s, CreateOptions::default()).await.unwrap();
    ok(
        &a,
        &s,
        "set -e; mkdir -p /home/work && cd /home/work
         echo first > notes.txt
         head -c 3000000 /dev/urandom > blob.bin
         chown 1000:1000 notes.txt && chmod 640 notes.txt
         ln -s notes.txt link && mkfifo pipe
         python3 -c 'import os; os.setxattr(\"notes.txt\", \"user.color\", b\"blue\")'",
    )
    .await;
    let first = a.checkpoint(&s, "first").await.unwrap();
    ok(
        &a,
        &s,
        "set -e; export DEBIAN_FRONTEND=noninteractive
         apt-get install -y -q jq >/dev/null 2>&1
         echo second >> /home/work/notes.txt && rm /home/work/blob.bin",
    )
    .await;
    let second = a.checkpoint(&s, "second").await.unwrap();

    let shipped = a.ship(&s).await.unwrap();
    assert_eq!(shipped.checkpoints, vec![first.id, second.id]);
    let replica = a.replication(&s).unwrap();
    assert_eq!(replica.last_shipped, Some(second.id));
    assert_eq!(replica.pending, 0);
    assert_eq!(replica.error, None);
    // Nothing new: nothing shipped.
    assert_eq!(a.ship(&s).await.unwrap().checkpoints, vec![]);

    let want: Vec<_> = [first.id, second.id]
        .iter()
        .map(|id| tree(&checkpoint_dir(&a, "kept", *id)))
        .collect();
    // The first host's sprite stops (it would hold the same sandbox name).
    a.sleep_cold(&s).await.unwrap();

    let b = second_host("recover", "t-replica", bucket.clone()).await;
    let found = b.recover().await.unwrap();
    assert_eq!(found.sprites, vec![s.clone()], "{:?}", found.failures);
    assert!(found.failures.is_empty(), "{:?}", found.failures);
    // Listed at once, its disk still in the bucket.
    let listed = b.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(b.replication(&s).unwrap().location, Location::Bucket);
    let ids: Vec<_> = b.checkpoints(&s).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![first.id, second.id]);

    // First use brings it back.
    b.wake(&s).await.unwrap();
    assert_eq!(b.replication(&s).unwrap().location, Location::Local);
    for (id, want) in [first.id, second.id].iter().zip(&want) {
        let got = tree(&checkpoint_dir(&b, "kept", *id));
        assert_eq!(got.len(), want.len(), "entries of {id}");
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(v))
            .map(|(k, _)| k)
            .take(5)
            .collect();
        assert!(differ.is_empty(), "{id} differs at {differ:?}");
    }
    assert_eq!(
        ok(&b, &s, "cat /home/work/notes.txt").await,
        "first\nsecond"
    );
    assert!(ok(&b, &s, "jq --version").await.starts_with("jq-"));
    assert_eq!(
        ok(&b, &s, "stat -c '%u %a' /home/work/notes.txt; python3 -c 'import os; print(os.getxattr(\"/home/work/notes.txt\", \"user.color\").decode())'").await,
        "1000 640\nblue"
    );
    // It goes on: a new checkpoint there ships against what came back.
    ok(&b, &s, "echo third >> /home/work/notes.txt").await;
    let third = b.checkpoint(&s, "third").await.unwrap();
    let more = b.ship(&s).await.unwrap();
    assert_eq!(more.checkpoints, vec![third.id]);
    assert!(
        more.bytes < 1 << 20,
        "only the change travels: {} bytes",
        more.bytes
    );

    common::cleanup(&b).await;
    common::cleanup(&a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_object_refuses_its_checkpoint_by_name_and_the_rest_comes_back() {
    let bucket = bucket("damaged");
    let a = first_host("t-replica-bad", &bucket).await;
    let (hurt, whole) = (name("hurt"), name("whole"));
    let mut ids = Vec::new();
    for s in [&hurt, &whole] {
        a.create(s, busybox()).await.unwrap();
        for word in ["one", "two", "three"] {
            ok(&a, s, &format!("echo {word} >> /words")).await;
            ids.push(a.checkpoint(s, word).await.unwrap().id);
        }
        a.ship(s).await.unwrap();
        a.sleep_cold(s).await.unwrap();
    }
    // One byte of the second checkpoint's stream, changed in the bucket.
    let born = a.get(&hurt).unwrap().created_at;
    let object = format!("sprites/t-replica-bad/hurt/{born}/{}/000000", ids[1]);
    let mut raw = bucket.get_raw(&object).await.unwrap().expect("stored");
    let middle = raw.len() / 2;
    raw[middle] ^= 0x20;
    bucket.put_raw(&object, raw).await.unwrap();

    let b = second_host("damaged", "t-replica-bad", bucket.clone()).await;
    let found = b.recover().await.unwrap();
    assert_eq!(found.sprites.len(), 2, "{:?}", found.failures);
    let failures = b.fetch(&hurt).await.unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].contains(&format!("checkpoint {} of sprite hurt", ids[1]))
            && failures[0].contains(&format!(
                "{}/{object} fails its integrity check",
                bucket.url()
            )),
        "{failures:?}"
    );
    assert!(
        failures[1].contains(&format!("checkpoint {}", ids[2]))
            && failures[1].contains(&format!("sent against {}", ids[1])),
        "{failures:?}"
    );
    // What could come back did: the first checkpoint, and the sprite on it.
    let left: Vec<_> = b.checkpoints(&hurt).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(left, vec![ids[0]]);
    b.wake(&hurt).await.unwrap();
    assert_eq!(ok(&b, &hurt, "cat /words").await, "one");
    assert!(b.replication(&hurt).unwrap().error.is_some());
    // The other sprite, whole.
    b.wake(&whole).await.unwrap();
    assert_eq!(ok(&b, &whole, "cat /words").await, "one\ntwo\nthree");
    common::cleanup(&b).await;
    common::cleanup(&a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_killed_midway_resumes_where_it_stopped() {
    let bucket = bucket("resume");
    let a = first_host("t-replica-kill", &bucket).await;
    let s = name("big");
    a.create(&s, busybox()).await.unwrap();
    // Three segments' worth of stream.
    let sum = ok(
        &a,
        &s,
        "head -c 40000000 /dev/urandom > /big && sha256sum /big | cut -d' ' -f1",
    )
    .await;
    let c = a.checkpoint(&s, "big").await.unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmhost"))
        .env("SPRITES_DATA_DIR", common::data_dir())
        .env("SPRITES_RUN_DIR", common::run_dir())
        .env("SPRITES_INSTANCE", "t-replica-kill")
        .env("SPRITES_OBJECT_STORE", bucket.url())
        .env("SPRITES_REPLICA_KEY_FILE", key_file())
        .env("VMHOST_KILL_AT", "ship.segment.1")
        .args(["ship", "big"])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "not killed mid-upload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(a.replication(&s).unwrap().last_shipped, None);
    // The next attempt stores only what the killed one had not.
    let again = a.ship(&s).await.unwrap();
    assert_eq!(again.checkpoints, vec![c.id]);
    // Segments go a few at once: the kill came once the second was stored,
    // with the others stored too or still on their way. What was stored is
    // not stored again: of the 40 MB stream, less than 30 MB goes now.
    assert!(again.resumed_segments >= 1, "{again:?}");
    assert!(again.bytes < 30_000_000, "{again:?}");
    a.sleep_cold(&s).await.unwrap();

    let b = second_host("resume", "t-replica-kill", bucket.clone()).await;
    b.recover().await.unwrap();
    b.wake(&s).await.unwrap();
    assert_eq!(ok(&b, &s, "sha256sum /big | cut -d' ' -f1").await, sum);
    common::cleanup(&b).await;
    common::cleanup(&a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evicted_sprite_leaves_the_disk_and_comes_back_on_wake() {
    let bucket = bucket("evict");
    let a = first_host("t-replica-evict", &bucket).await;
    let s = name("cold");
    a.create(&s, busybox()).await.unwrap();
    ok(
        &a,
        &s,
        "echo remembered > /note && head -c 5000000 /dev/urandom > /blob",
    )
    .await;
    let sum = ok(&a, &s, "sha256sum /blob | cut -d' ' -f1").await;
    let kept = a.checkpoint(&s, "kept").await.unwrap();
    ok(&a, &s, "echo later >> /note").await;
    // Only asleep cold.
    assert!(matches!(
        a.evict(&s).await,
        Err(vmhost::Error::WrongPhase { .. })
    ));
    a.sleep_cold(&s).await.unwrap();
    a.evict(&s).await.unwrap();
    let root = checkpoint_dir(&a, "cold", kept.id)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("root");
    assert!(!root.exists(), "the root left the disk");
    assert!(!checkpoint_dir(&a, "cold", kept.id).exists());
    let r = a.replication(&s).unwrap();
    assert_eq!(r.location, Location::Bucket);
    // Still listed, with its history.
    assert_eq!(a.list().unwrap().len(), 1);
    assert!(a.checkpoints(&s).unwrap().iter().any(|c| c.id == kept.id));
    // A restart keeps it as it is.
    drop(a);
    let a = first_host_keeping("t-replica-evict", &bucket).await;
    assert_eq!(a.replication(&s).unwrap().location, Location::Bucket);

    a.wake(&s).await.unwrap();
    assert_eq!(a.replication(&s).unwrap().location, Location::Local);
    assert_eq!(ok(&a, &s, "cat /note").await, "remembered\nlater");
    assert_eq!(ok(&a, &s, "sha256sum /blob | cut -d' ' -f1").await, sum);
    // Its named checkpoint came back too, and restores.
    a.restore(&s, kept.id).await.unwrap();
    assert_eq!(ok(&a, &s, "cat /note").await, "remembered");
    common::cleanup(&a).await;
}

/// Whether a `btrfs send` of `path` runs now.
fn sending(path: &Path) -> bool {
    let wanted = path.as_os_str().as_bytes();
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            return false;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"btrfs"))
            && args.get(1) == Some(&&b"send"[..])
            && args.contains(&wanted)
    })
}

/// A sprite destroyed while one of its checkpoints is being sent to the
/// bucket: btrfs refuses to delete a subvolume a send reads, which made the
/// destroy fail. It is gone at once, and its trash empties after the send.
#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_destroyed_mid_shipment_is_gone_and_its_trash_empties() {
    let bucket = bucket("destroy-shipping");
    let a = std::sync::Arc::new(first_host("t-replica-destroy", &bucket).await);
    let s = name("gone");
    a.create(&s, busybox()).await.unwrap();
    ok(&a, &s, "head -c 300000000 /dev/urandom > /blob").await;
    let big = a.checkpoint(&s, "big").await.unwrap();
    let source = checkpoint_dir(&a, "gone", big.id);
    let shipper = {
        let (a, s) = (a.clone(), s.clone());
        tokio::spawn(async move { a.ship(&s).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !sending(&source) {
        assert!(
            std::time::Instant::now() < deadline,
            "the send never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.destroy(&s).await.unwrap();
    assert!(a.list().unwrap().is_empty(), "destroyed at once");
    // The shipment ends (in an error: its sprite is gone).
    let _ = shipper.await.unwrap();
    let trash = a.pool().host_dir(&a.config().instance).join("trash");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&trash).unwrap().next().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the trash is still there a minute after the send"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The checkpoints with a manifest under `place`.
async fn held(bucket: &Bucket, place: &str) -> Vec<CheckpointId> {
    let mut ids: Vec<CheckpointId> = bucket
        .list(place)
        .await
        .unwrap()
        .iter()
        .filter_map(|k| {
            k.strip_prefix(place)?
                .strip_suffix("/manifest")?
                .parse()
                .ok()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_lets_go_of_deleted_checkpoints_old_hidden_ones_and_destroyed_sprites() {
    let bucket = bucket("prune");
    let mut cfg = common::config("t-replica-prune");
    cfg.bucket = Some(bucket.clone());
    cfg.default_image = "busybox".into();
    // Hidden checkpoints are kept no longer than they are needed.
    cfg.retention = Duration::ZERO;
    let a = vmhost::testing::host_with(cfg).await;
    let s = name("pruned");
    a.create(&s, busybox()).await.unwrap();
    let born = a.get(&s).unwrap().created_at;
    let place = format!("sprites/t-replica-prune/pruned/{born}/");

    ok(&a, &s, "echo one > /f").await;
    let v0 = a.checkpoint(&s, "one").await.unwrap();
    // (Zeros: cheap to write and to store, as heavy in a stream as any.)
    ok(&a, &s, "head -c 140000000 /dev/zero > /blob").await;
    // v0 against the image, then a hidden one with the 140 MB against v0.
    let first = a.replicate(&s, Duration::ZERO).await.unwrap();
    assert_eq!(first.checkpoints.len(), 2, "{first:?}");
    let h1 = first.checkpoints[1];
    assert_eq!(held(&bucket, &place).await, vec![v0.id, h1]);

    // The chain now outweighs its first stream (and the 128 MiB a chain
    // may grow by whatever its first weighs): the next is sent against
    // the image again, and the hidden one in between leaves the bucket
    // whole, segments and all (v0 stays: the sprite lists it).
    ok(&a, &s, "echo two >> /f").await;
    let second = a.replicate(&s, Duration::ZERO).await.unwrap();
    let h2 = second.checkpoints[0];
    assert_eq!(second.pruned, vec![h1], "{second:?}");
    assert_eq!(held(&bucket, &place).await, vec![v0.id, h2]);
    assert!(bucket
        .list(&format!("{place}{h1}/"))
        .await
        .unwrap()
        .is_empty());

    // A checkpoint deleted here leaves the bucket once nothing stands on it.
    let v1 = a.checkpoint(&s, "two").await.unwrap();
    a.delete_checkpoint(&s, v0.id).await.unwrap();
    let third = a.replicate(&s, Duration::ZERO).await.unwrap();
    assert!(third.pruned.contains(&v0.id), "{third:?}");
    let left = held(&bucket, &place).await;
    assert!(!left.contains(&v0.id) && left.contains(&v1.id), "{left:?}");

    // Another machine lists what the sprite lists: v0 does not come back.
    a.sleep_cold(&s).await.unwrap();
    let b = second_host("prune", "t-replica-prune", bucket.clone()).await;
    let found = b.recover().await.unwrap();
    assert_eq!(found.sprites, vec![s.clone()], "{:?}", found.failures);
    let seen: Vec<_> = b
        .checkpoints(&s)
        .unwrap()
        .iter()
        .filter(|c| !c.hidden)
        .map(|c| c.id)
        .collect();
    assert_eq!(seen, vec![v1.id]);
    b.wake(&s).await.unwrap();
    assert_eq!(ok(&b, &s, "cat /f").await, "one\ntwo");
    b.destroy(&s).await.unwrap();

    // A destruction cut short after its tombstone: recovery skips the place.
    bucket
        .put(&format!("{place}destroyed"), Vec::new())
        .await
        .unwrap();
    let found = b.recover().await.unwrap();
    assert!(found.sprites.is_empty(), "{:?}", found.sprites);
    assert!(found.failures.is_empty(), "{:?}", found.failures);

    // Destroyed: every object of the sprite leaves the bucket.
    a.destroy(&s).await.unwrap();
    assert_eq!(a.forget_destroyed().await.unwrap(), 1);
    assert!(bucket.list(&place).await.unwrap().is_empty());
    assert_eq!(b.forget_destroyed().await.unwrap(), 1);
    assert_eq!(a.forget_destroyed().await.unwrap(), 0);
    common::cleanup(&b).await;
    common::cleanup(&a).await;
}
