//! Services: named long-running commands that sprite-init starts when the
//! sprite boots (a start, a cold wake, a restore) and restarts when they
//! crash, with backoff.
//!
//! Definitions are files of the sprite's own disk, `/etc/sprite/services/
//! <name>.json`, so they follow its checkpoints and may be edited from
//! inside. Each service keeps its recent events (lines of output, starts,
//! exits) for `logs`, and hands new ones to every follower.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sprite_init::{
    ErrorKind, Reply, ServiceEvent, ServiceInfo, ServiceOp, ServiceSpec, ServiceState,
};
use tokio::sync::{mpsc, Notify};

use crate::io::Fd;
use crate::session::Sessions;

pub use sprite_init::{valid_service_name as valid_name, SERVICES_DIR as DIR};
/// Events kept per service for `logs`.
const KEEP_EVENTS: usize = 2000;
/// Longest line kept whole; longer ones are cut.
const MAX_LINE: usize = 16 * 1024;
/// Restart delays grow from the first to the last, doubling.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_LAST: Duration = Duration::from_secs(60);
/// A run this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn event(kind: &str, data: Option<String>, exit_code: Option<i32>) -> ServiceEvent {
    ServiceEvent {
        kind: kind.into(),
        data,
        exit_code,
        timestamp: now_ms(),
    }
}

fn refuse(kind: ErrorKind, message: String) -> Reply {
    Reply::Error { kind, message }
}

struct Svc {
    spec: ServiceSpec,
    state: ServiceState,
    /// Whether it should run; a crash restarts only what should.
    wanted: bool,
    /// Moves on at every start and stop, so a pending restart of an older
    /// run knows it is stale.
    run: u64,
    /// Wakes a restart that waits out its backoff.
    wake: Arc<Notify>,
    events: VecDeque<ServiceEvent>,
    followers: Vec<mpsc::UnboundedSender<ServiceEvent>>,
}

impl Svc {
    fn new(spec: ServiceSpec) -> Svc {
        Svc {
            spec,
            state: ServiceState {
                status: "stopped".into(),
                ..Default::default()
            },
            wanted: false,
            run: 0,
            wake: Arc::new(Notify::new()),
            events: VecDeque::new(),
            followers: Vec::new(),
        }
    }

    fn publish(&mut self, e: ServiceEvent) {
        self.followers.retain(|f| f.send(e.clone()).is_ok());
        if self.events.len() == KEEP_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }
}

pub struct Services {
    dir: PathBuf,
    sessions: Arc<Sessions>,
    by_name: Mutex<BTreeMap<String, Svc>>,
}

impl Services {
    pub fn new(sessions: Arc<Sessions>) -> Arc<Services> {
        Arc::new(Services {
            dir: PathBuf::from(DIR),
            sessions,
            by_name: Mutex::new(BTreeMap::new()),
        })
    }

