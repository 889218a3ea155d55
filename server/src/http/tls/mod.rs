//! HTTPS: the app and every sprite's URL served over TLS (rustls), with
//! the operator's own certificate or with certificates from an ACME CA,
//! each name's ordered at its first handshake.
//!
//! A connection, in steps: the ClientHello is read before any certificate
//! is chosen ([`LazyConfigAcceptor`]); its server name must be the app's
//! domain or the host name of a sprite that exists (`<sprite>-<org>.<domain>`,
//! looked up as the URL proxy does), else the handshake ends there and
//! nothing is ordered: nobody can make the server ask a CA for names that
//! are not its own. The name's certificate comes from memory, then the
//! database, then a new order (the handshake waits for it; the hourly
//! bound and one order per name at a time hold). The TLS connection then
//! goes to the app, which serves the API, the web app and sprite URLs over
//! it, with HSTS on every answer. The plain listener only redirects to
//! HTTPS and answers the CA's HTTP-01 challenges. A renewal task orders a
//! new certificate for each stored name once two thirds of its life have
//! passed, and forgets those of sprites that are gone.

pub mod acme;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rustls::server::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use self::acme::{Acme, AcmeSettings};
use self::store::Issued;
use crate::db::now_ms;
use crate::{AppState, ClientAddr};

/// Where the server's certificates come from.
#[derive(Clone, Debug)]
pub enum Certificates {
    /// The operator's own chain and key (PEM files), served for every name:
    /// a wildcard for `*.<domain>` and the domain itself, most likely.
    Given { chain: PathBuf, key: PathBuf },
    /// An ACME CA, each name's certificate on demand.
    Acme(AcmeSettings),
}

/// The server's TLS settings.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The app answers at this name, sprites at `<sprite>-<org>.<domain>`.
    pub domain: String,
    pub certificates: Certificates,
}

/// Limits of one handshake: reading the ClientHello, and finishing once a
/// certificate is chosen. Ordering one has its own (the CA's polling).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a renewal check sleeps.
const RENEWAL_CHECK: Duration = Duration::from_secs(3600);

/// The HSTS answer header: two years, what browsers' own sites send. A
/// sprite's app may send its own, which is kept.
const HSTS: &str = "max-age=63072000";
/// Handshakes in progress at most (each may wait for its name's order);
/// past it, new connections are closed at once.
const HANDSHAKES: usize = 1024;

/// The certificates a server serves.
pub struct Tls {
    state: AppState,
    domain: String,
    source: Source,
    /// Certificates by name, as served.
    served: Mutex<HashMap<String, Issued>>,
}

enum Source {
    Given(Given),
    Acme(Box<Acme>),
}

/// How often the operator's certificate files are looked at again.
const GIVEN_CHECK: Duration = Duration::from_secs(60);
/// How long before its end the operator's certificate is warned of.
const GIVEN_WARNING_MS: i64 = 14 * 24 * 3600 * 1000;

/// The operator's own certificate, read again when its files change (a
/// renewal by certbot or lego, say).
struct Given {
    chain: PathBuf,
    key: PathBuf,
    /// What is served, and the files' latest change when it was read.
    current: Mutex<(Issued, Option<std::time::SystemTime>)>,
}

impl Given {
    fn open(chain: PathBuf, key: PathBuf) -> anyhow::Result<Given> {
        let current = Mutex::new(Given::read(&chain, &key)?);
        Ok(Given {
            chain,
            key,
            current,
        })
    }

    fn read(
        chain: &PathBuf,
        key: &PathBuf,
    ) -> anyhow::Result<(Issued, Option<std::time::SystemTime>)> {
        let changed = Given::changed(chain, key);
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("read {}: {e}", p.display()))
        };
        Ok((Issued::from_pem(&read(chain)?, &read(key)?)?, changed))
    }

    /// The later of the two files' modification times.
    fn changed(chain: &PathBuf, key: &PathBuf) -> Option<std::time::SystemTime> {
        let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        modified(chain).max(modified(key))
    }

    fn config(&self) -> Arc<ServerConfig> {
        self.current.lock().unwrap().0.config.clone()
    }

    /// Reads the files again when they changed (a broken pair keeps the
    /// certificate served), and warns as the certificate nears its end.
    fn refresh(&self) {
        let changed = Given::changed(&self.chain, &self.key);
        let mut current = self.current.lock().unwrap();
        if changed != current.1 {
            match Given::read(&self.chain, &self.key) {
                Ok(read) => {
                    *current = read;
                    tracing::info!(chain = %self.chain.display(), "TLS certificate read again");
                }
                Err(e) => tracing::warn!(
                    error = %format!("{e:#}"),
                    "the TLS certificate's files changed but do not load: the old one serves"
                ),
            }
        }
        if current.0.not_after_ms - now_ms() < GIVEN_WARNING_MS {
            tracing::warn!(chain = %self.chain.display(), "the TLS certificate ends within 14 days: renew it");
        }
    }
}

/// Why a handshake got no certificate.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} is neither this server's domain nor one of its sprites")]
    UnknownName(String),
    #[error("{0}")]
    NoCertificate(String),
}

