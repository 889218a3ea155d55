//! `sprites-server`: reads its configuration, opens the host (creating the
//! storage pool and building the base image on first start), binds, serves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use sprites_server::{app, serve, AppState};
use vmhost::image::Recipe;
use vmhost::Host;

#[derive(Parser)]
#[command(name = "sprites-server", about = "Durable sprites with a browser IDE")]
struct Config {
    /// Address to listen on.
    #[arg(long, env = "SPRITES_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    host: vmhost::args::HostArgs,
    /// The web app's files.
    #[arg(long, env = "SPRITES_PUBLIC_DIR", default_value = "public")]
    public_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = Config::parse();
    let host = Host::open(cfg.host.config()).await?;
    let recipe = Recipe::debian(&cfg.host.mirror);
    tokio::task::block_in_place(|| {
        host.ensure_image("debian", &recipe, &mut |line| {
            println!("  base image: {line}")
        })
    })?;
    let state = AppState {
        host: Arc::new(host),
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let port = listener.local_addr()?.port();
    println!("Sprites is ready: open http://localhost:{port}/");
    serve(listener, app(state, cfg.public_dir), shutdown_signal()).await?;
    println!("Stopped; sprites keep running and are re-adopted on the next start.");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
