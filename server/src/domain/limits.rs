//! What an organization may do at once, in the SDKs' rate-limit shapes
//! (429 with `X-RateLimit-*` headers): how many of its sprites run at
//! once (`running_limit`), how many it makes a minute, and how many sleep
//! warm (`warm_limit`: beyond it the idle sleeper puts sprites to sleep
//! cold, which frees their memory). The operator sets them
//! (`--running-limit`, `--create-rate`, `--warm-limit`); none is set by
//! default.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, RateLimit};
use crate::AppState;

/// The limits of every organization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrgLimits {
    /// Sprites running at once.
    pub running: Option<usize>,
    /// Sprites asleep warm at once.
    pub warm: Option<usize>,
    /// Sprites made (created or forked) a minute.
    pub creates_per_minute: Option<u32>,
}

/// The window of the creation rate.
const WINDOW: Duration = Duration::from_secs(60);

/// Recent creations, by organization.
#[derive(Default)]
pub struct Creations(Mutex<HashMap<String, VecDeque<Instant>>>);

/// Whether `org_id` may make one more sprite this minute (counted by
/// [`created`] once made; two at the same moment may both pass).
pub fn may_create(state: &AppState, org_id: &str) -> Result<(), ApiError> {
    let Some(limit) = state.settings.limits.creates_per_minute else {
        return Ok(());
    };
    let now = Instant::now();
    let mut all = state.creations.0.lock().unwrap();
    let recent = all.entry(org_id.to_string()).or_default();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        recent.pop_front();
    }
    if recent.len() >= limit as usize {
        let oldest = *recent.front().expect("full means some");
        let retry = (WINDOW - now.duration_since(oldest)).as_secs() + 1;
        return Err(ApiError::RateLimited(Box::new(RateLimit {
            code: "sprite_creation_rate_limited",
            message: format!(
                "your organization may make {limit} sprites a minute; try again in {retry} s"
            ),
            limit: u64::from(limit),
            remaining: 0,
            window_seconds: Some(WINDOW.as_secs()),
            current_count: Some(recent.len() as u64),
            retry_after: Some(retry),
        })));
    }
    Ok(())
}

/// Counts a sprite `org_id` made.
pub fn created(state: &AppState, org_id: &str) {
    if state.settings.limits.creates_per_minute.is_some() {
        let mut all = state.creations.0.lock().unwrap();
        all.entry(org_id.to_string())
            .or_default()
            .push_back(Instant::now());
    }
}

/// Whether one more of `org_id`'s sprites may start running (a creation,
/// a wake). Wakes at the same moment may both pass: the limit is a
/// ceiling for what the organization does in turn, not a lock.
pub async fn may_run(state: &AppState, org_id: &str) -> Result<(), ApiError> {
    let Some(limit) = state.settings.limits.running else {
        return Ok(());
    };
    let running = in_phase(state, org_id, vmhost::Phase::Running).await?;
    if running >= limit {
        return Err(ApiError::RateLimited(Box::new(RateLimit {
            code: "concurrent_sprite_limit_exceeded",
            message: format!(
                "your organization runs {running} sprites, its limit: put one to sleep \
                 (or let it fall asleep) to start another"
            ),
            limit: limit as u64,
            remaining: 0,
            window_seconds: None,
            current_count: Some(running as u64),
            retry_after: None,
        })));
    }
    Ok(())
}

/// How many of `org_id`'s sprites are in `phase`.
pub async fn in_phase(
    state: &AppState,
    org_id: &str,
    phase: vmhost::Phase,
) -> Result<usize, ApiError> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT host_name FROM sprites WHERE org_id = $1")
        .bind(org_id)
        .fetch_all(state.db.pool())
        .await?;
    let mut n = 0;
    for name in rows {
        let Ok(host) = vmhost::SpriteName::parse(&name) else {
            continue;
        };
        if state.host.get(&host).await.is_ok_and(|i| i.phase == phase) {
            n += 1;
        }
    }
    Ok(n)
}
