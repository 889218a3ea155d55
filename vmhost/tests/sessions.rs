//! Terminal sessions on a PTY: resize, signals, detach and re-attach with
//! replay, several clients at once, list and kill.

mod common;

use std::time::Duration;

use common::{cleanup, sprite};
use vmhost::{Chunk, Error, ExecSpec, Stream, WinSize};

/// Reads output until `needle` appears (or the session ends); returns it all.
async fn read_until(stream: &mut Stream, needle: &str) -> String {
    let mut seen = String::new();
    let wait = async {
        while let Some(chunk) = stream.output.next().await.unwrap() {
            match chunk {
                Chunk::Stdout(data) | Chunk::Stderr(data) => {
                    seen.push_str(&String::from_utf8_lossy(&data))
                }
                Chunk::Exit(_) => break,
            }
            if seen.contains(needle) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("waited for {needle:?}, saw {seen:?}"));
    seen
}

fn shell(rows: u16, cols: u16) -> ExecSpec {
    ExecSpec {
        argv: vec!["bash".into(), "--norc".into(), "-i".into()],
        tty: Some(WinSize { rows, cols }),
        env: vec![("PS1".into(), "$ ".into())],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tty_session_resizes_and_takes_signals() {
    let (host, s) = sprite("t-tty", "term").await;
    let mut t = host.exec(&s, shell(24, 80)).await.unwrap();
    t.input.stdin(b"stty size; tty\n").await.unwrap();
    let out = read_until(&mut t, "/dev/pts/").await;
    assert!(out.contains("24 80"), "{out:?}");

    // One resize, then ask until the shell's terminal reports it: under
    // load the first `stty` may be read before the resize is processed.
    t.input.resize(40, 120).await.unwrap();
    let mut resized = false;
    for _ in 0..20 {
        t.input
            .stdin(b"stty size; echo asked-$((40+2))\n")
            .await
            .unwrap();
        let out = read_until(&mut t, "asked-42\r\n").await;
        if out.contains("40 120") {
            resized = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resized, "the terminal never reported the new size");

    // Ctrl-C reaches the foreground job through the terminal.
    t.input
        .stdin(b"sleep 100; echo after-sleep\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.input.stdin(b"\x03").await.unwrap();
    read_until(&mut t, "after-sleep").await;

    t.input.stdin(b"exit 5\n").await.unwrap();
    assert_eq!(common::exit_code(&mut t).await, Some(5));
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_detach_reattach_with_replay_and_share_clients() {
    let (host, s) = sprite("t-detach", "shared").await;
    let mut first = host.exec(&s, shell(24, 80)).await.unwrap();
    let id = first.session;
    first.input.stdin(b"echo marker-one\n").await.unwrap();
    read_until(&mut first, "marker-one\r\n").await;
    drop(first); // the browser tab closes

    let list = host.sessions(&s).await.unwrap();
    let info = list
        .iter()
        .find(|i| i.id == id)
        .expect("session listed after detach");
    assert!(info.tty);
    assert_eq!(info.exit_code, None);

    // Re-attach: the buffered output is replayed, then it is live again.
    let mut a = host.attach(&s, id, true).await.unwrap();
    let replay = read_until(&mut a, "marker-one").await;
    assert!(replay.contains("marker-one"));
    // A second client on the same session sees the same screen.
    let mut b = host.attach(&s, id, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        host.sessions(&s)
            .await
            .unwrap()
            .iter()
            .find(|i| i.id == id)
            .unwrap()
            .clients,
        2
    );
    b.input.stdin(b"echo typed-by-b\n").await.unwrap();
    read_until(&mut a, "typed-by-b\r\n").await;
    read_until(&mut b, "typed-by-b\r\n").await;

    host.kill_session(&s, id, 0).await.unwrap();
    assert_eq!(common::exit_code(&mut a).await, Some(128 + 9));
    assert!(matches!(
        host.attach(&s, 999_999, true).await,
        Err(Error::SessionNotFound(999_999))
    ));
    assert!(matches!(
        host.kill_session(&s, 999_999, 0).await,
        Err(Error::SessionNotFound(_))
    ));
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_exec_dies_with_its_client() {
    let (host, s) = sprite("t-plain", "plain").await;
    let spec = ExecSpec {
        argv: vec!["sleep".into(), "300".into()],
        ..Default::default()
    };
    // A signal sent through the stream reaches the process.
    let mut stream = host.exec(&s, spec.clone()).await.unwrap();
    stream.input.signal(libc::SIGTERM).await.unwrap();
    assert_eq!(
        common::exit_code(&mut stream).await,
        Some(128 + libc::SIGTERM)
    );

    let stream = host.exec(&s, spec).await.unwrap();
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (out, _, _) = common::sh(&host, &s, "pgrep -c -x sleep").await;
        if out.trim() == "0" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sleep still runs after its client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cleanup(&host).await;
}
