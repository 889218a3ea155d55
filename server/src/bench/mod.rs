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

use crate::domain::accounts;
use crate::Settings;

mod tls;

const WARMUP: usize = 2;

/// Runs `true` in `sprite` over the exec WebSocket; waits for its exit.
async fn ws_true(base: &str, token: &str, sprite: &str) -> anyhow::Result<()> {
    let path = format!("/v1/sprites/{sprite}/exec?cmd=true");
    let mut ws = socket(base, token, &path).await?;
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `path`'s WebSocket as the holder of `token`.
async fn socket(base: &str, token: &str, path: &str) -> anyhow::Result<Socket> {
    let url = format!("{}{path}", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(tokio_tungstenite::connect_async(req).await?.0)
}

/// Runs `true` as one operation of the open control socket `ws`; waits for
/// the operation's end.
async fn control_true(ws: &mut Socket) -> anyhow::Result<()> {
    use futures_util::SinkExt;
    use sprites_wire::control::{Arg, Envelope};
    let start = Envelope::Start {
        id: None,
        op: "exec".into(),
        args: [("cmd".to_string(), Arg::Text("true".into()))].into(),
    };
    ws.send(Message::Text(start.to_text().into())).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(t) = msg? {
            match Envelope::parse(&t) {
                Some(Ok(Envelope::Complete { args, .. })) => {
                    anyhow::ensure!(args.exit_code == Some(0), "true failed");
                    return Ok(());
                }
                Some(Ok(Envelope::Error { args, .. })) => anyhow::bail!("{}", args.message),
                _ => {}
            }
        }
    }
    anyhow::bail!("the control socket closed")
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
    // The bench times the host directly too: it keeps the concrete one.
    let direct = std::sync::Arc::new(host);
    let (base, state) = crate::start_local(direct.clone(), &url, settings, dir.clone()).await?;
    let port: u16 = base.rsplit(':').next().unwrap_or("").parse()?;
    let _untracked = direct.untrack_loopback(port).ok();
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
    let mut control = socket(&base, &token, "/v1/sprites/api-0/control").await?;
    let mut ce = vec![];
    for i in 0..3 * runs + WARMUP {
        let t = Instant::now();
        anyhow::ensure!(
            host.run(&d0, &["true"], b"").await?.code == 0,
            "true failed"
        );
        let direct = t.elapsed();
        let t = Instant::now();
        ws_true(&base, &token, "api-0").await?;
        let per_call = t.elapsed();
        let t = Instant::now();
        control_true(&mut control).await?;
        if i >= WARMUP {
            de.push(direct);
            he.push(per_call);
            ce.push(t.elapsed());
        }
    }
    drop(control);
    let watch = watch_latency(&base, &token, &direct, runs).await?;
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
    // The URL rows first: the others destroy many sprites, and the pool's
    // cleaner works through their subvolumes for a while after.
    let mut url_rows = urls(&base, &state, &direct, &http, &token, runs).await?;
    let make_sprite = async |name: &str| -> anyhow::Result<()> {
        let res = http
            .post(format!("{base}/v1/sprites"))
            .bearer_auth(&token)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "create {name}: {}", res.status());
        Ok(())
    };
    url_rows.extend(tls::rows(&state, port, make_sprite, runs).await?);
    let (blank, from_template) = templates(&base, &http, &token, runs).await?;
    let class_rows = class_start(&base, &state, &http, &token, CLASS_SIZE).await?;
    let (direct_create, http_create) = (Samples(dc), Samples(hc));
    let (direct_exec, http_exec, control_exec) = (Samples(de), Samples(he), Samples(ce));
    let (direct_ckpt, http_ckpt) = (Samples(dk), Samples(hk));
    for s in host.list().await? {
        host.destroy(&SpriteName::parse(&s.name)?).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);

    let mut rows = vec![
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
            "API: exec `true` on an open /control socket",
            &control_exec,
            Some(http_exec.median()),
            "< 1x a WebSocket per call",
        ),
        row(
            "API: checkpoint (NDJSON)",
            &http_ckpt,
            Some(direct_ckpt.median()),
            "<= 1.3x direct",
        ),
        row(
            "API: create from a template to exec-ready",
            &from_template,
            Some(blank.median()),
            "~1x blank create",
        ),
    ];
    rows.push(row(
        "API: fs/watch event after a write",
        &watch,
        None,
        "< 100 ms",
    ));
    rows.extend(class_rows);
    rows.append(&mut url_rows);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

