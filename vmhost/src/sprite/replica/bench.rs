//! The replication rows of `vmhost bench`, against the object store the
//! host replicates to (scripts/bench starts a Garage on loopback), each
//! next to its floor measured in the same run:
//!
//! - shipping 1 GiB changed, against a plain multipart PUT of 1 GiB of
//!   random bytes to the same bucket (MB/s);
//! - shipping after a 1 MB change (ms);
//! - bringing back a sprite holding 1 GiB, against a plain GET of 1 GiB;
//! - moving a running sprite with 1 GiB written to another host of a
//!   fleet: how long it answers nothing, and the whole move;
//! - bringing 10 sprites of a lost host back on another, from the
//!   object store, until each answers;
//! - the first command of an evicted sprite;
//! - a checkpoint right after writing 100 MB;
//! - the replication lag of 20 sprites writing at once.

use std::time::{Duration, Instant};

use rand::RngCore;

use crate::bench::table::{row, Row, Samples};
use crate::{CreateOptions, Host, HostConfig, SpriteName};

const GIB: usize = 1 << 30;

fn name(s: &str) -> SpriteName {
    SpriteName::parse(s).expect("bench names are valid")
}

async fn sh(host: &Host, s: &SpriteName, script: &str) -> anyhow::Result<()> {
    let out = host.run(s, &["sh", "-c", script], b"").await?;
    anyhow::ensure!(
        out.code == 0,
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn mb_per_s(bytes: usize, took: Duration) -> Duration {
    // Carried in the row's millisecond field: MB/s as "milliseconds".
    Duration::from_secs_f64(bytes as f64 / 1e6 / took.as_secs_f64() / 1e3)
}

fn rate_row(operation: &str, s: &Samples, floor: Option<f64>, target: &str) -> Row {
    let mut r = row(operation, s, floor, target);
    // For a rate, the p95 is the slow end: the lower one.
    let mut v: Vec<f64> = s.0.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    r.p95_ms = v[0];
    r
}

/// The replication rows; `second` is the configuration of another host
/// (a pool of its own) to bring sprites back into.
pub async fn rows(host: &Host, second: HostConfig, runs: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let bucket = host
        .config()
        .bucket
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the replication rows need --object-store"))?;
    let heavy = 3;

    // Floors: 1 GiB of random bytes up and down, as they are.
    let mut data = vec![0u8; GIB];
    rand::thread_rng().fill_bytes(&mut data);
    let data = bytes::Bytes::from(data);
    let (mut put, mut get) = (Vec::new(), Vec::new());
    for i in 0..heavy {
        let key = format!("bench/plain-{i}");
        let start = Instant::now();
        bucket.put_plain(&key, data.clone()).await?;
        put.push(mb_per_s(GIB, start.elapsed()));
        let start = Instant::now();
        let got = bucket.get_raw(&key).await?.map_or(0, |d| d.len());
        anyhow::ensure!(got == GIB, "read back {got} bytes");
        get.push(start.elapsed());
        bucket.delete(&key).await?;
    }
    drop(data);
    let (put, get) = (Samples(put), Samples(get));
    rows.push(rate_row(
        "floor: multipart PUT 1 GiB (MB/s)",
        &put,
        None,
        "plain bytes, same bucket",
    ));
    rows.push(row(
        "floor: GET 1 GiB",
        &get,
        None,
        "plain bytes, same bucket",
    ));

    // Shipping: the first shipment carries the image; then 1 GiB changes.
    let s = name("r0");
    host.create(&s, CreateOptions::default()).await?;
    host.replicate(&s, Duration::ZERO).await?;
    let mut ship = Vec::new();
    for i in 0..heavy {
        sh(
            host,
            &s,
            &format!("dd if=/dev/urandom of=/root/big-{i} bs=1M count=1024 conv=fsync status=none"),
        )
        .await?;
        let start = Instant::now();
        let shipped = host.replicate(&s, Duration::ZERO).await?;
        ship.push(mb_per_s(GIB, start.elapsed()));
        anyhow::ensure!(!shipped.checkpoints.is_empty(), "nothing shipped");
        sh(host, &s, &format!("rm /root/big-{i}")).await?;
    }
    rows.push(rate_row(
        "ship 1 GiB changed (MB/s)",
        &Samples(ship),
        Some(put.median()),
        "the floor's pace, sealed",
    ));
    let mut small = Vec::new();
    for i in 0..runs.max(5) {
        sh(
            host,
            &s,
            &format!("head -c 1000000 /dev/urandom > /root/small-{i}"),
        )
        .await?;
        let start = Instant::now();
        host.replicate(&s, Duration::ZERO).await?;
        small.push(start.elapsed());
    }
    rows.push(row(
        "ship after a 1 MB change",
        &Samples(small),
        None,
        "checkpoint + one segment",
    ));

    // Checkpoint right after writing 100 MB (dirty, not yet on disk).
    let mut dirty = Vec::new();
    for i in 0..runs.max(5) {
        sh(
            host,
            &s,
            &format!("head -c 100000000 /dev/urandom > /root/hundred-{}", i % 2),
        )
        .await?;
        let start = Instant::now();
        host.checkpoint(&s, "").await?;
        dirty.push(start.elapsed());
    }
    rows.push(row(
        "checkpoint right after writing 100 MB",
        &Samples(dirty),
        None,
        "<= 50 ms",
    ));

    // Bringing back a sprite of 1 GiB on another machine.
    let r = name("r1");
    host.create(&r, CreateOptions::default()).await?;
    sh(
        host,
        &r,
        "dd if=/dev/urandom of=/root/big bs=1M count=1024 conv=fsync status=none",
    )
    .await?;
    host.replicate(&r, Duration::ZERO).await?;
    host.sleep_cold(&r).await?;
    let moving = second.clone();
    let failing = second.clone();
    let other = Host::open(second).await?;
    let mut back = Vec::new();
    for _ in 0..heavy {
        if other.get(&r).is_ok() {
            other.destroy(&r).await?;
        }
        let start = Instant::now();
        let found = other.recover().await?;
        anyhow::ensure!(
            found.sprites.contains(&r),
            "{r} not in the bucket: {:?}",
            found.failures
        );
        let failures = other.fetch(&r).await?;
        anyhow::ensure!(failures.is_empty(), "{failures:?}");
        back.push(start.elapsed());
    }
    other.destroy(&r).await?;
    rows.push(row(
        "recover a sprite with 1 GiB",
        &Samples(back),
        Some(get.median()),
        "a GET's pace",
    ));
    host.destroy(&r).await?;
    drop(other);
    rows.extend(move_rows(host.config(), moving, heavy).await?);
    rows.extend(failover_rows(host.config(), failing, heavy).await?);

    // The first command of an evicted sprite.
    let e = name("r2");
    host.create(&e, CreateOptions::default()).await?;
    sh(host, &e, "head -c 1000000 /dev/urandom > /root/note").await?;
    let mut first = Vec::new();
    for _ in 0..runs.clamp(3, 5) {
        host.sleep_cold(&e).await?;
        host.evict(&e).await?;
        let start = Instant::now();
        host.wake(&e).await?;
        sh(host, &e, "true").await?;
        first.push(start.elapsed());
    }
    rows.push(row(
        "first exec of an evicted sprite",
        &Samples(first),
        None,
        "fetch + cold wake",
    ));

    // Twenty sprites writing, replicated every 5 s: their lag, seen each
    // second for 40 s.
    let every = Duration::from_secs(5);
    let writers: Vec<SpriteName> = (0..20).map(|i| name(&format!("w{i}"))).collect();
    for w in &writers {
        host.create(w, CreateOptions::default()).await?;
        sh(host, w, "(while true; do head -c 65536 /dev/urandom >> /root/log; sleep 0.2; done) >/dev/null 2>&1 &").await?;
    }
    let stop = Instant::now() + Duration::from_secs(40);
    let mut lags = Vec::new();
    let mut next_look = Instant::now();
    while Instant::now() < stop {
        for w in &writers {
            host.replicate(w, every).await?;
            if Instant::now() >= next_look {
                let worst = writers
                    .iter()
                    .filter_map(|w| host.replication(w).ok())
                    .map(|r| r.lag_seconds)
                    .max()
                    .unwrap_or(0);
                // Seconds, carried in the row's millisecond field.
                lags.push(Duration::from_millis(worst));
                next_look += Duration::from_secs(1);
            }
        }
    }
    rows.push(row(
        "replication lag, 20 writing sprites (s)",
        &Samples(lags),
        Some(every.as_secs_f64()),
        "about the interval (5 s here)",
    ));
    for w in &writers {
        host.destroy(w).await?;
    }
    host.destroy(&s).await?;
    host.destroy(&e).await?;
    Ok(rows)
}

/// A sprite with 1 GiB written, running, moved back and forth `times`
/// between two hosts of a fleet (this pool and `second`'s, one instance
/// and one bucket): its downtime, and the whole move.
async fn move_rows(
    first: &HostConfig,
    second: HostConfig,
    times: usize,
) -> anyhow::Result<Vec<Row>> {
    use std::sync::Arc;

    use crate::remote::{Fleet, Floors, Member};
    use crate::Verbs;
    let mut here = first.clone();
    here.instance = "bench-move".into();
    let mut there = second;
    there.instance = "bench-move".into();
    let (here, there) = (Host::open(here).await?, Host::open(there).await?);
    for host in [&here, &there] {
        for s in host.list()? {
            host.destroy(&name(&s.name)).await?;
        }
    }
    let s = name("mv");
    here.create(&s, CreateOptions::default()).await?;
    sh(
        &here,
        &s,
        "dd if=/dev/urandom of=/root/big bs=1M count=1024 conv=fsync status=none",
    )
    .await?;
    let members = vec![
        Member {
            name: "here".into(),
            verbs: Arc::new(here),
        },
        Member {
            name: "there".into(),
            verbs: Arc::new(there),
        },
    ];
    let fleet = Fleet::new(members, Floors::default()).await?;
    let (mut down, mut whole) = (Vec::new(), Vec::new());
    for i in 0..times {
        let to = if i % 2 == 0 { "there" } else { "here" };
        let start = Instant::now();
        let moved = fleet.move_sprite(&s, Some(to)).await?;
        whole.push(start.elapsed());
        down.push(Duration::from_millis(moved.downtime_ms));
        let out = fleet
            .run(&s, &["stat", "-c", "%s", "/root/big"], b"")
            .await?;
        anyhow::ensure!(
            String::from_utf8_lossy(&out.stdout).trim() == GIB.to_string(),
            "the moved sprite lost its file"
        );
    }
    fleet.destroy(&s).await?;
    Ok(vec![
        row(
            "move a running sprite with 1 GiB: downtime",
            &Samples(down),
            None,
            "< 1000 ms",
        ),
        row(
            "move a running sprite with 1 GiB: whole move",
            &Samples(whole),
            None,
            "ship + receive ahead, then the downtime",
        ),
    ])
}

/// How many sprites the lost host of the failover rows had.
const LOST: usize = 10;

/// `rounds` times: 10 sprites, each with 16 MiB written and shipped, on a
/// host whose sandboxes are then killed at once; the fleet takes each
/// over on the other host, one after another, as the control plane does,
/// then each is woken and runs a command, all at once, as their users'
/// next requests would. From the kill until all have answered: what a
/// failover costs after the host timeout has found the host lost.
async fn failover_rows(
    first: &HostConfig,
    second: HostConfig,
    rounds: usize,
) -> anyhow::Result<Vec<Row>> {
    use std::sync::Arc;

    use crate::remote::{Fleet, Floors, Member};
    use crate::Verbs;
    let mut lost = first.clone();
    lost.instance = "bench-failover".into();
    let mut there = second;
    there.instance = "bench-failover".into();
    let (lost, there) = (Arc::new(Host::open(lost).await?), Host::open(there).await?);
    for host in [&*lost, &there] {
        for s in host.list()? {
            host.destroy(&name(&s.name)).await?;
        }
    }
    let members = vec![
        Member {
            name: "lost".into(),
            verbs: lost.clone(),
        },
        Member {
            name: "there".into(),
            verbs: Arc::new(there),
        },
    ];
    let fleet = Fleet::new(members, Floors::default()).await?;
    let mut took = Vec::new();
    for round in 0..rounds {
        let names: Vec<SpriteName> = (0..LOST).map(|i| name(&format!("f{round}x{i}"))).collect();
        for s in &names {
            lost.create(s, CreateOptions::default()).await?;
            sh(&lost, s, "head -c 16777216 /dev/urandom > /root/kept").await?;
            lost.replicate(s, Duration::ZERO).await?;
        }
        let start = Instant::now();
        for s in &names {
            lost.runtime()
                .stop(&lost.sandbox_id(s), Duration::ZERO)
                .await?;
        }
        for s in &names {
            fleet.take_over(s, "there").await?;
        }
        let answers = names.iter().map(|s| {
            let fleet = &fleet;
            async move {
                fleet.wake(s).await?;
                let out = fleet
                    .run(s, &["stat", "-c", "%s", "/root/kept"], b"")
                    .await?;
                anyhow::ensure!(
                    String::from_utf8_lossy(&out.stdout).trim() == "16777216",
                    "{s} came back without its file"
                );
                anyhow::Ok(())
            }
        });
        for answered in futures_util::future::join_all(answers).await {
            answered?;
        }
        took.push(start.elapsed());
        // The new host's copies go with their objects; the lost host's
        // records, whose objects are gone, after.
        for s in &names {
            fleet.destroy(s).await?;
            lost.destroy(s).await?;
        }
    }
    Ok(vec![row(
        &format!("fail over {LOST} sprites of a lost host (16 MiB each), after detection"),
        &Samples(took),
        None,
        "+ --host-timeout (30 s) + a beat (<= 5 s)",
    )])
}
