//! `sprite-init`: PID 1 of a sprite.
//!
//! 1. The host starts the sandbox with a listening unix socket as fd 3.
//! 2. `sprite-init` reaps every child that exits in the sprite (it is the
//!    sprite's init, so orphans land on it) and routes the exit statuses of
//!    the processes it started to their sessions.
//! 3. Each connection on fd 3 carries one request (see the `sprite_init`
//!    library for the framing). Sessions belong to `sprite-init`, not to the
//!    connection, so a TTY session outlives its client and the host process.
//! 4. On SIGTERM it forwards SIGTERM to every process of the sprite, waits a
//!    few seconds for them, and exits (the sandbox then ends).

mod io;
mod services;
mod session;
mod sprite_env;

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sprite_init::{read_frame, write_frame, Frame, Reply, Request};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};

use services::Services;
use session::Sessions;

/// The listening socket handed over by the host.
const LISTEN_FD: i32 = 3;

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let program = args.first().cloned().unwrap_or_default();
    if program.rsplit('/').next() == Some("sprite-env") {
        args.remove(0);
        std::process::exit(sprite_env::main(args));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("sprite-init: cannot build its runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("sprite-init: {e}");
        std::process::exit(1);
    }
}

async fn run() -> std::io::Result<()> {
    // Children must not inherit the host's socket.
    nix::fcntl::fcntl(
        LISTEN_FD,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| std::io::Error::other(format!("fd {LISTEN_FD} is not the init socket: {e}")))?;
    // SAFETY: fd 3 is handed to us by the runtime and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FD) };
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    std_listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(std_listener)?;

    let sessions = Arc::new(Sessions::default());
    let services = Services::new(sessions.clone());
    let mut sigchld = signal(SignalKind::child())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    reap(&sessions);
    offer_sprite_env();
    services.boot();

    loop {
        tokio::select! {
            _ = sigchld.recv() => reap(&sessions),
            _ = sigterm.recv() => return shutdown(&sessions).await,
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    let sessions = sessions.clone();
                    let services = services.clone();
                    tokio::spawn(async move { serve(sessions, services, stream).await });
                }
                Err(e) => eprintln!("sprite-init: accept failed: {e}"),
            },
        }
    }
}

/// Puts `sprite-env` on the sprite's PATH (login shells reset PATH, so a
/// link in /usr/local/bin rather than /.sprite/bin). Left alone when the
/// sprite's user made something else of that name.
fn offer_sprite_env() {
    let link = std::path::Path::new("/usr/local/bin/sprite-env");
    if link.symlink_metadata().is_err() {
        let _ = std::fs::create_dir_all("/usr/local/bin");
        let _ = std::os::unix::fs::symlink("/.sprite/bin/sprite-env", link);
    }
}

/// Collects every exited child; statuses of session leaders go to their session.
fn reap(sessions: &Sessions) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => sessions.exited(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                sessions.exited(pid.as_raw(), 128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("sprite-init: waitpid failed: {e}");
                return;
            }
        }
    }
}

