//! A real server for API tests: bound to a loopback port, on a real
//! database (SQLite in a temporary file, or the PostgreSQL that
//! `scripts/test` starts) and a real host in the shared test pool.

#![allow(dead_code)]

use sprites_server::{domain::accounts, start_local, AppState};

/// A WebSocket to the test server.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The host the server runs on, for what tests check beneath the
    /// Host's verbs (images, files written before a request).
    pub host: std::sync::Arc<vmhost::Host>,
    _dir: tempfile::TempDir,
}

pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL database for API tests; `scripts/test` provides it.
fn postgres_url() -> String {
    std::env::var("SPRITES_TEST_POSTGRES_URL")
        .expect("SPRITES_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL")
}

pub async fn start(instance: &str, backend: Backend) -> TestServer {
    start_with(instance, backend, true).await
}

/// A server on SQLite with a user of each handle (as [`TestServer::user`]
/// makes them): the server and their tokens, in order.
pub async fn start_as<const N: usize>(
    instance: &str,
    handles: [&str; N],
) -> (TestServer, [String; N]) {
    let srv = start(instance, Backend::Sqlite).await;
    let mut tokens = Vec::with_capacity(N);
    for handle in handles {
        tokens.push(srv.user(handle).await);
    }
    let tokens = tokens.try_into().expect("one token per handle");
    (srv, tokens)
}

/// [`start`], choosing whether anyone may sign up.
pub async fn start_with(instance: &str, backend: Backend, open_signup: bool) -> TestServer {
    let settings = sprites_server::Settings {
        open_signup,
        secure_cookies: false,
        ..Default::default()
    };
    start_with_settings(instance, backend, settings).await
}

/// [`start`] with settings of the test's own.
pub async fn start_with_settings(
    instance: &str,
    backend: Backend,
    settings: sprites_server::Settings,
) -> TestServer {
    start_on(vmhost::testing::config(instance), backend, settings).await
}

/// A server replicating to a prefix of its own in the real Garage
/// scripts/test starts.
pub async fn start_replicated(instance: &str, settings: sprites_server::Settings) -> TestServer {
    let mut cfg = vmhost::testing::config(instance);
    cfg.bucket = Some(test_bucket(instance));
    start_on(cfg, Backend::Sqlite, settings).await
}

/// A prefix of its own, named after `test`, in the real Garage
/// scripts/test starts, sealed with a fresh key.
pub fn test_bucket(test: &str) -> std::sync::Arc<vmhost::replica::Bucket> {
    let base = std::env::var("SPRITES_TEST_OBJECT_STORE")
        .expect("SPRITES_TEST_OBJECT_STORE is not set: run scripts/test, which starts Garage");
    let key_dir = tempfile::tempdir().unwrap();
    let key = vmhost::replica::ReplicaKey::load_or_create(&key_dir.path().join("replica.key"))
        .unwrap()
        .0;
    let bucket = vmhost::replica::BucketConfig {
        url: format!("{base}/{test}-{}-{}", std::process::id(), vmhost::now_ms()),
        ..Default::default()
    };
    std::sync::Arc::new(vmhost::replica::Bucket::open(&bucket, &key).unwrap())
}

async fn start_on(
    cfg: vmhost::HostConfig,
    backend: Backend,
    settings: sprites_server::Settings,
) -> TestServer {
    let instance = cfg.instance.clone();
    let instance = instance.as_str();
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("api.db").display()),
        Backend::Postgres => {
            let url = postgres_url();
            reset_postgres(&url, instance).await
        }
    };
    let host = std::sync::Arc::new(vmhost::testing::host_with(cfg).await);
    let (base, state) = start_local(host.clone(), &url, settings, dir.path().to_path_buf())
        .await
        .expect("start the server");
    TestServer {
        base,
        client: reqwest::Client::new(),
        state,
        host,
        _dir: dir,
    }
}

/// A server of its own over the hosts of `cluster`, on the database at
/// `url`; `beneath` stands for `TestServer::host`.
pub async fn start_over(
    cluster: std::sync::Arc<vmhost::remote::Fleet>,
    beneath: std::sync::Arc<vmhost::Host>,
    url: &str,
    settings: sprites_server::Settings,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let (base, state) =
        sprites_server::start_local_cluster(cluster, url, settings, dir.path().to_path_buf())
            .await
            .expect("start the server");
    TestServer {
        base,
        client: reqwest::Client::new(),
        state,
        host: beneath,
        _dir: dir,
    }
}

/// A fresh PostgreSQL database named after `instance`; its URL.
pub async fn postgres(instance: &str) -> String {
    reset_postgres(&postgres_url(), instance).await
}

/// A fresh schema per test on PostgreSQL: the database named after the
/// instance is dropped and made again.
async fn reset_postgres(url: &str, instance: &str) -> String {
    use sqlx::Connection;
    let db = instance.replace('-', "_");
    let mut admin = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').expect("a database URL ends in /NAME");
    format!("{base}/{db}")
}

impl TestServer {
    /// A user with a personal organization and a token in it.
    pub async fn user(&self, handle: &str) -> String {
        let user = accounts::create_user(
            &self.state.db,
            &format!("{handle}@example.com"),
            handle,
            "a long password",
        )
        .await
        .unwrap();
        accounts::create_token(&self.state.db, &user.id, &user.org_id, "test")
            .await
            .unwrap()
    }

    /// Runs `argv` in `sprite` (its API name) beneath the API, and waits
    /// for it: its output.
    pub async fn run(&self, sprite: &str, argv: &[&str]) -> vmhost::ExecOutput {
        let host = self.host_name(sprite).await;
        self.state
            .host
            .run(&host, argv, b"")
            .await
            .expect("run in the sprite")
    }

