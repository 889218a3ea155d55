//! The Host's verbs as messages, for a host on another machine: a [`Call`]
//! names a verb that is one question and one answer, with its arguments;
//! [`answer`] makes it on a host and gives the result as JSON, or the error
//! in its wire form. The verbs that stream (exec, attach, connect, service
//! events, file watches, the management socket, files, image builds) go
//! over connections of their own.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy};

use crate::error::WireError;
use crate::fs::FileCall;
use crate::{CheckpointId, CreateOptions, SpriteName, Verbs};

/// One verb and its arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum Call {
    Describe,
    Create {
        name: SpriteName,
        opts: CreateOptions,
    },
    Get {
        name: SpriteName,
    },
    List,
    Phase {
        name: SpriteName,
    },
    Destroy {
        name: SpriteName,
    },
    ForkNamed {
        source: SpriteName,
        checkpoint: Option<CheckpointId>,
        name: SpriteName,
        hostname: SpriteName,
    },
    SleepWarm {
        name: SpriteName,
    },
    SleepCold {
        name: SpriteName,
    },
    Wake {
        name: SpriteName,
    },
    Restart {
        name: SpriteName,
    },
    Upgrade {
        name: SpriteName,
    },
    MemoryLimit {
        name: SpriteName,
    },
    SetMemoryLimit {
        name: SpriteName,
        bytes: Option<u64>,
    },
    Privileges {
        name: SpriteName,
    },
    SetPrivileges {
        name: SpriteName,
        policy: PrivilegesPolicy,
    },
    Check {
        name: SpriteName,
    },
    NetworkPolicy {
        name: SpriteName,
    },
    SetNetworkPolicy {
        name: SpriteName,
        policy: NetworkPolicy,
    },
    DiskUsage {
        name: SpriteName,
    },
    Checkpoint {
        name: SpriteName,
        comment: String,
    },
    Checkpoints {
        name: SpriteName,
    },
    CheckpointInfo {
        name: SpriteName,
        id: CheckpointId,
    },
    DeleteCheckpoint {
        name: SpriteName,
        id: CheckpointId,
    },
    Restore {
        name: SpriteName,
        target: CheckpointId,
    },
    Diff {
        name: SpriteName,
        from: CheckpointId,
        to: Option<CheckpointId>,
    },
    Sessions {
        name: SpriteName,
    },
    KillSession {
        name: SpriteName,
        session: u64,
        signal: i32,
    },
    Run {
        name: SpriteName,
        argv: Vec<String>,
        #[serde(with = "base64_bytes")]
        stdin: Vec<u8>,
    },
    Ports {
        name: SpriteName,
    },
    Services {
        name: SpriteName,
    },
    SaveImage {
        name: SpriteName,
        id: CheckpointId,
        image: String,
    },
    RemoveImage {
        image: String,
    },
    Replication {
        name: SpriteName,
    },
    Replicate {
        name: SpriteName,
        every: Duration,
    },
    Evict {
        name: SpriteName,
    },
    Adopt {
        name: SpriteName,
    },
    Release {
        name: SpriteName,
    },
    Prefetch {
        name: SpriteName,
    },
    HandOver {
        name: SpriteName,
    },
    Stay {
        name: SpriteName,
    },
    Arrive {
        name: SpriteName,
    },
    Hold {
        names: Vec<SpriteName>,
        sent_at: u64,
    },
    Forget {
        name: SpriteName,
    },
    Prune {
        name: SpriteName,
    },
    ForgetDestroyed,
    PoolUsedBytes,
    Capacity,
    /// A call of a sprite's files, as it is or (`checkpoint`) as it was.
    Files {
        name: SpriteName,
        checkpoint: Option<CheckpointId>,
        call: FileCall,
    },
}

/// What a host says of itself, once, to a server that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Its sandbox runtime's name.
    pub runtime: String,
    /// Whether it keeps copies of its sprites in an object store.
    pub replicates: bool,
}

/// An image as a host names it to another machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub name: String,
    pub hash: String,
}

/// The verb's result as JSON.
fn reply<T: Serialize>(result: crate::Result<T>) -> Result<Value, WireError> {
    let value = result.map_err(|e| WireError::from(&e))?;
    serde_json::to_value(value).map_err(|e| WireError::Fault {
        message: format!("cannot write the answer: {e}"),
    })
}

