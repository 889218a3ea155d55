//! Sprites themselves: create, list, choose, fork, sleep and wake, what
//! one is doing, its settings, keeping it awake, destroying it, what all
//! of them used, and the organization's live events.

use std::io::Read as _;

use sprites_wire::api::{
    CreateSprite, Fork, NewKeepAwake, Replication, ReplicationState, SleepSettings, Sprite,
    SpriteLocation, SpriteUsage, UpdateSprite, UrlSettings,
};
use sprites_wire::client;

use crate::out::{duration, lines_or, parse_duration, Ctx};

pub async fn create(ctx: &Ctx, name: &str, template: Option<&str>) -> anyhow::Result<()> {
    let mut req = CreateSprite::named(name);
    req.template = template.map(str::to_string);
    ctx.show_while(
        &format!("Creating {name}"),
        client::create_sprite(&req),
        |s| format!("Created {} ({}) at {}", s.name, s.status, s.url),
    )
    .await
}

pub async fn list(ctx: &Ctx, prefix: Option<&str>) -> anyhow::Result<()> {
    ctx.show(client::sprites(prefix), |list| {
        let rows: Vec<String> = list
            .sprites
            .iter()
            .map(|s| format!("{:<24} {:<8} {}", s.name, s.status, s.url))
            .collect();
        lines_or(&rows, "No sprites yet: `sprite create NAME`.")
    })
    .await
}

/// Makes `name` the sprite of this directory (the `.sprite` file).
pub async fn choose(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    ctx.api.run(&client::sprite(name)).await?;
    std::fs::write(".sprite", format!("{name}\n"))?;
    println!("Using {name} in this directory.");
    Ok(())
}

pub async fn fork(ctx: &Ctx, name: &str, from: Option<&str>) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    let req = Fork {
        name: name.to_string(),
        checkpoint: from.map(str::to_string),
    };
    ctx.show_while(
        &format!("Forking {s} into {name}"),
        client::fork(&s, &req),
        |v| format!("Forked {s} into {}", v.name),
    )
    .await
}

pub async fn sleep(ctx: &Ctx, cold: bool) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    ctx.show_while(
        &format!("Putting {s} to sleep"),
        client::sleep(&s, cold),
        |v| format!("{s} is {}", v.status),
    )
    .await
}

pub async fn wake(ctx: &Ctx) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    ctx.show_while(&format!("Waking {s}"), client::wake(&s), |v| {
        format!("{s} is {}", v.status)
    })
    .await
}

/// Stops every process and starts the sprite again, its disk kept: the
/// way back for a sprite whose processes took all it may have.
pub async fn restart(ctx: &Ctx) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    ctx.show_while(&format!("Restarting {s}"), client::restart(&s), |r| {
        r.message
    })
    .await
}

/// Puts the sprite onto the host's current `sprite-init`.
pub async fn upgrade(ctx: &Ctx) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    ctx.show_while(&format!("Upgrading {s}"), client::upgrade(&s), |u| {
        u.message
    })
    .await
}

/// Whether the sprite answers, and if not, why.
pub async fn check(ctx: &Ctx) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    ctx.show(client::check(&s), |c| match (c.reason, c.elapsed) {
        (Some(reason), _) => format!("{s} is {}: {reason}", c.status),
        (None, Some(ms)) => format!("{s} is {} (answered in {ms} ms)", c.status),
        (None, None) => format!("{s} is {}", c.status),
    })
    .await
}

pub async fn url(ctx: &Ctx) -> anyhow::Result<()> {
    ctx.show(client::sprite(&ctx.sprite()?), |s| s.url).await
}

