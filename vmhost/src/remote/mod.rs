//! A host on another machine: `vmhost serve` answers the Host's verbs over
//! mutual TLS ([`crate::cluster`]), and [`Remote`] is the [`crate::Verbs`]
//! of an API server that reaches it.
//!
//! The protocol, on one TLS connection:
//!
//! 1. The server sends a [`Request`] as one line of JSON.
//! 2. The host answers one line of JSON, the head: `{"ok": value}` or
//!    `{"err": error}` ([`crate::WireError`]). After an error the
//!    connection is idle again.
//! 3. A [`Request::Call`] is then over, and the connection carries the next
//!    request. Any other request keeps the connection for its stream:
//!    - `Exec`, `Attach`: the head is `{session, pid}`; then init's frames
//!      both ways, as the sprite's init speaks them (stdin, resize and
//!      signals up; output and the exit down).
//!    - `Connect`: the bytes of the connection into the sprite, both ways.
//!    - `Service`, `ServiceLogs`: init's service event frames, down.
//!    - `ReadFile`: the file's bytes, down; `CreateFile`: its bytes up in
//!      chunks, then the file's entry (or the error) down, as a line.
//!    - `PrepareImage`: progress lines down, then the image or the error;
//!      `ImportImage` the same, while the archive goes up in chunks.
//!    - `Watch`, `Events`, `ReplicaChanges`: JSON lines, down, for as
//!      long as the server keeps the connection.
//!    - `ListenMgmt`: a line with a ticket for each connection the sprite's
//!      management socket accepts; the server takes each with `MgmtTake`
//!      on a new connection, which then carries its bytes both ways.
//!
//! Every line is at most [`MAX_LINE`] bytes. A host admits only the API
//! servers of its cluster (their certificates say so); nothing is read
//! before the handshake proves it.

mod client;
mod daemon;
mod fleet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::call::{Call, ImageRef};
use crate::error::WireError;
use crate::image::Recipe;
use crate::{CheckpointId, ExecSpec, ServiceOp, SpriteName};

pub use client::Remote;
pub use daemon::serve;
pub use fleet::{Fleet, Floors, Member, Moved, TakenOver};

/// The longest line either side reads: a call's arguments (a command's
/// stdin), an answer (a sprite's list), an event.
pub const MAX_LINE: usize = 64 << 20;

/// The largest chunk of a file written on a host.
pub const MAX_CHUNK: usize = 1 << 20;

/// What a server asks a host, first on a connection or after an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// One question, one answer.
    Call {
        call: Call,
    },
    Exec {
        name: SpriteName,
        spec: ExecSpec,
    },
    Attach {
        name: SpriteName,
        session: u64,
        replay: bool,
    },
    Connect {
        name: SpriteName,
        host: String,
        port: u16,
    },
    Service {
        name: SpriteName,
        service: String,
        change: ServiceOp,
        follow_ms: u64,
    },
    ServiceLogs {
        name: SpriteName,
        service: String,
        lines: usize,
        follow: bool,
    },
    Watch {
        name: SpriteName,
        paths: Vec<String>,
        recursive: bool,
    },
    /// Listens on a sprite's management socket: a [`MgmtAccepted`] line
    /// for each connection from inside it, for as long as the server keeps
    /// the connection.
    ListenMgmt {
        name: SpriteName,
    },
    /// The connection an [`MgmtAccepted`] told of, carried on this one.
    MgmtTake {
        ticket: u64,
    },
    /// A file of a sprite (as a checkpoint keeps it, with one): the head
    /// is its size, then its bytes follow.
    ReadFile {
        name: SpriteName,
        checkpoint: Option<CheckpointId>,
        path: String,
    },
    /// Writes a file of a sprite: after the head, the server sends chunks
    /// (a 4-byte big-endian length, then that many bytes, at most
    /// [`MAX_CHUNK`]), an empty one at the end; the host answers a line
    /// with the file's entry once it is in place, or the error that
    /// stopped it as soon as one does.
    CreateFile {
        name: SpriteName,
        path: String,
        mode: Option<u32>,
        make_parents: bool,
    },
    /// Builds an image: [`Built`] lines follow the head.
    PrepareImage {
        name: String,
        recipe: Recipe,
    },
    /// Imports an image from a tar archive the server sends in chunks
    /// (as `CreateFile`'s); [`Built`] lines follow the head.
    ImportImage {
        image: String,
        max_bytes: u64,
    },
    /// Every [`crate::HostEvent`], as it happens.
    Events,
    /// The names of sprites whose copy in the object store moved on.
    ReplicaChanges,
}

/// The head of an answer, and each line of a stream of results.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Head {
    Ok(Value),
    Err(WireError),
}

/// A line of an image's build or import.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Built {
    Progress(String),
    Done(ImageRef),
    Err(WireError),
}

/// The session a stream of init's frames belongs to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SessionHead {
    session: u64,
    pid: u32,
}

/// A connection a host accepted on a sprite's management socket, waiting
/// for the server to take it (for [`MGMT_TAKE_WITHIN`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct MgmtAccepted {
    ticket: u64,
}

/// How long an accepted management connection waits to be taken.
const MGMT_TAKE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("a line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not the protocol: {0}")]
    Json(#[from] serde_json::Error),
}

/// The next line, without its newline, as `T`; `Closed` at the end of the
/// stream before any byte of it.
async fn read_line<T: serde::de::DeserializeOwned>(
    reader: &mut (impl AsyncBufRead + Unpin),
) -> Result<T, LineError> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Err(if line.is_empty() {
                LineError::Closed
            } else {
                LineError::Io(std::io::ErrorKind::UnexpectedEof.into())
            });
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE + 1 {
            return Err(LineError::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            line.pop();
            return Ok(serde_json::from_slice(&line)?);
        }
    }
}

/// A connection between a host and a server: small writes go at once,
/// and a peer that vanished (its machine lost, a partition) is noticed in
/// about 25 s, also on a stream that only waits.
fn tune(tcp: &tokio::net::TcpStream) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(10))
        .with_interval(std::time::Duration::from_secs(5))
        .with_retries(3);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive)
}

/// `value` as one line, sent at once.
async fn write_line<T: Serialize>(
    writer: &mut (impl AsyncWrite + Unpin),
    value: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await
}
