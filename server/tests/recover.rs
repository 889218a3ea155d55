//! A whole server comes back on another machine: the real `sprites-server`
//! binary replicates its sprites (to the real Garage scripts/test starts)
//! and its SQLite database (by the real Litestream), is killed with
//! SIGKILL, and `sprites-server admin recover` on an empty data directory
//! brings back the accounts, the sprite and its files.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;

const SERVER: &str = env!("CARGO_BIN_EXE_sprites-server");

struct Machine {
    data: PathBuf,
    run: PathBuf,
    database: Option<String>,
    egress: bool,
}

impl Machine {
    fn command(&self, store: &str, key: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(SERVER);
        cmd.env("SPRITES_DATA_DIR", &self.data)
            .env("SPRITES_RUN_DIR", &self.run)
            .env("SPRITES_INSTANCE", "t-recover")
            .env("SPRITES_OBJECT_STORE", store)
            .env("SPRITES_REPLICA_KEY_FILE", key)
            .env("SPRITES_REPLICATE_EVERY", "1")
            .env("SPRITES_METRICS_TOKEN", "operator secret")
            .env("SPRITES_EGRESS", self.egress.to_string())
            .env("SPRITES_PUBLIC_DIR", &self.data)
            .env("SPRITES_TEMPLATES_DIR", self.data.join("no-templates"))
            .env_remove("SPRITES_DATABASE_URL")
            .kill_on_drop(true);
        if let Some(url) = &self.database {
            cmd.env("SPRITES_DATABASE_URL", url);
        }
        cmd
    }

    /// Starts the server; its base URL once it says it is ready.
    async fn serve(&self, store: &str, key: &Path) -> (tokio::process::Child, String) {
        let mut child = self
            .command(store, key)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sprites-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(300);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Sprites is ready: open http://localhost:") {
                let port = rest.trim_end_matches('/');
                // Keep reading its output so it never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return (child, format!("http://127.0.0.1:{port}"));
            }
            assert!(Instant::now() < deadline, "the server did not start");
        }
        panic!("the server stopped before it was ready");
    }
}

