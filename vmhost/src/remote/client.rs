//! The API server's side: [`Remote`] makes each verb a request to a host
//! daemon (see the protocol in [`super`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy};
use sprites_wire::ports::Port;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tracing::debug;

use super::{
    read_line, write_line, Built, Head, LineError, MgmtAccepted, Request, SessionHead, MAX_CHUNK,
};
use crate::call::{Call, Description, ImageRef};
use crate::diff::Change;
use crate::fs::{Elsewhere, Entry, FileCall, Files, Reader, UploadElsewhere};
use crate::image::{Image, Recipe};
use crate::sprite::replica::{Replication, ShipReport};
use crate::sprite::Held;
use crate::{
    Capacity, Check, CheckpointId, CheckpointInfo, Connection, CreateOptions, Error, ExecOutput,
    ExecSpec, FsWatch, HostEvent, MgmtListener, Phase, Result, ServiceEvents, ServiceInfo,
    ServiceOp, SessionInfo, SpriteInfo, SpriteName, Stream, Verbs,
};

/// A TLS connection to a host, read through a buffer.
pub(super) type Conn = BufReader<tokio_rustls::client::TlsStream<TcpStream>>;

/// Whether a kept connection can carry a request: nothing left unread,
/// and its socket neither closed by the host nor holding anything unasked
/// (a close or an alert). Unless the runtime saw it readable since it was
/// last read dry, no system call.
fn is_fresh(conn: &Conn) -> bool {
    if !conn.buffer().is_empty() {
        return false;
    }
    let (tcp, _) = conn.get_ref().get_ref();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if tcp.poll_read_ready(&mut cx).is_pending() {
        return true;
    }
    let mut byte = [0u8; 1];
    matches!(tcp.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// How long connecting (TCP and TLS) may take.
const CONNECT: Duration = Duration::from_secs(10);
/// An idle connection older than this is closed, not used again: well
/// before the host's own idle limit.
const KEEP_IDLE: Duration = Duration::from_secs(60);
/// The most idle connections kept.
const MAX_IDLE: usize = 16;
/// The longest wait before reconnecting a stream of events.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where a host is and how to prove it is the one meant.
pub(super) struct Link {
    /// Its name in the cluster, as its certificate says.
    name: String,
    addr: String,
    server_name: rustls::pki_types::ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    idle: Mutex<Vec<(Instant, Conn)>>,
}

impl Link {
    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::Fault(format!("host {} ({}): {e}", self.name, self.addr))
    }

    /// A new connection, handshake done.
    async fn open(&self) -> Result<Conn> {
        let connect = async {
            let tcp = TcpStream::connect(&self.addr).await?;
            super::tune(&tcp)?;
            self.connector.connect(self.server_name.clone(), tcp).await
        };
        match tokio::time::timeout(CONNECT, connect).await {
            Ok(Ok(tls)) => Ok(BufReader::new(tls)),
            Ok(Err(e)) => Err(self.unreachable(e)),
            Err(_) => Err(self.unreachable("no connection within 10 s")),
        }
    }

    /// A kept connection still fit to carry a call.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().expect("idle connections");
        while let Some((since, conn)) = idle.pop() {
            if since.elapsed() < KEEP_IDLE && is_fresh(&conn) {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: Conn) {
        let mut idle = self.idle.lock().expect("idle connections");
        idle.retain(|(since, _)| since.elapsed() < KEEP_IDLE);
        if idle.len() < MAX_IDLE {
            idle.push((Instant::now(), conn));
        }
    }

    /// Sends `request` on `conn` and reads the head. Once sent, a request
    /// is never sent again: the host may have acted on it.
    async fn ask(&self, conn: &mut Conn, request: &Request) -> Result<Head> {
        write_line(conn, request)
            .await
            .map_err(|e| self.unreachable(e))?;
        match read_line::<Head>(conn).await {
            Ok(head) => Ok(head),
            Err(LineError::Closed) => {
                Err(self.unreachable("the connection closed before an answer"))
            }
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// One call, on an idle connection when there is one.
    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let request = Request::Call { call };
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.open().await?,
        };
        let head = self.ask(&mut conn, &request).await?;
        self.settle(conn, head)
    }

    /// The answer `head`, its connection kept for the next call.
    fn settle<T: DeserializeOwned>(&self, conn: Conn, head: Head) -> Result<T> {
        self.put_idle(conn);
        match head {
            Head::Ok(value) => self.parse(value),
            Head::Err(e) => Err(e.into()),
        }
    }

    /// A request that streams, on a connection of its own; its head and
    /// the connection that carries the stream.
    async fn start(&self, request: &Request) -> Result<(Value, Conn)> {
        let mut conn = self.open().await?;
        match self.ask(&mut conn, request).await? {
            Head::Ok(value) => Ok((value, conn)),
            Head::Err(e) => Err(e.into()),
        }
    }

    /// An image build's or import's progress lines, to `progress`, then
    /// the image or the error.
    async fn built(
        &self,
        from: &mut (impl tokio::io::AsyncBufRead + Unpin),
        progress: &mut Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image> {
        loop {
            match read_line::<Built>(from).await {
                Ok(Built::Progress(line)) => progress(&line),
                Ok(Built::Done(made)) => return Ok(image_of(made)),
                Ok(Built::Err(e)) => return Err(e.into()),
                Err(e) => return Err(self.unreachable(e)),
            }
        }
    }

    fn parse<T: DeserializeOwned>(&self, value: Value) -> Result<T> {
        serde_json::from_value(value).map_err(|e| self.unreachable(format!("a bad answer: {e}")))
    }
}

/// A host on another machine, reached over mutual TLS.
pub struct Remote {
    link: Arc<Link>,
    runtime: &'static str,
    replicates: bool,
    events: broadcast::Sender<HostEvent>,
    replica_changes: broadcast::Sender<SpriteName>,
    followers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        for follower in &self.followers {
            follower.abort();
        }
    }
}

impl Remote {
    /// The host named `name` in the cluster, listening at `addr`
    /// (`host:port`), reached as `identity` (an API server's); asks it
    /// what it is, so an unreachable host is an error now.
    pub async fn connect(
        name: &str,
        addr: &str,
        identity: &crate::cluster::Identity,
    ) -> Result<Remote> {
        let problem = |e: crate::cluster::IdentityError| Error::Invalid(e.to_string());
        let link = Arc::new(Link {
            name: name.to_string(),
            addr: addr.to_string(),
            server_name: crate::cluster::server_name(name).map_err(problem)?,
            connector: identity.connector().map_err(problem)?,
            idle: Mutex::new(Vec::new()),
        });
        let me: Description = link.call(Call::Describe).await?;
        let (events, _) = broadcast::channel(4096);
        let (replica_changes, _) = broadcast::channel(1024);
        let followers = vec![
            tokio::spawn(follow(link.clone(), events.clone())),
            tokio::spawn(follow(link.clone(), replica_changes.clone())),
        ];
        Ok(Remote {
            link,
            runtime: runtime_name(&me.runtime),
            replicates: me.replicates,
            events,
            replica_changes,
            followers,
        })
    }

    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        self.link.call(call).await
    }

    async fn session(&self, request: Request) -> Result<Stream> {
        let (head, conn) = self.link.start(&request).await?;
        let head: SessionHead = self.link.parse(head)?;
        let (from_host, to_host) = tokio::io::split(conn);
        Ok(Stream::from_parts(
            head.session,
            head.pid,
            Box::new(to_host),
            Box::new(from_host),
        ))
    }

    /// Sprite `name`'s files (as `checkpoint` keeps them), once the host
    /// has said they are there, as the in-process host does.
    async fn files(&self, name: &SpriteName, checkpoint: Option<CheckpointId>) -> Result<Files> {
        let far = FarFiles {
            link: self.link.clone(),
            name: name.clone(),
            checkpoint,
        };
        far.call(FileCall::Stat { path: "/".into() }).await?;
        Ok(Files::elsewhere(Arc::new(far)))
    }

    async fn service_events(&self, request: Request) -> Result<ServiceEvents> {
        let (_, conn) = self.link.start(&request).await?;
        Ok(ServiceEvents::from_frames(Box::new(conn)))
    }
}

/// An image another host keeps: its files are not on this machine.
fn image_of(made: ImageRef) -> Image {
    Image {
        name: made.name,
        hash: made.hash,
        path: Default::default(),
    }
}

/// A runtime's name as the trait gives it: the runtimes hosts run are few.
fn runtime_name(name: &str) -> &'static str {
    match name {
        "crun" => "crun",
        "runc" => "runc",
        "runsc" => "runsc",
        _ => "unknown",
    }
}

