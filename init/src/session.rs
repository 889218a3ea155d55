//! Sessions: processes started for the host, their output ring and clients.
//!
//! A session's output is appended to a bounded ring and handed to every
//! attached client. Non-TTY sessions apply backpressure (a slow client slows
//! the process, nothing is dropped); TTY sessions drop a client that stops
//! reading rather than stall the terminal for everyone else. A client that
//! attaches takes a copy of the ring and subscribes under one lock, so it
//! sees every byte exactly once.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sprite_init::{
    read_frame, write_frame, ErrorKind, ExecSpec, Frame, Reply, SessionInfo, Tag, WinSize,
};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::io::Fd;

/// Output kept per session for replay on attach.
const RING_BYTES: usize = 256 * 1024;
/// How long an ended session stays listed so a late client can collect it.
const KEEP_ENDED: Duration = Duration::from_secs(300);
/// After the process exits, how long to wait for its pipes to drain when a
/// background child still holds them open.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Default)]
pub struct Sessions {
    next_id: AtomicU64,
    inner: Mutex<SessionsInner>,
}

#[derive(Default)]
struct SessionsInner {
    by_id: HashMap<u64, Arc<Session>>,
    /// Exit notifiers of session leaders, keyed by pid. Filled under the same
    /// lock as the spawn, so the reaper never sees a pid it cannot route.
    waiting: HashMap<i32, oneshot::Sender<i32>>,
}

pub struct Session {
    id: u64,
    pid: i32,
    argv: Vec<String>,
    tty: bool,
    detachable: bool,
    /// How long it may run once its last client has gone.
    linger: Option<std::time::Duration>,
    started_at: u64,
    last_output_at: AtomicU64,
    stdin: Mutex<Option<Arc<Fd>>>,
    out: Mutex<Output>,
}

pub struct Subscription {
    client: u64,
    backlog: Vec<Frame>,
    ended: Option<i32>,
    rx: mpsc::Receiver<Frame>,
}

#[derive(Default)]
struct Output {
    ring: VecDeque<(Tag, Vec<u8>)>,
    ring_bytes: usize,
    next_client: u64,
    clients: Vec<(u64, mpsc::Sender<Frame>)>,
    exit: Option<i32>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn spawn_error(message: String) -> Reply {
    Reply::Error {
        kind: ErrorKind::Spawn,
        message,
    }
}

impl Sessions {
    pub fn exited(&self, pid: i32, code: i32) {
        let waiter = self.inner.lock().unwrap().waiting.remove(&pid);
        if let Some(tx) = waiter {
            let _ = tx.send(code);
        }
    }

    /// Spawns `cmd` so that the reaper hands its exit status to the
    /// returned receiver: for processes that are not sessions (services).
    pub fn spawn_watched(
        &self,
        cmd: &mut Command,
    ) -> std::io::Result<(i32, oneshot::Receiver<i32>)> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().unwrap();
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // The reaper owns the exit status; dropping `child` neither waits nor kills.
        drop(child);
        inner.waiting.insert(pid, tx);
        Ok((pid, rx))
    }

    pub fn get(&self, id: u64) -> Option<Arc<Session>> {
        self.inner.lock().unwrap().by_id.get(&id).cloned()
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        let inner = self.inner.lock().unwrap();
        let mut list: Vec<SessionInfo> = inner.by_id.values().map(|s| s.info()).collect();
        list.sort_by_key(|s| s.id);
        list
    }

    pub fn kill(&self, id: u64, signal: i32) -> Reply {
        let Some(session) = self.get(id) else {
            return Reply::Error {
                kind: ErrorKind::NotFound,
                message: format!("no session {id}"),
            };
        };
        match Signal::try_from(signal) {
            Ok(sig) => {
                session.signal(sig);
                Reply::Done
            }
            Err(_) => Reply::Error {
                kind: ErrorKind::Invalid,
                message: format!("{signal} is not a signal"),
            },
        }
    }

