//! Sprites as the API sees them: a row per sprite in its organization
//! (name, URL auth, labels) joined with the host's sprite of the same id.
//!
//! Creation inserts the row first (its unique (organization, name) key is
//! the name's reservation), then creates the host sprite, and removes the
//! row if that fails. A row left without a host sprite by a crash between
//! the two is removed by [`reconcile`] on start.

use sprites_wire::api::{
    CreateSprite, KeepAwake, NewKeepAwake, Replication, ReplicationState, Restarted, SleepSettings,
    Sprite, SpriteCheck, SpriteList, SpriteLocation, SpriteUsage, UpdateSprite, Upgraded,
    UrlSettings, UsageReport,
};
use sprites_wire::SpriteName;

use crate::db::{is_unique_violation, new_id, now_ms};
use crate::domain::access::{
    find, forget, host_name, host_sprite, record, running, viewer, visible, Record,
};
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

const MAX_LABELS: usize = 32;
/// The most sprites a page of the list holds.
pub(crate) const MAX_PAGE: usize = 100;

/// Checks sleep times: whole seconds up to a year, 0 for never.
fn check_sleep(s: &SleepSettings) -> Result<(Option<i64>, Option<i64>), ApiError> {
    const YEAR: u64 = 365 * 24 * 3600;
    let check = |name: &str, v: Option<u64>| match v {
        Some(secs) if secs > YEAR => Err(ApiError::Invalid(format!(
            "sleep.{name}: at most {YEAR} seconds (0 for never)"
        ))),
        other => Ok(other.map(|v| v as i64)),
    };
    Ok((
        check("warm_after_secs", s.warm_after_secs)?,
        check("cold_after_secs", s.cold_after_secs)?,
    ))
}

pub(crate) fn status(phase: vmhost::Phase) -> &'static str {
    match phase {
        vmhost::Phase::Running => "running",
        vmhost::Phase::SleepingWarm => "warm",
        vmhost::Phase::SleepingCold => "cold",
        vmhost::Phase::Creating => "creating",
        vmhost::Phase::Destroyed => "destroyed",
    }
}

async fn view(state: &AppState, caller: &Caller, r: Record) -> Result<Sprite, ApiError> {
    let host = host_name(&r)?;
    let (phase, environment, last_running_at) = match state.host.get(&host).await {
        Ok(info) => (info.phase, info.environment, info.last_running_at),
        Err(vmhost::Error::NotFound(_)) => (vmhost::Phase::Creating, Default::default(), None),
        Err(e) => return Err(e.into()),
    };
    let defaults = state.settings.sleep;
    let secs = |v: Option<i64>, d: std::time::Duration| v.map_or(d.as_secs(), |v| v.max(0) as u64);
    let iso = |ms: i64| crate::db::iso_ms(ms.max(0) as u64);
    let resumed = match (&r.resumed_from_host, r.resumed_at) {
        (Some(host), Some(at)) => Some(sprites_wire::api::Resumed {
            host: host.clone(),
            checkpoint: r.resumed_checkpoint.clone(),
            shipped_at: r.resumed_shipped_at.map(iso),
            at: iso(at),
        }),
        _ => None,
    };
    Ok(Sprite {
        resumed,
        url: state.urls.sprite_url(&r.name, &caller.org_slug),
        keep_awake: keep_awake(state, &r.id).await?,
        last_active_at: state
            .activity
            .last(&host)
            .map(|ms| crate::db::iso_ms(ms.max(0) as u64)),
        sleep: SleepSettings {
            warm_after_secs: Some(secs(r.warm_after, defaults.warm_after)),
            cold_after_secs: Some(secs(r.cold_after, defaults.cold_after)),
        },
        id: r.id,
        name: r.name,
        organization: caller.org_slug.clone(),
        status: status(phase).into(),
        created_at: crate::db::iso_ms(r.created_at.max(0) as u64),
        updated_at: crate::db::iso_ms(r.updated_at.max(0) as u64),
        url_settings: UrlSettings {
            auth: Some(r.url_auth),
            private_access: Some(r.url_private_access),
        },
        labels: r.labels.0,
        replication: replication(state, &host).await?,
        environment,
        version: sprites_wire::VERSION.to_string(),
        last_running_at: last_running_at.map(crate::db::iso_ms),
    })
}

