//! Following a sprite's files: changes made inside arrive in order, with
//! folders made later followed; a symlink inside cannot turn a watch onto
//! the host's files; a restore's new disk is watched in turn; destroying
//! the sprite ends the stream.

mod common;

use std::time::Duration;

use common::{ok, sprite};
use vmhost::{FsChange, FsEvent, FsWatch};

/// Events until one matches `want` (10 s at most); all of them.
async fn until(w: &mut FsWatch, want: impl Fn(&FsEvent) -> bool) -> Vec<FsEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, w.next()).await;
        match next {
            Ok(Some(Ok(e))) => {
                let done = want(&e);
                seen.push(e);
                if done {
                    return seen;
                }
            }
            Ok(Some(Err(e))) => panic!("watch error: {e}; seen {seen:?}"),
            Ok(None) => panic!("the stream ended; seen {seen:?}"),
            Err(_) => panic!("no such event in time; seen {seen:?}"),
        }
    }
}

fn has(seen: &[FsEvent], path: &str, change: FsChange) -> bool {
    seen.iter().any(|e| e.path == path && e.change == change)
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_inside_arrive_and_new_folders_are_followed() {
    let (host, s) = sprite("t-watch", "watched").await;
    ok(&host, &s, "mkdir -p /root/w").await;
    let mut w = host.watch(&s, &["/root/w".into()], true).await.unwrap();

    ok(&host, &s, "mkdir /root/w/a && echo hello > /root/w/a/f").await;
    // The file may be written before the new folder's watch is added: it
    // is then reported as made, with its size; else as made, then written.
    let seen = until(&mut w, |e| {
        e.path == "/root/w/a/f"
            && matches!(e.change, FsChange::Create | FsChange::Write)
            && e.size == Some(6)
    })
    .await;
    assert!(has(&seen, "/root/w/a", FsChange::Create), "{seen:?}");
    assert!(seen.iter().any(|e| e.path == "/root/w/a" && e.is_dir));

    ok(
        &host,
        &s,
        "chmod 600 /root/w/a/f && mv /root/w/a/f /root/w/a/g && rm /root/w/a/g",
    )
    .await;
    let seen = until(&mut w, |e| {
        e.path == "/root/w/a/g" && e.change == FsChange::Remove
    })
    .await;
    assert!(has(&seen, "/root/w/a/f", FsChange::Chmod), "{seen:?}");
    assert!(has(&seen, "/root/w/a/f", FsChange::Rename), "{seen:?}");
    assert!(has(&seen, "/root/w/a/g", FsChange::Create), "{seen:?}");

    // A restore puts another disk in place: it is watched in turn, from
    // when the watcher hears of it (moments after the restore returns),
    // so the sprite writes until a write is reported.
    let v = host.checkpoint(&s, "watched").await.unwrap();
    host.restore(&s, v.id).await.unwrap();
    let mut reported = false;
    for i in 0..50 {
        ok(&host, &s, &format!("echo after > /root/w/after{i}")).await;
        let heard = tokio::time::timeout(Duration::from_millis(200), w.next()).await;
        if let Ok(Some(Ok(e))) = heard {
            assert!(e.path.starts_with("/root/w/after"), "{e:?}");
            reported = true;
            break;
        }
    }
    assert!(reported, "the new disk is watched");

    host.destroy(&s).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while w.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the stream ends with the sprite");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_inside_cannot_turn_a_watch_onto_the_hosts_files() {
    let (host, s) = sprite("t-watch-link", "linky").await;
    // Inside, /root/up is the sprite's own root; on the host it would be
    // the host's.
    ok(&host, &s, "ln -s / /root/up && mkdir -p /tmp").await;
    let mut w = host
        .watch(&s, &["/root/up/tmp".into()], false)
        .await
        .unwrap();
    let marker = format!("sprites-watch-host-{}", std::process::id());
    std::fs::write(format!("/tmp/{marker}"), b"host").unwrap();
    ok(&host, &s, "echo inside > /tmp/inside-marker").await;
    let seen = until(&mut w, |e| e.path == "/root/up/tmp/inside-marker").await;
    let _ = std::fs::remove_file(format!("/tmp/{marker}"));
    assert!(
        !seen.iter().any(|e| e.path.contains(&marker)),
        "a host file showed: {seen:?}"
    );
    // Paths that do not exist in the sprite are refused at once.
    assert!(host
        .watch(&s, &["/no/such/dir".into()], true)
        .await
        .is_err());
    host.destroy(&s).await.unwrap();
}