    /// Starts the process of `spec` as a new session.
    /// The creator is subscribed before any output is read, so it sees
    /// every byte even of a command that exits at once.
    pub fn spawn(self: &Arc<Self>, spec: ExecSpec) -> Result<(Arc<Session>, Subscription), Reply> {
        let mut cmd = command(&spec)?;
        let program = spec.argv[0].clone();
        let (stdin_fd, outputs) = wire_streams(&mut cmd, spec.tty)?;

        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (exit_tx, exit_rx) = oneshot::channel();
        let session = {
            let mut inner = self.inner.lock().unwrap();
            let child = cmd
                .spawn()
                .map_err(|e| spawn_error(format!("cannot run {program}: {e}")))?;
            let pid = child.id() as i32;
            // The reaper owns the exit status; dropping `child` neither waits nor kills.
            drop(child);
            inner.waiting.insert(pid, exit_tx);
            let session = Arc::new(Session {
                id,
                pid,
                argv: spec.argv.clone(),
                tty: spec.tty.is_some(),
                detachable: spec.detachable || spec.tty.is_some(),
                linger: spec.linger_ms.map(std::time::Duration::from_millis),
                started_at: now(),
                last_output_at: AtomicU64::new(now()),
                stdin: Mutex::new(Some(stdin_fd)),
                out: Mutex::new(Output::default()),
            });
            inner.by_id.insert(id, session.clone());
            session
        };
        drop(cmd);
        let creator = session.subscribe(false);

        let pumps: Vec<_> = outputs
            .into_iter()
            .map(|(tag, fd)| tokio::spawn(pump(session.clone(), tag, fd)))
            .collect();
        let sessions = self.clone();
        let s = session.clone();
        tokio::spawn(async move {
            let code = exit_rx.await.unwrap_or(255);
            for p in pumps {
                let abort = p.abort_handle();
                if tokio::time::timeout(DRAIN_GRACE, p).await.is_err() {
                    abort.abort();
                }
            }
            s.finish(code).await;
            tokio::time::sleep(KEEP_ENDED).await;
            sessions.inner.lock().unwrap().by_id.remove(&s.id);
        });
        Ok((session, creator))
    }
}

/// What every command and service starts from: the defaults, then the
/// sprite's own environment ([`sprite_init::ENVIRONMENT_FILE`]). A file that
/// is missing or unreadable adds nothing.
pub fn base_environment() -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = [
        ("PATH", DEFAULT_PATH),
        ("HOME", "/root"),
        ("USER", "root"),
        ("LANG", "C.UTF-8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let own = std::fs::read(sprite_init::ENVIRONMENT_FILE)
        .ok()
        .and_then(|b| serde_json::from_slice::<std::collections::BTreeMap<String, String>>(&b).ok())
        .unwrap_or_default();
    if sprite_init::command_is_passable(std::iter::empty(), own.iter()) {
        env.extend(own);
    }
    env.into_iter().collect()
}

/// The command `spec` asks for, with the sprite's default environment and
/// working directory; its streams are not wired yet.
fn command(spec: &ExecSpec) -> Result<Command, Reply> {
    let Some(program) = spec.argv.first() else {
        return Err(Reply::Error {
            kind: ErrorKind::Invalid,
            message: "empty command".into(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..]);
    cmd.env_clear();
    cmd.envs(base_environment());
    if spec.tty.is_some() {
        cmd.env("TERM", "xterm-256color");
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.current_dir(match &spec.dir {
        Some(dir) => dir.as_str(),
        None => default_dir(),
    });
    Ok(cmd)
}

/// A session's input, and its outputs to pump with the tag of each.
type Streams = (Arc<Fd>, Vec<(Tag, Fd)>);

/// Gives `cmd` a new session and its streams: a terminal of `tty`'s size
/// (which is its controlling terminal), or three pipes. Answers the
/// session's input and the outputs to pump.
fn wire_streams(cmd: &mut Command, tty: Option<WinSize>) -> Result<Streams, Reply> {
    let fd = |o: OwnedFd| Fd::new(o).map_err(|e| spawn_error(e.to_string()));
    if let Some(size) = tty {
        let ws = nix::pty::Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None)
            .map_err(|e| spawn_error(format!("cannot open a terminal: {e}")))?;
        let slave = pty.slave;
        cmd.stdin(Stdio::from(dup(&slave)?))
            .stdout(Stdio::from(dup(&slave)?))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The master is both the session's input and its only output; the
        // pump reads from its own descriptor of it.
        let master_out = dup(&pty.master)?;
        return Ok((
            Arc::new(fd(pty.master)?),
            vec![(Tag::Stdout, fd(master_out)?)],
        ));
    }
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    cmd.stdin(Stdio::from(in_r))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    Ok((
        Arc::new(fd(in_w)?),
        vec![(Tag::Stdout, fd(out_r)?), (Tag::Stderr, fd(err_r)?)],
    ))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, Reply> {
    fd.try_clone()
        .map_err(|e| spawn_error(format!("cannot duplicate a descriptor: {e}")))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Reply> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| spawn_error(format!("cannot create a pipe: {e}")))
}

async fn pump(session: Arc<Session>, tag: Tag, fd: Fd) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match fd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => session.publish(tag, &buf[..n]).await,
        }
    }
}

impl Session {
    fn info(&self) -> SessionInfo {
        let out = self.out.lock().unwrap();
        SessionInfo {
            id: self.id,
            pid: self.pid as u32,
            argv: self.argv.clone(),
            tty: self.tty,
            started_at: self.started_at,
            clients: out.clients.len(),
            exit_code: out.exit,
            last_output_at: self.last_output_at.load(Ordering::Relaxed),
        }
    }

    fn signal(&self, sig: Signal) {
        // Leaders called setsid, so their pid is also their process group.
        let _ = kill(Pid::from_raw(-self.pid), sig);
    }

