//! Team organizations: members see the organization's sprites, roles limit
//! who manages members, the last owner stays, and a removed member's token
//! stops working there. Through the typed client (`sprites_wire::client`).

mod common;

use common::start_as;
use reqwest::StatusCode;
use sprites_wire::api::CreateSprite;
use sprites_wire::client;
use sprites_wire::orgs::{Member, NewOrganization, NewToken};

fn team(slug: &str, name: &str) -> NewOrganization {
    NewOrganization {
        slug: slug.into(),
        name: name.into(),
        class: false,
    }
}

fn member(handle: &str, role: &str) -> Member {
    Member {
        handle: handle.into(),
        role: role.into(),
    }
}

/// A token of its holder acting in `org`.
fn token_in(org: &str) -> NewToken {
    NewToken {
        name: org.into(),
        organization: Some(org.into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn members_share_sprites_and_roles_limit_management() {
    let (srv, [alice, bob, carol]) = start_as("t-orgs", ["alice", "bob", "carol"]).await;

    let made = client::create_organization(&team("team", "The Team"));
    let (st, v) = srv.send(&alice, &made).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["role"], "owner");
    let again = client::create_organization(&team("team", "Again"));
    assert_eq!(srv.status(&bob, &again).await, StatusCode::CONFLICT);
    let bad = client::create_organization(&team("Bad Slug", "x"));
    assert_eq!(srv.status(&bob, &bad).await, StatusCode::BAD_REQUEST);

    // Alice adds bob as a member; a token in the team lets alice make a team sprite.
    let add_bob = client::set_member("team", &member("bob", "member"));
    let (st, v) = srv.send(&alice, &add_bob).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let alice_team = srv
        .ok(&alice, client::create_token(&token_in("team")))
        .await;
    let shared = client::create_sprite(&CreateSprite::named("shared"));
    let (st, v) = srv.send(&alice_team.token, &shared).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["organization"], "team");

    // Bob, a member, sees it through a token of his in the team.
    let (st, v) = srv
        .send(&bob, &client::create_token(&token_in("team")))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let bob_team = v["token"].as_str().unwrap().to_string();
    let (st, v) = srv.send(&bob_team, &client::sprite("shared")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Carol, not a member, can neither see the team nor mint a token in it.
    let members = client::members("team");
    assert_eq!(srv.status(&carol, &members).await, StatusCode::NOT_FOUND);
    let mint = client::create_token(&token_in("team"));
    assert_eq!(srv.status(&carol, &mint).await, StatusCode::NOT_FOUND);

    // A member cannot manage members; an admin cannot touch owners.
    let add_carol = client::set_member("team", &member("carol", "member"));
    assert_eq!(srv.status(&bob, &add_carol).await, StatusCode::FORBIDDEN);
    let bob_admin = client::set_member("team", &member("bob", "admin"));
    srv.send(&alice, &bob_admin).await;
    let st = srv.status(&bob, &add_carol).await;
    assert_eq!(st, StatusCode::OK, "an admin adds members");
    let carol_owner = client::set_member("team", &member("carol", "owner"));
    assert_eq!(srv.status(&bob, &carol_owner).await, StatusCode::FORBIDDEN);
    let remove_alice = client::remove_member("team", "alice");
    assert_eq!(srv.status(&bob, &remove_alice).await, StatusCode::FORBIDDEN);
    let boss = client::set_member("team", &member("carol", "boss"));
    assert_eq!(srv.status(&alice, &boss).await, StatusCode::BAD_REQUEST);

    // The last owner stays.
    assert_eq!(
        srv.status(&alice, &remove_alice).await,
        StatusCode::CONFLICT
    );
    let alice_member = client::set_member("team", &member("alice", "member"));
    assert_eq!(
        srv.status(&alice, &alice_member).await,
        StatusCode::CONFLICT
    );
    assert_eq!(srv.ok(&alice, members).await.members.len(), 3);

    // Removed, bob's team token no longer reaches the team's sprites.
    let remove_bob = client::remove_member("team", "bob");
    assert_eq!(
        srv.status(&alice, &remove_bob).await,
        StatusCode::NO_CONTENT
    );
    let st = srv.status(&bob_team, &client::sprite("shared")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let orgs = srv.ok(&bob, client::organizations()).await.organizations;
    let slugs: Vec<&str> = orgs.iter().map(|o| o.slug.as_str()).collect();
    assert_eq!(slugs, ["bob"]);
    // A personal organization has one member.
    let personal = client::set_member("alice", &member("carol", "member"));
    assert_eq!(srv.status(&alice, &personal).await, StatusCode::CONFLICT);
}
