//! Following a sprite live, against a real server and sprites: its
//! listening ports (`ports/watch`, and the port events of an exec socket,
//! which the CLI forwards), and the states of the organization's sprites
//! (`GET /v1/sprites` as NDJSON).

mod common;

use std::time::Duration;

use common::{exec_query, start, Backend, Socket, TestServer};
use futures_util::StreamExt;
use reqwest::StatusCode;
use sprites_wire::api::SpriteStateLine;
use sprites_wire::client;
use sprites_wire::ports::{Port, PortEvent};
use tokio_tungstenite::tungstenite::Message;

/// The next port event on `ws` (10 s at most); other messages are skipped.
async fn next_port_event(ws: &mut Socket) -> PortEvent {
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(e) = serde_json::from_str::<PortEvent>(&t) {
                        return e;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("a port event within 10 s")
}

#[tokio::test(flavor = "multi_thread")]
async fn ports_opened_and_closed_are_reported_as_they_happen() {
    let srv = start("t-watch-ports", Backend::Sqlite).await;
    let token = srv.user("pat").await;
    let (st, v) = srv.create(&token, "ports").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let (mut watch, _) = srv.socket(&token, "/v1/sprites/ports/ports/watch").await;
    let PortEvent::PortList { ports } = next_port_event(&mut watch).await else {
        panic!("the list comes first");
    };
    assert!(!ports.iter().any(|p| p.port == 8123), "{ports:?}");

    srv.background("ports", "exec python3 -m http.server 8123 --bind 127.0.0.1")
        .await;
    let PortEvent::PortOpened(Port { port, address, pid }) = next_port_event(&mut watch).await
    else {
        panic!("an opened port");
    };
    assert_eq!((port, address.as_str()), (8123, "127.0.0.1"));
    // The pid is the sprite's own numbering of the server.
    let comm = srv
        .run("ports", &["cat", &format!("/proc/{pid}/cmdline")])
        .await;
    assert!(
        String::from_utf8_lossy(&comm.stdout).contains("http.server"),
        "{pid}: {comm:?}"
    );

    // An exec socket reports the ports its command opens.
    let script = "python3 -m http.server 8124 >/dev/null 2>&1 & sleep 2; kill $!; sleep 1";
    let (mut exec, _) = srv.exec_socket(&token, "ports", &exec_query(script)).await;
    match next_port_event(&mut exec).await {
        PortEvent::PortOpened(p) => assert_eq!((p.port, p.address.as_str()), (8124, "0.0.0.0")),
        other => panic!("{other:?}"),
    }
    match next_port_event(&mut exec).await {
        PortEvent::PortClosed(p) => assert_eq!(p.port, 8124),
        other => panic!("{other:?}"),
    }

    // The watch saw them too; then the first server's end.
    for want in [8124, 8124] {
        let e = next_port_event(&mut watch).await;
        assert!(
            matches!(&e, PortEvent::PortOpened(p) | PortEvent::PortClosed(p) if p.port == want),
            "{e:?}"
        );
    }
    srv.background("ports", "pkill -f \"[h]ttp.server 8123\"")
        .await;
    match next_port_event(&mut watch).await {
        PortEvent::PortClosed(p) => assert_eq!(p.port, 8123),
        other => panic!("{other:?}"),
    }

    // Another user's sprite is not theirs to watch: the upgrade is refused.
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Error};
    let other = srv.user("oscar").await;
    let url = srv
        .url("/v1/sprites/ports/ports/watch")
        .replace("http", "ws");
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {other}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(res)) => assert_eq!(res.status(), StatusCode::NOT_FOUND),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// `GET /v1/sprites?prefix=...` asked as NDJSON, as the holder of `token`.
async fn states(srv: &TestServer, token: &str, prefix: &str) -> reqwest::Response {
    srv.client
        .get(srv.url(&format!("/v1/sprites?prefix={prefix}")))
        .bearer_auth(token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
}

/// The next line of an NDJSON response (10 s at most).
async fn next_line(res: &mut reqwest::Response, buf: &mut String) -> SpriteStateLine {
    let wait = async {
        loop {
            if let Some(i) = buf.find('\n') {
                let line: String = buf.drain(..=i).collect();
                return serde_json::from_str(line.trim()).unwrap();
            }
            let chunk = res.chunk().await.unwrap().expect("the stream goes on");
            buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("a line within 10 s")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sprite_list_asked_as_ndjson_follows_their_states() {
    let srv = start("t-watch-states", Backend::Sqlite).await;
    let token = srv.user("sam").await;
    for name in ["st-one", "other"] {
        let (st, v) = srv.create(&token, name).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let mut res = states(&srv, &token, "st-").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let mut buf = String::new();

    // The listed sprite first, with the organization's counts.
    let first = next_line(&mut res, &mut buf).await;
    assert_eq!(first.name.as_deref(), Some("st-one"));
    assert_eq!(first.status.as_deref(), Some("running"));
    assert_eq!((first.org.running, first.org.name.as_str()), (2, "sam"));
    assert!(first.running_version.is_some() && first.last_running_at.is_some());

    // Then each change of a sprite the prefix names, as it happens.
    let (st, v) = srv.send(&token, &client::sleep("st-one", true)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let slept = loop {
        let l = next_line(&mut res, &mut buf).await;
        if l.status.as_deref() == Some("cold") {
            break l;
        }
    };
    assert_eq!(slept.name.as_deref(), Some("st-one"));
    assert_eq!((slept.org.running, slept.org.cold), (1, 1));
    let (st, _) = srv.create(&token, "st-two").await;
    assert_eq!(st, StatusCode::CREATED);
    let made = next_line(&mut res, &mut buf).await;
    assert_eq!(made.name.as_deref(), Some("st-two"));
    let (st, _) = srv.send(&token, &client::destroy_sprite("st-two")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let gone = loop {
        let l = next_line(&mut res, &mut buf).await;
        if l.status.as_deref() == Some("destroyed") {
            break l;
        }
    };
    assert_eq!(gone.name.as_deref(), Some("st-two"));
    assert!(buf.is_empty() || !buf.contains("\"other\""), "{buf}");

    // A bad prefix is refused before anything streams.
    let bad = states(&srv, &token, "NO!").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
