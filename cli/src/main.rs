//! `sprite`: durable sprites from the command line, against a sprites
//! server's API (the same one the SDKs use).
//!
//! Configuration: `sprite login` stores the server URL and an API token in
//! `$XDG_CONFIG_HOME/sprites/config.json` (mode 0600). The sprite a command
//! acts on is `-s NAME`, else the `.sprite` file that `sprite use` wrote in
//! this directory or a parent.

mod api;
mod cmd;
mod config;
mod exec;
mod out;
mod proxy;
mod upload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::checkpoints::CheckpointCmd;
use cmd::policy::PolicyArgs;
use cmd::services::ServicesCmd;
use cmd::sessions::SessionsCmd;
use cmd::templates::TemplatesCmd;
use cmd::{checkpoints, policy, services, sessions, sprites, templates};
use out::Ctx;

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
    /// Stop every process and start the sprite again, its disk kept (the
    /// way back when its processes took all it may have).
    Restart,
    /// Put the sprite onto the server's current sprite-init, its disk kept
    /// (it restarts only if its own is another).
    Upgrade,
    /// Whether the sprite answers, and if not, why.
    Check,
    /// Print the sprite's URL.
    Url,
    /// What the sprite is doing: status, last activity, awake time, disk,
    /// when it sleeps and what keeps it awake.
    Info,
    /// The names the sprite may reach (`sprite policy allow github.com`,
    /// `deny '*'`, `defaults`, `remove`, `set FILE`, `clear`); with
    /// --class SLUG, a class's policy for all its students' sprites.
    Policy(PolicyArgs),
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

/// The commands that need no stored login.
async fn run_local(cmd: &Cmd) -> anyhow::Result<Option<ExitCode>> {
    match cmd {
        Cmd::Login { url, token } => sprites::login(url, token.as_deref()).await?,
        Cmd::Logout => {
            config::forget()?;
            println!("Logged out.");
        }
        Cmd::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "sprite",
                &mut std::io::stdout(),
            );
        }
        _ => return Ok(None),
    }
    Ok(Some(ExitCode::SUCCESS))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(code) = run_local(&cli.cmd).await? {
        return Ok(code);
    }
    let ctx = Ctx::new(config::load()?, cli.json, cli.sprite);
    match &cli.cmd {
        Cmd::Login { .. } | Cmd::Logout | Cmd::Completion { .. } => {
            unreachable!("run_local answered these")
        }
        Cmd::Create { name, template } => sprites::create(&ctx, name, template.as_deref()).await?,
        Cmd::List { prefix } => sprites::list(&ctx, prefix.as_deref()).await?,
        Cmd::Use { name } => sprites::choose(&ctx, name).await?,
        Cmd::Exec { tty, dir, env, cmd } => {
            return sessions::exec(&ctx, cmd, env, dir.as_deref(), *tty).await
        }
        Cmd::Console { cmd } => return sessions::console(&ctx, cmd).await,
        Cmd::Sessions(c) => return sessions::run(&ctx, c).await,
        Cmd::Services(c) => services::run(&ctx, c).await?,
        Cmd::Templates(c) => templates::run(&ctx, c).await?,
        Cmd::Checkpoint(c) => checkpoints::run(&ctx, c).await?,
        Cmd::Restore { id } => checkpoints::restore(&ctx, id).await?,
        Cmd::Fork { name, from } => sprites::fork(&ctx, name, from.as_deref()).await?,
        Cmd::Sleep { cold } => sprites::sleep(&ctx, *cold).await?,
        Cmd::Wake => sprites::wake(&ctx).await?,
        Cmd::Restart => sprites::restart(&ctx).await?,
        Cmd::Upgrade => sprites::upgrade(&ctx).await?,
        Cmd::Check => sprites::check(&ctx).await?,
        Cmd::Url => sprites::url(&ctx).await?,
        Cmd::Policy(args) => policy::run(&ctx, args).await?,
        Cmd::Info => sprites::info(&ctx).await?,
        Cmd::Set {
            warm_after,
            cold_after,
            url_auth,
        } => sprites::set(&ctx, *warm_after, *cold_after, url_auth.as_deref()).await?,
        Cmd::KeepAwake {
            duration,
            reason,
            end,
        } => {
            sprites::keep_awake(&ctx, duration.as_deref(), reason.as_deref(), end.as_deref())
                .await?
        }
        Cmd::Destroy { name, force } => sprites::destroy(&ctx, name.as_deref(), *force).await?,
        Cmd::Proxy { ports, stdio } => sessions::proxy(&ctx, ports, *stdio).await?,
        Cmd::Usage { name } => sprites::usage(&ctx, name.as_deref()).await?,
        Cmd::Events => sprites::events(&ctx).await?,
        Cmd::Api { method, path, data } => {
            let body = data.as_deref().map(serde_json::from_str).transpose()?;
            let (status, text) = ctx.api.raw(method, path, body).await?;
            println!("{text}");
            if !status.is_success() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
