//! Commands and terminals in a sprite over the exec WebSocket.
//!
//! - `sprite exec` wires this process's stdin, stdout and stderr to the
//!   command's streams and exits with its code.
//! - `sprite console` and `sprite sessions attach` put the local terminal in
//!   raw mode, forward window-size changes, and detach on Ctrl+\ (the
//!   session keeps running in the sprite and can be attached again).

use std::io::Write;
use std::os::fd::AsFd;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use sprites_wire::api::{frame, ExecMessage};

use crate::config::Config;

/// Ctrl+\ detaches an interactive session.
const DETACH: u8 = 0x1c;

/// What to connect to.
pub enum Target<'a> {
    New {
        cmd: &'a [String],
        env: &'a [String],
        dir: Option<&'a str>,
        tty: bool,
    },
    Attach(&'a str),
}

/// How a session ended for this client.
pub enum Ended {
    Exited(i32),
    Detached(String),
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(cfg: &Config, sprite: &str, target: &Target<'_>) -> anyhow::Result<Ws> {
    let path = match target {
        Target::Attach(id) => format!("/v1/sprites/{sprite}/exec/{id}"),
        Target::New { cmd, env, dir, tty } => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for a in cmd.iter() {
                q.append_pair("cmd", a);
            }
            for e in env.iter() {
                anyhow::ensure!(e.contains('='), "--env {e:?}: use NAME=VALUE");
                q.append_pair("env", e);
            }
            if let Some(d) = dir {
                q.append_pair("dir", d);
            }
            if *tty {
                let (rows, cols) = terminal_size();
                q.append_pair("tty", "true");
                q.append_pair("rows", &rows.to_string());
                q.append_pair("cols", &cols.to_string());
            }
            format!("/v1/sprites/{sprite}/exec?{}", q.finish())
        }
    };
    // A sprite kept in the object store comes back before the command
    // starts: how far it is, said on stderr meanwhile.
    let opened = open_ws(cfg, &path);
    tokio::pin!(opened);
    let mut said = false;
    let ws = tokio::select! {
        ws = &mut opened => ws,
        _ = say_fetch_progress(cfg, sprite, &mut said) => unreachable!("says until stopped"),
    };
    if said {
        eprintln!();
    }
    ws
}

/// Says, on one line of stderr, how much of the sprite's disk has come back
/// from the object store, while it does; never returns. `said`: whether
/// anything was.
async fn say_fetch_progress(cfg: &Config, sprite: &str, said: &mut bool) {
    use sprites_wire::api::ReplicationState;
    let api = crate::api::Api::new(&cfg.url, &cfg.token);
    let call = sprites_wire::client::sprite(sprite);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Ok(now) = api.run(&call).await else {
            continue;
        };
        let r = now.replication;
        if r.state != ReplicationState::Fetching {
            continue;
        }
        eprint!(
            "\r{sprite} is coming back from the object store: {} of {}",
            sprites_wire::human_bytes(r.fetched_bytes.unwrap_or(0)),
            sprites_wire::human_bytes(r.fetch_total_bytes.unwrap_or(0))
        );
        let _ = std::io::stderr().flush();
        *said = true;
    }
}