/// Makes `call` on `host`.
pub async fn answer(host: &dyn Verbs, call: Call) -> Result<Value, WireError> {
    use Call as C;
    match call {
        C::Describe => reply(Ok(Description {
            runtime: host.runtime_name().to_string(),
            replicates: host.replicates(),
        })),
        C::Create { name, opts } => reply(host.create(&name, opts).await),
        C::Get { name } => reply(host.get(&name).await),
        C::List => reply(host.list().await),
        C::Phase { name } => reply(host.phase(&name).await),
        C::Destroy { name } => reply(host.destroy(&name).await),
        C::ForkNamed {
            source,
            checkpoint,
            name,
            hostname,
        } => reply(host.fork_named(&source, checkpoint, &name, &hostname).await),
        C::SleepWarm { name } => reply(host.sleep_warm(&name).await),
        C::SleepCold { name } => reply(host.sleep_cold(&name).await),
        C::Wake { name } => reply(host.wake(&name).await),
        C::Restart { name } => reply(host.restart(&name).await),
        C::Upgrade { name } => reply(host.upgrade(&name).await),
        C::MemoryLimit { name } => reply(host.memory_limit(&name).await),
        C::SetMemoryLimit { name, bytes } => reply(host.set_memory_limit(&name, bytes).await),
        C::Privileges { name } => reply(host.privileges(&name).await),
        C::SetPrivileges { name, policy } => reply(host.set_privileges(&name, policy).await),
        C::Check { name } => reply(host.check(&name).await),
        C::NetworkPolicy { name } => reply(host.network_policy(&name).await),
        C::SetNetworkPolicy { name, policy } => reply(host.set_network_policy(&name, policy).await),
        C::DiskUsage { name } => reply(host.disk_usage(&name).await),
        C::Checkpoint { name, comment } => reply(host.checkpoint(&name, &comment).await),
        C::Checkpoints { name } => reply(host.checkpoints(&name).await),
        C::CheckpointInfo { name, id } => reply(host.checkpoint_info(&name, id).await),
        C::DeleteCheckpoint { name, id } => reply(host.delete_checkpoint(&name, id).await),
        C::Restore { name, target } => reply(host.restore(&name, target).await),
        C::Diff { name, from, to } => reply(host.diff(&name, from, to).await),
        C::Sessions { name } => reply(host.sessions(&name).await),
        C::KillSession {
            name,
            session,
            signal,
        } => reply(host.kill_session(&name, session, signal).await),
        C::Run { name, argv, stdin } => {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            reply(host.run(&name, &argv, &stdin).await)
        }
        C::Ports { name } => reply(host.ports(&name).await),
        C::Services { name } => reply(host.services(&name).await),
        C::SaveImage { name, id, image } => {
            let saved = host.save_image(&name, id, &image).await;
            reply(saved.map(|i| ImageRef {
                name: i.name,
                hash: i.hash,
            }))
        }
        C::RemoveImage { image } => reply(host.remove_image(&image).await),
        C::Replication { name } => reply(host.replication(&name).await),
        C::Replicate { name, every } => reply(host.replicate(&name, every).await),
        C::Evict { name } => reply(host.evict(&name).await),
        C::Adopt { name } => reply(host.adopt(&name).await),
        C::Release { name } => reply(host.release(&name).await),
        C::Prefetch { name } => reply(host.prefetch(&name).await),
        C::HandOver { name } => reply(host.hand_over(&name).await),
        C::Stay { name } => reply(host.stay(&name).await),
        C::Arrive { name } => reply(host.arrive(&name).await),
        C::Hold { names, sent_at } => reply(host.hold(&names, sent_at).await),
        C::Forget { name } => reply(host.forget(&name).await),
        C::Prune { name } => reply(host.prune(&name).await),
        C::ForgetDestroyed => reply(host.forget_destroyed().await),
        C::PoolUsedBytes => reply(host.pool_used_bytes().await),
        C::Capacity => reply(host.capacity().await),
        C::Files {
            name,
            checkpoint,
            call,
        } => match files_of(host, &name, checkpoint).await {
            Ok(files) => reply(files.answer(call).await),
            Err(e) => reply::<()>(Err(e)),
        },
    }
}

/// Sprite `name`'s files, as it is or (`checkpoint`) as it was.
pub async fn files_of(
    host: &dyn Verbs,
    name: &SpriteName,
    checkpoint: Option<CheckpointId>,
) -> crate::Result<crate::fs::Files> {
    match checkpoint {
        None => host.sprite_files(name).await,
        Some(id) => host.checkpoint_files(name, id).await,
    }
}

/// Bytes in JSON as base64: a third larger, where an array of numbers is
/// up to four times.
pub(crate) mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(from)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
