//! Several hosts as one: two real hosts, each answered by
//! `vmhost::remote::serve` on its own loopback port, and a
//! `vmhost::remote::Fleet` over them as an API server holds it. New
//! sprites spread over the hosts by their room; every verb about a sprite
//! reaches the host that keeps it, also from a second fleet (another API
//! server) that did not make it; a host that does not answer is never
//! chosen, and its sprites are never said to be gone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::name;
use vmhost::cluster::{ClusterCa, Role};
use vmhost::remote::{Fleet, Floors, Member, Remote};
use vmhost::testing::Served;
use vmhost::{Error, HostEvent, Phase, SpriteName, Verbs};

/// The host of instance `instance` served as `host`.
async fn serve(ca: &ClusterCa, instance: &str, host: &str) -> Served {
    vmhost::testing::serve(ca, common::host(instance).await, host).await
}

/// A fleet of the hosts `hosts` (name, served), as API server `api` of `ca`.
async fn fleet(ca: &ClusterCa, api: &str, hosts: &[(&str, &Served)], floors: Floors) -> Fleet {
    let me = ca.issue(Role::Server, api).unwrap();
    let mut members = Vec::new();
    for (host, served) in hosts {
        let remote = Remote::connect(host, &served.addr, &me).await.unwrap();
        members.push(Member {
            name: host.to_string(),
            verbs: Arc::new(remote),
        });
    }
    Fleet::new(members, floors).await.unwrap()
}

