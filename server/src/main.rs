//! `sprites-server`: reads its configuration, opens the database and the
//! host (creating the storage pool and building the base image on first
//! start), reconciles, binds, serves. `sprites-server admin ...` manages
//! accounts from the server machine without going through HTTP.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sprites_server::http::tls::acme::AcmeSettings;
use sprites_server::http::tls::{self, Certificates, Tls, TlsSettings};
use sprites_server::workers::hosts as heartbeat;
use sprites_server::{
    app, db::litestream, db::Db, domain::accounts, domain::sprites, serve, AppState, SpriteUrls,
};
use vmhost::cluster::{Identity, Role};
use vmhost::image::Recipe;
use vmhost::remote::{Fleet, Floors, Member, Remote};
use vmhost::{Host, Verbs};

#[derive(Parser)]
#[command(name = "sprites-server", about = "Durable sprites with a browser IDE")]
struct Config {
    /// A TOML file of settings named like these flags (default:
    /// /etc/sprites/config.toml when it exists); flags and the environment
    /// win over it.
    #[arg(long, env = "SPRITES_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on for plain HTTP (default 0.0.0.0:8080; with
    /// --domain, 0.0.0.0:80, which only redirects to HTTPS and answers the
    /// ACME CA's challenges).
    #[arg(long, env = "SPRITES_LISTEN")]
    listen: Option<SocketAddr>,
    /// Serve the app at https://DOMAIN/ and sprites at
    /// https://<sprite>-<org>.DOMAIN/, with certificates from an ACME CA
    /// (or --tls-cert). DNS: DOMAIN and *.DOMAIN point at this machine.
    #[arg(long, env = "SPRITES_DOMAIN")]
    domain: Option<String>,
    /// With --domain: the address to listen on for HTTPS.
    #[arg(long, env = "SPRITES_HTTPS_LISTEN", default_value = "0.0.0.0:443")]
    https_listen: SocketAddr,
    /// With --domain: the contact the ACME CA may write to (expiry notices).
    #[arg(long, env = "SPRITES_ACME_EMAIL")]
    acme_email: Option<String>,
    /// With --domain: the ACME CA's directory URL.
    #[arg(long, env = "SPRITES_ACME_DIRECTORY", default_value = sprites_server::http::tls::acme::LETS_ENCRYPT)]
    acme_directory: String,
    /// With --domain: a PEM root to trust for the directory's own HTTPS (a
    /// private CA's), beside the system's.
    #[arg(long, env = "SPRITES_ACME_CA_ROOT")]
    acme_ca_root: Option<PathBuf>,
    /// With --domain: the most certificates ordered in any hour (a sprite's
    /// first HTTPS visit orders its name's; Let's Encrypt allows 300 orders
    /// in three hours, and 50 certificates a week under one domain: past a
    /// few dozen sprites, bring a wildcard with --tls-cert).
    #[arg(long, env = "SPRITES_ACME_ORDERS_PER_HOUR", default_value_t = 100)]
    acme_orders_per_hour: usize,
    /// With --domain: your own certificate chain (PEM) for every name,
    /// instead of ACME: a wildcard for *.DOMAIN and DOMAIN.
    #[arg(long, env = "SPRITES_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "SPRITES_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    host: vmhost::args::HostArgs,
    /// Keep the sprites on host daemons (`vmhost serve`) instead of this
    /// machine: NAME=ADDRESS:PORT, NAME as its identity names it; once for
    /// each host (or comma-separated). A new sprite goes to the host with
    /// the most room.
    #[arg(
        long,
        env = "SPRITES_HOST_DAEMON",
        value_delimiter = ',',
        requires = "cluster_identity"
    )]
    host_daemon: Vec<String>,
    /// With --host-daemon: seconds a host may stay silent before it counts
    /// as down.
    #[arg(long, env = "SPRITES_HOST_TIMEOUT", default_value_t = 30)]
    host_timeout: u64,
    /// The folder of this server's identity in the cluster of host daemons
    /// (`vmhost cluster-issue --role server`).
    #[arg(long, env = "SPRITES_CLUSTER_IDENTITY")]
    cluster_identity: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default: <data dir>/sprites.db) or postgres://...
    #[arg(long, env = "SPRITES_DATABASE_URL")]
    database_url: Option<String>,
    /// Sprites answer at <sprite>-<org>.<base domain>.
    #[arg(long, env = "SPRITES_BASE_DOMAIN", default_value = "localhost")]
    base_domain: String,
    /// Let anyone sign up; otherwise only the first user does, and others
    /// need an admin's invitation (the web app's Admin page) or a class's
    /// join link, or the admin makes their account (`admin create-user`).
    #[arg(long, env = "SPRITES_OPEN_SIGNUP")]
    open_signup: bool,
    /// The server is reached over TLS (behind a proxy): mark cookies Secure.
    #[arg(long, env = "SPRITES_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Seconds without activity before a sprite sleeps warm (frozen in
    /// memory); 0: never. Sprites may set their own.
    #[arg(long, env = "SPRITES_SLEEP_AFTER", default_value_t = 60)]
    sleep_after: u64,
    /// Seconds without activity before a sprite sleeps cold (stopped, only
    /// its disk kept); 0: never.
    #[arg(long, env = "SPRITES_COLD_AFTER", default_value_t = 1800)]
    cold_after: u64,
    /// With an object store (--object-store): the longest, in seconds, a
    /// sprite's writes wait before they are shipped to it.
    #[arg(long, env = "SPRITES_REPLICATE_EVERY", default_value_t = 60)]
    replicate_every: u64,
    /// With an object store: seconds a sprite sleeps cold before its disk
    /// leaves this machine (kept in the object store, fetched back on its
    /// next wake); 0: never.
    #[arg(long, env = "SPRITES_EVICT_AFTER", default_value_t = 7 * 24 * 3600)]
    evict_after: u64,
    /// The bearer token `/metrics` (Prometheus) asks for; without one,
    /// metrics are off.
    #[arg(long, env = "SPRITES_METRICS_TOKEN")]
    metrics_token: Option<String>,
    /// How many of an organization's sprites may run at once (a create or
    /// wake past it answers 429); none by default.
    #[arg(long, env = "SPRITES_RUNNING_LIMIT")]
    running_limit: Option<usize>,
    /// How many of an organization's sprites may sleep warm (in memory) at
    /// once; beyond it, idle sprites sleep cold. None by default.
    #[arg(long, env = "SPRITES_WARM_LIMIT")]
    warm_limit: Option<usize>,
    /// How many sprites an organization may make (create or fork) a minute
    /// (past it, 429); none by default.
    #[arg(long, env = "SPRITES_CREATE_RATE")]
    create_rate: Option<u32>,
    /// The web app's files.
    #[arg(long, env = "SPRITES_PUBLIC_DIR", default_value = "dist")]
    public_dir: PathBuf,
    /// The template gallery: one directory per template.
    #[arg(long, env = "SPRITES_TEMPLATES_DIR", default_value = "templates")]
    templates_dir: PathBuf,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API and the web app (the default).
    Serve,
    /// Manage accounts from the server machine.
    #[command(subcommand)]
    Admin(Admin),
    /// Measure what the API adds over calling the host directly.
    Bench {
        #[arg(long, default_value_t = 30)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Bring back the database (SQLite, by Litestream) and every sprite
    /// from the object store (--object-store, with the replication key of
    /// the server that wrote it: --replica-key-file) onto this machine,
    /// whose data directory must hold no database. Sprites are listed at
    /// once; each one's disk comes back on its first use.
    Recover,
    /// Create a user (the first one is the admin) and print an API token for
    /// their personal organization. The password is read from standard input.
    CreateUser {
        #[arg(long)]
        email: String,
        /// Also the name of the user's personal organization.
        #[arg(long)]
        handle: String,
        /// Name of the token to create.
        #[arg(long, default_value = "cli")]
        token_name: String,
    },
    /// Import a root file system (a tar archive, maybe gzipped, as `docker
    /// export` makes it, or a directory) as a template for everyone.
    ImportImage {
        /// The template's name (`sprite create NAME --template THIS`).
        #[arg(long)]
        name: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The archive or the directory.
        path: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    // The file's settings become environment variables before any thread
    // exists, so clap reads them with the precedence it gives variables.
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = sprites_server::config_file::locate(&args) {
        use clap::CommandFactory;
        sprites_server::config_file::apply(&path, &Config::command())?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve_or_admin())
}

async fn serve_or_admin() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut cfg = Config::parse();
    cfg.domain = cfg.domain.as_deref().map(domain_name).transpose()?;
    std::fs::create_dir_all(&cfg.host.data_dir)?;
    let url = db_url(&cfg);
    if let Some(Cmd::Admin(Admin::Recover)) = cfg.cmd {
        return recover(&cfg, &url).await;
    }
    let db = Db::connect(&url).await?;
    let sessions = sprites_server::http::session::Store::connect(&url).await?;
    let urls = cfg.urls(cfg.listen().port());
    match cfg.cmd.take() {
        Some(Cmd::Admin(Admin::CreateUser {
            email,
            handle,
            token_name,
        })) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let user = accounts::create_user(
                &db,
                &email,
                &handle,
                password.trim_end_matches(['\r', '\n']),
            )
            .await?;
            let token = accounts::create_token(&db, &user.id, &user.org_id, &token_name).await?;
            println!("{token}");
            Ok(())
        }
        Some(Cmd::Admin(Admin::ImportImage {
            name,
            title,
            description,
            path,
        })) => {
            let host = open_host(&cfg, cfg.host.config(true)?).await?.verbs();
            let settings = sprites_server::Settings {
                templates: sprites_server::domain::templates::Catalog::load(
                    &cfg.templates_dir,
                    &cfg.host.mirror,
                )?,
                ..Default::default()
            };
            let state = AppState::new(host, db, sessions, urls, settings);
            let archive = sprites_server::domain::templates::archive_of(&path)?;
            let params = sprites_server::domain::templates::ImportParams {
                name,
                title,
                description,
                scope: None,
            };
            let t = sprites_server::domain::templates::import(
                &state,
                sprites_server::domain::templates::Importer::Operator,
                params,
                archive,
                u64::MAX,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
            println!(
                "imported {} ({}): sprite create NAME --template {}",
                t.title, t.name, t.name
            );
            Ok(())
        }
        Some(Cmd::Bench { runs, json }) => {
            let mut host_cfg = cfg.host.config(true)?;
            host_cfg.instance = "bench-api".into();
            let host = Host::open(host_cfg).await?;
            let recipe = Recipe::debian(&cfg.host.mirror);
            host.prepare_image("debian", &recipe, |l| eprintln!("  {l}"))
                .await?;
            sprites_server::bench::run(host, runs, json).await
        }
        Some(Cmd::Admin(Admin::Recover)) => unreachable!("recovered before the database opens"),
        Some(Cmd::Serve) | None => run(cfg, db, sessions).await,
    }
}

