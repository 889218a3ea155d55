//! A hostile tenant: every escape attempt is refused, and resource abuse
//! stays inside its own sprite.

mod common;

use std::time::{Duration, Instant};

use common::{cleanup, host, name, ok, sh, sprite};
use vmhost::runtime::Limits;
use vmhost::{CreateOptions, Phase};

async fn refused(host: &vmhost::Host, s: &vmhost::SpriteName, script: &str) {
    let (out, err, code) = sh(host, s, script).await;
    assert_ne!(
        code, 0,
        "{script:?} should fail but printed {out:?} {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn escape_attempts_are_refused() {
    let (host, s) = sprite("t-escape", "tenant").await;

    refused(&host, &s, "mount -t tmpfs none /mnt").await;
    refused(&host, &s, "mount --bind / /mnt").await;
    refused(&host, &s, "mknod /tmp/sda b 8 0").await;
    refused(&host, &s, "echo 1 > /proc/sys/kernel/sysrq").await;
    refused(&host, &s, "echo b > /proc/sysrq-trigger").await;
    refused(&host, &s, "echo x > /sys/kernel/uevent_helper").await;
    refused(&host, &s, "unshare -U true").await;
    refused(&host, &s, "unshare -n true").await;
    refused(&host, &s, "test -s /proc/kcore && head -c1 /proc/kcore").await;
    // init_module / finit_module / kexec_load straight from the syscall table.
    for nr in [175, 313, 246] {
        let script = format!(
            "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); r=l.syscall({nr},0,0,0); sys.exit(0 if r==0 else 1)'"
        );
        refused(&host, &s, &script).await;
    }
    // No dangerous capability is even in the bounding set.
    let bnd = ok(&host, &s, "grep CapBnd /proc/self/status | cut -f2").await;
    let bnd = u64::from_str_radix(&bnd, 16).unwrap();
    for (cap, bit) in [
        ("SYS_ADMIN", 21),
        ("SYS_MODULE", 16),
        ("SYS_PTRACE", 19),
        ("MKNOD", 27),
        ("SYS_RAWIO", 17),
        ("SYS_TIME", 25),
        ("NET_ADMIN", 12),
        ("SYS_BOOT", 22),
    ] {
        assert_eq!(bnd & (1 << bit), 0, "CAP_{cap} must be dropped");
    }
    // No host devices, no host processes.
    assert_eq!(
        ok(&host, &s, "find / -xdev -type b | wc -l").await,
        "0",
        "no block devices"
    );
    let chars = ok(&host, &s, "find /dev -type c | sort | tr '\\n' ' '").await;
    for dev in chars.split_whitespace() {
        let allowed = [
            "/dev/full",
            "/dev/null",
            "/dev/random",
            "/dev/tty",
            "/dev/urandom",
            "/dev/zero",
            "/dev/ptmx",
            "/dev/pts/ptmx",
        ];
        assert!(
            allowed.contains(&dev),
            "unexpected device {dev} among {chars}"
        );
    }
    let host_pid = std::process::id();
    refused(&host, &s, &format!("kill -0 {host_pid}")).await;
    let procs: usize = ok(&host, &s, "ls /proc | grep -c '^[0-9]'")
        .await
        .parse()
        .unwrap();
    assert!(procs < 10, "sees {procs} processes");
    // Root inside is an unprivileged id outside.
    let pid = host
        .runtime()
        .init_pid("t-escape.tenant")
        .unwrap()
        .expect("init runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "100000"),
        "{uid_line}"
    );

    // The host's loopback services are out of reach: the sprite has its own network.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    refused(
        &host,
        &s,
        &format!("curl -sS --max-time 2 http://127.0.0.1:{port}/"),
    )
    .await;
    // Its own interfaces only: loopback, and its egress link (network.rs).
    let links = ok(&host, &s, "ls /sys/class/net").await;
    assert!(
        links.lines().all(|l| l == "lo" || l == "eth0") && links.contains("lo"),
        "{links}"
    );
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_exhaustion_kills_only_inside_the_sprite() {
    let host = host("t-oom").await;
    let s = name("hog");
    let limits = Limits {
        memory_bytes: 128 << 20,
        ..Limits::default()
    };
    common::create_limited(&host, &s, limits).await;
    let (_, _, code) = sh(
        &host,
        &s,
        "python3 -c 'b = bytearray(1 << 30); print(len(b))'",
    )
    .await;
    assert_eq!(code, 128 + 9, "the hog is OOM-killed");
    assert_eq!(host.get(&s).unwrap().phase, Phase::Running);
    assert_eq!(ok(&host, &s, "echo still-here").await, "still-here");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_changes_on_a_running_sprite_and_stays_through_sleep() {
    let (host, s) = sprite("t-memory-limit", "limited").await;
    let grab = "python3 -c 'b = bytearray(300 << 20); print(len(b))'";
    assert_eq!(sh(&host, &s, grab).await.2, 0, "4 GiB by default");
    assert_eq!(host.memory_limit(&s).unwrap(), 4 << 30);

    // Lowered while it runs: the next hog meets it at once.
    host.set_memory_limit(&s, Some(128 << 20)).await.unwrap();
    assert_eq!(
        sh(&host, &s, grab).await.2,
        128 + 9,
        "OOM-killed at 128 MiB"
    );
    assert_eq!(ok(&host, &s, "echo still-here").await, "still-here");

    // Kept through a cold sleep, and raised again while asleep warm.
    host.sleep_cold(&s).await.unwrap();
    host.wake(&s).await.unwrap();
    assert_eq!(host.memory_limit(&s).unwrap(), 128 << 20);
    assert_eq!(sh(&host, &s, grab).await.2, 128 + 9);
    host.sleep_warm(&s).await.unwrap();
    host.set_memory_limit(&s, None).await.unwrap();
    host.wake(&s).await.unwrap();
    assert_eq!(sh(&host, &s, grab).await.2, 0, "the default again");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn privileges_are_set_at_start_and_a_change_restarts_onto_them() {
    use sprites_wire::policy::PrivilegesPolicy;
    let (host, s) = sprite("t-privileges", "narrow").await;
    let nnp = "grep NoNewPrivs /proc/self/status | tr -d '[:space:]'";
    let trace = "python3 -c 'import ctypes; print(ctypes.CDLL(None).ptrace(0, 0, 0, 0))'";
    let tun = "python3 -c 'import os; os.open(\"/dev/net/tun\", os.O_RDWR); print(\"opened\")'";
    assert_eq!(ok(&host, &s, nnp).await, "NoNewPrivs:0");
    assert_eq!(ok(&host, &s, trace).await, "0", "ptrace allowed by default");
    assert_ne!(sh(&host, &s, tun).await.2, 0, "no tunnel device by default");
    ok(
        &host,
        &s,
        "echo kept > /root/note; (setsid sleep 1000 >/dev/null 2>&1 &)",
    )
    .await;

    // Minimal, with a tunnel device: the running sprite restarts onto it.
    let minimal = PrivilegesPolicy {
        profile: "minimal".into(),
        devices: vec!["/dev/net/tun".into()],
        no_new_privileges: false,
    };
    assert!(host.set_privileges(&s, minimal.clone()).await.unwrap());
    assert_eq!(ok(&host, &s, nnp).await, "NoNewPrivs:1");
    assert_eq!(ok(&host, &s, trace).await, "-1", "ptrace refused");
    assert_eq!(ok(&host, &s, tun).await, "opened");
    assert_eq!(ok(&host, &s, "cat /root/note").await, "kept");
    assert_eq!(ok(&host, &s, "pgrep -xc sleep || true").await, "0");
    assert!(
        !host.set_privileges(&s, minimal.clone()).await.unwrap(),
        "unchanged"
    );

    // What is not offered is refused, and the policy stays.
    for bad in [
        PrivilegesPolicy {
            profile: "privileged".into(),
            ..Default::default()
        },
        PrivilegesPolicy {
            devices: vec!["/dev/kvm".into()],
            ..Default::default()
        },
    ] {
        assert!(matches!(
            host.set_privileges(&s, bad).await,
            Err(vmhost::Error::Invalid(_))
        ));
    }
    assert_eq!(host.privileges(&s).unwrap(), minimal);

    // Kept through a cold sleep; the standard ones back on a clear.
    host.sleep_cold(&s).await.unwrap();
    host.wake(&s).await.unwrap();
    assert_eq!(ok(&host, &s, trace).await, "-1");
    assert!(host
        .set_privileges(&s, PrivilegesPolicy::default())
        .await
        .unwrap());
    assert_eq!(ok(&host, &s, trace).await, "0");
    assert_eq!(ok(&host, &s, nnp).await, "NoNewPrivs:0");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_hits_the_pids_limit_and_neighbours_stay_responsive() {
    let host = host("t-bomb").await;
    let bomb = name("bomb");
    let calm = name("calm");
    let limits = Limits {
        pids: 128,
        ..Limits::default()
    };
    common::create_limited(&host, &bomb, limits).await;
    host.create(&calm, CreateOptions::default()).await.unwrap();
    let (out, _, _) = sh(
        &host,
        &bomb,
        "for i in $(seq 300); do sleep 5 & done 2>&1 | grep -c 'fork' ; true",
    )
    .await;
    assert!(
        out.trim().parse::<u32>().unwrap_or(0) > 0,
        "forks beyond the limit fail"
    );
    // A real fork bomb, left running while the neighbour is used.
    let bomb_spec = vmhost::ExecSpec {
        argv: vec!["bash".into(), "-c".into(), "f(){ f|f& }; f".into()],
        detachable: true,
        ..Default::default()
    };
    let _bombing = host.exec(&bomb, bomb_spec).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(ok(&host, &calm, "echo fine").await, "fine");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "neighbour stalled for {:?}",
            t.elapsed()
        );
    }
    // The bomb's sprite is still manageable: it stops and is destroyed.
    host.destroy(&bomb).await.unwrap();
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_brings_back_a_sprite_its_fork_bomb_has_filled() {
    let host = host("t-bomb-restart").await;
    let s = name("bombed");
    let limits = Limits {
        pids: 128,
        ..Limits::default()
    };
    common::create_limited(&host, &s, limits).await;
    ok(&host, &s, "echo kept > /root/note").await;
    // A bomb whose processes wait for their children: it fills the limit
    // and holds it.
    let bomb = vmhost::ExecSpec {
        argv: vec!["bash".into(), "-c".into(), "f(){ f & f & wait; }; f".into()],
        detachable: true,
        ..Default::default()
    };
    let _bombing = host.exec(&s, bomb).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Commands meet the limit, named, with the way out; never a host
    // fault. (A bomb's processes die and fork again: one may slip through.)
    let mut named = None;
    for _ in 0..20 {
        match host.run(&s, &["true"], b"").await {
            Err(e @ vmhost::Error::Exhausted(_)) => {
                named = Some(e.to_string());
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other} ({other:?})"),
        }
    }
    let named = named.expect("a command met the process limit");
    assert!(
        named.contains("128 processes") && named.contains("restart"),
        "{named}"
    );

    let t = Instant::now();
    assert_eq!(host.restart(&s).await.unwrap(), Phase::Running);
    let took = t.elapsed();
    assert_eq!(ok(&host, &s, "cat /root/note").await, "kept");
    // The bomb is gone: a handful of processes, not the limit's worth.
    let count = ok(&host, &s, "ls -d /proc/[0-9]* | wc -l").await;
    assert!(
        count.parse::<u32>().unwrap() < 16,
        "{count} processes after the restart"
    );
    let check = host.check(&s).await.unwrap();
    assert_eq!(check.phase, Phase::Running);
    assert!(
        check.problem.is_none() && check.elapsed.is_some(),
        "{check:?}"
    );
    // Asleep, it is reported as it is and left asleep.
    host.sleep_cold(&s).await.unwrap();
    let check = host.check(&s).await.unwrap();
    assert_eq!((check.phase, check.elapsed), (Phase::SleepingCold, None));
    assert_eq!(host.get(&s).unwrap().phase, Phase::SleepingCold);
    println!("restart under a fork bomb took {took:?}");
    cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_at_the_quota() {
    let host = host("t-quota").await;
    let s = name("filler");
    let other = name("other");
    // The quota counts what the sprite writes, not the image it shares.
    let limits = Limits {
        disk_bytes: 200 << 20,
        ..Limits::default()
    };
    common::create_limited(&host, &s, limits).await;
    host.create(&other, CreateOptions::default()).await.unwrap();
    ok(&host, &s, "echo precious > /root/precious && sync").await;
    let (_, err, code) = sh(
        &host,
        &s,
        "dd if=/dev/urandom of=/root/fill bs=1M count=2000 conv=fsync",
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("quota") || err.contains("space"), "{err}");
    let size: u64 = ok(&host, &s, "stat -c %s /root/fill")
        .await
        .parse()
        .unwrap();
    assert!(size <= 200 << 20, "wrote {size} bytes past a 200 MiB quota");
    assert_eq!(ok(&host, &s, "cat /root/precious").await, "precious");
    ok(&host, &s, "rm /root/fill && sync").await;
    assert_eq!(ok(&host, &other, "echo unaffected").await, "unaffected");
    cleanup(&host).await;
}
