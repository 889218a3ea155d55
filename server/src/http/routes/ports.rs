//! `GET /v1/sprites/{name}/ports/watch`: a WebSocket that reports the TCP
//! ports a sprite listens on (`port_list`), then each one opened or
//! closed (`port_opened`, `port_closed`, with port, address and pid). It
//! ends when the sprite is destroyed or either side closes.

use axum::extract::ws::{Message, WebSocket};
use axum::extract::Path;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};

use super::answer::Cx;
use super::json::Upgrade;
use crate::domain::ports::{self, PortWatch};
use crate::error::ApiError;

pub(super) async fn watch(
    cx: Cx,
    Path(name): Path<String>,
    Upgrade(ws): Upgrade,
) -> Result<Response, ApiError> {
    let watch = ports::watch(&cx.state, &cx.caller, &name).await?;
    Ok(ws.on_upgrade(move |socket| pump(watch, socket)))
}

async fn pump(mut watch: PortWatch, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    loop {
        let event = tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            event = watch.next() => event,
        };
        let Some(event) = event else {
            // The sprite is gone.
            let _ = tx.send(Message::Close(None)).await;
            return;
        };
        if tx
            .send(Message::Text(event.to_text().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}
