//! A host's lease (see the fence in `vmhost::sprite`): with no hold for
//! its length, a host freezes its sprites and wakes none of them, a
//! checkpoint leaves them frozen, a late hold holds nothing; a hold lets
//! them go on; fences outlive a restart; a fenced one can be forgotten, a
//! held one cannot; a host opened long after its last hold restarts
//! nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, name, ok};
use vmhost::{Error, Host, Phase};

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_lease_fences_every_sprite_until_a_hold() {
    let mut cfg = config("t-fence");
    cfg.lease = Some(Duration::from_secs(2));
    let host = Arc::new(vmhost::testing::host_with(cfg.clone()).await);
    let (kept, gone) = (name("kept"), name("gone"));
    for s in [&kept, &gone] {
        host.create(s, Default::default()).await.unwrap();
    }
    ok(&host, &kept, "echo mine > /root/mine").await;
    let keeper = Host::spawn_lease_keeper(&host);

    // No hold comes: both frozen, and neither wakes nor goes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host.phase(&kept).unwrap() != Phase::SleepingWarm {
        assert!(std::time::Instant::now() < deadline, "never fenced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    keeper.abort();
    assert_eq!(host.phase(&gone).unwrap(), Phase::SleepingWarm);
    assert!(matches!(host.wake(&kept).await, Err(Error::Fenced(_))));
    assert!(host.run(&kept, &["true"], b"").await.is_err());
    // A checkpoint of a fenced sprite leaves it frozen.
    host.checkpoint(&kept, "").await.unwrap();
    assert_eq!(host.phase(&kept).unwrap(), Phase::SleepingWarm);

    // A hold that took longer than half a lease to come holds nothing.
    let late = host
        .hold(std::slice::from_ref(&kept), vmhost::now_ms() - 1500)
        .await;
    assert!(matches!(late, Err(Error::Invalid(_))), "{late:?}");
    assert!(matches!(host.wake(&kept).await, Err(Error::Fenced(_))));

    // A hold of one: it runs on; the other stays fenced.
    let held = host
        .hold(std::slice::from_ref(&kept), vmhost::now_ms())
        .await
        .unwrap();
    assert_eq!(held.fenced, vec![gone.clone()]);
    assert!(held.to_wake.is_empty());
    assert_eq!(held.lease_ms, 2000);
    assert_eq!(host.phase(&kept).unwrap(), Phase::Running);
    assert_eq!(ok(&host, &kept, "cat /root/mine").await, "mine");
    assert!(matches!(host.forget(&kept).await, Err(Error::Invalid(_))));

    // Opened again within the lease: the fence stays, the held one runs.
    let host = Arc::try_unwrap(host).ok().expect("the only host");
    drop(host);
    let host = Arc::new(Host::open(cfg.clone()).await.unwrap());
    assert_eq!(host.phase(&gone).unwrap(), Phase::SleepingWarm);
    assert!(matches!(host.wake(&gone).await, Err(Error::Fenced(_))));
    assert_eq!(ok(&host, &kept, "cat /root/mine").await, "mine");
    host.forget(&gone).await.unwrap();
    assert!(matches!(host.get(&gone), Err(Error::NotFound(_))));

    // Killed, and opened again long after its last hold: nothing restarts
    // until held, then the held one wakes with its files.
    vmhost::testing::kill_sandboxes(&host).await;
    drop(Arc::try_unwrap(host).ok().expect("the only host"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let host = Host::open(cfg).await.unwrap();
    assert_eq!(host.phase(&kept).unwrap(), Phase::SleepingCold);
    assert!(matches!(host.wake(&kept).await, Err(Error::Fenced(_))));
    let held = host
        .hold(std::slice::from_ref(&kept), vmhost::now_ms())
        .await
        .unwrap();
    assert_eq!(held.to_wake, vec![kept.clone()]);
    host.wake(&kept).await.unwrap();
    assert_eq!(ok(&host, &kept, "cat /root/mine").await, "mine");
    vmhost::testing::destroy_all(&host).await;
}
