//! `sprite services ...`: long-running commands of the sprite that start at
//! boot and restart when they crash.

use clap::Subcommand;
use serde_json::Value;
use sprites_wire::client::{self, Call};
use sprites_wire::services::{ServiceLine, ServiceRequest, ServiceSignal};

use crate::out::{env_pairs, lines_or, Ctx};

#[derive(Subcommand)]
pub enum ServicesCmd {
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

/// How long a change's events are shown.
const FOLLOW: &str = "2s";

/// Prints a service's NDJSON lines as they come; fails on an error line.
async fn follow(ctx: &Ctx, call: Call<ServiceLine>) -> anyhow::Result<()> {
    let lines = ctx
        .api
        .lines(&call, |raw: &Value, line: &ServiceLine| {
            if ctx.json {
                println!("{raw}");
            } else if let Some(text) = line.text() {
                println!("{text}");
            }
        })
        .await?;
    // Any error line fails the command: the stream's own, or the service's
    // (it could not start).
    match lines.iter().find(|l| l.kind == "error") {
        Some(l) => anyhow::bail!("{}", l.error.as_deref().unwrap_or("failed")),
        None => Ok(()),
    }
}

pub async fn run(ctx: &Ctx, cmd: &ServicesCmd) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    match cmd {
        ServicesCmd::List => {
            ctx.show(client::services(&s), |list| {
                let rows: Vec<String> = list
                    .iter()
                    .map(|x| {
                        let pid = x.state.pid.map(|p| p.to_string()).unwrap_or_default();
                        let mut line = format!(
                            "{:<16} {:<9} {pid:<7} {}",
                            x.name,
                            x.state.status,
                            x.command_line()
                        );
                        if let Some(p) = x.spec.http_port {
                            line.push_str(&format!("  (http :{p})"));
                        }
                        if let Some(e) = &x.state.error {
                            line.push_str(&format!("  [{e}]"));
                        }
                        line
                    })
                    .collect();
                lines_or(&rows, "No services.")
            })
            .await
        }
        ServicesCmd::Create {
            name,
            dir,
            env,
            needs,
            http_port,
            cmd,
        } => {
            let req = ServiceRequest {
                cmd: cmd[0].clone(),
                args: cmd[1..].to_vec(),
                env: env_pairs(env)?.into_iter().collect(),
                dir: dir.clone(),
                needs: needs.clone(),
                http_port: *http_port,
            };
            follow(ctx, client::put_service(&s, name, &req, FOLLOW)).await
        }
        ServicesCmd::Logs {
            name,
            lines,
            follow: following,
            follow_for,
        } => {
            let until = following.then_some(follow_for.as_str());
            follow(ctx, client::service_logs(&s, name, *lines, until)).await
        }
        ServicesCmd::Start { name } => {
            follow(ctx, client::start_service(&s, name, false, FOLLOW)).await
        }
        ServicesCmd::Restart { name } => {
            follow(ctx, client::start_service(&s, name, true, FOLLOW)).await
        }
        ServicesCmd::Stop { name, timeout } => {
            follow(ctx, client::stop_service(&s, name, timeout)).await
        }
        ServicesCmd::Delete { name } => {
            ctx.api.run(&client::delete_service(&s, name)).await?;
            println!("Deleted service {name}.");
            Ok(())
        }
        ServicesCmd::Signal { name, signal } => {
            let req = ServiceSignal {
                name: name.clone(),
                signal: signal.clone(),
            };
            ctx.api.run(&client::signal_service(&s, &req)).await?;
            println!("Sent {signal} to {name}.");
            Ok(())
        }
    }
}
