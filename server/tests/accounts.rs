//! Browser accounts: sign up, sessions with CSRF protection, API tokens,
//! sign-in throttling, and the sign-up setting.

mod common;

use common::{start, start_with, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sprites_wire::client;

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_csrf_tokens_and_sign_out() {
    let srv = start("t-acct", Backend::Sqlite).await;
    let web = browser();
    let signup =
        json!({"email": "Ada@Example.com", "handle": "ada", "password": "a long password"});
    let (st, v, headers) = send(web.post(srv.url("/v1/auth/signup")).json(&signup)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["handle"], "ada");
    assert_eq!(v["is_admin"], true, "the first user is the admin");
    let csrf = v["csrf_token"].as_str().unwrap().to_string();
    let cookie = headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("sprites_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    let (st, v, _) = send(web.get(srv.url("/v1/auth/me"))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["organization"], "ada");
    assert_eq!(v["organizations"][0]["role"], "owner");

    // A cookie alone cannot change state: the CSRF token must come too.
    let (st, v, _) = send(
        web.post(srv.url("/v1/sprites"))
            .json(&json!({"name": "web"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, _, _) = send(
        web.post(srv.url("/v1/sprites"))
            .header("x-csrf-token", "guess")
            .json(&json!({"name": "web"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v, _) = send(
        web.post(srv.url("/v1/sprites"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "web"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, _, _) = send(web.get(srv.url("/v1/sprites/web"))).await;
    assert_eq!(st, StatusCode::OK, "reading needs no CSRF token");

    // A page of a sprite's URL shares the app's site, so the session cookie
    // would ride along on its requests (the exec WebSocket is a GET): only
    // the app's own origin may use the session.
    let here = srv.url("");
    let (st, _, _) = send(
        web.get(srv.url("/v1/sprites/web"))
            .header("origin", here.trim_end_matches('/')),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "the app's own pages use the session");
    for foreign in [
        "http://web-ada.localhost:8080",
        "null",
        "http://evil.example",
    ] {
        let (st, v, _) = send(
            web.get(srv.url("/v1/sprites/web"))
                .header("origin", foreign),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{foreign}: {v}");
        let (st, _, _) = send(
            web.get(srv.url("/v1/sprites/web/exec?cmd=id"))
                .header("origin", foreign)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{foreign}: no WebSocket with the session"
        );
    }

    // Tokens: shown once, listed without the secret, revocable.
    let (st, v, _) = send(
        web.post(srv.url("/v1/tokens"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "laptop"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("sprt_"));
    let (st, v) = srv.send(&token, &client::sprites(None)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["sprites"][0]["name"], "web");
    let (_, v) = srv.send(&token, &client::tokens()).await;
    let listed = &v["tokens"][0];
    assert_eq!(listed["name"], "laptop");
    assert!(listed.get("token").is_none(), "the secret is never listed");
    assert!(!v.to_string().contains(&token));
    let id = listed["id"].as_str().unwrap().to_string();
    let (st, _) = srv.delete(&token, &format!("/v1/tokens/{id}")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = srv.send(&token, &client::sprites(None)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a revoked token is refused");
    let (st, _) = srv.delete(&token, "/v1/tokens/nope").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // The session can act in a team organization the user belongs to.
    let (st, _, _) = send(
        web.post(srv.url("/v1/organizations"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"slug": "ada-team", "name": "Team"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v, _) = send(
        web.post(srv.url("/v1/auth/organization"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"slug": "ada-team"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["organization"], "ada-team");
    let (_, v, _) = send(web.get(srv.url("/v1/sprites"))).await;
    assert_eq!(v["sprites"], json!([]), "the team has no sprites yet");
    let (st, _, _) = send(
        web.post(srv.url("/v1/auth/organization"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"slug": "someone-else"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    send(
        web.post(srv.url("/v1/auth/organization"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"slug": "ada"})),
    )
    .await;

    // Sign out ends the session.
    let (st, _, _) = send(web.post(srv.url("/v1/auth/signout"))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = send(web.get(srv.url("/v1/auth/me"))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Sign in again, by handle or email, with a new session and CSRF token.
    let (st, v, headers) = send(
        web.post(srv.url("/v1/auth/signin"))
            .json(&json!({"login": "ADA@example.com", "password": "a long password"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        headers.get("set-cookie").is_some(),
        "a fresh session id at sign-in"
    );
    assert_ne!(v["csrf_token"].as_str().unwrap(), csrf);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_are_throttled() {
    let srv = start("t-throttle", Backend::Sqlite).await;
    srv.user("grace").await;
    let web = browser();
    let wrong = json!({"login": "grace", "password": "not the password"});
    for _ in 0..5 {
        let (st, v, _) = send(web.post(srv.url("/v1/auth/signin")).json(&wrong)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    }
    let (st, v, headers) = send(web.post(srv.url("/v1/auth/signin")).json(&wrong)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(headers.get("retry-after").is_some());
    // Even the right password waits out the window.
    let right = json!({"login": "grace", "password": "a long password"});
    let (st, _, _) = send(web.post(srv.url("/v1/auth/signin")).json(&right)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    // Unknown accounts answer like wrong passwords.
    let (st, v, _) = send(
        web.post(srv.url("/v1/auth/signin"))
            .json(&json!({"login": "nobody", "password": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_guessing_many_accounts_is_throttled() {
    let srv = start("t-throttle-ip", Backend::Sqlite).await;
    srv.user("heidi").await;
    let web = browser();
    // Few tries per account, many accounts: each account stays under its
    // own limit, but the address runs out.
    let limit = sprites_server::domain::accounts::Throttle::PER_ADDRESS;
    for i in 0..limit {
        let guess = json!({"login": format!("user{}", i / 2), "password": "guess"});
        let (st, v, _) = send(web.post(srv.url("/v1/auth/signin")).json(&guess)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "attempt {i}: {v}");
    }
    let right = json!({"login": "heidi", "password": "a long password"});
    let (st, v, headers) = send(web.post(srv.url("/v1/auth/signin")).json(&right)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(headers.get("retry-after").is_some());
    // Tokens are not sign-ins: the API still works for their holders.
    let token = srv.user("ivan").await;
    let (st, _) = srv.send(&token, &client::sprites(None)).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_by_invitation_lets_only_the_first_user_in() {
    let srv = start_with("t-invite", Backend::Sqlite, false).await;
    let first =
        json!({"email": "root@example.com", "handle": "root", "password": "a long password"});
    let (st, _, _) = send(browser().post(srv.url("/v1/auth/signup")).json(&first)).await;
    assert_eq!(st, StatusCode::CREATED);
    let second =
        json!({"email": "eve@example.com", "handle": "eve", "password": "a long password"});
    let (st, v, _) = send(browser().post(srv.url("/v1/auth/signup")).json(&second)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("invitation"));
}

/// Signs up in a new browser; the status and the answer.
async fn sign_up_with(
    srv: &common::TestServer,
    body: Value,
) -> (StatusCode, Value, reqwest::Client) {
    let web = browser();
    let (st, v, _) = send(web.post(srv.url("/v1/auth/signup")).json(&body)).await;
    (st, v, web)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admins_invitation_signs_up_one_person_with_its_address() {
    let srv = start_with("t-invitations", Backend::Sqlite, false).await;
    let root = srv.user("root").await;
    let bob = srv.user("bob").await;

    // Only admins invite.
    let (st, v) = srv
        .post(
            &bob,
            "/v1/admin/invitations",
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = srv
        .post(&root, "/v1/admin/invitations", json!({"email": "nope"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let (st, v) = srv
        .post(
            &root,
            "/v1/admin/invitations",
            json!({"email": "Cat@Example.com"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["email"], "cat@example.com");
    assert_eq!(v["created_by"], "root");

    // The sign-up page may see whom it is for, and nobody sees its secret again.
    let (st, v, _) = send(browser().get(srv.url(&format!("/v1/auth/invitations/{token}")))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["email"], "cat@example.com");
    let (_, v) = srv.send(&root, &client::invitations()).await;
    assert_eq!(v["invitations"][0]["id"], id.as_str());
    assert!(v["invitations"][0].get("token").is_none(), "{v}");

    // Another address cannot use it; nothing is made, nothing used up.
    let wrong = json!({"email": "eve@example.com", "handle": "eve", "password": "a long password", "invite": token});
    let (st, v, _) = sign_up_with(&srv, wrong).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("cat@example.com"),
        "{v}"
    );

    let cat = json!({"email": "cat@example.com", "handle": "cat", "password": "a long password", "invite": token});
    let (st, v, web) = sign_up_with(&srv, cat.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["handle"].as_str(), v["is_admin"].as_bool()),
        (Some("cat"), Some(false))
    );
    let (st, _, _) = send(web.get(srv.url("/v1/auth/me"))).await;
    assert_eq!(st, StatusCode::OK);

    // Used up: once only, and no longer pending.
    let again = json!({"email": "cat@example.com", "handle": "cat2", "password": "a long password", "invite": token});
    let (st, v, _) = sign_up_with(&srv, again).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(v["message"].as_str().unwrap().contains("was used"), "{v}");
    let (_, v) = srv.send(&root, &client::invitations()).await;
    assert_eq!(v["invitations"], json!([]));

    // A withdrawn invitation signs nobody up.
    let (_, v) = srv.post(&root, "/v1/admin/invitations", json!({})).await;
    let (token, id) = (v["token"].as_str().unwrap(), v["id"].as_str().unwrap());
    let (st, _) = srv
        .delete(&root, &format!("/v1/admin/invitations/{id}"))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let late = json!({"email": "dan@example.com", "handle": "dan", "password": "a long password", "invite": token});
    let (st, _, _) = sign_up_with(&srv, late).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = srv
        .delete(&root, &format!("/v1/admin/invitations/{id}"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_join_code_signs_a_student_up_into_that_class() {
    let srv = start_with("t-join-signup", Backend::Sqlite, false).await;
    let tess = srv.user("tess").await;
    let (st, v) = srv
        .post(
            &tess,
            "/v1/organizations",
            json!({"slug": "lab", "name": "Lab", "class": true}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let code = v["join_code"].as_str().unwrap().to_string();

    // A wrong code makes no account.
    let wrong = json!({"email": "sam@example.com", "handle": "sam", "password": "a long password", "join_code": "zzzzzzzz"});
    let (st, v, _) = sign_up_with(&srv, wrong).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = srv.send(&tess, &client::members("lab")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["members"].as_array().unwrap().len(), 1, "{v}");

    let sam = json!({"email": "sam@example.com", "handle": "sam", "password": "a long password", "join_code": code.to_uppercase()});
    let (st, v, _) = sign_up_with(&srv, sam).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let lab = v["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["slug"] == "lab")
        .cloned()
        .unwrap_or_else(|| panic!("sam is in the class: {v}"));
    assert_eq!(lab["role"], "member", "a student, never a teacher: {lab}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_account_cannot_sign_in_and_its_sessions_and_tokens_stop() {
    let srv = start_with("t-disable", Backend::Sqlite, false).await;
    let root = srv.user("root").await;
    let fay = srv.user("fay").await;
    let web = browser();
    let login = json!({"login": "fay", "password": "a long password"});
    let (st, _, _) = send(web.post(srv.url("/v1/auth/signin")).json(&login)).await;
    assert_eq!(st, StatusCode::OK);

    let (st, v) = srv.send(&fay, &client::users()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = srv.send(&root, &client::users()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let handles: Vec<_> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["handle"].clone())
        .collect();
    assert_eq!(handles, [json!("root"), json!("fay")]);
    assert_eq!(v["users"][0]["is_admin"], true);

    let (st, v) = srv
        .post(&root, "/v1/admin/users/root/disable", json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = srv
        .post(&root, "/v1/admin/users/nobody/disable", json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = srv
        .post(&root, "/v1/admin/users/fay/disable", json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["disabled"], true);

    // Her token, her open session and a new sign-in all stop.
    let (st, _) = srv.send(&fay, &client::sprites(None)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = send(web.get(srv.url("/v1/auth/me"))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v, _) = send(browser().post(srv.url("/v1/auth/signin")).json(&login)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("disabled"), "{v}");
    // A wrong password tells nothing of it.
    let guess = json!({"login": "fay", "password": "a wrong password"});
    let (st, _, _) = send(browser().post(srv.url("/v1/auth/signin")).json(&guess)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let (st, v) = srv
        .post(&root, "/v1/admin/users/fay/enable", json!({}))
        .await;
    assert_eq!((st, &v["disabled"]), (StatusCode::OK, &json!(false)), "{v}");
    let (st, _) = srv.send(&fay, &client::sprites(None)).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = send(browser().post(srv.url("/v1/auth/signin")).json(&login)).await;
    assert_eq!(st, StatusCode::OK);
}