/// The sprite's copy in the object store, in a line; none when the server
/// keeps no copies.
fn backup_line(r: &Replication) -> Option<String> {
    let last = r
        .last_shipped_checkpoint
        .as_deref()
        .map(|c| format!("last copy {c}"))
        .unwrap_or_else(|| "no copy yet".into());
    let lag = duration(r.lag_seconds);
    Some(match (r.state, r.location) {
        (ReplicationState::Off, _) => return None,
        (ReplicationState::Fetching, _) => format!(
            "coming back from the object store: {} of {}",
            sprites_wire::human_bytes(r.fetched_bytes.unwrap_or(0)),
            sprites_wire::human_bytes(r.fetch_total_bytes.unwrap_or(0))
        ),
        (_, SpriteLocation::Bucket) => {
            format!("only in the object store, back on its next wake ({last})")
        }
        (ReplicationState::Current, _) => format!("current ({last})"),
        (ReplicationState::Behind, _) => format!("{lag} behind ({last})"),
        (ReplicationState::Failing, _) => format!(
            "failing, {lag} behind: {}",
            r.error.as_deref().unwrap_or("")
        ),
    })
}

fn never_or(secs: Option<u64>) -> String {
    match secs {
        Some(0) => "never".into(),
        Some(s) => format!("after {} idle", duration(s)),
        None => "?".into(),
    }
}

fn info_text(s: &Sprite, usage: &SpriteUsage) -> String {
    let mut out = vec![
        format!("{:<12} {}", "sprite", s.name),
        format!("{:<12} {}", "status", s.status),
        format!(
            "{:<12} {} ({})",
            "url",
            s.url,
            s.url_settings.auth.as_deref().unwrap_or("sprite")
        ),
        format!(
            "{:<12} {}",
            "last active",
            s.last_active_at
                .as_deref()
                .unwrap_or("not since the server started")
        ),
        format!("{:<12} {}", "awake", duration(usage.active_seconds)),
        format!(
            "{:<12} {}",
            "disk",
            sprites_wire::human_bytes(usage.disk_bytes)
        ),
        format!(
            "{:<12} warm {}, cold {}",
            "sleeps",
            never_or(s.sleep.warm_after_secs),
            never_or(s.sleep.cold_after_secs)
        ),
    ];
    if let Some(b) = backup_line(&s.replication) {
        out.push(format!("{:<12} {b}", "backup"));
    }
    for k in &s.keep_awake {
        out.push(format!(
            "{:<12} until {} ({}) id {}",
            "kept awake", k.until, k.reason, k.id
        ));
    }
    out.join("\n")
}

/// The sprite and what it used; with --json, one object (the sprite with
/// `usage` in it).
pub async fn info(ctx: &Ctx) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    let (sprite, usage) = (client::sprite(&s), client::usage(&s));
    if ctx.json {
        let mut v = ctx.api.value(&sprite).await?;
        v["usage"] = ctx.api.value(&usage).await?;
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(());
    }
    let (sprite, usage) = (ctx.api.run(&sprite).await?, ctx.api.run(&usage).await?);
    println!("{}", info_text(&sprite, &usage));
    Ok(())
}

pub async fn set(
    ctx: &Ctx,
    warm_after: Option<u64>,
    cold_after: Option<u64>,
    url_auth: Option<&str>,
) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    if warm_after.is_none() && cold_after.is_none() && url_auth.is_none() {
        anyhow::bail!("nothing to set: give --warm-after, --cold-after or --url-auth");
    }
    let req = UpdateSprite {
        sleep: (warm_after.is_some() || cold_after.is_some()).then_some(SleepSettings {
            warm_after_secs: warm_after,
            cold_after_secs: cold_after,
        }),
        url_settings: url_auth.map(|a| UrlSettings {
            auth: Some(a.to_string()),
            private_access: None,
        }),
        labels: None,
    };
    ctx.show(client::update_sprite(&s, &req), |v| {
        format!(
            "{s}: sleeps warm {}, cold {}; URL {}",
            never_or(v.sleep.warm_after_secs),
            never_or(v.sleep.cold_after_secs),
            v.url_settings.auth.as_deref().unwrap_or("")
        )
    })
    .await
}

