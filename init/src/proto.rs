//! Control messages of the init socket.

use serde::{Deserialize, Serialize};

/// What the host asks of `sprite-init`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Liveness check; answered with [`Reply::Pong`].
    Ping,
    /// Start a process; answered with [`Reply::Started`], then streams.
    Exec(ExecSpec),
    /// Join a running session's streams; with `replay`, its buffered output
    /// is sent first.
    Attach { session: u64, replay: bool },
    /// Answered with [`Reply::Sessions`].
    ListSessions,
    /// Send `signal` to the session's process group.
    Kill { session: u64, signal: i32 },
    /// Open a TCP connection from inside the sprite to `host`:`port`
    /// (`localhost` for the sprite's own services). Answered with
    /// [`Reply::Connected`], after which the socket carries the connection's
    /// raw bytes both ways, unframed, until either side closes.
    Connect { host: String, port: u16 },
}

/// A process to start inside the sprite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    /// Added to (and overriding) the default environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Working directory; `/root` when absent.
    #[serde(default)]
    pub dir: Option<String>,
    /// Run on a pseudo-terminal of this size.
    #[serde(default)]
    pub tty: Option<WinSize>,
    /// Keep running when every client has gone. TTY sessions always are.
    #[serde(default)]
    pub detachable: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Pong { pid: u32, version: String },
    Started { session: u64, pid: u32 },
    Sessions { sessions: Vec<SessionInfo> },
    Done,
    Connected,
    Error { kind: ErrorKind, message: String },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such session.
    NotFound,
    /// The command could not be started (missing binary, bad directory).
    Spawn,
    /// The request itself was malformed.
    Invalid,
    /// Nothing accepts connections there (yet).
    Refused,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: u64,
    pub pid: u32,
    pub argv: Vec<String>,
    pub tty: bool,
    /// Seconds since the Unix epoch when the session started.
    pub started_at: u64,
    /// Number of clients attached right now.
    pub clients: usize,
    /// Exit code once the process has ended.
    pub exit_code: Option<i32>,
    /// Seconds since the Unix epoch of the last output.
    pub last_output_at: u64,
}

/// Version string sent in [`Reply::Pong`]; the host logs a mismatch.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