/// A stream the host keeps sending: its request, and what stands for
/// everything it may have said while the stream was broken.
trait Followed: DeserializeOwned + Clone + Send + 'static {
    const REQUEST: Request;
    /// Each sprite's state now, as this stream tells of it.
    fn catch_up(sprites: Vec<SpriteInfo>) -> Vec<Self>;
}

impl Followed for HostEvent {
    const REQUEST: Request = Request::Events;
    fn catch_up(sprites: Vec<SpriteInfo>) -> Vec<HostEvent> {
        sprites
            .into_iter()
            .filter_map(|s| {
                Some(HostEvent {
                    sprite: SpriteName::parse(&s.name).ok()?,
                    phase: s.phase,
                })
            })
            .collect()
    }
}

impl Followed for SpriteName {
    const REQUEST: Request = Request::ReplicaChanges;
    fn catch_up(sprites: Vec<SpriteInfo>) -> Vec<SpriteName> {
        sprites
            .into_iter()
            .filter_map(|s| SpriteName::parse(&s.name).ok())
            .collect()
    }
}

/// Keeps a stream of `T` flowing into `tx`, connecting again (with a
/// growing pause) whenever it breaks. Once a stream stands, every sprite's
/// state is sent as if it had just changed: what the host said while no
/// stream stood (before the first, too) is not missed, only said again.
async fn follow<T: Followed>(link: Arc<Link>, tx: broadcast::Sender<T>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match link.start(&T::REQUEST).await {
            Ok((_, mut conn)) => {
                pause = Duration::from_millis(100);
                if let Ok(sprites) = link.call::<Vec<SpriteInfo>>(Call::List).await {
                    for value in T::catch_up(sprites) {
                        let _ = tx.send(value);
                    }
                }
                loop {
                    match read_line::<T>(&mut conn).await {
                        Ok(value) => {
                            let _ = tx.send(value);
                        }
                        Err(e) => {
                            debug!("{:?} from host {} ended: {e}", T::REQUEST, link.name);
                            break;
                        }
                    }
                }
            }
            Err(e) => debug!("{:?} from host {}: {e}", T::REQUEST, link.name),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

/// Sends `archive` to the host in chunks, then the empty one. An archive
/// that cannot be read is the error; a host that stopped taking it is
/// not (its answer tells why): the sending just stops.
async fn send_archive(
    mut archive: Box<dyn std::io::Read + Send>,
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    // The archive is read where blocking is allowed.
    tokio::task::spawn_blocking(move || loop {
        let mut chunk = vec![0; 256 << 10];
        let read = match archive.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                Ok(chunk)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = read.is_err();
        if tx.blocking_send(read).is_err() || failed {
            return;
        }
    });
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk.map_err(|e| Error::io("cannot read the archive", e))?;
        let sent = async {
            to.write_u32(chunk.len() as u32).await?;
            to.write_all(&chunk).await
        };
        if sent.await.is_err() {
            return Ok(());
        }
    }
    let _ = async {
        to.write_u32(0).await?;
        to.flush().await
    }
    .await;
    Ok(())
}

#[async_trait]
impl Verbs for Remote {
    async fn create(&self, name: &SpriteName, opts: CreateOptions) -> Result<SpriteInfo> {
        let name = name.clone();
        self.call(Call::Create { name, opts }).await
    }
    async fn get(&self, name: &SpriteName) -> Result<SpriteInfo> {
        self.call(Call::Get { name: name.clone() }).await
    }
    async fn list(&self) -> Result<Vec<SpriteInfo>> {
        self.call(Call::List).await
    }
    async fn phase(&self, name: &SpriteName) -> Result<Phase> {
        self.call(Call::Phase { name: name.clone() }).await
    }
    async fn destroy(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::Destroy { name: name.clone() }).await
    }
    async fn fork_named(
        &self,
        source: &SpriteName,
        checkpoint: Option<CheckpointId>,
        name: &SpriteName,
        hostname: &SpriteName,
    ) -> Result<SpriteInfo> {
        self.call(Call::ForkNamed {
            source: source.clone(),
            checkpoint,
            name: name.clone(),
            hostname: hostname.clone(),
        })
        .await
    }
    async fn sleep_warm(&self, name: &SpriteName) -> Result<Phase> {
        self.call(Call::SleepWarm { name: name.clone() }).await
    }
    async fn sleep_cold(&self, name: &SpriteName) -> Result<Phase> {
        self.call(Call::SleepCold { name: name.clone() }).await
    }
    async fn wake(&self, name: &SpriteName) -> Result<Phase> {
        self.call(Call::Wake { name: name.clone() }).await
    }
    async fn restart(&self, name: &SpriteName) -> Result<Phase> {
        self.call(Call::Restart { name: name.clone() }).await
    }
    async fn upgrade(&self, name: &SpriteName) -> Result<bool> {
        self.call(Call::Upgrade { name: name.clone() }).await
    }
    async fn memory_limit(&self, name: &SpriteName) -> Result<u64> {
        self.call(Call::MemoryLimit { name: name.clone() }).await
    }
    async fn privileges(&self, name: &SpriteName) -> Result<PrivilegesPolicy> {
        self.call(Call::Privileges { name: name.clone() }).await
    }
    async fn set_privileges(&self, name: &SpriteName, policy: PrivilegesPolicy) -> Result<bool> {
        let name = name.clone();
        self.call(Call::SetPrivileges { name, policy }).await
    }
    async fn set_memory_limit(&self, name: &SpriteName, bytes: Option<u64>) -> Result<u64> {
        let name = name.clone();
        self.call(Call::SetMemoryLimit { name, bytes }).await
    }
    async fn check(&self, name: &SpriteName) -> Result<Check> {
        self.call(Call::Check { name: name.clone() }).await
    }
    async fn network_policy(&self, name: &SpriteName) -> Result<NetworkPolicy> {
        self.call(Call::NetworkPolicy { name: name.clone() }).await
    }
    async fn set_network_policy(&self, name: &SpriteName, policy: NetworkPolicy) -> Result<()> {
        let name = name.clone();
        self.call(Call::SetNetworkPolicy { name, policy }).await
    }
    async fn disk_usage(&self, name: &SpriteName) -> Result<u64> {
        self.call(Call::DiskUsage { name: name.clone() }).await
    }
    fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.events.subscribe()
    }

    async fn checkpoint(&self, name: &SpriteName, comment: &str) -> Result<CheckpointInfo> {
        let (name, comment) = (name.clone(), comment.to_string());
        self.call(Call::Checkpoint { name, comment }).await
    }
    async fn checkpoints(&self, name: &SpriteName) -> Result<Vec<CheckpointInfo>> {
        self.call(Call::Checkpoints { name: name.clone() }).await
    }
    async fn checkpoint_info(&self, name: &SpriteName, id: CheckpointId) -> Result<CheckpointInfo> {
        let name = name.clone();
        self.call(Call::CheckpointInfo { name, id }).await
    }
    async fn delete_checkpoint(&self, name: &SpriteName, id: CheckpointId) -> Result<()> {
        let name = name.clone();
        self.call(Call::DeleteCheckpoint { name, id }).await
    }
    async fn restore(
        &self,
        name: &SpriteName,
        target: CheckpointId,
    ) -> Result<(SpriteInfo, CheckpointInfo)> {
        let name = name.clone();
        self.call(Call::Restore { name, target }).await
    }
    async fn diff(
        &self,
        name: &SpriteName,
        from: CheckpointId,
        to: Option<CheckpointId>,
    ) -> Result<Vec<Change>> {
        let name = name.clone();
        self.call(Call::Diff { name, from, to }).await
    }

    async fn exec(&self, name: &SpriteName, spec: ExecSpec) -> Result<Stream> {
        let name = name.clone();
        self.session(Request::Exec { name, spec }).await
    }
    async fn attach(&self, name: &SpriteName, session: u64, replay: bool) -> Result<Stream> {
        let name = name.clone();
        self.session(Request::Attach {
            name,
            session,
            replay,
        })
        .await
    }
    async fn sessions(&self, name: &SpriteName) -> Result<Vec<SessionInfo>> {
        self.call(Call::Sessions { name: name.clone() }).await
    }
    async fn kill_session(&self, name: &SpriteName, session: u64, signal: i32) -> Result<()> {
        let name = name.clone();
        self.call(Call::KillSession {
            name,
            session,
            signal,
        })
        .await
    }
    async fn run(&self, name: &SpriteName, argv: &[&str], stdin: &[u8]) -> Result<ExecOutput> {
        self.call(Call::Run {
            name: name.clone(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            stdin: stdin.to_vec(),
        })
        .await
    }
    async fn connect(&self, name: &SpriteName, host: &str, port: u16) -> Result<Connection> {
        let (name, host) = (name.clone(), host.to_string());
        let (_, conn) = self
            .link
            .start(&Request::Connect { name, host, port })
            .await?;
        Ok(Connection::Remote(Box::new(conn)))
    }
    async fn ports(&self, name: &SpriteName) -> Result<Vec<Port>> {
        self.call(Call::Ports { name: name.clone() }).await
    }
    async fn services(&self, name: &SpriteName) -> Result<Vec<ServiceInfo>> {
        self.call(Call::Services { name: name.clone() }).await
    }
    async fn service(
        &self,
        name: &SpriteName,
        service: &str,
        change: ServiceOp,
        follow_ms: u64,
    ) -> Result<ServiceEvents> {
        self.service_events(Request::Service {
            name: name.clone(),
            service: service.to_string(),
            change,
            follow_ms,
        })
        .await
    }
    async fn service_logs(
        &self,
        name: &SpriteName,
        service: &str,
        lines: usize,
        follow: bool,
    ) -> Result<ServiceEvents> {
        self.service_events(Request::ServiceLogs {
            name: name.clone(),
            service: service.to_string(),
            lines,
            follow,
        })
        .await
    }
    async fn listen_mgmt(&self, name: &SpriteName) -> Result<MgmtListener> {
        let request = Request::ListenMgmt { name: name.clone() };
        let (_, conn) = self.link.start(&request).await?;
        Ok(MgmtListener::elsewhere(RemoteMgmt {
            link: self.link.clone(),
            name: name.clone(),
            accepted: conn,
        }))
    }

    async fn sprite_files(&self, name: &SpriteName) -> Result<Files> {
        self.files(name, None).await
    }
    async fn checkpoint_files(&self, name: &SpriteName, id: CheckpointId) -> Result<Files> {
        self.files(name, Some(id)).await
    }
    async fn watch(&self, name: &SpriteName, paths: &[String], recursive: bool) -> Result<FsWatch> {
        let request = Request::Watch {
            name: name.clone(),
            paths: paths.to_vec(),
            recursive,
        };
        let (_, mut conn) = self.link.start(&request).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let link = self.link.clone();
        let task = tokio::spawn(async move {
            // Until the host ends the stream (the sprite is gone), the
            // connection breaks (said first: the sprite may well be
            // there), or the watch is dropped.
            loop {
                let event = match read_line::<Head>(&mut conn).await {
                    Ok(Head::Ok(event)) => serde_json::from_value(event)
                        .map_err(|e| Error::Fault(format!("a bad file event: {e}"))),
                    Ok(Head::Err(e)) => Err(e.into()),
                    Err(LineError::Closed) => return,
                    Err(e) => {
                        let _ = tx.send(Err(link.unreachable(e))).await;
                        return;
                    }
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(FsWatch::from_task(rx, task))
    }

    async fn save_image(&self, name: &SpriteName, id: CheckpointId, image: &str) -> Result<Image> {
        let (name, image) = (name.clone(), image.to_string());
        let made: ImageRef = self.call(Call::SaveImage { name, id, image }).await?;
        Ok(image_of(made))
    }
    async fn remove_image(&self, image: &str) -> Result<()> {
        let image = image.to_string();
        self.call(Call::RemoveImage { image }).await
    }
    async fn prepare_image(
        &self,
        name: &str,
        recipe: &Recipe,
        mut progress: Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image> {
        let request = Request::PrepareImage {
            name: name.to_string(),
            recipe: recipe.clone(),
        };
        let (_, mut conn) = self.link.start(&request).await?;
        self.link.built(&mut conn, &mut progress).await
    }
    async fn import_image(
        &self,
        image: &str,
        archive: Box<dyn std::io::Read + Send>,
        max_bytes: u64,
        mut progress: Box<dyn for<'line> FnMut(&'line str) + Send + 'static>,
    ) -> Result<Image> {
        let request = Request::ImportImage {
            image: image.to_string(),
            max_bytes,
        };
        let (_, conn) = self.link.start(&request).await?;
        let (from_host, mut to_host) = tokio::io::split(conn);
        let mut from_host = BufReader::new(from_host);
        let send = async {
            if let Err(e) = send_archive(archive, &mut to_host).await {
                return e;
            }
            // All sent: the host's answer says the rest.
            std::future::pending().await
        };
        tokio::select! {
            made = self.link.built(&mut from_host, &mut progress) => made,
            e = send => Err(e),
        }
    }

    fn replicates(&self) -> bool {
        self.replicates
    }
    async fn replication(&self, name: &SpriteName) -> Result<Replication> {
        self.call(Call::Replication { name: name.clone() }).await
    }
    fn replica_changes(&self) -> broadcast::Receiver<SpriteName> {
        self.replica_changes.subscribe()
    }
    async fn replicate(&self, name: &SpriteName, every: Duration) -> Result<ShipReport> {
        let name = name.clone();
        self.call(Call::Replicate { name, every }).await
    }
    async fn evict(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::Evict { name: name.clone() }).await
    }
    async fn adopt(&self, name: &SpriteName) -> Result<SpriteInfo> {
        self.call(Call::Adopt { name: name.clone() }).await
    }
    async fn release(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::Release { name: name.clone() }).await
    }
    async fn prefetch(&self, name: &SpriteName) -> Result<u64> {
        self.call(Call::Prefetch { name: name.clone() }).await
    }
    async fn hand_over(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::HandOver { name: name.clone() }).await
    }
    async fn stay(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::Stay { name: name.clone() }).await
    }
    async fn arrive(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::Arrive { name: name.clone() }).await
    }
    async fn hold(&self, names: &[SpriteName], sent_at: u64) -> Result<Held> {
        self.call(Call::Hold {
            names: names.to_vec(),
            sent_at,
        })
        .await
    }
    async fn forget(&self, name: &SpriteName) -> Result<()> {
        self.call(Call::Forget { name: name.clone() }).await
    }
    async fn prune(&self, name: &SpriteName) -> Result<Vec<CheckpointId>> {
        self.call(Call::Prune { name: name.clone() }).await
    }
    async fn forget_destroyed(&self) -> Result<usize> {
        self.call(Call::ForgetDestroyed).await
    }

    fn runtime_name(&self) -> &'static str {
        self.runtime
    }
    async fn pool_used_bytes(&self) -> Result<u64> {
        self.call(Call::PoolUsedBytes).await
    }
    async fn capacity(&self) -> Result<Capacity> {
        self.call(Call::Capacity).await
    }
}

