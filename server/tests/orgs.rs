//! Team organizations: members see the organization's sprites, roles limit
//! who manages members, the last owner stays, and a removed member's token
//! stops working there.

mod common;

use common::{start, Backend};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn members_share_sprites_and_roles_limit_management() {
    let srv = start("t-orgs", Backend::Sqlite).await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;

    let (st, v) = srv
        .post(
            &alice,
            "/v1/organizations",
            json!({"slug": "team", "name": "The Team"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["role"], "owner");
    let (st, _) = srv
        .post(
            &bob,
            "/v1/organizations",
            json!({"slug": "team", "name": "Again"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = srv
        .post(
            &bob,
            "/v1/organizations",
            json!({"slug": "Bad Slug", "name": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Alice adds bob as a member; a token in the team lets alice make a team sprite.
    let (st, v) = srv
        .post(
            &alice,
            "/v1/organizations/team/members",
            json!({"handle": "bob"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = srv
        .post(
            &alice,
            "/v1/tokens",
            json!({"name": "team", "organization": "team"}),
        )
        .await;
    let alice_team = v["token"].as_str().unwrap().to_string();
    let (st, v) = srv
        .post(&alice_team, "/v1/sprites", json!({"name": "shared"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["organization"], "team");

    // Bob, a member, sees it through a token of his in the team.
    let (st, v) = srv
        .post(
            &bob,
            "/v1/tokens",
            json!({"name": "team", "organization": "team"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let bob_team = v["token"].as_str().unwrap().to_string();
    let (st, v) = srv.get(&bob_team, "/v1/sprites/shared").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Carol, not a member, can neither see the team nor mint a token in it.
    let (st, _) = srv.get(&carol, "/v1/organizations/team/members").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = srv
        .post(
            &carol,
            "/v1/tokens",
            json!({"name": "x", "organization": "team"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A member cannot manage members; an admin cannot touch owners.
    let (st, _) = srv
        .post(
            &bob,
            "/v1/organizations/team/members",
            json!({"handle": "carol"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    srv.post(
        &alice,
        "/v1/organizations/team/members",
        json!({"handle": "bob", "role": "admin"}),
    )
    .await;
    let (st, _) = srv
        .post(
            &bob,
            "/v1/organizations/team/members",
            json!({"handle": "carol"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "an admin adds members");
    let (st, _) = srv
        .post(
            &bob,
            "/v1/organizations/team/members",
            json!({"handle": "carol", "role": "owner"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = srv
        .delete(&bob, "/v1/organizations/team/members/alice")
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = srv
        .post(
            &alice,
            "/v1/organizations/team/members",
            json!({"handle": "carol", "role": "boss"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // The last owner stays.
    let (st, _) = srv
        .delete(&alice, "/v1/organizations/team/members/alice")
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = srv
        .post(
            &alice,
            "/v1/organizations/team/members",
            json!({"handle": "alice", "role": "member"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, v) = srv.get(&alice, "/v1/organizations/team/members").await;
    assert_eq!(v["members"].as_array().unwrap().len(), 3);

    // Removed, bob's team token no longer reaches the team's sprites.
    let (st, _) = srv
        .delete(&alice, "/v1/organizations/team/members/bob")
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = srv.get(&bob_team, "/v1/sprites/shared").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (_, v) = srv.get(&bob, "/v1/organizations").await;
    let slugs: Vec<&str> = v["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["bob"]);
    // A personal organization has one member.
    let (st, _) = srv
        .post(
            &alice,
            "/v1/organizations/alice/members",
            json!({"handle": "carol"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    srv.cleanup().await;
}
