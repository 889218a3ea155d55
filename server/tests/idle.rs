//! Sleeping when idle, against a real server and sprites: the sleeper
//! freezes and then stops an idle sprite, and never one that is in use (a
//! command under way, a keep-awake task); terminal input wakes it.

mod common;

use std::time::{Duration, Instant};

use common::{start_as, Backend, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sprites_wire::client;
use tokio_tungstenite::tungstenite::Message;

async fn status(srv: &TestServer, token: &str, name: &str) -> String {
    let (st, v) = srv.get(token, &format!("/v1/sprites/{name}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["status"].as_str().unwrap().to_string()
}

/// Waits (up to `limit`) for the sprite to reach `want`.
async fn reaches(srv: &TestServer, token: &str, name: &str, want: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let now = status(srv, token, name).await;
        if now == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{name} is {now}, not {want}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(srv: &TestServer, token: &str, name: &str, warm: u64, cold: u64) {
    let req = json!({"name": name, "sleep": {"warm_after_secs": warm, "cold_after_secs": cold}});
    let (st, v) = srv.post(token, "/v1/sprites", req).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["sleep"]["warm_after_secs"], warm);
    assert_eq!(v["sleep"]["cold_after_secs"], cold);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_sprite_sleeps_warm_then_cold_and_settings_are_checked() {
    let (srv, [alice]) = start_as("t-idle-sleep", ["alice"]).await;
    create(&srv, &alice, "nap", 1, 3).await;
    reaches(&srv, &alice, "nap", "warm", Duration::from_secs(10)).await;
    reaches(&srv, &alice, "nap", "cold", Duration::from_secs(10)).await;
    let (_, v) = srv.send(&alice, &client::sprite("nap")).await;
    assert!(v["last_active_at"].as_str().unwrap().ends_with('Z'), "{v}");

    // "Never" is allowed, and kept; nonsense is refused.
    create(&srv, &alice, "awake", 0, 0).await;
    for nonsense in [
        json!({"sleep": {"warm_after_secs": 99999999999u64}}),
        json!({"sleep": {"warm_after": 5}}),
    ] {
        let (st, v) = srv.put(&alice, "/v1/sprites/awake", nonsense).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    }
    let (st, v) = srv
        .put(
            &alice,
            "/v1/sprites/awake",
            json!({"sleep": {"cold_after_secs": 600}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sleep"]["warm_after_secs"], 0);
    assert_eq!(v["sleep"]["cold_after_secs"], 600);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&srv, &alice, "awake").await, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn work_in_flight_and_keep_awake_tasks_hold_off_sleep() {
    let (srv, [alice]) = start_as("t-idle-busy", ["alice"]).await;
    create(&srv, &alice, "busy", 1, 0).await;

    // A command without a terminal keeps its sprite awake to its end.
    let run = srv
        .client
        .post(srv.url("/v1/sprites/busy/exec?cmd=sh&cmd=-c&cmd=sleep+3%3B+echo+done"))
        .bearer_auth(&alice)
        .send();
    let watch = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        status(&srv, &alice, "busy").await
    };
    let (res, during) = tokio::join!(run, watch);
    assert_eq!(during, "running");
    let body = res.unwrap().bytes().await.unwrap();
    assert!(body.ends_with(&[3, 0]), "{body:?}");

    // A keep-awake task holds it awake while it lasts, and can be ended.
    let (st, task) = srv
        .post(
            &alice,
            "/v1/sprites/busy/keep-awake",
            json!({"seconds": 600, "reason": "a long build"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{task}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&srv, &alice, "busy").await, "running");
    let (_, v) = srv.send(&alice, &client::sprite("busy")).await;
    assert_eq!(v["keep_awake"][0]["reason"], "a long build");
    let id = task["id"].as_str().unwrap();
    let (st, _) = srv
        .delete(&alice, &format!("/v1/sprites/busy/keep-awake/{id}"))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    reaches(&srv, &alice, "busy", "warm", Duration::from_secs(10)).await;

    // Keeping a sleeping sprite awake wakes it; bad requests change nothing.
    let (st, _) = srv
        .post(&alice, "/v1/sprites/busy/keep-awake", json!({"seconds": 0}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = srv
        .post(&alice, "/v1/sprites/busy/keep-awake", json!({"seconds": 5}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(status(&srv, &alice, "busy").await, "running");
    let (st, _) = srv.delete(&alice, "/v1/sprites/busy/keep-awake/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_terminal_lets_its_sprite_sleep_and_typing_wakes_it() {
    let (srv, [alice]) = start_as("t-idle-tty", ["alice"]).await;
    create(&srv, &alice, "term", 1, 0).await;
    let query = "cmd=sh&tty=true&stdin=true";
    let (mut ws, _) = srv.exec_socket(&alice, "term", query).await;
    reaches(&srv, &alice, "term", "warm", Duration::from_secs(10)).await;

    ws.send(Message::Binary(b"echo typed-$((6*7))\n".to_vec().into()))
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("typed-42") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(_))) => {}
            other => panic!("no answer to typing: {other:?} after {seen:?}"),
        }
    }
    assert_eq!(status(&srv, &alice, "term").await, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organizations_limits_answer_429_as_the_sdks_read_them() {
    let settings = sprites_server::Settings {
        open_signup: true,
        limits: sprites_server::domain::limits::OrgLimits {
            running: Some(2),
            warm: Some(1),
            creates_per_minute: Some(4),
        },
        ..Default::default()
    };
    let srv = common::start_with_settings("t-limits", Backend::Sqlite, settings).await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    create(&srv, &alice, "a", 0, 0).await;
    create(&srv, &alice, "b", 0, 0).await;

    // A third running at once: refused, in the SDKs' shape.
    let make = Some(json!({"name": "c"}));
    let res = srv.respond(Method::POST, &alice, "/v1/sprites", make).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["x-ratelimit-limit"], "2");
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"], "concurrent_sprite_limit_exceeded", "{v}");
    assert_eq!(
        (v["limit"].as_u64(), v["current_count"].as_u64()),
        (Some(2), Some(2))
    );
    let list = srv.ok(&alice, client::sprites(None)).await;
    assert_eq!((list.running_limit, list.warm_limit), (Some(2), Some(1)));
    // Another organization has its own.
    create(&srv, &bob, "bobs", 0, 0).await;

    // One asleep makes room; waking it again, or running a command in it,
    // would be a third.
    let (st, _) = srv.post(&alice, "/v1/sprites/a/sleep", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    create(&srv, &alice, "c", 0, 0).await;
    let (st, v) = srv.post(&alice, "/v1/sprites/a/wake", json!({})).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let exec = srv.respond(Method::POST, &alice, "/v1/sprites/a/exec?cmd=true", None);
    let st = exec.await.status();
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status(&srv, &alice, "a").await, "warm", "left asleep");

    // One warm at most: the next to fall asleep sleeps cold.
    let (st, _) = srv
        .post(&alice, "/v1/sprites/b/sleep", json!({"cold": true}))
        .await;
    assert_eq!(st, StatusCode::OK);
    create(&srv, &alice, "d", 1, 0).await;
    reaches(&srv, &alice, "d", "cold", Duration::from_secs(10)).await;
    assert_eq!(status(&srv, &alice, "a").await, "warm");

    // Four made this minute (a, b, c, d; the refused one did not count).
    let make = Some(json!({"name": "e"}));
    let res = srv.respond(Method::POST, &alice, "/v1/sprites", make).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(res.headers().contains_key("x-ratelimit-reset"));
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"], "sprite_creation_rate_limited", "{v}");
    assert_eq!(
        (v["limit"].as_u64(), v["window_seconds"].as_u64()),
        (Some(4), Some(60))
    );
}
