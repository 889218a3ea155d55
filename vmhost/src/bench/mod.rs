//! `vmhost bench`: each operation's median and p95 over many runs, next to
//! its floor measured in the same run on the same machine:
//!
//! - snapshot: the raw btrfs snapshot ioctl of the Debian image;
//! - clone+exec: a raw clone() into new mount, pid, uts, ipc and net
//!   namespaces that execs /bin/true, waited for;
//! - freezer: the raw cgroup freeze and thaw of a running sprite.
//!
//! Later features add their rows here, so one command shows them all.

use std::ffi::CString;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

mod remote;
pub mod table;

pub use table::{print_table, row, Row, Samples};

use crate::image::Recipe;
use crate::{btrfs, CreateOptions, Host, HostConfig, SpriteName};

fn name(s: &str) -> SpriteName {
    SpriteName::parse(s).expect("bench names are valid")
}

/// A raw namespaced clone that execs /bin/true, waited for.
fn clone_exec() -> anyhow::Result<Duration> {
    let prog = CString::new("/bin/true")?;
    let argv = [prog.clone()];
    let mut stack = vec![0u8; 256 * 1024];
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    let start = Instant::now();
    // SAFETY: the child only calls execv (or returns), touching nothing shared.
    let pid = unsafe {
        nix::sched::clone(
            Box::new(|| {
                let _ = nix::unistd::execv(&prog, &argv);
                127
            }),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }?;
    nix::sys::wait::waitpid(pid, None)?;
    Ok(start.elapsed())
}

/// Runs not counted before each measurement, so caches (the runtime's
/// binary, the image's metadata) are as warm as on a busy server.
const WARMUP: usize = 2;

/// Times `runs` calls of `f` after [`WARMUP`] uncounted ones; `f` gets the
/// call's index, warm-up calls included.
async fn time<F, Fut, T>(runs: usize, mut f: F) -> anyhow::Result<Samples>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut v = Vec::with_capacity(runs);
    for i in 0..runs + WARMUP {
        let start = Instant::now();
        f(i).await?;
        if i >= WARMUP {
            v.push(start.elapsed());
        }
    }
    Ok(Samples(v))
}

async fn exec_ready(host: &Host, s: &SpriteName) -> anyhow::Result<()> {
    let out = host.run(s, &["true"], b"").await?;
    anyhow::ensure!(out.code == 0, "true failed in {s}");
    Ok(())
}

async fn clear(host: &Host) -> anyhow::Result<()> {
    for s in host.list()? {
        host.destroy(&name(&s.name)).await?;
    }
    Ok(())
}

