//! Classrooms through the API: a class joined by code, what students may
//! not do, assignments started, changed, reset and collected, students who
//! never see each other's sprites (API, URL, events), shared workspaces,
//! and the per-student limits.

mod common;

use common::{start, start_as, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sprites_wire::client;

async fn token_in(srv: &TestServer, token: &str, org: &str) -> String {
    let (st, v) = srv
        .post(
            token,
            "/v1/tokens",
            json!({"name": org, "organization": org}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// A class `slug` that `teacher` starts and `students` join with its code;
/// tokens of each of them (teacher first) acting in it.
async fn class_of(srv: &TestServer, teacher: &str, slug: &str, students: &[&str]) -> Vec<String> {
    let (st, v) = srv
        .post(
            teacher,
            "/v1/organizations",
            json!({"slug": slug, "name": slug, "class": true}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let code = v["join_code"].as_str().unwrap().to_string();
    let mut tokens = vec![token_in(srv, teacher, slug).await];
    for s in students {
        let (st, v) = srv.send(s, &client::join(&code)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        tokens.push(token_in(srv, s, slug).await);
    }
    tokens
}

async fn sh(srv: &TestServer, sprite: &str, script: &str) -> String {
    let out = srv.run(sprite, &["sh", "-c", script]).await;
    assert_eq!(out.code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn names(v: &Value) -> Vec<String> {
    v["sprites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_runs_an_assignment_from_start_to_collection() {
    class_story(start("t-class", Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_on_postgres() {
    class_story(start("t-class-pg", Backend::Postgres).await).await;
}

async fn class_story(srv: TestServer) {
    let tess = srv.user("tess").await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;

    // The teacher makes a class; its code lets students join.
    let (st, v) = srv
        .post(
            &tess,
            "/v1/organizations",
            json!({"slug": "cs101", "name": "CS 101", "class": true}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["class"], true);
    let code = v["join_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    let (st, _) = srv
        .post(&alice, "/v1/join", json!({"code": "nope-nope"}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    for student in [&alice, &bob, &carol] {
        let (st, v) = srv
            .post(student, "/v1/join", json!({"code": code.to_uppercase()}))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["role"], "member");
        assert!(
            v.get("join_code").is_none(),
            "students do not see the code: {v}"
        );
    }
    let (_, v) = srv.send(&alice, &client::join(&code)).await;
    assert_eq!(v["role"], "member", "joining again changes nothing");
    let tess_c = token_in(&srv, &tess, "cs101").await;
    let alice_c = token_in(&srv, &alice, "cs101").await;
    let bob_c = token_in(&srv, &bob, "cs101").await;
    let carol_c = token_in(&srv, &carol, "cs101").await;

    // The teacher prepares a sprite and publishes its checkpoint.
    let (st, v) = srv.create(&tess_c, "lab1-prep").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    sh(
        &srv,
        "lab1-prep",
        "echo 'TODO: print hello' > /root/task.py",
    )
    .await;
    srv.post(
        &tess_c,
        "/v1/sprites/lab1-prep/checkpoint",
        json!({"comment": "ready"}),
    )
    .await;
    let new_lab = json!({"name": "lab1", "title": "Lab 1: hello", "instructions": "Make it print hello.",
                         "sprite": "lab1-prep", "checkpoint": "v0", "open": "/root/task.py"});
    let (st, v) = srv
        .post(
            &alice_c,
            "/v1/organizations/cs101/assignments",
            new_lab.clone(),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a student publishes nothing: {v}"
    );
    let (st, v) = srv
        .post(
            &tess_c,
            "/v1/organizations/cs101/assignments",
            new_lab.clone(),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["title"], "Lab 1: hello");
    let (st, _) = srv
        .post(&tess_c, "/v1/organizations/cs101/assignments", new_lab)
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // The teacher's later work does not change what students get.
    sh(&srv, "lab1-prep", "echo 'the answer' > /root/task.py").await;

    // Students start it: their own sprite, the same one when pressed again.
    let (st, v) = srv
        .send(&alice_c, &client::start_assignment("cs101", "lab1"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sprite"]["name"], "lab1-alice");
    assert_eq!(v["open"], "/root/task.py");
    let (_, again) = srv
        .send(&alice_c, &client::start_assignment("cs101", "lab1"))
        .await;
    assert_eq!(again["sprite"]["name"], "lab1-alice");
    let (st, v) = srv
        .send(&bob_c, &client::start_assignment("cs101", "lab1"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        sh(&srv, "lab1-alice", "cat /root/task.py").await,
        "TODO: print hello\n"
    );

    // Students see only their own sprites; the teacher sees all.
    let (_, v) = srv.send(&alice_c, &client::sprites(None)).await;
    assert_eq!(names(&v), ["lab1-alice"]);
    let (_, v) = srv.send(&carol_c, &client::sprites(None)).await;
    assert!(names(&v).is_empty(), "carol has not started: {v}");
    let (_, v) = srv.send(&tess_c, &client::sprites(None)).await;
    assert_eq!(names(&v), ["lab1-alice", "lab1-bob", "lab1-prep"]);
    for path in [
        "/v1/sprites/lab1-bob",
        "/v1/sprites/lab1-bob/checkpoints",
        "/v1/sprites/lab1-bob/usage",
    ] {
        assert_eq!(
            srv.get(&alice_c, path).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (st, _) = srv
        .post(&alice_c, "/v1/sprites/lab1-bob/exec?cmd=true", json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, usage) = srv.send(&alice_c, &client::usage_all()).await;
    assert_eq!(usage["sprites"].as_array().unwrap().len(), 1, "{usage}");
    // Nor through the sprite's URL with a token of the class.
    let addr: std::net::SocketAddr = srv.base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::builder()
        .resolve("lab1-bob-cs101.localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("http://lab1-bob-cs101.localhost:{}/", addr.port());
    let res = client.get(&url).bearer_auth(&alice_c).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client.get(&url).bearer_auth(&tess_c).send().await.unwrap();
    assert_ne!(res.status(), StatusCode::UNAUTHORIZED, "the teacher may");

    // Alice works; the teacher reads her change.
    let (st, _) = srv
        .client
        .put(srv.url("/v1/sprites/lab1-alice/fs/write?path=/root/task.py"))
        .bearer_auth(&alice_c)
        .body("print('hello')\n")
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(st, StatusCode::OK);
    let text = srv
        .client
        .get(srv.url("/v1/sprites/lab1-alice/fs/read?path=/root/task.py"))
        .bearer_auth(&tess_c)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "print('hello')\n");

    // The teacher's view: every student, started or not.
    let (st, v) = srv
        .send(&tess_c, &client::assignment("cs101", "lab1"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let students = v["students"].as_array().unwrap();
    assert_eq!(students.len(), 3);
    assert_eq!(students[0]["handle"], "alice");
    assert_eq!(students[0]["sprite"]["name"], "lab1-alice");
    assert_eq!(students[0]["sprite"]["status"], "running");
    assert_eq!(students[2]["handle"], "carol");
    assert!(students[2]["sprite"].is_null());
    let (_, v) = srv
        .send(&alice_c, &client::assignment("cs101", "lab1"))
        .await;
    assert!(
        v.get("students").is_none(),
        "students do not see the roster: {v}"
    );
    assert_eq!(v["mine"]["name"], "lab1-alice");

    // Reset bob: his work is kept as a checkpoint, his sprite is back at the start.
    sh(&srv, "lab1-bob", "echo 'broken' > /root/task.py").await;
    let (st, v) = srv
        .send(&bob_c, &client::reset_student("cs101", "lab1", "alice"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = srv
        .send(&tess_c, &client::reset_student("cs101", "lab1", "bob"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let kept = v["work_kept_as"].as_str().unwrap().to_string();
    assert_eq!(
        sh(&srv, "lab1-bob", "cat /root/task.py").await,
        "TODO: print hello\n"
    );
    let (_, cps) = srv.send(&bob_c, &client::checkpoints("lab1-bob")).await;
    assert!(
        cps.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == kept.as_str()),
        "{cps}"
    );
    let (st, _) = srv
        .send(&tess_c, &client::reset_student("cs101", "lab1", "carol"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "carol never started");

    // Collect at the deadline: one labelled checkpoint per student.
    let (st, _) = srv
        .send(&alice_c, &client::collect("cs101", "lab1", "deadline"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = srv
        .send(&tess_c, &client::collect("cs101", "lab1", "deadline"))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let collected = v["students"].as_array().unwrap();
    assert_eq!(collected.len(), 2);
    assert_eq!(collected[0]["handle"], "alice");
    let cp = collected[0]["checkpoint"].as_str().unwrap();
    let (_, c) = srv
        .get(&tess_c, &format!("/v1/sprites/lab1-alice/checkpoints/{cp}"))
        .await;
    assert_eq!(c["comment"], "deadline");
    let (_, v) = srv
        .get(
            &tess_c,
            "/v1/organizations/cs101/assignments/lab1/collections",
        )
        .await;
    assert_eq!(v["collections"][0]["label"], "deadline");
    assert_eq!(
        srv.status(&alice_c, &client::collections("cs101", "lab1"))
            .await,
        StatusCode::FORBIDDEN
    );

    // Teacher-only settings.
    assert_eq!(
        srv.post(&alice_c, "/v1/organizations/cs101/join-code", json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (st, _) = srv
        .put(
            &alice_c,
            "/v1/organizations/cs101/limits",
            json!({"max_sprites_per_member": 9, "max_disk_per_member": null}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        srv.status(&alice_c, &client::delete_assignment("cs101", "lab1"))
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        srv.post(
            &alice_c,
            "/v1/organizations/cs101/members",
            json!({"handle": "carol", "role": "admin"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // A new code; the old one stops working.
    let (_, v) = srv
        .post(&tess_c, "/v1/organizations/cs101/join-code", json!({}))
        .await;
    assert_ne!(v["join_code"].as_str().unwrap(), code);
    let dave = srv.user("dave").await;
    assert_eq!(
        srv.status(&dave, &client::join(&code)).await,
        StatusCode::NOT_FOUND
    );

    // Deleting the assignment leaves the students' sprites.
    assert_eq!(
        srv.status(&tess_c, &client::delete_assignment("cs101", "lab1"))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        srv.status(&alice_c, &client::sprite("lab1-alice")).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_workspaces_and_limits_in_a_class() {
    let (srv, [tess, alice, bob, carol]) =
        start_as("t-class-share", ["tess", "alice", "bob", "carol"]).await;
    let tokens = class_of(&srv, &tess, "art", &[&alice, &bob, &carol]).await;
    let [tess_c, alice_c, bob_c, carol_c] = <[String; 4]>::try_from(tokens).unwrap();

    // A group's sprite: alice makes it and shares it with bob.
    let (st, v) = srv.create(&alice_c, "mural").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        srv.status(&bob_c, &client::sprite("mural")).await,
        StatusCode::NOT_FOUND
    );
    let (st, v) = srv
        .send(&alice_c, &client::add_sprite_member("mural", "bob"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["owner"], "alice");
    assert_eq!(v["members"][0]["handle"], "bob");
    assert_eq!(
        srv.status(&bob_c, &client::sprite("mural")).await,
        StatusCode::OK
    );
    let (_, v) = srv.send(&bob_c, &client::sprites(None)).await;
    assert_eq!(names(&v), ["mural"]);
    // Bob, a member but not its owner, cannot share it further; carol sees nothing.
    let (st, _) = srv
        .send(&bob_c, &client::add_sprite_member("mural", "carol"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        srv.status(&carol_c, &client::sprite("mural")).await,
        StatusCode::NOT_FOUND
    );
    let (st, _) = srv
        .send(&carol_c, &client::add_sprite_member("mural", "carol"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Only members of the class can be added; the teacher may share any sprite.
    srv.user("outsider").await;
    let (st, _) = srv
        .send(&alice_c, &client::add_sprite_member("mural", "outsider"))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = srv
        .send(&tess_c, &client::add_sprite_member("mural", "carol"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        srv.status(&carol_c, &client::sprite("mural")).await,
        StatusCode::OK
    );
    // Leaving: bob leaves by himself.
    assert_eq!(
        srv.status(&bob_c, &client::remove_sprite_member("mural", "bob"))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        srv.status(&bob_c, &client::sprite("mural")).await,
        StatusCode::NOT_FOUND
    );

    // Limits: two sprites per student, then a clear refusal.
    let (st, v) = srv
        .put(
            &tess_c,
            "/v1/organizations/art/limits",
            json!({"max_sprites_per_member": 2, "max_disk_per_member": null}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["limits"]["max_sprites_per_member"], 2);
    // Two asked at once with room for one: exactly one is made.
    let (a, b) = tokio::join!(
        srv.create(&alice_c, "sketch"),
        srv.create(&alice_c, "rival"),
    );
    let mut answers = [a.0, b.0];
    answers.sort();
    assert_eq!(
        answers,
        [StatusCode::CREATED, StatusCode::FORBIDDEN],
        "{} {}",
        a.1,
        b.1
    );
    let made = if a.0 == StatusCode::CREATED {
        "sketch"
    } else {
        "rival"
    };
    let (st, v) = srv.create(&alice_c, "third").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("allows 2 sprites per student"),
        "{v}"
    );
    let (st, _) = srv
        .post(
            &alice_c,
            &format!("/v1/sprites/{made}/fork"),
            json!({"name": "copy"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a fork counts too");
    // The teacher is not limited.
    for n in ["t1", "t2", "t3"] {
        assert_eq!(srv.create(&tess_c, n).await.0, StatusCode::CREATED);
    }
    // Disk: bob may use 4 MiB in all, each of his sprites at most that.
    srv.put(
        &tess_c,
        "/v1/organizations/art/limits",
        json!({"max_sprites_per_member": null, "max_disk_per_member": 4 << 20}),
    )
    .await;
    let sh_in = |sprite: &'static str, script: String| {
        let srv = &srv;
        async move { srv.run(sprite, &["sh", "-c", &script]).await.code }
    };
    let write =
        |file: &str, mib: u32| format!("head -c {} /dev/urandom > /root/{file} && sync", mib << 20);
    assert_eq!(srv.create(&bob_c, "bobs").await.0, StatusCode::CREATED);
    assert_eq!(sh_in("bobs", write("a", 3)).await, 0);
    assert_ne!(
        sh_in("bobs", write("b", 6)).await,
        0,
        "one sprite cannot hold more than the student's share"
    );
    assert_eq!(sh_in("bobs", "rm /root/b && sync".into()).await, 0);
    // Through the API too: the quota refuses, named, and the file the
    // write would have replaced stays whole.
    let res = srv
        .client
        .put(srv.url("/v1/sprites/bobs/fs/write?path=/root/a"))
        .bearer_auth(&bob_c)
        .body(vec![0u8; 6 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INSUFFICIENT_STORAGE);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"], "quota_exceeded", "{v}");
    assert_eq!(
        sh_in(
            "bobs",
            "test $(stat -c %s /root/a) = 3145728 && ! ls -A /root | grep -q sprite-tmp".into()
        )
        .await,
        0,
        "the old file is whole and no part of the new one is left"
    );
    assert_eq!(srv.create(&bob_c, "bobs2").await.0, StatusCode::CREATED);
    assert_eq!(sh_in("bobs2", write("c", 2)).await, 0);
    let (st, v) = srv.create(&bob_c, "bobs3").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("your class allows each student"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_students_event_stream_tells_only_of_their_sprites() {
    let (srv, [tess, alice, bob]) = start_as("t-class-events", ["tess", "alice", "bob"]).await;
    let tokens = class_of(&srv, &tess, "bio", &[&alice, &bob]).await;
    let [_, alice_c, bob_c] = <[String; 3]>::try_from(tokens).unwrap();

    let mut res = srv
        .client
        .get(srv.url("/v1/events"))
        .bearer_auth(&alice_c)
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let first = res.chunk().await.unwrap().unwrap();
    seen.push_str(&String::from_utf8_lossy(&first));
    srv.create(&bob_c, "bobs-secret").await;
    srv.create(&alice_c, "alices").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !seen.contains("alices") && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(std::time::Duration::from_secs(1), res.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("alices"), "{seen}");
    assert!(!seen.contains("bobs-secret"), "{seen}");
}

/// The network policy of `sprite` as the holder of `token` reads it.
async fn policy(
    srv: &TestServer,
    token: &str,
    sprite: &str,
) -> sprites_wire::policy::NetworkPolicy {
    srv.ok(token, client::network_policy(sprite)).await
}

/// Sends `call`, which must be refused with `status` in a sentence
/// holding `words`.
async fn refused<A>(
    srv: &TestServer,
    token: &str,
    call: client::Call<A>,
    status: StatusCode,
    words: &str,
) {
    let (st, v) = srv.send(token, &call).await;
    assert_eq!(st, status, "{v}");
    assert!(v["message"].as_str().unwrap().contains(words), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_network_policy_covers_its_students_sprites() {
    use sprites_wire::policy::{NetworkPolicy, PolicyRule};
    let (srv, [tess, alice]) = start_as("t-class-policy", ["tess", "alice"]).await;
    let tokens = class_of(&srv, &tess, "chem", &[&alice]).await;
    let [tess_c, alice_c] = <[String; 2]>::try_from(tokens).unwrap();
    let open = NetworkPolicy::default();
    let own = NetworkPolicy {
        rules: vec![PolicyRule::deny("*.ads.example")],
    };
    let class = NetworkPolicy {
        rules: vec![
            PolicyRule::allow("pypi.org"),
            PolicyRule::allow("*.pythonhosted.org"),
        ],
    };
    let (st, v) = srv.create(&alice_c, "before").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = srv.create(&tess_c, "teachers").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // What a student's sprite may use is the class's to decide.
    let more = sprites_wire::policy::ResourcesPolicy {
        memory: Some(sprites_wire::policy::MemoryPolicy {
            limit_mb: 64 << 10,
            autoscale: false,
        }),
    };
    let call = client::set_resources_policy("before", &more);
    refused(&srv, &alice_c, call, StatusCode::FORBIDDEN, "ask a teacher").await;
    let call = client::clear_resources_policy("before");
    refused(&srv, &alice_c, call, StatusCode::FORBIDDEN, "ask a teacher").await;
    let mine = srv.ok(&alice_c, client::resources_policy("before")).await;
    assert_eq!(mine.memory.map(|m| m.limit_mb), Some(4096));

    // Without a class policy, a student sets their sprite's own.
    assert_eq!(policy(&srv, &alice_c, "before").await, open);
    let st = srv
        .status(&alice_c, &client::set_network_policy("before", &own))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(policy(&srv, &alice_c, "before").await, own);

    // Only teachers see and set the class's; a bad one is refused.
    let st = srv
        .status(&alice_c, &client::class_network_policy("chem"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let st = srv
        .status(&alice_c, &client::set_class_network_policy("chem", &class))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let bad = NetworkPolicy {
        rules: vec![PolicyRule::allow("py pi.org")],
    };
    let call = client::set_class_network_policy("chem", &bad);
    refused(&srv, &tess_c, call, StatusCode::BAD_REQUEST, "rule 1").await;
    assert_eq!(
        srv.ok(&tess_c, client::class_network_policy("chem")).await,
        open
    );

    // Set: every student's sprite is under it at once, inside too, and new
    // ones are born under it; the teacher's own sprite is not touched.
    let set = srv
        .ok(&tess_c, client::set_class_network_policy("chem", &class))
        .await;
    assert_eq!(set, class);
    assert_eq!(
        srv.ok(&tess_c, client::class_network_policy("chem")).await,
        class
    );
    assert_eq!(policy(&srv, &alice_c, "before").await, class);
    let inside = sh(
        &srv,
        "before",
        &format!("cat {}", vmhost::sprite::POLICY_FILE),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<NetworkPolicy>(&inside).unwrap(),
        class
    );
    let (st, v) = srv.create(&alice_c, "after").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(policy(&srv, &alice_c, "after").await, class);
    assert_eq!(policy(&srv, &tess_c, "teachers").await, open);

    // The student cannot lift it from their sprite; a teacher can change it.
    let call = client::set_network_policy("after", &open);
    refused(&srv, &alice_c, call, StatusCode::FORBIDDEN, "class").await;
    assert_eq!(policy(&srv, &alice_c, "after").await, class);
    let st = srv
        .status(&tess_c, &client::set_network_policy("after", &own))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(policy(&srv, &alice_c, "after").await, own);

    // Lifted: the students' sprites are open again, and theirs to set.
    let lifted = srv
        .ok(&tess_c, client::set_class_network_policy("chem", &open))
        .await;
    assert_eq!(lifted, open);
    assert_eq!(policy(&srv, &alice_c, "before").await, open);
    let st = srv
        .status(&alice_c, &client::set_network_policy("before", &own))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}