pub async fn keep_awake(
    ctx: &Ctx,
    how_long: Option<&str>,
    reason: Option<&str>,
    end: Option<&str>,
) -> anyhow::Result<()> {
    let s = ctx.sprite()?;
    if let Some(id) = end {
        ctx.api.run(&client::end_keep_awake(&s, id)).await?;
        println!("Ended {id}; {s} sleeps when idle again.");
        return Ok(());
    }
    let req = NewKeepAwake {
        seconds: parse_duration(how_long.unwrap_or(""))?,
        reason: reason.map(str::to_string),
    };
    ctx.show(client::keep_awake(&s, &req), |k| {
        format!(
            "{s} stays awake until {} (end it early: sprite keep-awake --end {})",
            k.until, k.id
        )
    })
    .await
}

pub async fn destroy(ctx: &Ctx, name: Option<&str>, force: bool) -> anyhow::Result<()> {
    let s = match name {
        Some(n) => n.to_string(),
        None => ctx.sprite()?,
    };
    if !force {
        eprint!("Destroy {s} and all its checkpoints? Type its name to confirm: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != s {
            anyhow::bail!("not destroyed");
        }
    }
    ctx.run_while(&format!("Destroying {s}"), client::destroy_sprite(&s))
        .await?;
    println!("Destroyed {s}.");
    Ok(())
}

fn usage_row(name: &str, status: &str, active_seconds: u64, disk_bytes: u64) -> String {
    format!(
        "{name:<24} {status:<8} {:>10} {:>10}",
        duration(active_seconds),
        sprites_wire::human_bytes(disk_bytes),
    )
}

/// What one sprite used, or every sprite of the organization and their sum.
pub async fn usage(ctx: &Ctx, name: Option<&str>) -> anyhow::Result<()> {
    let header = format!(
        "{:<24} {:<8} {:>10} {:>10}",
        "SPRITE", "STATUS", "AWAKE", "DISK"
    );
    match name {
        Some(n) => {
            ctx.show(client::usage(n), |u| {
                let row = usage_row(&u.name, &u.status, u.active_seconds, u.disk_bytes);
                format!("{header}\n{row}")
            })
            .await
        }
        None => {
            ctx.show(client::usage_all(), |all| {
                let mut out = vec![header.clone()];
                for u in &all.sprites {
                    out.push(usage_row(
                        &u.name,
                        &u.status,
                        u.active_seconds,
                        u.disk_bytes,
                    ));
                }
                out.push(usage_row("total", "", all.active_seconds, all.disk_bytes));
                out.join("\n")
            })
            .await
        }
    }
}

/// Follows the organization's events until the server ends the stream.
pub async fn events(ctx: &Ctx) -> anyhow::Result<()> {
    ctx.api
        .events(|raw, e| {
            if ctx.json {
                println!("{raw}");
            } else if e.kind != "resync" {
                println!(
                    "{}  {:<20} {:<20} {}{}",
                    e.at,
                    e.kind,
                    e.sprite,
                    e.status.as_deref().unwrap_or(""),
                    e.checkpoint
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default(),
                );
            }
        })
        .await?;
    anyhow::bail!("the server ended the event stream")
}

/// Stores the server's URL and a token (read from stdin when not given),
/// once the server has said whose it is.
pub async fn login(url: &str, token: Option<&str>) -> anyhow::Result<()> {
    let token = match token {
        Some(t) => t.to_string(),
        None => {
            eprintln!("Paste an API token (sprites-server admin create-user, or POST /v1/tokens):");
            let mut t = String::new();
            std::io::stdin().read_to_string(&mut t)?;
            t.trim().to_string()
        }
    };
    let url = url.trim_end_matches('/');
    let me = crate::api::Api::new(url, &token).run(&client::me()).await?;
    crate::config::save(&crate::config::Config {
        url: url.into(),
        token,
    })?;
    println!("Logged in to {url} as {} ({})", me.handle, me.organization);
    Ok(())
}
