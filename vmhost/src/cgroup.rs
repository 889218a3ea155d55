//! The cgroup freezer, on cgroup v1 (`freezer.state`) and v2
//! (`cgroup.freeze`). Freezing is asynchronous in the kernel: we write the
//! request, then re-read the state until it is reached. On v2 we poll
//! `cgroup.events` rather than wait for its change notification, which the
//! kernel rate-limits to about 12 ms.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Freezer {
    pub fn set(&self, frozen: bool) -> io::Result<()> {
        self.set_within(frozen, FREEZE_TIMEOUT)
    }

    /// Requests the state and waits at most `timeout` for the kernel to reach it.
    pub fn set_within(&self, frozen: bool, timeout: Duration) -> io::Result<()> {
        match self {
            Freezer::V1(dir) => {
                let want = if frozen { "FROZEN" } else { "THAWED" };
                fs::write(dir.join("freezer.state"), want)?;
                wait_for(timeout, || {
                    Ok(read(&dir.join("freezer.state"))?.trim() == want)
                })
            }
            Freezer::V2(dir) => {
                fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                wait_for(timeout, || {
                    Ok(read(&dir.join("cgroup.events"))?.lines().any(|l| l == want))
                })
            }
        }
    }

    pub fn is_frozen(&self) -> io::Result<bool> {
        match self {
            Freezer::V1(dir) => Ok(read(&dir.join("freezer.state"))?.trim() != "THAWED"),
            Freezer::V2(dir) => Ok(read(&dir.join("cgroup.events"))?
                .lines()
                .any(|l| l == "frozen 1")),
        }
    }
}

fn read(p: &Path) -> io::Result<String> {
    fs::read_to_string(p)
}

fn wait_for(timeout: Duration, mut reached: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    while !reached()? {
        if start.elapsed() > timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "freezer did not settle",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The kernel side is exercised for real by the integration tests; these
    // check the file protocol of each version on a directory that plays the
    // kernel's part.

    #[test]
    fn v1_writes_the_state_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("freezer.state"), "THAWED\n").unwrap();
        let f = Freezer::V1(dir.path().to_path_buf());
        assert!(!f.is_frozen().unwrap());
        f.set(true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("freezer.state")).unwrap(),
            "FROZEN"
        );
        assert!(f.is_frozen().unwrap());
    }

    #[test]
    fn v2_requests_through_cgroup_freeze_and_waits_on_cgroup_events() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        let f = Freezer::V2(dir.path().to_path_buf());
        f.set(true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("cgroup.freeze")).unwrap(),
            "1"
        );
        assert!(f.is_frozen().unwrap());
    }

    #[test]
    fn a_freezer_that_never_settles_times_out() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let err = Freezer::V2(dir.path().to_path_buf())
            .set_within(true, Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
