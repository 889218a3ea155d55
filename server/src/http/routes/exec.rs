//! `/v1/sprites/{name}/exec`: commands and terminal sessions over a
//! WebSocket, in the framing of the public Sprites API.
//!
//! - Without a TTY, every binary message starts with a stream byte: 0 stdin,
//!   1 stdout, 2 stderr, 3 exit (its code in the next byte), 4 stdin EOF.
//! - With a TTY, binary messages are raw terminal bytes both ways, the
//!   client resizes with a text message `{"type":"resize","cols","rows"}`,
//!   and the exit comes as `{"type":"exit","exit_code":N}`.
//! - The server first sends `{"type":"session_info",...}` naming the session,
//!   so a client can re-attach with `/exec/{session}` after a disconnect.
//!
//! The command is started before the upgrade, so a bad request or a missing
//! sprite is an ordinary HTTP error. The two pumps end together.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use sprites_wire::api::{frame, ExecMessage, KillSession};
use vmhost::{Chunk, ExecSpec, WinSize};

use super::json::{is_true, OptionalBody, Query, Upgrade};
use super::socket::{Inbox, Outbox};
use crate::domain::caller::Caller;
use crate::domain::sessions::{self, Watch};
use crate::error::ApiError;
use crate::AppState;

/// The query of a new command: `cmd` repeated, `env=K=V` repeated, `dir`,
/// `tty`, `rows`, `cols`; `detachable` (it keeps running when its clients
/// go, as a terminal does) and `max_run_after_disconnect` (then for that
/// long at most).
fn parse_exec(query: &str) -> Result<ExecSpec, ApiError> {
    exec_spec(form_urlencoded::parse(query.as_bytes()))
}

/// [`parse_exec`] of a query already split into names and values.
pub(super) fn exec_spec<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Result<ExecSpec, ApiError> {
    let mut spec = ExecSpec::default();
    let (mut tty, mut rows, mut cols) = (false, 24u16, 80u16);
    let num = |k: &str, v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::Invalid(format!("{k}: a positive number")))
    };
    for (k, v) in pairs {
        let v = v.as_ref();
        match k.as_ref() {
            "cmd" => spec.argv.push(v.to_string()),
            "env" => {
                let (name, value) = v
                    .split_once('=')
                    .ok_or_else(|| ApiError::Invalid(format!("env {v:?}: use NAME=VALUE")))?;
                spec.env.push((name.to_string(), value.to_string()));
            }
            "dir" => spec.dir = Some(v.to_string()),
            "tty" => tty = is_true(v),
            "detachable" => spec.detachable = is_true(v),
            "max_run_after_disconnect" => {
                let d = sprites_wire::parse_duration(v).ok_or_else(|| {
                    ApiError::Invalid("max_run_after_disconnect: like 30s, 5m or 0".into())
                })?;
                spec.linger_ms = Some(d.as_millis() as u64);
            }
            "rows" => rows = num("rows", v)?,
            "cols" => cols = num("cols", v)?,
            _ => {} // `path`, `stdin` and others the SDKs send
        }
    }
    if spec.argv.is_empty() {
        return Err(ApiError::Invalid(
            "cmd: give the command, one `cmd` per argument".into(),
        ));
    }
    spec.tty = tty.then_some(WinSize { rows, cols });
    Ok(spec)
}

pub(super) async fn exec_or_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // A plain GET lists the sessions; an upgrade starts a command, or
    // with `id` (the older form of attach) joins session `id`.
    let Ok(ws) = ws else {
        let list = sessions::list(&state, &caller, &name).await?;
        return Ok(announced(Json(list).into_response()));
    };
    let query = query.unwrap_or_default();
    if let Some((_, id)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "id") {
        return attach_to(&state, &caller, &name, &id, ws).await;
    }
    let spec = parse_exec(&query)?;
    let tty = spec.tty.is_some();
    let command = spec.argv.join(" ");
    let (stream, watch) = sessions::start(&state, &caller, &name, spec).await?;
    Ok(announced(ws.on_upgrade(move |socket| {
        pump(socket, stream, tty, command, watch)
    })))
}

