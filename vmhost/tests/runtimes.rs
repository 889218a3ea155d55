//! The same sprite life on each OCI runtime the host can drive: crun (the
//! default, used by every other test) and runc.

mod common;

use common::{name, ok};
use vmhost::runtime::cli::Flavor;
use vmhost::{CreateOptions, Host, Phase};

#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_lives_the_same_on_runc() {
    common::host("t-runc").await; // builds the images if needed
    let mut cfg = common::config("t-runc");
    cfg.runtime = Flavor::Runc;
    let host = Host::open(cfg).await.unwrap();
    common::cleanup(&host).await;
    assert_eq!(host.runtime().name(), "runc");
    let s = name("classic");
    host.create(&s, CreateOptions::default()).await.unwrap();
    assert_eq!(ok(&host, &s, "hostname; id -u").await, "classic\n0");
    ok(&host, &s, "echo one > /root/f").await;
    let v0 = host.checkpoint(&s, "").await.unwrap();
    ok(&host, &s, "echo two > /root/f").await;
    host.sleep_warm(&s).await.unwrap();
    assert_eq!(host.get(&s).unwrap().phase, Phase::SleepingWarm);
    host.wake(&s).await.unwrap();
    host.sleep_cold(&s).await.unwrap();
    assert_eq!(host.get(&s).unwrap().phase, Phase::SleepingCold);
    host.restore(&s, v0.id).await.unwrap();
    assert_eq!(ok(&host, &s, "cat /root/f").await, "one");
    let f = name("classic-fork");
    host.fork(&s, None, &f).await.unwrap();
    assert_eq!(ok(&host, &f, "cat /root/f").await, "one");
    common::cleanup(&host).await;
}
