//! Prometheus metrics, served at `/metrics` to whoever holds the operator
//! token (`--metrics-token`): replication (lag per sprite and the largest,
//! bytes shipped, checkpoints waiting, failures), sprites by phase and
//! where their disks are, wakes, and checkpoint durations. Counters are
//! counted where things happen; the rest is read from the host at each
//! scrape, so it is never stale.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use vmhost::replica::{Location, ReplicaPhase};
use vmhost::{HostEvent, Phase, SpriteName, Verbs};

type Labels = Vec<(&'static str, String)>;

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    shipped_bytes: Counter,
    ship_failures: Counter,
    wakes: Counter,
    acme_orders: Counter,
    acme_refused: Counter,
    tls_refused: Counter,
    checkpoint_seconds: Histogram,
    lag: Family<Labels, Gauge>,
    max_lag: Gauge,
    pending: Gauge,
    sprites: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sprites");
        let shipped_bytes = Counter::default();
        let ship_failures = Counter::default();
        let wakes = Counter::default();
        let acme_orders = Counter::default();
        let acme_refused = Counter::default();
        let tls_refused = Counter::default();
        // 1 ms to about 30 s.
        let checkpoint_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let lag = Family::<Labels, Gauge>::default();
        let max_lag = Gauge::default();
        let pending = Gauge::default();
        let sprites = Family::<Labels, Gauge>::default();
        registry.register(
            "replication_shipped_bytes",
            "Bytes stored in the object store (sealed)",
            shipped_bytes.clone(),
        );
        registry.register(
            "replication_failures",
            "Shipments that failed (the bucket away, refusing or slow)",
            ship_failures.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "Age of the oldest change of a sprite not yet in the object store",
            lag.clone(),
        );
        registry.register(
            "replication_max_lag_seconds",
            "The largest replication lag of any sprite",
            max_lag.clone(),
        );
        registry.register(
            "replication_pending_checkpoints",
            "Checkpoints taken and not yet in the object store",
            pending.clone(),
        );
        registry.register(
            "sprites",
            "Sprites by phase and by where their disk is",
            sprites.clone(),
        );
        registry.register("wakes", "Sprites woken from a sleep", wakes.clone());
        registry.register(
            "acme_orders",
            "Certificate orders placed with the ACME CA",
            acme_orders.clone(),
        );
        registry.register(
            "acme_orders_refused",
            "Certificate orders not placed: the hourly bound was reached",
            acme_refused.clone(),
        );
        registry.register(
            "tls_handshakes_refused",
            "TLS handshakes for a name that is neither the app's nor a sprite's",
            tls_refused.clone(),
        );
        registry.register(
            "checkpoint_duration_seconds",
            "How long taking a checkpoint took",
            checkpoint_seconds.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            shipped_bytes,
            ship_failures,
            wakes,
            acme_orders,
            acme_refused,
            tls_refused,
            checkpoint_seconds,
            lag,
            max_lag,
            pending,
            sprites,
        }))
    }

    pub fn shipped(&self, bytes: u64) {
        self.0.shipped_bytes.inc_by(bytes);
    }

    pub fn ship_failed(&self) {
        self.0.ship_failures.inc();
    }

    pub fn acme_ordered(&self) {
        self.0.acme_orders.inc();
    }

    pub fn acme_refused(&self) {
        self.0.acme_refused.inc();
    }

    pub fn tls_refused(&self) {
        self.0.tls_refused.inc();
    }

    pub fn checkpoint_took(&self, took: std::time::Duration) {
        self.0.checkpoint_seconds.observe(took.as_secs_f64());
    }

    /// Counts wakes from the host's phase changes, until the server stops.
    pub fn spawn_wake_counter(&self, host: Arc<dyn Verbs>) {
        let metrics = self.clone();
        let mut events = host.subscribe();
        tokio::spawn(async move {
            let mut last = std::collections::HashMap::<SpriteName, Phase>::new();
            loop {
                match events.recv().await {
                    Ok(HostEvent { sprite, phase }) => {
                        let before = last.insert(sprite, phase);
                        if phase == Phase::Running
                            && matches!(before, Some(Phase::SleepingWarm | Phase::SleepingCold))
                        {
                            metrics.0.wakes.inc();
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// The text exposition, with what the host holds now.
    pub async fn render(&self, host: &dyn Verbs) -> vmhost::Result<String> {
        let m = &self.0;
        // Gathered first and written after the last await, so two scrapes
        // at once do not count a sprite twice.
        let mut lags = Vec::new();
        let mut counts: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
        let (mut max_lag, mut pending) = (0, 0);
        for info in host.list().await? {
            let Ok(name) = SpriteName::parse(&info.name) else {
                continue;
            };
            let phase = match info.phase {
                Phase::Creating => "creating",
                Phase::Running => "running",
                Phase::SleepingWarm => "warm",
                Phase::SleepingCold => "cold",
                Phase::Destroyed => "destroyed",
            };
            let mut location = "local";
            if let Ok(r) = host.replication(&name).await {
                if r.location == Location::Bucket {
                    location = "bucket";
                }
                if r.phase != ReplicaPhase::Off {
                    lags.push((info.name.clone(), r.lag_seconds as i64));
                    max_lag = max_lag.max(r.lag_seconds);
                    pending += r.pending;
                }
            }
            *counts.entry((phase, location)).or_default() += 1;
        }
        m.lag.clear();
        for (sprite, lag) in lags {
            m.lag.get_or_create(&vec![("sprite", sprite)]).set(lag);
        }
        m.sprites.clear();
        for ((phase, location), n) in counts {
            m.sprites
                .get_or_create(&vec![
                    ("phase", phase.to_string()),
                    ("location", location.to_string()),
                ])
                .set(n);
        }
        m.max_lag.set(max_lag as i64);
        m.pending.set(pending as i64);
        let mut out = String::new();
        encode(&mut out, &m.registry).expect("writing to a String does not fail");
        Ok(out)
    }
}
