//! JSON bodies of the public REST API, in the shapes the official Sprites
//! SDKs send and read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlSettings {
    /// `sprite` (private: the organization's members or a token) or `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpriteConfig {
    #[serde(default)]
    pub ram_mb: Option<u64>,
    #[serde(default)]
    pub cpus: Option<u32>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub storage_gb: Option<u64>,
}

/// When a sprite goes to sleep after its last activity; 0 is never, and
/// an absent field keeps (or, at creation, takes the server's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepSettings {
    /// Seconds idle before it freezes in memory (wakes in milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_after_secs: Option<u64>,
    /// Seconds idle before its processes stop (only the disk stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_after_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSprite {
    pub name: String,
    #[serde(default)]
    pub sleep: Option<SleepSettings>,
    #[serde(default)]
    pub config: Option<SpriteConfig>,
    #[serde(default)]
    pub url_settings: Option<UrlSettings>,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Accepted for compatibility; this server never lacks capacity for long.
    #[serde(default)]
    pub wait_for_capacity: Option<bool>,
    /// Accepted for compatibility ("default" or "dev").
    #[serde(default)]
    pub runtime: Option<String>,
    /// Start from this template (see `GET /v1/templates`) instead of the
    /// blank base image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Something new sprites can start from: a template of the server's
/// gallery, a checkpoint someone saved, or an imported root file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// What `template` names in a create request.
    pub name: String,
    pub title: String,
    pub description: String,
    /// `gallery`, `checkpoint` or `image`.
    pub kind: String,
    /// Who sees it: `everyone`, `organization` or `owner`.
    pub scope: String,
    /// `ready`, `queued`, `building` or `failed`.
    pub state: String,
    /// The build's latest step while it is being built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The file to open first in the editor (its "what to edit first" note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
    /// Path of its picture on this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Who made it (a user's handle); absent for the gallery's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

/// `POST /v1/templates`: a checkpoint of a sprite becomes a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplate {
    pub name: String,
    pub sprite: String,
    pub checkpoint: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `owner` (the default: only its maker sees it) or `organization`.
    #[serde(default)]
    pub scope: Option<String>,
    /// The file to open first in sprites made from it.
    #[serde(default)]
    pub open: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateSprite {
    #[serde(default)]
    pub url_settings: Option<UrlSettings>,
    #[serde(default)]
    pub sleep: Option<SleepSettings>,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sprite {
    pub id: String,
    pub name: String,
    pub organization: String,
    /// `running`, `warm` (asleep in memory) or `cold` (asleep on disk).
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub url: String,
    pub url_settings: UrlSettings,
    pub labels: Vec<String>,
    /// The sleep times in force (0: never).
    #[serde(default)]
    pub sleep: SleepSettings,
    /// The last request, command output or API call that kept it awake.
    #[serde(default)]
    pub last_active_at: Option<String>,
    /// Tasks keeping it awake now.
    #[serde(default)]
    pub keep_awake: Vec<KeepAwake>,
    /// Its durable copy in the server's object store.
    #[serde(default)]
    pub replication: Replication,
}

/// How a sprite's copy in the object store stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    pub state: ReplicationState,
    pub location: SpriteLocation,
    /// The last checkpoint in the object store.
    #[serde(default)]
    pub last_shipped_checkpoint: Option<String>,
    /// RFC 3339, when it was shipped.
    #[serde(default)]
    pub last_shipped_at: Option<String>,
    /// How old the oldest change not yet in the object store is: what
    /// losing this machine would cost now.
    #[serde(default)]
    pub lag_seconds: u64,
    /// Why the last attempt to ship failed, while it fails.
    #[serde(default)]
    pub error: Option<String>,
    /// While its disk comes back from the object store: bytes so far.
    #[serde(default)]
    pub fetched_bytes: Option<u64>,
    /// ... and in all.
    #[serde(default)]
    pub fetch_total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationState {
    /// The server has no object store.
    #[default]
    Off,
    /// Everything written is in the object store.
    Current,
    /// Written to since; the next shipment is due.
    Behind,
    /// The object store is away or refusing; shipping goes on trying.
    Failing,
    /// Its disk is coming back from the object store.
    Fetching,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpriteLocation {
    /// On this server's disk.
    #[default]
    Local,
    /// Only in the object store: fetched back on first use.
    Bucket,
}

/// A reason to stay awake until a time, whatever the activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepAwake {
    pub id: String,
    pub reason: String,
    /// RFC 3339.
    pub until: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeepAwake {
    /// How long, in seconds (at most a week).
    pub seconds: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpriteList {
    pub sprites: Vec<Sprite>,
    pub has_more: bool,
    pub next_continuation_token: Option<String>,
    pub running: usize,
    pub warm: usize,
    pub cold: usize,
}

/// Every error body: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// What one sprite has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpriteUsage {
    pub name: String,
    pub status: String,
    /// Seconds it has been awake (running) since it was made.
    pub active_seconds: u64,
    /// Bytes of storage it holds: its file system and its checkpoints.
    pub disk_bytes: u64,
}

/// What an organization's sprites have used, each and in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub sprites: Vec<SpriteUsage>,
    pub active_seconds: u64,
    pub disk_bytes: u64,
}

/// One line of the live event stream (`GET /v1/events`, server-sent
/// events): something happened to a sprite of the caller's organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpriteEvent {
    /// `sprite.created`, `sprite.status`, `sprite.updated`,
    /// `sprite.destroyed`, `sprite.replication` (its copy in the object
    /// store moved on), `checkpoint.created`, `checkpoint.restored`,
    /// `checkpoint.deleted`, `file.written` (through the API, by someone
    /// sharing the sprite); or `resync` when the stream lost events and
    /// the client should fetch the list again.
    #[serde(rename = "type")]
    pub kind: String,
    /// The sprite's name; empty for `resync`.
    #[serde(default)]
    pub sprite: String,
    /// Its status after the change: `running`, `warm`, `cold`, `destroyed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// `file.written`: the file's path in the sprite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `file.written`: who wrote it (a handle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `sprite.replication`: how its copy stands now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
    /// RFC 3339, milliseconds.
    pub at: String,
}
