//! HTTPS by the server itself: the real `sprites-server` binary with
//! `--domain`, its certificates from Pebble (Let's Encrypt's test CA, the
//! Debian package) validating HTTP-01 for real against the server's plain
//! listener, with `pebble-challtestsrv` answering Pebble's DNS with
//! 127.0.0.1. Pebble issues 120-second certificates, so renewal happens
//! within the test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprites_server::http::tls::store;
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;

const SERVER: &str = env!("CARGO_BIN_EXE_sprites-server");
const DOMAIN: &str = "sprites.test";
/// Pebble's certificates live this long (seconds); renewal comes at two
/// thirds of it.
const VALIDITY: u64 = 120;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pebble and its DNS, on loopback ports of their own.
struct Pebble {
    _dns: tokio::process::Child,
    _ca: tokio::process::Child,
    directory: String,
    /// The root Pebble's own HTTPS listener is signed by.
    listener_root: PathBuf,
    /// The port Pebble fetches HTTP-01 challenges from.
    http_port: u16,
    /// The root of the certificates Pebble issues (PEM).
    issuing_root: String,
}

impl Pebble {
    async fn start(dir: &Path) -> Pebble {
        // Pebble's listener: a certificate for 127.0.0.1 from a root of ours.
        let (root, cert, key) = store::from_own_root(&["127.0.0.1", "localhost"]).unwrap();
        let listener_root = dir.join("listener-root.pem");
        std::fs::write(&listener_root, &root).unwrap();
        std::fs::write(dir.join("listener.pem"), cert).unwrap();
        std::fs::write(dir.join("listener.key"), key).unwrap();

        let (dns_port, acme_port, mgmt_port, http_port) =
            (free_port(), free_port(), free_port(), free_port());
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.join("listener.pem"),
            "privateKey": dir.join("listener.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": VALIDITY,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let dns = tokio::process::Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble-challtestsrv (Debian's pebble package; scripts/test installs it)");
        let ca = tokio::process::Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble (Debian's pebble package; scripts/test installs it)");
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
            .build()
            .unwrap();
        let directory = format!("https://127.0.0.1:{acme_port}/dir");
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(&directory).send().await.is_err() {
            assert!(Instant::now() < deadline, "Pebble did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let issuing_root = text(client.get(format!("https://127.0.0.1:{mgmt_port}/roots/0"))).await;
        Pebble {
            _dns: dns,
            _ca: ca,
            directory,
            listener_root,
            http_port,
            issuing_root,
        }
    }
}

/// A sprites-server serving HTTPS for `DOMAIN`.
struct Server {
    child: tokio::process::Child,
    https: SocketAddr,
    http: SocketAddr,
}

/// The server replicates (to the Garage scripts/test starts), so what its
/// database keeps of private keys is sealed.
fn command(data: &Path, db: &str) -> tokio::process::Command {
    let store = std::env::var("SPRITES_TEST_OBJECT_STORE")
        .expect("SPRITES_TEST_OBJECT_STORE is not set: run scripts/test, which starts Garage");
    let mut cmd = tokio::process::Command::new(SERVER);
    cmd.env(
        "SPRITES_OBJECT_STORE",
        format!("{store}/t-tls-{}", std::process::id()),
    )
    .env("SPRITES_REPLICA_KEY_FILE", data.join("replica.key"))
    .env("SPRITES_DATA_DIR", vmhost::testing::data_dir())
    .env("SPRITES_RUN_DIR", vmhost::testing::run_dir())
    .env("SPRITES_INSTANCE", "t-tls")
    .env("SPRITES_DATABASE_URL", db)
    .env("SPRITES_PUBLIC_DIR", data)
    .env("SPRITES_TEMPLATES_DIR", data.join("no-templates"))
    .kill_on_drop(true);
    cmd
}

impl Server {
    async fn start(pebble: &Pebble, data: &Path, db: &str, orders_per_hour: u32) -> Server {
        let https: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http: SocketAddr = ([127, 0, 0, 1], pebble.http_port).into();
        let mut child = command(data, db)
            .args(["--domain", DOMAIN, "--acme-email", "ops@sprites.test"])
            .args(["--acme-directory", &pebble.directory])
            .arg("--acme-ca-root")
            .arg(&pebble.listener_root)
            .args(["--acme-orders-per-hour", &orders_per_hour.to_string()])
            .args(["--https-listen", &https.to_string()])
            .args(["--listen", &http.to_string()])
            .args(["--metrics-token", "operator secret"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sprites-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = format!("Sprites is ready: open https://{DOMAIN}:{}/", https.port());
        let deadline = Instant::now() + Duration::from_secs(300);
        while let Ok(Some(line)) = lines.next_line().await {
            if line == ready {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Server { child, https, http };
            }
            assert!(Instant::now() < deadline, "the server did not start");
        }
        panic!("the server stopped before it was ready");
    }

    /// A client that trusts only Pebble's root and finds every name of
    /// `names` at the server.
    fn client(&self, pebble: &Pebble, names: &[&str]) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(pebble.issuing_root.as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none());
        for name in names {
            builder = builder.resolve(name, self.https);
        }
        builder.build().unwrap()
    }

    fn url(&self, name: &str, path: &str) -> String {
        format!("https://{name}:{}{path}", self.https.port())
    }

    /// The serial number of the certificate served for `name`, or the
    /// handshake's error.
    async fn serial(&self, pebble: &Pebble, name: &str) -> Result<String, std::io::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pebble.issuing_root) {
            roots.add(cert).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(store::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.https).await?;
        let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let stream = connector.connect(server_name, tcp).await?;
        let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        Ok(cert.raw_serial_as_string())
    }

    /// A counter of `/metrics`.
    async fn metric(&self, client: &reqwest::Client, name: &str) -> u64 {
        let metrics = client
            .get(self.url(DOMAIN, "/metrics"))
            .bearer_auth("operator secret");
        let text = text(metrics).await;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in the metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// The body of a request's answer.
async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

fn rustls_pemfile_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Makes a public sprite serving its `/root` on port 8080; its URL.
async fn web_sprite(srv: &Server, client: &reqwest::Client, token: &str, name: &str) -> String {
    let api = |path: String| srv.url(DOMAIN, &path);
    let res = client
        .post(api("/v1/sprites".into()))
        .bearer_auth(token)
        .json(&json!({"name": name, "url_settings": {"auth": "public"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let sprite: Value = res.json().await.unwrap();
    let script = format!("echo {name} > /root/index.html; cd /root; (setsid python3 -m http.server 8080 >/dev/null 2>&1 &)");
    let mut res = client
        .post(api(format!("/v1/sprites/{name}/exec")))
        .query(&[("cmd", "sh"), ("cmd", "-c"), ("cmd", &script)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "exec: {}", res.status());
    while res.chunk().await.unwrap().is_some() {}
    sprite["url"].as_str().unwrap().to_string()
}

/// The body of GET `url`, once its sprite's server answers.
async fn page(client: &reqwest::Client, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = client.get(url).send().await.expect("an HTTPS request");
        if res.status() == 200 {
            return res.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "{url}: {}", res.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_https_with_certificates_it_orders_renews_and_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let pebble = Pebble::start(dir.path()).await;
    let db = format!("sqlite://{}", dir.path().join("tls.db").display());
    let token = common::create_user(command(dir.path(), &db), "t").await;
    // Three orders an hour: the app's and two sprites'.
    let srv = Server::start(&pebble, dir.path(), &db, 3).await;
    let names = [
        DOMAIN,
        "web-t.sprites.test",
        "api-t.sprites.test",
        "more-t.sprites.test",
        "nosuch-t.sprites.test",
    ];
    let client = srv.client(&pebble, &names);

    // The app, over TLS chained to Pebble's root, with HSTS.
    let res = client
        .get(srv.url(DOMAIN, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=63072000"
    );
    // Two sprites' URLs, each with a certificate of its own name.
    let web = web_sprite(&srv, &client, &token, "web").await;
    let api = web_sprite(&srv, &client, &token, "api").await;
    assert_eq!(web, srv.url("web-t.sprites.test", ""));
    assert_eq!(page(&client, &format!("{web}/index.html")).await, "web\n");
    assert_eq!(page(&client, &format!("{api}/index.html")).await, "api\n");
    assert_eq!(srv.metric(&client, "sprites_acme_orders_total").await, 3);

    // A name that is no sprite gets no certificate, and orders nothing.
    assert!(srv.serial(&pebble, "nosuch-t.sprites.test").await.is_err());
    assert!(srv.serial(&pebble, "web-t.elsewhere.test").await.is_err());
    assert!(
        srv.metric(&client, "sprites_tls_handshakes_refused_total")
            .await
            >= 2
    );
    assert_eq!(srv.metric(&client, "sprites_acme_orders_total").await, 3);
    // A third sprite is past the hourly bound: no order, no certificate.
    web_sprite(&srv, &client, &token, "more").await;
    assert!(srv.serial(&pebble, "more-t.sprites.test").await.is_err());
    assert_eq!(
        srv.metric(&client, "sprites_acme_orders_refused_total")
            .await,
        1
    );

    // Plain HTTP redirects; cookies are Secure.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain
        .get(format!("http://{}/x?y=1", srv.http))
        .header("host", format!("{DOMAIN}:{}", srv.http.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], srv.url(DOMAIN, "/x?y=1"));
    // A name not under the domain is sent to the app, not to itself.
    let res = plain
        .get(format!("http://{}/x", srv.http))
        .header("host", "elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], srv.url(DOMAIN, "/x"));
    let res = client
        .post(srv.url(DOMAIN, "/v1/auth/signin"))
        .json(&json!({"login": "t", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");

    // The keys are kept sealed: the database's replica leaves the machine.
    let stored = sprites_server::db::Db::connect(&db).await.unwrap();
    let keys: Vec<String> = sqlx::query_scalar("SELECT key_pem FROM tls_certificates")
        .fetch_all(stored.pool())
        .await
        .unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys
        .iter()
        .all(|k| k.starts_with("sealed:") && !k.contains("PRIVATE")));

    // A restart serves the certificates it has, ordering none.
    let web_serial = srv.serial(&pebble, "web-t.sprites.test").await.unwrap();
    let Server { mut child, .. } = srv;
    child.kill().await.unwrap();
    let srv = Server::start(&pebble, dir.path(), &db, 20).await;
    let client = srv.client(&pebble, &names);
    assert_eq!(
        srv.serial(&pebble, "web-t.sprites.test").await.unwrap(),
        web_serial
    );
    let api = srv.url("api-t.sprites.test", "/index.html");
    assert_eq!(page(&client, &api).await, "api\n");
    assert_eq!(srv.metric(&client, "sprites_acme_orders_total").await, 0);

    // Two thirds into its life, each certificate is renewed.
    let deadline = Instant::now() + Duration::from_secs(VALIDITY);
    loop {
        let now = srv.serial(&pebble, "web-t.sprites.test").await.unwrap();
        if now != web_serial {
            break;
        }
        assert!(Instant::now() < deadline, "not renewed");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let web = srv.url("web-t.sprites.test", "/index.html");
    assert_eq!(page(&client, &web).await, "web\n");
    assert!(srv.metric(&client, "sprites_acme_orders_total").await >= 1);

    let Server { mut child, .. } = srv;
    child.kill().await.unwrap();
    let host = vmhost::testing::host("t-tls").await;
    vmhost::testing::destroy_all(&host).await;
}
