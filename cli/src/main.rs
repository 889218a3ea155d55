//! `sprite`: durable sprites from the command line, against a sprites
//! server's API (the same one the SDKs use).
//!
//! Configuration: `sprite login` stores the server URL and an API token in
//! `$XDG_CONFIG_HOME/sprites/config.json` (mode 0600). The sprite a command
//! acts on is `-s NAME`, else the `.sprite` file that `sprite use` wrote in
//! this directory or a parent.

mod api;
mod config;
mod exec;
mod proxy;
mod upload;

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use api::Api;
use sprites_wire::api::{ChangeKind, Checkpoint, CheckpointDiff, ExecSessionList};

#[derive(Parser)]
#[command(
    name = "sprite",
    version,
    about = "Durable sprites from the command line"
)]
struct Cli {
    /// The sprite to act on (default: from `sprite use`).
    #[arg(short, long, global = true)]
    sprite: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Store the server URL and an API token (read from stdin when not given).
    Login {
        #[arg(long, default_value = "http://localhost:8080")]
        url: String,
        #[arg(long)]
        token: Option<String>,
    },
    /// Forget the stored token.
    Logout,
    /// Create a sprite, blank or from a template (`sprite templates`).
    Create {
        name: String,
        #[arg(short, long)]
        template: Option<String>,
    },
    /// Templates: the gallery's, saved checkpoints, imported images.
    #[command(subcommand)]
    Templates(TemplatesCmd),
    /// List sprites.
    List {
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Act on NAME by default in this directory (writes `.sprite`).
    Use { name: String },
    /// Run a command in the sprite; its exit code becomes ours.
    #[command(alias = "x")]
    Exec {
        /// Run on a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Working directory inside the sprite.
        #[arg(long)]
        dir: Option<String>,
        /// NAME=VALUE, repeatable.
        #[arg(short, long)]
        env: Vec<String>,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// A shell on a terminal in the sprite; Ctrl+\ detaches.
    #[command(alias = "c")]
    Console {
        /// The shell (default: bash, login).
        #[arg(trailing_var_arg = true)]
        cmd: Vec<String>,
    },
    /// Terminal sessions of the sprite.
    #[command(subcommand)]
    Sessions(SessionsCmd),
    /// Checkpoints of the sprite.
    #[command(subcommand)]
    Checkpoint(CheckpointCmd),
    /// Services of the sprite: long-running commands that start at boot
    /// and restart when they crash.
    #[command(subcommand)]
    Services(ServicesCmd),
    /// Restore a checkpoint (the state before is kept as a new one).
    Restore { id: String },
    /// Fork the sprite into a new one.
    Fork {
        name: String,
        /// Checkpoint to fork from (default: the sprite as it is now).
        #[arg(long)]
        from: Option<String>,
    },
    /// Put the sprite to sleep.
    Sleep {
        #[arg(long)]
        cold: bool,
    },
    /// Wake the sprite.
    Wake,
    /// Print the sprite's URL.
    Url,
    /// What the sprite is doing: status, last activity, awake time, disk,
    /// when it sleeps and what keeps it awake.
    Info,
    /// Change the sprite's settings.
    Set {
        /// Seconds idle before it sleeps warm (frozen); 0: never.
        #[arg(long)]
        warm_after: Option<u64>,
        /// Seconds idle before it sleeps cold (stopped); 0: never.
        #[arg(long)]
        cold_after: Option<u64>,
        /// Who may open its URL: `public`, or `sprite` (its organization).
        #[arg(long, value_parser = ["public", "sprite"])]
        url_auth: Option<String>,
    },
    /// Keep the sprite awake for a while (`30m`, `2h`, `90s`), or end a
    /// task with --end ID.
    KeepAwake {
        #[arg(required_unless_present = "end")]
        duration: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, conflicts_with = "duration")]
        end: Option<String>,
    },
    /// Destroy the sprite (asks first unless --force).
    Destroy {
        name: Option<String>,
        #[arg(long)]
        force: bool,
    },
    /// Forward a local port to a port inside the sprite: `sprite proxy 8080`
    /// or `sprite proxy 3000:8080` (local:remote); with --stdio, this
    /// command's stdin and stdout are the connection (for SSH's
    /// ProxyCommand).
    Proxy {
        ports: String,
        #[arg(long)]
        stdio: bool,
    },
    /// Awake time and disk use: of one sprite, or of every sprite of the
    /// organization.
    Usage { name: Option<String> },
    /// Follow what happens to the organization's sprites, live.
    Events,
    /// Print a shell completion script: `sprite completion bash >
    /// /etc/bash_completion.d/sprite`.
    Completion { shell: clap_complete::Shell },
    /// An authenticated API call: `sprite api GET /v1/sprites`.
    Api {
        method: String,
        path: String,
        /// JSON body.
        #[arg(short, long)]
        data: Option<String>,
    },
}

