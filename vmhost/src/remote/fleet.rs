//! Many hosts as one: a [`Fleet`] is the [`Verbs`] of a cluster. Each verb
//! about a sprite is asked of the host that keeps it; a new sprite goes to
//! the host with the most room; what is about the whole (the list, the
//! events, images, capacity) is asked of every host.
//!
//! Where each sprite lives is learned from the hosts themselves: their
//! lists when the fleet is made, then their events (a sprite a host tells
//! of is on it; one it tells is destroyed has left it). A sprite not known
//! yet (made through another API server a moment ago) is looked for on
//! every host, once; while a host does not answer, a sprite found on none
//! of the others is not said to be missing: it may be on that one.
//!
//! Placement: every host is asked for its [`Capacity`]. A host with less
//! free than the [`Floors`] (disk, or memory the kernel can still give) is
//! full and never chosen. Of the others, the one chosen has the most room:
//! the share of its memory not promised to running sprites (a sleeping
//! sprite promises none, so sleepers are cheap) plus the share of its disk
//! that is free. Creates still under way count as promised, so a burst of
//! them spreads; hosts with about the same room take turns at random. A
//! host without the sprite's image passes the sprite on to the next.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy};
use sprites_wire::ports::Port;
use tokio::sync::broadcast;
use tracing::warn;

use crate::diff::Change;
use crate::error::{Error, Result};
use crate::fs::Files;
use crate::image::{Image, Recipe};
use crate::runtime::Limits;
use crate::sprite::replica::{Replication, ShipReport};
use crate::sprite::Held;
use crate::{
    Capacity, Check, CheckpointId, CheckpointInfo, Connection, CreateOptions, ExecOutput, ExecSpec,
    FsWatch, HostEvent, MgmtListener, Phase, ServiceEvents, ServiceInfo, ServiceOp, SessionInfo,
    SpriteInfo, SpriteName, Stream, Verbs,
};

/// One host of a fleet.
pub struct Member {
    /// Its name in the cluster.
    pub name: String,
    pub verbs: Arc<dyn Verbs>,
}

/// A sprite moved: the host it lives on now, and how long it answered
/// nothing (from its stop on the old host to its wake on the new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub host: String,
    pub downtime_ms: u64,
}

/// A sprite of a lost host taken on by another: where, and the state it
/// resumed from (its last checkpoint in the object store, and when that
/// was shipped, in ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub host: String,
    pub checkpoint: Option<CheckpointId>,
    pub shipped_at: Option<u64>,
}

/// What a host keeps free: below either, it takes no new sprite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    pub disk_free_bytes: u64,
    pub memory_available_bytes: u64,
}

impl Default for Floors {
    fn default() -> Floors {
        Floors {
            disk_free_bytes: 1 << 30,
            memory_available_bytes: 256 << 20,
        }
    }
}

impl Floors {
    /// Why a host with `room` is full, if it is.
    fn full(&self, room: &Capacity) -> Option<String> {
        let mib = |bytes: u64| bytes >> 20;
        if room.disk_free_bytes < self.disk_free_bytes {
            return Some(format!(
                "{} MiB of disk free, under the {} MiB it keeps",
                mib(room.disk_free_bytes),
                mib(self.disk_free_bytes)
            ));
        }
        if room.memory_available_bytes < self.memory_available_bytes {
            return Some(format!(
                "{} MiB of memory available, under the {} MiB it keeps",
                mib(room.memory_available_bytes),
                mib(self.memory_available_bytes)
            ));
        }
        None
    }
}

/// How much room a host has for a sprite that may claim `more` bytes of
/// memory beside what is promised: the free share of its memory plus the
/// free share of its disk (each 0 to 1; memory below 0 when overcommitted).
fn room(c: &Capacity, more: u64) -> f64 {
    let promised = c.memory_promised_bytes.saturating_add(more) as f64;
    let memory = c.memory_bytes.max(1) as f64;
    let disk = c.disk_free_bytes as f64 / c.disk_bytes.max(1) as f64;
    (memory - promised) / memory + disk
}

