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
use sprites_server::workers::hosts::beat;
use sprites_wire::api::{HostList, HostState, NewCheckpoint};
use sprites_wire::client;
use vmhost::cluster::{ClusterCa, Role};
use vmhost::remote::{Fleet, Floors, Member, Remote};
use vmhost::Verbs;

struct Served {
    local: Arc<vmhost::Host>,
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(ca: &ClusterCa, instance: &str, name: &str) -> Served {
    let local = Arc::new(vmhost::testing::host(instance).await);
    let acceptor = ca.issue(Role::Host, name).unwrap().acceptor().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let verbs: Arc<dyn Verbs> = local.clone();
    let serving = tokio::spawn(vmhost::remote::serve(listener, acceptor, verbs, async {
        let _ = stopped.await;
    }));
    Served {
        local,
        addr,
        stop: Some(stop),
        serving,
    }
}

/// An API server `api` over both hosts, on the database at `url`.
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
        host_timeout: Some(Duration::from_secs(2)),
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
    let _ = b.stop.take().unwrap().send(());
    (&mut b.serving).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
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
