//! Errors of host operations. Callers branch on the variants; the
//! `#[source]` chain carries the system detail for logs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sprites_wire::{CheckpointId, NameError};

use crate::phase::Phase;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid name")]
    InvalidName(#[from] NameError),
    #[error("sprite {0} does not exist")]
    NotFound(String),
    #[error("sprite {0} already exists")]
    AlreadyExists(String),
    #[error("checkpoint {1} of sprite {0} does not exist")]
    CheckpointNotFound(String, CheckpointId),
    #[error("{op} is not allowed while the sprite is {phase}")]
    WrongPhase { op: &'static str, phase: Phase },
    #[error("checkpoint {0} is the one the sprite stands on and cannot be deleted")]
    CheckpointInUse(CheckpointId),
    #[error("session {0} does not exist")]
    SessionNotFound(u64),
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{0:?} does not exist in the sprite")]
    FileNotFound(String),
    #[error("{0:?} already exists in the sprite")]
    FileExists(String),
    #[error("{path:?}: {reason}")]
    FileConflict {
        path: String,
        reason: &'static str,
        /// The errno name a file API reports (`EISDIR`, `ENOTEMPTY`, ...).
        errno: &'static str,
    },
    #[error(
        "the sprite's disk quota is exhausted: delete files or checkpoints it no longer needs"
    )]
    QuotaExceeded,
    #[error("the sprite has used {0}: restart it to end them (its disk is kept)")]
    Exhausted(Exhausted),
    #[error("the storage pool is full")]
    PoolFull,
    /// No host of a cluster can take a new sprite; why, host by host.
    #[error("no host has room for a new sprite ({0})")]
    NoRoom(String),
    #[error("sprite {0} is moving to another host; try again in a moment")]
    Moving(String),
    /// The host's lease lapsed: it runs the sprite again only once the
    /// control plane holds it (see the fence in `sprite`).
    #[error("sprite {0} waits for the control plane on its host; try again in a moment")]
    Fenced(String),
    #[error("cannot start {0:?}: {1}")]
    Spawn(String, String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("image {0} is not built")]
    ImageMissing(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {path}")]
    PathIo {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox runtime failed: {0}")]
    Runtime(String),
    #[error("the sprite's init did not answer")]
    Agent(#[source] sprite_init::FrameError),
    #[error("the sprite's init refused: {0}")]
    AgentRefused(String),
    #[error("nothing in the sprite accepts connections on port {0}")]
    PortClosed(u16),
    #[error("service {0} does not exist")]
    ServiceNotFound(String),
    #[error("{0}")]
    ServiceConflict(String),
    #[error("object storage: {0}")]
    Bucket(String),
    #[error(
        "{object} fails its integrity check (changed or damaged in the bucket); it is not restored"
    )]
    Corrupt { object: String },
    /// A checkpoint that cannot come back because one it depends on did not.
    #[error("{0}")]
    Refused(String),
    #[error(
        "sprites cannot reach their disks: {dir} lets only its owner through (mode {mode:o}); \
         allow passing through it with `chmod o+x {dir}`, or choose a data directory \
         (SPRITES_DATA_DIR) whose parent folders others may pass through",
        dir = .dir.display()
    )]
    Unreachable { dir: PathBuf, mode: u32 },
    /// A failure a host on another machine reported (its I/O, its
    /// runtime's, its init's), in its words with their causes.
    #[error("{0}")]
    Fault(String),
}

impl Error {
    /// Wraps an I/O error, turning a full disk into the errors callers act on.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::ENOSPC) => Error::PoolFull,
            Some(libc::EDQUOT) => Error::QuotaExceeded,
            _ => Error::Io {
                context: context.into(),
                source,
            },
        }
    }

    pub fn path(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::ENOSPC) => Error::PoolFull,
            Some(libc::EDQUOT) => Error::QuotaExceeded,
            _ => Error::PathIo {
                context,
                path: path.into(),
                source,
            },
        }
    }
}

impl Error {
    /// The errno name of a file error, for file APIs that report one.
    pub fn errno(&self) -> Option<&'static str> {
        Some(match self {
            Error::FileNotFound(_) => "ENOENT",
            Error::FileExists(_) => "EEXIST",
            Error::FileConflict { errno, .. } => errno,
            Error::InvalidPath { .. } => "EINVAL",
            Error::QuotaExceeded => "EDQUOT",
            Error::PoolFull => "ENOSPC",
            _ => return None,
        })
    }
}

