//! The control plane of a cluster, for real: two hosts, each a real host
//! answered by `vmhost::remote::serve` on its own loopback port; two API
//! servers, each with its own fleet of them, on one PostgreSQL. Sprites
//! made through one server are placed on both hosts and reached through
//! the other; the heartbeat writes down each host's room and each
//! sprite's host, and a host that stops answering is shown silent.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use sprites_server::db::Db;
use sprites_server::workers::hosts::Heart;
use sprites_wire::api::{HostList, HostState, NewCheckpoint};
use sprites_wire::client;
use vmhost::cluster::{ClusterCa, Role};
use vmhost::remote::{Fleet, Floors, Member, Remote};
use vmhost::testing::Served;
use vmhost::{HostConfig, Verbs};

async fn serve(ca: &ClusterCa, instance: &str, name: &str) -> Served {
    vmhost::testing::serve(ca, vmhost::testing::host(instance).await, name).await
}

/// An API server `api` over both hosts, on the database at `url`.
/// How long a host may be silent in these tests before it is lost; the
/// hosts' leases are half of it.
const TIMEOUT: Duration = Duration::from_secs(6);

/// One beat of `fleet`'s heartbeat, as the server's own would beat.
async fn beat(db: &Db, fleet: &Arc<Fleet>, addresses: &HashMap<String, String>) {
    heart(db, fleet, addresses).beat().await
}

fn heart(db: &Db, fleet: &Arc<Fleet>, addresses: &HashMap<String, String>) -> Heart {
    Heart {
        db: db.clone(),
        fleet: fleet.clone(),
        addresses: addresses.clone(),
        timeout: TIMEOUT,
        since: std::time::Instant::now(),
    }
}

async fn api_server(
    ca: &ClusterCa,
    api: &str,
    hosts: &[(&str, &Served)],
    url: &str,
) -> (TestServer, Arc<Fleet>, HashMap<String, String>) {
    let me = ca.issue(Role::Server, api).unwrap();
    let mut members = Vec::new();
    let mut addresses = HashMap::new();
    for (name, served) in hosts {
        let remote = Remote::connect(name, &served.addr, &me).await.unwrap();
        members.push(Member {
            name: name.to_string(),
            verbs: Arc::new(remote),
        });
        addresses.insert(name.to_string(), served.addr.clone());
    }
    let fleet = Arc::new(Fleet::new(members, Floors::default()).await.unwrap());
    let settings = sprites_server::Settings {
        host_timeout: Some(TIMEOUT),
        ..Default::default()
    };
    let srv = common::start_over(fleet.clone(), hosts[0].1.local.clone(), url, settings).await;
    (srv, fleet, addresses)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_api_servers_share_hosts_on_one_postgresql() {
    let ca = ClusterCa::generate("test").unwrap();
    let a = serve(&ca, "t-cluster-a", "ha").await;
    let mut b = serve(&ca, "t-cluster-b", "hb").await;
    let url = common::postgres("t_cluster").await;
    let hosts = [("ha", &a), ("hb", &b)];
    let (one, fleet1, addresses) = api_server(&ca, "api1", &hosts, &url).await;
    let (two, fleet2, _) = api_server(&ca, "api2", &hosts, &url).await;
    let token = one.user("ops").await;

    // Made through one server, placed over both hosts.
    let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for name in &names {
        let (status, v) = one.create(&token, name.clone()).await;
        assert!(status.is_success(), "{status} {v}");
    }
    let (on_a, on_b) = (a.local.list().unwrap().len(), b.local.list().unwrap().len());
    assert_eq!(on_a + on_b, 6);
    assert!(on_a > 0 && on_b > 0, "placed {on_a} and {on_b}");

    // Reached through the other: a command, a checkpoint, the sprite.
    for name in &names {
        let out = two.run(name, &["hostname"]).await;
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name);
        let req = NewCheckpoint {
            comment: "from the other server".into(),
        };
        let (status, v) = two.send(&token, &client::checkpoint(name, &req)).await;
        assert!(status.is_success(), "{status} {v}");
        let listed = two.ok(&token, client::checkpoints(name)).await;
        assert!(listed.iter().any(|c| c.comment == "from the other server"));
        assert_eq!(two.ok(&token, client::sprite(name)).await.name, *name);
    }

    // Each server's heartbeat writes the hosts' room and the sprites'
    // hosts; either server answers with them.
    beat(&one.state.db, &fleet1, &addresses).await;
    beat(&two.state.db, &fleet2, &addresses).await;
    let hosts: HostList = two.ok(&token, client::hosts()).await;
    let by_name: HashMap<_, _> = hosts.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    assert_eq!(by_name.len(), 2);
    for (name, count, served) in [("ha", on_a, &a), ("hb", on_b, &b)] {
        let h = by_name[name];
        assert_eq!(h.state, HostState::Up, "{h:?}");
        assert_eq!(h.address, served.addr);
        assert_eq!(h.sprites, count as u64, "{h:?}");
        assert_eq!(h.running, count as u64, "{h:?}");
        assert!(
            h.cpus > 0 && h.memory_bytes > 0 && h.disk_free_bytes > 0,
            "{h:?}"
        );
        assert!(
            h.memory_promised_bytes > 0 && h.last_error.is_none(),
            "{h:?}"
        );
    }
    let someone = one.user("someone").await;
    assert_eq!(
        one.status(&someone, &client::hosts()).await,
        reqwest::StatusCode::FORBIDDEN
    );

    // hb stops answering: written down, and shown silent once the host
    // timeout has passed; its sprites stay where they are.
    b.stop().await;
    tokio::time::sleep(TIMEOUT + Duration::from_millis(100)).await;
    beat(&one.state.db, &fleet1, &addresses).await;
    let hosts: HostList = one.ok(&token, client::hosts()).await;
    let hb = hosts.hosts.iter().find(|h| h.name == "hb").unwrap();
    assert_eq!(hb.state, HostState::Silent, "{hb:?}");
    assert!(
        hb.last_error.as_deref().is_some_and(|e| e.contains("hb")),
        "{hb:?}"
    );
    assert_eq!(hb.sprites, on_b as u64);
    let ha = hosts.hosts.iter().find(|h| h.name == "ha").unwrap();
    assert_eq!(ha.state, HostState::Up, "{ha:?}");

    vmhost::testing::destroy_all(&*a.local).await;
    vmhost::testing::destroy_all(&*b.local).await;
}

