//! A host reached over the network: `vmhost::remote::serve` answers the
//! verbs of a real host over mutual TLS on loopback, and
//! `vmhost::remote::Remote` asks them as an API server would, through the
//! same `Verbs` trait: each verb says over the network what it says in
//! process, streams (sessions, connections, the management socket, file
//! watches, events) included, and only the cluster's API servers get in.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{cleanup, host, name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vmhost::cluster::{ClusterCa, Role};
use vmhost::remote::Remote;
use vmhost::{Chunk, Error, ExecSpec, FsChange, HostEvent, Phase, SpriteName, Verbs};

/// `host` served as host `h1` on a loopback port; the authority, and the
/// port.
async fn served(host: vmhost::Host) -> (Arc<vmhost::Host>, ClusterCa, std::net::SocketAddr) {
    let ca = ClusterCa::generate("test").unwrap();
    let me = ca.issue(Role::Host, "h1").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let host = Arc::new(host);
    let verbs: Arc<dyn Verbs> = host.clone();
    let forever = std::future::pending();
    tokio::spawn(vmhost::remote::serve(
        listener,
        me.acceptor().unwrap(),
        verbs,
        forever,
    ));
    (host, ca, addr)
}

async fn remote(ca: &ClusterCa, addr: std::net::SocketAddr) -> Remote {
    let api = ca.issue(Role::Server, "api1").unwrap();
    Remote::connect("h1", &addr.to_string(), &api)
        .await
        .unwrap()
}