/// `admin recover`: the database, then the sprites' records.
async fn recover(cfg: &Config, url: &str) -> anyhow::Result<()> {
    let Some(store) = &cfg.host.object_store else {
        anyhow::bail!("recover from where? give --object-store (or SPRITES_OBJECT_STORE)");
    };
    let restored = match litestream::sqlite_path(url) {
        Some(db) if db.exists() => anyhow::bail!(
            "{} exists: recover brings a server back on a machine without its database",
            db.display()
        ),
        Some(db) => {
            let config =
                litestream::write_config(&cfg.host.data_dir, &db, &replica_of(cfg, store))?;
            litestream::restore(&config, &db).await?;
            println!("database restored: {}", db.display());
            true
        }
        None => {
            println!("the database is PostgreSQL: restore it from its own backup");
            false
        }
    };
    let host = Host::open(cfg.host.config(false)?).await?;
    let mut found = host.recover().await?;
    for failure in &found.failures {
        eprintln!("not recovered: {failure}");
    }
    if restored {
        // A sprite the database does not know was destroyed just before
        // the machine was lost (its objects not yet deleted), or made in
        // its last seconds (the database's copy a moment behind): nobody
        // reaches it through the API; it is said, and left as it is.
        let known = sprites_server::domain::sprites::host_names(&Db::connect(url).await?)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
        let (kept, unknown): (Vec<_>, Vec<_>) = std::mem::take(&mut found.sprites)
            .into_iter()
            .partition(|name| known.contains(name.as_str()));
        for name in &unknown {
            eprintln!(
                "sprite {name} is in the object store but not in the database \
                 (destroyed, or made, just before the machine was lost): left as it is"
            );
        }
        found.sprites = kept;
    }
    println!(
        "{} sprites recovered from {store}; each one's disk comes back on its first use. \
         Start the server as usual.",
        found.sprites.len()
    );
    Ok(())
}