/// The sprite's copy in the object store, as the API shows it.
pub(crate) async fn replication(
    state: &AppState,
    host: &SpriteName,
) -> Result<Replication, ApiError> {
    use vmhost::replica::{Location, ReplicaPhase};
    let r = match state.host.replication(host).await {
        Ok(r) => r,
        // Being created: nothing to replicate yet.
        Err(vmhost::Error::NotFound(_)) => return Ok(Replication::default()),
        Err(e) => return Err(e.into()),
    };
    Ok(Replication {
        state: match r.phase {
            ReplicaPhase::Off => ReplicationState::Off,
            ReplicaPhase::Current => ReplicationState::Current,
            ReplicaPhase::Behind => ReplicationState::Behind,
            ReplicaPhase::Failing => ReplicationState::Failing,
            ReplicaPhase::Fetching => ReplicationState::Fetching,
        },
        location: match r.location {
            Location::Local => SpriteLocation::Local,
            Location::Bucket => SpriteLocation::Bucket,
        },
        last_shipped_checkpoint: r.last_shipped.map(|c| c.to_string()),
        last_shipped_at: r.last_shipped_at.map(crate::db::iso_ms),
        lag_seconds: r.lag_seconds,
        error: r.error,
        fetched_bytes: r.fetching.map(|(done, _)| done),
        fetch_total_bytes: r.fetching.map(|(_, total)| total),
    })
}

/// The keep-awake tasks of a sprite that have not expired.
pub async fn keep_awake(state: &AppState, sprite_id: &str) -> Result<Vec<KeepAwake>, ApiError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, reason, until_ms FROM keep_awake WHERE sprite_id = $1 AND until_ms > $2 ORDER BY until_ms",
    )
    .bind(sprite_id)
    .bind(now_ms())
    .fetch_all(state.db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, reason, until_ms)| KeepAwake {
            id,
            reason,
            until: crate::db::iso_ms(until_ms.max(0) as u64),
        })
        .collect())
}

/// Keeps the caller's sprite `name` awake for `seconds`, waking it now.
pub async fn add_keep_awake(
    state: &AppState,
    caller: &Caller,
    name: &str,
    req: NewKeepAwake,
) -> Result<KeepAwake, ApiError> {
    const WEEK: u64 = 7 * 24 * 3600;
    if !(1..=WEEK).contains(&req.seconds) {
        return Err(ApiError::Invalid(format!("seconds: from 1 to {WEEK}")));
    }
    let reason = req.reason.unwrap_or_default();
    if reason.len() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "reason: at most 200 printable characters".into(),
        ));
    }
    let r = find(state, caller, name).await?;
    running(state, caller, name).await?;
    let id = new_id();
    let until = now_ms() + req.seconds as i64 * 1000;
    sqlx::query(
        "INSERT INTO keep_awake (id, sprite_id, reason, until_ms, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&r.id)
    .bind(&reason)
    .bind(until)
    .bind(now_ms())
    .execute(state.db.pool())
    .await?;
    Ok(KeepAwake {
        id,
        reason,
        until: crate::db::iso_ms(until.max(0) as u64),
    })
}

/// Ends a keep-awake task early.
pub async fn remove_keep_awake(
    state: &AppState,
    caller: &Caller,
    name: &str,
    id: &str,
) -> Result<(), ApiError> {
    let r = find(state, caller, name).await?;
    let done = sqlx::query("DELETE FROM keep_awake WHERE id = $1 AND sprite_id = $2")
        .bind(id)
        .bind(&r.id)
        .execute(state.db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("keep-awake task {id}")));
    }
    Ok(())
}

/// The keep-awake tasks of the caller's sprite `name`.
pub async fn list_keep_awake(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Vec<KeepAwake>, ApiError> {
    let r = find(state, caller, name).await?;
    keep_awake(state, &r.id).await
}

fn check_labels(labels: &[String]) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::Invalid(format!("at most {MAX_LABELS} labels")));
    }
    if let Some(bad) = labels
        .iter()
        .find(|l| l.is_empty() || l.len() > 63 || l.chars().any(char::is_control))
    {
        return Err(ApiError::Invalid(format!(
            "label {bad:?}: 1 to 63 printable characters"
        )));
    }
    Ok(())
}

