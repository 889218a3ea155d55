//! Checkpoints, restore (and its undo), diff, browsing inside the sprite,
//! and fork.

mod common;

use common::{cleanup, name, ok, sprite};
use vmhost::diff::ChangeKind;
use vmhost::{CheckpointId, Error, Phase};

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_restore_and_undo() {
    let (host, s) = sprite("t-ckpt", "app").await;
    ok(&host, &s, "echo v1 > /srv/app.txt").await;
    let v0 = host.checkpoint(&s, "working app").await.unwrap();
    assert_eq!(v0.id, CheckpointId(0));
    assert_eq!(v0.comment, "working app");
    assert!(!v0.auto);

    ok(&host, &s, "echo broken > /srv/app.txt; rm -rf /usr/bin/git; touch /srv/new; sleep 1000 >/dev/null 2>&1 &").await;
    let changes = host.diff(&s, v0.id, None).await.unwrap();
    let find = |p: &str| changes.iter().find(|c| c.path == p).map(|c| c.change);
    assert_eq!(find("/srv/app.txt"), Some(ChangeKind::Modified));
    assert_eq!(find("/usr/bin/git"), Some(ChangeKind::Deleted));
    assert_eq!(find("/srv/new"), Some(ChangeKind::Added));
    assert_eq!(
        find("/etc/passwd"),
        None,
        "unchanged files are not reported"
    );

    let (info, backup) = host.restore(&s, v0.id).await.unwrap();
    assert_eq!(info.phase, Phase::Running);
    assert_eq!(info.current_checkpoint, Some(v0.id));
    assert!(backup.auto);
    assert_eq!(backup.comment, "before restore to v0");
    assert_eq!(ok(&host, &s, "cat /srv/app.txt").await, "v1");
    ok(&host, &s, "command -v git").await;
    assert_eq!(
        ok(&host, &s, "pgrep -c -x sleep || true").await,
        "0",
        "processes stop on restore"
    );

    // Undo the restore: the broken state is back.
    host.restore(&s, backup.id).await.unwrap();
    assert_eq!(ok(&host, &s, "cat /srv/app.txt").await, "broken");

    let ids: Vec<String> = host
        .checkpoints(&s)
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["v0", "v1", "v2"]);
    // The one it stands on cannot go; others can, and ids are never reused.
    assert!(matches!(
        host.delete_checkpoint(&s, backup.id).await,
        Err(Error::CheckpointInUse(_))
    ));
    host.delete_checkpoint(&s, CheckpointId(2)).await.unwrap();
    assert_eq!(host.checkpoint(&s, "").await.unwrap().id, CheckpointId(3));
    assert!(matches!(
        host.restore(&s, CheckpointId(42)).await,
        Err(Error::CheckpointNotFound(..))
    ));
    assert!(matches!(
        host.delete_checkpoint(&s, CheckpointId(42)).await,
        Err(Error::CheckpointNotFound(..))
    ));
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_are_consistent_and_browsable() {
    let (host, s) = sprite("t-consist", "db").await;
    // A writer appends and fsyncs numbered lines as fast as it can.
    ok(
        &host,
        &s,
        "python3 -c 'import os\nf=open(\"/root/log\",\"a\")\ni=0\nwhile True:\n i+=1\n f.write(\"%d\\n\"%i); f.flush(); os.fsync(f.fileno())' >/dev/null 2>&1 &",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..5 {
        let c = host.checkpoint(&s, "").await.unwrap();
        let log = ok(
            &host,
            &s,
            &format!("cat /.sprite/checkpoints/{}/root/log", c.id),
        )
        .await;
        // Every line is whole and numbered in sequence: no torn write.
        for (i, line) in log.lines().enumerate() {
            assert_eq!(line, (i + 1).to_string(), "line {i} of {}", c.id);
        }
        assert!(!log.is_empty());
    }
    // Checkpoints inside are read-only.
    let (_, _, code) = common::sh(&host, &s, "touch /.sprite/checkpoints/v0/root/x").await;
    assert_ne!(code, 0);
    cleanup(&host).await;
}

/// A checkpoint freezes the sprite for a few milliseconds: a command that
/// comes then waits for the thaw instead of finding it asleep.
#[tokio::test(flavor = "multi_thread")]
async fn commands_during_checkpoints_wait_for_the_thaw() {
    let (host, s) = sprite("t-ckpt-exec", "busy").await;
    let host = std::sync::Arc::new(host);
    let taking = {
        let (host, s) = (host.clone(), s.clone());
        tokio::spawn(async move {
            for _ in 0..20 {
                host.checkpoint(&s, "").await.unwrap();
            }
        })
    };
    let mut ran = 0;
    while !taking.is_finished() {
        let out = host.run(&s, &["true"], b"").await;
        assert_eq!(out.expect("a command during a checkpoint").code, 0);
        ran += 1;
    }
    taking.await.unwrap();
    assert!(ran > 20, "only {ran} commands ran beside the checkpoints");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_from_a_checkpoint_or_the_current_state() {
    let (host, s) = sprite("t-fork", "base").await;
    ok(&host, &s, "echo at-v0 > /root/state").await;
    let v0 = host.checkpoint(&s, "").await.unwrap();
    ok(&host, &s, "echo now > /root/state").await;

    let a = host.fork(&s, Some(v0.id), &name("idea-a")).await.unwrap();
    assert_eq!(a.phase, Phase::Running);
    assert_eq!(a.origin.as_ref().unwrap().sprite, "base");
    assert_eq!(
        ok(&host, &name("idea-a"), "cat /root/state; hostname").await,
        "at-v0\nidea-a"
    );
    let b = host.fork(&s, None, &name("idea-b")).await.unwrap();
    assert_eq!(b.origin.unwrap().checkpoint, None);
    assert_eq!(ok(&host, &name("idea-b"), "cat /root/state").await, "now");

    // They diverge without touching each other or the source.
    ok(&host, &name("idea-a"), "echo a > /root/state").await;
    assert_eq!(ok(&host, &name("idea-b"), "cat /root/state").await, "now");
    assert_eq!(ok(&host, &s, "cat /root/state").await, "now");
    assert!(host.checkpoints(&name("idea-a")).unwrap().is_empty());

    assert!(matches!(
        host.fork(&s, None, &name("idea-a")).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        host.fork(&s, Some(CheckpointId(9)), &name("c")).await,
        Err(Error::CheckpointNotFound(..))
    ));
    assert!(matches!(
        host.fork(&name("nobody"), None, &name("c")).await,
        Err(Error::NotFound(_))
    ));
    cleanup(&host).await;
}
