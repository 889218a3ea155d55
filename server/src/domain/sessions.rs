//! A sprite's commands and terminal sessions, apart from how they travel
//! (a WebSocket, an HTTP body): starting one (waking the sprite only when
//! it sleeps), attaching to one, listing them with who is attached, and
//! ending one with a signal, escalated to SIGKILL after a timeout.

use serde_json::Value;
use sprites_wire::api::{ExecSession, ExecSessionList, KillSession, Progress, SessionEvent};
use vmhost::{ExecSpec, SessionInfo, SpriteName};

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Starts `spec` in the caller's sprite `name`. The hot path: try at once,
/// and wake the sprite only if it sleeps.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    name: &str,
    spec: ExecSpec,
) -> Result<(vmhost::Stream, Watch), ApiError> {
    let host_name = access::host_sprite(state, caller, name).await?;
    let busy = state.activity.busy(&host_name).await;
    let tty = spec.tty.is_some();
    let stream = match state.host.exec(&host_name, spec.clone()).await {
        Err(vmhost::Error::WrongPhase { .. }) => {
            crate::domain::limits::may_run(state, &caller.org_id).await?;
            state.host.wake(&host_name).await?;
            state.host.exec(&host_name, spec).await?
        }
        other => other?,
    };
    Ok((
        stream,
        Watch::new(state, host_name, busy, tty, &caller.user_id),
    ))
}

/// What a session's traffic tells the idle sleeper. A command without a
/// terminal keeps its sprite awake until it ends (its client is waiting);
/// a terminal only while input or output flows, and input to a terminal
/// whose sprite fell asleep wakes it.
pub struct Watch {
    state: AppState,
    host: vmhost::SpriteName,
    _busy: Option<crate::workers::idle::Busy>,
    /// Who is on the other end (shown to others attached to the session).
    user_id: String,
}

impl Watch {
    fn new(
        state: &AppState,
        host: vmhost::SpriteName,
        busy: crate::workers::idle::Busy,
        tty: bool,
        user_id: &str,
    ) -> Watch {
        Watch {
            state: state.clone(),
            host,
            _busy: (!tty).then_some(busy),
            user_id: user_id.to_string(),
        }
    }

    /// Counts the watch's user among those attached to `session` while the
    /// guard lives.
    pub fn attached(&self, session: u64) -> crate::domain::presence::Here {
        self.state
            .presence
            .join(self.host.as_str(), session, &self.user_id)
    }

    /// The sprite's ports opened and closed from now on (see
    /// [`crate::domain::ports`]).
    pub async fn ports(&self) -> crate::domain::ports::PortWatch {
        crate::domain::ports::changes(&self.state, &self.host).await
    }

    /// The session printed: the sprite was in use.
    pub fn output(&self) {
        self.state.activity.touch(&self.host);
    }

    /// Holds the sprite awake (waking it) while `write` delivers input.
    pub async fn input<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        let _busy = self.state.activity.busy(&self.host).await;
        if self
            .state
            .host
            .phase(&self.host)
            .await
            .is_ok_and(|p| p != vmhost::Phase::Running)
        {
            if let Err(e) = self.state.host.wake(&self.host).await {
                tracing::warn!(sprite = %self.host, error = %e, "cannot wake a sprite for terminal input");
            }
        }
        write.await
    }
}

/// Connections forwarded into a sprite (port forwarding), which keep it
/// awake while they last.
pub struct Forward {
    state: AppState,
    host: SpriteName,
    _busy: crate::workers::idle::Busy,
}

/// Forwarding into the caller's sprite `name` (woken if it sleeps).
pub async fn forward(state: &AppState, caller: &Caller, name: &str) -> Result<Forward, ApiError> {
    let host = access::running(state, caller, name).await?;
    let busy = state.activity.busy(&host).await;
    Ok(Forward {
        state: state.clone(),
        host,
        _busy: busy,
    })
}

impl Forward {
    /// Bytes came back: the sprite was in use.
    pub fn used(&self) {
        self.state.activity.touch(&self.host);
    }

    /// A connection to `host:port` inside the sprite, waking it first if it
    /// fell asleep since.
    pub async fn connect(&self, host: &str, port: u16) -> Result<vmhost::Connection, ApiError> {
        let verbs = &self.state.host;
        if verbs
            .get(&self.host)
            .await
            .is_ok_and(|i| i.phase != vmhost::Phase::Running)
        {
            let _ = verbs.wake(&self.host).await;
        }
        Ok(verbs.connect(&self.host, host, port).await?)
    }
}

