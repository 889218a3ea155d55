//! The control WebSocket (`/v1/sprites/{name}/control`) against a real
//! server and sprite: operations in turn on one connection (a command with
//! its input, output and exit code; a file written and read back; a TCP
//! connection into the sprite), and the refusals of the protocol.

mod common;

use std::time::Duration;

use common::{start_as, Socket};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use sprites_wire::api::frame;
use sprites_wire::control::{Arg, Envelope};
use tokio_tungstenite::tungstenite::Message;

async fn send_start(ws: &mut Socket, op: &str, args: &[(&str, Arg)]) {
    let start = Envelope::Start {
        id: None,
        op: op.into(),
        args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    ws.send(Message::Text(start.to_text().into()))
        .await
        .unwrap();
}

fn text(s: &str) -> Arg {
    Arg::Text(s.into())
}

/// Everything `ws` carries up to the operation's end: its own messages,
/// and the envelope that ended it (`op.complete` or `op.error`).
async fn until_end(ws: &mut Socket) -> (Vec<Message>, Envelope) {
    let wait = async {
        let mut seen = Vec::new();
        loop {
            let msg = ws.next().await.expect("the socket stays open").unwrap();
            let envelope = match &msg {
                Message::Text(t) => Envelope::parse(t).map(Result::unwrap),
                _ => None,
            };
            match envelope {
                Some(Envelope::Ack { .. }) => {}
                Some(end) => return (seen, end),
                None => seen.push(msg),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the operation ends within 20 s")
}

/// The binary messages' bytes, one stream byte taken off each when
/// `framed` (and only those of `stream`).
fn bytes_of(messages: &[Message], stream: Option<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        if let Message::Binary(b) = m {
            match stream {
                Some(s) if b.first() == Some(&s) => out.extend_from_slice(&b[1..]),
                Some(_) => {}
                None => out.extend_from_slice(b),
            }
        }
    }
    out
}

fn failure(end: &Envelope) -> (&str, &str) {
    match end {
        Envelope::Error { args, .. } => (args.code.as_str(), args.error.as_str()),
        other => panic!("an op.error, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_control_socket_runs_commands_files_and_connections_in_turn() {
    let (srv, [alice, bob]) = start_as("t-control", ["alice", "bob"]).await;
    assert_eq!(srv.create(&alice, "ctl").await.0, StatusCode::CREATED);
    srv.background(
        "ctl",
        "cd / && exec python3 -m http.server 8125 --bind 127.0.0.1",
    )
    .await;
    srv.listening("ctl", 8125).await;
    let (mut ws, headers) = srv.socket(&alice, "/v1/sprites/ctl/control").await;
    assert!(headers.contains_key("sprite-version"));

    // Bytes before any operation are refused, and the connection goes on.
    ws.send(Message::Binary(vec![frame::STDIN, b'x'].into()))
        .await
        .unwrap();
    let (_, end) = until_end(&mut ws).await;
    assert_eq!(failure(&end).0, "op.not_active");

    // A command: its input, both outputs, its exit code twice (the exit
    // frame, then op.complete).
    let script = "read x; echo got $x; echo oops >&2; exit 3";
    send_start(
        &mut ws,
        "exec",
        &[
            ("cmd", Arg::Many(vec![text("sh"), text("-c"), text(script)])),
            ("env", Arg::Many(vec![text("A=1")])),
            ("stdin", Arg::Flag(true)),
        ],
    )
    .await;
    ws.send(Message::Binary(b"\x00hi\n".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![frame::STDIN_EOF].into()))
        .await
        .unwrap();
    let (seen, end) = until_end(&mut ws).await;
    assert_eq!(bytes_of(&seen, Some(frame::STDOUT)), b"got hi\n");
    assert_eq!(bytes_of(&seen, Some(frame::STDERR)), b"oops\n");
    assert_eq!(bytes_of(&seen, Some(frame::EXIT)), [3]);
    let Envelope::Complete { args, .. } = end else {
        panic!("{end:?}")
    };
    assert_eq!((args.ok, args.exit_code), (true, Some(3)));

    // One at a time: a second start while the first runs is refused, and
    // the first goes on to its end.
    send_start(&mut ws, "exec", &[("cmd", Arg::Many(vec![text("cat")]))]).await;
    send_start(&mut ws, "exec", &[("cmd", Arg::Many(vec![text("true")]))]).await;
    let (_, end) = until_end(&mut ws).await;
    assert_eq!(failure(&end).0, "op.busy");
    ws.send(Message::Binary(vec![frame::STDIN_EOF].into()))
        .await
        .unwrap();
    let (_, end) = until_end(&mut ws).await;
    assert!(matches!(end, Envelope::Complete { .. }), "{end:?}");

    // A file written in pieces, then read back.
    let path = ("path", text("/root/notes/c.txt"));
    send_start(&mut ws, "fs.write", std::slice::from_ref(&path)).await;
    for piece in ["hello ", "control"] {
        let piece = piece.as_bytes().to_vec();
        ws.send(Message::Binary(piece.into())).await.unwrap();
    }
    ws.send(Message::Binary(Vec::new().into())).await.unwrap();
    let (_, end) = until_end(&mut ws).await;
    let Envelope::Complete { args, .. } = end else {
        panic!("{end:?}")
    };
    assert_eq!(args.size, Some(13));
    send_start(&mut ws, "fs.read", &[path]).await;
    let (seen, end) = until_end(&mut ws).await;
    assert_eq!(bytes_of(&seen, None), b"hello control");
    assert!(matches!(end, Envelope::Complete { args, .. } if args.size == Some(13)));
    send_start(&mut ws, "fs.read", &[("path", text("/root/nope"))]).await;
    let (_, end) = until_end(&mut ws).await;
    let (code, message) = failure(&end);
    assert_eq!(code, "not_found");
    assert!(message.contains("/root/nope"), "{message}");

    // A TCP connection into the sprite: a request, our side ended, the
    // whole answer, then the end.
    send_start(
        &mut ws,
        "proxy",
        &[("host", text("127.0.0.1")), ("port", Arg::Number(8125))],
    )
    .await;
    let request = b"GET /root/ HTTP/1.0\r\n\r\n".to_vec();
    ws.send(Message::Binary(request.into())).await.unwrap();
    ws.send(Message::Binary(Vec::new().into())).await.unwrap();
    let (seen, end) = until_end(&mut ws).await;
    let answer = String::from_utf8_lossy(&bytes_of(&seen, None)).into_owned();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains("notes/"), "{answer}");
    assert!(matches!(end, Envelope::Complete { .. }), "{end:?}");

    // What the protocol refuses, each with the connection still usable.
    send_start(&mut ws, "teleport", &[]).await;
    assert_eq!(failure(&until_end(&mut ws).await.1).0, "op.not_found");
    send_start(&mut ws, "exec", &[]).await;
    assert_eq!(failure(&until_end(&mut ws).await.1).0, "invalid");
    ws.send(Message::Text("control:{\"type\":".into()))
        .await
        .unwrap();
    assert_eq!(failure(&until_end(&mut ws).await.1).0, "op.invalid");
    send_start(&mut ws, "exec", &[("cmd", Arg::Many(vec![text("true")]))]).await;
    let (_, end) = until_end(&mut ws).await;
    assert!(matches!(end, Envelope::Complete { args, .. } if args.exit_code == Some(0)));

    // Another organization's sprite: an HTTP 404, before any upgrade.
    let refused = srv.upgrade_refused(&bob, "/v1/sprites/ctl/control").await;
    assert_eq!(refused, StatusCode::NOT_FOUND);
}
