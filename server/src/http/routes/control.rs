//! `/v1/sprites/{name}/control`: operations one after another over one
//! WebSocket (see `sprites_wire::control` for the protocol). Each runs in
//! the code of its own route, on the messages this socket hands it:
//! `exec` in `exec::run_session`, `proxy` in `port_proxy::pipe`, the file
//! operations in `domain::files`.

use axum::extract::ws::{Message, WebSocket};
use axum::extract::Path;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use sprites_wire::control::{Arg, Completed, Envelope, Failed};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

use super::answer::Cx;
use super::json::Upgrade;
use super::socket::{Inbox, Outbox};
use crate::domain::access;
use crate::domain::caller::Caller;
use crate::domain::files::{self, Place};
use crate::domain::sessions;
use crate::error::ApiError;
use crate::AppState;

/// Messages waiting for the running operation before the socket stops
/// reading (and the client's sends wait); with [`MAX_MESSAGE`], what one
/// connection may hold in memory is bounded (~8 MiB).
const BACKLOG: usize = 8;

/// The largest message the control socket takes.
const MAX_MESSAGE: usize = 1 << 20;

/// Messages the server sends waiting for the client.
const OUTGOING: usize = 64;

pub(super) async fn open(
    cx: Cx,
    Path(name): Path<String>,
    Upgrade(ws): Upgrade,
) -> Result<Response, ApiError> {
    // Refused before the upgrade: an SDK falls back to the exec route on an
    // HTTP error.
    access::host_sprite(&cx.state, &cx.caller, &name).await?;
    let sprite = Sprite {
        state: cx.state,
        caller: cx.caller,
        name,
    };
    let ws = ws.max_message_size(MAX_MESSAGE);
    Ok(super::exec::announced(
        ws.on_upgrade(move |socket| serve(socket, sprite)),
    ))
}

/// Whose sprite the socket reaches; every operation checks anew.
#[derive(Clone)]
struct Sprite {
    state: AppState,
    caller: Caller,
    name: String,
}

fn text(envelope: Envelope) -> Message {
    Message::Text(envelope.to_text().into())
}

fn refusal(id: Option<String>, op: Option<String>, code: &str, message: &str) -> Message {
    text(Envelope::Error {
        id,
        op,
        args: Failed::new(code, message),
    })
}