/// Rooms closer than this are about the same (a thousandth of a host's
/// memory or disk).
const EVEN: f64 = 0.001;

/// The hosts of a cluster, as one.
pub struct Fleet {
    members: Vec<Member>,
    floors: Floors,
    /// The member each known sprite lives on.
    places: Arc<Mutex<HashMap<SpriteName, usize>>>,
    /// Memory promised by creates under way, per member.
    promising: Mutex<Vec<u64>>,
    /// Members that take no new sprite (being drained), by index.
    cordoned: Mutex<HashSet<usize>>,
    replicates: bool,
    events: broadcast::Sender<HostEvent>,
    replica_changes: broadcast::Sender<SpriteName>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for forwarder in &self.forwarders {
            forwarder.abort();
        }
    }
}

/// A create's claim on a member's memory, given back when it ends (also
/// when the create is abandoned half way).
struct Promise<'a> {
    fleet: &'a Fleet,
    member: usize,
    bytes: u64,
}

impl Drop for Promise<'_> {
    fn drop(&mut self) {
        let mut promising = self.fleet.promising.lock().expect("promises");
        promising[self.member] = promising[self.member].saturating_sub(self.bytes);
    }
}

impl Fleet {
    /// The fleet of `members` (at least one, each name once), every one of
    /// which answers now: where their sprites are is read from them.
    pub async fn new(members: Vec<Member>, floors: Floors) -> Result<Fleet> {
        if members.is_empty() {
            return Err(Error::Invalid("a fleet needs a host".into()));
        }
        for (i, m) in members.iter().enumerate() {
            if members[..i].iter().any(|other| other.name == m.name) {
                return Err(Error::Invalid(format!("host {} is named twice", m.name)));
            }
        }
        // Subscribed before listing: nothing said in between is missed.
        let events: Vec<_> = members.iter().map(|m| m.verbs.subscribe()).collect();
        let copies: Vec<_> = members.iter().map(|m| m.verbs.replica_changes()).collect();
        let lists = join_all(members.iter().map(|m| m.verbs.list())).await;
        let mut places = HashMap::new();
        for (i, list) in lists.into_iter().enumerate() {
            for sprite in list? {
                let Ok(name) = SpriteName::parse(&sprite.name) else {
                    continue;
                };
                if let Some(other) = places.insert(name, i) {
                    warn!(
                        sprite = %sprite.name,
                        "on hosts {} and {}: asked on {}",
                        members[other].name, members[i].name, members[i].name
                    );
                }
            }
        }
        let places = Arc::new(Mutex::new(places));
        let (tx, _) = broadcast::channel(4096);
        let (copies_tx, _) = broadcast::channel(1024);
        let mut forwarders = Vec::new();
        for (i, rx) in events.into_iter().enumerate() {
            forwarders.push(tokio::spawn(forward_events(
                i,
                rx,
                places.clone(),
                tx.clone(),
            )));
        }
        for rx in copies {
            forwarders.push(tokio::spawn(forward(rx, copies_tx.clone())));
        }
        Ok(Fleet {
            replicates: members.iter().all(|m| m.verbs.replicates()),
            promising: Mutex::new(vec![0; members.len()]),
            cordoned: Mutex::new(HashSet::new()),
            members,
            floors,
            places,
            events: tx,
            replica_changes: copies_tx,
            forwarders,
        })
    }

    /// The hosts, in the order given.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The host named `host`: an error when the cluster has none.
    pub fn member_named(&self, host: &str) -> Result<&Member> {
        Ok(&self.members[self.member(host)?])
    }

