//! A sprite's checkpoints as the API shows them: taken and restored with
//! progress lines (as the SDKs read them), listed with their ancestry,
//! deleted, and compared. Every change is announced on the organization's
//! event stream.

use sprites_wire::api::{Checkpoint, CheckpointDiff, Progress};
use vmhost::{CheckpointId, CheckpointInfo, SpriteName};

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// A checkpoint as the API shows it; `history` is its ancestry, newest first.
fn view(c: &CheckpointInfo, all: &[CheckpointInfo]) -> Checkpoint {
    let mut history = Vec::new();
    let mut parent = c.parent;
    while let Some(p) = parent {
        if history.len() > all.len() {
            break; // a cycle cannot happen, but a bound costs nothing
        }
        history.push(p.to_string());
        parent = all.iter().find(|x| x.id == p).and_then(|x| x.parent);
    }
    Checkpoint {
        id: c.id.to_string(),
        create_time: crate::db::iso_ms(c.created_at),
        comment: c.comment.clone(),
        history,
        parent: c.parent.map(|p| p.to_string()),
        auto: c.auto,
        hidden: c.hidden,
        is_auto: c.auto,
        source_id: c.parent.map(|p| p.to_string()),
        health: String::new(),
    }
}

/// A checkpoint id as the API spells it (`v3`); anything else names no
/// checkpoint.
pub fn checkpoint_id(id: &str) -> Result<CheckpointId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("checkpoint {id}")))
}

/// The last line of a stream that failed, worded as an error body would be.
pub fn error_line(e: ApiError) -> Progress {
    Progress::Error {
        error: e.public_message(),
    }
}

/// A checkpoint or a restore, checked and ready: [`Run::run`] does it,
/// saying each step.
pub struct Run {
    state: AppState,
    caller: Caller,
    name: String,
    host: SpriteName,
    what: What,
}

enum What {
    Take { comment: String },
    Restore { id: CheckpointId },
}

/// A checkpoint of the caller's sprite `name`, with `comment`.
pub async fn take(
    state: &AppState,
    caller: &Caller,
    name: &str,
    comment: String,
) -> Result<Run, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    if comment.len() > 1000 {
        return Err(ApiError::Invalid("comment: at most 1000 bytes".into()));
    }
    Ok(Run {
        state: state.clone(),
        caller: caller.clone(),
        name: name.to_string(),
        host,
        what: What::Take { comment },
    })
}

/// The caller's sprite `name` back to checkpoint `id` (the state before is
/// kept as a checkpoint of its own). An unknown checkpoint is an error
/// now, before anything is under way.
pub async fn restore(
    state: &AppState,
    caller: &Caller,
    name: &str,
    id: &str,
) -> Result<Run, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let id = checkpoint_id(id)?;
    state.host.checkpoint_info(&host, id).await?;
    Ok(Run {
        state: state.clone(),
        caller: caller.clone(),
        name: name.to_string(),
        host,
        what: What::Restore { id },
    })
}

impl Run {
    /// Does it, handing each progress line to `say`; the last one says how
    /// it ended.
    pub async fn run(self, say: impl Fn(Progress)) {
        let Run {
            state,
            caller,
            name,
            host,
            what,
        } = self;
        match what {
            What::Take { comment } => {
                say(Progress::info(format!("Creating checkpoint of {name}")));
                let started = std::time::Instant::now();
                match state.host.checkpoint(&host, &comment).await {
                    Ok(c) => {
                        state.metrics.checkpoint_took(started.elapsed());
                        let id = c.id.to_string();
                        let org = &caller.org_id;
                        let made = Some(id.clone());
                        state
                            .events
                            .publish(org, "checkpoint.created", &name, None, made);
                        say(Progress::Info {
                            data: format!("Checkpoint {id} created"),
                            id: Some(id.clone()),
                            backup: None,
                        });
                        say(Progress::complete(id));
                    }
                    Err(e) => say(error_line(e.into())),
                }
            }
            What::Restore { id } => {
                say(Progress::info(format!("Restoring {name} to {id}")));
                match state.host.restore(&host, id).await {
                    Ok((_, backup)) => {
                        state.events.publish(
                            &caller.org_id,
                            "checkpoint.restored",
                            &name,
                            Some("running"),
                            Some(id.to_string()),
                        );
                        say(Progress::Info {
                            data: format!("The state before is kept as checkpoint {}", backup.id),
                            id: None,
                            backup: Some(backup.id.to_string()),
                        });
                        say(Progress::complete(format!("Restored {id}")));
                    }
                    Err(e) => say(error_line(e.into())),
                }
            }
        }
    }
}

/// The checkpoints of the caller's sprite, newest first: without the
/// replication's own unless `hidden`; only checkpoint `history` and its
/// descendants when given.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    name: &str,
    hidden: bool,
    history: Option<&str>,
) -> Result<Vec<Checkpoint>, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let all = state.host.checkpoints(&host).await?;
    let mut views: Vec<Checkpoint> = all
        .iter()
        .rev()
        .filter(|c| hidden || !c.hidden)
        .map(|c| view(c, &all))
        .collect();
    if let Some(h) = history.filter(|h| !h.is_empty()) {
        views.retain(|v| v.id == h || v.history.iter().any(|x| x == h));
    }
    Ok(views)
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    name: &str,
    id: &str,
) -> Result<Checkpoint, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let id = checkpoint_id(id)?;
    let all = state.host.checkpoints(&host).await?;
    let c = all
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("checkpoint {id}")))?;
    Ok(view(c, &all))
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    name: &str,
    id: &str,
) -> Result<(), ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let id = checkpoint_id(id)?;
    state.host.delete_checkpoint(&host, id).await?;
    let id = Some(id.to_string());
    state
        .events
        .publish(&caller.org_id, "checkpoint.deleted", name, None, id);
    Ok(())
}

/// What changed from checkpoint `id` to checkpoint `to`, or to the disk now.
pub async fn diff(
    state: &AppState,
    caller: &Caller,
    name: &str,
    id: &str,
    to: Option<&str>,
) -> Result<CheckpointDiff, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let from = checkpoint_id(id)?;
    let to = to.map(checkpoint_id).transpose()?;
    let changes = state.host.diff(&host, from, to).await?;
    Ok(CheckpointDiff {
        from: from.to_string(),
        to: to.map(|t| t.to_string()),
        changes,
    })
}
