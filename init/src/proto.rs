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
    /// Answered with [`Reply::Services`].
    ListServices,
    /// Changes a service. Answered with [`Reply::Done`] once the change is
    /// made (a stop, once the process is gone); then, when `follow_ms` is
    /// not zero, the service's events from the start of the change until
    /// `follow_ms` after its end come as [`Tag::Control`] frames holding a
    /// [`ServiceEvent`] each, and the connection closes.
    ///
    /// [`Tag::Control`]: crate::Tag::Control
    Service {
        name: String,
        change: ServiceOp,
        #[serde(default)]
        follow_ms: u64,
    },
    /// The service's last `lines` events, then (with `follow`) every new
    /// one until the host closes the connection; as [`Request::Service`]
    /// streams them.
    ServiceLogs {
        name: String,
        lines: usize,
        follow: bool,
    },
}

/// What to do to a service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceOp {
    /// Creates or replaces its definition (kept on the sprite's disk) and
    /// starts it, restarting it if it ran with another definition.
    Put {
        spec: ServiceSpec,
    },
    Start,
    /// SIGTERM to its process group, SIGKILL after `timeout_ms`.
    Stop {
        timeout_ms: u64,
    },
    Restart,
    /// Stops it and removes its definition.
    Delete,
    Signal {
        signal: i32,
    },
}

pub use sprites_wire::services::{valid_service_name, SERVICES_DIR};

/// The sprite's own environment (a JSON object of names and values, given
/// when the sprite was made): every command and service gets it, over the
/// defaults and under what the command itself asks for.
pub const ENVIRONMENT_FILE: &str = "/etc/sprite/environment.json";

/// A service: a named long-running command that sprite-init starts at
/// boot and restarts when it crashes; the API's own request, as the host
/// passes it on and sprite-init keeps it in its definition file.
pub use sprites_wire::services::ServiceRequest as ServiceSpec;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceInfo {
    pub name: String,
    pub spec: ServiceSpec,
    pub state: ServiceState,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ServiceState {
    /// `stopped`, `starting`, `running`, `stopping` or `failed`.
    pub status: String,
    pub pid: Option<u32>,
    /// Milliseconds since the Unix epoch.
    pub started_at: Option<u64>,
    pub error: Option<String>,
    pub restart_count: u32,
    /// Milliseconds since the Unix epoch.
    pub next_restart_at: Option<u64>,
}

/// Something a service did or printed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceEvent {
    /// `stdout`, `stderr` (a line each), `started`, `exit`, `stopping`,
    /// `stopped`, `error`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// Whether a command's words (its arguments and directory) and its
/// environment can reach `execve` as they are: no NUL anywhere, and each
/// variable named, without `=`.
pub fn command_is_passable<'a>(
    mut words: impl Iterator<Item = &'a String>,
    mut env: impl Iterator<Item = (&'a String, &'a String)>,
) -> bool {
    !words.any(|w| w.contains('\0'))
        && !env.any(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
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
    /// Once every client has gone, keep running at most this long (then
    /// SIGKILL); a client attaching meanwhile keeps it. Given, the session
    /// outlives its clients that long even when not detachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger_ms: Option<u64>,
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
    Services { services: Vec<ServiceInfo> },
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
    /// The request contradicts the state (a service others need, one that
    /// is not running).
    Conflict,
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
pub use sprites_wire::VERSION;
