//! Support for tests that need a real host (root, btrfs, a runtime, the
//! Debian image): the shared test pool, one instance per test, images built
//! once, leftovers of an earlier run of the same test removed. Used by the
//! integration tests of vmhost, the server and the CLI. Without root it
//! fails loudly rather than skip.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::image::Recipe;
pub use crate::pool::fresh_data_dir;
use crate::{Host, HostConfig, SpriteName};

/// The shared test pool (`SPRITES_TEST_DATA_DIR`, default `/var/tmp/sprites-test`).
pub fn data_dir() -> PathBuf {
    std::env::var_os("SPRITES_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/sprites-test"))
}

pub fn run_dir() -> PathBuf {
    PathBuf::from("/run/sprites-test")
}

pub fn mirror() -> String {
    std::env::var("SPRITES_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

/// The configuration of test instance `instance`.
pub fn config(instance: &str) -> HostConfig {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests of real sprites need root: run scripts/test as root"
    );
    let mut cfg = HostConfig::new(data_dir());
    cfg.run_dir = run_dir();
    cfg.instance = instance.to_string();
    cfg.stop_grace = std::time::Duration::from_millis(500);
    cfg
}

static IMAGES: OnceLock<()> = OnceLock::new();

/// The host of `instance`, with the images built and no sprites left over.
pub async fn host(instance: &str) -> Host {
    host_with(config(instance)).await
}

/// [`host`] with a configuration of the test's own.
pub async fn host_with(cfg: HostConfig) -> Host {
    let host = Host::open(cfg).await.expect("open the test host");
    IMAGES.get_or_init(|| {
        let mut progress = |l: &str| eprintln!("image: {l}");
        host.ensure_image("busybox", &Recipe::busybox(), &mut progress)
            .expect("busybox image");
        host.ensure_image("debian", &Recipe::debian(&mirror()), &mut progress)
            .expect("debian image");
    });
    // Leftovers of a host with a lease are fenced at start: held first.
    let leftovers: Vec<SpriteName> = host
        .list()
        .expect("list sprites")
        .iter()
        .filter_map(|s| SpriteName::parse(&s.name).ok())
        .collect();
    host.hold(&leftovers, crate::now_ms())
        .await
        .expect("hold the leftovers");
    destroy_all(&host).await;
    host
}

/// A real host answered by [`crate::remote::serve`] on a loopback port, as
/// a host daemon of a cluster would, until stopped.
pub struct Served {
    pub local: std::sync::Arc<Host>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// `host` served as host `name` of the cluster of authority `ca`, its
/// lease kept (when it has one).
pub async fn serve(ca: &crate::cluster::ClusterCa, host: Host, name: &str) -> Served {
    let local = std::sync::Arc::new(host);
    Host::spawn_lease_keeper(&local);
    serve_at(ca, local, name, "127.0.0.1:0").await
}

/// `local` served as host `name` on `addr` (`127.0.0.1:0`: any port): a
/// host that comes back where it was.
pub async fn serve_at(
    ca: &crate::cluster::ClusterCa,
    local: std::sync::Arc<Host>,
    name: &str,
    addr: &str,
) -> Served {
    let acceptor = ca
        .issue(crate::cluster::Role::Host, name)
        .and_then(|me| me.acceptor())
        .expect("a host identity");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let verbs: std::sync::Arc<dyn crate::Verbs> = local.clone();
    let serving = tokio::spawn(crate::remote::serve(listener, acceptor, verbs, async {
        let _ = stopped.await;
    }));
    Served {
        local,
        addr,
        stop: Some(stop),
        serving,
    }
}

impl Served {
    /// Stops answering, every connection with it; the host keeps running.
    pub async fn stop(&mut self) {
        let _ = self.stop.take().expect("still served").send(());
        (&mut self.serving)
            .await
            .expect("the daemon's task")
            .expect("the daemon ended cleanly");
    }
}

/// Kills every sandbox of the host at once, as a machine's death would:
/// their records still say how they should run.
pub async fn kill_sandboxes(host: &Host) {
    for s in host.list().expect("list sprites") {
        let name = SpriteName::parse(&s.name).expect("listed names are valid");
        let id = host.sandbox_id(&name);
        host.runtime()
            .stop(&id, std::time::Duration::ZERO)
            .await
            .expect("kill");
    }
}

/// Destroys every sprite of the host.
pub async fn destroy_all(host: &dyn crate::Verbs) {
    for s in host.list().await.expect("list sprites") {
        let name = SpriteName::parse(&s.name).expect("listed names are valid");
        host.destroy(&name).await.expect("destroy");
    }
}

/// A small root file system as `tar -C DIR -c .` makes it: busybox, its
/// shell and `cat`, `/etc/passwd`, `/etc/motd` saying `motd`, and, with
/// `extra`, one more entry of that path and kind.
pub fn root_archive(motd: &str, extra: Option<(&str, tar::EntryType)>) -> Vec<u8> {
    use tar::EntryType::{Directory, Regular, Symlink};
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |kind: tar::EntryType, path: &str, mode: u32, data: &[u8], link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_path(path).expect("a valid path");
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if !link.is_empty() {
            h.set_link_name(link).expect("a valid link");
        }
        h.set_cksum();
        b.append(&h, data).expect("an archive in memory");
    };
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static installed");
    add(Directory, "bin", 0o755, b"", "");
    add(Regular, "bin/busybox", 0o755, &busybox, "");
    add(Symlink, "bin/sh", 0o777, b"", "busybox");
    add(Symlink, "bin/cat", 0o777, b"", "busybox");
    add(Directory, "etc", 0o755, b"", "");
    add(
        Regular,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
        "",
    );
    add(Regular, "etc/motd", 0o644, motd.as_bytes(), "");
    add(Directory, "root", 0o700, b"", "");
    if let Some((path, kind)) = extra {
        add(kind, path, 0o600, b"", "");
    }
    b.into_inner().expect("an archive in memory")
}
