//! JSON bodies of the public REST API, in the shapes the official Sprites
//! SDKs send and read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UrlSettings {
    /// `sprite` (private: the organization's members or a token) or `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Who may open a private URL: `org_users` (every member who may use
    /// the sprite) or `admins` (the organization's owners and admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_access: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Variables every command and service of the sprite gets (over the
    /// defaults; a command's own win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
}

/// Something new sprites can start from: a template of the server's
/// gallery, a checkpoint someone saved, or an imported root file system.
impl CreateSprite {
    /// A blank sprite named `name`, with the server's defaults.
    pub fn named(name: impl Into<String>) -> CreateSprite {
        CreateSprite {
            name: name.into(),
            sleep: None,
            config: None,
            url_settings: None,
            labels: None,
            wait_for_capacity: None,
            runtime: None,
            template: None,
            environment: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

/// `POST /v1/templates`: a checkpoint of a sprite becomes a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpdateSprite {
    #[serde(default)]
    pub url_settings: Option<UrlSettings>,
    #[serde(default)]
    pub sleep: Option<SleepSettings>,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// The environment it was made with: every command and service gets it.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The version of the runtime inside it (sprite-init).
    #[serde(default)]
    pub version: String,
    /// RFC 3339: its last start or wake.
    #[serde(default)]
    pub last_running_at: Option<String>,
    /// Brought back on another host when its own was lost: from what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Resumed>,
}

/// A sprite brought back on another host after its own was lost, from
/// its last state in the object store: what it wrote after that was lost
/// with the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Resumed {
    /// The host it was lost with.
    pub host: String,
    /// The checkpoint it resumed from (`v7`; often a hidden one the
    /// replication took), none when nothing had been shipped.
    pub checkpoint: Option<String>,
    /// RFC 3339: when that checkpoint reached the object store.
    pub shipped_at: Option<String>,
    /// RFC 3339: when it came back.
    pub at: String,
}

/// How a sprite's copy in the object store stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeepAwake {
    pub id: String,
    pub reason: String,
    /// RFC 3339.
    pub until: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKeepAwake {
    /// How long, in seconds (at most a week).
    pub seconds: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/sprites/{name}/fork`: a new sprite from this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Fork {
    /// The new sprite's name.
    pub name: String,
    /// The checkpoint to fork from; the sprite as it is now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// `POST /v1/sprites/{name}/sleep`; the body is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SleepRequest {
    /// Stop the processes (only the disk stays) instead of freezing them.
    #[serde(default)]
    pub cold: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteList {
    pub sprites: Vec<Sprite>,
    pub has_more: bool,
    pub next_continuation_token: Option<String>,
    pub running: usize,
    pub warm: usize,
    pub cold: usize,
    /// How many of the organization's sprites may run at once; none: no
    /// limit.
    #[serde(default)]
    pub running_limit: Option<usize>,
    /// How many may sleep warm at once (beyond it they sleep cold).
    #[serde(default)]
    pub warm_limit: Option<usize>,
}

/// One line of `GET /v1/sprites` asked with `Accept: application/x-ndjson`:
/// a sprite's state (each listed sprite first, then each one that
/// changes), or a `heartbeat`; every line carries the organization's
/// counts as they stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteStateLine {
    /// `heartbeat` for a line about no sprite.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `running`, `warm`, `cold`, or `destroyed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_running_at: Option<String>,
    pub timestamp: String,
    pub org: OrgCounts,
}

/// How many of the organization's sprites (those the caller sees) stand
/// in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrgCounts {
    pub name: String,
    pub running: usize,
    pub warm: usize,
    pub cold: usize,
}

/// The first message on a port-forwarding WebSocket
/// (`/v1/sprites/{name}/proxy`): where in the sprite to connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProxyTarget {
    #[serde(default = "localhost")]
    pub host: String,
    pub port: u16,
}

fn localhost() -> String {
    "localhost".into()
}

/// The answer to a [`ProxyTarget`]: connected (bytes follow as binary
/// messages), or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProxyStatus {
    Connected { host: String, port: u16 },
    Error { message: String },
}

/// `GET /healthz`: the server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /v1/host`: the machine's sprites, runtime and pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostSummary {
    /// The sandbox runtime: `crun` or `runc`.
    pub runtime: String,
    pub sprites: usize,
    pub running: usize,
    pub pool_used_bytes: u64,
}

/// `GET /v1/admin/hosts`: the hosts of the cluster (host daemons), as the
/// control plane last heard from them; none when the server keeps its
/// sprites on its own machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostList {
    pub hosts: Vec<ClusterHost>,
}

/// A host of the cluster: where it is, whether it answers, its room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClusterHost {
    /// Its name in the cluster, as its certificate says.
    pub name: String,
    /// Where API servers reach it (`host:port`).
    pub address: String,
    /// `up`: it answered within the host timeout; `silent`: it did not.
    pub state: HostState,
    /// When it last answered (RFC 3339), if ever.
    pub last_seen_at: Option<String>,
    /// Why it did not answer the last time, if it did not.
    pub last_error: Option<String>,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// What its kernel could still give.
    pub memory_available_bytes: u64,
    /// The memory limits of its running sprites together.
    pub memory_promised_bytes: u64,
    pub disk_bytes: u64,
    pub disk_free_bytes: u64,
    pub running: u64,
    pub sleeping: u64,
    /// Sprites the control plane knows to live on it.
    pub sprites: u64,
    /// Being drained: it takes no new sprite.
    pub cordoned: bool,
}