    async fn publish(&self, tag: Tag, data: &[u8]) {
        self.last_output_at.store(now(), Ordering::Relaxed);
        let clients = {
            let mut out = self.out.lock().unwrap();
            out.ring.push_back((tag, data.to_vec()));
            out.ring_bytes += data.len();
            while out.ring_bytes > RING_BYTES {
                match out.ring.pop_front() {
                    Some((_, old)) => out.ring_bytes -= old.len(),
                    None => break,
                }
            }
            out.clients.clone()
        };
        for (client, tx) in clients {
            let frame = Frame::new(tag, data.to_vec());
            let delivered = if self.tty {
                tx.try_send(frame).is_ok()
            } else {
                tx.send(frame).await.is_ok()
            };
            if !delivered {
                self.out
                    .lock()
                    .unwrap()
                    .clients
                    .retain(|(c, _)| *c != client);
            }
        }
    }

    async fn finish(&self, code: i32) {
        let clients = {
            let mut out = self.out.lock().unwrap();
            out.exit = Some(code);
            std::mem::take(&mut out.clients)
        };
        for (_, tx) in clients {
            let _ = tx.send(Frame::exit(code)).await;
        }
        self.stdin.lock().unwrap().take();
    }

    /// Subscribes a client: its id, the replay, the exit code if the
    /// session has ended, and its receiver of live output.
    pub fn subscribe(&self, replay: bool) -> Subscription {
        let (tx, rx) = mpsc::channel(256);
        let mut out = self.out.lock().unwrap();
        let frames = if replay {
            out.ring
                .iter()
                .map(|(tag, data)| Frame::new(*tag, data.clone()))
                .collect()
        } else {
            Vec::new()
        };
        out.next_client += 1;
        let id = out.next_client;
        if out.exit.is_none() {
            out.clients.push((id, tx));
        }
        Subscription {
            client: id,
            backlog: frames,
            ended: out.exit,
            rx,
        }
    }

    /// Removes a client: how many are left, and the number the next to
    /// come will take (read under the same lock).
    fn unsubscribe(&self, client: u64) -> (usize, u64) {
        let mut out = self.out.lock().unwrap();
        out.clients.retain(|(c, _)| *c != client);
        (out.clients.len(), out.next_client)
    }

    async fn input(&self, frame: Frame) {
        match frame.tag {
            Tag::Stdin => {
                let fd = self.stdin.lock().unwrap().clone();
                if let Some(fd) = fd {
                    let _ = fd.write_all(&frame.payload).await;
                }
            }
            Tag::StdinEof if !self.tty => {
                self.stdin.lock().unwrap().take();
            }
            Tag::Resize => {
                let fd = self.stdin.lock().unwrap().clone();
                if let (true, Some(fd), Ok((rows, cols))) = (self.tty, fd, frame.as_size()) {
                    let ws = libc::winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
                    unsafe { libc::ioctl(fd.raw(), libc::TIOCSWINSZ, &ws) };
                }
            }
            Tag::Signal => {
                if let Some(sig) = frame.as_i32().ok().and_then(|s| Signal::try_from(s).ok()) {
                    self.signal(sig);
                }
            }
            _ => {}
        }
    }
}

/// Serves one client of a session until the session ends or the client goes.
pub async fn stream(session: Arc<Session>, stream: UnixStream, sub: Subscription) {
    let (mut rd, mut wr) = stream.into_split();
    let Subscription {
        client,
        backlog,
        ended,
        mut rx,
    } = sub;
    let started = Reply::Started {
        session: session.id,
        pid: session.pid as u32,
    };
    let writer = async {
        write_frame(&mut wr, &Frame::control(&started)).await?;
        for f in &backlog {
            write_frame(&mut wr, f).await?;
        }
        if let Some(code) = ended {
            return write_frame(&mut wr, &Frame::exit(code)).await;
        }
        while let Some(f) = rx.recv().await {
            write_frame(&mut wr, &f).await?;
        }
        Ok::<(), sprite_init::FrameError>(())
    };
    let reader = async {
        while let Ok(Some(frame)) = read_frame(&mut rd).await {
            session.input(frame).await;
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    let (left, last) = session.unsubscribe(client);
    let running = session.out.lock().unwrap().exit.is_none();
    if left > 0 || !running {
        return;
    }
    match session.linger {
        Some(linger) => {
            // Ended only if no client came (or came and went) meanwhile:
            // each arrival takes a new client number.
            tokio::spawn(async move {
                tokio::time::sleep(linger).await;
                let out = session.out.lock().unwrap();
                let alone = out.next_client == last && out.clients.is_empty();
                let running = out.exit.is_none();
                drop(out);
                if alone && running {
                    session.signal(Signal::SIGKILL);
                }
            });
        }
        None if !session.detachable => session.signal(Signal::SIGKILL),
        None => {}
    }
}

/// Where commands start unless told: root's home, or `/` in a root file
/// system (an imported one) that has none.
pub fn default_dir() -> &'static str {
    if std::path::Path::new("/root").is_dir() {
        "/root"
    } else {
        "/"
    }
}
