//! Replication: the local pool is the fast path, the bucket the durable
//! truth behind it.
//!
//! Every checkpoint is shipped as a `btrfs send` stream against the last
//! checkpoint of the same sprite already in the bucket (or, for its first,
//! against the image it was made from, itself shipped once for all its
//! sprites): only what changed travels. The stream is cut into segments of
//! [`SEGMENT`] bytes, each compressed, sealed and stored as its own object
//! ([`bucket`]); a manifest naming the segments' digests is stored last, so
//! a checkpoint is in the bucket exactly when its manifest is.
//!
//! In the bucket (`<prefix>/` before each key; `<born>` is when the sprite
//! was made, in ms since the Unix epoch, so a sprite made again under a
//! destroyed one's name never meets the other's objects):
//!
//! ```text
//! images/<image>@<hash>/manifest, images/<image>@<hash>/NNNNNN
//! sprites/<instance>/<sprite>/<born>/record        the sprite's record and the checkpoints it lists
//! sprites/<instance>/<sprite>/<born>/vN/manifest   checkpoint vN: its record, parent, segment digests
//! sprites/<instance>/<sprite>/<born>/vN/NNNNNN     its stream's segments
//! sprites/<instance>/<sprite>/<born>/destroyed     the sprite is destroyed; its objects are going
//! ```
//!
//! Retention ([`Host::prune`]): the bucket keeps every checkpoint the
//! sprite lists, the last one shipped, and hidden ones younger than the
//! host's retention, with every checkpoint one of those was sent against;
//! the rest is deleted, manifest first. A destroyed sprite's objects are
//! deleted after its tombstone is stored ([`Host::forget_destroyed`]), so
//! recovery never brings back a sprite that was destroyed, half deleted or
//! not. Chains stay short in bytes: a checkpoint is sent against the image
//! again once the streams since the chain's first outweigh that first one
//! and 128 MiB (or the chain is [`MAX_DEPTH`] long), so bringing a sprite back reads
//! at most about twice what it holds, and once a chain is left behind it
//! can go as a whole.
//!
//! On the host, `meta/replica.json` says which checkpoints are in the
//! bucket and whether the sprite's disk is here at all ([`Location`]);
//! `meta/shipping.json` is the journal of a shipment under way, so one cut
//! by a crash resumes where it stopped.

mod adopt;
pub mod bench;
pub mod bucket;
mod evict;
mod fetch;
mod prune;
mod replicate;
mod ship;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sprites_wire::CheckpointId;

use crate::error::Result;
use crate::record;
use crate::sprite::{CheckpointInfo, Host, Paths, SpriteRecord};

pub use bucket::{Bucket, BucketConfig, ReplicaKey};
pub use fetch::RecoverReport;
pub use ship::ShipReport;

/// Bytes of `btrfs send` stream per object.
pub const SEGMENT: usize = 16 << 20;

/// The longest chain of streams a checkpoint is sent on top of: past it,
/// the next is sent against the image again, so bringing a sprite back
/// never replays more than this many streams (each costs a `btrfs
/// receive`, some tens of milliseconds).
pub const MAX_DEPTH: u32 = 256;

/// Where a sprite's disk is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// In the local pool (and, for what was shipped, in the bucket too).
    #[default]
    Local,
    /// Only in the bucket: fetched back on first use.
    Bucket,
}

/// A checkpoint in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// Its place in the order this sprite's checkpoints were shipped.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// Bytes stored for it (sealed).
    pub bytes: u64,
    /// Streams between it and a whole one (or its image): what receiving
    /// it costs.
    #[serde(default)]
    pub depth: u32,
    /// The checkpoint its stream was sent against, if one (not an image).
    #[serde(default)]
    pub after: Option<CheckpointId>,
}

