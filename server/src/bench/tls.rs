//! HTTPS rows: the sprite URL of the URL rows over TLS against plain HTTP
//! (a new connection to its first byte, and requests per second), served
//! by the same server on a second listener with a certificate of the
//! bench's own; and, with an ACME CA (the Pebble scripts/bench starts),
//! how long a new sprite's name waits for its first certificate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vmhost::bench::{row, Row, Samples};

use super::{wrk, Load, WARMUP};
use crate::http::tls::acme::AcmeSettings;
use crate::http::tls::store::Secrets;
use crate::http::tls::{self, Certificates, Tls, TlsSettings};
use crate::AppState;

/// The sprite the URL rows made, by its URL label.
const LABEL: &str = "web-bench.localhost";

/// A server's second pair of listeners, serving HTTPS until dropped.
struct Listening {
    https_port: u16,
    _stop: tokio_util::sync::DropGuard,
}

async fn listen(state: &AppState, settings: TlsSettings, plain: &str) -> anyhow::Result<Listening> {
    let certs = Tls::new(state.clone(), settings, Secrets::default())?;
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let plain = tokio::net::TcpListener::bind(plain).await?;
    let https_port = https.local_addr()?.port();
    let stop = tokio_util::sync::CancellationToken::new();
    let public = std::env::temp_dir();
    tokio::spawn(tls::serve(
        certs,
        https,
        plain,
        public,
        stop.clone().cancelled_owned(),
    ));
    Ok(Listening {
        https_port,
        _stop: stop.drop_guard(),
    })
}

/// A client trusting only `roots` (PEM).
fn connector(roots: &str) -> anyhow::Result<TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(roots.as_bytes()) {
        store.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::store::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A new connection to `port`, `GET /` of the sprite, to the first byte of
/// the answer; over TLS with `tls`.
async fn first_byte(port: u16, tls: Option<&TlsConnector>) -> anyhow::Result<Duration> {
    let request = format!("GET / HTTP/1.1\r\nHost: {LABEL}\r\nConnection: close\r\n\r\n");
    let mut byte = [0u8; 1];
    let t = Instant::now();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    match tls {
        Some(connector) => {
            let name = ServerName::try_from(LABEL)?.to_owned();
            let mut stream = connector.connect(name, tcp).await?;
            stream.write_all(request.as_bytes()).await?;
            stream.read_exact(&mut byte).await?;
        }
        None => {
            let mut stream = tcp;
            stream.write_all(request.as_bytes()).await?;
            stream.read_exact(&mut byte).await?;
        }
    }
    Ok(t.elapsed())
}

/// The HTTPS rows; `plain_port` is the server's plain HTTP listener, whose
/// sprite `web` answers at [`LABEL`].
pub(super) async fn rows(
    state: &AppState,
    plain_port: u16,
    make_sprite: impl AsyncFn(&str) -> anyhow::Result<()>,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    // webpki takes no wildcard directly under a single label (`*.localhost`).
    let (root, chain, key) = tls::store::from_own_root(&["localhost", LABEL])?;
    let dir = super::tempfile_dir()?;
    let write = |name: &str, pem: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, pem)?;
        Ok(path)
    };
    let settings = TlsSettings {
        domain: "localhost".into(),
        certificates: Certificates::Given {
            chain: write("chain.pem", &chain)?,
            key: write("key.pem", &key)?,
        },
    };
    let served = listen(state, settings, "127.0.0.1:0").await?;
    let connector = connector(&root)?;

    // A new connection each time, both ways in turn.
    let (mut plain, mut secure) = (vec![], vec![]);
    for i in 0..runs + WARMUP {
        let p = first_byte(plain_port, None).await?;
        let s = first_byte(served.https_port, Some(&connector)).await?;
        if i >= WARMUP {
            plain.push(p);
            secure.push(s);
        }
    }
    // Keep-alive load, in alternating rounds as the URL rows do.
    let http = format!("http://127.0.0.1:{plain_port}/");
    let https = format!("https://127.0.0.1:{}/", served.https_port);
    wrk(None, &https, LABEL, 2, 1).await?;
    let rounds = (3 * runs).clamp(9, 21) | 1;
    let (mut over_plain, mut over_tls): (Vec<Load>, Vec<Load>) = (vec![], vec![]);
    for round in 0..rounds {
        let plain_first = round % 2 == 0;
        for tls in [!plain_first, plain_first] {
            if tls {
                over_tls.push(wrk(None, &https, LABEL, 1, 1).await?);
            } else {
                over_plain.push(wrk(None, &http, LABEL, 1, 1).await?);
            }
        }
    }
    let ratio = Load::ratio(&over_tls, &over_plain, |l| l.rps);
    let (over_plain, over_tls) = (Load::median(&over_plain), Load::median(&over_tls));
    let _ = std::fs::remove_dir_all(&dir);

    let mut rows = vec![
        row(
            "HTTPS: new connection to first byte of a sprite URL",
            &Samples(secure),
            Some(Samples(plain).median()),
            "floor: the same over plain HTTP",
        ),
        Row {
            operation: "HTTPS: requests/s to a sprite URL, 1 client".into(),
            median_ms: over_tls.rps,
            p95_ms: over_tls.rps,
            floor_ms: Some(over_plain.rps),
            ratio: Some(ratio),
            target: "rate; floor: plain HTTP".into(),
        },
    ];
    match acme_settings() {
        Some((acme, roots, http_port)) => {
            rows.push(first_certificate(state, acme, &roots, http_port, make_sprite, runs).await?)
        }
        None => eprintln!(
            "no ACME CA given (PEBBLE_DIRECTORY and the rest, which scripts/bench sets): \
             the first-certificate row is left out"
        ),
    }
    Ok(rows)
}