/// `POST /v1/admin/sprites/{org}/{name}/move`: where to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MoveSprite {
    /// The host to move it to; absent: the other host with the most room.
    #[serde(default)]
    pub to: Option<String>,
}

/// A sprite moved to another host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteMoved {
    pub organization: String,
    pub name: String,
    /// The host it lives on now.
    pub host: String,
    /// How long it answered nothing: from its stop on the old host to its
    /// wake on the new one.
    pub downtime_ms: u64,
}

/// A sprite a drain could not move, and why; it stays where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NotMoved {
    pub organization: String,
    pub name: String,
    pub error: String,
}

/// `POST /v1/admin/hosts/{host}/drain`: the host takes no new sprite, and
/// every sprite of it was moved, or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DrainReport {
    pub host: String,
    pub moved: Vec<SpriteMoved>,
    pub failed: Vec<NotMoved>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Up,
    Silent,
}

/// Every error body: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// A stable code (`not_found`); read leniently, as some proxies in
    /// between send only a message.
    #[serde(default)]
    pub error: String,
    pub message: String,
    /// File errors: the errno's name (`ENOENT`), which the SDKs' file APIs
    /// turn into their own exceptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A limit reached (429): the limit, its window, how many count
    /// against it now, and when to try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl ErrorBody {
    /// A body of `error` and `message` only.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: error.into(),
            message: message.into(),
            code: None,
            limit: None,
            window_seconds: None,
            current_count: None,
            retry_after_seconds: None,
        }
    }
}

/// What one sprite has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UsageReport {
    pub sprites: Vec<SpriteUsage>,
    pub active_seconds: u64,
    pub disk_bytes: u64,
}

/// One line of the live event stream (`GET /v1/events`, server-sent
/// events): something happened to a sprite of the caller's organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// A checkpoint of a sprite (`GET /v1/sprites/{name}/checkpoints` and
/// `.../checkpoints/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Checkpoint {
    pub id: String,
    /// RFC 3339, milliseconds.
    pub create_time: String,
    #[serde(default)]
    pub comment: String,
    /// Its ancestry, newest first: the checkpoint the sprite stood on when
    /// it was taken, that one's, and so on.
    #[serde(default)]
    pub history: Vec<String>,
    #[serde(default)]
    pub parent: Option<String>,
    /// Taken by the system (before a restore, or to replicate), not asked for.
    #[serde(default)]
    pub auto: bool,
    /// Taken only to replicate; listed only with `?hidden=true`.
    #[serde(default)]
    pub hidden: bool,
    /// `auto` and `parent` again, by the names the SDKs read.
    #[serde(default)]
    pub is_auto: bool,
    #[serde(default)]
    pub source_id: Option<String>,
    /// Empty: the checkpoint is whole (a checkpoint is listed only once
    /// its snapshot and record are both written).
    #[serde(default)]
    pub health: String,
}

/// `POST /v1/sprites/{name}/restart`: every process of the sprite stopped
/// and started again on the same disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Restarted {
    pub sprite_name: String,
    /// What runs it here: the host's name for the sprite.
    pub machine_id: String,
    pub message: String,
}

/// `POST /v1/sprites/{name}/upgrade`: the sprite on the host's current
/// `sprite-init`, its disk untouched. Only a sprite whose init is another
/// restarts (its processes end, as in a restart); one asleep on disk stays
/// asleep and takes the current init when it wakes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Upgraded {
    pub sprite_name: String,
    /// Whether it restarted onto the new init.
    pub restarted: bool,
    pub message: String,
}

/// `GET /v1/sprites/{name}/check`: whether the sprite answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteCheck {
    pub sprite_name: String,
    pub sprite_id: String,
    /// `healthy`, `unhealthy`, or its sleep (`warm`, `cold`) when asleep.
    pub status: String,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339.
    pub checked_at: String,
    /// Milliseconds its init took to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<u64>,
}

/// The body of `POST /v1/sprites/{name}/checkpoint` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewCheckpoint {
    #[serde(default)]
    pub comment: String,
}

/// One line of an NDJSON progress answer (a checkpoint, a restore, a
/// session's signal), as the SDKs read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    Info {
        data: String,
        /// A checkpoint taken: its id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// A restore: the checkpoint the state before it is kept as.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup: Option<String>,
    },
    Complete {
        data: String,
    },
    Error {
        error: String,
    },
    /// A session's kill: the signal asked was sent.
    Signal(SessionEvent),
    /// A session's kill: the session still ran when the caller's timeout
    /// passed.
    Timeout(SessionEvent),
    /// A session's kill: the session ended (by the signal asked, or by
    /// itself meanwhile).
    Exited(SessionEvent),
    /// A session's kill: the SIGKILL that followed the timeout was sent.
    Killed(SessionEvent),
}

