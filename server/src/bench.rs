//! `sprites-server bench`: what the API adds. Create to exec-ready, an exec
//! round trip and a checkpoint are timed through HTTP and WebSocket on a
//! server on loopback, and directly on the same host in the same run; the
//! ratio is HTTP over direct (the issue asks for at most 1.3x).

use std::time::Instant;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use vmhost::bench::{print_table, row, Samples};
use vmhost::{CreateOptions, Host, SpriteName};

use crate::{accounts, Settings};

const WARMUP: usize = 2;

/// Runs `true` in `sprite` over the exec WebSocket; waits for its exit.
async fn ws_true(base: &str, token: &str, sprite: &str) -> anyhow::Result<()> {
    let url = format!(
        "{}/v1/sprites/{sprite}/exec?cmd=true",
        base.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Binary(b) = msg? {
            if b.first() == Some(&3) {
                anyhow::ensure!(b.get(1) == Some(&0), "true failed");
                return Ok(());
            }
        }
    }
    anyhow::bail!("no exit code")
}

pub async fn run(host: Host, runs: usize, json_out: bool) -> anyhow::Result<()> {
    let runs = runs.max(5);
    let dir = tempfile_dir()?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    for s in host.list()? {
        host.destroy(&SpriteName::parse(&s.name)?).await?;
    }
    let settings = Settings {
        open_signup: false,
        secure_cookies: false,
        ..Default::default()
    };
    let (base, state) = crate::start_local(host, &url, settings, dir.clone()).await?;
    let (db, host) = (state.db.clone(), state.host.clone());
    let user = accounts::create_user(&db, "bench@example.com", "bench", "a long password").await?;
    let token = accounts::create_token(&db, &user.id, &user.org_id, "bench").await?;
    let http = reqwest::Client::new();

    // Each iteration does the operation once directly and once through the
    // API, so drift in the machine's load affects both sides alike.
    let d0 = SpriteName::parse("direct-0")?;
    let (mut dc, mut hc, mut de, mut he, mut dk, mut hk) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..runs + WARMUP {
        let keep = i >= WARMUP;
        let t = Instant::now();
        let s = SpriteName::parse(&format!("direct-{i}"))?;
        host.create(&s, CreateOptions::default()).await?;
        anyhow::ensure!(host.run(&s, &["true"], b"").await?.code == 0, "true failed");
        let direct = t.elapsed();
        let t = Instant::now();
        let res = http
            .post(format!("{base}/v1/sprites"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("api-{i}")}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "create: {}", res.status());
        ws_true(&base, &token, &format!("api-{i}")).await?;
        if keep {
            dc.push(direct);
            hc.push(t.elapsed());
        }
    }
    for i in 0..3 * runs + WARMUP {
        let t = Instant::now();
        anyhow::ensure!(
            host.run(&d0, &["true"], b"").await?.code == 0,
            "true failed"
        );
        let direct = t.elapsed();
        let t = Instant::now();
        ws_true(&base, &token, "api-0").await?;
        if i >= WARMUP {
            de.push(direct);
            he.push(t.elapsed());
        }
    }
    for i in 0..runs + WARMUP {
        let t = Instant::now();
        host.checkpoint(&d0, "").await?;
        let direct = t.elapsed();
        let t = Instant::now();
        let text = http
            .post(format!("{base}/v1/sprites/api-0/checkpoint"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            text.lines().last().is_some_and(|l| l.contains("complete")),
            "checkpoint: {text}"
        );
        if i >= WARMUP {
            dk.push(direct);
            hk.push(t.elapsed());
        }
    }
    let (direct_create, http_create) = (Samples(dc), Samples(hc));
    let (direct_exec, http_exec) = (Samples(de), Samples(he));
    let (direct_ckpt, http_ckpt) = (Samples(dk), Samples(hk));
    for s in host.list()? {
        host.destroy(&SpriteName::parse(&s.name)?).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);

    let rows = vec![
        row(
            "API: create to exec-ready",
            &http_create,
            Some(direct_create.median()),
            "<= 1.3x direct",
        ),
        row(
            "API: exec `true` over WebSocket",
            &http_exec,
            Some(direct_exec.median()),
            "<= 1.3x direct",
        ),
        row(
            "API: checkpoint (NDJSON)",
            &http_ckpt,
            Some(direct_ckpt.median()),
            "<= 1.3x direct",
        ),
    ];
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sprites-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
