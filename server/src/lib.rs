//! The sprites server. It only translates: HTTP in, one `vmhost::Host` or
//! database call, HTTP out. `app` builds the router, `serve` runs it until
//! shutdown; `main` reads the configuration, binds and wires.

pub mod bench;
pub mod config_file;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tower_http::services::ServeDir;

use domain::{access, accounts, events, presence, sprites, templates};
use http::{mgmt, proxy, routes, session, signing};
use workers::{idle, metrics, replication};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The sprites, through the Host's verbs only.
    pub host: Arc<dyn vmhost::Verbs>,
    /// With host daemons: the same hosts as a cluster, for what only a
    /// cluster does (moving sprites, draining hosts).
    pub cluster: Option<Arc<vmhost::remote::Fleet>>,
    pub db: db::Db,
    pub urls: SpriteUrls,
    pub sessions: session::Store,
    pub settings: Settings,
    /// Failed sign-ins per account.
    pub throttle: accounts::Throttle,
    /// Failed sign-ins per client address.
    pub address_throttle: accounts::Throttle,
    /// Sprite URL hand-offs per member and sprite: a browser that keeps
    /// coming back has not kept the sprite's cookie.
    pub hand_offs: accounts::Throttle,
    pub events: events::Events,
    pub host_names: access::HostNames,
    /// Sprite URL labels to their sprites.
    pub sprite_routes: proxy::Routes,
    /// Connections to sprites' web apps, kept for reuse.
    pub upstreams: proxy::Upstreams,
    /// Signs the sprite URL hand-off; replaced by the data directory's key
    /// when the server runs for real.
    pub signing: signing::Key,
    /// When each sprite was last used, and what is in flight.
    pub activity: idle::Activity,
    /// The sprites' management sockets being served.
    pub mgmt: mgmt::Sockets,
    /// Who is attached to which terminal session.
    pub presence: presence::Presence,
    /// Students' creations, one at a time each (their class limits them).
    pub student_turns: sprites::StudentTurns,
    /// What `/metrics` counts.
    pub metrics: metrics::Metrics,
    /// Recent creations per organization (the creation rate).
    pub creations: Arc<domain::limits::Creations>,
}

impl AppState {
    pub fn new(
        host: Arc<dyn vmhost::Verbs>,
        db: db::Db,
        sessions: session::Store,
        urls: SpriteUrls,
        settings: Settings,
    ) -> AppState {
        let events = events::Events::default();
        events::relay(host.subscribe(), db.clone(), events.clone());
        AppState {
            host,
            cluster: None,
            db,
            urls,
            sessions,
            settings,
            throttle: accounts::Throttle::new(accounts::Throttle::PER_ACCOUNT),
            address_throttle: accounts::Throttle::new(accounts::Throttle::PER_ADDRESS),
            hand_offs: accounts::Throttle::with_window(4, std::time::Duration::from_secs(30)),
            events,
            host_names: access::HostNames::new(10_000),
            sprite_routes: proxy::Routes::new(10_000),
            upstreams: Default::default(),
            signing: signing::Key::random(),
            activity: Default::default(),
            mgmt: Default::default(),
            presence: Default::default(),
            student_turns: Default::default(),
            metrics: Default::default(),
            creations: Default::default(),
        }
    }

    /// [`new`](Self::new), with its background work running: the idle
    /// sleeper, the sprites' management sockets and the gallery's builds.
    pub fn with_background(self) -> AppState {
        idle::spawn_sleeper(self.clone());
        mgmt::spawn_watcher(self.clone());
        replication::spawn_replicator(self.clone());
        self.metrics.spawn_wake_counter(self.host.clone());
        self.settings.templates.spawn_builds(self.host.clone());
        self
    }
}

/// Server-wide choices an operator makes.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Anyone may sign up; otherwise only the first user, and others are
    /// made by an admin.
    pub open_signup: bool,
    /// The server is reached over TLS: session cookies are `Secure`.
    pub secure_cookies: bool,
    /// Sleep times of sprites that set none.
    pub sleep: idle::SleepDefaults,
    /// The template gallery.
    pub templates: templates::Catalog,
    /// With an object store: the longest a sprite's writes wait to be
    /// shipped.
    pub replicate_every: std::time::Duration,
    /// With an object store: how long a sprite sleeps cold before it
    /// leaves the local disk; zero: never.
    pub evict_after: std::time::Duration,
    /// The bearer token `/metrics` asks for; without one it is off.
    pub metrics_token: Option<String>,
    /// What each organization may run, keep warm and make at once.
    pub limits: domain::limits::OrgLimits,
    /// With host daemons: how long a host may stay silent before it counts
    /// as down; `None`: [`domain::hosts::TIMEOUT`].
    pub host_timeout: Option<std::time::Duration>,
}

impl Settings {
    /// How long a host may stay silent before it counts as down.
    pub fn host_timeout(&self) -> std::time::Duration {
        self.host_timeout.unwrap_or(domain::hosts::TIMEOUT)
    }