/// Pebble as scripts/pebble describes it: the settings, its issuing root
/// and the port it validates HTTP-01 on.
fn acme_settings() -> Option<(AcmeSettings, String, u16)> {
    let var = |name: &str| std::env::var(name).ok();
    let roots = std::fs::read_to_string(var("PEBBLE_ROOT")?).ok()?;
    let settings = AcmeSettings {
        directory: var("PEBBLE_DIRECTORY")?,
        email: None,
        ca_root: Some(var("PEBBLE_LISTENER_ROOT")?.into()),
        orders_per_hour: 10_000,
    };
    Some((settings, roots, var("PEBBLE_HTTP_PORT")?.parse().ok()?))
}

/// From a new sprite's first handshake to its end, its name's certificate
/// ordered meanwhile; the floor is the next handshake, the certificate
/// there.
async fn first_certificate(
    state: &AppState,
    acme: AcmeSettings,
    roots: &str,
    http_port: u16,
    make_sprite: impl AsyncFn(&str) -> anyhow::Result<()>,
    runs: usize,
) -> anyhow::Result<Row> {
    let settings = TlsSettings {
        domain: "localhost".into(),
        certificates: Certificates::Acme(acme),
    };
    let served = listen(state, settings, &format!("127.0.0.1:{http_port}")).await?;
    let connector = connector(roots)?;
    let handshake = |name: String| {
        let connector = connector.clone();
        let port = served.https_port;
        async move {
            let t = Instant::now();
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            connector.connect(ServerName::try_from(name)?, tcp).await?;
            anyhow::Ok(t.elapsed())
        }
    };
    let (mut first, mut again) = (vec![], vec![]);
    for i in 0..runs.min(10) {
        let sprite = format!("cert-{i}");
        make_sprite(&sprite).await?;
        let name = format!("{sprite}-bench.localhost");
        first.push(handshake(name.clone()).await?);
        again.push(handshake(name).await?);
    }
    Ok(row(
        "HTTPS: first handshake of a new sprite's name (ACME order)",
        &Samples(first),
        Some(Samples(again).median()),
        "floor: a handshake with it",
    ))
}