/// What happened to a session being killed, in the fields both SDKs read:
/// `message` (`@fly/sprites`) and the same words as `data` (`sprites-py`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionEvent {
    pub message: String,
    pub data: String,
    /// The signal sent, by name (`SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// The session's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl SessionEvent {
    pub fn new(message: impl Into<String>) -> SessionEvent {
        let message = message.into();
        SessionEvent {
            data: message.clone(),
            message,
            ..SessionEvent::default()
        }
    }
}

impl Progress {
    pub fn info(data: impl Into<String>) -> Progress {
        Progress::Info {
            data: data.into(),
            id: None,
            backup: None,
        }
    }

    pub fn complete(data: impl Into<String>) -> Progress {
        Progress::Complete { data: data.into() }
    }

    /// What the line says, in words.
    pub fn words(&self) -> &str {
        match self {
            Progress::Info { data, .. } | Progress::Complete { data } => data,
            Progress::Error { error } => error,
            Progress::Signal(e)
            | Progress::Timeout(e)
            | Progress::Exited(e)
            | Progress::Killed(e) => &e.message,
        }
    }
}

/// `POST /v1/sprites/{name}/exec/{session}/kill`: the signal to send and
/// how long to wait for the session to end before a SIGKILL; as a JSON
/// body (`sprites-py`) or in the query (`@fly/sprites`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KillSession {
    /// `TERM`, `SIGHUP`, ... or a number; SIGKILL when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Seconds: a number, or text like `10`, `10s`, `500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<serde_json::Value>,
}

/// What changed between a checkpoint and another, or the sprite's disk now
/// (`GET /v1/sprites/{name}/checkpoints/{id}/diff[?to=...]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CheckpointDiff {
    pub from: String,
    /// The other checkpoint; none: the disk now.
    #[serde(default)]
    pub to: Option<String>,
    pub changes: Vec<PathChange>,
}

/// One path that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PathChange {
    /// Absolute inside the sprite.
    pub path: String,
    pub change: ChangeKind,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    /// `added`, `modified`, `deleted`: as the JSON says it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// A text message of the exec WebSocket (`/v1/sprites/{name}/exec`), either
/// way; output and input travel as binary messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecMessage {
    /// Server to client, first: the session the command runs in.
    SessionInfo {
        session_id: String,
        tty: bool,
        command: String,
    },
    /// Server to client, with a terminal: the command exited.
    Exit { exit_code: i32 },
    /// Client to server: the terminal's size now.
    Resize { rows: u16, cols: u16 },
    /// Client to server: send this signal (`TERM`, `SIGINT`, a number) to
    /// the command.
    Signal { signal: String },
}

impl ExecMessage {
    /// As the WebSocket carries it.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("exec messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exec_messages_read_as_the_sdks_write_them() {
        let resize: ExecMessage =
            serde_json::from_value(json!({"type": "resize", "cols": 120, "rows": 40})).unwrap();
        assert_eq!(
            resize,
            ExecMessage::Resize {
                rows: 40,
                cols: 120
            }
        );
        assert_eq!(
            serde_json::to_value(ExecMessage::Exit { exit_code: 3 }).unwrap(),
            json!({"type": "exit", "exit_code": 3})
        );
        assert!(serde_json::from_value::<ExecMessage>(
            json!({"type": "resize", "cols": -1, "rows": 2})
        )
        .is_err());
    }

    #[test]
    fn progress_lines_read_as_the_sdks_read_them() {
        let line = Progress::Info {
            data: "Checkpoint v3 created".into(),
            id: Some("v3".into()),
            backup: None,
        };
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            json!({"type": "info", "data": "Checkpoint v3 created", "id": "v3"})
        );
        assert_eq!(
            serde_json::to_value(Progress::Error { error: "no".into() }).unwrap(),
            json!({"type": "error", "error": "no"})
        );
    }
}

/// A session of a sprite: a command that runs, or ran, with its terminal
/// if it has one (`GET /v1/sprites/{name}/exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecSession {
    pub id: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub workdir: String,
    /// RFC 3339, seconds.
    #[serde(default)]
    pub created: String,
    /// RFC 3339, seconds: its last output.
    #[serde(default)]
    pub last_activity: String,
    #[serde(default)]
    pub bytes_per_second: u64,
    #[serde(default)]
    pub is_active: bool,
    #[serde(default)]
    pub tty: bool,
    /// Clients attached to it now.
    #[serde(default)]
    pub clients: u64,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Handles of the people attached to it now.
    #[serde(default)]
    pub attached: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecSessionList {
    pub sessions: Vec<ExecSession>,
}

/// The exec stream's binary framing without a terminal (WebSocket binary
/// messages, and each chunk of an HTTP exec answer): a type byte, then the
/// bytes; an exit is the type byte and the code (0-255).
pub mod frame {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const EXIT: u8 = 3;
    pub const STDIN_EOF: u8 = 4;
}