async fn shutdown(sessions: &Sessions) -> std::io::Result<()> {
    // kill(-1) from PID 1 reaches every other process of the sprite.
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), nix::sys::signal::Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        reap(sessions);
        if matches!(
            waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)),
            Err(nix::errno::Errno::ECHILD)
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn serve(sessions: Arc<Sessions>, services: Arc<Services>, mut stream: UnixStream) {
    let request = match read_frame(&mut stream).await {
        Ok(Some(f)) => f.decode::<Request>(),
        Ok(None) => return,
        Err(e) => Err(e),
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            let reply = Reply::Error {
                kind: sprite_init::ErrorKind::Invalid,
                message: e.to_string(),
            };
            let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
            return;
        }
    };
    match request {
        Request::Ping => {
            let reply = Reply::Pong {
                pid: std::process::id(),
                version: sprite_init::VERSION.to_string(),
            };
            let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
        }
        Request::ListSessions => {
            let reply = Reply::Sessions {
                sessions: sessions.list(),
            };
            let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
        }
        Request::Kill { session, signal } => {
            let reply = sessions.kill(session, signal);
            let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
        }
        Request::Exec(spec) => match sessions.spawn(spec) {
            Ok((session, creator)) => session::stream(session, stream, creator).await,
            Err(reply) => {
                let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
            }
        },
        Request::Connect { host, port } => connect(stream, &host, port).await,
        Request::ListServices => {
            let reply = Reply::Services {
                services: services.list(),
            };
            let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
        }
        Request::Service {
            name,
            change,
            follow_ms,
        } => {
            let (reply, follower) = services.apply(&name, change, follow_ms > 0).await;
            if write_frame(&mut stream, &Frame::control(&reply))
                .await
                .is_err()
            {
                return;
            }
            if let Some(rx) = follower {
                let until = tokio::time::Instant::now() + Duration::from_millis(follow_ms);
                stream_events(stream, Vec::new(), rx, Some(until)).await;
            }
        }
        Request::ServiceLogs {
            name,
            lines,
            follow,
        } => match services.logs(&name, lines) {
            Some((recent, rx)) => {
                if write_frame(&mut stream, &Frame::control(&Reply::Done))
                    .await
                    .is_err()
                {
                    return;
                }
                let until = (!follow).then(tokio::time::Instant::now);
                stream_events(stream, recent, rx, until).await;
            }
            None => {
                let reply = Reply::Error {
                    kind: sprite_init::ErrorKind::NotFound,
                    message: format!("no service {name}"),
                };
                let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
            }
        },
        Request::Attach { session, replay } => match sessions.get(session) {
            Some(session) => {
                let sub = session.subscribe(replay);
                session::stream(session, stream, sub).await
            }
            None => {
                let reply = Reply::Error {
                    kind: sprite_init::ErrorKind::NotFound,
                    message: format!("no session {session}"),
                };
                let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
            }
        },
    }
}

/// Connects to `host:port` from inside the sprite and splices the
/// connection with the host's socket until either end closes.
async fn connect(mut stream: UnixStream, host: &str, port: u16) {
    // `localhost` is the sprite's own loopback, whatever its /etc/hosts
    // says (or whether it still has one): IPv4 first, then IPv6.
    let attempt = if host == "localhost" {
        match tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tokio::net::TcpStream::connect((std::net::Ipv6Addr::LOCALHOST, port))
                    .await
                    .map_err(|_| e)
            }
            other => other,
        }
    } else {
        tokio::net::TcpStream::connect((host, port)).await
    };
    let tcp = match attempt {
        Ok(tcp) => tcp,
        Err(e) => {
            let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                sprite_init::ErrorKind::Refused
            } else {
                sprite_init::ErrorKind::Invalid
            };
            let reply = Reply::Error {
                kind,
                message: format!("cannot connect to {host}:{port}: {e}"),
            };
            let _ = write_frame(&mut stream, &Frame::control(&reply)).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    if write_frame(&mut stream, &Frame::control(&Reply::Connected))
        .await
        .is_err()
    {
        return;
    }
    let mut tcp = tcp;
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
}

/// Writes `first`, then events from `rx` until `until` (or, without it,
/// until the host closes the connection), one control frame each.
async fn stream_events(
    mut stream: UnixStream,
    first: Vec<sprite_init::ServiceEvent>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<sprite_init::ServiceEvent>,
    until: Option<tokio::time::Instant>,
) {
    for e in &first {
        if write_frame(&mut stream, &Frame::control(e)).await.is_err() {
            return;
        }
    }
    let (mut rd, mut wr) = stream.into_split();
    let closed = async {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 1];
        let _ = rd.read(&mut b).await;
    };
    tokio::pin!(closed);
    loop {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let e = tokio::select! {
            e = rx.recv() => match e {
                Some(e) => e,
                None => return,
            },
            _ = deadline => return,
            _ = &mut closed => return,
        };
        if write_frame(&mut wr, &Frame::control(&e)).await.is_err() {
            return;
        }
    }
}