/// Two machines of one cluster for moves: one instance and one bucket,
/// each its own pool (the second without a network of its own), busybox
/// their default image.
async fn movable_hosts(ca: &ClusterCa, test: &str) -> (Served, Served) {
    let (first, second) = movable_configs(test, None);
    vmhost::testing::fresh_data_dir(&second.data_dir).unwrap();
    let first = vmhost::testing::host_with(first).await;
    let second = vmhost::Host::open(second).await.unwrap();
    (
        vmhost::testing::serve(ca, first, "ma").await,
        vmhost::testing::serve(ca, second, "mb").await,
    )
}

/// The configurations of [`movable_hosts`], with a lease when given.
fn movable_configs(test: &str, lease: Option<Duration>) -> (HostConfig, HostConfig) {
    let bucket = common::test_bucket(test);
    let instance = format!("t-{test}");
    let mut first = vmhost::testing::config(&instance);
    first.bucket = Some(bucket.clone());
    first.default_image = "busybox".into();
    first.lease = lease;
    let mut second = vmhost::testing::config(&instance);
    second.data_dir = format!("{}-{test}", vmhost::testing::data_dir().display()).into();
    second.run_dir = format!("{}-{test}", vmhost::testing::run_dir().display()).into();
    second.pool_image_size = 8 << 30;
    second.egress = false;
    second.bucket = Some(bucket);
    second.default_image = "busybox".into();
    second.lease = lease;
    (first, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_moves_a_sprite_and_drains_a_host() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, b) = movable_hosts(&ca, "cluster-move").await;
    let url = common::postgres("t_cluster_move").await;
    let hosts = [("ma", &a), ("mb", &b)];
    let (one, fleet1, addresses) = api_server(&ca, "api1", &hosts, &url).await;
    let (two, fleet2, _) = api_server(&ca, "api2", &hosts, &url).await;
    // As a server does on its start: the image on every host, one image.
    let recipe = vmhost::image::Recipe::busybox();
    fleet1
        .prepare_image("busybox", &recipe, Box::new(|_: &str| {}))
        .await
        .unwrap();
    let admin = one.user("admin").await;
    let org = "admin";

    let names: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
    for name in &names {
        let (status, v) = one.create(&admin, name.clone()).await;
        assert!(status.is_success(), "{status} {v}");
        one.run(name, &["/bin/sh", "-c", &format!("echo {name} > /kept")])
            .await;
    }

    // One sprite moved by name, through the other server, to the other
    // host.
    let m0 = one.host_name("m0").await;
    let other = if fleet1.host_of(&m0) == Some("ma") {
        "mb"
    } else {
        "ma"
    };
    let req = sprites_wire::api::MoveSprite {
        to: Some(other.into()),
    };
    let moved = two.ok(&admin, client::move_sprite(org, "m0", &req)).await;
    assert_eq!((moved.host.as_str(), moved.name.as_str()), (other, "m0"));
    let out = one.run("m0", &["cat", "/kept"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "m0");
    assert_eq!(fleet1.host_of(&m0), Some(other));

    // ma drained through the first server: every sprite of it is on mb,
    // none left behind, none twice; ma takes no new sprite, on either
    // server, until it is opened again.
    let on_a = a.local.list().unwrap().len();
    let report = one.ok(&admin, client::drain_host("ma")).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.moved.len(), on_a);
    assert!(report
        .moved
        .iter()
        .all(|m| m.host == "mb" && m.organization == org));
    assert!(a.local.list().unwrap().is_empty());
    assert_eq!(b.local.list().unwrap().len(), names.len());
    for name in &names {
        let out = two.run(name, &["cat", "/kept"]).await;
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), *name);
    }
    beat(&two.state.db, &fleet2, &addresses).await;
    let listed: HostList = two.ok(&admin, client::hosts()).await;
    let ma = listed.hosts.iter().find(|h| h.name == "ma").unwrap();
    assert!(ma.cordoned && ma.sprites == 0, "{ma:?}");
    for i in 0..3 {
        let (status, v) = two.create(&admin, format!("late{i}")).await;
        assert!(status.is_success(), "{status} {v}");
    }
    assert!(
        a.local.list().unwrap().is_empty(),
        "a drained host took a sprite"
    );
    let opened = one.ok(&admin, client::open_host("ma")).await;
    assert!(!opened.cordoned);
    beat(&two.state.db, &fleet2, &addresses).await;
    let listed: HostList = two.ok(&admin, client::hosts()).await;
    assert!(listed.hosts.iter().all(|h| !h.cordoned), "{listed:?}");

    // On one machine there is nowhere to move to: said.
    let alone = common::start("t-cluster-alone", common::Backend::Sqlite).await;
    let token = alone.user("solo").await;
    let (status, v) = alone
        .send(&token, &client::move_sprite("solo", "x", &req))
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{v}");

    vmhost::testing::destroy_all(&*a.local).await;
    vmhost::testing::destroy_all(&*b.local).await;
}