fn replica_of(cfg: &Config, store: &str) -> litestream::Replica {
    litestream::Replica {
        url: store.to_string(),
        endpoint: cfg.host.object_store_endpoint.clone(),
        region: cfg.host.object_store_region.clone(),
    }
}

async fn run(
    cfg: Config,
    db: Db,
    sessions: sprites_server::http::session::Store,
) -> anyhow::Result<()> {
    let host_config = cfg.host.config(true)?;
    // What the database keeps of TLS keys is sealed with the replica key.
    let secrets = tls::store::Secrets::sealed_with(host_config.bucket.clone());
    let opened = open_host(&cfg, host_config).await?;
    let host = opened.verbs();
    if let (Some(store), Some(db)) = (
        &cfg.host.object_store,
        litestream::sqlite_path(&db_url(&cfg)),
    ) {
        let config = litestream::write_config(&cfg.host.data_dir, &db, &replica_of(&cfg, store))?;
        litestream::spawn(config)?;
    }
    let recipe = Recipe::debian(&cfg.host.mirror);
    let progress = Box::new(|line: &str| println!("  base image: {line}"));
    host.prepare_image("debian", &recipe, progress).await?;
    let tls = cfg.tls()?;
    let listener = tokio::net::TcpListener::bind(cfg.listen()).await?;
    let https = match &tls {
        Some(_) => Some(tokio::net::TcpListener::bind(cfg.https_listen).await?),
        None => None,
    };
    let port = listener.local_addr()?.port();
    let public_port = match &https {
        Some(https) => https.local_addr()?.port(),
        None => port,
    };
    let urls = cfg.urls(public_port);
    let settings = sprites_server::Settings {
        open_signup: cfg.open_signup,
        secure_cookies: cfg.secure_cookies || tls.is_some(),
        sleep: sprites_server::workers::idle::SleepDefaults {
            warm_after: std::time::Duration::from_secs(cfg.sleep_after),
            cold_after: std::time::Duration::from_secs(cfg.cold_after),
        },
        templates: sprites_server::domain::templates::Catalog::load(
            &cfg.templates_dir,
            &cfg.host.mirror,
        )?,
        replicate_every: std::time::Duration::from_secs(cfg.replicate_every),
        evict_after: std::time::Duration::from_secs(cfg.evict_after),
        metrics_token: cfg.metrics_token.clone(),
        limits: sprites_server::domain::limits::OrgLimits {
            running: cfg.running_limit,
            warm: cfg.warm_limit,
            creates_per_minute: cfg.create_rate,
        },
        host_timeout: Some(std::time::Duration::from_secs(cfg.host_timeout)),
    };
    let mut state = AppState::new(host, db, sessions, urls, settings);
    if let Opened::Fleet(fleet, _) = &opened {
        state.cluster = Some(fleet.clone());
    }
    state.signing =
        sprites_server::http::signing::Key::load_or_create(&cfg.host.data_dir.join("server.key"))?;
    sprites::reconcile(&state).await?;
    let state = state.with_background();
    let _heartbeat = match &opened {
        Opened::Fleet(fleet, addresses) => Some(
            heartbeat::Heart {
                db: state.db.clone(),
                fleet: fleet.clone(),
                addresses: addresses.clone(),
                timeout: state.settings.host_timeout(),
                since: std::time::Instant::now(),
            }
            .spawn(),
        ),
        Opened::Here(_) => None,
    };
    // Sprites on this machine reach the server over loopback.
    let untrack = |port| {
        let Opened::Here(host) = &opened else {
            return None;
        };
        host.untrack_loopback(port)
            .inspect_err(
                |e| tracing::warn!(error = %e, "loopback connections to the server stay tracked"),
            )
            .ok()
    };
    let _untracked = (
        untrack(port),
        (public_port != port).then(|| untrack(public_port)),
    );
    match (tls, https) {
        (Some(settings), Some(https)) => {
            let certs = Tls::new(state.clone(), settings, secrets)?;
            println!("Sprites is ready: open {}/", state.urls.app_url());
            tls::serve(certs, https, listener, cfg.public_dir, shutdown_signal()).await?;
        }
        _ => {
            println!("Sprites is ready: open http://localhost:{port}/");
            let app = app(state.clone(), cfg.public_dir);
            serve(listener, state, app, shutdown_signal()).await?;
        }
    }
    println!("Stopped; sprites keep running and are re-adopted on the next start.");
    Ok(())
}

