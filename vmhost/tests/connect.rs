//! TCP connections into a sprite through its init: how the server reaches
//! a sprite's web app, and how `sprite proxy` forwards ports.

mod common;

use common::sprite;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vmhost::{Error, ExecSpec};

/// Starts `python3 -m http.server PORT` in the sprite, in the background.
pub async fn serve_http(host: &vmhost::Host, s: &vmhost::SpriteName, port: u16) {
    let spec = ExecSpec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            format!("cd /srv && echo hello from inside > index.html && exec python3 -m http.server {port}"),
        ],
        detachable: true,
        ..Default::default()
    };
    let stream = host.exec(s, spec).await.unwrap();
    drop(stream);
}

async fn get(host: &vmhost::Host, s: &vmhost::SpriteName, port: u16) -> Result<String, Error> {
    let mut conn = host.connect(s, "localhost", port).await?;
    conn.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_reaches_a_server_inside_the_sprite_only() {
    let (host, s) = sprite("t-connect", "web").await;

    // Nothing listens yet: a typed error, not a hang.
    let closed = host.connect(&s, "localhost", 8080).await;
    assert!(matches!(closed, Err(Error::PortClosed(8080))), "{closed:?}");

    serve_http(&host, &s, 8080).await;
    let mut answer = Err(Error::PortClosed(8080));
    for _ in 0..100 {
        answer = get(&host, &s, 8080).await;
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let answer = answer.unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains("hello from inside"), "{answer}");

    // The host's own loopback is another network: a server of the host's
    // is not reachable from the sprite's localhost.
    let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = outside.local_addr().unwrap().port();
    assert!(matches!(
        host.connect(&s, "127.0.0.1", port).await,
        Err(Error::PortClosed(p)) if p == port
    ));
    assert!(matches!(
        host.connect(&s, "bad/host", 80).await,
        Err(Error::Invalid(_))
    ));

    // Asleep, there is nothing to connect to until it wakes.
    host.sleep_warm(&s).await.unwrap();
    assert!(matches!(
        host.connect(&s, "localhost", 8080).await,
        Err(Error::WrongPhase { .. })
    ));
    host.wake(&s).await.unwrap();
    assert!(get(&host, &s, 8080).await.unwrap().contains("hello"));
    host.destroy(&s).await.unwrap();
}