/// What the host knows of a sprite's replica (`meta/replica.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaState {
    #[serde(default)]
    pub location: Location,
    /// The checkpoints in the bucket, by id.
    #[serde(default)]
    pub shipped: BTreeMap<u32, Shipped>,
    #[serde(default)]
    pub next_seq: u64,
    /// The last failure to ship, cleared by the next success.
    #[serde(default)]
    pub error: Option<String>,
    /// The root's btrfs generation when the last hidden checkpoint was taken.
    #[serde(default)]
    pub generation: Option<u64>,
    /// That checkpoint: the root stands as it does only once it is shipped.
    #[serde(default)]
    pub generation_of: Option<CheckpointId>,
    /// When that was (ms since the Unix epoch).
    #[serde(default)]
    pub taken_at: u64,
    /// The bucket `shipped` speaks of.
    #[serde(default)]
    pub bucket: Option<String>,
    /// The SHA-256 of the [`StoredRecord`] last stored: it is stored again
    /// whenever it would read differently.
    #[serde(default)]
    pub record_digest: Option<String>,
    /// The bucket layout `shipped` speaks of (see [`LAYOUT`]).
    #[serde(default)]
    pub layout: u32,
    /// Between hosts: neither end brings its disk back meanwhile.
    #[serde(default)]
    pub moving: Option<Moving>,
}

/// A sprite's side of a move between hosts (see `adopt.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Moving {
    /// Handed over: it stays here, in the bucket alone, until released
    /// (or kept, should the move be given up).
    Leaving,
    /// Adopted: it wakes here once the host it left has released it.
    Arriving,
}

/// The layout of the bucket this host writes (the module's): what was
/// shipped under another counts as not shipped.
pub const LAYOUT: u32 = 1;

impl ReplicaState {
    pub(crate) fn read(paths: &Paths) -> Result<ReplicaState> {
        Ok(record::read(&paths.replica)?.unwrap_or_default())
    }

    /// The state as it stands for the store `label` names (see
    /// [`Bucket::label`]; `None`: not known yet, taken as the same): what
    /// was shipped to another store (the server was pointed elsewhere), or
    /// under another layout, counts as not shipped. Sequence numbers go on
    /// growing.
    pub(crate) fn read_for(paths: &Paths, label: Option<&str>) -> Result<ReplicaState> {
        let mut state = ReplicaState::read(paths)?;
        let elsewhere = matches!((&state.bucket, label), (Some(was), Some(now)) if was != now);
        let old_layout = state.layout != LAYOUT && state.bucket.is_some();
        if state.location == Location::Local && (elsewhere || old_layout) {
            state = ReplicaState {
                bucket: label.map(str::to_string).or(state.bucket),
                next_seq: state.next_seq,
                layout: LAYOUT,
                ..Default::default()
            };
        }
        Ok(state)
    }

    pub(crate) fn write(&self, paths: &Paths) -> Result<()> {
        record::write(&paths.replica, self)
    }

    /// The last checkpoint shipped.
    pub fn last(&self) -> Option<(CheckpointId, Shipped)> {
        self.shipped
            .iter()
            .max_by_key(|(_, s)| s.seq)
            .map(|(id, s)| (CheckpointId(*id), *s))
    }
}

/// A sprite's record as the bucket keeps it: with the checkpoints the
/// sprite lists, so one deleted here is not listed again on recovery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRecord {
    #[serde(flatten)]
    pub record: SpriteRecord,
    #[serde(default)]
    pub checkpoints: Vec<CheckpointId>,
    /// The sequence number the next shipment takes, as of this record: a
    /// checkpoint people see shipped from it on is listed too, should the
    /// record not have been stored again after it.
    #[serde(default)]
    pub next_seq: u64,
}

/// What a stream was sent against: the receiving side must hold it first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parent {
    Image(String),
    Checkpoint(CheckpointId),
}

/// One segment of a stream: its length and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub len: u64,
    pub sha256: String,
}

/// The last object of a shipment: what it holds and how to put it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub seq: u64,
    pub checkpoint: CheckpointInfo,
    pub parent: Option<Parent>,
    pub segments: Vec<Segment>,
    /// Milliseconds since the Unix epoch.
    pub shipped_at: u64,
    /// See [`Shipped::depth`].
    #[serde(default)]
    pub depth: u32,
}