/// From a file written in sprite `api-0` (through the host, as a command
/// or an editor would) to its event on an open `fs/watch` socket.
async fn watch_latency(
    base: &str,
    token: &str,
    host: &Host,
    runs: usize,
) -> anyhow::Result<Samples> {
    use futures_util::SinkExt;
    use sprites_wire::fs::{WatchMessage, WatchRequest};
    let mut ws = socket(base, token, "/v1/sprites/api-0/fs/watch").await?;
    let subscribe = WatchRequest::Subscribe {
        paths: vec!["/root".into()],
        recursive: false,
        working_dir: None,
    };
    ws.send(Message::Text(serde_json::to_string(&subscribe)?.into()))
        .await?;
    let name = host
        .list()?
        .into_iter()
        .find(|s| s.hostname == "api-0")
        .ok_or_else(|| anyhow::anyhow!("no sprite api-0"))?;
    let files = host.sprite_files(&SpriteName::parse(&name.name)?).await?;
    let mut times = vec![];
    for i in 0..runs + WARMUP {
        let path = format!("/root/watched-{i}");
        let t = Instant::now();
        files.write(&path, b"x".to_vec(), None, false).await?;
        loop {
            let Some(msg) = ws.next().await else {
                anyhow::bail!("the watch closed")
            };
            if let Message::Text(text) = msg? {
                if let Ok(WatchMessage::Event { path: p, .. }) = serde_json::from_str(&text) {
                    if p == path {
                        break;
                    }
                }
            }
        }
        if i >= WARMUP {
            times.push(t.elapsed());
        }
    }
    Ok(Samples(times))
}

/// Students starting one assignment at once in the class bench.
const CLASS_SIZE: usize = 50;