/// Where the sprites live.
enum Opened {
    /// This machine.
    Here(Arc<Host>),
    /// Host daemons, with each one's address by name.
    Fleet(Arc<Fleet>, HashMap<String, String>),
}

impl Opened {
    fn verbs(&self) -> Arc<dyn Verbs> {
        match self {
            Opened::Here(host) => host.clone(),
            Opened::Fleet(fleet, _) => fleet.clone(),
        }
    }
}

/// The host the sprites live on: this machine's, or, with --host-daemon,
/// the fleet of host daemons, each new sprite placed on the one with the
/// most room.
async fn open_host(cfg: &Config, host_config: vmhost::HostConfig) -> anyhow::Result<Opened> {
    let Some(identity) = cfg
        .cluster_identity
        .as_ref()
        .filter(|_| !cfg.host_daemon.is_empty())
    else {
        return Ok(Opened::Here(Arc::new(Host::open(host_config).await?)));
    };
    let identity = Identity::open(identity, Role::Server)?;
    let mut members = Vec::new();
    let mut addresses = HashMap::new();
    for at in &cfg.host_daemon {
        let Some((name, addr)) = at.split_once('=') else {
            anyhow::bail!("--host-daemon {at:?}: give NAME=ADDRESS:PORT");
        };
        let remote = Remote::connect(name, addr, &identity)
            .await
            .map_err(|e| anyhow::anyhow!("the host daemon {at}: {e}"))?;
        println!("Sprites live on host {name} at {addr}");
        members.push(Member {
            name: name.to_string(),
            verbs: Arc::new(remote),
        });
        addresses.insert(name.to_string(), addr.to_string());
    }
    let fleet = Fleet::new(members, Floors::default())
        .await
        .map_err(|e| anyhow::anyhow!("the host daemons: {e}"))?;
    Ok(Opened::Fleet(Arc::new(fleet), addresses))
}

