//! Sprites: the vocabulary of the host. Every command a sprite accepts is a
//! method of [`Host`], defined in one file per verb, with the phases it is
//! allowed in and a typed error otherwise.
//!
//! A sprite on disk (`hosts/<instance>/sprites/<name>/`):
//!
//! ```text
//! root/                      writable subvolume: the sprite's whole file system
//! checkpoints/vN             read-only subvolumes, shown inside at /.sprite/checkpoints
//! meta/sprite.json           the record: desired phase, limits, origin, current checkpoint
//! meta/checkpoints/vN.json   a checkpoint's record; a vN without it is unfinished
//! meta/op.json               intent of an unfinished restore, finished on start
//! root.old                   the replaced root during a restore
//! init.log                   sprite-init's own output
//! ```
//!
//! The record holds the *desired* phase; the observed phase comes from the
//! runtime (running, frozen, or not running). On start, [`Host::open`]
//! reconciles the two before anything is served.

mod capacity;
mod checkpoint;
mod create;
mod destroy;
mod exec;
mod fence;
mod fork;
mod lifecycle;
pub(crate) mod mgmt;
mod policy;
mod reconcile;
pub mod replica;
pub use policy::POLICY_FILE;
mod restart;
mod restore;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy};
use sprites_wire::{CheckpointId, SpriteName};

use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::record;
use crate::runtime::cli::{Flavor, OciCli};
use crate::runtime::{IdMap, Limits, Runtime, SandboxStatus};

pub use capacity::Capacity;
pub use checkpoint::CheckpointInfo;
pub(crate) use checkpoint::{recorded_ids, snapshot_ids, sync_fs, Taken, HIDDEN_BASE};
pub use create::CreateOptions;
pub use exec::Connection;
pub use fence::Held;
pub use mgmt::{Duplex, MgmtConnection, MgmtListener};
pub use restart::Check;

pub use crate::phase::Phase;

/// The phase a sprite should be in; kept in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Running,
    SleepingWarm,
    SleepingCold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub sprite: String,
    pub checkpoint: Option<CheckpointId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpriteRecord {
    pub name: String,
    pub hostname: String,
    /// `<image>@<hash>` it was created from.
    pub image: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    pub desired: Desired,
    pub limits: Limits,
    pub origin: Option<Origin>,
    /// The checkpoint the sprite stands on: the last one taken or restored.
    pub current: Option<CheckpointId>,
    /// The lowest id the next checkpoint may take.
    #[serde(default)]
    pub next_checkpoint: u32,
    /// The lowest id the next hidden checkpoint may take (see
    /// `checkpoint::HIDDEN_BASE`; 0: none taken yet).
    #[serde(default)]
    pub next_hidden: u32,
    #[serde(default)]
    pub activity: Activity,
    /// Its own environment, as it was made with (inside, in
    /// `sprite_init::ENVIRONMENT_FILE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// The names it may reach (see [`crate::net::policy`]); no rules: any.
    #[serde(default, skip_serializing_if = "network_policy_is_open")]
    pub network_policy: NetworkPolicy,
    /// What of the kernel its processes may ask for; set at each start.
    #[serde(default, skip_serializing_if = "is_default")]
    pub privileges: PrivilegesPolicy,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn network_policy_is_open(p: &NetworkPolicy) -> bool {
    p.rules.is_empty()
}

impl SpriteRecord {
    /// Records the phase the sprite should be in, and with it the start or
    /// the end of a stretch of active time.
    pub(crate) fn set_desired(&mut self, desired: Desired) {
        let now = crate::now_ms();
        match (desired == Desired::Running, self.activity.since) {
            (true, None) => {
                self.activity.since = Some(now);
                self.activity.asleep_since = None;
                self.activity.last_running_at = Some(now);
            }
            (false, Some(since)) => {
                self.activity.active_ms += now.saturating_sub(since);
                self.activity.since = None;
                self.activity.asleep_since = Some(now);
            }
            _ => {}
        }
        self.desired = desired;
    }
}

/// The time a sprite has spent wanting to run (awake), across sleeps,
/// restarts of the host and restores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Milliseconds awake before the current stretch.
    pub active_ms: u64,
    /// Start of the current stretch (ms since the Unix epoch); `None`
    /// while asleep.
    pub since: Option<u64>,
    /// Start of the current sleep (ms since the Unix epoch), when known.
    #[serde(default)]
    pub asleep_since: Option<u64>,
    /// Its last start or wake (ms since the Unix epoch), kept through the
    /// sleep that follows.
    #[serde(default)]
    pub last_running_at: Option<u64>,
}

impl Activity {
    pub fn started_now() -> Activity {
        let now = crate::now_ms();
        Activity {
            active_ms: 0,
            since: Some(now),
            asleep_since: None,
            last_running_at: Some(now),
        }
    }