    /// Runs `script` in `sprite`, in the background.
    pub async fn background(&self, sprite: &str, script: &str) {
        let script = format!("(setsid sh -c '{script}' >/dev/null 2>&1 &)");
        let out = self
            .state
            .host
            .run(&self.host_name(sprite).await, &["sh", "-c", &script], b"")
            .await
            .unwrap();
        assert_eq!(out.code, 0);
    }

    /// Waits (10 s at most) until something in `sprite` listens on `port`.
    pub async fn listening(&self, sprite: &str, port: u16) {
        let host = self.host_name(sprite).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let ports = self.state.host.ports(&host).await.unwrap();
            if ports.iter().any(|p| p.port == port) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing listens on {port} in {sprite} after 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The host's name of the caller-facing sprite `sprite` (host sprites
    /// take their API name as hostname).
    pub async fn host_name(&self, sprite: &str) -> vmhost::SpriteName {
        let info = self
            .state
            .host
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.hostname == sprite)
            .expect("the sprite on the host");
        vmhost::SpriteName::parse(&info.name).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request as the holder of `token`; the status and the JSON
    /// body (or the text, as a JSON string, when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        json: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let res = self.respond(method, token, path, json).await;
        let status = res.status();
        let text = res.text().await.expect("response body");
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    /// The whole response (headers too) to `method` at `path` as the holder
    /// of `token`, with `json` as the body.
    pub async fn respond(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        json: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(json) = json {
            req = req.json(&json);
        }
        req.send().await.expect("request")
    }

    /// The status of a WebSocket request to `path` (an upgrade asked) that
    /// is refused before the upgrade.
    pub async fn upgrade_refused(&self, token: &str, path: &str) -> reqwest::StatusCode {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .expect("request")
            .status()
    }

    /// Sends one of the API's calls (`sprites_wire::client`) as the holder
    /// of `token`: the status and the answer as JSON.
    pub async fn send<A>(
        &self,
        token: &str,
        call: &sprites_wire::client::Call<A>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let method = reqwest::Method::from_bytes(call.method.as_str().as_bytes()).unwrap();
        self.call(method, token, &call.path, call.body.clone())
            .await
    }

    /// Opens the exec WebSocket of `sprite` with `query` as the holder of
    /// `token`: the socket and the upgrade's headers.
    pub async fn exec_socket(
        &self,
        token: &str,
        sprite: &str,
        query: &str,
    ) -> (Socket, tokio_tungstenite::tungstenite::http::HeaderMap) {
        self.socket(token, &format!("/v1/sprites/{sprite}/exec?{query}"))
            .await
    }

    /// Opens the WebSocket at `path` as the holder of `token`: the socket
    /// and the upgrade's headers.
    pub async fn socket(
        &self,
        token: &str,
        path: &str,
    ) -> (Socket, tokio_tungstenite::tungstenite::http::HeaderMap) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let ws = self.base.replace("http", "ws");
        let url = format!("{ws}{path}");
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, res) = tokio_tungstenite::connect_async(req).await.unwrap();
        (socket, res.headers().clone())
    }

    /// Creates a blank sprite named `name` as the holder of `token`.
    pub async fn create(
        &self,
        token: &str,
        name: impl Into<String>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let req = sprites_wire::api::CreateSprite::named(name);
        self.send(token, &sprites_wire::client::create_sprite(&req))
            .await
    }

    /// The status alone of one of the API's calls.
    pub async fn status<A>(
        &self,
        token: &str,
        call: &sprites_wire::client::Call<A>,
    ) -> reqwest::StatusCode {
        self.send(token, call).await.0
    }

    /// The answer to one of the API's calls, read as its type; anything
    /// but a success fails the test.
    pub async fn ok<A: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        call: sprites_wire::client::Call<A>,
    ) -> A {
        let (status, v) = self.send(token, &call).await;
        assert!(
            status.is_success(),
            "{} {}: {status} {v}",
            call.method.as_str(),
            call.path
        );
        call.read_value(v).expect("the answer reads as its type")
    }

    pub async fn get(&self, token: &str, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::GET, token, path, None).await
    }

    pub async fn post(
        &self,
        token: &str,
        path: &str,
        json: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::POST, token, path, Some(json))
            .await
    }

    pub async fn put(
        &self,
        token: &str,
        path: &str,
        json: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::PUT, token, path, Some(json))
            .await
    }

    pub async fn delete(
        &self,
        token: &str,
        path: &str,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::DELETE, token, path, None).await
    }
}

/// A test's sprites go with its server, also when the test fails: the
/// pool is shared by every test.
impl Drop for TestServer {
    fn drop(&mut self) {
        let host = self.state.host.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                for s in host.list().await.unwrap_or_default() {
                    if let Ok(name) = vmhost::SpriteName::parse(&s.name) {
                        let _ = host.destroy(&name).await;
                    }
                }
            })
        });
    }
}

/// Makes the user `handle` (password "a long password") with `command`, a
/// `sprites-server` of the test's, through `admin create-user`: their
/// token.
pub async fn create_user(mut command: tokio::process::Command, handle: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = command
        .args(["admin", "create-user", "--handle", handle])
        .args(["--email", &format!("{handle}@example.com")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sprites-server admin create-user");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a long password").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "admin create-user: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The exec WebSocket's query that runs `script` with `sh -c`.
pub fn exec_query(script: &str) -> String {
    ["sh", "-c", script]
        .iter()
        .map(|w| format!("cmd={}", sprites_wire::client::escape(w)))
        .collect::<Vec<_>>()
        .join("&")
}