/// A class of `size` students presses Start on one assignment at the same
/// moment; each student's time runs from their request to their sprite
/// answering an exec. The floor is one student starting alone.
async fn class_start(
    base: &str,
    state: &crate::AppState,
    http: &reqwest::Client,
    teacher_token: &str,
    size: usize,
) -> anyhow::Result<Vec<vmhost::bench::Row>> {
    let db = &state.db;
    let post = |token: &str, path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let res = post(
        teacher_token,
        "/v1/organizations",
        json!({"slug": "bench-class", "name": "Bench class", "class": true}),
    )
    .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "make the class: {}",
        res.text().await?
    );
    let class: serde_json::Value = res.json().await?;
    let code = class["join_code"].as_str().unwrap_or_default().to_string();
    let teacher = post(
        teacher_token,
        "/v1/tokens",
        json!({"name": "class", "organization": "bench-class"}),
    )
    .await?
    .json::<serde_json::Value>()
    .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let res = post(&teacher, "/v1/sprites", json!({"name": "lab-prep"})).await?;
    anyhow::ensure!(
        res.status().is_success(),
        "the teacher's sprite: {}",
        res.status()
    );
    let text = post(
        &teacher,
        "/v1/sprites/lab-prep/checkpoint",
        json!({"comment": "start"}),
    )
    .await?
    .text()
    .await?;
    anyhow::ensure!(text.contains("complete"), "checkpoint: {text}");
    let res = post(
        &teacher,
        "/v1/organizations/bench-class/assignments",
        json!({"name": "lab", "title": "Lab", "sprite": "lab-prep", "checkpoint": "v0"}),
    )
    .await?;
    anyhow::ensure!(res.status().is_success(), "publish: {}", res.text().await?);

    // Students: accounts made directly (password hashing is not the point).
    let mut tokens = Vec::new();
    for i in 0..=size {
        let user = accounts::create_user(
            db,
            &format!("student{i}@example.com"),
            &format!("student{i}"),
            "a long password",
        )
        .await?;
        let personal = accounts::create_token(db, &user.id, &user.org_id, "bench").await?;
        let res = post(&personal, "/v1/join", json!({"code": code})).await?;
        anyhow::ensure!(res.status().is_success(), "join: {}", res.status());
        let v: serde_json::Value = post(
            &personal,
            "/v1/tokens",
            json!({"name": "class", "organization": "bench-class"}),
        )
        .await?
        .json()
        .await?;
        tokens.push((
            format!("student{i}"),
            v["token"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let start_one = |handle: String, token: String| async move {
        let t = Instant::now();
        let res = post(
            &token,
            "/v1/organizations/bench-class/assignments/lab/start",
            json!({}),
        )
        .await?;
        anyhow::ensure!(res.status().is_success(), "start: {}", res.text().await?);
        ws_true(base, &token, &format!("lab-{handle}")).await?;
        Ok::<_, anyhow::Error>(t.elapsed())
    };
    // One student alone, then the rest of the class at once.
    let (first, others) = tokens.split_first().expect("students");
    let alone = start_one(first.0.clone(), first.1.clone()).await?;
    let t = Instant::now();
    let all = futures_util::future::join_all(
        others
            .iter()
            .map(|(h, tok)| start_one(h.clone(), tok.clone())),
    )
    .await;
    let total = t.elapsed();
    let each: Vec<_> = all.into_iter().collect::<anyhow::Result<_>>()?;
    let each = Samples(each);
    // The class's sprites go now: 51 sprites are a lot to keep running.
    for (handle, token) in &tokens {
        http.delete(format!("{base}/v1/sprites/lab-{handle}"))
            .bearer_auth(token)
            .send()
            .await?;
    }
    http.delete(format!("{base}/v1/sprites/lab-prep"))
        .bearer_auth(&teacher)
        .send()
        .await?;
    let alone = Samples(vec![alone]);
    Ok(vec![
        row(
            &format!("class: {size} students start an assignment at once, total"),
            &Samples(vec![total]),
            None,
            "all exec-ready",
        ),
        row(
            &format!("class: each of the {size}, start to exec-ready"),
            &each,
            Some(alone.median()),
            "vs one student alone",
        ),
    ])
}

/// Creating from a template (a checkpoint saved as one: an image, as the
/// gallery's are) against creating blank, both through the API to
/// exec-ready, alternating. Returns (blank, from the template).
async fn templates(
    base: &str,
    http: &reqwest::Client,
    token: &str,
    runs: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let res = post(
        "/v1/templates",
        json!({"name": "bench-start", "sprite": "api-0", "checkpoint": "v0"}),
    )
    .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "save a template: {}",
        res.text().await?
    );
    let (mut blank, mut templated) = (vec![], vec![]);
    // Alternating which goes first: a sprite just made still settles for a
    // moment, and the one made next pays for it.
    for i in 0..runs + WARMUP {
        let mut pair = [None, None];
        for which in [i % 2, 1 - i % 2] {
            let t = Instant::now();
            let (name, body) = if which == 0 {
                let name = format!("blank-{i}");
                (name.clone(), json!({"name": name}))
            } else {
                let name = format!("templated-{i}");
                (
                    name.clone(),
                    json!({"name": name, "template": "bench-start"}),
                )
            };
            let res = post("/v1/sprites", body).await?;
            anyhow::ensure!(res.status().is_success(), "create {name}: {}", res.status());
            ws_true(base, token, &name).await?;
            pair[which] = Some(t.elapsed());
        }
        if i >= WARMUP {
            blank.extend(pair[0]);
            templated.extend(pair[1]);
        }
    }
    let res = http
        .delete(format!("{base}/v1/templates/bench-start"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "delete the template: {}",
        res.status()
    );
    Ok((Samples(blank), Samples(templated)))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sprites-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Where the reference relay listens inside the bench's sprite.
const RELAY_PORT: u16 = 9000;

/// The app the URL benchmark serves: HTTP/1.1 with keep-alive, a short body.
const APP: &str = r#"
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, sent at once: no wait on the client's ACK.
    wbufsize = -1
    disable_nagle_algorithm = True
    def log_message(self, *a):
        pass
    def do_GET(self):
        b = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 8080), H).serve_forever()
"#;

/// A load run of `wrk` (a C load generator, so the measure is the path
/// and the app, not the client): `conc` keep-alive connections sending
/// `GET /` for `secs`, from the network namespace `netns` when given.
async fn wrk(
    netns: Option<&std::path::Path>,
    url: &str,
    host: &str,
    conc: usize,
    secs: u32,
) -> anyhow::Result<Load> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("wrk");
            c
        }
        None => tokio::process::Command::new("wrk"),
    };
    let out = cmd
        .args(["--latency", "-t1", "-c", &conc.to_string()])
        .args([
            "-d",
            &format!("{secs}s"),
            "-H",
            &format!("Host: {host}"),
            url,
        ])
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run wrk (scripts/setup installs it): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success() && !text.contains("Non-2xx"),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wrk_result(&text)
}

struct Load {
    rps: f64,
    median_ms: f64,
}

impl Load {
    /// The median rate and the median latency of several runs.
    fn median(runs: &[Load]) -> Load {
        Load {
            rps: mid(runs.iter().map(|l| l.rps).collect()),
            median_ms: mid(runs.iter().map(|l| l.median_ms).collect()),
        }
    }

    /// The median over rounds of `of`'s figure to `to`'s in the same
    /// round: a slow or fast spell of the machine weighs on both sides of
    /// each ratio alike, where a ratio of medians mixes spells.
    fn ratio(of: &[Load], to: &[Load], figure: fn(&Load) -> f64) -> f64 {
        mid(of
            .iter()
            .zip(to)
            .map(|(a, b)| figure(a) / figure(b))
            .collect())
    }
}

