//! The host's side: each admitted connection reads requests and answers
//! them from the in-process host (see the protocol in [`super`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::{
    read_line, write_line, Built, Head, LineError, MgmtAccepted, Request, SessionHead, MAX_CHUNK,
    MGMT_TAKE_WITHIN,
};
use crate::call::{answer, files_of, ImageRef};
use crate::error::WireError;
use crate::fs::Upload;
use crate::{Error, MgmtConnection, Result, SpriteName, Stream, Verbs};

/// How long a handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a connection may wait between requests; servers drop idle
/// connections well before this.
const IDLE: Duration = Duration::from_secs(600);

/// A host daemon's state beside its host.
struct Daemon {
    host: Arc<dyn Verbs>,
    /// Management connections accepted and not yet taken, by ticket.
    accepted: Mutex<HashMap<u64, (Instant, MgmtConnection)>>,
}

/// The most connections in their handshake at once: peers not yet known
/// to be of the cluster; more are closed at once.
const MAX_HANDSHAKES: usize = 64;

/// Answers every admitted connection on `listener` from `host` until
/// `stop` completes (then every connection ends) or the listener fails.
pub async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    host: Arc<dyn Verbs>,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let daemon = Arc::new(Daemon {
        host,
        accepted: Mutex::new(HashMap::new()),
    });
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let mut connections = tokio::task::JoinSet::new();
    let mut sweep = tokio::time::interval(MGMT_TAKE_WITHIN);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
            _ = sweep.tick() => {
                daemon.sweep_mgmt();
                continue;
            }
            // Reaped as they end, so the set holds only the living.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of descriptors, say: the next accept may do.
            Err(e) if is_transient(&e) => {
                warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            warn!("{peer} refused: {MAX_HANDSHAKES} handshakes already under way");
            continue;
        };
        if let Err(e) = super::tune(&tcp) {
            debug!("{peer}: {e}");
        }
        let (acceptor, daemon) = (acceptor.clone(), daemon.clone());
        connections.spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => connection(BufReader::new(tls), daemon).await,
                Ok(Err(e)) => warn!("{peer} refused: {e}"),
                Err(_) => warn!("{peer} refused: no handshake within {HANDSHAKE:?}"),
            }
        });
    }
    connections.shutdown().await;
    Ok(())
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED)
    )
}

/// A connection the handshake admitted: requests until it closes, idles
/// too long or turns into a stream.
async fn connection<C>(mut conn: C, daemon: Arc<Daemon>)
where
    C: tokio::io::AsyncBufRead + AsyncWrite + Send + Unpin + 'static,
{
    loop {
        let request = match tokio::time::timeout(IDLE, read_line::<Request>(&mut conn)).await {
            Err(_) | Ok(Err(LineError::Closed)) => return,
            Ok(Err(e)) => {
                debug!("a request could not be read: {e}");
                let refusal = WireError::Invalid {
                    message: format!("unreadable request: {e}"),
                };
                let _ = write_line(&mut conn, &Head::Err(refusal)).await;
                return;
            }
            Ok(Ok(request)) => request,
        };
        if let Request::Call { call } = request {
            let head = answer_call(&*daemon.host, call).await;
            if write_line(&mut conn, &head).await.is_err() {
                return;
            }
            continue;
        }
        match stream(&mut conn, &daemon, request).await {
            // Ended as the protocol ends it, so the server tells an end
            // from a break; then what the server still sends is read and
            // dropped until it closes too, as a close with unread bytes
            // is a reset, which can destroy the stream's last bytes on
            // their way.
            Ok(()) => {
                let _ = conn.shutdown().await;
                let mut dropped = tokio::io::sink();
                let drain = tokio::io::copy(&mut conn, &mut dropped);
                let _ = tokio::time::timeout(LINGER, drain).await;
            }
            Err(e) => debug!("a stream ended: {e}"),
        }
        return;
    }
}