async fn sh(host: &dyn Verbs, s: &SpriteName, script: &str) -> String {
    let out = host.run(s, &["/bin/sh", "-c", script], b"").await.unwrap();
    assert_eq!(
        out.code,
        0,
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The next event of `rx` about `s` that `want` takes, within 10 s.
async fn event(
    rx: &mut tokio::sync::broadcast::Receiver<HostEvent>,
    want: impl Fn(&HostEvent) -> bool,
) -> HostEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(e) if want(&e) => return e,
                Ok(_) => continue,
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("the event in time")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprites_life_on_a_host_across_the_network() {
    let (local, ca, addr) = served(host("t-remote").await).await;
    let far = remote(&ca, addr).await;
    assert_eq!(far.runtime_name(), local.runtime_name());
    assert_eq!(far.replicates(), local.replicates());
    // Every phase is told, also one reached before the event stream stood.
    let mut events = far.subscribe();

    let s = name("far");
    let made = far.create(&s, Default::default()).await.unwrap();
    assert_eq!(made.phase, Phase::Running);
    assert!(matches!(
        far.create(&s, Default::default()).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        far.get(&name("nobody")).await,
        Err(Error::NotFound(_))
    ));
    let listed = far.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, s.as_str());
    // Its room, as a control plane places by it.
    let room = far.capacity().await.unwrap();
    assert_eq!((room.running, room.sleeping), (1, 0));
    assert!(room.cpus >= 1 && room.memory_available_bytes <= room.memory_bytes);
    assert!(room.disk_free_bytes > 0 && room.disk_free_bytes < room.disk_bytes);
    assert_eq!(room.memory_promised_bytes, made.limits.memory_bytes);
    event(&mut events, |e| e.sprite == s && e.phase == Phase::Running).await;

    // Calls one after another reuse a connection; the answers are the
    // host's own.
    assert_eq!(sh(&far, &s, "echo hi > /root/f && cat /root/f").await, "hi");
    let first = far.checkpoint(&s, "first").await.unwrap();
    sh(&far, &s, "echo changed > /root/f").await;
    // The state before is kept as a checkpoint of its own.
    let (_, before) = far.restore(&s, first.id).await.unwrap();
    assert_ne!(before.id, first.id);
    assert_eq!(sh(&far, &s, "cat /root/f").await, "hi");
    assert_eq!(
        far.checkpoints(&s).await.unwrap().len(),
        local.checkpoints(&s).unwrap().len()
    );

    assert_eq!(far.sleep_warm(&s).await.unwrap(), Phase::SleepingWarm);
    let room = far.capacity().await.unwrap();
    assert_eq!(
        (room.running, room.sleeping, room.memory_promised_bytes),
        (0, 1, 0)
    );
    event(&mut events, |e| {
        e.sprite == s && e.phase == Phase::SleepingWarm
    })
    .await;
    assert_eq!(far.wake(&s).await.unwrap(), Phase::Running);

    far.destroy(&s).await.unwrap();
    assert!(matches!(far.get(&s).await, Err(Error::NotFound(_))));
    cleanup(&local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_connections_and_watches_stream_across_the_network() {
    let (local, ca, addr) = served(host("t-remote-streams").await).await;
    let far = remote(&ca, addr).await;
    let s = name("streams");
    far.create(&s, Default::default()).await.unwrap();

    // A session: stdin up, output and the exit down.
    let spec = ExecSpec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "read line; echo got $line; exit 7".into(),
        ],
        ..Default::default()
    };
    let mut session = far.exec(&s, spec).await.unwrap();
    assert!(session.pid > 0);
    session.input.stdin(b"across\n").await.unwrap();
    let (mut out, mut code) = (Vec::new(), None);
    while let Some(chunk) = session.output.next().await.unwrap() {
        match chunk {
            Chunk::Stdout(data) => out.extend(data),
            Chunk::Stderr(_) => {}
            Chunk::Exit(c) => code = Some(c),
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), "got across\n");
    assert_eq!(code, Some(7));

    // A session that goes on detached, attached to again with its output.
    let spec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "echo early; sleep 600".into()],
        detachable: true,
        ..Default::default()
    };
    let detached = far.exec(&s, spec).await.unwrap();
    let id = detached.session;
    drop(detached);
    let sessions = far.sessions(&s).await.unwrap();
    assert!(sessions.iter().any(|i| i.id == id), "{sessions:?}");
    let mut again = far.attach(&s, id, true).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), again.output.next()).await {
        Ok(Ok(Some(Chunk::Stdout(data)))) => assert_eq!(data, b"early\n"),
        other => panic!("replayed output: {other:?}"),
    }
    far.kill_session(&s, id, 9).await.unwrap();

    // A connection to a server inside.
    assert!(matches!(
        far.connect(&s, "localhost", 8080).await,
        Err(Error::PortClosed(8080))
    ));
    let spec = ExecSpec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "cd /srv && echo hello from inside > index.html && exec python3 -m http.server 8080"
                .into(),
        ],
        detachable: true,
        ..Default::default()
    };
    drop(far.exec(&s, spec).await.unwrap());
    let mut page = String::new();
    for _ in 0..100 {
        if let Ok(mut conn) = far.connect(&s, "localhost", 8080).await {
            conn.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            conn.read_to_string(&mut page).await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(page.contains("hello from inside"), "{page}");

    // File changes.
    sh(&far, &s, "mkdir -p /root/w").await;
    let mut watch = far.watch(&s, &["/root/w".into()], true).await.unwrap();
    sh(&far, &s, "echo x > /root/w/new").await;
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = watch.next().await.expect("the stream goes on").unwrap();
            if e.path == "/root/w/new" && e.change == FsChange::Create {
                return e;
            }
        }
    })
    .await
    .expect("the change in time");
    assert!(!seen.is_dir);

    cleanup(&local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprites_files_are_read_and_written_across_the_network() {
    let (local, ca, addr) = served(host("t-remote-files").await).await;
    let far = remote(&ca, addr).await;
    let s = name("files");
    far.create(&s, Default::default()).await.unwrap();
    assert!(matches!(
        far.sprite_files(&name("nobody")).await,
        Err(Error::NotFound(_))
    ));
    let files = far.sprite_files(&s).await.unwrap();

    // Written in chunks larger than one of the protocol's, read back whole.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut up = files
        .create("/root/big.bin", Some(0o640), false)
        .await
        .unwrap();
    up.write(&big[..1_500_000]).await.unwrap();
    up.write(&big[1_500_000..]).await.unwrap();
    assert_eq!(up.written(), big.len() as u64);
    let entry = up.finish().await.unwrap();
    assert_eq!(entry.size, big.len() as u64);
    let (mut reader, size) = files.open_read("/root/big.bin").await.unwrap();
    assert_eq!(size, big.len() as u64);
    let mut back = Vec::new();
    reader.read_to_end(&mut back).await.unwrap();
    assert!(back == big, "the bytes read back differ");
    assert_eq!(sh(&far, &s, "stat -c %a /root/big.bin").await, "640");

    // The calls of one question, with the host's own errors.
    files
        .write("/root/a/b/note", b"hi".to_vec(), None, true)
        .await
        .unwrap();
    let (me, inside) = files.list_or_stat("/root/a/b").await.unwrap();
    assert_eq!(me.path, "/root/a/b");
    assert_eq!(inside.len(), 1);
    files
        .rename("/root/a/b/note", "/root/a/note")
        .await
        .unwrap();
    assert!(matches!(
        files.stat("/root/a/b/note").await,
        Err(Error::FileNotFound(_))
    ));
    assert!(matches!(
        files.mkdir("/root/a", false).await,
        Err(Error::FileExists(_))
    ));
    assert!(matches!(
        files.open_read("/../../etc/shadow-of-nothing").await,
        Err(Error::FileNotFound(_))
    ));
    assert_eq!(
        files
            .id_of(vmhost::fs::IdTable::Users, "root")
            .await
            .unwrap(),
        0
    );

    // A file cut short leaves the old one.
    let mut cut = files.create("/root/a/note", None, false).await.unwrap();
    cut.write(b"never whole").await.unwrap();
    drop(cut);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sh(&far, &s, "cat /root/a/note").await, "hi");

    // A checkpoint's files, as they were; not to be written.
    let first = far.checkpoint(&s, "").await.unwrap();
    files.remove("/root/a", true).await.unwrap();
    let then = far.checkpoint_files(&s, first.id).await.unwrap();
    assert_eq!(then.stat("/root/a/note").await.unwrap().size, 2);
    assert!(then.create("/root/x", None, false).await.is_err());
    assert!(matches!(
        files.stat("/root/a").await,
        Err(Error::FileNotFound(_))
    ));
    cleanup(&local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_built_and_imported_across_the_network() {
    let (local, ca, addr) = served(host("t-remote-images").await).await;
    let far = remote(&ca, addr).await;

    // Built once: the host's image as it has it, its progress heard.
    let recipe = vmhost::image::Recipe::busybox();
    let busybox = far
        .prepare_image("busybox", &recipe, Box::new(|_| {}))
        .await
        .unwrap();
    let here = local
        .prepare_image("busybox", &recipe, |_: &str| {})
        .await
        .unwrap();
    assert_eq!((busybox.name, busybox.hash), (here.name, here.hash));

    // An archive larger than one chunk, sent as it is read.
    let archive = vmhost::testing::root_archive("imported across\n", None);
    assert!(archive.len() > vmhost::remote::MAX_CHUNK);
    let heard = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hear = heard.clone();
    let image = far
        .import_image(
            "t-remote-imported",
            Box::new(std::io::Cursor::new(archive)),
            64 << 20,
            Box::new(move |line| hear.lock().unwrap().push(line.to_string())),
        )
        .await
        .unwrap();
    assert_eq!(image.name, "t-remote-imported");
    assert!(!heard.lock().unwrap().is_empty(), "no progress heard");
    let s = name("imported");
    let opts = vmhost::CreateOptions {
        image: Some("t-remote-imported".into()),
        ..Default::default()
    };
    far.create(&s, opts).await.unwrap();
    let out = far.run(&s, &["cat", "/etc/motd"], b"").await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "imported across\n");

    // Not an archive: the host's refusal, and it goes on serving.
    let refused = far
        .import_image(
            "t-remote-garbage",
            Box::new(std::io::Cursor::new(vec![7u8; 3 << 20])),
            64 << 20,
            Box::new(|_| {}),
        )
        .await;
    assert!(refused.is_err());
    assert!(!matches!(refused, Err(Error::Fault(ref m)) if m.contains("host h1")));
    assert_eq!(far.list().await.unwrap().len(), 1);
    far.remove_image("t-remote-imported").await.unwrap();
    cleanup(&local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_management_socket_is_answered_from_across_the_network() {
    let (local, ca, addr) = served(host("t-remote-mgmt").await).await;
    let far = remote(&ca, addr).await;
    let s = name("managed");
    far.create(&s, Default::default()).await.unwrap();
    let mut listener = far.listen_mgmt(&s).await.unwrap();
    let answering = tokio::spawn(async move {
        for _ in 0..2 {
            let mut conn = listener.accept().await.unwrap();
            let mut ask = [0u8; 4];
            conn.read_exact(&mut ask).await.unwrap();
            assert_eq!(&ask, b"ping");
            conn.write_all(b"pong").await.unwrap();
            conn.shutdown().await.unwrap();
        }
    });
    let script = "import socket\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.connect('/.sprite/run/api.sock')\n\
        s.sendall(b'ping')\n\
        print(s.recv(4).decode())\n";
    for _ in 0..2 {
        let out = far.run(&s, &["python3", "-c", script], b"").await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "pong",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    tokio::time::timeout(Duration::from_secs(10), answering)
        .await
        .unwrap()
        .unwrap();
    cleanup(&local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_clusters_api_servers_reach_a_host() {
    let (local, ca, addr) = served(host("t-remote-trust").await).await;
    // Another cluster's API server, even one trusting this cluster's
    // authority: the host refuses it.
    let other = ClusterCa::generate("other").unwrap();
    let mut stranger = other.issue(Role::Server, "api1").unwrap();
    stranger.ca_pem = ca.cert_pem().to_string();
    let refused = Remote::connect("h1", &addr.to_string(), &stranger).await;
    assert!(
        matches!(refused, Err(Error::Fault(_))),
        "{:?}",
        refused.err()
    );
    // Another host of the cluster, posing as an API server: the host
    // refuses its certificate (it serves, it does not connect).
    let h2 = ca.issue(Role::Host, "h2").unwrap();
    assert!(matches!(
        Remote::connect("h1", &addr.to_string(), &h2).await,
        Err(Error::Invalid(_))
    ));
    let posing = vmhost::cluster::Identity {
        role: Role::Server,
        ..h2
    };
    let refused = Remote::connect("h1", &addr.to_string(), &posing).await;
    assert!(
        matches!(refused, Err(Error::Fault(_))),
        "{:?}",
        refused.err()
    );
    // The cluster's API server, meaning another host than the one there.
    let api = ca.issue(Role::Server, "api1").unwrap();
    assert!(Remote::connect("h2", &addr.to_string(), &api)
        .await
        .is_err());
    // Not TLS at all: the host answers nothing and goes on serving.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"{\"request\":\"call\",\"call\":{\"verb\":\"list\"}}\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("ok"),
        "{answer:?}"
    );
    let far = Remote::connect("h1", &addr.to_string(), &api)
        .await
        .unwrap();
    assert!(far.list().await.unwrap().is_empty());
    cleanup(&local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_carries_on_when_its_host_daemon_restarts() {
    let host: Arc<dyn Verbs> = Arc::new(host("t-remote-restart").await);
    let ca = ClusterCa::generate("test").unwrap();
    let acceptor = ca.issue(Role::Host, "h1").unwrap().acceptor().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let first = tokio::spawn(vmhost::remote::serve(
        listener,
        acceptor.clone(),
        host.clone(),
        stopped,
    ));
    let far = remote(&ca, addr).await;
    let s = name("steady");
    far.create(&s, Default::default()).await.unwrap();
    let mut listener = far.listen_mgmt(&s).await.unwrap();
    tokio::spawn(async move {
        while let Ok(mut conn) = listener.accept().await {
            let mut ask = [0u8; 4];
            if conn.read_exact(&mut ask).await.is_ok() {
                let _ = conn.write_all(b"pong").await;
                let _ = conn.shutdown().await;
            }
        }
    });
    assert_eq!(sh(&far, &s, "echo before").await, "before");

    // The daemon goes, every connection with it: the server is told so.
    let _ = stop.send(());
    first.await.unwrap().unwrap();
    assert!(matches!(far.list().await, Err(Error::Fault(_))));
    let mut events = far.subscribe();

    // Back on the same address: calls go on (no stale connection is
    // used), the events stream stands again and says every sprite's phase,
    // and the management socket is listened on again.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let forever = std::future::pending();
    tokio::spawn(vmhost::remote::serve(
        listener,
        acceptor,
        host.clone(),
        forever,
    ));
    assert_eq!(sh(&far, &s, "echo after").await, "after");
    event(&mut events, |e| e.sprite == s && e.phase == Phase::Running).await;
    let script = "import socket\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.connect('/.sprite/run/api.sock')\n\
        s.sendall(b'ping')\n\
        print(s.recv(4).decode())\n";
    let mut answer = String::new();
    for _ in 0..100 {
        let out = far.run(&s, &["python3", "-c", script], b"").await.unwrap();
        answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if answer == "pong" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, "pong");
    vmhost::testing::destroy_all(&*host).await;
}
