//! What the replication tests share: a bucket prefix of each test's own in
//! the real Garage scripts/test starts, a second pool standing for another
//! machine, and Garage itself, stopped and started again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vmhost::replica::{Bucket, BucketConfig, ReplicaKey};
use vmhost::{CreateOptions, Host};

/// A bucket prefix of this test's own, so runs never see each other.
pub fn bucket(test: &str) -> Arc<Bucket> {
    let base = std::env::var("SPRITES_TEST_OBJECT_STORE")
        .expect("SPRITES_TEST_OBJECT_STORE is not set: run scripts/test, which starts Garage");
    let url = format!("{base}/{test}-{}-{}", std::process::id(), vmhost::now_ms());
    let cfg = BucketConfig {
        url,
        ..Default::default()
    };
    Arc::new(Bucket::open(&cfg, &test_key()).expect("open the bucket"))
}

/// "Another machine": a pool of its own in a fresh data directory, its own
/// run directory, no network of its own (the first host's sprites have it).
pub async fn second_host(test: &str, instance: &str, bucket: Arc<Bucket>) -> Host {
    let data = PathBuf::from(format!("{}-{test}", super::data_dir().display()));
    let mut cfg = super::config(instance);
    vmhost::testing::fresh_data_dir(&data).unwrap();
    cfg.data_dir = data;
    cfg.run_dir = PathBuf::from(format!("{}-{test}", super::run_dir().display()));
    cfg.pool_image_size = 8 << 30;
    cfg.egress = false;
    cfg.bucket = Some(bucket);
    Host::open(cfg).await.expect("open the second host")
}

pub fn test_key() -> ReplicaKey {
    ReplicaKey::load_or_create(&key_file()).unwrap().0
}

pub fn key_file() -> PathBuf {
    std::env::temp_dir().join("sprites-test-replica.key")
}

/// A host of the shared test pool with the bucket, busybox by default.
pub async fn first_host(instance: &str, bucket: &Arc<Bucket>) -> Host {
    let mut cfg = super::config(instance);
    cfg.bucket = Some(bucket.clone());
    cfg.default_image = "busybox".into();
    vmhost::testing::host_with(cfg).await
}

pub fn busybox() -> CreateOptions {
    CreateOptions {
        image: Some("busybox".into()),
        ..Default::default()
    }
}

/// The host of `instance` with the bucket, its sprites kept.
pub async fn first_host_keeping(instance: &str, bucket: &Arc<Bucket>) -> Host {
    let mut cfg = super::config(instance);
    cfg.bucket = Some(bucket.clone());
    cfg.default_image = "busybox".into();
    Host::open(cfg).await.unwrap()
}

/// Garage, stopped and started again by the test: scripts/garage's pid
/// file then names the new one, which the suite's end stops.
pub struct Garage {
    dir: PathBuf,
    command: String,
}

impl Garage {
    pub fn from_env() -> Garage {
        Garage {
            dir: PathBuf::from(std::env::var("GARAGE_DIR").expect("GARAGE_DIR: run scripts/test")),
            command: std::env::var("GARAGE").expect("GARAGE: run scripts/test"),
        }
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    pub fn stop(&self) {
        let pid = self.pid();
        // SAFETY: a plain kill(2) of the Garage the suite started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.split(' ').nth(2) == Some("Z") {
                break; // gone, waiting for its parent to reap it
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn start(&self) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        // Outlives this test on purpose: the suite's end stops it by its pid
        // file, after this process (its parent) is gone.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec {} server", self.command))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        std::fs::write(self.dir.join("pid"), child.id().to_string()).unwrap();
        for _ in 0..100 {
            let up = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{} status >/dev/null 2>&1", self.command))
                .status()
                .unwrap();
            if up.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Garage did not start again");
    }
}

pub async fn wait_for(
    a: &Host,
    s: &vmhost::SpriteName,
    what: &str,
    done: impl Fn(&vmhost::replica::Replication) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let r = a.replication(s).unwrap();
        if done(&r) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never {what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