async fn answer_call(host: &dyn Verbs, call: crate::call::Call) -> Head {
    use crate::call::Call;
    // Which sprites the host keeps is told in its log as it changes.
    let told = match &call {
        Call::Create { name, .. } => Some((name.clone(), "created")),
        Call::ForkNamed { name, .. } => Some((name.clone(), "forked")),
        Call::Destroy { name } => Some((name.clone(), "destroyed")),
        _ => None,
    };
    match answer(host, call).await {
        Ok(value) => {
            if let Some((sprite, what)) = told {
                tracing::info!(%sprite, "sprite {what}");
            }
            Head::Ok(value)
        }
        Err(e) => Head::Err(e),
    }
}

/// Answers a request that streams, then carries its stream.
async fn stream<C>(conn: &mut C, daemon: &Daemon, request: Request) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Send + Unpin,
{
    let host = &*daemon.host;
    match request {
        Request::Call { call } => write_line(conn, &answer_call(host, call).await).await,
        Request::Exec { name, spec } => {
            let session = host.exec(&name, spec).await;
            frames(conn, session).await
        }
        Request::Attach {
            name,
            session,
            replay,
        } => {
            let session = host.attach(&name, session, replay).await;
            frames(conn, session).await
        }
        Request::Connect {
            name,
            host: to,
            port,
        } => {
            let Some(mut inner) = head(conn, host.connect(&name, &to, port).await).await? else {
                return Ok(());
            };
            tokio::io::copy_bidirectional(conn, &mut inner).await?;
            Ok(())
        }
        Request::Service {
            name,
            service,
            change,
            follow_ms,
        } => {
            let events = host.service(&name, &service, change, follow_ms).await;
            let Some(events) = head(conn, events).await? else {
                return Ok(());
            };
            while_there(conn, |to| down(events.into_inner(), to)).await
        }
        Request::ServiceLogs {
            name,
            service,
            lines,
            follow,
        } => {
            let events = host.service_logs(&name, &service, lines, follow).await;
            let Some(events) = head(conn, events).await? else {
                return Ok(());
            };
            while_there(conn, |to| down(events.into_inner(), to)).await
        }
        Request::Watch {
            name,
            paths,
            recursive,
        } => {
            let watch = host.watch(&name, &paths, recursive).await;
            let Some(mut watch) = head(conn, watch).await? else {
                return Ok(());
            };
            while_there(conn, |mut to| async move {
                while let Some(event) = watch.next().await {
                    let line = match event {
                        Ok(event) => Head::Ok(to_value(&event)?),
                        Err(e) => Head::Err(WireError::from(&e)),
                    };
                    write_line(&mut to, &line).await?;
                }
                Ok(())
            })
            .await
        }
        Request::ReadFile {
            name,
            checkpoint,
            path,
        } => {
            let opened = match files_of(host, &name, checkpoint).await {
                Ok(files) => files.open_read(&path).await,
                Err(e) => Err(e),
            };
            let Some((file, _)) = head(conn, opened).await? else {
                return Ok(());
            };
            down(file, conn).await
        }
        Request::CreateFile {
            name,
            path,
            mode,
            make_parents,
        } => upload(conn, host, &name, &path, (mode, make_parents)).await,
        Request::PrepareImage { name, recipe } => prepare(conn, host, &name, &recipe).await,
        Request::ImportImage { image, max_bytes } => import(conn, host, &image, max_bytes).await,
        Request::ListenMgmt { name } => daemon.listen_mgmt(conn, &name).await,
        Request::MgmtTake { ticket } => {
            let taken = daemon.take_mgmt(ticket);
            let Some(mut inner) = head(conn, taken).await? else {
                return Ok(());
            };
            tokio::io::copy_bidirectional(conn, &mut inner).await?;
            Ok(())
        }
        Request::Events => {
            let rx = host.subscribe();
            head(conn, Ok(())).await?;
            broadcast_down(rx, conn).await
        }
        Request::ReplicaChanges => {
            let rx = host.replica_changes();
            head(conn, Ok(())).await?;
            broadcast_down(rx, conn).await
        }
    }
}

