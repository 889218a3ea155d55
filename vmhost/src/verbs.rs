//! The Host's verbs as a trait: everything a server asks of a machine's
//! sprites, and nothing of how the machine keeps them (btrfs, cgroups,
//! nftables, init's framing). The in-process [`Host`] is its one
//! implementation; a host reached over the network can be another, and the
//! server, which holds an `Arc<dyn Verbs>`, does not change.
//!
//! Every verb that asks the machine something is `async`, the queries too:
//! a host across the network answers none of them without a round trip.
//! What stays synchronous is what a server learns of a host once (its
//! runtime's name, whether it replicates) and the event channels, which a
//! remote host feeds from a stream of its own.
//!
//! Each verb is documented on [`Host`], with the phases it is allowed in.
//! Setting a host up (opening it, recovering sprites from the object
//! store, the loopback tracking of the server's own port) is not a verb: it
//! is done once, on the concrete host, before it is shared.

use std::time::Duration;

use async_trait::async_trait;
use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy};
use sprites_wire::ports::Port;

use crate::diff::Change;
use crate::fs::Files;
use crate::image::{Image, Recipe};
use crate::sprite::replica::{Replication, ShipReport};
use crate::sprite::Held;
use crate::{
    Capacity, Check, CheckpointId, CheckpointInfo, Connection, CreateOptions, ExecOutput, ExecSpec,
    FsWatch, Host, HostEvent, MgmtListener, Phase, Result, ServiceEvents, ServiceInfo, ServiceOp,
    SessionInfo, SpriteInfo, SpriteName, Stream,
};

