//! A sprite's life: create, exec, sleep and wake, destroy; its state
//! machine's refusals; and that it outlives the host process.

mod common;

use common::{cleanup, host, name, ok, sh, sprite};
use vmhost::{CreateOptions, Error, ExecSpec, Phase};

#[tokio::test(flavor = "multi_thread")]
async fn create_exec_and_destroy_a_debian_sprite() {
    let host = host("t-life").await;
    let s = name("dev");
    let info = host.create(&s, CreateOptions::default()).await.unwrap();
    assert_eq!(info.phase, Phase::Running);
    assert!(info.image.starts_with("debian@"));

    assert_eq!(ok(&host, &s, "hostname").await, "dev");
    // Its names resolve without any network: localhost and its own.
    assert_eq!(ok(&host, &s, "cat /etc/hostname").await, "dev");
    assert_eq!(
        ok(
            &host,
            &s,
            "python3 -c \"import socket; print(socket.gethostbyname('localhost'), socket.gethostbyname('dev'))\""
        )
        .await,
        "127.0.0.1 127.0.1.1"
    );
    assert!(ok(&host, &s, "cat /etc/os-release")
        .await
        .contains("bookworm"));
    assert_eq!(ok(&host, &s, "id -u").await, "0");
    for tool in ["bash", "curl", "git", "python3", "less", "ip", "ps", "nano"] {
        ok(&host, &s, &format!("command -v {tool}")).await;
    }
    // The package lists came with the image: the first install just works,
    // no `apt-get update` before it.
    ok(
        &host,
        &s,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends jq >/dev/null",
    )
    .await;
    assert_eq!(ok(&host, &s, "echo '{\"a\":1}' | jq .a").await, "1");
    // The whole root is writable and durable across a cold sleep.
    ok(&host, &s, "echo kept > /usr/local/kept && sync").await;
    host.sleep_cold(&s).await.unwrap();
    host.wake(&s).await.unwrap();
    assert_eq!(ok(&host, &s, "cat /usr/local/kept").await, "kept");

    host.destroy(&s).await.unwrap();
    assert!(matches!(host.get(&s), Err(Error::NotFound(_))));
    assert!(matches!(host.destroy(&s).await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_passes_argv_env_dir_stdin_and_exit_codes() {
    let (host, s) = sprite("t-exec", "x").await;

    let spec = ExecSpec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "echo \"$GREETING $1\" from $(pwd); cat; echo oops >&2; exit 7".into(),
            "sh".into(),
            "two words".into(),
        ],
        env: vec![("GREETING".into(), "hello".into())],
        dir: Some("/tmp".into()),
        ..Default::default()
    };
    let out = host
        .exec(&s, spec)
        .await
        .unwrap()
        .collect(b"piped in\n")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello two words from /tmp\npiped in\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(out.code, 7);

    // Killed by a signal: 128 + N.
    let (_, _, code) = sh(&host, &s, "kill -9 $$").await;
    assert_eq!(code, 128 + 9);

    // Large output arrives whole and in order (backpressure, no drops).
    let out = host
        .run(&s, &["sh", "-c", "seq 1 200000"], b"")
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 200000);
    assert_eq!(text.lines().last(), Some("200000"));

    // A missing program is a clear error, not a hang.
    let err = host.run(&s, &["/no/such/program"], b"").await.unwrap_err();
    assert!(matches!(err, Error::Spawn(..)), "{err:?}");
    assert!(matches!(
        host.run(&s, &[], b"").await,
        Err(Error::Invalid(_))
    ));
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_machine_refuses_wrong_phase_calls() {
    let (host, s) = sprite("t-phase", "p").await;
    ok(&host, &s, "sleep 1000 >/dev/null 2>&1 &").await;

    assert_eq!(host.sleep_warm(&s).await.unwrap(), Phase::SleepingWarm);
    assert_eq!(host.get(&s).unwrap().phase, Phase::SleepingWarm);
    let err = host.run(&s, &["true"], b"").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongPhase {
                op: "exec",
                phase: Phase::SleepingWarm
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        host.sessions(&s).await,
        Err(Error::WrongPhase { .. })
    ));

    // A warm wake keeps processes and memory.
    host.wake(&s).await.unwrap();
    assert_eq!(ok(&host, &s, "pgrep -c -x sleep").await, "1");

    assert_eq!(host.sleep_cold(&s).await.unwrap(), Phase::SleepingCold);
    assert!(matches!(
        host.sleep_warm(&s).await,
        Err(Error::WrongPhase {
            phase: Phase::SleepingCold,
            ..
        })
    ));
    // Cold sleep stops processes; the disk stays.
    host.wake(&s).await.unwrap();
    let (out, _, _) = sh(&host, &s, "pgrep -c -x sleep").await;
    assert_eq!(out.trim(), "0");

    // Names are validated and unique.
    assert!(matches!(
        host.create(&s, CreateOptions::default()).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(vmhost::SpriteName::parse("../etc").is_err());
    let missing = name("missing");
    assert!(matches!(
        host.run(&missing, &["true"], b"").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        host.checkpoint(&missing, "").await,
        Err(Error::NotFound(_))
    ));
    let bad_image = CreateOptions {
        image: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        host.create(&name("other"), bad_image).await,
        Err(Error::ImageMissing(_))
    ));
    assert!(
        host.get(&name("other")).is_err(),
        "a failed create leaves nothing"
    );
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn init_reaps_orphaned_zombies() {
    let (host, s) = sprite("t-reap", "z").await;
    // Each shell exits before its background child, which is re-parented to
    // init; once the children exit, nothing may stay a zombie.
    for _ in 0..20 {
        ok(&host, &s, "(sleep 0.05 &) ; true").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let zombies = ok(&host, &s, "ps -eo stat= | grep -c '^Z' || true").await;
    assert_eq!(zombies, "0");
    assert_eq!(ok(&host, &s, "ps -o comm= -p 1").await, "sprite-init");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sprites_outlive_the_host_and_are_readopted() {
    let s = name("keep");
    let session = {
        let host = host("t-adopt").await;
        host.create(&s, CreateOptions::default()).await.unwrap();
        let spec = ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "for i in $(seq 1 50); do echo tick $i; sleep 0.1; done".into(),
            ],
            detachable: true,
            ..Default::default()
        };
        let stream = host.exec(&s, spec).await.unwrap();
        stream.session
        // The host and the client connection are dropped here.
    };
    let host = vmhost::Host::open(common::config("t-adopt")).await.unwrap();
    assert_eq!(host.get(&s).unwrap().phase, Phase::Running);
    let mut stream = host.attach(&s, session, true).await.unwrap();
    let mut seen = String::new();
    while let Some(chunk) = stream.output.next().await.unwrap() {
        match chunk {
            vmhost::Chunk::Stdout(data) => seen.push_str(&String::from_utf8_lossy(&data)),
            vmhost::Chunk::Exit(_) => break,
            vmhost::Chunk::Stderr(_) => {}
        }
    }
    assert!(
        seen.starts_with("tick 1\n"),
        "replay starts at the beginning: {seen:?}"
    );
    assert!(
        seen.contains("tick 50\n"),
        "output continued after the host went: {seen:?}"
    );
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_counts_awake_time_and_written_bytes_and_phases_are_announced() {
    let host = host("t-usage").await;
    let s = name("u");
    let mut events = host.subscribe();
    host.create(&s, CreateOptions::default()).await.unwrap();
    let next = |events: &mut tokio::sync::broadcast::Receiver<vmhost::HostEvent>| {
        let e = events.try_recv().expect("an event");
        assert_eq!(e.sprite, s);
        e.phase
    };
    assert_eq!(next(&mut events), Phase::Running);

    let before = host.disk_usage(&s).unwrap();
    ok(&host, &s, "head -c 8M /dev/urandom > /big && sync").await;
    let after = host.disk_usage(&s).unwrap();
    assert!(
        after >= before + (8 << 20),
        "8 MiB written: {before} then {after}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    host.sleep_warm(&s).await.unwrap();
    assert_eq!(next(&mut events), Phase::SleepingWarm);
    let awake = host.get(&s).unwrap().active_ms;
    assert!(awake >= 300, "awake {awake} ms");
    // Asleep, the clock stands still.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(host.get(&s).unwrap().active_ms, awake);

    host.sleep_cold(&s).await.unwrap();
    assert_eq!(next(&mut events), Phase::SleepingCold);
    host.wake(&s).await.unwrap();
    assert_eq!(next(&mut events), Phase::Running);
    // Waking what is awake changes nothing and says nothing.
    host.wake(&s).await.unwrap();
    assert!(events.try_recv().is_err());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(host.get(&s).unwrap().active_ms >= awake + 100);

    host.destroy(&s).await.unwrap();
    assert_eq!(next(&mut events), Phase::Destroyed);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_restarts_a_sprite_only_onto_another_init() {
    // The host's sprite-init, as a file of this test's own to replace.
    let mut cfg = common::config("t-upgrade");
    let dir = common::run_dir().join("t-upgrade-init");
    std::fs::create_dir_all(&dir).unwrap();
    let init = dir.join("sprite-init");
    std::fs::copy(&cfg.init_binary, &init).unwrap();
    cfg.init_binary = init.clone();
    let host = vmhost::testing::host_with(cfg).await;
    let s = name("upgraded");
    host.create(&s, CreateOptions::default()).await.unwrap();
    ok(
        &host,
        &s,
        "echo kept > /root/note; (setsid sleep 1000 >/dev/null 2>&1 &)",
    )
    .await;

    // Its init is the host's: nothing restarts.
    assert!(!host.upgrade(&s).await.unwrap());
    assert_eq!(ok(&host, &s, "pgrep -xc sleep").await, "1");

    // A new sprite-init installed (written beside, then renamed over, as
    // an install does): the sprite restarts onto it, its disk kept.
    let fresh = dir.join("sprite-init.new");
    std::fs::copy(&init, &fresh).unwrap();
    std::fs::rename(&fresh, &init).unwrap();
    assert!(host.upgrade(&s).await.unwrap());
    assert_eq!(ok(&host, &s, "cat /root/note").await, "kept");
    assert_eq!(ok(&host, &s, "pgrep -xc sleep || true").await, "0");
    assert!(!host.upgrade(&s).await.unwrap(), "once is enough");

    // Asleep on disk, it takes the current init when it wakes: left asleep.
    host.sleep_cold(&s).await.unwrap();
    std::fs::copy(&init, &fresh).unwrap();
    std::fs::rename(&fresh, &init).unwrap();
    assert!(!host.upgrade(&s).await.unwrap());
    assert_eq!(host.get(&s).unwrap().phase, Phase::SleepingCold);
    host.wake(&s).await.unwrap();
    assert!(!host.upgrade(&s).await.unwrap());
    cleanup(&host).await;
    let _ = std::fs::remove_dir_all(&dir);
}