fn check_auth(s: &Option<UrlSettings>) -> Result<String, ApiError> {
    match s.as_ref().and_then(|s| s.auth.as_deref()) {
        None | Some("sprite") => Ok("sprite".into()),
        Some("public") => Ok("public".into()),
        Some(other) => Err(ApiError::Invalid(format!(
            "url_settings.auth {other:?}: use \"sprite\" or \"public\""
        ))),
    }
}

/// Who may open the private URL, when the settings say (`None`: as before).
fn check_private_access(s: &Option<UrlSettings>) -> Result<Option<String>, ApiError> {
    match s.as_ref().and_then(|s| s.private_access.as_deref()) {
        None => Ok(None),
        Some(who @ ("org_users" | "admins")) => Ok(Some(who.into())),
        Some(other) => Err(ApiError::Invalid(format!(
            "url_settings.private_access {other:?}: use \"org_users\" or \"admins\""
        ))),
    }
}

fn limits(
    cfg: &Option<sprites_wire::api::SpriteConfig>,
) -> Result<vmhost::runtime::Limits, ApiError> {
    let mut l = vmhost::runtime::Limits::default();
    let Some(cfg) = cfg else { return Ok(l) };
    if let Some(mb) = cfg.ram_mb {
        if !(64..=256 * 1024).contains(&mb) {
            return Err(ApiError::Invalid("config.ram_mb: from 64 to 262144".into()));
        }
        l.memory_bytes = mb << 20;
    }
    if let Some(cpus) = cfg.cpus {
        if !(1..=256).contains(&cpus) {
            return Err(ApiError::Invalid("config.cpus: from 1 to 256".into()));
        }
        l.cpu_quota_us = u64::from(cpus) * 100_000;
    }
    if let Some(gb) = cfg.storage_gb {
        if !(1..=16 * 1024).contains(&gb) {
            return Err(ApiError::Invalid(
                "config.storage_gb: from 1 to 16384".into(),
            ));
        }
        l.disk_bytes = gb << 30;
    }
    Ok(l)
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: CreateSprite,
) -> Result<Sprite, ApiError> {
    let image = match &req.template {
        Some(t) => Some(
            crate::domain::templates::resolve(state, caller, t)
                .await?
                .image,
        ),
        None => None,
    };
    create_from_image(state, caller, req, image).await
}

/// [`create`] from image `image` of the pool (the base image when `None`).
pub async fn create_from_image(
    state: &AppState,
    caller: &Caller,
    req: CreateSprite,
    image: Option<String>,
) -> Result<Sprite, ApiError> {
    let name = SpriteName::parse(&req.name).map_err(|e| ApiError::Invalid(format!("name: {e}")))?;
    let labels = req.labels.unwrap_or_default();
    check_labels(&labels)?;
    let url_auth = check_auth(&req.url_settings)?;
    let private_access = check_private_access(&req.url_settings)?;
    let sleep = check_sleep(&req.sleep.unwrap_or_default())?;
    let mut limits = limits(&req.config)?;
    if let Some(disk) = student_limits(state, caller).await?.max_disk {
        limits.disk_bytes = limits.disk_bytes.min(disk);
    }
    let opts = vmhost::CreateOptions {
        image,
        hostname: Some(name.to_string()),
        limits: Some(limits),
        environment: req.environment.unwrap_or_default(),
        network_policy: crate::domain::policy::for_new_sprite(state, caller).await?,
    };
    let (id, host) = new_host_name();
    let make = state.host.create(&host, opts);
    let new = NewSprite {
        id: &id,
        name: &name,
        host_name: &host,
        url: (&url_auth, private_access.as_deref().unwrap_or("org_users")),
        labels: &labels,
        sleep,
    };
    add(state, caller, new, make).await
}

/// What a class allows each student (nothing is limited for anyone else).
#[derive(Debug, Default, Clone, Copy)]
pub struct StudentLimits {
    pub max_sprites: Option<u64>,
    pub max_disk: Option<u64>,
}