impl Daemon {
    /// Tells of each connection sprite `name`'s management socket accepts,
    /// until the server goes or another listener takes the socket.
    async fn listen_mgmt<C>(&self, conn: &mut C, name: &SpriteName) -> std::io::Result<()>
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        use tokio::io::AsyncReadExt;
        let Some(mut listener) = head(conn, self.host.listen_mgmt(name).await).await? else {
            return Ok(());
        };
        let mut probe = [0u8; 1];
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = conn.read(&mut probe) => return Ok(()),
            };
            let ticket = match accepted {
                Ok(inner) => self.keep_mgmt(inner),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            };
            write_line(conn, &MgmtAccepted { ticket }).await?;
        }
    }

    /// Closes the accepted management connections nobody took in time.
    fn sweep_mgmt(&self) {
        let mut accepted = self.accepted.lock().expect("accepted connections");
        accepted.retain(|_, (since, _)| since.elapsed() < MGMT_TAKE_WITHIN);
    }

    fn keep_mgmt(&self, inner: MgmtConnection) -> u64 {
        self.sweep_mgmt();
        let mut accepted = self.accepted.lock().expect("accepted connections");
        let ticket = rand::random();
        accepted.insert(ticket, (Instant::now(), inner));
        ticket
    }

    fn take_mgmt(&self, ticket: u64) -> Result<MgmtConnection> {
        let mut accepted = self.accepted.lock().expect("accepted connections");
        match accepted.remove(&ticket) {
            Some((since, inner)) if since.elapsed() < MGMT_TAKE_WITHIN => Ok(inner),
            _ => Err(Error::Invalid(format!(
                "no management connection waits under ticket {ticket}"
            ))),
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> std::io::Result<serde_json::Value> {
    serde_json::to_value(value).map_err(std::io::Error::other)
}

/// Sends the head of `result`: the value it holds (as JSON when it is
/// one, else null) and gives it back, or the error.
async fn head<C, T>(conn: &mut C, result: Result<T>) -> std::io::Result<Option<T>>
where
    C: AsyncWrite + Unpin,
    T: HeadValue,
{
    match result {
        Ok(value) => {
            write_line(conn, &Head::Ok(value.head()?)).await?;
            Ok(Some(value))
        }
        Err(e) => {
            write_line(conn, &Head::Err(WireError::from(&e))).await?;
            Ok(None)
        }
    }
}

/// What the head of a stream says of it.
trait HeadValue {
    fn head(&self) -> std::io::Result<serde_json::Value>;
}

impl HeadValue for (crate::fs::Reader, u64) {
    fn head(&self) -> std::io::Result<serde_json::Value> {
        to_value(&self.1)
    }
}

impl HeadValue for Stream {
    fn head(&self) -> std::io::Result<serde_json::Value> {
        to_value(&SessionHead {
            session: self.session,
            pid: self.pid,
        })
    }
}

macro_rules! null_head {
    ($($t:ty),*) => {$(
        impl HeadValue for $t {
            fn head(&self) -> std::io::Result<serde_json::Value> {
                Ok(serde_json::Value::Null)
            }
        }
    )*};
}
null_head!(
    (),
    crate::Connection,
    crate::ServiceEvents,
    crate::FsWatch,
    crate::MgmtListener,
    MgmtConnection,
    Upload
);

/// Writes file `path` of sprite `name` from the chunks the server sends,
/// until the empty one; then its entry. The server going before that
/// leaves the old file.
async fn upload<C>(
    conn: &mut C,
    host: &dyn Verbs,
    name: &SpriteName,
    path: &str,
    (mode, make_parents): (Option<u32>, bool),
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let made = match host.sprite_files(name).await {
        Ok(files) => files.create(path, mode, make_parents).await,
        Err(e) => Err(e),
    };
    let Some(mut file) = head(conn, made).await? else {
        return Ok(());
    };
    loop {
        let chunk = match next_chunk(conn).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let refusal = WireError::Invalid {
                    message: e.to_string(),
                };
                return write_line(conn, &Head::Err(refusal)).await;
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = file.write(&chunk).await {
            write_line(conn, &Head::Err(WireError::from(&e))).await?;
            return linger(conn).await;
        }
    }
    let line = match file.finish().await {
        Ok(entry) => Head::Ok(to_value(&entry)?),
        Err(e) => Head::Err(WireError::from(&e)),
    };
    write_line(conn, &line).await
}

type Progress = Box<dyn for<'line> FnMut(&'line str) + Send + 'static>;

/// A progress callback, and the lines it hears.
fn progress_lines() -> (Progress, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = move |line: &str| {
        let _ = tx.send(line.to_string());
    };
    (Box::new(progress), rx)
}

/// Each progress line to the server, until the callback is dropped (the
/// build or import is over).
async fn forward(
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    mut to: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    while let Some(line) = lines.recv().await {
        write_line(&mut to, &Built::Progress(line)).await?;
    }
    Ok(())
}

fn built_line(made: Result<crate::image::Image>) -> Built {
    match made {
        Ok(image) => Built::Done(ImageRef {
            name: image.name,
            hash: image.hash,
        }),
        Err(e) => Built::Err(WireError::from(&e)),
    }
}

/// Builds image `name` from `recipe`, telling the server the progress,
/// then the image or the error.
async fn prepare<C>(
    conn: &mut C,
    host: &dyn Verbs,
    name: &str,
    recipe: &crate::image::Recipe,
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Send + Unpin,
{
    head(conn, Ok(())).await?;
    let (progress, lines) = progress_lines();
    let built = host.prepare_image(name, recipe, progress);
    let (made, forwarded) = tokio::join!(built, forward(lines, &mut *conn));
    forwarded?;
    write_line(conn, &built_line(made)).await
}

/// Imports image `image` from the archive the server sends in chunks,
/// telling it the progress, then the image or the error.
async fn import<C>(
    conn: &mut C,
    host: &dyn Verbs,
    image: &str,
    max_bytes: u64,
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Send + Unpin,
{
    head(conn, Ok(())).await?;
    let (mut from_client, mut to_client) = tokio::io::split(conn);
    let (chunks, archive) = tokio::sync::mpsc::channel(8);
    let archive = Archive {
        chunks: archive,
        chunk: Vec::new(),
        at: 0,
    };
    let (progress, lines) = progress_lines();
    let imported = host.import_image(image, Box::new(archive), max_bytes, progress);
    // The archive's end (or the server's going) is the end of the feed;
    // the import then finishes with what it has.
    let all_read = std::sync::atomic::AtomicBool::new(false);
    let feed = async {
        match feed(&mut from_client, chunks).await {
            Ok(read) => all_read.store(read, std::sync::atomic::Ordering::Relaxed),
            Err(e) => debug!("an archive stopped arriving: {e}"),
        }
        std::future::pending::<std::convert::Infallible>().await
    };
    let work = async { tokio::join!(imported, forward(lines, &mut to_client)) };
    let (made, forwarded) = tokio::select! {
        done = work => done,
        never = feed => match never {},
    };
    forwarded?;
    write_line(&mut to_client, &built_line(made)).await?;
    if all_read.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    linger(&mut from_client).await
}

/// Reads chunks from `from` into `to` until the empty one (then `true`)
/// or until the import stops taking them; a broken stream is sent on as
/// the archive's error.
async fn feed(
    mut from: impl AsyncRead + Unpin,
    to: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> std::io::Result<bool> {
    loop {
        let chunk = match next_chunk(&mut from).await {
            Ok(None) => return Ok(true),
            Ok(Some(chunk)) => chunk,
            Err(e) => {
                let told = format!("the archive stopped arriving: {e}");
                let _ = to.send(Err(std::io::Error::new(e.kind(), told))).await;
                return Err(e);
            }
        };
        if to.send(Ok(chunk)).await.is_err() {
            // The import is over: the rest is not needed.
            return Ok(false);
        }
    }
}

/// The next chunk the server sends; `None` for the empty one, its end.
async fn next_chunk(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let len = from.read_u32().await? as usize;
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_CHUNK {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a chunk of {len} bytes, over {MAX_CHUNK}"),
        ));
    }
    let mut chunk = vec![0; len];
    from.read_exact(&mut chunk).await?;
    Ok(Some(chunk))
}

/// How long a host reads on, discarding, after refusing what a server
/// was still sending.
const LINGER: Duration = Duration::from_secs(30);

/// Reads and discards the chunks the server goes on sending after a
/// refusal it has not read yet, until their end (or [`LINGER`]): closed
/// with them unread, the connection would be reset, and a reset can
/// destroy the refusal on its way.
async fn linger(from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<()> {
    let drain = async {
        while next_chunk(&mut *from).await?.is_some() {}
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(LINGER, drain).await {
        Ok(drained) => drained,
        Err(_) => Ok(()),
    }
}

/// The archive as the import reads it, on the blocking pool, from the
/// chunks the server sends.
struct Archive {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for Archive {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A session's frames: the client's up into init, init's down to the
/// client, until init's side ends (the exit was sent) or the client goes.
async fn frames<C>(conn: &mut C, session: Result<Stream>) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Send + Unpin,
{
    let Some(session) = head(conn, session).await? else {
        return Ok(());
    };
    let (mut to_init, from_init) = session.into_parts();
    let (mut from_client, to_client) = tokio::io::split(conn);
    // The client's frames up to init, until the client goes (it never
    // closes only its half: the end of stdin is a frame). Init gone first,
    // what it said last still goes down, and what the client still sends
    // is read and dropped: left unread, it would turn the connection's
    // close into a reset that can destroy that last output on its way.
    let up = async {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 16 << 10];
        let mut init_there = true;
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if init_there {
                let sent = async {
                    to_init.write_all(&buf[..n]).await?;
                    to_init.flush().await
                };
                init_there = sent.await.is_ok();
            }
        }
    };
    // Whichever ends first ends the stream: init's side once the exit is
    // sent, or the client's.
    tokio::select! {
        done = down(from_init, to_client) => done,
        () = up => Ok(()),
    }
}

/// Everything `from` says, to `to`.
async fn down(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    tokio::io::copy(&mut from, &mut to).await?;
    to.flush().await
}

/// Each value of a broadcast as a line, until the client goes; a client
/// too slow to keep up is told by the end of its stream, and reconnects
/// knowing it missed some.
async fn broadcast_down<C, T>(
    mut rx: tokio::sync::broadcast::Receiver<T>,
    conn: &mut C,
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    T: Serialize + Clone,
{
    use tokio::sync::broadcast::error::RecvError;
    while_there(conn, |mut to| async move {
        loop {
            match rx.recv().await {
                Ok(value) => write_line(&mut to, &value).await?,
                Err(RecvError::Lagged(n)) => {
                    return Err(std::io::Error::other(format!(
                        "the client missed {n} events"
                    )))
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    })
    .await
}

/// Runs `carry` on the writing half of `conn` until it ends or the client
/// goes (closes its side: it sends nothing on a stream that goes down).
async fn while_there<'c, C, F, Fut>(conn: &'c mut C, carry: F) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(tokio::io::WriteHalf<&'c mut C>) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    use tokio::io::AsyncReadExt;
    let (mut from_client, to_client) = tokio::io::split(conn);
    let mut probe = [0u8; 1];
    tokio::select! {
        done = carry(to_client) => done,
        _ = from_client.read(&mut probe) => Ok(()),
    }
}