fn session_id(session: &str) -> Result<u64, ApiError> {
    session
        .parse()
        .map_err(|_| ApiError::NotFound(format!("session {session}")))
}

/// Attaches to session `session` of the caller's sprite `name`: its
/// stream (the recent output replayed first), what it is, and its watch.
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    name: &str,
    session: &str,
) -> Result<(vmhost::Stream, SessionInfo, Watch), ApiError> {
    let host_name = access::running(state, caller, name).await?;
    let id = session_id(session)?;
    let info = state
        .host
        .sessions(&host_name)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("session {session}")))?;
    let busy = state.activity.busy(&host_name).await;
    let stream = state.host.attach(&host_name, id, true).await?;
    let watch = Watch::new(state, host_name, busy, info.tty, &caller.user_id);
    Ok((stream, info, watch))
}

/// The sessions of the caller's sprite `name`, running and recently ended,
/// with who is attached to each.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ExecSessionList, ApiError> {
    let host_name = access::running(state, caller, name).await?;
    list_on(state, &host_name).await
}

async fn list_on(
    state: &AppState,
    host_name: &vmhost::SpriteName,
) -> Result<ExecSessionList, ApiError> {
    let mut handles = std::collections::HashMap::<String, String>::new();
    let sessions = state.host.sessions(host_name).await?;
    for s in &sessions {
        for user in state.presence.users(host_name.as_str(), s.id) {
            if let std::collections::hash_map::Entry::Vacant(e) = handles.entry(user) {
                let handle = crate::domain::accounts::handle_of(&state.db, e.key()).await?;
                e.insert(handle);
            }
        }
    }
    let sessions = sessions
        .into_iter()
        .map(|s| ExecSession {
            attached: state
                .presence
                .users(host_name.as_str(), s.id)
                .iter()
                .filter_map(|u| handles.get(u).cloned())
                .collect(),
            id: s.id.to_string(),
            command: s.argv.join(" "),
            workdir: String::new(),
            created: crate::db::iso_secs(s.started_at),
            last_activity: crate::db::iso_secs(s.last_output_at),
            bytes_per_second: 0,
            is_active: s.exit_code.is_none(),
            tty: s.tty,
            clients: s.clients as u64,
            exit_code: s.exit_code,
        })
        .collect();
    Ok(ExecSessionList { sessions })
}

const DEFAULT_KILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_KILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn kill_timeout(v: Option<&Value>) -> Result<std::time::Duration, ApiError> {
    use std::time::Duration;
    let bad = || ApiError::Invalid("timeout: seconds, like 10 or \"10s\" or \"500ms\"".into());
    let d = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_KILL_TIMEOUT),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(bad)?,
        Some(Value::String(t)) => sprites_wire::parse_duration(t).ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    Ok(d.min(MAX_KILL_TIMEOUT))
}

/// The signals a caller may name, as the SDKs spell them (without `SIG`).
const SIGNALS: [(&str, i32); 9] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("TERM", libc::SIGTERM),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
];

/// A signal by name (`SIGTERM`, `TERM`) or number; SIGKILL when absent.
pub fn signal_number(name: Option<&str>) -> Result<i32, ApiError> {
    let name = name.unwrap_or("SIGKILL");
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, number)| *number)
        .or_else(|| bare.parse::<i32>().ok().filter(|n| (1..=64).contains(n)))
        .ok_or_else(|| {
            ApiError::Invalid(format!("signal {name:?}: a name like SIGTERM or a number"))
        })
}

/// A signal's name (`SIGTERM`), or its number for one without a name here.
pub fn signal_name(number: i32) -> String {
    match SIGNALS.iter().find(|(_, n)| *n == number) {
        Some((name, _)) => format!("SIG{name}"),
        None => number.to_string(),
    }
}

/// How long a kill waits for the end after the SIGKILL that follows a
/// timeout.
const AFTER_SIGKILL: std::time::Duration = std::time::Duration::from_secs(5);

/// A signal sent to a session, and the wait for it to end: [`Kill::run`].
pub struct Kill {
    state: AppState,
    host: SpriteName,
    id: u64,
    pid: u32,
    signal: i32,
    timeout: std::time::Duration,
}

