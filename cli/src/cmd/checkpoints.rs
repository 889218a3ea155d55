//! `sprite checkpoint ...` and `sprite restore`.

use clap::Subcommand;
use sprites_wire::api::{ChangeKind, NewCheckpoint, Progress};
use sprites_wire::client;

use crate::out::{lines_or, Ctx};

#[derive(Subcommand)]
pub enum CheckpointCmd {
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

pub async fn run(ctx: &Ctx, cmd: &CheckpointCmd) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    match cmd {
        CheckpointCmd::Create { comment } => {
            let req = NewCheckpoint {
                comment: comment.clone(),
            };
            let lines = ctx
                .progress(&format!("Checkpointing {s}"), client::checkpoint(&s, &req))
                .await?;
            let said = lines.iter().rev().find_map(|l| match l {
                Progress::Info { data, .. } | Progress::Complete { data } => Some(data.as_str()),
                _ => None,
            });
            ctx.say(said.unwrap_or(""));
        }
        CheckpointCmd::List => {
            ctx.show(client::checkpoints(&s), |list| {
                let rows: Vec<String> = list
                    .iter()
                    .map(|c| {
                        let auto = if c.auto { " (automatic)" } else { "" };
                        format!("{:<6} {}  {}{auto}", c.id, c.create_time, c.comment)
                    })
                    .collect();
                lines_or(&rows, "")
            })
            .await?;
        }
        CheckpointCmd::Info { id } => {
            ctx.show(client::checkpoint_info(&s, id), |c| {
                serde_json::to_string_pretty(&c).expect("JSON")
            })
            .await?;
        }
        CheckpointCmd::Delete { id } => {
            ctx.api.run(&client::delete_checkpoint(&s, id)).await?;
            println!("Deleted {id}.");
        }
        CheckpointCmd::Diff { id, to } => {
            ctx.show(client::diff(&s, id, to.as_deref()), |diff| {
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
            })
            .await?;
        }
    }
    Ok(())
}

pub async fn restore(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    ctx.progress(&format!("Restoring {s} to {id}"), client::restore(&s, id))
        .await?;
    ctx.say(format!("Restored {s} to {id}."));
    Ok(())
}
