//! `sprite templates ...`: the gallery's templates, checkpoints saved as
//! templates, and imported root file systems.

use clap::Subcommand;
use sprites_wire::api::{SaveTemplate, Template};
use sprites_wire::client;

use crate::out::{lines_or, Ctx, Spinner};

/// What a saved or imported template says of itself, and who sees it.
#[derive(clap::Args)]
pub struct TemplateAbout {
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
pub enum TemplatesCmd {
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

/// A template's line in the list: name, kind, scope, title, and how its
/// build goes when it is not ready.
fn row(t: &Template) -> String {
    let state = match t.state.as_str() {
        "ready" => String::new(),
        "building" => format!("  (being built: {})", t.progress.as_deref().unwrap_or("")),
        "failed" => format!("  (failed: {})", t.error.as_deref().unwrap_or("")),
        other => format!("  ({other})"),
    };
    format!(
        "{:<20} {:<10} {:<12} {}{state}",
        t.name, t.kind, t.scope, t.title
    )
}

pub async fn run(ctx: &Ctx, cmd: &TemplatesCmd) -> anyhow::Result<()> {
    match cmd {
        TemplatesCmd::List => {
            ctx.show(client::templates(), |list| {
                let rows: Vec<String> = list.templates.iter().map(row).collect();
                lines_or(&rows, "No templates.")
            })
            .await
        }
        TemplatesCmd::Save {
            name,
            checkpoint,
            about,
            open,
        } => {
            let req = SaveTemplate {
                name: name.clone(),
                sprite: ctx.sprite()?,
                checkpoint: checkpoint.clone(),
                title: about.title.clone(),
                description: about.description.clone(),
                scope: Some(about.scope().to_string()),
                open: open.clone(),
            };
            ctx.show(client::save_template(&req), |t| {
                format!(
                    "Saved {} as a template: sprite create NAME --template {}",
                    t.title, t.name
                )
            })
            .await
        }
        TemplatesCmd::Import { name, path, about } => {
            let call = client::import_image(
                name,
                about.scope(),
                about.title.as_deref(),
                about.description.as_deref(),
            );
            let body = crate::upload::archive(path).await?;
            let spinner = Spinner::start(ctx.json, format!("Importing {}", path.display()));
            let v = ctx.api.upload(&call, body).await?;
            drop(spinner);
            if ctx.json {
                println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
            } else {
                let t = call.read_value(v)?;
                println!(
                    "Imported {}: sprite create NAME --template {}",
                    t.title, t.name
                );
            }
            Ok(())
        }
        TemplatesCmd::Delete { name } => {
            ctx.api.run(&client::delete_template(name)).await?;
            ctx.say(format!("Deleted template {name}"));
            Ok(())
        }
    }
}
