//! The live event stream and usage, against a real server and sprites.

mod common;

use std::time::Duration;

use common::start_as;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sprites_wire::client;

/// Reads server-sent events from a response, one JSON `data:` at a time.
struct EventReader {
    res: reqwest::Response,
    buf: String,
}

impl EventReader {
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return serde_json::from_str(&data).expect("events are JSON");
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.res.chunk())
                .await
                .expect("an event within 30 s")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `sprite.status` event that says `sprite` is now `status`.
    /// (Creation also reports the host's first "running", in either order
    /// with `sprite.created`.)
    async fn status(&mut self, sprite: &str, status: &str) {
        loop {
            let e = self.expect("sprite.status", sprite).await;
            if e["status"] == status {
                return;
            }
        }
    }

    /// The next event about `sprite` of kind `kind`, skipping others.
    async fn expect(&mut self, kind: &str, sprite: &str) -> Value {
        loop {
            let e = self.next().await;
            if e["type"] == kind && e["sprite"] == sprite {
                return e;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_tell_an_organization_what_happens_to_its_sprites() {
    let (srv, [alice, bob]) = start_as("t-api-events", ["alice", "bob"]).await;

    let open = |token: &str| {
        srv.client
            .get(srv.url("/v1/events"))
            .bearer_auth(token)
            .send()
    };
    let res = open(&alice).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut ev = EventReader {
        res,
        buf: String::new(),
    };
    let mut bobs = EventReader {
        res: open(&bob).await.unwrap(),
        buf: String::new(),
    };
    // Each stream starts by asking the client to fetch the list.
    assert_eq!(ev.next().await["type"], "resync");
    assert_eq!(bobs.next().await["type"], "resync");
    assert_eq!(
        srv.client
            .get(srv.url("/v1/events"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let (st, v) = srv.create(&alice, "ev").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let e = ev.expect("sprite.created", "ev").await;
    assert_eq!(e["status"], "running");
    assert!(e["at"].as_str().unwrap().ends_with('Z'));

    srv.send(&alice, &client::sleep("ev", false)).await;
    ev.status("ev", "warm").await;
    srv.send(&alice, &client::sleep("ev", true)).await;
    ev.status("ev", "cold").await;
    srv.send(&alice, &client::wake("ev")).await;
    ev.status("ev", "running").await;

    srv.put(&alice, "/v1/sprites/ev", json!({"labels": ["x"]}))
        .await;
    ev.expect("sprite.updated", "ev").await;
    let res = srv
        .client
        .post(srv.url("/v1/sprites/ev/checkpoint"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    res.text().await.unwrap();
    let e = ev.expect("checkpoint.created", "ev").await;
    assert_eq!(e["checkpoint"], "v0");

    let (st, _) = srv.send(&alice, &client::destroy_sprite("ev")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        ev.expect("sprite.destroyed", "ev").await["status"],
        "destroyed"
    );

    // Bob's sprite is news to Bob: the first event his stream carries
    // after its start is his own, none of Alice's.
    srv.create(&bob, "bobs").await;
    let e = bobs.next().await;
    assert_eq!(e["sprite"], "bobs", "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_reports_awake_seconds_and_disk_bytes() {
    let (srv, [alice, bob]) = start_as("t-api-usage", ["alice", "bob"]).await;
    for name in ["a", "b"] {
        let (st, v) = srv.create(&alice, name).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let out = srv
        .run(
            "a",
            &["sh", "-c", "head -c 4M /dev/urandom > /blob && sync"],
        )
        .await;
    assert_eq!(out.code, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (st, v) = srv.send(&alice, &client::usage("a")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "a");
    assert_eq!(v["status"], "running");
    assert!(v["active_seconds"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["disk_bytes"].as_u64().unwrap() >= 4 << 20, "{v}");

    let (st, all) = srv.send(&alice, &client::usage_all()).await;
    assert_eq!(st, StatusCode::OK, "{all}");
    let sprites = all["sprites"].as_array().unwrap();
    assert_eq!(sprites.len(), 2);
    let sum = |key: &str| {
        sprites
            .iter()
            .map(|s| s[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(all["disk_bytes"].as_u64().unwrap(), sum("disk_bytes"));
    assert_eq!(
        all["active_seconds"].as_u64().unwrap(),
        sum("active_seconds")
    );

    // Another organization sees neither the sprite nor its usage.
    let (st, _) = srv.send(&bob, &client::usage("a")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = srv.send(&bob, &client::usage_all()).await;
    assert_eq!(v["sprites"], json!([]));
}