    /// Whether the request may read `/metrics`: it carries the operator's
    /// token (compared by digest, in constant time for its length).
    pub fn metrics_access(&self, headers: &axum::http::HeaderMap) -> Result<(), error::ApiError> {
        use sha2::{Digest, Sha256};
        let Some(token) = &self.metrics_token else {
            return Err(error::ApiError::NotFound(
                "metrics (start the server with --metrics-token to serve them)".into(),
            ));
        };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(error::ApiError::Unauthorized)?;
        let (a, b) = (
            Sha256::digest(given.as_bytes()),
            Sha256::digest(token.as_bytes()),
        );
        if a.iter().zip(b.iter()).fold(0u8, |d, (x, y)| d | (x ^ y)) != 0 {
            return Err(error::ApiError::Unauthorized);
        }
        Ok(())
    }
}

/// How a sprite's own URL is spelled: `<sprite>-<org>.<base domain>`.
#[derive(Clone, Debug)]
pub struct SpriteUrls {
    pub scheme: String,
    pub base_domain: String,
    pub port: u16,
}

impl SpriteUrls {
    fn port_suffix(&self) -> String {
        let default_port = matches!(
            (self.scheme.as_str(), self.port),
            ("http", 80) | ("https", 443)
        );
        if default_port {
            String::new()
        } else {
            format!(":{}", self.port)
        }
    }

    pub fn sprite_url(&self, sprite: &str, org: &str) -> String {
        self.label_url(&sprites_wire::url_label(sprite, org))
    }

    /// The origin of the sprite whose URL label is `label`.
    pub fn label_url(&self, label: &str) -> String {
        format!(
            "{}://{label}.{}{}",
            self.scheme,
            self.base_domain,
            self.port_suffix()
        )
    }

    /// The origin of the API and the web app.
    pub fn app_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme,
            self.base_domain,
            self.port_suffix()
        )
    }
}

/// The whole HTTP surface: sprite URLs first (by their host name, before
/// any of the app's layers: sessions, body limits and tracing are the
/// app's, and a sprite's traffic must not pay for them), then API routes,
/// then the web app's files. The web app routes its pages in the browser,
/// so a path that is no file gets its `index.html`; an unknown API path is
/// a JSON 404.
pub fn app(state: AppState, public_dir: PathBuf) -> Router {
    let sessions = state.sessions.clone().layer(state.settings.secure_cookies);
    let sprite_urls = proxy::SpriteHostsLayer::new(state.clone());
    let api = routes::router()
        .with_state(state)
        .route("/v1/{*rest}", axum::routing::any(routes::unknown))
        // The app's files go gzipped to browsers that take it (the wasm and
        // Monaco shrink to a third); API responses, streams among them,
        // never pass here.
        .fallback_service(tower_http::compression::Compression::new(
            ServeDir::new(&public_dir).fallback(tower_http::services::ServeFile::new(
                public_dir.join("index.html"),
            )),
        ))
        .layer(sessions)
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    Router::new().fallback_service(api).layer(sprite_urls)
}

/// Serves until `shutdown` completes. Sprites are not touched on the way
/// out: they belong to the host, not to this process, and keep running.
///
/// Every connection starts on [`proxy::forward`], on one of the
/// [`DirectThreads`], which serves plain requests to sprites itself and
/// hands the rest to `app`. On shutdown, connections between requests
/// close at once; responses under way get a few seconds to end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = tokio_util::sync::CancellationToken::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let direct = tokio_util::task::TaskTracker::new();
    let (give, handoffs) = tokio::sync::mpsc::channel(64);
    let listener = Listener {
        tcp: listener,
        state,
        handoffs,
        give,
        threads: DirectThreads::start(stop)?,
        direct: direct.clone(),
        closing: closing.clone(),
    };
    let signal = closing.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<ClientAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        signal.cancel();
    })
    .await?;
    direct.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), direct.wait()).await;
    Ok(())
}

/// Threads with a runtime of one thread each, for the direct path. A
/// connection stays on the thread that took it, where the multi-threaded
/// runtime passes its task between workers and so between CPUs: one client
/// in a row of small requests got 0.64 of the app's direct rate that way,
/// 0.73 on one thread. One thread for every two CPUs: the proxy takes at
/// most half the machine, the sprites' apps need the rest. They end with
/// `stop`.
struct DirectThreads {
    handles: Vec<tokio::runtime::Handle>,
    next: usize,
}

impl DirectThreads {
    fn start(stop: tokio_util::sync::CancellationToken) -> std::io::Result<DirectThreads> {
        let n = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("sprite-urls-{i}"))
                .spawn(move || runtime.block_on(stop.cancelled()))?;
        }
        Ok(DirectThreads { handles, next: 0 })
    }

    /// The thread for the next connection, in turn.
    fn next(&mut self) -> &tokio::runtime::Handle {
        self.next = (self.next + 1) % self.handles.len();
        &self.handles[self.next]
    }
}