fn mid(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Requests per second and the median latency of wrk's report.
fn wrk_result(text: &str) -> anyhow::Result<Load> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
            .ok_or_else(|| anyhow::anyhow!("wrk printed no {prefix:?}: {text}"))
    };
    let rps: f64 = field("Requests/sec:")?.parse()?;
    let median = field("50%")?;
    let (num, unit) = median
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| median.split_at(i))
        .ok_or_else(|| anyhow::anyhow!("wrk latency {median:?}"))?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        other => anyhow::bail!("wrk latency unit {other:?}"),
    };
    Ok(Load {
        rps,
        median_ms: num.parse::<f64>()? * scale,
    })
}

/// The sprite URL: throughput and latency through the proxy against the
/// same app reached inside the sprite, a request to a sprite asleep warm,
/// and one to a sprite asleep cold (its service starts again first).
async fn urls(
    base: &str,
    state: &crate::AppState,
    direct: &Host,
    http: &reqwest::Client,
    token: &str,
    runs: usize,
) -> anyhow::Result<Vec<vmhost::bench::Row>> {
    use vmhost::bench::Row;
    let res = http
        .post(format!("{base}/v1/sprites"))
        .bearer_auth(token)
        .json(&json!({"name": "web", "url_settings": {"auth": "public"}, "sleep": {"warm_after_secs": 0, "cold_after_secs": 0}}))
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "create web: {}", res.status());
    let host = state
        .host
        .list()
        .await?
        .into_iter()
        .find(|s| s.hostname == "web")
        .map(|s| SpriteName::parse(&s.name))
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("the web sprite is missing"))?;
    let files = direct.files(&host)?;
    files.write("/srv/app.py", APP.as_bytes(), None, true)?;
    let spec = vmhost::ServiceSpec {
        cmd: "python3".into(),
        args: vec!["/srv/app.py".into()],
        http_port: Some(8080),
        ..Default::default()
    };
    let mut put = state
        .host
        .service(&host, "app", vmhost::ServiceOp::Put { spec }, 0)
        .await?;
    while put.next().await?.is_some() {}
    let listening = |state: &crate::AppState, host: &SpriteName| {
        let (state, host) = (state.clone(), host.clone());
        async move {
            for _ in 0..400 {
                if state.host.connect(&host, "localhost", 8080).await.is_ok() {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            anyhow::bail!("the app does not listen")
        }
    };
    listening(state, &host).await?;

    let port: u16 = base.rsplit(':').next().unwrap_or("").parse()?;
    let label = format!("web-bench.localhost:{port}");
    let netns = direct.network_namespace(&host)?;
    let inside = "http://127.0.0.1:8080/";
    let through = format!("http://127.0.0.1:{port}/");
    // Warm both paths, then measure them in alternation, in short rounds,
    // so a slow spell of the machine weighs on both alike; each figure is
    // the median of its rounds, each ratio that of the rounds' ratios.
    wrk(Some(&netns), inside, "localhost", 2, 1).await?;
    wrk(None, &through, &label, 2, 1).await?;
    // The reference for one connection: the same app behind a plain byte
    // relay (socat, one process per connection) inside the sprite, which is
    // what any proxy's extra hop costs before it reads a header.
    let mut relay = tokio::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args([
            "socat",
            &format!("TCP-LISTEN:{RELAY_PORT},bind=127.0.0.1,reuseaddr,fork"),
            "TCP:127.0.0.1:8080,nodelay",
        ])
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run socat (scripts/setup installs it): {e}"))?;
    let relayed = format!("http://127.0.0.1:{RELAY_PORT}/");
    for _ in 0..400 {
        if state
            .host
            .connect(&host, "localhost", RELAY_PORT)
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    wrk(Some(&netns), &relayed, "localhost", 2, 1).await?;
    // An odd number of rounds, so each median is one round's figure; the
    // order of the paths reverses every other round, so a drift of the
    // machine's speed within a round favours none of them.
    let rounds = (3 * runs).clamp(9, 21) | 1;
    let paths: [(Option<&std::path::Path>, &str, &str, usize); 5] = [
        (Some(&netns), inside, "localhost", 1),
        (None, &through, &label, 1),
        (Some(&netns), &relayed, "localhost", 1),
        (Some(&netns), inside, "localhost", 8),
        (None, &through, &label, 8),
    ];
    let mut loads: [Vec<Load>; 5] = Default::default();
    for round in 0..rounds {
        let mut order = [0, 1, 2, 3, 4];
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (netns, url, host, conc) = paths[i];
            loads[i].push(wrk(netns, url, host, conc, 1).await?);
        }
    }
    let [direct_one, proxied_one, relayed_one, direct_many, proxied_many] = loads;
    relay.kill().await?;
    let rate = |l: &Load| l.rps;
    let ratios = [
        Load::ratio(&proxied_one, &direct_one, |l| l.median_ms),
        Load::ratio(&proxied_one, &direct_one, rate),
        Load::ratio(&relayed_one, &direct_one, rate),
        Load::ratio(&proxied_many, &direct_many, rate),
    ];
    let relayed_one = Load::median(&relayed_one);
    let (direct_one, proxied_one) = (Load::median(&direct_one), Load::median(&proxied_one));
    let (direct_many, proxied_many) = (Load::median(&direct_many), Load::median(&proxied_many));

    // A request to a sprite asleep warm; the floor is the thaw itself.
    let client = reqwest::Client::builder()
        .resolve("web-bench.localhost", format!("127.0.0.1:{port}").parse()?)
        .build()?;
    let url = format!("http://{label}/");
    let get = |client: &reqwest::Client| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let res = client.get(&url).send().await?;
            anyhow::ensure!(res.status().is_success(), "GET: {}", res.status());
            res.bytes().await?;
            Ok(())
        }
    };
    get(&client).await?;
    let (mut warm, mut thaw) = (vec![], vec![]);
    for i in 0..runs + WARMUP {
        state.host.sleep_warm(&host).await?;
        let t = Instant::now();
        state.host.wake(&host).await?;
        let floor = t.elapsed();
        state.host.sleep_warm(&host).await?;
        let t = Instant::now();
        get(&client).await?;
        if i >= WARMUP {
            thaw.push(floor);
            warm.push(t.elapsed());
        }
    }
    // A request to a sprite asleep cold, and what its app takes to start.
    let cold_runs = runs.min(10);
    let (mut cold, mut app_start) = (vec![], vec![]);
    for i in 0..cold_runs + 1 {
        state.host.sleep_cold(&host).await?;
        let t = Instant::now();
        get(&client).await?;
        let served = t.elapsed();
        let mut stop = state
            .host
            .service(
                &host,
                "app",
                vmhost::ServiceOp::Stop { timeout_ms: 2000 },
                0,
            )
            .await?;
        while stop.next().await?.is_some() {}
        let t = Instant::now();
        let mut start = state
            .host
            .service(&host, "app", vmhost::ServiceOp::Start, 0)
            .await?;
        while start.next().await?.is_some() {}
        listening(state, &host).await?;
        if i >= 1 {
            cold.push(served);
            app_start.push(t.elapsed());
        }
    }
    let (cold, app_start) = (Samples(cold), Samples(app_start));
    // Rates and latencies are medians; each ratio is the median of the
    // rounds' own ratios.
    let rps_row = |name: &str, proxy: f64, direct: f64, ratio: f64| Row {
        operation: name.into(),
        median_ms: proxy,
        p95_ms: proxy,
        floor_ms: Some(direct),
        ratio: Some(ratio),
        target: ">= 0.7x direct".into(),
    };
    Ok(vec![
        Row {
            operation: "URL: GET, keep-alive, 1 client".into(),
            median_ms: proxied_one.median_ms,
            p95_ms: proxied_one.median_ms,
            floor_ms: Some(direct_one.median_ms),
            ratio: Some(ratios[0]),
            target: "latency; floor: inside".into(),
        },
        rps_row(
            "URL: requests/s, 1 client",
            proxied_one.rps,
            direct_one.rps,
            ratios[1],
        ),
        Row {
            target: "reference: one byte relay".into(),
            ..rps_row(
                "URL: requests/s, 1 client, plain relay (socat)",
                relayed_one.rps,
                direct_one.rps,
                ratios[2],
            )
        },
        rps_row(
            "URL: requests/s, 8 clients",
            proxied_many.rps,
            direct_many.rps,
            ratios[3],
        ),
        row(
            "URL: GET to a sprite asleep warm",
            &Samples(warm),
            Some(Samples(thaw).median()),
            "wake <= 5 ms",
        ),
        Row {
            operation: "URL: GET to a sprite asleep cold".into(),
            median_ms: cold.median(),
            p95_ms: cold.p95(),
            floor_ms: Some(app_start.median()),
            ratio: None,
            target: format!("<= 150 ms + app start ({:.0} ms)", app_start.median()),
        },
    ])
}