    /// Whether host `host` takes new sprites (`false`: it is being drained,
    /// and placement passes it by).
    pub fn set_open(&self, host: &str, open: bool) -> Result<()> {
        let member = self.member(host)?;
        let mut cordoned = self.cordoned.lock().expect("cordons");
        if open {
            cordoned.remove(&member);
        } else {
            cordoned.insert(member);
        }
        Ok(())
    }

    /// Takes no new sprite on host `host`, and moves each of its sprites to
    /// the other host with the most room, one after the other: each one's
    /// name and how its move went.
    pub async fn drain(&self, host: &str) -> Result<Vec<(SpriteName, Result<Moved>)>> {
        self.set_open(host, false)?;
        let member = self.member(host)?;
        let mut moved = Vec::new();
        for sprite in self.members[member].verbs.list().await? {
            let Ok(name) = SpriteName::parse(&sprite.name) else {
                continue;
            };
            let to = self.move_sprite(&name, None).await;
            moved.push((name, to));
        }
        Ok(moved)
    }

    /// The name of the host sprite `name` lives on, as far as known now.
    pub fn host_of(&self, name: &SpriteName) -> Option<&str> {
        let at = *self.places.lock().expect("places").get(name)?;
        Some(&self.members[at].name)
    }

    /// Every known sprite's host, by the sprite's name.
    pub fn places(&self) -> HashMap<String, String> {
        self.places
            .lock()
            .expect("places")
            .iter()
            .map(|(sprite, at)| (sprite.to_string(), self.members[*at].name.clone()))
            .collect()
    }

    /// Sprite `name` lives on host `host`, as the control plane says.
    pub fn place(&self, name: &SpriteName, host: &str) -> Result<()> {
        let member = self.member(host)?;
        self.settle(name, member);
        Ok(())
    }

    fn settle(&self, name: &SpriteName, member: usize) {
        self.places
            .lock()
            .expect("places")
            .insert(name.clone(), member);
    }

    /// The member sprite `name` lives on: known, or looked for on all.
    async fn locate(&self, name: &SpriteName) -> Result<usize> {
        if let Some(at) = self.places.lock().expect("places").get(name) {
            return Ok(*at);
        }
        // Its record, not its phase: a phase is told of any name.
        let asked = join_all(self.members.iter().map(|m| m.verbs.get(name))).await;
        let mut silent = None;
        for (i, found) in asked.into_iter().enumerate() {
            match found {
                Err(Error::NotFound(_)) => {}
                Ok(_) => {
                    self.settle(name, i);
                    return Ok(i);
                }
                Err(e) => silent = silent.or(Some(e)),
            }
        }
        Err(silent.unwrap_or_else(|| Error::NotFound(name.to_string())))
    }