pub async fn student_limits(state: &AppState, caller: &Caller) -> Result<StudentLimits, ApiError> {
    if !caller.student {
        return Ok(StudentLimits::default());
    }
    let (sprites, disk): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT max_sprites_per_member, max_disk_per_member FROM organizations WHERE id = $1",
    )
    .bind(&caller.org_id)
    .fetch_one(state.db.pool())
    .await?;
    let count = |n: Option<i64>| n.map(|n| n.max(0) as u64);
    Ok(StudentLimits {
        max_sprites: count(sprites),
        max_disk: count(disk),
    })
}

/// Refuses a new sprite to a student at their class's limits, in words.
async fn check_room(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let limits = student_limits(state, caller).await?;
    if limits.max_sprites.is_none() && limits.max_disk.is_none() {
        return Ok(());
    }
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT host_name FROM sprites WHERE org_id = $1 AND owner_id = $2")
            .bind(&caller.org_id)
            .bind(&caller.user_id)
            .fetch_all(state.db.pool())
            .await?;
    if let Some(max) = limits.max_sprites {
        if rows.len() as u64 >= max {
            return Err(ApiError::Forbidden(format!(
                "your class allows {max} sprite{} per student and you have {}: delete one to make another",
                if max == 1 { "" } else { "s" },
                rows.len()
            )));
        }
    }
    if let Some(max) = limits.max_disk {
        let mut used = 0;
        for host in &rows {
            if let Ok(host) = SpriteName::parse(host) {
                used += state.host.disk_usage(&host).await.unwrap_or(0);
            }
        }
        if used >= max {
            return Err(ApiError::Forbidden(format!(
                "your sprites use {} of the {} your class allows each student: free some space or delete a sprite to make another",
                sprites_wire::human_bytes(used),
                sprites_wire::human_bytes(max)
            )));
        }
    }
    Ok(())
}

/// One creation at a time per student: the class's limits are checked and
/// the row inserted under the student's turn, so two asked at once cannot
/// both pass the last free place. Others are limited by nothing, and wait
/// for no one.
#[derive(Clone, Default)]
pub struct StudentTurns(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    >,
);

impl StudentTurns {
    async fn take(&self, user_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.0.lock().unwrap();
            // A turn nobody holds or waits for is forgotten.
            turns.retain(|_, t| std::sync::Arc::strong_count(t) > 1);
            turns.entry(user_id.to_string()).or_default().clone()
        };
        turn.lock_owned().await
    }
}

/// The row of a sprite about to be made.
struct NewSprite<'a> {
    id: &'a str,
    name: &'a SpriteName,
    host_name: &'a SpriteName,
    /// Its URL's `auth` and `private_access`.
    url: (&'a str, &'a str),
    labels: &'a [String],
    /// Warm and cold sleep times (seconds; `None`: the server's default).
    sleep: (Option<i64>, Option<i64>),
}

/// Reserves `name` in the caller's organization for a new host sprite made
/// by `make`; the row goes again if `make` fails.
async fn add(
    state: &AppState,
    caller: &Caller,
    new: NewSprite<'_>,
    make: impl std::future::Future<Output = vmhost::Result<vmhost::SpriteInfo>>,
) -> Result<Sprite, ApiError> {
    let NewSprite {
        id,
        name,
        host_name,
        url: (url_auth, private_access),
        labels,
        sleep,
    } = new;
    let turn = if caller.student {
        Some(state.student_turns.take(&caller.user_id).await)
    } else {
        None
    };
    check_room(state, caller).await?;
    crate::domain::limits::may_run(state, &caller.org_id).await?;
    crate::domain::limits::may_create(state, &caller.org_id)?;
    // Names and slugs may both hold hyphens: `a-b` of `c` and `a` of `b-c`
    // would share one URL, so the second to come is refused.
    let label = sprites_wire::url_label(name.as_str(), &caller.org_slug);
    if let Some(other) = crate::http::proxy::resolve(state, &label).await? {
        if other.org_id != caller.org_id {
            return Err(ApiError::Conflict(format!(
                "the URL of a sprite named {name} here is taken by another organization's sprite; choose another name"
            )));
        }
    }
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO sprites (id, org_id, name, host_name, url_auth, labels, created_at, updated_at, \
         warm_after_secs, cold_after_secs, owner_id, url_private_access) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id)
    .bind(&caller.org_id)
    .bind(name.as_str())
    .bind(host_name.as_str())
    .bind(url_auth)
    .bind(serde_json::to_string(labels).expect("labels serialize"))
    .bind(now)
    .bind(now)
    .bind(sleep.0)
    .bind(sleep.1)
    .bind(&caller.user_id)
    .bind(private_access)
    .execute(state.db.pool())
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!("a sprite named {name} exists")))
        }
        other => other?,
    };
    drop(turn);
    if let Err(e) = make.await {
        sqlx::query("DELETE FROM sprites WHERE id = $1")
            .bind(id)
            .execute(state.db.pool())
            .await?;
        forget(state);
        return Err(e.into());
    }
    crate::domain::limits::created(state, &caller.org_id);
    state.activity.touch(host_name);
    let sprite = get(state, caller, name.as_str()).await?;
    state.events.publish(
        &caller.org_id,
        "sprite.created",
        &sprite.name,
        Some(&sprite.status),
        None,
    );
    Ok(sprite)
}