/// An image's manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    pub image: String,
    pub segments: Vec<Segment>,
}

/// How a sprite's replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaPhase {
    /// No object store is configured.
    Off,
    /// Everything written is in the bucket.
    Current,
    /// Written to since the last shipment; the next one is due.
    Behind,
    /// The last attempt to ship failed (the bucket is away or refusing);
    /// shipping goes on trying.
    Failing,
    /// Its disk is coming back from the bucket.
    Fetching,
}

/// A sprite's replica as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    pub phase: ReplicaPhase,
    pub location: Location,
    pub last_shipped: Option<CheckpointId>,
    /// Milliseconds since the Unix epoch of that shipment.
    pub last_shipped_at: Option<u64>,
    /// How old the oldest change not in the bucket is, in seconds: what a
    /// lost machine would cost now.
    pub lag_seconds: u64,
    /// Checkpoints taken and not yet in the bucket.
    pub pending: usize,
    pub error: Option<String>,
    /// Bytes fetched and to fetch, while its disk comes back.
    pub fetching: Option<(u64, u64)>,
}

/// Where sprite `sprite`, made at `born` (see the module), keeps its objects.
pub(crate) fn sprite_prefix(instance: &str, sprite: &str, born: u64) -> String {
    format!("sprites/{instance}/{sprite}/{born}/")
}

pub(crate) fn segment_key(dir: &str, i: usize) -> String {
    format!("{dir}{i:06}")
}

impl Host {
    /// The sprite's replica: where its disk is, what is in the bucket,
    /// how far behind it is.
    pub fn replication(&self, name: &sprites_wire::SpriteName) -> Result<Replication> {
        let (paths, rec) = self.load(name)?;
        let state = ReplicaState::read_for(&paths, self.bucket_label().as_deref())?;
        let recorded = crate::sprite::recorded_ids(&paths)?;
        let last = state.last();
        let pending = recorded
            .iter()
            .filter(|id| !state.shipped.contains_key(&id.0))
            .count();
        let fetching = self.fetching(name);
        // Writes not yet committed show once they are (within seconds);
        // the replicator commits before it looks.
        let written = state.location == Location::Local
            && crate::btrfs::generation(&paths.root).ok() != state.generation;
        let phase = if self.cfg.bucket.is_none() {
            ReplicaPhase::Off
        } else if fetching.is_some() {
            ReplicaPhase::Fetching
        } else if state.error.is_some() {
            ReplicaPhase::Failing
        } else if pending > 0 || written {
            ReplicaPhase::Behind
        } else {
            ReplicaPhase::Current
        };
        let lag_seconds = match phase {
            ReplicaPhase::Behind | ReplicaPhase::Failing => {
                let since = last.map_or(rec.created_at, |(_, s)| s.at);
                crate::now_ms().saturating_sub(since) / 1000
            }
            _ => 0,
        };
        Ok(Replication {
            phase,
            location: state.location,
            last_shipped: last.map(|(id, _)| id),
            last_shipped_at: last.map(|(_, s)| s.at),
            lag_seconds,
            pending,
            error: state.error,
            fetching,
        })
    }

    /// Where the images shipped to `bucket` are marked, one empty file each.
    pub(crate) async fn image_marks(&self, bucket: &Bucket) -> Result<std::path::PathBuf> {
        Ok(self
            .pool()
            .images_dir()
            .join(".shipped")
            .join(bucket.id().await?))
    }

    /// The bucket's label, when known (see [`Bucket::label`]).
    pub(crate) fn bucket_label(&self) -> Option<String> {
        self.cfg.bucket.as_ref().and_then(|b| b.label_now())
    }

    pub(crate) fn bucket(&self) -> Result<&Bucket> {
        self.cfg
            .bucket
            .as_deref()
            .ok_or_else(|| crate::Error::Invalid("no object store is configured".into()))
    }
}
