//! `/v1/sprites/{name}/proxy`: a TCP connection into the sprite over a
//! WebSocket, as `@fly/sprites`' `proxyPort` and `sprite proxy` use it.
//! The client's first message is text `{"host": "localhost", "port": N}`;
//! the answer is `{"status": "connected"}` (or `{"status": "error",
//! "message": ...}`), then binary messages carry the connection's bytes
//! both ways until either side closes.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::Path;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use sprites_wire::api::{ProxyStatus, ProxyTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::answer::Cx;
use super::json::Upgrade;
use super::socket::{Inbox, Outbox};
use crate::domain::sessions::{self, Forward};
use crate::error::ApiError;

/// How long the client has to say where to connect.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn open(
    cx: Cx,
    Path(name): Path<String>,
    Upgrade(ws): Upgrade,
) -> Result<Response, ApiError> {
    // A forwarded connection is work in flight: the sprite stays awake.
    let forward = sessions::forward(&cx.state, &cx.caller, &name).await?;
    Ok(ws.on_upgrade(move |socket| splice(socket, forward)))
}

async fn say(socket: &mut WebSocket, status: ProxyStatus) -> Result<(), axum::Error> {
    let text = serde_json::to_string(&status).expect("statuses serialize");
    socket.send(Message::Text(text.into())).await
}

async fn splice(mut socket: WebSocket, forward: Forward) {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<ProxyTarget>(&t),
        _ => return,
    };
    let target = match hello {
        Ok(t) => t,
        Err(e) => {
            let _ = say(
                &mut socket,
                ProxyStatus::Error {
                    message: format!("first message: {e}"),
                },
            )
            .await;
            return;
        }
    };
    let stream = match forward.connect(&target.host, target.port).await {
        Ok(s) => s,
        Err(e) => {
            let message = e.public_message();
            let _ = say(&mut socket, ProxyStatus::Error { message }).await;
            return;
        }
    };
    let connected = ProxyStatus::Connected {
        host: target.host,
        port: target.port,
    };
    if say(&mut socket, connected).await.is_err() {
        return;
    }
    let (mut tx, mut rx) = socket.split();
    pipe(&mut tx, &mut rx, stream, (&forward, false)).await;
    let _ = tx.send(Message::Close(None)).await;
}

/// Copies a connection's bytes to the client as binary messages and the
/// client's binary messages to it, until the connection ends or the client
/// goes (a close, or its messages' end). An empty binary message from the
/// client ends its side only when `half_close` (the control socket's
/// `proxy`, whose messages mean nothing else; the port proxy passes them
/// on as nothing). The port proxy and the control socket's `proxy` both
/// run here.
pub(super) async fn pipe(
    tx: &mut impl Outbox,
    rx: &mut impl Inbox,
    stream: vmhost::Connection,
    (forward, half_close): (&Forward, bool),
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let up = async {
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Binary(b) if b.is_empty() && half_close => {
                    let _ = wr.shutdown().await;
                }
                Message::Binary(b) if b.is_empty() => {}
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    forward.used();
                    if tx
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