#[derive(Subcommand)]
enum SessionsCmd {
    /// List sessions, running and recently ended.
    List,
    /// Re-attach to a session (its recent output is replayed); Ctrl+\ detaches.
    Attach { id: String },
    /// Send a signal to a session (default SIGKILL).
    Kill {
        id: String,
        #[arg(long, default_value = "SIGKILL")]
        signal: String,
    },
}

#[derive(Subcommand)]
enum ServicesCmd {
    /// List services and their state.
    List,
    /// Create or replace a service and start it: `sprite services create
    /// web --http-port 8000 -- python3 -m http.server 8000`.
    Create {
        name: String,
        /// Working directory inside the sprite.
        #[arg(long)]
        dir: Option<String>,
        /// NAME=VALUE, repeatable.
        #[arg(short, long)]
        env: Vec<String>,
        /// Services to start first, repeatable.
        #[arg(long)]
        needs: Vec<String>,
        /// The port its HTTP server listens on: the sprite's URL goes there.
        #[arg(long)]
        http_port: Option<u16>,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// Recent output; with -f, follow new output (for --for, default 1h).
    Logs {
        name: String,
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
        #[arg(short, long)]
        follow: bool,
        #[arg(long = "for", default_value = "1h")]
        follow_for: String,
    },
    Start {
        name: String,
    },
    /// SIGTERM, then SIGKILL after --timeout.
    Stop {
        name: String,
        #[arg(long, default_value = "10s")]
        timeout: String,
    },
    Restart {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Send a signal (TERM, HUP, USR1, ... or a number).
    Signal {
        name: String,
        signal: String,
    },
}

fn service_event(e: &Value) -> Option<String> {
    let data = e["data"].as_str().unwrap_or("");
    Some(match e["type"].as_str()? {
        "stdout" | "stderr" => data.to_string(),
        "exit" => format!("[exited with code {}]", e["exit_code"]),
        "complete" => return None,
        other if data.is_empty() => format!("[{other}]"),
        other => format!("[{other}: {data}]"),
    })
}

/// What a saved or imported template says of itself, and who sees it.
#[derive(clap::Args)]
struct TemplateAbout {
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// For everyone in the organization, not only you (owners and admins).
    #[arg(long)]
    organization: bool,
}

impl TemplateAbout {
    fn scope(&self) -> &'static str {
        if self.organization {
            "organization"
        } else {
            "owner"
        }
    }
}

#[derive(Subcommand)]
enum TemplatesCmd {
    /// List the templates you can create sprites from.
    List,
    /// Save a checkpoint of the sprite as a template.
    Save {
        /// The template's name (`sprite create X --template NAME`).
        name: String,
        /// The checkpoint (`sprite checkpoint list`).
        #[arg(long)]
        checkpoint: String,
        #[command(flatten)]
        about: TemplateAbout,
        /// The file to open first in sprites made from it.
        #[arg(long)]
        open: Option<String>,
    },
    /// Import a root file system: a tar archive (maybe gzipped, as `docker
    /// export` makes it) or a directory.
    Import {
        name: String,
        path: std::path::PathBuf,
        #[command(flatten)]
        about: TemplateAbout,
    },
    /// Delete a saved or imported template; sprites made from it stay.
    Delete { name: String },
}

#[derive(Subcommand)]
enum CheckpointCmd {
    /// Take a checkpoint.
    Create {
        #[arg(short = 'm', long, default_value = "")]
        comment: String,
    },
    /// List checkpoints.
    List,
    /// Show one checkpoint.
    Info { id: String },
    /// Delete a checkpoint.
    Delete { id: String },
    /// What changed since a checkpoint (to another with --to).
    Diff {
        id: String,
        #[arg(long)]
        to: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sprite: {e:#}");
            ExitCode::from(1)
        }
    };
    // A read of our stdin may still be pending in a blocking thread (the
    // command ended before its input did); do not wait for it.
    runtime.shutdown_background();
    code
}

/// One line a row, or `empty` when there are none.
fn lines_or(rows: &[String], empty: &str) -> String {
    if rows.is_empty() {
        empty.to_string()
    } else {
        rows.join("\n")
    }
}

fn print(json_out: bool, v: &Value, text: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
    } else {
        println!("{}", text(v));
    }
}

