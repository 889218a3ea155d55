//! Signals to commands, against a real server and sprites: the exec
//! WebSocket's `signal` message reaches the command, and a kill over HTTP
//! sends the signal asked, waits only the caller's timeout and escalates
//! to one SIGKILL after it, saying each step as the SDKs read it; and how
//! long a command without a terminal outlives its client.

mod common;

use std::time::{Duration, Instant};

use common::{exec_query, start_as, Socket, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use sprites_wire::api::{frame, ExecMessage, KillSession, Progress};
use sprites_wire::client;
use tokio_tungstenite::tungstenite::Message;

/// Starts `script` (no terminal) in `sprite` over the exec WebSocket and
/// reads until it prints `ready`: the socket and the session's id.
async fn started(srv: &TestServer, token: &str, sprite: &str, script: &str) -> (Socket, String) {
    let (mut ws, headers) = srv.exec_socket(token, sprite, &exec_query(script)).await;
    assert_eq!(headers["x-sprite-capabilities"], "signal");
    assert!(!headers["sprite-version"].is_empty());
    let mut session = None;
    let out = read_until(&mut ws, "ready", |text| {
        if let Ok(ExecMessage::SessionInfo { session_id, .. }) = serde_json::from_str(text) {
            session = Some(session_id);
        }
    })
    .await;
    assert!(out.0.contains("ready"), "{out:?}");
    (ws, session.expect("the session's id came first"))
}

/// Reads stdout until it holds `want` or the command exits (10 s at most):
/// stdout so far and the exit code, if one came. Text messages go to `text`.
async fn read_until(
    ws: &mut Socket,
    want: &str,
    mut text: impl FnMut(&str),
) -> (String, Option<i32>) {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => match b.first().copied() {
                Some(frame::STDOUT) => seen.push_str(&String::from_utf8_lossy(&b[1..])),
                Some(frame::EXIT) => return (seen, b.get(1).map(|c| *c as i32)),
                _ => {}
            },
            Ok(Some(Ok(Message::Text(t)))) => text(&t),
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    (seen, None)
}

/// The lines of a kill's answer.
async fn kill(
    srv: &TestServer,
    token: &str,
    sprite: &str,
    session: &str,
    signal: &str,
    timeout: &str,
) -> Vec<Progress> {
    let req = KillSession {
        signal: Some(signal.into()),
        timeout: Some(json!(timeout)),
    };
    let (st, v) = srv
        .send(token, &client::kill_session(sprite, session, &req))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let text = v.as_str().expect("NDJSON text").to_string();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

async fn still_runs(srv: &TestServer, token: &str, sprite: &str, session: &str) -> bool {
    let list = srv.ok(token, client::exec_sessions(sprite)).await;
    list.sessions.iter().any(|s| s.id == session && s.is_active)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_message_on_the_exec_socket_reaches_the_command() {
    let (srv, [alice]) = start_as("t-signal-ws", ["alice"]).await;
    assert_eq!(srv.create(&alice, "sig").await.0, StatusCode::CREATED);
    let script = "trap 'echo got-INT; exit 7' INT; echo ready; while :; do sleep 0.1; done";
    let (mut ws, id) = started(&srv, &alice, "sig", script).await;

    // A second client joins by the older form of attach (`exec?id=`), and
    // its signal reaches the command.
    let (mut joined, headers) = srv.exec_socket(&alice, "sig", &format!("id={id}")).await;
    assert_eq!(headers["x-sprite-capabilities"], "signal");
    let mut joined_id = None;
    read_until(&mut joined, "ready", |text| {
        if let Ok(ExecMessage::SessionInfo { session_id, .. }) = serde_json::from_str(text) {
            joined_id = Some(session_id);
        }
    })
    .await;
    assert_eq!(joined_id.as_deref(), Some(id.as_str()));
    let signal = ExecMessage::Signal {
        signal: "INT".into(),
    };
    joined
        .send(Message::Text(signal.to_text().into()))
        .await
        .unwrap();
    let (seen, _) = read_until(&mut ws, "got-INT", |_| {}).await;
    assert!(seen.contains("got-INT"), "{seen:?}");
    let (_, code) = read_until(&mut ws, "never printed", |_| {}).await;
    assert_eq!(code, Some(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_sends_the_signal_asked_and_escalates_only_after_the_timeout() {
    let (srv, [alice]) = start_as("t-signal-kill", ["alice"]).await;
    assert_eq!(srv.create(&alice, "k").await.0, StatusCode::CREATED);

    // INT with no wait: sent, and nothing more; the command (which only
    // notes it) runs on.
    let notes = "trap 'echo got-INT' INT; trap '' TERM; echo ready; while :; do sleep 0.1; done";
    let (mut ws, id) = started(&srv, &alice, "k", notes).await;
    let lines = kill(&srv, &alice, "k", &id, "INT", "0s").await;
    assert!(
        matches!(&lines[0], Progress::Signal(e) if e.signal.as_deref() == Some("SIGINT") && e.pid.is_some()),
        "{lines:?}"
    );
    assert!(
        matches!(lines.last(), Some(Progress::Complete { .. })),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| matches!(l, Progress::Killed(_))),
        "{lines:?}"
    );
    assert!(read_until(&mut ws, "got-INT", |_| {})
        .await
        .0
        .contains("got-INT"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(still_runs(&srv, &alice, "k", &id).await);

    // TERM, ignored: after the caller's second, one SIGKILL ends it.
    let lines = kill(&srv, &alice, "k", &id, "SIGTERM", "1s").await;
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| match l {
            Progress::Signal(_) => "signal",
            Progress::Timeout(_) => "timeout",
            Progress::Killed(_) => "killed",
            Progress::Exited(_) => "exited",
            Progress::Complete { .. } => "complete",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["signal", "timeout", "killed", "complete"],
        "{lines:?}"
    );
    assert!(
        matches!(&lines[2], Progress::Killed(e) if e.exit_code == Some(137)),
        "{lines:?}"
    );
    assert_eq!(
        read_until(&mut ws, "never printed", |_| {}).await.1,
        Some(137)
    );

    // A signal the command ends on: it exited, with its own code.
    let ends = "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done";
    let (_ws, id) = started(&srv, &alice, "k", ends).await;
    let lines = kill(&srv, &alice, "k", &id, "TERM", "10s").await;
    assert!(
        matches!(&lines[1], Progress::Exited(e) if e.exit_code == Some(3) && e.data == e.message),
        "{lines:?}"
    );
}

/// Waits (10 s at most) for session `session` to have ended; whether it did.
async fn ends(srv: &TestServer, token: &str, sprite: &str, session: &str) -> bool {
    for _ in 0..100 {
        if !still_runs(srv, token, sprite, session).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_without_a_terminal_outlives_its_client_only_when_asked() {
    let (srv, [alice]) = start_as("t-detach", ["alice"]).await;
    assert_eq!(srv.create(&alice, "det").await.0, StatusCode::CREATED);
    let script = "echo ready; while :; do sleep 0.1; done";
    let open = |extra: &'static str| {
        let srv = &srv;
        let alice = &alice;
        async move {
            let query = format!("{}{extra}", exec_query(script));
            let (mut ws, _) = srv.exec_socket(alice, "det", &query).await;
            let mut id = None;
            read_until(&mut ws, "ready", |text| {
                if let Ok(ExecMessage::SessionInfo { session_id, .. }) = serde_json::from_str(text)
                {
                    id = Some(session_id);
                }
            })
            .await;
            (ws, id.expect("the session's id"))
        }
    };

    // By default the command ends with its client.
    let (ws, plain) = open("").await;
    drop(ws);
    assert!(
        ends(&srv, &alice, "det", &plain).await,
        "ended with its client"
    );

    // Detachable, it runs on and is attached again, its output replayed.
    let (ws, kept) = open("&detachable=true").await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(still_runs(&srv, &alice, "det", &kept).await);
    let (mut again, _) = srv.exec_socket(&alice, "det", &format!("id={kept}")).await;
    let (seen, _) = read_until(&mut again, "ready", |_| {}).await;
    assert!(seen.contains("ready"), "{seen:?}");
    let lines = kill(&srv, &alice, "det", &kept, "KILL", "0s").await;
    assert!(!lines.is_empty());
    assert!(ends(&srv, &alice, "det", &kept).await);

    // With max_run_after_disconnect, for that long after its client left.
    let (ws, limited) = open("&max_run_after_disconnect=2s").await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        still_runs(&srv, &alice, "det", &limited).await,
        "still within 2 s"
    );
    assert!(ends(&srv, &alice, "det", &limited).await, "ended after 2 s");

    // A malformed duration is refused before anything starts.
    let bad = format!("{}&max_run_after_disconnect=soon", exec_query(script));
    let path = format!("/v1/sprites/det/exec?{bad}");
    let refused = srv.upgrade_refused(&alice, &path).await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
}