/// What this server's exec speaks, in the headers the SDKs read: the
/// capabilities of its socket (`signal` messages) and its version.
pub(super) fn announced(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert("x-sprite-capabilities", HeaderValue::from_static("signal"));
    headers.insert(
        "sprite-version",
        HeaderValue::from_static(sprites_wire::VERSION),
    );
    res
}

/// A command over plain HTTP, for clients without WebSockets: the request
/// body is its stdin (with `stdin=true`; none otherwise), and the response
/// streams one chunk per frame in the WebSocket's non-TTY framing: 1 and 2
/// with output, then 3 with the exit code.
pub(super) async fn exec_http(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let spec = parse_exec(&query)?;
    if spec.tty.is_some() {
        return Err(ApiError::Invalid(
            "tty: a terminal needs the WebSocket exec; HTTP exec has none".into(),
        ));
    }
    let stdin = form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "stdin" && is_true(&v));
    let (stream, watch) = sessions::start(&state, &caller, &name, spec).await?;
    let vmhost::Stream {
        mut input, output, ..
    } = stream;
    // The input half stays open until the output is done: closing it
    // would tell the sprite that this client left.
    let (done, output_done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if stdin {
            let mut chunks = body.into_data_stream();
            while let Some(Ok(chunk)) = chunks.next().await {
                if input.stdin(&chunk).await.is_err() {
                    break; // the command is gone; its exit still comes
                }
            }
        }
        let _ = input.close_stdin().await;
        let _ = output_done.await;
    });
    // Frames are read ahead, so that output of one stream that piles up
    // while the previous chunk goes out is merged into one chunk.
    let (frames_tx, frames) = tokio::sync::mpsc::channel::<Chunk>(256);
    tokio::spawn(async move {
        let mut output = output;
        // The sprite went away mid-command when this ends without an exit.
        while let Ok(Some(chunk)) = output.next().await {
            let exit = matches!(chunk, Chunk::Exit(_));
            if frames_tx.send(chunk).await.is_err() || exit {
                return;
            }
        }
    });
    let chunks = futures_util::stream::unfold(
        Some(HttpFrames {
            frames,
            pending: None,
            last: None,
            _done: done,
            _watch: watch,
        }),
        |state| async move {
            let mut state = state?;
            let chunk = state.next_chunk().await?;
            let more = chunk[0] != frame::EXIT;
            Some((Ok::<_, std::io::Error>(chunk), more.then_some(state)))
        },
    );
    Ok((
        [("content-type", "application/octet-stream")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// The chunks of an HTTP exec response. Its framing has no lengths (a
/// type byte, then the payload, one frame per HTTP chunk), so clients tell
/// frames apart by the chunks they read, and some (fetch in Node.js) join
/// chunks that arrive together. So chunks go out at least [`Self::PACE`]
/// apart, and what arrives meanwhile for the same stream is merged into the
/// next one instead of following as chunks of its own. Chunks stay small
/// enough for one loopback segment, since a client may also see a chunk
/// split in two; large output belongs on the WebSocket.
struct HttpFrames {
    frames: tokio::sync::mpsc::Receiver<Chunk>,
    pending: Option<Chunk>,
    last: Option<tokio::time::Instant>,
    /// Held until the response ends: dropping it lets the input half go.
    _done: tokio::sync::oneshot::Sender<()>,
    /// Keeps the sprite awake until then.
    _watch: Watch,
}

impl HttpFrames {
    const PACE: std::time::Duration = std::time::Duration::from_millis(5);
    const MAX_CHUNK: usize = 32 << 10;

    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let first = match self.pending.take() {
            Some(f) => f,
            None => self.frames.recv().await?,
        };
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + Self::PACE).await;
        }
        self.last = Some(tokio::time::Instant::now());
        let (tag, data) = match first {
            Chunk::Exit(code) => return Some(vec![frame::EXIT, code.clamp(0, 255) as u8]),
            Chunk::Stdout(data) => (frame::STDOUT, data),
            Chunk::Stderr(data) => (frame::STDERR, data),
        };
        let mut chunk = vec![tag];
        chunk.extend_from_slice(&data);
        while chunk.len() < Self::MAX_CHUNK {
            match self.frames.try_recv() {
                Ok(Chunk::Stdout(more)) if tag == frame::STDOUT => chunk.extend_from_slice(&more),
                Ok(Chunk::Stderr(more)) if tag == frame::STDERR => chunk.extend_from_slice(&more),
                Ok(other) => {
                    self.pending = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        Some(chunk)
    }
}

pub(super) async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, session)): Path<(String, String)>,
    Upgrade(ws): Upgrade,
) -> Result<Response, ApiError> {
    attach_to(&state, &caller, &name, &session, ws).await
}

