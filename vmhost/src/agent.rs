//! The host's side of the init socket (protocol in the `sprite_init` crate).
//!
//! What `sprite-init` says is treated as untrusted: a tenant controls
//! everything inside the sprite, so replies are size-limited by the framing
//! and only ever reach the sprite's own owner.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sprite_init::{
    read_frame, write_frame, ExecSpec, Frame, Reply, Request, ServiceEvent, ServiceInfo, ServiceOp,
    SessionInfo, Tag,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// How long a request may wait for `sprite-init` to accept and answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a service change may take (a stop waits out its timeout).
const PATIENT_TIMEOUT: Duration = Duration::from_secs(330);

#[derive(Debug, Clone)]
pub struct Agent {
    socket: PathBuf,
}

impl Agent {
    pub fn new(socket: &Path) -> Agent {
        Agent {
            socket: socket.to_path_buf(),
        }
    }

    async fn send(&self, req: &Request) -> Result<(Reply, UnixStream)> {
        self.send_within(req, ANSWER_TIMEOUT).await
    }

    /// [`send`](Self::send) for requests whose answer may take a while.
    async fn send_patiently(&self, req: &Request) -> Result<(Reply, UnixStream)> {
        self.send_within(req, PATIENT_TIMEOUT).await
    }

    async fn send_within(&self, req: &Request, limit: Duration) -> Result<(Reply, UnixStream)> {
        let exchange = async {
            let mut stream = UnixStream::connect(&self.socket)
                .await
                .map_err(|e| Error::io("cannot reach the sprite's init", e))?;
            write_frame(&mut stream, &Frame::control(req)).await?;
            let frame = read_frame(&mut stream).await?.ok_or(Error::Agent(
                sprite_init::FrameError::Malformed("no answer"),
            ))?;
            Ok::<_, Error>((frame.decode::<Reply>()?, stream))
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| Error::AgentRefused("no answer in time".into()))?
    }

    async fn call(&self, req: &Request) -> Result<Reply> {
        let (reply, _) = self.send(req).await?;
        match reply {
            Reply::Error { kind, message } => Err(refusal(kind, message)),
            r => Ok(r),
        }
    }