/// The TCP listener. Each new connection goes first to
/// [`proxy::forward::serve`] on a direct thread; those it hands back come
/// out of `accept` for the app. NODELAY is on everywhere: progress streams and terminals write
/// small pieces, and without it each one after the first waits for the
/// client's delayed ACK (~40 ms).
struct Listener {
    tcp: tokio::net::TcpListener,
    state: AppState,
    handoffs: tokio::sync::mpsc::Receiver<(proxy::forward::Detached, std::net::SocketAddr)>,
    give: tokio::sync::mpsc::Sender<(proxy::forward::Detached, std::net::SocketAddr)>,
    threads: DirectThreads,
    direct: tokio_util::task::TaskTracker,
    closing: tokio_util::sync::CancellationToken,
}

impl Listener {
    fn start(&mut self, stream: tokio::net::TcpStream, addr: std::net::SocketAddr) {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        // Out of this runtime, into the direct thread's.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot move a connection");
                return;
            }
        };
        let (state, give, closing) = (self.state.clone(), self.give.clone(), self.closing.clone());
        let thread = self.threads.next();
        self.direct.spawn_on(
            async move {
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    return;
                };
                let Some(handoff) = proxy::forward::serve(&state, stream, addr, &closing).await
                else {
                    return;
                };
                let Ok(detached) = handoff.detach() else {
                    return;
                };
                tokio::select! {
                    _ = give.send((detached, addr)) => {}
                    _ = closing.cancelled() => {}
                }
            },
            thread,
        );
    }
}

impl axum::serve::Listener for Listener {
    type Io = proxy::forward::Handoff;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                Some((detached, addr)) = self.handoffs.recv() => match detached.attach() {
                    Ok(handoff) => return (handoff, addr),
                    Err(e) => tracing::warn!(error = %e, "cannot take over a connection"),
                },
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, addr)) => self.start(stream, addr),
                    Err(e) if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) => {}
                    // Out of descriptors, most likely: wait for some to close.
                    Err(e) => {
                        tracing::error!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The address a connection came from, for rate limits and (for sprite
/// URLs) `X-Forwarded-For`. Read it with [`client_addr`].
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client's address, when the request came through [`serve`].
pub fn client_addr(parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    client_addr_of(&parts.extensions)
}

pub fn client_addr_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<ClientAddr>>()
        .map(|c| c.0 .0.ip())
}

/// A server on a free loopback port for `host`, on the database at
/// `db_url`, serving `public_dir`; runs until the process ends. For the
/// API benchmark and the tests, which talk to a real server.
pub async fn start_local(
    host: Arc<dyn vmhost::Verbs>,
    db_url: &str,
    settings: Settings,
    public_dir: PathBuf,
) -> anyhow::Result<(String, AppState)> {
    serve_local(host, None, db_url, settings, public_dir).await
}

/// [`start_local`] with its sprites on the hosts of `cluster`.
pub async fn start_local_cluster(
    cluster: Arc<vmhost::remote::Fleet>,
    db_url: &str,
    settings: Settings,
    public_dir: PathBuf,
) -> anyhow::Result<(String, AppState)> {
    serve_local(cluster.clone(), Some(cluster), db_url, settings, public_dir).await
}

async fn serve_local(
    host: Arc<dyn vmhost::Verbs>,
    cluster: Option<Arc<vmhost::remote::Fleet>>,
    db_url: &str,
    settings: Settings,
    public_dir: PathBuf,
) -> anyhow::Result<(String, AppState)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let urls = SpriteUrls {
        scheme: "http".into(),
        base_domain: "localhost".into(),
        port,
    };
    let state = local_state(host, cluster, db_url, settings, urls).await?;
    tokio::spawn(serve(
        listener,
        state.clone(),
        app(state.clone(), public_dir),
        std::future::pending(),
    ));
    Ok((format!("http://127.0.0.1:{port}"), state))
}

/// [`start_local`] over HTTPS: the app and sprites answer at `tls.domain`
/// (`localhost`, say) on a free loopback port, with `tls`'s certificates.
/// The app's URL and the state.
pub async fn start_local_tls(
    host: Arc<dyn vmhost::Verbs>,
    db_url: &str,
    mut settings: Settings,
    public_dir: PathBuf,
    tls: http::tls::TlsSettings,
) -> anyhow::Result<(String, AppState)> {
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let urls = SpriteUrls {
        scheme: "https".into(),
        base_domain: tls.domain.clone(),
        port: https.local_addr()?.port(),
    };
    settings.secure_cookies = true;
    let state = local_state(host, None, db_url, settings, urls).await?;
    let certs = http::tls::Tls::new(state.clone(), tls, Default::default())?;
    tokio::spawn(http::tls::serve(
        certs,
        https,
        plain,
        public_dir,
        std::future::pending(),
    ));
    Ok((state.urls.app_url(), state))
}

/// The state of a server for tests and benchmarks, its workers started.
async fn local_state(
    host: Arc<dyn vmhost::Verbs>,
    cluster: Option<Arc<vmhost::remote::Fleet>>,
    db_url: &str,
    settings: Settings,
    urls: SpriteUrls,
) -> anyhow::Result<AppState> {
    let db = db::Db::connect(db_url).await?;
    let sessions = session::Store::connect(db_url).await?;
    let mut state = AppState::new(host, db, sessions, urls, settings);
    state.cluster = cluster;
    Ok(state.with_background())
}
