//! restart, upgrade and check: the way back for a sprite whose own
//! processes have taken all it may have (a fork bomb at its process limit,
//! memory), the way onto the host's current `sprite-init`, and the
//! question whether its init answers.
//!
//! upgrade: a sprite's init is the host's `sprite-init` file as it was
//! when the sandbox started (bound in, so replacing the file changes no
//! running sprite). Its identity then is kept beside the init socket; when
//! the file is no longer that one, the sprite restarts onto it (its disk
//! kept), otherwise nothing happens. A sprite asleep on disk takes the
//! current file when it wakes, so it is left asleep.
//!
//! restart, under the sprite's lock:
//! 1. the desired phase becomes Running (recorded first, as for a wake);
//! 2. every process stops: SIGTERM, [`RESTART_GRACE`], then SIGKILL to the
//!    whole sandbox, which does not need the sprite's own cooperation;
//! 3. the sandbox starts again on the same disk, its services with it.

use std::time::{Duration, Instant};

use sprites_wire::SpriteName;

use super::{wrong_phase, Desired, Host, Phase};
use crate::error::Result;
use crate::record;

/// How long a restart lets processes end by themselves.
pub const RESTART_GRACE: Duration = Duration::from_secs(1);

/// How long a check waits for the sprite's init to answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Marks a sprite as restarting while it lives: commands, sessions and
/// services asked meanwhile wait for the new init rather than meet the old
/// one going away.
struct Restarting<'a>(&'a Host, String);

impl<'a> Restarting<'a> {
    fn new(host: &'a Host, name: &SpriteName) -> Restarting<'a> {
        host.restarting.lock().unwrap().insert(name.to_string());
        Restarting(host, name.to_string())
    }
}

impl Drop for Restarting<'_> {
    fn drop(&mut self) {
        self.0.restarting.lock().unwrap().remove(&self.1);
    }
}

/// How a sprite answered a check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    pub phase: Phase,
    /// How long its init took to answer, when running and it did.
    pub elapsed: Option<Duration>,
    /// Why it is not well, in words.
    pub problem: Option<String>,
}

impl Host {
    /// Stops every process of the sprite and starts it again on the same
    /// disk. Allowed in every phase but Creating; a sleeping sprite comes
    /// back awake.
    pub async fn restart(&self, name: &SpriteName) -> Result<Phase> {
        let _guard = self.lock(name).await;
        let _restarting = Restarting::new(self, name);
        // A disk only in the bucket comes back first.
        self.fetch_locked(name).await?;
        let (paths, mut rec) = self.load(name)?;
        let phase = self.observe(name)?;
        if phase == Phase::Creating {
            return Err(wrong_phase("restart", phase));
        }
        rec.set_desired(Desired::Running);
        record::replace(&paths.record, &rec)?;
        self.stop_sandbox(name, RESTART_GRACE).await?;
        self.start_sandbox(name, &paths, &rec).await?;
        self.emit(name, Phase::Running);
        Ok(Phase::Running)
    }

    /// Puts the sprite onto the host's current `sprite-init` (see the
    /// module's doc); whether that took a restart.
    pub async fn upgrade(&self, name: &SpriteName) -> Result<bool> {
        self.load(name)?;
        let phase = self.observe(name)?;
        if !matches!(phase, Phase::Running | Phase::SleepingWarm) {
            return match phase {
                Phase::SleepingCold => Ok(false),
                _ => Err(wrong_phase("upgrade", phase)),
            };
        }
        let started = std::fs::read_to_string(self.init_identity_path(name)).ok();
        if started.is_some_and(|id| id == init_identity(&self.cfg.init_binary)) {
            return Ok(false);
        }
        self.restart(name).await?;
        Ok(true)
    }

    /// Where the identity of the init a running sprite started with is kept.
    pub(crate) fn init_identity_path(&self, name: &SpriteName) -> std::path::PathBuf {
        self.socket_path(name).with_extension("init")
    }

    /// Whether the sprite's init answers, and how fast; a sleeping sprite
    /// is left asleep and reported as it is.
    pub async fn check(&self, name: &SpriteName) -> Result<Check> {
        self.load(name)?;
        let phase = self.observe(name)?;
        if phase != Phase::Running {
            return Ok(Check {
                phase,
                elapsed: None,
                problem: None,
            });
        }
        let start = Instant::now();
        let problem = match tokio::time::timeout(CHECK_TIMEOUT, self.agent(name).ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("its init did not answer: {e}")),
            Err(_) => Some(format!(
                "its init did not answer within {} s",
                CHECK_TIMEOUT.as_secs()
            )),
        };
        // Not answering because it is up against a limit of its own: said
        // so, with the way out.
        let problem = match (&problem, self.runtime.exhausted(&self.sandbox_id(name))) {
            (Some(_), Ok(Some(limit))) => Some(crate::Error::Exhausted(limit).to_string()),
            _ => problem,
        };
        Ok(Check {
            phase,
            elapsed: problem.is_none().then(|| start.elapsed()),
            problem,
        })
    }
}

/// Which file `path` is: device, inode, size and change time; a file
/// replaced or rewritten is another. Empty when it cannot be read.
pub(crate) fn init_identity(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| {
            format!(
                "{}:{}:{}:{}.{}",
                m.dev(),
                m.ino(),
                m.size(),
                m.ctime(),
                m.ctime_nsec()
            )
        })
        .unwrap_or_default()
}
