//! An OCI runtime driven through its command line: crun (the default, about
//! 8 ms to start a sandbox here) or runc (about 30 ms). Both take the same
//! bundle and the same verbs.
//!
//! Start: write the bundle's `config.json`, then `run --detach
//! --preserve-fds 1` with the init socket as fd 3 and the sprite's log as
//! stdio; the runtime returns once `sprite-init` runs, and the sandbox lives
//! on without us (no shim stays behind). Status is read from the runtime's
//! own state file and `/proc`, without spawning anything, so it is cheap
//! enough for every request; freeze and thaw write the cgroup freezer.
//!
//! Hybrid cgroup hosts (v1 controllers plus an empty cgroup2 tree at
//! `/sys/fs/cgroup/unified`) are refused by crun. There, each crun command
//! runs in a private mount namespace of its own in which that cgroup2 mount
//! is detached, so crun sees, and manages, a plain v1 host. The sandbox's
//! isolation is still crun's, from the same configuration.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{oci, Runtime, SandboxSpec, SandboxStatus};
use crate::cgroup::Freezer;
use crate::error::{Error, Exhausted, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Crun,
    Runc,
}

impl std::str::FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Flavor, String> {
        match s {
            "crun" => Ok(Flavor::Crun),
            "runc" => Ok(Flavor::Runc),
            other => Err(format!("unknown runtime {other:?}: use crun or runc")),
        }
    }
}

impl Flavor {
    fn binary(self) -> &'static str {
        match self {
            Flavor::Crun => "crun",
            Flavor::Runc => "runc",
        }
    }
}

/// How the host's cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    V1 { hybrid: bool },
    V2,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const UNIFIED: &str = "/sys/fs/cgroup/unified";

impl Layout {
    fn detect() -> Layout {
        let is_v2 = |p: &str| {
            nix::sys::statfs::statfs(p)
                .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
                .unwrap_or(false)
        };
        if is_v2("/sys/fs/cgroup") {
            Layout::V2
        } else {
            Layout::V1 {
                hybrid: is_v2(UNIFIED),
            }
        }
    }
}

/// What the runtime recorded about a sandbox, and whether its init lives.
#[derive(Clone)]
struct Recorded {
    pid: i64,
    start: u64,
    freezer: Option<Freezer>,
    alive: bool,
    /// A pidfd of the live init: asking whether it has exited is one
    /// `poll`, where reading `/proc` is an open, a read and a parse.
    pidfd: Option<Arc<OwnedFd>>,
}

#[derive(Clone)]
pub struct OciCli {
    flavor: Flavor,
    layout: Layout,
    /// The runtime's state directory (`--root`).
    root: PathBuf,
    /// Where bundles are written.
    bundles: PathBuf,
    /// The cgroup the sandboxes' cgroups go under: named after the run
    /// directory (`/run/sprites`: `/sprites`), so hosts of one cluster
    /// that share a machine and an instance name (tests) keep their
    /// sandboxes' cgroups apart.
    cgroup_parent: String,
    /// The records of sandboxes whose init was alive when last read. A
    /// record stays true while that same process (pid and start time)
    /// lives, so the state file is parsed once per start, not per request.
    live: Arc<Mutex<HashMap<String, Recorded>>>,
    /// Whether each sandbox is frozen, and since when that is known: set
    /// exactly by our own freeze and thaw, read again from the cgroup at
    /// most every [`FROZEN_FRESH`] (another process may freeze a sandbox).
    /// Status is asked on every proxied request; the freezer file costs an
    /// open, a stat, a read and a close.
    frozen: Arc<Mutex<HashMap<String, (bool, Instant)>>>,
}

const FROZEN_FRESH: Duration = Duration::from_secs(1);

impl OciCli {
    pub fn new(flavor: Flavor, run_dir: &Path) -> Result<OciCli> {
        let root = run_dir.join(flavor.binary());
        let bundles = run_dir.join("bundles");
        for d in [&root, &bundles] {
            fs::create_dir_all(d).map_err(|e| Error::path("cannot create", d, e))?;
        }
        let cgroup_parent = run_dir
            .file_name()
            .map_or_else(|| "sprites".into(), |n| n.to_string_lossy().into_owned());
        Ok(OciCli {
            flavor,
            layout: Layout::detect(),
            root,
            bundles,
            cgroup_parent,
            live: Arc::default(),
            frozen: Arc::default(),
        })
    }