impl From<sprite_init::FrameError> for Error {
    fn from(e: sprite_init::FrameError) -> Error {
        Error::Agent(e)
    }
}

/// A limit a sandbox has used up: its own processes' doing, not a fault
/// of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exhausted {
    /// Its processes (and threads), of `max`.
    Processes { max: u64 },
    /// Its memory, of `max` bytes.
    Memory { max: u64 },
}

impl Exhausted {
    /// Reads `pids.current`/`pids.max` and the memory use and limit from
    /// the cgroup files given (v1 and v2 name them differently).
    pub(crate) fn read(
        pids: (&std::path::Path, &std::path::Path),
        memory: (&std::path::Path, &std::path::Path),
    ) -> Option<Exhausted> {
        let number = |p: &std::path::Path| -> Option<u64> {
            std::fs::read_to_string(p).ok()?.trim().parse().ok()
        };
        if let (Some(used), Some(max)) = (number(pids.0), number(pids.1)) {
            // A fork fails a few short of the limit already.
            if used + 4 >= max {
                return Some(Exhausted::Processes { max });
            }
        }
        if let (Some(used), Some(max)) = (number(memory.0), number(memory.1)) {
            if used >= max / 100 * 97 {
                return Some(Exhausted::Memory { max });
            }
        }
        None
    }
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhausted::Processes { max } => write!(f, "all its {max} processes"),
            Exhausted::Memory { max } => write!(f, "all its memory ({} MiB)", max >> 20),
        }
    }
}

