//! Replication to a real Garage (started by scripts/test, which exports
//! `SPRITES_TEST_OBJECT_STORE` and the `AWS_*` variables): a sprite's
//! checkpoints shipped from the shared test pool come back, bit for bit,
//! into a second pool of their own: another machine.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{name, ok};
use sha2::{Digest, Sha256};
use vmhost::replica::{Bucket, BucketConfig, Location, ReplicaKey};
use vmhost::{CheckpointId, CreateOptions, Host};

/// A bucket prefix of this test's own, so runs never see each other.
fn bucket(test: &str, key: &ReplicaKey) -> Arc<Bucket> {
    let base = std::env::var("SPRITES_TEST_OBJECT_STORE")
        .expect("SPRITES_TEST_OBJECT_STORE is not set: run scripts/test, which starts Garage");
    let url = format!("{base}/{test}-{}-{}", std::process::id(), vmhost::now_ms());
    let cfg = BucketConfig {
        url,
        ..Default::default()
    };
    Arc::new(Bucket::open(&cfg, key).expect("open the bucket"))
}

/// "Another machine": a pool of its own in a fresh data directory, its own
/// run directory, no network of its own (the first host's sprites have it).
async fn second_host(test: &str, instance: &str, bucket: Arc<Bucket>) -> Host {
    let data = PathBuf::from(format!("{}-{test}", common::data_dir().display()));
    let mut cfg = common::config(instance);
    if data.exists() {
        // An earlier run's pool: unmounted and gone, so this one starts empty.
        let _ = std::process::Command::new("umount")
            .arg(data.join("pool"))
            .status();
        std::fs::remove_dir_all(&data).unwrap();
    }
    std::fs::create_dir_all(&data).unwrap();
    cfg.data_dir = data;
    cfg.run_dir = PathBuf::from(format!("{}-{test}", common::run_dir().display()));
    cfg.pool_image_size = 8 << 30;
    cfg.egress = false;
    cfg.bucket = Some(bucket);
    Host::open(cfg).await.expect("open the second host")
}

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
    let key = ReplicaKey::load_or_create(&std::env::temp_dir().join("sprites-test-replica.key"))
        .unwrap()
        .0;
    let bucket = bucket("whole", &key);
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