/// A WebSocket to the API at `path`, authenticated; a refusal is an error
/// in the server's words.
pub async fn open_ws(cfg: &Config, path: &str) -> anyhow::Result<Ws> {
    let url = format!("{}{path}", cfg.url.replacen("http", "ws", 1));
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", cfg.token).parse()?);
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            let message = serde_json::from_str::<sprites_wire::api::ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or(body);
            anyhow::bail!("{message}")
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs a command with this process's streams; returns its exit code.
pub async fn run(cfg: &Config, sprite: &str, target: Target<'_>) -> anyhow::Result<i32> {
    let tty = matches!(target, Target::New { tty: true, .. });
    let ws = connect(cfg, sprite, &target).await?;
    match pump(ws, tty, false).await? {
        Ended::Exited(code) => Ok(code),
        Ended::Detached(_) => unreachable!("only interactive sessions detach"),
    }
}

/// An interactive terminal session: raw mode, resizes, Ctrl+\ to detach.
pub async fn interactive(cfg: &Config, sprite: &str, target: Target<'_>) -> anyhow::Result<Ended> {
    let ws = connect(cfg, sprite, &target).await?;
    let _raw = RawMode::enter()?;
    pump(ws, true, true).await
}

async fn pump(ws: Ws, tty: bool, interactive: bool) -> anyhow::Result<Ended> {
    let (mut tx, mut rx) = ws.split();
    let (detach_tx, mut detach_rx) = tokio::sync::mpsc::channel::<()>(1);
    let input = async move {
        let mut stdin = tokio::io::stdin();
        let mut winch =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let resized = async {
                match winch.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = resized, if interactive => {
                    let (rows, cols) = terminal_size();
                    let msg = ExecMessage::Resize { rows, cols }.to_text();
                    if tx.send(Message::Text(msg.into())).await.is_err() {
                        break;
                    }
                }
                read = stdin.read(&mut buf) => match read {
                    Ok(0) | Err(_) => {
                        if !tty {
                            let _ = tx.send(Message::Binary(vec![frame::STDIN_EOF].into())).await;
                        }
                        break;
                    }
                    Ok(n) => {
                        let mut data = &buf[..n];
                        if interactive {
                            if let Some(at) = data.iter().position(|b| *b == DETACH) {
                                data = &data[..at];
                                if !data.is_empty() {
                                    let _ = tx.send(Message::Binary(data.to_vec().into())).await;
                                }
                                // Detached before the close goes out: whatever the
                                // server answers to it is no longer an error.
                                let _ = detach_tx.send(()).await;
                                let _ = tx.send(Message::Close(None)).await;
                                break;
                            }
                        }
                        let msg = if tty {
                            data.to_vec()
                        } else {
                            let mut m = vec![frame::STDIN];
                            m.extend_from_slice(data);
                            m
                        };
                        if tx.send(Message::Binary(msg.into())).await.is_err() {
                            break;
                        }
                    }
                },
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
        let mut session = String::new();
        loop {
            let msg = tokio::select! {
                biased;
                _ = detach_rx.recv() => return Ok(Ended::Detached(session)),
                m = rx.next() => m,
            };
            let Some(msg) = msg else { break };
            match msg? {
                Message::Binary(b) if tty => out.write_all(&b)?,
                Message::Binary(b) => match b.first().copied() {
                    Some(frame::STDOUT) => out.write_all(&b[1..])?,
                    Some(frame::STDERR) => err.write_all(&b[1..])?,
                    Some(frame::EXIT) => {
                        out.flush()?;
                        return Ok(Ended::Exited(i32::from(b.get(1).copied().unwrap_or(0))));
                    }
                    _ => {}
                },
                Message::Text(t) => match serde_json::from_str::<ExecMessage>(&t) {
                    Ok(ExecMessage::Exit { exit_code }) => {
                        out.flush()?;
                        return Ok(Ended::Exited(exit_code));
                    }
                    Ok(ExecMessage::SessionInfo { session_id, .. }) => session = session_id,
                    _ => {}
                },
                Message::Close(_) => break,
                _ => {}
            }
            out.flush()?;
        }
        anyhow::bail!("the connection ended before the command's exit code")
    };
    tokio::select! {
        r = output => r,
        _ = input => unreachable!("the input pump never ends by itself"),
    }
}

/// The local terminal in raw mode while it lives; restored when dropped.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> anyhow::Result<RawMode> {
        let stdin = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return Ok(RawMode(None)); // not a terminal: nothing to change
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw)?;
        Ok(RawMode(Some(saved)))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let stdin = std::io::stdin();
            let _ = nix::sys::termios::tcsetattr(
                stdin.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
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
    let ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 0 && ws.ws_col > 0 {
        (ws.ws_row, ws.ws_col)
    } else {
        (24, 80)
    }
}
