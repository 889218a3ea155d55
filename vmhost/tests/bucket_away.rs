//! The bucket away for two minutes while a sprite writes: the sprite works
//! on, the lag rises and the failure shows, and once Garage is back the
//! replica catches up with nothing lost. Its own test binary: no other test
//! may run while Garage is stopped.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::replica::{bucket, busybox, first_host, second_host, wait_for, Garage};
use common::{name, ok};
use vmhost::Host;

#[tokio::test(flavor = "multi_thread")]
async fn with_the_bucket_stopped_sprites_work_on_and_catch_up_after() {
    let bucket = bucket("away");
    let a = Arc::new(first_host("t-replica-away", &bucket).await);
    let s = name("writer");
    a.create(&s, busybox()).await.unwrap();
    ok(
        &a,
        &s,
        "(while true; do date +%s.%N >> /log; sleep 0.5; done) >/dev/null 2>&1 &",
    )
    .await;
    // What the server's replicator does: a round every two seconds.
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let replicator = {
        let (a, s, running) = (a.clone(), s.clone(), running.clone());
        tokio::spawn(async move {
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = a.replicate(&s, Duration::from_secs(1)).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let lag = |a: &Host| a.replication(&s).unwrap();
    wait_for(&a, &s, "caught up at first", |r| {
        r.lag_seconds == 0 && r.last_shipped.is_some()
    })
    .await;

    let garage = Garage::from_env();
    garage.stop();
    let stopped_at = std::time::Instant::now();
    let mut highest = 0;
    let mut saw_failing = false;
    while stopped_at.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let r = lag(&a);
        highest = highest.max(r.lag_seconds);
        saw_failing |= r.phase == vmhost::replica::ReplicaPhase::Failing && r.error.is_some();
        // The sprite works on all along.
        assert_eq!(ok(&a, &s, "echo alive").await, "alive");
    }
    assert!(
        highest >= 100,
        "the lag rose while the bucket was away: {highest} s"
    );
    assert!(saw_failing, "the failure was visible");
    garage.start();
    wait_for(&a, &s, "caught up again", |r| {
        r.lag_seconds == 0 && r.error.is_none()
    })
    .await;
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    replicator.await.unwrap();

    // Nothing written while it was away is lost: the last shipment holds it.
    a.sleep_cold(&s).await.unwrap();
    a.replicate(&s, Duration::ZERO).await.unwrap();
    let written = std::fs::read_to_string(
        a.pool()
            .host_dir("t-replica-away")
            .join("sprites/writer/root/log"),
    )
    .unwrap();
    let lines = written.lines().count();
    assert!(lines >= 240, "two minutes of writes: {lines} lines");
    let b = second_host("away", "t-replica-away", bucket.clone()).await;
    b.recover().await.unwrap();
    b.fetch(&s).await.unwrap();
    let back = std::fs::read_to_string(
        b.pool()
            .host_dir("t-replica-away")
            .join("sprites/writer/root/log"),
    )
    .unwrap();
    assert_eq!(back, written);
    common::cleanup(&b).await;
    common::cleanup(&a).await;
}
