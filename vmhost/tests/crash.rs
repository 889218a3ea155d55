//! Crash consistency: the `vmhost` binary is killed with SIGKILL at every
//! step of every multi-step operation; the next start must find each sprite
//! as it was before the operation or as it is after it, never in between.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use common::{host, name, ok};
use vmhost::{CheckpointId, Host, Phase, SpriteName};

const INSTANCE: &str = "t-crash";

/// Runs `vmhost ARGS` and has it SIGKILL itself at `step`.
fn killed_at(step: &str, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_vmhost"))
        .env("SPRITES_DATA_DIR", common::data_dir())
        .env("SPRITES_RUN_DIR", common::run_dir())
        .env("SPRITES_INSTANCE", INSTANCE)
        .env("VMHOST_KILL_AT", step)
        .args(args)
        .output()
        .expect("run vmhost");
    assert_eq!(
        status.status.signal(),
        Some(libc::SIGKILL),
        "vmhost {args:?} was not killed at {step}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// The next start of the host, which reconciles.
async fn restart() -> Host {
    Host::open(common::config(INSTANCE))
        .await
        .expect("reopen after crash")
}

async fn assert_running(host: &Host, s: &SpriteName) {
    assert_eq!(
        host.get(s).unwrap().phase,
        Phase::Running,
        "{s} runs after reconciliation"
    );
    ok(host, s, "true").await;
}

fn staging_is_empty() -> bool {
    let dir = common::data_dir()
        .join("pool/hosts")
        .join(INSTANCE)
        .join("staging");
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_at_any_step_leaves_before_or_after() {
    let host = host(INSTANCE).await;
    drop(host);

    // create: before publishing nothing exists; after, the sprite runs.
    killed_at("create.staged", &["create", "c1"]);
    let host = restart().await;
    assert!(
        host.get(&name("c1")).is_err(),
        "an unpublished create leaves nothing"
    );
    assert!(staging_is_empty());
    drop(host);
    killed_at("create.published", &["create", "c2"]);
    let host = restart().await;
    assert_running(&host, &name("c2")).await;

    // checkpoint: no half checkpoint, never a frozen sprite.
    let s = name("c2");
    ok(&host, &s, "echo before > /root/f").await;
    drop(host);
    for step in ["checkpoint.frozen", "checkpoint.snapshotted"] {
        killed_at(step, &["checkpoint", "c2"]);
        let host = restart().await;
        assert_running(&host, &s).await;
        assert!(
            host.checkpoints(&s).unwrap().is_empty(),
            "{step}: no partial checkpoint"
        );
        drop(host);
    }
    killed_at("checkpoint.recorded", &["checkpoint", "c2"]);
    let host = restart().await;
    assert_running(&host, &s).await;
    let ids: Vec<CheckpointId> = host.checkpoints(&s).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(ids, [CheckpointId(0)]);
    assert_eq!(
        ok(&host, &s, "cat /.sprite/checkpoints/v0/root/f").await,
        "before"
    );

    // restore: once the intent is written, it always completes.
    ok(&host, &s, "echo after > /root/f").await;
    drop(host);
    let steps = [
        "restore.intent",
        "restore.stopped",
        "restore.backed_up",
        "restore.moved",
        "restore.rooted",
        "restore.recorded",
    ];
    for step in steps {
        killed_at(step, &["restore", "c2", "v0"]);
        let host = restart().await;
        assert_running(&host, &s).await;
        assert_eq!(
            ok(&host, &s, "cat /root/f").await,
            "before",
            "{step}: restored"
        );
        let list = host.checkpoints(&s).unwrap();
        let backup = list.last().unwrap();
        assert!(
            backup.auto && backup.comment == "before restore to v0",
            "{step}: {list:?}"
        );
        assert_eq!(
            ok(
                &host,
                &s,
                &format!("cat /.sprite/checkpoints/{}/root/f", backup.id)
            )
            .await,
            "after",
            "{step}: the backup holds the state before the restore"
        );
        assert_eq!(
            host.get(&s).unwrap().current_checkpoint,
            Some(CheckpointId(0))
        );
        let root_old = common::data_dir()
            .join("pool/hosts")
            .join(INSTANCE)
            .join("sprites/c2/root.old");
        assert!(!root_old.exists(), "{step}: no stray root.old");
        // Put the "after" state back for the next step.
        host.restore(&s, backup.id).await.unwrap();
        assert_eq!(ok(&host, &s, "cat /root/f").await, "after");
        drop(host);
    }

    // fork: before publishing nothing; after, a running fork.
    killed_at("create.staged", &["fork", "c2", "f1", "--from", "v0"]);
    let host = restart().await;
    assert!(host.get(&name("f1")).is_err());
    assert!(staging_is_empty());
    drop(host);
    killed_at("fork.published", &["fork", "c2", "f2", "--from", "v0"]);
    let host = restart().await;
    assert_running(&host, &name("f2")).await;
    assert_eq!(ok(&host, &name("f2"), "cat /root/f").await, "before");
    drop(host);

    // destroy: stopped but not trashed is "before" (it runs again); trashed is gone.
    killed_at("destroy.stopped", &["destroy", "f2"]);
    let host = restart().await;
    assert_running(&host, &name("f2")).await;
    drop(host);
    killed_at("destroy.trashed", &["destroy", "f2"]);
    let host = restart().await;
    assert!(host.get(&name("f2")).is_err());
    let trash = common::data_dir()
        .join("pool/hosts")
        .join(INSTANCE)
        .join("trash");
    assert!(
        std::fs::read_dir(trash).unwrap().next().is_none(),
        "trash emptied"
    );
    // And no sandbox is left without its sprite.
    let leftovers = host.runtime().list(&format!("{INSTANCE}.f2")).unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    common::cleanup(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_init_is_restarted_on_start() {
    let host = host("t-deadinit").await;
    let s = name("fragile");
    host.create(&s, vmhost::CreateOptions::default())
        .await
        .unwrap();
    ok(&host, &s, "echo durable > /root/d && sync").await;
    drop(host);
    // Kill the sandbox's init from outside, as an OOM killer or an operator might.
    let probe = Host::open(common::config("t-deadinit")).await.unwrap();
    let pid = probe
        .runtime()
        .init_pid("t-deadinit.fragile")
        .unwrap()
        .expect("init runs");
    drop(probe);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let host = Host::open(common::config("t-deadinit")).await.unwrap();
    assert_running(&host, &s).await;
    assert_eq!(ok(&host, &s, "cat /root/d").await, "durable");
    common::cleanup(&host).await;
}