    /// The runtime command, made to see a plain v1 host where it must.
    fn command(&self) -> Command {
        let mut c = Command::new(self.flavor.binary());
        c.arg("--root").arg(&self.root);
        if self.flavor == Flavor::Crun && self.layout == (Layout::V1 { hybrid: true }) {
            // SAFETY: only unshare, mount and umount2 run between fork and exec.
            unsafe {
                c.pre_exec(|| {
                    if libc::unshare(libc::CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // Private first, so the detach below stays in this namespace.
                    let root = c"/";
                    if libc::mount(
                        std::ptr::null(),
                        root.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    let unified = c"/sys/fs/cgroup/unified";
                    if libc::umount2(unified.as_ptr(), libc::MNT_DETACH) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c
    }

    fn recorded(&self, id: &str) -> Result<Option<Recorded>> {
        let known = self.live.lock().unwrap().get(id).cloned();
        if let Some(rec) = known.filter(|r| r.pidfd.as_deref().is_some_and(|fd| !exited(fd))) {
            return Ok(Some(rec));
        }
        let rec = self.read_record(id)?;
        // Another process (or none): what was known of its freezer is void.
        self.frozen.lock().unwrap().remove(id);
        let mut live = self.live.lock().unwrap();
        match &rec {
            Some(r) if r.alive => live.insert(id.to_string(), r.clone()),
            _ => live.remove(id),
        };
        Ok(rec)
    }

    fn read_record(&self, id: &str) -> Result<Option<Recorded>> {
        let file = match self.flavor {
            Flavor::Runc => "state.json",
            Flavor::Crun => "status",
        };
        let path = self.root.join(id).join(file);
        let state: Value = match fs::read(&path) {
            Ok(data) => match serde_json::from_slice(&data) {
                Ok(v) => v,
                // Being written by the runtime right now.
                Err(_) => {
                    return Ok(Some(Recorded {
                        pid: 0,
                        start: 0,
                        freezer: None,
                        alive: false,
                        pidfd: None,
                    }))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::path("cannot read runtime state", path, e)),
        };
        let mut rec = match self.flavor {
            Flavor::Runc => {
                let paths = &state["cgroup_paths"];
                let freezer = paths["freezer"]
                    .as_str()
                    .map(|p| Freezer::V1(p.into()))
                    .or_else(|| paths[""].as_str().map(|p| Freezer::V2(p.into())));
                Recorded {
                    pid: state["init_process_pid"].as_i64().unwrap_or(0),
                    start: state["init_process_start"].as_u64().unwrap_or(0),
                    freezer,
                    alive: false,
                    pidfd: None,
                }
            }
            Flavor::Crun => {
                let rel = state["cgroup-path"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/');
                let freezer = (!rel.is_empty()).then(|| match self.layout {
                    Layout::V1 { .. } => Freezer::V1(Path::new("/sys/fs/cgroup/freezer").join(rel)),
                    Layout::V2 => Freezer::V2(Path::new("/sys/fs/cgroup").join(rel)),
                });
                Recorded {
                    pid: state["pid"].as_i64().unwrap_or(0),
                    start: state["process-start-time"].as_u64().unwrap_or(0),
                    freezer,
                    alive: false,
                    pidfd: None,
                }
            }
        };
        rec.alive = rec.pid > 0 && init_alive(rec.pid, rec.start);
        if rec.alive {
            // Checked again once the pidfd is open: the pid was not reused
            // between the first look and the open.
            rec.pidfd = pidfd_open(rec.pid)
                .filter(|_| init_alive(rec.pid, rec.start))
                .map(Arc::new);
        }
        Ok(Some(rec))
    }

    fn note_frozen(&self, id: &str, frozen: bool) {
        self.frozen
            .lock()
            .unwrap()
            .insert(id.to_string(), (frozen, Instant::now()));
    }

    /// The sandbox's cgroup, relative to a controller's root.
    fn cgroup(&self, id: &str) -> Result<Option<PathBuf>> {
        Ok(self.recorded(id)?.and_then(|r| r.freezer).map(|f| match f {
            Freezer::V1(p) => p
                .strip_prefix("/sys/fs/cgroup/freezer")
                .map(Path::to_path_buf)
                .unwrap_or(p),
            Freezer::V2(p) => p
                .strip_prefix("/sys/fs/cgroup")
                .map(Path::to_path_buf)
                .unwrap_or(p),
        }))
    }

    fn freezer(&self, id: &str) -> Result<Freezer> {
        self.recorded(id)?
            .and_then(|r| r.freezer)
            .ok_or_else(|| Error::Runtime(format!("sandbox {id} has no freezer cgroup")))
    }

    fn run_cmd(&self, args: &[&str]) -> Result<()> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Spawn(self.flavor.binary().into(), e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Runtime(format!(
                "{} {}: {}",
                self.flavor.binary(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn wait_until(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(SandboxStatus) -> bool,
    ) -> Result<bool> {
        let start = Instant::now();
        loop {
            if done(self.status(id)?) {
                return Ok(true);
            }
            if start.elapsed() > timeout {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Signals the sandbox's init directly: ending PID 1 of a pid
    /// namespace ends every process in it, and a signal saves spawning the
    /// runtime just to send one.
    fn signal_init(&self, id: &str, sig: nix::sys::signal::Signal) -> Result<()> {
        if let Some(pid) = self.init_pid(id)? {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
        Ok(())
    }

    fn stop_blocking(&self, id: &str, grace: Duration) -> Result<()> {
        use nix::sys::signal::Signal;
        let gone = |s| matches!(s, SandboxStatus::Stopped | SandboxStatus::Absent);
        match self.status(id)? {
            SandboxStatus::Absent => return Ok(()),
            // Signals to a frozen cgroup stay pending: thaw first.
            SandboxStatus::Frozen => self.thaw(id)?,
            _ => {}
        }
        if !grace.is_zero() && self.status(id)? == SandboxStatus::Running {
            self.signal_init(id, Signal::SIGTERM)?;
            self.wait_until(id, grace, gone)?;
        }
        if self.status(id)? == SandboxStatus::Running {
            self.signal_init(id, Signal::SIGKILL)?;
            if !self.wait_until(id, Duration::from_secs(10), gone)? {
                return Err(Error::Runtime(format!("sandbox {id} did not stop")));
            }
        }
        if self.status(id)? != SandboxStatus::Absent {
            self.run_cmd(&["delete", "--force", id])?;
        }
        let _ = fs::remove_dir_all(self.bundles.join(id));
        Ok(())
    }

    fn start_blocking(&self, spec: &SandboxSpec) -> Result<()> {
        let bundle = self.bundles.join(&spec.id);
        fs::create_dir_all(&bundle).map_err(|e| Error::path("cannot create", &bundle, e))?;
        let cgroup = format!("/{}/{}", self.cgroup_parent, spec.id);
        let config = oci::config(spec, &cgroup);
        let cfg_path = bundle.join("config.json");
        fs::write(
            &cfg_path,
            serde_json::to_vec(&config).expect("config serializes"),
        )
        .map_err(|e| Error::path("cannot write", &cfg_path, e))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|e| Error::path("cannot open", &spec.log_path, e))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let socket = spec.init_socket.as_raw_fd();
        let mut cmd = self.command();
        cmd.args(["run", "--detach", "--preserve-fds", "1", "--bundle"])
            .arg(&bundle)
            .arg(&spec.id)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| Error::io("cannot dup log", e))?,
            )
            .stderr(log);
        // SAFETY: only dup2 and fcntl run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if socket == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(socket, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        crate::failpoint::step("runtime.run");
        let status = cmd
            .status()
            .map_err(|e| Error::Spawn(self.flavor.binary().into(), e.to_string()))?;
        crate::failpoint::step("runtime.ran");
        if !status.success() {
            let detail = log_tail(&spec.log_path, log_start);
            let _ = self.run_cmd(&["delete", "--force", &spec.id]);
            return Err(Error::Runtime(format!(
                "{} run {}: {}",
                self.flavor.binary(),
                spec.id,
                detail
            )));
        }
        Ok(())
    }
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.take(4096).read_to_string(&mut s);
    }
    s.trim().to_string()
}

/// Whether `pid` is alive and is the process the runtime started (same start time).
fn init_alive(pid: i64, start: u64) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the command name, which may itself contain spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3), fields[19] the start time (field 22).
    let zombie = fields.first() == Some(&"Z") || fields.first() == Some(&"X");
    !zombie && fields.get(19).and_then(|s| s.parse::<u64>().ok()) == Some(start)
}

fn pidfd_open(pid: i64) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable then).
fn exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    !matches!(
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO),
        Ok(0)
    )
}

#[async_trait::async_trait]
impl Runtime for OciCli {
    fn exhausted(&self, id: &str) -> Result<Option<Exhausted>> {
        let Some(rel) = self.cgroup(id)? else {
            return Ok(None);
        };
        let root = Path::new("/sys/fs/cgroup");
        Ok(match self.layout {
            Layout::V1 { .. } => {
                let (pids, mem) = (root.join("pids").join(&rel), root.join("memory").join(&rel));
                Exhausted::read(
                    (&pids.join("pids.current"), &pids.join("pids.max")),
                    (
                        &mem.join("memory.usage_in_bytes"),
                        &mem.join("memory.limit_in_bytes"),
                    ),
                )
            }
            Layout::V2 => {
                let dir = root.join(&rel);
                Exhausted::read(
                    (&dir.join("pids.current"), &dir.join("pids.max")),
                    (&dir.join("memory.current"), &dir.join("memory.max")),
                )
            }
        })
    }

    fn set_memory(&self, id: &str, bytes: u64) -> Result<()> {
        let rel = self
            .cgroup(id)?
            .ok_or_else(|| Error::Runtime(format!("sandbox {id} has no cgroup")))?;
        let root = Path::new("/sys/fs/cgroup");
        let write = |file: &Path, value: u64| {
            fs::write(file, value.to_string()).map_err(|e| match e.raw_os_error() {
                // cgroup v1 lowers a limit only as far as it can reclaim.
                Some(libc::EBUSY) => Error::Invalid(format!(
                    "the sprite uses more than {} MiB now: end what uses it, or restart it, \
                     then lower its limit",
                    value >> 20
                )),
                _ => Error::path("cannot set the memory limit", file, e),
            })
        };
        let read =
            |file: &Path| -> Option<u64> { fs::read_to_string(file).ok()?.trim().parse().ok() };
        match self.layout {
            Layout::V2 => write(&root.join(&rel).join("memory.max"), bytes),
            Layout::V1 { .. } => {
                let dir = root.join("memory").join(&rel);
                let limit = dir.join("memory.limit_in_bytes");
                let with_swap = dir.join("memory.memsw.limit_in_bytes");
                let now = read(&limit).unwrap_or(0);
                // Memory plus swap keeps its headroom over memory alone
                // (none to keep when it is unlimited), and is never under
                // it: raised first, lowered last.
                let swap = read(&with_swap)
                    .filter(|s| *s < 1 << 62)
                    .map(|s| bytes + s.saturating_sub(now));
                match swap {
                    Some(swap) if bytes > now => {
                        write(&with_swap, swap)?;
                        write(&limit, bytes)
                    }
                    Some(swap) => {
                        write(&limit, bytes)?;
                        write(&with_swap, swap)
                    }
                    None => write(&limit, bytes),
                }
            }
        }
    }

    fn name(&self) -> &'static str {
        self.flavor.binary()
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<()> {
        // The runtime blocks until init runs, a few milliseconds.
        let this = self.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || this.start_blocking(&spec))
            .await
            .map_err(|e| Error::Runtime(format!("start task failed: {e}")))?
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let this = self.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || this.stop_blocking(&id, grace))
            .await
            .map_err(|e| Error::Runtime(format!("stop task failed: {e}")))?
    }

    fn status(&self, id: &str) -> Result<SandboxStatus> {
        let Some(rec) = self.recorded(id)? else {
            return Ok(SandboxStatus::Absent);
        };
        if !rec.alive {
            return Ok(SandboxStatus::Stopped);
        }
        let Some(freezer) = rec.freezer else {
            return Ok(SandboxStatus::Running);
        };
        let known = self
            .frozen
            .lock()
            .unwrap()
            .get(id)
            .filter(|(_, at)| at.elapsed() < FROZEN_FRESH)
            .map(|(frozen, _)| *frozen);
        let frozen = match known {
            Some(frozen) => frozen,
            None => {
                let frozen = freezer.is_frozen().unwrap_or(false);
                self.note_frozen(id, frozen);
                frozen
            }
        };
        Ok(if frozen {
            SandboxStatus::Frozen
        } else {
            SandboxStatus::Running
        })
    }

    fn init_pid(&self, id: &str) -> Result<Option<i32>> {
        Ok(self.recorded(id)?.filter(|r| r.alive).map(|r| r.pid as i32))
    }

    fn freeze(&self, id: &str) -> Result<()> {
        self.frozen.lock().unwrap().remove(id);
        self.freezer(id)?
            .set(true)
            .map_err(|e| Error::io(format!("cannot freeze {id}"), e))?;
        self.note_frozen(id, true);
        Ok(())
    }

    fn thaw(&self, id: &str) -> Result<()> {
        self.frozen.lock().unwrap().remove(id);
        self.freezer(id)?
            .set(false)
            .map_err(|e| Error::io(format!("cannot thaw {id}"), e))?;
        self.note_frozen(id, false);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries =
            fs::read_dir(&self.root).map_err(|e| Error::path("cannot list", &self.root, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(prefix) {
                ids.push(name);
            }
        }
        Ok(ids)
    }
}