    pub async fn ping(&self) -> Result<()> {
        match self.call(&Request::Ping).await? {
            Reply::Pong { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        match self.call(&Request::ListSessions).await? {
            Reply::Sessions { sessions } => Ok(sessions),
            other => Err(unexpected(other)),
        }
    }

    pub async fn kill(&self, session: u64, signal: i32) -> Result<()> {
        match self.send(&Request::Kill { session, signal }).await?.0 {
            Reply::Done => Ok(()),
            Reply::Error {
                kind: sprite_init::ErrorKind::NotFound,
                ..
            } => Err(Error::SessionNotFound(session)),
            Reply::Error { kind, message } => Err(refusal(kind, message)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn exec(&self, spec: ExecSpec) -> Result<Stream> {
        self.open(&Request::Exec(spec)).await
    }

    pub async fn attach(&self, session: u64, replay: bool) -> Result<Stream> {
        self.open(&Request::Attach { session, replay })
            .await
            .map_err(|e| match e {
                Error::SessionNotFound(_) => Error::SessionNotFound(session),
                e => e,
            })
    }

    /// A TCP connection from inside the sprite to `host:port`, as a socket
    /// that carries its bytes.
    pub async fn connect(&self, host: &str, port: u16) -> Result<UnixStream> {
        let req = Request::Connect {
            host: host.to_string(),
            port,
        };
        match self.send(&req).await? {
            (Reply::Connected, stream) => Ok(stream),
            (
                Reply::Error {
                    kind: sprite_init::ErrorKind::Refused,
                    ..
                },
                _,
            ) => Err(Error::PortClosed(port)),
            (Reply::Error { kind, message }, _) => Err(refusal(kind, message)),
            (other, _) => Err(unexpected(other)),
        }
    }

    pub async fn services(&self) -> Result<Vec<ServiceInfo>> {
        match self.call(&Request::ListServices).await? {
            Reply::Services { services } => Ok(services),
            other => Err(unexpected(other)),
        }
    }

    /// Changes service `name`; its events follow for `follow_ms`.
    pub async fn service(
        &self,
        name: &str,
        change: ServiceOp,
        follow_ms: u64,
    ) -> Result<ServiceEvents> {
        let req = Request::Service {
            name: name.to_string(),
            change,
            follow_ms,
        };
        self.service_stream(name, &req).await
    }

    /// The last `lines` events of service `name`, then with `follow` the
    /// new ones until the stream is dropped.
    pub async fn service_logs(
        &self,
        name: &str,
        lines: usize,
        follow: bool,
    ) -> Result<ServiceEvents> {
        let req = Request::ServiceLogs {
            name: name.to_string(),
            lines,
            follow,
        };
        self.service_stream(name, &req).await
    }

    async fn service_stream(&self, name: &str, req: &Request) -> Result<ServiceEvents> {
        // A stop waits for the process to go: longer than other answers.
        let (reply, stream) = self.send_patiently(req).await?;
        match reply {
            Reply::Done => Ok(ServiceEvents(Box::new(stream))),
            Reply::Error {
                kind: sprite_init::ErrorKind::NotFound,
                ..
            } => Err(Error::ServiceNotFound(name.to_string())),
            Reply::Error {
                kind: sprite_init::ErrorKind::Conflict,
                message,
            } => Err(Error::ServiceConflict(message)),
            Reply::Error {
                kind: sprite_init::ErrorKind::Invalid,
                message,
            } => Err(Error::Invalid(message)),
            Reply::Error { kind, message } => Err(refusal(kind, message)),
            other => Err(unexpected(other)),
        }
    }

    async fn open(&self, req: &Request) -> Result<Stream> {
        let (reply, stream) = self.send(req).await?;
        match reply {
            Reply::Started { session, pid } => {
                let (rd, wr) = stream.into_split();
                Ok(Stream {
                    session,
                    pid,
                    input: Input(Box::new(wr)),
                    output: Output(Box::new(rd)),
                })
            }
            Reply::Error { kind, message } => Err(refusal(kind, message)),
            other => Err(unexpected(other)),
        }
    }
}

fn refusal(kind: sprite_init::ErrorKind, message: String) -> Error {
    match kind {
        sprite_init::ErrorKind::Spawn => Error::Spawn("command".into(), message),
        // The id is filled in by the caller that knows it.
        sprite_init::ErrorKind::NotFound => Error::SessionNotFound(0),
        sprite_init::ErrorKind::Invalid
        | sprite_init::ErrorKind::Refused
        | sprite_init::ErrorKind::Conflict => Error::AgentRefused(message),
    }
}

fn unexpected(reply: Reply) -> Error {
    Error::AgentRefused(format!("unexpected answer {reply:?}"))
}

/// Events of a service, as sprite-init streams them.
pub struct ServiceEvents(FrameReader);

impl ServiceEvents {
    /// Events read from init's frames wherever they travel.
    pub(crate) fn from_frames(frames: FrameReader) -> ServiceEvents {
        ServiceEvents(frames)
    }

    /// The frames themselves, to carry on elsewhere.
    pub(crate) fn into_inner(self) -> FrameReader {
        self.0
    }

    /// The next event; `None` once the stream ends.
    pub async fn next(&mut self) -> Result<Option<ServiceEvent>> {
        match read_frame(&mut self.0).await? {
            Some(f) => Ok(Some(f.decode()?)),
            None => Ok(None),
        }
    }
}

/// A running session's streams. Split it to pump both ways at once.
pub struct Stream {
    pub session: u64,
    pub pid: u32,
    pub input: Input,
    pub output: Output,
}

pub struct Input(FrameWriter);
pub struct Output(FrameReader);

/// Init's framing (`sprite_init::Frame`), read from wherever it travels: the
/// Unix socket to the sprite's init on this machine, or a stream that
/// carries it on from another.
pub(crate) type FrameReader = Box<dyn AsyncRead + Send + Unpin>;
/// Init's framing, written to wherever it travels.
pub(crate) type FrameWriter = Box<dyn AsyncWrite + Send + Unpin>;

impl Input {
    async fn send(&mut self, frame: &Frame) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        write_frame(&mut self.0, frame)
            .await
            .map_err(Error::Agent)?;
        // A writer that buffers (TLS to another machine) sends it now.
        self.0.flush().await.map_err(|e| Error::Agent(e.into()))
    }

    pub async fn stdin(&mut self, data: &[u8]) -> Result<()> {
        self.send(&Frame::new(Tag::Stdin, data.to_vec())).await
    }

    pub async fn close_stdin(&mut self) -> Result<()> {
        self.send(&Frame::new(Tag::StdinEof, Vec::new())).await
    }

    pub async fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        self.send(&Frame::resize(rows, cols)).await
    }

    pub async fn signal(&mut self, sig: i32) -> Result<()> {
        self.send(&Frame::signal(sig)).await
    }
}

/// What a session says: output on one of its streams, or its exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command exited with this code; nothing follows.
    Exit(i32),
}

impl Output {
    /// The next output or the exit; `None` once the stream ends (the
    /// sprite went away mid-command when no exit came first).
    pub async fn next(&mut self) -> Result<Option<Chunk>> {
        loop {
            let Some(f) = read_frame(&mut self.0).await.map_err(Error::Agent)? else {
                return Ok(None);
            };
            return Ok(Some(match f.tag {
                Tag::Stdout => Chunk::Stdout(f.payload),
                Tag::Stderr => Chunk::Stderr(f.payload),
                Tag::Exit => Chunk::Exit(f.as_i32()?),
                _ => continue,
            }));
        }
    }
}

/// Collected output of a finished command.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecOutput {
    #[serde(with = "crate::call::base64_bytes")]
    pub stdout: Vec<u8>,
    #[serde(with = "crate::call::base64_bytes")]
    pub stderr: Vec<u8>,
    pub code: i32,
}

impl Stream {
    /// A session whose frames travel over `to_init` and `from_init`.
    pub(crate) fn from_parts(
        session: u64,
        pid: u32,
        to_init: FrameWriter,
        from_init: FrameReader,
    ) -> Stream {
        Stream {
            session,
            pid,
            input: Input(to_init),
            output: Output(from_init),
        }
    }

    /// Its frames' two ways, to carry them on elsewhere.
    pub(crate) fn into_parts(self) -> (FrameWriter, FrameReader) {
        (self.input.0, self.output.0)
    }

    /// Feeds `stdin`, closes it, and collects everything until the exit.
    pub async fn collect(mut self, stdin: &[u8]) -> Result<ExecOutput> {
        // The command may be done before reading its input; its output and
        // exit code still follow, so a refused write is not an error.
        if !stdin.is_empty() {
            let _ = self.input.stdin(stdin).await;
        }
        let _ = self.input.close_stdin().await;
        let mut out = ExecOutput::default();
        while let Some(chunk) = self.output.next().await? {
            match chunk {
                Chunk::Stdout(data) => out.stdout.extend_from_slice(&data),
                Chunk::Stderr(data) => out.stderr.extend_from_slice(&data),
                Chunk::Exit(code) => {
                    out.code = code;
                    return Ok(out);
                }
            }
        }
        Err(Error::AgentRefused(
            "the session ended without an exit code".into(),
        ))
    }
}