/// A host cut off from the API servers, its sandboxes running on: it
/// freezes them within its lease; once the host timeout has passed, every
/// sprite of it answers again on the other host, from its last state in
/// the object store, and says so (also one whose take-over a server left
/// halfway); none is lost or doubled. Then its machine dies, and when it
/// comes back it runs none of them and lets them go.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_hosts_sprites_come_back_on_the_other_and_never_run_twice() {
    let ca = ClusterCa::generate("test").unwrap();
    let (first, second) = movable_configs("cluster-lost", Some(TIMEOUT / 2));
    vmhost::testing::fresh_data_dir(&second.data_dir).unwrap();
    let a = vmhost::testing::serve(&ca, vmhost::testing::host_with(first).await, "la").await;
    let host_b = vmhost::Host::open(second.clone()).await.unwrap();
    let mut b = vmhost::testing::serve(&ca, host_b, "lb").await;
    let url = common::postgres("t_cluster_lost").await;
    let hosts = [("la", &a), ("lb", &b)];
    let (one, fleet1, addresses) = api_server(&ca, "api1", &hosts, &url).await;
    let (two, fleet2, _) = api_server(&ca, "api2", &hosts, &url).await;
    // Both servers beat, as they do when they run.
    let hearts = [
        heart(&one.state.db, &fleet1, &addresses).spawn(),
        heart(&two.state.db, &fleet2, &addresses).spawn(),
    ];
    fleet1
        .prepare_image(
            "busybox",
            &vmhost::image::Recipe::busybox(),
            Box::new(|_: &str| {}),
        )
        .await
        .unwrap();
    let token = one.user("ops").await;

    // Sprites on lb, each with a file shipped and one written after.
    let names: Vec<String> = (0..3).map(|i| format!("l{i}")).collect();
    let mut on_b = Vec::new();
    for name in &names {
        let (status, v) = one.create(&token, name.clone()).await;
        assert!(status.is_success(), "{status} {v}");
        let host = one.host_name(name).await;
        if fleet1.host_of(&host) != Some("lb") {
            let to = sprites_wire::api::MoveSprite {
                to: Some("lb".into()),
            };
            one.ok(&token, client::move_sprite("ops", name, &to)).await;
        }
        one.run(name, &["/bin/sh", "-c", &format!("echo {name} > /kept")])
            .await;
        fleet1.replicate(&host, Duration::ZERO).await.unwrap();
        on_b.push(host);
    }

    // lb is cut off: its daemon answers no more, its sandboxes run on.
    // Each sprite's last shipped checkpoint is what it comes back from.
    b.stop().await;
    let mut last = Vec::new();
    for host in &on_b {
        let shipped = b.local.replication(host).unwrap().last_shipped;
        last.push(shipped.expect("shipped").to_string());
    }

    // One of them was claimed for la by a server that died before la
    // adopted it: a later beat finishes the take-over.
    sqlx::query(
        "UPDATE sprites SET machine = 'la', generation = generation + 1, \
         resumed_from_host = 'lb', claimed_at = $1 WHERE host_name = $2",
    )
    .bind(vmhost::now_ms() as i64 - 60_000)
    .bind(on_b[0].as_str())
    .execute(one.state.db.pool())
    .await
    .unwrap();

    // Back on la, through either server, once lb is lost.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for host in &on_b {
        while a.local.get(host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{host} never came back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // By then lb, held by no one for its lease, had frozen its copies.
    let left = b.local.list().unwrap();
    assert_eq!(left.len(), names.len());
    assert!(
        left.iter().all(|s| s.phase == vmhost::Phase::SleepingWarm),
        "a cut-off host runs on: {left:?}"
    );
    // Nor does it delete what is the other host's now.
    assert!(matches!(
        b.local.destroy(&on_b[1]).await,
        Err(vmhost::Error::Fenced(_))
    ));
    for ((name, host), last) in names.iter().zip(&on_b).zip(&last) {
        let woken = two.ok(&token, client::wake(name)).await;
        assert_eq!(woken.status, "running");
        let out = a.local.run(host, &["cat", "/kept"], b"").await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), name.as_str());
        let sprite = one.ok(&token, client::sprite(name)).await;
        let resumed = sprite.resumed.expect("where it came back from");
        assert_eq!(resumed.host, "lb");
        assert_eq!(resumed.checkpoint.as_ref(), Some(last), "{resumed:?}");
        assert!(resumed.shipped_at.is_some(), "{resumed:?}");
        // Still the same one sprite: checkpoints go on from where they were.
        let req = NewCheckpoint {
            comment: "after the failover".into(),
        };
        let (status, v) = one.send(&token, &client::checkpoint(name, &req)).await;
        assert!(status.is_success(), "{status} {v}");
    }
    assert!(b
        .local
        .list()
        .unwrap()
        .iter()
        .all(|s| s.phase == vmhost::Phase::SleepingWarm));

    // lb's machine dies, sandboxes and all, and comes back as a new
    // daemon on its old pool and address: it restarts none of them, and
    // lets each go.
    vmhost::testing::kill_sandboxes(&b.local).await;
    let addr = b.addr.clone();
    drop(b);
    let back = vmhost::Host::open(second).await.unwrap();
    let back = std::sync::Arc::new(back);
    vmhost::Host::spawn_lease_keeper(&back);
    let b = vmhost::testing::serve_at(&ca, back, "lb", &addr).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = b.local.list().unwrap();
        assert!(
            left.iter().all(|s| s.phase != vmhost::Phase::Running),
            "a returning host runs a sprite: {left:?}"
        );
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lb keeps {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every sprite once, on la, answering.
    let listed = two.ok(&token, client::sprites(None)).await;
    assert_eq!(listed.sprites.len(), names.len());
    for host in &on_b {
        assert_eq!(fleet2.host_of(host), Some("la"));
        let out = a.local.run(host, &["cat", "/kept"], b"").await.unwrap();
        assert_eq!(out.code, 0);
    }

    for heart in hearts {
        heart.abort();
    }
    vmhost::testing::destroy_all(&*a.local).await;
}