fn new_host_name() -> (String, SpriteName) {
    let id = new_id();
    let host = SpriteName::parse(&format!("s{}", &id[..15])).expect("hex ids are valid names");
    (id, host)
}

/// A new sprite from `source` at `checkpoint` (or as it is now), in the
/// same organization, with the source's URL settings and labels.
pub async fn fork(
    state: &AppState,
    caller: &Caller,
    source: &str,
    name: &str,
    checkpoint: Option<vmhost::CheckpointId>,
) -> Result<Sprite, ApiError> {
    let src = find(state, caller, source).await?;
    let src_host = host_name(&src)?;
    let name = SpriteName::parse(name).map_err(|e| ApiError::Invalid(format!("name: {e}")))?;
    let (id, host) = new_host_name();
    let make = state.host.fork_named(&src_host, checkpoint, &host, &name);
    let new = NewSprite {
        id: &id,
        name: &name,
        host_name: &host,
        url: (&src.url_auth, &src.url_private_access),
        labels: &src.labels.0,
        sleep: (src.warm_after, src.cold_after),
    };
    add(state, caller, new, make).await
}

/// Puts the sprite to sleep (warm: frozen in memory; cold: stopped).
pub async fn sleep(
    state: &AppState,
    caller: &Caller,
    name: &str,
    cold: bool,
) -> Result<Sprite, ApiError> {
    let host = host_sprite(state, caller, name).await?;
    if cold {
        state.host.sleep_cold(&host).await?;
    } else {
        state.host.sleep_warm(&host).await?;
    }
    get(state, caller, name).await
}

pub async fn wake(state: &AppState, caller: &Caller, name: &str) -> Result<Sprite, ApiError> {
    running(state, caller, name).await?;
    get(state, caller, name).await
}

/// Stops every process of the caller's sprite `name` and starts it again
/// on the same disk: the way back for a sprite its own processes have
/// filled (a fork bomb at its process limit), in any phase.
pub async fn restart(state: &AppState, caller: &Caller, name: &str) -> Result<Restarted, ApiError> {
    let r = find(state, caller, name).await?;
    let host = host_name(&r)?;
    state.host.restart(&host).await?;
    Ok(Restarted {
        message: format!(
            "{} restarted: its processes started again, its disk kept",
            r.name
        ),
        sprite_name: r.name,
        machine_id: host.to_string(),
    })
}

/// Puts the caller's sprite `name` onto the host's current `sprite-init`
/// (restarting it only if its own is another), its disk untouched.
pub async fn upgrade(state: &AppState, caller: &Caller, name: &str) -> Result<Upgraded, ApiError> {
    let r = find(state, caller, name).await?;
    let restarted = state.host.upgrade(&host_name(&r)?).await?;
    let message = match restarted {
        true => format!(
            "{} restarted onto the host's sprite-init, its disk kept",
            r.name
        ),
        false => format!(
            "{} runs the host's sprite-init already (or takes it when it wakes)",
            r.name
        ),
    };
    Ok(Upgraded {
        sprite_name: r.name,
        restarted,
        message,
    })
}