    /// Milliseconds awake up to `now`.
    pub fn total_ms(&self, now: u64) -> u64 {
        self.active_ms + self.since.map_or(0, |s| now.saturating_sub(s))
    }
}

/// A change of a sprite's observed phase, as the host made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    pub sprite: SpriteName,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpriteInfo {
    pub name: String,
    pub hostname: String,
    pub phase: Phase,
    pub image: String,
    pub created_at: u64,
    pub limits: Limits,
    pub origin: Option<Origin>,
    pub current_checkpoint: Option<CheckpointId>,
    /// Milliseconds it has been awake in all.
    pub active_ms: u64,
    /// When its current sleep began (ms since the Unix epoch), if asleep.
    pub asleep_since: Option<u64>,
    /// Its own environment, as it was made with.
    pub environment: BTreeMap<String, String>,
    /// Its last start or wake (ms since the Unix epoch), if known.
    pub last_running_at: Option<u64>,
}

pub(crate) struct Paths {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub old_root: PathBuf,
    pub checkpoints: PathBuf,
    pub record: PathBuf,
    pub checkpoint_meta: PathBuf,
    pub op: PathBuf,
    pub replica: PathBuf,
    pub shipping: PathBuf,
    pub log: PathBuf,
}

impl Paths {
    pub fn new(dir: PathBuf) -> Paths {
        let meta = dir.join("meta");
        Paths {
            root: dir.join("root"),
            old_root: dir.join("root.old"),
            checkpoints: dir.join("checkpoints"),
            record: meta.join("sprite.json"),
            checkpoint_meta: meta.join("checkpoints"),
            op: meta.join("op.json"),
            replica: meta.join("replica.json"),
            shipping: meta.join("shipping.json"),
            log: dir.join("init.log"),
            dir,
        }
    }

    pub fn checkpoint(&self, id: CheckpointId) -> PathBuf {
        self.checkpoints.join(id.to_string())
    }

    pub fn checkpoint_record(&self, id: CheckpointId) -> PathBuf {
        self.checkpoint_meta.join(format!("{id}.json"))
    }
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Holds the pool (or its image file).
    pub data_dir: PathBuf,
    /// Runtime state that must not outlive a reboot: sockets, the runtime's state.
    pub run_dir: PathBuf,
    /// Separates the sprites of several hosts sharing one pool (tests).
    pub instance: String,
    /// The static `sprite-init` binary.
    pub init_binary: PathBuf,
    /// Apparent size of a new pool image file.
    pub pool_image_size: u64,
    pub ids: IdMap,
    /// Image new sprites come from unless told otherwise.
    pub default_image: String,
    /// How long processes get between SIGTERM and SIGKILL on a cold sleep.
    pub stop_grace: Duration,
    /// Which OCI runtime runs the sandboxes.
    pub runtime: Flavor,
    /// Sprites reach the internet through the host (see [`crate::net`]).
    pub egress: bool,
    /// The name servers sprites' resolvers ask (see
    /// [`crate::net::resolver`]); the host's own by default.
    pub name_servers: Vec<std::net::SocketAddr>,
    /// Where checkpoints are replicated to, if anywhere (see [`crate::sprite::replica`]).
    pub bucket: Option<Arc<crate::sprite::replica::Bucket>>,
    /// Dirty data is written out in the background from this many bytes
    /// on (see [`crate::pool::write_out_early`]); `None` leaves the
    /// kernel's setting alone.
    pub write_out_from: Option<u64>,
    /// How long the bucket keeps hidden checkpoints (see
    /// [`crate::sprite::replica`]'s retention).
    pub retention: Duration,
    /// With a cluster: how long a hold of the control plane lasts (see
    /// [`fence`]); `None`: the sprites are this host's alone.
    pub lease: Option<Duration>,
}

impl HostConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            data_dir: data_dir.into(),
            run_dir: PathBuf::from("/run/sprites"),
            instance: "default".into(),
            init_binary: find_init_binary(),
            pool_image_size: 256 << 30,
            ids: IdMap {
                base: 100_000,
                size: 65_536,
            },
            default_image: "debian".into(),
            stop_grace: Duration::from_secs(3),
            runtime: Flavor::Crun,
            egress: true,
            name_servers: crate::net::resolver::host_name_servers(),
            bucket: None,
            write_out_from: Some(WRITE_OUT_FROM),
            retention: Duration::from_secs(24 * 3600),
            lease: None,
        }
    }
}

/// See [`HostConfig::write_out_from`]: a checkpoint right after a sprite
/// wrote much then writes out at most about this much.
pub const WRITE_OUT_FROM: u64 = 32 << 20;

