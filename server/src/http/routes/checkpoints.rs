//! Checkpoints of a sprite: `POST /checkpoint` and `POST
//! /checkpoints/{id}/restore` answer NDJSON progress lines (`{"type":
//! "info"|"complete"|"error", ...}`) as the SDKs read them; list, get and
//! delete are plain JSON; `diff` tells which paths changed.

use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sprites_wire::api::{Checkpoint, CheckpointDiff, NewCheckpoint, Progress};
use sprites_wire::client::path;
use vmhost::{CheckpointId, CheckpointInfo};

use super::json::{Body, Query};
use super::Routes;
use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .post(path::CHECKPOINT, create)
        .get(path::CHECKPOINTS, list)
        .get(path::CHECKPOINT_ONE, show)
        .delete(path::CHECKPOINT_ONE, remove)
        .post(path::RESTORE, restore)
        .get(path::DIFF, diff)
}

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
    }
}

pub(super) fn checkpoint_id(id: &str) -> Result<CheckpointId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("checkpoint {id}")))
}

/// An NDJSON response whose lines are written as `work` reports them.
pub(super) fn ndjson<T, F, Fut>(work: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<T>();
    // The work finishes even if the client goes away.
    tokio::spawn(work(tx));
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| {
            let mut text = serde_json::to_string(&line).expect("progress lines serialize");
            text.push('\n');
            (Ok::<_, std::convert::Infallible>(text), rx)
        })
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-ndjson")],
        HttpBody::from_stream(lines),
    )
        .into_response()
}

/// The last line of a stream that failed, worded as an error body would be.
pub(super) fn error_line(e: ApiError) -> Progress {
    Progress::Error {
        error: e.public_message(),
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Body<NewCheckpoint>, ApiError>,
) -> Result<Response, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    // The body is optional: no comment is an empty one.
    let comment = body.map(|Body(b)| b.comment).unwrap_or_default();
    if comment.len() > 1000 {
        return Err(ApiError::Invalid("comment: at most 1000 bytes".into()));
    }
    Ok(ndjson(move |tx| async move {
        let _ = tx.send(Progress::info(format!("Creating checkpoint of {name}")));
        let started = std::time::Instant::now();
        match state.host.checkpoint(&host_name, &comment).await {
            Ok(c) => {
                state.metrics.checkpoint_took(started.elapsed());
                state.events.publish(
                    &caller.org_id,
                    "checkpoint.created",
                    &name,
                    None,
                    Some(c.id.to_string()),
                );
                let _ = tx.send(Progress::Info {
                    data: format!("Checkpoint {} created", c.id),
                    id: Some(c.id.to_string()),
                    backup: None,
                });
                let _ = tx.send(Progress::complete(c.id.to_string()));
            }
            Err(e) => {
                let _ = tx.send(error_line(e.into()));
            }
        }
    }))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Vec<Checkpoint>>, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    let all = state.host.checkpoints(&host_name)?;
    // Replication's own checkpoints are there for recovery, not for people.
    let hidden = q.get("hidden").is_some_and(|h| h == "true");
    let mut views: Vec<Checkpoint> = all
        .iter()
        .rev()
        .filter(|c| hidden || !c.hidden)
        .map(|c| view(c, &all))
        .collect();
    if let Some(h) = q.get("history").filter(|h| !h.is_empty()) {
        views.retain(|v| v.id == *h || v.history.contains(h));
    }
    Ok(Json(views))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Checkpoint>, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    let id = checkpoint_id(&id)?;
    let all = state.host.checkpoints(&host_name)?;
    let c = all
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("checkpoint {id}")))?;
    Ok(Json(view(c, &all)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    let id = checkpoint_id(&id)?;
    state.host.delete_checkpoint(&host_name, id).await?;
    let id = Some(id.to_string());
    state
        .events
        .publish(&caller.org_id, "checkpoint.deleted", &name, None, id);
    Ok(StatusCode::NO_CONTENT)
}

async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    let id = checkpoint_id(&id)?;
    // Unknown checkpoints are an HTTP 404, before any streaming starts.
    state.host.checkpoint_info(&host_name, id)?;
    Ok(ndjson(move |tx| async move {
        let _ = tx.send(Progress::info(format!("Restoring {name} to {id}")));
        match state.host.restore(&host_name, id).await {
            Ok((_, backup)) => {
                state.events.publish(
                    &caller.org_id,
                    "checkpoint.restored",
                    &name,
                    Some("running"),
                    Some(id.to_string()),
                );
                let _ = tx.send(Progress::Info {
                    data: format!("The state before is kept as checkpoint {}", backup.id),
                    id: None,
                    backup: Some(backup.id.to_string()),
                });
                let _ = tx.send(Progress::complete(format!("Restored {id}")));
            }
            Err(e) => {
                let _ = tx.send(error_line(e.into()));
            }
        }
    }))
}

#[derive(Deserialize)]
struct DiffQuery {
    /// Another checkpoint; the sprite's disk now when absent.
    to: Option<String>,
}

async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<CheckpointDiff>, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    let from = checkpoint_id(&id)?;
    let to = q.to.as_deref().map(checkpoint_id).transpose()?;
    let changes = state.host.diff(&host_name, from, to).await?;
    Ok(Json(CheckpointDiff {
        from: from.to_string(),
        to: to.map(|t| t.to_string()),
        changes,
    }))
}