async fn api(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = client
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Runs `sh -c script` in the sprite over HTTP; its standard output.
async fn exec(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    sprite: &str,
    script: &str,
) -> String {
    let mut res = client
        .post(format!("{base}/v1/sprites/{sprite}/exec"))
        .query(&[("cmd", "sh"), ("cmd", "-c"), ("cmd", script)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "exec: {}", res.status());
    // One frame per chunk: a type byte (1 stdout, 2 stderr, 3 exit), then the bytes.
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        if chunk[0] == 1 {
            out.extend_from_slice(&chunk[1..]);
        }
    }
    String::from_utf8(out).unwrap()
}

/// Waits until `sprite` is replicated: shipped after its writes, then current.
async fn current(client: &reqwest::Client, base: &str, token: &str, sprite: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let v = api(
            client,
            base,
            token,
            "GET",
            &format!("/v1/sprites/{sprite}"),
            None,
        )
        .await;
        let r = v["replication"].clone();
        seen.push(r["state"].as_str().unwrap_or("").to_string());
        if r["state"] == "current" && r["last_shipped_checkpoint"].is_string() {
            assert_eq!(r["location"], "local");
            assert_eq!(r["lag_seconds"], 0);
            return;
        }
        assert!(Instant::now() < deadline, "never current: {seen:?} {r}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The sprites with objects in the bucket (their host names).
async fn sprites_in(bucket: &vmhost::replica::Bucket) -> std::collections::BTreeSet<String> {
    bucket
        .list("sprites/t-recover/")
        .await
        .unwrap()
        .iter()
        .filter_map(|k| {
            Some(
                k.strip_prefix("sprites/t-recover/")?
                    .split('/')
                    .next()?
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_with_its_disk_comes_back_from_the_bucket_on_another_machine() {
    let base_store = std::env::var("SPRITES_TEST_OBJECT_STORE")
        .expect("SPRITES_TEST_OBJECT_STORE is not set: run scripts/test, which starts Garage");
    let store = format!(
        "{base_store}/t-recover-{}-{}",
        std::process::id(),
        vmhost::now_ms()
    );
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("replica.key");
    let db_dir = tempfile::tempdir().unwrap();
    // The first machine: the shared test pool (its images are built).
    let a = Machine {
        data: vmhost::testing::data_dir(),
        run: vmhost::testing::run_dir(),
        database: Some(format!("sqlite://{}", db_dir.path().join("a.db").display())),
        egress: true,
    };
    // Leftovers of an interrupted run of this test.
    let leftovers = vmhost::testing::host("t-recover").await;
    drop(leftovers);

    let token = common::create_user(a.command(&store, &key), "r").await;
    let (mut server_a, url_a) = a.serve(&store, &key).await;
    let client = reqwest::Client::new();
    let create = |name: &'static str| {
        api(
            &client,
            &url_a,
            &token,
            "POST",
            "/v1/sprites",
            Some(json!({ "name": name })),
        )
    };
    create("notes").await;
    assert_eq!(
        exec(
            &client,
            &url_a,
            &token,
            "notes",
            "echo kept > /root/notes.txt && cat /root/notes.txt"
        )
        .await,
        "kept\n"
    );
    // A second sprite, replicated, then destroyed: its objects leave the
    // bucket, and it does not come back.
    create("gone").await;
    exec(
        &client,
        &url_a,
        &token,
        "gone",
        "echo short-lived > /root/x",
    )
    .await;
    current(&client, &url_a, &token, "gone").await;
    let bucket = vmhost::replica::Bucket::open(
        &vmhost::replica::BucketConfig {
            url: store.clone(),
            ..Default::default()
        },
        &vmhost::replica::ReplicaKey::load(&key).unwrap(),
    )
    .unwrap();
    assert_eq!(sprites_in(&bucket).await.len(), 2);
    api(&client, &url_a, &token, "DELETE", "/v1/sprites/gone", None).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sprites_in(&bucket).await.len() > 1 {
        assert!(
            Instant::now() < deadline,
            "a destroyed sprite's objects stay in the bucket"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    current(&client, &url_a, &token, "notes").await;
    // The operator sees it in the metrics, with the token only.
    let metrics = |token: Option<&str>| {
        let mut req = client.get(format!("{url_a}/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), 401);
    assert_eq!(metrics(Some(&token)).await.unwrap().status(), 401);
    let text = metrics(Some("operator secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sprites_sprites{phase=\"running\",location=\"local\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sprites_replication_max_lag_seconds 0"),
        "{text}"
    );
    assert!(
        text.contains("sprites_replication_pending_checkpoints 0"),
        "{text}"
    );
    let shipped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sprites_replication_shipped_bytes_total "))
        .expect("shipped bytes")
        .parse()
        .unwrap();
    assert!(shipped > 0, "{text}");
    assert!(
        text.contains("sprites_checkpoint_duration_seconds_count"),
        "{text}"
    );
    // Litestream ships the database every second.
    tokio::time::sleep(Duration::from_secs(5)).await;
    server_a.kill().await.unwrap();
    server_a.wait().await.unwrap();
    // The machine is gone: its sprites with it.
    let host_a = vmhost::testing::host("t-recover").await;
    drop(host_a);

    let b = Machine {
        data: PathBuf::from(format!(
            "{}-server-recover",
            vmhost::testing::data_dir().display()
        )),
        run: PathBuf::from(format!(
            "{}-server-recover",
            vmhost::testing::run_dir().display()
        )),
        database: None,
        egress: false,
    };
    vmhost::testing::fresh_data_dir(&b.data).unwrap();
    let out = b
        .command(&store, &key)
        .args(["admin", "recover"])
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("database restored"), "{said}");
    assert!(said.contains("1 sprites recovered"), "{said}");
    // Recovering twice is refused: the database is there now.
    let again = b
        .command(&store, &key)
        .args(["admin", "recover"])
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());

    let (mut server_b, url_b) = b.serve(&store, &key).await;
    // The same token, the same sprite, listed at once from the bucket.
    let v = api(&client, &url_b, &token, "GET", "/v1/sprites/notes", None).await;
    assert_eq!(v["replication"]["location"], "bucket", "{v}");
    // First use brings its disk back.
    assert_eq!(
        exec(&client, &url_b, &token, "notes", "cat /root/notes.txt").await,
        "kept\n"
    );
    let v = api(&client, &url_b, &token, "GET", "/v1/sprites/notes", None).await;
    assert_eq!(v["replication"]["location"], "local", "{v}");

    server_b.kill().await.unwrap();
    server_b.wait().await.unwrap();
    let mut cfg = vmhost::testing::config("t-recover");
    cfg.data_dir = b.data.clone();
    cfg.run_dir = b.run.clone();
    cfg.egress = false;
    let host_b = vmhost::Host::open(cfg).await.unwrap();
    vmhost::testing::destroy_all(&host_b).await;
}
