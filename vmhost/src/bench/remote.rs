//! The rows of a host on another machine: a second host in the bench's
//! pool, served by `remote::serve` on loopback over mutual TLS, asked
//! through `remote::Remote` as an API server asks. The floor of each row is
//! the same operation on the in-process host, measured just before: the
//! ratio is what the network hop costs.

use std::sync::Arc;

use super::{name, row, time, Row};
use crate::cluster::{ClusterCa, Role};
use crate::remote::Remote;
use crate::{CreateOptions, Host, HostConfig, SpriteName, Verbs};

/// Create to exec-ready and an exec round trip through a remote host,
/// next to `create_ms` and `exec_ms` in process.
pub async fn rows(
    cfg: &HostConfig,
    create_ms: f64,
    exec_ms: f64,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut cfg = cfg.clone();
    cfg.instance = "bench-remote".into();
    let host: Arc<dyn Verbs> = Arc::new(Host::open(cfg).await?);
    clear(&*host).await?;
    let ca = ClusterCa::generate("bench")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let acceptor = ca.issue(Role::Host, "bench")?.acceptor()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let daemon = tokio::spawn(crate::remote::serve(
        listener,
        acceptor,
        host.clone(),
        stopped,
    ));
    let far = Remote::connect("bench", &addr, &ca.issue(Role::Server, "bench")?).await?;

    let ready = |s: SpriteName| {
        let far = &far;
        async move {
            let out = far.run(&s, &["true"], b"").await?;
            anyhow::ensure!(out.code == 0, "true failed in {s}");
            Ok(())
        }
    };
    let create = time(runs, |i| {
        let far = &far;
        async move {
            let s = name(&format!("r{i}"));
            far.create(&s, CreateOptions::default()).await?;
            ready(s).await
        }
    })
    .await?;
    let exec = time(runs * 3, |_| ready(name("r0"))).await?;
    drop(far);
    let _ = stop.send(());
    daemon.await??;
    clear(&*host).await?;
    Ok(vec![
        row(
            "create to exec-ready, remote host",
            &create,
            Some(create_ms),
            "floor: in process",
        ),
        row(
            "exec `true`, remote host",
            &exec,
            Some(exec_ms),
            "floor: in process",
        ),
    ])
}

async fn clear(host: &dyn Verbs) -> anyhow::Result<()> {
    for s in host.list().await? {
        host.destroy(&name(&s.name)).await?;
    }
    Ok(())
}
