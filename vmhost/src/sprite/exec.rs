//! exec and sessions: processes inside a running sprite, through its init.

use sprite_init::{ExecSpec, SessionInfo};
use sprites_wire::SpriteName;

use super::{wrong_phase, Host, Phase};
use crate::agent::{ExecOutput, Stream};
use crate::error::{Error, Result};

impl Host {
    /// The init of the running sprite, to ask for `op`; while the sprite
    /// restarts, once it has (its old init is going away); while a
    /// checkpoint holds it frozen, once it is thawed.
    async fn running_agent(
        &self,
        name: &SpriteName,
        op: &'static str,
    ) -> Result<crate::agent::Agent> {
        if self.restarting.lock().unwrap().contains(name.as_str()) {
            drop(self.lock(name).await);
        }
        if let Err(e) = self.is_running(name, op) {
            if !self.frozen_awake(name)? {
                return Err(e);
            }
            drop(self.lock(name).await);
            self.is_running(name, op)?;
        }
        Ok(self.agent(name))
    }

    /// Whether the sprite is frozen while it is meant to run: a checkpoint
    /// holds it for a few milliseconds, under its lock, and thaws it.
    fn frozen_awake(&self, name: &SpriteName) -> Result<bool> {
        let (_, rec) = self.load(name)?;
        Ok(rec.desired == super::Desired::Running && self.observe(name)? == Phase::SleepingWarm)
    }

    /// Refuses `op` unless the sprite runs.
    fn is_running(&self, name: &SpriteName, op: &'static str) -> Result<()> {
        self.load(name)?;
        let phase = self.observe(name)?;
        if !phase.can_exec() {
            return Err(wrong_phase(op, phase));
        }
        Ok(())
    }

    /// Starts a process; its streams are returned. Only when Running.
    pub async fn exec(&self, name: &SpriteName, spec: ExecSpec) -> Result<Stream> {
        if spec.argv.is_empty() {
            return Err(Error::Invalid("empty command".into()));
        }
        let env = spec.env.iter().map(|(k, v)| (k, v));
        if !sprite_init::command_is_passable(spec.argv.iter().chain(&spec.dir), env) {
            return Err(Error::Invalid("arguments, directory and environment cannot contain NUL, and variable names cannot contain '='".into()));
        }
        let agent = self.running_agent(name, "exec").await?;
        self.link_made(name).await;
        agent
            .exec(spec)
            .await
            .map_err(|e| self.named_limit(name, e))
    }

    /// `e`, a command that could not start or an init that does not
    /// answer, as the limit the sprite has used up when it has: its own
    /// processes' doing, which a restart ends.
    pub(crate) fn named_limit(&self, name: &SpriteName, e: Error) -> Error {
        use crate::error::Exhausted;
        let limits = self.load(name).map(|(_, rec)| rec.limits);
        match (&e, limits) {
            // A fork refused for want of processes (EAGAIN: the pids
            // limit) or of memory (ENOMEM), as init saw it.
            (Error::Spawn(_, why), Ok(l)) if why.contains("(os error 11)") => {
                Error::Exhausted(Exhausted::Processes { max: l.pids.into() })
            }
            (Error::Spawn(_, why), Ok(l)) if why.contains("(os error 12)") => {
                Error::Exhausted(Exhausted::Memory {
                    max: l.memory_bytes,
                })
            }
            // An init that does not answer, when the sprite is at a limit.
            (Error::Agent(_), _) => match self.runtime.exhausted(&self.sandbox_id(name)) {
                Ok(Some(limit)) => Error::Exhausted(limit),
                _ => e,
            },
            _ => e,
        }
    }

    /// The TCP ports the sprite listens on, with their processes (none
    /// while it sleeps cold). A few tens of microseconds once the
    /// processes of its ports are known.
    pub async fn ports(&self, name: &SpriteName) -> Result<Vec<sprites_wire::ports::Port>> {
        self.load(name)?;
        let id = self.sandbox_id(name);
        let Some(pid) = self.runtime.init_pid(&id)? else {
            return Ok(Vec::new());
        };
        let mut owners = self
            .socket_owners
            .lock()
            .unwrap()
            .remove(&id)
            .unwrap_or_default();
        let (read, owners) = tokio::task::spawn_blocking(move || {
            let read = crate::ports::listening(pid, &mut owners);
            (read, owners)
        })
        .await
        .map_err(|e| Error::Runtime(format!("reading the sprite's ports failed: {e}")))?;
        self.socket_owners.lock().unwrap().insert(id, owners);
        match read {
            Ok(ports) => Ok(ports),
            // It stopped meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("cannot read the sprite's ports", e)),
        }
    }

