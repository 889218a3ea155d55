//! The Host's one-question verbs as messages (`vmhost::call`): each call
//! and its answer cross JSON, as they will between machines, and say what
//! the verb itself says on a real host.

mod common;

use common::{cleanup, host, name};
use serde::de::DeserializeOwned;
use vmhost::call::{answer, Call, Description, ImageRef};
use vmhost::diff::{Change, ChangeKind};
use vmhost::{CheckpointId, CheckpointInfo, Error, ExecOutput, Phase, SpriteInfo, WireError};

/// `call` sent as JSON, answered by `host`, its answer read back as JSON.
async fn ask<T: DeserializeOwned>(host: &vmhost::Host, call: Call) -> Result<T, Error> {
    let sent: Call = serde_json::from_str(&serde_json::to_string(&call).unwrap()).unwrap();
    match answer(host, sent).await {
        Ok(value) => Ok(serde_json::from_str(&value.to_string())
            .unwrap_or_else(|e| panic!("{call:?} answered {value}: {e}"))),
        Err(wire) => {
            let back: WireError =
                serde_json::from_str(&serde_json::to_string(&wire).unwrap()).unwrap();
            Err(back.into())
        }
    }
}

async fn run(host: &vmhost::Host, sprite: &vmhost::SpriteName, script: &str) -> String {
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
    let out: ExecOutput = ask(
        host,
        Call::Run {
            name: sprite.clone(),
            argv,
            stdin: Vec::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        out.code,
        0,
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprites_life_through_messages() {
    let host = host("t-calls").await;
    let s = name("app");
    let me: Description = ask(&host, Call::Describe).await.unwrap();
    assert_eq!(me.runtime, vmhost::Verbs::runtime_name(&host));

    let made: SpriteInfo = ask(
        &host,
        Call::Create {
            name: s.clone(),
            opts: Default::default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(made.phase, Phase::Running);
    let listed: Vec<SpriteInfo> = ask(&host, Call::List).await.unwrap();
    // As the host lists it (its time awake goes on between the two).
    let direct = host.get(&s).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            &listed[0].name,
            &listed[0].hostname,
            listed[0].phase,
            &listed[0].image
        ),
        (&direct.name, &direct.hostname, direct.phase, &direct.image)
    );
    assert_eq!(
        ask::<SpriteInfo>(
            &host,
            Call::Create {
                name: s.clone(),
                opts: Default::default()
            }
        )
        .await
        .unwrap_err()
        .to_string(),
        Error::AlreadyExists(s.to_string()).to_string()
    );

    // Checkpoint, change, compare, restore: the words and the disk agree.
    run(&host, &s, "echo one > /root/f").await;
    let v0: CheckpointInfo = ask(
        &host,
        Call::Checkpoint {
            name: s.clone(),
            comment: "first".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(v0.comment, "first");
    run(&host, &s, "echo two > /root/f").await;
    let changes: Vec<Change> = ask(
        &host,
        Call::Diff {
            name: s.clone(),
            from: v0.id,
            to: None,
        },
    )
    .await
    .unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.path == "/root/f" && c.change == ChangeKind::Modified),
        "{changes:?}"
    );
    let (after, backup): (SpriteInfo, CheckpointInfo) = ask(
        &host,
        Call::Restore {
            name: s.clone(),
            target: v0.id,
        },
    )
    .await
    .unwrap();
    assert_eq!(after.current_checkpoint, Some(v0.id));
    assert!(backup.auto);
    assert_eq!(run(&host, &s, "cat /root/f").await, "one");
    let all: Vec<CheckpointInfo> = ask(&host, Call::Checkpoints { name: s.clone() })
        .await
        .unwrap();
    assert_eq!(all, host.checkpoints(&s).unwrap());
    let missing = ask::<CheckpointInfo>(
        &host,
        Call::CheckpointInfo {
            name: s.clone(),
            id: CheckpointId(99),
        },
    )
    .await;
    assert!(
        matches!(missing, Err(Error::CheckpointNotFound(_, CheckpointId(99)))),
        "{missing:?}"
    );

    // An image of the checkpoint, named back by its name and hash.
    let image: ImageRef = ask(
        &host,
        Call::SaveImage {
            name: s.clone(),
            id: v0.id,
            image: "t-calls-image".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(image.name, "t-calls-image");
    ask::<()>(&host, Call::RemoveImage { image: image.name })
        .await
        .unwrap();

    // Sleep and wake; limits and policies read back as set.
    let warm: Phase = ask(&host, Call::SleepWarm { name: s.clone() })
        .await
        .unwrap();
    assert_eq!(warm, Phase::SleepingWarm);
    let awake: Phase = ask(&host, Call::Wake { name: s.clone() }).await.unwrap();
    assert_eq!(awake, Phase::Running);
    let limit: u64 = ask(
        &host,
        Call::SetMemoryLimit {
            name: s.clone(),
            bytes: Some(512 << 20),
        },
    )
    .await
    .unwrap();
    assert_eq!(limit, 512 << 20);
    let read: u64 = ask(&host, Call::MemoryLimit { name: s.clone() })
        .await
        .unwrap();
    assert_eq!(read, 512 << 20);
    let policy = sprites_wire::policy::NetworkPolicy {
        rules: vec![sprites_wire::policy::PolicyRule::allow("example.com")],
    };
    ask::<()>(
        &host,
        Call::SetNetworkPolicy {
            name: s.clone(),
            policy: policy.clone(),
        },
    )
    .await
    .unwrap();
    let back: sprites_wire::policy::NetworkPolicy =
        ask(&host, Call::NetworkPolicy { name: s.clone() })
            .await
            .unwrap();
    assert_eq!(back, policy);
    let used: u64 = ask(&host, Call::DiskUsage { name: s.clone() })
        .await
        .unwrap();
    assert!(used > 0);

    // Gone, and said so in the host's own words.
    ask::<()>(&host, Call::Destroy { name: s.clone() })
        .await
        .unwrap();
    let gone = ask::<SpriteInfo>(&host, Call::Get { name: s.clone() }).await;
    assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
    cleanup(&host).await;
}