#[async_trait]
pub trait Verbs: Send + Sync + 'static {
    // ---- sprites and their phases

    async fn create(&self, name: &SpriteName, opts: CreateOptions) -> Result<SpriteInfo>;
    async fn get(&self, name: &SpriteName) -> Result<SpriteInfo>;
    async fn list(&self) -> Result<Vec<SpriteInfo>>;
    async fn phase(&self, name: &SpriteName) -> Result<Phase>;
    async fn destroy(&self, name: &SpriteName) -> Result<()>;
    async fn fork_named(
        &self,
        source: &SpriteName,
        checkpoint: Option<CheckpointId>,
        name: &SpriteName,
        hostname: &SpriteName,
    ) -> Result<SpriteInfo>;
    async fn sleep_warm(&self, name: &SpriteName) -> Result<Phase>;
    async fn sleep_cold(&self, name: &SpriteName) -> Result<Phase>;
    async fn wake(&self, name: &SpriteName) -> Result<Phase>;
    /// Stops every process and starts the sprite again on the same disk.
    async fn restart(&self, name: &SpriteName) -> Result<Phase>;
    /// Puts it onto the host's current `sprite-init`, restarting it only
    /// when its own is another; whether it restarted.
    async fn upgrade(&self, name: &SpriteName) -> Result<bool>;
    /// Its memory limit, in bytes.
    async fn memory_limit(&self, name: &SpriteName) -> Result<u64>;
    /// What of the kernel its processes may ask for.
    async fn privileges(&self, name: &SpriteName) -> Result<PrivilegesPolicy>;
    /// Sets that, restarting a running sprite onto a change; whether it did.
    async fn set_privileges(&self, name: &SpriteName, policy: PrivilegesPolicy) -> Result<bool>;
    /// Sets its memory limit (`None`: the host's default), in force at once
    /// on a running sprite; the limit now.
    async fn set_memory_limit(&self, name: &SpriteName, bytes: Option<u64>) -> Result<u64>;
    /// Whether its init answers, and how fast.
    async fn check(&self, name: &SpriteName) -> Result<Check>;
    /// The names it may reach.
    async fn network_policy(&self, name: &SpriteName) -> Result<NetworkPolicy>;
    /// Replaces them; a running sprite is under the new policy on return.
    async fn set_network_policy(&self, name: &SpriteName, policy: NetworkPolicy) -> Result<()>;
    async fn disk_usage(&self, name: &SpriteName) -> Result<u64>;
    /// Phase changes and file changes of every sprite, as they happen.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HostEvent>;

    // ---- checkpoints

    async fn checkpoint(&self, name: &SpriteName, comment: &str) -> Result<CheckpointInfo>;
    async fn checkpoints(&self, name: &SpriteName) -> Result<Vec<CheckpointInfo>>;
    async fn checkpoint_info(&self, name: &SpriteName, id: CheckpointId) -> Result<CheckpointInfo>;
    async fn delete_checkpoint(&self, name: &SpriteName, id: CheckpointId) -> Result<()>;
    async fn restore(
        &self,
        name: &SpriteName,
        target: CheckpointId,
    ) -> Result<(SpriteInfo, CheckpointInfo)>;
    async fn diff(
        &self,
        name: &SpriteName,
        from: CheckpointId,
        to: Option<CheckpointId>,
    ) -> Result<Vec<Change>>;

    // ---- processes, services and connections inside a sprite

    async fn exec(&self, name: &SpriteName, spec: ExecSpec) -> Result<Stream>;
    async fn attach(&self, name: &SpriteName, session: u64, replay: bool) -> Result<Stream>;
    async fn sessions(&self, name: &SpriteName) -> Result<Vec<SessionInfo>>;
    async fn kill_session(&self, name: &SpriteName, session: u64, signal: i32) -> Result<()>;
    async fn run(&self, name: &SpriteName, argv: &[&str], stdin: &[u8]) -> Result<ExecOutput>;
    async fn connect(&self, name: &SpriteName, host: &str, port: u16) -> Result<Connection>;
    /// The TCP ports it listens on, with their processes.
    async fn ports(&self, name: &SpriteName) -> Result<Vec<Port>>;
    async fn services(&self, name: &SpriteName) -> Result<Vec<ServiceInfo>>;
    async fn service(
        &self,
        name: &SpriteName,
        service: &str,
        change: ServiceOp,
        follow_ms: u64,
    ) -> Result<ServiceEvents>;
    async fn service_logs(
        &self,
        name: &SpriteName,
        service: &str,
        lines: usize,
        follow: bool,
    ) -> Result<ServiceEvents>;
    /// Listens on its management socket (`/.sprite/run/api.sock` inside
    /// it), in place of any earlier listener of it.
    async fn listen_mgmt(&self, name: &SpriteName) -> Result<MgmtListener>;

    // ---- files

    async fn sprite_files(&self, name: &SpriteName) -> Result<Files>;
    async fn checkpoint_files(&self, name: &SpriteName, id: CheckpointId) -> Result<Files>;
    async fn watch(&self, name: &SpriteName, paths: &[String], recursive: bool) -> Result<FsWatch>;

    // ---- images

    async fn save_image(&self, name: &SpriteName, id: CheckpointId, image: &str) -> Result<Image>;
    async fn remove_image(&self, image: &str) -> Result<()>;
    /// Builds image `name` from `recipe` once, `progress` hearing each line.
    async fn prepare_image(
        &self,
        name: &str,
        recipe: &Recipe,
        progress: Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image>;
    /// Imports a root file system from a tar archive (gzipped or not), at
    /// most `max_bytes` of files, `progress` hearing each line.
    async fn import_image(
        &self,
        image: &str,
        archive: Box<dyn std::io::Read + Send>,
        max_bytes: u64,
        progress: Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image>;

    // ---- the object store

    /// Whether the host keeps copies of its sprites in an object store.
    fn replicates(&self) -> bool;
    async fn replication(&self, name: &SpriteName) -> Result<Replication>;
    /// Sprites whose copy in the object store moved on.
    fn replica_changes(&self) -> tokio::sync::broadcast::Receiver<SpriteName>;
    async fn replicate(&self, name: &SpriteName, every: Duration) -> Result<ShipReport>;
    async fn evict(&self, name: &SpriteName) -> Result<()>;
    async fn prune(&self, name: &SpriteName) -> Result<Vec<CheckpointId>>;
    async fn forget_destroyed(&self) -> Result<usize>;
    /// Takes on a sprite another host of the cluster left in the object
    /// store: listed at once, asleep cold, and not woken until it arrives.
    async fn adopt(&self, name: &SpriteName) -> Result<SpriteInfo>;
    /// Lets go of a sprite, evicted, that another host adopted.
    async fn release(&self, name: &SpriteName) -> Result<()>;
    /// Evicts a sprite asleep cold for a move: not brought back here until
    /// released, or kept.
    async fn hand_over(&self, name: &SpriteName) -> Result<()>;
    /// Keeps a sprite handed over: its move given up.
    async fn stay(&self, name: &SpriteName) -> Result<()>;
    /// An adopted sprite is this host's: it may wake.
    async fn arrive(&self, name: &SpriteName) -> Result<()>;
    /// Receives ahead, for an adoption to come, what the object store holds
    /// of a sprite another host keeps; the bytes received.
    async fn prefetch(&self, name: &SpriteName) -> Result<u64>;
    /// The control plane places these sprites on this host for another
    /// lease: the fenced ones among them go on (see the fence in
    /// `sprite`); `sent_at`: ms since the Unix epoch.
    async fn hold(&self, names: &[SpriteName], sent_at: u64) -> Result<Held>;
    /// Drops this host's copy of a fenced sprite that lives on another
    /// host now, keeping its objects.
    async fn forget(&self, name: &SpriteName) -> Result<()>;

    // ---- the machine

    /// The sandbox runtime's name (`crun`, `runc`).
    fn runtime_name(&self) -> &'static str;
    /// Bytes the storage pool holds.
    async fn pool_used_bytes(&self) -> Result<u64>;
    /// Its room for more sprites now.
    async fn capacity(&self) -> Result<Capacity>;
}

#[async_trait]
impl Verbs for Host {
    async fn create(&self, name: &SpriteName, opts: CreateOptions) -> Result<SpriteInfo> {
        Host::create(self, name, opts).await
    }
    async fn get(&self, name: &SpriteName) -> Result<SpriteInfo> {
        Host::get(self, name)
    }
    async fn list(&self) -> Result<Vec<SpriteInfo>> {
        Host::list(self)
    }
    async fn phase(&self, name: &SpriteName) -> Result<Phase> {
        Host::phase(self, name)
    }
    async fn destroy(&self, name: &SpriteName) -> Result<()> {
        Host::destroy(self, name).await
    }
    async fn fork_named(
        &self,
        source: &SpriteName,
        checkpoint: Option<CheckpointId>,
        name: &SpriteName,
        hostname: &SpriteName,
    ) -> Result<SpriteInfo> {
        Host::fork_named(self, source, checkpoint, name, hostname).await
    }
    async fn sleep_warm(&self, name: &SpriteName) -> Result<Phase> {
        Host::sleep_warm(self, name).await
    }
    async fn sleep_cold(&self, name: &SpriteName) -> Result<Phase> {
        Host::sleep_cold(self, name).await
    }
    async fn wake(&self, name: &SpriteName) -> Result<Phase> {
        Host::wake(self, name).await
    }
    async fn restart(&self, name: &SpriteName) -> Result<Phase> {
        Host::restart(self, name).await
    }
    async fn upgrade(&self, name: &SpriteName) -> Result<bool> {
        Host::upgrade(self, name).await
    }
    async fn memory_limit(&self, name: &SpriteName) -> Result<u64> {
        Host::memory_limit(self, name)
    }
    async fn privileges(&self, name: &SpriteName) -> Result<PrivilegesPolicy> {
        Host::privileges(self, name)
    }
    async fn set_privileges(&self, name: &SpriteName, policy: PrivilegesPolicy) -> Result<bool> {
        Host::set_privileges(self, name, policy).await
    }
    async fn set_memory_limit(&self, name: &SpriteName, bytes: Option<u64>) -> Result<u64> {
        Host::set_memory_limit(self, name, bytes).await
    }
    async fn check(&self, name: &SpriteName) -> Result<Check> {
        Host::check(self, name).await
    }
    async fn network_policy(&self, name: &SpriteName) -> Result<NetworkPolicy> {
        Host::network_policy(self, name)
    }
    async fn set_network_policy(&self, name: &SpriteName, policy: NetworkPolicy) -> Result<()> {
        Host::set_network_policy(self, name, policy).await
    }
    async fn disk_usage(&self, name: &SpriteName) -> Result<u64> {
        Host::disk_usage(self, name)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HostEvent> {
        Host::subscribe(self)
    }

    async fn checkpoint(&self, name: &SpriteName, comment: &str) -> Result<CheckpointInfo> {
        Host::checkpoint(self, name, comment).await
    }
    async fn checkpoints(&self, name: &SpriteName) -> Result<Vec<CheckpointInfo>> {
        Host::checkpoints(self, name)
    }
    async fn checkpoint_info(&self, name: &SpriteName, id: CheckpointId) -> Result<CheckpointInfo> {
        Host::checkpoint_info(self, name, id)
    }
    async fn delete_checkpoint(&self, name: &SpriteName, id: CheckpointId) -> Result<()> {
        Host::delete_checkpoint(self, name, id).await
    }
    async fn restore(
        &self,
        name: &SpriteName,
        target: CheckpointId,
    ) -> Result<(SpriteInfo, CheckpointInfo)> {
        Host::restore(self, name, target).await
    }
    async fn diff(
        &self,
        name: &SpriteName,
        from: CheckpointId,
        to: Option<CheckpointId>,
    ) -> Result<Vec<Change>> {
        Host::diff(self, name, from, to).await
    }

    async fn exec(&self, name: &SpriteName, spec: ExecSpec) -> Result<Stream> {
        Host::exec(self, name, spec).await
    }
    async fn attach(&self, name: &SpriteName, session: u64, replay: bool) -> Result<Stream> {
        Host::attach(self, name, session, replay).await
    }
    async fn sessions(&self, name: &SpriteName) -> Result<Vec<SessionInfo>> {
        Host::sessions(self, name).await
    }
    async fn kill_session(&self, name: &SpriteName, session: u64, signal: i32) -> Result<()> {
        Host::kill_session(self, name, session, signal).await
    }
    async fn run(&self, name: &SpriteName, argv: &[&str], stdin: &[u8]) -> Result<ExecOutput> {
        Host::run(self, name, argv, stdin).await
    }
    async fn connect(&self, name: &SpriteName, host: &str, port: u16) -> Result<Connection> {
        Host::connect(self, name, host, port).await
    }
    async fn ports(&self, name: &SpriteName) -> Result<Vec<Port>> {
        Host::ports(self, name).await
    }
    async fn services(&self, name: &SpriteName) -> Result<Vec<ServiceInfo>> {
        Host::services(self, name).await
    }
    async fn service(
        &self,
        name: &SpriteName,
        service: &str,
        change: ServiceOp,
        follow_ms: u64,
    ) -> Result<ServiceEvents> {
        Host::service(self, name, service, change, follow_ms).await
    }
    async fn service_logs(
        &self,
        name: &SpriteName,
        service: &str,
        lines: usize,
        follow: bool,
    ) -> Result<ServiceEvents> {
        Host::service_logs(self, name, service, lines, follow).await
    }
    async fn listen_mgmt(&self, name: &SpriteName) -> Result<MgmtListener> {
        Host::listen_mgmt(self, name).await
    }

    async fn sprite_files(&self, name: &SpriteName) -> Result<Files> {
        Host::sprite_files(self, name).await
    }
    async fn checkpoint_files(&self, name: &SpriteName, id: CheckpointId) -> Result<Files> {
        Host::checkpoint_files(self, name, id)
    }
    async fn watch(&self, name: &SpriteName, paths: &[String], recursive: bool) -> Result<FsWatch> {
        Host::watch(self, name, paths, recursive).await
    }

    async fn save_image(&self, name: &SpriteName, id: CheckpointId, image: &str) -> Result<Image> {
        Host::save_image(self, name, id, image).await
    }
    async fn remove_image(&self, image: &str) -> Result<()> {
        SpriteName::parse(image)?;
        // Behind the images' lock, which a build holds for minutes.
        let (pool, image) = (self.pool().clone(), image.to_string());
        tokio::task::spawn_blocking(move || crate::image::remove(&pool, &image))
            .await
            .map_err(|e| crate::Error::Runtime(format!("the removal stopped: {e}")))?
    }
    async fn prepare_image(
        &self,
        name: &str,
        recipe: &Recipe,
        mut progress: Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image> {
        Host::prepare_image(self, name, recipe, move |line: &str| progress(line)).await
    }
    async fn import_image(
        &self,
        image: &str,
        archive: Box<dyn std::io::Read + Send>,
        max_bytes: u64,
        mut progress: Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image> {
        Host::receive_image(self, image, archive, max_bytes, move |line: &str| {
            progress(line)
        })
        .await
    }

    fn replicates(&self) -> bool {
        self.config().bucket.is_some()
    }
    async fn replication(&self, name: &SpriteName) -> Result<Replication> {
        Host::replication(self, name)
    }
    fn replica_changes(&self) -> tokio::sync::broadcast::Receiver<SpriteName> {
        Host::replica_changes(self)
    }
    async fn replicate(&self, name: &SpriteName, every: Duration) -> Result<ShipReport> {
        Host::replicate(self, name, every).await
    }
    async fn evict(&self, name: &SpriteName) -> Result<()> {
        Host::evict(self, name).await
    }
    async fn adopt(&self, name: &SpriteName) -> Result<SpriteInfo> {
        Host::adopt(self, name).await
    }
    async fn release(&self, name: &SpriteName) -> Result<()> {
        Host::release(self, name).await
    }
    async fn hand_over(&self, name: &SpriteName) -> Result<()> {
        Host::hand_over(self, name).await
    }
    async fn stay(&self, name: &SpriteName) -> Result<()> {
        Host::stay(self, name).await
    }
    async fn arrive(&self, name: &SpriteName) -> Result<()> {
        Host::arrive(self, name).await
    }
    async fn prefetch(&self, name: &SpriteName) -> Result<u64> {
        Host::prefetch(self, name).await
    }
    async fn hold(&self, names: &[SpriteName], sent_at: u64) -> Result<Held> {
        Host::hold(self, names, sent_at).await
    }
    async fn forget(&self, name: &SpriteName) -> Result<()> {
        Host::forget(self, name).await
    }
    async fn prune(&self, name: &SpriteName) -> Result<Vec<CheckpointId>> {
        Host::prune(self, name).await
    }
    async fn forget_destroyed(&self) -> Result<usize> {
        Host::forget_destroyed(self).await
    }

    fn runtime_name(&self) -> &'static str {
        self.runtime().name()
    }
    async fn pool_used_bytes(&self) -> Result<u64> {
        self.pool().used_bytes()
    }
    async fn capacity(&self) -> Result<Capacity> {
        Host::capacity(self).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::time::Duration;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use crate::replica::{Location, ReplicaPhase, Replication, ShipReport};
    use crate::runtime::Limits;
    use crate::{
        Check, CheckpointId, CreateOptions, ExecOutput, FsChange, FsEvent, HostEvent, Origin,
        Phase, SpriteInfo, SpriteName,
    };

    /// `value` as JSON and back, which must be `value` again.
    fn round_trip<T: Serialize + DeserializeOwned + Debug>(value: T) {
        let json = serde_json::to_string(&value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(format!("{back:?}"), format!("{value:?}"), "{json}");
    }

    /// What the verbs take and give crosses a wire whole, for a host on
    /// another machine.
    #[test]
    fn the_verbs_values_cross_a_wire_whole() {
        let environment = BTreeMap::from([("LANG".to_string(), "C.UTF-8".to_string())]);
        round_trip(SpriteInfo {
            name: "s1".into(),
            hostname: "web".into(),
            phase: Phase::SleepingWarm,
            image: "debian".into(),
            created_at: 1,
            limits: Limits::default(),
            origin: Some(Origin {
                sprite: "s0".into(),
                checkpoint: Some(CheckpointId(4)),
            }),
            current_checkpoint: Some(CheckpointId(2)),
            active_ms: 5,
            asleep_since: Some(6),
            environment: environment.clone(),
            last_running_at: None,
        });
        round_trip(CreateOptions {
            image: Some("debian".into()),
            hostname: Some("web".into()),
            limits: Some(Limits::default()),
            environment,
            network_policy: Default::default(),
        });
        round_trip(HostEvent {
            sprite: SpriteName::parse("s1").unwrap(),
            phase: Phase::Running,
        });
        round_trip(Check {
            phase: Phase::Running,
            elapsed: Some(Duration::from_micros(1500)),
            problem: Some("slow".into()),
        });
        round_trip(ExecOutput {
            stdout: b"out".to_vec(),
            stderr: vec![0, 255],
            code: 3,
        });
        round_trip(Replication {
            phase: ReplicaPhase::Behind,
            location: Location::Bucket,
            last_shipped: Some(CheckpointId(1)),
            last_shipped_at: Some(2),
            lag_seconds: 3,
            pending: 4,
            error: Some("away".into()),
            fetching: Some((5, 6)),
        });
        round_trip(ShipReport {
            checkpoints: vec![CheckpointId(1), CheckpointId(2)],
            bytes: 7,
            resumed_segments: 1,
            checkpoint_took: Some(Duration::from_millis(5)),
            pruned: vec![CheckpointId(0)],
        });
        round_trip(FsEvent {
            path: "/root/a.txt".into(),
            change: FsChange::Rename,
            is_dir: false,
            size: Some(9),
            at: 10,
        });
    }
}
