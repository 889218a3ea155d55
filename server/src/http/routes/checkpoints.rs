//! Checkpoints of a sprite (see `domain::checkpoints`): `POST /checkpoint`
//! and `POST /checkpoints/{id}/restore` answer NDJSON progress lines
//! (`{"type": "info"|"complete"|"error", ...}`) as the SDKs read them;
//! list, get and delete are plain JSON; `diff` tells which paths changed.

use axum::body::Body as HttpBody;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sprites_wire::api::{Checkpoint, CheckpointDiff, NewCheckpoint};

use super::answer::{Answer, Cx, Done};
use super::json::{OptionalBody, Query};
use crate::domain::checkpoints::{self, Run};
use crate::error::ApiError;

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
    lines(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    }))
}

/// An NDJSON response of the lines `rx` receives, until its sender ends
/// (or the client goes, which drops `rx`).
pub(super) fn ndjson_of<T: Serialize + Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> Response {
    lines(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    }))
}

fn lines<T: Serialize>(items: impl futures_util::Stream<Item = T> + Send + 'static) -> Response {
    use futures_util::StreamExt;
    let text = items.map(|line| {
        let mut text = serde_json::to_string(&line).expect("NDJSON lines serialize");
        text.push('\n');
        Ok::<_, std::convert::Infallible>(text)
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-ndjson")],
        HttpBody::from_stream(text),
    )
        .into_response()
}

/// A checkpoint or a restore, its progress streamed as it goes.
fn progress(run: Run) -> Response {
    ndjson(move |tx| async move {
        run.run(move |line| {
            let _ = tx.send(line);
        })
        .await
    })
}

pub(super) async fn create(
    cx: Cx,
    Path(name): Path<String>,
    OptionalBody(req): OptionalBody<NewCheckpoint>,
) -> Result<Response, ApiError> {
    Ok(progress(
        checkpoints::take(&cx.state, &cx.caller, &name, req.comment).await?,
    ))
}

pub(super) async fn restore(
    cx: Cx,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(progress(
        checkpoints::restore(&cx.state, &cx.caller, &name, &id).await?,
    ))
}

pub(super) async fn list(
    cx: Cx,
    Path(name): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Answer<Vec<Checkpoint>> {
    // `hidden=true`: with replication's own; `history`: only this
    // checkpoint and those taken on top of it.
    let hidden = q.get("hidden").is_some_and(|h| h == "true");
    let history = q.get("history").map(String::as_str);
    Ok(Json(
        checkpoints::list(&cx.state, &cx.caller, &name, hidden, history).await?,
    ))
}

pub(super) async fn show(cx: Cx, Path((name, id)): Path<(String, String)>) -> Answer<Checkpoint> {
    Ok(Json(
        checkpoints::get(&cx.state, &cx.caller, &name, &id).await?,
    ))
}

pub(super) async fn remove(cx: Cx, Path((name, id)): Path<(String, String)>) -> Done {
    checkpoints::delete(&cx.state, &cx.caller, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    /// Another checkpoint; the sprite's disk now when absent.
    to: Option<String>,
}

pub(super) async fn diff(
    cx: Cx,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> Answer<CheckpointDiff> {
    let to = q.to.as_deref();
    Ok(Json(
        checkpoints::diff(&cx.state, &cx.caller, &name, &id, to).await?,
    ))
}
