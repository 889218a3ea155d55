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
        match self {
            Freezer::V1(dir) => {
                let want = if frozen { "FROZEN" } else { "THAWED" };
                fs::write(dir.join("freezer.state"), want)?;
                wait_for(|| Ok(read(&dir.join("freezer.state"))?.trim() == want))
            }
            Freezer::V2(dir) => {
                fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                wait_for(|| Ok(read(&dir.join("cgroup.events"))?.lines().any(|l| l == want)))
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

fn wait_for(mut reached: impl FnMut() -> io::Result<bool>) -> io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    while !reached()? {
        if start.elapsed() > FREEZE_TIMEOUT {
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
