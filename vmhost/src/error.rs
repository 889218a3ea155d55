//! Errors of host operations. Callers branch on the variants; the
//! `#[source]` chain carries the system detail for logs.

use std::path::PathBuf;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
