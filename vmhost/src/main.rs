//! `vmhost`: the host's own command line, for operators, tests and the
//! benchmark. The product's front door is the server; this drives the same
//! [`vmhost::Host`] directly.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use vmhost::image::Recipe;
use vmhost::{CheckpointId, CreateOptions, Host, SpriteName};

#[derive(Parser)]
#[command(name = "vmhost", about = "Manage the sprites of this machine directly")]
struct Cli {
    #[command(flatten)]
    host: vmhost::args::HostArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the base images (Debian, and the small busybox test image).
    Images,
    /// List the pool's images: name, and what it was made from.
    ImageList,
    /// Remove images; sprites made from them keep their files.
    ImageRemove {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Create and start a sprite.
    Create {
        name: SpriteName,
        #[arg(long)]
        image: Option<String>,
    },
    /// List sprites with their phase.
    List,
    /// Run a command in a sprite; stdin is passed through, its exit code is ours.
    Exec {
        name: SpriteName,
        #[arg(trailing_var_arg = true, required = true)]
        argv: Vec<String>,
    },
    /// Take a checkpoint.
    Checkpoint {
        name: SpriteName,
        #[arg(short, long, default_value = "")]
        comment: String,
    },
    /// List checkpoints.
    Checkpoints { name: SpriteName },
    /// Restore a checkpoint.
    Restore { name: SpriteName, id: CheckpointId },
    /// Delete a checkpoint.
    DeleteCheckpoint { name: SpriteName, id: CheckpointId },
    /// Fork a sprite (at a checkpoint, or as it is now).
    Fork {
        source: SpriteName,
        name: SpriteName,
        #[arg(long)]
        from: Option<CheckpointId>,
    },
    /// What changed between a checkpoint and another one, or now.
    Diff {
        name: SpriteName,
        from: CheckpointId,
        to: Option<CheckpointId>,
    },
    /// Put a sprite to sleep (warm: frozen; cold: stopped).
    Sleep {
        name: SpriteName,
        #[arg(long)]
        cold: bool,
    },
    /// Wake a sleeping sprite.
    Wake { name: SpriteName },
    /// Destroy a sprite and its checkpoints.
    Destroy { name: SpriteName },
    /// Open the host, reconcile, and report.
    Reconcile,
    /// Ship a sprite's checkpoints not yet in the object store (--object-store).
    Ship { name: SpriteName },
    /// How a sprite's copy in the object store stands.
    Replication { name: SpriteName },
    /// List the object store's sprites this host lacks (their disks come on first use).
    Recover,
    /// Bring a sprite's disk back from the object store now.
    Fetch { name: SpriteName },
    /// Leave a sprite, asleep cold and fully shipped, only in the object store.
    Evict { name: SpriteName },
    /// Serve this machine's sprites to the cluster's API servers, over
    /// mutual TLS, until stopped.
    Serve {
        /// Where to listen, `address:port`.
        #[arg(long)]
        listen: String,
        /// The folder of this host's identity (`vmhost cluster-issue --role host`).
        #[arg(long)]
        identity: PathBuf,
        /// Seconds a hold of the API servers lasts: with none for this long,
        /// the sprites here are fenced (frozen, never restarted) until one
        /// comes. Keep it well under the servers' `--host-timeout`.
        #[arg(long, default_value_t = 15)]
        lease: u64,
    },
    /// Make a cluster's certificate authority, kept in folder `dir`.
    ClusterInit {
        /// The cluster's name.
        #[arg(long, default_value = "sprites")]
        cluster: String,
        dir: PathBuf,
    },
    /// Issue machine `name` an identity from the authority in `--ca`,
    /// kept in folder `out`.
    ClusterIssue {
        #[arg(long)]
        ca: PathBuf,
        #[arg(long, value_enum)]
        role: Role,
        name: String,
        out: PathBuf,
    },
    /// Measure every operation against its floor on this machine.
    Bench {
        /// Runs per operation.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Role {
    /// A machine that keeps sprites (`vmhost serve`).
    Host,
    /// An API server, which reaches hosts.
    Server,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A host daemon tells what it does; the other commands only what fails.
    let said = match cli.cmd {
        Cmd::Serve { .. } => "warn,vmhost::remote=info,vmhost::sprite::fence=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| said.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vmhost: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

/// The commands of the cluster's authority, which need no host.
fn cluster_command(cmd: &Cmd) -> anyhow::Result<bool> {
    use vmhost::cluster::{ClusterCa, Role as R};
    match cmd {
        Cmd::ClusterInit { cluster, dir } => {
            if dir.join("ca-key.pem").exists() {
                anyhow::bail!("{} already holds an authority", dir.display());
            }
            ClusterCa::generate(cluster)?.save(dir)?;
        }
        Cmd::ClusterIssue {
            ca,
            role,
            name,
            out,
        } => {
            let role = match role {
                Role::Host => R::Host,
                Role::Server => R::Server,
            };
            ClusterCa::open(ca)?.issue(role, name)?.save(out)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Serves `host` on `listen` as the identity in `identity` until SIGTERM
/// or SIGINT.
async fn serve(host: Host, listen: &str, identity: &std::path::Path) -> anyhow::Result<()> {
    let me = vmhost::cluster::Identity::open(identity, vmhost::cluster::Role::Host)?;
    let acceptor = me.acceptor()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let host = Arc::new(host);
    let keeper = Host::spawn_lease_keeper(&host);
    eprintln!(
        "vmhost: serving {} sprites on {}",
        host.list()?.len(),
        listener.local_addr()?
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    vmhost::remote::serve(listener, acceptor, host.clone(), stop).await?;
    keeper.abort();
    // Every connection has ended; the sprites go on running, and the next
    // daemon finds them.
    if let Ok(host) = Arc::try_unwrap(host) {
        host.close().await;
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cluster_command(&cli.cmd)? {
        return Ok(ExitCode::SUCCESS);
    }
    // Recovery needs the key that wrote the bucket: it is never made here.
    let cfg = cli
        .host
        .config(!matches!(cli.cmd, Cmd::Recover | Cmd::Fetch { .. }))?;
    if let Cmd::Bench { runs, json } = cli.cmd {
        vmhost::bench::run(cfg, &cli.host.mirror, runs, json).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut cfg = cfg;
    if let Cmd::Serve { lease, .. } = cli.cmd {
        cfg.lease = Some(std::time::Duration::from_secs(lease.max(1)));
    }
    let host = Host::open(cfg).await?;
    match cli.cmd {
        Cmd::Images => {
            let mut progress = |line: &str| eprintln!("  {line}");
            host.ensure_image("busybox", &Recipe::busybox(), &mut progress)?;
            host.ensure_image("debian", &Recipe::debian(&cli.host.mirror), &mut progress)?;
        }
        Cmd::ImageList => {
            for i in host.images()? {
                let made_from = match &i.recipe {
                    Recipe::Debian { .. } => "debian",
                    Recipe::Busybox { .. } => "busybox",
                    Recipe::Imported { .. } => "imported",
                    Recipe::Checkpoint { .. } => "checkpoint",
                };
                println!("{:<40} {made_from}", i.name);
            }
        }
        Cmd::ImageRemove { names } => {
            for name in names {
                host.remove_image(&name)?;
            }
        }
        Cmd::Create { name, image } => {
            let opts = CreateOptions {
                image,
                ..Default::default()
            };
            print_json(&host.create(&name, opts).await?);
        }
        Cmd::List => {
            for s in host.list()? {
                println!("{:<24} {:<16} {}", s.name, s.phase.to_string(), s.image);
            }
        }
        Cmd::Exec { name, argv } => {
            let mut stdin = Vec::new();
            if !atty_stdin() {
                std::io::stdin().read_to_end(&mut stdin)?;
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = host.run(&name, &argv, &stdin).await?;
            std::io::stdout().write_all(&out.stdout)?;
            std::io::stderr().write_all(&out.stderr)?;
            return Ok(ExitCode::from(out.code.clamp(0, 255) as u8));
        }
        Cmd::Checkpoint { name, comment } => print_json(&host.checkpoint(&name, &comment).await?),
        Cmd::Checkpoints { name } => print_json(&host.checkpoints(&name)?),
        Cmd::Restore { name, id } => print_json(&host.restore(&name, id).await?),
        Cmd::DeleteCheckpoint { name, id } => host.delete_checkpoint(&name, id).await?,
        Cmd::Fork { source, name, from } => print_json(&host.fork(&source, from, &name).await?),
        Cmd::Diff { name, from, to } => print_json(&host.diff(&name, from, to).await?),
        Cmd::Sleep { name, cold } => {
            let phase = if cold {
                host.sleep_cold(&name).await?
            } else {
                host.sleep_warm(&name).await?
            };
            println!("{phase}");
        }
        Cmd::Wake { name } => println!("{}", host.wake(&name).await?),
        Cmd::Destroy { name } => host.destroy(&name).await?,
        Cmd::Reconcile => println!("{} sprites reconciled", host.list()?.len()),
        Cmd::Ship { name } => {
            let shipped = host.ship(&name).await?;
            println!(
                "shipped {:?}: {} bytes, {} segments already there",
                shipped.checkpoints, shipped.bytes, shipped.resumed_segments
            );
        }
        Cmd::Replication { name } => print_json(&host.replication(&name)?),
        Cmd::Recover => {
            let found = host.recover().await?;
            for failure in &found.failures {
                eprintln!("not recovered: {failure}");
            }
            println!("{} sprites recovered", found.sprites.len());
        }
        Cmd::Fetch { name } => {
            for failure in host.fetch(&name).await? {
                eprintln!("not restored: {failure}");
            }
        }
        Cmd::Evict { name } => host.evict(&name).await?,
        Cmd::Serve {
            listen, identity, ..
        } => serve(host, &listen, &identity).await?,
        Cmd::Bench { .. } | Cmd::ClusterInit { .. } | Cmd::ClusterIssue { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn atty_stdin() -> bool {
    nix::unistd::isatty(0).unwrap_or(false)
}