/// The lock of `name` among `locks`, made on first use.
async fn lock_of(
    locks: &Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    name: &SpriteName,
) -> tokio::sync::OwnedMutexGuard<()> {
    let m = locks
        .lock()
        .unwrap()
        .entry(name.to_string())
        .or_default()
        .clone();
    m.lock_owned().await
}

/// `$SPRITE_INIT`, else `sprite-init` beside the running executable, else
/// the static build in the cargo target directory the executable came from.
pub fn find_init_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SPRITE_INIT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().unwrap_or(Path::new("."));
    let mut candidates = vec![dir.join("sprite-init")];
    for up in [dir.parent(), dir.parent().and_then(Path::parent)]
        .into_iter()
        .flatten()
    {
        for profile in ["release", "debug"] {
            candidates.push(
                up.join("x86_64-unknown-linux-musl")
                    .join(profile)
                    .join("sprite-init"),
            );
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file() && is_static(p))
        .cloned()
        .unwrap_or_else(|| candidates.remove(0))
}

/// Whether the executable at `path` needs no dynamic loader: it runs in
/// any image (a `cargo build` of the workspace leaves a dynamically linked
/// `sprite-init` beside the other binaries, which must not be taken).
fn is_static(path: &Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    // The loader's path (PT_INTERP) sits at the start of a dynamic ELF.
    !head[..n].windows(8).any(|w| w == b"ld-linux")
}

/// One machine's sprites.
pub struct Host {
    pub(crate) cfg: HostConfig,
    pool: Pool,
    runtime: Arc<dyn Runtime>,
    pub(crate) dir: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held while a sprite's replica is being changed in the bucket (a
    /// shipment, a pruning): one at a time per sprite.
    replica_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: tokio::sync::broadcast::Sender<HostEvent>,
    /// Sprites whose replica changed (see [`Host::replica_changes`]).
    replica_events: tokio::sync::broadcast::Sender<SpriteName>,
    /// Network addresses of running sprites, with egress.
    slots: Option<crate::net::Slots>,
    /// Their resolvers and network policies, with egress.
    pub(crate) egress: Option<Arc<crate::net::egress::Egress>>,
    /// Links being made, by sandbox: a command waits for its sprite's.
    links: Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>>,
    /// Held while an image goes to or comes from the bucket.
    pub(crate) image_shipping: tokio::sync::Mutex<()>,
    /// Bytes fetched and to fetch, by sprite, while a disk comes back from the bucket.
    pub(crate) fetching: Mutex<HashMap<String, (u64, u64)>>,
    /// The processes holding running sprites' listening sockets, by
    /// sandbox and inode (see [`Host::ports`]).
    pub(crate) socket_owners: Mutex<HashMap<String, HashMap<u64, u32>>>,
    /// Sprites being restarted: what asks their init waits for the new one.
    pub(crate) restarting: Mutex<std::collections::HashSet<String>>,
    pub(crate) fence: fence::Fence,
}