/// Reads the client's messages: envelopes start operations, the rest go
/// to the one running. Everything the server sends goes through one writer.
async fn serve(socket: WebSocket, sprite: Sprite) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(OUTGOING);
    let writer = tokio::spawn(async move {
        while let Some(msg) = outgoing.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // The running (or last) operation's inbox; closed once it has ended.
    let mut running: Option<mpsc::Sender<Message>> = None;
    while let Some(Ok(msg)) = stream.next().await {
        let inbox = running.as_ref().filter(|inbox| !inbox.is_closed());
        let envelope = match &msg {
            Message::Text(t) => Envelope::parse(t),
            _ => None,
        };
        let refused = match (envelope, inbox) {
            (Some(Ok(Envelope::Start { id, op, .. })), Some(_)) => Some(refusal(
                id,
                Some(op),
                "op.busy",
                "an operation is running on this connection: wait for its op.complete",
            )),
            (Some(Ok(Envelope::Start { id, op, args })), None) => {
                let (inbox, messages) = mpsc::channel(BACKLOG);
                running = Some(inbox);
                let (sprite, out) = (sprite.clone(), out.clone());
                tokio::spawn(run(sprite, (id, op, args), messages, out));
                None
            }
            // Other envelopes from a client mean nothing.
            (Some(Ok(_)), _) => None,
            (Some(Err(e)), _) => Some(refusal(None, None, "op.invalid", &e.to_string())),
            (None, _) if matches!(msg, Message::Close(_)) => break,
            (None, _) if matches!(msg, Message::Ping(_) | Message::Pong(_)) => None,
            (None, Some(inbox)) => {
                let _ = inbox.send(msg).await;
                None
            }
            // Late input for an operation that has ended (stdin for a
            // command that exited without reading it, the rest of a file
            // whose write failed): its end already went out.
            (None, None) if running.is_some() => None,
            (None, None) => Some(refusal(
                None,
                None,
                "op.not_active",
                "no operation is running: send control:{\"type\":\"op.start\",...} first",
            )),
        };
        if let Some(refused) = refused {
            if out.send(refused).await.is_err() {
                break;
            }
        }
    }
    // The client went: the running operation sees its inbox end and stops;
    // the writer ends once the last sender has.
    drop(running);
    drop(out);
    let _ = writer.await;
}

/// Runs one operation to its end, then says how it ended. The inbox is
/// dropped first, so a start sent as soon as the end arrives finds the
/// connection free.
async fn run(
    sprite: Sprite,
    (id, op, args): (Option<String>, String, BTreeMap<String, Arg>),
    inbox: mpsc::Receiver<Message>,
    out: mpsc::Sender<Message>,
) {
    let _ = out.send(text(Envelope::Ack { id: id.clone() })).await;
    let args: Vec<(String, String)> = args
        .iter()
        .flat_map(|(k, v)| v.values().into_iter().map(move |v| (k.clone(), v)))
        .collect();
    let mut tx = Box::pin(futures_util::sink::unfold(
        out.clone(),
        |out, msg: Message| async move { out.send(msg).await.map(|_| out) },
    ));
    // Owned by the stream, so dropping the stream closes the inbox.
    let mut rx = Box::pin(futures_util::stream::unfold(inbox, |mut inbox| async {
        let msg = inbox.recv().await?;
        Some((Ok::<_, axum::Error>(msg), inbox))
    }));
    let ended = match op.as_str() {
        "exec" => exec(&sprite, &args, &mut tx, &mut rx).await,
        "fs.read" => read(&sprite, &args, &mut tx).await,
        "fs.write" => write(&sprite, &args, &mut rx).await,
        "proxy" => proxy(&sprite, &args, &mut tx, &mut rx).await,
        _ => Err(Outcome::Refused(
            "op.not_found",
            format!("unknown operation {op:?}: exec, fs.read, fs.write or proxy"),
        )),
    };
    drop(rx);
    let failed = match ended {
        Ok(done) => Ok(done),
        Err(Outcome::Failed(e)) => Err(Failed::new(e.code(), e.public_message())),
        Err(Outcome::Refused(code, message)) => Err(Failed::new(code, message)),
        // The client went; there is no one to tell.
        Err(Outcome::Left) => return,
    };
    let envelope = match failed {
        Ok(done) => Envelope::Complete { id, args: done },
        Err(args) => Envelope::Error {
            id,
            op: Some(op),
            args,
        },
    };
    let _ = out.send(text(envelope)).await;
}

/// Why an operation did not complete.
enum Outcome {
    Failed(ApiError),
    Refused(&'static str, String),
    Left,
}

impl From<ApiError> for Outcome {
    fn from(e: ApiError) -> Outcome {
        Outcome::Failed(e)
    }
}

fn arg<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn place<'a>(sprite: &'a Sprite, args: &'a [(String, String)]) -> Place<'a> {
    Place {
        sprite: &sprite.name,
        path: arg(args, "path").unwrap_or(""),
        working_dir: arg(args, "workingDir"),
    }
}

async fn exec(
    sprite: &Sprite,
    args: &[(String, String)],
    tx: &mut impl Outbox,
    rx: &mut impl Inbox,
) -> Result<Completed, Outcome> {
    let spec = super::exec::exec_spec(args.iter().map(|(k, v)| (k, v)))?;
    let (tty, command) = (spec.tty.is_some(), spec.argv.join(" "));
    let (stream, watch) =
        sessions::start(&sprite.state, &sprite.caller, &sprite.name, spec).await?;
    match super::exec::run_session(tx, rx, stream, (tty, command), watch).await {
        super::exec::Ended::Exited(code) => Ok(Completed {
            ok: true,
            exit_code: Some(code),
            size: None,
        }),
        super::exec::Ended::Left { .. } => Err(Outcome::Left),
    }
}

/// The file's bytes as binary messages of at most 64 KiB.
async fn read(
    sprite: &Sprite,
    args: &[(String, String)],
    tx: &mut impl Outbox,
) -> Result<Completed, Outcome> {
    let at = place(sprite, args);
    let file = files::read(&sprite.state, &sprite.caller, at, None).await?;
    let mut chunks = files::chunks(file);
    let mut sent = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::Host(vmhost::Error::io("cannot read the file", e)))?;
        sent += chunk.len() as u64;
        if tx.send(Message::Binary(chunk)).await.is_err() {
            return Err(Outcome::Left);
        }
    }
    Ok(Completed {
        ok: true,
        exit_code: None,
        size: Some(sent),
    })
}

/// The file from the client's binary messages, up to an empty one.
async fn write(
    sprite: &Sprite,
    args: &[(String, String)],
    rx: &mut impl Inbox,
) -> Result<Completed, Outcome> {
    let at = place(sprite, args);
    let parents = arg(args, "mkdirParents").is_none_or(super::json::is_true);
    let how = (arg(args, "mode"), parents);
    let bytes = futures_util::stream::unfold(rx, |rx| async move {
        loop {
            match rx.next().await {
                Some(Ok(Message::Binary(b))) if b.is_empty() => return None,
                Some(Ok(Message::Binary(b))) => return Some((Ok(b), rx)),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    return Some((Err("the connection ended before the file did"), rx))
                }
                Some(Ok(_)) => {}
            }
        }
    });
    let entry = files::write(&sprite.state, &sprite.caller, at, how, bytes).await?;
    Ok(Completed {
        ok: true,
        exit_code: None,
        size: Some(entry.size),
    })
}

/// A TCP connection to `host` (default `localhost`) and `port` inside the
/// sprite, until it ends.
async fn proxy(
    sprite: &Sprite,
    args: &[(String, String)],
    tx: &mut impl Outbox,
    rx: &mut impl Inbox,
) -> Result<Completed, Outcome> {
    let port = arg(args, "port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::Invalid("port: a port number, 1 to 65535".into()))?;
    let host = arg(args, "host").unwrap_or("localhost");
    let forward = sessions::forward(&sprite.state, &sprite.caller, &sprite.name).await?;
    let connection = forward.connect(host, port).await?;
    super::port_proxy::pipe(tx, rx, connection, (&forward, true)).await;
    Ok(Completed {
        ok: true,
        exit_code: None,
        size: None,
    })
}