impl Tls {
    /// Ready to serve: the operator's certificate read (and checked), or
    /// the ACME client made (its account is opened at the first order).
    pub fn new(
        state: AppState,
        settings: TlsSettings,
        secrets: store::Secrets,
    ) -> anyhow::Result<Arc<Tls>> {
        let _ = Arc::unwrap_or_clone(store::provider()).install_default();
        let source = match settings.certificates {
            Certificates::Given { chain, key } => Source::Given(Given::open(chain, key)?),
            Certificates::Acme(acme) => Source::Acme(Box::new(Acme::new(
                acme,
                state.db.clone(),
                secrets,
                state.metrics.clone(),
            ))),
        };
        Ok(Arc::new(Tls {
            state,
            domain: settings.domain.to_ascii_lowercase(),
            source,
            served: Mutex::default(),
        }))
    }

    /// The ACME client, when certificates come from a CA.
    pub fn acme(&self) -> Option<&Acme> {
        match &self.source {
            Source::Acme(acme) => Some(acme),
            Source::Given(_) => None,
        }
    }

    /// The configuration for a handshake asking for `name` (none: the
    /// app's domain).
    pub async fn config_for(&self, name: Option<&str>) -> Result<Arc<ServerConfig>, Refused> {
        let name = name.map_or_else(|| self.domain.clone(), str::to_ascii_lowercase);
        let acme = match &self.source {
            Source::Given(given) => return Ok(given.config()),
            Source::Acme(acme) => acme,
        };
        if let Some(issued) = self.served.lock().unwrap().get(&name) {
            if issued.valid_now() {
                return Ok(issued.config.clone());
            }
        }
        match self.admits(&name).await {
            Ok(true) => {}
            Ok(false) => {
                self.state.metrics.tls_refused();
                return Err(Refused::UnknownName(name));
            }
            Err(e) => return Err(Refused::NoCertificate(e.public_message())),
        }
        let issued = acme
            .certificate(&name, false)
            .await
            .map_err(|e| Refused::NoCertificate(format!("{e:#}")))?;
        let config = issued.config.clone();
        self.keep(name, issued);
        Ok(config)
    }

    /// Serves `issued` for `name` from now on, unless what is served
    /// already lives longer (a renewal that finished meanwhile).
    fn keep(&self, name: String, issued: Issued) {
        let mut served = self.served.lock().unwrap();
        let newer = served
            .get(&name)
            .is_none_or(|old| old.not_after_ms <= issued.not_after_ms);
        if newer {
            served.insert(name, issued);
        }
    }

    /// Whether `name` is the app's or an existing sprite's: a label of at
    /// most 63 characters, as DNS allows, under the domain.
    async fn admits(&self, name: &str) -> Result<bool, crate::error::ApiError> {
        if name == self.domain {
            return Ok(true);
        }
        let Some(label) = name
            .strip_suffix(&self.domain)
            .and_then(|rest| rest.strip_suffix('.'))
        else {
            return Ok(false);
        };
        if label.contains('.') || label.len() > 63 || name.len() > 253 {
            return Ok(false);
        }
        Ok(crate::http::proxy::resolve(&self.state, label)
            .await?
            .is_some())
    }

