//! The sprites API against a real server, a real database (SQLite and
//! PostgreSQL) and real sprites.

mod common;

use common::{start, start_as, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sprites_wire::api::{Fork, KillSession, UpdateSprite, UrlSettings};
use sprites_wire::client;
use sprites_wire::fs::{Chown, Move, Owner};

async fn body(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn sprites_lifecycle(srv: TestServer) {
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let c = &srv.client;

    // No token, a wrong token: 401 with a JSON error.
    let (st, v) = body(c.get(srv.url("/v1/sprites")).send().await.unwrap()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unauthorized");
    let (st, _) = body(
        c.get(srv.url("/v1/sprites"))
            .bearer_auth("sprt_nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Create.
    let req = json!({"name": "web", "labels": ["demo"], "url_settings": {"auth": "public"}});
    let (st, v) = srv.post(&alice, "/v1/sprites", req).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "web");
    assert_eq!(v["organization"], "alice");
    assert_eq!(v["status"], "running");
    assert_eq!(v["labels"], json!(["demo"]));
    assert_eq!(v["url_settings"]["auth"], "public");
    assert!(v["url"]
        .as_str()
        .unwrap()
        .starts_with("http://web-alice.localhost:"));
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));

    // The sprite is real and its hostname is its name.
    let host_name = srv
        .state
        .host
        .list()
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .name;
    let out = srv
        .state
        .host
        .run(
            &vmhost::SpriteName::parse(&host_name).unwrap(),
            &["hostname"],
            b"",
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "web");

    // Bad input: a clear 4xx, nothing changes.
    for (bad, what) in [
        (json!({"name": "web"}), "duplicate"),
        (json!({"name": "Bad_Name"}), "bad name"),
        (json!({"name": 42}), "wrong type"),
        (
            json!({"name": "x", "url_settings": {"auth": "everyone"}}),
            "bad auth",
        ),
        (json!({"name": "x", "config": {"ram_mb": 1}}), "bad config"),
    ] {
        let (st, v) = srv.post(&alice, "/v1/sprites", bad).await;
        assert!(st.is_client_error(), "{what}: {st} {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
    let (st, _) = body(
        c.post(srv.url("/v1/sprites"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(2 << 20));
    // Its own connection: the server closes one whose body it refused unread.
    let (st, _) = body(
        reqwest::Client::new()
            .post(srv.url("/v1/sprites"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(st.is_client_error(), "oversized body: {st}");
    assert_eq!(
        srv.state.host.list().await.unwrap().len(),
        1,
        "no stray sprite from bad requests"
    );

    // Another user's sprite is not there for them.
    let (st, v) = srv.send(&bob, &client::sprite("web")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");
    let (st, _) = srv.send(&bob, &client::destroy_sprite("web")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = srv.send(&bob, &client::sprites(None)).await;
    assert_eq!(v["sprites"], json!([]));
    // Bob may use the same name in his own organization.
    let (st, _) = srv.create(&bob, "web").await;
    assert_eq!(st, StatusCode::CREATED);

    // Sessions of a sprite: listed for its organization, absent for others.
    let (st, v) = srv.send(&alice, &client::exec_sessions("web")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The `hostname` run above is listed as ended, with its exit code.
    assert_eq!(v["sessions"][0]["command"], "hostname");
    assert_eq!(v["sessions"][0]["is_active"], false);
    assert_eq!(v["sessions"][0]["exit_code"], 0);
    let (st, _) = srv.send(&bob, &client::exec_sessions("web")).await;
    assert_eq!(st, StatusCode::OK, "bob's own sprite named web");
    let (st, _) = srv.send(&bob, &client::exec_sessions("nope")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let nope = KillSession {
        signal: Some("SIGNOPE".into()),
        timeout: None,
    };
    let kill = client::kill_session("web", "1", &nope);
    assert_eq!(srv.status(&alice, &kill).await, StatusCode::BAD_REQUEST);

    // List with a prefix and pages.
    for n in ["api-1", "api-2", "api-3"] {
        let (st, _) = srv.create(&alice, n).await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (_, v) = srv
        .get(&alice, "/v1/sprites?prefix=api&max_results=2")
        .await;
    let names: Vec<&str> = v["sprites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api-1", "api-2"]);
    assert_eq!(v["has_more"], true);
    let next = v["next_continuation_token"].as_str().unwrap().to_string();
    let (_, v) = srv
        .get(
            &alice,
            &format!("/v1/sprites?prefix=api&max_results=2&continuation_token={next}"),
        )
        .await;
    assert_eq!(v["sprites"][0]["name"], "api-3");
    assert_eq!(v["has_more"], false);
    let (_, v) = srv.send(&alice, &client::sprites(None)).await;
    assert_eq!(v["sprites"].as_array().unwrap().len(), 4);
    assert_eq!(v["running"], 4);
    let (st, _) = srv.get(&alice, "/v1/sprites?prefix=%25").await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "LIKE wildcards are not a prefix"
    );

    // Update.
    let update = UpdateSprite {
        labels: Some(vec!["a".into(), "b".into()]),
        url_settings: Some(UrlSettings {
            auth: Some("sprite".into()),
            private_access: None,
        }),
        sleep: None,
    };
    let (st, v) = srv
        .send(&alice, &client::update_sprite("web", &update))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["labels"], json!(["a", "b"]));
    assert_eq!(v["url_settings"]["auth"], "sprite");
    let (st, _) = srv.put(&alice, "/v1/sprites/web", json!({})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Destroy.
    assert_eq!(
        srv.status(&alice, &client::destroy_sprite("web")).await,
        StatusCode::NO_CONTENT
    );
    let (st, _) = srv.send(&alice, &client::sprite("web")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Bob's sprite of the same name is untouched.
    let (st, v) = srv.send(&bob, &client::sprite("web")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["organization"], "bob");
}

#[tokio::test(flavor = "multi_thread")]
async fn sprites_api_on_sqlite() {
    sprites_lifecycle(start("t-api-sqlite", Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sprites_api_on_postgres() {
    sprites_lifecycle(start("t-api-pg", Backend::Postgres).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_hash_passwords_and_the_first_user_is_admin() {
    let srv = start("t-api-accounts", Backend::Sqlite).await;
    let db = &srv.state.db;
    let first = sprites_server::domain::accounts::create_user(
        db,
        "Root@Example.com",
        "root",
        "a long password",
    )
    .await
    .unwrap();
    assert!(first.is_admin);
    assert_eq!(first.email, "root@example.com");
    let second = sprites_server::domain::accounts::create_user(
        db,
        "x@example.com",
        "second",
        "a long password",
    )
    .await
    .unwrap();
    assert!(!second.is_admin);
    for (email, handle, pw) in [
        ("root@example.com", "other", "a long password"),
        ("y@example.com", "root", "a long password"),
        ("nope", "z", "a long password"),
        ("z@example.com", "Bad Handle", "a long password"),
        ("z@example.com", "z", "short"),
    ] {
        assert!(
            sprites_server::domain::accounts::create_user(db, email, handle, pw)
                .await
                .is_err(),
            "{email} {handle}"
        );
    }
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE handle = 'root'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"));
    assert!(sprites_server::domain::accounts::verify_password(
        "a long password",
        &stored
    ));
}

/// NDJSON lines of a progress stream.
async fn lines(res: reqwest::Response) -> (StatusCode, Vec<Value>) {
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_restore_fork_sleep_and_wake() {
    let (srv, [alice, bob]) = start_as("t-api-ckpt", ["alice", "bob"]).await;
    let c = &srv.client;
    let (st, _) = srv.create(&alice, "app").await;
    assert_eq!(st, StatusCode::CREATED);
    let host = vmhost::SpriteName::parse(&srv.state.host.list().await.unwrap()[0].name).unwrap();
    let sh = |script: &'static str| {
        let host = host.clone();
        let h = srv.state.host.clone();
        async move { h.run(&host, &["sh", "-c", script], b"").await.unwrap() }
    };
    sh("echo one > /root/f").await;

    let (st, ls) = lines(
        c.post(srv.url("/v1/sprites/app/checkpoint"))
            .bearer_auth(&alice)
            .json(&json!({"comment": "first"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ls.last().unwrap()["type"], "complete", "{ls:?}");
    assert_eq!(ls.last().unwrap()["data"], "v0");
    let (_, v) = srv.send(&alice, &client::checkpoints("app")).await;
    assert_eq!(v[0]["id"], "v0");
    assert_eq!(v[0]["comment"], "first");
    assert!(v[0]["create_time"].as_str().unwrap().ends_with('Z'));
    for missing in ["v9", "bogus"] {
        let (st, _) = srv
            .get(&alice, &format!("/v1/sprites/app/checkpoints/{missing}"))
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{missing}");
    }
    let (st, _) = srv
        .post(&bob, "/v1/sprites/app/checkpoint", json!({}))
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "bob cannot checkpoint alice's sprite"
    );

    sh("echo two > /root/f; touch /root/g").await;
    let (_, v) = srv.get(&alice, "/v1/sprites/app/checkpoints/v0/diff").await;
    let changed: Vec<(&str, &str)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert!(changed.contains(&("/root/f", "modified")), "{changed:?}");
    assert!(changed.contains(&("/root/g", "added")), "{changed:?}");

    let (st, ls) = lines(
        c.post(srv.url("/v1/sprites/app/checkpoints/v0/restore"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ls.last().unwrap()["type"], "complete", "{ls:?}");
    assert!(ls.iter().any(|l| l["backup"] == "v1"), "{ls:?}");
    assert_eq!(
        String::from_utf8(sh("cat /root/f").await.stdout).unwrap(),
        "one\n"
    );
    let (st, _) = srv
        .post(&alice, "/v1/sprites/app/checkpoints/v7/restore", json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Fork from the checkpoint: a new sprite of the same organization.
    let fork = Fork {
        name: "app-b".into(),
        checkpoint: Some("v1".into()),
    };
    let (st, v) = srv.send(&alice, &client::fork("app", &fork)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "app-b");
    assert_eq!(v["status"], "running");
    let (st, _) = srv
        .post(&alice, "/v1/sprites/app/fork", json!({"name": "app-b"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // Sleep and wake, visible in the status.
    let (_, v) = srv.send(&alice, &client::sleep("app", false)).await;
    assert_eq!(v["status"], "warm");
    let (_, v) = srv.send(&alice, &client::sleep("app", true)).await;
    assert_eq!(v["status"], "cold");
    let (_, v) = srv.send(&alice, &client::wake("app")).await;
    assert_eq!(v["status"], "running");
    assert_eq!(
        String::from_utf8(sh("cat /root/f").await.stdout).unwrap(),
        "one\n"
    );

    // The checkpoint it stands on stays; others can go.
    let (st, _) = srv.delete(&alice, "/v1/sprites/app/checkpoints/v0").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(
        srv.status(&alice, &client::delete_checkpoint("app", "v1"))
            .await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_through_the_api_stay_inside_the_sprite() {
    let (srv, [alice, bob]) = start_as("t-api-fs", ["alice", "bob"]).await;
    let c = &srv.client;
    let (st, _) = srv.create(&alice, "box").await;
    assert_eq!(st, StatusCode::CREATED);

    let res = c
        .put(srv.url("/v1/sprites/box/fs/write?path=notes/today.txt&workingDir=/root&mode=0640"))
        .bearer_auth(&alice)
        .body("remember the milk")
        .send()
        .await
        .unwrap();
    let (st, v) = body(res).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["path"], "/root/notes/today.txt");
    assert_eq!(v["mode"], "0640");
    let res = c
        .get(srv.url("/v1/sprites/box/fs/read?path=/root/notes/today.txt"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "remember the milk");
    let (_, v) = srv
        .get(&alice, "/v1/sprites/box/fs/list?path=/root/notes")
        .await;
    assert_eq!(v["isDir"], true);
    assert_eq!(v["entries"][0]["name"], "today.txt");

    // Hostile paths resolve inside the sprite; the host's files are out of reach.
    let host_hostname = std::fs::read_to_string("/etc/hostname").unwrap();
    c.put(srv.url("/v1/sprites/box/fs/write?path=/etc/hostname"))
        .bearer_auth(&alice)
        .body("inside\n")
        .send()
        .await
        .unwrap();
    for hostile in [
        "/../../../etc/hostname",
        "../../etc/hostname",
        "/root/../../etc/hostname",
    ] {
        let res = c
            .get(srv.url(&format!("/v1/sprites/box/fs/read?path={hostile}")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "inside\n", "{hostile}");
    }
    assert_eq!(
        std::fs::read_to_string("/etc/hostname").unwrap(),
        host_hostname
    );
    let (st, v) = srv.get(&alice, "/v1/sprites/box/fs/read?path=/etc").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["code"], "EISDIR");
    let (st, v) = srv.get(&alice, "/v1/sprites/box/fs/read?path=/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "ENOENT");
    let (st, _) = srv.get(&alice, "/v1/sprites/box/fs/read?path=").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = srv.get(&alice, "/v1/sprites/box/fs/read").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "missing path");

    // Rename, copy, chown, delete.
    let moving = |source: &str, dest: &str| Move {
        source: source.into(),
        dest: dest.into(),
        working_dir: None,
        recursive: None,
        preserve_attrs: None,
    };
    srv.ok(
        &alice,
        client::copy("box", &moving("/root/notes", "/root/notes2")),
    )
    .await;
    let chown = Chown {
        path: "/root/notes2".into(),
        working_dir: None,
        uid: Some(Owner::Id(1000)),
        gid: Some(Owner::Id(1000)),
        recursive: true,
    };
    srv.ok(&alice, client::chown("box", &chown)).await;
    let (_, v) = srv
        .get(
            &alice,
            "/v1/sprites/box/fs/list?path=/root/notes2/today.txt",
        )
        .await;
    assert_eq!(v["entries"][0]["uid"], 1000);
    srv.ok(
        &alice,
        client::rename("box", &moving("/root/notes2", "/root/archive")),
    )
    .await;
    let (st, v) = srv
        .delete(&alice, "/v1/sprites/box/fs/delete?path=/root/archive")
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["code"], "ENOTEMPTY");
    assert_eq!(
        srv.status(&alice, &client::delete_file("box", "/root/archive", true))
            .await,
        StatusCode::NO_CONTENT
    );

    // Another organization cannot read a byte.
    let (st, _) = srv
        .get(&bob, "/v1/sprites/box/fs/read?path=/root/notes/today.txt")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_larger_than_memory_would_like_stream_both_ways() {
    let (srv, [alice]) = start_as("t-api-bigfile", ["alice"]).await;
    assert_eq!(srv.create(&alice, "big").await.0, StatusCode::CREATED);
    // 96 MiB: past the 64 MiB a request could carry before.
    let data: Vec<u8> = (0..96u32 << 20).map(|i| (i % 251) as u8).collect();
    let res = srv
        .client
        .put(srv.url("/v1/sprites/big/fs/write?path=/root/big.bin"))
        .bearer_auth(&alice)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let (st, v) = body(res).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["size"], 96 << 20);
    let mut res = srv
        .client
        .get(srv.url("/v1/sprites/big/fs/read?path=/root/big.bin"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.content_length(), Some(96 << 20));
    let (mut got, mut chunks) = (Vec::with_capacity(data.len()), 0);
    while let Some(chunk) = res.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(got == data, "the bytes read are the bytes written");
    assert!(chunks > 1, "the file came in pieces, as it was read");
    let out = srv
        .run(
            "big",
            &[
                "sh",
                "-c",
                "ls -A /root | grep -c sprite-tmp; stat -c %s /root/big.bin",
            ],
        )
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n100663296\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_over_plain_http_streams_framed_output_and_the_exit_code() {
    let (srv, [alice, bob]) = start_as("t-api-httpexec", ["alice", "bob"]).await;
    let (st, v) = srv.create(&alice, "h").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let exec = |token: &str, query: &str, body: &'static str| {
        srv.client
            .post(srv.url(&format!("/v1/sprites/h/exec?{query}")))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };

    let mut res = exec(
        &alice,
        "cmd=sh&cmd=-c&cmd=echo+%24A;+tr+a-z+A-Z;+echo+err+%3E%262;+exit+5&env=A%3Dx&stdin=true",
        "piped\n",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (mut out, mut err, mut exit) = (Vec::new(), Vec::new(), None);
    while let Some(chunk) = res.chunk().await.unwrap() {
        match chunk[0] {
            1 => out.extend_from_slice(&chunk[1..]),
            2 => err.extend_from_slice(&chunk[1..]),
            3 => exit = Some(chunk[1..].to_vec()),
            other => panic!("frame type {other}"),
        }
    }
    assert_eq!(String::from_utf8(out).unwrap(), "x\nPIPED\n");
    assert_eq!(String::from_utf8(err).unwrap(), "err\n");
    assert_eq!(exit, Some(vec![5]));

    // Without stdin=true the body is not the command's input.
    let res = exec(&alice, "cmd=cat", "ignored").await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), [3, 0]);

    let (st, v) = body(exec(&alice, "cmd=sh&tty=true", "").await.unwrap()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("WebSocket"), "{v}");
    let (st, _) = body(exec(&alice, "", "").await.unwrap()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = body(exec(&bob, "cmd=true", "").await.unwrap()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_used_again_reaches_the_new_sprite() {
    let (srv, [alice]) = start_as("t-api-again", ["alice"]).await;
    let run = |cmd: &'static str| {
        srv.client
            .post(srv.url(&format!(
                "/v1/sprites/again/exec?cmd=sh&cmd=-c&cmd={}",
                form_urlencoded::byte_serialize(cmd.as_bytes()).collect::<String>()
            )))
            .bearer_auth(&alice)
            .send()
    };
    for round in 0..3 {
        let (st, v) = srv.create(&alice, "again").await;
        assert_eq!(st, StatusCode::CREATED, "round {round}: {v}");
        // A fresh disk each time: the file of the last round is not there.
        let out = run("ls /root/mark 2>&1; touch /root/mark")
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out).contains("No such file"),
            "round {round}: {out:?}"
        );
        let (st, _) = srv.send(&alice, &client::destroy_sprite("again")).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let res = run("true").await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_bodies_are_refused_and_change_nothing() {
    let (srv, [alice]) = start_as("t-api-bodies", ["alice"]).await;
    assert_eq!(srv.create(&alice, "b").await.0, StatusCode::CREATED);
    let post = |path: &'static str, bytes: Vec<u8>| {
        srv.client
            .post(srv.url(path))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
    };
    let checkpoints = || async {
        let (_, v) = srv.send(&alice, &client::checkpoints("b")).await;
        v.as_array().expect("a list of checkpoints").len()
    };
    let before = checkpoints().await;

    // Cut short, the wrong type: each a JSON 400, no checkpoint.
    for bad in [&b"{\"comment\":"[..], b"{\"comment\":5}"] {
        let (st, v) = body(
            post("/v1/sprites/b/checkpoint", bad.to_vec())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], "invalid", "{v}");
    }
    // Far too large: a JSON 400, unless the server's answer (it reads no
    // more than its limit) closed the connection before the client had
    // written it all; either way, no checkpoint.
    let huge = format!("{{\"comment\": \"{}\"}}", "x".repeat(10 << 20));
    if let Ok(res) = post("/v1/sprites/b/checkpoint", huge.into_bytes()).await {
        let (st, v) = body(res).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], "invalid", "{v}");
    }
    assert_eq!(checkpoints().await, before);
    // No body at all is no comment.
    let (st, _) = body(post("/v1/sprites/b/checkpoint", Vec::new()).await.unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(checkpoints().await, before + 1);

    // A sleep asked badly leaves the sprite running.
    let (st, v) = body(
        post("/v1/sprites/b/sleep", b"{\"cold\": \"yes\"}".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = srv.send(&alice, &client::sprite("b")).await;
    assert_eq!(v["status"], "running", "{v}");

    // A path part that does not decode, a method the path does not take:
    // JSON too, with their own statuses.
    let (st, v) = srv.get(&alice, "/v1/sprites/%FF%FE").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "invalid", "{v}");
    let res = srv
        .client
        .patch(srv.url("/v1/sprites/b/checkpoint"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    let (st, v) = body(res).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(v["error"], "method_not_allowed", "{v}");

    // WebSocket routes asked without an upgrade answer in JSON.
    for path in [
        "/v1/sprites/b/exec/1",
        "/v1/sprites/b/proxy",
        "/v1/sprites/b/fs/watch",
    ] {
        let (st, v) = srv.get(&alice, path).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["error"], "invalid", "{path}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_goes_down_the_tree_and_filters_by_pattern() {
    let (srv, [alice]) = start_as("t-api-walk", ["alice"]).await;
    assert_eq!(srv.create(&alice, "tree").await.0, StatusCode::CREATED);
    let script = "mkdir -p /root/proj/src/bin && cd /root/proj && echo a > README.md \
                  && echo b > src/main.rs && echo c > src/lib.rs && echo d > src/bin/tool.rs \
                  && ln -s /root/proj loop";
    let out = srv.run("tree", &["sh", "-c", script]).await;
    assert_eq!(out.code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let names = |query: &[(&str, &str)]| {
        let mut call = client::list_files("tree", "/root/proj");
        for (k, v) in query {
            call = call.query(k, v);
        }
        let srv = &srv;
        let alice = &alice;
        async move {
            let listing = srv.ok(alice, call).await;
            listing
                .entries
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
        }
    };
    // One level, as before.
    assert_eq!(names(&[]).await, ["README.md", "loop", "src"]);
    // All the way down, the link listed and not followed.
    assert_eq!(
        names(&[("recursive", "true")]).await,
        [
            "README.md",
            "loop",
            "src",
            "src/bin",
            "src/lib.rs",
            "src/main.rs",
            "src/bin/tool.rs"
        ]
    );
    assert_eq!(
        names(&[("recursive", "true"), ("pattern", "src/*.rs")]).await,
        ["src/lib.rs", "src/main.rs"]
    );
    assert_eq!(
        names(&[("recursive", "true"), ("pattern", "**/*.rs")]).await,
        ["src/lib.rs", "src/main.rs", "src/bin/tool.rs"]
    );
    assert_eq!(names(&[("pattern", "*.md")]).await, ["README.md"]);
    let bad = client::list_files("tree", "/root/proj").query("pattern", "[");
    assert_eq!(srv.status(&alice, &bad).await, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn chown_takes_an_id_or_a_name_for_either_alone() {
    let (srv, [alice]) = start_as("t-api-chown", ["alice"]).await;
    assert_eq!(srv.create(&alice, "own").await.0, StatusCode::CREATED);
    let out = srv.run("own", &["sh", "-c", "echo x > /root/f"]).await;
    assert_eq!(out.code, 0);
    let chown = |uid: Option<Owner>, gid: Option<Owner>| {
        client::chown(
            "own",
            &Chown {
                path: "/root/f".into(),
                working_dir: None,
                uid,
                gid,
                recursive: false,
            },
        )
    };
    let name = |n: &str| Some(Owner::Name(n.into()));
    // The owner alone: the group stays.
    let e = srv.ok(&alice, chown(Some(Owner::Id(1000)), None)).await;
    assert_eq!((e.uid, e.gid), (1000, 0));
    // By the sprite's own names (Debian's daemon is 1, users is group 100).
    let e = srv.ok(&alice, chown(name("daemon"), name("daemon"))).await;
    assert_eq!((e.uid, e.gid), (1, 1));
    let e = srv.ok(&alice, chown(None, name("users"))).await;
    assert_eq!((e.uid, e.gid), (1, 100));
    // Neither, or a name the sprite does not know: refused, nothing changed.
    for bad in [chown(None, None), chown(name("nobody-here"), None)] {
        assert_eq!(srv.status(&alice, &bad).await, StatusCode::BAD_REQUEST);
    }
    let listing = srv.ok(&alice, client::list_files("own", "/root/f")).await;
    assert_eq!((listing.entries[0].uid, listing.entries[0].gid), (1, 100));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_at_its_process_limit_answers_409_and_a_restart_brings_it_back() {
    let (srv, [alice]) = start_as("t-api-limit", ["alice"]).await;
    assert_eq!(srv.create(&alice, "bombed").await.0, StatusCode::CREATED);
    srv.background("bombed", "echo kept > /root/note; f(){ f & f & wait; }; f")
        .await;
    // Commands meet the limit, named, with the way out: never a 500. (A
    // bomb's processes die and fork again: one may slip through.)
    let mut refused = None;
    for _ in 0..100 {
        let path = "/v1/sprites/bombed/exec?cmd=true";
        let res = srv.respond(reqwest::Method::POST, &alice, path, None).await;
        match res.status() {
            StatusCode::CONFLICT => {
                refused = Some(res.json::<Value>().await.unwrap());
                break;
            }
            StatusCode::OK => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            other => panic!("{other}: {}", res.text().await.unwrap()),
        }
    }
    let v = refused.expect("the limit met within 10 s");
    assert_eq!(v["error"], "limit_reached", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("processes") && message.contains("restart"),
        "{message}"
    );
    let (st, v) = srv
        .post(&alice, "/v1/sprites/bombed/restart", json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let out = srv.run("bombed", &["cat", "/root/note"]).await;
    assert_eq!(out.stdout, b"kept\n", "its disk kept");
}
