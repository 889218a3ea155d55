//! `sprite proxy`: local TCP ports forwarded into a sprite over the API's
//! proxy WebSocket, one WebSocket per connection; with `--stdio`, this
//! process's stdin and stdout are the connection (an SSH `ProxyCommand`).

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use sprites_wire::api::{ProxyStatus, ProxyTarget};

use crate::config::Config;
use crate::exec::{open_ws, Ws};

/// How long a connection stays open after its local input ended.
const LINGER: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the proxy WebSocket and asks for `port` inside the sprite.
async fn open(cfg: &Config, sprite: &str, port: u16) -> anyhow::Result<Ws> {
    let mut ws = open_ws(
        cfg,
        &format!("/v1/sprites/{}/proxy", sprites_wire::client::escape(sprite)),
    )
    .await?;
    let hello = ProxyTarget {
        host: "localhost".into(),
        port,
    };
    ws.send(Message::Text(serde_json::to_string(&hello)?.into()))
        .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ProxyStatus>(&t)? {
                ProxyStatus::Connected { .. } => return Ok(ws),
                ProxyStatus::Error { message } => anyhow::bail!("{message}"),
            },
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the server closed the connection"),
        }
    }
}

/// Copies between a local connection and the WebSocket until the sprite's
/// side ends. The end of local input is not an end: a WebSocket cannot
/// half-close, and the answer to what was sent may still be on its way;
/// it gets [`LINGER`] to arrive.
async fn splice<R, W>(ws: Ws, mut rd: R, mut wr: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    let up = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        // Local input ended: give the other side time to finish.
        tokio::time::sleep(LINGER).await;
        let _ = tx.send(Message::Close(None)).await;
    };
    let down = async {
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Binary(b)
                    if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() =>
                {
                    break
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Listens on `local` (on loopback) and forwards each connection to
/// `remote` in the sprite, until interrupted.
pub async fn listen(cfg: &Config, sprite: &str, local: u16, remote: u16) -> anyhow::Result<()> {
    // Fail early, with the server's words, if the sprite cannot be reached.
    drop(open(cfg, sprite, remote).await?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", local))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{local}: {e}"))?;
    let bound = listener.local_addr()?.port();
    eprintln!("Forwarding 127.0.0.1:{bound} to port {remote} of {sprite}; Ctrl+C stops.");
    loop {
        let (conn, _) = listener.accept().await?;
        let _ = conn.set_nodelay(true);
        let cfg = cfg.clone();
        let sprite = sprite.to_string();
        tokio::spawn(async move {
            match open(&cfg, &sprite, remote).await {
                Ok(ws) => {
                    let (rd, wr) = conn.into_split();
                    splice(ws, rd, wr).await;
                }
                Err(e) => eprintln!("sprite: {e:#}"),
            }
        });
    }
}

/// One connection to `remote` in the sprite on stdin and stdout.
pub async fn stdio(cfg: &Config, sprite: &str, remote: u16) -> anyhow::Result<()> {
    let ws = open(cfg, sprite, remote).await?;
    splice(ws, tokio::io::stdin(), tokio::io::stdout()).await;
    Ok(())
}