async fn attach_to(
    state: &AppState,
    caller: &Caller,
    name: &str,
    session: &str,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (stream, info, watch) = sessions::attach(state, caller, name, session).await?;
    let command = info.argv.join(" ");
    Ok(announced(ws.on_upgrade(move |socket| {
        pump(socket, stream, info.tty, command, watch)
    })))
}

/// Sends a signal, then waits (up to the timeout) for the session to end,
/// and kills it if it did not; NDJSON progress lines as the SDKs expect.
/// The request is a JSON body (`sprites-py`) or the query (`@fly/sprites`).
pub(super) async fn kill(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, session)): Path<(String, String)>,
    Query(query): Query<KillSession>,
    OptionalBody(body): OptionalBody<Option<KillSession>>,
) -> Result<Response, ApiError> {
    let req = body.unwrap_or(query);
    let kill = sessions::kill(&state, &caller, &name, &session, &req).await?;
    Ok(super::checkpoints::ndjson(move |tx| async move {
        kill.run(move |line| {
            let _ = tx.send(line);
        })
        .await
    }))
}

/// `data` behind its type byte (see [`frame`]).
fn framed(tag: u8, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(data.len() + 1);
    b.push(tag);
    b.extend_from_slice(data);
    b
}

/// A command's output as the client reads it: raw on a terminal, framed
/// by stream otherwise.
fn output_message(stream: u8, data: Vec<u8>, tty: bool) -> Message {
    if tty {
        Message::Binary(data.into())
    } else {
        Message::Binary(framed(stream, &data).into())
    }
}

/// A command's exit as the client reads it: a message of its own on a
/// terminal, the exit frame otherwise.
fn exit_message(code: i32, tty: bool) -> Message {
    if tty {
        Message::Text(ExecMessage::Exit { exit_code: code }.to_text().into())
    } else {
        Message::Binary(vec![frame::EXIT, code.clamp(0, 255) as u8].into())
    }
}

/// The close after the exit: some SDKs read a terminal command's outcome
/// from the close code rather than the exit message (1000 for success,
/// 4000 + the exit code, an application code, otherwise).
fn close_after(code: i32) -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: if code == 0 {
            axum::extract::ws::close_code::NORMAL
        } else {
            4000 + code.clamp(1, 999) as u16
        },
        reason: "".into(),
    }))
}

/// How a session's socket ended.
pub(super) enum Ended {
    /// The command exited with this code (its exit sent).
    Exited(i32),
    /// The client went first; `closed`: it said so with a close message.
    Left { closed: bool },
}