/// Whether the caller's sprite `name` answers; a sleeping one is reported
/// as asleep and left so.
pub async fn check(state: &AppState, caller: &Caller, name: &str) -> Result<SpriteCheck, ApiError> {
    let r = find(state, caller, name).await?;
    let check = state.host.check(&host_name(&r)?).await?;
    let status = match (&check.problem, check.phase) {
        (Some(_), _) => "unhealthy",
        (None, vmhost::Phase::Running) => "healthy",
        (None, phase) => status(phase),
    };
    Ok(SpriteCheck {
        sprite_name: r.name,
        sprite_id: r.id,
        status: status.into(),
        reason: check.problem,
        checked_at: crate::db::iso_ms(now_ms() as u64),
        elapsed: check.elapsed.map(|d| d.as_millis() as u64),
    })
}

pub async fn get(state: &AppState, caller: &Caller, name: &str) -> Result<Sprite, ApiError> {
    let r = find(state, caller, name).await?;
    view(state, caller, r).await
}

pub async fn usage(state: &AppState, caller: &Caller, name: &str) -> Result<SpriteUsage, ApiError> {
    let r = find(state, caller, name).await?;
    usage_of(state, r).await
}

async fn usage_of(state: &AppState, r: Record) -> Result<SpriteUsage, ApiError> {
    let host = host_name(&r)?;
    let info = state.host.get(&host).await?;
    Ok(SpriteUsage {
        name: r.name,
        status: status(info.phase).into(),
        active_seconds: info.active_ms / 1000,
        disk_bytes: state.host.disk_usage(&host).await?,
    })
}