    /// Loads every definition and starts the services, each after what it
    /// needs.
    pub fn boot(self: &Arc<Self>) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut loaded = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| valid_name(n))
                .map(str::to_string)
            else {
                continue;
            };
            match std::fs::read(&path).map(|b| serde_json::from_slice::<ServiceSpec>(&b)) {
                Ok(Ok(spec)) => loaded.push((name, spec)),
                Ok(Err(e)) => eprintln!("sprite-init: {}: {e}", path.display()),
                Err(e) => eprintln!("sprite-init: {}: {e}", path.display()),
            }
        }
        {
            let mut map = self.by_name.lock().unwrap();
            for (name, spec) in loaded {
                map.insert(name, Svc::new(spec));
            }
        }
        let names: Vec<String> = self.by_name.lock().unwrap().keys().cloned().collect();
        for name in names {
            if let Err(Reply::Error { message, .. }) = self.start(&name) {
                eprintln!("sprite-init: service {name}: {message}");
            }
        }
    }

    pub fn list(&self) -> Vec<ServiceInfo> {
        self.by_name
            .lock()
            .unwrap()
            .iter()
            .map(|(name, s)| ServiceInfo {
                name: name.clone(),
                spec: s.spec.clone(),
                state: s.state.clone(),
            })
            .collect()
    }

    /// Follows a service's events from now on.
    pub fn follow(&self, name: &str) -> Option<mpsc::UnboundedReceiver<ServiceEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.by_name
            .lock()
            .unwrap()
            .get_mut(name)?
            .followers
            .push(tx);
        Some(rx)
    }

    /// The last `lines` events and, under the same lock, a follower of the
    /// next ones: nothing is missed or seen twice.
    pub fn logs(
        &self,
        name: &str,
        lines: usize,
    ) -> Option<(Vec<ServiceEvent>, mpsc::UnboundedReceiver<ServiceEvent>)> {
        let mut map = self.by_name.lock().unwrap();
        let svc = map.get_mut(name)?;
        let skip = svc.events.len().saturating_sub(lines);
        let recent = svc.events.iter().skip(skip).cloned().collect();
        let (tx, rx) = mpsc::unbounded_channel();
        svc.followers.push(tx);
        Some((recent, rx))
    }

    /// Applies `op`; with `follow`, also a follower of the service's events
    /// from before the change began.
    pub async fn apply(
        self: &Arc<Self>,
        name: &str,
        op: ServiceOp,
        follow: bool,
    ) -> (Reply, Option<mpsc::UnboundedReceiver<ServiceEvent>>) {
        if !valid_name(name) {
            let reply = refuse(
                ErrorKind::Invalid,
                format!("service name {name:?}: 1 to 63 lowercase letters, digits, - or _"),
            );
            return (reply, None);
        }
        let mut follower = if follow { self.follow(name) } else { None };
        let result = match op {
            ServiceOp::Put { spec } => {
                let follower = if follow && follower.is_none() {
                    Some(&mut follower)
                } else {
                    None
                };
                self.put(name, spec, follower).await
            }
            ServiceOp::Start => self.start(name),
            ServiceOp::Stop { timeout_ms } => {
                self.stop(name, Duration::from_millis(timeout_ms)).await
            }
            ServiceOp::Restart => match self.stop(name, Duration::from_secs(10)).await {
                Ok(()) => self.start(name),
                Err(e) => Err(e),
            },
            ServiceOp::Delete => self.delete(name).await,
            ServiceOp::Signal { signal } => self.signal(name, signal),
        };
        match result {
            Ok(()) => (Reply::Done, follower),
            Err(e) => (e, None),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Saves the definition and starts the service; a new service's
    /// follower (when asked for) is made before it starts.
    async fn put(
        self: &Arc<Self>,
        name: &str,
        spec: ServiceSpec,
        follower: Option<&mut Option<mpsc::UnboundedReceiver<ServiceEvent>>>,
    ) -> Result<(), Reply> {
        if spec.cmd.is_empty() || spec.cmd.contains('\0') {
            return Err(refuse(ErrorKind::Invalid, "cmd: the program to run".into()));
        }
        if !sprite_init::command_is_passable(spec.args.iter().chain(&spec.dir), spec.env.iter()) {
            return Err(refuse(
                ErrorKind::Invalid,
                "args, dir and env cannot hold NUL, nor env names '='".into(),
            ));
        }
        if spec.http_port == Some(0) {
            return Err(refuse(ErrorKind::Invalid, "http_port: 1 to 65535".into()));
        }
        {
            let map = self.by_name.lock().unwrap();
            for need in &spec.needs {
                if need == name {
                    return Err(refuse(
                        ErrorKind::Invalid,
                        "a service cannot need itself".into(),
                    ));
                }
                if !map.contains_key(need) {
                    return Err(refuse(
                        ErrorKind::Invalid,
                        format!("needs {need:?}, which is not a service"),
                    ));
                }
                if depends_on(&map, need, name) {
                    return Err(refuse(
                        ErrorKind::Invalid,
                        format!("{need:?} already needs {name:?}: that would be a cycle"),
                    ));
                }
            }
        }
        write_definition(&self.dir, &self.path(name), &spec).map_err(|e| {
            refuse(
                ErrorKind::Invalid,
                format!("cannot save the definition: {e}"),
            )
        })?;
        let changed = {
            let mut map = self.by_name.lock().unwrap();
            match map.get_mut(name) {
                Some(svc) => {
                    let changed = svc.spec != spec;
                    svc.spec = spec;
                    changed
                }
                None => {
                    let mut svc = Svc::new(spec);
                    if let Some(follower) = follower {
                        let (tx, rx) = mpsc::unbounded_channel();
                        svc.followers.push(tx);
                        *follower = Some(rx);
                    }
                    map.insert(name.to_string(), svc);
                    false
                }
            }
        };
        if changed {
            self.stop(name, Duration::from_secs(10)).await?;
        }
        self.start(name)
    }

    /// Starts `name` (and first what it needs); a no-op when it runs.
    fn start(self: &Arc<Self>, name: &str) -> Result<(), Reply> {
        self.start_inner(name, 0)
    }

    fn start_inner(self: &Arc<Self>, name: &str, depth: usize) -> Result<(), Reply> {
        let needs = {
            let map = self.by_name.lock().unwrap();
            let svc = map
                .get(name)
                .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no service {name}")))?;
            svc.spec.needs.clone()
        };
        if depth > 64 {
            return Err(refuse(
                ErrorKind::Invalid,
                "needs go around in a cycle".into(),
            ));
        }
        for need in &needs {
            self.start_inner(need, depth + 1)?;
        }
        let run = {
            let mut map = self.by_name.lock().unwrap();
            let svc = map.get_mut(name).expect("checked above");
            if svc.wanted {
                // Running, or waiting out a backoff: that wait ends now.
                svc.wake.notify_waiters();
                return Ok(());
            }
            svc.wanted = true;
            svc.run += 1;
            svc.state.restart_count = 0;
            svc.state.error = None;
            svc.state.status = "starting".into();
            svc.run
        };
        let services = self.clone();
        let name = name.to_string();
        tokio::spawn(async move { services.supervise(&name, run).await });
        Ok(())
    }

    /// Runs the service, and again after every crash, while this run is
    /// the wanted one.
    async fn supervise(self: Arc<Self>, name: &str, run: u64) {
        let mut delay = BACKOFF_FIRST;
        loop {
            let current = |map: &BTreeMap<String, Svc>| {
                map.get(name)
                    .filter(|s| s.wanted && s.run == run)
                    .map(|s| s.spec.clone())
            };
            let Some(spec) = current(&self.by_name.lock().unwrap()) else {
                return;
            };
            let started = tokio::time::Instant::now();
            let outcome = self.run_once(name, run, &spec).await;
            let wake = {
                let mut map = self.by_name.lock().unwrap();
                let Some(svc) = map.get_mut(name).filter(|s| s.run == run) else {
                    return;
                };
                svc.state.pid = None;
                if !svc.wanted {
                    svc.state.status = "stopped".into();
                    svc.publish(event("stopped", None, None));
                    return;
                }
                if started.elapsed() >= STABLE {
                    delay = BACKOFF_FIRST;
                }
                let at = now_ms() + delay.as_millis() as u64;
                svc.state.status = "failed".into();
                svc.state.error = Some(outcome);
                svc.state.restart_count += 1;
                svc.state.next_restart_at = Some(at);
                svc.wake.clone()
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wake.notified() => {}
            }
            delay = (delay * 2).min(BACKOFF_LAST);
        }
    }

    /// One run of the process; what ended it, in words.
    async fn run_once(self: &Arc<Self>, name: &str, run: u64, spec: &ServiceSpec) -> String {
        let mut cmd = Command::new(&spec.cmd);
        cmd.args(&spec.args)
            .env_clear()
            .envs(crate::session::base_environment())
            .env("SPRITE_SERVICE", name)
            .envs(&spec.env)
            .current_dir(match &spec.dir {
                Some(dir) => dir.as_str(),
                None => crate::session::default_dir(),
            })
            .stdin(Stdio::null());
        let pipes = (|| {
            let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            Ok::<_, nix::Error>((out_r, out_w, err_r, err_w))
        })();
        let (out_r, out_w, err_r, err_w) = match pipes {
            Ok(p) => p,
            Err(e) => return self.failed_to_start(name, format!("cannot create pipes: {e}")),
        };
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let (pid, exited) = match self.sessions.spawn_watched(&mut cmd) {
            Ok(p) => p,
            Err(e) => return self.failed_to_start(name, format!("cannot run {}: {e}", spec.cmd)),
        };
        drop(cmd);
        {
            let mut map = self.by_name.lock().unwrap();
            if let Some(svc) = map.get_mut(name).filter(|s| s.run == run) {
                svc.state.status = "running".into();
                svc.state.pid = Some(pid as u32);
                svc.state.started_at = Some(now_ms());
                svc.state.next_restart_at = None;
                svc.publish(event("started", Some(format!("pid {pid}")), None));
            }
        }
        let pumps = [("stdout", out_r), ("stderr", err_r)].map(|(kind, fd)| {
            let services = self.clone();
            let name = name.to_string();
            tokio::spawn(async move {
                if let Ok(fd) = Fd::new(fd) {
                    services.pump_lines(&name, kind, fd).await;
                }
            })
        });
        let code = exited.await.unwrap_or(255);
        for p in pumps {
            let abort = p.abort_handle();
            if tokio::time::timeout(Duration::from_millis(200), p)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(svc) = self.by_name.lock().unwrap().get_mut(name) {
            svc.publish(event("exit", None, Some(code)));
        }
        format!("exited with code {code}")
    }

    fn failed_to_start(&self, name: &str, message: String) -> String {
        if let Some(svc) = self.by_name.lock().unwrap().get_mut(name) {
            svc.publish(event("error", Some(message.clone()), None));
        }
        message
    }

    /// Splits output into lines, each an event; the bytes also go to the
    /// service's log file of this stream.
    async fn pump_lines(&self, name: &str, kind: &str, fd: Fd) {
        let files = sprites_wire::services::service_log_files(name);
        let file = files.get(kind).map(|p| LogFile::writer(PathBuf::from(p)));
        let mut buf = vec![0u8; 16 * 1024];
        let mut line = Vec::new();
        let emit = |line: &mut Vec<u8>| {
            let text = String::from_utf8_lossy(line).into_owned();
            line.clear();
            if let Some(svc) = self.by_name.lock().unwrap().get_mut(name) {
                svc.publish(event(kind, Some(text), None));
            }
        };
        loop {
            let n = match fd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(file) = &file {
                // A disk that cannot keep up loses the file's copy, never
                // the service's output or init's own work.
                let _ = file.try_send(buf[..n].to_vec());
            }
            for &b in &buf[..n] {
                if b == b'\n' {
                    emit(&mut line);
                } else if line.len() < MAX_LINE {
                    line.push(b);
                }
            }
        }
        if !line.is_empty() {
            emit(&mut line);
        }
    }

    /// Stops it: SIGTERM to its process group, SIGKILL after `timeout`;
    /// returns once it is gone.
    async fn stop(&self, name: &str, timeout: Duration) -> Result<(), Reply> {
        let (pid, wake) = {
            let mut map = self.by_name.lock().unwrap();
            let svc = map
                .get_mut(name)
                .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no service {name}")))?;
            if !svc.wanted {
                return Ok(());
            }
            svc.wanted = false;
            svc.state.next_restart_at = None;
            let pid = svc.state.pid;
            if pid.is_some() {
                svc.state.status = "stopping".into();
                svc.publish(event("stopping", None, None));
            } else {
                svc.state.status = "stopped".into();
                svc.publish(event("stopped", None, None));
            }
            (pid, svc.wake.clone())
        };
        // A restart waiting out its backoff sees it is no longer wanted.
        wake.notify_waiters();
        let Some(pid) = pid else { return Ok(()) };
        let group = Pid::from_raw(-(pid as i32));
        let _ = kill(group, Signal::SIGTERM);
        let gone = |s: &Self| {
            s.by_name
                .lock()
                .unwrap()
                .get(name)
                .is_none_or(|svc| svc.state.pid.is_none())
        };
        let deadline = tokio::time::Instant::now() + timeout;
        while !gone(self) {
            if tokio::time::Instant::now() >= deadline {
                let _ = kill(group, Signal::SIGKILL);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), Reply> {
        {
            let map = self.by_name.lock().unwrap();
            if !map.contains_key(name) {
                return Err(refuse(ErrorKind::NotFound, format!("no service {name}")));
            }
            if let Some((other, _)) = map
                .iter()
                .find(|(_, s)| s.spec.needs.iter().any(|n| n == name))
            {
                return Err(refuse(
                    ErrorKind::Conflict,
                    format!("{other} needs {name}: delete or change it first"),
                ));
            }
        }
        self.stop(name, Duration::from_secs(10)).await?;
        match std::fs::remove_file(self.path(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(refuse(
                    ErrorKind::Invalid,
                    format!("cannot remove the definition: {e}"),
                ))
            }
        }
        self.by_name.lock().unwrap().remove(name);
        Ok(())
    }

    fn signal(&self, name: &str, signal: i32) -> Result<(), Reply> {
        let map = self.by_name.lock().unwrap();
        let svc = map
            .get(name)
            .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no service {name}")))?;
        let Some(pid) = svc.state.pid else {
            return Err(refuse(
                ErrorKind::Conflict,
                format!("{name} is not running"),
            ));
        };
        let sig = Signal::try_from(signal)
            .map_err(|_| refuse(ErrorKind::Invalid, format!("{signal} is not a signal")))?;
        let _ = kill(Pid::from_raw(-(pid as i32)), sig);
        Ok(())
    }
}

/// Whether `from` needs `target`, directly or through others.
/// A service's output kept in a file of the sprite's own disk, started
/// again once it reaches `SERVICE_LOG_MAX` with the previous part kept as
/// `<file>.1`. A write that fails (a full disk) loses only this copy.
struct LogFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
}

impl LogFile {
    /// A thread of its own that appends what it is sent to the file at
    /// `path` (init's runtime has one thread, which a slow disk must not
    /// hold); it ends when the sender is dropped.
    fn writer(path: PathBuf) -> std::sync::mpsc::SyncSender<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(256);
        let spawned = std::thread::Builder::new()
            .name("service-log".into())
            .spawn(move || {
                let mut file = LogFile::open(path);
                for data in rx {
                    file.append(&data);
                }
            });
        if let Err(e) = spawned {
            eprintln!("sprite-init: no thread for a service's log file: {e}");
        }
        tx
    }

    fn open(path: PathBuf) -> LogFile {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        LogFile { path, file, size }
    }

    fn append(&mut self, data: &[u8]) {
        use std::io::Write;
        if self.size >= sprites_wire::services::SERVICE_LOG_MAX {
            let mut previous = self.path.clone().into_os_string();
            previous.push(".1");
            let _ = std::fs::rename(&self.path, previous);
            *self = LogFile::open(self.path.clone());
        }
        if let Some(f) = &mut self.file {
            if f.write_all(data).is_ok() {
                self.size += data.len() as u64;
            }
        }
    }
}

fn depends_on(map: &BTreeMap<String, Svc>, from: &str, target: &str) -> bool {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if seen.insert(n, ()).is_some() {
            continue;
        }
        if let Some(s) = map.get(n) {
            stack.extend(s.spec.needs.iter().map(String::as_str));
        }
    }
    false
}

/// Writes a definition so that a crash leaves the old one or the new.
fn write_definition(dir: &Path, path: &Path, spec: &ServiceSpec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(spec).expect("specs serialize");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