/// Runs the benchmark in its own instance of the pool of `cfg`.
pub async fn run(mut cfg: HostConfig, mirror: &str, runs: usize, json: bool) -> anyhow::Result<()> {
    cfg.instance = "bench".into();
    let host = Host::open(cfg).await?;
    let image = host.ensure_image("debian", &Recipe::debian(mirror), &mut |l| {
        eprintln!("  {l}")
    })?;
    clear(&host).await?;
    host.pool().wait_for_deletions()?;
    let runs = runs.max(5);
    let mut rows = Vec::new();
    let scratch = host.pool().host_dir("bench");

    // Floors.
    let snap_floor = time(runs, |i| {
        let dst = scratch.join(format!("floor-{i}"));
        let src = image.path.clone();
        async move {
            btrfs::snapshot(&src, &dst, false)?;
            Ok(dst)
        }
    })
    .await?;
    for i in 0..runs + WARMUP {
        btrfs::delete_subvolume(&scratch.join(format!("floor-{i}")))?;
    }
    // Each phase starts with the kernel's cleaner idle, so one phase's
    // deletions are not billed to the next.
    host.pool().wait_for_deletions()?;
    let snap = snap_floor.median();
    rows.push(row(
        "floor: btrfs snapshot ioctl",
        &snap_floor,
        None,
        "PRODUCT.md floor: ~8 ms",
    ));
    let clone_floor = time(runs, |_| async { clone_exec() }).await?;
    let clone = clone_floor.median();
    rows.push(row(
        "floor: namespaced clone+exec",
        &clone_floor,
        None,
        "PRODUCT.md floor: ~0.7 ms",
    ));

    // create → exec-ready
    let create = time(runs, |i| {
        let host = &host;
        async move {
            let s = name(&format!("c{i}"));
            host.create(&s, CreateOptions::default()).await?;
            exec_ready(host, &s).await
        }
    })
    .await?;
    rows.push(row(
        "create to exec-ready",
        &create,
        Some(snap + clone),
        "<= 50 ms",
    ));

    // create → network-ready: the first command finds the sprite's link
    // made (its default route), as an agent's `pip install` right after
    // create needs. Without egress there is no link to wait for.
    if host.config().egress {
        let net = time(runs, |i| {
            let host = &host;
            async move {
                let s = name(&format!("n{i}"));
                host.create(&s, CreateOptions::default()).await?;
                let out = host
                    .run(&s, &["ip", "-4", "route", "show", "default"], b"")
                    .await?;
                anyhow::ensure!(
                    !out.stdout.is_empty(),
                    "{s} had no network at its first command"
                );
                Ok(())
            }
        })
        .await?;
        rows.push(row(
            "create to network-ready",
            &net,
            Some(snap + clone),
            "<= 60 ms",
        ));
    }

    // exec round trip
    let s0 = name("c0");
    let exec = time(runs * 3, |_| exec_ready(&host, &s0)).await?;
    rows.push(row(
        "exec `true` round trip",
        &exec,
        Some(clone),
        "<= 10 ms",
    ));
    rows.extend(remote::rows(host.config(), create.median(), exec.median(), runs).await?);

    // A network policy change on a running sprite, from none to an
    // allowlist and back: in force when the verb returns (its resolver
    // decides by it, nftables holds its sets). The floor is one nftables
    // transaction changing a set's element, as the change makes.
    if host.config().egress {
        let nft = |script: &str| -> anyhow::Result<()> {
            use std::io::Write;
            let mut child = std::process::Command::new("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()?;
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(script.as_bytes())?;
            anyhow::ensure!(child.wait()?.success(), "nft failed");
            Ok(())
        };
        nft("table inet sprites-bench {\n  set s { type ipv4_addr; }\n}\n")?;
        let nft_floor = time(runs, |_| async {
            nft("add element inet sprites-bench s { 192.0.2.1 }\n\
                 delete element inet sprites-bench s { 192.0.2.1 }\n")
        })
        .await?;
        nft("delete table inet sprites-bench\n")?;
        use sprites_wire::policy::{NetworkPolicy, PolicyRule};
        let allowlist = NetworkPolicy {
            rules: vec![PolicyRule::allow("pypi.org"), PolicyRule::deny("*")],
        };
        let change = time(runs * 2, |i| {
            let host = &host;
            let s0 = &s0;
            let policy = if i % 2 == 0 {
                allowlist.clone()
            } else {
                NetworkPolicy::default()
            };
            async move {
                host.set_network_policy(s0, policy)
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .await?;
        host.set_network_policy(&s0, NetworkPolicy::default())
            .await?;
        rows.push(row(
            "network policy change to in force",
            &change,
            Some(nft_floor.median()),
            "<= 1000 ms",
        ));
    }

    // freeze/thaw (warm sleep and wake)
    let raw = time(runs, |_| {
        let id = format!("bench.{s0}");
        let rt = host.runtime();
        async move {
            rt.freeze(&id)?;
            rt.thaw(&id)?;
            Ok(())
        }
    })
    .await?;
    let freeze = time(runs, |_| async {
        host.sleep_warm(&s0).await?;
        host.wake(&s0).await?;
        Ok(())
    })
    .await?;
    rows.push(row(
        "warm sleep + wake (freeze/thaw)",
        &freeze,
        Some(raw.median()),
        "<= 5 ms",
    ));

    // cold wake: how much of create and restore is the runtime starting a sandbox
    let mut cold = Vec::new();
    for i in 0..runs + WARMUP {
        host.sleep_cold(&s0).await?;
        let start = Instant::now();
        host.wake(&s0).await?;
        exec_ready(&host, &s0).await?;
        if i >= WARMUP {
            cold.push(start.elapsed());
        }
    }
    let cold = Samples(cold);
    rows.push(row(
        "cold wake to exec-ready",
        &cold,
        Some(clone),
        "runtime start + init",
    ));

    // checkpoint, empty and after 1 GiB written
    let ck = time(runs, |_| async {
        host.checkpoint(&s0, "").await.map_err(anyhow::Error::from)
    })
    .await?;
    rows.push(row("checkpoint", &ck, Some(snap), "<= 25 ms"));
    let heavy_runs = (runs / 6).clamp(3, 5);
    let mut heavy = Vec::new();
    for i in 0..heavy_runs {
        let script =
            format!("dd if=/dev/urandom of=/root/big-{i} bs=1M count=1024 conv=fsync status=none");
        let out = host.run(&s0, &["sh", "-c", &script], b"").await?;
        anyhow::ensure!(
            out.code == 0,
            "writing 1 GiB failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = Instant::now();
        host.checkpoint(&s0, "after 1 GiB").await?;
        heavy.push(start.elapsed());
        host.run(&s0, &["rm", "-f", &format!("/root/big-{i}")], b"")
            .await?;
    }
    let heavy = Samples(heavy);
    rows.push(row(
        "checkpoint after 1 GiB written",
        &heavy,
        Some(ck.median()),
        "<= 1.5x empty checkpoint",
    ));

    // restore → exec-ready
    let target = host
        .checkpoints(&s0)?
        .first()
        .map(|c| c.id)
        .expect("a checkpoint");
    let restore = time(runs, |_| async {
        host.restore(&s0, target).await?;
        exec_ready(&host, &s0).await
    })
    .await?;
    rows.push(row(
        "restore to exec-ready",
        &restore,
        Some(2.0 * snap + clone),
        "<= 100 ms",
    ));

    // fork → exec-ready
    let fork = time(runs, |i| {
        let host = &host;
        let s0 = s0.clone();
        async move {
            let f = name(&format!("f{i}"));
            host.fork(&s0, Some(target), &f).await?;
            exec_ready(host, &f).await
        }
    })
    .await?;
    rows.push(row(
        "fork to exec-ready",
        &fork,
        Some(snap + clone),
        "<= 50 ms",
    ));

    // destroy
    let destroy = time(runs, |i| {
        let host = &host;
        async move {
            host.destroy(&name(&format!("f{i}")))
                .await
                .map_err(anyhow::Error::from)
        }
    })
    .await?;
    rows.push(row("destroy", &destroy, None, "off the request path"));
    clear(&host).await?;

    // Disk: 100 sprites from one image.
    host.pool().wait_for_deletions()?;
    sync_pool(&host)?;
    let before = host.pool().used_bytes()?;
    for i in 0..100 {
        host.create(&name(&format!("d{i}")), CreateOptions::default())
            .await?;
    }
    sync_pool(&host)?;
    let added = host.pool().used_bytes()?.saturating_sub(before) as f64 / 1e6;
    clear(&host).await?;
    rows.push(Row {
        operation: "disk added by 100 sprites (MB)".into(),
        median_ms: added,
        p95_ms: added,
        floor_ms: None,
        ratio: None,
        target: "<= 50 MB".into(),
    });

    // Memory: 1000 sprites asleep cold cost the host what their kernel
    // objects and our records of them do; nothing of theirs runs. Counted
    // in a memory cgroup of this process's own, made for it: it is charged
    // with exactly what the work allocates (this process's memory and the
    // kernel's objects made on its behalf), and nothing else on the
    // machine moves it.
    let many = 1000;
    let charged = ChargedMemory::enter()?;
    let before = charged.usage()?;
    for i in 0..many {
        let s = name(&format!("m{i}"));
        host.create(&s, CreateOptions::default()).await?;
        host.sleep_cold(&s).await?;
    }
    let after = charged.usage()?;
    charged.leave()?;
    clear(&host).await?;
    // The kernel frees deleted subvolumes in the background: let it finish
    // before anything else is measured on this machine.
    host.pool().wait_for_deletions()?;
    for (what, before, after) in [
        (
            "host memory, 1000 sprites cold (MB)",
            before.total,
            after.total,
        ),
        ("  of which the kernel's (MB)", before.kernel, after.kernel),
    ] {
        let added = after.saturating_sub(before) as f64 / 1e6;
        rows.push(Row {
            operation: what.into(),
            median_ms: added,
            p95_ms: added,
            floor_ms: None,
            ratio: None,
            target: if what.starts_with("host") {
                "<= 200 MB".into()
            } else {
                "inodes, subvolume roots, records".into()
            },
        });
    }

    if let Some(second) = second_host(host.config()) {
        match crate::sprite::replica::bench::rows(&host, second, runs).await {
            Ok(more) => rows.extend(more),
            Err(e) => anyhow::bail!("replication rows: {e:#}"),
        }
    } else {
        rows.push(Row {
            operation: "replication rows: no object store".into(),
            median_ms: 0.0,
            p95_ms: 0.0,
            floor_ms: None,
            ratio: None,
            target: "scripts/bench starts Garage and measures them".into(),
        });
    }

    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

/// A memory cgroup of this process's own (cgroup v1 or v2), entered for a
/// measurement: what the process allocates from then on, and what the
/// kernel allocates on its behalf, is charged to it alone.
struct ChargedMemory {
    dir: std::path::PathBuf,
    parent: std::path::PathBuf,
    v2: bool,
}

#[derive(Debug, Clone, Copy)]
struct Charged {
    total: u64,
    kernel: u64,
}

impl ChargedMemory {
    fn enter() -> anyhow::Result<ChargedMemory> {
        let own = std::fs::read_to_string("/proc/self/cgroup")?;
        let (parent, v2) = if let Some(path) = own
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        {
            (
                std::path::PathBuf::from(format!("/sys/fs/cgroup/memory{path}")),
                false,
            )
        } else {
            let path = own
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .ok_or_else(|| anyhow::anyhow!("no memory cgroup for this process"))?;
            (
                std::path::PathBuf::from(format!("/sys/fs/cgroup{path}")),
                true,
            )
        };
        let dir = parent.join(format!("sprites-bench-memory-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())?;
        Ok(ChargedMemory { dir, parent, v2 })
    }

    /// What is charged now, after the kernel dropped what it can reclaim.
    fn usage(&self) -> anyhow::Result<Charged> {
        nix::unistd::sync();
        std::fs::write("/proc/sys/vm/drop_caches", "3")?;
        let read = |file: &str| -> anyhow::Result<u64> {
            Ok(std::fs::read_to_string(self.dir.join(file))?
                .trim()
                .parse()?)
        };
        if self.v2 {
            let stat = std::fs::read_to_string(self.dir.join("memory.stat"))?;
            let field = |k: &str| {
                stat.lines()
                    .find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse::<u64>().ok()))
                    .unwrap_or(0)
            };
            Ok(Charged {
                total: read("memory.current")?,
                kernel: field("kernel "),
            })
        } else {
            Ok(Charged {
                total: read("memory.usage_in_bytes")?,
                kernel: read("memory.kmem.usage_in_bytes")?,
            })
        }
    }

    fn leave(self) -> anyhow::Result<()> {
        std::fs::write(
            self.parent.join("cgroup.procs"),
            std::process::id().to_string(),
        )?;
        // Emptied of its process, it goes; charges still on it move up.
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }
}

/// Another host for the replication rows: a pool of its own beside the
/// bench's (emptied first), the same bucket, no network of its own.
fn second_host(cfg: &HostConfig) -> Option<HostConfig> {
    cfg.bucket.as_ref()?;
    let mut second = cfg.clone();
    second.data_dir = std::path::PathBuf::from(format!("{}-bench-recover", cfg.data_dir.display()));
    second.run_dir = std::path::PathBuf::from(format!("{}-bench-recover", cfg.run_dir.display()));
    second.egress = false;
    crate::pool::fresh_data_dir(&second.data_dir).ok()?;
    Some(second)
}

fn sync_pool(host: &Host) -> anyhow::Result<()> {
    let f = std::fs::File::open(host.pool().root())?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))?;
    Ok(())
}
