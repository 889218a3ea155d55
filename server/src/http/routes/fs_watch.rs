//! `GET /v1/sprites/{name}/fs/watch`: a WebSocket that reports changes to
//! a sprite's files as they happen (`domain::files::Watcher`). The client
//! subscribes with paths (each subscribe replaces the last); every change
//! is an `event` message; what cannot be watched is an `error` message and
//! the connection goes on. It ends when the sprite is destroyed or either
//! side closes.

use axum::extract::ws::{Message, WebSocket};
use axum::extract::Path;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use sprites_wire::fs::{absolute, WatchMessage, WatchRequest};
use vmhost::FsWatch;

use super::answer::Cx;
use super::json::Upgrade;
use crate::domain::files::{self, Watcher};
use crate::error::ApiError;

pub(super) async fn watch(
    cx: Cx,
    Path(name): Path<String>,
    Upgrade(ws): Upgrade,
) -> Result<Response, ApiError> {
    let watcher = files::watcher(&cx.state, &cx.caller, &name).await?;
    Ok(ws.on_upgrade(move |socket| pump(watcher, socket)))
}

async fn next_change(w: &mut Option<FsWatch>) -> Option<vmhost::Result<vmhost::FsEvent>> {
    match w {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

fn text(m: &WatchMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

async fn pump(watcher: Watcher, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let mut watching: Option<FsWatch> = None;
    loop {
        let reply = tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<WatchRequest>(&t) {
                    Ok(WatchRequest::Subscribe { paths, recursive, working_dir }) => {
                        let paths: Vec<String> = paths
                            .iter()
                            .map(|p| absolute(p, working_dir.as_deref()))
                            .collect();
                        match watcher.watch(&paths, recursive).await {
                            Ok(w) => {
                                watching = Some(w);
                                WatchMessage::Subscribed { paths }
                            }
                            Err(e) => WatchMessage::Error { message: e.public_message() },
                        }
                    }
                    Err(e) => WatchMessage::Error { message: format!("not a watch request: {e}") },
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            change = next_change(&mut watching) => match change {
                Some(Ok(e)) => WatchMessage::Event {
                    path: e.path,
                    event: e.change.as_str().into(),
                    timestamp: crate::db::iso_ms(e.at),
                    size: e.size,
                    is_dir: e.is_dir,
                },
                Some(Err(e)) => WatchMessage::Error { message: ApiError::from(e).public_message() },
                // The sprite is gone.
                None => {
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                }
            },
        };
        if tx.send(text(&reply)).await.is_err() {
            return;
        }
    }
}
