//! The checked-in OpenAPI document and the router must name the same
//! routes: a route without documentation, or documentation without a route,
//! fails here.

use std::collections::BTreeSet;

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../openapi.json")).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = sprites_server::http::routes::table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from server/openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[test]
fn every_reference_resolves() {
    let text = include_str!("../openapi.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    for r in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref to {name}"
        );
    }
}

/// The property names of schema `name` in the document, through `allOf`
/// and `$ref`.
fn documented_properties(doc: &serde_json::Value, name: &str) -> BTreeSet<String> {
    let schema = &doc["components"]["schemas"][name];
    assert!(
        schema.is_object(),
        "no schema {name} in server/openapi.json"
    );
    let mut out = BTreeSet::new();
    collect_properties(doc, schema, &mut out);
    out
}

fn collect_properties(doc: &serde_json::Value, s: &serde_json::Value, out: &mut BTreeSet<String>) {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return collect_properties(doc, &doc["components"]["schemas"][name], out);
    }
    for part in s["allOf"].as_array().into_iter().flatten() {
        collect_properties(doc, part, out);
    }
    if let Some(props) = s["properties"].as_object() {
        out.extend(props.keys().cloned());
    }
}

/// The property names of a wire type, as serde writes and reads them.
fn type_properties<T: sprites_wire::schemars::JsonSchema>() -> BTreeSet<String> {
    let schema = sprites_wire::schemars::schema_for!(T);
    schema
        .as_value()
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Each documented body is the wire type the server, the web app, the CLI
/// and the tests use: the same property names, none missing on either side.
#[test]
fn every_documented_body_is_its_wire_type() {
    use sprites_wire::{accounts, api, classes, fs, orgs, policy, ports, services};
    let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    let pairs: Vec<(&str, BTreeSet<String>)> = vec![
        ("Assignment", type_properties::<classes::Assignment>()),
        ("NetworkPolicy", type_properties::<policy::NetworkPolicy>()),
        (
            "ResourcesPolicy",
            type_properties::<policy::ResourcesPolicy>(),
        ),
        ("MemoryPolicy", type_properties::<policy::MemoryPolicy>()),
        (
            "PrivilegesPolicy",
            type_properties::<policy::PrivilegesPolicy>(),
        ),
        ("OrgCounts", type_properties::<api::OrgCounts>()),
        ("Port", type_properties::<ports::Port>()),
        ("SpriteStateLine", type_properties::<api::SpriteStateLine>()),
        ("PolicyRule", type_properties::<policy::PolicyRule>()),
        (
            "AssignmentList",
            type_properties::<classes::AssignmentList>(),
        ),
        (
            "AssignmentSprite",
            type_properties::<classes::SpriteState>(),
        ),
        ("AssignmentStart", type_properties::<classes::Started>()),
        ("Checkpoint", type_properties::<api::Checkpoint>()),
        ("Chmod", type_properties::<fs::Chmod>()),
        ("Chown", type_properties::<fs::Chown>()),
        ("ClassLimits", type_properties::<orgs::Limits>()),
        ("Collect", type_properties::<classes::Collect>()),
        ("Collection", type_properties::<classes::Collection>()),
        (
            "CollectionList",
            type_properties::<classes::CollectionList>(),
        ),
        ("CreateSprite", type_properties::<api::CreateSprite>()),
        ("Diff", type_properties::<api::CheckpointDiff>()),
        ("Error", type_properties::<api::ErrorBody>()),
        ("FileEntry", type_properties::<fs::FileEntry>()),
        ("Fork", type_properties::<api::Fork>()),
        ("Invitation", type_properties::<accounts::Invitation>()),
        (
            "InvitationCheck",
            type_properties::<accounts::InvitationCheck>(),
        ),
        (
            "InvitationList",
            type_properties::<accounts::InvitationList>(),
        ),
        ("Join", type_properties::<orgs::Join>()),
        ("JoinCode", type_properties::<orgs::JoinCode>()),
        ("KeepAwake", type_properties::<api::KeepAwake>()),
        ("Kill", type_properties::<api::KillSession>()),
        ("Listing", type_properties::<fs::Listing>()),
        ("Member", type_properties::<orgs::Member>()),
        ("MemberList", type_properties::<orgs::MemberList>()),
        ("Mkdir", type_properties::<fs::Mkdir>()),
        ("Move", type_properties::<fs::Move>()),
        ("NewAssignment", type_properties::<classes::NewAssignment>()),
        ("NewCheckpoint", type_properties::<api::NewCheckpoint>()),
        (
            "NewInvitation",
            type_properties::<accounts::NewInvitation>(),
        ),
        ("NewKeepAwake", type_properties::<api::NewKeepAwake>()),
        ("NewOrg", type_properties::<orgs::NewOrganization>()),
        (
            "NewSpriteMember",
            type_properties::<classes::NewSpriteMember>(),
        ),
        ("NewToken", type_properties::<orgs::NewToken>()),
        ("NewTokenAnswer", type_properties::<orgs::MintedToken>()),
        ("Organization", type_properties::<orgs::Organization>()),
        ("OrgList", type_properties::<orgs::OrganizationList>()),
        ("Profile", type_properties::<orgs::Profile>()),
        ("Replication", type_properties::<api::Replication>()),
        ("Restarted", type_properties::<api::Restarted>()),
        ("Upgraded", type_properties::<api::Upgraded>()),
        ("Reset", type_properties::<classes::ResetDone>()),
        ("ResetStudent", type_properties::<classes::Reset>()),
        ("SaveTemplate", type_properties::<api::SaveTemplate>()),
        ("Service", type_properties::<services::Service>()),
        (
            "ServiceRequest",
            type_properties::<services::ServiceRequest>(),
        ),
        (
            "ServiceSignal",
            type_properties::<services::ServiceSignal>(),
        ),
        ("ServiceState", type_properties::<services::ServiceState>()),
        ("SessionList", type_properties::<api::ExecSessionList>()),
        ("SignIn", type_properties::<accounts::SignIn>()),
        ("SignUp", type_properties::<accounts::SignUp>()),
        ("Sleep", type_properties::<api::SleepRequest>()),
        ("SleepSettings", type_properties::<api::SleepSettings>()),
        ("Sprite", type_properties::<api::Sprite>()),
        ("SpriteCheck", type_properties::<api::SpriteCheck>()),
        ("SpriteEvent", type_properties::<api::SpriteEvent>()),
        ("SpriteList", type_properties::<api::SpriteList>()),
        ("SpriteMembers", type_properties::<classes::SpriteMembers>()),
        ("SpriteUsage", type_properties::<api::SpriteUsage>()),
        ("SwitchOrg", type_properties::<orgs::SwitchOrganization>()),
        ("Template", type_properties::<api::Template>()),
        ("TemplateList", type_properties::<api::TemplateList>()),
        ("TokenList", type_properties::<orgs::TokenList>()),
        ("UpdateSprite", type_properties::<api::UpdateSprite>()),
        ("UrlSettings", type_properties::<api::UrlSettings>()),
        ("UsageReport", type_properties::<api::UsageReport>()),
        ("UserList", type_properties::<accounts::UserList>()),
        ("HostList", type_properties::<api::HostList>()),
        ("ClusterHost", type_properties::<api::ClusterHost>()),
        ("MoveSprite", type_properties::<api::MoveSprite>()),
        ("SpriteMoved", type_properties::<api::SpriteMoved>()),
        ("NotMoved", type_properties::<api::NotMoved>()),
        ("DrainReport", type_properties::<api::DrainReport>()),
        ("UserSummary", type_properties::<accounts::UserSummary>()),
    ];
    let mut drift = Vec::new();
    for (name, typed) in pairs {
        let documented = documented_properties(&doc, name);
        if documented != typed {
            let only_doc: Vec<_> = documented.difference(&typed).collect();
            let only_type: Vec<_> = typed.difference(&documented).collect();
            drift.push(format!(
                "{name}: only documented {only_doc:?}, only in the type {only_type:?}"
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "server/openapi.json drifted from the wire types:\n{}",
        drift.join("\n")
    );
}

/// Every call of the typed client is a documented route.
#[test]
fn every_client_path_is_a_documented_route() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let source = include_str!("../../wire/src/client.rs");
    let module = &source[source.find("pub mod path {").unwrap()..];
    let module = &module[..module.find("\n}\n").unwrap()];
    let templates: Vec<&str> = module
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|t| t.starts_with('/'))
        .collect();
    assert!(
        templates.len() > 40,
        "the path module reads as {templates:?}"
    );
    for t in templates {
        assert!(paths.contains_key(t), "{t} is not in server/openapi.json");
    }
}