/// Like [`print`], for an answer read as its API type: JSON as the server
/// sent it, or the text `text` makes of it.
fn print_typed<T: serde::de::DeserializeOwned>(
    json_out: bool,
    v: &Value,
    text: impl FnOnce(T) -> String,
) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
    } else {
        let typed = serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("the server's answer is not what was expected: {e}"))?;
        println!("{}", text(typed));
    }
    Ok(())
}

/// A spinner on stderr while something slow happens, when a person
/// watches (stderr is a terminal) and no JSON was asked for.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn start(json_out: bool, message: impl Into<String>) -> Spinner {
        use std::io::IsTerminal;
        if json_out || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(80));
        Spinner(Some(bar))
    }

    fn say(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_string());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Runs `fut` under a spinner saying `message`.
async fn spin<T>(json_out: bool, message: &str, fut: impl std::future::Future<Output = T>) -> T {
    let _spinner = Spinner::start(json_out, message);
    fut.await
}

/// POSTs to an NDJSON progress route, showing each step on the spinner
/// (or each line, with --json); fails on an error line.
async fn progress(
    api: &Api,
    json_out: bool,
    message: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Vec<Value>> {
    let spinner = Spinner::start(json_out, message);
    let lines = api
        .ndjson(path, body, |l| {
            if json_out {
                println!("{l}");
            } else if let Some(d) = l["data"].as_str().filter(|_| l["type"] == "info") {
                spinner.say(d);
            }
        })
        .await?;
    drop(spinner);
    failed(&lines)?;
    Ok(lines)
}

/// Fails on the error line of an NDJSON answer, if any.
fn failed(lines: &[Value]) -> anyhow::Result<()> {
    if let Some(e) = lines.iter().find(|l| l["type"] == "error") {
        anyhow::bail!("{}", e["error"].as_str().unwrap_or("failed"));
    }
    Ok(())
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `90`, `90s`, `30m`, `2h`, `1d` in seconds.
fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?}: a duration like 90s, 30m, 2h or 1d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => anyhow::bail!("{text:?}: a duration like 90s, 30m, 2h or 1d"),
    };
    Ok(n * scale)
}

/// The sprite's copy in the object store, in a line; none when the server
/// keeps no copies.
fn backup_line(r: &serde_json::Value) -> Option<String> {
    let last = r["last_shipped_checkpoint"]
        .as_str()
        .map(|c| format!("last copy {c}"))
        .unwrap_or_else(|| "no copy yet".into());
    let lag = r["lag_seconds"].as_u64().unwrap_or(0);
    Some(match (r["state"].as_str()?, r["location"].as_str()) {
        ("off", _) => return None,
        ("fetching", _) => format!(
            "coming back from the object store: {} of {}",
            sprites_wire::human_bytes(r["fetched_bytes"].as_u64().unwrap_or(0)),
            sprites_wire::human_bytes(r["fetch_total_bytes"].as_u64().unwrap_or(0))
        ),
        (_, Some("bucket")) => format!("only in the object store, back on its next wake ({last})"),
        ("current", _) => format!("current ({last})"),
        ("behind", _) => format!("{} behind ({last})", duration(lag)),
        ("failing", _) => format!(
            "failing, {} behind: {}",
            duration(lag),
            r["error"].as_str().unwrap_or("")
        ),
        (other, _) => other.to_string(),
    })
}

fn never_or(secs: &Value) -> String {
    match secs.as_u64() {
        Some(0) => "never".into(),
        Some(s) => format!("after {} idle", duration(s)),
        None => "?".into(),
    }
}

fn usage_row(u: &Value) -> String {
    format!(
        "{:<24} {:<8} {:>10} {:>10}",
        u["name"].as_str().unwrap_or(""),
        u["status"].as_str().unwrap_or(""),
        duration(u["active_seconds"].as_u64().unwrap_or(0)),
        sprites_wire::human_bytes(u["disk_bytes"].as_u64().unwrap_or(0)),
    )
}