async fn hostname(fleet: &Fleet, s: &SpriteName) -> String {
    let out = fleet.run(s, &["hostname"], b"").await.unwrap();
    assert_eq!(out.code, 0);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn names(host: &vmhost::Host) -> Vec<String> {
    let mut names: Vec<_> = host.list().unwrap().into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

async fn event(rx: &mut tokio::sync::broadcast::Receiver<HostEvent>, s: &SpriteName, phase: Phase) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.expect("events");
            if &e.sprite == s && e.phase == phase {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{s} {phase:?} told in time"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sprites_spread_over_hosts_and_are_reached_where_they_live() {
    let ca = ClusterCa::generate("test").unwrap();
    let a = serve(&ca, "t-fleet-a", "ha").await;
    let b = serve(&ca, "t-fleet-b", "hb").await;
    let api1 = fleet(&ca, "api1", &[("ha", &a), ("hb", &b)], Floors::default()).await;
    let mut events = api1.subscribe();

    // Four sprites, by room: each new one promises memory, so they spread.
    let made: Vec<_> = ["fl-1", "fl-2", "fl-3", "fl-4"].map(name).into();
    for s in &made {
        api1.create(s, Default::default()).await.unwrap();
    }
    let (on_a, on_b) = (names(&a.local), names(&b.local));
    assert_eq!(on_a.len() + on_b.len(), 4, "{on_a:?} {on_b:?}");
    assert!(!on_a.is_empty() && !on_b.is_empty(), "{on_a:?} {on_b:?}");
    for s in &made {
        let host = api1.host_of(s).unwrap();
        let listed = if host == "ha" { &on_a } else { &on_b };
        assert!(listed.contains(&s.to_string()), "{s} said to be on {host}");
        assert_eq!(hostname(&api1, s).await, s.to_string());
    }
    let mut listed: Vec<_> = api1
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    listed.sort();
    assert_eq!(listed, ["fl-1", "fl-2", "fl-3", "fl-4"]);
    assert!(matches!(
        api1.create(&made[0], Default::default()).await,
        Err(Error::AlreadyExists(_))
    ));
    let all = api1.capacity().await.unwrap();
    assert_eq!(all.running, 4);
    assert_eq!(
        all.cpus,
        2 * a.local.capacity().await.unwrap().cpus,
        "the room of both"
    );

    // Events of both hosts arrive as one stream.
    for s in &made {
        api1.sleep_warm(s).await.unwrap();
        event(&mut events, s, Phase::SleepingWarm).await;
    }

    // Another API server reaches sprites it did not make, and learns of
    // sprites made after it started, on whichever host.
    let api2 = fleet(&ca, "api2", &[("ha", &a), ("hb", &b)], Floors::default()).await;
    assert_eq!(api2.host_of(&made[1]), api1.host_of(&made[1]));
    let late = name("fl-late");
    api1.create(&late, Default::default()).await.unwrap();
    assert_eq!(hostname(&api2, &late).await, "fl-late");
    assert_eq!(api2.host_of(&late), api1.host_of(&late));

    // A fork stays on its source's host; a destroyed sprite is gone from
    // both servers' view.
    let copy = name("fl-copy");
    api2.fork_named(&late, None, &copy, &copy).await.unwrap();
    assert_eq!(api2.host_of(&copy), api1.host_of(&late));
    assert_eq!(api1.phase(&copy).await.unwrap(), Phase::Running);
    api1.destroy(&copy).await.unwrap();
    assert!(matches!(api2.get(&copy).await, Err(Error::NotFound(_))));
    assert!(matches!(api1.get(&copy).await, Err(Error::NotFound(_))));

    vmhost::testing::destroy_all(&api1).await;
    assert!(a.local.list().unwrap().is_empty() && b.local.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_is_full_or_silent_takes_nothing_and_loses_nothing() {
    let ca = ClusterCa::generate("test").unwrap();
    let a = serve(&ca, "t-fleet-c", "hc").await;
    let mut b = serve(&ca, "t-fleet-d", "hd").await;

    // Floors no host meets: nothing is placed, and the answer says why,
    // host by host.
    let room = a.local.capacity().await.unwrap();
    let high = Floors {
        disk_free_bytes: room.disk_bytes + 1,
        ..Floors::default()
    };
    let cramped = fleet(&ca, "api1", &[("hc", &a), ("hd", &b)], high).await;
    let s = name("fl-none");
    match cramped.create(&s, Default::default()).await {
        Err(Error::NoRoom(why)) => {
            assert!(why.contains("hc: ") && why.contains("hd: "), "{why}");
            assert!(why.contains("MiB of disk free"), "{why}");
        }
        other => panic!("placed on a full host: {other:?}"),
    }
    assert!(a.local.list().unwrap().is_empty() && b.local.list().unwrap().is_empty());

    let api = fleet(&ca, "api2", &[("hc", &a), ("hd", &b)], Floors::default()).await;
    let mut theirs = Vec::new();
    for i in 0..6 {
        let s = name(&format!("fl-d{i}"));
        api.create(&s, Default::default()).await.unwrap();
        if api.host_of(&s) == Some("hd") {
            theirs.push(s);
        }
    }
    assert!(!theirs.is_empty(), "both hosts take sprites");

    // hd goes silent: new sprites go to hc; hd's sprites, and names
    // nobody knows, are not said to be gone (hd may keep them).
    b.stop().await;
    for i in 0..3 {
        let s = name(&format!("fl-c{i}"));
        api.create(&s, Default::default()).await.unwrap();
        assert_eq!(api.host_of(&s), Some("hc"));
    }
    assert!(matches!(api.get(&theirs[0]).await, Err(Error::Fault(_))));
    assert!(matches!(
        api.get(&name("fl-unknown")).await,
        Err(Error::Fault(_))
    ));
    assert!(matches!(api.list().await, Err(Error::Fault(_))));
    let kept = b.local.list().unwrap().len();
    assert_eq!(kept, theirs.len());

    vmhost::testing::destroy_all(&*a.local).await;
    vmhost::testing::destroy_all(&*b.local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_moves_between_hosts_through_the_object_store() {
    use common::replica::{bucket, busybox, first_host, second_host};
    let bucket = bucket("fleet-move");
    let ca = ClusterCa::generate("test").unwrap();
    // Two machines of one cluster: one instance, one bucket, own pools.
    let a = vmhost::testing::serve(&ca, first_host("t-fleet-move", &bucket).await, "ma").await;
    let second = second_host("fleet-move", "t-fleet-move", bucket.clone()).await;
    let b = vmhost::testing::serve(&ca, second, "mb").await;
    let hosts = [("ma", &a), ("mb", &b)];
    let api1 = fleet(&ca, "api1", &hosts, Floors::default()).await;
    let api2 = fleet(&ca, "api2", &hosts, Floors::default()).await;

    // Only ma has the image: the sprite is made there.
    let s = name("mover");
    api1.create(&s, busybox()).await.unwrap();
    assert_eq!(api1.host_of(&s), Some("ma"));
    let sh = |script: &'static str| {
        let (api, s) = (&api1, &s);
        async move {
            let out = api.run(s, &["/bin/sh", "-c", script], b"").await.unwrap();
            assert_eq!(out.code, 0, "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    sh("echo before > /kept").await;
    let before = api1.checkpoint(&s, "before the move").await.unwrap();
    sh("dd if=/dev/urandom of=/blob bs=1M count=16 2>/dev/null; echo after > /later").await;
    assert_eq!(api2.host_of(&s), Some("ma"));

    // Moved while running: it runs on mb, with its files and checkpoints;
    // ma keeps nothing of it.
    let moved = api1.move_sprite(&s, Some("mb")).await.unwrap();
    assert_eq!(moved.host, "mb");
    eprintln!("moved in {} ms of downtime", moved.downtime_ms);
    assert_eq!(api1.host_of(&s), Some("mb"));
    assert!(a.local.list().unwrap().is_empty());
    assert_eq!(b.local.list().unwrap().len(), 1);
    assert_eq!(api1.phase(&s).await.unwrap(), Phase::Running);
    assert_eq!(
        sh("cat /kept /later; stat -c %s /blob").await,
        "before\nafter\n16777216"
    );
    let kept: Vec<_> = api1.checkpoints(&s).await.unwrap();
    assert!(kept
        .iter()
        .any(|c| c.id == before.id && c.comment == "before the move"));

    // Another API server, which knew it on ma, finds it on mb.
    let out = api2.run(&s, &["cat", "/kept"], b"").await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "before");
    assert_eq!(api2.host_of(&s), Some("mb"));

    // Asleep, it arrives asleep; by room, it goes to the other host.
    sh("echo again > /kept").await;
    api1.sleep_warm(&s).await.unwrap();
    let back = api1.move_sprite(&s, None).await.unwrap();
    assert_eq!(back.host, "ma");
    assert_eq!(api1.phase(&s).await.unwrap(), Phase::SleepingCold);
    api1.wake(&s).await.unwrap();
    assert_eq!(sh("cat /kept").await, "again");
    assert!(b.local.list().unwrap().is_empty());

    // Mid-move, neither end brings it back, so it never runs on both: the
    // host handing it over refuses to wake it, as does the host that
    // adopted it until it has arrived; adopting again is the same
    // adoption; a move given up keeps it where it was, whole.
    let (here, there) = (&a.local, &b.local);
    here.sleep_cold(&s).await.unwrap();
    here.hand_over(&s).await.unwrap();
    assert!(matches!(here.wake(&s).await, Err(Error::Moving(_))));
    there.adopt(&s).await.unwrap();
    there.adopt(&s).await.unwrap();
    assert!(matches!(there.wake(&s).await, Err(Error::Moving(_))));
    there.release(&s).await.unwrap();
    here.stay(&s).await.unwrap();
    here.wake(&s).await.unwrap();
    assert_eq!(sh("cat /kept").await, "again");
    assert!(there.list().unwrap().is_empty());

    // Nowhere to go: said.
    for (to, why) in [("ma", "already"), ("mz", "no host mz")] {
        match api1.move_sprite(&s, Some(to)).await {
            Err(Error::Invalid(e)) => assert!(e.contains(why), "{e}"),
            other => panic!("moved to {to}: {other:?}"),
        }
    }
    api1.destroy(&s).await.unwrap();
}