    /// Renews what is due, forever: each stored name whose certificate has
    /// lived two thirds of its life gets a new one, while it is still the
    /// app's or a sprite's; the others are forgotten.
    /// The operator's own certificate is read again when its files change.
    pub async fn renew(self: Arc<Self>) {
        let acme = match &self.source {
            Source::Acme(acme) => acme,
            Source::Given(given) => loop {
                given.refresh();
                tokio::time::sleep(GIVEN_CHECK).await;
            },
        };
        loop {
            let mut next = now_ms() + RENEWAL_CHECK.as_millis() as i64;
            match store::renewals(&self.state.db).await {
                Ok(names) => {
                    for (name, due) in names {
                        if due > now_ms() {
                            next = next.min(due);
                            continue;
                        }
                        next = next.min(self.renew_one(acme, &name).await);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list the certificates to renew"),
            }
            let wait = (next - now_ms()).clamp(1000, RENEWAL_CHECK.as_millis() as i64);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Renews `name`'s certificate, or forgets it; when to look again.
    async fn renew_one(&self, acme: &Acme, name: &str) -> i64 {
        let admitted = match self.admits(name).await {
            Ok(admitted) => admitted,
            Err(e) => {
                // Not known now (the database away): asked again later.
                tracing::warn!(name, error = %e.public_message(), "cannot tell whether a name is still served");
                return now_ms() + 60_000;
            }
        };
        if !admitted {
            tracing::info!(name, "certificate of a name no longer served: forgotten");
            self.served.lock().unwrap().remove(name);
            if let Err(e) = store::remove(&self.state.db, name).await {
                tracing::warn!(name, error = %e, "cannot forget a certificate");
            }
            return i64::MAX;
        }
        match acme.certificate(name, true).await {
            Ok(issued) => {
                tracing::info!(name, "certificate renewed");
                let next = issued.renew_at_ms();
                self.keep(name.to_string(), issued);
                next
            }
            Err(e) => {
                // Tried again later; the old one serves meanwhile.
                tracing::warn!(name, error = %format!("{e:#}"), "cannot renew a certificate");
                now_ms() + acme::RETRY_AFTER.as_millis() as i64
            }
        }
    }
}

/// Serves the app and sprite URLs over HTTPS on `https`, and redirects and
/// ACME challenges on `plain`, renewing certificates, until `shutdown`.
pub async fn serve(
    tls: Arc<Tls>,
    https: TcpListener,
    plain: TcpListener,
    public_dir: PathBuf,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let renewal = tokio::spawn(tls.clone().renew());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let app = crate::app(tls.state.clone(), public_dir);
    let served = tokio::try_join!(
        serve_https(https, tls.clone(), app, stop.clone().cancelled_owned()),
        serve_redirects(plain, tls, stop.cancelled_owned()),
    );
    renewal.abort();
    served.map(|_| ())
}

/// Serves `app` over TLS on `listener` until `shutdown`, with HSTS on every
/// answer.
async fn serve_https(
    listener: TcpListener,
    tls: Arc<Tls>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::map_response(strict_transport));
    let (give, handshaken) = tokio::sync::mpsc::channel(64);
    let listener = TlsListener {
        tcp: listener,
        tls,
        handshakes: Arc::new(tokio::sync::Semaphore::new(HANDSHAKES)),
        give,
        handshaken,
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<ClientAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn strict_transport(mut res: Response) -> Response {
    res.headers_mut()
        .entry(header::STRICT_TRANSPORT_SECURITY)
        .or_insert(HeaderValue::from_static(HSTS));
    res
}

/// The plain HTTP listener beside HTTPS: the CA's HTTP-01 challenges, and
/// a permanent redirect to HTTPS for everything else.
async fn serve_redirects(
    listener: TcpListener,
    tls: Arc<Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .fallback({
            let urls = tls.state.urls.clone();
            move |headers: axum::http::HeaderMap, uri: Uri| async move {
                to_https(&urls, &headers, &uri)
            }
        })
        .with_state(tls);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn challenge(State(tls): State<Arc<Tls>>, Path(token): Path<String>) -> Response {
    match tls.acme().and_then(|acme| acme.challenge(&token)) {
        Some(answer) => answer.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The same URL over HTTPS, for a sprite's host name; the app's for any
/// other (the domain, or a name that is not ours).
fn to_https(urls: &crate::SpriteUrls, headers: &axum::http::HeaderMap, uri: &Uri) -> Response {
    let origin = match crate::http::proxy::sprite_label(&urls.base_domain, headers) {
        Some(label) => urls.label_url(&label),
        None => urls.app_url(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Redirect::permanent(&format!("{origin}{path}")).into_response()
}

/// The TLS listener: each accepted connection's handshake runs in a task
/// of its own (a certificate may be ordered meanwhile), and finished ones
/// come out of `accept`.
struct TlsListener {
    tcp: TcpListener,
    tls: Arc<Tls>,
    handshakes: Arc<tokio::sync::Semaphore>,
    give: tokio::sync::mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    handshaken: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    fn start(&self, stream: TcpStream, addr: SocketAddr) {
        let Ok(turn) = self.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(client = %addr, "{HANDSHAKES} TLS handshakes in progress: a connection closed");
            return;
        };
        let (tls, give) = (self.tls.clone(), self.give.clone());
        tokio::spawn(async move {
            let _turn = turn;
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
            match handshake(&tls, stream).await {
                Ok(stream) => {
                    let _ = give.send((stream, addr)).await;
                }
                Err(e) => tracing::debug!(client = %addr, error = %e, "TLS handshake refused"),
            }
        });
    }
}

/// Reads the ClientHello, chooses the certificate and finishes the
/// handshake.
async fn handshake(tls: &Tls, stream: TcpStream) -> anyhow::Result<TlsStream<TcpStream>> {
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = tokio::time::timeout(HELLO_TIMEOUT, acceptor).await??;
    let name = start.client_hello().server_name().map(str::to_string);
    let config = tls.config_for(name.as_deref()).await?;
    Ok(tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config)).await??)
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                Some(done) = self.handshaken.recv() => return done,
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, addr)) => self.start(stream, addr),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_certificate_is_read_again_when_its_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let (chain, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
        let write = |names: &[&str]| {
            let (_, cert, pem) = store::from_own_root(names).unwrap();
            std::fs::write(&chain, cert).unwrap();
            std::fs::write(&key, pem).unwrap();
        };
        write(&["one.example"]);
        let given = Given::open(chain.clone(), key.clone()).unwrap();
        let first = given.config();
        given.refresh();
        assert!(
            Arc::ptr_eq(&first, &given.config()),
            "unchanged files: the same"
        );
        std::thread::sleep(Duration::from_millis(20));
        write(&["two.example"]);
        given.refresh();
        let second = given.config();
        assert!(!Arc::ptr_eq(&first, &second), "changed files: read again");
        // A broken pair keeps what is served.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&key, "not a key").unwrap();
        given.refresh();
        assert!(Arc::ptr_eq(&second, &given.config()));
    }
}