/// A sprite's management socket on another host: the host tells of each
/// connection it accepted on a stream of its own, and each is then taken
/// on a connection of its own.
struct RemoteMgmt {
    link: Arc<Link>,
    name: SpriteName,
    accepted: Conn,
}

impl RemoteMgmt {
    /// Listens again after the stream of accepted connections broke (the
    /// host restarted, say), for as long as the host cannot be reached;
    /// the host's refusal (the sprite is gone) ends it.
    async fn listen_again(&mut self) -> Result<()> {
        let request = Request::ListenMgmt {
            name: self.name.clone(),
        };
        let mut pause = Duration::from_millis(100);
        loop {
            tokio::time::sleep(pause).await;
            match self.link.start(&request).await {
                Ok((_, conn)) => {
                    self.accepted = conn;
                    return Ok(());
                }
                Err(Error::Fault(e)) => debug!("listening again on {}: {e}", self.name),
                Err(e) => return Err(e),
            }
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
}

#[async_trait]
impl crate::sprite::mgmt::Accept for RemoteMgmt {
    async fn accept(&mut self) -> Result<crate::MgmtConnection> {
        loop {
            match read_line::<MgmtAccepted>(&mut self.accepted).await {
                Ok(accepted) => {
                    let request = Request::MgmtTake {
                        ticket: accepted.ticket,
                    };
                    let (_, conn) = self.link.start(&request).await?;
                    return Ok(Box::new(conn));
                }
                Err(e) => {
                    debug!("the management socket of {} broke: {e}", self.name);
                    self.listen_again().await?;
                }
            }
        }
    }
}

/// A sprite's files on another host.
struct FarFiles {
    link: Arc<Link>,
    name: SpriteName,
    checkpoint: Option<CheckpointId>,
}

#[async_trait]
impl Elsewhere for FarFiles {
    async fn call(&self, call: FileCall) -> Result<Value> {
        self.link
            .call(Call::Files {
                name: self.name.clone(),
                checkpoint: self.checkpoint,
                call,
            })
            .await
    }

    async fn open_read(&self, path: &str) -> Result<(Reader, u64)> {
        let request = Request::ReadFile {
            name: self.name.clone(),
            checkpoint: self.checkpoint,
            path: path.to_string(),
        };
        let (size, conn) = self.link.start(&request).await?;
        Ok((Box::new(conn), self.link.parse(size)?))
    }

    async fn create(
        &self,
        path: &str,
        mode: Option<u32>,
        make_parents: bool,
    ) -> Result<Box<dyn UploadElsewhere>> {
        if self.checkpoint.is_some() {
            return Err(Error::Invalid(
                "a checkpoint's files are kept as they were".into(),
            ));
        }
        let request = Request::CreateFile {
            name: self.name.clone(),
            path: path.to_string(),
            mode,
            make_parents,
        };
        let (_, conn) = self.link.start(&request).await?;
        Ok(Box::new(FarUpload {
            link: self.link.clone(),
            conn,
        }))
    }
}

/// A file being written on another host.
struct FarUpload {
    link: Arc<Link>,
    conn: Conn,
}

impl FarUpload {
    /// Why the host stopped taking the file: the error it sent, else the
    /// connection's own.
    async fn stopped(&mut self, e: std::io::Error) -> Error {
        match read_line::<Head>(&mut self.conn).await {
            Ok(Head::Err(refusal)) => refusal.into(),
            _ => self.link.unreachable(e),
        }
    }

    async fn send(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.conn.write_u32(chunk.len() as u32).await?;
        self.conn.write_all(chunk).await
    }
}

#[async_trait]
impl UploadElsewhere for FarUpload {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(MAX_CHUNK) {
            if let Err(e) = self.send(chunk).await {
                return Err(self.stopped(e).await);
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<Entry> {
        use tokio::io::AsyncWriteExt;
        let ended = match self.send(&[]).await {
            Ok(()) => self.conn.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = ended {
            return Err(self.stopped(e).await);
        }
        match read_line::<Head>(&mut self.conn).await {
            Ok(Head::Ok(entry)) => self.link.parse(entry),
            Ok(Head::Err(e)) => Err(e.into()),
            Err(e) => Err(self.link.unreachable(e)),
        }
    }
}