impl Config {
    /// The plain HTTP address.
    fn listen(&self) -> SocketAddr {
        let port = if self.domain.is_some() { 80 } else { 8080 };
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], port)))
    }

    /// Where the app and the sprites answer, with the port clients use.
    fn urls(&self, port: u16) -> SpriteUrls {
        SpriteUrls {
            scheme: if self.domain.is_some() {
                "https"
            } else {
                "http"
            }
            .into(),
            base_domain: self
                .domain
                .clone()
                .unwrap_or_else(|| self.base_domain.clone()),
            port,
        }
    }

    /// How the server serves HTTPS, when it does (with --domain).
    fn tls(&self) -> anyhow::Result<Option<TlsSettings>> {
        let Some(domain) = &self.domain else {
            if self.tls_cert.is_some() {
                anyhow::bail!("--tls-cert is the certificate of a --domain: give that too");
            }
            return Ok(None);
        };
        let certificates = match (&self.tls_cert, &self.tls_key) {
            (Some(chain), Some(key)) => Certificates::Given {
                chain: chain.clone(),
                key: key.clone(),
            },
            _ => Certificates::Acme(AcmeSettings {
                directory: self.acme_directory.clone(),
                email: self.acme_email.clone(),
                ca_root: self.acme_ca_root.clone(),
                orders_per_hour: self.acme_orders_per_hour,
            }),
        };
        Ok(Some(TlsSettings {
            domain: domain.clone(),
            certificates,
        }))
    }
}

/// `--domain` as served: lower case, no final dot; a host name only.
fn domain_name(given: &str) -> anyhow::Result<String> {
    let name = given.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        anyhow::bail!("--domain {given:?}: give a host name such as sprites.example.com (no scheme, port or path)");
    }
    Ok(name)
}

/// The database URL: the one given, else SQLite in the data directory.
fn db_url(cfg: &Config) -> String {
    cfg.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            cfg.host.data_dir.join("sprites.db").display()
        )
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
