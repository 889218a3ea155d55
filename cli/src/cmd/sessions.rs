//! Commands and terminals in the sprite (`sprite exec`, `sprite console`,
//! `sprite sessions ...`) and ports forwarded into it (`sprite proxy`).

use std::process::ExitCode;

use clap::Subcommand;
use sprites_wire::api::KillSession;
use sprites_wire::client;

use crate::exec::{self, Ended, Target};
use crate::out::{lines_or, Ctx};

#[derive(Subcommand)]
pub enum SessionsCmd {
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

/// An exit code as a process's status (0 to 255).
fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The exit of an interactive session, or how to come back to it.
fn ended(e: Ended) -> ExitCode {
    match e {
        Ended::Exited(code) => exit_code(code),
        Ended::Detached(id) => {
            eprintln!(
                "\r\nDetached; the session runs on. Come back with `sprite sessions attach {id}`."
            );
            ExitCode::SUCCESS
        }
    }
}

/// Runs `cmd` in the sprite with this process's streams; its exit code.
pub async fn exec(
    ctx: &Ctx,
    cmd: &[String],
    env: &[String],
    dir: Option<&str>,
    tty: bool,
) -> anyhow::Result<ExitCode> {
    let target = Target::New { cmd, env, dir, tty };
    Ok(exit_code(
        exec::run(&ctx.cfg, &ctx.sprite()?, target).await?,
    ))
}

/// A shell (or `cmd`) on a terminal in the sprite.
pub async fn console(ctx: &Ctx, cmd: &[String]) -> anyhow::Result<ExitCode> {
    let shell = if cmd.is_empty() {
        vec!["bash".to_string(), "-l".to_string()]
    } else {
        cmd.to_vec()
    };
    let target = Target::New {
        cmd: &shell,
        env: &[],
        dir: None,
        tty: true,
    };
    Ok(ended(
        exec::interactive(&ctx.cfg, &ctx.sprite()?, target).await?,
    ))
}

pub async fn run(ctx: &Ctx, cmd: &SessionsCmd) -> anyhow::Result<ExitCode> {
    let s = ctx.sprite()?;
    match cmd {
        SessionsCmd::List => {
            ctx.show(client::exec_sessions(&s), |list| {
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
            })
            .await?;
        }
        SessionsCmd::Attach { id } => {
            let e = exec::interactive(&ctx.cfg, &s, Target::Attach(id)).await?;
            return Ok(ended(e));
        }
        SessionsCmd::Kill { id, signal } => {
            ctx.progress(
                &format!("Sending {signal} to session {id}"),
                client::kill_session(
                    &s,
                    id,
                    &KillSession {
                        signal: Some(signal.clone()),
                        timeout: None,
                    },
                ),
            )
            .await?;
            ctx.say(format!("Session {id} ended."));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Forwards `LOCAL:REMOTE` (or one port for both); with `stdio`, this
/// process's stdin and stdout are the connection.
pub async fn proxy(ctx: &Ctx, ports: &str, stdio: bool) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| anyhow::anyhow!("{p:?}: a port, or LOCAL:REMOTE"))
    };
    let (local, remote) = match ports.split_once(':') {
        Some((l, r)) => (port(l)?, port(r)?),
        None => (port(ports)?, port(ports)?),
    };
    if stdio {
        crate::proxy::stdio(&ctx.cfg, &s, remote).await
    } else {
        crate::proxy::listen(&ctx.cfg, &s, local, remote).await
    }
}
