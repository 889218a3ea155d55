//! `sprite`: the command line for sprites on a sprites server.
//!
//! Its commands (login, create, exec, console, checkpoint, restore, ...) talk
//! to the server's API; they arrive with the API. Today it knows its version
//! and validates names the way the server does.

use clap::{Parser, Subcommand};
use sprites_wire::SpriteName;

#[derive(Parser)]
#[command(
    name = "sprite",
    version,
    about = "Durable sprites from the command line"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check that NAME is a valid sprite name.
    CheckName { name: String },
}

fn main() -> std::process::ExitCode {
    match Cli::parse().cmd {
        Cmd::CheckName { name } => match SpriteName::parse(&name) {
            Ok(n) => {
                println!("{n} is a valid sprite name");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sprite: {e}");
                std::process::ExitCode::from(2)
            }
        },
    }
}