/// An [`Error`] as it travels from a host to a server on another machine.
/// Each variant a caller branches on keeps its fields; what only a log
/// reads (I/O, the sandbox runtime, init's framing) arrives as `Fault`,
/// its message with the causes folded in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireError {
    InvalidName {
        error: NameError,
    },
    NotFound {
        sprite: String,
    },
    AlreadyExists {
        sprite: String,
    },
    CheckpointNotFound {
        sprite: String,
        checkpoint: CheckpointId,
    },
    WrongPhase {
        op: String,
        phase: Phase,
    },
    CheckpointInUse {
        checkpoint: CheckpointId,
    },
    SessionNotFound {
        session: u64,
    },
    InvalidPath {
        path: String,
        reason: String,
    },
    FileNotFound {
        path: String,
    },
    FileExists {
        path: String,
    },
    FileConflict {
        path: String,
        reason: String,
        errno: String,
    },
    QuotaExceeded,
    Exhausted {
        limit: Exhausted,
    },
    PoolFull,
    NoRoom {
        message: String,
    },
    Moving {
        sprite: String,
    },
    Fenced {
        sprite: String,
    },
    Spawn {
        command: String,
        message: String,
    },
    Invalid {
        message: String,
    },
    ImageMissing {
        image: String,
    },
    AgentRefused {
        message: String,
    },
    PortClosed {
        port: u16,
    },
    ServiceNotFound {
        service: String,
    },
    ServiceConflict {
        message: String,
    },
    Bucket {
        message: String,
    },
    Corrupt {
        object: String,
    },
    Refused {
        message: String,
    },
    Unreachable {
        dir: PathBuf,
        mode: u32,
    },
    Fault {
        message: String,
    },
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> WireError {
        use WireError as W;
        match e {
            Error::InvalidName(error) => W::InvalidName {
                error: error.clone(),
            },
            Error::NotFound(sprite) => W::NotFound {
                sprite: sprite.clone(),
            },
            Error::AlreadyExists(sprite) => W::AlreadyExists {
                sprite: sprite.clone(),
            },
            Error::CheckpointNotFound(sprite, checkpoint) => W::CheckpointNotFound {
                sprite: sprite.clone(),
                checkpoint: *checkpoint,
            },
            Error::WrongPhase { op, phase } => W::WrongPhase {
                op: op.to_string(),
                phase: *phase,
            },
            Error::CheckpointInUse(checkpoint) => W::CheckpointInUse {
                checkpoint: *checkpoint,
            },
            Error::SessionNotFound(session) => W::SessionNotFound { session: *session },
            Error::InvalidPath { path, reason } => W::InvalidPath {
                path: path.clone(),
                reason: reason.to_string(),
            },
            Error::FileNotFound(path) => W::FileNotFound { path: path.clone() },
            Error::FileExists(path) => W::FileExists { path: path.clone() },
            Error::FileConflict {
                path,
                reason,
                errno,
            } => W::FileConflict {
                path: path.clone(),
                reason: reason.to_string(),
                errno: errno.to_string(),
            },
            Error::QuotaExceeded => W::QuotaExceeded,
            Error::Exhausted(limit) => W::Exhausted { limit: *limit },
            Error::PoolFull => W::PoolFull,
            Error::Spawn(command, message) => W::Spawn {
                command: command.clone(),
                message: message.clone(),
            },
            Error::Invalid(message) => W::Invalid {
                message: message.clone(),
            },
            Error::ImageMissing(image) => W::ImageMissing {
                image: image.clone(),
            },
            Error::AgentRefused(message) => W::AgentRefused {
                message: message.clone(),
            },
            Error::PortClosed(port) => W::PortClosed { port: *port },
            Error::ServiceNotFound(service) => W::ServiceNotFound {
                service: service.clone(),
            },
            Error::ServiceConflict(message) => W::ServiceConflict {
                message: message.clone(),
            },
            Error::Bucket(message) => W::Bucket {
                message: message.clone(),
            },
            Error::Corrupt { object } => W::Corrupt {
                object: object.clone(),
            },
            Error::Refused(message) => W::Refused {
                message: message.clone(),
            },
            Error::NoRoom(message) => W::NoRoom {
                message: message.clone(),
            },
            Error::Moving(sprite) => W::Moving {
                sprite: sprite.clone(),
            },
            Error::Fenced(sprite) => W::Fenced {
                sprite: sprite.clone(),
            },
            Error::Unreachable { dir, mode } => W::Unreachable {
                dir: dir.clone(),
                mode: *mode,
            },
            Error::Io { .. }
            | Error::PathIo { .. }
            | Error::Runtime(_)
            | Error::Agent(_)
            | Error::Fault(_) => W::Fault {
                message: with_causes(e),
            },
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        use WireError as W;
        match w {
            W::InvalidName { error } => Error::InvalidName(error),
            W::NotFound { sprite } => Error::NotFound(sprite),
            W::AlreadyExists { sprite } => Error::AlreadyExists(sprite),
            W::CheckpointNotFound { sprite, checkpoint } => {
                Error::CheckpointNotFound(sprite, checkpoint)
            }
            W::WrongPhase { op, phase } => Error::WrongPhase {
                op: lasting(op),
                phase,
            },
            W::CheckpointInUse { checkpoint } => Error::CheckpointInUse(checkpoint),
            W::SessionNotFound { session } => Error::SessionNotFound(session),
            W::InvalidPath { path, reason } => Error::InvalidPath {
                path,
                reason: lasting(reason),
            },
            W::FileNotFound { path } => Error::FileNotFound(path),
            W::FileExists { path } => Error::FileExists(path),
            W::FileConflict {
                path,
                reason,
                errno,
            } => Error::FileConflict {
                path,
                reason: lasting(reason),
                errno: lasting(errno),
            },
            W::QuotaExceeded => Error::QuotaExceeded,
            W::Exhausted { limit } => Error::Exhausted(limit),
            W::PoolFull => Error::PoolFull,
            W::Spawn { command, message } => Error::Spawn(command, message),
            W::Invalid { message } => Error::Invalid(message),
            W::ImageMissing { image } => Error::ImageMissing(image),
            W::AgentRefused { message } => Error::AgentRefused(message),
            W::PortClosed { port } => Error::PortClosed(port),
            W::ServiceNotFound { service } => Error::ServiceNotFound(service),
            W::ServiceConflict { message } => Error::ServiceConflict(message),
            W::Bucket { message } => Error::Bucket(message),
            W::Corrupt { object } => Error::Corrupt { object },
            W::Refused { message } => Error::Refused(message),
            W::NoRoom { message } => Error::NoRoom(message),
            W::Moving { sprite } => Error::Moving(sprite),
            W::Fenced { sprite } => Error::Fenced(sprite),
            W::Unreachable { dir, mode } => Error::Unreachable { dir, mode },
            W::Fault { message } => Error::Fault(message),
        }
    }
}

/// The error's words followed by its causes', as a log would show them.
fn with_causes(e: &Error) -> String {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

/// A string of a received error kept for the life of the process, for the
/// fields that hold static words (an operation's name, an errno name, a
/// reason). Hosts send a few dozen distinct ones.
fn lasting(s: String) -> &'static str {
    static WORDS: Kept = Kept::new(512);
    WORDS.keep(s)
}