/// Usage of every sprite of the caller's organization, and the sums.
pub async fn usage_all(state: &AppState, caller: &Caller) -> Result<UsageReport, ApiError> {
    let rows = sqlx::query(&format!(
        "SELECT * FROM sprites WHERE org_id = $1 AND {} ORDER BY name",
        visible(2)
    ))
    .bind(&caller.org_id)
    .bind(viewer(caller))
    .fetch_all(state.db.pool())
    .await?;
    let mut sprites = Vec::new();
    for row in &rows {
        match usage_of(state, record(row)?).await {
            Ok(u) => sprites.push(u),
            // Destroyed while we looked.
            Err(ApiError::Host(vmhost::Error::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(UsageReport {
        active_seconds: sprites.iter().map(|u| u.active_seconds).sum(),
        disk_bytes: sprites.iter().map(|u| u.disk_bytes).sum(),
        sprites,
    })
}

/// Refuses a prefix no sprite name could start with.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), ApiError> {
    if prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Ok(())
    } else {
        Err(ApiError::Invalid(
            "prefix: sprite names hold lowercase letters, digits and hyphens".into(),
        ))
    }
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    prefix: Option<&str>,
    max_results: Option<usize>,
    after: Option<&str>,
) -> Result<SpriteList, ApiError> {
    let prefix = prefix.unwrap_or("");
    check_prefix(prefix)?;
    let max = max_results.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let rows = sqlx::query(&format!(
        "SELECT * FROM sprites WHERE org_id = $1 AND name LIKE $2 AND name > $3 AND {} \
         ORDER BY name LIMIT $4",
        visible(5)
    ))
    .bind(&caller.org_id)
    .bind(format!("{prefix}%"))
    .bind(after.unwrap_or(""))
    .bind((max + 1) as i64)
    .bind(viewer(caller))
    .fetch_all(state.db.pool())
    .await?;
    let has_more = rows.len() > max;
    let mut sprites = Vec::new();
    for row in rows.iter().take(max) {
        sprites.push(view(state, caller, record(row)?).await?);
    }
    let count = |s: &str| sprites.iter().filter(|x| x.status == s).count();
    Ok(SpriteList {
        has_more,
        next_continuation_token: has_more
            .then(|| sprites.last().map(|s| s.name.clone()))
            .flatten(),
        running: count("running"),
        warm: count("warm"),
        cold: count("cold"),
        running_limit: state.settings.limits.running,
        warm_limit: state.settings.limits.warm,
        sprites,
    })
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    name: &str,
    req: UpdateSprite,
) -> Result<Sprite, ApiError> {
    let mut r = find(state, caller, name).await?;
    if req.url_settings.is_none() && req.labels.is_none() && req.sleep.is_none() {
        return Err(ApiError::Invalid(
            "nothing to update: send url_settings, labels or sleep".into(),
        ));
    }
    if let Some(sleep) = &req.sleep {
        let (warm, cold) = check_sleep(sleep)?;
        r.warm_after = warm.or(r.warm_after);
        r.cold_after = cold.or(r.cold_after);
    }
    if req.url_settings.is_some() {
        r.url_auth = check_auth(&req.url_settings)?;
        if let Some(who) = check_private_access(&req.url_settings)? {
            r.url_private_access = who;
        }
    }
    if let Some(labels) = req.labels {
        check_labels(&labels)?;
        r.labels.0 = labels;
    }
    r.updated_at = now_ms();
    sqlx::query(
        "UPDATE sprites SET url_auth = $1, labels = $2, updated_at = $3, \
         warm_after_secs = $4, cold_after_secs = $5, url_private_access = $7 WHERE id = $6",
    )
    .bind(&r.url_auth)
    .bind(serde_json::to_string(&r.labels.0).expect("labels serialize"))
    .bind(r.updated_at)
    .bind(r.warm_after)
    .bind(r.cold_after)
    .bind(&r.id)
    .bind(&r.url_private_access)
    .execute(state.db.pool())
    .await?;
    forget(state);
    let sprite = view(state, caller, r).await?;
    state.events.publish(
        &caller.org_id,
        "sprite.updated",
        &sprite.name,
        Some(&sprite.status),
        None,
    );
    Ok(sprite)
}

pub async fn destroy(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    let r = find(state, caller, name).await?;
    let host = host_name(&r)?;
    state.activity.forget(&host);
    state.upstreams.forget(&host);
    match state.host.destroy(&host).await {
        Ok(()) | Err(vmhost::Error::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    sqlx::query("DELETE FROM sprites WHERE id = $1")
        .bind(&r.id)
        .execute(state.db.pool())
        .await?;
    forget(state);
    state.events.publish(
        &caller.org_id,
        "sprite.destroyed",
        &r.name,
        Some("destroyed"),
        None,
    );
    Ok(())
}

/// The host names of every sprite the database knows.
pub async fn host_names(db: &crate::db::Db) -> Result<std::collections::HashSet<String>, ApiError> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT host_name FROM sprites")
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().collect())
}

/// Removes rows whose host sprite never came to be (a crash mid-create).
/// With host daemons, other API servers may be making sprites right now,
/// and may know hosts this one does not: a row younger than
/// [`SETTLING_MS`], or placed on a host this server does not know, stays.
pub async fn reconcile(state: &AppState) -> Result<(), ApiError> {
    let rows = sqlx::query("SELECT * FROM sprites")
        .fetch_all(state.db.pool())
        .await?;
    for row in &rows {
        let r = record(row)?;
        if let Some(fleet) = &state.cluster {
            let machine: Option<String> = sqlx::Row::try_get(row, "machine")?;
            let unknown_host = machine.is_some_and(|m| fleet.member_named(&m).is_err());
            if unknown_host || now_ms() - r.created_at < SETTLING_MS {
                continue;
            }
        }
        if let Err(vmhost::Error::NotFound(_)) = state.host.get(&host_name(&r)?).await {
            tracing::warn!(sprite = %r.name, "removing a sprite whose creation never finished");
            sqlx::query("DELETE FROM sprites WHERE id = $1")
                .bind(&r.id)
                .execute(state.db.pool())
                .await?;
            forget(state);
        }
    }
    Ok(())
}

/// How long a new row may wait for its sprite, made by another API server.
const SETTLING_MS: i64 = 10 * 60 * 1000;

/// The machine's sprites, runtime and pool, for operators.
pub async fn host_summary(state: &AppState) -> Result<sprites_wire::api::HostSummary, ApiError> {
    let sprites = state.host.list().await?;
    let running = sprites
        .iter()
        .filter(|s| s.phase == vmhost::Phase::Running)
        .count();
    Ok(sprites_wire::api::HostSummary {
        runtime: state.host.runtime_name().into(),
        sprites: sprites.len(),
        running,
        pool_used_bytes: state.host.pool_used_bytes().await?,
    })
}