    /// A TCP connection from inside the running sprite to `host:port`
    /// (`localhost` for its own services), as a socket carrying its bytes.
    ///
    /// To the sprite's own loopback (`localhost` or an address literal),
    /// the socket is made in the sprite's network namespace by a thread of
    /// ours that enters it for that alone, so the bytes go straight to the
    /// app; other names are resolved and connected by sprite-init, whose
    /// socket carries them.
    pub async fn connect(&self, name: &SpriteName, host: &str, port: u16) -> Result<Connection> {
        if host.is_empty() || host.len() > 253 || host.contains(['\0', '/']) || port == 0 {
            return Err(Error::Invalid(format!("cannot connect to {host:?}:{port}")));
        }
        let agent = self.running_agent(name, "connect").await?;
        let ip: Option<std::net::IpAddr> = match host {
            "localhost" => Some(std::net::Ipv4Addr::LOCALHOST.into()),
            other => other.parse().ok(),
        };
        let pid = self.runtime.init_pid(&self.sandbox_id(name))?;
        match (ip, pid) {
            (Some(ip), Some(pid)) => {
                let addr = std::net::SocketAddr::new(ip, port);
                let stream = connect_in_netns(pid, addr).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        Error::PortClosed(port)
                    } else {
                        Error::io(format!("cannot connect to {addr} in the sprite"), e)
                    }
                })?;
                Ok(Connection::Tcp(stream))
            }
            _ => {
                self.link_made(name).await;
                Ok(Connection::Init(agent.connect(host, port).await?))
            }
        }
    }

    /// The network namespace of the running sprite, as a path another
    /// process can enter (`nsenter --net=`): what measures the sprite's
    /// apps from inside without running in it.
    pub fn network_namespace(&self, name: &SpriteName) -> Result<std::path::PathBuf> {
        self.is_running(name, "enter the network of")?;
        match self.runtime.init_pid(&self.sandbox_id(name))? {
            Some(pid) => Ok(format!("/proc/{pid}/ns/net").into()),
            None => Err(wrong_phase("enter the network of", Phase::SleepingCold)),
        }
    }

    /// The services of the running sprite, with their state.
    pub async fn services(&self, name: &SpriteName) -> Result<Vec<sprite_init::ServiceInfo>> {
        self.running_agent(name, "list services")
            .await?
            .services()
            .await
    }

    /// Changes service `service` of the running sprite; its events follow
    /// for `follow_ms`.
    pub async fn service(
        &self,
        name: &SpriteName,
        service: &str,
        change: sprite_init::ServiceOp,
        follow_ms: u64,
    ) -> Result<crate::agent::ServiceEvents> {
        self.running_agent(name, "change a service")
            .await?
            .service(service, change, follow_ms)
            .await
    }

    /// The recent events of a service, then with `follow` the new ones.
    pub async fn service_logs(
        &self,
        name: &SpriteName,
        service: &str,
        lines: usize,
        follow: bool,
    ) -> Result<crate::agent::ServiceEvents> {
        self.running_agent(name, "read service logs")
            .await?
            .service_logs(service, lines, follow)
            .await
    }

    /// Runs `argv` to completion with `stdin`, collecting its output.
    pub async fn run(&self, name: &SpriteName, argv: &[&str], stdin: &[u8]) -> Result<ExecOutput> {
        let spec = ExecSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        self.exec(name, spec).await?.collect(stdin).await
    }

    /// Joins a session; with `replay`, its buffered output comes first.
    pub async fn attach(&self, name: &SpriteName, session: u64, replay: bool) -> Result<Stream> {
        self.running_agent(name, "attach")
            .await?
            .attach(session, replay)
            .await
    }

    pub async fn sessions(&self, name: &SpriteName) -> Result<Vec<SessionInfo>> {
        self.running_agent(name, "list sessions")
            .await?
            .sessions()
            .await
    }

    /// Sends `signal` (SIGKILL when 0) to a session's process group.
    pub async fn kill_session(&self, name: &SpriteName, session: u64, signal: i32) -> Result<()> {
        let signal = if signal == 0 { libc::SIGKILL } else { signal };
        self.running_agent(name, "kill a session")
            .await?
            .kill(session, signal)
            .await
    }
}

/// A connection into a sprite: a TCP socket of its network namespace,
/// sprite-init's socket relaying one, or a host on another machine
/// carrying one of those.
pub enum Connection {
    Tcp(tokio::net::TcpStream),
    Init(tokio::net::UnixStream),
    Remote(Box<dyn super::Duplex>),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            Connection::Init(s) => f.debug_tuple("Init").field(s).finish(),
            Connection::Remote(_) => f.write_str("Remote"),
        }
    }
}

impl Connection {
    /// Whether a connection between requests can carry another: its peer
    /// has neither closed it nor sent anything unasked. Unless the runtime
    /// saw it readable since it was last read dry, no system call.
    pub fn is_reusable(&self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let ready = match self {
            Connection::Tcp(s) => s.poll_read_ready(&mut cx),
            Connection::Init(s) => s.poll_read_ready(&mut cx),
            // Its state cannot be told without reading from it: not kept.
            Connection::Remote(_) => return false,
        };
        if ready.is_pending() {
            return true;
        }
        let mut byte = [0u8; 1];
        let read = match self {
            Connection::Tcp(s) => s.try_read(&mut byte),
            Connection::Init(s) => s.try_read(&mut byte),
            Connection::Remote(_) => return false,
        };
        matches!(read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

impl tokio::io::AsyncRead for Connection {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Connection::Init(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Connection::Remote(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Connection {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Connection::Init(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Connection::Remote(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Connection::Init(s) => std::pin::Pin::new(s).poll_flush(cx),
            Connection::Remote(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Connection::Init(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Connection::Remote(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Connects to `addr` in the network namespace of process `pid`. A new
/// thread enters the namespace, connects and ends, so no thread of ours
/// stays in a sprite's network.
async fn connect_in_netns(
    pid: i32,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sprite-connect".into())
        .spawn(move || {
            let connect = || -> std::io::Result<std::net::TcpStream> {
                let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                let stream =
                    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
                stream.set_nodelay(true)?;
                stream.set_nonblocking(true)?;
                Ok(stream)
            };
            let _ = tx.send(connect());
        })?;
    let stream = rx
        .await
        .map_err(|_| std::io::Error::other("the connecting thread ended"))??;
    tokio::net::TcpStream::from_std(stream)
}