/// Words kept for the life of the process: at most `max` of them, each
/// short (vmhost's own are a few words), so that a host sending ever new
/// or long ones is not believed past that and costs at most `max` times
/// `LONGEST_WORD` bytes.
struct Kept {
    words: std::sync::Mutex<Vec<&'static str>>,
    max: usize,
}

impl Kept {
    const fn new(max: usize) -> Kept {
        Kept {
            words: std::sync::Mutex::new(Vec::new()),
            max,
        }
    }

    fn keep(&self, s: String) -> &'static str {
        const LONGEST_WORD: usize = 120;
        if s.len() > LONGEST_WORD {
            return "(not told)";
        }
        let mut words = self.words.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = words.iter().find(|k| **k == s) {
            return known;
        }
        if words.len() >= self.max {
            return "(not told)";
        }
        let kept: &'static str = Box::leak(s.into_boxed_str());
        words.push(kept);
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error a caller branches on arrives as it left: same variant,
    /// same words; the others arrive as a fault with their causes.
    #[test]
    fn errors_cross_the_wire_whole() {
        let io = || std::io::Error::from_raw_os_error(libc::EACCES);
        let all = vec![
            Error::InvalidName(NameError::BadCharacter('!')),
            Error::NotFound("s1".into()),
            Error::AlreadyExists("s1".into()),
            Error::CheckpointNotFound("s1".into(), CheckpointId(3)),
            Error::WrongPhase {
                op: "checkpoint",
                phase: Phase::SleepingCold,
            },
            Error::CheckpointInUse(CheckpointId(2)),
            Error::SessionNotFound(7),
            Error::InvalidPath {
                path: "../x".into(),
                reason: "leaves the sprite",
            },
            Error::FileNotFound("/a".into()),
            Error::FileExists("/a".into()),
            Error::FileConflict {
                path: "/a".into(),
                reason: "is a directory",
                errno: "EISDIR",
            },
            Error::QuotaExceeded,
            Error::Exhausted(Exhausted::Memory { max: 1 << 30 }),
            Error::PoolFull,
            Error::Spawn("python3".into(), "not found".into()),
            Error::Invalid("bad".into()),
            Error::ImageMissing("debian".into()),
            Error::AgentRefused("no".into()),
            Error::PortClosed(8080),
            Error::ServiceNotFound("web".into()),
            Error::ServiceConflict("running".into()),
            Error::Bucket("away".into()),
            Error::Corrupt {
                object: "seg-1".into(),
            },
            Error::Refused("v1 did not come back".into()),
            Error::NoRoom("h1: 10 MiB of disk free".into()),
            Error::Moving("s1".into()),
            Error::Fenced("s1".into()),
            Error::Unreachable {
                dir: "/srv".into(),
                mode: 0o700,
            },
        ];
        for e in all {
            let json = serde_json::to_string(&WireError::from(&e)).unwrap();
            let back = Error::from(serde_json::from_str::<WireError>(&json).unwrap());
            assert_eq!(back.to_string(), e.to_string(), "{json}");
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{json}"
            );
            assert_eq!(back.errno(), e.errno(), "{json}");
        }
        for e in [
            Error::io("cannot read the record", io()),
            Error::path("cannot open", "/pool/s1", io()),
            Error::Runtime("crun: exit 1".into()),
            Error::Agent(sprite_init::FrameError::TooLarge(1 << 30)),
        ] {
            let json = serde_json::to_string(&WireError::from(&e)).unwrap();
            let back = Error::from(serde_json::from_str::<WireError>(&json).unwrap());
            assert!(matches!(back, Error::Fault(_)), "{json}");
            assert!(back.to_string().starts_with(&e.to_string()), "{back}");
        }
        let io_fault = Error::from(WireError::from(&Error::io("cannot read", io())));
        assert!(
            io_fault.to_string().contains("Permission denied"),
            "{io_fault}"
        );
    }

    /// Words kept from a host are kept once, and not without end.
    #[test]
    fn a_host_cannot_make_the_server_keep_words_without_end() {
        let kept = Kept::new(4);
        let first = kept.keep("EISDIR".into());
        assert!(std::ptr::eq(first, kept.keep("EISDIR".into())));
        for i in 0..10 {
            kept.keep(format!("word {i}"));
        }
        assert_eq!(kept.words.lock().unwrap().len(), 4);
        assert_eq!(kept.keep("yet another".into()), "(not told)");
        assert_eq!(kept.keep("EISDIR".into()), "EISDIR");
        assert_eq!(Kept::new(4).keep("x".repeat(1000)), "(not told)");
    }
}
