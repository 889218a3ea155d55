//! runc as the sandbox runtime.
//!
//! Start: write the bundle's `config.json`, then `runc run --detach
//! --preserve-fds 1` with the init socket as fd 3 and the sprite's log as
//! stdio; runc returns once `sprite-init` runs, and the sandbox lives on
//! without us (runc leaves no shim behind). Status is read from runc's own
//! `state.json` and `/proc`, without spawning runc, so it is cheap enough for
//! every request; freeze and thaw write the cgroup freezer directly.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{oci, Runtime, SandboxSpec, SandboxStatus};
use crate::cgroup::Freezer;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Runc {
    /// runc's state directory (`--root`).
    root: PathBuf,
    /// Where bundles are written.
    bundles: PathBuf,
    binary: PathBuf,
}

impl Runc {
    pub fn new(run_dir: &Path) -> Result<Runc> {
        let root = run_dir.join("runc");
        let bundles = run_dir.join("bundles");
        for d in [&root, &bundles] {
            fs::create_dir_all(d).map_err(|e| Error::path("cannot create", d, e))?;
        }
        Ok(Runc {
            root,
            bundles,
            binary: PathBuf::from("runc"),
        })
    }

    fn runc(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    fn state(&self, id: &str) -> Result<Option<Value>> {
        let path = self.root.join(id).join("state.json");
        match fs::read(&path) {
            Ok(data) => Ok(serde_json::from_slice(&data).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::path("cannot read runc state", path, e)),
        }
    }

    fn freezer(&self, id: &str) -> Result<Freezer> {
        let state = self
            .state(id)?
            .ok_or_else(|| Error::Runtime(format!("sandbox {id} does not exist")))?;
        let paths = &state["cgroup_paths"];
        if let Some(p) = paths["freezer"].as_str() {
            return Ok(Freezer::V1(PathBuf::from(p)));
        }
        if let Some(p) = paths[""].as_str() {
            return Ok(Freezer::V2(PathBuf::from(p)));
        }
        Err(Error::Runtime(format!(
            "sandbox {id} has no freezer cgroup"
        )))
    }

    fn run_cmd(&self, args: &[&str]) -> Result<()> {
        let out = self
            .runc()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Spawn("runc".into(), e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Runtime(format!(
                "runc {}: {}",
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
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stop_blocking(&self, id: &str, grace: Duration) -> Result<()> {
        let gone = |s| matches!(s, SandboxStatus::Stopped | SandboxStatus::Absent);
        match self.status(id)? {
            SandboxStatus::Absent => return Ok(()),
            // Signals to a frozen cgroup stay pending: thaw first.
            SandboxStatus::Frozen => self.thaw(id)?,
            _ => {}
        }
        if !grace.is_zero() && self.status(id)? == SandboxStatus::Running {
            let _ = self.run_cmd(&["kill", id, "TERM"]);
            self.wait_until(id, grace, gone)?;
        }
        if self.status(id)? == SandboxStatus::Running {
            let _ = self.run_cmd(&["kill", id, "KILL"]);
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
        let cgroup = format!("/sprites/{}", spec.id);
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
        let mut cmd = self.runc();
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
        crate::failpoint::step("runc.run");
        let status = cmd
            .status()
            .map_err(|e| Error::Spawn("runc".into(), e.to_string()))?;
        crate::failpoint::step("runc.ran");
        if !status.success() {
            let detail = log_tail(&spec.log_path, log_start);
            let _ = self.run_cmd(&["delete", "--force", &spec.id]);
            return Err(Error::Runtime(format!("runc run {}: {}", spec.id, detail)));
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

/// Whether `pid` is alive and is the process runc started (same start time).
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

#[async_trait::async_trait]
impl Runtime for Runc {
    fn name(&self) -> &'static str {
        "runc"
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<()> {
        // runc blocks until init runs, a few milliseconds.
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
        let Some(state) = self.state(id)? else {
            return Ok(SandboxStatus::Absent);
        };
        let pid = state["init_process_pid"].as_i64().unwrap_or(0);
        let start = state["init_process_start"].as_u64().unwrap_or(0);
        if pid <= 0 || !init_alive(pid, start) {
            return Ok(SandboxStatus::Stopped);
        }
        match self.freezer(id).and_then(|f| {
            f.is_frozen()
                .map_err(|e| Error::io("cannot read freezer", e))
        }) {
            Ok(true) => Ok(SandboxStatus::Frozen),
            _ => Ok(SandboxStatus::Running),
        }
    }

    fn freeze(&self, id: &str) -> Result<()> {
        self.freezer(id)?
            .set(true)
            .map_err(|e| Error::io(format!("cannot freeze {id}"), e))
    }

    fn thaw(&self, id: &str) -> Result<()> {
        self.freezer(id)?
            .set(false)
            .map_err(|e| Error::io(format!("cannot thaw {id}"), e))
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
