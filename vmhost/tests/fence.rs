//! A host's lease (see the fence in `vmhost::sprite`): with no hold for
//! its length, a host freezes its sprites and wakes, ships or destroys
//! none of them; a hold lets them go on; a fenced one can be forgotten,
//! a held one cannot; a host opened long after its last hold restarts
//! nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, name, ok};
use vmhost::{Error, Host, Phase};

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_lease_fences_every_sprite_until_a_hold() {
    let mut cfg = config("t-fence");
    cfg.lease = Some(Duration::from_millis(800));
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
    assert_eq!(host.phase(&gone).unwrap(), Phase::SleepingWarm);
    assert!(matches!(host.wake(&kept).await, Err(Error::Fenced(_))));
    assert!(matches!(host.destroy(&kept).await, Err(Error::Fenced(_))));
    assert!(host.run(&kept, &["true"], b"").await.is_err());

    // A hold of one: it runs on; the other stays fenced, and is forgotten.
    let held = host.hold(std::slice::from_ref(&kept)).await.unwrap();
    assert_eq!(held.fenced, vec![gone.clone()]);
    assert!(held.to_wake.is_empty());
    assert_eq!(host.phase(&kept).unwrap(), Phase::Running);
    assert_eq!(ok(&host, &kept, "cat /root/mine").await, "mine");
    assert!(matches!(host.forget(&kept).await, Err(Error::Invalid(_))));
    host.forget(&gone).await.unwrap();
    assert!(matches!(host.get(&gone), Err(Error::NotFound(_))));
    keeper.abort();

    // Opened again long after its last hold: nothing restarts until held.
    let host = Arc::try_unwrap(host).ok().expect("the only host");
    vmhost::testing::kill_sandboxes(&host).await;
    drop(host);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let host = Host::open(cfg).await.unwrap();
    assert_eq!(host.phase(&kept).unwrap(), Phase::SleepingCold);
    assert!(matches!(host.wake(&kept).await, Err(Error::Fenced(_))));
    let held = host.hold(std::slice::from_ref(&kept)).await.unwrap();
    assert_eq!(held.to_wake, vec![kept.clone()]);
    host.wake(&kept).await.unwrap();
    assert_eq!(ok(&host, &kept, "cat /root/mine").await, "mine");
    vmhost::testing::destroy_all(&host).await;
}