/// Sends `req.signal` (SIGKILL when absent) to session `session` now; the
/// returned [`Kill`] waits up to `req.timeout` for the end (none for a
/// zero timeout) and only then sends SIGKILL.
pub async fn kill(
    state: &AppState,
    caller: &Caller,
    name: &str,
    session: &str,
    req: &KillSession,
) -> Result<Kill, ApiError> {
    let host = access::running(state, caller, name).await?;
    let id = session_id(session)?;
    let signal = signal_number(req.signal.as_deref())?;
    let timeout = kill_timeout(req.timeout.as_ref())?;
    let pid = state
        .host
        .sessions(&host)
        .await?
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.pid)
        .ok_or_else(|| ApiError::from(vmhost::Error::SessionNotFound(id)))?;
    state.host.kill_session(&host, id, signal).await?;
    Ok(Kill {
        state: state.clone(),
        host,
        id,
        pid,
        signal,
        timeout,
    })
}

impl Kill {
    /// Says what was sent, waits (up to the timeout) for the session to
    /// end, and sends one SIGKILL if it did not; each step a line to `say`.
    pub async fn run(self, say: impl Fn(Progress)) {
        let (id, name) = (self.id, signal_name(self.signal));
        let sent = format!("sent {name} to session {id}");
        say(Progress::Signal(self.sent(self.signal, sent)));
        if self.timeout.is_zero() {
            let line = format!("sent {name}; not waiting for the end");
            return say(Progress::complete(line));
        }
        match self.end(&say).await {
            Ok(last) => {
                say(last);
                say(Progress::complete(format!("session {id} ended")));
            }
            Err(last) => say(last),
        }
    }

    /// A line for `signal` sent to the session.
    fn sent(&self, signal: i32, message: String) -> SessionEvent {
        SessionEvent {
            signal: Some(signal_name(signal)),
            pid: Some(self.pid),
            ..SessionEvent::new(message)
        }
    }

    /// The line of the session's end: exited within the timeout, or killed
    /// after it (the timeout said on the way). A failure's line is the error.
    async fn end(&self, say: &impl Fn(Progress)) -> Result<Progress, Progress> {
        let (id, pid) = (self.id, Some(self.pid));
        let failed = crate::domain::checkpoints::error_line;
        if let Some(code) = self.ended_within(self.timeout).await.map_err(failed)? {
            let exited = format!("session {id} exited with code {code}");
            return Ok(Progress::Exited(SessionEvent {
                pid,
                exit_code: Some(code),
                ..SessionEvent::new(exited)
            }));
        }
        let waited = format!("session {id} still runs after {:?}", self.timeout);
        say(Progress::Timeout(SessionEvent {
            pid,
            ..SessionEvent::new(waited)
        }));
        self.state
            .host
            .kill_session(&self.host, id, libc::SIGKILL)
            .await
            .map_err(|e| failed(e.into()))?;
        let killed = self.sent(libc::SIGKILL, format!("sent SIGKILL to session {id}"));
        match self.ended_within(AFTER_SIGKILL).await.map_err(failed)? {
            Some(code) => Ok(Progress::Killed(SessionEvent {
                exit_code: Some(code),
                ..killed
            })),
            None => {
                say(Progress::Killed(killed));
                let error = format!("session {id} still runs after SIGKILL");
                Err(Progress::Error { error })
            }
        }
    }

    /// The session's exit code once it ends, or `None` when `wait` passes
    /// first. A session that is gone from the list ended with no code
    /// known: -1.
    async fn ended_within(&self, wait: std::time::Duration) -> Result<Option<i32>, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let all = self.state.host.sessions(&self.host).await?;
            match all.iter().find(|s| s.id == self.id) {
                None => return Ok(Some(-1)),
                Some(s) if s.exit_code.is_some() => return Ok(s.exit_code),
                Some(_) if tokio::time::Instant::now() >= deadline => return Ok(None),
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_or_numbered() {
        assert_eq!(signal_number(Some("SIGTERM")).unwrap(), libc::SIGTERM);
        assert_eq!(signal_number(Some("TERM")).unwrap(), libc::SIGTERM);
        assert_eq!(signal_number(Some("9")).unwrap(), 9);
        assert_eq!(signal_number(None).unwrap(), libc::SIGKILL);
        assert!(signal_number(Some("SIGNOPE")).is_err());
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
        assert_eq!(signal_name(40), "40");
    }
}
