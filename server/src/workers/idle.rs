//! Sleeping when idle. A sprite is idle when nothing has used it for its
//! warm time (default 60 s): no request or WebSocket through its URL in
//! flight, no non-terminal exec under way, no terminal input or output, no
//! output of a session with a client attached, no API call, no keep-awake
//! task. Then it sleeps warm (frozen); after its cold time (default 30
//! min) it sleeps cold (stopped).
//!
//! Work in flight holds a [`Busy`] guard: a read lock on the sprite's sleep
//! lock. The sleeper freezes a sprite only under the write lock, taken
//! without waiting, so it never freezes under a request, and a request
//! that comes while it freezes waits for it and then wakes the sprite.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprites_wire::SpriteName;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::db::now_ms;
use crate::AppState;

/// How often the sleeper looks.
const TICK: Duration = Duration::from_secs(1);

/// The server's sleep times, for sprites that set none.
#[derive(Clone, Copy, Debug)]
pub struct SleepDefaults {
    /// Idle time before a warm sleep; zero: never.
    pub warm_after: Duration,
    /// Idle time before a cold sleep; zero: never.
    pub cold_after: Duration,
}

impl Default for SleepDefaults {
    fn default() -> Self {
        SleepDefaults {
            warm_after: Duration::from_secs(60),
            cold_after: Duration::from_secs(30 * 60),
        }
    }
}

/// The last activity of every sprite this server has seen, and its lock.
#[derive(Clone, Default)]
pub struct Activity(Arc<Mutex<HashMap<SpriteName, Arc<Track>>>>);

struct Track {
    /// Milliseconds since the Unix epoch.
    last: AtomicI64,
    lock: Arc<RwLock<()>>,
}

impl Track {
    fn new() -> Arc<Track> {
        Arc::new(Track {
            last: AtomicI64::new(now_ms()),
            lock: Arc::new(RwLock::new(())),
        })
    }
}

/// Work in flight on a sprite: it does not sleep while this lives, and its
/// end counts as activity.
///
/// It keeps its sprite's track, so its end is noted without a lookup.
pub struct Busy {
    track: Arc<Track>,
    _guard: OwnedRwLockReadGuard<()>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.track.last.store(now_ms(), Relaxed);
    }
}

impl Activity {
    /// `f` of the sprite's track, made now if it has none (its key is
    /// copied only then).
    fn with<R>(&self, host: &SpriteName, f: impl FnOnce(&Arc<Track>) -> R) -> R {
        let mut map = self.0.lock().unwrap();
        if let Some(t) = map.get(host) {
            return f(t);
        }
        f(map.entry(host.clone()).or_insert_with(Track::new))
    }

    /// Something used the sprite just now.
    pub fn touch(&self, host: &SpriteName) {
        self.with(host, |t| t.last.store(now_ms(), Relaxed));
    }

    /// Marks work in flight; waits while the sprite is being put to sleep.
    pub async fn busy(&self, host: &SpriteName) -> Busy {
        let track = self.with(host, |t| {
            t.last.store(now_ms(), Relaxed);
            t.clone()
        });
        Busy {
            _guard: track.lock.clone().read_owned().await,
            track,
        }
    }

    /// Milliseconds since the Unix epoch of the last activity seen.
    pub fn last(&self, host: &SpriteName) -> Option<i64> {
        let map = self.0.lock().unwrap();
        map.get(host).map(|t| t.last.load(Relaxed))
    }

    fn raise(&self, host: &SpriteName, at: i64) {
        self.with(host, |t| t.last.fetch_max(at, Relaxed));
    }

    /// The last activity (a sprite first seen now counts from now) and
    /// the sprite's sleep lock.
    fn track(&self, host: &SpriteName) -> (i64, Arc<RwLock<()>>) {
        self.with(host, |t| (t.last.load(Relaxed), t.lock.clone()))
    }

    pub fn forget(&self, host: &SpriteName) {
        self.0.lock().unwrap().remove(host);
    }
}

/// Runs the sleeper for as long as the process lives.
pub fn spawn_sleeper(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sleep_idle(&state).await {
                tracing::warn!(error = %e, "the idle sleeper failed a round");
            }
        }
    });
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Sleep {
    Warm,
    Cold,
}

/// The sleep an idle time calls for (times in ms; 0: never).
fn due(idle: i64, warm_after: i64, cold_after: i64) -> Option<Sleep> {
    if cold_after > 0 && idle >= cold_after {
        Some(Sleep::Cold)
    } else if warm_after > 0 && idle >= warm_after {
        Some(Sleep::Warm)
    } else {
        None
    }
}

/// A sprite as the idle sleeper sees it: its sleep settings in seconds
/// (none: the server's) and how many keep-awake tasks hold it.
#[derive(sqlx::FromRow)]
struct IdleRow {
    host_name: String,
    org_id: String,
    warm: Option<i64>,
    cold: Option<i64>,
    kept: i64,
}

/// The host names of `rows`' sprites asleep warm: one question to the
/// host, or one per sprite when a sprite the host cannot read fails the
/// whole list.
async fn warm_sprites(state: &AppState, rows: &[IdleRow]) -> HashSet<String> {
    let warm = vmhost::Phase::SleepingWarm;
    match state.host.list().await {
        Ok(all) => all
            .into_iter()
            .filter(|s| s.phase == warm)
            .map(|s| s.name)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the host's sprites: asking for each");
            let mut asleep = HashSet::new();
            for row in rows {
                let Ok(host) = SpriteName::parse(&row.host_name) else {
                    continue;
                };
                if state.host.phase(&host).await.ok() == Some(warm) {
                    asleep.insert(row.host_name.clone());
                }
            }
            asleep
        }
    }
}

