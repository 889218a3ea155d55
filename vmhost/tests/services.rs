//! Services of a sprite, supervised by its sprite-init: they start, crash
//! and come back, stop, log, depend on each other, and start again by
//! themselves after a cold sleep and a restore, since their definitions
//! live on the sprite's own disk.

mod common;

use std::time::Duration;

use common::{sh, sprite};
use vmhost::{Error, Host, ServiceOp, ServiceSpec, SpriteName};

fn spec(cmd: &str, args: &[&str]) -> ServiceSpec {
    ServiceSpec {
        cmd: cmd.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

async fn put(host: &Host, s: &SpriteName, svc: &str, spec: ServiceSpec) -> Vec<String> {
    let mut events = host
        .service(s, svc, ServiceOp::Put { spec }, 1500)
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(e) = events.next().await.unwrap() {
        kinds.push(e.kind);
    }
    kinds
}

async fn state(host: &Host, s: &SpriteName, svc: &str) -> vmhost::ServiceState {
    host.services(s)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == svc)
        .unwrap_or_else(|| panic!("no service {svc}"))
        .state
}

/// Waits until something answers on `port` inside the sprite.
async fn listening(host: &Host, s: &SpriteName, port: u16) {
    for _ in 0..200 {
        if host.connect(s, "localhost", port).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

fn web() -> ServiceSpec {
    ServiceSpec {
        dir: Some("/srv".into()),
        http_port: Some(8080),
        ..spec("python3", &["-m", "http.server", "8080"])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_run_restart_stop_and_log() {
    let (host, s) = sprite("t-services", "svc").await;
    sh(&host, &s, "mkdir -p /srv && echo served > /srv/index.html").await;

    let kinds = put(&host, &s, "web", web()).await;
    assert!(kinds.contains(&"started".to_string()), "{kinds:?}");
    let st = state(&host, &s, "web").await;
    assert_eq!(st.status, "running");
    listening(&host, &s, 8080).await;
    // The definition is a file of the sprite's own disk.
    let (def, _, _) = sh(&host, &s, "cat /etc/sprite/services/web.json").await;
    assert!(def.contains("http.server"), "{def}");

    // A crash is followed by a restart.
    let pid = st.pid.unwrap();
    let mut killed = host
        .service(
            &s,
            "web",
            ServiceOp::Signal {
                signal: libc::SIGKILL,
            },
            0,
        )
        .await
        .unwrap();
    while killed.next().await.unwrap().is_some() {}
    let mut restarted = None;
    for _ in 0..100 {
        let st = state(&host, &s, "web").await;
        if st.status == "running" && st.pid != Some(pid) {
            restarted = Some(st);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restarted = restarted.expect("restarted after the crash");
    assert_eq!(restarted.restart_count, 1);
    listening(&host, &s, 8080).await;

    // Logs: recent lines, with what the service printed.
    let (out, _, code) = sh(&host, &s, "curl -s localhost:8080/index.html").await;
    assert_eq!((out.as_str(), code), ("served\n", 0));
    let mut logs = host.service_logs(&s, "web", 100, false).await.unwrap();
    let mut lines = Vec::new();
    while let Some(e) = logs.next().await.unwrap() {
        lines.push(format!("{} {}", e.kind, e.data.unwrap_or_default()));
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stderr") && l.contains("GET /index.html")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("exit")), "{lines:?}");

    // A stop that is ignored ends in SIGKILL after its timeout.
    put(
        &host,
        &s,
        "stubborn",
        spec("sh", &["-c", "trap '' TERM; while :; do sleep 1; done"]),
    )
    .await;
    let started = std::time::Instant::now();
    let mut stop = host
        .service(&s, "stubborn", ServiceOp::Stop { timeout_ms: 500 }, 100)
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(e) = stop.next().await.unwrap() {
        kinds.push(e.kind);
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(state(&host, &s, "stubborn").await.status, "stopped");
    assert!(kinds.contains(&"stopped".to_string()), "{kinds:?}");
    // Stopped stays stopped; start brings it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state(&host, &s, "stubborn").await.status, "stopped");
    host.service(&s, "stubborn", ServiceOp::Start, 0)
        .await
        .unwrap();
    assert_eq!(state(&host, &s, "stubborn").await.status, "running");
    host.service(&s, "stubborn", ServiceOp::Delete, 0)
        .await
        .unwrap();
    assert!(matches!(
        host.service(&s, "stubborn", ServiceOp::Start, 0).await,
        Err(Error::ServiceNotFound(_))
    ));

    // Dependencies: started first, kept while needed, no cycles.
    put(&host, &s, "db", spec("sleep", &["infinity"])).await;
    let api = ServiceSpec {
        needs: vec!["db".into()],
        ..spec("sleep", &["infinity"])
    };
    put(&host, &s, "api", api).await;
    assert!(matches!(
        host.service(&s, "db", ServiceOp::Delete, 0).await,
        Err(Error::ServiceConflict(_))
    ));
    let cyclic = ServiceSpec {
        needs: vec!["api".into()],
        ..spec("sleep", &["infinity"])
    };
    assert!(matches!(
        host.service(&s, "db", ServiceOp::Put { spec: cyclic }, 0)
            .await,
        Err(Error::Invalid(_))
    ));
    let unknown = ServiceSpec {
        needs: vec!["nothing".into()],
        ..spec("true", &[])
    };
    assert!(matches!(
        host.service(&s, "x", ServiceOp::Put { spec: unknown }, 0)
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        host.service(&s, "Bad/Name", ServiceOp::Start, 0).await,
        Err(Error::Invalid(_))
    ));
    host.destroy(&s).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn services_come_back_after_a_cold_sleep_and_follow_restores() {
    let (host, s) = sprite("t-services-boot", "boot").await;
    sh(&host, &s, "mkdir -p /srv && echo up > /srv/index.html").await;
    put(&host, &s, "web", web()).await;
    listening(&host, &s, 8080).await;

    host.sleep_cold(&s).await.unwrap();
    host.wake(&s).await.unwrap();
    listening(&host, &s, 8080).await;
    assert_eq!(state(&host, &s, "web").await.status, "running");

    // Checkpoint with one service; add another; restore: only the first.
    let v0 = host.checkpoint(&s, "one service").await.unwrap();
    put(&host, &s, "extra", spec("sleep", &["infinity"])).await;
    host.restore(&s, v0.id).await.unwrap();
    let names: Vec<String> = host
        .services(&s)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["web"]);
    listening(&host, &s, 8080).await;
    host.destroy(&s).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sprites_environment_reaches_every_command_and_service() {
    let host = common::host("t-environment").await;
    let s = common::name("env");
    let environment: std::collections::BTreeMap<String, String> = [
        ("GREETING", "hello from the sprite"),
        ("LANG", "en_GB.UTF-8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let opts = vmhost::CreateOptions {
        environment: environment.clone(),
        ..Default::default()
    };
    host.create(&s, opts).await.unwrap();
    assert_eq!(host.get(&s).unwrap().environment, environment);
    // Over the defaults, under the command's own.
    let (out, _, _) = sh(&host, &s, "echo \"$GREETING|$LANG|$HOME\"").await;
    assert_eq!(out.trim(), "hello from the sprite|en_GB.UTF-8|/root");
    let spec = vmhost::ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "echo $GREETING".into()],
        env: vec![("GREETING".into(), "the command's own".into())],
        ..Default::default()
    };
    let mut stream = host.exec(&s, spec).await.unwrap();
    let mut said = Vec::new();
    while let Some(chunk) = stream.output.next().await.unwrap() {
        if let vmhost::Chunk::Stdout(b) = chunk {
            said.extend(b);
        }
    }
    assert_eq!(String::from_utf8_lossy(&said).trim(), "the command's own");

    // A service has it, also when init starts it again after a cold sleep.
    let writer = spec_of_sh("echo \"$GREETING\" > /srv-greeting; exec sleep 1000");
    put(&host, &s, "writer", writer).await;
    assert_eq!(greeting(&host, &s).await, "hello from the sprite");
    sh(&host, &s, "rm /srv-greeting").await;
    host.sleep_cold(&s).await.unwrap();
    host.wake(&s).await.unwrap();
    assert_eq!(greeting(&host, &s).await, "hello from the sprite");

    // A fork takes it along.
    let copy = common::name("env-copy");
    host.fork(&s, None, &copy).await.unwrap();
    assert_eq!(host.get(&copy).unwrap().environment, environment);
    assert_eq!(
        sh(&host, &copy, "echo $GREETING").await.0.trim(),
        "hello from the sprite"
    );

    // One no command could be given is refused, and nothing is made.
    for (k, v) in [("A=B", "x"), ("", "x"), ("NUL", "a\0b")] {
        let bad = vmhost::CreateOptions {
            environment: [(k.to_string(), v.to_string())].into_iter().collect(),
            ..Default::default()
        };
        let other = common::name("env-bad");
        assert!(matches!(
            host.create(&other, bad).await,
            Err(Error::Invalid(_))
        ));
        assert!(host.get(&other).is_err());
    }
    common::cleanup(&host).await;
}

/// What the service wrote, once it has (5 s at most).
async fn greeting(host: &Host, s: &SpriteName) -> String {
    for _ in 0..100 {
        let (out, _, _) = sh(host, s, "cat /srv-greeting 2>/dev/null").await;
        if !out.is_empty() {
            return out.trim().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    String::new()
}

fn spec_of_sh(script: &str) -> ServiceSpec {
    spec("sh", &["-c", script])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_services_output_is_kept_in_files_cut_at_their_limit() {
    let (host, s) = sprite("t-service-logs", "logs").await;
    // 9 MiB of output, past the 8 MiB at which a file starts again.
    let script =
        "echo first >&2; head -c 9437184 /dev/zero | tr '\\0' x; echo; echo last; exec sleep 1000";
    put(&host, &s, "noisy", spec_of_sh(script)).await;
    let files = sprites_wire::services::service_log_files("noisy");
    let (out, err) = (&files["stdout"], &files["stderr"]);
    let sizes = format!("stat -c %s {out}.1 {out}; tail -n 1 {out}; cat {err}");
    let mut seen = String::new();
    for _ in 0..100 {
        seen = sh(&host, &s, &sizes).await.0;
        if seen.contains("last") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines: Vec<&str> = seen.lines().collect();
    let (earlier, current): (u64, u64) = (lines[0].parse().unwrap(), lines[1].parse().unwrap());
    assert!(earlier >= sprites_wire::services::SERVICE_LOG_MAX, "{seen}");
    assert_eq!(earlier + current, 9437184 + 6, "nothing lost: {seen}");
    assert_eq!(&lines[2..], ["last", "first"], "{seen}");
    common::cleanup(&host).await;
}