    /// After `member` said it has no sprite `name`: forgets that it is
    /// there, if that was still known; whether the sprite may be elsewhere
    /// (it was thought to be there, or is now thought to be on another).
    fn moved_from(&self, name: &SpriteName, member: usize) -> bool {
        let mut places = self.places.lock().expect("places");
        match places.get(name) {
            Some(at) if *at == member => {
                places.remove(name);
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// The member named `host`.
    fn member(&self, host: &str) -> Result<usize> {
        self.members
            .iter()
            .position(|m| m.name == host)
            .ok_or_else(|| Error::Invalid(format!("the cluster has no host {host}")))
    }

    /// The members that may take a sprite promising `memory` bytes, the
    /// roomiest first; none is the error, with each host's reason.
    async fn placement(&self, memory: u64) -> Result<Vec<usize>> {
        let rooms = join_all(self.members.iter().map(|m| m.verbs.capacity())).await;
        let promising = self.promising.lock().expect("promises").clone();
        let cordoned = self.cordoned.lock().expect("cordons").clone();
        let mut fit = Vec::new();
        let mut full = Vec::new();
        for (i, c) in rooms.into_iter().enumerate() {
            let name = &self.members[i].name;
            if cordoned.contains(&i) {
                full.push(format!("{name}: being drained"));
                continue;
            }
            match c {
                Ok(c) => match self.floors.full(&c) {
                    Some(why) => full.push(format!("{name}: {why}")),
                    None => fit.push((room(&c, promising[i].saturating_add(memory)), i)),
                },
                Err(e) => full.push(format!("{name}: {e}")),
            }
        }
        if fit.is_empty() {
            return Err(Error::NoRoom(full.join("; ")));
        }
        fit.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Hosts with about the same room take turns at random, so that
        // sprites made one after the other (each gone before the next)
        // spread too.
        let best = fit[0].0;
        let even = fit
            .iter()
            .take_while(|(room, _)| best - room < EVEN)
            .count();
        rand::seq::SliceRandom::shuffle(&mut fit[..even], &mut rand::thread_rng());
        Ok(fit.into_iter().map(|(_, i)| i).collect())
    }

    fn promise(&self, member: usize, bytes: u64) -> Promise<'_> {
        self.promising.lock().expect("promises")[member] += bytes;
        Promise {
            fleet: self,
            member,
            bytes,
        }
    }

    /// `ask` of every member at once, each answer beside its member.
    async fn all<'a, T, F>(&'a self, ask: impl Fn(&'a dyn Verbs) -> F) -> Vec<(&'a str, Result<T>)>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let answers = join_all(self.members.iter().map(|m| ask(&*m.verbs))).await;
        self.members
            .iter()
            .map(|m| m.name.as_str())
            .zip(answers)
            .collect()
    }

    /// Sums of every member's answer; the first error instead, with the
    /// host it came from.
    async fn total<'a, T, F>(
        &'a self,
        ask: impl Fn(&'a dyn Verbs) -> F,
        add: impl Fn(T, T) -> T,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let mut sum = None;
        for (_, answer) in self.all(ask).await {
            let answer = answer?;
            sum = Some(match sum {
                Some(so_far) => add(so_far, answer),
                None => answer,
            });
        }
        Ok(sum.expect("a fleet has a host"))
    }
}

/// Passes a member's events on, keeping the places they tell of.
async fn forward_events(
    member: usize,
    mut rx: broadcast::Receiver<HostEvent>,
    places: Arc<Mutex<HashMap<SpriteName, usize>>>,
    tx: broadcast::Sender<HostEvent>,
) {
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            // Places missed are found again when asked for.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        {
            let mut places = places.lock().expect("places");
            if event.phase == Phase::Destroyed {
                if places.get(&event.sprite) == Some(&member) {
                    places.remove(&event.sprite);
                }
            } else {
                places.insert(event.sprite.clone(), member);
            }
        }
        let _ = tx.send(event);
    }
}