/// The exit of an interactive session, or how to come back to it.
fn ended(e: exec::Ended) -> anyhow::Result<ExitCode> {
    match e {
        exec::Ended::Exited(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        exec::Ended::Detached(id) => {
            eprintln!(
                "\r\nDetached; the session runs on. Come back with `sprite sessions attach {id}`."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Cmd::Login { url, token } = &cli.cmd {
        let token = match token {
            Some(t) => t.clone(),
            None => {
                eprintln!(
                    "Paste an API token (sprites-server admin create-user, or POST /v1/tokens):"
                );
                let mut t = String::new();
                std::io::stdin().read_to_string(&mut t)?;
                t.trim().to_string()
            }
        };
        let api = Api::new(url.trim_end_matches('/'), &token);
        let me = api.get("/v1/auth/me").await?;
        config::save(&config::Config {
            url: url.trim_end_matches('/').into(),
            token,
        })?;
        println!(
            "Logged in to {url} as {} ({})",
            me["handle"].as_str().unwrap_or("?"),
            me["organization"].as_str().unwrap_or("?")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Cmd::Completion { shell } = cli.cmd {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Cli::command(), "sprite", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    if let Cmd::Logout = cli.cmd {
        config::forget()?;
        println!("Logged out.");
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = config::load()?;
    let api = Api::new(&cfg.url, &cfg.token);
    let sprite = || -> anyhow::Result<String> {
        cli.sprite
            .clone()
            .or_else(config::current_sprite)
            .ok_or_else(|| anyhow::anyhow!("which sprite? give -s NAME or run `sprite use NAME`"))
    };
    let j = cli.json;
    match &cli.cmd {
        Cmd::Login { .. } | Cmd::Logout | Cmd::Completion { .. } => {
            unreachable!("handled above")
        }
        Cmd::Create { name, template } => {
            let mut body = json!({"name": name});
            if let Some(t) = template {
                body["template"] = json!(t);
            }
            let v = spin(
                j,
                &format!("Creating {name}"),
                api.post("/v1/sprites", body),
            )
            .await?;
            print(j, &v, |v| {
                format!(
                    "Created {} ({}) at {}",
                    v["name"].as_str().unwrap_or(""),
                    v["status"].as_str().unwrap_or(""),
                    v["url"].as_str().unwrap_or("")
                )
            });
        }
        Cmd::List { prefix } => {
            let path = match prefix {
                Some(p) => format!(
                    "/v1/sprites?prefix={}",
                    form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
                ),
                None => "/v1/sprites".into(),
            };
            let v = api.get(&path).await?;
            print(j, &v, |v| {
                let rows: Vec<String> = v["sprites"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| {
                                format!(
                                    "{:<24} {:<8} {}",
                                    s["name"].as_str().unwrap_or(""),
                                    s["status"].as_str().unwrap_or(""),
                                    s["url"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                lines_or(&rows, "No sprites yet: `sprite create NAME`.")
            });
        }
        Cmd::Use { name } => {
            api.get(&format!("/v1/sprites/{name}")).await?;
            std::fs::write(".sprite", format!("{name}\n"))?;
            println!("Using {name} in this directory.");
        }
        Cmd::Exec { tty, dir, env, cmd } => {
            let target = exec::Target::New {
                cmd,
                env,
                dir: dir.as_deref(),
                tty: *tty,
            };
            let code = exec::run(&cfg, &sprite()?, target).await?;
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        Cmd::Console { cmd } => {
            let shell = if cmd.is_empty() {
                vec!["bash".to_string(), "-l".to_string()]
            } else {
                cmd.clone()
            };
            let target = exec::Target::New {
                cmd: &shell,
                env: &[],
                dir: None,
                tty: true,
            };
            return ended(exec::interactive(&cfg, &sprite()?, target).await?);
        }
        Cmd::Sessions(c) => {
            let s = sprite()?;
            match c {
                SessionsCmd::List => {
                    let v = api.get(&format!("/v1/sprites/{s}/exec")).await?;
                    print_typed(j, &v, |list: ExecSessionList| {
                        let rows: Vec<String> = list
                            .sessions
                            .iter()
                            .map(|x| {
                                let state = if x.is_active { "running" } else { "ended" };
                                let tty = if x.tty { "tty" } else { "" };
                                format!("{:<6} {state:<8} {tty:<4} {}", x.id, x.command)
                            })
                            .collect();
                        lines_or(&rows, "No sessions.")
                    })?;
                }
                SessionsCmd::Attach { id } => {
                    return ended(exec::interactive(&cfg, &s, exec::Target::Attach(id)).await?);
                }
                SessionsCmd::Kill { id, signal } => {
                    progress(
                        &api,
                        j,
                        &format!("Sending {signal} to session {id}"),
                        &format!("/v1/sprites/{s}/exec/{id}/kill"),
                        json!({"signal": signal}),
                    )
                    .await?;
                    if !j {
                        println!("Session {id} ended.");
                    }
                }
            }
        }
        Cmd::Services(c) => {
            let s = sprite()?;
            let base = format!("/v1/sprites/{s}/services");
            let show = |e: &Value| {
                if j {
                    println!("{e}");
                } else if let Some(line) = service_event(e) {
                    println!("{line}");
                }
            };
            match c {
                ServicesCmd::List => {
                    let v = api.get(&base).await?;
                    print(j, &v, |v| {
                        let rows: Vec<String> = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|x| {
                                let st = &x["state"];
                                let mut line = format!(
                                    "{:<16} {:<9} {:<7} {}",
                                    x["name"].as_str().unwrap_or(""),
                                    st["status"].as_str().unwrap_or(""),
                                    st["pid"]
                                        .as_u64()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default(),
                                    std::iter::once(x["cmd"].as_str().unwrap_or(""))
                                        .chain(
                                            x["args"]
                                                .as_array()
                                                .into_iter()
                                                .flatten()
                                                .filter_map(|a| a.as_str())
                                        )
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                );
                                if let Some(p) = x["http_port"].as_u64() {
                                    line.push_str(&format!("  (http :{p})"));
                                }
                                if let Some(e) = st["error"].as_str() {
                                    line.push_str(&format!("  [{e}]"));
                                }
                                line
                            })
                            .collect();
                        lines_or(&rows, "No services.")
                    });
                }
                ServicesCmd::Create {
                    name,
                    dir,
                    env,
                    needs,
                    http_port,
                    cmd,
                } => {
                    let mut vars = serde_json::Map::new();
                    for e in env {
                        let (k, v) = e
                            .split_once('=')
                            .ok_or_else(|| anyhow::anyhow!("--env {e:?}: use NAME=VALUE"))?;
                        vars.insert(k.into(), json!(v));
                    }
                    let body = json!({
                        "cmd": cmd[0], "args": cmd[1..], "dir": dir, "env": vars,
                        "needs": needs, "http_port": http_port,
                    });
                    let lines = api
                        .send_ndjson(
                            "PUT",
                            &format!("{base}/{name}?duration=2s"),
                            Some(body),
                            show,
                        )
                        .await?;
                    failed(&lines)?;
                }
                ServicesCmd::Logs {
                    name,
                    lines,
                    follow,
                    follow_for,
                } => {
                    let mut path = format!("{base}/{name}/logs?lines={lines}");
                    if *follow {
                        path.push_str(&format!("&duration={follow_for}"));
                    }
                    let lines = api.send_ndjson("GET", &path, None, show).await?;
                    failed(&lines)?;
                }
                ServicesCmd::Start { name } | ServicesCmd::Restart { name } => {
                    let verb = if matches!(c, ServicesCmd::Start { .. }) {
                        "start"
                    } else {
                        "restart"
                    };
                    let path = format!("{base}/{name}/{verb}?duration=2s");
                    let lines = api.send_ndjson("POST", &path, None, show).await?;
                    failed(&lines)?;
                }
                ServicesCmd::Stop { name, timeout } => {
                    let path = format!("{base}/{name}/stop?timeout={timeout}");
                    let lines = api.send_ndjson("POST", &path, None, show).await?;
                    failed(&lines)?;
                }
                ServicesCmd::Delete { name } => {
                    api.delete(&format!("{base}/{name}")).await?;
                    println!("Deleted service {name}.");
                }
                ServicesCmd::Signal { name, signal } => {
                    api.post(
                        &format!("{base}/signal"),
                        json!({"name": name, "signal": signal}),
                    )
                    .await?;
                    println!("Sent {signal} to {name}.");
                }
            }
        }
        Cmd::Templates(t) => templates(&api, j, t, sprite).await?,
        Cmd::Checkpoint(c) => {
            let s = sprite()?;
            match c {
                CheckpointCmd::Create { comment } => {
                    let lines = progress(
                        &api,
                        j,
                        &format!("Checkpointing {s}"),
                        &format!("/v1/sprites/{s}/checkpoint"),
                        json!({"comment": comment}),
                    )
                    .await?;
                    if !j {
                        println!(
                            "{}",
                            lines.last().and_then(|l| l["data"].as_str()).unwrap_or("")
                        );
                    }
                }
                CheckpointCmd::List => {
                    let v = api.get(&format!("/v1/sprites/{s}/checkpoints")).await?;
                    print_typed(j, &v, |list: Vec<Checkpoint>| {
                        list.iter()
                            .map(|c| {
                                let auto = if c.auto { " (automatic)" } else { "" };
                                format!("{:<6} {}  {}{auto}", c.id, c.create_time, c.comment)
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
                CheckpointCmd::Info { id } => {
                    let v = api
                        .get(&format!("/v1/sprites/{s}/checkpoints/{id}"))
                        .await?;
                    print(j, &v, |v| serde_json::to_string_pretty(v).expect("JSON"));
                }
                CheckpointCmd::Delete { id } => {
                    api.delete(&format!("/v1/sprites/{s}/checkpoints/{id}"))
                        .await?;
                    println!("Deleted {id}.");
                }
                CheckpointCmd::Diff { id, to } => {
                    let path = match to {
                        Some(t) => format!("/v1/sprites/{s}/checkpoints/{id}/diff?to={t}"),
                        None => format!("/v1/sprites/{s}/checkpoints/{id}/diff"),
                    };
                    let v = api.get(&path).await?;
                    print_typed(j, &v, |diff: CheckpointDiff| {
                        diff.changes
                            .iter()
                            .map(|c| {
                                let mark = match c.change {
                                    ChangeKind::Added => "A",
                                    ChangeKind::Deleted => "D",
                                    ChangeKind::Modified => "M",
                                };
                                format!("{mark} {}", c.path)
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
            }
        }
        Cmd::Restore { id } => {
            let s = sprite()?;
            progress(
                &api,
                j,
                &format!("Restoring {s} to {id}"),
                &format!("/v1/sprites/{s}/checkpoints/{id}/restore"),
                json!({}),
            )
            .await?;
            if !j {
                println!("Restored {s} to {id}.");
            }
        }
        Cmd::Fork { name, from } => {
            let s = sprite()?;
            let v = spin(
                j,
                &format!("Forking {s} into {name}"),
                api.post(
                    &format!("/v1/sprites/{s}/fork"),
                    json!({"name": name, "checkpoint": from}),
                ),
            )
            .await?;
            print(j, &v, |v| {
                format!("Forked {s} into {}", v["name"].as_str().unwrap_or(""))
            });
        }
        Cmd::Sleep { cold } => {
            let s = sprite()?;
            let v = spin(
                j,
                &format!("Putting {s} to sleep"),
                api.post(&format!("/v1/sprites/{s}/sleep"), json!({"cold": cold})),
            )
            .await?;
            print(j, &v, |v| {
                format!("{s} is {}", v["status"].as_str().unwrap_or(""))
            });
        }
        Cmd::Wake => {
            let s = sprite()?;
            let v = spin(
                j,
                &format!("Waking {s}"),
                api.post(&format!("/v1/sprites/{s}/wake"), json!({})),
            )
            .await?;
            print(j, &v, |v| {
                format!("{s} is {}", v["status"].as_str().unwrap_or(""))
            });
        }
        Cmd::Url => {
            let v = api.get(&format!("/v1/sprites/{}", sprite()?)).await?;
            print(j, &v, |v| v["url"].as_str().unwrap_or("").to_string());
        }
        Cmd::Info => {
            let s = sprite()?;
            let mut v = api.get(&format!("/v1/sprites/{s}")).await?;
            v["usage"] = api.get(&format!("/v1/sprites/{s}/usage")).await?;
            print(j, &v, |v| {
                let text = |k: &str| v[k].as_str().unwrap_or("").to_string();
                let mut out = vec![
                    format!("{:<12} {}", "sprite", text("name")),
                    format!("{:<12} {}", "status", text("status")),
                    format!(
                        "{:<12} {} ({})",
                        "url",
                        text("url"),
                        v["url_settings"]["auth"].as_str().unwrap_or("sprite")
                    ),
                    format!(
                        "{:<12} {}",
                        "last active",
                        v["last_active_at"]
                            .as_str()
                            .unwrap_or("not since the server started")
                    ),
                    format!(
                        "{:<12} {}",
                        "awake",
                        duration(v["usage"]["active_seconds"].as_u64().unwrap_or(0))
                    ),
                    format!(
                        "{:<12} {}",
                        "disk",
                        sprites_wire::human_bytes(v["usage"]["disk_bytes"].as_u64().unwrap_or(0))
                    ),
                    format!(
                        "{:<12} warm {}, cold {}",
                        "sleeps",
                        never_or(&v["sleep"]["warm_after_secs"]),
                        never_or(&v["sleep"]["cold_after_secs"])
                    ),
                ];
                if let Some(b) = backup_line(&v["replication"]) {
                    out.push(format!("{:<12} {b}", "backup"));
                }
                for k in v["keep_awake"].as_array().into_iter().flatten() {
                    out.push(format!(
                        "{:<12} until {} ({}) id {}",
                        "kept awake",
                        k["until"].as_str().unwrap_or(""),
                        k["reason"].as_str().unwrap_or(""),
                        k["id"].as_str().unwrap_or("")
                    ));
                }
                out.join("\n")
            });
        }
        Cmd::Set {
            warm_after,
            cold_after,
            url_auth,
        } => {
            let s = sprite()?;
            let mut body = json!({});
            if warm_after.is_some() || cold_after.is_some() {
                body["sleep"] = json!({});
                if let Some(w) = warm_after {
                    body["sleep"]["warm_after_secs"] = json!(w);
                }
                if let Some(c) = cold_after {
                    body["sleep"]["cold_after_secs"] = json!(c);
                }
            }
            if let Some(a) = url_auth {
                body["url_settings"] = json!({"auth": a});
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                anyhow::bail!("nothing to set: give --warm-after, --cold-after or --url-auth");
            }
            let v = api.put(&format!("/v1/sprites/{s}"), body).await?;
            print(j, &v, |v| {
                format!(
                    "{s}: sleeps warm {}, cold {}; URL {}",
                    never_or(&v["sleep"]["warm_after_secs"]),
                    never_or(&v["sleep"]["cold_after_secs"]),
                    v["url_settings"]["auth"].as_str().unwrap_or("")
                )
            });
        }
        Cmd::KeepAwake {
            duration: how_long,
            reason,
            end,
        } => {
            let s = sprite()?;
            if let Some(id) = end {
                api.delete(&format!("/v1/sprites/{s}/keep-awake/{id}"))
                    .await?;
                println!("Ended {id}; {s} sleeps when idle again.");
            } else {
                let secs = parse_duration(how_long.as_deref().unwrap_or(""))?;
                let v = api
                    .post(
                        &format!("/v1/sprites/{s}/keep-awake"),
                        json!({"seconds": secs, "reason": reason}),
                    )
                    .await?;
                print(j, &v, |v| {
                    format!(
                        "{s} stays awake until {} (end it early: sprite keep-awake --end {})",
                        v["until"].as_str().unwrap_or(""),
                        v["id"].as_str().unwrap_or("")
                    )
                });
            }
        }
        Cmd::Destroy { name, force } => {
            let s = match name {
                Some(n) => n.clone(),
                None => sprite()?,
            };
            if !force {
                eprint!("Destroy {s} and all its checkpoints? Type its name to confirm: ");
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if answer.trim() != s {
                    anyhow::bail!("not destroyed");
                }
            }
            spin(
                j,
                &format!("Destroying {s}"),
                api.delete(&format!("/v1/sprites/{s}")),
            )
            .await?;
            println!("Destroyed {s}.");
        }
        Cmd::Proxy { ports, stdio } => {
            let s = sprite()?;
            let port = |p: &str| {
                p.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("{p:?}: a port, or LOCAL:REMOTE"))
            };
            let (local, remote) = match ports.split_once(':') {
                Some((l, r)) => (port(l)?, port(r)?),
                None => (port(ports)?, port(ports)?),
            };
            if *stdio {
                proxy::stdio(&cfg, &s, remote).await?;
            } else {
                proxy::listen(&cfg, &s, local, remote).await?;
            }
        }
        Cmd::Usage { name } => {
            let header = format!(
                "{:<24} {:<8} {:>10} {:>10}",
                "SPRITE", "STATUS", "AWAKE", "DISK"
            );
            match name {
                Some(n) => {
                    let v = api.get(&format!("/v1/sprites/{n}/usage")).await?;
                    print(j, &v, |v| format!("{header}\n{}", usage_row(v)));
                }
                None => {
                    let v = api.get("/v1/usage").await?;
                    print(j, &v, |v| {
                        let mut out = vec![header.clone()];
                        for u in v["sprites"].as_array().into_iter().flatten() {
                            out.push(usage_row(u));
                        }
                        let mut total = v.clone();
                        total["name"] = json!("total");
                        total["status"] = json!("");
                        out.push(usage_row(&total));
                        out.join("\n")
                    });
                }
            }
        }
        Cmd::Events => {
            api.events("/v1/events", |e| {
                if j {
                    println!("{e}");
                } else if e["type"] != "resync" {
                    println!(
                        "{}  {:<20} {:<20} {}{}",
                        e["at"].as_str().unwrap_or(""),
                        e["type"].as_str().unwrap_or(""),
                        e["sprite"].as_str().unwrap_or(""),
                        e["status"].as_str().unwrap_or(""),
                        e["checkpoint"]
                            .as_str()
                            .map(|c| format!(" {c}"))
                            .unwrap_or_default(),
                    );
                }
            })
            .await?;
            anyhow::bail!("the server ended the event stream");
        }
        Cmd::Api { method, path, data } => {
            let body = data.as_deref().map(serde_json::from_str).transpose()?;
            let (status, text) = api.raw(method, path, body).await?;
            println!("{text}");
            if !status.is_success() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sprite templates ...`.
async fn templates(
    api: &api::Api,
    j: bool,
    cmd: &TemplatesCmd,
    sprite: impl Fn() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    match cmd {
        TemplatesCmd::List => {
            let v = api.get("/v1/templates").await?;
            print(j, &v, |v| {
                let rows: Vec<String> = v["templates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let state = match t["state"].as_str().unwrap_or("") {
                            "ready" => String::new(),
                            "building" => {
                                format!("  (being built: {})", t["progress"].as_str().unwrap_or(""))
                            }
                            "failed" => {
                                format!("  (failed: {})", t["error"].as_str().unwrap_or(""))
                            }
                            other => format!("  ({other})"),
                        };
                        format!(
                            "{:<20} {:<10} {:<12} {}{state}",
                            t["name"].as_str().unwrap_or(""),
                            t["kind"].as_str().unwrap_or(""),
                            t["scope"].as_str().unwrap_or(""),
                            t["title"].as_str().unwrap_or(""),
                        )
                    })
                    .collect();
                lines_or(&rows, "No templates.")
            });
        }
        TemplatesCmd::Save {
            name,
            checkpoint,
            about,
            open,
        } => {
            let body = json!({
                "name": name, "sprite": sprite()?, "checkpoint": checkpoint,
                "title": about.title, "description": about.description,
                "scope": about.scope(), "open": open,
            });
            let v = api.post("/v1/templates", body).await?;
            print(j, &v, |v| {
                format!(
                    "Saved {} as a template: sprite create NAME --template {}",
                    v["title"].as_str().unwrap_or(""),
                    v["name"].as_str().unwrap_or("")
                )
            });
        }
        TemplatesCmd::Import { name, path, about } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("name", name);
            query.append_pair("scope", about.scope());
            if let Some(t) = &about.title {
                query.append_pair("title", t);
            }
            if let Some(d) = &about.description {
                query.append_pair("description", d);
            }
            let body = upload::archive(path).await?;
            let v = spin(
                j,
                &format!("Importing {}", path.display()),
                api.upload(&format!("/v1/images?{}", query.finish()), body),
            )
            .await?;
            print(j, &v, |v| {
                format!(
                    "Imported {}: sprite create NAME --template {}",
                    v["title"].as_str().unwrap_or(""),
                    v["name"].as_str().unwrap_or("")
                )
            });
        }
        TemplatesCmd::Delete { name } => {
            api.delete(&format!("/v1/templates/{name}")).await?;
            if !j {
                println!("Deleted template {name}");
            }
        }
    }
    Ok(())
}
