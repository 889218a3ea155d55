//! Templates through the API: the gallery (built in the background, its
//! service serving the page as soon as a sprite exists), checkpoints saved
//! as templates with their scopes and roles, and imported root file
//! systems.

mod common;

use std::time::Duration;

use common::{start_with_settings, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sprites_wire::client;

async fn server(instance: &str) -> TestServer {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/templates");
    let settings = sprites_server::Settings {
        open_signup: true,
        templates: sprites_server::domain::templates::Catalog::load(
            &dir,
            &vmhost::testing::mirror(),
        )
        .expect("the test gallery"),
        ..Default::default()
    };
    start_with_settings(instance, Backend::Sqlite, settings).await
}

/// Creating sprite `name` from template `template`.
fn from_template(name: &str, template: &str) -> client::Call<sprites_wire::api::Sprite> {
    let req = sprites_wire::api::CreateSprite {
        template: Some(template.into()),
        ..sprites_wire::api::CreateSprite::named(name)
    };
    client::create_sprite(&req)
}

async fn until_ready(srv: &TestServer, token: &str, name: &str) -> Value {
    for _ in 0..600 {
        let (st, v) = srv.get(token, &format!("/v1/templates/{name}")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        match v["state"].as_str().unwrap() {
            "ready" => return v,
            "failed" => panic!("the template failed: {v}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("template {name} was not built in a minute");
}

fn raw(
    srv: &TestServer,
    method: reqwest::Method,
    token: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    srv.client.request(method, srv.url(path)).bearer_auth(token)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gallery_template_gives_a_sprite_already_serving_its_page() {
    let srv = server("t-tpl-gallery").await;
    let alice = srv.user("alice").await;

    let (st, v) = srv.send(&alice, &client::templates()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let hello = &v["templates"][0];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["kind"], "gallery");
    assert_eq!(hello["scope"], "everyone");
    assert_eq!(hello["open"], "/root/site/EDIT-ME.md");
    assert_eq!(hello["picture"], "/v1/templates/hello/picture");
    let t = until_ready(&srv, &alice, "hello").await;
    assert_eq!(t["title"], "Hello page");

    // The picture is an inert SVG.
    let res = srv
        .client
        .get(srv.url("/v1/templates/hello/picture"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(res.text().await.unwrap().starts_with("<svg"));

    let (st, v) = srv
        .post(
            &alice,
            "/v1/sprites",
            json!({"name": "page", "template": "hello", "url_settings": {"auth": "public"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let out = srv
        .run("page", &["/bin/cat", "/root/site/EDIT-ME.md"])
        .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Change index.html and save.\n"
    );

    // Its service starts with the sprite and the URL serves the page.
    let addr: std::net::SocketAddr = srv.base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::builder()
        .resolve("page-alice.localhost", addr)
        .build()
        .unwrap();
    let url = format!("http://page-alice.localhost:{}/", addr.port());
    let mut body = String::new();
    for _ in 0..100 {
        let res = client.get(&url).send().await.unwrap();
        if res.status() == StatusCode::OK {
            body = res.text().await.unwrap();
            if body.contains("Hello from the template") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("Hello from the template"), "{body}");

    // Unknown templates and gallery names are refused in words.
    let (st, v) = srv.send(&alice, &from_template("x", "nope")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(srv.status(&alice, &client::sprite("x")).await == StatusCode::NOT_FOUND);
    let (st, v) = srv.send(&alice, &client::delete_template("hello")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_checkpoint_is_a_template_for_its_maker_or_the_organization() {
    let srv = server("t-tpl-save").await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    srv.post(
        &alice,
        "/v1/organizations",
        json!({"slug": "club", "name": "Club"}),
    )
    .await;
    let (st, v) = srv
        .post(
            &alice,
            "/v1/organizations/club/members",
            json!({"handle": "bob"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let token_in_club = |token: String| {
        let srv = &srv;
        async move {
            let (_, v) = srv
                .post(
                    &token,
                    "/v1/tokens",
                    json!({"name": "club", "organization": "club"}),
                )
                .await;
            v["token"].as_str().unwrap().to_string()
        }
    };
    let alice_club = token_in_club(alice.clone()).await;
    let bob_club = token_in_club(bob.clone()).await;

    srv.create(&bob_club, "work").await;
    srv.run(
        "work",
        &["sh", "-c", "echo 'starting point' > /root/task.txt"],
    )
    .await;
    let (st, v) = srv
        .post(
            &bob_club,
            "/v1/sprites/work/checkpoint",
            json!({"comment": "ready"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, list) = srv.send(&bob_club, &client::checkpoints("work")).await;
    let cp = list.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let save = |scope: &str, name: &str| {
        json!({"name": name, "sprite": "work", "checkpoint": cp, "title": "Task one",
               "description": "The starting point", "scope": scope, "open": "/root/task.txt"})
    };
    // A member saves for themselves; sharing with all of the club is for owners and admins.
    let (st, v) = srv
        .post(&bob_club, "/v1/templates", save("organization", "task"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = srv
        .post(&bob_club, "/v1/templates", save("owner", "task"))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["kind"], "checkpoint");
    assert_eq!(v["scope"], "owner");
    assert_eq!(v["created_by"], "bob");
    let (st, _) = srv
        .post(&bob_club, "/v1/templates", save("owner", "task"))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = srv
        .post(&bob_club, "/v1/templates", save("owner", "hello"))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "the gallery's names are taken");
    let mut bad = save("owner", "other");
    bad["checkpoint"] = json!("v99");
    let (st, _) = srv.post(&bob_club, "/v1/templates", bad).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        srv.get(&bob_club, "/v1/templates/other").await.0,
        StatusCode::NOT_FOUND
    );

    // Alice, in the same club, does not see bob's own template.
    assert_eq!(
        srv.get(&alice_club, "/v1/templates/task").await.0,
        StatusCode::NOT_FOUND
    );
    let (st, _) = srv.send(&alice_club, &from_template("copy", "task")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Bob starts a sprite from it: the checkpoint's files are there.
    let (st, v) = srv.send(&bob_club, &from_template("again", "task")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let out = srv.run("again", &["cat", "/root/task.txt"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "starting point\n");

    // Alice, the owner, shares one with the whole club; bob uses it but may not delete it.
    let (st, v) = srv
        .post(
            &alice_club,
            "/v1/templates",
            json!({"name": "shared", "sprite": "work", "checkpoint": cp, "scope": "organization"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["scope"], "organization");
    assert_eq!(v["title"], "shared");
    let (_, v) = srv.send(&bob_club, &client::templates()).await;
    let names: Vec<&str> = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello", "task", "shared"]);
    let (st, _) = srv
        .send(&bob_club, &client::delete_template("shared"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Nobody outside the club sees them.
    let (_, v) = srv.send(&alice, &client::templates()).await;
    assert_eq!(v["templates"].as_array().unwrap().len(), 1);

    // Deleting a template leaves the sprites made from it.
    assert_eq!(
        srv.status(&bob_club, &client::delete_template("task"))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        srv.status(&alice_club, &client::delete_template("shared"))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        srv.status(&bob_club, &client::sprite("again")).await,
        StatusCode::OK
    );
    assert_eq!(
        srv.get(&bob_club, "/v1/templates/task").await.0,
        StatusCode::NOT_FOUND
    );
}

/// A root file system as `tar -C DIR -c .` makes it: busybox and its
/// shell, its motd saying "imported".
fn root_archive(extra: Option<(&str, tar::EntryType)>) -> Vec<u8> {
    vmhost::testing::root_archive("imported\n", extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imported_root_file_system_is_a_template_and_a_hostile_one_is_refused() {
    let srv = server("t-tpl-import").await;
    let alice = srv.user("alice").await;

    let res = raw(
        &srv,
        reqwest::Method::POST,
        &alice,
        "/v1/images?name=tiny&title=Tiny%20root",
    )
    .header("content-type", "application/x-tar")
    .body(root_archive(None))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["kind"], "image");
    assert_eq!(v["title"], "Tiny root");
    let (st, v) = srv.send(&alice, &from_template("tiny", "tiny")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let out = srv.run("tiny", &["/bin/cat", "/etc/motd"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "imported\n");

    // A device node is refused with the reason, and the name stays free.
    let res = raw(&srv, reqwest::Method::POST, &alice, "/v1/images?name=evil")
        .body(root_archive(Some(("dev-sda", tar::EntryType::Block))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("device nodes are not allowed"),
        "{v}"
    );
    assert_eq!(
        srv.get(&alice, "/v1/templates/evil").await.0,
        StatusCode::NOT_FOUND
    );
    let res = raw(&srv, reqwest::Method::POST, &alice, "/v1/images?name=evil")
        .body("not an archive at all")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Without a name, or with a bad one, nothing is read.
    let res = raw(
        &srv,
        reqwest::Method::POST,
        &alice,
        "/v1/images?name=Bad%20Name",
    )
    .body(root_archive(None))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = raw(&srv, reqwest::Method::POST, &alice, "/v1/images")
        .body(root_archive(None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Without a token, nothing at all. (No archive is sent, and the
    // request goes out whole before the answer is read: the server answers
    // before reading a body and may close at once, which an HTTP client
    // still flushing its request meets as a broken pipe now and then.)
    let addr = srv.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request =
        format!("POST /v1/images?name=anon HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut tcp, request.as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 64];
    let n = tokio::io::AsyncReadExt::read(&mut tcp, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // The operator's import (a directory here) is for everyone.
    let dir = tempfile::tempdir().unwrap();
    let root = root_archive(None);
    let mut ar = tar::Archive::new(&root[..]);
    ar.unpack(dir.path()).unwrap();
    let archive = sprites_server::domain::templates::archive_of(dir.path()).unwrap();
    let params = sprites_server::domain::templates::ImportParams {
        name: "house".into(),
        title: Some("The house image".into()),
        description: None,
        scope: None,
    };
    let t = sprites_server::domain::templates::import(
        &srv.state,
        sprites_server::domain::templates::Importer::Operator,
        params,
        archive,
        u64::MAX,
    )
    .await
    .unwrap();
    assert_eq!(t.scope, "everyone");
    let bob = srv.user("bob").await;
    let (st, v) = srv.send(&bob, &from_template("home", "house")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        srv.status(&bob, &client::delete_template("house")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        srv.status(&bob, &client::delete_template("tiny")).await,
        StatusCode::NOT_FOUND
    );
    for image in srv.host.images().unwrap() {
        if image.name.starts_with("image-") || image.name.starts_with("template-u") {
            let _ = srv.state.host.remove_image(&image.name).await;
        }
    }
}