async fn pump(socket: WebSocket, stream: vmhost::Stream, tty: bool, command: String, watch: Watch) {
    let (mut tx, mut rx) = socket.split();
    match run_session(&mut tx, &mut rx, stream, (tty, command), watch).await {
        Ended::Exited(code) => {
            let _ = tx.send(close_after(code)).await;
            // Read until the client's close (or a while): closing a socket
            // with unread input resets it, and a reset can destroy the exit
            // message still on its way.
            let drain = async {
                while let Some(Ok(msg)) = rx.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
        }
        // The client detached: answer its close, so it ends cleanly
        // rather than on a reset.
        Ended::Left { closed: true } => {
            let _ = tx.send(Message::Close(None)).await;
        }
        Ended::Left { closed: false } => {}
    }
}

/// Copies between a client's messages and the session until the session
/// exits (its exit sent) or the client goes; either ends both pumps. The
/// sprite's ports opened and closed meanwhile go to the client as text
/// messages (`port_opened`, `port_closed`), which the CLI forwards. The
/// exec WebSocket and the control socket's `exec` both run here.
pub(super) async fn run_session(
    tx: &mut impl Outbox,
    rx: &mut impl Inbox,
    stream: vmhost::Stream,
    (tty, command): (bool, String),
    watch: Watch,
) -> Ended {
    let vmhost::Stream {
        session,
        mut input,
        output,
        ..
    } = stream;
    let _here = watch.attached(session);
    let info = ExecMessage::SessionInfo {
        session_id: session.to_string(),
        tty,
        command,
    };
    if tx.send(Message::Text(info.to_text().into())).await.is_err() {
        return Ended::Left { closed: false };
    }
    let mut ports = watch.ports().await;
    // Read as a stream, so that a port event arriving mid-frame leaves the
    // frame's read going (a bare `output.next()` must not be dropped).
    let mut chunks = std::pin::pin!(futures_util::stream::unfold(output, |mut o| async move {
        match o.next().await {
            Ok(Some(chunk)) => Some((chunk, o)),
            _ => None,
        }
    }));
    let to_client = async {
        loop {
            let chunk = tokio::select! {
                chunk = chunks.next() => match chunk {
                    Some(chunk) => chunk,
                    None => break,
                },
                Some(event) = ports.next() => {
                    if tx.send(Message::Text(event.to_text().into())).await.is_err() {
                        return None;
                    }
                    continue;
                }
            };
            watch.output();
            let (stream, data) = match chunk {
                Chunk::Stdout(data) => (frame::STDOUT, data),
                Chunk::Stderr(data) => (frame::STDERR, data),
                Chunk::Exit(code) => {
                    for event in ports.changes_now().await {
                        let _ = tx.send(Message::Text(event.to_text().into())).await;
                    }
                    let _ = tx.send(exit_message(code, tty)).await;
                    return Some(code);
                }
            };
            if tx.send(output_message(stream, data, tty)).await.is_err() {
                return None;
            }
        }
        None
    };
    let from_client = async {
        while let Some(Ok(msg)) = rx.next().await {
            let sent = match msg {
                Message::Binary(b) if tty => watch.input(input.stdin(&b)).await,
                Message::Binary(b) => match b.first().copied() {
                    Some(frame::STDIN) => input.stdin(&b[1..]).await,
                    Some(frame::STDIN_EOF) => input.close_stdin().await,
                    _ => Ok(()),
                },
                Message::Text(t) => match serde_json::from_str::<ExecMessage>(&t) {
                    Ok(ExecMessage::Resize { rows, cols }) if rows > 0 && cols > 0 => {
                        input.resize(rows, cols).await
                    }
                    // An unknown signal is nothing to send.
                    Ok(ExecMessage::Signal { signal }) => {
                        match sessions::signal_number(Some(&signal)) {
                            Ok(number) => input.signal(number).await,
                            Err(_) => Ok(()),
                        }
                    }
                    _ => Ok(()),
                },
                Message::Close(_) => return true,
                _ => Ok(()),
            };
            // The command may be gone before its input is: its output and
            // exit code still follow, so a refused write ends nothing.
            let _ = sent;
        }
        false
    };
    tokio::select! {
        exited = to_client => match exited {
            Some(code) => Ended::Exited(code),
            None => Ended::Left { closed: false },
        },
        closed = from_client => Ended::Left { closed },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_queries_parse_like_the_sdks_send_them() {
        let spec = parse_exec("cmd=sh&cmd=-c&cmd=echo+%22a+b%22&path=sh&env=A%3D1%3D2&dir=%2Ftmp&tty=true&rows=40&cols=120&stdin=true").unwrap();
        assert_eq!(spec.argv, ["sh", "-c", "echo \"a b\""]);
        assert_eq!(spec.env, [("A".to_string(), "1=2".to_string())]);
        assert_eq!(spec.dir.as_deref(), Some("/tmp"));
        assert_eq!(
            spec.tty,
            Some(WinSize {
                rows: 40,
                cols: 120
            })
        );
        assert!(parse_exec("stdin=true").is_err());
        assert!(parse_exec("cmd=ls&env=NOEQUALS").is_err());
        assert!(parse_exec("cmd=ls&rows=0").is_err());
    }
}
