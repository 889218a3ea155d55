//! `sprite policy ...`: the names the sprite may reach, or with `--class`,
//! the policy a class's teachers set for all its students' sprites.

use clap::{Args, Subcommand};
use sprites_wire::client;
use sprites_wire::policy::{NetworkPolicy, PolicyAction, PolicyRule};

use crate::out::Ctx;

#[derive(Args)]
pub struct PolicyArgs {
    /// The policy of this class's students' sprites (its teachers'), not
    /// the sprite's.
    #[arg(long, global = true)]
    class: Option<String>,
    #[command(subcommand)]
    cmd: Option<PolicyCmd>,
}

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Print the rules (the default).
    Show,
    /// Allow names: `github.com`, `*.npmjs.org` (subdomains), `*`.
    Allow {
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// Deny names, as `allow` takes them.
    Deny {
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// Allow the usual package registries and code hosts.
    Defaults,
    /// Take the rules about these names out.
    Remove {
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// Replace the whole policy with a JSON file (`-`: standard input), as
    /// `--json show` prints it.
    Set { file: String },
    /// No rules: the whole internet again.
    Clear,
}

/// Where the policy is: the sprite's, or a class's.
enum Target {
    Sprite(String),
    Class(String),
}

impl Target {
    async fn get(&self, ctx: &Ctx) -> anyhow::Result<NetworkPolicy> {
        match self {
            Target::Sprite(s) => ctx.api.run(&client::network_policy(s)).await,
            Target::Class(c) => ctx.api.run(&client::class_network_policy(c)).await,
        }
    }

    async fn put(&self, ctx: &Ctx, policy: &NetworkPolicy) -> anyhow::Result<()> {
        match self {
            Target::Sprite(s) => ctx.api.run(&client::set_network_policy(s, policy)).await,
            Target::Class(c) => ctx
                .api
                .run(&client::set_class_network_policy(c, policy))
                .await
                .map(|_| ()),
        }
    }

    fn name(&self) -> String {
        match self {
            Target::Sprite(s) => s.clone(),
            Target::Class(c) => format!("class {c}"),
        }
    }
}

/// The rules as lines: `allow  github.com`, `include defaults`.
pub fn describe(policy: &NetworkPolicy) -> String {
    if policy.rules.is_empty() {
        return "No rules: it reaches the whole internet.".into();
    }
    policy
        .rules
        .iter()
        .map(|r| match (&r.domain, r.action, &r.include) {
            (_, _, Some(preset)) => format!("include {preset}"),
            (Some(d), Some(PolicyAction::Allow), None) => format!("allow   {d}"),
            (Some(d), Some(PolicyAction::Deny), None) => format!("deny    {d}"),
            _ => "(a rule the server would not take)".into(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn run(ctx: &Ctx, args: &PolicyArgs) -> anyhow::Result<()> {
    let target = match &args.class {
        Some(c) => Target::Class(c.clone()),
        None => Target::Sprite(ctx.sprite()?),
    };
    let cmd = args.cmd.as_ref().unwrap_or(&PolicyCmd::Show);
    let mut policy = match cmd {
        PolicyCmd::Set { .. } | PolicyCmd::Clear => NetworkPolicy::default(),
        _ => target.get(ctx).await?,
    };
    match cmd {
        PolicyCmd::Show => {
            if ctx.json {
                println!("{}", serde_json::to_string_pretty(&policy)?);
            } else {
                println!("{}", describe(&policy));
            }
            return Ok(());
        }
        PolicyCmd::Allow { domains } | PolicyCmd::Deny { domains } => {
            let allow = matches!(cmd, PolicyCmd::Allow { .. });
            for d in domains {
                policy.rules.retain(|r| r.domain.as_ref() != Some(d));
                policy.rules.push(if allow {
                    PolicyRule::allow(d)
                } else {
                    PolicyRule::deny(d)
                });
            }
        }
        PolicyCmd::Defaults => {
            if !policy
                .rules
                .iter()
                .any(|r| r.include.as_deref() == Some("defaults"))
            {
                policy.rules.push(PolicyRule {
                    include: Some("defaults".into()),
                    ..Default::default()
                });
            }
        }
        PolicyCmd::Remove { domains } => {
            let before = policy.rules.len();
            policy
                .rules
                .retain(|r| !r.domain.as_ref().is_some_and(|d| domains.contains(d)));
            if policy.rules.len() == before {
                anyhow::bail!("no rule names {}", domains.join(", "));
            }
        }
        PolicyCmd::Set { file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?
            };
            policy = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{file} is not a network policy: {e}"))?;
        }
        PolicyCmd::Clear => {}
    }
    target.put(ctx, &policy).await?;
    ctx.say(format!(
        "Network policy of {} is now:\n{}",
        target.name(),
        describe(&policy)
    ));
    Ok(())
}