impl Host {
    /// Opens (creating on first use) the pool, then reconciles every sprite
    /// with the runtime before returning: after this, records, disk and
    /// processes agree.
    pub async fn open(cfg: HostConfig) -> Result<Host> {
        SpriteName::parse(&cfg.instance)?;
        if !cfg.init_binary.is_file() {
            return Err(Error::path(
                "sprite-init binary not found (build it or set SPRITE_INIT)",
                &cfg.init_binary,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let pool = Pool::open_or_create(&cfg.data_dir, cfg.pool_image_size)?;
        if let Some(bytes) = cfg.write_out_from {
            // Checkpoints are slower without it, never wrong.
            if let Err(e) = crate::pool::write_out_early(bytes) {
                tracing::warn!(error = %e, "dirty data is not written out early");
            }
        }
        let runtime: Arc<dyn Runtime> = Arc::new(OciCli::new(cfg.runtime, &cfg.run_dir)?);
        let dir = pool.host_dir(&cfg.instance);
        for d in ["sprites", "staging", "trash", "incoming"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(|e| Error::path("cannot create", &p, e))?;
        }
        let sock = cfg.run_dir.join("sock");
        std::fs::create_dir_all(&sock).map_err(|e| Error::path("cannot create", &sock, e))?;
        let (slots, egress) = if cfg.egress {
            crate::net::install()?;
            (
                Some(crate::net::Slots::new(&cfg.run_dir)?),
                Some(Arc::new(crate::net::egress::Egress::install(
                    &cfg.instance,
                    cfg.name_servers.clone(),
                )?)),
            )
        } else {
            (None, None)
        };
        let resolv = cfg.run_dir.join("resolv.conf");
        // Written in place: running sprites have this very file mounted.
        std::fs::write(&resolv, crate::net::resolver::resolv_conf())
            .map_err(|e| Error::path("cannot write", &resolv, e))?;
        let host = Host {
            slots,
            egress,
            cfg,
            pool,
            runtime,
            dir,
            locks: Mutex::new(HashMap::new()),
            replica_locks: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::channel(EVENT_BACKLOG).0,
            replica_events: tokio::sync::broadcast::channel(EVENT_BACKLOG).0,
            links: Mutex::new(HashMap::new()),
            image_shipping: tokio::sync::Mutex::new(()),
            fetching: Mutex::new(HashMap::new()),
            socket_owners: Mutex::new(HashMap::new()),
            restarting: Mutex::new(std::collections::HashSet::new()),
            fence: fence::Fence::default(),
        };
        host.fence_at_start().await?;
        host.reconcile().await?;
        if let Some(bucket) = &host.cfg.bucket {
            match bucket.check_key().await {
                Ok(()) => {}
                Err(e @ Error::Invalid(_)) => return Err(e),
                // Away now: sprites work on, shipping catches up later.
                Err(e) => {
                    tracing::warn!(bucket = bucket.url(), error = %e, "the object store does not answer")
                }
            }
        }
        Ok(host)
    }

    /// Ends what this process serves the sprites (their resolvers; the
    /// sprites themselves go on running), returning once it has. Dropping
    /// the host does the same a moment later.
    pub async fn close(self) {
        if let Some(egress) = &self.egress {
            egress.close().await;
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    /// Takes loopback connections to or from TCP `port` (the server's) out
    /// of the connection tracking the sprites' egress turns on for the
    /// host, while the returned guard lives (see `net::skip_tracking`).
    pub fn untrack_loopback(&self, port: u16) -> Result<crate::net::UntrackedLoopback> {
        crate::net::UntrackedLoopback::new(port)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn runtime(&self) -> &dyn Runtime {
        &*self.runtime
    }

    /// Every phase change from now on. A receiver that falls more than
    /// [`EVENT_BACKLOG`] events behind is told how many it missed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// Every sprite whose replica changes from now on (see
    /// [`Host::replication`]): shipped, failing or recovering from a
    /// failure, evicted, and as its disk comes back (every 2% of it).
    pub fn replica_changes(&self) -> tokio::sync::broadcast::Receiver<SpriteName> {
        self.replica_events.subscribe()
    }

    pub(crate) fn replica_changed(&self, sprite: &SpriteName) {
        let _ = self.replica_events.send(sprite.clone());
    }

    pub(crate) fn emit(&self, sprite: &SpriteName, phase: Phase) {
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(HostEvent {
            sprite: sprite.clone(),
            phase,
        });
    }

    /// Bytes of the pool the sprite holds: its root and its checkpoints,
    /// as the pool's quota accounting charges them. Zero when quotas are
    /// off.
    pub fn disk_usage(&self, name: &SpriteName) -> Result<u64> {
        let (paths, _) = self.load(name)?;
        let mut subvolumes = vec![paths.root.clone()];
        match std::fs::read_dir(&paths.checkpoints) {
            Ok(dir) => subvolumes.extend(dir.flatten().map(|e| e.path())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::path("cannot list", &paths.checkpoints, e)),
        }
        let mut total = 0;
        for subvolume in &subvolumes {
            match crate::btrfs::charged_bytes(subvolume) {
                Ok(bytes) => total += bytes.unwrap_or(0),
                // Deleted meanwhile (a checkpoint, or the whole sprite).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::path("cannot read usage of", subvolume, e)),
            }
        }
        Ok(total)
    }

    /// Builds (once) the image `name` from `recipe`, reporting progress.
    pub fn ensure_image(
        &self,
        name: &str,
        recipe: &crate::image::Recipe,
        progress: &mut dyn FnMut(&str),
    ) -> Result<crate::image::Image> {
        crate::image::ensure(&self.pool, name, recipe, self.cfg.ids.base, progress)
    }

    /// [`Host::ensure_image`] for async callers: the build runs on the
    /// blocking pool, `progress` hearing each line.
    ///
    /// With an object store, the image is one for every host that shares
    /// it: taken from the store when it is there (a sprite's first
    /// checkpoint is shipped as a difference from its image, and only the
    /// same image, not one built the same way, lets another host receive
    /// it), and otherwise built here and put there at once.
    pub async fn prepare_image(
        &self,
        name: &str,
        recipe: &crate::image::Recipe,
        mut progress: impl FnMut(&str) + Send + 'static,
    ) -> Result<crate::image::Image> {
        let full = format!("{name}@{}", recipe.hash(self.cfg.ids.base));
        if let Some(bucket) = self.cfg.bucket.as_deref() {
            progress(&format!("looking for image {full} in the object store"));
            // The store away: built here; it is put there with the first
            // sprite shipped.
            if let Err(e) = self.take_image_from(bucket, &full).await {
                tracing::warn!(image = %full, error = %e, "the image is not taken from the object store");
            }
        }
        let (pool, name, recipe) = (self.pool.clone(), name.to_string(), recipe.clone());
        let base = self.cfg.ids.base;
        let image = tokio::task::spawn_blocking(move || {
            crate::image::ensure(&pool, &name, &recipe, base, &mut progress)
        })
        .await
        .map_err(|e| Error::Runtime(format!("the image build stopped: {e}")))??;
        if let Some(bucket) = self.cfg.bucket.as_deref() {
            if let Err(e) = self.publish_image(bucket, &full).await {
                tracing::warn!(image = %full, error = %e, "the image is not in the object store yet");
            }
        }
        Ok(image)
    }

    /// Every image sprites can be made from.
    pub fn images(&self) -> Result<Vec<crate::image::ImageRecord>> {
        crate::image::list(&self.pool)
    }

    /// Removes image `image`; sprites made from it are not affected.
    pub fn remove_image(&self, image: &str) -> Result<()> {
        SpriteName::parse(image)?;
        crate::image::remove(&self.pool, image)
    }

    /// Keeps checkpoint `id` of `name` as image `image` (replacing an
    /// image of that name), in O(1).
    pub async fn save_image(
        &self,
        name: &SpriteName,
        id: CheckpointId,
        image: &str,
    ) -> Result<crate::image::Image> {
        SpriteName::parse(image)?;
        let _guard = self.lock(name).await;
        let (paths, _) = self.load(name)?;
        if record::read::<CheckpointInfo>(&paths.checkpoint_record(id))?.is_none() {
            return Err(Error::CheckpointNotFound(name.to_string(), id));
        }
        let recipe = crate::image::Recipe::Checkpoint {
            sprite: name.to_string(),
            checkpoint: u64::from(id.0),
        };
        // Behind the images' lock, which a build holds for minutes.
        let (pool, image, snapshot) = (self.pool.clone(), image.to_string(), paths.checkpoint(id));
        tokio::task::spawn_blocking(move || {
            crate::image::from_snapshot(&pool, &image, &snapshot, recipe)
        })
        .await
        .map_err(|e| Error::Runtime(format!("the image was not kept: {e}")))?
    }

    /// Imports image `image` from a tar archive (see [`crate::image::import`]),
    /// at most `max_bytes` of files.
    pub fn import_image(
        &self,
        image: &str,
        archive: &mut dyn std::io::Read,
        max_bytes: u64,
        progress: &mut dyn FnMut(&str),
    ) -> Result<crate::image::Image> {
        SpriteName::parse(image)?;
        let limits = self.import_limits(max_bytes);
        crate::image::import(&self.pool, image, archive, limits, progress)
    }

    fn import_limits(&self, max_bytes: u64) -> crate::image::ImportLimits {
        crate::image::ImportLimits {
            max_bytes,
            id_size: self.cfg.ids.size,
            id_base: self.cfg.ids.base,
        }
    }

    /// [`Host::import_image`] for async callers: `archive` is read on the
    /// blocking pool, `progress` hearing each line.
    pub async fn receive_image(
        &self,
        image: &str,
        mut archive: Box<dyn std::io::Read + Send>,
        max_bytes: u64,
        mut progress: impl FnMut(&str) + Send + 'static,
    ) -> Result<crate::image::Image> {
        SpriteName::parse(image)?;
        let limits = self.import_limits(max_bytes);
        let (pool, image) = (self.pool.clone(), image.to_string());
        tokio::task::spawn_blocking(move || {
            crate::image::import(&pool, &image, &mut archive, limits, &mut progress)
        })
        .await
        .map_err(|e| Error::Runtime(format!("the import stopped: {e}")))?
    }

    pub(crate) fn paths(&self, name: &SpriteName) -> Paths {
        Paths::new(self.dir.join("sprites").join(name.as_str()))
    }

    pub(crate) fn sandbox_id(&self, name: &SpriteName) -> String {
        format!("{}.{}", self.cfg.instance, name)
    }

    /// Unix socket paths are limited to 108 bytes, so they are named by hash.
    pub(crate) fn socket_path(&self, name: &SpriteName) -> PathBuf {
        let digest = Sha256::digest(self.sandbox_id(name).as_bytes());
        self.cfg
            .run_dir
            .join("sock")
            .join(format!("{}.sock", hex::encode(&digest[..8])))
    }

    /// The host directory shown at `/.sprite/run` inside the sprite, where
    /// [`Host::listen_mgmt`] binds its management socket (`api.sock`).
    pub fn mgmt_dir(&self, name: &SpriteName) -> PathBuf {
        let digest = Sha256::digest(self.sandbox_id(name).as_bytes());
        self.cfg
            .run_dir
            .join("mgmt")
            .join(hex::encode(&digest[..8]))
    }

    pub(crate) fn agent(&self, name: &SpriteName) -> crate::agent::Agent {
        crate::agent::Agent::new(&self.socket_path(name))
    }

    /// The lock that serializes lifecycle changes of one sprite.
    pub(crate) async fn lock(&self, name: &SpriteName) -> tokio::sync::OwnedMutexGuard<()> {
        lock_of(&self.locks, name).await
    }

    /// See `replica_locks`: taken before the sprite's own lock, never after.
    pub(crate) async fn replica_lock(&self, name: &SpriteName) -> tokio::sync::OwnedMutexGuard<()> {
        lock_of(&self.replica_locks, name).await
    }

    pub(crate) fn load(&self, name: &SpriteName) -> Result<(Paths, SpriteRecord)> {
        let paths = self.paths(name);
        match record::read::<SpriteRecord>(&paths.record)? {
            Some(rec) => Ok((paths, rec)),
            None => Err(Error::NotFound(name.to_string())),
        }
    }

    pub(crate) fn observe(&self, name: &SpriteName) -> Result<Phase> {
        Ok(match self.runtime.status(&self.sandbox_id(name))? {
            SandboxStatus::Running => Phase::Running,
            SandboxStatus::Frozen => Phase::SleepingWarm,
            SandboxStatus::Stopped | SandboxStatus::Absent => Phase::SleepingCold,
        })
    }

    fn info(&self, name: &SpriteName, rec: SpriteRecord) -> Result<SpriteInfo> {
        Ok(SpriteInfo {
            phase: self.observe(name)?,
            name: rec.name,
            hostname: rec.hostname,
            image: rec.image,
            created_at: rec.created_at,
            limits: rec.limits,
            origin: rec.origin,
            current_checkpoint: rec.current,
            active_ms: rec.activity.total_ms(crate::now_ms()),
            asleep_since: rec.activity.asleep_since,
            environment: rec.environment,
            last_running_at: rec.activity.last_running_at,
        })
    }

    /// What the sprite is doing now, from the runtime alone (no record is
    /// read): for hot paths. A sprite that does not exist looks cold.
    pub fn phase(&self, name: &SpriteName) -> Result<Phase> {
        self.observe(name)
    }

    /// One sprite's record and observed phase.
    pub fn get(&self, name: &SpriteName) -> Result<SpriteInfo> {
        let (_, rec) = self.load(name)?;
        self.info(name, rec)
    }

    /// Every sprite of this host, by name.
    pub fn list(&self) -> Result<Vec<SpriteInfo>> {
        let dir = self.dir.join("sprites");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::path("cannot list", &dir, e))? {
            let entry = entry.map_err(|e| Error::path("cannot list", &dir, e))?;
            let Ok(name) = SpriteName::parse(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            match self.load(&name) {
                Ok((_, rec)) => out.push(self.info(&name, rec)?),
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Where the sprite's disk is on the host.
    pub(crate) fn root_path(&self, name: &SpriteName) -> Result<PathBuf> {
        Ok(self.load(name)?.0.root)
    }

    /// The sprite's files, confined to its root; works in every phase.
    pub fn files(&self, name: &SpriteName) -> Result<crate::fs::SpriteFs> {
        crate::fs::SpriteFs::open(&self.root_path(name)?, self.cfg.ids)
    }

    /// The sprite's files for async callers, its disk brought back from the
    /// bucket first when it is only there (the IDE opening an evicted
    /// sprite); each call runs on the blocking pool.
    pub async fn sprite_files(&self, name: &SpriteName) -> Result<crate::fs::Files> {
        Ok(crate::fs::Files::new(self.files_here(name).await?))
    }

    /// [`Host::files`], bringing the sprite's disk back from the bucket
    /// first when it is only there.
    pub(crate) async fn files_here(&self, name: &SpriteName) -> Result<crate::fs::SpriteFs> {
        let (paths, _) = self.load(name)?;
        if crate::sprite::replica::ReplicaState::read(&paths)?.location
            == crate::sprite::replica::Location::Bucket
        {
            self.fetch(name).await?;
        }
        crate::fs::SpriteFs::open(&paths.root, self.cfg.ids)
    }

    /// Starts the sandbox of a sprite whose root is in place.
    /// The nodes of the extra devices `privileges` names, made for the
    /// sprite in the pool (a file system that allows device nodes) and
    /// owned by its root: a user namespace's root opens only its own.
    fn device_nodes(
        &self,
        name: &SpriteName,
        privileges: &PrivilegesPolicy,
    ) -> Result<Vec<crate::runtime::Device>> {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let mut made = Vec::new();
        for (&(path, major, minor), node) in crate::runtime::DEVICES
            .iter()
            .zip(self.device_nodes_of(name))
        {
            if !privileges.devices.iter().any(|d| d == path) {
                continue;
            }
            if let Some(dir) = node.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::path("cannot create", dir, e))?;
            }
            let _ = std::fs::remove_file(&node);
            mknod(
                &node,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                makedev(major, minor),
            )
            .map_err(|e| Error::path("cannot make the device node", &node, e.into()))?;
            let root = Some(nix::unistd::Uid::from_raw(self.cfg.ids.base));
            nix::unistd::chown(
                &node,
                root,
                Some(nix::unistd::Gid::from_raw(self.cfg.ids.base)),
            )
            .map_err(|e| Error::path("cannot give the device node", &node, e.into()))?;
            made.push(crate::runtime::Device {
                node,
                path: path.to_string(),
                major,
                minor,
            });
        }
        Ok(made)
    }

    /// Where the sprite's node of each of [`crate::runtime::DEVICES`] is
    /// made, in their order.
    pub(crate) fn device_nodes_of(&self, name: &SpriteName) -> Vec<PathBuf> {
        let dir = self.pool.root().join("devices");
        crate::runtime::DEVICES
            .iter()
            .map(|(path, ..)| {
                let device = path.trim_start_matches('/').replace('/', "-");
                dir.join(format!("{}-{device}", self.sandbox_id(name)))
            })
            .collect()
    }

    pub(crate) async fn start_sandbox(
        &self,
        name: &SpriteName,
        paths: &Paths,
        rec: &SpriteRecord,
    ) -> Result<()> {
        self.unfenced(name)?;
        let sock = self.socket_path(name);
        match std::fs::remove_file(&sock) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::path("cannot remove stale socket", &sock, e)),
        }
        let listener = std::os::unix::net::UnixListener::bind(&sock)
            .map_err(|e| Error::path("cannot bind init socket", &sock, e))?;
        let mgmt_dir = self.mgmt_dir(name);
        std::fs::create_dir_all(&mgmt_dir)
            .map_err(|e| Error::path("cannot create", &mgmt_dir, e))?;
        let names_dir = self.write_names(name, &rec.hostname)?;
        self.write_network_policy(name, &rec.network_policy)?;
        let spec = crate::runtime::SandboxSpec {
            names_dir,
            mgmt_dir,
            resolv_conf: self.cfg.run_dir.join("resolv.conf"),
            id: self.sandbox_id(name),
            hostname: rec.hostname.clone(),
            rootfs: paths.root.clone(),
            init_binary: self.cfg.init_binary.clone(),
            checkpoints_dir: paths.checkpoints.clone(),
            init_socket: Arc::new(std::os::fd::OwnedFd::from(listener)),
            log_path: paths.log.clone(),
            limits: rec.limits,
            ids: self.cfg.ids,
            privileges: rec.privileges.clone(),
            devices: self.device_nodes(name, &rec.privileges)?,
        };
        let identity = restart::init_identity(&self.cfg.init_binary);
        self.runtime.start(&spec).await?;
        let kept = self.init_identity_path(name);
        if let Err(e) = std::fs::write(&kept, identity) {
            // Then an upgrade restarts it even when its init is current.
            tracing::warn!(sprite = %name, error = %e, "cannot keep the init's identity");
        }
        self.connect_network(name, &rec.network_policy, true);
        // Started means reachable: no command, and no browser on this
        // machine (which drops requests in flight when the host's
        // interfaces change), meets a sprite whose link is still coming.
        self.link_made(name).await;
        Ok(())
    }

    /// Writes the sprite's `/etc/hostname` and `/etc/hosts` (so `localhost`
    /// and its own name resolve whatever its image holds) into a directory
    /// of the run dir, owned by the sprite's root; they live as long as the
    /// sandbox does, like a container's.
    fn write_names(&self, name: &SpriteName, hostname: &str) -> Result<PathBuf> {
        let dir = self.mgmt_dir(name).with_extension("etc");
        std::fs::create_dir_all(&dir).map_err(|e| Error::path("cannot create", &dir, e))?;
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        );
        let root = Some(nix::unistd::Uid::from_raw(self.cfg.ids.base));
        let group = Some(nix::unistd::Gid::from_raw(self.cfg.ids.base));
        for (file, text) in [("hostname", format!("{hostname}\n")), ("hosts", hosts)] {
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(|e| Error::path("cannot write", &path, e))?;
            nix::unistd::chown(&path, root, group)
                .map_err(|e| Error::path("cannot chown", &path, e.into()))?;
        }
        Ok(dir)
    }

    /// With egress, gives the running sprite its link out (~8 ms: made in
    /// the sprite's namespace, see `net::attach`; `new_link` false: a
    /// re-adopted sprite kept its link) and its resolver under `policy`, on
    /// a blocking thread. Starting a sandbox waits for it, and so does a
    /// command started meanwhile by another path ([`Host::link_made`]), so
    /// no program sees a sprite without its network or its policy.
    pub(crate) fn connect_network(
        &self,
        name: &SpriteName,
        policy: &NetworkPolicy,
        new_link: bool,
    ) {
        let (Some(slots), Some(egress)) = (&self.slots, &self.egress) else {
            return;
        };
        let id = self.sandbox_id(name);
        let pid = match self.runtime.init_pid(&id) {
            Ok(Some(pid)) => pid,
            other => {
                tracing::warn!(sprite = %name, ?other, "no init to give a network to");
                return;
            }
        };
        let slot = match (new_link, slots.held(&id)) {
            (false, Some(slot)) => Ok(slot),
            _ => slots.take(&id),
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(e) => {
                tracing::warn!(sprite = %name, error = %e, "no network address for the sprite");
                return;
            }
        };
        let (made, waiting) = tokio::sync::watch::channel(false);
        self.links.lock().unwrap().insert(id.clone(), waiting);
        let name = name.clone();
        let policy = crate::net::policy::Policy::new(policy).unwrap_or_else(|e| {
            tracing::error!(sprite = %name, error = %e, "the sprite's recorded network policy is not valid; it reaches nothing");
            crate::net::policy::Policy::nothing()
        });
        let rt = tokio::runtime::Handle::current();
        let egress = egress.clone();
        tokio::task::spawn_blocking(move || {
            let linked = if new_link {
                crate::net::attach(pid, slot)
            } else {
                Ok(())
            };
            match linked.and_then(|()| egress.start(&id, pid, slot, policy, new_link, &rt)) {
                Ok(()) => {}
                Err(e) if !crate::net::alive(pid) || e.to_string().contains("No such process") => {
                    tracing::debug!(sprite = %name, error = %e, "sprite stopped before its network was made");
                }
                Err(e) => {
                    tracing::warn!(sprite = %name, error = %e, source = ?std::error::Error::source(&e), "cannot connect the sprite's network");
                }
            }
            // Made or failed: nobody waits any longer.
            let _ = made.send(true);
        });
    }

    /// Waits (a few seconds at most) until the link the running sprite was
    /// given at its start is made.
    pub(crate) async fn link_made(&self, name: &SpriteName) {
        let id = self.sandbox_id(name);
        let Some(mut waiting) = self.links.lock().unwrap().get(&id).cloned() else {
            return;
        };
        let in_time = tokio::time::timeout(LINK_WAIT, waiting.wait_for(|made| *made))
            .await
            .is_ok();
        if !in_time {
            tracing::warn!(sprite = %name, "the sprite's network took too long to make; going on without it");
        }
        let mut links = self.links.lock().unwrap();
        if links
            .get(&id)
            .is_some_and(|w| w.same_channel(&waiting) && *w.borrow())
        {
            links.remove(&id);
        }
    }

    /// Waits (a few seconds at most) until every link being made is.
    pub(crate) async fn networks_made(&self) {
        let waiting: Vec<_> = self.links.lock().unwrap().values().cloned().collect();
        for mut w in waiting {
            let _ = tokio::time::timeout(LINK_WAIT, w.wait_for(|made| *made)).await;
        }
    }

    pub(crate) async fn stop_sandbox(&self, name: &SpriteName, grace: Duration) -> Result<()> {
        self.runtime.stop(&self.sandbox_id(name), grace).await?;
        let _ = std::fs::remove_file(self.socket_path(name));
        // The sprite's veth went with its network namespace.
        let id = self.sandbox_id(name);
        if let (Some(slots), Some(egress)) = (&self.slots, &self.egress) {
            egress.stop(&id, slots.held(&id));
            slots.release(&id);
        }
        self.links.lock().unwrap().remove(&id);
        self.socket_owners.lock().unwrap().remove(&id);
        Ok(())
    }
}

/// The longest a command waits for its sprite's link to be made.
const LINK_WAIT: Duration = Duration::from_secs(5);

/// Phase changes kept for a slow receiver of [`Host::subscribe`].
pub const EVENT_BACKLOG: usize = 1024;

pub(crate) fn wrong_phase(op: &'static str, phase: Phase) -> Error {
    Error::WrongPhase { op, phase }
}