async fn forward<T: Clone>(mut rx: broadcast::Receiver<T>, tx: broadcast::Sender<T>) {
    loop {
        match rx.recv().await {
            Ok(value) => {
                let _ = tx.send(value);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl Fleet {
    /// Moves sprite `name` to host `to` (`None`: the other host with the
    /// most room) through the object store; see [`Fleet::shift`].
    pub async fn move_sprite(&self, name: &SpriteName, to: Option<&str>) -> Result<Moved> {
        let from = self.locate(name).await?;
        let to = match to {
            Some(host) => self.member(host)?,
            None => {
                let memory = self.members[from].verbs.memory_limit(name).await?;
                let roomiest = self
                    .placement(memory)
                    .await?
                    .into_iter()
                    .find(|m| *m != from);
                roomiest.ok_or_else(|| Error::NoRoom("no other host can take it".into()))?
            }
        };
        if to == from {
            return Err(Error::Invalid(format!(
                "sprite {name} is on {} already",
                self.members[to].name
            )));
        }
        self.shift(name, from, to).await
    }

    /// The host with the most room for a sprite of `memory` bytes, other
    /// than `but`.
    pub async fn roomiest_but(&self, but: &str, memory: u64) -> Result<String> {
        let but = self.member(but)?;
        let roomiest = self
            .placement(memory)
            .await?
            .into_iter()
            .find(|m| *m != but);
        roomiest
            .map(|m| self.members[m].name.clone())
            .ok_or_else(|| Error::NoRoom("no other host can take it".into()))
    }

    /// Takes on sprite `name`, whose host was lost, on host `to` from its
    /// last state in the object store: adopted and arrived there, asleep
    /// cold (its disk comes on its first wake). The control plane has
    /// claimed it for `to` first (see the server's failover), and the
    /// lost host, its lease lapsed, runs nothing of it.
    pub async fn take_over(&self, name: &SpriteName, to: &str) -> Result<TakenOver> {
        let member = self.member(to)?;
        let target = &self.members[member].verbs;
        match target.adopt(name).await {
            Ok(_) => {}
            Err(Error::AlreadyExists(_)) => match target.forget(name).await {
                // A copy from before its own lease lapsed: stale, and
                // dropped for the one in the object store.
                Ok(()) => {
                    target.adopt(name).await?;
                }
                // Held there: taken over already, by a take-over left
                // halfway.
                Err(Error::Invalid(_)) => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
        target.arrive(name).await?;
        self.settle(name, member);
        let replica = target.replication(name).await?;
        Ok(TakenOver {
            host: to.to_string(),
            checkpoint: replica.last_shipped,
            shipped_at: replica.last_shipped_at,
        })
    }

    /// Moves sprite `name` from member `from` to member `to` through the
    /// object store:
    ///
    /// 1. While it runs, everything it holds is shipped and `to` receives
    ///    it ahead, twice, so little is left for when it has stopped.
    /// 2. It stops on `from` (asleep cold): from here it answers nothing.
    /// 3. `from` ships the rest, keeps only its records, and brings it back
    ///    no more (hand over).
    /// 4. `to` adopts it from the object store, not to wake it yet.
    /// 5. `from` lets it go; from here it lives on `to`.
    /// 6. `to` is told it has arrived, and wakes it (its disk fetched) if
    ///    it was running; a sprite asleep arrives asleep cold (a warm
    ///    sleep's memory does not travel).
    ///
    /// From 3 to 6 a wake on either host is refused (`Error::Moving`), so
    /// it never runs on both. A failure before 5 undoes 4 and keeps it on
    /// `from` (woken again if it was running; what was evicted comes back
    /// on that wake); a release whose answer was lost counts as done when
    /// `from` no longer has it. Once 5 is done it is on `to`.
    async fn shift(&self, name: &SpriteName, from: usize, to: usize) -> Result<Moved> {
        let (source, target) = (&self.members[from].verbs, &self.members[to].verbs);
        if !source.replicates() || !target.replicates() {
            return Err(Error::Invalid(
                "sprites move through the object store: start the hosts with one".into(),
            ));
        }
        let phase = source.phase(name).await?;
        let awake = phase == Phase::Running;
        // Twice: what it wrote during the first round is less again.
        for _ in 0..2 {
            source.replicate(name, Duration::ZERO).await?;
            target.prefetch(name).await?;
        }
        let frozen = std::time::Instant::now();
        let step =
            |what: &str| tracing::debug!(sprite = %name, "move: {what} at {:?}", frozen.elapsed());
        let handed = async {
            if phase != Phase::SleepingCold {
                source.sleep_cold(name).await?;
                step("stopped");
            }
            source.hand_over(name).await?;
            step("handed over");
            match target.adopt(name).await {
                Ok(_) => {}
                // Adopted, maybe, with the answer lost: let go again.
                Err(e @ Error::Fault(_)) => {
                    let _ = target.release(name).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            step("adopted");
            if let Err(e) = source.release(name).await {
                // Released, maybe, with the answer lost: then it is done.
                if matches!(source.get(name).await, Err(Error::NotFound(_))) {
                    return Ok(());
                }
                let _ = target.release(name).await;
                return Err(e);
            }
            step("released");
            Ok(())
        };
        if let Err(e) = handed.await {
            let _ = source.stay(name).await;
            if awake {
                let _ = source.wake(name).await;
            }
            return Err(e);
        }
        self.settle(name, to);
        target.arrive(name).await?;
        if awake {
            target.wake(name).await?;
            step("woken");
        }
        Ok(Moved {
            host: self.members[to].name.clone(),
            downtime_ms: frozen.elapsed().as_millis() as u64,
        })
    }
}

type Progress = Box<dyn for<'line> FnMut(&'line str) + Send + 'static>;

/// Image `name` prepared on `member`, its progress told to `shared`.
async fn prepare_on(
    member: &Member,
    name: &str,
    recipe: &Recipe,
    shared: &Arc<Mutex<Progress>>,
) -> Result<Image> {
    let progress = progress_of(shared, &member.name);
    member
        .verbs
        .prepare_image(name, recipe, progress)
        .await
        .map_err(|e| Error::Fault(format!("host {}: {e}", member.name)))
}

/// One progress for each host, telling the shared one with its name.
fn progress_of(shared: &Arc<Mutex<Progress>>, host: &str) -> Progress {
    let shared = shared.clone();
    let host = host.to_string();
    Box::new(move |line: &str| {
        let mut tell = shared.lock().expect("progress");
        (*tell)(&format!("{host}: {line}"))
    })
}

/// Verbs about one sprite, each asked of the host that keeps it.
macro_rules! fleet_verbs {
    (
        routed { $( fn $verb:ident(&self, $name:ident $(, $arg:ident: $ty:ty)*) -> $out:ty; )* }
        $($rest:tt)*
    ) => {
        #[async_trait]
        impl Verbs for Fleet {
            $(
                async fn $verb(&self, $name: &SpriteName $(, $arg: $ty)*) -> Result<$out> {
                    let at = self.locate($name).await?;
                    match self.members[at].verbs.$verb($name $(, $arg.clone())*).await {
                        // Moved since it was placed: asked where it is now.
                        Err(Error::NotFound(_)) if self.moved_from($name, at) => {
                            let at = self.locate($name).await?;
                            self.members[at].verbs.$verb($name $(, $arg)*).await
                        }
                        answer => answer,
                    }
                }
            )*
            $($rest)*
        }
    };
}

fleet_verbs! {
    routed {
        fn get(&self, name) -> SpriteInfo;
        fn phase(&self, name) -> Phase;
        fn sleep_warm(&self, name) -> Phase;
        fn sleep_cold(&self, name) -> Phase;
        fn wake(&self, name) -> Phase;
        fn restart(&self, name) -> Phase;
        fn upgrade(&self, name) -> bool;
        fn memory_limit(&self, name) -> u64;
        fn privileges(&self, name) -> PrivilegesPolicy;
        fn set_privileges(&self, name, policy: PrivilegesPolicy) -> bool;
        fn set_memory_limit(&self, name, bytes: Option<u64>) -> u64;
        fn check(&self, name) -> Check;
        fn network_policy(&self, name) -> NetworkPolicy;
        fn set_network_policy(&self, name, policy: NetworkPolicy) -> ();
        fn disk_usage(&self, name) -> u64;
        fn checkpoint(&self, name, comment: &str) -> CheckpointInfo;
        fn checkpoints(&self, name) -> Vec<CheckpointInfo>;
        fn checkpoint_info(&self, name, id: CheckpointId) -> CheckpointInfo;
        fn delete_checkpoint(&self, name, id: CheckpointId) -> ();
        fn restore(&self, name, target: CheckpointId) -> (SpriteInfo, CheckpointInfo);
        fn diff(&self, name, from: CheckpointId, to: Option<CheckpointId>) -> Vec<Change>;
        fn exec(&self, name, spec: ExecSpec) -> Stream;
        fn attach(&self, name, session: u64, replay: bool) -> Stream;
        fn sessions(&self, name) -> Vec<SessionInfo>;
        fn kill_session(&self, name, session: u64, signal: i32) -> ();
        fn run(&self, name, argv: &[&str], stdin: &[u8]) -> ExecOutput;
        fn connect(&self, name, host: &str, port: u16) -> Connection;
        fn ports(&self, name) -> Vec<Port>;
        fn services(&self, name) -> Vec<ServiceInfo>;
        fn service(&self, name, service: &str, change: ServiceOp, follow_ms: u64) -> ServiceEvents;
        fn service_logs(&self, name, service: &str, lines: usize, follow: bool) -> ServiceEvents;
        fn listen_mgmt(&self, name) -> MgmtListener;
        fn sprite_files(&self, name) -> Files;
        fn checkpoint_files(&self, name, id: CheckpointId) -> Files;
        fn watch(&self, name, paths: &[String], recursive: bool) -> FsWatch;
        fn save_image(&self, name, id: CheckpointId, image: &str) -> Image;
        fn replication(&self, name) -> Replication;
        fn replicate(&self, name, every: Duration) -> ShipReport;
        fn evict(&self, name) -> ();
        fn prune(&self, name) -> Vec<CheckpointId>;
        fn release(&self, name) -> ();
        fn hand_over(&self, name) -> ();
        fn stay(&self, name) -> ();
        fn arrive(&self, name) -> ();
    }

    /// On the host with the most room.
    async fn adopt(&self, name: &SpriteName) -> Result<SpriteInfo> {
        if self.locate(name).await.is_ok() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let member = self.placement(0).await?[0];
        let adopted = self.members[member].verbs.adopt(name).await?;
        self.settle(name, member);
        Ok(adopted)
    }
    /// Holds are given to each host by name (its member's verbs).
    async fn hold(&self, _names: &[SpriteName], _sent_at: u64) -> Result<Held> {
        Err(Error::Invalid(
            "a hold is given to one host, not to the cluster".into(),
        ))
    }
    /// Forgetting is asked of one host by name (its member's verbs).
    async fn forget(&self, name: &SpriteName) -> Result<()> {
        Err(Error::Invalid(format!(
            "sprite {name} is forgotten by one host, not by the cluster"
        )))
    }
    /// A fleet receives a sprite ahead only for a move of its own.
    async fn prefetch(&self, name: &SpriteName) -> Result<u64> {
        Err(Error::Invalid(format!(
            "sprite {name} is received ahead by the host it moves to, as part of the move"
        )))
    }
    async fn create(&self, name: &SpriteName, opts: CreateOptions) -> Result<SpriteInfo> {
        if self.locate(name).await.is_ok() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let memory = opts
            .limits
            .as_ref()
            .map_or(Limits::default().memory_bytes, |l| l.memory_bytes);
        let mut missing = None;
        for member in self.placement(memory).await? {
            let _promise = self.promise(member, memory);
            match self.members[member].verbs.create(name, opts.clone()).await {
                Ok(made) => {
                    self.settle(name, member);
                    return Ok(made);
                }
                // An image saved on another host: the next one may have it.
                Err(e @ Error::ImageMissing(_)) => missing = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(missing.expect("a placement names a host"))
    }
    async fn list(&self) -> Result<Vec<SpriteInfo>> {
        self.total(|h| h.list(), |mut a, b| {
            a.extend(b);
            a
        })
        .await
    }
    async fn destroy(&self, name: &SpriteName) -> Result<()> {
        let mut member = self.locate(name).await?;
        match self.members[member].verbs.destroy(name).await {
            // Moved since it was placed: destroyed where it is now.
            Err(Error::NotFound(_)) if self.moved_from(name, member) => {
                member = self.locate(name).await?;
                self.members[member].verbs.destroy(name).await?;
            }
            done => done?,
        }
        let mut places = self.places.lock().expect("places");
        if places.get(name) == Some(&member) {
            places.remove(name);
        }
        Ok(())
    }
    /// On the source's host: a fork shares its disk's blocks.
    async fn fork_named(
        &self,
        source: &SpriteName,
        checkpoint: Option<CheckpointId>,
        name: &SpriteName,
        hostname: &SpriteName,
    ) -> Result<SpriteInfo> {
        if self.locate(name).await.is_ok() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let member = self.locate(source).await?;
        let made = self.members[member]
            .verbs
            .fork_named(source, checkpoint, name, hostname)
            .await?;
        self.settle(name, member);
        Ok(made)
    }
    fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    /// Removed from every host that keeps it.
    async fn remove_image(&self, image: &str) -> Result<()> {
        let mut removed = false;
        let mut missing = None;
        for (host, answer) in self.all(|h| h.remove_image(image)).await {
            match answer {
                Ok(()) => removed = true,
                Err(e @ Error::ImageMissing(_)) => missing = Some(e),
                Err(e) => return Err(Error::Fault(format!("host {host}: {e}"))),
            }
        }
        match missing {
            Some(e) if !removed => Err(e),
            _ => Ok(()),
        }
    }
    /// Built on the first host, then on the others at once: with an object
    /// store they share, the first puts it there and the others take that
    /// very image, so a sprite's checkpoints can be received by any host.
    async fn prepare_image(&self, name: &str, recipe: &Recipe, progress: Progress) -> Result<Image> {
        let shared = Arc::new(Mutex::new(progress));
        let (first, others) = self.members.split_first().expect("a fleet has a host");
        let image = prepare_on(first, name, recipe, &shared).await?;
        for made in join_all(others.iter().map(|m| prepare_on(m, name, recipe, &shared))).await {
            made?;
        }
        Ok(image)
    }
    /// Imported on the host with the most room, only: an import on each
    /// would make different images of one name, and a sprite's first
    /// checkpoint, a difference from its image, could then be received by
    /// no other host. Sprites made from it go to that host (the others
    /// lack the image), and another host that receives one of them takes
    /// the image from the object store.
    async fn import_image(
        &self,
        image: &str,
        archive: Box<dyn std::io::Read + Send>,
        max_bytes: u64,
        progress: Progress,
    ) -> Result<Image> {
        let member = self.placement(0).await?[0];
        self.members[member]
            .verbs
            .import_image(image, archive, max_bytes, progress)
            .await
    }

    fn replicates(&self) -> bool {
        self.replicates
    }
    fn replica_changes(&self) -> broadcast::Receiver<SpriteName> {
        self.replica_changes.subscribe()
    }
    async fn forget_destroyed(&self) -> Result<usize> {
        self.total(|h| h.forget_destroyed(), |a, b| a + b).await
    }

    fn runtime_name(&self) -> &'static str {
        self.members[0].verbs.runtime_name()
    }
    async fn pool_used_bytes(&self) -> Result<u64> {
        self.total(|h| h.pool_used_bytes(), |a, b| a + b).await
    }
    /// The room of all hosts together.
    async fn capacity(&self) -> Result<Capacity> {
        self.total(
            |h| h.capacity(),
            |a, b| Capacity {
                cpus: a.cpus + b.cpus,
                memory_bytes: a.memory_bytes + b.memory_bytes,
                memory_available_bytes: a.memory_available_bytes + b.memory_available_bytes,
                memory_promised_bytes: a.memory_promised_bytes + b.memory_promised_bytes,
                disk_bytes: a.disk_bytes + b.disk_bytes,
                disk_free_bytes: a.disk_free_bytes + b.disk_free_bytes,
                running: a.running + b.running,
                sleeping: a.sleeping + b.sleeping,
            },
        )
        .await
    }
}