/// One round: every sprite whose idle time is up goes to sleep; warm,
/// unless its organization has as many asleep warm as it may (then cold).
async fn sleep_idle(state: &AppState) -> Result<(), crate::error::ApiError> {
    let now = now_ms();
    let rows = sqlx::query_as::<_, IdleRow>(
        "SELECT s.host_name AS host_name, s.org_id AS org_id, \
         s.warm_after_secs AS warm, s.cold_after_secs AS cold, \
         (SELECT COUNT(*) FROM keep_awake k WHERE k.sprite_id = s.id AND k.until_ms > $1) AS kept \
         FROM sprites s",
    )
    .bind(now)
    .fetch_all(state.db.pool())
    .await?;
    let defaults = state.settings.sleep;
    let warm_limit = state.settings.limits.warm;
    let mut warm_now: HashMap<String, usize> = HashMap::new();
    if warm_limit.is_some() {
        let warm = warm_sprites(state, &rows).await;
        for row in rows.iter().filter(|r| warm.contains(&r.host_name)) {
            *warm_now.entry(row.org_id.clone()).or_default() += 1;
        }
    }
    for row in rows {
        let Ok(host) = SpriteName::parse(&row.host_name) else {
            continue;
        };
        let (last, lock) = state.activity.track(&host);
        if row.kept > 0 {
            continue;
        }
        let ms =
            |secs: Option<i64>, default: Duration| secs.unwrap_or(default.as_secs() as i64) * 1000;
        let warm = ms(row.warm, defaults.warm_after);
        let cold = ms(row.cold, defaults.cold_after);
        let Some(mut sleep) = due(now - last, warm, cold) else {
            continue;
        };
        let org = row.org_id;
        if let (Sleep::Warm, Some(limit)) = (sleep, warm_limit) {
            // A sprite going warm past the limit goes cold instead, and so
            // do warm ones beyond it (the limit lowered).
            let warm = warm_now.get(&org).copied().unwrap_or(0);
            match state.host.phase(&host).await.ok() {
                Some(vmhost::Phase::Running) if warm >= limit => sleep = Sleep::Cold,
                Some(vmhost::Phase::SleepingWarm) if warm > limit => sleep = Sleep::Cold,
                _ => {}
            }
        }
        // Work in flight holds the lock: then the sprite is not idle.
        let Ok(_guard) = lock.try_write_owned() else {
            continue;
        };
        match put_to_sleep(state, &host, sleep, last).await {
            // Counted once it is so.
            Ok(Some((from, to))) => {
                let warm = warm_now.entry(org).or_default();
                if to == Sleep::Warm {
                    *warm += 1;
                } else if from == vmhost::Phase::SleepingWarm {
                    *warm = warm.saturating_sub(1);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(sprite = %host, error = %e, "cannot put an idle sprite to sleep");
            }
        }
    }
    Ok(())
}

/// Puts the sprite to sleep as `sleep` says, unless it is in use after
/// all; the phase it was in and the sleep it took, if it took one.
async fn put_to_sleep(
    state: &AppState,
    host: &SpriteName,
    sleep: Sleep,
    last: i64,
) -> vmhost::Result<Option<(vmhost::Phase, Sleep)>> {
    let phase = match state.host.get(host).await {
        Ok(info) => info.phase,
        Err(vmhost::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let target = match (sleep, phase) {
        (Sleep::Cold, vmhost::Phase::Running | vmhost::Phase::SleepingWarm) => Sleep::Cold,
        (Sleep::Warm, vmhost::Phase::Running) => Sleep::Warm,
        _ => return Ok(None),
    };
    if phase == vmhost::Phase::Running {
        // Output of a session someone watches is activity the server did
        // not see pass (a console whose client is the CLI, say).
        let sessions = state.host.sessions(host).await?;
        let watched = sessions
            .iter()
            .filter(|s| s.clients > 0 && s.exit_code.is_none())
            .map(|s| s.last_output_at as i64 * 1000)
            .max();
        if let Some(at) = watched.filter(|at| *at > last) {
            state.activity.raise(host, at);
            return Ok(None);
        }
    }
    match target {
        Sleep::Warm => {
            state.host.sleep_warm(host).await?;
        }
        Sleep::Cold => {
            state.host.sleep_cold(host).await?;
            state.upstreams.forget(host);
        }
    }
    tracing::info!(sprite = %host, sleep = ?target, "idle sprite put to sleep");
    Ok(Some((phase, target)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_times_choose_the_sleep() {
        assert_eq!(due(10, 60, 1800), None);
        assert_eq!(due(60, 60, 1800), Some(Sleep::Warm));
        assert_eq!(due(1800, 60, 1800), Some(Sleep::Cold));
        assert_eq!(due(1800, 0, 0), None, "never");
        assert_eq!(due(100, 0, 100), Some(Sleep::Cold), "cold without warm");
        assert_eq!(due(100, 50, 0), Some(Sleep::Warm), "warm, never cold");
    }

    #[tokio::test]
    async fn busy_work_holds_off_the_sleeper_and_counts_as_activity() {
        let a = Activity::default();
        let s = SpriteName::parse("s").unwrap();
        let busy = a.busy(&s).await;
        let (_, lock) = a.track(&s);
        assert!(lock.clone().try_write_owned().is_err());
        drop(busy);
        assert!(lock.try_write_owned().is_ok());
        assert!(now_ms() - a.last(&s).unwrap() < 1000);
    }
}
