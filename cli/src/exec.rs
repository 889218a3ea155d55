//! `sprite exec`: a command in the sprite over the exec WebSocket, with this
//! process's stdin, stdout and stderr wired to its streams.

use futures_util::{SinkExt, StreamExt};
use std::io::Write;

use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::config::Config;

pub async fn run(
    cfg: &Config,
    sprite: &str,
    cmd: &[String],
    env: &[String],
    dir: Option<&str>,
    tty: bool,
) -> anyhow::Result<i32> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for a in cmd {
        q.append_pair("cmd", a);
    }
    for e in env {
        anyhow::ensure!(e.contains('='), "--env {e:?}: use NAME=VALUE");
        q.append_pair("env", e);
    }
    if let Some(d) = dir {
        q.append_pair("dir", d);
    }
    if tty {
        let (rows, cols) = terminal_size();
        q.append_pair("tty", "true");
        q.append_pair("rows", &rows.to_string());
        q.append_pair("cols", &cols.to_string());
    }
    let ws_base = cfg.url.replacen("http", "ws", 1);
    let url = format!("{ws_base}/v1/sprites/{sprite}/exec?{}", q.finish());
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", cfg.token).parse()?);
    let (ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(c) => c,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(body);
            anyhow::bail!("{message}");
        }
        Err(e) => return Err(e.into()),
    };
    let (mut tx, mut rx) = ws.split();
    let stdin_pump = async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if !tty {
                        let _ = tx.send(Message::Binary(vec![4].into())).await;
                    }
                    break;
                }
                Ok(n) => {
                    let msg = if tty {
                        buf[..n].to_vec()
                    } else {
                        let mut m = vec![0];
                        m.extend_from_slice(&buf[..n]);
                        m
                    };
                    if tx.send(Message::Binary(msg.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Keep the sink alive (dropping it would close the socket).
        std::future::pending::<()>().await
    };
    // Output is written synchronously: a terminal or pipe takes it at once,
    // and nothing is left in a buffer when the process exits.
    let output = async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        while let Some(msg) = rx.next().await {
            match msg? {
                Message::Binary(b) if tty => out.write_all(&b)?,
                Message::Binary(b) => match b.first() {
                    Some(1) => out.write_all(&b[1..])?,
                    Some(2) => err.write_all(&b[1..])?,
                    Some(3) => {
                        out.flush()?;
                        return Ok(i32::from(b.get(1).copied().unwrap_or(0)));
                    }
                    _ => {}
                },
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["type"] == "exit" {
                        out.flush()?;
                        return Ok(v["exit_code"].as_i64().unwrap_or(0) as i32);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
            out.flush()?;
        }
        anyhow::bail!("the connection ended before the command's exit code")
    };
    tokio::select! {
        r = output => r,
        _ = stdin_pump => unreachable!("the stdin pump never ends by itself"),
    }
}

fn terminal_size() -> (u16, u16) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 0 && ws.ws_col > 0 {
        (ws.ws_row, ws.ws_col)
    } else {
        (24, 80)
    }
}
