//! The management socket inside each sprite and `sprite-env`, its command:
//! a sprite's user or agent takes checkpoints, manages services and keeps
//! the sprite awake without any token, and cannot do more than that.

mod common;

use std::time::Duration;

use common::{start_as, TestServer};
use reqwest::StatusCode;
use sprites_wire::client;

/// Runs `sprite-env ARGS` inside the sprite: (stdout, stderr, exit code).
async fn sprite_env(
    srv: &TestServer,
    host: &vmhost::SpriteName,
    args: &[&str],
) -> (String, String, i32) {
    let mut argv = vec!["sprite-env"];
    argv.extend_from_slice(args);
    let out = srv.state.host.run(host, &argv, b"").await.unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.code,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_manages_itself_through_its_socket_and_no_further() {
    let (srv, [alice]) = start_as("t-mgmt", ["alice"]).await;
    let (st, v) = srv.create(&alice, "self").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let host = srv.host_name("self").await;
    let socket = srv.host.mgmt_dir(&host).join("api.sock");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (out, err, code) = sprite_env(&srv, &host, &["info"]).await;
    assert_eq!(code, 0, "{err}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["name"], "self");
    assert_eq!(info["organization"], "alice");

    // A checkpoint from inside, seen from outside.
    let (out, err, code) =
        sprite_env(&srv, &host, &["checkpoints", "create", "-m", "from inside"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("complete"), "{out}");
    let (_, list) = srv.send(&alice, &client::checkpoints("self")).await;
    assert_eq!(list[0]["comment"], "from inside", "{list}");

    // A service and a keep-awake task.
    let (_, err, code) = sprite_env(
        &srv,
        &host,
        &["services", "create", "idle", "--", "sleep", "infinity"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (_, services) = srv.send(&alice, &client::services("self")).await;
    assert_eq!(services[0]["name"], "idle", "{services}");
    assert_eq!(services[0]["state"]["status"], "running");
    let (_, err, code) =
        sprite_env(&srv, &host, &["keep-awake", "10m", "--reason", "an agent"]).await;
    assert_eq!(code, 0, "{err}");
    let (_, v) = srv.send(&alice, &client::sprite("self")).await;
    assert_eq!(v["keep_awake"][0]["reason"], "an agent");

    // What the socket does not allow: restores, other sprites, the API.
    for args in [
        &["api", "POST", "/v1/checkpoints/v0/restore"][..],
        &["api", "GET", "/v1/sprites"][..],
        &["api", "DELETE", "/v1/info"][..],
        &["api", "GET", "/v1/tokens"][..],
    ] {
        let (_, err, code) = sprite_env(&srv, &host, args).await;
        assert_eq!(code, 1, "{args:?} was allowed");
        assert!(err.contains("not available from inside"), "{args:?}: {err}");
    }
    let (_, err, code) = sprite_env(&srv, &host, &["services", "start", "nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");

    // The socket is there after a cold sleep, and after the server serves
    // it again (as on a restart, over the stale socket file).
    srv.state.host.sleep_cold(&host).await.unwrap();
    srv.state.host.wake(&host).await.unwrap();
    let (_, err, code) = sprite_env(&srv, &host, &["checkpoints"]).await;
    assert_eq!(code, 0, "{err}");
    srv.state.mgmt.forget(&host);
    sprites_server::http::mgmt::serve_all(&srv.state)
        .await
        .unwrap();
    let (out, err, code) = sprite_env(&srv, &host, &["usage"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("disk_bytes"), "{out}");
}
